// The Docker host in network namespaces, frame injection, and the
// iptables-save -c comparison. See kernel_host.h for the topology and the
// contracts.
#include "tests/support/kernel_host.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "base/load_error.h"
#include "packet/byte_order.h"

namespace nfb {

// ---------------------------------------------------------------- topology

namespace docker_host {

const test::Mac* ingress_mac(std::string_view ingress) noexcept {
  if (ingress == kEth0) return &kHostEth0Mac;
  if (ingress == kDocker0) return &kDocker0Mac;
  if (ingress == kBridge2) return &kBridge2Mac;
  return nullptr;
}

const Peer* sending_peer(std::string_view ingress, const test::Mac& src) noexcept {
  const Peer* first = nullptr;
  for (const Peer& p : kPeers) {
    if (p.ingress != ingress) continue;
    if (p.mac == src) return &p;
    if (first == nullptr) first = &p;
  }
  return first;
}

}  // namespace docker_host

namespace {

namespace dh = docker_host;

// The barrier veth pair inside the outside namespace, and its marker frames.
constexpr std::string_view kBarrierTx = "nfbbar0";
constexpr std::string_view kBarrierRx = "nfbbar1";
constexpr test::Mac kBarrierTxMac{0x02, 0x6e, 0x66, 0x62, 0x00, 0x01};
constexpr test::Mac kBarrierRxMac{0x02, 0x6e, 0x66, 0x62, 0x00, 0x02};
constexpr uint16_t kBarrierEthertype = 0x88b5;  // IEEE 802 local experimental
constexpr std::chrono::seconds kBarrierTimeout{10};
constexpr std::chrono::seconds kReadyTimeout{10};

constexpr size_t kMinFrame = 14;    // an Ethernet header
constexpr size_t kMaxFrame = 1514;  // veth MTU 1500 + header; longer frames are dropped

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::string mac_text(const test::Mac& m) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i != 0) s.push_back(':');
    s.push_back(kHex[m[i] >> 4]);
    s.push_back(kHex[m[i] & 0x0f]);
  }
  return s;
}

std::string cidr(uint32_t addr, unsigned prefix) { return format_ipv4(addr) + "/" + std::to_string(prefix); }

// Moves the calling thread into network namespace `ns` (by name, as `ip netns
// add` registered it). Affects this thread only.
void enter_netns(const std::string& ns) {
  std::string path = "/run/netns/" + ns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    path = "/var/run/netns/" + ns;
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) throw_errno("open " + path);
  const Fd guard(fd);
  if (::setns(fd, CLONE_NEWNET) != 0) throw_errno("setns " + path);
}

// Runs `fn` on a fresh thread (setns changes only the calling thread, so the
// test's own thread never leaves its namespace) and rethrows what it threw.
void on_own_thread(const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread worker([&fn, &failure] {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Writes a sysctl of the calling thread's namespace (/proc/sys/net follows
// the thread's network namespace).
void write_sysctl(const std::string& key, const std::string& value) {
  const std::string path = "/proc/sys/" + key;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + path);
  const Fd guard(fd);
  const ssize_t n = ::write(fd, value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) throw_errno("write " + path + " = " + value);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// rx_packets per interface of the calling thread's namespace.
std::map<std::string, uint64_t> rx_packets_by_interface() {
  const std::string text = read_text_file("/proc/thread-self/net/dev");
  if (text.empty()) throw std::runtime_error("cannot read /proc/thread-self/net/dev");
  std::map<std::string, uint64_t> rx;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    std::istringstream fields(line.substr(colon + 1));
    uint64_t bytes = 0;
    uint64_t packets = 0;
    if (fields >> bytes >> packets) rx[name] = packets;
  }
  return rx;
}

// Runs `ip -n NS -batch -` with one command per line; throws with ip's
// message (which names the failing line) on error.
void ip_batch(const NetnsSandbox& ns, const std::vector<std::string>& commands) {
  std::string text;
  for (const std::string& c : commands) text += c + "\n";
  const CommandResult r = run_command({"ip", "-n", ns.name(), "-batch", "-"}, text);
  if (!r.ok()) throw std::runtime_error("ip -n " + ns.name() + " -batch: " + r.describe());
}

void run_checked(const NetnsSandbox& ns, const std::vector<std::string>& argv,
                 std::string_view stdin_text = {}) {
  const CommandResult r = ns.run(argv, stdin_text);
  if (!r.ok()) throw std::runtime_error(argv.front() + " in " + ns.name() + ": " + r.describe());
}

// Conntrack behaviour the differential tests assume (the kernel defaults).
// Written when conntrack is present in the namespace; a kernel with
// conntrack as a module not yet loaded creates them later with the same
// defaults.
void set_conntrack_defaults() {
  const std::pair<const char*, const char*> settings[] = {
      {"net/netfilter/nf_conntrack_checksum", "1"},
      {"net/netfilter/nf_conntrack_tcp_loose", "1"},
      {"net/netfilter/nf_conntrack_tcp_be_liberal", "0"},
  };
  for (const auto& [key, value] : settings) {
    if (file_exists(std::string("/proc/sys/") + key)) write_sysctl(key, value);
  }
}

// One peer's AF_PACKET socket bound to its eth0 (or another interface).
Fd packet_socket(std::string_view ifname, uint16_t protocol) {
  Fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, host_to_be16(protocol)));
  if (fd.get() < 0) throw_errno("socket(AF_PACKET)");
  ifreq ifr{};
  if (ifname.size() >= sizeof ifr.ifr_name) throw std::invalid_argument("interface name too long");
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd.get(), SIOCGIFINDEX, &ifr) != 0) throw_errno("SIOCGIFINDEX " + std::string(ifname));
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = host_to_be16(protocol);
  sll.sll_ifindex = ifr.ifr_ifindex;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) {
    throw_errno("bind AF_PACKET to " + std::string(ifname));
  }
  return fd;
}

void send_frame(int fd, const std::vector<uint8_t>& bytes, const std::string& what) {
  for (;;) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), 0);
    if (n == static_cast<ssize_t>(bytes.size())) return;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("send " + what);
    throw std::runtime_error("send " + what + ": short write");
  }
}

// Pins the calling thread to the CPU it runs on and returns that CPU.
int pin_to_current_cpu() {
  const int cpu = ::sched_getcpu();
  if (cpu < 0) throw_errno("sched_getcpu");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<size_t>(cpu), &set);
  const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  if (rc != 0) {
    errno = rc;
    throw_errno("pthread_setaffinity_np");
  }
  if (::sched_getcpu() != cpu) throw std::runtime_error("the injector thread did not stay on its CPU");
  return cpu;
}

// The links of one namespace that must be up (operstate UP), and the bridge
// ports that must forward, before frames can be sent.
struct Readiness {
  const NetnsSandbox* ns;
  std::vector<std::string> up;
  std::vector<std::string> forwarding;
};

// What is still not ready in `r`, or "" when all of it is.
std::string not_ready(const Readiness& r) {
  const CommandResult res = run_command({"ip", "-n", r.ns->name(), "-d", "-o", "link", "show"});
  if (!res.ok()) return "ip link show: " + res.describe();
  std::map<std::string, std::string> lines;  // name -> its line
  std::istringstream in(res.out);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(": ");
    if (a == std::string::npos) continue;
    const size_t b = line.find_first_of(":@", a + 2);
    if (b == std::string::npos) continue;
    lines[line.substr(a + 2, b - a - 2)] = line;
  }
  for (const std::string& name : r.up) {
    const auto it = lines.find(name);
    if (it == lines.end()) return name + " missing in " + r.ns->name();
    if (it->second.find(" state UP ") == std::string::npos) return name + " not up in " + r.ns->name();
  }
  for (const std::string& name : r.forwarding) {
    const auto it = lines.find(name);
    if (it == lines.end() || it->second.find("bridge_slave state forwarding") == std::string::npos) {
      return "bridge port " + name + " not forwarding in " + r.ns->name();
    }
  }
  return {};
}

// Bounds of a frame; fills `src` with its source MAC.
void check_frame(size_t index, const InjectedFrame& f, test::Mac& src) {
  if (dh::ingress_mac(f.ingress) == nullptr) {
    throw std::invalid_argument("frame " + std::to_string(index) + ": unknown ingress \"" + f.ingress +
                                "\" (eth0, docker0 or br-5c0a8c6e1d2f)");
  }
  if (f.bytes.size() < kMinFrame || f.bytes.size() > kMaxFrame) {
    throw std::invalid_argument("frame " + std::to_string(index) + ": " + std::to_string(f.bytes.size()) +
                                " bytes, outside 14..1514");
  }
  std::copy_n(f.bytes.begin() + 6, 6, src.begin());
}

}  // namespace

InjectedFrame frame_to_host(std::string_view ingress, const test::Bytes& ip_packet) {
  const test::Mac* dst = dh::ingress_mac(ingress);
  if (dst == nullptr) throw std::invalid_argument("frame_to_host: unknown ingress " + std::string(ingress));
  if (ip_packet.size() < 20) throw std::invalid_argument("frame_to_host: not an IPv4 packet");
  const uint32_t src_ip = load_be32(ip_packet.data() + 12);
  const dh::Peer* sender = nullptr;
  for (const dh::Peer& p : dh::kPeers) {
    if (p.ingress != ingress) continue;
    if (sender == nullptr) sender = &p;  // the link's default peer
    if (ingress != dh::kEth0 && p.ip == src_ip) {
      sender = &p;
      break;
    }
  }
  return InjectedFrame{std::string(ingress), test::ethernet({.dst = *dst, .src = sender->mac}, ip_packet)};
}

// ---------------------------------------------------------------- KernelDockerHost

std::optional<std::string> KernelDockerHost::unavailable_reason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    if (auto base = NetnsSandbox::unavailable_reason()) return base;
    if (!find_executable("iptables-legacy")) return std::string("iptables-legacy not found in PATH or sbin");
    try {
      KernelDockerHost probe;
      probe.inject({});  // sockets, pinning and the barrier work
    } catch (const std::exception& e) {
      return std::string("cannot build the Docker host in network namespaces: ") + e.what();
    }
    return std::nullopt;
  }();
  return reason;
}

KernelDockerHost::KernelDockerHost() {
  host_ = std::make_unique<NetnsSandbox>();
  for (auto& p : peers_) p = std::make_unique<NetnsSandbox>();
  const NetnsSandbox& outside = *peers_[0];

  // IPv6 off before any interface exists, so that new ones inherit it.
  const auto no_ipv6 = [] {
    write_sysctl("net/ipv6/conf/all/disable_ipv6", "1");
    write_sysctl("net/ipv6/conf/default/disable_ipv6", "1");
  };
  for (const NetnsSandbox* ns :
       {host_.get(), peers_[0].get(), peers_[1].get(), peers_[2].get(), peers_[3].get()}) {
    const std::string name = ns->name();
    on_own_thread([&name, &no_ipv6] {
      enter_netns(name);
      if (file_exists("/proc/sys/net/ipv6")) no_ipv6();
    });
  }

  // The host: links first (veth peers are created straight in their
  // namespaces), then addresses, up, routes, and the static neighbours.
  const std::string bridge_opts = " type bridge forward_delay 0 stp_state 0 mcast_snooping 0";
  std::vector<std::string> cmds{
      "link set lo up",
      "link add eth0 address " + mac_text(dh::kHostEth0Mac) + " type veth peer name eth0 address " +
          mac_text(dh::kOutsideMac) + " netns " + outside.name(),
      "link add docker0 address " + mac_text(dh::kDocker0Mac) + bridge_opts,
      "link add " + std::string(dh::kBridge2) + " address " + mac_text(dh::kBridge2Mac) + bridge_opts,
  };
  for (size_t i = 1; i < dh::kPeers.size(); ++i) {
    const dh::Peer& p = dh::kPeers[i];
    cmds.push_back("link add " + std::string(p.host_port) + " address " + mac_text(p.host_port_mac) +
                   " type veth peer name eth0 address " + mac_text(p.mac) + " netns " + peers_[i]->name());
    cmds.push_back("link set " + std::string(p.host_port) + " master " + std::string(p.ingress));
  }
  cmds.push_back("addr add " + cidr(dh::kHostIp, 24) + " brd + dev eth0");
  cmds.push_back("addr add " + cidr(dh::kDocker0Ip, 16) + " brd + dev docker0");
  cmds.push_back("addr add " + cidr(dh::kBridge2Ip, 16) + " brd + dev " + std::string(dh::kBridge2));
  cmds.push_back("link set eth0 up");
  cmds.push_back("link set docker0 up");
  cmds.push_back("link set " + std::string(dh::kBridge2) + " up");
  for (size_t i = 1; i < dh::kPeers.size(); ++i) {
    cmds.push_back("link set " + std::string(dh::kPeers[i].host_port) + " up");
  }
  cmds.push_back("route add default via " + format_ipv4(dh::kGatewayIp) + " dev eth0");
  for (const dh::Peer& p : dh::kPeers) {
    cmds.push_back("neigh replace " + format_ipv4(p.ip) + " lladdr " + mac_text(p.mac) + " dev " +
                   std::string(p.ingress) + " nud permanent");
  }
  ip_batch(*host_, cmds);

  // The peers: address, up, route to the host, the host's MAC.
  for (size_t i = 0; i < dh::kPeers.size(); ++i) {
    const dh::Peer& p = dh::kPeers[i];
    const bool outside_peer = p.ingress == dh::kEth0;
    const uint32_t host_side =
        outside_peer ? dh::kHostIp : (p.ingress == dh::kDocker0 ? dh::kDocker0Ip : dh::kBridge2Ip);
    const test::Mac& host_mac = *dh::ingress_mac(p.ingress);
    std::vector<std::string> pc{
        "link set lo up",
        "addr add " + cidr(p.ip, p.prefix) + " brd + dev eth0",
        "link set eth0 up",
        "neigh replace " + format_ipv4(host_side) + " lladdr " + mac_text(host_mac) +
            " dev eth0 nud permanent",
    };
    if (outside_peer) {
      pc.push_back("link add " + std::string(kBarrierTx) + " address " + mac_text(kBarrierTxMac) +
                   " type veth peer name " + std::string(kBarrierRx) + " address " + mac_text(kBarrierRxMac));
      pc.push_back("link set " + std::string(kBarrierTx) + " up");
      pc.push_back("link set " + std::string(kBarrierRx) + " up");
    } else {
      pc.push_back("route add default via " + format_ipv4(host_side) + " dev eth0");
    }
    ip_batch(*peers_[i], pc);
  }

  // Host sysctls: forwarding, no reverse-path filter, no br_netfilter,
  // conntrack defaults.
  std::vector<std::string> rp_ifaces{"all", "default", "lo", "eth0", "docker0", std::string(dh::kBridge2)};
  for (size_t i = 1; i < dh::kPeers.size(); ++i) rp_ifaces.emplace_back(dh::kPeers[i].host_port);
  const std::string host_name = host_->name();
  on_own_thread([&host_name, &rp_ifaces] {
    enter_netns(host_name);
    write_sysctl("net/ipv4/ip_forward", "1");
    for (const std::string& ifc : rp_ifaces) write_sysctl("net/ipv4/conf/" + ifc + "/rp_filter", "0");
    for (const char* ifc : {"all", "default"}) {
      write_sysctl(std::string("net/ipv4/conf/") + ifc + "/route_localnet", "0");
      write_sysctl(std::string("net/ipv4/conf/") + ifc + "/accept_local", "0");
    }
    for (const char* key :
         {"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"}) {
      const std::string path = std::string("net/bridge/") + key;
      if (file_exists("/proc/sys/" + path)) write_sysctl(path, "0");
    }
    set_conntrack_defaults();
  });

  // The peers never answer nor send.
  for (const auto& p : peers_) {
    run_checked(*p, {"iptables-legacy-restore", "--wait=30"},
                "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                "-A PREROUTING -j DROP\n-A OUTPUT -j DROP\nCOMMIT\n");
  }

  // Wait for carrier and bridge port states (link-watch is asynchronous).
  std::vector<Readiness> ready{{host_.get(), {"eth0", "docker0", std::string(dh::kBridge2)}, {}}};
  for (size_t i = 1; i < dh::kPeers.size(); ++i) {
    ready[0].up.emplace_back(dh::kPeers[i].host_port);
    ready[0].forwarding.emplace_back(dh::kPeers[i].host_port);
  }
  for (size_t i = 0; i < dh::kPeers.size(); ++i) ready.push_back({peers_[i].get(), {"eth0"}, {}});
  ready[1].up.emplace_back(kBarrierTx);
  ready[1].up.emplace_back(kBarrierRx);
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    std::string missing;
    for (const Readiness& r : ready) {
      missing = not_ready(r);
      if (!missing.empty()) break;
    }
    if (missing.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("topology not ready after 10 s: " + missing);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

KernelDockerHost::~KernelDockerHost() = default;

const NetnsSandbox& KernelDockerHost::peer(std::string_view role) const {
  for (size_t i = 0; i < dh::kPeers.size(); ++i) {
    if (dh::kPeers[i].role == role) return *peers_[i];
  }
  throw std::invalid_argument("no peer named " + std::string(role));
}

void KernelDockerHost::set_bridge_netfilter(bool on) {
  const std::string name = host_->name();
  on_own_thread([&name, on] {
    enter_netns(name);
    write_sysctl("net/bridge/bridge-nf-call-iptables", on ? "1" : "0");
  });
}

void KernelDockerHost::set_ip_forward(bool on) {
  const std::string name = host_->name();
  on_own_thread([&name, on] {
    enter_netns(name);
    write_sysctl("net/ipv4/ip_forward", on ? "1" : "0");
  });
}

void KernelDockerHost::set_hairpin(bool on) {
  for (const docker_host::Peer& p : docker_host::kPeers) {
    if (p.host_port.empty()) continue;
    run_checked(*host_, {"ip", "link", "set", "dev", std::string(p.host_port), "type", "bridge_slave", "hairpin",
                         on ? "on" : "off"});
  }
}

void KernelDockerHost::load_rules(std::string_view iptables_save_text, std::string_view ipsets) {
  if (!ipsets.empty()) run_checked(*host_, {"ipset", "restore"}, ipsets);
  run_checked(*host_, {"iptables-legacy-restore", "--wait=30"}, iptables_save_text);
  run_checked(*host_, {"iptables-legacy", "-w", "30", "-t", "raw", "-I", "OUTPUT", "1", "-j", "DROP"});
  const std::string name = host_->name();
  on_own_thread([&name] {
    enter_netns(name);
    set_conntrack_defaults();  // conntrack may have been loaded just now
  });
}

std::string KernelDockerHost::save_counters() const { return host_->save(true); }

std::string KernelDockerHost::conntrack_table() const {
  std::string text;
  const std::string name = host_->name();
  on_own_thread([&name, &text] {
    enter_netns(name);
    text = read_text_file("/proc/thread-self/net/nf_conntrack");
  });
  return text;
}

// One send-only socket per peer, plus the barrier pair's two sockets, each
// created inside its namespace (a socket stays in the namespace it was
// created in), and the host namespace to read interface counters in.
struct KernelDockerHost::Injector {
  std::array<Fd, dh::kPeers.size()> tx;  // kPeers order
  Fd barrier_tx;
  Fd barrier_rx;
  Fd host_netns;
};

KernelDockerHost::Injector& KernelDockerHost::injector() {
  if (injector_) return *injector_;
  auto inj = std::make_unique<Injector>();
  std::vector<std::string> peer_ns;
  for (const auto& p : peers_) peer_ns.push_back(p->name());
  const std::string host_ns = host_->name();
  on_own_thread([&inj, &peer_ns, &host_ns] {
    for (size_t i = 0; i < dh::kPeers.size(); ++i) {
      enter_netns(peer_ns[i]);
      inj->tx[i] = packet_socket("eth0", 0);  // protocol 0: send only
      if (i == 0) {
        inj->barrier_tx = packet_socket(kBarrierTx, 0);
        inj->barrier_rx = packet_socket(kBarrierRx, kBarrierEthertype);
      }
    }
    enter_netns(host_ns);
    inj->host_netns = Fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (inj->host_netns.get() < 0) throw_errno("open /proc/thread-self/ns/net");
  });
  injector_ = std::move(inj);
  return *injector_;
}

void KernelDockerHost::inject(const std::vector<InjectedFrame>& frames) {
  // Control plane first: every frame is checked and given its sender before
  // anything is sent.
  std::vector<size_t> sender(frames.size());
  std::map<std::string, uint64_t> sent_on;       // ingress -> frames
  std::map<std::string, uint64_t> addressed_to;  // ingress -> frames with its MAC as destination
  for (size_t i = 0; i < frames.size(); ++i) {
    test::Mac src{};
    check_frame(i, frames[i], src);
    const dh::Peer* p = dh::sending_peer(frames[i].ingress, src);
    sender[i] = static_cast<size_t>(p - dh::kPeers.data());
    ++sent_on[frames[i].ingress];
    if (std::equal(frames[i].bytes.begin(), frames[i].bytes.begin() + 6,
                   dh::ingress_mac(frames[i].ingress)->begin())) {
      ++addressed_to[frames[i].ingress];
    }
  }

  Injector& inj = injector();
  const uint64_t serial = ++barrier_serial_;

  on_own_thread([&] {
    pin_to_current_cpu();
    if (::setns(inj.host_netns.get(), CLONE_NEWNET) != 0) throw_errno("setns into the host namespace");
    const std::map<std::string, uint64_t> rx_before = rx_packets_by_interface();

    for (size_t i = 0; i < frames.size(); ++i) {
      send_frame(inj.tx[sender[i]].get(), frames[i].bytes, "frame " + std::to_string(i));
    }

    // The barrier: a marker sent from this CPU after the frames sits behind
    // them in this CPU's backlog, so its arrival means they were processed.
    test::Bytes payload;
    test::put32(payload, static_cast<uint32_t>(::getpid()));
    test::put32(payload, static_cast<uint32_t>(serial >> 32));
    test::put32(payload, static_cast<uint32_t>(serial));
    const test::Bytes marker =
        test::ethernet({.dst = kBarrierRxMac, .src = kBarrierTxMac, .ethertype = kBarrierEthertype}, payload);
    send_frame(inj.barrier_tx.get(), marker, "barrier marker");
    const auto deadline = std::chrono::steady_clock::now() + kBarrierTimeout;
    std::array<uint8_t, 2048> buf{};
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("the barrier marker did not arrive within 10 s");
      pollfd pfd{inj.barrier_rx.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) throw_errno("poll barrier");
      if (ready == 0) continue;
      const ssize_t n = ::recv(inj.barrier_rx.get(), buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("recv barrier");
      if (static_cast<size_t>(n) >= 14 + payload.size() &&
          std::equal(payload.begin(), payload.end(), buf.begin() + 14)) {
        break;
      }
    }

    // Every frame must have reached its host interface: a frame dropped on
    // the way (a full backlog) would make the counters differ silently.
    // A bridge counts only what it passes up to the host (br_netfilter may
    // bridge a frame addressed to it): its ports count every frame.
    const std::map<std::string, uint64_t> rx_after = rx_packets_by_interface();
    const auto received = [&](const std::string& name) {
      const auto b = rx_before.find(name);
      const auto a = rx_after.find(name);
      if (b == rx_before.end() || a == rx_after.end()) {
        throw std::runtime_error("no rx counter for " + name + " in the host namespace");
      }
      return a->second - b->second;
    };
    for (const std::string_view ingress : {dh::kEth0, dh::kDocker0, dh::kBridge2}) {
      const std::string name(ingress);
      const uint64_t sent = sent_on.contains(name) ? sent_on.at(name) : 0;
      if (ingress != dh::kEth0) {
        uint64_t delta = 0;
        for (const dh::Peer& p : dh::kPeers) {
          if (p.ingress == ingress) delta += received(std::string(p.host_port));
        }
        if (delta != sent) {
          throw std::runtime_error("the ports of " + name + " received " + std::to_string(delta) + " frames; " +
                                   std::to_string(sent) + " were sent to them (frames lost or extra traffic)");
        }
        continue;
      }
      const uint64_t delta = received(name);
      const uint64_t addressed = addressed_to.contains(name) ? addressed_to.at(name) : 0;
      if (delta < addressed || delta > sent) {
        throw std::runtime_error(name + " received " + std::to_string(delta) + " frames; " +
                                 std::to_string(sent) + " were sent to it, " + std::to_string(addressed) +
                                 " of them to its MAC (frames lost or extra traffic)");
      }
    }
  });
}

std::vector<std::string> KernelDockerHost::trace_states(const std::vector<InjectedFrame>& frames) {
  static constexpr std::array<const char*, 5> kStates{"INVALID", "NEW", "RELATED", "ESTABLISHED",
                                                      "UNTRACKED"};
  for (auto it = kStates.rbegin(); it != kStates.rend(); ++it) {
    run_checked(*host_, {"iptables-legacy", "-w", "30", "-t", "mangle", "-I", "PREROUTING", "1", "-m",
                         "conntrack", "--ctstate", *it});
  }
  // The probes are mangle PREROUTING rules 1..5, in kStates order. Read by
  // a child forked from a thread inside the host namespace (children inherit
  // the forking thread's namespace), which is much cheaper per frame than
  // `ip netns exec`.
  const auto probe_counts = [] {
    const CommandResult r = run_command({"iptables-legacy-save", "-c", "-t", "mangle"});
    if (!r.ok()) throw std::runtime_error("iptables-legacy-save -t mangle: " + r.describe());
    const CounterTable t = parse_rule_counters(r.out, "iptables-legacy-save -c -t mangle");
    std::array<uint64_t, kStates.size()> n{};
    for (size_t i = 0; i < kStates.size(); ++i) {
      const auto it = t.find(CounterKey{"mangle", "PREROUTING", static_cast<uint32_t>(i + 1)});
      if (it == t.end() ||
          it->second.text != std::string("-A PREROUTING -m conntrack --ctstate ") + kStates[i]) {
        throw std::runtime_error("mangle PREROUTING probe rule " + std::to_string(i + 1) + " is missing");
      }
      n[i] = it->second.counters.packets;
    }
    return n;
  };
  std::vector<std::string> states;
  const std::string name = host_->name();
  on_own_thread([&] {
    enter_netns(name);
    std::array<uint64_t, kStates.size()> before = probe_counts();
    for (const InjectedFrame& f : frames) {
      inject({f});
      const std::array<uint64_t, kStates.size()> after = probe_counts();
      std::string state = "-";
      for (size_t i = 0; i < kStates.size(); ++i) {
        if (after[i] == before[i]) continue;
        if (after[i] != before[i] + 1 || state != "-") {
          throw std::runtime_error("mangle PREROUTING probes counted more than one packet for one frame");
        }
        state = kStates[i];
      }
      states.push_back(state);
      before = after;
    }
  });
  return states;
}

// ---------------------------------------------------------------- counters

std::string CounterKey::str() const {
  return table + "/" + chain + "/" + (rule == 0 ? std::string("policy") : std::to_string(rule));
}

namespace {

// Parses "[p:b]" at the start of `s`; returns the length consumed, 0 if `s`
// does not start with a well-formed counter pair.
size_t parse_counter_pair(std::string_view s, Counters& out) {
  if (s.empty() || s.front() != '[') return 0;
  size_t i = 1;
  const auto number = [&s, &i](uint64_t& v) {
    const size_t start = i;
    v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      const auto digit = static_cast<uint64_t>(s[i] - '0');
      if (v > (UINT64_MAX - digit) / 10) return false;
      v = v * 10 + digit;
      ++i;
    }
    return i > start;
  };
  if (!number(out.packets) || i >= s.size() || s[i] != ':') return 0;
  ++i;
  if (!number(out.bytes) || i >= s.size() || s[i] != ']') return 0;
  return i + 1;
}

// The first whitespace-delimited word of `s` starting at `from`.
std::string_view word_at(std::string_view s, size_t from) {
  const size_t end = s.find(' ', from);
  return s.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from);
}

}  // namespace

CounterTable parse_rule_counters(std::string_view text, const std::string& source_name) {
  CounterTable table;
  std::string current;  // the table being read, "" outside one
  std::map<std::string, uint32_t> rules_in_chain;
  uint32_t line_no = 0;
  size_t pos = 0;
  const auto fail = [&source_name, &line_no](size_t col, const std::string& what) {
    throw LoadError(
        SourceLocation{.file = source_name, .line = line_no, .column = static_cast<uint32_t>(col + 1)}, what);
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;

    if (line.front() == '*') {
      if (!current.empty()) fail(0, "expected COMMIT before a new table");
      current = std::string(line.substr(1));
      if (current.empty()) fail(1, "expected a table name after '*'");
      rules_in_chain.clear();
      continue;
    }
    if (current.empty()) fail(0, "expected a '*table' line");
    if (line == "COMMIT") {
      current.clear();
      continue;
    }
    if (line.front() == ':') {
      // :CHAIN POLICY [p:b]
      const std::string_view chain = word_at(line, 1);
      if (chain.empty()) fail(1, "expected a chain name after ':'");
      const size_t policy_at = 1 + chain.size() + 1;
      if (policy_at >= line.size()) fail(line.size(), "expected a policy after the chain name");
      const std::string_view policy = word_at(line, policy_at);
      const size_t counters_at = policy_at + policy.size() + 1;
      Counters c;
      if (counters_at >= line.size() || parse_counter_pair(line.substr(counters_at), c) == 0) {
        fail(std::min(counters_at, line.size()), "expected [packets:bytes] after the policy");
      }
      if (policy == "-" || chain == "OUTPUT") continue;  // user chain, or skipped
      table[CounterKey{current, std::string(chain), 0}] =
          RuleCounter{c, ":" + std::string(chain) + " " + std::string(policy)};
      continue;
    }
    Counters c;
    const size_t used = parse_counter_pair(line, c);
    if (used == 0) {
      fail(0, line.starts_with("-A ") ? "expected [packets:bytes] before -A (save with -c)"
                                      : "expected [packets:bytes] -A CHAIN ..., :CHAIN, *table or COMMIT");
    }
    std::string_view rest = line.substr(used);
    if (!rest.starts_with(" -A ")) fail(used, "expected -A CHAIN after the counters");
    rest.remove_prefix(1);
    const std::string_view chain = word_at(rest, 3);
    if (chain.empty()) fail(used + 4, "expected a chain name after -A");
    const uint32_t n = ++rules_in_chain[std::string(chain)];
    if (chain == "OUTPUT") continue;
    table[CounterKey{current, std::string(chain), n}] = RuleCounter{c, std::string(rest)};
  }
  if (!current.empty()) {
    throw LoadError(SourceLocation{.file = source_name, .line = line_no, .column = 0},
                    "expected COMMIT at the end of table " + current);
  }
  return table;
}

namespace {

std::string counter_text(const Counters& c) {
  return "[" + std::to_string(c.packets) + ":" + std::to_string(c.bytes) + "]";
}

}  // namespace

std::vector<std::string> diff_counters(const CounterTable& kernel, const CounterTable& model,
                                       CounterDiffOptions options) {
  const bool model_has_raw =
      std::any_of(model.begin(), model.end(), [](const auto& kv) { return kv.first.table == "raw"; });
  std::vector<std::string> out;
  auto k = kernel.begin();
  auto m = model.begin();
  while (k != kernel.end() || m != model.end()) {
    if (m == model.end() || (k != kernel.end() && k->first < m->first)) {
      if (k->first.table != "raw" || model_has_raw) {
        out.push_back(k->first.str() + " \"" + k->second.text + "\" " + counter_text(k->second.counters) +
                      ": only in the kernel");
      }
      ++k;
    } else if (k == kernel.end() || m->first < k->first) {
      out.push_back(m->first.str() + " \"" + m->second.text + "\" " + counter_text(m->second.counters) +
                    ": only in the model");
      ++m;
    } else {
      if (options.compare_text && k->second.text != m->second.text) {
        out.push_back(k->first.str() + ": kernel has \"" + k->second.text + "\", model has \"" +
                      m->second.text + "\"");
      }
      if (k->second.counters != m->second.counters) {
        out.push_back(k->first.str() + " \"" + k->second.text + "\": kernel " +
                      counter_text(k->second.counters) + ", model " + counter_text(m->second.counters));
      }
      ++k;
      ++m;
    }
  }
  return out;
}

}  // namespace nfb
