// Benchmark regression verdicts: two Google Benchmark runs, OLD and NEW,
// compared benchmark by benchmark (`nfbench compare OLD.json NEW.json`).
//
// Input. A run file is Google Benchmark JSON (--benchmark_format=json or
// --benchmark_out) made with --benchmark_repetitions=N and without
// --benchmark_report_aggregates_only, so every repetition is an entry of the
// `benchmarks` array with "run_type": "iteration" and the benchmark's
// `run_name`. The array may hold the benchmarks of several programs
// (tools/bench_run.sh merges them and adds "program"). From the `context`
// object the machine and the inputs are read (RunMachine): runs made on
// different CPUs or from different inputs cannot be compared, and
// machine_mismatches() says why (`nfbench compare` exits 2 then, unless
// --force). Aggregate entries (mean, median, stddev, cv, BigO, RMS) are
// ignored, except that a benchmark with no iteration entry at all (a file
// written with aggregates only) takes its "median" aggregate as its one
// sample, with a note. Entries with "error_occurred" (or "skipped") true are
// left out with a note. Times (real_time, cpu_time) are per iteration in the
// entry's time_unit (ns, us, ms, s) and are kept in nanoseconds. The bare
// NaN and Infinity Google Benchmark writes for non-finite numbers (a
// counter's stddev) are read as null; a time that is one is an error.
//
// The verdict, per benchmark present in both runs, on the chosen metric
// (real_time by default):
//   change   median(NEW) / median(OLD) - 1 over the per-repetition times;
//            positive is slower
//   p        two-sided Mann-Whitney U test of OLD's samples against NEW's:
//            the exact distribution of U when both sides have at most
//            kExactMaxSamples samples and no value is tied; else the normal
//            approximation with tie correction and continuity correction
//            (what scipy.stats.mannwhitneyu does with method="asymptotic")
//   p_holm   p after Holm's step-down correction over every testable
//            benchmark of the comparison (m tests: the k-th smallest p,
//            from 0, times m - k, capped at 1, made monotone), so that the
//            chance of any false alarm stays alpha, not about alpha x m
//   verdict  regressed  change >  threshold and p_holm < alpha
//            improved   change < -threshold and p_holm < alpha
//            same       otherwise
// With n1 and n2 samples the smallest two-sided p the test can give is
// 2 / C(n1 + n2, n1) (every OLD sample below every NEW one). When that is not
// below alpha (3 vs 3 repetitions: 0.1) no difference can be significant: the
// comparison says so in a warning and judges those benchmarks by the
// threshold alone. Benchmarks in only one run are listed as added or
// removed, never as regressions. The overall figure is the geometric mean of
// the NEW/OLD median ratios over the benchmarks in both runs.
//
// Thresholds file (JSON; results/thresholds.json is the project's):
//   {"default": 0.05, "alpha": 0.05,
//    "benchmarks": [{"match": "REGEX", "threshold": 0.10}, ...]}
// Every key is optional; unknown keys are an error. A benchmark's threshold
// is that of the first entry whose ECMAScript regex matches its whole
// run_name, else `default` (0.05: 5 %). alpha is the significance level
// (0.05), in (0, 1).
//
// Control plane only: nothing here prints or exits. Bad input throws
// LoadError whose what() names the file and what was expected
// ("OLD.json: benchmarks[3]: no real_time").
#pragma once

#include <cstddef>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nfb {

/// One benchmark of one run: its per-repetition times, in nanoseconds, in
/// file order.
struct BenchmarkSamples {
  std::string run_name;
  std::vector<double> real_ns;
  std::vector<double> cpu_ns;
  bool from_median_aggregate = false;  // no iteration entries: the median aggregate is the one sample
};

/// Where a run was made, from its `context` (tools/bench_run.sh records
/// all of these; Google Benchmark itself only num_cpus). Empty or 0: not
/// recorded.
struct RunMachine {
  std::string cpu_model;  // context.cpu_model (/proc/cpuinfo's model name)
  unsigned num_cpus = 0;  // context.num_cpus
  std::vector<std::pair<std::string, std::string>> inputs;  // context.inputs_sha256: file -> digest, sorted
  bool inputs_recorded = false;
  bool git_dirty = false;  // context.git_dirty: the tree had uncommitted changes
  std::string git_commit;  // context.git_commit
};

/// A run file, read.
struct BenchmarkRun {
  std::string file;
  RunMachine machine;
  std::vector<BenchmarkSamples> benchmarks;  // in order of first appearance
  std::vector<std::string> notes;            // entries left out and why, aggregates used
};

/// Nanoseconds in one `unit` ("ns", "us", "ms", "s"), or 0 for anything else.
double time_unit_ns(std::string_view unit) noexcept;

/// Reads Google Benchmark JSON text; `file` names it in errors and notes.
/// Throws LoadError on text that is not JSON, has no `benchmarks` array, or
/// has an entry without a usable real_time, cpu_time or time_unit.
BenchmarkRun parse_benchmark_run(std::string_view json_text, const std::string& file);
/// The same, from a file (.xz too). Throws LoadError if it cannot be read.
BenchmarkRun load_benchmark_run(const std::string& path);

/// Both sides at most this many samples and no ties: the exact distribution.
inline constexpr size_t kExactMaxSamples = 20;

enum class UTestMethod { kExact, kNormal };

struct UTestResult {
  double u = 0;   // U of the first sample: pairs (a_i, b_j) with a_i > b_j, ties counting 1/2
  double p = 1;   // two-sided, in (0, 1]
  UTestMethod method = UTestMethod::kExact;
};

/// Two-sided Mann-Whitney U test of `a` against `b` (see the top of this
/// file). Both must be non-empty (std::invalid_argument otherwise). When
/// every value is tied the p is 1.
UTestResult mann_whitney_u(std::span<const double> a, std::span<const double> b);

/// 2 / C(n1 + n2, n1): the smallest two-sided p of the exact test for
/// samples of n1 and n2 values (1 when either is 0).
double smallest_two_sided_p(size_t n1, size_t n2) noexcept;

/// The median (mean of the middle two for an even count); NaN when empty.
double median(std::vector<double> values);

struct ThresholdRule {
  std::string match;  // ECMAScript regex, as written in the file
  std::regex regex;   // the same, compiled
  double threshold = 0.05;
};

struct Thresholds {
  double default_threshold = 0.05;
  double alpha = 0.05;
  std::vector<ThresholdRule> rules;  // the first whose regex matches the whole run_name wins

  double threshold_for(const std::string& run_name) const;
};

/// Reads a thresholds file's JSON text (format at the top of this file).
/// Throws LoadError naming `file` and the entry that is wrong.
Thresholds parse_thresholds(std::string_view json_text, const std::string& file);
Thresholds load_thresholds(const std::string& path);

enum class TimeMetric { kRealTime, kCpuTime };
std::string_view time_metric_name(TimeMetric m) noexcept;  // "real_time", "cpu_time"

enum class Verdict { kSame, kImproved, kRegressed };
std::string_view verdict_name(Verdict v) noexcept;  // "same", "improved", "regressed"

/// One benchmark present in both runs.
struct BenchmarkComparison {
  std::string run_name;
  size_t old_samples = 0;
  size_t new_samples = 0;
  double old_median_ns = 0;
  double new_median_ns = 0;
  double change = 0;      // new / old - 1; NaN when the old median is 0
  UTestResult test;
  double p_holm = 1;      // test.p after Holm's correction over the testable benchmarks (the verdict's p)
  bool testable = true;   // the U test can reach p < alpha with these sample counts
  double threshold = 0.05;
  Verdict verdict = Verdict::kSame;
};

struct Comparison {
  std::string old_file;
  std::string new_file;
  TimeMetric metric = TimeMetric::kRealTime;
  double alpha = 0.05;
  std::vector<BenchmarkComparison> benchmarks;  // in both runs, in OLD's order
  std::vector<std::string> added;               // only in NEW, in NEW's order
  std::vector<std::string> removed;             // only in OLD
  std::vector<std::string> warnings;            // the runs' notes, untestable sample counts, zero medians
  double geomean_ratio = 0;  // geometric mean of new/old medians; NaN when no benchmark has both

  bool regressed() const noexcept;  // some benchmark's verdict is kRegressed
};

/// Why OLD and NEW cannot be judged against each other, one sentence each:
/// different CPU models or CPU counts (when both runs record them), inputs
/// (rule sets, traces) with different digests or in one run only (when both
/// record inputs). Empty when they can. A run that records no CPU model
/// cannot be checked: that is a warning of compare_runs(), not a mismatch.
std::vector<std::string> machine_mismatches(const BenchmarkRun& old_run, const BenchmarkRun& new_run);

/// Compares NEW against OLD on `metric` with `thresholds` (its alpha too).
/// Machine mismatches, a CPU model recorded by one run only, and a NEW run
/// from a dirty tree are added to the warnings.
Comparison compare_runs(const BenchmarkRun& old_run, const BenchmarkRun& new_run, const Thresholds& thresholds,
                        TimeMetric metric = TimeMetric::kRealTime);

/// The comparison as text: a table (benchmark, old and new median with
/// units, change %, p, verdict), added and removed benchmarks, the warnings,
/// the geometric mean, and a last line "REGRESSION: ..." or "no regression".
std::string format_comparison(const Comparison& c);

/// The comparison as one JSON object on one line (no newline): old, new,
/// metric, alpha, benchmarks [{name, old_median_ns, new_median_ns, change, p,
/// p_holm, test ("exact", "normal"), testable, old_samples, new_samples, threshold,
/// verdict}], added, removed, warnings, geomean_ratio, regression.
std::string comparison_json(const Comparison& c);

}  // namespace nfb
