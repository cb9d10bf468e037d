// Strong byte-order types for wire headers.
//
// A value read off the wire is big-endian (network order). `Be16`/`Be32` hold
// such a value exactly as it sits in memory, so the header structs of
// packet/headers.h can be overlaid on frame bytes without conversion;
// `.host()` converts on demand. The types do not convert implicitly to
// integers: mixing network and host order is a compile error instead of a
// silent bug. load_be16/32 and store_be16/32 read and write single fields
// where no header struct is at hand (NAT's rewrites, checksums).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace nfb {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian machines are not supported");

constexpr uint16_t byteswap16(uint16_t v) noexcept {
  return static_cast<uint16_t>((v >> 8) | (v << 8));
}
constexpr uint32_t byteswap32(uint32_t v) noexcept {
  return ((v & 0x000000ffU) << 24) | ((v & 0x0000ff00U) << 8) | ((v & 0x00ff0000U) >> 8) |
         ((v & 0xff000000U) >> 24);
}

constexpr uint16_t host_to_be16(uint16_t v) noexcept {
  return std::endian::native == std::endian::big ? v : byteswap16(v);
}
constexpr uint32_t host_to_be32(uint32_t v) noexcept {
  return std::endian::native == std::endian::big ? v : byteswap32(v);
}

/// A 16-bit big-endian field as stored on the wire: its two bytes, so a
/// header struct made of such fields has alignment 1 and can be read at any
/// address a frame puts it (packet/headers.h).
struct Be16 {
  uint8_t b[2] = {0, 0};
  static constexpr Be16 from_host(uint16_t v) noexcept {
    return Be16{{static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}};
  }
  constexpr uint16_t host() const noexcept { return static_cast<uint16_t>(b[0] << 8 | b[1]); }
  friend constexpr bool operator==(Be16, Be16) noexcept = default;
};

/// A 32-bit big-endian field as stored on the wire (alignment 1, as Be16).
struct Be32 {
  uint8_t b[4] = {0, 0, 0, 0};
  static constexpr Be32 from_host(uint32_t v) noexcept {
    return Be32{{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                 static_cast<uint8_t>(v)}};
  }
  constexpr uint32_t host() const noexcept {
    return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | uint32_t{b[3]};
  }
  friend constexpr bool operator==(Be32, Be32) noexcept = default;
};

static_assert(sizeof(Be16) == 2 && sizeof(Be32) == 4 && alignof(Be16) == 1 && alignof(Be32) == 1);
static_assert(Be16::from_host(0x1234).host() == 0x1234 && Be32::from_host(0x12345678).host() == 0x12345678);

/// Unaligned big-endian loads. The caller has checked that the bytes exist.
inline uint16_t load_be16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return host_to_be16(v);
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return host_to_be32(v);
}
inline void store_be16(uint8_t* p, uint16_t v) noexcept {
  v = host_to_be16(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
  v = host_to_be32(v);
  std::memcpy(p, &v, sizeof v);
}

}  // namespace nfb
