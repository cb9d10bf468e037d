// -m string: Hyperscan (one scan of the packet for every pattern, then a bit
// test per rule) against searching rule by rule (each rule runs its own
// Horspool search over the packet), in a filter FORWARD chain of N counting
// string rules that every packet walks to the end (none of the patterns
// occurs: the worst case for the rule-by-rule search, and what most packets
// meet in a real ruleset).
//
//   String/patterns:<N>/frame:<bytes>/<hyperscan|rule_by_rule>
//
// N = 1, 10, 100, 1000, 10000 patterns of 6 to 16 random lower-case
// letters; frames of 64 and 1514 bytes (IP packets of 50 and 1500 bytes)
// with random payload bytes (upper-case letters and digits, so no pattern
// occurs). A pool of 256 frames is walked round-robin. Reports packets per
// second, TSC cycles per packet, and the database size.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <random>
#include <string>
#include <vector>

#include "classifier/string_scan.h"
#include "netfilter/chain_walk.h"
#include "netfilter/host.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

constexpr size_t kPool = 256;

std::string ruleset_text(size_t patterns) {
  std::mt19937 rng(static_cast<uint32_t>(patterns));
  std::string t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
  for (size_t i = 0; i < patterns; ++i) {
    std::string p;
    const size_t n = 6 + rng() % 11;
    for (size_t j = 0; j < n; ++j) p += static_cast<char>('a' + rng() % 26);
    t += "-A FORWARD -m string --string \"" + p + "\" --algo bm\n";
  }
  return t + "COMMIT\n";
}

struct Frames {
  std::vector<test::Bytes> bytes;
  std::vector<PacketKey> keys;
};

Frames make_frames(size_t frame_len) {
  std::mt19937 rng(99);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  Frames f;
  for (size_t i = 0; i < kPool; ++i) {
    test::Bytes payload(frame_len - 14 - 20 - 8);
    for (auto& b : payload) b = static_cast<uint8_t>(alphabet[rng() % 36]);
    test::Ipv4Spec ip;
    ip.src = test::ip4(203, 0, 113, static_cast<uint8_t>(1 + i));
    ip.dst = test::ip4(172, 17, 0, 2);
    ip.proto = kProtoUdp;
    f.bytes.push_back(test::ethernet({}, test::ipv4(ip, test::udp({.sport = 4000, .dport = 53, .payload = payload}))));
    PacketKey k;
    parse_frame(f.bytes.back().data(), static_cast<uint32_t>(f.bytes.back().size()), LinkType::Ethernet, 1, k);
    f.keys.push_back(k);
  }
  return f;
}

void BM_String(benchmark::State& state, size_t patterns, size_t frame_len, bool hyperscan) {
  const HostModel host = default_docker_host();
  const Ruleset rules = read_iptables_save(ruleset_text(patterns), "string-bench");
  StringPatterns registry;
  WalkOptions opts;
  if (hyperscan) opts.match.strings = &registry;
  ChainWalker walker = ChainWalker::build(rules.tables.at(0), host, opts);
  std::unique_ptr<StringScanner> scanner;
  if (hyperscan) scanner = std::make_unique<StringScanner>(registry);
  const Frames frames = make_frames(frame_len);
  MatchContext ctx;
  ctx.host = &host;
  ctx.hook = Hook::Forward;
  ctx.strings = scanner.get();
  size_t i = 0;
  uint64_t packets = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    ctx.key = &frames.keys[i];
    ctx.frame = frames.bytes[i].data();
    ctx.frame_len = static_cast<uint32_t>(frames.bytes[i].size());
    if (scanner) scanner->invalidate();  // a new packet
    const WalkResult r = walker.walk(Hook::Forward, ctx);
    benchmark::DoNotOptimize(r);
    i = (i + 1) % kPool;
    ++packets;
  }
  const uint64_t cycles = __rdtsc() - c0;
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.SetBytesProcessed(static_cast<int64_t>(packets * frame_len));
  state.counters["cycles_per_packet"] = static_cast<double>(cycles) / static_cast<double>(packets);
  if (scanner) state.counters["database_bytes"] = static_cast<double>(scanner->database_bytes());
}

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  using namespace nfb;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (size_t patterns : {size_t{1}, size_t{10}, size_t{100}, size_t{1000}, size_t{10000}}) {
    for (size_t frame : {size_t{64}, size_t{1514}}) {
      for (bool hs : {true, false}) {
        const std::string name = "String/patterns:" + std::to_string(patterns) + "/frame:" + std::to_string(frame) +
                                 (hs ? "/hyperscan" : "/rule_by_rule");
        benchmark::RegisterBenchmark(name.c_str(), BM_String, patterns, frame, hs);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
