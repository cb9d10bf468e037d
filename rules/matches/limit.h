// -m limit: a token bucket. iptables' libxt_limit, the kernel's xt_limit.
#pragma once

#include "rules/module.h"

namespace nfb {

/// The kernel's credit of a time `user` in 1/10000 s (xt_limit's
/// user2credits) for `hz`, in 32-bit arithmetic, wrap-around included.
uint32_t limit_user_to_credits(uint32_t user, uint32_t hz) noexcept;
/// Credits refilled per jiffy for `hz`: the largest power of two not above
/// (2^32 - 1) / (hz * 86400). 128 for HZ 250, 32 for HZ 1000.
uint32_t limit_credits_per_jiffy(uint32_t hz) noexcept;

/// -m limit. `avg` is the mean time between packets in units of 1/10000 s
/// (the kernel's XT_LIMIT_SCALE); `burst` the bucket depth.
///
/// Kernel: xt_limit's token bucket in 32-bit credit units: credits per
/// jiffy = the largest power of two <= 2^32-1 / (HZ*86400) (128 at HZ 250),
/// cost = credits(avg), cap = credits(avg * burst) with the kernel's 32-bit
/// wrap-around (a slow rate may get fewer than `burst` tokens), refill
/// (jiffies elapsed * credits per jiffy) truncated to 32 bits. Jiffies are
/// packet time: floor(now_ns * HZ / 1e9). The bucket starts full at the
/// first packet that reaches it (as if the rule were loaded just before); a
/// timestamp earlier than the last one counts as no time elapsed (jiffies
/// never go back).
struct LimitMatch {
  static constexpr uint32_t kScale = 10000;
  uint32_t avg = kScale * 3600 / 3;  // default 3/hour
  uint32_t burst = 5;
  friend bool operator==(const LimitMatch&, const LimitMatch&) = default;

  static constexpr const char* kName = "limit";
  enum : uint8_t { kLimit, kBurst };
  static constexpr OptDef kOptions[] = {{"limit", kLimit, 1, false}, {"limit-burst", kBurst, 1, false}};
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    if (o.id == kLimit) {
      constexpr uint32_t kSecond = 1, kMinute = 60, kHour = 3600, kDay = 86400;
      size_t slash = a.find('/');
      auto n = parse_dec_uint(std::string_view(a).substr(0, slash), UINT32_MAX);
      uint32_t mult = kSecond;
      bool ok = n && *n > 0;
      if (ok && slash != std::string::npos) {
        std::string_view unit = std::string_view(a).substr(slash + 1);
        if (!unit.empty() && iprefix(unit, "second")) mult = kSecond;
        else if (!unit.empty() && iprefix(unit, "minute")) mult = kMinute;
        else if (!unit.empty() && iprefix(unit, "hour")) mult = kHour;
        else if (!unit.empty() && iprefix(unit, "day")) mult = kDay;
        else ok = false;
      }
      if (!ok) o.fail(o.acol, fmt::format("bad rate \"{}\" (expected N/second, N/minute, N/hour or N/day, N >= 1)", a));
      uint64_t v = uint64_t{kScale} * mult / *n;
      if (v == 0) o.fail(o.acol, fmt::format("rate \"{}\" is too fast (at most 10000/second)", a));
      avg = static_cast<uint32_t>(v);
    } else {
      auto b = parse_c_uint(a, 10000);
      if (!b) o.fail(o.acol, fmt::format("bad burst \"{}\" (expected 1-10000)", a));
      burst = static_cast<uint32_t>(*b);
    }
  }
  void check(const ModuleCheck& c) const {
    if (burst == 0) c.fail("limit: --limit-burst must be at least 1");
    // The kernel refuses a bucket whose credit, computed in 32 bits,
    // overflows: credits(avg * burst) < credits(avg). Credits per second
    // are HZ * CREDITS_PER_JIFFY = 32000 for HZ 250 and 1000, the usual
    // kernels; compile() checks again with the HZ it is given.
    const auto avg_burst = static_cast<uint32_t>(uint64_t{avg} * burst);
    if (limit_user_to_credits(avg_burst, 250) < limit_user_to_credits(avg, 250))
      c.fail("limit: rate too slow for this burst (the kernel's 32-bit credit would overflow)");
  }

  /// avg back to "N/unit": from `day` down, the smallest unit whose per-unit
  /// count still divides into it with a quotient at least as large as the
  /// remainder.
  static std::string rate_text(uint32_t avg) {
    struct Unit {
      const char* name;
      uint64_t scaled;  // unit length in 1/10000 s
    };
    static constexpr Unit kUnits[] = {
        {"day", 86400ULL * kScale},
        {"hour", 3600ULL * kScale},
        {"min", 60ULL * kScale},
        {"sec", 1ULL * kScale},
    };
    if (avg == 0) return "0/sec";  // not loadable; keeps the division defined
    size_t u = 0;
    while (u + 1 < std::size(kUnits)) {
      uint64_t next = kUnits[u + 1].scaled;
      if (avg > next || next / avg < next % avg) break;
      ++u;
    }
    return fmt::format("{}/{}", kUnits[u].scaled / avg, kUnits[u].name);
  }
  void save(SaveLine& l) const {
    l.add("-m limit --limit").add(rate_text(avg));
    if (burst != 5) l.add("--limit-burst").add(std::to_string(burst));
  }
  void list(ListText& t) const { t.put(" limit: avg {} burst {}", rate_text(avg), burst); }

  uint32_t vary() const noexcept { return kVaryLimit; }

  /// The compiled form: the kernel's credit units, fixed at load, and the
  /// slot of its bucket in the match state.
  struct Compiled {
    uint32_t cost = 0;       // credits per packet: credits(avg)
    uint32_t cap = 0;        // bucket size: credits(avg * burst), 32-bit
    uint32_t per_jiffy = 0;  // credits refilled per jiffy
    uint32_t hz = 250;
    uint32_t slot = 0;       // MatchState limit slot

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State& st) const noexcept {
      auto& b = st.limit_bucket(slot);
      const uint64_t now = jiffies_of(ctx.now_ns, hz);
      if (!b.started) {
        b.started = true;
        b.prev_jiffies = now;
        b.credit = cap;
      }
      uint64_t elapsed = 0;
      if (now > b.prev_jiffies) {
        elapsed = now - b.prev_jiffies;
        b.prev_jiffies = now;
      }
      // 64-bit product truncated to the kernel's 32-bit credit_increase,
      // then a 32-bit add (it may wrap) capped at the bucket size.
      const auto increase = static_cast<uint32_t>(elapsed * per_jiffy);
      uint32_t credit = b.credit + increase;
      if (credit > cap) credit = cap;
      const bool hit = credit >= cost;
      if (hit) credit -= cost;
      b.credit = credit;
      return match_result(hit);
    }
  };
  template <class C>
  void compile(C& c) const {
    // The kernel's load-time check (limit_mt_check): the full bucket,
    // computed in 32 bits, must not be below one token.
    const uint32_t avg_burst = avg * burst;  // wraps like the kernel's u32 product
    if (burst == 0 || limit_user_to_credits(avg_burst, c.hz()) < limit_user_to_credits(avg, c.hz()))
      c.fail("limit: rate too slow for this burst (the kernel's 32-bit credit would overflow)");
    Compiled l;
    l.cost = limit_user_to_credits(avg, c.hz());
    l.cap = limit_user_to_credits(avg_burst, c.hz());
    l.per_jiffy = limit_credits_per_jiffy(c.hz());
    l.hz = c.hz();
    l.slot = c.state().add_limit(l.cap);
    c.emit(l);
  }
};

inline uint32_t limit_credits_per_jiffy(uint32_t hz) noexcept {
  const uint64_t max_cpj = 0xffffffffULL / (uint64_t{hz} * 86400ULL);
  if (max_cpj == 0) return 0;
  uint64_t p = 1;
  while (p * 2 <= max_cpj) p *= 2;
  return static_cast<uint32_t>(p);
}

inline uint32_t limit_user_to_credits(uint32_t user, uint32_t hz) noexcept {
  // Credits per second; the kernel multiplies in 32 bits and divides first
  // when the product would overflow, wrapping if it still does.
  const uint32_t per_second = hz * limit_credits_per_jiffy(hz);
  if (per_second == 0) return 0;
  if (user > 0xffffffffU / per_second) return (user / LimitMatch::kScale) * per_second;
  return user * per_second / LimitMatch::kScale;
}

}  // namespace nfb
