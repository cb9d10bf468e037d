// Small text helpers for the readers (ASCII only: rule files, names, options).
#pragma once

#include <cstddef>
#include <string_view>

namespace nfb {

constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// Equal ignoring ASCII case (iptables' strcasecmp on names and keywords).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace nfb
