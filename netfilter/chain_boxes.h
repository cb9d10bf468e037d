// Chain boxes: an iptables chain as classifier boxes (classifier.h), and the
// chain walk run on a compiled classifier with the linear walk's results.
//
// Idea: every rule of a chain becomes one or more boxes of its position over
// the classifier's dimensions (classifier.h); what a box cannot say exactly
// is left out and the box is flagged residual, so the classifier reports the
// rule as a candidate and the walk checks it with evaluate() (which also
// consumes limit/statistic state exactly as the linear walk does).
//
// What goes in the box (rule_boxes()):
//   src/dst address  -s/-d with a prefix mask: one range; inverted: the two
//                    ranges around it; -m iprange: a range (intersected with
//                    -s/-d). A non-prefix mask: left out (residual).
//   protocol         -p exact: one value; inverted: two ranges.
//   in/out iface     -i/-o as runs of HostModel interface ids the IfaceSet
//                    accepts, plus [iface_count, 0xffff] (unknown ids and
//                    kNoIface, the hook without that interface) when its
//                    `outside` says so. More than kMaxIfaceRanges runs:
//                    left out.
// Each module says what it puts in the box (its boxes() in rules/matches/);
// the list below is the summary.
//   ports            tcp/udp --sport/--dport (-p tcp/udp, not inverted):
//                    ranges; multiport --sports/--dports: the union of its
//                    ranges or its complement; --ports (either port): two
//                    alternatives (source in the list, or destination),
//                    ! --ports: both outside the list.
//   tcp flags        --tcp-flags MASK COMP: the flag values it accepts, in
//                    the dimension's order (SYN ACK RST FIN PSH URG ECE CWR,
//                    so the usual masks are high-bit prefixes: one range);
//                    more than 4 runs: left out. --tcp-option: left out.
//   icmp             --icmp-type T[/C]: [(T << 8) | C ...], inverted two.
//   ct state         -m state --state and -m conntrack --ctstate: the
//                    packet's state as one number (ct_state_value()); sets
//                    intersect. SNAT/DNAT pseudo-states: left out.
//   ct tuple         --ctproto, --ctorig/ctrepl src/dst (prefix masks) and
//                    their ports, --ctdir, --ctexpire (the remaining
//                    lifetime, a range). The kernel checks them only when there is
//                    an entry (without one, the match holds iff --ctstate
//                    was given and held), so they restrict the alternative
//                    "has an entry" and a state set holding INVALID or
//                    UNTRACKED adds the alternative "no entry, that state".
//                    --ctstatus (a bit test, not a range): left out.
//   mark, connmark   (mark & mask) == value for the chain's most common mask
//                    (BoxContext): the dimension holds compress_bits(mark,
//                    mask), so the match is one value or its complement;
//                    another mask: left out. connmark needs an entry.
//   length, pkttype  ranges / one value, inverted two.
//   addrtype         --src-type/--dst-type sets as runs of RTN_* numbers;
//                    --limit-iface-in/out: left out.
//   -f / ! -f        a keyed packet is never a later fragment: `-f` has no
//                    box, `! -f` no restriction.
//   string           with the pipeline's Hyperscan scanner (string_scan.h):
//                    the string dimension holds which pattern occurs (id + 1)
//                    when only one does, kSeveralStrings for more, 0 for
//                    none; a positive rule on pattern id takes those two
//                    values and stays residual (with several patterns the
//                    candidate checks its own bit). ! --string, or no
//                    scanner: left out.
//   left out         limit, statistic, mac, ports (ClassBench), and what
//                    the list says.
// Exactness: the kernel evaluates the core match, then the modules in
// order, stopping at the first that fails. A module goes into the box only
// if every module before it went into the box completely (so no stateful or
// possibly hotdropping match is ever skipped by the box); the first module
// that does not fit makes the box residual and every later module is left
// out (what it put in before failing are necessary conditions). Split
// dimensions multiply into several boxes of the same position; beyond
// kMaxBoxesPerRule the most split dimension is widened to its hull and the
// box made residual, until the total fits.
//
// Keys (chain_key()): the packet as it is NOW (post-NAT addresses, ports,
// protocol), in/out interface ids (kNoIface is its own value 0xffff),
// ct_state_value(), the entry's tuples and marks, and so on for every
// dimension the chain uses (KeySpec: the others are not computed, so an
// addrtype lookup is paid only by chains that test addrtype). Packets the
// box model cannot answer exactly -- a later fragment, a TCP/UDP/ICMP packet
// whose header did not parse into the key (the matches hotdrop or read the
// frame on those), a conntrack state that is not one of the five single
// states -- get no key: the walk takes the linear step for them. A walk
// builds its key once (WalkKey): each dimension when the first chain that
// uses it is entered, again only after a target changed the mark or the
// conntrack state it was computed from.
//
// ChainClassifiers: per chain of a ChainWalker, a Classifier of the chosen
// algorithm over the chain's boxes, the residual flag per position, and a
// sparse table of the rules' FlowVary bits (OR over any position range in
// O(1)). step() is first_match()'s replacement for walk_using():
//   lookup (key, start = pos) -> hit; residual hit: evaluate() it, on a
//   miss look up again from hit + 1. res.vary gets the OR of the FlowVary
//   bits of the rules in [pos, hit] whose flow-invariant core (-s -d -p -i
//   -o) matches the packet: exactly what the linear walk ORs in. Only rules
//   with FlowVary bits are looked at (a sorted list per chain); when more
//   than kExactVary of them lie in the range, the OR of all their bits is
//   taken from a sparse table instead (a superset: the fast path is then at
//   most more conservative; counters are identical either way).
//   res.rules_tested counts classifier lookups plus evaluate() calls.
// Cost per step: one single-key lookup (a virtual call) per candidate, plus
// an evaluate() per residual candidate; no allocation, no exceptions.
// Memory: the classifiers, one byte per rule, 4 * rules * log2(rules) bytes
// of vary table.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "classifier/box_set.h"
#include "classifier/classifier.h"
#include "netfilter/chain_walk.h"
#include "netfilter/host.h"
#include "netfilter/rule_match.h"

namespace nfb {

/// The classifier algorithm the pipeline runs its chains on: an index into
/// the registry (classifier/registry.h, algorithms.def). The first four
/// have names here; any other is found by name (parse_chain_algo) or taken
/// from all_chain_algos().
struct ChainAlgo {
  uint8_t id = 0;
  static const ChainAlgo kLinear, kDtree, kTuple, kAcl;
  friend constexpr bool operator==(ChainAlgo, ChainAlgo) noexcept = default;
  friend constexpr auto operator<=>(ChainAlgo, ChainAlgo) noexcept = default;
};
inline constexpr ChainAlgo ChainAlgo::kLinear{0};
inline constexpr ChainAlgo ChainAlgo::kDtree{1};
inline constexpr ChainAlgo ChainAlgo::kTuple{2};
inline constexpr ChainAlgo ChainAlgo::kAcl{3};
/// The registered name ("linear", "dtree", ...).
std::string_view chain_algo_name(ChainAlgo a) noexcept;
/// The inverse of chain_algo_name(); nullopt for anything else.
std::optional<ChainAlgo> parse_chain_algo(std::string_view name) noexcept;
/// Every registered algorithm, in registry order.
std::vector<ChainAlgo> all_chain_algos();
/// For gtest: prints the name.
void PrintTo(ChainAlgo a, std::ostream* os);

/// ct_state_value() numbers are rules/module.h's kCtValue*: the two without
/// an entry first, so "has an entry" is one range.
/// The packet's conntrack state as -m state and -m conntrack --ctstate both
/// see it: no entry -> INVALID or UNTRACKED; an entry -> NEW, RELATED or
/// ESTABLISHED (kCtValueNone when it has none of them); kCtValueAmbiguous when
/// an entry carries several of them or INVALID/UNTRACKED bits (the two
/// matches then disagree).
uint32_t ct_state_value(const CtView& ct) noexcept;

/// compress_bits() (how a mark dimension stores (mark & mask)) is in
/// classifier/box_set.h; tcp_flags_value() (the kDimTcpFlags value of the
/// TCP flags) in rules/matches/tcp.h.
/// The conntrack tuple dimensions.
inline constexpr uint32_t kCtTupleDims =
    (1U << kDimCtProto) | (1U << kDimCtOrigSrc) | (1U << kDimCtOrigDst) | (1U << kDimCtOrigSrcPort) |
    (1U << kDimCtOrigDstPort) | (1U << kDimCtReplSrc) | (1U << kDimCtReplDst) | (1U << kDimCtReplSrcPort) |
    (1U << kDimCtReplDstPort) | (1U << kDimCtDir) | (1U << kDimCtExpire);

inline constexpr uint32_t kMaxBoxesPerRule = 16;
inline constexpr uint32_t kMaxIfaceRanges = 4;

/// Per chain: the one mask each of -m mark and -m connmark that goes into
/// the mark dimensions (the chain's most common; rules with another mask are
/// residual). 0: none.
struct BoxContext {
  uint32_t mark_mask = 0;
  uint32_t connmark_mask = 0;
};
BoxContext chain_box_context(const ChainWalker& walker, uint32_t chain);

/// What chain_key() must fill: the dimensions the chain's boxes use, and the
/// masks of its mark dimensions.
struct KeySpec {
  uint32_t used = (1U << kDims) - 1U;
  uint32_t mark_mask = 0;
  uint32_t connmark_mask = 0;
};

/// The boxes of one rule at `position`, appended to `out` (possibly none: a
/// rule no keyed packet can match). Returns whether they are residual.
bool rule_boxes(const CompiledRule& rule, const HostModel& host, uint32_t position, std::vector<Box>& out,
                const BoxContext& bc = {});

/// The boxes of chain `chain` of `walker` (positions 0..chain_size-1), with
/// its chain_box_context().
RuleBoxes chain_boxes(const ChainWalker& walker, uint32_t chain, const HostModel& host, const BoxContext& bc);

/// The key of the packet in `ctx` for chain boxes; false when the box model
/// cannot answer for it (see the top comment). Dimensions outside spec.used
/// may be left as they were. noexcept, no allocation.
bool chain_key(const MatchContext& ctx, const KeySpec& spec, ClassifierKey& key) noexcept;

/// The chain key of one walk (one table at one hook): built at the walk's
/// first step, extended with the dimensions each later chain uses, and
/// rebuilt only when a target changed what it was built from (the mark,
/// the conntrack mark or state: MARK, CONNMARK, NOTRACK, CT). A walk then
/// computes each dimension once, not once per chain it enters.
class WalkKey {
 public:
  /// The key for a chain with `spec` (chain_key()'s), or nullptr when the
  /// box model cannot answer for the packet. noexcept, no allocation.
  const ClassifierKey* get(const MatchContext& ctx, const KeySpec& spec) noexcept;

 private:
  ClassifierKey key_;
  uint32_t filled_ = 0;  // dimensions of key_ that hold the packet's values
  uint32_t mark_mask_ = 0;      // the masks the mark dimensions were filled under
  uint32_t connmark_mask_ = 0;
  // What the key was built from that a walk can change.
  uint32_t mark_ = 0;
  uint32_t ctmark_ = 0;
  uint8_t state_bits_ = 0;
  bool present_ = false;
  bool started_ = false;
  bool keyable_ = false;
};

/// A Classifier of `algo` over `boxes`, built for a chain
/// (ClassifierUse::kChain). Throws what the classifier's constructor throws.
std::unique_ptr<Classifier> make_chain_classifier(ChainAlgo algo, const RuleBoxes& boxes);

class ChainClassifiers {
 public:
  /// Builds a classifier of `algo` for every chain of `walker` (which must
  /// outlive this object and keep its layout). Throws std::invalid_argument
  /// (or DpdkEalError for acl) when a classifier cannot be built.
  ChainClassifiers(const ChainWalker& walker, const HostModel& host, ChainAlgo algo);

  /// first_match()'s replacement (see the top comment): the first rule of
  /// `chain` at or after `pos` that matches, chain_size(chain) if none, or
  /// kHotdrop. `walker` is the one given at build (its state is used).
  uint32_t step(ChainWalker& walker, uint32_t chain, uint32_t pos, MatchContext& ctx, WalkResult& res,
                WalkKey& key) const noexcept;

  /// The walker's walk with step() as the finder.
  WalkResult walk(ChainWalker& walker, Hook hook, MatchContext& ctx, const WalkSinks& sinks = {}) const noexcept {
    WalkKey key;
    return walker.walk_using(
        [this, &walker, &key](uint32_t c, uint32_t p, MatchContext& x, WalkResult& r) noexcept {
          return step(walker, c, p, x, r, key);
        },
        hook, ctx, sinks);
  }

  ChainAlgo algo() const noexcept { return algo_; }
  /// Bytes held by the classifiers and tables.
  size_t memory_bytes() const noexcept;
  /// Boxes over all chains (tests, reports).
  size_t box_count() const noexcept { return boxes_; }

 private:
  static constexpr size_t kExactVary = 16;
  struct PerChain {
    std::unique_ptr<Classifier> cls;  // null for an empty chain
    KeySpec spec;                     // what its keys need
    std::vector<uint8_t> residual;    // per position
    std::vector<uint32_t> varying;    // positions of the rules with FlowVary bits, ascending
    std::vector<std::vector<uint32_t>> vary;  // sparse table: vary[k][i] = OR over [i, i + 2^k)
  };
  /// The FlowVary bits the linear walk ORs in over positions [lo, hi].
  static uint32_t vary_of(const ChainWalker& walker, const PerChain& pc, uint32_t chain, uint32_t lo, uint32_t hi,
                          const MatchContext& ctx) noexcept;

  std::vector<PerChain> chains_;
  ChainAlgo algo_ = ChainAlgo::kLinear;
  size_t boxes_ = 0;
};

}  // namespace nfb
