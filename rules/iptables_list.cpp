// Ruleset -> `iptables -L -v -n -x` text (see iptables_list.h).
//
// The core columns are printed here; every match module and target lists
// itself (its list()). Every print rule reproduces what iptables-legacy 1.8.9 prints for the
// kernel's stored form of a match or target, as measured on the kernel
// (tests/data/iptables/list/*.list are its outputs). The -L text differs
// from the iptables-save text in most modules: other words (`dpt:80`,
// `ADDRTYPE match`), other spacing (`connmark match  0x1`, `icmptype 8` but
// `icmp !type 8`), numbers where save prints defaults away (`burst 5`,
// `LOG flags 0 level 4`), and a few inversions that save loses (`dpts:!0:65535`).
#include "rules/iptables_list.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>


namespace nfb {
namespace {

/// The column header line (its trailing spaces are part of it).
constexpr std::string_view kColumnHeader =
    "    pkts      bytes target     prot opt in     out     source               destination         \n";

/// `s` left-aligned in `width` bytes; longer values overflow. Bytes, not
/// characters: iptables pads with printf, which counts bytes.
void append_left(std::string& out, std::string_view s, size_t width) {
  out += s;
  if (s.size() < width) out.append(width - s.size(), ' ');
}

void append_right(std::string& out, std::string_view s, size_t width) {
  if (s.size() < width) out.append(width - s.size(), ' ');
  out += s;
}

/// Appends formatted text (the format string is checked at compile time).
template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

/// -s/-d: `0.0.0.0/0` for any, the bare address for /32, `a.b.c.d/N` for
/// other prefixes, `a.b.c.d/m.m.m.m` for masks with holes. The address is
/// shown masked, as the kernel stores it.
std::string core_addr(const Ipv4Mask& a) {
  if (a.mask == 0) return "0.0.0.0/0";
  uint32_t addr = a.addr & a.mask;
  int len = mask_prefix_length(a.mask);
  if (len == 32) return format_ipv4(addr);
  if (len >= 0) return fmt::format("{}/{}", format_ipv4(addr), len);
  return fmt::format("{}/{}", format_ipv4(addr), format_ipv4(a.mask));
}

/// -i/-o: `*` for none, `!` before an inverted name, `+` after a wildcard.
std::string iface(const IfaceMatch& m) {
  std::string s = m.invert ? "!" : "";
  if (m.name.empty() && !m.wildcard) return s + "*";
  s += m.name;
  if (m.wildcard) s += '+';
  return s;
}

/// The target column: the chain for -j/-g, `CT` for NOTRACK (the kernel
/// keeps it as a CT target), "" for no target, else the target's name.
std::string target_column(const Target& target) {
  if (std::holds_alternative<NotrackTarget>(target)) return NotrackTarget::kListName;
  return target_name(target);
}

void append_rule(std::string& out, const Rule& rule) {
  Counters k = rule.counters.value_or(Counters{});
  append_right(out, std::to_string(k.packets), 8);
  out += ' ';
  append_right(out, std::to_string(k.bytes), 8);
  out += ' ';
  append_left(out, target_column(rule.target), 9);
  out += ' ';
  out += rule.protocol_invert ? '!' : ' ';
  append_left(out, std::to_string(rule.protocol), 5);
  out += !rule.fragment ? "--" : rule.fragment_invert ? "!f" : "-f";
  out += "  ";
  append_left(out, iface(rule.in_iface), 6);
  out += ' ';
  append_left(out, iface(rule.out_iface), 6);
  out += ' ';
  out += rule.src_invert ? '!' : ' ';
  append_left(out, core_addr(rule.src), 19);
  out += ' ';
  out += rule.dst_invert ? '!' : ' ';
  append_left(out, core_addr(rule.dst), 19);
  out += ' ';
  if (std::holds_alternative<GotoTarget>(rule.target)) out += "[goto] ";
  // Each module lists itself (rules/matches/, rules/targets/).
  ListText text(out, rule.where);
  for (const Match& m : rule.matches) std::visit([&text](const auto& x) { x.list(text); }, m);
  std::visit([&text](const auto& x) { x.list(text); }, rule.target);
}

}  // namespace

std::string write_iptables_list_rule(const Rule& rule) {
  std::string out;
  append_rule(out, rule);
  return out;
}

std::string write_iptables_list(const Table& table) {
  // References: rules of the table that jump or go to each chain, by name.
  std::map<std::string_view, uint32_t> refs;
  for (const Chain& c : table.chains) {
    for (const Rule& r : c.rules) {
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) ++refs[j->chain];
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) ++refs[g->chain];
    }
  }

  std::vector<const Chain*> builtins, users;
  for (const Chain& c : table.chains) (c.builtin() ? builtins : users).push_back(&c);
  std::stable_sort(builtins.begin(), builtins.end(), [](const Chain* a, const Chain* b) { return *a->hook < *b->hook; });
  std::stable_sort(users.begin(), users.end(), [](const Chain* a, const Chain* b) { return a->name < b->name; });

  std::string out;
  bool first = true;
  for (const auto* list : {&builtins, &users}) {
    for (const Chain* c : *list) {
      if (!first) out += '\n';
      first = false;
      if (c->builtin()) {
        put(out, "Chain {} (policy {} {} packets, {} bytes)\n", c->name, policy_name(c->policy),
            c->policy_counters.packets, c->policy_counters.bytes);
      } else {
        auto it = refs.find(c->name);
        put(out, "Chain {} ({} references)\n", c->name, it == refs.end() ? 0U : it->second);
      }
      out += kColumnHeader;
      for (const Rule& r : c->rules) {
        append_rule(out, r);
        out += '\n';
      }
    }
  }
  return out;
}

std::string write_iptables_list(const Ruleset& ruleset, TableId table) {
  if (const Table* t = ruleset.find_table(table)) return write_iptables_list(*t);
  return write_iptables_list(Table::make(table));
}

}  // namespace nfb
