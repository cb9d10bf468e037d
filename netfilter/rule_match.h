// Rule matching: does one iptables rule match one packet at one hook?
//
// Idea: two phases, like every classifier here. compile_rule() turns a
// `Rule` (rule.h) into a CompiledRule once, at load time: -i/-o patterns
// become interface-id bit sets (HostModel::resolve), comments disappear,
// multiport lists move inline, string patterns get their case folding and a
// skip table, limit buckets get the kernel's credit arithmetic, and every
// stateful match (limit, statistic) gets a slot in a MatchState arena.
// evaluate() then answers per packet from the PacketKey, a few frame bytes
// and a MatchContext, with no allocation, no exceptions, no string work and
// no virtual calls: a switch over a std::variant per module match.
//
// The answers are the kernel's (Linux 6.x ip_tables / xt_* modules), checked
// on this machine's kernel (6.18, HZ 250) with iptables-legacy in a network
// namespace where noted [kernel]. Order of evaluation is the kernel's too:
// the core match, then the module matches in rule order, stopping at the
// first that fails, so stateful matches (limit tokens, nth counters, random
// draws) are consumed exactly when the kernel consumes them.
//
// Core match (ip_packet_match):
//  - -s/-d: (addr & mask) == rule addr, xor invert. -p: 0 matches every
//    protocol (`! -p all` cannot be loaded). -f: the fragment offset is
//    non-zero; `! -f`: it is zero.
//  - -i/-o: the interface name against the pattern (`eth0` exact, `veth+`
//    prefix, `+` anything); a hook without that interface compares the empty
//    name, which only `+` and inverted patterns match (`! -i docker0` matches
//    in OUTPUT). Names the host does not have still match by pattern.
//
// Module matches, with the corner cases that decide counters:
//  - tcp/udp/icmp/multiport on a non-first fragment: no match. tcp with
//    fragment offset exactly 1 (8 bytes): HOTDROP, the packet is dropped on
//    the spot and the rule does not count it [kernel]. A header shorter than
//    the module reads (tcp 20, udp 8, icmp 8, multiport 4 bytes of IP
//    payload): HOTDROP [kernel]. --tcp-option with a data offset below 5 or
//    options beyond the packet: HOTDROP. --tcp-flags compares byte 13 of the
//    header (CWR and ECE included). icmp type 255 matches any type.
//  - conntrack: without an entry (INVALID, UNTRACKED, and every packet in
//    the raw table, which runs before conntrack) the result is "--ctstate
//    was given and holds": every other option is ignored [kernel:
//    `--ctstate INVALID ! --ctproto 17` matches a UDP packet in raw], and a
//    match without --ctstate fails [kernel: `! --ctstatus ASSURED` fails in
//    raw]. --ctdir tests the packet's direction. --ctstatus tests whether
//    ANY listed bit is set (NONE never matches, `! --ctstatus NONE` always
//    does, for tracked packets). --ctexpire compares the remaining lifetime
//    in whole seconds. Ports compare the entry's tuple ports; for ICMP the
//    kernel's tuple holds the id as the source "port" and (type << 8 |
//    code) as the destination "port" (see CtTupleView). A CT template
//    (raw's `-j CT --zone ...`) counts as an entry: NEW, CONFIRMED [kernel].
//  - state: INVALID without an entry, UNTRACKED when untracked, else the
//    packet's NEW/ESTABLISHED/RELATED; SNAT/DNAT are never seen.
//  - connmark: no entry -> no match, even inverted [kernel].
//  - mark: (skb mark & mask) == value, xor invert; the mark as set so far,
//    MARK targets earlier in the walk included.
//  - addrtype: HostModel::addr_type of the current (post-NAT) addresses, on
//    the in/out interface with --limit-iface-in/out [kernel].
//  - iprange: lo <= addr <= hi, xor invert (a reversed range never matches).
//  - string: the pattern must lie wholly inside IP-packet bytes [from, to)
//    (offsets from the IP header; the packet length bounds `to`) [kernel:
//    "ab" ending at byte 41 matches with --to 41, not with --to 40]. --icase
//    folds case as the kernel's toupper() does, Latin-1 letters included
//    (0xe9 matches |c9|, 0xdf folds to 0xbf) [kernel]. bm and kmp find the
//    same occurrences; searched in the frame bytes as received (a NAT
//    rewrite of the header is not reflected). These are the documented
//    semantics (iptables-extensions(8)); the kernel's textsearch on
//    non-linear skbs is not modelled.
//  - limit: xt_limit's token bucket in the kernel's 32-bit credit units:
//    credits per jiffy = the largest power of two <= 2^32-1 / (HZ*86400)
//    (128 at HZ 250), cost = credits(avg), cap = credits(avg * burst) with
//    the kernel's 32-bit wrap-around (a slow rate may get fewer than `burst`
//    tokens), refill (jiffies elapsed * credits per jiffy) truncated to 32
//    bits. Jiffies are packet time: floor(now_ns * HZ / 1e9). The bucket
//    starts full at the first packet that reaches it (as if the rule were
//    loaded just before); a timestamp earlier than the last one counts as no
//    time elapsed (jiffies never go back).
//  - statistic nth: a counter per rule that only packets reaching the match
//    advance; the k-th such packet (k from 0) matches when k % every ==
//    packet [kernel: every 3 packet 1 matched the 2nd of 4]. random: a draw
//    of 31 bits below `probability`, from a per-match splitmix64 stream
//    seeded from MatchOptions::seed (reproducible; the kernel's draws are not).
//  - length: the IP total length. pkttype: the frame's link class; a
//    loopback packet counts as multicast when its destination is multicast,
//    else as broadcast (as the kernel's xt_pkttype). mac: the Ethernet source
//    address; packets without one, and packets that came in on a loopback
//    interface, never match, even inverted.
//  - ports (ClassBench only): the key's ports whatever the protocol (0 for
//    protocols without ports).
//
// The whole table of a ruleset agreed with the kernel's iptables-save -c
// counters for a set of crafted frames (fragments, truncated headers, string,
// pkttype, mac, addrtype, nth, limit, conntrack without entry):
// tests/chain_walk_test.cpp, KernelWalkTest.
//
// Cost: the core match is a few compares and two bit tests; a module match
// is one switch case, mostly on key fields. string is Horspool over the
// packet, the only match that reads more than a header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "classifier/string_scan.h"
#include "netfilter/host.h"
#include "packet/packet_key.h"
#include "rules/rule.h"

namespace nfb {

// ---------------------------------------------------------------------------
// What a match may look at

/// One direction of a conntrack entry, as -m conntrack reads it. Host order.
/// TCP/UDP: ports. ICMP: sport = the query id and dport = (type << 8) | code,
/// which is how the kernel's tuple stores them (so `--ctorigdstport 2048`
/// matches an echo request). Other protocols: ports 0.
struct CtTupleView {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
};

/// The conntrack facts of the packet being matched. Plain data: the
/// pipeline fills it from its conntrack entry at each hook; a walk may change
/// `ctmark` (CONNMARK) and `state_bits` (NOTRACK).
///
/// No entry (`present` false): state_bits is kCtInvalid, or kCtUntracked for
/// an untracked packet. In the raw table conntrack has not run yet, so the
/// pipeline passes "no entry, INVALID" there, as the kernel shows it.
struct CtView {
  /// CtStateBit of this packet: one of NEW, ESTABLISHED, RELATED, INVALID,
  /// UNTRACKED, plus kCtSnat/kCtDnat when the entry has that NAT manip.
  uint8_t state_bits = kCtInvalid;
  bool reply_dir = false;   // the packet goes in the entry's REPLY direction
  bool present = false;     // an entry is attached (NEW/ESTABLISHED/RELATED)
  uint8_t status_bits = 0;  // CtStatusBit set of the entry
  uint32_t expire_s = 0;    // remaining lifetime, whole seconds
  uint32_t ctmark = 0;
  CtTupleView orig;         // the entry's ORIGINAL tuple
  CtTupleView reply;        // the entry's REPLY tuple
};

/// Everything a match may look at for one packet at one hook.
struct MatchContext {
  /// The packet as it is NOW: addresses and ports after any DNAT/SNAT
  /// already applied on this path. Never null during a match.
  const PacketKey* key = nullptr;
  /// The frame as received (key->l3_off etc. index into it); read for
  /// --tcp-option, -m string and headers the key could not hold. May be null
  /// (hand-made keys): then those read nothing (tcp options empty, string
  /// never found, a header missing from the key counts as truncated).
  const uint8_t* frame = nullptr;
  uint32_t frame_len = 0;
  uint16_t in_iface = kNoIface;   // host interface id; kNoIface when the hook has none
  uint16_t out_iface = kNoIface;
  Hook hook = Hook::Prerouting;
  uint64_t now_ns = 0;            // packet timestamp (limit)
  uint32_t mark = 0;              // skb mark; MARK/CONNMARK in a walk update it
  bool nf_trace = false;          // skb->nf_trace: set by TRACE, kept across tables
  CtView ct;
  /// The host the rules were compiled against (addrtype, loopback test of
  /// -m mac). Must be the same model compile_rule() got.
  const HostModel* host = nullptr;
  /// The scanner of the patterns registered at compile (MatchOptions::
  /// strings), holding this packet's scan at this hook; null: each string
  /// match searches the packet itself.
  StringScanner* strings = nullptr;
};

/// The scanner's answer (ctx.strings must be set): which registered string
/// patterns occur in the packet as it is at this hook, as
/// StringScanner::occurring() numbers them.
uint32_t string_scan_occurring(const MatchContext& ctx) noexcept;

// ---------------------------------------------------------------------------
// Flow variance: what the fast path must know before caching a path

/// FlowVary bits: which packet facts a rule looks at that can differ between
/// packets of one flow (same addresses, ports, protocol and interfaces after
/// NAT). A walk ORs in the bits of every rule whose flow-invariant core (-s,
/// -d, -p, -i, -o) matched the packet, i.e. every rule whose outcome could
/// have been decided by something else. Zero means the walk's path (rules
/// hit, verdict) is a function of the flow and can be cached for it.
///
/// Not flagged because it concerns nearly every rule: tcp/udp/icmp/
/// multiport/ports matches, and hotdrops, depend on whether the packet is a
/// non-first fragment and on its L4 header being complete. A fast path must
/// therefore never reuse a path for a fragment or for a key whose L4 header
/// did not parse.
enum FlowVaryBit : uint32_t {
  kVaryTcpFlags = 1U << 0,    // tcp --tcp-flags / --syn
  kVaryTcpOption = 1U << 1,   // tcp --tcp-option
  kVaryIcmp = 1U << 2,        // icmp --icmp-type (requests and replies share a flow)
  kVaryLength = 1U << 3,      // -m length
  kVaryPayload = 1U << 4,     // -m string
  kVaryFragment = 1U << 5,    // -f / ! -f
  kVaryMark = 1U << 6,        // -m mark (the skb mark, set by MARK/CONNMARK)
  kVaryConnmark = 1U << 7,    // -m connmark (needs an entry, reads its mark)
  kVaryCtState = 1U << 8,     // -m state, and any -m conntrack (an entry may be absent)
  kVaryCtStatus = 1U << 9,    // --ctstatus
  kVaryCtExpire = 1U << 10,   // --ctexpire (changes with time)
  kVaryCtDir = 1U << 11,      // --ctdir
  kVaryPkttype = 1U << 12,    // -m pkttype
  kVaryMac = 1U << 13,        // -m mac
  kVaryLimit = 1U << 14,      // -m limit: stateful, depends on time
  kVaryStatistic = 1U << 15,  // -m statistic: stateful (nth counter, random draw)
};
/// Matches with side effects: a path holding them must be re-evaluated for
/// every packet even when cached, or the kernel's counts are lost.
inline constexpr uint32_t kVaryStateful = kVaryLimit | kVaryStatistic;
inline constexpr uint32_t kVaryAll = (1U << 16) - 1U;

/// Short names of FlowVary bits, comma-separated in bit order
/// ("tcp_flags,mark"), for reports; "" for 0.
std::string format_flow_vary(uint32_t bits);

// ---------------------------------------------------------------------------
// Compiled form

/// Build-time parameters of matching.
struct MatchOptions {
  /// The kernel's CONFIG_HZ, for -m limit (this machine: 250; 100, 300 and
  /// 1000 also exist). Must be 1..10000.
  uint32_t hz = 250;
  /// Seed of the -m statistic --mode random streams.
  uint64_t seed = 0x6e66'6265'6e63'6852ULL;
  /// When set, every -m string pattern is registered here and its compiled
  /// match carries the id (classifier/string_scan.h): a MatchContext with a
  /// StringScanner then reads the scan's result instead of searching.
  StringPatterns* strings = nullptr;
};

namespace compiled {

/// multiport: ranges inline (a single port is lo == hi).
struct Multiport {
  std::array<PortRange, MultiportMatch::kMaxSlots> ports{};
  uint8_t count = 0;
  MultiportMatch::Dir dir = MultiportMatch::Dir::Destination;
  bool invert = false;
};

/// string: the pattern (upper-cased as the kernel folds it when icase) and a
/// Horspool shift table.
struct String {
  std::string pattern;
  std::array<uint8_t, 256> shift{};  // bytes to advance when the window's last byte is b
  uint16_t from = 0;
  uint16_t to = 65535;
  bool icase = false;
  bool invert = false;
  uint32_t id = kNoStringId;  // MatchOptions::strings' id of the pattern, if registered
};

/// limit: the kernel's credit units, fixed at load.
struct Limit {
  uint32_t cost = 0;         // credits per packet: credits(avg)
  uint32_t cap = 0;          // bucket size: credits(avg * burst), 32-bit
  uint32_t per_jiffy = 0;    // credits refilled per jiffy
  uint32_t hz = 250;
  uint32_t slot = 0;         // MatchState limit slot
};

/// statistic with its state slot.
struct Statistic {
  StatisticMatch::Mode mode = StatisticMatch::Mode::Random;
  uint32_t probability = 0;  // random: match when 31 random bits < probability
  uint32_t every = 1;        // nth
  bool invert = false;
  uint32_t slot = 0;         // MatchState nth or rng slot
};

}  // namespace compiled

/// One module match, compiled. Modules without build-time work keep their
/// rule.h struct; -m comment is dropped at compile time (it always matches).
using CompiledMatch =
    std::variant<TcpMatch, UdpMatch, IcmpMatch, compiled::Multiport, ConntrackMatch, StateMatch,
                 AddrtypeMatch, MarkMatch, ConnmarkMatch, IprangeMatch, compiled::String,
                 compiled::Limit, compiled::Statistic, LengthMatch, PkttypeMatch, MacMatch,
                 PortsMatch>;

/// A rule ready for matching. Built by compile_rule(); read-only afterwards.
struct CompiledRule {
  // Core match. Addresses are host order, already masked.
  uint32_t src_addr = 0, src_mask = 0;
  uint32_t dst_addr = 0, dst_mask = 0;
  IfaceSet in_ifaces;   // ids -i accepts (inversion folded in)
  IfaceSet out_ifaces;  // ids -o accepts
  uint8_t proto = 0;    // 0: any
  bool src_invert = false;
  bool dst_invert = false;
  bool proto_invert = false;
  bool check_in = false;     // -i given (else in_ifaces is not consulted)
  bool check_out = false;
  bool frag_check = false;   // -f or ! -f given
  bool frag_invert = false;  // ! -f
  /// The kernel's "unconditional" rule: no core criteria and no module match
  /// at all (comments count as matches). TRACE labels such a rule with a
  /// standard verdict (ACCEPT/DROP/RETURN) as "policy"/"return" [kernel].
  bool unconditional = false;
  uint32_t vary = 0;  // FlowVary bits of this rule's checks
  std::vector<CompiledMatch> matches;  // module matches, rule order
};

/// The mutable side of matching: limit buckets, nth counters and random
/// streams, one slot per stateful match, allocated by compile_rule(). Passed
/// by non-const reference to evaluate(); lookups never allocate. One arena
/// per independent copy of the kernel state (not thread-safe).
class MatchState {
 public:
  MatchState() = default;

  /// Back to the state right after loading: buckets full (from the next
  /// packet's time), nth counters at their start, random streams reseeded.
  void reset() noexcept;
  size_t limit_slots() const noexcept { return limits_.size(); }
  size_t nth_slots() const noexcept { return nth_.size(); }
  size_t random_slots() const noexcept { return rng_.size(); }

  struct Bucket {
    uint64_t prev_jiffies = 0;  // last refill time
    uint32_t credit = 0;
    bool started = false;       // set by the first packet
  };
  /// Current credit of a limit slot (tests, reports).
  const Bucket& bucket(uint32_t slot) const noexcept { return limits_[slot]; }

 private:
  friend CompiledRule compile_rule(const Rule&, const HostModel&, MatchState&, const MatchOptions&);
  friend struct MatchEval;

  std::vector<Bucket> limits_;
  std::vector<uint32_t> limit_cap_;  // to refill on first use
  std::vector<uint32_t> nth_;        // kernel count: 0 .. every-1
  std::vector<uint32_t> nth_start_;  // (every - 1) - packet
  std::vector<uint64_t> rng_;        // splitmix64 states
  std::vector<uint64_t> rng_seed_;
};

/// The kernel's credit of a time `user` in 1/10000 s (xt_limit's
/// user2credits) for `hz`, in 32-bit arithmetic, wrap-around included.
uint32_t limit_user_to_credits(uint32_t user, uint32_t hz) noexcept;
/// Credits refilled per jiffy for `hz`: the largest power of two not above
/// (2^32 - 1) / (hz * 86400). 128 for HZ 250, 32 for HZ 1000.
uint32_t limit_credits_per_jiffy(uint32_t hz) noexcept;
/// floor(now_ns * hz / 1e9) without overflow.
uint64_t jiffies_of(uint64_t now_ns, uint32_t hz) noexcept;

/// Compiles `rule` for `host`. Stateful matches get slots in `state`.
/// Throws LoadError (at rule.where) for what the kernel would refuse to load
/// and the reader may not have seen in a hand-made rule: a limit with burst 0
/// or whose 32-bit credit overflows, a string pattern empty or over 128
/// bytes or with --from beyond --to, more than 15 multiport slots, a
/// statistic with every 0, packet >= every or probability above 2^31, an
/// interface name over 15 bytes, MatchOptions::hz outside 1..10000.
CompiledRule compile_rule(const Rule& rule, const HostModel& host, MatchState& state,
                          const MatchOptions& options = {});

/// Outcome of matching one rule.
enum class MatchResult : uint8_t {
  NoMatch,
  Matched,
  Hotdrop,  // a match asked for the packet to be dropped now (the rule does not count it)
};

/// Matches `rule` against the packet in `ctx`, in the kernel's order. ORs
/// the rule's FlowVary bits into `vary` when its flow-invariant core (-s -d
/// -p -i -o) matched. ctx.key must be set. No allocation, no exceptions.
MatchResult evaluate(const CompiledRule& rule, const MatchContext& ctx, MatchState& state,
                     uint32_t& vary) noexcept;
inline MatchResult evaluate(const CompiledRule& rule, const MatchContext& ctx,
                            MatchState& state) noexcept {
  uint32_t vary = 0;
  return evaluate(rule, ctx, state, vary);
}
/// True when evaluate() says Match.
inline bool matches(const CompiledRule& rule, const MatchContext& ctx, MatchState& state) noexcept {
  return evaluate(rule, ctx, state) == MatchResult::Matched;
}

/// The flow-invariant part of the core match alone (-s -d -p -i -o), for a
/// classifier that pre-filters on it. Stateless.
bool core_flow_matches(const CompiledRule& rule, const MatchContext& ctx) noexcept;

/// The same test in 40 bytes and a dozen branch-free operations, for a walk
/// that tests rule after rule: core_flow_matches() without its pointer
/// chasing (interface sets as one 64-bit word). `exact` false (a host of
/// more than 64 interfaces): use core_flow_matches().
struct RuleCore {
  uint32_t src_addr = 0, src_mask = 0;
  uint32_t dst_addr = 0, dst_mask = 0;
  uint64_t in_bits = ~uint64_t{0};   // -i: interface ids 0..63 accepted (all when not given)
  uint64_t out_bits = ~uint64_t{0};
  uint8_t proto = 0;
  bool src_invert = false;
  bool dst_invert = false;
  bool proto_invert = false;
  bool in_other = true;   // -i accepts ids beyond 63 (kNoIface: no interface at this hook)
  bool out_other = true;
  bool exact = true;

  static RuleCore of(const CompiledRule& r) noexcept;
  bool matches(const PacketKey& k, uint16_t in, uint16_t out) const noexcept {
    const bool src = ((k.src_ip & src_mask) == src_addr) != src_invert;
    const bool dst = ((k.dst_ip & dst_mask) == dst_addr) != dst_invert;
    const bool pro = proto == 0 || ((k.proto == proto) != proto_invert);
    const bool i = in < 64 ? ((in_bits >> in) & 1U) != 0 : in_other;
    const bool o = out < 64 ? ((out_bits >> out) & 1U) != 0 : out_other;
    return src & dst & pro & i & o;
  }
};
static_assert(sizeof(RuleCore) <= 40);

/// The cores of a sequence of rules (a table's, in flat order), 16 to a
/// block in columns, so that a handful of vector instructions test 16 rules'
/// cores at once: the walk's first test of every rule, at a few cycles a
/// rule. block(b, ...) has bit i set when rule 16 * b + i's core matches;
/// rules whose core is not exact (more than 64 interfaces) always get their
/// bit, and inexact(b) says which: check those with core_flow_matches().
/// AVX2 where the build has it (-Dnative on a CPU with it: every x86-64
/// server of the last decade), a loop over RuleCore::matches() elsewhere;
/// tests/rule_match_test.cpp compares the build's path with
/// core_flow_matches().
class CoreFilter {
 public:
  CoreFilter() = default;
  explicit CoreFilter(std::span<const RuleCore> cores);
  uint32_t block(uint32_t b, const PacketKey& k, uint16_t in, uint16_t out) const noexcept;
  /// block() without vector instructions: what block() is on a build
  /// without AVX2, and the reference the tests hold the vector path to.
  uint32_t block_portable(uint32_t b, const PacketKey& k, uint16_t in, uint16_t out) const noexcept;
  uint32_t inexact(uint32_t b) const noexcept { return masks_[b].inexact; }
  size_t blocks() const noexcept { return masks_.size(); }

 private:
  struct Masks {
    uint16_t src_inv = 0, dst_inv = 0, proto_inv = 0, proto_any = 0, inexact = 0;
  };
  static constexpr size_t kIfaceColumns = 65;  // ids 0..63, then every other id
  std::vector<uint32_t> src_addr_, src_mask_, dst_addr_, dst_mask_, proto_;
  // Per block and interface column: which of its rules accept the interface.
  std::vector<uint16_t> in_ok_, out_ok_;
  std::vector<Masks> masks_;
  std::vector<RuleCore> cores_;  // the scalar path's
};

/// evaluate() for a rule whose core_flow_matches() holds: its FlowVary bits,
/// the fragment test and the module matches.
MatchResult evaluate_past_core(const CompiledRule& rule, const MatchContext& ctx, MatchState& state,
                               uint32_t& vary) noexcept;

}  // namespace nfb
