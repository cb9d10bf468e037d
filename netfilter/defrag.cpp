// IPv4 reassembly. See defrag.h for the rules and the memory layout.
#include "netfilter/defrag.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "packet/byte_order.h"
#include "packet/checksum.h"

namespace nfb {

namespace {

constexpr uint32_t kMaxSlots = 1U << 24;
constexpr uint32_t kIpTosOff = 1;
constexpr uint32_t kIpTotalLenOff = 2;
constexpr uint32_t kIpFragOff = 6;
constexpr uint32_t kIpChecksumOff = 10;
constexpr uint8_t kL2Flags = key_flag::kMac | key_flag::kVlan | key_flag::kQinQ;

// RFC 3168 5.3 over the OR of 1 << (tos & 3) of every fragment: bit 0
// Not-ECT, bit 1 ECT(1), bit 2 ECT(0), bit 3 CE.
constexpr uint8_t kEcnNotEct = 0x01;
constexpr uint8_t kEcnCe = 0x08;
constexpr uint8_t kEcnAnyEct = 0x0e;

}  // namespace

DefragTable::DefragTable(const DefragConfig& config) : config_(config) {
  if (config_.max_datagrams == 0 || config_.max_datagrams > kMaxSlots)
    throw std::invalid_argument("defrag: max_datagrams must be in 1..2^24");
  if (config_.output_slots == 0 || config_.output_slots > kMaxSlots)
    throw std::invalid_argument("defrag: output_slots must be in 1..2^24");
  const uint32_t n = config_.max_datagrams;
  slots_.resize(n);
  free_slots_.resize(n);
  for (uint32_t i = 0; i < n; ++i) free_slots_[i] = n - 1 - i;  // slot 0 first
  uint32_t buckets = 1;
  while (buckets < n) buckets <<= 1;
  buckets_.assign(buckets, kNil);
  bucket_mask_ = buckets - 1;

  // Enough blocks for memory_limit bytes plus one largest fragment (65515
  // payload bytes need 128 blocks), so a fragment accepted while memory <=
  // memory_limit always finds its blocks.
  const uint64_t blocks = (uint64_t{config_.memory_limit} + kBlockBytes - 1) / kBlockBytes + 129;
  const auto nb = static_cast<uint32_t>(blocks);
  arena_.resize(static_cast<size_t>(nb) * kBlockBytes);
  block_next_.resize(nb);
  frag_off_.resize(nb);
  frag_len_.resize(nb);
  frag_next_.resize(nb);
  for (uint32_t i = 0; i < nb; ++i) block_next_[i] = i + 1 < nb ? i + 1 : kNil;
  free_block_ = 0;
  free_blocks_ = nb;
  run_start_.resize(nb);
  run_end_.resize(nb);
  run_next_.resize(nb);
  for (uint32_t i = 0; i < nb; ++i) run_next_[i] = i + 1 < nb ? i + 1 : kNil;
  free_run_ = 0;

  output_.resize(static_cast<size_t>(config_.output_slots) * kDefragOutputSlotBytes);
}

uint32_t DefragTable::hash(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto) const noexcept {
  uint64_t h = ((uint64_t{src} << 32) | dst) * 0x9e3779b97f4a7c15ULL;
  h ^= ((uint64_t{id} << 8) | proto) * 0xc2b2ae3d27d4eb4fULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return static_cast<uint32_t>(h) & bucket_mask_;
}

uint32_t DefragTable::find(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto, uint32_t bucket) const noexcept {
  for (uint32_t s = buckets_[bucket]; s != kNil; s = slots_[s].bucket_next) {
    const Datagram& d = slots_[s];
    if (d.src == src && d.dst == dst && d.id == id && d.proto == proto) return s;
  }
  return kNil;
}

uint32_t DefragTable::create(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto, uint32_t bucket,
                             uint64_t now_ns) noexcept {
  if (free_slots_.empty()) return kNil;
  const uint32_t s = free_slots_.back();
  free_slots_.pop_back();
  Datagram& d = slots_[s];
  d = Datagram{};
  d.src = src;
  d.dst = dst;
  d.id = id;
  d.proto = proto;
  d.deadline_ns = now_ns + config_.timeout_ns;
  d.bucket_next = buckets_[bucket];
  buckets_[bucket] = s;
  // The timer starts with the first fragment to arrive and is never
  // extended, so arrival order is deadline order.
  d.age_prev = age_tail_;
  if (age_tail_ != kNil) {
    slots_[age_tail_].age_next = s;
  } else {
    age_head_ = s;
  }
  age_tail_ = s;
  ++in_use_;
  return s;
}

void DefragTable::release(uint32_t s) noexcept {
  Datagram& d = slots_[s];
  for (uint32_t f = d.frags; f != kNil;) {
    const uint32_t next_frag = frag_next_[f];
    uint32_t last = f;
    while (block_next_[last] != kNil) last = block_next_[last];
    block_next_[last] = free_block_;
    free_block_ = f;
    f = next_frag;
  }
  free_blocks_ += d.blocks;
  memory_ -= uint64_t{d.blocks} * kBlockBytes;
  for (uint32_t r = d.runs; r != kNil;) {
    const uint32_t next = run_next_[r];
    run_next_[r] = free_run_;
    free_run_ = r;
    r = next;
  }
  uint32_t* link = &buckets_[hash(d.src, d.dst, d.id, d.proto)];
  while (*link != s) link = &slots_[*link].bucket_next;
  *link = d.bucket_next;
  if (d.age_prev != kNil) {
    slots_[d.age_prev].age_next = d.age_next;
  } else {
    age_head_ = d.age_next;
  }
  if (d.age_next != kNil) {
    slots_[d.age_next].age_prev = d.age_prev;
  } else {
    age_tail_ = d.age_prev;
  }
  d = Datagram{};
  free_slots_.push_back(s);  // capacity reserved at construction: no allocation
  --in_use_;
}

uint32_t DefragTable::expire(uint64_t now_ns) noexcept {
  now_ns_ = std::max(now_ns_, now_ns);
  uint32_t fragments = 0;
  while (age_head_ != kNil && slots_[age_head_].deadline_ns <= now_ns_) {
    const Datagram& d = slots_[age_head_];
    fragments += d.nfrags;
    stats_.dropped[static_cast<size_t>(DefragDrop::Timeout)] += d.nfrags;
    ++stats_.failed[static_cast<size_t>(DefragDrop::Timeout)];
    stats_.held -= d.nfrags;
    release(age_head_);
  }
  return fragments;
}

DefragResult& DefragTable::drop(DefragDrop reason, DefragResult& r) noexcept {
  ++stats_.dropped[static_cast<size_t>(reason)];
  r.status = DefragStatus::Dropped;
  r.reason = reason;
  return r;
}

DefragResult& DefragTable::discard(uint32_t s, DefragDrop reason, bool current_held, DefragResult& r) noexcept {
  const Datagram& d = slots_[s];
  const auto i = static_cast<size_t>(reason);
  r.discarded = static_cast<uint16_t>(d.nfrags - (current_held ? 1U : 0U));
  stats_.dropped[i] += d.nfrags + (current_held ? 0U : 1U);
  ++stats_.failed[i];
  stats_.held -= d.nfrags;
  release(s);
  r.status = DefragStatus::Dropped;
  r.reason = reason;
  return r;
}

// Where [off, end) goes among the datagram's runs (see defrag.h): appended
// to the tail run, a run of its own, a duplicate inside one run, or an
// overlap.
DefragTable::Insert DefragTable::insert_run(Datagram& d, uint32_t off, uint32_t end) noexcept {
  const auto new_run = [this](uint32_t start, uint32_t stop, uint32_t next) {
    const uint32_t r = free_run_;
    free_run_ = run_next_[r];
    run_start_[r] = start;
    run_end_[r] = stop;
    run_next_[r] = next;
    return r;
  };
  if (d.runs == kNil) {
    d.runs = d.tail_run = new_run(off, end, kNil);
    return Insert::Ok;
  }
  const uint32_t tail = d.tail_run;
  if (run_end_[tail] < end) {  // the common case: beyond everything held
    if (off < run_end_[tail]) return Insert::Overlap;
    if (off == run_end_[tail]) {
      run_end_[tail] = end;
      return Insert::Ok;
    }
    const uint32_t r = new_run(off, end, kNil);
    run_next_[tail] = r;
    d.tail_run = r;
    return Insert::Ok;
  }
  uint32_t prev = kNil;
  uint32_t cur = d.runs;
  for (; cur != kNil; prev = cur, cur = run_next_[cur]) {
    if (end <= run_start_[cur]) break;  // fits before cur
    if (off >= run_end_[cur]) continue;
    return off >= run_start_[cur] && end <= run_end_[cur] ? Insert::Duplicate : Insert::Overlap;
  }
  const uint32_t r = new_run(off, end, cur);
  if (prev == kNil) {
    d.runs = r;
  } else {
    run_next_[prev] = r;
  }
  return Insert::Ok;
}

// Copies n (>= 1) payload bytes into a chain of fresh blocks and records
// the fragment. The caller has checked that the blocks are there.
bool DefragTable::store(Datagram& d, uint32_t off, uint32_t n, const uint8_t* payload) noexcept {
  const uint32_t nb = (n + kBlockBytes - 1) / kBlockBytes;
  if (nb > free_blocks_) return false;
  const uint32_t first = free_block_;
  uint32_t b = first;
  for (uint32_t i = 0, done = 0; i < nb; ++i) {
    const uint32_t chunk = std::min(kBlockBytes, n - done);
    std::memcpy(arena_.data() + static_cast<size_t>(b) * kBlockBytes, payload + done, chunk);
    done += chunk;
    if (i + 1 < nb) b = block_next_[b];
  }
  free_block_ = block_next_[b];
  block_next_[b] = kNil;
  free_blocks_ -= nb;
  frag_off_[first] = static_cast<uint16_t>(off);
  frag_len_[first] = static_cast<uint16_t>(n);
  frag_next_[first] = d.frags;
  d.frags = first;
  d.blocks += nb;
  memory_ += uint64_t{nb} * kBlockBytes;
  return true;
}

DefragResult& DefragTable::complete(uint32_t s, const PacketKey& key, const uint8_t* frame,
                                      DefragResult& r) noexcept {
  const Datagram& d = slots_[s];
  if ((d.ecn & kEcnNotEct) != 0 && (d.ecn & kEcnAnyEct) != 0) return discard(s, DefragDrop::EcnMismatch, true, r);
  const uint32_t ihl = d.head_ihl;
  const uint32_t total = ihl + d.len;
  if (total > 0xffffU) return discard(s, DefragDrop::TooBig, true, r);

  const uint32_t out_slot = next_output_;
  next_output_ = next_output_ + 1 == config_.output_slots ? 0 : next_output_ + 1;
  uint8_t* out = output_.data() + static_cast<size_t>(out_slot) * kDefragOutputSlotBytes;
  const uint32_t l2 = key.l3_off;
  std::memcpy(out, frame, l2);
  uint8_t* ip = out + l2;
  std::memcpy(ip, d.head_hdr.data(), ihl);
  store_be16(ip + kIpTotalLenOff, static_cast<uint16_t>(total));
  // DF only when the largest fragment had it (then a refragmenting router
  // may keep the sender's fragment size); MF and the offset are cleared.
  store_be16(ip + kIpFragOff, d.max_df_size == d.max_size ? ip_frag::kDontFragment : uint16_t{0});
  if ((d.ecn & kEcnCe) != 0) ip[kIpTosOff] = static_cast<uint8_t>(ip[kIpTosOff] | 0x03U);
  store_be16(ip + kIpChecksumOff, 0);
  store_be16(ip + kIpChecksumOff, internet_checksum(ip, ihl));
  for (uint32_t f = d.frags; f != kNil; f = frag_next_[f]) {
    uint8_t* to = ip + ihl + frag_off_[f];
    uint32_t left = frag_len_[f];
    for (uint32_t b = f; left != 0; b = block_next_[b]) {
      const uint32_t chunk = std::min(kBlockBytes, left);
      std::memcpy(to, arena_.data() + static_cast<size_t>(b) * kBlockBytes, chunk);
      to += chunk;
      left -= chunk;
    }
  }

  PacketKey& k = r.key;
  if (parse_frame(ip, total, LinkType::Ipv4, key.ifindex, k) != ParseStatus::Ok) {
    r.key = PacketKey{};
    return discard(s, DefragDrop::BadDatagram, true, r);
  }
  // The parse saw the datagram alone: move its offsets behind the link
  // header, and give it the first fragment's link metadata, as the kernel's
  // reassembled skb carries the head's.
  k.l3_off = static_cast<uint16_t>(k.l3_off + l2);
  k.l4_off = static_cast<uint16_t>(k.l4_off + l2);
  k.payload_off = static_cast<uint16_t>(k.payload_off + l2);
  if (k.has(key_flag::kInner)) k.inner.l3_off = static_cast<uint16_t>(k.inner.l3_off + l2);
  k.flags = static_cast<uint8_t>((k.flags & ~kL2Flags) | d.head_l2flags);
  k.src_mac = d.head_mac;
  k.vlan_id = d.head_vlan;
  k.pkttype = d.head_pkttype;

  r.status = DefragStatus::Complete;
  r.fragments = d.nfrags;
  r.output_slot = out_slot;
  r.frame = out;
  r.len = l2 + total;
  ++stats_.datagrams;
  stats_.merged += d.nfrags;
  stats_.held -= d.nfrags;
  release(s);
  return r;
}

DefragResult DefragTable::add(const PacketKey& key, const uint8_t* frame, uint32_t len, uint64_t now_ns) noexcept {
  DefragResult r;
  r.expired = expire(now_ns);
  ++stats_.fragments;
  const uint32_t l3 = key.l3_off;
  const uint32_t ihl = key.l4_off >= key.l3_off ? key.ip_hdr_len() : 0U;
  if (!key.is_fragment() || frame == nullptr || l3 > kDefragMaxLinkHeader || ihl < 20 || ihl > 60 ||
      key.l3_len < ihl || l3 + key.l3_len > len) {
    return drop(DefragDrop::BadFrame, r);
  }
  // The kernel refuses every fragment while its fragment memory is above
  // the limit, before it even looks for the datagram.
  if (config_.memory_limit == 0 || memory_ > config_.memory_limit) return drop(DefragDrop::MemoryLimit, r);

  const uint32_t bucket = hash(key.src_ip, key.dst_ip, key.ip_id, key.proto);
  uint32_t s = find(key.src_ip, key.dst_ip, key.ip_id, key.proto, bucket);
  if (s == kNil) {
    s = create(key.src_ip, key.dst_ip, key.ip_id, key.proto, bucket, now_ns_);
    if (s == kNil) return drop(DefragDrop::TableFull, r);
  }
  Datagram& d = slots_[s];

  // Position and length checks, in the kernel's order. What they learn about
  // the datagram's length stays even if the fragment turns out a duplicate.
  const uint32_t off = key.frag_offset_bytes();
  uint32_t end = off + key.l3_len - ihl;
  if ((key.frag & ip_frag::kMoreFragments) == 0) {
    if (end < d.len || ((d.flags & kLastIn) != 0 && end != d.len)) return discard(s, DefragDrop::BadLength, false, r);
    d.flags |= kLastIn;
    d.len = end;
  } else {
    end &= ~7U;  // a non-last fragment carries a multiple of 8 bytes
    if (end > d.len) {
      if ((d.flags & kLastIn) != 0) return discard(s, DefragDrop::BadLength, false, r);
      d.len = end;
    }
  }
  if (end == off) return discard(s, DefragDrop::BadLength, false, r);
  const uint32_t n = end - off;

  // Never true (see the arena's size in defrag.h); kept so that a wrong
  // size could not corrupt the table.
  if ((n + kBlockBytes - 1) / kBlockBytes > free_blocks_ || free_run_ == kNil) {
    if (d.nfrags == 0) release(s);
    return drop(DefragDrop::MemoryLimit, r);
  }
  switch (insert_run(d, off, end)) {
    case Insert::Ok:
      break;
    case Insert::Duplicate:
      return drop(DefragDrop::Duplicate, r);  // a duplicate needs a held run: d is not empty
    case Insert::Overlap:
      return discard(s, DefragDrop::Overlap, false, r);
  }
  store(d, off, n, frame + l3 + ihl);
  d.meat += n;
  ++d.nfrags;
  ++stats_.held;
  const auto fragsize = static_cast<uint16_t>(n + ihl);  // <= l3_len
  d.max_size = std::max(d.max_size, fragsize);
  if ((key.frag & ip_frag::kDontFragment) != 0) d.max_df_size = std::max(d.max_df_size, fragsize);
  d.ecn = static_cast<uint8_t>(d.ecn | (1U << (key.tos & 0x03U)));
  if (off == 0) {
    d.flags |= kFirstIn;
    d.head_ihl = static_cast<uint8_t>(ihl);
    std::memcpy(d.head_hdr.data(), frame + l3, ihl);
    d.head_mac = key.src_mac;
    d.head_vlan = key.vlan_id;
    d.head_l2flags = static_cast<uint8_t>(key.flags & kL2Flags);
    d.head_pkttype = key.pkttype;
  }
  if (d.flags == (kFirstIn | kLastIn) && d.meat == d.len) return complete(s, key, frame, r);
  r.status = DefragStatus::Held;
  return r;
}

}  // namespace nfb
