#include "pcap/replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include "base/load_error.h"
#include "packet/checksum.h"
#include "pcap/capture_writer.h"

namespace nfb {
namespace {

constexpr size_t kBurst = kFrameBurst;
constexpr size_t kMaxFrame = 65535 + 64;
constexpr uint64_t kLoopGapNs = 1'000'000'000ULL;

/// A pcapng sink with one interface block per (name, link type), declared at
/// its first frame (control plane: the first frame of each pair allocates).
class InterfaceSink {
 public:
  explicit InterfaceSink(const std::string& path) : writer_(path) {}
  void write(const std::string& name, uint32_t link, uint64_t ts, std::span<const uint8_t> frame, uint32_t wirelen,
             std::string_view comment = {}) {
    uint32_t idx = UINT32_MAX;
    for (const auto& [n, l, i] : ifaces_) {
      if (l == link && n == name) idx = i;
    }
    if (idx == UINT32_MAX) {
      idx = writer_.add_interface(name, link);
      ifaces_.emplace_back(name, link, idx);
    }
    writer_.write(idx, ts, frame, wirelen, comment);
  }
  uint64_t frames() const noexcept { return writer_.frames(); }
  void close() { writer_.close(); }

 private:
  PcapngWriter writer_;
  std::vector<std::tuple<std::string, uint32_t, uint32_t>> ifaces_;
};

}  // namespace

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

namespace {

// The bytes of a frame the pipeline may rewrite: link header (MACs), IP
// header (TTL, addresses, checksum), the L4 header's ports and checksum (up
// to l4_off + 18); an ICMP error's quoted IP and L4 headers too. 14 + 8 (two
// VLAN tags) or 20 (SLL2) + 60 + 8 + 60 + 8 < kRewritable. A packet whose
// L4 checksum ends within kShortHead bytes (any with an option-less IP
// header) and that is no ICMP error needs only those saved.
constexpr uint32_t kRewritable = 192;
constexpr uint32_t kShortHead = 64;
static_assert(kRewritable <= CaptureReader::kSlack, "a fixed-size copy of a preloaded frame's head stays in the buffer");

uint32_t head_of(const PacketKey& key) noexcept {
  return key.l4_off + 18U <= kShortHead && !key.has(key_flag::kInner) ? kShortHead : kRewritable;
}

// Copies a frame's head (kShortHead or kRewritable bytes) in 32-byte moves.
inline void copy_head(uint8_t* to, const uint8_t* from, uint32_t n) noexcept {
  std::memcpy(to, from, 32);
  std::memcpy(to + 32, from + 32, 32);
  for (uint32_t i = kShortHead; i < n; i += 32) std::memcpy(to + i, from + i, 32);
}

// --rx-csum trust: which frames carry a wrong L4 checksum that conntrack
// would have checked (so the report can count them without the timed loop
// checking anything).
bool l4_checksum_wrong(const uint8_t* data, uint32_t len, LinkType link) noexcept {
  PacketKey key;
  if (parse_frame(data, len, link, 0, key) != ParseStatus::Ok || key.is_fragment()) return false;
  return !l4_checksum_ok(data, len, key);
}


// One replay, in stages: take a burst of frames from the capture (parse,
// count, save the heads a later read needs), run it through the pipeline,
// write the frames to the sinks, put the saved heads back.
class CaptureReplay {
 public:
  CaptureReplay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o);
  ReplayReport run();

 private:
  void open_sinks();
  void learn_interfaces();
  void find_wrong_checksums();
  // Stage 1: frames[0, n) into in[0, m); returns m (the frames that parsed).
  size_t take_burst(size_t n, bool restore) noexcept;
  // Stage 3: the burst's frames to the sinks.
  void write_burst(size_t m);
  void write_dropped(const CaptureFrame& f, const uint8_t* bytes, uint32_t len, uint16_t iface, uint64_t ts,
                     std::string_view why);
  void restore_heads(size_t n) noexcept;
  void close_sinks();

  Pipeline& pipeline_;
  const HostModel& host_;
  const ReplayOptions& o_;
  CaptureReader reader_;
  const bool in_place_;  // preloaded frames are rewritten where they lie; streamed ones are copied

  std::unique_ptr<InterfaceSink> emitted_sink_;
  std::unique_ptr<InterfaceSink> dropped_sink_;
  std::vector<std::unique_ptr<InterfaceSink>> per_iface_;
  bool mac_rewrite_ = false;
  bool sinks_ = false;

  // Ingress interface and link type of every capture interface: its pcapng
  // name, or o.in_iface for frames whose interface has no name (classic pcap).
  std::vector<uint16_t> ingress_;
  std::vector<LinkType> links_;

  std::array<CaptureFrame, kBurst> frames_;
  std::array<PacketIn, kBurst> in_;
  std::array<PacketOut, kBurst> out_;
  std::array<uint8_t*, kBurst> bytes_of_{};  // frames_ slot -> its bytes as the pipeline gets them
  std::array<uint32_t, kBurst> head_{};      // frames_ slot -> bytes saved from its head (0: none)
  std::array<uint32_t, kBurst> frame_of_{};  // in_ slot -> frames_ slot
  std::vector<uint8_t> buffers_;             // streamed frames, copied to be rewritten
  std::vector<uint8_t> saved_;               // preloaded frames' heads, put back after the burst
  std::vector<uint8_t> originals_;           // streamed frames as received, for the dropped sink
  std::vector<uint8_t> wrong_;               // --rx-csum trust, preloaded: frame -> L4 checksum wrong

  ReplayReport r_;
  uint64_t shift_ = 0;           // this loop's timestamp shift
  uint64_t number_ = 0;          // this loop's next frame
  const uint8_t* wrong_now_ = nullptr;
};

CaptureReplay::CaptureReplay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o)
    : pipeline_(pipeline), host_(host), o_(o), reader_(o.capture, o.mode), in_place_(!reader_.streaming()) {
  open_sinks();
  learn_interfaces();
  if (!in_place_) buffers_.resize(kBurst * kMaxFrame);
  if (in_place_ && (o_.loops > 1 || dropped_sink_ != nullptr)) saved_.resize(kBurst * kRewritable);
  if (!in_place_ && dropped_sink_ != nullptr) originals_.resize(kBurst * kMaxFrame);
  if (o_.rx_csum_trust && in_place_) find_wrong_checksums();
}

void CaptureReplay::open_sinks() {
  if (!o_.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o_.out_dir, ec);
    if (ec) throw LoadError(SourceLocation{o_.out_dir}, "cannot create the output directory: " + ec.message());
  }
  if (!o_.emitted_file.empty()) emitted_sink_ = std::make_unique<InterfaceSink>(o_.emitted_file);
  if (!o_.dropped_file.empty()) dropped_sink_ = std::make_unique<InterfaceSink>(o_.dropped_file);
  per_iface_.resize(host_.iface_count());
  mac_rewrite_ = emitted_sink_ != nullptr || !o_.out_dir.empty();
  sinks_ = mac_rewrite_ || dropped_sink_ != nullptr;
}

void CaptureReplay::learn_interfaces() {
  while (ingress_.size() < reader_.interfaces().size()) {
    const CaptureInterface& ci = reader_.interfaces()[ingress_.size()];
    const std::string& name = ci.name.empty() ? o_.in_iface : ci.name;
    const auto id = host_.iface_id(name);
    if (!id) {
      throw LoadError(SourceLocation{o_.capture}, fmt::format("capture interface {} is \"{}\", which the host does "
                                                              "not have",
                                                              ingress_.size(), name));
    }
    ingress_.push_back(*id);
    links_.push_back(static_cast<LinkType>(ci.link_type));
  }
}

// --rx-csum trust on a preloaded capture: which frames are wrong, found
// before the clock starts.
void CaptureReplay::find_wrong_checksums() {
  wrong_.reserve(reader_.frame_count());
  for (size_t n = 0; (n = reader_.next_burst(frames_)) != 0;) {
    learn_interfaces();
    for (size_t i = 0; i < n; ++i) {
      const CaptureFrame& f = frames_[i];
      wrong_.push_back(l4_checksum_wrong(f.data, std::min<uint32_t>(f.caplen, kMaxFrame), links_[f.iface]) ? 1 : 0);
    }
  }
  reader_.rewind();
}

size_t CaptureReplay::take_burst(size_t n, bool restore) noexcept {
  size_t m = 0;
  // The members the loop reads, as locals: the frame bytes it writes could
  // alias any member as far as the compiler knows, so members would be
  // loaded again after every write (6 instructions a packet, callgrind).
  uint64_t wire_bytes = 0;  // the burst's, added to r_ once
  uint64_t l1_bytes = 0;
  const bool in_place = in_place_;
  const uint64_t shift = shift_;
  const uint8_t* const wrong = wrong_now_ != nullptr ? wrong_now_ + number_ : nullptr;
  const bool check_wrong = o_.rx_csum_trust;
  const uint16_t* const ingress = ingress_.data();
  const LinkType* const links = links_.data();
  for (size_t i = 0; i < n; ++i) {
    const CaptureFrame& f = frames_[i];
    // The next burst's frame i: its headers come from memory while this
    // burst runs (one prefetch a frame keeps the misses in flight spread).
    reader_.prefetch_ahead(i + kBurst);
    const uint32_t len = f.caplen < kMaxFrame ? f.caplen : static_cast<uint32_t>(kMaxFrame);
    uint8_t* bytes = nullptr;
    head_[i] = 0;
    if (in_place) {
      bytes = reader_.mutable_frame(f);
    } else {
      bytes = buffers_.data() + i * kMaxFrame;
      std::memcpy(bytes, f.data, len);
      if (!originals_.empty()) std::memcpy(originals_.data() + i * kMaxFrame, f.data, len);
    }
    bytes_of_[i] = bytes;
    wire_bytes += f.wirelen;
    l1_bytes += l1_bytes_of(f.wirelen);
    const uint16_t iface = ingress[f.iface];
    const LinkType link = links[f.iface];
    PacketIn& p = in_[m];
    const ParseStatus st = parse_ingress(bytes, len, link, iface, p.key);
    r_.parse.add(st);
    if (st != ParseStatus::Ok) {
      if (dropped_sink_) {
        char why[64];
        const auto w = fmt::format_to_n(why, sizeof why, "invalid: {}", parse_status_name(st));
        write_dropped(f, bytes, len, iface, f.ts_ns + shift, std::string_view(why, std::min(w.size, sizeof why)));
      }
      continue;
    }
    if (restore) {
      // Whole kShortHead or kRewritable bytes (the reader's slack makes it
      // safe): fixed-size copies, and what lies beyond a short frame comes
      // back unchanged.
      head_[i] = head_of(p.key);
      copy_head(saved_.data() + i * kRewritable, bytes, head_[i]);
    }
    p.frame = bytes;
    p.len = len;
    p.in_iface = iface;
    p.ts_ns = f.ts_ns + shift;
    p.rx_csum = RxCsum::Unknown;
    p.csum_wrong = wrong != nullptr ? wrong[i] != 0 : check_wrong && l4_checksum_wrong(f.data, len, link);
    frame_of_[m] = static_cast<uint32_t>(i);
    ++m;
  }
  number_ += n;
  r_.packets += n;
  r_.bytes += wire_bytes;
  r_.l1_bytes += l1_bytes;
  return m;
}

void CaptureReplay::write_dropped(const CaptureFrame& f, const uint8_t* bytes, uint32_t len, uint16_t iface,
                                  uint64_t ts, std::string_view why) {
  const Interface& ifc = host_.iface(iface);
  dropped_sink_->write(ifc.name, static_cast<uint32_t>(links_[f.iface]), ts, std::span<const uint8_t>(bytes, len),
                       f.wirelen, why);
}

void CaptureReplay::write_burst(size_t m) {
  for (size_t j = 0; j < m; ++j) {
    const size_t i = frame_of_[j];
    const CaptureFrame& f = frames_[i];
    const PacketIn& p = in_[j];
    const PacketOut& res = out_[j];
    const LinkType link = links_[f.iface];
    const auto link_no = static_cast<uint32_t>(link);
    const uint32_t grown = f.wirelen > f.caplen ? f.wirelen - f.caplen : 0;
    const std::span<const uint8_t> bytes(p.frame, p.frame != nullptr ? p.len : 0);
    if (res.fate == Fate::Forwarded && p.frame != nullptr) {
      if (!mac_rewrite_) continue;
      const Interface& ifc = host_.iface(res.out_iface);
      if (link == LinkType::Ethernet) set_egress_macs(p.frame, p.len, ifc);
      if (emitted_sink_) emitted_sink_->write(ifc.name, link_no, p.ts_ns, bytes, p.len + grown);
      if (!o_.out_dir.empty()) {
        auto& sink = per_iface_[res.out_iface];
        if (!sink) sink = std::make_unique<InterfaceSink>(o_.out_dir + "/" + ifc.name + ".pcapng");
        sink->write(ifc.name, link_no, p.ts_ns, bytes, p.len + grown);
      }
    } else if (res.fate == Fate::Delivered && emitted_sink_ && p.frame != nullptr) {
      emitted_sink_->write("local", link_no, p.ts_ns, bytes, p.len + grown);
    } else if (!fate_emitted(res.fate) && dropped_sink_) {
      // The frame as it was received.
      const uint32_t len = f.caplen < kMaxFrame ? f.caplen : static_cast<uint32_t>(kMaxFrame);
      const uint8_t* as_received = in_place_ ? bytes_of_[i] : originals_.data() + i * kMaxFrame;
      if (head_[i] != 0) copy_head(bytes_of_[i], saved_.data() + i * kRewritable, head_[i]);
      char why[96];
      const auto w = res.defrag_drop != DefragDrop::None
                         ? fmt::format_to_n(why, sizeof why, "{}: {}", fate_name(res.fate),
                                            defrag_drop_name(res.defrag_drop))
                         : fmt::format_to_n(why, sizeof why, "{}", fate_name(res.fate));
      write_dropped(f, as_received, len, ingress_[f.iface], p.ts_ns,
                    std::string_view(why, std::min(w.size, sizeof why)));
    }
  }
}

void CaptureReplay::restore_heads(size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    if (head_[i] != 0) copy_head(bytes_of_[i], saved_.data() + i * kRewritable, head_[i]);
  }
}

ReplayReport CaptureReplay::run() {
  const PipelineMark before = mark_pipeline(pipeline_);
  const auto start = std::chrono::steady_clock::now();
  auto next_progress = start + std::chrono::milliseconds(500);
  uint64_t span_ns = 0;
  const auto refresh = [&] {
    fill_verdicts(r_, pipeline_, before);
    r_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  for (uint32_t loop = 0; loop < o_.loops; ++loop) {
    if (loop > 0) {
      reader_.rewind();
      shift_ += span_ns + kLoopGapNs;
    }
    // The bytes rewritten in place are put back when they are read again: by
    // a later loop, or by the dropped sink.
    const bool restore = in_place_ && (loop + 1 < o_.loops || dropped_sink_ != nullptr);
    wrong_now_ = wrong_.empty() ? nullptr : wrong_.data();
    number_ = 0;
    uint64_t loop_first = 0;
    uint64_t loop_last = 0;
    bool any = false;
    for (;;) {
      size_t n = 0;
      try {
        n = reader_.next_burst(frames_);
      } catch (const LoadError& e) {
        // A malformed record: what came before it is processed and counted;
        // the replay stops here and says where.
        r_.error = e.what();
        break;
      }
      if (n == 0) break;
      if (!any) loop_first = frames_[0].ts_ns;
      any = true;
      loop_last = frames_[n - 1].ts_ns;
      if (r_.packets == 0) r_.first_ts_ns = frames_[0].ts_ns + shift_;
      if (ingress_.size() < reader_.interfaces().size()) learn_interfaces();
      const size_t m = take_burst(n, restore);
      r_.last_ts_ns = frames_[n - 1].ts_ns + shift_;
      pipeline_.process(std::span(in_.data(), m), std::span(out_.data(), m));
      if (sinks_) write_burst(m);
      if (restore) restore_heads(n);
      if (o_.after_burst) o_.after_burst();
      if (o_.progress && (r_.packets & 1023U) < kBurst) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= next_progress) {
          next_progress = now + std::chrono::milliseconds(500);
          refresh();
          o_.progress(r_);
        }
      }
    }
    span_ns = any ? loop_last - loop_first : 0;
    if (!r_.error.empty()) break;
    ++r_.loops;
  }
  refresh();
  close_sinks();
  return r_;
}

void CaptureReplay::close_sinks() {
  if (emitted_sink_) {
    r_.emitted_written = emitted_sink_->frames();
    emitted_sink_->close();
  }
  if (dropped_sink_) {
    r_.dropped_written = dropped_sink_->frames();
    dropped_sink_->close();
  }
  for (auto& sink : per_iface_) {
    if (sink) sink->close();
  }
}

}  // namespace

ReplayReport run_replay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o) {
  if (o.loops == 0) throw std::invalid_argument("replay: --loop must be at least 1");
  return CaptureReplay(pipeline, host, o).run();
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
