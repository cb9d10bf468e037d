// IP protocol numbers used across the packet key, the rule model and
// conntrack. One place, so the parser and the rules cannot disagree.
#pragma once

#include <cstdint>

namespace nfb {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoDccp = 33;
inline constexpr uint8_t kProtoGre = 47;
inline constexpr uint8_t kProtoEsp = 50;
inline constexpr uint8_t kProtoAh = 51;
inline constexpr uint8_t kProtoSctp = 132;
inline constexpr uint8_t kProtoUdplite = 136;

}  // namespace nfb
