// DPDK ports as the pipeline's packet source and sink: `nfbench replay
// --dpdk "EAL ARGS"` receives from the ports instead of a file, runs the
// pipeline, and transmits each forwarded frame on the port of its egress
// interface.
//
//   rx_burst (every mapped port, queue 0) -> parse_burst on the mbuf data
//     -> Pipeline::process (NAT rewrites the mbuf in place)
//     -> forwarded: tx_burst on the egress interface's port (per-port
//        buffers, flushed once per round); delivered to the host or
//        dropped: freed.
//
// Ports map to host interfaces: port 0 is eth0 unless `port_map` says
// otherwise (e.g. "0=eth0,1=docker0"). Frames leave with the egress
// interface's MAC as source (the neighbour table is not modelled: the
// destination MAC is zero, as in the file replay's sinks).
//
// Accounting: every frame received is emitted, dropped (pipeline fate) or
// invalid (did not parse, or a multi-segment mbuf, which the parser cannot
// read) -- ReplayReport::balanced(). Emitted frames that could not leave are
// counted apart: tx_no_port (the egress interface has no port),
// tx_failed (the port's queue was full), tx_too_big (a reassembled
// datagram larger than an mbuf).
//
// Stopping: after max_packets frames, after duration_s seconds, or when no
// port has received anything for idle_ms after the first frame (how a pcap
// vdev's end of file shows), whichever comes first.
//
// Lcores: with N shards, lcore i (the calling thread for i = 0, EAL worker
// lcores for the others) polls rx queue i of every port that has one and
// sends on tx queue i, with its own Pipeline: a conntrack shard. Ports get N
// rx queues where the device has them, with RSS on a symmetric Toeplitz key
// (0x6d5a repeated) when it hashes, so both directions of a connection
// whose addresses and ports NAT leaves alone reach the same shard. A NAT'd
// connection's reply has another tuple: it reaches the right shard only if
// the traffic is steered by what NAT does not change (the outside
// endpoint) -- with pcap vdevs, by splitting the capture that way (one
// rx_pcap per queue). Stop conditions are shared; every lcore reports its
// own figures and the sum.
// The EAL is started with exactly the given arguments (start_dpdk_eal_exact).
// The packet path does not allocate from the heap; mbufs come from the
// pool created at start.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "classifier/pipeline.h"
#include "pcap/replay.h"

namespace nfb {

struct DpdkReplayOptions {
  std::vector<std::string> eal_args;  // e.g. {"--no-huge", "--no-pci", "--vdev=net_pcap0,rx_pcap=IN,tx_pcap=OUT"}
  std::string port_map;               // "PORT=IFACE,..."; "" = port 0 is eth0
  uint64_t max_packets = 0;           // 0: no limit
  double duration_s = 0;              // 0: no limit
  uint32_t idle_ms = 200;             // 0: never stop for idleness
  uint32_t mbufs = 8191;              // mbuf pool size (a pcap vdev with infinite_rx=1 holds its whole file)
};

struct DpdkReplayReport {
  ReplayReport replay;       // packets, bytes, verdicts (emitted_written: frames transmitted)
  uint64_t transmitted = 0;  // frames handed to a port's tx queue
  uint64_t tx_no_port = 0;
  uint64_t tx_failed = 0;
  uint64_t tx_too_big = 0;
  std::vector<std::pair<uint16_t, std::string>> ports;  // port -> interface
  std::vector<DpdkReplayReport> per_lcore;              // each lcore's own figures (one entry per shard)
};

/// Parses "0=eth0,1=docker0" against the host; throws std::invalid_argument
/// naming the bad part.
std::vector<std::pair<uint16_t, uint16_t>> parse_port_map(const std::string& text, const HostModel& host);

/// Starts the EAL and the ports, runs until a stop condition, stops the
/// ports. Throws DpdkEalError, std::invalid_argument (no such port, bad
/// map, too few lcores), std::runtime_error (a port did not start).
DpdkReplayReport run_dpdk_replay(Pipeline& pipeline, const HostModel& host, const DpdkReplayOptions& o);
/// The same on shards.size() lcores, lcore i with its own pipeline
/// shards[i] (its conntrack shard) on rx and tx queue i of every port.
DpdkReplayReport run_dpdk_replay(std::span<Pipeline* const> shards, const HostModel& host,
                                 const DpdkReplayOptions& o);

/// The end-of-run block: the replay report and the transmit counters.
std::string format_dpdk_report(const DpdkReplayReport& r);

}  // namespace nfb
