// NOTRACK: leave the packet untracked (raw table). iptables' libxt_NOTRACK;
// the kernel stores it as a CT target with --notrack.
#pragma once

#include <span>

#include "rules/module.h"

namespace nfb {

struct NotrackTarget {
  friend bool operator==(const NotrackTarget&, const NotrackTarget&) = default;
  static constexpr const char* kName = "NOTRACK";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Notrack;
  static TargetScope scope() noexcept { return {TableId::Raw, kAllHooks}; }
  static constexpr std::span<const OptDef> kOptions{};  // none
  void parse(const ModuleOption&) {}
  void check(const ModuleCheck&) const {}
  void save(SaveLine& l) const { l.add("-j NOTRACK"); }
  void list(ListText& t) const { t.add(" NOTRACK"); }
  /// The -L target column: the kernel keeps NOTRACK as a CT target.
  static constexpr const char* kListName = "CT";
};

}  // namespace nfb
