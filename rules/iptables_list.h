// Counters as `iptables -L -v -n -x` shows them.
//
// The pipeline fills per-rule and per-policy counters into a Ruleset; this
// writer prints one table of it byte for byte as `iptables-legacy -t TABLE -L
// -v -n -x` (iptables 1.8.9) prints the same rules with the same counters
// loaded in the kernel. It is the second counter form next to `iptables-save
// -c` (write_iptables_save with counters, iptables_save.h).
//
// Layout, as measured on the kernel (tests/data/iptables/list holds the
// kernel's own output for every module and target of rule.h):
//
//   Chain INPUT (policy ACCEPT 123 packets, 4567 bytes)
//       pkts      bytes target     prot opt in     out     source               destination
//         12      840 ACCEPT     6    --  eth0   *       10.0.0.1             0.0.0.0/0            tcp dpt:22
//   <blank line>
//   Chain DOCKER (1 references)
//   ...
//
// - Chains: built-in chains in hook order, then user chains sorted bytewise by
//   name; one blank line between chains. A built-in chain's header gives its
//   policy and policy counters, a user chain's the number of rules of the
//   table that jump or go to it.
// - Columns are fixed-width and overflow to the right when a value is longer
//   (every column but the last is followed by at least one space): pkts and
//   bytes right-aligned in 8 (exact numbers, -x), target 9, prot 5 after a
//   `!`/space, opt `--`/`-f`/`!f`, in and out 6 (`*` for any, a `!` prefix
//   inside the column, `+` for a wildcard), source and destination 19 after a
//   `!`/space (`0.0.0.0/0`, a bare address for /32, `a.b.c.d/N`, or a dotted
//   mask when it has holes). The destination column is always padded, so a
//   line without match text ends in spaces, as the kernel's does.
// - -n prints the protocol as a number (`6`, `0` for all), never a name.
// - After the columns: `[goto] ` for -g, then each match's text in rule order,
//   then the target's text, each item led by one space (`tcp dpt:80`,
//   `ctstate RELATED,ESTABLISHED`, `/* comment */`, `to:172.17.0.2:6379`...).
//   -j NOTRACK shows as target `CT` with the text `NOTRACK`.
// - Rules without counters print `0 0`, as after a restore without -c.
//
// Control-plane code: allocates freely; cost O((rules + chains) log chains)
// plus the text's length.
#pragma once

#include <string>

#include "rules/rule.h"

namespace nfb {

/// The whole `iptables -t T -L -v -n -x` output for `table`, ending in '\n'.
/// Throws LoadError (at the rule's location) for a rule iptables cannot show:
/// one with a PortsMatch (ClassBench input).
std::string write_iptables_list(const Table& table);

/// The same for table `table` of `ruleset`; a table the ruleset does not hold
/// prints as the kernel shows a fresh one (built-in chains, policy ACCEPT,
/// zero counters, no rules).
std::string write_iptables_list(const Ruleset& ruleset, TableId table);

/// One rule's line without the trailing '\n' (counters, columns, match and
/// target text). Throws LoadError like write_iptables_list.
std::string write_iptables_list_rule(const Rule& rule);

}  // namespace nfb
