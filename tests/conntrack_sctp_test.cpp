// Tests of SCTP, UDP-Lite, GRE (and DCCP's generic) connection tracking and of CRC32c: the CRC
// against the standard check value and an independent bitwise
// implementation; the SCTP state table cell by cell where the kernel's
// comments single it out; and packet sequences replayed with the answers
// Linux 6.18 gave for the very same packets (SctpKernelSequences.*,
// UdpliteKernelSequences.*, GreKernelSequences.*, DccpKernelSequences.*),
// measured with
// tests/probes/conntrack/sctp_scenarios.py as conntrack_test.cpp describes
// (ctstate and direction from mangle PREROUTING counters, then the flow's
// conntrack -L line; packets 60 ms apart, the dump 40 ms after each).
// The expected strings are the probe's output, pasted verbatim.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netfilter/conntrack.h"
#include "netfilter/conntrack_sctp.h"
#include "packet/checksum.h"
#include "packet/crc32c.h"
#include "packet/frame_parser.h"
#include "tests/support/conntrack_replay.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

using test::Bytes;
using test::kC;
using test::kS;
using test::Replay;

// ---------------------------------------------------------------- CRC32c

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

TEST(Crc32c, StandardCheckValue) {
  const Bytes b = text("123456789");
  EXPECT_EQ(crc32c(b.data(), b.size()), 0xE3069283U);
  EXPECT_EQ(~crc32c_update_table(~0U, b.data(), b.size()), 0xE3069283U);
  EXPECT_EQ(test::ref_crc32c(b, 0, b.size()), 0xE3069283U);
}

TEST(Crc32c, KnownVectorsOfRfc3720) {
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of ones, ascending, descending.
  Bytes zeros(32, 0x00);
  Bytes ones(32, 0xff);
  Bytes up(32);
  Bytes down(32);
  for (uint8_t i = 0; i < 32; ++i) {
    up[i] = i;
    down[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAU);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43U);
  EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794EU);
  EXPECT_EQ(crc32c(down.data(), 32), 0x113FDB5CU);
}

TEST(Crc32c, HardwareTableAndBitwiseAgreeAtEveryLengthAndAlignment) {
  Bytes b(300);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 131 + 7);
  for (std::size_t from = 0; from < 9; ++from) {
    for (std::size_t n = 0; n + from <= 200; n += 7) {
      const uint32_t ref = test::ref_crc32c(b, from, n);
      EXPECT_EQ(crc32c(b.data() + from, n), ref) << from << "+" << n;
      EXPECT_EQ(~crc32c_update_table(~0U, b.data() + from, n), ref) << from << "+" << n;
    }
  }
  // In pieces: the register carries over.
  const uint32_t whole = crc32c(b.data(), 250);
  EXPECT_EQ(~crc32c_update(crc32c_update(~0U, b.data(), 13), b.data() + 13, 237), whole);
}

TEST(Crc32c, SctpChecksumSkipsItsFieldAndIsStoredLittleEndian) {
  Bytes p = test::ipv4({.src = kC, .dst = kS, .proto = kProtoSctp},
                       test::sctp({.sport = 1, .dport = 2, .vtag = 0x01020304,
                                   .chunks = {test::sctp_chunk({.type = 0, .value = text("data")})}}));
  const uint8_t* sctp = p.data() + 20;
  const auto n = static_cast<uint32_t>(p.size() - 20);
  EXPECT_EQ(sctp_checksum(sctp, n), sctp_stored_checksum(sctp));
  EXPECT_EQ(sctp_stored_checksum(sctp), test::ref_sctp_stored(p, 20));
  // The field itself does not count: any value there gives the same CRC.
  const uint32_t before = sctp_checksum(sctp, n);
  p[28] ^= 0xff;
  EXPECT_EQ(sctp_checksum(p.data() + 20, n), before);
  sctp_store_checksum(p.data() + 20, before);
  EXPECT_EQ(test::ref_sctp_stored(p, 20), test::ref_sctp_checksum(p, 20, n));
}

PacketKey key_of(const Bytes& frame) {
  PacketKey k;
  EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, k), ParseStatus::Ok);
  return k;
}

TEST(L4Checksum, SctpAndUdpliteAsConntrackChecksThem) {
  const auto frame = [](uint8_t proto, const Bytes& l4, test::L4Checksum c) {
    return test::ethernet({}, test::ipv4({.src = kC, .dst = kS, .proto = proto, .l4_checksum = c}, l4));
  };
  const Bytes sctp = test::sctp({.sport = 5, .dport = 6, .chunks = {test::sctp_chunk({.type = 1, .value = Bytes(16)})}});
  for (const auto c : {test::L4Checksum::Fill, test::L4Checksum::Corrupt}) {
    const Bytes f = frame(kProtoSctp, sctp, c);
    const PacketKey k = key_of(f);
    EXPECT_TRUE(k.has(key_flag::kPorts));
    EXPECT_EQ(k.dst_port, 6);
    EXPECT_EQ(l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), k), c == test::L4Checksum::Fill);
  }
  // UDP-Lite: the kernel's sum (protocol 17) passes, RFC 3828's (136) does not.
  const Bytes ul = test::udplite({.sport = 5, .dport = 6, .coverage = 8, .payload = text("payload")});
  for (const auto c : {test::L4Checksum::UdpliteAsUdp, test::L4Checksum::Fill, test::L4Checksum::Corrupt}) {
    const Bytes f = frame(kProtoUdplite, ul, c);
    EXPECT_EQ(l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), key_of(f)),
              c == test::L4Checksum::UdpliteAsUdp);
  }
  // Only the covered bytes count.
  Bytes f = frame(kProtoUdplite, ul, test::L4Checksum::UdpliteAsUdp);
  f.back() ^= 0xff;
  EXPECT_TRUE(l4_checksum_ok(f.data(), static_cast<uint32_t>(f.size()), key_of(f)));
  EXPECT_EQ(udplite_coverage(0, 20), 20U);
  EXPECT_EQ(udplite_coverage(7, 20), 0U);
  EXPECT_EQ(udplite_coverage(8, 20), 8U);
  EXPECT_EQ(udplite_coverage(21, 20), 0U);
}

TEST(FrameParser, ShortSctpAndUdpliteHeadersParseWithoutPorts) {
  const Bytes sctp8 = test::ethernet(
      {}, test::ipv4({.src = kC, .dst = kS, .proto = kProtoSctp, .l4_checksum = test::L4Checksum::Leave}, Bytes(8)));
  EXPECT_FALSE(key_of(sctp8).has(key_flag::kPorts));
  const Bytes ul6 = test::ethernet(
      {}, test::ipv4({.src = kC, .dst = kS, .proto = kProtoUdplite, .l4_checksum = test::L4Checksum::Leave},
                     Bytes(6)));
  EXPECT_FALSE(key_of(ul6).has(key_flag::kPorts));
}

// ---------------------------------------------------------------- the table

TEST(SctpTransition, TheCellsTheKernelCommentsOn) {
  using S = SctpCtState;
  namespace ct = sctp_chunk_type;
  // An INIT closes (not COOKIE_WAIT); the INIT_ACK, in reply, opens the wait.
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kInit, S::None).next, S::Closed);
  EXPECT_EQ(sctp_transition(CtDir::Reply, ct::kInitAck, S::Closed).next, S::CookieWait);
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kCookieEcho, S::CookieWait).next, S::CookieEchoed);
  EXPECT_EQ(sctp_transition(CtDir::Reply, ct::kCookieAck, S::CookieEchoed).next, S::Established);
  // SHUTDOWN by either side, then its ACK, then COMPLETE.
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kShutdown, S::Established).next, S::ShutdownSent);
  EXPECT_EQ(sctp_transition(CtDir::Reply, ct::kShutdown, S::Established).next, S::ShutdownRecd);
  EXPECT_EQ(sctp_transition(CtDir::Reply, ct::kShutdownAck, S::ShutdownSent).next, S::ShutdownAckSent);
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kShutdownComplete, S::ShutdownAckSent).next, S::Closed);
  // ABORT closes from anywhere but the reply side of NONE / HEARTBEAT_SENT.
  for (std::size_t s = 0; s < kSctpCtStateCount; ++s) {
    const auto st = static_cast<S>(s);
    EXPECT_EQ(sctp_transition(CtDir::Original, ct::kAbort, st).next, S::Closed);
    const SctpTransition r = sctp_transition(CtDir::Reply, ct::kAbort, st);
    EXPECT_EQ(r.valid, st != S::None && st != S::HeartbeatSent) << sctp_ct_state_name(st);
  }
  // Heartbeats: a new path, answered.
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kHeartbeat, S::None).next, S::HeartbeatSent);
  EXPECT_EQ(sctp_transition(CtDir::Reply, ct::kHeartbeatAck, S::HeartbeatSent).next, S::Established);
  EXPECT_EQ(sctp_transition(CtDir::Original, ct::kShutdownAck, S::None).next, S::ShutdownAckSent);
  // A reply to nothing is INVALID; DATA, SACK and unknown types change nothing.
  EXPECT_FALSE(sctp_transition(CtDir::Reply, ct::kInit, S::None).valid);
  for (const uint8_t t : {ct::kData, ct::kSack, uint8_t{12}, uint8_t{0x80}, uint8_t{0xff}}) {
    const SctpTransition x = sctp_transition(CtDir::Reply, t, S::CookieWait);
    EXPECT_TRUE(x.valid);
    EXPECT_EQ(x.next, S::CookieWait);
  }
  EXPECT_STREQ(sctp_ct_state_name(S::ShutdownAckSent), "SHUTDOWN_ACK_SENT");
  EXPECT_STREQ(sctp_ct_state_name(static_cast<S>(9)), "?");
}

TEST(SctpTimeouts, DefaultsAreTheSysctls) {
  const SctpTimeouts t;
  EXPECT_EQ(t.of(SctpCtState::None), 10U);
  EXPECT_EQ(t.of(SctpCtState::Closed), 10U);
  EXPECT_EQ(t.of(SctpCtState::CookieWait), 3U);
  EXPECT_EQ(t.of(SctpCtState::CookieEchoed), 3U);
  EXPECT_EQ(t.of(SctpCtState::Established), 210U);
  EXPECT_EQ(t.of(SctpCtState::ShutdownSent), 3U);
  EXPECT_EQ(t.of(SctpCtState::ShutdownRecd), 3U);
  EXPECT_EQ(t.of(SctpCtState::ShutdownAckSent), 3U);
  EXPECT_EQ(t.of(SctpCtState::HeartbeatSent), 30U);
}

// ---------------------------------------------------------------- packets
// The probe's packets (sctp_scenarios.py), byte for byte where it matters.

constexpr uint32_t kIt = 0x11111111;  // the client's initiate tag
constexpr uint32_t kRt = 0x22222222;  // the server's

Bytes be32(uint32_t v) {
  Bytes b;
  test::put32(b, v);
  return b;
}
Bytes chunk(uint8_t type, uint8_t flags = 0, const Bytes& value = {}, std::optional<uint16_t> length = {}) {
  return test::sctp_chunk({.type = type, .flags = flags, .value = value, .length = length});
}
Bytes init_value(uint32_t tag, uint32_t tsn) {
  Bytes v = be32(tag);
  test::put32(v, 65536);
  test::put16(v, 10);
  test::put16(v, 10);
  test::put32(v, tsn);
  return v;
}
Bytes init(uint32_t tag) { return chunk(1, 0, init_value(tag, 1000)); }
Bytes init_ack(uint32_t tag) {
  Bytes v = init_value(tag, 5000);
  test::put(v, Bytes{0, 7, 0, 12, 'C', 'O', 'O', 'K', 'I', 'E', '!', '!'});
  return chunk(2, 0, v);
}
Bytes cookie_echo() { return chunk(10, 0, text("COOKIE!!")); }
Bytes data(uint32_t tsn) {
  Bytes v = be32(tsn);
  test::put(v, Bytes{0, 0, 0, 0, 0, 0, 0, 0});
  test::put(v, text("hello"));
  return chunk(0, 3, v);
}
Bytes sack(uint32_t tsn) {
  Bytes v = be32(tsn);
  test::put32(v, 65536);
  test::put32(v, 0);
  return chunk(3, 0, v);
}
Bytes heartbeat(uint8_t type) { return chunk(type, 0, Bytes{0, 1, 0, 8, 'H', 'B', 'H', 'B'}); }

Bytes sctp_packet(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint32_t vtag, const std::vector<Bytes>& c,
                  bool bad) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoSctp,
                     .l4_checksum = bad ? test::L4Checksum::Corrupt : test::L4Checksum::Fill},
                    test::sctp({.sport = sp, .dport = dp, .vtag = vtag, .chunks = c}));
}
// Client to server (port sp to dp), and server (port 80) to client port `cp`.
Bytes Sc(uint16_t sp, uint16_t dp, uint32_t vtag, const std::vector<Bytes>& c, bool bad = false) {
  return sctp_packet(kC, kS, sp, dp, vtag, c, bad);
}
Bytes Sr(uint16_t cp, uint32_t vtag, const std::vector<Bytes>& c, bool bad = false) {
  return sctp_packet(kS, kC, 80, cp, vtag, c, bad);
}
Bytes raw8(uint16_t sp) {
  Bytes b;
  test::put16(b, sp);
  test::put16(b, 80);
  test::put32(b, 0);
  return test::ipv4({.src = kC, .dst = kS, .proto = kProtoSctp, .l4_checksum = test::L4Checksum::Leave}, b);
}
Bytes raw3() {
  return test::ipv4({.src = kC, .dst = kS, .proto = kProtoSctp, .l4_checksum = test::L4Checksum::Leave},
                    Bytes{0x9c, 0x47, 0x00});
}

struct UlOpt {
  bool bad = false;   // a wrong checksum
  bool zero = false;  // checksum 0
  bool rfc = false;   // summed with protocol 136, as RFC 3828 says
};
Bytes ul_packet(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, std::string_view payload, uint16_t cov,
                const UlOpt& o) {
  const test::L4Checksum c = o.zero  ? test::L4Checksum::Leave
                             : o.bad ? test::L4Checksum::Corrupt
                             : o.rfc ? test::L4Checksum::Fill
                                     : test::L4Checksum::UdpliteAsUdp;
  Bytes p = test::ipv4({.src = src, .dst = dst, .proto = kProtoUdplite, .l4_checksum = c},
                       test::udplite({.sport = sp, .dport = dp, .coverage = cov, .payload = text(payload)}));
  if (o.bad) {
    // Corrupt is RFC's sum broken; break the kernel's instead.
    Bytes good = test::ipv4({.src = src, .dst = dst, .proto = kProtoUdplite, .l4_checksum = test::L4Checksum::UdpliteAsUdp},
                            test::udplite({.sport = sp, .dport = dp, .coverage = cov, .payload = text(payload)}));
    test::set16(good, 26, static_cast<uint16_t>(test::get16(good, 26) ^ 0x5555));
    p = good;
  }
  return p;
}
Bytes UL(uint16_t sp, uint16_t dp, std::string_view payload, uint16_t cov, const UlOpt& o = {}) {
  return ul_packet(kC, kS, sp, dp, payload, cov, o);
}
Bytes ULR(uint16_t sp, uint16_t dp, std::string_view payload, uint16_t cov, const UlOpt& o = {}) {
  return ul_packet(kS, kC, sp, dp, payload, cov, o);
}

struct GreOpt {
  std::optional<uint32_t> key{};  // K bit and this 32-bit field (version 1: payload length 0, call id)
  bool reply = false;             // server to client
};
// The probe's GRE packets: version 0 carrying IPv4 (0x0800) or version 1
// (PPTP) carrying PPP (0x880b), 20 bytes of payload.
Bytes G(uint16_t version, const GreOpt& o = {}) {
  Bytes g;
  test::put16(g, static_cast<uint16_t>((o.key ? 0x2000 : 0) | version));
  test::put16(g, version == 1 ? 0x880b : 0x0800);
  if (o.key) test::put32(g, *o.key);
  Bytes inner(20);
  inner[0] = 0x45;
  test::put(g, inner);
  return test::ipv4({.src = o.reply ? kS : kC, .dst = o.reply ? kC : kS, .proto = kProtoGre}, g);
}
// The probe's DCCP packets: a 12-byte generic header of type `type`.
Bytes D(uint16_t sp, uint16_t dp, uint8_t type, bool reply = false) {
  Bytes d;
  test::put16(d, sp);
  test::put16(d, dp);
  test::put(d, Bytes{3, 0, 0, 0, static_cast<uint8_t>(type << 1), 0, 0, 1});
  return test::ipv4({.src = reply ? kS : kC, .dst = reply ? kC : kS, .proto = kProtoDccp}, d);
}

// ---------------------------------------------------------------- kernel sequences
// Generated from the measurement; do not edit the expected strings by hand.

TEST(SctpKernelSequences, FullAssociationAndANewInit) {
  constexpr uint16_t P = 40001;
  Replay r(40001);
  r.step("C>S INIT", Sc(P, 80, 0, {init(kIt)}), "NEW", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
  r.step("S>C INIT_ACK", Sr(P, kIt, {init_ack(kRt)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
  r.step("C>S COOKIE_ECHO", Sc(P, 80, kRt, {cookie_echo()}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 2 COOKIE_ECHOED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 mark=0 use=1");
  r.step("S>C COOKIE_ACK", Sr(P, kIt, {chunk(11)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S DATA", Sc(P, 80, kRt, {data(1000)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C SACK", Sr(P, kIt, {sack(1000)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C DATA", Sr(P, kIt, {data(5000)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S SACK+DATA", Sc(P, 80, kRt, {sack(5000), data(1001)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S SHUTDOWN", Sc(P, 80, kRt, {chunk(7, 0, be32(5000))}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 2 SHUTDOWN_SENT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C SHUTDOWN_ACK", Sr(P, kIt, {chunk(8)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 SHUTDOWN_ACK_SENT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S SHUTDOWN_COMPLETE", Sc(P, 80, kRt, {chunk(14)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("C>S INIT again (new assoc)", Sc(P, 80, 0, {init(0x33333333)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
  r.step("S>C INIT_ACK", Sr(P, 0x33333333, {init_ack(0x44444444)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40001 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40001 [ASSURED] mark=0 use=1");
}

TEST(SctpKernelSequences, BadCrcWrongTagsBundlesAndAbort) {
  constexpr uint16_t P = 40002;
  Replay r(40002);
  r.step("C>S INIT bad CRC", Sc(P, 80, 0, {init(kIt)}, true), "INVALID", "-",
         "");
  r.step("C>S INIT", Sc(P, 80, 0, {init(kIt)}), "NEW", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S INIT retransmit", Sc(P, 80, 0, {init(kIt)}), "NEW", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("S>C INIT_ACK bad CRC", Sr(P, kIt, {init_ack(kRt)}, true), "INVALID", "-",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("S>C INIT_ACK wrong vtag", Sr(P, 0x5, {init_ack(kRt)}), "INVALID", "-",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("S>C INIT_ACK", Sr(P, kIt, {init_ack(kRt)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S DATA wrong vtag", Sc(P, 80, 0x77, {data(1)}), "INVALID", "-",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S COOKIE_ECHO wrong vtag", Sc(P, 80, 0x77, {cookie_echo()}), "INVALID", "-",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("C>S COOKIE_ECHO+DATA", Sc(P, 80, kRt, {cookie_echo(), data(1000)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 2 COOKIE_ECHOED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 mark=0 use=1");
  r.step("S>C COOKIE_ACK+SACK", Sr(P, kIt, {chunk(11), sack(1000)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S DATA bad CRC", Sc(P, 80, kRt, {data(1001)}, true), "INVALID", "-",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S DATA zero-length chunk", Sc(P, 80, kRt, {data(1001), chunk(0, 0, {}, 0)}), "INVALID", "-",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S DATA+INIT", Sc(P, 80, kRt, {data(1001), init(9)}), "INVALID", "-",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S no chunks", Sc(P, 80, kRt, {}), "INVALID", "-",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S ABORT wrong vtag", Sc(P, 80, 0x77, {chunk(6)}), "INVALID", "-",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("S>C ABORT T flag, client's vtag?", Sr(P, kRt, {chunk(6, 1)}), "ESTABLISHED", "REPLY",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
  r.step("C>S DATA after abort", Sc(P, 80, kRt, {data(1002)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40002 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40002 [ASSURED] mark=0 use=1");
}

TEST(SctpKernelSequences, OutOfTheBlueIsInvalid) {
  constexpr uint16_t P = 40003;
  Replay r(0);
  r.step("C>S DATA ootb", Sc(P, 80, 0x1234, {data(1)}), "INVALID", "-",
         "");
  r.step("C>S ABORT ootb", Sc(P, 80, 0x1234, {chunk(6)}), "INVALID", "-",
         "");
  r.step("C>S SHUTDOWN_COMPLETE ootb", Sc(P, 80, 0x1234, {chunk(14)}), "INVALID", "-",
         "");
  r.step("C>S COOKIE_ACK ootb", Sc(P, 80, 0x1234, {chunk(11)}), "INVALID", "-",
         "");
  r.step("C>S SACK ootb", Sc(P, 80, 0x1234, {sack(1)}), "INVALID", "-",
         "");
  r.step("C>S INIT vtag!=0", Sc(P, 80, 0x1234, {init(kIt)}), "INVALID", "-",
         "");
  r.step("C>S INIT+DATA", Sc(P, 80, 0, {init(kIt), data(1)}), "INVALID", "-",
         "");
  r.step("C>S COOKIE_ECHO ootb", Sc(P, 80, 0x1234, {cookie_echo()}), "INVALID", "-",
         "");
  r.step("C>S SHUTDOWN ootb", Sc(P, 80, 0x1234, {chunk(7, 0, be32(1))}), "INVALID", "-",
         "");
  r.step("C>S ERROR ootb", Sc(P, 80, 0x1234, {chunk(9)}), "INVALID", "-",
         "");
  r.step("C>S INIT_ACK ootb", Sc(P, 80, 0x1234, {init_ack(kRt)}), "INVALID", "-",
         "");
}

TEST(SctpKernelSequences, ShutdownAckOutOfTheBlueOpens) {
  constexpr uint16_t P = 40004;
  Replay r(40004);
  r.step("C>S SHUTDOWN_ACK ootb", Sc(P, 80, 0x1234, {chunk(8)}), "NEW", "ORIGINAL",
         "sctp     132 2 SHUTDOWN_ACK_SENT src=10.201.1.5 dst=10.201.2.5 sport=40004 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40004 mark=0 use=1");
  r.step("S>C SHUTDOWN_COMPLETE T", Sr(P, 0x1234, {chunk(14, 1)}), "INVALID", "-",
         "sctp     132 2 SHUTDOWN_ACK_SENT src=10.201.1.5 dst=10.201.2.5 sport=40004 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40004 mark=0 use=1");
}

TEST(SctpKernelSequences, HeartbeatOpensASecondaryPath) {
  constexpr uint16_t P = 40005;
  Replay r(40005);
  r.step("C>S HEARTBEAT", Sc(P, 80, 0xabc, {heartbeat(4)}), "NEW", "ORIGINAL",
         "sctp     132 29 HEARTBEAT_SENT src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 mark=0 use=1");
  r.step("C>S DATA", Sc(P, 80, 0xabc, {data(1)}), "NEW", "ORIGINAL",
         "sctp     132 29 HEARTBEAT_SENT src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 mark=0 use=1");
  r.step("S>C HEARTBEAT_ACK", Sr(P, 0xdef, {heartbeat(5)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 [ASSURED] mark=0 use=1");
  r.step("S>C DATA", Sr(P, 0xdef, {data(1)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40005 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40005 [ASSURED] mark=0 use=1");
}

TEST(SctpKernelSequences, AbortClosesAnEstablishedAssociation) {
  constexpr uint16_t P = 40006;
  Replay r(40006);
  r.step("C>S INIT", Sc(P, 80, 0, {init(kIt)}), "NEW", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 mark=0 use=1");
  r.step("S>C INIT_ACK", Sr(P, kIt, {init_ack(kRt)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 mark=0 use=1");
  r.step("C>S COOKIE_ECHO", Sc(P, 80, kRt, {cookie_echo()}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 2 COOKIE_ECHOED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 mark=0 use=1");
  r.step("S>C COOKIE_ACK", Sr(P, kIt, {chunk(11)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("C>S ABORT", Sc(P, 80, kRt, {chunk(6)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("S>C DATA", Sr(P, kIt, {data(1)}), "ESTABLISHED", "REPLY",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
  r.step("C>S INIT", Sc(P, 80, 0, {init(0x55)}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40006 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40006 [ASSURED] mark=0 use=1");
}

TEST(SctpKernelSequences, ShortHeadersAreInvalid) {
  constexpr uint16_t P = 40007;
  Replay r(0);
  r.step("C>S 8 bytes", raw8(P), "INVALID", "-",
         "");
  r.step("C>S 3 bytes", raw3(), "INVALID", "-",
         "");
}
TEST(UdpliteKernelSequences, CoverageChecksumAndStream) {
  Replay r(41000);
  r.step("C>S cov 8", UL(41000, 53, "abcd", 8), "NEW", "ORIGINAL",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("S>C cov 0 (all)", ULR(53, 41000, "abcdef", 0), "ESTABLISHED", "REPLY",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 8 bad", UL(41000, 53, "abcd", 8, {.bad = true}), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 5 (<8)", UL(41001, 53, "abcd", 5), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 100 (> len)", UL(41002, 53, "abcd", 100), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S csum 0", UL(41003, 53, "abcd", 8, {.zero = true}), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 12 payload bad beyond cov", UL(41004, 53, "abcdefgh", 12), "NEW", "ORIGINAL",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S 6 bytes", test::ipv4({.src = kC, .dst = kS, .proto = kProtoUdplite, .l4_checksum = test::L4Checksum::Leave}, Bytes{0xa0, 0x28, 0x00, 0x35, 0x00, 0x08}), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 8, pseudo proto 136 (RFC)", UL(41005, 53, "abcd", 8, {.rfc = true}), "INVALID", "-",
         "udplite  136 29 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 mark=0 use=1");
  r.step("C>S cov 8 again (17)", UL(41000, 53, "abcd", 8), "ESTABLISHED", "ORIGINAL",
         "udplite  136 119 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 [ASSURED] mark=0 use=1");
  r.step("S>C reply", ULR(53, 41000, "abcdef", 0), "ESTABLISHED", "REPLY",
         "udplite  136 119 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 [ASSURED] mark=0 use=1");
  r.step("C>S after reply", UL(41000, 53, "abcd", 8), "ESTABLISHED", "ORIGINAL",
         "udplite  136 119 src=10.201.1.5 dst=10.201.2.5 sport=41000 dport=53 src=10.201.2.5 dst=10.201.1.5 sport=53 dport=41000 [ASSURED] mark=0 use=1");
}
TEST(GreKernelSequences, VersionZeroStreamAndPptpCallIds) {
  // Version 0: keys 0 both ways (a K-bit key is not looked at), 30 s, then
  // 180 s and ASSURED from the first packet after the reply.
  Replay r(0);
  r.step("C>S GRE v0 no key", G(0), "NEW", "ORIGINAL",
         "gre      47 29 src=10.201.1.5 dst=10.201.2.5 srckey=0x0 dstkey=0x0 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 srckey=0x0 dstkey=0x0 mark=0 use=1");
  r.step("S>C GRE v0 no key", G(0, {.reply = true}), "ESTABLISHED", "REPLY",
         "gre      47 29 src=10.201.1.5 dst=10.201.2.5 srckey=0x0 dstkey=0x0 src=10.201.2.5 dst=10.201.1.5 srckey=0x0 dstkey=0x0 mark=0 use=1");
  r.step("C>S GRE v0 key 5", G(0, {.key = 5}), "ESTABLISHED", "ORIGINAL",
         "gre      47 179 src=10.201.1.5 dst=10.201.2.5 srckey=0x0 dstkey=0x0 src=10.201.2.5 dst=10.201.1.5 srckey=0x0 dstkey=0x0 [ASSURED] mark=0 use=1");
  // Version 1 (PPTP): the call id is the destination key; without the PPTP
  // helper nothing maps the other direction's key, so the answer opens an
  // entry of its own. (Measured in the same table as the version-0 flow;
  // replayed in a fresh one, without that flow's line.)
  Replay v1(0);
  v1.step("C>S GRE v1 (pptp) key 7", G(1, {.key = 7}), "NEW", "ORIGINAL",
         "gre      47 29 src=10.201.1.5 dst=10.201.2.5 srckey=0x0 dstkey=0x7 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 srckey=0x7 dstkey=0x0 mark=0 use=1");
  v1.step("S>C GRE v1 key 9", G(1, {.key = 9, .reply = true}), "NEW", "ORIGINAL",
         "gre      47 29 src=10.201.1.5 dst=10.201.2.5 srckey=0x0 dstkey=0x7 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 srckey=0x7 dstkey=0x0 mark=0 use=1 || gre      47 29 src=10.201.2.5 dst=10.201.1.5 srckey=0x0 dstkey=0x9 [UNREPLIED] src=10.201.1.5 dst=10.201.2.5 srckey=0x9 dstkey=0x0 mark=0 use=1");
}

TEST(DccpKernelSequences, GenericOnThisKernel) {
  // No DCCP tracker since 6.16: addresses only (another port is the same
  // flow), 600 s, printed with ports 0.
  Replay r(0);
  r.step("C>S DCCP-Request", D(42000, 80, 0), "NEW", "ORIGINAL",
         "dccp     33 599 src=10.201.1.5 dst=10.201.2.5 sport=0 dport=0 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=0 dport=0 mark=0 use=1");
  r.step("S>C DCCP-Response", D(80, 42000, 1, true), "ESTABLISHED", "REPLY",
         "dccp     33 599 src=10.201.1.5 dst=10.201.2.5 sport=0 dport=0 src=10.201.2.5 dst=10.201.1.5 sport=0 dport=0 mark=0 use=1");
  r.step("C>S DCCP-Data ootb", D(42001, 80, 2), "ESTABLISHED", "ORIGINAL",
         "dccp     33 599 src=10.201.1.5 dst=10.201.2.5 sport=0 dport=0 src=10.201.2.5 dst=10.201.1.5 sport=0 dport=0 mark=0 use=1");
}

// ---------------------------------------------------------------- edges the probe did not cover

TEST(SctpKernelSequences, AnInvalidLaterChunkKeepsWhatEarlierChunksDid) {
  // The kernel updates the state chunk by chunk: the COOKIE_ACK makes the
  // entry ESTABLISHED and ASSURED, the ABORT after it (T bit, but the
  // sender's tag) makes the packet INVALID -- and nothing refreshes the
  // timeout, which is still COOKIE_ECHOED's 3 s.
  constexpr uint16_t P = 40008;
  Replay r(40008);
  r.step("C>S INIT", Sc(P, 80, 0, {init(kIt)}), "NEW", "ORIGINAL",
         "sctp     132 9 CLOSED src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 [UNREPLIED] src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 mark=0 use=1");
  r.step("S>C INIT_ACK", Sr(P, kIt, {init_ack(kRt)}), "ESTABLISHED", "REPLY",
         "sctp     132 2 COOKIE_WAIT src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 mark=0 use=1");
  r.step("C>S COOKIE_ECHO", Sc(P, 80, kRt, {cookie_echo()}), "ESTABLISHED", "ORIGINAL",
         "sctp     132 2 COOKIE_ECHOED src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 mark=0 use=1");
  r.step("S>C COOKIE_ACK+ABORT/T wrong tag", Sr(P, kIt, {chunk(11), chunk(6, 1)}), "INVALID", "-",
         "sctp     132 2 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 [ASSURED] mark=0 use=1");
  r.step("S>C DATA", Sr(P, kIt, {data(7)}), "ESTABLISHED", "REPLY",
         "sctp     132 209 ESTABLISHED src=10.201.1.5 dst=10.201.2.5 sport=40008 dport=80 src=10.201.2.5 dst=10.201.1.5 sport=80 dport=40008 [ASSURED] mark=0 use=1");
}

TEST(SctpTrack, HeartbeatWithAnUnknownTagPassesOnceUnrefreshed) {
  SctpConn c{};
  const SctpTimeouts t;
  const auto run = [&](CtDir dir, uint32_t vtag, const std::vector<Bytes>& chunks, bool confirmed = true) {
    const Bytes l4 = test::sctp({.sport = 1, .dport = 2, .vtag = vtag, .chunks = chunks});
    return sctp_track(c, dir, l4.data(), static_cast<uint32_t>(l4.size()), confirmed, t);
  };
  EXPECT_EQ(run(CtDir::Original, 0, {init(kIt)}, false).verdict, SctpVerdict::Accept);
  EXPECT_EQ(run(CtDir::Reply, kIt, {init_ack(kRt)}).verdict, SctpVerdict::Accept);
  EXPECT_EQ(run(CtDir::Original, kRt, {cookie_echo()}).verdict, SctpVerdict::Accept);
  const SctpUpdate est = run(CtDir::Reply, kIt, {chunk(11)});
  EXPECT_TRUE(est.set_assured);
  EXPECT_EQ(est.timeout_s, 210U);
  // A HEARTBEAT from a new path (another tag): through, not refreshed; with
  // DATA bundled: INVALID.
  EXPECT_EQ(run(CtDir::Original, 0x999, {heartbeat(4)}).verdict, SctpVerdict::Ignore);
  EXPECT_TRUE(c.heartbeat_vtag_failed);
  EXPECT_EQ(run(CtDir::Original, 0x999, {heartbeat(4), data(1)}).reason, SctpReason::BadVtag);
  // Its ACK from the other side with yet another tag: the new tags are learnt.
  EXPECT_EQ(run(CtDir::Reply, 0x777, {heartbeat(5)}).verdict, SctpVerdict::Accept);
  EXPECT_EQ(c.vtag[1], 0x777U);
  EXPECT_EQ(c.vtag[0], 0U);
  EXPECT_FALSE(c.heartbeat_vtag_failed);
  // Retransmitted INIT in CLOSED after a reply: ignored (no refresh).
  SctpConn closed{};
  c = closed;
  EXPECT_EQ(run(CtDir::Original, 0, {init(kIt)}, false).verdict, SctpVerdict::Accept);
  EXPECT_EQ(run(CtDir::Original, 0, {init(kIt)}).verdict, SctpVerdict::Ignore);
}

TEST(SctpTrack, ChunkListChecks) {
  const SctpTimeouts t;
  const auto verdict = [&](const std::vector<Bytes>& chunks, uint32_t vtag = 0) {
    SctpConn c{};
    const Bytes l4 = test::sctp({.sport = 1, .dport = 2, .vtag = vtag, .chunks = chunks});
    return sctp_track(c, CtDir::Original, l4.data(), static_cast<uint32_t>(l4.size()), false, t).reason;
  };
  EXPECT_EQ(verdict({}), SctpReason::BadChunks);
  EXPECT_EQ(verdict({init(1), data(1)}), SctpReason::BadChunks);       // INIT not alone
  EXPECT_EQ(verdict({data(1), cookie_echo()}), SctpReason::BadChunks);  // COOKIE_ECHO not first
  EXPECT_EQ(verdict({chunk(8), chunk(14)}), SctpReason::BadChunks);     // SHUTDOWN_COMPLETE not alone
  EXPECT_EQ(verdict({chunk(0, 0, {}, 0)}), SctpReason::BadChunks);      // zero length
  EXPECT_EQ(verdict({chunk(6)}), SctpReason::CannotOpen);               // ABORT out of the blue
  EXPECT_EQ(verdict({data(1)}), SctpReason::CannotOpen);
  EXPECT_EQ(verdict({init(1)}, 5), SctpReason::CannotOpen);             // INIT with a tag
  EXPECT_EQ(verdict({chunk(1, 0, Bytes(8))}), SctpReason::CannotOpen);  // INIT too short for its tag
  EXPECT_EQ(verdict({init(1)}), SctpReason::None);
  EXPECT_EQ(verdict({chunk(8)}, 5), SctpReason::None);                  // SHUTDOWN_ACK opens
  EXPECT_EQ(verdict({chunk(2, 0, init_value(3, 4))}, 0), SctpReason::None);  // INIT_ACK with tag 0 opens, too
  EXPECT_EQ(verdict({chunk(2, 0, init_value(3, 4))}, 7), SctpReason::BadVtag);
}

}  // namespace
}  // namespace nfb

namespace nfb {
namespace {

TEST(GreTuple, KeysAsTheKernelReadsThem) {
  const auto keys = [](const Bytes& ip, bool& ok) {
    Tuple t;
    ok = gre_tuple_keys(ip.data() + 20, static_cast<uint32_t>(ip.size() - 20), t);
    return std::pair<uint16_t, uint16_t>{t.sport, t.dport};
  };
  bool ok = false;
  EXPECT_EQ(keys(G(0, {.key = 5}), ok), (std::pair<uint16_t, uint16_t>{0, 0}));
  EXPECT_TRUE(ok);
  EXPECT_EQ(keys(G(1, {.key = 0x1234}), ok), (std::pair<uint16_t, uint16_t>{0, 0x1234}));
  EXPECT_TRUE(ok);
  // Version 1 with another payload than PPP: no tuple (INVALID).
  Bytes ipv4_in_v1 = G(1, {.key = 7});
  test::set16(ipv4_in_v1, 22, 0x0800);
  keys(ipv4_in_v1, ok);
  EXPECT_FALSE(ok);
  // Fewer than 8 bytes: keys 0, whatever the version says.
  const Bytes short_v1 = test::ipv4({.src = kC, .dst = kS, .proto = kProtoGre}, Bytes{0x20, 0x01, 0x08, 0x00});
  EXPECT_EQ(keys(short_v1, ok), (std::pair<uint16_t, uint16_t>{0, 0}));
  EXPECT_TRUE(ok);
  Replay r(0);
  EXPECT_EQ(r.send(ipv4_in_v1).reason, CtReason::GreNotPptp);
}

}  // namespace
}  // namespace nfb
