// Strong byte-order types for wire headers.
//
// A value read off the wire is big-endian (network order). `Be16`/`Be32` hold
// such a value exactly as it sits in memory, so a packed header struct can be
// overlaid on frame bytes without conversion; `.host()` converts on demand.
// The types do not convert implicitly to integers: mixing network and host
// order is a compile error instead of a silent bug.
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

/// A 16-bit big-endian field as stored on the wire.
struct Be16 {
  uint16_t raw = 0;  // network order, as in memory
  static constexpr Be16 from_host(uint16_t v) noexcept { return Be16{host_to_be16(v)}; }
  constexpr uint16_t host() const noexcept { return host_to_be16(raw); }
  friend constexpr bool operator==(Be16, Be16) noexcept = default;
};

/// A 32-bit big-endian field as stored on the wire.
struct Be32 {
  uint32_t raw = 0;  // network order, as in memory
  static constexpr Be32 from_host(uint32_t v) noexcept { return Be32{host_to_be32(v)}; }
  constexpr uint32_t host() const noexcept { return host_to_be32(raw); }
  friend constexpr bool operator==(Be32, Be32) noexcept = default;
};

static_assert(sizeof(Be16) == 2 && sizeof(Be32) == 4);

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
