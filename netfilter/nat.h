// NAT: the bindings a connection gets on its first packet (DNAT, SNAT,
// MASQUERADE, REDIRECT, or a null binding) and the rewriting of every packet
// of a NATed connection, both directions, with incrementally updated
// checksums -- what Linux's nf_nat does (facts from net/netfilter/
// nf_nat_core.c, nf_nat_proto.c, nf_nat_masquerade.c, nf_nat_redirect.c of
// a 6.x tree, and measured on Linux 6.18 by tests/nat_kernel_test.cpp).
//
// Idea: NAT never stores a "translation" of its own. A binding is expressed
// by changing the conntrack entry's REPLY tuple: a connection C:c -> H:10000
// DNATed to S:6379 gets REPLY S:6379 -> C:c instead of H:10000 -> C:c, and
// the status bit DST_NAT. Every later packet, either direction, is rewritten
// to look like the inverse of the OTHER direction's tuple (nf_nat_manip_pkt):
// an ORIGINAL packet is made to match invert(REPLY), a REPLY packet
// invert(ORIGINAL). Which half (source or destination) a hook rewrites is
// fixed by the hook (nat_manip_of), and whether it rewrites anything by the
// entry's status and the packet's direction (nat_rewrites, with its table).
//
// Binding (control of one connection, on the packet path: noexcept, no
// allocation). The pipeline walks the nat chain of a hook only while the
// entry is not nat_initialized() for that hook's manip; a walk that ends in
// DNAT/SNAT/MASQUERADE/REDIRECT calls nat_bind(), any other end calls
// nat_null_binding(). Both run the kernel's nf_nat_setup_info():
//   1. SNAT only, unless --random/--random-fully: keep the current tuple if
//      its source lies in the range and its reply tuple is free; else reuse
//      the mapping an earlier connection from the same source address, port
//      and protocol got (the kernel's bysource table, kept by NatTable), if
//      it lies in the range and is free.
//   2. Address: a single address is taken as is; from a range, the kernel
//      picks min + ((jhash2(src) seeded with dst) * size >> 32): a hash of
//      the addresses, so the same client always gets the same address
//      (--persistent drops dst from the hash). Deterministic: see
//      nat_select_address().
//   3. Port (TCP/UDP) or ICMP id: kept when it lies in the --to-ports range
//      (or no range was given) and the reply tuple is free (a one-port range
//      is kept even if taken). Otherwise searched: the range, or with no
//      range the class of the original port (1..511, 600..1023 or
//      1024..65535; a destination port without a range is never changed;
//      an ICMP id searches 0..65535), from an offset -- 0 for DNAT/REDIRECT,
//      port - base for DNAT's /base, and a RANDOM number (get_random_u16())
//      for SNAT, MASQUERADE and null bindings, with or without --random --
//      trying up to 128 consecutive values, then 64, 32, 16 from new random
//      offsets. A search that finds nothing keeps the last candidate; the
//      clash then makes confirm() fail and the packet is dropped.
//   Because of that random offset, the port a SNAT/MASQUERADE connection gets
//   when its own port is taken cannot be predicted: the kernel picks a
//   different one on every run (measured). The model draws its offsets from
//   a seeded generator (NatTable), so a run is reproducible and every rule
//   it follows (class, range, uniqueness, reuse) is the kernel's.
//
// Applying (packet path, every packet of a connection): nat_apply() rewrites
// the IPv4 address, the TCP/UDP port or the ICMP query id, updates the IP
// header checksum and the TCP/UDP/ICMP checksum incrementally (RFC 1624 eq.
// 3 with the kernel's arithmetic, so the bytes equal the kernel's: a UDP
// checksum 0 stays 0, one that becomes 0 is sent as 0xffff), and rewrites
// the PacketKey so later rules see the new tuple. ICMP errors RELATED to a
// NATed flow get the embedded header rewritten the other way round (inner
// addresses, ports/id, inner IP checksum, inner L4 checksum when the quote
// holds it), their ICMP checksum recomputed over the message (as the kernel
// does; an ICMP error is at most a few hundred bytes), then the outer
// address.
//
// Not modelled: the destructive reuse of TIME_WAIT tuples in the last 32
// attempts of a TCP port search (nf_nat_used_tuple_harder), the SMP
// reverse-clash exception (nf_nat_used_tuple_new: it needs two new entries
// in flight at once), conntrack helpers (FTP, SIP...), GRE keys, SCTP/DCCP/
// UDP-Lite ports (conntrack tracks those protocols as generic, so only their
// addresses are rewritten and their L4 checksum is left alone).
//
// Zones (raw's CT --zone): every tuple carries its direction's zone id, so
// a binding's REPLY tuple is free or taken within its zone, a source
// mapping is reused only within the ORIGINAL direction's zone, and the
// address hash is keyed with the zone id, as the kernel does.
//
// Fragments: the kernel reassembles before conntrack (nf_defrag_ipv4), NATs
// the whole datagram and refragments it on output, so every fragment leaves
// with the new addresses and only the first carries the rewritten L4 header.
// nat_apply() does exactly that to a fragment it is given (L4 only when the
// fragment offset is 0); attaching later fragments to their connection is
// the pipeline's business (conntrack itself calls them INVALID).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "netfilter/conntrack.h"
#include "netfilter/host.h"
#include "packet/byte_order.h"
#include "packet/crc32c.h"
#include "packet/packet_key.h"
#include "rules/rule.h"

namespace nfb {

/// Which half of a tuple a binding or a hook rewrites.
enum class NatManip : uint8_t { Src, Dst };

constexpr NatManip opposite(NatManip m) noexcept {
  return m == NatManip::Src ? NatManip::Dst : NatManip::Src;
}

/// The kernel's HOOK2MANIP: POSTROUTING and INPUT rewrite the source (SNAT
/// hooks), PREROUTING and OUTPUT the destination (DNAT hooks). FORWARD has
/// no nat table; it maps to Dst like the kernel's macro.
constexpr NatManip nat_manip_of(Hook h) noexcept {
  return h == Hook::Postrouting || h == Hook::Input ? NatManip::Src : NatManip::Dst;
}

/// Whether the nat table was consulted for this manip already (the status
/// bit SRC_NAT_DONE / DST_NAT_DONE): then it is never walked again for the
/// connection, and nat_bind()/nat_null_binding() must not be called.
constexpr bool nat_initialized(const CtEntry& e, NatManip m) noexcept {
  return (e.status & (m == NatManip::Src ? ct_status::kSrcNatDone : ct_status::kDstNatDone)) != 0;
}

/// Does a packet of direction `dir` get rewritten by the hook of manip `m`?
///
///   manip (hooks)                  dir       rewritten when the entry has
///   Dst (PREROUTING, OUTPUT)       ORIGINAL  DST_NAT: destination -> DNAT/REDIRECT target
///   Dst (PREROUTING, OUTPUT)       REPLY     SRC_NAT: destination -> the original source
///                                                     (undoing SNAT/MASQUERADE)
///   Src (POSTROUTING, INPUT)       ORIGINAL  SRC_NAT: source -> SNAT/MASQUERADE address:port
///   Src (POSTROUTING, INPUT)       REPLY     DST_NAT: source -> the original destination
///                                                     (undoing DNAT/REDIRECT)
///
/// (nf_nat_packet: the manip's own status bit, swapped for the reply
/// direction.) The same table decides ICMP errors RELATED to the entry.
constexpr bool nat_rewrites(const CtEntry& e, CtDir dir, NatManip m) noexcept {
  const bool src_side = (m == NatManip::Src) == (dir == CtDir::Original);
  return (e.status & (src_side ? ct_status::kSrcNat : ct_status::kDstNat)) != 0;
}

/// nf_nat_range2 flags (NF_NAT_RANGE_*, same values).
namespace nat_range_flag {
inline constexpr uint32_t kMapIps = 1U << 0;
inline constexpr uint32_t kProtoSpecified = 1U << 1;
inline constexpr uint32_t kProtoRandom = 1U << 2;
inline constexpr uint32_t kPersistent = 1U << 3;
inline constexpr uint32_t kProtoRandomFully = 1U << 4;
inline constexpr uint32_t kProtoOffset = 1U << 5;
inline constexpr uint32_t kProtoRandomAll = kProtoRandom | kProtoRandomFully;
}  // namespace nat_range_flag

/// What nf_nat_setup_info() is given: the address range (kMapIps), the
/// port/id range (kProtoSpecified; for ICMP it bounds the id), the DNAT
/// port shift base (kProtoOffset) and the random/persistent switches. Host
/// byte order.
struct NatRangeSpec {
  uint32_t flags = 0;
  uint32_t min_addr = 0;
  uint32_t max_addr = 0;
  uint16_t min_proto = 0;
  uint16_t max_proto = 0;
  uint16_t base_proto = 0;
};

/// The spec a DNAT/SNAT rule's range gives (iptables' --to-destination /
/// --to-source with --random, --random-fully, --persistent).
NatRangeSpec nat_range_spec(const NatRange& r) noexcept;

// NAT counters, in ONE list: X(field, description)
#define NFB_NAT_COUNTER_LIST(X)                                                           \
  X(bound_src, "source bindings that changed the tuple (SNAT, MASQUERADE, a null "        \
               "binding that had to move the source port)")                               \
  X(bound_dst, "destination bindings that changed the tuple (DNAT, REDIRECT)")            \
  X(unchanged, "bindings that left the tuple as it was (null bindings, mostly)")          \
  X(source_reused, "SNAT mappings reused from an earlier connection of the same source")  \
  X(searched, "port/id searches (the tuple's own port/id was out of range or taken)")    \
  X(unresolved, "searches that found no free tuple: the packet dies at confirm")          \
  X(no_address, "MASQUERADE/REDIRECT with no address to use: packet dropped")             \
  X(refused, "bind calls refused: no such unconfirmed entry, manip bound already, "       \
             "or a target that does not fit the manip")

struct NatCounters {
#define NFB_NAT_COUNTER_FIELD(field, desc) uint64_t field = 0;
  NFB_NAT_COUNTER_LIST(NFB_NAT_COUNTER_FIELD)
#undef NFB_NAT_COUNTER_FIELD
  friend bool operator==(const NatCounters&, const NatCounters&) noexcept = default;
};

/// NAT's own per-connection memory, beside a ConntrackTable: the kernel's
/// bysource table (connections that got a source binding, by ORIGINAL source
/// address, port and protocol, newest first, so a source keeps its mapping
/// across connections), the out interface of MASQUERADEd connections (a
/// later ORIGINAL packet leaving by another interface is dropped), the
/// random numbers of the port search, and counters.
///
/// Memory layout: one 24-byte node per conntrack slot (an entry's handle
/// indexes it directly; the entry's creation id tells a live node from one
/// left by an earlier occupant of the slot, which is unlinked lazily when a
/// lookup meets it) and a bucket array of list heads, both allocated at
/// construction. Cost: link O(1); lookup O(entries with the same bucket).
class NatTable {
 public:
  static constexpr uint64_t kDefaultSeed = 0x6e61'745f'7365'6564ULL;

  /// Sized for `ct`'s capacity (allocates once; throws std::bad_alloc).
  /// `seed` fixes the port-search offsets, so a run is reproducible.
  explicit NatTable(const ConntrackTable& ct, uint64_t seed = kDefaultSeed);

  /// The next number of the seeded generator (the model's get_random_u16()).
  uint16_t random_u16() noexcept;

  /// Records that `entry` got a source binding (nf_nat_setup_info for SRC).
  void link_source(uint32_t entry, const CtEntry& e) noexcept;

  /// The kernel's find_appropriate_src: among live connections other than
  /// `self` whose ORIGINAL source address, port and protocol equal `t`'s,
  /// newest first, the first whose mapping (the inverse of its REPLY tuple,
  /// with t's destination half) lies in `range` (address if kMapIps, port/id
  /// if kProtoSpecified). True and `mapped` set when one is found.
  bool find_source(const ConntrackTable& ct, uint32_t self, const Tuple& t,
                   const NatRangeSpec& range, Tuple& mapped) noexcept;

  /// MASQUERADE remembers the out interface (nat->masq_index).
  void set_masquerade_iface(uint32_t entry, const CtEntry& e, uint16_t iface) noexcept;
  /// kNoIface unless `entry` (still the same connection) was MASQUERADEd.
  uint16_t masquerade_iface(uint32_t entry, const CtEntry& e) const noexcept;

  /// The kernel's nf_nat_oif_changed: an ORIGINAL-direction packet of a
  /// MASQUERADEd connection reaching POSTROUTING with another out interface
  /// than its first packet. The kernel then deletes the entry and drops the
  /// packet (the pipeline drops it; see the report on deleting the entry).
  bool masquerade_oif_changed(uint32_t entry, const CtEntry& e, CtDir dir, Hook hook,
                              uint16_t out_iface) const noexcept;

  const NatCounters& counters() const noexcept { return counters_; }
  NatCounters& counters() noexcept { return counters_; }

 private:
  static constexpr uint32_t kNone = 0xffffffffU;
  struct Node {
    uint64_t id = 0;          // CtEntry::id of the connection the node belongs to; 0 = unused
    uint32_t prev = kNone;    // bysource list links (slots)
    uint32_t next = kNone;
    uint32_t bucket = kNone;  // the list it is on; kNone = not linked
    uint16_t masq_iface = kNoIface;
    uint16_t pad = 0;
  };
  static_assert(sizeof(Node) == 24);

  uint32_t bucket_of(uint32_t src, uint16_t sport, uint8_t proto) const noexcept;
  void unlink(uint32_t slot) noexcept;
  // A node that still describes the live connection in its slot.
  bool live(const ConntrackTable& ct, uint32_t slot) const noexcept;

  std::vector<Node> nodes_;
  std::vector<uint32_t> buckets_;
  uint64_t seed_;
  uint64_t rng_;
  NatCounters counters_;
};

/// Everything a binding needs besides the entry and the target.
struct NatContext {
  Hook hook = Hook::Prerouting;
  uint16_t in_iface = kNoIface;   // REDIRECT at PREROUTING: its first address is the new destination
  uint16_t out_iface = kNoIface;  // MASQUERADE: the interface whose address is taken
  uint32_t next_hop = 0;          // MASQUERADE: the route's gateway, or the destination on-link
  const HostModel* host = nullptr;  // MASQUERADE, REDIRECT (required for them)
  /// Source-mapping memory, random numbers and counters. May be null: then
  /// earlier source mappings are not reused and the port search starts at a
  /// hash of the tuple instead of a random number.
  NatTable* nat = nullptr;
};

/// nf_nat_setup_info(): binds `manip` of the UNCONFIRMED entry `entry` to
/// `range` (see the top comment for the steps): changes the REPLY tuple if
/// the tuple changes (setting SRC_NAT/DST_NAT), links source bindings into
/// nat's bysource table, and sets SRC_NAT_DONE/DST_NAT_DONE. Returns false
/// when the kernel would drop the packet: the manip was bound already (or
/// `entry` is not an entry). A confirmed entry is left alone (true). Cost:
/// one or two conntrack lookups, plus a bysource walk for a source binding
/// out of range; a port search adds one lookup per candidate, at most
/// 128 + 64 + 32 + 16.
bool nat_setup(ConntrackTable& ct, uint32_t entry, NatManip manip, const NatRangeSpec& range,
               NatTable* nat) noexcept;

/// The binding of a NAT target that ended the nat chain walk of ctx.hook:
/// DnatTarget and RedirectTarget need manip Dst, SnatTarget and
/// MasqueradeTarget manip Src (the hook's, nat_manip_of(ctx.hook)).
///  - DNAT/SNAT: the rule's range.
///  - MASQUERADE: ctx.host->masquerade_source(ctx.out_iface, ctx.next_hop)
///    with the rule's ports/random flags; a connection whose ORIGINAL source
///    is 0.0.0.0 gets a null binding instead (the kernel's "probably not
///    supposed to be masqueraded").
///  - REDIRECT: 127.0.0.1 at OUTPUT; at PREROUTING the first address of the
///    in interface (any scope: the kernel takes ifa_list's head), with the
///    rule's ports.
/// Returns false when the packet is dropped: MASQUERADE/REDIRECT finds no
/// address (or no host), the manip is bound already, the target is not a
/// NAT target or does not fit `manip`.
bool nat_bind(ConntrackTable& ct, uint32_t entry, NatManip manip, const Target& target,
              const NatContext& ctx) noexcept;

/// No NAT rule matched at this hook: the kernel's null binding, a binding to
/// the connection's current address with no port range -- so a source
/// binding still moves the source port when the reply tuple is taken (the
/// port class search above; e.g. a DNATed connection that would collide
/// with an existing one), a destination binding never moves a port (an ICMP
/// id may move). Returns false as nat_setup().
bool nat_null_binding(ConntrackTable& ct, uint32_t entry, NatManip manip,
                      const NatContext& ctx) noexcept;

/// nf_nat_packet() / nf_nat_icmp_reply_translation() for one packet of
/// entry `e`, direction `dir`, at a hook of manip `manip`: rewrites `key` and
/// the frame bytes when nat_rewrites() says so (see the top comment).
/// `key` must come from parse_frame() on `frame` (status Ok); `frame` may be
/// null, then only the key is rewritten. An ICMP error (type 3, 4, 5, 11,
/// 12 with an embedded header) is taken to be RELATED to `e` in direction
/// `dir`, as conntrack said. Returns false when the kernel drops the packet:
/// the L4 header is too short to rewrite (TCP < 8 bytes, UDP/ICMP < 8), an
/// ICMP error with a wrong checksum, quoting less than an IP header, or a
/// redirect (type 5) about a NATed connection. Cost: O(1) for a normal
/// packet; for an ICMP error one pass over its bytes.
bool nat_apply(const CtEntry& e, CtDir dir, NatManip manip, PacketKey& key, uint8_t* frame,
               uint32_t len) noexcept;

/// One direction of a connection's whole rewrite, computed once when its
/// path is recorded (nat_rewrite_for) and applied to each later packet of
/// that direction (nat_rewrite_apply) -- what nat_apply() at the Dst hook,
/// the TTL decrement of a forwarded packet and nat_apply() at the Src hook
/// do to it, in one step. The checksum updates are precomputed RFC 1624
/// sums: the IP header's over the changed addresses and the TTL, the L4
/// checksum's over the changed addresses (pseudo header) and ports (or the
/// ICMP query id). Because a checksum update with the kernel's arithmetic
/// (checksum_replace32/16) depends only on the sum of the changes modulo
/// 0xffff, folding all changes into one update gives the same bytes as the
/// kernel's update per field, provided an update is made exactly when the
/// kernel makes one (any manip that applies, or the TTL). A test compares
/// the bytes with nat_apply() and the TTL decrement on random connections.
struct NatRewrite {
  static constexpr uint8_t kSrc = 1U << 0;      // the source half changes (SNAT, MASQUERADE, or undoing DNAT)
  static constexpr uint8_t kDst = 1U << 1;      // the destination half changes
  static constexpr uint8_t kTtl = 1U << 2;      // forwarded: the TTL is decremented
  uint32_t src = 0;       // the addresses the packet leaves with (host order)
  uint32_t dst = 0;
  uint16_t sport = 0;     // TCP/UDP: the ports it leaves with; ICMP query: sport is the id
  uint16_t dport = 0;
  uint16_t ip_sum = 0;    // ones' complement sum of the IP header's changes, folded
  uint16_t l4_sum = 0;    // ... of the L4 checksum's
  uint8_t what = 0;       // kSrc | kDst | kTtl
  uint8_t proto = 0;      // the connection's protocol
};

/// The rewrite of a packet of `e` in direction `dir` (its tuple is
/// e.tuple[dir]): the manips nat_rewrites() says apply, and the TTL
/// decrement when `forwarded`. ICMP errors are not covered (they carry
/// their own quoted header): the caller leaves them to nat_apply().
NatRewrite nat_rewrite_for(const CtEntry& e, CtDir dir, bool forwarded) noexcept;

/// Applies `rw` to a packet of its connection and direction: `key` from
/// parse_frame() (status Ok, not a fragment, not an ICMP error) on `frame`
/// (the L4 header is there: the parser checked it). Rewrites the key as
/// well. Cost: a few stores and two checksum folds; nothing when `what` is 0.
[[gnu::always_inline]] inline void nat_rewrite_apply(const NatRewrite& rw, PacketKey& key, uint8_t* frame) noexcept {
  if (rw.what == 0) return;
  const auto update = [](uint8_t* at, uint16_t sum) {
    // ~fold(0xffff + ~check + sum): checksum_replace32/16's arithmetic.
    uint32_t v = 0xffffU + static_cast<uint16_t>(~load_be16(at)) + sum;
    v = (v & 0xffffU) + (v >> 16);
    v = (v & 0xffffU) + (v >> 16);
    return static_cast<uint16_t>(~v);
  };
  uint8_t* ip = frame + key.l3_off;
  if ((rw.what & NatRewrite::kTtl) != 0) {
    ip[8] = static_cast<uint8_t>(ip[8] - 1U);
    key.ttl = static_cast<uint8_t>(key.ttl - 1U);
  }
  if ((rw.what & (NatRewrite::kSrc | NatRewrite::kDst)) != 0) {
    uint8_t* l4 = frame + key.l4_off;
    switch (rw.proto) {
      case kProtoTcp:
        store_be16(l4 + 16, update(l4 + 16, rw.l4_sum));
        store_be16(l4, rw.sport);
        store_be16(l4 + 2, rw.dport);
        key.src_port = rw.sport;
        key.dst_port = rw.dport;
        break;
      case kProtoUdp:
      case kProtoUdplite:
        // UDP: 0 is no checksum, and none is made up; UDP-Lite has one.
        if (load_be16(l4 + 6) != 0 || rw.proto == kProtoUdplite) {
          const uint16_t c = update(l4 + 6, rw.l4_sum);
          store_be16(l4 + 6, c == 0 ? 0xffff : c);
        }
        store_be16(l4, rw.sport);
        store_be16(l4 + 2, rw.dport);
        key.src_port = rw.sport;
        key.dst_port = rw.dport;
        break;
      case kProtoSctp: {
        // No sum to update: the CRC32c is computed anew over the packet.
        store_be16(l4, rw.sport);
        store_be16(l4 + 2, rw.dport);
        key.src_port = rw.sport;
        key.dst_port = rw.dport;
        const uint32_t n = static_cast<uint32_t>(key.l3_off) + key.l3_len - key.l4_off;  // >= 12: the parser saw it
        sctp_store_checksum(l4, sctp_checksum(l4, n));
        break;
      }
      case kProtoIcmp:
        store_be16(l4 + 2, update(l4 + 2, rw.l4_sum));
        store_be16(l4 + 4, rw.sport);
        key.icmp_id = rw.sport;
        break;
      default:
        break;  // addresses only
    }
    store_be32(ip + 12, rw.src);
    store_be32(ip + 16, rw.dst);
    key.src_ip = rw.src;
    key.dst_ip = rw.dst;
  }
  store_be16(ip + 10, update(ip + 10, rw.ip_sum));
}

/// Step 2 above: the address the kernel gives a connection of current tuple
/// `t` from [min_addr, max_addr], for either manip (find_best_ips_proto: Bob
/// Jenkins' lookup3 hashword over the source address as the x86 kernel holds
/// it in memory, 4 words, initval the destination likewise unless
/// persistent, XORed with the connection's zone id; then min + hash *
/// (max - min + 1) / 2^32, all modulo 2^32).
uint32_t nat_select_address(const Tuple& t, uint32_t min_addr, uint32_t max_addr, bool persistent,
                            uint16_t zone_id = 0) noexcept;

/// Bob Jenkins' lookup3 hashword() (the kernel's jhash2) over `n` words.
uint32_t jhash_words(const uint32_t* k, std::size_t n, uint32_t initval) noexcept;

}  // namespace nfb
