// -m mac --mac-source. iptables' libxt_mac, the kernel's xt_mac.
#pragma once

#include <array>

#include "rules/module.h"

namespace nfb {

/// -m mac: the Ethernet source address. Packets without one, and packets
/// that came in on a loopback interface, never match, even inverted. Only
/// from hooks with an input interface.
struct MacMatch {
  std::array<uint8_t, 6> addr{};
  bool invert = false;
  friend bool operator==(const MacMatch&, const MacMatch&) = default;

  static constexpr const char* kName = "mac";
  static constexpr OptDef kOptions[] = {{"mac-source", 0, 1, true}};
  void parse(const ModuleOption& o) {
    auto parts = split(o.a, ':');
    bool ok = parts.size() == 6;
    for (size_t i = 0; ok && i < 6; ++i) {
      std::string_view p = parts[i];
      if (p.empty() || p.size() > 2) {
        ok = false;
        break;
      }
      unsigned v = 0;
      for (char ch : p) {
        int d = digit_value(ch);
        if (d > 15) {
          ok = false;
          break;
        }
        v = v * 16 + static_cast<unsigned>(d);
      }
      addr[i] = static_cast<uint8_t>(v);
    }
    if (!ok) o.fail(o.acol, fmt::format("bad MAC address \"{}\" (expected xx:xx:xx:xx:xx:xx)", o.a));
    invert = o.invert;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("mac: option \"--mac-source\" must be specified");
  }
  HookMask hooks() const noexcept { return kInputSideHooks; }
  const char* hooks_reason() const noexcept { return ""; }

  std::string addr_text() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", addr[0], addr[1], addr[2], addr[3], addr[4],
                       addr[5]);
  }
  void save(SaveLine& l) const { l.add("-m mac").inv(invert).add("--mac-source").add(addr_text()); }
  void list(ListText& t) const { t.put(" MAC {}{}", invert ? "! " : "", addr_text()); }

  uint32_t vary() const noexcept { return kVaryMac; }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const PacketKey& k = *ctx.key;
    // No Ethernet header (raw IP, cooked capture without an address) or a
    // loopback device: the kernel's mac match fails before comparing.
    if (!k.has(key_flag::kMac)) return MatchResult::NoMatch;
    if (ctx.host != nullptr && ctx.in_iface < ctx.host->iface_count() && ctx.host->iface(ctx.in_iface).loopback)
      return MatchResult::NoMatch;
    return match_result((k.src_mac == addr) != invert);
  }
};

}  // namespace nfb
