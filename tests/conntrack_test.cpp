// Tests of the conntrack table: tuples, lookup from both directions,
// confirm/discard, expiry on the capture clock, table full (early drop and
// drop), the conntrack -L dump, NAT hooks (reply tuple, tuple_taken, SNAT/
// DNAT state bits), and UDP, ICMP (RELATED errors) and generic-protocol
// sequences replayed with the answers Linux 6.18 gave for the very same
// packets (KernelSequences.*). TCP sequences are in conntrack_tcp_test.cpp,
// which shares this file's replay harness (kept identical).
//
// How the kernel answers were obtained (netfilter/conntrack.md, "How the
// facts were measured"): each packet was sent with an AF_PACKET socket into a
// network namespace that forwards 10.201.0.0/16 to a sink namespace, with
// iptables-legacy rules in mangle PREROUTING counting `--ctstate` and
// `--ctdir`; after every packet the counters gave its ctstate and direction
// and `conntrack -L` the flow's entry. The conntrack table was flushed
// between sequences. Those outputs are pasted below verbatim: the replay
// feeds the same frames to ConntrackTable with timestamps 40 ms (dump) and
// 60 ms (next packet) apart, as in the measurement, and compares every
// answer and every conntrack -L line.
#include "netfilter/conntrack.h"
#include "netfilter/conntrack_tcp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "packet/frame_parser.h"
#include "tests/support/conntrack_replay.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

using test::Bytes;
using test::ip4;

// Packets of the measurement: tests/support/conntrack_replay.h.
using test::flag_bits;
using test::kC;
using test::kS;
using test::T;
using test::TcpOpt;
using test::TR;
using test::tcp_packet;
constexpr uint32_t kM = ip4(10, 201, 3, 1);
constexpr uint32_t kX = ip4(10, 201, 9, 9);

struct UdpOpt {
  std::size_t data = 0;
  std::optional<uint16_t> length{};  // UDP length field override
  bool bad = false;                  // corrupt the checksum
  bool zero_checksum = false;        // send checksum 0 ("none")
};
Bytes udp_packet(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, const UdpOpt& o) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoUdp,
                     .l4_checksum = o.zero_checksum ? test::L4Checksum::Leave
                                    : o.bad         ? test::L4Checksum::Corrupt
                                                    : test::L4Checksum::Fill},
                    test::udp({.sport = sp, .dport = dp, .payload = test::pattern(o.data),
                               .length = o.length}));
}
Bytes U(uint16_t sp, uint16_t dp, const UdpOpt& o = {}) { return udp_packet(kC, kS, sp, dp, o); }
Bytes UR(uint16_t sp, uint16_t dp, const UdpOpt& o = {}) { return udp_packet(kS, kC, sp, dp, o); }

struct IcmpOpt {
  uint32_t src = kC;
  uint32_t dst = kS;
  uint16_t seq = 1;
  bool bad = false;
};
// An ICMP query or answer with 16 bytes of data.
Bytes I(uint8_t type, uint8_t code, uint16_t id, const IcmpOpt& o = {}) {
  return test::ipv4({.src = o.src, .dst = o.dst, .proto = kProtoIcmp,
                     .l4_checksum = o.bad ? test::L4Checksum::Corrupt : test::L4Checksum::Fill},
                    test::icmp({.type = type, .code = code, .id = id, .seq = o.seq,
                                .payload = test::pattern(16)}));
}

struct ErrOpt {
  uint32_t src = kS;
  uint32_t dst = kC;
  bool bad = false;
  std::size_t quote = 28;  // bytes of the offending packet quoted (IP header + 8)
};
// An ICMP error quoting the start of `offending` (an IP packet).
Bytes E(uint8_t type, uint8_t code, const Bytes& offending, const ErrOpt& o = {}) {
  const std::size_t n = std::min(o.quote, offending.size());
  return test::ipv4({.src = o.src, .dst = o.dst, .proto = kProtoIcmp,
                     .l4_checksum = o.bad ? test::L4Checksum::Corrupt : test::L4Checksum::Fill},
                    test::icmp({.type = type, .code = code, .id = 0, .seq = 0,
                                .payload = Bytes(offending.begin(),
                                                 offending.begin() + static_cast<std::ptrdiff_t>(n))}));
}

// A packet of a protocol conntrack tracks generically.
Bytes G(uint32_t src, uint32_t dst, uint8_t proto, std::size_t n) {
  return test::ipv4({.src = src, .dst = dst, .proto = proto}, test::pattern(n));
}

// ---------------------------------------------------------------- replay

// The replay harness: tests/support/conntrack_replay.h.
using test::Replay;

TEST(KernelSequences, UdpStreamAfterTwoSeconds) {
  Replay r(41001);
  r.step("C>S", U(41001, 53, {.data = 20}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 mark=0 use=1");
  r.step("C>S again", U(41001, 53, {.data = 20}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 mark=0 use=1");
  r.step("S>C reply", UR(53, 41001, {.data = 40}),
         "ESTABLISHED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 mark=0 use=1");
  r.step("C>S after the reply, before 2 s", U(41001, 53, {.data = 20}),
         "ESTABLISHED", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 mark=0 use=1");
  r.sleep(2.2);
  r.step("C>S after 2 s", U(41001, 53, {.data = 20}),
         "ESTABLISHED", "ORIGINAL",
         "udp      17 119 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 [ASSURED] mark=0 use=1");
  r.step("S>C", UR(53, 41001, {.data = 40}),
         "ESTABLISHED", "REPLY",
         "udp      17 119 src=10.201.1.5 dst=10.201.2.5 sport=41001 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41001 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, UdpReplyAfterTwoSeconds) {
  Replay r(41002);
  r.step("C>S", U(41002, 53, {.data = 20}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41002 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41002 mark=0 use=1");
  r.sleep(2.2);
  r.step("S>C first reply after 2 s", UR(53, 41002, {.data = 40}),
         "ESTABLISHED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41002 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41002 mark=0 use=1");
  r.step("S>C again", UR(53, 41002, {.data = 40}),
         "ESTABLISHED", "REPLY",
         "udp      17 119 src=10.201.1.5 dst=10.201.2.5 sport=41002 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41002 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, UdpMalformed) {
  Replay r(41003);
  r.step("bad checksum", U(41003, 53, {.data = 20, .bad = true}),
         "INVALID", "-",
         "");
  r.step("length field beyond the packet", U(41003, 53, {.data = 20, .length = 40}),
         "INVALID", "-",
         "");
  r.step("length field below 8", U(41003, 53, {.data = 20, .length = 7}),
         "INVALID", "-",
         "");
  r.step("length field below the payload", U(41003, 53, {.data = 20, .length = 12}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41003 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41003 mark=0 use=1");
}

TEST(KernelSequences, UdpChecksumZero) {
  Replay r(41004);
  r.step("checksum 0 means none", U(41004, 53, {.data = 21, .zero_checksum = true}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41004 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41004 mark=0 use=1");
  r.step("bad checksum on an existing flow", U(41004, 53, {.data = 20, .bad = true}),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41004 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41004 mark=0 use=1");
  r.step("S>C bad checksum reply", UR(53, 41004, {.data = 20, .bad = true}),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41004 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41004 mark=0 use=1");
}

TEST(KernelSequences, IcmpEcho) {
  Replay r(777);
  r.step("C>S echo request", I(8, 0, 777),
         "NEW", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=777 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=777 mark=0 use=1");
  r.step("C>S echo request seq 2", I(8, 0, 777, {.seq = 2}),
         "NEW", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=777 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=777 mark=0 use=1");
  r.step("S>C echo reply", I(0, 0, 777, {.src = kS, .dst = kC}),
         "ESTABLISHED", "REPLY",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=777 src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=777 mark=0 use=1");
  r.step("C>S echo request seq 3", I(8, 0, 777, {.seq = 3}),
         "ESTABLISHED", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=777 src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=777 mark=0 use=1");
  r.step("S>C echo reply bad checksum", I(0, 0, 777, {.src = kS, .dst = kC, .bad = true}),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=777 src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=777 mark=0 use=1");
}

TEST(KernelSequences, IcmpWithoutEntry) {
  Replay r(778);
  r.step("S>C echo reply without request", I(0, 0, 778, {.src = kS, .dst = kC}),
         "INVALID", "-",
         "");
  r.step("C>S timestamp request", I(13, 0, 778),
         "NEW", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("C>S router advertisement (9)", I(9, 0, 778),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("C>S type 19", I(19, 0, 778),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("C>S address mask reply without request", I(18, 0, 778),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("C>S echo request code 1", I(8, 1, 779),
         "NEW", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("S>C echo reply code 0 to it", I(0, 0, 779, {.src = kS, .dst = kC}),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("S>C echo reply code 1 to it", I(0, 1, 779, {.src = kS, .dst = kC}),
         "ESTABLISHED", "REPLY",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
  r.step("C>S echo request bad checksum", I(8, 0, 780, {.bad = true}),
         "INVALID", "-",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=13 code=0 id=778 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=14 code=0 id=778 mark=0 use=1");
}

TEST(KernelSequences, IcmpErrorsAboutUdpFlow) {
  Replay r(41005);
  r.step("C>S udp", U(41005, 53, {.data = 20}),
         "NEW", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C port unreachable", E(3, 3, U(41005, 53, {.data = 20})),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("M>C net unreachable from a middle box", E(3, 0, U(41005, 53, {.data = 20}), {.src = kM}),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>X unreachable, outer destination not the client", E(3, 3, U(41005, 53, {.data = 20}), {.dst = kX}),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C unreachable bad checksum", E(3, 3, U(41005, 53, {.data = 20}), {.bad = true}),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C time exceeded", E(11, 0, U(41005, 53, {.data = 20})),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C unreachable quoting 2 bytes of UDP", E(3, 3, U(41005, 53, {.data = 20}), {.quote = 22}),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("C>S unreachable about a reply packet", E(3, 3, UR(53, 41005, {.data = 4}), {.src = kC, .dst = kS}),
         "RELATED", "ORIGINAL",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C unreachable about an unknown flow", E(3, 3, U(41006, 53, {.data = 4})),
         "INVALID", "-",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C redirect about the flow", E(5, 1, U(41005, 53, {.data = 20})),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C parameter problem about the flow", E(12, 0, U(41005, 53, {.data = 20})),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
  r.step("S>C source quench about the flow", E(4, 0, U(41005, 53, {.data = 20})),
         "RELATED", "REPLY",
         "udp      17 29 src=10.201.1.5 dst=10.201.2.5 sport=41005 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41005 mark=0 use=1");
}

TEST(KernelSequences, IcmpErrorAboutPing) {
  Replay r(779);
  r.step("C>S echo", I(8, 0, 779),
         "NEW", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=779 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=779 mark=0 use=1");
  r.step("M>C time exceeded quoting the echo", E(11, 0, I(8, 0, 779), {.src = kM}),
         "RELATED", "REPLY",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=779 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=779 mark=0 use=1");
  r.step("M>S time exceeded quoting an echo reply", E(11, 0, I(0, 0, 779, {.src = kS, .dst = kC}), {.src = kM, .dst = kS}),
         "RELATED", "ORIGINAL",
         "icmp     1 29 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=779 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=779 mark=0 use=1");
}

TEST(KernelSequences, IcmpErrorAboutTcpFlow) {
  Replay r(41006);
  r.step("C>S SYN", T(41006, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=41006 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=41006 mark=0 use=1");
  r.step("S>C port unreachable quoting the SYN", E(3, 3, T(41006, 80, 1000U, 0U, "S", {.ws = true})),
         "RELATED", "REPLY",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=41006 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=41006 mark=0 use=1");
  r.step("C>S SYN retransmitted", T(41006, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=41006 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=41006 mark=0 use=1");
}

TEST(KernelSequences, GenericProtocol) {
  Replay r(0);
  r.step("C>S proto 253", G(kC, kS, 253, 12),
         "NEW", "ORIGINAL",
         "unknown  253 599 src=10.201.1.5 dst=10.201.2.5 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 mark=0 use=1");
  r.step("C>S proto 253 again", G(kC, kS, 253, 12),
         "NEW", "ORIGINAL",
         "unknown  253 599 src=10.201.1.5 dst=10.201.2.5 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 mark=0 use=1");
  r.step("S>C proto 253", G(kS, kC, 253, 12),
         "ESTABLISHED", "REPLY",
         "unknown  253 599 src=10.201.1.5 dst=10.201.2.5 src=10.201.2.5 dst=10.201.1.5 mark=0 use=1");
  r.step("C>S proto 253 after the reply", G(kC, kS, 253, 12),
         "ESTABLISHED", "ORIGINAL",
         "unknown  253 599 src=10.201.1.5 dst=10.201.2.5 src=10.201.2.5 dst=10.201.1.5 mark=0 use=1");
}

// ---------------------------------------------------------------- tuples

constexpr uint64_t kSec = 1'000'000'000ULL;
constexpr uint64_t kT0 = 1'700'000'000ULL * kSec;

PacketKey parse(const Bytes& frame) {
  PacketKey key;
  EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, key),
            ParseStatus::Ok);
  return key;
}

TEST(Tuple, InvertSwapsEndsAndMapsIcmpQueriesToAnswers) {
  Tuple r;
  ASSERT_TRUE((Tuple{.src = kC, .dst = kS, .sport = 1000, .dport = 80, .proto = kProtoTcp}).invert(r));
  EXPECT_EQ(r, (Tuple{.src = kS, .dst = kC, .sport = 80, .dport = 1000, .proto = kProtoTcp}));
  const std::vector<std::pair<uint8_t, uint8_t>> answers = {
      {8, 0}, {0, 8}, {13, 14}, {14, 13}, {15, 16}, {16, 15}, {17, 18}, {18, 17}};
  for (auto [q, a] : answers) {
    const Tuple icmp{.src = kC, .dst = kS, .sport = 77, .dport = Tuple::icmp_word(q, 3), .proto = kProtoIcmp};
    ASSERT_TRUE(icmp.invert(r)) << int{q};
    EXPECT_EQ(r, (Tuple{.src = kS, .dst = kC, .sport = 77, .dport = Tuple::icmp_word(a, 3), .proto = kProtoIcmp}));
  }
  for (uint8_t type : std::vector<uint8_t>{3, 5, 9, 10, 11, 19}) {
    r = Tuple{};
    EXPECT_FALSE((Tuple{.src = kC, .dst = kS, .dport = Tuple::icmp_word(type, 0), .proto = kProtoIcmp}).invert(r)) << int{type};
    EXPECT_EQ(r, Tuple{});  // untouched
  }
  ASSERT_TRUE((Tuple{.src = kC, .dst = kS, .proto = 47}).invert(r));
  EXPECT_EQ(r, (Tuple{.src = kS, .dst = kC, .proto = 47}));
}

TEST(Tuple, OfParsedPackets) {
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, T(1234, 80, 1, 0, "S")))),
            (Tuple{.src = kC, .dst = kS, .sport = 1234, .dport = 80, .proto = kProtoTcp}));
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, UR(53, 999)))),
            (Tuple{.src = kS, .dst = kC, .sport = 53, .dport = 999, .proto = kProtoUdp}));
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, I(8, 0, 4242)))),
            (Tuple{.src = kC, .dst = kS, .sport = 4242, .dport = Tuple::icmp_word(8, 0), .proto = kProtoIcmp}));
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, E(3, 1, U(1, 2))))),
            (Tuple{.src = kS, .dst = kC, .dport = Tuple::icmp_word(3, 1), .proto = kProtoIcmp}));
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, G(kC, kS, 50, 40)))),
            (Tuple{.src = kC, .dst = kS, .proto = 50}));
  // SCTP and UDP-Lite have ports (conntrack_sctp_test.cpp tracks them).
  Bytes sctp = G(kC, kS, kProtoSctp, 40);
  test::set16(sctp, 20, 1234);
  test::set16(sctp, 22, 80);
  EXPECT_EQ(tuple_of(parse(test::ethernet({}, sctp))),
            (Tuple{.src = kC, .dst = kS, .sport = 1234, .dport = 80, .proto = kProtoSctp}));
}

// ---------------------------------------------------------------- the table

class Table : public ::testing::Test {
 protected:
  explicit Table(CtConfig c = small()) : table_(c) {}
  static CtConfig small() {
    CtConfig c;
    c.max_entries = 64;
    return c;
  }
  // process() on an IP packet at time t; keeps the frame alive for the result.
  CtResult process(const Bytes& ip, uint64_t t, bool verify = true, CtZone zone = {}) {
    frame_ = test::ethernet({}, ip);
    const PacketKey key = parse(frame_);
    return table_.process(key, frame_.data(), static_cast<uint32_t>(frame_.size()), t,
                          verify ? L4Check::Verify : L4Check::Skip, nullptr, zone);
  }
  // process() then confirm(): a packet that made it through.
  CtResult pass(const Bytes& ip, uint64_t t, CtZone zone = {}) {
    CtResult r = process(ip, t, true, zone);
    const CtResult answer = r;
    if (r.verdict == CtVerdict::Accept) {
      EXPECT_TRUE(table_.confirm(r, t));
    }
    return answer;
  }
  std::string dump(uint64_t t) const {
    std::string out;
    table_.dump(out, t);
    return out;
  }

  Bytes frame_;
  ConntrackTable table_;
};

TEST_F(Table, FindsAnEntryFromEitherTuple) {
  pass(T(40000, 80, 1000, 0, "S", {.ws = true}), kT0);
  const Tuple orig{.src = kC, .dst = kS, .sport = 40000, .dport = 80, .proto = kProtoTcp};
  const Tuple reply{.src = kS, .dst = kC, .sport = 80, .dport = 40000, .proto = kProtoTcp};
  CtDir dir = CtDir::Reply;
  const CtEntry* e = table_.find(orig, &dir);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(dir, CtDir::Original);
  EXPECT_EQ(table_.find(reply, &dir), e);
  EXPECT_EQ(dir, CtDir::Reply);
  EXPECT_EQ(e->tuple[0], orig);
  EXPECT_EQ(e->tuple[1], reply);
  EXPECT_EQ(e->tcp.state, TcpCtState::SynSent);
  EXPECT_TRUE(e->has(ct_status::kConfirmed));
  EXPECT_EQ(table_.find(Tuple{.src = kC, .dst = kS, .sport = 40001, .dport = 80, .proto = kProtoTcp}), nullptr);

  const CtResult r = pass(TR(80, 40000, 5000, 1001, "SA", {.ws = true}), kT0 + kSec);
  EXPECT_EQ(r.state, kCtEstablished);
  EXPECT_EQ(r.dir, CtDir::Reply);
  EXPECT_FALSE(r.created);
  EXPECT_TRUE(e->has(ct_status::kSeenReply));
  EXPECT_EQ(table_.counters().found, 1U);
}

TEST_F(Table, UnconfirmedEntryIsInvisibleAndADroppedFirstPacketLeavesNoTrace) {
  const Bytes syn = T(40000, 80, 1000, 0, "S", {.ws = true});
  const Tuple orig = tuple_of(parse(test::ethernet({}, syn)));
  CtResult r = process(syn, kT0);
  EXPECT_EQ(r.state, kCtNew);
  EXPECT_TRUE(r.created);
  ASSERT_NE(table_.entry(r.entry), nullptr);
  EXPECT_FALSE(table_.entry(r.entry)->has(ct_status::kConfirmed));
  EXPECT_EQ(table_.find(orig), nullptr);  // not in the table before confirm
  EXPECT_EQ(table_.size(), 1U);
  table_.discard(r);  // e.g. filter FORWARD dropped it
  EXPECT_EQ(r.entry, kNoEntry);
  EXPECT_EQ(table_.size(), 0U);
  EXPECT_EQ(dump(kT0), "");

  // The retransmission is NEW again and creates the entry afresh.
  r = process(syn, kT0 + kSec);
  EXPECT_EQ(r.state, kCtNew);
  EXPECT_TRUE(r.created);
  EXPECT_TRUE(table_.confirm(r, kT0 + kSec));
  EXPECT_NE(table_.find(orig), nullptr);
  EXPECT_EQ(table_.counters().created, 2U);
  EXPECT_EQ(table_.counters().inserted, 1U);
  // confirm/discard on an empty result are harmless.
  CtResult none;
  EXPECT_TRUE(table_.confirm(none, kT0));
  table_.discard(none);
  EXPECT_EQ(table_.size(), 1U);
}

TEST_F(Table, DroppedPacketOfAnExistingFlowKeepsItsStateChange) {
  pass(T(40000, 80, 1000, 0, "S", {.ws = true}), kT0);
  CtResult r = process(TR(80, 40000, 5000, 1001, "SA", {.ws = true}), kT0);
  table_.discard(r);  // dropped after conntrack: the kernel keeps what it learnt
  const CtEntry* e = table_.find(Tuple{.src = kC, .dst = kS, .sport = 40000, .dport = 80, .proto = kProtoTcp});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->tcp.state, TcpCtState::SynRecv);
  EXPECT_TRUE(e->has(ct_status::kSeenReply));
}

TEST_F(Table, EntriesExpireOnTheCaptureClock) {
  pass(U(5000, 53), kT0);
  const Tuple flow{.src = kC, .dst = kS, .sport = 5000, .dport = 53, .proto = kProtoUdp};
  EXPECT_NE(table_.find(flow), nullptr);
  // 1 ns before the deadline: still there, 0 whole seconds left.
  EXPECT_EQ(dump(kT0 + 30 * kSec - 1),
            "udp      17 0 src=10.201.1.5 dst=10.201.2.5 sport=5000 dport=53 [UNREPLIED] "
            "src=10.201.2.5 dst=10.201.1.5 sport=53 dport=5000 mark=0 use=1\n");
  // At the deadline the entry is gone: the next packet opens a new one.
  EXPECT_EQ(dump(kT0 + 30 * kSec), "");
  CtResult r = process(U(5000, 53), kT0 + 30 * kSec);
  EXPECT_EQ(r.state, kCtNew);
  EXPECT_TRUE(r.created);
  EXPECT_EQ(table_.counters().expired, 1U);
  EXPECT_TRUE(table_.confirm(r, kT0 + 30 * kSec));
  // A packet refreshes: 29 s later the flow is still there.
  pass(U(5000, 53), kT0 + 59 * kSec);
  EXPECT_NE(dump(kT0 + 88 * kSec), "");
}

TEST_F(Table, ExpireFreesEveryEntryPastItsDeadline) {
  pass(U(5000, 53), kT0);                    // 30 s
  pass(I(8, 0, 9), kT0 + kSec);              // 30 s
  pass(G(kC, kS, 253, 8), kT0 + 2 * kSec);   // 600 s
  pass(T(40000, 80, 1, 0, "S"), kT0 + 3 * kSec);  // 120 s
  EXPECT_EQ(table_.size(), 4U);
  table_.expire(kT0 + 31 * kSec);  // the ICMP entry is due at kT0 + 31 s exactly
  EXPECT_EQ(table_.size(), 2U);
  EXPECT_EQ(table_.counters().expired, 2U);
  table_.expire(kT0 + 2000 * kSec);  // more than a full turn of the wheel later
  EXPECT_EQ(table_.size(), 0U);
  EXPECT_EQ(table_.counters().expired, 4U);
  // Entries far in the future survive a sweep over the whole wheel.
  pass(T(40001, 80, 1, 0, "S"), kT0 + 2000 * kSec);
  pass(TR(80, 40001, 7, 2, "SA"), kT0 + 2000 * kSec);
  pass(T(40001, 80, 2, 8, "A"), kT0 + 2000 * kSec);  // ESTABLISHED: 5 days
  table_.expire(kT0 + 5000 * kSec);
  EXPECT_EQ(table_.size(), 1U);
  table_.expire(kT0 + (2000 + 432000) * kSec);
  EXPECT_EQ(table_.size(), 0U);
}

TEST_F(Table, ClockNeverGoesBackwards) {
  pass(U(5000, 53), kT0 + 100 * kSec);
  pass(U(5000, 53), kT0 + 50 * kSec);  // an earlier timestamp counts as the latest one
  EXPECT_EQ(table_.clock_ns(), kT0 + 100 * kSec);
  EXPECT_NE(dump(kT0 + 129 * kSec), "");
  EXPECT_EQ(dump(kT0 + 130 * kSec), "");
}

TEST(TableFull, EarlyDropEvictsNonAssuredEntriesForANewFlow) {
  CtConfig c;
  c.max_entries = 4;
  c.buckets = 4;  // the 8-bucket eviction range covers every bucket
  Replay r(0, c);
  for (uint16_t p = 1; p <= 4; ++p) EXPECT_EQ(r.send(U(p, 53)).state, kCtNew);
  EXPECT_EQ(r.table().size(), 4U);
  const CtResult fifth = r.send(U(5, 53));
  EXPECT_EQ(fifth.verdict, CtVerdict::Accept);
  EXPECT_EQ(fifth.state, kCtNew);
  EXPECT_GE(r.table().counters().early_drop, 1U);
  EXPECT_EQ(r.table().counters().drop, 0U);
  EXPECT_LE(r.table().size(), 4U);
  EXPECT_NE(r.table().find(Tuple{.src = kC, .dst = kS, .sport = 5, .dport = 53, .proto = kProtoUdp}), nullptr);
}

TEST(TableFull, DropsNewFlowsWhenEveryEntryIsAssured) {
  CtConfig c;
  c.max_entries = 3;
  c.buckets = 3;
  Replay r(0, c);
  for (uint16_t p = 1; p <= 3; ++p) {
    r.send(U(p, 53));
    r.send(UR(53, p));
  }
  r.sleep(2.5);
  for (uint16_t p = 1; p <= 3; ++p) r.send(U(p, 53));  // both ways, older than 2 s: ASSURED
  const std::string lines = r.flow_lines();
  EXPECT_EQ(lines.find("[UNREPLIED]"), std::string::npos);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '['), 3);  // 3 entries, each [ASSURED]

  const CtResult dropped = r.send(U(9, 53));
  EXPECT_EQ(dropped.verdict, CtVerdict::Drop);
  EXPECT_EQ(dropped.reason, CtReason::TableFull);
  EXPECT_FALSE(dropped.has_entry());
  EXPECT_EQ(r.table().counters().drop, 1U);
  EXPECT_EQ(r.table().counters().by_reason[static_cast<std::size_t>(CtReason::TableFull)], 1U);
  EXPECT_EQ(r.table().counters().early_drop, 0U);
  // Known flows still pass.
  EXPECT_EQ(r.send(UR(53, 2)).state, kCtEstablished);
  // Once the entries time out (120 s), new flows get in again.
  r.sleep(121);
  EXPECT_EQ(r.send(U(9, 53)).state, kCtNew);
  EXPECT_EQ(r.table().counters().expired, 3U);
}

TEST(TableFull, EarlyDropLooksOnlyNearTheNewTuplesBucket) {
  CtConfig c;
  c.max_entries = 2;
  c.buckets = 1U << 16;  // two entries: their 4 nodes are almost surely outside the range
  Replay r(0, c);
  r.send(U(1, 53));
  r.send(U(2, 53));
  const CtResult third = r.send(U(3, 53));
  EXPECT_EQ(third.verdict, CtVerdict::Drop);
  EXPECT_EQ(r.table().counters().early_drop, 0U);
  EXPECT_EQ(r.table().size(), 2U);  // the non-assured entries were not in reach
}

TEST(TableFull, AnEntryEvictedWhileItsPacketIsInFlightStaysReadable) {
  CtConfig c;
  c.max_entries = 2;
  c.buckets = 1;
  ConntrackTable t(c);
  const Bytes fa = test::ethernet({}, U(1, 53));
  const Bytes fb = test::ethernet({}, U(2, 53));
  const Bytes fc = test::ethernet({}, U(3, 53));
  auto run = [&](const Bytes& f) {
    const PacketKey k = parse(f);
    return t.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true);
  };
  CtResult a = run(fa);
  t.confirm(a, kT0);
  CtResult b = run(fb);
  t.confirm(b, kT0);
  CtResult a2 = run(fa);  // flow A's next packet: in flight, holds its entry
  ASSERT_TRUE(a2.has_entry());
  CtResult c3 = run(fc);  // full: early drop evicts A (held) and B
  EXPECT_EQ(c3.verdict, CtVerdict::Accept);
  EXPECT_TRUE(c3.created);
  ASSERT_NE(t.entry(a2.entry), nullptr);
  EXPECT_EQ(t.entry(a2.entry)->tuple[0].sport, 1);  // still flow A's data
  EXPECT_TRUE(t.entry(a2.entry)->has(ct_status::kDying));
  EXPECT_TRUE(t.confirm(c3, kT0));
  EXPECT_TRUE(t.confirm(a2, kT0));  // frees A now
  EXPECT_EQ(t.size(), 1U);
  EXPECT_EQ(t.find(Tuple{.src = kC, .dst = kS, .sport = 1, .dport = 53, .proto = kProtoUdp}), nullptr);
  EXPECT_NE(t.find(Tuple{.src = kC, .dst = kS, .sport = 3, .dport = 53, .proto = kProtoUdp}), nullptr);
}

TEST_F(Table, ClashAtConfirmDropsTheSecondPacket) {
  // Two packets of a new flow in flight at once (a burst): both create.
  const Bytes f = test::ethernet({}, U(7, 53));
  const PacketKey k = parse(f);
  CtResult a = table_.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true);
  CtResult b = table_.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true);
  EXPECT_TRUE(a.created);
  EXPECT_TRUE(b.created);
  EXPECT_TRUE(table_.confirm(a, kT0));
  EXPECT_FALSE(table_.confirm(b, kT0));
  EXPECT_EQ(table_.counters().insert_failed, 1U);
  EXPECT_EQ(table_.counters().drop, 1U);
  EXPECT_EQ(table_.size(), 1U);
}

// ---------------------------------------------------------------- the dump

TEST_F(Table, DumpPrintsConntrackListLinesInCreationOrder) {
  pass(G(kC, kS, 253, 8), kT0);
  pass(T(40000, 80, 1000, 0, "S", {.ws = true}), kT0 + kSec);
  pass(TR(80, 40000, 5000, 1001, "SA", {.ws = true}), kT0 + kSec);
  pass(T(40000, 80, 1001, 5001, "A", {.win = 502}), kT0 + kSec);
  pass(I(8, 0, 31), kT0 + 2 * kSec);
  pass(U(5353, 53), kT0 + 3 * kSec);
  pass(UR(53, 5353), kT0 + 3 * kSec);
  CtEntry* udp = table_.entry(pass(UR(53, 5353), kT0 + 6 * kSec).entry);  // now a stream
  ASSERT_NE(udp, nullptr);
  udp->mark = 7;
  EXPECT_EQ(dump(kT0 + 10 * kSec),
            "unknown  253 590 src=10.201.1.5 dst=10.201.2.5 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 "
            "mark=0 use=1\n"
            "tcp      6 431991 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40000 dport=80 "
            "src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40000 [ASSURED] mark=0 use=1\n"
            "icmp     1 22 src=10.201.1.5 dst=10.201.2.5 type=8 code=0 id=31 [UNREPLIED] "
            "src=10.201.2.5 dst=10.201.1.5 type=0 code=0 id=31 mark=0 use=1\n"
            "udp      17 116 src=10.201.1.5 dst=10.201.2.5 sport=5353 dport=53 src=10.201.2.5 "
            "dst=10.201.1.5 sport=53 dport=5353 [ASSURED] mark=7 use=1\n");
}

// ---------------------------------------------------------------- zones

// Zones measured on Linux 6.18 (the ct_zones kernel scenario): a packet
// finds a direction only when that direction's zone id is its own; a zone
// for one direction leaves the other in the default zone; conntrack -L
// prints zone=, zone-orig= or zone-reply=.
TEST_F(Table, ZonesKeepTheSameTupleApart) {
  const CtZone z5{5, CtZone::kBoth};
  const CtResult a = pass(U(7, 53), kT0);
  const CtResult b = pass(U(7, 53), kT0, z5);
  EXPECT_TRUE(a.created);
  EXPECT_TRUE(b.created);  // not the first flow: another zone
  EXPECT_NE(a.entry, b.entry);
  // Replies find their own zone's entry.
  const CtResult ra = pass(UR(53, 7), kT0 + kSec);
  const CtResult rb = pass(UR(53, 7), kT0 + kSec, z5);
  EXPECT_EQ(ra.entry, a.entry);
  EXPECT_EQ(rb.entry, b.entry);
  EXPECT_EQ(rb.dir, CtDir::Reply);
  // A zone of its own for the reply opens a third entry.
  const CtResult c = pass(UR(53, 7), kT0 + kSec, CtZone{6, CtZone::kBoth});
  EXPECT_TRUE(c.created);
  EXPECT_EQ(c.dir, CtDir::Original);
  // ICMP errors are matched in their own zone.
  EXPECT_EQ(pass(E(3, 3, U(7, 53), {.src = kS, .dst = kC}), kT0 + kSec, z5).entry, b.entry);
  const CtResult none = process(E(3, 3, U(7, 53), {.src = kS, .dst = kC}), kT0 + kSec, true, CtZone{9, CtZone::kBoth});
  EXPECT_EQ(none.state, kCtInvalid);
  EXPECT_EQ(none.reason, CtReason::IcmpErrorNoFlow);
  EXPECT_EQ(dump(kT0 + kSec),
            "udp      17 30 src=10.201.1.5 dst=10.201.2.5 sport=7 dport=53 src=10.201.2.5 dst=10.201.1.5 "
            "sport=53 dport=7 mark=0 use=1\n"
            "udp      17 30 src=10.201.1.5 dst=10.201.2.5 sport=7 dport=53 src=10.201.2.5 dst=10.201.1.5 "
            "sport=53 dport=7 mark=0 zone=5 use=1\n"
            "udp      17 30 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=7 [UNREPLIED] src=10.201.1.5 "
            "dst=10.201.2.5 sport=7 dport=53 mark=0 zone=6 use=1\n");
}

TEST_F(Table, OneDirectionZones) {
  // --zone-orig 1 (a bridge's ingress): replies from the default zone find
  // it, and so do replies in another ORIGINAL-only zone (their REPLY id is
  // the default), by the second lookup.
  const CtResult a = pass(U(8, 53), kT0, CtZone{1, CtZone::kOriginal});
  EXPECT_EQ(pass(UR(53, 8), kT0).entry, a.entry);
  const CtResult r2 = pass(UR(53, 8), kT0, CtZone{2, CtZone::kOriginal});
  EXPECT_EQ(r2.entry, a.entry);
  EXPECT_EQ(r2.dir, CtDir::Reply);
  // A both-way zone 1 does not (its REPLY id would have to be 1): it opens
  // an entry whose REPLY tuple is the first one's ORIGINAL in zone 1, a
  // clash at confirm (as nf_conntrack_confirm() compares the ids of the
  // direction it meets), so the packet is dropped.
  CtResult c = process(UR(53, 8), kT0, true, CtZone{1, CtZone::kBoth});
  EXPECT_TRUE(c.created);
  EXPECT_FALSE(table_.confirm(c, kT0));
  // --zone-reply 9: the ORIGINAL direction stays in the default zone, so a
  // retransmission in the same zone, or in none, finds it.
  const CtResult s = pass(U(9, 53), kT0, CtZone{9, CtZone::kReply});
  EXPECT_EQ(pass(U(9, 53), kT0, CtZone{9, CtZone::kReply}).entry, s.entry);
  EXPECT_EQ(pass(U(9, 53), kT0).entry, s.entry);
  std::string lines = dump(kT0);
  EXPECT_NE(lines.find("sport=8 dport=53 zone-orig=1 src="), std::string::npos) << lines;
  EXPECT_NE(lines.find("sport=53 dport=9 zone-reply=9 mark=0 use=1"), std::string::npos) << lines;
}

// ---------------------------------------------------------------- NAT hooks

TEST_F(Table, ReplyTupleChangedBeforeConfirmIsWhatRepliesMatch) {
  // DNAT of a published port: C -> H:10000 becomes C -> 172.17.0.2:6379.
  constexpr uint32_t kHost = ip4(192, 0, 2, 10);
  constexpr uint32_t kCtr = ip4(172, 17, 0, 2);
  const Bytes syn = tcp_packet(kC, kHost, 40000, 10000, 1000, 0, "S", {.ws = true});
  CtResult r = process(syn, kT0);
  ASSERT_TRUE(r.created);
  const Tuple reply{.src = kCtr, .dst = kC, .sport = 6379, .dport = 40000, .proto = kProtoTcp};
  EXPECT_FALSE(table_.tuple_taken(reply, r.entry));
  ASSERT_TRUE(table_.set_reply_tuple(r.entry, reply));
  table_.entry(r.entry)->status |= ct_status::kDstNat | ct_status::kDstNatDone;
  EXPECT_EQ(table_.state_bits(r), kCtNew | kCtDnat);
  const uint32_t handle = r.entry;
  ASSERT_TRUE(table_.confirm(r, kT0));
  EXPECT_FALSE(table_.set_reply_tuple(handle, reply));  // confirmed: too late

  // The container's answer finds the entry from its REPLY side.
  CtResult answer = process(tcp_packet(kCtr, kC, 6379, 40000, 5000, 1001, "SA", {.ws = true}), kT0);
  EXPECT_EQ(answer.state, kCtEstablished);
  EXPECT_EQ(answer.dir, CtDir::Reply);
  EXPECT_EQ(table_.state_bits(answer), kCtEstablished | kCtDnat);
  table_.confirm(answer, kT0);
  // An answer from the un-NATed address is no part of it.
  const CtResult stray = process(tcp_packet(kHost, kC, 10000, 40000, 5000, 1001, "SA"), kT0);
  EXPECT_EQ(stray.state, kCtInvalid);
  // ICMP from the container about the (translated) packet it got: RELATED.
  CtResult icmp = process(
      E(3, 3, tcp_packet(kC, kCtr, 40000, 6379, 1000, 0, "S"), {.src = kCtr, .dst = kC}), kT0);
  EXPECT_EQ(icmp.state, kCtRelated);
  EXPECT_EQ(icmp.dir, CtDir::Reply);
  EXPECT_EQ(table_.state_bits(icmp), kCtRelated | kCtDnat);
  table_.discard(icmp);

  // NAT's question: is a REPLY tuple taken?
  EXPECT_TRUE(table_.tuple_taken(reply));
  EXPECT_TRUE(table_.tuple_taken(reply, kNoEntry));
  EXPECT_FALSE(table_.tuple_taken(reply, handle));  // by the entry itself: no
  EXPECT_FALSE(table_.tuple_taken(Tuple{.src = kCtr, .dst = kC, .sport = 6380, .dport = 40000, .proto = kProtoTcp}));
}

TEST_F(Table, TupleTakenIgnoresTheSameFlowSeenTwice) {
  // Two packets of one new flow in flight at once: both create an entry.
  const Bytes f = test::ethernet({}, U(9, 53));
  const PacketKey k = parse(f);
  CtResult x = table_.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true);
  CtResult y = table_.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true);
  const Tuple reply{.src = kS, .dst = kC, .sport = 53, .dport = 9, .proto = kProtoUdp};
  EXPECT_TRUE(table_.confirm(x, kT0));
  EXPECT_TRUE(table_.tuple_taken(reply));
  EXPECT_FALSE(table_.tuple_taken(reply, y.entry));  // equal ORIGINAL tuples: the same flow
  table_.discard(y);
  EXPECT_EQ(table_.size(), 1U);
}

TEST_F(Table, SnatStateBit) {
  CtResult r = process(U(1, 53), kT0);
  table_.entry(r.entry)->status |= ct_status::kSrcNat;
  EXPECT_EQ(table_.state_bits(r), kCtNew | kCtSnat);
  table_.discard(r);
  CtResult invalid = process(I(0, 0, 1), kT0);
  EXPECT_EQ(table_.state_bits(invalid), kCtInvalid);
}

// ---------------------------------------------------------------- odd packets

TEST_F(Table, FragmentsAndTruncatedHeaders) {
  const Bytes whole = U(1, 53, {.data = 100});
  const CtResult first = pass(test::fragment(whole, 0, 48), kT0);
  EXPECT_EQ(first.state, kCtNew);  // the first fragment carries the ports
  const CtResult later = process(test::fragment(whole, 48, 60), kT0);
  EXPECT_EQ(later.state, kCtInvalid);
  EXPECT_EQ(later.reason, CtReason::Fragment);

  // A TCP header cut short: the parser keys L3 only; conntrack calls it INVALID.
  Bytes cut = T(1, 2, 3, 4, "S");
  cut.resize(30);
  test::set16(cut, 2, 30);
  test::fix_ipv4_checksum(cut);
  const Bytes frame = test::ethernet({}, cut);
  PacketKey key;
  ASSERT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, key),
            ParseStatus::TruncatedL4);
  const CtResult r = table_.process(key, frame.data(), static_cast<uint32_t>(frame.size()), kT0, true);
  EXPECT_EQ(r.state, kCtInvalid);
  EXPECT_EQ(r.reason, CtReason::Truncated);
  EXPECT_EQ(table_.counters().by_reason[static_cast<std::size_t>(CtReason::Fragment)], 1U);
  EXPECT_EQ(table_.counters().invalid, 2U);
}

TEST_F(Table, ChecksumsAreCheckedOnlyWhenAskedAndEnabled) {
  EXPECT_EQ(process(U(1, 53, {.bad = true}), kT0).reason, CtReason::BadChecksum);
  CtResult local = process(U(1, 53, {.bad = true}), kT0, /*verify=*/false);  // OUTPUT path
  EXPECT_EQ(local.state, kCtNew);
  table_.discard(local);
  CtConfig off = small();
  off.checksum = false;
  ConntrackTable t(off);
  const Bytes f = test::ethernet({}, T(1, 2, 3, 0, "S", {.bad = true}));
  const PacketKey k = parse(f);
  EXPECT_EQ(t.process(k, f.data(), static_cast<uint32_t>(f.size()), kT0, true).state, kCtNew);
}

// Random traffic among a few endpoints, a small table, random drops and
// time jumps: after every packet is finished and expired entries reaped, the
// table holds exactly the entries the dump lists, each findable from both
// tuples, and never more than max_entries.
TEST(RandomTraffic, TableStaysConsistent) {
  CtConfig c;
  c.max_entries = 48;
  c.buckets = 16;
  ConntrackTable t(c);
  uint64_t state = 12345;
  auto rnd = [&](uint32_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>((state >> 33) % n);
  };
  const uint32_t hosts[] = {kC, kS, kM, kX};
  uint64_t now = kT0;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t a = hosts[rnd(4)];
    const uint32_t b = hosts[rnd(4)];
    const auto sp = static_cast<uint16_t>(1 + rnd(6));
    const auto dp = static_cast<uint16_t>(1 + rnd(6));
    Bytes ip;
    switch (rnd(5)) {
      case 0:
      case 1: {
        static const char* const kFlags[] = {"S", "SA", "A", "PA", "FA", "R", "RA", "SF", ""};
        ip = tcp_packet(a, b, sp, dp, rnd(4) == 0 ? rnd(1U << 31) : 1000 + rnd(3000), 1000 + rnd(3000),
                        kFlags[rnd(9)], {.win = static_cast<uint16_t>(rnd(3) * 1000), .ws = rnd(2) == 0,
                                         .data = rnd(3) * 100, .bad = rnd(50) == 0});
        break;
      }
      case 2: ip = udp_packet(a, b, sp, dp, {.data = rnd(40), .bad = rnd(50) == 0}); break;
      case 3:
        ip = rnd(2) == 0 ? test::ipv4({.src = a, .dst = b, .proto = kProtoIcmp},
                                      test::icmp({.type = static_cast<uint8_t>(rnd(20)), .id = sp}))
                         : E(static_cast<uint8_t>(rnd(2) == 0 ? 3 : 11), 0, udp_packet(b, a, dp, sp, {}),
                             {.src = hosts[rnd(4)], .dst = a});
        break;
      default: ip = G(a, b, static_cast<uint8_t>(rnd(2) == 0 ? 50 : 253), 8); break;  // generic
    }
    const Bytes frame = test::ethernet({}, ip);
    const PacketKey key = parse(frame);
    if (rnd(10) == 0) now += static_cast<uint64_t>(rnd(200)) * kSec;
    now += rnd(1000) * 1000ULL;
    CtResult r = t.process(key, frame.data(), static_cast<uint32_t>(frame.size()), now, true);
    ASSERT_TRUE(r.state == kCtNew || r.state == kCtEstablished || r.state == kCtRelated ||
                r.state == kCtInvalid);
    ASSERT_EQ(r.has_entry(), r.state != kCtInvalid);
    if (r.verdict == CtVerdict::Drop || rnd(8) == 0)
      t.discard(r);
    else
      t.confirm(r, now);
    ASSERT_LE(t.size(), t.capacity());
    if (i % 97 == 0) {
      t.expire(now);
      std::string out;
      t.dump(out, now);
      ASSERT_EQ(static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')), t.size()) << out;
    }
  }
  EXPECT_GT(t.counters().early_drop + t.counters().drop, 0U);
  EXPECT_GT(t.counters().related, 0U);
  EXPECT_GT(t.counters().expired, 0U);
}

TEST(Config, RejectsImpossibleSizes) {
  CtConfig c;
  c.max_entries = 0;
  EXPECT_THROW(ConntrackTable{c}, std::invalid_argument);
  c.max_entries = (1U << 30) + 1;
  EXPECT_THROW(ConntrackTable{c}, std::invalid_argument);
  c.max_entries = 8;
  c.buckets = (1U << 30) + 1;
  EXPECT_THROW(ConntrackTable{c}, std::invalid_argument);
  c.buckets = 0;
  const ConntrackTable t(c);
  EXPECT_EQ(t.capacity(), 8U);
  EXPECT_EQ(t.bucket_count(), 8U);
}

TEST(Reasons, NamesAreUniqueAndStable) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kCtReasonCount; ++i) {
    const auto r = static_cast<CtReason>(i);
    names.insert(ct_reason_name(r));
    EXPECT_STRNE(ct_reason_description(r), "");
  }
  EXPECT_EQ(names.size(), kCtReasonCount);
  EXPECT_STREQ(ct_reason_name(CtReason::TableFull), "table_full");
  EXPECT_STREQ(ct_reason_name(static_cast<CtReason>(kCtReasonCount)), "invalid");
}


// The established-flow step equals process(): two tables fed the same random
// traffic (TCP with every flag mix, in and out of window, UDP, ICMP queries
// and errors, SCTP chunks with a few tags, UDP-Lite, GRE, other protocols,
// time jumps, a table that fills), one through
// process() only, the other through track_fast() whenever its lookup hits a
// live entry and it accepts the packet -- the same ctstate for every packet,
// the same counters and the same conntrack -L all along.
TEST(RandomTraffic, TrackFastEqualsProcess) {
  CtConfig c;
  c.max_entries = 64;
  c.buckets = 16;
  ConntrackTable full(c);
  ConntrackTable quick(c);
  uint64_t state = 777;
  auto rnd = [&](uint32_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>((state >> 33) % n);
  };
  const uint32_t hosts[] = {kC, kS, kM, kX};
  uint32_t seq[2][8] = {};
  uint64_t now = kT0;
  uint64_t fast = 0;
  for (int i = 0; i < 40000; ++i) {
    const uint32_t ai = rnd(2);
    const uint32_t a = hosts[ai];
    const uint32_t b = hosts[1 - ai];
    const auto sp = static_cast<uint16_t>(1 + rnd(4));
    const auto dp = static_cast<uint16_t>(1 + rnd(4));
    Bytes ip;
    switch (rnd(8)) {
      case 0:
      case 1:
      case 2: {
        static const char* const kFlags[] = {"A", "PA", "A", "PA", "S", "SA", "FA", "R", "RA", "A"};
        const char* flags = kFlags[rnd(10)];
        uint32_t& s_next = seq[ai][sp % 8];
        uint32_t& r_next = seq[1 - ai][dp % 8];
        const uint32_t data = rnd(3) * 100;
        const bool jump = rnd(20) == 0;
        ip = tcp_packet(a, b, sp, dp, jump ? rnd(1U << 31) : s_next, r_next, flags,
                        {.win = static_cast<uint16_t>(rnd(8) == 0 ? 0 : 5000 + rnd(3000)), .ws = rnd(2) == 0,
                         .data = data, .bad = rnd(40) == 0});
        if (!jump) s_next += data + (flags[0] == 'S' || flags[0] == 'F' ? 1 : 0);
        break;
      }
      case 3: ip = udp_packet(a, b, sp, dp, {.data = rnd(40), .bad = rnd(40) == 0}); break;
      case 4:
        ip = rnd(3) != 0 ? test::ipv4({.src = a, .dst = b, .proto = kProtoIcmp},
                                      test::icmp({.type = static_cast<uint8_t>(rnd(2) == 0 ? 8 : 0), .id = sp}))
                         : E(3, 0, udp_packet(b, a, dp, sp, {}), {.src = hosts[rnd(4)], .dst = a});
        break;
      case 5: {
        // SCTP: chunk types that move the state, tags from a small set so
        // that many pass, the occasional bundle or bad CRC.
        static const uint8_t kTypes[] = {1, 2, 10, 11, 0, 0, 3, 4, 5, 6, 7, 8, 14};
        std::vector<Bytes> chunks;
        for (uint32_t n = 1 + (rnd(4) == 0 ? 1 : 0); n > 0; --n) {
          const uint8_t type = kTypes[rnd(13)];
          Bytes v(type == 1 || type == 2 ? 16 : 4 * rnd(3));
          if (type == 1 || type == 2) test::set16(v, 2, static_cast<uint16_t>(1 + rnd(2)));  // tag 1 or 2
          chunks.push_back(test::sctp_chunk({.type = type, .flags = static_cast<uint8_t>(rnd(2)), .value = v}));
        }
        ip = test::ipv4({.src = a, .dst = b, .proto = kProtoSctp,
                         .l4_checksum = rnd(40) == 0 ? test::L4Checksum::Corrupt : test::L4Checksum::Fill},
                        test::sctp({.sport = sp, .dport = dp, .vtag = rnd(3), .chunks = chunks}));
        break;
      }
      case 6:
        if (rnd(2) == 0) {
          ip = test::ipv4({.src = a, .dst = b, .proto = kProtoUdplite,
                           .l4_checksum = rnd(10) == 0 ? test::L4Checksum::Fill : test::L4Checksum::UdpliteAsUdp},
                          test::udplite({.sport = sp, .dport = dp, .coverage = static_cast<uint16_t>(rnd(3) * 6),
                                         .payload = test::pattern(rnd(20))}));
        } else {
          Bytes g;
          const uint16_t version = static_cast<uint16_t>(rnd(3));
          test::put16(g, version);
          test::put16(g, rnd(4) == 0 ? 0x0800 : 0x880b);
          test::put16(g, 0);
          test::put16(g, static_cast<uint16_t>(rnd(3)));
          g.resize(rnd(6) == 0 ? 4 : 8 + rnd(8));
          ip = test::ipv4({.src = a, .dst = b, .proto = kProtoGre}, g);
        }
        break;
      default: ip = G(a, b, 253, 8); break;
    }
    const Bytes frame = test::ethernet({}, ip);
    const PacketKey key = parse(frame);
    if (rnd(50) == 0) now += static_cast<uint64_t>(rnd(200)) * kSec;
    now += rnd(100000) * 1000ULL;
    const auto len = static_cast<uint32_t>(frame.size());
    CtResult want = full.process(key, frame.data(), len, now, true);
    CtResult got;
    bool took_fast = false;
    if (!key.is_fragment() && !key.has(key_flag::kInner)) {
      const CtProbe probe = quick.probe(tuple_of(key, frame.data()));
      if (probe.hit()) {
        if (const uint8_t st = quick.track_fast(key, frame.data(), len, now, L4Check::Verify, probe); st != 0) {
          got.entry = probe.slot();
          got.dir = probe.dir();
          got.state = st;
          took_fast = true;
          ++fast;
        }
      }
      if (!took_fast) got = quick.process(key, frame.data(), len, now, L4Check::Verify, &probe);
    } else {
      got = quick.process(key, frame.data(), len, now, true);
    }
    ASSERT_EQ(got.state, want.state) << i;
    ASSERT_EQ(got.dir, want.dir) << i;
    ASSERT_EQ(got.verdict, want.verdict) << i;
    ASSERT_EQ(got.created, want.created) << i;
    if (rnd(10) == 0) {
      full.discard(want);
      quick.discard(got);
    } else {
      ASSERT_EQ(full.confirm(want, now), quick.confirm(got, now)) << i;
    }
    ASSERT_EQ(full.counters(), quick.counters()) << i;
    if (i % 50 == 0) {
      std::string a_dump;
      std::string b_dump;
      full.dump(a_dump, now);
      quick.dump(b_dump, now);
      ASSERT_EQ(a_dump, b_dump) << i;
    }
  }
  EXPECT_GT(fast, 5000U);
}

}  // namespace
}  // namespace nfb
