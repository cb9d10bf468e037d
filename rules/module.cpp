// Text helpers shared by the module files (see module.h).
#include "rules/module.h"

#include <algorithm>

namespace nfb {

std::string save_string(std::string_view s) {
  const bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (bare) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string format_range(uint32_t lo, uint32_t hi, char sep) {
  return lo == hi ? std::to_string(lo) : fmt::format("{}{}{}", lo, sep, hi);
}

std::string format_hex(uint32_t v) { return fmt::format("0x{:x}", v); }

std::string format_mark_mask(uint32_t value, uint32_t mask) {
  return mask == 0xffffffffU ? format_hex(value) : fmt::format("0x{:x}/0x{:x}", value, mask);
}

std::string format_ct_addr(const Ipv4Mask& a) {
  const int len = mask_prefix_length(a.mask);
  if (len < 0 || len == 32) return format_ipv4(a.addr);
  return fmt::format("{}/{}", format_ipv4(a.addr), len);
}

}  // namespace nfb
