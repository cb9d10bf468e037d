#include "pcap/capture_port.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <tuple>

#include "base/load_error.h"
#include "packet/checksum.h"
#include "pcap/capture_writer.h"

namespace nfb {
namespace {

constexpr uint64_t kLoopGapNs = 1'000'000'000ULL;

}  // namespace

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

// ---------------------------------------------------------------------------
// CaptureSource

CaptureSource::CaptureSource(CaptureReader& reader, const HostModel& host, const ReplayOptions& o,
                             bool keep_received, ReplayReport& r)
    : reader_(reader), host_(host), o_(o), r_(r), in_place_(!reader.streaming()), keep_received_(keep_received) {
  learn_interfaces();
  if (!in_place_) buffers_.resize(kFrameBurst * kMaxFrame);
  if (in_place_ && (o_.loops > 1 || keep_received_)) saved_.resize(kFrameBurst * kRewritable);
  if (!in_place_ && keep_received_) originals_.resize(kFrameBurst * kMaxFrame);
  if (o_.rx_csum_trust && in_place_) find_wrong_checksums();
}

bool CaptureSource::l4_checksum_wrong(const uint8_t* data, uint32_t len, LinkType link) noexcept {
  PacketKey key;
  if (parse_frame(data, len, link, 0, key) != ParseStatus::Ok || key.is_fragment()) return false;
  return !l4_checksum_ok(data, len, key);
}

void CaptureSource::learn_interfaces() {
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
void CaptureSource::find_wrong_checksums() {
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

bool CaptureSource::next_round() noexcept {
  if (round_ > 0) {
    // The pass that ended: complete unless a malformed record stopped it.
    const uint64_t span_ns = any_ ? pass_last_ts_ - pass_first_ts_ : 0;
    if (!r_.error.empty()) return false;
    ++r_.loops;
    if (round_ == o_.loops) return false;
    reader_.rewind();
    shift_ += span_ns + kLoopGapNs;
  }
  // The bytes rewritten in place are put back when they are read again: by
  // a later pass, or by the dropped sink.
  restore_ = in_place_ && (round_ + 1 < o_.loops || keep_received_);
  number_ = 0;
  any_ = false;
  ++round_;
  return true;
}

size_t CaptureSource::take() {
  size_t n = 0;
  try {
    n = reader_.next_burst(frames_);
  } catch (const LoadError& e) {
    // A malformed record: what came before it is processed and counted;
    // the replay stops here and says where.
    r_.error = e.what();
    return 0;
  }
  if (n == 0) return 0;
  if (!any_) pass_first_ts_ = frames_[0].ts_ns;
  any_ = true;
  pass_last_ts_ = frames_[n - 1].ts_ns;
  if (ingress_.size() < reader_.interfaces().size()) learn_interfaces();
  burst_wrong_ = wrong_.empty() ? nullptr : wrong_.data() + number_;
  number_ += n;
  return n;
}

// ---------------------------------------------------------------------------
// CaptureSinks

CaptureSinks::CaptureSinks(const HostModel& host, const ReplayOptions& o) : host_(host), o_(o) {
  if (!o_.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o_.out_dir, ec);
    if (ec) throw LoadError(SourceLocation{o_.out_dir}, "cannot create the output directory: " + ec.message());
  }
  if (!o_.emitted_file.empty()) emitted_ = std::make_unique<InterfaceSink>(o_.emitted_file);
  if (!o_.dropped_file.empty()) dropped_ = std::make_unique<InterfaceSink>(o_.dropped_file);
  per_iface_.resize(host_.iface_count());
  mac_rewrite_ = emitted_ != nullptr || !o_.out_dir.empty();
  any_ = mac_rewrite_ || dropped_ != nullptr;
}

CaptureSinks::~CaptureSinks() = default;

void CaptureSinks::reject(CaptureSource& src, size_t i, ParseStatus st) {
  if (!dropped_) return;
  char why[64];
  const auto w = fmt::format_to_n(why, sizeof why, "invalid: {}", parse_status_name(st));
  dropped_->write(host_.iface(src.ingress(i)).name, static_cast<uint32_t>(src.link(i)), src.ts_ns(i), src.bytes(i),
                  src.captured(i).wirelen, std::string_view(why, std::min(w.size, sizeof why)));
}

void CaptureSinks::forward(CaptureSource& src, size_t i, PacketIn& p, uint16_t egress) {
  if (!mac_rewrite_) return;
  const CaptureFrame& f = src.captured(i);
  const LinkType link = src.link(i);
  const auto link_no = static_cast<uint32_t>(link);
  const uint32_t grown = f.wirelen > f.caplen ? f.wirelen - f.caplen : 0;
  const Interface& ifc = host_.iface(egress);
  if (link == LinkType::Ethernet) set_egress_macs(p.frame, p.len, ifc);
  const std::span<const uint8_t> bytes(p.frame, p.len);
  if (emitted_) emitted_->write(ifc.name, link_no, p.ts_ns, bytes, p.len + grown);
  if (!o_.out_dir.empty()) {
    auto& sink = per_iface_[egress];
    if (!sink) sink = std::make_unique<InterfaceSink>(o_.out_dir + "/" + ifc.name + ".pcapng");
    sink->write(ifc.name, link_no, p.ts_ns, bytes, p.len + grown);
  }
}

void CaptureSinks::finish(CaptureSource& src, size_t i, const PacketIn& p, const PacketOut& out) {
  const CaptureFrame& f = src.captured(i);
  const auto link_no = static_cast<uint32_t>(src.link(i));
  if (out.fate == Fate::Delivered && emitted_ && p.frame != nullptr) {
    const uint32_t grown = f.wirelen > f.caplen ? f.wirelen - f.caplen : 0;
    emitted_->write("local", link_no, p.ts_ns, std::span<const uint8_t>(p.frame, p.len), p.len + grown);
  } else if (!fate_emitted(out.fate) && dropped_) {
    // The frame as it was received.
    const uint32_t len = f.caplen < CaptureSource::kMaxFrame ? f.caplen : CaptureSource::kMaxFrame;
    const uint8_t* as_received = src.as_received(i);
    char why[96];
    const auto w = out.defrag_drop != DefragDrop::None
                       ? fmt::format_to_n(why, sizeof why, "{}: {}", fate_name(out.fate),
                                          defrag_drop_name(out.defrag_drop))
                       : fmt::format_to_n(why, sizeof why, "{}", fate_name(out.fate));
    dropped_->write(host_.iface(src.ingress(i)).name, link_no, p.ts_ns, std::span<const uint8_t>(as_received, len),
                    f.wirelen, std::string_view(why, std::min(w.size, sizeof why)));
  }
}

void CaptureSinks::close(ReplayReport& r) {
  if (emitted_) {
    r.emitted_written = emitted_->frames();
    emitted_->close();
  }
  if (dropped_) {
    r.dropped_written = dropped_->frames();
    dropped_->close();
  }
  for (auto& sink : per_iface_) {
    if (sink) sink->close();
  }
}

}  // namespace nfb
