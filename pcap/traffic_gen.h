// Traffic for a Docker host: connections that exercise a ruleset's published
// ports and its containers' way out, in both directions, as a pcapng whose
// interfaces are named after the host's (so `nfbench replay` knows where each
// frame came in).
//
// What is generated, from the ruleset and the host model:
//   inbound   a client on the internet (198.18.0.0/15, the benchmarking
//             range) opens a connection to a published port -- each DNAT
//             rule of nat's DOCKER chain with a protocol, a --dport and a
//             --to-destination ADDR:PORT, except ones for 127.0.0.0/8 --
//             arriving on the external interface (the one of the default
//             route) for its primary address; the container answers from
//             ADDR:PORT on its bridge.
//   outbound  a container (a DNAT target) opens a connection to a server on
//             the internet (TCP 443 or UDP 53) from its bridge; the server
//             answers on the external interface to the host's address and
//             the container's source port (what MASQUERADE keeps when it is
//             free: the generator never reuses a port while it is open).
// TCP connections follow the handshake (SYN, SYN-ACK, ACK) and then data in
// both directions with consistent sequence and acknowledgement numbers, so
// conntrack's window tracking accepts every packet; UDP alternates request
// and answer. Checksums are correct.
//
// Shape:
//   - exactly round(new_share x packets) packets open a connection (at
//     least one: the first), chosen uniformly at random among the packets
//     (selection sampling); new_share 1: every packet is a connection's
//     first;
//   - up to `flows` connection slots are open at any time; each packet picks
//     a slot with Zipf(s) popularity (slot k with weight 1 / k^s); an opening
//     packet starts a new connection in its slot (the slot's previous one
//     just stops, as a client that goes quiet), any other packet belongs to
//     its slot's connection, or to a random open one while its slot has none
//     yet;
//   - data frames take sizes from a simple IMIX (7 : 4 : 1 of 60, 590 and
//     1514 bytes without FCS); handshakes are minimum-size frames;
//   - timestamps start at a fixed instant and advance by `gap_ns`.
// Deterministic: the same spec, ruleset and host give the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "netfilter/host.h"
#include "rules/rule.h"

namespace nfb {

struct TrafficSpec {
  uint32_t flows = 1000;      // connection slots open at any time (>= 1)
  uint64_t packets = 100000;  // frames to write
  double new_share = 0.01;    // share of packets that open a connection, (0, 1]
  uint64_t seed = 1;
  double zipf_s = 1.0;        // slot popularity exponent (0: uniform)
  double inbound_share = 0.6; // share of connections to published ports (when there are some)
  uint64_t start_ns = 1'767'225'600'000'000'000ULL;  // 2026-01-01T00:00:00Z
  uint64_t gap_ns = 1000;
};

/// A published port as the generator uses it.
struct PublishedPort {
  uint8_t proto = 0;            // kProtoTcp or kProtoUdp
  uint16_t host_port = 0;
  uint32_t container = 0;       // host order
  uint16_t container_port = 0;
  uint16_t bridge = 0;          // host interface id of the container's network
};

/// The published ports of `ruleset` (nat DOCKER chain, see the top comment).
std::vector<PublishedPort> published_ports(const Ruleset& ruleset, const HostModel& host);

struct TrafficSummary {
  uint64_t packets = 0;
  uint64_t connections = 0;     // connections opened (their first packet written)
  uint64_t inbound = 0;         // ... of them to published ports
  uint64_t bytes = 0;
};

/// Writes the traffic to `path` (pcapng). Throws std::invalid_argument for a
/// bad spec or a ruleset/host with nothing to generate (no published port
/// and no container), LoadError when the file cannot be written.
TrafficSummary generate_traffic(const Ruleset& ruleset, const HostModel& host, const TrafficSpec& spec,
                                const std::string& path);

}  // namespace nfb
