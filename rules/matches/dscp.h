// -m dscp: the DSCP (upper six bits of the TOS byte). iptables' libxt_dscp,
// the kernel's xt_dscp.c dscp_mt.
#pragma once

#include "rules/module.h"

namespace nfb {

/// The DSCP of a class name (CS0-CS7, AF11-AF43, EF, BE; any case), or
/// -1. Shared with the DSCP target.
inline int dscp_class_value(std::string_view name) noexcept {
  struct Named {
    const char* name;
    uint8_t value;
  };
  static constexpr Named kClasses[] = {
      {"CS0", 0x00},  {"CS1", 0x08},  {"CS2", 0x10},  {"CS3", 0x18},  {"CS4", 0x20},  {"CS5", 0x28},
      {"CS6", 0x30},  {"CS7", 0x38},  {"BE", 0x00},   {"AF11", 0x0a}, {"AF12", 0x0c}, {"AF13", 0x0e},
      {"AF21", 0x12}, {"AF22", 0x14}, {"AF23", 0x16}, {"AF31", 0x1a}, {"AF32", 0x1c}, {"AF33", 0x1e},
      {"AF41", 0x22}, {"AF42", 0x24}, {"AF43", 0x26}, {"EF", 0x2e},
  };
  for (const Named& c : kClasses) {
    if (iequals(name, c.name)) return c.value;
  }
  return -1;
}

/// -m dscp: (TOS >> 2) == dscp, xor `!` (--dscp N or --dscp-class NAME).
struct DscpMatch {
  uint8_t dscp = 0;
  bool invert = false;
  friend bool operator==(const DscpMatch&, const DscpMatch&) = default;

  static constexpr const char* kName = "dscp";
  enum : uint8_t { kDscp, kClass };
  static constexpr OptDef kOptions[] = {{"dscp", kDscp, 1, true}, {"dscp-class", kClass, 1, true}};
  void parse(const ModuleOption& o) {
    o.conflict(o.id == kDscp ? kClass : kDscp, o.id == kDscp ? "--dscp-class" : "--dscp");
    invert = o.invert;
    if (o.id == kDscp) {
      auto v = parse_c_uint(o.a, 63);
      if (!v) o.fail(o.acol, fmt::format("dscp: bad value \"{}\" for --dscp (expected 0-63)", o.a));
      dscp = static_cast<uint8_t>(*v);
    } else {
      const int v = dscp_class_value(o.a);
      if (v < 0) o.fail(o.acol, fmt::format("dscp: unknown class \"{}\" (expected CS0-CS7, AF11-AF43, EF or BE)", o.a));
      dscp = static_cast<uint8_t>(v);
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("dscp: --dscp or --dscp-class is required");
  }
  void save(SaveLine& l) const { l.add("-m dscp").inv(invert).add("--dscp").add(fmt::format("0x{:02x}", dscp)); }
  void list(ListText& t) const { t.put(" DSCP match {}0x{:02x}", invert ? "!" : "", dscp); }

  uint32_t vary() const noexcept { return kVaryIpHeader; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    return match_result(((packet_tos(ctx) >> 2) == dscp) != invert);
  }
};

}  // namespace nfb
