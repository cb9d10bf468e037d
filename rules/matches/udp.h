// -m udp (loaded by -p udp): ports. iptables' libxt_udp, the kernel's
// xt_tcpudp.
#pragma once

#include "rules/matches/tcp.h"
#include "rules/module.h"

namespace nfb {

/// -m udp. Needs the rule's protocol to be udp. A non-first fragment never
/// matches; a header shorter than 8 bytes: HOTDROP [kernel].
struct UdpMatch {
  PortRange sport, dport;
  bool sport_invert = false;
  bool dport_invert = false;
  friend bool operator==(const UdpMatch&, const UdpMatch&) = default;

  static constexpr const char* kName = "udp";
  enum : uint8_t { kSport, kDport };
  static constexpr OptDef kOptions[] = {
      {"source-port", kSport, 1, true}, {"sport", kSport, 1, true},
      {"destination-port", kDport, 1, true}, {"dport", kDport, 1, true},
  };
  void parse(const ModuleOption& o) {
    if (o.id == kSport) {
      sport = o.line.parse_l4_port_range(o.a, o.acol, ServiceScope::Any);
      sport_invert = o.invert;
    } else {
      dport = o.line.parse_l4_port_range(o.a, o.acol, ServiceScope::Any);
      dport_invert = o.invert;
    }
  }
  void check(const ModuleCheck& c) const { c.need_protocol(kProtoUdp, "udp"); }

  void save(SaveLine& l) const {
    l.add("-m udp");
    if (!sport.is_any()) l.inv(sport_invert).add("--sport").add(format_range(sport.lo, sport.hi, ':'));
    if (!dport.is_any()) l.inv(dport_invert).add("--dport").add(format_range(dport.lo, dport.hi, ':'));
  }
  void list(ListText& t) const {
    t.add(" udp");
    TcpMatch::list_ports(t, "spt", sport, sport_invert);
    TcpMatch::list_ports(t, "dpt", dport, dport_invert);
  }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    constexpr uint32_t kHeaderLen = 8;
    if (ctx.key->is_later_fragment()) return MatchResult::NoMatch;
    uint16_t sp = 0, dp = 0;
    if (!l4_ports(ctx, kHeaderLen, sp, dp)) return MatchResult::Hotdrop;
    return match_result(sport.contains(sp) != sport_invert && dport.contains(dp) != dport_invert);
  }

  bool boxes(Alts& alts, const BoxRule& r) const {
    if (!r.udp()) return false;
    TcpMatch::restrict_ports(alts, sport, sport_invert, dport, dport_invert);
    return true;
  }
};

}  // namespace nfb
