// The netfilter pipeline against the kernel: every scenario of
// tests/support/scenarios.h (the seed case, docker 27/28 mixed traffic, fragments)
// runs through the model, and its `iptables-save -c` must equal what the
// real kernel counted for the same frames (recorded in
// tests/data/scenarios/*.kernel by kernel_host_test), and so must the
// conntrack state of every frame (*.states). The fast path must not change
// a single counter.
#include "netfilter/pipeline.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <tuple>

#include "netfilter/host_folder.h"
#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"
#include "tests/support/kernel_host.h"
#include "tests/support/sanitizer.h"
#include "tests/support/scenarios.h"

namespace nfb {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct ModelRun {
  std::string counters;  // iptables-save -c of the model
  PipelineStats stats;
  uint64_t trusted_bad = 0;  // conntrack's trusted_bad_checksum
  std::vector<Fate> fates;
  std::vector<uint8_t> states;
  std::string conntrack;  // the table after the last frame, as conntrack -L
};

// Runs a scenario's frames through a fresh pipeline on the kernel tests'
// host (its folder), one frame per millisecond of capture time, in bursts of `burst`
// frames (the burst stages look every packet up before the first one runs),
// with L4 checksums verified or trusted (--rx-csum; a frame the test knows
// to be wrong is marked, as the replay marks it). `per_bridge`: br_netfilter
// from each bridge's own nf_call_iptables option instead of the sysctl.
ModelRun run_model(const Scenario& s, bool fast_path, ChainAlgo algo = ChainAlgo::kLinear, size_t burst = 1,
                   bool trust = false, bool per_bridge = false) {
  // The kernel tests' host, from its folder (interfaces, routes, sysctls),
  // read once.
  struct FolderHost {
    HostSpec spec;
    CtConfig conntrack;
  };
  static const FolderHost folder = [] {
    FolderHost h;
    std::vector<std::string> warnings;  // accept_source_route=1, a new namespace's default: no frame has the option
    h.spec = HostFolder::open(kernel_tests_host_dir()).host_spec(h.conntrack, warnings);
    return h;
  }();
  PipelineConfig config;
  config.conntrack = folder.conntrack;
  HostSpec spec = folder.spec;
  spec.bridge_nf_call_iptables = s.br_netfilter;
  spec.ip_forward = s.ip_forward;
  for (Interface& ifc : spec.interfaces) {
    if (ifc.master != kNoIface) ifc.hairpin = s.hairpin;
    if (per_bridge && ifc.bridge) ifc.bridge_nf_call_iptables = s.br_netfilter;
  }
  if (per_bridge) spec.bridge_nf_call_iptables = false;
  const HostModel host = HostModel::build(spec, kernel_tests_host_dir());
  const Ruleset rules = read_iptables_save(s.ruleset, s.name);
  config.fast_path = fast_path;
  config.algo = algo;
  config.rx_csum_trust = trust;
  std::optional<IpSets> sets;
  if (!s.ipsets.empty()) {
    sets = IpSets::parse(s.ipsets, s.name + ".ipsets");
    config.match.ipsets = &*sets;
  }
  auto pipeline = Pipeline::build(rules, host, config);
  ModelRun run;
  uint64_t ts = 1'764'000'000'000'000'000ULL;
  std::vector<std::vector<uint8_t>> frames;
  for (const InjectedFrame& f : s.frames) frames.push_back(f.bytes);
  std::vector<PacketIn> in;
  std::vector<size_t> slot;  // in[] -> run.fates index
  const auto flush = [&] {
    std::vector<PacketOut> out(in.size());
    pipeline->process(std::span(in), std::span(out));
    for (size_t j = 0; j < in.size(); ++j) {
      run.fates[slot[j]] = out[j].fate;
      run.states[slot[j]] = out[j].ct_state;
    }
    in.clear();
    slot.clear();
  };
  for (size_t i = 0; i < s.frames.size(); ++i) {
    const InjectedFrame& f = s.frames[i];
    std::vector<uint8_t>& frame = frames[i];
    // A container's frame arrives on its bridge port (as the kernel's did).
    test::Mac src{};
    std::copy_n(f.bytes.begin() + 6, 6, src.begin());
    const docker_host::Peer* sender = docker_host::sending_peer(f.ingress, src);
    const std::string_view port = sender != nullptr ? sender->host_port : std::string_view();
    const auto iface = host.iface_id(port.empty() ? std::string_view(f.ingress) : port);
    EXPECT_TRUE(iface.has_value()) << f.ingress;
    PacketIn p;
    const ParseStatus st = parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet,
                                       iface.value_or(0), p.key);
    ts += 1'000'000;
    run.fates.push_back(Fate::DroppedByRouting);  // the kernel drops a frame that does not parse before any hook
    run.states.push_back(0);
    if (st != ParseStatus::Ok) continue;
    p.frame = frame.data();
    p.len = static_cast<uint32_t>(frame.size());
    p.in_iface = *iface;
    p.ts_ns = ts;
    p.csum_wrong = trust && !p.key.is_fragment() && !l4_checksum_ok(p.frame, p.len, p.key);
    in.push_back(p);
    slot.push_back(i);
    if (in.size() == burst) flush();
  }
  flush();
  WriteOptions wo;
  wo.counters = true;
  run.counters = write_iptables_save(pipeline->counters_ruleset(), wo);
  run.stats = pipeline->stats();
  run.trusted_bad = pipeline->conntrack().counters().trusted_bad_checksum;
  pipeline->conntrack().dump(run.conntrack, ts);
  return run;
}

// Whether every frame of a scenario that reaches conntrack has a right L4
// checksum (then trusting checksums, as --rx-csum trust does, cannot change
// what the kernel, which verified them, did).
bool checksums_valid(const Scenario& s) {
  for (const InjectedFrame& f : s.frames) {
    PacketKey k;
    if (parse_frame(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), LinkType::Ethernet, 0, k) !=
        ParseStatus::Ok)
      continue;
    if (!k.is_fragment() && !l4_checksum_ok(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), k)) return false;
  }
  return true;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

class PipelineScenario : public ::testing::TestWithParam<std::string> {};

Scenario scenario_named(const std::string& name) {
  for (Scenario& s : all_scenarios()) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no scenario " + name);
}

TEST_P(PipelineScenario, CountersEqualTheKernels) {
  const Scenario s = scenario_named(GetParam());
  const ModelRun model = run_model(s, /*fast_path=*/false);
  const std::string kernel_text = read_file(recorded_scenarios_dir() + "/" + s.name + ".kernel");
  const auto diff = diff_counters(parse_rule_counters(kernel_text, s.name + ".kernel"),
                                  parse_rule_counters(model.counters, "model"));
  EXPECT_TRUE(diff.empty()) << diff.size() << " differences:\n" << join(diff) << "model:\n" << model.counters;
}

// The conntrack table after the last frame, for the scenarios that record
// the kernel's: the same entries (tuples, state, flags), and each one's
// remaining timeout within a second of the kernel's (which ran in real time;
// the model's clock is the frames', 1 ms apart).
void expect_kernel_conntrack(const Scenario& s, const std::string& model) {
  const std::string kernel = read_file(recorded_scenarios_dir() + "/" + s.name + ".conntrack");
  EXPECT_EQ(join(recorded_conntrack_lines(model)), join(recorded_conntrack_lines(kernel))) << "model:\n" << model;
  const std::vector<long> m = conntrack_timeouts(model);
  const std::vector<long> k = conntrack_timeouts(kernel);
  ASSERT_EQ(m.size(), k.size());
  for (size_t i = 0; i < m.size(); ++i) EXPECT_LE(std::abs(m[i] - k[i]), 1) << "entry " << i << "\n" << model;
}

TEST_P(PipelineScenario, ConntrackTableEqualsTheKernels) {
  const Scenario s = scenario_named(GetParam());
  if (!s.conntrack_table) GTEST_SKIP() << "the kernel's table is not recorded for " << s.name;
  for (const bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast path on" : "fast path off");
    expect_kernel_conntrack(s, run_model(s, fast).conntrack);
  }
}

TEST_P(PipelineScenario, FastPathChangesNoCounter) {
  const Scenario s = scenario_named(GetParam());
  const ModelRun slow = run_model(s, false);
  const ModelRun fast = run_model(s, true);
  EXPECT_EQ(slow.counters, fast.counters);
  EXPECT_EQ(slow.fates, fast.fates);
  EXPECT_EQ(slow.states, fast.states);
  EXPECT_EQ(slow.conntrack, fast.conntrack);
  EXPECT_EQ(slow.stats.by_fate, fast.stats.by_fate);
  EXPECT_EQ(slow.stats.fast_path_packets, 0U);
  // Established flows do take the fast path (the seed case's connections and
  // the mixed traffic's data packets; the edge cases are one datagram per
  // flow, string rules look at every packet's payload, CONNMARK
  // --restore-mark changes every marked packet's mark, and recent lists
  // change with every packet that sets or updates them; the IP header
  // scenario is single-packet probes; the mangle targets rewrite packets of
  // every flow; sctp --chunk-types rules look at every SCTP packet; a
  // hashlimit, connlimit or set rule counts every forwarded packet; physdev
  // rules look at the ports of every packet that came in by a bridge, and
  // bridge_plain's TTL rules at every forwarded packet; without ip_forward
  // the only flow that lives is three packets long).
  if (s.name != "fragment_edge_cases" && s.name != "string_match" && s.name != "connmark_marks" &&
      s.name != "recent_lists" && s.name != "ip_header_matches" &&
      s.name != "mangle_targets" && s.name != "sctp_probes" && s.name != "hashlimit_limits" &&
      s.name != "connlimit_limits" && s.name != "ipset_sets" && s.name != "bridge_hairpin" &&
      s.name != "bridge_plain" && s.name != "bridge_no_forward") {
    EXPECT_GT(fast.stats.fast_path_packets, 0U);
    EXPECT_LT(fast.stats.walked_packets, slow.stats.walked_packets);
  }
}

// The state column of a .states file, or of the model: what mangle
// PREROUTING saw ("-" for a frame that never got there: dropped before any
// hook or in raw, or a fragment that did not complete its datagram).
std::string state_name(uint8_t bits) {
  if (bits & kCtInvalid) return "INVALID";
  if (bits & kCtUntracked) return "UNTRACKED";
  if (bits & kCtRelated) return "RELATED";
  if (bits & kCtEstablished) return "ESTABLISHED";
  if (bits & kCtNew) return "NEW";
  return "-";
}

TEST_P(PipelineScenario, FrameStatesEqualTheKernels) {
  const Scenario s = scenario_named(GetParam());
  const ModelRun model = run_model(s, /*fast_path=*/true);
  std::istringstream lines(read_file(recorded_scenarios_dir() + "/" + s.name + ".states"));
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    ASSERT_LT(i, model.states.size());
    std::istringstream fields(line);
    std::string index, kernel_state;
    fields >> index >> kernel_state;
    EXPECT_EQ(state_name(model.states[i]), kernel_state) << line;
  }
  EXPECT_EQ(i, s.frames.size());
}

INSTANTIATE_TEST_SUITE_P(Recorded, PipelineScenario,
                         ::testing::Values("seed_case_naive", "seed_case_fixed", "seed_case_post_dnat",
                                           "docker27_mixed", "docker28_mixed", "docker28_fragments", "string_match",
                                           "fragment_edge_cases", "connmark_marks", "recent_lists",
                                           "ip_header_matches", "mangle_targets", "sctp_probes",
                                           "hashlimit_limits", "connlimit_limits",
                                           "ipset_sets", "bridge_hairpin", "bridge_service", "bridge_no_forward",
                                           "bridge_plain", "ct_zones"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// ------------------------------------------------------- compiled classifiers

// Every scenario on every classifier (chain_boxes.h), fast path off and on:
// counters, fates and per-frame conntrack states identical to the linear
// walk's (which the tests above hold to the kernel's recording).
// Under the sanitizers (where CI runs the unit tests) the compiled comparison
// takes dtree alone: the linear walk runs inside it as the reference, and
// against the kernel in PipelineScenario; a release build of the unit tests
// (meson setup -Dtests=true) runs all four.
#if NFB_TEST_UNDER_ASAN
#define NFB_SCENARIO_ALGOS ::testing::Values(ChainAlgo::kDtree)
#else
#define NFB_SCENARIO_ALGOS NFB_TEST_ALGOS
#endif

class PipelineAlgo : public ::testing::TestWithParam<std::tuple<std::string, ChainAlgo>> {};

TEST_P(PipelineAlgo, EqualsTheLinearWalk) {
  const Scenario s = scenario_named(std::get<0>(GetParam()));
  const ChainAlgo algo = std::get<1>(GetParam());
  for (const bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast path on" : "fast path off");
    const ModelRun linear = run_model(s, fast);
    const ModelRun compiled = run_model(s, fast, algo);
    EXPECT_EQ(linear.counters, compiled.counters);
    EXPECT_EQ(linear.fates, compiled.fates);
    EXPECT_EQ(linear.states, compiled.states);
    EXPECT_EQ(linear.conntrack, compiled.conntrack);
    if (s.conntrack_table) expect_kernel_conntrack(s, compiled.conntrack);
    EXPECT_EQ(linear.stats.by_fate, compiled.stats.by_fate);
    EXPECT_EQ(linear.stats.walked_packets + linear.stats.fast_path_packets,
              compiled.stats.walked_packets + compiled.stats.fast_path_packets);
    // The compiled walk's FlowVary bits still let established flows take the
    // fast path.
    if (fast && s.name != "fragment_edge_cases" && s.name != "string_match" && s.name != "connmark_marks" &&
      s.name != "recent_lists" && s.name != "ip_header_matches" &&
      s.name != "mangle_targets" && s.name != "sctp_probes" && s.name != "hashlimit_limits" &&
      s.name != "connlimit_limits" && s.name != "ipset_sets" && s.name != "bridge_hairpin" &&
      s.name != "bridge_plain" && s.name != "bridge_no_forward") {
      EXPECT_GT(compiled.stats.fast_path_packets, 0U);
    }
  }
  // Bursts of 32 (every packet looked up before the first one runs) and
  // --rx-csum trust change nothing either, where the checksums are right;
  // where some are wrong, verify is what the kernel did, and trust lets
  // those through and counts them.
  const ModelRun one = run_model(s, true);
  const ModelRun bursts = run_model(s, true, algo, 32);
  EXPECT_EQ(one.counters, bursts.counters);
  EXPECT_EQ(one.fates, bursts.fates);
  EXPECT_EQ(one.states, bursts.states);
  const ModelRun trusted = run_model(s, true, algo, 32, true);
  if (checksums_valid(s)) {
    EXPECT_EQ(one.counters, trusted.counters);
    EXPECT_EQ(one.fates, trusted.fates);
    EXPECT_EQ(one.states, trusted.states);
    EXPECT_EQ(trusted.trusted_bad, 0U);
  } else {
    EXPECT_GT(trusted.trusted_bad, 0U);
  }
  // And the kernel's counters, directly.
  const ModelRun model = run_model(s, /*fast_path=*/true, algo);
  const std::string kernel_text = read_file(recorded_scenarios_dir() + "/" + s.name + ".kernel");
  const auto diff = diff_counters(parse_rule_counters(kernel_text, s.name + ".kernel"),
                                  parse_rule_counters(model.counters, "model"));
  EXPECT_TRUE(diff.empty()) << diff.size() << " differences:\n" << join(diff);
}

INSTANTIATE_TEST_SUITE_P(
    Recorded, PipelineAlgo,
    ::testing::Combine(::testing::Values("seed_case_naive", "seed_case_fixed", "seed_case_post_dnat",
                                         "docker27_mixed", "docker28_mixed", "docker28_fragments", "string_match",
                                         "fragment_edge_cases", "connmark_marks", "recent_lists",
                                           "ip_header_matches", "mangle_targets", "sctp_probes",
                                           "hashlimit_limits", "connlimit_limits",
                                           "ipset_sets", "bridge_hairpin", "bridge_service", "bridge_plain",
                                           "ct_zones"),
                       NFB_SCENARIO_ALGOS),
    [](const ::testing::TestParamInfo<std::tuple<std::string, ChainAlgo>>& p) {
      return std::get<0>(p.param) + "_" + std::string(chain_algo_name(std::get<1>(p.param)));
    });

// ---------------------------------------------------------------- fragments

struct Fed {
  std::vector<std::vector<uint8_t>> frames;  // kept alive: PacketIn points into them
  std::vector<PacketIn> in;
};

// The frames of a scenario as PacketIn, 1 ms apart, ready for process().
Fed feed(const std::vector<InjectedFrame>& frames, const HostModel& host, uint64_t ts0 = 1'000'000'000'000ULL) {
  Fed fed;
  fed.frames.reserve(frames.size());
  for (const InjectedFrame& f : frames) {
    fed.frames.push_back(f.bytes);
    PacketIn in;
    const uint16_t iface = host.iface_id(f.ingress).value();
    std::vector<uint8_t>& b = fed.frames.back();
    EXPECT_EQ(parse_frame(b.data(), static_cast<uint32_t>(b.size()), LinkType::Ethernet, iface, in.key),
              ParseStatus::Ok);
    in.frame = b.data();
    in.len = static_cast<uint32_t>(b.size());
    in.in_iface = iface;
    in.ts_ns = ts0 + fed.in.size() * 1'000'000ULL;
    fed.in.push_back(in);
  }
  return fed;
}

uint64_t fate_count(const PipelineStats& st, Fate f) { return st.by_fate[static_cast<size_t>(f)]; }

// A station learned from an ARP reply (before its first IP packet, as the
// kernel's bridge learns it): a frame to its MAC is then bridged (TTL kept,
// out docker0 by its port); to a MAC never seen it is taken as for the host
// and routed (TTL decremented).
// One Ethernet frame (it must parse) arriving on `in` at time 1, through
// `pipeline`; `p` is left as the pipeline left the packet.
PacketOut process_frame(Pipeline& pipeline, test::Bytes& frame, uint16_t in, PacketIn& p) {
  EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, in, p.key),
            ParseStatus::Ok);
  p.frame = frame.data();
  p.len = static_cast<uint32_t>(frame.size());
  p.in_iface = in;
  p.ts_ns = 1;
  PacketOut out;
  pipeline.process(std::span(&p, 1), std::span(&out, 1));
  return out;
}

// A bridge's own nf_call_iptables option does what the sysctl does, for
// that bridge (br_netfilter tests either).
TEST(PipelineBridges, ABridgesOwnNfCallIptablesActsAsTheSysctl) {
  for (const char* name : {"bridge_hairpin", "bridge_service"}) {
    SCOPED_TRACE(name);
    const Scenario s = scenario_named(name);
    const ModelRun model = run_model(s, true, ChainAlgo::kLinear, 1, false, /*per_bridge=*/true);
    const std::string kernel_text = read_file(recorded_scenarios_dir() + "/" + s.name + ".kernel");
    const auto diff = diff_counters(parse_rule_counters(kernel_text, s.name + ".kernel"),
                                    parse_rule_counters(model.counters, "model"));
    EXPECT_TRUE(diff.empty()) << diff.size() << " differences:\n" << join(diff);
  }
}

TEST(PipelineBridges, AnArpReplyTeachesTheBridgeAStation) {
  const HostModel host = default_docker_host();
  const Ruleset rules = read_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                                           ":OUTPUT ACCEPT [0:0]\n-A FORWARD -m physdev --physdev-out vethc7d24f3\n"
                                           "COMMIT\n", "t");
  const uint16_t redis_port = host.iface_id("veth5b0e9a1").value();
  const uint16_t web_port = host.iface_id("vethc7d24f3").value();
  const uint16_t docker0 = host.iface_id("docker0").value();
  const test::Mac redis_mac{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
  const test::Mac web_mac{0x02, 0x42, 0xac, 0x11, 0x00, 0x03};
  // web answers an ARP request: who-has 172.17.0.3, from 02:42:ac:11:00:03.
  test::Bytes arp;
  arp.insert(arp.end(), {0, 1, 8, 0, 6, 4, 0, 2});
  arp.insert(arp.end(), web_mac.begin(), web_mac.end());
  arp.insert(arp.end(), {172, 17, 0, 3});
  arp.insert(arp.end(), redis_mac.begin(), redis_mac.end());
  arp.insert(arp.end(), {172, 17, 0, 2});
  const test::Bytes arp_frame = test::ethernet({.dst = redis_mac, .src = web_mac, .ethertype = 0x0806}, arp);
  const auto syn_to = [&](const test::Mac& dst_mac) {
    return test::ethernet({.dst = dst_mac, .src = redis_mac},
                          test::ipv4({.src = test::ip4(172, 17, 0, 2), .dst = test::ip4(172, 17, 0, 3), .proto = kProtoTcp,
                                      .ttl = 64},
                                     test::tcp({.sport = 40000, .dport = 80, .flags = tcp_flag::kSyn})));
  };
  for (const bool learned : {false, true}) {
    SCOPED_TRACE(learned ? "after the ARP reply" : "never seen");
    auto pipeline = Pipeline::build(rules, host);
    if (learned) {
      const L2Frame f{arp_frame.data(), static_cast<uint32_t>(arp_frame.size()), web_port};
      pipeline->learn_stations(std::span(&f, 1));
    }
    test::Bytes frame = syn_to(web_mac);
    PacketIn p;
    const PacketOut out = process_frame(*pipeline, frame, redis_port, p);
    EXPECT_EQ(out.fate, Fate::Forwarded);
    EXPECT_EQ(out.out_iface, docker0);
    EXPECT_EQ(p.in_iface, docker0);  // the port's packet is the bridge's
    EXPECT_EQ(p.key.ttl, learned ? 64 : 63);
    const std::string counters = write_iptables_save(pipeline->counters_ruleset(), WriteOptions{.counters = true});
    EXPECT_NE(counters.find(learned ? "[1:40] -A FORWARD -m physdev" : "[0:0] -A FORWARD -m physdev"),
              std::string::npos)
        << counters;
  }
}

// A bridged DNAT to a station the bridge never saw: from a known port it is
// flooded (FORWARD once per other port; the in port too in hairpin mode);
// captured on the bridge itself (port unknown) it is walked once.
TEST(PipelineBridges, UnknownStationsAreFloodedFromAKnownPortOnly) {
  const Ruleset rules = read_iptables_save(
      "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
      "-A PREROUTING -d 10.96.0.10/32 -p tcp -j DNAT --to-destination 172.17.0.3:8080\nCOMMIT\n"
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A FORWARD -m physdev --physdev-out veth5b0e9a1\n-A FORWARD -m physdev --physdev-out vethc7d24f3\n"
      "COMMIT\n",
      "t");
  const test::Mac redis_mac{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
  const test::Mac docker0_mac{0x02, 0x42, 0x9a, 0x1c, 0x00, 0x01};
  struct Case {
    const char* ingress;
    bool hairpin;
    const char* to_redis;  // the FORWARD counters
    const char* to_web;
  };
  for (const Case c : {Case{"veth5b0e9a1", false, "[0:0]", "[1:40]"}, Case{"veth5b0e9a1", true, "[1:40]", "[1:40]"},
                       Case{"docker0", true, "[0:0]", "[0:0]"}}) {
    SCOPED_TRACE(std::string(c.ingress) + (c.hairpin ? " hairpin" : ""));
    HostSpec spec = default_docker_host_spec();
    for (Interface& ifc : spec.interfaces) {
      if (ifc.master != kNoIface) ifc.hairpin = c.hairpin;
    }
    const HostModel host = HostModel::build(spec, "t");
    auto pipeline = Pipeline::build(rules, host);
    test::Bytes frame = test::ethernet(
        {.dst = docker0_mac, .src = redis_mac},
        test::ipv4({.src = test::ip4(172, 17, 0, 2), .dst = test::ip4(10, 96, 0, 10), .proto = kProtoTcp, .ttl = 64},
                   test::tcp({.sport = 40000, .dport = 80, .flags = tcp_flag::kSyn})));
    PacketIn p;
    const PacketOut out = process_frame(*pipeline, frame, host.iface_id(c.ingress).value(), p);
    EXPECT_EQ(out.fate, Fate::Forwarded);
    EXPECT_EQ(p.key.dst_ip, test::ip4(172, 17, 0, 3));
    EXPECT_EQ(p.key.ttl, 64);  // bridged
    const std::string counters = write_iptables_save(pipeline->counters_ruleset(), WriteOptions{.counters = true});
    EXPECT_NE(counters.find(std::string(c.to_redis) + " -A FORWARD -m physdev --physdev-out veth5b0e9a1"),
              std::string::npos)
        << counters;
    EXPECT_NE(counters.find(std::string(c.to_web) + " -A FORWARD -m physdev --physdev-out vethc7d24f3"),
              std::string::npos)
        << counters;
  }
}

TEST(PipelineFragments, EveryFragmentIsInExactlyOneFateBucket) {
  const HostModel host = default_docker_host();
  const Scenario s = docker28_fragments();
  auto pipeline = Pipeline::build(read_iptables_save(s.ruleset, s.name), host);
  Fed fed = feed(s.frames, host);
  std::vector<PacketOut> out(fed.in.size());
  for (size_t i = 0; i < fed.in.size(); ++i) pipeline->process(std::span(&fed.in[i], 1), std::span(&out[i], 1));
  const PipelineStats& st = pipeline->stats();
  EXPECT_EQ(st.packets(), s.frames.size());
  // Still held at the end: the last piece of the overlapping set (a datagram
  // of its own), the lone first fragment, and the first and last fragments
  // of the datagram missing its middle.
  EXPECT_EQ(fate_count(st, Fate::FragmentHeld), 4U);
  // Dropped by reassembly: the two overlapping fragments, the duplicate.
  EXPECT_EQ(fate_count(st, Fate::DroppedFragment), 3U);
  EXPECT_EQ(out[23].defrag_drop, DefragDrop::Overlap);
  EXPECT_EQ(out[32].defrag_drop, DefragDrop::Duplicate);
  // The 2 fragments straight to redis's address share the raw DROP.
  EXPECT_EQ(out[35].fate, Fate::DroppedByRule);
  EXPECT_EQ(out[34].fate, Fate::FragmentHeld);
  EXPECT_EQ(fate_count(st, Fate::DroppedByRule), 2U);
  const DefragStats& ds = pipeline->defrag().stats();
  EXPECT_EQ(ds.datagrams, 11U);
  EXPECT_EQ(ds.held, 4U);
  EXPECT_EQ(ds.fragments, 43U - 10U);  // 10 frames are whole: 9 TCP segments, 1 DNS answer
  // The completing fragment carries the datagram: its fate, its fragments.
  EXPECT_EQ(out[4].fragments, 3U);
  EXPECT_EQ(out[4].fate, Fate::Forwarded);
  EXPECT_EQ(state_name(out[4].ct_state), "ESTABLISHED");
  EXPECT_EQ(out[3].fate, Fate::FragmentHeld);
  EXPECT_EQ(out[3].ct_state, 0U);
  EXPECT_EQ(out[38].fate, Fate::Delivered);  // the large ping
  uint64_t emitted = 0;
  for (size_t f = 0; f < kFateCount; ++f) {
    if (fate_emitted(static_cast<Fate>(f))) emitted += st.by_fate[f];
  }
  EXPECT_EQ(emitted, s.frames.size() - 4 - 3 - 2);
}

TEST(PipelineFragments, CompletingPacketLeavesWithTheRewrittenDatagram) {
  // The first query of docker28_fragments: 2 fragments to 198.51.100.1:5353,
  // DNAT'd to 172.18.0.2:53 and forwarded; both in one burst.
  const HostModel host = default_docker_host();
  const Scenario s = docker28_fragments();
  auto pipeline = Pipeline::build(read_iptables_save(s.ruleset, s.name), host);
  Fed fed = feed({s.frames[0], s.frames[1]}, host);
  const uint16_t total = static_cast<uint16_t>(fed.in[0].key.l3_len - 20 + fed.in[1].key.l3_len);
  std::array<PacketOut, 2> out;
  pipeline->process(fed.in, out);
  ASSERT_EQ(out[1].fate, Fate::Forwarded);
  EXPECT_EQ(out[1].out_iface, host.iface_id("br-5c0a8c6e1d2f").value());
  const PacketIn& d = fed.in[1];
  EXPECT_EQ(d.key.l3_len, total);
  EXPECT_EQ(d.len, 14U + total);
  EXPECT_FALSE(d.key.is_fragment());
  EXPECT_EQ(d.key.dst_ip, docker_host::kDnsIp);
  EXPECT_EQ(d.key.dst_port, 53U);
  EXPECT_EQ(d.key.ttl, 56U);  // 57, decremented by forwarding
  // The bytes say the same, with valid checksums: parse them again.
  PacketKey again;
  ASSERT_EQ(parse_frame(d.frame, d.len, LinkType::Ethernet, d.key.ifindex, again), ParseStatus::Ok);
  EXPECT_EQ(again.dst_ip, docker_host::kDnsIp);
  EXPECT_EQ(again.dst_port, 53U);
  EXPECT_EQ(again.ttl, 56U);
  EXPECT_EQ(again.frag, 0U);
  EXPECT_TRUE(l4_checksum_ok(d.frame, d.len, again));
  // The held fragment's own buffer is untouched.
  EXPECT_EQ(fed.in[0].frame, fed.frames[0].data());
}

TEST(PipelineFragments, OutputBuffersReusedWithinOneCallAreNulled) {
  const HostModel host = default_docker_host();
  const Scenario s = docker28_fragments();
  PipelineConfig config;
  config.defrag.output_slots = 1;
  auto pipeline = Pipeline::build(read_iptables_save(s.ruleset, s.name), host, config);
  // Two datagrams complete in one call (frames 0-1 and 5-7).
  Fed fed = feed({s.frames[0], s.frames[1], s.frames[5], s.frames[6], s.frames[7]}, host);
  std::array<PacketOut, 5> out;
  pipeline->process(fed.in, out);
  EXPECT_EQ(out[1].fragments, 2U);
  EXPECT_EQ(out[4].fragments, 3U);
  EXPECT_EQ(fed.in[1].frame, nullptr);
  EXPECT_EQ(fed.in[1].len, 0U);
  ASSERT_NE(fed.in[4].frame, nullptr);
  EXPECT_EQ(fed.in[4].len, 14U + fed.in[4].key.l3_len);
}

TEST(PipelineFragments, HeldFragmentsTimeOutOnPacketTimestamps) {
  const HostModel host = default_docker_host();
  const Scenario s = docker28_fragments();
  auto pipeline = Pipeline::build(read_iptables_save(s.ruleset, s.name), host);
  // The lone first fragment (27), then, 30 s later, an unrelated whole packet.
  Fed fed = feed({s.frames[27], s.frames[9]}, host);
  fed.in[1].ts_ns = fed.in[0].ts_ns + 30'000'000'000ULL;
  std::array<PacketOut, 2> out;
  pipeline->process(std::span(fed.in.data(), 1), std::span(out.data(), 1));
  EXPECT_EQ(fate_count(pipeline->stats(), Fate::FragmentHeld), 1U);
  pipeline->process(std::span(fed.in.data() + 1, 1), std::span(out.data() + 1, 1));
  EXPECT_EQ(fate_count(pipeline->stats(), Fate::FragmentHeld), 0U);
  EXPECT_EQ(fate_count(pipeline->stats(), Fate::DroppedFragment), 1U);
  EXPECT_EQ(pipeline->defrag().stats().dropped[static_cast<size_t>(DefragDrop::Timeout)], 1U);
  EXPECT_EQ(pipeline->stats().packets(), 2U);
}

// The question the project was born from, answered by the model alone.
TEST(PipelineSeedCase, NaiveRuleCountsNothingAndTheFixBlocks) {
  const ModelRun naive = run_model(seed_case_naive(), true);
  EXPECT_NE(naive.counters.find("[0:0] -A DOCKER-USER -p tcp -m tcp --dport 10000 -j DROP\n"), std::string::npos)
      << naive.counters;
  const ModelRun fixed = run_model(seed_case_fixed(), true);
  const size_t at = fixed.counters.find(" -A DOCKER-USER -p tcp -m conntrack --ctorigdstport 10000");
  ASSERT_NE(at, std::string::npos) << fixed.counters;
  const size_t open = fixed.counters.rfind('[', at);
  EXPECT_NE(fixed.counters.substr(open, at - open), "[0:0]") << fixed.counters;
}

// ------------------------------------------------------------- fast path key

// A later packet of a known flow that comes in on another interface must not
// reuse the path recorded for the first interface: `-i` rules decide again.
// raw decides on the interface too, before conntrack (its part of a path is
// replayed before the lookup).
TEST(PipelineFastPath, AnotherIngressInterfaceWalksAgain) {
  const HostModel host = default_docker_host();
  const Ruleset rules = read_iptables_save(
      "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A PREROUTING -i docker0 -p udp --dport 53 -j DROP\nCOMMIT\n"
      "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -i eth0 -p udp -j ACCEPT\nCOMMIT\n",
      "iface-test");
  using namespace nfb::test;
  const auto frame = [] {
    return ethernet({.dst = kMacA, .src = kMacB},
                    ipv4({.src = ip4(203, 0, 113, 5), .dst = ip4(198, 51, 100, 1), .proto = kProtoUdp},
                         udp({.sport = 5000, .dport = 53, .payload = pattern(20)})));
  };
  std::vector<InjectedFrame> frames{{"eth0", frame()}, {"eth0", frame()}, {"eth0", frame()},
                                    {"docker0", frame()}, {"eth0", frame()}};
  for (const bool fast_path : {false, true}) {
    SCOPED_TRACE(fast_path ? "fast path on" : "fast path off");
    PipelineConfig config;
    config.fast_path = fast_path;
    auto pipeline = Pipeline::build(rules, host, config);
    Fed fed = feed(frames, host);
    std::vector<PacketOut> out(fed.in.size());
    for (size_t i = 0; i < fed.in.size(); ++i) pipeline->process(std::span(&fed.in[i], 1), std::span(&out[i], 1));
    EXPECT_EQ(out[0].fate, Fate::Delivered);
    EXPECT_EQ(out[1].fate, Fate::Delivered);
    EXPECT_EQ(out[2].fate, Fate::Delivered);
    EXPECT_EQ(out[3].fate, Fate::DroppedByRule);  // raw: -i docker0 --dport 53 -j DROP
    EXPECT_EQ(out[4].fate, Fate::Delivered);
    if (fast_path) {
      EXPECT_TRUE(out[2].fast_path);
      EXPECT_TRUE(out[4].fast_path);
      // The first packet walks nat, the second records its path.
      EXPECT_EQ(pipeline->stats().fast_path_packets, 2U);
    }
  }
  // Without the raw rule, filter's `-i eth0` decides: the docker0 packet
  // falls to INPUT's DROP policy.
  const Ruleset filter_only = read_iptables_save(
      "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -i eth0 -p udp -j ACCEPT\nCOMMIT\n",
      "iface-test");
  auto pipeline = Pipeline::build(filter_only, host, {});
  Fed fed = feed(frames, host);
  std::vector<PacketOut> out(fed.in.size());
  for (size_t i = 0; i < fed.in.size(); ++i) pipeline->process(std::span(&fed.in[i], 1), std::span(&out[i], 1));
  EXPECT_EQ(out[3].fate, Fate::DroppedByPolicy);
  EXPECT_EQ(out[4].fate, Fate::Delivered);
  EXPECT_TRUE(out[4].fast_path);
}

}  // namespace
}  // namespace nfb
