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

constexpr size_t kBurst = 32;
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

uint64_t l1_bytes_of(uint32_t wirelen) noexcept {
  // Ethernet on the wire: the frame padded to 60 bytes, FCS 4, preamble and
  // start delimiter 8, inter-frame gap 12 (captures hold no FCS).
  return uint64_t{std::max<uint32_t>(wirelen, 60)} + 24;
}

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

}  // namespace

ReplayReport run_replay(Pipeline& pipeline, const HostModel& host, const ReplayOptions& o) {
  if (o.loops == 0) throw std::invalid_argument("replay: --loop must be at least 1");
  CaptureReader reader(o.capture, o.mode);
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    if (ec) throw LoadError(SourceLocation{o.out_dir}, "cannot create the output directory: " + ec.message());
  }
  std::unique_ptr<InterfaceSink> emitted_sink;
  std::unique_ptr<InterfaceSink> dropped_sink;
  if (!o.emitted_file.empty()) emitted_sink = std::make_unique<InterfaceSink>(o.emitted_file);
  if (!o.dropped_file.empty()) dropped_sink = std::make_unique<InterfaceSink>(o.dropped_file);
  std::vector<std::unique_ptr<InterfaceSink>> per_iface(host.iface_count());
  const bool mac_rewrite = emitted_sink != nullptr || !o.out_dir.empty();
  const bool sinks = mac_rewrite || dropped_sink != nullptr;

  // Ingress interface and link type of every capture interface: its pcapng
  // name, or o.in_iface for frames whose interface has no name (classic pcap).
  std::vector<uint16_t> ingress;
  std::vector<LinkType> links;
  const auto learn_interfaces = [&] {
    while (ingress.size() < reader.interfaces().size()) {
      const CaptureInterface& ci = reader.interfaces()[ingress.size()];
      const std::string& name = ci.name.empty() ? o.in_iface : ci.name;
      const auto id = host.iface_id(name);
      if (!id) {
        throw LoadError(SourceLocation{o.capture},
                        fmt::format("capture interface {} is \"{}\", which the host does not have", ingress.size(),
                                    name));
      }
      ingress.push_back(*id);
      links.push_back(static_cast<LinkType>(ci.link_type));
    }
  };
  learn_interfaces();

  // Preloaded frames are rewritten where they lie; the bytes the pipeline
  // may change are put back after each burst when they are needed again (a
  // later loop, the dropped sink). Streamed frames are copied (the mapping
  // is read-only).
  const bool in_place = !reader.streaming();
  std::array<CaptureFrame, kBurst> frames;
  std::array<PacketIn, kBurst> in;
  std::array<PacketOut, kBurst> out;
  std::array<uint8_t*, kBurst> bytes_of{};  // frames[] slot -> its bytes as the pipeline gets them
  std::array<uint32_t, kBurst> head{};      // frames[] slot -> bytes saved from its head (0: none)
  std::array<uint32_t, kBurst> frame_of{};  // in[] slot -> frames[] slot
  std::vector<uint8_t> buffers(in_place ? 0 : kBurst * kMaxFrame);
  std::vector<uint8_t> saved(in_place && (o.loops > 1 || dropped_sink != nullptr) ? kBurst * kRewritable : 0);
  // Streamed frames as received, for the dropped sink (the copies get rewritten).
  std::vector<uint8_t> originals(!in_place && dropped_sink ? kBurst * kMaxFrame : 0);

  // --rx-csum trust on a preloaded capture: which frames are wrong, found
  // before the clock starts.
  std::vector<uint8_t> wrong;
  if (o.rx_csum_trust && in_place) {
    wrong.reserve(reader.frame_count());
    for (size_t n = 0; (n = reader.next_burst(frames)) != 0;) {
      learn_interfaces();
      for (size_t i = 0; i < n; ++i) {
        const CaptureFrame& f = frames[i];
        wrong.push_back(l4_checksum_wrong(f.data, std::min<uint32_t>(f.caplen, kMaxFrame), links[f.iface]) ? 1 : 0);
      }
    }
    reader.rewind();
  }

  ReplayReport r;
  const PipelineMark before = mark_pipeline(pipeline);
  const auto start = std::chrono::steady_clock::now();
  auto next_progress = start + std::chrono::milliseconds(500);
  uint64_t span_ns = 0;
  uint64_t shift = 0;
  const auto refresh = [&] {
    fill_verdicts(r, pipeline, before);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  for (uint32_t loop = 0; loop < o.loops; ++loop) {
    if (loop > 0) {
      reader.rewind();
      shift += span_ns + kLoopGapNs;
    }
    // The bytes rewritten in place are put back when they are read again: by
    // a later loop, or by the dropped sink.
    const bool restore = in_place && (loop + 1 < o.loops || dropped_sink != nullptr);
    const uint8_t* wrong_now = wrong.empty() ? nullptr : wrong.data();
    uint64_t loop_first = 0;
    uint64_t loop_last = 0;
    uint64_t number = 0;  // of the next frame in this loop
    bool any = false;
    for (;;) {
      size_t n = 0;
      try {
        n = reader.next_burst(frames);
      } catch (const LoadError& e) {
        // A malformed record: what came before it is processed and counted;
        // the replay stops here and says where.
        r.error = e.what();
        break;
      }
      if (n == 0) break;
      if (!any) loop_first = frames[0].ts_ns;
      any = true;
      loop_last = frames[n - 1].ts_ns;
      if (r.packets == 0) r.first_ts_ns = frames[0].ts_ns + shift;
      r.packets += n;
      if (ingress.size() < reader.interfaces().size()) learn_interfaces();
      size_t m = 0;
      for (size_t i = 0; i < n; ++i) {
        const CaptureFrame& f = frames[i];
        // The next burst's frame i: its headers come from memory while this
        // burst runs (one prefetch a frame keeps the misses in flight spread).
        reader.prefetch_ahead(i + kBurst);
        const uint32_t len = f.caplen < kMaxFrame ? f.caplen : static_cast<uint32_t>(kMaxFrame);
        uint8_t* bytes = nullptr;
        head[i] = 0;
        if (in_place) {
          bytes = reader.mutable_frame(f);
        } else {
          bytes = buffers.data() + i * kMaxFrame;
          std::memcpy(bytes, f.data, len);
          if (!originals.empty()) std::memcpy(originals.data() + i * kMaxFrame, f.data, len);
        }
        bytes_of[i] = bytes;
        r.bytes += f.wirelen;
        r.l1_bytes += l1_bytes_of(f.wirelen);
        const uint16_t iface = ingress[f.iface];
        const LinkType link = links[f.iface];
        PacketIn& p = in[m];
        const ParseStatus st = link == LinkType::Ethernet && parse_common_ethernet(bytes, len, iface, p.key)
                                   ? ParseStatus::Ok
                                   : parse_frame(bytes, len, link, iface, p.key);
        r.parse.add(st);
        if (st != ParseStatus::Ok) {
          if (dropped_sink) {
            const Interface& ifc = host.iface(iface);
            dropped_sink->write(ifc.name, static_cast<uint32_t>(link), f.ts_ns + shift,
                                std::span<const uint8_t>(bytes, len), f.wirelen,
                                fmt::format("invalid: {}", parse_status_name(st)));
          }
          continue;
        }
        if (restore) {
          // Whole kShortHead or kRewritable bytes (the reader's slack makes
          // it safe): fixed-size copies, and what lies beyond a short frame
          // comes back unchanged.
          head[i] = head_of(p.key);
          copy_head(saved.data() + i * kRewritable, bytes, head[i]);
        }
        p.frame = bytes;
        p.len = len;
        p.in_iface = iface;
        p.ts_ns = f.ts_ns + shift;
        p.rx_csum = RxCsum::Unknown;
        p.csum_wrong = wrong_now != nullptr ? wrong_now[number + i] != 0
                                            : o.rx_csum_trust && l4_checksum_wrong(f.data, len, link);
        frame_of[m] = static_cast<uint32_t>(i);
        ++m;
      }
      number += n;
      r.last_ts_ns = frames[n - 1].ts_ns + shift;
      pipeline.process(std::span(in.data(), m), std::span(out.data(), m));
      for (size_t j = 0; j < m && sinks; ++j) {
        const size_t i = frame_of[j];
        const CaptureFrame& f = frames[i];
        const LinkType link = links[f.iface];
        const auto link_no = static_cast<uint32_t>(link);
        const uint32_t grown = f.wirelen > f.caplen ? f.wirelen - f.caplen : 0;
        if (out[j].fate == Fate::Forwarded && in[j].frame != nullptr) {
          if (mac_rewrite) {
            const Interface& ifc = host.iface(out[j].out_iface);
            // The host sends from its interface's MAC; the destination MAC is
            // left zero (no neighbour table).
            if (link == LinkType::Ethernet && in[j].len >= 12) {
              std::memset(in[j].frame, 0, 6);
              if (ifc.has_mac) std::memcpy(in[j].frame + 6, ifc.mac.data(), 6);
            }
            const std::span<const uint8_t> bytes(in[j].frame, in[j].len);
            if (emitted_sink) emitted_sink->write(ifc.name, link_no, in[j].ts_ns, bytes, in[j].len + grown);
            if (!o.out_dir.empty()) {
              auto& sink = per_iface[out[j].out_iface];
              if (!sink) sink = std::make_unique<InterfaceSink>(o.out_dir + "/" + ifc.name + ".pcapng");
              sink->write(ifc.name, link_no, in[j].ts_ns, bytes, in[j].len + grown);
            }
          }
        } else if (out[j].fate == Fate::Delivered && emitted_sink && in[j].frame != nullptr) {
          emitted_sink->write("local", link_no, in[j].ts_ns, std::span<const uint8_t>(in[j].frame, in[j].len),
                              in[j].len + grown);
        } else if (!fate_emitted(out[j].fate) && dropped_sink) {
          // The frame as it was received.
          const uint32_t len = f.caplen < kMaxFrame ? f.caplen : static_cast<uint32_t>(kMaxFrame);
          const uint8_t* as_received = in_place ? bytes_of[i] : originals.data() + i * kMaxFrame;
          if (head[i] != 0) copy_head(bytes_of[i], saved.data() + i * kRewritable, head[i]);
          const Interface& ifc = host.iface(ingress[f.iface]);
          std::string why = fate_name(out[j].fate);
          if (out[j].defrag_drop != DefragDrop::None) why += fmt::format(": {}", defrag_drop_name(out[j].defrag_drop));
          dropped_sink->write(ifc.name, link_no, in[j].ts_ns, std::span<const uint8_t>(as_received, len), f.wirelen,
                              why);
        }
      }
      if (restore) {
        for (size_t i = 0; i < n; ++i) {
          if (head[i] != 0) copy_head(bytes_of[i], saved.data() + i * kRewritable, head[i]);
        }
      }
      if (o.after_burst) o.after_burst();
      if (o.progress && (r.packets & 1023U) < kBurst) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= next_progress) {
          next_progress = now + std::chrono::milliseconds(500);
          refresh();
          o.progress(r);
        }
      }
    }
    span_ns = any ? loop_last - loop_first : 0;
    if (!r.error.empty()) break;
    ++r.loops;
  }
  refresh();
  if (emitted_sink) {
    r.emitted_written = emitted_sink->frames();
    emitted_sink->close();
  }
  if (dropped_sink) {
    r.dropped_written = dropped_sink->frames();
    dropped_sink->close();
  }
  for (auto& sink : per_iface) {
    if (sink) sink->close();
  }
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
