// The chain walk: one table at one hook, exactly as the kernel's
// ipt_do_table() walks it. This is the linear REFERENCE every compiled
// classifier is checked against.
//
// Idea: a ChainWalker is built once from a Table (rule.h): every rule is
// compiled for matching (rule_match.h), every target reduced to a small
// opcode, chains laid out flat. walk() then starts at the hook's built-in
// chain and repeats one step -- "the first rule of chain C at or after
// position P that matches" (first_match(), the one place a classifier may
// replace) -- and applies that rule's target:
//
//   counter      the matching rule counts the packet (packets += 1,
//                bytes += IP total length) BEFORE its target runs.
//   ACCEPT       ends this table; the next table/hook goes on.
//   DROP         ends everything. REJECT too (verdict Reject: the host also
//                sends an ICMP error or a TCP RST).
//   DNAT SNAT    end this table like ACCEPT; the target is reported so the
//   MASQUERADE   pipeline's NAT code can set up the binding.
//   REDIRECT
//   -j CHAIN     pushes a return point, enters CHAIN at its first rule.
//   -g CHAIN     enters CHAIN without a return point.
//   RETURN       pops a return point and continues after the jumping rule;
//                with nothing to pop (a built-in chain, or a user chain
//                reached only by gotos) the hook's built-in chain POLICY
//                applies.
//   end of chain user chain: implicit RETURN. Built-in chain: its policy.
//   policy       counts in the chain's policy counter, then ACCEPT or DROP.
//   LOG          records an event, continues.
//   MARK         sets ctx.mark at once: later rules (and tables) see it.
//   CONNMARK     updates ctx.ct.ctmark (or ctx.mark for --restore-mark) when
//                the packet has an entry; reported for the pipeline to store.
//   NOTRACK,     untrack the packet unless it already has conntrack state;
//   CT --notrack later rules see ctstate UNTRACKED. Reported.
//   CT (zone...) reported as ct_template; later raw rules see the
//                template as the packet's entry: NEW, CONFIRMED, mark 0.
//   TRACE        sets ctx.nf_trace: from the NEXT matching rule on, trace
//                events are emitted, in this and later tables.
//   no target    only counts.
// A match that hotdrops (rule_match.h) ends everything with Drop; that rule
// does not count the packet.
//
// TRACE numbering, as the kernel prints `TRACE: table:chain:type:rulenum`
// [kernel, checked with iptables-legacy on 6.18]: a line for every rule that
// matches while nf_trace is set (jumps included), type "rule" and the rule's
// 1-based position; at the end of a user chain "return" with nrules+1; when
// a policy applies "policy" with the built-in chain's nrules+1 (also after a
// RETURN with nothing to pop). A rule with no criteria and no match at all
// whose target is ACCEPT, DROP or RETURN is labelled like the chain's tail:
// "policy" in a built-in chain, "return" in a user chain, with its own
// number (`-A DOCKER-USER -j RETURN` prints `DOCKER-USER:return:1`). The
// TRACE rule itself is not traced (nf_trace is set by its target).
//
// Counters and the path: every counter has a flat index. Rule r of chain c
// has index chain_first(c) + r; the policy of built-in chain c has
// policy_index(c) = rule_count() + c. A walk can record the indices it
// incremented, in order, in a caller's PathBuffer, and returns the FlowVary
// bits (rule_match.h) of the rules it tested, so a fast path can tell
// whether the path is a function of the flow.
//
// Jump depth: a stack of chain_count() + 1 return points allocated at build
// (the kernel sizes its stack by the number of chains); loops through
// jumps/gotos reachable from a hook are refused at build, as the kernel
// refuses them at load, so the stack never overflows; if it did, the
// packet would be dropped as the kernel does.
//
// Memory layout: rules_ (CompiledRule) and ops_ (target opcodes) are
// parallel flat arrays in chain order; chains_ holds each chain's first
// index and rule count; counters_ holds all rule counters then one per
// chain. Cost of a walk: O(rules tested) evaluate() calls plus O(1) per
// target; no allocation, no exceptions, no string work.
//
// Not thread-safe: a walk updates counters, the match state (limit, nth,
// random) and the jump stack of its walker.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "netfilter/host.h"
#include "netfilter/rule_match.h"
#include "rules/rule.h"

namespace nfb {

/// "No index": no counter, no chain.
inline constexpr uint32_t kNoIndex = 0xffffffffU;
/// first_match() result: a match hotdropped the packet.
inline constexpr uint32_t kHotdrop = 0xfffffffeU;

/// One event of a walk: a TRACE line, or a LOG target that ran.
struct WalkEvent {
  enum class Kind : uint8_t {
    TraceRule,    // TRACE ...:rule:N
    TraceReturn,  // TRACE ...:return:N
    TracePolicy,  // TRACE ...:policy:N
    Log,          // a LOG target ran (rule points at it)
  };
  Kind kind = Kind::TraceRule;
  uint32_t chain = 0;        // chain index in the walker's table
  uint32_t rulenum = 0;      // 1-based, the kernel's TRACE numbering
  const Rule* rule = nullptr;  // the rule (null for an implicit return or a policy)
};

/// A caller-provided fixed-capacity buffer; push() never allocates. When
/// full, further items are counted in `dropped` and lost.
template <class T>
struct FixedBuffer {
  T* data = nullptr;
  uint32_t capacity = 0;
  uint32_t size = 0;
  uint32_t dropped = 0;

  void push(const T& v) noexcept {
    if (size < capacity) {
      data[size++] = v;
    } else {
      ++dropped;
    }
  }
  void clear() noexcept { size = dropped = 0; }
  std::span<const T> items() const noexcept { return {data, size}; }
};
using EventBuffer = FixedBuffer<WalkEvent>;
/// Flat counter indices, in the order the walk incremented them.
using PathBuffer = FixedBuffer<uint32_t>;

/// Optional outputs of a walk; null pointers switch them off.
struct WalkSinks {
  EventBuffer* events = nullptr;  // TRACE lines (while ctx.nf_trace) and LOG events
  PathBuffer* path = nullptr;     // counter indices incremented
};

/// What a walk decided.
struct WalkResult {
  enum Verdict : uint8_t { Accept, Drop, Reject };
  Verdict verdict = Accept;
  bool hotdrop = false;     // a match dropped the packet (verdict Drop; no rule counted it)
  bool by_policy = false;   // a built-in chain's policy decided
  bool untrack = false;     // NOTRACK / CT --notrack ran (ctx.ct now says UNTRACKED)
  bool trace = false;       // TRACE ran in this walk (ctx.nf_trace is set)
  bool mark_changed = false;      // MARK/CONNMARK --restore-mark changed ctx.mark
  bool connmark_changed = false;  // CONNMARK changed ctx.ct.ctmark: store it in the entry
                                  // (never for a CT template's mark, which the kernel drops)
  bool no_chain = false;    // the table has no chain at this hook (verdict Accept, nothing done)
  bool tos_changed = false; // TOS/DSCP rewrote the TOS byte (ctx.tos holds it): write it to the packet
  /// The MTU of every interface of the host model (TCPMSS --clamp-mss-to-pmtu).
  static constexpr uint16_t kDefaultMtu = 1500;
  /// TCPMSS: the MSS the SYN's option is to be lowered to (the smallest of
  /// the TCPMSS targets that ran; kNoMss none), applied by the pipeline.
  uint16_t mss = kNoMss;
  static constexpr uint16_t kNoMss = 0xffff;
  /// DNAT/SNAT/MASQUERADE/REDIRECT that ended the walk (verdict Accept).
  const Target* nat = nullptr;
  const RejectTarget* reject = nullptr;  // when verdict is Reject
  const CtTarget* ct_template = nullptr;  // a CT target without --notrack ran (ctx.ct is
                                          // then the template: present, NEW, CONFIRMED)
  uint32_t mark = 0;        // ctx.mark at the end
  uint32_t ctmark = 0;      // ctx.ct.ctmark at the end
  uint32_t vary = 0;        // FlowVary bits of the rules tested (rule_match.h)
  uint32_t decided_by = kNoIndex;  // counter index of the rule or policy that ended the walk
  uint32_t rules_tested = 0;       // evaluate() calls: the linear cost
};

/// Build-time options.
struct WalkOptions {
  MatchOptions match;
  /// Start the counters from the Table's own (`[p:b]` read with counters),
  /// as `iptables-restore -c` does; otherwise from zero.
  bool initial_counters_from_table = false;
};

class ChainWalker {
 public:
  /// Compiles `table` for `host`. The walker keeps its own copy of the table
  /// (WalkResult and events point into it). Throws LoadError for a jump or
  /// goto to a missing or built-in chain, a loop through jumps/gotos
  /// reachable from a hook, a match or target used from a hook or table the
  /// kernel refuses it in (match_hooks, target_scope), and what
  /// compile_rule() refuses.
  static ChainWalker build(const Table& table, const HostModel& host, const WalkOptions& options = {});

  /// Walks the table at `hook` for the packet in `ctx`; MARK, CONNMARK,
  /// NOTRACK and TRACE update ctx as they run. A table without that hook
  /// returns Accept with no_chain set.
  WalkResult walk(Hook hook, MatchContext& ctx, const WalkSinks& sinks = {}) noexcept;

  /// The same walk with `find` in place of first_match(): a callable
  /// `uint32_t find(uint32_t chain, uint32_t pos, MatchContext& ctx,
  /// WalkResult& res)` with first_match()'s contract (it should OR FlowVary
  /// bits into res.vary and count res.rules_tested). Everything else --
  /// counters, targets, stack, trace -- stays the reference's.
  template <class Finder>
  WalkResult walk_using(Finder&& find, Hook hook, MatchContext& ctx, const WalkSinks& sinks = {}) noexcept;

  /// THE step: the position of the first rule of chain `chain` at or after
  /// `pos` that matches, chain_size(chain) when none does, or kHotdrop.
  /// Linear: evaluate() on each rule in order (stateful matches are consumed
  /// exactly as the kernel consumes them). ORs FlowVary bits into res.vary
  /// and counts res.rules_tested.
  uint32_t first_match(uint32_t chain, uint32_t pos, MatchContext& ctx, WalkResult& res) noexcept;

  // ---- layout ------------------------------------------------------------
  TableId table_id() const noexcept { return table_->id; }
  const Table& table() const noexcept { return *table_; }
  uint32_t chain_count() const noexcept { return static_cast<uint32_t>(chains_.size()); }
  uint32_t rule_count() const noexcept { return static_cast<uint32_t>(rules_.size()); }
  const std::string& chain_name(uint32_t chain) const noexcept { return table_->chains[chain].name; }
  uint32_t chain_first(uint32_t chain) const noexcept { return chains_[chain].first; }
  uint32_t chain_size(uint32_t chain) const noexcept { return chains_[chain].count; }
  bool chain_builtin(uint32_t chain) const noexcept { return chains_[chain].builtin; }
  /// The built-in chain of `hook`, or kNoIndex.
  uint32_t hook_chain(Hook hook) const noexcept { return hook_chain_[static_cast<size_t>(hook)]; }
  /// Flat index of rule `pos` of `chain` (its counter index).
  uint32_t flat_index(uint32_t chain, uint32_t pos) const noexcept { return chains_[chain].first + pos; }
  /// Counter index of the policy of built-in chain `chain`.
  uint32_t policy_index(uint32_t chain) const noexcept { return rule_count() + chain; }
  const CompiledRule& compiled_rule(uint32_t flat) const noexcept { return rules_[flat]; }
  const Rule& rule(uint32_t flat) const noexcept { return *rule_ptrs_[flat]; }
  /// The chain a flat rule index belongs to. O(log chains).
  uint32_t chain_of(uint32_t flat) const noexcept;
  MatchState& match_state() noexcept { return state_; }

  // ---- counters ----------------------------------------------------------
  /// All counters: rule_count() rule counters, then chain_count() policy
  /// counters (those of user chains stay zero).
  std::span<const Counters> counters() const noexcept { return counters_; }
  const Counters& rule_counter(uint32_t chain, uint32_t pos) const noexcept {
    return counters_[flat_index(chain, pos)];
  }
  const Counters& policy_counter(uint32_t chain) const noexcept { return counters_[policy_index(chain)]; }
  /// Adds one packet of `bytes` to counter `index` (a cached fast path
  /// replaying a recorded path).
  void count(uint32_t index, uint32_t bytes) noexcept {
    counters_[index].packets += 1;
    counters_[index].bytes += bytes;
  }
  /// Adds `packets` packets of `bytes` bytes in all (a fast path's pending
  /// packets, counted when read).
  void count(uint32_t index, uint64_t packets, uint64_t bytes) noexcept {
    counters_[index].packets += packets;
    counters_[index].bytes += bytes;
  }
  /// Zeroes every counter (the match state is left alone).
  void reset_counters() noexcept;
  /// Writes the counters into the same table of `ruleset` (rule.counters,
  /// chain.policy_counters), so write_iptables_save(ruleset, {.counters =
  /// true}) prints what `iptables-save -c` would. Throws
  /// std::invalid_argument when the ruleset has no such table or its chains
  /// and rules do not line up with the walker's.
  void store_counters(Ruleset& ruleset) const;
  void store_counters(Table& table) const;

 private:
  /// What the walk does with a rule's target (rules/module.h; each target
  /// says its own: kWalk).
  using Op = WalkOp;
  /// A rule's target reduced to what the walk needs.
  struct TargetOp {
    Op op = Op::None;
    /// TRACE label when the rule matches: TraceRule, or TracePolicy /
    /// TraceReturn for an unconditional standard verdict.
    WalkEvent::Kind trace_kind = WalkEvent::Kind::TraceRule;
    uint32_t chain = kNoIndex;  // Jump/Goto target
    const Target* target = nullptr;  // the rule's target (Nat, Reject, Mark, Connmark, Ct read it)
  };
  struct ChainInfo {
    uint32_t first = 0;
    uint32_t count = 0;
    bool builtin = false;
    Policy policy = Policy::Accept;
  };
  struct Frame {
    uint32_t chain;
    uint32_t pos;  // the jumping rule
  };

  ChainWalker() = default;
  void check_loops() const;
  /// Runs a target other than jump/goto/RETURN for the rule at (chain,
  /// pos); true when it ends the walk (verdicts, NAT).
  bool apply_target(const TargetOp& op, MatchContext& ctx, WalkResult& res, const WalkSinks& sinks,
                    uint32_t chain, uint32_t pos) noexcept;
  void end_with_policy(uint32_t chain, MatchContext& ctx, WalkResult& res, const WalkSinks& sinks) noexcept;
  void bump(uint32_t index, const MatchContext& ctx, const WalkSinks& sinks) noexcept;
  void emit(WalkEvent::Kind kind, uint32_t chain, uint32_t rulenum, const Rule* rule,
            const WalkSinks& sinks) const noexcept {
    if (sinks.events != nullptr) sinks.events->push(WalkEvent{kind, chain, rulenum, rule});
  }

  std::unique_ptr<Table> table_;
  std::vector<ChainInfo> chains_;
  std::vector<CompiledRule> rules_;
  std::vector<RuleCore> cores_;  // parallel to rules_: the first test of each
  CoreFilter core_filter_;       // the same, 16 to a block, for long stretches of a chain
  static constexpr uint32_t kShortStretch = 8;  // fewer rules than this: tested one by one
  std::vector<TargetOp> ops_;
  std::vector<const Rule*> rule_ptrs_;
  std::vector<Counters> counters_;
  std::array<uint32_t, kHookCount> hook_chain_{};
  std::vector<Frame> stack_;
  MatchState state_;
};

// ---------------------------------------------------------------------------
// The walk (a template so a compiled classifier can supply the step).

template <class Finder>
WalkResult ChainWalker::walk_using(Finder&& find, Hook hook, MatchContext& ctx,
                                   const WalkSinks& sinks) noexcept {
  WalkResult res;
  const uint32_t start = hook_chain(hook);
  if (start == kNoIndex) res.no_chain = true;
  uint32_t chain = start;
  uint32_t pos = 0;
  uint32_t depth = 0;  // return points on stack_
  while (start != kNoIndex) {
    const uint32_t hit = find(chain, pos, ctx, res);
    if (hit == kHotdrop) {
      res.verdict = WalkResult::Drop;
      res.hotdrop = true;
      break;
    }
    const ChainInfo& ci = chains_[chain];
    if (hit >= ci.count) {
      // Fell off the end: the chain's tail entry "matches".
      if (ci.builtin) {
        end_with_policy(chain, ctx, res, sinks);
        break;
      }
      if (ctx.nf_trace) emit(WalkEvent::Kind::TraceReturn, chain, ci.count + 1, nullptr, sinks);
    } else {
      const uint32_t flat = ci.first + hit;
      bump(flat, ctx, sinks);
      const TargetOp& op = ops_[flat];
      if (ctx.nf_trace) emit(op.trace_kind, chain, hit + 1, rule_ptrs_[flat], sinks);
      if (op.op == Op::Jump) {
        if (depth >= stack_.size()) {  // impossible without loops; the kernel drops
          res.verdict = WalkResult::Drop;
          res.decided_by = flat;
          break;
        }
        stack_[depth++] = Frame{chain, hit};
        chain = op.chain;
        pos = 0;
        continue;
      }
      if (op.op == Op::Goto) {
        chain = op.chain;
        pos = 0;
        continue;
      }
      if (op.op != Op::Return) {
        if (apply_target(op, ctx, res, sinks, chain, hit)) {
          res.decided_by = flat;
          break;
        }
        pos = hit + 1;
        continue;
      }
    }
    // RETURN, explicit or implicit.
    if (depth == 0) {
      // Nothing to return to: the hook's built-in chain policy.
      end_with_policy(start, ctx, res, sinks);
      break;
    }
    const Frame f = stack_[--depth];
    chain = f.chain;
    pos = f.pos + 1;
  }
  res.mark = ctx.mark;
  res.ctmark = ctx.ct.ctmark;
  return res;
}

}  // namespace nfb
