// nfbench: the command line. Every subcommand is a thin shell over the
// library: parse arguments, load input (LoadError -> message, exit 1), run,
// print. Only this file may exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>
#include <x86intrin.h>

#include "analysis/explain.h"
#include "analysis/lint.h"
#include "base/dpdk_eal.h"
#include "base/input_file.h"
#include "base/load_error.h"
#include "classifier/acl.h"
#include "classifier/classifier.h"
#include "classifier/registry.h"
#include "netfilter/sysctl.h"
#include "netfilter/host.h"
#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "pcap/capture_reader.h"
#include "pcap/capture_writer.h"
#include "pcap/dpdk_port.h"
#include "pcap/replay.h"
#include "pcap/traffic_gen.h"
#include "rules/classbench.h"
#include "rules/ipset.h"
#include "rules/iptables_list.h"
#include "rules/iptables_save.h"
#include "rules/ruleset_gen.h"
#include "tools/compare.h"
#include "tools/snapshot.h"

namespace nfb {
namespace {

enum class RulesFormat { Auto, Iptables, ClassBench };

// ClassBench files start with '@'; anything else is read as iptables-save.
bool looks_like_classbench(const std::string& text) {
  const size_t i = text.find_first_not_of(" \t\r\n");
  return i != std::string::npos && text[i] == '@';
}

int cmd_rules(const std::string& path, RulesFormat in, RulesFormat out, bool counters) {
  const std::string text = read_input_file(path);
  const bool classbench = in == RulesFormat::ClassBench || (in == RulesFormat::Auto && looks_like_classbench(text));
  const Ruleset rs = classbench ? read_classbench_rules(text, path) : read_iptables_save(text, path);
  const bool write_classbench = out == RulesFormat::ClassBench || (out == RulesFormat::Auto && classbench);
  if (write_classbench) {
    std::fputs(write_classbench_rules(classbench_chain(rs)).c_str(), stdout);
  } else {
    WriteOptions opts;
    opts.counters = counters;
    std::fputs(write_iptables_save(rs, opts).c_str(), stdout);
  }
  return 0;
}

// Reads every frame of a capture in bursts, parses it, and reports how many
// frames parsed and how many were rejected, by reason. Every frame read is in
// exactly one counter.
int cmd_parse(const std::string& path, bool json) {
  CaptureReader reader(path);
  constexpr size_t kBurst = 32;
  std::array<CaptureFrame, kBurst> frames;
  std::array<FrameRef, kBurst> refs;
  std::array<PacketKey, kBurst> keys;
  std::array<ParseStatus, kBurst> status;
  ParseCounters counters;
  uint64_t bytes = 0;
  uint64_t cut_by_snaplen = 0;
  while (size_t n = reader.next_burst(frames)) {
    for (size_t i = 0; i < n; ++i) {
      const auto link = static_cast<LinkType>(reader.interfaces()[frames[i].iface].link_type);
      refs[i] = FrameRef{frames[i].data, frames[i].caplen, static_cast<uint16_t>(frames[i].iface), link};
      bytes += frames[i].wirelen;
      cut_by_snaplen += frames[i].caplen < frames[i].wirelen;
    }
    parse_burst(std::span(refs.data(), n), keys, status, counters);
  }
  if (json) {
    nlohmann::json j;
    j["capture"] = path;
    j["link_type"] = reader.link_type();
    j["packets"] = counters.total();
    j["bytes"] = bytes;
    j["parsed"] = counters.count(ParseStatus::Ok);
    j["invalid"] = counters.rejected();
    j["cut_by_snaplen"] = cut_by_snaplen;
    nlohmann::json reasons = nlohmann::json::object();
    for (size_t i = 1; i < kParseStatusCount; ++i) {
      if (counters.by_status[i] != 0) reasons[parse_status_name(static_cast<ParseStatus>(i))] = counters.by_status[i];
    }
    j["invalid_by_reason"] = reasons;
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("capture:  {} (link type {})\n", path, reader.link_type());
  fmt::print("packets:  {} ({} bytes on the wire, {} cut by snaplen)\n", counters.total(), bytes, cut_by_snaplen);
  fmt::print("parsed:   {}\n", counters.count(ParseStatus::Ok));
  fmt::print("invalid:  {}\n", counters.rejected());
  for (size_t i = 1; i < kParseStatusCount; ++i) {
    if (counters.by_status[i] == 0) continue;
    const auto s = static_cast<ParseStatus>(i);
    fmt::print("  {:>8}  {:<30} {}\n", counters.by_status[i], parse_status_name(s), parse_status_description(s));
  }
  return 0;
}

// --host-addrs/--host-routes: a real host's `ip -j addr`/`ip -j route`, or
// the default Docker host when neither is given; --sysctls FILE (`sysctl
// -a`) then --sysctl NAME=VALUE set its knobs and conntrack's
// (netfilter/sysctl.h). Warnings go to stderr.
struct HostFiles {
  std::string addrs;
  std::string routes;
  std::string sysctls_file;
  std::vector<std::string> sysctls;
  std::string ipsets;  // --ipsets: `ipset save` of the host (-m set)
  /// The host's IP sets, when --ipsets was given.
  std::optional<IpSets> load_ipsets() const {
    if (ipsets.empty()) return std::nullopt;
    return IpSets::parse(read_input_file(ipsets), ipsets);
  }
  HostModel load(CtConfig* conntrack = nullptr) const {
    if (addrs.empty() != routes.empty()) throw std::invalid_argument("--host-addrs and --host-routes go together");
    HostSpec spec = addrs.empty() ? default_docker_host_spec()
                                  : parse_host_spec(read_input_file(addrs), read_input_file(routes), addrs, routes);
    CtConfig unused;
    const SysctlTarget target{conntrack != nullptr ? *conntrack : unused, spec};
    if (!sysctls_file.empty()) {
      for (const std::string& w : apply_sysctls_text(read_input_file(sysctls_file), sysctls_file, target))
        fmt::print(stderr, "nfbench: warning: {}\n", w);
    }
    for (const std::string& s : sysctls) {
      const std::string w = apply_sysctl_assignment(s, target);
      if (!w.empty()) fmt::print(stderr, "nfbench: warning: --sysctl {}\n", w);
    }
    return HostModel::build(std::move(spec), addrs.empty() ? "default Docker host" : routes);
  }
};

struct ReplayCommand {
  std::string rules;
  HostFiles host;
  std::string save_counters;
  std::string list_counters;
  bool trace = false;
  bool conntrack = false;
  bool no_fast_path = false;
  bool json = false;
  bool stream = false;
  bool progress = false;
  std::string algo = "linear";  // the classifier every chain runs on (chain_boxes.h)
  std::string rx_csum = "verify";  // L4 checksums as the NIC delivers them: verify or trust
  std::string unsupported = "error";  // rules with modules the model lacks: error or never-match
  ReplayOptions replay;
  std::string dpdk;             // EAL arguments: receive from DPDK ports instead of a capture
  DpdkReplayOptions ports;
  uint32_t lcores = 1;          // DPDK: lcores, each with its own conntrack shard
  std::string host_dir;         // --host DIR: a folder from `nfbench snapshot`
  CLI::Option* rules_opt = nullptr;
  std::optional<IpSets> ipsets_loaded;
};

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw LoadError(SourceLocation{path}, "cannot write the file");
}

// The pipeline's configuration from replay's options: --no-fast-path (and
// --trace, which walks every packet), --algo, --rx-csum.
PipelineConfig replay_pipeline_config(ReplayCommand& o) {
  PipelineConfig config;
  config.fast_path = !o.no_fast_path && !o.trace;
  const std::optional<ChainAlgo> algo = parse_chain_algo(o.algo);
  if (!algo) {
    throw std::invalid_argument("--algo: unknown algorithm '" + o.algo + "' (" + classifier_algorithm_names() + ")");
  }
  config.algo = *algo;
  if (o.rx_csum != "verify" && o.rx_csum != "trust")
    throw std::invalid_argument("--rx-csum: '" + o.rx_csum + "' is not verify or trust");
  config.rx_csum_trust = o.rx_csum == "trust";
  o.replay.rx_csum_trust = config.rx_csum_trust;
  o.ipsets_loaded = o.host.load_ipsets();
  if (o.ipsets_loaded) config.match.ipsets = &*o.ipsets_loaded;
  return config;
}

// --trace prints the pipeline's TRACE lines after every burst; a progress
// line goes to a terminal (or when asked), never with --trace.
void set_replay_output(ReplayCommand& o, Pipeline& pipeline, std::string& trace) {
  if (o.trace) {
    pipeline.set_trace(&trace);
    o.replay.after_burst = [&trace] {
      if (trace.empty()) return;
      std::fputs(trace.c_str(), stdout);
      trace.clear();
    };
  }
  o.replay.mode = o.stream ? CaptureMode::kStream : CaptureMode::kPreload;
  // A progress line on a terminal (or when asked), never into JSON output.
  const bool tty = isatty(STDERR_FILENO) != 0;
  if ((o.progress || tty) && !o.trace) {
    o.replay.progress = [](const ReplayReport& r) {
      std::fprintf(stderr, "\r%s   ", format_replay_progress(r).c_str());
      std::fflush(stderr);
    };
  }
}

// The DPDK run: one pipeline (conntrack shard) per lcore, shards[0] given.
DpdkReplayReport run_dpdk_command(ReplayCommand& o, const Ruleset& rules, const HostModel& host,
                                  const PipelineConfig& config, std::vector<std::unique_ptr<Pipeline>>& shards) {
  if (!o.replay.capture.empty()) {
    throw std::invalid_argument("--dpdk replaces CAPTURE: give one or the other (--ring-from CAPTURE feeds a DPDK ring)");
  }
  o.ports.ring_iface = o.replay.in_iface;
  std::istringstream words(o.dpdk);
  for (std::string w; words >> w;) o.ports.eal_args.push_back(w);
  for (uint32_t i = 1; i < o.lcores; ++i) shards.push_back(Pipeline::build(rules, host, config));
  std::vector<Pipeline*> shard_ptrs;
  for (auto& p : shards) shard_ptrs.push_back(p.get());
  return run_dpdk_replay(std::span<Pipeline* const>(shard_ptrs), host, o.ports);
}

// The counters of every shard, added up.
Ruleset counted_ruleset(const std::vector<std::unique_ptr<Pipeline>>& shards) {
  Ruleset total = shards[0]->counters_ruleset();
  for (size_t i = 1; i < shards.size(); ++i) {
    const Ruleset more = shards[i]->counters_ruleset();
    for (size_t t = 0; t < total.tables.size(); ++t) {
      for (size_t c = 0; c < total.tables[t].chains.size(); ++c) {
        Chain& into = total.tables[t].chains[c];
        const Chain& from = more.tables[t].chains[c];
        into.policy_counters.packets += from.policy_counters.packets;
        into.policy_counters.bytes += from.policy_counters.bytes;
        for (size_t k = 0; k < into.rules.size(); ++k) {
          if (!into.rules[k].counters || !from.rules[k].counters) continue;
          into.rules[k].counters->packets += from.rules[k].counters->packets;
          into.rules[k].counters->bytes += from.rules[k].counters->bytes;
        }
      }
    }
  }
  return total;
}

// --save-counters, --list-counters: to standard output ("-") or a file.
void write_replay_counters(const ReplayCommand& o, const std::vector<std::unique_ptr<Pipeline>>& shards) {
  if (!o.save_counters.empty()) {
    WriteOptions wo;
    wo.counters = true;
    const std::string text = write_iptables_save(counted_ruleset(shards), wo);
    if (o.save_counters == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      write_text_file(o.save_counters, text);
    }
  }
  if (!o.list_counters.empty()) {
    // `iptables -t T -L -v -n -x` for each table, one after the other.
    const Ruleset counted = counted_ruleset(shards);
    std::string text;
    for (const Table& t : counted.tables) {
      if (!text.empty()) text += '\n';
      text += fmt::format("# table {}\n", table_name(t.id));
      text += write_iptables_list(t);
    }
    if (o.list_counters == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      write_text_file(o.list_counters, text);
    }
  }
}

// --json: the report as one object.
nlohmann::json replay_json(const ReplayCommand& o, const ReplayReport& r, const DpdkReplayReport& dpdk_report,
                           size_t conntrack_entries) {
  nlohmann::json j;
  j["packets"] = r.packets;
  j["bytes"] = r.bytes;
  j["seconds"] = r.seconds;
  j["mpps"] = r.mpps();
  j["gbps_l2"] = r.gbps_l2();
  j["gbps_l1"] = r.gbps_l1();
  j["loops"] = r.loops;
  j["emitted"] = r.emitted;
  j["dropped"] = r.dropped;
  j["invalid"] = r.invalid;
  j["flows"] = r.flows;
  j["fast_path_packets"] = r.pipeline.fast_path_packets;
  j["algo"] = o.algo;
  j["rx_csum"] = o.rx_csum;
  j["trusted_bad_checksum"] = r.trusted_bad_checksum;
  nlohmann::json fates = nlohmann::json::object();
  for (size_t f = 0; f < kFateCount; ++f) {
    if (r.pipeline.by_fate[f] != 0) fates[fate_name(static_cast<Fate>(f))] = r.pipeline.by_fate[f];
  }
  j["fates"] = fates;
  nlohmann::json reasons = nlohmann::json::object();
  for (size_t i = 1; i < kParseStatusCount; ++i) {
    if (r.parse.by_status[i] != 0) reasons[parse_status_name(static_cast<ParseStatus>(i))] = r.parse.by_status[i];
  }
  j["invalid_by_reason"] = reasons;
  j["conntrack_entries"] = conntrack_entries;
  if (!r.error.empty()) j["error"] = r.error;
  if (!o.dpdk.empty()) {
    j["transmitted"] = dpdk_report.transmitted;
    j["tx_no_port"] = dpdk_report.tx_no_port;
    j["tx_failed"] = dpdk_report.tx_failed;
    j["tx_too_big"] = dpdk_report.tx_too_big;
    j["handoff_failed"] = dpdk_report.handoff_failed;
    if (!o.ports.ring_from.empty()) j["fed"] = dpdk_report.fed;
    nlohmann::json lcores = nlohmann::json::array();
    for (const DpdkReplayReport& l : dpdk_report.per_lcore) {
      lcores.push_back({{"packets", l.replay.packets}, {"mpps", l.replay.mpps()}, {"emitted", l.replay.emitted},
                        {"dropped", l.replay.dropped}, {"invalid", l.replay.invalid},
                        {"transmitted", l.transmitted}});
    }
    j["lcores"] = lcores;
  }
  return j;
}

// Replays a capture through the netfilter pipeline of a host (pcap/replay.h),
// or DPDK ports (pcap/dpdk_port.h): every frame read is emitted, dropped with
// a reason, or counted invalid. Setup, run, then the report.
// --host DIR (a folder from `nfbench snapshot`): its files stand in for
// --rules, --host-addrs/--host-routes, --sysctls and --ipsets not given.
void apply_host_folder(ReplayCommand& o) {
  if (o.host_dir.empty()) {
    if (o.rules_opt != nullptr && o.rules_opt->count() == 0)
      throw std::invalid_argument("replay: give --rules FILE or --host DIR");
    return;
  }
  const HostFolder h = HostFolder::open(o.host_dir);
  if (o.rules.empty()) o.rules = h.rules;
  if (o.host.addrs.empty() && o.host.routes.empty()) {
    o.host.addrs = h.addrs;
    o.host.routes = h.routes;
  }
  if (o.host.sysctls_file.empty()) o.host.sysctls_file = h.sysctls;
  if (o.host.ipsets.empty()) o.host.ipsets = h.ipsets;
}

int cmd_replay(ReplayCommand& o) {
  if (o.unsupported != "error" && o.unsupported != "never-match")
    throw std::invalid_argument("--unsupported: '" + o.unsupported + "' is not error or never-match");
  apply_host_folder(o);
  const auto t0 = std::chrono::steady_clock::now();
  const Ruleset rules =
      load_iptables_save_file(o.rules, ReadOptions{.unsupported_never_match = o.unsupported == "never-match"});
  const std::vector<std::string> approximate = unsupported_rules(rules);
  PipelineConfig config = replay_pipeline_config(o);
  const HostModel host = o.host.load(&config.conntrack);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Pipeline>> shards;
  shards.push_back(Pipeline::build(rules, host, config));
  const auto t2 = std::chrono::steady_clock::now();
  std::string trace;
  set_replay_output(o, *shards[0], trace);
  if (o.lcores == 0) throw std::invalid_argument("--lcores must be at least 1");
  if (o.lcores > 1 && o.dpdk.empty()) throw std::invalid_argument("--lcores goes with --dpdk");
  if (!o.ports.ring_from.empty() && o.dpdk.empty()) throw std::invalid_argument("--ring-from goes with --dpdk");
  if (o.dpdk.empty() && o.replay.capture.empty()) {
    throw std::invalid_argument("replay needs a CAPTURE file or --dpdk \"EAL ARGS\"");
  }

  DpdkReplayReport dpdk_report;
  if (!o.dpdk.empty()) dpdk_report = run_dpdk_command(o, rules, host, config, shards);
  const ReplayReport r = o.dpdk.empty() ? run_replay(*shards[0], host, o.replay) : dpdk_report.replay;

  size_t conntrack_entries = 0;
  for (const auto& p : shards) conntrack_entries += p->conntrack().size();
  if (o.replay.progress && r.seconds >= 0.5 && o.dpdk.empty()) std::fputc('\n', stderr);
  write_replay_counters(o, shards);
  if (o.conntrack) {
    std::string table;
    for (const auto& p : shards) p->conntrack().dump(table, r.last_ts_ns);
    std::fputs(table.c_str(), stdout);
    std::fprintf(stderr, "conntrack v1.4.7 (conntrack-tools): %zu flow entries have been shown.\n",
                 conntrack_entries);
  }
  if (o.json) {
    nlohmann::json j = replay_json(o, r, dpdk_report, conntrack_entries);
    // The control plane: reading the ruleset and host, building one pipeline
    // (its chains' classifiers: what --algo changes).
    j["ruleset_load_seconds"] = std::chrono::duration<double>(t1 - t0).count();
    j["pipeline_build_seconds"] = std::chrono::duration<double>(t2 - t1).count();
    j["classifier_bytes"] = shards[0]->classifier_bytes();
    if (!approximate.empty()) j["approximate"] = {{"reason", "rules that use match modules or targets the model lacks "
                                                             "never match"},
                                                  {"rules", approximate}};
    fmt::print("{}\n", j.dump());
    return r.error.empty() ? 0 : 1;
  }
  std::fputs((o.dpdk.empty() ? format_replay_report(r) : format_dpdk_report(dpdk_report)).c_str(), stdout);
  if (!approximate.empty()) {
    // --unsupported=never-match: say that the counters are not the kernel's.
    fmt::print("Approximate: {} rules use match modules or targets this model does not support and never matched "
               "here; the kernel's counters and verdicts may differ:", approximate.size());
    for (const std::string& a : approximate) fmt::print(" {}", a);
    fmt::print("\n");
  }
  if (!r.error.empty()) {
    std::fprintf(stderr, "nfbench: %s\n", r.error.c_str());
    return 1;
  }
  return 0;
}

struct ClassifyOptions {
  std::string rules;
  std::string trace;
  std::string algo_list = classifier_algorithm_names(",");  // --algo, split into algos before the run
  std::vector<std::string> algos;
  size_t verify = 200000;  // keys the linear reference checks
  unsigned repeat = 3;     // timed passes over the trace; the median is reported
  size_t burst = 256;
  bool json = false;
  bool build_only = false;  // --build-only: build time and memory, no lookups
};

// Every algorithm on the same rules and the same preloaded trace, one after
// the other on this core: build time, memory, lookup rate (median of the
// timed passes, TSC cycles per packet) and disagreements with the linear
// reference. Every lookup classifies from scratch: no flow cache.
int cmd_classify(const ClassifyOptions& o) {
  const Ruleset rs = load_classbench_rules(o.rules);
  const Chain& chain = classbench_chain(rs);
  const RuleBoxes boxes = classbench_boxes(chain);
  if (std::find(o.algos.begin(), o.algos.end(), "acl") != o.algos.end()) {
    // rte_acl's widest kernels need the EAL told so; 100K-rule contexts
    // need more than the default heap.
    const std::vector<std::string> eal{"--force-max-simd-bitwidth=512", "-m", "4096"};
    start_dpdk_eal(eal);
  }
  if (o.build_only) {
    for (const std::string& algo : o.algos) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::unique_ptr<Classifier> c = make_classifier(algo, boxes);
      const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.json) {
        nlohmann::json j;
        j["algo"] = algo;
        j["rules"] = chain.rules.size();
        j["rule_file"] = o.rules;
        j["build_seconds"] = build_s;
        j["memory_bytes"] = c->memory_bytes();
        fmt::print("{}\n", j.dump());
      } else {
        fmt::print("{:<16} rules {:>7}  build {:>8.3f} s  memory {:>12} B\n", algo, chain.rules.size(), build_s,
                   c->memory_bytes());
      }
      std::fflush(stdout);
    }
    return 0;
  }
  if (o.trace.empty()) throw std::invalid_argument("classify: --trace is required (or --build-only)");
  const ClassBenchTrace trace = load_classbench_trace(o.trace);
  // The trace as 16-byte five-tuple records, the way dpdk-test-acl holds
  // it; each burst becomes ClassifierKeys in one reused buffer (five stores
  // a key, the other dimensions stay 0), as a packet path builds a burst's
  // keys from its packets. Streaming preloaded 112-byte ClassifierKeys
  // instead made a pass over a 1M-header trace read 109 MB against
  // dpdk-test-acl's 16 MB (results/acl-wrapper-20261208.md).
  struct Record {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t proto;
  };
  static_assert(sizeof(Record) == 16);
  std::vector<Record> records(trace.keys.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const ClassifierKey k = classbench_key(trace.keys[i]);
    records[i] = Record{k.v[kDimSrcIp], k.v[kDimDstIp], static_cast<uint16_t>(k.v[kDimSrcPort]),
                        static_cast<uint16_t>(k.v[kDimDstPort]), static_cast<uint8_t>(k.v[kDimProto])};
  }
  if (records.empty()) throw LoadError(SourceLocation{o.trace}, "expected at least one header");
  std::vector<ClassifierKey> burst_keys(o.burst);
  // c's answers for records [from, from + count) into out, burst by burst.
  const auto classify_range = [&](const Classifier& c, size_t from, size_t count, uint32_t* out) {
    for (size_t i = 0; i < count; i += o.burst) {
      const size_t n = std::min(o.burst, count - i);
      for (size_t k = 0; k < n; ++k) {
        const Record& r = records[from + i + k];
        ClassifierKey& key = burst_keys[k];
        key.v[kDimSrcIp] = r.src;
        key.v[kDimDstIp] = r.dst;
        key.v[kDimSrcPort] = r.sport;
        key.v[kDimDstPort] = r.dport;
        key.v[kDimProto] = r.proto;
      }
      c.lookup(std::span(burst_keys.data(), n), {}, std::span(out + i, n));
    }
  };

  // The reference answers for the first `verify` keys.
  const size_t verified = std::min(o.verify, records.size());
  std::vector<uint32_t> truth(verified);
  {
    const LinearClassifier linear(boxes);
    classify_range(linear, 0, verified, truth.data());
  }

  std::vector<uint32_t> result(records.size());
  // Times `repeat` passes of c over the keys and prints the median pass. A
  // slow algorithm (a first pass over up to 20,000 keys projects to more
  // than 10 s for the whole trace: the linear walk, pipapo on large sets)
  // is timed over the verified keys only; "keys" says how many were timed.
  const auto measure = [&](const std::string& algo, const Classifier& c, double build_s, const char* acl_method) {
    const size_t probe = std::min<size_t>(records.size(), 20000);
    const auto p0 = std::chrono::steady_clock::now();
    classify_range(c, 0, probe, result.data());
    const double probe_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
    const bool slow = probe_s * static_cast<double>(records.size()) / static_cast<double>(probe) > 10.0;
    const size_t n_keys = slow ? verified : records.size();
    std::vector<double> seconds, cycles;
    for (unsigned rep = 0; rep < std::max(1U, o.repeat); ++rep) {
      const auto w0 = std::chrono::steady_clock::now();
      const uint64_t c0 = __rdtsc();
      classify_range(c, 0, n_keys, result.data());
      cycles.push_back(static_cast<double>(__rdtsc() - c0));
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::sort(cycles.begin(), cycles.end());
    const double sec = seconds[seconds.size() / 2];
    const double cpp = cycles[cycles.size() / 2] / static_cast<double>(n_keys);
    const double mpps = static_cast<double>(n_keys) / sec / 1e6;
    uint64_t mismatches = 0;
    for (size_t i = 0; i < verified; ++i) mismatches += result[i] != truth[i];
    if (o.json) {
      nlohmann::json j;
      j["algo"] = algo;
      if (acl_method != nullptr) j["acl_method"] = acl_method;
      j["rules"] = chain.rules.size();
      j["rule_file"] = o.rules;
      j["trace_file"] = o.trace;
      j["keys"] = n_keys;
      j["verified_keys"] = verified;
      j["build_seconds"] = build_s;
      j["memory_bytes"] = c.memory_bytes();
      j["mpps"] = mpps;
      j["cycles_per_packet"] = cpp;
      j["mismatches"] = mismatches;
      j["repetitions"] = seconds.size();
      fmt::print("{}\n", j.dump());
    } else {
      const std::string label = acl_method != nullptr ? fmt::format("{}/{}", algo, acl_method) : algo;
      fmt::print("{:<16} rules {:>7}  build {:>8.3f} s  memory {:>12} B  {:>7.2f} Mpps  {:>8.1f} cycles/pkt  "
                 "mismatches {} of {}\n",
                 label, chain.rules.size(), build_s, c.memory_bytes(), mpps, cpp, mismatches, verified);
    }
    std::fflush(stdout);
  };

  for (const std::string& algo : o.algos) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::unique_ptr<Classifier> c = make_classifier(algo, boxes);
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto* acl = dynamic_cast<AclClassifier*>(c.get());
    if (acl == nullptr) {
      measure(algo, *c, build_s, nullptr);
      continue;
    }
    // rte_acl: every classify method this CPU runs, on the same build, so
    // its best is measured in the same run as the others.
    for (AclAlgorithm m : {AclAlgorithm::kScalar, AclAlgorithm::kSse, AclAlgorithm::kAvx2,
                           AclAlgorithm::kAvx512x16, AclAlgorithm::kAvx512x32}) {
      try {
        acl->set_algorithm(m);
      } catch (const std::invalid_argument&) {
        continue;  // not available on this CPU or EAL
      }
      measure(algo, *acl, build_s, std::string(acl_algorithm_name(m)).c_str());
    }
  }
  return 0;
}

struct CompareCommand {
  std::string old_file;
  std::string new_file;
  std::string thresholds;  // "" = results/thresholds.json if it exists, else built-in defaults
  double alpha = std::nan("");  // NaN = the thresholds file's
  TimeMetric metric = TimeMetric::kRealTime;
  bool json = false;
  bool force = false;  // --force: judge runs from different machines or inputs anyway
};

// Rules that cannot do what they say (analysis/lint.h). Exit 1 when
// something was found, 0 when not.
int cmd_lint(const std::string& rules_file, const HostFiles& hf, bool json) {
  const Ruleset rules = load_iptables_save_file(rules_file);
  const HostModel host = hf.load();
  std::optional<IpSets> sets = hf.load_ipsets();
  const std::vector<LintFinding> found = lint_ruleset(rules, host, sets ? &*sets : nullptr);
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const LintFinding& f : found) {
      j.push_back({{"kind", f.kind}, {"where", f.where.str()}, {"message", f.message}, {"evidence", f.evidence},
                   {"fix", f.fix}});
    }
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("{}", format_lint(found));
  }
  return found.empty() ? 0 : 1;
}

// One packet's way through the hooks (analysis/explain.h), then as many
// replies and later packets as asked, through the same pipeline.
int cmd_explain(const std::string& rules_file, const HostFiles& hf, const std::string& packet, bool reply,
                unsigned then) {
  const Ruleset rules = load_iptables_save_file(rules_file);
  const HostModel host = hf.load();
  std::optional<IpSets> sets = hf.load_ipsets();
  PipelineConfig config;
  if (sets) config.match.ipsets = &*sets;
  auto pipeline = Pipeline::build(rules, host, config);
  const Probe probe = parse_probe(packet, "--packet");
  uint64_t ts = 1'000'000'000'000ULL;
  const Explanation first = explain_probe(*pipeline, rules, host, probe, ts);
  fmt::print("{}", format_explanation(first));
  if (reply) {
    if (!first.emitted) {
      fmt::print("\nno reply: the packet never arrived\n");
    } else {
      fmt::print("\nthe reply:\n{}", format_explanation(explain_probe(*pipeline, rules, host, reply_probe(first),
                                                                         ts += 1'000'000)));
    }
  }
  for (unsigned i = 0; i < then; ++i) {
    fmt::print("\na later packet of the same connection:\n{}",
               format_explanation(explain_probe(*pipeline, rules, host, later_probe(probe), ts += 1'000'000)));
  }
  return 0;
}

// Regression verdicts between two Google Benchmark runs (tools/compare.h).
// Exit status: 0 no regression, 1 some benchmark regressed, 2 unreadable or
// invalid input.
int cmd_compare(const CompareCommand& o) {
  Comparison c;
  try {
    Thresholds t;
    if (!o.thresholds.empty()) {
      t = load_thresholds(o.thresholds);
    } else if (std::filesystem::exists("results/thresholds.json")) {
      t = load_thresholds("results/thresholds.json");
    }
    if (!std::isnan(o.alpha)) {
      if (!(o.alpha > 0 && o.alpha < 1)) throw std::invalid_argument(fmt::format("--alpha {} is not in (0, 1)", o.alpha));
      t.alpha = o.alpha;
    }
    const BenchmarkRun old_run = load_benchmark_run(o.old_file);
    const BenchmarkRun new_run = load_benchmark_run(o.new_file);
    const std::vector<std::string> mismatches = machine_mismatches(old_run, new_run);
    if (!mismatches.empty() && !o.force) {
      std::string why;
      for (const std::string& m : mismatches) why += "\n  " + m;
      throw std::invalid_argument("cannot judge these runs against each other:" + why +
                                  "\n(make both on one machine from the same inputs, or --force to compare anyway)");
    }
    c = compare_runs(old_run, new_run, t, o.metric);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nfbench: %s\n", e.what());
    return 2;
  }
  std::fputs(o.json ? (comparison_json(c) + "\n").c_str() : format_comparison(c).c_str(), stdout);
  return c.regressed() ? 1 : 0;
}

// ---------------------------------------------------------------------------
// The command line: one function per subcommand declares its options (in
// the order --help lists them), main parses and runs the one given.

struct RulesCommand {
  std::string file;
  RulesFormat in = RulesFormat::Auto;
  RulesFormat out = RulesFormat::Auto;
  bool counters = false;
};

struct ParseCommand {
  std::string capture;
  bool json = false;
};

struct LintCommand {
  std::string rules;
  HostFiles host;
  bool json = false;
};

struct ExplainCommand {
  std::string rules;
  std::string packet;
  HostFiles host;
  bool reply = false;
  unsigned then = 0;
};

struct GenCommand {
  // gen traffic
  std::string rules;
  std::string out;
  HostFiles host;
  TrafficSpec traffic;
  // gen docker, gen kube
  std::string ruleset_out;
  DockerGenOptions docker;
  KubeGenOptions kube;
  CLI::App* traffic_cmd = nullptr;
  CLI::App* docker_cmd = nullptr;
  CLI::App* kube_cmd = nullptr;
};

CLI::App* add_rules_command(CLI::App& app, RulesCommand& o) {
  const std::map<std::string, RulesFormat> formats{
      {"auto", RulesFormat::Auto}, {"iptables", RulesFormat::Iptables}, {"classbench", RulesFormat::ClassBench}};
  CLI::App* rules = app.add_subcommand(
      "rules", "Load a ruleset (iptables-save or ClassBench, optionally .xz) and print it in canonical form");
  rules->add_option("FILE", o.file, "ruleset file")->required();
  rules->add_option("--input", o.in, "input format: auto, iptables, classbench")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  rules->add_option("--format", o.out, "output format: auto (same as input), iptables, classbench")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  rules->add_flag("-c,--counters", o.counters, "print [packets:bytes] counters, like iptables-save -c");
  return rules;
}

CLI::App* add_parse_command(CLI::App& app, ParseCommand& o) {
  CLI::App* parse = app.add_subcommand("parse", "Parse every frame of a capture and count the results by reason");
  parse->add_option("CAPTURE", o.capture, "pcap or pcapng file")->required();
  parse->add_flag("--json", o.json, "print one JSON object");
  return parse;
}

// nfbench replay: the file replay's options, then DPDK's.
CLI::App* add_replay_command(CLI::App& app, ReplayCommand& o) {
  CLI::App* replay = app.add_subcommand(
      "replay", "Replay a capture through the host's netfilter pipeline (raw, conntrack, nat, routing, filter)");
  replay->add_option("CAPTURE", o.replay.capture, "pcap or pcapng file (.xz too); or use --dpdk");
  o.rules_opt = replay->add_option("--rules", o.rules, "iptables-save file of the host (or --host DIR)");
  replay->add_option("--host", o.host_dir,
                     "a folder from `nfbench snapshot`: the host's rules, addresses, routes, sysctls and IP sets "
                     "(options given beside it win)");
  replay->add_option("--host-addrs", o.host.addrs, "the host's `ip -j addr` (default: the Docker host)");
  replay->add_option("--sysctl", o.host.sysctls,
                     "NAME=VALUE, repeatable: a conntrack or host setting by its sysctl name "
                     "(net.netfilter.nf_conntrack_tcp_be_liberal=1, net.ipv4.conf.eth0.route_localnet=1, ...)");
  replay->add_option("--sysctls", o.host.sysctls_file, "a `sysctl -a` dump of the host (applied before --sysctl)");
  replay->add_option("--host-routes", o.host.routes, "the host's `ip -j route`");
  replay->add_option("--ipsets", o.host.ipsets, "the host's IP sets, as `ipset save` prints them (for -m set)");
  replay->add_option("--in-iface", o.replay.in_iface,
                     "ingress interface of frames whose capture interface has no name (default eth0)");
  replay->add_option("--loop", o.replay.loops,
                     "replay the capture N times, each later in time by its span + 1 s (default 1)")
      ->check(CLI::PositiveNumber);
  replay->add_flag("--stream", o.stream,
                   "stream the capture through bounded memory instead of preloading it (files larger than RAM)");
  replay->add_option("--write-emitted", o.replay.emitted_file,
                     "write every emitted frame, after NAT, to this pcapng (one interface per egress interface)");
  replay->add_option("--write-dropped", o.replay.dropped_file,
                     "write every dropped and invalid frame, as received, to this pcapng (a comment says why)");
  replay->add_option("-o,--output-dir", o.replay.out_dir,
                     "write the frames the host sends, after NAT, as DIR/IFACE.pcapng per egress interface");
  replay->add_option("--save-counters", o.save_counters,
                     "write the counters as iptables-save -c to FILE (- for standard output)");
  replay->add_option("--list-counters", o.list_counters,
                     "write the counters as iptables -L -v -n -x, per table, to FILE (- for standard output)");
  replay->add_flag("--trace", o.trace, "print every packet's path as kernel TRACE lines");
  replay->add_flag("--conntrack", o.conntrack, "print the conntrack table at the end (conntrack -L)");
  replay->add_flag("--no-fast-path", o.no_fast_path, "walk the chains for every packet");
  replay->add_option("--rx-csum", o.rx_csum,
                     "L4 checksums as the NIC delivers them: verify (CHECKSUM_NONE: conntrack checks them, "
                     "the default) or trust (CHECKSUM_UNNECESSARY: RX checksum offload; wrong ones are let "
                     "through and counted). DPDK ports: the mbuf's flags decide, this only for unknown ones");
  replay->add_flag("--progress", o.progress, "print a progress line on standard error (default on a terminal)");
  replay->add_option("--unsupported", o.unsupported,
                     "rules using match modules or targets this model lacks: error (default: refuse the ruleset, "
                     "listing every such rule) or never-match (load them as rules that never match; the report "
                     "says the counters are approximate)");
  replay->add_option("--algo", o.algo,
                     "classifier every chain runs on: " + classifier_algorithm_names() +
                         " (default linear); counters are identical");
  replay->add_flag("--json", o.json, "print one JSON object");
  replay->add_option("--dpdk", o.dpdk,
                     "receive from DPDK ports started with these EAL arguments instead of a capture, e.g. "
                     "\"--no-huge --no-pci -m 1024 --vdev=net_pcap0,rx_pcap=IN.pcap,tx_pcap=OUT.pcap\"");
  replay->add_option("--port-map", o.ports.port_map, "DPDK port to host interface, PORT=IFACE,... (default 0=eth0)");
  replay->add_option("--max-packets", o.ports.max_packets, "DPDK: stop after this many frames");
  replay->add_option("--duration", o.ports.duration_s, "DPDK: stop after this many seconds");
  replay->add_option("--lcores", o.lcores,
                     "DPDK: lcores, each on its own rx/tx queue of every port with its own conntrack shard "
                     "(default 1; the EAL needs as many, -l 0-N)");
  replay->add_option("--ring-from", o.ports.ring_from,
                     "DPDK: a net_ring port fed from this capture (preloaded) by a feeder on the EAL's next lcore "
                     "after the workers: the port path measured without libpcap (needs -l 0-N with one lcore more)");
  replay->add_option("--ring-loops", o.ports.ring_loops, "DPDK ring source: times the capture is sent");
  replay->add_option("--mbufs", o.ports.mbufs,
                     "DPDK: mbuf pool size (default 8191; a pcap vdev with infinite_rx=1 needs one per frame)");
  replay->add_option("--idle-ms", o.ports.idle_ms,
                     "DPDK: stop when no port received anything for this long (default 200; 0 = never)");
  return replay;
}

CLI::App* add_classify_command(CLI::App& app, ClassifyOptions& o) {
  CLI::App* classify = app.add_subcommand(
      "classify", "Compare classifier algorithms on a ClassBench rule set and trace, side by side on one core");
  classify->add_option("--rules", o.rules, "ClassBench rule file (optionally .xz)")->required();
  classify->add_option("--trace", o.trace, "ClassBench trace file (optionally .xz); required unless --build-only");
  classify->add_option("--algo", o.algo_list, "comma-separated: " + classifier_algorithm_names() + " (default all)");
  classify->add_option("--verify", o.verify, "headers checked against the linear walk (default 200000)");
  classify->add_option("--repeat", o.repeat, "timed passes over the trace; the median is reported");
  classify->add_flag("--json", o.json, "one JSON object per algorithm");
  classify->add_flag("--build-only", o.build_only,
                     "build each algorithm and report its build time and memory; no trace, no lookups");
  return classify;
}

CLI::App* add_compare_command(CLI::App& app, CompareCommand& o) {
  CLI::App* compare = app.add_subcommand(
      "compare", "Compare two Google Benchmark JSON runs (every repetition kept): medians, Mann-Whitney U, verdicts; "
                 "exit 1 if a benchmark regressed, 2 on bad input or runs from different machines or inputs");
  compare->add_option("OLD", o.old_file, "the baseline run")->required();
  compare->add_option("NEW", o.new_file, "the run to judge")->required();
  compare->add_option("--thresholds", o.thresholds,
                      "thresholds file (default: results/thresholds.json if it exists, else 5% and alpha 0.05)");
  compare->add_option("--alpha", o.alpha, "significance level, in (0, 1) (default: the thresholds file's)");
  compare->add_option("--metric", o.metric, "real_time (default) or cpu_time")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, TimeMetric>{{"real_time", TimeMetric::kRealTime}, {"cpu_time", TimeMetric::kCpuTime}}));
  compare->add_flag("--json", o.json, "print one JSON object");
  compare->add_flag("--force", o.force,
                    "judge runs made on different CPUs or from different inputs (refused by default: exit 2)");
  return compare;
}

CLI::App* add_lint_command(CLI::App& app, LintCommand& o) {
  CLI::App* lint = app.add_subcommand(
      "lint", "Find rules that cannot do what they say: published ports rewritten by DNAT before filter sees them, "
              "shadowed rules, chains nothing jumps to; exit 1 when something is found");
  lint->add_option("RULES", o.rules, "iptables-save file")->required();
  lint->add_option("--host-addrs", o.host.addrs, "the host's `ip -j addr` (default: the Docker host)");
  lint->add_option("--host-routes", o.host.routes, "the host's `ip -j route`");
  lint->add_option("--ipsets", o.host.ipsets, "the host's IP sets, as `ipset save` prints them (for -m set)");
  lint->add_flag("--json", o.json, "print the findings as a JSON array");
  return lint;
}

CLI::App* add_explain_command(CLI::App& app, ExplainCommand& o) {
  CLI::App* explain = app.add_subcommand(
      "explain", "Print one packet's way through every hook and chain, with the tuple after each rewrite and the "
                 "rule that decided");
  explain->add_option("RULES", o.rules, "iptables-save file")->required();
  explain->add_option("--packet", o.packet,
                      "\"tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0\" (tcp, udp or icmp)")
      ->required();
  explain->add_flag("--reply", o.reply, "then the reply, from where the packet went");
  explain->add_option("--then", o.then, "then N later packets of the same connection (default 0)");
  explain->add_option("--host-addrs", o.host.addrs, "the host's `ip -j addr` (default: the Docker host)");
  explain->add_option("--host-routes", o.host.routes, "the host's `ip -j route`");
  explain->add_option("--ipsets", o.host.ipsets, "the host's IP sets, as `ipset save` prints them (for -m set)");
  return explain;
}

// nfbench gen traffic|docker|kube.
CLI::App* add_gen_command(CLI::App& app, GenCommand& o) {
  CLI::App* gen = app.add_subcommand("gen", "Generate inputs: traffic for a ruleset, Docker and kube-proxy rulesets");
  gen->require_subcommand(1);
  CLI::App* traffic = gen->add_subcommand(
      "traffic", "Connections to the ruleset's published ports and from its containers, both directions, as pcapng");
  traffic->add_option("--rules", o.rules, "iptables-save file of the Docker host")->required();
  traffic->add_option("--host-addrs", o.host.addrs, "the host's `ip -j addr` (default: the Docker host)");
  traffic->add_option("--host-routes", o.host.routes, "the host's `ip -j route`");
  traffic->add_option("--flows", o.traffic.flows, "connections open at any time (default 1000)")
      ->check(CLI::PositiveNumber);
  traffic->add_option("--packets", o.traffic.packets, "frames to write (default 100000)");
  traffic->add_option("--new-share", o.traffic.new_share,
                      "share of packets that open a connection, in (0, 1] (default 0.01)");
  traffic->add_option("--seed", o.traffic.seed, "random seed (default 1)");
  traffic->add_option("--zipf", o.traffic.zipf_s, "flow popularity exponent (default 1; 0 = uniform)");
  traffic->add_option("-o,--output", o.out, "pcapng file to write")->required();
  CLI::App* docker = gen->add_subcommand(
      "docker", "A Docker 28 host's iptables-save: containers on bridge networks publishing ports");
  docker->add_option("--containers", o.docker.containers, "containers")->required();
  docker->add_option("--ports", o.docker.ports, "published ports per container")->required();
  docker->add_option("--networks", o.docker.networks, "bridge networks, docker0 first (default 1)");
  docker->add_option("--seed", o.docker.seed, "random seed: bridge names, container ports (default 1)");
  docker->add_option("-o,--output", o.ruleset_out, "file to write (default: standard output)");
  CLI::App* kube = gen->add_subcommand(
      "kube", "A kube-proxy (iptables mode) node's iptables-save: services, endpoints, node ports");
  kube->add_option("--services", o.kube.services, "services")->required();
  kube->add_option("--endpoints", o.kube.endpoints, "endpoints per service")->required();
  kube->add_option("--seed", o.kube.seed, "random seed: chain hashes, ports (default 1)");
  kube->add_option("-o,--output", o.ruleset_out, "file to write (default: standard output)");
  o.traffic_cmd = traffic;
  o.docker_cmd = docker;
  o.kube_cmd = kube;
  return gen;
}

// gen docker, gen kube: the ruleset to standard output or -o FILE.
int cmd_gen_ruleset(const GenCommand& o) {
  const std::string text = *o.docker_cmd ? generate_docker_ruleset(o.docker) : generate_kube_ruleset(o.kube);
  if (o.ruleset_out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    write_text_file(o.ruleset_out, text);
  }
  return 0;
}

int cmd_gen_traffic(const GenCommand& o) {
  const Ruleset rs = load_iptables_save_file(o.rules);
  const HostModel host = o.host.load();
  const TrafficSummary t = generate_traffic(rs, host, o.traffic, o.out);
  fmt::print("wrote {}: {} packets ({} bytes), {} connections ({} to published ports), new share {:.4f}\n", o.out,
             t.packets, t.bytes, t.connections, t.inbound,
             t.packets == 0 ? 0.0 : static_cast<double>(t.connections) / static_cast<double>(t.packets));
  return 0;
}

// "linear,dtree" -> {"linear", "dtree"}; empty parts are left out.
std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    if (comma > at) out.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

/// Every subcommand's options and its CLI11 object (set when it was given).
struct SnapshotCommand {
  std::string dir;
  CLI::App* cmd = nullptr;
};

struct Commands {
  SnapshotCommand snapshot;
  RulesCommand rules;
  ParseCommand parse;
  ReplayCommand replay;
  ClassifyOptions classify;
  CompareCommand compare;
  LintCommand lint;
  ExplainCommand explain;
  GenCommand gen;
  CLI::App* rules_cmd = nullptr;
  CLI::App* parse_cmd = nullptr;
  CLI::App* replay_cmd = nullptr;
  CLI::App* classify_cmd = nullptr;
  CLI::App* compare_cmd = nullptr;
  CLI::App* lint_cmd = nullptr;
  CLI::App* explain_cmd = nullptr;
};

void add_commands(CLI::App& app, Commands& c) {
  c.rules_cmd = add_rules_command(app, c.rules);
  c.parse_cmd = add_parse_command(app, c.parse);
  c.replay_cmd = add_replay_command(app, c.replay);
  c.classify_cmd = add_classify_command(app, c.classify);
  c.compare_cmd = add_compare_command(app, c.compare);
  c.lint_cmd = add_lint_command(app, c.lint);
  c.explain_cmd = add_explain_command(app, c.explain);
  add_gen_command(app, c.gen);
  c.snapshot.cmd = app.add_subcommand(
      "snapshot", "Save this host's netfilter state (iptables-save -c, ip -j addr/route/link, sysctls, ipset save) "
                  "into a folder for `replay --host DIR`");
  c.snapshot.cmd->add_option("DIR", c.snapshot.dir, "the folder (created; its files are replaced)")->required();
}

// Runs the subcommand the command line gave. Throws what it throws.
int run_command(Commands& c) {
  if (*c.rules_cmd) return cmd_rules(c.rules.file, c.rules.in, c.rules.out, c.rules.counters);
  if (*c.parse_cmd) return cmd_parse(c.parse.capture, c.parse.json);
  if (*c.replay_cmd) return cmd_replay(c.replay);
  if (*c.classify_cmd) {
    c.classify.algos = split_commas(c.classify.algo_list);
    return cmd_classify(c.classify);
  }
  if (*c.compare_cmd) return cmd_compare(c.compare);
  if (*c.lint_cmd) return cmd_lint(c.lint.rules, c.lint.host, c.lint.json);
  if (*c.explain_cmd) {
    return cmd_explain(c.explain.rules, c.explain.host, c.explain.packet, c.explain.reply, c.explain.then);
  }
  if (*c.gen.docker_cmd || *c.gen.kube_cmd) return cmd_gen_ruleset(c.gen);
  if (*c.gen.traffic_cmd) return cmd_gen_traffic(c.gen);
  if (*c.snapshot.cmd) {
    fmt::print("{}", take_snapshot(c.snapshot.dir));
    return 0;
  }
  return 0;
}

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  using namespace nfb;
  CLI::App app{"nfbench: Linux netfilter in user space, and a benchmark of packet classifiers"};
  app.require_subcommand(1);
  Commands commands;
  add_commands(app, commands);
  CLI11_PARSE(app, argc, argv);
  try {
    return run_command(commands);
  } catch (const LoadError& e) {
    std::fprintf(stderr, "nfbench: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nfbench: %s\n", e.what());
    return 1;
  }
}
