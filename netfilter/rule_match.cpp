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
#include "base/visit_switch.h"
#include "packet/byte_order.h"

namespace nfb {

namespace {

constexpr size_t kMaxIfaceName = 15;

[[noreturn]] void fail(const Rule& rule, const std::string& what) { throw LoadError(rule.where, what); }

}  // namespace

// ---------------------------------------------------------------------------
// FlowVary names

std::string format_flow_vary(uint32_t bits) {
  static constexpr const char* kNames[] = {
      "tcp_flags", "tcp_option", "icmp",      "length",    "payload",  "fragment",
      "mark",      "connmark",   "ct_state",  "ct_status", "ct_expire", "ct_dir",
      "pkttype",   "mac",        "limit",     "statistic", "recent",   "ip_header",
      "hashlimit", "connlimit", "ipset",     "physdev",
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
  if (shared_recent_ != nullptr) shared_recent_->clear();
  own_recent_->clear();
  if (shared_hashlimit_ != nullptr) shared_hashlimit_->clear();
  own_hashlimit_->clear();
  for (auto& c : connlimits_) c->clear();
}

uint32_t MatchState::add_connlimit(uint32_t conntrack_max) {
  connlimits_.push_back(std::make_unique<ConnlimitTable>(conntrack_max));
  return static_cast<uint32_t>(connlimits_.size() - 1);
}

HashlimitTable* MatchState::hashlimit_table(const std::string& name, const HashlimitCfg& cfg, uint32_t hz) {
  return (shared_hashlimit_ != nullptr ? *shared_hashlimit_ : *own_hashlimit_).get(name, cfg, hz);
}

RecentList* MatchState::recent_list(const std::string& name, uint32_t mask, uint32_t ring) {
  return (shared_recent_ != nullptr ? *shared_recent_ : *own_recent_).get(name, mask, ring);
}

uint32_t MatchState::add_limit(uint32_t cap) {
  limits_.push_back({});
  limit_cap_.push_back(cap);
  return static_cast<uint32_t>(limits_.size() - 1);
}

uint32_t MatchState::add_nth(uint32_t start) {
  nth_start_.push_back(start);
  nth_.push_back(start);
  return static_cast<uint32_t>(nth_.size() - 1);
}

uint32_t MatchState::add_random(uint64_t seed) {
  const auto slot = static_cast<uint32_t>(rng_.size());
  uint64_t s = seed ^ (0xd1b54a32d192ed03ULL * (uint64_t{slot} + 1));
  s = splitmix64(s);
  rng_seed_.push_back(s);
  rng_.push_back(s);
  return slot;
}

// ---------------------------------------------------------------------------
// Compile

namespace {

IfaceSet resolve_iface(const Rule& rule, const IfaceMatch& m, const HostModel& host) {
  if (m.name.size() > kMaxIfaceName) fail(rule, fmt::format("interface name \"{}\" longer than 15 bytes", m.name));
  return host.resolve(m);
}

/// What a module's compile() sees (rules/module.h): where to put its
/// compiled form, the build parameters, the state arena.
class RuleCompiler {
 public:
  RuleCompiler(const Rule& rule, CompiledRule& out, MatchState& state, const MatchOptions& options,
               const HostModel& host)
      : rule_(rule), out_(out), state_(state), options_(options), host_(host) {}
  template <class T>
  void emit(T&& m) {
    out_.matches.emplace_back(std::forward<T>(m));
  }
  [[noreturn]] void fail(const std::string& msg) const { throw LoadError(rule_.where, msg); }
  const SourceLocation& where() const noexcept { return rule_.where; }
  uint32_t hz() const noexcept { return options_.hz; }
  uint32_t conntrack_max() const noexcept { return options_.conntrack_max; }
  IpSets* ipsets() const noexcept { return options_.ipsets; }
  uint64_t seed() const noexcept { return options_.seed; }
  StringPatterns* strings() const noexcept { return options_.strings; }
  MatchState& state() noexcept { return state_; }
  const HostModel& host() const noexcept { return host_; }

 private:
  const Rule& rule_;
  CompiledRule& out_;
  MatchState& state_;
  const MatchOptions& options_;
  const HostModel& host_;
};

}  // namespace

CompiledRule compile_rule(const Rule& rule, const HostModel& host, MatchState& state,
                          const MatchOptions& options) {
  if (options.hz == 0 || options.hz > 10000) fail(rule, fmt::format("HZ {} outside 1..10000", options.hz));
  if (options.recent != nullptr) state.use_recent_lists(options.recent);
  if (options.hashlimit != nullptr) state.use_hashlimit_tables(options.hashlimit);
  CompiledRule c;
  if (!rule.unsupported.empty()) {
    // A rule with what the model lacks (ReadOptions::unsupported_never_match)
    // never matches: its core is `! -s 0.0.0.0/0`.
    c.src_invert = true;
    return c;
  }
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
  RuleCompiler compiler(rule, c, state, options, host);
  for (const Match& m : rule.matches) {
    std::visit(
        [&](const auto& x) {
          if constexpr (requires { x.vary(); }) c.vary |= x.vary();
          if constexpr (requires { x.compile(compiler); }) {
            x.compile(compiler);
          } else {
            compiler.emit(x);
          }
        },
        m);
  }
  return c;
}

// ---------------------------------------------------------------------------
// Evaluate

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
  const auto [data, len] = StringMatch::Compiled::text_of(ctx);
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

  // The kernel's order: module after module, stopping at the first that
  // does not match (so stateful matches count exactly the packets that
  // reach them). Each case is the module's match() (rules/matches/).
  for (const CompiledMatch& cm : r.matches) {
    const MatchResult res = visit_switch(cm, [&](const auto& m) noexcept { return m.match(ctx, state); });
    if (res != MatchResult::Matched) return res;
  }
  return MatchResult::Matched;
}


}  // namespace nfb
