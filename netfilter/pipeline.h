// The netfilter pipeline: one IPv4 packet through the kernel's hooks, in the
// kernel's order, with conntrack and NAT.
//
//   defrag -> raw PREROUTING -> conntrack -> mangle PREROUTING -> nat PREROUTING (DNAT,
//   first packet of a connection only) -> routing on the post-DNAT
//   destination -> INPUT (mangle, filter, nat)            -> confirm
//                  -> TTL check and decrement (ip_forward: a TTL of 1 dies
//                     here, before FORWARD) -> FORWARD (mangle, filter)
//                  -> POSTROUTING (mangle, nat (SNAT/MASQUERADE, first
//                     packet only))  -> confirm
//
// Each table is walked by a ChainWalker (netfilter/chain_walk.h): rule by
// rule, with the kernel's jump/goto/RETURN/policy semantics and per-rule
// counters. With PipelineConfig::algo other than kLinear every chain of
// every table is also compiled into a classifier (netfilter/chain_boxes.h:
// dtree, tuple or acl) that supplies the walk's
// "first matching rule" step; counters, verdicts and states stay identical
// (PipelineStats::rules_tested then counts lookups plus evaluations). nat
// chains run only while the connection has no binding for the
// hook's manip type; every later packet, both directions, is rewritten from
// the conntrack entry (netfilter/nat.h). INVALID and untracked packets skip
// nat, as in the kernel.
//
// Bursts: process() hashes the tuples of the whole burst and prefetches
// their conntrack buckets, then the entries and flow records their
// signatures point to, then runs the packets one by one in order (state is
// sequential: a packet sees what every earlier one did). Each packet is
// looked up once, just before it runs; raw PREROUTING, which runs before
// conntrack, cannot change the table, so conntrack takes the same lookup.
//
// Fast path: a packet of a known connection whose way through the chains
// cannot change replays the path recorded for its flow and direction
// instead of walking the chains. A recorded path is used only if
//   - it was recorded for the same conntrack entry (slot and id) and
//     direction, arriving on the same interface, and the packet's ctstate
//     bits and the entry's status bits equal the recorded ones in every bit
//     a rule on the path tested (--ctstate, --ctstatus: a path whose rules
//     never test the status is kept when ASSURED comes; one that tests
//     ESTABLISHED records anew when NEW becomes ESTABLISHED);
//   - no rule the packet was tested against looks at anything else that can
//     change within a flow (FlowVary bits of rule_match.h: TCP flags and
//     options, length, payload, fragment bits, marks, connmark, ctexpire,
//     pkttype, MAC, ICMP type) and none is stateful (limit, statistic);
//   - no walk ran a target with side effects beyond counting and the verdict
//     (MARK, CONNMARK, NOTRACK, CT, TRACE, LOG, a NAT target) and no nat
//     chain was walked (a packet that walked nat is a connection's first);
//   - the path fits the fixed per-flow record (kMaxFastPath counters).
// The established path: the lookup hit a live entry whose record covers
// raw PREROUTING too (raw's walk was a function of the tuple and the
// ingress interface: the rules it tested look at nothing else and it had no
// side effects), conntrack's common case (ConntrackTable::track_fast: an
// in-window TCP segment, a UDP datagram, an ICMP query, any other
// protocol) and the record's key. Then the packet costs the tracker, a
// counter bump on its record, and the record's precomputed rewrite
// (NatRewrite: NAT both ways and the TTL in one checksum update); no walk
// state is set up. Anything else takes the general path, which uses the
// same records (counting raw's part before conntrack when it can, and the
// rest after it).
//
// Counters are exact and lazy: the established path adds the packet to its
// record (packets, bytes) and the record's rules are counted when somebody
// reads them -- counters_ruleset(), which everything that reports counters
// goes through -- or when the record is replaced. Counters come out
// identical with the fast path on or off; tests check it, with counter reads
// interleaved with long random traffic.
//
// Checksums: conntrack checks L4 checksums at PREROUTING (nf_conntrack_
// checksum=1) unless the packet arrives as CHECKSUM_UNNECESSARY: PacketIn::
// rx_csum Good (a NIC with RX offload said so), or Unknown with
// PipelineConfig::rx_csum_trust (`--rx-csum trust`). A trusted packet the
// caller knows to be wrong (PacketIn::csum_wrong) is let through and
// counted (CtCounters::trusted_bad_checksum).
//
// Fragments (netfilter/defrag.h): with conntrack in use the kernel
// reassembles IPv4 fragments at priority -400, before raw, so no chain ever
// sees a fragment (raw `-f` rules count nothing) and a datagram is counted
// once, with its full length. The model does the same: a fragment goes into
// the defrag table, and the fragment that completes its datagram carries the
// whole datagram through the hooks, with its own ingress interface and
// timestamp (the last to arrive). Refragmenting a forwarded datagram to the
// egress MTU is not modelled: it leaves as one packet.
// Accounting, so that every packet given to process() is in exactly one
// PipelineStats::by_fate bucket at any time:
//   - a fragment that does not complete its datagram gets FragmentHeld;
//   - the completing fragment gets the datagram's fate, and PacketOut::
//     fragments says how many fragments the datagram had; the fragments held
//     for it move from FragmentHeld to that same fate in by_fate (a datagram
//     forwarded in 3 fragments counts 3 forwarded packets, like the 3 frames
//     the kernel receives and sends on; the rule counters count 1);
//   - a fragment the table drops gets DroppedFragment (PacketOut::
//     defrag_drop says why); fragments held for a datagram that is then
//     discarded (overlap, bad length, too big, ECN, timeout) move from
//     FragmentHeld to DroppedFragment.
// What is still FragmentHeld at the end of a capture belongs to datagrams
// that were incomplete when it ended (and within ipfrag_time).
//
// Control plane: build() compiles the ruleset for a host (may throw
// LoadError). Packet path: process() is noexcept and never allocates, except
// that a trace string, when asked for, grows as it is written.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/enum_names.h"
#include "base/zeroed_array.h"
#include "classifier/string_scan.h"
#include "netfilter/chain_boxes.h"
#include "netfilter/chain_walk.h"
#include "netfilter/bridge.h"
#include "netfilter/conntrack.h"
#include "netfilter/defrag.h"
#include "netfilter/host.h"
#include "netfilter/nat.h"
#include "packet/packet_key.h"
#include "rules/rule.h"

namespace nfb {

// What became of a packet, one list:  X(enumerator, name, description)
#define NFB_FATE_LIST(X)                                                                      \
  X(Forwarded, "forwarded", "routed through FORWARD and POSTROUTING out an interface")        \
  X(Bridged, "bridged", "switched between ports of a bridge without netfilter (bridge-nf-call-iptables=0)") \
  X(Delivered, "delivered", "accepted for the host itself through INPUT")                     \
  X(DroppedByRule, "dropped_by_rule", "a DROP rule")                                          \
  X(RejectedByRule, "rejected_by_rule", "a REJECT rule (the host answers with ICMP or RST)")  \
  X(DroppedByPolicy, "dropped_by_policy", "a built-in chain's DROP policy")                   \
  X(DroppedByMatch, "dropped_by_match", "a match dropped it (hotdrop: e.g. tcp on fragment 1)") \
  X(DroppedByConntrack, "dropped_by_conntrack", "conntrack: table full, or a clash at confirm") \
  X(DroppedByRouting, "dropped_by_routing", "martian, no route, unreachable, or not joined")  \
  X(DroppedByBridge, "dropped_by_bridge", "bridged back out its in port without hairpin mode, or no port to flood to") \
  X(DroppedTtlExceeded, "dropped_ttl_exceeded", "forwarding a packet whose TTL is 1 or 0")      \
  X(DroppedByNat, "dropped_by_nat", "NAT found no free tuple")                                \
  X(DroppedFragment, "dropped_fragment",                                                       \
    "IPv4 fragment dropped by reassembly, alone or with its datagram (see DefragDrop)")         \
  X(FragmentHeld, "fragment_held", "IPv4 fragment held for reassembly: its datagram is incomplete")

// fate_name(): stable snake_case name for reports and JSON; fate_description().
NFB_NAMED_ENUM(Fate, kFateCount, fate_name, fate_description, NFB_FATE_LIST)
constexpr bool fate_emitted(Fate f) noexcept {
  return f == Fate::Forwarded || f == Fate::Delivered || f == Fate::Bridged;
}

struct PipelineConfig {
  CtConfig conntrack;
  MatchOptions match;
  bool fast_path = true;
  /// `--rx-csum trust`: a packet whose checksum state is unknown arrives as
  /// CHECKSUM_UNNECESSARY (a NIC with RX checksum offload); false: as
  /// CHECKSUM_NONE, verified by conntrack (`--rx-csum verify`).
  bool rx_csum_trust = false;
  /// Start rule counters from the ruleset's `[p:b]` (iptables-restore -c).
  bool counters_from_ruleset = false;
  /// Reassembly: ipfrag_time, ipfrag_high_thresh, table sizes.
  DefragConfig defrag;
  /// The classifier every chain runs on (netfilter/chain_boxes.h). kLinear
  /// is the ChainWalker's own rule-by-rule walk; the others give identical
  /// counters, verdicts and conntrack states.
  ChainAlgo algo = ChainAlgo::kLinear;
  /// -m string: every pattern of the ruleset in one Hyperscan database,
  /// each packet scanned once per hook (classifier/string_scan.h); false:
  /// every string rule searches the packet itself (the same answers).
  bool scan_strings = true;
};

/// One packet in: its parsed key (status Ok), its frame (rewritten in place
/// by NAT), its ingress interface (HostModel id) and timestamp.
///
/// A fragment that completes a datagram leaves process() with key, frame and
/// len describing the reassembled datagram (its own link header, then the
/// datagram, rewritten by NAT like any packet), in a buffer of the pipeline
/// that stays valid until the next process() call. A call that completes
/// more than PipelineConfig::defrag.output_slots datagrams reuses the
/// earliest buffers; the frame of a packet whose buffer was reused is set to
/// nullptr (len 0).
/// What the receiving NIC said about the L4 checksum (DPDK's RX flags).
enum class RxCsum : uint8_t {
  Unknown,  // nothing (a capture, a device without offload): PipelineConfig::rx_csum_trust decides
  Good,     // verified by the NIC: CHECKSUM_UNNECESSARY, conntrack skips it
  Bad,      // the NIC found it wrong: the driver hands it up as CHECKSUM_NONE and
            // conntrack verifies it in software (INVALID when it is wrong)
};

struct PacketIn {
  PacketKey key;
  uint8_t* frame = nullptr;
  uint32_t len = 0;
  /// The interface it arrived on. A bridge port's id is replaced by its
  /// bridge's when the packet is processed (-i sees the bridge; the port
  /// is what -m physdev --physdev-in sees).
  uint16_t in_iface = kNoIface;
  /// The frame starts with an Ethernet header (false: SLL, raw IP): only
  /// then is its destination MAC read (bridges, netfilter/host.h).
  bool ethernet = true;
  uint64_t ts_ns = 0;
  RxCsum rx_csum = RxCsum::Unknown;
  /// The caller knows the L4 checksum is wrong (counted when it is trusted).
  bool csum_wrong = false;
};

/// An Ethernet frame the pipeline does not run (ARP, IPv6, ...): what a
/// bridge learns its sender from.
struct L2Frame {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  uint16_t iface = kNoIface;  // the interface it arrived on (a port, or a bridge)
};

struct PacketOut {
  Fate fate = Fate::DroppedByRule;
  uint16_t out_iface = kNoIface;  // Forwarded, Bridged: the egress interface (a bridge when bridged)
  uint8_t ct_state = 0;           // the packet's ctstate bits (CtStateBit)
  bool fast_path = false;         // counted through a recorded path
  uint16_t fragments = 0;         // > 0: it completed a datagram of this many fragments
  DefragDrop defrag_drop = DefragDrop::None;  // DroppedFragment: why
};

struct PipelineStats {
  std::array<uint64_t, kFateCount> by_fate{};
  uint64_t fast_path_packets = 0;
  uint64_t walked_packets = 0;
  uint64_t rules_tested = 0;  // rule evaluations on the walked packets
  uint64_t packets() const noexcept {
    uint64_t n = 0;
    for (uint64_t c : by_fate) n += c;
    return n;
  }
};

class Pipeline {
 public:
  /// Compiles every table of `ruleset` for `host`. Throws LoadError; with a
  /// compiled config.algo also what its classifier build throws
  /// (std::invalid_argument, DpdkEalError for acl).
  static std::unique_ptr<Pipeline> build(const Ruleset& ruleset, const HostModel& host,
                                         const PipelineConfig& config = {});

  /// Runs each packet through the hooks; results[i] says what became of
  /// packets[i]. Packets must come in timestamp order. noexcept; allocates
  /// only to append to the trace string when one is set.
  void process(std::span<PacketIn> packets, std::span<PacketOut> results) noexcept;

  /// The bridges learn the senders of frames that are not IPv4 (an ARP
  /// reply teaches a station's MAC, port and address before its first IP
  /// packet, as in the kernel). A burst's such frames are learned before
  /// its IPv4 frames run. noexcept, no allocation.
  void learn_stations(std::span<const L2Frame> frames) noexcept;

  /// Append a kernel-style TRACE line for every rule, return and policy each
  /// packet passes (as if every packet had -j TRACE); nullptr turns it off.
  void set_trace(std::string* out) noexcept { trace_ = out; }

  /// The ruleset with every rule's and policy's counters as they are now:
  /// write_iptables_save(counters_ruleset(), {.counters = true}) prints what
  /// `iptables-save -c` would. Counts the established path's pending packets
  /// first (flush_counters()).
  Ruleset counters_ruleset() const;
  /// Counts every record's pending packets into its rules' counters. Logically
  /// const: the counters then say what they would have said all along.
  void flush_counters() const noexcept;

  const ConntrackTable& conntrack() const noexcept { return ct_; }
  /// The reassembly table (its stats: datagrams, drops by reason, held now).
  const DefragTable& defrag() const noexcept { return defrag_; }
  const PipelineStats& stats() const noexcept { return stats_; }
  /// Bytes the compiled chains' classifiers hold (0 on the linear walk).
  size_t classifier_bytes() const noexcept;
  /// The Hyperscan scanner of the ruleset's string patterns (its scans()
  /// count the packet-and-hook scans); null when there is none.
  const StringScanner* string_scanner() const noexcept { return strings_.get(); }
  const HostModel& host() const noexcept { return host_; }

  // Compiled matches point into this object (conntrack, hashlimit tables,
  // IP sets): it stays where build() made it.
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  Pipeline(Pipeline&&) = delete;
  Pipeline& operator=(Pipeline&&) = delete;

 private:
  Pipeline(const Ruleset& ruleset, const HostModel& host, const PipelineConfig& config);

  static constexpr uint32_t kMaxFastPath = 14;
  /// A recorded way through the chains, per conntrack node (slot * 2 +
  /// direction): what the established path reads, in one cache line.
  struct alignas(64) FlowPath {
    uint64_t entry_id = 0;       // CtEntry::id it was recorded for; 0 = none
    uint64_t pending_bytes = 0;  // counted on the path's rules at the next flush
    uint32_t pending_packets = 0;
    uint16_t in_iface = kNoIface;   // the ingress interface it was recorded for
    uint16_t out_iface = kNoIface;
    uint8_t ct_state = 0;    // the packet's ctstate bits, under state_mask
    uint8_t state_mask = 0;  // 0xff when a rule on the path tested the ctstate, else 0
    uint8_t ct_status = 0;   // the entry's low status bits (SEEN_REPLY, ASSURED, ...), under status_mask
    uint8_t status_mask = 0;
    uint8_t fate = 0;
    uint8_t length = 0;
    uint8_t raw_length = 0;       // counter[0, raw_length) are raw PREROUTING's
    uint8_t flags = 0;            // kPathRawReplayable, kPathL2
    NatRewrite rewrite;           // what the path does to the packet's headers
  };
  static_assert(sizeof(FlowPath) == 64);
  static constexpr uint8_t kPathRawReplayable = 1;  // raw's part may be replayed before conntrack
  static constexpr uint8_t kPathL2 = 2;  // recorded for a frame to another station of its bridge
  /// The current packet's bridge facts (netfilter/host.h "Bridges"), set
  /// by bridge_ingress() before it runs.
  struct BridgeFacts {
    uint16_t in_port = kNoIface;   // the port it came in by (kNoIface: none, or not known)
    uint16_t l2_port = kNoIface;   // l2: the station's port
    bool info = false;             // came in on a bridge with bridge-nf-call-iptables on
    bool l2 = false;               // addressed to another station of the bridge
  };
  void bridge_ingress(PacketIn& p, uint16_t bridge) noexcept;
  uint16_t station_port(uint16_t bridge, uint32_t learned) const noexcept;
  /// The ports a bridge floods a frame to (br_flood()'s should_deliver():
  /// every port but the in port, which counts in hairpin mode): how many,
  /// and the one when there is exactly one.
  uint32_t flood_ports(uint16_t bridge, uint16_t& only) const noexcept;
  uint32_t vary_of(uint32_t walk_vary) const noexcept;
  static constexpr size_t kBridgeStations = 32768;  // MACs and addresses the bridges can learn
  /// The counters of a recorded path (read when it is counted).
  struct FlowCounters {
    uint32_t counter[kMaxFastPath]{};
    uint8_t table_of[kMaxFastPath]{};  // TableId of each counter
  };

  struct Walked;  // per-packet walk bookkeeping (pipeline.cpp)

  /// The established path; false (nothing done) when it does not apply.
  bool fast_one(PacketIn& p, PacketOut& out, const CtProbe& probe) noexcept;
  Fate run_one(PacketIn& p, PacketOut& out, const CtProbe* probe) noexcept;
  /// The general path from conntrack's result on: the walks, NAT, routing, confirm.
  Fate after_conntrack(PacketIn& p, PacketOut& out, MatchContext& ctx, Walked& w, CtResult& ct,
                       bool untracked) noexcept;
  void move_fates(Fate from, Fate to, uint64_t n) noexcept;
  /// FORWARD and POSTROUTING (mangle, filter; mangle, nat) for a packet
  /// routed or bridged out `out_iface`: Forwarded, or the fate of the drop
  /// (nothing confirmed or discarded here).
  Fate forward_hooks(PacketIn& p, MatchContext& ctx, Walked& w, const CtResult& ct, uint16_t out_iface,
                     uint32_t next_hop) noexcept;
  /// A bridged frame whose station is unknown, flooded to several ports:
  /// forward_hooks() once per port, each copy from the packet as it came
  /// out of routing (see netfilter/host.h "Bridges").
  Fate flood(PacketIn& p, MatchContext& ctx, Walked& w, CtResult& ct, uint16_t bridge) noexcept;
  // nat at one hook (the kernel's nf_nat_inet_fn): a connection's first
  // packet walks the nat chain and binds `manip` (a null binding when no
  // rule did); then every packet of the connection gets the binding's
  // rewrite. Nothing for packets without an entry (INVALID, untracked).
  // False: drop the packet with `fate`.
  bool nat_at_hook(NatManip manip, const NatContext& nctx, PacketIn& p, MatchContext& ctx, Walked& w,
                   const CtResult& ct, Fate& fate) noexcept;
  static bool forward_ttl(PacketIn& p) noexcept;
  static void set_tos(PacketIn& p, uint8_t tos) noexcept;
  static void lower_mss(PacketIn& p, uint16_t mss) noexcept;
  L4Check l4_check(const PacketIn& p) const noexcept;
  WalkResult walk(TableId table, Hook hook, MatchContext& ctx, Walked& w) noexcept;
  void fill_ct_view(MatchContext& ctx, const CtResult& r) const noexcept;
  void start_walk(PacketIn& p, MatchContext& ctx, Walked& w) noexcept;
  bool replay_raw(const PacketIn& p, const CtProbe* probe, Walked& w) noexcept;
  bool record_matches(const FlowPath& fp, const CtEntry& e, const CtResult& r) const noexcept;
  bool try_fast_path(PacketIn& p, PacketOut& out, const CtResult& r, const Walked& w) noexcept;
  void record_fast_path(const CtResult& r, const Walked& w, Fate fate, uint16_t in_iface,
                        uint16_t out_iface, bool bridged = false) noexcept;
  void count_path(uint32_t node, uint32_t from, uint32_t to, uint64_t packets, uint64_t bytes) const noexcept;
  void flush_path(uint32_t node) const noexcept;
  void trace_events(const Walked& w, const MatchContext& ctx) noexcept;

  HostModel host_;
  PipelineConfig config_;
  Ruleset ruleset_;  // layout for counters_ruleset()
  std::array<std::unique_ptr<ChainWalker>, kTableCount> walkers_;
  /// Per table, the chains' classifiers when config_.algo is not kLinear.
  std::array<std::unique_ptr<ChainClassifiers>, kTableCount> compiled_;
  StringPatterns string_patterns_;  // filled while the walkers compile
  RecentLists recent_lists_;        // -m recent lists, shared by the tables
  HashlimitTables hashlimit_tables_;  // -m hashlimit tables, likewise
  /// -m connlimit's view of ct_.
  struct ConnLivenessOf final : ConnLiveness {
    const ConntrackTable* ct = nullptr;
    bool counts(uint32_t handle, uint64_t id, uint64_t now_ns) const noexcept override {
      return ct->counts_as_connection(handle, id, now_ns);
    }
  };
  ConnLivenessOf conn_liveness_;
  IpSets ipsets_;  // -m set: a copy of MatchOptions::ipsets (counters, timeouts)
  std::unique_ptr<StringScanner> strings_;  // null: no string rules, or scan_strings off
  Hook scanned_hook_ = Hook::Prerouting;  // the hook strings_ last scanned for
  bool scan_current_ = false;             // strings_'s result is this packet's at scanned_hook_
  PacketIn* walk_packet_ = nullptr;      // the walked packet (TOS and TCPMSS rewrite it)
  CtEntry* walk_entry_ = nullptr;         // the walked packet's conntrack entry (CONNMARK writes its mark)
  ConntrackTable ct_;
  NatTable nat_;
  DefragTable defrag_;
  // Bridges: per interface id the bridge it belongs to (itself for a bridge,
  // its master for a port, kNoIface otherwise); empty when the host has no
  // bridge. The stations the bridges learned; this packet's facts.
  std::vector<uint16_t> bridge_of_;     // sized for every id (kNoIface included) once a bridge exists
  const uint16_t* bridge_of_ptr_ = nullptr;  // bridge_of_.data(), or null: no bridge
  std::vector<uint8_t> bridge_nf_of_;   // [bridge id]: its frames walk iptables (the sysctl or its own option)
  std::vector<uint8_t> hairpin_;        // [port id]: hairpin mode (unknown counts as on)
  std::vector<uint8_t> flood_frame_;    // flood(): the frame as routing left it (64 KiB, once a bridge exists)
  std::vector<uint64_t> bridge_mac_;  // [id]: the interface's MAC (BridgeStations::mac48), ~0 when none
  BridgeStations stations_;
  BridgeFacts br_;
  // Which packet of the current process() call holds each defrag output
  // buffer (call_ marks the call), to null a packet's frame when a later
  // completion in the same call reuses its buffer.
  std::vector<uint64_t> output_call_;
  std::vector<uint32_t> output_owner_;
  uint64_t call_ = 0;
  uint32_t completed_slot_ = 0;  // run_one -> process(): output buffer of a completion
  mutable ZeroedArray<FlowPath> paths_;  // [slot * 2 + dir]: the conntrack node
  ZeroedArray<FlowCounters> path_counters_;  // [slot * 2 + dir]
  mutable std::vector<uint32_t> dirty_;  // nodes with pending packets (capacity: every node)
  // process()'s per-stage scratch: the lookups of up to kBurstStage packets.
  static constexpr size_t kBurstStage = 32;
  std::array<CtProbe, kBurstStage> probes_{};
  std::array<bool, kBurstStage> keyed_{};
  PipelineStats stats_;
  std::string* trace_ = nullptr;
  // Scratch for one walk: the TRACE/LOG events and the counter indices it
  // incremented (process() handles one packet at a time).
  static constexpr uint32_t kMaxWalkEvents = 256;
  static constexpr uint32_t kMaxWalkPath = 64;
  std::vector<WalkEvent> event_storage_;
  std::vector<uint32_t> path_storage_;
};

}  // namespace nfb
