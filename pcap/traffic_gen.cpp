#include "pcap/traffic_gen.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <stdexcept>
#include <variant>

#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/ip_protocol.h"
#include "packet/packet_key.h"
#include "pcap/capture_writer.h"

namespace nfb {

std::vector<PublishedPort> published_ports(const Ruleset& ruleset, const HostModel& host) {
  std::vector<PublishedPort> out;
  const Table* nat = ruleset.find_table(TableId::Nat);
  if (nat == nullptr) return out;
  const auto docker = nat->find_chain("DOCKER");
  if (!docker) return out;
  for (const Rule& r : nat->chains[*docker].rules) {
    const auto* dnat = std::get_if<DnatTarget>(&r.target);
    if (dnat == nullptr || !dnat->range.has_addr || r.protocol_invert) continue;
    if (r.protocol != kProtoTcp && r.protocol != kProtoUdp) continue;
    if (r.dst.mask != 0 && (r.dst.addr >> 24) == 127) continue;  // published on loopback only
    std::optional<uint16_t> dport;
    for (const Match& m : r.matches) {
      if (const auto* t = std::get_if<TcpMatch>(&m); t && !t->dport_invert && t->dport.lo == t->dport.hi) {
        dport = t->dport.lo;
      }
      if (const auto* u = std::get_if<UdpMatch>(&m); u && !u->dport_invert && u->dport.lo == u->dport.hi) {
        dport = u->dport.lo;
      }
    }
    if (!dport) continue;
    PublishedPort p;
    p.proto = r.protocol;
    p.host_port = *dport;
    p.container = dnat->range.addr_lo;
    p.container_port = dnat->range.has_ports ? dnat->range.port_lo : *dport;
    const RouteResult route = host.route(p.container);
    if (!route.found() || route.iface == kNoIface) continue;
    p.bridge = route.iface;
    out.push_back(p);
  }
  return out;
}

namespace {

constexpr uint32_t kClientNet = 0xc6120000U;  // 198.18.0.0/15 (RFC 2544 benchmarking)
constexpr uint32_t kServerNet = 0xc6130000U;  // the upper half of it for servers

struct Endpoint {
  uint32_t addr = 0;
  uint16_t port = 0;
  uint16_t iface = 0;  // where its packets arrive at the host
  std::array<uint8_t, 6> src_mac{};
  std::array<uint8_t, 6> dst_mac{};
};

struct Connection {
  uint8_t proto = 0;
  Endpoint a;       // the opener, as its packets arrive
  Endpoint b;       // the answering side, as its packets arrive
  uint32_t dst_a = 0;  // destination of a's packets (the published address, or the server)
  uint16_t dport_a = 0;
  uint32_t dst_b = 0;  // destination of b's packets (the client, or the host's address)
  uint16_t dport_b = 0;
  uint64_t sent = 0;
  uint32_t seq_a = 0;  // next sequence numbers
  uint32_t seq_b = 0;
  bool outbound = false;
};

class Builder {
 public:
  /// One IPv4 frame: Ethernet, IPv4 (no options), TCP (20 bytes) or UDP,
  /// `payload` bytes of filler, correct checksums.
  const std::vector<uint8_t>& frame(const std::array<uint8_t, 6>& dst_mac, const std::array<uint8_t, 6>& src_mac,
                                    uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport,
                                    uint32_t seq, uint32_t ack, uint8_t flags, uint32_t payload, uint16_t ip_id) {
    const uint32_t l4_header = proto == kProtoTcp ? 20 : 8;
    const uint32_t l4_len = l4_header + payload;
    const uint32_t ip_len = 20 + l4_len;
    buf_.assign(14 + std::max<uint32_t>(ip_len, 46), 0);
    uint8_t* p = buf_.data();
    std::copy(dst_mac.begin(), dst_mac.end(), p);
    std::copy(src_mac.begin(), src_mac.end(), p + 6);
    store_be16(p + 12, 0x0800);
    uint8_t* ip = p + 14;
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(ip_len));
    store_be16(ip + 4, ip_id);
    store_be16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = proto;
    store_be32(ip + 12, src);
    store_be32(ip + 16, dst);
    store_be16(ip + 10, internet_checksum(ip, 20));
    uint8_t* l4 = ip + 20;
    store_be16(l4, sport);
    store_be16(l4 + 2, dport);
    for (uint32_t i = 0; i < payload; ++i) l4[l4_header + i] = static_cast<uint8_t>('a' + i % 26);
    const uint64_t pseudo = ipv4_pseudo_header_sum(src, dst, proto, l4_len);
    if (proto == kProtoTcp) {
      store_be32(l4 + 4, seq);
      store_be32(l4 + 8, ack);
      l4[12] = 0x50;
      l4[13] = flags;
      store_be16(l4 + 14, 64240);
      store_be16(l4 + 16, internet_checksum(l4, l4_len, pseudo));
    } else {
      store_be16(l4 + 4, static_cast<uint16_t>(l4_len));
      uint16_t sum = internet_checksum(l4, l4_len, pseudo);
      store_be16(l4 + 6, sum == 0 ? 0xffff : sum);
    }
    return buf_;
  }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace

TrafficSummary generate_traffic(const Ruleset& ruleset, const HostModel& host, const TrafficSpec& spec,
                                const std::string& path) {
  if (spec.flows == 0) throw std::invalid_argument("gen traffic: --flows must be at least 1");
  if (!(spec.new_share > 0 && spec.new_share <= 1)) {
    throw std::invalid_argument(fmt::format("gen traffic: --new-share {} is not in (0, 1]", spec.new_share));
  }
  if (!(spec.zipf_s >= 0)) throw std::invalid_argument("gen traffic: the Zipf exponent must be >= 0");
  const std::vector<PublishedPort> published = published_ports(ruleset, host);
  // Containers: every DNAT target, with its bridge.
  std::vector<std::pair<uint32_t, uint16_t>> containers;
  for (const PublishedPort& p : published) {
    if (std::find(containers.begin(), containers.end(), std::pair{p.container, p.bridge}) == containers.end()) {
      containers.emplace_back(p.container, p.bridge);
    }
  }
  if (containers.empty()) {
    throw std::invalid_argument("gen traffic: the ruleset publishes no port (no DNAT rule in nat DOCKER with "
                                "-p, --dport and --to-destination): no container to talk to");
  }
  const RouteResult out_route = host.route(0x08080808U);
  if (!out_route.found() || out_route.iface == kNoIface) {
    throw std::invalid_argument("gen traffic: the host has no default route (no external interface)");
  }
  const uint16_t external = out_route.iface;
  const std::optional<uint32_t> host_addr = host.primary_address(external);
  if (!host_addr) {
    throw std::invalid_argument(
        fmt::format("gen traffic: interface {} has no global address", host.iface(external).name));
  }
  const auto mac_of = [&host](uint16_t id) {
    const Interface& i = host.iface(id);
    return i.has_mac ? i.mac : std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, static_cast<uint8_t>(id)};
  };
  const std::array<uint8_t, 6> router_mac{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01};

  PcapngWriter writer(path);
  std::vector<uint32_t> file_iface(host.iface_count(), UINT32_MAX);
  const auto iface_index = [&](uint16_t id) {
    if (file_iface[id] == UINT32_MAX) file_iface[id] = writer.add_interface(host.iface(id).name, 1);
    return file_iface[id];
  };

  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // Zipf over slots: cumulative weights.
  std::vector<double> cdf(spec.flows);
  double total = 0;
  for (uint32_t k = 0; k < spec.flows; ++k) {
    total += 1.0 / std::pow(static_cast<double>(k + 1), spec.zipf_s);
    cdf[k] = total;
  }
  // Which packets open a connection: exactly round(S x M) of them (at least
  // one), the first packet and the rest drawn uniformly without replacement
  // (selection sampling: packet i opens one with probability r / (M - i),
  // r the openers still to place). A connection lasts until its slot opens
  // the next one.
  const uint64_t openers =
      spec.new_share >= 1 ? spec.packets
                          : std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(spec.new_share * static_cast<double>(spec.packets))));
  uint64_t openers_left = std::min(openers, spec.packets);
  // Ephemeral source ports of outbound connections, one pool for every
  // container (they all leave with the host's address), never reused while
  // open, so MASQUERADE keeps each.
  std::vector<uint8_t> port_busy(65536, 0);
  uint32_t port_next = 32768;

  TrafficSummary sum;
  std::vector<Connection> slots(spec.flows);
  std::vector<uint32_t> open_slots;  // slots holding a connection
  open_slots.reserve(spec.flows);
  std::vector<uint8_t> is_open(spec.flows, 0);
  Builder builder;
  uint16_t ip_id = 1;
  const auto open = [&](Connection& c) {
    c = Connection{};
    const bool inbound = !published.empty() && unit(rng) < spec.inbound_share;
    if (inbound) {
      const PublishedPort& p = published[rng() % published.size()];
      c.proto = p.proto;
      const uint32_t client = kClientNet | static_cast<uint32_t>(rng() % 0xfffe + 1);
      const auto cport = static_cast<uint16_t>(1024 + rng() % 64000);
      c.a = Endpoint{client, cport, external, router_mac, mac_of(external)};
      c.dst_a = *host_addr;
      c.dport_a = p.host_port;
      c.b = Endpoint{p.container, p.container_port, p.bridge, std::array<uint8_t, 6>{0x02, 0x42, 0xac, 0, 0, 2},
                     mac_of(p.bridge)};
      c.dst_b = client;
      c.dport_b = cport;
      ++sum.inbound;
    } else {
      const size_t ci = rng() % containers.size();
      const auto [caddr, bridge] = containers[ci];
      uint32_t port = port_next;
      for (uint32_t tries = 0; port_busy[port] != 0 && tries < 28232; ++tries) port = port + 1 > 60999 ? 32768 : port + 1;
      port_busy[port] = 1;
      port_next = port + 1 > 60999 ? 32768 : port + 1;
      c.outbound = true;
      c.proto = unit(rng) < 0.8 ? kProtoTcp : kProtoUdp;
      const uint32_t server = kServerNet | static_cast<uint32_t>(rng() % 0xfffe + 1);
      const uint16_t sport_server = c.proto == kProtoTcp ? 443 : 53;
      c.a = Endpoint{caddr, static_cast<uint16_t>(port), bridge, std::array<uint8_t, 6>{0x02, 0x42, 0xac, 0, 0, 2},
                     mac_of(bridge)};
      c.dst_a = server;
      c.dport_a = sport_server;
      c.b = Endpoint{server, sport_server, external, router_mac, mac_of(external)};
      c.dst_b = *host_addr;
      c.dport_b = static_cast<uint16_t>(port);
    }
    c.seq_a = static_cast<uint32_t>(rng());
    c.seq_b = static_cast<uint32_t>(rng());
    ++sum.connections;
  };
  const auto close = [&](Connection& c) {
    if (c.outbound) port_busy[c.dport_b] = 0;
  };
  const auto data_payload = [&](uint8_t proto) -> uint32_t {
    const uint32_t header = 14 + 20 + (proto == kProtoTcp ? 20U : 8U);
    const uint32_t pick = static_cast<uint32_t>(rng() % 12);
    const uint32_t frame = pick < 7 ? 60 : pick < 11 ? 590 : 1514;
    return frame > header ? frame - header : 0;
  };

  uint64_t ts = spec.start_ns;
  for (uint64_t i = 0; i < spec.packets; ++i) {
    const double u = unit(rng) * total;
    auto k = std::min<size_t>(static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()),
                              slots.size() - 1);
    const bool opener = openers_left != 0 && (i == 0 || rng() % (spec.packets - i) < openers_left);
    if (opener) {
      --openers_left;
      if (is_open[k] != 0) {
        close(slots[k]);
      } else {
        is_open[k] = 1;
        open_slots.push_back(static_cast<uint32_t>(k));
      }
      open(slots[k]);
    } else if (is_open[k] == 0) {
      k = open_slots[rng() % open_slots.size()];  // a packet of a connection that is open
    }
    Connection& c = slots[k];
    // Which side sends, and what.
    bool from_a = true;
    uint8_t flags = 0;
    uint32_t payload = 0;
    if (c.proto == kProtoTcp) {
      if (c.sent == 0) {
        flags = tcp_flag::kSyn;
      } else if (c.sent == 1) {
        from_a = false;
        flags = tcp_flag::kSyn | tcp_flag::kAck;
      } else if (c.sent == 2) {
        flags = tcp_flag::kAck;
      } else {
        from_a = (c.sent % 2) == 1;  // request, answer, ...
        flags = tcp_flag::kAck | tcp_flag::kPsh;
        payload = data_payload(c.proto);
      }
    } else {
      from_a = (c.sent % 2) == 0;
      payload = std::max<uint32_t>(data_payload(c.proto), 12);
    }
    const Endpoint& src = from_a ? c.a : c.b;
    const uint32_t dst = from_a ? c.dst_a : c.dst_b;
    const uint16_t dport = from_a ? c.dport_a : c.dport_b;
    uint32_t& seq = from_a ? c.seq_a : c.seq_b;
    const uint32_t ack = (flags & tcp_flag::kAck) != 0 ? (from_a ? c.seq_b : c.seq_a) : 0;
    const std::vector<uint8_t>& f = builder.frame(src.dst_mac, src.src_mac, src.addr, dst, c.proto, src.port, dport,
                                                  seq, ack, flags, payload, ip_id++);
    seq += payload + ((flags & tcp_flag::kSyn) != 0 ? 1U : 0U);
    writer.write(iface_index(src.iface), ts, f, static_cast<uint32_t>(f.size()));
    ts += spec.gap_ns;
    ++sum.packets;
    sum.bytes += f.size();
    ++c.sent;
  }
  writer.close();
  return sum;
}

}  // namespace nfb
