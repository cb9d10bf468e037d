// Linear against compiled chains on kube-proxy rulesets (`nfbench gen kube`)
// with 1K and 10K services: every packet is a TCP SYN to a random service's
// cluster IP and port from a new client port, so every packet walks nat
// PREROUTING's KUBE-SERVICES (one rule per service port: what made
// kube-proxy leave iptables for large clusters), a KUBE-SVC chain's
// statistic rules and a KUBE-SEP chain's DNAT, then filter and POSTROUTING.
//
//   Kube/services:<n>/<algo>     packets per second, TSC cycles per packet
//
// The pipeline (2 endpoints per service, the default Docker host's
// interfaces; the SYNs arrive on eth0) is built once per benchmark, before
// its first repetition; build_seconds says how long that took. Each
// iteration is a burst of 32 SYNs, a fixed 512 per repetition (16,384 new
// connections), every repetition with SYNs not sent before.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <chrono>
#include <map>
#include <memory>
#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "rules/ruleset_gen.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

constexpr size_t kBurst = 32;
constexpr int64_t kIterations = 512;
constexpr size_t kPool = size_t{1} << 18;  // fresh SYNs for 32 repetitions

struct Service {
  uint32_t ip = 0;
  uint16_t port = 0;
};

// The cluster IPs and ports of KUBE-SERVICES' jumps to KUBE-SVC chains.
std::vector<Service> services_of(const Ruleset& rs) {
  std::vector<Service> out;
  for (const Table& t : rs.tables) {
    if (t.id != TableId::Nat) continue;
    const auto idx = t.find_chain("KUBE-SERVICES");
    if (!idx) continue;
    for (const Rule& r : t.chains[*idx].rules) {
      if (r.dst.mask != 0xffffffffU || r.protocol != kProtoTcp) continue;
      for (const Match& m : r.matches) {
        if (const auto* tcp = std::get_if<TcpMatch>(&m); tcp != nullptr && tcp->dport.lo == tcp->dport.hi) {
          out.push_back({r.dst.addr, tcp->dport.lo});
        }
      }
    }
  }
  return out;
}

struct Syns {
  std::vector<test::Bytes> frames;
  std::vector<PacketIn> in;
};

Syns make_syns(const HostModel& host, const std::vector<Service>& services, size_t count) {
  const uint16_t eth0 = *host.iface_id("eth0");
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, services.size() - 1);
  Syns s;
  s.frames.reserve(count);
  s.in.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const Service& svc = services[pick(rng)];
    const uint32_t client = test::ip4(203, 0, static_cast<uint8_t>(113 + (i >> 24)), static_cast<uint8_t>(1 + (i >> 16) % 250));
    test::TcpSpec t;
    t.sport = static_cast<uint16_t>(1024 + (i & 0xffff) % 60000);
    t.dport = svc.port;
    t.seq = static_cast<uint32_t>(i * 7919);
    t.flags = tcp_flag::kSyn;
    t.options = test::tcp_syn_options();
    test::Ipv4Spec ip;
    ip.src = client;
    ip.dst = svc.ip;
    ip.proto = kProtoTcp;
    ip.df = true;
    s.frames.push_back(test::ethernet({}, test::ipv4(ip, test::tcp(t))));
    PacketIn& p = s.in[i];
    p.frame = s.frames.back().data();
    p.len = static_cast<uint32_t>(s.frames.back().size());
    p.in_iface = eth0;
    p.ts_ns = 1'000'000'000ULL + i * 1000ULL;
    parse_frame(p.frame, p.len, LinkType::Ethernet, eth0, p.key);
  }
  return s;
}

// One pipeline per (services, algorithm), built once (a 10K-service
// pipeline takes seconds to compile) and kept across repetitions; every
// repetition sends SYNs the pipeline has not seen (a pool of 2^18, with
// conntrack room for all of them).
struct KubeCase {
  Ruleset rules;
  std::unique_ptr<Pipeline> pipeline;
  Syns syns;
  double build_seconds = 0;
  size_t next = 0;
};

KubeCase& kube_case(uint32_t services, ChainAlgo algo) {
  static std::map<std::pair<uint32_t, ChainAlgo>, std::unique_ptr<KubeCase>> cases;
  auto& c = cases[{services, algo}];
  if (c) return *c;
  cases.clear();  // one at a time: the pools and tables are large
  auto& fresh = cases[{services, algo}];
  fresh = std::make_unique<KubeCase>();
  const HostModel host = default_docker_host();
  KubeGenOptions opt;
  opt.services = services;
  opt.endpoints = 2;
  fresh->rules = read_iptables_save(generate_kube_ruleset(opt), "kube-gen");
  const std::vector<Service> svcs = services_of(fresh->rules);
  if (!svcs.empty()) fresh->syns = make_syns(host, svcs, kPool);
  PipelineConfig config;
  config.algo = algo;
  config.conntrack.max_entries = kPool;
  const auto t0 = std::chrono::steady_clock::now();
  fresh->pipeline = Pipeline::build(fresh->rules, host, config);
  fresh->build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return *fresh;
}

void BM_Kube(benchmark::State& state, uint32_t services, ChainAlgo algo) {
  KubeCase& k = kube_case(services, algo);
  if (k.syns.in.empty()) {
    state.SkipWithError("the generated ruleset has no KUBE-SERVICES cluster IP rules");
    return;
  }
  if (k.next + kBurst * kIterations > k.syns.in.size()) {
    state.SkipWithError("out of fresh SYNs: raise kPool");
    return;
  }
  std::vector<PacketOut> out(kBurst);
  const size_t start = k.next;
  const PipelineStats before = k.pipeline->stats();
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    k.pipeline->process(std::span(k.syns.in.data() + k.next, kBurst), std::span(out));
    benchmark::DoNotOptimize(out.data());
    k.next += kBurst;
  }
  const uint64_t cycles = __rdtsc() - c0;
  const uint64_t packets = k.next - start;
  const PipelineStats& st = k.pipeline->stats();
  const size_t fwd = static_cast<size_t>(Fate::Forwarded);
  if (st.by_fate[fwd] - before.by_fate[fwd] != packets) state.SkipWithError("not every SYN was forwarded");
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] = static_cast<double>(cycles) / static_cast<double>(packets);
  state.counters["build_seconds"] = k.build_seconds;
  state.counters["rules_tested_per_packet"] =
      static_cast<double>(st.rules_tested - before.rules_tested) / static_cast<double>(packets);
}

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  using namespace nfb;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (uint32_t services : {1000U, 10000U}) {
    for (ChainAlgo algo : all_chain_algos()) {
      const std::string name =
          "Kube/services:" + std::to_string(services) + "/" + std::string(chain_algo_name(algo));
      benchmark::RegisterBenchmark(name.c_str(), BM_Kube, services, algo)
          ->Iterations(kIterations)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
