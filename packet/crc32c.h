// CRC32c (Castagnoli, RFC 3309 / RFC 9260 appendix A): the SCTP checksum.
//
// Idea: the reflected CRC with polynomial 0x1EDC6F41 (0x82F63B78 bit
// reversed), register preset to all ones and complemented at the end. x86-64
// with SSE4.2 has it in hardware (the `crc32` instruction computes exactly
// this CRC, 8 bytes a step); elsewhere a 256-entry table built at compile
// time takes one byte a step. Both give the same bits, and
// tests/crc32c_test.cpp holds them to the standard check value
// (CRC32c("123456789") = 0xE3069283) and to each other.
//
// SCTP stores the CRC in its common header's checksum field (bytes 8..11)
// least significant byte first -- the kernel compares the field, read as a
// little-endian word, with the complemented register -- and computes it over
// the whole SCTP packet with that field zeroed.
//
// Cost: about one cycle per 8 bytes with SSE4.2, a table load per byte
// without. No allocation, no exceptions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace nfb {

namespace crc32c_detail {

inline constexpr uint32_t kPolyReflected = 0x82F63B78U;

constexpr std::array<uint32_t, 256> make_table() noexcept {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t r = i;
    for (int b = 0; b < 8; ++b) r = (r >> 1) ^ ((r & 1U) != 0 ? kPolyReflected : 0U);
    t[i] = r;
  }
  return t;
}

inline constexpr std::array<uint32_t, 256> kTable = make_table();

}  // namespace crc32c_detail

/// The register after feeding [p, p + n) to it one byte at a time with the
/// table (no SIMD): the portable reference.
inline uint32_t crc32c_update_table(uint32_t reg, const uint8_t* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) reg = (reg >> 8) ^ crc32c_detail::kTable[(reg ^ p[i]) & 0xffU];
  return reg;
}

/// The register after feeding [p, p + n): the SSE4.2 instruction when the
/// build has it (8 bytes a step, then the tail byte by byte), else the table.
inline uint32_t crc32c_update(uint32_t reg, const uint8_t* p, std::size_t n) noexcept {
#if defined(__SSE4_2__) && defined(__x86_64__)
  uint64_t r = reg;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);  // little-endian: the bytes in wire order
    r = _mm_crc32_u64(r, w);
  }
  auto r32 = static_cast<uint32_t>(r);
  for (; n > 0; --n, ++p) r32 = _mm_crc32_u8(r32, *p);
  return r32;
#else
  return crc32c_update_table(reg, p, n);
#endif
}

/// CRC32c of [p, p + n): preset ~0, complemented result.
inline uint32_t crc32c(const uint8_t* p, std::size_t n) noexcept { return ~crc32c_update(~0U, p, n); }

/// The CRC32c an SCTP packet of `n` bytes at `sctp` (common header first,
/// n >= 12) carries: the CRC over the packet with its checksum field taken as
/// zero. Compare with sctp_stored_checksum().
inline uint32_t sctp_checksum(const uint8_t* sctp, std::size_t n) noexcept {
  static constexpr uint8_t kZero[4] = {0, 0, 0, 0};
  uint32_t reg = crc32c_update(~0U, sctp, 8);
  reg = crc32c_update(reg, kZero, 4);
  return ~crc32c_update(reg, sctp + 12, n - 12);
}

/// The checksum field of an SCTP common header at `sctp` (least significant
/// byte first on the wire).
inline uint32_t sctp_stored_checksum(const uint8_t* sctp) noexcept {
  return uint32_t{sctp[8]} | uint32_t{sctp[9]} << 8 | uint32_t{sctp[10]} << 16 | uint32_t{sctp[11]} << 24;
}

/// Writes `crc` into the checksum field of the SCTP common header at `sctp`.
inline void sctp_store_checksum(uint8_t* sctp, uint32_t crc) noexcept {
  sctp[8] = static_cast<uint8_t>(crc);
  sctp[9] = static_cast<uint8_t>(crc >> 8);
  sctp[10] = static_cast<uint8_t>(crc >> 16);
  sctp[11] = static_cast<uint8_t>(crc >> 24);
}

}  // namespace nfb
