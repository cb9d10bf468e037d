// Tuple-space search in the TupleMerge style: boxes grouped by prefix-length
// tuples, one hash table per tuple, tuples visited best priority first, one
// tuple space per protocol class.
//
// Idea. Every box dimension is a range; its COVER is the longest prefix that
// holds the whole range (the range itself when it is a prefix, e.g.
// 10.0.0.0/8 or port 80; the common leading bits of lo and hi otherwise, e.g.
// ports 1024:65535 -> the empty prefix). A tuple is a vector of prefix lengths,
// one per dimension; a box may live in any tuple whose lengths are all <= its
// cover lengths (TupleMerge: the tuple "omits bits" so that boxes with similar
// but unequal lengths share one table). In its tuple, a box is filed under its
// MASKED KEY (every field cut to the tuple's length) and a packet finds the
// boxes that can contain it by masking itself the same way: one hash probe
// per tuple. Boxes under one masked key form a BUCKET, sorted by position; a
// hit is confirmed by testing the packet against the box's exact ranges, so
// ranges that are not prefixes cost nothing but that check.
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
// best. A burst is processed in chunks of kBurst keys, sorted by class; then
// tuple by tuple, in three stages over the keys still in play: (1) mask, hash
// and prefetch the hash group, (2) find the tag (SSE2: 8 tags in two
// compares) and prefetch the bucket, (3) check the bucket's boxes. The hash
// of the out-interface field is compiled out when no box restricts it.
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
//   recs_     boxes as 40-byte Recs: position (top bit = last of its bucket)
//             and per hashed dimension the low end and width in the field's
//             size.
//   extras_   the ranges of boxes in the dimensions tuples do not hash
//             (conntrack tuples, marks, length, ICMP, TCP flags, ...; bit 30
//             of Rec::pos says a box has some, rec_extra_ where they start):
//             checked after the hashed ones, only for such boxes. Chains
//             restrict those dimensions on few rules, and a rule that does
//             is still found by its addresses, ports and interfaces.
//             A bucket is a contiguous run; the slot holds its first index.
// About 40 bytes per stored box plus 8-16 bytes of slots per bucket: 0.6 MB
// for the 10K ClassBench sets (1.3 MB for ipc1, whose many any-protocol
// rules are copied into 7 classes), 5-16 MB at 100K.
//
// Cost. Lookup per key: one hash of 2 (or 3) 64-bit words, one cache line of
// tags and one bucket scan per tuple visited; the number visited is what the
// classes and the priority pruning save (2-6.5 probes and 1-5 boxes checked
// per key on the ClassBench 10K and 100K traces). Lookup is const, noexcept and
// allocates nothing (state lives in fixed stack arrays).
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
};

class TupleSpaceClassifier final : public Classifier {
 public:
  /// Builds from `rules` (boxes sorted by position, positions < rules.rules).
  /// Throws std::invalid_argument naming the reason when the boxes are not
  /// sorted, a position is out of range, a range is empty or wider than its
  /// field, there are 2^31 rules or more, or an option is out of range.
  explicit TupleSpaceClassifier(const RuleBoxes& rules, TupleSpaceOptions options = {});

  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override;
  size_t memory_bytes() const noexcept override;
  std::string_view name() const noexcept override { return "tuple"; }

  const TupleSpaceStats& stats() const noexcept { return stats_; }

  /// Tuple i in visiting order (i < stats().tuples).
  struct TupleInfo {
    std::array<uint8_t, kDims> lengths;  // prefix length per dimension
    uint32_t min_pos;                    // best position of its boxes
    uint32_t max_pos;                    // worst position of its boxes
    uint32_t protocol_class;             // the class whose keys visit it
  };
  TupleInfo tuple_info(size_t i) const noexcept;

  /// The dimensions tuples hash (the first ones of Dim: addresses, ports,
  /// protocol, interfaces, ct state); boxes check the others as Extra ranges.
  static constexpr unsigned kHashDims = 8;
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
  /// A box as its bucket stores it: low end and width (hi - lo) per
  /// dimension, in the field's own size.
  struct Rec {
    uint32_t pos;                  // position | kLastInBucket (bit 31) | kHasExtra (bit 30)
    std::array<uint32_t, 2> lo32;  // src ip, dst ip
    std::array<uint32_t, 2> w32;
    std::array<uint16_t, 4> lo16;  // src port, dst port, in iface, out iface
    std::array<uint16_t, 4> w16;
    std::array<uint8_t, 2> lo8;  // proto, ct state
    std::array<uint8_t, 2> w8;
  };
  struct alignas(64) TupleDesc {
    std::array<uint64_t, 3> mask;  // over the packed key words (see tuple_space.cpp)
    uint64_t seed;
    uint32_t group_base;  // first group in groups_
    uint32_t group_mask;  // groups - 1 (a power of two minus one)
    uint32_t min_pos;     // best position of any box in the tuple
    uint32_t max_pos;     // worst position of any box in the tuple
    std::array<uint8_t, kHashDims> len;
  };
  /// One range of a box in a dimension that is not hashed: v - lo <= width.
  struct Extra {
    uint32_t lo;
    uint32_t width;
    uint8_t dim;
    uint8_t last;  // the box's last extra range
  };

 private:
  template <bool kWide>
  void lookup_chunk(const ClassifierKey* keys, const uint32_t* start, uint32_t* result,
                    unsigned n) const noexcept;

  std::vector<TupleDesc> tuples_;     // by class, then best position
  std::vector<uint32_t> class_begin_;  // class c's tuples: [class_begin_[c], class_begin_[c + 1])
  std::array<uint8_t, 256> class_of_{};
  std::vector<Group> groups_;
  std::vector<Rec> recs_;
  std::vector<uint32_t> rec_extra_;  // per Rec with kHasExtra: its first Extra (sized up to the last such Rec)
  std::vector<Extra> extras_;
  bool extra_contains(uint32_t first, const std::array<uint32_t, kDims>& v) const noexcept;
  uint32_t positions_ = 0;  // rules.rules
  bool wide_ = false;       // some box restricts the out interface
  TupleSpaceStats stats_;
};

}  // namespace nfb
