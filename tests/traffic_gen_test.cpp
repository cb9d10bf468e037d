// The traffic generator (pcap/traffic_gen.h): its capture replays through the
// Docker ruleset it was made for with every packet forwarded (handshakes and
// sequence numbers conntrack accepts, replies that find their NAT binding),
// with the share of new connections asked for, from both sides, the same
// bytes for the same seed, and clear errors for what it cannot do.
#include "pcap/traffic_gen.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "netfilter/pipeline.h"
#include "pcap/capture_reader.h"
#include "pcap/replay.h"
#include "rules/iptables_save.h"

namespace nfb {
namespace {

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

Ruleset docker28() { return load_iptables_save_file(source_root() + "/data/rulesets/docker-28.save"); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(TrafficGen, PublishedPortsComeFromTheDnatRules) {
  const std::vector<PublishedPort> ports = published_ports(docker28(), default_docker_host());
  // docker-28.save publishes 10000->172.17.0.2:6379 (tcp), 5353->172.18.0.2:53
  // (udp) and 8080 on 127.0.0.1 only (left out).
  ASSERT_EQ(ports.size(), 2U);
  EXPECT_EQ(ports[0].host_port, 10000);
  EXPECT_EQ(ports[0].container_port, 6379);
  EXPECT_EQ(ports[0].container, 0xac110002U);
  EXPECT_EQ(default_docker_host().iface(ports[0].bridge).name, "docker0");
  EXPECT_EQ(ports[1].proto, 17);
  EXPECT_EQ(default_docker_host().iface(ports[1].bridge).name, "br-5c0a8c6e1d2f");
}

TEST(TrafficGen, EveryPacketIsForwardedWithTheAskedShareOfNewConnections) {
  const HostModel host = default_docker_host();
  for (const double share : {0.001, 0.01, 0.05, 0.2, 1.0}) {
    SCOPED_TRACE(share);
    TrafficSpec spec;
    spec.packets = 40000;
    spec.flows = 100;
    spec.new_share = share;
    spec.seed = 11;
    const std::string path = ::testing::TempDir() + "/gen-traffic.pcapng";
    const TrafficSummary t = generate_traffic(docker28(), host, spec, path);
    EXPECT_EQ(t.packets, spec.packets);
    // Exactly the share asked: round(share x packets) connection openers.
    EXPECT_EQ(t.connections, static_cast<uint64_t>(std::llround(share * static_cast<double>(spec.packets))));
    EXPECT_GT(t.inbound, t.connections / 3);
    EXPECT_LT(t.inbound, t.connections);

    // Both sides of the host send: the external interface and both bridges.
    CaptureReader reader(path);
    std::vector<CaptureFrame> frames(256);
    std::map<std::string, uint64_t> per_iface;
    while (size_t n = reader.next_burst(frames)) {
      for (size_t i = 0; i < n; ++i) ++per_iface[reader.interfaces()[frames[i].iface].name];
    }
    EXPECT_GT(per_iface["eth0"], spec.packets / 10);
    EXPECT_GT(per_iface["docker0"], spec.packets / 10);
    if (t.connections >= 40) {
      EXPECT_GT(per_iface["br-5c0a8c6e1d2f"], 0U);
    }

    auto pipeline = Pipeline::build(docker28(), host);
    ReplayOptions o;
    o.capture = path;
    const ReplayReport r = run_replay(*pipeline, host, o);
    EXPECT_EQ(r.packets, spec.packets);
    EXPECT_EQ(r.invalid, 0U);
    EXPECT_EQ(r.dropped, 0U);
    EXPECT_EQ(r.pipeline.by_fate[static_cast<size_t>(Fate::Forwarded)], spec.packets);
    EXPECT_EQ(r.flows, t.connections);
    EXPECT_EQ(pipeline->conntrack().counters().invalid, 0U);
  }
}

TEST(TrafficGen, TheSameSeedGivesTheSameBytes) {
  const HostModel host = default_docker_host();
  TrafficSpec spec;
  spec.packets = 3000;
  spec.flows = 50;
  const std::string a = ::testing::TempDir() + "/gen-a.pcapng";
  const std::string b = ::testing::TempDir() + "/gen-b.pcapng";
  generate_traffic(docker28(), host, spec, a);
  generate_traffic(docker28(), host, spec, b);
  EXPECT_EQ(read_bytes(a), read_bytes(b));
  spec.seed = 2;
  generate_traffic(docker28(), host, spec, b);
  EXPECT_NE(read_bytes(a), read_bytes(b));
}

TEST(TrafficGen, WhatItCannotDoIsSaid) {
  const HostModel host = default_docker_host();
  const std::string path = ::testing::TempDir() + "/gen-bad.pcapng";
  TrafficSpec spec;
  spec.new_share = 0;
  EXPECT_THROW(generate_traffic(docker28(), host, spec, path), std::invalid_argument);
  spec.new_share = 0.5;
  spec.flows = 0;
  EXPECT_THROW(generate_traffic(docker28(), host, spec, path), std::invalid_argument);
  spec.flows = 10;
  const Ruleset none = read_iptables_save("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", "none");
  try {
    generate_traffic(none, host, spec, path);
    ADD_FAILURE() << "a ruleset without published ports was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("publishes no port"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfb
