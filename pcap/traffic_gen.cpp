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

/// The generator: the host's endpoints fixed at construction, then one
/// packet at a time (run()): pick a slot (Zipf), maybe open a connection in
/// it, send that connection's next packet.
class TrafficGenerator {
 public:
  /// Checks the spec and the host (std::invalid_argument) before the
  /// capture file is created.
  TrafficGenerator(const Ruleset& ruleset, const HostModel& host, const TrafficSpec& spec, const std::string& path)
      : host_(host),
        spec_(checked(spec)),
        published_(published_ports(ruleset, host)),
        containers_(containers_of(published_)),
        external_(external_iface(host)),
        host_addr_(address_of(host, external_)),
        writer_(path),
        rng_(spec.seed) {
    file_iface_.assign(host.iface_count(), UINT32_MAX);
    // Zipf over slots: cumulative weights.
    cdf_.resize(spec.flows);
    for (uint32_t k = 0; k < spec.flows; ++k) {
      total_ += 1.0 / std::pow(static_cast<double>(k + 1), spec.zipf_s);
      cdf_[k] = total_;
    }
    slots_.resize(spec.flows);
    is_open_.assign(spec.flows, 0);
    open_slots_.reserve(spec.flows);
  }

  static const TrafficSpec& checked(const TrafficSpec& spec) {
    if (spec.flows == 0) throw std::invalid_argument("gen traffic: --flows must be at least 1");
    if (!(spec.new_share > 0 && spec.new_share <= 1)) {
      throw std::invalid_argument(fmt::format("gen traffic: --new-share {} is not in (0, 1]", spec.new_share));
    }
    if (!(spec.zipf_s >= 0)) throw std::invalid_argument("gen traffic: the Zipf exponent must be >= 0");
    return spec;
  }
  /// Containers: every DNAT target, with its bridge.
  static std::vector<std::pair<uint32_t, uint16_t>> containers_of(const std::vector<PublishedPort>& published) {
    std::vector<std::pair<uint32_t, uint16_t>> out;
    for (const PublishedPort& pp : published) {
      if (std::find(out.begin(), out.end(), std::pair{pp.container, pp.bridge}) == out.end()) {
        out.emplace_back(pp.container, pp.bridge);
      }
    }
    if (out.empty()) {
      throw std::invalid_argument("gen traffic: the ruleset publishes no port (no DNAT rule in nat DOCKER with "
                                  "-p, --dport and --to-destination): no container to talk to");
    }
    return out;
  }
  static uint16_t external_iface(const HostModel& host) {
    const RouteResult out_route = host.route(0x08080808U);
    if (!out_route.found() || out_route.iface == kNoIface) {
      throw std::invalid_argument("gen traffic: the host has no default route (no external interface)");
    }
    return out_route.iface;
  }
  static uint32_t address_of(const HostModel& host, uint16_t external) {
    const std::optional<uint32_t> addr = host.primary_address(external);
    if (!addr) {
      throw std::invalid_argument(
          fmt::format("gen traffic: interface {} has no global address", host.iface(external).name));
    }
    return *addr;
  }

  TrafficSummary run() {
    // Which packets open a connection: exactly round(S x M) of them (at
    // least one), the first packet and the rest drawn uniformly without
    // replacement (selection sampling: packet i opens one with probability
    // r / (M - i), r the openers still to place). A connection lasts until
    // its slot opens the next one.
    const uint64_t openers =
        spec_.new_share >= 1
            ? spec_.packets
            : std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(spec_.new_share * static_cast<double>(spec_.packets))));
    uint64_t openers_left = std::min(openers, spec_.packets);
    uint64_t ts = spec_.start_ns;
    for (uint64_t i = 0; i < spec_.packets; ++i) {
      const double u = unit_(rng_) * total_;
      auto k = std::min<size_t>(static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin()),
                                slots_.size() - 1);
      const bool opener = openers_left != 0 && (i == 0 || rng_() % (spec_.packets - i) < openers_left);
      if (opener) {
        --openers_left;
        if (is_open_[k] != 0) {
          close(slots_[k]);
        } else {
          is_open_[k] = 1;
          open_slots_.push_back(static_cast<uint32_t>(k));
        }
        open(slots_[k]);
      } else if (is_open_[k] == 0) {
        k = open_slots_[rng_() % open_slots_.size()];  // a packet of a connection that is open
      }
      send(slots_[k], ts);
      ts += spec_.gap_ns;
    }
    writer_.close();
    return sum_;
  }

 private:
  std::array<uint8_t, 6> mac_of(uint16_t id) const {
    const Interface& i = host_.iface(id);
    return i.has_mac ? i.mac : std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, static_cast<uint8_t>(id)};
  }
  uint32_t iface_index(uint16_t id) {
    if (file_iface_[id] == UINT32_MAX) file_iface_[id] = writer_.add_interface(host_.iface(id).name, 1);
    return file_iface_[id];
  }

  /// A new connection in `c`: inbound to a published port (share
  /// inbound_share), else outbound from a container through MASQUERADE.
  void open(Connection& c) {
    static constexpr std::array<uint8_t, 6> kRouterMac{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01};
    static constexpr std::array<uint8_t, 6> kContainerMac{0x02, 0x42, 0xac, 0, 0, 2};
    c = Connection{};
    const bool inbound = !published_.empty() && unit_(rng_) < spec_.inbound_share;
    if (inbound) {
      const PublishedPort& p = published_[rng_() % published_.size()];
      c.proto = p.proto;
      const uint32_t client = kClientNet | static_cast<uint32_t>(rng_() % 0xfffe + 1);
      const auto cport = static_cast<uint16_t>(1024 + rng_() % 64000);
      c.a = Endpoint{client, cport, external_, kRouterMac, mac_of(external_)};
      c.dst_a = host_addr_;
      c.dport_a = p.host_port;
      c.b = Endpoint{p.container, p.container_port, p.bridge, kContainerMac, mac_of(p.bridge)};
      c.dst_b = client;
      c.dport_b = cport;
      ++sum_.inbound;
    } else {
      const size_t ci = rng_() % containers_.size();
      const auto [caddr, bridge] = containers_[ci];
      const uint16_t port = take_port();
      c.outbound = true;
      c.proto = unit_(rng_) < 0.8 ? kProtoTcp : kProtoUdp;
      const uint32_t server = kServerNet | static_cast<uint32_t>(rng_() % 0xfffe + 1);
      const uint16_t sport_server = c.proto == kProtoTcp ? 443 : 53;
      c.a = Endpoint{caddr, port, bridge, kContainerMac, mac_of(bridge)};
      c.dst_a = server;
      c.dport_a = sport_server;
      c.b = Endpoint{server, sport_server, external_, kRouterMac, mac_of(external_)};
      c.dst_b = host_addr_;
      c.dport_b = port;
    }
    c.seq_a = static_cast<uint32_t>(rng_());
    c.seq_b = static_cast<uint32_t>(rng_());
    ++sum_.connections;
  }
  void close(const Connection& c) {
    if (c.outbound) port_busy_[c.dport_b] = 0;
  }
  /// Ephemeral source ports of outbound connections, one pool for every
  /// container (they all leave with the host's address), never reused
  /// while open, so MASQUERADE keeps each.
  uint16_t take_port() {
    uint32_t port = port_next_;
    for (uint32_t tries = 0; port_busy_[port] != 0 && tries < 28232; ++tries) port = port + 1 > 60999 ? 32768 : port + 1;
    port_busy_[port] = 1;
    port_next_ = port + 1 > 60999 ? 32768 : port + 1;
    return static_cast<uint16_t>(port);
  }
  /// Payload bytes of a data packet: frames of 60, 590 or 1514 bytes (7:4:1).
  uint32_t data_payload(uint8_t proto) {
    const uint32_t header = 14 + 20 + (proto == kProtoTcp ? 20U : 8U);
    const uint32_t pick = static_cast<uint32_t>(rng_() % 12);
    const uint32_t frame = pick < 7 ? 60 : pick < 11 ? 590 : 1514;
    return frame > header ? frame - header : 0;
  }

  /// The connection's next packet: TCP's handshake then request/answer
  /// data; UDP request/answer.
  void send(Connection& c, uint64_t ts) {
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
    const std::vector<uint8_t>& f = builder_.frame(src.dst_mac, src.src_mac, src.addr, dst, c.proto, src.port, dport,
                                                   seq, ack, flags, payload, ip_id_++);
    seq += payload + ((flags & tcp_flag::kSyn) != 0 ? 1U : 0U);
    writer_.write(iface_index(src.iface), ts, f, static_cast<uint32_t>(f.size()));
    ++sum_.packets;
    sum_.bytes += f.size();
    ++c.sent;
  }

  const HostModel& host_;
  const TrafficSpec& spec_;
  std::vector<PublishedPort> published_;
  std::vector<std::pair<uint32_t, uint16_t>> containers_;
  uint16_t external_ = 0;
  uint32_t host_addr_ = 0;
  PcapngWriter writer_;
  std::vector<uint32_t> file_iface_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::vector<double> cdf_;
  double total_ = 0;
  std::vector<uint8_t> port_busy_ = std::vector<uint8_t>(65536, 0);
  uint32_t port_next_ = 32768;
  TrafficSummary sum_;
  std::vector<Connection> slots_;
  std::vector<uint32_t> open_slots_;  // slots holding a connection
  std::vector<uint8_t> is_open_;
  Builder builder_;
  uint16_t ip_id_ = 1;
};

}  // namespace

TrafficSummary generate_traffic(const Ruleset& ruleset, const HostModel& host, const TrafficSpec& spec,
                                const std::string& path) {
  return TrafficGenerator(ruleset, host, spec, path).run();
}

}  // namespace nfb
