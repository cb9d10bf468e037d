// REJECT: drop with an ICMP error or a TCP reset. iptables' libipt_REJECT,
// the kernel's ipt_REJECT.
#pragma once

#include "rules/module.h"

namespace nfb {

/// REJECT --reject-with (the kernel's ipt_reject_with numbering). Filter
/// table, INPUT FORWARD OUTPUT; tcp-reset needs -p tcp.
struct RejectTarget {
  enum class With : uint8_t {
    IcmpNetUnreachable, IcmpHostUnreachable, IcmpProtoUnreachable, IcmpPortUnreachable,
    IcmpEchoReply /* unused by IPv4 REJECT */, IcmpNetProhibited, IcmpHostProhibited,
    TcpReset, IcmpAdminProhibited,
  };
  With with = With::IcmpPortUnreachable;
  friend bool operator==(const RejectTarget&, const RejectTarget&) = default;

  static constexpr const char* kName = "REJECT";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Reject;
  static TargetScope scope() noexcept {
    return {TableId::Filter,
            static_cast<HookMask>(hook_bit(Hook::Input) | hook_bit(Hook::Forward) | hook_bit(Hook::Output))};
  }
  static constexpr OptDef kOptions[] = {{"reject-with", 0, 1, false}};

  struct Name {
    const char* name;
    const char* alias;
    With with;
  };
  // iptables' order: the first entry whose name or alias starts with the
  // argument (case-insensitive) wins.
  static constexpr Name kNames[] = {
      {"icmp-net-unreachable", "net-unreach", With::IcmpNetUnreachable},
      {"icmp-host-unreachable", "host-unreach", With::IcmpHostUnreachable},
      {"icmp-proto-unreachable", "proto-unreach", With::IcmpProtoUnreachable},
      {"icmp-port-unreachable", "port-unreach", With::IcmpPortUnreachable},
      {"icmp-net-prohibited", "net-prohib", With::IcmpNetProhibited},
      {"icmp-host-prohibited", "host-prohib", With::IcmpHostProhibited},
      {"tcp-reset", "tcp-rst", With::TcpReset},
      {"icmp-admin-prohibited", "admin-prohib", With::IcmpAdminProhibited},
  };
  /// "icmp-port-unreachable", ...
  static const char* with_name(With w) noexcept {
    switch (w) {
      case With::IcmpNetUnreachable: return "icmp-net-unreachable";
      case With::IcmpHostUnreachable: return "icmp-host-unreachable";
      case With::IcmpProtoUnreachable: return "icmp-proto-unreachable";
      case With::IcmpPortUnreachable: return "icmp-port-unreachable";
      case With::IcmpEchoReply: return "icmp-echo-reply";
      case With::IcmpNetProhibited: return "icmp-net-prohibited";
      case With::IcmpHostProhibited: return "icmp-host-prohibited";
      case With::TcpReset: return "tcp-reset";
      case With::IcmpAdminProhibited: return "icmp-admin-prohibited";
    }
    return "?";
  }

  void parse(const ModuleOption& o) {
    const Name* found = nullptr;
    for (const Name& n : kNames) {
      if (iprefix(o.a, n.name) || iprefix(o.a, n.alias)) {
        found = &n;
        break;
      }
    }
    if (!found)
      o.fail(o.acol, fmt::format("unknown reject type \"{}\" (expected icmp-net-unreachable, "
                                 "icmp-host-unreachable, icmp-port-unreachable, icmp-proto-unreachable, "
                                 "icmp-net-prohibited, icmp-host-prohibited, icmp-admin-prohibited or tcp-reset)",
                                 o.a));
    with = found->with;
  }
  void check(const ModuleCheck& c) const {
    if (with == With::TcpReset && (c.protocol != kProtoTcp || c.protocol_invert))
      c.fail("REJECT --reject-with tcp-reset needs -p tcp (not negated)");
  }
  void save(SaveLine& l) const { l.add("-j REJECT --reject-with").add(with_name(with)); }
  void list(ListText& t) const { t.put(" reject-with {}", with_name(with)); }
};

/// RejectTarget::with_name().
inline const char* reject_with_name(RejectTarget::With w) noexcept { return RejectTarget::with_name(w); }

}  // namespace nfb
