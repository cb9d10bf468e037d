// -m connlimit: the number of connections per address group. iptables'
// libxt_connlimit (revision 1), the kernel's xt_connlimit and
// nf_conncount. Hardened hosts cap concurrent SSH or HTTP connections per
// source with it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/zeroed_array.h"
#include "rules/module.h"

namespace nfb {

/// What -m connlimit asks of the conntrack table (the netfilter layer's
/// table answers; MatchContext::conns).
class ConnLiveness {
 public:
  virtual ~ConnLiveness() = default;
  /// True while conntrack slot `handle` holds connection `id` (not expired
  /// at `now_ns`) and it is not a TCP connection in TIME_WAIT or CLOSE: the
  /// connections nf_conncount counts.
  virtual bool counts(uint32_t handle, uint64_t id, uint64_t now_ns) const noexcept = 0;
};

/// The connections one rule has counted, per masked address (nf_conncount's
/// tree of lists), and the count of one packet.
///
/// Kernel (nf_conncount as Linux 6.18 stable has it, with the fixes of
/// 2025-2026; checked against the kernel in scenario connlimit_limits):
///  - each rule keeps its own lists; a list holds connections (their
///    original tuple: here the conntrack slot and id), each at most once,
///    and one connection can be in two lists of a rule (its original
///    direction's source and its reply's);
///  - a packet of a confirmed connection that is ASSURED, or in its
///    original direction once ESTABLISHED, is not added: its group's list
///    is collected (connections gone, or TCP in TIME_WAIT/CLOSE, leave)
///    and its length is the count; 0 (even its own connection closed)
///    makes the kernel drop the packet;
///  - any other packet with a connection (the first ones, replies before
///    the connection is assured, RELATED) collects the list and adds its
///    connection unless it is there; a group without a list always gets
///    one holding the packet's connection;
///  - a packet without a conntrack entry (untracked, invalid) counts itself
///    once without being kept.
/// Not modelled: the kernel collects a list at most once a jiffy while
/// adding, so within one jiffy a closed connection can still count.
/// Storage: two nodes per conntrack slot (one per direction) and a group
/// table of twice that, on zero pages; the packet path never allocates.
class ConnlimitTable {
 public:
  explicit ConnlimitTable(uint32_t conntrack_max);
  void clear() noexcept;
  uint32_t groups() const noexcept { return used_groups_; }

  /// The packet's view, as MatchContext holds it.
  struct PacketConn {
    bool present = false;    // a conntrack entry is attached
    bool confirmed = false;
    bool assured = false;
    bool established_original = false;  // ESTABLISHED, original direction
    bool reply = false;      // the packet goes in the REPLY direction
    uint32_t handle = 0;
    uint64_t id = 0;
  };
  /// The count for group `addr` (already masked) with the packet's
  /// connection; 0 when the kernel drops the packet.
  uint32_t count(uint32_t addr, const PacketConn& p, const ConnLiveness& live, uint64_t now_ns) noexcept;

 private:
  struct Node {
    uint64_t id = 0;      // 0: not in a list
    uint32_t group = 0;   // slot in groups_
    uint32_t prev = 0;    // node + 1; 0 none
    uint32_t next = 0;
  };
  struct Group {
    uint32_t addr = 0;
    uint32_t head = 0;    // node + 1; 0 empty
    uint32_t size = 0;
    uint32_t used = 0;    // 1 when the slot holds a group
  };
  uint32_t find_group(uint32_t addr) const noexcept;  // slot holding addr, or its empty slot
  void unlink(uint32_t node) noexcept;
  void remove_group(uint32_t slot) noexcept;

  ZeroedArray<Node> nodes_;    // conntrack slot * 2 + direction
  ZeroedArray<Group> groups_;  // open addressing by address
  uint32_t group_mask_;
  uint32_t used_groups_ = 0;
};

/// -m connlimit. The group is the packet's source (or, with
/// --connlimit-daddr, destination) address at this hook, masked. Matches
/// when the group's count is above the limit (--connlimit-above), or at
/// most the limit (--connlimit-upto, which is the kernel's inverted form).
struct ConnlimitMatch {
  uint32_t limit = 0;
  bool invert = false;   // XT_CONNLIMIT_INVERT: --connlimit-upto
  bool daddr = false;    // XT_CONNLIMIT_DADDR
  uint32_t mask = 0xffffffffU;
  friend bool operator==(const ConnlimitMatch&, const ConnlimitMatch&) = default;

  static constexpr const char* kName = "connlimit";
  enum : uint8_t { kUpto, kAbove, kMask, kSaddr, kDaddr };
  static constexpr OptDef kOptions[] = {
      {"connlimit-upto", kUpto, 1, true},  {"connlimit-above", kAbove, 1, true}, {"connlimit-mask", kMask, 1, false},
      {"connlimit-saddr", kSaddr, 0, false}, {"connlimit-daddr", kDaddr, 0, false},
  };
  void parse(const ModuleOption& o);
  void check(const ModuleCheck& c) const;
  void save(SaveLine& l) const;
  void list(ListText& t) const;
  /// The prefix length iptables prints (32 for a mask with holes).
  uint32_t prefix() const noexcept;

  uint32_t vary() const noexcept { return kVaryConnlimit; }

  struct Compiled {
    uint32_t limit = 0;
    bool invert = false;
    bool daddr = false;
    uint32_t mask = 0xffffffffU;
    uint32_t slot = 0;

    template <class Ctx, class State>
    MatchResult match(const Ctx& ctx, State& st) const noexcept {
      if (ctx.conns == nullptr) return MatchResult::NoMatch;  // no conntrack: nothing is counted
      const PacketKey& k = *ctx.key;
      const uint32_t addr = (daddr ? k.dst_ip : k.src_ip) & mask;
      ConnlimitTable::PacketConn p;
      // A CT template (raw table) is no connection yet: id 0.
      p.present = ctx.ct.present && ctx.ct.id != 0;
      p.confirmed = ctx.ct.confirmed;
      p.assured = (ctx.ct.status_bits & kCtStatusAssured) != 0;
      p.established_original = (ctx.ct.state_bits & kCtEstablished) != 0 && !ctx.ct.reply_dir;
      p.reply = ctx.ct.reply_dir;
      p.handle = ctx.ct.handle;
      p.id = ctx.ct.id;
      const uint32_t n = st.connlimit_table(slot).count(addr, p, *ctx.conns, ctx.now_ns);
      if (n == 0) return MatchResult::Hotdrop;
      return match_result((n > limit) != invert);
    }
  };
  template <class C>
  void compile(C& c) const {
    Compiled m;
    m.limit = limit;
    m.invert = invert;
    m.daddr = daddr;
    m.mask = mask;
    m.slot = c.state().add_connlimit(c.conntrack_max());
    c.emit(m);
  }
};

}  // namespace nfb
