// -m pkttype: the link-layer class of the destination address. iptables'
// libxt_pkttype, the kernel's xt_pkttype.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m pkttype (the kernel's PACKET_* numbering). A loopback packet counts
/// as multicast when its destination is multicast, else as broadcast (as
/// the kernel's xt_pkttype).
struct PkttypeMatch {
  enum class Type : uint8_t { Unicast = 0, Broadcast = 1, Multicast = 2, OtherHost = 3 };
  Type type = Type::Unicast;
  bool invert = false;
  friend bool operator==(const PkttypeMatch&, const PkttypeMatch&) = default;

  static constexpr const char* kName = "pkttype";
  static constexpr OptDef kOptions[] = {{"pkt-type", 0, 1, true}};
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    if (iequals(a, "unicast") || iequals(a, "host")) type = Type::Unicast;
    else if (iequals(a, "broadcast")) type = Type::Broadcast;
    else if (iequals(a, "multicast")) type = Type::Multicast;
    else if (iequals(a, "otherhost")) type = Type::OtherHost;
    else o.fail(o.acol, fmt::format("bad packet type \"{}\" (expected unicast, broadcast, multicast or otherhost)", a));
    invert = o.invert;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("pkttype: option \"--pkt-type\" must be specified");
  }
  const char* type_name() const noexcept {
    switch (type) {
      case Type::Broadcast: return "broadcast";
      case Type::Multicast: return "multicast";
      case Type::OtherHost: return "otherhost";
      case Type::Unicast: break;
    }
    return "unicast";
  }
  void save(SaveLine& l) const { l.add("-m pkttype").inv(invert).add("--pkt-type").add(type_name()); }
  void list(ListText& t) const { t.put(" PKTTYPE {}= {}", invert ? "!" : "", type_name()); }

  uint32_t vary() const noexcept { return kVaryPkttype; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const PacketKey& k = *ctx.key;
    auto t = static_cast<uint8_t>(k.pkttype);
    if (k.pkttype == PktType::Loopback) {
      // xt_pkttype: a looped-back IPv4 packet is multicast or broadcast.
      t = (k.dst_ip & 0xf0000000U) == 0xe0000000U ? static_cast<uint8_t>(PktType::Multicast)
                                                   : static_cast<uint8_t>(PktType::Broadcast);
    }
    return match_result((t == static_cast<uint8_t>(type)) != invert);
  }
  bool boxes(Alts& alts, const BoxRule&) const {
    const auto t = static_cast<uint32_t>(type);
    restrict_all(alts, kDimPkttype, range_or_complement(t, t, 0xff, invert));
    return true;
  }
};

}  // namespace nfb
