#include "netfilter/sysctl.h"

#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace nfb {

namespace {

uint32_t number(std::string_view name, std::string_view value, uint32_t min, uint32_t max) {
  uint64_t v = 0;
  const auto* end = value.data() + value.size();
  const auto r = std::from_chars(value.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end || v < min || v > max)
    throw std::invalid_argument(fmt::format("{}: bad value \"{}\" (expected {}-{})", name, value, min, max));
  return static_cast<uint32_t>(v);
}

bool flag(std::string_view name, std::string_view value) { return number(name, value, 0, 1) != 0; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

struct Timeout {
  const char* suffix;
  uint32_t CtConfig::*plain;
  uint32_t TcpTimeouts::*tcp;
  uint32_t SctpTimeouts::*sctp;
};

constexpr Timeout kTimeouts[] = {
    {"udp_timeout", &CtConfig::udp_timeout, nullptr, nullptr},
    {"udp_timeout_stream", &CtConfig::udp_stream_timeout, nullptr, nullptr},
    {"icmp_timeout", &CtConfig::icmp_timeout, nullptr, nullptr},
    {"generic_timeout", &CtConfig::generic_timeout, nullptr, nullptr},
    {"gre_timeout", &CtConfig::gre_timeout, nullptr, nullptr},
    {"gre_timeout_stream", &CtConfig::gre_stream_timeout, nullptr, nullptr},
    {"tcp_timeout_syn_sent", nullptr, &TcpTimeouts::syn_sent, nullptr},
    {"tcp_timeout_syn_recv", nullptr, &TcpTimeouts::syn_recv, nullptr},
    {"tcp_timeout_established", nullptr, &TcpTimeouts::established, nullptr},
    {"tcp_timeout_fin_wait", nullptr, &TcpTimeouts::fin_wait, nullptr},
    {"tcp_timeout_close_wait", nullptr, &TcpTimeouts::close_wait, nullptr},
    {"tcp_timeout_last_ack", nullptr, &TcpTimeouts::last_ack, nullptr},
    {"tcp_timeout_time_wait", nullptr, &TcpTimeouts::time_wait, nullptr},
    {"tcp_timeout_close", nullptr, &TcpTimeouts::close, nullptr},
    {"tcp_timeout_max_retrans", nullptr, &TcpTimeouts::max_retrans, nullptr},
    {"tcp_timeout_unacknowledged", nullptr, &TcpTimeouts::unacknowledged, nullptr},
    {"sctp_timeout_closed", nullptr, nullptr, &SctpTimeouts::closed},
    {"sctp_timeout_cookie_wait", nullptr, nullptr, &SctpTimeouts::cookie_wait},
    {"sctp_timeout_cookie_echoed", nullptr, nullptr, &SctpTimeouts::cookie_echoed},
    {"sctp_timeout_established", nullptr, nullptr, &SctpTimeouts::established},
    {"sctp_timeout_shutdown_sent", nullptr, nullptr, &SctpTimeouts::shutdown_sent},
    {"sctp_timeout_shutdown_recd", nullptr, nullptr, &SctpTimeouts::shutdown_recd},
    {"sctp_timeout_shutdown_ack_sent", nullptr, nullptr, &SctpTimeouts::shutdown_ack_sent},
    {"sctp_timeout_heartbeat_sent", nullptr, nullptr, &SctpTimeouts::heartbeat_sent},
};

/// net.ipv4.conf.IFACE.KEY: the interfaces it names (all: every one).
std::vector<Interface*> conf_ifaces(HostSpec& host, std::string_view full, std::string_view iface) {
  std::vector<Interface*> out;
  for (Interface& i : host.interfaces) {
    if (iface == "all" || iface == "default" || i.name == iface) out.push_back(&i);
  }
  if (out.empty() && iface != "all" && iface != "default")
    throw std::invalid_argument(fmt::format("{}: the host has no interface \"{}\"", full, iface));
  return out;
}

}  // namespace

std::string apply_sysctl(std::string_view raw_name, std::string_view value, SysctlTarget t) {
  std::string name(raw_name);
  for (char& c : name) {
    if (c == '/') c = '.';
  }
  value = trim(value);
  constexpr std::string_view kNf = "net.netfilter.nf_conntrack_";
  if (name.starts_with(kNf)) {
    const std::string_view key = std::string_view(name).substr(kNf.size());
    CtConfig& ct = t.conntrack;
    if (key == "max") ct.max_entries = number(name, value, 1, 1U << 30);
    else if (key == "buckets") ct.buckets = number(name, value, 1, 1U << 30);
    else if (key == "checksum") ct.checksum = flag(name, value);
    else if (key == "tcp_loose") ct.tcp.loose = flag(name, value);
    else if (key == "tcp_be_liberal") ct.tcp.be_liberal = flag(name, value);
    else if (key == "tcp_ignore_invalid_rst") ct.tcp.ignore_invalid_rst = flag(name, value);
    else if (key == "tcp_max_retrans") ct.tcp.max_retrans = static_cast<uint8_t>(number(name, value, 0, 255));
    else {
      for (const Timeout& to : kTimeouts) {
        if (key != to.suffix) continue;
        const uint32_t v = number(name, value, 0, UINT32_MAX / 1000);
        if (to.plain != nullptr) ct.*to.plain = v;
        else if (to.tcp != nullptr) ct.tcp.timeouts.*to.tcp = v;
        else ct.sctp.*to.sctp = v;
        return "";
      }
      return fmt::format("{}: not a setting the model follows; ignored", name);
    }
    return "";
  }
  if (name == "net.ipv4.ip_forward" || name == "net.ipv4.conf.all.forwarding") {
    t.host.ip_forward = flag(name, value);
    return "";
  }
  constexpr std::string_view kConf = "net.ipv4.conf.";
  if (name.starts_with(kConf)) {
    const std::string_view rest = std::string_view(name).substr(kConf.size());
    const size_t dot = rest.rfind('.');
    if (dot == std::string_view::npos) return fmt::format("{}: unknown setting; ignored", name);
    const std::string_view iface = rest.substr(0, dot);
    const std::string_view key = rest.substr(dot + 1);
    if (key == "route_localnet") {
      const bool on = flag(name, value);
      for (Interface* i : conf_ifaces(t.host, name, iface)) {
        if (on || iface != "all") i->route_localnet = on;  // all=1 turns every one on; all=0 leaves each as set
      }
      return "";
    }
    if (key == "rp_filter" || key == "accept_source_route") {
      if (number(name, value, 0, 2) == 0) return "";
      return fmt::format("{}={}: not modelled (sources are validated as with rp_filter=0 and "
                         "accept_source_route=0); ignored", name, value);
    }
    return "";  // the many per-interface settings that do not concern netfilter
  }
  if (name == "net.bridge.bridge-nf-call-iptables") {
    t.host.bridge_nf_call_iptables = flag(name, value);
    return "";
  }
  if (name.starts_with("net.bridge.bridge-nf-")) {
    // ip6tables and arptables see no frame here (IPv6 and ARP are not
    // replayed); filter-vlan-tagged and filter-pppoe-tagged only add tagged
    // frames, which the model bridges as untagged ones.
    if (name == "net.bridge.bridge-nf-call-ip6tables" || name == "net.bridge.bridge-nf-call-arptables") {
      (void)number(name, value, 0, 1);
      return "";
    }
    if (number(name, value, 0, 1) == 0) return "";
    return fmt::format("{}={}: not modelled (tagged frames on a bridge are taken as untagged); ignored", name,
                       value);
  }
  return fmt::format("{}: unknown setting; ignored", name);
}

std::string apply_sysctl_assignment(std::string_view assignment, SysctlTarget target) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos)
    throw std::invalid_argument(fmt::format("--sysctl \"{}\": expected NAME=VALUE", assignment));
  return apply_sysctl(trim(assignment.substr(0, eq)), assignment.substr(eq + 1), target);
}

std::vector<std::string> apply_sysctls_text(std::string_view text, const std::string& file, SysctlTarget target) {
  std::vector<std::string> warnings;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const std::string_view line = trim(text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument(fmt::format("{}:{}: expected NAME = VALUE", file, line_no));
    const std::string_view name = trim(line.substr(0, eq));
    if (!name.starts_with("net.netfilter.") && !name.starts_with("net.ipv4.") && !name.starts_with("net.bridge.") &&
        !name.starts_with("net/netfilter/") && !name.starts_with("net/ipv4/") && !name.starts_with("net/bridge/"))
      continue;
    try {
      std::string w = apply_sysctl(name, line.substr(eq + 1), target);
      // A dump holds hundreds of net.ipv4 settings the model has no use for.
      if (!w.empty() && w.find("unknown setting") == std::string::npos && w.find("not a setting") == std::string::npos)
        warnings.push_back(fmt::format("{}:{}: {}", file, line_no, w));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("{}:{}: {}", file, line_no, e.what()));
    }
  }
  return warnings;
}

}  // namespace nfb
