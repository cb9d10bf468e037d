// Option values as iptables reads them: numbers in C notation, ports and
// service names, addresses with masks, marks. The plain parsers return
// nullopt on bad input; OptionLine's parsers throw LoadError at the file,
// line and column of the value, saying what was expected. Used by the
// iptables-save reader and by the match modules and targets that read
// their own options (rules/matches/, rules/targets/). Control plane only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/load_error.h"
#include "rules/values.h"

namespace nfb {

/// A hex digit's value; 99 for anything else.
int digit_value(char c) noexcept;
/// Unsigned number in C notation as strtoul(..., 0) reads it: 0x hex,
/// leading 0 octal, else decimal. No sign, no spaces. nullopt above `max`.
std::optional<uint64_t> parse_c_uint(std::string_view s, uint64_t max) noexcept;
/// Decimal digits only.
std::optional<uint64_t> parse_dec_uint(std::string_view s, uint64_t max) noexcept;
/// True when `prefix` (non-empty or not) starts `word`, ignoring ASCII case.
bool iprefix(std::string_view prefix, std::string_view word) noexcept;
/// `s` cut at every `sep` (an empty `s` gives one empty part).
std::vector<std::string_view> split(std::string_view s, char sep);
/// IPv4 as iptables' numeric parser reads -s/-d/iprange addresses: 1 to 4
/// dotted parts in C notation, missing parts are 0 ("10.1" = 10.1.0.0).
std::optional<uint32_t> parse_ipv4_loose(std::string_view s) noexcept;
/// A netmask as four dotted parts in C notation ("255.255.0.0"; holes
/// allowed), as iptables' mask options read it; nullopt otherwise.
std::optional<uint32_t> parse_dotted_mask(std::string_view s) noexcept;

/// Which service names a port option takes, as iptables asks
/// getservbyname(): the tcp match and multiport with -p tcp ask for tcp,
/// multiport with -p udp for udp, multiport with another protocol finds no
/// name; the udp match, conntrack and the NAT targets take any protocol
/// (`-p udp --dport http` is port 80).
enum class ServiceScope : uint8_t { Any, Tcp, Udp, None };
/// A well-known service's port (a fixed table, not the host's
/// /etc/services, so that a ruleset means the same everywhere).
std::optional<uint16_t> lookup_service(std::string_view name, ServiceScope scope) noexcept;
/// A port: number in C notation 0..65535, or a service name.
std::optional<uint16_t> parse_port(std::string_view s, ServiceScope scope) noexcept;

/// One line of a rules file: where errors point, and the value parsers
/// that throw there.
class OptionLine {
 public:
  OptionLine(const std::string& file, uint32_t line) : file_(file), line_(line) {}

  SourceLocation where(uint32_t col) const;
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const;

  /// ADDR[/MASK] (MASK a prefix length or a dotted mask). `strict`: the
  /// address must have 4 parts; else fewer parts are allowed as iptables
  /// allows them for -s/-d. `what` names the address in messages.
  Ipv4Mask parse_address_mask(std::string_view s, uint32_t col, bool strict, const char* what) const;
  /// PORT, LO:HI, :HI or LO: for tcp/udp --sport/--dport.
  PortRange parse_l4_port_range(std::string_view s, uint32_t col, ServiceScope scope) const;
  /// A number 0..2^32-1; `what` names it in messages.
  uint32_t parse_u32(std::string_view s, uint32_t col, const char* what) const;
  /// VALUE[/MASK] of a mark; `opt` names the option in messages.
  std::pair<uint32_t, uint32_t> parse_mark_value(std::string_view s, uint32_t col, std::string_view opt) const;
  /// A NAT port: number or service name.
  uint16_t parse_nat_port(std::string_view s, uint32_t col) const;
  /// PORT or LO-HI of --to-ports.
  PortRange parse_nat_ports(std::string_view s, uint32_t col) const;

 private:
  const std::string& file_;
  uint32_t line_;
};

}  // namespace nfb
