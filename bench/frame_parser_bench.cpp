// Frame parser throughput: frames per second and cycles per frame.
//
// A pool of 1024 frames of four kinds (Ethernet/TCP SYN with options,
// VLAN/UDP, SLL2/TCP ACK, Ethernet/ICMP port-unreachable quoting a UDP
// packet), with varied addresses and ports, is parsed in bursts of 32. The
// pool (about 100 KiB of frames plus 64 KiB of keys) stays in L2, so this
// measures parsing, not memory. cycles_per_packet comes from the TSC
// (constant-rate on current x86, so it counts reference cycles).
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <cstdint>
#include <vector>

#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "tests/support/frame_builder.h"

namespace {

using namespace nfb;
using namespace nfb::test;

constexpr std::size_t kBurst = 32;
constexpr std::size_t kPool = 1024;

struct Pool {
  std::vector<Bytes> frames;
  std::vector<FrameRef> refs;
};

/// `kinds` selects which of the four frame kinds the pool cycles through.
Pool make_pool(unsigned kinds) {
  Pool p;
  std::vector<unsigned> order;
  for (unsigned k = 0; k < 4; ++k)
    if ((kinds >> k) & 1U) order.push_back(k);
  for (std::size_t i = 0; i < kPool; ++i) {
    const auto lo = static_cast<uint8_t>(i);
    const auto port = static_cast<uint16_t>(1024 + i * 7);
    const uint32_t client = ip4(192, 168, static_cast<uint8_t>(i >> 8), lo);
    switch (order[i % order.size()]) {
      case 0:
        p.frames.push_back(ethernet(
            {}, ipv4({.src = client, .dst = ip4(172, 17, 0, 2), .proto = kProtoTcp, .df = true},
                     tcp({.sport = port, .dport = 6379, .options = tcp_syn_options()}))));
        p.refs.push_back({nullptr, 0, 1, LinkType::Ethernet});
        break;
      case 1:
        p.frames.push_back(ethernet(
            {.tags = {{.vid = 100}}},
            ipv4({.src = client, .dst = ip4(10, 0, 0, 53), .proto = kProtoUdp},
                 udp({.sport = port, .dport = 53, .payload = pattern(40)}))));
        p.refs.push_back({nullptr, 0, 2, LinkType::Ethernet});
        break;
      case 2:
        p.frames.push_back(sll2(
            {.ifindex = 3},
            ipv4({.src = ip4(172, 17, 0, 2), .dst = client, .proto = kProtoTcp},
                 tcp({.sport = 443, .dport = port, .flags = tcp_flag::kAck, .payload = pattern(64)}))));
        p.refs.push_back({nullptr, 0, 3, LinkType::LinuxSll2});
        break;
      default: {
        const Bytes original = ipv4({.src = client, .dst = ip4(172, 17, 0, 3), .proto = kProtoUdp},
                                    udp({.sport = port, .dport = 9999}));
        p.frames.push_back(ethernet(
            {}, ipv4({.src = ip4(172, 17, 0, 3), .dst = client, .proto = kProtoIcmp},
                     icmp_error(3, 3, original))));
        p.refs.push_back({nullptr, 0, 1, LinkType::Ethernet});
        break;
      }
    }
  }
  for (std::size_t i = 0; i < kPool; ++i) {
    p.refs[i].data = p.frames[i].data();
    p.refs[i].len = static_cast<uint32_t>(p.frames[i].size());
  }
  return p;
}

template <typename ParseFn>
void run(benchmark::State& state, const Pool& pool, ParseFn parse) {
  std::vector<PacketKey> keys(kPool);
  std::vector<ParseStatus> status(kPool);
  ParseCounters counters;
  std::size_t at = 0;
  uint64_t packets = 0;
  const uint64_t t0 = __rdtsc();
  for (auto _ : state) {
    parse(std::span(pool.refs).subspan(at, kBurst), std::span(keys).subspan(at, kBurst),
          std::span(status).subspan(at, kBurst), counters);
    benchmark::DoNotOptimize(keys.data() + at);
    benchmark::ClobberMemory();
    at = (at + kBurst) % kPool;
    packets += kBurst;
  }
  const uint64_t cycles = __rdtsc() - t0;
  if (counters.count(ParseStatus::Ok) != counters.total()) state.SkipWithError("a frame did not parse");
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] =
      packets == 0 ? 0.0 : static_cast<double>(cycles) / static_cast<double>(packets);
}

/// The mix, per-frame link types (a pcapng with several interfaces).
void BM_ParseBurstMixed(benchmark::State& state) {
  const Pool pool = make_pool(0xf);
  run(state, pool,
      [](std::span<const FrameRef> f, std::span<PacketKey> k, std::span<ParseStatus> s,
         ParseCounters& c) { parse_burst(f, k, s, c); });
}
BENCHMARK(BM_ParseBurstMixed);

/// Ethernet only (TCP, VLAN/UDP, ICMP error), one link type per burst.
void BM_ParseBurstEthernetPerBurstLink(benchmark::State& state) {
  const Pool pool = make_pool(0xb);
  run(state, pool,
      [](std::span<const FrameRef> f, std::span<PacketKey> k, std::span<ParseStatus> s,
         ParseCounters& c) { parse_burst(f, LinkType::Ethernet, k, s, c); });
}
BENCHMARK(BM_ParseBurstEthernetPerBurstLink);

/// The same Ethernet frames through the burst API with per-frame link types.
void BM_ParseBurstEthernetPerFrameLink(benchmark::State& state) {
  const Pool pool = make_pool(0xb);
  run(state, pool,
      [](std::span<const FrameRef> f, std::span<PacketKey> k, std::span<ParseStatus> s,
         ParseCounters& c) { parse_burst(f, k, s, c); });
}
BENCHMARK(BM_ParseBurstEthernetPerFrameLink);

/// One kind at a time, to see what each costs.
void BM_ParseBurstKind(benchmark::State& state) {
  const Pool pool = make_pool(1U << state.range(0));
  run(state, pool,
      [](std::span<const FrameRef> f, std::span<PacketKey> k, std::span<ParseStatus> s,
         ParseCounters& c) { parse_burst(f, k, s, c); });
  static const char* const kNames[] = {"eth_tcp_syn", "vlan_udp", "sll2_tcp", "eth_icmp_error"};
  state.SetLabel(kNames[state.range(0)]);
}
BENCHMARK(BM_ParseBurstKind)->DenseRange(0, 3);

/// The mix frame by frame through parse_frame(), for comparison.
void BM_ParseFrameMixed(benchmark::State& state) {
  const Pool pool = make_pool(0xf);
  run(state, pool,
      [](std::span<const FrameRef> f, std::span<PacketKey> k, std::span<ParseStatus> s,
         ParseCounters& c) {
        for (std::size_t i = 0; i < f.size(); ++i) {
          s[i] = parse_frame(f[i].data, f[i].len, f[i].link, f[i].ifindex, k[i]);
          c.add(s[i]);
        }
      });
}
BENCHMARK(BM_ParseFrameMixed);

/// The L4 checksum check conntrack adds per packet, on the mix.
void BM_L4ChecksumMixed(benchmark::State& state) {
  const Pool pool = make_pool(0xf);
  std::vector<PacketKey> keys(kPool);
  std::vector<ParseStatus> status(kPool);
  ParseCounters counters;
  parse_burst(pool.refs, keys, status, counters);
  std::size_t at = 0;
  uint64_t packets = 0, good = 0;
  const uint64_t t0 = __rdtsc();
  for (auto _ : state) {
    for (std::size_t i = at; i < at + kBurst; ++i)
      good += l4_checksum_ok(pool.refs[i].data, pool.refs[i].len, keys[i]) ? 1U : 0U;
    benchmark::DoNotOptimize(good);
    at = (at + kBurst) % kPool;
    packets += kBurst;
  }
  const uint64_t cycles = __rdtsc() - t0;
  if (good != packets) state.SkipWithError("a checksum did not verify");
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] =
      packets == 0 ? 0.0 : static_cast<double>(cycles) / static_cast<double>(packets);
}
BENCHMARK(BM_L4ChecksumMixed);

}  // namespace

BENCHMARK_MAIN();
