// -m icmp --icmp-type (loaded by -p icmp). iptables' libipt_icmp, the
// kernel's ip_tables icmp_match.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m icmp. Needs -p icmp. type 255 with codes [0, 255] is "any" (matches
/// every type). A non-first fragment never matches; a header shorter than 8
/// bytes: HOTDROP [kernel].
struct IcmpMatch {
  uint8_t type = 0xff;
  uint8_t code_lo = 0;
  uint8_t code_hi = 0xff;
  bool invert = false;
  bool is_any_type() const noexcept { return type == 0xff && code_lo == 0 && code_hi == 0xff; }
  friend bool operator==(const IcmpMatch&, const IcmpMatch&) = default;

  static constexpr const char* kName = "icmp";
  static constexpr OptDef kOptions[] = {{"icmp-type", 0, 1, true}};

  struct Name {
    const char* name;
    uint8_t type, code_lo, code_hi;
  };
  static constexpr Name kNames[] = {
      {"any", 0xff, 0, 0xff},
      {"echo-reply", 0, 0, 0xff},
      {"pong", 0, 0, 0xff},
      {"destination-unreachable", 3, 0, 0xff},
      {"network-unreachable", 3, 0, 0},
      {"host-unreachable", 3, 1, 1},
      {"protocol-unreachable", 3, 2, 2},
      {"port-unreachable", 3, 3, 3},
      {"fragmentation-needed", 3, 4, 4},
      {"source-route-failed", 3, 5, 5},
      {"network-unknown", 3, 6, 6},
      {"host-unknown", 3, 7, 7},
      {"network-prohibited", 3, 9, 9},
      {"host-prohibited", 3, 10, 10},
      {"TOS-network-unreachable", 3, 11, 11},
      {"TOS-host-unreachable", 3, 12, 12},
      {"communication-prohibited", 3, 13, 13},
      {"host-precedence-violation", 3, 14, 14},
      {"precedence-cutoff", 3, 15, 15},
      {"source-quench", 4, 0, 0xff},
      {"redirect", 5, 0, 0xff},
      {"network-redirect", 5, 0, 0},
      {"host-redirect", 5, 1, 1},
      {"TOS-network-redirect", 5, 2, 2},
      {"TOS-host-redirect", 5, 3, 3},
      {"echo-request", 8, 0, 0xff},
      {"ping", 8, 0, 0xff},
      {"router-advertisement", 9, 0, 0xff},
      {"router-solicitation", 10, 0, 0xff},
      {"time-exceeded", 11, 0, 0xff},
      {"ttl-exceeded", 11, 0, 0xff},
      {"ttl-zero-during-transit", 11, 0, 0},
      {"ttl-zero-during-reassembly", 11, 1, 1},
      {"parameter-problem", 12, 0, 0xff},
      {"ip-header-bad", 12, 0, 0},
      {"required-option-missing", 12, 1, 1},
      {"timestamp-request", 13, 0, 0xff},
      {"timestamp-reply", 14, 0, 0xff},
      {"address-mask-request", 17, 0, 0xff},
      {"address-mask-reply", 18, 0, 0xff},
  };

  /// TYPE, TYPE/CODE (C-notation numbers) or a name, prefixes allowed when
  /// they are unambiguous, as iptables reads them.
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    invert = o.invert;
    if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) {
      size_t slash = a.find('/');
      auto t = parse_c_uint(std::string_view(a).substr(0, slash), 255);
      if (!t) o.fail(o.acol, fmt::format("bad ICMP type \"{}\" (expected a number 0-255 or a name)", a));
      type = static_cast<uint8_t>(*t);
      code_lo = 0;
      code_hi = 0xff;
      if (slash != std::string::npos) {
        auto c = parse_c_uint(std::string_view(a).substr(slash + 1), 255);
        if (!c)
          o.fail(o.acol + static_cast<uint32_t>(slash) + 1,
                 fmt::format("bad ICMP code in \"{}\" (expected TYPE/CODE, numbers 0-255)", a));
        code_lo = code_hi = static_cast<uint8_t>(*c);
      }
      return;
    }
    const Name* found = nullptr;
    bool ambiguous = false;
    for (const Name& n : kNames) {
      if (!a.empty() && iprefix(a, n.name)) {
        if (iequals(a, n.name)) {
          found = &n;
          ambiguous = false;
          break;
        }
        if (found && (found->type != n.type || found->code_lo != n.code_lo || found->code_hi != n.code_hi))
          ambiguous = true;
        if (!found) found = &n;
      }
    }
    if (ambiguous) o.fail(o.acol, fmt::format("ambiguous ICMP type \"{}\"", a));
    if (!found) o.fail(o.acol, fmt::format("unknown ICMP type \"{}\" (expected a name, TYPE or TYPE/CODE)", a));
    type = found->type;
    code_lo = found->code_lo;
    code_hi = found->code_hi;
  }
  void check(const ModuleCheck& c) const {
    c.need_protocol(kProtoIcmp, "icmp");
    if (c.seen == 0) c.fail("icmp: option \"--icmp-type\" must be specified");
  }

  void save(SaveLine& l) const {
    l.add("-m icmp").inv(invert).add("--icmp-type");
    if (is_any_type()) {
      l.add("any");
    } else if (code_lo == 0 && code_hi == 0xff) {
      l.add(std::to_string(type));
    } else if (code_lo == code_hi) {
      l.add(fmt::format("{}/{}", type, code_lo));
    } else {
      l.add(fmt::format("{}/{}-{}", type, code_lo, code_hi));
    }
  }
  void list(ListText& t) const {
    // No space between "icmp" and "type" unless inverted: the kernel's quirk.
    t.put(" icmp{}type {}", invert ? " !" : "", type);
    if (code_lo == code_hi) {
      t.put(" code {}", code_lo);
    } else if (code_lo != 0 || code_hi != 0xff) {
      // A code range has no iptables input form; shown as iptables shows one.
      t.put(" codes {}-{}", code_lo, code_hi);
    }
  }

  uint32_t vary() const noexcept { return kVaryIcmp; }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    constexpr uint32_t kHeaderLen = 8;  // struct icmphdr, what the kernel reads
    const PacketKey& k = *ctx.key;
    if (k.is_later_fragment()) return MatchResult::NoMatch;
    uint8_t t = 0, c = 0;
    if (k.has(key_flag::kIcmp)) {
      t = k.icmp_type;
      c = k.icmp_code;
    } else {
      const uint8_t* h = l4_bytes(ctx, kHeaderLen);
      if (h == nullptr) return MatchResult::Hotdrop;
      t = h[0];
      c = h[1];
    }
    const bool hit = type == 0xff || (t == type && c >= code_lo && c <= code_hi);
    return match_result(hit != invert);
  }

  /// [(T << 8) | lo, (T << 8) | hi] on the icmp dimension.
  bool boxes(Alts& alts, const BoxRule& r) const {
    if (r.proto != kProtoIcmp || r.proto_invert) return false;
    if (type == 0xff) {  // any type (inverted: nothing)
      if (invert) restrict_all(alts, kDimIcmp, {});
      return true;
    }
    const uint32_t base = static_cast<uint32_t>(type) << 8;
    restrict_all(alts, kDimIcmp, range_or_complement(base | code_lo, base | code_hi, 0xffff, invert));
    return true;
  }
};

}  // namespace nfb
