// The chain walk: building the flat layout, the linear step, targets,
// counters. See chain_walk.h for the semantics.
#include "netfilter/chain_walk.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace nfb {

namespace {

/// ACCEPT, DROP and RETURN are the kernel's standard verdicts; together with
/// an unconditional rule they make TRACE label the rule like a chain tail.
bool is_standard_verdict(const Target& t) noexcept {
  return std::holds_alternative<AcceptTarget>(t) || std::holds_alternative<DropTarget>(t) ||
         std::holds_alternative<ReturnTarget>(t);
}

}  // namespace

ChainWalker ChainWalker::build(const Table& table, const HostModel& host, const WalkOptions& options) {
  ChainWalker w;
  w.table_ = std::make_unique<Table>(table);
  const Table& t = *w.table_;
  const auto nchains = static_cast<uint32_t>(t.chains.size());
  w.hook_chain_.fill(kNoIndex);

  size_t total = 0;
  for (const Chain& ch : t.chains) total += ch.rules.size();
  if (total >= kHotdrop - nchains) throw LoadError(t.where, "table: too many rules");
  // The kernel's load-time checks of where matches and targets may be used
  // (the reader applies them too; hand-made tables get them here).
  const std::vector<HookMask> reach = chain_hooks(t);
  for (uint32_t c = 0; c < nchains; ++c) {
    for (const Rule& r : t.chains[c].rules) {
      for (const Match& m : r.matches) {
        const auto bad = static_cast<HookMask>(reach[c] & ~match_hooks(m));
        if (bad != 0)
          throw LoadError(r.where, fmt::format("{} match: used from hooks {}, but only valid from {}",
                                               match_name(m), format_hooks(bad), format_hooks(match_hooks(m))));
      }
      const TargetScope scope = target_scope(r.target);
      if (scope.table && *scope.table != t.id)
        throw LoadError(r.where, fmt::format("{} target: only valid in table {}", target_name(r.target),
                                             table_name(*scope.table)));
      const auto bad = static_cast<HookMask>(reach[c] & ~scope.hooks);
      if (bad != 0)
        throw LoadError(r.where, fmt::format("{} target: used from hooks {}, but only valid from {}",
                                             target_name(r.target), format_hooks(bad), format_hooks(scope.hooks)));
    }
  }

  w.rules_.reserve(total);
  w.cores_.reserve(total);
  w.ops_.reserve(total);
  w.rule_ptrs_.reserve(total);

  for (uint32_t c = 0; c < nchains; ++c) {
    const Chain& ch = t.chains[c];
    ChainInfo ci;
    ci.first = static_cast<uint32_t>(w.rules_.size());
    ci.count = static_cast<uint32_t>(ch.rules.size());
    ci.builtin = ch.builtin();
    ci.policy = ch.policy;
    if (ch.hook) {
      uint32_t& slot = w.hook_chain_[static_cast<size_t>(*ch.hook)];
      if (slot != kNoIndex)
        throw LoadError(ch.where, fmt::format("chain {}: a second built-in chain for hook {}", ch.name,
                                              hook_name(*ch.hook)));
      slot = c;
    }
    w.chains_.push_back(ci);

    for (const Rule& r : ch.rules) {
      w.rules_.push_back(compile_rule(r, host, w.state_, options.match));
      w.cores_.push_back(RuleCore::of(w.rules_.back()));
      const bool uncond = w.rules_.back().unconditional;
      TargetOp op;
      if (uncond && is_standard_verdict(r.target))
        op.trace_kind = ci.builtin ? WalkEvent::Kind::TracePolicy : WalkEvent::Kind::TraceReturn;
      auto chain_target = [&](uint32_t index, const std::string& name) {
        if (index >= nchains || t.chains[index].name != name)
          throw LoadError(r.where, fmt::format("no chain \"{}\" to jump to", name));
        if (t.chains[index].builtin())
          throw LoadError(r.where, fmt::format("cannot jump to built-in chain {}", name));
        return index;
      };
      op.op = target_walk_op(r.target);
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) op.chain = chain_target(j->index, j->chain);
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) op.chain = chain_target(g->index, g->chain);
      op.target = &r.target;
      w.ops_.push_back(op);
      w.rule_ptrs_.push_back(&r);
    }
  }

  w.counters_.assign(w.rules_.size() + nchains, Counters{});
  if (options.initial_counters_from_table) {
    for (uint32_t c = 0; c < nchains; ++c) {
      const Chain& ch = t.chains[c];
      if (ch.builtin()) w.counters_[w.policy_index(c)] = ch.policy_counters;
      for (uint32_t p = 0; p < ch.rules.size(); ++p) {
        if (ch.rules[p].counters) w.counters_[w.flat_index(c, p)] = *ch.rules[p].counters;
      }
    }
  }
  w.stack_.assign(nchains + 1, Frame{0, 0});
  w.core_filter_ = CoreFilter(w.cores_);
  w.check_loops();
  return w;
}

void ChainWalker::check_loops() const {
  // Depth-first search over jump/goto edges from every built-in chain; an
  // edge back to a chain still on the search path closes a loop the walk
  // could follow forever (gotos do not even grow the stack). The kernel
  // refuses such a table at load. Iterative, O(chains + rules).
  enum : uint8_t { kWhite, kGrey, kBlack };
  std::vector<uint8_t> color(chains_.size(), kWhite);
  struct Item {
    uint32_t chain;
    uint32_t next_rule;
  };
  std::vector<Item> path;
  for (uint32_t root = 0; root < chains_.size(); ++root) {
    if (!chains_[root].builtin || color[root] != kWhite) continue;
    color[root] = kGrey;
    path.push_back({root, 0});
    while (!path.empty()) {
      Item& it = path.back();
      const ChainInfo& ci = chains_[it.chain];
      if (it.next_rule == ci.count) {
        color[it.chain] = kBlack;
        path.pop_back();
        continue;
      }
      const uint32_t flat = ci.first + it.next_rule++;
      const TargetOp& op = ops_[flat];
      if (op.op != Op::Jump && op.op != Op::Goto) continue;
      if (color[op.chain] == kGrey) {
        throw LoadError(rule_ptrs_[flat]->where,
                        fmt::format("chain {}: jump to {} makes a loop", table_->chains[it.chain].name,
                                    table_->chains[op.chain].name));
      }
      if (color[op.chain] == kWhite) {
        color[op.chain] = kGrey;
        path.push_back({op.chain, 0});
      }
    }
  }
}

uint32_t ChainWalker::first_match(uint32_t chain, uint32_t pos, MatchContext& ctx, WalkResult& res) noexcept {
  const ChainInfo& ci = chains_[chain];
  if (pos >= ci.count) return ci.count;
  const PacketKey& key = *ctx.key;
  const uint16_t in = ctx.in_iface;
  const uint16_t out = ctx.out_iface;
  res.rules_tested += ci.count - pos;  // less the ones after a hit, below
  // A rule whose core matched: the rest of its matches decide. A hit (or a
  // hotdrop) ends the walk; the rules after it were not tested.
  constexpr uint32_t kNoDecision = UINT32_MAX;  // not a position, not kHotdrop
  static_assert(kNoDecision != kHotdrop);
  const auto past_core = [&](uint32_t flat) {
    const uint32_t p = flat - ci.first;
    switch (evaluate_past_core(rules_[flat], ctx, state_, res.vary)) {
      case MatchResult::Matched:
        res.rules_tested -= ci.count - p - 1;
        return p;
      case MatchResult::Hotdrop:
        res.rules_tested -= ci.count - p - 1;
        return kHotdrop;
      case MatchResult::NoMatch:
        break;
    }
    return kNoDecision;
  };
  // The flow-invariant cores first (most rules fail there): one by one for
  // a short stretch, 16 at a time for a long one; then each rule whose core
  // matched, in order.
  const uint32_t begin = ci.first + pos;
  const uint32_t end = ci.first + ci.count;
  if (end - begin < kShortStretch) {
    for (uint32_t flat = begin; flat < end; ++flat) {
      const RuleCore& core = cores_[flat];
      if (core.exact ? !core.matches(key, in, out) : !core_flow_matches(rules_[flat], ctx)) continue;
      if (const uint32_t got = past_core(flat); got != kNoDecision) return got;
    }
    return ci.count;
  }
  for (uint32_t b = begin / 16; b * 16 < end; ++b) {
    const uint32_t lo = b * 16;
    uint32_t m = core_filter_.block(b, key, in, out);
    if (begin > lo) m &= ~((1U << (begin - lo)) - 1U);
    if (end < lo + 16) m &= (1U << (end - lo)) - 1U;
    const uint32_t inexact = core_filter_.inexact(b);
    for (; m != 0; m &= m - 1) {
      const auto i = static_cast<uint32_t>(std::countr_zero(m));
      const uint32_t flat = lo + i;
      if ((inexact >> i & 1U) != 0 && !core_flow_matches(rules_[flat], ctx)) continue;
      if (const uint32_t got = past_core(flat); got != kNoDecision) return got;
    }
  }
  return ci.count;
}

WalkResult ChainWalker::walk(Hook hook, MatchContext& ctx, const WalkSinks& sinks) noexcept {
  return walk_using(
      [this](uint32_t chain, uint32_t pos, MatchContext& c, WalkResult& r) noexcept {
        return first_match(chain, pos, c, r);
      },
      hook, ctx, sinks);
}

void ChainWalker::bump(uint32_t index, const MatchContext& ctx, const WalkSinks& sinks) noexcept {
  count(index, ctx.key->l3_len);
  if (sinks.path != nullptr) sinks.path->push(index);
}

void ChainWalker::end_with_policy(uint32_t chain, MatchContext& ctx, WalkResult& res,
                                  const WalkSinks& sinks) noexcept {
  const ChainInfo& ci = chains_[chain];
  const uint32_t index = policy_index(chain);
  bump(index, ctx, sinks);
  if (ctx.nf_trace) emit(WalkEvent::Kind::TracePolicy, chain, ci.count + 1, nullptr, sinks);
  res.verdict = ci.policy == Policy::Drop ? WalkResult::Drop : WalkResult::Accept;
  res.by_policy = true;
  res.decided_by = index;
}

bool ChainWalker::apply_target(const TargetOp& op, MatchContext& ctx, WalkResult& res,
                               const WalkSinks& sinks, uint32_t chain, uint32_t pos) noexcept {
  switch (op.op) {
    case Op::Accept:
      res.verdict = WalkResult::Accept;
      return true;
    case Op::Drop:
      res.verdict = WalkResult::Drop;
      return true;
    case Op::Reject:
      res.verdict = WalkResult::Reject;
      res.reject = std::get_if<RejectTarget>(op.target);
      return true;
    case Op::Nat:
      res.verdict = WalkResult::Accept;
      res.nat = op.target;
      return true;
    case Op::Log:
      emit(WalkEvent::Kind::Log, chain, pos + 1, rule_ptrs_[flat_index(chain, pos)], sinks);
      return false;
    case Op::Mark: {
      const uint32_t mark = std::get_if<MarkTarget>(op.target)->apply(ctx.mark);
      if (mark != ctx.mark) res.mark_changed = true;
      ctx.mark = mark;
      return false;
    }
    case Op::Connmark: {
      // Needs an entry; without one (untracked, invalid, raw table) the
      // kernel's CONNMARK does nothing.
      if (!ctx.ct.present) return false;
      const auto& t = *std::get_if<ConnmarkTarget>(op.target);
      // A CT template's mark is dropped when conntrack creates the entry:
      // only later rules of this walk see it, the pipeline stores nothing.
      const bool store = res.ct_template == nullptr;
      uint32_t ctmark = ctx.ct.ctmark;
      uint32_t mark = ctx.mark;
      t.apply(ctmark, mark);
      if (ctmark != ctx.ct.ctmark && store) res.connmark_changed = true;
      if (mark != ctx.mark) res.mark_changed = true;
      ctx.ct.ctmark = ctmark;
      ctx.mark = mark;
      return false;
    }
    case Op::Notrack:
    case Op::Ct: {
      // Only the first of NOTRACK / CT takes effect: the kernel's targets do
      // nothing once the packet has conntrack state attached.
      const bool attached = ctx.ct.present || (ctx.ct.state_bits & kCtUntracked) != 0 ||
                            res.ct_template != nullptr;
      if (attached) return false;
      if (op.op == Op::Notrack) {
        res.untrack = true;
        ctx.ct.state_bits = kCtUntracked;
      } else {
        // The template is attached as the packet's conntrack with ctinfo
        // NEW until conntrack replaces it: later raw rules see an entry in
        // state NEW, status CONFIRMED (set on every template), no tuple, mark
        // 0 [kernel: --ctstate NEW and, after CONNMARK, -m connmark match].
        res.ct_template = std::get_if<CtTarget>(op.target);
        ctx.ct = CtView{};
        ctx.ct.present = true;
        ctx.ct.state_bits = kCtNew;
        ctx.ct.status_bits = kCtStatusConfirmed;
      }
      return false;
    }
    case Op::Trace:
      ctx.nf_trace = true;
      res.trace = true;
      return false;
    case Op::Tos: {
      const uint8_t before = packet_tos(ctx);
      const auto* tos = std::get_if<TosTarget>(op.target);
      const uint8_t after = tos != nullptr ? tos->apply(before) : std::get_if<DscpTarget>(op.target)->apply(before);
      if (after != before) {
        ctx.tos = after;
        res.tos_changed = true;
      }
      return false;
    }
    case Op::Tcpmss: {
      // A later fragment has no header: nothing. A header too short for
      // itself is dropped (the kernel's NF_DROP, after the rule counted).
      // A hand-made key without a frame has nothing to rewrite.
      const PacketKey& k = *ctx.key;
      if (frag_units(k) != 0 || ctx.frame == nullptr) return false;
      const uint8_t* th = l4_bytes(ctx, 20);
      const uint32_t ip_hdr = uint32_t{k.l4_off} - k.l3_off;
      const uint32_t tcp_len = k.l3_len > ip_hdr ? k.l3_len - ip_hdr : 0U;
      const uint32_t hdr = th != nullptr ? (th[12] >> 4) * 4U : 0U;
      if (th == nullptr || hdr < 20 || tcp_len < hdr) {
        res.verdict = WalkResult::Drop;
        return true;
      }
      const uint16_t target = std::get_if<TcpmssTarget>(op.target)->mss;
      // --clamp-mss-to-pmtu: the path MTU (every host interface here has
      // the Ethernet default, 1500) less the IPv4 and TCP headers.
      const uint16_t mss = target == TcpmssTarget::kClamp ? static_cast<uint16_t>(WalkResult::kDefaultMtu - 40) : target;
      res.mss = std::min(res.mss, mss);
      return false;
    }
    case Op::None:
    case Op::Return:
    case Op::Jump:
    case Op::Goto:
      return false;
  }
  return false;
}

uint32_t ChainWalker::chain_of(uint32_t flat) const noexcept {
  // The last chain starting at or before `flat` (empty chains share their
  // start with the next one, so the last such chain is the non-empty owner).
  const auto it = std::partition_point(chains_.begin(), chains_.end(),
                                       [flat](const ChainInfo& c) { return c.first <= flat; });
  return static_cast<uint32_t>(it - chains_.begin()) - 1U;
}

void ChainWalker::reset_counters() noexcept { std::fill(counters_.begin(), counters_.end(), Counters{}); }

void ChainWalker::store_counters(Table& table) const {
  if (table.id != table_->id || table.chains.size() != chains_.size())
    throw std::invalid_argument(fmt::format("store_counters: table {} does not match the walker's",
                                            table_name(table.id)));
  for (uint32_t c = 0; c < chains_.size(); ++c) {
    const Chain& mine = table_->chains[c];
    const Chain& theirs = table.chains[c];
    if (theirs.name != mine.name || theirs.rules.size() != mine.rules.size())
      throw std::invalid_argument(
          fmt::format("store_counters: chain {} of table {} does not match the walker's", theirs.name,
                      table_name(table.id)));
  }
  for (uint32_t c = 0; c < chains_.size(); ++c) {
    Chain& ch = table.chains[c];
    if (ch.builtin()) ch.policy_counters = counters_[policy_index(c)];
    for (uint32_t p = 0; p < ch.rules.size(); ++p) ch.rules[p].counters = counters_[flat_index(c, p)];
  }
}

void ChainWalker::store_counters(Ruleset& ruleset) const {
  Table* t = ruleset.find_table(table_->id);
  if (t == nullptr)
    throw std::invalid_argument(fmt::format("store_counters: the ruleset has no {} table", table_name(table_->id)));
  store_counters(*t);
}

}  // namespace nfb
