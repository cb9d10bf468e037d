// The netfilter pipeline against the kernel: every scenario of
// tests/scenarios.h (the seed case, docker 27/28 mixed traffic) runs through
// the model, and its `iptables-save -c` must equal what the real kernel
// counted for the same frames (recorded in tests/data/scenarios/*.kernel by
// kernel_host_test; pipeline_kernel_test compares with the live kernel too).
// The fast path must not change a single counter.
#include "classifier/pipeline.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "classifier/frame_parser.h"
#include "classifier/iptables_save.h"
#include "tests/kernel_host.h"
#include "tests/scenarios.h"

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
  std::vector<Fate> fates;
  std::vector<uint8_t> states;
};

// Runs a scenario's frames through a fresh pipeline on the default Docker
// host, one frame per millisecond of capture time, one burst per frame.
ModelRun run_model(const Scenario& s, bool fast_path) {
  const HostModel host = default_docker_host();
  const Ruleset rules = read_iptables_save(s.ruleset, s.name);
  PipelineConfig config;
  config.fast_path = fast_path;
  auto pipeline = Pipeline::build(rules, host, config);
  ModelRun run;
  uint64_t ts = 1'764'000'000'000'000'000ULL;
  for (const InjectedFrame& f : s.frames) {
    std::vector<uint8_t> frame = f.bytes;
    const auto iface = host.iface_id(f.ingress);
    EXPECT_TRUE(iface.has_value()) << f.ingress;
    PacketIn in;
    const ParseStatus st = parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet,
                                       iface.value_or(0), in.key);
    ts += 1'000'000;
    if (st != ParseStatus::Ok) {
      run.fates.push_back(Fate::DroppedByRouting);  // the kernel drops it before any hook
      run.states.push_back(0);
      continue;
    }
    in.frame = frame.data();
    in.len = static_cast<uint32_t>(frame.size());
    in.in_iface = *iface;
    in.ts_ns = ts;
    PacketOut out;
    pipeline->process(std::span(&in, 1), std::span(&out, 1));
    run.fates.push_back(out.fate);
    run.states.push_back(out.ct_state);
  }
  WriteOptions wo;
  wo.counters = true;
  run.counters = write_iptables_save(pipeline->counters_ruleset(), wo);
  run.stats = pipeline->stats();
  return run;
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

TEST_P(PipelineScenario, FastPathChangesNoCounter) {
  const Scenario s = scenario_named(GetParam());
  const ModelRun slow = run_model(s, false);
  const ModelRun fast = run_model(s, true);
  EXPECT_EQ(slow.counters, fast.counters);
  EXPECT_EQ(slow.fates, fast.fates);
  EXPECT_EQ(slow.states, fast.states);
  EXPECT_EQ(slow.stats.by_fate, fast.stats.by_fate);
  EXPECT_EQ(slow.stats.fast_path_packets, 0U);
  // Established flows do take the fast path (the seed case's connections and
  // the mixed traffic's data packets).
  EXPECT_GT(fast.stats.fast_path_packets, 0U);
  EXPECT_LT(fast.stats.walked_packets, slow.stats.walked_packets);
}

INSTANTIATE_TEST_SUITE_P(Recorded, PipelineScenario,
                         ::testing::Values("seed_case_naive", "seed_case_fixed", "seed_case_post_dnat",
                                           "docker27_mixed", "docker28_mixed"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

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

}  // namespace
}  // namespace nfb
