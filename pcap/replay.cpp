#include "pcap/replay.h"

#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

#include "pcap/burst_loop.h"
#include "pcap/capture_port.h"

namespace nfb {

PipelineMark mark_pipeline(const Pipeline& pipeline) noexcept {
  return PipelineMark{pipeline.stats(), pipeline.conntrack().counters().inserted,
                      pipeline.conntrack().counters().trusted_bad_checksum};
}

void fill_verdicts(ReplayReport& r, const Pipeline& pipeline, const PipelineMark& since) noexcept {
  const PipelineStats& now = pipeline.stats();
  r.pipeline = now;
  r.emitted = r.dropped = 0;
  for (size_t f = 0; f < kFateCount; ++f) {
    r.pipeline.by_fate[f] -= since.stats.by_fate[f];
    (fate_emitted(static_cast<Fate>(f)) ? r.emitted : r.dropped) += r.pipeline.by_fate[f];
  }
  r.pipeline.fast_path_packets -= since.stats.fast_path_packets;
  r.pipeline.walked_packets -= since.stats.walked_packets;
  r.pipeline.rules_tested -= since.stats.rules_tested;
  r.invalid = r.parse.rejected();
  r.flows = pipeline.conntrack().counters().inserted - since.confirmed;
  r.trusted_bad_checksum = pipeline.conntrack().counters().trusted_bad_checksum - since.trusted_bad;
}

// A capture through the pipeline into the pcapng sinks: the burst loop on a
// capture port (pcap/capture_port.h).
ReplayReport run_replay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o) {
  if (o.loops == 0) throw std::invalid_argument("replay: --loop must be at least 1");
  CaptureReader reader(o.capture, o.mode);
  CaptureSinks sinks(host, o);
  ReplayReport r;
  CaptureSource source(reader, host, o, sinks.keeps_received(), r);

  const PipelineMark before = mark_pipeline(pipeline);
  const auto start = std::chrono::steady_clock::now();
  auto next_progress = start + std::chrono::milliseconds(500);
  const auto refresh = [&] {
    fill_verdicts(r, pipeline, before);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  run_burst_loop(source, sinks, pipeline, r, [&] {
    if (o.after_burst) o.after_burst();
    if (o.progress && (r.packets & 1023U) < kFrameBurst) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_progress) {
        next_progress = now + std::chrono::milliseconds(500);
        refresh();
        o.progress(r);
      }
    }
  });
  refresh();
  sinks.close(r);
  return r;
}

std::string format_replay_report(const ReplayReport& r) {
  std::string s;
  const double capture_s =
      r.last_ts_ns > r.first_ts_ns ? static_cast<double>(r.last_ts_ns - r.first_ts_ns) / 1e9 : 0;
  s += fmt::format("Actual: {} packets ({} bytes) sent in {:.6f} seconds, {} loop{} (capture spans {:.6f} s)\n",
                   r.packets, r.bytes, r.seconds, r.loops, r.loops == 1 ? "" : "s", capture_s);
  s += fmt::format("Rated: {:.1f} Bps, {:.3f} Gbps L2, {:.3f} Gbps L1, {:.3f} Mpps\n",
                   r.seconds > 0 ? static_cast<double>(r.bytes) / r.seconds : 0, r.gbps_l2(), r.gbps_l1(), r.mpps());
  s += fmt::format("Flows: {} connections confirmed by conntrack\n", r.flows);
  s += fmt::format("Verdicts: {} emitted, {} dropped, {} invalid ({}; fast path: {} packets)\n", r.emitted,
                   r.dropped, r.invalid, r.balanced() ? "every packet accounted for" : "UNBALANCED",
                   r.pipeline.fast_path_packets);
  if (r.trusted_bad_checksum != 0) {
    s += fmt::format("Checksums: {} packets with a wrong L4 checksum let through unchecked (--rx-csum trust: "
                     "the NIC vouched for them)\n",
                     r.trusted_bad_checksum);
  }
  for (size_t f = 0; f < kFateCount; ++f) {
    if (r.pipeline.by_fate[f] == 0) continue;
    const auto fate = static_cast<Fate>(f);
    s += fmt::format("  {:>10}  {:<22} {}\n", r.pipeline.by_fate[f], fate_name(fate), fate_description(fate));
  }
  for (size_t i = 1; i < kParseStatusCount; ++i) {
    if (r.parse.by_status[i] == 0) continue;
    const auto st = static_cast<ParseStatus>(i);
    s += fmt::format("  {:>10}  {:<22} invalid: {}\n", r.parse.by_status[i], parse_status_name(st),
                     parse_status_description(st));
  }
  if (!r.error.empty()) s += fmt::format("Stopped early: {}\n", r.error);
  return s;
}

std::string format_replay_progress(const ReplayReport& r) {
  return fmt::format("{} packets, {:.3f} Mpps, {:.3f} Gbps; {} emitted, {} dropped, {} invalid", r.packets, r.mpps(),
                     r.gbps_l2(), r.emitted, r.dropped, r.invalid);
}

}  // namespace nfb
