#include "analysis/explain.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

#include "base/load_error.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"

namespace nfb {
namespace {

struct Token {
  std::string_view text;
  size_t column;  // 1-based
};

std::vector<Token> tokens_of(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back({s.substr(start, i - start), start + 1});
  }
  return out;
}

[[noreturn]] void bad(const std::string& what, size_t column, const std::string& why) {
  throw LoadError(SourceLocation{what, 1, static_cast<uint32_t>(column)}, why);
}

uint32_t parse_addr(const Token& t, std::string_view s, const std::string& what) {
  const std::optional<uint32_t> addr = parse_ipv4(s);
  if (!addr) bad(what, t.column, "expected an IPv4 address like 203.0.113.5");
  return *addr;
}

void parse_endpoint(const Token& t, bool ports, uint32_t& addr, uint16_t& port, const std::string& what) {
  const size_t colon = t.text.find(':');
  if (ports != (colon != std::string_view::npos)) {
    bad(what, t.column, ports ? "expected ADDRESS:PORT" : "expected an address without a port (icmp)");
  }
  addr = parse_addr(t, t.text.substr(0, colon), what);
  if (!ports) return;
  const std::string_view p = t.text.substr(colon + 1);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc{} || end != p.data() + p.size() || v > 65535) {
    bad(what, t.column + colon + 1, "expected a port 0..65535");
  }
  port = static_cast<uint16_t>(v);
}

const char* proto_name(uint8_t p) { return p == kProtoTcp ? "tcp" : p == kProtoUdp ? "udp" : "icmp"; }

// "k=v" fields of a TRACE line.
std::string field(std::string_view line, std::string_view key) {
  std::string k(1, ' ');  // (not " " + key: g++ 12 warns falsely about that concatenation)
  k.append(key);
  k.push_back('=');
  const size_t at = line.find(k);
  if (at == std::string_view::npos) return {};
  const size_t start = at + k.size();
  const size_t end = line.find(' ', start);
  return std::string(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

std::string rule_text(const Ruleset& rules, const std::string& table, const std::string& chain, const std::string& kind,
                      uint32_t rulenum) {
  for (const Table& t : rules.tables) {
    if (table != table_name(t.id)) continue;
    const auto idx = t.find_chain(chain);
    if (!idx) return {};
    const Chain& c = t.chains[*idx];
    if (kind == "policy") return fmt::format("policy {}", policy_name(c.policy));
    if (kind == "return") return "end of chain: back to the caller";
    if (rulenum >= 1 && rulenum <= c.rules.size()) {
      return fmt::format("-A {} {}", chain, write_rule_spec(c.rules[rulenum - 1]));
    }
  }
  return {};
}

}  // namespace

Probe parse_probe(std::string_view text, const std::string& what) {
  const std::vector<Token> t = tokens_of(text);
  if (t.size() != 6 || t[2].text != "->" || t[4].text != "in") {
    bad(what, t.empty() ? 1 : t[0].column, "expected \"PROTO SRC[:PORT] -> DST[:PORT] in IFACE\"");
  }
  Probe p;
  if (t[0].text == "tcp") {
    p.proto = kProtoTcp;
  } else if (t[0].text == "udp") {
    p.proto = kProtoUdp;
  } else if (t[0].text == "icmp") {
    p.proto = kProtoIcmp;
  } else {
    bad(what, t[0].column, "expected tcp, udp or icmp");
  }
  const bool ports = p.proto != kProtoIcmp;
  parse_endpoint(t[1], ports, p.src, p.sport, what);
  parse_endpoint(t[3], ports, p.dst, p.dport, what);
  p.in_iface = std::string(t[5].text);
  return p;
}

std::string format_probe(const Probe& p) {
  if (p.proto == kProtoIcmp) {
    return fmt::format("icmp {} -> {} in {}{}", format_ipv4(p.src), format_ipv4(p.dst), p.in_iface,
                       p.icmp_type == 0 ? " (echo reply)" : "");
  }
  std::string flags;
  if (p.proto == kProtoTcp) {
    flags = (p.tcp_flags & 0x02) != 0 ? ((p.tcp_flags & 0x10) != 0 ? " [SYN,ACK]" : " [SYN]") : " [ACK]";
  }
  return fmt::format("{} {}:{} -> {}:{} in {}{}", proto_name(p.proto), format_ipv4(p.src), p.sport,
                     format_ipv4(p.dst), p.dport, p.in_iface, flags);
}

std::vector<uint8_t> probe_frame(const Probe& p, const HostModel& host) {
  const auto id = host.iface_id(p.in_iface);
  if (!id) throw LoadError(SourceLocation{"--packet"}, "the host has no interface \"" + p.in_iface + "\"");
  std::vector<uint8_t> f(14, 0);
  const Interface& ifc = host.iface(*id);
  if (ifc.has_mac) std::copy(ifc.mac.begin(), ifc.mac.end(), f.begin());
  const uint8_t peer[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};
  std::copy(peer, peer + 6, f.begin() + 6);
  f[12] = 0x08;
  f[13] = 0x00;
  std::vector<uint8_t> l4;
  if (p.proto == kProtoTcp) {
    l4.assign(20, 0);
    store_be16(l4.data(), p.sport);
    store_be16(l4.data() + 2, p.dport);
    store_be32(l4.data() + 4, p.seq);
    store_be32(l4.data() + 8, p.ack);
    l4[12] = 5 << 4;
    l4[13] = p.tcp_flags;
    store_be16(l4.data() + 14, 64240);
  } else if (p.proto == kProtoUdp) {
    l4.assign(8, 0);
    store_be16(l4.data(), p.sport);
    store_be16(l4.data() + 2, p.dport);
    store_be16(l4.data() + 4, 8);
  } else {
    l4.assign(8, 0);
    l4[0] = p.icmp_type;
    store_be16(l4.data() + 4, 0x1234);  // identifier
    store_be16(l4.data() + 6, 1);       // sequence
  }
  std::vector<uint8_t> ip(20, 0);
  ip[0] = 0x45;
  store_be16(ip.data() + 2, static_cast<uint16_t>(20 + l4.size()));
  store_be16(ip.data() + 4, 1);
  store_be16(ip.data() + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = p.proto;
  store_be32(ip.data() + 12, p.src);
  store_be32(ip.data() + 16, p.dst);
  store_be16(ip.data() + 10, internet_checksum(ip.data(), ip.size()));
  if (p.proto == kProtoIcmp) {
    store_be16(l4.data() + 2, internet_checksum(l4.data(), l4.size()));
  } else {
    const uint64_t pseudo = (p.src >> 16) + (p.src & 0xffff) + (p.dst >> 16) + (p.dst & 0xffff) + p.proto + l4.size();
    const size_t at = p.proto == kProtoTcp ? 16 : 6;
    store_be16(l4.data() + at, internet_checksum(l4.data(), l4.size(), pseudo));
  }
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), l4.begin(), l4.end());
  while (f.size() < 60) f.push_back(0);
  return f;
}

Explanation explain_probe(Pipeline& pipeline, const Ruleset& rules, const HostModel& host, const Probe& probe,
                          uint64_t ts_ns) {
  Explanation e;
  e.probe = probe;
  std::vector<uint8_t> frame = probe_frame(probe, host);
  const uint16_t in_id = *host.iface_id(probe.in_iface);
  PacketIn in;
  if (parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, in_id, in.key) !=
      ParseStatus::Ok) {
    throw LoadError(SourceLocation{"--packet"}, "the packet does not parse");  // cannot happen: we built it
  }
  in.frame = frame.data();
  in.len = static_cast<uint32_t>(frame.size());
  in.in_iface = in_id;
  in.ts_ns = ts_ns;
  PacketOut out;
  std::string trace;
  pipeline.set_trace(&trace);
  pipeline.process(std::span(&in, 1), std::span(&out, 1));
  pipeline.set_trace(nullptr);
  e.fate = out.fate;
  e.ct_state = out.ct_state;

  std::istringstream lines(trace);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("TRACE: ")) continue;
    const size_t sp = line.find(' ', 7);
    const std::string head = line.substr(7, sp - 7);  // table:chain:kind:num
    const size_t c1 = head.find(':');
    const size_t c3 = head.rfind(':');
    const size_t c2 = head.rfind(':', c3 - 1);
    ExplainStep s;
    s.table = head.substr(0, c1);
    s.chain = head.substr(c1 + 1, c2 - c1 - 1);
    s.kind = head.substr(c2 + 1, c3 - c2 - 1);
    s.rulenum = static_cast<uint32_t>(std::stoul(head.substr(c3 + 1)));
    s.rule = rule_text(rules, s.table, s.chain, s.kind, s.rulenum);
    const std::string proto = field(line, "PROTO");
    const std::string spt = field(line, "SPT");
    std::string tuple = proto == "TCP" || proto == "UDP"
                            ? fmt::format("{} {}:{} -> {}:{}", proto == "TCP" ? "tcp" : "udp", field(line, "SRC"), spt,
                                          field(line, "DST"), field(line, "DPT"))
                            : fmt::format("{} {} -> {}", proto == "ICMP" ? "icmp" : proto, field(line, "SRC"),
                                          field(line, "DST"));
    if (const std::string i = field(line, "IN"); !i.empty()) tuple += " in " + i;
    if (const std::string o = field(line, "OUT"); !o.empty()) tuple += " out " + o;
    s.tuple = tuple;
    e.steps.push_back(std::move(s));
  }

  e.emitted = fate_emitted(out.fate) && in.frame != nullptr;
  if (e.fate == Fate::Forwarded) e.out_iface = host.iface(out.out_iface).name;
  if (e.emitted) {
    // The frame as it leaves, after NAT.
    PacketKey k;
    if (parse_frame(in.frame, in.len, LinkType::Ethernet, in_id, k) == ParseStatus::Ok) {
      e.leaves = probe;
      e.leaves.src = k.src_ip;
      e.leaves.dst = k.dst_ip;
      e.leaves.sport = k.src_port;
      e.leaves.dport = k.dst_port;
      e.leaves.in_iface = e.fate == Fate::Forwarded ? e.out_iface : probe.in_iface;
    }
  }
  return e;
}

Probe reply_probe(const Explanation& e) {
  Probe r = e.leaves;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  if (r.proto == kProtoTcp) {
    const bool syn = (e.probe.tcp_flags & 0x02) != 0;
    r.tcp_flags = syn ? 0x12 : 0x10;
    r.seq = syn ? Probe::kServerIsn : e.probe.ack;
    r.ack = e.probe.seq + (syn ? 1U : 0U);
  }
  if (r.proto == kProtoIcmp) r.icmp_type = 0;
  return r;
}

Probe later_probe(const Probe& first) {
  Probe p = first;
  if (p.proto == kProtoTcp) {
    p.tcp_flags = 0x10;
    p.seq = Probe::kClientIsn + 1;
    p.ack = Probe::kServerIsn + 1;
  }
  return p;
}

std::string format_explanation(const Explanation& e) {
  std::string s = fmt::format("packet: {}\n", format_probe(e.probe));
  std::string last_tuple;
  for (const ExplainStep& st : e.steps) {
    if (st.tuple != last_tuple) {
      s += fmt::format("  as seen: {}\n", st.tuple);
      last_tuple = st.tuple;
    }
    const std::string where = fmt::format("{} {}", st.table, st.chain);
    if (st.kind == "rule") {
      s += fmt::format("    {:<28} rule {:>3}  {}\n", where, st.rulenum, st.rule);
    } else {
      s += fmt::format("    {:<28} {:<8}  {}\n", where, st.kind, st.rule);
    }
  }
  std::string state;
  if ((e.ct_state & kCtInvalid) != 0) state = "INVALID";
  else if ((e.ct_state & kCtUntracked) != 0) state = "UNTRACKED";
  else if ((e.ct_state & kCtRelated) != 0) state = "RELATED";
  else if ((e.ct_state & kCtEstablished) != 0) state = "ESTABLISHED";
  else if ((e.ct_state & kCtNew) != 0) state = "NEW";
  s += fmt::format("verdict: {} ({}){}{}\n", fate_name(e.fate), fate_description(e.fate),
                   state.empty() ? "" : ", ctstate " + state,
                   e.out_iface.empty() ? "" : ", out " + e.out_iface);
  if (e.emitted) {
    std::string leaves = format_probe(e.leaves);
    if (const size_t at = leaves.find(" in "); at != std::string::npos && e.fate == Fate::Forwarded) {
      leaves = leaves.substr(0, at) + " out " + leaves.substr(at + 4);
    }
    s += fmt::format("leaves as: {}\n", leaves);
  }
  return s;
}

}  // namespace nfb
