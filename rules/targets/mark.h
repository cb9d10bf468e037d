// MARK: set the skb mark. iptables' libxt_MARK, the kernel's xt_mark.
#pragma once

#include "rules/module.h"

namespace nfb {

/// The -L words of a --set-xmark value/mask (MARK and CONNMARK), the first
/// that fits: and (value 0), or (value == mask), xor (mask 0), set (mask
/// all ones), else xset value/mask.
inline std::string format_xmark(uint32_t value, uint32_t mask) {
  if (value == 0) return "and " + format_hex(~mask);
  if (value == mask) return "or " + format_hex(value);
  if (mask == 0) return "xor " + format_hex(value);
  if (mask == 0xffffffffU) return "set " + format_hex(value);
  return fmt::format("xset 0x{:x}/0x{:x}", value, mask);
}

/// MARK: mark = (mark & ~mask) ^ value (every MARK option reduces to this,
/// which is what --set-xmark prints).
struct MarkTarget {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  friend bool operator==(const MarkTarget&, const MarkTarget&) = default;

  static constexpr const char* kName = "MARK";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Mark;
  enum : uint8_t { kSetX, kSet, kAnd, kOr, kXor };
  static constexpr OptDef kOptions[] = {
      {"set-xmark", kSetX, 1, false}, {"set-mark", kSet, 1, false}, {"and-mark", kAnd, 1, false},
      {"or-mark", kOr, 1, false},     {"xor-mark", kXor, 1, false},
  };
  void parse(const ModuleOption& o) {
    if (o.seen != 0)
      o.fail(o.col, fmt::format("{}: option \"{}\" cannot be combined with an earlier operation option", o.module,
                                o.name));
    switch (o.id) {
      case kSetX: std::tie(value, mask) = o.line.parse_mark_value(o.a, o.acol, o.name); break;
      case kSet: {
        auto [v, m] = o.line.parse_mark_value(o.a, o.acol, o.name);
        value = v;
        mask = m | v;
        break;
      }
      case kAnd: value = 0; mask = ~o.line.parse_u32(o.a, o.acol, "mark"); break;
      case kOr: value = mask = o.line.parse_u32(o.a, o.acol, "mark"); break;
      case kXor: value = o.line.parse_u32(o.a, o.acol, "mark"); mask = 0; break;
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0)
      c.fail("MARK: one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark is required");
  }
  void save(SaveLine& l) const { l.add("-j MARK --set-xmark").add(fmt::format("0x{:x}/0x{:x}", value, mask)); }
  void list(ListText& t) const { t.put(" MARK {}", format_xmark(value, mask)); }

  /// The new skb mark.
  uint32_t apply(uint32_t mark) const noexcept { return (mark & ~mask) ^ value; }
};

}  // namespace nfb
