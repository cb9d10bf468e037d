// The established path (Pipeline's fast path: staged lookups, track_fast,
// lazy counters, precomputed rewrites) against the per-packet walk, on long
// random traffic: generated Docker-host connections (pcap/traffic_gen.h)
// disturbed at random -- retransmissions, lost packets, wrong checksums,
// TTL 1, RST and FIN in the middle of a flow, packets out of window, time
// jumps -- through docker-28 with user rules that test ctstate, ctstatus,
// TCP flags and lengths, so that recorded paths are made, kept across
// ASSURED, and dropped again. Two pipelines get the same frames: one with
// the fast path off (every packet walks, every counter counted at once), one
// with it on; the second's counters are read at random points between
// bursts and must equal the first's every time, with the same fate and
// ctstate for every packet and the same frames out. For every classifier,
// and for both --rx-csum modes.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "netfilter/pipeline.h"
#include "packet/checksum.h"
#include "pcap/capture_reader.h"
#include "pcap/traffic_gen.h"
#include "rules/iptables_save.h"
#include "tests/support/sanitizer.h"

namespace nfb {
namespace {

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

// docker-28 with user rules in front that look at what changes within a
// flow and what the fast path keys on.
Ruleset ruleset() {
  std::string text;
  {
    const Ruleset base = load_iptables_save_file(source_root() + "/data/rulesets/docker-28.save");
    text = write_iptables_save(base, {});
  }
  const std::string user =
      "-A DOCKER-USER -i eth0 -p tcp -m conntrack --ctstatus ASSURED -m tcp --dport 10000\n"
      "-A DOCKER-USER -i docker0 -m conntrack --ctstate ESTABLISHED\n"
      "-A DOCKER-USER -i br-5c0a8c6e1d2f -p udp -m length --length 0:200\n"
      "-A DOCKER-USER -o eth0 -p tcp -m tcp --tcp-flags SYN,ACK,FIN ACK -m conntrack --ctstate ESTABLISHED\n"
      "-A DOCKER-USER -p tcp -m tcp --dport 10000 -m conntrack --ctstate NEW\n";
  const std::string anchor = "-A FORWARD -j DOCKER-USER\n";
  const size_t at = text.find(anchor);
  if (at == std::string::npos) throw std::runtime_error("docker-28.save has no DOCKER-USER jump");
  text.insert(at + anchor.size(), user);
  return read_iptables_save(text, "fast_path_test.save");
}

struct Frame {
  std::vector<uint8_t> bytes;
  uint16_t iface = 0;
  uint64_t ts = 0;
};

// The generated traffic, disturbed.
std::vector<Frame> traffic(const Ruleset& rules, const HostModel& host, uint64_t seed) {
  TrafficSpec spec;
  spec.packets = 60000;
  spec.flows = 300;
  spec.new_share = 0.03;
  spec.seed = seed;
  const std::string path = ::testing::TempDir() + "/fast-path-" + std::to_string(seed) + ".pcapng";
  generate_traffic(rules, host, spec, path);
  CaptureReader reader(path);
  std::vector<Frame> out;
  std::mt19937_64 rng(seed);
  uint64_t shift = 0;
  std::array<CaptureFrame, 64> burst;
  for (size_t n = 0; (n = reader.next_burst(burst)) != 0;) {
    for (size_t i = 0; i < n; ++i) {
      const CaptureFrame& f = burst[i];
      Frame fr;
      fr.bytes.assign(f.data, f.data + f.caplen);
      fr.iface = *host.iface_id(reader.interfaces()[f.iface].name);
      const uint32_t roll = static_cast<uint32_t>(rng() % 1000);
      if (roll < 15) continue;  // lost
      if (roll < 25) shift += (rng() % 3 + 1) * 1'000'000'000ULL * (rng() % 2 == 0 ? 1U : 200U);  // time jumps
      fr.ts = f.ts_ns + shift;
      const size_t ip = 14;
      const bool tcp = fr.bytes.size() >= ip + 40 && fr.bytes[ip + 9] == 6;
      if (roll >= 25 && roll < 35) {
        fr.bytes[fr.bytes.size() - 1] ^= 0x5a;  // a payload byte: the L4 checksum is now wrong
      } else if (roll >= 35 && roll < 40) {
        fr.bytes[ip + 8] = 1;  // TTL 1 (header checksum fixed below)
      } else if (roll >= 40 && roll < 46 && tcp) {
        fr.bytes[ip + 20 + 13] = rng() % 2 == 0 ? 0x14 : 0x11;  // RST+ACK or FIN+ACK mid-flow
      } else if (roll >= 46 && roll < 52 && tcp) {
        const uint32_t seq = (uint32_t{fr.bytes[ip + 24]} << 24) + static_cast<uint32_t>(rng() % 0x7fffffff);
        for (size_t b = 0; b < 4; ++b) fr.bytes[ip + 24 + b] = static_cast<uint8_t>(seq >> (24 - 8 * b));
      }
      if (roll >= 35 && roll < 40) {
        // The IPv4 header checksum, recomputed.
        fr.bytes[ip + 10] = fr.bytes[ip + 11] = 0;
        uint32_t sum = 0;
        for (size_t b = 0; b < 20; b += 2) sum += uint32_t{fr.bytes[ip + b]} << 8 | fr.bytes[ip + b + 1];
        while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
        fr.bytes[ip + 10] = static_cast<uint8_t>(~sum >> 8);
        fr.bytes[ip + 11] = static_cast<uint8_t>(~sum);
      }
      if (roll >= 40 && roll < 52 && tcp) {
        // The TCP checksum, recomputed, so the change itself is what conntrack judges.
        const size_t l4 = ip + 20;
        const size_t l4_len = ((uint32_t{fr.bytes[ip + 2]} << 8) | fr.bytes[ip + 3]) - 20;
        fr.bytes[l4 + 16] = fr.bytes[l4 + 17] = 0;
        uint64_t sum = 6 + l4_len;
        for (size_t b = 12; b < 20; b += 2) sum += uint32_t{fr.bytes[ip + b]} << 8 | fr.bytes[ip + b + 1];
        for (size_t b = 0; b < l4_len; b += 2)
          sum += uint32_t{fr.bytes[l4 + b]} << 8 | (b + 1 < l4_len ? fr.bytes[l4 + b + 1] : 0);
        while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
        fr.bytes[l4 + 16] = static_cast<uint8_t>(~sum >> 8);
        fr.bytes[l4 + 17] = static_cast<uint8_t>(~sum);
      }
      out.push_back(fr);
      if (roll >= 990) out.push_back(out.back());  // retransmitted
    }
  }
  return out;
}

class FastPath : public ::testing::TestWithParam<std::tuple<ChainAlgo, bool>> {};

TEST_P(FastPath, LazyCountersEqualPerPacketCountersWithInterleavedReads) {
  const auto [algo, trust] = GetParam();
  const HostModel host = default_docker_host();
  const Ruleset rules = ruleset();
  const std::vector<Frame> frames = traffic(rules, host, 5);
  PipelineConfig walk_all;
  walk_all.algo = algo;
  walk_all.fast_path = false;
  walk_all.rx_csum_trust = trust;
  walk_all.conntrack.max_entries = 2048;  // full now and then: early drop
  PipelineConfig fast = walk_all;
  fast.fast_path = true;
  auto slow_p = Pipeline::build(rules, host, walk_all);
  auto fast_p = Pipeline::build(rules, host, fast);
  std::vector<std::vector<uint8_t>> a(frames.size());
  std::vector<std::vector<uint8_t>> b(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) a[i] = b[i] = frames[i].bytes;

  std::mt19937 rng(17);
  size_t reads = 0;
  for (size_t at = 0; at < frames.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 64, frames.size() - at);
    std::vector<PacketIn> in_a;
    std::vector<PacketIn> in_b;
    for (size_t i = at; i < at + n; ++i) {
      PacketIn p;
      if (parse_frame(a[i].data(), static_cast<uint32_t>(a[i].size()), LinkType::Ethernet, frames[i].iface, p.key) !=
          ParseStatus::Ok)
        continue;
      p.len = static_cast<uint32_t>(a[i].size());
      p.in_iface = frames[i].iface;
      p.ts_ns = frames[i].ts;
      // As the replay marks them under --rx-csum trust: counted when let through.
      p.csum_wrong = trust && !p.key.is_fragment() && !l4_checksum_ok(a[i].data(), p.len, p.key);
      p.frame = a[i].data();
      in_a.push_back(p);
      p.frame = b[i].data();
      in_b.push_back(p);
    }
    std::vector<PacketOut> out_a(in_a.size());
    std::vector<PacketOut> out_b(in_b.size());
    slow_p->process(in_a, out_a);
    fast_p->process(in_b, out_b);
    for (size_t j = 0; j < in_a.size(); ++j) {
      ASSERT_EQ(out_a[j].fate, out_b[j].fate) << at + j;
      ASSERT_EQ(out_a[j].ct_state, out_b[j].ct_state) << at + j;
      ASSERT_EQ(out_a[j].out_iface, out_b[j].out_iface) << at + j;
      ASSERT_EQ(in_a[j].key, in_b[j].key) << at + j;
    }
    for (size_t i = at; i < at + n; ++i) ASSERT_EQ(a[i], b[i]) << i;  // the same bytes out
    at += n;
    if (rng() % 12 == 0 || at == frames.size()) {
      ++reads;
      ASSERT_EQ(write_iptables_save(fast_p->counters_ruleset(), {.counters = true}),
                write_iptables_save(slow_p->counters_ruleset(), {.counters = true}))
          << "counters differ after " << at << " frames";
    }
  }
  EXPECT_GT(reads, 100U);
  EXPECT_EQ(fast_p->stats().by_fate, slow_p->stats().by_fate);
  EXPECT_EQ(fast_p->conntrack().counters(), slow_p->conntrack().counters());
  // The traffic exercised what it was made for.
  const PipelineStats& s = fast_p->stats();
  EXPECT_GT(s.fast_path_packets, frames.size() / 40);
  EXPECT_GT(s.walked_packets, frames.size() / 50);
  EXPECT_GT(s.by_fate[static_cast<size_t>(Fate::DroppedTtlExceeded)], 0U);
  EXPECT_GT(fast_p->conntrack().counters().invalid, 0U);
  if (trust) {
    EXPECT_GT(fast_p->conntrack().counters().trusted_bad_checksum, 0U);
  } else {
    EXPECT_GT(fast_p->conntrack().counters().by_reason[static_cast<size_t>(CtReason::BadChecksum)], 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryAlgo, FastPath,
    ::testing::Combine(NFB_TEST_ALGOS,
                       ::testing::Bool()),
    [](const auto& p) {
      return std::string(chain_algo_name(std::get<0>(p.param))) + (std::get<1>(p.param) ? "_trust" : "_verify");
    });

}  // namespace
}  // namespace nfb
