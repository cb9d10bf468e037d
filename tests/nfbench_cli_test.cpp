// The nfbench command end to end: what it prints on the bundled data, and
// that bad input gives `nfbench: FILE:LINE:COL: ...` (or a file offset) on
// stderr and a non-zero exit.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <regex>
#include <string>

#include "pcap/capture_reader.h"
#include "pcap/capture_writer.h"
#include "tests/support/netns.h"

namespace nfb {
namespace {

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

CommandResult nfbench(std::vector<std::string> args) {
  const char* build = std::getenv("NFB_BUILD_ROOT");
  args.insert(args.begin(), std::string(build != nullptr ? build : ".") + "/tools/nfbench");
  return run_command(args);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(NfbenchRules, PrintsBundledRulesetCanonically) {
  const CommandResult r = nfbench({"rules", source_root() + "/data/rulesets/docker-28.save"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("*nat\n"), std::string::npos);
  EXPECT_NE(r.out.find("-A DOCKER ! -i docker0 -p tcp -m tcp --dport 10000 -j DNAT --to-destination 172.17.0.2:6379\n"),
            std::string::npos);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(NfbenchRules, ReportsWhereTheInputIsWrong) {
  const std::string path = write_temp("bad.save", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j NOSUCHCHAIN\nCOMMIT\n");
  const CommandResult r = nfbench({"rules", path});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.err.rfind("nfbench: " + path + ":3:", 0), 0U) << r.err;
  EXPECT_NE(r.err.find("NOSUCHCHAIN"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(NfbenchRules, MissingFileIsAnError) {
  const CommandResult r = nfbench({"rules", "/nonexistent/rules.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "nfbench: /nonexistent/rules.save: cannot open: No such file or directory\n");
}

TEST(NfbenchRules, ClassBenchInputIsDetectedAndWrittenBack) {
  const std::string path = source_root() + "/data/classbench/neurocuts_fw1_1k.rules";
  const CommandResult r = nfbench({"rules", path});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.substr(0, r.out.find('\n') + 1),
            "@37.184.89.216/29\t37.184.85.16/29\t7648 : 7648\t24032 : 24032\t0x11/0xFF\t0x0000/0x0000\t\n");
  size_t lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 857U);
}

TEST(NfbenchRules, ClassBenchErrorNamesLineAndColumn) {
  const std::string path = write_temp("bad.rules", "@1.0.0.0/8\t2.0.0.0/8\t0 : 1\t0 : 1\t0x06/0x0F\n");
  const CommandResult r = nfbench({"rules", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "nfbench: " + path + ":1:39: expected a protocol mask of 0x00 (any) or 0xFF (exact)\n");
}

// classify --build-only: one JSON object per registered algorithm, with
// its build time and memory; without --build-only a trace is required.
TEST(NfbenchClassify, BuildOnlyReportsEveryRegisteredAlgorithm) {
  const std::string rules = source_root() + "/data/classbench/neurocuts_fw1_1k.rules";
  const CommandResult r = nfbench({"classify", "--rules", rules, "--build-only", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> algos;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    algos.push_back(j.at("algo").get<std::string>());
    EXPECT_GT(j.at("memory_bytes").get<double>(), 0) << line;
    EXPECT_GE(j.at("build_seconds").get<double>(), 0) << line;
    EXPECT_EQ(j.at("rules").get<int>(), 857) << line;
  }
  EXPECT_EQ(algos, (std::vector<std::string>{"linear", "dtree", "tuple", "acl", "pipapo"}));
  const CommandResult no_trace = nfbench({"classify", "--rules", rules});
  EXPECT_EQ(no_trace.exit_code, 1);
  EXPECT_NE(no_trace.err.find("--trace is required (or --build-only)"), std::string::npos) << no_trace.err;
}

TEST(NfbenchParse, CountsEveryFrameOfTheBundledCapture) {
  const CommandResult r = nfbench({"parse", "--json", source_root() + "/data/captures/docker-host-eth0.pcap"});
  ASSERT_TRUE(r.ok()) << r.describe();
  // 154 frames: 150 well-formed IPv4, then ARP, IPv6, an IP total length
  // beyond the frame and an IP header length of 16 (see tools/gen_sample_capture.py).
  EXPECT_NE(r.out.find("\"packets\":154"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"parsed\":150"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"invalid\":4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"invalid_by_reason\":{\"bad_ip_header_length\":1,\"ip_total_length_beyond_frame\":1,"
                       "\"ipv6_not_handled\":1,\"not_ip\":1}"),
            std::string::npos)
      << r.out;
}

TEST(NfbenchParse, NotACaptureIsAnError) {
  const std::string path = write_temp("not-a-capture.pcap", "hello, this is text\n");
  const CommandResult r = nfbench({"parse", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "nfbench: " + path +
                       ": offset 0: expected pcap magic (a1b2c3d4 or a1b23c4d) or pcapng section header "
                       "(0a0d0d0a), found bytes 68 65 6c 6c\n");
}

TEST(NfbenchParse, TruncatedRecordNamesItsOffset) {
  std::string capture = read_file(source_root() + "/data/captures/docker-host-eth0.pcap");
  ASSERT_GT(capture.size(), 200U);
  // 24-byte file header, then the first record: 16-byte header + 60+ bytes. Cut
  // inside the second record's header.
  const uint32_t first_len = static_cast<uint8_t>(capture[24 + 8]) | static_cast<uint32_t>(static_cast<uint8_t>(capture[24 + 9])) << 8;
  const size_t second = 24 + 16 + first_len;
  const std::string path = write_temp("cut.pcap", capture.substr(0, second + 5));
  const CommandResult r = nfbench({"parse", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "nfbench: " + path + ": offset " + std::to_string(second) +
                       ": expected a 16-byte record header, only 5 bytes left (truncated file)\n");
}

// The seed case: the naive rule counts nothing, the fix counts the blocked
// packets (the same numbers the kernel gives; see tests/data/scenarios).
TEST(NfbenchReplay, SeedCaseCountersToStandardOutput) {
  const std::string root = source_root();
  const CommandResult naive = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28-seed-naive.save",
                                       root + "/data/captures/seed-case.pcapng", "--json", "--save-counters", "-"});
  ASSERT_TRUE(naive.ok()) << naive.describe();
  EXPECT_NE(naive.out.find("[0:0] -A DOCKER-USER -p tcp -m tcp --dport 10000 -j DROP\n"), std::string::npos)
      << naive.out;
  EXPECT_NE(naive.out.find("[3:180] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 10000 -j DNAT"), std::string::npos);
  EXPECT_NE(naive.out.find("\"packets\":30,"), std::string::npos) << naive.out;
  EXPECT_NE(naive.out.find("\"emitted\":30,"), std::string::npos) << naive.out;
  const CommandResult fixed = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28-seed-fixed.save",
                                       root + "/data/captures/seed-case.pcapng", "--save-counters", "-"});
  ASSERT_TRUE(fixed.ok()) << fixed.describe();
  EXPECT_NE(fixed.out.find("[15:870] -A DOCKER-USER -p tcp -m conntrack --ctorigdstport 10000 --ctdir ORIGINAL -j DROP"),
            std::string::npos)
      << fixed.out;
  EXPECT_NE(fixed.out.find("Verdicts: 15 emitted, 15 dropped, 0 invalid"), std::string::npos) << fixed.out;
}

TEST(NfbenchReplay, CountersAsIptablesList) {
  const std::string root = source_root();
  const CommandResult r = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28-seed-naive.save",
                                   root + "/data/captures/seed-case.pcapng", "--json", "--list-counters", "-"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("# table filter\nChain INPUT (policy ACCEPT 0 packets, 0 bytes)\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Chain DOCKER-USER (1 references)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Chain FORWARD (policy DROP 0 packets, 0 bytes)\n"), std::string::npos) << r.out;
}

TEST(NfbenchReplay, EveryPacketIsAccountedFor) {
  const CommandResult r = nfbench({"replay", "--rules", source_root() + "/data/rulesets/docker-28.save",
                                   source_root() + "/data/captures/docker-host-eth0.pcap", "--json"});
  ASSERT_TRUE(r.ok()) << r.describe();
  // 154 frames: 4 do not parse, the rest are emitted (forwarded or
  // delivered), the 2 fragments of the UDP datagram to 5353 included: they
  // are reassembled and the datagram is forwarded to dns.
  EXPECT_NE(r.out.find("\"packets\":154,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"invalid\":4,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"dropped\":0,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"emitted\":150,"), std::string::npos) << r.out;
}

TEST(NfbenchReplay, TraceConntrackAndEgressFiles) {
  const std::string root = source_root();
  const std::string dir = ::testing::TempDir() + "/replay-out";
  const CommandResult r = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28-seed-naive.save",
                                   root + "/data/captures/seed-case.pcapng", "--trace", "--conntrack", "-o", dir});
  ASSERT_TRUE(r.ok()) << r.describe();
  // The first SYN: DNAT by nat DOCKER rule 3, then FORWARD sees 172.17.0.2:6379.
  EXPECT_NE(r.out.find("TRACE: nat:DOCKER:rule:3 IN=eth0 OUT= SRC=203.0.113.10 DST=198.51.100.1 LEN=60 PROTO=TCP "
                       "SPT=41862 DPT=10000\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("TRACE: filter:FORWARD:rule:1 IN=eth0 OUT=docker0 SRC=203.0.113.10 DST=172.17.0.2 LEN=60 "
                       "PROTO=TCP SPT=41862 DPT=6379\n"),
            std::string::npos);
  EXPECT_NE(r.out.find("tcp      6 119 TIME_WAIT src=203.0.113.10 dst=198.51.100.1 sport=41862 dport=10000 "
                       "src=172.17.0.2 dst=203.0.113.10 sport=6379 dport=41862 [ASSURED] mark=0 use=1\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("3 flow entries have been shown."), std::string::npos) << r.err;
  // What the host sent: client packets out of docker0 (DNATed), the
  // container's replies out of eth0 (source restored to 198.51.100.1:10000).
  const CommandResult to_container = nfbench({"parse", "--json", dir + "/docker0.pcapng"});
  ASSERT_TRUE(to_container.ok()) << to_container.describe();
  EXPECT_NE(to_container.out.find("\"parsed\":18"), std::string::npos) << to_container.out;
  const CommandResult to_outside = nfbench({"parse", "--json", dir + "/eth0.pcapng"});
  ASSERT_TRUE(to_outside.ok()) << to_outside.describe();
  EXPECT_NE(to_outside.out.find("\"parsed\":12"), std::string::npos) << to_outside.out;
}

// --algo runs every chain on that classifier: the same counters and fates.
TEST(NfbenchReplay, EveryAlgorithmCountsLikeTheLinearWalk) {
  const std::string root = source_root();
  const auto run = [&](const std::string& algo) {
    const CommandResult r = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28.save",
                                     root + "/data/captures/docker-host-eth0.pcap", "--json", "--algo", algo,
                                     "--save-counters", "-"});
    EXPECT_TRUE(r.ok()) << r.describe();
    // Everything but the JSON line (it holds the timing); then the fates.
    std::string counters, json;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("{", 0) == 0) {
        json = line;
      } else {
        counters += line + "\n";
      }
    }
    EXPECT_NE(json.find("\"algo\":\"" + algo + "\""), std::string::npos) << json;
    // The control plane's figures (outside the compared slice: they vary).
    for (const char* key : {"\"pipeline_build_seconds\":", "\"ruleset_load_seconds\":", "\"classifier_bytes\":"}) {
      EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
    }
    // Keys come sorted: fates and invalid counts, then the timing (mpps, seconds).
    const size_t from = json.find("\"fates\"");
    const size_t to = json.find("\"mpps\"");
    EXPECT_LT(from, to) << json;
    std::string slice = from < to && to != std::string::npos ? json.substr(from, to - from) : json;
    slice = std::regex_replace(slice, std::regex("\"gbps_l[12]\":[-+.e0-9]+,"), "");  // timing too
    return std::make_pair(counters, slice);
  };
  const auto linear = run("linear");
  EXPECT_NE(linear.first.find("-A DOCKER"), std::string::npos) << linear.first;
  for (const std::string algo : {"dtree", "tuple", "acl", "pipapo"}) {
    SCOPED_TRACE(algo);
    const auto other = run(algo);
    EXPECT_EQ(other.first, linear.first);
    EXPECT_EQ(other.second, linear.second);
  }
  const CommandResult bad = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28.save",
                                     root + "/data/captures/docker-host-eth0.pcap", "--algo", "hicuts"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--algo: unknown algorithm 'hicuts'"), std::string::npos) << bad.err;
}

TEST(NfbenchGen, TrafficReplaysLoopedWithEveryPacketAccountedFor) {
  const std::string root = source_root();
  const std::string out = ::testing::TempDir() + "/cli-gen.pcapng";
  const CommandResult g = nfbench({"gen", "traffic", "--rules", root + "/data/rulesets/docker-28.save", "--flows",
                                   "50", "--packets", "5000", "--new-share", "0.1", "--seed", "3", "-o", out});
  ASSERT_TRUE(g.ok()) << g.describe();
  EXPECT_NE(g.out.find("5000 packets"), std::string::npos) << g.out;
  const CommandResult r = nfbench({"replay", "--rules", root + "/data/rulesets/docker-28.save", out, "--loop", "2",
                                   "--stream", "--json"});
  ASSERT_TRUE(r.ok()) << r.describe();
  for (const char* key : {"\"packets\":10000", "\"invalid\":0", "\"dropped\":0", "\"emitted\":10000",
                          "\"loops\":2"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
  }
  const CommandResult bad = nfbench({"gen", "traffic", "--rules", root + "/data/rulesets/docker-28.save",
                                     "--new-share", "2", "-o", out});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.err.find("--new-share"), std::string::npos) << bad.err;
}

// The frames of one capture interface as a classic pcap (what a DPDK pcap
// vdev reads: it knows no pcapng interfaces).
std::string frames_of_interface(const std::string& capture, const std::string& iface, const std::string& out) {
  CaptureReader reader(capture);
  PcapWriter writer(out, 1);
  std::vector<CaptureFrame> frames(64);
  while (size_t n = reader.next_burst(frames)) {
    for (size_t i = 0; i < n; ++i) {
      if (reader.interfaces()[frames[i].iface].name == iface) {
        writer.write(frames[i].ts_ns, std::span(frames[i].data, frames[i].caplen), frames[i].wirelen);
      }
    }
  }
  writer.close();
  return out;
}

std::vector<std::string> frame_bytes(const std::string& capture, const std::string& iface) {
  CaptureReader reader(capture);
  std::vector<CaptureFrame> frames(64);
  std::vector<std::string> out;
  while (size_t n = reader.next_burst(frames)) {
    for (size_t i = 0; i < n; ++i) {
      if (iface.empty() || reader.interfaces()[frames[i].iface].name == iface) {
        out.emplace_back(reinterpret_cast<const char*>(frames[i].data), frames[i].caplen);
      }
    }
  }
  return out;
}

// Where the JSON line of an output starts (it is the last line).
size_t json_at(const std::string& out) {
  const size_t nl = out.rfind("\n{\"");
  return nl == std::string::npos ? 0 : nl + 1;
}

std::string json_without_timing(const std::string& out) {
  std::string json = out.substr(json_at(out));
  json = std::regex_replace(json, std::regex("\"lcores\":\\[[^\\]]*\\],?"), "");
  for (const char* key : {"seconds", "mpps", "gbps_l1", "gbps_l2", "pipeline_build_seconds", "ruleset_load_seconds"}) {
    json = std::regex_replace(json, std::regex(std::string("\"") + key + "\":[-+.e0-9]+,?"), "");
  }
  return json;
}

TEST(NfbenchReplay, DpdkPortsGiveWhatTheFileReplayGives) {
  // The seed case's frames that arrive on eth0, into a pcap vdev mapped to
  // eth0; a second vdev is docker0, where the DNAT'd connections leave.
  const std::string root = source_root();
  const std::string dir = ::testing::TempDir();
  const std::string in = frames_of_interface(root + "/data/captures/seed-case.pcapng", "eth0", dir + "/dpdk-in.pcap");
  const std::string rules = root + "/data/rulesets/docker-28-seed-naive.save";
  const CommandResult file = nfbench({"replay", "--rules", rules, in, "--write-emitted", dir + "/dpdk-file.pcapng",
                                      "--json", "--save-counters", "-"});
  ASSERT_TRUE(file.ok()) << file.describe();
  std::remove((dir + "/dpdk-out0.pcap").c_str());
  std::remove((dir + "/dpdk-out1.pcap").c_str());
  const std::string eal = "--no-huge --no-pci --no-shconf --no-telemetry -m 512 --log-level=lib.eal:warning "
                          "--vdev=net_pcap0,rx_pcap=" + in + ",tx_pcap=" + dir + "/dpdk-out0.pcap "
                          "--vdev=net_pcap1,tx_pcap=" + dir + "/dpdk-out1.pcap";
  const CommandResult ports = nfbench({"replay", "--rules", rules, "--dpdk", eal, "--port-map", "0=eth0,1=docker0",
                                       "--json", "--save-counters", "-", "--idle-ms", "300"});
  ASSERT_TRUE(ports.ok()) << ports.describe();
  // Same counters, same verdicts.
  EXPECT_EQ(ports.out.substr(0, json_at(ports.out)), file.out.substr(0, json_at(file.out)));
  std::string want = json_without_timing(file.out);
  std::string got = json_without_timing(ports.out);
  for (const char* key : {"transmitted", "tx_no_port", "tx_failed", "tx_too_big", "handoff_failed"}) {
    got = std::regex_replace(got, std::regex(std::string("\"") + key + "\":[0-9]+,?"), "");
  }
  got = std::regex_replace(got, std::regex(",\\}"), "}");  // a removed last member leaves its comma
  EXPECT_EQ(got, want);
  EXPECT_NE(ports.out.find("\"tx_failed\":0"), std::string::npos) << ports.out;
  // The frames leaving on docker0 are the file replay's emitted frames, byte for byte.
  const std::vector<std::string> sent = frame_bytes(dir + "/dpdk-out1.pcap", "");
  const std::vector<std::string> emitted = frame_bytes(dir + "/dpdk-file.pcapng", "docker0");
  ASSERT_FALSE(emitted.empty());
  EXPECT_EQ(sent, emitted);

  const CommandResult bad = nfbench({"replay", "--rules", rules, "--dpdk", eal, "--port-map", "0=eth0,7=docker0"});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.err.find("no port 7"), std::string::npos) << bad.err;
}

TEST(NfbenchReplay, TwoLcoresWithTheirOwnShardsCountLikeOne) {
  // The seed case's eth0 frames split by client address into one pcap per
  // rx queue (what symmetric steering on the outside endpoint gives), two
  // lcores with a conntrack shard each: the summed counters are the file
  // replay's.
  const std::string root = source_root();
  const std::string dir = ::testing::TempDir();
  CaptureReader reader(root + "/data/captures/seed-case.pcapng");
  PcapWriter q0(dir + "/lc-q0.pcap", 1);
  PcapWriter q1(dir + "/lc-q1.pcap", 1);
  PcapWriter all(dir + "/lc-all.pcap", 1);
  std::vector<CaptureFrame> frames(64);
  uint64_t counts[2] = {0, 0};
  while (size_t n = reader.next_burst(frames)) {
    for (size_t i = 0; i < n; ++i) {
      const CaptureFrame& f = frames[i];
      if (reader.interfaces()[f.iface].name != "eth0" || f.caplen < 34) continue;
      const bool odd = (f.data[26 + 3] & 1U) != 0;  // last byte of the IPv4 source
      (odd ? q1 : q0).write(f.ts_ns, std::span(f.data, f.caplen), f.wirelen);
      all.write(f.ts_ns, std::span(f.data, f.caplen), f.wirelen);
      ++counts[odd ? 1 : 0];
    }
  }
  q0.close();
  q1.close();
  all.close();
  ASSERT_GT(counts[0], 0U);
  ASSERT_GT(counts[1], 0U);
  const std::string rules = root + "/data/rulesets/docker-28-seed-naive.save";
  const CommandResult file = nfbench({"replay", "--rules", rules, dir + "/lc-all.pcap", "--save-counters", "-"});
  ASSERT_TRUE(file.ok()) << file.describe();
  const std::string eal = "--no-huge --no-pci --no-shconf --no-telemetry -m 512 -l 0-1 --log-level=lib.eal:warning "
                          "--vdev=net_pcap0,rx_pcap=" + dir + "/lc-q0.pcap,rx_pcap=" + dir + "/lc-q1.pcap,tx_pcap=" +
                          dir + "/lc-o0a.pcap,tx_pcap=" + dir + "/lc-o0b.pcap "
                          "--vdev=net_pcap1,tx_pcap=" + dir + "/lc-o1a.pcap,tx_pcap=" + dir + "/lc-o1b.pcap";
  const CommandResult two = nfbench({"replay", "--rules", rules, "--dpdk", eal, "--port-map", "0=eth0,1=docker0",
                                     "--lcores", "2", "--save-counters", "-", "--json", "--idle-ms", "300"});
  ASSERT_TRUE(two.ok()) << two.describe();
  const std::string counters = two.out.substr(0, json_at(two.out));
  EXPECT_EQ(counters, file.out.substr(0, file.out.find("Actual:")));
  // Each lcore processed the flows it owns (steered by the client, whatever
  // queue they came in on): between them, every frame.
  const nlohmann::json j = nlohmann::json::parse(two.out.substr(json_at(two.out)));
  ASSERT_EQ(j["lcores"].size(), 2U);
  EXPECT_GT(j["lcores"][0]["packets"].get<uint64_t>(), 0U);
  EXPECT_GT(j["lcores"][1]["packets"].get<uint64_t>(), 0U);
  EXPECT_EQ(j["lcores"][0]["packets"].get<uint64_t>() + j["lcores"][1]["packets"].get<uint64_t>(),
            counts[0] + counts[1]);
  EXPECT_EQ(j["invalid"].get<uint64_t>(), 0U);
  EXPECT_EQ(j["handoff_failed"].get<uint64_t>(), 0U);

  // One rx queue for both lcores (a device without RSS): lcore 0 hands the
  // flows lcore 1 owns over its ring; the counters are the same.
  const std::string one_queue = "--no-huge --no-pci --no-shconf --no-telemetry -m 512 -l 0-1 "
                                "--log-level=lib.eal:warning --vdev=net_pcap0,rx_pcap=" + dir + "/lc-all.pcap,tx_pcap=" +
                                dir + "/lc-o0a.pcap,tx_pcap=" + dir + "/lc-o0b.pcap "
                                "--vdev=net_pcap1,tx_pcap=" + dir + "/lc-o1a.pcap,tx_pcap=" + dir + "/lc-o1b.pcap";
  const CommandResult handed = nfbench({"replay", "--rules", rules, "--dpdk", one_queue, "--port-map",
                                        "0=eth0,1=docker0", "--lcores", "2", "--save-counters", "-", "--json",
                                        "--idle-ms", "300"});
  ASSERT_TRUE(handed.ok()) << handed.describe();
  EXPECT_EQ(handed.out.substr(0, json_at(handed.out)), file.out.substr(0, file.out.find("Actual:")));
  const nlohmann::json h = nlohmann::json::parse(handed.out.substr(json_at(handed.out)));
  EXPECT_GT(h["lcores"][1]["packets"].get<uint64_t>(), 0U);  // only lcore 0 has a queue: these were handed over

  const CommandResult few = nfbench({"replay", "--rules", rules, "--dpdk", eal, "--lcores", "3"});
  EXPECT_FALSE(few.ok());
  EXPECT_NE(few.err.find("lcores"), std::string::npos) << few.err;
}

TEST(NfbenchReplay, RingSourceCountsLikeTheFileReplay) {
  // The mixed Docker-host capture (eth0, docker0 and the second bridge, in
  // capture order) fed from memory into a net_ring port by a feeder lcore:
  // the same counters and verdicts as the file replay, every frame fed.
  const std::string root = source_root();
  const std::string capture = root + "/data/captures/docker-mixed.pcapng";
  const std::string rules = root + "/data/rulesets/docker-28.save";
  const CommandResult file = nfbench({"replay", "--rules", rules, capture, "--save-counters", "-", "--json"});
  ASSERT_TRUE(file.ok()) << file.describe();
  const std::string eal = "--no-huge --no-pci --no-shconf --no-telemetry -m 512 -l 0-1 --log-level=lib.eal:warning";
  const CommandResult ring = nfbench({"replay", "--rules", rules, "--dpdk", eal, "--ring-from", capture,
                                      "--save-counters", "-", "--json", "--idle-ms", "300"});
  ASSERT_TRUE(ring.ok()) << ring.describe();
  EXPECT_EQ(ring.out.substr(0, json_at(ring.out)), file.out.substr(0, json_at(file.out)));
  const nlohmann::json f = nlohmann::json::parse(file.out.substr(json_at(file.out)));
  const nlohmann::json r = nlohmann::json::parse(ring.out.substr(json_at(ring.out)));
  EXPECT_EQ(r["fed"], f["packets"]);
  EXPECT_EQ(r["packets"], f["packets"]);
  EXPECT_EQ(r["fates"], f["fates"]);
  EXPECT_EQ(r["transmitted"], f["fates"].value("forwarded", 0));

  const CommandResult alone = nfbench({"replay", "--rules", rules, "--ring-from", capture});
  EXPECT_FALSE(alone.ok());
  EXPECT_NE(alone.err.find("--ring-from goes with --dpdk"), std::string::npos) << alone.err;
}

TEST(NfbenchReplay, BadRulesetStopsBeforeReplaying) {
  const std::string path = write_temp("bad-replay.save", "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT\nCOMMIT\n");
  const CommandResult r =
      nfbench({"replay", "--rules", path, source_root() + "/data/captures/seed-case.pcapng"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("nfbench: " + path + ":3:", 0), 0U) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(NfbenchReplay, RulesThatAreNoFileAreErrorsNamingThem) {
  // A directory, an empty path or a file with no table used to replay as
  // an empty ruleset with exit 0: a silent wrong result.
  const std::string capture = source_root() + "/data/captures/seed-case.pcapng";
  const std::string dir = ::testing::TempDir();
  const CommandResult d = nfbench({"replay", "--rules", dir, capture});
  EXPECT_EQ(d.exit_code, 1) << d.describe();
  EXPECT_EQ(d.err, "nfbench: " + dir + ": is a directory (expected a file)\n");
  EXPECT_TRUE(d.out.empty()) << d.out;
  const CommandResult none = nfbench({"replay", "--rules", "", capture});
  EXPECT_EQ(none.exit_code, 1) << none.describe();
  EXPECT_NE(none.err.find("no file name given"), std::string::npos) << none.err;
  const std::string empty = write_temp("empty.save", "# nothing but a comment\n");
  const CommandResult e = nfbench({"replay", "--rules", empty, capture});
  EXPECT_EQ(e.exit_code, 1) << e.describe();
  EXPECT_EQ(e.err, "nfbench: " + empty + ": holds no table (expected iptables-save output: *filter ... COMMIT)\n");
  const CommandResult lint = nfbench({"lint", empty});
  EXPECT_EQ(lint.exit_code, 1) << lint.describe();
  EXPECT_NE(lint.err.find("holds no table"), std::string::npos) << lint.err;
  const CommandResult host = nfbench({"replay", "--rules", source_root() + "/data/rulesets/docker-28.save",
                                      "--host-addrs", dir, "--host-routes", dir, capture});
  EXPECT_EQ(host.exit_code, 1) << host.describe();
  EXPECT_NE(host.err.find(dir + ": is a directory"), std::string::npos) << host.err;
}

TEST(NfbenchReplay, UnsupportedModulesNeverMatchWhenAskedAndTheReportSaysSo) {
  const std::string rules = write_temp(
      "unsupported.save",
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -p tcp -m quota --quota 65 -j DROP\n-A FORWARD -j NFQUEUE --queue-num 3\nCOMMIT\n");
  const std::string capture = source_root() + "/data/captures/seed-case.pcapng";
  const CommandResult strict = nfbench({"replay", "--rules", rules, capture});
  EXPECT_EQ(strict.exit_code, 1) << strict.describe();
  EXPECT_NE(strict.err.find(":5:20: match module \"quota\" is not supported by this model; also at 6:15 target "
                            "\"NFQUEUE\" (2 uses"),
            std::string::npos)
      << strict.err;
  const CommandResult loose =
      nfbench({"replay", "--rules", rules, "--unsupported", "never-match", "--save-counters", "-", capture});
  ASSERT_TRUE(loose.ok()) << loose.describe();
  // Neither rule matched (the kernel would have dropped the TTL-64 SYNs):
  // the report says the counters are approximate, and which rules.
  EXPECT_NE(loose.out.find("[0:0] -A INPUT -p tcp -m quota --quota 65 -j DROP\n"), std::string::npos) << loose.out;
  EXPECT_NE(loose.out.find("Approximate: 2 rules use match modules or targets this model does not support"),
            std::string::npos)
      << loose.out;
  EXPECT_NE(loose.out.find(rules + ":5 (quota) " + rules + ":6 (NFQUEUE)"), std::string::npos) << loose.out;
}

TEST(NfbenchReplay, CaptureInterfaceTheHostLacks) {
  const CommandResult r = nfbench({"replay", "--rules", source_root() + "/data/rulesets/docker-28.save", "--in-iface",
                                   "wlan0", source_root() + "/data/captures/docker-host-eth0.pcap"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "nfbench: " + source_root() +
                       "/data/captures/docker-host-eth0.pcap: capture interface 0 is \"wlan0\", which the host does "
                       "not have\n");
}

TEST(Nfbench, UnknownSubcommandFails) {
  const CommandResult r = nfbench({"frobnicate"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
}

}  // namespace
}  // namespace nfb

namespace nfb {
namespace {

TEST(NfbenchReplay, SysctlsSetConntrackKnobsAndSayWhatIsNotModelled) {
  const std::string capture = source_root() + "/data/captures/seed-case.pcapng";
  const std::string rules = source_root() + "/data/rulesets/docker-28-seed-naive.save";
  // nf_conntrack_max=1: the seed case's three connections do not fit; the
  // second and third are dropped as the kernel drops a new connection on a
  // full table.
  const CommandResult full = nfbench({"replay", "--rules", rules, capture, "--json"});
  const CommandResult small = nfbench({"replay", "--rules", rules, capture, "--json", "--sysctl",
                                       "net.netfilter.nf_conntrack_max=1"});
  ASSERT_EQ(full.exit_code, 0) << full.describe();
  ASSERT_EQ(small.exit_code, 0) << small.describe();
  EXPECT_EQ(nlohmann::json::parse(full.out.substr(json_at(full.out)))["dropped"], 0) << full.out;
  EXPECT_GT(nlohmann::json::parse(small.out.substr(json_at(small.out)))["dropped"].get<int>(), 0) << small.out;
  const std::string dump = write_temp("host.sysctl", "kernel.ostype = Linux\nnet.ipv4.conf.all.rp_filter = 1\n"
                                                     "net.netfilter.nf_conntrack_max = 1\n");
  const CommandResult from_file = nfbench({"replay", "--rules", rules, capture, "--json", "--sysctls", dump});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.describe();
  EXPECT_EQ(nlohmann::json::parse(from_file.out.substr(json_at(from_file.out)))["dropped"], nlohmann::json::parse(small.out.substr(json_at(small.out)))["dropped"]);
  EXPECT_NE(from_file.err.find(dump + ":2: net.ipv4.conf.all.rp_filter=1: not modelled"), std::string::npos)
      << from_file.err;
  const CommandResult bad = nfbench({"replay", "--rules", rules, capture, "--sysctl", "net.ipv4.ip_forward=yes"});
  EXPECT_EQ(bad.exit_code, 1) << bad.describe();
  EXPECT_NE(bad.err.find("net.ipv4.ip_forward: bad value \"yes\" (expected 0-1)"), std::string::npos) << bad.err;
}


TEST(NfbenchReplay, IpsetsGiveTheSetsOfMatchSetRules) {
  const std::string capture = source_root() + "/data/captures/seed-case.pcapng";
  std::string text = read_file(source_root() + "/data/rulesets/docker-28-seed-naive.save");
  const std::string naive = "-A DOCKER-USER -p tcp --dport 10000 -j DROP";
  ASSERT_NE(text.find(naive), std::string::npos);
  text.replace(text.find(naive), 0, "-A DOCKER-USER -m set --match-set blocked src -j DROP\n");
  const std::string rules = write_temp("set.save", text);
  const std::string sets = write_temp("host.ipsets", "create blocked hash:net family inet hashsize 1024 maxelem 65536\n"
                                                     "add blocked 203.0.113.0/24\n");
  const CommandResult r = nfbench({"replay", "--rules", rules, capture, "--json", "--ipsets", sets});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GT(nlohmann::json::parse(r.out.substr(json_at(r.out)))["dropped"].get<int>(), 0) << r.out;
  // Without the sets the rule cannot load, as in the kernel.
  const CommandResult missing = nfbench({"replay", "--rules", rules, capture});
  EXPECT_EQ(missing.exit_code, 1) << missing.describe();
  EXPECT_NE(missing.err.find("set \"blocked\" doesn't exist"), std::string::npos) << missing.err;
  // lint and explain take them too: the seed case's naive rule is still found.
  const CommandResult lint = nfbench({"lint", rules, "--ipsets", sets});
  EXPECT_EQ(lint.exit_code, 1) << lint.describe();
  EXPECT_NE(lint.out.find("published-port"), std::string::npos) << lint.out;
  const CommandResult explain = nfbench({"explain", rules, "--ipsets", sets, "--packet",
                                         "tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0"});
  EXPECT_EQ(explain.exit_code, 0) << explain.describe();
  EXPECT_NE(explain.out.find("-m set --match-set blocked src -j DROP"), std::string::npos) << explain.out;
  // A bad sets file says where.
  const std::string bad = write_temp("bad.ipsets", "create blocked hash:net\nadd blocked 203.0.113.0/33\n");
  const CommandResult b = nfbench({"replay", "--rules", rules, capture, "--ipsets", bad});
  EXPECT_EQ(b.exit_code, 1) << b.describe();
  EXPECT_NE(b.err.find(bad + ":2:13: bad prefix"), std::string::npos) << b.err;
}


// nfbench snapshot in a network namespace (root), read back by replay --host.
TEST(NfbenchSnapshot, AFolderOfTheHostReplaysAsItsFilesDo) {
  if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why;
  std::string rules = read_file(source_root() + "/data/rulesets/docker-28-seed-naive.save");
  const std::string naive = "-A DOCKER-USER -p tcp --dport 10000 -j DROP";
  ASSERT_NE(rules.find(naive), std::string::npos);
  rules.replace(rules.find(naive), 0, "-A DOCKER-USER -m set --match-set blocked src -j DROP\n");
  NetnsSandbox ns;
  // The seed capture's interfaces, with the host's addresses.
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
        std::vector<std::string>{"ip", "addr", "add", "198.51.100.1/24", "dev", "eth0"},
        std::vector<std::string>{"ip", "link", "set", "eth0", "up"},
        std::vector<std::string>{"ip", "link", "add", "docker0", "type", "bridge"},
        std::vector<std::string>{"ip", "addr", "add", "172.17.0.1/16", "dev", "docker0"},
        std::vector<std::string>{"ip", "link", "set", "docker0", "up"},
        std::vector<std::string>{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}}) {
    const CommandResult r = ns.run(cmd);
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  ns.restore("#ipset create blocked hash:net family inet hashsize 1024 maxelem 65536\n"
             "#ipset add blocked 203.0.113.0/24\n" + rules);
  const std::string dir = ::testing::TempDir() + "/nfb-snapshot";
  const char* build = std::getenv("NFB_BUILD_ROOT");
  const std::string exe = std::string(build != nullptr ? build : ".") + "/tools/nfbench";
  const CommandResult snap = ns.run({exe, "snapshot", dir});
  ASSERT_TRUE(snap.ok()) << snap.describe();
  EXPECT_NE(snap.out.find("iptables.save: iptables-legacy-save -c"), std::string::npos) << snap.out;
  EXPECT_NE(read_file(dir + "/iptables.save").find("-A DOCKER-USER -m set --match-set blocked src -j DROP"),
            std::string::npos);
  EXPECT_NE(read_file(dir + "/ipset.save").find("add blocked 203.0.113.0/24"), std::string::npos);
  EXPECT_NE(read_file(dir + "/ip-addr.json").find("\"ifname\":\"lo\""), std::string::npos);
  EXPECT_NE(read_file(dir + "/sysctl.txt").find("net.ipv4.ip_forward = "), std::string::npos);
  EXPECT_EQ(read_file(dir + "/sysctl.txt").find("kernel."), std::string::npos);
  // --host DIR is the same as naming its files.
  const std::string capture = source_root() + "/data/captures/seed-case.pcapng";
  const std::string c1 = ::testing::TempDir() + "/by-dir.save";
  const std::string c2 = ::testing::TempDir() + "/by-files.save";
  const CommandResult by_dir = nfbench({"replay", "--host", dir, capture, "--save-counters", c1});
  const CommandResult by_files =
      nfbench({"replay", "--rules", dir + "/iptables.save", "--host-addrs", dir + "/ip-addr.json", "--host-routes",
               dir + "/ip-route.json", "--sysctls", dir + "/sysctl.txt", "--ipsets", dir + "/ipset.save", capture,
               "--save-counters", c2});
  ASSERT_EQ(by_dir.exit_code, 0) << by_dir.describe();
  ASSERT_EQ(by_files.exit_code, 0) << by_files.describe();
  EXPECT_EQ(read_file(c1), read_file(c2));
  // Forwarding is on (the snapshot's sysctl): the set's rule drops the
  // seed case's clients (203.0.113.0/24).
  EXPECT_EQ(read_file(c1).find("[0:0] -A DOCKER-USER -m set --match-set blocked src -j DROP"), std::string::npos)
      << read_file(c1);
  EXPECT_NE(read_file(c1).find("-A DOCKER-USER -m set --match-set blocked src -j DROP"), std::string::npos);
  // Not a folder, or one without iptables.save: an error naming it.
  const CommandResult not_dir = nfbench({"replay", "--host", capture, capture});
  EXPECT_EQ(not_dir.exit_code, 1);
  EXPECT_NE(not_dir.err.find("--host " + capture + ": not a directory"), std::string::npos) << not_dir.err;
  const CommandResult neither = nfbench({"replay", capture});
  EXPECT_EQ(neither.exit_code, 1);
  EXPECT_NE(neither.err.find("give --rules FILE or --host DIR"), std::string::npos) << neither.err;
}

}  // namespace
}  // namespace nfb
