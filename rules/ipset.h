// IP sets (ipset): the sets -m set tests packets against, read from `ipset
// save` output (`--ipsets FILE`). The kernel's ip_set core and the set
// types hosts use: hash:ip, hash:net, hash:ip,port, hash:net,port,
// hash:ip,port,ip, hash:ip,port,net, bitmap:ip, bitmap:port, list:set.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nfb {

enum class IpSetType : uint8_t {
  HashIp, HashNet, HashIpPort, HashNetPort, HashIpPortIp, HashIpPortNet, BitmapIp, BitmapPort, ListSet,
  Unsupported,  // loaded by name only (IpSet::unsupported says what it is): a rule naming it is refused
};

/// One set, as `ipset save` describes it (IPv4 sets; an inet6 set loads
/// and never matches an IPv4 packet).
///
/// Elements are keyed as the kernel keys them: addresses masked to their
/// prefix (hash:net keeps one lookup per prefix length, longest first),
/// ports with their protocol (`tcp:80`; ICMP's type << 8 | code), bitmap
/// members by offset. Each element keeps its `nomatch` flag, its counters
/// and its timeout (seconds after the set was saved: the first packet of a
/// replay stands for that moment; 0 = permanent).
struct IpSet {
  struct Elem {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint32_t timeout_s = 0;  // 0: permanent
    bool nomatch = false;
  };
  /// A lookup key: up to three dimensions (address, port+protocol, address).
  struct Key {
    uint32_t ip = 0;
    uint32_t ip2 = 0;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint8_t cidr = 32;   // hash:net*, the first address's prefix
    uint8_t cidr2 = 32;  // hash:ip,port,net: the third's
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };

  std::string name;
  IpSetType type = IpSetType::HashIp;
  /// Unsupported: the type as written (hash:mac, hash:net,iface, ...), or
  /// which member makes a list:set unsupported.
  std::string unsupported;
  bool inet6 = false;
  bool counters = false;
  bool timeouts = false;          // created with `timeout`
  uint32_t default_timeout = 0;
  uint8_t netmask = 32;           // hash:ip netmask
  uint32_t range_lo = 0, range_hi = 0;  // bitmap:ip / bitmap:port
  uint32_t list_size = 8;         // list:set
  std::unordered_map<Key, uint32_t, KeyHash> index;  // key -> elems
  std::vector<Elem> elems;
  std::vector<uint8_t> cidrs;       // distinct first-dimension prefixes, longest first
  std::vector<uint8_t> cidrs2;      // hash:ip,port,net: third dimension's
  std::vector<uint32_t> members;    // list:set: member sets (index into IpSets::sets), in order
  std::vector<uint32_t> member_elem;  // list:set: each member's Elem

  /// The number of dimensions (src/dst flags) a rule must give.
  uint32_t dimensions() const noexcept;
  /// hash:net types: `nomatch` elements and --return-nomatch apply.
  bool has_nomatch() const noexcept;
  const char* type_name() const noexcept;
};

/// Every set of a host, by name; what `ipset save` printed.
class IpSets {
 public:
  /// Reads `ipset save` output (also `ipset restore` input without other
  /// commands): `create NAME TYPE [OPTIONS]` then `add NAME ELEMENT
  /// [OPTIONS]` lines. Throws LoadError (file:line:col) for anything else:
  /// an unknown type or option, a bad element, an add before its create, a
  /// list:set naming a set that does not exist or is a list.
  static IpSets parse(std::string_view text, const std::string& file);

  const IpSet* find(std::string_view name) const noexcept;
  IpSet* find(std::string_view name) noexcept;
  uint32_t index_of(std::string_view name) const noexcept;  // UINT32_MAX when absent
  std::vector<IpSet>& sets() noexcept { return sets_; }
  const std::vector<IpSet>& sets() const noexcept { return sets_; }
  bool empty() const noexcept { return sets_.empty(); }

  /// Time origin of the timeouts: the first packet that meets a set.
  uint64_t start_ns() const noexcept { return start_ns_; }
  void start(uint64_t now_ns) noexcept {
    if (!started_) {
      started_ = true;
      start_ns_ = now_ns;
    }
  }
  /// Counters and clock back to what the file said.
  void reset() noexcept;

 private:
  std::vector<IpSet> sets_;
  std::vector<std::vector<IpSet::Elem>> loaded_;  // per set, elems as read
  uint64_t start_ns_ = 0;
  bool started_ = false;
};

}  // namespace nfb
