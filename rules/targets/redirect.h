// REDIRECT: DNAT to the host itself. iptables' libipt_REDIRECT, the
// kernel's xt_REDIRECT.
#pragma once

#include "rules/targets/nat.h"

namespace nfb {

/// REDIRECT: nat PREROUTING and OUTPUT.
struct RedirectTarget {
  bool has_ports = false;
  PortRange ports{0, 0};
  bool random = false;
  friend bool operator==(const RedirectTarget&, const RedirectTarget&) = default;

  static constexpr const char* kName = "REDIRECT";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Nat;
  static TargetScope scope() noexcept {
    return {TableId::Nat, static_cast<HookMask>(hook_bit(Hook::Prerouting) | hook_bit(Hook::Output))};
  }
  enum : uint8_t { kTo, kRandom };
  static constexpr OptDef kOptions[] = {{"to-ports", kTo, 1, false}, {"random", kRandom, 0, false}};
  void parse(const ModuleOption& o) {
    if (o.id == kTo) {
      ports = o.line.parse_nat_ports(o.a, o.acol);
      has_ports = true;
    } else {
      random = true;
    }
  }
  void check(const ModuleCheck& c) const {
    if (has_ports && !nat_ports_allowed(c)) c.fail("REDIRECT --to-ports needs -p tcp, udp, sctp, dccp or icmp");
  }
  void save(SaveLine& l) const {
    l.add("-j REDIRECT");
    if (has_ports) l.add("--to-ports").add(format_range(ports.lo, ports.hi, '-'));
    if (random) l.add("--random");
  }
  void list(ListText& t) const {
    if (has_ports) t.put(" redir ports {}", format_range(ports.lo, ports.hi, '-'));
    if (random) t.add(" random");
  }
};

}  // namespace nfb
