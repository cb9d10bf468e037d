// -m addrtype: the route type of the source and destination addresses.
// iptables' libxt_addrtype, the kernel's xt_addrtype.
#pragma once

#include <optional>

#include "rules/module.h"

namespace nfb {

/// -m addrtype. Type sets are addr_type_bit() sets; 0 = not checked. The
/// type is the host's (HostModel::addr_type) for the current (post-NAT)
/// address, looked up on the in/out interface only with
/// --limit-iface-in/out [kernel].
struct AddrtypeMatch {
  uint16_t src_types = 0;
  uint16_t dst_types = 0;
  bool src_invert = false;
  bool dst_invert = false;
  bool limit_iface_in = false;   // look the address up on the input interface only
  bool limit_iface_out = false;  // ... on the output interface only
  friend bool operator==(const AddrtypeMatch&, const AddrtypeMatch&) = default;

  static constexpr const char* kName = "addrtype";
  enum : uint8_t { kSrc, kDst, kIfaceIn, kIfaceOut };
  static constexpr OptDef kOptions[] = {
      {"src-type", kSrc, 1, true}, {"dst-type", kDst, 1, true},
      {"limit-iface-in", kIfaceIn, 0, false}, {"limit-iface-out", kIfaceOut, 0, false},
  };
  void parse(const ModuleOption& o) {
    if (o.id == kIfaceIn) {
      o.conflict(kIfaceOut, "--limit-iface-out");
      limit_iface_in = true;
    } else if (o.id == kIfaceOut) {
      o.conflict(kIfaceIn, "--limit-iface-in");
      limit_iface_out = true;
    } else {
      uint16_t types = 0;
      uint32_t c = o.acol;
      for (std::string_view s : split(o.a, ',')) {
        auto t = parse_addr_type(s);
        if (!t) o.fail(c, fmt::format("bad address type \"{}\" (expected UNSPEC, UNICAST, LOCAL, BROADCAST, ANYCAST, "
                                      "MULTICAST, BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT or XRESOLVE)", s));
        types = static_cast<uint16_t>(types | addr_type_bit(*t));
        c += static_cast<uint32_t>(s.size()) + 1;
      }
      if (o.id == kSrc) {
        src_types = types;
        src_invert = o.invert;
      } else {
        dst_types = types;
        dst_invert = o.invert;
      }
    }
  }
  void check(const ModuleCheck& c) const {
    if (!c.given(kSrc) && !c.given(kDst)) c.fail("addrtype: --src-type or --dst-type must be specified");
  }
  /// --limit-iface-in needs an input interface, --limit-iface-out an output one.
  HookMask hooks() const noexcept {
    if (limit_iface_in) return kInputSideHooks;
    if (limit_iface_out) return kOutputSideHooks;
    return kAllHooks;
  }
  /// What restricts hooks(), for messages.
  const char* hooks_reason() const noexcept { return limit_iface_in ? " --limit-iface-in" : " --limit-iface-out"; }

  void save(SaveLine& l) const {
    l.add("-m addrtype");
    if (src_types != 0) l.inv(src_invert).add("--src-type").add(format_addr_types(src_types));
    if (dst_types != 0) l.inv(dst_invert).add("--dst-type").add(format_addr_types(dst_types));
    if (limit_iface_in) l.add("--limit-iface-in");
    if (limit_iface_out) l.add("--limit-iface-out");
  }
  void list(ListText& t) const {
    t.add(" ADDRTYPE match");
    if (src_types != 0) t.put(" src-type {}{}", src_invert ? "!" : "", format_addr_types(src_types));
    if (dst_types != 0) t.put(" dst-type {}{}", dst_invert ? "!" : "", format_addr_types(dst_types));
    if (limit_iface_in) t.add(" limit-in");
    if (limit_iface_out) t.add(" limit-out");
  }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    if (ctx.host == nullptr) return MatchResult::NoMatch;
    std::optional<uint16_t> limit;
    if (limit_iface_in) {
      if (ctx.in_iface != kNoIface) limit = ctx.in_iface;
    } else if (limit_iface_out) {
      if (ctx.out_iface != kNoIface) limit = ctx.out_iface;
    }
    const PacketKey& k = *ctx.key;
    if (src_types != 0) {
      const bool hit = (addr_type_bit(ctx.host->addr_type(k.src_ip, limit)) & src_types) != 0;
      if (hit == src_invert) return MatchResult::NoMatch;
    }
    if (dst_types != 0) {
      const bool hit = (addr_type_bit(ctx.host->addr_type(k.dst_ip, limit)) & dst_types) != 0;
      if (hit == dst_invert) return MatchResult::NoMatch;
    }
    return MatchResult::Matched;
  }

  /// Type sets as runs of RTN_* numbers; --limit-iface-in/out do not fit.
  bool boxes(Alts& alts, const BoxRule&) const {
    if (limit_iface_in || limit_iface_out) return false;
    auto add = [&](Dim d, uint16_t types, bool inv) {
      if (types == 0) return;
      restrict_all(alts, d, runs_of(kAddrTypeCount, [types, inv](uint32_t t) {
                     return ((types & (1U << t)) != 0) != inv;
                   }));
    };
    add(kDimSrcAddrtype, src_types, src_invert);
    add(kDimDstAddrtype, dst_types, dst_invert);
    return true;
  }
};

}  // namespace nfb
