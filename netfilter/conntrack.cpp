// Connection tracking table: lookup by either tuple, creation and
// confirmation, per-protocol tracking, timeouts on the capture clock, table
// full handling and the conntrack -L dump. See conntrack.h for the contracts
// and netfilter/conntrack.md for the kernel facts.
#include "netfilter/conntrack.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <stdexcept>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/ip_protocol.h"

namespace nfb {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ULL;
constexpr uint32_t kEvictionRange = 8;                 // hash chains early_drop looks at
constexpr uint32_t kMaxSize = 1U << 30;
constexpr uint64_t kShrinkMinRemainingNs = 120 * kNsPerSec;


// The answer to a query type and back; -1 for types that have none.
constexpr int icmp_counterpart(uint8_t type) noexcept {
  switch (type) {
    case 8: return 0;
    case 0: return 8;
    case 13: return 14;
    case 14: return 13;
    case 15: return 16;
    case 16: return 15;
    case 17: return 18;
    case 18: return 17;
    default: return -1;
  }
}

CtReason reason_of(TcpReason r) noexcept {
  switch (r) {
    case TcpReason::Truncated: return CtReason::Truncated;
    case TcpReason::BadFlags: return CtReason::TcpBadFlags;
    case TcpReason::CannotOpen: return CtReason::TcpCannotOpen;
    case TcpReason::InvalidRst: return CtReason::TcpInvalidRst;
    case TcpReason::SeqOverWindow: return CtReason::TcpSeqOverWindow;
    case TcpReason::AckOverEnd: return CtReason::TcpAckOverEnd;
    default: return CtReason::TcpStateTable;
  }
}

CtReason sctp_reason(SctpReason r) noexcept {
  switch (r) {
    case SctpReason::CannotOpen: return CtReason::SctpCannotOpen;
    case SctpReason::BadVtag: return CtReason::SctpBadVtag;
    case SctpReason::StateTable: return CtReason::SctpStateTable;
    default: return CtReason::SctpBadChunks;
  }
}

// conntrack(8)'s name of a protocol ("unknown" when it has none).
const char* proto_name(uint8_t proto) noexcept {
  switch (proto) {
    case kProtoTcp: return "tcp";
    case kProtoUdp: return "udp";
    case kProtoIcmp: return "icmp";
    case kProtoSctp: return "sctp";
    case kProtoUdplite: return "udplite";
    case kProtoDccp: return "dccp";
    case kProtoGre: return "gre";
    default: return "unknown";
  }
}

void append_tuple(std::string& out, const Tuple& t) {
  auto ip = [](uint32_t a) {
    return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xffU, (a >> 8) & 0xffU, a & 0xffU);
  };
  fmt::format_to(std::back_inserter(out), "src={} dst={} ", ip(t.src), ip(t.dst));
  // conntrack(8) prints ports for every protocol it knows to have them, DCCP
  // too (which this kernel tracks as generic: its tuple's ports are 0).
  if (t.proto == kProtoTcp || t.proto == kProtoUdp || t.proto == kProtoSctp || t.proto == kProtoUdplite ||
      t.proto == kProtoDccp) {
    fmt::format_to(std::back_inserter(out), "sport={} dport={} ", t.sport, t.dport);
  } else if (t.proto == kProtoIcmp) {
    fmt::format_to(std::back_inserter(out), "type={} code={} id={} ", t.icmp_type(), t.icmp_code(),
                   t.sport);
  } else if (t.proto == kProtoGre) {
    fmt::format_to(std::back_inserter(out), "srckey={:#x} dstkey={:#x} ", t.sport, t.dport);
  }
}


}  // namespace

// ---------------------------------------------------------------- tuples

bool Tuple::invert(Tuple& out) const noexcept {
  Tuple r;
  r.src = dst;
  r.dst = src;
  r.proto = proto;
  r.zone = zone;
  if (proto == kProtoIcmp) {
    const int answer = icmp_counterpart(icmp_type());
    if (answer < 0) return false;
    r.sport = sport;  // the identifier stays
    r.dport = icmp_word(static_cast<uint8_t>(answer), icmp_code());
  } else {
    r.sport = dport;
    r.dport = sport;
  }
  out = r;
  return true;
}


// ---------------------------------------------------------------- construction

ConntrackTable::ConntrackTable(const CtConfig& config) : config_(config) {
  if (config_.max_entries == 0 || config_.max_entries > kMaxSize)
    throw std::invalid_argument("conntrack: max_entries must be in 1..2^30");
  if (config_.buckets > kMaxSize) throw std::invalid_argument("conntrack: buckets must be <= 2^30");
  const uint32_t n = config_.max_entries;
  entries_ = ZeroedArray<CtEntry>(n);
  links_.resize(n);
  free_.resize(n);
  // Pop order: slot 0 first.
  for (uint32_t i = 0; i < n; ++i) free_[i] = n - 1 - i;
  chains_ = config_.buckets == 0 ? n : config_.buckets;
  // 2n nodes at most over n / 2 buckets of 8 ways: half full when the
  // table is.
  nbuckets_ = std::max<uint32_t>(1, n / 2);
  buckets_.resize(nbuckets_);
  // Overflow: a chain of k nodes uses ceil(k / 8) - 1 overflow buckets, so
  // all chains together use at most 2n / 8 of them.
  overflow_.resize(n / 4 + 1);
  for (uint32_t i = 0; i < overflow_.size(); ++i)
    overflow_[i].next = i + 1 < overflow_.size() ? i + 1 : kNone;
  overflow_free_ = 0;
  wheel_.assign(kWheelSlots, kNone);
}

bool ConntrackTable::counts_as_connection(uint32_t handle, uint64_t id, uint64_t now_ns) const noexcept {
  const CtEntry* e = entry(handle);
  if (e == nullptr || e->id != id) return false;
  if (e->has(ct_status::kConfirmed) && e->deadline_ns <= now_ns) return false;
  if (e->proto() == kProtoTcp && (e->tcp.state == TcpCtState::TimeWait || e->tcp.state == TcpCtState::Close))
    return false;
  return true;
}

// ---------------------------------------------------------------- the index





CtProbe ConntrackTable::probe_in_zone(Tuple t, CtZone zone) const noexcept {
  t.zone = zone.id_for(CtDir::Original);
  CtProbe p = probe(t);
  const uint16_t reply_id = zone.id_for(CtDir::Reply);
  // A hit counts when the direction it found carries the packet's id for
  // that direction.
  if (p.hit() && (p.dir() == CtDir::Original || reply_id == t.zone)) return p;
  if (reply_id != t.zone) {
    Tuple r = t;
    r.zone = reply_id;
    const CtProbe q = probe(r);
    if (q.hit() && q.dir() == CtDir::Reply) return q;
  }
  p.node = kNoEntry;  // none: a new entry starts from p (ORIGINAL's id and hash)
  return p;
}

uint32_t ConntrackTable::find_live(const Tuple& t, uint64_t hash) noexcept {
  const uint32_t node = lookup(t, hash);
  if (node == kNoEntry || !expired(node >> 1)) return node;
  // Gone: free it now (as the kernel does when a lookup meets one). No
  // other entry can hold the tuple: confirm() refuses a second one.
  ++counters_.expired;
  kill(node >> 1);
  return kNoEntry;
}

void ConntrackTable::index_insert(uint32_t node, uint64_t hash) noexcept {
  Bucket* b = &buckets_[bucket_index(hash)];
  while (b->count == kWays) {
    if (b->next == kNone) {
      // Never empty: overflow_ is sized for every node in overflow.
      const uint32_t o = overflow_free_;
      overflow_free_ = overflow_[o].next;
      overflow_[o] = Bucket{};
      b->next = o;
    }
    b = &next_bucket(*b);
  }
  b->sig[b->count] = sig_of(hash);
  b->node[b->count] = node;
  ++b->count;
  ++generation_;
}

bool ConntrackTable::index_insert_unless_taken(uint32_t node, uint64_t hash, const Tuple& t) noexcept {
  const uint16_t sig = sig_of(hash);
  for (;;) {
    Bucket* b = &buckets_[bucket_index(hash)];
    uint32_t gone = kNoEntry;  // an expired entry with the tuple: freed, then the walk starts again
    for (;;) {
      for (uint32_t m = match(*b, sig); m != 0 && gone == kNoEntry; m &= m - 1) {
        const uint32_t other = b->node[std::countr_zero(m) >> 1];
        if (!same(entries_[other >> 1].tuple[other & 1], t)) continue;
        if (!expired(other >> 1)) return false;
        gone = other >> 1;
      }
      if (gone != kNoEntry) break;
      if (b->count < kWays) {
        // Dense ways: a bucket with a free way is the chain's last.
        b->sig[b->count] = sig;
        b->node[b->count] = node;
        ++b->count;
        ++generation_;
        return true;
      }
      if (b->next == kNone) {
        index_insert(node, hash);
        return true;
      }
      b = &next_bucket(*b);
    }
    ++counters_.expired;
    kill(gone);
  }
}

void ConntrackTable::index_remove(uint32_t node, uint64_t hash) noexcept {
  const uint16_t sig = sig_of(hash);
  Bucket* b = &buckets_[bucket_index(hash)];
  Bucket* at = nullptr;
  uint32_t way = 0;
  for (;; b = &next_bucket(*b)) {
    for (uint32_t m = match(*b, sig); m != 0 && at == nullptr; m &= m - 1) {
      if (b->node[std::countr_zero(m) >> 1] == node) {
        at = b;
        way = static_cast<uint32_t>(std::countr_zero(m) >> 1);
      }
    }
    if (at != nullptr || b->next == kNone) break;
  }
  if (at == nullptr) return;
  ++generation_;
  // Dense ways: the chain's last node fills the hole.
  Bucket* prev = nullptr;
  Bucket* last = &buckets_[bucket_index(hash)];
  while (last->next != kNone) {
    prev = last;
    last = &next_bucket(*last);
  }
  const uint32_t tail = last->count - 1U;
  at->sig[way] = last->sig[tail];
  at->node[way] = last->node[tail];
  --last->count;
  if (last->count == 0 && prev != nullptr) {
    const uint32_t o = prev->next;
    prev->next = kNone;
    overflow_[o].next = overflow_free_;
    overflow_free_ = o;
  }
}

// ---------------------------------------------------------------- the wheel

void ConntrackTable::wheel_link(uint32_t slot) noexcept {
  Links& l = links_[slot];
  CtEntry& e = entries_[slot];
  e.wheel_tick = static_cast<uint32_t>(e.deadline_ns >> kWheelShift);
  const uint32_t w = e.wheel_tick & (kWheelSlots - 1);
  l.on_wheel = true;
  l.wheel_prev = kNone;
  l.wheel_next = wheel_[w];
  if (l.wheel_next != kNone) links_[l.wheel_next].wheel_prev = slot;
  wheel_[w] = slot;
}

void ConntrackTable::wheel_unlink(uint32_t slot) noexcept {
  Links& l = links_[slot];
  if (!l.on_wheel) return;
  if (l.wheel_prev != kNone)
    links_[l.wheel_prev].wheel_next = l.wheel_next;
  else
    wheel_[entries_[slot].wheel_tick & (kWheelSlots - 1)] = l.wheel_next;
  if (l.wheel_next != kNone) links_[l.wheel_next].wheel_prev = l.wheel_prev;
  l.wheel_prev = l.wheel_next = kNone;
  l.on_wheel = false;
}

void ConntrackTable::expire(uint64_t now_ns) noexcept {
  clock_ns_ = std::max(clock_ns_, now_ns);
  const uint64_t now_tick = clock_ns_ >> kWheelShift;
  // Each slot once at most: after a full turn every slot has been seen.
  const uint64_t ticks = std::min<uint64_t>(now_tick - std::min(wheel_tick_, now_tick) + 1, kWheelSlots);
  for (uint64_t i = 0; i < ticks; ++i) {
    const auto w = static_cast<uint32_t>((now_tick - i) & (kWheelSlots - 1));
    for (uint32_t slot = wheel_[w]; slot != kNone;) {
      const uint32_t next = links_[slot].wheel_next;
      const CtEntry& e = entries_[slot];
      if (expired(slot)) {
        ++counters_.expired;
        kill(slot);
      } else if (static_cast<uint32_t>(e.deadline_ns >> kWheelShift) != e.wheel_tick) {
        // Its deadline moved on since it was linked: follow it.
        wheel_unlink(slot);
        wheel_link(slot);
      }
      slot = next;
    }
  }
  // The current tick's slot may still hold entries due later in this tick,
  // so it is swept again next time.
  wheel_tick_ = now_tick;
}

void ConntrackTable::relink(uint32_t slot) noexcept {
  wheel_unlink(slot);
  wheel_link(slot);
}

// ---------------------------------------------------------------- slots

void ConntrackTable::unlink(uint32_t slot) noexcept {
  CtEntry& e = entries_[slot];
  if ((e.status & ct_status::kConfirmed) != 0 && (e.status & ct_status::kDying) == 0) {
    index_remove(slot * 2, links_[slot].hash(0));
    index_remove(slot * 2 + 1, links_[slot].hash(1));
    wheel_unlink(slot);
  }
}

void ConntrackTable::free_slot(uint32_t slot) noexcept {
  links_[slot] = Links{};
  free_.push_back(slot);  // never reallocates: capacity is max_entries
  --used_;
}

void ConntrackTable::kill(uint32_t slot) noexcept {
  unlink(slot);
  entries_[slot].status |= ct_status::kDying;
  if (links_[slot].holds == 0) free_slot(slot);
}

void ConntrackTable::release(uint32_t slot) noexcept {
  Links& l = links_[slot];
  if (l.holds > 0) --l.holds;
  if (l.holds != 0) return;
  const uint32_t st = entries_[slot].status;
  if ((st & ct_status::kDying) != 0 || (st & ct_status::kConfirmed) == 0) free_slot(slot);
}

bool ConntrackTable::early_drop(uint32_t chain) noexcept {
  for (uint32_t i = 0; i < kEvictionRange; ++i) {
    const auto c = static_cast<uint32_t>((uint64_t{chain} + i) % chains_);
    // The buckets chain c's nodes can be in: those of the hashes whose high
    // word maps to c (bucket_index and chain_of are both monotonic in it).
    const uint64_t lo_hi = (uint64_t{c} << 32) / chains_ + (((uint64_t{c} << 32) % chains_) != 0 ? 1 : 0);
    const uint64_t hi_hi = ((uint64_t{c + 1} << 32) - 1) / chains_;
    const auto first = static_cast<uint32_t>((lo_hi * nbuckets_) >> 32);
    const auto last = static_cast<uint32_t>((std::min<uint64_t>(hi_hi, 0xffffffffULL) * nbuckets_) >> 32);
    uint64_t drops = 0;
    // Evict every non-ASSURED entry of this chain (rescanning after each
    // removal: a removal moves nodes, and an entry may own two of them).
    for (bool again = true; again;) {
      again = false;
      for (uint32_t bi = first; bi <= last && !again; ++bi) {
        for (const Bucket* b = &buckets_[bi]; b != nullptr && !again;
             b = b->next == kNone ? nullptr : &next_bucket(*b)) {
          for (uint32_t w = 0; w < b->count; ++w) {
            const uint32_t node = b->node[w];
            const uint32_t slot = node >> 1;
            if (chain_of(links_[slot].hash(node & 1)) != c) continue;
            if (expired(slot)) {
              ++counters_.expired;
            } else if ((entries_[slot].status & ct_status::kAssured) == 0) {
              ++drops;
            } else {
              continue;
            }
            kill(slot);
            again = true;
            break;
          }
        }
      }
    }
    if (drops != 0) {
      counters_.early_drop += drops;
      return true;
    }
  }
  return false;
}

uint32_t ConntrackTable::allocate(uint64_t orig_hash, uint64_t now) noexcept {
  if (used_ >= entries_.size()) {
    expire(now);
    if (used_ >= entries_.size() && !early_drop(chain_of(orig_hash))) return kNoEntry;
    // Evicted entries still held by an unfinished packet free no slot yet.
    if (free_.empty()) return kNoEntry;
  }
  const uint32_t slot = free_.back();
  free_.pop_back();
  ++used_;
  links_[slot] = Links{};
  links_[slot].used = true;
  links_[slot].set_hash(0, orig_hash);
  links_[slot].start_ns = now;
  // The first cache line only: the TCP state is tcp_open()'s to set (and
  // read for TCP entries alone), so a UDP or other entry never touches the
  // second line.
  CtEntry& e = entries_[slot];
  e.tuple = {};
  e.deadline_ns = 0;
  e.id = next_id_++;
  e.status = 0;
  e.mark = 0;
  e.timeout_s = 0;
  e.wheel_tick = 0;
  ++counters_.created;
  return slot;
}


// ---------------------------------------------------------------- packets

CtResult ConntrackTable::invalid(CtReason why, TcpReason tcp) noexcept {
  ++counters_.invalid;
  ++counters_.by_reason[static_cast<std::size_t>(why)];
  CtResult r;
  r.reason = why;
  r.tcp_reason = tcp;
  return r;
}

bool ConntrackTable::checksum_passes(const PacketKey& key, const uint8_t* frame, uint32_t len,
                                     L4Check check) noexcept {
  if (!config_.checksum || check == L4Check::Skip) return true;
  if (check == L4Check::TrustedBad) {
    ++counters_.trusted_bad_checksum;
    return true;
  }
  return l4_checksum_ok(frame, len, key);
}

CtResult ConntrackTable::process(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns,
                                 L4Check check, const CtProbe* probe, CtZone zone) noexcept {
  clock_ns_ = std::max(clock_ns_, now_ns);
  if (key.is_later_fragment()) return invalid(CtReason::Fragment);
  switch (key.proto) {
    case kProtoIcmp: return process_icmp(key, frame, len, check, zone.is_default() ? probe : nullptr, zone);
    case kProtoTcp:
      if (!key.has(key_flag::kTcpFlags)) return invalid(CtReason::Truncated, TcpReason::Truncated);
      break;
    case kProtoUdp:
    case kProtoUdplite:
    case kProtoSctp:  // the 12-byte common header (the kernel's "short packet")
      if (!key.has(key_flag::kPorts)) return invalid(CtReason::Truncated);
      break;
    case kProtoGre: {
      // gre_pkt_to_tuple() refuses PPTP's GRE with another payload than PPP.
      Tuple keys;
      const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
      if (frame != nullptr && l3_end <= len && !gre_tuple_keys(frame + key.l4_off, l3_end - key.l4_off, keys))
        return invalid(CtReason::GreNotPptp);
      break;
    }
    default: break;
  }
  if (!zone.is_default()) return track(key, probe_in_zone(tuple_of(key, frame), zone), frame, len, check, zone);
  if (probe != nullptr) return track(key, *probe, frame, len, check, zone);
  return track(key, this->probe(tuple_of(key, frame)), frame, len, check, zone);
}

CtResult ConntrackTable::process_icmp(const PacketKey& key, const uint8_t* frame, uint32_t len,
                                      L4Check check, const CtProbe* query, CtZone zone) noexcept {
  if (!key.has(key_flag::kIcmp)) return invalid(CtReason::Truncated);
  // The checksum comes first for ICMP (nf_conntrack_icmpv4_error()).
  if (!checksum_passes(key, frame, len, check)) return invalid(CtReason::BadChecksum);
  if (key.icmp_type > kIcmpLastKnownType) return invalid(CtReason::IcmpUnknownType);
  if (!icmp_is_error(key.icmp_type)) {
    // A query or an answer: tracked like any flow (the checksum is done).
    if (query != nullptr) return track(key, *query, frame, len, L4Check::Skip, zone);
    return track(key, probe_in_zone(tuple_of(key, frame), zone), frame, len, L4Check::Skip, zone);
  }

  // An error: find the flow of the packet it quotes. The quoted packet went
  // the other way, so its inverted tuple is the one to look up.
  if (!key.has(key_flag::kInner)) return invalid(CtReason::IcmpErrorInner);
  const InnerTuple& in = key.inner;
  // A non-first fragment quoted inside carries no L4 header.
  if (frame == nullptr || static_cast<uint32_t>(in.l3_off) + 8 > len ||
      (load_be16(frame + in.l3_off + 6) & ip_frag::kOffsetMask) != 0)
    return invalid(CtReason::IcmpErrorInner);
  Tuple quoted;
  quoted.src = in.src_ip;
  quoted.dst = in.dst_ip;
  quoted.proto = in.proto;
  if (in.proto == kProtoTcp || in.proto == kProtoUdp || in.proto == kProtoSctp || in.proto == kProtoUdplite) {
    if ((in.flags & inner_flag::kPorts) == 0) return invalid(CtReason::IcmpErrorInner);
    quoted.sport = in.src_port;
    quoted.dport = in.dst_port;
  } else if (in.proto == kProtoIcmp) {
    if ((in.flags & inner_flag::kIcmp) == 0) return invalid(CtReason::IcmpErrorInner);
    quoted.dport = Tuple::icmp_word(in.icmp_type, in.icmp_code);
    quoted.sport = in.icmp_id;
  }
  Tuple wanted;
  if (!quoted.invert(wanted)) return invalid(CtReason::IcmpErrorInner);
  // In the error's own zone (nf_conntrack_inet_error() looks up with it).
  uint32_t node = probe_in_zone(wanted, zone).node;
  if (node != kNoEntry && expired(node >> 1)) {
    ++counters_.expired;  // gone: freed, as find_live() does
    kill(node >> 1);
    node = kNoEntry;
  }
  if (node == kNoEntry) return invalid(CtReason::IcmpErrorNoFlow);
  const uint32_t slot = node >> 1;
  const auto dir = static_cast<CtDir>(node & 1);
  // The error must go to the endpoint of the direction it was found in.
  if (entries_[slot].tuple[dir_index(dir)].dst != key.dst_ip)
    return invalid(CtReason::IcmpErrorDaddr);
  ++counters_.found;
  ++counters_.related;
  hold(slot);
  CtResult r;
  r.entry = slot;
  r.dir = dir;
  r.state = kCtRelated;
  r.held = true;
  return r;
}

CtResult ConntrackTable::track(const PacketKey& key, const CtProbe& probe, const uint8_t* frame, uint32_t len,
                               L4Check check, CtZone zone) noexcept {
  const Tuple& t = probe.tuple;
  TcpSegment seg;
  if (t.proto == kProtoTcp && !read_tcp_segment(frame, len, key, seg))
    return invalid(CtReason::Truncated, TcpReason::Truncated);

  uint32_t node = probe.node;
  if (node != kNoEntry && expired(node >> 1)) {
    ++counters_.expired;  // gone: free it, as a kernel lookup that meets it does
    kill(node >> 1);
    node = kNoEntry;
  }
  for (;;) {  // once, or twice when a TCP SYN reopens a closed entry
    uint32_t slot = kNoEntry;
    CtDir dir = CtDir::Original;
    bool created = false;
    if (node != kNoEntry) {
      slot = node >> 1;
      dir = static_cast<CtDir>(node & 1);
      ++counters_.found;
    } else {
      // The new entry's tuples carry the zone's id of their direction (the
      // probe's tuple may carry REPLY's, when a reopening SYN found its old
      // entry in that direction).
      Tuple orig = t;
      orig.zone = zone.id_for(CtDir::Original);
      Tuple reply;
      if (!orig.invert(reply)) return invalid(CtReason::IcmpCannotOpen);
      reply.zone = zone.id_for(CtDir::Reply);
      slot = allocate(orig.zone == t.zone ? probe.hash : hash_of(orig), clock_ns_);
      if (slot == kNoEntry) {
        ++counters_.drop;
        ++counters_.by_reason[static_cast<std::size_t>(CtReason::TableFull)];
        CtResult r;
        r.verdict = CtVerdict::Drop;
        r.reason = CtReason::TableFull;
        return r;
      }
      entries_[slot].tuple = {orig, reply};
      created = true;
    }
    CtEntry& e = entries_[slot];
    const bool seen_reply = (e.status & ct_status::kSeenReply) != 0;
    const bool assured = (e.status & ct_status::kAssured) != 0;
    CtResult r;
    r.entry = slot;
    r.dir = dir;
    r.created = created;
    r.generation = generation_;
    r.state = (dir == CtDir::Reply || seen_reply) ? kCtEstablished : kCtNew;

    CtReason fail = CtReason::None;
    TcpReason tcp_fail = TcpReason::None;
    bool kill_after = false;
    switch (t.proto) {
      case kProtoTcp: {
        if (!checksum_passes(key, frame, len, check)) {
          fail = CtReason::BadChecksum;
        } else if (!tcp_flags_valid(seg.flags)) {
          fail = CtReason::TcpBadFlags;
          tcp_fail = TcpReason::BadFlags;
        } else if (created && !tcp_open(e.tcp, seg, config_.tcp)) {
          fail = CtReason::TcpCannotOpen;
          tcp_fail = TcpReason::CannotOpen;
        } else {
          const TcpUpdate u = tcp_track(e.tcp, dir, seg, seen_reply, assured, config_.tcp);
          r.tcp_reason = u.reason;
          switch (u.verdict) {
            case TcpVerdict::Reopen:
              ++counters_.reopened;
              kill(slot);
              node = kNoEntry;  // the SYN opens a new entry: the old one held its tuples
              continue;
            case TcpVerdict::Invalid:
              if (u.shrink_timeout && (e.status & ct_status::kConfirmed) != 0 &&
                  e.deadline_ns > clock_ns_) {
                const uint64_t left = e.deadline_ns - clock_ns_;
                if (left >= kShrinkMinRemainingNs && left > seconds(config_.tcp.timeouts.unacknowledged))
                  refresh(slot, config_.tcp.timeouts.unacknowledged);
              }
              fail = reason_of(u.reason);
              tcp_fail = u.reason;
              break;
            case TcpVerdict::Ignore:
              ++counters_.ignored;
              break;
            case TcpVerdict::Accept:
              if (u.set_assured) e.status |= ct_status::kAssured;
              if (u.refresh) refresh(slot, u.timeout_s);
              kill_after = u.kill;
              break;
          }
        }
        break;
      }
      case kProtoUdp: {
        const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
        if (frame == nullptr || l3_end > len || static_cast<uint32_t>(key.l4_off) + 8 > l3_end) {
          fail = CtReason::Truncated;
          break;
        }
        const uint8_t* udp = frame + key.l4_off;
        const uint16_t udp_len = load_be16(udp + 4);
        // A fragment's length field describes the whole datagram: only a
        // reassembled packet can be checked (like its checksum).
        if (!key.is_fragment() && (udp_len > l3_end - key.l4_off || udp_len < 8)) {
          fail = CtReason::UdpBadLength;
        } else if (load_be16(udp + 6) != 0 && !checksum_passes(key, frame, len, check)) {
          fail = CtReason::BadChecksum;
        } else if (seen_reply) {
          // Both ways seen: a stream once the flow is older than 2 s.
          if (clock_ns_ > links_[slot].start_ns + kUdpStreamAfterNs) {
            refresh(slot, config_.udp_stream_timeout);
            e.status |= ct_status::kAssured;
          } else {
            refresh(slot, config_.udp_timeout);
          }
        } else {
          refresh(slot, config_.udp_timeout);
        }
        break;
      }
      case kProtoUdplite: {
        // nf_conntrack_udplite_packet(): coverage, a mandatory checksum,
        // the checksum; then UDP's timeouts, but a stream (and ASSURED) at
        // the first packet after a reply, without UDP's 2-second wait.
        const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
        if (frame == nullptr || l3_end > len) {
          fail = CtReason::Truncated;
          break;
        }
        const uint8_t* h = frame + key.l4_off;  // the parser saw 8 bytes (kPorts)
        if (!key.is_fragment() && udplite_coverage(load_be16(h + 4), l3_end - key.l4_off) == 0) {
          fail = CtReason::UdpliteBadCoverage;
        } else if (load_be16(h + 6) == 0) {
          fail = CtReason::UdpliteNoChecksum;
        } else if (!checksum_passes(key, frame, len, check)) {
          fail = CtReason::BadChecksum;
        } else if (seen_reply) {
          refresh(slot, config_.udp_stream_timeout);
          e.status |= ct_status::kAssured;
        } else {
          refresh(slot, config_.udp_timeout);
        }
        break;
      }
      case kProtoSctp: {
        const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
        if (frame == nullptr || l3_end > len) {
          fail = CtReason::Truncated;
          break;
        }
        if (!checksum_passes(key, frame, len, check)) {  // sctp_error(): the CRC32c comes first
          fail = CtReason::BadChecksum;
          break;
        }
        const SctpUpdate u = sctp_track(e.sctp, dir, frame + key.l4_off, l3_end - key.l4_off,
                                        /*confirmed=*/!created, config_.sctp);
        // ASSURED stays even when a later chunk of the packet is refused.
        if (u.set_assured) e.status |= ct_status::kAssured;
        switch (u.verdict) {
          case SctpVerdict::Accept: refresh(slot, u.timeout_s); break;
          case SctpVerdict::Ignore: ++counters_.ignored; break;
          case SctpVerdict::Invalid: fail = sctp_reason(u.reason); break;
        }
        break;
      }
      case kProtoGre:
        // nf_conntrack_gre_packet(): 30 s, and from the first packet after a
        // reply 180 s and ASSURED (no PPTP helper to stretch them).
        if (seen_reply) {
          refresh(slot, config_.gre_stream_timeout);
          e.status |= ct_status::kAssured;
        } else {
          refresh(slot, config_.gre_timeout);
        }
        break;
      case kProtoIcmp:
        // Only a query opens an entry (an answer finds its query's entry).
        if (!icmp_opens(e.tuple[0].icmp_type()))
          fail = CtReason::IcmpCannotOpen;
        else
          refresh(slot, config_.icmp_timeout);
        break;
      default:
        refresh(slot, config_.generic_timeout);
        break;
    }

    if (fail != CtReason::None) {
      if (created) free_slot(slot);
      return invalid(fail, tcp_fail);
    }
    if (dir == CtDir::Reply) e.status |= ct_status::kSeenReply;
    hold(slot);
    r.held = true;
    if (kill_after) {
      ++counters_.killed;
      kill(slot);  // the packet keeps it until confirm/discard
    }
    return r;
  }
}


bool ConntrackTable::confirm(CtResult& r, uint64_t now_ns) noexcept {
  if (r.entry == kNoEntry) return true;
  const uint32_t slot = r.entry;
  const bool created = r.created;
  const bool held = r.held;
  r.entry = kNoEntry;
  r.created = false;
  r.held = false;
  clock_ns_ = std::max(clock_ns_, now_ns);
  CtEntry& e = entries_[slot];
  if (created && (e.status & (ct_status::kConfirmed | ct_status::kDying)) == 0) {
    Links& l = links_[slot];
    const uint64_t reply_hash = hash_of(e.tuple[1]);  // NAT may have changed it since process()
    l.set_hash(1, reply_hash);
    // ORIGINAL: process() found it free; unless the index changed since, it
    // still is. REPLY: checked and inserted in one walk. ORIGINAL goes in
    // after REPLY, as in the kernel (see resolve()).
    const bool orig_free = r.generation == generation_ || find_live(e.tuple[0], l.hash(0)) == kNoEntry;
    if (!orig_free || !index_insert_unless_taken(slot * 2 + 1, reply_hash, e.tuple[1])) {
      ++counters_.insert_failed;
      ++counters_.drop;
      release(slot);
      return false;
    }
    index_insert(slot * 2, l.hash(0));
    e.status |= ct_status::kConfirmed;
    e.deadline_ns = clock_ns_ + seconds(e.timeout_s);
    wheel_link(slot);
    ++counters_.inserted;
  }
  if (held) release(slot);
  return true;
}

void ConntrackTable::discard(CtResult& r) noexcept {
  if (r.entry == kNoEntry) return;
  const uint32_t slot = r.entry;
  const bool held = r.held;
  r.entry = kNoEntry;
  r.created = false;
  r.held = false;
  if (held) release(slot);
}

// ---------------------------------------------------------------- queries

uint8_t ConntrackTable::state_bits(const CtResult& r) const noexcept {
  uint8_t bits = r.state;
  if (const CtEntry* e = entry(r.entry)) {
    if ((e->status & ct_status::kSrcNat) != 0) bits |= kCtSnat;
    if ((e->status & ct_status::kDstNat) != 0) bits |= kCtDnat;
  }
  return bits;
}

const CtEntry* ConntrackTable::entry(uint32_t handle) const noexcept {
  return handle < entries_.size() && links_[handle].used ? &entries_[handle] : nullptr;
}
CtEntry* ConntrackTable::entry(uint32_t handle) noexcept {
  return handle < entries_.size() && links_[handle].used ? &entries_[handle] : nullptr;
}

bool ConntrackTable::set_reply_tuple(uint32_t handle, const Tuple& reply) noexcept {
  CtEntry* e = entry(handle);
  if (e == nullptr || (e->status & (ct_status::kConfirmed | ct_status::kDying)) != 0) return false;
  e->tuple[dir_index(CtDir::Reply)] = reply;
  return true;
}

const CtEntry* ConntrackTable::find(const Tuple& t, CtDir* dir) const noexcept {
  const uint32_t handle = find_handle(t, dir);
  return handle == kNoEntry ? nullptr : &entries_[handle];
}

uint32_t ConntrackTable::find_handle(const Tuple& t, CtDir* dir) const noexcept {
  const uint32_t node = lookup(t, hash_of(t));
  if (node == kNoEntry || expired(node >> 1)) return kNoEntry;
  if (dir != nullptr) *dir = static_cast<CtDir>(node & 1);
  return node >> 1;
}

bool ConntrackTable::tuple_taken(const Tuple& t, uint32_t ignored) const noexcept {
  const uint32_t node = lookup(t, hash_of(t));  // at most one entry holds a tuple
  if (node == kNoEntry) return false;
  const uint32_t slot = node >> 1;
  if (slot == ignored || expired(slot)) return false;
  // The same flow seen twice (equal ORIGINAL tuples) is not a conflict.
  const CtEntry* self = entry(ignored);
  return self == nullptr || !(entries_[slot].tuple[0] == self->tuple[0]);
}

// ---------------------------------------------------------------- dump

std::string ConntrackTable::format_entry(const CtEntry& e, uint64_t now_ns) const {
  std::string out;
  const uint8_t proto = e.proto();
  const uint64_t left = e.deadline_ns > now_ns ? (e.deadline_ns - now_ns) / kNsPerSec : 0;
  fmt::format_to(std::back_inserter(out), "{:<8} {} {} ", proto_name(proto), proto, left);
  if (proto == kProtoTcp) fmt::format_to(std::back_inserter(out), "{} ", tcp_ct_state_name(e.tcp.state));
  if (proto == kProtoSctp) fmt::format_to(std::back_inserter(out), "{} ", sctp_ct_state_name(e.sctp.state));
  // A zone is printed once: as zone= when both directions carry its id,
  // else beside the one tuple that does (ctnetlink's CTA_ZONE and
  // CTA_TUPLE_ZONE; id 0 is never printed).
  const uint16_t zo = e.tuple[0].zone;
  const uint16_t zr = e.tuple[1].zone;
  append_tuple(out, e.tuple[0]);
  if (zo != 0 && zo != zr) fmt::format_to(std::back_inserter(out), "zone-orig={} ", zo);
  if ((e.status & ct_status::kSeenReply) == 0) out += "[UNREPLIED] ";
  append_tuple(out, e.tuple[1]);
  if (zr != 0 && zo != zr) fmt::format_to(std::back_inserter(out), "zone-reply={} ", zr);
  if ((e.status & ct_status::kAssured) != 0) out += "[ASSURED] ";
  fmt::format_to(std::back_inserter(out), "mark={} ", e.mark);
  if (zo != 0 && zo == zr) fmt::format_to(std::back_inserter(out), "zone={} ", zo);
  out += "use=1";
  return out;
}

void ConntrackTable::dump(std::string& out, uint64_t now_ns) const {
  std::vector<uint32_t> live;
  for (uint32_t s = 0; s < entries_.size(); ++s) {
    const CtEntry& e = entries_[s];
    if (links_[s].used && (e.status & ct_status::kConfirmed) != 0 &&
        (e.status & ct_status::kDying) == 0 && e.deadline_ns > now_ns)
      live.push_back(s);
  }
  std::sort(live.begin(), live.end(),
            [this](uint32_t a, uint32_t b) { return entries_[a].id < entries_[b].id; });
  for (uint32_t s : live) {
    out += format_entry(entries_[s], now_ns);
    out += '\n';
  }
}

}  // namespace nfb
