// Box sets: the range algebra that turns a rule's matches into classifier
// boxes (classifier.h).
//
// A rule's match set is a union of alternatives (Alt); each alternative is
// a cross product of sorted, disjoint ranges per dimension. A module match
// restricts the alternatives (intersects a dimension with its ranges) or
// splits them (two alternatives for "source or destination port"). Box
// building then expands every alternative into boxes. Build-time only:
// these allocate.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <vector>

#include "classifier/classifier.h"

namespace nfb {

using Ranges = std::vector<Range>;

/// Runs of set values of a value set over [0, n): in_set(v) says whether v is in.
template <class InSet>
Ranges runs_of(uint32_t n, InSet&& in_set) {
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

/// [lo, hi] within [0, max], or its complement when `invert` (lo > hi is
/// the empty range).
inline Ranges range_or_complement(uint32_t lo, uint32_t hi, uint32_t max, bool invert) {
  if (lo > hi) return invert ? Ranges{Range{0, max}} : Ranges{};
  if (!invert) return {Range{lo, hi}};
  Ranges out;
  if (lo > 0) out.push_back(Range{0, lo - 1});
  if (hi < max) out.push_back(Range{hi + 1, max});
  return out;
}

inline bool is_prefix_mask(uint32_t mask) noexcept {
  return mask == 0 || std::countl_one(mask) + std::countr_zero(mask) == 32;
}

/// The addresses (addr & mask) == addr & mask covers, or the complement.
inline Ranges addr_ranges(uint32_t addr, uint32_t mask, bool invert) {
  return range_or_complement(addr & mask, (addr & mask) | ~mask, 0xffffffffU, invert);
}

/// The intersection of two sorted lists of disjoint ranges.
inline Ranges intersect(const Ranges& a, const Ranges& b) {
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
inline Ranges union_or_complement(Ranges ranges, uint32_t max, bool invert) {
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

/// The bits of `value` under `mask`, packed to the low end (lowest mask bit
/// first): how a masked dimension (mark, connmark) stores (value & mask).
inline uint32_t compress_bits(uint32_t value, uint32_t mask) noexcept {
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

/// One alternative of a rule's match set: a cross product of ranges per
/// dimension, every dimension whole at first.
struct Alt {
  std::array<Ranges, kDims> dims;

  Alt() {
    for (unsigned d = 0; d < kDims; ++d) dims[d] = {Range{0, field_max(static_cast<Dim>(d))}};
  }
  void restrict(Dim d, const Ranges& r) { dims[d] = intersect(dims[d], r); }
  /// Boxes this alternative expands into (0 when a dimension is empty).
  size_t product() const {
    size_t p = 1;
    for (const Ranges& r : dims) p *= r.size();
    return p;
  }
};

/// A rule's match set: the union of its alternatives.
using Alts = std::vector<Alt>;

inline void restrict_all(Alts& alts, Dim d, const Ranges& r) {
  for (Alt& a : alts) a.restrict(d, r);
}

/// A masked compare (value & mask) == want (!= when invert) on a dimension
/// keyed by compress_bits(value, chain_mask). False (nothing restricted)
/// when `mask` is not the dimension's mask: the compare does not fit.
inline bool restrict_masked(Alts& alts, Dim d, uint32_t want, uint32_t mask, bool invert, uint32_t chain_mask) {
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

}  // namespace nfb
