// Ruleset -> `iptables -L -v -n -x` text (see iptables_list.h).
//
// Every print rule below reproduces what iptables-legacy 1.8.9 prints for the
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

#include "base/overloaded.h"

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

std::string hex(uint32_t v) { return fmt::format("0x{:x}", v); }

/// A value and a mask, the mask left out when it is all ones.
std::string mark_mask(uint32_t value, uint32_t mask) {
  return mask == 0xffffffffU ? hex(value) : fmt::format("0x{:x}/0x{:x}", value, mask);
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

/// Conntrack addresses: as given, `/N` for a contiguous mask other than /32,
/// nothing for a mask with holes (the kernel's printout drops it).
std::string ct_addr(const Ipv4Mask& a) {
  int len = mask_prefix_length(a.mask);
  if (len < 0 || len == 32) return format_ipv4(a.addr);
  return fmt::format("{}/{}", format_ipv4(a.addr), len);
}

/// -i/-o: `*` for none, `!` before an inverted name, `+` after a wildcard.
std::string iface(const IfaceMatch& m) {
  std::string s = m.invert ? "!" : "";
  if (m.name.empty() && !m.wildcard) return s + "*";
  s += m.name;
  if (m.wildcard) s += '+';
  return s;
}

/// "lo" or "lo<sep>hi".
std::string range(uint32_t lo, uint32_t hi, char sep) {
  return lo == hi ? std::to_string(lo) : fmt::format("{}{}{}", lo, sep, hi);
}

/// tcp/udp port text: ` spt:N` / ` spts:A:B` (`!` after the colon), printed
/// whenever the range is not 0:65535 or is inverted.
void l4_ports(std::string& out, const char* name, const PortRange& r, bool invert) {
  if (r.is_any() && !invert) return;
  put(out, " {}{}:{}{}", name, r.lo == r.hi ? "" : "s", invert ? "!" : "", range(r.lo, r.hi, ':'));
}




/// MARK and CONNMARK --set-xmark value/mask in the kernel's words, the first
/// that fits: and (value 0), or (value == mask), xor (mask 0), set (mask all
/// ones), else xset value/mask.
std::string xmark(uint32_t value, uint32_t mask) {
  if (value == 0) return "and " + hex(~mask);
  if (value == mask) return "or " + hex(value);
  if (mask == 0) return "xor " + hex(value);
  if (mask == 0xffffffffU) return "set " + hex(value);
  return fmt::format("xset 0x{:x}/0x{:x}", value, mask);
}

std::string ct_events(uint16_t bits) {
  static constexpr const char* kEvents[] = {"new", "related", "destroy", "reply", "assured",
                                            "protoinfo", "helper", "mark", "natseqinfo", "secmark"};
  std::string out;
  for (size_t i = 0; i < std::size(kEvents); ++i) {
    if ((bits & (1U << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += kEvents[i];
  }
  return out;
}

/// Appends one match's text, led by a space.
void list_match(std::string& out, const Rule& rule, const Match& match) {
  std::visit(
      Overloaded{
          [&](const TcpMatch& m) {
            out += " tcp";
            l4_ports(out, "spt", m.sport, m.sport_invert);
            l4_ports(out, "dpt", m.dport, m.dport_invert);
            if (m.option != 0 || m.option_invert) put(out, " option={}{}", m.option_invert ? "!" : "", m.option);
            if (m.flags_mask != 0 || m.flags_invert)
              put(out, " flags:{}0x{:02X}/0x{:02X}", m.flags_invert ? "!" : "", m.flags_mask, m.flags_cmp);
          },
          [&](const UdpMatch& m) {
            out += " udp";
            l4_ports(out, "spt", m.sport, m.sport_invert);
            l4_ports(out, "dpt", m.dport, m.dport_invert);
          },
          [&](const IcmpMatch& m) {
            // No space between "icmp" and "type" unless inverted: the kernel's quirk.
            put(out, " icmp{}type {}", m.invert ? " !" : "", m.type);
            if (m.code_lo == m.code_hi) {
              put(out, " code {}", m.code_lo);
            } else if (m.code_lo != 0 || m.code_hi != 0xff) {
              // A code range has no iptables input form; shown as iptables shows one.
              put(out, " codes {}-{}", m.code_lo, m.code_hi);
            }
          },
          [&](const MultiportMatch& m) {
            const char* dir = m.dir == MultiportMatch::Dir::Source        ? "sports"
                              : m.dir == MultiportMatch::Dir::Destination ? "dports"
                                                                          : "ports";
            put(out, " multiport {} {}", dir, m.invert ? " !" : "");
            for (size_t i = 0; i < m.ports.size(); ++i) {
              if (i != 0) out += ',';
              out += range(m.ports[i].lo, m.ports[i].hi, ':');
            }
          },
          [&](const ConntrackMatch& m) {
            using C = ConntrackMatch;
            auto opt = [&](C::Opt o, const char* name, const std::string& value) {
              if (m.has(o)) put(out, " {}{} {}", m.inverted(o) ? "! " : "", name, value);
            };
            opt(C::kState, "ctstate", format_ct_states(m.states));
            opt(C::kProto, "ctproto", std::to_string(m.proto));
            opt(C::kOrigSrc, "ctorigsrc", ct_addr(m.orig_src));
            opt(C::kOrigDst, "ctorigdst", ct_addr(m.orig_dst));
            opt(C::kReplSrc, "ctreplsrc", ct_addr(m.repl_src));
            opt(C::kReplDst, "ctrepldst", ct_addr(m.repl_dst));
            opt(C::kOrigSrcPort, "ctorigsrcport", range(m.orig_src_port.lo, m.orig_src_port.hi, ':'));
            opt(C::kOrigDstPort, "ctorigdstport", range(m.orig_dst_port.lo, m.orig_dst_port.hi, ':'));
            opt(C::kReplSrcPort, "ctreplsrcport", range(m.repl_src_port.lo, m.repl_src_port.hi, ':'));
            opt(C::kReplDstPort, "ctrepldstport", range(m.repl_dst_port.lo, m.repl_dst_port.hi, ':'));
            opt(C::kStatus, "ctstatus", format_ct_status(m.status));
            opt(C::kExpire, "ctexpire", range(m.expire_lo, m.expire_hi, ':'));
            // --ctdir cannot be inverted: the direction itself is the value.
            if (m.has(C::kDir)) put(out, " ctdir {}", m.dir == C::Dir::Original ? "ORIGINAL" : "REPLY");
          },
          [&](const StateMatch& m) { put(out, " {}state {}", m.invert ? "! " : "", format_ct_states(m.states)); },
          [&](const AddrtypeMatch& m) {
            out += " ADDRTYPE match";
            if (m.src_types != 0) put(out, " src-type {}{}", m.src_invert ? "!" : "", format_addr_types(m.src_types));
            if (m.dst_types != 0) put(out, " dst-type {}{}", m.dst_invert ? "!" : "", format_addr_types(m.dst_types));
            if (m.limit_iface_in) out += " limit-in";
            if (m.limit_iface_out) out += " limit-out";
          },
          [&](const CommentMatch& m) { put(out, " /* {} */", m.text); },
          [&](const MarkMatch& m) { put(out, " mark match {}{}", m.invert ? "! " : "", mark_mask(m.value, m.mask)); },
          [&](const ConnmarkMatch& m) {
            put(out, " connmark match {} {}", m.invert ? "!" : "", mark_mask(m.value, m.mask));
          },
          [&](const IprangeMatch& m) {
            if (m.has_src)
              put(out, " source IP range {}{}-{}", m.src_invert ? "! " : "", format_ipv4(m.src_lo), format_ipv4(m.src_hi));
            if (m.has_dst)
              put(out, " destination IP range {}{}-{}", m.dst_invert ? "! " : "", format_ipv4(m.dst_lo),
                  format_ipv4(m.dst_hi));
          },
          [&](const StringMatch& m) {
            put(out, " STRING match {} {} ALGO name {}", m.invert ? "!" : "", format_string_pattern(m.pattern),
                m.algo == StringMatch::Algo::Bm ? "bm" : "kmp");
            if (m.from != 0) put(out, " FROM {}", m.from);
            if (m.to != 65535) put(out, " TO {}", m.to);
            if (m.icase) out += " ICASE";
          },
          [&](const LimitMatch& m) { put(out, " limit: avg {} burst {}", format_limit_rate(m.avg), m.burst); },
          [&](const StatisticMatch& m) {
            if (m.mode == StatisticMatch::Mode::Random) {
              double p = static_cast<double>(m.probability) / static_cast<double>(StatisticMatch::kProbabilityOne);
              put(out, " statistic mode random{} probability {:.11f}", m.invert ? " !" : "", p);
            } else {
              put(out, " statistic mode nth{} every {}", m.invert ? " !" : "", m.every);
              if (m.packet != 0) put(out, " packet {}", m.packet);
            }
          },
          [&](const LengthMatch& m) { put(out, " length {}{}", m.invert ? "!" : "", range(m.min, m.max, ':')); },
          [&](const PkttypeMatch& m) {
            const char* name = "unicast";
            if (m.type == PkttypeMatch::Type::Broadcast) name = "broadcast";
            if (m.type == PkttypeMatch::Type::Multicast) name = "multicast";
            if (m.type == PkttypeMatch::Type::OtherHost) name = "otherhost";
            put(out, " PKTTYPE {}= {}", m.invert ? "!" : "", name);
          },
          [&](const MacMatch& m) {
            put(out, " MAC {}{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m.invert ? "! " : "", m.addr[0], m.addr[1],
                m.addr[2], m.addr[3], m.addr[4], m.addr[5]);
          },
          [&](const PortsMatch&) {
            throw LoadError(rule.where, "a protocol-agnostic port match (ClassBench input) has no iptables form; "
                                        "give the rule a protocol and a tcp/udp match instead");
          },
      },
      match);
}

/// The target column: the chain for -j/-g, `CT` for NOTRACK (the kernel
/// keeps it as a CT target), "" for no target, else the target's name.
std::string target_column(const Target& target) {
  if (std::holds_alternative<NotrackTarget>(target)) return "CT";
  return target_name(target);
}

/// Appends the target's text, led by a space (nothing for the verdicts,
/// jumps, gotos, TRACE and no target).
void list_target(std::string& out, const Target& target) {
  std::visit(
      Overloaded{
          [&](const NoTarget&) {},
          [&](const AcceptTarget&) {},
          [&](const DropTarget&) {},
          [&](const ReturnTarget&) {},
          [&](const JumpTarget&) {},
          [&](const GotoTarget&) {},
          [&](const TraceTarget&) {},
          [&](const RejectTarget& t) { put(out, " reject-with {}", reject_with_name(t.with)); },
          [&](const DnatTarget& t) {
            put(out, " to:{}", format_nat_range(t.range));
            if (t.range.random) out += " random";
            if (t.range.persistent) out += " persistent";
          },
          [&](const SnatTarget& t) {
            put(out, " to:{}", format_nat_range(t.range));
            if (t.range.random) out += " random";
            if (t.range.random_fully) out += " random-fully";
            if (t.range.persistent) out += " persistent";
          },
          [&](const MasqueradeTarget& t) {
            if (t.has_ports) put(out, " masq ports: {}", range(t.ports.lo, t.ports.hi, '-'));
            if (t.random) out += " random";
            if (t.random_fully) out += " random-fully";
          },
          [&](const RedirectTarget& t) {
            if (t.has_ports) put(out, " redir ports {}", range(t.ports.lo, t.ports.hi, '-'));
            if (t.random) out += " random";
          },
          [&](const LogTarget& t) {
            // The prefix is printed raw between quotes, nothing escaped.
            put(out, " LOG flags {} level {}", t.flags, t.level);
            if (!t.prefix.empty()) put(out, " prefix \"{}\"", t.prefix);
          },
          [&](const MarkTarget& t) { put(out, " MARK {}", xmark(t.value, t.mask)); },
          [&](const ConnmarkTarget& t) {
            switch (t.mode) {
              case ConnmarkTarget::Mode::SetXmark:
                put(out, " CONNMARK {}", xmark(t.value, t.ctmask));
                break;
              case ConnmarkTarget::Mode::Save:
                // The mask applied last is printed with a `~`, as iptables does.
                if (t.nfmask == t.ctmask) {
                  out += " CONNMARK save";
                  if (t.nfmask != 0xffffffffU) put(out, " mask {}", hex(t.nfmask));
                } else {
                  put(out, " CONNMARK save nfmask {} ctmask ~{}", hex(t.nfmask), hex(t.ctmask));
                }
                break;
              case ConnmarkTarget::Mode::Restore:
                if (t.nfmask == t.ctmask) {
                  out += " CONNMARK restore";
                  if (t.ctmask != 0xffffffffU) put(out, " mask {}", hex(t.ctmask));
                } else {
                  put(out, " CONNMARK restore ctmask {} nfmask ~{}", hex(t.ctmask), hex(t.nfmask));
                }
                break;
            }
          },
          [&](const NotrackTarget&) { out += " NOTRACK"; },
          [&](const CtTarget& t) {
            out += " CT";
            if (t.notrack) out += " notrack";
            if (t.ctevents != 0) put(out, " ctevents {}", ct_events(t.ctevents));
            if (t.expevents != 0) put(out, " expevents {}", ct_events(t.expevents));
            if (t.zone != 0 || t.zone_from_mark) {
              // One direction only names itself; both or neither print "zone".
              const char* opt = t.zone_orig == t.zone_reply ? "zone" : t.zone_orig ? "zone-orig" : "zone-reply";
              put(out, " {} {}", opt, t.zone_from_mark ? std::string("mark") : std::to_string(t.zone));
            }
          },
      },
      target);
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
  for (const Match& m : rule.matches) list_match(out, rule, m);
  list_target(out, rule.target);
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
