// HostModel: routes, input routing decisions, addrtype and MASQUERADE source
// selection on the default Docker host and on variations of it, loading `ip
// -j addr` / `ip -j route` JSON, and the load errors. The expected answers
// are what Linux 6.18 gave in a namespace built the same way (see the
// comment block in netfilter/host.h; tests/host_kernel_test.cpp re-checks
// them against the running kernel).
#include "netfilter/host.h"
#include "netfilter/bridge.h"
#include "netfilter/host_folder.h"
#include "netfilter/sysctl.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "base/load_error.h"
#include "rules/rule.h"

namespace nfb {
namespace {

// "a.b.c.d" -> host-order address (test input is always well formed).
uint32_t ip(std::string_view s) { return parse_ipv4(s).value(); }

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}
std::string data_path(const std::string& name) { return source_root() + "/tests/data/host/" + name; }

constexpr uint16_t kLo = 0, kEth0 = 1, kDocker0 = 2, kBr = 3;

}  // namespace

// gtest prints Route values this way (found by argument-dependent lookup).
void PrintTo(const Route& r, std::ostream* os) { *os << format_route(r); }

namespace {

// ---------------------------------------------------------------------------
// Interfaces

TEST(HostInterfacesTest, DefaultHostHasFourInterfacesAndThreeBridgePortsWithStableIdsAndMacs) {
  const HostModel h = default_docker_host();
  ASSERT_EQ(h.iface_count(), 7U);
  EXPECT_TRUE(h.is_bridge(kDocker0));
  EXPECT_TRUE(h.is_bridge(kBr));
  EXPECT_FALSE(h.is_bridge(kEth0));
  EXPECT_FALSE(h.is_bridge(kNoIface));
  EXPECT_TRUE(h.has_bridge_ports());
  EXPECT_TRUE(h.bridge_nf_call_iptables());
  EXPECT_EQ(h.iface_id("veth5b0e9a1"), 4);
  EXPECT_EQ(h.master_of(4), kDocker0);
  EXPECT_EQ(h.master_of(6), kBr);
  EXPECT_EQ(h.master_of(kDocker0), kNoIface);
  EXPECT_EQ(std::vector<uint16_t>(h.ports_of(kDocker0).begin(), h.ports_of(kDocker0).end()),
            (std::vector<uint16_t>{4, 5}));
  EXPECT_TRUE(h.ports_of(kEth0).empty());
  EXPECT_TRUE(h.ports_of(kNoIface).empty());
  EXPECT_EQ(h.iface(kLo).name, "lo");
  EXPECT_EQ(h.iface(kEth0).name, "eth0");
  EXPECT_EQ(h.iface(kDocker0).name, "docker0");
  EXPECT_EQ(h.iface(kBr).name, "br-5c0a8c6e1d2f");
  EXPECT_EQ(h.iface_id("lo"), kLo);
  EXPECT_EQ(h.iface_id("eth0"), kEth0);
  EXPECT_EQ(h.iface_id("docker0"), kDocker0);
  EXPECT_EQ(h.iface_id("br-5c0a8c6e1d2f"), kBr);
  EXPECT_EQ(h.iface_id("eth"), std::nullopt);
  EXPECT_EQ(h.iface_id("eth00"), std::nullopt);
  EXPECT_EQ(h.iface_id(""), std::nullopt);
  EXPECT_EQ(h.loopback_iface(), kLo);
  EXPECT_EQ(h.iface(kLo).mac, (std::array<uint8_t, 6>{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(h.iface(kEth0).mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}));
  EXPECT_EQ(h.iface(kDocker0).mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 2}));
  EXPECT_EQ(h.iface(kBr).mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 3}));
  EXPECT_TRUE(h.iface(kLo).loopback);
  EXPECT_FALSE(h.iface(kEth0).loopback);
}

TEST(HostInterfacesTest, InterfacePatternsMatchLikeIptables) {
  HostSpec four = default_docker_host_spec();
  four.interfaces.resize(4);  // without the bridge ports
  const HostModel h = HostModel::build(four, "test");
  struct Case {
    const char* name;
    bool wildcard;
    bool invert;
    std::vector<bool> expect;  // lo, eth0, docker0, br-..., then "no interface"
  };
  const std::vector<Case> cases = {
      {"eth0", false, false, {false, true, false, false, false}},
      {"eth", false, false, {false, false, false, false, false}},  // exact name only
      {"eth", true, false, {false, true, false, false, false}},    // eth+
      {"docker0", false, true, {true, true, false, true, true}},   // ! docker0
      {"br-", true, false, {false, false, false, true, false}},    // br-+
      {"br-", true, true, {true, true, true, false, true}},        // ! br-+
      {"", true, false, {true, true, true, true, true}},           // +
      {"", true, true, {false, false, false, false, false}},       // ! +
      {"", false, false, {true, true, true, true, true}},          // no -i
      {"docker0x", false, false, {false, false, false, false, false}},
      {"nosuch", false, true, {true, true, true, true, true}},
  };
  for (const Case& c : cases) {
    IfaceMatch pattern;
    pattern.name = c.name;
    pattern.wildcard = c.wildcard;
    pattern.invert = c.invert;
    SCOPED_TRACE((c.invert ? "! " : "") + pattern.name + (c.wildcard ? "+" : ""));
    const IfaceSet set = h.resolve(pattern);
    for (uint16_t id = 0; id < 4; ++id) {
      EXPECT_EQ(h.iface_matches(pattern, id), c.expect[id]) << "id " << id;
      EXPECT_EQ(set.contains(id), c.expect[id]) << "id " << id;
    }
    EXPECT_EQ(h.iface_matches(pattern, kNoIface), c.expect[4]);
    EXPECT_EQ(set.contains(kNoIface), c.expect[4]);
    EXPECT_EQ(set.contains(4), c.expect[4]);  // an id the host does not have
    const size_t n = static_cast<size_t>(std::count(c.expect.begin(), c.expect.begin() + 4, true));
    EXPECT_EQ(set.count(), n);
    EXPECT_EQ(set.all(), n == 4 && c.expect[4]);
  }
}

TEST(HostInterfacesTest, ManyInterfacesSpanSeveralBitmapWords) {
  HostSpec spec;
  for (int i = 0; i < 150; ++i) {
    Interface ifc;
    ifc.name = (i % 2 == 0 ? "veth" : "tap") + std::to_string(i);
    spec.interfaces.push_back(ifc);
  }
  const HostModel h = HostModel::build(spec, "test");
  const IfaceSet set = h.resolve(IfaceMatch{"veth", true, false});
  EXPECT_EQ(set.count(), 75U);
  for (uint16_t id = 0; id < 150; ++id) EXPECT_EQ(set.contains(id), id % 2 == 0) << id;
  EXPECT_EQ(h.iface_id("tap149"), 149);
  EXPECT_EQ(h.iface_id("veth148"), 148);
}

// ---------------------------------------------------------------------------
// Routes of the default host

struct RouteRow {
  RouteTable table;
  AddrType type;
  const char* dst;
  uint8_t len;
  const char* gateway;
  uint16_t iface;
  const char* prefsrc;
};

Route make_route(const RouteRow& r) {
  Route out;
  out.table = r.table;
  out.type = r.type;
  out.dst = ip(r.dst);
  out.prefix_len = r.len;
  out.gateway = ip(r.gateway);
  out.iface = r.iface;
  out.prefsrc = ip(r.prefsrc);
  out.kernel = r.type != AddrType::Unicast || r.len != 0;  // all but the default route
  return out;
}

TEST(HostRoutesTest, DefaultHostHasTheKernelsRoutingTables) {
  // `ip route show table all` in the namespace, in this model's order.
  using enum AddrType;
  const std::vector<RouteRow> rows = {
      {RouteTable::Local, Local, "127.0.0.1", 32, "0.0.0.0", kLo, "127.0.0.1"},
      {RouteTable::Local, Broadcast, "127.255.255.255", 32, "0.0.0.0", kLo, "127.0.0.1"},
      {RouteTable::Local, Local, "172.17.0.1", 32, "0.0.0.0", kDocker0, "172.17.0.1"},
      {RouteTable::Local, Broadcast, "172.17.255.255", 32, "0.0.0.0", kDocker0, "172.17.0.1"},
      {RouteTable::Local, Local, "172.18.0.1", 32, "0.0.0.0", kBr, "172.18.0.1"},
      {RouteTable::Local, Broadcast, "172.18.255.255", 32, "0.0.0.0", kBr, "172.18.0.1"},
      {RouteTable::Local, Local, "198.51.100.1", 32, "0.0.0.0", kEth0, "198.51.100.1"},
      {RouteTable::Local, Broadcast, "198.51.100.255", 32, "0.0.0.0", kEth0, "198.51.100.1"},
      {RouteTable::Local, Local, "127.0.0.0", 8, "0.0.0.0", kLo, "127.0.0.1"},
      {RouteTable::Main, Unicast, "198.51.100.0", 24, "0.0.0.0", kEth0, "198.51.100.1"},
      {RouteTable::Main, Unicast, "172.17.0.0", 16, "0.0.0.0", kDocker0, "172.17.0.1"},
      {RouteTable::Main, Unicast, "172.18.0.0", 16, "0.0.0.0", kBr, "172.18.0.1"},
      {RouteTable::Main, Unicast, "0.0.0.0", 0, "198.51.100.254", kEth0, "0.0.0.0"},
  };
  std::vector<Route> expected;
  for (const RouteRow& r : rows) expected.push_back(make_route(r));
  const HostModel h = default_docker_host();
  EXPECT_EQ(std::vector<Route>(h.routes().begin(), h.routes().end()), expected);
  EXPECT_FALSE(h.has_custom_local_routes());
}

void expect_route(const HostModel& h, const char* dst, AddrType type, uint16_t iface, const char* gateway,
                  uint8_t len) {
  SCOPED_TRACE(dst);
  const RouteResult r = h.route(ip(dst));
  EXPECT_EQ(r.type, type);
  EXPECT_EQ(r.iface, iface);
  EXPECT_EQ(r.gateway, ip(gateway));
  EXPECT_EQ(r.prefix_len, len);
  EXPECT_EQ(r.prefix, ip(dst) & prefix_mask(len));
}

TEST(HostRoutesTest, DefaultHostLookups) {
  const HostModel h = default_docker_host();
  using enum AddrType;
  expect_route(h, "198.51.100.77", Unicast, kEth0, "0.0.0.0", 24);
  expect_route(h, "8.8.8.8", Unicast, kEth0, "198.51.100.254", 0);
  expect_route(h, "0.1.2.3", Unicast, kEth0, "198.51.100.254", 0);
  expect_route(h, "172.17.0.2", Unicast, kDocker0, "0.0.0.0", 16);
  expect_route(h, "172.18.5.5", Unicast, kBr, "0.0.0.0", 16);
  expect_route(h, "198.51.100.1", Local, kEth0, "0.0.0.0", 32);
  expect_route(h, "172.17.0.1", Local, kDocker0, "0.0.0.0", 32);
  expect_route(h, "172.18.0.1", Local, kBr, "0.0.0.0", 32);
  expect_route(h, "127.0.0.1", Local, kLo, "0.0.0.0", 32);
  expect_route(h, "127.0.0.5", Local, kLo, "0.0.0.0", 8);
  expect_route(h, "198.51.100.255", Broadcast, kEth0, "0.0.0.0", 32);
  expect_route(h, "172.17.255.255", Broadcast, kDocker0, "0.0.0.0", 32);
  expect_route(h, "172.18.255.255", Broadcast, kBr, "0.0.0.0", 32);
  expect_route(h, "127.255.255.255", Broadcast, kLo, "0.0.0.0", 32);
  // No broadcast route for the network address any more.
  expect_route(h, "198.51.100.0", Unicast, kEth0, "0.0.0.0", 24);
  expect_route(h, "172.17.0.0", Unicast, kDocker0, "0.0.0.0", 16);
  // The FIB has no special case for these (route_input has).
  expect_route(h, "255.255.255.255", Unicast, kEth0, "198.51.100.254", 0);
  expect_route(h, "224.0.0.1", Unicast, kEth0, "198.51.100.254", 0);

  const RouteResult r = h.route(ip("8.8.8.8"));
  EXPECT_EQ(r.next_hop(ip("8.8.8.8")), ip("198.51.100.254"));
  EXPECT_EQ(h.route(ip("172.17.0.2")).next_hop(ip("172.17.0.2")), ip("172.17.0.2"));
  EXPECT_EQ(h.route(ip("172.17.0.2")).prefsrc, ip("172.17.0.1"));
}

TEST(HostRoutesTest, WithoutADefaultRouteUnknownDestinationsHaveNoRoute) {
  HostSpec spec = default_docker_host_spec();
  spec.routes.clear();
  const HostModel h = HostModel::build(spec, "test");
  EXPECT_FALSE(h.route(ip("8.8.8.8")).found());
  EXPECT_EQ(h.route(ip("8.8.8.8")).type, AddrType::Unspec);
  EXPECT_EQ(h.route_input(ip("8.8.8.8"), ip("198.51.100.254"), kEth0).verdict, RouteVerdict::NoRoute);
  EXPECT_EQ(h.addr_type(ip("8.8.8.8")), AddrType::Unicast);
  EXPECT_TRUE(h.route(ip("172.17.0.9")).found());
}

TEST(HostRoutesTest, EmptyHostAnswersWithoutCrashing) {
  const HostModel h;
  EXPECT_FALSE(h.route(ip("1.2.3.4")).found());
  EXPECT_EQ(h.addr_type(ip("1.2.3.4")), AddrType::Unicast);
  EXPECT_EQ(h.route_input(ip("1.2.3.4"), ip("5.6.7.8"), kNoIface).verdict, RouteVerdict::NoRoute);
  EXPECT_EQ(h.masquerade_source(0, ip("1.2.3.4")), std::nullopt);
  EXPECT_EQ(h.iface_id("lo"), std::nullopt);
  EXPECT_EQ(h.loopback_iface(), kNoIface);
}

// Routes added to the default host as in the kernel experiment.
HostModel host_with_extra_routes(bool custom_local) {
  HostSpec spec = default_docker_host_spec();
  const auto add = [&spec](RouteTable table, AddrType type, const char* dst, uint8_t len, const char* gw,
                           uint16_t iface) {
    Route r;
    r.table = table;
    r.type = type;
    r.dst = ip(dst);
    r.prefix_len = len;
    r.gateway = ip(gw);
    r.iface = iface;
    spec.routes.push_back(r);
  };
  using enum AddrType;
  add(RouteTable::Main, Blackhole, "10.0.0.0", 8, "0.0.0.0", kNoIface);
  add(RouteTable::Main, Unreachable, "10.1.0.0", 16, "0.0.0.0", kNoIface);
  add(RouteTable::Main, Prohibit, "10.2.0.0", 16, "0.0.0.0", kNoIface);
  add(RouteTable::Main, Throw, "10.3.0.0", 16, "0.0.0.0", kNoIface);
  if (custom_local) add(RouteTable::Main, Local, "10.4.0.0", 16, "0.0.0.0", kLo);
  add(RouteTable::Main, Broadcast, "10.5.0.7", 32, "0.0.0.0", kEth0);
  add(RouteTable::Main, Unicast, "10.6.0.0", 16, "198.51.100.9", kEth0);
  add(RouteTable::Main, Unicast, "127.1.2.0", 24, "0.0.0.0", kEth0);
  add(RouteTable::Main, Unicast, "198.51.100.255", 32, "198.51.100.9", kEth0);
  add(RouteTable::Main, Unicast, "172.17.0.1", 32, "0.0.0.0", kEth0);
  return HostModel::build(spec, "test");
}

TEST(HostRoutesTest, LocalAndMainAreOneLongestPrefixMatch) {
  const HostModel h = host_with_extra_routes(true);
  using enum AddrType;
  EXPECT_TRUE(h.has_custom_local_routes());
  expect_route(h, "10.0.0.1", Blackhole, kNoIface, "0.0.0.0", 8);
  expect_route(h, "10.1.0.1", Unreachable, kNoIface, "0.0.0.0", 16);
  expect_route(h, "10.2.0.1", Prohibit, kNoIface, "0.0.0.0", 16);
  EXPECT_FALSE(h.route(ip("10.3.0.1")).found());  // throw, nothing in table default
  expect_route(h, "10.4.0.1", Local, kLo, "0.0.0.0", 16);
  expect_route(h, "10.5.0.7", Broadcast, kEth0, "0.0.0.0", 32);
  expect_route(h, "10.6.0.1", Unicast, kEth0, "198.51.100.9", 16);
  // A /24 in main beats the /8 local route of table local.
  expect_route(h, "127.1.2.3", Unicast, kEth0, "0.0.0.0", 24);
  expect_route(h, "127.1.3.3", Local, kLo, "0.0.0.0", 8);
  // Equal prefixes: table local's entry wins.
  expect_route(h, "198.51.100.255", Broadcast, kEth0, "0.0.0.0", 32);
  expect_route(h, "172.17.0.1", Local, kDocker0, "0.0.0.0", 32);
}

TEST(HostRoutesTest, ThrowFallsThroughToTableDefaultAndMetricBreaksTies) {
  HostSpec spec = default_docker_host_spec();
  Route thr;
  thr.type = AddrType::Throw;
  thr.dst = ip("10.3.0.0");
  thr.prefix_len = 16;
  spec.routes.push_back(thr);
  Route in_default;
  in_default.table = RouteTable::Default;
  in_default.dst = ip("10.0.0.0");
  in_default.prefix_len = 8;
  in_default.iface = kDocker0;
  spec.routes.push_back(in_default);
  // Two equal prefixes in main: the lower metric wins whatever the order.
  Route worse;
  worse.dst = ip("10.7.0.0");
  worse.prefix_len = 16;
  worse.iface = kDocker0;
  worse.metric = 100;
  spec.routes.push_back(worse);
  Route better = worse;
  better.iface = kBr;
  better.metric = 10;
  spec.routes.push_back(better);
  const HostModel h = HostModel::build(spec, "test");
  const RouteResult r = h.route(ip("10.3.4.5"));
  EXPECT_EQ(r.type, AddrType::Unicast);
  EXPECT_EQ(r.table, RouteTable::Default);
  EXPECT_EQ(r.iface, kDocker0);
  // Table default is consulted only after main: 10.9.9.9 takes main's default route.
  EXPECT_EQ(h.route(ip("10.9.9.9")).table, RouteTable::Main);
  EXPECT_EQ(h.route(ip("10.9.9.9")).iface, kEth0);
  EXPECT_EQ(h.route(ip("10.7.1.1")).iface, kBr);
  EXPECT_EQ(h.route(ip("10.7.1.1")).metric, 10U);
}

// ---------------------------------------------------------------------------
// Implicit routes of unusual addresses

TEST(HostRoutesTest, KernelRoutesForSecondaryBroadcastPeerAndDownAddresses) {
  HostSpec spec;
  spec.synthesize_connected_routes = true;
  Interface lo;
  lo.name = "lo";
  lo.loopback = true;
  lo.addrs.push_back(IfaceAddress{ip("127.0.0.1"), 0, 8, addr_scope::kHost, 0, false, false});
  spec.interfaces.push_back(lo);
  Interface tb;
  tb.name = "tb0";
  const auto add = [&tb](const char* a, uint8_t len, const char* brd, bool secondary, bool noprefix) {
    tb.addrs.push_back(IfaceAddress{ip(a), 0, len, addr_scope::kGlobal, ip(brd), secondary, noprefix});
  };
  add("10.9.0.1", 24, "0.0.0.0", false, false);
  add("10.9.1.1", 30, "10.9.1.2", false, false);
  add("10.9.2.1", 31, "0.0.0.0", false, false);
  add("10.9.3.1", 32, "0.0.0.0", false, false);
  add("10.9.5.1", 24, "10.9.5.255", false, false);  // `brd +`: same as the subnet's
  add("10.9.4.1", 24, "0.0.0.0", false, true);
  add("0.1.2.3", 16, "0.0.0.0", false, false);
  add("0.9.2.3", 8, "0.0.0.0", false, false);
  add("10.9.0.2", 24, "0.0.0.0", true, false);
  spec.interfaces.push_back(tb);
  Interface down = tb;
  down.name = "down0";
  down.up = false;
  down.addrs = {IfaceAddress{ip("10.8.0.1"), 0, 24, addr_scope::kGlobal, 0, false, false}};
  spec.interfaces.push_back(down);
  Interface ptp;
  ptp.name = "ptp0";
  ptp.addrs = {IfaceAddress{ip("10.7.0.1"), ip("10.7.1.2"), 24, addr_scope::kGlobal, 0, false, false}};
  spec.interfaces.push_back(ptp);
  const HostModel h = HostModel::build(spec, "test");

  // What `ip route show table all` listed for these addresses.
  using enum AddrType;
  const std::vector<RouteRow> rows = {
      {RouteTable::Local, Local, "0.1.2.3", 32, "0.0.0.0", 1, "0.1.2.3"},
      {RouteTable::Local, Broadcast, "0.1.255.255", 32, "0.0.0.0", 1, "0.1.2.3"},
      {RouteTable::Local, Local, "0.9.2.3", 32, "0.0.0.0", 1, "0.9.2.3"},
      {RouteTable::Local, Local, "10.7.0.1", 32, "0.0.0.0", 3, "10.7.0.1"},
      {RouteTable::Local, Broadcast, "10.7.1.255", 32, "0.0.0.0", 3, "10.7.0.1"},
      {RouteTable::Local, Local, "10.8.0.1", 32, "0.0.0.0", 2, "10.8.0.1"},
      {RouteTable::Local, Local, "10.9.0.1", 32, "0.0.0.0", 1, "10.9.0.1"},
      {RouteTable::Local, Local, "10.9.0.2", 32, "0.0.0.0", 1, "10.9.0.1"},
      {RouteTable::Local, Broadcast, "10.9.0.255", 32, "0.0.0.0", 1, "10.9.0.1"},
      {RouteTable::Local, Local, "10.9.1.1", 32, "0.0.0.0", 1, "10.9.1.1"},
      {RouteTable::Local, Broadcast, "10.9.1.2", 32, "0.0.0.0", 1, "10.9.1.1"},
      {RouteTable::Local, Broadcast, "10.9.1.3", 32, "0.0.0.0", 1, "10.9.1.1"},
      {RouteTable::Local, Local, "10.9.2.1", 32, "0.0.0.0", 1, "10.9.2.1"},
      {RouteTable::Local, Local, "10.9.3.1", 32, "0.0.0.0", 1, "10.9.3.1"},
      {RouteTable::Local, Local, "10.9.4.1", 32, "0.0.0.0", 1, "10.9.4.1"},
      {RouteTable::Local, Broadcast, "10.9.4.255", 32, "0.0.0.0", 1, "10.9.4.1"},
      {RouteTable::Local, Local, "10.9.5.1", 32, "0.0.0.0", 1, "10.9.5.1"},
      {RouteTable::Local, Broadcast, "10.9.5.255", 32, "0.0.0.0", 1, "10.9.5.1"},
      {RouteTable::Local, Local, "127.0.0.1", 32, "0.0.0.0", 0, "127.0.0.1"},
      {RouteTable::Local, Broadcast, "127.255.255.255", 32, "0.0.0.0", 0, "127.0.0.1"},
      {RouteTable::Local, Local, "127.0.0.0", 8, "0.0.0.0", 0, "127.0.0.1"},
      {RouteTable::Main, Unicast, "10.9.2.0", 31, "0.0.0.0", 1, "10.9.2.1"},
      {RouteTable::Main, Unicast, "10.9.1.0", 30, "0.0.0.0", 1, "10.9.1.1"},
      {RouteTable::Main, Unicast, "10.7.1.0", 24, "0.0.0.0", 3, "10.7.0.1"},
      {RouteTable::Main, Unicast, "10.9.0.0", 24, "0.0.0.0", 1, "10.9.0.1"},
      {RouteTable::Main, Unicast, "10.9.5.0", 24, "0.0.0.0", 1, "10.9.5.1"},
      {RouteTable::Main, Unicast, "0.1.0.0", 16, "0.0.0.0", 1, "0.1.2.3"},
  };
  std::vector<Route> expected;
  for (const RouteRow& r : rows) {
    Route route = make_route(r);
    route.kernel = true;
    expected.push_back(route);
  }
  EXPECT_EQ(std::vector<Route>(h.routes().begin(), h.routes().end()), expected);
  EXPECT_TRUE(h.is_local_address(ip("10.8.0.1")));  // down, but still the host's
  EXPECT_TRUE(h.is_local_address(ip("10.9.0.2")));
  EXPECT_FALSE(h.is_local_address(ip("10.9.0.255")));
}

// ---------------------------------------------------------------------------
// Input routing decisions (what the kernel did with injected frames)

struct InputCase {
  const char* dst;
  const char* src;
  uint16_t in;
  RouteVerdict verdict;
  AddrType type;
  uint16_t out;
  const char* next_hop;
};

void check_inputs(const HostModel& h, const std::vector<InputCase>& cases) {
  for (const InputCase& c : cases) {
    SCOPED_TRACE(std::string(c.src) + " -> " + c.dst + " in " + std::to_string(c.in));
    const RouteDecision d = h.route_input(ip(c.dst), ip(c.src), c.in);
    EXPECT_EQ(route_verdict_name(d.verdict), std::string(route_verdict_name(c.verdict)));
    EXPECT_EQ(addr_type_name(d.type), std::string(addr_type_name(c.type)));
    EXPECT_EQ(d.out_iface, c.out);
    EXPECT_EQ(d.next_hop, ip(c.next_hop));
    EXPECT_EQ(d.to_input(), c.verdict == RouteVerdict::Input);
    EXPECT_EQ(d.to_forward(), c.verdict == RouteVerdict::Forward);
  }
}

TEST(HostInputTest, DefaultHostDecisions) {
  const HostModel h = default_docker_host();
  using enum RouteVerdict;
  using T = AddrType;
  const char* peer = "198.51.100.254";
  check_inputs(h, {
      {"198.51.100.1", peer, kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"172.17.0.1", peer, kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"172.18.0.1", peer, kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"198.51.100.255", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"172.17.255.255", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"255.255.255.255", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"224.0.0.1", peer, kEth0, Input, T::Multicast, kNoIface, "0.0.0.0"},
      {"239.1.2.3", peer, kEth0, NotJoined, T::Multicast, kNoIface, "0.0.0.0"},
      {"224.0.0.106", peer, kEth0, NotJoined, T::Multicast, kNoIface, "0.0.0.0"},
      {"224.0.0.106", "172.17.0.2", kDocker0, Input, T::Multicast, kNoIface, "0.0.0.0"},
      {"0.0.0.0", peer, kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"127.0.0.1", peer, kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"127.0.0.5", peer, kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"127.255.255.255", peer, kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"198.51.100.0", peer, kEth0, Forward, T::Unicast, kEth0, "198.51.100.0"},
      {"172.17.0.0", peer, kEth0, Forward, T::Unicast, kDocker0, "172.17.0.0"},
      {"0.1.2.3", peer, kEth0, Forward, T::Unicast, kEth0, peer},
      {"8.8.8.8", peer, kEth0, Forward, T::Unicast, kEth0, peer},
      {"198.51.100.77", peer, kEth0, Forward, T::Unicast, kEth0, "198.51.100.77"},
      {"172.17.0.2", peer, kEth0, Forward, T::Unicast, kDocker0, "172.17.0.2"},
      {"172.18.5.5", peer, kEth0, Forward, T::Unicast, kBr, "172.18.5.5"},
      // Container traffic leaving through the host.
      {"8.8.8.8", "172.17.0.2", kDocker0, Forward, T::Unicast, kEth0, peer},
      {"172.18.0.3", "172.17.0.2", kDocker0, Forward, T::Unicast, kBr, "172.18.0.3"},
      {"172.17.0.1", "172.17.0.2", kDocker0, Input, T::Local, kNoIface, "0.0.0.0"},
      // Sources.
      {"8.8.8.8", "198.51.100.1", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "172.17.0.1", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "0.0.0.0", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "224.0.0.5", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "255.255.255.255", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "127.0.0.1", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "127.5.5.5", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"172.17.0.2", "0.1.2.3", kEth0, Forward, T::Unicast, kDocker0, "172.17.0.2"},
      // A broadcast source passes the quick check (local delivery, or out
      // another interface) but not the full one (back out eth0).
      {"198.51.100.1", "198.51.100.255", kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "172.17.255.255", kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"172.17.0.2", "198.51.100.255", kEth0, Forward, T::Unicast, kDocker0, "172.17.0.2"},
      {"172.17.0.2", "172.17.255.255", kEth0, Forward, T::Unicast, kDocker0, "172.17.0.2"},
      {"8.8.8.8", "198.51.100.255", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "172.17.255.255", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
      {"198.51.100.77", "172.17.255.255", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
      // Zero addresses.
      {"255.255.255.255", "0.0.0.0", kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"0.0.0.0", "0.0.0.0", kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "0.0.0.0", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"198.51.100.255", "0.0.0.0", kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"224.0.0.1", "0.0.0.0", kEth0, Input, T::Multicast, kNoIface, "0.0.0.0"},
      {"224.0.0.5", "0.0.0.0", kEth0, NotJoined, T::Multicast, kNoIface, "0.0.0.0"},
      // Multicast sources are validated too.
      {"224.0.0.1", "198.51.100.1", kEth0, Martian, T::Multicast, kNoIface, "0.0.0.0"},
      {"224.0.0.1", "198.51.100.255", kEth0, Input, T::Multicast, kNoIface, "0.0.0.0"},
      // An input lookup on lo (`ip route get ... iif lo`; real looped-back
      // packets keep their output route): own sources are martian.
      {"127.0.0.1", "127.0.0.1", kLo, Martian, T::Local, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "8.8.8.8", kLo, Input, T::Local, kNoIface, "0.0.0.0"},
      {"8.8.8.8", "198.51.100.1", kLo, Martian, T::Unicast, kNoIface, "0.0.0.0"},
  });
}

TEST(HostInputTest, ErrorRoutesAndCustomLocalRoutes) {
  const HostModel h = host_with_extra_routes(true);
  using enum RouteVerdict;
  using T = AddrType;
  const char* peer = "198.51.100.254";
  check_inputs(h, {
      {"10.0.0.1", peer, kEth0, Blackhole, T::Blackhole, kNoIface, "0.0.0.0"},
      {"10.1.0.1", peer, kEth0, Unreachable, T::Unreachable, kNoIface, "0.0.0.0"},
      {"10.2.0.1", peer, kEth0, Prohibit, T::Prohibit, kNoIface, "0.0.0.0"},
      {"10.3.0.1", peer, kEth0, NoRoute, T::Unspec, kNoIface, "0.0.0.0"},
      {"10.4.0.1", peer, kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"10.5.0.7", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"10.6.0.1", peer, kEth0, Forward, T::Unicast, kEth0, "198.51.100.9"},
      {"127.1.2.3", peer, kEth0, Martian, T::Unspec, kNoIface, "0.0.0.0"},
      {"198.51.100.255", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      // Sources with error routes are accepted, a custom local one is not.
      {"198.51.100.1", "10.0.0.1", kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "10.1.0.1", kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"198.51.100.1", "10.4.0.1", kEth0, Martian, T::Local, kNoIface, "0.0.0.0"},
      // With a custom local route every check is the full one: a broadcast
      // source is now martian for local delivery too.
      {"198.51.100.1", "198.51.100.255", kEth0, Martian, T::Local, kNoIface, "0.0.0.0"},
      {"172.17.0.2", "198.51.100.255", kEth0, Martian, T::Unicast, kNoIface, "0.0.0.0"},
  });
  const HostModel quick = host_with_extra_routes(false);
  EXPECT_FALSE(quick.has_custom_local_routes());
  check_inputs(quick, {
      {"198.51.100.1", "198.51.100.255", kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
  });
}

TEST(HostInputTest, WithoutForwardingOnlyLocalTrafficIsRouted) {
  HostSpec spec = default_docker_host_spec();
  spec.ip_forward = false;
  Route bh;
  bh.type = AddrType::Blackhole;
  bh.dst = ip("10.0.0.0");
  bh.prefix_len = 8;
  spec.routes.push_back(bh);
  const HostModel h = HostModel::build(spec, "test");
  using enum RouteVerdict;
  using T = AddrType;
  const char* peer = "198.51.100.254";
  check_inputs(h, {
      {"198.51.100.1", peer, kEth0, Input, T::Local, kNoIface, "0.0.0.0"},
      {"172.17.255.255", peer, kEth0, Input, T::Broadcast, kNoIface, "0.0.0.0"},
      {"8.8.8.8", peer, kEth0, Unreachable, T::Unicast, kNoIface, "0.0.0.0"},
      {"10.0.0.1", peer, kEth0, Unreachable, T::Blackhole, kNoIface, "0.0.0.0"},
  });
}

TEST(HostInputTest, RouteLocalnetAcceptsLoopbackAddressesFromTheWire) {
  HostSpec spec = default_docker_host_spec();
  spec.interfaces[kDocker0].route_localnet = true;
  const HostModel h = HostModel::build(spec, "test");
  EXPECT_EQ(h.route_input(ip("127.0.0.1"), ip("172.17.0.2"), kDocker0).verdict, RouteVerdict::Input);
  EXPECT_EQ(h.route_input(ip("127.0.0.1"), ip("198.51.100.254"), kEth0).verdict, RouteVerdict::Martian);
}

// ---------------------------------------------------------------------------
// addrtype

struct TypeCase {
  const char* addr;
  AddrType unlimited;
  AddrType on_eth0;  // --limit-iface-in with the packet arriving on eth0
};

TEST(HostAddrTypeTest, DefaultHostMatchesTheKernel) {
  const HostModel h = default_docker_host();
  using enum AddrType;
  const std::vector<TypeCase> cases = {
      {"198.51.100.1", Local, Local},
      {"172.17.0.1", Local, Unicast},
      {"172.18.0.1", Local, Unicast},
      {"127.0.0.1", Local, Unicast},
      {"127.0.0.5", Local, Unicast},
      {"127.0.0.0", Local, Unicast},
      {"127.255.255.255", Broadcast, Unicast},
      {"198.51.100.255", Broadcast, Broadcast},
      {"172.17.255.255", Broadcast, Unicast},
      {"198.51.100.0", Unicast, Unicast},
      {"172.17.0.0", Unicast, Unicast},
      {"255.255.255.255", Broadcast, Broadcast},
      {"224.0.0.1", Multicast, Multicast},
      {"239.1.2.3", Multicast, Multicast},
      {"0.0.0.0", Broadcast, Broadcast},
      {"0.1.2.3", Unicast, Unicast},
      {"8.8.8.8", Unicast, Unicast},
      {"198.51.100.77", Unicast, Unicast},
      {"198.51.100.254", Unicast, Unicast},
      {"172.17.0.2", Unicast, Unicast},
      {"172.18.5.5", Unicast, Unicast},
  };
  for (const TypeCase& c : cases) {
    SCOPED_TRACE(c.addr);
    EXPECT_EQ(addr_type_name(h.addr_type(ip(c.addr))), std::string(addr_type_name(c.unlimited)));
    EXPECT_EQ(addr_type_name(h.addr_type(ip(c.addr), kEth0)), std::string(addr_type_name(c.on_eth0)));
  }
  // Limited to the address's own interface, the type survives.
  EXPECT_EQ(h.addr_type(ip("172.17.0.1"), kDocker0), Local);
  EXPECT_EQ(h.addr_type(ip("172.17.255.255"), kDocker0), Broadcast);
  EXPECT_EQ(h.addr_type(ip("127.0.0.5"), kLo), Local);
  EXPECT_EQ(h.addr_type(ip("198.51.100.1"), kDocker0), Unicast);
  EXPECT_EQ(h.addr_type(ip("198.51.100.1"), kNoIface), Unicast);
}

TEST(HostAddrTypeTest, ErrorRoutesAreUnicastAndMainTableLocalRoutesCount) {
  const HostModel h = host_with_extra_routes(true);
  using enum AddrType;
  const std::vector<TypeCase> cases = {
      {"10.0.0.1", Unicast, Unicast},    // blackhole
      {"10.1.0.1", Unicast, Unicast},    // unreachable
      {"10.2.0.1", Unicast, Unicast},    // prohibit
      {"10.3.0.1", Unicast, Unicast},    // throw
      {"10.4.0.1", Local, Unicast},      // local route in main, dev lo
      {"10.5.0.7", Broadcast, Broadcast},
      {"10.6.0.1", Unicast, Unicast},
      {"127.1.2.3", Unicast, Unicast},   // the main /24 beats local 127.0.0.0/8
      {"198.51.100.255", Broadcast, Broadcast},
      {"172.17.0.1", Local, Unicast},    // only the winning entry's device counts
  };
  for (const TypeCase& c : cases) {
    SCOPED_TRACE(c.addr);
    EXPECT_EQ(addr_type_name(h.addr_type(ip(c.addr))), std::string(addr_type_name(c.unlimited)));
    EXPECT_EQ(addr_type_name(h.addr_type(ip(c.addr), kEth0)), std::string(addr_type_name(c.on_eth0)));
  }
  EXPECT_EQ(h.addr_type(ip("10.4.0.1"), kLo), Local);
}

TEST(HostAddrTypeTest, TableDefaultIsNotConsulted) {
  HostSpec spec = default_docker_host_spec();
  Route local_in_default;
  local_in_default.table = RouteTable::Default;
  local_in_default.type = AddrType::Local;
  local_in_default.dst = ip("10.10.0.0");
  local_in_default.prefix_len = 16;
  local_in_default.iface = kLo;
  spec.routes.push_back(local_in_default);
  spec.routes.erase(spec.routes.begin());  // no default route either
  const HostModel h = HostModel::build(spec, "test");
  EXPECT_EQ(h.route(ip("10.10.1.1")).type, AddrType::Local);
  EXPECT_EQ(h.addr_type(ip("10.10.1.1")), AddrType::Unicast);
}

// ---------------------------------------------------------------------------
// MASQUERADE source

TEST(HostMasqueradeTest, DefaultHost) {
  const HostModel h = default_docker_host();
  EXPECT_EQ(h.primary_address(kEth0), ip("198.51.100.1"));
  EXPECT_EQ(h.primary_address(kDocker0), ip("172.17.0.1"));
  EXPECT_EQ(h.primary_address(kLo), std::nullopt);  // 127.0.0.1 is host scope
  EXPECT_EQ(h.masquerade_source(kEth0, ip("198.51.100.254")), ip("198.51.100.1"));
  EXPECT_EQ(h.masquerade_source(kDocker0, ip("172.17.0.2")), ip("172.17.0.1"));
  EXPECT_EQ(h.masquerade_source(kBr, ip("172.18.0.2")), ip("172.18.0.1"));
  EXPECT_EQ(h.masquerade_source(kNoIface, ip("1.2.3.4")), ip("198.51.100.1"));
}

TEST(HostMasqueradeTest, PicksTheNextHopsSubnetThenTheFirstPrimary) {
  // eth0 as `ip addr` listed it in the experiment: a link-scope address
  // first, then two primaries, then a secondary; ext1 has no address.
  HostSpec spec = default_docker_host_spec();
  Interface& eth0 = spec.interfaces[kEth0];
  eth0.addrs = {
      IfaceAddress{ip("192.0.2.9"), 0, 24, addr_scope::kLink, 0, false, false},
      IfaceAddress{ip("198.51.100.1"), 0, 24, addr_scope::kGlobal, 0, false, false},
      IfaceAddress{ip("203.0.113.5"), 0, 24, addr_scope::kGlobal, 0, false, false},
      IfaceAddress{ip("203.0.113.6"), 0, 24, addr_scope::kGlobal, 0, true, false},
  };
  Interface ext1;
  ext1.name = "ext1";
  spec.interfaces.push_back(ext1);
  const HostModel h = HostModel::build(spec, "test");
  const uint16_t kExt1 = 4;
  // What conntrack showed as the reply destination after MASQUERADE.
  EXPECT_EQ(h.masquerade_source(kEth0, ip("198.51.100.254")), ip("198.51.100.1"));  // 8.8.8.8 via gw
  EXPECT_EQ(h.masquerade_source(kEth0, ip("8.8.4.4")), ip("198.51.100.1"));         // on-link, no subnet
  EXPECT_EQ(h.masquerade_source(kEth0, ip("203.0.113.254")), ip("203.0.113.5"));    // 7.7.7.7 via gw
  EXPECT_EQ(h.masquerade_source(kEth0, ip("192.0.2.254")), ip("198.51.100.1"));     // link scope skipped
  EXPECT_EQ(h.masquerade_source(kEth0, ip("203.0.113.77")), ip("203.0.113.5"));     // never the secondary
  EXPECT_EQ(h.masquerade_source(kExt1, ip("9.9.9.9")), ip("198.51.100.1"));         // borrowed
  EXPECT_EQ(h.primary_address(kExt1), std::nullopt);
}

TEST(HostMasqueradeTest, NoGlobalAddressAnywhereGivesNothing) {
  HostSpec spec;
  Interface lo;
  lo.name = "lo";
  lo.loopback = true;
  lo.addrs = {IfaceAddress{ip("127.0.0.1"), 0, 8, addr_scope::kHost, 0, false, false}};
  spec.interfaces.push_back(lo);
  Interface e;
  e.name = "eth0";
  spec.interfaces.push_back(e);
  const HostModel h = HostModel::build(spec, "test");
  EXPECT_EQ(h.masquerade_source(1, ip("8.8.8.8")), std::nullopt);
}

// ---------------------------------------------------------------------------
// Loading `ip -j` output captured from the namespace

void expect_same_answers(const HostModel& a, const HostModel& b) {
  const std::vector<const char*> addrs = {
      "198.51.100.1", "198.51.100.77", "198.51.100.0", "198.51.100.255", "198.51.100.254", "8.8.8.8",
      "172.17.0.1", "172.17.0.2", "172.17.255.255", "172.18.0.1", "172.18.5.5", "172.18.255.255",
      "127.0.0.1", "127.0.0.5", "127.255.255.255", "0.0.0.0", "0.1.2.3", "255.255.255.255",
      "224.0.0.1", "224.0.0.106", "239.1.2.3",
  };
  for (const char* d : addrs) {
    SCOPED_TRACE(d);
    EXPECT_EQ(a.route(ip(d)), b.route(ip(d)));
    for (uint16_t in = 0; in < 4; ++in) {
      EXPECT_EQ(a.addr_type(ip(d), in), b.addr_type(ip(d), in));
      for (const char* s : {"198.51.100.254", "172.17.0.2", "0.0.0.0", "198.51.100.255"}) {
        const RouteDecision x = a.route_input(ip(d), ip(s), in);
        const RouteDecision y = b.route_input(ip(d), ip(s), in);
        EXPECT_EQ(x.verdict, y.verdict) << s << " in " << in;
        EXPECT_EQ(x.out_iface, y.out_iface) << s << " in " << in;
        EXPECT_EQ(x.next_hop, y.next_hop) << s << " in " << in;
      }
    }
    EXPECT_EQ(a.addr_type(ip(d)), b.addr_type(ip(d)));
    EXPECT_EQ(a.masquerade_source(kEth0, ip(d)), b.masquerade_source(kEth0, ip(d)));
  }
}

TEST(HostLoadTest, CapturedDetailJsonGivesTheDefaultHost) {
  const HostModel loaded =
      load_host(data_path("docker_host_addrs_detail.json"), data_path("docker_host_routes.json"));
  const HostModel builtin = default_docker_host();
  ASSERT_EQ(loaded.iface_count(), builtin.iface_count());
  for (uint16_t id = 0; id < loaded.iface_count(); ++id) {
    SCOPED_TRACE(builtin.iface(id).name);
    EXPECT_EQ(loaded.iface(id), builtin.iface(id));
  }
  // The main table of `ip -j route` carries proto kernel on connected
  // routes; everything else is identical.
  EXPECT_EQ(std::vector<Route>(loaded.routes().begin(), loaded.routes().end()),
            std::vector<Route>(builtin.routes().begin(), builtin.routes().end()));
  expect_same_answers(loaded, builtin);
}

TEST(HostLoadTest, TableAllJsonGivesTheSameLocalTable) {
  const HostModel loaded =
      load_host(data_path("docker_host_addrs_detail.json"), data_path("docker_host_routes_all.json"));
  const HostModel builtin = default_docker_host();
  EXPECT_EQ(std::vector<Route>(loaded.routes().begin(), loaded.routes().end()),
            std::vector<Route>(builtin.routes().begin(), builtin.routes().end()));
  expect_same_answers(loaded, builtin);
}

TEST(HostLoadTest, PlainAddrJsonDoesNotKnowBridges) {
  const HostModel loaded = load_host(data_path("docker_host_addrs.json"), data_path("docker_host_routes.json"));
  const HostModel builtin = default_docker_host();
  ASSERT_EQ(loaded.iface_count(), 4U);
  EXPECT_FALSE(loaded.iface(kDocker0).bridge_mcast_snooping);
  EXPECT_FALSE(loaded.joined_group(kDocker0, ip("224.0.0.106")));
  EXPECT_TRUE(builtin.joined_group(kDocker0, ip("224.0.0.106")));
  EXPECT_TRUE(loaded.joined_group(kDocker0, ip("224.0.0.1")));
  EXPECT_EQ(std::vector<Route>(loaded.routes().begin(), loaded.routes().end()),
            std::vector<Route>(builtin.routes().begin(), builtin.routes().end()));
}

TEST(BridgeStationsTest, LearnsMacsAndAddressesPerBridgeMovesAndStopsWhenFull) {
  BridgeStations st(8);
  const std::array<uint8_t, 6> a{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
  const uint64_t mac = BridgeStations::mac48(a.data());
  EXPECT_EQ(mac, 0x020011ac4202ULL);  // wire order, first byte lowest
  EXPECT_EQ(st.port_of_mac(2, mac), BridgeStations::kUnknown);
  st.learn(2, mac, ip("172.17.0.2"), 4);
  EXPECT_EQ(st.port_of_mac(2, mac), 4U);
  EXPECT_EQ(st.port_of_ip(2, ip("172.17.0.2")), 4U);
  EXPECT_EQ(st.port_of_mac(3, mac), BridgeStations::kUnknown);  // another bridge
  EXPECT_EQ(st.port_of_ip(2, ip("172.17.0.3")), BridgeStations::kUnknown);
  st.learn(2, mac, ip("172.17.0.2"), 5);  // the station moved
  EXPECT_EQ(st.port_of_mac(2, mac), 5U);
  EXPECT_EQ(st.port_of_ip(2, ip("172.17.0.2")), 5U);
  st.learn(2, mac + 1, ip("172.17.0.9"), kNoIface);  // seen on the bridge itself
  EXPECT_EQ(st.port_of_mac(2, mac + 1), kNoIface);
  EXPECT_EQ(st.size(), 4U);
  for (uint64_t m = 100; m < 120; ++m) st.learn(2, m, static_cast<uint32_t>(m), 4);
  EXPECT_GT(st.full(), 0U);
  EXPECT_LE(st.size(), 8U);  // half of 16 slots
  EXPECT_EQ(st.port_of_mac(2, mac), 5U);  // what was learned stays
  BridgeStations none;
  none.learn(2, mac, 1, 4);
  EXPECT_EQ(none.port_of_mac(2, mac), BridgeStations::kUnknown);
}

TEST(HostLoadTest, MastersMakeBridgePortsUnlessIpDetailSaysAnotherKind) {
  // Plain `ip -j addr`: a port names its bridge as "master"; `ip -d` adds
  // the kinds (a bond's slaves stay plain interfaces).
  const std::string addrs = R"([
    {"ifindex": 1, "ifname": "cni0", "flags": ["UP"], "link_type": "ether", "address": "02:00:00:00:00:10",
     "addr_info": [{"family": "inet", "local": "10.244.0.1", "prefixlen": 24}]},
    {"ifindex": 2, "ifname": "veth1", "flags": ["UP"], "master": "cni0", "link_type": "ether",
     "address": "02:00:00:00:00:11", "addr_info": []},
    {"ifindex": 3, "ifname": "bond0", "flags": ["UP"], "link_type": "ether", "address": "02:00:00:00:00:12",
     "linkinfo": {"info_kind": "bond"}, "addr_info": []},
    {"ifindex": 4, "ifname": "ens1", "flags": ["UP"], "master": "bond0", "link_type": "ether",
     "address": "02:00:00:00:00:13", "linkinfo": {"info_kind": "device", "info_slave_kind": "bond"}, "addr_info": []},
    {"ifindex": 5, "ifname": "veth2", "flags": ["UP"], "master": "cni0", "link_type": "ether",
     "address": "02:00:00:00:00:14", "addr_info": []},
    {"ifindex": 6, "ifname": "br1", "flags": ["UP"], "link_type": "ether", "address": "02:00:00:00:00:15",
     "addr_info": []},
    {"ifindex": 7, "ifname": "bond1", "flags": ["UP"], "master": "br1", "link_type": "ether",
     "address": "02:00:00:00:00:16", "addr_info": []},
    {"ifindex": 8, "ifname": "ens2", "flags": ["UP"], "master": "bond1", "link_type": "ether",
     "address": "02:00:00:00:00:17", "addr_info": []}
  ])";
  const HostModel h = parse_host(addrs, "[]", "a.json", "r.json");
  EXPECT_TRUE(h.is_bridge(0));
  EXPECT_TRUE(h.iface(0).bridge_mcast_snooping);  // the kernel's default
  EXPECT_EQ(h.master_of(1), 0);
  EXPECT_EQ(h.master_of(4), 0);
  EXPECT_FALSE(h.is_bridge(2));
  EXPECT_EQ(h.master_of(3), kNoIface);
  EXPECT_EQ(std::vector<uint16_t>(h.ports_of(0).begin(), h.ports_of(0).end()), (std::vector<uint16_t>{1, 4}));
  // Plain `ip -j addr`: a bond enslaved to a bridge is that bridge's port,
  // and its own slaves stay plain interfaces (a bridge cannot be a port).
  EXPECT_TRUE(h.is_bridge(5));
  EXPECT_EQ(h.master_of(6), 5);
  EXPECT_FALSE(h.is_bridge(6));
  EXPECT_EQ(h.master_of(7), kNoIface);
  try {
    (void)parse_host(R"([{"ifname": "veth1", "master": "cni0"}])", "[]", "a.json", "r.json");
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("a.json: [0].master"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown interface \"cni0\""), std::string::npos) << e.what();
  }
  try {
    (void)parse_host(R"([{"ifname": "br0", "master": "br0"}])", "[]", "a.json", "r.json");
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("its own master"), std::string::npos) << e.what();
  }
}

TEST(HostLoadTest, IpDetailGivesHairpinModeAndTheBridgesOwnNfCallIptables) {
  const std::string addrs = R"([
    {"ifindex": 1, "ifname": "cni0", "flags": ["UP"], "link_type": "ether", "address": "02:00:00:00:00:10",
     "linkinfo": {"info_kind": "bridge", "info_data": {"mcast_snooping": 0, "nf_call_iptables": 1}},
     "addr_info": []},
    {"ifindex": 2, "ifname": "veth1", "flags": ["UP"], "master": "cni0", "link_type": "ether",
     "address": "02:00:00:00:00:11", "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge",
     "info_slave_data": {"state": "forwarding", "hairpin": true}}, "addr_info": []},
    {"ifindex": 3, "ifname": "veth2", "flags": ["UP"], "master": "cni0", "link_type": "ether",
     "address": "02:00:00:00:00:12", "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge",
     "info_slave_data": {"hairpin": false}}, "addr_info": []},
    {"ifindex": 4, "ifname": "veth3", "flags": ["UP"], "master": "cni0", "link_type": "ether",
     "address": "02:00:00:00:00:13", "addr_info": []}
  ])";
  const HostModel h = parse_host(addrs, "[]", "a.json", "r.json");
  EXPECT_TRUE(h.iface(0).bridge_nf_call_iptables);
  EXPECT_FALSE(h.iface(0).bridge_mcast_snooping);
  EXPECT_EQ(h.iface(1).hairpin, std::optional<bool>(true));
  EXPECT_EQ(h.iface(2).hairpin, std::optional<bool>(false));
  EXPECT_EQ(h.iface(3).hairpin, std::nullopt);  // plain `ip -j`: not said
  try {
    (void)parse_host(R"([{"ifname": "br0", "linkinfo": {"info_kind": "bridge"}},
      {"ifname": "v", "master": "br0", "linkinfo": {"info_slave_kind": "bridge",
       "info_slave_data": {"hairpin": "on"}}}])",
                     "[]", "a.json", "r.json");
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("a.json: [1].linkinfo.info_slave_data.hairpin"), std::string::npos)
        << e.what();
  }
}

TEST(HostFolderTest, BridgeNetfilterIsOffWhenTheSysctlsHaveNoBridgeSettings) {
  const std::string dir = ::testing::TempDir() + "/host-folder-test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  const auto bnf = [&] {
    CtConfig ct;
    std::vector<std::string> warnings;
    return HostFolder::open(dir).host_spec(ct, warnings).bridge_nf_call_iptables;
  };
  write("iptables.save", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
  EXPECT_TRUE(bnf());  // no sysctl.txt: the default
  write("sysctl.txt", "net.ipv4.ip_forward = 1\n");
  EXPECT_FALSE(bnf());  // br_netfilter not loaded
  write("iptables.save", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m physdev --physdev-is-in\nCOMMIT\n");
  EXPECT_TRUE(bnf());  // xt_physdev loads it
  write("sysctl.txt", "net.bridge.bridge-nf-call-iptables = 0\n");
  EXPECT_FALSE(bnf());
  write("sysctl.txt", "net.bridge.bridge-nf-call-iptables = 1\n");
  EXPECT_TRUE(bnf());
  std::filesystem::remove_all(dir);
}

TEST(HostLoadTest, SkipsIpv6OtherTablesAndDeadRoutes) {
  const std::string addrs = R"([{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"link_type":"loopback",
      "address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"},
      {"family":"inet6","local":"::1","prefixlen":128}]},
     {"ifindex":7,"ifname":"wg0","flags":["POINTOPOINT","NOARP","UP"],"link_type":"none",
      "addr_info":[{"family":"inet","local":"10.66.0.1","prefixlen":24,"scope":"global"}]},
     {"ifindex":9,"ifname":"tun0","flags":["POINTOPOINT"],"link_type":"none"}])";
  const std::string routes = R"([
      {"dst":"10.66.0.0/24","dev":"wg0","protocol":"kernel","scope":"link","prefsrc":"10.66.0.1","flags":[]},
      {"dst":"10.67.0.0/16","dev":"wg0","table":"100","flags":[]},
      {"dst":"10.68.0.0/16","dev":"wg0","flags":["dead","linkdown"]},
      {"dst":"default","gateway":"fe80::1","dev":"wg0","metric":1024,"flags":[],"pref":"medium"},
      {"dst":"fe80::/64","dev":"wg0","metric":256,"flags":[],"pref":"medium"},
      {"type":"unreachable","dst":"10.99.0.0/16","flags":[]},
      {"dst":"10.69.0.0/16","dev":"wg0","table":"default","metric":5,"flags":[]}])";
  const HostModel h = parse_host(addrs, routes, "addrs.json", "routes.json");
  ASSERT_EQ(h.iface_count(), 3U);
  EXPECT_EQ(h.iface(1).kernel_ifindex, 7U);
  EXPECT_FALSE(h.iface(1).has_mac);
  EXPECT_FALSE(h.iface(2).up);
  EXPECT_TRUE(h.iface(2).addrs.empty());
  EXPECT_EQ(h.iface_id("tun0"), 2);
  EXPECT_EQ(h.route(ip("10.66.0.9")).iface, 1);
  EXPECT_FALSE(h.route(ip("10.67.0.9")).found());
  EXPECT_FALSE(h.route(ip("10.68.0.9")).found());
  EXPECT_EQ(h.route(ip("10.99.0.9")).type, AddrType::Unreachable);
  EXPECT_EQ(h.route(ip("10.69.0.9")).table, RouteTable::Default);
  EXPECT_EQ(h.route(ip("10.69.0.9")).metric, 5U);
  EXPECT_EQ(h.route(ip("10.66.0.1")).type, AddrType::Local);
  EXPECT_EQ(h.route(ip("10.66.0.255")).type, AddrType::Broadcast);
}

TEST(HostLoadTest, ReadsScopesPeersSecondariesAndBroadcasts) {
  const std::string addrs = R"([{"ifname":"eth1","flags":["UP"],"link_type":"ether","address":"0a:1b:2c:3d:4e:5f",
      "linkinfo":{"info_kind":"bridge","info_data":{"mcast_snooping":0}},
      "addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24,"broadcast":"10.0.0.255","scope":"global"},
      {"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global","secondary":true},
      {"family":"inet","local":"10.1.0.1","address":"10.2.0.9","prefixlen":32,"scope":"link","noprefixroute":true},
      {"family":"inet","local":"10.3.0.1","prefixlen":16,"scope":"200"}]}])";
  const HostSpec spec = parse_host_spec(addrs, "[]", "a", "r");
  ASSERT_EQ(spec.interfaces.size(), 1U);
  const Interface& e = spec.interfaces[0];
  EXPECT_EQ(e.mac, (std::array<uint8_t, 6>{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}));
  EXPECT_TRUE(e.has_mac);
  EXPECT_FALSE(e.bridge_mcast_snooping);
  ASSERT_EQ(e.addrs.size(), 4U);
  EXPECT_EQ(e.addrs[0], (IfaceAddress{ip("10.0.0.1"), 0, 24, addr_scope::kGlobal, ip("10.0.0.255"), false, false}));
  EXPECT_EQ(e.addrs[1], (IfaceAddress{ip("10.0.0.2"), 0, 24, addr_scope::kGlobal, 0, true, false}));
  EXPECT_EQ(e.addrs[2], (IfaceAddress{ip("10.1.0.1"), ip("10.2.0.9"), 32, addr_scope::kLink, 0, false, true}));
  EXPECT_EQ(e.addrs[3], (IfaceAddress{ip("10.3.0.1"), 0, 16, addr_scope::kSite, 0, false, false}));
  EXPECT_TRUE(spec.synthesize_local_table);
  EXPECT_FALSE(spec.synthesize_connected_routes);
}

// ---------------------------------------------------------------------------
// Load errors: exact messages

std::string load_error(const std::string& addrs, const std::string& routes) {
  try {
    parse_host(addrs, routes, "addrs.json", "routes.json");
  } catch (const LoadError& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kOneIface = R"([{"ifname":"eth0","addr_info":[]}])";

TEST(HostLoadErrorTest, JsonSyntaxErrorsGiveTheByteOffset) {
  EXPECT_EQ(load_error("[1 2]", "[]"),
            "addrs.json: offset 3: invalid JSON: syntax error while parsing array - unexpected number literal; "
            "expected ']'");
  EXPECT_EQ(load_error(kOneIface, ""),
            "routes.json: offset 0: invalid JSON: syntax error while parsing value - unexpected end of input; "
            "expected '[', '{', or a literal");
  EXPECT_EQ(load_error(kOneIface, "[{\"dst\": defaul}]"),
            "routes.json: offset 9: invalid JSON: syntax error while parsing value - invalid literal; "
            "last read: '\"dst\": d'");
}

TEST(HostLoadErrorTest, AddressFileStructure) {
  EXPECT_EQ(load_error("{}", "[]"),
            "addrs.json: top level: expected a JSON array of interfaces (the output of `ip -j addr`), got {}");
  EXPECT_EQ(load_error("[3]", "[]"), "addrs.json: [0]: expected an interface object, got 3");
  EXPECT_EQ(load_error(R"([{"ifindex":1}])", "[]"),
            "addrs.json: [0]: missing key \"ifname\" (expected an interface name)");
  EXPECT_EQ(load_error(R"([{"ifname":"a"},{"ifname":"abcdefghijklmnop"}])", "[]"),
            "addrs.json: [1].ifname: expected an interface name of 1 to 15 bytes, got \"abcdefghijklmnop\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a"},{"ifname":"a"}])", "[]"),
            "addrs.json: [1].ifname: duplicate interface \"a\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a","ifindex":-1}])", "[]"),
            "addrs.json: [0].ifindex: expected an interface index, got -1");
  EXPECT_EQ(load_error(R"([{"ifname":"a","link_type":"ether","address":"02:00:00:00:00"}])", "[]"),
            "addrs.json: [0].address: expected a MAC address \"xx:xx:xx:xx:xx:xx\", got \"02:00:00:00:00\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":{}}])", "[]"),
            "addrs.json: [0].addr_info: expected an array of addresses, got {}");
  EXPECT_EQ(
      load_error(R"([{"ifname":"a"},{"ifname":"b"},{"ifname":"c","addr_info":[{"family":"inet","local":"10.0.0"}]}])",
                 "[]"),
      "addrs.json: [2].addr_info[0].local: expected an IPv4 address \"a.b.c.d\", got \"10.0.0\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.256","prefixlen":8}]}])", "[]"),
            "addrs.json: [0].addr_info[0].local: expected an IPv4 address \"a.b.c.d\", got \"10.0.0.256\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1"}]}])", "[]"),
            "addrs.json: [0].addr_info[0]: missing key \"prefixlen\" (expected a prefix length)");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":33}]}])", "[]"),
            "addrs.json: [0].addr_info[0].prefixlen: expected a prefix length 0..32, got 33");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":8,
                         "scope":"galaxy"}]}])", "[]"),
            "addrs.json: [0].addr_info[0].scope: expected a scope (global, site, link, host, nowhere or 0..255), "
            "got \"galaxy\"");
  EXPECT_EQ(load_error(R"([{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":8,
                         "secondary":"yes"}]}])", "[]"),
            "addrs.json: [0].addr_info[0].secondary: expected true or false, got \"yes\"");
}

TEST(HostLoadErrorTest, RouteFileStructure) {
  EXPECT_EQ(load_error(kOneIface, "{\"dst\":\"default\"}"),
            "routes.json: top level: expected a JSON array of routes (the output of `ip -j route`), got "
            "{\"dst\":\"default\"}");
  EXPECT_EQ(load_error(kOneIface, R"([{"dev":"eth0"}])"),
            "routes.json: [0]: missing key \"dst\" (expected a destination)");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/33","dev":"eth0"}])"),
            "routes.json: [0].dst: expected a destination (\"default\", \"a.b.c.d\" or \"a.b.c.d/len\"), got "
            "\"10.0.0.0/33\"");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/","dev":"eth0"}])"),
            "routes.json: [0].dst: expected a destination (\"default\", \"a.b.c.d\" or \"a.b.c.d/len\"), got "
            "\"10.0.0.0/\"");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.1/8","dev":"eth0"}])"),
            "routes.json: [0].dst: the prefix 10.0.0.1/8 has host bits set");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","dev":"eth1"}])"),
            "routes.json: [0].dev: unknown interface \"eth1\" (not in addrs.json)");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","gateway":"1.2.3.4"}])"),
            "routes.json: [0]: missing key \"dev\" (expected the device of a unicast route)");
  EXPECT_EQ(load_error(kOneIface, R"([{"type":"nat","dst":"10.0.0.0/8","dev":"eth0"}])"),
            "routes.json: [0].type: expected a route type (unicast, local, broadcast, anycast, multicast, "
            "blackhole, unreachable, prohibit or throw), got \"nat\"");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"default","nexthops":[{"gateway":"1.2.3.4","dev":"eth0"}]}])"),
            "routes.json: [0].nexthops: multipath routes are not supported");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","dev":"eth0","tos":"0x10"}])"),
            "routes.json: [0].tos: TOS routes are not supported");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","dev":"eth0","metric":"high"}])"),
            "routes.json: [0].metric: expected a metric, got \"high\"");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","dev":"eth0","gateway":"1.2.3"}])"),
            "routes.json: [0].gateway: expected an IPv4 address \"a.b.c.d\", got \"1.2.3\"");
  EXPECT_EQ(load_error(kOneIface, R"([{"dst":"10.0.0.0/8","dev":"eth0","table":{}}])"),
            "routes.json: [0].table: expected a table name or number, got {}");
}

TEST(HostLoadErrorTest, MissingFileNamesIt) {
  try {
    load_host(data_path("no_such_addrs.json"), data_path("docker_host_routes.json"));
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, data_path("no_such_addrs.json"));
  }
}

TEST(HostBuildErrorTest, SpecsAreValidated) {
  const auto error = [](const HostSpec& spec) -> std::string {
    try {
      HostModel::build(spec, "spec");
    } catch (const LoadError& e) {
      return e.what();
    }
    return "(no error)";
  };
  HostSpec dup = default_docker_host_spec();
  dup.interfaces[kBr].name = "docker0";
  EXPECT_EQ(error(dup), "spec: duplicate interface name \"docker0\"");
  HostSpec empty_name = default_docker_host_spec();
  empty_name.interfaces[kBr].name.clear();
  EXPECT_EQ(error(empty_name), "spec: interface 3: name \"\" is not 1 to 15 bytes long");
  HostSpec no_dev = default_docker_host_spec();
  no_dev.routes[0].iface = kNoIface;
  EXPECT_EQ(error(no_dev), "spec: route 0 (0.0.0.0/0): a unicast route needs a device");
  HostSpec bad_dev = default_docker_host_spec();
  bad_dev.routes[0].iface = 9;
  EXPECT_EQ(error(bad_dev), "spec: route 0 (0.0.0.0/0): no interface 9");
  HostSpec local = default_docker_host_spec();
  local.routes[0].table = RouteTable::Local;
  EXPECT_EQ(error(local),
            "spec: route 0 (0.0.0.0/0): a table local route, but the local table is synthesized from the addresses");
  HostSpec nat = default_docker_host_spec();
  nat.routes[0].type = AddrType::Nat;
  EXPECT_EQ(error(nat), "spec: route 0 (0.0.0.0/0): route type nat is not supported");
  HostSpec long_prefix = default_docker_host_spec();
  long_prefix.interfaces[kEth0].addrs[0].prefix_len = 33;
  EXPECT_EQ(error(long_prefix), "spec: interface eth0: address 198.51.100.1 has prefix length 33 (at most 32)");
  // A route's host bits are masked off, not an error, for hand-made specs.
  HostSpec host_bits = default_docker_host_spec();
  Route r;
  r.dst = ip("10.1.2.3");
  r.prefix_len = 8;
  r.iface = kDocker0;
  host_bits.routes.push_back(r);
  EXPECT_EQ(HostModel::build(host_bits, "spec").route(ip("10.200.0.1")).prefix, ip("10.0.0.0"));
}

TEST(HostModelTest, FormatsRoutesLikeIpRoute) {
  const HostModel h = default_docker_host();
  std::vector<std::string> lines;
  for (const Route& r : h.routes()) lines.push_back(format_route(r, h.interfaces()));
  EXPECT_EQ(lines.front(), "local 127.0.0.1 dev lo table local proto kernel src 127.0.0.1");
  EXPECT_EQ(lines[3], "broadcast 172.17.255.255 dev docker0 table local proto kernel src 172.17.0.1");
  EXPECT_EQ(lines[8], "local 127.0.0.0/8 dev lo table local proto kernel src 127.0.0.1");
  EXPECT_EQ(lines[10], "172.17.0.0/16 dev docker0 table main proto kernel src 172.17.0.1");
  EXPECT_EQ(lines.back(), "default via 198.51.100.254 dev eth0 table main");
  Route r;
  r.type = AddrType::Blackhole;
  r.dst = ip("10.0.0.0");
  r.prefix_len = 8;
  r.metric = 7;
  EXPECT_EQ(format_route(r), "blackhole 10.0.0.0/8 table main metric 7");
  r.type = AddrType::Unicast;
  r.iface = 9;
  EXPECT_EQ(format_route(r, h.interfaces()), "10.0.0.0/8 dev #9 table main metric 7");
}

TEST(HostModelTest, CopiesAnswerLikeTheOriginal) {
  const HostModel original = default_docker_host();
  HostModel copy = original;
  EXPECT_EQ(copy.iface_id("docker0"), kDocker0);
  EXPECT_EQ(copy.route(ip("8.8.8.8")), original.route(ip("8.8.8.8")));
  HostModel moved = std::move(copy);
  EXPECT_EQ(moved.iface_id("br-5c0a8c6e1d2f"), kBr);
  EXPECT_EQ(moved.addr_type(ip("172.17.0.1")), AddrType::Local);
}

}  // namespace
}  // namespace nfb

// ---------------------------------------------------------------------------
// Knobs by sysctl name (netfilter/sysctl.h)

namespace nfb {
namespace {

TEST(Sysctl, ConntrackAndHostSettingsByTheirKernelNames) {
  CtConfig ct;
  HostSpec host = default_docker_host_spec();
  const SysctlTarget t{ct, host};
  EXPECT_EQ(apply_sysctl_assignment("net.netfilter.nf_conntrack_tcp_be_liberal=1", t), "");
  EXPECT_EQ(apply_sysctl("net/netfilter/nf_conntrack_tcp_loose", "0", t), "");
  EXPECT_EQ(apply_sysctl("net.netfilter.nf_conntrack_checksum", " 0 ", t), "");
  EXPECT_EQ(apply_sysctl("net.netfilter.nf_conntrack_max", "1000", t), "");
  EXPECT_EQ(apply_sysctl("net.netfilter.nf_conntrack_tcp_timeout_established", "7200", t), "");
  EXPECT_EQ(apply_sysctl("net.netfilter.nf_conntrack_udp_timeout_stream", "180", t), "");
  EXPECT_EQ(apply_sysctl("net.netfilter.nf_conntrack_sctp_timeout_established", "3600", t), "");
  EXPECT_TRUE(ct.tcp.be_liberal);
  EXPECT_FALSE(ct.tcp.loose);
  EXPECT_FALSE(ct.checksum);
  EXPECT_EQ(ct.max_entries, 1000U);
  EXPECT_EQ(ct.tcp.timeouts.established, 7200U);
  EXPECT_EQ(ct.udp_stream_timeout, 180U);
  EXPECT_EQ(ct.sctp.established, 3600U);
  EXPECT_EQ(apply_sysctl("net.ipv4.ip_forward", "0", t), "");
  EXPECT_FALSE(host.ip_forward);
  EXPECT_EQ(apply_sysctl("net.ipv4.conf.eth0.route_localnet", "1", t), "");
  for (const Interface& i : host.interfaces) EXPECT_EQ(i.route_localnet, i.name == "eth0") << i.name;
  EXPECT_EQ(apply_sysctl("net.ipv4.conf.all.route_localnet", "1", t), "");
  for (const Interface& i : host.interfaces) EXPECT_TRUE(i.route_localnet) << i.name;
  // Known, not modelled: said so when the value differs from the model's.
  EXPECT_EQ(apply_sysctl("net.ipv4.conf.all.rp_filter", "0", t), "");
  EXPECT_NE(apply_sysctl("net.ipv4.conf.all.rp_filter", "1", t).find("not modelled"), std::string::npos);
  EXPECT_TRUE(host.bridge_nf_call_iptables);  // the kernel's default with br_netfilter loaded
  EXPECT_EQ(apply_sysctl("net.bridge.bridge-nf-call-iptables", "0", t), "");
  EXPECT_FALSE(host.bridge_nf_call_iptables);
  EXPECT_EQ(apply_sysctl("net/bridge/bridge-nf-call-iptables", "1", t), "");
  EXPECT_TRUE(host.bridge_nf_call_iptables);
  EXPECT_EQ(apply_sysctl("net.bridge.bridge-nf-call-ip6tables", "1", t), "");
  EXPECT_NE(apply_sysctl("net.bridge.bridge-nf-filter-vlan-tagged", "1", t).find("not modelled"), std::string::npos);
  EXPECT_THROW(apply_sysctl("net.bridge.bridge-nf-call-iptables", "2", t), std::invalid_argument);
  EXPECT_NE(apply_sysctl("net.netfilter.nf_conntrack_frobnicate", "1", t).find("ignored"), std::string::npos);
  EXPECT_NE(apply_sysctl("kernel.hostname", "x", t).find("unknown"), std::string::npos);
  EXPECT_THROW(apply_sysctl("net.netfilter.nf_conntrack_max", "0", t), std::invalid_argument);
  EXPECT_THROW(apply_sysctl("net.netfilter.nf_conntrack_checksum", "2", t), std::invalid_argument);
  EXPECT_THROW(apply_sysctl("net.netfilter.nf_conntrack_udp_timeout", "x", t), std::invalid_argument);
  EXPECT_THROW(apply_sysctl("net.ipv4.conf.nosuch0.route_localnet", "1", t), std::invalid_argument);
  EXPECT_THROW(apply_sysctl_assignment("net.ipv4.ip_forward", t), std::invalid_argument);
}

TEST(Sysctl, ASysctlDumpIsReadLineByLine) {
  CtConfig ct;
  HostSpec host = default_docker_host_spec();
  const SysctlTarget t{ct, host};
  const std::string dump =
      "kernel.ostype = Linux\n"
      "net.core.somaxconn = 4096\n"
      "net.ipv4.conf.all.accept_source_route = 0\n"
      "net.ipv4.conf.eth0.mtu_expires = 600\n"
      "net.ipv4.tcp_syncookies = 1\n"
      "net.netfilter.nf_conntrack_tcp_be_liberal = 1\n"
      "net.netfilter.nf_conntrack_count = 12\n"
      "net.ipv4.conf.all.rp_filter = 2\n"
      "\n";
  const std::vector<std::string> w = apply_sysctls_text(dump, "host.sysctl", t);
  EXPECT_TRUE(ct.tcp.be_liberal);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0].rfind("host.sysctl:8: net.ipv4.conf.all.rp_filter=2: not modelled", 0), 0U) << w[0];
  try {
    apply_sysctls_text("net.netfilter.nf_conntrack_max = 1\nnet.netfilter.nf_conntrack_max = many\n", "h", t);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("h:2: net.netfilter.nf_conntrack_max: bad value \"many\"", 0), 0U) << e.what();
  }
  EXPECT_THROW(apply_sysctls_text("net.ipv4.ip_forward 1\n", "h", t), std::invalid_argument);
}

}  // namespace
}  // namespace nfb
