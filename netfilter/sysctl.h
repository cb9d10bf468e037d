// Host knobs by their sysctl names: `--sysctl NAME=VALUE` and `--sysctls
// FILE` (the output of `sysctl -a`) set the conntrack configuration and the
// host model as the kernel's settings of the same names would.
//
// Honoured (defaults are the kernel's, see CtConfig and HostSpec):
//   net.netfilter.nf_conntrack_max, _buckets, _checksum, _tcp_loose,
//   _tcp_be_liberal, _tcp_ignore_invalid_rst, _tcp_max_retrans,
//   _tcp_timeout_* (every TCP state, max_retrans, unacknowledged),
//   _udp_timeout, _udp_timeout_stream, _icmp_timeout, _generic_timeout,
//   _sctp_timeout_* (every SCTP state), _gre_timeout, _gre_timeout_stream;
//   net.ipv4.ip_forward (also net.ipv4.conf.all.forwarding);
//   net.ipv4.conf.IFACE.route_localnet and .all. (all: every interface);
//   net.bridge.bridge-nf-call-iptables (netfilter/host.h, "Bridges").
// Known but not modelled: a value other than the model's fixed one is
// reported (rp_filter, accept_source_route, bridge-nf-filter-vlan-tagged):
// the model validates sources as rp_filter=0.
// Control plane: allocates, throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "netfilter/conntrack.h"
#include "netfilter/host.h"

namespace nfb {

/// Where the settings go.
struct SysctlTarget {
  CtConfig& conntrack;
  HostSpec& host;
};

/// Applies NAME=VALUE (NAME with dots or slashes, as `sysctl` takes it).
/// Returns "" when applied, else a warning: an unknown name, or a known one
/// whose value the model does not follow. Throws std::invalid_argument for
/// a value that is not a number in range, or an interface the host lacks,
/// naming the setting.
std::string apply_sysctl(std::string_view name, std::string_view value, SysctlTarget target);

/// `NAME=VALUE` as one argument (`--sysctl`).
std::string apply_sysctl_assignment(std::string_view assignment, SysctlTarget target);

/// Every line `NAME = VALUE` of a `sysctl -a` text. Names outside net.netfilter,
/// net.ipv4 and net.bridge are skipped silently (a whole dump holds thousands);
/// the warnings of the others are returned, prefixed with FILE:LINE. Throws
/// std::invalid_argument (FILE:LINE: ...) for a malformed line or value.
std::vector<std::string> apply_sysctls_text(std::string_view text, const std::string& file, SysctlTarget target);

}  // namespace nfb
