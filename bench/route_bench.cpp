// Route lookups: the host model's longest-prefix match (HostModel::route(),
// a DIR-16-8-8 table per routing table) beside DPDK's rte_lpm (DIR-24-8) on
// the same routes, for the default Docker host plus 0, 1K or 100K random
// main-table routes (prefixes /8 to /32 via the outside interface):
//
//   Route/host_model/routes:<N>   HostModel::route() of random addresses
//   Route/rte_lpm/routes:<N>      rte_lpm_lookup() of the same addresses
//
// A connection's first packet routes once (route_input(), plus the martian
// check of its source), so this is part of what every new connection costs.
// HostModel::route() also picks the table (local, main, default) and copies
// the winning route; rte_lpm returns a next-hop number only.
#include <benchmark/benchmark.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <x86intrin.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/dpdk_eal.h"
#include "netfilter/host.h"

namespace nfb {
namespace {

struct Setup {
  HostModel host;
  std::vector<Route> routes;  // the extra ones
  std::vector<uint32_t> probes;
};

Setup make_setup(uint32_t extra) {
  HostSpec spec = default_docker_host_spec();
  std::mt19937 rng(7);
  Setup s;
  for (uint32_t i = 0; i < extra; ++i) {
    Route r;
    r.table = RouteTable::Main;
    r.type = AddrType::Unicast;
    r.prefix_len = static_cast<uint8_t>(8 + rng() % 25);
    const uint32_t mask = r.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - r.prefix_len);
    r.dst = static_cast<uint32_t>(rng()) & mask;
    r.gateway = 0xc63364feU;
    r.iface = 1;
    // Keep clear of the host's own networks.
    if ((r.dst >> 24) == 127 || (r.dst >> 24) == 172 || (r.dst >> 24) == 198) continue;
    bool dup = false;
    for (const Route& o : s.routes) dup = dup || (o.dst == r.dst && o.prefix_len == r.prefix_len);
    if (dup && extra < 5000) continue;
    spec.routes.push_back(r);
    s.routes.push_back(r);
  }
  s.host = HostModel::build(spec, "route_bench");
  s.probes.resize(1U << 16);
  for (uint32_t& p : s.probes) p = static_cast<uint32_t>(rng());
  return s;
}

void BM_HostModel(benchmark::State& state) {
  const Setup s = make_setup(static_cast<uint32_t>(state.range(0)));
  size_t at = 0;
  uint64_t sum = 0;
  uint64_t n = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    sum += s.host.route(s.probes[at]).prefix_len;
    at = (at + 1) & (s.probes.size() - 1);
    ++n;
  }
  state.counters["cycles_per_lookup"] = static_cast<double>(__rdtsc() - c0) / static_cast<double>(n);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(n));
}

void BM_RteLpm(benchmark::State& state) {
  const Setup s = make_setup(static_cast<uint32_t>(state.range(0)));
  static uint32_t serial = 0;
  const std::string name = "route_bench" + std::to_string(serial++);
  rte_lpm_config cfg{};
  cfg.max_rules = static_cast<uint32_t>(s.routes.size() + 64);
  cfg.number_tbl8s = 1U << 16;
  rte_lpm* lpm = rte_lpm_create(name.c_str(), 0, &cfg);
  if (lpm == nullptr) throw std::runtime_error(std::string("rte_lpm_create: ") + rte_strerror(rte_errno));
  // The host's routes as the model has them (local addresses and the
  // connected networks, then the default), and the extra ones.
  const uint32_t host_routes[][2] = {{0x7f000000U, 8}, {0xc6336400U, 24}, {0xac110000U, 16}, {0xac120000U, 16},
                                     {0, 0}};
  uint32_t hop = 0;
  for (const auto& [dst, len] : host_routes) rte_lpm_add(lpm, dst, static_cast<uint8_t>(len), hop++);
  for (const Route& r : s.routes) rte_lpm_add(lpm, r.dst, r.prefix_len, hop++ & 0xffffffU);
  size_t at = 0;
  uint64_t sum = 0;
  uint64_t n = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    uint32_t next = 0;
    if (rte_lpm_lookup(lpm, s.probes[at], &next) == 0) sum += next;
    at = (at + 1) & (s.probes.size() - 1);
    ++n;
  }
  state.counters["cycles_per_lookup"] = static_cast<double>(__rdtsc() - c0) / static_cast<double>(n);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(n));
  rte_lpm_free(lpm);
}

void routes_args(benchmark::internal::Benchmark* b) {
  b->ArgName("routes");
  for (int64_t r : {0, 1000, 100000}) b->Arg(r);
}

BENCHMARK(BM_HostModel)->Name("Route/host_model")->Apply(routes_args);
BENCHMARK(BM_RteLpm)->Name("Route/rte_lpm")->Apply(routes_args);

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::vector<std::string> eal{"-m", "1024"};
  nfb::start_dpdk_eal(eal);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
