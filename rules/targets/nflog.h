// NFLOG: hands the packet to nfnetlink_log (ulogd, tcpdump -i nflog:N).
// iptables' libxt_NFLOG, the kernel's xt_NFLOG. The walk reports it as a
// log event and goes on, as LOG.
#pragma once

#include "rules/module.h"

namespace nfb {

/// NFLOG. Group 0..65535, prefix at most 63 bytes (NFLOG truncates longer
/// ones as iptables does), size (--nflog-size) or the old --nflog-range
/// (kept and printed, never used by the kernel), threshold (0, the
/// default, is not printed).
struct NflogTarget {
  std::string prefix;
  uint16_t group = 0;
  uint16_t threshold = 0;  // 0: not given
  uint32_t size = 0;
  bool has_size = false;   // --nflog-size
  bool has_range = false;  // --nflog-range (prints as given)
  static constexpr size_t kMaxPrefix = 63;
  friend bool operator==(const NflogTarget&, const NflogTarget&) = default;

  static constexpr const char* kName = "NFLOG";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Log;
  enum : uint8_t { kGroup, kPrefix, kRange, kSize, kThreshold };
  static constexpr OptDef kOptions[] = {
      {"nflog-group", kGroup, 1, false}, {"nflog-prefix", kPrefix, 1, false}, {"nflog-range", kRange, 1, false},
      {"nflog-size", kSize, 1, false},   {"nflog-threshold", kThreshold, 1, false},
  };
  void parse(const ModuleOption& o) {
    switch (o.id) {
      case kGroup: {
        auto v = parse_c_uint(o.a, 65535);
        if (!v) o.fail(o.acol, fmt::format("NFLOG: bad --nflog-group \"{}\" (expected 0-65535)", o.a));
        group = static_cast<uint16_t>(*v);
        break;
      }
      case kPrefix:
        if (o.a.empty()) o.fail(o.acol, "NFLOG: --nflog-prefix must not be empty");
        prefix = o.a.substr(0, kMaxPrefix);
        break;
      case kRange:
      case kSize:
        o.conflict(o.id == kRange ? kSize : kRange, o.id == kRange ? "--nflog-size" : "--nflog-range");
        size = o.line.parse_u32(o.a, o.acol, o.id == kRange ? "--nflog-range" : "--nflog-size");
        (o.id == kRange ? has_range : has_size) = true;
        break;
      case kThreshold: {
        auto v = parse_c_uint(o.a, 65535);
        if (!v) o.fail(o.acol, fmt::format("NFLOG: bad --nflog-threshold \"{}\" (expected 0-65535)", o.a));
        threshold = static_cast<uint16_t>(*v);
        break;
      }
    }
  }
  void check(const ModuleCheck&) const {}
  void save(SaveLine& l) const {
    l.add("-j NFLOG");
    if (!prefix.empty()) l.add("--nflog-prefix").add(save_string(prefix));
    if (group != 0) l.add("--nflog-group").add(std::to_string(group));
    if (has_range) l.add("--nflog-range").add(std::to_string(size));
    if (has_size) l.add("--nflog-size").add(std::to_string(size));
    if (threshold != 0) l.add("--nflog-threshold").add(std::to_string(threshold));
  }
  void list(ListText& t) const {
    if (!prefix.empty()) t.put(" nflog-prefix {}", save_string(prefix));
    if (group != 0) t.put(" nflog-group {}", group);
    if (has_range) t.put(" nflog-range {}", size);
    if (has_size) t.put(" nflog-size {}", size);
    if (threshold != 0) t.put(" nflog-threshold {}", threshold);
  }
};

}  // namespace nfb
