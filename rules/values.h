// The value types of the rule model: tables and hooks, addresses and
// masks, port ranges, interface patterns, the conntrack state and status
// sets, address types and protocol names. Match modules and targets
// (rules/matches/, rules/targets/) and the rule model (rule.h) are built
// from them. Values are parsed once into the form matching needs: host
// byte order, inclusive ranges, bit sets.
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

class HostModel;  // netfilter/host.h: resolves patterns into IfaceSets

/// A set of interface ids, resolved from an -i/-o pattern at rule load time
/// so the packet path tests one bit. Ids the host does not have (kNoIface
/// included: "no interface") take the pattern's answer for the empty name
/// (the kernel compares "" then): only an empty pattern (`+`, or none)
/// matches it, so such ids are in the set of `+` and of any inverted name.
class IfaceSet {
 public:
  IfaceSet() = default;
  /// Cost O(1).
  bool contains(uint16_t id) const noexcept {
    if (id >= size_) return outside_;
    return ((words_[id >> 6] >> (id & 63U)) & 1U) != 0;
  }
  /// True when every id is in the set (the pattern checks nothing here).
  bool all() const noexcept { return all_; }
  /// Whether ids 0..63 cover every interface (the set is then low_word() for
  /// those ids and outside() for the rest, kNoIface included).
  bool fits_word() const noexcept { return size_ <= 64; }
  uint64_t low_word() const noexcept { return words_.empty() ? 0 : words_[0]; }
  bool outside() const noexcept { return outside_; }
  size_t count() const noexcept;

 private:
  friend class HostModel;
  std::vector<uint64_t> words_;
  uint32_t size_ = 0;
  bool outside_ = true;
  bool all_ = true;
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

}  // namespace nfb
