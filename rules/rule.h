// The rule model: what an IPv4 iptables ruleset says, fully parsed.
//
// A Ruleset holds tables (raw, mangle, nat, filter, security) in the order they were
// given; a Table holds its chains (the table's built-in chains first, in hook
// order, then user chains in declaration order); a Chain holds its rules in
// order. A Rule is the core match (addresses, interfaces, protocol,
// fragment), then module matches in the order they were loaded (one struct
// per module in the `Match` variant), then one `Target`. Jump/goto targets
// carry the index of the chain they enter, resolved at load time, so a walk
// never looks a name up.
//
// Every value is already parsed into the form matching needs: numbers in
// host byte order, ranges as inclusive [lo, hi], addresses as (addr, mask),
// name lists as bit sets. Each option keeps its own invert flag. Nothing here
// is re-parsed per packet, and nothing here matches packets: the netfilter
// pipeline and the classifiers read these structs.
//
// The readers (iptables_save.h, classbench.h) build this model; the writer
// prints it back in the kernel's canonical iptables-save form. Helpers below
// give names, hooks and validity rules that several stages need.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/load_error.h"
#include "packet/ip_protocol.h"
#include "packet/tcp_flags.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Tables, hooks, policies

/// The IPv4 tables. Security (SELinux marking, after filter) is read and
/// written like the others; the model has no security-specific targets.
enum class TableId : uint8_t { Raw, Mangle, Nat, Filter, Security };
inline constexpr size_t kTableCount = 5;

/// "raw", "mangle", "nat", "filter", "security".
const char* table_name(TableId t) noexcept;
std::optional<TableId> parse_table_name(std::string_view name) noexcept;

/// Netfilter IPv4 hooks, in the kernel's numbering order (which is also the
/// order iptables-save lists built-in chains in).
enum class Hook : uint8_t { Prerouting, Input, Forward, Output, Postrouting };
inline constexpr size_t kHookCount = 5;

/// A set of hooks: bit (1 << Hook).
using HookMask = uint8_t;
constexpr HookMask hook_bit(Hook h) noexcept { return static_cast<HookMask>(1U << static_cast<unsigned>(h)); }
inline constexpr HookMask kAllHooks = 0x1f;

/// "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING".
const char* hook_name(Hook h) noexcept;
std::optional<Hook> parse_hook_name(std::string_view name) noexcept;

/// The built-in chains of a table: raw PREROUTING OUTPUT; mangle all five;
/// nat PREROUTING INPUT OUTPUT POSTROUTING; filter and security INPUT FORWARD
/// OUTPUT.
HookMask table_hooks(TableId t) noexcept;
inline bool table_has_hook(TableId t, Hook h) noexcept { return (table_hooks(t) & hook_bit(h)) != 0; }

/// "PREROUTING,OUTPUT" style list, for messages.
std::string format_hooks(HookMask hooks);

enum class Policy : uint8_t { Accept, Drop };
const char* policy_name(Policy p) noexcept;  // "ACCEPT", "DROP"

/// `[packets:bytes]`. Bytes count the IP packet (L3) length.
struct Counters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  friend bool operator==(const Counters&, const Counters&) = default;
};

// ---------------------------------------------------------------------------
// Value types shared by several matches

/// IPv4 address and mask, host order. For -s/-d the address is stored already
/// masked (the kernel does the same); conntrack addresses keep the address as
/// given. mask 0 matches everything. Any mask is allowed, contiguous or not.
struct Ipv4Mask {
  uint32_t addr = 0;
  uint32_t mask = 0;
  friend bool operator==(const Ipv4Mask&, const Ipv4Mask&) = default;
};

/// Prefix length of a contiguous mask, or -1 when the mask has holes.
int mask_prefix_length(uint32_t mask) noexcept;
/// The mask of a prefix length 0..32.
constexpr uint32_t prefix_mask(unsigned len) noexcept {
  return len == 0 ? 0U : (len >= 32 ? 0xffffffffU : ~((1U << (32 - len)) - 1U));
}
/// "a.b.c.d".
std::string format_ipv4(uint32_t addr);
/// An IPv4 address as inet_pton reads it: exactly 4 decimal parts 0..255
/// without leading zeros; nullopt otherwise.
std::optional<uint32_t> parse_ipv4(std::string_view s) noexcept;

/// Inclusive port range [lo, hi]; {0, 65535} is "any".
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  constexpr bool is_any() const noexcept { return lo == 0 && hi == 65535; }
  constexpr bool contains(uint16_t p) const noexcept { return lo <= p && p <= hi; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

/// An interface name as -i/-o take it. `wildcard` is a trailing `+`: the name
/// is then a prefix (an empty prefix matches every interface). The name is at
/// most 15 bytes (IFNAMSIZ - 1) and holds no `+` at its end.
struct IfaceMatch {
  std::string name;
  bool wildcard = false;
  bool invert = false;
  /// True when nothing is checked: no name given, or `+` alone.
  bool is_any() const noexcept { return name.empty() && (wildcard || !invert); }
  friend bool operator==(const IfaceMatch&, const IfaceMatch&) = default;
};

// ---------------------------------------------------------------------------
// Name sets with parse/print

/// Conntrack states as bits, for -m conntrack --ctstate and -m state --state.
/// SNAT and DNAT are virtual states (the entry has that NAT manip); only
/// --ctstate accepts them.
enum CtStateBit : uint8_t {
  kCtInvalid = 1U << 0,
  kCtEstablished = 1U << 1,
  kCtRelated = 1U << 2,
  kCtNew = 1U << 3,
  kCtUntracked = 1U << 4,
  kCtSnat = 1U << 5,
  kCtDnat = 1U << 6,
};
/// One state name, upper or lower case ("NEW", "established").
std::optional<uint8_t> parse_ct_state(std::string_view name) noexcept;
/// The kernel's print order: INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT.
std::string format_ct_states(uint8_t states);

/// Conntrack status bits for --ctstatus (NONE is the empty set).
enum CtStatusBit : uint8_t {
  kCtStatusExpected = 1U << 0,
  kCtStatusSeenReply = 1U << 1,
  kCtStatusAssured = 1U << 2,
  kCtStatusConfirmed = 1U << 3,
};
std::optional<uint8_t> parse_ct_status(std::string_view name) noexcept;  // NONE -> 0
std::string format_ct_status(uint8_t status);  // "NONE" when empty

/// Route address types (the kernel's RTN_* numbering) for -m addrtype.
enum class AddrType : uint8_t {
  Unspec = 0, Unicast, Local, Broadcast, Anycast, Multicast,
  Blackhole, Unreachable, Prohibit, Throw, Nat, Xresolve,
};
inline constexpr size_t kAddrTypeCount = 12;
/// Bit of one type in an addrtype set: 1 << type.
constexpr uint16_t addr_type_bit(AddrType t) noexcept { return static_cast<uint16_t>(1U << static_cast<unsigned>(t)); }
const char* addr_type_name(AddrType t) noexcept;  // "LOCAL", ...
std::optional<AddrType> parse_addr_type(std::string_view name) noexcept;  // any case
std::string format_addr_types(uint16_t types);  // "UNICAST,LOCAL"

/// IP protocol names, as iptables prints them (from Debian's /etc/protocols,
/// first name per number). nullptr when the number has no name.
const char* protocol_name(uint8_t proto) noexcept;
/// Name (any case), alias, "all" or number (decimal, 0x hex, 0 octal).
std::optional<uint8_t> parse_protocol(std::string_view text) noexcept;


// ---------------------------------------------------------------------------
// Module matches (`-m NAME ...`). One struct per module.

/// -m tcp (implicit with -p tcp). Needs the rule's protocol to be tcp.
struct TcpMatch {
  PortRange sport, dport;
  bool sport_invert = false;
  bool dport_invert = false;
  /// --tcp-flags MASK COMP: (flags & mask) == cmp. mask 0 checks nothing.
  uint8_t flags_mask = 0;
  uint8_t flags_cmp = 0;
  bool flags_invert = false;
  /// --tcp-option N: the packet carries TCP option kind N (1..255); 0 = unchecked.
  uint8_t option = 0;
  bool option_invert = false;
  friend bool operator==(const TcpMatch&, const TcpMatch&) = default;
};

/// -m udp (implicit with -p udp). Needs the rule's protocol to be udp.
struct UdpMatch {
  PortRange sport, dport;
  bool sport_invert = false;
  bool dport_invert = false;
  friend bool operator==(const UdpMatch&, const UdpMatch&) = default;
};

/// -m icmp --icmp-type. type 255 with codes [0, 255] is "any".
struct IcmpMatch {
  uint8_t type = 0xff;
  uint8_t code_lo = 0;
  uint8_t code_hi = 0xff;
  bool invert = false;
  bool is_any_type() const noexcept { return type == 0xff && code_lo == 0 && code_hi == 0xff; }
  friend bool operator==(const IcmpMatch&, const IcmpMatch&) = default;
};

/// -m multiport --sports/--dports/--ports: up to 15 slots, a range takes two.
struct MultiportMatch {
  enum class Dir : uint8_t { Source, Destination, Either };
  Dir dir = Dir::Destination;
  std::vector<PortRange> ports;
  bool invert = false;
  static constexpr unsigned kMaxSlots = 15;
  friend bool operator==(const MultiportMatch&, const MultiportMatch&) = default;
};

/// -m conntrack. `present` says which options were given, `invert` which of
/// them carry `!`; both use the Opt bits.
struct ConntrackMatch {
  enum Opt : uint16_t {
    kState = 1U << 0, kProto = 1U << 1,
    kOrigSrc = 1U << 2, kOrigDst = 1U << 3, kReplSrc = 1U << 4, kReplDst = 1U << 5,
    kOrigSrcPort = 1U << 6, kOrigDstPort = 1U << 7, kReplSrcPort = 1U << 8, kReplDstPort = 1U << 9,
    kStatus = 1U << 10, kExpire = 1U << 11, kDir = 1U << 12,
  };
  enum class Dir : uint8_t { Original, Reply };
  uint16_t present = 0;
  uint16_t invert = 0;
  uint8_t states = 0;      // CtStateBit set
  uint8_t proto = 0;       // --ctproto (0 = "all" as given)
  Ipv4Mask orig_src, orig_dst, repl_src, repl_dst;  // address kept as given, not masked
  PortRange orig_src_port, orig_dst_port, repl_src_port, repl_dst_port;
  uint8_t status = 0;      // CtStatusBit set
  uint32_t expire_lo = 0;  // remaining lifetime, seconds (lo may exceed hi: never matches)
  uint32_t expire_hi = 0;
  Dir dir = Dir::Original;
  bool has(Opt o) const noexcept { return (present & o) != 0; }
  bool inverted(Opt o) const noexcept { return (invert & o) != 0; }
  friend bool operator==(const ConntrackMatch&, const ConntrackMatch&) = default;
};

/// -m state --state (INVALID, ESTABLISHED, RELATED, NEW, UNTRACKED only).
struct StateMatch {
  uint8_t states = 0;  // CtStateBit set
  bool invert = false;
  friend bool operator==(const StateMatch&, const StateMatch&) = default;
};

/// -m addrtype. Type sets are addr_type_bit() sets; 0 = not checked.
struct AddrtypeMatch {
  uint16_t src_types = 0;
  uint16_t dst_types = 0;
  bool src_invert = false;
  bool dst_invert = false;
  bool limit_iface_in = false;   // look the address up on the input interface only
  bool limit_iface_out = false;  // ... on the output interface only
  friend bool operator==(const AddrtypeMatch&, const AddrtypeMatch&) = default;
};

/// -m comment: always matches. At most 255 bytes (the kernel's limit).
struct CommentMatch {
  std::string text;
  friend bool operator==(const CommentMatch&, const CommentMatch&) = default;
};

/// -m mark: (skb mark & mask) == value.
struct MarkMatch {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  bool invert = false;
  friend bool operator==(const MarkMatch&, const MarkMatch&) = default;
};

/// -m connmark: (conntrack mark & mask) == value.
struct ConnmarkMatch {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  bool invert = false;
  friend bool operator==(const ConnmarkMatch&, const ConnmarkMatch&) = default;
};

/// -m iprange: inclusive address ranges (lo may exceed hi: never matches).
struct IprangeMatch {
  bool has_src = false, has_dst = false;
  bool src_invert = false, dst_invert = false;
  uint32_t src_lo = 0, src_hi = 0;
  uint32_t dst_lo = 0, dst_hi = 0;
  friend bool operator==(const IprangeMatch&, const IprangeMatch&) = default;
};

/// -m string: `pattern` (1..128 raw bytes) searched in packet bytes
/// [from, to] (offsets from the start of the IP header).
struct StringMatch {
  enum class Algo : uint8_t { Bm, Kmp };
  std::string pattern;
  Algo algo = Algo::Bm;
  uint16_t from = 0;
  uint16_t to = 65535;
  bool icase = false;
  bool invert = false;
  static constexpr size_t kMaxPattern = 128;
  friend bool operator==(const StringMatch&, const StringMatch&) = default;
};

/// -m limit: token bucket. `avg` is the mean time between packets in units
/// of 1/10000 s (the kernel's XT_LIMIT_SCALE); `burst` the bucket depth.
struct LimitMatch {
  static constexpr uint32_t kScale = 10000;
  uint32_t avg = kScale * 3600 / 3;  // default 3/hour
  uint32_t burst = 5;
  friend bool operator==(const LimitMatch&, const LimitMatch&) = default;
};

/// -m statistic. Random: matches with probability probability / 2^31 (the
/// kernel's fixed point; 2^31 = always). Nth: a counter per rule, matches
/// when it equals `packet` modulo `every`.
struct StatisticMatch {
  enum class Mode : uint8_t { Random, Nth };
  Mode mode = Mode::Random;
  uint32_t probability = 0;  // random: 0 .. 2^31
  uint32_t every = 1;        // nth: n >= 1
  uint32_t packet = 0;       // nth: 0 .. every-1
  bool invert = false;
  static constexpr uint32_t kProbabilityOne = 0x80000000U;
  friend bool operator==(const StatisticMatch&, const StatisticMatch&) = default;
};

/// -m length: IP total length in [min, max] (min may exceed max: never matches).
struct LengthMatch {
  uint16_t min = 0;
  uint16_t max = 65535;
  bool invert = false;
  friend bool operator==(const LengthMatch&, const LengthMatch&) = default;
};

/// -m pkttype: the link-layer class of the destination address (the
/// kernel's PACKET_* numbering).
struct PkttypeMatch {
  enum class Type : uint8_t { Unicast = 0, Broadcast = 1, Multicast = 2, OtherHost = 3 };
  Type type = Type::Unicast;
  bool invert = false;
  friend bool operator==(const PkttypeMatch&, const PkttypeMatch&) = default;
};

/// -m mac --mac-source: Ethernet source address.
struct MacMatch {
  std::array<uint8_t, 6> addr{};
  bool invert = false;
  friend bool operator==(const MacMatch&, const MacMatch&) = default;
};

/// Protocol-agnostic port ranges, for ClassBench 5-tuples only (match on the
/// L4 ports whatever the protocol, as ClassBench does). iptables has no such
/// match: the iptables-save writer rejects it.
struct PortsMatch {
  PortRange sport, dport;
  friend bool operator==(const PortsMatch&, const PortsMatch&) = default;
};

using Match = std::variant<TcpMatch, UdpMatch, IcmpMatch, MultiportMatch, ConntrackMatch,
                           StateMatch, AddrtypeMatch, CommentMatch, MarkMatch, ConnmarkMatch,
                           IprangeMatch, StringMatch, LimitMatch, StatisticMatch, LengthMatch,
                           PkttypeMatch, MacMatch, PortsMatch>;

/// The module name of a match ("tcp", "conntrack", ...; "ports" for PortsMatch).
const char* match_name(const Match& m) noexcept;

// ---------------------------------------------------------------------------
// Targets (`-j NAME ...`, `-g CHAIN`)

struct AcceptTarget { friend bool operator==(const AcceptTarget&, const AcceptTarget&) = default; };
struct DropTarget { friend bool operator==(const DropTarget&, const DropTarget&) = default; };
struct ReturnTarget { friend bool operator==(const ReturnTarget&, const ReturnTarget&) = default; };

/// REJECT --reject-with (the kernel's ipt_reject_with numbering).
struct RejectTarget {
  enum class With : uint8_t {
    IcmpNetUnreachable, IcmpHostUnreachable, IcmpProtoUnreachable, IcmpPortUnreachable,
    IcmpEchoReply /* unused by IPv4 REJECT */, IcmpNetProhibited, IcmpHostProhibited,
    TcpReset, IcmpAdminProhibited,
  };
  With with = With::IcmpPortUnreachable;
  friend bool operator==(const RejectTarget&, const RejectTarget&) = default;
};
const char* reject_with_name(RejectTarget::With w) noexcept;  // "icmp-port-unreachable"

/// -j CHAIN: push a return point and enter chain `index` of the same table.
struct JumpTarget {
  std::string chain;
  uint32_t index = 0;
  friend bool operator==(const JumpTarget&, const JumpTarget&) = default;
};
/// -g CHAIN: enter chain `index` without a return point.
struct GotoTarget {
  std::string chain;
  uint32_t index = 0;
  friend bool operator==(const GotoTarget&, const GotoTarget&) = default;
};

/// An address/port range for DNAT and SNAT (`IP[-IP][:PORT[-PORT[/BASE]]]`).
struct NatRange {
  bool has_addr = false;
  uint32_t addr_lo = 0, addr_hi = 0;  // host order; lo may exceed hi as the kernel allows
  bool has_ports = false;
  uint16_t port_lo = 0, port_hi = 0;
  bool has_base = false;  // DNAT only: port shift, new port = port - base + port_lo
  uint16_t base = 0;
  bool random = false;
  bool random_fully = false;  // SNAT only
  bool persistent = false;
  friend bool operator==(const NatRange&, const NatRange&) = default;
};
struct DnatTarget { NatRange range; friend bool operator==(const DnatTarget&, const DnatTarget&) = default; };
struct SnatTarget { NatRange range; friend bool operator==(const SnatTarget&, const SnatTarget&) = default; };

struct MasqueradeTarget {
  bool has_ports = false;
  PortRange ports{0, 0};
  bool random = false;
  bool random_fully = false;
  friend bool operator==(const MasqueradeTarget&, const MasqueradeTarget&) = default;
};
struct RedirectTarget {
  bool has_ports = false;
  PortRange ports{0, 0};
  bool random = false;
  friend bool operator==(const RedirectTarget&, const RedirectTarget&) = default;
};

/// LOG. Level is syslog 0..7 (default 4, warning); prefix at most 29 bytes.
struct LogTarget {
  enum Flag : uint8_t {
    kTcpSequence = 0x01, kTcpOptions = 0x02, kIpOptions = 0x04, kUid = 0x08, kMacDecode = 0x20,
  };
  std::string prefix;
  uint8_t level = 4;
  uint8_t flags = 0;
  static constexpr size_t kMaxPrefix = 29;
  friend bool operator==(const LogTarget&, const LogTarget&) = default;
};

/// MARK: mark = (mark & ~mask) ^ value (every MARK option reduces to this,
/// which is what --set-xmark prints).
struct MarkTarget {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  friend bool operator==(const MarkTarget&, const MarkTarget&) = default;
};

/// CONNMARK. SetXmark: ctmark = (ctmark & ~ctmask) ^ value. Save: ctmark =
/// (ctmark & ~ctmask) ^ (mark & nfmask). Restore: mark = (mark & ~nfmask) ^
/// (ctmark & ctmask).
struct ConnmarkTarget {
  enum class Mode : uint8_t { SetXmark, Save, Restore };
  Mode mode = Mode::SetXmark;
  uint32_t value = 0;  // ctmark operand of SetXmark
  uint32_t ctmask = 0xffffffff;
  uint32_t nfmask = 0xffffffff;
  friend bool operator==(const ConnmarkTarget&, const ConnmarkTarget&) = default;
};

/// NOTRACK (raw): the packet stays untracked.
struct NotrackTarget { friend bool operator==(const NotrackTarget&, const NotrackTarget&) = default; };

/// CT (raw): --notrack, --zone/--zone-orig/--zone-reply, --ctevents,
/// --expevents. The zone applies to both directions unless exactly one of
/// zone_orig/zone_reply is set; with zone_from_mark the zone id is taken from
/// the packet mark instead of `zone`.
struct CtTarget {
  bool notrack = false;
  uint16_t zone = 0;
  bool zone_from_mark = false;
  bool zone_orig = false;
  bool zone_reply = false;
  uint16_t ctevents = 0;   // bit i = event i of: new related destroy reply assured
                           // protoinfo helper mark natseqinfo secmark
  uint16_t expevents = 0;  // bit 0 = new
  friend bool operator==(const CtTarget&, const CtTarget&) = default;
};

/// TRACE (raw): log the packet's way through the rules.
struct TraceTarget { friend bool operator==(const TraceTarget&, const TraceTarget&) = default; };

/// A rule without -j/-g: it only counts.
struct NoTarget { friend bool operator==(const NoTarget&, const NoTarget&) = default; };

using Target = std::variant<NoTarget, AcceptTarget, DropTarget, RejectTarget, ReturnTarget,
                            JumpTarget, GotoTarget, DnatTarget, SnatTarget, MasqueradeTarget,
                            RedirectTarget, LogTarget, MarkTarget, ConnmarkTarget, NotrackTarget,
                            CtTarget, TraceTarget>;

/// True when a rule with this target ends the walk of its chain once it
/// matches (ACCEPT, DROP, REJECT, RETURN, goto, DNAT, SNAT, MASQUERADE,
/// REDIRECT). Jump is not terminal (the walk may come back), nor are LOG,
/// MARK, CONNMARK, NOTRACK, CT, TRACE and no target.
bool is_terminal(const Target& t) noexcept;

/// "ACCEPT", "DNAT", the chain name for jump/goto, "" for no target.
std::string target_name(const Target& t);

/// Tables and hooks where a target may be used (the kernel's checks). Jump,
/// goto and the standard verdicts are valid everywhere.
struct TargetScope {
  std::optional<TableId> table;  // nullopt: any table
  HookMask hooks = kAllHooks;
};
TargetScope target_scope(const Target& t) noexcept;

/// Hooks from which a match may be used (mac and addrtype --limit-iface-*
/// are restricted); kAllHooks for the others.
HookMask match_hooks(const Match& m) noexcept;

// ---------------------------------------------------------------------------
// Rules, chains, tables

struct Rule {
  Ipv4Mask src, dst;  // -s/-d: addr already masked; mask 0 = any
  bool src_invert = false;
  bool dst_invert = false;
  IfaceMatch in_iface, out_iface;  // -i/-o
  uint8_t protocol = 0;            // -p: 0 = all
  bool protocol_invert = false;
  bool fragment = false;           // -f: only second and later fragments
  bool fragment_invert = false;    // ! -f: only unfragmented packets and first fragments
  std::vector<Match> matches;      // -m blocks, in order
  Target target;                   // NoTarget when there is no -j/-g
  std::optional<Counters> counters;  // `[pkts:bytes]` or -c, when given
  SourceLocation where;            // the rule's line (column of its -A/-I)
};

struct Chain {
  std::string name;
  std::optional<Hook> hook;  // set for built-in chains
  Policy policy = Policy::Accept;   // built-in chains only
  Counters policy_counters;         // built-in chains only
  std::vector<Rule> rules;
  SourceLocation where;  // its declaration, empty for an undeclared built-in chain
  bool builtin() const noexcept { return hook.has_value(); }
};

struct Table {
  TableId id = TableId::Filter;
  /// Built-in chains first (all of the table's hooks, in hook order), then
  /// user chains in declaration order. Jump/goto indices point in here.
  std::vector<Chain> chains;
  SourceLocation where;  // the `*table` line

  /// Index of the chain with this name, or nullopt. O(chains).
  std::optional<uint32_t> find_chain(std::string_view name) const noexcept;
  /// The built-in chain of a hook; nullptr when the table has no such hook.
  const Chain* builtin_chain(Hook h) const noexcept;
  /// A table with its built-in chains (policy ACCEPT) and no user chains.
  static Table make(TableId id);
};

struct Ruleset {
  std::vector<Table> tables;  // in the order they were given

  const Table* find_table(TableId id) const noexcept;
  Table* find_table(TableId id) noexcept;
  /// The table, appended (with its built-in chains) when missing.
  Table& get_or_add_table(TableId id);
};

/// For every chain of `table`, the hooks from which it is reached through
/// jumps and gotos (a built-in chain is reached from its own hook). Chains
/// reached from no hook get 0. Cost O(chains + rules). Tolerates loops.
std::vector<HookMask> chain_hooks(const Table& table);

// ---------------------------------------------------------------------------
// Text forms shared by the iptables-save and iptables -L writers

/// A limit's avg (1/10000 s between packets) as iptables prints it: "N/unit".
std::string format_limit_rate(uint32_t avg);
/// True when iptables prints a string pattern as --hex-string (a byte that is
/// not printable ASCII, or a trailing backslash).
bool string_pattern_needs_hex(const std::string& pattern) noexcept;
/// A string pattern quoted as iptables prints it: "|hex|" or "text" with `"`
/// and `\` escaped.
std::string format_string_pattern(const std::string& pattern);
/// A DNAT/SNAT range: `A[-B]` then `:P[-Q][/BASE]`, each part only when set.
std::string format_nat_range(const NatRange& r);

}  // namespace nfb
