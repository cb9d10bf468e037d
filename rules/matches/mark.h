// -m mark: the skb mark. iptables' libxt_mark, the kernel's xt_mark.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m mark: (skb mark & mask) == value, xor invert; the mark as set so far,
/// MARK targets earlier in the walk included.
struct MarkMatch {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  bool invert = false;
  friend bool operator==(const MarkMatch&, const MarkMatch&) = default;

  static constexpr const char* kName = "mark";
  static constexpr OptDef kOptions[] = {{"mark", 0, 1, true}};
  void parse(const ModuleOption& o) {
    std::tie(value, mask) = o.line.parse_mark_value(o.a, o.acol, o.name);
    invert = o.invert;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("mark: option \"--mark\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-m mark").inv(invert).add("--mark").add(format_mark_mask(value, mask)); }
  void list(ListText& t) const { t.put(" mark match {}{}", invert ? "! " : "", format_mark_mask(value, mask)); }

  uint32_t vary() const noexcept { return kVaryMark; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    return match_result(((ctx.mark & mask) == value) != invert);
  }
  /// One value of the mark dimension (or its complement) when the mask is
  /// the chain's mark mask.
  bool boxes(Alts& alts, const BoxRule& r) const {
    return restrict_masked(alts, kDimMark, value, mask, invert, r.mark_mask);
  }
};

}  // namespace nfb
