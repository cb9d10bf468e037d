// -m connlimit: option parsing and printing (libxt_connlimit's), and the
// per-rule connection lists.
#include "rules/matches/connlimit.h"

#include <bit>

namespace nfb {

// ---------------------------------------------------------------------------
// Options

void ConnlimitMatch::parse(const ModuleOption& o) {
  switch (o.id) {
    case kUpto:
    case kAbove: {
      o.conflict(o.id == kUpto ? kAbove : kUpto, o.id == kUpto ? "--connlimit-above" : "--connlimit-upto");
      auto v = parse_c_uint(o.a, UINT32_MAX);
      if (!v) o.fail(o.acol, fmt::format("bad value for {} \"{}\" (expected 0-4294967295)", o.name, o.a));
      limit = static_cast<uint32_t>(*v);
      // --connlimit-upto is the kernel's inverted --connlimit-above; a `!`
      // flips either.
      invert = (o.id == kUpto) != o.invert;
      break;
    }
    case kMask: {
      // XTTYPE_PLENMASK: a prefix length, or a netmask (kept as given, holes
      // and all; iptables-save then prints 32). Lengths above 32 are taken
      // as 32, as iptables does.
      if (auto n = parse_c_uint(o.a, 255)) {
        mask = prefix_mask(static_cast<unsigned>(*n));  // above 32: all ones
        break;
      }
      const auto m = parse_dotted_mask(o.a);
      if (!m) o.fail(o.acol, fmt::format("\"{}\" is neither a valid network mask nor valid CIDR (0-32)", o.a));
      mask = *m;
      break;
    }
    case kSaddr:
      o.conflict(kDaddr, "--connlimit-daddr");
      daddr = false;
      break;
    case kDaddr:
      o.conflict(kSaddr, "--connlimit-saddr");
      daddr = true;
      break;
  }
}

void ConnlimitMatch::check(const ModuleCheck& c) const {
  if (!c.given(kUpto) && !c.given(kAbove))
    c.fail("connlimit: you must specify \"--connlimit-above\" or \"--connlimit-upto\"");
}

uint32_t ConnlimitMatch::prefix() const noexcept {
  const int len = mask_prefix_length(mask);
  return len < 0 ? 32U : static_cast<uint32_t>(len);
}

void ConnlimitMatch::save(SaveLine& l) const {
  l.add("-m connlimit").add(invert ? "--connlimit-upto" : "--connlimit-above").add(std::to_string(limit));
  l.add("--connlimit-mask").add(std::to_string(prefix()));
  l.add(daddr ? "--connlimit-daddr" : "--connlimit-saddr");
}

void ConnlimitMatch::list(ListText& t) const {
  t.put(" #conn {}/{} {} {}", daddr ? "dst" : "src", prefix(), invert ? "<=" : ">", limit);
}

// ---------------------------------------------------------------------------
// Lists

ConnlimitTable::ConnlimitTable(uint32_t conntrack_max)
    : nodes_(uint64_t{conntrack_max} * 2), groups_(std::bit_ceil(uint64_t{conntrack_max} * 4)) {
  group_mask_ = static_cast<uint32_t>(groups_.size() - 1);
}

void ConnlimitTable::clear() noexcept {
  for (Group& g : groups_) {
    if (g.used == 0) continue;  // untouched pages stay untouched
    for (uint32_t h = g.head; h != 0;) {
      const uint32_t next = nodes_[h - 1].next;
      nodes_[h - 1] = Node{};
      h = next;
    }
    g = Group{};
  }
  used_groups_ = 0;
}

namespace {
uint32_t group_hash(uint32_t addr) noexcept {
  uint64_t h = uint64_t{addr} * 0x9e3779b97f4a7c15ULL;
  return static_cast<uint32_t>(h >> 32);
}
}  // namespace

uint32_t ConnlimitTable::find_group(uint32_t addr) const noexcept {
  uint32_t s = group_hash(addr) & group_mask_;
  while (groups_[s].used != 0 && groups_[s].addr != addr) s = (s + 1) & group_mask_;
  return s;
}

void ConnlimitTable::unlink(uint32_t node) noexcept {
  Node& n = nodes_[node];
  Group& g = groups_[n.group];
  if (n.prev != 0) nodes_[n.prev - 1].next = n.next;
  else g.head = n.next;
  if (n.next != 0) nodes_[n.next - 1].prev = n.prev;
  --g.size;
  const uint32_t group = n.group;
  n = Node{};
  if (g.size == 0) remove_group(group);
}

void ConnlimitTable::remove_group(uint32_t slot) noexcept {
  // Backward-shift deletion; the groups moved keep their nodes, whose
  // `group` follows them.
  uint32_t hole = slot;
  uint32_t s = (hole + 1) & group_mask_;
  while (groups_[s].used != 0) {
    const uint32_t home = group_hash(groups_[s].addr) & group_mask_;
    if (((s - home) & group_mask_) >= ((s - hole) & group_mask_)) {
      groups_[hole] = groups_[s];
      for (uint32_t h = groups_[hole].head; h != 0; h = nodes_[h - 1].next) nodes_[h - 1].group = hole;
      hole = s;
    }
    s = (s + 1) & group_mask_;
  }
  groups_[hole] = Group{};
  --used_groups_;
}

uint32_t ConnlimitTable::count(uint32_t addr, const PacketConn& p, const ConnLiveness& live,
                               uint64_t now_ns) noexcept {
  // A confirmed connection that is assured, or a packet in its original
  // direction once established, is not added (it was counted when it
  // began): the list is only collected.
  const bool skip = p.present && p.confirmed && (p.assured || p.established_original);
  uint32_t slot = find_group(addr);
  const bool existed = groups_[slot].used != 0;
  bool in_list = false;
  if (existed) {
    // Drop what no longer counts; find the packet's own connection (the
    // kernel's duplicate check comes first, when it means to add).
    for (uint32_t n = groups_[slot].head; n != 0;) {
      const uint32_t node = n - 1;
      n = nodes_[node].next;
      if (!skip && p.present && node / 2 == p.handle && nodes_[node].id == p.id) {
        in_list = true;
        continue;
      }
      if (!live.counts(node / 2, nodes_[node].id, now_ns)) {
        const bool last = groups_[slot].size == 1;
        unlink(node);
        if (last) break;  // the group is gone (and its slot may hold another now)
      }
    }
    slot = find_group(addr);
  }
  const uint32_t kept = groups_[slot].used != 0 ? groups_[slot].size : 0;
  if (existed && skip) return kept;  // 0: the kernel drops the packet
  if (!p.present) return kept + 1;   // untracked or invalid: counted once, not kept
  if (in_list) return kept;
  const uint64_t node64 = uint64_t{p.handle} * 2 + (p.reply ? 1 : 0);
  if (node64 >= nodes_.size()) return kept + 1;
  const auto node = static_cast<uint32_t>(node64);
  // Keep it. The node may still hold a connection gone since (in another
  // group's list): take it over.
  if (nodes_[node].id != 0) {
    unlink(node);
    slot = find_group(addr);
  }
  if (groups_[slot].used == 0) {
    groups_[slot] = Group{addr, 0, 0, 1};
    ++used_groups_;
  }
  Group& g = groups_[slot];
  Node& nd = nodes_[node];
  nd.id = p.id;
  nd.group = slot;
  nd.prev = 0;
  nd.next = g.head;
  if (g.head != 0) nodes_[g.head - 1].prev = node + 1;
  g.head = node + 1;
  ++g.size;
  return g.size;
}

}  // namespace nfb
