// HostModel against the running kernel. A namespace is built like the default
// Docker host (veth eth0 198.51.100.1/24 whose peer 198.51.100.254 sits in a
// second namespace and is the default gateway; bridges docker0 and
// br-5c0a8c6e1d2f), its `ip -j addr` / `ip -j route` output is loaded, and:
//  - the loaded model equals default_docker_host();
//  - route() agrees with `ip route get fibmatch ADDR` (the FIB entry);
//  - route_input() agrees with `ip route get DST from SRC iif IFACE`;
//  - addr_type() and route_input() agree with what iptables sees for UDP
//    frames injected on the peer: `-m addrtype` rules (plain,
//    --limit-iface-in, --limit-iface-out) and per-interface INPUT/FORWARD
//    rules in table mangle, read back as counters;
//  - masquerade_source() agrees with the reply tuple conntrack records after
//    MASQUERADE.
// Needs root, `ip`, iptables-legacy and conntrack; skips with the reason
// otherwise.
#include "netfilter/host.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <tuple>
#include <thread>
#include <vector>

#include "packet/byte_order.h"
#include "rules/rule.h"
#include "tests/support/netns.h"

namespace nfb {
namespace {

using Json = nlohmann::json;

uint32_t ip(std::string_view s) { return parse_ipv4(s).value(); }

std::string text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xffU) + "." +
         std::to_string((a >> 8) & 0xffU) + "." + std::to_string(a & 0xffU);
}

constexpr const char* kPeer = "198.51.100.254";
constexpr std::array<uint8_t, 6> kEth0Mac{0x02, 0, 0, 0, 0, 0x01};
constexpr std::array<uint8_t, 6> kDocker0Mac{0x02, 0, 0, 0, 0, 0x02};

// A frame: Ethernet, IPv4 (checksummed), UDP 1234 -> 9 with 8 bytes of data.
std::vector<uint8_t> udp_frame(const std::array<uint8_t, 6>& dst_mac, uint32_t src, uint32_t dst) {
  std::vector<uint8_t> f(14 + 20 + 16, 0);
  std::copy(dst_mac.begin(), dst_mac.end(), f.begin());
  const std::array<uint8_t, 6> src_mac{0x02, 0, 0, 0, 0, 0xfe};
  std::copy(src_mac.begin(), src_mac.end(), f.begin() + 6);
  store_be16(&f[12], 0x0800);
  uint8_t* iph = &f[14];
  iph[0] = 0x45;
  store_be16(iph + 2, 36);
  store_be16(iph + 4, 1);
  iph[8] = 64;
  iph[9] = 17;
  store_be32(iph + 12, src);
  store_be32(iph + 16, dst);
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += load_be16(iph + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  store_be16(iph + 10, static_cast<uint16_t>(~sum & 0xffff));
  uint8_t* udp = iph + 20;
  store_be16(udp, 1234);
  store_be16(udp + 2, 9);
  store_be16(udp + 4, 16);
  std::memset(udp + 8, 'x', 8);
  return f;
}

// Sends `frame` on interface `ifname` of namespace `netns`, from a child
// process that enters the namespace (the test process stays where it is).
bool inject(const std::string& netns, const std::string& ifname, const std::vector<uint8_t>& frame) {
  const std::string ns_path = "/run/netns/" + netns;
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    const int nsfd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) ::_exit(2);
    const int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s < 0) ::_exit(3);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    sll.sll_halen = 6;
    std::memcpy(sll.sll_addr, frame.data(), 6);
    if (sll.sll_ifindex == 0) ::_exit(4);
    const ssize_t n = ::sendto(s, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&sll),
                               sizeof sll);
    ::_exit(n == static_cast<ssize_t>(frame.size()) ? 0 : 5);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class HostKernelTest : public ::testing::Test {
 public:
  void SetUp() override {
    if (const auto reason = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *reason;
    if (!find_executable("conntrack")) GTEST_SKIP() << "conntrack not found in PATH or sbin";
    host_.emplace();
    peer_.emplace();
    const std::string& p = peer_->name();
    h({"ip", "link", "set", "lo", "up"});
    h({"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peth0", "netns", p});
    h({"ip", "link", "set", "eth0", "address", "02:00:00:00:00:01"});
    h({"ip", "addr", "add", "198.51.100.1/24", "dev", "eth0"});
    h({"ip", "link", "set", "eth0", "up"});
    int n = 2;
    for (const char* br : {"docker0", "br-5c0a8c6e1d2f"}) {
      h({"ip", "link", "add", br, "type", "bridge"});
      h({"ip", "link", "set", br, "address", "02:00:00:00:00:0" + std::to_string(n++)});
    }
    h({"ip", "addr", "add", "172.17.0.1/16", "dev", "docker0"});
    h({"ip", "addr", "add", "172.18.0.1/16", "dev", "br-5c0a8c6e1d2f"});
    h({"ip", "link", "set", "docker0", "up"});
    h({"ip", "link", "set", "br-5c0a8c6e1d2f", "up"});
    // The containers' ends on the bridges (default_docker_host() has them).
    int k = 0;
    for (const auto& [port, mac, bridge] :
         {std::tuple{"veth5b0e9a1", "7a:1e:5b:0e:9a:01", "docker0"}, std::tuple{"vethc7d24f3", "7a:1e:c7:d2:4f:03", "docker0"},
          std::tuple{"veth9e81b6d", "7a:1e:9e:81:b6:0d", "br-5c0a8c6e1d2f"}}) {
      const std::string other = "pv" + std::to_string(k++);
      h({"ip", "link", "add", port, "address", mac, "type", "veth", "peer", "name", other, "netns", p});
      h({"ip", "link", "set", port, "master", bridge});
      h({"ip", "link", "set", port, "up"});
    }
    h({"ip", "route", "add", "default", "via", kPeer});
    h({"sysctl", "-qw", "net.ipv4.ip_forward=1"});
    pr({"ip", "link", "set", "lo", "up"});
    pr({"ip", "addr", "add", std::string(kPeer) + "/24", "dev", "peth0"});
    pr({"ip", "link", "set", "peth0", "up"});
  }

  // Runs in the host namespace; the command must succeed.
  std::string h(const std::vector<std::string>& argv) const {
    const CommandResult r = host_->run(argv);
    EXPECT_TRUE(r.ok()) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.describe();
    return r.out;
  }
  std::string pr(const std::vector<std::string>& argv) const {
    const CommandResult r = peer_->run(argv);
    EXPECT_TRUE(r.ok()) << argv[0] << ": " << r.describe();
    return r.out;
  }

  // A bridge port on docker0 whose other end, pc0, is in the peer namespace:
  // frames sent there reach docker0 as a container's would.
  void add_container_port() {
    h({"ip", "link", "add", "vc0", "type", "veth", "peer", "name", "pc0", "netns", peer_->name()});
    h({"ip", "link", "set", "vc0", "master", "docker0"});
    h({"ip", "link", "set", "vc0", "up"});
    pr({"ip", "link", "set", "pc0", "up"});
  }

  HostModel load(bool table_all) const {
    const std::string addrs = h({"ip", "-d", "-j", "addr"});
    const std::string routes = table_all ? h({"ip", "-j", "route", "show", "table", "all"}) : h({"ip", "-j", "route"});
    return parse_host(addrs, routes, "ip -d -j addr", table_all ? "ip -j route show table all" : "ip -j route");
  }

  const NetnsSandbox& host() const { return *host_; }

 protected:
  std::optional<NetnsSandbox> host_;
  std::optional<NetnsSandbox> peer_;
};

// ---------------------------------------------------------------------------

TEST_F(HostKernelTest, LoadedNamespaceEqualsTheDefaultHost) {
  const HostModel builtin = default_docker_host();
  for (const bool table_all : {false, true}) {
    SCOPED_TRACE(table_all ? "table all" : "main table");
    const HostModel loaded = load(table_all);
    ASSERT_EQ(loaded.iface_count(), builtin.iface_count());
    for (uint16_t id = 0; id < loaded.iface_count(); ++id) EXPECT_EQ(loaded.iface(id), builtin.iface(id));
    EXPECT_EQ(std::vector<Route>(loaded.routes().begin(), loaded.routes().end()),
              std::vector<Route>(builtin.routes().begin(), builtin.routes().end()));
  }
}

const char* type_word(AddrType t) {
  switch (t) {
    case AddrType::Unicast: return "unicast";
    case AddrType::Local: return "local";
    case AddrType::Broadcast: return "broadcast";
    case AddrType::Multicast: return "multicast";
    case AddrType::Anycast: return "anycast";
    default: return "?";
  }
}

// `ip route get fibmatch` prints the FIB entry; its errors name the error
// route types.
void compare_fibmatch(const HostKernelTest& t, const HostModel& m, const NetnsSandbox& ns,
                      const std::vector<const char*>& addrs) {
  for (const char* a : addrs) {
    SCOPED_TRACE(a);
    const RouteResult r = m.route(ip(a));
    const CommandResult got = ns.run({"ip", "-j", "route", "get", "fibmatch", a});
    if (!got.ok()) {
      std::string expect_err;
      switch (r.type) {
        case AddrType::Unspec: expect_err = "Network is unreachable"; break;
        case AddrType::Blackhole: expect_err = "Invalid argument"; break;
        case AddrType::Unreachable: expect_err = "No route to host"; break;
        case AddrType::Prohibit: expect_err = "Permission denied"; break;
        default: expect_err = "(the model found a usable route)";
      }
      EXPECT_NE(got.err.find(expect_err), std::string::npos) << got.err << " vs " << expect_err;
      continue;
    }
    const Json j = Json::parse(got.out).at(0);
    ASSERT_TRUE(r.found()) << got.out;
    EXPECT_EQ(j.value("type", "unicast"), type_word(r.type)) << got.out;
    const std::string dst = j.at("dst").get<std::string>();
    const std::string want_dst = r.prefix_len == 0 ? "default"
                                 : r.prefix_len == 32 ? text(r.prefix)
                                                      : text(r.prefix) + "/" + std::to_string(r.prefix_len);
    EXPECT_EQ(dst, want_dst) << got.out;
    EXPECT_EQ(j.value("gateway", "0.0.0.0"), text(r.gateway)) << got.out;
    EXPECT_EQ(j.value("dev", ""), r.iface == kNoIface ? "" : m.iface(r.iface).name) << got.out;
  }
  (void)t;
}

const std::vector<const char*> kAddrs = {
    "198.51.100.1", "198.51.100.77", "198.51.100.0", "198.51.100.255", "198.51.100.254", "8.8.8.8",
    "0.1.2.3", "172.17.0.1", "172.17.0.2", "172.17.0.0", "172.17.255.255", "172.18.0.1", "172.18.5.5",
    "172.18.255.255", "127.0.0.1", "127.0.0.5", "127.0.0.0", "127.255.255.255",
};

void add_extra_routes(const HostKernelTest& t) {
  for (const std::vector<std::string>& r : std::vector<std::vector<std::string>>{
           {"blackhole", "10.0.0.0/8"},
           {"unreachable", "10.1.0.0/16"},
           {"prohibit", "10.2.0.0/16"},
           {"throw", "10.3.0.0/16"},
           {"broadcast", "10.5.0.7", "dev", "eth0", "table", "main"},
           {"10.6.0.0/16", "via", "198.51.100.9", "dev", "eth0"},
           {"127.1.2.0/24", "dev", "eth0"},
           {"198.51.100.255/32", "via", "198.51.100.9"},
           {"172.17.0.1/32", "dev", "eth0"},
           {"10.7.0.0/16", "dev", "docker0", "metric", "100"},
           {"10.7.0.0/16", "dev", "br-5c0a8c6e1d2f", "metric", "10"},
           {"10.8.0.0/16", "dev", "docker0", "table", "default"},
       }) {
    std::vector<std::string> argv{"ip", "route", "add"};
    argv.insert(argv.end(), r.begin(), r.end());
    t.h(argv);
  }
}

const std::vector<const char*> kExtraAddrs = {
    "10.0.0.1", "10.1.0.1", "10.2.0.1", "10.3.0.1", "10.5.0.7", "10.6.0.1", "127.1.2.3", "127.1.3.3",
    "10.7.1.1", "10.8.1.1", "10.9.1.1",
};

TEST_F(HostKernelTest, RouteAgreesWithFibmatch) {
  compare_fibmatch(*this, load(false), *host_, kAddrs);
  add_extra_routes(*this);
  for (const bool table_all : {false, true}) {
    SCOPED_TRACE(table_all ? "table all" : "main table");
    const HostModel m = load(table_all);
    compare_fibmatch(*this, m, *host_, kAddrs);
    compare_fibmatch(*this, m, *host_, kExtraAddrs);
  }
}

// `ip route get DST from SRC iif IFACE` runs the input route lookup.
void compare_input(const HostModel& m, const NetnsSandbox& ns, const char* dst, const char* src,
                   const std::string& iif) {
  SCOPED_TRACE(std::string(src) + " -> " + dst + " iif " + iif);
  const RouteDecision d = m.route_input(ip(dst), ip(src), *m.iface_id(iif));
  const CommandResult got = ns.run({"ip", "-j", "route", "get", dst, "from", src, "iif", iif});
  if (!got.ok()) {
    std::string expect_err;
    switch (d.verdict) {
      case RouteVerdict::Martian:
      case RouteVerdict::Blackhole:
      case RouteVerdict::NotJoined: expect_err = "Invalid argument"; break;
      case RouteVerdict::NoRoute: expect_err = "Network is unreachable"; break;
      case RouteVerdict::Unreachable: expect_err = "No route to host"; break;
      case RouteVerdict::Prohibit: expect_err = "Permission denied"; break;
      default: expect_err = std::string("(model: ") + route_verdict_name(d.verdict) + ")";
    }
    EXPECT_NE(got.err.find(expect_err), std::string::npos) << got.err << " vs " << expect_err;
    return;
  }
  const Json j = Json::parse(got.out).at(0);
  const std::string type = j.value("type", "unicast");
  if (type == "unicast") {
    EXPECT_EQ(d.verdict, RouteVerdict::Forward) << got.out << " model: " << route_verdict_name(d.verdict);
    EXPECT_EQ(j.value("dev", ""), d.out_iface == kNoIface ? "" : m.iface(d.out_iface).name) << got.out;
    EXPECT_EQ(j.value("gateway", dst), text(d.next_hop)) << got.out;
  } else {
    EXPECT_EQ(d.verdict, RouteVerdict::Input) << got.out << " model: " << route_verdict_name(d.verdict);
    EXPECT_EQ(type, type_word(d.type)) << got.out;
  }
}

TEST_F(HostKernelTest, RouteInputAgreesWithIpRouteGetIif) {
  const std::vector<const char*> dsts = {
      "198.51.100.1", "172.17.0.1", "198.51.100.255", "172.17.255.255", "255.255.255.255", "224.0.0.1",
      "224.0.0.106", "239.1.2.3", "127.0.0.1", "198.51.100.0", "0.1.2.3", "8.8.8.8", "198.51.100.77",
      "172.17.0.2", "172.18.5.5",
  };
  const std::vector<const char*> srcs = {kPeer, "172.17.0.2", "198.51.100.1", "198.51.100.255",
                                         "172.17.255.255", "127.0.0.1", "224.0.0.5", "0.1.2.3"};
  const HostModel m = load(false);
  for (const char* iif : {"eth0", "docker0"}) {
    for (const char* d : dsts) {
      for (const char* s : srcs) compare_input(m, *host_, d, s, iif);
    }
  }
  add_extra_routes(*this);
  const HostModel extra = load(true);
  for (const char* d : kExtraAddrs) {
    for (const char* s : {kPeer, "10.0.0.1", "10.1.0.1", "10.5.0.7"}) compare_input(extra, *host_, d, s, "eth0");
  }
  // A hand-made local route switches source validation to the full check.
  h({"ip", "route", "add", "local", "10.4.0.0/16", "dev", "lo", "table", "main"});
  const HostModel custom = load(true);
  ASSERT_TRUE(custom.has_custom_local_routes());
  for (const char* d : {"198.51.100.1", "10.4.0.1", "172.17.0.2", "8.8.8.8"}) {
    for (const char* s : {kPeer, "10.4.0.1", "198.51.100.255", "10.0.0.1"}) compare_input(custom, *host_, d, s, "eth0");
  }
}

TEST_F(HostKernelTest, RouteInputWithoutForwarding) {
  h({"ip", "route", "add", "blackhole", "10.0.0.0/8"});
  h({"ip", "route", "add", "throw", "10.3.0.0/16"});
  h({"sysctl", "-qw", "net.ipv4.ip_forward=0"});
  HostSpec spec = parse_host_spec(h({"ip", "-d", "-j", "addr"}), h({"ip", "-j", "route", "show", "table", "all"}),
                                  "ip -d -j addr", "ip -j route show table all");
  spec.ip_forward = false;
  const HostModel m = HostModel::build(std::move(spec), "namespace");
  for (const char* d : {"10.0.0.1", "10.3.0.1", "8.8.8.8", "172.17.0.2", "198.51.100.1", "172.17.255.255",
                        "255.255.255.255", "224.0.0.1", "127.0.0.1"}) {
    compare_input(m, *host_, d, kPeer, "eth0");
  }
}

// What mangle rules counted for one injected frame: comment tag -> values.
using Hits = std::map<std::string, std::set<std::string>>;

class CounterProbe {
 public:
  explicit CounterProbe(const NetnsSandbox& host) : host_(host) {
    std::string rules = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                        ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n";
    const std::string udp = " -p udp -m udp --sport 1234 --dport 9";
    rules += "-A PREROUTING" + udp + " -m comment --comment seen\n";
    for (size_t i = 0; i < kAddrTypeCount; ++i) {
      const std::string t = addr_type_name(static_cast<AddrType>(i));
      rules += "-A PREROUTING" + udp + " -m addrtype --dst-type " + t + " -m comment --comment d:" + t + "\n";
      rules += "-A PREROUTING" + udp + " -m addrtype --dst-type " + t +
               " --limit-iface-in -m comment --comment di:" + t + "\n";
      rules += "-A PREROUTING" + udp + " -m addrtype --src-type " + t + " -m comment --comment s:" + t + "\n";
      rules += "-A FORWARD" + udp + " -m addrtype --dst-type " + t +
               " --limit-iface-out -m comment --comment fo:" + t + "\n";
    }
    rules += "-A INPUT" + udp + " -m comment --comment in:\n";
    rules += "-A FORWARD" + udp + " -m comment --comment fwd:\n";
    rules += "COMMIT\n";
    host_.restore(rules);
  }

  Hits probe(const NetnsSandbox& from, const std::string& ifname, const std::array<uint8_t, 6>& mac,
             const char* src, const char* dst) {
    host_.run({"iptables-legacy", "-t", "mangle", "-Z"});
    EXPECT_TRUE(inject(from.name(), ifname, udp_frame(mac, ip(src), ip(dst))));
    Hits hits;
    for (int attempt = 0; attempt < 100; ++attempt) {
      hits = read();
      if (hits.count("seen") != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return hits;
  }

 private:
  Hits read() const {
    const CommandResult r = host_.run({"iptables-legacy-save", "-c", "-t", "mangle"});
    Hits hits;
    static const std::regex line(R"re(^\[(\d+):\d+\] .*--comment "?([a-z]+):?([A-Za-z0-9]*))re");
    size_t pos = 0;
    while (pos < r.out.size()) {
      size_t end = r.out.find('\n', pos);
      if (end == std::string::npos) end = r.out.size();
      const std::string l = r.out.substr(pos, end - pos);
      pos = end + 1;
      std::smatch m;
      if (std::regex_search(l, m, line) && m[1] != "0") hits[m[2]].insert(m[3]);
    }
    return hits;
  }

  const NetnsSandbox& host_;
};

TEST_F(HostKernelTest, AddrtypeAndRoutingAgreeWithIptablesCounters) {
  add_container_port();
  CounterProbe probe(*host_);
  // Out interface of forwarded packets: one FORWARD rule per interface.
  const HostModel m = load(false);
  for (uint16_t id = 0; id < m.iface_count(); ++id) {
    h({"iptables-legacy", "-t", "mangle", "-A", "FORWARD", "-o", m.iface(id).name, "-p", "udp", "-m", "udp",
       "--sport", "1234", "--dport", "9", "-m", "comment", "--comment", "out:" + std::to_string(id)});
  }
  struct Probe {
    const char* dst;
    const char* src;
    bool from_container;  // sent on pc0 (docker0's port) rather than peth0
  };
  const std::vector<Probe> probes = {
      {"198.51.100.1", kPeer, false}, {"172.17.0.1", kPeer, false}, {"172.18.0.1", kPeer, false},
      {"127.0.0.1", kPeer, false}, {"127.0.0.5", kPeer, false}, {"127.255.255.255", kPeer, false},
      {"198.51.100.255", kPeer, false}, {"172.17.255.255", kPeer, false}, {"198.51.100.0", kPeer, false},
      {"172.17.0.0", kPeer, false}, {"255.255.255.255", kPeer, false}, {"224.0.0.1", kPeer, false},
      {"239.1.2.3", kPeer, false}, {"0.0.0.0", kPeer, false}, {"0.1.2.3", kPeer, false},
      {"8.8.8.8", kPeer, false}, {"198.51.100.77", kPeer, false}, {"172.17.0.2", kPeer, false},
      {"172.18.5.5", kPeer, false},
      {"8.8.8.8", "0.0.0.0", false}, {"255.255.255.255", "0.0.0.0", false}, {"0.0.0.0", "0.0.0.0", false},
      {"198.51.100.1", "0.0.0.0", false}, {"224.0.0.1", "0.0.0.0", false}, {"224.0.0.5", "0.0.0.0", false},
      {"8.8.8.8", "198.51.100.1", false}, {"8.8.8.8", "198.51.100.255", false},
      {"172.17.0.2", "198.51.100.255", false}, {"198.51.100.1", "198.51.100.255", false},
      {"8.8.8.8", "224.0.0.5", false}, {"8.8.8.8", "127.0.0.1", false}, {"172.17.0.2", "0.1.2.3", false},
      {"224.0.0.1", "198.51.100.1", false},
      // From a container on docker0.
      {"8.8.8.8", "172.17.0.2", true}, {"172.17.0.1", "172.17.0.2", true}, {"198.51.100.1", "172.17.0.2", true},
      {"172.18.0.3", "172.17.0.2", true}, {"172.17.255.255", "172.17.0.2", true},
      {"224.0.0.106", "172.17.0.2", true}, {"172.17.0.3", "172.17.0.2", true},
  };
  const uint16_t eth0 = *m.iface_id("eth0");
  const uint16_t docker0 = *m.iface_id("docker0");
  for (const Probe& p : probes) {
    SCOPED_TRACE(std::string(p.src) + " -> " + p.dst + (p.from_container ? " from docker0" : " from eth0"));
    const uint16_t in = p.from_container ? docker0 : eth0;
    const Hits hits = probe.probe(*peer_, p.from_container ? "pc0" : "peth0",
                                  p.from_container ? kDocker0Mac : kEth0Mac, p.src, p.dst);
    ASSERT_EQ(hits.count("seen"), 1U) << "the frame never reached PREROUTING";
    const auto one = [](AddrType t) { return std::set<std::string>{addr_type_name(t)}; };
    EXPECT_EQ(hits.at("d"), one(m.addr_type(ip(p.dst))));
    EXPECT_EQ(hits.at("di"), one(m.addr_type(ip(p.dst), in)));
    EXPECT_EQ(hits.at("s"), one(m.addr_type(ip(p.src))));
    const RouteDecision d = m.route_input(ip(p.dst), ip(p.src), in);
    EXPECT_EQ(hits.count("in") == 1, d.to_input()) << route_verdict_name(d.verdict);
    EXPECT_EQ(hits.count("fwd") == 1, d.to_forward()) << route_verdict_name(d.verdict);
    if (d.to_forward()) {
      EXPECT_EQ(hits.count("out"), 1U);
      if (hits.count("out") != 0) {
        EXPECT_EQ(hits.at("out"), std::set<std::string>{std::to_string(d.out_iface)});
      }
      EXPECT_EQ(hits.count("fo"), 1U);
      if (hits.count("fo") != 0) {
        EXPECT_EQ(hits.at("fo"), one(m.addr_type(ip(p.dst), d.out_iface)));
      }
    }
  }
}

TEST_F(HostKernelTest, MasqueradeSourceAgreesWithConntrack) {
  h({"ip", "addr", "add", "203.0.113.5/24", "dev", "eth0"});
  h({"ip", "addr", "add", "203.0.113.6/24", "dev", "eth0"});
  h({"ip", "addr", "add", "192.0.2.9/24", "scope", "link", "dev", "eth0"});
  h({"ip", "link", "add", "ext1", "type", "veth", "peer", "name", "ext1p"});
  h({"ip", "link", "set", "ext1", "up"});
  h({"ip", "link", "set", "ext1p", "up"});
  h({"ip", "route", "add", "9.9.9.0/24", "dev", "ext1"});
  h({"ip", "route", "add", "8.8.4.0/24", "dev", "eth0"});
  h({"ip", "route", "add", "7.7.7.0/24", "via", "203.0.113.254"});
  h({"ip", "route", "add", "6.6.6.0/24", "via", "192.0.2.254"});
  host_->restore("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                 ":POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE\n"
                 "-A POSTROUTING -o ext1 -j MASQUERADE\nCOMMIT\n");
  const HostModel m = load(true);
  for (const char* dst : {"8.8.8.8", "8.8.4.4", "7.7.7.7", "6.6.6.6", "9.9.9.9", "203.0.113.77"}) {
    SCOPED_TRACE(dst);
    const RouteDecision d = m.route_input(ip(dst), ip(kPeer), *m.iface_id("eth0"));
    ASSERT_TRUE(d.to_forward()) << route_verdict_name(d.verdict);
    const std::optional<uint32_t> want = m.masquerade_source(d.out_iface, d.next_hop);
    ASSERT_TRUE(want.has_value());
    ASSERT_TRUE(inject(peer_->name(), "peth0", udp_frame(kEth0Mac, ip(kPeer), ip(dst))));
    std::string reply_dst;
    for (int attempt = 0; attempt < 100 && reply_dst.empty(); ++attempt) {
      const CommandResult r = host_->run({"conntrack", "-L", "-p", "udp", "--orig-dst", dst});
      // "... src=PEER dst=DST sport=1234 dport=9 [UNREPLIED] src=DST dst=MASQ sport=9 ..."
      static const std::regex reply(R"(\[UNREPLIED\] src=\S+ dst=(\S+))");
      std::smatch sm;
      if (std::regex_search(r.out, sm, reply)) {
        reply_dst = sm[1];
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    EXPECT_EQ(reply_dst, text(*want));
  }
}

}  // namespace
}  // namespace nfb
