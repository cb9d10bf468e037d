// ClassBench rule sets and traces, read into the same model as iptables rules.
//
// A ClassBench rule is a 5-tuple filter (first line = highest priority):
//
//     @SRC/LEN <tab> DST/LEN <tab> SP_LO : SP_HI <tab> DP_LO : DP_HI <tab> 0xPROTO/0xMASK <tab> 0xFLAGS/0xMASK
//
// It becomes one Rule of the user chain kClassBenchChain in a filter table:
// -s/-d prefixes, protocol (mask 0x00 = any, 0xFF = exact; nothing else
// occurs in ClassBench), a PortsMatch when a port range is not the full
// range, and target ACCEPT. The flags column is read and checked but not
// kept: like DPDK's test-acl we ignore it. Rule i of the chain is the rule on
// line i + 1, so a first match's index is the ClassBench filter number.
//
// A trace line is `SRC DST SPORT DPORT PROTO [FLAGS] FILTER_ID`, decimal. Each
// becomes a PacketKey with addresses, ports and protocol set (ports are set
// for every protocol: ClassBench matches ports whatever the protocol) and
// the FILTER_ID kept beside it. FILTER_ID is the rule the header was
// generated from, not necessarily its first match: take the truth from the
// linear walk.
//
// Files may be xz-compressed (".xz"). Errors throw LoadError with
// FILE:LINE:COL and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "classifier/classifier.h"
#include "packet/packet_key.h"
#include "rules/rule.h"

namespace nfb {

/// Name of the filter-table user chain that holds a ClassBench rule set.
inline constexpr const char* kClassBenchChain = "CLASSBENCH";

/// Parses ClassBench rules from `text` (`file` names it in errors).
Ruleset read_classbench_rules(std::string_view text, const std::string& file);
/// Reads a ClassBench rule file (optionally .xz).
Ruleset load_classbench_rules(const std::string& path);

/// The chain holding the rules of a ruleset read by read_classbench_rules().
const Chain& classbench_chain(const Ruleset& rules);

/// Prints a chain in ClassBench format (the flags column as 0x0000/0x0000).
/// Throws std::invalid_argument naming the rule when a rule uses anything a
/// ClassBench filter cannot say (inversion, interfaces, other modules,
/// non-prefix masks).
std::string write_classbench_rules(const Chain& chain);

struct ClassBenchTrace {
  std::vector<PacketKey> keys;
  std::vector<uint32_t> filter_ids;  // the trace's last column, per key
};

/// Parses a ClassBench trace from `text`.
ClassBenchTrace read_classbench_trace(std::string_view text, const std::string& file);
/// Reads a ClassBench trace file (optionally .xz).
ClassBenchTrace load_classbench_trace(const std::string& path);

/// The boxes of a ClassBench chain: one per rule, from its -s/-d prefixes,
/// protocol and PortsMatch. Throws std::invalid_argument naming the rule
/// when it holds anything else.
RuleBoxes classbench_boxes(const Chain& chain);

/// A ClassBench header as a classifier key (addresses, ports, protocol; the
/// other dimensions 0).
ClassifierKey classbench_key(const PacketKey& key) noexcept;

}  // namespace nfb
