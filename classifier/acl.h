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
// Key record (what rte_acl reads for one key; 24 bytes, network byte order,
// packed per burst into a stack buffer):
//
//    0 proto   1..3 zero   4 src_ip   8 dst_ip   12 src_port  14 dst_port
//   16 in_iface  18 out_iface   20 ct_state (as a 32-bit number)
//
// and, only when some box restricts one of the other dimensions:
//
//   24 ct_orig_src  28 ct_orig_dst  32 ct_repl_src  36 ct_repl_dst  40 mark
//   44 connmark  48 ct_orig_src_port  50 ct_orig_dst_port  52 ct_repl_src_port
//   54 ct_repl_dst_port  56 length  58 icmp  60 ct_proto  64 tcp_flags
//   68 pkttype  72 src_addrtype  76 dst_addrtype  80 ct_dir  84 ct_expire
//   (8-bit ones as 32-bit numbers; 88 bytes)
//
// rte_acl's first field must be one byte (proto); every later "input index"
// is read 4 bytes at a time and so must cover exactly 4 bytes: {src_ip},
// {dst_ip}, {src_port, dst_port}, {in_iface, out_iface}, {ct_state}. Only
// the groups some box restricts become rte_acl fields (specialised at build
// time); the packer writes the whole record regardless (a few stores).
// Field types follow DPDK's test-acl where the boxes allow: an address is a
// MASK (prefix) field when every box is a prefix there, else a RANGE field;
// the protocol is a BITMASK field when every box is exact or any, else
// RANGE; ports, interfaces and ct_state are RANGE fields. One category.
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
// boxes for start scans, 40 B each). Build-time memory is not included; it
// is freed when the build ends.
//
// Cost per lookup burst: keys are processed 256 at a time (the burst size
// DPDK's test-acl uses): pack 24 B per key, one rte_acl_classify() per
// context that still has unresolved keys, then a pass over the results.
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
};

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

  /// Number of rte_acl contexts (0 when no box can match anything).
  size_t contexts() const noexcept { return contexts_.size(); }
  /// How many times a group of boxes was halved because rte_acl_build()
  /// gave up on it (see "Contexts").
  uint32_t context_splits() const noexcept { return splits_; }
  /// EAL heap bytes the contexts hold (the rte_acl part of memory_bytes()).
  size_t acl_bytes() const noexcept;

 private:
  struct Context {
    rte_acl_ctx* ctx = nullptr;
    uint32_t first_position = 0;  // positions [first_position, end_position); contexts tile [0, rules)
    uint32_t end_position = 0;
    size_t heap_bytes = 0;
  };

  uint32_t scan(const ClassifierKey& key, uint32_t from, uint32_t end) const noexcept;
  void free_contexts() noexcept;

  std::vector<Context> contexts_;
  std::vector<Box> boxes_;           // all boxes, for scans from a start position
  std::vector<uint32_t> first_box_;  // per position: first box of position >= it
  uint32_t rules_ = 0;
  uint32_t splits_ = 0;
  bool extra_ = false;        // some field beyond the first 24 record bytes: records are 88 bytes
  size_t record_bytes_ = 24;
  AclAlgorithm algorithm_ = AclAlgorithm::kScalar;
};

}  // namespace nfb
