#include "tools/compare.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/input_file.h"
#include "base/load_error.h"

namespace nfb {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(const std::string& file, const std::string& message) {
  throw LoadError(SourceLocation{file}, message);
}

// nlohmann's parse_error::what() starts with "[json.exception.parse_error.N] ".
std::string json_error_text(const std::exception& e) {
  const std::string s = e.what();
  const size_t at = s.find("] ");
  return at == std::string::npos ? s : s.substr(at + 2);
}

// Google Benchmark writes non-finite numbers (a counter's stddev, say) as
// bare NaN, -NaN, Infinity and -Infinity, which JSON has no words for: they
// become null, outside strings only.
std::string non_finite_as_null(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    const size_t sign = c == '-' ? 1 : 0;
    const std::string_view rest = text.substr(i + sign);
    const size_t word = rest.starts_with("NaN") ? 3 : rest.starts_with("Infinity") ? 8 : 0;
    if (word != 0) {
      out += "null";
      i += sign + word - 1;
      continue;
    }
    in_string = c == '"';
    out += c;
  }
  return out;
}

json parse_json_text(std::string_view text, const std::string& file) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    fail(file, "not JSON: " + json_error_text(e));
  }
}

// entry[key] as a time in nanoseconds: a finite number >= 0 times `unit_ns`.
double time_ns(const json& entry, const char* key, double unit_ns, const std::string& file, const std::string& where) {
  const auto it = entry.find(key);
  if (it == entry.end()) fail(file, fmt::format("{}: no {}", where, key));
  if (it->is_null()) fail(file, fmt::format("{}: {} is NaN, infinite or null, expected a time >= 0", where, key));
  if (!it->is_number()) fail(file, fmt::format("{}: {} is not a number", where, key));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < 0) fail(file, fmt::format("{}: {} is {}, expected a time >= 0", where, key, v));
  return v * unit_ns;
}

bool flag_set(const json& entry, const char* key) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_boolean() && it->get<bool>();
}

std::string string_or(const json& entry, const char* key, const std::string& otherwise) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : otherwise;
}

// C(n, k) as a double: exact while it stays below 2^53 (n <= 2 * kExactMaxSamples here).
double binomial(size_t n, size_t k) {
  k = std::min(k, n - k);
  double c = 1;
  for (size_t i = 1; i <= k; ++i) c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
  return std::round(c);
}

// How many of the C(n1 + n2, n1) orderings of two untied samples give U = u,
// for u in 0..n1*n2: f(i, j) = f(i - 1, j) shifted by j (the largest value
// is from the first sample and beats all j of the second) + f(i, j - 1).
std::vector<double> u_counts(size_t n1, size_t n2) {
  std::vector<std::vector<std::vector<double>>> f(n1 + 1, std::vector<std::vector<double>>(n2 + 1));
  for (size_t i = 0; i <= n1; ++i) {
    for (size_t j = 0; j <= n2; ++j) {
      std::vector<double>& d = f[i][j];
      d.assign(i * j + 1, 0.0);
      if (i == 0 || j == 0) {
        d[0] = 1;
        continue;
      }
      const std::vector<double>& first = f[i - 1][j];
      const std::vector<double>& second = f[i][j - 1];
      for (size_t u = 0; u < first.size(); ++u) d[u + j] += first[u];
      for (size_t u = 0; u < second.size(); ++u) d[u] += second[u];
    }
  }
  return f[n1][n2];
}

std::string format_time(double ns) {
  if (!std::isfinite(ns)) return "-";
  if (ns < 1e3) return fmt::format("{:.1f} ns", ns);
  if (ns < 1e6) return fmt::format("{:.2f} us", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.2f} ms", ns / 1e6);
  return fmt::format("{:.3f} s", ns / 1e9);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace

double time_unit_ns(std::string_view unit) noexcept {
  if (unit == "ns") return 1;
  if (unit == "us") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  return 0;
}

BenchmarkRun parse_benchmark_run(std::string_view json_text, const std::string& file) {
  const json doc = parse_json_text(non_finite_as_null(json_text), file);
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array()) {
    fail(file, "expected Google Benchmark JSON: an object with a \"benchmarks\" array");
  }
  BenchmarkRun run;
  run.file = file;
  if (const auto ctx = doc.find("context"); ctx != doc.end() && ctx->is_object()) {
    RunMachine& m = run.machine;
    m.cpu_model = string_or(*ctx, "cpu_model", "");
    m.git_commit = string_or(*ctx, "git_commit", "");
    m.git_dirty = flag_set(*ctx, "git_dirty");
    if (const auto n = ctx->find("num_cpus"); n != ctx->end() && n->is_number_unsigned()) {
      m.num_cpus = n->get<unsigned>();
    }
    if (const auto in = ctx->find("inputs_sha256"); in != ctx->end() && in->is_object()) {
      m.inputs_recorded = true;
      for (const auto& [name, digest] : in->items()) {
        m.inputs.emplace_back(name, digest.is_string() ? digest.get<std::string>() : digest.dump());
      }
      std::sort(m.inputs.begin(), m.inputs.end());
    }
  }
  std::unordered_map<std::string, size_t> index;  // run_name -> run.benchmarks
  std::unordered_map<std::string, std::string> program_of;  // run_name -> the first program it came from
  std::unordered_set<std::string> pooled_names;             // run_names already said to be in two programs
  struct MedianAggregate {
    double real_ns = 0;
    double cpu_ns = 0;
  };
  std::unordered_map<std::string, MedianAggregate> medians;
  const json& entries = doc["benchmarks"];
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& e = entries[i];
    const std::string where = fmt::format("benchmarks[{}]", i);
    if (!e.is_object()) fail(file, where + ": expected an object");
    const std::string name = string_or(e, "run_name", string_or(e, "name", ""));
    if (name.empty()) fail(file, where + ": no run_name or name");
    const bool error = flag_set(e, "error_occurred");
    if (error || flag_set(e, "skipped")) {
      const std::string why = string_or(e, error ? "error_message" : "skip_message", "");
      run.notes.push_back(fmt::format("{}: {} ({}) left out: {}{}{}", file, where, name,
                                      error ? "the benchmark reported an error" : "the benchmark was skipped",
                                      why.empty() ? "" : ": ", why));
      continue;
    }
    const std::string run_type = string_or(e, "run_type", "iteration");
    const bool median_aggregate = run_type == "aggregate" && string_or(e, "aggregate_name", "") == "median";
    if (run_type != "iteration" && !median_aggregate) continue;  // mean, stddev, cv, BigO, RMS

    const auto unit = e.find("time_unit");
    if (unit == e.end()) fail(file, where + ": no time_unit");
    const double unit_ns = unit->is_string() ? time_unit_ns(unit->get<std::string>()) : 0;
    if (unit_ns == 0) {
      fail(file, fmt::format("{}: time_unit is {}, expected \"ns\", \"us\", \"ms\" or \"s\"", where, unit->dump()));
    }
    const double real = time_ns(e, "real_time", unit_ns, file, where);
    const double cpu = time_ns(e, "cpu_time", unit_ns, file, where);

    // Merged runs name the program of each entry; the same run_name from two
    // programs would be pooled here, so say so.
    const std::string program = string_or(e, "program", "");
    if (!program.empty()) {
      const auto [p, fresh] = program_of.emplace(name, program);
      if (!fresh && p->second != program && pooled_names.insert(name).second) {
        run.notes.push_back(fmt::format("{}: {} is in programs {} and {}: their samples are pooled", file, name,
                                        p->second, program));
      }
    }
    auto [at, fresh] = index.emplace(name, run.benchmarks.size());
    if (fresh) run.benchmarks.push_back(BenchmarkSamples{name, {}, {}, false});
    if (median_aggregate) {
      medians[name] = MedianAggregate{real, cpu};
      continue;
    }
    BenchmarkSamples& b = run.benchmarks[at->second];
    b.real_ns.push_back(real);
    b.cpu_ns.push_back(cpu);
  }
  // A benchmark seen only as a median aggregate: that median is its one sample.
  std::vector<std::string> aggregates_only;
  for (BenchmarkSamples& b : run.benchmarks) {
    if (!b.real_ns.empty()) continue;
    const MedianAggregate& m = medians.at(b.run_name);
    b.real_ns.push_back(m.real_ns);
    b.cpu_ns.push_back(m.cpu_ns);
    b.from_median_aggregate = true;
    aggregates_only.push_back(b.run_name);
  }
  if (!aggregates_only.empty()) {
    run.notes.push_back(fmt::format("{}: no per-repetition entries (aggregates only?): the median aggregate is the "
                                    "one sample of {}", file, join(aggregates_only)));
  }
  return run;
}

std::vector<std::string> machine_mismatches(const BenchmarkRun& old_run, const BenchmarkRun& new_run) {
  const RunMachine& a = old_run.machine;
  const RunMachine& b = new_run.machine;
  std::vector<std::string> out;
  if (!a.cpu_model.empty() && !b.cpu_model.empty() && a.cpu_model != b.cpu_model) {
    out.push_back(fmt::format("{} ran on \"{}\" and {} on \"{}\": times from different CPUs are not comparable",
                              old_run.file, a.cpu_model, new_run.file, b.cpu_model));
  }
  if (a.num_cpus != 0 && b.num_cpus != 0 && a.num_cpus != b.num_cpus) {
    out.push_back(fmt::format("{} ran with {} CPUs and {} with {}", old_run.file, a.num_cpus, new_run.file, b.num_cpus));
  }
  if (a.inputs_recorded && b.inputs_recorded && a.inputs != b.inputs) {
    std::vector<std::string> differ;
    size_t i = 0;
    size_t j = 0;
    while (i < a.inputs.size() || j < b.inputs.size()) {
      if (j == b.inputs.size() || (i < a.inputs.size() && a.inputs[i].first < b.inputs[j].first)) {
        differ.push_back(a.inputs[i++].first + " (only in " + old_run.file + ")");
      } else if (i == a.inputs.size() || b.inputs[j].first < a.inputs[i].first) {
        differ.push_back(b.inputs[j++].first + " (only in " + new_run.file + ")");
      } else {
        if (a.inputs[i].second != b.inputs[j].second) differ.push_back(a.inputs[i].first + " (different SHA-256)");
        ++i;
        ++j;
      }
    }
    out.push_back(fmt::format("the runs read different inputs: {}", join(differ)));
  }
  return out;
}

BenchmarkRun load_benchmark_run(const std::string& path) {
  return parse_benchmark_run(read_input_file(path), path);
}

UTestResult mann_whitney_u(std::span<const double> a, std::span<const double> b) {
  if (a.empty() || b.empty()) throw std::invalid_argument("mann_whitney_u: both samples need at least one value");
  const size_t n1 = a.size();
  const size_t n2 = b.size();
  const size_t n = n1 + n2;
  std::vector<std::pair<double, bool>> pooled;  // value, from a
  pooled.reserve(n);
  for (double v : a) pooled.emplace_back(v, true);
  for (double v : b) pooled.emplace_back(v, false);
  std::sort(pooled.begin(), pooled.end(), [](const auto& x, const auto& y) { return x.first < y.first; });

  // Mid-ranks (1-based); tie_sum is sum(t^3 - t) over groups of t tied values.
  double rank_sum_a = 0;
  double tie_sum = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double mid_rank = static_cast<double>(i + j + 1) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (pooled[k].second) rank_sum_a += mid_rank;
    }
    tie_sum += t * t * t - t;
    i = j;
  }
  const double dn1 = static_cast<double>(n1);
  const double dn2 = static_cast<double>(n2);
  UTestResult r;
  r.u = rank_sum_a - dn1 * (dn1 + 1) / 2;

  if (tie_sum == 0 && n1 <= kExactMaxSamples && n2 <= kExactMaxSamples) {
    // Exact: P(U <= min(u, n1*n2 - u)) doubled, U's distribution being symmetric.
    r.method = UTestMethod::kExact;
    const std::vector<double> counts = u_counts(n1, n2);
    const auto low = static_cast<size_t>(std::min(r.u, dn1 * dn2 - r.u));
    double tail = 0;
    for (size_t u = 0; u <= low; ++u) tail += counts[u];
    r.p = std::min(1.0, 2 * tail / binomial(n, n1));
    return r;
  }
  // Normal approximation, tie-corrected variance, continuity correction 1/2.
  r.method = UTestMethod::kNormal;
  const double dn = static_cast<double>(n);
  const double mean = dn1 * dn2 / 2;
  const double variance = dn1 * dn2 / 12 * ((dn + 1) - tie_sum / (dn * (dn - 1)));
  if (!(variance > 0)) {
    r.p = 1;  // every value tied
    return r;
  }
  const double z = (std::abs(r.u - mean) - 0.5) / std::sqrt(variance);
  r.p = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return r;
}

double smallest_two_sided_p(size_t n1, size_t n2) noexcept {
  if (n1 == 0 || n2 == 0) return 1;
  // 2 / C(n1 + n2, n1), built up so that no factor overflows.
  double p = 2;
  const size_t k = std::min(n1, n2);
  const size_t other = std::max(n1, n2);
  for (size_t i = 1; i <= k && p > 0; ++i) p = p * static_cast<double>(i) / static_cast<double>(other + i);
  return std::min(1.0, p);
}

double median(std::vector<double> values) {
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const size_t m = values.size() / 2;
  return values.size() % 2 == 1 ? values[m] : (values[m - 1] + values[m]) / 2;
}

double Thresholds::threshold_for(const std::string& run_name) const {
  for (const ThresholdRule& r : rules) {
    if (std::regex_match(run_name, r.regex)) return r.threshold;
  }
  return default_threshold;
}

Thresholds parse_thresholds(std::string_view json_text, const std::string& file) {
  const json doc = parse_json_text(json_text, file);
  if (!doc.is_object()) fail(file, "expected an object {\"default\": ..., \"alpha\": ..., \"benchmarks\": [...]}");
  const auto number = [&file](const json& v, const std::string& what, bool open_unit_interval) {
    if (!v.is_number()) fail(file, what + ": expected a number");
    const double x = v.get<double>();
    if (open_unit_interval ? !(x > 0 && x < 1) : !(std::isfinite(x) && x >= 0)) {
      fail(file,
           fmt::format("{} is {}, expected {}", what, x, open_unit_interval ? "a number in (0, 1)" : "a number >= 0"));
    }
    return x;
  };
  Thresholds t;
  for (const auto& [key, value] : doc.items()) {
    if (key == "default") {
      t.default_threshold = number(value, "default", false);
    } else if (key == "alpha") {
      t.alpha = number(value, "alpha", true);
    } else if (key == "benchmarks") {
      if (!value.is_array()) fail(file, "benchmarks: expected an array of {\"match\": REGEX, \"threshold\": X}");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& e = value[i];
        const std::string where = fmt::format("benchmarks[{}]", i);
        if (!e.is_object()) fail(file, where + ": expected an object {\"match\": REGEX, \"threshold\": X}");
        ThresholdRule rule;
        bool has_match = false;
        bool has_threshold = false;
        for (const auto& [k, v] : e.items()) {
          if (k == "match") {
            if (!v.is_string()) fail(file, where + ": match: expected a string (an ECMAScript regex)");
            rule.match = v.get<std::string>();
            try {
              rule.regex = std::regex(rule.match, std::regex::ECMAScript);
            } catch (const std::regex_error& err) {
              fail(file, fmt::format("{}: match \"{}\" is not an ECMAScript regex: {}", where, rule.match, err.what()));
            }
            has_match = true;
          } else if (k == "threshold") {
            rule.threshold = number(v, where + ": threshold", false);
            has_threshold = true;
          } else {
            fail(file, fmt::format("{}: unknown key \"{}\" (expected match, threshold)", where, k));
          }
        }
        if (!has_match) fail(file, where + ": no match");
        if (!has_threshold) fail(file, where + ": no threshold");
        t.rules.push_back(std::move(rule));
      }
    } else {
      fail(file, fmt::format("unknown key \"{}\" (expected default, alpha, benchmarks)", key));
    }
  }
  return t;
}

Thresholds load_thresholds(const std::string& path) { return parse_thresholds(read_input_file(path), path); }

std::string_view time_metric_name(TimeMetric m) noexcept {
  return m == TimeMetric::kCpuTime ? "cpu_time" : "real_time";
}

std::string_view verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::kImproved: return "improved";
    case Verdict::kRegressed: return "regressed";
    case Verdict::kSame: break;
  }
  return "same";
}

bool Comparison::regressed() const noexcept {
  return std::any_of(benchmarks.begin(), benchmarks.end(),
                     [](const BenchmarkComparison& b) { return b.verdict == Verdict::kRegressed; });
}

Comparison compare_runs(const BenchmarkRun& old_run, const BenchmarkRun& new_run, const Thresholds& thresholds,
                        TimeMetric metric) {
  Comparison c;
  c.old_file = old_run.file;
  c.new_file = new_run.file;
  c.metric = metric;
  c.alpha = thresholds.alpha;
  c.warnings = old_run.notes;
  c.warnings.insert(c.warnings.end(), new_run.notes.begin(), new_run.notes.end());
  for (std::string& m : machine_mismatches(old_run, new_run)) c.warnings.push_back(std::move(m));
  // One run says its CPU and the other does not (plain Google Benchmark
  // output): the machines cannot be checked.
  if (old_run.machine.cpu_model.empty() != new_run.machine.cpu_model.empty()) {
    const BenchmarkRun& r = old_run.machine.cpu_model.empty() ? old_run : new_run;
    c.warnings.push_back(r.file + " records no CPU model (context.cpu_model): whether both runs come from one "
                                  "kind of machine cannot be checked");
  }
  if (new_run.machine.git_dirty) {
    c.warnings.push_back(new_run.file + " was made from a tree with uncommitted changes (git_dirty)");
  }

  std::unordered_map<std::string, const BenchmarkSamples*> in_old, in_new;
  for (const BenchmarkSamples& b : old_run.benchmarks) in_old.emplace(b.run_name, &b);
  for (const BenchmarkSamples& b : new_run.benchmarks) in_new.emplace(b.run_name, &b);
  const auto samples = [metric](const BenchmarkSamples& b) -> const std::vector<double>& {
    return metric == TimeMetric::kCpuTime ? b.cpu_ns : b.real_ns;
  };

  std::map<std::pair<size_t, size_t>, std::vector<std::string>> untestable;  // by sample counts
  double log_sum = 0;
  size_t log_count = 0;
  for (const BenchmarkSamples& o : old_run.benchmarks) {
    const auto found = in_new.find(o.run_name);
    if (found == in_new.end()) {
      c.removed.push_back(o.run_name);
      continue;
    }
    const std::vector<double>& a = samples(o);
    const std::vector<double>& b = samples(*found->second);
    BenchmarkComparison r;
    r.run_name = o.run_name;
    r.old_samples = a.size();
    r.new_samples = b.size();
    r.old_median_ns = median(a);
    r.new_median_ns = median(b);
    r.test = mann_whitney_u(a, b);
    r.testable = smallest_two_sided_p(a.size(), b.size()) < c.alpha;
    r.threshold = thresholds.threshold_for(o.run_name);
    if (r.old_median_ns > 0) {
      r.change = r.new_median_ns / r.old_median_ns - 1;
    } else {
      r.change = kNaN;
      c.warnings.push_back(fmt::format("{}: the old median is 0: no change computed, left out of the geometric mean",
                                       o.run_name));
    }
    if (r.old_median_ns > 0 && r.new_median_ns > 0) {
      log_sum += std::log(r.new_median_ns / r.old_median_ns);
      ++log_count;
    } else if (r.old_median_ns > 0) {
      c.warnings.push_back(fmt::format("{}: the new median is 0: left out of the geometric mean", o.run_name));
    }
    if (!r.testable) untestable[{a.size(), b.size()}].push_back(o.run_name);
    c.benchmarks.push_back(std::move(r));
  }
  // Holm's step-down correction over the testable benchmarks: with m tests
  // at alpha each, about alpha x m false alarms would come from chance
  // alone (8 of a 165-benchmark suite); Holm keeps the chance of any at
  // alpha. The k-th smallest p (from 0) is multiplied by m - k, capped at
  // 1, and made monotone.
  std::vector<BenchmarkComparison*> tested;
  for (BenchmarkComparison& r : c.benchmarks) {
    r.p_holm = r.test.p;
    if (r.testable) tested.push_back(&r);
  }
  std::stable_sort(tested.begin(), tested.end(),
                   [](const BenchmarkComparison* x, const BenchmarkComparison* y) { return x->test.p < y->test.p; });
  double running = 0;
  for (size_t k = 0; k < tested.size(); ++k) {
    running = std::max(running, std::min(1.0, static_cast<double>(tested.size() - k) * tested[k]->test.p));
    tested[k]->p_holm = running;
  }
  for (BenchmarkComparison& r : c.benchmarks) {
    const bool significant = !r.testable || r.p_holm < c.alpha;
    if (significant && r.change > r.threshold) {
      r.verdict = Verdict::kRegressed;
    } else if (significant && r.change < -r.threshold) {
      r.verdict = Verdict::kImproved;
    }
  }
  for (const BenchmarkSamples& n : new_run.benchmarks) {
    if (!in_old.contains(n.run_name)) c.added.push_back(n.run_name);
  }
  for (const auto& [sizes, names] : untestable) {
    c.warnings.push_back(fmt::format(
        "with {} vs {} samples the U test cannot reach p < {} (its smallest two-sided p is {:.3g}): {} judged by the "
        "threshold alone: {}",
        sizes.first, sizes.second, c.alpha, smallest_two_sided_p(sizes.first, sizes.second),
        names.size() == 1 ? std::string("1 benchmark") : fmt::format("{} benchmarks", names.size()), join(names)));
  }
  c.geomean_ratio = log_count == 0 ? kNaN : std::exp(log_sum / static_cast<double>(log_count));
  return c;
}

std::string format_comparison(const Comparison& c) {
  std::string out;
  if (c.benchmarks.empty()) {
    out += fmt::format("no benchmark is in both {} and {}\n", c.old_file, c.new_file);
  } else {
    size_t width = std::string_view("benchmark").size();
    for (const BenchmarkComparison& b : c.benchmarks) width = std::max(width, b.run_name.size());
    out += fmt::format("{:<{}}  {:>12}  {:>12}  {:>9}  {:>9}  {:>7}  {}\n", "benchmark", width, "old", "new", "change",
                       "p Holm", "n", "verdict");
    bool starred = false;
    for (const BenchmarkComparison& b : c.benchmarks) {
      const std::string change = std::isfinite(b.change) ? fmt::format("{:+.1f}%", b.change * 100) : "-";
      const std::string n = fmt::format("{}/{}", b.old_samples, b.new_samples);
      out += fmt::format("{:<{}}  {:>12}  {:>12}  {:>9}  {:>9.3g}  {:>7}  {}{}\n", b.run_name, width,
                         format_time(b.old_median_ns), format_time(b.new_median_ns), change, b.p_holm, n,
                         verdict_name(b.verdict), b.testable ? "" : " *");
      starred = starred || !b.testable;
    }
    out += fmt::format("({} medians; change = new/old - 1; p: two-sided Mann-Whitney U; n: samples old/new{})\n",
                       time_metric_name(c.metric),
                       starred ? "; *: too few samples for the test, judged by the threshold alone" : "");
  }
  if (!c.added.empty()) out += fmt::format("added (only in {}): {}\n", c.new_file, join(c.added));
  if (!c.removed.empty()) out += fmt::format("removed (only in {}): {}\n", c.old_file, join(c.removed));
  for (const std::string& w : c.warnings) out += fmt::format("warning: {}\n", w);
  if (std::isfinite(c.geomean_ratio)) {
    out += fmt::format("geometric mean of new/old medians: {:.4f} ({:+.1f}%) over {} benchmarks\n", c.geomean_ratio,
                       (c.geomean_ratio - 1) * 100, c.benchmarks.size());
  } else {
    out += "geometric mean of new/old medians: - (no benchmark in both runs)\n";
  }
  std::vector<std::string> regressed;
  size_t improved = 0;
  for (const BenchmarkComparison& b : c.benchmarks) {
    if (b.verdict == Verdict::kRegressed) regressed.push_back(b.run_name);
    improved += b.verdict == Verdict::kImproved;
  }
  if (!regressed.empty()) {
    out += fmt::format("REGRESSION: {} of {} benchmarks regressed: {}\n", regressed.size(), c.benchmarks.size(),
                       join(regressed));
  } else {
    out += fmt::format("no regression ({} of {} benchmarks improved)\n", improved, c.benchmarks.size());
  }
  return out;
}

std::string comparison_json(const Comparison& c) {
  json j;
  j["old"] = c.old_file;
  j["new"] = c.new_file;
  j["metric"] = time_metric_name(c.metric);
  j["alpha"] = c.alpha;
  json benchmarks = json::array();
  for (const BenchmarkComparison& b : c.benchmarks) {
    benchmarks.push_back({
        {"name", b.run_name},
        {"old_median_ns", b.old_median_ns},
        {"new_median_ns", b.new_median_ns},
        {"change", b.change},  // NaN is written as null
        {"p", b.test.p},
        {"p_holm", b.p_holm},
        {"test", b.test.method == UTestMethod::kExact ? "exact" : "normal"},
        {"testable", b.testable},
        {"old_samples", b.old_samples},
        {"new_samples", b.new_samples},
        {"threshold", b.threshold},
        {"verdict", verdict_name(b.verdict)},
    });
  }
  j["benchmarks"] = benchmarks;
  j["added"] = c.added;
  j["removed"] = c.removed;
  j["warnings"] = c.warnings;
  j["geomean_ratio"] = c.geomean_ratio;
  j["regression"] = c.regressed();
  return j.dump();
}

}  // namespace nfb
