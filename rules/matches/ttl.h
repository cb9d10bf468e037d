// -m ttl: the IP TTL. iptables' libxt_ttl, the kernel's xt_ttl (ipt_ttl).
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m ttl: the TTL of the header as it is at this hook (a forwarded packet
/// has lost one before FORWARD) ==, !=, < or > a value. Only --ttl-eq
/// (alias --ttl) takes `!`, which makes it !=.
struct TtlMatch {
  enum class Mode : uint8_t { Eq, Ne, Lt, Gt };
  Mode mode = Mode::Eq;
  uint8_t value = 0;
  friend bool operator==(const TtlMatch&, const TtlMatch&) = default;

  static constexpr const char* kName = "ttl";
  enum : uint8_t { kEq, kLt, kGt };
  static constexpr OptDef kOptions[] = {
      {"ttl-eq", kEq, 1, true}, {"ttl", kEq, 1, true}, {"ttl-lt", kLt, 1, false}, {"ttl-gt", kGt, 1, false}};
  void parse(const ModuleOption& o) {
    constexpr const char* kNames[] = {"--ttl-eq", "--ttl-lt", "--ttl-gt"};
    for (uint8_t other = kEq; other <= kGt; ++other) {
      if (other != o.id) o.conflict(other, kNames[other]);
    }
    auto v = parse_c_uint(o.a, 255);
    if (!v) o.fail(o.acol, fmt::format("ttl: bad value \"{}\" for {} (expected 0-255)", o.a, o.name));
    value = static_cast<uint8_t>(*v);
    mode = o.id == kLt ? Mode::Lt : o.id == kGt ? Mode::Gt : (o.invert ? Mode::Ne : Mode::Eq);
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("ttl: you must specify one of --ttl-eq, --ttl-lt, --ttl-gt");
  }
  void save(SaveLine& l) const {
    l.add("-m ttl");
    switch (mode) {
      case Mode::Eq: l.add("--ttl-eq"); break;
      case Mode::Ne: l.add("! --ttl-eq"); break;
      case Mode::Lt: l.add("--ttl-lt"); break;
      case Mode::Gt: l.add("--ttl-gt"); break;
    }
    l.add(std::to_string(value));
  }
  void list(ListText& t) const {
    constexpr const char* kOps[] = {"==", "!=", "<", ">"};
    t.put(" TTL match TTL {} {}", kOps[static_cast<int>(mode)], value);
  }

  uint32_t vary() const noexcept { return kVaryIpHeader; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const uint8_t ttl = ctx.key->ttl;
    switch (mode) {
      case Mode::Eq: return match_result(ttl == value);
      case Mode::Ne: return match_result(ttl != value);
      case Mode::Lt: return match_result(ttl < value);
      case Mode::Gt: return match_result(ttl > value);
    }
    return MatchResult::NoMatch;
  }
};

}  // namespace nfb
