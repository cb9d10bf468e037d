// Random rule sets for the classifier equivalence tests (dtree, tuple, acl):
// boxes over any set of dimensions, with the shapes real rule sets have --
// prefixes from a small pool of networks (so boxes overlap), ranges that are
// no prefix, single ports and well-known ports, exact small values, masked
// flag sets -- plus several boxes a position, residual flags, positions
// without boxes and empty boxes; keys drawn mostly inside boxes, at and just
// outside their edges. Fixed seeds: a failing case is reproducible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "classifier/classifier.h"

namespace nfb {

inline constexpr uint32_t kAllDims = (1U << kDims) - 1U;
inline constexpr uint32_t kFiveTuple = kClassbenchDims;
/// The dimensions an iptables chain of a Docker host mostly uses.
inline constexpr uint32_t kChainDims = kFiveTuple | (1U << kDimInIface) | (1U << kDimOutIface) |
                                       (1U << kDimCtState) | (1U << kDimCtOrigDst) |
                                       (1U << kDimCtOrigDstPort) | (1U << kDimMark);

struct RandomRules {
  std::mt19937_64 rng;
  std::vector<uint32_t> nets;  // address pool, so boxes overlap
  bool empty_boxes = true;     // now and then a box with an empty range (for classifiers that take them)

  explicit RandomRules(uint64_t seed) : rng(seed) {
    for (int i = 0; i < 12; ++i) nets.push_back(static_cast<uint32_t>(rng()));
  }
  uint32_t below(uint64_t n) { return static_cast<uint32_t>(rng() % n); }
  bool chance(unsigned percent) { return below(100) < percent; }

  Range address() {
    const unsigned kind = below(100);
    if (kind < 20) return Range{0, 0xffffffffU};
    if (kind < 30) {  // a range that is no prefix (-m iprange)
      const uint32_t lo = nets[below(nets.size())] + below(5000);
      return Range{lo, lo + below(1U << below(20))};
    }
    static constexpr unsigned kLens[] = {8, 16, 20, 24, 28, 32, 32};
    const unsigned len = kind < 80 ? kLens[below(7)] : below(33);
    uint32_t base = nets[below(nets.size())];
    const unsigned keep = std::min(len + below(8), 32U);  // vary the bits below a slightly longer prefix
    if (chance(50) && keep < 32) base ^= static_cast<uint32_t>(rng()) & (0xffffffffU >> keep);
    const uint32_t mask = len == 0 ? 0 : 0xffffffffU << (32 - len);
    return Range{base & mask, (base & mask) | ~mask};
  }
  Range port() {
    static constexpr uint32_t kPorts[] = {22, 53, 80, 123, 443, 1024, 8080, 65535, 0};
    const unsigned kind = below(100);
    if (kind < 35) return Range{0, 0xffff};
    if (kind < 65) {
      const uint32_t p = chance(70) ? kPorts[below(9)] : below(65536);
      return Range{p, p};
    }
    if (kind < 80) return Range{1024, 65535};
    const uint32_t a = below(65536);
    const uint32_t b = below(65536);
    return Range{std::min(a, b), std::max(a, b)};
  }
  Range proto() {
    static constexpr uint32_t kProtos[] = {6, 17, 1, 47};
    if (chance(40)) return Range{0, 255};
    const uint32_t p = kProtos[below(4)];
    return Range{p, p};
  }
  Range iface() {
    const unsigned kind = below(100);
    if (kind < 60) return Range{0, 0xffff};
    if (kind < 90) {
      const uint32_t i = below(8);
      return Range{i, i};
    }
    const uint32_t a = below(8);
    return Range{a, a + below(4)};
  }
  /// An 8-bit dimension holding a small number (ct state, addrtype,
  /// pkttype) or a flag byte (tcp flags): exact values, short runs, high-bit
  /// prefixes.
  Range small(unsigned values) {
    const unsigned kind = below(100);
    if (kind < 50) return Range{0, 255};
    if (kind < 80) {
      const uint32_t v = below(values);
      return Range{v, v};
    }
    if (kind < 90) {
      const uint32_t v = below(values);
      return Range{v, std::min<uint32_t>(v + below(4), 255)};
    }
    const unsigned len = 1 + below(8);  // a flag prefix
    const uint32_t base = below(256) & (0xffU << (8 - len)) & 0xffU;
    return Range{base, base | (0xffU >> len)};
  }
  /// A 16-bit dimension that is no port (length, icmp type/code).
  Range word() {
    const unsigned kind = below(100);
    if (kind < 50) return Range{0, 0xffff};
    if (kind < 75) {
      const uint32_t t = below(20);
      return Range{t << 8, (t << 8) | (chance(50) ? 0xffU : below(16))};
    }
    const uint32_t a = below(1600);
    return Range{a, a + below(1600)};
  }

  Range dim(Dim d) {
    switch (d) {
      case kDimSrcPort:
      case kDimDstPort:
      case kDimCtOrigSrcPort:
      case kDimCtOrigDstPort:
      case kDimCtReplSrcPort:
      case kDimCtReplDstPort:
        return port();
      case kDimProto:
      case kDimCtProto:
        return proto();
      case kDimInIface:
      case kDimOutIface:
        return iface();
      case kDimCtState:
        return small(6);
      case kDimLength:
      case kDimIcmp:
        return word();
      case kDimTcpFlags:
        return small(256);
      case kDimCtDir:
        return small(2);
      case kDimCtExpire: {
        const uint32_t a = below(500000);
        return Range{a, a + below(500000)};
      }
      case kDimPkttype:
        return small(4);
      case kDimString:
        return small(2);
      case kDimSrcAddrtype:
      case kDimDstAddrtype:
        return small(12);
      default:
        return address();  // the 32-bit ones: addresses, marks
    }
  }

  /// `rules` positions, some with several boxes, some residual, a few empty
  /// boxes; each box restricts dimensions of `dims` (bit mask): every one
  /// of the first eight, and each later one with a one-in-three chance (as
  /// chains use them: rarely many at once).
  RuleBoxes make(uint32_t rules, uint32_t dims) {
    RuleBoxes out;
    out.rules = rules;
    for (uint32_t p = 0; p < rules; ++p) {
      if (chance(3)) continue;  // a position without boxes
      const unsigned pieces = chance(25) ? 2 + below(3) : 1;
      const bool residual = chance(10);
      for (unsigned piece = 0; piece < pieces; ++piece) {
        Box b = Box::any(p);
        b.residual = residual;
        for (unsigned d = 0; d < kDims; ++d) {
          if ((dims & (1U << d)) == 0) continue;
          if (d >= kDimCtProto && !chance(33)) continue;
          b.r[d] = dim(static_cast<Dim>(d));
          b.r[d].hi = std::min(b.r[d].hi, field_max(static_cast<Dim>(d)));
        }
        if (empty_boxes && chance(1)) b.r[below(kDims)] = Range{5, 4};  // empty: matches nothing
        out.boxes.push_back(b);
      }
    }
    return out;
  }

  uint32_t in_range(const Range& r) {
    if (r.lo > r.hi) return r.lo;
    const uint64_t width = uint64_t{r.hi} - r.lo + 1;
    const unsigned kind = below(100);
    if (kind < 10) return r.lo;  // endpoints and just outside them
    if (kind < 20) return r.hi;
    if (kind < 23 && r.lo > 0) return r.lo - 1;
    if (kind < 26 && r.hi < 0xffffffffU) return r.hi + 1;
    return r.lo + static_cast<uint32_t>(rng() % width);
  }

  /// Keys: mostly inside a random box, some anywhere (within field widths).
  std::vector<ClassifierKey> keys(const RuleBoxes& rb, size_t n) {
    std::vector<ClassifierKey> out(n);
    for (ClassifierKey& k : out) {
      const bool inside = !rb.boxes.empty() && chance(80);
      const Box& b = inside ? rb.boxes[below(rb.boxes.size())] : Box{};
      for (unsigned d = 0; d < kDims; ++d) {
        const auto dim = static_cast<Dim>(d);
        if (inside) {
          k.v[d] = std::min(in_range(b.r[d]), field_max(dim));
        } else if (chance(50)) {
          k.v[d] = static_cast<uint32_t>(rng()) & field_max(dim);
        } else {
          k.v[d] = chance(50) ? 0 : field_max(dim);
        }
      }
      if (!inside && chance(50)) k.v[kDimSrcIp] = nets[below(nets.size())] + below(300);
    }
    return out;
  }

  /// Start positions: half 0, the rest anywhere up to a little past the end.
  std::vector<uint32_t> starts(size_t n, uint32_t rules) {
    std::vector<uint32_t> out(n);
    for (uint32_t& s : out) s = chance(50) ? 0 : below(uint64_t{rules} + 3);
    return out;
  }
};

}  // namespace nfb
