// Tests of the TCP tracker: flag classes and valid combinations, the
// transition table, segment reading, the sysctl switches, and packet
// sequences replayed with the answers Linux 6.18 gave for the very same
// packets (KernelSequences.*).
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

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "packet/byte_order.h"
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

// ---------------------------------------------------------------- replay

// The replay harness: tests/support/conntrack_replay.h.
using test::Replay;

TEST(KernelSequences, HandshakeDataCloseReopen) {
  Replay r(40001);
  r.step("C>S SYN", T(40001, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40001, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
  r.step("C>S ACK", T(40001, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S PSH/ACK 100 bytes", T(40001, 80, 1001U, 5001U, "PA", {.win = 502, .data = 100}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C ACK of data", TR(80, 40001, 5001U, 1101U, "A", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S FIN/ACK", T(40001, 80, 1101U, 5001U, "FA", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 FIN_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C ACK of FIN", TR(80, 40001, 5001U, 1102U, "A", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 CLOSE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C FIN/ACK", TR(80, 40001, 5001U, 1102U, "FA", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 29 LAST_ACK src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S last ACK", T(40001, 80, 1102U, 5002U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 TIME_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S new SYN reopens from TIME_WAIT", T(40001, 80, 90000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
}

TEST(KernelSequences, LoosePickup) {
  Replay r(40002);
  r.step("C>S ACK, no entry", T(40002, 80, 1001U, 5001U, "A", {.win = 502}),
         "NEW", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S PSH/ACK 10", T(40002, 80, 1001U, 5001U, "PA", {.win = 502, .data = 10}),
         "NEW", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("S>C ACK", TR(80, 40002, 5001U, 1011U, "A", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S ACK", T(40002, 80, 1011U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S data far out of window (liberal)", T(40002, 80, 50001011U, 5001U, "PA", {.win = 502, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, SynThenOriginalAckBeforeSynAck) {
  Replay r(40003);
  r.step("C>S SYN", T(40003, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40003 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40003 mark=0 use=1");
  r.step("C>S ACK", T(40003, 80, 1001U, 5001U, "A"),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40003 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40003 mark=0 use=1");
  r.step("C>S FIN/ACK", T(40003, 80, 1001U, 5001U, "FA"),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40003 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40003 mark=0 use=1");
  r.step("C>S RST kills the unreplied entry", T(40003, 80, 1001U, 0U, "R"),
         "NEW", "ORIGINAL",
         "");
}

TEST(KernelSequences, FlagCombinationsWithoutEntry) {
  Replay r(40004);
  r.step("SYN+FIN", T(40004, 80, 1000U, 0U, "SF"),
         "INVALID", "-",
         "");
  r.step("SYN+RST", T(40004, 80, 1000U, 0U, "SR"),
         "INVALID", "-",
         "");
  r.step("FIN alone", T(40004, 80, 1000U, 0U, "F"),
         "INVALID", "-",
         "");
  r.step("no flags", T(40004, 80, 1000U, 0U, ""),
         "INVALID", "-",
         "");
  r.step("FIN+PSH+URG", T(40004, 80, 1000U, 0U, "FPU"),
         "INVALID", "-",
         "");
  r.step("SYN+ACK+FIN", T(40004, 80, 1000U, 0U, "SAF"),
         "INVALID", "-",
         "");
  r.step("RST+ACK+FIN", T(40004, 80, 1000U, 0U, "RAF"),
         "INVALID", "-",
         "");
  r.step("FIN/ACK, no entry", T(40004, 80, 1000U, 1U, "FA"),
         "INVALID", "-",
         "");
  r.step("RST, no entry", T(40004, 80, 1000U, 0U, "R"),
         "INVALID", "-",
         "");
  r.step("RST/ACK, no entry", T(40004, 80, 1000U, 1U, "RA"),
         "INVALID", "-",
         "");
  r.step("SYN/ACK, no entry", T(40004, 80, 1000U, 1U, "SA"),
         "INVALID", "-",
         "");
  r.step("SYN+URG opens", T(40004, 80, 1000U, 0U, "SU"),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40004 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40004 mark=0 use=1");
}

TEST(KernelSequences, EcnFlagsAndPshOnly) {
  Replay r(40005);
  r.step("SYN+ECE+CWR", T(40005, 80, 1000U, 0U, "SEC", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 mark=0 use=1");
  r.step("S>C SYN/ACK+ECE", TR(80, 40005, 5000U, 1001U, "SAE", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 mark=0 use=1");
  r.step("C>S PSH without ACK", T(40005, 80, 1001U, 0U, "P"),
         "INVALID", "-",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 mark=0 use=1");
  r.step("C>S URG+ACK", T(40005, 80, 1001U, 5001U, "UA"),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, RstInWindowAfterHandshake) {
  Replay r(40006);
  r.step("C>S SYN", T(40006, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40006, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 mark=0 use=1");
  r.step("C>S ACK", T(40006, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("S>C RST seq=5001 (exact)", TR(80, 40006, 5001U, 0U, "R", {.win = 0}),
         "ESTABLISHED", "REPLY",
         "tcp      6 9 CLOSE src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("C>S ACK after close", T(40006, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 9 CLOSE src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("C>S SYN after a RST from the other side is ignored", T(40006, 80, 70000U, 0U, "S", {.ws = true}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 9 CLOSE src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, RstSequenceChecks) {
  Replay r(40007);
  r.step("C>S SYN", T(40007, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40007, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 mark=0 use=1");
  r.step("C>S ACK", T(40007, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("C>S ACK again", T(40007, 80, 1001U, 5001U, "A", {.win = 503}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("S>C RST below the client's max ack", TR(80, 40007, 4000U, 0U, "R", {.win = 0}),
         "INVALID", "-",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("S>C RST in window, not exact", TR(80, 40007, 5011U, 0U, "R", {.win = 0}),
         "ESTABLISHED", "REPLY",
         "tcp      6 9 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("S>C RST far out of window", TR(80, 40007, 80005001U, 0U, "R", {.win = 0}),
         "INVALID", "-",
         "tcp      6 9 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("C>S RST seq=1001 (exact)", T(40007, 80, 1001U, 0U, "R", {.win = 0}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 9 CLOSE src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 [ASSURED] mark=0 use=1");
  r.step("C>S SYN after its own RST reopens", T(40007, 80, 77777U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40007 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40007 mark=0 use=1");
}

TEST(KernelSequences, RstAnsweringSyn) {
  Replay r(40008);
  r.step("C>S SYN", T(40008, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 mark=0 use=1");
  r.step("S>C RST/ACK seq=0 ack=1001", TR(80, 40008, 0U, 1001U, "RA", {.win = 0}),
         "ESTABLISHED", "REPLY",
         "");
  r.step("C>S SYN again", T(40008, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 mark=0 use=1");
}

TEST(KernelSequences, Retransmissions) {
  Replay r(40009);
  r.step("C>S SYN", T(40009, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 mark=0 use=1");
  r.sleep(2.2);
  r.step("C>S SYN retransmitted: timeout not renewed", T(40009, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 117 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40009, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 mark=0 use=1");
  r.step("S>C SYN/ACK retransmitted", TR(80, 40009, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 mark=0 use=1");
  r.step("C>S ACK", T(40009, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S data 50", T(40009, 80, 1001U, 5001U, "PA", {.win = 502, .data = 50}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S data 50 again 1", T(40009, 80, 1001U, 5001U, "PA", {.win = 502, .data = 50}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S data 50 again 2", T(40009, 80, 1001U, 5001U, "PA", {.win = 502, .data = 50}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S data 50 again 3", T(40009, 80, 1001U, 5001U, "PA", {.win = 502, .data = 50}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S data 50 again 4", T(40009, 80, 1001U, 5001U, "PA", {.win = 502, .data = 50}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 1051", TR(80, 40009, 5001U, 1051U, "A", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("S>C zero window ACK", TR(80, 40009, 5001U, 1051U, "A", {.win = 0}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
  r.step("C>S ACK", T(40009, 80, 1051U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40009 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40009 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, WindowChecksSmallWindows) {
  Replay r(40010);
  r.step("C>S SYN win 1000", T(40010, 80, 1000U, 0U, "S", {.win = 1000}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 mark=0 use=1");
  r.step("S>C SYN/ACK win 2000", TR(80, 40010, 5000U, 1001U, "SA", {.win = 2000}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 mark=0 use=1");
  r.step("C>S ACK", T(40010, 80, 1001U, 5001U, "A", {.win = 1000}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S data 500", T(40010, 80, 1001U, 5001U, "PA", {.win = 1000, .data = 500}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S seq 3100 beyond max_end, small overshoot", T(40010, 80, 3100U, 5001U, "PA", {.win = 1000, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S seq 2000 in window", T(40010, 80, 2000U, 5001U, "PA", {.win = 1000, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S ack 7001 over the server's end", T(40010, 80, 1501U, 7001U, "A", {.win = 1000}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S old data below the window", T(40010, 80, 4294963297U, 5001U, "PA", {.win = 1000, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S ack far below", T(40010, 80, 1501U, 4294872297U, "A", {.win = 1000}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 1501", TR(80, 40010, 5001U, 1501U, "A", {.win = 2000}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S seq 3400 len 1200", T(40010, 80, 3400U, 5001U, "PA", {.win = 1000, .data = 1200}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S seq 5600 len 10, overshoot within max_win", T(40010, 80, 5600U, 5001U, "PA", {.win = 1000, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 4600", TR(80, 40010, 5001U, 4600U, "A", {.win = 2000}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 4601", TR(80, 40010, 5001U, 4601U, "A", {.win = 2000}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 5611 over the client's end", TR(80, 40010, 5001U, 5611U, "A", {.win = 2000}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S seq 20000 far beyond the window", T(40010, 80, 20000U, 5001U, "PA", {.win = 1000, .data = 10}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("C>S FIN far beyond the window", T(40010, 80, 90000U, 5001U, "FA", {.win = 1000}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
  r.step("S>C ACK 5610 zero window", TR(80, 40010, 5001U, 5610U, "A", {.win = 0}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40010 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40010 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, SimultaneousOpen) {
  Replay r(40011);
  r.step("C>S SYN", T(40011, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 mark=0 use=1");
  r.step("S>C SYN", TR(80, 40011, 5000U, 0U, "S", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 119 SYN_SENT2 src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 mark=0 use=1");
  r.step("C>S SYN/ACK", T(40011, 80, 1000U, 5001U, "SA", {.ws = true}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40011, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 mark=0 use=1");
  r.step("C>S ACK", T(40011, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 [ASSURED] mark=0 use=1");
  r.step("S>C ACK", TR(80, 40011, 5001U, 1001U, "A", {.win = 502}),
         "ESTABLISHED", "REPLY",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40011 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40011 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, SynInEstablishedThenResync) {
  Replay r(40012);
  r.step("C>S SYN", T(40012, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40012, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 mark=0 use=1");
  r.step("C>S ACK", T(40012, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 [ASSURED] mark=0 use=1");
  r.step("C>S ACK again", T(40012, 80, 1001U, 5001U, "A", {.win = 503}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 [ASSURED] mark=0 use=1");
  r.step("C>S new SYN seq 300000 is ignored", T(40012, 80, 300000U, 0U, "S", {.ws = true}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 [ASSURED] mark=0 use=1");
  r.step("S>C SYN/ACK answering it resyncs", TR(80, 40012, 900000U, 300001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 [ASSURED] mark=0 use=1");
  r.step("C>S ACK", T(40012, 80, 300001U, 900001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40012 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40012 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, TimeWaitSynFromReplySide) {
  Replay r(40013);
  r.step("C>S SYN", T(40013, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40013, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 mark=0 use=1");
  r.step("C>S ACK", T(40013, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 [ASSURED] mark=0 use=1");
  r.step("C>S FIN/ACK", T(40013, 80, 1001U, 5001U, "FA", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 FIN_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 [ASSURED] mark=0 use=1");
  r.step("S>C FIN/ACK", TR(80, 40013, 5001U, 1002U, "FA", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 29 LAST_ACK src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 [ASSURED] mark=0 use=1");
  r.step("C>S ACK", T(40013, 80, 1002U, 5002U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 TIME_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 [ASSURED] mark=0 use=1");
  r.step("S>C SYN reopens with the roles switched", TR(80, 40013, 99000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40013 [UNREPLIED] src=10.201.1.5 dst=10.201.2.5 sport=40013 dport=80 mark=0 use=1");
}

TEST(KernelSequences, SynSentRejects) {
  Replay r(40014);
  r.step("C>S SYN", T(40014, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40014 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40014 mark=0 use=1");
  r.step("C>S FIN/ACK", T(40014, 80, 1001U, 1U, "FA"),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40014 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40014 mark=0 use=1");
  r.step("C>S SYN/ACK", T(40014, 80, 1000U, 1U, "SA"),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40014 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40014 mark=0 use=1");
  r.step("S>C ACK is ignored but counts as a reply", TR(80, 40014, 5000U, 1001U, "A"),
         "ESTABLISHED", "REPLY",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40014 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40014 mark=0 use=1");
  r.step("C>S ACK", T(40014, 80, 1001U, 5000U, "A"),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40014 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40014 mark=0 use=1");
}

TEST(KernelSequences, WindowScaledBothWays) {
  Replay r(40016);
  r.step("C>S SYN win 1000 wscale 7", T(40016, 80, 1000U, 0U, "S", {.win = 1000, .ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40016 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40016 mark=0 use=1");
  r.step("S>C SYN/ACK win 100", TR(80, 40016, 5000U, 1001U, "SA", {.win = 100, .ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40016 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40016 mark=0 use=1");
  r.step("C>S ACK win 1000", T(40016, 80, 1001U, 5001U, "A", {.win = 1000}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40016 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40016 [ASSURED] mark=0 use=1");
  r.step("S>C ACK win 10", TR(80, 40016, 5001U, 1001U, "A", {.win = 10}),
         "ESTABLISHED", "REPLY",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40016 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40016 [ASSURED] mark=0 use=1");
  r.step("C>S seq 2200 len 10", T(40016, 80, 2200U, 5001U, "PA", {.win = 1000, .data = 10}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40016 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40016 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, WindowScaleOnlyOneSide) {
  Replay r(40017);
  r.step("C>S SYN win 1000 wscale 7", T(40017, 80, 1000U, 0U, "S", {.win = 1000, .ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40017 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40017 mark=0 use=1");
  r.step("S>C SYN/ACK win 100", TR(80, 40017, 5000U, 1001U, "SA", {.win = 100}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40017 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40017 mark=0 use=1");
  r.step("C>S ACK win 1000", T(40017, 80, 1001U, 5001U, "A", {.win = 1000}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40017 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40017 [ASSURED] mark=0 use=1");
  r.step("S>C ACK win 10", TR(80, 40017, 5001U, 1001U, "A", {.win = 10}),
         "ESTABLISHED", "REPLY",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40017 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40017 [ASSURED] mark=0 use=1");
  r.step("C>S seq 2200 len 10", T(40017, 80, 2200U, 5001U, "PA", {.win = 1000, .data = 10}),
         "INVALID", "-",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40017 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40017 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, SackBlocks) {
  Replay r(40018);
  r.step("C>S SYN", T(40018, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40018, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 mark=0 use=1");
  r.step("C>S ACK", T(40018, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 [ASSURED] mark=0 use=1");
  r.step("C>S data 100", T(40018, 80, 1001U, 5001U, "PA", {.win = 502, .data = 100}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 [ASSURED] mark=0 use=1");
  r.step("S>C dup ACK with SACK 1051-1101", TR(80, 40018, 5001U, 1001U, "A", {.win = 509, .sack_left = 1051U, .sack_right = 1101U}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 [ASSURED] mark=0 use=1");
  r.step("S>C dup ACK with SACK 1051-1201", TR(80, 40018, 5001U, 1001U, "A", {.win = 509, .sack_left = 1051U, .sack_right = 1201U}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40018 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40018 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, ChallengeAckInLastAck) {
  Replay r(40019);
  r.step("C>S SYN", T(40019, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40019, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 mark=0 use=1");
  r.step("C>S ACK", T(40019, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
  r.step("C>S FIN/ACK", T(40019, 80, 1001U, 5001U, "FA", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 FIN_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
  r.step("S>C FIN/ACK", TR(80, 40019, 5001U, 1002U, "FA", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 29 LAST_ACK src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
  r.step("C>S SYN in LAST_ACK", T(40019, 80, 600000U, 0U, "S", {.ws = true}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 29 LAST_ACK src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
  r.step("S>C challenge ACK", TR(80, 40019, 5002U, 1002U, "A", {.win = 509}),
         "ESTABLISHED", "REPLY",
         "tcp      6 29 LAST_ACK src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
  r.step("C>S last ACK", T(40019, 80, 1002U, 5002U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 119 TIME_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40019 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40019 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, OutOfWindowFinThenRst) {
  Replay r(40020);
  r.step("C>S SYN", T(40020, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40020, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 mark=0 use=1");
  r.step("C>S ACK", T(40020, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 [ASSURED] mark=0 use=1");
  r.step("C>S ACK again", T(40020, 80, 1001U, 5001U, "A", {.win = 503}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 [ASSURED] mark=0 use=1");
  r.step("C>S FIN far out of window", T(40020, 80, 90001001U, 5001U, "FA", {.win = 502}),
         "INVALID", "-",
         "tcp      6 431999 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 [ASSURED] mark=0 use=1");
  r.step("S>C RST far out of window", TR(80, 40020, 90005001U, 0U, "R", {.win = 0}),
         "INVALID", "-",
         "tcp      6 299 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40020 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40020 [ASSURED] mark=0 use=1");
}

TEST(KernelSequences, ReplySideSpeaksFirst) {
  Replay r(40021);
  r.step("S>C ACK picked up", TR(80, 40021, 5001U, 1001U, "A", {.win = 509}),
         "NEW", "ORIGINAL",
         "tcp      6 299 ESTABLISHED src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 [UNREPLIED] src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
  r.step("C>S ACK", T(40021, 80, 1001U, 5001U, "A", {.win = 502}),
         "ESTABLISHED", "REPLY",
         "tcp      6 299 ESTABLISHED src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
  r.step("C>S FIN/ACK", T(40021, 80, 1001U, 5001U, "FA", {.win = 502}),
         "ESTABLISHED", "REPLY",
         "tcp      6 119 FIN_WAIT src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
  r.step("S>C FIN/ACK", TR(80, 40021, 5001U, 1002U, "FA", {.win = 509}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 29 LAST_ACK src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
  r.step("C>S ACK", T(40021, 80, 1002U, 5002U, "A", {.win = 502}),
         "ESTABLISHED", "REPLY",
         "tcp      6 119 TIME_WAIT src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
  r.step("S>C RST in TIME_WAIT", TR(80, 40021, 5002U, 0U, "R", {.win = 0}),
         "ESTABLISHED", "ORIGINAL",
         "tcp      6 9 CLOSE src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40021 src=10.201.1.5 dst=10.201.2.5 sport=40021 dport=80 mark=0 use=1");
}

TEST(KernelSequences, Checksums) {
  Replay r(40015);
  r.step("C>S SYN bad checksum", T(40015, 80, 1000U, 0U, "S", {.ws = true, .bad = true}),
         "INVALID", "-",
         "");
  r.step("C>S SYN", T(40015, 80, 1000U, 0U, "S", {.ws = true}),
         "NEW", "ORIGINAL",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40015 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40015 mark=0 use=1");
  r.step("S>C SYN/ACK bad checksum", TR(80, 40015, 5000U, 1001U, "SA", {.ws = true, .bad = true}),
         "INVALID", "-",
         "tcp      6 119 SYN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40015 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40015 mark=0 use=1");
  r.step("S>C SYN/ACK", TR(80, 40015, 5000U, 1001U, "SA", {.ws = true}),
         "ESTABLISHED", "REPLY",
         "tcp      6 59 SYN_RECV src=10.201.1.5 dst=10.201.2.5 sport=40015 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40015 mark=0 use=1");
}

// ---------------------------------------------------------------- pure functions

TEST(TcpFlagClass, RstWinsThenSynThenFinThenAck) {
  EXPECT_EQ(tcp_flag_class(flag_bits("S")), TcpFlagClass::Syn);
  EXPECT_EQ(tcp_flag_class(flag_bits("SA")), TcpFlagClass::SynAck);
  EXPECT_EQ(tcp_flag_class(flag_bits("FA")), TcpFlagClass::Fin);
  EXPECT_EQ(tcp_flag_class(flag_bits("PA")), TcpFlagClass::Ack);
  EXPECT_EQ(tcp_flag_class(flag_bits("RA")), TcpFlagClass::Rst);
  EXPECT_EQ(tcp_flag_class(flag_bits("SR")), TcpFlagClass::Rst);
  EXPECT_EQ(tcp_flag_class(flag_bits("SF")), TcpFlagClass::Syn);
  EXPECT_EQ(tcp_flag_class(flag_bits("P")), TcpFlagClass::None);
  EXPECT_EQ(tcp_flag_class(0), TcpFlagClass::None);
}

TEST(TcpFlagsValid, ExactlyTheNineCombinationsPassWhateverPshEceCwr) {
  const std::vector<std::string_view> valid = {"S", "SU", "SA", "R", "RA", "FA", "FAU", "A", "AU"};
  for (unsigned v = 0; v < 256; ++v) {
    const auto flags = static_cast<uint8_t>(v);
    const auto core = static_cast<uint8_t>(
        flags & (tcp_flag::kFin | tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kAck | tcp_flag::kUrg));
    bool expected = false;
    for (std::string_view letters : valid) expected = expected || core == flag_bits(letters);
    EXPECT_EQ(tcp_flags_valid(flags), expected) << "flags 0x" << std::hex << v;
  }
}

TEST(TcpTransitionTable, CellsTheSequencesRelyOn) {
  auto next = [](CtDir d, TcpFlagClass c, TcpCtState s) { return tcp_transition(d, c, s); };
  const auto o = CtDir::Original;
  const auto r = CtDir::Reply;
  EXPECT_EQ(next(o, TcpFlagClass::Syn, TcpCtState::None).next, TcpCtState::SynSent);
  EXPECT_EQ(next(o, TcpFlagClass::Ack, TcpCtState::None).next, TcpCtState::Established);
  EXPECT_EQ(next(o, TcpFlagClass::Ack, TcpCtState::SynSent).step, TcpStep::Invalid);
  EXPECT_EQ(next(o, TcpFlagClass::Fin, TcpCtState::SynSent).step, TcpStep::Invalid);
  EXPECT_EQ(next(o, TcpFlagClass::SynAck, TcpCtState::SynSent).step, TcpStep::Invalid);
  EXPECT_EQ(next(o, TcpFlagClass::Syn, TcpCtState::Established).step, TcpStep::Ignore);
  EXPECT_EQ(next(o, TcpFlagClass::Syn, TcpCtState::TimeWait).next, TcpCtState::SynSent);
  EXPECT_EQ(next(r, TcpFlagClass::Syn, TcpCtState::TimeWait).next, TcpCtState::SynSent);
  EXPECT_EQ(next(r, TcpFlagClass::Syn, TcpCtState::SynSent).next, TcpCtState::SynSent2);
  EXPECT_EQ(next(r, TcpFlagClass::SynAck, TcpCtState::SynSent).next, TcpCtState::SynRecv);
  EXPECT_EQ(next(r, TcpFlagClass::SynAck, TcpCtState::Established).step, TcpStep::Ignore);
  EXPECT_EQ(next(r, TcpFlagClass::Ack, TcpCtState::SynSent).step, TcpStep::Ignore);
  EXPECT_EQ(next(o, TcpFlagClass::Fin, TcpCtState::Established).next, TcpCtState::FinWait);
  EXPECT_EQ(next(r, TcpFlagClass::Ack, TcpCtState::FinWait).next, TcpCtState::CloseWait);
  EXPECT_EQ(next(r, TcpFlagClass::Fin, TcpCtState::FinWait).next, TcpCtState::LastAck);
  EXPECT_EQ(next(o, TcpFlagClass::Ack, TcpCtState::LastAck).next, TcpCtState::TimeWait);
  for (auto s : {TcpCtState::SynSent, TcpCtState::Established, TcpCtState::TimeWait}) {
    EXPECT_EQ(next(o, TcpFlagClass::Rst, s).next, TcpCtState::Close);
    EXPECT_EQ(next(r, TcpFlagClass::None, s).step, TcpStep::Invalid);
  }
  EXPECT_EQ(next(o, TcpFlagClass::Rst, TcpCtState::None).step, TcpStep::Invalid);
  EXPECT_STREQ(tcp_ct_state_name(TcpCtState::SynSent2), "SYN_SENT2");
  EXPECT_STREQ(tcp_ct_state_name(TcpCtState::CloseWait), "CLOSE_WAIT");
}

PacketKey parse(const Bytes& frame) {
  PacketKey key;
  EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, key),
            ParseStatus::Ok);
  return key;
}

TEST(ReadTcpSegment, ReadsSeqAckWindowOptionsAndPayloadLength) {
  const Bytes frame = test::ethernet({}, T(1234, 80, 0xfffffff0U, 77, "PA", {.win = 999, .ws = true, .data = 33}));
  const PacketKey key = parse(frame);
  TcpSegment seg;
  ASSERT_TRUE(read_tcp_segment(frame.data(), static_cast<uint32_t>(frame.size()), key, seg));
  EXPECT_EQ(seg.seq, 0xfffffff0U);
  EXPECT_EQ(seg.ack, 77U);
  EXPECT_EQ(seg.window, 999);
  EXPECT_EQ(seg.flags, flag_bits("PA"));
  EXPECT_EQ(seg.header_len, 32);
  EXPECT_EQ(seg.payload_len, 33U);
  ASSERT_NE(seg.options, nullptr);
  EXPECT_EQ(seg.options[0], 2);  // MSS first
  // The frame cut inside the options: the header no longer fits.
  EXPECT_FALSE(read_tcp_segment(frame.data(), 14 + 20 + 24, key, seg));
  PacketKey udp = key;
  udp.proto = kProtoUdp;
  EXPECT_FALSE(read_tcp_segment(frame.data(), static_cast<uint32_t>(frame.size()), udp, seg));
}

TEST(TcpOpen, OnlySynOrLooseAckOpens) {
  TcpSettings s;
  TcpConn c;
  TcpSegment seg;
  seg.flags = flag_bits("S");
  seg.seq = 100;
  seg.window = 0;
  EXPECT_TRUE(tcp_open(c, seg, s));
  EXPECT_EQ(c.peer[0].end, 101U);      // the SYN counts one
  EXPECT_EQ(c.peer[0].max_win, 1U);    // a zero window counts as 1
  EXPECT_EQ(c.peer[0].max_end, 101U);
  seg.flags = flag_bits("A");
  seg.window = 500;
  EXPECT_TRUE(tcp_open(c, seg, s));
  EXPECT_EQ(c.peer[0].max_end, 100U + 500U);
  EXPECT_NE(c.peer[0].flags & TcpPeer::kBeLiberal, 0);
  EXPECT_NE(c.peer[1].flags & TcpPeer::kBeLiberal, 0);
  s.loose = false;
  EXPECT_FALSE(tcp_open(c, seg, s));
  for (std::string_view f : {"SA", "FA", "R", "RA"}) {
    seg.flags = flag_bits(f);
    EXPECT_FALSE(tcp_open(c, seg, TcpSettings{})) << f;
  }
}

// ---------------------------------------------------------------- switches

// The default settings with one switch flipped.
CtConfig with_tcp(bool TcpSettings::*field, bool value) {
  CtConfig c = Replay::small_config();
  c.tcp.*field = value;
  return c;
}

TEST(TcpSwitches, LooseOffRefusesMidStreamAck) {
  Replay r(40002, with_tcp(&TcpSettings::loose, false));
  const CtResult res = r.send(T(40002, 80, 1001, 5001, "A", {.win = 502}));
  EXPECT_EQ(res.state, kCtInvalid);
  EXPECT_EQ(res.reason, CtReason::TcpCannotOpen);
  EXPECT_EQ(r.flow_lines(), "");
  EXPECT_EQ(r.send(T(40002, 80, 1000, 0, "S", {.ws = true})).state, kCtNew);
}

// The WindowChecksSmallWindows sequence up to the first INVALID, which
// be_liberal turns into an accepted packet.
TEST(TcpSwitches, BeLiberalPassesAckOfUnsentData) {
  for (bool liberal : {false, true}) {
    Replay r(40010, with_tcp(&TcpSettings::be_liberal, liberal));
    r.send(T(40010, 80, 1000, 0, "S", {.win = 1000}));
    r.send(TR(80, 40010, 5000, 1001, "SA", {.win = 2000}));
    r.send(T(40010, 80, 1001, 5001, "A", {.win = 1000}));
    const CtResult res = r.send(T(40010, 80, 1001, 7001, "A", {.win = 1000}));
    EXPECT_EQ(res.state, liberal ? kCtEstablished : kCtInvalid) << liberal;
    EXPECT_EQ(res.reason, liberal ? CtReason::None : CtReason::TcpAckOverEnd);
  }
}

// The RstSequenceChecks sequence: a RST below the client's highest ACK.
TEST(TcpSwitches, IgnoreInvalidRstLetsTheRstThrough) {
  for (bool ignore : {false, true}) {
    Replay r(40007, with_tcp(&TcpSettings::ignore_invalid_rst, ignore));
    r.send(T(40007, 80, 1000, 0, "S", {.ws = true}));
    r.send(TR(80, 40007, 5000, 1001, "SA", {.ws = true}));
    r.send(T(40007, 80, 1001, 5001, "A", {.win = 502}));
    r.send(T(40007, 80, 1001, 5001, "A", {.win = 503}));
    const CtResult res = r.send(TR(80, 40007, 4000, 0, "R", {.win = 0}));
    if (ignore) {
      EXPECT_NE(res.reason, CtReason::TcpInvalidRst);
    } else {
      EXPECT_EQ(res.state, kCtInvalid);
      EXPECT_EQ(res.reason, CtReason::TcpInvalidRst);
    }
  }
}

TEST(TcpSwitches, MaxRetransAndTimeoutsAreConfigurable) {
  TcpSettings s;
  s.max_retrans = 1;
  s.timeouts.established = 1000;
  s.timeouts.max_retrans = 50;
  CtConfig c = Replay::small_config();
  c.tcp = s;
  Replay r(40009, c);
  r.send(T(40009, 80, 1000, 0, "S", {.ws = true}));
  r.send(TR(80, 40009, 5000, 1001, "SA", {.ws = true}));
  r.send(T(40009, 80, 1001, 5001, "A", {.win = 502}));
  EXPECT_NE(r.flow_lines().find(" 1000 ESTABLISHED "), std::string::npos) << r.flow_lines();
  r.send(TR(80, 40009, 5001, 1001, "A", {.win = 509}));
  r.send(TR(80, 40009, 5001, 1001, "A", {.win = 509}));  // one retransmission
  EXPECT_NE(r.flow_lines().find(" 50 ESTABLISHED "), std::string::npos) << r.flow_lines();
}

TEST(TcpCounters, ReopenKillAndIgnoreAreCounted) {
  Replay r(40013);
  r.send(T(40013, 80, 1000, 0, "S", {.ws = true}));
  r.send(TR(80, 40013, 0, 1001, "RA", {.win = 0}));  // RST before any reply: entry deleted
  EXPECT_EQ(r.table().counters().killed, 1U);
  EXPECT_EQ(r.table().size(), 0U);
  r.send(T(40013, 80, 1000, 0, "S", {.ws = true}));
  r.send(TR(80, 40013, 5000, 1001, "SA", {.ws = true}));
  r.send(TR(80, 40013, 5000, 1001, "SA", {.ws = true}));  // retransmitted SYN/ACK: ignored
  EXPECT_EQ(r.table().counters().ignored, 1U);
  r.send(T(40013, 80, 1001, 5001, "FA", {.win = 502}));
  r.send(TR(80, 40013, 5001, 1002, "FA", {.win = 509}));
  r.send(T(40013, 80, 1002, 5002, "A", {.win = 502}));
  const CtResult res = r.send(T(40013, 80, 9000, 0, "S", {.ws = true}));
  EXPECT_EQ(res.state, kCtNew);
  EXPECT_TRUE(res.created);
  EXPECT_EQ(r.table().counters().reopened, 1U);
  EXPECT_EQ(r.table().size(), 1U);
}


// ---------------------------------------------------------------- fast check

// Field-by-field equality (TcpConn has padding bytes).
bool same_peer(const TcpPeer& a, const TcpPeer& b) {
  return a.end == b.end && a.max_end == b.max_end && a.max_win == b.max_win && a.max_ack == b.max_ack &&
         a.scale == b.scale && a.flags == b.flags;
}
bool same_conn(const TcpConn& a, const TcpConn& b) {
  return same_peer(a.peer[0], b.peer[0]) && same_peer(a.peer[1], b.peer[1]) && a.state == b.state &&
         a.last_class == b.last_class && a.last_dir == b.last_dir && a.retrans == b.retrans &&
         a.last_wscale == b.last_wscale && a.last_flags == b.last_flags && a.last_win == b.last_win &&
         a.last_seq == b.last_seq && a.last_ack == b.last_ack && a.last_end == b.last_end;
}

// Random segment streams: two endpoints that mostly talk in window (data,
// ACKs, window updates, SACK blocks, retransmissions) and now and then send
// something else (a jump in sequence or ack space, a zero window, FIN, RST,
// SYN, no ACK). For every segment the fast check either does exactly what
// tcp_track() does -- the same TcpConn afterwards, the same update -- or
// declines and changes nothing.
TEST(TcpTrackFast, EqualsTheFullTrackerOnRandomStreams) {
  uint64_t state = 0x5eed;
  auto rnd = [&](uint32_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>((state >> 33) % n);
  };
  // Options: NOP NOP SACK with one block, or NOP NOP timestamps.
  uint8_t sack_opt[12] = {1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  const uint8_t ts_opt[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  uint64_t fast = 0;
  uint64_t declined = 0;
  for (int stream = 0; stream < 400; ++stream) {
    TcpSettings settings;
    settings.be_liberal = rnd(10) == 0;
    settings.max_retrans = static_cast<uint8_t>(1 + rnd(3));
    TcpConn conn;
    uint32_t snd[2] = {rnd(1U << 31) | 1U, rnd(1U << 31) | 1U};
    const bool ws = rnd(2) == 0;
    TcpSegment syn;
    syn.flags = flag_bits("S");
    syn.seq = snd[0];
    syn.window = 65535;
    const uint8_t wsopt[4] = {1, 3, 3, 7};
    if (ws) {
      syn.header_len = 24;
      syn.options = wsopt;
    }
    ASSERT_TRUE(tcp_open(conn, syn, settings));
    bool seen_reply = false;
    bool assured = false;
    auto run = [&](CtDir dir, const TcpSegment& seg) {
      TcpConn full = conn;
      const TcpUpdate want = tcp_track(full, dir, seg, seen_reply, assured, settings);
      TcpConn quick = conn;
      TcpUpdate got;
      if (tcp_track_fast(quick, dir, seg, seen_reply, assured, settings, got)) {
        ++fast;
        EXPECT_TRUE(same_conn(quick, full)) << "stream " << stream;
        EXPECT_EQ(got.verdict, want.verdict);
        EXPECT_EQ(got.reason, want.reason);
        EXPECT_EQ(got.refresh, want.refresh);
        EXPECT_EQ(got.timeout_s, want.timeout_s);
        EXPECT_EQ(got.kill, want.kill);
        EXPECT_EQ(got.set_assured, want.set_assured);
        EXPECT_EQ(got.shrink_timeout, want.shrink_timeout);
      } else {
        ++declined;
        EXPECT_TRUE(same_conn(quick, conn)) << "declined, yet changed: stream " << stream;
      }
      conn = full;
      if (want.verdict != TcpVerdict::Invalid && dir == CtDir::Reply) seen_reply = true;
      if (want.verdict == TcpVerdict::Accept && want.set_assured) assured = true;
      return want;
    };
    run(CtDir::Original, syn);  // the table tracks the opening segment too
    ++snd[0];
    TcpSegment synack;
    synack.flags = flag_bits("SA");
    synack.seq = snd[1];
    synack.ack = snd[0];
    synack.window = 65535;
    if (ws && rnd(4) != 0) {
      synack.header_len = 24;
      synack.options = wsopt;
    }
    run(CtDir::Reply, synack);
    ++snd[1];
    for (int i = 0; i < 300; ++i) {
      const auto d = rnd(2);
      const CtDir dir = d == 0 ? CtDir::Original : CtDir::Reply;
      TcpSegment seg;
      seg.flags = flag_bits(rnd(3) == 0 ? "PA" : "A");
      seg.seq = snd[d];
      seg.ack = snd[1 - d];
      seg.window = static_cast<uint16_t>(rnd(8) == 0 ? 0 : 100 + rnd(60000));
      seg.payload_len = rnd(3) == 0 ? 0 : rnd(1460);
      switch (rnd(120)) {
        case 0: seg.seq += rnd(1U << 31); break;                          // far ahead
        case 1: seg.seq -= rnd(200000); break;                            // old data
        case 2: seg.ack += rnd(100000); break;                            // ack of unsent data
        case 3: seg.ack -= rnd(200000); break;                            // very old ack
        case 4: seg.flags = flag_bits("FA"); break;
        case 5: seg.flags = flag_bits(rnd(2) == 0 ? "R" : "RA"); break;
        case 6: seg.flags = flag_bits("S"); break;
        case 7: seg.flags = flag_bits("SA"); break;
        case 8: seg.flags = flag_bits("P"); break;                        // no ACK at all
        case 9: seg.flags = flag_bits("UA"); break;
        case 10: seg.seq = snd[d] - seg.payload_len; break;               // retransmission
        default: break;
      }
      switch (rnd(4)) {
        case 0: {  // a SACK block ending at or a little beyond the ack
          const uint32_t right = seg.ack + (rnd(2) == 0 ? 0U : rnd(3000));
          store_be32(sack_opt + 4, right - 1000);
          store_be32(sack_opt + 8, right);
          seg.header_len = 32;
          seg.options = sack_opt;
          break;
        }
        case 1:
          seg.header_len = 32;
          seg.options = ts_opt;
          break;
        default: break;
      }
      const TcpUpdate u = run(dir, seg);
      if (u.verdict == TcpVerdict::Accept && rnd(5) != 0) snd[d] = seg.seq + seg.payload_len;
      if (conn.state != TcpCtState::Established && conn.state != TcpCtState::SynRecv) break;
    }
  }
  // Both ways taken, the fast one most of the time.
  EXPECT_GT(fast, 20000U);
  EXPECT_GT(declined, 2000U);
}

}  // namespace
}  // namespace nfb
