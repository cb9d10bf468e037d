// Connection tracking: the table of flows, and the ctstate of every packet,
// decided as Linux's nf_conntrack decides it (facts and the kernel
// experiments behind them: netfilter/conntrack.md).
//
// Idea: a flow is an entry with two tuples, ORIGINAL (as its first packet
// saw it) and REPLY (the inverse of ORIGINAL, unless NAT changed it). Both
// tuples are indexed by one hash table, so a packet finds its entry from
// either side and learns its direction. process() runs at the conntrack hook
// (PREROUTING, or OUTPUT for local packets): it finds or creates the entry,
// runs the protocol's tracker (TCP state machine and windows, UDP,
// UDP-Lite, SCTP chunk state machine (conntrack_sctp.h), GRE, ICMP,
// generic) and returns the packet's ctstate:
//
//   NEW          original direction, no reply seen yet (also a picked-up TCP ACK)
//   ESTABLISHED  reply direction, or original once a reply was seen
//   RELATED      an ICMP error about a known flow
//   INVALID      no usable entry: malformed, bad checksum, TCP flag/state/window
//                violations, ICMP error about no flow, ICMP that cannot open one
//   (UNTRACKED is the pipeline's business: raw's CT --notrack skips conntrack.)
//
// Zones (raw's CT --zone): a packet in a zone finds and creates entries
// only within it; each tuple carries its direction's zone id (CtZone).
//
// Two phases per packet, as in the kernel: a new entry is created
// UNCONFIRMED by process() and becomes visible to lookups only when
// confirm() runs at the end of the packet's path (POSTROUTING or INPUT); if
// the packet is dropped on the way, discard() frees it and the flow leaves no
// trace. Every process() must be followed by exactly one confirm() or
// discard() for its result before the next packet is processed (one packet at
// a time: conntrack state is inherently sequential).
//
// Memory layout (measured against DPDK's rte_hash in bench/conntrack_bench):
//   - a pool of `max_entries` CtEntry slots, 64-byte aligned, allocated at
//     construction, and a free-slot stack. An entry's first cache line holds
//     what every packet reads (both tuples, deadline, id, status, mark); the
//     second its protocol state (TCP windows).
//   - the index: 8-way buckets of one cache line, each way a 16-bit
//     signature and a node (slot * 2 + direction), so both directions of a
//     flow are found by one lookup. A lookup hashes the tuple once, reads one
//     bucket, compares the 8 signatures at once and reads only the entries
//     whose signature matches. Ways are kept dense (a removal moves the
//     chain's last node into the hole); a full bucket chains to overflow
//     buckets from a pool sized for the worst case, so inserting never fails
//     and never allocates. There are about half as many buckets as entries
//     (at a full table 4 of 8 ways are used on average).
//   - the kernel's hash chains are kept as a logical layer on top:
//     nf_conntrack_buckets chains, a tuple's chain taken from the same hash
//     as its bucket (so the nodes of neighbouring chains sit in neighbouring
//     buckets), which is what early_drop scans.
//   - a timing wheel of 2^14 slots of 2^26 ns (~67 ms, ~18 min per turn)
//     whose doubly linked lists hold every confirmed entry. An entry sits at
//     the slot of a deadline at or before its own: a timeout that moves the
//     deadline later leaves it where it is (no list work per packet), and the
//     sweep moves it on when it meets it; a deadline moved earlier is relinked
//     at once.
//
// Bursts: hash_of(), prefetch() and prefetch_entries() let a caller hash a
// burst's tuples, prefetch their buckets, then the entries their signatures
// point to, before it looks any of them up (lookup(); process() and
// track_fast() take the lookup's result, so a packet is looked up once).
//
// Time is the capture's clock (packet timestamps, ns), never the wall clock;
// it never goes backwards (an earlier timestamp counts as the latest one
// seen). An entry whose deadline has passed is gone: a lookup that meets it
// frees it (or skips it, when read-only), the dump omits it, and when the
// table is full the wheel frees every expired entry before anything else is
// tried.
//
// Table full (max_entries in use): expired entries are reaped first; then,
// as the kernel's early_drop does, the hash chain of the new ORIGINAL tuple
// and the 7 chains after it are scanned in order, and in the first one
// holding any non-ASSURED confirmed entry all such entries are evicted; if
// none is found the packet is DROPPED (verdict Drop, "nf_conntrack: table
// full, dropping packet"). The kernel's hash is keyed at random per boot, so
// which flows share a chain differs from any one kernel run; the rule is the
// same.
//
// Cost per packet: one hash, one bucket line and the entries whose
// signature matches (about one), the protocol tracker, and a store of the
// new deadline. No allocation and no exceptions on the packet path
// (process, track_fast, confirm, discard, lookup, find, tuple_taken,
// state_bits).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "base/enum_names.h"
#include "base/hash.h"
#include "base/zeroed_array.h"
#include "netfilter/conntrack_sctp.h"
#include "netfilter/conntrack_tcp.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/headers.h"
#include "packet/packet_key.h"
#include "rules/rule.h"

namespace nfb {

/// One direction of a flow, in the kernel's layout. Host byte order, no
/// padding (compared and hashed as 16 bytes).
///   TCP/UDP/UDP-Lite/SCTP: addresses, ports, protocol.
///   ICMP:    addresses, sport = the query identifier, dport = the type and
///            code (type << 8 | code; an echo request's reply tuple has type
///            echo-reply), as the kernel's dst.u.icmp holds them.
///   GRE:     addresses and the keys of the kernel's GRE tracker: sport = the
///            source key, dport = the destination key (version 1, PPTP: the
///            call id; the source key would come from the PPTP helper, which
///            is not modelled, so it is 0; version 0: both 0).
///   other:   addresses and protocol only (the kernel's generic tracker).
/// `zone` is the conntrack zone id of this direction (CtZone::id_for; 0 is
/// the default zone): a packet finds a tuple only within its own zone, as
/// the kernel compares nf_ct_zone_id() of the direction it found.
struct Tuple {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t zone = 0;
  uint8_t proto = 0;
  uint8_t pad = 0;  // always 0

  /// An ICMP tuple's dport: its type and code.
  static constexpr uint16_t icmp_word(uint8_t type, uint8_t code) noexcept {
    return static_cast<uint16_t>(type << 8 | code);
  }
  uint8_t icmp_type() const noexcept { return static_cast<uint8_t>(dport >> 8); }
  uint8_t icmp_code() const noexcept { return static_cast<uint8_t>(dport); }

  /// The tuple of the other direction, in the same zone id: addresses and
  /// ports swapped; ICMP keeps the identifier and maps the query type to its
  /// answer (echo 8<->0, timestamp 13<->14, info 15<->16, address mask
  /// 17<->18). False (out untouched) for an ICMP type without an answer,
  /// which cannot be tracked.
  bool invert(Tuple& out) const noexcept;

  friend constexpr bool operator==(const Tuple&, const Tuple&) noexcept = default;
};
static_assert(sizeof(Tuple) == 16);
static_assert(std::has_unique_object_representations_v<Tuple>);

/// A packet's conntrack zone (nf_conntrack_zone), given by raw's `-j CT
/// --zone/--zone-orig/--zone-reply` template; packets without one are in
/// the default zone (id 0, both directions). A zone that names one direction
/// only gives its id to that direction's tuple and the default id to the
/// other. Entries are found, created and NAT-ed within zones: two flows with
/// the same addresses and ports in different zones are two entries.
struct CtZone {
  static constexpr uint8_t kOriginal = 1;  // NF_CT_ZONE_DIR_ORIG
  static constexpr uint8_t kReply = 2;     // NF_CT_ZONE_DIR_REPL
  static constexpr uint8_t kBoth = kOriginal | kReply;
  uint16_t id = 0;
  uint8_t dirs = kBoth;

  /// nf_ct_zone_id(): the id the tuple of direction `d` carries.
  constexpr uint16_t id_for(CtDir d) const noexcept { return (dirs >> dir_index(d)) & 1U ? id : uint16_t{0}; }
  constexpr bool is_default() const noexcept { return id == 0; }
};

/// The ORIGINAL tuple of a parsed packet (ICMP errors included: their own
/// type/code, id 0). Does not look at the frame.
inline Tuple tuple_of(const PacketKey& key) noexcept {
  Tuple t;
  t.src = key.src_ip;
  t.dst = key.dst_ip;
  t.proto = key.proto;
  if ((key.proto == kProtoTcp || key.proto == kProtoUdp || key.proto == kProtoSctp || key.proto == kProtoUdplite) &&
      key.has(key_flag::kPorts)) {
    t.sport = key.src_port;
    t.dport = key.dst_port;
  } else if (key.proto == kProtoIcmp && key.has(key_flag::kIcmp)) {
    t.dport = Tuple::icmp_word(key.icmp_type, key.icmp_code);
    t.sport = key.icmp_id;  // 0 unless a query
  }
  return t;
}

/// The kernel's GRE tuple keys (gre_pkt_to_tuple()) of a GRE packet whose
/// header is the `n` bytes at `gre`: sets t.dport to the call id of a
/// version-1 packet with the PPP protocol and 8 bytes of header (leaves both
/// keys 0 otherwise). False for a version-1 packet with 8 bytes of header
/// and another protocol, which the kernel cannot track (INVALID).
inline bool gre_tuple_keys(const uint8_t* gre, uint32_t n, Tuple& t) noexcept {
  if (n < 4) return true;
  const GreHdr* h = header_at<GreHdr>(gre);  // 4 bytes read first, 8 below only when there
  if ((h->flags_version.host() & GreHdr::kVersionMask) != 1 || n < sizeof(GreHdr)) return true;
  if (h->protocol.host() != GreHdr::kProtoPpp) return false;
  t.dport = h->call_id.host();
  return true;
}

/// tuple_of(key), with what only the frame holds: a GRE packet's keys
/// (gre_tuple_keys(); a packet it refuses gets keys 0, and process() calls
/// it INVALID). `frame` is the one `key` was parsed from, or null.
inline Tuple tuple_of(const PacketKey& key, const uint8_t* frame) noexcept {
  Tuple t = tuple_of(key);
  if (key.proto == kProtoGre && frame != nullptr && !key.is_later_fragment()) {
    const uint32_t end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
    Tuple keyed = t;
    if (gre_tuple_keys(frame + key.l4_off, end - key.l4_off, keyed)) t = keyed;
  }
  return t;
}

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
/// set_reply_tuple), the NAT status bits and the mark. The first cache line
/// holds what every packet of the flow reads; the second the protocol state.
struct alignas(64) CtEntry {
  std::array<Tuple, 2> tuple{};  // [dir_index(CtDir::Original)], [dir_index(CtDir::Reply)]
  uint64_t deadline_ns = 0;  // confirmed: expiry on the capture clock
  uint64_t id = 0;           // creation number, from 1: dump order
  uint32_t status = 0;       // ct_status bits
  uint32_t mark = 0;         // ctmark
  uint32_t timeout_s = 0;    // unconfirmed: the timeout that confirm() starts
  uint32_t wheel_tick = 0;   // the table's: the wheel tick it is linked at (<= the deadline's)
  union {
    TcpConn tcp{};           // TCP entries only (set by tcp_open(); stale in other entries)
    SctpConn sctp;           // SCTP entries only (set by sctp_track() on the first packet)
  };

  uint8_t proto() const noexcept { return tuple[0].proto; }
  bool has(uint32_t status_bits) const noexcept { return (status & status_bits) == status_bits; }
};
static_assert(offsetof(CtEntry, tcp) == 64, "the packet-path fields fill the first cache line");
static_assert(sizeof(CtEntry) == 128, "an entry is two cache lines");

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
  SctpTimeouts sctp{};  // net.netfilter.nf_conntrack_sctp_timeout_*
  uint32_t gre_timeout = 30;          // nf_conntrack_gre_timeout
  uint32_t gre_stream_timeout = 180;  // nf_conntrack_gre_timeout_stream: after a reply
  uint64_t hash_seed = 0x6e66'6265'6e63'6821ULL;  // any value; fixed for reproducible runs
};

// Every reason a packet gets INVALID or is dropped, in ONE list:
//   X(enumerator, counter name, description)
#define NFB_CT_REASON_LIST(X)                                                                   \
  X(None, "none", "no problem")                                                                 \
  X(Fragment, "fragment", "non-first fragment: conntrack sees reassembled datagrams only")      \
  X(Truncated, "truncated", "L4 header missing or cut short")                                   \
  X(BadChecksum, "bad_checksum", "L4 checksum (SCTP: CRC32c) wrong (nf_conntrack_checksum=1)")  \
  X(TcpBadFlags, "tcp_bad_flags", "TCP flag combination conntrack rejects (SYN+FIN, ...)")      \
  X(TcpCannotOpen, "tcp_cannot_open", "no entry, and neither a SYN nor a loose pick-up ACK")    \
  X(TcpStateTable, "tcp_state", "TCP state table says INVALID for this flag and state")         \
  X(TcpInvalidRst, "tcp_invalid_rst", "RST below the peer's highest acknowledgement")           \
  X(TcpSeqOverWindow, "tcp_seq_over_window", "TCP data beyond the receiver's window")          \
  X(TcpAckOverEnd, "tcp_ack_over_end", "TCP ACK of data not sent yet")                          \
  X(UdpBadLength, "udp_bad_length", "UDP length field beyond the packet or below 8")            \
  X(UdpliteBadCoverage, "udplite_bad_coverage", "UDP-Lite checksum coverage 1..7 or beyond the packet") \
  X(UdpliteNoChecksum, "udplite_no_checksum", "UDP-Lite checksum 0 (the protocol mandates one)") \
  X(SctpBadChunks, "sctp_bad_chunks", "SCTP: no chunk, a zero-length chunk, or a forbidden bundle") \
  X(SctpCannotOpen, "sctp_cannot_open", "SCTP: no entry and out of the blue (DATA, ABORT, ...)") \
  X(SctpBadVtag, "sctp_bad_vtag", "SCTP verification tag check failed (RFC 9260 8.5)")          \
  X(SctpStateTable, "sctp_state", "SCTP state table says INVALID for this chunk and state")      \
  X(GreNotPptp, "gre_not_pptp", "GRE version 1 (PPTP) carrying another protocol than PPP")     \
  X(IcmpUnknownType, "icmp_unknown_type", "ICMP type above 18")                                 \
  X(IcmpCannotOpen, "icmp_cannot_open", "ICMP neither error nor query, or an answer w/o query") \
  X(IcmpErrorInner, "icmp_error_inner", "ICMP error whose embedded header cannot be keyed")     \
  X(IcmpErrorNoFlow, "icmp_error_no_flow", "ICMP error about no known flow")                    \
  X(IcmpErrorDaddr, "icmp_error_daddr", "ICMP error not addressed to the flow's endpoint")      \
  X(TableFull, "table_full", "nf_conntrack_max reached, nothing to evict: packet dropped")

// ct_reason_name(): stable snake_case name ("tcp_state"); "invalid" out of range.
NFB_NAMED_ENUM(CtReason, kCtReasonCount, ct_reason_name, ct_reason_description, NFB_CT_REASON_LIST)

// Table counters, in ONE list: X(field, description)
#define NFB_CT_COUNTER_LIST(X)                                                      \
  X(found, "packets whose tuple matched an entry")                                  \
  X(created, "entries created (unconfirmed), including ones later discarded")       \
  X(inserted, "entries confirmed into the table")                                   \
  X(invalid, "packets given ctstate INVALID")                                       \
  X(ignored, "TCP/SCTP packets let through without any state change (IGNORE)")      \
  X(related, "ICMP errors RELATED to an entry")                                     \
  X(drop, "packets dropped by conntrack: table full, or a clash at confirm")        \
  X(early_drop, "non-ASSURED entries evicted to make room")                         \
  X(expired, "entries removed because their timeout passed")                        \
  X(insert_failed, "confirmations refused because a tuple was taken meanwhile")     \
  X(reopened, "TCP entries replaced by a SYN reopening a closed connection")        \
  X(killed, "TCP entries deleted by a RST before any reply")                        \
  X(trusted_bad_checksum, "packets with a wrong L4 checksum let through unchecked because " \
                          "the NIC vouched for it (--rx-csum trust, CHECKSUM_UNNECESSARY)")

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

/// What conntrack does about a packet's L4 checksum (nf_conntrack_checksum
/// applies on top: with config.checksum false nothing is checked or counted).
enum class L4Check : uint8_t {
  Skip,        // no check: not at PREROUTING, or the NIC verified it (CHECKSUM_UNNECESSARY)
  Verify,      // at PREROUTING with CHECKSUM_NONE: verify it in software, as the kernel does
  TrustedBad,  // not checked (as Skip), but the caller knows it is wrong: count it
};

inline constexpr uint32_t kNoEntry = 0xffffffffU;

/// A tuple looked up once: its hash and the node it found (slot * 2 +
/// direction), or kNoEntry. The node may be an expired entry's: process()
/// frees it then; track_fast() refuses it.
struct CtProbe {
  Tuple tuple;
  uint64_t hash = 0;
  uint32_t node = kNoEntry;
  // The burst stages' notes (ConntrackTable::start/prefetch_entries/finish).
  uint32_t bucket = 0;              // the hash's bucket
  uint32_t candidate = kNoEntry;    // the first node in it with the tuple's signature
  uint32_t generation = 0;          // the index as it was when `candidate` was taken
  bool complete = false;            // the bucket had no overflow: no candidate means none

  bool hit() const noexcept { return node != kNoEntry; }
  uint32_t slot() const noexcept { return node >> 1; }
  CtDir dir() const noexcept { return static_cast<CtDir>(node & 1U); }
};

/// What conntrack decided for one packet.
struct CtResult {
  uint32_t entry = kNoEntry;  // the packet's entry (none when INVALID or dropped)
  CtDir dir = CtDir::Original;
  uint8_t state = kCtInvalid;  // exactly one of kCtNew, kCtEstablished, kCtRelated, kCtInvalid
  CtVerdict verdict = CtVerdict::Accept;
  CtReason reason = CtReason::None;  // why INVALID or dropped
  bool created = false;  // this packet created the entry; it is unconfirmed until confirm()
  bool held = false;     // the entry is held for the packet (process()); track_fast() holds none
  uint32_t generation = 0;  // created: the index's generation then (confirm() skips a check it proved)
  TcpReason tcp_reason = TcpReason::None;  // TCP: why ignored or invalid, in detail

  bool has_entry() const noexcept { return entry != kNoEntry; }
};

class ConntrackTable {
 public:
  /// Allocates the whole pool, the buckets and their overflow pool. Throws
  /// std::invalid_argument when max_entries is 0 or above 2^30, or buckets
  /// is above 2^30.
  explicit ConntrackTable(const CtConfig& config = {});

  const CtConfig& config() const noexcept { return config_; }

  // ---- the index, for bursts ---------------------------------------------
  /// The tuple's 64-bit hash (keyed by config.hash_seed): its bucket, its
  /// signature and its kernel hash chain all come from it.
  uint64_t hash_of(const Tuple& t) const noexcept;
  /// Starts loading the bucket of a hash.
  void prefetch(uint64_t hash) const noexcept { __builtin_prefetch(&buckets_[bucket_index(hash)]); }

  /// A lookup in three stages, for a burst: start() hashes the tuple (set
  /// p.tuple first) and starts loading its bucket; prefetch_entries(p) reads
  /// the bucket and starts loading the entries whose signature matches (their
  /// first cache line; for TCP the second too, its window state) and returns
  /// the first such node (likely the packet's: a caller may prefetch its own
  /// data for it) or kNoEntry; finish(p) sets p.node as lookup() would now --
  /// reusing the bucket's answer when the index has not changed since
  /// prefetch_entries(p).
  void start(CtProbe& p) const noexcept {
    p.hash = hash_of(p.tuple);
    p.bucket = bucket_index(p.hash);
    __builtin_prefetch(&buckets_[p.bucket]);
  }
  uint32_t prefetch_entries(CtProbe& p) const noexcept;
  void finish(CtProbe& p) const noexcept;
  /// The lookup of a packet of zone `zone` with tuple `t` (its zone field
  /// ignored): the node whose direction d has t's addresses and ports and the
  /// zone id zone.id_for(d), or kNoEntry (nf_conntrack_find_get(): a lookup
  /// with the ORIGINAL direction's id, then, when the REPLY direction's id
  /// differs, one with that).
  CtProbe probe_in_zone(Tuple t, CtZone zone) const noexcept;
  /// The node whose tuple is `t` (hash == hash_of(t)), expired or not, or
  /// kNoEntry. Read-only: expired entries are reported, not freed.
  uint32_t lookup(const Tuple& t, uint64_t hash) const noexcept;
  /// hash_of() and lookup() in one.
  CtProbe probe(const Tuple& t) const noexcept {
    CtProbe p{t, hash_of(t), kNoEntry};
    p.node = lookup(t, p.hash);
    return p;
  }
  /// Whether the entry in `slot` (one that lookup() returned) is still live
  /// at `now_ns` (the later of it and the table's clock).
  bool live(uint32_t slot, uint64_t now_ns) const noexcept {
    const uint64_t now = now_ns > clock_ns_ ? now_ns : clock_ns_;
    return entries_[slot].deadline_ns > now;
  }

  // ---- the packet path -----------------------------------------------------
  /// The conntrack hook for one parsed IPv4 packet (`key` from parse_frame()
  /// with status Ok on `frame`; a key with a missing L4 header gives
  /// INVALID). `check`: what to do about the L4 checksum (the kernel
  /// verifies it at PREROUTING only, and only with config.checksum). `probe`,
  /// when given, is lookup() of tuple_of(key, frame) made since the table last
  /// changed (the caller looked the packet up already); otherwise process()
  /// looks it up.
  /// `zone`: the packet's zone (raw's CT template). Outside the default
  /// zone the probe is not used: process() looks the tuple up in the zone
  /// itself (twice for a one-direction zone, as the kernel does), and a new
  /// entry's tuples carry the zone's ids.
  CtResult process(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns, L4Check check,
                   const CtProbe* probe = nullptr, CtZone zone = {}) noexcept;
  /// The same with `verify_checksum`: Verify when true, Skip when false.
  CtResult process(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns,
                   bool verify_checksum) noexcept {
    return process(key, frame, len, now_ns, verify_checksum ? L4Check::Verify : L4Check::Skip);
  }

  /// process() for a packet of a live confirmed entry in the common case,
  /// or nothing. `probe` hit an entry, and `key` is what parse_frame() gave
  /// with status Ok for `frame` (not null), not an ICMP error, not a
  /// fragment. The common case: the checksum passes (or is
  /// not checked), and the tracker's decision is a plain accept -- TCP by
  /// tcp_track_fast(), UDP with a sound length, an ICMP query, another
  /// protocol. Then it does exactly what process() would (tracker, timeout,
  /// SEEN_REPLY, ASSURED, counters) and returns the packet's state, kCtNew
  /// or kCtEstablished (as process()'s result: entry probe.slot(), direction
  /// probe.dir(), not created, not held -- confirm() or discard() of such a
  /// result is still due). Otherwise it returns 0 with nothing changed: call
  /// process().
  uint8_t track_fast(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns, L4Check check,
                     const CtProbe& probe) noexcept;

  /// The end of the packet's path (it was not dropped). Inserts an entry the
  /// packet created, starting its timeout from now_ns; frees an entry that
  /// was deleted while the packet held it. False when the new entry's
  /// ORIGINAL or REPLY tuple was taken in the meantime: the entry is freed
  /// and the kernel drops the packet (counted in drop and insert_failed).
  /// One pass per tuple: the clash check and the insertion walk the
  /// bucket chain once, with the hash process() computed.
  /// Clears r.entry and r.created; safe on any result.
  bool confirm(CtResult& r, uint64_t now_ns) noexcept;

  /// The packet was dropped: an entry it created vanishes. Clears r.entry
  /// and r.created; safe on any result.
  void discard(CtResult& r) noexcept;

  /// The ctstate bits `-m conntrack --ctstate` tests for this result: its
  /// state, plus kCtSnat / kCtDnat when the entry has a source / destination
  /// NAT binding.
  uint8_t state_bits(const CtResult& r) const noexcept;

  /// The entry in `slot`, unchecked: for a node lookup() returned.
  const CtEntry& at(uint32_t slot) const noexcept { return entries_[slot]; }
  /// The entry behind a handle (a result's `entry`), or null.
  const CtEntry* entry(uint32_t handle) const noexcept;
  /// -m connlimit's question (nf_conncount): slot `handle` still holds
  /// connection `id`, unconfirmed or not expired at `now_ns`, and it is not
  /// TCP in TIME_WAIT or CLOSE.
  bool counts_as_connection(uint32_t handle, uint64_t id, uint64_t now_ns) const noexcept;
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
  /// The kernel's hash chains (nf_conntrack_buckets).
  std::size_t bucket_count() const noexcept { return chains_; }
  uint64_t clock_ns() const noexcept { return clock_ns_; }

  const CtCounters& counters() const noexcept { return counters_; }

  /// Appends the confirmed live entries in `conntrack -L` format, one line
  /// each, in creation order, with timeouts in whole seconds remaining at
  /// now_ns. Control plane: allocates.
  void dump(std::string& out, uint64_t now_ns) const;

  /// One entry's line, without the newline.
  std::string format_entry(const CtEntry& e, uint64_t now_ns) const;

 private:
  static constexpr uint64_t kNsPerSec = 1'000'000'000ULL;
  static constexpr uint64_t kUdpStreamAfterNs = 2 * kNsPerSec;  // UDP: "still active after 2 s"
  static constexpr unsigned kWheelShift = 26;                   // 2^26 ns ~ 67 ms per wheel slot
  static constexpr uint32_t kWheelSlots = 1U << 14;
  static constexpr uint8_t kIcmpLastKnownType = 18;
  static constexpr uint64_t seconds(uint32_t s) noexcept { return static_cast<uint64_t>(s) * kNsPerSec; }
  // ICMP types that report an error about another packet (which they quote).
  static constexpr bool icmp_is_error(uint8_t type) noexcept {
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  }
  // ICMP queries that may open an entry.
  static constexpr bool icmp_opens(uint8_t type) noexcept {
    return type == 8 || type == 13 || type == 15 || type == 17;
  }
  static constexpr uint32_t kWays = 8;
  static constexpr uint32_t kNone = 0xffffffffU;
  /// One cache line of the index: kWays ways, used from 0 to count - 1.
  struct alignas(64) Bucket {
    uint16_t sig[kWays]{};
    uint32_t node[kWays]{};
    uint32_t next = kNone;  // overflow bucket (index into overflow_); only a full bucket has one
    uint8_t count = 0;
  };
  static_assert(sizeof(Bucket) == 64);

  /// Per slot, what only the table's own bookkeeping reads: half a cache
  /// line.
  struct Links {
    // hash_of(tuple[d]) as far as the index reads it (the high word: bucket
    // and chain; the low 16 bits: signature), kept while the entry is in it.
    uint64_t start_ns = 0;  // timestamp of the packet that created it (UDP streams)
    uint32_t hash_hi[2] = {0, 0};
    uint32_t wheel_prev = kNone;
    uint32_t wheel_next = kNone;
    uint16_t hash_sig[2] = {0, 0};
    uint16_t holds = 0;     // results handed out and not yet confirmed/discarded
    bool on_wheel = false;
    bool used = false;

    uint64_t hash(unsigned d) const noexcept { return uint64_t{hash_hi[d]} << 32 | hash_sig[d]; }
    void set_hash(unsigned d, uint64_t h) noexcept {
      hash_hi[d] = static_cast<uint32_t>(h >> 32);
      hash_sig[d] = static_cast<uint16_t>(h);
    }
  };
  static_assert(sizeof(Links) == 32);

  // Hash layout: the high 32 bits pick the bucket and the kernel chain (by
  // multiply-shift, so neighbouring chains share neighbouring buckets), the
  // low 16 bits are the signature.
  uint32_t bucket_index(uint64_t h) const noexcept {
    return static_cast<uint32_t>(((h >> 32) * nbuckets_) >> 32);
  }
  uint32_t chain_of(uint64_t h) const noexcept { return static_cast<uint32_t>(((h >> 32) * chains_) >> 32); }
  static uint16_t sig_of(uint64_t h) noexcept { return static_cast<uint16_t>(h); }
  /// The ways of `b` whose signature is `sig`: bit 2w for way w.
  static uint32_t match(const Bucket& b, uint16_t sig) noexcept;
  static bool same(const Tuple& a, const Tuple& b) noexcept;  // 16 bytes at once
  Bucket& next_bucket(const Bucket& b) noexcept { return overflow_[b.next]; }
  const Bucket& next_bucket(const Bucket& b) const noexcept { return overflow_[b.next]; }

  bool expired(uint32_t slot) const noexcept { return entries_[slot].deadline_ns <= clock_ns_; }
  /// lookup(), then: an expired entry found is freed (counted) and kNoEntry
  /// returned.
  uint32_t find_live(const Tuple& t, uint64_t hash) noexcept;
  void index_insert(uint32_t node, uint64_t hash) noexcept;
  /// index_insert() unless a live entry has `t`, in one walk of the chain
  /// (an expired one met is freed first). False: taken, nothing inserted.
  bool index_insert_unless_taken(uint32_t node, uint64_t hash, const Tuple& t) noexcept;
  /// A node whose entry has `t` as both tuples (a flow from an address and
  /// port to themselves) is found in the REPLY direction, as the kernel,
  /// which hashes REPLY in after ORIGINAL at the head of a chain, finds it.
  uint32_t resolve(uint32_t node, const Tuple& t) const noexcept {
    if (t.src != t.dst) return node;
    const CtEntry& e = entries_[node >> 1];
    return same(e.tuple[0], e.tuple[1]) ? node | 1U : node;
  }
  void index_remove(uint32_t node, uint64_t hash) noexcept;

  uint32_t allocate(uint64_t orig_hash, uint64_t now) noexcept;  // kNoEntry when full
  bool early_drop(uint32_t chain) noexcept;
  void free_slot(uint32_t slot) noexcept;
  void unlink(uint32_t slot) noexcept;  // out of the index and the wheel
  void wheel_link(uint32_t slot) noexcept;
  void wheel_unlink(uint32_t slot) noexcept;
  void refresh(uint32_t slot, uint32_t timeout_s) noexcept;
  void relink(uint32_t slot) noexcept;  // refresh() moved the deadline before the wheel position
  void kill(uint32_t slot) noexcept;  // delete now; free once no result holds it
  void hold(uint32_t slot) noexcept { ++links_[slot].holds; }
  void release(uint32_t slot) noexcept;

  CtResult invalid(CtReason why, TcpReason tcp = TcpReason::None) noexcept;
  CtResult process_icmp(const PacketKey& key, const uint8_t* frame, uint32_t len, L4Check check,
                        const CtProbe* query, CtZone zone) noexcept;
  CtResult track(const PacketKey& key, const CtProbe& probe, const uint8_t* frame, uint32_t len,
                 L4Check check, CtZone zone) noexcept;
  /// The L4 checksum as `check` says: false when verified and wrong;
  /// counts a TrustedBad packet.
  bool checksum_passes(const PacketKey& key, const uint8_t* frame, uint32_t len, L4Check check) noexcept;

  CtConfig config_;
  ZeroedArray<CtEntry> entries_;  // zero: never used (allocate() resets a slot's first line)
  std::vector<Links> links_;
  std::vector<uint32_t> free_;     // stack of free slots
  std::vector<Bucket> buckets_;    // nbuckets_ heads
  std::vector<Bucket> overflow_;   // overflow buckets; free ones chained through `next`
  uint32_t overflow_free_ = kNone;
  uint32_t nbuckets_ = 1;
  uint32_t chains_ = 1;            // nf_conntrack_buckets
  std::vector<uint32_t> wheel_;    // list heads: slot
  std::size_t used_ = 0;
  uint64_t next_id_ = 1;
  uint64_t clock_ns_ = 0;
  uint64_t wheel_tick_ = 0;  // ticks before this one have been swept
  uint32_t generation_ = 0;  // changes whenever a node enters or leaves the index
  CtCounters counters_;
};


// ---------------------------------------------------------------- inline: the packet path

inline uint64_t ConntrackTable::hash_of(const Tuple& t) const noexcept {
  uint64_t a = 0;
  uint64_t b = 0;
  std::memcpy(&a, &t, sizeof a);
  std::memcpy(&b, reinterpret_cast<const unsigned char*>(&t) + sizeof a, sizeof b);
#if defined(__SSE4_2__)
  // Two CRC32C chains over the 16 bytes, in opposite orders: the high word
  // places the tuple, the low word signs it.
  const uint64_t seed = config_.hash_seed;
  const uint64_t hi = _mm_crc32_u64(_mm_crc32_u64(seed >> 32, a), b);
  const uint64_t lo = _mm_crc32_u64(_mm_crc32_u64(seed & 0xffffffffU, b), a);
  return hi << 32 | lo;
#else
  return mix64(mix64(a ^ config_.hash_seed) + b);
#endif
}

inline uint32_t ConntrackTable::match(const Bucket& b, uint16_t sig) noexcept {
  // Bit 2w set when way w (in use) has the signature.
  uint32_t m = 0;
#if defined(__SSE2__)
  const __m128i sigs = _mm_load_si128(reinterpret_cast<const __m128i*>(b.sig));
  m = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi16(sigs, _mm_set1_epi16(static_cast<short>(sig))))) &
      0x5555U;
#else
  for (uint32_t w = 0; w < kWays; ++w) m |= static_cast<uint32_t>(b.sig[w] == sig) << (2 * w);
#endif
  return m & ((1U << (2 * b.count)) - 1U);
}

inline bool ConntrackTable::same(const Tuple& a, const Tuple& b) noexcept {
  uint64_t a0;
  uint64_t a1;
  uint64_t b0;
  uint64_t b1;
  std::memcpy(&a0, &a, 8);
  std::memcpy(&a1, reinterpret_cast<const unsigned char*>(&a) + 8, 8);
  std::memcpy(&b0, &b, 8);
  std::memcpy(&b1, reinterpret_cast<const unsigned char*>(&b) + 8, 8);
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

inline uint32_t ConntrackTable::prefetch_entries(CtProbe& p) const noexcept {
  const Bucket& b = buckets_[p.bucket];
  p.candidate = kNoEntry;
  p.generation = generation_;
  p.complete = b.next == kNone;
  for (uint32_t m = match(b, sig_of(p.hash)); m != 0; m &= m - 1) {
    const uint32_t node = b.node[std::countr_zero(m) >> 1];
    const CtEntry* e = &entries_[node >> 1];
    __builtin_prefetch(e);
    if (p.tuple.proto == kProtoTcp || p.tuple.proto == kProtoSctp) __builtin_prefetch(&e->tcp);
    if (p.candidate == kNoEntry) p.candidate = node;
  }
  return p.candidate;
}

inline void ConntrackTable::finish(CtProbe& p) const noexcept {
  if (p.generation == generation_) {
    if (p.candidate == kNoEntry && p.complete) {
      p.node = kNoEntry;
      return;
    }
    if (p.candidate != kNoEntry && same(entries_[p.candidate >> 1].tuple[p.candidate & 1], p.tuple)) {
      p.node = resolve(p.candidate, p.tuple);
      return;
    }
  }
  p.node = lookup(p.tuple, p.hash);
}

inline uint32_t ConntrackTable::lookup(const Tuple& t, uint64_t hash) const noexcept {
  const uint16_t sig = sig_of(hash);
  for (const Bucket* b = &buckets_[bucket_index(hash)];; b = &next_bucket(*b)) {
    for (uint32_t m = match(*b, sig); m != 0; m &= m - 1) {
      const uint32_t node = b->node[std::countr_zero(m) >> 1];
      if (same(entries_[node >> 1].tuple[node & 1], t)) return resolve(node, t);
    }
    if (b->next == kNone) return kNoEntry;
  }
}

inline void ConntrackTable::refresh(uint32_t slot, uint32_t timeout_s) noexcept {
  CtEntry& e = entries_[slot];
  if ((e.status & ct_status::kConfirmed) == 0) {
    e.timeout_s = timeout_s;  // starts at confirmation
    return;
  }
  if ((e.status & ct_status::kDying) != 0) return;
  e.deadline_ns = clock_ns_ + seconds(timeout_s);
  // Later: the sweep follows it. Earlier: it must be found by then.
  if (static_cast<int32_t>(static_cast<uint32_t>(e.deadline_ns >> kWheelShift) - e.wheel_tick) < 0) relink(slot);
}

[[gnu::always_inline]] inline uint8_t ConntrackTable::track_fast(const PacketKey& key, const uint8_t* frame, uint32_t,
                                                                  uint64_t now_ns, L4Check check,
                                                                  const CtProbe& probe) noexcept {
  const uint32_t slot = probe.slot();
  const CtDir dir = probe.dir();
  CtEntry& e = entries_[slot];
  const uint64_t now = std::max(clock_ns_, now_ns);
  if (e.deadline_ns <= now) return 0;
  if (config_.checksum && check == L4Check::Verify && !l4_checksum_ok(frame, key.l3_off + uint32_t{key.l3_len}, key))
    return 0;
  const bool seen_reply = (e.status & ct_status::kSeenReply) != 0;
  const bool assured = (e.status & ct_status::kAssured) != 0;
  uint32_t timeout = 0;
  bool set_assured = false;
  switch (key.proto) {
    case kProtoTcp: {
      const TcpSegment seg = tcp_segment_of(frame, key);
      TcpUpdate u;
      if (!tcp_track_fast(e.tcp, dir, seg, seen_reply, assured, config_.tcp, u)) return 0;
      timeout = u.timeout_s;
      set_assured = u.set_assured;
      break;
    }
    case kProtoUdp: {
      const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;  // the parser checked 8 bytes fit
      const uint16_t udp_len = load_be16(frame + key.l4_off + 4);
      if (udp_len > l3_end - key.l4_off || udp_len < 8) return 0;
      // A zero checksum was not checked (nor counted) by process().
      if (check == L4Check::TrustedBad && load_be16(frame + key.l4_off + 6) == 0) check = L4Check::Skip;
      // Both ways seen: a stream once the flow is older than 2 s (ASSURED
      // says it was, and time only moves on).
      if (seen_reply && (assured || now > links_[slot].start_ns + kUdpStreamAfterNs)) {
        timeout = config_.udp_stream_timeout;
        set_assured = true;
      } else {
        timeout = config_.udp_timeout;
      }
      break;
    }
    case kProtoUdplite: {
      // The parser saw the 8-byte header (the entry has ports); the
      // checksum was verified above when it had to be.
      const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
      if (udplite_coverage(load_be16(frame + key.l4_off + 4), l3_end - key.l4_off) == 0 ||
          load_be16(frame + key.l4_off + 6) == 0)
        return 0;
      // No 2-second rule for UDP-Lite: any packet after a reply makes it a stream.
      timeout = seen_reply ? config_.udp_stream_timeout : config_.udp_timeout;
      set_assured = seen_reply;
      break;
    }
    case kProtoSctp: {
      // On a copy: anything but a plain accept goes to process(), which
      // starts from the entry as it was.
      SctpConn c = e.sctp;
      const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
      const SctpUpdate u =
          sctp_track(c, dir, frame + key.l4_off, l3_end - key.l4_off, /*confirmed=*/true, config_.sctp);
      if (u.verdict != SctpVerdict::Accept) return 0;
      e.sctp = c;  // committed below with the rest: nothing can fail from here on
      timeout = u.timeout_s;
      set_assured = u.set_assured;
      break;
    }
    case kProtoGre: {
      // Only GRE the NAT step rewrites without trouble: 8 bytes of header,
      // version 0, or 1 with PPP (anything else goes the slow way).
      const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
      if (l3_end - key.l4_off < sizeof(GreHdr)) return 0;
      const GreHdr& h = *header_at<GreHdr>(frame + key.l4_off);
      const uint16_t version = h.flags_version.host() & GreHdr::kVersionMask;
      if (version > 1 || (version == 1 && h.protocol.host() != GreHdr::kProtoPpp)) return 0;
      timeout = seen_reply ? config_.gre_stream_timeout : config_.gre_timeout;
      set_assured = seen_reply;
      break;
    }
    case kProtoIcmp:
      if (!key.has(key_flag::kIcmp) || key.icmp_type > kIcmpLastKnownType || icmp_is_error(key.icmp_type) ||
          !icmp_opens(e.tuple[0].icmp_type()))
        return 0;
      timeout = config_.icmp_timeout;
      break;
    default:
      timeout = config_.generic_timeout;
      break;
  }
  // Committed: what process() would have done from here on (refresh() of a
  // confirmed live entry, then SEEN_REPLY).
  clock_ns_ = now;
  if (config_.checksum && check == L4Check::TrustedBad) ++counters_.trusted_bad_checksum;
  ++counters_.found;
  e.deadline_ns = now + seconds(timeout);
  if (static_cast<int32_t>(static_cast<uint32_t>(e.deadline_ns >> kWheelShift) - e.wheel_tick) < 0) relink(slot);
  e.status |= (set_assured ? ct_status::kAssured : 0U) | (dir == CtDir::Reply ? ct_status::kSeenReply : 0U);
  return (dir == CtDir::Reply || seen_reply) ? kCtEstablished : kCtNew;
}

}  // namespace nfb
