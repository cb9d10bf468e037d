// Chain boxes: an iptables chain as classifier boxes (classifier.h), and the
// chain walk run on a compiled classifier with the linear walk's results.
//
// Idea: every rule of a chain becomes one or more boxes of its position over
// the classifier's 8 dimensions; what a box cannot say exactly is left out
// and the box is flagged residual, so the classifier reports the rule as a
// candidate and the walk checks it with evaluate() (which also consumes
// limit/statistic state exactly as the linear walk does).
//
// What goes in the box (rule_box()):
//   src/dst address  -s/-d with a prefix mask: one range; inverted: the two
//                    ranges around it; a non-prefix mask: full + residual.
//   protocol         -p exact: one value; inverted: two ranges.
//   in/out iface     -i/-o as runs of HostModel interface ids the IfaceSet
//                    accepts, plus [iface_count, 0xffff] (unknown ids and
//                    kNoIface, the hook without that interface) when its
//                    `outside` says so. More than kMaxIfaceRanges runs:
//                    full + residual.
//   ports            -m tcp/udp --sport/--dport (only with -p tcp/udp, not
//                    inverted): a range, inverted two. -m multiport
//                    --sports or --dports (same condition): the union of its
//                    ranges, or its complement; --ports (either) is residual.
//   addresses again  -m iprange --src-range/--dst-range: a range, inverted
//                    two (residual when -s/-d already restrict that side).
//   ctstate          -m state --state and -m conntrack --ctstate alone (no
//                    SNAT/DNAT bits): the packet's state as a small number
//                    (ct_state_value()) and the set as runs of numbers.
//   residual         everything else: -f, tcp flags/options, icmp,
//                    multiport --ports, mark, connmark, string, limit,
//                    statistic, length, pkttype, mac, addrtype, other
//                    conntrack options, ports (ClassBench).
// Exactness: the kernel evaluates the core match, then the modules in
// order, stopping at the first that fails. A module goes into the box only
// if every module before it went into the box completely (so no stateful or
// possibly hotdropping match is ever skipped by the box); the first module
// that does not fit makes the box residual and every later module is left
// out. Split dimensions multiply into several boxes of the same position;
// beyond kMaxBoxesPerRule the dimension with the most ranges is widened to
// full and the box made residual, until the product fits.
//
// Keys (chain_key()): the packet as it is NOW (post-NAT addresses, ports,
// protocol), in/out interface ids (kNoIface is its own value 0xffff) and
// ct_state_value(). Packets the box model cannot answer exactly -- a later
// fragment, a TCP/UDP packet whose header did not parse into the key (the
// tcp/udp matches hotdrop or fail on those), a conntrack state that is not
// one of the five single states -- get no key: the walk takes the linear
// step for them.
//
// ChainClassifiers: per chain of a ChainWalker, a Classifier of the chosen
// algorithm over the chain's boxes, the residual flag per position, and a
// sparse table of the rules' FlowVary bits (OR over any position range in
// O(1)). step() is first_match()'s replacement for walk_using():
//   lookup (key, start = pos) -> hit; residual hit: evaluate() it, on a
//   miss look up again from hit + 1. res.vary gets the OR of the FlowVary
//   bits of every rule in [pos, hit] (a superset of what the linear walk
//   ORs in: only rules whose core matched; the fast path is then at most
//   more conservative, counters are identical). res.rules_tested counts
//   classifier lookups plus evaluate() calls.
// Cost per step: one single-key lookup (a virtual call) per candidate, plus
// an evaluate() per residual candidate; no allocation, no exceptions.
// Memory: the classifiers, one byte per rule, 4 * rules * log2(rules) bytes
// of vary table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "classifier/chain_walk.h"
#include "classifier/classifier.h"
#include "classifier/host.h"
#include "classifier/rule_match.h"

namespace nfb {

/// The classifier algorithms the pipeline can run its chains on.
enum class ChainAlgo : uint8_t { kLinear, kDtree, kTuple, kAcl };
/// "linear", "dtree", "tuple", "acl".
std::string_view chain_algo_name(ChainAlgo a) noexcept;
/// The inverse of chain_algo_name(); nullopt for anything else.
std::optional<ChainAlgo> parse_chain_algo(std::string_view name) noexcept;

/// ct_state_value() numbers.
inline constexpr uint32_t kCtValueInvalid = 0;
inline constexpr uint32_t kCtValueNew = 1;
inline constexpr uint32_t kCtValueRelated = 2;
inline constexpr uint32_t kCtValueEstablished = 3;
inline constexpr uint32_t kCtValueUntracked = 4;
inline constexpr uint32_t kCtValueNone = 5;  // an entry with none of NEW/RELATED/ESTABLISHED
/// No single value: the walk must take the linear step.
inline constexpr uint32_t kCtValueAmbiguous = 0xffffffffU;

/// The packet's conntrack state as -m state and -m conntrack --ctstate both
/// see it: no entry -> INVALID or UNTRACKED; an entry -> NEW, RELATED or
/// ESTABLISHED (kCtValueNone when it has none of them); kCtValueAmbiguous when
/// an entry carries several of them or INVALID/UNTRACKED bits (the two
/// matches then disagree).
uint32_t ct_state_value(const CtView& ct) noexcept;

inline constexpr uint32_t kMaxBoxesPerRule = 16;
inline constexpr uint32_t kMaxIfaceRanges = 4;

/// The boxes of one rule at `position`, appended to `out` (possibly none: a
/// rule no packet can match). Returns whether they are residual.
bool rule_boxes(const CompiledRule& rule, const HostModel& host, uint32_t position, std::vector<Box>& out);

/// The boxes of chain `chain` of `walker` (positions 0..chain_size-1).
RuleBoxes chain_boxes(const ChainWalker& walker, uint32_t chain, const HostModel& host);

/// The key of the packet in `ctx` for chain boxes; false when the box model
/// cannot answer for it (see the top comment). noexcept, no allocation.
bool chain_key(const MatchContext& ctx, ClassifierKey& key) noexcept;

/// A Classifier of `algo` over `boxes` (kLinear: LinearClassifier). Throws
/// what the classifier's constructor throws.
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
  uint32_t step(ChainWalker& walker, uint32_t chain, uint32_t pos, MatchContext& ctx,
                WalkResult& res) const noexcept;

  /// The walker's walk with step() as the finder.
  WalkResult walk(ChainWalker& walker, Hook hook, MatchContext& ctx, const WalkSinks& sinks = {}) const noexcept {
    return walker.walk_using(
        [this, &walker](uint32_t c, uint32_t p, MatchContext& x, WalkResult& r) noexcept {
          return step(walker, c, p, x, r);
        },
        hook, ctx, sinks);
  }

  ChainAlgo algo() const noexcept { return algo_; }
  /// Bytes held by the classifiers and tables.
  size_t memory_bytes() const noexcept;
  /// Boxes over all chains (tests, reports).
  size_t box_count() const noexcept { return boxes_; }

 private:
  struct PerChain {
    std::unique_ptr<Classifier> cls;  // null for an empty chain
    std::vector<uint8_t> residual;    // per position
    std::vector<std::vector<uint32_t>> vary;  // sparse table: vary[k][i] = OR over [i, i + 2^k)
  };
  uint32_t vary_range(const PerChain& pc, uint32_t lo, uint32_t hi) const noexcept;

  std::vector<PerChain> chains_;
  ChainAlgo algo_ = ChainAlgo::kLinear;
  size_t boxes_ = 0;
};

}  // namespace nfb
