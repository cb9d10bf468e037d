// Tuple-space search in the TupleMerge style: boxes grouped by prefix-length
// tuples, one hash table per tuple, tuples visited best priority first, one
// tuple space per protocol class.
//
// Idea. Every box dimension is a range; its COVER is the longest prefix that
// holds the whole range (the range itself when it is a prefix, e.g.
// 10.0.0.0/8 or port 80; the common leading bits of lo and hi otherwise, e.g.
// ports 1024:65535 -> the empty prefix). A tuple is a vector of prefix lengths,
// one per hashed dimension; a box may live in any tuple whose lengths are all
// <= its cover lengths (TupleMerge: the tuple "omits bits" so that boxes with
// similar but unequal lengths share one table). In its tuple, a box is filed
// under its MASKED KEY (every field cut to the tuple's length) and a packet
// finds the boxes that can contain it by masking itself the same way: one
// hash probe per tuple. Boxes under one masked key form a BUCKET, sorted by
// position; a hit is confirmed by testing the packet against the box's exact
// ranges, so ranges that are not prefixes cost nothing but that check.
//
// Layout (chosen at build). Only the dimensions some box restricts
// (RuleBoxes::used_dims()) are read from keys. Of those, the HASHED ones are
// packed, each in its field width (8, 16 or 32 bits), into at most kMaxWords
// 64-bit words: dimensions are taken best first -- by the average cover
// length of their boxes over the field width, i.e. how much of the field the
// boxes fix -- while they fit in 64 x kMaxWords bits, and a dimension whose
// every cover is empty is not hashed at all (a hash could not split it). The
// chosen ones are packed widest first, so no field straddles a word and the
// words used are as few as the bits allow. A ClassBench set hashes its five
// dimensions in two words (word 0 the addresses, word 1 ports and protocol;
// a set that leaves some of them unused keeps the others at those places,
// and the lookup has a version for exactly this placement, with constant
// shifts and a field-by-field box check); every dimension a Docker host's
// chain uses fits in four. Used dimensions left out are checked only as
// EXTRA ranges of the boxes that restrict them.
//
// Protocol classes. The most common exact protocols (up to
// max_protocol_classes - 1, while the copies below stay within max_copies x
// boxes) each get a class; all other protocol values share a last class. A
// class holds every box whose protocol range meets it (a box for any protocol
// is copied into each), and a key visits only its protocol's class: a TCP
// packet never probes a tuple that holds only UDP rules. Inside a one-protocol
// class the protocol is left out of the tuples (all its keys share it).
//
// Build (control plane), per class. Boxes are placed in position order, each
// into the first tuple (in trying order) whose lengths fit and whose bucket
// for the box holds fewer than `collision_limit` boxes. If none, a new tuple
// is made from the box's cover lengths RELAXED: 32-bit fields rounded down to
// a multiple of `address_step`, other fields kept only when exact (a single
// port, protocol, interface or state) and wildcarded otherwise. If a tuple
// with those lengths exists (its bucket is full), less relaxed lengths are
// tried (step halved, cover lengths kept), down to the exact cover; a bucket
// that even the exact cover cannot split (boxes with equal covers) grows past
// the limit. The first placement tries tuples in creation order, which
// favours whatever shapes the first rules had; each further pass
// (placement_passes) places every box again, trying the tuples the previous
// pass filled most first, and drops tuples left empty. On the ClassBench fw1
// and ipc1 sets the second pass cuts the probes per key from 12-15 to 2-6.
// Cost O(passes x boxes x tuples tried), one hash-map lookup per try:
// milliseconds for 10K boxes, 0.05-0.4 s for 100K on this machine.
//
// Lookup (packet path). A class's tuples are sorted by their best (lowest)
// position. A key skips a tuple whose worst position is below its start, and
// stops as soon as its best match so far is <= the next tuple's best
// position: no later tuple can improve it (Open vSwitch's priority pruning).
// A bucket is scanned in position order, skipping boxes below start, up to
// the first box that contains the key or whose position cannot improve the
// best. A burst is processed in chunks of kBurst keys, each key packed once
// into the layout's words, sorted by class; then tuple by tuple, in three
// stages over the keys still in play: (1) mask, hash and prefetch the hash
// group, (2) find the tag (SSE2: 8 tags in two compares) and prefetch the
// bucket, (3) check the bucket's boxes. The lookup is compiled once per word
// count (1..kMaxWords) and once for the ClassBench placement, so masking,
// hashing and the box check are unrolled.
//
// Memory layout.
//   tuples_   one 64-byte TupleDesc per tuple, grouped by class
//             (class_begin_): masks of the packed key, hash seed, its group
//             range in groups_, best and worst position.
//   groups_   all tuples' hash tables, each a power-of-two run of 64-byte
//             Groups (one cache line): 8 tags then 8 record indices. Open
//             addressing, linear probing by group, at most half the slots
//             full; tag = upper hash bits (never 0, 0 = empty). Insertion
//             never deletes, so a group's full slots are a prefix of it.
//             Build checks that every bucket is found from its own masked key
//             (first equal tag on the probe path) and re-seeds a tuple's hash
//             if not, so a lookup never needs to compare the masked key.
//   recs_     boxes as records of 1 + 2 x words 64-bit words: position (top
//             bit = last of its bucket) and the box's first Extra (or none),
//             then the low ends and the widths (hi - lo) of the hashed
//             dimensions, packed like the key: 40 bytes for a ClassBench
//             set, 72 with four words, whatever kDims is. The box check is
//             per field (key - lo) mod 2^bits <= width; in general as SWAR
//             over the packed words, every field of a word at once with
//             borrows kept inside fields, for the ClassBench placement as
//             five scalar compares.
//   extras_   the ranges of boxes in the used dimensions that are not hashed,
//             only for boxes that restrict them: checked after the hashed
//             ones. A chain restricts those dimensions on few rules, and a
//             rule that does is still found by its hashed dimensions.
//             A bucket is a contiguous run; the slot holds its first index.
// About 40 bytes per stored box plus 8-16 bytes of slots per bucket: 0.6 MB
// for the 10K ClassBench sets (1.3 MB for ipc1, whose many any-protocol
// rules are copied into 7 classes), 5-16 MB at 100K.
//
// Cost. Lookup per key: one hash of the layout's words (2 for ClassBench),
// one cache line of tags and one bucket scan per tuple visited; the number
// visited is what the classes and the priority pruning save (2-6.5 probes and
// 1-5 boxes checked per key on the ClassBench 10K and 100K traces). Lookup is
// const, noexcept and allocates nothing (state lives in fixed stack arrays).
// The dimensions no box restricts are not read from keys (a value there
// beyond its field, which no box holds, is not noticed); a key with a value
// beyond a used field matches nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "classifier/classifier.h"

namespace nfb {

/// The defaults were the fastest of those tried on the ClassBench acl1, fw1
/// and ipc1 sets at 10K and 100K rules.
struct TupleSpaceOptions {
  /// A bucket holding this many boxes takes no more: later boxes go to another
  /// tuple (>= 1). Small limits mean short scans and more tuples.
  uint32_t collision_limit = 16;
  /// New tuples round 32-bit fields' lengths down to a multiple of this
  /// (1..32; 1 = keep the exact cover length).
  uint32_t address_step = 16;
  /// Protocol classes, the last one for all protocols without their own
  /// (1..16; 1 = no partition).
  uint32_t max_protocol_classes = 8;
  /// Classes are added while the boxes stored, copies included, stay within
  /// this many times the boxes given (>= 1).
  uint32_t max_copies = 3;
  /// Placements (1..8): each after the first places every box again, trying
  /// the tuples the previous one filled most first.
  uint32_t placement_passes = 2;
};

/// What a build produced (for tests and tuning).
struct TupleSpaceStats {
  uint32_t tuples = 0;
  uint32_t buckets = 0;
  uint32_t longest_bucket = 0;  // boxes in the largest bucket
  uint32_t groups = 0;          // 64-byte hash groups over all tuples
  uint32_t reseeds = 0;         // tuples whose hash seed had to change
  uint32_t classes = 0;         // protocol classes
  uint32_t box_copies = 0;      // boxes stored over all classes
  uint32_t words = 0;           // 64-bit words of the packed key (1..kMaxWords)
  uint32_t hashed_dims = 0;     // dimensions the tuples hash (bit d = dimension d)
  uint32_t extra_dims = 0;      // used dimensions checked only as extra ranges
};

class TupleSpaceClassifier final : public Classifier {
 public:
  /// Builds from `rules` (boxes sorted by position, positions < rules.rules).
  /// Throws std::invalid_argument naming the reason when the boxes are not
  /// sorted, a position is out of range, a range is empty or wider than its
  /// field, there are 2^30 rules or more, or an option is out of range.
  explicit TupleSpaceClassifier(const RuleBoxes& rules, TupleSpaceOptions options = {});

  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override;
  size_t memory_bytes() const noexcept override;
  std::string_view name() const noexcept override { return "tuple"; }

  const TupleSpaceStats& stats() const noexcept { return stats_; }

  /// Tuple i in visiting order (i < stats().tuples).
  struct TupleInfo {
    std::array<uint8_t, kDims> lengths;  // prefix length per dimension (0 where not hashed)
    uint32_t min_pos;                    // best position of its boxes
    uint32_t max_pos;                    // worst position of its boxes
    uint32_t protocol_class;             // the class whose keys visit it
  };
  TupleInfo tuple_info(size_t i) const noexcept;

  /// At most this many 64-bit words of hashed dimensions (256 bits).
  static constexpr unsigned kMaxWords = 4;
  /// Keys handled per chunk of a burst (stack arrays of this size).
  static constexpr unsigned kBurst = 64;
  /// Upper bound of max_protocol_classes.
  static constexpr unsigned kMaxClasses = 16;

  /// The protocol class whose tuples a key with protocol `proto` visits.
  uint32_t protocol_class(uint8_t proto) const noexcept { return class_of_[proto]; }

  /// One hash table group: a cache line of 8 tags and 8 record indices.
  struct alignas(64) Group {
    std::array<uint32_t, 8> tag;
    std::array<uint32_t, 8> rec;
  };
  struct alignas(64) TupleDesc {
    std::array<uint64_t, kMaxWords> mask;  // over the packed key words (the first `words` used)
    uint64_t seed;
    uint32_t group_base;  // first group in groups_
    uint32_t group_mask;  // groups - 1 (a power of two minus one)
    uint32_t min_pos;     // best position of any box in the tuple
    uint32_t max_pos;     // worst position of any box in the tuple
  };
  /// Where a hashed dimension sits in the packed key: key word `word`, bits
  /// shift .. shift + field_bits(dim) - 1; a key value with a bit of
  /// `beyond` set is above the field's maximum.
  struct Slot {
    uint8_t dim;
    uint8_t word;
    uint8_t shift;
    uint32_t beyond;
  };
  /// One range of a box in a used dimension that is not hashed: v - lo <= width.
  struct Extra {
    uint32_t lo;
    uint32_t width;
    uint8_t dim;
    uint8_t last;  // the box's last extra range
  };

 private:
  // kFive: the five_tuple_ layout, packed with constant shifts (kWords 2).
  template <unsigned kWords, bool kFive>
  void lookup_chunk(const ClassifierKey* keys, const uint32_t* start, uint32_t* result,
                    unsigned n) const noexcept;
  bool extra_contains(uint32_t first, const std::array<uint32_t, kDims>& v) const noexcept;

  // The layout: slots_[0, nslots_) are the hashed dimensions, widest first,
  // word j's from word_begin_[j] to word_begin_[j + 1]; narrow_[0, nnarrow_)
  // the used dimensions narrower than 32 bits that are not hashed (a key
  // value above a used field's maximum matches nothing).
  unsigned words_ = 1;
  bool five_tuple_ = false;  // the hashed dimensions are ClassBench ones, at fixed places
  unsigned nslots_ = 0;
  std::array<Slot, kDims> slots_{};
  std::array<uint8_t, kMaxWords + 1> word_begin_{};
  unsigned nnarrow_ = 0;
  std::array<Slot, kDims> narrow_{};
  std::array<uint64_t, kMaxWords> top_bits_{};  // per word: the top bit of each field in it
  bool proto_used_ = false;                     // some box restricts the protocol

  std::vector<TupleDesc> tuples_;      // by class, then best position
  std::vector<uint32_t> class_begin_;  // class c's tuples: [class_begin_[c], class_begin_[c + 1])
  std::array<uint8_t, 256> class_of_{};
  std::vector<Group> groups_;
  // Records of 1 + 2 x words_ words: [0] position | kLastInBucket, and the
  // first Extra << 32 (kNoExtra: none); then the packed low ends, then the
  // packed widths.
  std::vector<uint64_t> recs_;
  std::vector<Extra> extras_;
  uint32_t positions_ = 0;  // rules.rules
  TupleSpaceStats stats_;
};

}  // namespace nfb
