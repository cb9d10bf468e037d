// Protocol-agnostic port ranges: ClassBench 5-tuples only. iptables has no
// such match.
#pragma once

#include <span>

#include "rules/module.h"

namespace nfb {

/// The L4 ports whatever the protocol (0 for protocols without ports), as
/// ClassBench matches them. The iptables-save reader never loads it; the
/// writers refuse it.
struct PortsMatch {
  PortRange sport, dport;
  friend bool operator==(const PortsMatch&, const PortsMatch&) = default;

  static constexpr const char* kName = "ports";
  static constexpr bool kIptables = false;  // not an iptables module: the reader does not offer it
  static constexpr std::span<const OptDef> kOptions{};  // none
  void parse(const ModuleOption&) {}
  void check(const ModuleCheck&) const {}
  static constexpr const char* kUnwritable =
      "a protocol-agnostic port match (ClassBench input) has no iptables form; "
      "give the rule a protocol and a tcp/udp match instead";
  void save(SaveLine& l) const { l.fail(kUnwritable); }
  void list(ListText& t) const { t.fail(kUnwritable); }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    return match_result(sport.contains(ctx.key->src_port) && dport.contains(ctx.key->dst_port));
  }
};

}  // namespace nfb
