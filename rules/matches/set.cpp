// -m set: option parsing and printing (libxt_set's), and ip_set_test().
#include "rules/matches/set.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Options

void SetMatch::parse(const ModuleOption& o) {
  switch (o.id) {
    case kMatchSet: {
      if (o.args[0].size() > 31) o.fail(o.cols[0], fmt::format("set name \"{}\" is longer than 31 bytes", o.args[0]));
      name = o.args[0];
      invert = o.invert;
      const auto flags = split(o.args[1], ',');
      if (flags.size() > 6) o.fail(o.cols[1], "can't be more src/dst options than 6");
      dims = 0;
      src_flags = 0;
      for (const auto& f : flags) {
        if (f == "src") src_flags = static_cast<uint8_t>(src_flags | (1U << dims));
        else if (f != "dst")
          o.fail(o.cols[1], "you must specify (the comma separated list of) 'src' or 'dst'");
        ++dims;
      }
      break;
    }
    case kReturnNomatch: return_nomatch = true; break;
    case kUpdateCounters: update_counters = !o.invert; break;
    case kUpdateSubcounters: update_subcounters = !o.invert; break;
    case kPacketsEq:
    case kPacketsLt:
    case kPacketsGt:
    case kBytesEq:
    case kBytesLt:
    case kBytesGt: {
      const bool pk = o.id == kPacketsEq || o.id == kPacketsLt || o.id == kPacketsGt;
      if (pk) {
        if (o.id != kPacketsEq) o.conflict(kPacketsEq, "--packets-eq");
        if (o.id != kPacketsLt) o.conflict(kPacketsLt, "--packets-lt");
        if (o.id != kPacketsGt) o.conflict(kPacketsGt, "--packets-gt");
      } else {
        if (o.id != kBytesEq) o.conflict(kBytesEq, "--bytes-eq");
        if (o.id != kBytesLt) o.conflict(kBytesLt, "--bytes-lt");
        if (o.id != kBytesGt) o.conflict(kBytesGt, "--bytes-gt");
      }
      auto v = parse_c_uint(o.a, UINT64_MAX);
      if (!v) o.fail(o.acol, fmt::format("bad value for {} \"{}\"", o.name, o.a));
      const bool eq = o.id == kPacketsEq || o.id == kBytesEq;
      const bool lt = o.id == kPacketsLt || o.id == kBytesLt;
      const Cmp cmp = eq ? (o.invert ? Cmp::Ne : Cmp::Eq) : lt ? Cmp::Lt : Cmp::Gt;
      (pk ? packets_cmp : bytes_cmp) = cmp;
      (pk ? packets : bytes) = *v;
      break;
    }
  }
}

void SetMatch::check(const ModuleCheck& c) const {
  if (!c.given(kMatchSet)) c.fail("set: you must specify `--match-set' with proper arguments");
}

namespace {

std::string flags_text(uint8_t dims, uint8_t src_flags) {
  std::string s;
  for (uint8_t i = 0; i < dims; ++i) {
    if (i != 0) s += ',';
    s += ((src_flags >> i) & 1U) != 0 ? "src" : "dst";
  }
  return s;
}

struct CmpText {
  bool neg;
  const char* op;
};
CmpText cmp_text(SetMatch::Cmp c) {
  switch (c) {
    case SetMatch::Cmp::Eq: return {false, "eq"};
    case SetMatch::Cmp::Ne: return {true, "eq"};
    case SetMatch::Cmp::Lt: return {false, "lt"};
    case SetMatch::Cmp::Gt: return {false, "gt"};
    case SetMatch::Cmp::None: break;
  }
  return {false, ""};
}

bool compare(SetMatch::Cmp c, uint64_t have, uint64_t want) {
  switch (c) {
    case SetMatch::Cmp::None: return true;
    case SetMatch::Cmp::Eq: return have == want;
    case SetMatch::Cmp::Ne: return have != want;
    case SetMatch::Cmp::Lt: return have < want;
    case SetMatch::Cmp::Gt: return have > want;
  }
  return true;
}

}  // namespace

void SetMatch::save(SaveLine& l) const {
  l.add("-m set").inv(invert).add("--match-set").add(name).add(flags_text(dims, src_flags));
  if (return_nomatch) l.add("--return-nomatch");
  if (!update_counters) l.add("! --update-counters");
  if (!update_subcounters) l.add("! --update-subcounters");
  if (packets_cmp != Cmp::None) {
    const CmpText t = cmp_text(packets_cmp);
    l.inv(t.neg).add(fmt::format("--packets-{}", t.op)).add(std::to_string(packets));
  }
  if (bytes_cmp != Cmp::None) {
    const CmpText t = cmp_text(bytes_cmp);
    l.inv(t.neg).add(fmt::format("--bytes-{}", t.op)).add(std::to_string(bytes));
  }
}

void SetMatch::list(ListText& t) const {
  t.put(" {}match-set {} {}", invert ? "! " : "", name, flags_text(dims, src_flags));
  if (return_nomatch) t.add(" return-nomatch");
  if (!update_counters) t.add(" ! update-counters");
  if (!update_subcounters) t.add(" ! update-subcounters");
  if (packets_cmp != Cmp::None) {
    const CmpText c = cmp_text(packets_cmp);
    t.put(" {}packets-{} {}", c.neg ? "! " : "", c.op, packets);
  }
  if (bytes_cmp != Cmp::None) {
    const CmpText c = cmp_text(bytes_cmp);
    t.put(" {}bytes-{} {}", c.neg ? "! " : "", c.op, bytes);
  }
}

// ---------------------------------------------------------------------------
// ip_set_test

namespace {

struct Test {
  IpSets& all;
  const IpSetPacket& p;
  uint8_t dims;
  uint8_t src_flags;
  bool return_nomatch;

  bool src(uint32_t dim) const noexcept { return ((src_flags >> dim) & 1U) != 0; }
  uint32_t addr(uint32_t dim) const noexcept { return src(dim) ? p.src : p.dst; }
  /// The port dimension's (port, protocol); false when the kernel cannot
  /// take one (protocol 0, a later fragment, a header without it).
  bool port(uint32_t dim, uint16_t& port, uint8_t& proto) const noexcept {
    if (p.later_fragment || p.proto == 0) return false;
    proto = p.proto;
    switch (p.proto) {
      case kProtoTcp: case kProtoUdp: case kProtoSctp: case kProtoUdplite:
        if (!p.has_ports) return false;
        port = src(dim) ? p.sport : p.dport;
        return true;
      case kProtoIcmp:
        if (!p.has_icmp) return false;
        port = static_cast<uint16_t>(p.icmp_type << 8 | p.icmp_code);
        return true;
      default:
        port = 0;
        return true;
    }
  }
  bool expired(const IpSet& s, const IpSet::Elem& e) const noexcept {
    return s.timeouts && e.timeout_s != 0 && p.now_ns > all.start_ns() + uint64_t{e.timeout_s} * 1'000'000'000ULL;
  }
  /// ip_set_match_extensions(): 0 when the element does not count (expired,
  /// or its counters fail the rule's comparison); else 1, or -1 for nomatch.
  int element(IpSet& s, uint32_t ei, bool count, const SetTest* cond) const noexcept {
    IpSet::Elem& e = s.elems[ei];
    if (expired(s, e)) return 0;
    if (s.counters && count) {
      ++e.packets;
      e.bytes += p.length;
    }
    if (cond != nullptr && s.counters &&
        (!compare(cond->packets_cmp, e.packets, cond->packets) || !compare(cond->bytes_cmp, e.bytes, cond->bytes)))
      return 0;
    return e.nomatch ? -1 : 1;
  }
  int lookup(IpSet& s, const IpSet::Key& k, bool count, const SetTest* cond) const noexcept {
    auto it = s.index.find(k);
    return it == s.index.end() ? 0 : element(s, it->second, count, cond);
  }

  /// 1 in the set, 0 not (nomatch and --return-nomatch applied).
  int set(uint32_t si, bool count, bool subcount, const SetTest* cond) const noexcept {
    IpSet& s = all.sets()[si];
    if (dims < s.dimensions()) return 0;
    if (s.inet6) return 0;
    int r = 0;
    IpSet::Key k;
    uint16_t port = 0;
    uint8_t proto = 0;
    switch (s.type) {
      case IpSetType::HashIp:
        k.ip = addr(0) & prefix_mask(s.netmask);
        r = lookup(s, k, count, cond);
        break;
      case IpSetType::HashNet:
      case IpSetType::HashNetPort:
        if (s.type == IpSetType::HashNetPort) {
          if (!this->port(1, port, proto)) return 0;
          k.port = port;
          k.proto = proto;
        }
        for (const uint8_t c : s.cidrs) {
          k.ip = addr(0) & prefix_mask(c);
          k.cidr = c;
          r = lookup(s, k, count, cond);
          if (r != 0) break;
        }
        break;
      case IpSetType::HashIpPort:
      case IpSetType::HashIpPortIp:
      case IpSetType::HashIpPortNet:
        if (!this->port(1, port, proto)) return 0;
        k.ip = addr(0);
        k.port = port;
        k.proto = proto;
        if (s.type == IpSetType::HashIpPortIp) {
          k.ip2 = addr(2);
          r = lookup(s, k, count, cond);
        } else if (s.type == IpSetType::HashIpPortNet) {
          for (const uint8_t c : s.cidrs2) {
            k.ip2 = addr(2) & prefix_mask(c);
            k.cidr2 = c;
            r = lookup(s, k, count, cond);
            if (r != 0) break;
          }
        } else {
          r = lookup(s, k, count, cond);
        }
        break;
      case IpSetType::BitmapIp:
        k.ip = addr(0) & prefix_mask(s.netmask);
        if (k.ip < s.range_lo || k.ip > s.range_hi) return 0;
        r = lookup(s, k, count, cond);
        break;
      case IpSetType::BitmapPort:
        if (p.later_fragment || (p.proto != kProtoTcp && p.proto != kProtoUdp) || !p.has_ports) return 0;
        k.port = src(0) ? p.sport : p.dport;
        if (k.port < s.range_lo || k.port > s.range_hi) return 0;
        r = lookup(s, k, count, cond);
        break;
      case IpSetType::Unsupported:
        return 0;  // never compiled (SetMatch::compile refuses it)
      case IpSetType::ListSet:
        for (size_t i = 0; i < s.members.size(); ++i) {
          // Members: no counter comparison; their counters unless !
          // --update-subcounters.
          if (set(s.members[i], count && subcount, subcount, nullptr) <= 0) continue;
          if (element(s, s.member_elem[i], count, cond) != 0) return 1;
        }
        return 0;
    }
    if (return_nomatch && s.has_nomatch()) r = -r;
    return r > 0 ? 1 : 0;
  }
};

}  // namespace

bool SetMatch::Compiled::test(const IpSetPacket& p) const noexcept {
  sets->start(p.now_ns);
  const Test t{*sets, p, m.dims, m.src_flags, m.return_nomatch};
  const bool has_cond = m.packets_cmp != Cmp::None || m.bytes_cmp != Cmp::None;
  const int r = t.set(set, m.update_counters, m.update_subcounters, has_cond ? &m : nullptr);
  return (r > 0) != m.invert;
}

}  // namespace nfb
