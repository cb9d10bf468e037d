// The host model: interfaces, addresses, routes and address types of the
// machine the netfilter pipeline runs on.
//
// Idea: the IPv4 packet path asks the host three questions per packet, and
// this class answers them from tables built once at load time.
//  - Where does this packet go? The routing decision after PREROUTING, on the
//    post-DNAT destination: INPUT (local, broadcast, joined multicast),
//    FORWARD with an out interface and next hop, or dropped (martian, no
//    route, blackhole/unreachable/prohibit). route_input().
//  - What kind of address is this? `-m addrtype --src-type/--dst-type` with
//    or without --limit-iface-in/out. addr_type().
//  - Which source address does MASQUERADE take on this out interface?
//    masquerade_source().
// plus interface names <-> dense ids for -i/-o (iface_id(), resolve()).
//
// Two phases, like every classifier here: a HostModel is built from a
// HostSpec (control plane: allocates, validates, throws LoadError), then only
// looked up: every lookup is const, noexcept and allocation-free.
//
// Interface ids are dense, 0..N-1, in the order the spec lists interfaces
// (`ip -j addr` lists them by kernel ifindex, so lo is 0). They are what
// PacketKey::ifindex holds and what rules resolve -i/-o names to.
//
// Memory layout and cost of a route lookup: each routing table (the merged
// local+main table, then the `default` table) keeps, for every prefix length
// present, a sorted array of the masked prefixes with the index of the
// winning entry; lengths are visited longest first and each is one binary
// search. Cost O(L log n) for L distinct prefix lengths (5 on the default
// Docker host: /32 /24 /16 /8 /0), all in a few contiguous arrays. Local
// addresses are one sorted array (binary search); multicast memberships a
// sorted (iface, group) array.
//
// WHAT THE KERNEL DOES (verified on Linux 6.18 in a namespace built like the
// default Docker host: veth eth0 198.51.100.1/24 with the peer at .254 as the
// default gateway, bridges docker0 172.17.0.1/16 and br-5c0a8c6e1d2f
// 172.18.0.1/16, ip_forward=1, rp_filter=0; UDP frames injected on the peer
// with AF_PACKET, counted by `-m addrtype` rules in mangle PREROUTING and
// per-interface rules in mangle INPUT/FORWARD; MASQUERADE results read with
// `conntrack -L`):
//
// Implicit routes (fib_add_ifaddr). For every address: `local ADDR/32 dev
// IFACE` in table local, also when the device is down; its prefsrc is the
// primary address of that subnet (itself unless secondary). Only when the
// device is up, and only for a primary (non-secondary) address whose masked
// prefix is not 0.0.0.0 (0.1.2.3/16 gets 0.1.0.0/16, 0.9.2.3/8 gets nothing)
// and that is not a lone /32: the connected route PREFIX/LEN in table main
// (type local in table local when the device is the loopback: `local
// 127.0.0.0/8 dev lo`) unless `noprefixroute`, and for LEN < 31 the subnet
// broadcast `broadcast PREFIX|~MASK` in table local. An
// explicit `brd` other than 255.255.255.255 gets its own broadcast route.
// There is NO broadcast route for the network address any more (198.51.100.0
// and 172.17.0.0 are plain unicast, and are forwarded back out their subnet).
// Secondary addresses add only their local /32. `ip -j addr` lists primaries
// before secondaries, each flagged "secondary": true.
//
// Table lookup. Without `ip rule` customisation the kernel merges tables
// local and main into one trie: a lookup is ONE longest-prefix match over
// both (a /24 in main beats the /8 `local 127.0.0.0/8`), and on an equal
// prefix the local-table entry wins, then the lower metric. A `local` route
// added to main is seen by addrtype. Then table `default` is tried. throw
// continues to the next table; nothing left gives "Network is unreachable".
// blackhole/unreachable/prohibit end the lookup with that error.
//
// addr_type() (inet_addr_type / inet_dev_addr_type as xt_addrtype calls
// them): 0.0.0.0 and 255.255.255.255 are BROADCAST; 224.0.0.0/4 is
// MULTICAST; otherwise the type of the entry the merged local+main lookup
// finds (LOCAL, BROADCAST, UNICAST, or ANYCAST/MULTICAST for such routes).
// A lookup that finds nothing, or finds blackhole/unreachable/prohibit/throw,
// answers UNICAST: addrtype never reports BLACKHOLE, UNREACHABLE, PROHIBIT or
// THROW for an IPv4 address, and never UNSPEC. Only the exact address
// 0.0.0.0 is BROADCAST: 0.1.2.3 is UNICAST (and is routed like any address).
// The `default` table is not consulted. With --limit-iface-in/out the answer
// is the entry's type only when the entry's device is that interface, else
// UNICAST: 172.17.0.1 arriving on eth0 is LOCAL unlimited but UNICAST with
// --limit-iface-in; 127.0.0.5 is UNICAST limited to any interface but lo;
// 198.51.100.255 on eth0 stays BROADCAST. The 0.0.0.0, 255.255.255.255 and
// multicast answers do not depend on the interface.
//
// Input routing (ip_route_input_slow), in this order:
//  - source multicast or 255.255.255.255: martian (dropped after PREROUTING).
//  - destination 255.255.255.255, or source and destination both 0.0.0.0:
//    INPUT as broadcast (a non-zero source is validated, see below).
//  - destination multicast: INPUT if the in interface joined the group, else
//    dropped (no multicast routing). Every IPv4 device joins 224.0.0.1 (lo
//    too); a bridge with multicast snooping (the default, so docker0) also
//    joins 224.0.0.106. Source 0.0.0.0 is allowed only for 224.0.0.0/24
//    (and IGMP, not modelled); the source is validated.
//  - source 0.0.0.0 (0 -> 198.51.100.1, 0 -> 198.51.100.255), destination
//    0.0.0.0: martian.
//  - destination or source in 127.0.0.0/8 arriving on a non-loopback device
//    without route_localnet: martian.
//  - FIB lookup: no route -> dropped (ICMP net unreachable); blackhole ->
//    dropped silently; unreachable/prohibit -> dropped (ICMP host
//    unreachable / packet filtered). local or broadcast (a subnet broadcast
//    of ANY interface, 172.17.255.255 arriving on eth0 included) -> INPUT.
//    unicast -> FORWARD out the entry's device (back out the in interface
//    too). Other types -> martian.
//  - Source validation (fib_validate_source, rp_filter=0): with no custom
//    local routes and the out interface not the in interface, the source is
//    martian only when it is one of the host's own addresses (so a subnet
//    broadcast source is accepted for INPUT and for forwarding to another
//    interface). Otherwise (a `local` route was added by hand, or the packet
//    would leave by the interface it came in on, send_redirects=1) a full
//    check: the source's own FIB entry must be unicast (local and broadcast
//    sources are martian; no route or an error route is accepted).
//  - ip_forward=0: local and broadcast destinations still go to INPUT;
//    everything else, error routes and no route included, is dropped with
//    "No route to host".
//
// MASQUERADE (inet_select_addr(out, next_hop, RT_SCOPE_UNIVERSE)): among the
// out interface's primary global-scope addresses, the first whose subnet
// holds the next hop (the gateway, or the destination when on-link), else the
// first of them; secondary and link/host-scope addresses are never taken
// (not even when their subnet holds the next hop). An interface with no such
// address borrows the first primary global address of the first interface
// (in id order) that has one; none at all: the packet is dropped.
//
// Bridges (br_netfilter; verified by the bridge_hairpin and bridge_plain
// kernel scenarios, tests/support/scenarios.h). A frame received on a
// bridge port belongs to the bridge: -i sees the bridge, `-m physdev
// --physdev-in` the port. With bridge-nf-call-iptables=1 (the default once
// br_netfilter is loaded) every IPv4 frame entering a port walks
// PREROUTING; then
//  - the frame is for another station on the bridge (its destination MAC is
//    one the bridge learned on another port): it is bridged. FORWARD
//    (-i and -o both the bridge, physdev-out the station's port) and
//    POSTROUTING, with no routing: no TTL check or decrement, ip_forward
//    not needed (bridge_no_forward);
//  - nat PREROUTING changed its destination address (DNAT, or the reverse of
//    a SNAT) and the new destination routes out the same bridge: bridged
//    too ("bridged DNAT", the hairpin of a service whose endpoint shares the
//    client's bridge). With ip_forward=0 it is dropped, as routing drops it;
//  - else it goes up to the host and is routed as any packet, PREROUTING
//    not walked again; physdev-in still matches in INPUT and FORWARD.
// With bridge-nf-call-iptables=0 bridged frames never reach netfilter (no
// counters, no conntrack entry) and a hairpin DNAT is routed. Stations are
// learned as the bridge learns them, from the source MAC of every frame
// (ARP and IPv6 ones too: Pipeline::learn_stations), and their IPv4
// addresses from IPv4 sources and ARP senders (the neighbour table a bridged
// DNAT consults). Learning happens as a frame arrives (the kernel learns
// after PREROUTING, so a frame raw drops teaches it nothing).
// Hairpin: a bridged DNAT whose new destination is the station behind the
// port the frame came in by (a service endpoint reaching itself) goes back
// out that port only when the port has hairpin mode (Interface::hairpin);
// without it the bridge drops the frame after nat PREROUTING, before
// FORWARD (fate dropped_by_bridge; the entry is never confirmed). Each
// bridge's own nf_call_iptables option turns br_netfilter on for it alone.
// A bridged DNAT to a station the bridge never saw is flooded: FORWARD and
// POSTROUTING once per port (the in port too in hairpin mode), each copy
// from the packet as routing left it, the entry confirmed once. A unicast
// destination MAC the bridge has not learned (the kernel floods it to every
// other port) is taken as addressed to the host, so captures with any host
// MAC replay as before; broadcast frames bridged besides delivered, and
// station-to-station frames for a station on their own port are not
// modelled. A station seen only on the bridge itself (a capture named the
// bridge, so its port is not known) gets one walk: the out port is the
// bridge's single flood port when there is one, else unknown.
// Captures: a frame whose capture interface is a port (pcapng interface
// name) arrives by that port; one captured on the bridge has no known port
// (physdev-in compares the empty name).
//
// Not modelled: policy routing rules (`ip rule`, which also un-merge local
// and main), rp_filter 1/2, per-interface forwarding off, multipath routes
// (rejected at load), TOS routes (rejected), multicast groups joined by
// sockets, the output route of locally generated packets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule.h"

namespace nfb {

// kNoIface ("no interface": a route without a device, a packet with no
// in/out) is the rule model's (rules/module.h).
/// Interfaces a host may have (ids 0 .. kMaxIfaces-1).
inline constexpr size_t kMaxIfaces = 0xfffe;

/// Address scopes, the kernel's RT_SCOPE_* numbers.
namespace addr_scope {
inline constexpr uint8_t kGlobal = 0;
inline constexpr uint8_t kSite = 200;
inline constexpr uint8_t kLink = 253;
inline constexpr uint8_t kHost = 254;
inline constexpr uint8_t kNowhere = 255;
}  // namespace addr_scope

/// One IPv4 address of an interface (`inet` in `ip addr`). Host byte order.
struct IfaceAddress {
  uint32_t local = 0;       // the address
  uint32_t peer = 0;        // point-to-point peer (`peer P/LEN`); 0 = none (the subnet is local's)
  uint8_t prefix_len = 32;  // 0..32
  uint8_t scope = addr_scope::kGlobal;
  uint32_t broadcast = 0;   // explicit `brd`; 0 = none
  bool secondary = false;   // a further address in a subnet the interface already has
  bool noprefixroute = false;

  /// The address the subnet is computed from: the peer when given.
  constexpr uint32_t subnet_base() const noexcept { return peer != 0 ? peer : local; }
  friend bool operator==(const IfaceAddress&, const IfaceAddress&) = default;
};

/// One interface. Addresses keep the kernel's list order (primaries first,
/// as `ip -j addr` prints them): "first" and "primary" below mean that order.
struct Interface {
  std::string name;               // 1..15 bytes
  uint32_t kernel_ifindex = 0;    // as `ip` reported it; 0 when unknown
  std::array<uint8_t, 6> mac{};   // when has_mac
  bool has_mac = false;
  bool up = true;
  bool loopback = false;
  bool route_localnet = false;    // accept 127.0.0.0/8 from the wire (net.ipv4.conf.X.route_localnet)
  bool bridge_mcast_snooping = false;  // a bridge with multicast snooping: joins 224.0.0.106
  bool bridge = false;            // a bridge device (frames arrive on its ports)
  /// The bridge this interface is a port of (an id), or kNoIface. A frame
  /// received on a port is the bridge's: -i sees the bridge, -m physdev
  /// --physdev-in the port.
  uint16_t master = kNoIface;
  /// A port's hairpin mode (`ip -d`'s info_slave_data "hairpin"): the bridge
  /// may send a frame back out the port it came in by. Unknown (no `ip -d`)
  /// is taken as on, as CNI bridges and Docker without userland-proxy set it.
  std::optional<bool> hairpin;
  /// A bridge's own nf_call_iptables option (`ip -d`'s info_data): its
  /// frames walk iptables even when the sysctl is 0.
  bool bridge_nf_call_iptables = false;
  std::vector<IfaceAddress> addrs;
  std::vector<uint32_t> mcast_groups;  // groups joined besides 224.0.0.1 (and 224.0.0.106)
  friend bool operator==(const Interface&, const Interface&) = default;
};

/// The routing tables the kernel consults without policy rules, in order.
enum class RouteTable : uint8_t { Local, Main, Default };
const char* route_table_name(RouteTable t) noexcept;  // "local", "main", "default"

/// One route (`ip route` line). Route types use the kernel's RTN_* numbering,
/// which is AddrType's.
struct Route {
  RouteTable table = RouteTable::Main;
  AddrType type = AddrType::Unicast;  // Unicast, Local, Broadcast, Anycast, Multicast,
                                      // Blackhole, Unreachable, Prohibit, Throw
  uint32_t dst = 0;                   // masked prefix, host order
  uint8_t prefix_len = 0;
  uint32_t gateway = 0;               // 0 = on-link (the next hop is the destination)
  uint16_t iface = kNoIface;          // device; kNoIface for blackhole/unreachable/prohibit/throw
  uint32_t prefsrc = 0;               // 0 = none
  uint32_t metric = 0;
  bool kernel = false;                // `proto kernel`: made by the kernel from an address
  friend bool operator==(const Route&, const Route&) = default;
};

/// `ip route`-like text for messages and tests, e.g. "broadcast
/// 172.17.255.255 dev docker0 table local proto kernel src 172.17.0.1" or
/// "default via 198.51.100.254 dev eth0 table main". Devices are named from
/// `ifaces` (by id); an id outside it prints as "#ID".
std::string format_route(const Route& r, std::span<const Interface> ifaces = {});

/// Everything a HostModel is built from.
struct HostSpec {
  std::vector<Interface> interfaces;  // id = index
  /// Routes as given. With synthesize_local_table the local table is made
  /// from the addresses (then any given local-table route is an error);
  /// with synthesize_connected_routes so are the connected main routes
  /// (what the kernel adds when an address is configured).
  std::vector<Route> routes;
  bool synthesize_local_table = true;
  bool synthesize_connected_routes = false;
  /// net.ipv4.ip_forward. Docker turns it on; off, a packet that is not for
  /// the host is dropped with ICMP host unreachable instead of forwarded.
  bool ip_forward = true;
  /// net.bridge.bridge-nf-call-iptables (br_netfilter): frames arriving on
  /// a bridge port go through the IPv4 hooks, bridged ones included. The
  /// kernel's default once br_netfilter is loaded, which Docker and kubeadm
  /// do. See "Bridges" at the top.
  bool bridge_nf_call_iptables = true;
};

/// What a FIB lookup found: a copy of the winning entry. type Unspec means
/// no entry (or only throw entries): "Network is unreachable".
struct RouteResult {
  AddrType type = AddrType::Unspec;
  RouteTable table = RouteTable::Main;
  uint8_t prefix_len = 0;
  uint16_t iface = kNoIface;
  uint32_t prefix = 0;
  uint32_t gateway = 0;
  uint32_t prefsrc = 0;
  uint32_t metric = 0;

  constexpr bool found() const noexcept { return type != AddrType::Unspec; }
  /// Where a packet to dst is handed: the gateway, or dst itself on-link.
  constexpr uint32_t next_hop(uint32_t dst) const noexcept { return gateway != 0 ? gateway : dst; }
  friend bool operator==(const RouteResult&, const RouteResult&) = default;
};

/// The routing decision for a received packet (after PREROUTING).
enum class RouteVerdict : uint8_t {
  Input,        // to the INPUT hook: local, broadcast or joined multicast
  Forward,      // to FORWARD, then POSTROUTING out `out_iface`
  Martian,      // impossible source/destination: dropped, no ICMP
  NoRoute,      // no entry (or throw): dropped, ICMP net unreachable
  Blackhole,    // blackhole entry: dropped silently
  Unreachable,  // unreachable entry: dropped, ICMP host unreachable
  Prohibit,     // prohibit entry: dropped, ICMP packet filtered
  NotJoined,    // multicast to a group the in interface has not joined: dropped
};
const char* route_verdict_name(RouteVerdict v) noexcept;  // "input", "forward", ...

struct RouteDecision {
  RouteVerdict verdict = RouteVerdict::NoRoute;
  /// Local/Broadcast/Multicast for Input, Unicast for Forward; for drops the
  /// entry's type (Unspec when none was consulted).
  AddrType type = AddrType::Unspec;
  uint16_t out_iface = kNoIface;  // Forward only
  uint32_t next_hop = 0;          // Forward only: gateway or destination
  RouteResult fib;                // the destination's FIB entry, when one was looked up

  constexpr bool to_input() const noexcept { return verdict == RouteVerdict::Input; }
  constexpr bool to_forward() const noexcept { return verdict == RouteVerdict::Forward; }
};

class HostModel {
 public:
  /// An empty host (no interfaces, no routes): every lookup says no route.
  HostModel() = default;

  /// Builds the tables. Validates the spec and throws LoadError located at
  /// `origin` (a file name, or a description for hand-made specs) on: more
  /// than kMaxIfaces interfaces, an empty, over-long or duplicate name, a
  /// prefix length over 32, a route naming an unknown interface, a device
  /// route without a device, a route type other than those listed in Route,
  /// a local-table route while synthesize_local_table is set. Route dst is
  /// masked to its prefix. Cost O((A + R) log (A + R)).
  static HostModel build(HostSpec spec, const std::string& origin);

  // ---- interfaces -------------------------------------------------------
  size_t iface_count() const noexcept { return ifaces_.size(); }
  /// Interface `id` (id < iface_count()).
  const Interface& iface(uint16_t id) const noexcept { return ifaces_[id]; }
  std::span<const Interface> interfaces() const noexcept { return ifaces_; }
  /// The id of the interface with this exact name. O(log N), no allocation.
  std::optional<uint16_t> iface_id(std::string_view name) const noexcept;
  /// The first loopback interface, or kNoIface.
  uint16_t loopback_iface() const noexcept { return loopback_; }
  /// Is `id` a bridge device? (false for kNoIface and unknown ids)
  bool is_bridge(uint16_t id) const noexcept { return id < ifaces_.size() && ifaces_[id].bridge; }
  /// The bridge `id` is a port of, or kNoIface.
  uint16_t master_of(uint16_t id) const noexcept { return id < ifaces_.size() ? ifaces_[id].master : kNoIface; }
  /// True when some interface is a bridge port.
  bool has_bridge_ports() const noexcept { return has_ports_; }
  /// The ports of bridge `id` (ids, ascending; empty for other interfaces).
  std::span<const uint16_t> ports_of(uint16_t id) const noexcept;
  /// net.bridge.bridge-nf-call-iptables.
  bool bridge_nf_call_iptables() const noexcept { return bridge_nf_; }
  /// net.ipv4.ip_forward.
  bool ip_forward() const noexcept { return ip_forward_; }

  /// Does the -i/-o pattern match interface `id`? Compares names, O(name
  /// length); prefer resolve() on the packet path. kNoIface stands for "no
  /// interface" (the empty name, which only `+` or an inverted name matches).
  bool iface_matches(const IfaceMatch& m, uint16_t id) const noexcept;
  /// The ids the pattern matches, for a per-packet bit test.
  IfaceSet resolve(const IfaceMatch& m) const;

  // ---- addresses --------------------------------------------------------
  /// Is `addr` assigned to any interface (any scope, secondaries too, up or
  /// down)? O(log A).
  bool is_local_address(uint32_t addr) const noexcept;
  /// The first primary global-scope address of the interface (what
  /// MASQUERADE takes when none of its subnets holds the next hop).
  std::optional<uint32_t> primary_address(uint16_t iface) const noexcept;
  /// The source address MASQUERADE gives a packet leaving by `out_iface`
  /// towards `next_hop` (see the comment at the top: subnet of the next hop,
  /// else the first primary global address, else another interface's).
  /// nullopt: no usable address on the host (the kernel drops the packet).
  /// O(addresses of out_iface), or O(all addresses) when it has none.
  std::optional<uint32_t> masquerade_source(uint16_t out_iface, uint32_t next_hop) const noexcept;
  /// Has interface `iface` joined multicast group `group`? O(log G).
  bool joined_group(uint16_t iface, uint32_t group) const noexcept;

  // ---- routing ----------------------------------------------------------
  /// The FIB lookup the kernel does for `dst`: one longest-prefix match over
  /// tables local and main merged (equal prefix: local first, then lower
  /// metric), then table default; a throw entry moves on to the next table.
  /// No special case for broadcast/multicast/zero addresses (route_input has
  /// them). O(L log n), see the top comment.
  RouteResult route(uint32_t dst) const noexcept;
  /// The routing decision for a packet from `src` to `dst` received on
  /// `in_iface` (kNoIface or an unknown id: treated as a non-loopback device
  /// without route_localnet that has joined only 224.0.0.1), as the kernel
  /// takes it after PREROUTING. A loopback in_iface skips the 127.0.0.0/8
  /// martian checks; note that the kernel never routes looped-back packets
  /// again (they keep their output route), so for lo this is only what `ip
  /// route get ... iif lo` answers (an own source address is martian).
  RouteDecision route_input(uint32_t dst, uint32_t src, uint16_t in_iface) const noexcept;
  /// `-m addrtype`: the kernel's type of `addr`, looked up without an
  /// interface, or on `limit_iface` for --limit-iface-in/out. Never
  /// Blackhole/Unreachable/Prohibit/Throw/Unspec; see the top comment.
  AddrType addr_type(uint32_t addr, std::optional<uint16_t> limit_iface = std::nullopt) const noexcept;

  /// Every route, given and synthesized, grouped by table (local, main,
  /// default), each table sorted by prefix length (longest first), prefix,
  /// then preference (the winner of equal prefixes first).
  std::span<const Route> routes() const noexcept { return routes_; }
  /// True when a `local` route not made by the kernel exists (the kernel's
  /// fib_has_custom_local_routes: source validation then always does the
  /// full check).
  bool has_custom_local_routes() const noexcept { return custom_local_routes_; }

 private:
  // Longest-prefix match over one routing table: per prefix length present
  // (longest first), a sorted slice of masked prefixes; vals_ holds the
  // index into routes_ of the entry that wins for that prefix.
  /// Longest prefix match, DIR-16-8-8: a 2^16-entry first level indexed
  /// by the top 16 address bits, and 256-entry groups for the next 8 and the
  /// last 8 bits where a longer prefix needs them. A lookup is one to three
  /// loads (rte_lpm's DIR-24-8 idea with a smaller first level: 256 KiB).
  class LpmTable {
   public:
    void build(std::span<const Route> routes, std::span<const uint32_t> indices);
    /// Index into routes_ of the longest matching prefix, or kNone.
    uint32_t lookup(uint32_t addr) const noexcept {
      if (l1_.empty()) return kNone;
      uint32_t e = l1_[addr >> 16];
      if ((e & kGroup) != 0) {
        e = l2_[(e & ~kGroup) * 256U + ((addr >> 8) & 0xffU)];
        if ((e & kGroup) != 0) e = l3_[(e & ~kGroup) * 256U + (addr & 0xffU)];
      }
      return e == 0 ? kNone : e - 1;
    }
    static constexpr uint32_t kNone = 0xffffffffU;

   private:
    static constexpr uint32_t kGroup = 1U << 31;  // the entry names a group of the next level
    std::vector<uint32_t> l1_;  // 0: no route; route index + 1; or kGroup | l2 group
    std::vector<uint32_t> l2_;  // groups of 256: the same, kGroup | l3 group
    std::vector<uint32_t> l3_;  // groups of 256: 0 or route index + 1
  };

  RouteResult result_of(uint32_t route_index) const noexcept;
  // Martian source check (fib_validate_source with rp_filter=0). out_iface
  // kNoIface for local delivery.
  bool source_is_martian(uint32_t src, uint16_t in_iface, uint16_t out_iface) const noexcept;

  std::vector<Interface> ifaces_;
  std::vector<uint16_t> by_name_;                             // ids sorted by name
  std::vector<uint32_t> local_addrs_;                         // sorted
  std::vector<uint64_t> groups_;                              // sorted (iface << 32 | group)
  std::vector<Route> routes_;
  LpmTable merged_;       // tables local + main
  LpmTable default_;      // table default
  uint16_t loopback_ = kNoIface;
  bool custom_local_routes_ = false;
  bool ip_forward_ = true;
  bool bridge_nf_ = true;
  bool has_ports_ = false;
  std::vector<uint16_t> ports_;        // ports of every bridge, grouped by bridge
  std::vector<uint32_t> port_begin_;   // [id]: ports_ offset of bridge id's ports; size n + 1
};

/// The built-in default Docker host the bundled data and the kernel tests
/// use: lo 127.0.0.1/8; eth0 198.51.100.1/24 with the default route via
/// 198.51.100.254; docker0 172.17.0.1/16; br-5c0a8c6e1d2f 172.18.0.1/16
/// (both bridges with multicast snooping). Ids 0..3 in that order; MACs lo
/// 00:00:00:00:00:00, then 02:00:00:00:00:01 .. :03. Then the containers'
/// bridge ports, as the kernel tests' host has them: veth5b0e9a1 and
/// vethc7d24f3 on docker0, veth9e81b6d on br-5c0a8c6e1d2f (ids 4..6, MACs
/// 7a:1e:..). Routes as the kernel makes them, plus the default route.
HostSpec default_docker_host_spec();
HostModel default_docker_host();

/// Loads `ip -j addr` (or `ip -d -j addr`) and `ip -j route` (or
/// `ip -j route show table all`) output. Interfaces keep the file's order;
/// non-inet addresses and IPv6 routes are skipped; routes of tables other
/// than local/main/default are skipped (only policy rules would reach them).
/// When the routes include table local entries they are taken as the local
/// table, else it is synthesized from the addresses (so a hand-made route in
/// table local, e.g. `ip route add local 10.0.0.0/8 dev lo`, which iproute2
/// puts there by default, is seen only in `show table all` output). The main
/// table is the file's (its connected routes included). ip_forward is
/// assumed on. Bridges are recognised from `ip -d`'s linkinfo, and from
/// their ports: an interface with `"master": NAME` is a port of bridge NAME
/// (unless `ip -d` says the master is of another kind: a bond, a VRF, whose
/// slaves are then taken as plain interfaces). Throws LoadError `FILE: JSONPATH: what was expected`
/// (e.g. `[2].addr_info[0].local: expected an IPv4 address ...`), or `FILE:
/// offset N: invalid JSON: ...` (N 0-based) for a syntax error, or a
/// read error.
HostModel load_host(const std::string& addrs_json_path, const std::string& routes_json_path);
/// The same from text; the names are used in messages.
HostModel parse_host(std::string_view addrs_json, std::string_view routes_json,
                     const std::string& addrs_name, const std::string& routes_name);
/// Only the spec (for inspection, or to adjust before build()).
HostSpec parse_host_spec(std::string_view addrs_json, std::string_view routes_json,
                         const std::string& addrs_name, const std::string& routes_name);

}  // namespace nfb
