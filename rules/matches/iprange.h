// -m iprange: address ranges. iptables' libxt_iprange, the kernel's
// xt_iprange.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m iprange: lo <= addr <= hi, xor invert (lo may exceed hi: never matches).
struct IprangeMatch {
  bool has_src = false, has_dst = false;
  bool src_invert = false, dst_invert = false;
  uint32_t src_lo = 0, src_hi = 0;
  uint32_t dst_lo = 0, dst_hi = 0;
  friend bool operator==(const IprangeMatch&, const IprangeMatch&) = default;

  static constexpr const char* kName = "iprange";
  enum : uint8_t { kSrc, kDst };
  static constexpr OptDef kOptions[] = {{"src-range", kSrc, 1, true}, {"dst-range", kDst, 1, true}};
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    size_t dash = a.find('-');
    std::string_view lo_s = std::string_view(a).substr(0, dash);
    auto lo = parse_ipv4_loose(lo_s);
    if (!lo || lo_s.find('/') != std::string_view::npos)
      o.fail(o.acol, fmt::format("bad address \"{}\" in {} (expected a.b.c.d[-a.b.c.d])", lo_s, o.name));
    uint32_t hi = *lo;
    if (dash != std::string::npos) {
      std::string_view hi_s = std::string_view(a).substr(dash + 1);
      auto h = parse_ipv4_loose(hi_s);
      if (!h)
        o.fail(o.acol + static_cast<uint32_t>(dash) + 1,
               fmt::format("bad address \"{}\" in {} (expected a.b.c.d)", hi_s, o.name));
      hi = *h;
    }
    if (o.id == kSrc) {
      has_src = true;
      src_invert = o.invert;
      src_lo = *lo;
      src_hi = hi;
    } else {
      has_dst = true;
      dst_invert = o.invert;
      dst_lo = *lo;
      dst_hi = hi;
    }
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("iprange: --src-range or --dst-range must be specified");
  }
  void save(SaveLine& l) const {
    l.add("-m iprange");
    if (has_src) l.inv(src_invert).add("--src-range").add(format_ipv4(src_lo) + "-" + format_ipv4(src_hi));
    if (has_dst) l.inv(dst_invert).add("--dst-range").add(format_ipv4(dst_lo) + "-" + format_ipv4(dst_hi));
  }
  void list(ListText& t) const {
    if (has_src) t.put(" source IP range {}{}-{}", src_invert ? "! " : "", format_ipv4(src_lo), format_ipv4(src_hi));
    if (has_dst)
      t.put(" destination IP range {}{}-{}", dst_invert ? "! " : "", format_ipv4(dst_lo), format_ipv4(dst_hi));
  }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    const PacketKey& k = *ctx.key;
    auto in = [](uint32_t a, uint32_t lo, uint32_t hi) { return lo <= a && a <= hi; };
    if (has_src && in(k.src_ip, src_lo, src_hi) == src_invert) return MatchResult::NoMatch;
    if (has_dst && in(k.dst_ip, dst_lo, dst_hi) == dst_invert) return MatchResult::NoMatch;
    return MatchResult::Matched;
  }
  bool boxes(Alts& alts, const BoxRule&) const {
    if (has_src) restrict_all(alts, kDimSrcIp, range_or_complement(src_lo, src_hi, 0xffffffffU, src_invert));
    if (has_dst) restrict_all(alts, kDimDstIp, range_or_complement(dst_lo, dst_hi, 0xffffffffU, dst_invert));
    return true;
  }
};

}  // namespace nfb
