// -m set: membership in an IP set (rules/ipset.h). iptables' libxt_set
// (revision 4), the kernel's xt_set and ip_set core. fail2ban, firewalld
// and Calico keep their address lists in sets.
#pragma once

#include <cstdint>
#include <string>

#include "rules/ipset.h"
#include "rules/module.h"

namespace nfb {

/// What ip_set_test() reads of a packet.
struct IpSetPacket {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint8_t proto = 0;
  bool has_ports = false;   // the L4 header holds ports (TCP, UDP, SCTP, UDP-Lite), read
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool has_icmp = false;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  bool later_fragment = false;  // a fragment other than the first
  uint32_t length = 0;      // IP total length (counters)
  uint64_t now_ns = 0;
};

/// -m set.
///
/// Kernel (set_match_v4 -> ip_set_test): a rule naming fewer src/dst flags
/// than the set has dimensions never matches (extra flags are ignored).
/// Each flag picks the packet's source or destination address or port;
/// ICMP's "port" is type << 8 | code whichever flag is given, other
/// protocols without ports hash with port 0, a later fragment never
/// matches; bitmap:port looks at TCP and UDP only. hash:net types try the
/// set's prefix lengths longest first: the first element found decides (a
/// `nomatch` one says no). An expired element is skipped. Counters are
/// updated before --packets-/--bytes- compare them (unless !
/// --update-counters). --return-nomatch turns a nomatch element into a
/// match and a plain one into no match (hash:net types only). list:set:
/// the first member set that matches. Then `!` inverts.
/// -m set's options but the set's name: what a compiled match tests with.
struct SetTest {
  enum class Cmp : uint8_t { None, Eq, Ne, Lt, Gt };
  uint8_t dims = 0;       // number of flags (1-6)
  uint8_t src_flags = 0;  // bit i: flag i is src
  bool invert = false;
  bool return_nomatch = false;
  bool update_counters = true;
  bool update_subcounters = true;
  Cmp packets_cmp = Cmp::None;
  uint64_t packets = 0;
  Cmp bytes_cmp = Cmp::None;
  uint64_t bytes = 0;
  friend bool operator==(const SetTest&, const SetTest&) = default;
};

struct SetMatch : SetTest {
  std::string name;
  friend bool operator==(const SetMatch&, const SetMatch&) = default;

  static constexpr const char* kName = "set";
  enum : uint8_t { kMatchSet, kReturnNomatch, kUpdateCounters, kUpdateSubcounters, kPacketsEq, kPacketsLt,
                   kPacketsGt, kBytesEq, kBytesLt, kBytesGt };
  static constexpr OptDef kOptions[] = {
      {"match-set", kMatchSet, 2, true},
      {"set", kMatchSet, 2, true},  // the old spelling
      {"return-nomatch", kReturnNomatch, 0, false},
      {"update-counters", kUpdateCounters, 0, true},
      {"update-subcounters", kUpdateSubcounters, 0, true},
      {"packets-eq", kPacketsEq, 1, true},
      {"packets-lt", kPacketsLt, 1, false},
      {"packets-gt", kPacketsGt, 1, false},
      {"bytes-eq", kBytesEq, 1, true},
      {"bytes-lt", kBytesLt, 1, false},
      {"bytes-gt", kBytesGt, 1, false},
  };
  void parse(const ModuleOption& o);
  void check(const ModuleCheck& c) const;
  void save(SaveLine& l) const;
  void list(ListText& t) const;

  uint32_t vary() const noexcept { return kVaryIpset; }

  struct Compiled {
    IpSets* sets = nullptr;
    uint32_t set = 0;
    SetTest m;

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      const PacketKey& k = *ctx.key;
      IpSetPacket p;
      p.src = k.src_ip;
      p.dst = k.dst_ip;
      p.proto = k.proto;
      p.later_fragment = frag_units(k) != 0;
      p.length = k.l3_len;
      p.now_ns = ctx.now_ns;
      if (!p.later_fragment) {
        if (k.proto == kProtoIcmp) {
          p.has_icmp = k.has(key_flag::kIcmp);
          p.icmp_type = k.icmp_type;
          p.icmp_code = k.icmp_code;
        } else if (k.proto == kProtoTcp || k.proto == kProtoUdp || k.proto == kProtoSctp ||
                   k.proto == kProtoUdplite) {
          p.has_ports = l4_ports(ctx, 4, p.sport, p.dport);
        }
      }
      return match_result(test(p));
    }
    bool test(const IpSetPacket& p) const noexcept;
  };
  template <class C>
  void compile(C& c) const {
    IpSets* s = c.ipsets();
    const uint32_t i = s == nullptr ? UINT32_MAX : s->index_of(name);
    if (i == UINT32_MAX)
      c.fail(fmt::format("set \"{}\" doesn't exist (give the host's sets with --ipsets FILE, the output of "
                         "`ipset save`)", name));
    if (s->sets()[i].inet6)
      c.fail(fmt::format("the protocol family of set {} is IPv6, which is not applicable", name));
    if (s->sets()[i].type == IpSetType::Unsupported)
      c.fail(fmt::format("set \"{}\" has type {}, which this model does not support (hash:ip, hash:net, hash:ip,port, "
                         "hash:net,port, hash:ip,port,ip, hash:ip,port,net, bitmap:ip, bitmap:port, list:set)",
                         name, s->sets()[i].unsupported));
    Compiled m;
    m.sets = s;
    m.set = i;
    m.m = static_cast<const SetTest&>(*this);
    c.emit(m);
  }
};

}  // namespace nfb
