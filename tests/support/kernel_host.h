// The real kernel as one side of the netfilter differential tests: a Docker
// host built from network namespaces, fed with Ethernet frames, read back as
// per-rule counters.
//
// Idea: the model (nfbench's user-space netfilter) and the kernel get the same
// ruleset and the same frames in the same order; their `iptables-save -c`
// counters must then agree rule by rule. This file builds the kernel side so
// that its result depends on nothing but the ruleset and the frames:
//
//   namespace  interfaces (name: address, MAC)
//   ---------  -----------------------------------------------------------------
//   host       lo 127.0.0.1/8
//              eth0: 198.51.100.1/24, 02:00:c6:33:64:01, default via 198.51.100.254
//              docker0 (bridge): 172.17.0.1/16, 02:42:9a:1c:00:01
//                ports veth5b0e9a1 (redis), vethc7d24f3 (web)
//              br-5c0a8c6e1d2f (bridge): 172.18.0.1/16, 02:42:4f:3d:00:01
//                port veth9e81b6d (dns)
//   outside    eth0: 198.51.100.254/24, 02:00:c6:33:64:fe (the host's eth0 peer);
//              nfbbar0/nfbbar1: a veth pair with no address, the barrier below
//   redis      eth0: 172.17.0.2/16, 02:42:ac:11:00:02, default via 172.17.0.1
//   web        eth0: 172.17.0.3/16, 02:42:ac:11:00:03, default via 172.17.0.1
//   dns        eth0: 172.18.0.2/16, 02:42:ac:12:00:02, default via 172.18.0.1
//
// Every other outside address (clients in 203.0.113.0/24, servers such as
// 93.184.216.34) is "behind" the outside namespace: the host reaches it by its
// default route, and the outside namespace needs no address for it because it
// drops everything it receives.
//
// What keeps the kernel's counters a pure function of (ruleset, frames):
// - Nothing answers. The peers (outside and containers) have
//   `-t raw -A PREROUTING -j DROP` and `-t raw -A OUTPUT -j DROP`; the host has
//   `-t raw -I OUTPUT 1 -j DROP`, so its own RSTs, ICMP errors and echo replies
//   die before conntrack sees them (raw is at priority -300, conntrack at
//   -200). Consequence: counters of OUTPUT chains (raw OUTPUT holds the extra
//   rule) are not comparable and parse_rule_counters() skips them.
// - Nothing is sent spontaneously: IPv6 is disabled everywhere (no router
//   solicitations, DAD or MLD), bridges run without STP and without multicast
//   snooping, and every neighbour the host or a peer could need is a static
//   (permanent) entry, so no ARP is ever needed (ARP does not touch iptables
//   anyway).
// - Only routed traffic reaches iptables: br_netfilter is built into some
//   kernels (this one: CONFIG_BRIDGE_NETFILTER=y, and its per-namespace
//   net.bridge.bridge-nf-call-iptables defaults to 1), so the host namespace
//   sets bridge-nf-call-{iptables,ip6tables,arptables} to 0. Frames injected
//   on a bridge are addressed to the bridge's own MAC and therefore routed;
//   frames between two ports of one bridge would be bridged and uncounted.
// - Reverse-path filtering is off (rp_filter 0 on all, default and every
//   interface), so spoofed-looking sources (a client address arriving on a
//   bridge) are not dropped by routing. route_localnet and accept_local stay
//   0 (the defaults): a packet to 127.0.0.1 arriving on eth0 is a martian
//   unless nat PREROUTING rewrote its destination first.
// - Conntrack runs with the defaults, set explicitly: nf_conntrack_checksum=1,
//   tcp_loose=1, tcp_be_liberal=0. ip_forward=1.
// - Frames go in from ONE thread pinned to one CPU, each through an AF_PACKET
//   socket on the peer end of its ingress link. A veth transmit queues the
//   frame on the sending CPU's backlog, which is processed in order; a final
//   marker frame on the barrier veth pair (same CPU, same backlog) is received
//   only after every earlier frame went through netfilter, so inject()
//   returns when the counters are final. inject() also checks the host
//   interfaces' rx counters, so a frame lost before the IP layer is an error
//   rather than a silent difference.
// - Conntrack entries expire in real time, not by frame timestamps. A
//   scenario of a few hundred frames runs in well under a second; the
//   shortest timeout that could matter is TCP CLOSE (10 s), then UDP (30 s).
//   One timing-dependent detail remains: a UDP flow becomes ASSURED only
//   when a reply comes more than 2 s after its first packet, which no short
//   scenario reaches (and no Docker rule tests --ctstatus).
//
// Control-plane test code: allocates, blocks, throws std::runtime_error on
// failure. Needs root, `ip` (iproute2) and iptables-legacy; see
// unavailable_reason().
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule.h"
#include "tests/support/frame_builder.h"
#include "tests/support/netns.h"

namespace nfb {

/// One frame as the host receives it.
struct InjectedFrame {
  /// The host interface the frame arrives on: "eth0", "docker0" or
  /// "br-5c0a8c6e1d2f".
  std::string ingress;
  /// The whole Ethernet frame (no FCS), sent verbatim. Its source MAC picks
  /// the peer that sends it (a container on that bridge, or the outside peer);
  /// an unknown source MAC is sent by the ingress's default peer.
  std::vector<uint8_t> bytes;
};

/// The fixed topology: names, addresses and MACs (see the table above).
namespace docker_host {

inline constexpr std::string_view kEth0 = "eth0";
inline constexpr std::string_view kDocker0 = "docker0";
inline constexpr std::string_view kBridge2 = "br-5c0a8c6e1d2f";

inline constexpr uint32_t kHostIp = test::ip4(198, 51, 100, 1);  // eth0
inline constexpr uint32_t kGatewayIp = test::ip4(198, 51, 100, 254);
inline constexpr uint32_t kDocker0Ip = test::ip4(172, 17, 0, 1);
inline constexpr uint32_t kBridge2Ip = test::ip4(172, 18, 0, 1);
inline constexpr uint32_t kRedisIp = test::ip4(172, 17, 0, 2);  // -p 10000:6379/tcp
inline constexpr uint32_t kWebIp = test::ip4(172, 17, 0, 3);    // -p 127.0.0.1:8080:80/tcp
inline constexpr uint32_t kDnsIp = test::ip4(172, 18, 0, 2);    // -p 5353:53/udp

inline constexpr test::Mac kHostEth0Mac{0x02, 0x00, 0xc6, 0x33, 0x64, 0x01};
inline constexpr test::Mac kOutsideMac{0x02, 0x00, 0xc6, 0x33, 0x64, 0xfe};
inline constexpr test::Mac kDocker0Mac{0x02, 0x42, 0x9a, 0x1c, 0x00, 0x01};
inline constexpr test::Mac kBridge2Mac{0x02, 0x42, 0x4f, 0x3d, 0x00, 0x01};
inline constexpr test::Mac kRedisMac{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
inline constexpr test::Mac kWebMac{0x02, 0x42, 0xac, 0x11, 0x00, 0x03};
inline constexpr test::Mac kDnsMac{0x02, 0x42, 0xac, 0x12, 0x00, 0x02};

/// A namespace on the far side of one host ingress link.
struct Peer {
  std::string_view role;       // "outside", "redis", "web", "dns"
  std::string_view ingress;    // the host interface its frames arrive on
  uint32_t ip;                 // its address (host order)
  uint8_t prefix;              // and prefix length
  test::Mac mac;               // the MAC of its eth0
  std::string_view host_port;  // the host-side veth (a bridge port), or "" for eth0
  test::Mac host_port_mac;     // that veth's MAC (zero for eth0)
};

/// outside first, then the containers in bridge order; the first peer of
/// each ingress is its default sender.
inline constexpr std::array<Peer, 4> kPeers{{
    {"outside", kEth0, kGatewayIp, 24, kOutsideMac, "", {}},
    {"redis", kDocker0, kRedisIp, 16, kRedisMac, "veth5b0e9a1", {0x7a, 0x1e, 0x5b, 0x0e, 0x9a, 0x01}},
    {"web", kDocker0, kWebIp, 16, kWebMac, "vethc7d24f3", {0x7a, 0x1e, 0xc7, 0xd2, 0x4f, 0x03}},
    {"dns", kBridge2, kDnsIp, 16, kDnsMac, "veth9e81b6d", {0x7a, 0x1e, 0x9e, 0x81, 0xb6, 0x0d}},
}};

/// The MAC of a host ingress interface (eth0, docker0, br-5c0a8c6e1d2f), or
/// nullptr for any other name.
const test::Mac* ingress_mac(std::string_view ingress) noexcept;

/// The peer that sends a frame with source MAC `src` on `ingress`: the peer
/// with that MAC on that link, else the link's default peer; nullptr when
/// `ingress` is not a host ingress interface.
const Peer* sending_peer(std::string_view ingress, const test::Mac& src) noexcept;

}  // namespace docker_host

/// Wraps `ip_packet` (from test::ipv4()) in an Ethernet frame arriving on
/// `ingress`: destination MAC = the host interface's MAC; source MAC = the
/// MAC of the peer that would send it: on a bridge, the container whose
/// address is the packet's source, else the bridge's first container; on
/// eth0, the outside peer. Throws std::invalid_argument for an unknown
/// ingress or a packet shorter than an IPv4 header.
InjectedFrame frame_to_host(std::string_view ingress, const test::Bytes& ip_packet);

/// The default Docker host (see the top of this file), built on construction
/// and removed on destruction (the namespaces are deleted, which destroys the
/// veths and bridges in them). Several instances may coexist: namespace names
/// are unique (NetnsSandbox), interface names live inside them.
class KernelDockerHost {
 public:
  /// Why the topology cannot be built here (NetnsSandbox's reasons, or the
  /// error of building it once: no veth/bridge support, no AF_PACKET...), or
  /// nullopt. Probes once per process and caches the answer.
  static std::optional<std::string> unavailable_reason();

  /// Builds the namespaces, links, addresses, routes, neighbours, sysctls
  /// and the peers' raw DROP rules, and waits (up to 10 s) until every link
  /// is up and every bridge port forwards. The host's iptables tables start
  /// empty. Cost: about 15 `ip`/`iptables` processes and about 1 s, nearly
  /// all of it waiting for the kernel's link-watch to mark the carriers up
  /// (until it does, a veth drops what it is given). Throws
  /// std::runtime_error with the failing command's stderr.
  KernelDockerHost();
  ~KernelDockerHost();

  KernelDockerHost(const KernelDockerHost&) = delete;
  KernelDockerHost& operator=(const KernelDockerHost&) = delete;
  KernelDockerHost(KernelDockerHost&&) = delete;
  KernelDockerHost& operator=(KernelDockerHost&&) = delete;

  /// Loads an iptables-save text into the host namespace with
  /// iptables-legacy-restore (counters in the text are ignored: everything
  /// starts at 0), then inserts `-t raw -I OUTPUT 1 -j DROP` (creating the
  /// raw table if the text has none). Tables named in the text are replaced,
  /// others are kept; conntrack entries are kept. Throws std::runtime_error
  /// with iptables' stderr when the text is rejected.
  void load_rules(std::string_view iptables_save_text, std::string_view ipsets = {});

  /// net.bridge.bridge-nf-call-iptables in the host namespace (off after
  /// construction). On: br_netfilter passes frames that enter docker0's and
  /// br-5c0a8c6e1d2f's ports through the IPv4 hooks, bridged ones included.
  void set_bridge_netfilter(bool on);
  /// net.ipv4.ip_forward in the host namespace (on after construction).
  void set_ip_forward(bool on);
  /// Hairpin mode on the containers' bridge ports (off after construction).
  void set_hairpin(bool on);

  /// `iptables-legacy-save -c` of the host namespace, comments included.
  std::string save_counters() const;

  /// The host's conntrack table as /proc/net/nf_conntrack shows it (one entry
  /// a line; empty when conntrack never ran in the namespace). For messages.
  std::string conntrack_table() const;

  /// Sends `frames` in order (see the top of this file) and returns when the
  /// kernel has processed all of them. The first call opens the AF_PACKET
  /// sockets, which stay open until destruction; each call then costs a
  /// thread, the sends and one barrier round trip (a few ms, plus
  /// microseconds a frame). Calls may follow each other: conntrack state
  /// carries over. Throws std::invalid_argument for an unknown ingress or a
  /// frame outside 14..1514 bytes (before sending anything),
  /// std::runtime_error when a socket or send fails, when a frame was lost
  /// before reaching the host's IP layer, or when the barrier does not come
  /// back within 10 s.
  void inject(const std::vector<InjectedFrame>& frames);

  /// The conntrack state each frame had in mangle PREROUTING, where the
  /// kernel has classified it: "NEW", "ESTABLISHED", "RELATED", "INVALID" or
  /// "UNTRACKED"; "-" for a frame that never got there (dropped by ip_rcv,
  /// e.g. a bad IPv4 header checksum, or by raw PREROUTING). Inserts five
  /// counting probe rules (`-t mangle -I PREROUTING -m conntrack --ctstate
  /// S`, no target) in front of the ruleset's own, sends the frames one at a
  /// time and reads the mangle counters after each: one barrier and one
  /// iptables-legacy-save per frame (about 10 ms). The probes do not change
  /// any verdict, so every other table counts what inject(frames) would; the
  /// mangle table's counters then include the probes. They use conntrack,
  /// which turns it on for a ruleset that had no use for it. Call after
  /// load_rules(). Throws like inject().
  std::vector<std::string> trace_states(const std::vector<InjectedFrame>& frames);

  /// The host namespace, for extra commands (`ip -s link`, sysctl reads...).
  const NetnsSandbox& host() const noexcept { return *host_; }
  /// A peer namespace by role ("outside", "redis", "web", "dns"); throws
  /// std::invalid_argument for another name.
  const NetnsSandbox& peer(std::string_view role) const;

 private:
  struct Injector;  // the open AF_PACKET sockets (kernel_host.cpp)
  Injector& injector();

  std::unique_ptr<NetnsSandbox> host_;
  std::array<std::unique_ptr<NetnsSandbox>, docker_host::kPeers.size()> peers_;  // kPeers order
  uint64_t barrier_serial_ = 0;
  // Opened on the first inject() and kept: closing a packet socket waits for
  // an RCU grace period (about 10 ms each), which would dominate a
  // frame-by-frame trace.
  std::unique_ptr<Injector> injector_;
};

// ---------------------------------------------------------------------------
// Comparing `iptables-save -c` outputs rule by rule

/// Where a counter lives: table, chain, and the rule's 1-based position in
/// its chain, or 0 for the chain's policy counter.
struct CounterKey {
  std::string table;
  std::string chain;
  uint32_t rule = 0;  // 0 = policy

  /// "filter/FORWARD/3", "filter/FORWARD/policy".
  std::string str() const;
  friend auto operator<=>(const CounterKey&, const CounterKey&) = default;
  friend bool operator==(const CounterKey&, const CounterKey&) = default;
};

struct RuleCounter {
  Counters counters;
  /// The rule as printed after its counters ("-A FORWARD -j DOCKER-USER"),
  /// or the policy line without counters (":FORWARD DROP").
  std::string text;
  friend bool operator==(const RuleCounter&, const RuleCounter&) = default;
};

using CounterTable = std::map<CounterKey, RuleCounter>;

/// Every policy and rule counter of an `iptables-save -c` text, keyed by
/// table/chain/position. Built-in OUTPUT chains are skipped (see above; user
/// chains are kept even if OUTPUT jumps to them). User chains have no policy
/// entry. Comment and blank lines are ignored. Throws LoadError
/// (`FILE:LINE:COL: ...`, FILE = `source_name`) for a line that is not
/// iptables-save output with counters.
CounterTable parse_rule_counters(std::string_view save_c_text,
                                 const std::string& source_name = "iptables-save -c");

struct CounterDiffOptions {
  /// Also report rules whose text differs at the same position (a model
  /// that prints a rule differently, or rules out of step).
  bool compare_text = true;
};

/// The differences between the kernel's counters and the model's, one
/// readable line each, in key order; empty when they agree. Reported: a
/// counter that differs (`filter/FORWARD/3 "-A FORWARD -j DOCKER-USER":
/// kernel [5:300] model [4:240]`), a rule or policy present on one side only,
/// and (compare_text) a rule text that differs. One exception: when the
/// model has no raw table at all, the kernel's raw entries are ignored,
/// because load_rules() creates raw in the kernel (for its OUTPUT rule) even
/// when the ruleset has none, and there is then no model rule to compare
/// with (only the raw PREROUTING policy, which counts every packet).
std::vector<std::string> diff_counters(const CounterTable& kernel, const CounterTable& model,
                                       CounterDiffOptions options = {});

}  // namespace nfb
