#include "classifier/classifier.h"

#include "classifier/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <variant>


namespace nfb {

const char* dim_name(Dim d) noexcept {
  switch (d) {
    case kDimSrcIp: return "src_ip";
    case kDimDstIp: return "dst_ip";
    case kDimSrcPort: return "src_port";
    case kDimDstPort: return "dst_port";
    case kDimProto: return "proto";
    case kDimInIface: return "in_iface";
    case kDimOutIface: return "out_iface";
    case kDimCtState: return "ct_state";
    case kDimCtProto: return "ct_proto";
    case kDimCtOrigSrc: return "ct_orig_src";
    case kDimCtOrigDst: return "ct_orig_dst";
    case kDimCtOrigSrcPort: return "ct_orig_src_port";
    case kDimCtOrigDstPort: return "ct_orig_dst_port";
    case kDimCtReplSrc: return "ct_repl_src";
    case kDimCtReplDst: return "ct_repl_dst";
    case kDimCtReplSrcPort: return "ct_repl_src_port";
    case kDimCtReplDstPort: return "ct_repl_dst_port";
    case kDimMark: return "mark";
    case kDimConnmark: return "connmark";
    case kDimLength: return "length";
    case kDimIcmp: return "icmp";
    case kDimTcpFlags: return "tcp_flags";
    case kDimPkttype: return "pkttype";
    case kDimSrcAddrtype: return "src_addrtype";
    case kDimDstAddrtype: return "dst_addrtype";
    case kDimCtDir: return "ct_dir";
    case kDimCtExpire: return "ct_expire";
    case kDimString: return "string";
    case kDims: break;
  }
  return "invalid";
}

Box Box::any(uint32_t position) noexcept {
  Box b;
  for (unsigned d = 0; d < kDims; ++d) b.r[d] = Range{0, field_max(static_cast<Dim>(d))};
  b.position = position;
  return b;
}

uint32_t RuleBoxes::used_dims() const noexcept {
  uint32_t used = 0;
  for (const Box& b : boxes) {
    for (unsigned d = 0; d < kDims; ++d) {
      if (b.r[d].lo != 0 || b.r[d].hi != field_max(static_cast<Dim>(d))) used |= 1U << d;
    }
  }
  return used;
}

LinearClassifier::LinearClassifier(const RuleBoxes& rules) : boxes_(rules.boxes) {
  if (!std::is_sorted(boxes_.begin(), boxes_.end(),
                      [](const Box& a, const Box& b) { return a.position < b.position; })) {
    throw std::invalid_argument("boxes must be sorted by position");
  }
  // first_box_[p]: the first box of position >= p, so a start position maps
  // to where the scan begins in O(1).
  first_box_.assign(static_cast<size_t>(rules.rules) + 1, static_cast<uint32_t>(boxes_.size()));
  for (size_t i = boxes_.size(); i-- > 0;) {
    const uint32_t p = boxes_[i].position;
    if (p >= rules.rules) throw std::invalid_argument("box position beyond the rule count");
    first_box_[p] = static_cast<uint32_t>(i);
  }
  for (size_t p = rules.rules; p-- > 0;) first_box_[p] = std::min(first_box_[p], first_box_[p + 1]);
}

void LinearClassifier::lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                              std::span<uint32_t> result) const noexcept {
  const auto positions = static_cast<uint32_t>(first_box_.size() - 1);
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t from = start.empty() ? 0 : start[i];
    uint32_t found = kNoMatch;
    if (from < positions) {
      for (size_t b = first_box_[from]; b < boxes_.size(); ++b) {
        if (boxes_[b].contains(keys[i].v)) {
          found = boxes_[b].position;
          break;
        }
      }
    }
    result[i] = found;
  }
}

size_t LinearClassifier::memory_bytes() const noexcept {
  return boxes_.capacity() * sizeof(Box) + first_box_.capacity() * sizeof(uint32_t);
}


std::unique_ptr<Classifier> make_linear_classifier(const RuleBoxes& rules, ClassifierUse) {
  return std::make_unique<LinearClassifier>(rules);
}

}  // namespace nfb
