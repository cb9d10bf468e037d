// The conntrack table beside DPDK's rte_hash, at 1K to 1M live flows:
//
//   Conntrack/Lookup/ours/<flows>       ConntrackTable::find_handle() of a live tuple
//   Conntrack/Lookup/rte_hash/<flows>   rte_hash_lookup_data(), one key at a time
//   Conntrack/LookupBulk/ours/<flows>   32 tuples a burst: hash and prefetch the buckets,
//                                       then the entries, then finish (the pipeline's stages)
//   Conntrack/LookupBulk/rte_hash/<flows>  rte_hash_lookup_bulk_data(), 32 keys a call
//   Conntrack/Insert/ours/<flows>       process() + confirm() of a connection's first
//                                       packet into a table that ends up holding <flows>
//   Conntrack/Insert/rte_hash/<flows>   rte_hash_add_key_data() of both of its tuples
//
// Flows are tracked by the generic tracker (protocol 253, addresses only),
// so the figures are the table's, not a protocol tracker's; both sides index
// both directions of a flow (two keys per flow), as conntrack must. Lookups
// go to random live flows in a fixed shuffled order, so the large tables
// miss the caches as a real flow mix does. rte_hash uses its default
// CRC32-based hash (SSE4.2) and 16-byte keys (the Tuple).
//
// What ours does beyond rte_hash in Insert: the entry's data (tuples,
// timeouts, status), the timer wheel, and the hold/confirm protocol; what
// rte_hash does beyond ours: cuckoo displacement and lock-free readers.
#include <benchmark/benchmark.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/dpdk_eal.h"
#include "netfilter/conntrack.h"
#include "packet/packet_key.h"

namespace nfb {
namespace {

constexpr uint8_t kProto = 253;  // RFC 3692 experimentation: the generic tracker
constexpr uint64_t kNow = 1'000'000'000ULL;

// The first packet of flow i: a distinct address pair per flow.
PacketKey flow_key(uint32_t i) {
  PacketKey k{};
  k.src_ip = 0x0a000000U | (i & 0x00ffffffU);
  k.dst_ip = 0xc6336400U | (1U + (i >> 24));
  k.proto = kProto;
  k.l3_len = 64;
  k.ttl = 64;
  return k;
}

std::vector<uint32_t> shuffled(uint32_t n, uint32_t count) {
  std::vector<uint32_t> order(count);
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  for (uint32_t& o : order) o = pick(rng);
  return order;
}

std::unique_ptr<ConntrackTable> filled_table(uint32_t flows) {
  CtConfig cfg;
  cfg.max_entries = flows;
  cfg.generic_timeout = 600;
  auto t = std::make_unique<ConntrackTable>(cfg);
  for (uint32_t i = 0; i < flows; ++i) {
    CtResult r = t->process(flow_key(i), nullptr, 0, kNow, false);
    if (!t->confirm(r, kNow)) throw std::runtime_error("conntrack bench: insert failed");
  }
  return t;
}

struct RteHash {
  rte_hash* h = nullptr;
  explicit RteHash(uint32_t keys) {
    static uint32_t serial = 0;
    const std::string name = "bench" + std::to_string(serial++);
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = std::max<uint32_t>(keys, 64);
    p.key_len = sizeof(Tuple);
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = 0;
    p.socket_id = 0;
    h = rte_hash_create(&p);
    if (h == nullptr) throw std::runtime_error(std::string("rte_hash_create: ") + rte_strerror(rte_errno));
  }
  ~RteHash() { rte_hash_free(h); }
  RteHash(const RteHash&) = delete;
  RteHash& operator=(const RteHash&) = delete;
};

// Both tuples of flow i (the generic tracker's reply is the address swap).
std::pair<Tuple, Tuple> tuples(uint32_t i) {
  const Tuple o = tuple_of(flow_key(i));
  Tuple r;
  o.invert(r);
  return {o, r};
}

void BM_LookupOurs(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  const auto table = filled_table(flows);
  const std::vector<uint32_t> order = shuffled(flows, 1U << 20);
  std::vector<Tuple> probe(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const auto [o, r] = tuples(order[i]);
    probe[i] = (i & 1) ? r : o;
  }
  size_t at = 0;
  uint64_t found = 0;
  uint64_t n = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    found += table->find_handle(probe[at]) != kNoEntry;
    at = (at + 1) & (probe.size() - 1);
    ++n;
  }
  const uint64_t cycles = __rdtsc() - c0;
  if (found != n) state.SkipWithError("a live flow was not found");
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cycles_per_lookup"] = static_cast<double>(cycles) / static_cast<double>(n);
}

// Ours in bursts of 32, as the pipeline does it: hash every tuple and
// prefetch its bucket, then read the buckets and prefetch the candidate
// entries, then finish each lookup.
void BM_LookupBulkOurs(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  const auto table = filled_table(flows);
  const std::vector<uint32_t> order = shuffled(flows, 1U << 20);
  std::vector<Tuple> probe(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const auto [o, r] = tuples(order[i]);
    probe[i] = (i & 1) ? r : o;
  }
  constexpr unsigned kBulk = 32;
  std::array<CtProbe, kBulk> p;
  size_t at = 0;
  uint64_t found = 0;
  uint64_t n = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    for (unsigned j = 0; j < kBulk; ++j) {
      p[j].tuple = probe[at + j];
      table->start(p[j]);
    }
    for (unsigned j = 0; j < kBulk; ++j) table->prefetch_entries(p[j]);
    for (unsigned j = 0; j < kBulk; ++j) {
      table->finish(p[j]);
      found += p[j].hit();
    }
    at = (at + kBulk) & (probe.size() - 1);
    n += kBulk;
  }
  const uint64_t cycles = __rdtsc() - c0;
  if (found != n) state.SkipWithError("a live flow was not found");
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cycles_per_lookup"] = static_cast<double>(cycles) / static_cast<double>(n);
}

void BM_LookupRte(benchmark::State& state, bool bulk) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  RteHash h(flows * 2);
  for (uint32_t i = 0; i < flows; ++i) {
    const auto [o, r] = tuples(i);
    if (rte_hash_add_key_data(h.h, &o, reinterpret_cast<void*>(uintptr_t{i} * 2)) != 0 ||
        rte_hash_add_key_data(h.h, &r, reinterpret_cast<void*>(uintptr_t{i} * 2 + 1)) != 0) {
      state.SkipWithError("rte_hash_add_key_data failed");
      return;
    }
  }
  const std::vector<uint32_t> order = shuffled(flows, 1U << 20);
  std::vector<Tuple> probe(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const auto [o, r] = tuples(order[i]);
    probe[i] = (i & 1) ? r : o;
  }
  constexpr unsigned kBulk = 32;
  const void* keys[kBulk];
  void* data[kBulk];
  size_t at = 0;
  uint64_t found = 0;
  uint64_t n = 0;
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    if (bulk) {
      for (unsigned j = 0; j < kBulk; ++j) keys[j] = &probe[at + j];
      uint64_t hits = 0;
      found += static_cast<uint64_t>(rte_hash_lookup_bulk_data(h.h, keys, kBulk, &hits, data));
      at = (at + kBulk) & (probe.size() - 1);
      n += kBulk;
    } else {
      void* d = nullptr;
      found += rte_hash_lookup_data(h.h, &probe[at], &d) >= 0;
      at = (at + 1) & (probe.size() - 1);
      ++n;
    }
  }
  const uint64_t cycles = __rdtsc() - c0;
  if (found != n) state.SkipWithError("a live flow was not found");
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cycles_per_lookup"] = static_cast<double>(cycles) / static_cast<double>(n);
}

void BM_InsertOurs(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  std::vector<PacketKey> keys(flows);
  for (uint32_t i = 0; i < flows; ++i) keys[i] = flow_key(i);
  uint64_t cycles = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    CtConfig cfg;
    cfg.max_entries = flows;
    auto t = std::make_unique<ConntrackTable>(cfg);
    state.ResumeTiming();
    const uint64_t c0 = __rdtsc();
    for (uint32_t i = 0; i < flows; ++i) {
      CtResult r = t->process(keys[i], nullptr, 0, kNow, false);
      t->confirm(r, kNow);
    }
    cycles += __rdtsc() - c0;
    n += flows;
    state.PauseTiming();
    if (t->size() != flows) state.SkipWithError("not every flow was inserted");
    t.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cycles_per_insert"] = static_cast<double>(cycles) / static_cast<double>(n);
}

void BM_InsertRte(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  std::vector<std::pair<Tuple, Tuple>> t(flows);
  for (uint32_t i = 0; i < flows; ++i) t[i] = tuples(i);
  RteHash h(flows * 2);
  uint64_t cycles = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    rte_hash_reset(h.h);
    state.ResumeTiming();
    const uint64_t c0 = __rdtsc();
    int failed = 0;
    for (uint32_t i = 0; i < flows; ++i) {
      failed |= rte_hash_add_key_data(h.h, &t[i].first, reinterpret_cast<void*>(uintptr_t{i} * 2));
      failed |= rte_hash_add_key_data(h.h, &t[i].second, reinterpret_cast<void*>(uintptr_t{i} * 2 + 1));
    }
    cycles += __rdtsc() - c0;
    n += flows;
    if (failed != 0) state.SkipWithError("rte_hash_add_key_data failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cycles_per_insert"] = static_cast<double>(cycles) / static_cast<double>(n);
}

void flows_args(benchmark::internal::Benchmark* b) {
  b->ArgName("flows");
  for (int64_t f : {1000, 10000, 100000, 1000000}) b->Arg(f);
}

BENCHMARK(BM_LookupOurs)->Name("Conntrack/Lookup/ours")->Apply(flows_args);
BENCHMARK_CAPTURE(BM_LookupRte, single, false)->Name("Conntrack/Lookup/rte_hash")->Apply(flows_args);
BENCHMARK(BM_LookupBulkOurs)->Name("Conntrack/LookupBulk/ours")->Apply(flows_args);
BENCHMARK_CAPTURE(BM_LookupRte, bulk, true)->Name("Conntrack/LookupBulk/rte_hash")->Apply(flows_args);
BENCHMARK(BM_InsertOurs)->Name("Conntrack/Insert/ours")->Apply(flows_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_InsertRte)->Name("Conntrack/Insert/rte_hash")->Apply(flows_args)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // rte_hash allocates from the EAL's heap: 1M flows (2M keys) need more
  // than the default.
  const std::vector<std::string> eal{"-m", "2048"};
  nfb::start_dpdk_eal(eal);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
