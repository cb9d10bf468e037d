// nfbench: the command line. Every subcommand is a thin shell over the
// library: parse arguments, load input (LoadError -> message, exit 1), run,
// print. Only this file may exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "classifier/classbench.h"
#include "classifier/frame_parser.h"
#include "classifier/input_file.h"
#include "classifier/iptables_save.h"
#include "classifier/load_error.h"
#include "pcap/capture_reader.h"

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

}  // namespace
}  // namespace nfb

int main(int argc, char** argv) {
  using namespace nfb;
  CLI::App app{"nfbench: Linux netfilter in user space, and a benchmark of packet classifiers"};
  app.require_subcommand(1);

  const std::map<std::string, RulesFormat> formats{
      {"auto", RulesFormat::Auto}, {"iptables", RulesFormat::Iptables}, {"classbench", RulesFormat::ClassBench}};

  std::string rules_file;
  RulesFormat rules_in = RulesFormat::Auto;
  RulesFormat rules_out = RulesFormat::Auto;
  bool rules_counters = false;
  CLI::App* rules = app.add_subcommand(
      "rules", "Load a ruleset (iptables-save or ClassBench, optionally .xz) and print it in canonical form");
  rules->add_option("FILE", rules_file, "ruleset file")->required();
  rules->add_option("--input", rules_in, "input format: auto, iptables, classbench")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  rules->add_option("--format", rules_out, "output format: auto (same as input), iptables, classbench")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  rules->add_flag("-c,--counters", rules_counters, "print [packets:bytes] counters, like iptables-save -c");

  std::string capture_file;
  bool parse_json = false;
  CLI::App* parse = app.add_subcommand("parse", "Parse every frame of a capture and count the results by reason");
  parse->add_option("CAPTURE", capture_file, "pcap or pcapng file")->required();
  parse->add_flag("--json", parse_json, "print one JSON object");

  CLI11_PARSE(app, argc, argv);

  try {
    if (*rules) return cmd_rules(rules_file, rules_in, rules_out, rules_counters);
    if (*parse) return cmd_parse(capture_file, parse_json);
  } catch (const LoadError& e) {
    std::fprintf(stderr, "nfbench: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nfbench: %s\n", e.what());
    return 1;
  }
  return 0;
}
