// -m state --state. iptables' libxt_state, the kernel's xt_state.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m state (INVALID, ESTABLISHED, RELATED, NEW, UNTRACKED only). The
/// packet's state: INVALID without an entry, UNTRACKED when untracked, else
/// its NEW/ESTABLISHED/RELATED; SNAT/DNAT are never seen.
struct StateMatch {
  uint8_t states = 0;  // CtStateBit set
  bool invert = false;
  friend bool operator==(const StateMatch&, const StateMatch&) = default;

  static constexpr const char* kName = "state";
  static constexpr OptDef kOptions[] = {{"state", 0, 1, true}};
  void parse(const ModuleOption& o) {
    invert = o.invert;
    uint32_t c = o.acol;
    for (std::string_view s : split(o.a, ',')) {
      auto st = parse_ct_state(s);
      if (!st || *st == kCtSnat || *st == kCtDnat)
        o.fail(c, fmt::format("bad state \"{}\" (expected INVALID, ESTABLISHED, NEW, RELATED or UNTRACKED)", s));
      states = static_cast<uint8_t>(states | *st);
      c += static_cast<uint32_t>(s.size()) + 1;
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("state: option \"--state\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-m state").inv(invert).add("--state").add(format_ct_states(states)); }
  void list(ListText& t) const { t.put(" {}state {}", invert ? "! " : "", format_ct_states(states)); }

  uint32_t vary() const noexcept { return kVaryCtState; }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const auto& ct = ctx.ct;
    uint8_t bit = kCtInvalid;
    if ((ct.state_bits & kCtUntracked) != 0 && !ct.present) {
      bit = kCtUntracked;
    } else if (ct.present) {
      bit = static_cast<uint8_t>(ct.state_bits & (kCtNew | kCtEstablished | kCtRelated));
    }
    return match_result(((states & bit) != 0) != invert);
  }

  bool boxes(Alts& alts, const BoxRule&) const {
    uint32_t v = ct_values_of(states);
    if (invert) v = kCtValuesAll & ~v;
    restrict_ct_values(alts, v);
    return true;
  }
};

}  // namespace nfb
