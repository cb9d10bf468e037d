// Ruleset -> the kernel's canonical iptables-save text (see iptables_save.h).
//
// Each print rule below reproduces what iptables-legacy-save (1.8.9) prints
// for the kernel's stored form of the option, checked against the kernel:
// defaults are left out, name lists come in the kernel's bit order, marks in
// hex, conntrack options in the kernel's order whatever order they were given.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/overloaded.h"
#include "rules/iptables_save.h"

namespace nfb {
namespace {

/// Appends " word" to a line under construction.
class Line {
 public:
  Line& add(std::string_view word) {
    if (!out_.empty()) out_ += ' ';
    out_ += word;
    return *this;
  }
  Line& inv(bool invert) {
    if (invert) add("!");
    return *this;
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

/// An argument as iptables-save quotes it: bare when it is a non-empty run
/// of [A-Za-z0-9_-], else double-quoted with `"`, `\` and `'` escaped.
std::string save_string(std::string_view s) {
  bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
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

std::string addr_mask(const Ipv4Mask& a) {
  int len = mask_prefix_length(a.mask);
  if (len >= 0) return fmt::format("{}/{}", format_ipv4(a.addr), len);
  return fmt::format("{}/{}", format_ipv4(a.addr), format_ipv4(a.mask));
}

/// Conntrack addresses: the address as given, a prefix length when the mask
/// is contiguous and not /32, nothing for other masks (as the kernel prints).
std::string ct_addr(const Ipv4Mask& a) {
  int len = mask_prefix_length(a.mask);
  if (len < 0 || len == 32) return format_ipv4(a.addr);
  return fmt::format("{}/{}", format_ipv4(a.addr), len);
}

std::string port_range(const PortRange& r, char sep = ':') {
  if (r.lo == r.hi) return std::to_string(r.lo);
  return fmt::format("{}{}{}", r.lo, sep, r.hi);
}

std::string tcp_flags(uint8_t bits) {
  static constexpr std::pair<uint8_t, const char*> kNames[] = {
      {tcp_flag::kFin, "FIN"}, {tcp_flag::kSyn, "SYN"}, {tcp_flag::kRst, "RST"}, {tcp_flag::kPsh, "PSH"},
      {tcp_flag::kAck, "ACK"}, {tcp_flag::kUrg, "URG"}, {tcp_flag::kEce, "ECE"}, {tcp_flag::kCwr, "CWR"},
  };
  if (bits == 0) return "NONE";
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((bits & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

std::string hex32(uint32_t v) { return fmt::format("0x{:x}", v); }

std::string mark_mask(uint32_t value, uint32_t mask) {
  if (mask == 0xffffffff) return hex32(value);
  return fmt::format("0x{:x}/0x{:x}", value, mask);
}




[[noreturn]] void unwritable(const Rule& rule, const std::string& what) {
  throw LoadError(rule.where, what);
}

void write_match(Line& l, const Rule& rule, const Match& match) {
  std::visit(
      Overloaded{
          [&](const TcpMatch& m) {
            l.add("-m tcp");
            if (!m.sport.is_any()) l.inv(m.sport_invert).add("--sport").add(port_range(m.sport));
            if (!m.dport.is_any()) l.inv(m.dport_invert).add("--dport").add(port_range(m.dport));
            if (m.option != 0) l.inv(m.option_invert).add("--tcp-option").add(std::to_string(m.option));
            if (m.flags_mask != 0 || m.flags_invert)
              l.inv(m.flags_invert).add("--tcp-flags").add(tcp_flags(m.flags_mask)).add(tcp_flags(m.flags_cmp));
          },
          [&](const UdpMatch& m) {
            l.add("-m udp");
            if (!m.sport.is_any()) l.inv(m.sport_invert).add("--sport").add(port_range(m.sport));
            if (!m.dport.is_any()) l.inv(m.dport_invert).add("--dport").add(port_range(m.dport));
          },
          [&](const IcmpMatch& m) {
            l.add("-m icmp").inv(m.invert).add("--icmp-type");
            if (m.is_any_type()) {
              l.add("any");
            } else if (m.code_lo == 0 && m.code_hi == 0xff) {
              l.add(std::to_string(m.type));
            } else if (m.code_lo == m.code_hi) {
              l.add(fmt::format("{}/{}", m.type, m.code_lo));
            } else {
              l.add(fmt::format("{}/{}-{}", m.type, m.code_lo, m.code_hi));
            }
          },
          [&](const MultiportMatch& m) {
            l.add("-m multiport").inv(m.invert);
            l.add(m.dir == MultiportMatch::Dir::Source        ? "--sports"
                  : m.dir == MultiportMatch::Dir::Destination ? "--dports"
                                                              : "--ports");
            std::string list;
            for (const PortRange& r : m.ports) {
              if (!list.empty()) list += ',';
              list += port_range(r);
            }
            l.add(list);
          },
          [&](const ConntrackMatch& m) {
            using C = ConntrackMatch;
            l.add("-m conntrack");
            auto opt = [&](C::Opt o, const char* name, const std::string& value) {
              if (m.has(o)) l.inv(m.inverted(o)).add(name).add(value);
            };
            opt(C::kState, "--ctstate", format_ct_states(m.states));
            opt(C::kProto, "--ctproto", std::to_string(m.proto));
            opt(C::kOrigSrc, "--ctorigsrc", ct_addr(m.orig_src));
            opt(C::kOrigDst, "--ctorigdst", ct_addr(m.orig_dst));
            opt(C::kReplSrc, "--ctreplsrc", ct_addr(m.repl_src));
            opt(C::kReplDst, "--ctrepldst", ct_addr(m.repl_dst));
            opt(C::kOrigSrcPort, "--ctorigsrcport", port_range(m.orig_src_port));
            opt(C::kOrigDstPort, "--ctorigdstport", port_range(m.orig_dst_port));
            opt(C::kReplSrcPort, "--ctreplsrcport", port_range(m.repl_src_port));
            opt(C::kReplDstPort, "--ctrepldstport", port_range(m.repl_dst_port));
            opt(C::kStatus, "--ctstatus", format_ct_status(m.status));
            opt(C::kExpire, "--ctexpire",
                m.expire_lo == m.expire_hi ? std::to_string(m.expire_lo)
                                           : fmt::format("{}:{}", m.expire_lo, m.expire_hi));
            if (m.has(C::kDir)) l.add("--ctdir").add(m.dir == C::Dir::Original ? "ORIGINAL" : "REPLY");
          },
          [&](const StateMatch& m) { l.add("-m state").inv(m.invert).add("--state").add(format_ct_states(m.states)); },
          [&](const AddrtypeMatch& m) {
            l.add("-m addrtype");
            if (m.src_types != 0) l.inv(m.src_invert).add("--src-type").add(format_addr_types(m.src_types));
            if (m.dst_types != 0) l.inv(m.dst_invert).add("--dst-type").add(format_addr_types(m.dst_types));
            if (m.limit_iface_in) l.add("--limit-iface-in");
            if (m.limit_iface_out) l.add("--limit-iface-out");
          },
          [&](const CommentMatch& m) { l.add("-m comment --comment").add(save_string(m.text)); },
          [&](const MarkMatch& m) { l.add("-m mark").inv(m.invert).add("--mark").add(mark_mask(m.value, m.mask)); },
          [&](const ConnmarkMatch& m) {
            l.add("-m connmark").inv(m.invert).add("--mark").add(mark_mask(m.value, m.mask));
          },
          [&](const IprangeMatch& m) {
            l.add("-m iprange");
            if (m.has_src)
              l.inv(m.src_invert).add("--src-range").add(format_ipv4(m.src_lo) + "-" + format_ipv4(m.src_hi));
            if (m.has_dst)
              l.inv(m.dst_invert).add("--dst-range").add(format_ipv4(m.dst_lo) + "-" + format_ipv4(m.dst_hi));
          },
          [&](const StringMatch& m) {
            const std::string pat = format_string_pattern(m.pattern);
            l.add("-m string").inv(m.invert).add(string_pattern_needs_hex(m.pattern) ? "--hex-string" : "--string").add(pat);
            l.add("--algo").add(m.algo == StringMatch::Algo::Bm ? "bm" : "kmp");
            if (m.from != 0) l.add("--from").add(std::to_string(m.from));
            if (m.to != 65535) l.add("--to").add(std::to_string(m.to));
            if (m.icase) l.add("--icase");
          },
          [&](const LimitMatch& m) {
            l.add("-m limit --limit").add(format_limit_rate(m.avg));
            if (m.burst != 5) l.add("--limit-burst").add(std::to_string(m.burst));
          },
          [&](const StatisticMatch& m) {
            l.add("-m statistic");
            if (m.mode == StatisticMatch::Mode::Random) {
              double p = static_cast<double>(m.probability) / static_cast<double>(StatisticMatch::kProbabilityOne);
              l.add("--mode random").inv(m.invert).add("--probability").add(fmt::format("{:.11f}", p));
            } else {
              l.add("--mode nth").inv(m.invert).add("--every").add(std::to_string(m.every));
              l.add("--packet").add(std::to_string(m.packet));
            }
          },
          [&](const LengthMatch& m) {
            l.add("-m length").inv(m.invert).add("--length");
            l.add(m.min == m.max ? std::to_string(m.min) : fmt::format("{}:{}", m.min, m.max));
          },
          [&](const PkttypeMatch& m) {
            const char* name = "unicast";
            if (m.type == PkttypeMatch::Type::Broadcast) name = "broadcast";
            if (m.type == PkttypeMatch::Type::Multicast) name = "multicast";
            if (m.type == PkttypeMatch::Type::OtherHost) name = "otherhost";
            l.add("-m pkttype").inv(m.invert).add("--pkt-type").add(name);
          },
          [&](const MacMatch& m) {
            l.add("-m mac").inv(m.invert).add("--mac-source");
            l.add(fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m.addr[0], m.addr[1], m.addr[2], m.addr[3],
                              m.addr[4], m.addr[5]));
          },
          [&](const PortsMatch&) {
            unwritable(rule, "a protocol-agnostic port match (ClassBench input) has no iptables form; "
                             "give the rule a protocol and a tcp/udp match instead");
          },
      },
      match);
}

void write_target(Line& l, const Target& target) {
  std::visit(
      Overloaded{
          [&](const NoTarget&) {},
          [&](const AcceptTarget&) { l.add("-j ACCEPT"); },
          [&](const DropTarget&) { l.add("-j DROP"); },
          [&](const ReturnTarget&) { l.add("-j RETURN"); },
          [&](const RejectTarget& t) { l.add("-j REJECT --reject-with").add(reject_with_name(t.with)); },
          [&](const JumpTarget& t) { l.add("-j").add(t.chain); },
          [&](const GotoTarget& t) { l.add("-g").add(t.chain); },
          [&](const DnatTarget& t) {
            l.add("-j DNAT --to-destination").add(format_nat_range(t.range));
            if (t.range.random) l.add("--random");
            if (t.range.persistent) l.add("--persistent");
          },
          [&](const SnatTarget& t) {
            l.add("-j SNAT --to-source").add(format_nat_range(t.range));
            if (t.range.random) l.add("--random");
            if (t.range.random_fully) l.add("--random-fully");
            if (t.range.persistent) l.add("--persistent");
          },
          [&](const MasqueradeTarget& t) {
            l.add("-j MASQUERADE");
            if (t.has_ports) l.add("--to-ports").add(port_range(t.ports, '-'));
            if (t.random) l.add("--random");
            if (t.random_fully) l.add("--random-fully");
          },
          [&](const RedirectTarget& t) {
            l.add("-j REDIRECT");
            if (t.has_ports) l.add("--to-ports").add(port_range(t.ports, '-'));
            if (t.random) l.add("--random");
          },
          [&](const LogTarget& t) {
            l.add("-j LOG");
            if (!t.prefix.empty()) l.add("--log-prefix").add(save_string(t.prefix));
            if (t.level != 4) l.add("--log-level").add(std::to_string(t.level));
            if (t.flags & LogTarget::kTcpSequence) l.add("--log-tcp-sequence");
            if (t.flags & LogTarget::kTcpOptions) l.add("--log-tcp-options");
            if (t.flags & LogTarget::kIpOptions) l.add("--log-ip-options");
            if (t.flags & LogTarget::kUid) l.add("--log-uid");
            if (t.flags & LogTarget::kMacDecode) l.add("--log-macdecode");
          },
          [&](const MarkTarget& t) { l.add("-j MARK --set-xmark").add(fmt::format("0x{:x}/0x{:x}", t.value, t.mask)); },
          [&](const ConnmarkTarget& t) {
            l.add("-j CONNMARK");
            switch (t.mode) {
              case ConnmarkTarget::Mode::SetXmark:
                l.add("--set-xmark").add(fmt::format("0x{:x}/0x{:x}", t.value, t.ctmask));
                break;
              case ConnmarkTarget::Mode::Save:
              case ConnmarkTarget::Mode::Restore:
                l.add(t.mode == ConnmarkTarget::Mode::Save ? "--save-mark" : "--restore-mark");
                l.add("--nfmask").add(hex32(t.nfmask)).add("--ctmask").add(hex32(t.ctmask));
                break;
            }
          },
          [&](const NotrackTarget&) { l.add("-j NOTRACK"); },
          [&](const CtTarget& t) {
            static constexpr const char* kEvents[] = {"new", "related", "destroy", "reply", "assured",
                                                      "protoinfo", "helper", "mark", "natseqinfo", "secmark"};
            auto events = [&](uint16_t bits) {
              std::string out;
              for (size_t i = 0; i < std::size(kEvents); ++i) {
                if ((bits & (1U << i)) == 0) continue;
                if (!out.empty()) out += ',';
                out += kEvents[i];
              }
              return out;
            };
            l.add("-j CT");
            if (t.notrack) l.add("--notrack");
            if (t.ctevents != 0) l.add("--ctevents").add(events(t.ctevents));
            if (t.expevents != 0) l.add("--expevents").add(events(t.expevents));
            if (t.zone != 0 || t.zone_from_mark) {
              // One direction only prints its own option; both or none print --zone.
              const char* opt = t.zone_orig == t.zone_reply ? "--zone" : t.zone_orig ? "--zone-orig" : "--zone-reply";
              l.add(opt).add(t.zone_from_mark ? std::string("mark") : std::to_string(t.zone));
            }
          },
          [&](const TraceTarget&) { l.add("-j TRACE"); },
      },
      target);
}

}  // namespace

std::string write_rule_spec(const Rule& rule) {
  Line l;
  if (rule.src.mask != 0 || rule.src_invert) l.inv(rule.src_invert).add("-s").add(addr_mask(rule.src));
  if (rule.dst.mask != 0 || rule.dst_invert) l.inv(rule.dst_invert).add("-d").add(addr_mask(rule.dst));
  for (const auto& [flag, iface] : {std::pair{"-i", &rule.in_iface}, std::pair{"-o", &rule.out_iface}}) {
    if (iface->name.empty()) continue;  // no name, or "+" alone: the kernel prints nothing
    l.inv(iface->invert).add(flag).add(iface->name + (iface->wildcard ? "+" : ""));
  }
  if (rule.protocol != 0) {
    const char* name = protocol_name(rule.protocol);
    l.inv(rule.protocol_invert).add("-p").add(name ? std::string(name) : std::to_string(rule.protocol));
  }
  if (rule.fragment) l.inv(rule.fragment_invert).add("-f");
  for (const Match& m : rule.matches) write_match(l, rule, m);
  write_target(l, rule.target);
  return std::move(l.str());
}

std::string write_iptables_save(const Ruleset& ruleset, WriteOptions options) {
  std::string out;
  for (const Table& table : ruleset.tables) {
    if (options.header_comments) out += "# Generated by nfbench\n";
    out += fmt::format("*{}\n", table_name(table.id));
    std::vector<const Chain*> builtins, users;
    for (const Chain& c : table.chains) (c.builtin() ? builtins : users).push_back(&c);
    std::sort(builtins.begin(), builtins.end(), [](const Chain* a, const Chain* b) { return *a->hook < *b->hook; });
    std::sort(users.begin(), users.end(), [](const Chain* a, const Chain* b) { return a->name < b->name; });
    for (const Chain* c : builtins) {
      Counters k = options.counters ? c->policy_counters : Counters{};
      out += fmt::format(":{} {} [{}:{}]\n", c->name, policy_name(c->policy), k.packets, k.bytes);
    }
    for (const Chain* c : users) out += fmt::format(":{} - [0:0]\n", c->name);
    for (const auto* list : {&builtins, &users}) {
      for (const Chain* c : *list) {
        for (const Rule& r : c->rules) {
          if (options.counters) {
            Counters k = r.counters.value_or(Counters{});
            out += fmt::format("[{}:{}] ", k.packets, k.bytes);
          }
          std::string spec = write_rule_spec(r);
          out += "-A ";
          out += c->name;
          if (!spec.empty()) {
            out += ' ';
            out += spec;
          }
          out += '\n';
        }
      }
    }
    out += "COMMIT\n";
    if (options.header_comments) out += "# Completed\n";
  }
  return out;
}

}  // namespace nfb
