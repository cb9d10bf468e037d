#include "classifier/tuple_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nfb {
namespace {

// The packed key: all eight fields in 144 bits, as three 64-bit words, so a
// tuple's masked key is three ANDs and its hash three multiplies.
//   w0 = src_ip << 32 | dst_ip
//   w1 = src_port << 48 | dst_port << 32 | in_iface << 16 | proto << 8 | ct_state
//   w2 = out_iface
// The other dimensions (conntrack tuples, marks, ...) are not hashed: a box
// that restricts them carries them as an extra range list (see Rec).
using Packed = std::array<uint64_t, 3>;

constexpr unsigned kHashDims = TupleSpaceClassifier::kHashDims;
constexpr unsigned kShift[kHashDims] = {32, 0, 48, 32, 8, 16, 0, 0};
constexpr unsigned kWord[kHashDims] = {0, 0, 1, 1, 1, 1, 2, 1};
static_assert(kDimCtState + 1 == kHashDims, "the hashed dimensions are the first eight");

constexpr uint32_t kLastInBucket = 0x80000000U;
constexpr uint32_t kHasExtra = 0x40000000U;
constexpr uint32_t kPosMask = 0x3fffffffU;
constexpr uint32_t kNoRec = 0xffffffffU;
constexpr uint32_t kMaxRules = kPosMask;  // positions must leave the two top bits free
constexpr unsigned kGroupSlots = 8;
constexpr unsigned kMaxSeedTries = 64;

inline Packed pack(const std::array<uint32_t, kDims>& v) noexcept {
  Packed w{};
  for (unsigned d = 0; d < kHashDims; ++d) w[kWord[d]] |= static_cast<uint64_t>(v[d]) << kShift[d];
  return w;
}

inline uint64_t hash_words(uint64_t a, uint64_t b, uint64_t c, uint64_t seed) noexcept {
  uint64_t h = (a ^ seed) * 0x9E3779B97F4A7C15ULL;
  h ^= std::rotl(b * 0xC2B2AE3D27D4EB4FULL, 31);
  h ^= std::rotl(c * 0x165667B19E3779F9ULL, 17);
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 29;
  return h;
}

// Upper hash bits as the tag; the low bit forced so that 0 means "empty".
inline uint32_t tag_of(uint64_t h) noexcept { return static_cast<uint32_t>(h >> 32) | 1U; }

// Bit k set when slot k of `grp` holds `tag`.
inline unsigned tag_matches(const TupleSpaceClassifier::Group& grp, uint32_t tag) noexcept {
#if defined(__SSE2__)
  const __m128i want = _mm_set1_epi32(static_cast<int>(tag));
  const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(grp.tag.data())), want);
  const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(grp.tag.data() + 4)), want);
  return static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(lo))) |
         (static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(hi))) << 4);
#else
  unsigned match = 0;
  for (unsigned k = 0; k < kGroupSlots; ++k) match |= static_cast<unsigned>(grp.tag[k] == tag) << k;
  return match;
#endif
}

// The record index of the first slot on the probe path from group g whose tag
// equals `tag`, or kNoRec at the first group that is not full. A group's full
// slots are a prefix of it (no deletion), so its last slot says whether it is
// full, and a group that is not ends the path.
inline uint32_t find_slot(const TupleSpaceClassifier::Group* base, uint32_t group_mask, uint32_t g,
                          uint32_t tag) noexcept {
  for (;;) {
    const TupleSpaceClassifier::Group& grp = base[g];
    const unsigned match = tag_matches(grp, tag);
    if (match != 0) return grp.rec[static_cast<unsigned>(std::countr_zero(match))];
    if (grp.tag[kGroupSlots - 1] == 0) return kNoRec;
    g = (g + 1) & group_mask;
  }
}

inline bool rec_contains(const TupleSpaceClassifier::Rec& r, const std::array<uint32_t, kDims>& v) noexcept {
  // v - lo wraps above the width when v < lo: one compare per dimension.
  bool in = (v[kDimSrcIp] - r.lo32[0] <= r.w32[0]);
  in &= (v[kDimDstIp] - r.lo32[1] <= r.w32[1]);
  in &= (v[kDimSrcPort] - r.lo16[0] <= r.w16[0]);
  in &= (v[kDimDstPort] - r.lo16[1] <= r.w16[1]);
  in &= (v[kDimInIface] - r.lo16[2] <= r.w16[2]);
  in &= (v[kDimOutIface] - r.lo16[3] <= r.w16[3]);
  in &= (v[kDimProto] - r.lo8[0] <= r.w8[0]);
  in &= (v[kDimCtState] - r.lo8[1] <= r.w8[1]);
  return in;
}

// Key values wider than their field match no box (every box ends at the
// field's maximum), and would alias once packed: such keys are not looked up.
inline bool key_in_fields(const std::array<uint32_t, kDims>& v) noexcept {
  const uint32_t wide16 = v[kDimSrcPort] | v[kDimDstPort] | v[kDimInIface] | v[kDimOutIface];
  const uint32_t wide8 = v[kDimProto] | v[kDimCtState];
  return ((wide16 >> 16) | (wide8 >> 8)) == 0;
}

using Lengths = std::array<uint8_t, kHashDims>;

uint64_t lengths_id(const Lengths& l) noexcept {
  uint64_t id = 0;
  for (unsigned d = 0; d < kHashDims; ++d) id |= static_cast<uint64_t>(l[d]) << (8 * d);
  return id;
}

Packed masks_of(const Lengths& l) noexcept {
  Packed m{};
  for (unsigned d = 0; d < kHashDims; ++d) {
    const unsigned bits = field_bits(static_cast<Dim>(d));
    const uint64_t field = l[d] == 0 ? 0 : ((uint64_t{1} << l[d]) - 1) << (bits - l[d]);
    m[kWord[d]] |= field << kShift[d];
  }
  return m;
}

// The longest prefix that holds lo..hi: the leading bits lo and hi share.
Lengths cover_of(const Box& b) noexcept {
  Lengths c{};
  for (unsigned d = 0; d < kHashDims; ++d) {
    const unsigned bits = field_bits(static_cast<Dim>(d));
    const auto differing = static_cast<unsigned>(std::bit_width(b.r[d].lo ^ b.r[d].hi));
    c[d] = static_cast<uint8_t>(bits - differing);
  }
  return c;
}

// The relaxation of cover `c` at `level` (0 = most relaxed): 32-bit fields
// rounded down to a multiple of step >> level, narrower ones exact-or-any at
// level 0 and their cover after.
Lengths relax(const Lengths& c, uint32_t step, unsigned level) noexcept {
  Lengths t{};
  const uint32_t s = std::max<uint32_t>(1, step >> level);
  for (unsigned d = 0; d < kHashDims; ++d) {
    const unsigned bits = field_bits(static_cast<Dim>(d));
    if (bits == 32) {
      t[d] = static_cast<uint8_t>(c[d] - c[d] % s);
    } else {
      t[d] = level == 0 && c[d] != bits ? 0 : c[d];
    }
  }
  return t;
}

bool fits(const Lengths& t, const Lengths& c) noexcept {
  for (unsigned d = 0; d < kHashDims; ++d) {
    if (t[d] > c[d]) return false;
  }
  return true;
}

struct PackedHash {
  size_t operator()(const Packed& p) const noexcept { return hash_words(p[0], p[1], p[2], 0x5bd1e995U); }
};

// A tuple while the build fills it.
struct BuildTuple {
  Lengths len{};
  Packed mask{};
  std::unordered_map<Packed, uint32_t, PackedHash> index;  // masked key -> bucket
  std::vector<Packed> keys;                                // per bucket: its masked key
  std::vector<std::vector<uint32_t>> buckets;              // per bucket: box indices, by position
  uint32_t boxes = 0;
  uint32_t min_pos = 0;
  uint32_t max_pos = 0;
};

void check_rules(const RuleBoxes& rules, const TupleSpaceOptions& options) {
  if (options.collision_limit < 1) throw std::invalid_argument("tuple: collision_limit must be at least 1");
  if (options.address_step < 1 || options.address_step > 32) {
    throw std::invalid_argument(fmt::format("tuple: address_step {} is not in 1..32", options.address_step));
  }
  if (options.max_protocol_classes < 1 || options.max_protocol_classes > 16) {
    throw std::invalid_argument(
        fmt::format("tuple: max_protocol_classes {} is not in 1..16", options.max_protocol_classes));
  }
  if (options.placement_passes < 1 || options.placement_passes > 8) {
    throw std::invalid_argument(fmt::format("tuple: placement_passes {} is not in 1..8", options.placement_passes));
  }
  if (options.max_copies < 1) throw std::invalid_argument("tuple: max_copies must be at least 1");
  if (rules.rules > kMaxRules) {
    throw std::invalid_argument(fmt::format("tuple: {} rules, at most {} are supported", rules.rules, kMaxRules));
  }
  if (rules.boxes.size() >= kNoRec) throw std::invalid_argument("tuple: too many boxes");
  for (size_t i = 0; i < rules.boxes.size(); ++i) {
    const Box& b = rules.boxes[i];
    if (i > 0 && b.position < rules.boxes[i - 1].position) {
      throw std::invalid_argument(fmt::format("tuple: box {} (position {}) follows position {}: boxes must be "
                                              "sorted by position",
                                              i, b.position, rules.boxes[i - 1].position));
    }
    if (b.position >= rules.rules) {
      throw std::invalid_argument(
          fmt::format("tuple: box {} has position {}, beyond the rule count {}", i, b.position, rules.rules));
    }
    for (unsigned d = 0; d < kDims; ++d) {
      const auto dim = static_cast<Dim>(d);
      const Range& r = b.r[d];
      if (r.lo > r.hi) {
        throw std::invalid_argument(
            fmt::format("tuple: box {} (position {}): {} range {}..{} is empty", i, b.position, dim_name(dim), r.lo,
                        r.hi));
      }
      if (r.hi > field_max(dim)) {
        throw std::invalid_argument(fmt::format("tuple: box {} (position {}): {} range {}..{} exceeds the field "
                                                "maximum {}",
                                                i, b.position, dim_name(dim), r.lo, r.hi, field_max(dim)));
      }
    }
  }
}

TupleSpaceClassifier::Rec to_rec(const Box& b) noexcept {
  TupleSpaceClassifier::Rec r{};
  r.pos = b.position;
  const auto w = [&](Dim d) { return b.r[d].hi - b.r[d].lo; };
  r.lo32 = {b.r[kDimSrcIp].lo, b.r[kDimDstIp].lo};
  r.w32 = {w(kDimSrcIp), w(kDimDstIp)};
  r.lo16 = {static_cast<uint16_t>(b.r[kDimSrcPort].lo), static_cast<uint16_t>(b.r[kDimDstPort].lo),
            static_cast<uint16_t>(b.r[kDimInIface].lo), static_cast<uint16_t>(b.r[kDimOutIface].lo)};
  r.w16 = {static_cast<uint16_t>(w(kDimSrcPort)), static_cast<uint16_t>(w(kDimDstPort)),
           static_cast<uint16_t>(w(kDimInIface)), static_cast<uint16_t>(w(kDimOutIface))};
  r.lo8 = {static_cast<uint8_t>(b.r[kDimProto].lo), static_cast<uint8_t>(b.r[kDimCtState].lo)};
  r.w8 = {static_cast<uint8_t>(w(kDimProto)), static_cast<uint8_t>(w(kDimCtState))};
  return r;
}

// Places `members` (indices into `boxes`, in position order) into tuples, as
// the header describes, trying tuples with the lengths `first_tries` (a
// previous pass's, most used first) before any it creates. In a one-protocol
// class the protocol is left out of the tuples.
std::vector<BuildTuple> place(const std::vector<Box>& boxes, const std::vector<uint32_t>& members,
                              const TupleSpaceOptions& options, bool one_protocol,
                              const std::vector<Lengths>& first_tries) {
  std::vector<BuildTuple> build;
  std::unordered_map<uint64_t, uint32_t> by_lengths;  // lengths_id -> tuple
  for (const Lengths& len : first_tries) {
    BuildTuple& t = build.emplace_back();
    t.len = len;
    t.mask = masks_of(len);
    by_lengths.emplace(lengths_id(len), static_cast<uint32_t>(build.size() - 1));
  }
  const auto add_to = [&](BuildTuple& t, const Packed& key, uint32_t box, uint32_t bucket) {
    if (bucket == kNoRec) {
      bucket = static_cast<uint32_t>(t.buckets.size());
      t.index.emplace(key, bucket);
      t.keys.push_back(key);
      t.buckets.emplace_back();
    }
    if (t.boxes++ == 0) t.min_pos = boxes[box].position;
    t.buckets[bucket].push_back(box);
    t.max_pos = boxes[box].position;
  };
  const auto masked = [](const Packed& w, const Packed& m) { return Packed{w[0] & m[0], w[1] & m[1], w[2] & m[2]}; };

  for (uint32_t bi : members) {
    const Box& box = boxes[bi];
    Lengths cover = cover_of(box);
    // All keys of a one-protocol class have that protocol: hashing it would
    // only split tuples (the box check still tests it).
    if (one_protocol) cover[kDimProto] = 0;
    std::array<uint32_t, kDims> lo{};
    for (unsigned d = 0; d < kHashDims; ++d) lo[d] = box.r[d].lo;
    const Packed w = pack(lo);

    bool placed = false;
    for (BuildTuple& t : build) {
      if (!fits(t.len, cover)) continue;
      const Packed key = masked(w, t.mask);
      const auto it = t.index.find(key);
      if (it == t.index.end()) {
        add_to(t, key, bi, kNoRec);
      } else if (t.buckets[it->second].size() < options.collision_limit) {
        add_to(t, key, bi, it->second);
      } else {
        continue;
      }
      placed = true;
      break;
    }
    if (placed) continue;

    // Every fitting tuple is full for this box: make a new one, as relaxed as
    // the existing tuples allow.
    for (unsigned level = 0;; ++level) {
      const Lengths len = relax(cover, options.address_step, level);
      const uint64_t id = lengths_id(len);
      const auto it = by_lengths.find(id);
      if (it == by_lengths.end()) {
        BuildTuple& t = build.emplace_back();
        t.len = len;
        t.mask = masks_of(len);
        by_lengths.emplace(id, static_cast<uint32_t>(build.size() - 1));
        add_to(t, masked(w, t.mask), bi, kNoRec);
        break;
      }
      if (len == cover) {
        // The exact cover's bucket is full of boxes with this very cover: no
        // tuple can tell them apart, so the bucket grows past the limit.
        BuildTuple& t = build[it->second];
        const Packed key = masked(w, t.mask);
        const auto bucket = t.index.find(key);
        add_to(t, key, bi, bucket == t.index.end() ? kNoRec : bucket->second);
        break;
      }
    }
  }
  std::erase_if(build, [](const BuildTuple& t) { return t.boxes == 0; });
  // Visiting order: best position first.
  std::stable_sort(build.begin(), build.end(),
                   [](const BuildTuple& a, const BuildTuple& b) { return a.min_pos < b.min_pos; });
  return build;
}

// The protocol classes: the most common exact protocols each get a class, the
// rest of the protocol values share the last one. A class holds every box
// whose protocol range meets its values, so boxes that name no single
// protocol are copied into several; classes are added while the copies stay
// within max_copies x boxes.
struct ProtocolClasses {
  std::array<uint8_t, 256> class_of{};
  std::vector<std::vector<uint32_t>> members;  // per class: box indices, by position
};

ProtocolClasses protocol_classes(const std::vector<Box>& boxes, const TupleSpaceOptions& options) {
  std::array<uint32_t, 256> exact{};
  for (const Box& b : boxes) {
    if (b.r[kDimProto].lo == b.r[kDimProto].hi) ++exact[b.r[kDimProto].lo];
  }
  std::vector<uint32_t> values;
  for (uint32_t v = 0; v < 256; ++v) {
    if (exact[v] != 0) values.push_back(v);
  }
  std::stable_sort(values.begin(), values.end(), [&](uint32_t a, uint32_t b) { return exact[a] > exact[b]; });

  // Copies a class set makes: per box, the chosen values its range holds,
  // plus one for the rest class if it holds any other value. Protocol
  // ranges are counted once per distinct range.
  std::vector<std::pair<Range, uint32_t>> ranges;  // distinct protocol range, boxes with it
  {
    std::vector<Range> all;
    all.reserve(boxes.size());
    for (const Box& b : boxes) all.push_back(b.r[kDimProto]);
    std::sort(all.begin(), all.end(), [](const Range& a, const Range& b) { return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi; });
    for (const Range& r : all) {
      if (ranges.empty() || !(ranges.back().first == r)) ranges.emplace_back(r, 0);
      ++ranges.back().second;
    }
  }
  std::array<bool, 256> chosen{};
  const auto copies = [&] {
    std::array<uint32_t, 257> below{};  // below[v]: chosen values < v
    for (uint32_t v = 0; v < 256; ++v) below[v + 1] = below[v] + (chosen[v] ? 1U : 0U);
    size_t n = 0;
    for (const auto& [r, count] : ranges) {
      const uint32_t in = below[r.hi + 1] - below[r.lo];
      n += static_cast<size_t>(count) * (in + (in < r.hi - r.lo + 1 ? 1U : 0U));
    }
    return n;
  };
  std::vector<uint32_t> picked;
  const size_t budget = static_cast<size_t>(options.max_copies) * boxes.size();
  for (uint32_t v : values) {
    if (picked.size() + 1 >= options.max_protocol_classes) break;
    chosen[v] = true;
    if (copies() > budget) {
      chosen[v] = false;
      break;
    }
    picked.push_back(v);
  }

  ProtocolClasses pc;
  const auto rest = static_cast<uint8_t>(picked.size());
  pc.class_of.fill(rest);
  for (size_t c = 0; c < picked.size(); ++c) pc.class_of[picked[c]] = static_cast<uint8_t>(c);
  pc.members.resize(picked.size() + 1);
  std::array<uint32_t, 257> below{};  // below[v]: values < v in exact classes
  for (uint32_t v = 0; v < 256; ++v) below[v + 1] = below[v] + (pc.class_of[v] != rest ? 1U : 0U);
  for (uint32_t bi = 0; bi < boxes.size(); ++bi) {
    const Range& r = boxes[bi].r[kDimProto];
    for (size_t c = 0; c < picked.size(); ++c) {
      if (r.contains(picked[c])) pc.members[c].push_back(bi);
    }
    if (below[r.hi + 1] - below[r.lo] < r.hi - r.lo + 1) pc.members[rest].push_back(bi);
  }
  return pc;
}

}  // namespace

TupleSpaceClassifier::TupleSpaceClassifier(const RuleBoxes& rules, TupleSpaceOptions options)
    : positions_(rules.rules) {
  check_rules(rules, options);
  const std::vector<Box>& boxes = rules.boxes;
  wide_ = (rules.used_dims() & (1U << kDimOutIface)) != 0;

  // Extra ranges: per box restricting a dimension beyond the hashed ones,
  // its list in extras_ (kNoRec: none).
  std::vector<uint32_t> extra_of(boxes.size(), kNoRec);
  for (size_t bi = 0; bi < boxes.size(); ++bi) {
    for (unsigned d = kHashDims; d < kDims; ++d) {
      const auto dim = static_cast<Dim>(d);
      const Range& r = boxes[bi].r[d];
      if (r.lo == 0 && r.hi == field_max(dim)) continue;
      if (extra_of[bi] == kNoRec) {
        extra_of[bi] = static_cast<uint32_t>(extras_.size());
      } else {
        extras_.back().last = 0;
      }
      extras_.push_back(Extra{r.lo, r.hi - r.lo, static_cast<uint8_t>(d), 1});
    }
  }

  const ProtocolClasses pc = protocol_classes(boxes, options);
  class_of_ = pc.class_of;
  std::vector<std::vector<BuildTuple>> classes;
  size_t total_groups = 0;
  size_t total_recs = 0;
  for (size_t c = 0; c < pc.members.size(); ++c) {
    const std::vector<uint32_t>& members = pc.members[c];
    const bool one_protocol = c + 1 < pc.members.size();
    // Pass 1 finds a tuple set; pass 2 places every box again trying the
    // most used tuples first, so boxes gather in fewer tuples (those left
    // empty go).
    std::vector<BuildTuple> placed = place(boxes, members, options, one_protocol, {});
    for (uint32_t pass = 1; pass < options.placement_passes; ++pass) {
      std::stable_sort(placed.begin(), placed.end(),
                       [](const BuildTuple& a, const BuildTuple& b) { return a.boxes > b.boxes; });
      std::vector<Lengths> tries;
      for (const BuildTuple& t : placed) tries.push_back(t.len);
      placed = place(boxes, members, options, one_protocol, tries);
    }
    classes.push_back(std::move(placed));
    total_recs += members.size();
    for (const BuildTuple& t : classes.back()) {
      // At most half the slots full: groups >= buckets / 4, a power of two.
      total_groups += std::bit_ceil(std::max<size_t>(1, (t.buckets.size() + 3) / 4));
    }
  }
  if (total_groups >= kNoRec || total_recs >= kNoRec) throw std::invalid_argument("tuple: tables too large");
  groups_.assign(total_groups, Group{});
  recs_.reserve(total_recs);

  uint32_t group_base = 0;
  class_begin_.push_back(0);
  for (std::vector<BuildTuple>& build : classes) {
    for (BuildTuple& t : build) {
      const auto ti = static_cast<uint32_t>(tuples_.size());
      TupleDesc& desc = tuples_.emplace_back();
      desc.mask = t.mask;
      desc.len = t.len;
      desc.min_pos = t.min_pos;
      desc.max_pos = t.max_pos;
      desc.group_base = group_base;
      const auto ngroups = static_cast<uint32_t>(std::bit_ceil(std::max<size_t>(1, (t.buckets.size() + 3) / 4)));
      desc.group_mask = ngroups - 1;
      group_base += ngroups;

      std::vector<uint32_t> first_rec(t.buckets.size());
      for (size_t b = 0; b < t.buckets.size(); ++b) {
        first_rec[b] = static_cast<uint32_t>(recs_.size());
        for (uint32_t box : t.buckets[b]) {
          recs_.push_back(to_rec(boxes[box]));
          if (const uint32_t x = extra_of[box]; x != kNoRec) {
            recs_.back().pos |= kHasExtra;
            rec_extra_.resize(recs_.size(), kNoRec);
            rec_extra_.back() = x;
          }
        }
        recs_.back().pos |= kLastInBucket;
        stats_.longest_bucket = std::max(stats_.longest_bucket, static_cast<uint32_t>(t.buckets[b].size()));
      }

      // Fill the table; re-seed until every bucket is the first tag match on
      // its own probe path.
      Group* table = groups_.data() + desc.group_base;
      bool ok = false;
      for (unsigned attempt = 0; attempt < kMaxSeedTries && !ok; ++attempt) {
        desc.seed = 0x2545F4914F6CDD1DULL * (uint64_t{ti} * kMaxSeedTries + attempt + 1);
        std::fill(table, table + ngroups, Group{});
        for (size_t b = 0; b < t.buckets.size(); ++b) {
          const Packed& k = t.keys[b];
          const uint64_t h = hash_words(k[0], k[1], k[2], desc.seed);
          auto g = static_cast<uint32_t>(h) & desc.group_mask;
          for (;;) {
            Group& grp = table[g];
            const auto slot = std::find(grp.tag.begin(), grp.tag.end(), 0U);
            if (slot != grp.tag.end()) {
              const auto s = static_cast<size_t>(slot - grp.tag.begin());
              grp.tag[s] = tag_of(h);
              grp.rec[s] = first_rec[b];
              break;
            }
            g = (g + 1) & desc.group_mask;
          }
        }
        ok = true;
        for (size_t b = 0; b < t.buckets.size() && ok; ++b) {
          const Packed& k = t.keys[b];
          const uint64_t h = hash_words(k[0], k[1], k[2], desc.seed);
          ok = find_slot(table, desc.group_mask, static_cast<uint32_t>(h) & desc.group_mask, tag_of(h)) ==
               first_rec[b];
        }
        if (!ok) ++stats_.reseeds;
      }
      if (!ok) throw std::invalid_argument("tuple: no hash seed separates a tuple's masked keys");
      stats_.buckets += static_cast<uint32_t>(t.buckets.size());
    }
    class_begin_.push_back(static_cast<uint32_t>(tuples_.size()));
  }
  stats_.tuples = static_cast<uint32_t>(tuples_.size());
  stats_.groups = static_cast<uint32_t>(groups_.size());
  stats_.classes = static_cast<uint32_t>(classes.size());
  stats_.box_copies = static_cast<uint32_t>(recs_.size());
}

TupleSpaceClassifier::TupleInfo TupleSpaceClassifier::tuple_info(size_t i) const noexcept {
  const auto cls = static_cast<uint32_t>(std::upper_bound(class_begin_.begin(), class_begin_.end(), i) -
                                         class_begin_.begin() - 1);
  TupleInfo info{{}, tuples_[i].min_pos, tuples_[i].max_pos, cls};
  std::copy(tuples_[i].len.begin(), tuples_[i].len.end(), info.lengths.begin());
  return info;
}

size_t TupleSpaceClassifier::memory_bytes() const noexcept {
  return tuples_.capacity() * sizeof(TupleDesc) + groups_.capacity() * sizeof(Group) +
         recs_.capacity() * sizeof(Rec) + class_begin_.capacity() * sizeof(uint32_t) + sizeof(class_of_) +
         rec_extra_.capacity() * sizeof(uint32_t) + extras_.capacity() * sizeof(Extra);
}

bool TupleSpaceClassifier::extra_contains(uint32_t first, const std::array<uint32_t, kDims>& v) const noexcept {
  for (const Extra* x = extras_.data() + first;; ++x) {
    if (v[x->dim] - x->lo > x->width) return false;
    if (x->last != 0) return true;
  }
}

void TupleSpaceClassifier::lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                                  std::span<uint32_t> result) const noexcept {
  for (size_t i = 0; i < keys.size(); i += kBurst) {
    const auto n = static_cast<unsigned>(std::min<size_t>(kBurst, keys.size() - i));
    const uint32_t* from = start.empty() ? nullptr : start.data() + i;
    if (wide_) {
      lookup_chunk<true>(keys.data() + i, from, result.data() + i, n);
    } else {
      lookup_chunk<false>(keys.data() + i, from, result.data() + i, n);
    }
  }
}

template <bool kWide>
void TupleSpaceClassifier::lookup_chunk(const ClassifierKey* keys, const uint32_t* start, uint32_t* result,
                                        unsigned n) const noexcept {
  std::array<Packed, kBurst> w;
  std::array<uint32_t, kBurst> best;
  std::array<uint32_t, kBurst> from;
  std::array<uint8_t, kBurst> live;   // keys that a later tuple may still improve
  std::array<uint8_t, kBurst> probe;  // keys that probe the current tuple
  std::array<uint32_t, kBurst> group;
  std::array<uint32_t, kBurst> tag;
  std::array<uint32_t, kBurst> rec;

  // Keys in play, grouped by protocol class (counting sort).
  std::array<uint8_t, kBurst> cls;
  std::array<uint32_t, kMaxClasses + 1> begin{};
  for (unsigned i = 0; i < n; ++i) {
    const auto& v = keys[i].v;
    best[i] = kNoMatch;
    from[i] = start == nullptr ? 0 : start[i];
    w[i] = pack(v);
    const bool in_play = key_in_fields(v) && from[i] < positions_;
    cls[i] = in_play ? class_of_[v[kDimProto]] : kMaxClasses;
    ++begin[cls[i]];
  }
  std::array<uint8_t, kBurst> by_class;
  {
    uint32_t at = 0;
    for (unsigned c = 0; c <= kMaxClasses; ++c) {
      const uint32_t count = begin[c];
      begin[c] = at;
      at += count;
    }
    std::array<uint32_t, kMaxClasses + 1> fill = begin;
    for (unsigned i = 0; i < n; ++i) by_class[fill[cls[i]]++] = static_cast<uint8_t>(i);
  }

  const auto classes = static_cast<unsigned>(class_begin_.size() - 1);
  for (unsigned c = 0; c < classes; ++c) {
    const uint32_t first = begin[c];
    const uint32_t end = begin[c + 1];  // c < kMaxClasses; keys out of play sort last
    unsigned nlive = end - first;
    if (nlive == 0) continue;
    std::copy(by_class.begin() + first, by_class.begin() + end, live.begin());

    const TupleDesc* const tuples_end = tuples_.data() + class_begin_[c + 1];
    for (const TupleDesc* t = tuples_.data() + class_begin_[c]; t != tuples_end; ++t) {
      // Stage 1: drop keys no tuple from here on can improve (tuples are
      // sorted by best position), skip this tuple for keys whose start is past
      // all its boxes, hash the rest and prefetch their group.
      unsigned keep = 0;
      unsigned np = 0;
      const Group* table = groups_.data() + t->group_base;
      for (unsigned j = 0; j < nlive; ++j) {
        const unsigned i = live[j];
        if (best[i] <= t->min_pos) continue;
        live[keep++] = static_cast<uint8_t>(i);
        if (from[i] > t->max_pos) continue;
        const uint64_t h = hash_words(w[i][0] & t->mask[0], w[i][1] & t->mask[1],
                                      kWide ? (w[i][2] & t->mask[2]) : 0, t->seed);
        group[np] = static_cast<uint32_t>(h) & t->group_mask;
        tag[np] = tag_of(h);
        __builtin_prefetch(table + group[np]);
        probe[np++] = static_cast<uint8_t>(i);
      }
      nlive = keep;
      if (nlive == 0) break;

      // Stage 2: find the bucket, prefetch its first box.
      for (unsigned j = 0; j < np; ++j) {
        rec[j] = find_slot(table, t->group_mask, group[j], tag[j]);
        if (rec[j] != kNoRec) __builtin_prefetch(recs_.data() + rec[j]);
      }

      // Stage 3: the bucket's boxes in position order, from the key's start,
      // while they can still improve its best.
      for (unsigned j = 0; j < np; ++j) {
        if (rec[j] == kNoRec) continue;
        const unsigned i = probe[j];
        const auto& v = keys[i].v;
        for (const Rec* r = recs_.data() + rec[j];; ++r) {
          const uint32_t pos = r->pos & kPosMask;
          if (pos >= best[i]) break;
          if (pos >= from[i] && rec_contains(*r, v) &&
              ((r->pos & kHasExtra) == 0 || extra_contains(rec_extra_[static_cast<size_t>(r - recs_.data())], v))) {
            best[i] = pos;
            break;
          }
          if ((r->pos & kLastInBucket) != 0) break;
        }
      }
    }
  }
  for (unsigned i = 0; i < n; ++i) result[i] = best[i];
}

}  // namespace nfb
