// DNAT and SNAT: rewrite the destination or source of a connection.
// iptables' libxt_DNAT / libxt_SNAT, the kernel's xt_nat. The binding
// itself (choosing the tuple, both directions) is netfilter/nat.h's.
#pragma once

#include <span>

#include "rules/module.h"

namespace nfb {

/// An address/port range for DNAT and SNAT (`IP[-IP]][:PORT[-PORT[/BASE]]]`).
struct NatRange {
  bool has_addr = false;
  uint32_t addr_lo = 0, addr_hi = 0;  // host order; lo may exceed hi as the kernel allows
  bool has_ports = false;
  uint16_t port_lo = 0, port_hi = 0;
  bool has_base = false;  // DNAT only: port shift, new port = port - base + port_lo
  uint16_t base = 0;
  bool random = false;
  bool random_fully = false;  // SNAT only
  bool persistent = false;
  friend bool operator==(const NatRange&, const NatRange&) = default;
};

/// A DNAT/SNAT range: `A[-B]` then `:P[-Q][/BASE]`, each part only when set.
std::string format_nat_range(const NatRange& r);

/// NAT targets with ports need a protocol that has them (or a negated one).
inline bool nat_ports_allowed(const ModuleCheck& c) noexcept {
  const uint8_t p = c.protocol;
  return c.protocol_invert || p == kProtoTcp || p == kProtoUdp || p == kProtoSctp || p == kProtoDccp ||
         p == kProtoIcmp;
}

/// DNAT (kDnat) and SNAT share their options and forms.
template <bool kDnat>
struct NatTarget {
  NatRange range;
  friend bool operator==(const NatTarget&, const NatTarget&) = default;

  static constexpr const char* kName = kDnat ? "DNAT" : "SNAT";
  static constexpr bool kTerminal = true;
  static constexpr WalkOp kWalk = WalkOp::Nat;
  /// nat table; DNAT in PREROUTING and OUTPUT, SNAT in POSTROUTING and INPUT.
  static TargetScope scope() noexcept {
    if (kDnat) return {TableId::Nat, static_cast<HookMask>(hook_bit(Hook::Prerouting) | hook_bit(Hook::Output))};
    return {TableId::Nat, static_cast<HookMask>(hook_bit(Hook::Postrouting) | hook_bit(Hook::Input))};
  }
  enum : uint8_t { kTo, kRandom, kRandomFully, kPersistent };
  static constexpr OptDef kDnatOptions[] = {
      {"to-destination", kTo, 1, false}, {"random", kRandom, 0, false}, {"persistent", kPersistent, 0, false},
  };
  static constexpr OptDef kSnatOptions[] = {
      {"to-source", kTo, 1, false}, {"random", kRandom, 0, false},
      {"random-fully", kRandomFully, 0, false}, {"persistent", kPersistent, 0, false},
  };
  static constexpr std::span<const OptDef> kOptions =
      kDnat ? std::span<const OptDef>(kDnatOptions) : std::span<const OptDef>(kSnatOptions);

  /// [IP[-IP]][:PORT[-PORT[/BASE]]]; /BASE for DNAT only.
  static NatRange parse_range(const ModuleOption& o, std::string_view s, uint32_t col) {
    NatRange r;
    size_t colon = s.find(':');
    std::string_view addr = s.substr(0, colon);
    if (colon == std::string_view::npos || colon > 0) {
      size_t dash = addr.find('-');
      auto lo = parse_ipv4(addr.substr(0, dash));
      if (!lo) o.fail(col, fmt::format("bad address \"{}\" (expected a.b.c.d or a.b.c.d-a.b.c.d)", addr));
      uint32_t hi = *lo;
      if (dash != std::string_view::npos) {
        auto h = parse_ipv4(addr.substr(dash + 1));
        if (!h)
          o.fail(col + static_cast<uint32_t>(dash) + 1,
                 fmt::format("bad address \"{}\" (expected a.b.c.d)", addr.substr(dash + 1)));
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
        if (!kDnat) o.fail(pcol + static_cast<uint32_t>(slash), "a port offset (/BASE) is only valid for DNAT");
        if (range.find('-') == std::string_view::npos)
          o.fail(pcol + static_cast<uint32_t>(slash), "a port offset (/BASE) needs a port range LO-HI before it");
        auto base = o.line.parse_nat_port(ports.substr(slash + 1), pcol + static_cast<uint32_t>(slash) + 1);
        if (base == 0) o.fail(pcol + static_cast<uint32_t>(slash) + 1, "port offset base must be 1-65535");
        r.has_base = true;
        r.base = base;
      }
      PortRange pr = o.line.parse_nat_ports(range, pcol);
      r.has_ports = true;
      r.port_lo = pr.lo;
      r.port_hi = pr.hi;
    }
    return r;
  }

  void parse(const ModuleOption& o) {
    switch (o.id) {
      case kTo: {
        const bool keep_random = range.random, keep_fully = range.random_fully, keep_persistent = range.persistent;
        range = parse_range(o, o.a, o.acol);
        range.random = keep_random;
        range.random_fully = keep_fully;
        range.persistent = keep_persistent;
        break;
      }
      case kRandom: range.random = true; break;
      case kRandomFully: range.random_fully = true; break;
      case kPersistent: range.persistent = true; break;
    }
  }
  void check(const ModuleCheck& c) const {
    if (!c.given(kTo))
      c.fail(fmt::format("{}: option \"{}\" must be specified", kName, kDnat ? "--to-destination" : "--to-source"));
    if (range.has_ports && !nat_ports_allowed(c))
      c.fail(fmt::format("{} with ports needs -p tcp, udp, sctp, dccp or icmp", kName));
  }
  void save(SaveLine& l) const {
    l.add(kDnat ? "-j DNAT --to-destination" : "-j SNAT --to-source").add(format_nat_range(range));
    if (range.random) l.add("--random");
    if (!kDnat && range.random_fully) l.add("--random-fully");
    if (range.persistent) l.add("--persistent");
  }
  void list(ListText& t) const {
    t.put(" to:{}", format_nat_range(range));
    if (range.random) t.add(" random");
    if (!kDnat && range.random_fully) t.add(" random-fully");
    if (range.persistent) t.add(" persistent");
  }
};

using DnatTarget = NatTarget<true>;
using SnatTarget = NatTarget<false>;

inline std::string format_nat_range(const NatRange& r) {
  std::string out;
  if (r.has_addr) {
    out += format_ipv4(r.addr_lo);
    if (r.addr_hi != r.addr_lo) {
      out += '-';
      out += format_ipv4(r.addr_hi);
    }
  }
  if (r.has_ports) {
    out += ':';
    out += std::to_string(r.port_lo);
    if (r.port_hi != r.port_lo) {
      out += '-';
      out += std::to_string(r.port_hi);
    }
    if (r.has_base) {
      out += '/';
      out += std::to_string(r.base);
    }
  }
  return out;
}

}  // namespace nfb
