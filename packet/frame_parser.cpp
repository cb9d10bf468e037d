// Frame parser implementation. See frame_parser.h for the contract.
//
// Every read goes through an explicit "bytes available" test first; offsets
// are uint32_t and only ever grow by amounts already checked against the
// remaining length, so `len - off` never wraps.
#include "packet/frame_parser.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "packet/byte_order.h"
#include "packet/checksum.h"

namespace nfb {

namespace {

// Ethertypes.
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEther8021Q = 0x8100;
constexpr uint16_t kEther8021AD = 0x88a8;
constexpr uint16_t kEtherQinQLegacy = 0x9100;
constexpr unsigned kMaxVlanTags = 2;

// Link header sizes and field offsets.
constexpr uint32_t kEthHeaderLen = 14;  // dst[6] src[6] type[2]
constexpr uint32_t kEthSrcOff = 6;
constexpr uint32_t kEthTypeOff = 12;
constexpr uint32_t kVlanTagLen = 4;  // TCI[2] type[2], after a TPID
constexpr uint32_t kSllHeaderLen = 16;  // pkttype[2] hatype[2] halen[2] addr[8] proto[2]
constexpr uint32_t kSllPkttypeOff = 0;
constexpr uint32_t kSllHalenOff = 4;
constexpr uint32_t kSllAddrOff = 6;
constexpr uint32_t kSllProtoOff = 14;
constexpr uint32_t kSll2HeaderLen = 20;  // proto[2] rsvd[2] ifindex[4] hatype[2] pkttype halen addr[8]
constexpr uint32_t kSll2ProtoOff = 0;
constexpr uint32_t kSll2IfindexOff = 4;
constexpr uint32_t kSll2PkttypeOff = 10;
constexpr uint32_t kSll2HalenOff = 11;
constexpr uint32_t kSll2AddrOff = 12;

// IPv4 and L4 headers: packet/headers.h. Of a TCP/UDP header quoted by an
// ICMP error, conntrack reads the ports only.
constexpr uint32_t kPortsLen = 4;  // what conntrack reads of an embedded TCP/UDP header

// ICMP types, as bit masks over type < 32.
// Queries carry an identifier: echo reply 0, echo 8, timestamp 13/14,
// information 15/16, address mask 17/18.
constexpr uint32_t kIcmpQueryMask = (1U << 0) | (1U << 8) | (1U << 13) | (1U << 14) |
                                    (1U << 15) | (1U << 16) | (1U << 17) | (1U << 18);
// Errors quote the offending packet: destination unreachable 3, source quench
// 4, redirect 5, time exceeded 11, parameter problem 12 (the kernel's
// icmp_is_err()).
constexpr uint32_t kIcmpErrorMask = (1U << 3) | (1U << 4) | (1U << 5) | (1U << 11) | (1U << 12);

constexpr bool icmp_type_in(uint8_t type, uint32_t mask) noexcept {
  return type < 32 && ((mask >> type) & 1U) != 0;
}

constexpr bool is_vlan_tpid(uint16_t type) noexcept {
  return type == kEther8021Q || type == kEther8021AD || type == kEtherQinQLegacy;
}

PktType pkttype_from_dst_mac(const uint8_t* dst) noexcept {
  if ((dst[0] & 0x01U) == 0) return PktType::Host;
  const uint8_t all = static_cast<uint8_t>(dst[0] & dst[1] & dst[2] & dst[3] & dst[4] & dst[5]);
  return all == 0xff ? PktType::Broadcast : PktType::Multicast;
}

PktType pkttype_from_sll(uint32_t v) noexcept {
  return v <= static_cast<uint32_t>(PktType::Kernel) ? static_cast<PktType>(v) : PktType::Unknown;
}

void copy_mac(PacketKey& key, const uint8_t* p) noexcept {
  std::memcpy(key.src_mac.data(), p, key.src_mac.size());
  key.flags |= key_flag::kMac;
}

// The header quoted by an ICMP error: [start, end) is the rest of the outer IP
// packet after the 8-byte ICMP header. Never fails: what cannot be read is
// left out and its flag stays clear (see InnerTuple).
void parse_icmp_inner(const uint8_t* d, uint32_t start, uint32_t end, PacketKey& key) noexcept {
  const uint32_t avail = end - start;
  if (avail < sizeof(Ipv4Hdr)) return;
  const Ipv4Hdr& ip = *header_at<Ipv4Hdr>(d + start);
  if (ip.version() != 4) return;
  const uint32_t hl = ip.header_len();
  if (hl < sizeof(Ipv4Hdr) || hl > avail) return;

  InnerTuple& in = key.inner;
  in.src_ip = ip.src.host();
  in.dst_ip = ip.dst.host();
  in.proto = ip.proto;
  in.l3_off = static_cast<uint16_t>(start);
  key.flags |= key_flag::kInner;

  const uint16_t frag = ip.frag.host();
  if ((frag & (ip_frag::kMoreFragments | ip_frag::kOffsetMask)) != 0)
    in.flags |= inner_flag::kFragment;
  if ((frag & ip_frag::kOffsetMask) != 0) return;  // no L4 header in a later fragment

  const uint8_t* l4 = d + start + hl;
  const uint32_t l4_avail = avail - hl;
  if (in.proto == kProtoTcp || in.proto == kProtoUdp || in.proto == kProtoSctp || in.proto == kProtoUdplite) {
    if (l4_avail < kPortsLen) return;  // an error quotes 8 bytes: the ports, not a whole header
    in.src_port = load_be16(l4);
    in.dst_port = load_be16(l4 + 2);
    in.flags |= inner_flag::kPorts;
  } else if (in.proto == kProtoIcmp) {
    if (l4_avail < sizeof(IcmpHdr)) return;
    const IcmpHdr& icmp = *header_at<IcmpHdr>(l4);
    in.icmp_type = icmp.type;
    in.icmp_code = icmp.code;
    in.flags |= inner_flag::kIcmp;
    if (icmp_type_in(in.icmp_type, kIcmpQueryMask)) {
      in.icmp_id = icmp.id.host();
      in.flags |= inner_flag::kIcmpId;
    }
  }
}

// IPv4 header at `off` (off <= len), then its L4 header. The checks follow
// the kernel's ip_rcv_core() in order; the L4 checks follow what the iptables
// tcp/udp/icmp matches and conntrack need to read.
ParseStatus parse_ipv4(const uint8_t* d, uint32_t len, uint32_t off, PacketKey& key) noexcept {
  const uint32_t avail = len - off;
  if (avail < sizeof(Ipv4Hdr)) return ParseStatus::TruncatedIpHeader;
  const Ipv4Hdr& ip = *header_at<Ipv4Hdr>(d + off);
  if (ip.version() != 4) return ParseStatus::BadIpVersion;
  const uint32_t hl = ip.header_len();
  if (hl < sizeof(Ipv4Hdr)) return ParseStatus::BadIpHeaderLength;
  if (avail < hl) return ParseStatus::TruncatedIpHeader;
  if (!ipv4_header_checksum_ok(d + off, hl)) return ParseStatus::BadIpChecksum;
  const uint32_t total = ip.total_len.host();
  if (total > avail) return ParseStatus::IpTotalLengthBeyondFrame;
  if (total < hl) return ParseStatus::IpTotalLengthTooShort;

  key.src_ip = ip.src.host();
  key.dst_ip = ip.dst.host();
  key.proto = ip.proto;
  key.l3_len = static_cast<uint16_t>(total);
  key.tos = ip.tos;
  key.ttl = ip.ttl;
  key.ip_id = ip.id.host();
  key.frag = ip.frag.host();
  // off is at most 20 + 2 * 4 link bytes and hl at most 60: both fit.
  key.l3_off = static_cast<uint16_t>(off);
  key.l4_off = static_cast<uint16_t>(off + hl);
  key.payload_off = key.l4_off;

  if ((key.frag & ip_frag::kOffsetMask) != 0) return ParseStatus::Ok;  // later fragment: no L4

  const uint8_t* l4 = d + off + hl;
  const uint32_t l4_avail = total - hl;  // the IP payload; link padding excluded
  switch (key.proto) {
    case kProtoTcp: {
      if (l4_avail < sizeof(TcpHdr)) return ParseStatus::TruncatedL4;
      const TcpHdr& tcp = *header_at<TcpHdr>(l4);
      const uint32_t doff = tcp.header_len();
      if (doff < sizeof(TcpHdr)) return ParseStatus::BadTcpDataOffset;
      if (doff > l4_avail) return ParseStatus::TruncatedL4;
      key.src_port = tcp.sport.host();
      key.dst_port = tcp.dport.host();
      key.tcp_flags = tcp.flags;
      key.flags |= key_flag::kPorts | key_flag::kTcpFlags;
      key.payload_off = static_cast<uint16_t>(key.l4_off + doff);
      return ParseStatus::Ok;
    }
    case kProtoUdp: {
      if (l4_avail < sizeof(UdpHdr)) return ParseStatus::TruncatedL4;
      const UdpHdr& udp = *header_at<UdpHdr>(l4);
      key.src_port = udp.sport.host();
      key.dst_port = udp.dport.host();
      key.flags |= key_flag::kPorts;
      key.payload_off = static_cast<uint16_t>(key.l4_off + sizeof(UdpHdr));
      return ParseStatus::Ok;
    }
    case kProtoIcmp: {
      if (l4_avail < sizeof(IcmpHdr)) return ParseStatus::TruncatedL4;
      const IcmpHdr& icmp = *header_at<IcmpHdr>(l4);
      key.icmp_type = icmp.type;
      key.icmp_code = icmp.code;
      key.flags |= key_flag::kIcmp;
      key.payload_off = static_cast<uint16_t>(key.l4_off + sizeof(IcmpHdr));
      if (icmp_type_in(key.icmp_type, kIcmpQueryMask)) {
        key.icmp_id = icmp.id.host();
        key.flags |= key_flag::kIcmpId;
      } else if (icmp_type_in(key.icmp_type, kIcmpErrorMask)) {
        parse_icmp_inner(d, key.payload_off, off + total, key);
      }
      return ParseStatus::Ok;
    }
    case kProtoSctp:
    case kProtoUdplite: {
      // Ports once the whole header is there (SCTP's 12-byte common
      // header, UDP-Lite's 8): matches that read ports from the key rely on
      // it. A shorter header is conntrack's to call INVALID, not the
      // parser's to drop (the kernel routes it; -m multiport still reads its
      // 4 bytes of ports from the frame).
      const uint32_t hdr = key.proto == kProtoSctp ? 12U : 8U;
      if (l4_avail < hdr) return ParseStatus::Ok;
      key.src_port = load_be16(l4);
      key.dst_port = load_be16(l4 + 2);
      key.flags |= key_flag::kPorts;
      key.payload_off = static_cast<uint16_t>(key.l4_off + hdr);
      return ParseStatus::Ok;
    }
    default:
      return ParseStatus::Ok;  // other protocol: keyed by addresses and proto only
  }
}

// After the link header: skip up to two VLAN tags, then dispatch on the
// ethertype. `type` is the type field just read, `off` the byte after it.
ParseStatus parse_ethertype(const uint8_t* d, uint32_t len, uint32_t off, uint16_t type,
                            PacketKey& key) noexcept {
  for (unsigned tags = 0; is_vlan_tpid(type); ++tags) {
    if (tags == kMaxVlanTags) return ParseStatus::TooManyVlanTags;
    if (len - off < kVlanTagLen) return ParseStatus::TruncatedVlan;
    if (tags == 0) {
      key.vlan_id = static_cast<uint16_t>(load_be16(d + off) & 0x0fffU);
      key.flags |= key_flag::kVlan;
    } else {
      key.flags |= key_flag::kQinQ;
    }
    type = load_be16(d + off + 2);
    off += kVlanTagLen;
  }
  if (type == kEtherIpv4) return parse_ipv4(d, len, off, key);
  if (type == kEtherIpv6) return ParseStatus::Ipv6NotHandled;
  return ParseStatus::NotIp;
}

ParseStatus parse_raw(const uint8_t* d, uint32_t len, PacketKey& key) noexcept {
  if (len == 0) return ParseStatus::TruncatedIpHeader;
  switch (d[0] >> 4) {
    case 4:
      return parse_ipv4(d, len, 0, key);
    case 6:
      return ParseStatus::Ipv6NotHandled;
    default:
      return ParseStatus::BadIpVersion;
  }
}

// One frame, link type fixed at compile time so a burst can hoist the switch.
template <LinkType kLink, bool kCommonFirst = true>
ParseStatus parse_one(const uint8_t* d, uint32_t len, uint16_t ifindex, PacketKey& key) noexcept {
  if constexpr (kLink == LinkType::Ethernet && kCommonFirst) {
    if (parse_common_ethernet(d, len, ifindex, key)) return ParseStatus::Ok;
  }
  key = PacketKey{};
  key.ifindex = ifindex;
  if constexpr (kLink == LinkType::Ethernet) {
    if (len < kEthHeaderLen) return ParseStatus::TruncatedL2;
    key.pkttype = pkttype_from_dst_mac(d);
    copy_mac(key, d + kEthSrcOff);
    return parse_ethertype(d, len, kEthHeaderLen, load_be16(d + kEthTypeOff), key);
  } else if constexpr (kLink == LinkType::LinuxSll) {
    if (len < kSllHeaderLen) return ParseStatus::TruncatedL2;
    key.pkttype = pkttype_from_sll(load_be16(d + kSllPkttypeOff));
    if (load_be16(d + kSllHalenOff) == key.src_mac.size()) copy_mac(key, d + kSllAddrOff);
    return parse_ethertype(d, len, kSllHeaderLen, load_be16(d + kSllProtoOff), key);
  } else if constexpr (kLink == LinkType::LinuxSll2) {
    if (len < kSll2HeaderLen) return ParseStatus::TruncatedL2;
    if (ifindex == kIfindexFromFrame) {
      const uint32_t frame_ifindex = load_be32(d + kSll2IfindexOff);
      if (frame_ifindex <= 0xffffU) key.ifindex = static_cast<uint16_t>(frame_ifindex);
    }
    key.pkttype = pkttype_from_sll(d[kSll2PkttypeOff]);
    if (d[kSll2HalenOff] == key.src_mac.size()) copy_mac(key, d + kSll2AddrOff);
    return parse_ethertype(d, len, kSll2HeaderLen, load_be16(d + kSll2ProtoOff), key);
  } else if constexpr (kLink == LinkType::Raw) {
    return parse_raw(d, len, key);
  } else {
    static_assert(kLink == LinkType::Ipv4, "parse_one: unhandled link type");
    return parse_ipv4(d, len, 0, key);
  }
}

ParseStatus parse_unsupported(PacketKey& key, uint16_t ifindex) noexcept {
  key = PacketKey{};
  key.ifindex = ifindex;
  return ParseStatus::UnsupportedLinkType;
}

ParseStatus parse_dispatch(const uint8_t* d, uint32_t len, LinkType link, uint16_t ifindex,
                           PacketKey& key) noexcept {
  switch (link) {
    case LinkType::Ethernet:
      return parse_one<LinkType::Ethernet>(d, len, ifindex, key);
    case LinkType::LinuxSll:
      return parse_one<LinkType::LinuxSll>(d, len, ifindex, key);
    case LinkType::LinuxSll2:
      return parse_one<LinkType::LinuxSll2>(d, len, ifindex, key);
    case LinkType::Raw:
    case LinkType::RawDlt12:
    case LinkType::RawDlt14:
      return parse_one<LinkType::Raw>(d, len, ifindex, key);
    case LinkType::Ipv4:
      return parse_one<LinkType::Ipv4>(d, len, ifindex, key);
  }
  return parse_unsupported(key, ifindex);
}

template <LinkType kLink>
void burst_loop(const FrameRef* frames, std::size_t n, PacketKey* keys, ParseStatus* status,
                ParseCounters& counters) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const FrameRef& f = frames[i];
    const uint32_t len = f.data != nullptr ? f.len : 0;  // a null frame is an empty one
    const ParseStatus s = parse_one<kLink>(f.data, len, f.ifindex, keys[i]);
    status[i] = s;
    counters.add(s);
  }
}

}  // namespace

ParseStatus parse_frame(const uint8_t* data, uint32_t len, LinkType link, uint16_t ifindex,
                        PacketKey& key) noexcept {
  if (data == nullptr) len = 0;  // a null frame is an empty one
  return parse_dispatch(data, len, link, ifindex, key);
}

ParseStatus parse_frame_general(const uint8_t* data, uint32_t len, LinkType link, uint16_t ifindex,
                                PacketKey& key) noexcept {
  if (data == nullptr) len = 0;
  if (link == LinkType::Ethernet) return parse_one<LinkType::Ethernet, false>(data, len, ifindex, key);
  return parse_dispatch(data, len, link, ifindex, key);
}

void parse_burst(std::span<const FrameRef> frames, std::span<PacketKey> keys,
                 std::span<ParseStatus> status, ParseCounters& counters) noexcept {
  const std::size_t n = std::min({frames.size(), keys.size(), status.size()});
  for (std::size_t i = 0; i < n; ++i) {
    const FrameRef& f = frames[i];
    const ParseStatus s = parse_frame(f.data, f.len, f.link, f.ifindex, keys[i]);
    status[i] = s;
    counters.add(s);
  }
}

void parse_burst(std::span<const FrameRef> frames, LinkType link, std::span<PacketKey> keys,
                 std::span<ParseStatus> status, ParseCounters& counters) noexcept {
  const std::size_t n = std::min({frames.size(), keys.size(), status.size()});
  const FrameRef* f = frames.data();
  PacketKey* k = keys.data();
  ParseStatus* st = status.data();
  switch (link) {
    case LinkType::Ethernet:
      return burst_loop<LinkType::Ethernet>(f, n, k, st, counters);
    case LinkType::LinuxSll:
      return burst_loop<LinkType::LinuxSll>(f, n, k, st, counters);
    case LinkType::LinuxSll2:
      return burst_loop<LinkType::LinuxSll2>(f, n, k, st, counters);
    case LinkType::Raw:
    case LinkType::RawDlt12:
    case LinkType::RawDlt14:
      return burst_loop<LinkType::Raw>(f, n, k, st, counters);
    case LinkType::Ipv4:
      return burst_loop<LinkType::Ipv4>(f, n, k, st, counters);
  }
  for (std::size_t i = 0; i < n; ++i) {
    st[i] = parse_unsupported(k[i], f[i].ifindex);
    counters.add(st[i]);
  }
}

}  // namespace nfb
