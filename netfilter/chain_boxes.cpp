#include "netfilter/chain_boxes.h"

#include <algorithm>
#include <ostream>
#include <bit>
#include <stdexcept>
#include <variant>

#include "classifier/registry.h"

namespace nfb {

std::string_view chain_algo_name(ChainAlgo a) noexcept {
  const auto algos = classifier_algorithms();
  return a.id < algos.size() ? algos[a.id].name : std::string_view("?");
}

std::optional<ChainAlgo> parse_chain_algo(std::string_view name) noexcept {
  const auto algos = classifier_algorithms();
  for (size_t i = 0; i < algos.size(); ++i) {
    if (algos[i].name == name) return ChainAlgo{static_cast<uint8_t>(i)};
  }
  return std::nullopt;
}

void PrintTo(ChainAlgo a, std::ostream* os) { *os << chain_algo_name(a); }

std::vector<ChainAlgo> all_chain_algos() {
  std::vector<ChainAlgo> out;
  for (size_t i = 0; i < classifier_algorithms().size(); ++i) out.push_back(ChainAlgo{static_cast<uint8_t>(i)});
  return out;
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

/// -s/-d; false when the mask is no prefix.
bool add_addr(Alts& alts, Dim d, uint32_t addr, uint32_t mask, bool invert) {
  if (mask == 0) {
    if (invert) restrict_all(alts, d, {});  // `! -s 0/0`: nothing
    return true;
  }
  if (!is_prefix_mask(mask)) return false;
  restrict_all(alts, d, addr_ranges(addr, mask, invert));
  return true;
}

bool add_iface(Alts& alts, Dim d, const IfaceSet& s, const HostModel& host) {
  const auto n = static_cast<uint32_t>(host.iface_count());
  Ranges out = runs_of(n, [&s](uint32_t id) { return s.contains(static_cast<uint16_t>(id)); });
  if (s.contains(kNoIface)) {  // every id >= n, kNoIface included
    if (!out.empty() && out.back().hi + 1 == n) {
      out.back().hi = 0xffff;
    } else {
      out.push_back(Range{n, 0xffff});
    }
  }
  if (out.size() > kMaxIfaceRanges) return false;
  restrict_all(alts, d, out);
  return true;
}

/// One module match into the alternatives (its boxes(), rules/module.h);
/// false when it does not fit wholly (the caller then drops every later
/// module and makes the boxes residual). What it put in before returning
/// false are necessary conditions of the match, so the boxes stay a
/// superset of the rule. A module without boxes() does not fit.
bool add_module(Alts& alts, const CompiledMatch& m, const BoxRule& br) {
  return std::visit(
      [&](const auto& x) -> bool {
        if constexpr (requires { x.boxes(alts, br); }) {
          return x.boxes(alts, br);
        } else {
          return false;
        }
      },
      m);
}

/// The most common non-zero mask of the chain's matches of type M.
template <class M>
uint32_t common_mask(const ChainWalker& walker, uint32_t chain) {
  std::vector<uint32_t> masks;
  for (uint32_t p = 0; p < walker.chain_size(chain); ++p) {
    for (const CompiledMatch& m : walker.compiled_rule(walker.flat_index(chain, p)).matches) {
      if (const auto* x = std::get_if<M>(&m); x != nullptr && x->mask != 0) masks.push_back(x->mask);
    }
  }
  std::sort(masks.begin(), masks.end());
  uint32_t best = 0;
  size_t best_n = 0;
  for (size_t i = 0; i < masks.size();) {
    size_t j = i;
    while (j < masks.size() && masks[j] == masks[i]) ++j;
    if (j - i > best_n) {
      best = masks[i];
      best_n = j - i;
    }
    i = j;
  }
  return best;
}

}  // namespace

bool rule_boxes(const CompiledRule& r, const HostModel& host, uint32_t position, std::vector<Box>& out,
                const BoxContext& bc) {
  // A keyed packet is never a later fragment (chain_key()): `-f` cannot
  // match it and `! -f` always does.
  if (r.frag_check && !r.frag_invert) return false;
  Alts alts(1);
  bool residual = false;
  residual |= !add_addr(alts, kDimSrcIp, r.src_addr, r.src_mask, r.src_invert);
  residual |= !add_addr(alts, kDimDstIp, r.dst_addr, r.dst_mask, r.dst_invert);
  if (r.proto != 0) restrict_all(alts, kDimProto, range_or_complement(r.proto, r.proto, 0xff, r.proto_invert));
  if (r.check_in) residual |= !add_iface(alts, kDimInIface, r.in_ifaces, host);
  if (r.check_out) residual |= !add_iface(alts, kDimOutIface, r.out_ifaces, host);
  // The core is pure: a part of it left out does not stop the modules.
  const BoxRule br{r.proto, r.proto_invert, bc.mark_mask, bc.connmark_mask};
  for (const CompiledMatch& m : r.matches) {
    if (!add_module(alts, m, br)) {
      residual = true;
      break;
    }
  }
  // Cap the boxes: widen the most split dimension of the biggest
  // alternative until the total fits.
  for (;;) {
    size_t total = 0;
    size_t biggest = 0;
    for (size_t i = 0; i < alts.size(); ++i) {
      total += alts[i].product();
      if (alts[i].product() > alts[biggest].product()) biggest = i;
    }
    if (total <= kMaxBoxesPerRule) break;
    Alt& a = alts[biggest];
    if (a.product() <= 1) {  // too many alternatives: one box spanning them all
      Alt all;
      for (unsigned d = 0; d < kDims; ++d) {
        uint32_t lo = 0xffffffffU, hi = 0;
        for (const Alt& x : alts) {
          if (x.dims[d].empty()) continue;
          lo = std::min(lo, x.dims[d].front().lo);
          hi = std::max(hi, x.dims[d].back().hi);
        }
        all.dims[d] = lo <= hi ? Ranges{Range{lo, hi}} : Ranges{};
      }
      alts = Alts{all};
      residual = true;
      continue;
    }
    unsigned widest = 0;
    for (unsigned d = 0; d < kDims; ++d) {
      if (a.dims[d].size() > a.dims[widest].size()) widest = d;
    }
    a.dims[widest] = {Range{a.dims[widest].front().lo, a.dims[widest].back().hi}};
    residual = true;
  }
  for (const Alt& a : alts) {
    if (a.product() == 0) continue;  // no packet matches this alternative
    // Cross product, last dimension fastest.
    std::array<size_t, kDims> idx{};
    for (bool more = true; more;) {
      Box box;
      box.position = position;
      box.residual = residual;
      for (unsigned d = 0; d < kDims; ++d) box.r[d] = a.dims[d][idx[d]];
      out.push_back(box);
      more = false;
      for (unsigned d = kDims; d-- > 0;) {
        if (++idx[d] < a.dims[d].size()) {
          more = true;
          break;
        }
        idx[d] = 0;
      }
    }
  }
  return residual;
}

BoxContext chain_box_context(const ChainWalker& walker, uint32_t chain) {
  BoxContext bc;
  bc.mark_mask = common_mask<MarkMatch>(walker, chain);
  bc.connmark_mask = common_mask<ConnmarkMatch>(walker, chain);
  return bc;
}

RuleBoxes chain_boxes(const ChainWalker& walker, uint32_t chain, const HostModel& host, const BoxContext& bc) {
  RuleBoxes rb;
  rb.rules = walker.chain_size(chain);
  for (uint32_t p = 0; p < rb.rules; ++p) {
    rule_boxes(walker.compiled_rule(walker.flat_index(chain, p)), host, p, rb.boxes, bc);
  }
  return rb;
}

namespace {

/// The dimensions every chain key holds: the packet's own header fields,
/// interfaces and conntrack state.
constexpr uint32_t kBaseDims = (1U << kDimSrcIp) | (1U << kDimDstIp) | (1U << kDimSrcPort) | (1U << kDimDstPort) |
                               (1U << kDimProto) | (1U << kDimInIface) | (1U << kDimOutIface) |
                               (1U << kDimCtState) | (1U << kDimLength) | (1U << kDimTcpFlags);

/// Whether the box model can answer for the packet at all (top comment of
/// chain_boxes.h): not a later fragment, a complete TCP/UDP header in the
/// key, a single conntrack state.
bool keyable(const MatchContext& ctx) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.is_later_fragment()) return false;
  if (k.proto == kProtoTcp && !k.has(key_flag::kTcpFlags)) return false;
  if (k.proto == kProtoUdp && !k.has(key_flag::kPorts)) return false;
  return ct_state_value(ctx.ct) != kCtValueAmbiguous;
}

/// Fills the dimensions `dims` of `key` (a keyable packet; mark dimensions
/// under spec's masks). False when one of them cannot be keyed: an ICMP
/// header not in the key, addrtype without the host model.
bool fill_key(const MatchContext& ctx, uint32_t dims, const KeySpec& spec, ClassifierKey& key) noexcept {
  const PacketKey& k = *ctx.key;
  const auto uses = [dims](Dim d) { return (dims & (1U << d)) != 0; };
  if ((dims & kBaseDims) != 0) {
    key.v[kDimSrcIp] = k.src_ip;
    key.v[kDimDstIp] = k.dst_ip;
    const bool ports = k.proto == kProtoTcp || k.proto == kProtoUdp;
    key.v[kDimSrcPort] = ports ? k.src_port : 0;
    key.v[kDimDstPort] = ports ? k.dst_port : 0;
    key.v[kDimProto] = k.proto;
    key.v[kDimInIface] = ctx.in_iface;
    key.v[kDimOutIface] = ctx.out_iface;
    key.v[kDimCtState] = ct_state_value(ctx.ct);
    key.v[kDimLength] = k.l3_len;
    key.v[kDimTcpFlags] = k.proto == kProtoTcp ? tcp_flags_value(k.tcp_flags) : 0;
  }
  if ((dims & kCtTupleDims) != 0) {
    const CtView& c = ctx.ct;
    const bool e = c.present;
    key.v[kDimCtProto] = e ? c.orig.proto : 0;
    key.v[kDimCtOrigSrc] = e ? c.orig.src : 0;
    key.v[kDimCtOrigDst] = e ? c.orig.dst : 0;
    key.v[kDimCtOrigSrcPort] = e ? c.orig.sport : 0;
    key.v[kDimCtOrigDstPort] = e ? c.orig.dport : 0;
    key.v[kDimCtReplSrc] = e ? c.reply.src : 0;
    key.v[kDimCtReplDst] = e ? c.reply.dst : 0;
    key.v[kDimCtReplSrcPort] = e ? c.reply.sport : 0;
    key.v[kDimCtReplDstPort] = e ? c.reply.dport : 0;
    key.v[kDimCtDir] = e && c.reply_dir ? 1U : 0U;
    key.v[kDimCtExpire] = e ? c.expire_s : 0;
  }
  if (uses(kDimMark)) key.v[kDimMark] = compress_bits(ctx.mark, spec.mark_mask);
  if (uses(kDimConnmark)) key.v[kDimConnmark] = ctx.ct.present ? compress_bits(ctx.ct.ctmark, spec.connmark_mask) : 0;
  if (uses(kDimIcmp)) {
    if (k.proto == kProtoIcmp) {
      if (!k.has(key_flag::kIcmp)) return false;  // the icmp match would look at the frame
      key.v[kDimIcmp] = (static_cast<uint32_t>(k.icmp_type) << 8) | k.icmp_code;
    } else {
      key.v[kDimIcmp] = 0;
    }
  }
  if (uses(kDimPkttype)) {
    auto type = static_cast<uint32_t>(k.pkttype);
    if (k.pkttype == PktType::Loopback) {  // as the pkttype match: multicast or broadcast
      type = (k.dst_ip & 0xf0000000U) == 0xe0000000U ? static_cast<uint32_t>(PktType::Multicast)
                                                      : static_cast<uint32_t>(PktType::Broadcast);
    }
    key.v[kDimPkttype] = type;
  }
  if (uses(kDimString)) {
    // Rules only use it with the scanner; without one, every string rule is
    // a candidate ("several").
    key.v[kDimString] = ctx.strings != nullptr ? string_scan_occurring(ctx) : kSeveralStrings;
  }
  if (uses(kDimSrcAddrtype) || uses(kDimDstAddrtype)) {
    if (ctx.host == nullptr) return false;
    if (uses(kDimSrcAddrtype)) key.v[kDimSrcAddrtype] = static_cast<uint32_t>(ctx.host->addr_type(k.src_ip));
    if (uses(kDimDstAddrtype)) key.v[kDimDstAddrtype] = static_cast<uint32_t>(ctx.host->addr_type(k.dst_ip));
  }
  return true;
}

}  // namespace

bool chain_key(const MatchContext& ctx, const KeySpec& spec, ClassifierKey& key) noexcept {
  // A walk's key for its first chain: the dimensions outside the spec are 0.
  WalkKey walk;
  const ClassifierKey* k = walk.get(ctx, spec);
  if (k == nullptr) return false;
  key = *k;
  return true;
}

const ClassifierKey* WalkKey::get(const MatchContext& ctx, const KeySpec& spec) noexcept {
  const bool same = started_ && ctx.mark == mark_ && ctx.ct.ctmark == ctmark_ &&
                    ctx.ct.state_bits == state_bits_ && ctx.ct.present == present_;
  if (!same) {
    started_ = true;
    mark_ = ctx.mark;
    ctmark_ = ctx.ct.ctmark;
    state_bits_ = ctx.ct.state_bits;
    present_ = ctx.ct.present;
    keyable_ = keyable(ctx);
    filled_ = 0;
  }
  if (!keyable_) return nullptr;
  uint32_t need = (kBaseDims | spec.used) & ~filled_;
  // The mark dimensions hold the bits under one chain's mask.
  if ((spec.used & (1U << kDimMark)) != 0 && spec.mark_mask != mark_mask_) need |= 1U << kDimMark;
  if ((spec.used & (1U << kDimConnmark)) != 0 && spec.connmark_mask != connmark_mask_) need |= 1U << kDimConnmark;
  if (need == 0) return &key_;
  if (!fill_key(ctx, need, spec, key_)) {
    filled_ &= ~need;  // some of them may hold another chain's values now
    return nullptr;
  }
  filled_ |= need;
  if ((need & (1U << kDimMark)) != 0) mark_mask_ = spec.mark_mask;
  if ((need & (1U << kDimConnmark)) != 0) connmark_mask_ = spec.connmark_mask;
  return &key_;
}

std::unique_ptr<Classifier> make_chain_classifier(ChainAlgo algo, const RuleBoxes& boxes) {
  const auto algos = classifier_algorithms();
  if (algo.id >= algos.size()) throw std::invalid_argument("unknown classifier algorithm");
  return algos[algo.id].make(boxes, ClassifierUse::kChain);
}

ChainClassifiers::ChainClassifiers(const ChainWalker& walker, const HostModel& host, ChainAlgo algo)
    : algo_(algo) {
  chains_.resize(walker.chain_count());
  for (uint32_t c = 0; c < walker.chain_count(); ++c) {
    PerChain& pc = chains_[c];
    const uint32_t n = walker.chain_size(c);
    if (n == 0) continue;
    const BoxContext bc = chain_box_context(walker, c);
    RuleBoxes rb = chain_boxes(walker, c, host, bc);
    boxes_ += rb.boxes.size();
    pc.spec = KeySpec{rb.used_dims(), bc.mark_mask, bc.connmark_mask};
    pc.residual.assign(n, 0);
    for (const Box& b : rb.boxes) pc.residual[b.position] = b.residual ? 1 : 0;
    if (!rb.boxes.empty()) pc.cls = make_chain_classifier(algo, rb);
    // Sparse table of FlowVary bits.
    pc.vary.emplace_back(n);
    for (uint32_t p = 0; p < n; ++p) {
      pc.vary[0][p] = walker.compiled_rule(walker.flat_index(c, p)).vary;
      if (pc.vary[0][p] != 0) pc.varying.push_back(p);
    }
    for (uint32_t k = 1; (1U << k) <= n; ++k) {
      const std::vector<uint32_t>& prev = pc.vary[k - 1];
      std::vector<uint32_t> row(n - (1U << k) + 1);
      for (uint32_t i = 0; i < row.size(); ++i) row[i] = prev[i] | prev[i + (1U << (k - 1))];
      pc.vary.push_back(std::move(row));
    }
  }
}

uint32_t ChainClassifiers::vary_of(const ChainWalker& walker, const PerChain& pc, uint32_t chain, uint32_t lo,
                                   uint32_t hi, const MatchContext& ctx) noexcept {
  const auto first = std::lower_bound(pc.varying.begin(), pc.varying.end(), lo);
  const auto last = std::upper_bound(first, pc.varying.end(), hi);
  if (first == last) return 0;
  if (static_cast<size_t>(last - first) > kExactVary) {
    const uint32_t len = hi - lo + 1;
    const auto k = static_cast<uint32_t>(std::bit_width(len) - 1);
    return pc.vary[k][lo] | pc.vary[k][hi + 1 - (1U << k)];
  }
  uint32_t bits = 0;
  for (auto it = first; it != last; ++it) {
    const CompiledRule& r = walker.compiled_rule(walker.flat_index(chain, *it));
    if (core_flow_matches(r, ctx)) bits |= r.vary;
  }
  return bits;
}

uint32_t ChainClassifiers::step(ChainWalker& walker, uint32_t chain, uint32_t pos, MatchContext& ctx,
                                WalkResult& res, WalkKey& wk) const noexcept {
  const uint32_t n = walker.chain_size(chain);
  if (pos >= n) return n;
  const PerChain& pc = chains_[chain];
  const ClassifierKey* key = wk.get(ctx, pc.spec);
  if (key == nullptr) return walker.first_match(chain, pos, ctx, res);
  if (!pc.cls) {  // no rule can match
    res.vary |= vary_of(walker, pc, chain, pos, n - 1, ctx);
    return n;
  }
  while (pos < n) {
    uint32_t hit = kNoMatch;
    pc.cls->lookup(std::span<const ClassifierKey>(key, 1), std::span<const uint32_t>(&pos, 1),
                   std::span<uint32_t>(&hit, 1));
    ++res.rules_tested;
    if (hit == kNoMatch || hit >= n) {
      res.vary |= vary_of(walker, pc, chain, pos, n - 1, ctx);
      return n;
    }
    res.vary |= vary_of(walker, pc, chain, pos, hit, ctx);
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
    total += pc.varying.size() * sizeof(uint32_t);
  }
  return total;
}

}  // namespace nfb
