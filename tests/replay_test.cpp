// The replay loop (pcap/replay.h) on the bundled Docker captures: loops,
// streaming against preloading, the emitted and dropped sinks read back, and
// bad input -- every frame read is emitted, dropped or invalid, always.
#include "pcap/replay.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/load_error.h"
#include "pcap/capture_reader.h"
#include "pcap/capture_writer.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

struct ReplayRun {
  ReplayReport report;
  std::string counters;  // iptables-save -c after the run
};

ReplayRun replay(const std::string& rules_file, ReplayOptions o, bool fast_path = true) {
  const Ruleset rules = load_iptables_save_file(source_root() + "/data/rulesets/" + rules_file);
  const HostModel host = default_docker_host();
  PipelineConfig config;
  config.fast_path = fast_path;
  auto pipeline = Pipeline::build(rules, host, config);
  ReplayRun run;
  run.report = run_replay(*pipeline, host, o);
  WriteOptions wo;
  wo.counters = true;
  run.counters = write_iptables_save(pipeline->counters_ruleset(), wo);
  return run;
}

std::string capture(const std::string& name) { return source_root() + "/data/captures/" + name; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Replay, LoopsReplayTheCaptureLaterInTime) {
  ReplayOptions o;
  o.capture = capture("docker-mixed.pcapng");
  const ReplayRun one = replay("docker-28.save", o);
  ASSERT_TRUE(one.report.error.empty()) << one.report.error;
  ASSERT_GT(one.report.packets, 50U);
  EXPECT_TRUE(one.report.balanced());
  EXPECT_EQ(one.report.loops, 1U);
  o.loops = 3;
  const ReplayRun three = replay("docker-28.save", o);
  EXPECT_EQ(three.report.packets, 3 * one.report.packets);
  EXPECT_EQ(three.report.bytes, 3 * one.report.bytes);
  EXPECT_EQ(three.report.loops, 3U);
  EXPECT_TRUE(three.report.balanced());
  EXPECT_EQ(three.report.invalid, 3 * one.report.invalid);
  // Later loops start after the first ends: timestamps only grow.
  EXPECT_GT(three.report.last_ts_ns - three.report.first_ts_ns,
            3 * (one.report.last_ts_ns - one.report.first_ts_ns));
  EXPECT_GT(three.report.flows, one.report.flows);
  EXPECT_GT(one.report.l1_bytes, one.report.bytes + 20 * one.report.packets);
  EXPECT_NE(format_replay_report(three.report).find("every packet accounted for"), std::string::npos);
}

TEST(Replay, StreamingGivesWhatPreloadingGives) {
  for (const char* name : {"docker-mixed.pcapng", "docker-host-eth0.pcap"}) {
    ReplayOptions o;
    o.capture = capture(name);
    o.loops = 2;
    const ReplayRun pre = replay("docker-28.save", o);
    o.mode = CaptureMode::kStream;
    const ReplayRun stream = replay("docker-28.save", o);
    EXPECT_EQ(stream.report.packets, pre.report.packets) << name;
    EXPECT_EQ(stream.report.emitted, pre.report.emitted) << name;
    EXPECT_EQ(stream.report.dropped, pre.report.dropped) << name;
    EXPECT_EQ(stream.report.invalid, pre.report.invalid) << name;
    EXPECT_EQ(stream.report.pipeline.by_fate, pre.report.pipeline.by_fate) << name;
    EXPECT_EQ(stream.counters, pre.counters) << name;
  }
  // A streamed reader says so; .xz is always preloaded.
  EXPECT_TRUE(CaptureReader(capture("docker-mixed.pcapng"), CaptureMode::kStream).streaming());
  EXPECT_FALSE(CaptureReader(capture("docker-mixed.pcapng")).streaming());
}

TEST(Replay, SinksHoldTheEmittedAndTheDroppedFrames) {
  const std::string dir = ::testing::TempDir();
  ReplayOptions o;
  o.capture = capture("seed-case.pcapng");
  o.emitted_file = dir + "/replay-emitted.pcapng";
  o.dropped_file = dir + "/replay-dropped.pcapng";
  const ReplayRun r = replay("docker-28-seed-fixed.save", o);
  ASSERT_TRUE(r.report.balanced());
  ASSERT_GT(r.report.emitted, 0U);
  ASSERT_GT(r.report.dropped, 0U);
  EXPECT_EQ(r.report.emitted_written, r.report.emitted);
  EXPECT_EQ(r.report.dropped_written, r.report.dropped + r.report.invalid);

  CaptureReader emitted(o.emitted_file);
  std::vector<CaptureFrame> frames(64);
  uint64_t n = 0;
  while (size_t k = emitted.next_burst(frames)) n += k;
  EXPECT_EQ(n, r.report.emitted);
  // One interface block per egress interface, named after it.
  ASSERT_FALSE(emitted.interfaces().empty());
  const HostModel host = default_docker_host();
  for (const CaptureInterface& ci : emitted.interfaces()) {
    EXPECT_TRUE(ci.name == "local" || host.iface_id(ci.name).has_value()) << ci.name;
  }

  CaptureReader dropped(o.dropped_file);
  n = 0;
  while (size_t k = dropped.next_burst(frames)) n += k;
  EXPECT_EQ(n, r.report.dropped);
  // Each dropped frame says why (the fixed DOCKER-USER rule drops them).
  EXPECT_NE(read_bytes(o.dropped_file).find("dropped_by_rule"), std::string::npos);
  ASSERT_EQ(dropped.interfaces().size(), 1U);
  EXPECT_EQ(dropped.interfaces()[0].name, "eth0");
}

// A classic pcap built by hand: frames, then whatever bad records a case needs.
struct PcapBytes {
  std::string bytes;
  void u32(uint32_t v) { bytes.append(reinterpret_cast<const char*>(&v), 4); }
  void u16(uint16_t v) { bytes.append(reinterpret_cast<const char*>(&v), 2); }
  explicit PcapBytes(uint32_t link_type = 1, uint32_t snaplen = 65535) {
    u32(0xa1b2c3d4);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(snaplen);
    u32(link_type);
  }
  void record(const std::vector<uint8_t>& frame, uint32_t wirelen, uint32_t sec) {
    u32(sec);
    u32(0);
    u32(static_cast<uint32_t>(frame.size()));
    u32(wirelen);
    bytes.append(reinterpret_cast<const char*>(frame.data()), frame.size());
  }
  std::string save(const std::string& name) const {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
};

std::vector<uint8_t> udp_frame() {
  using namespace test;
  Ipv4Spec ip;
  ip.src = ip4(203, 0, 113, 5);
  ip.dst = ip4(198, 51, 100, 1);
  ip.proto = kProtoUdp;
  UdpSpec u;
  u.payload = pattern(20);
  return ethernet({.dst = kMacA, .src = kMacB}, ipv4(ip, udp(u)));
}

TEST(Replay, BadInputIsCountedOrNamedNeverLost) {
  const std::vector<uint8_t> good = udp_frame();
  // Zero-length records and frames cut by snaplen are invalid frames.
  PcapBytes p;
  p.record(good, static_cast<uint32_t>(good.size()), 1);
  p.record({}, 0, 2);
  p.record(std::vector<uint8_t>(good.begin(), good.begin() + 30), static_cast<uint32_t>(good.size()), 3);
  p.record(good, static_cast<uint32_t>(good.size()), 4);
  ReplayOptions o;
  o.capture = p.save("replay-bad-records.pcap");
  ReplayRun r = replay("docker-28.save", o);
  EXPECT_TRUE(r.report.error.empty()) << r.report.error;
  EXPECT_EQ(r.report.packets, 4U);
  EXPECT_EQ(r.report.invalid, 2U);
  EXPECT_TRUE(r.report.balanced());

  // A truncated file: the frames before the cut are replayed and counted,
  // and the error names the file and the record's offset.
  PcapBytes t;
  t.record(good, static_cast<uint32_t>(good.size()), 1);
  t.record(good, static_cast<uint32_t>(good.size()), 2);
  const size_t second = 24 + 16 + good.size();
  t.bytes.resize(t.bytes.size() - 10);
  o.capture = t.save("replay-truncated.pcap");
  r = replay("docker-28.save", o);
  EXPECT_EQ(r.report.packets, 1U);
  EXPECT_TRUE(r.report.balanced());
  EXPECT_NE(r.report.error.find("replay-truncated.pcap"), std::string::npos) << r.report.error;
  EXPECT_NE(r.report.error.find(std::to_string(second)), std::string::npos) << r.report.error;
  EXPECT_NE(format_replay_report(r.report).find("Stopped early"), std::string::npos);

  // An unknown link type: every frame invalid, by that reason.
  PcapBytes u(/*link_type=*/147);
  u.record(good, static_cast<uint32_t>(good.size()), 1);
  o.capture = u.save("replay-link147.pcap");
  r = replay("docker-28.save", o);
  EXPECT_EQ(r.report.invalid, 1U);
  EXPECT_EQ(r.report.parse.count(ParseStatus::UnsupportedLinkType), 1U);
  EXPECT_TRUE(r.report.balanced());

  // Bad magic: refused up front, naming the file and offset 0.
  PcapBytes m;
  m.bytes[0] = 'X';
  o.capture = m.save("replay-magic.pcap");
  try {
    replay("docker-28.save", o);
    ADD_FAILURE() << "bad magic was accepted";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("replay-magic.pcap"), std::string::npos) << e.what();
  }
  o.loops = 0;
  EXPECT_THROW(replay("docker-28.save", o), std::invalid_argument);
}

}  // namespace
}  // namespace nfb
