// A match module or a target: what one file under rules/matches/ or
// rules/targets/ holds, and the helpers those files share.
//
// Like iptables' extensions (one libxt_NAME.c each), a module is one
// header holding, for `-m NAME` (or `-j NAME`):
//   - its struct: the options, parsed (part of the rule model, rule.h);
//   - kName, kOptions (its long options, as iptables' getopt table names
//     them) and parse(): read one option into the struct (ModuleOption);
//   - check(): its required options and protocol needs at the end of the
//     rule (ModuleCheck), as iptables' final check;
//   - finalize() (optional): defaults that depend on other options, filled
//     after check() (hashlimit's expire and rate-match window);
//   - save(): its canonical iptables-legacy-save text (SaveLine);
//   - list(): its `iptables -L -n -v` text (ListText);
// and, for a match, what the netfilter model and the classifiers need:
//   - vary(): its FlowVary bits (what it reads that can change within a flow);
//   - compile(): build-time work into a compiled form (else the struct is
//     its own compiled form);
//   - match(): the kernel's answer for one packet, a template over the
//     match context (netfilter/rule_match.h's MatchContext and MatchState),
//     so that the rule model stays below the netfilter layer while the
//     walk inlines every module's evaluation;
//   - boxes(): its classifier dimensions (box_set.h), or false when it
//     does not fit a box (the rule is then residual: checked by match()).
// Optional members have defaults: hooks() kAllHooks, vary() 0, compile()
// emit the struct as it is, boxes() false (does not fit).
// A target has scope() (tables and hooks; default any), kTerminal and kWalk
// (what the chain walk does with it; walk_op() instead when it depends on
// the options, as CT's --notrack does) instead of the match side.
//
// Adding one: a header under rules/matches/ or rules/targets/ and its line
// in the registry (rules/matches.h or rules/targets.h). The reader, the
// writers, rule matching and the box builder find it there.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "base/load_error.h"
#include "base/text.h"
#include "classifier/box_set.h"
#include "packet/byte_order.h"
#include "packet/packet_key.h"
#include "rules/option_values.h"
#include "rules/values.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Options

/// One long option of a module or target. `id` is the module's own number
/// for it (aliases share one); at most 32 ids per module.
struct OptDef {
  const char* name;
  uint8_t id;
  uint8_t nargs;  // 0, 1 or 2 arguments
  bool invertible;
};

/// One option given to a module or target, as the reader hands it over:
/// resolved to the module, checked for "only once" and for a `!` the
/// option does not take. parse() reads it into the struct.
struct ModuleOption {
  const OptionLine& line;                   // errors and value parsers
  uint8_t id;                               // OptDef::id
  std::string_view name;                    // as written ("--dport", "--dp", "--to=...")
  bool invert;                              // a `!` came before it
  const std::vector<std::string>& args;     // its arguments
  const std::vector<uint32_t>& cols;        // each argument's column
  const std::string& a;                     // args[0], or "" when there is none
  uint32_t acol;                            // its column
  uint32_t col;                             // the option's own column
  uint32_t seen;                            // ids given before to this instance (bit per id)
  const char* module;                       // the module's name, for messages
  uint8_t protocol;                         // the rule's -p so far

  [[noreturn]] void fail(uint32_t c, const std::string& msg) const { line.fail(c, msg); }
  bool given(uint8_t other) const noexcept { return (seen & (1U << other)) != 0; }
  /// Fails when option `other` of the same instance was given before.
  void conflict(uint8_t other, const char* other_name) const {
    if (given(other))
      fail(col, fmt::format("{}: option \"{}\" cannot be used together with \"{}\"", module, name, other_name));
  }
};

/// A module instance at the end of its rule, for check().
struct ModuleCheck {
  const OptionLine& line;
  uint32_t col;            // where the module was loaded (its -m, or -j for a target)
  uint32_t seen;           // option ids given (bit per id)
  uint8_t protocol;        // the rule's -p (0: all)
  bool protocol_invert;
  const char* module;
  /// The rule has a tcp match comparing SYN, not negated (TCPMSS needs one).
  bool tcp_syn_match = false;

  [[noreturn]] void fail(const std::string& msg) const { line.fail(col, msg); }
  bool given(uint8_t id) const noexcept { return (seen & (1U << id)) != 0; }
  /// Fails unless the rule says -p `proto`, not negated.
  void need_protocol(uint8_t proto, const char* pname) const {
    if (protocol != proto || protocol_invert)
      fail(fmt::format("-m {} needs -p {} (not negated) in the same rule", module, pname));
  }
};

// ---------------------------------------------------------------------------
// Text out

/// One iptables-save rule line under construction: words joined by spaces.
class SaveLine {
 public:
  explicit SaveLine(const SourceLocation& where) : where_(where) {}
  SaveLine& add(std::string_view word) {
    if (!out_.empty()) out_ += ' ';
    out_ += word;
    return *this;
  }
  /// "!" when `invert`.
  SaveLine& inv(bool invert) {
    if (invert) add("!");
    return *this;
  }
  std::string& str() { return out_; }
  /// For what iptables cannot express: LoadError at the rule.
  [[noreturn]] void fail(const std::string& msg) const { throw LoadError(where_, msg); }

 private:
  const SourceLocation& where_;
  std::string out_;
};

/// The `iptables -L` text of one rule's matches and target, each part led
/// by a space.
class ListText {
 public:
  ListText(std::string& out, const SourceLocation& where) : out_(out), where_(where) {}
  template <typename... Args>
  void put(fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(std::back_inserter(out_), format, std::forward<Args>(args)...);
  }
  void add(std::string_view s) { out_ += s; }
  [[noreturn]] void fail(const std::string& msg) const { throw LoadError(where_, msg); }

 private:
  std::string& out_;
  const SourceLocation& where_;
};

/// An argument as iptables-save quotes it: bare when it is a non-empty run
/// of [A-Za-z0-9_-], else double-quoted with `"`, `\` and `'` escaped.
std::string save_string(std::string_view s);
/// "lo" or "lo<sep>hi".
std::string format_range(uint32_t lo, uint32_t hi, char sep);
/// "0x1f".
std::string format_hex(uint32_t v);
/// A value and a mask ("0x1" or "0x1/0xff"), the mask left out when it is all ones.
std::string format_mark_mask(uint32_t value, uint32_t mask);
/// Conntrack addresses: the address as given, `/N` for a contiguous mask
/// other than /32, nothing for a mask with holes (as the kernel prints).
std::string format_ct_addr(const Ipv4Mask& a);

// ---------------------------------------------------------------------------
// Matching

/// "No interface": a hook without an input or output interface, a route
/// without a device (host interface ids are netfilter/host.h's).
inline constexpr uint16_t kNoIface = 0xffff;

/// Outcome of matching one rule or one module.
enum class MatchResult : uint8_t {
  NoMatch,
  Matched,
  Hotdrop,  // a match asked for the packet to be dropped now (the rule does not count it)
};
constexpr MatchResult match_result(bool ok) noexcept { return ok ? MatchResult::Matched : MatchResult::NoMatch; }

/// FlowVary bits: which packet facts a rule looks at that can differ between
/// packets of one flow (same addresses, ports, protocol and interfaces after
/// NAT). A walk ORs in the bits of every rule whose flow-invariant core (-s,
/// -d, -p, -i, -o) matched the packet, i.e. every rule whose outcome could
/// have been decided by something else. Zero means the walk's path (rules
/// hit, verdict) is a function of the flow and can be cached for it.
///
/// Not flagged because it concerns nearly every rule: tcp/udp/icmp/
/// multiport/ports matches, and hotdrops, depend on whether the packet is a
/// non-first fragment and on its L4 header being complete. A fast path must
/// therefore never reuse a path for a fragment or for a key whose L4 header
/// did not parse.
enum FlowVaryBit : uint32_t {
  kVaryTcpFlags = 1U << 0,    // tcp --tcp-flags / --syn
  kVaryTcpOption = 1U << 1,   // tcp --tcp-option
  kVaryIcmp = 1U << 2,        // icmp --icmp-type (requests and replies share a flow)
  kVaryLength = 1U << 3,      // -m length
  kVaryPayload = 1U << 4,     // -m string, sctp --chunk-types
  kVaryFragment = 1U << 5,    // -f / ! -f
  kVaryMark = 1U << 6,        // -m mark (the skb mark, set by MARK/CONNMARK)
  kVaryConnmark = 1U << 7,    // -m connmark (needs an entry, reads its mark)
  kVaryCtState = 1U << 8,     // -m state, and any -m conntrack (an entry may be absent)
  kVaryCtStatus = 1U << 9,    // --ctstatus
  kVaryCtExpire = 1U << 10,   // --ctexpire (changes with time)
  kVaryCtDir = 1U << 11,      // --ctdir
  kVaryPkttype = 1U << 12,    // -m pkttype
  kVaryMac = 1U << 13,        // -m mac
  kVaryLimit = 1U << 14,      // -m limit: stateful, depends on time
  kVaryStatistic = 1U << 15,  // -m statistic: stateful (nth counter, random draw)
  kVaryRecent = 1U << 16,     // -m recent: stateful (named address lists), depends on time
  kVaryIpHeader = 1U << 17,   // -m ttl, tos, dscp, ecn --ecn-ip-ect (traceroute probes, ECN marks)
  kVaryHashlimit = 1U << 18,  // -m hashlimit: stateful (per-group buckets), depends on time
  kVaryConnlimit = 1U << 19,  // -m connlimit: stateful (per-rule connection lists)
  kVaryIpset = 1U << 20,      // -m set: stateful (element counters), depends on time (timeouts)
  kVaryPhysdev = 1U << 21,    // -m physdev (the ports of a flow's packets may differ)
};
/// Matches with side effects: a path holding them must be re-evaluated for
/// every packet even when cached, or the kernel's counts are lost.
inline constexpr uint32_t kVaryStateful =
    kVaryLimit | kVaryStatistic | kVaryRecent | kVaryHashlimit | kVaryConnlimit | kVaryIpset;
inline constexpr uint32_t kVaryAll = (1U << 22) - 1U;

/// The first `n` bytes of the L4 header from the frame, or nullptr when the
/// IP payload (bounded by the IP total length, as the kernel's skb is) holds
/// fewer: the kernel's skb_header_pointer() failing. Ctx: a MatchContext.
template <class Ctx>
const uint8_t* l4_bytes(const Ctx& ctx, uint32_t n) noexcept {
  if (ctx.frame == nullptr) return nullptr;
  const PacketKey& k = *ctx.key;
  const uint32_t end = std::min<uint32_t>(uint32_t{k.l3_off} + k.l3_len, ctx.frame_len);
  if (uint32_t{k.l4_off} + n > end) return nullptr;
  return ctx.frame + k.l4_off;
}

/// Ports of a TCP/UDP (or any 4-byte-port) header: the key's (post-NAT)
/// when it holds them, else the frame's. False when neither has them.
template <class Ctx>
bool l4_ports(const Ctx& ctx, uint32_t need, uint16_t& sport, uint16_t& dport) noexcept {
  const PacketKey& k = *ctx.key;
  if (k.has(key_flag::kPorts)) {
    // The key holds ports only once the whole header parsed, which is at
    // least `need` bytes for every caller.
    sport = k.src_port;
    dport = k.dst_port;
    return true;
  }
  const uint8_t* h = l4_bytes(ctx, need);
  if (h == nullptr) return false;
  sport = load_be16(h);
  dport = load_be16(h + 2);
  return true;
}

/// Jiffies at packet time `now_ns` for a kernel of `hz`: floor(now_ns * hz
/// / 1e9) without overflow (limit, recent).
inline uint64_t jiffies_of(uint64_t now_ns, uint32_t hz) noexcept {
  constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;
  return (now_ns / kNsPerSecond) * hz + (now_ns % kNsPerSecond) * hz / kNsPerSecond;
}

/// The packet's TOS byte as the walk has it so far (a TOS/DSCP target may
/// have rewritten it: ctx.tos >= 0). Ctx: a MatchContext.
template <class Ctx>
uint8_t packet_tos(const Ctx& ctx) noexcept {
  return ctx.tos >= 0 ? static_cast<uint8_t>(ctx.tos) : ctx.key->tos;
}

/// Fragment offset in 8-byte units.
inline uint32_t frag_units(const PacketKey& k) noexcept { return k.frag & ip_frag::kOffsetMask; }

// ---------------------------------------------------------------------------
// Boxes

/// What a module's boxes() may look at besides itself: the rule's core
/// protocol, and the chain's mark masks (chain_boxes.h: the one mask per
/// chain that each mark dimension holds; 0 none).
struct BoxRule {
  uint8_t proto = 0;
  bool proto_invert = false;
  uint32_t mark_mask = 0;
  uint32_t connmark_mask = 0;
  bool tcp() const noexcept { return proto == kProtoTcp && !proto_invert; }
  bool udp() const noexcept { return proto == kProtoUdp && !proto_invert; }
};

/// kDimCtState values: the packet's conntrack state as one number, the two
/// without an entry first, so "has an entry" is one range.
inline constexpr uint32_t kCtValueInvalid = 0;
inline constexpr uint32_t kCtValueUntracked = 1;
inline constexpr uint32_t kCtValueNew = 2;
inline constexpr uint32_t kCtValueRelated = 3;
inline constexpr uint32_t kCtValueEstablished = 4;
inline constexpr uint32_t kCtValueNone = 5;  // an entry with none of NEW/RELATED/ESTABLISHED
/// No single value: the walk must take the linear step.
inline constexpr uint32_t kCtValueAmbiguous = 0xffffffffU;
/// Sets of kCtValue* (bit v = value v): all, without an entry, with one.
inline constexpr uint32_t kCtValuesAll = (1U << (kCtValueNone + 1)) - 1U;
inline constexpr uint32_t kCtValuesNoEntry = (1U << kCtValueInvalid) | (1U << kCtValueUntracked);
inline constexpr uint32_t kCtValuesEntry = kCtValuesAll & ~kCtValuesNoEntry;

/// The kCtValue* set (bit v = value v) a CtStateBit set accepts.
constexpr uint32_t ct_values_of(uint8_t states) noexcept {
  uint32_t v = 0;
  if ((states & kCtInvalid) != 0) v |= 1U << kCtValueInvalid;
  if ((states & kCtNew) != 0) v |= 1U << kCtValueNew;
  if ((states & kCtRelated) != 0) v |= 1U << kCtValueRelated;
  if ((states & kCtEstablished) != 0) v |= 1U << kCtValueEstablished;
  if ((states & kCtUntracked) != 0) v |= 1U << kCtValueUntracked;
  return v;
}

/// Restricts every alternative's ct state dimension to a kCtValue* set.
inline void restrict_ct_values(Alts& alts, uint32_t values) {
  restrict_all(alts, kDimCtState,
               runs_of(kCtValueNone + 1, [values](uint32_t v) { return ((values >> v) & 1U) != 0; }));
}

// ---------------------------------------------------------------------------
// Targets

/// Tables and hooks where a target may be used (the kernel's checks).
struct TargetScope {
  std::optional<TableId> table;  // nullopt: any table
  HookMask hooks = kAllHooks;
};

/// What the chain walk does when a rule with the target matches.
enum class WalkOp : uint8_t {
  None,      // count only (no target)
  Accept, Drop, Reject, Return,
  Jump, Goto,
  Nat,       // the verdict is ACCEPT; the pipeline binds the NAT (rules/targets/nat.h)
  Log,       // emit a log event, go on
  Mark,      // set the skb mark, go on
  Connmark,  // set or copy the conntrack mark, go on
  Notrack,   // leave the packet untracked, go on
  Ct,        // attach a conntrack template, go on
  Trace,     // set nf_trace, go on
  Tos,       // rewrite the TOS byte (TOS, DSCP), go on
  Tcpmss,    // lower the SYN's MSS option, go on (or drop a malformed header)
};

/// The hooks on the input side (with an input interface) and output side.
inline constexpr HookMask kInputSideHooks =
    hook_bit(Hook::Prerouting) | hook_bit(Hook::Input) | hook_bit(Hook::Forward);
inline constexpr HookMask kOutputSideHooks =
    hook_bit(Hook::Postrouting) | hook_bit(Hook::Output) | hook_bit(Hook::Forward);

// ---------------------------------------------------------------------------
// Registries

template <class... Ts>
struct TypeList {};

template <class List>
struct VariantOf;
template <class... Ts>
struct VariantOf<TypeList<Ts...>> {
  using type = std::variant<Ts...>;
};

}  // namespace nfb
