#include "rules/classbench.h"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

#include "base/input_file.h"

namespace nfb {
namespace {

// A cursor over one line that knows its position, for FILE:LINE:COL errors.
class LineCursor {
 public:
  LineCursor(std::string_view line, const std::string& file, uint32_t line_no)
      : line_(line), file_(file), line_no_(line_no) {}

  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }
  [[noreturn]] void fail_at(size_t pos, const std::string& what) const {
    throw LoadError(SourceLocation{file_, line_no_, static_cast<uint32_t>(pos + 1)}, what);
  }

  void skip_blanks() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t' || line_[pos_] == '\r')) ++pos_;
  }
  bool at_end() {
    skip_blanks();
    return pos_ >= line_.size();
  }
  void expect(char c, const char* what) {
    skip_blanks();
    if (pos_ >= line_.size() || line_[pos_] != c) fail(fmt::format("expected {}", what));
    ++pos_;
  }
  /// An unsigned number in `base`, at most `max`.
  uint64_t number(const char* what, uint64_t max, int base = 10) {
    skip_blanks();
    uint64_t v = 0;
    const char* first = line_.data() + pos_;
    const char* last = line_.data() + line_.size();
    auto [ptr, ec] = std::from_chars(first, last, v, base);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && v > max)) {
      fail(fmt::format("{} out of range (at most {})", what, max));
    }
    if (ec != std::errc() || ptr == first) fail(fmt::format("expected {}", what));
    pos_ += static_cast<size_t>(ptr - first);
    return v;
  }
  /// "0x" followed by hex digits, at most `max`.
  uint64_t hex(const char* what, uint64_t max) {
    skip_blanks();
    if (line_.substr(pos_, 2) != "0x" && line_.substr(pos_, 2) != "0X") {
      fail(fmt::format("expected {} as 0x followed by hex digits", what));
    }
    pos_ += 2;
    return number(what, max, 16);
  }
  /// Dotted quad a.b.c.d.
  uint32_t ipv4(const char* what) {
    uint32_t addr = 0;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) {
        if (pos_ >= line_.size() || line_[pos_] != '.') fail(fmt::format("expected {} as a.b.c.d", what));
        ++pos_;
      } else {
        skip_blanks();
      }
      if (pos_ >= line_.size() || line_[pos_] < '0' || line_[pos_] > '9') {
        fail(fmt::format("expected {} as a.b.c.d", what));
      }
      addr = (addr << 8) | static_cast<uint32_t>(number("an address byte (0-255)", 255));
    }
    return addr;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view line_;
  const std::string& file_;
  uint32_t line_no_;
  size_t pos_ = 0;
};

// Calls fn(line, line_no) for every line of text; blank lines are skipped.
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  uint32_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    std::string_view line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) fn(line, line_no);
    start = end + 1;
  }
}

Ipv4Mask read_prefix(LineCursor& c, const char* what) {
  const uint32_t addr = c.ipv4(what);
  c.expect('/', "'/' and a prefix length");
  const auto len = static_cast<unsigned>(c.number("a prefix length (0-32)", 32));
  const uint32_t mask = prefix_mask(len);
  return Ipv4Mask{addr & mask, mask};
}

PortRange read_port_range(LineCursor& c, const char* what) {
  c.skip_blanks();
  const size_t at = c.pos();
  PortRange r;
  r.lo = static_cast<uint16_t>(c.number(what, 65535));
  c.expect(':', "':' between the two ends of a port range");
  r.hi = static_cast<uint16_t>(c.number(what, 65535));
  if (r.lo > r.hi) c.fail_at(at, "port range is empty (low end above high end)");
  return r;
}

}  // namespace

Ruleset read_classbench_rules(std::string_view text, const std::string& file) {
  Ruleset rs;
  Table& table = rs.get_or_add_table(TableId::Filter);
  Chain chain;
  chain.name = kClassBenchChain;
  chain.where = SourceLocation{file, 1, 1};
  for_each_line(text, [&](std::string_view line, uint32_t line_no) {
    LineCursor c(line, file, line_no);
    c.skip_blanks();
    c.expect('@', "'@' at the start of a ClassBench rule");
    Rule rule;
    rule.where = SourceLocation{file, line_no, 1};
    rule.src = read_prefix(c, "a source address");
    rule.dst = read_prefix(c, "a destination address");
    PortsMatch ports;
    ports.sport = read_port_range(c, "a source port (0-65535)");
    ports.dport = read_port_range(c, "a destination port (0-65535)");
    const auto proto = static_cast<uint8_t>(c.hex("a protocol", 0xff));
    c.expect('/', "'/' and a protocol mask");
    c.skip_blanks();
    const size_t mask_at = c.pos();
    const auto proto_mask = c.hex("a protocol mask", 0xff);
    if (proto_mask == 0xff) {
      if (proto == 0) {
        c.fail_at(mask_at, "protocol 0 with mask 0xFF cannot be expressed (protocol 0 means any): use 0x00/0x00");
      }
      rule.protocol = proto;
    } else if (proto_mask != 0) {
      c.fail_at(mask_at, "expected a protocol mask of 0x00 (any) or 0xFF (exact)");
    }
    if (!c.at_end()) {  // the flags column: checked, then ignored
      c.hex("TCP flags", 0xffff);
      c.expect('/', "'/' and a flags mask");
      c.hex("a flags mask", 0xffff);
    }
    if (!c.at_end()) c.fail("expected the end of the rule");
    if (!ports.sport.is_any() || !ports.dport.is_any()) rule.matches.emplace_back(ports);
    rule.target = AcceptTarget{};
    chain.rules.push_back(std::move(rule));
  });
  if (chain.rules.empty()) throw LoadError(SourceLocation{file}, "expected at least one ClassBench rule");
  table.chains.push_back(std::move(chain));
  return rs;
}

Ruleset load_classbench_rules(const std::string& path) {
  return read_classbench_rules(read_input_file(path), path);
}

const Chain& classbench_chain(const Ruleset& rules) {
  const Table* t = rules.find_table(TableId::Filter);
  if (t != nullptr) {
    if (auto i = t->find_chain(kClassBenchChain)) return t->chains[*i];
  }
  throw std::invalid_argument("ruleset has no ClassBench chain");
}

std::string write_classbench_rules(const Chain& chain) {
  std::string out;
  out.reserve(chain.rules.size() * 80);
  for (const Rule& r : chain.rules) {
    const int src_len = mask_prefix_length(r.src.mask);
    const int dst_len = mask_prefix_length(r.dst.mask);
    PortsMatch ports;
    bool ok = src_len >= 0 && dst_len >= 0 && !r.src_invert && !r.dst_invert && !r.protocol_invert &&
              r.in_iface.is_any() && r.out_iface.is_any() && !r.fragment && !r.fragment_invert &&
              r.matches.size() <= 1;
    if (ok && r.matches.size() == 1) {
      if (const auto* p = std::get_if<PortsMatch>(&r.matches[0])) {
        ports = *p;
      } else {
        ok = false;
      }
    }
    if (!ok) {
      throw std::invalid_argument(fmt::format("{}: rule cannot be written as a ClassBench filter", r.where.str()));
    }
    fmt::format_to(std::back_inserter(out), "@{}/{}\t{}/{}\t{} : {}\t{} : {}\t0x{:02x}/0x{:02X}\t0x0000/0x0000\t\n",
                   format_ipv4(r.src.addr), src_len, format_ipv4(r.dst.addr), dst_len, ports.sport.lo,
                   ports.sport.hi, ports.dport.lo, ports.dport.hi, r.protocol, r.protocol == 0 ? 0 : 0xff);
  }
  return out;
}

ClassBenchTrace read_classbench_trace(std::string_view text, const std::string& file) {
  ClassBenchTrace trace;
  trace.keys.reserve(text.size() / 40);
  trace.filter_ids.reserve(text.size() / 40);
  for_each_line(text, [&](std::string_view line, uint32_t line_no) {
    LineCursor c(line, file, line_no);
    PacketKey k;
    k.src_ip = static_cast<uint32_t>(c.number("a source address (decimal, 0-4294967295)", 0xffffffffULL));
    k.dst_ip = static_cast<uint32_t>(c.number("a destination address (decimal, 0-4294967295)", 0xffffffffULL));
    k.src_port = static_cast<uint16_t>(c.number("a source port (0-65535)", 65535));
    k.dst_port = static_cast<uint16_t>(c.number("a destination port (0-65535)", 65535));
    k.proto = static_cast<uint8_t>(c.number("a protocol number (0-255)", 255));
    k.flags = key_flag::kPorts;
    // Then [FLAGS] FILTER_ID: the last number is the id; FLAGS is ignored
    // (as by DPDK's test-acl).
    uint64_t fields[2];
    int n = 0;
    while (!c.at_end()) {
      if (n == 2) c.fail("expected the end of the line after FLAGS and FILTER_ID");
      fields[n++] = c.number("a number (FLAGS or FILTER_ID)", 0xffffffffULL);
    }
    if (n == 0) c.fail("expected a FILTER_ID after the protocol");
    trace.keys.push_back(k);
    trace.filter_ids.push_back(static_cast<uint32_t>(fields[n - 1]));
  });
  return trace;
}

ClassBenchTrace load_classbench_trace(const std::string& path) {
  return read_classbench_trace(read_input_file(path), path);
}

RuleBoxes classbench_boxes(const Chain& chain) {
  RuleBoxes out;
  out.rules = static_cast<uint32_t>(chain.rules.size());
  out.boxes.reserve(chain.rules.size());
  for (uint32_t i = 0; i < chain.rules.size(); ++i) {
    const Rule& r = chain.rules[i];
    const int src_len = mask_prefix_length(r.src.mask);
    const int dst_len = mask_prefix_length(r.dst.mask);
    const bool plain = src_len >= 0 && dst_len >= 0 && !r.src_invert && !r.dst_invert && !r.protocol_invert &&
                       r.in_iface.is_any() && r.out_iface.is_any() && !r.fragment && !r.fragment_invert &&
                       r.matches.size() <= 1 &&
                       (r.matches.empty() || std::holds_alternative<PortsMatch>(r.matches[0]));
    if (!plain) throw std::invalid_argument(fmt::format("{}: not a ClassBench 5-tuple rule", r.where.str()));
    Box b = Box::any(i);
    b.r[kDimSrcIp] = Range{r.src.addr, r.src.addr | ~r.src.mask};
    b.r[kDimDstIp] = Range{r.dst.addr, r.dst.addr | ~r.dst.mask};
    if (r.protocol != 0) b.r[kDimProto] = Range{r.protocol, r.protocol};
    if (!r.matches.empty()) {
      const auto& p = std::get<PortsMatch>(r.matches[0]);
      b.r[kDimSrcPort] = Range{p.sport.lo, p.sport.hi};
      b.r[kDimDstPort] = Range{p.dport.lo, p.dport.hi};
    }
    out.boxes.push_back(b);
  }
  return out;
}

ClassifierKey classbench_key(const PacketKey& key) noexcept {
  ClassifierKey k;
  k.v[kDimSrcIp] = key.src_ip;
  k.v[kDimDstIp] = key.dst_ip;
  k.v[kDimSrcPort] = key.src_port;
  k.v[kDimDstPort] = key.dst_port;
  k.v[kDimProto] = key.proto;
  return k;
}

}  // namespace nfb
