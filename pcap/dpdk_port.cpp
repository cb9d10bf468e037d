#include "pcap/dpdk_port.h"

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "classifier/dpdk_eal.h"

namespace nfb {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint32_t kPoolCache = 256;

uint8_t* mbuf_data(rte_mbuf* m) noexcept { return static_cast<uint8_t*>(m->buf_addr) + m->data_off; }

struct Port {
  uint16_t port = 0;
  uint16_t iface = 0;
  std::array<rte_mbuf*, kBurst> tx{};
  uint16_t tx_count = 0;
};

void start_port(uint16_t port, rte_mempool* pool) {
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof conf);
  int rc = rte_eth_dev_configure(port, 1, 1, &conf);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: configure failed: {}", port, rte_strerror(-rc)));
  uint16_t rxd = 1024, txd = 1024;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: descriptors: {}", port, rte_strerror(-rc)));
  const int socket = rte_eth_dev_socket_id(port);
  const auto sock = static_cast<unsigned>(socket < 0 ? 0 : socket);
  rc = rte_eth_rx_queue_setup(port, 0, rxd, sock, nullptr, pool);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: rx queue: {}", port, rte_strerror(-rc)));
  rc = rte_eth_tx_queue_setup(port, 0, txd, sock, nullptr);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: tx queue: {}", port, rte_strerror(-rc)));
  rc = rte_eth_dev_start(port);
  if (rc != 0) throw std::runtime_error(fmt::format("DPDK port {}: start failed: {}", port, rte_strerror(-rc)));
  (void)rte_eth_promiscuous_enable(port);  // vdevs may not support it: not needed for them
}

}  // namespace

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

DpdkReplayReport run_dpdk_replay(Pipeline& pipeline, const HostModel& host, const DpdkReplayOptions& o) {
  const auto map = parse_port_map(o.port_map, host);
  start_dpdk_eal_exact(o.eal_args);
  for (const auto& [port, iface] : map) {
    if (rte_eth_dev_is_valid_port(port) == 0) {
      throw std::invalid_argument(fmt::format("--port-map: DPDK has no port {} ({} available; vdevs come from --vdev)",
                                              port, rte_eth_dev_count_avail()));
    }
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("nfb_replay", o.mbufs, kPoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) throw std::runtime_error(fmt::format("DPDK mbuf pool: {}", rte_strerror(rte_errno)));

  DpdkReplayReport out;
  std::vector<Port> ports;
  std::vector<int32_t> port_of_iface(host.iface_count(), -1);
  for (const auto& [port, iface] : map) {
    start_port(port, pool);
    port_of_iface[iface] = static_cast<int32_t>(ports.size());
    ports.push_back(Port{port, iface, {}, 0});
    out.ports.emplace_back(port, host.iface(iface).name);
  }

  ReplayReport& r = out.replay;
  std::array<rte_mbuf*, kBurst> rx{};
  std::array<FrameRef, kBurst> refs;
  std::array<PacketKey, kBurst> keys;
  std::array<ParseStatus, kBurst> status;
  std::array<PacketIn, kBurst> in;
  std::array<PacketOut, kBurst> res;
  std::array<rte_mbuf*, kBurst> in_mbuf{};
  const PipelineStats before = pipeline.stats();
  const uint64_t confirmed_before = pipeline.conntrack().counters().inserted;

  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t t0 = rte_get_tsc_cycles();
  const uint64_t wall0 = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  const uint64_t idle_cycles = hz / 1000 * o.idle_ms;
  const auto max_cycles = static_cast<uint64_t>(o.duration_s * static_cast<double>(hz));
  uint64_t last_rx = t0;
  bool any = false;
  const auto now_ns = [&](uint64_t tsc) {
    const uint64_t d = tsc - t0;
    return wall0 + d / hz * 1'000'000'000ULL + d % hz * 1'000'000'000ULL / hz;
  };
  const auto flush = [&](Port& p) {
    if (p.tx_count == 0) return;
    const uint16_t sent = rte_eth_tx_burst(p.port, 0, p.tx.data(), p.tx_count);
    out.transmitted += sent;
    for (uint16_t i = sent; i < p.tx_count; ++i) rte_pktmbuf_free(p.tx[i]);
    out.tx_failed += p.tx_count - sent;
    p.tx_count = 0;
  };

  for (bool running = true; running;) {
    for (Port& src : ports) {
      const uint16_t n = rte_eth_rx_burst(src.port, 0, rx.data(), kBurst);
      const uint64_t tsc = rte_get_tsc_cycles();
      if (n == 0) {
        if (any && o.idle_ms != 0 && tsc - last_rx > idle_cycles) running = false;
        if (max_cycles != 0 && tsc - t0 > max_cycles) running = false;
        continue;
      }
      any = true;
      last_rx = tsc;
      const uint64_t ts = now_ns(tsc);
      if (r.packets == 0) r.first_ts_ns = ts;
      r.last_ts_ns = ts;
      for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = rx[i];
        r.bytes += m->pkt_len;
        r.l1_bytes += uint64_t{std::max<uint32_t>(m->pkt_len, 60)} + 24;
        // A chained mbuf cannot be parsed in place: an empty frame makes it
        // invalid (truncated_l2) rather than lost.
        refs[i] = FrameRef{mbuf_data(m), m->nb_segs == 1 ? m->data_len : 0U, src.iface, LinkType::Ethernet};
      }
      r.packets += n;
      parse_burst(std::span(refs.data(), n), keys, status, r.parse);
      size_t k = 0;
      for (uint16_t i = 0; i < n; ++i) {
        if (status[i] != ParseStatus::Ok) {
          rte_pktmbuf_free(rx[i]);
          continue;
        }
        in[k] = PacketIn{keys[i], mbuf_data(rx[i]), refs[i].len, src.iface, ts};
        in_mbuf[k++] = rx[i];
      }
      pipeline.process(std::span(in.data(), k), std::span(res.data(), k));
      for (size_t j = 0; j < k; ++j) {
        rte_mbuf* m = in_mbuf[j];
        if (res[j].fate != Fate::Forwarded || in[j].frame == nullptr) {
          rte_pktmbuf_free(m);
          continue;
        }
        const int32_t pi = port_of_iface[res[j].out_iface];
        if (pi < 0) {
          ++out.tx_no_port;
          rte_pktmbuf_free(m);
          continue;
        }
        if (in[j].frame != mbuf_data(m)) {
          // A reassembled datagram: its bytes live in the pipeline's buffer.
          if (in[j].len + uint32_t{RTE_PKTMBUF_HEADROOM} > uint32_t{m->buf_len}) {
            ++out.tx_too_big;
            rte_pktmbuf_free(m);
            continue;
          }
          m->data_off = RTE_PKTMBUF_HEADROOM;
          std::memcpy(mbuf_data(m), in[j].frame, in[j].len);
          m->data_len = static_cast<uint16_t>(in[j].len);
          m->pkt_len = in[j].len;
        }
        uint8_t* f = mbuf_data(m);
        const Interface& ifc = host.iface(res[j].out_iface);
        if (m->data_len >= 12) {
          std::memset(f, 0, 6);
          if (ifc.has_mac) std::memcpy(f + 6, ifc.mac.data(), 6);
        }
        Port& dst = ports[static_cast<size_t>(pi)];
        dst.tx[dst.tx_count++] = m;
        if (dst.tx_count == kBurst) flush(dst);
      }
      if (o.max_packets != 0 && r.packets >= o.max_packets) running = false;
    }
    for (Port& p : ports) flush(p);
  }
  const uint64_t t1 = rte_get_tsc_cycles();
  r.seconds = static_cast<double>(t1 - t0) / static_cast<double>(hz);
  // Time spent waiting for the idle timeout is not replay time.
  if (any && o.idle_ms != 0 && t1 - last_rx >= idle_cycles) {
    r.seconds = static_cast<double>(last_rx - t0) / static_cast<double>(hz);
  }
  r.loops = 1;
  const PipelineStats& st = pipeline.stats();
  r.pipeline = st;
  for (size_t f = 0; f < kFateCount; ++f) {
    r.pipeline.by_fate[f] -= before.by_fate[f];
    (fate_emitted(static_cast<Fate>(f)) ? r.emitted : r.dropped) += r.pipeline.by_fate[f];
  }
  r.pipeline.fast_path_packets -= before.fast_path_packets;
  r.pipeline.walked_packets -= before.walked_packets;
  r.pipeline.rules_tested -= before.rules_tested;
  r.invalid = r.parse.rejected();
  r.flows = pipeline.conntrack().counters().inserted - confirmed_before;
  r.emitted_written = out.transmitted;
  for (const Port& p : ports) {
    (void)rte_eth_dev_stop(p.port);
    (void)rte_eth_dev_close(p.port);
  }
  return out;
}

std::string format_dpdk_report(const DpdkReplayReport& r) {
  std::string s = format_replay_report(r.replay);
  s += "Ports:";
  for (const auto& [port, name] : r.ports) s += fmt::format(" {}={}", port, name);
  s += fmt::format("\nTransmitted: {} frames ({} with no port for their interface, {} refused by a full queue, "
                   "{} too big for an mbuf)\n",
                   r.transmitted, r.tx_no_port, r.tx_failed, r.tx_too_big);
  return s;
}

}  // namespace nfb
