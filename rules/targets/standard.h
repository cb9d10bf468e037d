// The standard targets: no target, ACCEPT, DROP, RETURN, a jump (-j CHAIN)
// and a goto (-g CHAIN). iptables' libxt_standard; the reader resolves
// them itself (a chain name wins over a target of the same name).
#pragma once

#include "rules/module.h"

namespace nfb {

/// A rule without -j/-g: it only counts.
struct NoTarget {
  friend bool operator==(const NoTarget&, const NoTarget&) = default;
  static constexpr const char* kName = "";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::None;
  void save(SaveLine&) const {}
  void list(ListText&) const {}
};

struct AcceptTarget {
  friend bool operator==(const AcceptTarget&, const AcceptTarget&) = default;
  static constexpr const char* kName = "ACCEPT";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Accept;
  void save(SaveLine& l) const { l.add("-j ACCEPT"); }
  void list(ListText&) const {}
};

struct DropTarget {
  friend bool operator==(const DropTarget&, const DropTarget&) = default;
  static constexpr const char* kName = "DROP";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Drop;
  void save(SaveLine& l) const { l.add("-j DROP"); }
  void list(ListText&) const {}
};

struct ReturnTarget {
  friend bool operator==(const ReturnTarget&, const ReturnTarget&) = default;
  static constexpr const char* kName = "RETURN";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Return;
  void save(SaveLine& l) const { l.add("-j RETURN"); }
  void list(ListText&) const {}
};

/// -j CHAIN: push a return point and enter chain `index` of the same table.
/// Not terminal: the walk may come back.
struct JumpTarget {
  std::string chain;
  uint32_t index = 0;
  friend bool operator==(const JumpTarget&, const JumpTarget&) = default;
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Jump;
  void save(SaveLine& l) const { l.add("-j").add(chain); }
  void list(ListText&) const {}
};

/// -g CHAIN: enter chain `index` without a return point.
struct GotoTarget {
  std::string chain;
  uint32_t index = 0;
  friend bool operator==(const GotoTarget&, const GotoTarget&) = default;
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Goto;
  void save(SaveLine& l) const { l.add("-g").add(chain); }
  void list(ListText&) const {}
};

}  // namespace nfb
