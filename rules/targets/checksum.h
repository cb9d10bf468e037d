// CHECKSUM --checksum-fill: computes a checksum left to the NIC. iptables'
// libxt_CHECKSUM, the kernel's xt_CHECKSUM.
#pragma once

#include "rules/module.h"

namespace nfb {

/// CHECKSUM. The kernel fills the checksum only of a packet whose
/// checksum is still to be computed (CHECKSUM_PARTIAL: sent by this host,
/// or by a local VM through a tap); every packet the pipeline handles
/// arrived with its checksum complete, so the target only counts and the
/// walk goes on. mangle table only.
struct ChecksumTarget {
  friend bool operator==(const ChecksumTarget&, const ChecksumTarget&) = default;

  static constexpr const char* kName = "CHECKSUM";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::None;
  static constexpr OptDef kOptions[] = {{"checksum-fill", 0, 0, false}};
  static TargetScope scope() noexcept { return {TableId::Mangle, kAllHooks}; }
  void parse(const ModuleOption&) {}
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("CHECKSUM: option \"--checksum-fill\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-j CHECKSUM --checksum-fill"); }
  void list(ListText& t) const { t.add(" CHECKSUM fill"); }
};

}  // namespace nfb
