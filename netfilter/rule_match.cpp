// Rule matching: compile_rule() and evaluate(). See rule_match.h for the
// semantics; comments here explain the kernel behaviour each branch follows.
#include "netfilter/rule_match.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "base/hash.h"
#include "base/overloaded.h"
#include "packet/byte_order.h"

namespace nfb {

namespace {

constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint32_t kUdpHeaderLen = 8;
constexpr uint32_t kIcmpHeaderLen = 8;  // struct icmphdr, what xt_icmp reads
constexpr uint32_t kPortBytes = 4;      // what multiport reads
constexpr size_t kMaxIfaceName = 15;

// The kernel's toupper() (classifier/string_scan.h).
constexpr const std::array<uint8_t, 256>& kFold = kStringFold;

[[noreturn]] void fail(const Rule& rule, const std::string& what) { throw LoadError(rule.where, what); }

bool addr_in(uint32_t addr, uint32_t lo, uint32_t hi) noexcept { return lo <= addr && addr <= hi; }

}  // namespace

// ---------------------------------------------------------------------------
// Limit arithmetic

uint32_t limit_credits_per_jiffy(uint32_t hz) noexcept {
  const uint64_t max_cpj = 0xffffffffULL / (uint64_t{hz} * 86400ULL);
  if (max_cpj == 0) return 0;
  uint64_t p = 1;
  while (p * 2 <= max_cpj) p *= 2;
  return static_cast<uint32_t>(p);
}

uint32_t limit_user_to_credits(uint32_t user, uint32_t hz) noexcept {
  // Credits per second; the kernel multiplies in 32 bits and divides first
  // when the product would overflow, wrapping if it still does.
  const uint32_t per_second = hz * limit_credits_per_jiffy(hz);
  if (per_second == 0) return 0;
  if (user > 0xffffffffU / per_second) return (user / LimitMatch::kScale) * per_second;
  return user * per_second / LimitMatch::kScale;
}

uint64_t jiffies_of(uint64_t now_ns, uint32_t hz) noexcept {
  constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;
  return (now_ns / kNsPerSecond) * hz + (now_ns % kNsPerSecond) * hz / kNsPerSecond;
}

// ---------------------------------------------------------------------------
// FlowVary names

std::string format_flow_vary(uint32_t bits) {
  static constexpr const char* kNames[] = {
      "tcp_flags", "tcp_option", "icmp",      "length",    "payload",  "fragment",
      "mark",      "connmark",   "ct_state",  "ct_status", "ct_expire", "ct_dir",
      "pkttype",   "mac",        "limit",     "statistic",
  };
  std::string out;
  for (unsigned i = 0; i < std::size(kNames); ++i) {
    if ((bits & (1U << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += kNames[i];
  }
  return out;
}

// ---------------------------------------------------------------------------
// MatchState

void MatchState::reset() noexcept {
  for (Bucket& b : limits_) b = Bucket{};
  std::copy(nth_start_.begin(), nth_start_.end(), nth_.begin());
  std::copy(rng_seed_.begin(), rng_seed_.end(), rng_.begin());
}

// ---------------------------------------------------------------------------
// Compile

namespace {

IfaceSet resolve_iface(const Rule& rule, const IfaceMatch& m, const HostModel& host) {
  if (m.name.size() > kMaxIfaceName) fail(rule, fmt::format("interface name \"{}\" longer than 15 bytes", m.name));
  return host.resolve(m);
}

compiled::String compile_string(const Rule& rule, const StringMatch& s, StringPatterns* strings) {
  if (s.pattern.empty() || s.pattern.size() > StringMatch::kMaxPattern)
    fail(rule, "string: the pattern must be 1 to 128 bytes");
  if (s.from > s.to) fail(rule, "string: --from is beyond --to");
  compiled::String c;
  c.pattern = s.pattern;
  c.from = s.from;
  c.to = s.to;
  c.icase = s.icase;
  c.invert = s.invert;
  if (strings != nullptr) c.id = strings->add(s.pattern, s.from, s.to, s.icase, rule.where);
  if (c.icase) {
    for (char& ch : c.pattern) ch = static_cast<char>(kFold[static_cast<uint8_t>(ch)]);
  }
  // Horspool: a window whose last byte is b moves by the distance from the
  // last occurrence of b in pattern[0, n-1) to the pattern's end.
  const size_t n = c.pattern.size();
  c.shift.fill(static_cast<uint8_t>(n));
  for (size_t i = 0; i + 1 < n; ++i) {
    const auto b = static_cast<uint8_t>(c.pattern[i]);
    c.shift[b] = static_cast<uint8_t>(n - 1 - i);  // with icase, b is folded, as looked-up text bytes are
  }
  return c;
}

}  // namespace

CompiledRule compile_rule(const Rule& rule, const HostModel& host, MatchState& state,
                          const MatchOptions& options) {
  if (options.hz == 0 || options.hz > 10000) fail(rule, fmt::format("HZ {} outside 1..10000", options.hz));
  CompiledRule c;
  c.src_mask = rule.src.mask;
  c.src_addr = rule.src.addr & rule.src.mask;
  c.src_invert = rule.src_invert;
  c.dst_mask = rule.dst.mask;
  c.dst_addr = rule.dst.addr & rule.dst.mask;
  c.dst_invert = rule.dst_invert;
  c.proto = rule.protocol;
  c.proto_invert = rule.protocol_invert;
  c.check_in = !(rule.in_iface == IfaceMatch{});
  c.check_out = !(rule.out_iface == IfaceMatch{});
  if (c.check_in) c.in_ifaces = resolve_iface(rule, rule.in_iface, host);
  if (c.check_out) c.out_ifaces = resolve_iface(rule, rule.out_iface, host);
  c.frag_check = rule.fragment || rule.fragment_invert;
  c.frag_invert = rule.fragment_invert;
  if (c.frag_check) c.vary |= kVaryFragment;

  // The kernel's unconditional(): an all-zero ipt_ip (no -s -d -i -o -p -f,
  // no inversion; `-i +` keeps its "+" in the kernel, so it counts) and no
  // match at all, comments included.
  c.unconditional = rule.src.mask == 0 && !rule.src_invert && rule.dst.mask == 0 && !rule.dst_invert &&
                    !c.check_in && !c.check_out && rule.protocol == 0 && !rule.protocol_invert &&
                    !c.frag_check && rule.matches.empty();

  c.matches.reserve(rule.matches.size());
  for (const Match& m : rule.matches) {
    std::visit(
        Overloaded{
            [&](const TcpMatch& t) {
              if (t.flags_mask != 0 || t.flags_invert) c.vary |= kVaryTcpFlags;
              if (t.option != 0) c.vary |= kVaryTcpOption;
              c.matches.emplace_back(t);
            },
            [&](const UdpMatch& u) { c.matches.emplace_back(u); },
            [&](const IcmpMatch& i) {
              c.vary |= kVaryIcmp;
              c.matches.emplace_back(i);
            },
            [&](const MultiportMatch& mp) {
              size_t slots = 0;
              for (const PortRange& r : mp.ports) slots += r.lo == r.hi ? 1 : 2;
              if (slots > MultiportMatch::kMaxSlots || mp.ports.empty())
                fail(rule, "multiport: 1 to 15 ports (a range takes two)");
              compiled::Multiport cm;
              for (const PortRange& r : mp.ports) cm.ports[cm.count++] = r;
              cm.dir = mp.dir;
              cm.invert = mp.invert;
              c.matches.emplace_back(cm);
            },
            [&](const ConntrackMatch& ct) {
              c.vary |= kVaryCtState;
              if (ct.has(ConntrackMatch::kStatus)) c.vary |= kVaryCtStatus;
              if (ct.has(ConntrackMatch::kExpire)) c.vary |= kVaryCtExpire;
              if (ct.has(ConntrackMatch::kDir)) c.vary |= kVaryCtDir;
              c.matches.emplace_back(ct);
            },
            [&](const StateMatch& s) {
              c.vary |= kVaryCtState;
              c.matches.emplace_back(s);
            },
            [&](const AddrtypeMatch& a) { c.matches.emplace_back(a); },
            [&](const CommentMatch&) {},
            [&](const MarkMatch& mk) {
              c.vary |= kVaryMark;
              c.matches.emplace_back(mk);
            },
            [&](const ConnmarkMatch& cm) {
              c.vary |= kVaryConnmark | kVaryCtState;
              c.matches.emplace_back(cm);
            },
            [&](const IprangeMatch& r) { c.matches.emplace_back(r); },
            [&](const StringMatch& s) {
              c.vary |= kVaryPayload;
              c.matches.emplace_back(compile_string(rule, s, options.strings));
            },
            [&](const LimitMatch& l) {
              // The kernel's load-time check (limit_mt_check): the full
              // bucket, computed in 32 bits, must not be below one token.
              const uint32_t avg_burst = l.avg * l.burst;  // wraps like the kernel's u32 product
              if (l.burst == 0 || limit_user_to_credits(avg_burst, options.hz) <
                                      limit_user_to_credits(l.avg, options.hz))
                fail(rule, "limit: rate too slow for this burst (the kernel's 32-bit credit would overflow)");
              compiled::Limit cl;
              cl.cost = limit_user_to_credits(l.avg, options.hz);
              cl.cap = limit_user_to_credits(avg_burst, options.hz);
              cl.per_jiffy = limit_credits_per_jiffy(options.hz);
              cl.hz = options.hz;
              cl.slot = static_cast<uint32_t>(state.limits_.size());
              state.limits_.push_back({});
              state.limit_cap_.push_back(cl.cap);
              c.vary |= kVaryLimit;
              c.matches.emplace_back(cl);
            },
            [&](const StatisticMatch& s) {
              compiled::Statistic cs;
              cs.mode = s.mode;
              cs.invert = s.invert;
              if (s.mode == StatisticMatch::Mode::Nth) {
                if (s.every == 0 || s.packet >= s.every)
                  fail(rule, "statistic: --every must be at least 1 and --packet below it");
                cs.every = s.every;
                cs.slot = static_cast<uint32_t>(state.nth_.size());
                // The kernel keeps count in 0..every-1, starts it at
                // (every-1) - packet and matches when it wraps to 0.
                state.nth_start_.push_back(s.every - 1 - s.packet);
                state.nth_.push_back(s.every - 1 - s.packet);
              } else {
                if (s.probability > StatisticMatch::kProbabilityOne)
                  fail(rule, "statistic: probability above 1");
                cs.probability = s.probability;
                cs.slot = static_cast<uint32_t>(state.rng_.size());
                uint64_t seed = options.seed ^ (0xd1b54a32d192ed03ULL * (uint64_t{cs.slot} + 1));
                seed = splitmix64(seed);
                state.rng_seed_.push_back(seed);
                state.rng_.push_back(seed);
              }
              c.vary |= kVaryStatistic;
              c.matches.emplace_back(cs);
            },
            [&](const LengthMatch& l) {
              c.vary |= kVaryLength;
              c.matches.emplace_back(l);
            },
            [&](const PkttypeMatch& p) {
              c.vary |= kVaryPkttype;
              c.matches.emplace_back(p);
            },
            [&](const MacMatch& mc) {
              c.vary |= kVaryMac;
              c.matches.emplace_back(mc);
            },
            [&](const PortsMatch& p) { c.matches.emplace_back(p); },
        },
        m);
  }
  return c;
}

// ---------------------------------------------------------------------------
// Evaluate

namespace {

/// The first `n` bytes of the L4 header from the frame, or nullptr when the
/// IP payload (bounded by the IP total length, as the kernel's skb is) holds
/// fewer: the kernel's skb_header_pointer() failing.
const uint8_t* l4_bytes(const MatchContext& ctx, uint32_t n) noexcept {
  if (ctx.frame == nullptr) return nullptr;
  const PacketKey& k = *ctx.key;
  const uint32_t end = std::min<uint32_t>(uint32_t{k.l3_off} + k.l3_len, ctx.frame_len);
  if (uint32_t{k.l4_off} + n > end) return nullptr;
  return ctx.frame + k.l4_off;
}

/// Fragment offset in 8-byte units.
uint32_t frag_units(const PacketKey& k) noexcept { return k.frag & ip_frag::kOffsetMask; }

bool port_ok(const PortRange& r, uint16_t port, bool invert) noexcept { return r.contains(port) != invert; }

/// Ports of a TCP/UDP (or any 4-byte-port) header: the key's (post-NAT)
/// when it holds them, else the frame's. False when neither has them.
bool l4_ports(const MatchContext& ctx, uint32_t need, uint16_t& sport, uint16_t& dport) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.has(key_flag::kPorts)) {
    // The key holds ports only once the whole header parsed, which is at
    // least `need` bytes for every caller.
    sport = k.src_port;
    dport = k.dst_port;
    return true;
  }
  const uint8_t* h = l4_bytes(ctx, need);
  if (h == nullptr) return false;
  sport = load_be16(h);
  dport = load_be16(h + 2);
  return true;
}

/// Index of alternative T in CompiledMatch, for switching on index().
template <class T, class... Ts>
constexpr size_t index_in(const std::variant<Ts...>*) noexcept {
  constexpr bool same[] = {std::is_same_v<T, Ts>...};
  for (size_t i = 0; i < sizeof...(Ts); ++i) {
    if (same[i]) return i;
  }
  return sizeof...(Ts);
}
template <class T>
constexpr size_t kAlt = index_in<T>(static_cast<const CompiledMatch*>(nullptr));

MatchResult result(bool ok) noexcept { return ok ? MatchResult::Matched : MatchResult::NoMatch; }

MatchResult eval_tcp(const TcpMatch& m, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.is_later_fragment()) {
    // xt_tcpudp: an offset of 8 bytes could overwrite the flags of the first
    // fragment: drop it; any other later fragment simply does not match.
    return frag_units(k) == 1 ? MatchResult::Hotdrop : MatchResult::NoMatch;
  }
  uint16_t sport = 0, dport = 0;
  uint8_t flags = 0;
  if (k.has(key_flag::kTcpFlags)) {
    sport = k.src_port;
    dport = k.dst_port;
    flags = k.tcp_flags;
  } else {
    const uint8_t* th = l4_bytes(ctx, kTcpHeaderLen);
    if (th == nullptr) return MatchResult::Hotdrop;  // cannot examine: the kernel drops
    sport = load_be16(th);
    dport = load_be16(th + 2);
    flags = th[13];
  }
  if (!port_ok(m.sport, sport, m.sport_invert)) return MatchResult::NoMatch;
  if (!port_ok(m.dport, dport, m.dport_invert)) return MatchResult::NoMatch;
  if ((((flags & m.flags_mask) == m.flags_cmp)) == m.flags_invert) return MatchResult::NoMatch;
  if (m.option == 0) return MatchResult::Matched;

  // --tcp-option: walk the option list. Without frame bytes the list is
  // taken as empty (only hand-made keys lack them).
  uint32_t optlen = 0;
  const uint8_t* th = l4_bytes(ctx, kTcpHeaderLen);
  if (th != nullptr) {
    const uint32_t doff = static_cast<uint32_t>(th[12] >> 4) * 4U;
    if (doff < kTcpHeaderLen) return MatchResult::Hotdrop;
    optlen = doff - kTcpHeaderLen;
    if (optlen != 0 && l4_bytes(ctx, doff) == nullptr) return MatchResult::Hotdrop;
  }
  const uint8_t* op = th == nullptr ? nullptr : th + kTcpHeaderLen;
  for (uint32_t i = 0; i < optlen;) {
    if (op[i] == m.option) return result(!m.option_invert);
    if (op[i] < 2) {
      ++i;  // EOL and NOP are one byte
    } else {
      // A length byte of 0 (or one past the list) advances by one, as the
      // kernel does; either way the walk stays inside the list.
      const uint32_t len = i + 1 < optlen ? op[i + 1] : 0;
      i += len != 0 ? len : 1;
    }
  }
  return result(m.option_invert);
}

MatchResult eval_udp(const UdpMatch& m, const MatchContext& ctx) noexcept {
  if (ctx.key->is_later_fragment()) return MatchResult::NoMatch;
  uint16_t sport = 0, dport = 0;
  if (!l4_ports(ctx, kUdpHeaderLen, sport, dport)) return MatchResult::Hotdrop;
  return result(port_ok(m.sport, sport, m.sport_invert) && port_ok(m.dport, dport, m.dport_invert));
}

MatchResult eval_icmp(const IcmpMatch& m, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.is_later_fragment()) return MatchResult::NoMatch;
  uint8_t type = 0, code = 0;
  if (k.has(key_flag::kIcmp)) {
    type = k.icmp_type;
    code = k.icmp_code;
  } else {
    const uint8_t* h = l4_bytes(ctx, kIcmpHeaderLen);
    if (h == nullptr) return MatchResult::Hotdrop;
    type = h[0];
    code = h[1];
  }
  const bool hit = m.type == 0xff || (type == m.type && code >= m.code_lo && code <= m.code_hi);
  return result(hit != m.invert);
}

MatchResult eval_multiport(const compiled::Multiport& m, const MatchContext& ctx) noexcept {
  if (ctx.key->is_later_fragment()) return MatchResult::NoMatch;
  uint16_t sport = 0, dport = 0;
  if (!l4_ports(ctx, kPortBytes, sport, dport)) return MatchResult::Hotdrop;
  const bool src = m.dir != MultiportMatch::Dir::Destination;
  const bool dst = m.dir != MultiportMatch::Dir::Source;
  bool hit = false;
  for (uint32_t i = 0; i < m.count && !hit; ++i) {
    hit = (src && m.ports[i].contains(sport)) || (dst && m.ports[i].contains(dport));
  }
  return result(hit != m.invert);
}

bool ct_addr_ok(const ConntrackMatch& m, ConntrackMatch::Opt opt, const Ipv4Mask& want,
                uint32_t have) noexcept {
  if (!m.has(opt)) return true;
  const bool hit = ((have ^ want.addr) & want.mask) == 0;
  return hit != m.inverted(opt);
}

bool ct_port_ok(const ConntrackMatch& m, ConntrackMatch::Opt opt, const PortRange& want,
                uint16_t have) noexcept {
  if (!m.has(opt)) return true;
  return want.contains(have) != m.inverted(opt);
}

MatchResult eval_conntrack(const ConntrackMatch& m, const MatchContext& ctx) noexcept {
  using O = ConntrackMatch;
  const CtView& ct = ctx.ct;
  if (m.has(O::kState)) {
    uint8_t bits = 0;
    if (ct.present) {
      bits = ct.state_bits;
    } else {
      bits = (ct.state_bits & kCtUntracked) != 0 ? kCtUntracked : kCtInvalid;
    }
    if (((m.states & bits) != 0) == m.inverted(O::kState)) return MatchResult::NoMatch;
  }
  // No entry: nothing else can be checked; the match holds iff --ctstate
  // was given (and held, above).
  if (!ct.present) return result(m.has(O::kState));

  if (m.has(O::kDir) && ((ct.reply_dir == (m.dir == O::Dir::Reply)) == m.inverted(O::kDir)))
    return MatchResult::NoMatch;
  if (m.has(O::kProto) && ((ct.orig.proto == m.proto) == m.inverted(O::kProto))) return MatchResult::NoMatch;
  if (!ct_addr_ok(m, O::kOrigSrc, m.orig_src, ct.orig.src)) return MatchResult::NoMatch;
  if (!ct_addr_ok(m, O::kOrigDst, m.orig_dst, ct.orig.dst)) return MatchResult::NoMatch;
  if (!ct_addr_ok(m, O::kReplSrc, m.repl_src, ct.reply.src)) return MatchResult::NoMatch;
  if (!ct_addr_ok(m, O::kReplDst, m.repl_dst, ct.reply.dst)) return MatchResult::NoMatch;
  if (!ct_port_ok(m, O::kOrigSrcPort, m.orig_src_port, ct.orig.sport)) return MatchResult::NoMatch;
  if (!ct_port_ok(m, O::kOrigDstPort, m.orig_dst_port, ct.orig.dport)) return MatchResult::NoMatch;
  if (!ct_port_ok(m, O::kReplSrcPort, m.repl_src_port, ct.reply.sport)) return MatchResult::NoMatch;
  if (!ct_port_ok(m, O::kReplDstPort, m.repl_dst_port, ct.reply.dport)) return MatchResult::NoMatch;
  if (m.has(O::kStatus) && (((m.status & ct.status_bits) != 0) == m.inverted(O::kStatus)))
    return MatchResult::NoMatch;
  if (m.has(O::kExpire)) {
    const bool in = ct.expire_s >= m.expire_lo && ct.expire_s <= m.expire_hi;
    if (in == m.inverted(O::kExpire)) return MatchResult::NoMatch;
  }
  return MatchResult::Matched;
}

MatchResult eval_state(const StateMatch& m, const MatchContext& ctx) noexcept {
  const CtView& ct = ctx.ct;
  uint8_t bit = kCtInvalid;
  if ((ct.state_bits & kCtUntracked) != 0 && !ct.present) {
    bit = kCtUntracked;
  } else if (ct.present) {
    bit = static_cast<uint8_t>(ct.state_bits & (kCtNew | kCtEstablished | kCtRelated));
  }
  return result(((m.states & bit) != 0) != m.invert);
}

MatchResult eval_addrtype(const AddrtypeMatch& m, const MatchContext& ctx) noexcept {
  if (ctx.host == nullptr) return MatchResult::NoMatch;
  std::optional<uint16_t> limit;
  if (m.limit_iface_in) {
    if (ctx.in_iface != kNoIface) limit = ctx.in_iface;
  } else if (m.limit_iface_out) {
    if (ctx.out_iface != kNoIface) limit = ctx.out_iface;
  }
  const PacketKey& k = *ctx.key;
  if (m.src_types != 0) {
    const bool hit = (addr_type_bit(ctx.host->addr_type(k.src_ip, limit)) & m.src_types) != 0;
    if (hit == m.src_invert) return MatchResult::NoMatch;
  }
  if (m.dst_types != 0) {
    const bool hit = (addr_type_bit(ctx.host->addr_type(k.dst_ip, limit)) & m.dst_types) != 0;
    if (hit == m.dst_invert) return MatchResult::NoMatch;
  }
  return MatchResult::Matched;
}

MatchResult eval_iprange(const IprangeMatch& m, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (m.has_src && addr_in(k.src_ip, m.src_lo, m.src_hi) == m.src_invert) return MatchResult::NoMatch;
  if (m.has_dst && addr_in(k.dst_ip, m.dst_lo, m.dst_hi) == m.dst_invert) return MatchResult::NoMatch;
  return MatchResult::Matched;
}

/// The IP packet's bytes as -m string searches them: [0, data) empty when
/// there is no frame.
std::pair<const uint8_t*, uint32_t> string_text(const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (ctx.frame == nullptr || k.l3_off >= ctx.frame_len) return {nullptr, 0};
  return {ctx.frame + k.l3_off, std::min<uint32_t>(k.l3_len, ctx.frame_len - k.l3_off)};
}

/// Horspool over the IP packet bytes [from, min(to, len)).
bool string_found(const compiled::String& m, const MatchContext& ctx) noexcept {
  const auto [text, len] = string_text(ctx);
  if (text == nullptr) return false;
  const uint32_t end = std::min<uint32_t>(m.to, len);
  const auto n = static_cast<uint32_t>(m.pattern.size());
  const auto* pat = reinterpret_cast<const uint8_t*>(m.pattern.data());
  if (m.from > end || end - m.from < n) return false;
  for (uint32_t pos = m.from; pos + n <= end;) {
    uint32_t i = n;
    if (m.icase) {
      while (i > 0 && kFold[text[pos + i - 1]] == pat[i - 1]) --i;
    } else {
      while (i > 0 && text[pos + i - 1] == pat[i - 1]) --i;
    }
    if (i == 0) return true;
    const uint8_t last = m.icase ? kFold[text[pos + n - 1]] : text[pos + n - 1];
    pos += m.shift[last];
  }
  return false;
}

/// The scanner's answer when the pattern was registered with it (one scan
/// of the packet per hook for every pattern), else a search of its own.
bool string_in_packet(const compiled::String& m, const MatchContext& ctx) noexcept {
  if (ctx.strings == nullptr || m.id == kNoStringId) return string_found(m, ctx);
  const auto [data, len] = string_text(ctx);
  return ctx.strings->found(m.id, data, len);
}

MatchResult eval_pkttype(const PkttypeMatch& m, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  auto type = static_cast<uint8_t>(k.pkttype);
  if (k.pkttype == PktType::Loopback) {
    // xt_pkttype: a looped-back IPv4 packet is multicast or broadcast.
    type = (k.dst_ip & 0xf0000000U) == 0xe0000000U ? static_cast<uint8_t>(PktType::Multicast)
                                                    : static_cast<uint8_t>(PktType::Broadcast);
  }
  return result((type == static_cast<uint8_t>(m.type)) != m.invert);
}

MatchResult eval_mac(const MacMatch& m, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  // No Ethernet header (raw IP, cooked capture without an address) or a
  // loopback device: the kernel's mac match fails before comparing.
  if (!k.has(key_flag::kMac)) return MatchResult::NoMatch;
  if (ctx.host != nullptr && ctx.in_iface < ctx.host->iface_count() && ctx.host->iface(ctx.in_iface).loopback)
    return MatchResult::NoMatch;
  return result((k.src_mac == m.addr) != m.invert);
}

}  // namespace

/// Stateful match evaluation (friend of MatchState).
struct MatchEval {
  static MatchResult limit(const compiled::Limit& m, const MatchContext& ctx, MatchState& st) noexcept {
    MatchState::Bucket& b = st.limits_[m.slot];
    const uint64_t now = jiffies_of(ctx.now_ns, m.hz);
    if (!b.started) {
      b.started = true;
      b.prev_jiffies = now;
      b.credit = m.cap;
    }
    uint64_t elapsed = 0;
    if (now > b.prev_jiffies) {
      elapsed = now - b.prev_jiffies;
      b.prev_jiffies = now;
    }
    // 64-bit product truncated to the kernel's 32-bit credit_increase, then
    // a 32-bit add (it may wrap) capped at the bucket size.
    const auto increase = static_cast<uint32_t>(elapsed * m.per_jiffy);
    uint32_t credit = b.credit + increase;
    if (credit > m.cap) credit = m.cap;
    const bool hit = credit >= m.cost;
    if (hit) credit -= m.cost;
    b.credit = credit;
    return result(hit);
  }

  static MatchResult statistic(const compiled::Statistic& m, MatchState& st) noexcept {
    bool hit = false;
    if (m.mode == StatisticMatch::Mode::Nth) {
      uint32_t& count = st.nth_[m.slot];
      count = count == m.every - 1 ? 0 : count + 1;
      hit = count == 0;
    } else {
      const auto draw = static_cast<uint32_t>(splitmix64(st.rng_[m.slot]) >> 32) & 0x7fffffffU;
      hit = draw < m.probability;
    }
    return result(hit != m.invert);
  }
};

bool core_flow_matches(const CompiledRule& r, const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (((k.src_ip & r.src_mask) == r.src_addr) == r.src_invert) return false;
  if (((k.dst_ip & r.dst_mask) == r.dst_addr) == r.dst_invert) return false;
  if (r.proto != 0 && ((k.proto == r.proto) == r.proto_invert)) return false;
  if (r.check_in && !r.in_ifaces.contains(ctx.in_iface)) return false;
  if (r.check_out && !r.out_ifaces.contains(ctx.out_iface)) return false;
  return true;
}

uint32_t string_scan_occurring(const MatchContext& ctx) noexcept {
  const auto [data, len] = string_text(ctx);
  return ctx.strings->occurring(data, len);
}

RuleCore RuleCore::of(const CompiledRule& r) noexcept {
  RuleCore c;
  c.src_addr = r.src_addr;
  c.src_mask = r.src_mask;
  c.dst_addr = r.dst_addr;
  c.dst_mask = r.dst_mask;
  c.proto = r.proto;
  c.src_invert = r.src_invert;
  c.dst_invert = r.dst_invert;
  c.proto_invert = r.proto_invert;
  if (r.check_in) {
    c.exact = c.exact && r.in_ifaces.fits_word();
    c.in_bits = r.in_ifaces.low_word();
    c.in_other = r.in_ifaces.outside();
  }
  if (r.check_out) {
    c.exact = c.exact && r.out_ifaces.fits_word();
    c.out_bits = r.out_ifaces.low_word();
    c.out_other = r.out_ifaces.outside();
  }
  return c;
}

CoreFilter::CoreFilter(std::span<const RuleCore> cores) : cores_(cores.begin(), cores.end()) {
  const size_t blocks = (cores.size() + 15) / 16;
  const size_t n = blocks * 16;
  src_addr_.assign(n, 0);
  src_mask_.assign(n, 0);
  dst_addr_.assign(n, 0);
  dst_mask_.assign(n, 0);
  proto_.assign(n, 0);
  in_ok_.assign(blocks * kIfaceColumns, 0);
  out_ok_.assign(blocks * kIfaceColumns, 0);
  masks_.assign(blocks, Masks{});
  for (size_t i = 0; i < cores.size(); ++i) {
    const RuleCore& c = cores[i];
    const size_t b = i / 16;
    Masks& m = masks_[b];
    const auto bit = static_cast<uint16_t>(1U << (i % 16));
    src_addr_[i] = c.src_addr;
    src_mask_[i] = c.src_mask;
    dst_addr_[i] = c.dst_addr;
    dst_mask_[i] = c.dst_mask;
    proto_[i] = c.proto;
    for (size_t id = 0; id < kIfaceColumns; ++id) {
      const bool in = id < 64 ? ((c.in_bits >> id) & 1U) != 0 : c.in_other;
      const bool out = id < 64 ? ((c.out_bits >> id) & 1U) != 0 : c.out_other;
      if (in) in_ok_[b * kIfaceColumns + id] |= bit;
      if (out) out_ok_[b * kIfaceColumns + id] |= bit;
    }
    if (c.src_invert) m.src_inv |= bit;
    if (c.dst_invert) m.dst_inv |= bit;
    if (c.proto_invert) m.proto_inv |= bit;
    if (c.proto == 0) m.proto_any |= bit;
    if (!c.exact) m.inexact |= bit;
  }
}

uint32_t CoreFilter::block(uint32_t b, const PacketKey& k, uint16_t in, uint16_t out) const noexcept {
  const Masks& m = masks_[b];
  const size_t at = size_t{b} * 16;
  const uint32_t ifaces = uint32_t{in_ok_[b * kIfaceColumns + std::min<size_t>(in, 64)]} &
                          out_ok_[b * kIfaceColumns + std::min<size_t>(out, 64)];
#if defined(__AVX2__)
  // Eight rules a half, in 32-bit lanes.
  const __m256i ksrc = _mm256_set1_epi32(static_cast<int>(k.src_ip));
  const __m256i kdst = _mm256_set1_epi32(static_cast<int>(k.dst_ip));
  const __m256i kproto = _mm256_set1_epi32(k.proto);
  const auto lanes = [](__m256i eq) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(eq)));
  };
  const auto load = [](const std::vector<uint32_t>& v, size_t i) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&v[i]));
  };
  uint32_t s = 0;
  uint32_t d = 0;
  uint32_t p = 0;
  for (size_t h = 0; h < 2; ++h) {
    const size_t i = at + h * 8;
    s |= lanes(_mm256_cmpeq_epi32(_mm256_and_si256(ksrc, load(src_mask_, i)), load(src_addr_, i))) << (h * 8);
    d |= lanes(_mm256_cmpeq_epi32(_mm256_and_si256(kdst, load(dst_mask_, i)), load(dst_addr_, i))) << (h * 8);
    p |= lanes(_mm256_cmpeq_epi32(kproto, load(proto_, i))) << (h * 8);
  }
  s ^= m.src_inv;
  d ^= m.dst_inv;
  p = (p ^ m.proto_inv) | m.proto_any;
  return (s & d & p & ifaces) | m.inexact;
#else
  return block_portable(b, k, in, out);
#endif
}

uint32_t CoreFilter::block_portable(uint32_t b, const PacketKey& k, uint16_t in, uint16_t out) const noexcept {
  const Masks& m = masks_[b];
  const size_t at = size_t{b} * 16;
  const uint32_t ifaces = uint32_t{in_ok_[b * kIfaceColumns + std::min<size_t>(in, 64)]} &
                          out_ok_[b * kIfaceColumns + std::min<size_t>(out, 64)];
  uint32_t bits = 0;
  const size_t end = std::min(cores_.size(), at + 16);
  for (size_t i = at; i < end; ++i) bits |= static_cast<uint32_t>(cores_[i].matches(k, in, out)) << (i - at);
  return (bits & ifaces) | m.inexact;
}

MatchResult evaluate(const CompiledRule& r, const MatchContext& ctx, MatchState& state,
                     uint32_t& vary) noexcept {
  if (!core_flow_matches(r, ctx)) return MatchResult::NoMatch;
  return evaluate_past_core(r, ctx, state, vary);
}

MatchResult evaluate_past_core(const CompiledRule& r, const MatchContext& ctx, MatchState& state,
                               uint32_t& vary) noexcept {
  vary |= r.vary;
  if (r.frag_check && ctx.key->is_later_fragment() == r.frag_invert) return MatchResult::NoMatch;

  for (const CompiledMatch& cm : r.matches) {
    MatchResult res = MatchResult::Matched;
    switch (cm.index()) {
      case kAlt<TcpMatch>: res = eval_tcp(*std::get_if<TcpMatch>(&cm), ctx); break;
      case kAlt<UdpMatch>: res = eval_udp(*std::get_if<UdpMatch>(&cm), ctx); break;
      case kAlt<IcmpMatch>: res = eval_icmp(*std::get_if<IcmpMatch>(&cm), ctx); break;
      case kAlt<compiled::Multiport>: res = eval_multiport(*std::get_if<compiled::Multiport>(&cm), ctx); break;
      case kAlt<ConntrackMatch>: res = eval_conntrack(*std::get_if<ConntrackMatch>(&cm), ctx); break;
      case kAlt<StateMatch>: res = eval_state(*std::get_if<StateMatch>(&cm), ctx); break;
      case kAlt<AddrtypeMatch>: res = eval_addrtype(*std::get_if<AddrtypeMatch>(&cm), ctx); break;
      case kAlt<MarkMatch>: {
        const auto& m = *std::get_if<MarkMatch>(&cm);
        res = result(((ctx.mark & m.mask) == m.value) != m.invert);
        break;
      }
      case kAlt<ConnmarkMatch>: {
        const auto& m = *std::get_if<ConnmarkMatch>(&cm);
        res = ctx.ct.present ? result(((ctx.ct.ctmark & m.mask) == m.value) != m.invert)
                             : MatchResult::NoMatch;
        break;
      }
      case kAlt<IprangeMatch>: res = eval_iprange(*std::get_if<IprangeMatch>(&cm), ctx); break;
      case kAlt<compiled::String>: {
        const auto& m = *std::get_if<compiled::String>(&cm);
        res = result(string_in_packet(m, ctx) != m.invert);
        break;
      }
      case kAlt<compiled::Limit>: res = MatchEval::limit(*std::get_if<compiled::Limit>(&cm), ctx, state); break;
      case kAlt<compiled::Statistic>: res = MatchEval::statistic(*std::get_if<compiled::Statistic>(&cm), state); break;
      case kAlt<LengthMatch>: {
        const auto& m = *std::get_if<LengthMatch>(&cm);
        const uint16_t len = ctx.key->l3_len;
        res = result((len >= m.min && len <= m.max) != m.invert);
        break;
      }
      case kAlt<PkttypeMatch>: res = eval_pkttype(*std::get_if<PkttypeMatch>(&cm), ctx); break;
      case kAlt<MacMatch>: res = eval_mac(*std::get_if<MacMatch>(&cm), ctx); break;
      case kAlt<PortsMatch>: {
        const auto& m = *std::get_if<PortsMatch>(&cm);
        res = result(m.sport.contains(ctx.key->src_port) && m.dport.contains(ctx.key->dst_port));
        break;
      }
      default: break;
    }
    if (res != MatchResult::Matched) return res;
  }
  return MatchResult::Matched;
}


}  // namespace nfb
