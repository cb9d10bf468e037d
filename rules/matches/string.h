// -m string: a pattern in the packet. iptables' libxt_string, the kernel's
// xt_string.
#pragma once

#include <array>

#include "classifier/string_scan.h"
#include "rules/module.h"

namespace nfb {

/// -m string: `pattern` (1..128 raw bytes) searched in packet bytes
/// [from, to] (offsets from the start of the IP header).
///
/// Kernel: the pattern must lie wholly inside IP-packet bytes [from, to)
/// (the packet length bounds `to`) [kernel: "ab" ending at byte 41 matches
/// with --to 41, not with --to 40]. --icase folds case as the kernel's
/// toupper() does, Latin-1 letters included (0xe9 matches |c9|, 0xdf folds
/// to 0xbf) [kernel]. bm and kmp find the same occurrences; searched in the
/// frame bytes as received (a NAT rewrite of the header is not reflected).
/// These are the documented semantics (iptables-extensions(8)); the
/// kernel's textsearch on non-linear skbs is not modelled.
struct StringMatch {
  enum class Algo : uint8_t { Bm, Kmp };
  std::string pattern;
  Algo algo = Algo::Bm;
  uint16_t from = 0;
  uint16_t to = 65535;
  bool icase = false;
  bool invert = false;
  static constexpr size_t kMaxPattern = 128;
  friend bool operator==(const StringMatch&, const StringMatch&) = default;

  static constexpr const char* kName = "string";
  enum : uint8_t { kFrom, kTo, kAlgo, kString, kHex, kIcase };
  static constexpr OptDef kOptions[] = {
      {"from", kFrom, 1, false},   {"to", kTo, 1, false},          {"algo", kAlgo, 1, false},
      {"string", kString, 1, true}, {"hex-string", kHex, 1, true}, {"icase", kIcase, 0, false},
  };

  /// --hex-string: literal text with |hex bytes| blocks; spaces inside a
  /// block are ignored; a backslash outside a block takes the next byte as is.
  static std::string parse_hex_string(const ModuleOption& o) {
    const std::string& a = o.a;
    std::string out;
    bool in_hex = false;
    size_t block_start = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      char ch = a[i];
      auto c = o.acol + static_cast<uint32_t>(i);
      if (ch == '|') {
        if (in_hex && i == block_start + 1) o.fail(c, "empty hex block \"||\" in --hex-string");
        in_hex = !in_hex;
        block_start = i;
        continue;
      }
      if (!in_hex) {
        if (ch == '\\') {
          if (i + 1 >= a.size()) o.fail(c, "--hex-string ends in a lone backslash");
          ch = a[++i];
        }
        out += ch;
        continue;
      }
      if (ch == ' ') continue;
      int hi = digit_value(ch);
      if (hi > 15) o.fail(c, fmt::format("bad hex digit '{}' in --hex-string", ch));
      if (i + 1 >= a.size()) o.fail(c, "odd number of hex digits in --hex-string");
      int lo = digit_value(a[i + 1]);
      if (lo > 15)
        o.fail(c + 1, a[i + 1] == '|' || a[i + 1] == ' ' ? std::string("odd number of hex digits in a --hex-string block")
                                                         : fmt::format("bad hex digit '{}' in --hex-string", a[i + 1]));
      out += static_cast<char>(hi * 16 + lo);
      ++i;
    }
    if (in_hex)
      o.fail(o.acol + static_cast<uint32_t>(block_start), "unterminated hex block in --hex-string (expected a closing '|')");
    return out;
  }

  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    switch (o.id) {
      case kFrom:
      case kTo: {
        auto v = parse_c_uint(a, 65535);
        if (!v) o.fail(o.acol, fmt::format("bad offset \"{}\" for {} (expected 0-65535)", a, o.name));
        (o.id == kFrom ? from : to) = static_cast<uint16_t>(*v);
        break;
      }
      case kAlgo:
        if (a == "bm") algo = Algo::Bm;
        else if (a == "kmp") algo = Algo::Kmp;
        else o.fail(o.acol, fmt::format("bad algorithm \"{}\" (expected bm or kmp)", a));
        break;
      case kIcase:
        icase = true;
        break;
      case kString:
      case kHex: {
        o.conflict(o.id == kString ? kHex : kString, o.id == kString ? "--hex-string" : "--string");
        std::string p = o.id == kString ? a : parse_hex_string(o);
        if (p.empty()) o.fail(o.acol, fmt::format("{}: the pattern is empty", o.name));
        if (p.size() > kMaxPattern)
          o.fail(o.acol, fmt::format("{}: the pattern is {} bytes long (at most 128)", o.name, p.size()));
        pattern = std::move(p);
        invert = o.invert;
        break;
      }
    }
  }
  void check(const ModuleCheck& c) const {
    if (!c.given(kAlgo)) c.fail("string: option \"--algo\" must be specified");
    if (!c.given(kString) && !c.given(kHex)) c.fail("string: --string or --hex-string must be specified");
    if (from > to) c.fail(fmt::format("string: --from {} is beyond --to {}", from, to));
  }

  /// True when iptables prints the pattern as --hex-string: a byte that is
  /// not printable ASCII, or a trailing backslash.
  static bool needs_hex(const std::string& p) noexcept {
    bool as_hex = !p.empty() && p.back() == '\\';
    for (char c : p) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u > 0x7e) as_hex = true;
    }
    return as_hex;
  }
  /// The pattern quoted as iptables prints it: "|hex|" (lowercase, no
  /// spaces) or "text" with `"` and `\` escaped.
  static std::string quoted(const std::string& p) {
    const bool as_hex = needs_hex(p);
    std::string out = "\"";
    if (as_hex) {
      out += '|';
      for (char c : p) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
      out += '|';
    } else {
      for (char c : p) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
    }
    out += '"';
    return out;
  }
  void save(SaveLine& l) const {
    l.add("-m string").inv(invert).add(needs_hex(pattern) ? "--hex-string" : "--string").add(quoted(pattern));
    l.add("--algo").add(algo == Algo::Bm ? "bm" : "kmp");
    if (from != 0) l.add("--from").add(std::to_string(from));
    if (to != 65535) l.add("--to").add(std::to_string(to));
    if (icase) l.add("--icase");
  }
  void list(ListText& t) const {
    t.put(" STRING match {} {} ALGO name {}", invert ? "!" : "", quoted(pattern), algo == Algo::Bm ? "bm" : "kmp");
    if (from != 0) t.put(" FROM {}", from);
    if (to != 65535) t.put(" TO {}", to);
    if (icase) t.add(" ICASE");
  }

  uint32_t vary() const noexcept { return kVaryPayload; }

  /// The compiled form: the pattern (upper-cased as the kernel folds it
  /// when icase) and a Horspool shift table; `id` is the pattern's number
  /// in the ruleset's scanner when one was given (string_scan.h).
  struct Compiled {
    std::string pattern;
    std::array<uint8_t, 256> shift{};  // bytes to advance when the window's last byte is b
    uint16_t from = 0;
    uint16_t to = 65535;
    bool icase = false;
    bool invert = false;
    uint32_t id = kNoStringId;

    /// The IP packet's bytes as -m string searches them (empty without a frame).
    template <class Ctx>
    static std::pair<const uint8_t*, uint32_t> text_of(const Ctx& ctx) noexcept {
      const PacketKey& k = *ctx.key;
      if (ctx.frame == nullptr || k.l3_off >= ctx.frame_len) return {nullptr, 0};
      return {ctx.frame + k.l3_off, std::min<uint32_t>(k.l3_len, ctx.frame_len - k.l3_off)};
    }
    /// Horspool over the IP packet bytes [from, min(to, len)).
    bool found_in(const uint8_t* text, uint32_t len) const noexcept {
      const auto& fold = kStringFold;
      if (text == nullptr) return false;
      const uint32_t end = std::min<uint32_t>(to, len);
      const auto n = static_cast<uint32_t>(pattern.size());
      const auto* pat = reinterpret_cast<const uint8_t*>(pattern.data());
      if (from > end || end - from < n) return false;
      for (uint32_t pos = from; pos + n <= end;) {
        uint32_t i = n;
        if (icase) {
          while (i > 0 && fold[text[pos + i - 1]] == pat[i - 1]) --i;
        } else {
          while (i > 0 && text[pos + i - 1] == pat[i - 1]) --i;
        }
        if (i == 0) return true;
        const uint8_t last = icase ? fold[text[pos + n - 1]] : text[pos + n - 1];
        pos += shift[last];
      }
      return false;
    }
    /// The scanner's answer when the pattern was registered with it (one
    /// scan of the packet per hook for every pattern), else a search of its own.
    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      const auto [data, len] = text_of(ctx);
      const bool hit = ctx.strings == nullptr || id == kNoStringId ? found_in(data, len)
                                                                   : ctx.strings->found(id, data, len);
      return match_result(hit != invert);
    }
    /// With the ruleset's scanner, the string dimension says which pattern
    /// occurs (id + 1) when only one does, and kSeveralStrings when more do:
    /// a positive rule on pattern id can match those two values only. With
    /// several patterns the candidate's own check decides (residual).
    bool boxes(Alts& alts, const BoxRule&) const {
      if (id != kNoStringId && !invert) {
        restrict_all(alts, kDimString, Ranges{Range{id + 1, id + 1}, Range{kSeveralStrings, kSeveralStrings}});
      }
      return false;
    }
  };
  template <class C>
  void compile(C& c) const {
    if (pattern.empty() || pattern.size() > kMaxPattern) c.fail("string: the pattern must be 1 to 128 bytes");
    if (from > to) c.fail("string: --from is beyond --to");
    Compiled s;
    s.pattern = pattern;
    s.from = from;
    s.to = to;
    s.icase = icase;
    s.invert = invert;
    if (c.strings() != nullptr) s.id = c.strings()->add(pattern, from, to, icase, c.where());
    if (s.icase) {
      for (char& ch : s.pattern) ch = static_cast<char>(kStringFold[static_cast<uint8_t>(ch)]);
    }
    // Horspool: a window whose last byte is b moves by the distance from the
    // last occurrence of b in pattern[0, n-1) to the pattern's end.
    const size_t n = s.pattern.size();
    s.shift.fill(static_cast<uint8_t>(n));
    for (size_t i = 0; i + 1 < n; ++i) {
      const auto b = static_cast<uint8_t>(s.pattern[i]);
      s.shift[b] = static_cast<uint8_t>(n - 1 - i);  // with icase, b is folded, as looked-up text bytes are
    }
    c.emit(std::move(s));
  }
};

}  // namespace nfb
