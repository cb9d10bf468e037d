// IPv4 reassembly (defrag): what the kernel's nf_defrag_ipv4 does at
// PREROUTING priority -400, before raw, whenever conntrack is in use.
//
// Idea: every fragment goes into a table of datagrams under reassembly keyed
// by (source, destination, IP id, protocol); iptables and conntrack then see
// only whole datagrams, one packet each, with their full length. The rules
// are the kernel's (net/ipv4/ip_fragment.c, inet_fragment.c), each one
// measured on a 6.18 kernel in the differential harness (tests/support/kernel_host.h;
// tests/data/scenarios/README.md lists the experiments):
//
//  - Key: (src, dst, id, protocol). The ingress interface is NOT part of it:
//    fragments arriving on two interfaces merge. (The kernel's key also has
//    the defrag user, i.e. the conntrack zone, and the VRF master ifindex;
//    both are constant here.)
//  - A datagram completes when its first fragment (offset 0) and its last
//    (MF clear) are in and the bytes held equal its length, in any arrival
//    order. It goes on as ONE packet with the LAST fragment's ingress
//    interface and timestamp, and the FIRST fragment's (offset 0) link-layer
//    metadata (source MAC, VLAN, pkttype) and IP header: its TTL, id,
//    options; total length rewritten, MF and offset cleared, DF set only if
//    the largest fragment had DF, ECN bits as RFC 3168 5.3 says (CE mixed
//    with ECT gives CE), header checksum recomputed.
//  - Runs: fragments that arrive each exactly at the end of the highest
//    fragment held form one "run"; any other fragment starts a run of its
//    own, and runs never merge. A fragment lying entirely inside one run is a
//    DUPLICATE: it alone is dropped, the datagram is kept. A fragment that
//    intersects held bytes in any other way (partly, or across two runs) is
//    an OVERLAP (RFC 5722): the whole datagram is discarded, and later
//    fragments of it start a new datagram.
//  - Lengths: a non-last fragment's payload is cut down to a multiple of 8;
//    a fragment that is then empty, a last fragment that ends before bytes
//    already held or that disagrees with an earlier last fragment, and a
//    fragment ending beyond a known last fragment discard the whole datagram
//    (BadLength). A datagram whose IP header plus payload exceeds 65535 bytes
//    is discarded when it completes (TooBig); so is one whose fragments mix
//    Not-ECT with ECT/CE (EcnMismatch).
//  - Timeout: a datagram still incomplete ipfrag_time (30 s) after its FIRST
//    ARRIVING fragment is discarded (later fragments do not extend it).
//    Expiry follows packet timestamps, never the wall clock.
//  - Memory: while the memory held exceeds ipfrag_high_thresh (4 MiB), every
//    fragment is dropped (existing datagrams are kept); a limit of 0 drops
//    every fragment, as in the kernel.
// Not modelled: ipfrag_max_dist (64; a datagram whose source sent more than
// 64 other fragments since its last one is restarted), and the kernel's
// exact memory figure (it charges each fragment's skb truesize, which depends
// on the driver's buffers; here a fragment is charged the arena blocks that
// hold its payload, 512 bytes each, which is of the same order).
//
// Memory layout (all allocated at construction, nothing per packet):
//   slots_    max_datagrams Datagram records (key, lengths, flags, the first
//             fragment's IP header and link metadata, list heads), a free
//             stack, and a bucket array of chain heads (power of two >=
//             max_datagrams); datagrams are also on a doubly linked list in
//             arrival order, which is deadline order (one timeout for all).
//   arena_    ceil(memory_limit / 512) + 129 blocks of 512 bytes. A fragment's
//             payload sits in a chain of its own blocks (block_next_); the
//             fragment record (offset, length, next fragment) is kept in side
//             arrays at the index of its first block. Since a fragment is
//             accepted only while memory <= memory_limit, and one fragment
//             needs at most 129 blocks, the arena never runs out.
//   runs      a pool with one record per block (a run holds at least one
//             fragment, so there are never more runs than blocks in use),
//             each datagram's runs on a singly linked list sorted by offset.
//   output_   output_slots buffers of kDefragOutputSlotBytes, used in turn for
//             completed datagrams: a result's frame stays valid until
//             output_slots more datagrams have completed.
//
// Cost: add() is O(1) for in-order fragments (hash, chain walk, append to
// the tail run, copy the payload once); an out-of-order fragment walks its
// datagram's run list. Completion copies the datagram once more into an
// output buffer and parses it (packet/frame_parser.h). No allocation and
// no exceptions after construction.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/enum_names.h"
#include "packet/frame_parser.h"
#include "packet/packet_key.h"

namespace nfb {

// Why a fragment was dropped, in ONE list:  X(enumerator, name, description)
#define NFB_DEFRAG_DROP_LIST(X)                                                                     \
  X(None, "none", "not dropped")                                                                    \
  X(Duplicate, "duplicate", "lies inside a run of fragments already held: dropped alone")           \
  X(Overlap, "overlap", "overlaps held bytes of its datagram (RFC 5722): the datagram is discarded") \
  X(BadLength, "bad_length",                                                                        \
    "empty after trimming to 8 bytes, or an end that contradicts the datagram's last fragment: "    \
    "the datagram is discarded")                                                                    \
  X(TooBig, "too_big", "the reassembled datagram would exceed 65535 bytes: discarded")              \
  X(EcnMismatch, "ecn_mismatch", "Not-ECT fragments mixed with ECT or CE ones (RFC 3168 5.3)")      \
  X(BadDatagram, "bad_datagram",                                                                    \
    "the reassembled datagram's L4 header is malformed (the frame parser rejects it)")              \
  X(Timeout, "timeout", "incomplete when ipfrag_time ran out")                                      \
  X(MemoryLimit, "memory_limit", "fragment memory above ipfrag_high_thresh")                        \
  X(TableFull, "table_full", "no free datagram slot (the model's max_datagrams)")                   \
  X(BadFrame, "bad_frame", "not a fragment, or its key does not fit its frame (caller error)")

// defrag_drop_name(): short snake_case name ("overlap"); "invalid" out of range.
NFB_NAMED_ENUM(DefragDrop, kDefragDropCount, defrag_drop_name, defrag_drop_description,
               NFB_DEFRAG_DROP_LIST)

struct DefragConfig {
  uint64_t timeout_ns = 30'000'000'000ULL;  // net.ipv4.ipfrag_time (30 s)
  uint32_t memory_limit = 4U << 20;         // net.ipv4.ipfrag_high_thresh (4 MiB); 0 drops all
  uint32_t max_datagrams = 4096;            // datagrams under reassembly at once (>= 1)
  uint32_t output_slots = 64;               // completed datagrams kept readable (>= 1)
};

/// Link header bytes a completed datagram's frame can carry in front of its
/// IP header (Ethernet with two VLAN tags needs 22, Linux cooked v2 20).
inline constexpr uint32_t kDefragMaxLinkHeader = 64;
/// One output buffer: link header plus the largest IPv4 datagram.
inline constexpr uint32_t kDefragOutputSlotBytes = kDefragMaxLinkHeader + 65535;

enum class DefragStatus : uint8_t {
  Held,      // kept: its datagram is not complete yet
  Complete,  // it completed its datagram: frame/len/key describe the datagram
  Dropped,   // dropped (reason), possibly with the datagram it belonged to
};

struct DefragResult {
  DefragStatus status = DefragStatus::Held;
  DefragDrop reason = DefragDrop::None;  // Dropped: why
  /// Complete: fragments the datagram was made of, this one included.
  uint16_t fragments = 0;
  /// Fragments held before this call that this call discarded with their
  /// datagram (overlap, bad length, too big, ECN, bad datagram); counted
  /// under `reason`. This fragment itself is not included.
  uint16_t discarded = 0;
  /// Fragments of other datagrams that timed out at this call's timestamp.
  uint32_t expired = 0;
  /// Complete: the output buffer used (0 .. output_slots - 1).
  uint32_t output_slot = 0;
  /// Complete: the completing fragment's link header (its first l3_off
  /// bytes, verbatim: same link type) followed by the reassembled IPv4
  /// datagram; `len` = key.l3_off + key.l3_len. Writable (NAT rewrites it).
  uint8_t* frame = nullptr;
  uint32_t len = 0;
  /// Complete: the datagram's key, as parse_frame() of `frame` would give it
  /// but with the first fragment's link metadata (src_mac, VLAN, pkttype and
  /// their flags) and the completing fragment's ifindex.
  PacketKey key;
};

/// Counters since construction. Fragments are counted once each: every
/// add() ends up in exactly one of merged, dropped[] or (still) held.
struct DefragStats {
  uint64_t fragments = 0;         // add() calls (the kernel's ReasmReqds)
  uint64_t datagrams = 0;         // datagrams completed (ReasmOKs)
  uint64_t merged = 0;            // fragments that became part of a completed datagram
  std::array<uint64_t, kDefragDropCount> dropped{};  // fragments, by reason
  std::array<uint64_t, kDefragDropCount> failed{};   // datagrams discarded, by reason
  uint64_t held = 0;              // fragments held now
};

class DefragTable {
 public:
  /// Allocates everything. Throws std::invalid_argument when max_datagrams
  /// or output_slots is 0 or above 2^24.
  explicit DefragTable(const DefragConfig& config = {});

  /// One fragment (key.is_fragment(), key from parse_frame() of frame with
  /// status Ok) arriving at now_ns. Expires what timed out first. Copies what
  /// it keeps: `frame` may be reused after the call. noexcept, no allocation.
  DefragResult add(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns) noexcept;

  /// Discards every datagram whose timeout ran out by now_ns; returns how
  /// many fragments went with them (counted as dropped by Timeout).
  uint32_t expire(uint64_t now_ns) noexcept;

  const DefragStats& stats() const noexcept { return stats_; }
  const DefragConfig& config() const noexcept { return config_; }
  /// Datagrams under reassembly now.
  uint32_t datagrams() const noexcept { return in_use_; }
  /// Bytes charged now (arena blocks held, 512 bytes each).
  uint64_t memory() const noexcept { return memory_; }

 private:
  static constexpr uint32_t kNil = 0xffffffffU;
  static constexpr uint32_t kBlockBytes = 512;

  struct Datagram {
    uint32_t src = 0;
    uint32_t dst = 0;
    uint16_t id = 0;
    uint8_t proto = 0;
    uint8_t flags = 0;            // kFirstIn, kLastIn
    uint32_t bucket_next = kNil;  // chain of the hash bucket
    uint32_t age_prev = kNil;     // arrival-order list
    uint32_t age_next = kNil;
    uint64_t deadline_ns = 0;
    uint32_t len = 0;             // payload length known so far (the last fragment's end)
    uint32_t meat = 0;            // payload bytes held
    uint32_t runs = kNil;         // run list, sorted by offset
    uint32_t tail_run = kNil;     // the run with the highest end
    uint32_t frags = kNil;        // fragment records (first blocks), newest first
    uint32_t blocks = 0;          // arena blocks held
    uint16_t nfrags = 0;
    uint16_t max_size = 0;        // largest fragment (IP header + payload)
    uint16_t max_df_size = 0;     // largest fragment with DF
    uint8_t ecn = 0;              // OR of 1 << (tos & 3) over the fragments
    uint8_t head_ihl = 0;         // the first fragment's IP header length
    std::array<uint8_t, 60> head_hdr{};
    std::array<uint8_t, 6> head_mac{};
    uint16_t head_vlan = 0;
    uint8_t head_l2flags = 0;     // key_flag::kMac | kVlan | kQinQ of the first fragment
    PktType head_pkttype = PktType::Host;
  };
  static constexpr uint8_t kFirstIn = 0x01;
  static constexpr uint8_t kLastIn = 0x02;

  enum class Insert : uint8_t { Ok, Duplicate, Overlap };

  uint32_t hash(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto) const noexcept;
  uint32_t find(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto, uint32_t bucket) const noexcept;
  uint32_t create(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto, uint32_t bucket,
                  uint64_t now_ns) noexcept;
  Insert insert_run(Datagram& d, uint32_t off, uint32_t end) noexcept;
  bool store(Datagram& d, uint32_t off, uint32_t n, const uint8_t* payload) noexcept;
  void release(uint32_t slot) noexcept;
  // These fill `r` (the result add() returns) and return it.
  DefragResult& discard(uint32_t slot, DefragDrop reason, bool current_held, DefragResult& r) noexcept;
  DefragResult& complete(uint32_t slot, const PacketKey& key, const uint8_t* frame, DefragResult& r) noexcept;
  DefragResult& drop(DefragDrop reason, DefragResult& r) noexcept;

  DefragConfig config_;
  std::vector<Datagram> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> buckets_;
  uint32_t bucket_mask_ = 0;
  uint32_t age_head_ = kNil;  // oldest
  uint32_t age_tail_ = kNil;  // newest
  uint32_t in_use_ = 0;

  std::vector<uint8_t> arena_;
  std::vector<uint32_t> block_next_;  // chain within a fragment; the free list
  std::vector<uint16_t> frag_off_;    // at a fragment's first block: its payload offset
  std::vector<uint16_t> frag_len_;    // payload bytes
  std::vector<uint32_t> frag_next_;   // next fragment record of the datagram
  uint32_t free_block_ = kNil;
  uint32_t free_blocks_ = 0;
  uint64_t memory_ = 0;

  std::vector<uint32_t> run_start_;
  std::vector<uint32_t> run_end_;
  std::vector<uint32_t> run_next_;
  uint32_t free_run_ = kNil;

  std::vector<uint8_t> output_;
  uint32_t next_output_ = 0;

  uint64_t now_ns_ = 0;  // latest timestamp seen (time never goes backwards)
  DefragStats stats_;
};

}  // namespace nfb
