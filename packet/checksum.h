// Internet checksum (RFC 1071) and the IPv4 L4 checksum check conntrack does.
//
// Idea: the ones' complement sum is order-independent and can be taken over
// 32-bit big-endian words in a 64-bit accumulator (2^16 == 1 modulo 0xffff, so
// the halves of each word fold into the same 16-bit sum); one fold at the end.
// Host-order values of big-endian 16-bit words are summed, so every value
// here is host order: store a computed checksum with store_be16().
//
// Cost: about one add-with-carry per 8 bytes for messages of 16 bytes or
// more on x86-64 (an add and a carry count elsewhere), one add per 4 bytes
// below. No allocation, no exceptions.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "packet/byte_order.h"
#include "packet/crc32c.h"
#include "packet/ip_protocol.h"
#include "packet/packet_key.h"

namespace nfb {

/// Adds [p, p + n) to a running ones' complement sum, as big-endian 16-bit
/// words; an odd trailing byte is the high half of a zero-padded word. To sum
/// a message in pieces, every piece but the last must have an even length.
inline uint64_t checksum_add(const uint8_t* p, std::size_t n, uint64_t sum) noexcept {
  // Bulk: 8 bytes at a time in the machine's byte order, carries counted
  // apart. A ones' complement sum of byte-swapped 16-bit words is the
  // byte-swapped sum (RFC 1071, 2.B), so the folded bulk sum is swapped back
  // once; on a big-endian machine that swap is the identity.
  if (n >= 16) {
    uint64_t acc = 0;
    uint64_t carries = 0;
#if defined(__x86_64__)
    // One add-with-carry chain, 32 bytes a turn: the carry of each add goes
    // into the next, so a word costs one adc (the plain loop below needs an
    // add, a compare and a second add per word).
    unsigned long long a = 0;
    unsigned char c = 0;
    while (n >= 32) {
      uint64_t w0;
      uint64_t w1;
      uint64_t w2;
      uint64_t w3;
      std::memcpy(&w0, p, 8);
      std::memcpy(&w1, p + 8, 8);
      std::memcpy(&w2, p + 16, 8);
      std::memcpy(&w3, p + 24, 8);
      c = _addcarry_u64(c, a, w0, &a);
      c = _addcarry_u64(c, a, w1, &a);
      c = _addcarry_u64(c, a, w2, &a);
      c = _addcarry_u64(c, a, w3, &a);
      p += 32;
      n -= 32;
    }
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      c = _addcarry_u64(c, a, w, &a);
      p += 8;
      n -= 8;
    }
    acc = a;
    carries = c;
#else
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      acc += w;
      carries += acc < w ? 1U : 0U;
      p += 8;
      n -= 8;
    }
#endif
    // acc + carries * 2^64, and 2^64 == 1 modulo 0xffff.
    uint64_t folded = (acc & 0xffffffffU) + (acc >> 32) + carries;
    folded = (folded & 0xffffU) + ((folded >> 16) & 0xffffU) + (folded >> 32);
    folded = (folded & 0xffffU) + (folded >> 16);
    folded = (folded & 0xffffU) + (folded >> 16);
    const auto native = static_cast<uint16_t>(folded);
    sum += std::endian::native == std::endian::little ? static_cast<uint16_t>((native >> 8) | (native << 8)) : native;
  }
  while (n >= 4) {
    sum += load_be32(p);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    sum += load_be16(p);
    p += 2;
    n -= 2;
  }
  if (n != 0) sum += static_cast<uint64_t>(p[0]) << 8;
  return sum;
}

/// Folds a running sum to 16 bits with end-around carry.
constexpr uint16_t checksum_fold(uint64_t sum) noexcept {
  while ((sum >> 16) != 0) sum = (sum & 0xffffU) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

/// RFC 1624 eq. 3, HC' = ~(~HC + ~m + m'), with the kernel's arithmetic
/// (csum_replace4 / inet_proto_csum_replace2): the checksum field `check`
/// after a 32-bit (16-bit) field covered by it changed from `from` to `to`.
/// Host-order values. When the block's checksum was right before, the result
/// equals a full recomputation bit for bit (0x0000 when the sum is all ones).
constexpr uint16_t checksum_replace32(uint16_t check, uint32_t from, uint32_t to) noexcept {
  // The leading 0xffff is the kernel's ~csum_unfold() high half: a ones'
  // complement zero that makes the sum never fold to 0, so the result is
  // 0x0000 (not 0xffff) when the new sum is all ones, as in the kernel.
  const uint64_t sum = 0xffffULL + static_cast<uint16_t>(~check) + static_cast<uint16_t>(~(from >> 16)) +
                       static_cast<uint16_t>(~from) + (to >> 16) + (to & 0xffffU);
  return static_cast<uint16_t>(~checksum_fold(sum));
}
constexpr uint16_t checksum_replace16(uint16_t check, uint16_t from, uint16_t to) noexcept {
  const uint64_t sum = 0xffffULL + static_cast<uint16_t>(~check) + static_cast<uint16_t>(~from) + to;
  return static_cast<uint16_t>(~checksum_fold(sum));
}

/// The checksum to put into a header whose checksum field is zero while the
/// sum is taken: the ones' complement of the folded sum.
inline uint16_t internet_checksum(const uint8_t* p, std::size_t n, uint64_t initial = 0) noexcept {
  return static_cast<uint16_t>(~checksum_fold(checksum_add(p, n, initial)));
}

/// A block that includes its own checksum field verifies when its folded sum
/// is 0xffff (all ones).
inline bool checksum_verifies(const uint8_t* p, std::size_t n, uint64_t initial = 0) noexcept {
  return checksum_fold(checksum_add(p, n, initial)) == 0xffffU;
}

/// checksum_verifies() for an IPv4 header of `hl` bytes (20 to 60): the
/// usual 20-byte header in five 32-bit adds and a fold.
inline bool ipv4_header_checksum_ok(const uint8_t* ip, std::size_t hl) noexcept {
  if (hl != 20) return checksum_verifies(ip, hl);
  uint32_t w[5];
  std::memcpy(w, ip, 20);
  // Native-order 32-bit words: their ones' complement sum is the sum of the
  // big-endian 16-bit words, byte-swapped (RFC 1071, 2.B); all ones either way.
  uint64_t sum = uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
  sum = (sum & 0xffffffffU) + (sum >> 32);
  sum = (sum & 0xffffU) + (sum >> 16);
  sum = (sum & 0xffffU) + (sum >> 16);
  sum = (sum & 0xffffU) + (sum >> 16);
  return sum == 0xffffU;
}

/// The TCP/UDP pseudo-header sum for IPv4 (addresses host order, l4_len is
/// the length of the L4 header plus data).
constexpr uint64_t ipv4_pseudo_header_sum(uint32_t src_ip, uint32_t dst_ip, uint8_t proto,
                                          uint32_t l4_len) noexcept {
  return static_cast<uint64_t>(src_ip >> 16) + (src_ip & 0xffffU) + (dst_ip >> 16) +
         (dst_ip & 0xffffU) + proto + l4_len;
}

/// The UDP-Lite checksum coverage of a header whose length field is
/// `field` in a datagram of `l4_len` bytes (RFC 3828: 0 means all of it), or
/// 0 when the field is not a valid coverage (1..7, or beyond the datagram):
/// conntrack calls such a packet INVALID whatever nf_conntrack_checksum says.
constexpr uint32_t udplite_coverage(uint16_t field, uint32_t l4_len) noexcept {
  if (field == 0) return l4_len;
  return field < 8 || field > l4_len ? 0 : field;
}

/// Checks the L4 checksum of an IPv4 packet the way conntrack does with
/// nf_conntrack_checksum=1: the sum covers the whole IP payload (IP total
/// length minus header, not the UDP length field), TCP and UDP include the
/// pseudo header, ICMP does not. SCTP: the CRC32c of the whole IP payload
/// (packet/crc32c.h). UDP-Lite: the first udplite_coverage() bytes, with a
/// pseudo header of protocol 17, not 136 -- the kernel passes IPPROTO_UDP to
/// nf_checksum_partial() for UDP-Lite (measured on 6.18: a datagram summed
/// as RFC 3828 says, with 136, is INVALID; the same with 17 passes). `key`
/// must come from parse_frame() on the same bytes with status Ok.
///
/// Returns false when the checksum is wrong (or the key does not fit the
/// frame; or, UDP-Lite, when the coverage is invalid or the checksum 0,
/// which the protocol forbids). Returns true when it verifies, and also when
/// there is nothing to verify: UDP checksum 0 ("none"), a protocol other than
/// TCP/UDP/ICMP/SCTP/UDP-Lite, or a fragment (its checksum covers bytes of
/// other fragments; the kernel checks only reassembled packets).
inline bool l4_checksum_ok(const uint8_t* frame, uint32_t len, const PacketKey& key) noexcept {
  if (key.is_fragment()) return true;
  if (key.proto != kProtoTcp && key.proto != kProtoUdp && key.proto != kProtoIcmp && key.proto != kProtoSctp &&
      key.proto != kProtoUdplite)
    return true;
  const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
  if (frame == nullptr || l3_end > len || key.l4_off < key.l3_off || key.l4_off > l3_end)
    return false;
  const uint8_t* l4 = frame + key.l4_off;
  const uint32_t l4_len = l3_end - key.l4_off;
  switch (key.proto) {
    case kProtoTcp:
      if (l4_len < 20) return false;
      return checksum_verifies(l4, l4_len,
                               ipv4_pseudo_header_sum(key.src_ip, key.dst_ip, kProtoTcp, l4_len));
    case kProtoUdp:
      if (l4_len < 8) return false;
      if (load_be16(l4 + 6) == 0) return true;  // sender computed no checksum
      return checksum_verifies(l4, l4_len,
                               ipv4_pseudo_header_sum(key.src_ip, key.dst_ip, kProtoUdp, l4_len));
    case kProtoSctp:
      if (l4_len < 12) return false;
      return sctp_checksum(l4, l4_len) == sctp_stored_checksum(l4);
    case kProtoUdplite: {
      if (l4_len < 8) return false;
      const uint32_t cov = udplite_coverage(load_be16(l4 + 4), l4_len);
      if (cov == 0 || load_be16(l4 + 6) == 0) return false;
      return checksum_verifies(l4, cov, ipv4_pseudo_header_sum(key.src_ip, key.dst_ip, kProtoUdp, l4_len));
    }
    default:  // ICMP
      if (l4_len < 8) return false;
      return checksum_verifies(l4, l4_len);
  }
}

}  // namespace nfb
