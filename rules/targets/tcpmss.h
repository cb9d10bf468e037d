// TCPMSS: lowers the MSS option of TCP SYNs. iptables' libxt_TCPMSS, the
// kernel's xt_TCPMSS. The usual PPPoE/VPN/overlay fix:
// `-t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`.
#pragma once

#include "rules/module.h"

namespace nfb {

/// TCPMSS --set-mss N, or --clamp-mss-to-pmtu (N = path MTU - 40: the
/// output route's MTU, at most the MTU of the route back to the source).
///
/// Kernel (tcpmss_tg4): on a later fragment nothing; a TCP header shorter
/// than 20 bytes or than its data offset drops the packet (NF_DROP, after
/// the rule counted it); an MSS option larger than N is lowered to N (never
/// raised), TCP checksum updated; without an MSS option and without payload
/// the kernel inserts one of min(N, 536). Then the walk goes on.
/// Load-time checks: -p tcp, a tcp match with SYN in its compared flags
/// (--syn, --tcp-flags ... SYN) and not negated; --clamp-mss-to-pmtu only
/// in FORWARD, OUTPUT and POSTROUTING.
struct TcpmssTarget {
  static constexpr uint16_t kClamp = 0xffff;  // --clamp-mss-to-pmtu
  uint16_t mss = kClamp;
  friend bool operator==(const TcpmssTarget&, const TcpmssTarget&) = default;

  static constexpr const char* kName = "TCPMSS";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Tcpmss;
  enum : uint8_t { kSet, kClampOpt };
  static constexpr OptDef kOptions[] = {{"set-mss", kSet, 1, false}, {"clamp-mss-to-pmtu", kClampOpt, 0, false}};
  TargetScope scope() const noexcept {
    if (mss != kClamp) return {};
    return {std::nullopt, hook_bit(Hook::Forward) | hook_bit(Hook::Output) | hook_bit(Hook::Postrouting)};
  }
  void parse(const ModuleOption& o) {
    // Both may be given: the last one counts [kernel].
    if (o.id == kSet) {
      auto v = parse_c_uint(o.a, 65534);
      if (!v) o.fail(o.acol, fmt::format("TCPMSS: bad --set-mss \"{}\" (expected 0-65534)", o.a));
      mss = static_cast<uint16_t>(*v);
    } else {
      mss = kClamp;
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("TCPMSS: --set-mss or --clamp-mss-to-pmtu is required");
    c.need_protocol(kProtoTcp, "tcp");
    if (!c.tcp_syn_match)
      c.fail("TCPMSS: only works on TCP SYN packets: the rule needs --syn or --tcp-flags comparing SYN (the kernel "
             "refuses it otherwise)");
  }
  void save(SaveLine& l) const {
    l.add("-j TCPMSS");
    if (mss == kClamp) l.add("--clamp-mss-to-pmtu");
    else l.add("--set-mss").add(std::to_string(mss));
  }
  void list(ListText& t) const {
    if (mss == kClamp) t.add(" TCPMSS clamp to PMTU");
    else t.put(" TCPMSS set {}", mss);
  }
};

}  // namespace nfb
