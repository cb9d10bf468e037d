// PacketKey: the fixed-layout summary of one frame that every classifier,
// conntrack and the rule matchers read instead of the frame itself.
//
// Idea: parse once (packet/frame_parser.h), then let every later stage work
// on 64 bytes that sit in one cache line, with no pointer chasing and no
// per-protocol branching to find a field. All multi-byte fields are in HOST
// byte order, because classifiers compare ranges (`--dport 1000:2000`,
// `10.0.0.0/8`) and a range test on a network-order integer is wrong on a
// little-endian machine. Only IPv4 is represented; IPv6 frames are recognised
// by the parser and counted, not keyed.
//
// Memory layout (byte offsets; the struct has no padding, so keys can be
// compared and hashed as raw bytes):
//
//    0 src_ip      4 dst_ip      8 src_port   10 dst_port  12 icmp_id  14 l3_len
//   16 proto      17 tcp_flags  18 icmp_type  19 icmp_code 20 ifindex  22 frag
//   24 ip_id      26 ttl        27 tos        28 flags     29 pkttype  30 l3_off
//   32 l4_off     34 payload_off 36 vlan_id   38 src_mac[6]
//   44 inner: 44 src_ip 48 dst_ip 52 src_port 54 dst_port 56 icmp_id 58 l3_off
//             60 proto 61 icmp_type 62 icmp_code 63 flags
//
// The first 24 bytes hold everything a 5-tuple classifier looks at, so a
// lookup that touches only them reads the first 3 words of the line.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "packet/ip_protocol.h"
#include "packet/tcp_flags.h"

namespace nfb {

/// Bits of the IPv4 flags/fragment-offset field (PacketKey::frag, host order).
namespace ip_frag {
inline constexpr uint16_t kReserved = 0x8000;
inline constexpr uint16_t kDontFragment = 0x4000;
inline constexpr uint16_t kMoreFragments = 0x2000;
inline constexpr uint16_t kOffsetMask = 0x1fff;  // in units of 8 bytes
}  // namespace ip_frag

/// How the frame was addressed at link level, with the values of Linux's
/// PACKET_* constants (skb->pkt_type), which is what `-m pkttype` tests and
/// what the SLL/SLL2 capture headers carry.
enum class PktType : uint8_t {
  Host = 0,       // unicast (iptables "unicast"); also raw-IP links
  Broadcast = 1,  // ff:ff:ff:ff:ff:ff
  Multicast = 2,  // group bit set in the destination MAC
  OtherHost = 3,  // SLL only: unicast to another host (promiscuous capture)
  Outgoing = 4,   // SLL only: sent by the capturing host
  Loopback = 5,   // SLL only
  User = 6,       // SLL only
  Kernel = 7,     // SLL only
  Unknown = 0xff, // SLL packet type outside 0..7
};

/// PacketKey::flags: which optional fields hold data. A field whose bit is
/// clear is zero.
namespace key_flag {
inline constexpr uint8_t kPorts = 0x01;     // src_port/dst_port (TCP, UDP, UDP-Lite or SCTP header seen)
inline constexpr uint8_t kTcpFlags = 0x02;  // tcp_flags (TCP header seen)
inline constexpr uint8_t kIcmp = 0x04;      // icmp_type/icmp_code (ICMP header seen)
inline constexpr uint8_t kIcmpId = 0x08;    // icmp_id (ICMP query: echo, timestamp, info, mask)
inline constexpr uint8_t kInner = 0x10;     // inner: an ICMP error with a usable embedded IP header
inline constexpr uint8_t kMac = 0x20;       // src_mac (Ethernet, or SLL with a 6-byte address)
inline constexpr uint8_t kVlan = 0x40;      // at least one 802.1Q/802.1ad tag; vlan_id is the outer VID
inline constexpr uint8_t kQinQ = 0x80;      // two tags (vlan_id is still the outer one)
inline constexpr uint8_t kAnyL4 = kPorts | kTcpFlags | kIcmp | kIcmpId;
}  // namespace key_flag

/// InnerTuple::flags.
namespace inner_flag {
inline constexpr uint8_t kPorts = 0x01;   // inner TCP/UDP/SCTP/UDP-Lite: src_port/dst_port (>= 4 bytes seen)
inline constexpr uint8_t kIcmp = 0x02;    // inner ICMP: icmp_type/icmp_code (>= 8 bytes seen)
inline constexpr uint8_t kIcmpId = 0x04;  // inner ICMP query: icmp_id
inline constexpr uint8_t kFragment = 0x08;  // inner header has MF set or a non-zero offset
}  // namespace inner_flag

/// The header embedded in an ICMP error (types 3, 4, 5, 11, 12): the packet
/// that caused the error, as the sender saw it. Conntrack inverts this tuple
/// to find the flow the error is RELATED to. Host order like PacketKey.
///
/// Present (PacketKey::flags & key_flag::kInner) when the embedded IPv4 header
/// is complete within the outer packet: version 4, IHL >= 5, IHL*4 bytes. Its
/// total length is NOT checked (it describes the original packet, of which
/// only a prefix is quoted). L4 fields follow the kernel's conntrack
/// (nf_ct_get_tuplepr): none for a non-first inner fragment; TCP/UDP ports
/// need 4 bytes after the inner IP header; an inner ICMP needs 8 bytes. An
/// inner TCP/UDP header with fewer bytes leaves kPorts clear: conntrack then
/// finds no flow and the error is INVALID, as in the kernel.
struct InnerTuple {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;   // inner TCP/UDP only
  uint16_t dst_port = 0;   // inner TCP/UDP only
  uint16_t icmp_id = 0;    // inner ICMP query only
  uint16_t l3_off = 0;     // offset of the inner IP header in the frame (for NAT rewriting)
  uint8_t proto = 0;
  uint8_t icmp_type = 0;   // inner ICMP only
  uint8_t icmp_code = 0;   // inner ICMP only
  uint8_t flags = 0;       // inner_flag bits

  friend constexpr bool operator==(const InnerTuple&, const InnerTuple&) noexcept = default;
};
static_assert(sizeof(InnerTuple) == 20);

/// One parsed frame. Filled by parse_frame(); all fields host order.
///
/// Fragments: `frag` is the IPv4 flags/offset field. A fragment is any packet
/// with MF set or a non-zero offset (what `iptables -f` sees as a fragment is
/// the NON-FIRST ones, offset != 0). A non-first fragment has no L4 header:
/// ports, tcp_flags, ICMP fields and inner stay zero and their flag bits clear,
/// so port matches never match it, as in the kernel. The first fragment
/// (offset 0, MF set) carries the L4 header and is keyed like a whole packet.
///
/// Offsets are from the start of the frame. l4_off is always l3_off plus the
/// IP header length (the start of the IP payload, even for a non-first
/// fragment or a protocol the parser does not decode). payload_off is where
/// the bytes after the decoded L4 header start (TCP: after its options; UDP,
/// ICMP: l4_off + 8); it equals l4_off when no L4 header was decoded. Bytes
/// from l3_off + l3_len to the end of the frame are link padding.
struct alignas(64) PacketKey {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;    // TCP/UDP; 0 for ICMP and other protocols
  uint16_t dst_port = 0;
  uint16_t icmp_id = 0;     // ICMP query identifier (echo/reply, timestamp, info, mask)
  uint16_t l3_len = 0;      // IP total length: what iptables byte counters count
  uint8_t proto = 0;        // IP protocol number
  uint8_t tcp_flags = 0;    // tcp_flag bits
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t ifindex = 0;     // interface the frame was seen on (caller's numbering)
  uint16_t frag = 0;        // IPv4 flags + fragment offset (ip_frag bits)
  uint16_t ip_id = 0;
  uint8_t ttl = 0;
  uint8_t tos = 0;          // whole TOS byte (DSCP << 2 | ECN)
  uint8_t flags = 0;        // key_flag bits
  PktType pkttype = PktType::Host;
  uint16_t l3_off = 0;      // IP header
  uint16_t l4_off = 0;      // IP payload (L4 header when there is one)
  uint16_t payload_off = 0; // after the decoded L4 header
  uint16_t vlan_id = 0;     // outer VLAN id (12 bits) when flags & kVlan
  std::array<uint8_t, 6> src_mac{};  // wire order, when flags & kMac
  InnerTuple inner;         // when flags & kInner

  /// IP header length in bytes (20..60).
  constexpr uint16_t ip_hdr_len() const noexcept {
    return static_cast<uint16_t>(l4_off - l3_off);
  }
  /// Fragment offset in bytes.
  constexpr uint32_t frag_offset_bytes() const noexcept {
    return static_cast<uint32_t>(frag & ip_frag::kOffsetMask) * 8U;
  }
  /// MF set or offset non-zero: part of a fragmented datagram.
  constexpr bool is_fragment() const noexcept {
    return (frag & (ip_frag::kMoreFragments | ip_frag::kOffsetMask)) != 0;
  }
  /// Offset zero and MF set: carries the L4 header of a fragmented datagram.
  constexpr bool is_first_fragment() const noexcept {
    return (frag & ip_frag::kOffsetMask) == 0 && (frag & ip_frag::kMoreFragments) != 0;
  }
  /// Offset non-zero: no L4 header (what `iptables -f` matches).
  constexpr bool is_later_fragment() const noexcept {
    return (frag & ip_frag::kOffsetMask) != 0;
  }
  constexpr bool has(uint8_t key_flag_bits) const noexcept {
    return (flags & key_flag_bits) == key_flag_bits;
  }

  friend constexpr bool operator==(const PacketKey&, const PacketKey&) noexcept = default;
};

static_assert(sizeof(PacketKey) == 64, "PacketKey must fill exactly one cache line");
static_assert(alignof(PacketKey) == 64);
static_assert(std::is_trivially_copyable_v<PacketKey>);
static_assert(std::has_unique_object_representations_v<PacketKey>,
              "PacketKey must have no padding: it is compared and hashed as bytes");
static_assert(offsetof(PacketKey, inner) == 44);

}  // namespace nfb
