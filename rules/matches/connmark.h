// -m connmark: the conntrack entry's mark. iptables' libxt_connmark, the
// kernel's xt_connmark.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m connmark: (conntrack mark & mask) == value, xor invert. No entry: no
/// match, even inverted [kernel].
struct ConnmarkMatch {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  bool invert = false;
  friend bool operator==(const ConnmarkMatch&, const ConnmarkMatch&) = default;

  static constexpr const char* kName = "connmark";
  static constexpr OptDef kOptions[] = {{"mark", 0, 1, true}};
  void parse(const ModuleOption& o) {
    std::tie(value, mask) = o.line.parse_mark_value(o.a, o.acol, o.name);
    invert = o.invert;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("connmark: option \"--mark\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-m connmark").inv(invert).add("--mark").add(format_mark_mask(value, mask)); }
  void list(ListText& t) const { t.put(" connmark match {} {}", invert ? "!" : "", format_mark_mask(value, mask)); }

  uint32_t vary() const noexcept { return kVaryConnmark | kVaryCtState; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    return ctx.ct.present ? match_result(((ctx.ct.ctmark & mask) == value) != invert) : MatchResult::NoMatch;
  }
  bool boxes(Alts& alts, const BoxRule& r) const {
    restrict_ct_values(alts, kCtValuesEntry);  // no entry: no match, inverted or not
    return restrict_masked(alts, kDimConnmark, value, mask, invert, r.connmark_mask);
  }
};

}  // namespace nfb
