// Explain: one synthetic packet's way through the host's hooks and chains,
// told rule by rule, with the tuple as each chain saw it (so a DNAT in nat
// PREROUTING shows as the new destination in FORWARD) and the rule or
// policy that decided; then, when asked, the reply to it or a later packet
// of the same connection through the same pipeline (conntrack remembers).
//
//   tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0
//   udp 10.0.0.1:5353 -> 172.17.0.2:53 in docker0
//   icmp 203.0.113.5 -> 198.51.100.1 in eth0          (an echo request)
//
// The packet is a real frame (Ethernet, IPv4 with DF and TTL 64, a TCP SYN
// with a 64240 window, an empty UDP datagram or an ICMP echo, checksums
// right) run through Pipeline::process() with the kernel-style TRACE on: the
// explanation is the model's own walk, not a second reading of the rules.
//
// Control plane only: allocates, throws LoadError for a bad packet text
// (with the column) or an interface the host does not have.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "netfilter/host.h"
#include "netfilter/pipeline.h"
#include "rules/rule.h"

namespace nfb {

struct Probe {
  uint8_t proto = 6;  // kProtoTcp, kProtoUdp or kProtoIcmp
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  std::string in_iface;
  uint8_t tcp_flags = 0x02;  // SYN; a later packet: ACK
  uint32_t seq = kClientIsn;  // TCP sequence and acknowledgement numbers
  uint32_t ack = 0;
  uint8_t icmp_type = 8;      // echo request; its reply: 0

  /// The initial sequence numbers of the client (the first probe) and of
  /// the side that answers it.
  static constexpr uint32_t kClientIsn = 1000;
  static constexpr uint32_t kServerIsn = 5000;
};

/// The client's next segment of the probe's connection, after the reply:
/// an ACK with the sequence numbers a handshake leaves.
Probe later_probe(const Probe& first);

/// Parses "PROTO SRC[:PORT] -> DST[:PORT] in IFACE" (ports for tcp and udp
/// only). `what` names the text in errors ("--packet").
Probe parse_probe(std::string_view text, const std::string& what);

/// "tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0".
std::string format_probe(const Probe& p);

/// One TRACE event of the walk: the chain, the rule (0 for a policy or a
/// return), its text, and the tuple the chain saw.
struct ExplainStep {
  std::string table;
  std::string chain;
  std::string kind;  // "rule", "return" or "policy"
  uint32_t rulenum = 0;
  std::string rule;   // `-A CHAIN ...` for a rule, "policy ACCEPT" etc.
  std::string tuple;  // "tcp 203.0.113.5:40000 -> 172.17.0.2:6379 in eth0 out docker0"
};

struct Explanation {
  Probe probe;
  std::vector<ExplainStep> steps;
  Fate fate = Fate::DroppedByRule;
  uint8_t ct_state = 0;
  std::string out_iface;  // Forwarded: where it leaves
  Probe leaves;           // emitted: the packet as it leaves (after NAT); what a reply answers
  bool emitted = false;
};

/// Runs the probe through `pipeline` (whose ruleset is `rules`, compiled
/// for `host`) at time ts_ns. Throws LoadError when the host has no such
/// interface.
Explanation explain_probe(Pipeline& pipeline, const Ruleset& rules, const HostModel& host, const Probe& probe,
                          uint64_t ts_ns);

/// The answer to an emitted packet: from its destination to its source,
/// arriving on the interface it left by (INPUT: the interface it came in
/// on); TCP SYN gets SYN+ACK, a later segment ACK, an echo request its reply.
Probe reply_probe(const Explanation& e);

/// Human-readable: the probe, each step with its rule and tuple, the fate.
std::string format_explanation(const Explanation& e);

/// The probe as an Ethernet frame to the ingress interface's MAC.
std::vector<uint8_t> probe_frame(const Probe& p, const HostModel& host);

}  // namespace nfb
