#include "classifier/chain_boxes.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <variant>

#include "classifier/acl.h"
#include "classifier/dtree.h"
#include "classifier/tuple_space.h"

namespace nfb {

std::string_view chain_algo_name(ChainAlgo a) noexcept {
  switch (a) {
    case ChainAlgo::kLinear: return "linear";
    case ChainAlgo::kDtree: return "dtree";
    case ChainAlgo::kTuple: return "tuple";
    case ChainAlgo::kAcl: return "acl";
  }
  return "?";
}

std::optional<ChainAlgo> parse_chain_algo(std::string_view name) noexcept {
  for (ChainAlgo a : {ChainAlgo::kLinear, ChainAlgo::kDtree, ChainAlgo::kTuple, ChainAlgo::kAcl}) {
    if (chain_algo_name(a) == name) return a;
  }
  return std::nullopt;
}

uint32_t ct_state_value(const CtView& ct) noexcept {
  if (!ct.present) return (ct.state_bits & kCtUntracked) != 0 ? kCtValueUntracked : kCtValueInvalid;
  const uint32_t s = ct.state_bits & (kCtInvalid | kCtEstablished | kCtRelated | kCtNew | kCtUntracked);
  switch (s) {
    case 0: return kCtValueNone;
    case kCtNew: return kCtValueNew;
    case kCtRelated: return kCtValueRelated;
    case kCtEstablished: return kCtValueEstablished;
    default: return kCtValueAmbiguous;
  }
}

namespace {

using Ranges = std::vector<Range>;

/// The ct values (bit v = value v, v < 6) a CtStateBit set accepts.
uint32_t ct_values_of(uint8_t states) {
  uint32_t v = 0;
  if ((states & kCtInvalid) != 0) v |= 1U << kCtValueInvalid;
  if ((states & kCtNew) != 0) v |= 1U << kCtValueNew;
  if ((states & kCtRelated) != 0) v |= 1U << kCtValueRelated;
  if ((states & kCtEstablished) != 0) v |= 1U << kCtValueEstablished;
  if ((states & kCtUntracked) != 0) v |= 1U << kCtValueUntracked;
  return v;
}
constexpr uint32_t kCtValuesAll = (1U << (kCtValueNone + 1)) - 1U;

/// Runs of set bits of a value set over [0, kCtValueNone].
Ranges runs_of(uint32_t set) {
  Ranges out;
  for (uint32_t v = 0; v <= kCtValueNone; ++v) {
    if (((set >> v) & 1U) == 0) continue;
    if (!out.empty() && out.back().hi + 1 == v) {
      out.back().hi = v;
    } else {
      out.push_back(Range{v, v});
    }
  }
  return out;
}

/// [lo, hi] within [0, max], or its complement when `invert`.
Ranges range_or_complement(uint32_t lo, uint32_t hi, uint32_t max, bool invert) {
  if (lo > hi) return invert ? Ranges{Range{0, max}} : Ranges{};
  if (!invert) return {Range{lo, hi}};
  Ranges out;
  if (lo > 0) out.push_back(Range{0, lo - 1});
  if (hi < max) out.push_back(Range{hi + 1, max});
  return out;
}

bool is_prefix_mask(uint32_t mask) { return mask == 0 || std::countl_one(mask) + std::countr_zero(mask) == 32; }

struct Builder {
  std::array<Ranges, kDims> dims;
  std::array<bool, kDims> set{};  // a dimension already restricted
  bool residual = false;

  Builder() {
    for (unsigned d = 0; d < kDims; ++d) dims[d] = {Range{0, field_max(static_cast<Dim>(d))}};
  }
  void restrict(Dim d, Ranges r) {
    dims[d] = std::move(r);
    set[d] = true;
  }
};

void add_addr(Builder& b, Dim d, uint32_t addr, uint32_t mask, bool invert) {
  if (mask == 0) {
    if (invert) b.restrict(d, {});  // `! -s 0/0`: nothing
    return;
  }
  if (!is_prefix_mask(mask)) {
    b.residual = true;
    return;
  }
  b.restrict(d, range_or_complement(addr & mask, (addr & mask) | ~mask, 0xffffffffU, invert));
}

void add_iface(Builder& b, Dim d, const IfaceSet& s, const HostModel& host) {
  const auto n = static_cast<uint32_t>(host.iface_count());
  Ranges out;
  for (uint32_t id = 0; id < n; ++id) {
    if (!s.contains(static_cast<uint16_t>(id))) continue;
    if (!out.empty() && out.back().hi + 1 == id) {
      out.back().hi = id;
    } else {
      out.push_back(Range{id, id});
    }
  }
  if (s.contains(kNoIface)) {  // every id >= n, kNoIface included
    if (!out.empty() && out.back().hi + 1 == n) {
      out.back().hi = 0xffff;
    } else {
      out.push_back(Range{n, 0xffff});
    }
  }
  if (out.size() > kMaxIfaceRanges) {
    b.residual = true;
    return;
  }
  b.restrict(d, std::move(out));
}

/// Ports of a tcp/udp match; false when they cannot go in the box.
bool add_ports(Builder& b, const PortRange& sp, bool sinv, const PortRange& dp, bool dinv) {
  if (b.set[kDimSrcPort] || b.set[kDimDstPort]) return false;
  if (!(sp.is_any() && !sinv)) b.restrict(kDimSrcPort, range_or_complement(sp.lo, sp.hi, 0xffff, sinv));
  if (!(dp.is_any() && !dinv)) b.restrict(kDimDstPort, range_or_complement(dp.lo, dp.hi, 0xffff, dinv));
  return true;
}

/// The union of `ranges` (sorted, merged), or its complement in [0, max].
Ranges union_or_complement(Ranges ranges, uint32_t max, bool invert) {
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) { return x.lo < y.lo; });
  Ranges merged;
  for (const Range& r : ranges) {
    if (r.lo > r.hi) continue;  // an empty piece
    if (!merged.empty() && merged.back().hi != max && r.lo <= merged.back().hi + 1) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else if (merged.empty() || merged.back().hi != max) {
      merged.push_back(r);
    }
  }
  if (!invert) return merged;
  Ranges out;
  uint32_t next = 0;  // lowest value not yet covered
  bool done = false;
  for (const Range& r : merged) {
    if (r.lo > next) out.push_back(Range{next, r.lo - 1});
    if (r.hi == max) {
      done = true;
      break;
    }
    next = r.hi + 1;
  }
  if (!done) out.push_back(Range{next, max});
  return out;
}

bool add_ct(Builder& b, uint32_t values) {
  if (b.set[kDimCtState]) return false;
  b.restrict(kDimCtState, runs_of(values));
  return true;
}

/// One module match into the box; false when it does not fit wholly (the
/// box becomes residual and no later module may go in).
bool add_module(Builder& b, const CompiledRule& r, const CompiledMatch& m) {
  if (const auto* t = std::get_if<TcpMatch>(&m)) {
    if (r.proto != kProtoTcp || r.proto_invert) return false;
    if (!add_ports(b, t->sport, t->sport_invert, t->dport, t->dport_invert)) return false;
    return t->flags_mask == 0 && t->option == 0 && !t->flags_invert && !t->option_invert;
  }
  if (const auto* u = std::get_if<UdpMatch>(&m)) {
    if (r.proto != kProtoUdp || r.proto_invert) return false;
    return add_ports(b, u->sport, u->sport_invert, u->dport, u->dport_invert);
  }
  if (const auto* mp = std::get_if<compiled::Multiport>(&m)) {
    // One direction only (--ports, either port, is a union of two boxes).
    const bool tcp_udp = (r.proto == kProtoTcp || r.proto == kProtoUdp) && !r.proto_invert;
    if (!tcp_udp || mp->dir == MultiportMatch::Dir::Either) return false;
    const Dim d = mp->dir == MultiportMatch::Dir::Source ? kDimSrcPort : kDimDstPort;
    if (b.set[d]) return false;
    Ranges ranges;
    for (uint32_t i = 0; i < mp->count; ++i) ranges.push_back(Range{mp->ports[i].lo, mp->ports[i].hi});
    b.restrict(d, union_or_complement(std::move(ranges), 0xffff, mp->invert));
    return true;
  }
  if (const auto* ir = std::get_if<IprangeMatch>(&m)) {
    if ((ir->has_src && b.set[kDimSrcIp]) || (ir->has_dst && b.set[kDimDstIp])) return false;
    if (ir->has_src) b.restrict(kDimSrcIp, range_or_complement(ir->src_lo, ir->src_hi, 0xffffffffU, ir->src_invert));
    if (ir->has_dst) b.restrict(kDimDstIp, range_or_complement(ir->dst_lo, ir->dst_hi, 0xffffffffU, ir->dst_invert));
    return true;
  }
  if (const auto* s = std::get_if<StateMatch>(&m)) {
    uint32_t v = ct_values_of(s->states);
    if (s->invert) v = kCtValuesAll & ~v;
    return add_ct(b, v);
  }
  if (const auto* c = std::get_if<ConntrackMatch>(&m)) {
    if (c->present != ConntrackMatch::kState || (c->states & (kCtSnat | kCtDnat)) != 0) return false;
    uint32_t v = ct_values_of(c->states);
    if (c->inverted(ConntrackMatch::kState)) v = kCtValuesAll & ~v;
    // kCtValueNone (an entry without a state bit) matches only when inverted,
    // as the kernel's (states & bits) != 0 test says.
    return add_ct(b, v);
  }
  return false;
}

}  // namespace

bool rule_boxes(const CompiledRule& r, const HostModel& host, uint32_t position, std::vector<Box>& out) {
  Builder b;
  add_addr(b, kDimSrcIp, r.src_addr, r.src_mask, r.src_invert);
  add_addr(b, kDimDstIp, r.dst_addr, r.dst_mask, r.dst_invert);
  if (r.proto != 0) b.restrict(kDimProto, range_or_complement(r.proto, r.proto, 0xff, r.proto_invert));
  if (r.check_in) add_iface(b, kDimInIface, r.in_ifaces, host);
  if (r.check_out) add_iface(b, kDimOutIface, r.out_ifaces, host);
  if (r.frag_check) b.residual = true;  // pure: later modules may still go in
  for (const CompiledMatch& m : r.matches) {
    if (!add_module(b, r, m)) {
      b.residual = true;
      break;
    }
  }
  // Cap the cross product: widen the most split dimension until it fits.
  for (;;) {
    size_t product = 1;
    unsigned widest = 0;
    for (unsigned d = 0; d < kDims; ++d) {
      product *= b.dims[d].size();
      if (b.dims[d].size() > b.dims[widest].size()) widest = d;
    }
    if (product <= kMaxBoxesPerRule) break;
    b.dims[widest] = {Range{0, field_max(static_cast<Dim>(widest))}};
    b.residual = true;
  }
  for (unsigned d = 0; d < kDims; ++d) {
    if (b.dims[d].empty()) return b.residual;  // no packet matches
  }
  // Cross product, last dimension fastest.
  std::array<size_t, kDims> idx{};
  for (;;) {
    Box box;
    box.position = position;
    box.residual = b.residual;
    for (unsigned d = 0; d < kDims; ++d) box.r[d] = b.dims[d][idx[d]];
    out.push_back(box);
    unsigned d = kDims;
    while (d > 0) {
      --d;
      if (++idx[d] < b.dims[d].size()) break;
      idx[d] = 0;
      if (d == 0) return b.residual;
    }
  }
}

RuleBoxes chain_boxes(const ChainWalker& walker, uint32_t chain, const HostModel& host) {
  RuleBoxes rb;
  rb.rules = walker.chain_size(chain);
  for (uint32_t p = 0; p < rb.rules; ++p) {
    rule_boxes(walker.compiled_rule(walker.flat_index(chain, p)), host, p, rb.boxes);
  }
  return rb;
}

bool chain_key(const MatchContext& ctx, ClassifierKey& key) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.is_later_fragment()) return false;
  if (k.proto == kProtoTcp && !k.has(key_flag::kTcpFlags)) return false;
  if (k.proto == kProtoUdp && !k.has(key_flag::kPorts)) return false;
  const uint32_t ct = ct_state_value(ctx.ct);
  if (ct == kCtValueAmbiguous) return false;
  key.v[kDimSrcIp] = k.src_ip;
  key.v[kDimDstIp] = k.dst_ip;
  const bool ports = k.proto == kProtoTcp || k.proto == kProtoUdp;
  key.v[kDimSrcPort] = ports ? k.src_port : 0;
  key.v[kDimDstPort] = ports ? k.dst_port : 0;
  key.v[kDimProto] = k.proto;
  key.v[kDimInIface] = ctx.in_iface;
  key.v[kDimOutIface] = ctx.out_iface;
  key.v[kDimCtState] = ct;
  return true;
}

std::unique_ptr<Classifier> make_chain_classifier(ChainAlgo algo, const RuleBoxes& boxes) {
  switch (algo) {
    case ChainAlgo::kLinear: return std::make_unique<LinearClassifier>(boxes);
    case ChainAlgo::kDtree: return std::make_unique<DtreeClassifier>(boxes);
    case ChainAlgo::kTuple: return std::make_unique<TupleSpaceClassifier>(boxes);
    case ChainAlgo::kAcl: return std::make_unique<AclClassifier>(boxes);
  }
  throw std::invalid_argument("unknown classifier algorithm");
}

ChainClassifiers::ChainClassifiers(const ChainWalker& walker, const HostModel& host, ChainAlgo algo)
    : algo_(algo) {
  chains_.resize(walker.chain_count());
  for (uint32_t c = 0; c < walker.chain_count(); ++c) {
    PerChain& pc = chains_[c];
    const uint32_t n = walker.chain_size(c);
    if (n == 0) continue;
    RuleBoxes rb = chain_boxes(walker, c, host);
    boxes_ += rb.boxes.size();
    pc.residual.assign(n, 0);
    for (const Box& b : rb.boxes) pc.residual[b.position] = b.residual ? 1 : 0;
    if (!rb.boxes.empty()) pc.cls = make_chain_classifier(algo, rb);
    // Sparse table of FlowVary bits.
    pc.vary.emplace_back(n);
    for (uint32_t p = 0; p < n; ++p) pc.vary[0][p] = walker.compiled_rule(walker.flat_index(c, p)).vary;
    for (uint32_t k = 1; (1U << k) <= n; ++k) {
      const std::vector<uint32_t>& prev = pc.vary[k - 1];
      std::vector<uint32_t> row(n - (1U << k) + 1);
      for (uint32_t i = 0; i < row.size(); ++i) row[i] = prev[i] | prev[i + (1U << (k - 1))];
      pc.vary.push_back(std::move(row));
    }
  }
}

uint32_t ChainClassifiers::vary_range(const PerChain& pc, uint32_t lo, uint32_t hi) const noexcept {
  // OR over positions [lo, hi], lo <= hi < n.
  const uint32_t len = hi - lo + 1;
  const auto k = static_cast<uint32_t>(std::bit_width(len) - 1);
  return pc.vary[k][lo] | pc.vary[k][hi + 1 - (1U << k)];
}

uint32_t ChainClassifiers::step(ChainWalker& walker, uint32_t chain, uint32_t pos, MatchContext& ctx,
                                WalkResult& res) const noexcept {
  const uint32_t n = walker.chain_size(chain);
  if (pos >= n) return n;
  ClassifierKey key;
  if (!chain_key(ctx, key)) return walker.first_match(chain, pos, ctx, res);
  const PerChain& pc = chains_[chain];
  if (!pc.cls) {  // no rule can match
    res.vary |= vary_range(pc, pos, n - 1);
    return n;
  }
  while (pos < n) {
    uint32_t hit = kNoMatch;
    pc.cls->lookup(std::span<const ClassifierKey>(&key, 1), std::span<const uint32_t>(&pos, 1),
                   std::span<uint32_t>(&hit, 1));
    ++res.rules_tested;
    if (hit == kNoMatch || hit >= n) {
      res.vary |= vary_range(pc, pos, n - 1);
      return n;
    }
    res.vary |= vary_range(pc, pos, hit);
    if (pc.residual[hit] == 0) return hit;
    ++res.rules_tested;
    uint32_t vary = 0;
    const MatchResult m =
        evaluate(walker.compiled_rule(walker.flat_index(chain, hit)), ctx, walker.match_state(), vary);
    res.vary |= vary;
    if (m == MatchResult::Matched) return hit;
    if (m == MatchResult::Hotdrop) return kHotdrop;
    pos = hit + 1;
  }
  return n;
}

size_t ChainClassifiers::memory_bytes() const noexcept {
  size_t total = chains_.size() * sizeof(PerChain);
  for (const PerChain& pc : chains_) {
    if (pc.cls) total += pc.cls->memory_bytes();
    total += pc.residual.size();
    for (const auto& row : pc.vary) total += row.size() * sizeof(uint32_t);
  }
  return total;
}

}  // namespace nfb
