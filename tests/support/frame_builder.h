// Test helper: builds frames byte by byte, from the inside out.
//
// Idea: each layer is a plain spec struct plus a function that serialises it
// around the bytes of the layer inside it:
//
//   Bytes seg = tcp({.sport = 1234, .dport = 80, .flags = tcp_flag::kSyn});
//   Bytes pkt = ipv4({.src = ip4(10, 0, 0, 1), .dst = ip4(10, 0, 0, 2),
//                     .proto = kProtoTcp}, seg);      // fills both checksums
//   Bytes frame = ethernet({.dst = kMacA, .src = kMacB}, pkt);  // pads to 60
//
// ipv4() computes the header checksum and, unless told otherwise, the TCP/UDP/
// ICMP checksum of the L4 bytes it wraps (pseudo header included). Every
// "override" field lets a test build a malformed header on purpose.
//
// The checksum here (ref_checksum) is a deliberately naive, separate
// implementation of RFC 1071, so that tests of packet/checksum.h compare
// two independent computations rather than one with itself.
//
// Header-only, allocates freely (it is test code), no dependency on the
// parser beyond the protocol constants of packet/packet_key.h.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "packet/packet_key.h"

namespace nfb::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr Mac kMacA{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};  // locally administered unicast
inline constexpr Mac kMacB{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
inline constexpr Mac kMacBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr Mac kMacMulticast{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};  // 224.0.0.251

inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kEther8021Q = 0x8100;
inline constexpr uint16_t kEther8021AD = 0x88a8;
inline constexpr uint16_t kEtherQinQLegacy = 0x9100;

/// a.b.c.d as a host-order address.
constexpr uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | uint32_t{d};
}

// ---------------------------------------------------------------- raw bytes

inline void put8(Bytes& b, uint8_t v) { b.push_back(v); }
inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline void put(Bytes& b, const Bytes& tail) { b.insert(b.end(), tail.begin(), tail.end()); }
inline void put(Bytes& b, const Mac& m) { b.insert(b.end(), m.begin(), m.end()); }
inline void set16(Bytes& b, std::size_t at, uint16_t v) {
  b.at(at) = static_cast<uint8_t>(v >> 8);
  b.at(at + 1) = static_cast<uint8_t>(v);
}
inline uint16_t get16(const Bytes& b, std::size_t at) {
  return static_cast<uint16_t>((b.at(at) << 8) | b.at(at + 1));
}
inline Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes r = a;
  put(r, b);
  return r;
}
/// `n` bytes counting up from `first`: recognisable payload.
inline Bytes pattern(std::size_t n, uint8_t first = 0) {
  Bytes r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = static_cast<uint8_t>(first + i);
  return r;
}

/// RFC 1071 the textbook way: 16-bit words, 32-bit accumulator folded at the
/// end, ones' complement. `initial` is a pseudo-header sum.
inline uint16_t ref_checksum(const Bytes& b, std::size_t from, std::size_t n, uint32_t initial = 0) {
  uint32_t sum = initial;
  for (std::size_t i = 0; i < n; i += 2) {
    uint32_t word = static_cast<uint32_t>(b.at(from + i)) << 8;
    if (i + 1 < n) word |= b.at(from + i + 1);
    sum += word;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline uint32_t ref_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, std::size_t l4_len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto +
         static_cast<uint32_t>(l4_len);
}

/// CRC32c (RFC 9260 appendix A) bit by bit, the textbook way: a separate
/// implementation for the tests of packet/crc32c.h.
inline uint32_t ref_crc32c(const Bytes& b, std::size_t from, std::size_t n) {
  uint32_t crc = 0xffffffffU;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= b.at(from + i);
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1U) != 0 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
  }
  return ~crc;
}

/// The SCTP checksum of the SCTP packet `b[from, from + n)` (its checksum
/// field taken as 0), and the value as the field holds it (least
/// significant byte first).
inline uint32_t ref_sctp_checksum(Bytes b, std::size_t from, std::size_t n) {
  for (std::size_t i = 8; i < 12; ++i) b.at(from + i) = 0;
  return ref_crc32c(b, from, n);
}
inline uint32_t ref_sctp_stored(const Bytes& b, std::size_t from) {
  return uint32_t{b.at(from + 8)} | uint32_t{b.at(from + 9)} << 8 | uint32_t{b.at(from + 10)} << 16 |
         uint32_t{b.at(from + 11)} << 24;
}

// ---------------------------------------------------------------- L4

struct TcpSpec {
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint32_t seq = 1;
  uint32_t ack = 0;
  uint8_t flags = tcp_flag::kSyn;
  uint16_t window = 64240;
  uint16_t urgent = 0;
  Bytes options{};  // padded with zero (end-of-option-list) bytes to a multiple of 4
  Bytes payload{};
  std::optional<uint8_t> data_offset{};  // override, in 32-bit words
};

/// A TCP segment with checksum 0 (ipv4() fills it).
inline Bytes tcp(const TcpSpec& s) {
  Bytes opts = s.options;
  while (opts.size() % 4 != 0) opts.push_back(0);
  const auto words = static_cast<uint8_t>(5 + opts.size() / 4);
  const uint8_t doff = s.data_offset.value_or(words);
  Bytes b;
  put16(b, s.sport);
  put16(b, s.dport);
  put32(b, s.seq);
  put32(b, s.ack);
  put8(b, static_cast<uint8_t>(doff << 4));
  put8(b, s.flags);
  put16(b, s.window);
  put16(b, 0);  // checksum
  put16(b, s.urgent);
  put(b, opts);
  put(b, s.payload);
  return b;
}

/// Common TCP options: MSS, SACK permitted, timestamps, NOP, window scale.
inline Bytes tcp_syn_options(uint16_t mss = 1460, uint8_t wscale = 7) {
  Bytes o{2, 4};
  put16(o, mss);
  put(o, Bytes{4, 2, 8, 10});
  put32(o, 0x01020304);
  put32(o, 0);
  put(o, Bytes{1, 3, 3, wscale});
  return o;  // 20 bytes
}

struct UdpSpec {
  uint16_t sport = 40000;
  uint16_t dport = 53;
  Bytes payload{};
  std::optional<uint16_t> length{};  // override of the UDP length field
};

/// A UDP datagram with checksum 0 (ipv4() fills it; L4Checksum::Leave keeps
/// the 0, which UDP reads as "no checksum").
inline Bytes udp(const UdpSpec& s) {
  Bytes b;
  put16(b, s.sport);
  put16(b, s.dport);
  put16(b, s.length.value_or(static_cast<uint16_t>(8 + s.payload.size())));
  put16(b, 0);
  put(b, s.payload);
  return b;
}

/// One SCTP chunk: type, flags, value; the length field says 4 + the value
/// unless overridden; padded with zeros to a multiple of 4.
struct SctpChunkSpec {
  uint8_t type = 0;
  uint8_t flags = 0;
  Bytes value{};
  std::optional<uint16_t> length{};
};

inline Bytes sctp_chunk(const SctpChunkSpec& c) {
  Bytes b;
  put8(b, c.type);
  put8(b, c.flags);
  put16(b, c.length.value_or(static_cast<uint16_t>(4 + c.value.size())));
  put(b, c.value);
  while (b.size() % 4 != 0) put8(b, 0);
  return b;
}

struct SctpSpec {
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint32_t vtag = 0;
  std::vector<Bytes> chunks{};  // from sctp_chunk()
};

/// An SCTP packet with checksum 0 (ipv4() fills the CRC32c).
inline Bytes sctp(const SctpSpec& s) {
  Bytes b;
  put16(b, s.sport);
  put16(b, s.dport);
  put32(b, s.vtag);
  put32(b, 0);
  for (const Bytes& c : s.chunks) put(b, c);
  return b;
}

/// The value of an INIT or INIT_ACK chunk: initiate tag, a_rwnd 106496, 10
/// streams each way, the initial TSN, then `params` (e.g. a state cookie).
inline Bytes sctp_init_value(uint32_t tag, uint32_t tsn, const Bytes& params = {}) {
  Bytes b;
  put32(b, tag);
  put32(b, 106496);
  put16(b, 10);
  put16(b, 10);
  put32(b, tsn);
  put(b, params);
  return b;
}

struct UdpliteSpec {
  uint16_t sport = 40000;
  uint16_t dport = 7000;
  uint16_t coverage = 8;  // the length field: bytes the checksum covers (0 = all)
  Bytes payload{};
};

/// A UDP-Lite datagram with checksum 0 (ipv4() fills it over the coverage).
inline Bytes udplite(const UdpliteSpec& s) {
  Bytes b;
  put16(b, s.sport);
  put16(b, s.dport);
  put16(b, s.coverage);
  put16(b, 0);
  put(b, s.payload);
  return b;
}

struct IcmpSpec {
  uint8_t type = 8;  // echo request
  uint8_t code = 0;
  uint16_t id = 0;   // bytes 4-5 (queries), or the first half of "unused"
  uint16_t seq = 0;  // bytes 6-7
  Bytes payload{};     // data, or the quoted packet of an error
};

/// An ICMP message with checksum 0 (ipv4() fills it).
inline Bytes icmp(const IcmpSpec& s) {
  Bytes b;
  put8(b, s.type);
  put8(b, s.code);
  put16(b, 0);
  put16(b, s.id);
  put16(b, s.seq);
  put(b, s.payload);
  return b;
}

inline Bytes icmp_echo(uint16_t id, uint16_t seq, bool reply = false, Bytes data = pattern(16)) {
  return icmp({.type = static_cast<uint8_t>(reply ? 0 : 8), .code = 0, .id = id, .seq = seq,
               .payload = std::move(data)});
}

/// An ICMP error quoting `original` (a whole IP packet from ipv4()): its IP
/// header plus the first `l4_bytes` bytes after it (RFC 792 asks for 8; Linux
/// sends as much as fits in 576 bytes).
inline Bytes icmp_error(uint8_t type, uint8_t code, const Bytes& original, std::size_t l4_bytes = 8) {
  const std::size_t hl = static_cast<std::size_t>(original.at(0) & 0x0f) * 4;
  const std::size_t n = std::min(original.size(), hl + l4_bytes);
  return icmp({.type = type, .code = code, .id = 0, .seq = 0,
               .payload = Bytes(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n))});
}

// ---------------------------------------------------------------- IPv4

/// Fill: the L4 checksum as the protocol's RFC says (SCTP: CRC32c; UDP-Lite:
/// over its coverage, pseudo header with protocol 136). Leave: as given.
/// Corrupt: Fill, then broken. UdpliteAsUdp: UDP-Lite summed with protocol 17
/// in the pseudo header, which is what Linux conntrack verifies (see
/// packet/checksum.h): for other protocols the same as Fill.
enum class L4Checksum { Fill, Leave, Corrupt, UdpliteAsUdp };

struct Ipv4Spec {
  uint32_t src = ip4(10, 0, 0, 1);
  uint32_t dst = ip4(10, 0, 0, 2);
  uint8_t proto = kProtoTcp;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0x1234;
  bool df = false;
  bool mf = false;
  uint16_t frag_offset = 0;  // in 8-byte units
  Bytes options{};             // padded with zero bytes to a multiple of 4
  std::optional<uint8_t> version{};       // override (default 4)
  std::optional<uint8_t> ihl{};           // override, in 32-bit words
  std::optional<uint16_t> total_length{}; // override
  bool bad_header_checksum = false;
  L4Checksum l4_checksum = L4Checksum::Fill;
};

/// Offset of the checksum field inside the L4 header of `proto`, if any.
inline std::optional<std::size_t> l4_checksum_offset(uint8_t proto) {
  switch (proto) {
    case kProtoTcp: return 16;
    case kProtoUdp: return 6;
    case kProtoIcmp: return 2;
    case kProtoUdplite: return 6;
    case kProtoSctp: return 8;  // 4 bytes, CRC32c
    default: return std::nullopt;
  }
}

/// An IPv4 packet around `l4`. Fills the header checksum and (L4Checksum::
/// Fill, the default) the L4 checksum over `l4` as given, so for a fragment
/// build the whole datagram with ipv4() first and cut it with fragment().
inline Bytes ipv4(const Ipv4Spec& s, const Bytes& l4) {
  Bytes opts = s.options;
  while (opts.size() % 4 != 0) opts.push_back(0);
  const std::size_t hl = 20 + opts.size();
  if (hl > 60) throw std::invalid_argument("ipv4(): options longer than 40 bytes");
  Bytes body = l4;
  const auto csum_at = l4_checksum_offset(s.proto);
  if (s.l4_checksum != L4Checksum::Leave && s.proto == kProtoSctp && body.size() >= 12) {
    uint32_t c = ref_sctp_checksum(body, 0, body.size());
    if (s.l4_checksum == L4Checksum::Corrupt) c ^= 0x5a5a5a5aU;
    for (std::size_t i = 0; i < 4; ++i) body[8 + i] = static_cast<uint8_t>(c >> (8 * i));
  } else if (s.l4_checksum != L4Checksum::Leave && s.proto == kProtoUdplite && body.size() >= 8) {
    set16(body, 6, 0);
    const uint16_t field = get16(body, 4);
    const std::size_t cov = field == 0 ? body.size() : std::min<std::size_t>(field, body.size());
    const uint8_t pseudo_proto = s.l4_checksum == L4Checksum::UdpliteAsUdp ? kProtoUdp : kProtoUdplite;
    uint16_t c = ref_checksum(body, 0, cov, ref_pseudo_sum(s.src, s.dst, pseudo_proto, body.size()));
    if (c == 0) c = 0xffff;  // 0 is not a checksum
    if (s.l4_checksum == L4Checksum::Corrupt) c = static_cast<uint16_t>(c ^ 0x5a5a);
    set16(body, 6, c);
  } else if (s.l4_checksum != L4Checksum::Leave && csum_at && body.size() >= *csum_at + 2) {
    set16(body, *csum_at, 0);
    const uint32_t pseudo =
        s.proto == kProtoIcmp ? 0 : ref_pseudo_sum(s.src, s.dst, s.proto, body.size());
    uint16_t c = ref_checksum(body, 0, body.size(), pseudo);
    if (s.proto == kProtoUdp && c == 0) c = 0xffff;  // 0 means "no checksum" in UDP
    if (s.l4_checksum == L4Checksum::Corrupt) c = static_cast<uint16_t>(c ^ 0x5a5a);
    set16(body, *csum_at, c);
  }
  Bytes b;
  put8(b, static_cast<uint8_t>((s.version.value_or(4) << 4) | s.ihl.value_or(static_cast<uint8_t>(hl / 4))));
  put8(b, s.tos);
  put16(b, s.total_length.value_or(static_cast<uint16_t>(hl + body.size())));
  put16(b, s.id);
  uint16_t frag = static_cast<uint16_t>(s.frag_offset & ip_frag::kOffsetMask);
  if (s.df) frag |= ip_frag::kDontFragment;
  if (s.mf) frag |= ip_frag::kMoreFragments;
  put16(b, frag);
  put8(b, s.ttl);
  put8(b, s.proto);
  put16(b, 0);
  put32(b, s.src);
  put32(b, s.dst);
  put(b, opts);
  uint16_t hc = ref_checksum(b, 0, hl);
  if (s.bad_header_checksum) hc = static_cast<uint16_t>(hc ^ 0x0101);
  set16(b, 10, hc);
  put(b, body);
  return b;
}

/// Rewrites the IPv4 header checksum of `packet` (at `at`) after a test has
/// edited header bytes.
inline void fix_ipv4_checksum(Bytes& packet, std::size_t at = 0) {
  const std::size_t hl = static_cast<std::size_t>(packet.at(at) & 0x0f) * 4;
  set16(packet, at + 10, 0);
  set16(packet, at + 10, ref_checksum(packet, at, hl));
}

/// One fragment of the datagram `whole` (from ipv4(), no options copied
/// beyond the first fragment's header: a test helper, not a full RFC 791
/// fragmenter). `offset` and `n` are payload bytes; offset must be a multiple
/// of 8; MF is set unless this fragment ends the payload.
inline Bytes fragment(const Bytes& whole, std::size_t offset, std::size_t n) {
  const std::size_t hl = static_cast<std::size_t>(whole.at(0) & 0x0f) * 4;
  const std::size_t payload = whole.size() - hl;
  if (offset % 8 != 0 || offset + n > payload) throw std::invalid_argument("fragment(): bad range");
  Bytes f(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(hl));
  f.insert(f.end(), whole.begin() + static_cast<std::ptrdiff_t>(hl + offset),
           whole.begin() + static_cast<std::ptrdiff_t>(hl + offset + n));
  set16(f, 2, static_cast<uint16_t>(f.size()));
  uint16_t frag = static_cast<uint16_t>(get16(whole, 6) & ip_frag::kDontFragment);
  frag |= static_cast<uint16_t>(offset / 8);
  if (offset + n < payload) frag |= ip_frag::kMoreFragments;
  set16(f, 6, frag);
  fix_ipv4_checksum(f);
  return f;
}

/// A minimal IPv6 header (40 bytes) around `payload`: enough for a parser to
/// recognise the frame.
inline Bytes ipv6(const Bytes& payload, uint8_t next_header = kProtoUdp) {
  Bytes b;
  put32(b, 0x60000000);
  put16(b, static_cast<uint16_t>(payload.size()));
  put8(b, next_header);
  put8(b, 64);
  Bytes src(16, 0), dst(16, 0);
  src[0] = 0xfd; src[15] = 1;
  dst[0] = 0xfd; dst[15] = 2;
  put(b, src);
  put(b, dst);
  put(b, payload);
  return b;
}

/// An ARP request (Ethernet/IPv4), the body of a kEtherArp frame.
inline Bytes arp_request(const Mac& sender, uint32_t sender_ip, uint32_t target_ip) {
  Bytes b;
  put16(b, 1);       // hardware type Ethernet
  put16(b, 0x0800);  // protocol IPv4
  put8(b, 6);
  put8(b, 4);
  put16(b, 1);  // request
  put(b, sender);
  put32(b, sender_ip);
  put(b, Mac{});
  put32(b, target_ip);
  return b;
}

// ---------------------------------------------------------------- L2

struct VlanTag {
  uint16_t vid = 1;
  uint16_t tpid = kEther8021Q;
  uint8_t pcp = 0;
};

struct EthSpec {
  Mac dst = kMacA;
  Mac src = kMacB;
  uint16_t ethertype = kEtherIpv4;
  std::vector<VlanTag> tags{};  // outermost first
  bool pad = true;            // pad to the 60-byte minimum (no FCS)
};

/// An Ethernet II frame: dst, src, then for each tag its TPID and TCI, then
/// the ethertype and the payload.
inline Bytes ethernet(const EthSpec& s, const Bytes& payload) {
  Bytes b;
  put(b, s.dst);
  put(b, s.src);
  for (const VlanTag& t : s.tags) {
    put16(b, t.tpid);
    put16(b, static_cast<uint16_t>((t.pcp << 13) | (t.vid & 0x0fff)));
  }
  put16(b, s.ethertype);
  put(b, payload);
  if (s.pad && b.size() < 60) b.resize(60, 0);
  return b;
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL): 16-byte header.
struct SllSpec {
  uint16_t pkttype = 0;  // PACKET_HOST
  uint16_t hatype = 1;   // ARPHRD_ETHER
  Mac addr = kMacB;
  uint16_t addr_len = 6;
  uint16_t protocol = kEtherIpv4;
};

inline Bytes sll(const SllSpec& s, const Bytes& payload) {
  Bytes b;
  put16(b, s.pkttype);
  put16(b, s.hatype);
  put16(b, s.addr_len);
  put(b, s.addr);
  put16(b, 0);  // address field is 8 bytes
  put16(b, s.protocol);
  put(b, payload);
  return b;
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): 20-byte header.
struct Sll2Spec {
  uint16_t protocol = kEtherIpv4;
  uint32_t ifindex = 2;
  uint16_t hatype = 1;
  uint8_t pkttype = 0;
  uint8_t addr_len = 6;
  Mac addr = kMacB;
};

inline Bytes sll2(const Sll2Spec& s, const Bytes& payload) {
  Bytes b;
  put16(b, s.protocol);
  put16(b, 0);  // reserved
  put32(b, s.ifindex);
  put16(b, s.hatype);
  put8(b, s.pkttype);
  put8(b, s.addr_len);
  put(b, s.addr);
  put16(b, 0);
  put(b, payload);
  return b;
}

}  // namespace nfb::test
