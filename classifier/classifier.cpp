#include "classifier/classifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <variant>

#include "packet/packet_key.h"
#include "rules/rule.h"

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

RuleBoxes classbench_boxes(const Chain& chain) {
  RuleBoxes out;
  out.rules = static_cast<uint32_t>(chain.rules.size());
  out.boxes.reserve(chain.rules.size());
  for (uint32_t i = 0; i < chain.rules.size(); ++i) {
    const Rule& r = chain.rules[i];
    const int src_len = mask_prefix_length(r.src.mask);
    const int dst_len = mask_prefix_length(r.dst.mask);
    const bool plain = src_len >= 0 && dst_len >= 0 && !r.src_invert && !r.dst_invert && !r.protocol_invert &&
                       r.in_iface.is_any() && r.out_iface.is_any() && !r.fragment && !r.fragment_invert &&
                       r.matches.size() <= 1 &&
                       (r.matches.empty() || std::holds_alternative<PortsMatch>(r.matches[0]));
    if (!plain) throw std::invalid_argument(fmt::format("{}: not a ClassBench 5-tuple rule", r.where.str()));
    Box b = Box::any(i);
    b.r[kDimSrcIp] = Range{r.src.addr, r.src.addr | ~r.src.mask};
    b.r[kDimDstIp] = Range{r.dst.addr, r.dst.addr | ~r.dst.mask};
    if (r.protocol != 0) b.r[kDimProto] = Range{r.protocol, r.protocol};
    if (!r.matches.empty()) {
      const auto& p = std::get<PortsMatch>(r.matches[0]);
      b.r[kDimSrcPort] = Range{p.sport.lo, p.sport.hi};
      b.r[kDimDstPort] = Range{p.dport.lo, p.dport.hi};
    }
    out.boxes.push_back(b);
  }
  return out;
}

ClassifierKey classbench_key(const PacketKey& key) noexcept {
  ClassifierKey k;
  k.v[kDimSrcIp] = key.src_ip;
  k.v[kDimDstIp] = key.dst_ip;
  k.v[kDimSrcPort] = key.src_port;
  k.v[kDimDstPort] = key.dst_port;
  k.v[kDimProto] = key.proto;
  return k;
}

}  // namespace nfb
