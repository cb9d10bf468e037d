// Benchmark regression verdicts (tools/compare.h): the Mann-Whitney U test
// against published and hand-computed values, reading Google Benchmark JSON,
// thresholds files, the verdicts, and `nfbench compare` end to end (exit
// codes 0, 1 and 2 from the built binary).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "base/load_error.h"
#include "tests/support/netns.h"
#include "tests/support/test_data.h"
#include "tools/compare.h"

namespace nfb {
namespace {

using nlohmann::json;

// ---- Mann-Whitney U ----

TEST(MannWhitneyU, FullySeparatedNineVsNineIsTheSmallestExactP) {
  const std::vector<double> low{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> high{10, 11, 12, 13, 14, 15, 16, 17, 18};
  // One ordering of C(18, 9) = 48620 puts every low value first; two-sided.
  const UTestResult r = mann_whitney_u(low, high);
  EXPECT_EQ(r.method, UTestMethod::kExact);
  EXPECT_EQ(r.u, 0);
  EXPECT_DOUBLE_EQ(r.p, 2.0 / 48620);
  const UTestResult reversed = mann_whitney_u(high, low);
  EXPECT_EQ(reversed.u, 81);
  EXPECT_DOUBLE_EQ(reversed.p, 2.0 / 48620);
  EXPECT_DOUBLE_EQ(smallest_two_sided_p(9, 9), 2.0 / 48620);
}

TEST(MannWhitneyU, ScipyDocumentationExample) {
  // scipy.stats.mannwhitneyu's example (ages at diagnosis, from its
  // reference [4]): U1 = 17, exact two-sided p = 0.1111 (= 14 / 126).
  const std::vector<double> males{19, 22, 16, 29, 24};
  const std::vector<double> females{20, 11, 17, 12};
  const UTestResult r = mann_whitney_u(males, females);
  EXPECT_EQ(r.method, UTestMethod::kExact);
  EXPECT_EQ(r.u, 17);
  EXPECT_NEAR(r.p, 1.0 / 9, 1e-12);
}

TEST(MannWhitneyU, RWilcoxTestExample) {
  // R's ?wilcox.test example (Hollander & Wolfe, permeability): W = 35;
  // alternative "greater" p = 0.1272, so two-sided 0.2544 (764 / 3003).
  const std::vector<double> x{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
  const std::vector<double> y{1.15, 0.88, 0.90, 0.74, 1.21};
  const UTestResult r = mann_whitney_u(x, y);
  EXPECT_EQ(r.method, UTestMethod::kExact);
  EXPECT_EQ(r.u, 35);
  EXPECT_NEAR(r.p, 0.2544122544, 1e-9);
}

TEST(MannWhitneyU, TiesUseTheCorrectedNormalApproximation) {
  // By hand: pooled 1a 2a 2a 2b 3a 3b 4b 5b; mid-ranks 1, 3, 3, 3, 5.5, 5.5,
  // 7, 8; R_a = 1 + 3 + 3 + 5.5 = 12.5, U = 12.5 - 4*5/2 = 2.5. Tie groups of
  // 3 and 2: sum(t^3 - t) = 24 + 6 = 30. mean 8, variance
  // 16/12 * (9 - 30/56) = 11.2857; z = (|2.5 - 8| - 0.5) / 3.35942 = 1.48835;
  // p = erfc(z / sqrt 2) = 0.136658.
  const std::vector<double> a{1, 2, 2, 3};
  const std::vector<double> b{2, 3, 4, 5};
  const UTestResult r = mann_whitney_u(a, b);
  EXPECT_EQ(r.method, UTestMethod::kNormal);
  EXPECT_EQ(r.u, 2.5);
  EXPECT_NEAR(r.p, 0.1366582477, 1e-9);
}

TEST(MannWhitneyU, LargeSamplesUseTheNormalApproximation) {
  // scipy's asymptotic p for its example above: 0.11134688653314041. Here
  // 21 vs 21 fully separated: U = 0, mean 220.5, variance 441 * 43 / 12,
  // z = 220 / 39.7524 = 5.53426, p = 3.1254e-8.
  std::vector<double> a, b;
  for (int i = 0; i < 21; ++i) {
    a.push_back(i);
    b.push_back(100 + i);
  }
  const UTestResult r = mann_whitney_u(a, b);
  EXPECT_EQ(r.method, UTestMethod::kNormal);
  EXPECT_EQ(r.u, 0);
  EXPECT_NEAR(r.p, 3.125399998e-8, 1e-15);
}

TEST(MannWhitneyU, AllTiedGivesPOne) {
  const std::vector<double> a{5, 5, 5};
  const UTestResult r = mann_whitney_u(a, a);
  EXPECT_EQ(r.p, 1);
  EXPECT_EQ(r.u, 4.5);
}

TEST(MannWhitneyU, EmptySampleIsRejected) {
  const std::vector<double> a{1, 2};
  EXPECT_THROW(mann_whitney_u(a, {}), std::invalid_argument);
}

TEST(MannWhitneyU, SmallestTwoSidedP) {
  EXPECT_DOUBLE_EQ(smallest_two_sided_p(3, 3), 0.1);   // 2 / 20: never below 0.05
  EXPECT_DOUBLE_EQ(smallest_two_sided_p(4, 4), 2.0 / 70);
  EXPECT_DOUBLE_EQ(smallest_two_sided_p(2, 5), 2.0 / 21);
  EXPECT_EQ(smallest_two_sided_p(1, 1), 1);
  EXPECT_EQ(smallest_two_sided_p(0, 9), 1);
}

TEST(Median, OddEvenEmpty) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(median({})));
}

// ---- Google Benchmark JSON ----

struct Bench {
  std::string name;
  std::string unit;
  double base;  // real_time of the fastest repetition, in `unit`
};

// A run as Google Benchmark writes it with --benchmark_repetitions=reps:
// every repetition an iteration entry (times base * (1 + k/100), in a
// shuffled order, as interleaved repetitions give), then the mean, median,
// stddev and cv aggregates; a context with extra keys.
json make_run(const std::vector<Bench>& benches, int reps) {
  json run;
  run["context"] = {{"date", "2026-11-27T10:00:00+00:00"}, {"num_cpus", 2}, {"git_commit", "0123456789ab"}};
  run["benchmarks"] = json::array();
  const int order[] = {4, 0, 7, 2, 8, 1, 5, 3, 6, 9, 11, 10};
  for (const Bench& b : benches) {
    std::vector<double> times;
    for (int k = 0, i = 0; i < 12 && k < reps; ++i) {
      if (order[i] >= reps) continue;
      const double t = b.base * (1 + order[i] / 100.0);
      times.push_back(t);
      run["benchmarks"].push_back({{"name", b.name}, {"run_name", b.name}, {"run_type", "iteration"},
                                   {"repetitions", reps}, {"repetition_index", k++}, {"threads", 1},
                                   {"iterations", 1000}, {"real_time", t}, {"cpu_time", t * 0.99},
                                   {"time_unit", b.unit}, {"items_per_second", 1e9 / t}, {"cycles", 42.0}});
    }
    for (const char* agg : {"mean", "median", "stddev", "cv"}) {
      run["benchmarks"].push_back({{"name", b.name + "_" + agg}, {"run_name", b.name}, {"run_type", "aggregate"},
                                   {"aggregate_name", agg}, {"repetitions", reps}, {"threads", 1},
                                   {"iterations", reps}, {"real_time", median(times)},
                                   {"cpu_time", median(times) * 0.99}, {"time_unit", b.unit}});
    }
  }
  return run;
}

// The same run with every real_time (and, if asked, cpu_time) times `factor`.
json scaled(json run, double factor, bool cpu_too = false) {
  for (json& e : run["benchmarks"]) {
    e["real_time"] = e["real_time"].get<double>() * factor;
    if (cpu_too) e["cpu_time"] = e["cpu_time"].get<double>() * factor;
  }
  return run;
}

BenchmarkRun parse(const json& j, const std::string& file = "RUN.json") { return parse_benchmark_run(j.dump(), file); }

const std::vector<Bench> kBenches{
    {"BM_ParseBurstMixed", "ns", 812.5},
    {"BM_Pipeline/fast:1/new_pct:1", "ms", 79.4},
    {"Conntrack/Insert/ours/flows:100000", "us", 4312.0},
    {"BM_DtreeBuild/rules:10000", "s", 1.25},
};

// The message of the LoadError `f` throws ("" when it throws none).
template <typename F>
std::string load_error_of(F f) {
  try {
    f();
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

TEST(BenchmarkRunFile, GroupsRepetitionsAndNormalisesUnits) {
  const BenchmarkRun run = parse(make_run(kBenches, 9));
  ASSERT_EQ(run.benchmarks.size(), 4U);
  EXPECT_TRUE(run.notes.empty());
  for (size_t i = 0; i < kBenches.size(); ++i) {
    const BenchmarkSamples& b = run.benchmarks[i];
    EXPECT_EQ(b.run_name, kBenches[i].name);
    ASSERT_EQ(b.real_ns.size(), 9U) << b.run_name;  // aggregates are not samples
    EXPECT_EQ(b.cpu_ns.size(), 9U);
    EXPECT_FALSE(b.from_median_aggregate);
    EXPECT_DOUBLE_EQ(median(b.real_ns), kBenches[i].base * time_unit_ns(kBenches[i].unit) * 1.04);
  }
  EXPECT_DOUBLE_EQ(run.benchmarks[0].real_ns[1], 812.5);         // ns
  EXPECT_DOUBLE_EQ(run.benchmarks[1].real_ns[1], 79.4e6);        // ms
  EXPECT_DOUBLE_EQ(run.benchmarks[2].real_ns[1], 4312.0e3);      // us
  EXPECT_DOUBLE_EQ(run.benchmarks[3].real_ns[1], 1.25e9);        // s
  EXPECT_DOUBLE_EQ(run.benchmarks[3].cpu_ns[1], 1.25e9 * 0.99);
  EXPECT_EQ(time_unit_ns("ns"), 1);
  EXPECT_EQ(time_unit_ns("us"), 1e3);
  EXPECT_EQ(time_unit_ns("ms"), 1e6);
  EXPECT_EQ(time_unit_ns("s"), 1e9);
  EXPECT_EQ(time_unit_ns("ps"), 0);
}

TEST(BenchmarkRunFile, SameTimeInEveryUnitComparesEqual) {
  json a = make_run({{"BM_A", "us", 1500}}, 5);
  json b = make_run({{"BM_A", "ms", 1.5}}, 5);
  const Comparison c = compare_runs(parse(a), parse(b), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 1U);
  EXPECT_NEAR(c.benchmarks[0].change, 0, 1e-12);
  EXPECT_EQ(c.benchmarks[0].verdict, Verdict::kSame);
}

TEST(BenchmarkRunFile, ErrorEntriesAreLeftOutWithANote) {
  json run = make_run({{"BM_A", "ns", 100}}, 5);
  run["benchmarks"].push_back({{"name", "BM_Broken"}, {"run_name", "BM_Broken"}, {"run_type", "iteration"},
                               {"error_occurred", true}, {"error_message", "no such ruleset"}});
  const BenchmarkRun r = parse(run, "OLD.json");
  ASSERT_EQ(r.benchmarks.size(), 1U);
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_EQ(r.notes[0],
            "OLD.json: benchmarks[9] (BM_Broken) left out: the benchmark reported an error: no such ruleset");
}

TEST(BenchmarkRunFile, AggregatesOnlyUsesTheMedianAsOneSample) {
  json run = make_run({{"BM_A", "ms", 10}}, 5);
  json only;
  only["benchmarks"] = json::array();
  for (const json& e : run["benchmarks"]) {
    if (e["run_type"] == "aggregate") only["benchmarks"].push_back(e);
  }
  const BenchmarkRun r = parse(only);
  ASSERT_EQ(r.benchmarks.size(), 1U);
  EXPECT_TRUE(r.benchmarks[0].from_median_aggregate);
  ASSERT_EQ(r.benchmarks[0].real_ns.size(), 1U);
  EXPECT_DOUBLE_EQ(r.benchmarks[0].real_ns[0], 10.2e6);
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_EQ(r.notes[0],
            "RUN.json: no per-repetition entries (aggregates only?): the median aggregate is the one sample of BM_A");
  // One sample a side: the test can never be significant; judged by the threshold.
  const Comparison c = compare_runs(r, parse(scaled(only, 1.3)), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 1U);
  EXPECT_FALSE(c.benchmarks[0].testable);
  EXPECT_EQ(c.benchmarks[0].verdict, Verdict::kRegressed);
}

TEST(BenchmarkRunFile, SameNameFromTwoProgramsIsNoted) {
  json run = make_run({{"BM_A", "ns", 100}}, 4);
  for (size_t i = 0; i < run["benchmarks"].size(); ++i) {
    run["benchmarks"][i]["program"] = i < 2 ? "one_bench" : "two_bench";
  }
  const BenchmarkRun r = parse(run, "RUN.json");
  ASSERT_EQ(r.notes.size(), 1U);
  EXPECT_EQ(r.notes[0], "RUN.json: BM_A is in programs one_bench and two_bench: their samples are pooled");
}

TEST(BenchmarkRunFile, NonFiniteNumbersAsGoogleBenchmarkWritesThem) {
  // Its JSON reporter writes NaN, -NaN, Infinity and -Infinity bare; the
  // same words inside strings stay as they are.
  const std::string text = R"({"context": {"note": "NaN \" Infinity"}, "benchmarks": [
    {"name": "BM_NaN", "run_name": "BM_NaN", "run_type": "iteration", "real_time": 2.5e+01,
     "cpu_time": 2.4e+01, "time_unit": "ns", "share": NaN, "rate": -Infinity},
    {"name": "BM_NaN_stddev", "run_name": "BM_NaN", "run_type": "aggregate", "aggregate_name": "stddev",
     "real_time": -NaN, "cpu_time": Infinity, "time_unit": "ns"}]})";
  const BenchmarkRun r = parse_benchmark_run(text, "X.json");
  ASSERT_EQ(r.benchmarks.size(), 1U);
  EXPECT_EQ(r.benchmarks[0].run_name, "BM_NaN");
  EXPECT_EQ(r.benchmarks[0].real_ns, std::vector<double>{25});

  EXPECT_EQ(load_error_of([] {
              parse_benchmark_run(
                  R"({"benchmarks": [{"name": "A", "real_time": NaN, "cpu_time": 1, "time_unit": "ns"}]})", "X.json");
            }),
            "X.json: benchmarks[0]: real_time is NaN, infinite or null, expected a time >= 0");
}

TEST(BenchmarkRunFile, BadInputNamesTheFileAndTheEntry) {
  json run = make_run({{"BM_A", "ns", 100}}, 3);
  run["benchmarks"][1].erase("real_time");
  EXPECT_EQ(load_error_of([&] { parse(run, "OLD.json"); }), "OLD.json: benchmarks[1]: no real_time");

  run = make_run({{"BM_A", "ns", 100}}, 3);
  run["benchmarks"][2]["time_unit"] = "ps";
  EXPECT_EQ(load_error_of([&] { parse(run, "NEW.json"); }),
            "NEW.json: benchmarks[2]: time_unit is \"ps\", expected \"ns\", \"us\", \"ms\" or \"s\"");

  run = make_run({{"BM_A", "ns", 100}}, 3);
  run["benchmarks"][0]["cpu_time"] = "fast";
  EXPECT_EQ(load_error_of([&] { parse(run, "X.json"); }), "X.json: benchmarks[0]: cpu_time is not a number");

  run = make_run({{"BM_A", "ns", 100}}, 3);
  run["benchmarks"][0]["real_time"] = -1.0;
  EXPECT_EQ(load_error_of([&] { parse(run, "X.json"); }),
            "X.json: benchmarks[0]: real_time is -1, expected a time >= 0");

  run = make_run({{"BM_A", "ns", 100}}, 3);
  run["benchmarks"][0].erase("run_name");
  run["benchmarks"][0].erase("name");
  EXPECT_EQ(load_error_of([&] { parse(run, "X.json"); }), "X.json: benchmarks[0]: no run_name or name");

  EXPECT_EQ(load_error_of([] { parse_benchmark_run("{\"context\": {}}", "X.json"); }),
            "X.json: expected Google Benchmark JSON: an object with a \"benchmarks\" array");
  EXPECT_EQ(load_error_of([] { parse_benchmark_run("[1, 2]", "X.json"); }),
            "X.json: expected Google Benchmark JSON: an object with a \"benchmarks\" array");
  EXPECT_EQ(load_error_of([] { parse_benchmark_run("{\"benchmarks\": [1]}", "X.json"); }),
            "X.json: benchmarks[0]: expected an object");
  EXPECT_EQ(load_error_of([] { parse_benchmark_run("{\"benchmarks\": [", "X.json"); }).rfind("X.json: not JSON: ", 0),
            0U);
  EXPECT_EQ(load_error_of([] { load_benchmark_run("/nonexistent/run.json"); }).rfind("/nonexistent/run.json: ", 0), 0U);
}

// ---- thresholds ----

TEST(ThresholdsFile, FirstWholeNameMatchWins) {
  const Thresholds t = parse_thresholds(R"({"default": 0.03, "alpha": 0.01, "benchmarks": [
      {"match": "BM_Pipeline/.*", "threshold": 0.2},
      {"match": "BM_Pipeline/fast:1.*", "threshold": 0.5},
      {"match": "Conntrack", "threshold": 0.4}]})",
                                        "t.json");
  EXPECT_EQ(t.default_threshold, 0.03);
  EXPECT_EQ(t.alpha, 0.01);
  ASSERT_EQ(t.rules.size(), 3U);
  EXPECT_EQ(t.threshold_for("BM_Pipeline/fast:1/new_pct:1"), 0.2);  // the first, not the more specific
  EXPECT_EQ(t.threshold_for("Conntrack"), 0.4);
  EXPECT_EQ(t.threshold_for("Conntrack/Insert/ours"), 0.03);  // the whole name must match
  EXPECT_EQ(t.threshold_for("X/BM_Pipeline/fast:0"), 0.03);
}

TEST(ThresholdsFile, DefaultsWhenEmpty) {
  const Thresholds t = parse_thresholds("{}", "t.json");
  EXPECT_EQ(t.default_threshold, 0.05);
  EXPECT_EQ(t.alpha, 0.05);
  EXPECT_TRUE(t.rules.empty());
  EXPECT_EQ(Thresholds{}.threshold_for("anything"), 0.05);
}

TEST(ThresholdsFile, TheCommittedFileGivesBuildBenchmarksMoreRoom) {
  const Thresholds t = load_thresholds((test::source_root() / "results/thresholds.json").string());
  EXPECT_EQ(t.default_threshold, 0.05);
  EXPECT_EQ(t.alpha, 0.05);
  EXPECT_EQ(t.threshold_for("BM_DtreeBuild/rules:10000"), 0.15);
  EXPECT_EQ(t.threshold_for("Classifier/build/acl1_10k"), 0.15);
  EXPECT_EQ(t.threshold_for("BM_Pipeline/fast:1/new_pct:1"), 0.05);
  EXPECT_EQ(t.threshold_for("Conntrack/Insert/ours"), 0.05);
}

TEST(ThresholdsFile, BadInputNamesTheFileAndTheEntry) {
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"defualt": 0.1})", "t.json"); }),
            "t.json: unknown key \"defualt\" (expected default, alpha, benchmarks)");
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"alpha": 1.5})", "t.json"); }),
            "t.json: alpha is 1.5, expected a number in (0, 1)");
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"default": -0.1})", "t.json"); }),
            "t.json: default is -0.1, expected a number >= 0");
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"benchmarks": [{"match": "a"}]})", "t.json"); }),
            "t.json: benchmarks[0]: no threshold");
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"benchmarks": [{"threshold": 0.1, "mtach": "a"}]})", "t.json"); }),
            "t.json: benchmarks[0]: unknown key \"mtach\" (expected match, threshold)");
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"benchmarks": [{"match": "(", "threshold": 0.1}]})", "t.json"); })
                .rfind("t.json: benchmarks[0]: match \"(\" is not an ECMAScript regex: ", 0),
            0U);
  EXPECT_EQ(load_error_of([] { parse_thresholds(R"({"benchmarks": {}})", "t.json"); }),
            "t.json: benchmarks: expected an array of {\"match\": REGEX, \"threshold\": X}");
}

// ---- verdicts ----

TEST(CompareRuns, ARunAgainstItselfIsNoRegression) {
  const BenchmarkRun run = parse(make_run(kBenches, 9));
  const Comparison c = compare_runs(run, run, Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 4U);
  for (const BenchmarkComparison& b : c.benchmarks) {
    EXPECT_EQ(b.verdict, Verdict::kSame) << b.run_name;
    EXPECT_EQ(b.change, 0);
    EXPECT_EQ(b.test.p, 1);  // every value tied with its copy
    EXPECT_TRUE(b.testable);
  }
  EXPECT_FALSE(c.regressed());
  EXPECT_DOUBLE_EQ(c.geomean_ratio, 1);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_TRUE(c.added.empty());
  EXPECT_TRUE(c.removed.empty());
  const std::string text = format_comparison(c);
  EXPECT_EQ(text.substr(text.rfind('\n', text.size() - 2) + 1), "no regression (0 of 4 benchmarks improved)\n");
}

TEST(CompareRuns, ThirtyPercentSlowerRegressesEveryBenchmark) {
  const json old_run = make_run(kBenches, 9);
  const Comparison c = compare_runs(parse(old_run), parse(scaled(old_run, 1.3)), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 4U);
  for (const BenchmarkComparison& b : c.benchmarks) {
    EXPECT_EQ(b.verdict, Verdict::kRegressed) << b.run_name;
    EXPECT_NEAR(b.change, 0.3, 1e-12);
    EXPECT_EQ(b.test.method, UTestMethod::kExact);
    EXPECT_DOUBLE_EQ(b.test.p, 2.0 / 48620);  // the samples no longer overlap
  }
  EXPECT_TRUE(c.regressed());
  EXPECT_NEAR(c.geomean_ratio, 1.3, 1e-12);
  const std::string text = format_comparison(c);
  EXPECT_EQ(text.substr(text.rfind('\n', text.size() - 2) + 1),
            "REGRESSION: 4 of 4 benchmarks regressed: BM_ParseBurstMixed, BM_Pipeline/fast:1/new_pct:1, "
            "Conntrack/Insert/ours/flows:100000, BM_DtreeBuild/rules:10000\n");
  EXPECT_NE(text.find("BM_Pipeline/fast:1/new_pct:1"), std::string::npos);
  EXPECT_NE(text.find("82.58 ms"), std::string::npos) << text;   // old median 79.4 * 1.04
  EXPECT_NE(text.find("107.35 ms"), std::string::npos) << text;  // new median
  EXPECT_NE(text.find("+30.0%"), std::string::npos) << text;

  // cpu_time did not move.
  const Comparison cpu = compare_runs(parse(old_run), parse(scaled(old_run, 1.3)), Thresholds{}, TimeMetric::kCpuTime);
  EXPECT_FALSE(cpu.regressed());
  for (const BenchmarkComparison& b : cpu.benchmarks) EXPECT_EQ(b.verdict, Verdict::kSame) << b.run_name;
}

TEST(CompareRuns, FasterIsImprovedAndNoRegression) {
  const json old_run = make_run(kBenches, 9);
  const Comparison c = compare_runs(parse(old_run), parse(scaled(old_run, 0.7)), Thresholds{});
  for (const BenchmarkComparison& b : c.benchmarks) EXPECT_EQ(b.verdict, Verdict::kImproved) << b.run_name;
  EXPECT_FALSE(c.regressed());
  EXPECT_NEAR(c.geomean_ratio, 0.7, 1e-12);
}

TEST(CompareRuns, PerBenchmarkThresholdsDecide) {
  // 10 % slower everywhere: above the 5 % default, below the Build 15 %.
  const json old_run = make_run(kBenches, 9);
  const Thresholds t = load_thresholds((test::source_root() / "results/thresholds.json").string());
  const Comparison c = compare_runs(parse(old_run), parse(scaled(old_run, 1.1)), t);
  ASSERT_EQ(c.benchmarks.size(), 4U);
  EXPECT_EQ(c.benchmarks[0].verdict, Verdict::kRegressed);
  EXPECT_EQ(c.benchmarks[1].verdict, Verdict::kRegressed);
  EXPECT_EQ(c.benchmarks[2].verdict, Verdict::kRegressed);
  EXPECT_EQ(c.benchmarks[3].run_name, "BM_DtreeBuild/rules:10000");
  EXPECT_EQ(c.benchmarks[3].threshold, 0.15);
  EXPECT_EQ(c.benchmarks[3].verdict, Verdict::kSame);
  EXPECT_LT(c.benchmarks[3].test.p, 0.05);  // significant, but within its threshold
}

TEST(CompareRuns, SignificanceIsNeededWhenTheTestCanReachIt) {
  // Overlapping samples: the median moves 6 % but the U test sees no difference.
  json old_run;
  json new_run;
  old_run["benchmarks"] = json::array();
  new_run["benchmarks"] = json::array();
  const std::vector<double> a{100, 101, 102, 103, 104, 105, 180, 190, 200};
  const std::vector<double> b{99, 100.5, 101.5, 108, 110, 111, 112, 113, 114};
  // Entries as older Google Benchmark versions wrote them: no run_name, no run_type.
  const auto entry = [](double v) {
    return json{{"name", "BM_A"}, {"real_time", v}, {"cpu_time", v}, {"time_unit", "ns"}};
  };
  for (double v : a) old_run["benchmarks"].push_back(entry(v));
  for (double v : b) new_run["benchmarks"].push_back(entry(v));
  const Comparison c = compare_runs(parse(old_run), parse(new_run), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 1U);
  EXPECT_NEAR(c.benchmarks[0].change, 110.0 / 104 - 1, 1e-12);
  EXPECT_GT(c.benchmarks[0].test.p, 0.05);
  EXPECT_TRUE(c.benchmarks[0].testable);
  EXPECT_EQ(c.benchmarks[0].verdict, Verdict::kSame);
}

TEST(CompareRuns, TooFewSamplesWarnAndJudgeByTheThreshold) {
  const json old_run = make_run({{"BM_A", "ns", 100}, {"BM_B", "ns", 200}}, 3);
  const Comparison slower = compare_runs(parse(old_run), parse(scaled(old_run, 1.3)), Thresholds{});
  ASSERT_EQ(slower.benchmarks.size(), 2U);
  for (const BenchmarkComparison& b : slower.benchmarks) {
    EXPECT_FALSE(b.testable);
    EXPECT_DOUBLE_EQ(b.test.p, 0.1);  // the best 3 vs 3 can do
    EXPECT_EQ(b.verdict, Verdict::kRegressed);
  }
  ASSERT_EQ(slower.warnings.size(), 1U);
  EXPECT_EQ(slower.warnings[0],
            "with 3 vs 3 samples the U test cannot reach p < 0.05 (its smallest two-sided p is 0.1): 2 benchmarks "
            "judged by the threshold alone: BM_A, BM_B");
  EXPECT_NE(format_comparison(slower).find("regressed *\n"), std::string::npos);

  const Comparison within = compare_runs(parse(old_run), parse(scaled(old_run, 1.03)), Thresholds{});
  for (const BenchmarkComparison& b : within.benchmarks) EXPECT_EQ(b.verdict, Verdict::kSame);
  EXPECT_FALSE(within.regressed());
  EXPECT_EQ(within.warnings.size(), 1U);

  // With alpha 0.25, 3 vs 3 can be significant (p 0.1, after Holm's
  // correction for the two benchmarks 0.2): no warning.
  Thresholds loose;
  loose.alpha = 0.25;
  const Comparison tested = compare_runs(parse(old_run), parse(scaled(old_run, 1.3)), loose);
  EXPECT_TRUE(tested.warnings.empty());
  EXPECT_TRUE(tested.benchmarks[0].testable);
  EXPECT_EQ(tested.benchmarks[0].verdict, Verdict::kRegressed);
}

// Holm's correction: m benchmarks all 30% slower, 9 vs 9 fully separated
// samples, so each raw p is 2 / C(18, 9) = 4.1e-5. Adjusted, the smallest
// is m times that: 1000 benchmarks give 0.041 (< 0.05: regressed), 2000
// give 0.082 (not significant: chance alone would give several of 2000
// such p values under alpha).
TEST(CompareRuns, HolmCorrectsForTheNumberOfBenchmarks) {
  const double p = 2.0 / 48620;
  for (const size_t m : {size_t{1000}, size_t{2000}}) {
    std::vector<Bench> benches;
    for (size_t i = 0; i < m; ++i) benches.push_back({"BM_" + std::to_string(i), "ns", 100.0 + static_cast<double>(i)});
    const json old_run = make_run(benches, 9);
    const Comparison c = compare_runs(parse(old_run), parse(scaled(old_run, 1.3)), Thresholds{});
    ASSERT_EQ(c.benchmarks.size(), m);
    for (const BenchmarkComparison& b : c.benchmarks) {
      EXPECT_DOUBLE_EQ(b.test.p, p);
      EXPECT_DOUBLE_EQ(b.p_holm, static_cast<double>(m) * p);  // equal p values: all adjust to the largest
    }
    EXPECT_EQ(c.regressed(), m == 1000) << m;
  }
  // Unequal p values: the k-th smallest times (m - k), made monotone.
  json mixed = make_run({{"BM_A", "ns", 100}, {"BM_B", "ns", 200}, {"BM_C", "ns", 300}}, 9);
  json slower = scaled(mixed, 1.3);
  for (json& e : slower["benchmarks"]) {  // BM_C: only 3% slower, overlapping samples
    if (e["run_name"] == "BM_C") e["real_time"] = e["real_time"].get<double>() / 1.3 * 1.03;
  }
  const Comparison c = compare_runs(parse(mixed), parse(slower), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 3U);
  EXPECT_DOUBLE_EQ(c.benchmarks[0].p_holm, 3 * p);
  EXPECT_DOUBLE_EQ(c.benchmarks[1].p_holm, 3 * p);  // max(3p, 2p)
  EXPECT_GT(c.benchmarks[2].test.p, p);
  EXPECT_DOUBLE_EQ(c.benchmarks[2].p_holm, std::min(1.0, std::max(3 * p, c.benchmarks[2].test.p)));
}

TEST(CompareRuns, AddedAndRemovedAreNeverRegressions) {
  const json old_run = make_run({{"BM_A", "ns", 100}, {"BM_Gone", "ns", 50}}, 5);
  const json new_run = make_run({{"BM_New", "ns", 1e6}, {"BM_A", "ns", 100}}, 5);
  const Comparison c = compare_runs(parse(old_run, "OLD.json"), parse(new_run, "NEW.json"), Thresholds{});
  ASSERT_EQ(c.benchmarks.size(), 1U);
  EXPECT_EQ(c.benchmarks[0].run_name, "BM_A");
  EXPECT_EQ(c.added, std::vector<std::string>{"BM_New"});
  EXPECT_EQ(c.removed, std::vector<std::string>{"BM_Gone"});
  EXPECT_FALSE(c.regressed());
  const std::string text = format_comparison(c);
  EXPECT_NE(text.find("added (only in NEW.json): BM_New\n"), std::string::npos) << text;
  EXPECT_NE(text.find("removed (only in OLD.json): BM_Gone\n"), std::string::npos) << text;

  const Comparison none = compare_runs(parse(make_run({{"BM_X", "ns", 1}}, 5)), parse(new_run), Thresholds{});
  EXPECT_TRUE(std::isnan(none.geomean_ratio));
  EXPECT_FALSE(none.regressed());
}

TEST(CompareRuns, JsonOutput) {
  const json old_run = make_run(kBenches, 9);
  const Comparison c = compare_runs(parse(old_run, "OLD.json"), parse(scaled(old_run, 1.3), "NEW.json"), Thresholds{});
  const json j = json::parse(comparison_json(c));
  EXPECT_EQ(j["old"], "OLD.json");
  EXPECT_EQ(j["new"], "NEW.json");
  EXPECT_EQ(j["metric"], "real_time");
  EXPECT_EQ(j["regression"], true);
  ASSERT_EQ(j["benchmarks"].size(), 4U);
  const json& b = j["benchmarks"][1];
  EXPECT_EQ(b["name"], "BM_Pipeline/fast:1/new_pct:1");
  EXPECT_EQ(b["verdict"], "regressed");
  EXPECT_EQ(b["test"], "exact");
  EXPECT_EQ(b["old_samples"], 9);
  EXPECT_NEAR(b["old_median_ns"].get<double>(), 79.4e6 * 1.04, 1e-3);
  EXPECT_NEAR(b["change"].get<double>(), 0.3, 1e-12);
  EXPECT_NEAR(j["geomean_ratio"].get<double>(), 1.3, 1e-12);
}

// ---- nfbench compare, end to end ----

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

CommandResult nfbench_compare(std::vector<std::string> args) {
  const char* build = std::getenv("NFB_BUILD_ROOT");
  args.insert(args.begin(), {std::string(build != nullptr ? build : ".") + "/tools/nfbench", "compare"});
  return run_command(args);
}

TEST(NfbenchCompare, ExitCodes) {
  const json old_run = make_run(kBenches, 9);
  const std::string old_file = write_temp("cmp-old.json", old_run.dump(1));
  const std::string same_file = write_temp("cmp-same.json", old_run.dump());
  const std::string slow_file = write_temp("cmp-slow.json", scaled(old_run, 1.3).dump());

  const CommandResult same = nfbench_compare({old_file, same_file});
  EXPECT_EQ(same.exit_code, 0) << same.describe();
  EXPECT_NE(same.out.find("BM_DtreeBuild/rules:10000"), std::string::npos) << same.out;
  EXPECT_TRUE(same.out.ends_with("no regression (0 of 4 benchmarks improved)\n")) << same.out;

  const CommandResult slow = nfbench_compare({old_file, slow_file});
  EXPECT_EQ(slow.exit_code, 1) << slow.describe();
  EXPECT_NE(slow.out.find("\nREGRESSION: 4 of 4 benchmarks regressed"), std::string::npos) << slow.out;
  EXPECT_TRUE(slow.err.empty()) << slow.err;

  const CommandResult cpu = nfbench_compare({old_file, slow_file, "--metric", "cpu_time"});
  EXPECT_EQ(cpu.exit_code, 0) << cpu.describe();

  const CommandResult as_json = nfbench_compare({old_file, slow_file, "--json"});
  EXPECT_EQ(as_json.exit_code, 1) << as_json.describe();
  const json j = json::parse(as_json.out);
  EXPECT_EQ(j["regression"], true);
  EXPECT_EQ(j["benchmarks"].size(), 4U);

  // A thresholds file that tolerates 40 %, and --alpha.
  const std::string loose = write_temp("cmp-loose.json", R"({"default": 0.4})");
  const CommandResult tolerated = nfbench_compare({old_file, slow_file, "--thresholds", loose});
  EXPECT_EQ(tolerated.exit_code, 0) << tolerated.describe();
  // 9 vs 9 cannot reach p < 1e-5 (2/48620 = 4.1e-5): judged by the threshold alone, with a warning.
  const CommandResult strict_alpha = nfbench_compare({old_file, slow_file, "--alpha", "0.00001"});
  EXPECT_EQ(strict_alpha.exit_code, 1) << strict_alpha.describe();
  EXPECT_NE(strict_alpha.out.find("warning: with 9 vs 9 samples the U test cannot reach p < 1e-05"), std::string::npos)
      << strict_alpha.out;

  const std::string bad = write_temp("cmp-bad.json", R"({"benchmarks": [{"name": "BM_A", "time_unit": "ns"}]})");
  const CommandResult invalid = nfbench_compare({old_file, bad});
  EXPECT_EQ(invalid.exit_code, 2) << invalid.describe();
  EXPECT_EQ(invalid.err, "nfbench: " + bad + ": benchmarks[0]: no real_time\n");
  EXPECT_TRUE(invalid.out.empty());

  const CommandResult missing = nfbench_compare({old_file, "/nonexistent/new.json"});
  EXPECT_EQ(missing.exit_code, 2) << missing.describe();
  EXPECT_EQ(missing.err.rfind("nfbench: /nonexistent/new.json: ", 0), 0U) << missing.err;

  const CommandResult not_json = nfbench_compare({write_temp("cmp-text.json", "BM_A 12 ns\n"), old_file});
  EXPECT_EQ(not_json.exit_code, 2) << not_json.describe();

  const std::string bad_thresholds =
      write_temp("cmp-bad-thresholds.json", R"({"benchmarks": [{"match": "[", "threshold": 1}]})");
  const CommandResult bad_t = nfbench_compare({old_file, same_file, "--thresholds", bad_thresholds});
  EXPECT_EQ(bad_t.exit_code, 2) << bad_t.describe();
  EXPECT_NE(bad_t.err.find("benchmarks[0]: match \"[\" is not an ECMAScript regex"), std::string::npos) << bad_t.err;

  const CommandResult bad_alpha = nfbench_compare({old_file, same_file, "--alpha", "1.5"});
  EXPECT_EQ(bad_alpha.exit_code, 2) << bad_alpha.describe();
  EXPECT_EQ(bad_alpha.err, "nfbench: --alpha 1.5 is not in (0, 1)\n");
}

// The committed baseline run (results/index.json names it): compared with
// itself no regression, against a copy with every time 30% slower exit 1.
// Runs that say they were made on different CPUs, with different CPU
// counts or from different inputs cannot be judged: exit 2 saying why,
// unless --force (then the reasons are warnings).
TEST(CompareRuns, MachineMismatchesAreFound) {
  json a = make_run(kBenches, 5);
  a["context"] = {{"cpu_model", "AMD EPYC 9R14"}, {"num_cpus", 2}, {"git_dirty", false},
                  {"inputs_sha256", {{"data/a.rules", "11"}, {"data/b.rules", "22"}}}};
  const BenchmarkRun old_run = parse_benchmark_run(a.dump(), "old.json");
  EXPECT_EQ(old_run.machine.cpu_model, "AMD EPYC 9R14");
  EXPECT_EQ(old_run.machine.num_cpus, 2U);
  EXPECT_TRUE(old_run.machine.inputs_recorded);
  EXPECT_TRUE(machine_mismatches(old_run, old_run).empty());

  json b = a;
  b["context"]["cpu_model"] = "Intel(R) Xeon(R) Platinum 8488C";
  b["context"]["num_cpus"] = 4;
  b["context"]["inputs_sha256"] = {{"data/a.rules", "11"}, {"data/b.rules", "23"}, {"data/c.rules", "33"}};
  b["context"]["git_dirty"] = true;
  const BenchmarkRun new_run = parse_benchmark_run(b.dump(), "new.json");
  const std::vector<std::string> m = machine_mismatches(old_run, new_run);
  ASSERT_EQ(m.size(), 3U);
  EXPECT_EQ(m[0], "old.json ran on \"AMD EPYC 9R14\" and new.json on \"Intel(R) Xeon(R) Platinum 8488C\": times "
                  "from different CPUs are not comparable");
  EXPECT_EQ(m[1], "old.json ran with 2 CPUs and new.json with 4");
  EXPECT_EQ(m[2], "the runs read different inputs: data/b.rules (different SHA-256), data/c.rules (only in new.json)");

  // In compare_runs they are warnings, with the dirty tree.
  const Comparison c = compare_runs(old_run, new_run, Thresholds{});
  EXPECT_EQ(c.warnings.size(), 4U);
  EXPECT_EQ(c.warnings.back(), "new.json was made from a tree with uncommitted changes (git_dirty)");

  // A run without a context cannot be checked: no mismatch, one warning.
  const BenchmarkRun plain = parse_benchmark_run(make_run(kBenches, 5).dump(), "plain.json");
  EXPECT_TRUE(machine_mismatches(old_run, plain).empty());
  const Comparison half = compare_runs(plain, old_run, Thresholds{});
  ASSERT_EQ(half.warnings.size(), 1U);
  EXPECT_EQ(half.warnings[0], "plain.json records no CPU model (context.cpu_model): whether both runs come from "
                              "one kind of machine cannot be checked");
}

TEST(NfbenchCompare, RunsFromDifferentCpusExitTwoUnlessForced) {
  json a = make_run(kBenches, 5);
  a["context"] = {{"cpu_model", "AMD EPYC 9R14"}};
  json b = a;
  b["context"]["cpu_model"] = "Intel(R) Xeon(R) Platinum 8488C";
  const std::string old_file = write_temp("cmp-amd.json", a.dump());
  const std::string new_file = write_temp("cmp-intel.json", scaled(b, 2.41).dump());
  const CommandResult refused = nfbench_compare({old_file, new_file});
  EXPECT_EQ(refused.exit_code, 2) << refused.describe();
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  EXPECT_NE(refused.err.find("cannot judge these runs against each other:\n  " + old_file +
                             " ran on \"AMD EPYC 9R14\" and " + new_file + " on \"Intel(R) Xeon(R) Platinum 8488C\""),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("or --force to compare anyway"), std::string::npos) << refused.err;
  const CommandResult forced = nfbench_compare({old_file, new_file, "--force"});
  EXPECT_EQ(forced.exit_code, 1) << forced.describe();
  EXPECT_NE(forced.out.find("times from different CPUs are not comparable"), std::string::npos) << forced.out;
}

TEST(NfbenchCompare, TheCommittedBaseline) {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  const std::string results = std::string(root != nullptr ? root : ".") + "/results/";
  std::ifstream index_file(results + "index.json");
  ASSERT_TRUE(index_file) << "no " << results << "index.json";
  const json index = json::parse(index_file);
  ASSERT_TRUE(index["baseline"].is_string()) << "index.json names no baseline";
  std::string file;
  for (const json& r : index["runs"]) {
    if (r["id"] == index["baseline"]) file = results + r["file"].get<std::string>();
  }
  ASSERT_FALSE(file.empty());
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  const json run = json::parse(in, nullptr, true, false);
  json slower = run;
  for (json& b : slower["benchmarks"]) {
    for (const char* k : {"real_time", "cpu_time"}) {
      if (b.contains(k) && b[k].is_number()) b[k] = b[k].get<double>() * 1.3;
    }
  }
  const std::string slow_file = write_temp("baseline-slower.json", slower.dump());
  const CommandResult same = nfbench_compare({file, file});
  EXPECT_EQ(same.exit_code, 0) << same.describe();
  const CommandResult slow = nfbench_compare({file, slow_file});
  EXPECT_EQ(slow.exit_code, 1) << slow.describe();
  EXPECT_NE(slow.out.find("\nREGRESSION: "), std::string::npos) << slow.out;
}

}  // namespace
}  // namespace nfb
