// -m ecn: the IP ECN field and the TCP ECE/CWR flags. iptables' libxt_ecn,
// the kernel's xt_ecn.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m ecn. Each test may be negated on its own.
///
/// Kernel (ecn_mt4): --ecn-ip-ect first, (TOS & 3) == ect; then the TCP
/// flags, read from the L4 header whatever the fragment offset (a later
/// fragment's payload is read as a header; too short: no match, no
/// hotdrop). --ecn-tcp-* need `-p tcp` in the rule (checkentry).
struct EcnMatch {
  static constexpr uint8_t kIp = 1, kEce = 2, kCwr = 4;  // tests given
  uint8_t ops = 0;
  uint8_t inverted = 0;  // tests negated
  uint8_t ect = 0;
  friend bool operator==(const EcnMatch&, const EcnMatch&) = default;

  static constexpr const char* kName = "ecn";
  enum : uint8_t { kOptCwr, kOptEce, kOptEct };
  static constexpr OptDef kOptions[] = {
      {"ecn-tcp-cwr", kOptCwr, 0, true}, {"ecn-tcp-ece", kOptEce, 0, true}, {"ecn-ip-ect", kOptEct, 1, true}};
  void parse(const ModuleOption& o) {
    uint8_t bit = 0;
    switch (o.id) {
      case kOptCwr: bit = kCwr; break;
      case kOptEce: bit = kEce; break;
      case kOptEct: {
        bit = kIp;
        auto v = parse_c_uint(o.a, 3);
        if (!v) o.fail(o.acol, fmt::format("ecn: bad value \"{}\" for --ecn-ip-ect (expected 0-3)", o.a));
        ect = static_cast<uint8_t>(*v);
        break;
      }
    }
    ops |= bit;
    if (o.invert) inverted |= bit;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("ecn: one of --ecn-tcp-cwr, --ecn-tcp-ece, --ecn-ip-ect is required");
    if ((ops & (kEce | kCwr)) != 0) c.need_protocol(kProtoTcp, "tcp");
  }
  void save(SaveLine& l) const {
    l.add("-m ecn");
    if ((ops & kEce) != 0) l.inv((inverted & kEce) != 0).add("--ecn-tcp-ece");
    if ((ops & kCwr) != 0) l.inv((inverted & kCwr) != 0).add("--ecn-tcp-cwr");
    if ((ops & kIp) != 0) l.inv((inverted & kIp) != 0).add("--ecn-ip-ect").add(std::to_string(ect));
  }
  void list(ListText& t) const {
    t.add(" ECN match");
    if ((ops & kEce) != 0) t.put(" {}ECE", (inverted & kEce) != 0 ? "!" : "");
    if ((ops & kCwr) != 0) t.put(" {}CWR", (inverted & kCwr) != 0 ? "!" : "");
    if ((ops & kIp) != 0) t.put(" {}ECT={}", (inverted & kIp) != 0 ? "!" : "", ect);
  }

  uint32_t vary() const noexcept {
    return ((ops & kIp) != 0 ? kVaryIpHeader : 0U) | ((ops & (kEce | kCwr)) != 0 ? kVaryTcpFlags : 0U);
  }
  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    if ((ops & kIp) != 0 && (((packet_tos(ctx) & 3) == ect) == ((inverted & kIp) != 0))) return MatchResult::NoMatch;
    if ((ops & (kEce | kCwr)) == 0) return MatchResult::Matched;
    const uint8_t* th = l4_bytes(ctx, 20);
    if (th == nullptr) return MatchResult::NoMatch;
    const uint8_t flags = th[13];
    if ((ops & kEce) != 0 && (((flags & tcp_flag::kEce) != 0) == ((inverted & kEce) != 0))) return MatchResult::NoMatch;
    if ((ops & kCwr) != 0 && (((flags & tcp_flag::kCwr) != 0) == ((inverted & kCwr) != 0))) return MatchResult::NoMatch;
    return MatchResult::Matched;
  }
};

}  // namespace nfb
