// Frame parser: raw link-layer frames -> PacketKey + ParseStatus.
//
// Idea: one pass over the headers, front to back, with a bounds check before
// every read, writing host-order fields into a fixed 64-byte key
// (packet/packet_key.h). It understands the link layers found in Linux
// captures (Ethernet II with up to two VLAN tags, Linux cooked capture v1/v2,
// raw IP) and IPv4 with TCP, UDP and ICMP, including the header quoted inside
// an ICMP error. Everything else is either keyed as "other protocol" (status
// Ok, no L4 fields) or rejected with one status per reason, which the caller
// counts in ParseCounters. IPv6 is recognised and rejected as Ipv6NotHandled.
//
// What the kernel's ip_rcv() drops before the PREROUTING hook (short or
// malformed IPv4 header, bad header checksum, total length beyond the frame or
// below the header length) is a parse error here too, so such a frame never
// reaches a rule. L4 problems (TruncatedL4, BadTcpDataOffset) are errors as
// well, but the key's L3 fields are still filled (see status_has_l3()), so a
// caller can still count the packet against L3-only rules if it wants to.
//
// Cost: a few dozen loads and branches per frame, no allocation, no
// exceptions, no reads outside [data, data + len). The burst form with one
// link type per burst takes the link-type switch once per burst; measured in
// bench/frame_parser_bench.cpp at about 45-55 TSC cycles per frame.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "base/enum_names.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/headers.h"
#include "packet/packet_key.h"

namespace nfb {

/// Link-layer header types, with the pcap LINKTYPE_/DLT_ numbers a capture
/// file or pcap_datalink() reports. Any other value parses as
/// UnsupportedLinkType.
enum class LinkType : uint16_t {
  Ethernet = 1,     // LINKTYPE_ETHERNET / DLT_EN10MB
  RawDlt12 = 12,    // DLT_RAW on most systems: IPv4 or IPv6 by version nibble
  RawDlt14 = 14,    // DLT_RAW on OpenBSD
  Raw = 101,        // LINKTYPE_RAW
  LinuxSll = 113,   // Linux cooked capture v1: 16-byte header
  Ipv4 = 228,       // LINKTYPE_IPV4: IPv4 only
  LinuxSll2 = 276,  // Linux cooked capture v2: 20-byte header
};

// Every reason a frame can fail to parse, in ONE list:
//   X(enumerator, counter name, description)
// The enum, the name table and the description table are generated from it.
#define NFB_PARSE_STATUS_LIST(X)                                                         \
  X(Ok, "ok", "parsed; the key is complete")                                             \
  X(UnsupportedLinkType, "unsupported_link_type", "link type the parser does not know")  \
  X(TruncatedL2, "truncated_l2", "frame shorter than its link-layer header")            \
  X(TruncatedVlan, "truncated_vlan", "VLAN tag announced but its 4 bytes are missing")   \
  X(TooManyVlanTags, "too_many_vlan_tags", "more than two VLAN tags")                    \
  X(NotIp, "not_ip", "other ethertype (ARP, LLDP, 802.3 length, ...)")                   \
  X(Ipv6NotHandled, "ipv6_not_handled", "IPv6 frame: recognised, not handled yet")       \
  X(TruncatedIpHeader, "truncated_ip_header",                                            \
    "fewer than 20 bytes, or fewer than IHL*4 bytes, of IPv4 header")                    \
  X(BadIpVersion, "bad_ip_version", "IP version is not 4 (or 6 on a raw link)")          \
  X(BadIpHeaderLength, "bad_ip_header_length", "IPv4 IHL below 5")                       \
  X(BadIpChecksum, "bad_ip_checksum", "IPv4 header checksum does not verify")            \
  X(IpTotalLengthBeyondFrame, "ip_total_length_beyond_frame",                            \
    "IPv4 total length larger than the bytes captured: truncated frame")                 \
  X(IpTotalLengthTooShort, "ip_total_length_too_short",                                  \
    "IPv4 total length smaller than the header length")                                  \
  X(TruncatedL4, "truncated_l4",                                                         \
    "unfragmented or first fragment too short for its L4 header "                        \
    "(TCP 20 bytes and its data offset, UDP 8, ICMP 8)")                                 \
  X(BadTcpDataOffset, "bad_tcp_data_offset", "TCP data offset below 5")

// parse_status_name(): short snake_case name, stable, for counters and JSON
// ("truncated_l4"); parse_status_description(): one line for humans. Both
// give "invalid" out of range.
NFB_NAMED_ENUM(ParseStatus, kParseStatusCount, parse_status_name, parse_status_description,
               NFB_PARSE_STATUS_LIST)

/// True when the key's L3 fields (addresses, proto, l3_len, ttl, tos, ip_id,
/// frag, l3_off, l4_off) are valid despite the status: Ok, TruncatedL4 and
/// BadTcpDataOffset. L4 fields are only valid with Ok.
constexpr bool status_has_l3(ParseStatus s) noexcept {
  return s == ParseStatus::Ok || s == ParseStatus::TruncatedL4 ||
         s == ParseStatus::BadTcpDataOffset;
}

/// Per-status frame counts. Plain data: one instance per thread, merged at
/// the end.
struct ParseCounters {
  std::array<uint64_t, kParseStatusCount> by_status{};

  void add(ParseStatus s) noexcept {
    const auto i = static_cast<std::size_t>(s);
    if (i < kParseStatusCount) ++by_status[i];
  }
  void merge(const ParseCounters& other) noexcept {
    for (std::size_t i = 0; i < kParseStatusCount; ++i) by_status[i] += other.by_status[i];
  }
  uint64_t count(ParseStatus s) const noexcept {
    const auto i = static_cast<std::size_t>(s);
    return i < kParseStatusCount ? by_status[i] : 0;
  }
  /// All frames seen.
  uint64_t total() const noexcept {
    uint64_t t = 0;
    for (uint64_t c : by_status) t += c;
    return t;
  }
  /// Frames with any status other than Ok.
  uint64_t rejected() const noexcept { return total() - count(ParseStatus::Ok); }

  friend bool operator==(const ParseCounters&, const ParseCounters&) noexcept = default;
};

/// Passed as ifindex to mean "take the interface from the frame" (SLL2 carries
/// one; it is used when it fits in 16 bits, else the key gets 0). For other
/// link types the key simply gets 0.
inline constexpr uint16_t kIfindexFromFrame = 0;

/// Parses one frame of `len` bytes starting at `data` (data may be null when
/// len is 0). `ifindex` is copied into the key (see kIfindexFromFrame).
/// Always overwrites `key`: fields not reached before an error are zero.
/// Never reads outside [data, data + len), never allocates, never throws.
ParseStatus parse_frame(const uint8_t* data, uint32_t len, LinkType link, uint16_t ifindex,
                        PacketKey& key) noexcept;

/// The common frame in one pass: Ethernet without a VLAN tag, IPv4 without
/// options and not a fragment, TCP or UDP whose header fits. True (key
/// filled) exactly when parse_frame() would give status Ok and the same key
/// -- tests/frame_parser_test.cpp compares the two on random and mutated
/// frames; false (key untouched) for everything else, which parse_frame()
/// decides. parse_frame() tries it first for Ethernet; inline, so a burst
/// loop can try it without a call.
inline bool parse_common_ethernet(const uint8_t* d, uint32_t len, uint16_t ifindex, PacketKey& key) noexcept {
  constexpr uint32_t kEth = sizeof(EthHdr);
  constexpr uint32_t kIp = sizeof(Ipv4Hdr);
  if (len < kEth + kIp || header_at<EthHdr>(d)->type.host() != 0x0800) return false;
  const Ipv4Hdr& ip = *header_at<Ipv4Hdr>(d + kEth);
  if (ip.ver_ihl != 0x45) return false;
  const uint32_t total = ip.total_len.host();
  const uint16_t frag = ip.frag.host();
  if (total < kIp || total > len - kEth || (frag & (ip_frag::kMoreFragments | ip_frag::kOffsetMask)) != 0)
    return false;
  const uint8_t proto = ip.proto;
  const uint8_t* l4 = d + kEth + kIp;
  const uint32_t l4_avail = total - kIp;
  uint32_t l4_len = 0;
  if (proto == kProtoTcp) {
    if (l4_avail < sizeof(TcpHdr)) return false;
    l4_len = header_at<TcpHdr>(l4)->header_len();
    if (l4_len < sizeof(TcpHdr) || l4_len > l4_avail) return false;
  } else if (proto == kProtoUdp) {
    if (l4_avail < sizeof(UdpHdr)) return false;
    l4_len = sizeof(UdpHdr);
  } else {
    return false;
  }
  if (!ipv4_header_checksum_ok(d + kEth, kIp)) return false;
  // TCP and UDP both open with the two ports.
  const UdpHdr& ports = *header_at<UdpHdr>(l4);
  key = PacketKey{};
  key.src_ip = ip.src.host();
  key.dst_ip = ip.dst.host();
  key.src_port = ports.sport.host();
  key.dst_port = ports.dport.host();
  key.l3_len = static_cast<uint16_t>(total);
  key.proto = proto;
  key.tcp_flags = proto == kProtoTcp ? header_at<TcpHdr>(l4)->flags : uint8_t{0};
  key.ifindex = ifindex;
  key.frag = frag;
  key.ip_id = ip.id.host();
  key.ttl = ip.ttl;
  key.tos = ip.tos;
  key.flags = static_cast<uint8_t>(key_flag::kMac | key_flag::kPorts | (proto == kProtoTcp ? key_flag::kTcpFlags : 0));
  // The destination MAC's group bit, then all ones: unicast, multicast, broadcast.
  key.pkttype = (d[0] & 1U) == 0                                           ? PktType::Host
                : (d[0] & d[1] & d[2] & d[3] & d[4] & d[5]) == 0xff ? PktType::Broadcast
                                                                          : PktType::Multicast;
  key.l3_off = kEth;
  key.l4_off = kEth + kIp;
  key.payload_off = static_cast<uint16_t>(kEth + kIp + l4_len);
  std::memcpy(key.src_mac.data(), d + 6, key.src_mac.size());
  return true;
}

/// parse_frame() without its one-pass path for the common frame (Ethernet,
/// IPv4 without options, TCP/UDP): the general path alone. The same answer
/// for every frame; tests compare the two.
ParseStatus parse_frame_general(const uint8_t* data, uint32_t len, LinkType link, uint16_t ifindex,
                                PacketKey& key) noexcept;

/// One frame of a burst. The link type is per frame because a pcapng file
/// with several interfaces mixes them.
struct FrameRef {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  uint16_t ifindex = 0;
  LinkType link = LinkType::Ethernet;
};
static_assert(sizeof(FrameRef) == 16);

/// Parses n = min(frames.size(), keys.size(), status.size()) frames, each with
/// its own FrameRef::link: keys[i] and status[i] are what parse_frame() would
/// give for frames[i], and counters gets one add() per frame.
void parse_burst(std::span<const FrameRef> frames, std::span<PacketKey> keys,
                 std::span<ParseStatus> status, ParseCounters& counters) noexcept;

/// Same, with one link type for the whole burst (FrameRef::link is ignored):
/// the common case of a single-interface capture, where the link-type switch
/// is taken once per burst instead of once per frame.
void parse_burst(std::span<const FrameRef> frames, LinkType link, std::span<PacketKey> keys,
                 std::span<ParseStatus> status, ParseCounters& counters) noexcept;

}  // namespace nfb
