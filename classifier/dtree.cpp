#include "classifier/dtree.h"
#include "classifier/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NFB_DTREE_X86 1
#else
#define NFB_DTREE_X86 0
#endif

#include "base/hash.h"

namespace nfb {

// ---------------------------------------------------------------------------
// References and leaf blocks.

namespace {

using Node = DtreeClassifier::Node;
using Lane8 = DtreeClassifier::Lane8;

constexpr uint32_t kLeafBit = 0x80000000U;
constexpr unsigned kCountShift = 27;
constexpr uint32_t kBlockMask = (1U << kCountShift) - 1U;
constexpr uint32_t kMaxInlineBlocks = 15;  // a 4-bit count; 0 means "header block first"
constexpr size_t kGroup = 32;              // keys descending together in the staged loop

static_assert(sizeof(Node) == 64 && alignof(Node) == 64);
static_assert(sizeof(Lane8) == 32);

constexpr uint32_t leaf_ref(uint32_t first_block, uint32_t count_field) noexcept {
  return kLeafBit | (count_field << kCountShift) | first_block;
}

/// The blocks of leaf `ref` and their number. `stride` = Lane8s a block.
inline const Lane8* leaf_blocks(const Lane8* blocks, uint32_t ref, size_t stride, uint32_t& count) noexcept {
  const Lane8* p = blocks + static_cast<size_t>(ref & kBlockMask) * stride;
  uint32_t n = (ref >> kCountShift) & 0xfU;
  if (n == 0) {  // a big leaf: the header block holds the count
    n = p->w[0];
    p += stride;
  }
  count = n;
  return p;
}

}  // namespace

struct DtreeClassifier::View {
  const Node* nodes;
  const Lane8* blocks;
  uint32_t rules;
  uint32_t trees;
  uint32_t roots[kDtreeMaxTrees];
  uint32_t min_pos[kDtreeMaxTrees];  // the smallest position in each tree
  uint32_t dims[kDims];
};

// ---------------------------------------------------------------------------
// Lookup kernels. One driver (the staged descent) and per-ISA policies for
// the node search and the leaf scan; the per-ISA entry points carry the
// target attribute and `flatten`, so the driver and the policy are compiled
// inline for that ISA.

namespace {

using View = DtreeClassifier::View;

/// Portable C++: a branch-free binary search over the seven thresholds, and
/// a lane-by-lane leaf scan.
struct ScalarPolicy {
  static uint32_t child(const Node& n, uint32_t v) noexcept {
    unsigned j = v > n.thr[3] ? 4U : 0U;
    j += v > n.thr[j + 1] ? 2U : 0U;
    j += v > n.thr[j] ? 1U : 0U;
    return n.child[j];
  }

  /// The first position >= from (kStart) whose box in leaf `ref` holds the
  /// key, if below `limit`; else `limit`.
  template <unsigned D, bool kStart>
  static uint32_t scan(const Lane8* blocks, uint32_t ref, const ClassifierKey& key, const uint32_t* dims,
                       uint32_t from, uint32_t limit) noexcept {
    constexpr size_t kStride = 1 + 2 * D;
    uint32_t count = 0;
    const Lane8* blk = leaf_blocks(blocks, ref, kStride, count);
    uint32_t kv[D];
    for (unsigned d = 0; d < D; ++d) kv[d] = key.v[dims[d]];
    for (uint32_t b = 0; b < count && blk[0].w[0] < limit; ++b, blk += kStride) {
      for (unsigned lane = 0; lane < 8; ++lane) {
        const uint32_t pos = blk[0].w[lane];
        if (kStart && pos < from) continue;
        bool hit = true;
        for (unsigned d = 0; d < D; ++d) hit &= kv[d] - blk[1 + 2 * d].w[lane] <= blk[2 + 2 * d].w[lane];
        if (hit) return std::min(pos, limit);
      }
    }
    return limit;
  }
};

#if NFB_DTREE_X86

__attribute__((target("avx2"))) inline __m256i load8(const Lane8& l) noexcept { return _mm256_load_si256(reinterpret_cast<const __m256i*>(l.w)); }

/// AVX2: unsigned v - lo <= width as min(v - lo, width) == v - lo.
struct Avx2Policy {
  __attribute__((target("avx2"))) static uint32_t child(const Node& n, uint32_t v) noexcept {
    return ScalarPolicy::child(n, v);
  }

  template <unsigned D, bool kStart>
  __attribute__((target("avx2,bmi"))) static uint32_t scan(const Lane8* blocks, uint32_t ref,
                                                          const ClassifierKey& key, const uint32_t* dims,
                                                          uint32_t from, uint32_t limit) noexcept {
    constexpr size_t kStride = 1 + 2 * D;
    uint32_t count = 0;
    const Lane8* blk = leaf_blocks(blocks, ref, kStride, count);
    __m256i kv[D];
    for (unsigned d = 0; d < D; ++d) kv[d] = _mm256_set1_epi32(static_cast<int>(key.v[dims[d]]));
    const __m256i s = _mm256_set1_epi32(static_cast<int>(from));
    for (uint32_t b = 0; b < count && blk[0].w[0] < limit; ++b, blk += kStride) {
      __m256i m = _mm256_set1_epi32(-1);
      if constexpr (kStart) {
        const __m256i pos = load8(blk[0]);
        m = _mm256_cmpeq_epi32(_mm256_max_epu32(pos, s), pos);  // pos >= from
      }
      for (unsigned d = 0; d < D; ++d) {
        const __m256i off = _mm256_sub_epi32(kv[d], load8(blk[1 + 2 * d]));
        m = _mm256_and_si256(m, _mm256_cmpeq_epi32(_mm256_min_epu32(off, load8(blk[2 + 2 * d])), off));
      }
      const auto mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(m)));
      if (mask != 0) return std::min(blk[0].w[std::countr_zero(mask)], limit);
    }
    return limit;
  }
};

/// AVX-512F + VL on 256-bit vectors: compares straight into a mask
/// register, chained; the node search is one compare and a popcount.
struct Avx512Policy {
  __attribute__((target("avx512f,avx512vl,popcnt"))) static uint32_t child(const Node& n, uint32_t v) noexcept {
    const __m256i t = _mm256_load_si256(reinterpret_cast<const __m256i*>(n.thr));  // thr[0..6], dim
    const auto gt = static_cast<unsigned>(_mm256_cmpgt_epu32_mask(_mm256_set1_epi32(static_cast<int>(v)), t));
    return n.child[std::popcount(gt & 0x7fU)];
  }

  template <unsigned D, bool kStart>
  __attribute__((target("avx512f,avx512vl,bmi"))) static uint32_t scan(const Lane8* blocks, uint32_t ref,
                                                                      const ClassifierKey& key,
                                                                      const uint32_t* dims, uint32_t from,
                                                                      uint32_t limit) noexcept {
    constexpr size_t kStride = 1 + 2 * D;
    uint32_t count = 0;
    const Lane8* blk = leaf_blocks(blocks, ref, kStride, count);
    __m256i kv[D];
    for (unsigned d = 0; d < D; ++d) kv[d] = _mm256_set1_epi32(static_cast<int>(key.v[dims[d]]));
    const __m256i s = _mm256_set1_epi32(static_cast<int>(from));
    for (uint32_t b = 0; b < count && blk[0].w[0] < limit; ++b, blk += kStride) {
      __mmask8 m = 0xff;
      if constexpr (kStart) m = _mm256_cmpge_epu32_mask(load8(blk[0]), s);
      for (unsigned d = 0; d < D; ++d) {
        const __m256i off = _mm256_sub_epi32(kv[d], load8(blk[1 + 2 * d]));
        m = _mm256_mask_cmple_epu32_mask(m, off, load8(blk[2 + 2 * d]));
      }
      if (m != 0) return std::min(blk[0].w[std::countr_zero(static_cast<unsigned>(m))], limit);
    }
    return limit;
  }
};

#endif  // NFB_DTREE_X86

/// The staged loop: up to kGroup keys descend a tree together, one level a
/// pass, each prefetching the line it reads next; then each key's leaf is
/// scanned (its first block was prefetched when the key reached it). With
/// several trees the answer is the minimum: a key skips a tree whose
/// smallest position cannot beat what it has, and a leaf scan stops at the
/// first block that cannot.
template <unsigned D, bool kStart, class P>
inline void drive(const View& t, std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                  std::span<uint32_t> result) noexcept {
  constexpr size_t kStride = 1 + 2 * D;
  constexpr size_t kBlockBytes = kStride * sizeof(Lane8);
  const size_t n = keys.size();
  for (size_t base = 0; base < n; base += kGroup) {
    const size_t m = std::min(kGroup, n - base);
    const ClassifierKey* k = keys.data() + base;
    uint32_t best[kGroup];
    uint32_t from[kGroup];
    for (size_t i = 0; i < m; ++i) {
      from[i] = 0;
      if constexpr (kStart) from[i] = start[base + i];
      best[i] = kNoMatch;
    }
    for (uint32_t tree = 0; tree < t.trees; ++tree) {
      const uint32_t root = t.roots[tree];
      const uint32_t min_pos = t.min_pos[tree];
      uint32_t ref[kGroup];
      uint8_t improvable[kGroup];  // keys this tree may still improve
      uint8_t active[kGroup];  // keys still descending
      size_t nt = 0;
      size_t na = 0;
      const bool root_is_node = (root & kLeafBit) == 0;
      for (size_t i = 0; i < m; ++i) {
        ref[i] = root;
        const bool wanted = best[i] > min_pos && from[i] < t.rules;
        improvable[nt] = static_cast<uint8_t>(i);
        nt += wanted ? 1U : 0U;
        active[na] = static_cast<uint8_t>(i);
        na += wanted && root_is_node ? 1U : 0U;
      }
      while (na != 0) {
        size_t still = 0;
        for (size_t a = 0; a < na; ++a) {
          const size_t i = active[a];
          const Node& node = t.nodes[ref[i]];
          const uint32_t r = P::child(node, k[i].v[node.dim]);
          ref[i] = r;
          if ((r & kLeafBit) == 0) {
            __builtin_prefetch(&t.nodes[r]);
            active[still++] = static_cast<uint8_t>(i);
          } else {
            const auto* p =
                reinterpret_cast<const char*>(t.blocks + static_cast<size_t>(r & kBlockMask) * kStride);
            for (size_t off = 0; off < kBlockBytes; off += 64) __builtin_prefetch(p + off);
          }
        }
        na = still;
      }
      for (size_t a = 0; a < nt; ++a) {
        const size_t i = improvable[a];
        best[i] = P::template scan<D, kStart>(t.blocks, ref[i], k[i], t.dims, from[i], best[i]);
      }
    }
    for (size_t i = 0; i < m; ++i) result[base + i] = best[i];
  }
}

template <unsigned D, bool kStart>
void run_scalar(const View& t, std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                std::span<uint32_t> result) noexcept {
  drive<D, kStart, ScalarPolicy>(t, keys, start, result);
}

#if NFB_DTREE_X86
template <unsigned D, bool kStart>
__attribute__((target("avx2,bmi,popcnt"), flatten)) void run_avx2(const View& t,
                                                                  std::span<const ClassifierKey> keys,
                                                                  std::span<const uint32_t> start,
                                                                  std::span<uint32_t> result) noexcept {
  drive<D, kStart, Avx2Policy>(t, keys, start, result);
}

template <unsigned D, bool kStart>
__attribute__((target("avx512f,avx512vl,avx2,bmi,popcnt"), flatten)) void run_avx512(
    const View& t, std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
    std::span<uint32_t> result) noexcept {
  drive<D, kStart, Avx512Policy>(t, keys, start, result);
}
#endif

using KernelFn = void (*)(const View&, std::span<const ClassifierKey>, std::span<const uint32_t>,
                          std::span<uint32_t>) noexcept;

template <bool kStart, unsigned D = 1>
KernelFn pick_kernel(DtreeIsa isa, unsigned dims) noexcept {
  if constexpr (D < kDims) {
    if (dims != D) return pick_kernel<kStart, D + 1>(isa, dims);
  }
#if NFB_DTREE_X86
  if (isa == DtreeIsa::kAvx512) return &run_avx512<D, kStart>;
  if (isa == DtreeIsa::kAvx2) return &run_avx2<D, kStart>;
#else
  (void)isa;
#endif
  return &run_scalar<D, kStart>;
}

}  // namespace

bool dtree_isa_supported(DtreeIsa isa) noexcept {
  switch (isa) {
    case DtreeIsa::kAuto:
    case DtreeIsa::kScalar:
      return true;
#if NFB_DTREE_X86
    case DtreeIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi");
    case DtreeIsa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("popcnt");
#else
    case DtreeIsa::kAvx2:
    case DtreeIsa::kAvx512:
      return false;
#endif
  }
  return false;
}

std::string_view dtree_isa_name(DtreeIsa isa) noexcept {
  switch (isa) {
    case DtreeIsa::kAuto: return "auto";
    case DtreeIsa::kScalar: return "scalar";
    case DtreeIsa::kAvx2: return "avx2";
    case DtreeIsa::kAvx512: return "avx512";
  }
  return "invalid";
}

// ---------------------------------------------------------------------------
// Build.

namespace {

/// Builds the tree breadth first (see the header). Control plane: allocates
/// freely.
class Builder {
 public:
  /// A builder of one tree over rules.boxes[i] for i in `subset` (in
  /// position order), appending to `nodes` and `blocks`.
  Builder(const RuleBoxes& rules, std::span<const uint32_t> subset, size_t budget, const DtreeOptions& opt,
          const uint32_t* dims, unsigned num_dims, std::vector<Node>& nodes, std::vector<Lane8>& blocks)
      : opt_(opt), num_dims_(num_dims), stride_(1 + 2 * static_cast<size_t>(num_dims)), nodes_(nodes),
        blocks_(blocks), budget_(budget) {
    for (uint32_t i : subset) {
      const Box& b = rules.boxes[i];
      pos_.push_back(b.position);
      for (unsigned s = 0; s < num_dims_; ++s) {
        lo_[s].push_back(b.r[dims[s]].lo);
        hi_[s].push_back(b.r[dims[s]].hi);
      }
    }
    for (unsigned s = 0; s < num_dims_; ++s) dim_of_slot_[s] = dims[s];
  }

  /// Builds the tree; returns its root reference and adds to `stats`.
  uint32_t build(DtreeStats& stats) {
    // Block 0 (shared by every tree): the empty leaf, all lanes padding.
    if (blocks_.empty()) append_padding_block();
    empty_ref_ = leaf_ref(0, 1);
    const size_t node_base = nodes_.size();

    Region whole;
    for (unsigned s = 0; s < num_dims_; ++s) whole[s] = Range{0, 0xffffffffU};
    std::vector<uint32_t> all(pos_.size());
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    cur_ids_ = std::move(all);
    cur_.push_back(Pending{new_item(), 0, static_cast<uint32_t>(cur_ids_.size()), 0, whole});
    pending_boxes_ = cur_ids_.size();

    while (!cur_.empty()) {
      next_.clear();
      next_ids_.clear();
      next_index_.clear();
      for (const Pending& p : cur_) process(p);
      std::swap(cur_, next_);
      std::swap(cur_ids_, next_ids_);
    }

    // Children were recorded as item ids: turn them into references.
    for (size_t i = node_base; i < nodes_.size(); ++i) {
      for (uint32_t& c : nodes_[i].child) c = c == kUnusedChild ? empty_ref_ : item_ref_[c];
    }
    stats.nodes += nodes_.size() - node_base;
    stats.leaves += stats_.leaves;
    stats.leaf_boxes += stats_.leaf_boxes;
    stats.max_leaf_boxes = std::max(stats.max_leaf_boxes, stats_.max_leaf_boxes);
    stats.depth = std::max(stats.depth, stats_.depth);
    stats.budget_hit |= stats_.budget_hit;
    return item_ref_[0];
  }

 private:
  using Region = std::array<Range, kDims>;  // by used-dimension slot
  static constexpr uint32_t kUnusedChild = 0xffffffffU;

  struct Pending {
    uint32_t item;   // global item id
    uint32_t off;    // its box ids: cur_ids_[off, off + len)
    uint32_t len;
    uint32_t depth;
    Region region;
  };

  struct Split {
    unsigned slot = 0;
    unsigned children = 0;
    size_t max = 0;
    size_t sum = 0;
    uint32_t cuts[9] = {};  // child j holds values up to cuts[j]
  };

  uint32_t new_item() {
    item_ref_.push_back(0);
    return static_cast<uint32_t>(item_ref_.size() - 1);
  }

  static uint64_t hash_ids(std::span<const uint32_t> ids) noexcept {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ids.size();
    for (uint32_t id : ids) {
      h ^= id;
      h *= 0xff51afd7ed558ccdULL;
      h ^= h >> 32;
    }
    return h;
  }

  void process(const Pending& p) {
    const std::span<const uint32_t> ids(cur_ids_.data() + p.off, p.len);
    pending_boxes_ -= p.len;
    if (p.len == 0) {
      item_ref_[p.item] = empty_ref_;
      return;
    }
    stats_.depth = std::max(stats_.depth, p.depth);
    if (p.len <= opt_.leaf_size || p.depth >= opt_.max_depth) {
      item_ref_[p.item] = emit_leaf(ids);
      return;
    }
    Split best;
    if (!best_split(ids, p.region, best)) {
      item_ref_[p.item] = emit_leaf(ids);
      return;
    }
    if (leaf_boxes_ + pending_boxes_ + best.sum > budget_) {
      stats_.budget_hit = true;
      item_ref_[p.item] = emit_leaf(ids);
      return;
    }

    // The node; its children are items of the next level (shared when
    // their box lists are equal).
    const auto node_index = static_cast<uint32_t>(nodes_.size());
    if (node_index >= kLeafBit) throw std::invalid_argument("dtree: too many nodes");
    item_ref_[p.item] = node_index;
    Node node{};
    const unsigned s = best.slot;
    node.dim = dim_of_slot_[s];
    for (unsigned j = 0; j < 7; ++j) node.thr[j] = j + 1 < best.children ? best.cuts[j] : 0xffffffffU;
    for (uint32_t& c : node.child) c = kUnusedChild;

    for (unsigned j = 0; j < best.children; ++j) scratch_[j].clear();
    const Range& rg = p.region[s];
    for (uint32_t id : ids) {
      const uint32_t lo = std::max(lo_[s][id], rg.lo);
      const uint32_t hi = std::min(hi_[s][id], rg.hi);
      unsigned j = 0;
      while (best.cuts[j] < lo) ++j;
      for (;; ++j) {
        scratch_[j].push_back(id);
        if (best.cuts[j] >= hi) break;
      }
    }
    uint32_t child_lo = rg.lo;
    for (unsigned j = 0; j < best.children; ++j) {
      const std::vector<uint32_t>& list = scratch_[j];
      const uint64_t h = hash_ids(list);
      uint32_t item = kUnusedChild;
      auto [first, last] = next_index_.equal_range(h);
      for (auto it = first; it != last; ++it) {
        const Pending& q = next_[it->second];
        if (q.len == list.size() && std::equal(list.begin(), list.end(), next_ids_.begin() + q.off)) {
          item = q.item;
          break;
        }
      }
      if (item == kUnusedChild) {
        Pending q;
        q.item = item = new_item();
        q.off = static_cast<uint32_t>(next_ids_.size());
        q.len = static_cast<uint32_t>(list.size());
        q.depth = p.depth + 1;
        q.region = p.region;
        q.region[s] = Range{child_lo, best.cuts[j]};
        next_ids_.insert(next_ids_.end(), list.begin(), list.end());
        if (next_ids_.size() > 0xffffffffU) throw std::invalid_argument("dtree: build frontier too large");
        next_index_.emplace(h, static_cast<uint32_t>(next_.size()));
        next_.push_back(q);
        pending_boxes_ += list.size();
      }
      node.child[j] = item;
      child_lo = best.cuts[j] + 1;  // unused after the last child (which ends at rg.hi)
    }
    nodes_.push_back(node);
  }

  /// The best split of `ids` over `region`; false when no dimension makes
  /// progress.
  bool best_split(std::span<const uint32_t> ids, const Region& region, Split& best) {
    const size_t n = ids.size();
    bool found = false;
    for (unsigned s = 0; s < num_dims_; ++s) {
      const uint32_t rlo = region[s].lo;
      const uint32_t rhi = region[s].hi;
      los_.resize(n);
      his_.resize(n);
      for (size_t i = 0; i < n; ++i) {
        los_[i] = std::max(lo_[s][ids[i]], rlo);
        his_[i] = std::min(hi_[s][ids[i]], rhi);
      }
      std::sort(los_.begin(), los_.end());
      std::sort(his_.begin(), his_.end());
      // Candidate upper bounds of a child: just below a box's start, at a
      // box's end, and the region's end (last).
      cands_.clear();
      size_t a = 0;  // next box start: candidate los_[a] - 1 when los_[a] > rlo
      size_t b = 0;  // next box end: candidate his_[b] when his_[b] < rhi
      while (a < n && los_[a] == rlo) ++a;
      for (;;) {
        const bool more_a = a < n;
        const bool more_b = b < n && his_[b] < rhi;
        if (!more_a && !more_b) break;
        uint32_t v;
        if (more_a && (!more_b || los_[a] - 1U <= his_[b])) {
          v = los_[a++] - 1U;
        } else {
          v = his_[b++];
        }
        if (cands_.empty() || cands_.back() != v) cands_.push_back(v);
      }
      cands_.push_back(rhi);
      if (cands_.size() == 1) continue;  // every box spans the region here

      const unsigned k = opt_.fanout;
      size_t lo_t = (n + k - 1) / k;
      size_t hi_t = n;
      while (lo_t < hi_t) {
        const size_t mid = lo_t + (hi_t - lo_t) / 2;
        if (greedy(mid, k, nullptr) <= k) {
          hi_t = mid;
        } else {
          lo_t = mid + 1;
        }
      }
      Split sp;
      sp.slot = s;
      sp.children = greedy(lo_t, k, &sp);
      if (sp.children < 2) continue;
      // Progress: the biggest child is smaller, or on average the children
      // are clearly smaller (nested boxes keep one child full).
      const bool progress = sp.max < n || sp.sum * 4 <= static_cast<size_t>(sp.children) * n * 3;
      if (!progress) continue;
      if (!found || sp.max < best.max || (sp.max == best.max && sp.sum < best.sum)) {
        best = sp;
        found = true;
      }
    }
    return found;
  }

  /// Greedy partition of the sorted clipped ranges (los_, his_) into
  /// children of at most `t` boxes each where possible (a child of one
  /// elementary interval may hold more); stops counting past `k` children.
  /// Child bounds come from cands_. Fills `out` (cuts, max, sum) if given.
  unsigned greedy(size_t t, unsigned k, Split* out) const noexcept {
    const size_t n = los_.size();
    size_t li = 0;    // boxes with lo <= b
    size_t hcnt = 0;  // boxes with hi < a (the child's start)
    unsigned children = 0;
    bool have = false;
    uint32_t ok_b = 0;
    size_t ok_cnt = 0;
    auto close = [&](uint32_t b, size_t cnt) {
      if (out != nullptr) {
        out->cuts[children] = b;
        out->max = std::max(out->max, cnt);
        out->sum += cnt;
      }
      ++children;
      if (b != 0xffffffffU) {
        while (hcnt < n && his_[hcnt] <= b) ++hcnt;
      }
      have = false;
    };
    size_t c = 0;
    while (c < cands_.size() && children <= k) {
      const uint32_t b = cands_[c];
      while (li < n && los_[li] <= b) ++li;
      const size_t cnt = li - hcnt;
      if (cnt <= t) {
        have = true;
        ok_b = b;
        ok_cnt = cnt;
        ++c;
      } else if (have) {
        close(ok_b, ok_cnt);
      } else {
        close(b, cnt);
        ++c;
      }
    }
    if (have && children <= k) close(ok_b, ok_cnt);
    return children;
  }

  void append_padding_block() {
    Lane8 pos{};
    for (uint32_t& w : pos.w) w = kNoMatch;
    blocks_.push_back(pos);
    for (unsigned s = 0; s < num_dims_; ++s) {
      blocks_.push_back(Lane8{});  // lo 0
      Lane8 width{};
      for (uint32_t& w : width.w) w = 0xffffffffU;
      blocks_.push_back(width);
    }
  }

  uint32_t emit_leaf(std::span<const uint32_t> ids) {
    const uint64_t h = hash_ids(ids);
    auto [first, last] = leaf_index_.equal_range(h);
    for (auto it = first; it != last; ++it) {
      const LeafRecord& r = leaf_records_[it->second];
      if (r.len == ids.size() && std::equal(ids.begin(), ids.end(), leaf_ids_.begin() + static_cast<ptrdiff_t>(r.off))) {
        return r.ref;
      }
    }
    const size_t count = (ids.size() + 7) / 8;
    const size_t first_block = blocks_.size() / stride_;
    if (first_block + count + 1 > kBlockMask) throw std::invalid_argument("dtree: leaves exceed 2^27 blocks");
    uint32_t ref;
    if (count <= kMaxInlineBlocks) {
      ref = leaf_ref(static_cast<uint32_t>(first_block), static_cast<uint32_t>(count));
    } else {
      ref = leaf_ref(static_cast<uint32_t>(first_block), 0);
      Lane8 header{};
      header.w[0] = static_cast<uint32_t>(count);
      blocks_.push_back(header);
      for (size_t i = 1; i < stride_; ++i) blocks_.push_back(Lane8{});
    }
    for (size_t b = 0; b < count; ++b) {
      append_padding_block();
      Lane8* blk = &blocks_[blocks_.size() - stride_];
      for (unsigned lane = 0; lane < 8; ++lane) {
        const size_t i = b * 8 + lane;
        if (i >= ids.size()) break;
        const uint32_t id = ids[i];
        blk[0].w[lane] = pos_[id];
        for (unsigned s = 0; s < num_dims_; ++s) {
          blk[1 + 2 * s].w[lane] = lo_[s][id];
          blk[2 + 2 * s].w[lane] = hi_[s][id] - lo_[s][id];
        }
      }
    }
    leaf_index_.emplace(h, static_cast<uint32_t>(leaf_records_.size()));
    leaf_records_.push_back(LeafRecord{leaf_ids_.size(), ids.size(), ref});
    leaf_ids_.insert(leaf_ids_.end(), ids.begin(), ids.end());
    ++stats_.leaves;
    stats_.leaf_boxes += ids.size();
    stats_.max_leaf_boxes = std::max(stats_.max_leaf_boxes, ids.size());
    leaf_boxes_ += ids.size();
    return ref;
  }

  struct LeafRecord {
    size_t off;
    size_t len;
    uint32_t ref;
  };

  const DtreeOptions& opt_;
  const unsigned num_dims_;
  const size_t stride_;
  std::vector<uint32_t> pos_;
  std::array<std::vector<uint32_t>, kDims> lo_;
  std::array<std::vector<uint32_t>, kDims> hi_;
  std::vector<Node>& nodes_;
  std::vector<Lane8>& blocks_;
  const size_t budget_;
  size_t leaf_boxes_ = 0;     // boxes in emitted leaves (copies counted, shared leaves once)
  size_t pending_boxes_ = 0;  // boxes in items not yet processed

  uint32_t dim_of_slot_[kDims] = {};
  uint32_t empty_ref_ = 0;
  std::vector<uint32_t> item_ref_;  // by item id: its final reference

  std::vector<Pending> cur_, next_;
  std::vector<uint32_t> cur_ids_, next_ids_;
  std::unordered_multimap<uint64_t, uint32_t> next_index_;  // hash -> index into next_

  std::unordered_multimap<uint64_t, uint32_t> leaf_index_;  // hash -> index into leaf_records_
  std::vector<LeafRecord> leaf_records_;
  std::vector<uint32_t> leaf_ids_;

  // Scratch for best_split / process.
  std::vector<uint32_t> los_, his_, cands_;
  std::array<std::vector<uint32_t>, 9> scratch_;

  DtreeStats stats_;
};

}  // namespace

namespace {

/// Trees over disjoint subsets of the boxes, in one pair of arrays.
struct Forest {
  std::vector<Node> nodes;
  std::vector<Lane8> blocks;
  uint32_t trees = 0;
  uint32_t roots[kDtreeMaxTrees] = {};
  uint32_t min_pos[kDtreeMaxTrees] = {};
  DtreeStats stats;
};

Forest build_forest(const RuleBoxes& rules, const std::vector<std::vector<uint32_t>>& subsets,
                    const DtreeOptions& opt, const uint32_t* dims, unsigned num_dims) {
  Forest f;
  size_t total = 0;
  for (const std::vector<uint32_t>& subset : subsets) total += subset.size();
  for (const std::vector<uint32_t>& subset : subsets) {
    if (subset.empty()) continue;
    // Each tree may copy boxes up to max_replication times its share, a
    // small tree as if it held a quarter of all boxes (its boxes are the
    // wide ones, copied most).
    const double share = static_cast<double>(std::max(subset.size(), total / 4));
    const auto budget = static_cast<size_t>(std::min(opt.max_replication * share + 4096.0, 1e15));
    Builder b(rules, subset, budget, opt, dims, num_dims, f.nodes, f.blocks);
    f.roots[f.trees] = b.build(f.stats);
    f.min_pos[f.trees] = rules.boxes[subset.front()].position;
    ++f.trees;
  }
  return f;
}

/// CutSplit's observation: a box small in an address dimension is cheap to
/// cut there and a wide one is copied into every piece. Three subsets: small
/// source range; else small destination range; else the rest.
std::vector<std::vector<uint32_t>> address_partition(const RuleBoxes& rules, const std::vector<uint32_t>& live) {
  constexpr uint32_t kSmall = 0xffffU;  // range width below 2^16 addresses
  std::vector<std::vector<uint32_t>> parts(3);
  for (uint32_t i : live) {
    const Box& b = rules.boxes[i];
    const bool src_small = b.r[kDimSrcIp].hi - b.r[kDimSrcIp].lo < kSmall;
    const bool dst_small = b.r[kDimDstIp].hi - b.r[kDimDstIp].lo < kSmall;
    parts[src_small ? 0 : dst_small ? 1 : 2].push_back(i);
  }
  return parts;
}

/// Keys the way ClassBench traces are made: a random box, a random point in
/// it (fixed seed, so the build is deterministic), in the used dimensions
/// only (the cost model reads no others). 16 keys a box up to 4096: a
/// host's thousands of small chains (a kube-proxy node has three per
/// service) must not each pay for a big sample.
std::vector<ClassifierKey> sample_keys(const RuleBoxes& rules, const std::vector<uint32_t>& live,
                                       const uint32_t* dims, unsigned num_dims) {
  constexpr size_t kSample = 4096;
  std::vector<ClassifierKey> keys;
  if (live.empty()) return keys;
  uint64_t state = 0x5eed;
  keys.resize(std::min(kSample, 16 * live.size()));
  for (ClassifierKey& k : keys) {
    const Box& b = rules.boxes[live[splitmix64(state) % live.size()]];
    for (unsigned s = 0; s < num_dims; ++s) {
      const Range& r = b.r[dims[s]];
      const uint64_t width = uint64_t{r.hi} - r.lo + 1;
      k.v[dims[s]] = r.lo + static_cast<uint32_t>(splitmix64(state) % width);
    }
  }
  return keys;
}

/// The lookup's cost model on `keys`: a node visit counts 2 (a dependent
/// cache line and a search), a leaf block 1 + D/4 (its compares), following
/// the real lookup's pruning across trees.
double estimate_cost(const Forest& f, const std::vector<ClassifierKey>& keys, unsigned num_dims,
                     const uint32_t* dims) {
  if (keys.empty()) return 0;
  const size_t stride = 1 + 2 * static_cast<size_t>(num_dims);
  const double block_cost = 1.0 + num_dims / 4.0;
  double cost = 0;
  for (const ClassifierKey& k : keys) {
    uint32_t best = kNoMatch;
    for (uint32_t t = 0; t < f.trees; ++t) {
      if (best <= f.min_pos[t]) continue;
      uint32_t ref = f.roots[t];
      while ((ref & kLeafBit) == 0) {
        ref = ScalarPolicy::child(f.nodes[ref], k.v[f.nodes[ref].dim]);
        cost += 2;
      }
      uint32_t count = 0;
      const Lane8* blk = leaf_blocks(f.blocks.data(), ref, stride, count);
      for (uint32_t b = 0; b < count && blk[0].w[0] < best; ++b, blk += stride) {
        cost += block_cost;
        uint32_t hit = kNoMatch;
        for (unsigned lane = 0; lane < 8 && hit == kNoMatch; ++lane) {
          bool in = true;
          for (unsigned s = 0; s < num_dims; ++s) in &= k.v[dims[s]] - blk[1 + 2 * s].w[lane] <= blk[2 + 2 * s].w[lane];
          if (in) hit = blk[0].w[lane];
        }
        if (hit != kNoMatch) {
          best = std::min(best, hit);
          break;
        }
      }
    }
  }
  return cost / static_cast<double>(keys.size());
}

}  // namespace

DtreeClassifier::DtreeClassifier(const RuleBoxes& rules, const DtreeOptions& options) : rules_(rules.rules) {
  if (options.leaf_size < 1 || options.leaf_size > 1024) {
    throw std::invalid_argument(fmt::format("dtree: leaf_size {} is outside 1..1024", options.leaf_size));
  }
  if (options.fanout < 2 || options.fanout > 8) {
    throw std::invalid_argument(fmt::format("dtree: fanout {} is outside 2..8", options.fanout));
  }
  if (!(options.max_replication >= 1.0) || !std::isfinite(options.max_replication)) {
    throw std::invalid_argument(fmt::format("dtree: max_replication {} is below 1", options.max_replication));
  }
  if (options.max_depth < 1 || options.max_depth > 64) {
    throw std::invalid_argument(fmt::format("dtree: max_depth {} is outside 1..64", options.max_depth));
  }
  if (!dtree_isa_supported(options.isa)) {
    throw std::invalid_argument(
        fmt::format("dtree: this CPU does not support the {} instruction set", dtree_isa_name(options.isa)));
  }
  for (size_t i = 0; i < rules.boxes.size(); ++i) {
    const Box& b = rules.boxes[i];
    if (i > 0 && b.position < rules.boxes[i - 1].position) {
      throw std::invalid_argument(fmt::format("dtree: box {} (position {}) comes after position {}: boxes must be "
                                              "sorted by position",
                                              i, b.position, rules.boxes[i - 1].position));
    }
    if (b.position >= rules.rules) {
      throw std::invalid_argument(
          fmt::format("dtree: box {} has position {}, beyond the rule count {}", i, b.position, rules.rules));
    }
  }

  const uint32_t used = rules.used_dims();
  for (unsigned d = 0; d < kDims; ++d) {
    if ((used >> d) & 1U) dims_[num_dims_++] = d;
  }
  if (num_dims_ == 0) dims_[num_dims_++] = 0;  // every box spans everything: one dimension to scan

  DtreeIsa isa = options.isa;
  if (isa == DtreeIsa::kAuto) {
    isa = dtree_isa_supported(DtreeIsa::kAvx512) ? DtreeIsa::kAvx512
          : dtree_isa_supported(DtreeIsa::kAvx2) ? DtreeIsa::kAvx2
                                                 : DtreeIsa::kScalar;
  }

  // Boxes empty in some dimension match nothing: leave them out.
  std::vector<uint32_t> live;
  for (uint32_t i = 0; i < rules.boxes.size(); ++i) {
    bool empty = false;
    for (const Range& r : rules.boxes[i].r) empty |= r.lo > r.hi;
    if (!empty) live.push_back(i);
  }

  Forest one = build_forest(rules, {live}, options, dims_, num_dims_);
  Forest chosen;
  // A chain of at most one leaf's boxes is one leaf: the partition could
  // only add trees, so the model need not run (unless it is forced).
  const bool compare = options.partition == DtreePartition::kAddress ||
                       (options.partition == DtreePartition::kAuto && live.size() > options.leaf_size);
  const std::vector<ClassifierKey> sample =
      compare ? sample_keys(rules, live, dims_, num_dims_) : std::vector<ClassifierKey>{};
  one.stats.estimated_cost = estimate_cost(one, sample, num_dims_, dims_);
  if (compare) {
    Forest parts = build_forest(rules, address_partition(rules, live), options, dims_, num_dims_);
    parts.stats.estimated_cost = estimate_cost(parts, sample, num_dims_, dims_);
    if (options.partition == DtreePartition::kAddress || parts.stats.estimated_cost < one.stats.estimated_cost) {
      chosen = std::move(parts);
    } else {
      chosen = std::move(one);
    }
  } else {
    chosen = std::move(one);
  }
  chosen.nodes.shrink_to_fit();
  chosen.blocks.shrink_to_fit();
  nodes_ = std::move(chosen.nodes);
  blocks_ = std::move(chosen.blocks);
  trees_ = chosen.trees;
  for (uint32_t t = 0; t < trees_; ++t) {
    roots_[t] = chosen.roots[t];
    min_pos_[t] = chosen.min_pos[t];
  }
  stats_ = chosen.stats;
  stats_.isa = isa;
  stats_.dims = num_dims_;
  stats_.trees = trees_;
  lookup_from_zero_ = pick_kernel<false>(isa, num_dims_);
  lookup_from_start_ = pick_kernel<true>(isa, num_dims_);
}

void DtreeClassifier::lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                             std::span<uint32_t> result) const noexcept {
  View v{nodes_.data(), blocks_.data(), rules_, trees_, {}, {}, {}};
  for (uint32_t t = 0; t < trees_; ++t) {
    v.roots[t] = roots_[t];
    v.min_pos[t] = min_pos_[t];
  }
  for (unsigned s = 0; s < kDims; ++s) v.dims[s] = dims_[s];
  if (start.empty()) {
    lookup_from_zero_(v, keys, start, result);
  } else {
    lookup_from_start_(v, keys, start, result);
  }
}

size_t DtreeClassifier::memory_bytes() const noexcept {
  return sizeof(*this) + nodes_.capacity() * sizeof(Node) + blocks_.capacity() * sizeof(Lane8);
}

std::unique_ptr<Classifier> make_dtree_classifier(const RuleBoxes& rules, ClassifierUse) {
  return std::make_unique<DtreeClassifier>(rules);
}

}  // namespace nfb
