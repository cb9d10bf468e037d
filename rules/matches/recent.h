// -m recent: named lists of recently seen addresses. iptables' libxt_recent,
// the kernel's xt_recent (revision 1, with --mask). kube-proxy's
// sessionAffinity ClientIP is built on it; so are port-knocking and
// brute-force limits on hardened hosts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rules/module.h"

namespace nfb {

/// One named list (the kernel's recent_table), kept as xt_recent keeps it
/// on Linux 6.x with the default module parameters (ip_list_tot 100,
/// ip_pkt_list_tot 0):
///  - at most kMaxEntries addresses; adding one to a full list first drops
///    the least recently set/updated entry (the head of the LRU list);
///  - each entry holds its TTL and a ring of `ring` jiffies stamps
///    (ring = a power of two: 32, or the next power of two of the largest
///    --hitcount of the rules naming the list) with the kernel's u16 index
///    and count;
///  - addresses are stored masked with the list's mask, which is the mask of
///    the first rule that named the list (load order);
///  - an address has at most one entry (a lookup by TTL can miss an entry
///    of another TTL, but only --set creates entries and it looks up
///    without TTL).
/// Storage is allocated when the rules are compiled (kMaxEntries * ring
/// stamps); the packet path never allocates.
class RecentList {
 public:
  static constexpr uint32_t kMaxEntries = 100;  // ip_list_tot
  static constexpr uint32_t kNone = 0xffffffffU;

  RecentList(uint32_t mask, uint32_t ring);
  /// A later rule needs a longer ring (the kernel flushes the list and
  /// widens it; at load the list is empty).
  void widen(uint32_t ring);
  /// Empty, as right after loading.
  void clear() noexcept;
  uint32_t mask() const noexcept { return mask_; }
  uint32_t ring() const noexcept { return ring_; }
  uint32_t size() const noexcept { return used_; }

  /// The slot of `addr` (already masked) whose TTL equals `ttl`, or any TTL
  /// when `ttl` or the entry's is 0; kNone when absent.
  uint32_t find(uint32_t addr, uint8_t ttl) const noexcept;
  /// A new entry stamped `now`, dropping the LRU entry when full.
  void insert(uint32_t addr, uint8_t ttl, uint64_t now) noexcept;
  void remove(uint32_t slot) noexcept;
  /// Adds a stamp `now` and moves the entry to the LRU tail.
  void update(uint32_t slot, uint64_t now, uint8_t ttl) noexcept;
  /// True when at least `hit_count` (at least 1 when 0) stamps of the entry
  /// are not older than `since` (every stamp when `windowed` is false).
  bool hits(uint32_t slot, bool windowed, int64_t since, uint32_t hit_count) const noexcept;
  /// --reap: drops the LRU entry when its last stamp is older than
  /// `since`, unless it is `working` and about to be updated.
  void reap(int64_t since, uint32_t working, bool updating) noexcept;

  // Read-only views (tests, reports).
  uint32_t addr(uint32_t slot) const noexcept { return addr_[slot]; }
  uint8_t ttl(uint32_t slot) const noexcept { return ttl_[slot]; }
  uint16_t stamps(uint32_t slot) const noexcept { return nstamps_[slot]; }
  /// The live slots, least recently touched first.
  std::vector<uint32_t> lru_order() const;

 private:
  uint32_t lru_head() const noexcept;

  uint32_t mask_;
  uint32_t ring_;
  uint32_t used_ = 0;
  uint64_t clock_ = 0;              // touch counter: LRU order
  std::vector<uint32_t> addr_;      // per slot
  std::vector<uint64_t> touched_;   // per slot, 0: free
  std::vector<uint8_t> ttl_;
  std::vector<uint16_t> index_;     // next stamp position (the kernel's u16 index)
  std::vector<uint16_t> nstamps_;   // stamps written
  std::vector<int64_t> stamps_;     // slot * ring_ + i: jiffies
};

/// Every list of one network namespace, by name: shared by all tables (a
/// rule in nat and one in filter naming the same list see one list).
class RecentLists {
 public:
  /// The list `name`, created with `mask` and `ring` when new, widened to
  /// `ring` otherwise. The pointer stays valid as long as this object.
  RecentList* get(const std::string& name, uint32_t mask, uint32_t ring);
  const RecentList* find(const std::string& name) const noexcept;
  void clear() noexcept;

 private:
  std::map<std::string, std::unique_ptr<RecentList>, std::less<>> lists_;
};

/// -m recent.
///
/// Kernel (recent_mt): the address is the packet's source (--rsource, the
/// default) or destination (--rdest) as it is at this hook, masked with the
/// list's mask. The TTL is the packet's, plus one when the packet has an
/// output interface and no local socket (forwarded: the TTL before
/// forwarding). Then:
///  - --set: creates the entry (or adds a stamp) and matches;
///  - --remove: removes an existing entry and matches; no entry: no match;
///  - --rcheck/--update: matches when the entry exists and at least
///    --hitcount (default 1) of its stamps are within --seconds (default:
///    any age); with --rttl only an entry of the same TTL counts. --reap
///    then drops the list's least recently touched entry if its last stamp
///    is older than --seconds. --update adds a stamp when the result (after
///    `!`) is a match.
///  - `!` inverts the result; a missing entry gives false before inversion.
/// Jiffies are packet time at MatchOptions::hz (as -m limit).
struct RecentMatch {
  enum class Op : uint8_t { Set, Check, Update, Remove };
  Op op = Op::Set;
  bool invert = false;
  bool reap = false;
  bool rttl = false;
  bool dest = false;  // --rdest
  uint32_t seconds = 0;
  uint32_t hit_count = 0;
  uint32_t mask = 0xffffffffU;
  std::string name = "DEFAULT";
  friend bool operator==(const RecentMatch&, const RecentMatch&) = default;

  static constexpr uint32_t kMaxHitCount = 65535;  // XT_RECENT_MAX_NSTAMPS - 1 (Linux 6.x)
  static constexpr size_t kMaxName = 199;          // XT_RECENT_NAME_LEN - 1

  static constexpr const char* kName = "recent";
  enum : uint8_t { kSet, kCheck, kUpdate, kRemove, kSeconds, kReap, kHitcount, kRttl, kListName, kRsource, kRdest,
                   kMask };
  static constexpr OptDef kOptions[] = {
      {"set", kSet, 0, true},          {"rcheck", kCheck, 0, true},    {"update", kUpdate, 0, true},
      {"remove", kRemove, 0, true},    {"seconds", kSeconds, 1, false}, {"reap", kReap, 0, false},
      {"hitcount", kHitcount, 1, false}, {"rttl", kRttl, 0, false},   {"name", kListName, 1, false},
      {"rsource", kRsource, 0, false}, {"rdest", kRdest, 0, false},   {"mask", kMask, 1, false},
  };
  void parse(const ModuleOption& o);
  void check(const ModuleCheck& c) const;
  void save(SaveLine& l) const;
  void list(ListText& t) const;

  uint32_t vary() const noexcept { return kVaryRecent; }
  /// Stamps a list of this rule needs (the kernel's nstamps_max_mask + 1).
  uint32_t ring() const noexcept;

  struct Compiled {
    Op op = Op::Set;
    bool invert = false;
    bool reap = false;
    bool rttl = false;
    bool dest = false;
    uint32_t hit_count = 0;
    int64_t window = 0;  // seconds * HZ; 0: no --seconds
    uint32_t hz = 250;
    RecentList* list = nullptr;

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      const PacketKey& k = *ctx.key;
      const uint32_t addr = (dest ? k.dst_ip : k.src_ip) & list->mask();
      auto ttl = k.ttl;
      // The TTL as it was before forwarding: a packet with an output
      // interface that no local socket sent.
      if (ctx.out_iface != kNoIface && ctx.hook != Hook::Output) ttl = static_cast<uint8_t>(ttl + 1);
      const auto now = static_cast<int64_t>(jiffies_of(ctx.now_ns, hz));
      bool ret = invert;
      const uint32_t slot = list->find(addr, rttl ? ttl : uint8_t{0});
      if (slot == RecentList::kNone) {
        if (op != Op::Set) return match_result(ret);
        list->insert(addr, ttl, static_cast<uint64_t>(now));
        return match_result(!ret);
      }
      switch (op) {
        case Op::Set:
          ret = !ret;
          list->update(slot, static_cast<uint64_t>(now), ttl);
          return match_result(ret);
        case Op::Remove:
          list->remove(slot);
          return match_result(!ret);
        case Op::Check:
        case Op::Update: {
          const int64_t since = now - window;
          if (list->hits(slot, window != 0, since, hit_count)) ret = !ret;
          const bool updating = op == Op::Update && ret;
          if (reap) list->reap(since, slot, updating);
          if (updating) list->update(slot, static_cast<uint64_t>(now), ttl);
          return match_result(ret);
        }
      }
      return match_result(ret);
    }
  };
  template <class C>
  void compile(C& c) const {
    Compiled m;
    m.op = op;
    m.invert = invert;
    m.reap = reap;
    m.rttl = rttl;
    m.dest = dest;
    m.hit_count = hit_count;
    m.window = static_cast<int64_t>(seconds) * c.hz();
    m.hz = c.hz();
    m.list = c.state().recent_list(name, mask, ring());
    c.emit(m);
  }
};

}  // namespace nfb
