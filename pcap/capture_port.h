// A capture file as the burst loop's port (pcap/burst_loop.h), the way
// DPDK's net_pcap makes a file a port: its frames are the source
// (CaptureSource), pcapng files the sinks (CaptureSinks). run_replay
// (pcap/replay.h) puts them together; replay.h says what a replay does.
//
// CaptureSource: one round per pass over the capture (--loop N: N rounds,
// pass k with every timestamp shifted by k x (the capture's span + 1 s)).
// A preloaded capture is rewritten in place by NAT: the bytes the pipeline
// may rewrite are saved before the burst runs and put back at release()
// when they will be read again (a later pass, the dropped sink); a streamed
// frame is copied first (and kept as received for the dropped sink). A
// malformed record ends the source: ReplayReport::error says what and
// where, the frames before it are processed.
//
// CaptureSinks: emitted_file, dropped_file, out_dir of ReplayOptions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "netfilter/pipeline.h"
#include "pcap/burst_loop.h"
#include "pcap/capture_reader.h"
#include "pcap/replay.h"

namespace nfb {

class CaptureSource {
 public:
  /// The longest frame the pipeline gets (longer ones are cut).
  static constexpr uint32_t kMaxFrame = 65535 + 64;

  /// Frames of `reader` (opened, positioned at its first frame), arriving on
  /// the host interface named like their capture interface (o.in_iface when
  /// it has no name). keep_received: a sink wants dropped frames as they were
  /// received. Counts loops and the error into `r`. Throws LoadError (an
  /// interface the host does not have).
  CaptureSource(CaptureReader& reader, const HostModel& host, const ReplayOptions& o, bool keep_received,
                ReplayReport& r);

  // FrameSource (burst_loop.h).
  bool next_round() noexcept;
  /// Throws LoadError when an interface declared later in the capture is not
  /// the host's; a malformed record ends the round and the source instead.
  size_t take();
  class Frames;
  Frames frames() noexcept;
  void release(size_t n) noexcept {
    if (!restore_) return;
    for (size_t i = 0; i < n; ++i) {
      if (head_[i] != 0) copy_head(bytes_of_[i], saved_.data() + i * kRewritable, head_[i]);
    }
  }

  // What the sinks read about slot i of the current burst.
  const CaptureFrame& captured(size_t i) const noexcept { return frames_[i]; }
  LinkType link(size_t i) const noexcept { return links_[frames_[i].iface]; }
  uint16_t ingress(size_t i) const noexcept { return ingress_[frames_[i].iface]; }
  /// The frame as the pipeline got it (SourceFrame, without the copy).
  std::span<const uint8_t> bytes(size_t i) const noexcept {
    return {bytes_of_[i], frames_[i].caplen < kMaxFrame ? frames_[i].caplen : kMaxFrame};
  }
  uint64_t ts_ns(size_t i) const noexcept { return frames_[i].ts_ns + shift_; }
  /// The frame's bytes as it was received (a preloaded frame's rewritten
  /// bytes put back first).
  const uint8_t* as_received(size_t i) noexcept {
    if (!in_place_) return originals_.data() + i * kMaxFrame;
    if (head_[i] != 0) copy_head(bytes_of_[i], saved_.data() + i * kRewritable, head_[i]);
    return bytes_of_[i];
  }

 private:
  // The bytes of a frame the pipeline may rewrite: link header (MACs), IP
  // header (TTL, addresses, checksum), the L4 header's ports and checksum
  // (up to l4_off + 18); an ICMP error's quoted IP and L4 headers too. 14 +
  // 8 (two VLAN tags) or 20 (SLL2) + 60 + 8 + 60 + 8 < kRewritable. A packet
  // whose L4 checksum ends within kShortHead bytes (any with an option-less
  // IP header) and that is no ICMP error needs only those saved.
  static constexpr uint32_t kRewritable = 192;
  static constexpr uint32_t kShortHead = 64;
  static_assert(kRewritable <= CaptureReader::kSlack,
                "a fixed-size copy of a preloaded frame's head stays in the buffer");

  static uint32_t head_of(const PacketKey& key) noexcept {
    return key.l4_off + 18U <= kShortHead && !key.has(key_flag::kInner) ? kShortHead : kRewritable;
  }
  // Copies a frame's head (kShortHead or kRewritable bytes) in 32-byte moves.
  static void copy_head(uint8_t* to, const uint8_t* from, uint32_t n) noexcept {
    std::memcpy(to, from, 32);
    std::memcpy(to + 32, from + 32, 32);
    for (uint32_t i = kShortHead; i < n; i += 32) std::memcpy(to + i, from + i, 32);
  }
  // --rx-csum trust: whether a frame carries a wrong L4 checksum that
  // conntrack would have checked.
  static bool l4_checksum_wrong(const uint8_t* data, uint32_t len, LinkType link) noexcept;

  void learn_interfaces();
  void find_wrong_checksums();

  CaptureReader& reader_;
  const HostModel& host_;
  const ReplayOptions& o_;
  ReplayReport& r_;
  const bool in_place_;  // preloaded frames are rewritten where they lie; streamed ones are copied
  const bool keep_received_;

  // Ingress interface and link type of every capture interface: its pcapng
  // name, or o.in_iface for frames whose interface has no name (classic pcap).
  std::vector<uint16_t> ingress_;
  std::vector<LinkType> links_;

  std::array<CaptureFrame, kFrameBurst> frames_;
  std::array<uint8_t*, kFrameBurst> bytes_of_{};  // slot -> its bytes as the pipeline gets them
  std::array<uint32_t, kFrameBurst> head_{};      // slot -> bytes saved from its head (0: none)
  std::vector<uint8_t> buffers_;                  // streamed frames, copied to be rewritten
  std::vector<uint8_t> saved_;                    // preloaded frames' heads, put back at release()
  std::vector<uint8_t> originals_;                // streamed frames as received, for the dropped sink
  std::vector<uint8_t> wrong_;                    // --rx-csum trust, preloaded: frame -> L4 checksum wrong

  // The round (pass) under way.
  uint32_t round_ = 0;                 // rounds started
  bool restore_ = false;               // this pass saves and puts back rewritten heads
  uint64_t shift_ = 0;                 // this pass's timestamp shift
  uint64_t number_ = 0;                // this pass's next frame
  uint64_t pass_first_ts_ = 0;         // this pass's first and last capture timestamps
  uint64_t pass_last_ts_ = 0;
  bool any_ = false;                   // this pass has read a frame
  const uint8_t* burst_wrong_ = nullptr;  // wrong_ of the burst's first frame (null: not precomputed)
};

/// The burst's frames with the source's members as locals: the loop writes
/// frame and key bytes, which could alias any member as far as the compiler
/// knows, so members would be loaded again after every write (6
/// instructions a packet, callgrind).
class CaptureSource::Frames {
 public:
  SourceFrame frame(size_t i) noexcept {
    const CaptureFrame& f = frames_[i];
    // The next burst's frame i: its headers come from memory while this
    // burst runs (one prefetch a frame keeps the misses in flight spread).
    reader_->prefetch_ahead(i + kFrameBurst);
    const uint32_t len = f.caplen < kMaxFrame ? f.caplen : kMaxFrame;
    uint8_t* bytes = nullptr;
    head_[i] = 0;
    if (in_place_) {
      bytes = reader_->mutable_frame(f);
    } else {
      bytes = source_->buffers_.data() + i * kMaxFrame;
      std::memcpy(bytes, f.data, len);
      if (!source_->originals_.empty()) std::memcpy(source_->originals_.data() + i * kMaxFrame, f.data, len);
    }
    bytes_of_[i] = bytes;
    return SourceFrame{bytes, len, f.wirelen, f.ts_ns + shift_, ingress_[f.iface], links_[f.iface]};
  }
  uint64_t ts_ns(size_t i) const noexcept { return frames_[i].ts_ns + shift_; }
  bool keep(size_t, const SourceFrame&, const PacketKey&) noexcept { return true; }
  void admit(size_t i, const SourceFrame& f, PacketIn& p) noexcept {
    if (restore_) {
      // Whole kShortHead or kRewritable bytes (the reader's slack makes it
      // safe): fixed-size copies, and what lies beyond a short frame comes
      // back unchanged.
      head_[i] = head_of(p.key);
      copy_head(source_->saved_.data() + i * kRewritable, f.data, head_[i]);
    }
    p.rx_csum = RxCsum::Unknown;
    p.csum_wrong = wrong_ != nullptr ? wrong_[i] != 0 : check_wrong_ && l4_checksum_wrong(frames_[i].data, f.len, f.link);
  }

 private:
  friend class CaptureSource;
  // The buffers a frame is copied to are reached through source_, not held
  // here: pointers held here would be stepped every frame (the compiler
  // turns base + i x size into a running pointer), whatever path it takes.
  CaptureSource* source_;
  CaptureReader* reader_;
  const CaptureFrame* frames_;
  uint8_t** bytes_of_;
  uint32_t* head_;
  const uint8_t* wrong_;
  const uint16_t* ingress_;
  const LinkType* links_;
  uint64_t shift_;
  bool in_place_;
  bool restore_;
  bool check_wrong_;
};

inline CaptureSource::Frames CaptureSource::frames() noexcept {
  Frames f;
  f.source_ = this;
  f.reader_ = &reader_;
  f.frames_ = frames_.data();
  f.bytes_of_ = bytes_of_.data();
  f.head_ = head_.data();
  f.wrong_ = burst_wrong_;
  f.ingress_ = ingress_.data();
  f.links_ = links_.data();
  f.shift_ = shift_;
  f.in_place_ = in_place_;
  f.restore_ = restore_;
  f.check_wrong_ = o_.rx_csum_trust;
  return f;
}

class InterfaceSink;

/// The pcapng sinks of a replay (ReplayOptions: emitted_file, dropped_file,
/// out_dir). Writes neither throw nor allocate per frame; the first frame to
/// an interface declares its block and, with out_dir, opens its file
/// (LoadError if it cannot); I/O errors are thrown by close().
class CaptureSinks {
 public:
  /// Creates out_dir and opens the files. Throws LoadError.
  CaptureSinks(const HostModel& host, const ReplayOptions& o);
  ~CaptureSinks();
  CaptureSinks(const CaptureSinks&) = delete;
  CaptureSinks& operator=(const CaptureSinks&) = delete;

  /// A sink wants dropped frames as they were received.
  bool keeps_received() const noexcept { return dropped_ != nullptr; }

  // FrameSink (burst_loop.h).
  bool wants_frames() const noexcept { return any_; }
  void reject(CaptureSource& src, size_t i, ParseStatus st);
  void forward(CaptureSource& src, size_t i, PacketIn& p, uint16_t egress);
  void finish(CaptureSource& src, size_t i, const PacketIn& p, const PacketOut& out);
  void flush() noexcept {}

  /// Closes the files; sets r.emitted_written and r.dropped_written. Throws
  /// LoadError (an I/O error on the way).
  void close(ReplayReport& r);

 private:
  const HostModel& host_;
  const ReplayOptions& o_;
  std::unique_ptr<InterfaceSink> emitted_;
  std::unique_ptr<InterfaceSink> dropped_;
  std::vector<std::unique_ptr<InterfaceSink>> per_iface_;
  bool mac_rewrite_ = false;  // a sink writes forwarded frames
  bool any_ = false;
};

}  // namespace nfb
