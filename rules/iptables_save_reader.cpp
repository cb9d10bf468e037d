// iptables-save / iptables-restore text -> Ruleset (see iptables_save.h).
//
// A line is split into tokens the way iptables-restore does (whitespace
// separates, a double-quoted token may hold spaces, `\` escapes the next
// character inside quotes). A rule line is then read like iptables' getopt
// loop: the core options are always known; `-m NAME` and `-j NAME` make the
// module's or target's options visible. As with getopt_long, an exact name
// wins, the most recently loaded module wins among equal names, and an
// unambiguous prefix is accepted (`--to` for `--to-destination`). An option
// nobody knows loads the module of the rule's protocol (`-p tcp --dport 80`)
// once, then is retried.
//
// The table is checked at COMMIT the way the kernel checks it when the table
// is replaced: jump loops reachable from a hook, and targets/matches used
// from hooks they do not support.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "base/text.h"
#include "rules/iptables_save.h"

namespace nfb {
namespace {

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

/// A small table of well-known services (IANA names as Debian's
/// /etc/services spells them). iptables resolves names through
/// /etc/services; we do not read the host's file so that a ruleset means the
/// same everywhere. Any other name is an error.
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

/// Which service names a port option takes, as iptables asks
/// getservbyname(): the tcp match and multiport with -p tcp ask for tcp,
/// multiport with -p udp for udp, multiport with another protocol finds no
/// name; the udp match, conntrack and the NAT targets take any protocol
/// (`-p udp --dport http` is port 80).
enum class ServiceScope : uint8_t { Any, Tcp, Udp, None };

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
// Tokens

struct Token {
  std::string text;
  uint32_t col = 0;  // 1-based column of the token's first character
};

// ---------------------------------------------------------------------------
// Option tables

enum class ModKind : uint8_t {
  Tcp, Udp, Icmp, Multiport, Conntrack, State, Addrtype, Comment, Mark, Connmark,
  Iprange, String, Limit, Statistic, Length, Pkttype, Mac,
};
enum class TgtKind : uint8_t {
  Reject, Dnat, Snat, Masquerade, Redirect, Log, Mark, Connmark, Notrack, Ct, Trace,
};

struct OptDef {
  const char* name;
  uint8_t id;
  uint8_t nargs;  // 0, 1 or 2 arguments
  bool invertible;
};

// Core options. Names are those of iptables' getopt table, so that prefixes
// are ambiguous where iptables finds them ambiguous.
enum CoreOpt : uint8_t {
  kCoreSource, kCoreDestination, kCoreProtocol, kCoreInIface, kCoreOutIface, kCoreFragment,
  kCoreJump, kCoreGoto, kCoreMatch, kCoreSetCounters, kCoreTable, kCoreCommand, kCoreOther,
};
constexpr OptDef kCoreOpts[] = {
    {"append", kCoreCommand, 1, false},     {"delete", kCoreCommand, 1, false},
    {"check", kCoreCommand, 1, false},      {"insert", kCoreCommand, 1, false},
    {"replace", kCoreCommand, 1, false},    {"list", kCoreCommand, 0, false},
    {"list-rules", kCoreCommand, 0, false}, {"flush", kCoreCommand, 0, false},
    {"zero", kCoreCommand, 0, false},       {"new-chain", kCoreCommand, 1, false},
    {"delete-chain", kCoreCommand, 0, false}, {"rename-chain", kCoreCommand, 1, false},
    {"policy", kCoreCommand, 1, false},     {"source", kCoreSource, 1, true},
    {"src", kCoreSource, 1, true},          {"destination", kCoreDestination, 1, true},
    {"dst", kCoreDestination, 1, true},     {"protocol", kCoreProtocol, 1, true},
    {"in-interface", kCoreInIface, 1, true}, {"jump", kCoreJump, 1, false},
    {"table", kCoreTable, 1, false},        {"match", kCoreMatch, 1, false},
    {"numeric", kCoreOther, 0, false},      {"out-interface", kCoreOutIface, 1, true},
    {"verbose", kCoreOther, 0, false},      {"wait", kCoreOther, 0, false},
    {"wait-interval", kCoreOther, 1, false}, {"exact", kCoreOther, 0, false},
    {"fragment", kCoreFragment, 0, true},   {"version", kCoreOther, 0, false},
    {"help", kCoreOther, 0, false},         {"line-numbers", kCoreOther, 0, false},
    {"modprobe", kCoreOther, 1, false},     {"set-counters", kCoreSetCounters, 2, false},
    {"goto", kCoreGoto, 1, false},          {"ipv4", kCoreOther, 0, false},
    {"ipv6", kCoreOther, 0, false},
};

struct ShortOpt {
  char c;
  uint8_t id;
  uint8_t nargs;
  bool invertible;
};
constexpr ShortOpt kCoreShort[] = {
    {'s', kCoreSource, 1, true},   {'d', kCoreDestination, 1, true}, {'p', kCoreProtocol, 1, true},
    {'i', kCoreInIface, 1, true},  {'o', kCoreOutIface, 1, true},    {'f', kCoreFragment, 0, true},
    {'j', kCoreJump, 1, false},    {'g', kCoreGoto, 1, false},       {'m', kCoreMatch, 1, false},
    {'c', kCoreSetCounters, 2, false}, {'t', kCoreTable, 1, false},
};

enum : uint8_t { kTcpOptSport, kTcpOptDport, kTcpOptSyn, kTcpOptFlags, kTcpOptOption };
constexpr OptDef kTcpOpts[] = {
    {"source-port", kTcpOptSport, 1, true}, {"sport", kTcpOptSport, 1, true},
    {"destination-port", kTcpOptDport, 1, true}, {"dport", kTcpOptDport, 1, true},
    {"syn", kTcpOptSyn, 0, true}, {"tcp-flags", kTcpOptFlags, 2, true}, {"tcp-option", kTcpOptOption, 1, true},
};
enum : uint8_t { kUdpSport, kUdpDport };
constexpr OptDef kUdpOpts[] = {
    {"source-port", kUdpSport, 1, true}, {"sport", kUdpSport, 1, true},
    {"destination-port", kUdpDport, 1, true}, {"dport", kUdpDport, 1, true},
};
constexpr OptDef kIcmpOpts[] = {{"icmp-type", 0, 1, true}};
enum : uint8_t { kMpSource, kMpDest, kMpEither };
constexpr OptDef kMultiportOpts[] = {
    {"source-ports", kMpSource, 1, true}, {"sports", kMpSource, 1, true},
    {"destination-ports", kMpDest, 1, true}, {"dports", kMpDest, 1, true}, {"ports", kMpEither, 1, true},
};
// Conntrack option ids are bit positions of ConntrackMatch::Opt.
constexpr OptDef kConntrackOpts[] = {
    {"ctstate", 0, 1, true},        {"ctproto", 1, 1, true},        {"ctorigsrc", 2, 1, true},
    {"ctorigdst", 3, 1, true},      {"ctreplsrc", 4, 1, true},      {"ctrepldst", 5, 1, true},
    {"ctorigsrcport", 6, 1, true},  {"ctorigdstport", 7, 1, true},  {"ctreplsrcport", 8, 1, true},
    {"ctrepldstport", 9, 1, true},  {"ctstatus", 10, 1, true},      {"ctexpire", 11, 1, true},
    {"ctdir", 12, 1, false},
};
constexpr OptDef kStateOpts[] = {{"state", 0, 1, true}};
enum : uint8_t { kAtSrc, kAtDst, kAtIfaceIn, kAtIfaceOut };
constexpr OptDef kAddrtypeOpts[] = {
    {"src-type", kAtSrc, 1, true}, {"dst-type", kAtDst, 1, true},
    {"limit-iface-in", kAtIfaceIn, 0, false}, {"limit-iface-out", kAtIfaceOut, 0, false},
};
constexpr OptDef kCommentOpts[] = {{"comment", 0, 1, false}};
constexpr OptDef kMarkOpts[] = {{"mark", 0, 1, true}};
enum : uint8_t { kIprSrc, kIprDst };
constexpr OptDef kIprangeOpts[] = {{"src-range", kIprSrc, 1, true}, {"dst-range", kIprDst, 1, true}};
enum : uint8_t { kStrFrom, kStrTo, kStrAlgo, kStrString, kStrHex, kStrIcase };
constexpr OptDef kStringOpts[] = {
    {"from", kStrFrom, 1, false},   {"to", kStrTo, 1, false},          {"algo", kStrAlgo, 1, false},
    {"string", kStrString, 1, true}, {"hex-string", kStrHex, 1, true}, {"icase", kStrIcase, 0, false},
};
enum : uint8_t { kLimLimit, kLimBurst };
constexpr OptDef kLimitOpts[] = {{"limit", kLimLimit, 1, false}, {"limit-burst", kLimBurst, 1, false}};
enum : uint8_t { kStatMode, kStatProb, kStatEvery, kStatPacket };
constexpr OptDef kStatisticOpts[] = {
    {"mode", kStatMode, 1, false}, {"probability", kStatProb, 1, true},
    {"every", kStatEvery, 1, true}, {"packet", kStatPacket, 1, false},
};
constexpr OptDef kLengthOpts[] = {{"length", 0, 1, true}};
constexpr OptDef kPkttypeOpts[] = {{"pkt-type", 0, 1, true}};
constexpr OptDef kMacOpts[] = {{"mac-source", 0, 1, true}};

constexpr OptDef kRejectOpts[] = {{"reject-with", 0, 1, false}};
enum : uint8_t { kNatTo, kNatRandom, kNatRandomFully, kNatPersistent };
constexpr OptDef kDnatOpts[] = {
    {"to-destination", kNatTo, 1, false}, {"random", kNatRandom, 0, false},
    {"persistent", kNatPersistent, 0, false},
};
constexpr OptDef kSnatOpts[] = {
    {"to-source", kNatTo, 1, false}, {"random", kNatRandom, 0, false},
    {"random-fully", kNatRandomFully, 0, false}, {"persistent", kNatPersistent, 0, false},
};
constexpr OptDef kMasqueradeOpts[] = {
    {"to-ports", kNatTo, 1, false}, {"random", kNatRandom, 0, false},
    {"random-fully", kNatRandomFully, 0, false},
};
constexpr OptDef kRedirectOpts[] = {{"to-ports", kNatTo, 1, false}, {"random", kNatRandom, 0, false}};
enum : uint8_t { kLogLevel, kLogPrefix, kLogTcpSeq, kLogTcpOpt, kLogIpOpt, kLogUid, kLogMac };
constexpr OptDef kLogOpts[] = {
    {"log-level", kLogLevel, 1, false},      {"log-prefix", kLogPrefix, 1, false},
    {"log-tcp-sequence", kLogTcpSeq, 0, false}, {"log-tcp-options", kLogTcpOpt, 0, false},
    {"log-ip-options", kLogIpOpt, 0, false}, {"log-uid", kLogUid, 0, false},
    {"log-macdecode", kLogMac, 0, false},
};
enum : uint8_t { kMkSetX, kMkSet, kMkAnd, kMkOr, kMkXor, kMkSave, kMkRestore, kMkMask, kMkNfmask, kMkCtmask };
constexpr OptDef kMarkTgtOpts[] = {
    {"set-xmark", kMkSetX, 1, false}, {"set-mark", kMkSet, 1, false}, {"and-mark", kMkAnd, 1, false},
    {"or-mark", kMkOr, 1, false},     {"xor-mark", kMkXor, 1, false},
};
constexpr OptDef kConnmarkTgtOpts[] = {
    {"set-xmark", kMkSetX, 1, false},   {"set-mark", kMkSet, 1, false},   {"and-mark", kMkAnd, 1, false},
    {"or-mark", kMkOr, 1, false},       {"xor-mark", kMkXor, 1, false},   {"save-mark", kMkSave, 0, false},
    {"restore-mark", kMkRestore, 0, false}, {"mask", kMkMask, 1, false},  {"nfmask", kMkNfmask, 1, false},
    {"ctmask", kMkCtmask, 1, false},
};
enum : uint8_t { kCtNotrack, kCtZone, kCtZoneOrig, kCtZoneReply, kCtEvents, kCtExpEvents };
constexpr OptDef kCtOpts[] = {
    {"notrack", kCtNotrack, 0, false},      {"zone", kCtZone, 1, false},
    {"zone-orig", kCtZoneOrig, 1, false},   {"zone-reply", kCtZoneReply, 1, false},
    {"ctevents", kCtEvents, 1, false},      {"expevents", kCtExpEvents, 1, false},
};

struct OptTable {
  const OptDef* defs;
  size_t count;
};
template <size_t N>
constexpr OptTable table_of(const OptDef (&defs)[N]) {
  return {defs, N};
}

struct ModDef {
  const char* name;
  ModKind kind;
  OptTable opts;
};
constexpr ModDef kModules[] = {
    {"tcp", ModKind::Tcp, table_of(kTcpOpts)},
    {"udp", ModKind::Udp, table_of(kUdpOpts)},
    {"icmp", ModKind::Icmp, table_of(kIcmpOpts)},
    {"multiport", ModKind::Multiport, table_of(kMultiportOpts)},
    {"conntrack", ModKind::Conntrack, table_of(kConntrackOpts)},
    {"state", ModKind::State, table_of(kStateOpts)},
    {"addrtype", ModKind::Addrtype, table_of(kAddrtypeOpts)},
    {"comment", ModKind::Comment, table_of(kCommentOpts)},
    {"mark", ModKind::Mark, table_of(kMarkOpts)},
    {"connmark", ModKind::Connmark, table_of(kMarkOpts)},
    {"iprange", ModKind::Iprange, table_of(kIprangeOpts)},
    {"string", ModKind::String, table_of(kStringOpts)},
    {"limit", ModKind::Limit, table_of(kLimitOpts)},
    {"statistic", ModKind::Statistic, table_of(kStatisticOpts)},
    {"length", ModKind::Length, table_of(kLengthOpts)},
    {"pkttype", ModKind::Pkttype, table_of(kPkttypeOpts)},
    {"mac", ModKind::Mac, table_of(kMacOpts)},
};
const ModDef& mod_def(ModKind k) { return kModules[static_cast<size_t>(k)]; }

// Modules iptables has that this model does not: named in a clearer error.
constexpr const char* kUnsupportedModules[] = {
    "ah", "bpf", "cgroup", "cluster", "connbytes", "connlabel", "connlimit", "cpu", "dccp", "devgroup",
    "dscp", "ecn", "esp", "hashlimit", "helper", "ipvs", "nfacct", "osf", "owner", "physdev", "policy",
    "quota", "rateest", "realm", "recent", "rpfilter", "sctp", "set", "socket", "tcpmss", "time", "tos",
    "ttl", "u32", "udplite", "ipv6header", "icmp6",
};

struct TgtDef {
  const char* name;
  TgtKind kind;
  OptTable opts;
};
constexpr OptTable kNoOpts{nullptr, 0};
constexpr TgtDef kTargets[] = {
    {"REJECT", TgtKind::Reject, table_of(kRejectOpts)},
    {"DNAT", TgtKind::Dnat, table_of(kDnatOpts)},
    {"SNAT", TgtKind::Snat, table_of(kSnatOpts)},
    {"MASQUERADE", TgtKind::Masquerade, table_of(kMasqueradeOpts)},
    {"REDIRECT", TgtKind::Redirect, table_of(kRedirectOpts)},
    {"LOG", TgtKind::Log, table_of(kLogOpts)},
    {"MARK", TgtKind::Mark, table_of(kMarkTgtOpts)},
    {"CONNMARK", TgtKind::Connmark, table_of(kConnmarkTgtOpts)},
    {"NOTRACK", TgtKind::Notrack, kNoOpts},
    {"CT", TgtKind::Ct, table_of(kCtOpts)},
    {"TRACE", TgtKind::Trace, kNoOpts},
};
const TgtDef& tgt_def(TgtKind k) { return kTargets[static_cast<size_t>(k)]; }

constexpr const char* kUnsupportedTargets[] = {
    "QUEUE", "NFQUEUE", "NFLOG", "ULOG", "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNSECMARK",
    "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "NETMAP", "RATEEST", "SECMARK", "SET", "SYNPROXY",
    "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TTL",
};

// ---------------------------------------------------------------------------
// Name tables for option values

struct IcmpName {
  const char* name;
  uint8_t type, code_lo, code_hi;
};
constexpr IcmpName kIcmpNames[] = {
    {"any", 0xff, 0, 0xff},
    {"echo-reply", 0, 0, 0xff},
    {"pong", 0, 0, 0xff},
    {"destination-unreachable", 3, 0, 0xff},
    {"network-unreachable", 3, 0, 0},
    {"host-unreachable", 3, 1, 1},
    {"protocol-unreachable", 3, 2, 2},
    {"port-unreachable", 3, 3, 3},
    {"fragmentation-needed", 3, 4, 4},
    {"source-route-failed", 3, 5, 5},
    {"network-unknown", 3, 6, 6},
    {"host-unknown", 3, 7, 7},
    {"network-prohibited", 3, 9, 9},
    {"host-prohibited", 3, 10, 10},
    {"TOS-network-unreachable", 3, 11, 11},
    {"TOS-host-unreachable", 3, 12, 12},
    {"communication-prohibited", 3, 13, 13},
    {"host-precedence-violation", 3, 14, 14},
    {"precedence-cutoff", 3, 15, 15},
    {"source-quench", 4, 0, 0xff},
    {"redirect", 5, 0, 0xff},
    {"network-redirect", 5, 0, 0},
    {"host-redirect", 5, 1, 1},
    {"TOS-network-redirect", 5, 2, 2},
    {"TOS-host-redirect", 5, 3, 3},
    {"echo-request", 8, 0, 0xff},
    {"ping", 8, 0, 0xff},
    {"router-advertisement", 9, 0, 0xff},
    {"router-solicitation", 10, 0, 0xff},
    {"time-exceeded", 11, 0, 0xff},
    {"ttl-exceeded", 11, 0, 0xff},
    {"ttl-zero-during-transit", 11, 0, 0},
    {"ttl-zero-during-reassembly", 11, 1, 1},
    {"parameter-problem", 12, 0, 0xff},
    {"ip-header-bad", 12, 0, 0},
    {"required-option-missing", 12, 1, 1},
    {"timestamp-request", 13, 0, 0xff},
    {"timestamp-reply", 14, 0, 0xff},
    {"address-mask-request", 17, 0, 0xff},
    {"address-mask-reply", 18, 0, 0xff},
};

struct RejectName {
  const char* name;
  const char* alias;
  RejectTarget::With with;
};
// iptables' order: the first entry whose name or alias starts with the
// argument (case-insensitive) wins.
constexpr RejectName kRejectNames[] = {
    {"icmp-net-unreachable", "net-unreach", RejectTarget::With::IcmpNetUnreachable},
    {"icmp-host-unreachable", "host-unreach", RejectTarget::With::IcmpHostUnreachable},
    {"icmp-proto-unreachable", "proto-unreach", RejectTarget::With::IcmpProtoUnreachable},
    {"icmp-port-unreachable", "port-unreach", RejectTarget::With::IcmpPortUnreachable},
    {"icmp-net-prohibited", "net-prohib", RejectTarget::With::IcmpNetProhibited},
    {"icmp-host-prohibited", "host-prohib", RejectTarget::With::IcmpHostProhibited},
    {"tcp-reset", "tcp-rst", RejectTarget::With::TcpReset},
    {"icmp-admin-prohibited", "admin-prohib", RejectTarget::With::IcmpAdminProhibited},
};

struct LevelName {
  const char* name;
  uint8_t level;
};
constexpr LevelName kLogLevels[] = {
    {"alert", 1}, {"crit", 2}, {"debug", 7}, {"emerg", 0}, {"error", 3},
    {"info", 6},  {"notice", 5}, {"panic", 0}, {"warning", 4},
};

constexpr const char* kCtEventNames[] = {
    "new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark", "natseqinfo", "secmark",
};

struct TcpFlagName {
  const char* name;
  uint8_t bits;
};
constexpr TcpFlagName kTcpFlagNames[] = {
    {"FIN", tcp_flag::kFin}, {"SYN", tcp_flag::kSyn}, {"RST", tcp_flag::kRst}, {"PSH", tcp_flag::kPsh},
    {"ACK", tcp_flag::kAck}, {"URG", tcp_flag::kUrg}, {"ALL", 0x3f},    {"NONE", 0},
};

constexpr uint32_t kLimitSecond = 1, kLimitMinute = 60, kLimitHour = 3600, kLimitDay = 86400;

/// The kernel's token-bucket credit for a time in 1/10000 s, in the 32-bit
/// arithmetic xt_limit uses (wrapping included). Credits per second are
/// HZ * CREDITS_PER_JIFFY = 32000 for HZ 250 and 1000, the usual kernels.
uint32_t limit_credits(uint32_t user) noexcept {
  constexpr uint32_t kCreditsPerSecond = 32000;
  if (user > 0xffffffffU / kCreditsPerSecond)
    return static_cast<uint32_t>(uint64_t{user / LimitMatch::kScale} * kCreditsPerSecond);
  return user * kCreditsPerSecond / LimitMatch::kScale;
}

// ---------------------------------------------------------------------------
// The reader

/// Where an option came from, for dispatch and for getopt's table order.
struct Provider {
  bool is_target;
  uint8_t kind;  // ModKind or TgtKind
};

struct ResolvedOpt {
  enum class Owner : uint8_t { Core, Module, Target } owner;
  uint8_t kind = 0;  // ModKind / TgtKind for Module / Target
  const OptDef* def = nullptr;
  uint8_t core_id = 0;
  uint8_t nargs = 0;
  bool invertible = false;
};

/// Columns of a rule's target and matches, kept beside the rule while its
/// table is read, so that checks at COMMIT can point at the token.
struct RuleAux {
  uint32_t target_col = 0;
  std::vector<uint32_t> match_cols;
};

/// Chain name -> index in its table, so that a rule line costs O(1) chain
/// lookups whatever the number of chains.
using ChainIndex = std::unordered_map<std::string, uint32_t>;

std::optional<uint32_t> lookup_chain(const ChainIndex& index, const std::string& name) {
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

/// One loaded module instance of the rule being read.
struct Instance {
  ModKind kind;
  size_t match_index;  // in Rule::matches
  uint32_t seen = 0;   // option ids given (bit per id)
  uint32_t col = 0;    // where it was loaded (its -m, or the option that loaded it)
};

class Reader {
 public:
  Reader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  Ruleset run();

 private:
  // --- errors
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const { fail_at(line_no_, col, msg); }
  [[noreturn]] void fail_at(uint32_t line, uint32_t col, const std::string& msg) const {
    SourceLocation where;
    where.file = file_;
    where.line = line;
    where.column = col;
    throw LoadError(std::move(where), msg);
  }
  SourceLocation here(uint32_t col) const {
    SourceLocation w;
    w.file = file_;
    w.line = line_no_;
    w.column = col;
    return w;
  }

  // --- lines
  std::vector<Token> tokenize(std::string_view line);
  void table_line(const std::vector<Token>& toks);
  void chain_line(const std::string_view line, uint32_t col);
  void commit_line(const std::vector<Token>& toks);
  void command_line(std::vector<Token> toks);
  Counters parse_counters(std::string_view text, uint32_t col, bool rule);
  void set_policy(uint32_t chain, const Token& policy_tok);
  void check_chain_name(const Token& tok);
  uint32_t existing_chain(const Token& tok);

  // --- rules
  void parse_rule(const std::vector<Token>& toks, size_t first, uint32_t chain_index,
                  std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);
  void finish_table();
  [[noreturn]] void fail_rule(const Rule& r, uint32_t col, const std::string& msg) const {
    fail_at(r.where.line, col != 0 ? col : r.where.column, msg);
  }

  std::string_view text_;
  const std::string& file_;
  uint32_t line_no_ = 0;

  Ruleset ruleset_;
  bool in_table_ = false;
  Table table_;
  std::vector<std::vector<RuleAux>> aux_;  // per chain of table_, per rule
  ChainIndex chain_index_;                 // name -> index in table_.chains
  uint32_t table_line_ = 0;
};

// ---------------------------------------------------------------------------
// Tokenizer

std::vector<Token> Reader::tokenize(std::string_view line) {
  std::vector<Token> toks;
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    if (is_space(line[i])) {
      ++i;
      continue;
    }
    // A word runs to whitespace. A '"' opens a quoted part anywhere in it;
    // inside, a backslash takes the next character as is and the closing
    // '"' ends the word. Outside quotes a backslash is an ordinary character.
    Token t;
    t.col = static_cast<uint32_t>(i + 1);
    while (i < line.size() && !is_space(line[i])) {
      if (line[i] != '"') {
        t.text += line[i++];
        continue;
      }
      auto open_col = static_cast<uint32_t>(i + 1);
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '\\' && i < line.size()) {
          t.text += line[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          t.text += c;
        }
      }
      if (!closed) fail(open_col, "unterminated quoted string (expected a closing '\"')");
      break;
    }
    toks.push_back(std::move(t));
  }
  return toks;
}

// ---------------------------------------------------------------------------
// File structure

Ruleset Reader::run() {
  if (text_.find('\0') != std::string_view::npos) {
    size_t off = text_.find('\0');
    size_t line = 1 + static_cast<size_t>(std::count(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(off), '\n'));
    size_t line_start = text_.rfind('\n', off);
    size_t col = line_start == std::string_view::npos ? off + 1 : off - line_start;
    fail_at(static_cast<uint32_t>(line), static_cast<uint32_t>(col), "NUL byte in text input");
  }
  size_t pos = 0;
  while (pos <= text_.size()) {
    size_t nl = text_.find('\n', pos);
    std::string_view line = text_.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no_;
    pos = nl == std::string_view::npos ? text_.size() + 1 : nl + 1;

    size_t first = line.find_first_not_of(" \t\r\v\f");
    if (first == std::string_view::npos) continue;  // blank
    if (line[first] == '#') continue;               // comment
    auto col = static_cast<uint32_t>(first + 1);
    char c = line[first];
    if (c == '*') {
      table_line(tokenize(line));
    } else if (c == ':') {
      chain_line(line.substr(first), col);
    } else {
      auto toks = tokenize(line);
      if (toks[0].text == "COMMIT") {
        commit_line(toks);
      } else {
        command_line(std::move(toks));
      }
    }
  }
  if (in_table_) {
    fail_at(line_no_, 1,
            fmt::format("COMMIT expected before the end of the input (table {} opened at line {})",
                        table_name(table_.id), table_line_));
  }
  return std::move(ruleset_);
}

void Reader::table_line(const std::vector<Token>& toks) {
  const Token& t = toks[0];
  if (in_table_)
    fail(t.col, fmt::format("COMMIT expected before a new table (table {} opened at line {})",
                            table_name(table_.id), table_line_));
  std::string_view name = std::string_view(t.text).substr(1);
  auto id = parse_table_name(name);
  if (!id) fail(t.col + 1, fmt::format("unknown table \"{}\" (expected raw, mangle, nat, filter or security)", name));
  if (toks.size() > 1) fail(toks[1].col, fmt::format("unexpected \"{}\" after the table name", toks[1].text));
  in_table_ = true;
  table_ = Table::make(*id);
  table_.where = here(t.col);
  aux_.assign(table_.chains.size(), {});
  chain_index_.clear();
  for (size_t i = 0; i < table_.chains.size(); ++i) chain_index_[table_.chains[i].name] = static_cast<uint32_t>(i);
  table_line_ = line_no_;
}

void Reader::check_chain_name(const Token& tok) {
  const std::string& n = tok.text;
  if (n.empty()) fail(tok.col, "chain name expected");
  if (n.size() > 28) fail(tok.col, fmt::format("chain name \"{}\" is longer than 28 characters", n));
  for (const char* reserved : {"ACCEPT", "DROP", "QUEUE", "RETURN"}) {
    if (n == reserved) fail(tok.col, fmt::format("\"{}\" is a built-in target, not a chain name", n));
  }
  for (char c : n) {
    if (c == '"' || c == '\'' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      fail(tok.col, fmt::format("chain name \"{}\" contains a quote or control character", n));
  }
}

Counters Reader::parse_counters(std::string_view text, uint32_t col, bool rule) {
  // "[pkts:bytes]"
  const char* what = rule ? "rule counters" : "chain counters";
  if (text.size() < 2 || text.front() != '[' || text.back() != ']')
    fail(col, fmt::format("{} expected as [packets:bytes]", what));
  std::string_view inner = text.substr(1, text.size() - 2);
  size_t colon = inner.find(':');
  if (colon == std::string_view::npos) fail(col, fmt::format("{} expected as [packets:bytes]", what));
  auto p = parse_dec_uint(inner.substr(0, colon), UINT64_MAX);
  auto b = parse_dec_uint(inner.substr(colon + 1), UINT64_MAX);
  if (!p) fail(col + 1, fmt::format("packet counter must be a decimal number up to 2^64-1"));
  if (!b) fail(col + static_cast<uint32_t>(colon) + 2, "byte counter must be a decimal number up to 2^64-1");
  return Counters{*p, *b};
}

void Reader::set_policy(uint32_t chain, const Token& policy_tok) {
  Chain& c = table_.chains[chain];
  const std::string& p = policy_tok.text;
  if (!c.builtin()) {
    if (p == "-") return;
    fail(policy_tok.col,
         fmt::format("user chain {} cannot have a policy (expected \"-\"; only built-in chains of table {} "
                     "have policies)",
                     c.name, table_name(table_.id)));
  }
  if (p == "ACCEPT") c.policy = Policy::Accept;
  else if (p == "DROP") c.policy = Policy::Drop;
  else if (p == "-") return;  // keep the current policy
  else fail(policy_tok.col, fmt::format("bad policy \"{}\" for chain {} (expected ACCEPT or DROP)", p, c.name));
}

void Reader::chain_line(std::string_view line, uint32_t col) {
  // ":NAME POLICY [pkts:bytes]"
  if (!in_table_) fail(col, "chain declaration outside a table (expected a *table line first)");
  auto toks = tokenize(line);
  for (Token& t : toks) t.col += col - 1;
  Token name_tok{toks[0].text.substr(1), toks[0].col + 1};
  if (name_tok.text.empty()) fail(name_tok.col, "chain name expected after ':'");
  if (toks.size() < 2) fail(static_cast<uint32_t>(col + line.size()), fmt::format("policy expected after chain name {} (ACCEPT, DROP or -)", name_tok.text));
  if (toks.size() > 3) fail(toks[3].col, fmt::format("unexpected \"{}\" after the chain counters", toks[3].text));
  std::optional<Counters> counters;
  if (toks.size() == 3) counters = parse_counters(toks[2].text, toks[2].col, false);

  std::optional<Hook> hook = parse_hook_name(name_tok.text);
  if (hook && table_has_hook(table_.id, *hook)) {
    auto idx = *lookup_chain(chain_index_, name_tok.text);
    set_policy(idx, toks[1]);
    Chain& c = table_.chains[idx];
    c.where = here(col);
    if (counters) c.policy_counters = *counters;
    return;
  }
  if (toks[1].text != "-") {
    if (toks[1].text == "ACCEPT" || toks[1].text == "DROP")
      fail(toks[1].col, fmt::format("{} is not a built-in chain of table {}: a user chain takes \"-\", not a policy",
                                    name_tok.text, table_name(table_.id)));
    fail(toks[1].col, fmt::format("bad policy \"{}\" for user chain {} (expected \"-\")", toks[1].text, name_tok.text));
  }
  check_chain_name(name_tok);
  if (chain_index_.count(name_tok.text))
    fail(name_tok.col, fmt::format("chain {} is already declared in table {}", name_tok.text, table_name(table_.id)));
  Chain c;
  c.name = name_tok.text;
  c.where = here(col);
  chain_index_[c.name] = static_cast<uint32_t>(table_.chains.size());
  table_.chains.push_back(std::move(c));
  aux_.emplace_back();
}

uint32_t Reader::existing_chain(const Token& tok) {
  auto idx = lookup_chain(chain_index_, tok.text);
  if (!idx) {
    std::optional<Hook> hook = parse_hook_name(tok.text);
    if (hook)
      fail(tok.col, fmt::format("chain {} is not a built-in chain of table {} (its chains: {})", tok.text,
                                table_name(table_.id), format_hooks(table_hooks(table_.id))));
    fail(tok.col, fmt::format("chain {} is not declared in table {} (declare it with \":{} - [0:0]\" first)",
                              tok.text, table_name(table_.id), tok.text));
  }
  return *idx;
}

void Reader::commit_line(const std::vector<Token>& toks) {
  if (!in_table_) fail(toks[0].col, "COMMIT outside a table (expected a *table line first)");
  if (toks.size() > 1) fail(toks[1].col, fmt::format("unexpected \"{}\" after COMMIT", toks[1].text));
  finish_table();
  in_table_ = false;
}

void Reader::command_line(std::vector<Token> toks) {
  if (!in_table_) fail(toks[0].col, "rule outside a table (expected a *table line first)");
  size_t i = 0;
  std::optional<Counters> counters;
  // "[pkts:bytes] -A ..." (also "[pkts:bytes]-A").
  if (!toks[0].text.empty() && toks[0].text[0] == '[') {
    size_t close = toks[0].text.find(']');
    if (close == std::string::npos) fail(toks[0].col, "rule counters expected as [packets:bytes]");
    counters = parse_counters(std::string_view(toks[0].text).substr(0, close + 1), toks[0].col, true);
    if (close + 1 < toks[0].text.size()) {
      Token rest{toks[0].text.substr(close + 1), toks[0].col + static_cast<uint32_t>(close) + 1};
      toks[0] = std::move(rest);
    } else {
      i = 1;
    }
    if (i >= toks.size()) fail(toks[0].col, "-A or -I expected after the rule counters");
  }
  const Token& cmd = toks[i];
  std::string_view c = cmd.text;
  bool append = c == "-A" || c == "--append";
  bool insert = c == "-I" || c == "--insert";
  if (append || insert) {
    if (i + 1 >= toks.size()) fail(cmd.col + static_cast<uint32_t>(c.size()), fmt::format("chain name expected after {}", c));
    uint32_t chain = existing_chain(toks[i + 1]);
    size_t first = i + 2;
    size_t position = 1;  // -I: 1-based rule number
    if (insert && first < toks.size() && !toks[first].text.empty() &&
        std::isdigit(static_cast<unsigned char>(toks[first].text[0]))) {
      auto n = parse_dec_uint(toks[first].text, UINT32_MAX);
      size_t size = table_.chains[chain].rules.size();
      if (!n || *n == 0 || *n > size + 1)
        fail(toks[first].col, fmt::format("rule number for -I must be 1..{} (chain {} has {} rules)", size + 1,
                                          table_.chains[chain].name, size));
      position = *n;
      ++first;
    }
    std::vector<Rule> rules;
    RuleAux aux;
    parse_rule(toks, first, chain, counters, rules, aux);
    for (Rule& r : rules) r.where = here(cmd.col);
    auto& dest = table_.chains[chain].rules;
    auto& dest_aux = aux_[chain];
    size_t at = append ? dest.size() : position - 1;
    dest.insert(dest.begin() + static_cast<std::ptrdiff_t>(at), std::make_move_iterator(rules.begin()),
                std::make_move_iterator(rules.end()));
    dest_aux.insert(dest_aux.begin() + static_cast<std::ptrdiff_t>(at), rules.size(), aux);
    return;
  }
  if (counters) fail(cmd.col, "-A or -I expected after the rule counters");
  if (c == "-N" || c == "--new-chain") {
    if (i + 1 >= toks.size()) fail(cmd.col, "chain name expected after -N");
    if (i + 2 < toks.size()) fail(toks[i + 2].col, fmt::format("unexpected \"{}\" after the chain name", toks[i + 2].text));
    const Token& n = toks[i + 1];
    check_chain_name(n);
    if (chain_index_.count(n.text))
      fail(n.col, fmt::format("chain {} is already declared in table {}", n.text, table_name(table_.id)));
    Chain ch;
    ch.name = n.text;
    ch.where = here(cmd.col);
    chain_index_[ch.name] = static_cast<uint32_t>(table_.chains.size());
    table_.chains.push_back(std::move(ch));
    aux_.emplace_back();
    return;
  }
  if (c == "-P" || c == "--policy") {
    if (i + 2 >= toks.size()) fail(cmd.col, "chain name and policy expected after -P");
    if (i + 3 < toks.size()) fail(toks[i + 3].col, fmt::format("unexpected \"{}\" after the policy", toks[i + 3].text));
    uint32_t chain = existing_chain(toks[i + 1]);
    if (!table_.chains[chain].builtin())
      fail(toks[i + 1].col, fmt::format("user chain {} cannot have a policy", toks[i + 1].text));
    if (toks[i + 2].text == "-") fail(toks[i + 2].col, "policy expected (ACCEPT or DROP)");
    set_policy(chain, toks[i + 2]);
    return;
  }
  if (!c.empty() && c[0] == '-')
    fail(cmd.col, fmt::format("command {} is not supported here (expected -A, -I, -N or -P)", c));
  fail(cmd.col, fmt::format("unexpected \"{}\" (expected -A CHAIN ..., a :CHAIN line or COMMIT)", c));
}

// ---------------------------------------------------------------------------
// Rule parsing

class RuleParser {
 public:
  RuleParser(const Table& table, const ChainIndex& chains, uint32_t chain_index, const std::vector<Token>& toks,
             size_t first, const std::string& file, uint32_t line)
      : table_(table), chains_(chains), chain_index_(chain_index), toks_(toks), pos_(first), file_(file), line_(line) {}

  void run(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);

 private:
  SourceLocation where(uint32_t col) const {
    SourceLocation w;
    w.file = file_;
    w.line = line_;
    w.column = col;
    return w;
  }
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const { throw LoadError(where(col), msg); }

  ResolvedOpt resolve_long(const Token& tok, std::string_view name);
  std::optional<ResolvedOpt> lookup_long(std::string_view name, bool& ambiguous) const;
  void load_module(ModKind kind, uint32_t col);
  void set_target(const Token& name_tok, bool is_goto);
  std::string take_arg(const Token& opt_tok, std::optional<std::string>& inline_arg, std::string_view opt_name);

  void core_option(uint8_t id, const Token& tok, std::string_view opt_name, bool invert,
                   std::optional<std::string>& inline_arg);
  void module_option(ModKind kind, const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                     const std::vector<std::string>& args, const std::vector<uint32_t>& arg_cols);
  // One module's options (module_option() checks "only once", then calls it).
  struct ModuleOption {
    Instance& inst;
    const OptDef& def;
    const Token& tok;
    std::string_view opt_name;
    bool invert;
    const std::vector<std::string>& args;
    const std::vector<uint32_t>& cols;  // each argument's column
    const std::string& a;  // args[0], or "" when there is none
    uint32_t acol;         // its column
    const char* mname;     // the module's name
  };
  void tcp_option(const ModuleOption& o);
  void udp_option(const ModuleOption& o);
  void icmp_option(const ModuleOption& o);
  void multiport_option(const ModuleOption& o);
  void conntrack_option(const ModuleOption& o);
  void state_option(const ModuleOption& o);
  void addrtype_option(const ModuleOption& o);
  void comment_option(const ModuleOption& o);
  void mark_option(const ModuleOption& o);
  void connmark_option(const ModuleOption& o);
  void iprange_option(const ModuleOption& o);
  void string_option(const ModuleOption& o);
  void limit_option(const ModuleOption& o);
  void statistic_option(const ModuleOption& o);
  void length_option(const ModuleOption& o);
  void pkttype_option(const ModuleOption& o);
  void mac_option(const ModuleOption& o);
  // Fails when the option of `o` is given together with `other_id` of the same module.
  void option_conflict(const ModuleOption& o, uint8_t other_id, const char* other_name) const;
  void target_option(const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                     const std::vector<std::string>& args, const std::vector<uint32_t>& arg_cols);
  // One target's options (target_option() checks "only once", then calls it).
  struct TargetOption {
    const OptDef& def;
    const Token& tok;
    std::string_view opt_name;
    const std::vector<std::string>& args;
    const std::vector<uint32_t>& cols;  // each argument's column
    const std::string& a;  // args[0], or "" when there is none
    uint32_t acol;         // its column
    const char* tname;     // the target's name
  };
  // Fails when the option of `o` follows another of the same group.
  void target_exclusive(const TargetOption& o, std::initializer_list<uint8_t> group) const;
  void reject_target_option(const TargetOption& o);
  void nat_target_option(const TargetOption& o);
  void masquerade_target_option(const TargetOption& o);
  void redirect_target_option(const TargetOption& o);
  void log_target_option(const TargetOption& o);
  void mark_target_option(const TargetOption& o);
  void connmark_target_option(const TargetOption& o);
  void ct_target_option(const TargetOption& o);
  void finish(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);
  void check_modules() const;
  void check_target() const;

  // value parsers with located errors
  std::vector<Ipv4Mask> parse_address_list(const std::string& arg, uint32_t col, bool invert, const char* what);
  Ipv4Mask parse_address_mask(std::string_view s, uint32_t col, bool strict, const char* what);
  PortRange parse_l4_port_range(std::string_view s, uint32_t col, ServiceScope scope);
  PortRange parse_ct_port_range(std::string_view s, uint32_t col);
  IfaceMatch parse_iface(const std::string& arg, uint32_t col, bool invert);
  uint8_t parse_tcp_flag_list(std::string_view s, uint32_t col);
  uint32_t parse_u32(std::string_view s, uint32_t col, const char* what);
  std::pair<uint32_t, uint32_t> parse_mark_value(std::string_view s, uint32_t col, std::string_view opt);
  NatRange parse_nat_range(std::string_view s, uint32_t col, bool allow_base);
  PortRange parse_nat_ports(std::string_view s, uint32_t col);
  uint16_t parse_nat_port(std::string_view s, uint32_t col);

  Instance& latest_instance(ModKind kind);
  template <typename T>
  T& match_of(Instance& inst) {
    return std::get<T>(rule_.matches[inst.match_index]);
  }

  const Table& table_;
  const ChainIndex& chains_;
  uint32_t chain_index_;
  const std::vector<Token>& toks_;
  size_t pos_;
  const std::string& file_;
  uint32_t line_;

  Rule rule_;
  std::vector<Ipv4Mask> srcs_{Ipv4Mask{}}, dsts_{Ipv4Mask{}};
  uint32_t core_seen_ = 0;  // bit per CoreOpt
  uint32_t proto_col_ = 0;
  bool proto_given_ = false;
  bool proto_used_ = false;  // the implicit protocol module was loaded
  std::vector<Instance> instances_;
  std::vector<Provider> providers_;  // front = merged last (getopt sees it first)

  std::optional<TgtKind> tgt_;
  bool has_target_ = false;  // -j or -g given
  uint32_t tgt_col_ = 0;
  uint32_t tgt_seen_ = 0;
};

Instance& RuleParser::latest_instance(ModKind kind) {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    if (it->kind == kind) return *it;
  }
  // Providers exist only for loaded kinds.
  throw LoadError(where(0), "internal error: option of a module that is not loaded");
}

std::optional<ResolvedOpt> RuleParser::lookup_long(std::string_view name, bool& ambiguous) const {
  ambiguous = false;
  // Exact: core first, then providers in getopt table order.
  for (const OptDef& d : kCoreOpts) {
    if (name == d.name) return ResolvedOpt{ResolvedOpt::Owner::Core, 0, &d, d.id, d.nargs, d.invertible};
  }
  auto provider_table = [](const Provider& p) {
    return p.is_target ? tgt_def(static_cast<TgtKind>(p.kind)).opts : mod_def(static_cast<ModKind>(p.kind)).opts;
  };
  for (const Provider& p : providers_) {
    OptTable t = provider_table(p);
    for (size_t i = 0; i < t.count; ++i) {
      if (name == t.defs[i].name) {
        return ResolvedOpt{p.is_target ? ResolvedOpt::Owner::Target : ResolvedOpt::Owner::Module, p.kind,
                           &t.defs[i], 0, t.defs[i].nargs, t.defs[i].invertible};
      }
    }
  }
  // Unambiguous prefix (aliases of the same option are one candidate).
  std::optional<ResolvedOpt> found;
  auto consider = [&](const ResolvedOpt& r) {
    if (!found) {
      found = r;
      return;
    }
    bool same = found->owner == r.owner && found->kind == r.kind &&
                (r.owner == ResolvedOpt::Owner::Core ? found->core_id == r.core_id : found->def->id == r.def->id);
    if (!same) ambiguous = true;
  };
  for (const OptDef& d : kCoreOpts) {
    if (std::string_view(d.name).substr(0, name.size()) == name && name.size() < std::strlen(d.name))
      consider(ResolvedOpt{ResolvedOpt::Owner::Core, 0, &d, d.id, d.nargs, d.invertible});
  }
  for (const Provider& p : providers_) {
    OptTable t = provider_table(p);
    for (size_t i = 0; i < t.count; ++i) {
      std::string_view n = t.defs[i].name;
      if (n.size() > name.size() && n.substr(0, name.size()) == name)
        consider(ResolvedOpt{p.is_target ? ResolvedOpt::Owner::Target : ResolvedOpt::Owner::Module, p.kind,
                             &t.defs[i], 0, t.defs[i].nargs, t.defs[i].invertible});
    }
  }
  if (ambiguous) return std::nullopt;
  return found;
}

ResolvedOpt RuleParser::resolve_long(const Token& tok, std::string_view name) {
  bool ambiguous = false;
  if (auto r = lookup_long(name, ambiguous)) return *r;
  // Unknown to everything loaded: load the protocol's module once, like
  // iptables does for `-p tcp --dport 80`, and retry.
  if (proto_given_ && !rule_.protocol_invert) {
    std::optional<ModKind> proto_mod;
    if (rule_.protocol == kProtoTcp) proto_mod = ModKind::Tcp;
    if (rule_.protocol == kProtoUdp) proto_mod = ModKind::Udp;
    if (rule_.protocol == kProtoIcmp) proto_mod = ModKind::Icmp;
    bool loaded = proto_mod && std::any_of(instances_.begin(), instances_.end(),
                                           [&](const Instance& in) { return in.kind == *proto_mod; });
    if (proto_mod && (!loaded || !proto_used_)) {
      load_module(*proto_mod, tok.col);
      proto_used_ = true;
      if (auto r = lookup_long(name, ambiguous)) return *r;
    }
  }
  if (ambiguous) fail(tok.col, fmt::format("option \"--{}\" is ambiguous (abbreviates several options)", name));
  fail(tok.col, fmt::format("unknown option \"--{}\"", name));
}

void RuleParser::load_module(ModKind kind, uint32_t col) {
  bool first = std::none_of(instances_.begin(), instances_.end(), [&](const Instance& in) { return in.kind == kind; });
  Match m;
  switch (kind) {
    case ModKind::Tcp: m = TcpMatch{}; break;
    case ModKind::Udp: m = UdpMatch{}; break;
    case ModKind::Icmp: m = IcmpMatch{}; break;
    case ModKind::Multiport: m = MultiportMatch{}; break;
    case ModKind::Conntrack: m = ConntrackMatch{}; break;
    case ModKind::State: m = StateMatch{}; break;
    case ModKind::Addrtype: m = AddrtypeMatch{}; break;
    case ModKind::Comment: m = CommentMatch{}; break;
    case ModKind::Mark: m = MarkMatch{}; break;
    case ModKind::Connmark: m = ConnmarkMatch{}; break;
    case ModKind::Iprange: m = IprangeMatch{}; break;
    case ModKind::String: m = StringMatch{}; break;
    case ModKind::Limit: m = LimitMatch{}; break;
    case ModKind::Statistic: m = StatisticMatch{}; break;
    case ModKind::Length: m = LengthMatch{}; break;
    case ModKind::Pkttype: m = PkttypeMatch{}; break;
    case ModKind::Mac: m = MacMatch{}; break;
  }
  rule_.matches.push_back(std::move(m));
  instances_.push_back(Instance{kind, rule_.matches.size() - 1, 0, col});
  if (first) providers_.insert(providers_.begin(), Provider{false, static_cast<uint8_t>(kind)});
}

void RuleParser::set_target(const Token& name_tok, bool is_goto) {
  const std::string& n = name_tok.text;
  has_target_ = true;
  tgt_col_ = name_tok.col;
  if (n.empty()) fail(name_tok.col, is_goto ? "chain name expected after -g" : "target name expected after -j");
  if (is_goto) {
    auto idx = lookup_chain(chains_, n);
    if (!idx || table_.chains[*idx].builtin())
      fail(name_tok.col, fmt::format("goto needs a user chain of table {}; \"{}\" is not one", table_name(table_.id), n));
    rule_.target = GotoTarget{n, *idx};
    return;
  }
  if (n == "ACCEPT") { rule_.target = AcceptTarget{}; return; }
  if (n == "DROP") { rule_.target = DropTarget{}; return; }
  if (n == "RETURN") { rule_.target = ReturnTarget{}; return; }
  // A declared chain wins over a target of the same name, as in iptables.
  if (auto idx = lookup_chain(chains_, n)) {
    if (table_.chains[*idx].builtin())
      fail(name_tok.col, fmt::format("cannot jump to built-in chain {}", n));
    rule_.target = JumpTarget{n, *idx};
    return;
  }
  for (const TgtDef& d : kTargets) {
    if (n != d.name) continue;
    tgt_ = d.kind;
    switch (d.kind) {
      case TgtKind::Reject: rule_.target = RejectTarget{}; break;
      case TgtKind::Dnat: rule_.target = DnatTarget{}; break;
      case TgtKind::Snat: rule_.target = SnatTarget{}; break;
      case TgtKind::Masquerade: rule_.target = MasqueradeTarget{}; break;
      case TgtKind::Redirect: rule_.target = RedirectTarget{}; break;
      case TgtKind::Log: rule_.target = LogTarget{}; break;
      case TgtKind::Mark: rule_.target = MarkTarget{}; break;
      case TgtKind::Connmark: rule_.target = ConnmarkTarget{}; break;
      case TgtKind::Notrack: rule_.target = NotrackTarget{}; break;
      case TgtKind::Ct: rule_.target = CtTarget{}; break;
      case TgtKind::Trace: rule_.target = TraceTarget{}; break;
    }
    TargetScope scope = target_scope(rule_.target);
    if (scope.table && *scope.table != table_.id)
      fail(name_tok.col, fmt::format("target {} is only valid in table {} (this is table {})", n,
                                     table_name(*scope.table), table_name(table_.id)));
    if (d.opts.count > 0) providers_.insert(providers_.begin(), Provider{true, static_cast<uint8_t>(d.kind)});
    return;
  }
  for (const char* u : kUnsupportedTargets) {
    if (n == u) fail(name_tok.col, fmt::format("target \"{}\" is not supported by this model", n));
  }
  fail(name_tok.col, fmt::format("unknown target \"{}\" (not a supported target, nor a chain declared in table {})",
                                 n, table_name(table_.id)));
}

std::string RuleParser::take_arg(const Token& opt_tok, std::optional<std::string>& inline_arg,
                                 std::string_view opt_name) {
  if (inline_arg) {
    std::string a = std::move(*inline_arg);
    inline_arg.reset();
    return a;
  }
  if (pos_ >= toks_.size())
    fail(opt_tok.col + static_cast<uint32_t>(opt_tok.text.size()),
         fmt::format("option \"{}\" requires an argument", opt_name));
  return toks_[pos_++].text;
}

void RuleParser::run(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  bool invert = false;
  uint32_t invert_col = 0;
  while (pos_ < toks_.size()) {
    const Token& tok = toks_[pos_++];
    const std::string& t = tok.text;
    if (t == "!") {
      if (invert) fail(tok.col, "multiple consecutive ! not allowed");
      invert = true;
      invert_col = tok.col;
      continue;
    }
    if (t.size() < 2 || t[0] != '-') {
      fail(tok.col, fmt::format("unexpected argument \"{}\" (expected an option; quote arguments that hold spaces)", t));
    }
    std::string_view opt_name = t;
    std::optional<std::string> inline_arg;
    ResolvedOpt r{};
    if (t[1] != '-') {
      if (t.size() != 2) fail(tok.col, fmt::format("unknown option \"{}\" (short options cannot be combined or "
                                                   "take attached arguments here)", t));
      const ShortOpt* s = nullptr;
      for (const ShortOpt& so : kCoreShort) {
        if (so.c == t[1]) s = &so;
      }
      if (!s) {
        if (std::strchr("ADCIRLSFZNXEP", t[1]))
          fail(tok.col, fmt::format("a second command \"{}\" in one rule", t));
        fail(tok.col, fmt::format("unknown option \"{}\"", t));
      }
      r = ResolvedOpt{ResolvedOpt::Owner::Core, 0, nullptr, s->id, s->nargs, s->invertible};
    } else {
      std::string_view name = std::string_view(t).substr(2);
      size_t eq = name.find('=');
      if (eq != std::string_view::npos) {
        inline_arg = std::string(name.substr(eq + 1));
        name = name.substr(0, eq);
        opt_name = std::string_view(t).substr(0, eq + 2);
      }
      if (name.empty()) fail(tok.col, "option name expected after \"--\"");
      r = resolve_long(tok, name);
      if (inline_arg && r.nargs == 0) fail(tok.col, fmt::format("option \"{}\" takes no argument", opt_name));
    }
    if (invert && !r.invertible) {
      if (r.owner == ResolvedOpt::Owner::Core && (r.core_id == kCoreJump || r.core_id == kCoreGoto))
        fail(invert_col, fmt::format("cannot have ! before {}", opt_name));
      if (r.owner == ResolvedOpt::Owner::Core && r.core_id == kCoreMatch)
        fail(invert_col, "unexpected ! before -m (put it before the module's option)");
      fail(invert_col, fmt::format("option \"{}\" cannot be inverted", opt_name));
    }
    if (r.owner == ResolvedOpt::Owner::Core) {
      core_option(r.core_id, tok, opt_name, invert, inline_arg);
    } else {
      std::vector<std::string> args;
      std::vector<uint32_t> cols;
      for (unsigned a = 0; a < r.nargs; ++a) {
        uint32_t c = inline_arg ? tok.col + static_cast<uint32_t>(opt_name.size()) + 1
                                : (pos_ < toks_.size() ? toks_[pos_].col : 0);
        args.push_back(take_arg(tok, inline_arg, opt_name));
        cols.push_back(c);
      }
      try {
        if (r.owner == ResolvedOpt::Owner::Module)
          module_option(static_cast<ModKind>(r.kind), *r.def, tok, opt_name, invert, args, cols);
        else
          target_option(*r.def, tok, opt_name, invert, args, cols);
      } catch (const LoadError& e) {
        // "!" is a valid argument (a comment, a pattern); when it is not, it
        // is most likely the old `--opt ! value` form.
        if (std::find(args.begin(), args.end(), "!") == args.end()) throw;
        throw LoadError(e.where(), e.message() + fmt::format(" (\"!\" goes before the option: ! {} VALUE)", opt_name));
      }
    }
    invert = false;
  }
  if (invert) fail(invert_col, "nothing appropriate following ! (expected an option)");
  finish(counters, out, aux);
}

void RuleParser::core_option(uint8_t id, const Token& tok, std::string_view opt_name, bool invert,
                             std::optional<std::string>& inline_arg) {
  auto once = [&](uint32_t bit, const char* shown) {
    if (core_seen_ & (1U << bit)) fail(tok.col, fmt::format("multiple {} options not allowed", shown));
    core_seen_ |= 1U << bit;
  };
  switch (id) {
    case kCoreSource:
    case kCoreDestination: {
      once(id, id == kCoreSource ? "-s" : "-d");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      auto list = parse_address_list(arg, col, invert, id == kCoreSource ? "source" : "destination");
      if (id == kCoreSource) {
        srcs_ = std::move(list);
        rule_.src_invert = invert;
      } else {
        dsts_ = std::move(list);
        rule_.dst_invert = invert;
      }
      return;
    }
    case kCoreProtocol: {
      once(id, "-p");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      auto p = parse_protocol(arg);
      if (!p) fail(col, fmt::format("unknown protocol \"{}\" (expected a name such as tcp, or a number 0-255)", arg));
      if (*p == 0 && invert) fail(col, "! -p all would never match (protocol 0 means any protocol)");
      rule_.protocol = *p;
      rule_.protocol_invert = invert;
      proto_given_ = true;
      proto_col_ = tok.col;
      return;
    }
    case kCoreInIface:
    case kCoreOutIface: {
      bool in = id == kCoreInIface;
      once(id, in ? "-i" : "-o");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      const Chain& c = table_.chains[chain_index_];
      if (c.hook) {
        bool bad = in ? (*c.hook == Hook::Output || *c.hook == Hook::Postrouting)
                      : (*c.hook == Hook::Input || *c.hook == Hook::Prerouting);
        if (bad) fail(tok.col, fmt::format("can't use {} with {} (no {} interface there)", in ? "-i" : "-o",
                                          c.name, in ? "input" : "output"));
      }
      (in ? rule_.in_iface : rule_.out_iface) = parse_iface(arg, col, invert);
      return;
    }
    case kCoreFragment:
      once(id, "-f");
      rule_.fragment = true;
      rule_.fragment_invert = invert;
      return;
    case kCoreJump:
    case kCoreGoto: {
      if (has_target_) fail(tok.col, "multiple -j/-g options not allowed");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      set_target(Token{arg, col}, id == kCoreGoto);
      return;
    }
    case kCoreMatch: {
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      for (const ModDef& d : kModules) {
        if (arg == d.name) {
          load_module(d.kind, col);
          return;
        }
      }
      for (const char* u : kUnsupportedModules) {
        if (arg == u) fail(col, fmt::format("match module \"{}\" is not supported by this model", arg));
      }
      fail(col, fmt::format("unknown match module \"{}\"", arg));
    }
    case kCoreSetCounters: {
      once(id, "-c");
      uint32_t c1 = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string p = take_arg(tok, inline_arg, opt_name);
      uint32_t c2 = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string b = take_arg(tok, inline_arg, opt_name);
      auto pv = parse_dec_uint(p, UINT64_MAX);
      if (!pv) fail(c1, "-c packet counter must be a decimal number");
      auto bv = parse_dec_uint(b, UINT64_MAX);
      if (!bv) fail(c2, "-c byte counter must be a decimal number");
      rule_.counters = Counters{*pv, *bv};
      return;
    }
    case kCoreTable:
      fail(tok.col, "-t is not allowed in a restore file (the *table line selects the table)");
    case kCoreCommand:
      fail(tok.col, fmt::format("a second command \"{}\" in one rule", opt_name));
    default:
      fail(tok.col, fmt::format("option \"{}\" is not allowed in a rule", opt_name));
  }
}

// --- value parsers

Ipv4Mask RuleParser::parse_address_mask(std::string_view s, uint32_t col, bool strict, const char* what) {
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

std::vector<Ipv4Mask> RuleParser::parse_address_list(const std::string& arg, uint32_t col, bool invert,
                                                    const char* what) {
  std::vector<Ipv4Mask> out;
  uint32_t c = col;
  for (std::string_view part : split(arg, ',')) {
    Ipv4Mask m = parse_address_mask(part, c, false, what);
    m.addr &= m.mask;
    out.push_back(m);
    c += static_cast<uint32_t>(part.size()) + 1;
  }
  if (out.size() > 1 && invert) fail(col, "! not allowed with multiple source or destination addresses");
  return out;
}

IfaceMatch RuleParser::parse_iface(const std::string& arg, uint32_t col, bool invert) {
  IfaceMatch m;
  m.invert = invert;
  if (arg.size() > 15) fail(col, fmt::format("interface name \"{}\" is longer than 15 characters", arg));
  for (char ch : arg) {
    if (ch == ' ' || ch == '\t' || ch == '"' || ch == '\'' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
      fail(col, fmt::format("interface name \"{}\" contains whitespace, a quote or a backslash", arg));
  }
  m.name = arg;
  if (!m.name.empty() && m.name.back() == '+') {
    m.wildcard = true;
    m.name.pop_back();
  }
  return m;
}

PortRange RuleParser::parse_l4_port_range(std::string_view s, uint32_t col, ServiceScope scope) {
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

PortRange RuleParser::parse_ct_port_range(std::string_view s, uint32_t col) {
  // Decimal (an optional '+') or service name; "a", "a:b", ":b", "a:"; the
  // kernel takes lo > hi. iptables reads the number into a C int, refuses it
  // when that int is negative and keeps the low 16 bits (70000 is port
  // 4464); we do the same.
  size_t colon = s.find(':');
  auto one = [&](std::string_view p, uint32_t c, uint16_t dflt) -> uint16_t {
    if (p.empty()) return dflt;
    std::string_view digits = p[0] == '+' ? p.substr(1) : p;
    auto v = parse_dec_uint(digits, UINT64_MAX);
    if (v && (*v & 0xffffffffU) < 0x80000000U) return static_cast<uint16_t>(*v & 0xffff);
    std::optional<uint16_t> named;
    if (!std::isdigit(static_cast<unsigned char>(p[0]))) named = lookup_service(p, ServiceScope::Any);
    if (!named) fail(c, fmt::format("bad port \"{}\" (expected a decimal number or a known service name)", p));
    return *named;
  };
  if (colon == std::string_view::npos) {
    if (s.empty()) fail(col, "port expected");
    uint16_t p = one(s, col, 0);
    return PortRange{p, p};
  }
  return PortRange{one(s.substr(0, colon), col, 0), one(s.substr(colon + 1), col + static_cast<uint32_t>(colon) + 1, 65535)};
}

uint8_t RuleParser::parse_tcp_flag_list(std::string_view s, uint32_t col) {
  uint8_t bits = 0;
  uint32_t c = col;
  for (std::string_view f : split(s, ',')) {
    bool ok = false;
    for (const TcpFlagName& n : kTcpFlagNames) {
      if (iequals(f, n.name)) {
        bits = static_cast<uint8_t>(bits | n.bits);
        ok = true;
      }
    }
    if (!ok) fail(c, fmt::format("unknown TCP flag \"{}\" (expected FIN, SYN, RST, PSH, ACK, URG, ALL or NONE)", f));
    c += static_cast<uint32_t>(f.size()) + 1;
  }
  return bits;
}

uint32_t RuleParser::parse_u32(std::string_view s, uint32_t col, const char* what) {
  auto v = parse_c_uint(s, UINT32_MAX);
  if (!v) fail(col, fmt::format("bad {} \"{}\" (expected a number 0-4294967295)", what, s));
  return static_cast<uint32_t>(*v);
}

std::pair<uint32_t, uint32_t> RuleParser::parse_mark_value(std::string_view s, uint32_t col, std::string_view opt) {
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

uint16_t RuleParser::parse_nat_port(std::string_view s, uint32_t col) {
  auto v = parse_port(s, ServiceScope::Any);
  if (!v) fail(col, fmt::format("bad port \"{}\" (expected a number 0-65535 or a known service name)", s));
  return *v;
}

PortRange RuleParser::parse_nat_ports(std::string_view s, uint32_t col) {
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

NatRange RuleParser::parse_nat_range(std::string_view s, uint32_t col, bool allow_base) {
  // [IP[-IP]][:PORT[-PORT[/BASE]]]
  NatRange r;
  size_t colon = s.find(':');
  std::string_view addr = s.substr(0, colon);
  if (colon == std::string_view::npos || colon > 0) {
    size_t dash = addr.find('-');
    auto lo = parse_ipv4(addr.substr(0, dash));
    if (!lo) fail(col, fmt::format("bad address \"{}\" (expected a.b.c.d or a.b.c.d-a.b.c.d)", addr));
    uint32_t hi = *lo;
    if (dash != std::string_view::npos) {
      auto h = parse_ipv4(addr.substr(dash + 1));
      if (!h) fail(col + static_cast<uint32_t>(dash) + 1, fmt::format("bad address \"{}\" (expected a.b.c.d)", addr.substr(dash + 1)));
      hi = *h;
    }
    r.has_addr = true;
    r.addr_lo = *lo;
    r.addr_hi = hi;
  }
  if (colon != std::string_view::npos) {
    std::string_view ports = s.substr(colon + 1);
    auto pcol = col + static_cast<uint32_t>(colon) + 1;
    size_t slash = ports.find('/');
    std::string_view range = ports.substr(0, slash);
    if (slash != std::string_view::npos) {
      if (!allow_base) fail(pcol + static_cast<uint32_t>(slash), "a port offset (/BASE) is only valid for DNAT");
      if (range.find('-') == std::string_view::npos)
        fail(pcol + static_cast<uint32_t>(slash), "a port offset (/BASE) needs a port range LO-HI before it");
      auto base = parse_nat_port(ports.substr(slash + 1), pcol + static_cast<uint32_t>(slash) + 1);
      if (base == 0) fail(pcol + static_cast<uint32_t>(slash) + 1, "port offset base must be 1-65535");
      r.has_base = true;
      r.base = base;
    }
    PortRange pr = parse_nat_ports(range, pcol);
    r.has_ports = true;
    r.port_lo = pr.lo;
    r.port_hi = pr.hi;
  }
  return r;
}

// --- module options

void RuleParser::option_conflict(const ModuleOption& o, uint8_t other_id, const char* other_name) const {
  if (o.inst.seen & (1U << other_id)) {
    fail(o.tok.col,
         fmt::format("{}: option \"{}\" cannot be used together with \"{}\"", o.mname, o.opt_name, other_name));
  }
}

void RuleParser::module_option(ModKind kind, const OptDef& def, const Token& tok, std::string_view opt_name,
                               bool invert, const std::vector<std::string>& args,
                               const std::vector<uint32_t>& cols) {
  Instance& inst = latest_instance(kind);
  const char* mname = mod_def(kind).name;
  if (inst.seen & (1U << def.id)) fail(tok.col, fmt::format("{}: option \"{}\" can only be used once", mname, opt_name));
  const std::string& a = args.empty() ? std::string() : args[0];
  uint32_t acol = cols.empty() ? tok.col : cols[0];

  const ModuleOption o{inst, def, tok, opt_name, invert, args, cols, a, acol, mname};
  switch (kind) {
    case ModKind::Tcp: tcp_option(o); break;
    case ModKind::Udp: udp_option(o); break;
    case ModKind::Icmp: icmp_option(o); break;
    case ModKind::Multiport: multiport_option(o); break;
    case ModKind::Conntrack: conntrack_option(o); break;
    case ModKind::State: state_option(o); break;
    case ModKind::Addrtype: addrtype_option(o); break;
    case ModKind::Comment: comment_option(o); break;
    case ModKind::Mark: mark_option(o); break;
    case ModKind::Connmark: connmark_option(o); break;
    case ModKind::Iprange: iprange_option(o); break;
    case ModKind::String: string_option(o); break;
    case ModKind::Limit: limit_option(o); break;
    case ModKind::Statistic: statistic_option(o); break;
    case ModKind::Length: length_option(o); break;
    case ModKind::Pkttype: pkttype_option(o); break;
    case ModKind::Mac: mac_option(o); break;
  }
  inst.seen |= 1U << def.id;
}

void RuleParser::tcp_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto conflict = [&](uint8_t other_id, const char* other_name) { option_conflict(o, other_id, other_name); };
  auto& m = match_of<TcpMatch>(inst);
  switch (def.id) {
    case kTcpOptSport: m.sport = parse_l4_port_range(a, acol, ServiceScope::Tcp); m.sport_invert = invert; break;
    case kTcpOptDport: m.dport = parse_l4_port_range(a, acol, ServiceScope::Tcp); m.dport_invert = invert; break;
    case kTcpOptSyn:
      conflict(kTcpOptFlags, "--tcp-flags");
      m.flags_mask = tcp_flag::kFin | tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kAck;
      m.flags_cmp = tcp_flag::kSyn;
      m.flags_invert = invert;
      break;
    case kTcpOptFlags:
      conflict(kTcpOptSyn, "--syn");
      m.flags_mask = parse_tcp_flag_list(a, acol);
      m.flags_cmp = parse_tcp_flag_list(args[1], cols[1]);
      m.flags_invert = invert;
      break;
    case kTcpOptOption: {
      auto v = parse_c_uint(a, 255);
      if (!v || *v == 0) fail(acol, fmt::format("bad TCP option \"{}\" (expected an option kind 1-255)", a));
      m.option = static_cast<uint8_t>(*v);
      m.option_invert = invert;
      break;
    }
  }
}

void RuleParser::udp_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<UdpMatch>(inst);
  if (def.id == kUdpSport) {
    m.sport = parse_l4_port_range(a, acol, ServiceScope::Any);
    m.sport_invert = invert;
  } else {
    m.dport = parse_l4_port_range(a, acol, ServiceScope::Any);
    m.dport_invert = invert;
  }
}

void RuleParser::icmp_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<IcmpMatch>(inst);
  m.invert = invert;
  if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) {
    size_t slash = a.find('/');
    auto t = parse_c_uint(std::string_view(a).substr(0, slash), 255);
    if (!t) fail(acol, fmt::format("bad ICMP type \"{}\" (expected a number 0-255 or a name)", a));
    m.type = static_cast<uint8_t>(*t);
    m.code_lo = 0;
    m.code_hi = 0xff;
    if (slash != std::string::npos) {
      auto c = parse_c_uint(std::string_view(a).substr(slash + 1), 255);
      if (!c) fail(acol + static_cast<uint32_t>(slash) + 1, fmt::format("bad ICMP code in \"{}\" (expected TYPE/CODE, numbers 0-255)", a));
      m.code_lo = m.code_hi = static_cast<uint8_t>(*c);
    }
    return;
  }
  const IcmpName* found = nullptr;
  bool ambiguous = false;
  for (const IcmpName& n : kIcmpNames) {
    if (!a.empty() && iprefix(a, n.name)) {
      if (iequals(a, n.name)) {
        found = &n;
        ambiguous = false;
        break;
      }
      if (found && (found->type != n.type || found->code_lo != n.code_lo || found->code_hi != n.code_hi))
        ambiguous = true;
      if (!found) found = &n;
    }
  }
  if (ambiguous) fail(acol, fmt::format("ambiguous ICMP type \"{}\"", a));
  if (!found) fail(acol, fmt::format("unknown ICMP type \"{}\" (expected a name, TYPE or TYPE/CODE)", a));
  m.type = found->type;
  m.code_lo = found->code_lo;
  m.code_hi = found->code_hi;
}

void RuleParser::multiport_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<MultiportMatch>(inst);
  for (uint8_t other : {kMpSource, kMpDest, kMpEither}) {
    if (other != def.id && (inst.seen & (1U << other)))
      fail(tok.col, fmt::format("multiport: only one of --sports, --dports and --ports may be given"));
  }
  m.dir = def.id == kMpSource ? MultiportMatch::Dir::Source
          : def.id == kMpDest ? MultiportMatch::Dir::Destination
                              : MultiportMatch::Dir::Either;
  m.invert = invert;
  m.ports.clear();
  unsigned slots = 0;
  uint32_t c = acol;
  ServiceScope scope = rule_.protocol == kProtoTcp   ? ServiceScope::Tcp
                       : rule_.protocol == kProtoUdp ? ServiceScope::Udp
                                                     : ServiceScope::None;
  for (std::string_view item : split(a, ',')) {
    size_t colon = item.find(':');
    auto one = [&](std::string_view p, uint32_t pc) -> uint16_t {
      auto v = parse_port(p, scope);
      if (!v) fail(pc, fmt::format("bad port \"{}\" (expected a number 0-65535 or a known service name)", p));
      return *v;
    };
    PortRange r;
    if (colon == std::string_view::npos) {
      r.lo = r.hi = one(item, c);
      slots += 1;
    } else {
      r.lo = one(item.substr(0, colon), c);
      r.hi = one(item.substr(colon + 1), c + static_cast<uint32_t>(colon) + 1);
      if (r.lo >= r.hi) fail(c, fmt::format("bad port range \"{}\" (multiport needs LO < HI)", item));
      slots += 2;
    }
    if (slots > MultiportMatch::kMaxSlots)
      fail(c, "too many ports for multiport (at most 15; a range counts as two)");
    m.ports.push_back(r);
    c += static_cast<uint32_t>(item.size()) + 1;
  }
}

void RuleParser::conntrack_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<ConntrackMatch>(inst);
  auto bit = static_cast<uint16_t>(1U << def.id);
  m.present = static_cast<uint16_t>(m.present | bit);
  if (invert) m.invert = static_cast<uint16_t>(m.invert | bit);
  switch (def.id) {
    case 0: {
      uint32_t c = acol;
      for (std::string_view s : split(a, ',')) {
        auto st = parse_ct_state(s);
        if (!st) fail(c, fmt::format("bad conntrack state \"{}\" (expected INVALID, ESTABLISHED, NEW, RELATED, "
                                     "UNTRACKED, SNAT or DNAT)", s));
        m.states = static_cast<uint8_t>(m.states | *st);
        c += static_cast<uint32_t>(s.size()) + 1;
      }
      break;
    }
    case 1: {
      auto p = parse_protocol(a);
      if (!p) fail(acol, fmt::format("unknown protocol \"{}\" (expected a name such as tcp, or a number 0-255)", a));
      m.proto = *p;
      break;
    }
    case 2: case 3: case 4: case 5: {
      Ipv4Mask v = parse_address_mask(a, acol, true, "conntrack");
      (def.id == 2 ? m.orig_src : def.id == 3 ? m.orig_dst : def.id == 4 ? m.repl_src : m.repl_dst) = v;
      break;
    }
    case 6: case 7: case 8: case 9: {
      PortRange r = parse_ct_port_range(a, acol);
      (def.id == 6 ? m.orig_src_port : def.id == 7 ? m.orig_dst_port : def.id == 8 ? m.repl_src_port
                                                                                     : m.repl_dst_port) = r;
      break;
    }
    case 10: {
      uint32_t c = acol;
      for (std::string_view s : split(a, ',')) {
        auto st = parse_ct_status(s);
        if (!st) fail(c, fmt::format("bad conntrack status \"{}\" (expected NONE, EXPECTED, SEEN_REPLY, ASSURED "
                                     "or CONFIRMED)", s));
        m.status = static_cast<uint8_t>(m.status | *st);
        c += static_cast<uint32_t>(s.size()) + 1;
      }
      break;
    }
    case 11: {
      size_t colon = a.find(':');
      std::string_view lo = std::string_view(a).substr(0, colon);
      m.expire_lo = lo.empty() && colon != std::string::npos ? 0 : parse_u32(lo, acol, "--ctexpire time");
      if (colon == std::string::npos) {
        m.expire_hi = m.expire_lo;
      } else {
        std::string_view hi = std::string_view(a).substr(colon + 1);
        m.expire_hi = hi.empty() ? UINT32_MAX
                                 : parse_u32(hi, acol + static_cast<uint32_t>(colon) + 1, "--ctexpire time");
      }
      break;
    }
    case 12:
      if (iequals(a, "ORIGINAL")) m.dir = ConntrackMatch::Dir::Original;
      else if (iequals(a, "REPLY")) m.dir = ConntrackMatch::Dir::Reply;
      else fail(acol, fmt::format("bad --ctdir \"{}\" (expected ORIGINAL or REPLY)", a));
      break;
  }
}

void RuleParser::state_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<StateMatch>(inst);
  m.invert = invert;
  uint32_t c = acol;
  for (std::string_view s : split(a, ',')) {
    auto st = parse_ct_state(s);
    if (!st || *st == kCtSnat || *st == kCtDnat)
      fail(c, fmt::format("bad state \"{}\" (expected INVALID, ESTABLISHED, NEW, RELATED or UNTRACKED)", s));
    m.states = static_cast<uint8_t>(m.states | *st);
    c += static_cast<uint32_t>(s.size()) + 1;
  }
}

void RuleParser::addrtype_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto conflict = [&](uint8_t other_id, const char* other_name) { option_conflict(o, other_id, other_name); };
  auto& m = match_of<AddrtypeMatch>(inst);
  if (def.id == kAtIfaceIn) {
    conflict(kAtIfaceOut, "--limit-iface-out");
    m.limit_iface_in = true;
  } else if (def.id == kAtIfaceOut) {
    conflict(kAtIfaceIn, "--limit-iface-in");
    m.limit_iface_out = true;
  } else {
    uint16_t types = 0;
    uint32_t c = acol;
    for (std::string_view s : split(a, ',')) {
      auto t = parse_addr_type(s);
      if (!t) fail(c, fmt::format("bad address type \"{}\" (expected UNSPEC, UNICAST, LOCAL, BROADCAST, ANYCAST, "
                                  "MULTICAST, BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT or XRESOLVE)", s));
      types = static_cast<uint16_t>(types | addr_type_bit(*t));
      c += static_cast<uint32_t>(s.size()) + 1;
    }
    if (def.id == kAtSrc) {
      m.src_types = types;
      m.src_invert = invert;
    } else {
      m.dst_types = types;
      m.dst_invert = invert;
    }
  }
}

void RuleParser::comment_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<CommentMatch>(inst);
  // The kernel keeps 255 bytes and drops the rest, as iptables does.
  m.text = a.substr(0, 255);
}

void RuleParser::mark_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<MarkMatch>(inst);
  std::tie(m.value, m.mask) = parse_mark_value(a, acol, opt_name);
  m.invert = invert;
}

void RuleParser::connmark_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<ConnmarkMatch>(inst);
  std::tie(m.value, m.mask) = parse_mark_value(a, acol, opt_name);
  m.invert = invert;
}

void RuleParser::iprange_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<IprangeMatch>(inst);
  size_t dash = a.find('-');
  std::string_view lo_s = std::string_view(a).substr(0, dash);
  auto lo = parse_ipv4_loose(lo_s);
  if (!lo || lo_s.find('/') != std::string_view::npos)
    fail(acol, fmt::format("bad address \"{}\" in {} (expected a.b.c.d[-a.b.c.d])", lo_s, opt_name));
  uint32_t hi = *lo;
  if (dash != std::string::npos) {
    std::string_view hi_s = std::string_view(a).substr(dash + 1);
    auto h = parse_ipv4_loose(hi_s);
    if (!h) fail(acol + static_cast<uint32_t>(dash) + 1,
                 fmt::format("bad address \"{}\" in {} (expected a.b.c.d)", hi_s, opt_name));
    hi = *h;
  }
  if (def.id == kIprSrc) {
    m.has_src = true;
    m.src_invert = invert;
    m.src_lo = *lo;
    m.src_hi = hi;
  } else {
    m.has_dst = true;
    m.dst_invert = invert;
    m.dst_lo = *lo;
    m.dst_hi = hi;
  }
}

void RuleParser::string_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto conflict = [&](uint8_t other_id, const char* other_name) { option_conflict(o, other_id, other_name); };
  auto& m = match_of<StringMatch>(inst);
  switch (def.id) {
    case kStrFrom:
    case kStrTo: {
      auto v = parse_c_uint(a, 65535);
      if (!v) fail(acol, fmt::format("bad offset \"{}\" for {} (expected 0-65535)", a, opt_name));
      (def.id == kStrFrom ? m.from : m.to) = static_cast<uint16_t>(*v);
      break;
    }
    case kStrAlgo:
      if (a == "bm") m.algo = StringMatch::Algo::Bm;
      else if (a == "kmp") m.algo = StringMatch::Algo::Kmp;
      else fail(acol, fmt::format("bad algorithm \"{}\" (expected bm or kmp)", a));
      break;
    case kStrIcase:
      m.icase = true;
      break;
    case kStrString:
    case kStrHex: {
      conflict(def.id == kStrString ? kStrHex : kStrString, def.id == kStrString ? "--hex-string" : "--string");
      std::string pattern;
      if (def.id == kStrString) {
        pattern = a;
      } else {
        // Literal text with |hex bytes| blocks; spaces inside a block are
        // ignored; a backslash outside a block takes the next byte as is.
        bool in_hex = false;
        size_t block_start = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          char ch = a[i];
          auto c = acol + static_cast<uint32_t>(i);
          if (ch == '|') {
            if (in_hex && i == block_start + 1) fail(c, "empty hex block \"||\" in --hex-string");
            in_hex = !in_hex;
            block_start = i;
            continue;
          }
          if (!in_hex) {
            if (ch == '\\') {
              if (i + 1 >= a.size()) fail(c, "--hex-string ends in a lone backslash");
              ch = a[++i];
            }
            pattern += ch;
            continue;
          }
          if (ch == ' ') continue;
          int hi = digit_value(ch);
          if (hi > 15) fail(c, fmt::format("bad hex digit '{}' in --hex-string", ch));
          if (i + 1 >= a.size()) fail(c, "odd number of hex digits in --hex-string");
          int lo = digit_value(a[i + 1]);
          if (lo > 15)
            fail(c + 1, a[i + 1] == '|' || a[i + 1] == ' ' ? std::string("odd number of hex digits in a --hex-string block")
                                                          : fmt::format("bad hex digit '{}' in --hex-string", a[i + 1]));
          pattern += static_cast<char>(hi * 16 + lo);
          ++i;
        }
        if (in_hex) fail(acol + static_cast<uint32_t>(block_start), "unterminated hex block in --hex-string (expected a closing '|')");
      }
      if (pattern.empty()) fail(acol, fmt::format("{}: the pattern is empty", opt_name));
      if (pattern.size() > StringMatch::kMaxPattern)
        fail(acol, fmt::format("{}: the pattern is {} bytes long (at most 128)", opt_name, pattern.size()));
      m.pattern = std::move(pattern);
      m.invert = invert;
      break;
    }
  }
}

void RuleParser::limit_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<LimitMatch>(inst);
  if (def.id == kLimLimit) {
    size_t slash = a.find('/');
    auto n = parse_dec_uint(std::string_view(a).substr(0, slash), UINT32_MAX);
    uint32_t mult = kLimitSecond;
    bool ok = n && *n > 0;
    if (ok && slash != std::string::npos) {
      std::string_view unit = std::string_view(a).substr(slash + 1);
      if (!unit.empty() && iprefix(unit, "second")) mult = kLimitSecond;
      else if (!unit.empty() && iprefix(unit, "minute")) mult = kLimitMinute;
      else if (!unit.empty() && iprefix(unit, "hour")) mult = kLimitHour;
      else if (!unit.empty() && iprefix(unit, "day")) mult = kLimitDay;
      else ok = false;
    }
    if (!ok) fail(acol, fmt::format("bad rate \"{}\" (expected N/second, N/minute, N/hour or N/day, N >= 1)", a));
    uint64_t avg = uint64_t{LimitMatch::kScale} * mult / *n;
    if (avg == 0) fail(acol, fmt::format("rate \"{}\" is too fast (at most 10000/second)", a));
    m.avg = static_cast<uint32_t>(avg);
  } else {
    auto b = parse_c_uint(a, 10000);
    if (!b) fail(acol, fmt::format("bad burst \"{}\" (expected 1-10000)", a));
    m.burst = static_cast<uint32_t>(*b);
  }
}

void RuleParser::statistic_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto conflict = [&](uint8_t other_id, const char* other_name) { option_conflict(o, other_id, other_name); };
  auto& m = match_of<StatisticMatch>(inst);
  switch (def.id) {
    case kStatMode:
      if (a == "random") m.mode = StatisticMatch::Mode::Random;
      else if (a == "nth") m.mode = StatisticMatch::Mode::Nth;
      else fail(acol, fmt::format("bad mode \"{}\" (expected random or nth)", a));
      break;
    case kStatProb: {
      conflict(kStatEvery, "--every");
      conflict(kStatPacket, "--packet");
      double p = -1;
      std::string_view s = a;
      const char* b = s.data();
      const char* e = s.data() + s.size();
      std::from_chars_result res{};
      if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        res = std::from_chars(b + 2, e, p, std::chars_format::hex);
      else
        res = std::from_chars(b, e, p);
      if (res.ec != std::errc() || res.ptr != e || !(p >= 0.0 && p <= 1.0))
        fail(acol, fmt::format("bad probability \"{}\" (expected a number from 0 to 1)", a));
      m.probability = static_cast<uint32_t>(std::lround(p * static_cast<double>(StatisticMatch::kProbabilityOne)));
      m.invert = invert;
      break;
    }
    case kStatEvery: {
      conflict(kStatProb, "--probability");
      uint32_t v = parse_u32(a, acol, "--every count");
      if (v == 0) fail(acol, "--every must be at least 1");
      m.every = v;
      m.invert = invert;
      break;
    }
    case kStatPacket:
      conflict(kStatProb, "--probability");
      m.packet = parse_u32(a, acol, "--packet number");
      break;
  }
}

void RuleParser::length_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<LengthMatch>(inst);
  size_t colon = a.find(':');
  auto one = [&](std::string_view s, uint32_t c, uint16_t dflt) -> uint16_t {
    if (s.empty() && colon != std::string::npos) return dflt;
    auto v = parse_c_uint(s, 65535);
    if (!v) fail(c, fmt::format("bad length \"{}\" (expected 0-65535, or MIN:MAX)", s));
    return static_cast<uint16_t>(*v);
  };
  m.min = one(std::string_view(a).substr(0, colon), acol, 0);
  m.max = colon == std::string::npos ? m.min : one(std::string_view(a).substr(colon + 1), acol + static_cast<uint32_t>(colon) + 1, 65535);
  m.invert = invert;
}

void RuleParser::pkttype_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<PkttypeMatch>(inst);
  if (iequals(a, "unicast") || iequals(a, "host")) m.type = PkttypeMatch::Type::Unicast;
  else if (iequals(a, "broadcast")) m.type = PkttypeMatch::Type::Broadcast;
  else if (iequals(a, "multicast")) m.type = PkttypeMatch::Type::Multicast;
  else if (iequals(a, "otherhost")) m.type = PkttypeMatch::Type::OtherHost;
  else fail(acol, fmt::format("bad packet type \"{}\" (expected unicast, broadcast, multicast or otherhost)", a));
  m.invert = invert;
}

void RuleParser::mac_option(const ModuleOption& o) {
  auto& [inst, def, tok, opt_name, invert, args, cols, a, acol, mname] = o;
  auto& m = match_of<MacMatch>(inst);
  auto parts = split(a, ':');
  bool ok = parts.size() == 6;
  for (size_t i = 0; ok && i < 6; ++i) {
    std::string_view p = parts[i];
    if (p.empty() || p.size() > 2) { ok = false; break; }
    unsigned v = 0;
    for (char ch : p) {
      int d = digit_value(ch);
      if (d > 15) { ok = false; break; }
      v = v * 16 + static_cast<unsigned>(d);
    }
    m.addr[i] = static_cast<uint8_t>(v);
  }
  if (!ok) fail(acol, fmt::format("bad MAC address \"{}\" (expected xx:xx:xx:xx:xx:xx)", a));
  m.invert = invert;
}

// --- target options

void RuleParser::target_exclusive(const TargetOption& o, std::initializer_list<uint8_t> group) const {
  for (uint8_t g : group) {
    if (g != o.def.id && (tgt_seen_ & (1U << g))) {
      fail(o.tok.col, fmt::format("{}: option \"{}\" cannot be combined with an earlier operation option", o.tname,
                                  o.opt_name));
    }
  }
}

void RuleParser::target_option(const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                               const std::vector<std::string>& args, const std::vector<uint32_t>& cols) {
  (void)invert;  // no target option is invertible; checked by the caller
  const char* tname = tgt_def(*tgt_).name;
  if (tgt_seen_ & (1U << def.id)) fail(tok.col, fmt::format("{}: option \"{}\" can only be used once", tname, opt_name));
  const std::string& a = args.empty() ? std::string() : args[0];
  uint32_t acol = cols.empty() ? tok.col : cols[0];

  const TargetOption o{def, tok, opt_name, args, cols, a, acol, tname};
  switch (*tgt_) {
    case TgtKind::Reject: reject_target_option(o); break;
    case TgtKind::Dnat:
    case TgtKind::Snat: nat_target_option(o); break;
    case TgtKind::Masquerade: masquerade_target_option(o); break;
    case TgtKind::Redirect: redirect_target_option(o); break;
    case TgtKind::Log: log_target_option(o); break;
    case TgtKind::Mark: mark_target_option(o); break;
    case TgtKind::Connmark: connmark_target_option(o); break;
    case TgtKind::Ct: ct_target_option(o); break;
    case TgtKind::Notrack:
    case TgtKind::Trace: break;  // no options
  }
  tgt_seen_ |= 1U << def.id;
}

void RuleParser::reject_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto& t = std::get<RejectTarget>(rule_.target);
  const RejectName* found = nullptr;
  for (const RejectName& n : kRejectNames) {
    if (iprefix(a, n.name) || iprefix(a, n.alias)) {
      found = &n;
      break;
    }
  }
  if (!found) fail(acol, fmt::format("unknown reject type \"{}\" (expected icmp-net-unreachable, "
                                     "icmp-host-unreachable, icmp-port-unreachable, icmp-proto-unreachable, "
                                     "icmp-net-prohibited, icmp-host-prohibited, icmp-admin-prohibited or tcp-reset)", a));
  t.with = found->with;
}

void RuleParser::nat_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  NatRange& r = *tgt_ == TgtKind::Dnat ? std::get<DnatTarget>(rule_.target).range
                                       : std::get<SnatTarget>(rule_.target).range;
  switch (def.id) {
    case kNatTo: {
      bool keep_random = r.random, keep_fully = r.random_fully, keep_persistent = r.persistent;
      r = parse_nat_range(a, acol, *tgt_ == TgtKind::Dnat);
      r.random = keep_random;
      r.random_fully = keep_fully;
      r.persistent = keep_persistent;
      break;
    }
    case kNatRandom: r.random = true; break;
    case kNatRandomFully: r.random_fully = true; break;
    case kNatPersistent: r.persistent = true; break;
  }
}

void RuleParser::masquerade_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto& t = std::get<MasqueradeTarget>(rule_.target);
  if (def.id == kNatTo) {
    t.ports = parse_nat_ports(a, acol);
    t.has_ports = true;
  } else if (def.id == kNatRandom) {
    t.random = true;
  } else {
    t.random_fully = true;
  }
}

void RuleParser::redirect_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto& t = std::get<RedirectTarget>(rule_.target);
  if (def.id == kNatTo) {
    t.ports = parse_nat_ports(a, acol);
    t.has_ports = true;
  } else {
    t.random = true;
  }
}

void RuleParser::log_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto& t = std::get<LogTarget>(rule_.target);
  switch (def.id) {
    case kLogLevel: {
      std::optional<uint8_t> level;
      for (const LevelName& n : kLogLevels) {
        if (a == n.name) level = n.level;
      }
      if (!level) {
        auto v = parse_c_uint(a, 7);
        if (v) level = static_cast<uint8_t>(*v);
      }
      if (!level) fail(acol, fmt::format("bad log level \"{}\" (expected 0-7 or emerg, alert, crit, error, warning, "
                                         "notice, info, debug)", a));
      t.level = *level;
      break;
    }
    case kLogPrefix:
      if (a.empty()) fail(acol, "--log-prefix must not be empty");
      t.prefix = a.substr(0, LogTarget::kMaxPrefix);  // the kernel keeps 29 bytes, as iptables does
      break;
    case kLogTcpSeq: t.flags |= LogTarget::kTcpSequence; break;
    case kLogTcpOpt: t.flags |= LogTarget::kTcpOptions; break;
    case kLogIpOpt: t.flags |= LogTarget::kIpOptions; break;
    case kLogUid: t.flags |= LogTarget::kUid; break;
    case kLogMac: t.flags |= LogTarget::kMacDecode; break;
  }
}

void RuleParser::mark_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto exclusive = [&](std::initializer_list<uint8_t> group) { target_exclusive(o, group); };
  auto& t = std::get<MarkTarget>(rule_.target);
  exclusive({kMkSetX, kMkSet, kMkAnd, kMkOr, kMkXor});
  switch (def.id) {
    case kMkSetX: std::tie(t.value, t.mask) = parse_mark_value(a, acol, opt_name); break;
    case kMkSet: {
      auto [v, m] = parse_mark_value(a, acol, opt_name);
      t.value = v;
      t.mask = m | v;
      break;
    }
    case kMkAnd: t.value = 0; t.mask = ~parse_u32(a, acol, "mark"); break;
    case kMkOr: t.value = t.mask = parse_u32(a, acol, "mark"); break;
    case kMkXor: t.value = parse_u32(a, acol, "mark"); t.mask = 0; break;
  }
}

void RuleParser::connmark_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto exclusive = [&](std::initializer_list<uint8_t> group) { target_exclusive(o, group); };
  auto& t = std::get<ConnmarkTarget>(rule_.target);
  switch (def.id) {
    case kMkSetX: case kMkSet: case kMkAnd: case kMkOr: case kMkXor: case kMkSave: case kMkRestore:
      exclusive({kMkSetX, kMkSet, kMkAnd, kMkOr, kMkXor, kMkSave, kMkRestore});
      break;
    case kMkMask:
      if (tgt_seen_ & ((1U << kMkNfmask) | (1U << kMkCtmask)))
        fail(tok.col, "CONNMARK: --mask cannot be used together with --nfmask or --ctmask");
      break;
    default:
      if (tgt_seen_ & (1U << kMkMask))
        fail(tok.col, fmt::format("CONNMARK: {} cannot be used together with --mask", opt_name));
      break;
  }
  switch (def.id) {
    case kMkSetX:
      t.mode = ConnmarkTarget::Mode::SetXmark;
      std::tie(t.value, t.ctmask) = parse_mark_value(a, acol, opt_name);
      break;
    case kMkSet: {
      auto [v, m] = parse_mark_value(a, acol, opt_name);
      t.mode = ConnmarkTarget::Mode::SetXmark;
      t.value = v;
      t.ctmask = m | v;
      break;
    }
    case kMkAnd: t.mode = ConnmarkTarget::Mode::SetXmark; t.value = 0; t.ctmask = ~parse_u32(a, acol, "mark"); break;
    case kMkOr: t.mode = ConnmarkTarget::Mode::SetXmark; t.value = t.ctmask = parse_u32(a, acol, "mark"); break;
    case kMkXor: t.mode = ConnmarkTarget::Mode::SetXmark; t.value = parse_u32(a, acol, "mark"); t.ctmask = 0; break;
    case kMkSave: t.mode = ConnmarkTarget::Mode::Save; break;
    case kMkRestore: t.mode = ConnmarkTarget::Mode::Restore; break;
    case kMkMask: t.ctmask = t.nfmask = parse_u32(a, acol, "mask"); break;
    case kMkNfmask: t.nfmask = parse_u32(a, acol, "mask"); break;
    case kMkCtmask: t.ctmask = parse_u32(a, acol, "mask"); break;
  }
}

void RuleParser::ct_target_option(const TargetOption& o) {
  auto& [def, tok, opt_name, args, cols, a, acol, tname] = o;
  auto& t = std::get<CtTarget>(rule_.target);
  switch (def.id) {
    case kCtNotrack: t.notrack = true; break;
    case kCtZone:
    case kCtZoneOrig:
    case kCtZoneReply: {
      // "mark" sticks once given; the direction flags accumulate.
      if (iequals(a, "mark")) {
        t.zone_from_mark = true;
      } else {
        auto v = parse_c_uint(a, 65535);
        if (!v) fail(acol, fmt::format("bad zone \"{}\" (expected 0-65535 or mark)", a));
        t.zone = static_cast<uint16_t>(*v);
      }
      if (def.id == kCtZoneOrig) t.zone_orig = true;
      if (def.id == kCtZoneReply) t.zone_reply = true;
      break;
    }
    case kCtEvents:
    case kCtExpEvents: {
      uint16_t bits = 0;
      uint32_t c = acol;
      for (std::string_view e : split(a, ',')) {
        std::optional<unsigned> idx;
        size_t n = def.id == kCtEvents ? std::size(kCtEventNames) : 1;
        for (size_t i = 0; i < n; ++i) {
          if (e == kCtEventNames[i]) idx = static_cast<unsigned>(i);
        }
        if (!idx) fail(c, fmt::format("unknown event type \"{}\" for {}", e, opt_name));
        bits = static_cast<uint16_t>(bits | (1U << *idx));
        c += static_cast<uint32_t>(e.size()) + 1;
      }
      (def.id == kCtEvents ? t.ctevents : t.expevents) = bits;
      break;
    }
  }
}

// --- end of rule


// Required options and combinations of each module of the rule.
void RuleParser::check_modules() const {
  for (const Instance& inst : instances_) {
    const char* mname = mod_def(inst.kind).name;
    auto need_proto = [&](uint8_t proto, const char* pname) {
      if (rule_.protocol != proto || rule_.protocol_invert)
        fail(inst.col, fmt::format("-m {} needs -p {} (not negated) in the same rule", mname, pname));
    };
    const Match& m = rule_.matches[inst.match_index];
    switch (inst.kind) {
      case ModKind::Tcp: need_proto(kProtoTcp, "tcp"); break;
      case ModKind::Udp: need_proto(kProtoUdp, "udp"); break;
      case ModKind::Icmp:
        need_proto(kProtoIcmp, "icmp");
        if (inst.seen == 0) fail(inst.col, "icmp: option \"--icmp-type\" must be specified");
        break;
      case ModKind::Multiport: {
        uint8_t p = rule_.protocol;
        bool ok = !rule_.protocol_invert && (p == kProtoTcp || p == kProtoUdp || p == kProtoUdplite ||
                                             p == kProtoSctp || p == kProtoDccp);
        if (!ok) fail(inst.col, "-m multiport needs -p tcp, udp, udplite, sctp or dccp (not negated)");
        if (inst.seen == 0) fail(inst.col, "multiport: one of --sports, --dports or --ports must be specified");
        break;
      }
      case ModKind::Conntrack:
        if (inst.seen == 0) fail(inst.col, "conntrack: at least one option is required");
        break;
      case ModKind::State:
        if (inst.seen == 0) fail(inst.col, "state: option \"--state\" must be specified");
        break;
      case ModKind::Addrtype:
        if ((inst.seen & ((1U << kAtSrc) | (1U << kAtDst))) == 0)
          fail(inst.col, "addrtype: --src-type or --dst-type must be specified");
        break;
      case ModKind::Comment:
        if (inst.seen == 0) fail(inst.col, "comment: option \"--comment\" must be specified");
        break;
      case ModKind::Mark:
      case ModKind::Connmark:
        if (inst.seen == 0) fail(inst.col, fmt::format("{}: option \"--mark\" must be specified", mname));
        break;
      case ModKind::Iprange:
        if (inst.seen == 0) fail(inst.col, "iprange: --src-range or --dst-range must be specified");
        break;
      case ModKind::String: {
        const auto& s = std::get<StringMatch>(m);
        if ((inst.seen & (1U << kStrAlgo)) == 0) fail(inst.col, "string: option \"--algo\" must be specified");
        if ((inst.seen & ((1U << kStrString) | (1U << kStrHex))) == 0)
          fail(inst.col, "string: --string or --hex-string must be specified");
        if (s.from > s.to) fail(inst.col, fmt::format("string: --from {} is beyond --to {}", s.from, s.to));
        break;
      }
      case ModKind::Limit: {
        const auto& l = std::get<LimitMatch>(m);
        if (l.burst == 0) fail(inst.col, "limit: --limit-burst must be at least 1");
        // The kernel refuses a bucket whose credit, computed in 32 bits,
        // overflows: credits(avg * burst) < credits(avg).
        if (limit_credits(static_cast<uint32_t>(uint64_t{l.avg} * l.burst)) < limit_credits(l.avg))
          fail(inst.col, "limit: rate too slow for this burst (the kernel's 32-bit credit would overflow)");
        break;
      }
      case ModKind::Statistic: {
        const auto& s = std::get<StatisticMatch>(m);
        if ((inst.seen & (1U << kStatMode)) == 0) fail(inst.col, "statistic: option \"--mode\" must be specified");
        if (s.mode == StatisticMatch::Mode::Random) {
          if ((inst.seen & (1U << kStatProb)) == 0)
            fail(inst.col, "statistic: --probability must be specified with --mode random");
          if (inst.seen & ((1U << kStatEvery) | (1U << kStatPacket)))
            fail(inst.col, "statistic: --every/--packet need --mode nth");
        } else {
          if ((inst.seen & (1U << kStatEvery)) == 0 || (inst.seen & (1U << kStatPacket)) == 0)
            fail(inst.col, "statistic: --mode nth needs --every N and --packet P");
          if (s.packet >= s.every)
            fail(inst.col, fmt::format("statistic: --packet {} must be below --every {}", s.packet, s.every));
          if (inst.seen & (1U << kStatProb)) fail(inst.col, "statistic: --probability needs --mode random");
        }
        break;
      }
      case ModKind::Length:
        if (inst.seen == 0) fail(inst.col, "length: option \"--length\" must be specified");
        break;
      case ModKind::Pkttype:
        if (inst.seen == 0) fail(inst.col, "pkttype: option \"--pkt-type\" must be specified");
        break;
      case ModKind::Mac:
        if (inst.seen == 0) fail(inst.col, "mac: option \"--mac-source\" must be specified");
        break;
    }
  }
}

// The target's required options and protocol needs.
void RuleParser::check_target() const {
  auto nat_proto_ok = [&] {
    uint8_t p = rule_.protocol;
    return rule_.protocol_invert || p == kProtoTcp || p == kProtoUdp || p == kProtoSctp || p == kProtoDccp ||
           p == kProtoIcmp;
  };
  if (tgt_) {
    switch (*tgt_) {
      case TgtKind::Reject:
        if (std::get<RejectTarget>(rule_.target).with == RejectTarget::With::TcpReset &&
            (rule_.protocol != kProtoTcp || rule_.protocol_invert))
          fail(tgt_col_, "REJECT --reject-with tcp-reset needs -p tcp (not negated)");
        break;
      case TgtKind::Dnat:
      case TgtKind::Snat: {
        const NatRange& r = *tgt_ == TgtKind::Dnat ? std::get<DnatTarget>(rule_.target).range
                                                   : std::get<SnatTarget>(rule_.target).range;
        if ((tgt_seen_ & (1U << kNatTo)) == 0)
          fail(tgt_col_, fmt::format("{}: option \"{}\" must be specified", tgt_def(*tgt_).name,
                                     *tgt_ == TgtKind::Dnat ? "--to-destination" : "--to-source"));
        if (r.has_ports && !nat_proto_ok())
          fail(tgt_col_, fmt::format("{} with ports needs -p tcp, udp, sctp, dccp or icmp", tgt_def(*tgt_).name));
        break;
      }
      case TgtKind::Masquerade:
        if (std::get<MasqueradeTarget>(rule_.target).has_ports && !nat_proto_ok())
          fail(tgt_col_, "MASQUERADE --to-ports needs -p tcp, udp, sctp, dccp or icmp");
        break;
      case TgtKind::Redirect:
        if (std::get<RedirectTarget>(rule_.target).has_ports && !nat_proto_ok())
          fail(tgt_col_, "REDIRECT --to-ports needs -p tcp, udp, sctp, dccp or icmp");
        break;
      case TgtKind::Mark:
        if (tgt_seen_ == 0)
          fail(tgt_col_, "MARK: one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark is required");
        break;
      case TgtKind::Connmark: {
        uint32_t ops = (1U << kMkSetX) | (1U << kMkSet) | (1U << kMkAnd) | (1U << kMkOr) | (1U << kMkXor) |
                       (1U << kMkSave) | (1U << kMkRestore);
        if ((tgt_seen_ & ops) == 0)
          fail(tgt_col_, "CONNMARK: no operation (expected --set-xmark, --set-mark, --and-mark, --or-mark, "
                         "--xor-mark, --save-mark or --restore-mark)");
        break;
      }
      case TgtKind::Log:
      case TgtKind::Notrack:
      case TgtKind::Ct:
      case TgtKind::Trace:
        break;
    }
  }
}

void RuleParser::finish(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  check_modules();
  check_target();
  if (counters) rule_.counters = counters;
  aux.target_col = tgt_col_;
  for (const Instance& inst : instances_) aux.match_cols.push_back(inst.col);
  // -s/-d lists expand into one rule per (source, destination), sources outer.
  for (const Ipv4Mask& s : srcs_) {
    for (const Ipv4Mask& d : dsts_) {
      Rule r = rule_;
      r.src = s;
      r.dst = d;
      out.push_back(std::move(r));
    }
  }
}

// ---------------------------------------------------------------------------

void Reader::parse_rule(const std::vector<Token>& toks, size_t first, uint32_t chain_index,
                        std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  RuleParser p(table_, chain_index_, chain_index, toks, first, file_, line_no_);
  p.run(counters, out, aux);
}

void Reader::finish_table() {
  // Jump loops, searched from each built-in chain like the kernel does when
  // the table is loaded (loops among chains no hook reaches are accepted).
  const size_t n = table_.chains.size();
  std::vector<uint8_t> state(n, 0);  // 0 new, 1 on the current path, 2 done
  struct Frame {
    uint32_t chain;
    size_t rule;
  };
  for (size_t root = 0; root < n; ++root) {
    if (!table_.chains[root].builtin() || state[root] != 0) continue;
    std::vector<Frame> stack{{static_cast<uint32_t>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      Frame& f = stack.back();
      const Chain& c = table_.chains[f.chain];
      if (f.rule >= c.rules.size()) {
        state[f.chain] = 2;
        stack.pop_back();
        continue;
      }
      const size_t ri = f.rule++;
      const Rule& r = c.rules[ri];
      std::optional<uint32_t> next;
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) next = j->index;
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) next = g->index;
      if (!next) continue;
      if (state[*next] == 1) {
        std::string path;
        bool on = false;
        for (const Frame& fr : stack) {
          if (fr.chain == *next) on = true;
          if (on) path += table_.chains[fr.chain].name + " -> ";
        }
        path += table_.chains[*next].name;
        fail_rule(r, aux_[f.chain][ri].target_col,
                  fmt::format("jump loop: chain {} jumps back to {} ({})", c.name, table_.chains[*next].name, path));
      }
      if (state[*next] == 0) {
        state[*next] = 1;
        stack.push_back(Frame{*next, 0});
      }
    }
  }

  // Targets and matches used from hooks they do not support.
  std::vector<HookMask> hooks = chain_hooks(table_);
  for (size_t ci = 0; ci < n; ++ci) {
    const Chain& c = table_.chains[ci];
    if (hooks[ci] == 0) continue;
    for (size_t ri = 0; ri < c.rules.size(); ++ri) {
      const Rule& r = c.rules[ri];
      const RuleAux& aux = aux_[ci][ri];
      TargetScope scope = target_scope(r.target);
      if (HookMask bad = hooks[ci] & ~scope.hooks; bad != 0) {
        fail_rule(r, aux.target_col,
                  fmt::format("target {} is valid only from {}, but chain {} is reached from {}",
                              target_name(r.target), format_hooks(scope.hooks), c.name, format_hooks(bad)));
      }
      for (size_t mi = 0; mi < r.matches.size(); ++mi) {
        const Match& m = r.matches[mi];
        HookMask ok = match_hooks(m);
        if (HookMask bad = hooks[ci] & ~ok; bad != 0) {
          std::string what = match_name(m);
          if (const auto* a = std::get_if<AddrtypeMatch>(&m))
            what += a->limit_iface_in ? " --limit-iface-in" : " --limit-iface-out";
          fail_rule(r, mi < aux.match_cols.size() ? aux.match_cols[mi] : 0,
                    fmt::format("match {} is valid only from {}, but chain {} is reached from {}", what,
                                format_hooks(ok), c.name, format_hooks(bad)));
        }
      }
    }
  }

  // A table given twice replaces the earlier one, as iptables-restore does.
  if (Table* old = ruleset_.find_table(table_.id)) {
    *old = std::move(table_);
  } else {
    ruleset_.tables.push_back(std::move(table_));
  }
  table_ = Table{};
  aux_.clear();
  chain_index_.clear();
}

}  // namespace

Ruleset read_iptables_save(std::string_view text, const std::string& file_name) {
  Reader r(text, file_name);
  return r.run();
}

Ruleset load_iptables_save_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    SourceLocation where;
    where.file = path;
    throw LoadError(where, fmt::format("cannot read file: {}", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    SourceLocation where;
    where.file = path;
    throw LoadError(where, "cannot read file: read error");
  }
  return read_iptables_save(buf.str(), path);
}

}  // namespace nfb
