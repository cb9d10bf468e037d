// -m tos: the IPv4 TOS byte under a mask. iptables' libxt_tos (revision 1),
// the kernel's xt_dscp.c tos_mt.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m tos: (TOS & mask) == value, xor `!`. A number without a mask takes
/// mask 0xff; the RFC 1349 names (Minimize-Delay 0x10, Maximize-Throughput
/// 0x08, Maximize-Reliability 0x04, Minimize-Cost 0x02, Normal-Service 0)
/// take mask 0x3f, so they ignore the ECN bits.
struct TosMatch {
  uint8_t value = 0;
  uint8_t mask = 0xff;
  bool invert = false;
  friend bool operator==(const TosMatch&, const TosMatch&) = default;

  static constexpr const char* kName = "tos";
  static constexpr OptDef kOptions[] = {{"tos", 0, 1, true}};
  void parse(const ModuleOption& o) {
    invert = o.invert;
    struct Named {
      const char* name;
      uint8_t value;
    };
    static constexpr Named kNames[] = {{"Minimize-Delay", 0x10}, {"Maximize-Throughput", 0x08},
                                       {"Maximize-Reliability", 0x04}, {"Minimize-Cost", 0x02},
                                       {"Normal-Service", 0x00}};
    const std::string_view a = o.a;
    const size_t slash = a.find('/');
    auto v = parse_c_uint(a.substr(0, slash), 255);
    if (v) {
      value = static_cast<uint8_t>(*v);
      mask = 0xff;
      if (slash != std::string_view::npos) {
        auto m = parse_c_uint(a.substr(slash + 1), 255);
        if (!m) o.fail(o.acol, fmt::format("tos: bad mask in \"{}\" (expected 0-255)", a));
        mask = static_cast<uint8_t>(*m);
      }
      return;
    }
    for (const Named& n : kNames) {
      if (iequals(a, n.name)) {
        value = n.value;
        mask = 0x3f;
        return;
      }
    }
    o.fail(o.acol, fmt::format("tos: bad value \"{}\" (expected 0-255[/MASK] or Minimize-Delay, "
                               "Maximize-Throughput, Maximize-Reliability, Minimize-Cost, Normal-Service)", a));
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("tos: option \"--tos\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-m tos").inv(invert).add("--tos").add(fmt::format("0x{:02x}/0x{:02x}", value, mask)); }
  void list(ListText& t) const { t.put(" tos match{}0x{:02x}/0x{:02x}", invert ? "!" : "", value, mask); }

  uint32_t vary() const noexcept { return kVaryIpHeader; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    return match_result(((packet_tos(ctx) & mask) == value) != invert);
  }
};

}  // namespace nfb
