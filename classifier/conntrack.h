// Connection tracking: the table of flows, and the ctstate of every packet,
// decided as Linux's nf_conntrack decides it (facts and the kernel
// experiments behind them: classifier/conntrack.md).
//
// Idea: a flow is an entry with two tuples, ORIGINAL (as its first packet
// saw it) and REPLY (the inverse of ORIGINAL, unless NAT changed it). Both
// tuples are indexed by one hash table, so a packet finds its entry from
// either side and learns its direction. process() runs at the conntrack hook
// (PREROUTING, or OUTPUT for local packets): it finds or creates the entry,
// runs the protocol's tracker (TCP state machine and windows, UDP, ICMP,
// generic) and returns the packet's ctstate:
//
//   NEW          original direction, no reply seen yet (also a picked-up TCP ACK)
//   ESTABLISHED  reply direction, or original once a reply was seen
//   RELATED      an ICMP error about a known flow
//   INVALID      no usable entry: malformed, bad checksum, TCP flag/state/window
//                violations, ICMP error about no flow, ICMP that cannot open one
//   (UNTRACKED is the pipeline's business: raw's CT --notrack skips conntrack.)
//
// Two phases per packet, as in the kernel: a new entry is created
// UNCONFIRMED by process() and becomes visible to lookups only when
// confirm() runs at the end of the packet's path (POSTROUTING or INPUT); if
// the packet is dropped on the way, discard() frees it and the flow leaves no
// trace. Every process() must be followed by exactly one confirm() or
// discard() for its result before the next packet is processed (one packet at
// a time: conntrack state is inherently sequential).
//
// Memory layout: a pool of `max_entries` CtEntry slots allocated at
// construction, a free-slot stack, a bucket array of chain heads (one chain
// node per entry and direction: node = slot * 2 + dir; the links live in a
// side array so CtEntry holds only flow data), and a timing wheel of
// 2^14 slots of 2^26 ns (~67 ms, ~18 min per turn) whose doubly linked lists
// hold every confirmed entry by deadline.
//
// Time is the capture's clock (packet timestamps, ns), never the wall clock;
// it never goes backwards (an earlier timestamp counts as the latest one
// seen). An entry whose deadline has passed is gone: lookups skip and free
// it, the dump omits it, and when the table is full the wheel frees every
// expired entry before anything else is tried.
//
// Table full (max_entries in use): expired entries are reaped first; then,
// as the kernel's early_drop does, the bucket of the new ORIGINAL tuple and
// the 7 buckets after it are scanned in order, and in the first one holding
// any non-ASSURED confirmed entry all such entries are evicted; if none is
// found the packet is DROPPED (verdict Drop, "nf_conntrack: table full,
// dropping packet"). The kernel's hash is keyed at random per boot, so which
// flows share buckets differs from any one kernel run; the rule is the same.
//
// Cost per packet: one hash, a short chain walk (both directions share one
// table sized like nf_conntrack_buckets), the protocol tracker, O(1) wheel
// relinking when the timeout changes. No allocation and no exceptions on the
// packet path (process, confirm, discard, find, tuple_taken, state_bits).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "classifier/conntrack_tcp.h"
#include "classifier/packet_key.h"
#include "classifier/rule.h"

namespace nfb {

/// One direction of a flow. Host byte order, no padding (compared and
/// hashed as 16 bytes).
///   TCP/UDP: addresses, ports, protocol.
///   ICMP:    addresses, sport = the query identifier, dport = 0, and the
///            type and code (an echo request's reply tuple has type echo-reply).
///   other:   addresses and protocol only (the kernel's generic tracker).
struct Tuple {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint8_t pad = 0;  // always 0

  /// The tuple of the other direction: addresses and ports swapped; ICMP
  /// keeps the identifier and maps the query type to its answer (echo 8<->0,
  /// timestamp 13<->14, info 15<->16, address mask 17<->18). False (out
  /// untouched) for an ICMP type without an answer, which cannot be tracked.
  bool invert(Tuple& out) const noexcept;

  friend constexpr bool operator==(const Tuple&, const Tuple&) noexcept = default;
};
static_assert(sizeof(Tuple) == 16);
static_assert(std::has_unique_object_representations_v<Tuple>);

/// The ORIGINAL tuple of a parsed packet (ICMP errors included: their own
/// type/code, id 0). Does not look at the frame.
Tuple tuple_of(const PacketKey& key) noexcept;

/// Entry status bits, numbered as the kernel's IPS_* (the low four are the
/// ones `--ctstatus` tests, see CtStatusBit in rule.h).
namespace ct_status {
inline constexpr uint32_t kExpected = 1U << 0;
inline constexpr uint32_t kSeenReply = 1U << 1;
inline constexpr uint32_t kAssured = 1U << 2;
inline constexpr uint32_t kConfirmed = 1U << 3;
inline constexpr uint32_t kSrcNat = 1U << 4;  // a source manip is bound (REPLY tuple changed)
inline constexpr uint32_t kDstNat = 1U << 5;  // a destination manip is bound
inline constexpr uint32_t kSrcNatDone = 1U << 7;  // the nat table was consulted for SNAT
inline constexpr uint32_t kDstNatDone = 1U << 8;  // ... for DNAT
inline constexpr uint32_t kDying = 1U << 9;  // deleted from the table; freed when its packet is done
}  // namespace ct_status

/// A flow. Read it through ConntrackTable::entry(); later stages (NAT,
/// CONNMARK) may change the REPLY tuple of an unconfirmed entry (see
/// set_reply_tuple), the NAT status bits and the mark.
struct CtEntry {
  std::array<Tuple, 2> tuple{};  // [dir_index(CtDir::Original)], [dir_index(CtDir::Reply)]
  uint64_t deadline_ns = 0;  // confirmed: expiry on the capture clock
  uint64_t start_ns = 0;     // timestamp of the packet that created it
  uint64_t id = 0;           // creation number, from 1: dump order
  uint32_t status = 0;       // ct_status bits
  uint32_t mark = 0;         // ctmark
  uint32_t timeout_s = 0;    // unconfirmed: the timeout that confirm() starts
  TcpConn tcp{};             // TCP entries only

  uint8_t proto() const noexcept { return tuple[0].proto; }
  bool has(uint32_t status_bits) const noexcept { return (status & status_bits) == status_bits; }
};

/// Timeouts (s) and switches: the net.netfilter.nf_conntrack_* sysctls.
struct CtConfig {
  uint32_t max_entries = 262144;  // nf_conntrack_max (>= 1)
  uint32_t buckets = 0;           // nf_conntrack_buckets; 0 = max_entries
  bool checksum = true;           // nf_conntrack_checksum
  TcpSettings tcp{};
  uint32_t udp_timeout = 30;
  uint32_t udp_stream_timeout = 120;  // after a reply, once the flow is older than 2 s
  uint32_t icmp_timeout = 30;
  uint32_t generic_timeout = 600;
  uint64_t hash_seed = 0x6e66'6265'6e63'6821ULL;  // any value; fixed for reproducible runs
};

// Every reason a packet gets INVALID or is dropped, in ONE list:
//   X(enumerator, counter name, description)
#define NFB_CT_REASON_LIST(X)                                                                   \
  X(None, "none", "no problem")                                                                 \
  X(Fragment, "fragment", "non-first fragment: conntrack sees reassembled datagrams only")      \
  X(Truncated, "truncated", "L4 header missing or cut short")                                   \
  X(BadChecksum, "bad_checksum", "TCP/UDP/ICMP checksum wrong (nf_conntrack_checksum=1)")       \
  X(TcpBadFlags, "tcp_bad_flags", "TCP flag combination conntrack rejects (SYN+FIN, ...)")      \
  X(TcpCannotOpen, "tcp_cannot_open", "no entry, and neither a SYN nor a loose pick-up ACK")    \
  X(TcpStateTable, "tcp_state", "TCP state table says INVALID for this flag and state")         \
  X(TcpInvalidRst, "tcp_invalid_rst", "RST below the peer's highest acknowledgement")           \
  X(TcpSeqOverWindow, "tcp_seq_over_window", "TCP data beyond the receiver's window")          \
  X(TcpAckOverEnd, "tcp_ack_over_end", "TCP ACK of data not sent yet")                          \
  X(UdpBadLength, "udp_bad_length", "UDP length field beyond the packet or below 8")            \
  X(IcmpUnknownType, "icmp_unknown_type", "ICMP type above 18")                                 \
  X(IcmpCannotOpen, "icmp_cannot_open", "ICMP neither error nor query, or an answer w/o query") \
  X(IcmpErrorInner, "icmp_error_inner", "ICMP error whose embedded header cannot be keyed")     \
  X(IcmpErrorNoFlow, "icmp_error_no_flow", "ICMP error about no known flow")                    \
  X(IcmpErrorDaddr, "icmp_error_daddr", "ICMP error not addressed to the flow's endpoint")      \
  X(TableFull, "table_full", "nf_conntrack_max reached, nothing to evict: packet dropped")

enum class CtReason : uint8_t {
#define NFB_CT_REASON_ENUM(name, str, desc) name,
  NFB_CT_REASON_LIST(NFB_CT_REASON_ENUM)
#undef NFB_CT_REASON_ENUM
};
inline constexpr std::size_t kCtReasonCount = 0
#define NFB_CT_REASON_COUNT(name, str, desc) +1
    NFB_CT_REASON_LIST(NFB_CT_REASON_COUNT)
#undef NFB_CT_REASON_COUNT
    ;
/// Stable snake_case name ("tcp_state"); "invalid" when out of range.
const char* ct_reason_name(CtReason r) noexcept;
const char* ct_reason_description(CtReason r) noexcept;

// Table counters, in ONE list: X(field, description)
#define NFB_CT_COUNTER_LIST(X)                                                      \
  X(found, "packets whose tuple matched an entry")                                  \
  X(created, "entries created (unconfirmed), including ones later discarded")       \
  X(inserted, "entries confirmed into the table")                                   \
  X(invalid, "packets given ctstate INVALID")                                       \
  X(ignored, "TCP packets let through without any state change (IGNORE)")           \
  X(related, "ICMP errors RELATED to an entry")                                     \
  X(drop, "packets dropped by conntrack: table full, or a clash at confirm")        \
  X(early_drop, "non-ASSURED entries evicted to make room")                         \
  X(expired, "entries removed because their timeout passed")                        \
  X(insert_failed, "confirmations refused because a tuple was taken meanwhile")     \
  X(reopened, "TCP entries replaced by a SYN reopening a closed connection")        \
  X(killed, "TCP entries deleted by a RST before any reply")

struct CtCounters {
#define NFB_CT_COUNTER_FIELD(field, desc) uint64_t field = 0;
  NFB_CT_COUNTER_LIST(NFB_CT_COUNTER_FIELD)
#undef NFB_CT_COUNTER_FIELD
  std::array<uint64_t, kCtReasonCount> by_reason{};  // INVALID and dropped packets per reason

  friend bool operator==(const CtCounters&, const CtCounters&) noexcept = default;
};

enum class CtVerdict : uint8_t {
  Accept,  // continue the packet's path (whatever its ctstate)
  Drop,    // conntrack drops the packet (table full); later hooks never see it
};

inline constexpr uint32_t kNoEntry = 0xffffffffU;

/// What conntrack decided for one packet.
struct CtResult {
  uint32_t entry = kNoEntry;  // the packet's entry (none when INVALID or dropped)
  CtDir dir = CtDir::Original;
  uint8_t state = kCtInvalid;  // exactly one of kCtNew, kCtEstablished, kCtRelated, kCtInvalid
  CtVerdict verdict = CtVerdict::Accept;
  CtReason reason = CtReason::None;  // why INVALID or dropped
  bool created = false;  // this packet created the entry; it is unconfirmed until confirm()
  TcpReason tcp_reason = TcpReason::None;  // TCP: why ignored or invalid, in detail

  bool has_entry() const noexcept { return entry != kNoEntry; }
};

class ConntrackTable {
 public:
  /// Allocates the whole pool and the bucket array. Throws
  /// std::invalid_argument when max_entries is 0 or above 2^30, or buckets
  /// is above 2^30.
  explicit ConntrackTable(const CtConfig& config = {});

  const CtConfig& config() const noexcept { return config_; }

  /// The conntrack hook for one parsed IPv4 packet (`key` from parse_frame()
  /// with status Ok on `frame`; a key with a missing L4 header gives
  /// INVALID). `verify_checksum`: the packet came from outside (PREROUTING);
  /// the kernel checks checksums there only, and only with config.checksum.
  CtResult process(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns,
                   bool verify_checksum) noexcept;

  /// The end of the packet's path (it was not dropped). Inserts an entry the
  /// packet created, starting its timeout from now_ns; frees an entry that
  /// was deleted while the packet held it. False when the new entry's
  /// ORIGINAL or REPLY tuple was taken in the meantime: the entry is freed
  /// and the kernel drops the packet (counted in drop and insert_failed).
  /// Clears r.entry and r.created; safe on any result.
  bool confirm(CtResult& r, uint64_t now_ns) noexcept;

  /// The packet was dropped: an entry it created vanishes. Clears r.entry
  /// and r.created; safe on any result.
  void discard(CtResult& r) noexcept;

  /// The ctstate bits `-m conntrack --ctstate` tests for this result: its
  /// state, plus kCtSnat / kCtDnat when the entry has a source / destination
  /// NAT binding.
  uint8_t state_bits(const CtResult& r) const noexcept;

  /// The entry behind a handle (a result's `entry`), or null.
  const CtEntry* entry(uint32_t handle) const noexcept;
  CtEntry* entry(uint32_t handle) noexcept;

  /// Changes the REPLY tuple of an UNCONFIRMED entry (NAT binds on the first
  /// packet). False, nothing changed, when the handle is not an unconfirmed
  /// entry.
  bool set_reply_tuple(uint32_t handle, const Tuple& reply) noexcept;

  /// The live confirmed entry that has `t` as one of its tuples, or null;
  /// `dir` (if given) receives the direction that matched. Judged at the
  /// table's clock (the latest timestamp seen).
  const CtEntry* find(const Tuple& t, CtDir* dir = nullptr) const noexcept;
  /// The same lookup, as a handle for entry() (kNoEntry when none).
  uint32_t find_handle(const Tuple& t, CtDir* dir = nullptr) const noexcept;

  /// Whether a live confirmed entry other than `ignored` has `t` as a tuple
  /// (NAT asks this about a candidate REPLY tuple). As in the kernel, an
  /// entry whose ORIGINAL tuple equals the ignored entry's is not counted.
  bool tuple_taken(const Tuple& t, uint32_t ignored = kNoEntry) const noexcept;

  /// Frees every confirmed entry whose deadline is at or before now_ns.
  /// process() calls it itself when the table is full; call it before
  /// size() for an exact count.
  void expire(uint64_t now_ns) noexcept;

  /// Entries held: confirmed (expired ones included until freed),
  /// unconfirmed, and deleted ones still held by their packet.
  std::size_t size() const noexcept { return used_; }
  std::size_t capacity() const noexcept { return entries_.size(); }
  std::size_t bucket_count() const noexcept { return buckets_.size(); }
  uint64_t clock_ns() const noexcept { return clock_ns_; }

  const CtCounters& counters() const noexcept { return counters_; }

  /// Appends the confirmed live entries in `conntrack -L` format, one line
  /// each, in creation order, with timeouts in whole seconds remaining at
  /// now_ns. Control plane: allocates.
  void dump(std::string& out, uint64_t now_ns) const;

  /// One entry's line, without the newline.
  std::string format_entry(const CtEntry& e, uint64_t now_ns) const;

 private:
  struct Links {
    std::array<uint32_t, 2> next{kNoEntry, kNoEntry};  // hash chain, per direction node
    uint32_t wheel_prev = kNoEntry;
    uint32_t wheel_next = kNoEntry;
    uint32_t wheel_slot = kNoEntry;  // kNoEntry: not on the wheel
    uint32_t holds = 0;  // results handed out and not yet confirmed/discarded
    bool used = false;
  };

  uint32_t bucket_of(const Tuple& t) const noexcept;
  uint32_t find_node(const Tuple& t) noexcept;  // frees expired entries it meets
  uint32_t find_node_const(const Tuple& t) const noexcept;
  bool expired(uint32_t slot) const noexcept;

  uint32_t allocate(const Tuple& orig, uint64_t now) noexcept;  // kNoEntry when full
  bool early_drop(uint32_t bucket) noexcept;
  void free_slot(uint32_t slot) noexcept;
  void unlink(uint32_t slot) noexcept;  // out of hash and wheel
  void hash_link(uint32_t slot) noexcept;
  void hash_unlink_node(uint32_t node) noexcept;
  void wheel_link(uint32_t slot) noexcept;
  void wheel_unlink(uint32_t slot) noexcept;
  void refresh(uint32_t slot, uint32_t timeout_s) noexcept;
  void kill(uint32_t slot) noexcept;  // delete now; free once no result holds it
  void hold(uint32_t slot) noexcept { ++links_[slot].holds; }
  void release(uint32_t slot) noexcept;

  CtResult invalid(CtReason why, TcpReason tcp = TcpReason::None) noexcept;
  CtResult process_icmp(const PacketKey& key, const uint8_t* frame, uint32_t len,
                        bool checksum) noexcept;
  CtResult track(const PacketKey& key, const Tuple& t, const uint8_t* frame, uint32_t len,
                 bool checksum) noexcept;

  CtConfig config_;
  std::vector<CtEntry> entries_;
  std::vector<Links> links_;
  std::vector<uint32_t> free_;     // stack of free slots
  std::vector<uint32_t> buckets_;  // chain heads: node = slot * 2 + dir
  std::vector<uint32_t> wheel_;    // list heads: slot
  std::size_t used_ = 0;
  uint64_t next_id_ = 1;
  uint64_t clock_ns_ = 0;
  uint64_t wheel_tick_ = 0;  // ticks before this one have been swept
  CtCounters counters_;
};

}  // namespace nfb
