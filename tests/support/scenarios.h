// Traffic scenarios for the netfilter differential tests: a ruleset and a
// fixed sequence of frames arriving at the default Docker host
// (tests/support/kernel_host.h), fed identically to the real kernel and to the model.
//
// Idea: each scenario is built from tests/support/frame_builder.h by a small TCP/UDP
// conversation builder that keeps sequence and acknowledgement numbers,
// IP ids and checksums right, so that connection tracking sees traffic a real
// client, container or server would send; malformed frames are malformed on
// purpose and say so. Variable parts (client ports, initial sequence numbers,
// IP ids) come from std::mt19937 with a fixed seed, used through its raw
// output only (whose sequence the C++ standard fixes), so every build on
// every platform produces byte-identical frames.
//
// Each frame is an InjectedFrame: the host interface it arrives on and the
// whole Ethernet frame, addressed to that interface's MAC from the peer that
// sends it. Replies from containers arrive on their bridge with the
// container's (post-DNAT) address; replies from outside servers arrive on
// eth0 addressed to the host (198.51.100.1) and the port the kernel's
// MASQUERADE kept (it keeps the source port when the reply tuple is free,
// which the scenarios make sure of).
//
// Rulesets come from data/rulesets/ under $NFB_SOURCE_ROOT (set by meson
// test; the current directory when unset).
//
// Test code: allocates, throws std::runtime_error when a bundled file is
// missing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tests/support/kernel_host.h"

namespace nfb {

struct Scenario {
  std::string name;
  std::string ruleset;  // iptables-save text, given to both sides as is
  std::vector<InjectedFrame> frames;
  /// The kernel's conntrack table after the frames is recorded too
  /// (NAME.conntrack, see recorded_conntrack_lines()) and compared entry by
  /// entry.
  bool conntrack_table = false;
  /// The host's IP sets (`ipset save` text), restored before the rules
  /// (kernel) and given to the model as MatchOptions::ipsets.
  std::string ipsets = {};
  /// net.bridge.bridge-nf-call-iptables in the host namespace (kernel) and
  /// HostSpec::bridge_nf_call_iptables (model). Off for every scenario but
  /// the bridge ones: frames addressed to the host take the same way either
  /// way, and the kernel tests' host was built without it.
  bool br_netfilter = false;
  /// net.ipv4.ip_forward (both sides); on for every scenario but one.
  bool ip_forward = true;
  /// Hairpin mode on the containers' bridge ports (kernel: `ip link set
  /// dev PORT type bridge_slave hairpin on`; model: Interface::hairpin). Off
  /// (the kernel's default, and the kernel tests' host folder) but in
  /// bridge_service and bridge_no_forward.
  bool hairpin = false;
};

/// The text of data/rulesets/<file_name>. Throws std::runtime_error when it
/// cannot be read.
std::string bundled_ruleset(std::string_view file_name);

/// Applies `iptables [-t TABLE] -I CHAIN [N] SPEC` and `iptables [-t TABLE]
/// -A CHAIN SPEC` command lines (blank and '#' lines skipped; the program
/// name may be iptables or iptables-legacy) to an iptables-save text, one
/// after the other, as the commands would change the loaded ruleset: -I
/// places `-A CHAIN SPEC` before the chain's N-th rule (default 1), -A after
/// its last rule. SPEC is kept verbatim. Throws std::invalid_argument for any
/// other line, a table missing from the text, a chain not declared in it, or
/// N beyond the chain's length + 1.
std::string apply_iptables_commands(std::string_view save_text, std::string_view commands);

/// The seed case: docker-28.save plus the naive DOCKER-USER rule of
/// docker-user-fix.rules (`-p tcp --dport 10000 -j DROP`, which never matches
/// because FORWARD sees the post-DNAT port 6379). Traffic: three outside
/// clients (203.0.113.10-12) open a connection to 198.51.100.1:10000, each
/// SYN retransmitted once before redis (172.17.0.2:6379, on docker0) answers,
/// then a Redis PING/PONG and a FIN close from both ends; 10 frames each, the
/// same frames in all seed_case_* scenarios.
Scenario seed_case_naive();

/// The seed case with the documented fix instead: `-p tcp -m conntrack
/// --ctorigdstport 10000 --ctdir ORIGINAL -j DROP` first in DOCKER-USER.
Scenario seed_case_fixed();

/// The seed case with the other fix of docker-user-fix.rules, matching the
/// post-DNAT tuple: `-d 172.17.0.2/32 -p tcp -m tcp --dport 6379 -j DROP`.
Scenario seed_case_post_dnat();

/// The mixed traffic (mixed_traffic_frames) on docker-27.save / docker-28.save.
Scenario docker27_mixed();
Scenario docker28_mixed();

/// CONNMARK and marks on the seed case's frames: mangle restores and saves
/// the entry's mark in PREROUTING, adds bits in POSTROUTING; mangle FORWARD,
/// POSTROUTING and DOCKER-USER count by mark and connmark, and DOCKER-USER
/// drops redis traffic whose entry is not marked.
Scenario connmark_marks();

/// -m recent on docker-28.save (tests/support/scenarios.cpp kRecentRules):
/// a client-affinity list with a /24 mask in nat DOCKER, a brute-force
/// limit in DOCKER-USER (--update --hitcount 3 drops a client's 4th new
/// connection), --remove on RSTs, --rttl, ! --rcheck, --hitcount and a
/// --rdest list filled by container egress. Traffic: recent_traffic_frames.
Scenario recent_lists();
/// Three clients of published 10000 (four connections from one, the last
/// SYN sent twice; two from another with a stray RST between; lone SYNs of
/// TTL 50, 64, 50 from a third) and a container's HTTP egress.
std::vector<InjectedFrame> recent_traffic_frames();

/// -m ttl, tos, dscp and ecn on docker-28.save (kIpHeaderRules): counts by
/// TTL before and after forwarding, TOS, DSCP and ECN in mangle, nat counts
/// low-TTL probes, DOCKER-USER drops DSCP CS1. Traffic:
/// ip_header_traffic_frames.
Scenario ip_header_matches();
/// Traceroute probes (TCP TTL 1-3 to 10000, UDP TTL 1-2 to 5353, UDP TTL 1
/// to a closed host port), UDP to 5353 with TOS 0x10, 0xba, 0xbb, 0x20,
/// 0x01, an ECN-setup SYN and a SYN with ECT(0), a container's egress with
/// TOS 0x10.
std::vector<InjectedFrame> ip_header_traffic_frames();

/// TOS, DSCP, TCPMSS (--set-mss and --clamp-mss-to-pmtu), NFLOG and CHECKSUM
/// on docker-28.save with mixed_traffic_frames (kMangleTargetRules): the
/// rewritten TOS and MSS are counted by later matches (-m string finds the
/// MSS option bytes).
Scenario mangle_targets();

/// -m hashlimit on docker-28.save (kHashlimitRules): shared SYN buckets
/// (an --upto and an --above rule drain one table), a rate-match DNS
/// window, ICMP by a port mode, a brute-force DROP per /24 and port, a full
/// table dropping its 4th source, a bucket whose cap wrapped, a byte
/// bucket with refills, INPUT by source port. Traffic:
/// hashlimit_traffic_frames.
Scenario hashlimit_limits();
/// Three SYNs to 10000 from each of A and B (one /24), twelve DNS queries
/// from D to 5353 with dns's answers, two SYNs from C, a whole connection
/// from A, three pings to the host and SYNs to its port 22 from A and C,
/// 36 DNS queries from redis to one public server.
std::vector<InjectedFrame> hashlimit_traffic_frames();

/// -m connlimit on docker-28.save (kConnlimitRules): two open connections
/// per source /24 to 10000 (REJECT beyond), --connlimit-upto, per
/// destination on new UDP flows, every non-TCP packet, one SSH attempt per
/// source in INPUT, and SYNs in mangle. Traffic: connlimit_traffic_frames.
Scenario connlimit_limits();
/// A keeps two connections to 10000, a third SYN and B's (same /24) are
/// refused; three DNS
/// flows from C to 5353; SSH SYNs to the host (A twice, C once).
std::vector<InjectedFrame> connlimit_traffic_frames();

/// -m set on docker-28.save with a host's sets (kIpsets: a hash:net
/// blocklist with a nomatch hole and counters, a hash:ip allowlist,
/// hash:ip,port services, a bitmap:port, hash:net,port and a list:set).
/// Traffic: ipset_traffic_frames.
Scenario ipset_sets();

/// Bridges (kBridgeRules, bridge_frames): a service 10.96.0.10 whose
/// endpoint (web) shares docker0 with its client (redis), so its DNAT sends
/// the packet back out docker0 (the hairpin); station-to-station TCP between
/// them; TTL-1 probes to the service, to web and to the outside; an outside
/// ping of redis; redis pinging the host; web reaching the outside; redis
/// reaching itself through a second service 10.96.0.11 (SYN sent twice),
/// which needs hairpin mode on its port. mangle
/// and filter count by -m physdev at every hook and by -i/-o and TTL in
/// FORWARD (policy DROP). bridge_hairpin with bridge-nf-call-iptables=1
/// (br_netfilter: the hairpin and station traffic are bridged through
/// FORWARD, the TTL-1 probes to the service and web are forwarded), then the
/// same with it off (bridge_plain: station traffic never reaches netfilter,
/// the hairpin is routed and its TTL-1 probe dies).
std::vector<InjectedFrame> bridge_frames();
Scenario bridge_hairpin();
/// bridge_hairpin's rules without the -m physdev and -m ttl ones (a
/// kube-proxy node's shape: nothing there looks at ports or TTLs), so
/// established bridged flows take the fast path; hairpin mode on the ports
/// (as the CNI bridge plugin sets it), so redis reaches itself.
Scenario bridge_service();
/// bridge_service with ip_forward=0: what a bridged DNAT (and station
/// traffic) does on a host that does not route.
Scenario bridge_no_forward();
Scenario bridge_plain();
/// Conntrack zones from raw's CT templates on docker-28.save (kZoneRules,
/// zone_frames): each bridge's ingress gets an ORIGINAL-only zone
/// (--zone-orig 1 and 2), published DNS a both-way zone from the mark
/// (--zone mark), pings to the host zone 6, SSH a REPLY-only zone, ICMP
/// errors from 192.0.2.53 zone 5. Traffic: a published connection whose
/// first SYN also arrives on docker0 (the same tuple in another zone: a
/// second connection, not DNATed), a container's egress connection, DNS
/// whose answers fall in another zone than the queries (each answer opens
/// a connection), port-unreachable errors in the default zone (RELATED) and
/// in zone 5 (INVALID), two pings, a retransmitted SSH SYN, and udp 7777
/// from eight clients DNATed to a range of two containers (the address
/// hash is keyed with the zone: 4 for the last four). mangle
/// PREROUTING counts the ctstates; the conntrack table shows zone=,
/// zone-orig= and zone-reply=.
std::vector<InjectedFrame> zone_frames();
Scenario ct_zones();
/// SYNs to 10000 from listed, excepted (nomatch), single-listed and allowed
/// sources; DNS to 5353 answered; SSH SYNs and pings to the host; a whole
/// connection from the allowed source.
std::vector<InjectedFrame> ipset_traffic_frames();

/// The frames of the seed case (seed_case_*).
std::vector<InjectedFrame> seed_case_frames();

/// Mixed traffic at the default Docker host, in this order:
///  1. two outside clients using published TCP 10000 (handshake with redis's
///     SYN-ACK on docker0, data both ways, an out-of-window RST from the
///     client in the first one, FIN close both ways);
///  2. published UDP 5353: two queries from outside, answered by dns
///     (172.18.0.2:53) on br-5c0a8c6e1d2f;
///  3. unpublished ports on the host: 3 SYNs to 22 (retransmits), UDP to 9999,
///     a SYN to 6379 and to 8080 on 198.51.100.1;
///  4. direct access to container addresses from outside (172.17.0.2:6379
///     with a retransmitted SYN, redis's SYN-ACK and the client's ACK;
///     172.17.0.2:22; UDP to 172.18.0.2:53);
///  5. container egress through MASQUERADE with replies on eth0: redis ->
///     93.184.216.34:80 (HTTP, FIN close), web -> 8.8.8.8:53 (DNS);
///  6. ICMP echo: outside -> host, outside -> 172.17.0.2, web -> 8.8.8.8 with
///     the reply, redis -> 172.17.0.1;
///  7. ICMP errors: port unreachable from 192.0.2.53 about dns's egress UDP
///     flow (RELATED), and one about a flow nobody knows;
///  8. container-to-host and between-bridge traffic: redis -> 172.17.0.1:53,
///     redis -> 198.51.100.1:10000 (hairpin, no DNAT from docker0),
///     redis -> 172.18.0.2:53, dns -> 172.17.0.3:80 SYN;
///  9. invalid TCP flag combinations to 10000: SYN+FIN, no flags, SYN+RST,
///     FIN+PSH+URG, and SYN+FIN straight to 172.17.0.3:80;
/// 10. mid-stream pick-ups: a lone ACK and data to 10000 from an unknown
///     connection, then redis's answer; a lone ACK to 22;
/// 11. stray RSTs: RST and RST+ACK for connections nobody knows;
/// 12. bad checksums: a TCP SYN to 10000 with a bad checksum then the same
///     SYN with a good one (and redis's SYN-ACK), UDP to 5353 bad then good,
///     UDP with no checksum (0), an ICMP echo with a bad checksum, a SYN with
///     a bad IPv4 header checksum (the kernel drops it before any hook), and
///     a container's egress SYN bad then good;
/// 13. the localhost-published port from outside: two SYNs to
///     127.0.0.1:8080 on eth0 and web's SYN-ACK on docker0.
/// 96 frames.
std::vector<InjectedFrame> mixed_traffic_frames();

/// Fragmented traffic (fragment_traffic_frames) on docker-28.save.
Scenario docker28_fragments();

/// The reassembly rules the kernel was measured to follow
/// (fragment_edge_frames) under a ruleset of counting rules only: raw `-f`,
/// `-p udp` and `-m length --length 1501:65535`, mangle `--ctstate NEW`
/// (which turns conntrack and defrag on), filter INPUT by interface and
/// source MAC, FORWARD to docker0.
Scenario fragment_edge_cases();

/// Fragmented traffic at the default Docker host (the kernel reassembles it
/// before raw PREROUTING), in this order:
///  1. published UDP 5353: a query in 2 fragments in order, dns's answer in 3
///     fragments, the last first;
///  2. a query in 3 fragments out of order (middle, last, first), answered
///     unfragmented;
///  3. published TCP 10000: after the handshake, a 1460-byte segment from
///     the client in 2 fragments (a 1280-byte MTU on the way), redis's ACK,
///     redis's 1400-byte answer in 2 fragments (second first), FIN close;
///  4. overlapping fragments (the second overlaps the first: both go, and
///     the last starts a datagram that never completes), then a good query
///     from the same client;
///  5. incomplete datagrams: a first fragment alone; first and last without
///     the middle;
///  6. a duplicated middle fragment (the datagram completes);
///  7. 2 fragments straight to 172.17.0.2 from outside (raw DROP);
///  8. a 3000-byte ICMP echo to the host in 3 fragments;
///  9. web's query to 8.8.8.8 in 2 fragments (second first) through
///     MASQUERADE, and the answer in 2 fragments on eth0.
/// 41 frames.
std::vector<InjectedFrame> fragment_traffic_frames();

/// Reassembly edge cases, UDP from 203.0.113.90 to 198.51.100.1:9999 unless
/// said otherwise, each case with its own port and IP id:
///  1. three runs, then a fragment across two of them: overlap;
///  2. the same pieces in order (one run): a duplicate, then complete;
///  3. a 4-byte fragment with MF discards the datagram;
///  4. a second last fragment with another end discards it;
///  5. a fragment beyond the last fragment discards it;
///  6. ECT(0) + CE completes; Not-ECT + ECT(0) is discarded;
///  7. one datagram over eth0 (the first fragment) and docker0 (the others,
///     from redis's MAC; the last one arrives last);
///  8. a datagram of 65620 bytes once reassembled (45 fragments): too big;
///  9. to 172.17.0.2 (forwarded): first fragment with TTL 1 (dies in
///     ip_forward), and another datagram whose second fragment has TTL 1;
/// 10. a plain 2-fragment datagram.
/// 86 frames.
std::vector<InjectedFrame> fragment_edge_frames();

/// String matching (string_traffic_frames) on docker-28.save plus counting
/// -m string rules in raw PREROUTING and DOCKER-USER (and one DROP): plain,
/// hex and mixed patterns, bm and kmp, --icase, --from/--to at the edges of
/// the first payload bytes (offsets count from the IP header: 20 + 32 bytes
/// of TCP header with timestamps puts the payload at 52), negation, patterns
/// that are header bytes (the published port 10000 before DNAT, 6379 after).
Scenario string_match();

/// Payload traffic for string_match(), in this order:
///  1. a Redis client on published 10000: handshake, PING, ping, PiNg
///     (answered), a command holding DROPME (dropped), one ending in TAIL,
///     the answers from redis on docker0, FIN close;
///  2. a second client: " *1 ... PING" (one byte later), a 1400-byte segment
///     ending in PING, FIN close;
///  3. two DNS queries over published UDP 5353 (ping.example.com,
///     www.EXAMPLE.org) and dns's answers on br-5c0a8c6e1d2f.
/// 31 frames.
std::vector<InjectedFrame> string_traffic_frames();

/// SCTP, UDP-Lite, DCCP and GRE on the default Docker host (sctp_traffic_frames)
/// on docker-28.save
/// plus a published SCTP port 10000 -> 172.17.0.2:6379 (DNAT by -m
/// multiport, and its DOCKER ACCEPT) and counting rules: -p sctp with each
/// --ctstate, DNAT, --ctstatus ASSURED / SEEN_REPLY and -m state in
/// DOCKER-USER (which ends by dropping INVALID SCTP), the same and the two
/// ports in INPUT; -p udplite, -p dccp and -p gre by ctstate. Records the
/// conntrack table.
Scenario sctp_probes();

/// SCTP traffic at the default Docker host, in this order:
///  1. a whole association on published 10000 (INIT, INIT_ACK from redis,
///     COOKIE_ECHO, COOKIE_ACK, DATA/SACK both ways, HEARTBEAT and its ACK,
///     SHUTDOWN, SHUTDOWN_ACK, SHUTDOWN_COMPLETE);
///  2. another: an INIT with a bad CRC32c, then good twice; an INIT_ACK with
///     a wrong tag, then right; COOKIE_ECHO+DATA, COOKIE_ACK+SACK; DATA with a
///     wrong tag, a zero-length chunk, DATA+INIT; redis's ABORT; DATA after it;
///  3. out of the blue to 10000: DATA, ABORT, COOKIE_ECHO; a SHUTDOWN_ACK;
///     a HEARTBEAT, redis's HEARTBEAT_ACK, DATA;
///  4. to the host's port 9999 (no SCTP stack): INIT twice, an INIT with a
///     bad CRC32c, an 8-byte header, a packet without chunks;
///  5. redis to 93.184.216.34:9899 through MASQUERADE: the handshake, DATA,
///     an ICMP port unreachable about it, redis's ABORT with the T bit;
/// and the other protocols with their own trackers in the kernel:
///  6. UDP-Lite to the host's port 7000: summed as the kernel verifies it
///     (pseudo header protocol 17), summed as RFC 3828 says (136), coverage
///     4, checksum 0;
///  7. redis's UDP-Lite to 8.8.8.8:7000 through MASQUERADE, the answer, and
///     redis again;
///  8. a DCCP-Request to the host (generic tracking on this kernel);
///  9. redis's GRE (version 0) to 192.0.2.99 through MASQUERADE, the answer,
///     redis again;
/// 10. PPTP's GRE (version 1, call id 7) to the host, the same carrying IPv4
///     instead of PPP, a 4-byte version-0 GRE header.
/// 58 frames.
std::vector<InjectedFrame> sctp_traffic_frames();

/// Every scenario above, in the order declared.
std::vector<Scenario> all_scenarios();

/// One line about a frame, tcpdump-like, for messages and the recorded
/// .states files: `eth0 tcp 203.0.113.10:39629 > 198.51.100.1:10000 [S] len 60`
/// (TCP flags F S R P . U E W as tcpdump prints them, "none" for no flag;
/// len = the IP total length, what counters count), `icmp 8/0 id 6699 seq 1`,
/// `icmp 3/3 about udp A:P > B:Q`. A fragment adds `frag OFF+LEN [MF] id
/// ID` (its IP payload's offset and length) and shows no L4 fields when its
/// offset is not 0. Marks what is broken on purpose:
/// `bad-ip-checksum`, `bad-l4-checksum`, `no-udp-checksum`.
std::string describe_frame(const InjectedFrame& frame);

/// Where the kernel's recorded results live: tests/data/scenarios/ under
/// $NFB_SOURCE_ROOT. For each scenario NAME, NAME.kernel is `iptables-legacy-save
/// -c` after all its frames (comment lines removed) and NAME.states has one
/// line per frame: index, conntrack state (KernelDockerHost::trace_states),
/// describe_frame(). See tests/data/scenarios/README.md.
std::string recorded_scenarios_dir();

/// The kernel tests' Docker host (KernelDockerHost) as a host folder
/// (netfilter/host_folder.h): `nfbench snapshot` of its namespace, committed
/// in tests/data/hosts/kernel-docker-host. The model side of the scenarios
/// runs on it; kernel_host_test checks it against a live snapshot.
std::string kernel_tests_host_dir();

/// A `conntrack -L` listing (the kernel's, or ConntrackTable::dump()) as the
/// recordings hold it: one entry a line, the remaining timeout (third
/// field) replaced by '*', "zone=" fields dropped, the lines sorted. The
/// timeouts are compared apart (conntrack_timeouts()): the kernel's run in
/// real time, a replay on the frames' clock.
std::vector<std::string> recorded_conntrack_lines(std::string_view listing);

/// The remaining timeouts of the same listing, in the order of
/// recorded_conntrack_lines() (-1 for a line without one).
std::vector<long> conntrack_timeouts(std::string_view listing);

}  // namespace nfb
