// MASQUERADE: SNAT to the outgoing interface's address. iptables'
// libipt_MASQUERADE, the kernel's xt_MASQUERADE.
#pragma once

#include "rules/targets/nat.h"

namespace nfb {

/// MASQUERADE: nat POSTROUTING only.
struct MasqueradeTarget {
  bool has_ports = false;
  PortRange ports{0, 0};
  bool random = false;
  bool random_fully = false;
  friend bool operator==(const MasqueradeTarget&, const MasqueradeTarget&) = default;

  static constexpr const char* kName = "MASQUERADE";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Nat;
  static TargetScope scope() noexcept { return {TableId::Nat, hook_bit(Hook::Postrouting)}; }
  enum : uint8_t { kTo, kRandom, kRandomFully };
  static constexpr OptDef kOptions[] = {
      {"to-ports", kTo, 1, false}, {"random", kRandom, 0, false}, {"random-fully", kRandomFully, 0, false},
  };
  void parse(const ModuleOption& o) {
    if (o.id == kTo) {
      ports = o.line.parse_nat_ports(o.a, o.acol);
      has_ports = true;
    } else if (o.id == kRandom) {
      random = true;
    } else {
      random_fully = true;
    }
  }
  void check(const ModuleCheck& c) const {
    if (has_ports && !nat_ports_allowed(c)) c.fail("MASQUERADE --to-ports needs -p tcp, udp, sctp, dccp or icmp");
  }
  void save(SaveLine& l) const {
    l.add("-j MASQUERADE");
    if (has_ports) l.add("--to-ports").add(format_range(ports.lo, ports.hi, '-'));
    if (random) l.add("--random");
    if (random_fully) l.add("--random-fully");
  }
  void list(ListText& t) const {
    if (has_ports) t.put(" masq ports: {}", format_range(ports.lo, ports.hi, '-'));
    if (random) t.add(" random");
    if (random_fully) t.add(" random-fully");
  }
};

}  // namespace nfb
