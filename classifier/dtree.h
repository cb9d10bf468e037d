// DtreeClassifier: decision trees of multi-way range splits (HyperSplit's
// endpoint splits, eight children a node instead of two) over CutSplit's
// address partition, with leaves of a few boxes scanned eight at a time with
// SIMD compares.
//
// Why this member of the HiCuts / HyperCuts / HyperSplit / CutSplit family.
// HiCuts and HyperCuts cut a node into equal-sized pieces: one shift and
// mask a level, but most pieces of a sparse field (addresses) are empty or
// copies of each other, so memory explodes on fw1-like sets. HyperSplit
// splits at rule endpoints, so every piece is meaningful and replication
// stays low, but its binary nodes make the tree 15 to 30 levels deep: one
// dependent load a level. Here a node splits ONE dimension at up to seven
// thresholds chosen among the rule endpoints, so it keeps HyperSplit's
// economy while a lookup takes about a third of the levels (log8 instead of
// log2), and the node is exactly one cache line. What still replicates is a
// box wide in an address (a wildcard source is copied into every piece of a
// source split); CutSplit's answer is to keep such boxes apart: up to three
// trees, for boxes with a small source range, a small destination range,
// and the rest. A lookup then descends each tree and keeps the smallest
// position, skipping a tree (or the rest of a leaf) that cannot beat it. On
// fw1 100K this takes replication from 8x (budget-bound, leaves of
// thousands of boxes) to about 3x. The build makes both the single tree and
// the partition and keeps the one a cost model (node visits and leaf blocks
// of 4096 keys drawn inside random boxes, as ClassBench traces are made)
// finds cheaper; DtreePartition forces either.
//
// Build. Breadth first from the root (the whole space). A node with more
// than `leaf_size` boxes is split: for every used dimension the boxes are
// clipped to the node's region, their endpoints sorted, and a greedy sweep
// over the elementary intervals finds the fewest-boxes-per-child partition
// into at most `fanout` children (binary search on the per-child bound). The
// dimension with the smallest largest child wins (ties: the least
// replication). Children whose box lists are identical share one subtree
// (a subtree built for a list is correct for every key that needs only that
// list, whatever region it was built for), and so do leaves. Replication is
// bounded: once the boxes held by leaves and pending nodes would exceed
// `max_replication` x the tree's boxes, the remaining nodes become (bigger)
// leaves, so memory stays bounded and the build stays
// O(budget x depth x dims x log). 100K ClassBench rules build in about a
// second into 15-30 MB.
//
// Memory layout (all flat arrays, 32-bit references):
//   nodes_:  64-byte nodes { thr[7], dim, child[8] }. Child j holds the values
//            v with thr[j-1] < v <= thr[j]; unused thresholds are 0xffffffff.
//   blocks_: leaves as runs of blocks of 8 boxes, structure of arrays over
//            the used dimensions only: pos[8], then lo[8], width[8] (hi - lo)
//            per used dimension ((1 + 2D) x 32 bytes); v is inside when
//            v - lo <= width, unsigned: one subtract and one compare. Boxes
//            are in position order across lanes and blocks; padding lanes
//            (the tail of a leaf's last block) hold position kNoMatch, so
//            whether they "match" does not change the answer.
//   A reference with bit 31 clear is a node index; with bit 31 set it is a
//   leaf: bits 27..30 its block count (0: a header block, whose pos[0] holds
//   the count, comes first), bits 0..26 its first block.
//
// Lookup. A burst is processed in groups of 32 keys in a staged loop, tree
// by tree: every unresolved key descends one level per pass and prefetches
// the node (or leaf) it goes to next, so the loads of different keys
// overlap. A leaf is scanned block by block; the first lane (in position order) whose box
// contains the key and whose position is >= start wins. Cost per key: depth
// node visits (one cache line each) + the leaf's blocks up to the first hit
// (about 2D + 2 SIMD compares a block). The scan is specialised at build
// time for the number of used dimensions and the instruction set (scalar,
// AVX2, AVX-512VL), chosen once per classifier; a burst makes one indirect
// call. Keys must hold values within each dimension's field width (as keys
// made from packets do): dimensions that no box restricts are not looked at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "classifier/classifier.h"

namespace nfb {

/// Which instruction set the leaf scan and node search use.
enum class DtreeIsa : uint8_t {
  kAuto,    // the best one this CPU has
  kScalar,  // portable C++
  kAvx2,    // 256-bit integer compares
  kAvx512,  // AVX-512F + VL: compares into mask registers (on 256-bit vectors)
};

/// How the boxes are divided among trees.
enum class DtreePartition : uint8_t {
  kAuto,     // both, keeping the one the cost model finds cheaper
  kNone,     // one tree
  kAddress,  // up to three trees: small source range (< 2^16 addresses);
             // small destination range; the rest
};

inline constexpr unsigned kDtreeMaxTrees = 3;

/// True when this CPU can run `isa` (kAuto and kScalar: always).
bool dtree_isa_supported(DtreeIsa isa) noexcept;
std::string_view dtree_isa_name(DtreeIsa isa) noexcept;

struct DtreeOptions {
  /// A node with at most this many boxes becomes a leaf (1..1024). 16 (two
  /// blocks) measured as fast as 8 on ClassBench with less memory.
  uint32_t leaf_size = 16;
  /// Children a node may have (2..8).
  uint32_t fanout = 8;
  /// Replication budget: the boxes held by a tree's leaves (counting copies)
  /// may not exceed max_replication x its boxes (at least a quarter of all
  /// boxes) + 4096; past it, nodes still to be split become leaves. At
  /// least 1.
  double max_replication = 8.0;
  /// Deepest node level; deeper nodes become leaves (1..64).
  uint32_t max_depth = 48;
  DtreeIsa isa = DtreeIsa::kAuto;
  DtreePartition partition = DtreePartition::kAuto;
};

/// What the build produced (for benchmarks and tuning).
struct DtreeStats {
  size_t nodes = 0;           // internal nodes
  size_t leaves = 0;          // distinct leaves
  size_t leaf_boxes = 0;      // boxes stored in leaves, copies counted
  size_t max_leaf_boxes = 0;  // the largest leaf
  uint32_t depth = 0;         // deepest leaf (root = 0)
  bool budget_hit = false;    // the replication budget stopped some splits
  DtreeIsa isa = DtreeIsa::kScalar;
  uint32_t dims = 0;          // used dimensions
  uint32_t trees = 0;         // trees built (0 when there are no boxes)
  double estimated_cost = 0;  // the build's cost model per sampled key
};

class DtreeClassifier final : public Classifier {
 public:
  /// Builds the trees. Throws std::invalid_argument when the boxes are not
  /// sorted by position, a position is not below rules.rules, an option is
  /// out of range, or the requested ISA is not supported by this CPU.
  explicit DtreeClassifier(const RuleBoxes& rules, const DtreeOptions& options = {});

  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override;
  size_t memory_bytes() const noexcept override;
  std::string_view name() const noexcept override { return "dtree"; }

  const DtreeStats& stats() const noexcept { return stats_; }

  struct View;  // what a lookup kernel reads (internal to dtree.cpp)

  /// One tree node: a cache line.
  struct alignas(64) Node {
    uint32_t thr[7];    // ascending upper bounds of children 0..6; unused: 0xffffffff
    uint32_t dim;       // the dimension this node splits (index into the key)
    uint32_t child[8];  // references (see the header comment)
  };
  /// 32 bytes: one SIMD vector of 8 lanes.
  struct alignas(32) Lane8 {
    uint32_t w[8];
  };

 private:
  using LookupFn = void (*)(const View&, std::span<const ClassifierKey>, std::span<const uint32_t>,
                            std::span<uint32_t>) noexcept;

  std::vector<Node> nodes_;
  std::vector<Lane8> blocks_;  // leaf blocks, (1 + 2D) Lane8 each
  uint32_t trees_ = 0;
  uint32_t roots_[kDtreeMaxTrees] = {};
  uint32_t min_pos_[kDtreeMaxTrees] = {};  // each tree's smallest position
  uint32_t rules_ = 0;                     // positions run 0..rules_-1
  uint32_t dims_[kDims] = {};  // used dimensions, in key order
  uint32_t num_dims_ = 0;
  LookupFn lookup_from_zero_ = nullptr;   // start empty
  LookupFn lookup_from_start_ = nullptr;  // start given
  DtreeStats stats_;
};

}  // namespace nfb
