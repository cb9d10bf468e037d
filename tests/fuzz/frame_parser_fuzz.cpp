// libFuzzer target for the frame parser (packet/frame_parser.h).
//
// Input: byte 0 picks the link type (low 3 bits) and the caller's ifindex
// (high 5 bits; 0 means "from the frame"); the rest is the frame, which
// libFuzzer hands over in an allocation of exactly its size, so AddressSanitizer
// catches any read past its end.
//
// Checks, each ending in __builtin_trap() when violated:
//  - the status equals the one a separate, naive re-implementation of the
//    acceptance rules computes (so "Ok iff the frame is a complete IPv4
//    packet with a complete L4 header" is tested, not assumed);
//  - key fields equal the bytes they were read from; offsets and l3_len stay
//    within the frame; a non-first fragment and any failed frame have no L4
//    fields; fields whose flag is clear are zero;
//  - both parse_burst() forms give byte-identical keys and the same statuses
//    and counters as parse_frame();
//  - l4_checksum_ok() agrees with a naive checksum over the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "packet/packet_key.h"

namespace {

using nfb::LinkType;
using nfb::PacketKey;
using nfb::ParseStatus;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr LinkType kLinks[8] = {LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2,
                                LinkType::Raw,      LinkType::RawDlt12, LinkType::RawDlt14,
                                LinkType::Ipv4,     static_cast<LinkType>(147)};

uint32_t rd16(const uint8_t* d, std::size_t o) { return (uint32_t{d[o]} << 8) | d[o + 1]; }
uint32_t rd32(const uint8_t* d, std::size_t o) { return (rd16(d, o) << 16) | rd16(d, o + 2); }

// Byte-at-a-time ones' complement sum, folded.
uint32_t naive_sum(const uint8_t* d, std::size_t n, uint32_t sum) {
  for (std::size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? uint32_t{d[i]} << 8 : uint32_t{d[i]};
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

struct Expect {
  ParseStatus status = ParseStatus::Ok;
  std::size_t l3 = 0;  // valid when the IPv4 header was reached
};

// The acceptance rules written out again, plainly and independently of the
// parser's code.
Expect reference(const uint8_t* d, std::size_t n, LinkType link) {
  Expect e;
  std::size_t off = 0;
  uint32_t type = 0;
  bool ip_now = false;
  switch (link) {
    case LinkType::Ethernet:
      if (n < 14) return {ParseStatus::TruncatedL2};
      off = 14;
      type = rd16(d, 12);
      break;
    case LinkType::LinuxSll:
      if (n < 16) return {ParseStatus::TruncatedL2};
      off = 16;
      type = rd16(d, 14);
      break;
    case LinkType::LinuxSll2:
      if (n < 20) return {ParseStatus::TruncatedL2};
      off = 20;
      type = rd16(d, 0);
      break;
    case LinkType::Raw:
    case LinkType::RawDlt12:
    case LinkType::RawDlt14:
      if (n == 0) return {ParseStatus::TruncatedIpHeader};
      if ((d[0] >> 4) == 6) return {ParseStatus::Ipv6NotHandled};
      if ((d[0] >> 4) != 4) return {ParseStatus::BadIpVersion};
      ip_now = true;
      break;
    case LinkType::Ipv4:
      ip_now = true;
      break;
    default:
      return {ParseStatus::UnsupportedLinkType};
  }
  if (!ip_now) {
    int tags = 0;
    while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
      if (tags == 2) return {ParseStatus::TooManyVlanTags};
      if (off + 4 > n) return {ParseStatus::TruncatedVlan};
      type = rd16(d, off + 2);
      off += 4;
      ++tags;
    }
    if (type == 0x86dd) return {ParseStatus::Ipv6NotHandled};
    if (type != 0x0800) return {ParseStatus::NotIp};
  }
  e.l3 = off;
  const std::size_t room = n - off;
  if (room < 20) return {ParseStatus::TruncatedIpHeader, off};
  const uint8_t* ip = d + off;
  if ((ip[0] >> 4) != 4) return {ParseStatus::BadIpVersion, off};
  const std::size_t hl = (ip[0] & 15U) * 4U;
  if (hl < 20) return {ParseStatus::BadIpHeaderLength, off};
  if (room < hl) return {ParseStatus::TruncatedIpHeader, off};
  if (naive_sum(ip, hl, 0) != 0xffff) return {ParseStatus::BadIpChecksum, off};
  const std::size_t total = rd16(ip, 2);
  if (total > room) return {ParseStatus::IpTotalLengthBeyondFrame, off};
  if (total < hl) return {ParseStatus::IpTotalLengthTooShort, off};
  if ((rd16(ip, 6) & 0x1fff) != 0) return e;
  const std::size_t l4 = total - hl;
  switch (ip[9]) {
    case 6:
      if (l4 < 20) return {ParseStatus::TruncatedL4, off};
      if ((ip[hl + 12] >> 4) < 5) return {ParseStatus::BadTcpDataOffset, off};
      if ((ip[hl + 12] >> 4) * 4U > l4) return {ParseStatus::TruncatedL4, off};
      return e;
    case 17:
    case 1:
      if (l4 < 8) return {ParseStatus::TruncatedL4, off};
      return e;
    default:
      return e;
  }
}

void check_key(const uint8_t* d, std::size_t n, ParseStatus s, const PacketKey& k,
               const Expect& want) {
  using namespace nfb;
  check(static_cast<std::size_t>(s) < kParseStatusCount);
  check(s == want.status);
  check(parse_status_name(s) != nullptr);
  const bool failed = s != ParseStatus::Ok;
  if (!status_has_l3(s)) {
    check(k.l3_len == 0 && k.src_ip == 0 && k.dst_ip == 0 && k.proto == 0 && k.l3_off == 0);
  } else {
    check(k.l3_off == want.l3);
    const std::size_t end = std::size_t{k.l3_off} + k.l3_len;
    check(end <= n);
    check(k.ip_hdr_len() >= 20 && k.ip_hdr_len() <= 60 && k.l3_len >= k.ip_hdr_len());
    check(k.l4_off <= k.payload_off && k.payload_off <= end);
    const uint8_t* ip = d + k.l3_off;
    check(k.l3_len == rd16(ip, 2) && k.src_ip == rd32(ip, 12) && k.dst_ip == rd32(ip, 16));
    check(k.proto == ip[9] && k.ttl == ip[8] && k.tos == ip[1] && k.frag == rd16(ip, 6) &&
          k.ip_id == rd16(ip, 4));
  }
  const bool has_l4 = !failed && !k.is_later_fragment();
  if (!has_l4) {
    check((k.flags & (key_flag::kAnyL4 | key_flag::kInner)) == 0);
    check(k.src_port == 0 && k.dst_port == 0 && k.tcp_flags == 0 && k.icmp_type == 0 &&
          k.icmp_code == 0 && k.icmp_id == 0 && k.payload_off == k.l4_off);
  } else {
    const uint8_t* l4 = d + k.l4_off;
    switch (k.proto) {
      case kProtoTcp:
        check(k.has(key_flag::kPorts | key_flag::kTcpFlags));
        check(k.src_port == rd16(l4, 0) && k.dst_port == rd16(l4, 2) && k.tcp_flags == l4[13]);
        check(k.payload_off == k.l4_off + (l4[12] >> 4) * 4U);
        break;
      case kProtoUdp:
        check(k.has(key_flag::kPorts) && !k.has(key_flag::kTcpFlags));
        check(k.src_port == rd16(l4, 0) && k.dst_port == rd16(l4, 2));
        break;
      case kProtoIcmp:
        check(k.has(key_flag::kIcmp) && k.icmp_type == l4[0] && k.icmp_code == l4[1]);
        check(k.src_port == 0 && k.dst_port == 0);
        check(!k.has(key_flag::kIcmpId) || k.icmp_id == rd16(l4, 4));
        break;
      case kProtoSctp:
      case kProtoUdplite: {
        // Ports once the whole common header (12 / 8 bytes) is there.
        check(!k.has(key_flag::kTcpFlags) && !k.has(key_flag::kIcmp) && !k.has(key_flag::kIcmpId));
        const uint32_t hdr = k.proto == kProtoSctp ? 12U : 8U;
        if (k.has(key_flag::kPorts)) {
          check(k.src_port == rd16(l4, 0) && k.dst_port == rd16(l4, 2) && k.payload_off == k.l4_off + hdr);
          check(std::size_t{k.l4_off} + hdr <= std::size_t{k.l3_off} + k.l3_len);
        } else {
          check(k.src_port == 0 && k.dst_port == 0 && k.payload_off == k.l4_off);
        }
        break;
      }
      default:
        check((k.flags & key_flag::kAnyL4) == 0 && k.payload_off == k.l4_off);
    }
  }
  if (!k.has(key_flag::kIcmpId)) check(k.icmp_id == 0);
  if (!k.has(key_flag::kVlan)) check(k.vlan_id == 0 && !k.has(key_flag::kQinQ));
  if (!k.has(key_flag::kMac)) {
    for (uint8_t b : k.src_mac) check(b == 0);
  }
  if (k.has(key_flag::kInner)) {
    check(k.proto == kProtoIcmp);
    const std::size_t end = std::size_t{k.l3_off} + k.l3_len;
    const std::size_t at = k.inner.l3_off;
    check(at == k.payload_off && at + 20 <= end);
    const std::size_t ihl = (d[at] & 15U) * 4U;
    check((d[at] >> 4) == 4 && ihl >= 20 && at + ihl <= end);
    check(k.inner.src_ip == rd32(d, at + 12) && k.inner.dst_ip == rd32(d, at + 16) &&
          k.inner.proto == d[at + 9]);
    if (k.inner.flags & inner_flag::kPorts) {
      check(at + ihl + 4 <= end && k.inner.src_port == rd16(d, at + ihl) &&
            k.inner.dst_port == rd16(d, at + ihl + 2));
    } else {
      check(k.inner.src_port == 0 && k.inner.dst_port == 0);
    }
    if (k.inner.flags & inner_flag::kIcmp) check(at + ihl + 8 <= end && k.inner.icmp_type == d[at + ihl]);
  } else {
    check(k.inner == InnerTuple{});
  }
}

// CRC32c bit by bit (reflected polynomial 0x82F63B78).
uint32_t naive_crc32c(const uint8_t* p, std::size_t n) {
  uint32_t crc = 0xffffffffU;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1U)));
  }
  return ~crc;
}

// Naive L4 checksum of an unfragmented TCP/UDP/ICMP/SCTP/UDP-Lite packet.
// SCTP: CRC32c of the payload with its checksum field zeroed, stored
// little-endian. UDP-Lite: the covered bytes (0: all; 1-7 or beyond the
// payload: invalid), pseudo header with protocol 17 as the kernel sums it.
bool naive_l4_ok(const uint8_t* d, const PacketKey& k) {
  const std::size_t l4_len = std::size_t{k.l3_off} + k.l3_len - k.l4_off;
  const uint8_t* l4 = d + k.l4_off;
  if (k.proto == nfb::kProtoSctp) {
    if (l4_len < 12) return false;
    std::vector<uint8_t> copy(l4, l4 + l4_len);
    for (std::size_t i = 8; i < 12; ++i) copy[i] = 0;
    const uint32_t stored = uint32_t{l4[8]} | uint32_t{l4[9]} << 8 | uint32_t{l4[10]} << 16 | uint32_t{l4[11]} << 24;
    return naive_crc32c(copy.data(), copy.size()) == stored;
  }
  if (k.proto == nfb::kProtoUdplite) {
    if (l4_len < 8) return false;
    const std::size_t field = rd16(l4, 4);
    const std::size_t cov = field == 0 ? l4_len : (field < 8 || field > l4_len ? 0 : field);
    if (cov == 0 || rd16(l4, 6) == 0) return false;
    const uint32_t pseudo = (k.src_ip >> 16) + (k.src_ip & 0xffff) + (k.dst_ip >> 16) + (k.dst_ip & 0xffff) +
                            nfb::kProtoUdp + static_cast<uint32_t>(l4_len);
    return naive_sum(l4, cov, pseudo) == 0xffff;
  }
  if (k.proto == nfb::kProtoUdp && rd16(l4, 6) == 0) return true;
  uint32_t pseudo = 0;
  if (k.proto != nfb::kProtoIcmp) {
    pseudo = (k.src_ip >> 16) + (k.src_ip & 0xffff) + (k.dst_ip >> 16) + (k.dst_ip & 0xffff) +
             k.proto + static_cast<uint32_t>(l4_len);
  }
  return naive_sum(l4, l4_len, pseudo) == 0xffff;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace nfb;
  if (size == 0 || size > 0x10000) return 0;
  const LinkType link = kLinks[data[0] & 7U];
  const auto ifindex = static_cast<uint16_t>(data[0] >> 3);
  const uint8_t* frame = size > 1 ? data + 1 : nullptr;
  const auto len = static_cast<uint32_t>(size - 1);

  PacketKey key;
  const ParseStatus s = parse_frame(frame, len, link, ifindex, key);
  check_key(frame, len, s, key, reference(frame, len, link));
  if (ifindex != kIfindexFromFrame || link != LinkType::LinuxSll2) check(key.ifindex == ifindex);

  // Burst forms: same frame twice, per-frame link and per-burst link.
  const FrameRef refs[2] = {{frame, len, ifindex, link}, {frame, len, ifindex, link}};
  PacketKey keys[2];
  ParseStatus st[2];
  ParseCounters c1, c2;
  parse_burst(refs, keys, st, c1);
  for (int i = 0; i < 2; ++i) check(st[i] == s && std::memcmp(&keys[i], &key, sizeof key) == 0);
  const FrameRef wrong_link[2] = {{frame, len, ifindex, LinkType::Ipv4},
                                  {frame, len, ifindex, LinkType::Ethernet}};
  parse_burst(wrong_link, link, keys, st, c2);
  for (int i = 0; i < 2; ++i) check(st[i] == s && std::memcmp(&keys[i], &key, sizeof key) == 0);
  check(c1 == c2 && c1.count(s) == 2 && c1.total() == 2);

  if (s == ParseStatus::Ok) {
    const bool ok = l4_checksum_ok(frame, len, key);
    const bool verifiable = !key.is_fragment() && (key.proto == kProtoTcp || key.proto == kProtoUdp ||
                                                   key.proto == kProtoIcmp || key.proto == kProtoSctp ||
                                                   key.proto == kProtoUdplite);
    check(ok == (verifiable ? naive_l4_ok(frame, key) : true));
  }
  return 0;
}
