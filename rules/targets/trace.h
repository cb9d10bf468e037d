// TRACE: log the packet's way through the rules (raw table). iptables'
// libxt_TRACE, the kernel's xt_TRACE.
#pragma once

#include <span>

#include "rules/module.h"

namespace nfb {

struct TraceTarget {
  friend bool operator==(const TraceTarget&, const TraceTarget&) = default;
  static constexpr const char* kName = "TRACE";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Trace;
  static TargetScope scope() noexcept { return {TableId::Raw, kAllHooks}; }
  static constexpr std::span<const OptDef> kOptions{};  // none
  void parse(const ModuleOption&) {}
  void check(const ModuleCheck&) const {}
  void save(SaveLine& l) const { l.add("-j TRACE"); }
  void list(ListText&) const {}
};

}  // namespace nfb
