// DPDK ports as the pipeline's packet source and sink: `nfbench replay
// --dpdk "EAL ARGS"` receives from the ports instead of a file, runs the
// pipeline, and transmits each forwarded frame on the port of its egress
// interface. Each lcore runs the burst loop (burst_loop.h) from its rx side
// (DpdkRxSource in dpdk_port.cpp: its queue of every port, then its handoff
// ring; the steering) to its tx side (DpdkTxSink: per-port tx buffers):
//
//   rx_burst (every mapped port, the lcore's queue; its handoff ring)
//     -> parse on the mbuf data -> the flow's lcore: this one, or handed
//        over (rte_ring) to the one that owns it
//     -> Pipeline::process (NAT rewrites the mbuf in place; the mbuf's RX
//        checksum flags: GOOD is trusted, BAD and UNKNOWN/NONE are checked
//        in software -- or UNKNOWN/NONE trusted with --rx-csum trust)
//     -> forwarded: tx_burst on the egress interface's port (per-port
//        buffers, flushed when full and at the end of every round);
//        delivered to the host or dropped: freed.
//
// Ports map to host interfaces: port 0 is eth0 unless `port_map` says
// otherwise (e.g. "0=eth0,1=docker0"). Frames leave with the egress
// interface's MAC as source (the neighbour table is not modelled: the
// destination MAC is zero, as in the file replay's sinks). The ring source
// (DpdkReplayOptions::ring_from) is one more port whose frames each carry
// their own ingress interface, and through which every interface the port
// map leaves out sends.
//
// Accounting: every frame received is emitted, dropped (pipeline fate, or
// still waiting for another lcore's full handoff ring when the run stopped)
// or invalid (did not parse, or a multi-segment
// mbuf, which the parser cannot read) -- ReplayReport::balanced(). A frame
// handed to another lcore is counted there. Emitted frames that could not
// leave are counted apart: tx_no_port (the egress interface has no port),
// tx_failed (the port's queue was full), tx_too_big (a reassembled
// datagram larger than an mbuf).
//
// Stopping: after max_packets frames, after duration_s seconds, or when no
// port has received anything for idle_ms after the first frame (how a pcap
// vdev's end of file shows), whichever comes first. Every lcore keeps its
// own counters and publishes them to lcore 0 every 64 rounds and when idle
// (plain stores to its own cache line); lcore 0 decides and raises a stop
// flag the others read: no atomic read-modify-write is shared per burst, and
// a stop lands within about 64 rounds.
//
// Lcores: with N shards, lcore i (the calling thread for i = 0, EAL worker
// lcores for the others) polls rx queue i of every port that has one and
// sends on tx queue i, with its own Pipeline: a conntrack shard. Both
// directions of a connection must reach the same shard, and NAT gives the
// reply another tuple, so flows are steered by the endpoint NAT leaves alone
// (steer_lcore): the remote end, which is the source of what arrives on the
// outside interface and the destination of what arrives on a bridge. A NIC
// with per-port RSS on those fields (L3/L4 SRC_ONLY outside, DST_ONLY on
// bridges) would place every packet right; the ring source does exactly
// that. Devices without it (pcap vdevs, a NIC whose RSS hashes the whole
// tuple) get a software handoff: a packet that lands on another lcore's
// queue is passed to it over that lcore's rte_ring; while that ring is full
// the lcore stops taking new packets from its queues (back-pressure, as a
// NIC queue that is not polled) and keeps serving its own ring. Flows between two
// bridges, or rewritten at both ends, are not steered right (their two
// directions may land on two shards). Every lcore reports its own figures
// and the sum.
// The EAL is started with exactly the given arguments (start_dpdk_eal_exact).
// The packet path does not allocate from the heap; mbufs come from the
// pool created at start.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "netfilter/pipeline.h"
#include "packet/packet_key.h"
#include "pcap/replay.h"

namespace nfb {

/// The lcore (of `lcores`) that owns a packet's flow: a hash of the endpoint
/// NAT leaves alone -- the source on the outside interface (`outside`), the
/// destination on a bridge; an ICMP error's quoted destination -- so both
/// directions of a DNATed or MASQUERADEd connection land on one lcore, with
/// its conntrack shard.
uint16_t steer_lcore(const PacketKey& key, bool outside, uint16_t lcores) noexcept;

struct DpdkReplayOptions {
  std::vector<std::string> eal_args;  // e.g. {"--no-huge", "--no-pci", "--vdev=net_pcap0,rx_pcap=IN,tx_pcap=OUT"}
  std::string port_map;               // "PORT=IFACE,..."; "" = port 0 is eth0
  uint64_t max_packets = 0;           // 0: no limit
  double duration_s = 0;              // 0: no limit
  uint32_t idle_ms = 200;             // 0: never stop for idleness
  uint32_t mbufs = 8191;              // mbuf pool size (a pcap vdev with infinite_rx=1 holds its whole file)
  /// The ring source: a capture, preloaded, fed into a net_ring port by a
  /// feeder lcore (the EAL's next lcore after the workers): frames copied
  /// into mbufs that carry their capture interface as ingress, put on the rx
  /// ring of the lcore that owns their flow (steer_lcore: what per-port RSS
  /// on that endpoint would do), forwarded frames taken back off the tx rings
  /// and freed. Measures the port path without libpcap. "" = none.
  std::string ring_from;
  uint32_t ring_loops = 1;            // times the feeder sends the capture
  std::string ring_iface = "eth0";    // ingress of frames whose capture interface has no name
};

struct DpdkReplayReport {
  ReplayReport replay;       // packets, bytes, verdicts (emitted_written: frames transmitted)
  uint64_t transmitted = 0;  // frames handed to a port's tx queue
  uint64_t tx_no_port = 0;
  uint64_t tx_failed = 0;
  uint64_t tx_too_big = 0;
  uint64_t handoff_failed = 0;  // frames another lcore owned, still waiting for its handoff ring at the stop
                                // (counted dropped)
  uint64_t fed = 0;             // frames the ring source's feeder sent
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
