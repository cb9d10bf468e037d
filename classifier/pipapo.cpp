// "pipapo": nftables' PIle PAcket POlicies set backend (net/netfilter/
// nft_set_pipapo.c, Stefano Brivio, 2020), written here from its published
// description and adapted from a set (no overlaps, no priorities) to a
// classifier (the lowest position wins, start positions). Registered in
// classifier/algorithms.def; nothing else refers to it by type: it is the
// example of an algorithm that is one file and one registry line.
//
// Idea. A box is a row. Each used dimension is a FIELD; in a field, a row's
// range is cut into the prefixes that tile it (port 1024:65535 is six
// prefixes, an exact value or a wildcard one), and every prefix is an ENTRY
// of that field. Entries are numbered row after row, so a row's entries are
// one run, and runs are in row (= position) order in every field. A field's
// value is read in groups of 4 bits, high to low; for every group and each
// of its 16 values the lookup table holds a bitmap over the field's entries:
// bit e is set when entry e's prefix allows that value of that group (a
// prefix that ends before the group allows all 16; one that ends inside it,
// the values that share its remaining bits). ANDing one bitmap per group,
// chosen by the key's 4-bit values, leaves exactly the entries whose prefix
// holds the key's value: a bit-vector lookup (Lakshman and Stiliadis, 1998)
// whose tables hold 16 bitmaps a group instead of one per elementary
// interval.
//
// Fields chain: a row that matches in field f can only match in field f+1
// through its own entries there, so the set bits of field f are mapped (by
// their rows) to those rows' entry runs in field f+1, and field f+1 ANDs its
// group bitmaps only over the words that mapping filled. In the last field
// the first set bit, scanning words from low to high, is the row of lowest
// position that contains the key: the scan stops there.
//
// Priority order (ours; a set needs none): since every field's entries are
// in row order, the rows are taken in blocks of kBlockRows, each through
// all fields, and the first block with a match ends the lookup. Without
// blocks a key that many rows hold in every field (fw1's wildcards) mapped
// thousands of rows from field to field: 64K cycles a key on fw1 10K.
//
// Fields are ordered most selective first (the fewest rows holding the
// values of keys sampled from the rows themselves): the first field is the
// only one ANDed over all its words, so it should leave few rows for the
// rest.
//
// Start positions: rows below the first row of position >= start are masked
// out of the first field, so they never reach the others.
//
// Memory per field: groups x 16 bitmaps of entries/8 bytes, plus 4 bytes
// per entry (its row) and per row (its first entry). Lookup per key: the
// first field's groups x words loads (the cost that grows with the rule
// set: 26 groups for a ClassBench set, 100K entries = 1563 words a group),
// then the mapped words of the others. No allocation: the two bitmaps of
// mapped words live on the stack, at most kMaxWords each; a field with more
// entries fails the build.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "classifier/classifier.h"
#include "classifier/registry.h"

namespace nfb {
namespace {

constexpr unsigned kGroupBits = 4;
constexpr unsigned kBuckets = 1U << kGroupBits;
// A field's entries fit in this many 64-bit words (2^20 entries): the
// bitmaps of mapped words are two stack arrays of this size.
constexpr size_t kMaxWords = size_t{1} << 14;
// Rows a lookup takes at a time through every field (see one()).
constexpr uint32_t kBlockRows = 256;

uint64_t splitmix(uint64_t& s) noexcept {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Prefix {
  uint32_t value;  // the prefix's bits, the rest 0
  uint8_t len;     // 0..width
};

// The prefixes that tile [lo, hi] in a field of `width` bits, low to high.
void tile(uint32_t lo, uint32_t hi, unsigned width, std::vector<Prefix>& out) {
  uint64_t a = lo;
  const uint64_t b = hi;
  while (a <= b) {
    // The largest aligned block at a that stays within b.
    unsigned k = a == 0 ? width : std::min<unsigned>(width, static_cast<unsigned>(std::countr_zero(a)));
    while (k > 0 && a + (uint64_t{1} << k) - 1 > b) --k;
    out.push_back(Prefix{static_cast<uint32_t>(a), static_cast<uint8_t>(width - k)});
    a += uint64_t{1} << k;
  }
}

class PipapoClassifier final : public Classifier {
 public:
  explicit PipapoClassifier(const RuleBoxes& rules) {
    for (size_t i = 1; i < rules.boxes.size(); ++i) {
      if (rules.boxes[i].position < rules.boxes[i - 1].position) {
        throw std::invalid_argument("pipapo: boxes must be sorted by position");
      }
    }
    // Rows: the boxes that can match something.
    std::vector<const Box*> rows;
    for (const Box& b : rules.boxes) {
      if (b.position >= rules.rules) {
        throw std::invalid_argument(
            fmt::format("pipapo: box position {} beyond the rule count {}", b.position, rules.rules));
      }
      bool empty = false;
      for (const Range& r : b.r) empty |= r.lo > r.hi;
      if (!empty) rows.push_back(&b);
    }
    for (const Box* b : rows) pos_.push_back(b->position);
    if (rows.empty()) return;

    uint32_t used = rules.used_dims();
    if (used == 0) used = 1;  // every box spans everything: one field, one wildcard entry a row
    struct Built {
      Field f;
      std::vector<Prefix> entries;
      uint64_t matches = 0;  // rows holding the sampled keys' values (fewer: more selective)
    };
    std::vector<Built> built;
    std::vector<Prefix> scratch;
    for (unsigned d = 0; d < kDims; ++d) {
      if (((used >> d) & 1U) == 0) continue;
      Built b;
      b.f.dim = static_cast<uint8_t>(d);
      const unsigned width = field_bits(static_cast<Dim>(d));
      b.f.groups = static_cast<uint8_t>(width / kGroupBits);
      b.f.begin = begin_.size();
      for (const Box* row : rows) {
        begin_.push_back(static_cast<uint32_t>(b.entries.size()));
        scratch.clear();
        tile(row->r[d].lo, std::min(row->r[d].hi, field_max(static_cast<Dim>(d))), width, scratch);
        b.entries.insert(b.entries.end(), scratch.begin(), scratch.end());
      }
      begin_.push_back(static_cast<uint32_t>(b.entries.size()));
      if (b.entries.size() > kMaxWords * 64) {
        throw std::invalid_argument(fmt::format("pipapo: {} needs {} entries, more than the {} a field may have",
                                                dim_name(static_cast<Dim>(d)), b.entries.size(), kMaxWords * 64));
      }
      built.push_back(std::move(b));
    }
    // Selectivity: keys drawn the way ClassBench traces are (a random row,
    // a random point in it; fixed seed), and per field how many rows hold
    // each key's value. A field every row fixes to one of few values (the
    // protocol) is specific but not selective: this puts it last.
    const size_t samples = std::clamp<size_t>((size_t{1} << 24) / rows.size(), 16, 256);
    uint64_t state = 0x9199a90;
    for (size_t k = 0; k < samples; ++k) {
      const Box& from = *rows[splitmix(state) % rows.size()];
      for (Built& b : built) {
        const Range& r = from.r[b.f.dim];
        const uint32_t v = r.lo + static_cast<uint32_t>(splitmix(state) % (uint64_t{r.hi} - r.lo + 1));
        for (const Box* row : rows) b.matches += row->r[b.f.dim].contains(v) ? 1U : 0U;
      }
    }
    std::stable_sort(built.begin(), built.end(), [](const Built& a, const Built& b) { return a.matches < b.matches; });

    for (Built& b : built) {
      Field& f = b.f;
      const unsigned width = f.groups * kGroupBits;
      f.words = static_cast<uint32_t>((b.entries.size() + 63) / 64);
      f.table = table_.size();
      f.row_of = row_of_.size();
      table_.resize(table_.size() + size_t{f.groups} * kBuckets * f.words, 0);
      uint64_t* t = table_.data() + f.table;
      uint32_t row = 0;
      const uint32_t* begin = begin_.data() + f.begin;
      for (size_t e = 0; e < b.entries.size(); ++e) {
        while (begin[row + 1] <= e) ++row;
        row_of_.push_back(row);
        const Prefix& p = b.entries[e];
        const uint64_t bit = uint64_t{1} << (e % 64);
        for (unsigned g = 0; g < f.groups; ++g) {
          const unsigned shift = width - kGroupBits * (g + 1);
          const unsigned nib = (p.value >> shift) & (kBuckets - 1);
          // How many of this group's bits the prefix fixes (0..4).
          const unsigned fixed = p.len <= kGroupBits * g ? 0U : std::min(kGroupBits, p.len - kGroupBits * g);
          const unsigned free_bits = kGroupBits - fixed;
          for (unsigned v = 0; v < kBuckets; ++v) {
            if ((v >> free_bits) == (nib >> free_bits)) t[(size_t{g} * kBuckets + v) * f.words + e / 64] |= bit;
          }
        }
      }
      max_words_ = std::max<size_t>(max_words_, f.words);
      fields_.push_back(f);
    }
    table_.shrink_to_fit();
  }

  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override {
    if (fields_.empty()) {
      std::fill_n(result.begin(), keys.size(), kNoMatch);
      return;
    }
    // The mapped words of the field being read and of the next; kept all
    // zero between keys (every word read is cleared).
    std::array<uint64_t, kMaxWords> a;
    std::array<uint64_t, kMaxWords> b;
    std::fill_n(a.begin(), max_words_, 0);
    std::fill_n(b.begin(), max_words_, 0);
    for (size_t i = 0; i < keys.size(); ++i) {
      const uint32_t from = start.empty() ? 0U : start[i];
      const auto first_row = static_cast<uint32_t>(std::lower_bound(pos_.begin(), pos_.end(), from) - pos_.begin());
      result[i] = first_row == pos_.size() ? kNoMatch : one(keys[i], first_row, a.data(), b.data());
    }
  }

  size_t memory_bytes() const noexcept override {
    return sizeof(*this) + table_.capacity() * sizeof(uint64_t) + row_of_.capacity() * sizeof(uint32_t) +
           begin_.capacity() * sizeof(uint32_t) + pos_.capacity() * sizeof(uint32_t) +
           fields_.capacity() * sizeof(Field);
  }
  std::string_view name() const noexcept override { return "pipapo"; }

 private:
  struct Field {
    uint8_t dim = 0;
    uint8_t groups = 0;  // field_bits / 4
    uint32_t words = 0;  // of each bitmap
    size_t table = 0;    // table_ offset: [group][bucket][words]
    size_t row_of = 0;   // row_of_ offset: per entry, its row
    size_t begin = 0;    // begin_ offset: per row (and one past), its first entry
  };

  // The key's bucket in each group of field f, and the first group's table.
  struct Probe {
    const uint64_t* row[kDims];  // the 32-bit field has 8 groups; kDims bounds any
    unsigned groups;
  };
  Probe probe(const Field& f, uint32_t value) const noexcept {
    Probe p{};
    p.groups = f.groups;
    const unsigned width = f.groups * kGroupBits;
    const uint64_t* t = table_.data() + f.table;
    for (unsigned g = 0; g < f.groups; ++g) {
      const unsigned nib = (value >> (width - kGroupBits * (g + 1))) & (kBuckets - 1);
      p.row[g] = t + (size_t{g} * kBuckets + nib) * f.words;
    }
    return p;
  }
  static uint64_t and_groups(const Probe& p, size_t w, uint64_t v) noexcept {
    for (unsigned g = 0; g < p.groups && v != 0; ++g) v &= p.row[g][w];
    return v;
  }

  // Sets bits [lo, hi) of `bits`, widening the word span [wlo, whi].
  static void set_run(uint64_t* bits, uint32_t lo, uint32_t hi, size_t& wlo, size_t& whi) noexcept {
    if (lo >= hi) return;
    const size_t w0 = lo / 64;
    const size_t w1 = (hi - 1) / 64;
    wlo = std::min(wlo, w0);
    whi = std::max(whi, w1);
    for (size_t w = w0; w <= w1; ++w) {
      uint64_t m = ~uint64_t{0};
      if (w == w0) m &= ~uint64_t{0} << (lo % 64);
      if (w == w1 && hi % 64 != 0) m &= ~uint64_t{0} >> (64 - hi % 64);
      bits[w] |= m;
    }
  }

  // The set bits v of word w of a field (whose entries belong to `rows`) as
  // their rows' entry runs in the next field `to`, set in `next`. A row's
  // entries are adjacent, so a repeated row is skipped.
  void map_rows(uint64_t v, size_t w, const uint32_t* rows, const Field& to, uint64_t* next, size_t& nlo,
                size_t& nhi) const noexcept {
    uint32_t last_row = 0xffffffffU;
    for (; v != 0; v &= v - 1) {
      const uint32_t r = rows[w * 64 + static_cast<unsigned>(std::countr_zero(v))];
      if (r == last_row) continue;
      last_row = r;
      set_run(next, begin_[to.begin + r], begin_[to.begin + r + 1], nlo, nhi);
    }
  }

  // The lowest position of a row >= first_row that holds the key. Rows are
  // taken kBlockRows at a time, all fields per block, so a key that matches
  // early stops early.
  uint32_t one(const ClassifierKey& key, uint32_t first_row, uint64_t* cur, uint64_t* next) const noexcept {
    const size_t nf = fields_.size();
    const auto rows = static_cast<uint32_t>(pos_.size());
    Probe probes[kDims];
    for (size_t fi = 0; fi < nf; ++fi) probes[fi] = probe(fields_[fi], key.v[fields_[fi].dim]);
    const Field& f0 = fields_[0];
    const uint32_t* rows0 = row_of_.data() + f0.row_of;
    const Field* f1 = nf > 1 ? &fields_[1] : nullptr;
    for (uint32_t r0 = first_row; r0 < rows; r0 += kBlockRows) {
      const uint32_t r1 = std::min(rows, r0 + kBlockRows);
      const uint32_t e0 = begin_[f0.begin + r0];
      const uint32_t e1 = begin_[f0.begin + r1];
      size_t nlo = kMaxWords;
      size_t nhi = 0;
      for (size_t w = e0 / 64; w * 64 < e1; ++w) {
        uint64_t v = ~uint64_t{0};
        if (w == e0 / 64) v &= ~uint64_t{0} << (e0 % 64);
        if (w == (e1 - 1) / 64 && e1 % 64 != 0) v &= ~uint64_t{0} >> (64 - e1 % 64);
        v = and_groups(probes[0], w, v);
        if (v == 0) continue;
        if (f1 == nullptr) return pos_[rows0[w * 64 + static_cast<unsigned>(std::countr_zero(v))]];
        map_rows(v, w, rows0, *f1, next, nlo, nhi);
      }
      for (size_t fi = 1; fi < nf && nlo <= nhi; ++fi) {
        std::swap(cur, next);
        const size_t lo = nlo;
        const size_t hi = nhi;
        nlo = kMaxWords;
        nhi = 0;
        const Field& f = fields_[fi];
        const uint32_t* frows = row_of_.data() + f.row_of;
        const Field* fn = fi + 1 < nf ? &fields_[fi + 1] : nullptr;
        for (size_t w = lo; w <= hi; ++w) {
          uint64_t v = cur[w];
          if (v == 0) continue;
          cur[w] = 0;
          v = and_groups(probes[fi], w, v);
          if (v == 0) continue;
          if (fn == nullptr) {
            std::fill(cur + w + 1, cur + hi + 1, 0);  // the words not read yet
            return pos_[frows[w * 64 + static_cast<unsigned>(std::countr_zero(v))]];
          }
          map_rows(v, w, frows, *fn, next, nlo, nhi);
        }
      }
    }
    return kNoMatch;
  }

  std::vector<Field> fields_;    // in lookup order
  std::vector<uint64_t> table_;  // every field's group bitmaps
  std::vector<uint32_t> row_of_;
  std::vector<uint32_t> begin_;
  std::vector<uint32_t> pos_;  // per row, its position (ascending)
  size_t max_words_ = 0;
};

}  // namespace

std::unique_ptr<Classifier> make_pipapo_classifier(const RuleBoxes& rules, ClassifierUse) {
  return std::make_unique<PipapoClassifier>(rules);
}

}  // namespace nfb
