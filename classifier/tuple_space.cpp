#include "classifier/tuple_space.h"
#include "classifier/registry.h"

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

// The packed key: the hashed dimensions, each in its field width at the bits
// its Slot names, in up to kMaxWords 64-bit words (words beyond the layout's
// count stay 0). A tuple's masked key is one AND per word, its hash one
// multiply per word.
constexpr unsigned kMaxWords = TupleSpaceClassifier::kMaxWords;
using Packed = std::array<uint64_t, kMaxWords>;
using Slot = TupleSpaceClassifier::Slot;

// field_bits and field_max as tables with static storage (the functions'
// local table is rebuilt on the stack at each call in the build's loops).
constexpr std::array<uint8_t, kDims> kBits = [] {
  std::array<uint8_t, kDims> b{};
  for (unsigned d = 0; d < kDims; ++d) b[d] = static_cast<uint8_t>(field_bits(static_cast<Dim>(d)));
  return b;
}();
constexpr std::array<uint32_t, kDims> kMax = [] {
  std::array<uint32_t, kDims> m{};
  for (unsigned d = 0; d < kDims; ++d) m[d] = field_max(static_cast<Dim>(d));
  return m;
}();

constexpr uint64_t kLastInBucket = 0x80000000U;
constexpr uint64_t kPosMask = 0x3fffffffU;
constexpr uint32_t kNoRec = 0xffffffffU;
constexpr uint32_t kNoExtra = 0xffffffffU;
constexpr uint32_t kMaxRules = kPosMask;  // positions leave the top bits free
constexpr unsigned kGroupSlots = 8;
constexpr unsigned kMaxSeedTries = 64;

// A tuple's hash of a packed key: its masked words, one multiply (and
// rotate) per word, mixed. Compiled per word count.
template <unsigned kWords>
[[gnu::always_inline]] inline uint64_t hash_words(const uint64_t* w, const uint64_t* mask, uint64_t seed) noexcept {
  static_assert(kWords >= 1 && kWords <= kMaxWords);
  uint64_t h = ((w[0] & mask[0]) ^ seed) * 0x9E3779B97F4A7C15ULL;
  if constexpr (kWords > 1) h ^= std::rotl((w[1] & mask[1]) * 0xC2B2AE3D27D4EB4FULL, 31);
  if constexpr (kWords > 2) h ^= std::rotl((w[2] & mask[2]) * 0x165667B19E3779F9ULL, 17);
  if constexpr (kWords > 3) h ^= std::rotl((w[3] & mask[3]) * 0x27D4EB2F165667C5ULL, 47);
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 29;
  return h;
}

// The same for a word count known only at run time (build).
inline uint64_t hash_any(unsigned words, const Packed& w, const Packed& mask, uint64_t seed) noexcept {
  switch (words) {
    case 1: return hash_words<1>(w.data(), mask.data(), seed);
    case 2: return hash_words<2>(w.data(), mask.data(), seed);
    case 3: return hash_words<3>(w.data(), mask.data(), seed);
    default: return hash_words<4>(w.data(), mask.data(), seed);
  }
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

// Whether every field of the packed key `k` lies in the record's ranges:
// per field (key - lo) mod 2^bits <= width, all fields of a word at once.
// `top` has the top bit of each field of a word. Subtracting a value whose
// field tops are clear from one whose field tops are set never borrows
// across a field, so each field's low bits compute on their own and its top
// bit is fixed up after: the difference's top is k ^ lo ^ (borrow from the
// low bits), and width >= difference is decided by the tops when they
// differ and by the low bits' compare when they are equal. Bits outside any
// field are 0 in the key, low ends and widths, and are never looked at.
template <unsigned kWords>
inline bool rec_contains(const uint64_t* rec, const uint64_t* k, const uint64_t* top) noexcept {
  uint64_t fail = 0;
  for (unsigned j = 0; j < kWords; ++j) {
    const uint64_t lo = rec[1 + j];
    const uint64_t width = rec[1 + kWords + j];
    const uint64_t h = top[j];
    // d = (k - lo) per field; the top bit of (k|h) - (lo&~h) is "k's low >= lo's low".
    const uint64_t d = (((k[j] | h) - (lo & ~h)) ^ ((k[j] ^ ~lo) & h));
    // width >= d per field, its verdict in the field's top bit.
    const uint64_t low_ge = (width | h) - (d & ~h);
    const uint64_t ge = (width & ~d) | (~(width ^ d) & low_ge);
    fail |= ~ge & h;
  }
  return fail == 0;
}

// The same for the ClassBench placement (kFivePlace, two words), field by
// field as in the key: src ip, dst ip, src port, dst port, protocol, each
// `v - lo <= width` in 32 bits (v < lo wraps above any width). The record's
// ClassBench fields that are not hashed hold 0..maximum, the key's 0.
inline bool rec_contains_five(const uint64_t* rec, uint32_t src, uint32_t dst, uint32_t sport, uint32_t dport,
                              uint32_t proto) noexcept {
  const uint64_t lo0 = rec[1];
  const uint64_t lo1 = rec[2];
  const uint64_t w0 = rec[3];
  const uint64_t w1 = rec[4];
  bool in = src - static_cast<uint32_t>(lo0) <= static_cast<uint32_t>(w0);
  in &= dst - static_cast<uint32_t>(lo0 >> 32) <= static_cast<uint32_t>(w0 >> 32);
  in &= sport - static_cast<uint16_t>(lo1) <= static_cast<uint16_t>(w1);
  in &= dport - static_cast<uint16_t>(lo1 >> 16) <= static_cast<uint16_t>(w1 >> 16);
  in &= proto - static_cast<uint8_t>(lo1 >> 32) <= static_cast<uint8_t>(w1 >> 32);
  return in;
}

// Lengths per slot (hashed dimension, in slot order); slots beyond the
// layout's stay 0.
using Lengths = std::array<uint8_t, kDims>;

struct LengthsHash {
  size_t operator()(const Lengths& l) const noexcept {
    uint64_t h = 0;
    for (uint8_t x : l) h = (h ^ x) * 0x100000001B3ULL;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// Where the ClassBench dimensions sit, as bit offsets into the packed key,
// when the hashed dimensions are among them: the widest-first packing of all
// five (word 0: src ip, dst ip; word 1: src port, dst port, protocol).
constexpr unsigned kFivePlace[kDimProto + 1] = {0, 32, 64, 80, 96};

// The build's view of the layout.
struct Layout {
  unsigned words = 1;
  bool five_tuple = false;  // the hashed dimensions are ClassBench ones, at kFivePlace
  unsigned nslots = 0;
  std::array<Slot, kDims> slots{};

  unsigned bits(unsigned s) const noexcept { return kBits[slots[s].dim]; }

  Packed pack_lo(const Box& b) const noexcept {
    Packed w{};
    for (unsigned s = 0; s < nslots; ++s) w[slots[s].word] |= uint64_t{b.r[slots[s].dim].lo} << slots[s].shift;
    return w;
  }
  Packed pack_width(const Box& b) const noexcept {
    Packed w{};
    if (five_tuple) {  // every ClassBench field, those not hashed as 0..maximum
      for (unsigned d = 0; d <= kDimProto; ++d) w[kFivePlace[d] / 64] |= uint64_t{kMax[d]} << (kFivePlace[d] % 64);
    }
    for (unsigned s = 0; s < nslots; ++s) {
      const Range& r = b.r[slots[s].dim];
      const uint64_t field = kMax[slots[s].dim];
      w[slots[s].word] = (w[slots[s].word] & ~(field << slots[s].shift)) | (uint64_t{r.hi - r.lo} << slots[s].shift);
    }
    return w;
  }
  Packed masks_of(const Lengths& l) const noexcept {
    Packed m{};
    for (unsigned s = 0; s < nslots; ++s) {
      const unsigned n = bits(s);
      const uint64_t field = l[s] == 0 ? 0 : ((uint64_t{1} << l[s]) - 1) << (n - l[s]);
      m[slots[s].word] |= field << slots[s].shift;
    }
    return m;
  }
  // The longest prefix that holds lo..hi: the leading bits lo and hi share.
  Lengths cover_of(const Box& b) const noexcept {
    Lengths c{};
    for (unsigned s = 0; s < nslots; ++s) {
      const Range& r = b.r[slots[s].dim];
      c[s] = static_cast<uint8_t>(bits(s) - static_cast<unsigned>(std::bit_width(r.lo ^ r.hi)));
    }
    return c;
  }
  // The relaxation of cover `c` at `level` (0 = most relaxed): 32-bit fields
  // rounded down to a multiple of step >> level, narrower ones exact-or-any
  // at level 0 and their cover after.
  Lengths relax(const Lengths& c, uint32_t step, unsigned level) const noexcept {
    Lengths t{};
    const uint32_t st = std::max<uint32_t>(1, step >> level);
    for (unsigned s = 0; s < nslots; ++s) {
      const unsigned n = bits(s);
      if (n == 32) {
        t[s] = static_cast<uint8_t>(c[s] - c[s] % st);
      } else {
        t[s] = level == 0 && c[s] != n ? 0 : c[s];
      }
    }
    return t;
  }
};

// Chooses the hashed dimensions and their places, as the header describes:
// the used dimensions with some non-empty cover, best average cover per field
// bit first (ties: dimension order), while their bits fit in kMaxWords
// words; then packed widest first from bit 0 of word 0 up. Widths are 8, 16
// and 32, so widest first keeps every field inside one word and fills
// ceil(bits / 64) words. Hashed dimensions that are all ClassBench ones (with
// a port or the protocol among them) go to kFivePlace instead.
Layout choose_layout(const std::vector<Box>& boxes, uint32_t used) {
  std::array<uint64_t, kDims> cover_bits{};
  std::array<uint8_t, kDims> used_list{};
  unsigned nused = 0;
  for (unsigned d = 0; d < kDims; ++d) {
    if ((used & (1U << d)) != 0) used_list[nused++] = static_cast<uint8_t>(d);
  }
  for (const Box& b : boxes) {
    for (unsigned u = 0; u < nused; ++u) {
      const Range& r = b.r[used_list[u]];
      cover_bits[used_list[u]] += kBits[used_list[u]] - static_cast<unsigned>(std::bit_width(r.lo ^ r.hi));
    }
  }
  std::vector<unsigned> cand;
  for (unsigned u = 0; u < nused; ++u) {
    if (cover_bits[used_list[u]] != 0) cand.push_back(used_list[u]);
  }
  // cover_bits[a] / bits(a) > cover_bits[b] / bits(b), without division.
  std::stable_sort(cand.begin(), cand.end(),
                   [&](unsigned a, unsigned b) { return cover_bits[a] * kBits[b] > cover_bits[b] * kBits[a]; });
  std::vector<unsigned> chosen;
  unsigned total = 0;
  for (unsigned d : cand) {
    if (total + kBits[d] > 64 * kMaxWords) continue;
    total += kBits[d];
    chosen.push_back(d);
  }
  std::stable_sort(chosen.begin(), chosen.end(),
                   [](unsigned a, unsigned b) { return kBits[a] != kBits[b] ? kBits[a] > kBits[b] : a < b; });

  Layout l;
  uint32_t chosen_dims = 0;
  for (unsigned d : chosen) chosen_dims |= 1U << d;
  // (Addresses alone pack into word 0 either way.)
  constexpr uint32_t kWord1 = (1U << kDimSrcPort) | (1U << kDimDstPort) | (1U << kDimProto);
  l.five_tuple = (chosen_dims & ~kClassbenchDims) == 0 && (chosen_dims & kWord1) != 0;
  unsigned at = 0;  // bits placed
  for (unsigned d : chosen) {
    const unsigned place = l.five_tuple ? kFivePlace[d] : at;
    l.slots[l.nslots++] = Slot{static_cast<uint8_t>(d), static_cast<uint8_t>(place / 64),
                               static_cast<uint8_t>(place % 64), ~kMax[d]};
    at += kBits[d];
  }
  l.words = l.five_tuple ? 2 : std::max(1U, (at + 63) / 64);
  return l;
}

struct PackedHash {
  size_t operator()(const Packed& p) const noexcept {
    constexpr Packed kAll = {~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
    return hash_words<kMaxWords>(p.data(), kAll.data(), 0x5bd1e995U);
  }
};

// What placement needs of a box, computed once (sequentially, 64 bytes
// instead of the 224-byte Box read again at random per pass and class).
struct BoxKey {
  Packed lo;       // low ends, packed
  Lengths cover;   // per slot
  uint32_t position;
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
      if (r.hi > kMax[d]) {
        throw std::invalid_argument(fmt::format("tuple: box {} (position {}): {} range {}..{} exceeds the field "
                                                "maximum {}",
                                                i, b.position, dim_name(dim), r.lo, r.hi, field_max(dim)));
      }
    }
  }
}

// Places `members` (indices into `boxes`, in position order) into tuples, as
// the header describes, trying tuples with the lengths `first_tries` (a
// previous pass's, most used first) before any it creates. In a one-protocol
// class the protocol is left out of the tuples.
std::vector<BuildTuple> place(const Layout& layout, const std::vector<BoxKey>& boxes,
                              const std::vector<uint32_t>& members, const TupleSpaceOptions& options,
                              bool one_protocol, const std::vector<Lengths>& first_tries) {
  std::vector<BuildTuple> build;
  std::unordered_map<Lengths, uint32_t, LengthsHash> by_lengths;  // lengths -> tuple
  for (const Lengths& len : first_tries) {
    BuildTuple& t = build.emplace_back();
    t.len = len;
    t.mask = layout.masks_of(len);
    by_lengths.emplace(len, static_cast<uint32_t>(build.size() - 1));
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
  const auto masked = [](const Packed& w, const Packed& m) {
    Packed k{};
    for (unsigned j = 0; j < kMaxWords; ++j) k[j] = w[j] & m[j];
    return k;
  };
  const auto fits = [&](const Lengths& t, const Lengths& c) {
    for (unsigned s = 0; s < layout.nslots; ++s) {
      if (t[s] > c[s]) return false;
    }
    return true;
  };
  unsigned proto_slot = kDims;  // none
  for (unsigned s = 0; s < layout.nslots; ++s) {
    if (layout.slots[s].dim == kDimProto) proto_slot = s;
  }

  for (uint32_t bi : members) {
    const BoxKey& box = boxes[bi];
    Lengths cover = box.cover;
    // All keys of a one-protocol class have that protocol: hashing it would
    // only split tuples (the box check still tests it).
    if (one_protocol && proto_slot < kDims) cover[proto_slot] = 0;
    const Packed& w = box.lo;

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
      const Lengths len = layout.relax(cover, options.address_step, level);
      const auto it = by_lengths.find(len);
      if (it == by_lengths.end()) {
        BuildTuple& t = build.emplace_back();
        t.len = len;
        t.mask = layout.masks_of(len);
        by_lengths.emplace(len, static_cast<uint32_t>(build.size() - 1));
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
  const uint32_t used = rules.used_dims();
  proto_used_ = (used & (1U << kDimProto)) != 0;

  const Layout layout = choose_layout(boxes, used);
  words_ = layout.words;
  five_tuple_ = layout.five_tuple;
  nslots_ = layout.nslots;
  slots_ = layout.slots;
  uint32_t hashed = 0;
  for (unsigned s = 0; s < nslots_; ++s) {
    hashed |= 1U << slots_[s].dim;
    top_bits_[slots_[s].word] |= uint64_t{1} << (slots_[s].shift + layout.bits(s) - 1);
  }
  for (unsigned j = 0, s = 0; j <= kMaxWords; ++j) {
    while (s < nslots_ && slots_[s].word < j) ++s;
    word_begin_[j] = static_cast<uint8_t>(s);
  }
  for (unsigned d = 0; d < kDims; ++d) {
    const auto dim = static_cast<Dim>(d);
    if ((used & ~hashed & (1U << d)) != 0 && field_bits(dim) < 32) {
      narrow_[nnarrow_++] = Slot{static_cast<uint8_t>(d), 0, 0, ~field_max(dim)};
    }
  }
  stats_.words = words_;
  stats_.hashed_dims = hashed;
  stats_.extra_dims = used & ~hashed;

  // Extra ranges: per box restricting a used dimension that is not hashed,
  // its list in extras_ (kNoExtra: none).
  std::vector<uint32_t> extra_of(boxes.size(), kNoExtra);
  for (size_t bi = 0; bi < boxes.size(); ++bi) {
    for (unsigned d = 0; d < kDims; ++d) {
      if ((stats_.extra_dims & (1U << d)) == 0) continue;
      const Range& r = boxes[bi].r[d];
      if (r.lo == 0 && r.hi == kMax[d]) continue;
      if (extra_of[bi] == kNoExtra) {
        extra_of[bi] = static_cast<uint32_t>(extras_.size());
      } else {
        extras_.back().last = 0;
      }
      extras_.push_back(Extra{r.lo, r.hi - r.lo, static_cast<uint8_t>(d), 1});
    }
  }
  if (extras_.size() >= kNoExtra) throw std::invalid_argument("tuple: too many extra ranges");

  std::vector<BoxKey> box_keys(boxes.size());
  for (size_t bi = 0; bi < boxes.size(); ++bi) {
    box_keys[bi] = BoxKey{layout.pack_lo(boxes[bi]), layout.cover_of(boxes[bi]), boxes[bi].position};
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
    std::vector<BuildTuple> placed = place(layout, box_keys, members, options, one_protocol, {});
    for (uint32_t pass = 1; pass < options.placement_passes; ++pass) {
      std::stable_sort(placed.begin(), placed.end(),
                       [](const BuildTuple& a, const BuildTuple& b) { return a.boxes > b.boxes; });
      std::vector<Lengths> tries;
      for (const BuildTuple& t : placed) tries.push_back(t.len);
      placed = place(layout, box_keys, members, options, one_protocol, tries);
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
  const size_t rec_words = 1 + 2 * size_t{words_};
  recs_.reserve(total_recs * rec_words);

  uint32_t group_base = 0;
  class_begin_.push_back(0);
  for (std::vector<BuildTuple>& build : classes) {
    for (BuildTuple& t : build) {
      const auto ti = static_cast<uint32_t>(tuples_.size());
      TupleDesc& desc = tuples_.emplace_back();
      desc.mask = t.mask;
      desc.min_pos = t.min_pos;
      desc.max_pos = t.max_pos;
      desc.group_base = group_base;
      const auto ngroups = static_cast<uint32_t>(std::bit_ceil(std::max<size_t>(1, (t.buckets.size() + 3) / 4)));
      desc.group_mask = ngroups - 1;
      group_base += ngroups;

      std::vector<uint32_t> first_rec(t.buckets.size());
      for (size_t b = 0; b < t.buckets.size(); ++b) {
        first_rec[b] = static_cast<uint32_t>(recs_.size() / rec_words);
        for (uint32_t box : t.buckets[b]) {
          recs_.push_back(uint64_t{box_keys[box].position} | (uint64_t{extra_of[box]} << 32));
          const Packed& lo = box_keys[box].lo;
          const Packed width = layout.pack_width(boxes[box]);
          recs_.insert(recs_.end(), lo.begin(), lo.begin() + words_);
          recs_.insert(recs_.end(), width.begin(), width.begin() + words_);
        }
        recs_[recs_.size() - rec_words] |= kLastInBucket;
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
          const uint64_t h = hash_any(words_, t.keys[b], desc.mask, desc.seed);
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
          const uint64_t h = hash_any(words_, t.keys[b], desc.mask, desc.seed);
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
  stats_.box_copies = static_cast<uint32_t>(recs_.size() / rec_words);
}

TupleSpaceClassifier::TupleInfo TupleSpaceClassifier::tuple_info(size_t i) const noexcept {
  const auto cls = static_cast<uint32_t>(std::upper_bound(class_begin_.begin(), class_begin_.end(), i) -
                                         class_begin_.begin() - 1);
  TupleInfo info{{}, tuples_[i].min_pos, tuples_[i].max_pos, cls};
  for (unsigned s = 0; s < nslots_; ++s) {
    const Slot& sl = slots_[s];
    const uint64_t field = tuples_[i].mask[sl.word] >> sl.shift & field_max(static_cast<Dim>(sl.dim));
    info.lengths[sl.dim] = static_cast<uint8_t>(std::popcount(field));
  }
  return info;
}

size_t TupleSpaceClassifier::memory_bytes() const noexcept {
  return tuples_.capacity() * sizeof(TupleDesc) + groups_.capacity() * sizeof(Group) +
         recs_.capacity() * sizeof(uint64_t) + class_begin_.capacity() * sizeof(uint32_t) + sizeof(class_of_) +
         extras_.capacity() * sizeof(Extra);
}

bool TupleSpaceClassifier::extra_contains(uint32_t first, const std::array<uint32_t, kDims>& v) const noexcept {
  for (const Extra* x = extras_.data() + first;; ++x) {
    if (v[x->dim] - x->lo > x->width) return false;
    if (x->last != 0) return true;
  }
}

void TupleSpaceClassifier::lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                                  std::span<uint32_t> result) const noexcept {
  using Chunk =
      void (TupleSpaceClassifier::*)(const ClassifierKey*, const uint32_t*, uint32_t*, unsigned) const noexcept;
  static constexpr Chunk kChunk[kMaxWords] = {&TupleSpaceClassifier::lookup_chunk<1, false>,
                                              &TupleSpaceClassifier::lookup_chunk<2, false>,
                                              &TupleSpaceClassifier::lookup_chunk<3, false>,
                                              &TupleSpaceClassifier::lookup_chunk<4, false>};
  const Chunk chunk = five_tuple_ ? &TupleSpaceClassifier::lookup_chunk<2, true> : kChunk[words_ - 1];
  for (size_t i = 0; i < keys.size(); i += kBurst) {
    const auto n = static_cast<unsigned>(std::min<size_t>(kBurst, keys.size() - i));
    const uint32_t* from = start.empty() ? nullptr : start.data() + i;
    (this->*chunk)(keys.data() + i, from, result.data() + i, n);
  }
}

template <unsigned kWords, bool kFive>
void TupleSpaceClassifier::lookup_chunk(const ClassifierKey* keys, const uint32_t* start, uint32_t* result,
                                        unsigned n) const noexcept {
  std::array<std::array<uint64_t, kWords>, kBurst> w;
  std::array<uint32_t, kBurst> best;
  std::array<uint32_t, kBurst> from;
  std::array<uint8_t, kBurst> live;   // keys that a later tuple may still improve
  std::array<uint8_t, kBurst> probe;  // keys that probe the current tuple
  std::array<uint32_t, kBurst> group;
  std::array<uint32_t, kBurst> tag;
  std::array<uint32_t, kBurst> rec;
  constexpr size_t kRecWords = 1 + 2 * kWords;

  // Keys packed and in play, grouped by protocol class (counting sort). A
  // key with a used field above its maximum matches nothing (every box ends
  // at the maximum) and would alias once packed: it is not looked up.
  std::array<uint8_t, kBurst> cls;
  std::array<uint32_t, kMaxClasses + 1> begin{};
  const Slot* const slots = slots_.data();
  const std::array<uint8_t, kMaxWords + 1> word_begin = word_begin_;
  const Slot* const narrow_end = narrow_.data() + nnarrow_;
  const uint32_t hashed = stats_.hashed_dims;
  for (unsigned i = 0; i < n; ++i) {
    const auto& v = keys[i].v;
    best[i] = kNoMatch;
    from[i] = start == nullptr ? 0 : start[i];
    uint32_t wide = 0;
    if constexpr (kFive) {
      // kFivePlace, with constant shifts; a dimension not hashed is 0.
      const auto get = [&](Dim d) { return (hashed & (1U << d)) != 0 ? v[d] : 0U; };
      const uint32_t sport = get(kDimSrcPort);
      const uint32_t dport = get(kDimDstPort);
      const uint32_t proto = get(kDimProto);
      w[i][0] = uint64_t{get(kDimSrcIp)} | (uint64_t{get(kDimDstIp)} << 32);
      w[i][1] = uint64_t{sport} | (uint64_t{dport} << 16) | (uint64_t{proto} << 32);
      wide = ((sport | dport) >> 16) | (proto >> 8);
    } else {
      for (unsigned j = 0; j < kWords; ++j) {
        uint64_t word = 0;
        for (const Slot* s = slots + word_begin[j]; s != slots + word_begin[j + 1]; ++s) {
          const uint32_t x = v[s->dim];
          word |= uint64_t{x} << s->shift;
          wide |= x & s->beyond;
        }
        w[i][j] = word;
      }
    }
    for (const Slot* s = narrow_.data(); s != narrow_end; ++s) wide |= v[s->dim] & s->beyond;
    const bool in_play = wide == 0 && from[i] < positions_;
    cls[i] = !in_play ? kMaxClasses : proto_used_ ? class_of_[v[kDimProto] & 0xffU] : class_of_[0];
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
        const uint64_t h = hash_words<kWords>(w[i].data(), t->mask.data(), t->seed);
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
        if (rec[j] != kNoRec) __builtin_prefetch(recs_.data() + size_t{rec[j]} * kRecWords);
      }

      // Stage 3: the bucket's boxes in position order, from the key's start,
      // while they can still improve its best.
      for (unsigned j = 0; j < np; ++j) {
        if (rec[j] == kNoRec) continue;
        const unsigned i = probe[j];
        // The ClassBench fields, unpacked once per bucket (kFive).
        [[maybe_unused]] const auto src = static_cast<uint32_t>(w[i][0]);
        [[maybe_unused]] const auto dst = static_cast<uint32_t>(w[i][0] >> 32);
        [[maybe_unused]] const auto sport = static_cast<uint32_t>(w[i][kWords - 1] & 0xffffU);
        [[maybe_unused]] const auto dport = static_cast<uint32_t>((w[i][kWords - 1] >> 16) & 0xffffU);
        [[maybe_unused]] const auto proto = static_cast<uint32_t>((w[i][kWords - 1] >> 32) & 0xffU);
        for (const uint64_t* r = recs_.data() + size_t{rec[j]} * kRecWords;; r += kRecWords) {
          const auto pos = static_cast<uint32_t>(r[0] & kPosMask);
          if (pos >= best[i]) break;
          if (pos >= from[i]) {
            bool in;
            if constexpr (kFive) {
              in = rec_contains_five(r, src, dst, sport, dport, proto);
            } else {
              in = rec_contains<kWords>(r, w[i].data(), top_bits_.data());
            }
            const auto extra = static_cast<uint32_t>(r[0] >> 32);
            if (in && (extra == kNoExtra || extra_contains(extra, keys[i].v))) {
              best[i] = pos;
              break;
            }
          }
          if ((r[0] & kLastInBucket) != 0) break;
        }
      }
    }
  }
  for (unsigned i = 0; i < n; ++i) result[i] = best[i];
}

std::unique_ptr<Classifier> make_tuple_space_classifier(const RuleBoxes& rules, ClassifierUse) {
  // The class refuses empty boxes; they match nothing, so the registry's
  // contract (classifier.h: any boxes) is kept by leaving them out.
  const auto empty = [](const Box& b) {
    return std::any_of(b.r.begin(), b.r.end(), [](const Range& r) { return r.lo > r.hi; });
  };
  if (std::none_of(rules.boxes.begin(), rules.boxes.end(), empty)) return std::make_unique<TupleSpaceClassifier>(rules);
  RuleBoxes kept;
  kept.rules = rules.rules;
  for (const Box& b : rules.boxes) {
    if (!empty(b)) kept.boxes.push_back(b);
  }
  return std::make_unique<TupleSpaceClassifier>(kept);
}

}  // namespace nfb
