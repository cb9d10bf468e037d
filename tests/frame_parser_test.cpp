// Tests for packet/frame_parser.h, packet/packet_key.h and
// packet/checksum.h. Frames are built byte by byte with tests/support/frame_builder.h.
#include "packet/frame_parser.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "packet/checksum.h"
#include "packet/packet_key.h"
#include "tests/support/frame_builder.h"

namespace nfb {
// Readable failures: print statuses by name.
void PrintTo(ParseStatus s, std::ostream* os) { *os << parse_status_name(s); }
}  // namespace nfb

namespace nfb::test {
namespace {

struct Parsed {
  ParseStatus status = ParseStatus::Ok;
  PacketKey key;
};

constexpr uint16_t kIf = 7;

/// Parses a copy of `f` held in an allocation of exactly its size, so a read
/// past the end is a heap overflow that AddressSanitizer reports.
Parsed parse(const Bytes& f, LinkType link = LinkType::Ethernet, uint16_t ifindex = kIf) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[f.size()]);
  if (!f.empty()) std::memcpy(exact.get(), f.data(), f.size());
  Parsed p;
  p.status = parse_frame(exact.get(), static_cast<uint32_t>(f.size()), link, ifindex, p.key);
  return p;
}

// ---------------------------------------------------------------- packets used below

const Ipv4Spec kTcpIp{.src = ip4(192, 168, 1, 10), .dst = ip4(172, 17, 0, 2), .proto = kProtoTcp,
                      .ttl = 63, .tos = 0x28, .id = 0xbeef, .df = true};

Bytes tcp_syn_packet() {
  return ipv4(kTcpIp, tcp({.sport = 51000, .dport = 6379, .seq = 1000, .flags = tcp_flag::kSyn,
                           .options = tcp_syn_options()}));
}

Bytes udp_packet(std::size_t payload = 12) {
  return ipv4({.src = ip4(10, 1, 2, 3), .dst = ip4(8, 8, 8, 8), .proto = kProtoUdp, .id = 7},
              udp({.sport = 33333, .dport = 53, .payload = pattern(payload)}));
}

Bytes icmp_echo_packet(bool reply = false) {
  return ipv4({.src = ip4(172, 17, 0, 2), .dst = ip4(1, 1, 1, 1), .proto = kProtoIcmp},
              icmp_echo(0x4d2, 9, reply));
}

/// A destination-unreachable (port unreachable) from 8.8.8.8 about `original`.
Bytes icmp_error_packet(const Bytes& original, std::size_t l4_bytes = 8, uint8_t type = 3,
                        uint8_t code = 3) {
  return ipv4({.src = ip4(203, 0, 113, 1), .dst = ip4(10, 1, 2, 3), .proto = kProtoIcmp},
              icmp_error(type, code, original, l4_bytes));
}

// ---------------------------------------------------------------- layout and tables

TEST(PacketKeyTest, LayoutIsOneCacheLineWithoutPadding) {
  EXPECT_EQ(sizeof(PacketKey), 64U);
  EXPECT_EQ(alignof(PacketKey), 64U);
  EXPECT_EQ(offsetof(PacketKey, src_ip), 0U);
  EXPECT_EQ(offsetof(PacketKey, dst_port), 10U);
  EXPECT_EQ(offsetof(PacketKey, proto), 16U);
  EXPECT_EQ(offsetof(PacketKey, ifindex), 20U);
  EXPECT_EQ(offsetof(PacketKey, l3_off), 30U);
  EXPECT_EQ(offsetof(PacketKey, src_mac), 38U);
  EXPECT_EQ(offsetof(PacketKey, inner), 44U);
  EXPECT_TRUE(std::has_unique_object_representations_v<PacketKey>);
}

TEST(PacketKeyTest, FragmentHelpers) {
  PacketKey k;
  EXPECT_FALSE(k.is_fragment());
  k.frag = ip_frag::kDontFragment;
  EXPECT_FALSE(k.is_fragment());
  k.frag = ip_frag::kMoreFragments;
  EXPECT_TRUE(k.is_fragment());
  EXPECT_TRUE(k.is_first_fragment());
  EXPECT_FALSE(k.is_later_fragment());
  k.frag = 185;  // last fragment: MF clear, offset 1480 bytes
  EXPECT_TRUE(k.is_fragment());
  EXPECT_FALSE(k.is_first_fragment());
  EXPECT_TRUE(k.is_later_fragment());
  EXPECT_EQ(k.frag_offset_bytes(), 1480U);
}

TEST(ParseStatusTest, NamesAreUniqueAndNonEmpty) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kParseStatusCount; ++i) {
    const auto s = static_cast<ParseStatus>(i);
    const std::string name = parse_status_name(s);
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, "invalid");
    EXPECT_NE(std::string(parse_status_description(s)), "");
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kParseStatusCount);
  EXPECT_STREQ(parse_status_name(ParseStatus::Ok), "ok");
  EXPECT_STREQ(parse_status_name(ParseStatus::TruncatedL4), "truncated_l4");
  EXPECT_STREQ(parse_status_name(static_cast<ParseStatus>(kParseStatusCount)), "invalid");
}

TEST(ParseCountersTest, AddMergeTotals) {
  ParseCounters a, b;
  a.add(ParseStatus::Ok);
  a.add(ParseStatus::Ok);
  a.add(ParseStatus::NotIp);
  b.add(ParseStatus::NotIp);
  b.add(ParseStatus::BadIpChecksum);
  b.add(static_cast<ParseStatus>(200));  // out of range: ignored
  a.merge(b);
  EXPECT_EQ(a.count(ParseStatus::Ok), 2U);
  EXPECT_EQ(a.count(ParseStatus::NotIp), 2U);
  EXPECT_EQ(a.count(ParseStatus::BadIpChecksum), 1U);
  EXPECT_EQ(a.total(), 5U);
  EXPECT_EQ(a.rejected(), 3U);
}

// ---------------------------------------------------------------- link types

TEST(FrameParserTest, EthernetTcpSynWithOptions) {
  const Bytes pkt = tcp_syn_packet();
  ASSERT_EQ(pkt.size(), 60U);  // 20 IP + 20 TCP + 20 options
  const auto [s, k] = parse(ethernet({.dst = kMacA, .src = kMacB}, pkt));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.src_ip, ip4(192, 168, 1, 10));
  EXPECT_EQ(k.dst_ip, ip4(172, 17, 0, 2));
  EXPECT_EQ(k.src_port, 51000);
  EXPECT_EQ(k.dst_port, 6379);
  EXPECT_EQ(k.proto, kProtoTcp);
  EXPECT_EQ(k.tcp_flags, tcp_flag::kSyn);
  EXPECT_EQ(k.l3_len, 60);
  EXPECT_EQ(k.ifindex, kIf);
  EXPECT_EQ(k.ttl, 63);
  EXPECT_EQ(k.tos, 0x28);
  EXPECT_EQ(k.ip_id, 0xbeef);
  EXPECT_EQ(k.frag, ip_frag::kDontFragment);
  EXPECT_FALSE(k.is_fragment());
  EXPECT_EQ(k.l3_off, 14);
  EXPECT_EQ(k.l4_off, 34);
  EXPECT_EQ(k.ip_hdr_len(), 20);
  EXPECT_EQ(k.payload_off, 74);  // TCP header with 20 bytes of options
  EXPECT_EQ(k.flags, key_flag::kPorts | key_flag::kTcpFlags | key_flag::kMac);
  EXPECT_EQ(k.src_mac, kMacB);
  EXPECT_EQ(k.pkttype, PktType::Host);
  EXPECT_EQ(k.icmp_type, 0);
  EXPECT_EQ(k.icmp_id, 0);
  EXPECT_EQ(k.inner, InnerTuple{});
}

TEST(FrameParserTest, AllTcpFlagBits) {
  const Bytes pkt = ipv4({}, tcp({.flags = 0xff}));
  const auto [s, k] = parse(ethernet({}, pkt));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.tcp_flags, 0xff);
  const auto [s2, k2] = parse(ethernet({}, ipv4({}, tcp({.flags = tcp_flag::kAck | tcp_flag::kFin}))));
  ASSERT_EQ(s2, ParseStatus::Ok);
  EXPECT_EQ(k2.tcp_flags, 0x11);
}

TEST(FrameParserTest, EthernetPkttypeFromDestinationMac) {
  EXPECT_EQ(parse(ethernet({.dst = kMacA}, udp_packet())).key.pkttype, PktType::Host);
  EXPECT_EQ(parse(ethernet({.dst = kMacBroadcast}, udp_packet())).key.pkttype, PktType::Broadcast);
  EXPECT_EQ(parse(ethernet({.dst = kMacMulticast}, udp_packet())).key.pkttype, PktType::Multicast);
  Mac almost_broadcast = kMacBroadcast;
  almost_broadcast[5] = 0xfe;
  EXPECT_EQ(parse(ethernet({.dst = almost_broadcast}, udp_packet())).key.pkttype, PktType::Multicast);
}

TEST(FrameParserTest, SingleVlanTag) {
  const auto [s, k] = parse(ethernet({.tags = {{.vid = 100, .pcp = 5}}}, udp_packet()));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.vlan_id, 100);
  EXPECT_TRUE(k.has(key_flag::kVlan));
  EXPECT_FALSE(k.has(key_flag::kQinQ));
  EXPECT_EQ(k.l3_off, 18);
  EXPECT_EQ(k.l4_off, 38);
  EXPECT_EQ(k.src_port, 33333);
  EXPECT_EQ(k.dst_port, 53);
}

TEST(FrameParserTest, QinQWithEachOuterTpid) {
  for (uint16_t tpid : {kEther8021AD, kEtherQinQLegacy, kEther8021Q}) {
    SCOPED_TRACE(tpid);
    const auto [s, k] =
        parse(ethernet({.tags = {{.vid = 4000, .tpid = tpid}, {.vid = 42}}}, tcp_syn_packet()));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.vlan_id, 4000);  // the outer (service) VID
    EXPECT_TRUE(k.has(key_flag::kVlan | key_flag::kQinQ));
    EXPECT_EQ(k.l3_off, 22);
    EXPECT_EQ(k.dst_port, 6379);
  }
}

TEST(FrameParserTest, LinuxSllV1) {
  const Bytes f = sll({.pkttype = 4, .addr = kMacA, .protocol = kEtherIpv4}, tcp_syn_packet());
  const auto [s, k] = parse(f, LinkType::LinuxSll);
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.pkttype, PktType::Outgoing);
  EXPECT_EQ(k.src_mac, kMacA);
  EXPECT_TRUE(k.has(key_flag::kMac));
  EXPECT_EQ(k.l3_off, 16);
  EXPECT_EQ(k.dst_port, 6379);
  EXPECT_EQ(k.ifindex, kIf);
}

TEST(FrameParserTest, LinuxSllWithoutMacOrWithUnknownPkttype) {
  // A tunnel device: 4-byte link address, so no source MAC.
  const auto [s, k] = parse(sll({.pkttype = 3, .hatype = 778, .addr_len = 4}, udp_packet()),
                            LinkType::LinuxSll);
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_FALSE(k.has(key_flag::kMac));
  EXPECT_EQ(k.src_mac, Mac{});
  EXPECT_EQ(k.pkttype, PktType::OtherHost);
  EXPECT_EQ(parse(sll({.pkttype = 300}, udp_packet()), LinkType::LinuxSll).key.pkttype,
            PktType::Unknown);
}

TEST(FrameParserTest, LinuxSllWithVlanTag) {
  // libpcap re-inserts a stripped VLAN tag after the SLL header.
  Bytes inner;
  put16(inner, 0x0064);  // TCI: VID 100
  put16(inner, kEtherIpv4);
  put(inner, udp_packet());
  const auto [s, k] = parse(sll({.protocol = kEther8021Q}, inner), LinkType::LinuxSll);
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.vlan_id, 100);
  EXPECT_EQ(k.l3_off, 20);
}

TEST(FrameParserTest, LinuxSllV2) {
  const Bytes f = sll2({.ifindex = 9, .pkttype = 1, .addr = kMacA}, icmp_echo_packet());
  const auto [s, k] = parse(f, LinkType::LinuxSll2);
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.ifindex, kIf);  // the caller's numbering wins
  EXPECT_EQ(k.pkttype, PktType::Broadcast);
  EXPECT_EQ(k.src_mac, kMacA);
  EXPECT_EQ(k.l3_off, 20);
  EXPECT_EQ(k.proto, kProtoIcmp);
  EXPECT_EQ(k.icmp_id, 0x4d2);

  EXPECT_EQ(parse(f, LinkType::LinuxSll2, kIfindexFromFrame).key.ifindex, 9);
  const Bytes big = sll2({.ifindex = 70000}, icmp_echo_packet());
  EXPECT_EQ(parse(big, LinkType::LinuxSll2, kIfindexFromFrame).key.ifindex, 0);
  // Other link types have no interface in the frame.
  EXPECT_EQ(parse(ethernet({}, udp_packet()), LinkType::Ethernet, kIfindexFromFrame).key.ifindex, 0);
}

TEST(FrameParserTest, RawIpUnderEveryRawLinkNumber) {
  const Bytes pkt = tcp_syn_packet();
  for (LinkType link : {LinkType::Raw, LinkType::RawDlt12, LinkType::RawDlt14, LinkType::Ipv4}) {
    SCOPED_TRACE(static_cast<int>(link));
    const auto [s, k] = parse(pkt, link);
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.l3_off, 0);
    EXPECT_EQ(k.l4_off, 20);
    EXPECT_EQ(k.dst_port, 6379);
    EXPECT_FALSE(k.has(key_flag::kMac));
    EXPECT_EQ(k.pkttype, PktType::Host);
  }
}

TEST(FrameParserTest, RawLinkRecognisesIpv6AndRejectsOtherVersions) {
  const Bytes v6 = ipv6(udp({}));
  EXPECT_EQ(parse(v6, LinkType::Raw).status, ParseStatus::Ipv6NotHandled);
  // LINKTYPE_IPV4 carries only IPv4.
  EXPECT_EQ(parse(v6, LinkType::Ipv4).status, ParseStatus::BadIpVersion);
  Bytes v5 = udp_packet();
  v5[0] = 0x55;
  EXPECT_EQ(parse(v5, LinkType::Raw).status, ParseStatus::BadIpVersion);
}

// ---------------------------------------------------------------- IPv4

TEST(FrameParserTest, Ipv4OptionsMoveTheL4Header) {
  for (std::size_t words = 1; words <= 10; ++words) {
    SCOPED_TRACE(words);
    Bytes opts(words * 4, 1);  // NOPs
    opts[0] = 0x94;            // router alert, length 4
    opts[1] = 4;
    opts[2] = 0;
    opts[3] = 0;
    const Bytes pkt = ipv4({.proto = kProtoUdp, .options = opts}, udp({.sport = 1, .dport = 2}));
    const auto [s, k] = parse(ethernet({}, pkt));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.ip_hdr_len(), 20 + words * 4);
    EXPECT_EQ(k.l4_off, 14 + 20 + words * 4);
    EXPECT_EQ(k.l3_len, pkt.size());
    EXPECT_EQ(k.src_port, 1);
    EXPECT_EQ(k.dst_port, 2);
  }
}

TEST(FrameParserTest, FirstFragmentHasPorts) {
  const Bytes whole = ipv4({.proto = kProtoUdp, .id = 99},
                           udp({.sport = 5000, .dport = 6000, .payload = pattern(100)}));
  const Bytes first = fragment(whole, 0, 48);
  const auto [s, k] = parse(ethernet({}, first));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_TRUE(k.is_fragment());
  EXPECT_TRUE(k.is_first_fragment());
  EXPECT_FALSE(k.is_later_fragment());
  EXPECT_EQ(k.src_port, 5000);
  EXPECT_EQ(k.dst_port, 6000);
  EXPECT_TRUE(k.has(key_flag::kPorts));
  EXPECT_EQ(k.l3_len, 68);
}

TEST(FrameParserTest, LaterFragmentsHaveNoL4Fields) {
  const Bytes whole = ipv4({.proto = kProtoTcp, .id = 99},
                           tcp({.sport = 5000, .dport = 6000, .flags = tcp_flag::kAck,
                                .payload = pattern(100)}));
  // A middle fragment (MF set) and the last one (MF clear). Their first bytes
  // would read as ports and flags if the parser wrongly decoded them.
  for (const Bytes& frag : {fragment(whole, 40, 40), fragment(whole, 80, 40)}) {
    const auto [s, k] = parse(ethernet({}, frag));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_TRUE(k.is_fragment());
    EXPECT_TRUE(k.is_later_fragment());
    EXPECT_FALSE(k.is_first_fragment());
    EXPECT_EQ(k.proto, kProtoTcp);
    EXPECT_EQ(k.src_port, 0);
    EXPECT_EQ(k.dst_port, 0);
    EXPECT_EQ(k.tcp_flags, 0);
    EXPECT_EQ(k.flags & key_flag::kAnyL4, 0);
    EXPECT_EQ(k.l4_off, 34);
    EXPECT_EQ(k.payload_off, k.l4_off);
  }
  EXPECT_EQ(parse(ethernet({}, fragment(whole, 80, 40))).key.frag_offset_bytes(), 80U);
}

TEST(FrameParserTest, LaterFragmentTooShortForAnL4HeaderIsStillOk) {
  const Bytes whole = ipv4({.proto = kProtoTcp}, tcp({.payload = pattern(40)}));
  const auto [s, k] = parse(ethernet({}, fragment(whole, 56, 4)));
  EXPECT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.l3_len, 24);
}

TEST(FrameParserTest, Udp) {
  const auto [s, k] = parse(ethernet({}, udp_packet(100)));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.proto, kProtoUdp);
  EXPECT_EQ(k.src_port, 33333);
  EXPECT_EQ(k.dst_port, 53);
  EXPECT_EQ(k.flags, key_flag::kPorts | key_flag::kMac);
  EXPECT_EQ(k.payload_off, 14 + 20 + 8);
  EXPECT_EQ(k.l3_len, 128);
}

TEST(FrameParserTest, IcmpEchoRequestAndReply) {
  for (bool reply : {false, true}) {
    const auto [s, k] = parse(ethernet({}, icmp_echo_packet(reply)));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.proto, kProtoIcmp);
    EXPECT_EQ(k.icmp_type, reply ? 0 : 8);
    EXPECT_EQ(k.icmp_code, 0);
    EXPECT_EQ(k.icmp_id, 0x4d2);
    EXPECT_EQ(k.src_port, 0);
    EXPECT_EQ(k.dst_port, 0);
    EXPECT_EQ(k.flags, key_flag::kIcmp | key_flag::kIcmpId | key_flag::kMac);
    EXPECT_EQ(k.payload_off, 14 + 20 + 8);
  }
}

TEST(FrameParserTest, OtherIcmpQueriesCarryAnIdentifier) {
  for (uint8_t type : std::array<uint8_t, 6>{13, 14, 15, 16, 17, 18}) {
    const Bytes pkt = ipv4({.proto = kProtoIcmp}, icmp({.type = type, .id = 77}));
    const auto [s, k] = parse(ethernet({}, pkt));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.icmp_id, 77) << int{type};
  }
  // Router advertisement: neither query nor error.
  const auto [s, k] = parse(ethernet({}, ipv4({.proto = kProtoIcmp}, icmp({.type = 9, .id = 77}))));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.icmp_type, 9);
  EXPECT_EQ(k.icmp_id, 0);
  EXPECT_EQ(k.flags, key_flag::kIcmp | key_flag::kMac);
}

TEST(FrameParserTest, IcmpErrorWithEmbeddedTcp) {
  const Bytes original = tcp_syn_packet();
  const Bytes err = icmp_error_packet(original);
  const auto [s, k] = parse(ethernet({}, err));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.icmp_type, 3);
  EXPECT_EQ(k.icmp_code, 3);
  EXPECT_EQ(k.icmp_id, 0);
  ASSERT_TRUE(k.has(key_flag::kInner));
  EXPECT_EQ(k.inner.src_ip, ip4(192, 168, 1, 10));
  EXPECT_EQ(k.inner.dst_ip, ip4(172, 17, 0, 2));
  EXPECT_EQ(k.inner.proto, kProtoTcp);
  EXPECT_EQ(k.inner.src_port, 51000);
  EXPECT_EQ(k.inner.dst_port, 6379);
  EXPECT_EQ(k.inner.flags, inner_flag::kPorts);
  EXPECT_EQ(k.inner.l3_off, 14 + 20 + 8);
  // The quoted header's total length (60) is the original packet's, larger
  // than what is quoted: not an error.
  EXPECT_EQ(k.l3_len, 20 + 8 + 20 + 8);
}

TEST(FrameParserTest, IcmpErrorWithEmbeddedUdpForEveryErrorType) {
  for (uint8_t type : std::array<uint8_t, 5>{3, 4, 5, 11, 12}) {
    SCOPED_TRACE(int{type});
    const auto [s, k] = parse(ethernet({}, icmp_error_packet(udp_packet(), 8, type, 0)));
    ASSERT_EQ(s, ParseStatus::Ok);
    ASSERT_TRUE(k.has(key_flag::kInner));
    EXPECT_EQ(k.inner.proto, kProtoUdp);
    EXPECT_EQ(k.inner.src_ip, ip4(10, 1, 2, 3));
    EXPECT_EQ(k.inner.dst_ip, ip4(8, 8, 8, 8));
    EXPECT_EQ(k.inner.src_port, 33333);
    EXPECT_EQ(k.inner.dst_port, 53);
  }
}

TEST(FrameParserTest, IcmpTimeExceededAboutAnEcho) {
  const auto [s, k] = parse(ethernet({}, icmp_error_packet(icmp_echo_packet(), 8, 11, 0)));
  ASSERT_EQ(s, ParseStatus::Ok);
  ASSERT_TRUE(k.has(key_flag::kInner));
  EXPECT_EQ(k.inner.proto, kProtoIcmp);
  EXPECT_EQ(k.inner.icmp_type, 8);
  EXPECT_EQ(k.inner.icmp_code, 0);
  EXPECT_EQ(k.inner.icmp_id, 0x4d2);
  EXPECT_EQ(k.inner.flags, inner_flag::kIcmp | inner_flag::kIcmpId);
  EXPECT_EQ(k.inner.src_port, 0);
}

// Truncated quotes: the kernel (nf_ct_get_tuplepr) needs the 20-byte inner IP
// header, then 4 bytes for TCP/UDP ports and 8 for an inner ICMP header. With
// less, the outer packet is still a valid ICMP packet (status Ok, kIcmp set)
// but has no inner tuple, so conntrack will call it INVALID.
TEST(FrameParserTest, IcmpErrorWithTruncatedQuote) {
  {
    const auto [s, k] = parse(ethernet({}, icmp_error_packet(tcp_syn_packet(), 4)));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_TRUE(k.has(key_flag::kInner));
    EXPECT_EQ(k.inner.flags, inner_flag::kPorts);
    EXPECT_EQ(k.inner.dst_port, 6379);
  }
  {
    const auto [s, k] = parse(ethernet({}, icmp_error_packet(tcp_syn_packet(), 3)));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_TRUE(k.has(key_flag::kInner));
    EXPECT_EQ(k.inner.proto, kProtoTcp);
    EXPECT_EQ(k.inner.flags, 0);
    EXPECT_EQ(k.inner.src_port, 0);
  }
  {
    const auto [s, k] = parse(ethernet({}, icmp_error_packet(icmp_echo_packet(), 7)));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_TRUE(k.has(key_flag::kInner));
    EXPECT_EQ(k.inner.flags, 0);
    EXPECT_EQ(k.inner.icmp_id, 0);
  }
  {
    // Only 19 bytes of the quoted IP header.
    Bytes quote = tcp_syn_packet();
    quote.resize(19);
    const Bytes err = ipv4({.proto = kProtoIcmp}, icmp({.type = 3, .code = 1, .payload = quote}));
    const auto [s, k] = parse(ethernet({.pad = false}, err));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_TRUE(k.has(key_flag::kIcmp));
    EXPECT_FALSE(k.has(key_flag::kInner));
    EXPECT_EQ(k.inner, InnerTuple{});
  }
  {
    // Quoted header with options announced but cut short.
    Bytes original = ipv4({.proto = kProtoUdp, .options = Bytes(8, 1)}, udp({}));
    original.resize(24);
    const Bytes err = ipv4({.proto = kProtoIcmp}, icmp({.type = 3, .payload = original}));
    EXPECT_FALSE(parse(ethernet({}, err)).key.has(key_flag::kInner));
  }
}

TEST(FrameParserTest, IcmpQuoteEndsAtTheOuterTotalLengthNotTheFrame) {
  // The quote holds the inner IP header and 2 bytes; the frame continues with
  // non-zero trailer bytes that must not be read as the rest of the ports.
  Bytes err = icmp_error_packet(tcp_syn_packet(), 2);
  const std::size_t ip_len = err.size();
  err.insert(err.end(), {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff});
  const auto [s, k] = parse(ethernet({}, err));
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.l3_len, ip_len);
  EXPECT_TRUE(k.has(key_flag::kInner));
  EXPECT_EQ(k.inner.flags, 0);
  EXPECT_EQ(k.inner.dst_port, 0);
}

TEST(FrameParserTest, IcmpErrorAboutALaterFragmentHasNoInnerPorts) {
  const Bytes whole = ipv4({.proto = kProtoUdp}, udp({.payload = pattern(64)}));
  const auto [s, k] = parse(ethernet({}, icmp_error_packet(fragment(whole, 16, 16))));
  ASSERT_EQ(s, ParseStatus::Ok);
  ASSERT_TRUE(k.has(key_flag::kInner));
  EXPECT_EQ(k.inner.flags, inner_flag::kFragment);
  EXPECT_EQ(k.inner.src_port, 0);
  // About a first fragment: ports are there.
  const auto [s2, k2] = parse(ethernet({}, icmp_error_packet(fragment(whole, 0, 32))));
  ASSERT_EQ(s2, ParseStatus::Ok);
  EXPECT_EQ(k2.inner.flags, inner_flag::kFragment | inner_flag::kPorts);
  EXPECT_EQ(k2.inner.dst_port, 53);
}

TEST(FrameParserTest, SctpAndUdpliteHaveTheirPortsOnceTheHeaderIsThere) {
  // SCTP: 12-byte common header; UDP-Lite: 8 bytes. Shorter: no ports, but
  // the packet parses (conntrack calls it INVALID; routing takes it).
  for (const auto& [proto, header] : std::array<std::pair<uint8_t, uint16_t>, 2>{{{132, 12}, {136, 8}}}) {
    SCOPED_TRACE(int{proto});
    Bytes l4 = pattern(30, 0x40);
    set16(l4, 0, 4321);
    set16(l4, 2, 80);
    const auto [s, k] = parse(ethernet({}, ipv4({.proto = proto, .l4_checksum = L4Checksum::Leave}, l4)));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.flags & key_flag::kAnyL4, key_flag::kPorts);
    EXPECT_EQ(k.src_port, 4321);
    EXPECT_EQ(k.dst_port, 80);
    EXPECT_EQ(k.payload_off, k.l4_off + header);
    const Bytes cut(l4.begin(), l4.begin() + header - 1);
    const auto [s2, k2] = parse(ethernet({}, ipv4({.proto = proto, .l4_checksum = L4Checksum::Leave}, cut)));
    ASSERT_EQ(s2, ParseStatus::Ok);
    EXPECT_EQ(k2.flags & key_flag::kAnyL4, 0);
    EXPECT_EQ(k2.src_port, 0);
  }
}

TEST(FrameParserTest, OtherProtocolsAreKeyedWithoutL4Fields) {
  for (uint8_t proto : std::array<uint8_t, 5>{47, 50, 33, 0, 255}) {
    SCOPED_TRACE(int{proto});
    const Bytes pkt = ipv4({.proto = proto}, pattern(30, 0x40));
    const auto [s, k] = parse(ethernet({}, pkt));
    ASSERT_EQ(s, ParseStatus::Ok);
    EXPECT_EQ(k.proto, proto);
    EXPECT_EQ(k.flags & key_flag::kAnyL4, 0);
    EXPECT_EQ(k.src_port, 0);
    EXPECT_EQ(k.payload_off, k.l4_off);
    EXPECT_EQ(k.l3_len, 50);
  }
}

TEST(FrameParserTest, EthernetPaddingIsNotPartOfThePacket) {
  // A 28-byte UDP packet in a 60-byte frame: 18 bytes of padding.
  const Bytes pkt = udp_packet(0);
  Bytes f = ethernet({}, pkt);
  ASSERT_EQ(f.size(), 60U);
  std::fill(f.begin() + 14 + 28, f.end(), 0x5a);  // padding need not be zero
  const auto [s, k] = parse(f);
  ASSERT_EQ(s, ParseStatus::Ok);
  EXPECT_EQ(k.l3_len, 28);
  EXPECT_EQ(k.payload_off, 14 + 28);
  EXPECT_TRUE(l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), k));
  // A trailing FCS after a full-size frame is padding too.
  Bytes with_fcs = ethernet({}, tcp_syn_packet());
  put32(with_fcs, 0xdeadbeef);
  EXPECT_EQ(parse(with_fcs).status, ParseStatus::Ok);
}

TEST(FrameParserTest, Ipv6AndArpAreRecognisedAndCounted) {
  const Bytes v6 = ethernet({.ethertype = kEtherIpv6}, ipv6(udp({})));
  const Bytes arp = ethernet({.dst = kMacBroadcast, .ethertype = kEtherArp},
                             arp_request(kMacB, ip4(10, 0, 0, 1), ip4(10, 0, 0, 2)));
  const Bytes v6_sll2 = sll2({.protocol = kEtherIpv6}, ipv6(udp({})));
  const FrameRef refs[] = {
      {v6.data(), static_cast<uint32_t>(v6.size()), 1, LinkType::Ethernet},
      {arp.data(), static_cast<uint32_t>(arp.size()), 1, LinkType::Ethernet},
      {v6_sll2.data(), static_cast<uint32_t>(v6_sll2.size()), 1, LinkType::LinuxSll2},
  };
  PacketKey keys[3];
  ParseStatus st[3];
  ParseCounters c;
  parse_burst(refs, keys, st, c);
  EXPECT_EQ(st[0], ParseStatus::Ipv6NotHandled);
  EXPECT_EQ(st[1], ParseStatus::NotIp);
  EXPECT_EQ(st[2], ParseStatus::Ipv6NotHandled);
  EXPECT_EQ(c.count(ParseStatus::Ipv6NotHandled), 2U);
  EXPECT_EQ(c.count(ParseStatus::NotIp), 1U);
  EXPECT_EQ(c.count(ParseStatus::Ok), 0U);
  // L2 fields are filled even for frames that are not IPv4.
  EXPECT_EQ(keys[1].pkttype, PktType::Broadcast);
  EXPECT_EQ(keys[1].src_mac, kMacB);
}

// ---------------------------------------------------------------- one test per reason

/// Parses `f`, expects `want`, and checks that parse_burst counts exactly
/// that status once.
void expect_status(const Bytes& f, LinkType link, ParseStatus want) {
  const Parsed p = parse(f, link);
  EXPECT_EQ(p.status, want);
  const FrameRef ref{f.data(), static_cast<uint32_t>(f.size()), kIf, link};
  PacketKey key;
  ParseStatus st = ParseStatus::Ok;
  ParseCounters c;
  parse_burst(std::span(&ref, 1), std::span(&key, 1), std::span(&st, 1), c);
  EXPECT_EQ(st, want);
  EXPECT_EQ(c.count(want), 1U);
  EXPECT_EQ(c.total(), 1U);
  EXPECT_EQ(key, p.key);
  if (want != ParseStatus::Ok) {
    EXPECT_EQ(p.key.flags & key_flag::kAnyL4, 0) << "no L4 fields on failure";
    EXPECT_EQ(p.key.src_port, 0);
  }
  if (status_has_l3(want)) {
    EXPECT_NE(p.key.l3_len, 0) << "L3 fields are filled for L4 errors";
  } else {
    EXPECT_EQ(p.key.l3_len, 0);
    EXPECT_EQ(p.key.src_ip, 0U);
  }
}

Bytes eth(const Bytes& payload, uint16_t type = kEtherIpv4) {
  return ethernet({.ethertype = type, .pad = false}, payload);
}

TEST(MalformedTest, UnsupportedLinkType) {
  expect_status(ethernet({}, udp_packet()), static_cast<LinkType>(0), ParseStatus::UnsupportedLinkType);
  expect_status(ethernet({}, udp_packet()), static_cast<LinkType>(105), ParseStatus::UnsupportedLinkType);
  expect_status({}, static_cast<LinkType>(999), ParseStatus::UnsupportedLinkType);
}

TEST(MalformedTest, TruncatedL2) {
  expect_status(Bytes(13, 0), LinkType::Ethernet, ParseStatus::TruncatedL2);
  expect_status({}, LinkType::Ethernet, ParseStatus::TruncatedL2);
  expect_status(Bytes(15, 0), LinkType::LinuxSll, ParseStatus::TruncatedL2);
  expect_status(Bytes(19, 0), LinkType::LinuxSll2, ParseStatus::TruncatedL2);
}

TEST(MalformedTest, TruncatedVlan) {
  Bytes f = ethernet({.tags = {{.vid = 5}}, .pad = false}, {});
  f.resize(14 + 3);  // TPID, then 3 of the 4 tag bytes
  expect_status(f, LinkType::Ethernet, ParseStatus::TruncatedVlan);
  Bytes qinq = ethernet({.tags = {{.vid = 5, .tpid = kEther8021AD}, {.vid = 6}}, .pad = false}, {});
  qinq.resize(14 + 4 + 1);
  expect_status(qinq, LinkType::Ethernet, ParseStatus::TruncatedVlan);
}

TEST(MalformedTest, TooManyVlanTags) {
  const Bytes f = ethernet({.tags = {{.vid = 1, .tpid = kEther8021AD}, {.vid = 2}, {.vid = 3}}},
                           udp_packet());
  expect_status(f, LinkType::Ethernet, ParseStatus::TooManyVlanTags);
}

TEST(MalformedTest, NotIp) {
  expect_status(ethernet({.ethertype = kEtherArp}, arp_request(kMacA, 1, 2)), LinkType::Ethernet,
                ParseStatus::NotIp);
  expect_status(ethernet({.ethertype = 0x88cc}, pattern(40)), LinkType::Ethernet, ParseStatus::NotIp);
  expect_status(ethernet({.ethertype = 0x0026}, pattern(40)), LinkType::Ethernet, ParseStatus::NotIp);
  expect_status(sll({.protocol = 0x0004}, pattern(40)), LinkType::LinuxSll, ParseStatus::NotIp);
}

TEST(MalformedTest, Ipv6NotHandled) {
  expect_status(eth(ipv6(udp({})), kEtherIpv6), LinkType::Ethernet, ParseStatus::Ipv6NotHandled);
  expect_status(ipv6(udp({})), LinkType::Raw, ParseStatus::Ipv6NotHandled);
}

TEST(MalformedTest, TruncatedIpHeader) {
  Bytes pkt = udp_packet();
  pkt.resize(19);
  expect_status(eth(pkt), LinkType::Ethernet, ParseStatus::TruncatedIpHeader);
  expect_status({}, LinkType::Raw, ParseStatus::TruncatedIpHeader);
  // IHL says 24 bytes, 20 are there.
  Bytes opt = ipv4({.proto = kProtoUdp, .options = Bytes(4, 1)}, {});
  opt.resize(22);
  expect_status(opt, LinkType::Ipv4, ParseStatus::TruncatedIpHeader);
}

TEST(MalformedTest, BadIpVersion) {
  expect_status(eth(ipv4({.version = 6}, tcp({}))), LinkType::Ethernet, ParseStatus::BadIpVersion);
  expect_status(eth(ipv6(udp({}))), LinkType::Ethernet, ParseStatus::BadIpVersion);  // 0x0800 + v6
  expect_status(ipv4({.version = 0}, udp({})), LinkType::Raw, ParseStatus::BadIpVersion);
}

TEST(MalformedTest, BadIpHeaderLength) {
  for (uint8_t ihl = 0; ihl < 5; ++ihl)
    expect_status(eth(ipv4({.ihl = ihl}, tcp({}))), LinkType::Ethernet, ParseStatus::BadIpHeaderLength);
}

TEST(MalformedTest, BadIpChecksum) {
  expect_status(eth(ipv4({.bad_header_checksum = true}, tcp({}))), LinkType::Ethernet,
                ParseStatus::BadIpChecksum);
  // The checksum covers the options too.
  Bytes pkt = ipv4({.proto = kProtoUdp, .options = Bytes(8, 1)}, udp({}));
  pkt[25] = 0;
  expect_status(pkt, LinkType::Raw, ParseStatus::BadIpChecksum);
}

TEST(MalformedTest, IpTotalLengthBeyondFrame) {
  expect_status(eth(ipv4({.total_length = 61}, tcp({.options = tcp_syn_options()}))),
                LinkType::Ethernet, ParseStatus::IpTotalLengthBeyondFrame);
  Bytes cut = tcp_syn_packet();
  cut.pop_back();  // captured with a snap length
  expect_status(cut, LinkType::Raw, ParseStatus::IpTotalLengthBeyondFrame);
}

TEST(MalformedTest, IpTotalLengthTooShort) {
  expect_status(eth(ipv4({.total_length = 19}, tcp({}))), LinkType::Ethernet,
                ParseStatus::IpTotalLengthTooShort);
  expect_status(eth(ipv4({.options = Bytes(4, 1), .total_length = 20}, tcp({}))),
                LinkType::Ethernet, ParseStatus::IpTotalLengthTooShort);
}

TEST(MalformedTest, TruncatedL4) {
  Bytes short_tcp = tcp({});
  short_tcp.resize(19);
  expect_status(eth(ipv4({.proto = kProtoTcp}, short_tcp)), LinkType::Ethernet, ParseStatus::TruncatedL4);
  Bytes short_udp = udp({});
  short_udp.resize(7);
  expect_status(eth(ipv4({.proto = kProtoUdp}, short_udp)), LinkType::Ethernet, ParseStatus::TruncatedL4);
  Bytes short_icmp = icmp({});
  short_icmp.resize(7);
  expect_status(eth(ipv4({.proto = kProtoIcmp}, short_icmp)), LinkType::Ethernet, ParseStatus::TruncatedL4);
  // Data offset says 24 bytes, the packet holds 20.
  expect_status(eth(ipv4({.proto = kProtoTcp}, tcp({.data_offset = 6}))), LinkType::Ethernet,
                ParseStatus::TruncatedL4);
  // A first fragment too short for the TCP header.
  const Bytes whole = ipv4({.proto = kProtoTcp}, tcp({.payload = pattern(64)}));
  expect_status(eth(fragment(whole, 0, 16)), LinkType::Ethernet, ParseStatus::TruncatedL4);
  // The TCP header would fit in the frame, but only within the padding.
  Bytes padded = ethernet({}, ipv4({.proto = kProtoTcp}, short_tcp));
  ASSERT_EQ(padded.size(), 60U);
  expect_status(padded, LinkType::Ethernet, ParseStatus::TruncatedL4);
}

TEST(MalformedTest, BadTcpDataOffset) {
  for (uint8_t doff = 0; doff < 5; ++doff)
    expect_status(eth(ipv4({.proto = kProtoTcp}, tcp({.data_offset = doff}))), LinkType::Ethernet,
                  ParseStatus::BadTcpDataOffset);
}

// Every status except Ok has a test above; this catches a new status added to
// NFB_PARSE_STATUS_LIST without one.
TEST(MalformedTest, EveryReasonIsCoveredByATest) {
  const std::set<std::string> tested = {
      "UnsupportedLinkType", "TruncatedL2", "TruncatedVlan", "TooManyVlanTags", "NotIp",
      "Ipv6NotHandled", "TruncatedIpHeader", "BadIpVersion", "BadIpHeaderLength", "BadIpChecksum",
      "IpTotalLengthBeyondFrame", "IpTotalLengthTooShort", "TruncatedL4", "BadTcpDataOffset"};
  std::set<std::string> declared;
#define NFB_TEST_STATUS(name, str, desc) \
  if (std::string(#name) != "Ok") declared.insert(#name);
  NFB_PARSE_STATUS_LIST(NFB_TEST_STATUS)
#undef NFB_TEST_STATUS
  EXPECT_EQ(declared, tested);
  const auto* info = ::testing::UnitTest::GetInstance();
  for (const std::string& name : tested) {
    bool found = false;
    for (int i = 0; i < info->total_test_suite_count(); ++i) {
      const auto* suite = info->GetTestSuite(i);
      if (std::string(suite->name()) != "MalformedTest") continue;
      for (int j = 0; j < suite->total_test_count(); ++j)
        found = found || name == suite->GetTestInfo(j)->name();
    }
    EXPECT_TRUE(found) << "no MalformedTest." << name;
  }
}

// ---------------------------------------------------------------- truncation

struct Sample {
  std::string name;
  Bytes frame;
  LinkType link;
};

std::vector<Sample> valid_samples() {
  const Bytes whole = ipv4({.proto = kProtoUdp, .id = 5}, udp({.payload = pattern(200)}));
  return {
      {"eth_tcp_options", ethernet({}, tcp_syn_packet()), LinkType::Ethernet},
      {"eth_udp_padded", ethernet({}, udp_packet(0)), LinkType::Ethernet},
      {"vlan_udp", ethernet({.tags = {{.vid = 10}}}, udp_packet()), LinkType::Ethernet},
      {"qinq_icmp", ethernet({.tags = {{.vid = 1, .tpid = kEther8021AD}, {.vid = 2}}}, icmp_echo_packet()),
       LinkType::Ethernet},
      {"eth_icmp_error", ethernet({}, icmp_error_packet(tcp_syn_packet())), LinkType::Ethernet},
      {"eth_ip_options", ethernet({}, ipv4({.proto = kProtoTcp, .options = Bytes(12, 1)},
                                           tcp({.payload = pattern(9)}))),
       LinkType::Ethernet},
      {"eth_first_fragment", ethernet({}, fragment(whole, 0, 64)), LinkType::Ethernet},
      {"eth_later_fragment", ethernet({}, fragment(whole, 64, 64)), LinkType::Ethernet},
      {"eth_gre", ethernet({}, ipv4({.proto = 47}, pattern(24))), LinkType::Ethernet},
      {"sll_udp", sll({}, udp_packet()), LinkType::LinuxSll},
      {"sll2_icmp_error", sll2({}, icmp_error_packet(icmp_echo_packet())), LinkType::LinuxSll2},
      {"raw_tcp", tcp_syn_packet(), LinkType::Raw},
      {"ipv4_udp", udp_packet(), LinkType::Ipv4},
  };
}

TEST(TruncationTest, EveryPrefixOfAValidFrameIsRejectedUnlessItHoldsThePacket) {
  for (const Sample& sample : valid_samples()) {
    SCOPED_TRACE(sample.name);
    const Parsed full = parse(sample.frame, sample.link);
    ASSERT_EQ(full.status, ParseStatus::Ok);
    const std::size_t packet_end = std::size_t{full.key.l3_off} + full.key.l3_len;
    for (std::size_t n = 0; n < sample.frame.size(); ++n) {
      const Bytes prefix(sample.frame.begin(), sample.frame.begin() + static_cast<std::ptrdiff_t>(n));
      const Parsed p = parse(prefix, sample.link);  // exact-size allocation: ASan sees over-reads
      if (n >= packet_end) {
        // Only link padding is missing: same packet, same key.
        EXPECT_EQ(p.status, ParseStatus::Ok) << "prefix " << n;
        EXPECT_EQ(p.key, full.key) << "prefix " << n;
      } else {
        EXPECT_NE(p.status, ParseStatus::Ok) << "prefix " << n;
      }
    }
  }
}

// ---------------------------------------------------------------- burst API

std::vector<Sample> mixed_samples() {
  std::vector<Sample> v = valid_samples();
  Bytes cut = ethernet({}, tcp_syn_packet());
  cut.resize(40);
  v.push_back({"cut", cut, LinkType::Ethernet});
  v.push_back({"arp", ethernet({.ethertype = kEtherArp}, arp_request(kMacA, 1, 2)), LinkType::Ethernet});
  v.push_back({"v6", ipv6(udp({})), LinkType::Raw});
  v.push_back({"badsum", ethernet({}, ipv4({.bad_header_checksum = true}, tcp({}))), LinkType::Ethernet});
  v.push_back({"unsupported", ethernet({}, udp_packet()), static_cast<LinkType>(147)});
  v.push_back({"empty", {}, LinkType::LinuxSll2});
  return v;
}

TEST(BurstTest, PerFrameLinkTypesEqualFrameByFrame) {
  const std::vector<Sample> samples = mixed_samples();
  std::vector<FrameRef> refs;
  for (std::size_t i = 0; i < samples.size(); ++i)
    refs.push_back({samples[i].frame.data(), static_cast<uint32_t>(samples[i].frame.size()),
                    static_cast<uint16_t>(i + 1), samples[i].link});
  std::vector<PacketKey> keys(refs.size());
  std::vector<ParseStatus> st(refs.size(), ParseStatus::Ok);
  ParseCounters c;
  parse_burst(refs, keys, st, c);
  ParseCounters want;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    SCOPED_TRACE(samples[i].name);
    PacketKey k;
    const ParseStatus s = parse_frame(refs[i].data, refs[i].len, refs[i].link, refs[i].ifindex, k);
    want.add(s);
    EXPECT_EQ(st[i], s);
    EXPECT_EQ(keys[i], k);
    EXPECT_EQ(std::memcmp(&keys[i], &k, sizeof k), 0);
  }
  EXPECT_EQ(c, want);
  EXPECT_GT(c.count(ParseStatus::Ok), 0U);
  EXPECT_GT(c.rejected(), 4U);
}

TEST(BurstTest, PerBurstLinkTypeEqualsFrameByFrameAndIgnoresFrameRefLink) {
  for (LinkType link : {LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Raw,
                        LinkType::RawDlt12, LinkType::Ipv4, static_cast<LinkType>(3)}) {
    SCOPED_TRACE(static_cast<int>(link));
    const std::vector<Sample> samples = mixed_samples();
    std::vector<FrameRef> refs;
    for (const Sample& s : samples)  // wrong per-frame link on purpose
      refs.push_back({s.frame.data(), static_cast<uint32_t>(s.frame.size()), 3, LinkType::LinuxSll});
    std::vector<PacketKey> keys(refs.size());
    std::vector<ParseStatus> st(refs.size());
    ParseCounters c;
    parse_burst(refs, link, keys, st, c);
    ParseCounters want;
    for (std::size_t i = 0; i < refs.size(); ++i) {
      PacketKey k;
      const ParseStatus s = parse_frame(refs[i].data, refs[i].len, link, 3, k);
      want.add(s);
      EXPECT_EQ(st[i], s) << samples[i].name;
      EXPECT_EQ(keys[i], k) << samples[i].name;
    }
    EXPECT_EQ(c, want);
  }
}

TEST(BurstTest, ProcessesTheShortestSpanAndTreatsNullAsEmpty) {
  const Bytes f = ethernet({}, udp_packet());
  const FrameRef refs[] = {{f.data(), static_cast<uint32_t>(f.size()), 1, LinkType::Ethernet},
                           {nullptr, 100, 1, LinkType::Ethernet},
                           {f.data(), static_cast<uint32_t>(f.size()), 1, LinkType::Ethernet}};
  PacketKey keys[3];
  ParseStatus st[3] = {ParseStatus::NotIp, ParseStatus::NotIp, ParseStatus::NotIp};
  ParseCounters c;
  parse_burst(refs, std::span(keys, 2), std::span(st, 3), c);
  EXPECT_EQ(st[0], ParseStatus::Ok);
  EXPECT_EQ(st[1], ParseStatus::TruncatedL2);
  EXPECT_EQ(st[2], ParseStatus::NotIp);  // untouched: keys had room for 2
  EXPECT_EQ(c.total(), 2U);
  ParseCounters c2;
  parse_burst(refs, LinkType::Ethernet, keys, st, c2);
  EXPECT_EQ(st[1], ParseStatus::TruncatedL2);
  EXPECT_EQ(st[2], ParseStatus::Ok);
  EXPECT_EQ(c2.total(), 3U);
  PacketKey k;
  EXPECT_EQ(parse_frame(nullptr, 50, LinkType::Raw, 1, k), ParseStatus::TruncatedIpHeader);
}

// ---------------------------------------------------------------- checksums

TEST(ChecksumTest, Rfc1071Example) {
  // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_fold(checksum_add(data, sizeof data, 0)), 0xddf2);
  EXPECT_EQ(internet_checksum(data, sizeof data), 0x220d);
}

TEST(ChecksumTest, MatchesTheReferenceOnRandomData) {
  std::mt19937 rng(12345);
  for (std::size_t n = 0; n < 300; ++n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    const uint32_t pseudo = static_cast<uint32_t>(rng() & 0x3ffff);
    EXPECT_EQ(internet_checksum(b.data(), b.size(), pseudo), ref_checksum(b, 0, b.size(), pseudo))
        << "n=" << n;
  }
  // Long and carry-heavy messages (the 8-byte bulk path and its carries).
  for (std::size_t n : {16U, 17U, 64U, 1480U, 9000U}) {
    for (uint8_t fill : {uint8_t{0xff}, uint8_t{0xfe}, uint8_t{0x00}}) {
      Bytes b(n, fill);
      if (n > 20) b[n / 2] = static_cast<uint8_t>(rng());
      EXPECT_EQ(internet_checksum(b.data(), b.size(), 0x1fffe), ref_checksum(b, 0, b.size(), 0x1fffe))
          << "n=" << n << " fill=" << int{fill};
    }
  }
  // Summing in pieces at even boundaries equals summing at once.
  const Bytes b = pattern(101, 7);
  const uint64_t split = checksum_add(b.data() + 36, 65, checksum_add(b.data(), 36, 0));
  EXPECT_EQ(checksum_fold(split), checksum_fold(checksum_add(b.data(), b.size(), 0)));
}

TEST(ChecksumTest, HeaderChecksumOfARealPacket) {
  // A well-known IPv4 header (Wikipedia's example): checksum b861.
  const uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                         0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(internet_checksum(hdr, sizeof hdr), 0xb861);
  uint8_t with[sizeof hdr];
  std::memcpy(with, hdr, sizeof hdr);
  with[10] = 0xb8;
  with[11] = 0x61;
  EXPECT_TRUE(checksum_verifies(with, sizeof with));
}

bool frame_checksum_ok(const Bytes& f) {
  PacketKey k;
  const ParseStatus s = parse_frame(f.data(), static_cast<uint32_t>(f.size()), LinkType::Ethernet, 1, k);
  EXPECT_EQ(s, ParseStatus::Ok);
  return l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), k);
}

TEST(ChecksumTest, GoodL4ChecksumsVerify) {
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, tcp_syn_packet())));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, ipv4({}, tcp({.flags = 0x18, .payload = pattern(1001)})))));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, udp_packet(33))));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, icmp_echo_packet())));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, icmp_error_packet(udp_packet()))));
  EXPECT_TRUE(frame_checksum_ok(ethernet({.tags = {{.vid = 3}}},
                                         ipv4({.proto = kProtoUdp, .options = Bytes(12, 1)},
                                              udp({.payload = pattern(5)})))));
}

TEST(ChecksumTest, BadL4ChecksumsFail) {
  for (uint8_t proto : {kProtoTcp, kProtoUdp, kProtoIcmp}) {
    SCOPED_TRACE(int{proto});
    const Bytes l4 = proto == kProtoTcp ? tcp({.payload = pattern(20)})
                     : proto == kProtoUdp ? udp({.payload = pattern(20)})
                                          : icmp_echo(1, 2, false, pattern(30));
    EXPECT_FALSE(frame_checksum_ok(
        ethernet({}, ipv4({.proto = proto, .l4_checksum = L4Checksum::Corrupt}, l4))));
    // One flipped payload bit.
    Bytes f = ethernet({}, ipv4({.proto = proto}, l4));
    EXPECT_TRUE(frame_checksum_ok(f));
    f[f.size() - 3] ^= 0x10;
    EXPECT_FALSE(frame_checksum_ok(f));
  }
  // TCP and UDP cover the pseudo header: a rewritten address (with a fixed IP
  // header checksum, as a NAT that forgot the L4 checksum would leave it) fails.
  Bytes f = ethernet({}, tcp_syn_packet());
  f[14 + 15] ^= 1;
  fix_ipv4_checksum(f, 14);
  EXPECT_FALSE(frame_checksum_ok(f));
}

TEST(ChecksumTest, UdpWithoutChecksumFragmentsAndOtherProtocolsPass) {
  EXPECT_TRUE(frame_checksum_ok(
      ethernet({}, ipv4({.proto = kProtoUdp, .l4_checksum = L4Checksum::Leave},
                        udp({.payload = pattern(9)})))));
  // Same, with wrong TCP checksum left at 0: fails.
  EXPECT_FALSE(frame_checksum_ok(
      ethernet({}, ipv4({.proto = kProtoTcp, .l4_checksum = L4Checksum::Leave}, tcp({})))));
  const Bytes whole = ipv4({.proto = kProtoUdp}, udp({.payload = pattern(100)}));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, fragment(whole, 0, 64))));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, fragment(whole, 64, 44))));
  EXPECT_TRUE(frame_checksum_ok(ethernet({}, ipv4({.proto = 47}, pattern(20)))));
}

TEST(ChecksumTest, AKeyThatDoesNotFitTheFrameFails) {
  const Bytes f = ethernet({}, udp_packet());
  PacketKey k;
  ASSERT_EQ(parse_frame(f.data(), static_cast<uint32_t>(f.size()), LinkType::Ethernet, 1, k),
            ParseStatus::Ok);
  EXPECT_FALSE(l4_checksum_ok(f.data(), 30, k));
  EXPECT_FALSE(l4_checksum_ok(nullptr, 0, k));
}

// ---------------------------------------------------------------- random mutation

/// Invariants that hold for any input, checked on random mutations of the
/// valid samples (the fuzz target checks the same on arbitrary bytes).
void check_invariants(const Bytes& f, ParseStatus s, const PacketKey& k) {
  const std::size_t len = f.size();
  ASSERT_LT(static_cast<std::size_t>(s), kParseStatusCount);
  if (!status_has_l3(s)) {
    EXPECT_EQ(k.l3_len, 0);
    return;
  }
  EXPECT_LE(std::size_t{k.l3_off} + k.l3_len, len);
  EXPECT_GE(k.l3_len, k.ip_hdr_len());
  EXPECT_GE(k.ip_hdr_len(), 20);
  EXPECT_LE(k.ip_hdr_len(), 60);
  EXPECT_LE(k.payload_off, std::size_t{k.l3_off} + k.l3_len);
  EXPECT_LE(k.l4_off, k.payload_off);
  if (s != ParseStatus::Ok || k.is_later_fragment()) {
    EXPECT_EQ(k.flags & (key_flag::kAnyL4 | key_flag::kInner), 0);
    EXPECT_EQ(k.src_port | k.dst_port | k.tcp_flags | k.icmp_id, 0);
  }
  if (k.has(key_flag::kInner)) {
    EXPECT_EQ(k.proto, kProtoIcmp);
    EXPECT_GE(k.inner.l3_off, k.payload_off);
    EXPECT_LE(std::size_t{k.inner.l3_off} + 20, std::size_t{k.l3_off} + k.l3_len);
  } else {
    EXPECT_EQ(k.inner, InnerTuple{});
  }
}

TEST(MutationTest, RandomByteFlipsKeepTheInvariants) {
  std::mt19937 rng(2024);
  for (const Sample& sample : valid_samples()) {
    SCOPED_TRACE(sample.name);
    for (int round = 0; round < 400; ++round) {
      Bytes f = sample.frame;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips; ++i) f[rng() % f.size()] = static_cast<uint8_t>(rng());
      // Half the time, repair the IPv4 header checksum so the mutation reaches
      // the later checks instead of stopping at BadIpChecksum.
      const std::size_t l3 = parse(sample.frame, sample.link).key.l3_off;
      const std::size_t hl = static_cast<std::size_t>(f[l3] & 0x0f) * 4;
      if (rng() % 2 == 0 && hl >= 20 && l3 + hl <= f.size()) fix_ipv4_checksum(f, l3);
      f.resize(f.size() - rng() % 8);
      const Parsed p = parse(f, sample.link);
      check_invariants(f, p.status, p.key);
      if (p.status == ParseStatus::Ok) (void)l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), p.key);
    }
  }
}


// The one-pass path for the common frame gives exactly what the general
// path gives: on every valid sample and on random byte flips (with the IPv4
// checksum repaired half the time), lengths cut short, and on random
// Ethernet/IPv4 frames built to sit on the common path's edges.
TEST(CommonPath, EqualsTheGeneralPath) {
  std::mt19937 gen(99);
  const auto rng = [&gen] { return static_cast<uint32_t>(gen()); };
  uint64_t compared = 0;
  uint64_t ok = 0;
  const auto same = [&](const Bytes& f, LinkType link) {
    PacketKey a;
    PacketKey b;
    const ParseStatus sa = parse_frame(f.data(), static_cast<uint32_t>(f.size()), link, 7, a);
    const ParseStatus sb = parse_frame_general(f.data(), static_cast<uint32_t>(f.size()), link, 7, b);
    ASSERT_EQ(sa, sb);
    ASSERT_EQ(a, b);
    ++compared;
    if (sa == ParseStatus::Ok) ++ok;
  };
  for (const Sample& sample : valid_samples()) {
    SCOPED_TRACE(sample.name);
    same(sample.frame, sample.link);
    for (int round = 0; round < 400; ++round) {
      Bytes f = sample.frame;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < flips; ++i) f[rng() % f.size()] = static_cast<uint8_t>(rng());
      const std::size_t l3 = parse(sample.frame, sample.link).key.l3_off;
      const std::size_t hl = static_cast<std::size_t>(f[l3] & 0x0f) * 4;
      if (rng() % 2 == 0 && hl >= 20 && l3 + hl <= f.size()) fix_ipv4_checksum(f, l3);
      f.resize(f.size() - rng() % 8);
      same(f, sample.link);
    }
  }
  for (int round = 0; round < 20000; ++round) {
    const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, 47};
    const uint8_t proto = protos[rng() % 4];
    Bytes l4;
    if (proto == kProtoTcp) {
      l4 = tcp({.sport = static_cast<uint16_t>(rng()), .dport = static_cast<uint16_t>(rng()), .seq = rng(),
                .flags = static_cast<uint8_t>(rng()), .options = rng() % 2 == 0 ? Bytes{} : tcp_syn_options(),
                .payload = pattern(rng() % 40)});
    } else if (proto == kProtoUdp) {
      l4 = udp({.sport = static_cast<uint16_t>(rng()), .dport = static_cast<uint16_t>(rng()), .payload = pattern(rng() % 40)});
    } else {
      l4 = pattern(8 + rng() % 30);
    }
    Ipv4Spec ip{.src = rng(), .dst = rng(), .proto = proto, .ttl = static_cast<uint8_t>(rng()),
                .tos = static_cast<uint8_t>(rng()), .id = static_cast<uint16_t>(rng())};
    switch (rng() % 6) {
      case 0: ip.df = true; break;
      case 1: ip.mf = true; break;
      case 2: ip.options = Bytes{1, 1, 1, 0}; break;
      default: break;
    }
    Bytes f = ethernet({.dst = rng() % 4 == 0 ? Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} : Mac{0x02, 0, 0, 0, 0, 1}}, ipv4(ip, l4));
    switch (rng() % 5) {
      case 0: f.resize(f.size() - rng() % std::min<std::size_t>(f.size(), 40)); break;  // cut short
      case 1: set16(f, 14 + 2, static_cast<uint16_t>(rng() % 80)); fix_ipv4_checksum(f, 14); break;  // total length
      case 2: f[14 + 20 + (proto == kProtoTcp ? 12 : 4)] = static_cast<uint8_t>(rng()); break;  // data offset, length
      case 3: f.resize(f.size() + rng() % 30, 0); break;  // link padding
      default: break;
    }
    same(f, LinkType::Ethernet);
  }
  EXPECT_GT(ok, 10000U) << compared;
}

}  // namespace
}  // namespace nfb::test
