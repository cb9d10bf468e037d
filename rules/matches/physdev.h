// -m physdev: the bridge ports a bridged (or bridge-received) packet came in
// and goes out by. iptables' libxt_physdev, the kernel's xt_physdev.
#pragma once

#include <string>

#include "rules/module.h"

namespace nfb {

/// -m physdev. The facts it reads (MatchContext, set by the pipeline, see
/// netfilter/host.h "Bridges"): whether the packet came in through a bridge
/// port with bridge-nf-call-iptables on (br_netfilter's per-packet info:
/// in_port may still be unknown, kNoIface, when a capture names the bridge
/// itself), the port it came in by, whether it is being bridged (FORWARD
/// and POSTROUTING of a bridged packet) and the port it goes out by. The
/// kernel's rules [kernel]:
///  - no bridge info: the match holds only when every option it has is
///    inverted;
///  - --physdev-is-bridged: bridged; --physdev-is-in: came in by a port;
///    --physdev-is-out: bridged (only bridged packets have an out port);
///  - --physdev-in/out NAME: the port's name against NAME (`+` at the end: a
///    prefix), an unknown in port compared as the empty name; a packet that
///    is not bridged has no out port, and --physdev-out fails then even
///    inverted.
struct PhysdevMatch {
  std::string in;   // as written, `+` included
  std::string out;
  uint8_t given = 0;   // kIn.. bits
  uint8_t invert = 0;  // kIn.. bits
  friend bool operator==(const PhysdevMatch&, const PhysdevMatch&) = default;

  enum : uint8_t { kIn = 1, kOut = 2, kIsIn = 4, kIsOut = 8, kBridged = 16 };

  static constexpr const char* kName = "physdev";
  enum : uint8_t { kOptIn, kOptOut, kOptIsIn, kOptIsOut, kOptBridged };
  static constexpr OptDef kOptions[] = {
      {"physdev-in", kOptIn, 1, true},        {"physdev-out", kOptOut, 1, true},
      {"physdev-is-in", kOptIsIn, 0, true},   {"physdev-is-out", kOptIsOut, 0, true},
      {"physdev-is-bridged", kOptBridged, 0, true},
  };
  void parse(const ModuleOption& o) {
    const auto bit = static_cast<uint8_t>(1U << o.id);
    if (o.id == kOptIn || o.id == kOptOut) {
      if (o.a.size() > 15) o.fail(o.acol, fmt::format("interface name \"{}\" must be shorter than 16 characters", o.a));
      (o.id == kOptIn ? in : out) = o.a;
    }
    given = static_cast<uint8_t>(given | bit);
    if (o.invert) invert = static_cast<uint8_t>(invert | bit);
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("PHYSDEV: no physdev option specified");
  }
  /// An out port (or is-out) asked for outside a bridged test cannot be
  /// used in OUTPUT [kernel: xt_physdev's checkentry].
  HookMask hooks() const noexcept {
    if ((given & (kOut | kIsOut)) != 0 && ((given & kBridged) == 0 || (invert & kBridged) != 0))
      return static_cast<HookMask>(kAllHooks & ~hook_bit(Hook::Output));
    return kAllHooks;
  }
  const char* hooks_reason() const noexcept { return " --physdev-out or --physdev-is-out without --physdev-is-bridged"; }

  void save(SaveLine& l) const;
  void list(ListText& t) const;

  uint32_t vary() const noexcept { return kVaryPhysdev; }

  struct Compiled {
    IfaceSet in_ports;   // ids matching `in` (kNoIface: the empty name)
    IfaceSet out_ports;
    uint8_t given = 0;
    uint8_t invert = 0;

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      const auto inv = [this](uint8_t b) { return (invert & b) != 0; };
      const auto has = [this](uint8_t b) { return (given & b) != 0; };
      if (!ctx.bridge_info) {
        // Only an inverted option can hold without bridge info.
        return match_result((given & ~invert) == 0);
      }
      if (has(kBridged) && ctx.bridged == inv(kBridged)) return MatchResult::NoMatch;
      if (has(kIsIn) && inv(kIsIn)) return MatchResult::NoMatch;  // a port-received packet always came in by one
      if (has(kIsOut) && ctx.bridged == inv(kIsOut)) return MatchResult::NoMatch;
      if (has(kIn) && in_ports.contains(ctx.in_port) == inv(kIn)) return MatchResult::NoMatch;
      // No out port (not bridged): no match, inverted or not [kernel].
      if (has(kOut) && (!ctx.bridged || out_ports.contains(ctx.out_port) == inv(kOut))) return MatchResult::NoMatch;
      return MatchResult::Matched;
    }
  };
  template <class C>
  void compile(C& c) const {
    Compiled m;
    m.given = given;
    m.invert = invert;
    const auto pattern = [](const std::string& name) {
      IfaceMatch p;
      p.name = name;
      if (!p.name.empty() && p.name.back() == '+') {
        p.wildcard = true;
        p.name.pop_back();
      }
      return p;
    };
    if ((given & kIn) != 0) m.in_ports = c.host().resolve(pattern(in));
    if ((given & kOut) != 0) m.out_ports = c.host().resolve(pattern(out));
    c.emit(m);
  }
};

}  // namespace nfb
