// Hashing and pseudo-random helpers shared by the whole tree. Each is a pure
// function of its input: the same seed gives the same rulesets, NAT port
// choices and test traffic on every machine.
#pragma once

#include <cstdint>

namespace nfb {

/// splitmix64's output function (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014): a bijective 64-bit mix.
constexpr uint64_t splitmix64_mix(uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// One step of a splitmix64 stream: advances `state` by the golden-ratio
/// increment (full period 2^64) and returns the mixed state.
constexpr uint64_t splitmix64(uint64_t& state) noexcept {
  state += 0x9e3779b97f4a7c15ULL;
  return splitmix64_mix(state);
}

/// A bijective xor-shift-multiply 64-bit finaliser (shifts 31/27/33), used
/// where a key is hashed rather than a stream drawn: tuple hashes, the NAT
/// port offset, conntrack's portable hash.
constexpr uint64_t mix64(uint64_t h) noexcept {
  h ^= h >> 31;
  h *= 0x7fb5d329728ea185ULL;
  h ^= h >> 27;
  h *= 0x81dadef4bc2dd44dULL;
  return h ^ (h >> 33);
}

}  // namespace nfb
