#include "netfilter/host.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/input_file.h"
#include "base/load_error.h"

namespace nfb {
namespace {

constexpr uint32_t kLimitedBroadcast = 0xffffffffU;
constexpr uint32_t kAllHostsGroup = 0xe0000001U;  // 224.0.0.1
constexpr uint32_t kMrdGroup = 0xe000006aU;       // 224.0.0.106, multicast router discovery
constexpr size_t kMaxIfaceName = 15;              // IFNAMSIZ - 1

constexpr bool is_multicast(uint32_t a) noexcept { return (a >> 28) == 0xeU; }
constexpr bool is_local_multicast(uint32_t a) noexcept { return (a >> 8) == 0xe00000U; }  // 224.0.0.0/24
constexpr bool is_loopback(uint32_t a) noexcept { return (a >> 24) == 127U; }

// The kernel's error route types: a lookup that ends on one fails.
constexpr bool is_error_type(AddrType t) noexcept {
  return t == AddrType::Blackhole || t == AddrType::Unreachable || t == AddrType::Prohibit ||
         t == AddrType::Throw;
}

// Route types a route may have (the kernel refuses nat and xresolve).
constexpr bool is_route_type(AddrType t) noexcept {
  switch (t) {
    case AddrType::Unicast:
    case AddrType::Local:
    case AddrType::Broadcast:
    case AddrType::Anycast:
    case AddrType::Multicast:
    case AddrType::Blackhole:
    case AddrType::Unreachable:
    case AddrType::Prohibit:
    case AddrType::Throw:
      return true;
    default:
      return false;
  }
}

// Types whose routes need a device.
constexpr bool needs_device(AddrType t) noexcept { return !is_error_type(t); }

bool in_subnet(uint32_t addr, const IfaceAddress& a) noexcept {
  return ((addr ^ a.subnet_base()) & prefix_mask(a.prefix_len)) == 0;
}

// Lower-case route type names as `ip route` prints them, indexed by AddrType.
constexpr const char* kRouteTypeNames[kAddrTypeCount] = {
    "unspec", "unicast", "local", "broadcast", "anycast", "multicast",
    "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve",
};

std::string ipv4_text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xffU) + "." +
         std::to_string((a >> 8) & 0xffU) + "." + std::to_string(a & 0xffU);
}

[[noreturn]] void fail(const std::string& origin, const std::string& message) {
  throw LoadError(SourceLocation{origin, 0, 0, 0, false}, message);
}

}  // namespace

// ---------------------------------------------------------------------------
// Names

const char* route_table_name(RouteTable t) noexcept {
  switch (t) {
    case RouteTable::Local: return "local";
    case RouteTable::Main: return "main";
    case RouteTable::Default: return "default";
  }
  return "?";
}

const char* route_verdict_name(RouteVerdict v) noexcept {
  switch (v) {
    case RouteVerdict::Input: return "input";
    case RouteVerdict::Forward: return "forward";
    case RouteVerdict::Martian: return "martian";
    case RouteVerdict::NoRoute: return "no-route";
    case RouteVerdict::Blackhole: return "blackhole";
    case RouteVerdict::Unreachable: return "unreachable";
    case RouteVerdict::Prohibit: return "prohibit";
    case RouteVerdict::NotJoined: return "not-joined";
  }
  return "?";
}

size_t IfaceSet::count() const noexcept {
  size_t n = 0;
  for (const uint64_t w : words_) n += static_cast<size_t>(std::popcount(w));
  return n;
}

// ---------------------------------------------------------------------------
// Longest-prefix match

void HostModel::LpmTable::build(std::span<const Route> routes, std::span<const uint32_t> indices) {
  // `indices` is in preference order for equal prefixes: keep the first of
  // each, then insert short prefixes before long ones, which overwrite them.
  std::vector<uint32_t> order;
  for (const uint32_t idx : indices) {
    const Route& r = routes[idx];
    const bool seen = std::any_of(order.begin(), order.end(), [&](uint32_t o) {
      return routes[o].prefix_len == r.prefix_len && routes[o].dst == r.dst;
    });
    if (!seen) order.push_back(idx);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&routes](uint32_t a, uint32_t b) { return routes[a].prefix_len < routes[b].prefix_len; });
  l1_.assign(1U << 16, 0);
  l2_.clear();
  l3_.clear();
  // The group a level-1 (level-2) entry points to, made from its value.
  const auto group = [](std::vector<uint32_t>& entries, uint32_t at, std::vector<uint32_t>& next) {
    if ((entries[at] & kGroup) == 0) {
      const auto g = static_cast<uint32_t>(next.size() / 256);
      next.insert(next.end(), 256, entries[at]);
      entries[at] = kGroup | g;
    }
    return (entries[at] & ~kGroup) * 256U;
  };
  for (const uint32_t idx : order) {
    const Route& r = routes[idx];
    const uint32_t val = idx + 1;
    const uint32_t dst = r.dst & prefix_mask(r.prefix_len);
    if (r.prefix_len <= 16) {
      const uint32_t first = dst >> 16;
      for (uint32_t i = 0; i < (1U << (16 - r.prefix_len)); ++i) l1_[first + i] = val;
    } else if (r.prefix_len <= 24) {
      const uint32_t g2 = group(l1_, dst >> 16, l2_);
      const uint32_t first = (dst >> 8) & 0xffU;
      for (uint32_t i = 0; i < (1U << (24 - r.prefix_len)); ++i) l2_[g2 + first + i] = val;
    } else {
      const uint32_t g2 = group(l1_, dst >> 16, l2_);
      const uint32_t g3 = group(l2_, g2 + ((dst >> 8) & 0xffU), l3_);
      const uint32_t first = dst & 0xffU;
      for (uint32_t i = 0; i < (1U << (32 - r.prefix_len)); ++i) l3_[g3 + first + i] = val;
    }
  }
}

// ---------------------------------------------------------------------------
// Building

namespace {

// The local-table routes (and, when asked, the connected main routes) the
// kernel adds for the addresses of one interface (fib_add_ifaddr).
void add_kernel_routes(const Interface& ifc, uint16_t id, bool local_table, bool connected,
                       std::vector<Route>& out) {
  const auto add = [&out](Route r) {
    // The kernel refuses an exact duplicate (two interfaces in one subnet
    // still get one route each: their devices differ).
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  };
  for (const IfaceAddress& a : ifc.addrs) {
    const uint32_t mask = prefix_mask(a.prefix_len);
    const uint32_t prefix = a.subnet_base() & mask;
    // prefsrc: the primary address of this subnet on this interface.
    uint32_t prim = a.local;
    if (a.secondary) {
      for (const IfaceAddress& p : ifc.addrs) {
        if (!p.secondary && p.prefix_len == a.prefix_len && (p.subnet_base() & mask) == prefix) {
          prim = p.local;
          break;
        }
      }
    }
    Route base;
    base.iface = id;
    base.prefsrc = prim;
    base.kernel = true;
    if (local_table) {
      Route r = base;
      r.table = RouteTable::Local;
      r.type = AddrType::Local;
      r.dst = a.local;
      r.prefix_len = 32;
      add(r);
    }
    if (!ifc.up || a.secondary) continue;
    if (local_table && a.broadcast != 0 && a.broadcast != kLimitedBroadcast) {
      Route r = base;
      r.table = RouteTable::Local;
      r.type = AddrType::Broadcast;
      r.dst = a.broadcast;
      r.prefix_len = 32;
      add(r);
    }
    if (prefix == 0 || (prefix == a.local && a.prefix_len == 32)) continue;
    if (!a.noprefixroute) {
      Route r = base;
      r.dst = prefix;
      r.prefix_len = a.prefix_len;
      if (ifc.loopback) {
        r.table = RouteTable::Local;
        r.type = AddrType::Local;
        if (local_table) add(r);
      } else {
        r.table = RouteTable::Main;
        r.type = AddrType::Unicast;
        r.metric = 0;
        if (connected) add(r);
      }
    }
    if (local_table && a.prefix_len < 31) {
      Route r = base;
      r.table = RouteTable::Local;
      r.type = AddrType::Broadcast;
      r.dst = prefix | ~mask;
      r.prefix_len = 32;
      add(r);
    }
  }
}

}  // namespace

HostModel HostModel::build(HostSpec spec, const std::string& origin) {
  if (spec.interfaces.size() > kMaxIfaces) {
    fail(origin, "too many interfaces (" + std::to_string(spec.interfaces.size()) + ", at most " +
                     std::to_string(kMaxIfaces) + ")");
  }
  HostModel m;
  const auto n = static_cast<uint16_t>(spec.interfaces.size());
  for (uint16_t id = 0; id < n; ++id) {
    const Interface& ifc = spec.interfaces[id];
    if (ifc.name.empty() || ifc.name.size() > kMaxIfaceName) {
      fail(origin, "interface " + std::to_string(id) + ": name \"" + ifc.name +
                       "\" is not 1 to 15 bytes long");
    }
    if (ifc.master != kNoIface) {
      if (ifc.master >= n || ifc.master == id || !spec.interfaces[ifc.master].bridge) {
        fail(origin, "interface " + ifc.name + ": its master (id " + std::to_string(ifc.master) +
                         ") is not another interface that is a bridge");
      }
      if (ifc.bridge) fail(origin, "interface " + ifc.name + ": a bridge cannot be a bridge port");
    }
    for (const IfaceAddress& a : ifc.addrs) {
      if (a.prefix_len > 32) {
        fail(origin, "interface " + ifc.name + ": address " + ipv4_text(a.local) + " has prefix length " +
                         std::to_string(a.prefix_len) + " (at most 32)");
      }
    }
  }
  m.by_name_.resize(n);
  for (uint16_t id = 0; id < n; ++id) m.by_name_[id] = id;
  std::sort(m.by_name_.begin(), m.by_name_.end(), [&spec](uint16_t a, uint16_t b) {
    return spec.interfaces[a].name < spec.interfaces[b].name;
  });
  for (size_t i = 1; i < m.by_name_.size(); ++i) {
    const std::string& name = spec.interfaces[m.by_name_[i]].name;
    if (name == spec.interfaces[m.by_name_[i - 1]].name) {
      fail(origin, "duplicate interface name \"" + name + "\"");
    }
  }

  for (size_t i = 0; i < spec.routes.size(); ++i) {
    Route& r = spec.routes[i];
    const std::string what = "route " + std::to_string(i) + " (" + ipv4_text(r.dst) + "/" +
                             std::to_string(r.prefix_len) + ")";
    if (r.prefix_len > 32) fail(origin, what + ": prefix length over 32");
    if (!is_route_type(r.type)) {
      fail(origin, what + ": route type " + kRouteTypeNames[static_cast<size_t>(r.type) % kAddrTypeCount] +
                       " is not supported");
    }
    if (r.iface != kNoIface && r.iface >= n) fail(origin, what + ": no interface " + std::to_string(r.iface));
    if (needs_device(r.type) && r.iface == kNoIface) {
      fail(origin, what + ": a " + std::string(kRouteTypeNames[static_cast<size_t>(r.type)]) +
                       " route needs a device");
    }
    if (spec.synthesize_local_table && r.table == RouteTable::Local) {
      fail(origin, what + ": a table local route, but the local table is synthesized from the addresses");
    }
    r.dst &= prefix_mask(r.prefix_len);
  }

  std::vector<Route> routes;
  for (uint16_t id = 0; id < n; ++id) {
    add_kernel_routes(spec.interfaces[id], id, spec.synthesize_local_table,
                      spec.synthesize_connected_routes, routes);
  }
  routes.insert(routes.end(), spec.routes.begin(), spec.routes.end());

  // Table, longest prefix first, prefix, then preference: lower metric, then
  // the order given (a stable sort keeps it).
  std::stable_sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
    return std::tuple(static_cast<int>(a.table), -static_cast<int>(a.prefix_len), a.dst, a.metric) <
           std::tuple(static_cast<int>(b.table), -static_cast<int>(b.prefix_len), b.dst, b.metric);
  });
  m.routes_ = std::move(routes);

  std::vector<uint32_t> merged;
  std::vector<uint32_t> dflt;
  for (uint32_t i = 0; i < m.routes_.size(); ++i) {
    const Route& r = m.routes_[i];
    (r.table == RouteTable::Default ? dflt : merged).push_back(i);
    if (r.type == AddrType::Local && !r.kernel) m.custom_local_routes_ = true;
  }
  // Tables local and main are one trie in the kernel: local's entries come
  // first for an equal prefix, and `merged` already lists local before main.
  m.ip_forward_ = spec.ip_forward;
  m.bridge_nf_ = spec.bridge_nf_call_iptables;
  // Bridge ports, grouped by bridge (a counting sort keeps ids ascending).
  m.port_begin_.assign(size_t{n} + 1, 0);
  for (const Interface& ifc : spec.interfaces) {
    if (ifc.master != kNoIface) ++m.port_begin_[size_t{ifc.master} + 1];
  }
  for (size_t i = 1; i < m.port_begin_.size(); ++i) m.port_begin_[i] += m.port_begin_[i - 1];
  m.ports_.resize(m.port_begin_.back());
  {
    std::vector<uint32_t> fill(m.port_begin_.begin(), m.port_begin_.end() - 1);
    for (uint16_t id = 0; id < n; ++id) {
      const uint16_t br = spec.interfaces[id].master;
      if (br != kNoIface) m.ports_[fill[br]++] = id;
    }
  }
  m.has_ports_ = !m.ports_.empty();
  m.merged_.build(m.routes_, merged);
  m.default_.build(m.routes_, dflt);

  for (uint16_t id = 0; id < n; ++id) {
    const Interface& ifc = spec.interfaces[id];
    if (ifc.loopback && m.loopback_ == kNoIface) m.loopback_ = id;
    for (const IfaceAddress& a : ifc.addrs) m.local_addrs_.push_back(a.local);
    const uint64_t key = static_cast<uint64_t>(id) << 32;
    m.groups_.push_back(key | kAllHostsGroup);
    if (ifc.bridge_mcast_snooping) m.groups_.push_back(key | kMrdGroup);
    for (const uint32_t g : ifc.mcast_groups) m.groups_.push_back(key | g);
  }
  std::sort(m.local_addrs_.begin(), m.local_addrs_.end());
  m.local_addrs_.erase(std::unique(m.local_addrs_.begin(), m.local_addrs_.end()), m.local_addrs_.end());
  std::sort(m.groups_.begin(), m.groups_.end());
  m.groups_.erase(std::unique(m.groups_.begin(), m.groups_.end()), m.groups_.end());
  m.ifaces_ = std::move(spec.interfaces);
  return m;
}

// ---------------------------------------------------------------------------
// Interfaces and addresses

std::span<const uint16_t> HostModel::ports_of(uint16_t id) const noexcept {
  if (size_t{id} + 1 >= port_begin_.size()) return {};
  return std::span<const uint16_t>(ports_).subspan(port_begin_[id], port_begin_[size_t{id} + 1] - port_begin_[id]);
}

std::optional<uint16_t> HostModel::iface_id(std::string_view name) const noexcept {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [this](uint16_t id, std::string_view n) { return ifaces_[id].name < n; });
  if (it != by_name_.end() && ifaces_[*it].name == name) return *it;
  return std::nullopt;
}

bool HostModel::iface_matches(const IfaceMatch& m, uint16_t id) const noexcept {
  const std::string_view name = id < ifaces_.size() ? std::string_view(ifaces_[id].name) : std::string_view();
  // An empty pattern compares no byte (the kernel's mask is all zero).
  const bool hit = m.name.empty() || (m.wildcard ? name.starts_with(m.name) : name == m.name);
  return hit != m.invert;
}

IfaceSet HostModel::resolve(const IfaceMatch& m) const {
  IfaceSet s;
  s.size_ = static_cast<uint32_t>(ifaces_.size());
  s.words_.assign((ifaces_.size() + 63) / 64, 0);
  s.outside_ = m.name.empty() != m.invert;
  s.all_ = s.outside_;
  for (uint16_t id = 0; id < ifaces_.size(); ++id) {
    if (iface_matches(m, id)) {
      s.words_[id >> 6] |= uint64_t{1} << (id & 63U);
    } else {
      s.all_ = false;
    }
  }
  return s;
}

bool HostModel::is_local_address(uint32_t addr) const noexcept {
  return std::binary_search(local_addrs_.begin(), local_addrs_.end(), addr);
}

std::optional<uint32_t> HostModel::primary_address(uint16_t iface) const noexcept {
  if (iface >= ifaces_.size()) return std::nullopt;
  for (const IfaceAddress& a : ifaces_[iface].addrs) {
    if (!a.secondary && a.scope == addr_scope::kGlobal) return a.local;
  }
  return std::nullopt;
}

std::optional<uint32_t> HostModel::masquerade_source(uint16_t out_iface, uint32_t next_hop) const noexcept {
  if (out_iface < ifaces_.size()) {
    std::optional<uint32_t> first;
    for (const IfaceAddress& a : ifaces_[out_iface].addrs) {
      // Universe scope: only global addresses qualify, primaries only.
      if (a.secondary || a.scope != addr_scope::kGlobal) continue;
      if (in_subnet(next_hop, a)) return a.local;
      if (!first) first = a.local;
    }
    if (first) return first;
  }
  // No usable address on the device: the first interface (lo first) with a
  // primary global address lends its first one.
  for (uint16_t id = 0; id < ifaces_.size(); ++id) {
    if (const std::optional<uint32_t> a = primary_address(id)) return a;
  }
  return std::nullopt;
}

bool HostModel::joined_group(uint16_t iface, uint32_t group) const noexcept {
  if (iface >= ifaces_.size()) return group == kAllHostsGroup;
  const uint64_t key = (static_cast<uint64_t>(iface) << 32) | group;
  return std::binary_search(groups_.begin(), groups_.end(), key);
}

// ---------------------------------------------------------------------------
// Routing

RouteResult HostModel::result_of(uint32_t route_index) const noexcept {
  const Route& r = routes_[route_index];
  RouteResult res;
  res.type = r.type;
  res.table = r.table;
  res.prefix_len = r.prefix_len;
  res.iface = r.iface;
  res.prefix = r.dst;
  res.gateway = r.gateway;
  res.prefsrc = r.prefsrc;
  res.metric = r.metric;
  return res;
}

RouteResult HostModel::route(uint32_t dst) const noexcept {
  // throw ends the lookup in its table; the next table is tried.
  uint32_t idx = merged_.lookup(dst);
  if (idx != LpmTable::kNone && routes_[idx].type != AddrType::Throw) return result_of(idx);
  idx = default_.lookup(dst);
  if (idx != LpmTable::kNone && routes_[idx].type != AddrType::Throw) return result_of(idx);
  return RouteResult{};
}

AddrType HostModel::addr_type(uint32_t addr, std::optional<uint16_t> limit_iface) const noexcept {
  if (addr == 0 || addr == kLimitedBroadcast) return AddrType::Broadcast;
  if (is_multicast(addr)) return AddrType::Multicast;
  // Only the (merged) local table is asked; a failed lookup is UNICAST.
  const uint32_t idx = merged_.lookup(addr);
  if (idx == LpmTable::kNone) return AddrType::Unicast;
  const Route& r = routes_[idx];
  if (is_error_type(r.type)) return AddrType::Unicast;
  if (limit_iface && r.iface != *limit_iface) return AddrType::Unicast;
  return r.type;
}

bool HostModel::source_is_martian(uint32_t src, uint16_t in_iface, uint16_t out_iface) const noexcept {
  const bool full_check = custom_local_routes_ || (out_iface != kNoIface && out_iface == in_iface);
  if (!full_check) return is_local_address(src);
  // The source's own route must be unicast; no route, or an error route,
  // is accepted when rp_filter is off.
  const RouteResult r = route(src);
  if (!r.found() || is_error_type(r.type)) return false;
  return r.type != AddrType::Unicast;
}

RouteDecision HostModel::route_input(uint32_t dst, uint32_t src, uint16_t in_iface) const noexcept {
  RouteDecision d;
  const bool known = in_iface < ifaces_.size();
  const bool from_loopback = known && ifaces_[in_iface].loopback;
  const bool localnet = known && ifaces_[in_iface].route_localnet;
  const auto martian = [&d]() {
    d.verdict = RouteVerdict::Martian;
    return d;
  };

  if (is_multicast(dst)) {
    d.type = AddrType::Multicast;
    if (!joined_group(in_iface, dst)) {
      d.verdict = RouteVerdict::NotJoined;
      return d;
    }
    if (is_multicast(src) || src == kLimitedBroadcast) return martian();
    if (is_loopback(src) && !localnet && !from_loopback) return martian();
    if (src == 0) {
      if (!is_local_multicast(dst)) return martian();
    } else if (source_is_martian(src, in_iface, kNoIface)) {
      return martian();
    }
    d.verdict = RouteVerdict::Input;
    return d;
  }
  if (is_multicast(src) || src == kLimitedBroadcast) return martian();
  if (dst == kLimitedBroadcast || (src == 0 && dst == 0)) {
    d.type = AddrType::Broadcast;
    if (src != 0 && source_is_martian(src, in_iface, kNoIface)) return martian();
    d.verdict = RouteVerdict::Input;
    return d;
  }
  if (src == 0 || dst == 0) return martian();
  if (!from_loopback && !localnet && (is_loopback(dst) || is_loopback(src))) return martian();

  d.fib = route(dst);
  d.type = d.fib.type;
  // Forwarding off turns every failed lookup (and every packet to forward)
  // into "host unreachable".
  if (!ip_forward_ && (is_error_type(d.fib.type) || d.fib.type == AddrType::Unspec)) {
    d.verdict = RouteVerdict::Unreachable;
    return d;
  }
  switch (d.fib.type) {
    case AddrType::Unspec:
      d.verdict = RouteVerdict::NoRoute;
      return d;
    case AddrType::Blackhole:
      d.verdict = RouteVerdict::Blackhole;
      return d;
    case AddrType::Unreachable:
      d.verdict = RouteVerdict::Unreachable;
      return d;
    case AddrType::Prohibit:
      d.verdict = RouteVerdict::Prohibit;
      return d;
    case AddrType::Local:
    case AddrType::Broadcast:
      if (source_is_martian(src, in_iface, kNoIface)) return martian();
      d.verdict = RouteVerdict::Input;
      return d;
    case AddrType::Unicast:
      if (!ip_forward_) {
        d.verdict = RouteVerdict::Unreachable;
        return d;
      }
      if (source_is_martian(src, in_iface, d.fib.iface)) return martian();
      d.verdict = RouteVerdict::Forward;
      d.out_iface = d.fib.iface;
      d.next_hop = d.fib.next_hop(dst);
      return d;
    default:
      if (!ip_forward_) {
        d.verdict = RouteVerdict::Unreachable;
        return d;
      }
      return martian();  // anycast/multicast routes: not a destination for input
  }
}

std::string format_route(const Route& r, std::span<const Interface> ifaces) {
  std::string out;
  if (r.type != AddrType::Unicast) {
    out += kRouteTypeNames[static_cast<size_t>(r.type) % kAddrTypeCount];
    out += ' ';
  }
  if (r.prefix_len == 0) {
    out += "default";
  } else {
    out += ipv4_text(r.dst);
    if (r.prefix_len != 32) out += "/" + std::to_string(r.prefix_len);
  }
  if (r.gateway != 0) out += " via " + ipv4_text(r.gateway);
  if (r.iface != kNoIface) {
    out += " dev ";
    out += r.iface < ifaces.size() ? ifaces[r.iface].name : "#" + std::to_string(r.iface);
  }
  out += " table ";
  out += route_table_name(r.table);
  if (r.kernel) out += " proto kernel";
  if (r.prefsrc != 0) out += " src " + ipv4_text(r.prefsrc);
  if (r.metric != 0) out += " metric " + std::to_string(r.metric);
  return out;
}

// ---------------------------------------------------------------------------
// The default Docker host

HostSpec default_docker_host_spec() {
  HostSpec spec;
  spec.synthesize_local_table = true;
  spec.synthesize_connected_routes = true;
  const auto iface = [&spec](const char* name, uint32_t ifindex, uint8_t mac_last, uint32_t addr,
                             uint8_t len) -> Interface& {
    Interface ifc;
    ifc.name = name;
    ifc.kernel_ifindex = ifindex;
    ifc.has_mac = true;
    ifc.mac = {mac_last == 0 ? uint8_t{0} : uint8_t{0x02}, 0, 0, 0, 0, mac_last};
    IfaceAddress a;
    a.local = addr;
    a.prefix_len = len;
    ifc.addrs.push_back(a);
    spec.interfaces.push_back(std::move(ifc));
    return spec.interfaces.back();
  };
  Interface& lo = iface("lo", 1, 0, 0x7f000001U, 8);  // 127.0.0.1/8
  lo.loopback = true;
  lo.addrs[0].scope = addr_scope::kHost;
  iface("eth0", 2, 1, 0xc6336401U, 24);                               // 198.51.100.1/24
  iface("docker0", 3, 2, 0xac110001U, 16);          // 172.17.0.1/16
  iface("br-5c0a8c6e1d2f", 4, 3, 0xac120001U, 16);  // 172.18.0.1/16
  for (const size_t br : {size_t{2}, size_t{3}}) spec.interfaces[br].bridge = spec.interfaces[br].bridge_mcast_snooping = true;
  // The containers' ends on the bridges (the kernel tests' host has them).
  const auto port = [&spec](const char* name, uint32_t ifindex, std::array<uint8_t, 6> mac, uint16_t master) {
    Interface ifc;
    ifc.name = name;
    ifc.kernel_ifindex = ifindex;
    ifc.has_mac = true;
    ifc.mac = mac;
    ifc.master = master;
    ifc.hairpin = false;  // Docker leaves the kernel's default (with its userland proxy)
    spec.interfaces.push_back(std::move(ifc));
  };
  port("veth5b0e9a1", 5, {0x7a, 0x1e, 0x5b, 0x0e, 0x9a, 0x01}, 2);
  port("vethc7d24f3", 6, {0x7a, 0x1e, 0xc7, 0xd2, 0x4f, 0x03}, 2);
  port("veth9e81b6d", 7, {0x7a, 0x1e, 0x9e, 0x81, 0xb6, 0x0d}, 3);

  Route dflt;
  dflt.table = RouteTable::Main;
  dflt.type = AddrType::Unicast;
  dflt.dst = 0;
  dflt.prefix_len = 0;
  dflt.gateway = 0xc63364feU;  // 198.51.100.254
  dflt.iface = 1;              // eth0
  spec.routes.push_back(dflt);
  return spec;
}

HostModel default_docker_host() { return HostModel::build(default_docker_host_spec(), "default Docker host"); }

// ---------------------------------------------------------------------------
// Loading `ip -j addr` / `ip -j route`

namespace {

using Json = nlohmann::json;

// Reads one JSON document and reports what it expected where, as
// `FILE: PATH: message`.
class JsonReader {
 public:
  explicit JsonReader(const std::string& file) : file_(file) {}

  Json parse(std::string_view text) const {
    try {
      return Json::parse(text.begin(), text.end());
    } catch (const Json::parse_error& e) {
      // what(): "[json.exception.parse_error.101] parse error at line L,
      // column C: DETAIL". Keep DETAIL; the location is the byte offset.
      std::string detail = e.what();
      const size_t at = detail.find("parse error");
      const size_t colon = detail.find(": ", at == std::string::npos ? 0 : at);
      if (colon != std::string::npos) detail = detail.substr(colon + 2);
      SourceLocation where{file_, 0, 0, e.byte > 0 ? e.byte - 1 : 0, true};
      throw LoadError(where, "invalid JSON: " + detail);
    }
  }

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    nfb::fail(file_, (path.empty() ? std::string("top level") : path) + ": " + what);
  }

  // A short rendering of a value for messages.
  static std::string show(const Json& v) {
    std::string s = v.dump();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
  }

  [[noreturn]] void expected(const std::string& path, const std::string& what, const Json& got) const {
    fail(path, "expected " + what + ", got " + show(got));
  }

  const Json* member(const Json& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  const Json& required(const Json& obj, const std::string& path, const char* key, const std::string& what) const {
    const Json* v = member(obj, key);
    if (v == nullptr) fail(path, "missing key \"" + std::string(key) + "\" (expected " + what + ")");
    return *v;
  }

  const std::string& string(const Json& v, const std::string& path, const std::string& what) const {
    if (!v.is_string()) expected(path, what, v);
    return v.get_ref<const std::string&>();
  }

  uint64_t unsigned_int(const Json& v, const std::string& path, uint64_t max, const std::string& what) const {
    if (!v.is_number_integer()) expected(path, what, v);
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u <= max) return u;
    }
    expected(path, what, v);
  }

  bool boolean(const Json& v, const std::string& path, const std::string& what) const {
    if (!v.is_boolean()) expected(path, what, v);
    return v.get<bool>();
  }

  const Json& array(const Json& v, const std::string& path, const std::string& what) const {
    if (!v.is_array()) expected(path, what, v);
    return v;
  }

  const Json& object(const Json& v, const std::string& path, const std::string& what) const {
    if (!v.is_object()) expected(path, what, v);
    return v;
  }

  const std::string& file() const noexcept { return file_; }

 private:
  const std::string& file_;
};

std::string index_path(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }
std::string key_path(const std::string& base, const char* key) { return base + "." + key; }

// Strict dotted quad: four decimal parts of 1..3 digits, each <= 255.
std::optional<uint32_t> parse_ipv4_text(std::string_view s) noexcept {
  uint32_t out = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
    size_t digits = 0;
    unsigned value = 0;
    while (digits < s.size() && digits < 4 && s[digits] >= '0' && s[digits] <= '9') {
      value = value * 10 + static_cast<unsigned>(s[digits] - '0');
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255) return std::nullopt;
    out = (out << 8) | value;
    s.remove_prefix(digits);
  }
  if (!s.empty()) return std::nullopt;
  return out;
}

uint32_t read_ipv4(const JsonReader& r, const Json& v, const std::string& path) {
  const std::string& s = r.string(v, path, "an IPv4 address \"a.b.c.d\"");
  const std::optional<uint32_t> a = parse_ipv4_text(s);
  if (!a) r.expected(path, "an IPv4 address \"a.b.c.d\"", v);
  return *a;
}

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view s) noexcept {
  std::array<uint8_t, 6> mac{};
  if (s.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return std::nullopt;
    unsigned v = 0;
    const auto res = std::from_chars(s.data() + i * 3, s.data() + i * 3 + 2, v, 16);
    if (res.ec != std::errc() || res.ptr != s.data() + i * 3 + 2) return std::nullopt;
    mac[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

uint8_t read_scope(const JsonReader& r, const Json& v, const std::string& path) {
  const char* what = "a scope (global, site, link, host, nowhere or 0..255)";
  if (v.is_number_integer()) return static_cast<uint8_t>(r.unsigned_int(v, path, 255, what));
  const std::string& s = r.string(v, path, what);
  if (s == "global" || s == "universe") return addr_scope::kGlobal;
  if (s == "site") return addr_scope::kSite;
  if (s == "link") return addr_scope::kLink;
  if (s == "host") return addr_scope::kHost;
  if (s == "nowhere") return addr_scope::kNowhere;
  unsigned value = 0;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), value, 10);
  if (s.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size() || value > 255) {
    r.expected(path, what, v);
  }
  return static_cast<uint8_t>(value);
}

void parse_addrs(const Json& doc, const JsonReader& r, HostSpec& spec) {
  r.array(doc, "", "a JSON array of interfaces (the output of `ip -j addr`)");
  struct Enslaved {
    size_t port;             // index in spec.interfaces
    std::string master;      // its "master"
    std::string path;        // for messages
    std::string slave_kind;  // `ip -d`'s info_slave_kind, "" when not given
  };
  std::vector<Enslaved> masters;
  std::map<std::string, std::string> master_kind_of;  // name -> `ip -d`'s info_kind
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string path = index_path("", i);
    const Json& e = r.object(doc[i], path, "an interface object");
    Interface ifc;
    ifc.name = r.string(r.required(e, path, "ifname", "an interface name"), key_path(path, "ifname"),
                        "an interface name");
    if (ifc.name.empty() || ifc.name.size() > kMaxIfaceName) {
      r.expected(key_path(path, "ifname"), "an interface name of 1 to 15 bytes", e["ifname"]);
    }
    for (const Interface& other : spec.interfaces) {
      if (other.name == ifc.name) r.fail(key_path(path, "ifname"), "duplicate interface \"" + ifc.name + "\"");
    }
    if (const Json* v = r.member(e, "ifindex")) {
      ifc.kernel_ifindex =
          static_cast<uint32_t>(r.unsigned_int(*v, key_path(path, "ifindex"), 0xffffffffU, "an interface index"));
    }
    if (const Json* v = r.member(e, "flags")) {
      const std::string fpath = key_path(path, "flags");
      r.array(*v, fpath, "an array of link flags");
      ifc.up = false;
      for (size_t k = 0; k < v->size(); ++k) {
        const std::string& flag = r.string((*v)[k], index_path(fpath, k), "a link flag name");
        if (flag == "UP") ifc.up = true;
        if (flag == "LOOPBACK") ifc.loopback = true;
      }
    }
    std::string link_type;
    if (const Json* v = r.member(e, "link_type")) link_type = r.string(*v, key_path(path, "link_type"), "a link type");
    if (const Json* v = r.member(e, "address")) {
      // Only Ethernet-like links have a MAC here (tunnels print addresses
      // of other shapes, or none).
      if (link_type == "ether" || link_type == "loopback") {
        const std::string apath = key_path(path, "address");
        const std::optional<std::array<uint8_t, 6>> mac = parse_mac(r.string(*v, apath, "a MAC address"));
        if (!mac) r.expected(apath, "a MAC address \"xx:xx:xx:xx:xx:xx\"", *v);
        ifc.mac = *mac;
        ifc.has_mac = true;
      }
    }
    std::string slave_kind;  // `ip -d`: the kind of the master this interface is enslaved to
    if (const Json* v = r.member(e, "master")) {
      masters.push_back({spec.interfaces.size(), r.string(*v, key_path(path, "master"), "an interface name"),
                         key_path(path, "master"), ""});
    }
    if (const Json* v = r.member(e, "linkinfo")) {
      const std::string lpath = key_path(path, "linkinfo");
      r.object(*v, lpath, "a linkinfo object");
      const Json* kind = r.member(*v, "info_kind");
      if (const Json* sk = r.member(*v, "info_slave_kind"); sk != nullptr && sk->is_string()) {
        slave_kind = sk->get_ref<const std::string&>();
        const Json* sdata = r.member(*v, "info_slave_data");
        if (slave_kind == "bridge" && sdata != nullptr && sdata->is_object()) {
          if (const Json* h = r.member(*sdata, "hairpin")) {
            ifc.hairpin = r.boolean(*h, key_path(key_path(lpath, "info_slave_data"), "hairpin"), "true or false");
          }
        }
      }
      if (kind != nullptr && kind->is_string()) master_kind_of[ifc.name] = kind->get_ref<const std::string&>();
      if (kind != nullptr && kind->is_string() && kind->get_ref<const std::string&>() == "bridge") {
        ifc.bridge = true;
        ifc.bridge_mcast_snooping = true;  // the kernel's default
        if (const Json* data = r.member(*v, "info_data"); data != nullptr && data->is_object()) {
          if (const Json* snoop = r.member(*data, "mcast_snooping")) {
            ifc.bridge_mcast_snooping =
                r.unsigned_int(*snoop, key_path(key_path(lpath, "info_data"), "mcast_snooping"), 1,
                               "0 or 1") != 0;
          }
          if (const Json* nf = r.member(*data, "nf_call_iptables")) {
            ifc.bridge_nf_call_iptables =
                r.unsigned_int(*nf, key_path(key_path(lpath, "info_data"), "nf_call_iptables"), 1, "0 or 1") != 0;
          }
        }
      }
    }
    if (const Json* v = r.member(e, "addr_info")) {
      const std::string apath = key_path(path, "addr_info");
      r.array(*v, apath, "an array of addresses");
      for (size_t k = 0; k < v->size(); ++k) {
        const std::string p = index_path(apath, k);
        const Json& a = r.object((*v)[k], p, "an address object");
        const Json* family = r.member(a, "family");
        if (family == nullptr || !family->is_string() || family->get_ref<const std::string&>() != "inet") continue;
        IfaceAddress addr;
        addr.local = read_ipv4(r, r.required(a, p, "local", "an IPv4 address"), key_path(p, "local"));
        addr.prefix_len = static_cast<uint8_t>(r.unsigned_int(
            r.required(a, p, "prefixlen", "a prefix length"), key_path(p, "prefixlen"), 32, "a prefix length 0..32"));
        if (const Json* peer = r.member(a, "address")) {
          const uint32_t pa = read_ipv4(r, *peer, key_path(p, "address"));
          if (pa != addr.local) addr.peer = pa;
        }
        if (const Json* b = r.member(a, "broadcast")) addr.broadcast = read_ipv4(r, *b, key_path(p, "broadcast"));
        if (const Json* s = r.member(a, "scope")) addr.scope = read_scope(r, *s, key_path(p, "scope"));
        if (const Json* s = r.member(a, "secondary")) {
          addr.secondary = r.boolean(*s, key_path(p, "secondary"), "true or false");
        }
        if (const Json* s = r.member(a, "noprefixroute")) {
          addr.noprefixroute = r.boolean(*s, key_path(p, "noprefixroute"), "true or false");
        }
        ifc.addrs.push_back(addr);
      }
    }
    if (spec.interfaces.size() >= kMaxIfaces) r.fail(path, "too many interfaces");
    if (!masters.empty() && masters.back().port == spec.interfaces.size()) masters.back().slave_kind = slave_kind;
    spec.interfaces.push_back(std::move(ifc));
  }
  // Ports: a master is a bridge unless `ip -d` says it is something else
  // (bond, team, vrf: their slaves stay plain interfaces here).
  for (const Enslaved& m : masters) {
    size_t br = spec.interfaces.size();
    for (size_t k = 0; k < spec.interfaces.size(); ++k) {
      if (spec.interfaces[k].name == m.master) br = k;
    }
    if (br == spec.interfaces.size()) r.fail(m.path, "unknown interface \"" + m.master + "\" (not in this file)");
    const auto kind = master_kind_of.find(m.master);
    // Without `ip -d`, a master that is itself enslaved (a bond in a bridge)
    // or Open vSwitch's datapath is not a Linux bridge either.
    bool enslaved = false;
    for (const Enslaved& other : masters) enslaved = enslaved || other.port == br;
    const bool other_kind = (!m.slave_kind.empty() && m.slave_kind != "bridge") ||
                            (kind != master_kind_of.end() && kind->second != "bridge") || enslaved ||
                            m.master == "ovs-system";
    if (br == m.port) r.fail(m.path, "an interface cannot be its own master");
    if (other_kind) continue;
    if (!spec.interfaces[br].bridge) {
      spec.interfaces[br].bridge = true;
      spec.interfaces[br].bridge_mcast_snooping = true;  // the kernel's default (`ip -d` would say otherwise)
    }
    spec.interfaces[m.port].master = static_cast<uint16_t>(br);
  }
  for (const Interface& ifc : spec.interfaces) {
    if (ifc.bridge && ifc.master != kNoIface) {
      r.fail("", "interface " + ifc.name + " is a bridge and a port of bridge " + spec.interfaces[ifc.master].name);
    }
  }
}

bool contains_colon(const Json* v) { return v != nullptr && v->is_string() && v->get_ref<const std::string&>().find(':') != std::string::npos; }

void parse_routes(const Json& doc, const JsonReader& r, HostSpec& spec, const std::string& addrs_name) {
  r.array(doc, "", "a JSON array of routes (the output of `ip -j route`)");
  bool local_given = false;
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string path = index_path("", i);
    const Json& e = r.object(doc[i], path, "a route object");
    // IPv6 routes (`show table all` lists them too) carry a v6 address or
    // the v6-only "pref" key.
    if (contains_colon(r.member(e, "dst")) || contains_colon(r.member(e, "gateway")) ||
        contains_colon(r.member(e, "prefsrc")) || r.member(e, "pref") != nullptr) {
      continue;
    }
    Route route;
    if (const Json* t = r.member(e, "table")) {
      const std::string tpath = key_path(path, "table");
      std::string name;
      if (t->is_number_integer()) {
        name = std::to_string(r.unsigned_int(*t, tpath, 0xffffffffU, "a table name or number"));
      } else {
        name = r.string(*t, tpath, "a table name or number");
      }
      if (name == "local" || name == "255") {
        route.table = RouteTable::Local;
      } else if (name == "main" || name == "254") {
        route.table = RouteTable::Main;
      } else if (name == "default" || name == "253") {
        route.table = RouteTable::Default;
      } else {
        continue;  // reached only through policy rules, which are not modelled
      }
    }
    if (const Json* f = r.member(e, "flags")) {
      const std::string fpath = key_path(path, "flags");
      r.array(*f, fpath, "an array of route flags");
      bool dead = false;
      for (size_t k = 0; k < f->size(); ++k) {
        if (r.string((*f)[k], index_path(fpath, k), "a route flag name") == "dead") dead = true;
      }
      if (dead) continue;  // the kernel skips dead nexthops
    }
    if (r.member(e, "nexthops") != nullptr) r.fail(key_path(path, "nexthops"), "multipath routes are not supported");
    if (r.member(e, "tos") != nullptr) r.fail(key_path(path, "tos"), "TOS routes are not supported");
    if (r.member(e, "dsfield") != nullptr) r.fail(key_path(path, "dsfield"), "TOS routes are not supported");
    if (r.member(e, "via") != nullptr) {
      r.fail(key_path(path, "via"), "gateways of another address family are not supported");
    }
    if (const Json* t = r.member(e, "type")) {
      const std::string tpath = key_path(path, "type");
      const char* what = "a route type (unicast, local, broadcast, anycast, multicast, blackhole, "
                         "unreachable, prohibit or throw)";
      const std::string& name = r.string(*t, tpath, what);
      bool ok = false;
      for (size_t k = 0; k < kAddrTypeCount; ++k) {
        const auto type = static_cast<AddrType>(k);
        if (name == kRouteTypeNames[k] && is_route_type(type)) {
          route.type = type;
          ok = true;
        }
      }
      if (!ok) r.expected(tpath, what, *t);
    }
    const std::string dpath = key_path(path, "dst");
    const Json& dst = r.required(e, path, "dst", "a destination");
    const std::string& dtext = r.string(dst, dpath, "a destination (\"default\", \"a.b.c.d\" or \"a.b.c.d/len\")");
    if (dtext == "default") {
      route.dst = 0;
      route.prefix_len = 0;
    } else {
      const size_t slash = dtext.find('/');
      const std::optional<uint32_t> a = parse_ipv4_text(std::string_view(dtext).substr(0, slash));
      unsigned len = 32;
      bool ok = a.has_value();
      if (ok && slash != std::string::npos) {
        const char* first = dtext.data() + slash + 1;
        const char* last = dtext.data() + dtext.size();
        const auto res = std::from_chars(first, last, len, 10);
        ok = first != last && res.ec == std::errc() && res.ptr == last && len <= 32;
      }
      if (!ok) r.expected(dpath, "a destination (\"default\", \"a.b.c.d\" or \"a.b.c.d/len\")", dst);
      if ((*a & ~prefix_mask(len)) != 0) r.fail(dpath, "the prefix " + dtext + " has host bits set");
      route.dst = *a;
      route.prefix_len = static_cast<uint8_t>(len);
    }
    if (const Json* g = r.member(e, "gateway")) route.gateway = read_ipv4(r, *g, key_path(path, "gateway"));
    if (const Json* d = r.member(e, "dev")) {
      const std::string& name = r.string(*d, key_path(path, "dev"), "an interface name");
      bool found = false;
      for (size_t k = 0; k < spec.interfaces.size(); ++k) {
        if (spec.interfaces[k].name == name) {
          route.iface = static_cast<uint16_t>(k);
          found = true;
          break;
        }
      }
      if (!found) r.fail(key_path(path, "dev"), "unknown interface \"" + name + "\" (not in " + addrs_name + ")");
    } else if (needs_device(route.type)) {
      r.fail(path, std::string("missing key \"dev\" (expected the device of a ") +
                       kRouteTypeNames[static_cast<size_t>(route.type)] + " route)");
    }
    if (const Json* s = r.member(e, "prefsrc")) route.prefsrc = read_ipv4(r, *s, key_path(path, "prefsrc"));
    if (const Json* mtr = r.member(e, "metric")) {
      route.metric = static_cast<uint32_t>(r.unsigned_int(*mtr, key_path(path, "metric"), 0xffffffffU, "a metric"));
    }
    if (const Json* p = r.member(e, "protocol")) {
      route.kernel = p->is_string() && p->get_ref<const std::string&>() == "kernel";
    }
    if (route.table == RouteTable::Local) local_given = true;
    spec.routes.push_back(route);
  }
  spec.synthesize_local_table = !local_given;
  spec.synthesize_connected_routes = false;
}

}  // namespace

HostSpec parse_host_spec(std::string_view addrs_json, std::string_view routes_json, const std::string& addrs_name,
                         const std::string& routes_name) {
  HostSpec spec;
  const JsonReader addrs_reader(addrs_name);
  parse_addrs(addrs_reader.parse(addrs_json), addrs_reader, spec);
  const JsonReader routes_reader(routes_name);
  parse_routes(routes_reader.parse(routes_json), routes_reader, spec, addrs_name);
  return spec;
}

HostModel parse_host(std::string_view addrs_json, std::string_view routes_json, const std::string& addrs_name,
                     const std::string& routes_name) {
  return HostModel::build(parse_host_spec(addrs_json, routes_json, addrs_name, routes_name), routes_name);
}

HostModel load_host(const std::string& addrs_json_path, const std::string& routes_json_path) {
  const std::string addrs = read_input_file(addrs_json_path);
  const std::string routes = read_input_file(routes_json_path);
  return parse_host(addrs, routes, addrs_json_path, routes_json_path);
}

}  // namespace nfb
