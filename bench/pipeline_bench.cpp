// The netfilter pipeline on the docker-28 ruleset: packets per second and TSC
// cycles per packet with the fast path on and off, for traffic whose share of
// connection-opening packets varies: new_pct 0, 1, 10 or 100 (Arg 0: 1 =
// fast path). 1% and 10% are connections of 100 and 10 packets; 100% is
// SYNs only (every packet opens a connection); 0% is the 1% traffic with
// each connection's 3 handshake packets sent before the timed part, which
// then holds only packets of established connections.
//
// Traffic: outside clients talk to the published redis port 10000
// (DNAT to 172.17.0.2:6379): SYN, SYN-ACK from the container on docker0, ACK,
// then data segments alternating direction, with correct sequence numbers so
// conntrack keeps every connection ESTABLISHED. The frames are built once;
// each timed run starts from fresh copies and a fresh pipeline (untimed),
// because NAT rewrites frames in place and conntrack remembers connections.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

using test::Bytes;

constexpr test::Mac kHostEth0Mac{0x02, 0x00, 0xc6, 0x33, 0x64, 0x01};
constexpr test::Mac kOutsideMac{0x02, 0x00, 0xc6, 0x33, 0x64, 0xfe};
constexpr test::Mac kDocker0Mac{0x02, 0x42, 0x9a, 0x1c, 0x00, 0x01};
constexpr test::Mac kRedisMac{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
constexpr uint32_t kHostIp = test::ip4(198, 51, 100, 1);
constexpr uint32_t kRedisIp = test::ip4(172, 17, 0, 2);

struct Trace {
  std::vector<Bytes> frames;
  std::vector<uint16_t> ingress;  // host interface id
};

Bytes segment(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
              size_t payload, const test::Mac& to, const test::Mac& from) {
  test::TcpSpec t;
  t.sport = sport;
  t.dport = dport;
  t.seq = seq;
  t.ack = ack;
  t.flags = flags;
  t.payload = test::pattern(payload);
  test::Ipv4Spec ip;
  ip.src = src;
  ip.dst = dst;
  ip.df = true;
  test::EthSpec eth;
  eth.dst = to;
  eth.src = from;
  return test::ethernet(eth, test::ipv4(ip, test::tcp(t)));
}

// `connections` connections of `per_connection` packets each (at least 3:
// the handshake), interleaved round-robin so many flows are live at once.
Trace make_trace(const HostModel& host, uint32_t connections, uint32_t per_connection) {
  const uint16_t eth0 = *host.iface_id("eth0");
  const uint16_t docker0 = *host.iface_id("docker0");
  std::vector<std::vector<std::pair<Bytes, uint16_t>>> flows(connections);
  for (uint32_t c = 0; c < connections; ++c) {
    const uint32_t client = test::ip4(203, static_cast<uint8_t>(c >> 14 & 0x3f), static_cast<uint8_t>(c >> 6),
                                      static_cast<uint8_t>(1 + (c & 0x3f)));
    const auto port = static_cast<uint16_t>(20000 + (c % 40000));
    uint32_t cseq = 1000 + c, sseq = 5000 + c;
    auto& f = flows[c];
    f.emplace_back(segment(client, kHostIp, port, 10000, cseq, 0, tcp_flag::kSyn, 0, kHostEth0Mac, kOutsideMac), eth0);
    f.emplace_back(segment(kRedisIp, client, 6379, port, sseq, cseq + 1, tcp_flag::kSyn | tcp_flag::kAck, 0,
                           kDocker0Mac, kRedisMac),
                   docker0);
    ++cseq;
    ++sseq;
    f.emplace_back(segment(client, kHostIp, port, 10000, cseq, sseq, tcp_flag::kAck, 0, kHostEth0Mac, kOutsideMac),
                   eth0);
    for (uint32_t i = 3; i < per_connection; ++i) {
      const size_t len = 16 + (i * 37) % 200;
      if (i % 2 == 1) {
        f.emplace_back(segment(client, kHostIp, port, 10000, cseq, sseq, tcp_flag::kPsh | tcp_flag::kAck, len,
                               kHostEth0Mac, kOutsideMac),
                       eth0);
        cseq += static_cast<uint32_t>(len);
      } else {
        f.emplace_back(segment(kRedisIp, client, 6379, port, sseq, cseq, tcp_flag::kPsh | tcp_flag::kAck, len,
                               kDocker0Mac, kRedisMac),
                       docker0);
        sseq += static_cast<uint32_t>(len);
      }
    }
  }
  Trace t;
  for (uint32_t i = 0; i < per_connection; ++i) {
    for (auto& f : flows) {
      if (i < f.size()) {
        t.frames.push_back(std::move(f[i].first));
        t.ingress.push_back(f[i].second);
      }
    }
  }
  return t;
}

std::string ruleset_path() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/data/rulesets/docker-28.save";
}

void BM_Pipeline(benchmark::State& state) {
  const bool fast = state.range(0) != 0;
  const auto new_pct = static_cast<uint32_t>(state.range(1));
  const uint32_t per_connection = new_pct == 0 ? 100 : 100 / new_pct;
  const HostModel host = default_docker_host();
  const Ruleset rules = load_iptables_save_file(ruleset_path());
  const uint32_t connections = 200000 / per_connection;
  const Trace trace = make_trace(host, connections, per_connection);
  const size_t n = trace.frames.size();

  std::vector<uint8_t> arena;
  std::vector<PacketIn> in(n);
  std::vector<PacketOut> out(n);
  uint64_t packets = 0, cycles = 0, fast_packets = 0;
  for (auto _ : state) {
    state.PauseTiming();
    PipelineConfig config;
    config.fast_path = fast;
    config.conntrack.max_entries = 1U << 18;
    auto pipeline = Pipeline::build(rules, host, config);
    arena.clear();
    size_t total = 0;
    for (const Bytes& f : trace.frames) total += f.size();
    arena.resize(total);
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      std::copy(trace.frames[i].begin(), trace.frames[i].end(), arena.begin() + static_cast<std::ptrdiff_t>(at));
      PacketIn& p = in[i];
      p.frame = arena.data() + at;
      p.len = static_cast<uint32_t>(trace.frames[i].size());
      p.in_iface = trace.ingress[i];
      p.ts_ns = 1'000'000'000ULL + i * 1000ULL;
      parse_frame(p.frame, p.len, LinkType::Ethernet, p.in_iface, p.key);
      at += p.len;
    }
    // 0% new: the handshakes (the first 3 packets of every connection,
    // which make_trace puts first) go before the timed part.
    const size_t warm = new_pct == 0 ? size_t{3} * connections : 0;
    for (size_t i = 0; i < warm; i += 32) {
      const size_t m = std::min<size_t>(32, warm - i);
      pipeline->process(std::span(in.data() + i, m), std::span(out.data() + i, m));
    }
    const uint64_t fast_before = pipeline->stats().fast_path_packets;
    state.ResumeTiming();
    const uint64_t t0 = __rdtsc();
    for (size_t i = warm; i < n; i += 32) {
      const size_t m = std::min<size_t>(32, n - i);
      pipeline->process(std::span(in.data() + i, m), std::span(out.data() + i, m));
    }
    cycles += __rdtsc() - t0;
    packets += n - warm;
    fast_packets += pipeline->stats().fast_path_packets - fast_before;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] = static_cast<double>(cycles) / static_cast<double>(packets);
  state.counters["fast_path_share"] = static_cast<double>(fast_packets) / static_cast<double>(packets);
  state.counters["new_share"] = new_pct / 100.0;
}

BENCHMARK(BM_Pipeline)
    ->ArgNames({"fast", "new_pct"})
    ->ArgsProduct({{0, 1}, {0, 1, 10, 100}})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace nfb

BENCHMARK_MAIN();
