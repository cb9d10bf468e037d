// Wire headers as fixed-layout structs (the layouts of RFC 791, 793, 768,
// 792, 9260 and IEEE 802.3), their network-order fields typed Be16/Be32 so that a
// value has to be converted with .host() before it is used as a number. Every
// struct has alignment 1 and its wire size (static_asserts below), so it can
// be read at any address a frame puts it: header_at<H>(p) after the caller
// has checked that sizeof(H) bytes exist at p.
#pragma once

#include <cstdint>

#include "packet/byte_order.h"

namespace nfb {

struct EthHdr {
  uint8_t dst[6];
  uint8_t src[6];
  Be16 type;  // ethertype (0x0800 IPv4) or a VLAN TPID
};

struct VlanTag {  // after a TPID
  Be16 tci;       // priority 3, DEI 1, VLAN id 12
  Be16 type;      // the next ethertype
};

struct Ipv4Hdr {
  uint8_t ver_ihl;  // version 4, header length in 32-bit words
  uint8_t tos;
  Be16 total_len;
  Be16 id;
  Be16 frag;  // reserved, DF, MF, fragment offset (ip_frag bits)
  uint8_t ttl;
  uint8_t proto;
  Be16 check;
  Be32 src;
  Be32 dst;
  constexpr unsigned version() const noexcept { return ver_ihl >> 4; }
  constexpr uint32_t header_len() const noexcept { return (ver_ihl & 0x0fU) * 4U; }
};

struct TcpHdr {
  Be16 sport;
  Be16 dport;
  Be32 seq;
  Be32 ack;
  uint8_t doff;   // data offset in 32-bit words, in the high nibble
  uint8_t flags;  // tcp_flag bits
  Be16 window;
  Be16 check;
  Be16 urg;
  constexpr uint32_t header_len() const noexcept { return (doff >> 4) * 4U; }
};

struct UdpHdr {
  Be16 sport;
  Be16 dport;
  Be16 len;
  Be16 check;
};

struct IcmpHdr {
  uint8_t type;
  uint8_t code;
  Be16 check;
  Be16 id;   // queries (echo, timestamp, info, address mask); unused by errors
  Be16 seq;
};

/// GRE header (RFC 2784) up to PPTP's call id (RFC 2637 4.1, enhanced GRE,
/// version 1): the fields conntrack reads.
struct GreHdr {
  Be16 flags_version;  // C R K S s Recur A Flags Ver: the version in the low 3 bits
  Be16 protocol;       // ethertype of the payload; 0x880b (PPP) for PPTP
  Be16 payload_len;    // version 1 only
  Be16 call_id;        // version 1 only: the peer's call id, conntrack's key
  static constexpr uint16_t kVersionMask = 0x0007;
  static constexpr uint16_t kProtoPpp = 0x880b;
};

/// SCTP common header (RFC 9260 3.1). UDP-Lite's header is UdpHdr with
/// `len` holding the checksum coverage (RFC 3828).
struct SctpHdr {
  Be16 sport;
  Be16 dport;
  Be32 vtag;
  uint8_t checksum[4];  // CRC32c, least significant byte first (packet/crc32c.h)
};

/// The header of each SCTP chunk; chunks follow each other padded to 4 bytes.
struct SctpChunkHdr {
  uint8_t type;  // sctp_chunk_type
  uint8_t flags;
  Be16 length;  // header and value, without the padding
};

/// SCTP chunk types (RFC 9260 3.2) and the T flag of ABORT and
/// SHUTDOWN_COMPLETE (the tag is the receiver's own, reflected).
namespace sctp_chunk_type {
inline constexpr uint8_t kData = 0;
inline constexpr uint8_t kInit = 1;
inline constexpr uint8_t kInitAck = 2;
inline constexpr uint8_t kSack = 3;
inline constexpr uint8_t kHeartbeat = 4;
inline constexpr uint8_t kHeartbeatAck = 5;
inline constexpr uint8_t kAbort = 6;
inline constexpr uint8_t kShutdown = 7;
inline constexpr uint8_t kShutdownAck = 8;
inline constexpr uint8_t kError = 9;
inline constexpr uint8_t kCookieEcho = 10;
inline constexpr uint8_t kCookieAck = 11;
inline constexpr uint8_t kShutdownComplete = 14;
inline constexpr uint8_t kFlagT = 0x01;
}  // namespace sctp_chunk_type

static_assert(sizeof(EthHdr) == 14 && sizeof(VlanTag) == 4 && sizeof(Ipv4Hdr) == 20 && sizeof(TcpHdr) == 20 &&
              sizeof(UdpHdr) == 8 && sizeof(IcmpHdr) == 8 && sizeof(SctpHdr) == 12 && sizeof(SctpChunkHdr) == 4 &&
              sizeof(GreHdr) == 8);
static_assert(alignof(EthHdr) == 1 && alignof(Ipv4Hdr) == 1 && alignof(TcpHdr) == 1 && alignof(UdpHdr) == 1 &&
              alignof(IcmpHdr) == 1 && alignof(SctpHdr) == 1 && alignof(SctpChunkHdr) == 1);

/// The header at p. The caller has checked that sizeof(H) bytes exist there.
template <typename H>
const H* header_at(const uint8_t* p) noexcept {
  return reinterpret_cast<const H*>(p);
}

}  // namespace nfb
