// A host folder: what a host's netfilter path depends on, in one directory
// (written by `nfbench snapshot`, tools/snapshot.h; read by `nfbench replay
// --host DIR` and by the kernel tests, whose Docker host is committed as one:
// tests/data/hosts/kernel-docker-host).
//
// The files (every one optional but iptables.save):
//   iptables.save   `iptables-legacy-save -c` (`iptables-save -c` when the
//                   legacy tables are empty: an nft-backed host)
//   ip-addr.json    `ip -d -j addr` (interfaces, addresses, bridges and
//                   their ports)
//   ip-route.json   `ip -j route`
//   ip-link.json    `ip -d -j link` (kept for people; ip-addr.json has
//                   what the model reads)
//   sysctl.txt      `sysctl -a`, only net.netfilter, net.ipv4 and net.bridge
//   ipset.save      `ipset save`
//   snapshot.txt    when, where, and what each program said or why a file
//                   is missing
// Control plane: reads files, throws.
#pragma once

#include <string>
#include <vector>

#include "netfilter/conntrack.h"
#include "netfilter/host.h"

namespace nfb {

/// The files of a host folder, by their roles ("" when absent).
struct HostFolder {
  std::string dir;
  std::string rules;      // iptables.save
  std::string addrs;      // ip-addr.json
  std::string routes;     // ip-route.json
  std::string links;      // ip-link.json
  std::string sysctls;    // sysctl.txt
  std::string ipsets;     // ipset.save

  /// The folder's files. Throws std::invalid_argument naming the folder
  /// when it is not a directory or has no iptables.save, or when exactly
  /// one of ip-addr.json and ip-route.json is there.
  static HostFolder open(const std::string& dir);

  /// The host it describes: its interfaces and routes (the default Docker
  /// host when the folder has none), with sysctl.txt applied to the host and
  /// to `conntrack`; sysctl.txt's warnings are appended to `warnings`. A
  /// sysctl.txt without net.bridge settings means br_netfilter is not
  /// loaded: bridge-nf-call-iptables off (unless a rule uses -m physdev,
  /// which loads it).
  /// Throws LoadError / std::invalid_argument naming the file.
  HostSpec host_spec(CtConfig& conntrack, std::vector<std::string>& warnings) const;
};

}  // namespace nfb
