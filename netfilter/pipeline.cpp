#include "netfilter/pipeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "netfilter/nat.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"

namespace nfb {

namespace {

constexpr size_t table_index(TableId t) noexcept { return static_cast<size_t>(t); }

// What a recorded path is keyed by, besides the entry and direction: the
// packet's ctstate bits and the entry's status bits. Rules that look only at
// those (and at the entry's tuples, which never change) cannot take a packet
// of the same key down another path; anything else they look at can.
constexpr uint32_t kVaryCoveredByKey = kVaryCtState | kVaryCtDir | kVaryCtStatus;
constexpr uint32_t kVaryBlocksFastPath = kVaryAll & ~kVaryCoveredByKey;

uint8_t status_key(const CtEntry& e) noexcept { return static_cast<uint8_t>(e.status & 0x0fU); }

// ConntrackTable::state_bits() for a result whose entry is `e`.
uint8_t state_bits_of(const CtEntry& e, const CtResult& r) noexcept {
  uint8_t bits = r.state;
  if ((e.status & ct_status::kSrcNat) != 0) bits |= kCtSnat;
  if ((e.status & ct_status::kDstNat) != 0) bits |= kCtDnat;
  return bits;
}

Fate fate_of(const WalkResult& r) noexcept {
  if (r.hotdrop) return Fate::DroppedByMatch;
  if (r.verdict == WalkResult::Reject) return Fate::RejectedByRule;
  return r.by_policy ? Fate::DroppedByPolicy : Fate::DroppedByRule;
}

// The zone raw's CT template gives a packet (nf_ct_zone_tmpl()): `--zone
// mark` takes the low 16 bits of the packet's mark when conntrack runs;
// --zone-orig or --zone-reply alone names one direction.
CtZone zone_of(const CtTarget& t, uint32_t mark) noexcept {
  CtZone z;
  z.id = t.zone_from_mark ? static_cast<uint16_t>(mark) : t.zone;
  z.dirs = t.zone_orig == t.zone_reply ? CtZone::kBoth : t.zone_orig ? CtZone::kOriginal : CtZone::kReply;
  return z;
}

// The matches' view of a conntrack tuple: the kernel's layout, as Tuple's
// (for ICMP the id sits in sport and (type << 8 | code) in dport).
CtTupleView view_of(const Tuple& t) noexcept { return CtTupleView{t.src, t.dst, t.sport, t.dport, t.proto}; }

}  // namespace

// ip_forward(): a packet that would leave with TTL 0 is dropped (the host
// sends time-exceeded) before the FORWARD hook; the others go on with the TTL
// decremented, in the key and in the frame (header checksum updated
// incrementally).
bool Pipeline::forward_ttl(PacketIn& p) noexcept {
  if (p.key.ttl <= 1) return false;
  const uint8_t ttl = p.key.ttl;
  p.key.ttl = static_cast<uint8_t>(ttl - 1);
  const uint32_t at = p.key.l3_off;
  if (p.frame != nullptr && at + 12U <= p.len) {
    const auto before = static_cast<uint16_t>(ttl << 8 | p.frame[at + 9]);
    const auto after = static_cast<uint16_t>((ttl - 1) << 8 | p.frame[at + 9]);
    p.frame[at + 8] = static_cast<uint8_t>(ttl - 1);
    const uint16_t check = load_be16(p.frame + at + 10);
    store_be16(p.frame + at + 10, checksum_replace16(check, before, after));
  }
  return true;
}

// TOS/DSCP: the new TOS byte, in the key and the frame (header checksum
// updated incrementally, as ipv4_change_dsfield does).
void Pipeline::set_tos(PacketIn& p, uint8_t tos) noexcept {
  const uint32_t at = p.key.l3_off;
  if (p.frame != nullptr && at + 12U <= p.len) {
    const auto before = static_cast<uint16_t>(p.frame[at] << 8 | p.frame[at + 1]);
    const auto after = static_cast<uint16_t>(p.frame[at] << 8 | tos);
    p.frame[at + 1] = tos;
    store_be16(p.frame + at + 10, checksum_replace16(load_be16(p.frame + at + 10), before, after));
  }
  p.key.tos = tos;
}

// TCPMSS: an MSS option above `mss` is lowered to it (never raised), TCP
// checksum updated incrementally. A SYN without the option would get one
// inserted by the kernel (min(mss, 536), the packet 4 bytes longer); frames
// here cannot grow, so that SYN leaves unchanged (README: known gaps).
void Pipeline::lower_mss(PacketIn& p, uint16_t mss) noexcept {
  if (p.frame == nullptr || p.key.proto != kProtoTcp) return;
  const uint32_t th = p.key.l4_off;
  const uint32_t end = std::min<uint32_t>(uint32_t{p.key.l3_off} + p.key.l3_len, p.len);
  if (th + 20U > end) return;
  const uint32_t hdr_end = std::min<uint32_t>(th + (p.frame[th + 12] >> 4) * 4U, end);
  uint32_t i = th + 20;
  while (i < hdr_end) {
    const uint8_t kind = p.frame[i];
    if (kind == 0) break;  // end of options
    if (kind == 1) {       // no-op
      ++i;
      continue;
    }
    if (i + 1 >= hdr_end) break;
    const uint8_t len = p.frame[i + 1];
    if (len < 2 || i + len > hdr_end) break;
    if (kind == 2 && len == 4) {
      const uint16_t old = load_be16(p.frame + i + 2);
      if (old <= mss) return;
      store_be16(p.frame + i + 2, mss);
      store_be16(p.frame + th + 16, checksum_replace16(load_be16(p.frame + th + 16), old, mss));
      return;
    }
    i += len;
  }
}

// Per-packet bookkeeping of the walks: the counters the packet incremented
// (for the fast path), what the tested rules look at, and whether anything
// happened that a replayed path could not reproduce. Lives on the stack.
// The path and event buffers point into the pipeline's scratch storage,
// allocated once at build (a packet does not initialise kilobytes of
// trace-event slots it almost never uses).
struct Pipeline::Walked {
  PathBuffer path;
  EventBuffer events;
  uint32_t counter[kMaxFastPath]{};
  uint8_t table_of[kMaxFastPath]{};
  uint32_t length = 0;
  uint32_t raw_length = 0;     // counter[0, raw_length) are raw's (when raw_replayable)
  bool raw_replayable = false;  // raw's part is a function of the flow and ingress
  bool overflow = false;
  uint32_t vary = 0;
  bool side_effects = false;
  uint8_t ct_status = 0;  // the entry's status bits the walks saw
};

Pipeline::Pipeline(const Ruleset& ruleset, const HostModel& host, const PipelineConfig& config)
    : host_(host),
      config_(config),
      ruleset_(ruleset),
      ct_(config.conntrack),
      nat_(ct_),
      defrag_(config.defrag),
      output_call_(config.defrag.output_slots, 0),
      output_owner_(config.defrag.output_slots, 0),
      event_storage_(kMaxWalkEvents),
      path_storage_(kMaxWalkPath) {
  conn_liveness_.ct = &ct_;
  WalkOptions opts;
  opts.match = config.match;
  if (config_.scan_strings) opts.match.strings = &string_patterns_;
  opts.match.recent = &recent_lists_;  // one namespace: every table sees the same lists
  opts.match.hashlimit = &hashlimit_tables_;
  opts.match.conntrack_max = config.conntrack.max_entries;
  // The sets' counters are this pipeline's own (each lcore keeps a copy).
  if (config.match.ipsets != nullptr) {
    ipsets_ = *config.match.ipsets;
    opts.match.ipsets = &ipsets_;
  }
  opts.initial_counters_from_table = config.counters_from_ruleset;
  for (const Table& t : ruleset_.tables) {
    walkers_[table_index(t.id)] = std::make_unique<ChainWalker>(ChainWalker::build(t, host_, opts));
    if (config_.algo != ChainAlgo::kLinear) {
      compiled_[table_index(t.id)] =
          std::make_unique<ChainClassifiers>(*walkers_[table_index(t.id)], host_, config_.algo);
    }
  }
  if (!string_patterns_.empty()) strings_ = std::make_unique<StringScanner>(string_patterns_);
  for (uint16_t id = 0; id < host_.iface_count(); ++id) {
    const uint16_t br = host_.is_bridge(id) ? id : host_.master_of(id);
    if (br == kNoIface) continue;
    if (bridge_of_.empty()) bridge_of_.assign(host_.iface_count(), kNoIface);
    bridge_of_[id] = br;
  }
  if (!bridge_of_.empty()) {
    bridge_of_.resize(size_t{kNoIface} + 1, kNoIface);  // indexed by any id: no bound check per packet
    bridge_of_ptr_ = bridge_of_.data();
    bridge_nf_of_.assign(host_.iface_count(), 0);
    hairpin_.assign(host_.iface_count(), 1);
    flood_frame_.assign(size_t{65536} + 64, 0);
    for (uint16_t id = 0; id < host_.iface_count(); ++id) {
      const Interface& ifc = host_.iface(id);
      bridge_nf_of_[id] = ifc.bridge && (host_.bridge_nf_call_iptables() || ifc.bridge_nf_call_iptables);
      hairpin_[id] = ifc.hairpin.value_or(true);
    }
    stations_ = BridgeStations(kBridgeStations);
    bridge_mac_.assign(host_.iface_count(), ~0ULL);  // never equal to a 48-bit MAC
    for (uint16_t id = 0; id < host_.iface_count(); ++id) {
      if (host_.iface(id).has_mac) bridge_mac_[id] = BridgeStations::mac48(host_.iface(id).mac.data());
    }
  }
  if (config_.fast_path) {
    // Zero: no path recorded (entry ids start at 1).
    paths_ = ZeroedArray<FlowPath>(ct_.capacity() * 2);
    path_counters_ = ZeroedArray<FlowCounters>(ct_.capacity() * 2);
    dirty_.reserve(ct_.capacity() * 2);
  }
}

// Where a frame arriving on a bridge (or a port of one) goes, as the bridge
// decides before it hands the frame on (netfilter/host.h "Bridges"): the
// bridge learns the sender, then looks the destination MAC up. The packet
// becomes the bridge's; the port is kept for -m physdev.
[[gnu::always_inline]] inline void Pipeline::bridge_ingress(PacketIn& p, uint16_t bridge) noexcept {
  if (bridge != p.in_iface) br_.in_port = p.in_iface;
  p.in_iface = bridge;
  br_.info = bridge_nf_of_[bridge] != 0;
  const PacketKey& k = p.key;
  const bool eth = p.ethernet && p.frame != nullptr && p.len >= 14;
  constexpr uint64_t kMac48 = (1ULL << 48) - 1;
  uint64_t src = 0;
  uint64_t dst = 0;
  if (eth) {
    std::memcpy(&dst, p.frame, sizeof dst);      // the destination MAC and 2 bytes of the source
    std::memcpy(&src, p.frame + 6, sizeof src);  // the source MAC and the EtherType
    src &= kMac48;
    // The bridge drops a frame from a multicast or zero source MAC before it
    // learns; the model keeps the frame but learns nothing from it.
    if ((src & 1U) == 0 && src != 0) stations_.learn(bridge, src, k.src_ip, br_.in_port);
  } else if (k.has(key_flag::kMac)) {
    stations_.learn(bridge, BridgeStations::mac48(k.src_mac.data()), k.src_ip, br_.in_port);
  }
  dst &= kMac48;
  if (!eth || dst == bridge_mac_[bridge] || k.pkttype != PktType::Host) return;  // the bridge's own: the common case
  const uint32_t port = stations_.port_of_mac(bridge, dst);
  if (port == BridgeStations::kUnknown) return;  // taken as for the host (see host.h)
  if (port != kNoIface && port == br_.in_port) return;  // the kernel drops it; taken as for the host
  for (const uint16_t q : host_.ports_of(bridge)) {
    if (dst == bridge_mac_[q]) return;  // a port's own MAC: local
  }
  br_.l2 = true;
  br_.l2_port = station_port(bridge, port);
}

void Pipeline::learn_stations(std::span<const L2Frame> frames) noexcept {
  if (bridge_of_ptr_ == nullptr) return;
  for (const L2Frame& f : frames) {
    const uint16_t bridge = bridge_of_ptr_[f.iface];
    if (bridge == kNoIface || f.data == nullptr || f.len < 14) continue;
    const uint64_t src = BridgeStations::mac48(f.data + 6);
    if ((src & 1U) != 0 || src == 0) continue;
    // ARP for IPv4 over Ethernet (untagged): the sender's address too.
    uint32_t addr = 0;
    if (f.len >= 42 && f.data[12] == 0x08 && f.data[13] == 0x06 && f.data[14] == 0 && f.data[15] == 1 &&
        f.data[16] == 0x08 && f.data[17] == 0x00 && f.data[18] == 6 && f.data[19] == 4) {
      addr = uint32_t{f.data[28]} << 24 | uint32_t{f.data[29]} << 16 | uint32_t{f.data[30]} << 8 | f.data[31];
    }
    stations_.learn(bridge, src, addr, bridge != f.iface ? f.iface : kNoIface);
  }
}

// A station's port as learned (kUnknown: never seen; kNoIface: seen on the
// bridge itself); when not known, the one port the bridge would flood to
// if it has only one besides the packet's in port.
uint16_t Pipeline::station_port(uint16_t bridge, uint32_t learned) const noexcept {
  if (learned < BridgeStations::kUnknown && learned != kNoIface) return static_cast<uint16_t>(learned);
  uint16_t only = kNoIface;
  return flood_ports(bridge, only) == 1 ? only : kNoIface;
}

uint32_t Pipeline::flood_ports(uint16_t bridge, uint16_t& only) const noexcept {
  uint32_t n = 0;
  for (const uint16_t q : host_.ports_of(bridge)) {
    if (q == br_.in_port && hairpin_[q] == 0) continue;
    only = q;
    ++n;
  }
  return n;
}

std::unique_ptr<Pipeline> Pipeline::build(const Ruleset& ruleset, const HostModel& host,
                                          const PipelineConfig& config) {
  return std::unique_ptr<Pipeline>(new Pipeline(ruleset, host, config));
}

void Pipeline::count_path(uint32_t node, uint32_t from, uint32_t to, uint64_t packets,
                          uint64_t bytes) const noexcept {
  const FlowCounters& c = path_counters_[node];
  for (uint32_t i = from; i < to; ++i) walkers_[c.table_of[i]]->count(c.counter[i], packets, bytes);
}

void Pipeline::flush_path(uint32_t node) const noexcept {
  FlowPath& fp = paths_[node];
  if (fp.pending_packets == 0) return;
  count_path(node, 0, fp.length, fp.pending_packets, fp.pending_bytes);
  fp.pending_packets = 0;
  fp.pending_bytes = 0;
}

void Pipeline::flush_counters() const noexcept {
  for (const uint32_t node : dirty_) flush_path(node);
  dirty_.clear();
}

Ruleset Pipeline::counters_ruleset() const {
  flush_counters();
  Ruleset out = ruleset_;
  for (const auto& w : walkers_) {
    if (w) w->store_counters(out);
  }
  return out;
}

WalkResult Pipeline::walk(TableId table, Hook hook, MatchContext& ctx, Walked& w) noexcept {
  ChainWalker* walker = walkers_[table_index(table)].get();
  if (walker == nullptr) return WalkResult{};  // no such table: nothing to walk, accept
  // The packet's bytes may have changed since the last hook (NAT, TTL): the
  // string scan is redone, once, for this one.
  if (strings_ != nullptr && (!scan_current_ || scanned_hook_ != hook)) {
    strings_->invalidate();
    scanned_hook_ = hook;
    scan_current_ = true;
  }
  w.path.clear();
  w.events.clear();
  const WalkSinks sinks{trace_ != nullptr ? &w.events : nullptr, &w.path};
  const ChainClassifiers* compiled = compiled_[table_index(table)].get();
  WalkResult r = compiled != nullptr ? compiled->walk(*walker, hook, ctx, sinks) : walker->walk(hook, ctx, sinks);
  stats_.rules_tested += r.rules_tested;
  // CONNMARK wrote the entry's mark (the kernel's ct->mark): later rules of
  // this packet at later hooks (after the view is refilled) and the
  // connection's later packets read it there.
  if (r.connmark_changed && walk_entry_ != nullptr) walk_entry_->mark = ctx.ct.ctmark;
  // TOS/DSCP and TCPMSS rewrote the packet: into the key and the frame.
  if (r.tos_changed) {
    if (walk_packet_ != nullptr) set_tos(*walk_packet_, static_cast<uint8_t>(ctx.tos));
    ctx.tos = -1;
  }
  if (r.mss != WalkResult::kNoMss && walk_packet_ != nullptr) lower_mss(*walk_packet_, r.mss);
  w.vary |= r.vary;
  if (r.nat != nullptr || r.untrack || r.trace || r.mark_changed || r.connmark_changed ||
      r.ct_template != nullptr || r.tos_changed || r.mss != WalkResult::kNoMss) {
    w.side_effects = true;
  }
  if (w.path.dropped != 0) w.overflow = true;
  for (uint32_t index : w.path.items()) {
    if (w.length == kMaxFastPath) {
      w.overflow = true;
      break;
    }
    w.counter[w.length] = index;
    w.table_of[w.length] = static_cast<uint8_t>(table);
    ++w.length;
  }
  if (trace_ != nullptr) {
    for (const WalkEvent& ev : w.events.items()) {
      if (ev.kind == WalkEvent::Kind::Log) {
        w.side_effects = true;
        continue;
      }
      const char* kind = ev.kind == WalkEvent::Kind::TraceRule     ? "rule"
                         : ev.kind == WalkEvent::Kind::TraceReturn ? "return"
                                                                   : "policy";
      const PacketKey& k = *ctx.key;
      const auto iface = [&](uint16_t id) -> std::string {
        return id == kNoIface || id >= host_.iface_count() ? std::string() : host_.iface(id).name;
      };
      fmt::format_to(std::back_inserter(*trace_), "TRACE: {}:{}:{}:{} IN={} OUT={} SRC={} DST={} LEN={} ",
                     table_name(table), walker->chain_name(ev.chain), kind, ev.rulenum, iface(ctx.in_iface),
                     iface(ctx.out_iface), format_ipv4(k.src_ip), format_ipv4(k.dst_ip), k.l3_len);
      if (k.proto == kProtoTcp || k.proto == kProtoUdp) {
        fmt::format_to(std::back_inserter(*trace_), "PROTO={} SPT={} DPT={}\n", k.proto == kProtoTcp ? "TCP" : "UDP",
                       k.src_port, k.dst_port);
      } else if (k.proto == kProtoIcmp) {
        fmt::format_to(std::back_inserter(*trace_), "PROTO=ICMP TYPE={} CODE={}\n", k.icmp_type, k.icmp_code);
      } else {
        fmt::format_to(std::back_inserter(*trace_), "PROTO={}\n", k.proto);
      }
    }
  }
  return r;
}

void Pipeline::fill_ct_view(MatchContext& ctx, const CtResult& r) const noexcept {
  CtView v;
  v.state_bits = ct_.state_bits(r);
  v.reply_dir = r.dir == CtDir::Reply;
  const CtEntry* e = r.has_entry() ? ct_.entry(r.entry) : nullptr;
  if (e != nullptr) {
    v.present = true;
    v.status_bits = static_cast<uint8_t>(e->status & 0x0fU);  // the kernel's low IPS_* bits
    v.ctmark = e->mark;
    v.expire_s = e->has(ct_status::kConfirmed) && e->deadline_ns > ctx.now_ns
                     ? static_cast<uint32_t>((e->deadline_ns - ctx.now_ns) / 1'000'000'000ULL)
                     : e->timeout_s;
    v.orig = view_of(e->tuple[dir_index(CtDir::Original)]);
    v.reply = view_of(e->tuple[dir_index(CtDir::Reply)]);
    v.confirmed = e->has(ct_status::kConfirmed);
    v.handle = r.entry;
    v.id = e->id;
  }
  ctx.ct = v;
}

[[gnu::always_inline]] inline L4Check Pipeline::l4_check(const PacketIn& p) const noexcept {
  const bool trusted = p.rx_csum == RxCsum::Good || (p.rx_csum == RxCsum::Unknown && config_.rx_csum_trust);
  if (!trusted) return L4Check::Verify;
  return p.csum_wrong ? L4Check::TrustedBad : L4Check::Skip;
}

// Before conntrack: raw PREROUTING's part of the path recorded for the entry
// that holds the packet's tuple in this direction (the probe's hit), when
// it came in on the same interface (see "raw PREROUTING" in pipeline.h).
// Counts it and puts it at the start of w's path, as if walked. The entry
// need not be live: the record's tuple and interface are what raw's walk
// depended on.
bool Pipeline::replay_raw(const PacketIn& p, const CtProbe* probe, Walked& w) noexcept {
  if (probe == nullptr || !probe->hit()) return false;
  const FlowPath& fp = paths_[probe->node];
  if ((fp.flags & kPathRawReplayable) == 0 || fp.in_iface != p.in_iface || fp.entry_id != ct_.at(probe->slot()).id)
    return false;
  const FlowCounters& c = path_counters_[probe->node];
  count_path(probe->node, 0, fp.raw_length, 1, p.key.l3_len);
  std::copy_n(c.counter, fp.raw_length, w.counter);
  std::copy_n(c.table_of, fp.raw_length, w.table_of);
  w.length = w.raw_length = fp.raw_length;
  w.raw_replayable = true;
  return true;
}

[[gnu::always_inline]] inline bool Pipeline::record_matches(const FlowPath& fp, const CtEntry& e,
                                                            const CtResult& r) const noexcept {
  return fp.entry_id == e.id && ((state_bits_of(e, r) ^ fp.ct_state) & fp.state_mask) == 0 &&
         ((status_key(e) ^ fp.ct_status) & fp.status_mask) == 0;
}

bool Pipeline::try_fast_path(PacketIn& p, PacketOut& out, const CtResult& r, const Walked& w) noexcept {
  const CtEntry* e = ct_.entry(r.entry);
  if (e == nullptr) return false;
  if (p.key.has(key_flag::kInner)) return false;  // ICMP errors carry a quoted header NAT rewrites too
  const uint32_t node = r.entry * 2 + dir_index(r.dir);
  const FlowPath& fp = paths_[node];
  if (fp.in_iface != p.in_iface || ((fp.flags & kPathL2) != 0) != br_.l2 || !record_matches(fp, *e, r)) return false;
  // raw's part: counted already when it was replayed, and when it was walked
  // the walk's own path stands in for it.
  if (((fp.flags & kPathRawReplayable) != 0) != w.raw_replayable || fp.raw_length != w.raw_length) return false;
  const auto fate = static_cast<Fate>(fp.fate);
  if (fate == Fate::Forwarded && p.key.ttl <= 1) return false;  // the walk drops it before FORWARD
  // From here on the packet is the recorded path's: count it, then rewrite it
  // as the walk would (destination at PREROUTING, source at POSTROUTING or
  // INPUT, TTL when forwarded). The parser guarantees the L4 header.
  count_path(node, fp.raw_length, fp.length, 1, p.key.l3_len);
  out.fate = fate;
  if (fate_emitted(fate) && p.frame != nullptr) nat_rewrite_apply(fp.rewrite, p.key, p.frame);
  out.out_iface = fp.out_iface;
  out.ct_state = ct_.state_bits(r);
  out.fast_path = true;
  return true;
}

// What the rules a walk tested look at that can vary within a flow. -m
// physdev answers the same for every packet without bridge info (they have
// no ports); with it, the ports are not part of a record.
uint32_t Pipeline::vary_of(uint32_t walk_vary) const noexcept {
  return br_.info ? walk_vary : walk_vary & ~kVaryPhysdev;
}

void Pipeline::record_fast_path(const CtResult& r, const Walked& w, Fate fate, uint16_t in_iface,
                                uint16_t out_iface, bool bridged) noexcept {
  if (!config_.fast_path || !r.has_entry() || w.overflow || w.side_effects) return;
  if ((vary_of(w.vary) & kVaryBlocksFastPath) != 0) return;
  const CtEntry* e = ct_.entry(r.entry);
  // Both nat hooks consulted: later packets never walk nat, whatever their state.
  if (e == nullptr || !e->has(ct_status::kSrcNatDone | ct_status::kDstNatDone)) return;
  const uint32_t node = r.entry * 2 + dir_index(r.dir);
  flush_path(node);  // its pending packets belong to the path it had
  FlowPath& fp = paths_[node];
  fp.entry_id = e->id;
  fp.ct_state = ct_.state_bits(r);
  fp.state_mask = (w.vary & kVaryCtState) != 0 ? 0xff : 0;
  fp.ct_status = w.ct_status;
  fp.status_mask = (w.vary & kVaryCtStatus) != 0 ? 0x0f : 0;
  fp.length = static_cast<uint8_t>(w.length);
  fp.raw_length = static_cast<uint8_t>(w.raw_length);
  fp.flags = static_cast<uint8_t>((w.raw_replayable ? kPathRawReplayable : 0) | (br_.l2 ? kPathL2 : 0));
  fp.in_iface = in_iface;
  fp.fate = static_cast<uint8_t>(fate);
  fp.out_iface = out_iface;
  // A bridged packet keeps its TTL.
  fp.rewrite = nat_rewrite_for(*e, r.dir, fate == Fate::Forwarded && !bridged);
  FlowCounters& c = path_counters_[node];
  std::copy_n(w.counter, w.length, c.counter);
  std::copy_n(w.table_of, w.length, c.table_of);
}

// The established path (see pipeline.h). Nothing is changed before it is
// sure to apply, except the conntrack step, after which a record that does
// not match hands the packet to the general path with raw's part counted.
[[gnu::always_inline]] inline bool Pipeline::fast_one(PacketIn& p, PacketOut& out, const CtProbe& probe) noexcept {
  if (!probe.hit()) return false;
  const uint32_t node = probe.node;
  FlowPath& fp = paths_[node];
  const CtEntry& e = ct_.at(probe.slot());
  if (fp.entry_id != e.id || fp.in_iface != p.in_iface || fp.flags != (kPathRawReplayable | (br_.l2 ? kPathL2 : 0)))
    return false;
  const auto fate = static_cast<Fate>(fp.fate);
  if (fate == Fate::Forwarded && p.key.ttl <= 1) return false;  // the walk drops it before FORWARD
  const uint8_t tracked = ct_.track_fast(p.key, p.frame, p.len, p.ts_ns, l4_check(p), probe);
  if (tracked == 0) return false;
  CtResult ct;
  ct.entry = probe.slot();
  ct.dir = probe.dir();
  ct.state = tracked;
  const uint8_t state = state_bits_of(e, ct);
  if (((state ^ fp.ct_state) & fp.state_mask) != 0 || ((status_key(e) ^ fp.ct_status) & fp.status_mask) != 0) {
    // The state moved on: raw's part as recorded, the rest walked.
    MatchContext ctx;
    Walked w;
    start_walk(p, ctx, w);
    const FlowCounters& c = path_counters_[node];
    count_path(node, 0, fp.raw_length, 1, p.key.l3_len);
    std::copy_n(c.counter, fp.raw_length, w.counter);
    std::copy_n(c.table_of, fp.raw_length, w.table_of);
    w.length = w.raw_length = fp.raw_length;
    w.raw_replayable = true;
    out = PacketOut{};
    const Fate f = after_conntrack(p, out, ctx, w, ct, false);
    out.fate = f;
    if (f != Fate::Forwarded) out.out_iface = kNoIface;
    ++stats_.by_fate[static_cast<size_t>(f)];
    return true;
  }
  // The recorded path: counted when read, the packet rewritten as walked.
  if (fp.pending_packets++ == 0) dirty_.push_back(node);
  fp.pending_bytes += p.key.l3_len;
  nat_rewrite_apply(fp.rewrite, p.key, p.frame);
  out = PacketOut{fate, fate == Fate::Forwarded ? fp.out_iface : kNoIface, state, true, 0, DefragDrop::None};
  ++stats_.fast_path_packets;
  ++stats_.by_fate[fp.fate];
  return true;
}

void Pipeline::start_walk(PacketIn& p, MatchContext& ctx, Walked& w) noexcept {
  ctx.key = &p.key;
  ctx.frame = p.frame;
  ctx.frame_len = p.len;
  ctx.in_iface = p.in_iface;
  ctx.out_iface = kNoIface;
  ctx.in_port = br_.in_port;
  ctx.bridge_info = br_.info;
  ctx.hook = Hook::Prerouting;
  ctx.now_ns = p.ts_ns;
  ctx.host = &host_;
  ctx.nf_trace = trace_ != nullptr;
  ctx.strings = strings_.get();
  ctx.conns = &conn_liveness_;
  scan_current_ = false;  // a new packet
  walk_entry_ = nullptr;  // raw runs before conntrack
  walk_packet_ = &p;
  w.path = PathBuffer{path_storage_.data(), static_cast<uint32_t>(path_storage_.size()), 0, 0};
  w.events = EventBuffer{event_storage_.data(), static_cast<uint32_t>(event_storage_.size()), 0, 0};
}

Fate Pipeline::run_one(PacketIn& p, PacketOut& out, const CtProbe* probe) noexcept {
  PacketKey& key = p.key;
  CtProbe completed;
  // nf_defrag_ipv4, before raw PREROUTING: a fragment is held, dropped, or
  // completes its datagram, which then goes through the hooks in its place.
  if (key.is_fragment()) {
    const DefragResult d = defrag_.add(key, p.frame, p.len, p.ts_ns);
    move_fates(Fate::FragmentHeld, Fate::DroppedFragment, d.discarded + d.expired);
    if (d.status == DefragStatus::Held) return Fate::FragmentHeld;
    if (d.status == DefragStatus::Dropped) {
      out.defrag_drop = d.reason;
      return Fate::DroppedFragment;
    }
    key = d.key;
    p.frame = d.frame;
    p.len = d.len;
    p.rx_csum = RxCsum::Unknown;  // the NIC saw fragments, not this datagram
    p.csum_wrong = false;
    out.fragments = d.fragments;
    completed_slot_ = d.output_slot;
    if (!key.has(key_flag::kInner)) {
      completed = ct_.probe(tuple_of(key, p.frame));
      probe = &completed;
    }
  }

  MatchContext ctx;
  Walked w;
  start_walk(p, ctx, w);

  // raw PREROUTING: before conntrack, so no entry is attached yet. Its
  // recorded part is replayed when the flow's record allows it.
  const bool fast = config_.fast_path && trace_ == nullptr;
  WalkResult r;
  if (!(fast && !key.has(key_flag::kInner) && replay_raw(p, probe, w))) {
    r = walk(TableId::Raw, Hook::Prerouting, ctx, w);
    if (r.verdict != WalkResult::Accept) return fate_of(r);
    // raw's part may be replayed later if its walk was a function of the
    // flow and the ingress interface; otherwise a recorded path starts after it.
    w.raw_replayable = !w.overflow && !w.side_effects && (vary_of(w.vary) & kVaryBlocksFastPath) == 0;
    if (!w.raw_replayable) w.length = 0;
    w.raw_length = w.length;
    w.vary = 0;
    w.overflow = false;
    w.side_effects = r.trace;  // a TRACE rule in raw: this packet is traced, walk it
  }

  CtResult ct;
  if (!r.untrack) {
    // A zone from raw's CT template: process() looks the packet up in it
    // (the probe, made before raw, was in the default zone).
    const CtZone zone = r.ct_template != nullptr ? zone_of(*r.ct_template, r.mark) : CtZone{};
    ct = ct_.process(key, p.frame, p.len, p.ts_ns, l4_check(p), key.has(key_flag::kInner) ? nullptr : probe, zone);
    if (ct.verdict == CtVerdict::Drop) return Fate::DroppedByConntrack;
  }
  return after_conntrack(p, out, ctx, w, ct, r.untrack);
}

[[gnu::always_inline]] inline bool Pipeline::nat_at_hook(NatManip manip, const NatContext& nctx, PacketIn& p, MatchContext& ctx, Walked& w,
                           const CtResult& ct, Fate& fate) noexcept {
  if (!ct.has_entry()) return true;
  CtEntry* e = ct_.entry(ct.entry);
  const uint32_t done = manip == NatManip::Dst ? ct_status::kDstNatDone : ct_status::kSrcNatDone;
  if (ct.state == kCtNew && !e->has(done)) {
    const WalkResult r = walk(TableId::Nat, nctx.hook, ctx, w);
    w.side_effects = true;
    if (r.verdict != WalkResult::Accept) {
      fate = fate_of(r);
      return false;
    }
    const bool bound = r.nat != nullptr ? nat_bind(ct_, ct.entry, manip, *r.nat, nctx)
                                        : nat_null_binding(ct_, ct.entry, manip, nctx);
    if (!bound) {
      fate = Fate::DroppedByNat;
      return false;
    }
  }
  if (!nat_apply(*e, ct.dir, manip, p.key, p.frame, p.len)) {
    fate = Fate::DroppedByNat;
    return false;
  }
  return true;
}

Fate Pipeline::after_conntrack(PacketIn& p, PacketOut& out, MatchContext& ctx, Walked& w, CtResult& ct,
                               bool untracked) noexcept {
  PacketKey& key = p.key;
  const auto dropped = [&](Fate f) {
    ct_.discard(ct);
    return f;
  };
  const bool fast = config_.fast_path && trace_ == nullptr;
  if (fast && ct.has_entry() && !ct.created && try_fast_path(p, out, ct, w)) {
    ++stats_.fast_path_packets;
    if (!fate_emitted(out.fate)) {
      ct_.discard(ct);
      return out.fate;
    }
    if (!ct_.confirm(ct, p.ts_ns)) return Fate::DroppedByConntrack;
    return out.fate;
  }
  ++stats_.walked_packets;
  walk_entry_ = ct.has_entry() ? ct_.entry(ct.entry) : nullptr;
  if (untracked) {
    ctx.ct = CtView{};
    ctx.ct.state_bits = kCtUntracked;
  } else {
    fill_ct_view(ctx, ct);
    w.ct_status = ctx.ct.status_bits;
  }
  out.ct_state = ctx.ct.state_bits;

  WalkResult r = walk(TableId::Mangle, Hook::Prerouting, ctx, w);
  if (r.verdict != WalkResult::Accept) return dropped(fate_of(r));

  // nat PREROUTING: only a connection's first packet walks it (INVALID and
  // untracked packets never do); every packet then gets the binding's rewrite.
  Fate nat_fate = Fate::DroppedByNat;
  const uint32_t dst_before_nat = key.dst_ip;
  if (!nat_at_hook(NatManip::Dst, NatContext{Hook::Prerouting, p.in_iface, kNoIface, 0, &host_, &nat_}, p, ctx, w,
                   ct, nat_fate)) {
    return dropped(nat_fate);
  }
  if (ct.has_entry()) fill_ct_view(ctx, ct);

  // Routing on the (post-DNAT) destination, unless br_netfilter bridges it
  // (netfilter/host.h "Bridges").
  RouteDecision route = host_.route_input(key.dst_ip, key.src_ip, p.in_iface);
  bool bridged = false;
  bool flooded = false;  // bridged to a station the bridge never saw, from a known port
  uint16_t out_port = kNoIface;
  if (br_.info) {
    if (key.dst_ip != dst_before_nat) {
      // Bridged DNAT: the new destination routes out the same bridge. (With
      // ip_forward=0 the input route is an error route and the packet dies:
      // the bridge_no_forward scenario.)
      if (route.to_forward() && route.out_iface == p.in_iface) {
        bridged = true;
        // The station behind the in port (an endpoint reaching itself): the
        // bridge sends it back out that port only in hairpin mode
        // (should_deliver()), else drops it before FORWARD.
        const uint32_t learned = stations_.port_of_ip(p.in_iface, key.dst_ip);
        if (br_.in_port != kNoIface && learned == br_.in_port && hairpin_[br_.in_port] == 0)
          return dropped(Fate::DroppedByBridge);
        out_port = station_port(p.in_iface, learned);
        // A station never seen is flooded (one seen only on the bridge
        // itself, as a capture on the bridge shows it, has a port the
        // kernel knows and the model does not: one walk, port unknown).
        flooded = learned == BridgeStations::kUnknown && br_.in_port != kNoIface;
      }
    } else if (br_.l2) {
      bridged = true;
      out_port = br_.l2_port;
    }
  }
  if (bridged) {
    route = RouteDecision{};
    route.verdict = RouteVerdict::Forward;
    route.type = AddrType::Unicast;
    route.out_iface = p.in_iface;
    route.next_hop = key.dst_ip;
    ctx.bridged = true;
    ctx.out_port = out_port;
  }
  if (route.to_input()) {
    ctx.hook = Hook::Input;
    r = walk(TableId::Mangle, Hook::Input, ctx, w);
    if (r.verdict != WalkResult::Accept) return dropped(fate_of(r));
    r = walk(TableId::Filter, Hook::Input, ctx, w);
    if (r.verdict != WalkResult::Accept) return dropped(fate_of(r));
    if (!nat_at_hook(NatManip::Src, NatContext{Hook::Input, p.in_iface, kNoIface, 0, &host_, &nat_}, p, ctx, w,
                     ct, nat_fate)) {
      return dropped(nat_fate);
    }
    record_fast_path(ct, w, Fate::Delivered, p.in_iface, kNoIface);  // before confirm(), which lets go of the entry
    if (!ct_.confirm(ct, p.ts_ns)) return Fate::DroppedByConntrack;
    return Fate::Delivered;
  }
  if (!route.to_forward()) return dropped(Fate::DroppedByRouting);
  if (!bridged && !forward_ttl(p)) return dropped(Fate::DroppedTtlExceeded);

  out.out_iface = route.out_iface;
  if (flooded) {
    // The bridge does not know the station's port: it floods the frame.
    uint16_t only = kNoIface;
    const uint32_t ports = flood_ports(p.in_iface, only);
    if (ports == 0) return dropped(Fate::DroppedByBridge);
    if (ports > 1) {
      const Fate f = flood(p, ctx, w, ct, p.in_iface);
      if (f != Fate::Forwarded) return dropped(f);
      if (!ct_.confirm(ct, p.ts_ns)) return Fate::DroppedByConntrack;
      return Fate::Forwarded;
    }
    ctx.out_port = only;
  }
  const Fate f = forward_hooks(p, ctx, w, ct, route.out_iface, route.next_hop);
  if (f != Fate::Forwarded) return dropped(f);
  record_fast_path(ct, w, Fate::Forwarded, p.in_iface, route.out_iface, bridged);  // before confirm(), which lets go of the entry
  if (!ct_.confirm(ct, p.ts_ns)) return Fate::DroppedByConntrack;
  return Fate::Forwarded;
}

Fate Pipeline::forward_hooks(PacketIn& p, MatchContext& ctx, Walked& w, const CtResult& ct, uint16_t out_iface,
                             uint32_t next_hop) noexcept {
  const uint16_t in_iface = p.in_iface;
  ctx.hook = Hook::Forward;
  ctx.in_iface = in_iface;
  ctx.out_iface = out_iface;
  WalkResult r = walk(TableId::Mangle, Hook::Forward, ctx, w);
  if (r.verdict != WalkResult::Accept) return fate_of(r);
  r = walk(TableId::Filter, Hook::Forward, ctx, w);
  if (r.verdict != WalkResult::Accept) return fate_of(r);

  // POSTROUTING has no input interface in the kernel's hook state.
  ctx.hook = Hook::Postrouting;
  ctx.in_iface = kNoIface;
  r = walk(TableId::Mangle, Hook::Postrouting, ctx, w);
  if (r.verdict != WalkResult::Accept) return fate_of(r);
  Fate nat_fate = Fate::DroppedByNat;
  if (!nat_at_hook(NatManip::Src, NatContext{Hook::Postrouting, in_iface, out_iface, next_hop, &host_, &nat_}, p,
                   ctx, w, ct, nat_fate)) {
    return nat_fate;
  }
  return Fate::Forwarded;
}

// br_flood(): a copy per port, newest port first (the kernel's port list
// adds at its head; ids follow creation here), each from the packet as
// routing left it; conntrack's entry is confirmed once, if any copy gets
// out. The frame goes on as the last copy that got out. Never recorded for
// the fast path (its counters are several walks).
Fate Pipeline::flood(PacketIn& p, MatchContext& ctx, Walked& w, CtResult& ct, uint16_t bridge) noexcept {
  const PacketKey key = p.key;
  const MatchContext start = ctx;
  const uint32_t len = p.frame != nullptr && p.len <= flood_frame_.size() ? p.len : 0;
  if (len != 0) std::memcpy(flood_frame_.data(), p.frame, len);
  const auto restore = [&] {
    p.key = key;
    if (len != 0) std::memcpy(p.frame, flood_frame_.data(), len);
    ctx = start;
    // The copies share the connection: each sees it as the copies before
    // it left it (a source binding, a connmark).
    if (ct.has_entry()) fill_ct_view(ctx, ct);
  };
  Fate fate = Fate::DroppedByBridge;
  bool out = false;
  bool last_out = false;
  bool first = true;
  const std::span<const uint16_t> ports = host_.ports_of(bridge);
  for (auto it = ports.rbegin(); it != ports.rend(); ++it) {
    const uint16_t q = *it;
    if (q == br_.in_port && hairpin_[q] == 0) continue;
    if (!first) restore();
    first = false;
    ctx.out_port = q;
    const Fate f = forward_hooks(p, ctx, w, ct, bridge, p.key.dst_ip);
    last_out = f == Fate::Forwarded;
    out = out || last_out;
    if (!last_out) fate = f;
  }
  w.overflow = true;
  if (!out) return fate;
  if (!last_out) {
    // The copy that went on: the packet as routing left it, with the
    // connection's source binding (bound by an earlier copy).
    restore();
    if (const CtEntry* e = ct_.entry(ct.entry)) (void)nat_apply(*e, ct.dir, NatManip::Src, p.key, p.frame, p.len);
  }
  return Fate::Forwarded;
}

void Pipeline::move_fates(Fate from, Fate to, uint64_t n) noexcept {
  stats_.by_fate[static_cast<size_t>(from)] -= n;
  stats_.by_fate[static_cast<size_t>(to)] += n;
}

void Pipeline::process(std::span<PacketIn> packets, std::span<PacketOut> results) noexcept {
  const size_t n = std::min(packets.size(), results.size());
  ++call_;
  constexpr size_t kStage = kBurstStage;
  CtProbe* const probes = probes_.data();  // scratch: nothing to construct per call
  bool* const keyed = keyed_.data();
  for (size_t base = 0; base < n; base += kStage) {
    const size_t m = std::min(kStage, n - base);
    // Stage 1: the tuples' hashes, their buckets loading. Fragments wait for
    // reassembly; ICMP errors are looked up by their quoted header.
    for (size_t i = 0; i < m; ++i) {
      const PacketKey& k = packets[base + i].key;
      keyed[i] = !k.is_fragment() && !k.has(key_flag::kInner);
      if (!keyed[i]) continue;
      probes[i].tuple = tuple_of(k, packets[base + i].frame);
      ct_.start(probes[i]);
    }
    // Stage 2: the entries whose signatures match, and their flow records,
    // loading.
    for (size_t i = 0; i < m; ++i) {
      if (!keyed[i]) continue;
      const uint32_t node = ct_.prefetch_entries(probes[i]);
      if (node != kNoEntry && !paths_.empty()) __builtin_prefetch(&paths_[node]);
    }
    // Stage 3: each packet in order, looked up as the table is now.
    const bool fast = config_.fast_path && trace_ == nullptr;
    for (size_t i = 0; i < m; ++i) {
      PacketIn& p = packets[base + i];
      PacketOut& out = results[base + i];
      // ipfrag_time runs on packet timestamps: datagrams that timed out by
      // now are gone before this packet is looked at.
      if (defrag_.datagrams() != 0) {
        move_fates(Fate::FragmentHeld, Fate::DroppedFragment, defrag_.expire(p.ts_ns));
      }
      br_ = BridgeFacts{};
      if (bridge_of_ptr_ != nullptr && bridge_of_ptr_[p.in_iface] != kNoIface) {
        bridge_ingress(p, bridge_of_ptr_[p.in_iface]);
        if (br_.l2 && !br_.info) {
          // bridge-nf-call-iptables=0: switched, netfilter never sees it.
          if (keyed[i]) ct_.finish(probes[i]);
          out = PacketOut{};
          out.fate = Fate::Bridged;
          out.out_iface = p.in_iface;
          ++stats_.by_fate[static_cast<size_t>(Fate::Bridged)];
          continue;
        }
      }
      CtProbe* probe = nullptr;
      if (keyed[i]) {
        ct_.finish(probes[i]);
        probe = &probes[i];
        // The established path counts its own fates.
        if (fast && probe->hit() && fast_one(p, out, *probe)) continue;
      }
      out = PacketOut{};
      const Fate f = run_one(p, out, probe);
      out.fate = f;
      if (f != Fate::Forwarded) out.out_iface = kNoIface;
      ++stats_.by_fate[static_cast<size_t>(f)];
      if (out.fragments != 0) {
        // The fragments held for this datagram share its fate.
        move_fates(Fate::FragmentHeld, f, out.fragments - 1U);
        const uint32_t s = completed_slot_;
        if (output_call_[s] == call_) {
          packets[output_owner_[s]].frame = nullptr;
          packets[output_owner_[s]].len = 0;
        }
        output_call_[s] = call_;
        output_owner_[s] = static_cast<uint32_t>(base + i);
      }
    }
  }
}


size_t Pipeline::classifier_bytes() const noexcept {
  size_t total = 0;
  for (const auto& c : compiled_) total += c ? c->memory_bytes() : 0;
  return total;
}
}  // namespace nfb
