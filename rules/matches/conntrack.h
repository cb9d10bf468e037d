// -m conntrack: the connection's state, status, tuples, lifetime and
// direction. iptables' libxt_conntrack, the kernel's xt_conntrack.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m conntrack. `present` says which options were given, `invert` which of
/// them carry `!`; both use the Opt bits.
///
/// Kernel: without an entry (INVALID, UNTRACKED, and every packet in the raw
/// table, which runs before conntrack) the result is "--ctstate was given
/// and holds": every other option is ignored [kernel: `--ctstate INVALID !
/// --ctproto 17` matches a UDP packet in raw], and a match without
/// --ctstate fails [kernel: `! --ctstatus ASSURED` fails in raw]. --ctdir
/// tests the packet's direction. --ctstatus tests whether ANY listed bit is
/// set (NONE never matches, `! --ctstatus NONE` always does, for tracked
/// packets). --ctexpire compares the remaining lifetime in whole seconds.
/// Ports compare the entry's tuple ports; for ICMP the kernel's tuple holds
/// the id as the source "port" and (type << 8 | code) as the destination
/// "port". A CT template (raw's `-j CT --zone ...`) counts as an entry:
/// NEW, CONFIRMED [kernel].
struct ConntrackMatch {
  enum Opt : uint16_t {
    kState = 1U << 0, kProto = 1U << 1,
    kOrigSrc = 1U << 2, kOrigDst = 1U << 3, kReplSrc = 1U << 4, kReplDst = 1U << 5,
    kOrigSrcPort = 1U << 6, kOrigDstPort = 1U << 7, kReplSrcPort = 1U << 8, kReplDstPort = 1U << 9,
    kStatus = 1U << 10, kExpire = 1U << 11, kDir = 1U << 12,
  };
  enum class Dir : uint8_t { Original, Reply };
  uint16_t present = 0;
  uint16_t invert = 0;
  uint8_t states = 0;      // CtStateBit set
  uint8_t proto = 0;       // --ctproto (0 = "all" as given)
  Ipv4Mask orig_src, orig_dst, repl_src, repl_dst;  // address kept as given, not masked
  PortRange orig_src_port, orig_dst_port, repl_src_port, repl_dst_port;
  uint8_t status = 0;      // CtStatusBit set
  uint32_t expire_lo = 0;  // remaining lifetime, seconds (lo may exceed hi: never matches)
  uint32_t expire_hi = 0;
  Dir dir = Dir::Original;
  bool has(Opt o) const noexcept { return (present & o) != 0; }
  bool inverted(Opt o) const noexcept { return (invert & o) != 0; }
  friend bool operator==(const ConntrackMatch&, const ConntrackMatch&) = default;

  static constexpr const char* kName = "conntrack";
  // Option ids are bit positions of Opt.
  static constexpr OptDef kOptions[] = {
      {"ctstate", 0, 1, true},        {"ctproto", 1, 1, true},        {"ctorigsrc", 2, 1, true},
      {"ctorigdst", 3, 1, true},      {"ctreplsrc", 4, 1, true},      {"ctrepldst", 5, 1, true},
      {"ctorigsrcport", 6, 1, true},  {"ctorigdstport", 7, 1, true},  {"ctreplsrcport", 8, 1, true},
      {"ctrepldstport", 9, 1, true},  {"ctstatus", 10, 1, true},      {"ctexpire", 11, 1, true},
      {"ctdir", 12, 1, false},
  };

  /// A conntrack port or range: decimal (an optional '+') or service name;
  /// "a", "a:b", ":b", "a:"; the kernel takes lo > hi. iptables reads the
  /// number into a C int, refuses it when that int is negative and keeps
  /// the low 16 bits (70000 is port 4464); so do we.
  static PortRange parse_port_range(const ModuleOption& o, std::string_view s, uint32_t col) {
    size_t colon = s.find(':');
    auto one = [&](std::string_view p, uint32_t c, uint16_t dflt) -> uint16_t {
      if (p.empty()) return dflt;
      std::string_view digits = p[0] == '+' ? p.substr(1) : p;
      auto v = parse_dec_uint(digits, UINT64_MAX);
      if (v && (*v & 0xffffffffU) < 0x80000000U) return static_cast<uint16_t>(*v & 0xffff);
      std::optional<uint16_t> named;
      if (!std::isdigit(static_cast<unsigned char>(p[0]))) named = lookup_service(p, ServiceScope::Any);
      if (!named) o.fail(c, fmt::format("bad port \"{}\" (expected a decimal number or a known service name)", p));
      return *named;
    };
    if (colon == std::string_view::npos) {
      if (s.empty()) o.fail(col, "port expected");
      uint16_t p = one(s, col, 0);
      return PortRange{p, p};
    }
    return PortRange{one(s.substr(0, colon), col, 0),
                     one(s.substr(colon + 1), col + static_cast<uint32_t>(colon) + 1, 65535)};
  }

  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    const uint32_t acol = o.acol;
    auto bit = static_cast<uint16_t>(1U << o.id);
    present = static_cast<uint16_t>(present | bit);
    if (o.invert) invert = static_cast<uint16_t>(invert | bit);
    switch (o.id) {
      case 0: {
        uint32_t c = acol;
        for (std::string_view s : split(a, ',')) {
          auto st = parse_ct_state(s);
          if (!st) o.fail(c, fmt::format("bad conntrack state \"{}\" (expected INVALID, ESTABLISHED, NEW, RELATED, "
                                         "UNTRACKED, SNAT or DNAT)", s));
          states = static_cast<uint8_t>(states | *st);
          c += static_cast<uint32_t>(s.size()) + 1;
        }
        break;
      }
      case 1: {
        auto p = parse_protocol(a);
        if (!p) o.fail(acol, fmt::format("unknown protocol \"{}\" (expected a name such as tcp, or a number 0-255)", a));
        proto = *p;
        break;
      }
      case 2: case 3: case 4: case 5: {
        Ipv4Mask v = o.line.parse_address_mask(a, acol, true, "conntrack");
        (o.id == 2 ? orig_src : o.id == 3 ? orig_dst : o.id == 4 ? repl_src : repl_dst) = v;
        break;
      }
      case 6: case 7: case 8: case 9: {
        PortRange r = parse_port_range(o, a, acol);
        (o.id == 6 ? orig_src_port : o.id == 7 ? orig_dst_port : o.id == 8 ? repl_src_port : repl_dst_port) = r;
        break;
      }
      case 10: {
        uint32_t c = acol;
        for (std::string_view s : split(a, ',')) {
          auto st = parse_ct_status(s);
          if (!st) o.fail(c, fmt::format("bad conntrack status \"{}\" (expected NONE, EXPECTED, SEEN_REPLY, ASSURED "
                                         "or CONFIRMED)", s));
          status = static_cast<uint8_t>(status | *st);
          c += static_cast<uint32_t>(s.size()) + 1;
        }
        break;
      }
      case 11: {
        size_t colon = a.find(':');
        std::string_view lo = std::string_view(a).substr(0, colon);
        expire_lo = lo.empty() && colon != std::string::npos ? 0 : o.line.parse_u32(lo, acol, "--ctexpire time");
        if (colon == std::string::npos) {
          expire_hi = expire_lo;
        } else {
          std::string_view hi = std::string_view(a).substr(colon + 1);
          expire_hi = hi.empty() ? UINT32_MAX
                                 : o.line.parse_u32(hi, acol + static_cast<uint32_t>(colon) + 1, "--ctexpire time");
        }
        break;
      }
      case 12:
        if (iequals(a, "ORIGINAL")) dir = Dir::Original;
        else if (iequals(a, "REPLY")) dir = Dir::Reply;
        else o.fail(acol, fmt::format("bad --ctdir \"{}\" (expected ORIGINAL or REPLY)", a));
        break;
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("conntrack: at least one option is required");
  }

  /// f(opt, name, value text) for every option given but --ctdir, in the
  /// kernel's print order (the same for -save and -L; only the option
  /// words differ).
  template <class F>
  void each_option(F&& f) const {
    auto port = [](const PortRange& r) { return format_range(r.lo, r.hi, ':'); };
    const std::pair<Opt, const char*> order[] = {
        {kState, "ctstate"},         {kProto, "ctproto"},         {kOrigSrc, "ctorigsrc"},
        {kOrigDst, "ctorigdst"},     {kReplSrc, "ctreplsrc"},     {kReplDst, "ctrepldst"},
        {kOrigSrcPort, "ctorigsrcport"}, {kOrigDstPort, "ctorigdstport"}, {kReplSrcPort, "ctreplsrcport"},
        {kReplDstPort, "ctrepldstport"}, {kStatus, "ctstatus"},   {kExpire, "ctexpire"},
    };
    for (const auto& [o, name] : order) {
      if (!has(o)) continue;
      std::string value;
      switch (o) {
        case kState: value = format_ct_states(states); break;
        case kProto: value = std::to_string(proto); break;
        case kOrigSrc: value = format_ct_addr(orig_src); break;
        case kOrigDst: value = format_ct_addr(orig_dst); break;
        case kReplSrc: value = format_ct_addr(repl_src); break;
        case kReplDst: value = format_ct_addr(repl_dst); break;
        case kOrigSrcPort: value = port(orig_src_port); break;
        case kOrigDstPort: value = port(orig_dst_port); break;
        case kReplSrcPort: value = port(repl_src_port); break;
        case kReplDstPort: value = port(repl_dst_port); break;
        case kStatus: value = format_ct_status(status); break;
        case kExpire: value = format_range(expire_lo, expire_hi, ':'); break;
        case kDir: break;
      }
      f(o, name, value);
    }
  }
  const char* dir_name() const noexcept { return dir == Dir::Original ? "ORIGINAL" : "REPLY"; }
  void save(SaveLine& l) const {
    l.add("-m conntrack");
    each_option([&](Opt o, const char* name, const std::string& value) {
      l.inv(inverted(o)).add(std::string("--") + name).add(value);
    });
    if (has(kDir)) l.add("--ctdir").add(dir_name());
  }
  void list(ListText& t) const {
    each_option([&](Opt o, const char* name, const std::string& value) {
      t.put(" {}{} {}", inverted(o) ? "! " : "", name, value);
    });
    // --ctdir cannot be inverted: the direction itself is the value.
    if (has(kDir)) t.put(" ctdir {}", dir_name());
  }

  uint32_t vary() const noexcept {
    return kVaryCtState | (has(kStatus) ? kVaryCtStatus : 0U) | (has(kExpire) ? kVaryCtExpire : 0U) |
           (has(kDir) ? kVaryCtDir : 0U);
  }

  bool addr_ok(Opt opt, const Ipv4Mask& want, uint32_t have) const noexcept {
    if (!has(opt)) return true;
    const bool hit = ((have ^ want.addr) & want.mask) == 0;
    return hit != inverted(opt);
  }
  bool port_ok(Opt opt, const PortRange& want, uint16_t have) const noexcept {
    if (!has(opt)) return true;
    return want.contains(have) != inverted(opt);
  }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const auto& ct = ctx.ct;
    if (has(kState)) {
      uint8_t bits = 0;
      if (ct.present) {
        bits = ct.state_bits;
      } else {
        bits = (ct.state_bits & kCtUntracked) != 0 ? kCtUntracked : kCtInvalid;
      }
      if (((states & bits) != 0) == inverted(kState)) return MatchResult::NoMatch;
    }
    // No entry: nothing else can be checked; the match holds iff --ctstate
    // was given (and held, above).
    if (!ct.present) return match_result(has(kState));

    if (has(kDir) && ((ct.reply_dir == (dir == Dir::Reply)) == inverted(kDir))) return MatchResult::NoMatch;
    if (has(kProto) && ((ct.orig.proto == proto) == inverted(kProto))) return MatchResult::NoMatch;
    if (!addr_ok(kOrigSrc, orig_src, ct.orig.src)) return MatchResult::NoMatch;
    if (!addr_ok(kOrigDst, orig_dst, ct.orig.dst)) return MatchResult::NoMatch;
    if (!addr_ok(kReplSrc, repl_src, ct.reply.src)) return MatchResult::NoMatch;
    if (!addr_ok(kReplDst, repl_dst, ct.reply.dst)) return MatchResult::NoMatch;
    if (!port_ok(kOrigSrcPort, orig_src_port, ct.orig.sport)) return MatchResult::NoMatch;
    if (!port_ok(kOrigDstPort, orig_dst_port, ct.orig.dport)) return MatchResult::NoMatch;
    if (!port_ok(kReplSrcPort, repl_src_port, ct.reply.sport)) return MatchResult::NoMatch;
    if (!port_ok(kReplDstPort, repl_dst_port, ct.reply.dport)) return MatchResult::NoMatch;
    if (has(kStatus) && (((status & ct.status_bits) != 0) == inverted(kStatus))) return MatchResult::NoMatch;
    if (has(kExpire)) {
      const bool in = ct.expire_s >= expire_lo && ct.expire_s <= expire_hi;
      if (in == inverted(kExpire)) return MatchResult::NoMatch;
    }
    return MatchResult::Matched;
  }

  /// Without an entry the kernel's match holds iff --ctstate was given and
  /// held; with one, every option must hold. So the tuple options restrict
  /// only the alternative of packets with an entry, and a state set holding
  /// INVALID or UNTRACKED adds the alternative "no entry, that state".
  /// --ctstatus (a bit test) and SNAT/DNAT states do not fit.
  bool boxes(Alts& alts, const BoxRule&) const {
    if (has(kStatus)) return false;
    if ((states & (kCtSnat | kCtDnat)) != 0) return false;
    uint32_t values = kCtValuesAll;
    if (has(kState)) {
      values = ct_values_of(states);
      // kCtValueNone (an entry without a state bit) matches only when
      // inverted, as the kernel's (states & bits) != 0 test says.
      if (inverted(kState)) values = kCtValuesAll & ~values;
    } else {
      values = kCtValuesEntry;  // no --ctstate: no entry, no match
    }
    const uint16_t tuple_opts = kProto | kOrigSrc | kOrigDst | kReplSrc | kReplDst | kOrigSrcPort | kOrigDstPort |
                                kReplSrcPort | kReplDstPort | kDir | kExpire;
    if ((present & tuple_opts) == 0) {
      restrict_ct_values(alts, values);
      return true;
    }
    for (const Ipv4Mask* m : {&orig_src, &orig_dst, &repl_src, &repl_dst}) {
      if (!is_prefix_mask(m->mask)) return false;
    }
    Alts with_entry = alts;
    restrict_ct_values(with_entry, values & kCtValuesEntry);
    for (Alt& a : with_entry) {
      if (has(kProto)) a.restrict(kDimCtProto, range_or_complement(proto, proto, 0xff, inverted(kProto)));
      auto addr = [&](Opt o, Dim d, const Ipv4Mask& m) {
        if (has(o)) a.restrict(d, addr_ranges(m.addr, m.mask, inverted(o)));
      };
      addr(kOrigSrc, kDimCtOrigSrc, orig_src);
      addr(kOrigDst, kDimCtOrigDst, orig_dst);
      addr(kReplSrc, kDimCtReplSrc, repl_src);
      addr(kReplDst, kDimCtReplDst, repl_dst);
      auto port = [&](Opt o, Dim d, const PortRange& r) {
        if (has(o)) a.restrict(d, range_or_complement(r.lo, r.hi, 0xffff, inverted(o)));
      };
      port(kOrigSrcPort, kDimCtOrigSrcPort, orig_src_port);
      port(kOrigDstPort, kDimCtOrigDstPort, orig_dst_port);
      port(kReplSrcPort, kDimCtReplSrcPort, repl_src_port);
      port(kReplDstPort, kDimCtReplDstPort, repl_dst_port);
      if (has(kDir)) {
        const uint32_t d = dir == Dir::Reply ? 1U : 0U;
        a.restrict(kDimCtDir, range_or_complement(d, d, 0xff, inverted(kDir)));
      }
      if (has(kExpire)) {
        a.restrict(kDimCtExpire, range_or_complement(expire_lo, expire_hi, 0xffffffffU, inverted(kExpire)));
      }
    }
    if ((values & kCtValuesNoEntry) != 0) {
      restrict_ct_values(alts, values & kCtValuesNoEntry);
      alts.insert(alts.end(), with_entry.begin(), with_entry.end());
    } else {
      alts = std::move(with_entry);
    }
    return true;
  }
};

}  // namespace nfb
