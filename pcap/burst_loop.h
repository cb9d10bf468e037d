// The burst loop: frames from a source, through the pipeline, to a sink.
// One loop for every way frames come and go (a capture file, DPDK ports),
// in the way of BESS's ProcessBatch and VPP's graph nodes: a source hands
// out a burst, the loop runs it in stages over side arrays, the sink takes
// what the pipeline made of every frame.
//
//   while source.next_round()            a pass over a capture; one poll of
//                                        every rx queue and ring of an lcore
//     while n = source.take()            a burst of up to kFrameBurst frames
//       stage 1, per frame: frames.frame(i) -> parse_ingress ->
//                 frames.keep (steering: another lcore's frame leaves here,
//                 uncounted) -> counted (as count_received does), by
//                 ParseStatus ->
//                 invalid: sink.reject; else PacketIn, frames.admit
//       stage 2: Pipeline::process on the frames that parsed
//       stage 3, per frame (when sink.wants_frames()): forwarded ->
//                 sink.forward (which sends the frame from its egress
//                 interface's MAC: set_egress_macs); every other fate ->
//                 sink.finish
//       source.release(n); after_burst()
//     sink.flush()                       e.g. the tx buffers of every port
//
// Implementations: pcap/capture_port.h (a capture file, preloaded or
// streamed, looped; pcapng files as sinks) and pcap/dpdk_port.cpp (an
// lcore's rx queues and handoff ring; tx queues as its sink).
//
// The frames belong to the source. A source's slots [0, n) hold the burst it
// took; the sink gets each frame by its slot, from the source (sink methods
// take the source as their first argument), and a DPDK sink consumes the
// mbuf: transmits or frees it. The loop keeps for every frame that parsed
// its slot (FrameBurst::slot), so the three stages agree on which frame is
// which.
//
// Cost: the loop is a template over the source and the sink, so there is no
// call per frame that the compiler cannot inline; take, next_round, release
// and flush are called once per burst or round. The per-frame reads of a
// source go through a value (Source::Frames) made once per burst: what it
// holds stays in registers, where members of the source would be loaded
// again after every write to frame or key bytes (unsigned char may alias
// anything).
//
// Packet path: the stages do not allocate or throw. The sinks of capture
// files may, at the first frame to each interface (an interface block, a
// file to open: control plane, LoadError), and a capture source throws
// LoadError when the capture names an interface the host does not have;
// both leave the loop as exceptions, as before the loop existed.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "pcap/replay.h"

namespace nfb {

/// One frame as its source hands it to the loop.
struct SourceFrame {
  uint8_t* data = nullptr;  // the bytes the pipeline parses and may rewrite in place
  uint32_t len = 0;         // bytes at data (0 for one the parser cannot read in place, e.g. a
                            // chained mbuf: counted invalid)
  uint32_t wirelen = 0;     // bytes on the wire (counted)
  uint64_t ts_ns = 0;       // arrival time
  uint16_t iface = 0;       // ingress host interface
  LinkType link = LinkType::Ethernet;
};

/// The pipeline's side of one burst: its input and output, and for each the
/// source's slot of the frame.
struct FrameBurst {
  std::array<PacketIn, kFrameBurst> in;
  std::array<PacketOut, kFrameBurst> out;
  std::array<uint32_t, kFrameBurst> slot{};
  /// Ethernet frames that are not IPv4 (ARP, IPv6): counted invalid, but a
  /// bridge learns their senders (Pipeline::learn_stations).
  std::array<L2Frame, kFrameBurst> other{};
  size_t others = 0;
};

/// The frames of the burst a source just took, frame by frame (made by
/// Source::frames() once per burst).
///   frame(i)          slot i's frame, ready to parse (copied first where the
///                     source must; prefetches ahead where it can)
///   keep(i, f, key)   after a good parse: false when the frame is not this
///                     loop's to run (another lcore owns its flow; the source
///                     passed it on): it is then neither counted nor released
///   admit(i, f, p)    the frame will run: the source's part of p (checksum
///                     state) and what it must keep to give the frame back
///   ts_ns(i)          slot i's arrival time, as frame(i) gives it (without
///                     its work); the frames of a burst the source may pass
///                     on share their burst's time
template <class F>
concept SourceFrames = requires(F& f, const F& cf, size_t i, const SourceFrame& sf, const PacketKey& key,
                                PacketIn& p) {
  { f.frame(i) } noexcept -> std::same_as<SourceFrame>;
  { cf.ts_ns(i) } noexcept -> std::same_as<uint64_t>;
  { f.keep(i, sf, key) } noexcept -> std::same_as<bool>;
  { f.admit(i, sf, p) } noexcept;
};

/// Where frames come from.
///   next_round()      starts a round (a pass over a capture, one poll of
///                     every queue); false when there is none left: the
///                     source is exhausted or was told to stop
///   take()            the round's next burst into slots [0, n); 0 when the
///                     round is over
///   frames()          the burst's frames (SourceFrames)
///   release(n)        the burst is done: what the source lent comes back
///                     (bytes rewritten in place are put back)
template <class S>
concept FrameSource = requires(S& s, size_t n) {
  { s.next_round() } -> std::same_as<bool>;
  { s.take() } -> std::same_as<size_t>;
  { s.frames() } noexcept -> SourceFrames;
  { s.release(n) } noexcept;
};

/// Where frames go, each once, by its slot in `src`.
///   wants_frames()    false: stage 3 is skipped (nothing to write or send)
///   reject(src, i, status)      a frame that did not parse (the sink reads
///                               it from the source: the loop's copy of
///                               the frame stays in registers)
///   forward(src, i, p, egress)  a forwarded frame, to leave from interface
///                               `egress`, with that interface's MAC as its
///                               source (set_egress_macs)
///   finish(src, i, p, out)      every other frame: delivered to the host,
///                               dropped (by fate), or held by the pipeline
///   flush()           the end of a round: what is buffered goes out
template <class K, class S>
concept FrameSink = requires(K& k, const K& ck, S& src, size_t i, ParseStatus st, PacketIn& p, const PacketOut& out,
                             uint16_t egress) {
  { ck.wants_frames() } noexcept -> std::same_as<bool>;
  { k.reject(src, i, st) };
  { k.forward(src, i, p, egress) };
  { k.finish(src, i, p, out) };
  { k.flush() } noexcept;
};

/// Stage 1: slots [0, n) of the burst `frames` describes into b.in[0, m);
/// returns m, the frames that parsed and are this loop's to run. Counts the
/// frames it keeps into r: packets, bytes, parse counters, the arrival times
/// of the first frame counted and of the latest burst's last frame (a frame
/// a source passes on arrived with its burst). What it counts stays in
/// registers until the end of the burst (r's fields would be stored again
/// after every write to a frame or a key); the frames a source passes on
/// (keep() false, never for a capture) are the only ones not counted.
template <class Source, class Sink, class Frames>
size_t take_in(Source& source, Sink& sink, Frames frames, size_t n, FrameBurst& b, ReplayReport& r) {
  size_t m = 0;
  size_t passed_on = 0;
  size_t first_counted = 0;  // slot of the first frame counted
  uint64_t bytes = 0;
  uint64_t l1_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const SourceFrame f = frames.frame(i);
    PacketIn& p = b.in[m];
    const ParseStatus st = parse_ingress(f.data, f.len, f.link, f.iface, p.key);
    if (st == ParseStatus::Ok && !frames.keep(i, f, p.key)) {
      if (first_counted == i) ++first_counted;
      ++passed_on;
      continue;
    }
    // What count_received (replay.h) counts, in registers.
    bytes += f.wirelen;
    l1_bytes += l1_bytes_of(f.wirelen);
    r.parse.add(st);
    if (st != ParseStatus::Ok) {
      if ((st == ParseStatus::NotIp || st == ParseStatus::Ipv6NotHandled) && f.link == LinkType::Ethernet)
        b.other[b.others++] = L2Frame{f.data, f.len, f.iface};
      sink.reject(source, i, st);
      continue;
    }
    p.frame = f.data;
    p.len = f.len;
    p.in_iface = f.iface;
    p.ethernet = f.link == LinkType::Ethernet;
    p.ts_ns = f.ts_ns;
    frames.admit(i, f, p);
    b.slot[m] = static_cast<uint32_t>(i);
    ++m;
  }
  if (passed_on == n) return m;
  if (r.packets == 0) r.first_ts_ns = frames.ts_ns(first_counted);
  r.last_ts_ns = frames.ts_ns(n - 1);
  r.packets += n - passed_on;
  r.bytes += bytes;
  r.l1_bytes += l1_bytes;
  return m;
}

/// Stage 3: every frame that ran, to the sink by its fate.
template <class Source, class Sink>
void hand_out(Source& source, Sink& sink, FrameBurst& b, size_t m) {
  for (size_t j = 0; j < m; ++j) {
    PacketIn& p = b.in[j];
    const PacketOut& res = b.out[j];
    if ((res.fate == Fate::Forwarded || res.fate == Fate::Bridged) && p.frame != nullptr) {
      sink.forward(source, b.slot[j], p, res.out_iface);
    } else {
      sink.finish(source, b.slot[j], p, res);
    }
  }
}

/// Runs `source` through `pipeline` into `sink` until the source has no
/// round left; counts what it receives into `r` (packets, bytes, parse
/// counters, first and last timestamps). `after_burst()` is called after
/// every burst.
template <class Source, class Sink, class AfterBurst>
  requires FrameSource<Source> && FrameSink<Sink, Source>
void run_burst_loop(Source& source, Sink& sink, Pipeline& pipeline, ReplayReport& r, AfterBurst&& after_burst) {
  FrameBurst b;
  while (source.next_round()) {
    for (size_t n; (n = source.take()) != 0;) {
      b.others = 0;
      const size_t m = take_in(source, sink, source.frames(), n, b, r);
      if (b.others != 0) pipeline.learn_stations(std::span(b.other.data(), b.others));
      pipeline.process(std::span(b.in.data(), m), std::span(b.out.data(), m));
      if (sink.wants_frames()) hand_out(source, sink, b, m);
      source.release(n);
      after_burst();
    }
    sink.flush();
  }
}

}  // namespace nfb
