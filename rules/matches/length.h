// -m length: the IP total length. iptables' libxt_length, the kernel's
// xt_length.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m length: IP total length in [min, max] (min may exceed max: never matches).
struct LengthMatch {
  uint16_t min = 0;
  uint16_t max = 65535;
  bool invert = false;
  friend bool operator==(const LengthMatch&, const LengthMatch&) = default;

  static constexpr const char* kName = "length";
  static constexpr OptDef kOptions[] = {{"length", 0, 1, true}};
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    size_t colon = a.find(':');
    auto one = [&](std::string_view s, uint32_t c, uint16_t dflt) -> uint16_t {
      if (s.empty() && colon != std::string::npos) return dflt;
      auto v = parse_c_uint(s, 65535);
      if (!v) o.fail(c, fmt::format("bad length \"{}\" (expected 0-65535, or MIN:MAX)", s));
      return static_cast<uint16_t>(*v);
    };
    min = one(std::string_view(a).substr(0, colon), o.acol, 0);
    max = colon == std::string::npos
              ? min
              : one(std::string_view(a).substr(colon + 1), o.acol + static_cast<uint32_t>(colon) + 1, 65535);
    invert = o.invert;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("length: option \"--length\" must be specified");
  }
  void save(SaveLine& l) const {
    l.add("-m length").inv(invert).add("--length");
    l.add(min == max ? std::to_string(min) : fmt::format("{}:{}", min, max));
  }
  void list(ListText& t) const { t.put(" length {}{}", invert ? "!" : "", format_range(min, max, ':')); }

  uint32_t vary() const noexcept { return kVaryLength; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const uint16_t len = ctx.key->l3_len;
    return match_result((len >= min && len <= max) != invert);
  }
  bool boxes(Alts& alts, const BoxRule&) const {
    restrict_all(alts, kDimLength, range_or_complement(min, max, 0xffff, invert));
    return true;
  }
};

}  // namespace nfb
