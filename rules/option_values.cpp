// Option value parsers (see option_values.h).
#include "rules/option_values.h"

#include <cctype>

#include <fmt/format.h>

#include "base/text.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Small parsers (no exceptions; callers turn nullopt into a located error)

int digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

/// Unsigned number in C notation as strtoul(..., 0) reads it: 0x hex,
/// leading 0 octal, else decimal. No sign, no spaces. nullopt above `max`.
std::optional<uint64_t> parse_c_uint(std::string_view s, uint64_t max) noexcept {
  if (s.empty()) return std::nullopt;
  unsigned base = 10;
  size_t i = 0;
  if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
    if (i == s.size()) return std::nullopt;
  } else if (s[0] == '0') {
    base = 8;
  }
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    int d = digit_value(s[i]);
    if (d >= static_cast<int>(base)) return std::nullopt;
    if (static_cast<unsigned>(d) > max || v > (max - static_cast<unsigned>(d)) / base)
      return std::nullopt;  // v * base + d > max
    v = v * base + static_cast<unsigned>(d);
  }
  return v;
}

/// Decimal digits only.
std::optional<uint64_t> parse_dec_uint(std::string_view s, uint64_t max) noexcept {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<unsigned>(c - '0');
    if (d > max || v > (max - d) / 10) return std::nullopt;  // v * 10 + d > max
    v = v * 10 + d;
  }
  return v;
}

/// `prefix` is a case-insensitive prefix of `word`.
bool iprefix(std::string_view prefix, std::string_view word) noexcept {
  return prefix.size() <= word.size() && iequals(prefix, word.substr(0, prefix.size()));
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

/// IPv4 as iptables' numeric parser reads -s/-d/iprange addresses: 1 to 4
/// dotted parts in C notation, missing parts are 0 ("10.1" = 10.1.0.0).
std::optional<uint32_t> parse_ipv4_loose(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  auto parts = split(s, '.');
  if (parts.size() > 4) return std::nullopt;
  uint32_t addr = 0;
  for (size_t i = 0; i < 4; ++i) {
    uint64_t v = 0;
    if (i < parts.size()) {
      auto p = parse_c_uint(parts[i], 255);
      if (!p) return std::nullopt;
      v = *p;
    }
    addr = (addr << 8) | static_cast<uint32_t>(v);
  }
  return addr;
}

std::optional<uint32_t> parse_dotted_mask(std::string_view s) noexcept {
  if (split(s, '.').size() != 4) return std::nullopt;
  return parse_ipv4_loose(s);
}

/// A small table of well-known services (IANA names as Debian's
/// /etc/services spells them). iptables resolves names through
/// /etc/services; we do not read the host's file so that a ruleset means the
/// same everywhere. Any other name is an error.
namespace {

struct Service {
  const char* name;
  uint16_t port;
  bool tcp;  // listed for tcp
  bool udp;  // listed for udp
};
constexpr Service kServices[] = {
    {"tcpmux", 1, true, false}, {"echo", 7, true, true}, {"discard", 9, true, true},
    {"daytime", 13, true, true}, {"chargen", 19, true, true}, {"ftp-data", 20, true, false},
    {"ftp", 21, true, false}, {"ssh", 22, true, false}, {"telnet", 23, true, false},
    {"smtp", 25, true, false}, {"time", 37, true, true}, {"whois", 43, true, false},
    {"tacacs", 49, true, true}, {"domain", 53, true, true}, {"bootps", 67, false, true},
    {"bootpc", 68, false, true}, {"tftp", 69, false, true}, {"gopher", 70, true, false},
    {"finger", 79, true, false}, {"http", 80, true, false}, {"www", 80, true, false},
    {"kerberos", 88, true, true}, {"pop3", 110, true, false}, {"sunrpc", 111, true, true},
    {"auth", 113, true, false}, {"nntp", 119, true, false}, {"ntp", 123, false, true},
    {"epmap", 135, true, false}, {"netbios-ns", 137, false, true}, {"netbios-dgm", 138, false, true},
    {"netbios-ssn", 139, true, false}, {"imap2", 143, true, false}, {"imap", 143, true, false},
    {"snmp", 161, true, true}, {"snmp-trap", 162, true, true}, {"bgp", 179, true, false},
    {"ldap", 389, true, true}, {"https", 443, true, true}, {"microsoft-ds", 445, true, false},
    {"kpasswd", 464, true, true}, {"submissions", 465, true, false}, {"smtps", 465, true, false},
    {"isakmp", 500, false, true}, {"exec", 512, true, false}, {"login", 513, true, false},
    {"shell", 514, true, false}, {"syslog", 514, true, true}, {"printer", 515, true, false},
    {"route", 520, false, true}, {"dhcpv6-client", 546, false, true}, {"dhcpv6-server", 547, false, true},
    {"rtsp", 554, true, true}, {"submission", 587, true, false}, {"ipp", 631, true, false},
    {"ldaps", 636, true, true}, {"domain-s", 853, true, true}, {"rsync", 873, true, false},
    {"ftps-data", 989, true, false}, {"ftps", 990, true, false}, {"telnets", 992, true, false},
    {"imaps", 993, true, false}, {"pop3s", 995, true, false}, {"openvpn", 1194, true, true},
    {"nfs", 2049, true, true}, {"mysql", 3306, true, false}, {"ms-wbt-server", 3389, true, false},
    {"svn", 3690, true, false}, {"sip", 5060, true, true}, {"sip-tls", 5061, true, true},
    {"xmpp-client", 5222, true, false}, {"xmpp-server", 5269, true, false}, {"postgresql", 5432, true, false},
    {"postgres", 5432, true, false}, {"amqp", 5672, true, false}, {"x11", 6000, true, false},
    {"redis", 6379, true, false}, {"http-alt", 8080, true, false}, {"webcache", 8080, true, false},
    {"git", 9418, true, false},
};


}  // namespace

std::optional<uint16_t> lookup_service(std::string_view name, ServiceScope scope) noexcept {
  for (const Service& s : kServices) {
    if (name != s.name) continue;
    if (scope == ServiceScope::None || (scope == ServiceScope::Tcp && !s.tcp) || (scope == ServiceScope::Udp && !s.udp))
      continue;
    return s.port;
  }
  return std::nullopt;
}

/// A port: number in C notation 0..65535, or a service name.
std::optional<uint16_t> parse_port(std::string_view s, ServiceScope scope) noexcept {
  if (auto v = parse_c_uint(s, 65535)) return static_cast<uint16_t>(*v);
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  return lookup_service(s, scope);
}

// ---------------------------------------------------------------------------
// Located parsers

SourceLocation OptionLine::where(uint32_t col) const {
  SourceLocation w;
  w.file = file_;
  w.line = line_;
  w.column = col;
  return w;
}

void OptionLine::fail(uint32_t col, const std::string& msg) const { throw LoadError(where(col), msg); }

Ipv4Mask OptionLine::parse_address_mask(std::string_view s, uint32_t col, bool strict, const char* what) const {
  size_t slash = s.find('/');
  std::string_view a = s.substr(0, slash);
  auto addr = strict ? parse_ipv4(a) : parse_ipv4_loose(a);
  if (!addr)
    fail(col, fmt::format("bad {} address \"{}\" (expected a.b.c.d{}; host names are not resolved)", what, a,
                          strict ? "" : " or fewer dotted parts"));
  uint32_t mask = 0xffffffff;
  if (slash != std::string_view::npos) {
    std::string_view m = s.substr(slash + 1);
    auto mcol = col + static_cast<uint32_t>(slash) + 1;
    if (m.find('.') != std::string_view::npos) {
      auto mv = parse_ipv4(m);
      if (!mv) mv = split(m, '.').size() == 4 ? parse_ipv4_loose(m) : std::nullopt;
      if (!mv) fail(mcol, fmt::format("bad mask \"{}\" (expected a prefix length 0-32 or a.b.c.d)", m));
      mask = *mv;
    } else {
      auto len = parse_c_uint(m, 32);
      if (!len) fail(mcol, fmt::format("bad mask \"{}\" (expected a prefix length 0-32 or a.b.c.d)", m));
      mask = prefix_mask(static_cast<unsigned>(*len));
    }
  }
  return Ipv4Mask{*addr, mask};
}

PortRange OptionLine::parse_l4_port_range(std::string_view s, uint32_t col, ServiceScope scope) const {
  size_t colon = s.find(':');
  auto one = [&](std::string_view p, uint32_t c, uint16_t dflt) -> uint16_t {
    if (p.empty()) return dflt;
    auto v = parse_port(p, scope);
    if (!v) fail(c, fmt::format("bad port \"{}\" (expected a number 0-65535 or a known service name)", p));
    return *v;
  };
  if (colon == std::string_view::npos) {
    if (s.empty()) fail(col, "port expected");
    uint16_t p = one(s, col, 0);
    return PortRange{p, p};
  }
  PortRange r{one(s.substr(0, colon), col, 0), one(s.substr(colon + 1), col + static_cast<uint32_t>(colon) + 1, 65535)};
  if (r.lo > r.hi) fail(col, fmt::format("bad port range \"{}\" (first port above the last)", s));
  return r;
}

uint32_t OptionLine::parse_u32(std::string_view s, uint32_t col, const char* what) const {
  auto v = parse_c_uint(s, UINT32_MAX);
  if (!v) fail(col, fmt::format("bad {} \"{}\" (expected a number 0-4294967295)", what, s));
  return static_cast<uint32_t>(*v);
}

std::pair<uint32_t, uint32_t> OptionLine::parse_mark_value(std::string_view s, uint32_t col, std::string_view opt) const {
  size_t slash = s.find('/');
  auto v = parse_c_uint(s.substr(0, slash), UINT32_MAX);
  if (!v) fail(col, fmt::format("bad value \"{}\" for {} (expected VALUE[/MASK], numbers up to 0xffffffff)", s, opt));
  uint32_t mask = 0xffffffff;
  if (slash != std::string_view::npos) {
    auto m = parse_c_uint(s.substr(slash + 1), UINT32_MAX);
    if (!m) fail(col + static_cast<uint32_t>(slash) + 1,
                 fmt::format("bad mask \"{}\" for {} (expected a number up to 0xffffffff)", s.substr(slash + 1), opt));
    mask = static_cast<uint32_t>(*m);
  }
  return {static_cast<uint32_t>(*v), mask};
}

uint16_t OptionLine::parse_nat_port(std::string_view s, uint32_t col) const {
  auto v = parse_port(s, ServiceScope::Any);
  if (!v) fail(col, fmt::format("bad port \"{}\" (expected a number 0-65535 or a known service name)", s));
  return *v;
}

PortRange OptionLine::parse_nat_ports(std::string_view s, uint32_t col) const {
  if (s.find(':') != std::string_view::npos) fail(col, fmt::format("bad port range \"{}\" (use a dash: LO-HI)", s));
  size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    uint16_t p = parse_nat_port(s, col);
    return PortRange{p, p};
  }
  uint16_t lo = parse_nat_port(s.substr(0, dash), col);
  uint16_t hi = parse_nat_port(s.substr(dash + 1), col + static_cast<uint32_t>(dash) + 1);
  if (hi < lo) fail(col, fmt::format("bad port range \"{}\" (first port above the last)", s));
  return PortRange{lo, hi};
}

}  // namespace nfb
