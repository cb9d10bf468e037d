// DPDK's rte_acl behind the Classifier interface ("acl"): the yardstick the
// compiled classifiers (dtree, tuple) are measured against, answering
// exactly what LinearClassifier answers.
//
// Idea. rte_acl (DPDK 22.11) compiles rules into a trie that consumes the
// key one byte at a time, each node a 256-way transition compressed into
// DPDK's node kinds, and runs several keys through it at once with SIMD
// (scalar, sse, avx2, avx512x16, avx512x32). We do not reimplement it: this
// class turns boxes into rte_acl rules, keys into the byte records rte_acl
// reads, and rte_acl's "highest priority match" back into "smallest
// position >= start".
//
// Key record (what rte_acl reads for one key, network byte order, packed
// per burst into a stack buffer). Its layout is computed at build from the
// dimensions some (non-empty) box restricts, clipped to their width; the
// others are neither fields nor written. rte_acl reads the first field as
// one byte and every later "input index" 4 bytes at a time, so:
//
//   byte 0      the protocol, or a pad when no box restricts it (bytes 1..3
//               are never read nor written)
//   then        4-byte groups at 4, 8, 12, ...: a 32-bit dimension alone;
//               16-bit ones in their pairs (src/dst port, in/out iface,
//               the ct ports, length/icmp), and those whose partner is
//               unrestricted paired with each other; 8-bit ones four to a
//               group; the last lone 16-bit one with up to two 8-bit ones
//               left over. Groups are ordered by their lowest dimension.
//
// A group short of 4 bytes is filled with pads: fields every rule leaves
// open (BITMASK, mask 0), written as 0. The last lone 16-bit dimension, if
// it takes no 8-bit ones, keeps its pair slot, the pad in its partner's. So
// ClassBench keeps the layout it always had, 16 bytes:
//
//    0 proto   4 src_ip   8 dst_ip   12 src_port (or a pad)   14 dst_port
//
// and is packed straight-line (a pad port slot gets the key's port, which
// every rule accepts); any other layout by a loop over its fields
// (at most 72 bytes, all 28 dimensions; at most 64 fields, rte_acl's
// limit). layout() names it. Field types follow DPDK's test-acl where the
// boxes allow: a 32-bit dimension is a MASK (prefix) field when every box
// is a prefix there, else RANGE; an 8-bit one (the protocol included) a
// BITMASK field when every box is a bit prefix (exact and any included),
// else RANGE; 16-bit ones are RANGE fields. One category.
//
// Priority. rte_acl reports the matching rule of HIGHEST priority. A box of
// position p becomes a rule with priority RTE_ACL_MAX_PRIORITY - p and
// userdata p + 1 (userdata 0 means no match), so at most 2^29 - 1 positions.
// The boxes of one position share both, so ties cannot pick a wrong answer.
//
// Start positions. rte_acl cannot answer "first match at or after p". Keys
// are classified regardless of start; when the match m is >= start (or there
// is none) it is the answer, since nothing before m matches. Only when
// m < start does the lookup scan this class's own copy of the boxes from
// start onward, like the linear walk: O(boxes after start) for that key, the
// price of asking rte_acl something it was not built for.
//
// Contexts. With max_boxes_per_context = 0 (the default, DPDK's own way) all
// boxes go into one rte_acl context, and rte_acl itself splits them into up
// to 8 tries. Its build is where the cost is. Measured on the (shared, busy)
// 2-core build machine, one context, avx512x16:
//
//   ClassBench 100K   build   peak RSS (malloc, freed after)   run-time (EAL heap)
//   acl1              10 s    2.1 GB                           0.44 GB
//   fw1               29 s    3.1 GB                           0.95 GB
//   ipc1              65 s   11.2 GB                           0.86 GB
//
// so the EAL needs -m 2048 or more for them (start_dpdk_eal's default heap
// is 1 GiB). rte_acl_config::max_size (AclOptions::max_size) does not help
// here: it caps only the RUN-TIME structure, and a non-zero cap makes
// rte_acl_build() start from larger tries (node limit 16K instead of its
// default 2K) and halve them until the result fits, a full build per
// attempt, so it costs more build time and never less build memory. What
// bounds the build is splitting the boxes: max_boxes_per_context = K cuts
// them, at position boundaries, into consecutive groups of about K boxes, one
// context each, built one after the other (each build's memory is freed
// before the next). A lookup asks the contexts in position order and stops
// for a key at the first context that answers, so a key that matches early
// costs one rte_acl walk and a key that matches late or never costs one per
// context; a start > 0 skips the contexts before it and scans at most the
// rest of its own context. Smaller K: less build memory and time, usually
// slower lookups (ipc1 100K with K = 10000: 10 contexts, 16 s, 1.6 GB peak,
// about half the lookup rate of one context; fw1 100K with K = 25000 built in
// 6 s, 0.55 GB, and even looked up faster than one context: its 0.95 GB
// run-time structure missed the caches more).
//
// Whatever K, a group rte_acl_build() gives up on with -ENOMEM (the rules
// need more than its 8 tries, which random ranges in many dimensions soon
// do, or memory ran out, the EAL heap included) is halved at a position
// boundary and each half built again (context_splits() counts it; rte_acl
// logs "Exceeded max number of tries"); only when the boxes of a single
// position cannot be built does the construction fail.
//
// Memory. memory_bytes() = what the rte_acl contexts hold in the EAL heap
// (context, rte_acl's copy of the rules, run-time tries; measured as the
// heap's growth across each context's create and build, so concurrent EAL
// heap users in other threads would blur it) + this class's arrays (the
// boxes for start scans, 224 B each; the record's fields). Build-time
// memory is not included; it is freed when the build ends.
//
// Cost per lookup burst: keys are processed 256 at a time (the burst size
// DPDK's test-acl uses): pack the record per key (16 B for ClassBench),
// one rte_acl_classify() per context that still has unresolved keys, then
// a pass over the results.
// No allocation, no exception, one indirect call per context and 256 keys.
//
// The EAL must run before a context is created: the constructor starts it
// with start_dpdk_eal() defaults if nobody has; to choose EAL options (such
// as --force-max-simd-bitwidth=512, which avx512x32 needs) call
// start_dpdk_eal() first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "classifier/classifier.h"

struct rte_acl_ctx;

namespace nfb {

/// rte_acl's classify implementations (enum rte_acl_classify_alg). kBest:
/// the first of avx512x32, avx512x16, avx2, sse, scalar that this CPU and the
/// EAL's SIMD width allow (the order DPDK's own default uses). neon and
/// altivec exist for other CPUs; on x86 they are refused.
enum class AclAlgorithm : uint8_t { kBest, kScalar, kSse, kAvx2, kAvx512x16, kAvx512x32, kNeon, kAltivec };

/// "best", "scalar", "sse", "avx2", "avx512x16", "avx512x32", "neon", "altivec".
std::string_view acl_algorithm_name(AclAlgorithm a) noexcept;
/// The inverse of acl_algorithm_name(); nullopt for anything else.
std::optional<AclAlgorithm> parse_acl_algorithm(std::string_view name) noexcept;

struct AclOptions {
  AclAlgorithm algorithm = AclAlgorithm::kBest;
  /// rte_acl_config::max_size of each context: a cap on its run-time
  /// structure in bytes (0 = none). A build over the cap fails (-ERANGE)
  /// after retrying with smaller tries; see "Contexts" above.
  size_t max_size = 0;
  /// At most about this many boxes per rte_acl context (0 = all in one). A
  /// context always holds all boxes of a position, so one may exceed it.
  uint32_t max_boxes_per_context = 0;
  /// Fewer boxes than this (that can match anything) get no rte_acl
  /// context: lookups scan them in position order, as LinearClassifier
  /// does (0 = always a context). Every context costs its create and build
  /// (about 0.5 ms of this machine's time, most of it zeroing build memory)
  /// and rte_acl_create() and rte_acl_free() search a process-wide list of
  /// context names, so a host of many small chains (a kube-proxy node has
  /// three per service: 30K contexts took 46 s at 10K services) pays
  /// quadratically for contexts whose walk is no faster than a scan of a
  /// few boxes. The pipeline's chains use kAclChainMinBoxes.
  uint32_t min_boxes = 0;
};

/// AclOptions::min_boxes for a pipeline's chains (chain_boxes.h).
inline constexpr uint32_t kAclChainMinBoxes = 8;

class AclClassifier final : public Classifier {
 public:
  /// Builds one rte_acl context per group of boxes (see above). Throws
  /// std::invalid_argument naming the reason when the boxes are not sorted
  /// by position, a position is >= rules.rules, there are more positions
  /// than rte_acl priorities, rte_acl refuses the rules or the build (out of
  /// memory, over max_size), or the algorithm is not available; throws
  /// DpdkEalError (dpdk_eal.h) when it had to start the EAL and could not.
  /// Key values are taken to lie within field_bits() of their dimension;
  /// box ranges are clipped to it.
  explicit AclClassifier(const RuleBoxes& rules, const AclOptions& options = {});
  ~AclClassifier() override;
  AclClassifier(const AclClassifier&) = delete;
  AclClassifier& operator=(const AclClassifier&) = delete;

  void lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
              std::span<uint32_t> result) const noexcept override;
  size_t memory_bytes() const noexcept override;
  std::string_view name() const noexcept override { return "acl"; }

  /// The classify implementation in use (never kBest).
  AclAlgorithm algorithm() const noexcept { return algorithm_; }
  /// Switches every context to another implementation (control plane: not
  /// while lookups run). Throws std::invalid_argument if it is not available.
  void set_algorithm(AclAlgorithm a);

  /// Number of rte_acl contexts (0 when no box can match anything, or when
  /// there are fewer than AclOptions::min_boxes).
  size_t contexts() const noexcept { return contexts_.size(); }
  /// True when the boxes were too few for a context and are scanned.
  bool scanned() const noexcept { return scanned_; }
  /// How many times a group of boxes was halved because rte_acl_build()
  /// gave up on it (see "Contexts").
  uint32_t context_splits() const noexcept { return splits_; }
  /// EAL heap bytes the contexts hold (the rte_acl part of memory_bytes()).
  size_t acl_bytes() const noexcept;
  /// Bytes of the key record rte_acl reads (0 when there are no contexts).
  size_t record_bytes() const noexcept { return record_bytes_; }
  /// The record's rte_acl fields, space-separated, each as
  /// name:type@offset/bytes ("proto:bitmask@0/1 src_ip:mask@4/4 ..."; the
  /// first is "dummy" when no box restricts the protocol; "" when there are
  /// no contexts).
  const std::string& layout() const noexcept { return layout_; }

 private:
  struct Context {
    rte_acl_ctx* ctx = nullptr;
    uint32_t first_position = 0;  // positions [first_position, end_position); contexts tile [0, rules)
    uint32_t end_position = 0;
    size_t heap_bytes = 0;
  };

  // One value of the key record: key.v[dim] & mask, big-endian, `bytes`
  // wide at `offset` (the dummy first byte: mask 0).
  struct RecordField {
    uint32_t mask;
    uint8_t dim;
    uint8_t bytes;
    uint8_t offset;
  };

  uint32_t scan(const ClassifierKey& key, uint32_t from, uint32_t end) const noexcept;
  void pack_record(const ClassifierKey& key, uint8_t* out) const noexcept;
  void free_contexts() noexcept;

  std::vector<Context> contexts_;
  std::vector<Box> boxes_;           // all boxes, for scans from a start position
  std::vector<uint32_t> first_box_;  // per position: first box of position >= it
  uint32_t rules_ = 0;
  uint32_t splits_ = 0;
  bool scanned_ = false;  // fewer live boxes than min_boxes: no context, lookups scan boxes_
  std::vector<RecordField> record_fields_;  // in record order, pads included
  bool five_tuple_ = false;  // the record is ClassBench's: packed straight-line
  size_t record_bytes_ = 0;
  std::string layout_;
  AclAlgorithm algorithm_ = AclAlgorithm::kScalar;
};

}  // namespace nfb
