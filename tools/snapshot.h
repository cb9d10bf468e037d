// nfbench snapshot: what a real host's netfilter path depends on, saved
// into one folder that `nfbench replay --host DIR` (and the kernel tests'
// hosts) read back.
//
// The folder (every file optional but iptables.save):
//   iptables.save   `iptables-legacy-save -c` (`iptables-save -c` when the
//                   legacy tables are empty: an nft-backed host)
//   ip-addr.json    `ip -j addr`
//   ip-route.json   `ip -j route`
//   ip-link.json    `ip -j link` (bridge ports and their masters; kept for
//                   the bridge path, which the model does not have yet:
//                   replay does not read it)
//   sysctl.txt      `sysctl -a`, only net.netfilter, net.ipv4 and net.bridge
//   ipset.save      `ipset save` (absent without the ipset program)
//   snapshot.txt    when, where, and what each program said or why a file
//                   is missing
#pragma once

#include <string>

namespace nfb {

/// The files of a host folder (see above), by their roles.
struct HostFolder {
  std::string rules;      // iptables.save
  std::string addrs;      // ip-addr.json, "" when absent
  std::string routes;     // ip-route.json, "" when absent
  std::string links;      // ip-link.json, "" when absent
  std::string sysctls;    // sysctl.txt, "" when absent
  std::string ipsets;     // ipset.save, "" when absent

  /// The folder's files. Throws std::invalid_argument naming the folder
  /// when it is not a directory or has no iptables.save, or when exactly
  /// one of ip-addr.json and ip-route.json is there.
  static HostFolder open(const std::string& dir);
};

/// Takes the snapshot into `dir` (created if missing; files in it are
/// replaced). Returns the lines of snapshot.txt's report. Throws
/// std::runtime_error when iptables-save cannot be run or fails, or the
/// folder cannot be written.
std::string take_snapshot(const std::string& dir);

}  // namespace nfb
