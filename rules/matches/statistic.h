// -m statistic: every nth packet, or at random. iptables' libxt_statistic,
// the kernel's xt_statistic.
#pragma once

#include <charconv>
#include <cmath>

#include "base/hash.h"
#include "rules/module.h"

namespace nfb {

/// -m statistic. Random: matches with probability probability / 2^31 (the
/// kernel's fixed point; 2^31 = always). Nth: a counter per rule, matches
/// when it equals `packet` modulo `every`.
///
/// Kernel: the nth counter advances only for packets that reach the match;
/// the k-th such packet (k from 0) matches when k % every == packet
/// [kernel: every 3 packet 1 matched the 2nd of 4]. random: a draw of 31
/// bits below `probability`, from a per-match splitmix64 stream seeded from
/// the match options' seed (reproducible; the kernel's draws are not).
struct StatisticMatch {
  enum class Mode : uint8_t { Random, Nth };
  Mode mode = Mode::Random;
  uint32_t probability = 0;  // random: 0 .. 2^31
  uint32_t every = 1;        // nth: n >= 1
  uint32_t packet = 0;       // nth: 0 .. every-1
  bool invert = false;
  static constexpr uint32_t kProbabilityOne = 0x80000000U;
  friend bool operator==(const StatisticMatch&, const StatisticMatch&) = default;

  static constexpr const char* kName = "statistic";
  enum : uint8_t { kMode, kProb, kEvery, kPacket };
  static constexpr OptDef kOptions[] = {
      {"mode", kMode, 1, false}, {"probability", kProb, 1, true},
      {"every", kEvery, 1, true}, {"packet", kPacket, 1, false},
  };
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    switch (o.id) {
      case kMode:
        if (a == "random") mode = Mode::Random;
        else if (a == "nth") mode = Mode::Nth;
        else o.fail(o.acol, fmt::format("bad mode \"{}\" (expected random or nth)", a));
        break;
      case kProb: {
        o.conflict(kEvery, "--every");
        o.conflict(kPacket, "--packet");
        double p = -1;
        std::string_view s = a;
        const char* b = s.data();
        const char* e = s.data() + s.size();
        std::from_chars_result res{};
        if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
          res = std::from_chars(b + 2, e, p, std::chars_format::hex);
        else
          res = std::from_chars(b, e, p);
        if (res.ec != std::errc() || res.ptr != e || !(p >= 0.0 && p <= 1.0))
          o.fail(o.acol, fmt::format("bad probability \"{}\" (expected a number from 0 to 1)", a));
        probability = static_cast<uint32_t>(std::lround(p * static_cast<double>(kProbabilityOne)));
        invert = o.invert;
        break;
      }
      case kEvery: {
        o.conflict(kProb, "--probability");
        uint32_t v = o.line.parse_u32(a, o.acol, "--every count");
        if (v == 0) o.fail(o.acol, "--every must be at least 1");
        every = v;
        invert = o.invert;
        break;
      }
      case kPacket:
        o.conflict(kProb, "--probability");
        packet = o.line.parse_u32(a, o.acol, "--packet number");
        break;
    }
  }
  void check(const ModuleCheck& c) const {
    if (!c.given(kMode)) c.fail("statistic: option \"--mode\" must be specified");
    if (mode == Mode::Random) {
      if (!c.given(kProb)) c.fail("statistic: --probability must be specified with --mode random");
      if (c.given(kEvery) || c.given(kPacket)) c.fail("statistic: --every/--packet need --mode nth");
    } else {
      if (!c.given(kEvery) || !c.given(kPacket)) c.fail("statistic: --mode nth needs --every N and --packet P");
      if (packet >= every) c.fail(fmt::format("statistic: --packet {} must be below --every {}", packet, every));
      if (c.given(kProb)) c.fail("statistic: --probability needs --mode random");
    }
  }

  double probability_value() const noexcept {
    return static_cast<double>(probability) / static_cast<double>(kProbabilityOne);
  }
  void save(SaveLine& l) const {
    l.add("-m statistic");
    if (mode == Mode::Random) {
      l.add("--mode random").inv(invert).add("--probability").add(fmt::format("{:.11f}", probability_value()));
    } else {
      l.add("--mode nth").inv(invert).add("--every").add(std::to_string(every));
      l.add("--packet").add(std::to_string(packet));
    }
  }
  void list(ListText& t) const {
    if (mode == Mode::Random) {
      t.put(" statistic mode random{} probability {:.11f}", invert ? " !" : "", probability_value());
    } else {
      t.put(" statistic mode nth{} every {}", invert ? " !" : "", every);
      if (packet != 0) t.put(" packet {}", packet);
    }
  }

  uint32_t vary() const noexcept { return kVaryStatistic; }

  /// The compiled form with its slot in the match state (an nth counter or
  /// a random stream).
  struct Compiled {
    Mode mode = Mode::Random;
    uint32_t probability = 0;  // random: match when 31 random bits < probability
    uint32_t every = 1;        // nth
    bool invert = false;
    uint32_t slot = 0;

    template <class Ctx, class State>
    MatchResult match(const Ctx&, State& st) const noexcept {
      bool hit = false;
      if (mode == Mode::Nth) {
        uint32_t& count = st.nth_counter(slot);
        count = count == every - 1 ? 0 : count + 1;
        hit = count == 0;
      } else {
        const auto draw = static_cast<uint32_t>(splitmix64(st.random_stream(slot)) >> 32) & 0x7fffffffU;
        hit = draw < probability;
      }
      return match_result(hit != invert);
    }
  };
  template <class C>
  void compile(C& c) const {
    Compiled s;
    s.mode = mode;
    s.invert = invert;
    if (mode == Mode::Nth) {
      if (every == 0 || packet >= every) c.fail("statistic: --every must be at least 1 and --packet below it");
      s.every = every;
      // The kernel keeps count in 0..every-1, starts it at (every-1) -
      // packet and matches when it wraps to 0.
      s.slot = c.state().add_nth(every - 1 - packet);
    } else {
      if (probability > kProbabilityOne) c.fail("statistic: probability above 1");
      s.probability = probability;
      s.slot = c.state().add_random(c.seed());
    }
    c.emit(s);
  }
};

}  // namespace nfb
