// Connection tracking table: lookup by either tuple, creation and
// confirmation, per-protocol tracking, timeouts on the capture clock, table
// full handling and the conntrack -L dump. See conntrack.h for the contracts
// and classifier/conntrack.md for the kernel facts.
#include "classifier/conntrack.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include "classifier/byte_order.h"
#include "classifier/checksum.h"
#include "classifier/ip_protocol.h"

namespace nfb {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ULL;
constexpr uint64_t kUdpStreamAfterNs = 2 * kNsPerSec;  // UDP: "still active after 2 s"
constexpr uint32_t kEvictionRange = 8;                 // buckets early_drop looks at
constexpr uint32_t kMaxSize = 1U << 30;
constexpr unsigned kWheelShift = 26;                   // 2^26 ns ~ 67 ms per wheel slot
constexpr uint32_t kWheelSlots = 1U << 14;
constexpr uint8_t kIcmpLastKnownType = 18;
constexpr uint64_t kShrinkMinRemainingNs = 120 * kNsPerSec;

constexpr uint64_t seconds(uint32_t s) noexcept { return static_cast<uint64_t>(s) * kNsPerSec; }

// ICMP types that report an error about another packet (which they quote).
constexpr bool icmp_is_error(uint8_t type) noexcept {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}
// ICMP queries that may open an entry.
constexpr bool icmp_opens(uint8_t type) noexcept {
  return type == 8 || type == 13 || type == 15 || type == 17;
}
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

uint64_t mix64(uint64_t h) noexcept {
  h ^= h >> 31;
  h *= 0x7fb5d329728ea185ULL;
  h ^= h >> 27;
  h *= 0x81dadef4bc2dd44dULL;
  h ^= h >> 33;
  return h;
}

void append_tuple(std::string& out, const Tuple& t) {
  auto ip = [](uint32_t a) {
    return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xffU, (a >> 8) & 0xffU, a & 0xffU);
  };
  fmt::format_to(std::back_inserter(out), "src={} dst={} ", ip(t.src), ip(t.dst));
  if (t.proto == kProtoTcp || t.proto == kProtoUdp) {
    fmt::format_to(std::back_inserter(out), "sport={} dport={} ", t.sport, t.dport);
  } else if (t.proto == kProtoIcmp) {
    fmt::format_to(std::back_inserter(out), "type={} code={} id={} ", t.icmp_type, t.icmp_code,
                   t.sport);
  }
}

constexpr const char* kReasonNames[] = {
#define NFB_CT_REASON_NAME(name, str, desc) str,
    NFB_CT_REASON_LIST(NFB_CT_REASON_NAME)
#undef NFB_CT_REASON_NAME
};
constexpr const char* kReasonDescriptions[] = {
#define NFB_CT_REASON_DESC(name, str, desc) desc,
    NFB_CT_REASON_LIST(NFB_CT_REASON_DESC)
#undef NFB_CT_REASON_DESC
};

}  // namespace

// ---------------------------------------------------------------- tuples

bool Tuple::invert(Tuple& out) const noexcept {
  Tuple r;
  r.src = dst;
  r.dst = src;
  r.proto = proto;
  if (proto == kProtoIcmp) {
    const int answer = icmp_counterpart(icmp_type);
    if (answer < 0) return false;
    r.sport = sport;  // the identifier stays
    r.icmp_type = static_cast<uint8_t>(answer);
    r.icmp_code = icmp_code;
  } else {
    r.sport = dport;
    r.dport = sport;
  }
  out = r;
  return true;
}

Tuple tuple_of(const PacketKey& key) noexcept {
  Tuple t;
  t.src = key.src_ip;
  t.dst = key.dst_ip;
  t.proto = key.proto;
  if ((key.proto == kProtoTcp || key.proto == kProtoUdp) && key.has(key_flag::kPorts)) {
    t.sport = key.src_port;
    t.dport = key.dst_port;
  } else if (key.proto == kProtoIcmp && key.has(key_flag::kIcmp)) {
    t.icmp_type = key.icmp_type;
    t.icmp_code = key.icmp_code;
    t.sport = key.icmp_id;  // 0 unless a query
  }
  return t;
}

const char* ct_reason_name(CtReason r) noexcept {
  const auto i = static_cast<std::size_t>(r);
  return i < kCtReasonCount ? kReasonNames[i] : "invalid";
}
const char* ct_reason_description(CtReason r) noexcept {
  const auto i = static_cast<std::size_t>(r);
  return i < kCtReasonCount ? kReasonDescriptions[i] : "invalid";
}

// ---------------------------------------------------------------- construction

ConntrackTable::ConntrackTable(const CtConfig& config) : config_(config) {
  if (config_.max_entries == 0 || config_.max_entries > kMaxSize)
    throw std::invalid_argument("conntrack: max_entries must be in 1..2^30");
  if (config_.buckets > kMaxSize) throw std::invalid_argument("conntrack: buckets must be <= 2^30");
  const uint32_t n = config_.max_entries;
  entries_.resize(n);
  links_.resize(n);
  free_.resize(n);
  // Pop order: slot 0 first.
  for (uint32_t i = 0; i < n; ++i) free_[i] = n - 1 - i;
  buckets_.assign(config_.buckets == 0 ? n : config_.buckets, kNoEntry);
  wheel_.assign(kWheelSlots, kNoEntry);
}

// ---------------------------------------------------------------- hashing

uint32_t ConntrackTable::bucket_of(const Tuple& t) const noexcept {
  uint64_t a = 0;
  uint64_t b = 0;
  std::memcpy(&a, &t, sizeof a);
  std::memcpy(&b, reinterpret_cast<const unsigned char*>(&t) + sizeof a, sizeof b);
  const uint64_t h = mix64(mix64(a ^ config_.hash_seed) + b);
  // Scale the high half to the bucket count (multiply-shift, no division).
  return static_cast<uint32_t>(((h >> 32) * buckets_.size()) >> 32);
}

bool ConntrackTable::expired(uint32_t slot) const noexcept {
  return entries_[slot].deadline_ns <= clock_ns_;
}

uint32_t ConntrackTable::find_node(const Tuple& t) noexcept {
  const uint32_t b = bucket_of(t);
  for (;;) {
    uint32_t node = buckets_[b];
    bool restarted = false;
    while (node != kNoEntry) {
      const uint32_t slot = node >> 1;
      if (expired(slot)) {
        // Gone: free it now (as the kernel does when a lookup meets one).
        ++counters_.expired;
        kill(slot);
        restarted = true;
        break;
      }
      if (entries_[slot].tuple[node & 1] == t) return node;
      node = links_[slot].next[node & 1];
    }
    if (!restarted) return kNoEntry;
  }
}

uint32_t ConntrackTable::find_node_const(const Tuple& t) const noexcept {
  for (uint32_t node = buckets_[bucket_of(t)]; node != kNoEntry;
       node = links_[node >> 1].next[node & 1]) {
    const uint32_t slot = node >> 1;
    if (!expired(slot) && entries_[slot].tuple[node & 1] == t) return node;
  }
  return kNoEntry;
}

void ConntrackTable::hash_link(uint32_t slot) noexcept {
  for (uint32_t d = 0; d < 2; ++d) {
    const uint32_t b = bucket_of(entries_[slot].tuple[d]);
    links_[slot].next[d] = buckets_[b];
    buckets_[b] = slot * 2 + d;
  }
}

void ConntrackTable::hash_unlink_node(uint32_t node) noexcept {
  uint32_t* link = &buckets_[bucket_of(entries_[node >> 1].tuple[node & 1])];
  while (*link != kNoEntry) {
    if (*link == node) {
      *link = links_[node >> 1].next[node & 1];
      links_[node >> 1].next[node & 1] = kNoEntry;
      return;
    }
    link = &links_[*link >> 1].next[*link & 1];
  }
}

// ---------------------------------------------------------------- the wheel

void ConntrackTable::wheel_link(uint32_t slot) noexcept {
  Links& l = links_[slot];
  const auto w = static_cast<uint32_t>((entries_[slot].deadline_ns >> kWheelShift) & (kWheelSlots - 1));
  l.wheel_slot = w;
  l.wheel_prev = kNoEntry;
  l.wheel_next = wheel_[w];
  if (l.wheel_next != kNoEntry) links_[l.wheel_next].wheel_prev = slot;
  wheel_[w] = slot;
}

void ConntrackTable::wheel_unlink(uint32_t slot) noexcept {
  Links& l = links_[slot];
  if (l.wheel_slot == kNoEntry) return;
  if (l.wheel_prev != kNoEntry)
    links_[l.wheel_prev].wheel_next = l.wheel_next;
  else
    wheel_[l.wheel_slot] = l.wheel_next;
  if (l.wheel_next != kNoEntry) links_[l.wheel_next].wheel_prev = l.wheel_prev;
  l.wheel_prev = l.wheel_next = l.wheel_slot = kNoEntry;
}

void ConntrackTable::expire(uint64_t now_ns) noexcept {
  clock_ns_ = std::max(clock_ns_, now_ns);
  const uint64_t now_tick = clock_ns_ >> kWheelShift;
  // Each slot once at most: after a full turn every slot has been seen.
  const uint64_t ticks = std::min<uint64_t>(now_tick - std::min(wheel_tick_, now_tick) + 1, kWheelSlots);
  for (uint64_t i = 0; i < ticks; ++i) {
    const auto w = static_cast<uint32_t>((now_tick - i) & (kWheelSlots - 1));
    for (uint32_t slot = wheel_[w]; slot != kNoEntry;) {
      const uint32_t next = links_[slot].wheel_next;
      if (expired(slot)) {
        ++counters_.expired;
        kill(slot);
      }
      slot = next;
    }
  }
  // The current tick's slot may still hold entries due later in this tick,
  // so it is swept again next time.
  wheel_tick_ = now_tick;
}

// ---------------------------------------------------------------- slots

void ConntrackTable::unlink(uint32_t slot) noexcept {
  CtEntry& e = entries_[slot];
  if ((e.status & ct_status::kConfirmed) != 0 && (e.status & ct_status::kDying) == 0) {
    hash_unlink_node(slot * 2);
    hash_unlink_node(slot * 2 + 1);
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

bool ConntrackTable::early_drop(uint32_t bucket) noexcept {
  for (uint32_t i = 0; i < kEvictionRange; ++i) {
    const auto b = static_cast<uint32_t>((uint64_t{bucket} + i) % buckets_.size());
    uint64_t drops = 0;
    // Evict every non-ASSURED entry of this chain (restarting the walk after
    // each removal, since an entry may own two nodes of the same chain).
    for (bool again = true; again;) {
      again = false;
      for (uint32_t node = buckets_[b]; node != kNoEntry; node = links_[node >> 1].next[node & 1]) {
        const uint32_t slot = node >> 1;
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
    if (drops != 0) {
      counters_.early_drop += drops;
      return true;
    }
  }
  return false;
}

uint32_t ConntrackTable::allocate(const Tuple& orig, uint64_t now) noexcept {
  if (used_ >= entries_.size()) {
    expire(now);
    if (used_ >= entries_.size() && !early_drop(bucket_of(orig))) return kNoEntry;
    // Evicted entries still held by an unfinished packet free no slot yet.
    if (free_.empty()) return kNoEntry;
  }
  const uint32_t slot = free_.back();
  free_.pop_back();
  ++used_;
  links_[slot] = Links{};
  links_[slot].used = true;
  CtEntry& e = entries_[slot];
  e = CtEntry{};
  e.id = next_id_++;
  e.start_ns = now;
  ++counters_.created;
  return slot;
}

void ConntrackTable::refresh(uint32_t slot, uint32_t timeout_s) noexcept {
  CtEntry& e = entries_[slot];
  if ((e.status & ct_status::kConfirmed) == 0) {
    e.timeout_s = timeout_s;  // starts at confirmation
    return;
  }
  if ((e.status & ct_status::kDying) != 0) return;
  e.deadline_ns = clock_ns_ + seconds(timeout_s);
  const auto w = static_cast<uint32_t>((e.deadline_ns >> kWheelShift) & (kWheelSlots - 1));
  if (w != links_[slot].wheel_slot) {
    wheel_unlink(slot);
    wheel_link(slot);
  }
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

CtResult ConntrackTable::process(const PacketKey& key, const uint8_t* frame, uint32_t len,
                                 uint64_t now_ns, bool verify_checksum) noexcept {
  clock_ns_ = std::max(clock_ns_, now_ns);
  if (key.is_later_fragment()) return invalid(CtReason::Fragment);
  const bool checksum = verify_checksum && config_.checksum;
  switch (key.proto) {
    case kProtoIcmp: return process_icmp(key, frame, len, checksum);
    case kProtoTcp:
      if (!key.has(key_flag::kTcpFlags)) return invalid(CtReason::Truncated, TcpReason::Truncated);
      break;
    case kProtoUdp:
      if (!key.has(key_flag::kPorts)) return invalid(CtReason::Truncated);
      break;
    default: break;
  }
  return track(key, tuple_of(key), frame, len, checksum);
}

CtResult ConntrackTable::process_icmp(const PacketKey& key, const uint8_t* frame, uint32_t len,
                                      bool checksum) noexcept {
  if (!key.has(key_flag::kIcmp)) return invalid(CtReason::Truncated);
  if (checksum && !l4_checksum_ok(frame, len, key)) return invalid(CtReason::BadChecksum);
  if (key.icmp_type > kIcmpLastKnownType) return invalid(CtReason::IcmpUnknownType);
  if (!icmp_is_error(key.icmp_type)) return track(key, tuple_of(key), frame, len, checksum);

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
  if (in.proto == kProtoTcp || in.proto == kProtoUdp) {
    if ((in.flags & inner_flag::kPorts) == 0) return invalid(CtReason::IcmpErrorInner);
    quoted.sport = in.src_port;
    quoted.dport = in.dst_port;
  } else if (in.proto == kProtoIcmp) {
    if ((in.flags & inner_flag::kIcmp) == 0) return invalid(CtReason::IcmpErrorInner);
    quoted.icmp_type = in.icmp_type;
    quoted.icmp_code = in.icmp_code;
    quoted.sport = in.icmp_id;
  }
  Tuple wanted;
  if (!quoted.invert(wanted)) return invalid(CtReason::IcmpErrorInner);
  const uint32_t node = find_node(wanted);
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
  return r;
}

CtResult ConntrackTable::track(const PacketKey& key, const Tuple& t, const uint8_t* frame,
                               uint32_t len, bool checksum) noexcept {
  TcpSegment seg;
  if (t.proto == kProtoTcp && !read_tcp_segment(frame, len, key, seg))
    return invalid(CtReason::Truncated, TcpReason::Truncated);

  for (;;) {  // once, or twice when a TCP SYN reopens a closed entry
    uint32_t slot = kNoEntry;
    CtDir dir = CtDir::Original;
    bool created = false;
    const uint32_t node = find_node(t);
    if (node != kNoEntry) {
      slot = node >> 1;
      dir = static_cast<CtDir>(node & 1);
      ++counters_.found;
    } else {
      Tuple reply;
      if (!t.invert(reply)) return invalid(CtReason::IcmpCannotOpen);
      slot = allocate(t, clock_ns_);
      if (slot == kNoEntry) {
        ++counters_.drop;
        ++counters_.by_reason[static_cast<std::size_t>(CtReason::TableFull)];
        CtResult r;
        r.verdict = CtVerdict::Drop;
        r.reason = CtReason::TableFull;
        return r;
      }
      entries_[slot].tuple = {t, reply};
      created = true;
    }
    CtEntry& e = entries_[slot];
    const bool seen_reply = (e.status & ct_status::kSeenReply) != 0;
    const bool assured = (e.status & ct_status::kAssured) != 0;
    CtResult r;
    r.entry = slot;
    r.dir = dir;
    r.created = created;
    r.state = (dir == CtDir::Reply || seen_reply) ? kCtEstablished : kCtNew;

    CtReason fail = CtReason::None;
    TcpReason tcp_fail = TcpReason::None;
    bool kill_after = false;
    switch (t.proto) {
      case kProtoTcp: {
        if (checksum && !l4_checksum_ok(frame, len, key)) {
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
              continue;  // look the SYN up again: it opens a new entry
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
        } else if (checksum && load_be16(udp + 6) != 0 && !l4_checksum_ok(frame, len, key)) {
          fail = CtReason::BadChecksum;
        } else if (seen_reply) {
          // Both ways seen: a stream once the flow is older than 2 s.
          if (clock_ns_ > e.start_ns + kUdpStreamAfterNs) {
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
      case kProtoIcmp:
        // Only a query opens an entry (an answer finds its query's entry).
        if (!icmp_opens(e.tuple[0].icmp_type))
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
  r.entry = kNoEntry;
  r.created = false;
  clock_ns_ = std::max(clock_ns_, now_ns);
  CtEntry& e = entries_[slot];
  if (created && (e.status & (ct_status::kConfirmed | ct_status::kDying)) == 0) {
    if (find_node(e.tuple[0]) != kNoEntry || find_node(e.tuple[1]) != kNoEntry) {
      ++counters_.insert_failed;
      ++counters_.drop;
      release(slot);
      return false;
    }
    e.status |= ct_status::kConfirmed;
    e.deadline_ns = clock_ns_ + seconds(e.timeout_s);
    hash_link(slot);
    wheel_link(slot);
    ++counters_.inserted;
  }
  release(slot);
  return true;
}

void ConntrackTable::discard(CtResult& r) noexcept {
  if (r.entry == kNoEntry) return;
  const uint32_t slot = r.entry;
  r.entry = kNoEntry;
  r.created = false;
  release(slot);
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
  const uint32_t node = find_node_const(t);
  if (node == kNoEntry) return nullptr;
  if (dir != nullptr) *dir = static_cast<CtDir>(node & 1);
  return &entries_[node >> 1];
}

uint32_t ConntrackTable::find_handle(const Tuple& t, CtDir* dir) const noexcept {
  const uint32_t node = find_node_const(t);
  if (node == kNoEntry) return kNoEntry;
  if (dir != nullptr) *dir = static_cast<CtDir>(node & 1);
  return node >> 1;
}

bool ConntrackTable::tuple_taken(const Tuple& t, uint32_t ignored) const noexcept {
  const CtEntry* self = entry(ignored);
  for (uint32_t node = buckets_[bucket_of(t)]; node != kNoEntry;
       node = links_[node >> 1].next[node & 1]) {
    const uint32_t slot = node >> 1;
    if (slot == ignored || expired(slot) || !(entries_[slot].tuple[node & 1] == t)) continue;
    // The same flow seen twice (equal ORIGINAL tuples) is not a conflict.
    if (self != nullptr && entries_[slot].tuple[0] == self->tuple[0]) continue;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- dump

std::string ConntrackTable::format_entry(const CtEntry& e, uint64_t now_ns) const {
  std::string out;
  const uint8_t proto = e.proto();
  const char* name = proto == kProtoTcp    ? "tcp"
                     : proto == kProtoUdp  ? "udp"
                     : proto == kProtoIcmp ? "icmp"
                                           : "unknown";
  const uint64_t left = e.deadline_ns > now_ns ? (e.deadline_ns - now_ns) / kNsPerSec : 0;
  fmt::format_to(std::back_inserter(out), "{:<8} {} {} ", name, proto, left);
  if (proto == kProtoTcp) fmt::format_to(std::back_inserter(out), "{} ", tcp_ct_state_name(e.tcp.state));
  append_tuple(out, e.tuple[0]);
  if ((e.status & ct_status::kSeenReply) == 0) out += "[UNREPLIED] ";
  append_tuple(out, e.tuple[1]);
  if ((e.status & ct_status::kAssured) != 0) out += "[ASSURED] ";
  fmt::format_to(std::back_inserter(out), "mark={} use=1", e.mark);
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
