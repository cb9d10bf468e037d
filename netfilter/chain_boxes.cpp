#include "netfilter/chain_boxes.h"

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

uint32_t compress_bits(uint32_t value, uint32_t mask) noexcept {
  if (mask == 0) return 0;
  const unsigned low = static_cast<unsigned>(std::countr_zero(mask));
  const uint32_t run = mask >> low;
  if ((run & (run + 1)) == 0) return (value & mask) >> low;  // one run of ones: a shift
  uint32_t out = 0;
  unsigned k = 0;
  for (uint32_t m = mask; m != 0; m &= m - 1, ++k) {
    if ((value & (m & -m)) != 0) out |= 1U << k;
  }
  return out;
}

uint8_t tcp_flags_value(uint8_t flags) noexcept {
  // Dimension order, bit 7 first: SYN ACK RST FIN PSH URG ECE CWR, so the
  // masks rules use (SYN; SYN,ACK; SYN,RST,ACK,FIN; ALL) are high-bit
  // prefixes and become one range.
  static constexpr uint8_t kFrom[8] = {0x10, 0x80, 0x20, 0x08, 0x40, 0x04, 0x02, 0x01};  // wire bit -> dim bit
  uint8_t v = 0;
  for (unsigned bit = 0; bit < 8; ++bit) {
    if ((flags & (1U << bit)) != 0) v |= kFrom[bit];
  }
  return v;
}

namespace {

using Ranges = std::vector<Range>;

// ct_state_value() numbers of packets with and without an entry.
constexpr uint32_t kCtValuesAll = (1U << (kCtValueNone + 1)) - 1U;
constexpr uint32_t kCtValuesNoEntry = (1U << kCtValueInvalid) | (1U << kCtValueUntracked);
constexpr uint32_t kCtValuesEntry = kCtValuesAll & ~kCtValuesNoEntry;

/// The ct values (bit v = value v) a CtStateBit set accepts.
uint32_t ct_values_of(uint8_t states) {
  uint32_t v = 0;
  if ((states & kCtInvalid) != 0) v |= 1U << kCtValueInvalid;
  if ((states & kCtNew) != 0) v |= 1U << kCtValueNew;
  if ((states & kCtRelated) != 0) v |= 1U << kCtValueRelated;
  if ((states & kCtEstablished) != 0) v |= 1U << kCtValueEstablished;
  if ((states & kCtUntracked) != 0) v |= 1U << kCtValueUntracked;
  return v;
}

/// Runs of set bits of a value set over [0, n).
Ranges runs_of(uint32_t n, auto&& in_set) {
  Ranges out;
  for (uint32_t v = 0; v < n; ++v) {
    if (!in_set(v)) continue;
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

/// The intersection of two sorted lists of disjoint ranges.
Ranges intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const uint32_t lo = std::max(a[i].lo, b[j].lo);
    const uint32_t hi = std::min(a[i].hi, b[j].hi);
    if (lo <= hi) out.push_back(Range{lo, hi});
    if (a[i].hi < b[j].hi) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
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

/// One alternative of a rule's match set: a cross product of ranges per
/// dimension. A rule is the union of its alternatives (most rules have one;
/// `--ports` and conntrack tuple options with a no-entry state make two).
struct Alt {
  std::array<Ranges, kDims> dims;

  Alt() {
    for (unsigned d = 0; d < kDims; ++d) dims[d] = {Range{0, field_max(static_cast<Dim>(d))}};
  }
  void restrict(Dim d, const Ranges& r) { dims[d] = intersect(dims[d], r); }
  void restrict_ct(uint32_t values) {
    restrict(kDimCtState, runs_of(kCtValueNone + 1, [values](uint32_t v) { return ((values >> v) & 1U) != 0; }));
  }
  size_t product() const {
    size_t p = 1;
    for (const Ranges& r : dims) p *= r.size();
    return p;
  }
};

using Alts = std::vector<Alt>;

void restrict_all(Alts& alts, Dim d, const Ranges& r) {
  for (Alt& a : alts) a.restrict(d, r);
}

Ranges addr_ranges(uint32_t addr, uint32_t mask, bool invert) {
  return range_or_complement(addr & mask, (addr & mask) | ~mask, 0xffffffffU, invert);
}

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

void add_ports(Alts& alts, const PortRange& sp, bool sinv, const PortRange& dp, bool dinv) {
  if (!(sp.is_any() && !sinv)) restrict_all(alts, kDimSrcPort, range_or_complement(sp.lo, sp.hi, 0xffff, sinv));
  if (!(dp.is_any() && !dinv)) restrict_all(alts, kDimDstPort, range_or_complement(dp.lo, dp.hi, 0xffff, dinv));
}

/// A masked compare (value & mask) == want (!= when invert) on a dimension
/// keyed by compress_bits(value, chain_mask).
bool add_masked(Alts& alts, Dim d, uint32_t want, uint32_t mask, bool invert, uint32_t chain_mask) {
  if (mask == 0) {  // (v & 0) == want: always when want is 0, never otherwise
    if ((want == 0) == invert) restrict_all(alts, d, {});
    return true;
  }
  if (mask != chain_mask) return false;
  if ((want & ~mask) != 0) {  // can never be equal
    if (!invert) restrict_all(alts, d, {});
    return true;
  }
  const uint32_t v = compress_bits(want, mask);
  restrict_all(alts, d, range_or_complement(v, v, 0xffffffffU, invert));
  return true;
}

/// Runs of the TCP flag values (dimension order) that (flags & mask) == cmp
/// accepts; false when they are more than kMaxFlagRuns.
constexpr size_t kMaxFlagRuns = 4;
bool add_tcp_flags(Alts& alts, uint8_t mask, uint8_t cmp, bool invert) {
  std::array<bool, 256> in{};
  for (unsigned f = 0; f < 256; ++f) {
    in[tcp_flags_value(static_cast<uint8_t>(f))] = ((f & mask) == cmp) != invert;
  }
  Ranges r = runs_of(256, [&in](uint32_t v) { return in[v]; });
  if (r.size() > kMaxFlagRuns) return false;
  restrict_all(alts, kDimTcpFlags, r);
  return true;
}

bool add_addrtype(Alts& alts, Dim d, uint16_t types, bool invert) {
  if (types == 0) return true;
  restrict_all(alts, d, runs_of(kAddrTypeCount, [types, invert](uint32_t t) {
                 return ((types & (1U << t)) != 0) != invert;
               }));
  return true;
}

/// -m conntrack. Without an entry the kernel's match holds iff --ctstate was
/// given and held; with one, every option must hold. So the tuple options
/// restrict only the alternative of packets with an entry.
bool add_conntrack(Alts& alts, const ConntrackMatch& c) {
  using O = ConntrackMatch;
  if (c.has(O::kStatus)) return false;
  if ((c.states & (kCtSnat | kCtDnat)) != 0) return false;
  uint32_t states = kCtValuesAll;
  if (c.has(O::kState)) {
    states = ct_values_of(c.states);
    // kCtValueNone (an entry without a state bit) matches only when
    // inverted, as the kernel's (states & bits) != 0 test says.
    if (c.inverted(O::kState)) states = kCtValuesAll & ~states;
  } else {
    states = kCtValuesEntry;  // no --ctstate: no entry, no match
  }
  const uint16_t tuple_opts = O::kProto | O::kOrigSrc | O::kOrigDst | O::kReplSrc | O::kReplDst |
                              O::kOrigSrcPort | O::kOrigDstPort | O::kReplSrcPort | O::kReplDstPort | O::kDir |
                              O::kExpire;
  if ((c.present & tuple_opts) == 0) {
    for (Alt& a : alts) a.restrict_ct(states);
    return true;
  }
  for (const Ipv4Mask* m : {&c.orig_src, &c.orig_dst, &c.repl_src, &c.repl_dst}) {
    if (!is_prefix_mask(m->mask)) return false;
  }
  Alts with_entry = alts;
  for (Alt& a : with_entry) {
    a.restrict_ct(states & kCtValuesEntry);
    if (c.has(O::kProto)) a.restrict(kDimCtProto, range_or_complement(c.proto, c.proto, 0xff, c.inverted(O::kProto)));
    auto addr = [&](O::Opt o, Dim d, const Ipv4Mask& m) {
      if (c.has(o)) a.restrict(d, addr_ranges(m.addr, m.mask, c.inverted(o)));
    };
    addr(O::kOrigSrc, kDimCtOrigSrc, c.orig_src);
    addr(O::kOrigDst, kDimCtOrigDst, c.orig_dst);
    addr(O::kReplSrc, kDimCtReplSrc, c.repl_src);
    addr(O::kReplDst, kDimCtReplDst, c.repl_dst);
    auto port = [&](O::Opt o, Dim d, const PortRange& r) {
      if (c.has(o)) a.restrict(d, range_or_complement(r.lo, r.hi, 0xffff, c.inverted(o)));
    };
    port(O::kOrigSrcPort, kDimCtOrigSrcPort, c.orig_src_port);
    port(O::kOrigDstPort, kDimCtOrigDstPort, c.orig_dst_port);
    port(O::kReplSrcPort, kDimCtReplSrcPort, c.repl_src_port);
    port(O::kReplDstPort, kDimCtReplDstPort, c.repl_dst_port);
    if (c.has(O::kDir)) {
      const uint32_t d = c.dir == O::Dir::Reply ? 1U : 0U;
      a.restrict(kDimCtDir, range_or_complement(d, d, 0xff, c.inverted(O::kDir)));
    }
    if (c.has(O::kExpire)) {
      a.restrict(kDimCtExpire, range_or_complement(c.expire_lo, c.expire_hi, 0xffffffffU, c.inverted(O::kExpire)));
    }
  }
  if ((states & kCtValuesNoEntry) != 0) {
    for (Alt& a : alts) a.restrict_ct(states & kCtValuesNoEntry);
    alts.insert(alts.end(), with_entry.begin(), with_entry.end());
  } else {
    alts = std::move(with_entry);
  }
  return true;
}

/// One module match into the alternatives; false when it does not fit
/// wholly (the caller then drops every later module and makes the boxes
/// residual). What it put in before returning false are necessary
/// conditions of the match, so the boxes stay a superset of the rule.
bool add_module(Alts& alts, const CompiledRule& r, const CompiledMatch& m, const BoxContext& bc) {
  const bool tcp = r.proto == kProtoTcp && !r.proto_invert;
  const bool udp = r.proto == kProtoUdp && !r.proto_invert;
  if (const auto* t = std::get_if<TcpMatch>(&m)) {
    if (!tcp) return false;
    // Ports and flags are necessary conditions: they stay in the box even
    // when an option check makes the rule residual.
    add_ports(alts, t->sport, t->sport_invert, t->dport, t->dport_invert);
    if ((t->flags_mask != 0 || t->flags_invert) && !add_tcp_flags(alts, t->flags_mask, t->flags_cmp, t->flags_invert))
      return false;
    return t->option == 0 && !t->option_invert;
  }
  if (const auto* u = std::get_if<UdpMatch>(&m)) {
    if (!udp) return false;
    add_ports(alts, u->sport, u->sport_invert, u->dport, u->dport_invert);
    return true;
  }
  if (const auto* mp = std::get_if<compiled::Multiport>(&m)) {
    if (!tcp && !udp) return false;
    Ranges ranges;
    for (uint32_t i = 0; i < mp->count; ++i) ranges.push_back(Range{mp->ports[i].lo, mp->ports[i].hi});
    const Ranges set = union_or_complement(ranges, 0xffff, mp->invert);
    if (mp->dir == MultiportMatch::Dir::Source) {
      restrict_all(alts, kDimSrcPort, set);
    } else if (mp->dir == MultiportMatch::Dir::Destination) {
      restrict_all(alts, kDimDstPort, set);
    } else if (mp->invert) {  // neither port in the list
      restrict_all(alts, kDimSrcPort, set);
      restrict_all(alts, kDimDstPort, set);
    } else {  // either port in the list: two alternatives
      Alts dst = alts;
      restrict_all(alts, kDimSrcPort, set);
      restrict_all(dst, kDimDstPort, set);
      alts.insert(alts.end(), dst.begin(), dst.end());
    }
    return true;
  }
  if (const auto* ic = std::get_if<IcmpMatch>(&m)) {
    if (r.proto != kProtoIcmp || r.proto_invert) return false;
    if (ic->type == 0xff) {  // any type (inverted: nothing)
      if (ic->invert) restrict_all(alts, kDimIcmp, {});
      return true;
    }
    const uint32_t base = static_cast<uint32_t>(ic->type) << 8;
    restrict_all(alts, kDimIcmp, range_or_complement(base | ic->code_lo, base | ic->code_hi, 0xffff, ic->invert));
    return true;
  }
  if (const auto* ir = std::get_if<IprangeMatch>(&m)) {
    if (ir->has_src) restrict_all(alts, kDimSrcIp, range_or_complement(ir->src_lo, ir->src_hi, 0xffffffffU, ir->src_invert));
    if (ir->has_dst) restrict_all(alts, kDimDstIp, range_or_complement(ir->dst_lo, ir->dst_hi, 0xffffffffU, ir->dst_invert));
    return true;
  }
  if (const auto* s = std::get_if<StateMatch>(&m)) {
    uint32_t v = ct_values_of(s->states);
    if (s->invert) v = kCtValuesAll & ~v;
    for (Alt& a : alts) a.restrict_ct(v);
    return true;
  }
  if (const auto* c = std::get_if<ConntrackMatch>(&m)) return add_conntrack(alts, *c);
  if (const auto* mk = std::get_if<MarkMatch>(&m)) {
    return add_masked(alts, kDimMark, mk->value, mk->mask, mk->invert, bc.mark_mask);
  }
  if (const auto* cm = std::get_if<ConnmarkMatch>(&m)) {
    // No entry: no match, inverted or not.
    for (Alt& a : alts) a.restrict_ct(kCtValuesEntry);
    return add_masked(alts, kDimConnmark, cm->value, cm->mask, cm->invert, bc.connmark_mask);
  }
  if (const auto* l = std::get_if<LengthMatch>(&m)) {
    restrict_all(alts, kDimLength, range_or_complement(l->min, l->max, 0xffff, l->invert));
    return true;
  }
  if (const auto* s = std::get_if<compiled::String>(&m)) {
    // With the ruleset's scanner, the string dimension says which pattern
    // occurs (id + 1) when only one does, and kSeveralStrings when more do:
    // a positive rule on pattern id can match those two values only. With
    // several patterns the candidate's own check decides (residual).
    if (s->id != kNoStringId && !s->invert) {
      restrict_all(alts, kDimString, Ranges{Range{s->id + 1, s->id + 1}, Range{kSeveralStrings, kSeveralStrings}});
    }
    return false;
  }
  if (const auto* pt = std::get_if<PkttypeMatch>(&m)) {
    const auto t = static_cast<uint32_t>(pt->type);
    restrict_all(alts, kDimPkttype, range_or_complement(t, t, 0xff, pt->invert));
    return true;
  }
  if (const auto* at = std::get_if<AddrtypeMatch>(&m)) {
    if (at->limit_iface_in || at->limit_iface_out) return false;
    add_addrtype(alts, kDimSrcAddrtype, at->src_types, at->src_invert);
    add_addrtype(alts, kDimDstAddrtype, at->dst_types, at->dst_invert);
    return true;
  }
  return false;
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
  for (const CompiledMatch& m : r.matches) {
    if (!add_module(alts, r, m, bc)) {
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

bool chain_key(const MatchContext& ctx, const KeySpec& spec, ClassifierKey& key) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.is_later_fragment()) return false;
  if (k.proto == kProtoTcp && !k.has(key_flag::kTcpFlags)) return false;
  if (k.proto == kProtoUdp && !k.has(key_flag::kPorts)) return false;
  const uint32_t ct = ct_state_value(ctx.ct);
  if (ct == kCtValueAmbiguous) return false;
  const uint32_t used = spec.used;
  const auto uses = [used](Dim d) { return (used & (1U << d)) != 0; };
  key.v[kDimSrcIp] = k.src_ip;
  key.v[kDimDstIp] = k.dst_ip;
  const bool ports = k.proto == kProtoTcp || k.proto == kProtoUdp;
  key.v[kDimSrcPort] = ports ? k.src_port : 0;
  key.v[kDimDstPort] = ports ? k.dst_port : 0;
  key.v[kDimProto] = k.proto;
  key.v[kDimInIface] = ctx.in_iface;
  key.v[kDimOutIface] = ctx.out_iface;
  key.v[kDimCtState] = ct;
  if ((used & kCtTupleDims) != 0) {
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
  key.v[kDimLength] = k.l3_len;
  if (uses(kDimIcmp)) {
    if (k.proto == kProtoIcmp) {
      if (!k.has(key_flag::kIcmp)) return false;  // the icmp match would look at the frame
      key.v[kDimIcmp] = (static_cast<uint32_t>(k.icmp_type) << 8) | k.icmp_code;
    } else {
      key.v[kDimIcmp] = 0;
    }
  }
  key.v[kDimTcpFlags] = k.proto == kProtoTcp ? tcp_flags_value(k.tcp_flags) : 0;
  if (uses(kDimPkttype)) {
    auto type = static_cast<uint32_t>(k.pkttype);
    if (k.pkttype == PktType::Loopback) {  // as eval_pkttype(): multicast or broadcast
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
    key.v[kDimSrcAddrtype] = uses(kDimSrcAddrtype) ? static_cast<uint32_t>(ctx.host->addr_type(k.src_ip)) : 0;
    key.v[kDimDstAddrtype] = uses(kDimDstAddrtype) ? static_cast<uint32_t>(ctx.host->addr_type(k.dst_ip)) : 0;
  }
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
                                WalkResult& res) const noexcept {
  const uint32_t n = walker.chain_size(chain);
  if (pos >= n) return n;
  const PerChain& pc = chains_[chain];
  ClassifierKey key;
  if (!chain_key(ctx, pc.spec, key)) return walker.first_match(chain, pos, ctx, res);
  if (!pc.cls) {  // no rule can match
    res.vary |= vary_of(walker, pc, chain, pos, n - 1, ctx);
    return n;
  }
  while (pos < n) {
    uint32_t hit = kNoMatch;
    pc.cls->lookup(std::span<const ClassifierKey>(&key, 1), std::span<const uint32_t>(&pos, 1),
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
