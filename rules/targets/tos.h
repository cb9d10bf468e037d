// TOS and DSCP: rewrite the IPv4 TOS byte. iptables' libxt_TOS and
// libxt_DSCP, the kernel's xt_DSCP.c (tos_tg, dscp_tg).
#pragma once

#include "rules/matches/dscp.h"
#include "rules/matches/tos.h"
#include "rules/module.h"

namespace nfb {

/// TOS: tos = (tos & ~mask) ^ value; every option reduces to this, which is
/// what --set-tos VALUE/MASK prints. A number without a mask takes mask
/// 0xff, a name (tos match's) mask 0x3f; --and-tos V is 0/~V, --or-tos V is
/// V/V, --xor-tos V is V/0. mangle table only. Later matches of the walk,
/// later hooks and the emitted frame see the new byte (header checksum
/// updated).
struct TosTarget {
  uint8_t value = 0;
  uint8_t mask = 0xff;
  friend bool operator==(const TosTarget&, const TosTarget&) = default;

  static constexpr const char* kName = "TOS";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Tos;
  enum : uint8_t { kSet, kAnd, kOr, kXor };
  static constexpr OptDef kOptions[] = {
      {"set-tos", kSet, 1, false}, {"and-tos", kAnd, 1, false}, {"or-tos", kOr, 1, false}, {"xor-tos", kXor, 1, false}};
  static TargetScope scope() noexcept { return {TableId::Mangle, kAllHooks}; }
  void parse(const ModuleOption& o) {
    if (o.seen != 0) o.fail(o.col, fmt::format("TOS: option \"{}\" cannot be combined with another", o.name));
    if (o.id == kSet) {
      TosMatch m;
      m.parse(o);  // the same VALUE[/MASK] or name
      value = m.value;
      mask = m.mask;
      return;
    }
    auto v = parse_c_uint(o.a, 255);
    if (!v) o.fail(o.acol, fmt::format("TOS: bad value \"{}\" (expected 0-255)", o.a));
    const auto b = static_cast<uint8_t>(*v);
    if (o.id == kAnd) value = 0, mask = static_cast<uint8_t>(~b);
    else if (o.id == kOr) value = b, mask = b;
    else value = b, mask = 0;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("TOS: one of --set-tos, --and-tos, --or-tos, --xor-tos is required");
  }
  void save(SaveLine& l) const { l.add("-j TOS --set-tos").add(fmt::format("0x{:02x}/0x{:02x}", value, mask)); }
  void list(ListText& t) const { t.put(" TOS set 0x{:02x}/0x{:02x}", value, mask); }
  uint8_t apply(uint8_t tos) const noexcept { return static_cast<uint8_t>((tos & ~mask) ^ value); }
};

/// DSCP: the upper six bits of the TOS byte set to `dscp`, the ECN bits
/// kept (--set-dscp N or --set-dscp-class NAME). mangle table only.
struct DscpTarget {
  uint8_t dscp = 0;
  friend bool operator==(const DscpTarget&, const DscpTarget&) = default;

  static constexpr const char* kName = "DSCP";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Tos;
  enum : uint8_t { kSet, kClass };
  static constexpr OptDef kOptions[] = {{"set-dscp", kSet, 1, false}, {"set-dscp-class", kClass, 1, false}};
  static TargetScope scope() noexcept { return {TableId::Mangle, kAllHooks}; }
  void parse(const ModuleOption& o) {
    o.conflict(o.id == kSet ? kClass : kSet, o.id == kSet ? "--set-dscp-class" : "--set-dscp");
    if (o.id == kSet) {
      auto v = parse_c_uint(o.a, 63);
      if (!v) o.fail(o.acol, fmt::format("DSCP: bad value \"{}\" for --set-dscp (expected 0-63)", o.a));
      dscp = static_cast<uint8_t>(*v);
    } else {
      const int v = dscp_class_value(o.a);
      if (v < 0) o.fail(o.acol, fmt::format("DSCP: unknown class \"{}\" (expected CS0-CS7, AF11-AF43, EF or BE)", o.a));
      dscp = static_cast<uint8_t>(v);
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("DSCP: --set-dscp or --set-dscp-class is required");
  }
  void save(SaveLine& l) const { l.add("-j DSCP --set-dscp").add(fmt::format("0x{:02x}", dscp)); }
  void list(ListText& t) const { t.put(" DSCP set 0x{:02x}", dscp); }
  uint8_t apply(uint8_t tos) const noexcept { return static_cast<uint8_t>((tos & 0x03) | (dscp << 2)); }
};

}  // namespace nfb
