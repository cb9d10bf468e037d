// NAT bindings (nf_nat_setup_info and the targets that call it) and packet
// rewriting (nf_nat_manip_pkt, nf_nat_icmp_reply_translation). See nat.h for
// the contracts and the kernel facts behind them.
#include "netfilter/nat.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>
#include <variant>

#include "base/hash.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/ip_protocol.h"

namespace nfb {
namespace {

namespace rf = nat_range_flag;

constexpr uint32_t kMaxAttempts = 128;      // NF_NAT_MAX_ATTEMPTS: candidates in the first round
constexpr uint32_t kMinRoundAttempts = 16;  // rounds stop below this many candidates
constexpr uint32_t kLoopbackAddress = 0x7f000001U;  // REDIRECT at OUTPUT

uint64_t tuple_hash(const Tuple& t) noexcept {
  uint64_t a = 0;
  uint64_t b = 0;
  std::memcpy(&a, &t, sizeof a);
  std::memcpy(&b, reinterpret_cast<const unsigned char*>(&t) + sizeof a, sizeof b);
  return mix64(mix64(a) ^ b);
}

// The word an x86 (little-endian) kernel loads from memory holding a
// network-order address: what its jhash2 and `^ dst.u3.all[0]` see. Fixed
// whatever our own byte order: the model describes that kernel.
constexpr uint32_t kernel_word(uint32_t host_order_addr) noexcept {
  return byteswap32(host_order_addr);
}

constexpr bool icmp_is_query(uint8_t type) noexcept {
  return type == 0 || type == 8 || (type >= 13 && type <= 18);
}
constexpr bool icmp_is_error(uint8_t type) noexcept {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

// ---------------------------------------------------------------- ranges

// l4proto_in_range(): the manipulated port (TCP/UDP) or the id (ICMP) of `t`
// lies in the range's [min_proto, max_proto]. Protocols conntrack tracks
// without ports are always in range.
bool l4_in_range(const Tuple& t, NatManip m, const NatRangeSpec& r) noexcept {
  uint16_t v = 0;
  switch (t.proto) {
    case kProtoIcmp: v = t.sport; break;
    case kProtoTcp:
    case kProtoUdp:
    case kProtoUdplite:
    case kProtoSctp: v = m == NatManip::Src ? t.sport : t.dport; break;
    default: return true;
  }
  return v >= r.min_proto && v <= r.max_proto;
}

// nf_in_range(): would a source mapping to `t` satisfy the range?
bool src_in_range(const Tuple& t, const NatRangeSpec& r) noexcept {
  if ((r.flags & rf::kMapIps) != 0 && !(t.src >= r.min_addr && t.src <= r.max_addr)) return false;
  if ((r.flags & rf::kProtoSpecified) == 0) return true;
  return l4_in_range(t, NatManip::Src, r);
}

// Where the port search gets its random offsets: the table's seeded
// generator, or (no table) a generator seeded from the tuple.
class Offsets {
 public:
  Offsets(NatTable* nat, const Tuple& t) noexcept : nat_(nat), state_(tuple_hash(t)) {}
  uint16_t next() noexcept {
    if (nat_ != nullptr) return nat_->random_u16();
    return static_cast<uint16_t>(splitmix64(state_) >> 48);
  }

 private:
  NatTable* nat_;
  uint64_t state_;
};

// get_unique_tuple() and its helpers for one binding.
class Binder {
 public:
  Binder(ConntrackTable& ct, uint32_t entry, NatManip manip, const NatRangeSpec& range,
         NatTable* nat) noexcept
      : ct_(ct), entry_(entry), manip_(manip), r_(range), nat_(nat) {}

  Tuple unique_tuple(const Tuple& curr) noexcept {
    const bool random = (r_.flags & rf::kProtoRandomAll) != 0;
    // 1) A source binding keeps the tuple, or reuses this source's mapping.
    if (manip_ == NatManip::Src && !random) {
      if (src_in_range(curr, r_)) {
        if (!used(curr)) return curr;
      } else if (Tuple mapped; nat_ != nullptr &&
                                nat_->find_source(ct_, entry_, curr, r_, mapped)) {
        if (!used(mapped)) {
          ++nat_->counters().source_reused;
          return mapped;
        }
      }
    }
    // 2) The address.
    Tuple t = curr;
    if ((r_.flags & rf::kMapIps) != 0) {
      uint32_t& addr = manip_ == NatManip::Src ? t.src : t.dst;
      // The entry's zone id (one direction's tuple carries it, or both).
      const CtEntry* e = ct_.entry(entry_);
      const uint16_t zone_id = e != nullptr ? static_cast<uint16_t>(e->tuple[0].zone | e->tuple[1].zone) : 0;
      addr = nat_select_address(t, r_.min_addr, r_.max_addr, (r_.flags & rf::kPersistent) != 0, zone_id);
    }
    // 3) The port or id: kept if in range and free, else searched.
    if (!random) {
      if ((r_.flags & rf::kProtoSpecified) != 0) {
        if ((r_.flags & rf::kProtoOffset) == 0 && l4_in_range(t, manip_, r_) &&
            (r_.min_proto == r_.max_proto || !used(t)))
          return t;
      } else if (!used(t)) {
        return t;
      }
    }
    search(t);
    return t;
  }

 private:
  // nf_nat_used_tuple(): is the reply tuple this choice would give taken?
  bool used(const Tuple& t) const noexcept {
    Tuple reply;
    if (!t.invert(reply)) return false;
    return ct_.tuple_taken(reply, entry_);
  }

  // nf_nat_l4proto_unique_tuple().
  void search(Tuple& t) noexcept {
    uint16_t* key = nullptr;
    uint32_t min = 0;
    uint32_t size = 0;
    const bool specified = (r_.flags & rf::kProtoSpecified) != 0;
    switch (t.proto) {
      case kProtoIcmp:
        key = &t.sport;  // the id, the same in both directions
        if (!specified) {
          min = 0;
          size = 65536;
        } else {
          // Unsigned like the kernel's: max < min wraps to a huge size.
          min = r_.min_proto;
          size = static_cast<uint32_t>(r_.max_proto) - static_cast<uint32_t>(r_.min_proto) + 1U;
        }
        break;
      case kProtoTcp:
      case kProtoUdp:
      case kProtoUdplite:
      case kProtoSctp:
        key = manip_ == NatManip::Src ? &t.sport : &t.dport;
        if (!specified) {
          if (manip_ == NatManip::Dst) return;  // a destination port is never moved
          if (*key < 512) {
            min = 1;
            size = 511;
          } else if (*key < 1024) {
            min = 600;
            size = 1023 - 600 + 1;
          } else {
            min = 1024;
            size = 65535 - 1024 + 1;
          }
        } else {
          uint32_t lo = r_.min_proto;
          uint32_t hi = r_.max_proto;
          if (hi < lo) std::swap(lo, hi);
          min = lo;
          size = hi - lo + 1U;
        }
        break;
      default:
        return;
    }
    if (nat_ != nullptr) ++nat_->counters().searched;

    Offsets offsets(nat_, t);
    uint16_t off = 0;  // 16 bits like the kernel's: it wraps
    if ((r_.flags & rf::kProtoOffset) != 0)
      off = static_cast<uint16_t>(*key - r_.base_proto);
    else if ((r_.flags & rf::kProtoRandomAll) != 0 || manip_ != NatManip::Dst)
      off = offsets.next();
    uint32_t attempts = std::min(size, kMaxAttempts);
    for (;;) {
      for (uint32_t i = 0; i < attempts; ++i, ++off) {
        *key = static_cast<uint16_t>(min + off % size);
        if (!used(t)) return;
      }
      if (attempts >= size || attempts < kMinRoundAttempts) break;
      attempts /= 2;
      off = offsets.next();
    }
    if (nat_ != nullptr) ++nat_->counters().unresolved;  // the last candidate stays
  }

  ConntrackTable& ct_;
  uint32_t entry_;
  NatManip manip_;
  const NatRangeSpec& r_;
  NatTable* nat_;
};

// ---------------------------------------------------------------- rewriting

// nf_nat_ipv4_manip_pkt(): rewrites the IPv4 header at `iph` (and, with
// `l4`, its TCP/UDP port or ICMP query id) into `target`'s source or
// destination half, updating the checksums. `end` is the end of the
// outermost IP packet (the kernel's skb->len). False when the headers it
// must write are not all there.
bool manip_ipv4(uint8_t* f, uint32_t iph, uint32_t end, const Tuple& target, NatManip m,
                uint8_t proto, bool l4) noexcept {
  if (iph + 20 > end) return false;
  const uint32_t ihl = (f[iph] & 0x0fU) * 4U;
  if (ihl < 20) return false;
  const bool src = m == NatManip::Src;
  const uint32_t hdr = iph + ihl;
  const uint32_t addr_at = iph + (src ? 12U : 16U);
  const uint32_t old_addr = load_be32(f + addr_at);
  const uint32_t new_addr = src ? target.src : target.dst;
  if (l4) {
    switch (proto) {
      case kProtoTcp: {
        // Conntrack guarantees 8 bytes; the checksum only when the packet
        // holds a whole header (an ICMP error may quote just 8 bytes).
        const bool whole = end >= hdr + 20;
        if (!whole && hdr + 8 > end) return false;
        const uint32_t port_at = hdr + (src ? 0U : 2U);
        const uint16_t old_port = load_be16(f + port_at);
        const uint16_t new_port = src ? target.sport : target.dport;
        store_be16(f + port_at, new_port);
        if (whole) {
          uint16_t c = load_be16(f + hdr + 16);
          c = checksum_replace32(c, old_addr, new_addr);  // pseudo header
          c = checksum_replace16(c, old_port, new_port);
          store_be16(f + hdr + 16, c);
        }
        break;
      }
      case kProtoUdp:
      case kProtoUdplite: {
        if (hdr + 8 > end) return false;
        const uint32_t port_at = hdr + (src ? 0U : 2U);
        const uint16_t old_port = load_be16(f + port_at);
        const uint16_t new_port = src ? target.sport : target.dport;
        uint16_t c = load_be16(f + hdr + 6);
        // UDP: 0 means the sender computed none, and none is made up.
        // UDP-Lite always has one (udplite_manip_pkt: do_csum).
        if (c != 0 || proto == kProtoUdplite) {
          c = checksum_replace32(c, old_addr, new_addr);
          c = checksum_replace16(c, old_port, new_port);
          if (c == 0) c = 0xffff;  // CSUM_MANGLED_0: 0 would mean "none"
          store_be16(f + hdr + 6, c);
        }
        store_be16(f + port_at, new_port);
        break;
      }
      case kProtoSctp: {
        // sctp_manip_pkt(): the port; then, when the whole common header is
        // there, the CRC32c recomputed over everything from it to the end of
        // the packet (an ICMP error quoting 8 bytes gets the port only).
        if (hdr + 8 > end) return false;
        store_be16(f + hdr + (src ? 0U : 2U), src ? target.sport : target.dport);
        if (end >= hdr + 12) sctp_store_checksum(f + hdr, sctp_checksum(f + hdr, end - hdr));
        break;
      }
      case kProtoGre: {
        // gre_manip_pkt(): 8 bytes of header or the packet is dropped; only
        // a destination manip of version 1 (PPTP) writes the key (the call
        // id); version 0 is left alone; another version is dropped.
        if (hdr + 8 > end) return false;
        if (src) break;
        const uint16_t version = load_be16(f + hdr) & GreHdr::kVersionMask;
        if (version == 1) {
          store_be16(f + hdr + 6, target.dport);
        } else if (version != 0) {
          return false;
        }
        break;
      }
      case kProtoIcmp: {
        if (hdr + 8 > end) return false;
        if (icmp_is_query(f[hdr])) {
          // The id, whichever the manip (the tuple's id is the same both ways).
          const uint16_t old_id = load_be16(f + hdr + 4);
          store_be16(f + hdr + 2, checksum_replace16(load_be16(f + hdr + 2), old_id, target.sport));
          store_be16(f + hdr + 4, target.sport);
        }
        break;
      }
      default:
        break;  // addresses only
    }
  }
  store_be16(f + iph + 10, checksum_replace32(load_be16(f + iph + 10), old_addr, new_addr));
  store_be32(f + addr_at, new_addr);
  return true;
}

// The key's view of the same rewrite of the outer header.
void rewrite_key(PacketKey& key, const Tuple& target, NatManip m) noexcept {
  if (m == NatManip::Src) {
    key.src_ip = target.src;
    if (key.has(key_flag::kPorts)) key.src_port = target.sport;
  } else {
    key.dst_ip = target.dst;
    if (key.has(key_flag::kPorts)) key.dst_port = target.dport;
  }
  if (key.has(key_flag::kIcmpId)) key.icmp_id = target.sport;
}

// The end of the IP packet in the frame, or 0 when the key does not fit it.
uint32_t l3_end_of(const PacketKey& key, uint32_t len) noexcept {
  const uint32_t end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
  return end <= len && key.l4_off >= key.l3_off + 20U && key.l4_off <= end ? end : 0;
}

// nf_nat_icmp_reply_translation(): an ICMP error RELATED to `e`.
bool translate_icmp_error(const CtEntry& e, CtDir dir, NatManip manip, PacketKey& key,
                          uint8_t* f, uint32_t len) noexcept {
  uint32_t end = 0;
  if (f != nullptr) {
    end = l3_end_of(key, len);
    // The ICMP header and a whole inner IP header must be there.
    if (end == 0 || key.l4_off + 8U + 20U > end) return false;
    // nf_ip_checksum(): the kernel verifies before it rewrites (a fragment
    // is only checksummed reassembled, which the model never sees).
    if (!key.is_fragment() && !checksum_verifies(f + key.l4_off, end - key.l4_off)) return false;
  }
  if (key.icmp_type == 5) {  // redirect: only about a connection NAT left alone
    constexpr uint32_t kDone = ct_status::kSrcNatDone | ct_status::kDstNatDone;
    if ((e.status & kDone) != kDone) return false;
    if ((e.status & (ct_status::kSrcNat | ct_status::kDstNat)) != 0) return false;
  }
  if (!nat_rewrites(e, dir, manip)) return true;

  // The quoted packet went the other way: it is made to look like the other
  // direction's tuple as it is (not inverted), by the opposite manip.
  const Tuple& inner = e.tuple[dir_index(opposite(dir))];
  const NatManip inner_manip = opposite(manip);
  Tuple outer;
  if (!inner.invert(outer)) return true;  // not trackable: cannot be an entry's tuple
  if (f != nullptr) {
    if (!manip_ipv4(f, key.l4_off + 8U, end, inner, inner_manip, e.proto(), true)) return false;
    // The kernel recomputes the ICMP checksum over the whole message.
    store_be16(f + key.l4_off + 2, 0);
    store_be16(f + key.l4_off + 2, internet_checksum(f + key.l4_off, end - key.l4_off));
    if (!manip_ipv4(f, key.l3_off, end, outer, manip, kProtoIcmp, true)) return false;
  }
  if (manip == NatManip::Src)
    key.src_ip = outer.src;
  else
    key.dst_ip = outer.dst;
  InnerTuple& in = key.inner;
  if (inner_manip == NatManip::Src) {
    in.src_ip = inner.src;
    if ((in.flags & inner_flag::kPorts) != 0) in.src_port = inner.sport;
  } else {
    in.dst_ip = inner.dst;
    if ((in.flags & inner_flag::kPorts) != 0) in.dst_port = inner.dport;
  }
  if ((in.flags & inner_flag::kIcmpId) != 0) in.icmp_id = inner.sport;
  return true;
}

}  // namespace

// ---------------------------------------------------------------- checksums

// ---------------------------------------------------------------- hashing

uint32_t jhash_words(const uint32_t* k, std::size_t n, uint32_t initval) noexcept {
  // lookup3.c hashword(), public domain (Bob Jenkins, 2006).
  auto mix = [](uint32_t& a, uint32_t& b, uint32_t& c) {
    a -= c; a ^= std::rotl(c, 4);  c += b;
    b -= a; b ^= std::rotl(a, 6);  a += c;
    c -= b; c ^= std::rotl(b, 8);  b += a;
    a -= c; a ^= std::rotl(c, 16); c += b;
    b -= a; b ^= std::rotl(a, 19); a += c;
    c -= b; c ^= std::rotl(b, 4);  b += a;
  };
  auto final_mix = [](uint32_t& a, uint32_t& b, uint32_t& c) {
    c ^= b; c -= std::rotl(b, 14);
    a ^= c; a -= std::rotl(c, 11);
    b ^= a; b -= std::rotl(a, 25);
    c ^= b; c -= std::rotl(b, 16);
    a ^= c; a -= std::rotl(c, 4);
    b ^= a; b -= std::rotl(a, 14);
    c ^= b; c -= std::rotl(b, 24);
  };
  uint32_t a = 0xdeadbeefU + (static_cast<uint32_t>(n) << 2) + initval;
  uint32_t b = a;
  uint32_t c = a;
  while (n > 3) {
    a += k[0];
    b += k[1];
    c += k[2];
    mix(a, b, c);
    n -= 3;
    k += 3;
  }
  switch (n) {
    case 3: c += k[2]; [[fallthrough]];
    case 2: b += k[1]; [[fallthrough]];
    case 1:
      a += k[0];
      final_mix(a, b, c);
      break;
    default: break;
  }
  return c;
}

uint32_t nat_select_address(const Tuple& t, uint32_t min_addr, uint32_t max_addr, bool persistent,
                            uint16_t zone_id) noexcept {
  if (min_addr == max_addr) return min_addr;
  // The kernel hashes the whole 16-byte address union: an IPv4 address and
  // three zero words, keyed by the destination word and the zone id.
  const std::array<uint32_t, 4> words{kernel_word(t.src), 0, 0, 0};
  const uint32_t j = jhash_words(words.data(), words.size(), persistent ? 0U : kernel_word(t.dst) ^ zone_id);
  const uint32_t dist = max_addr - min_addr + 1U;  // modulo 2^32, like the kernel
  return min_addr + static_cast<uint32_t>((static_cast<uint64_t>(j) * dist) >> 32);
}

// ---------------------------------------------------------------- NatTable

NatTable::NatTable(const ConntrackTable& ct, uint64_t seed)
    : nodes_(ct.capacity()), buckets_(std::max<std::size_t>(ct.capacity(), 1), kNone),
      seed_(seed), rng_(seed) {}

uint16_t NatTable::random_u16() noexcept {
  return static_cast<uint16_t>(splitmix64(rng_) >> 48);
}

uint32_t NatTable::bucket_of(uint32_t src, uint16_t sport, uint8_t proto) const noexcept {
  const uint64_t key = (static_cast<uint64_t>(src) << 32) | (static_cast<uint64_t>(sport) << 8) | proto;
  const uint64_t h = mix64(key ^ seed_);
  return static_cast<uint32_t>(((h >> 32) * buckets_.size()) >> 32);
}

void NatTable::unlink(uint32_t slot) noexcept {
  Node& n = nodes_[slot];
  if (n.bucket == kNone) return;
  if (n.prev != kNone)
    nodes_[n.prev].next = n.next;
  else
    buckets_[n.bucket] = n.next;
  if (n.next != kNone) nodes_[n.next].prev = n.prev;
  n.prev = n.next = n.bucket = kNone;
}

bool NatTable::live(const ConntrackTable& ct, uint32_t slot) const noexcept {
  const CtEntry* e = ct.entry(slot);
  if (e == nullptr || e->id != nodes_[slot].id || e->has(ct_status::kDying)) return false;
  return !e->has(ct_status::kConfirmed) || e->deadline_ns > ct.clock_ns();
}

void NatTable::link_source(uint32_t entry, const CtEntry& e) noexcept {
  if (entry >= nodes_.size()) return;
  Node& n = nodes_[entry];
  if (n.id != e.id) {
    unlink(entry);  // left by the slot's previous connection
    n = Node{};
    n.id = e.id;
  }
  unlink(entry);
  const Tuple& o = e.tuple[dir_index(CtDir::Original)];
  n.bucket = bucket_of(o.src, o.sport, o.proto);
  n.prev = kNone;
  n.next = buckets_[n.bucket];
  if (n.next != kNone) nodes_[n.next].prev = entry;
  buckets_[n.bucket] = entry;  // newest first, like hlist_add_head
}

bool NatTable::find_source(const ConntrackTable& ct, uint32_t self, const Tuple& t,
                           const NatRangeSpec& range, Tuple& mapped) noexcept {
  const CtEntry* self_entry = ct.entry(self);
  const uint16_t self_zone = self_entry != nullptr ? self_entry->tuple[dir_index(CtDir::Original)].zone : t.zone;
  uint32_t slot = buckets_[bucket_of(t.src, t.sport, t.proto)];
  while (slot != kNone) {
    const uint32_t next = nodes_[slot].next;
    if (!live(ct, slot)) {
      unlink(slot);  // its connection is gone: forget it now
    } else if (slot != self) {
      const CtEntry& other = *ct.entry(slot);
      const Tuple& o = other.tuple[dir_index(CtDir::Original)];
      Tuple m;
      // The same source in the same zone (find_appropriate_src() compares
      // the ORIGINAL direction's zone id; t, an inverted REPLY tuple,
      // carries REPLY's).
      if (o.proto == t.proto && o.src == t.src && o.sport == t.sport && o.zone == self_zone &&
          other.tuple[dir_index(CtDir::Reply)].invert(m)) {
        // Its source half, with this connection's destination half (for
        // ICMP the type and code) and zone id.
        m.dst = t.dst;
        m.dport = t.dport;
        m.zone = t.zone;
        if (src_in_range(m, range)) {
          mapped = m;
          return true;
        }
      }
    }
    slot = next;
  }
  return false;
}

void NatTable::set_masquerade_iface(uint32_t entry, const CtEntry& e, uint16_t iface) noexcept {
  if (entry >= nodes_.size()) return;
  Node& n = nodes_[entry];
  if (n.id != e.id) {
    unlink(entry);
    n = Node{};
    n.id = e.id;
  }
  n.masq_iface = iface;
}

uint16_t NatTable::masquerade_iface(uint32_t entry, const CtEntry& e) const noexcept {
  if (entry >= nodes_.size() || nodes_[entry].id != e.id) return kNoIface;
  return nodes_[entry].masq_iface;
}

bool NatTable::masquerade_oif_changed(uint32_t entry, const CtEntry& e, CtDir dir, Hook hook,
                                      uint16_t out_iface) const noexcept {
  if (hook != Hook::Postrouting || dir != CtDir::Original) return false;
  const uint16_t masq = masquerade_iface(entry, e);
  return masq != kNoIface && masq != out_iface;
}

// ---------------------------------------------------------------- binding

NatRangeSpec nat_range_spec(const NatRange& r) noexcept {
  NatRangeSpec s;
  if (r.has_addr) {
    s.flags |= rf::kMapIps;
    s.min_addr = r.addr_lo;
    s.max_addr = r.addr_hi;
  }
  if (r.has_ports) {
    s.flags |= rf::kProtoSpecified;
    s.min_proto = r.port_lo;
    s.max_proto = r.port_hi;
  }
  if (r.has_base) {
    s.flags |= rf::kProtoOffset;
    s.base_proto = r.base;
  }
  if (r.random) s.flags |= rf::kProtoRandom;
  if (r.random_fully) s.flags |= rf::kProtoRandomFully;
  if (r.persistent) s.flags |= rf::kPersistent;
  return s;
}

bool nat_setup(ConntrackTable& ct, uint32_t entry, NatManip manip, const NatRangeSpec& range,
               NatTable* nat) noexcept {
  CtEntry* e = ct.entry(entry);
  auto refuse = [nat] {
    if (nat != nullptr) ++nat->counters().refused;
    return false;
  };
  if (e == nullptr) return refuse();
  if (e->has(ct_status::kConfirmed)) return true;  // too late: the kernel leaves it
  if (nat_initialized(*e, manip)) return refuse();
  // What the packet looks like now: the inverse of REPLY (an earlier manip
  // of this connection included).
  Tuple curr;
  if (!e->tuple[dir_index(CtDir::Reply)].invert(curr)) return refuse();
  const Tuple chosen = Binder(ct, entry, manip, range, nat).unique_tuple(curr);
  Tuple reply;
  if (!(chosen == curr) && chosen.invert(reply) && ct.set_reply_tuple(entry, reply)) {
    e->status |= manip == NatManip::Src ? ct_status::kSrcNat : ct_status::kDstNat;
    if (nat != nullptr) ++(manip == NatManip::Src ? nat->counters().bound_src : nat->counters().bound_dst);
  } else if (nat != nullptr) {
    ++nat->counters().unchanged;
  }
  if (manip == NatManip::Src && nat != nullptr) nat->link_source(entry, *e);
  e->status |= manip == NatManip::Src ? ct_status::kSrcNatDone : ct_status::kDstNatDone;
  return true;
}

bool nat_null_binding(ConntrackTable& ct, uint32_t entry, NatManip manip,
                      const NatContext& ctx) noexcept {
  const CtEntry* e = ct.entry(entry);
  if (e == nullptr) {
    if (ctx.nat != nullptr) ++ctx.nat->counters().refused;
    return false;
  }
  // The address the packet has now on that side (the reply tuple holds an
  // earlier manip of a local packet).
  const Tuple& reply = e->tuple[dir_index(CtDir::Reply)];
  const uint32_t addr = manip == NatManip::Src ? reply.dst : reply.src;
  NatRangeSpec r;
  r.flags = rf::kMapIps;
  r.min_addr = r.max_addr = addr;
  return nat_setup(ct, entry, manip, r, ctx.nat);
}

bool nat_bind(ConntrackTable& ct, uint32_t entry, NatManip manip, const Target& target,
              const NatContext& ctx) noexcept {
  auto refuse = [&ctx] {
    if (ctx.nat != nullptr) ++ctx.nat->counters().refused;
    return false;
  };
  auto no_address = [&ctx] {
    if (ctx.nat != nullptr) ++ctx.nat->counters().no_address;
    return false;
  };
  if (const auto* dnat = std::get_if<DnatTarget>(&target)) {
    if (manip != NatManip::Dst) return refuse();
    return nat_setup(ct, entry, manip, nat_range_spec(dnat->range), ctx.nat);
  }
  if (const auto* snat = std::get_if<SnatTarget>(&target)) {
    if (manip != NatManip::Src) return refuse();
    return nat_setup(ct, entry, manip, nat_range_spec(snat->range), ctx.nat);
  }
  if (const auto* masq = std::get_if<MasqueradeTarget>(&target)) {
    if (manip != NatManip::Src) return refuse();
    const CtEntry* e = ct.entry(entry);
    if (e == nullptr) return refuse();
    // Source 0.0.0.0: accepted unbound, so the hook ends in a null binding.
    if (e->tuple[dir_index(CtDir::Original)].src == 0) return nat_null_binding(ct, entry, manip, ctx);
    if (ctx.host == nullptr) return no_address();
    const std::optional<uint32_t> addr = ctx.host->masquerade_source(ctx.out_iface, ctx.next_hop);
    if (!addr || *addr == 0) return no_address();
    if (ctx.nat != nullptr) ctx.nat->set_masquerade_iface(entry, *e, ctx.out_iface);
    NatRangeSpec r;
    r.flags = rf::kMapIps;
    r.min_addr = r.max_addr = *addr;
    if (masq->has_ports) {
      r.flags |= rf::kProtoSpecified;
      r.min_proto = masq->ports.lo;
      r.max_proto = masq->ports.hi;
    }
    if (masq->random) r.flags |= rf::kProtoRandom;
    if (masq->random_fully) r.flags |= rf::kProtoRandomFully;
    return nat_setup(ct, entry, manip, r, ctx.nat);
  }
  if (const auto* redir = std::get_if<RedirectTarget>(&target)) {
    if (manip != NatManip::Dst) return refuse();
    uint32_t addr = 0;
    if (ctx.hook == Hook::Output) {
      addr = kLoopbackAddress;
    } else if (ctx.host != nullptr && ctx.in_iface < ctx.host->iface_count()) {
      const Interface& in = ctx.host->iface(ctx.in_iface);
      if (!in.addrs.empty()) addr = in.addrs.front().local;
    }
    if (addr == 0) return no_address();
    NatRangeSpec r;
    r.flags = rf::kMapIps;
    r.min_addr = r.max_addr = addr;
    if (redir->has_ports) {
      r.flags |= rf::kProtoSpecified;
      r.min_proto = redir->ports.lo;
      r.max_proto = redir->ports.hi;
    }
    if (redir->random) r.flags |= rf::kProtoRandom;
    return nat_setup(ct, entry, manip, r, ctx.nat);
  }
  return refuse();
}

// ---------------------------------------------------------------- applying

bool nat_apply(const CtEntry& e, CtDir dir, NatManip manip, PacketKey& key, uint8_t* frame,
               uint32_t len) noexcept {
  if (key.proto == kProtoIcmp && !key.is_later_fragment() && key.has(key_flag::kIcmp) &&
      icmp_is_error(key.icmp_type)) {
    // Conntrack makes an error RELATED only when it quotes a usable header.
    if (!key.has(key_flag::kInner)) return false;
    return translate_icmp_error(e, dir, manip, key, frame, len);
  }
  if (!nat_rewrites(e, dir, manip)) return true;
  // Made to look like the inverse of the other direction's tuple.
  Tuple target;
  if (!e.tuple[dir_index(opposite(dir))].invert(target)) return true;
  if (frame != nullptr) {
    const uint32_t end = l3_end_of(key, len);
    if (end == 0) return false;
    // A later fragment has no L4 header: the kernel rewrote it in the
    // reassembled datagram, which leaves in the first fragment.
    if (!manip_ipv4(frame, key.l3_off, end, target, manip, e.proto(), !key.is_later_fragment()))
      return false;
  }
  rewrite_key(key, target, manip);
  return true;
}

NatRewrite nat_rewrite_for(const CtEntry& e, CtDir dir, bool forwarded) noexcept {
  NatRewrite rw;
  const Tuple& now = e.tuple[dir_index(dir)];
  rw.proto = e.proto();
  rw.src = now.src;
  rw.dst = now.dst;
  rw.sport = now.sport;
  rw.dport = now.dport;
  uint64_t ip = 0;
  uint64_t l4 = 0;
  const auto change32 = [](uint64_t& sum, uint32_t from, uint32_t to) {
    sum += static_cast<uint16_t>(~(from >> 16)) + static_cast<uint16_t>(~from) + (to >> 16) + (to & 0xffffU);
  };
  const auto change16 = [](uint64_t& sum, uint16_t from, uint16_t to) {
    sum += static_cast<uint16_t>(~from) + uint64_t{to};
  };
  Tuple target;
  const bool invertible = e.tuple[dir_index(opposite(dir))].invert(target);
  // In the pipeline's order: the destination at PREROUTING, the source at
  // POSTROUTING or INPUT; each as manip_ipv4() does it.
  for (const NatManip m : {NatManip::Dst, NatManip::Src}) {
    if (!invertible || !nat_rewrites(e, dir, m)) continue;
    const bool src = m == NatManip::Src;
    uint32_t& addr = src ? rw.src : rw.dst;
    const uint32_t to_addr = src ? target.src : target.dst;
    switch (rw.proto) {
      case kProtoTcp:
      case kProtoUdp:
      case kProtoUdplite:
      case kProtoSctp: {  // SCTP: the sums are unused (its CRC is recomputed)
        uint16_t& port = src ? rw.sport : rw.dport;
        const uint16_t to_port = src ? target.sport : target.dport;
        change32(l4, addr, to_addr);
        change16(l4, port, to_port);
        port = to_port;
        break;
      }
      case kProtoIcmp:
        change16(l4, rw.sport, target.sport);  // the id, whichever the manip
        rw.sport = target.sport;
        break;
      default:
        break;
    }
    change32(ip, addr, to_addr);
    addr = to_addr;
    rw.what |= src ? NatRewrite::kSrc : NatRewrite::kDst;
  }
  if (forwarded) {
    // (ttl << 8 | proto) -> ((ttl - 1) << 8 | proto), whatever the TTL.
    ip += 0xfeffU;
    rw.what |= NatRewrite::kTtl;
  }
  rw.ip_sum = checksum_fold(ip);
  rw.l4_sum = checksum_fold(l4);
  return rw;
}

}  // namespace nfb
