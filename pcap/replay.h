// Replay: frames from a capture through the netfilter pipeline, at the speed
// the machine allows, into optional sinks, with a tcpreplay-style report.
// run_replay is the burst loop (burst_loop.h) on a capture port
// (capture_port.h: CaptureSource, CaptureSinks):
//
//   source (capture: preloaded and indexed, or streamed; --loop N)
//     -> burst of 32 frames -> parsed into the pipeline's input
//     -> Pipeline::process (NAT rewrites the frame in place: in the
//        preloaded capture itself, whose rewritable header bytes are saved
//        and put back when a later loop or the dropped sink needs them; a
//        streamed frame is copied first)
//     -> sinks (emitted / dropped / per-interface)
//
// Accounting: every frame read is in exactly one of emitted (forwarded or
// delivered), dropped (a pipeline fate, by reason; fragments held for a
// datagram that never completed count as dropped) or invalid (did not parse,
// by reason): packets == emitted + dropped + invalid, always (a test checks
// it, and the report says so).
//
// Loops: loop k replays the capture with every timestamp shifted by k x
// (its span + 1 s), so conntrack and limit see time move on, as they would
// if the capture were sent again right after itself.
//
// Sinks (all pcapng, nanosecond timestamps):
//   emitted_file   every emitted frame after NAT; one interface block per
//                  egress interface (and link type), named after it; frames
//                  delivered to the host itself go to an interface "local".
//   dropped_file   every dropped and invalid frame as it was received, on its
//                  ingress interface, with an opt_comment saying why
//                  ("dropped_by_rule", "invalid: truncated_l4", ...).
//   out_dir        one pcapng per egress interface (DIR/eth0.pcapng, ...).
// Forwarded Ethernet frames carry the egress interface's MAC as source and a
// zero destination MAC (the neighbour table is not modelled).
//
// Errors: opening files (a bad header or magic included) throws LoadError
// naming the file and byte offset. A malformed record later in the capture
// (truncated file, impossible length) stops the replay: the frames before it
// are processed and counted, and ReplayReport::error says what and where.
// Parse and pipeline neither throw nor allocate (a trace, when asked for,
// grows its string). Sink writes neither throw nor allocate per frame: an
// I/O error is recorded and thrown (LoadError) when the sink is closed at the
// end; the first frame to an interface allocates that interface's block and,
// with out_dir, opens its file (which throws LoadError if it cannot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "pcap/capture_reader.h"

namespace nfb {

struct ReplayOptions {
  std::string capture;
  CaptureMode mode = CaptureMode::kPreload;
  uint32_t loops = 1;              // >= 1
  std::string in_iface = "eth0";   // ingress of frames whose capture interface has no name
  std::string emitted_file;        // "" = not written
  std::string dropped_file;
  std::string out_dir;
  /// --rx-csum trust (the pipeline's PipelineConfig::rx_csum_trust): frames
  /// with a wrong L4 checksum are marked (PacketIn::csum_wrong), so conntrack
  /// counts the ones it let through unchecked. Preloaded captures are checked
  /// once before the clock starts; streamed ones frame by frame.
  bool rx_csum_trust = false;
  /// Called after every burst with the pipeline's trace text (when a trace
  /// string was set on the pipeline); may consume and clear it.
  std::function<void()> after_burst;
  /// Called about every 0.5 s of replay with the report so far (progress).
  std::function<void(const struct ReplayReport&)> progress;
};

struct ReplayReport {
  uint64_t packets = 0;        // frames read, over all loops
  uint64_t bytes = 0;          // their wire lengths
  uint64_t l1_bytes = 0;       // bytes on an Ethernet wire: frame (padded to 60) + FCS + preamble + gap
  uint32_t loops = 0;          // loops completed
  double seconds = 0;          // wall time of the replay loop
  uint64_t first_ts_ns = 0;    // capture timestamps seen (shifted by the loop)
  uint64_t last_ts_ns = 0;
  uint64_t emitted = 0;
  uint64_t dropped = 0;
  uint64_t invalid = 0;
  uint64_t flows = 0;          // connections conntrack confirmed
  uint64_t trusted_bad_checksum = 0;  // wrong L4 checksums let through unchecked (--rx-csum trust)
  PipelineStats pipeline;
  ParseCounters parse;
  uint64_t emitted_written = 0;  // frames in emitted_file
  uint64_t dropped_written = 0;  // frames in dropped_file
  /// A malformed capture record stopped the replay: the LoadError message
  /// (file and byte offset); "" when the capture was read to its end.
  std::string error;

  double mpps() const noexcept { return seconds > 0 ? static_cast<double>(packets) / seconds / 1e6 : 0; }
  double gbps_l2() const noexcept { return seconds > 0 ? static_cast<double>(bytes) * 8 / seconds / 1e9 : 0; }
  double gbps_l1() const noexcept { return seconds > 0 ? static_cast<double>(l1_bytes) * 8 / seconds / 1e9 : 0; }
  bool balanced() const noexcept { return packets == emitted + dropped + invalid; }
};

/// The pipeline's counts at one moment, so a report can take what it did
/// after (a pipeline may have run before, e.g. in an earlier loop).
struct PipelineMark {
  PipelineStats stats;
  uint64_t confirmed = 0;  // conntrack entries confirmed so far
  uint64_t trusted_bad = 0;  // conntrack's trusted_bad_checksum so far
};
PipelineMark mark_pipeline(const Pipeline& pipeline) noexcept;
/// Sets r.pipeline, r.emitted, r.dropped, r.flows and r.trusted_bad_checksum
/// to what `pipeline` did since `since`, and r.invalid from r.parse.
void fill_verdicts(ReplayReport& r, const Pipeline& pipeline, const PipelineMark& since) noexcept;

// ---------------------------------------------------------------------------
// The per-frame stages of the burst loop (burst_loop.h), whatever its source
// and sink: a capture file (capture_port.h) or DPDK ports (dpdk_port.cpp).
// Packet path: noexcept, no allocation.

/// The frames of one burst (the pipeline's burst).
inline constexpr size_t kFrameBurst = 32;

/// Bytes on an Ethernet wire for a frame of `wirelen` bytes (captures and
/// mbufs hold no FCS): padded to 60, FCS 4, preamble and delimiter 8,
/// inter-frame gap 12.
constexpr uint64_t l1_bytes_of(uint32_t wirelen) noexcept { return uint64_t{wirelen < 60 ? 60U : wirelen} + 24; }

/// Counts one received frame of `wirelen` bytes into the report. (The burst
/// loop counts the same in registers and adds a burst's count at once.)
inline void count_received(ReplayReport& r, uint32_t wirelen) noexcept {
  ++r.packets;
  r.bytes += wirelen;
  r.l1_bytes += l1_bytes_of(wirelen);
}

/// The frame's key as it arrives on `iface`: the one-pass parse for the
/// common Ethernet/IPv4/TCP|UDP frame, the general parser for the rest.
inline ParseStatus parse_ingress(const uint8_t* data, uint32_t len, LinkType link, uint16_t iface,
                                 PacketKey& key) noexcept {
  return link == LinkType::Ethernet && parse_common_ethernet(data, len, iface, key)
             ? ParseStatus::Ok
             : parse_frame(data, len, link, iface, key);
}

/// A forwarded Ethernet frame leaves from its interface's MAC; the
/// destination MAC is left zero (the neighbour table is not modelled).
/// Called by the sinks' forward(), where the frame's bytes are final (a DPDK
/// sink copies a reassembled datagram into its mbuf first).
inline void set_egress_macs(uint8_t* frame, uint32_t len, const Interface& egress) noexcept {
  if (len < 12) return;
  std::memset(frame, 0, 6);
  if (egress.has_mac) std::memcpy(frame + 6, egress.mac.data(), 6);
}

/// Replays o.capture through `pipeline` (built for `host`). Throws LoadError
/// (opening the capture or the sinks; a capture interface the host does not
/// have) and std::invalid_argument (options).
ReplayReport run_replay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o);

/// The end-of-run block, tcpreplay style, with verdicts by reason.
std::string format_replay_report(const ReplayReport& r);
/// One line of progress (no newline), for a terminal.
std::string format_replay_progress(const ReplayReport& r);

}  // namespace nfb
