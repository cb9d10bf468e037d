// Docker 28 and kube-proxy rulesets of any size (ruleset_gen.h). The rule
// texts follow the bundled dumps data/rulesets/docker-28.save and
// data/rulesets/kube-proxy.save line for line; the comments below say which
// order each chain's rules come in and why.
#include "rules/ruleset_gen.h"

#include <fmt/format.h>

#include <array>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/hash.h"
#include "rules/rule.h"

namespace nfb {
namespace {

// A splitmix64 stream: the only source of randomness here, so the output
// depends on the seed alone (not on the standard library's distributions).
class Random {
 public:
  explicit Random(uint64_t seed) noexcept : state_(seed) {}
  uint64_t next() noexcept { return splitmix64(state_); }
  /// In [0, n), n >= 1; uniform up to a bias of n / 2^64.
  uint64_t below(uint64_t n) noexcept { return next() % n; }

 private:
  uint64_t state_;
};

template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

const char* proto_name(bool udp) noexcept { return udp ? "udp" : "tcp"; }

// Common service ports, by protocol (container ports and service ports).
constexpr std::array<uint16_t, 20> kTcpPorts{80,   443,  8080, 8443, 3000, 5000, 8000,  9000,  9090, 6379,
                                             5432, 3306, 27017, 9200, 5672, 11211, 2379, 50051, 9093, 8081};
constexpr std::array<uint16_t, 8> kUdpPorts{53, 123, 514, 1812, 5353, 6831, 8125, 51820};

// ---------------------------------------------------------------------------
// Docker

constexpr uint32_t kDockerFirstHostPort = 10000;
constexpr uint32_t kDockerMaxNetworks = 31;

struct DockerNetwork {
  std::string bridge;
  uint32_t subnet = 0;  // host order
  unsigned prefix = 16;
  uint32_t first = 0;   // index of its first container
  uint32_t count = 0;   // its containers
};

struct DockerPort {
  bool udp = false;
  bool loopback = false;  // published on 127.0.0.1 only
  uint16_t host_port = 0;
  uint16_t container_port = 0;
};

struct DockerContainer {
  uint32_t addr = 0;
  uint32_t network = 0;
  std::vector<DockerPort> ports;
};

// Docker's default address pools: 172.17.0.0/16 .. 172.31.0.0/16, then
// 192.168.0.0/16 in /20s.
void docker_subnet(uint32_t i, DockerNetwork& n) {
  if (i < 15) {
    n.subnet = (172U << 24) | ((17U + i) << 16);
    n.prefix = 16;
  } else {
    n.subnet = (192U << 24) | (168U << 16) | ((i - 15U) * 16U << 8);
    n.prefix = 20;
  }
}

// The container ports one container has taken, per protocol.
struct ContainerPorts {
  std::set<std::pair<bool, uint16_t>> used;  // (udp, port)
  std::array<uint32_t, 2> scan{1024, 1024};  // per protocol: no free port below this from 1024 up
};

// A container port for a published port of kind `udp`, from the common
// ports of its protocol, not yet used by the container with that protocol;
// once those are all taken, the lowest free one from 1024 up (at most 55536
// ports per container, so one is always left below 65536).
uint16_t pick_container_port(Random& rng, bool udp, ContainerPorts& taken) {
  const uint16_t* list = udp ? kUdpPorts.data() : kTcpPorts.data();
  const size_t n = udp ? kUdpPorts.size() : kTcpPorts.size();
  const size_t start = rng.below(n);
  for (size_t k = 0; k < n; ++k) {
    const uint16_t p = list[(start + k) % n];
    if (taken.used.insert({udp, p}).second) return p;
  }
  for (uint32_t& p = taken.scan[udp ? 1 : 0];; ++p) {
    if (taken.used.insert({udp, static_cast<uint16_t>(p)}).second) return static_cast<uint16_t>(p++);
  }
}

}  // namespace

std::string generate_docker_ruleset(const DockerGenOptions& o) {
  if (o.networks < 1 || o.networks > kDockerMaxNetworks) {
    throw std::invalid_argument(fmt::format("networks: {} is not in 1 .. {}", o.networks, kDockerMaxNetworks));
  }
  const uint64_t published = static_cast<uint64_t>(o.containers) * o.ports;
  if (published > 65536 - kDockerFirstHostPort) {
    throw std::invalid_argument(fmt::format("containers x ports = {} host ports: more than the {} from {} to 65535",
                                            published, 65536 - kDockerFirstHostPort, kDockerFirstHostPort));
  }
  Random rng(o.seed);

  // Networks in creation order; containers in blocks over them.
  std::vector<DockerNetwork> nets(o.networks);
  std::unordered_set<std::string> bridges;
  for (uint32_t i = 0; i < o.networks; ++i) {
    DockerNetwork& n = nets[i];
    docker_subnet(i, n);
    if (i == 0) {
      n.bridge = "docker0";
    } else {
      do {
        n.bridge = fmt::format("br-{:012x}", rng.next() >> 16);
      } while (!bridges.insert(n.bridge).second);
    }
    n.count = o.containers / o.networks + (i < o.containers % o.networks ? 1U : 0U);
    n.first = i == 0 ? 0 : nets[i - 1].first + nets[i - 1].count;
    const uint32_t hosts = (1U << (32 - n.prefix)) - 3;  // minus network, gateway, broadcast
    if (n.count > hosts) {
      throw std::invalid_argument(fmt::format("{} containers on {}/{}: it holds {}", n.count,
                                              format_ipv4(n.subnet), n.prefix, hosts));
    }
  }
  std::vector<DockerContainer> ctrs(o.containers);
  uint32_t g = 0;  // published port index over all containers
  for (uint32_t ni = 0; ni < o.networks; ++ni) {
    for (uint32_t k = 0; k < nets[ni].count; ++k) {
      DockerContainer& c = ctrs[nets[ni].first + k];
      c.network = ni;
      c.addr = nets[ni].subnet + 2 + k;
      ContainerPorts used;
      for (uint32_t p = 0; p < o.ports; ++p, ++g) {
        DockerPort port;
        port.udp = g % 10 == 2 || g % 10 == 7;
        port.loopback = g % 10 == 1;
        port.host_port = static_cast<uint16_t>(kDockerFirstHostPort + g);
        port.container_port = pick_container_port(rng, port.udp, used);
        c.ports.push_back(port);
      }
    }
  }

  std::string out;
  put(out, "# Generated by nfbench gen docker --containers {} --ports {} --networks {} --seed {}\n", o.containers,
      o.ports, o.networks, o.seed);
  put(out, "# Docker 28 host (userland-proxy on, icc on, ip-masq on). Published port g (from 0): host port\n");
  put(out, "# 10000 + g; g mod 10 = 1 on 127.0.0.1 only, 2 and 7 UDP, the others TCP.\n");
  for (const DockerNetwork& n : nets) {
    put(out, "# {} {}/{}, containers: {}", n.bridge, format_ipv4(n.subnet), n.prefix, n.count);
    if (n.count > 0) put(out, " ({} - {})", format_ipv4(n.subnet + 2), format_ipv4(n.subnet + 1 + n.count));
    out += '\n';
  }

  // raw: per endpoint (as it joins) a DROP for its address from anywhere but
  // its bridge, then per port published on 127.0.0.1 a DROP for the port
  // from anywhere but lo.
  out += "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
  for (const DockerContainer& c : ctrs) {
    put(out, "-A PREROUTING -d {}/32 ! -i {} -j DROP\n", format_ipv4(c.addr), nets[c.network].bridge);
    for (const DockerPort& p : c.ports) {
      if (!p.loopback) continue;
      put(out, "-A PREROUTING -d 127.0.0.1/32 ! -i lo -p {0} -m {0} --dport {1} -j DROP\n", proto_name(p.udp),
          p.host_port);
    }
  }
  out += "COMMIT\n";

  // filter: user chains sorted by name, as iptables-save lists them.
  out += "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         ":DOCKER - [0:0]\n:DOCKER-BRIDGE - [0:0]\n:DOCKER-CT - [0:0]\n:DOCKER-FORWARD - [0:0]\n"
         ":DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n"
         "-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-FORWARD\n";
  // DOCKER: each published port's ACCEPT is inserted at the top, so the
  // latest comes first; each network's DROP is appended when it is created.
  for (auto c = ctrs.rbegin(); c != ctrs.rend(); ++c) {
    const std::string& br = nets[c->network].bridge;
    for (auto p = c->ports.rbegin(); p != c->ports.rend(); ++p) {
      put(out, "-A DOCKER -d {0}/32 ! -i {1} -o {1} -p {2} -m {2} --dport {3} -j ACCEPT\n", format_ipv4(c->addr),
          br, proto_name(p->udp), p->container_port);
    }
  }
  for (const DockerNetwork& n : nets) put(out, "-A DOCKER ! -i {0} -o {0} -j DROP\n", n.bridge);
  for (const DockerNetwork& n : nets) put(out, "-A DOCKER-BRIDGE -o {} -j DOCKER\n", n.bridge);
  for (const DockerNetwork& n : nets) {
    put(out, "-A DOCKER-CT -o {} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", n.bridge);
  }
  out += "-A DOCKER-FORWARD -j DOCKER-CT\n-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1\n"
         "-A DOCKER-FORWARD -j DOCKER-BRIDGE\n";
  for (const DockerNetwork& n : nets) put(out, "-A DOCKER-FORWARD -i {} -j ACCEPT\n", n.bridge);
  // Stage 1 is appended per network, stage 2 inserted at the top.
  for (const DockerNetwork& n : nets) {
    put(out, "-A DOCKER-ISOLATION-STAGE-1 -i {0} ! -o {0} -j DOCKER-ISOLATION-STAGE-2\n", n.bridge);
  }
  for (auto n = nets.rbegin(); n != nets.rend(); ++n) put(out, "-A DOCKER-ISOLATION-STAGE-2 -o {} -j DROP\n", n->bridge);
  out += "COMMIT\n";

  // nat: MASQUERADE and the DOCKER RETURN per network are inserted at the
  // top (latest network first); DNAT per published port appended.
  out += "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
         ":DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
         "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n";
  for (auto n = nets.rbegin(); n != nets.rend(); ++n) {
    put(out, "-A POSTROUTING -s {}/{} ! -o {} -j MASQUERADE\n", format_ipv4(n->subnet), n->prefix, n->bridge);
  }
  for (auto n = nets.rbegin(); n != nets.rend(); ++n) put(out, "-A DOCKER -i {} -j RETURN\n", n->bridge);
  for (const DockerContainer& c : ctrs) {
    for (const DockerPort& p : c.ports) {
      put(out, "-A DOCKER {0}! -i {1} -p {2} -m {2} --dport {3} -j DNAT --to-destination {4}:{5}\n",
          p.loopback ? "-d 127.0.0.1/32 " : "", nets[c.network].bridge, proto_name(p.udp), p.host_port,
          format_ipv4(c.addr), p.container_port);
    }
  }
  out += "COMMIT\n";
  return out;
}

// ---------------------------------------------------------------------------
// Kubernetes

namespace {

constexpr uint32_t kServiceBase = (172U << 24) | (30U << 16);  // 172.30.0.0/16
constexpr uint32_t kPodBase = (10U << 24) | (180U << 16);      // 10.180.0.0, in the cluster CIDR 10.0.0.0/8
constexpr uint32_t kMaxServices = 65534;
constexpr uint64_t kMaxPods = 4'000'000;  // 10.180.0.1 .. below 10.241.9.0
constexpr uint16_t kNodePortLo = 30000, kNodePortHi = 32767;

// 16 characters of RFC 4648's base32 alphabet from 80 bits of a 64-bit mix
// of the text and the seed (FNV-1a over the bytes, then two finalisations).
std::string name_hash(std::string_view text, uint64_t seed) {
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint64_t h = 0xcbf29ce484222325ULL ^ splitmix64_mix(seed);
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  const uint64_t a = splitmix64_mix(h);
  const uint64_t b = splitmix64_mix(h ^ 0x9e3779b97f4a7c15ULL);
  std::string out(16, 'A');
  for (unsigned i = 0; i < 12; ++i) out[i] = kBase32[(a >> (5 * i)) & 31];
  for (unsigned i = 0; i < 4; ++i) out[12 + i] = kBase32[(b >> (5 * i)) & 31];
  return out;
}

// A hash not handed out before in this ruleset (a collision of 80 bits is
// unlikely, but the chains must stay distinct): the text with " #k" appended
// until it is new.
std::string unique_hash(std::string_view text, uint64_t seed, std::unordered_set<std::string>& taken) {
  std::string h = name_hash(text, seed);
  for (unsigned k = 1; !taken.insert(h).second; ++k) h = name_hash(fmt::format("{} #{}", text, k), seed);
  return h;
}

// Node ports drawn without repetition from 30000-32767 (a partial
// Fisher-Yates shuffle); 0 once the range is used up.
class NodePorts {
 public:
  explicit NodePorts(Random& rng) : rng_(rng), free_(kNodePortHi - kNodePortLo + 1) {
    std::iota(free_.begin(), free_.end(), kNodePortLo);
  }
  uint16_t take() {
    if (used_ == free_.size()) return 0;
    std::swap(free_[used_], free_[used_ + rng_.below(free_.size() - used_)]);
    return free_[used_++];
  }

 private:
  Random& rng_;
  std::vector<uint16_t> free_;
  size_t used_ = 0;
};

}  // namespace

std::string generate_kube_ruleset(const KubeGenOptions& o) {
  if (o.services < 1 || o.services > kMaxServices) {
    throw std::invalid_argument(fmt::format("services: {} is not in 1 .. {}", o.services, kMaxServices));
  }
  if (o.endpoints < 1) throw std::invalid_argument("endpoints: must be at least 1");
  if (static_cast<uint64_t>(o.services) * o.endpoints > kMaxPods) {
    throw std::invalid_argument(fmt::format("services x endpoints = {} pods: more than {}",
                                            static_cast<uint64_t>(o.services) * o.endpoints, kMaxPods));
  }
  Random rng(o.seed);
  NodePorts node_ports(rng);
  std::unordered_set<std::string> taken;

  // nat user chains by name (std::map: sorted bytewise, as iptables-save
  // lists them), each with its rules' text after `-A CHAIN `.
  std::map<std::string, std::vector<std::string>> nat;
  for (const char* name : {"KUBE-KUBELET-CANARY", "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING",
                           "KUBE-PROXY-CANARY", "KUBE-SERVICES"}) {
    nat[name];
  }
  nat["KUBE-MARK-MASQ"].push_back("-j MARK --set-xmark 0x4000/0x4000");
  nat["KUBE-POSTROUTING"] = {
      "-m mark ! --mark 0x4000/0x4000 -j RETURN",
      "-j MARK --set-xmark 0x4000/0x0",
      "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
  };
  std::vector<std::string>& services = nat["KUBE-SERVICES"];
  std::vector<std::string>& nodeports = nat["KUBE-NODEPORTS"];
  uint32_t pod = kPodBase + 1;
  uint32_t udp_services = 0, nodeport_services = 0;
  for (uint32_t i = 0; i < o.services; ++i) {
    const bool udp = i % 8 == 3;
    const char* proto = proto_name(udp);
    const uint16_t port = udp ? kUdpPorts[rng.below(kUdpPorts.size())] : kTcpPorts[rng.below(kTcpPorts.size())];
    const uint16_t node_port = i % 4 == 1 ? node_ports.take() : 0;
    udp_services += udp;
    nodeport_services += node_port != 0;
    const std::string name = fmt::format("ns{}/svc{}:p{}", 1 + i % 10, i + 1, port);
    const std::string cluster_ip = format_ipv4(kServiceBase + 1 + i);
    const std::string hash = unique_hash(name + proto, o.seed, taken);
    const std::string svc = "KUBE-SVC-" + hash;

    services.push_back(fmt::format("-d {0}/32 -p {2} -m comment --comment \"{1} cluster IP\" -m {2} --dport {3} -j {4}",
                                   cluster_ip, name, proto, port, svc));
    std::vector<std::string>& svc_rules = nat[svc];
    svc_rules.push_back(fmt::format(
        "! -s 10.0.0.0/8 -d {0}/32 -p {2} -m comment --comment \"{1} cluster IP\" -m {2} --dport {3} -j KUBE-MARK-MASQ",
        cluster_ip, name, proto, port));
    for (uint32_t j = 0; j < o.endpoints; ++j, ++pod) {
      const std::string endpoint = fmt::format("{}:{}", format_ipv4(pod), port);
      const std::string sep = "KUBE-SEP-" + unique_hash(name + proto + endpoint, o.seed, taken);
      // Endpoint j of n takes 1/(n-j) of what the rules before it left:
      // 1/n of the whole each. The last one takes the rest unconditionally.
      const uint32_t left = o.endpoints - j;
      svc_rules.push_back(left == 1
                              ? fmt::format("-m comment --comment \"{} -> {}\" -j {}", name, endpoint, sep)
                              : fmt::format("-m comment --comment \"{} -> {}\" -m statistic --mode random "
                                            "--probability {:.10f} -j {}",
                                            name, endpoint, 1.0 / static_cast<double>(left), sep));
      nat[sep] = {
          fmt::format("-s {}/32 -m comment --comment \"{}\" -j KUBE-MARK-MASQ", format_ipv4(pod), name),
          fmt::format("-p {1} -m comment --comment \"{0}\" -m {1} -j DNAT --to-destination {2}", name, proto, endpoint),
      };
    }
    if (node_port != 0) {
      const std::string ext = "KUBE-EXT-" + hash;
      nat[ext] = {
          fmt::format("-m comment --comment \"masquerade traffic for {} external destinations\" -j KUBE-MARK-MASQ",
                      name),
          "-j " + svc,
      };
      nodeports.push_back(
          fmt::format("-p {1} -m comment --comment \"{0}\" -m {1} --dport {2} -j {3}", name, proto, node_port, ext));
    }
  }
  services.push_back(
      "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" "
      "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");

  std::string out;
  put(out, "# Generated by nfbench gen kube --services {} --endpoints {} --seed {}\n", o.services, o.endpoints, o.seed);
  put(out, "# kube-proxy iptables mode (v1.28+ shape): cluster CIDR 10.0.0.0/8, masquerade bit 0x4000;\n");
  put(out, "# cluster IPs {} - {}, pods {} - {}; UDP services: {}, NodePort services: {}.\n",
      format_ipv4(kServiceBase + 1), format_ipv4(kServiceBase + o.services), format_ipv4(kPodBase + 1),
      format_ipv4(pod - 1), udp_services, nodeport_services);
  out += "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         ":KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-FORWARD - [0:0]\n"
         ":KUBE-KUBELET-CANARY - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-PROXY-CANARY - [0:0]\n"
         ":KUBE-PROXY-FIREWALL - [0:0]\n:KUBE-SERVICES - [0:0]\n"
         "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" "
         "-j KUBE-PROXY-FIREWALL\n"
         "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n"
         "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" "
         "-j KUBE-EXTERNAL-SERVICES\n"
         "-A INPUT -j KUBE-FIREWALL\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" "
         "-j KUBE-PROXY-FIREWALL\n"
         "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
         "-j KUBE-SERVICES\n"
         "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service "
         "portals\" -j KUBE-EXTERNAL-SERVICES\n"
         "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" "
         "-j KUBE-PROXY-FIREWALL\n"
         "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
         "-j KUBE-SERVICES\n"
         "-A OUTPUT -j KUBE-FIREWALL\n"
         "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet "
         "connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
         "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
         "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 "
         "-j ACCEPT\n"
         "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate "
         "RELATED,ESTABLISHED -j ACCEPT\n"
         "COMMIT\n";
  out += "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n";
  for (const auto& [name, rules] : nat) put(out, ":{} - [0:0]\n", name);
  out += "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n";
  for (const auto& [name, rules] : nat) {
    for (const std::string& r : rules) put(out, "-A {} {}\n", name, r);
  }
  out += "COMMIT\n";
  return out;
}

}  // namespace nfb
