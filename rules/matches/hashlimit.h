// -m hashlimit: a token bucket per address/port group. iptables'
// libxt_hashlimit (revision 3, what iptables 1.8 loads on a 6.x kernel),
// the kernel's xt_hashlimit. Hardened hosts limit SSH and HTTP connection
// rates per source with it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/zeroed_array.h"
#include "rules/module.h"

namespace nfb {

/// The kernel's hashlimit_cfg3: what a rule hands the kernel, after
/// iptables' final check.
struct HashlimitCfg {
  enum Mode : uint32_t {
    kDstIp = 1, kDstPort = 2, kSrcIp = 4, kSrcPort = 8,  // XT_HASHLIMIT_HASH_*
    kInvert = 0x10, kBytes = 0x20, kRateMatch = 0x40,
  };
  uint64_t avg = 0;     // packets: 1e6 * seconds per packet; bytes: the byte cost (0xffffffff / (chunks + 1))
  uint64_t burst = 5;   // packets: bucket depth; bytes: refills (0: none)
  uint32_t mode = 0;
  uint32_t size = 0;    // 0: the kernel's default (8192 on a host with more than 1 GiB)
  uint32_t max = 0;     // 0: 8 * size
  uint32_t gc_interval = 1000;  // ms
  uint32_t expire = 0;  // ms
  uint32_t interval = 0;  // rate-match window, seconds
  uint8_t srcmask = 32;
  uint8_t dstmask = 32;
  friend bool operator==(const HashlimitCfg&, const HashlimitCfg&) = default;
};

/// One named table (the kernel's xt_hashlimit_htable), shared by every rule
/// that names it; the first rule to load it fixes its configuration (later
/// rules keep their own --above, byte and rate-match choices, as the
/// kernel's match reads those from the rule).
///
/// Kernel (xt_hashlimit.c, HZ from MatchOptions::hz, jiffies = packet time):
///  - an entry per key (masked addresses and ports of the table's mode);
///    a new entry starts with a full bucket (bytes: one second's credit and
///    `burst` refills; rate-match: an empty window);
///  - every evaluation refreshes the entry's expiry (now + expire);
///  - expired entries are removed only by the garbage collector, every
///    gc_interval from the table's creation (here: the first packet that
///    reaches it), never at lookup: an entry past its expiry that the
///    collector has not reached yet keeps its partly refilled credit;
///  - a full table (`max` entries) gets no new entry: the packet is dropped
///    (hotdrop).
/// Storage for `max` entries is allocated at compile, on zero pages; the
/// packet path never allocates.
class HashlimitTable {
 public:
  struct Key {
    uint32_t src = 0;
    uint32_t dst = 0;
    uint16_t sport = 0;
    uint16_t dport = 0;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct Entry {
    Key key;
    uint64_t expires = 0;   // jiffies
    uint64_t prev = 0;      // jiffies of the last refill
    uint64_t credit = 0;    // rate-match: current_rate
    uint64_t credit_cap = 0;  // rate-match: burst
    uint64_t cost = 0;      // rate-match: rate
    uint32_t interval = 0;  // rate-match
    bool prev_window = false;
  };

  HashlimitTable(const HashlimitCfg& cfg, uint32_t hz);
  const HashlimitCfg& cfg() const noexcept { return cfg_; }
  uint32_t hz() const noexcept { return hz_; }
  /// Byte mode: one second's credit, a fresh entry's and the cap.
  uint64_t byte_full() const noexcept { return byte_cpj_ * hz_; }
  uint32_t capacity() const noexcept { return max_; }
  uint32_t size() const noexcept { return used_; }
  const Entry& entry(uint32_t i) const noexcept { return entries_[i]; }
  /// Empty, as right after loading.
  void clear() noexcept;

  /// Runs the collections due by `now` (jiffies); the first packet starts
  /// the collector's clock.
  void collect(uint64_t now) noexcept;
  /// The entry of `key` (`fresh` false), or a new one started at `now`
  /// (rateinfo_init: `fresh` true); null when the table is full.
  Entry* find_or_add(const Key& key, uint64_t now, bool& fresh) noexcept;
  /// rateinfo_recalc(): the refill (or the rate-match window) for the
  /// jiffies since the entry's last one.
  void refill(Entry& e, uint64_t now) const noexcept;

 private:
  uint32_t slot_of(const Key& key) const noexcept;  // index slot holding key, or its empty slot
  void init_entry(Entry& e, uint64_t now) const noexcept;
  void remove(uint32_t i) noexcept;

  HashlimitCfg cfg_;
  uint32_t hz_;
  uint64_t cpj_;       // credits per jiffy (packets), for hz_
  uint64_t byte_cpj_;  // credits per jiffy (bytes)
  uint32_t max_;
  uint32_t used_ = 0;
  uint64_t gc_jiffies_;
  uint64_t next_gc_ = 0;
  bool started_ = false;
  ZeroedArray<Entry> entries_;     // [0, used_): live, dense
  ZeroedArray<uint32_t> index_;    // open addressing: entry + 1, 0 empty
  uint32_t index_mask_ = 0;
};

/// Every table of one network namespace, by name (IPv4).
class HashlimitTables {
 public:
  /// The table `name`, created with `cfg` when new.
  HashlimitTable* get(const std::string& name, const HashlimitCfg& cfg, uint32_t hz);
  const HashlimitTable* find(const std::string& name) const noexcept;
  void clear() noexcept;

 private:
  std::map<std::string, std::unique_ptr<HashlimitTable>, std::less<>> tables_;
};

/// The kernel's token arithmetic (xt_hashlimit revision 2 and 3) for `hz`:
/// credits per jiffy, the largest power of two <= 2^64-1 / (hz * 86400).
uint64_t hashlimit_credits_per_jiffy(uint32_t hz) noexcept;
/// user2credits: a time in 1e-6 s to credits (u64 wrap-around kept).
uint64_t hashlimit_user_to_credits(uint64_t user, uint32_t hz) noexcept;
/// Byte mode: credits per jiffy, the largest power of two <= 2^32-1 / hz.
uint64_t hashlimit_byte_credits_per_jiffy(uint32_t hz) noexcept;
/// user2credits_byte: the cost of one 16-byte chunk.
uint64_t hashlimit_byte_cost(uint64_t avg, uint32_t hz) noexcept;

/// -m hashlimit.
///
/// Kernel (hashlimit_mt): the key is built from the packet as it is at this
/// hook with the table's mode and masks (ports of TCP, UDP, UDP-Lite, SCTP,
/// DCCP and ESP, AH's SPI half; other protocols hash with ports 0; a port
/// mode on a packet too short to hold them drops it). Then the entry is
/// found or created (table full: drop), its expiry refreshed and its
/// bucket refilled by the jiffies elapsed. Packets: a packet costs `cost`
/// credits. Bytes: ((IP length >> 4) + 1) chunks, and an empty bucket takes
/// one of its refills. Under the limit (and the credit taken) the rule
/// matches for --upto and not for --above; over it, the reverse.
/// --hashlimit-rate-match counts packets (or bytes) per window of
/// `interval` seconds instead: under the limit while the window's count is
/// at most rate + burst and the previous window's average was not above
/// the rate.
struct HashlimitMatch {
  HashlimitCfg cfg;
  std::string name;
  // Parse state for the final check (iptables' udata and option flags).
  uint32_t unit = 1;          // seconds of the rate's unit (1, 60, 3600, 86400)
  uint64_t byte_burst = 0;    // --hashlimit-burst in byte mode, bytes
  bool burst_given = false;
  bool expire_given = false;
  bool interval_given = false;
  friend bool operator==(const HashlimitMatch&, const HashlimitMatch&) = default;

  static constexpr uint32_t kMaxTable = 1048576;  // HASHLIMIT_MAX_SIZE
  static constexpr size_t kMaxName = 254;         // XT_HASHLIMIT_NAME_LEN - 1

  static constexpr const char* kName = "hashlimit";
  enum : uint8_t { kUpto, kAbove, kBurst, kMode, kSrcmask, kDstmask, kName_, kSize, kMax, kGc, kExpire, kRateMatch,
                   kInterval };
  static constexpr OptDef kOptions[] = {
      {"hashlimit", kUpto, 1, true},
      {"hashlimit-upto", kUpto, 1, true},
      {"hashlimit-above", kAbove, 1, true},
      {"hashlimit-burst", kBurst, 1, false},
      {"hashlimit-mode", kMode, 1, false},
      {"hashlimit-srcmask", kSrcmask, 1, false},
      {"hashlimit-dstmask", kDstmask, 1, false},
      {"hashlimit-name", kName_, 1, false},
      {"hashlimit-htable-size", kSize, 1, false},
      {"hashlimit-htable-max", kMax, 1, false},
      {"hashlimit-htable-gcinterval", kGc, 1, false},
      {"hashlimit-htable-expire", kExpire, 1, false},
      {"hashlimit-rate-match", kRateMatch, 0, false},
      {"hashlimit-rate-interval", kInterval, 1, false},
  };
  void parse(const ModuleOption& o);
  void check(const ModuleCheck& c) const;
  /// iptables' final check: the defaults that depend on other options
  /// (expire, byte burst, rate-match's rate and interval).
  void finalize(const ModuleCheck& c);
  void save(SaveLine& l) const;
  void list(ListText& t) const;

  uint32_t vary() const noexcept { return kVaryHashlimit; }

  struct Compiled {
    HashlimitTable* table = nullptr;
    uint32_t mode = 0;  // the rule's: invert, bytes, rate-match
    uint32_t hz = 250;
    uint64_t expire_jiffies = 0;  // the table's expire

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State&) const noexcept {
      HashlimitTable::Key key;
      if (!make_key(ctx, key)) return MatchResult::Hotdrop;
      const uint64_t now = jiffies_of(ctx.now_ns, hz);
      table->collect(now);
      bool fresh = false;
      HashlimitTable::Entry* e = table->find_or_add(key, now, fresh);
      if (e == nullptr) return MatchResult::Hotdrop;
      e->expires = now + expire_jiffies;
      if (!fresh) table->refill(*e, now);
      return match_result(step(*e, ctx.key->l3_len) != ((mode & HashlimitCfg::kInvert) != 0));
    }

    template <class Ctx>
    bool make_key(const Ctx& ctx, HashlimitTable::Key& key) const noexcept {
      const HashlimitCfg& t = table->cfg();
      const PacketKey& k = *ctx.key;
      if ((t.mode & HashlimitCfg::kDstIp) != 0) key.dst = k.dst_ip & prefix_mask(t.dstmask);
      if ((t.mode & HashlimitCfg::kSrcIp) != 0) key.src = k.src_ip & prefix_mask(t.srcmask);
      if ((t.mode & (HashlimitCfg::kSrcPort | HashlimitCfg::kDstPort)) == 0) return true;
      uint32_t offset = 0;
      switch (k.proto) {
        case kProtoTcp: case kProtoUdp: case kProtoSctp: case kProtoUdplite: case kProtoDccp: case kProtoEsp:
          break;
        case kProtoAh: offset = 4; break;
        default: return true;  // no ports: both 0
      }
      uint16_t sport = 0, dport = 0;
      if (offset == 0 && k.has(key_flag::kPorts)) {
        sport = k.src_port;
        dport = k.dst_port;
      } else {
        const uint8_t* h = l4_bytes(ctx, offset + 4);
        if (h == nullptr) return false;
        sport = load_be16(h + offset);
        dport = load_be16(h + offset + 2);
      }
      if ((t.mode & HashlimitCfg::kSrcPort) != 0) key.sport = sport;
      if ((t.mode & HashlimitCfg::kDstPort) != 0) key.dport = dport;
      return true;
    }
    /// Takes the packet's cost: true when under the limit.
    bool step(HashlimitTable::Entry& e, uint32_t len) const noexcept;
  };
  template <class C>
  void compile(C& c) const {
    // The kernel's load checks that depend on HZ (hashlimit_mt_check_common).
    const HashlimitCfg& f = cfg;
    if ((f.mode & HashlimitCfg::kRateMatch) != 0) {
      if (f.avg == 0 || f.avg > UINT32_MAX || f.interval == 0) c.fail("hashlimit: rate-match rate out of range");
    } else if ((f.mode & HashlimitCfg::kBytes) != 0) {
      if (hashlimit_byte_cost(f.avg, c.hz()) == 0) c.fail("hashlimit: byte rate too fast for the kernel");
    } else if (f.burst == 0 ||
               hashlimit_user_to_credits(f.avg * f.burst, c.hz()) < hashlimit_user_to_credits(f.avg, c.hz())) {
      c.fail("hashlimit: rate too slow for this burst (the kernel's 64-bit credit would overflow: "
             "\"Numerical result out of range\")");
    }
    Compiled m;
    m.table = c.state().hashlimit_table(name, cfg, c.hz());
    m.mode = cfg.mode;
    m.hz = c.hz();
    const uint64_t ms = m.table->cfg().expire;
    m.expire_jiffies = (ms * c.hz() + 999) / 1000;  // msecs_to_jiffies
    c.emit(m);
  }
};

}  // namespace nfb
