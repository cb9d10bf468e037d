// -m tcp (loaded by -p tcp): ports, flags, an option kind. iptables'
// libxt_tcp, the kernel's xt_tcpudp.
#pragma once

#include "rules/module.h"

namespace nfb {

/// TCP flags (wire order: FIN 0x01 ... CWR 0x80) as the kDimTcpFlags
/// value: bit 7 first SYN ACK RST FIN PSH URG ECE CWR, so the masks rules
/// use (SYN; SYN,ACK; SYN,RST,ACK,FIN; ALL) are high-bit prefixes and
/// become one range.
inline uint8_t tcp_flags_value(uint8_t flags) noexcept {
  static constexpr uint8_t kFrom[8] = {0x10, 0x80, 0x20, 0x08, 0x40, 0x04, 0x02, 0x01};  // wire bit -> dim bit
  uint8_t v = 0;
  for (unsigned bit = 0; bit < 8; ++bit) {
    if ((flags & (1U << bit)) != 0) v |= kFrom[bit];
  }
  return v;
}

/// -m tcp. Needs the rule's protocol to be tcp.
///
/// Kernel: on a non-first fragment no match, except fragment offset exactly
/// 1 (8 bytes, which could overwrite the first fragment's flags): HOTDROP,
/// the packet is dropped on the spot and the rule does not count it
/// [kernel]. A header shorter than 20 bytes: HOTDROP. --tcp-flags compares
/// byte 13 of the header (CWR and ECE included). --tcp-option with a data
/// offset below 5 or options beyond the packet: HOTDROP.
struct TcpMatch {
  PortRange sport, dport;
  bool sport_invert = false;
  bool dport_invert = false;
  /// --tcp-flags MASK COMP: (flags & mask) == cmp. mask 0 checks nothing.
  uint8_t flags_mask = 0;
  uint8_t flags_cmp = 0;
  bool flags_invert = false;
  /// --tcp-option N: the packet carries TCP option kind N (1..255); 0 = unchecked.
  uint8_t option = 0;
  bool option_invert = false;
  friend bool operator==(const TcpMatch&, const TcpMatch&) = default;

  static constexpr const char* kName = "tcp";
  enum : uint8_t { kSport, kDport, kSyn, kFlags, kOption };
  static constexpr OptDef kOptions[] = {
      {"source-port", kSport, 1, true}, {"sport", kSport, 1, true},
      {"destination-port", kDport, 1, true}, {"dport", kDport, 1, true},
      {"syn", kSyn, 0, true}, {"tcp-flags", kFlags, 2, true}, {"tcp-option", kOption, 1, true},
  };

  /// A comma-separated flag list: FIN SYN RST PSH ACK URG ALL NONE, any case.
  static uint8_t parse_flags(const ModuleOption& o, std::string_view s, uint32_t col) {
    struct Name {
      const char* name;
      uint8_t bits;
    };
    static constexpr Name kNames[] = {
        {"FIN", tcp_flag::kFin}, {"SYN", tcp_flag::kSyn}, {"RST", tcp_flag::kRst}, {"PSH", tcp_flag::kPsh},
        {"ACK", tcp_flag::kAck}, {"URG", tcp_flag::kUrg}, {"ALL", 0x3f},          {"NONE", 0},
    };
    uint8_t bits = 0;
    uint32_t c = col;
    for (std::string_view f : split(s, ',')) {
      bool ok = false;
      for (const Name& n : kNames) {
        if (iequals(f, n.name)) {
          bits = static_cast<uint8_t>(bits | n.bits);
          ok = true;
        }
      }
      if (!ok) o.fail(c, fmt::format("unknown TCP flag \"{}\" (expected FIN, SYN, RST, PSH, ACK, URG, ALL or NONE)", f));
      c += static_cast<uint32_t>(f.size()) + 1;
    }
    return bits;
  }

  void parse(const ModuleOption& o) {
    switch (o.id) {
      case kSport: sport = o.line.parse_l4_port_range(o.a, o.acol, ServiceScope::Tcp); sport_invert = o.invert; break;
      case kDport: dport = o.line.parse_l4_port_range(o.a, o.acol, ServiceScope::Tcp); dport_invert = o.invert; break;
      case kSyn:
        o.conflict(kFlags, "--tcp-flags");
        flags_mask = tcp_flag::kFin | tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kAck;
        flags_cmp = tcp_flag::kSyn;
        flags_invert = o.invert;
        break;
      case kFlags:
        o.conflict(kSyn, "--syn");
        flags_mask = parse_flags(o, o.a, o.acol);
        flags_cmp = parse_flags(o, o.args[1], o.cols[1]);
        flags_invert = o.invert;
        break;
      case kOption: {
        auto v = parse_c_uint(o.a, 255);
        if (!v || *v == 0) o.fail(o.acol, fmt::format("bad TCP option \"{}\" (expected an option kind 1-255)", o.a));
        option = static_cast<uint8_t>(*v);
        option_invert = o.invert;
        break;
      }
    }
  }
  void check(const ModuleCheck& c) const { c.need_protocol(kProtoTcp, "tcp"); }

  /// A flag set as iptables-save prints it: names in wire order, or NONE.
  static std::string flag_names(uint8_t bits) {
    static constexpr std::pair<uint8_t, const char*> kNames[] = {
        {tcp_flag::kFin, "FIN"}, {tcp_flag::kSyn, "SYN"}, {tcp_flag::kRst, "RST"}, {tcp_flag::kPsh, "PSH"},
        {tcp_flag::kAck, "ACK"}, {tcp_flag::kUrg, "URG"}, {tcp_flag::kEce, "ECE"}, {tcp_flag::kCwr, "CWR"},
    };
    if (bits == 0) return "NONE";
    std::string out;
    for (const auto& [bit, name] : kNames) {
      if ((bits & bit) == 0) continue;
      if (!out.empty()) out += ',';
      out += name;
    }
    return out;
  }
  void save(SaveLine& l) const {
    l.add("-m tcp");
    if (!sport.is_any()) l.inv(sport_invert).add("--sport").add(format_range(sport.lo, sport.hi, ':'));
    if (!dport.is_any()) l.inv(dport_invert).add("--dport").add(format_range(dport.lo, dport.hi, ':'));
    if (option != 0) l.inv(option_invert).add("--tcp-option").add(std::to_string(option));
    if (flags_mask != 0 || flags_invert)
      l.inv(flags_invert).add("--tcp-flags").add(flag_names(flags_mask)).add(flag_names(flags_cmp));
  }
  /// tcp/udp port text of -L: ` spt:N` / ` spts:A:B` (`!` after the colon),
  /// printed whenever the range is not 0:65535 or is inverted.
  static void list_ports(ListText& t, const char* name, const PortRange& r, bool invert) {
    if (r.is_any() && !invert) return;
    t.put(" {}{}:{}{}", name, r.lo == r.hi ? "" : "s", invert ? "!" : "", format_range(r.lo, r.hi, ':'));
  }
  void list(ListText& t) const {
    t.add(" tcp");
    list_ports(t, "spt", sport, sport_invert);
    list_ports(t, "dpt", dport, dport_invert);
    if (option != 0 || option_invert) t.put(" option={}{}", option_invert ? "!" : "", option);
    if (flags_mask != 0 || flags_invert)
      t.put(" flags:{}0x{:02X}/0x{:02X}", flags_invert ? "!" : "", flags_mask, flags_cmp);
  }

  uint32_t vary() const noexcept {
    return (flags_mask != 0 || flags_invert ? kVaryTcpFlags : 0U) | (option != 0 ? kVaryTcpOption : 0U);
  }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    constexpr uint32_t kHeaderLen = 20;
    const PacketKey& k = *ctx.key;
    if (k.is_later_fragment()) return frag_units(k) == 1 ? MatchResult::Hotdrop : MatchResult::NoMatch;
    uint16_t sp = 0, dp = 0;
    uint8_t flags = 0;
    if (k.has(key_flag::kTcpFlags)) {
      sp = k.src_port;
      dp = k.dst_port;
      flags = k.tcp_flags;
    } else {
      const uint8_t* th = l4_bytes(ctx, kHeaderLen);
      if (th == nullptr) return MatchResult::Hotdrop;  // cannot examine: the kernel drops
      sp = load_be16(th);
      dp = load_be16(th + 2);
      flags = th[13];
    }
    if (sport.contains(sp) == sport_invert) return MatchResult::NoMatch;
    if (dport.contains(dp) == dport_invert) return MatchResult::NoMatch;
    if (((flags & flags_mask) == flags_cmp) == flags_invert) return MatchResult::NoMatch;
    if (option == 0) return MatchResult::Matched;

    // --tcp-option: walk the option list. Without frame bytes the list is
    // taken as empty (only hand-made keys lack them).
    uint32_t optlen = 0;
    const uint8_t* th = l4_bytes(ctx, kHeaderLen);
    if (th != nullptr) {
      const uint32_t doff = static_cast<uint32_t>(th[12] >> 4) * 4U;
      if (doff < kHeaderLen) return MatchResult::Hotdrop;
      optlen = doff - kHeaderLen;
      if (optlen != 0 && l4_bytes(ctx, doff) == nullptr) return MatchResult::Hotdrop;
    }
    const uint8_t* op = th == nullptr ? nullptr : th + kHeaderLen;
    for (uint32_t i = 0; i < optlen;) {
      if (op[i] == option) return match_result(!option_invert);
      if (op[i] < 2) {
        ++i;  // EOL and NOP are one byte
      } else {
        // A length byte of 0 (or one past the list) advances by one, as the
        // kernel does; either way the walk stays inside the list.
        const uint32_t len = i + 1 < optlen ? op[i + 1] : 0;
        i += len != 0 ? len : 1;
      }
    }
    return match_result(option_invert);
  }

  /// Ports and flags as ranges; --tcp-option does not fit (residual). Ports
  /// and flags are necessary conditions: they stay in the box even when the
  /// option check makes the rule residual.
  bool boxes(Alts& alts, const BoxRule& r) const {
    if (!r.tcp()) return false;
    restrict_ports(alts, sport, sport_invert, dport, dport_invert);
    if (flags_mask != 0 || flags_invert) {
      std::array<bool, 256> in{};
      for (unsigned f = 0; f < 256; ++f) {
        in[tcp_flags_value(static_cast<uint8_t>(f))] = ((f & flags_mask) == flags_cmp) != flags_invert;
      }
      constexpr size_t kMaxFlagRuns = 4;
      Ranges runs = runs_of(256, [&in](uint32_t v) { return in[v]; });
      if (runs.size() > kMaxFlagRuns) return false;
      restrict_all(alts, kDimTcpFlags, runs);
    }
    return option == 0 && !option_invert;
  }
  /// --sport/--dport into the port dimensions (tcp and udp).
  static void restrict_ports(Alts& alts, const PortRange& sp, bool sinv, const PortRange& dp, bool dinv) {
    if (!(sp.is_any() && !sinv)) restrict_all(alts, kDimSrcPort, range_or_complement(sp.lo, sp.hi, 0xffff, sinv));
    if (!(dp.is_any() && !dinv)) restrict_all(alts, kDimDstPort, range_or_complement(dp.lo, dp.hi, 0xffff, dinv));
  }
};

}  // namespace nfb
