// Classifier lookup: packets per second and TSC cycles per packet of every
// registered algorithm (classifier/algorithms.def) on the ClassBench acl1, fw1 and
// ipc1 rule sets at 1K, 10K and 100K rules, in bursts of 1, 32 and 256 keys.
//
//   Lookup/<set>/<rules>/<algo>/burst:<n>
//
// Inputs (data/classbench, found under $NFB_SOURCE_ROOT or the current
// directory): the neurocuts_*_1k / *_10k rule sets and classbench_*_100k;
// the 1K and 10K sets are driven by their family's 10K trace (headers made
// for the 10K set: the 1K set sees the same traffic shape), the 100K sets by
// their own trace. Keys are preloaded and walked in trace order, wrapping.
//
// Each classifier is built once per (set, algorithm), before its first
// benchmark, and kept for the three burst sizes; the build is not timed by
// Google Benchmark but reported as counters on every one of its benchmarks:
// build_seconds and memory_bytes (what the built structure holds; for
// rte_acl its run-time structure on the DPDK heap). rte_acl runs its best
// classify method for this CPU (the EAL allows 512-bit SIMD).
//
// A filter may skip sets and algorithms (--benchmark_filter=Lookup/acl1/):
// classifiers are built only for benchmarks that run.
#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/dpdk_eal.h"
#include "classifier/acl.h"
#include "classifier/classifier.h"
#include "classifier/registry.h"
#include "rules/classbench.h"

namespace nfb {
namespace {

std::string data_dir() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/data/classbench/";
}

struct SetSpec {
  const char* family;  // acl1, fw1, ipc1
  uint32_t size;       // nominal rule count: 1000, 10000, 100000
  std::string rules_file() const {
    if (size == 100000) return data_dir() + "classbench_" + family + "_100k.rules.xz";
    return data_dir() + "neurocuts_" + family + (size == 1000 ? "_1k" : "_10k") + ".rules";
  }
  std::string trace_file() const {
    return data_dir() + "classbench_" + family + (size == 100000 ? "_100k" : "_10k") + ".trace.xz";
  }
  std::string name() const { return std::string(family) + "/" + std::to_string(size); }
};

struct Built {
  std::unique_ptr<Classifier> classifier;
  double build_seconds = 0;
  uint32_t rules = 0;
};

struct Loaded {
  RuleBoxes boxes;
  std::vector<ClassifierKey> keys;
};

// Control plane of the benchmark: rule sets, traces and classifiers, loaded
// and built on first use and kept (a set's classifiers serve its 3 bursts).
class Cache {
 public:
  const Loaded& set(const SetSpec& s) {
    auto it = sets_.find(s.name());
    if (it != sets_.end()) return it->second;
    // One set at a time in memory: the 100K traces hold 1M keys (108 MB).
    sets_.clear();
    built_.clear();
    Loaded l;
    const Ruleset rs = load_classbench_rules(s.rules_file());
    l.boxes = classbench_boxes(classbench_chain(rs));
    const ClassBenchTrace trace = load_classbench_trace(s.trace_file());
    l.keys.resize(trace.keys.size());
    for (size_t i = 0; i < l.keys.size(); ++i) l.keys[i] = classbench_key(trace.keys[i]);
    return sets_.emplace(s.name(), std::move(l)).first->second;
  }

  const Built& classifier(const SetSpec& s, const std::string& algo) {
    const std::string key = s.name() + "/" + algo;
    auto it = built_.find(key);
    if (it != built_.end()) return it->second;
    const Loaded& l = set(s);
    Built b;
    const auto t0 = std::chrono::steady_clock::now();
    b.classifier = make_classifier(algo, l.boxes);
    b.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    b.rules = l.boxes.rules;
    return built_.emplace(key, std::move(b)).first->second;
  }

 private:
  std::map<std::string, Loaded> sets_;
  std::map<std::string, Built> built_;
};

Cache& cache() {
  static Cache c;
  return c;
}

void BM_Lookup(benchmark::State& state, SetSpec spec, std::string algo, size_t burst) {
  const Built& b = cache().classifier(spec, algo);
  const std::vector<ClassifierKey>& keys = cache().set(spec).keys;
  std::vector<uint32_t> result(burst);
  size_t at = 0;
  uint64_t packets = 0;
  // TSC over the whole loop (a read per burst of 1 would cost as much as
  // the lookup).
  const uint64_t c0 = __rdtsc();
  for (auto _ : state) {
    if (at + burst > keys.size()) at = 0;
    b.classifier->lookup(std::span(keys.data() + at, burst), {}, std::span(result.data(), burst));
    benchmark::DoNotOptimize(result.data());
    at += burst;
    packets += burst;
  }
  const uint64_t cycles = __rdtsc() - c0;
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_packet"] = static_cast<double>(cycles) / static_cast<double>(packets);
  state.counters["build_seconds"] = b.build_seconds;
  state.counters["memory_bytes"] = static_cast<double>(b.classifier->memory_bytes());
  state.counters["rules"] = b.rules;
}

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  using namespace nfb;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // rte_acl's widest kernels need the EAL told so; 100K-rule contexts need
  // more than the default heap.
  const std::vector<std::string> eal{"--force-max-simd-bitwidth=512", "-m", "4096"};
  start_dpdk_eal(eal);
  for (const char* family : {"acl1", "fw1", "ipc1"}) {
    for (uint32_t size : {1000U, 10000U, 100000U}) {
      for (const ClassifierAlgorithm& algo : classifier_algorithms()) {
        for (size_t burst : {size_t{1}, size_t{32}, size_t{256}}) {
          const SetSpec spec{family, size};
          const std::string name =
              "Lookup/" + spec.name() + "/" + std::string(algo.name) + "/burst:" + std::to_string(burst);
          benchmark::RegisterBenchmark(name.c_str(), BM_Lookup, spec, std::string(algo.name), burst);
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
