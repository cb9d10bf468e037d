// The packet classifier interface: every algorithm (linear, dtree, tuple,
// acl) answers the same question the same way.
//
// Geometry. A rule is a box in a space of kDims dimensions, each an inclusive
// range of unsigned integers (field_bits(d) wide): the packet's addresses,
// ports and protocol, input and output interface id, its conntrack state as
// one number, the conntrack entry's original and reply tuples, skb mark and
// connmark, IP length, ICMP type/code, TCP flags, packet type, address
// types, conntrack direction and remaining lifetime (the Dim list). A chain's rule that cannot be said as one box
// (inverted matches, interface wildcards that leave holes, -m multiport,
// masked flags, ...) becomes several boxes with the same priority; anything
// that is not a range at all (string, limit, statistic, mac, ...) is left
// out of the box and flagged `residual`: the classifier reports such a rule
// as a CANDIDATE and the caller (the chain walk) checks the residual matches
// and, if they fail, asks again from the next position. A ClassBench rule is
// exactly one box over the first five dimensions.
//
// Algorithms build over the dimensions some box restricts
// (RuleBoxes::used_dims()) and must not read the others from the keys.
//
// Priority. Rule priority is its position in the chain: lower wins. Boxes
// carry the position of the rule they came from.
//
// Lookup. For each key i of a burst: the smallest position p >= start[i]
// such that some box of position p contains key i, or kNoMatch. That is the
// linear walk's answer, always; tests check every algorithm against
// LinearClassifier.
//
// Two phases: build (may allocate, may fail with std::invalid_argument
// naming the reason) then lookup (const, noexcept, no allocation). The
// interface takes bursts (the ClassBench harness and benchmarks ask in
// bursts of up to 256 keys); the chain walk asks with one key per chain step
// (netfilter/chain_boxes.cpp), so there the virtual call is per packet and
// chain.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nfb {

/// The dimensions, in the order boxes and keys store them. The ClassBench
/// five (addresses, ports, protocol) come first.
enum Dim : uint8_t {
  kDimSrcIp,          // 32  the packet's addresses and ports as they are now
  kDimDstIp,          // 32
  kDimSrcPort,        // 16  TCP/UDP only (0 for other protocols)
  kDimDstPort,        // 16
  kDimProto,          //  8
  kDimInIface,        // 16  host interface id (0xffff: the hook has none)
  kDimOutIface,       // 16
  kDimCtState,        //  8  conntrack state as one number (chain_boxes.h)
  kDimCtProto,        //  8  the conntrack entry's original protocol
  kDimCtOrigSrc,      // 32  the entry's ORIGINAL tuple
  kDimCtOrigDst,      // 32
  kDimCtOrigSrcPort,  // 16
  kDimCtOrigDstPort,  // 16
  kDimCtReplSrc,      // 32  the entry's REPLY tuple
  kDimCtReplDst,      // 32
  kDimCtReplSrcPort,  // 16
  kDimCtReplDstPort,  // 16
  kDimMark,           // 32  skb mark (bits under one mask per chain)
  kDimConnmark,       // 32  the entry's mark (bits under one mask per chain)
  kDimLength,         // 16  IP total length
  kDimIcmp,           // 16  ICMP (type << 8) | code
  kDimTcpFlags,       //  8  TCP flags in SYN,ACK,RST,FIN,PSH,URG,ECE,CWR order (bit 7 first)
  kDimPkttype,        //  8  link-layer packet type (unicast, broadcast, multicast, otherhost)
  kDimSrcAddrtype,    //  8  the route type of the source address (RTN_*)
  kDimDstAddrtype,    //  8  ... of the destination address
  kDimCtDir,          //  8  0: the packet goes in the entry's ORIGINAL direction, 1: REPLY
  kDimCtExpire,       // 32  the entry's remaining lifetime in seconds
  kDimString,         // 32  -m string patterns in the packet: 0 none, id + 1 just one, 0xffffffff several
  kDims,
};
static_assert(kDims <= 32, "used-dimension sets are 32-bit masks");

/// Width of each dimension in bits (the numbers beside Dim above).
constexpr unsigned field_bits(Dim d) noexcept {
  constexpr unsigned kBits[kDims] = {32, 32, 16, 16, 8, 16, 16, 8, 8,  32, 32, 16, 16, 32,
                                     32, 16, 16, 32, 32, 16, 16, 8, 8,  8,  8,  8,  32, 32};
  return d < kDims ? kBits[d] : 0;
}
constexpr uint32_t field_max(Dim d) noexcept {
  return field_bits(d) == 32 ? 0xffffffffU : (1U << field_bits(d)) - 1U;
}
/// The dimensions a ClassBench set uses.
inline constexpr uint32_t kClassbenchDims =
    (1U << kDimSrcIp) | (1U << kDimDstIp) | (1U << kDimSrcPort) | (1U << kDimDstPort) | (1U << kDimProto);
const char* dim_name(Dim d) noexcept;

struct Range {
  uint32_t lo = 0;
  uint32_t hi = 0xffffffffU;
  constexpr bool contains(uint32_t v) const noexcept { return lo <= v && v <= hi; }
  friend constexpr bool operator==(const Range&, const Range&) noexcept = default;
};

/// One box: a rule (or a piece of one) as ranges. A dimension the rule does
/// not restrict spans its whole field.
struct Box {
  std::array<Range, kDims> r{};
  uint32_t position = 0;  // the rule's position in its chain (priority: lower wins)
  bool residual = false;  // the rule has matches outside the box: a candidate only

  /// The box that matches everything in every dimension.
  static Box any(uint32_t position) noexcept;
  bool contains(const std::array<uint32_t, kDims>& key) const noexcept {
    for (unsigned d = 0; d < kDims; ++d) {
      if (!r[d].contains(key[d])) return false;
    }
    return true;
  }
};

/// A packet as the classifiers see it: one value per dimension.
struct ClassifierKey {
  std::array<uint32_t, kDims> v{};
};

inline constexpr uint32_t kNoMatch = 0xffffffffU;

/// The rules a classifier is built from: boxes sorted by position (several
/// boxes may share one), and the number of rules (positions run 0..rules-1).
struct RuleBoxes {
  std::vector<Box> boxes;
  uint32_t rules = 0;
  /// Which dimensions any box restricts (bit d = dimension d): an algorithm
  /// may ignore the others.
  uint32_t used_dims() const noexcept;
};

class Classifier {
 public:
  virtual ~Classifier() = default;
  /// For i < keys.size(): result[i] = the smallest position >= start[i] of a
  /// box that contains keys[i], or kNoMatch. start may be empty (all 0).
  /// result.size() >= keys.size().
  virtual void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                      std::span<uint32_t> result) const noexcept = 0;
  /// Bytes of memory the built structure holds (what a benchmark reports).
  virtual size_t memory_bytes() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
};

/// The reference: every box in position order, first that contains the key.
/// O(boxes) per key.
class LinearClassifier final : public Classifier {
 public:
  explicit LinearClassifier(const RuleBoxes& rules);
  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override;
  size_t memory_bytes() const noexcept override;
  std::string_view name() const noexcept override { return "linear"; }

 private:
  std::vector<Box> boxes_;
  std::vector<uint32_t> first_box_;  // per position: index of its first box (boxes_.size() at the end)
};

}  // namespace nfb
