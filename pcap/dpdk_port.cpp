#include "pcap/dpdk_port.h"

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "base/dpdk_eal.h"
#include "packet/frame_parser.h"
#include "pcap/burst_loop.h"
#include "pcap/capture_reader.h"

namespace nfb {
namespace {

constexpr uint16_t kBurst = kFrameBurst;
constexpr uint32_t kPoolCache = 256;

uint8_t* mbuf_data(rte_mbuf* m) noexcept { return static_cast<uint8_t*>(m->buf_addr) + m->data_off; }

}  // namespace

uint16_t steer_lcore(const PacketKey& key, bool outside, uint16_t lcores) noexcept {
  uint32_t addr = 0;
  uint16_t port = 0;
  if (key.has(key_flag::kInner)) {
    // An ICMP error quotes the packet of the flow as it went: its
    // destination is the endpoint NAT left alone, whichever way it came.
    addr = key.inner.dst_ip;
    port = key.inner.dst_port;
  } else if (outside) {
    addr = key.src_ip;
    port = key.src_port;
  } else {
    addr = key.dst_ip;
    port = key.dst_port;
  }
  uint64_t h = (uint64_t{addr} << 16 | port) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 29;
  return static_cast<uint16_t>(((h >> 32) * lcores) >> 32);
}

std::vector<std::pair<uint16_t, uint16_t>> parse_port_map(const std::string& text, const HostModel& host) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  const std::string spec = text.empty() ? "0=eth0" : text;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string part = spec.substr(at, comma - at);
    const size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
      throw std::invalid_argument(fmt::format("--port-map: \"{}\" is not PORT=IFACE", part));
    }
    unsigned long port = 0;
    try {
      size_t used = 0;
      port = std::stoul(part.substr(0, eq), &used);
      if (used != eq || port >= RTE_MAX_ETHPORTS) throw std::invalid_argument("range");
    } catch (const std::exception&) {
      throw std::invalid_argument(fmt::format("--port-map: \"{}\" is not a DPDK port number", part.substr(0, eq)));
    }
    const std::string name = part.substr(eq + 1);
    const auto id = host.iface_id(name);
    if (!id) throw std::invalid_argument(fmt::format("--port-map: the host has no interface \"{}\"", name));
    for (const auto& [p, i] : out) {
      if (p == port || i == *id) throw std::invalid_argument(fmt::format("--port-map: \"{}\" maps twice", part));
    }
    out.emplace_back(static_cast<uint16_t>(port), *id);
    at = comma + 1;
  }
  return out;
}

namespace {

const uint8_t kSymmetricRssKey[40] = {  // 0x6d5a repeated: the Toeplitz hash of (a, b) equals that of (b, a)
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};

/// Configures and starts a port with `queues` tx queues and up to that many
/// rx queues (as many as the device has). Where the device hashes: RSS on
/// the endpoint NAT leaves alone when it can hash one end only (L3/L4
/// SRC_ONLY on the outside port, DST_ONLY on a bridge), else symmetric RSS;
/// steer_lcore() stays the judge either way (a packet on another lcore's
/// queue is handed over). Returns the rx queue count.
uint16_t start_port_queues(uint16_t port, uint16_t queues, rte_mempool* pool, bool outside) {
  rte_eth_dev_info info;
  std::memset(&info, 0, sizeof info);
  int rc = rte_eth_dev_info_get(port, &info);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: info: {}", port, rte_strerror(-rc)));
  if (info.max_tx_queues < queues) {
    throw std::runtime_error(fmt::format("DPDK port {}: {} lcores need {} tx queues, the device has {} (a pcap vdev "
                                         "gets one per tx_pcap/tx_iface argument)",
                                         port, queues, queues, info.max_tx_queues));
  }
  const auto rxq = static_cast<uint16_t>(std::max<uint16_t>(1, std::min<uint16_t>(queues, info.max_rx_queues)));
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);
  if (rxq > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(kSymmetricRssKey);
    conf.rx_adv_conf.rss_conf.rss_key_len = sizeof kSymmetricRssKey;
    uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    const uint64_t one_end =
        outside ? RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY : RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY;
    if ((info.flow_type_rss_offloads & one_end) == one_end) hf |= one_end;
    conf.rx_adv_conf.rss_conf.rss_hf = hf;
  }
  rc = rte_eth_dev_configure(port, rxq, queues, &conf);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: configure failed: {}", port, rte_strerror(-rc)));
  uint16_t rxd = 1024, txd = 1024;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: descriptors: {}", port, rte_strerror(-rc)));
  const int socket = rte_eth_dev_socket_id(port);
  const auto sock = static_cast<unsigned>(socket < 0 ? 0 : socket);
  for (uint16_t q = 0; q < rxq; ++q) {
    rc = rte_eth_rx_queue_setup(port, q, rxd, sock, nullptr, pool);
    if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: rx queue {}: {}", port, q, rte_strerror(-rc)));
  }
  for (uint16_t q = 0; q < queues; ++q) {
    rc = rte_eth_tx_queue_setup(port, q, txd, sock, nullptr);
    if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: tx queue {}: {}", port, q, rte_strerror(-rc)));
  }
  rc = rte_eth_dev_start(port);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: start failed: {}", port, rte_strerror(-rc)));
  (void)rte_eth_promiscuous_enable(port);  // vdevs may not support it: not needed for them
  return rxq;
}

struct PortQueue {
  uint16_t port = 0;
  uint16_t iface = 0;
  uint16_t rx_queues = 1;
  bool iface_per_mbuf = false;  // the ring source: each mbuf says its ingress interface (hash.usr)
};

/// What one lcore publishes for lcore 0's stop checks: written by its lcore
/// alone (plain relaxed stores, now and then), read by lcore 0: no atomic
/// read-modify-write is shared on the packet path.
struct alignas(64) LcoreStatus {
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> last_rx{0};  // TSC of its latest burst; 0 before the first
};

/// What the lcores share: the ports, the steering, the stop flag, the clock.
struct Shared {
  const HostModel* host = nullptr;
  const DpdkReplayOptions* opts = nullptr;
  std::vector<PortQueue> ports;
  std::vector<int32_t> port_of_iface;
  std::vector<uint8_t> outside;     // per host interface: 1 = the outside (steer on the source)
  std::vector<rte_ring*> handoff;   // per lcore: packets another lcore received for it
  std::unique_ptr<LcoreStatus[]> status;
  uint16_t lcores = 1;
  uint64_t hz = 0;
  uint64_t t0 = 0;
  uint64_t wall0 = 0;
  std::atomic<bool> stop{false};
};

/// One lcore's run: queue `q` of every port, its own pipeline (conntrack
/// shard), its own tx queue `q` on every port, its own handoff ring.
struct Worker {
  Shared* shared = nullptr;
  Pipeline* pipeline = nullptr;
  uint16_t queue = 0;
  DpdkReplayReport report;
  uint64_t last_rx = 0;
};

/// Lcore 0's stop check over every lcore's published status.
void check_stop(Shared& sh, uint64_t tsc) noexcept {
  const DpdkReplayOptions& o = *sh.opts;
  uint64_t packets = 0;
  uint64_t last = 0;
  for (uint16_t i = 0; i < sh.lcores; ++i) {
    packets += sh.status[i].packets.load(std::memory_order_relaxed);
    last = std::max(last, sh.status[i].last_rx.load(std::memory_order_relaxed));
  }
  const uint64_t idle_cycles = sh.hz / 1000 * o.idle_ms;
  const auto max_cycles = static_cast<uint64_t>(o.duration_s * static_cast<double>(sh.hz));
  bool stop = false;
  if (last != 0 && o.idle_ms != 0 && tsc > last && tsc - last > idle_cycles) stop = true;
  if (max_cycles != 0 && tsc - sh.t0 > max_cycles) stop = true;
  if (o.max_packets != 0 && packets >= o.max_packets) stop = true;
  if (stop) sh.stop.store(true, std::memory_order_relaxed);
}

// An lcore's receive side as the burst loop's source (pcap/burst_loop.h):
// one round polls rx queue `queue` of every port, then the lcore's handoff
// ring. A frame whose flow another lcore owns is passed on to it (keep()
// false: counted there); the rx queues are polled only while every
// lcore's handoff buffer has a burst's room. Between rounds: hand over what
// other lcores own, and now and then publish the counters (lcore 0 decides
// when to stop).
class DpdkRxSource {
 public:
  explicit DpdkRxSource(Worker& w)
      : w_(w), sh_(*w.shared), pipeline_(*w.pipeline), r_(w.report.replay), mine_(sh_.status[w.queue]),
        give_(sh_.lcores), before_(mark_pipeline(pipeline_)) {}

  // FrameSource.
  bool next_round() noexcept;
  size_t take() noexcept;
  class Frames;
  Frames frames() noexcept;
  void release(size_t) noexcept {}  // the sink consumed every mbuf it was given

  rte_mbuf* mbuf(size_t i) const noexcept { return rx_[i]; }
  /// After the loop: frames still waiting for another lcore's full handoff
  /// ring are counted (dropped), and the report completed.
  void finish() noexcept;

 private:
  // Packets for other lcores, per lcore. Room for two bursts: the rx queues
  // are polled only while every one has a burst's room, so a full handoff
  // ring holds traffic back (as a NIC whose queue is not polled) instead of
  // losing it.
  struct Give {
    std::array<rte_mbuf*, 2 * kBurst> bufs{};
    uint16_t count = 0;
  };

  uint64_t now_ns(uint64_t tsc) const noexcept {
    const uint64_t d = tsc - sh_.t0;
    return sh_.wall0 + d / sh_.hz * 1'000'000'000ULL + d % sh_.hz * 1'000'000'000ULL / sh_.hz;
  }
  bool room_for_a_burst() const noexcept {
    for (const Give& g : give_) {
      if (g.count > kBurst) return false;
    }
    return true;
  }
  void hand_over(uint16_t to) noexcept;
  // A burst of n frames from a port queue (iface: its interface) or from
  // the handoff ring (per_mbuf: each mbuf says).
  size_t start_burst(uint16_t n, uint16_t iface, bool per_mbuf) noexcept {
    got_ = true;
    const uint64_t tsc = rte_get_tsc_cycles();
    w_.last_rx = tsc;
    ts_ = now_ns(tsc);
    iface_ = iface;
    per_mbuf_ = per_mbuf;
    return n;
  }

  Worker& w_;
  Shared& sh_;
  Pipeline& pipeline_;
  ReplayReport& r_;
  LcoreStatus& mine_;
  std::vector<Give> give_;
  std::array<rte_mbuf*, kBurst> rx_{};
  const PipelineMark before_;

  uint64_t round_ = 0;        // rounds started
  size_t at_ = 0;             // the round's next place: a port, then (== ports.size()) the handoff ring
  bool got_ = false;          // the round received something
  uint64_t ts_ = 0;           // the burst's arrival time
  uint16_t iface_ = kNoIface;
  bool per_mbuf_ = false;
};

class DpdkRxSource::Frames {
 public:
  explicit Frames(DpdkRxSource& s) noexcept : s_(s) {}
  SourceFrame frame(size_t i) noexcept {
    rte_mbuf* m = s_.rx_[i];
    const uint16_t ingress = s_.per_mbuf_ ? static_cast<uint16_t>(m->hash.usr) : s_.iface_;
    // A chained mbuf cannot be parsed in place: an empty frame makes it
    // invalid (truncated_l2) rather than lost.
    const uint32_t len = m->nb_segs == 1 ? m->data_len : 0U;
    return SourceFrame{mbuf_data(m), len, m->pkt_len, s_.ts_, ingress, LinkType::Ethernet};
  }
  uint64_t ts_ns(size_t) const noexcept { return s_.ts_; }
  bool keep(size_t i, const SourceFrame& f, const PacketKey& key) noexcept {
    if (s_.sh_.lcores == 1) return true;
    // The lcore that owns the flow: by the endpoint NAT leaves alone.
    const uint16_t owner = steer_lcore(key, s_.sh_.outside[f.iface] != 0, s_.sh_.lcores);
    if (owner == s_.w_.queue) return true;
    rte_mbuf* m = s_.rx_[i];
    m->hash.usr = f.iface;
    Give& g = s_.give_[owner];
    g.bufs[g.count++] = m;  // room: see room_for_a_burst()
    return false;
  }
  void admit(size_t i, const SourceFrame&, PacketIn& p) noexcept {
    const uint64_t l4 = s_.rx_[i]->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    p.rx_csum = l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD ? RxCsum::Good
                : l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD ? RxCsum::Bad
                                                   : RxCsum::Unknown;
    p.csum_wrong = false;
  }

 private:
  DpdkRxSource& s_;
};

DpdkRxSource::Frames DpdkRxSource::frames() noexcept { return Frames(*this); }

bool DpdkRxSource::next_round() noexcept {
  if (round_ != 0) {
    // The round that ended (its tx buffers are flushed): hand over what
    // other lcores own; publish now and then, not per burst.
    for (uint16_t to = 0; to < give_.size(); ++to) hand_over(to);
    if (!got_ || (round_ & 63U) == 0) {
      mine_.packets.store(r_.packets, std::memory_order_relaxed);
      if (w_.last_rx != 0) mine_.last_rx.store(w_.last_rx, std::memory_order_relaxed);
      if (w_.queue == 0) check_stop(sh_, rte_get_tsc_cycles());
    }
  }
  if (sh_.stop.load(std::memory_order_relaxed)) return false;
  ++round_;
  at_ = 0;
  got_ = false;
  return true;
}

size_t DpdkRxSource::take() noexcept {
  while (at_ < sh_.ports.size()) {
    const PortQueue& src = sh_.ports[at_++];
    // Checked before every poll, not once a round: a round that polled two
    // ports after one check could add two bursts to a Give with room for one
    // more.
    if (w_.queue >= src.rx_queues || !room_for_a_burst()) continue;
    const uint16_t n = rte_eth_rx_burst(src.port, w_.queue, rx_.data(), kBurst);
    if (n != 0) return start_burst(n, src.iface, src.iface_per_mbuf);
  }
  if (at_ == sh_.ports.size()) {
    ++at_;
    if (!sh_.handoff.empty()) {
      const auto n = static_cast<uint16_t>(
          rte_ring_dequeue_burst(sh_.handoff[w_.queue], reinterpret_cast<void**>(rx_.data()), kBurst, nullptr));
      if (n != 0) return start_burst(n, kNoIface, true);
    }
  }
  return 0;
}

// Whatever fits on the owner's ring; the rest waits for the next round.
void DpdkRxSource::hand_over(uint16_t to) noexcept {
  Give& g = give_[to];
  if (g.count == 0) return;
  const unsigned sent = rte_ring_enqueue_burst(sh_.handoff[to], reinterpret_cast<void* const*>(g.bufs.data()),
                                               g.count, nullptr);
  std::copy(g.bufs.begin() + sent, g.bufs.begin() + g.count, g.bufs.begin());
  g.count = static_cast<uint16_t>(g.count - sent);
}

void DpdkRxSource::finish() noexcept {
  // Stopped with packets still waiting for a full ring: counted here, as
  // dropped (the report says why).
  for (uint16_t to = 0; to < give_.size(); ++to) {
    hand_over(to);
    Give& g = give_[to];
    for (uint16_t i = 0; i < g.count; ++i) {
      count_received(r_, g.bufs[i]->pkt_len);
      rte_pktmbuf_free(g.bufs[i]);
    }
    w_.report.handoff_failed += g.count;
    g.count = 0;
  }
  r_.seconds = static_cast<double>((w_.last_rx != 0 ? w_.last_rx : rte_get_tsc_cycles()) - sh_.t0) /
               static_cast<double>(sh_.hz);
  r_.loops = 1;
  fill_verdicts(r_, pipeline_, before_);
  r_.dropped += w_.report.handoff_failed;
  r_.emitted_written = w_.report.transmitted;
}

// An lcore's transmit side as the burst loop's sink: a forwarded frame goes
// into the buffer of its egress interface's port (tx queue `queue`), sent
// when it holds a burst and at the end of every round; every other frame's
// mbuf is freed. Counts transmitted, tx_no_port, tx_failed, tx_too_big.
class DpdkTxSink {
 public:
  explicit DpdkTxSink(Worker& w) : w_(w), sh_(*w.shared), host_(*sh_.host) {}

  // FrameSink.
  bool wants_frames() const noexcept { return true; }
  void reject(DpdkRxSource& rx, size_t i, ParseStatus) noexcept { rte_pktmbuf_free(rx.mbuf(i)); }
  void forward(DpdkRxSource& rx, size_t i, PacketIn& p, uint16_t egress) noexcept;
  void finish(DpdkRxSource& rx, size_t i, const PacketIn&, const PacketOut&) noexcept {
    rte_pktmbuf_free(rx.mbuf(i));  // delivered to the host or dropped
  }
  void flush() noexcept {
    for (size_t pi = 0; pi < sh_.ports.size(); ++pi) flush(pi);
  }

 private:
  struct Tx {
    std::array<rte_mbuf*, kBurst> bufs{};
    uint16_t count = 0;
  };
  void flush(size_t pi) noexcept;

  Worker& w_;
  Shared& sh_;
  const HostModel& host_;
  std::array<Tx, RTE_MAX_ETHPORTS> tx_{};  // one buffer per mapped port (first ports.size() used)
};

void DpdkTxSink::flush(size_t pi) noexcept {
  Tx& t = tx_[pi];
  if (t.count == 0) return;
  const uint16_t sent = rte_eth_tx_burst(sh_.ports[pi].port, w_.queue, t.bufs.data(), t.count);
  w_.report.transmitted += sent;
  for (uint16_t i = sent; i < t.count; ++i) rte_pktmbuf_free(t.bufs[i]);
  w_.report.tx_failed += t.count - sent;
  t.count = 0;
}

void DpdkTxSink::forward(DpdkRxSource& rx, size_t i, PacketIn& p, uint16_t egress) noexcept {
  rte_mbuf* m = rx.mbuf(i);
  const int32_t pi = sh_.port_of_iface[egress];
  if (pi < 0) {
    ++w_.report.tx_no_port;
    rte_pktmbuf_free(m);
    return;
  }
  if (p.frame != mbuf_data(m)) {
    // A reassembled datagram: its bytes live in the pipeline's buffer.
    if (p.len + uint32_t{RTE_PKTMBUF_HEADROOM} > uint32_t{m->buf_len}) {
      ++w_.report.tx_too_big;
      rte_pktmbuf_free(m);
      return;
    }
    m->data_off = RTE_PKTMBUF_HEADROOM;
    std::memcpy(mbuf_data(m), p.frame, p.len);
    m->data_len = static_cast<uint16_t>(p.len);
    m->pkt_len = p.len;
  }
  set_egress_macs(mbuf_data(m), m->data_len, host_.iface(egress));
  Tx& t = tx_[static_cast<size_t>(pi)];
  t.bufs[t.count++] = m;
  if (t.count == kBurst) flush(static_cast<size_t>(pi));
}

// One lcore: its rx queues and handoff ring through its pipeline (conntrack
// shard) to its tx queues.
int worker_main(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  DpdkRxSource rx(w);
  DpdkTxSink tx(w);
  run_burst_loop(rx, tx, *w.pipeline, w.report.replay, [] {});
  rx.finish();
  return 0;
}

/// The NIC of the ring source: frames of a preloaded capture into mbufs and
/// onto the ring port's rx rings (one per lcore, each frame on the ring of
/// the lcore that owns its flow, as per-port RSS on the endpoint NAT leaves
/// alone would put it), forwarded frames taken off its tx rings and freed.
struct Feeder {
  Shared* shared = nullptr;
  CaptureReader* capture = nullptr;
  std::vector<uint16_t> ingress;  // per capture interface: host interface id
  rte_mempool* pool = nullptr;
  std::vector<rte_ring*> rx;      // per lcore
  std::vector<rte_ring*> tx;      // per lcore
  uint32_t loops = 1;
  uint64_t fed = 0;
};

int feeder_main(void* arg) {
  Feeder& fd = *static_cast<Feeder*>(arg);
  Shared& sh = *fd.shared;
  std::array<CaptureFrame, kBurst> frames;
  std::array<rte_mbuf*, kBurst> bufs{};
  std::vector<std::array<rte_mbuf*, kBurst>> per(fd.rx.size());
  std::vector<uint16_t> count(fd.rx.size(), 0);
  const auto drain = [&] {
    std::array<rte_mbuf*, kBurst> done{};
    for (rte_ring* t : fd.tx) {
      for (unsigned n; (n = rte_ring_dequeue_burst(t, reinterpret_cast<void**>(done.data()), kBurst, nullptr)) != 0;)
        rte_pktmbuf_free_bulk(done.data(), n);
    }
  };
  const auto push = [&](size_t q) {
    unsigned sent = 0;
    while (sent < count[q] && !sh.stop.load(std::memory_order_relaxed)) {
      sent += rte_ring_enqueue_burst(fd.rx[q], reinterpret_cast<void* const*>(per[q].data() + sent), count[q] - sent,
                                     nullptr);
      if (sent < count[q]) drain();
    }
    if (sent < count[q]) rte_pktmbuf_free_bulk(per[q].data() + sent, count[q] - sent);
    count[q] = 0;
  };
  PacketKey key;
  for (uint32_t loop = 0; loop < fd.loops && !sh.stop.load(std::memory_order_relaxed); ++loop) {
    fd.capture->rewind();
    for (size_t n; (n = fd.capture->next_burst(frames)) != 0 && !sh.stop.load(std::memory_order_relaxed);) {
      while (rte_pktmbuf_alloc_bulk(fd.pool, bufs.data(), static_cast<unsigned>(n)) != 0) {
        drain();
        if (sh.stop.load(std::memory_order_relaxed)) return 0;
      }
      for (size_t i = 0; i < n; ++i) {
        const CaptureFrame& f = frames[i];
        rte_mbuf* m = bufs[i];
        const uint16_t room = static_cast<uint16_t>(m->buf_len - m->data_off);
        const auto len = static_cast<uint16_t>(std::min<uint32_t>(f.caplen, room));
        std::memcpy(mbuf_data(m), f.data, len);
        m->data_len = len;
        m->pkt_len = len;
        const uint16_t ingress = fd.ingress[f.iface];
        m->hash.usr = ingress;
        size_t q = 0;
        if (fd.rx.size() > 1 && parse_frame(f.data, len, LinkType::Ethernet, ingress, key) == ParseStatus::Ok)
          q = steer_lcore(key, sh.outside[ingress] != 0, static_cast<uint16_t>(fd.rx.size()));
        per[q][count[q]++] = m;
        if (count[q] == kBurst) push(q);
      }
      for (size_t q = 0; q < per.size(); ++q) push(q);
      fd.fed += n;
      drain();
    }
  }
  while (!sh.stop.load(std::memory_order_relaxed)) drain();
  drain();
  return 0;
}

void add_into(DpdkReplayReport& total, const DpdkReplayReport& one) {
  ReplayReport& t = total.replay;
  const ReplayReport& r = one.replay;
  if (t.packets == 0 || (r.packets != 0 && r.first_ts_ns < t.first_ts_ns)) t.first_ts_ns = r.first_ts_ns;
  t.last_ts_ns = std::max(t.last_ts_ns, r.last_ts_ns);
  t.packets += r.packets;
  t.bytes += r.bytes;
  t.l1_bytes += r.l1_bytes;
  t.seconds = std::max(t.seconds, r.seconds);
  t.emitted += r.emitted;
  t.dropped += r.dropped;
  t.invalid += r.invalid;
  t.flows += r.flows;
  t.trusted_bad_checksum += r.trusted_bad_checksum;
  t.loops = 1;
  for (size_t f = 0; f < kFateCount; ++f) t.pipeline.by_fate[f] += r.pipeline.by_fate[f];
  t.pipeline.fast_path_packets += r.pipeline.fast_path_packets;
  t.pipeline.walked_packets += r.pipeline.walked_packets;
  t.pipeline.rules_tested += r.pipeline.rules_tested;
  for (size_t i = 0; i < kParseStatusCount; ++i) t.parse.by_status[i] += r.parse.by_status[i];
  t.emitted_written += r.emitted_written;
  total.transmitted += one.transmitted;
  total.tx_no_port += one.tx_no_port;
  total.tx_failed += one.tx_failed;
  total.tx_too_big += one.tx_too_big;
  total.handoff_failed += one.handoff_failed;
}

}  // namespace

DpdkReplayReport run_dpdk_replay(Pipeline& pipeline, const HostModel& host, const DpdkReplayOptions& o) {
  Pipeline* one[] = {&pipeline};
  return run_dpdk_replay(std::span<Pipeline* const>(one), host, o);
}

DpdkReplayReport run_dpdk_replay(std::span<Pipeline* const> shards, const HostModel& host,
                                 const DpdkReplayOptions& o) {
  if (shards.empty() || shards.size() > RTE_MAX_LCORE) throw std::invalid_argument("--lcores: 1 or more");
  const bool ring = !o.ring_from.empty();
  const auto map = ring && o.port_map.empty() ? std::vector<std::pair<uint16_t, uint16_t>>{}
                                              : parse_port_map(o.port_map, host);
  // The ring source's capture, preloaded before the EAL starts (its errors
  // are the file's).
  std::unique_ptr<CaptureReader> capture;
  if (ring) capture = std::make_unique<CaptureReader>(o.ring_from, CaptureMode::kPreload);
  start_dpdk_eal_exact(o.eal_args);
  const size_t need = shards.size() + (ring ? 1 : 0);
  if (rte_lcore_count() < need) {
    throw std::invalid_argument(fmt::format("--lcores {}{}: the EAL has {} lcores (give it -l 0-{})", shards.size(),
                                            ring ? " and the ring source's feeder" : "", rte_lcore_count(),
                                            need - 1));
  }
  for (const auto& [port, iface] : map) {
    if (rte_eth_dev_is_valid_port(port) == 0) {
      throw std::invalid_argument(fmt::format("--port-map: DPDK has no port {} ({} available; vdevs come from --vdev)",
                                              port, rte_eth_dev_count_avail()));
    }
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("nfb_replay", o.mbufs, kPoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) throw std::runtime_error(fmt::format("DPDK mbuf pool: {}", rte_strerror(rte_errno)));

  Shared sh;
  sh.host = &host;
  sh.opts = &o;
  sh.port_of_iface.assign(host.iface_count(), -1);
  sh.lcores = static_cast<uint16_t>(shards.size());
  sh.status = std::make_unique<LcoreStatus[]>(shards.size());
  // The outside interface (the default route's) steers on the source: the
  // remote end of inbound flows, the server of outbound (MASQUERADEd) ones;
  // the bridges on the destination, which is the same endpoint seen from
  // inside.
  sh.outside.assign(host.iface_count(), 0);
  if (const RouteResult def = host.route(0x08080808U); def.found() && def.iface != kNoIface) sh.outside[def.iface] = 1;
  DpdkReplayReport out;
  const auto lcores = static_cast<uint16_t>(shards.size());
  if (lcores > 1) {
    for (uint16_t i = 0; i < lcores; ++i) {
      rte_ring* r = rte_ring_create(fmt::format("nfb_hand{}", i).c_str(), 4096, static_cast<int>(rte_socket_id()),
                                    RING_F_SC_DEQ);
      if (r == nullptr) throw std::runtime_error(fmt::format("DPDK handoff ring: {}", rte_strerror(rte_errno)));
      sh.handoff.push_back(r);
    }
  }
  for (const auto& [port, iface] : map) {
    const uint16_t rxq = start_port_queues(port, lcores, pool, sh.outside[iface] != 0);
    sh.port_of_iface[iface] = static_cast<int32_t>(sh.ports.size());
    sh.ports.push_back(PortQueue{port, iface, rxq, false});
    out.ports.emplace_back(port, host.iface(iface).name);
  }
  Feeder feeder;
  if (ring) {
    // One net_ring port, an rx and a tx ring per lcore; every interface the
    // port map leaves out goes through it.
    std::vector<rte_ring*> rxr;
    std::vector<rte_ring*> txr;
    for (uint16_t i = 0; i < lcores; ++i) {
      rxr.push_back(rte_ring_create(fmt::format("nfb_src_rx{}", i).c_str(), 4096, static_cast<int>(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
      txr.push_back(rte_ring_create(fmt::format("nfb_src_tx{}", i).c_str(), 4096, static_cast<int>(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
      if (rxr.back() == nullptr || txr.back() == nullptr)
        throw std::runtime_error(fmt::format("DPDK ring source: {}", rte_strerror(rte_errno)));
    }
    const int port = rte_eth_from_rings("nfb_ring_source", rxr.data(), lcores, txr.data(), lcores,
                                        rte_socket_id());
    if (port < 0) throw std::runtime_error(fmt::format("DPDK ring source port: {}", rte_strerror(rte_errno)));
    const uint16_t rxq = start_port_queues(static_cast<uint16_t>(port), lcores, pool, false);
    for (uint16_t id = 0; id < host.iface_count(); ++id) {
      if (sh.port_of_iface[id] < 0) sh.port_of_iface[id] = static_cast<int32_t>(sh.ports.size());
    }
    sh.ports.push_back(PortQueue{static_cast<uint16_t>(port), kNoIface, rxq, true});
    out.ports.emplace_back(static_cast<uint16_t>(port), "ring:" + o.ring_from);
    feeder.shared = &sh;
    feeder.capture = capture.get();
    feeder.pool = pool;
    feeder.rx = rxr;
    feeder.tx = txr;
    feeder.loops = std::max<uint32_t>(1, o.ring_loops);
    for (const CaptureInterface& ci : capture->interfaces()) {
      const std::string& name = ci.name.empty() ? o.ring_iface : ci.name;
      const auto id = host.iface_id(name);
      if (!id) {
        throw std::invalid_argument(
            fmt::format("{}: capture interface \"{}\" is not the host's", o.ring_from, name));
      }
      feeder.ingress.push_back(*id);
    }
  }
  sh.hz = rte_get_tsc_hz();
  sh.t0 = rte_get_tsc_cycles();
  sh.wall0 = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());

  std::vector<Worker> workers(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    workers[i].shared = &sh;
    workers[i].pipeline = shards[i];
    workers[i].queue = static_cast<uint16_t>(i);
  }
  // Lcore 0 of the run is the calling (main) lcore; the next ones are
  // workers, then the feeder of a ring source.
  size_t next = 1;
  bool feeding = false;
  for (unsigned lcore = rte_get_next_lcore(~0U, 1, 0); lcore < RTE_MAX_LCORE;
       lcore = rte_get_next_lcore(lcore, 1, 0)) {
    int rc = 0;
    if (next < workers.size()) {
      rc = rte_eal_remote_launch(worker_main, &workers[next], lcore);
      ++next;
    } else if (ring && !feeding) {
      rc = rte_eal_remote_launch(feeder_main, &feeder, lcore);
      feeding = true;
    } else {
      break;
    }
    if (rc != 0) throw std::runtime_error(fmt::format("DPDK lcore {}: launch failed: {}", lcore, rte_strerror(-rc)));
  }
  worker_main(&workers[0]);
  rte_eal_mp_wait_lcore();

  for (const Worker& w : workers) {
    add_into(out, w.report);
    out.per_lcore.push_back(w.report);
  }
  out.fed = feeder.fed;
  for (const PortQueue& p : sh.ports) {
    (void)rte_eth_dev_stop(p.port);
    (void)rte_eth_dev_close(p.port);
  }
  return out;
}

std::string format_dpdk_report(const DpdkReplayReport& r) {
  std::string s = format_replay_report(r.replay);
  if (r.per_lcore.size() > 1) {
    for (size_t i = 0; i < r.per_lcore.size(); ++i) {
      const ReplayReport& l = r.per_lcore[i].replay;
      s += fmt::format("  lcore {}: {} packets, {:.3f} Mpps, {} emitted, {} dropped, {} invalid, {} transmitted\n", i,
                       l.packets, l.mpps(), l.emitted, l.dropped, l.invalid, r.per_lcore[i].transmitted);
    }
  }
  s += "Ports:";
  for (const auto& [port, name] : r.ports) s += fmt::format(" {}={}", port, name);
  s += fmt::format("\nTransmitted: {} frames ({} with no port for their interface, {} refused by a full queue, "
                   "{} too big for an mbuf)\n",
                   r.transmitted, r.tx_no_port, r.tx_failed, r.tx_too_big);
  if (r.handoff_failed != 0)
    s += fmt::format("Handed to another lcore: {} frames lost to a full handoff ring\n", r.handoff_failed);
  return s;
}

}  // namespace nfb
