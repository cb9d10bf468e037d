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
// no virtual calls: a switch over a std::variant per module match
// (visit_switch), each case the module's match() inlined.
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
// Module matches: each module's header under rules/matches/ says what the
// kernel does for it, corner cases included (hotdrops on short headers and
// fragments, conntrack without an entry, string offsets, the limit bucket's
// 32-bit credits, nth counters), and holds its evaluation: match(), a
// template over the MatchContext and MatchState below, instantiated here.
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
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "classifier/string_scan.h"
#include "netfilter/host.h"
#include "packet/packet_key.h"
#include "rules/module.h"
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
  bool confirmed = false;   // the entry is in the table (not this packet's new one)
  uint32_t handle = 0;      // the entry's conntrack slot (present only)
  uint64_t id = 0;          // the entry's creation number (present only)
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
  /// Bridges (-m physdev): the packet came in through a bridge port with
  /// bridge-nf-call-iptables on (br_netfilter's info), by port in_port
  /// (kNoIface: not known); it is being bridged, out by port out_port
  /// (FORWARD and POSTROUTING of a bridged packet; kNoIface: not known).
  uint16_t in_port = kNoIface;
  uint16_t out_port = kNoIface;
  bool bridge_info = false;
  bool bridged = false;
  Hook hook = Hook::Prerouting;
  uint64_t now_ns = 0;            // packet timestamp (limit)
  uint32_t mark = 0;              // skb mark; MARK/CONNMARK in a walk update it
  /// The TOS byte when a TOS/DSCP target of this walk rewrote it; -1: the
  /// key's. Read it with packet_tos().
  int16_t tos = -1;
  bool nf_trace = false;          // skb->nf_trace: set by TRACE, kept across tables
  CtView ct;
  /// The host the rules were compiled against (addrtype, loopback test of
  /// -m mac). Must be the same model compile_rule() got.
  const HostModel* host = nullptr;
  /// The scanner of the patterns registered at compile (MatchOptions::
  /// strings), holding this packet's scan at this hook; null: each string
  /// match searches the packet itself.
  StringScanner* strings = nullptr;
  /// The conntrack table's answers for -m connlimit; null: no conntrack
  /// (connlimit never matches).
  const ConnLiveness* conns = nullptr;
};

/// The scanner's answer (ctx.strings must be set): which registered string
/// patterns occur in the packet as it is at this hook, as
/// StringScanner::occurring() numbers them.
uint32_t string_scan_occurring(const MatchContext& ctx) noexcept;

// ---------------------------------------------------------------------------
// Flow variance: what the fast path must know before caching a path

/// The FlowVary bits (rules/module.h) say which packet facts a rule looks
/// at that can differ between packets of one flow; each module gives its
/// own (vary()).
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
  /// The -m recent lists of the namespace, shared by every table compiled
  /// with these options (the pipeline's); null: each MatchState keeps its
  /// own.
  RecentLists* recent = nullptr;
  /// The -m hashlimit tables of the namespace, likewise.
  HashlimitTables* hashlimit = nullptr;
  /// nf_conntrack_max: the connections a -m connlimit rule can hold.
  uint32_t conntrack_max = 262144;
  /// The host's IP sets (-m set); null: none exist (a rule naming one is
  /// refused, as the kernel refuses it).
  IpSets* ipsets = nullptr;
};

/// The compiled form of a module: its Compiled type when it has build-time
/// work (multiport, string, limit, statistic), else the module's struct.
template <class M>
struct CompiledOf {
  using type = M;
};
template <class M>
  requires requires { typename M::Compiled; }
struct CompiledOf<M> {
  using type = typename M::Compiled;
};
template <class List>
struct CompiledVariant;
template <class... Ms>
struct CompiledVariant<TypeList<Ms...>> {
  using type = std::variant<typename CompiledOf<Ms>::type...>;
};

/// One module match, compiled (-m comment compiles to nothing).
using CompiledMatch = CompiledVariant<MatchModules>::type;

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
/// streams, one slot per stateful match, allocated by compile_rule(), and
/// the -m recent lists (MatchOptions::recent, or its own). Passed
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

  // Slots, allocated by the modules' compile() (rules/matches/limit.h,
  // statistic.h), read and written by their match().
  /// A limit bucket of size `cap`; returns its slot.
  uint32_t add_limit(uint32_t cap);
  /// An nth counter starting at `start`; returns its slot.
  uint32_t add_nth(uint32_t start);
  /// A random stream, seeded from `seed` and the slot number; returns its slot.
  uint32_t add_random(uint64_t seed);
  Bucket& limit_bucket(uint32_t slot) noexcept { return limits_[slot]; }
  uint32_t& nth_counter(uint32_t slot) noexcept { return nth_[slot]; }
  uint64_t& random_stream(uint32_t slot) noexcept { return rng_[slot]; }
  /// The -m recent list `name` (rules/matches/recent.h): in the lists given
  /// by use_recent_lists(), else in this state's own.
  RecentList* recent_list(const std::string& name, uint32_t mask, uint32_t ring);
  /// Lists shared with other states (one namespace's tables); call before
  /// compiling. Null: this state's own.
  void use_recent_lists(RecentLists* lists) noexcept { shared_recent_ = lists; }
  /// The lists this state's rules use (shared or own).
  const RecentLists& recent_lists() const noexcept { return shared_recent_ != nullptr ? *shared_recent_ : *own_recent_; }
  /// The -m hashlimit table `name` (rules/matches/hashlimit.h), created with
  /// `cfg` when new: in the tables given by use_hashlimit_tables(), else in
  /// this state's own.
  HashlimitTable* hashlimit_table(const std::string& name, const HashlimitCfg& cfg, uint32_t hz);
  void use_hashlimit_tables(HashlimitTables* tables) noexcept { shared_hashlimit_ = tables; }
  /// A -m connlimit rule's lists for up to `conntrack_max` connections;
  /// returns its slot.
  uint32_t add_connlimit(uint32_t conntrack_max);
  ConnlimitTable& connlimit_table(uint32_t slot) noexcept { return *connlimits_[slot]; }
  const HashlimitTables& hashlimit_tables() const noexcept {
    return shared_hashlimit_ != nullptr ? *shared_hashlimit_ : *own_hashlimit_;
  }

 private:
  std::vector<Bucket> limits_;
  std::vector<uint32_t> limit_cap_;  // to refill on first use
  std::vector<uint32_t> nth_;        // kernel count: 0 .. every-1
  std::vector<uint32_t> nth_start_;  // (every - 1) - packet
  std::vector<uint64_t> rng_;        // splitmix64 states
  std::vector<uint64_t> rng_seed_;
  RecentLists* shared_recent_ = nullptr;
  std::unique_ptr<RecentLists> own_recent_ = std::make_unique<RecentLists>();
  HashlimitTables* shared_hashlimit_ = nullptr;
  std::vector<std::unique_ptr<ConnlimitTable>> connlimits_;
  std::unique_ptr<HashlimitTables> own_hashlimit_ = std::make_unique<HashlimitTables>();
};

/// Compiles `rule` for `host`. Stateful matches get slots in `state`.
/// Throws LoadError (at rule.where) for what the kernel would refuse to load
/// and the reader may not have seen in a hand-made rule: a limit with burst 0
/// or whose 32-bit credit overflows, a string pattern empty or over 128
/// bytes or with --from beyond --to, more than 15 multiport slots, a
/// statistic with every 0, packet >= every or probability above 2^31, an
/// interface name over 15 bytes, MatchOptions::hz outside 1..10000.
CompiledRule compile_rule(const Rule& rule, const HostModel& host, MatchState& state,
                          const MatchOptions& options = {});

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
