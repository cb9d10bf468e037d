// Names, hooks and validity rules of the rule model (see rule.h).
#include "rules/rule.h"

#include <algorithm>
#include <bit>
#include <cctype>

#include <fmt/format.h>

#include "base/text.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Tables and hooks

const char* table_name(TableId t) noexcept {
  switch (t) {
    case TableId::Raw: return "raw";
    case TableId::Mangle: return "mangle";
    case TableId::Nat: return "nat";
    case TableId::Filter: return "filter";
    case TableId::Security: return "security";
  }
  return "?";
}

std::optional<TableId> parse_table_name(std::string_view name) noexcept {
  for (TableId t : {TableId::Raw, TableId::Mangle, TableId::Nat, TableId::Filter, TableId::Security}) {
    if (name == table_name(t)) return t;
  }
  return std::nullopt;
}

const char* hook_name(Hook h) noexcept {
  switch (h) {
    case Hook::Prerouting: return "PREROUTING";
    case Hook::Input: return "INPUT";
    case Hook::Forward: return "FORWARD";
    case Hook::Output: return "OUTPUT";
    case Hook::Postrouting: return "POSTROUTING";
  }
  return "?";
}

std::optional<Hook> parse_hook_name(std::string_view name) noexcept {
  for (unsigned i = 0; i < kHookCount; ++i) {
    auto h = static_cast<Hook>(i);
    if (name == hook_name(h)) return h;
  }
  return std::nullopt;
}

HookMask table_hooks(TableId t) noexcept {
  switch (t) {
    case TableId::Raw: return hook_bit(Hook::Prerouting) | hook_bit(Hook::Output);
    case TableId::Mangle: return kAllHooks;
    case TableId::Nat:
      return hook_bit(Hook::Prerouting) | hook_bit(Hook::Input) | hook_bit(Hook::Output) |
             hook_bit(Hook::Postrouting);
    case TableId::Filter:
    case TableId::Security: return hook_bit(Hook::Input) | hook_bit(Hook::Forward) | hook_bit(Hook::Output);
  }
  return 0;
}

std::string format_hooks(HookMask hooks) {
  std::string out;
  for (unsigned i = 0; i < kHookCount; ++i) {
    if ((hooks & (1U << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += hook_name(static_cast<Hook>(i));
  }
  return out;
}

const char* policy_name(Policy p) noexcept { return p == Policy::Accept ? "ACCEPT" : "DROP"; }

// ---------------------------------------------------------------------------
// Values

int mask_prefix_length(uint32_t mask) noexcept {
  int ones = std::popcount(mask);
  return prefix_mask(static_cast<unsigned>(ones)) == mask ? ones : -1;
}

std::optional<uint32_t> parse_ipv4(std::string_view s) noexcept {
  uint32_t addr = 0;
  size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return std::nullopt;
      ++pos;
    }
    size_t end = pos;
    while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
    const size_t digits = end - pos;
    if (digits == 0 || digits > 3 || (digits > 1 && s[pos] == '0')) return std::nullopt;
    unsigned v = 0;
    for (size_t i = pos; i < end; ++i) v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > 255) return std::nullopt;
    addr = addr << 8 | v;
    pos = end;
  }
  if (pos != s.size()) return std::nullopt;
  return addr;
}

std::string format_ipv4(uint32_t addr) {
  return fmt::format("{}.{}.{}.{}", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff, addr & 0xff);
}

// ---------------------------------------------------------------------------
// Name sets

namespace {

struct BitName {
  uint32_t bit;
  const char* name;
};

// The kernel's print order for conntrack states.
constexpr BitName kCtStates[] = {
    {kCtInvalid, "INVALID"},     {kCtNew, "NEW"},   {kCtRelated, "RELATED"},
    {kCtEstablished, "ESTABLISHED"}, {kCtUntracked, "UNTRACKED"}, {kCtSnat, "SNAT"},
    {kCtDnat, "DNAT"},
};

constexpr BitName kCtStatus[] = {
    {kCtStatusExpected, "EXPECTED"},
    {kCtStatusSeenReply, "SEEN_REPLY"},
    {kCtStatusAssured, "ASSURED"},
    {kCtStatusConfirmed, "CONFIRMED"},
};

constexpr const char* kAddrTypeNames[kAddrTypeCount] = {
    "UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST",
    "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE",
};

template <size_t N>
std::string format_bits(uint32_t bits, const BitName (&names)[N]) {
  std::string out;
  for (const BitName& b : names) {
    if ((bits & b.bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += b.name;
  }
  return out;
}

}  // namespace

std::optional<uint8_t> parse_ct_state(std::string_view name) noexcept {
  for (const BitName& b : kCtStates) {
    if (iequals(name, b.name)) return static_cast<uint8_t>(b.bit);
  }
  return std::nullopt;
}

std::string format_ct_states(uint8_t states) { return format_bits(states, kCtStates); }

std::optional<uint8_t> parse_ct_status(std::string_view name) noexcept {
  if (iequals(name, "NONE")) return uint8_t{0};
  for (const BitName& b : kCtStatus) {
    if (iequals(name, b.name)) return static_cast<uint8_t>(b.bit);
  }
  return std::nullopt;
}

std::string format_ct_status(uint8_t status) {
  if (status == 0) return "NONE";
  return format_bits(status, kCtStatus);
}

const char* addr_type_name(AddrType t) noexcept {
  auto i = static_cast<size_t>(t);
  return i < kAddrTypeCount ? kAddrTypeNames[i] : "?";
}

std::optional<AddrType> parse_addr_type(std::string_view name) noexcept {
  for (size_t i = 0; i < kAddrTypeCount; ++i) {
    if (iequals(name, kAddrTypeNames[i])) return static_cast<AddrType>(i);
  }
  return std::nullopt;
}

std::string format_addr_types(uint16_t types) {
  std::string out;
  for (size_t i = 0; i < kAddrTypeCount; ++i) {
    if ((types & (1U << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += kAddrTypeNames[i];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Protocols

namespace {

struct ProtoName {
  uint8_t number;
  const char* name;
};

// Debian 12 netbase /etc/protocols: the first (official lower-case) name of
// each number. iptables prints protocol numbers through getprotobynumber(),
// so this is the name the kernel's canonical dump shows. Number 0 ("ip") is
// "all" to iptables and never printed.
constexpr ProtoName kProtocols[] = {
    {1, "icmp"},      {2, "igmp"},       {3, "ggp"},        {4, "ipencap"},     {5, "st"},
    {6, "tcp"},       {8, "egp"},        {9, "igp"},        {12, "pup"},        {17, "udp"},
    {20, "hmp"},      {22, "xns-idp"},   {27, "rdp"},       {29, "iso-tp4"},    {33, "dccp"},
    {36, "xtp"},      {37, "ddp"},       {38, "idpr-cmtp"}, {41, "ipv6"},       {43, "ipv6-route"},
    {44, "ipv6-frag"}, {45, "idrp"},     {46, "rsvp"},      {47, "gre"},        {50, "esp"},
    {51, "ah"},       {57, "skip"},      {58, "ipv6-icmp"}, {59, "ipv6-nonxt"}, {60, "ipv6-opts"},
    {73, "rspf"},     {81, "vmtp"},      {88, "eigrp"},     {89, "ospf"},       {93, "ax.25"},
    {94, "ipip"},     {97, "etherip"},   {98, "encap"},     {103, "pim"},       {108, "ipcomp"},
    {112, "vrrp"},    {115, "l2tp"},     {124, "isis"},     {132, "sctp"},      {133, "fc"},
    {135, "mobility-header"}, {136, "udplite"}, {137, "mpls-in-ip"}, {138, "manet"}, {139, "hip"},
    {140, "shim6"},   {141, "wesp"},     {142, "rohc"},     {143, "ethernet"},
};

// Further names iptables accepts. It lower-cases the name and asks
// getprotobyname(), which compares aliases exactly, so only the lower-case
// aliases of /etc/protocols work; then its own built-in names.
constexpr ProtoName kProtocolAliases[] = {
    {0, "ip"}, {0, "hopopt"}, {0, "all"}, {58, "icmpv6"}, {135, "ipv6-mh"}, {135, "mh"},
};

}  // namespace

const char* protocol_name(uint8_t proto) noexcept {
  for (const ProtoName& p : kProtocols) {
    if (p.number == proto) return p.name;
  }
  return nullptr;
}

std::optional<uint8_t> parse_protocol(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  // A number in C notation (decimal, 0x hex, leading-0 octal), 0..255.
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    unsigned base = 10;
    size_t i = 0;
    if (text.size() > 1 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
      base = 16;
      i = 2;
      if (i == text.size()) return std::nullopt;
    } else if (text.size() > 1 && text[0] == '0') {
      base = 8;
      i = 1;
    }
    uint32_t v = 0;
    for (; i < text.size(); ++i) {
      int c = std::tolower(static_cast<unsigned char>(text[i]));
      unsigned d;
      if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a') + 10U;
      else return std::nullopt;
      if (d >= base) return std::nullopt;
      v = v * base + d;
      if (v > 255) return std::nullopt;
    }
    return static_cast<uint8_t>(v);
  }
  // iptables lower-cases the name before looking it up.
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const ProtoName& p : kProtocols) {
    if (lower == p.name) return p.number;
  }
  for (const ProtoName& p : kProtocolAliases) {
    if (lower == p.name) return p.number;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Matches and targets: each module says it of itself (rules/module.h)

const char* match_name(const Match& m) noexcept {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kName; }, m);
}

bool is_terminal(const Target& t) noexcept {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kTerminal; }, t);
}

std::string target_name(const Target& t) {
  return std::visit(
      [](const auto& x) -> std::string {
        if constexpr (requires { x.chain; }) {
          return x.chain;
        } else {
          return std::decay_t<decltype(x)>::kName;
        }
      },
      t);
}

TargetScope target_scope(const Target& t) noexcept {
  return std::visit(
      [](const auto& x) -> TargetScope {
        if constexpr (requires { x.scope(); }) {
          return x.scope();
        } else {
          return {std::nullopt, kAllHooks};
        }
      },
      t);
}

WalkOp target_walk_op(const Target& t) noexcept {
  return std::visit(
      [](const auto& x) -> WalkOp {
        if constexpr (requires { x.walk_op(); }) {
          return x.walk_op();
        } else {
          return std::decay_t<decltype(x)>::kWalk;
        }
      },
      t);
}

HookMask match_hooks(const Match& m) noexcept {
  return std::visit(
      [](const auto& x) -> HookMask {
        if constexpr (requires { x.hooks(); }) {
          return x.hooks();
        } else {
          return kAllHooks;
        }
      },
      m);
}

// ---------------------------------------------------------------------------
// Tables and rulesets

std::optional<uint32_t> Table::find_chain(std::string_view name) const noexcept {
  for (size_t i = 0; i < chains.size(); ++i) {
    if (chains[i].name == name) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

const Chain* Table::builtin_chain(Hook h) const noexcept {
  for (const Chain& c : chains) {
    if (c.hook == h) return &c;
  }
  return nullptr;
}

Table Table::make(TableId id) {
  Table t;
  t.id = id;
  for (unsigned i = 0; i < kHookCount; ++i) {
    auto h = static_cast<Hook>(i);
    if (!table_has_hook(id, h)) continue;
    Chain c;
    c.name = hook_name(h);
    c.hook = h;
    t.chains.push_back(std::move(c));
  }
  return t;
}

const Table* Ruleset::find_table(TableId id) const noexcept {
  for (const Table& t : tables) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

Table* Ruleset::find_table(TableId id) noexcept {
  for (Table& t : tables) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

Table& Ruleset::get_or_add_table(TableId id) {
  if (Table* t = find_table(id)) return *t;
  tables.push_back(Table::make(id));
  return tables.back();
}

std::vector<HookMask> chain_hooks(const Table& table) {
  std::vector<HookMask> hooks(table.chains.size(), 0);
  std::vector<uint32_t> work;
  for (size_t i = 0; i < table.chains.size(); ++i) {
    if (const auto& h = table.chains[i].hook) {
      hooks[i] = hook_bit(*h);
      work.push_back(static_cast<uint32_t>(i));
    }
  }
  // Propagate hook sets along jump/goto edges until nothing changes; each
  // chain is re-queued only when its set grows, at most kHookCount times.
  while (!work.empty()) {
    uint32_t c = work.back();
    work.pop_back();
    for (const Rule& r : table.chains[c].rules) {
      std::optional<uint32_t> next;
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) next = j->index;
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) next = g->index;
      if (!next || *next >= hooks.size()) continue;
      auto merged = static_cast<HookMask>(hooks[*next] | hooks[c]);
      if (merged != hooks[*next]) {
        hooks[*next] = merged;
        work.push_back(*next);
      }
    }
  }
  return hooks;
}

std::vector<std::string> unsupported_rules(const Ruleset& ruleset) {
  std::vector<std::string> out;
  for (const Table& t : ruleset.tables) {
    for (const Chain& c : t.chains) {
      for (const Rule& r : c.rules) {
        if (!r.unsupported.empty()) out.push_back(fmt::format("{}:{} ({})", r.where.file, r.where.line, r.unsupported));
      }
    }
  }
  return out;
}

}  // namespace nfb
