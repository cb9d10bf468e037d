// -m multiport --sports/--dports/--ports. iptables' libxt_multiport, the
// kernel's xt_multiport.
#pragma once

#include <array>

#include "rules/module.h"

namespace nfb {

/// -m multiport: up to 15 slots, a range takes two. Needs -p tcp, udp,
/// udplite, sctp or dccp. A non-first fragment never matches; fewer than 4
/// bytes of ports: HOTDROP [kernel].
struct MultiportMatch {
  enum class Dir : uint8_t { Source, Destination, Either };
  Dir dir = Dir::Destination;
  std::vector<PortRange> ports;
  bool invert = false;
  static constexpr unsigned kMaxSlots = 15;
  friend bool operator==(const MultiportMatch&, const MultiportMatch&) = default;

  static constexpr const char* kName = "multiport";
  enum : uint8_t { kSource, kDest, kEither };
  static constexpr OptDef kOptions[] = {
      {"source-ports", kSource, 1, true}, {"sports", kSource, 1, true},
      {"destination-ports", kDest, 1, true}, {"dports", kDest, 1, true}, {"ports", kEither, 1, true},
  };
  void parse(const ModuleOption& o) {
    for (uint8_t other : {kSource, kDest, kEither}) {
      if (other != o.id && o.given(other))
        o.fail(o.col, "multiport: only one of --sports, --dports and --ports may be given");
    }
    dir = o.id == kSource ? Dir::Source : o.id == kDest ? Dir::Destination : Dir::Either;
    invert = o.invert;
    ports.clear();
    unsigned slots = 0;
    uint32_t c = o.acol;
    const ServiceScope scope = o.protocol == kProtoTcp   ? ServiceScope::Tcp
                               : o.protocol == kProtoUdp ? ServiceScope::Udp
                                                         : ServiceScope::None;
    for (std::string_view item : split(o.a, ',')) {
      size_t colon = item.find(':');
      auto one = [&](std::string_view p, uint32_t pc) -> uint16_t {
        auto v = parse_port(p, scope);
        if (!v) o.fail(pc, fmt::format("bad port \"{}\" (expected a number 0-65535 or a known service name)", p));
        return *v;
      };
      PortRange r;
      if (colon == std::string_view::npos) {
        r.lo = r.hi = one(item, c);
        slots += 1;
      } else {
        r.lo = one(item.substr(0, colon), c);
        r.hi = one(item.substr(colon + 1), c + static_cast<uint32_t>(colon) + 1);
        if (r.lo >= r.hi) o.fail(c, fmt::format("bad port range \"{}\" (multiport needs LO < HI)", item));
        slots += 2;
      }
      if (slots > kMaxSlots) o.fail(c, "too many ports for multiport (at most 15; a range counts as two)");
      ports.push_back(r);
      c += static_cast<uint32_t>(item.size()) + 1;
    }
  }
  void check(const ModuleCheck& c) const {
    const uint8_t p = c.protocol;
    const bool ok = !c.protocol_invert && (p == kProtoTcp || p == kProtoUdp || p == kProtoUdplite ||
                                           p == kProtoSctp || p == kProtoDccp);
    if (!ok) c.fail("-m multiport needs -p tcp, udp, udplite, sctp or dccp (not negated)");
    if (c.seen == 0) c.fail("multiport: one of --sports, --dports or --ports must be specified");
  }

  const char* dir_word() const noexcept {
    return dir == Dir::Source ? "sports" : dir == Dir::Destination ? "dports" : "ports";
  }
  void save(SaveLine& l) const {
    l.add("-m multiport").inv(invert).add(std::string("--") + dir_word());
    std::string list;
    for (const PortRange& r : ports) {
      if (!list.empty()) list += ',';
      list += format_range(r.lo, r.hi, ':');
    }
    l.add(list);
  }
  void list(ListText& t) const {
    t.put(" multiport {} {}", dir_word(), invert ? " !" : "");
    for (size_t i = 0; i < ports.size(); ++i) {
      if (i != 0) t.add(",");
      t.add(format_range(ports[i].lo, ports[i].hi, ':'));
    }
  }

  /// The compiled form: the ranges inline (a single port is lo == hi).
  struct Compiled {
    std::array<PortRange, kMaxSlots> ports{};
    uint8_t count = 0;
    Dir dir = Dir::Destination;
    bool invert = false;

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      constexpr uint32_t kPortBytes = 4;  // what the kernel reads
      if (ctx.key->is_later_fragment()) return MatchResult::NoMatch;
      uint16_t sport = 0, dport = 0;
      if (!l4_ports(ctx, kPortBytes, sport, dport)) return MatchResult::Hotdrop;
      const bool src = dir != Dir::Destination;
      const bool dst = dir != Dir::Source;
      bool hit = false;
      for (uint32_t i = 0; i < count && !hit; ++i) {
        hit = (src && ports[i].contains(sport)) || (dst && ports[i].contains(dport));
      }
      return match_result(hit != invert);
    }

    /// The union of the ranges on one port dimension, or its complement;
    /// --ports (either port): two alternatives (source in the list, or
    /// destination); ! --ports: both outside the list.
    bool boxes(Alts& alts, const BoxRule& r) const {
      if (!r.tcp() && !r.udp()) return false;
      Ranges ranges;
      for (uint32_t i = 0; i < count; ++i) ranges.push_back(Range{ports[i].lo, ports[i].hi});
      const Ranges set = union_or_complement(ranges, 0xffff, invert);
      if (dir == Dir::Source) {
        restrict_all(alts, kDimSrcPort, set);
      } else if (dir == Dir::Destination) {
        restrict_all(alts, kDimDstPort, set);
      } else if (invert) {  // neither port in the list
        restrict_all(alts, kDimSrcPort, set);
        restrict_all(alts, kDimDstPort, set);
      } else {  // either port in the list: two alternatives
        Alts dst = alts;
        restrict_all(alts, kDimSrcPort, set);
        restrict_all(dst, kDimDstPort, set);
        alts.insert(alts.end(), dst.begin(), dst.end());
      }
      return true;
    }
  };
  template <class C>
  void compile(C& c) const {
    size_t slots = 0;
    for (const PortRange& r : ports) slots += r.lo == r.hi ? 1 : 2;
    if (slots > kMaxSlots || ports.empty()) c.fail("multiport: 1 to 15 ports (a range takes two)");
    Compiled cm;
    for (const PortRange& r : ports) cm.ports[cm.count++] = r;
    cm.dir = dir;
    cm.invert = invert;
    c.emit(cm);
  }
};

}  // namespace nfb
