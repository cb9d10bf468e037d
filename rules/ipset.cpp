// `ipset save` reader.
#include "rules/ipset.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "base/load_error.h"
#include "base/text.h"
#include "packet/ip_protocol.h"
#include "rules/matches/icmp.h"
#include "rules/option_values.h"
#include "rules/values.h"

namespace nfb {

size_t IpSet::KeyHash::operator()(const Key& k) const noexcept {
  uint64_t h = (uint64_t{k.ip} << 32 | k.ip2) * 0x9e3779b97f4a7c15ULL;
  h ^= (uint64_t{k.port} << 24 | uint64_t{k.proto} << 16 | uint64_t{k.cidr} << 8 | k.cidr2) * 0xc2b2ae3d27d4eb4fULL;
  return static_cast<size_t>(h ^ (h >> 29));
}

uint32_t IpSet::dimensions() const noexcept {
  switch (type) {
    case IpSetType::HashIp: case IpSetType::HashNet: case IpSetType::BitmapIp: case IpSetType::BitmapPort:
    case IpSetType::ListSet: case IpSetType::Unsupported:
      return 1;
    case IpSetType::HashIpPort: case IpSetType::HashNetPort: return 2;
    case IpSetType::HashIpPortIp: case IpSetType::HashIpPortNet: return 3;
  }
  return 1;
}

bool IpSet::has_nomatch() const noexcept {
  return type == IpSetType::HashNet || type == IpSetType::HashNetPort || type == IpSetType::HashIpPortNet;
}

const char* IpSet::type_name() const noexcept {
  switch (type) {
    case IpSetType::HashIp: return "hash:ip";
    case IpSetType::HashNet: return "hash:net";
    case IpSetType::HashIpPort: return "hash:ip,port";
    case IpSetType::HashNetPort: return "hash:net,port";
    case IpSetType::HashIpPortIp: return "hash:ip,port,ip";
    case IpSetType::HashIpPortNet: return "hash:ip,port,net";
    case IpSetType::BitmapIp: return "bitmap:ip";
    case IpSetType::BitmapPort: return "bitmap:port";
    case IpSetType::ListSet: return "list:set";
    case IpSetType::Unsupported: return unsupported.c_str();
  }
  return "?";
}

const IpSet* IpSets::find(std::string_view name) const noexcept {
  for (const IpSet& s : sets_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}
IpSet* IpSets::find(std::string_view name) noexcept {
  for (IpSet& s : sets_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}
uint32_t IpSets::index_of(std::string_view name) const noexcept {
  for (size_t i = 0; i < sets_.size(); ++i) {
    if (sets_[i].name == name) return static_cast<uint32_t>(i);
  }
  return UINT32_MAX;
}

void IpSets::reset() noexcept {
  for (size_t i = 0; i < sets_.size(); ++i) sets_[i].elems = loaded_[i];
  started_ = false;
  start_ns_ = 0;
}

namespace {

struct Word {
  std::string text;
  uint32_t col;
};

/// The line's words; a double-quoted word (a comment) keeps its spaces.
std::vector<Word> words_of(std::string_view line) {
  std::vector<Word> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    const auto col = static_cast<uint32_t>(i + 1);
    std::string w;
    if (line[i] == '"') {
      ++i;
      while (i < line.size() && line[i] != '"') w += line[i++];
      if (i < line.size()) ++i;
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') w += line[i++];
    }
    out.push_back({std::move(w), col});
  }
  return out;
}

class Parser {
 public:
  Parser(const std::string& file, uint32_t line) : file_(file), line_(line) {}
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const {
    throw LoadError(SourceLocation{file_, line_, col}, msg);
  }
  uint32_t u32(const Word& w, const char* what) const {
    auto v = parse_c_uint(w.text, UINT32_MAX);
    if (!v) fail(w.col, fmt::format("bad {} \"{}\" (expected 0-4294967295)", what, w.text));
    return static_cast<uint32_t>(*v);
  }
  uint64_t u64(const Word& w, const char* what) const {
    auto v = parse_c_uint(w.text, UINT64_MAX);
    if (!v) fail(w.col, fmt::format("bad {} \"{}\"", what, w.text));
    return *v;
  }
  uint32_t ip(std::string_view s, uint32_t col) const {
    auto v = parse_ipv4(s);
    if (!v) fail(col, fmt::format("bad address \"{}\" (expected a.b.c.d)", s));
    return *v;
  }
  /// "a.b.c.d" or "a.b.c.d/N".
  std::pair<uint32_t, uint8_t> net(std::string_view s, uint32_t col) const {
    const size_t slash = s.find('/');
    const uint32_t a = ip(s.substr(0, slash), col);
    uint8_t len = 32;
    if (slash != std::string_view::npos) {
      auto n = parse_dec_uint(s.substr(slash + 1), 32);
      if (!n || *n == 0) fail(col, fmt::format("bad prefix in \"{}\" (expected /1-/32)", s));
      len = static_cast<uint8_t>(*n);
    }
    return {a & prefix_mask(len), len};
  }
  /// "[proto:]port": tcp by default; icmp:TYPE/CODE or a name.
  std::pair<uint16_t, uint8_t> port(std::string_view s, uint32_t col) const {
    uint8_t proto = kProtoTcp;
    std::string_view p = s;
    const size_t colon = s.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = s.substr(0, colon);
      p = s.substr(colon + 1);
      if (name == "tcp") proto = kProtoTcp;
      else if (name == "udp") proto = kProtoUdp;
      else if (name == "sctp") proto = kProtoSctp;
      else if (name == "udplite") proto = kProtoUdplite;
      else if (name == "icmp") {
        return {icmp_port(p, col), kProtoIcmp};
      } else {
        auto n = parse_protocol(name);
        if (!n) fail(col, fmt::format("unknown protocol \"{}\" in \"{}\"", name, s));
        proto = *n;
        // Protocols without ports: only 0.
        if (p != "0") fail(col, fmt::format("protocol {} has no ports: write {}:0", name, name));
        return {0, proto};
      }
    }
    auto v = parse_dec_uint(p, 65535);
    if (!v) fail(col, fmt::format("bad port \"{}\"", s));
    return {static_cast<uint16_t>(*v), proto};
  }
  uint16_t icmp_port(std::string_view p, uint32_t col) const {
    const size_t slash = p.find('/');
    if (slash != std::string_view::npos) {
      auto t = parse_dec_uint(p.substr(0, slash), 255);
      auto c = parse_dec_uint(p.substr(slash + 1), 255);
      if (!t || !c) fail(col, fmt::format("bad ICMP type/code \"{}\"", p));
      return static_cast<uint16_t>(*t << 8 | *c);
    }
    for (const IcmpMatch::Name& n : IcmpMatch::kNames) {
      if (p == n.name && n.type != 0xff) return static_cast<uint16_t>(n.type << 8 | n.code_lo);
    }
    fail(col, fmt::format("unknown ICMP type \"{}\"", p));
  }

 private:
  const std::string& file_;
  uint32_t line_;
};

void add_cidr(std::vector<uint8_t>& v, uint8_t c) {
  if (std::find(v.begin(), v.end(), c) == v.end()) {
    v.push_back(c);
    std::sort(v.begin(), v.end(), std::greater<>());
  }
}

}  // namespace

IpSets IpSets::parse(std::string_view text, const std::string& file) {
  IpSets out;
  uint32_t line_no = 0;
  size_t pos = 0;
  struct Member {
    std::string name;
    uint32_t line;
    uint32_t col;
  };
  std::vector<std::vector<Member>> pending_members;  // list:set adds, resolved at the end
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<Word> w = words_of(line);
    if (w.empty() || w[0].text[0] == '#') {
      if (end == text.size()) break;
      continue;
    }
    Parser p(file, line_no);
    const std::string& cmd = w[0].text;
    if (cmd == "create" || cmd == "-N" || cmd == "n") {
      if (w.size() < 3) p.fail(w[0].col, "create needs a set name and a type");
      if (out.find(w[1].text) != nullptr) p.fail(w[1].col, fmt::format("set \"{}\" is created twice", w[1].text));
      IpSet s;
      s.name = w[1].text;
      const std::string& t = w[2].text;
      if (t == "hash:ip") s.type = IpSetType::HashIp;
      else if (t == "hash:net") s.type = IpSetType::HashNet;
      else if (t == "hash:ip,port") s.type = IpSetType::HashIpPort;
      else if (t == "hash:net,port") s.type = IpSetType::HashNetPort;
      else if (t == "hash:ip,port,ip") s.type = IpSetType::HashIpPortIp;
      else if (t == "hash:ip,port,net") s.type = IpSetType::HashIpPortNet;
      else if (t == "bitmap:ip") s.type = IpSetType::BitmapIp;
      else if (t == "bitmap:port") s.type = IpSetType::BitmapPort;
      else if (t == "list:set") s.type = IpSetType::ListSet;
      else {
        // A type the model lacks (hash:mac, hash:net,iface, hash:ip,mark...):
        // kept by name, its options and elements unread; only a rule that
        // names it is refused (rules/matches/set.h).
        s.type = IpSetType::Unsupported;
        s.unsupported = t;
        out.sets_.push_back(std::move(s));
        pending_members.emplace_back();
        continue;
      }
      bool have_range = false;
      for (size_t i = 3; i < w.size(); ++i) {
        const std::string& o = w[i].text;
        auto arg = [&]() -> const Word& {
          if (i + 1 >= w.size()) p.fail(w[i].col, fmt::format("option \"{}\" needs a value", o));
          return w[++i];
        };
        if (o == "family") {
          const Word& f = arg();
          if (f.text == "inet") s.inet6 = false;
          else if (f.text == "inet6") s.inet6 = true;
          else p.fail(f.col, fmt::format("bad family \"{}\" (expected inet or inet6)", f.text));
        } else if (o == "hashsize" || o == "maxelem" || o == "bucketsize" || o == "initval" || o == "markmask") {
          arg();  // sizing and hashing: no effect on answers
        } else if (o == "netmask") {
          if (s.type != IpSetType::HashIp && s.type != IpSetType::BitmapIp)
            p.fail(w[i].col, fmt::format("netmask is for hash:ip and bitmap:ip sets, not {}", t));
          const Word& m = arg();
          auto n = parse_dec_uint(m.text, 32);
          if (!n || *n == 0) p.fail(m.col, fmt::format("bad netmask \"{}\" (expected 1-32)", m.text));
          s.netmask = static_cast<uint8_t>(*n);
        } else if (o == "timeout") {
          s.timeouts = true;
          s.default_timeout = p.u32(arg(), "timeout");
        } else if (o == "counters") {
          s.counters = true;
        } else if (o == "comment" || o == "skbinfo" || o == "forceadd") {
        } else if (o == "range") {
          const Word& r = arg();
          const size_t dash = r.text.find('-');
          if (s.type == IpSetType::BitmapPort) {
            if (dash == std::string::npos) p.fail(r.col, "range needs FROM-TO");
            auto a = parse_dec_uint(std::string_view(r.text).substr(0, dash), 65535);
            auto b = parse_dec_uint(std::string_view(r.text).substr(dash + 1), 65535);
            if (!a || !b) p.fail(r.col, fmt::format("bad port range \"{}\"", r.text));
            s.range_lo = static_cast<uint32_t>(std::min(*a, *b));
            s.range_hi = static_cast<uint32_t>(std::max(*a, *b));
          } else if (s.type == IpSetType::BitmapIp) {
            if (dash != std::string::npos) {
              s.range_lo = p.ip(std::string_view(r.text).substr(0, dash), r.col);
              s.range_hi = p.ip(std::string_view(r.text).substr(dash + 1), r.col);
            } else {
              auto [a, len] = p.net(r.text, r.col);
              s.range_lo = a;
              s.range_hi = a | ~prefix_mask(len);
            }
          } else {
            p.fail(w[i].col, "range is for bitmap sets");
          }
          have_range = true;
        } else if (o == "size") {
          s.list_size = p.u32(arg(), "size");
        } else {
          p.fail(w[i].col, fmt::format("unknown create option \"{}\"", o));
        }
      }
      if ((s.type == IpSetType::BitmapIp || s.type == IpSetType::BitmapPort) && !have_range)
        p.fail(w[2].col, fmt::format("{} needs a range", t));
      out.sets_.push_back(std::move(s));
      pending_members.emplace_back();
      continue;
    }
    if (cmd != "add" && cmd != "-A" && cmd != "a")
      p.fail(w[0].col, fmt::format("expected \"create\" or \"add\" (ipset save output), not \"{}\"", cmd));
    if (w.size() < 3) p.fail(w[0].col, "add needs a set name and an element");
    const uint32_t si = out.index_of(w[1].text);
    if (si == UINT32_MAX) p.fail(w[1].col, fmt::format("set \"{}\" does not exist (its create line must come first)", w[1].text));
    IpSet& s = out.sets_[si];
    if (s.type == IpSetType::Unsupported) continue;
    IpSet::Elem e;
    e.timeout_s = s.default_timeout;
    for (size_t i = 3; i < w.size(); ++i) {
      const std::string& o = w[i].text;
      auto arg = [&]() -> const Word& {
        if (i + 1 >= w.size()) p.fail(w[i].col, fmt::format("option \"{}\" needs a value", o));
        return w[++i];
      };
      if (o == "timeout") {
        if (!s.timeouts) p.fail(w[i].col, fmt::format("set \"{}\" was created without timeout", s.name));
        e.timeout_s = p.u32(arg(), "timeout");
      } else if (o == "nomatch") {
        if (!s.has_nomatch()) p.fail(w[i].col, fmt::format("nomatch is for hash:net sets, not {}", s.type_name()));
        e.nomatch = true;
      } else if (o == "packets") {
        e.packets = p.u64(arg(), "packets");
      } else if (o == "bytes") {
        e.bytes = p.u64(arg(), "bytes");
      } else if (o == "comment" || o == "skbmark" || o == "skbprio" || o == "skbqueue") {
        arg();
      } else if (o == "before" || o == "after") {
        p.fail(w[i].col, "before/after: write the list in its order");
      } else {
        p.fail(w[i].col, fmt::format("unknown element option \"{}\"", o));
      }
    }
    const Word& el = w[2];
    if (s.type == IpSetType::ListSet) {
      pending_members[si].push_back({el.text, line_no, el.col});
      s.elems.push_back(e);
      continue;
    }
    if (s.inet6) {
      // Kept as a count only: an inet6 set never matches an IPv4 packet.
      s.elems.push_back(e);
      continue;
    }
    const auto parts = split(el.text, ',');
    const size_t want = s.dimensions();
    if (parts.size() != want)
      p.fail(el.col, fmt::format("element \"{}\" of {} needs {} part{}", el.text, s.type_name(), want,
                                 want == 1 ? "" : "s"));
    IpSet::Key k;
    switch (s.type) {
      case IpSetType::HashIp: {
        auto [a, len] = p.net(parts[0], el.col);
        if (len != 32) p.fail(el.col, "hash:ip elements are single addresses (ipset save expands ranges)");
        k.ip = a & prefix_mask(s.netmask);
        break;
      }
      case IpSetType::HashNet: case IpSetType::HashNetPort: case IpSetType::HashIpPortNet: {
        auto [a, len] = p.net(s.type == IpSetType::HashIpPortNet ? parts[2] : parts[0], el.col);
        if (s.type == IpSetType::HashIpPortNet) {
          k.ip2 = a;
          k.cidr2 = len;
          add_cidr(s.cidrs2, len);
          k.ip = p.ip(parts[0], el.col);
        } else {
          k.ip = a;
          k.cidr = len;
          add_cidr(s.cidrs, len);
        }
        if (s.type != IpSetType::HashNet) {
          auto [port, proto] = p.port(parts[1], el.col);
          k.port = port;
          k.proto = proto;
        }
        break;
      }
      case IpSetType::HashIpPort: case IpSetType::HashIpPortIp: {
        k.ip = p.ip(parts[0], el.col);
        auto [port, proto] = p.port(parts[1], el.col);
        k.port = port;
        k.proto = proto;
        if (s.type == IpSetType::HashIpPortIp) k.ip2 = p.ip(parts[2], el.col);
        break;
      }
      case IpSetType::BitmapIp: {
        k.ip = p.ip(parts[0], el.col) & prefix_mask(s.netmask);
        if (k.ip < s.range_lo || k.ip > s.range_hi) p.fail(el.col, fmt::format("{} is outside the set's range", parts[0]));
        break;
      }
      case IpSetType::BitmapPort: {
        auto [port, proto] = p.port(parts[0], el.col);
        (void)proto;  // the protocol is ignored for bitmap:port
        if (port < s.range_lo || port > s.range_hi) p.fail(el.col, fmt::format("{} is outside the set's range", parts[0]));
        k.port = port;
        break;
      }
      case IpSetType::ListSet: case IpSetType::Unsupported: break;
    }
    if (s.index.count(k) != 0) p.fail(el.col, fmt::format("element \"{}\" is added twice", el.text));
    s.index.emplace(k, static_cast<uint32_t>(s.elems.size()));
    s.elems.push_back(e);
  }
  // list:set members, in list order.
  for (size_t si = 0; si < out.sets_.size(); ++si) {
    for (const Member& m : pending_members[si]) {
      const uint32_t mi = out.index_of(m.name);
      Parser p(file, m.line);
      if (mi == UINT32_MAX) p.fail(m.col, fmt::format("list:set member \"{}\" does not exist", m.name));
      if (out.sets_[mi].type == IpSetType::ListSet) p.fail(m.col, "a list:set cannot hold another list:set");
      if (out.sets_[mi].type == IpSetType::Unsupported && out.sets_[si].type == IpSetType::ListSet) {
        out.sets_[si].type = IpSetType::Unsupported;
        out.sets_[si].unsupported = fmt::format("list:set holding {} ({})", m.name, out.sets_[mi].unsupported);
      }
      out.sets_[si].member_elem.push_back(static_cast<uint32_t>(out.sets_[si].members.size()));
      out.sets_[si].members.push_back(mi);
    }
  }
  for (const IpSet& s : out.sets_) out.loaded_.push_back(s.elems);
  return out;
}

}  // namespace nfb
