// CT: conntrack templates (raw table): zones, events, --notrack.
// iptables' libxt_CT, the kernel's xt_CT.
#pragma once

#include "rules/module.h"

namespace nfb {

/// CT (raw): --notrack, --zone/--zone-orig/--zone-reply, --ctevents,
/// --expevents. The zone applies to both directions unless exactly one of
/// zone_orig/zone_reply is set; with zone_from_mark the zone id is taken from
/// the packet mark instead of `zone`.
struct CtTarget {
  bool notrack = false;
  uint16_t zone = 0;
  bool zone_from_mark = false;
  bool zone_orig = false;
  bool zone_reply = false;
  uint16_t ctevents = 0;   // bit i = event i of kEventNames
  uint16_t expevents = 0;  // bit 0 = new
  friend bool operator==(const CtTarget&, const CtTarget&) = default;

  static constexpr const char* kName = "CT";
  static constexpr bool kTerminal = false;
  static TargetScope scope() noexcept { return {TableId::Raw, kAllHooks}; }
  /// --notrack makes it NOTRACK; else a template.
  WalkOp walk_op() const noexcept { return notrack ? WalkOp::Notrack : WalkOp::Ct; }
  enum : uint8_t { kNotrack, kZone, kZoneOrig, kZoneReply, kEvents, kExpEvents };
  static constexpr OptDef kOptions[] = {
      {"notrack", kNotrack, 0, false},      {"zone", kZone, 1, false},
      {"zone-orig", kZoneOrig, 1, false},   {"zone-reply", kZoneReply, 1, false},
      {"ctevents", kEvents, 1, false},      {"expevents", kExpEvents, 1, false},
  };
  static constexpr const char* kEventNames[] = {
      "new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark", "natseqinfo", "secmark",
  };

  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    switch (o.id) {
      case kNotrack: notrack = true; break;
      case kZone:
      case kZoneOrig:
      case kZoneReply: {
        // "mark" sticks once given; the direction flags accumulate.
        if (iequals(a, "mark")) {
          zone_from_mark = true;
        } else {
          auto v = parse_c_uint(a, 65535);
          if (!v) o.fail(o.acol, fmt::format("bad zone \"{}\" (expected 0-65535 or mark)", a));
          zone = static_cast<uint16_t>(*v);
        }
        if (o.id == kZoneOrig) zone_orig = true;
        if (o.id == kZoneReply) zone_reply = true;
        break;
      }
      case kEvents:
      case kExpEvents: {
        uint16_t bits = 0;
        uint32_t c = o.acol;
        for (std::string_view e : split(a, ',')) {
          std::optional<unsigned> idx;
          size_t n = o.id == kEvents ? std::size(kEventNames) : 1;
          for (size_t i = 0; i < n; ++i) {
            if (e == kEventNames[i]) idx = static_cast<unsigned>(i);
          }
          if (!idx) o.fail(c, fmt::format("unknown event type \"{}\" for {}", e, o.name));
          bits = static_cast<uint16_t>(bits | (1U << *idx));
          c += static_cast<uint32_t>(e.size()) + 1;
        }
        (o.id == kEvents ? ctevents : expevents) = bits;
        break;
      }
    }
  }
  void check(const ModuleCheck&) const {}

  static std::string events(uint16_t bits) {
    std::string out;
    for (size_t i = 0; i < std::size(kEventNames); ++i) {
      if ((bits & (1U << i)) == 0) continue;
      if (!out.empty()) out += ',';
      out += kEventNames[i];
    }
    return out;
  }
  /// One direction only names itself; both or neither use "zone".
  const char* zone_word() const noexcept {
    return zone_orig == zone_reply ? "zone" : zone_orig ? "zone-orig" : "zone-reply";
  }
  void save(SaveLine& l) const {
    l.add("-j CT");
    if (notrack) l.add("--notrack");
    if (ctevents != 0) l.add("--ctevents").add(events(ctevents));
    if (expevents != 0) l.add("--expevents").add(events(expevents));
    if (zone != 0 || zone_from_mark)
      l.add(std::string("--") + zone_word()).add(zone_from_mark ? std::string("mark") : std::to_string(zone));
  }
  void list(ListText& t) const {
    t.add(" CT");
    if (notrack) t.add(" notrack");
    if (ctevents != 0) t.put(" ctevents {}", events(ctevents));
    if (expevents != 0) t.put(" expevents {}", events(expevents));
    if (zone != 0 || zone_from_mark)
      t.put(" {} {}", zone_word(), zone_from_mark ? std::string("mark") : std::to_string(zone));
  }
};

}  // namespace nfb
