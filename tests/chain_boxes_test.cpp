// Chain boxes (netfilter/chain_boxes.h): the box conversion on hand-written
// rules, the key of a packet, and random chains walked on every classifier
// against the linear walk (same verdicts, same counters, same state).
#include "netfilter/chain_boxes.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <string_view>
#include <string>
#include <vector>

#include "rules/iptables_save.h"

namespace nfb {
namespace {

const HostModel& host() {
  static const HostModel h = default_docker_host();
  return h;
}

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

// The boxes of every rule of the FORWARD chain of a mangle table holding `rules`.
struct Converted {
  std::vector<std::vector<Box>> boxes;  // per rule
  std::vector<bool> residual;
};
Converted convert(const std::string& rules) {
  const Ruleset rs = read_iptables_save("*mangle\n:FORWARD ACCEPT [0:0]\n" + rules + "COMMIT\n", "test");
  const ChainWalker w = ChainWalker::build(*rs.find_table(TableId::Mangle), host());
  const uint32_t chain = w.hook_chain(Hook::Forward);
  const BoxContext bc = chain_box_context(w, chain);
  Converted c;
  for (uint32_t p = 0; p < w.chain_size(chain); ++p) {
    std::vector<Box> out;
    c.residual.push_back(rule_boxes(w.compiled_rule(w.flat_index(chain, p)), host(), p, out, bc));
    for (const Box& b : out) EXPECT_EQ(b.position, p);
    c.boxes.push_back(out);
  }
  return c;
}

Range full(Dim d) { return Range{0, field_max(d)}; }

TEST(RuleBoxes, CoreAndPortsAreOneExactBox) {
  const Converted c = convert("-A FORWARD -s 10.0.0.0/8 -d 172.17.0.2/32 -p tcp -m tcp --sport 1000:2000 --dport 80 -j ACCEPT\n");
  ASSERT_EQ(c.boxes[0].size(), 1U);
  EXPECT_FALSE(c.residual[0]);
  const Box& b = c.boxes[0][0];
  EXPECT_EQ(b.r[kDimSrcIp], (Range{ip(10, 0, 0, 0), ip(10, 255, 255, 255)}));
  EXPECT_EQ(b.r[kDimDstIp], (Range{ip(172, 17, 0, 2), ip(172, 17, 0, 2)}));
  EXPECT_EQ(b.r[kDimProto], (Range{6, 6}));
  EXPECT_EQ(b.r[kDimSrcPort], (Range{1000, 2000}));
  EXPECT_EQ(b.r[kDimDstPort], (Range{80, 80}));
  EXPECT_EQ(b.r[kDimInIface], full(kDimInIface));
  EXPECT_EQ(b.r[kDimCtState], full(kDimCtState));
  EXPECT_FALSE(b.residual);
}

TEST(RuleBoxes, InversionsSplitIntoBoxes) {
  const Converted c = convert(
      "-A FORWARD ! -s 10.0.0.0/8 -j ACCEPT\n"
      "-A FORWARD ! -p udp -j ACCEPT\n"
      "-A FORWARD -p tcp -m tcp ! --dport 22 -j ACCEPT\n"
      "-A FORWARD ! -s 10.0.0.0/8 -p udp -m udp ! --sport 0:1023 -j ACCEPT\n");
  ASSERT_EQ(c.boxes[0].size(), 2U);
  EXPECT_EQ(c.boxes[0][0].r[kDimSrcIp], (Range{0, ip(9, 255, 255, 255)}));
  EXPECT_EQ(c.boxes[0][1].r[kDimSrcIp], (Range{ip(11, 0, 0, 0), 0xffffffffU}));
  ASSERT_EQ(c.boxes[1].size(), 2U);
  EXPECT_EQ(c.boxes[1][0].r[kDimProto], (Range{0, 16}));
  EXPECT_EQ(c.boxes[1][1].r[kDimProto], (Range{18, 255}));
  ASSERT_EQ(c.boxes[2].size(), 2U);
  EXPECT_EQ(c.boxes[2][0].r[kDimDstPort], (Range{0, 21}));
  EXPECT_EQ(c.boxes[2][1].r[kDimDstPort], (Range{23, 65535}));
  ASSERT_EQ(c.boxes[3].size(), 2U);  // 2 address ranges x 1 port range
  EXPECT_EQ(c.boxes[3][0].r[kDimSrcPort], (Range{1024, 65535}));
  for (bool r : c.residual) EXPECT_FALSE(r);
}

TEST(RuleBoxes, InterfacesAreIdRanges) {
  const uint16_t docker0 = *host().iface_id("docker0");
  const auto n = static_cast<uint32_t>(host().iface_count());
  const Converted c = convert(
      "-A FORWARD -i docker0 -o eth0 -j ACCEPT\n"
      "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n"
      "-A FORWARD -o br-+ -j ACCEPT\n"
      "-A FORWARD -i nosuch0 -j ACCEPT\n");
  ASSERT_EQ(c.boxes[0].size(), 1U);
  EXPECT_EQ(c.boxes[0][0].r[kDimInIface], (Range{docker0, docker0}));
  // ! -o docker0: every other host id, unknown ids and "no interface".
  std::vector<Range> outs;
  for (const Box& b : c.boxes[1]) outs.push_back(b.r[kDimOutIface]);
  uint32_t covered = 0;
  for (const Range& r : outs) {
    EXPECT_FALSE(r.contains(docker0));
    covered += r.hi - r.lo + 1;
  }
  EXPECT_EQ(covered, 0x10000U - 1U);
  EXPECT_TRUE(outs.back().contains(kNoIface));
  // A wildcard: the matching host ids only; unknown ids never match a name.
  for (const Box& b : c.boxes[2]) {
    EXPECT_FALSE(b.r[kDimOutIface].contains(kNoIface));
    EXPECT_LT(b.r[kDimOutIface].hi, n);
  }
  EXPECT_EQ(c.boxes[2].size(), 1U);
  // A name the host lacks: nothing among the host's ids nor kNoIface.
  EXPECT_TRUE(c.boxes[3].empty());
  for (bool r : c.residual) EXPECT_FALSE(r);
}

TEST(RuleBoxes, CtStateSets) {
  const Converted c = convert(
      "-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
      "-A FORWARD -m conntrack --ctstate INVALID,NEW -j DROP\n"
      "-A FORWARD -m conntrack ! --ctstate NEW -j ACCEPT\n"
      "-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n"
      "-A FORWARD -m conntrack --ctstate NEW --ctstatus ASSURED -j ACCEPT\n"
      "-A FORWARD -m state --state NEW,ESTABLISHED -m conntrack --ctstate ESTABLISHED,INVALID -j ACCEPT\n");
  ASSERT_EQ(c.boxes[0].size(), 1U);
  EXPECT_EQ(c.boxes[0][0].r[kDimCtState], (Range{kCtValueRelated, kCtValueEstablished}));
  ASSERT_EQ(c.boxes[1].size(), 2U);
  EXPECT_EQ(c.boxes[1][0].r[kDimCtState], (Range{kCtValueInvalid, kCtValueInvalid}));
  EXPECT_EQ(c.boxes[1][1].r[kDimCtState], (Range{kCtValueNew, kCtValueNew}));
  ASSERT_EQ(c.boxes[2].size(), 2U);
  EXPECT_EQ(c.boxes[2][0].r[kDimCtState], (Range{kCtValueInvalid, kCtValueUntracked}));
  EXPECT_EQ(c.boxes[2][1].r[kDimCtState], (Range{kCtValueRelated, kCtValueNone}));
  EXPECT_FALSE(c.residual[0]);
  EXPECT_FALSE(c.residual[1]);
  EXPECT_FALSE(c.residual[2]);
  // SNAT/DNAT virtual states and --ctstatus: residual, full.
  for (int i : {3, 4}) {
    EXPECT_TRUE(c.residual[static_cast<size_t>(i)]);
    ASSERT_EQ(c.boxes[static_cast<size_t>(i)].size(), 1U);
    EXPECT_EQ(c.boxes[static_cast<size_t>(i)][0].r[kDimCtState], full(kDimCtState));
  }
  // Two state matches intersect.
  EXPECT_FALSE(c.residual[5]);
  ASSERT_EQ(c.boxes[5].size(), 1U);
  EXPECT_EQ(c.boxes[5][0].r[kDimCtState], (Range{kCtValueEstablished, kCtValueEstablished}));
}

TEST(RuleBoxes, ConntrackTuplesAreDimensions) {
  const Converted c = convert(
      // The seed case's fix: the original destination, before DNAT.
      "-A FORWARD -p tcp -m conntrack --ctorigdst 198.51.100.1/32 --ctorigdstport 10000 -j DROP\n"
      "-A FORWARD -m conntrack --ctstate NEW,INVALID ! --ctorigsrc 10.0.0.0/8 --ctproto udp -j ACCEPT\n"
      "-A FORWARD -m conntrack --ctreplsrc 172.17.0.2 --ctreplsrcport 6379:6380 ! --ctrepldstport 80 -j ACCEPT\n"
      "-A FORWARD -m conntrack --ctdir REPLY --ctexpire 10:100 -j ACCEPT\n");
  for (bool r : c.residual) EXPECT_FALSE(r);
  ASSERT_EQ(c.boxes[0].size(), 1U);
  const Box& b = c.boxes[0][0];
  EXPECT_EQ(b.r[kDimCtOrigDst], (Range{ip(198, 51, 100, 1), ip(198, 51, 100, 1)}));
  EXPECT_EQ(b.r[kDimCtOrigDstPort], (Range{10000, 10000}));
  EXPECT_EQ(b.r[kDimCtState], (Range{kCtValueNew, kCtValueNone}));  // no entry: no match
  EXPECT_EQ(b.r[kDimProto], (Range{6, 6}));
  // INVALID has no entry: that packet matches on the state alone (the
  // kernel checks nothing else without an entry); NEW needs the tuple.
  ASSERT_EQ(c.boxes[1].size(), 3U);
  EXPECT_EQ(c.boxes[1][0].r[kDimCtState], (Range{kCtValueInvalid, kCtValueInvalid}));
  EXPECT_EQ(c.boxes[1][0].r[kDimCtOrigSrc], full(kDimCtOrigSrc));
  for (size_t i : {1U, 2U}) {
    EXPECT_EQ(c.boxes[1][i].r[kDimCtState], (Range{kCtValueNew, kCtValueNew}));
    EXPECT_EQ(c.boxes[1][i].r[kDimCtProto], (Range{17, 17}));
    EXPECT_FALSE(c.boxes[1][i].r[kDimCtOrigSrc].contains(ip(10, 1, 2, 3)));
  }
  ASSERT_EQ(c.boxes[2].size(), 2U);
  EXPECT_EQ(c.boxes[2][0].r[kDimCtReplSrc], (Range{ip(172, 17, 0, 2), ip(172, 17, 0, 2)}));
  EXPECT_EQ(c.boxes[2][0].r[kDimCtReplSrcPort], (Range{6379, 6380}));
  EXPECT_EQ(c.boxes[2][0].r[kDimCtReplDstPort], (Range{0, 79}));
  EXPECT_EQ(c.boxes[2][1].r[kDimCtReplDstPort], (Range{81, 65535}));
  ASSERT_EQ(c.boxes[3].size(), 1U);
  EXPECT_EQ(c.boxes[3][0].r[kDimCtDir], (Range{1, 1}));
  EXPECT_EQ(c.boxes[3][0].r[kDimCtExpire], (Range{10, 100}));
}

TEST(RuleBoxes, MarksFlagsLengthIcmpPkttypeAddrtype) {
  const Converted c = convert(
      "-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT\n"
      "-A FORWARD -m mark ! --mark 0x0/0x4000 -j ACCEPT\n"
      "-A FORWARD -m mark --mark 0x1 -j ACCEPT\n"  // another mask: residual
      "-A FORWARD -m connmark --mark 0x1/0x1 -j ACCEPT\n"
      "-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT\n"
      "-A FORWARD -p tcp -m tcp ! --tcp-flags SYN,ACK SYN,ACK -j ACCEPT\n"
      "-A FORWARD -m length --length 100:1500 -j ACCEPT\n"
      "-A FORWARD -p icmp -m icmp --icmp-type 3/4 -j ACCEPT\n"
      "-A FORWARD -p icmp -m icmp ! --icmp-type 8 -j ACCEPT\n"
      "-A FORWARD -m pkttype --pkt-type broadcast -j DROP\n"
      "-A FORWARD -m addrtype --dst-type LOCAL ! --src-type UNICAST -j ACCEPT\n"
      "-A FORWARD -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT\n"
      "-A FORWARD -p tcp -m tcp --tcp-flags SYN,FIN SYN -m mark --mark 0x4000/0x4000 -j ACCEPT\n");
  const std::vector<bool> want_residual = {false, false, true, false, false, false, false,
                                           false, false, false, false, true, false};
  ASSERT_EQ(c.residual.size(), want_residual.size());
  for (size_t i = 0; i < want_residual.size(); ++i) EXPECT_EQ(c.residual[i], want_residual[i]) << "rule " << i;
  EXPECT_EQ(c.boxes[0][0].r[kDimMark], (Range{1, 1}));  // the one bit under 0x4000
  EXPECT_EQ(c.boxes[1][0].r[kDimMark], (Range{1, 0xffffffffU}));
  EXPECT_EQ(c.boxes[3][0].r[kDimConnmark], (Range{1, 1}));
  EXPECT_EQ(c.boxes[3][0].r[kDimCtState], (Range{kCtValueNew, kCtValueNone}));
  // FIN,SYN,RST,ACK SYN: the top four bits of the dimension are SYN ACK RST FIN.
  ASSERT_EQ(c.boxes[4].size(), 1U);
  EXPECT_EQ(c.boxes[4][0].r[kDimTcpFlags], (Range{0x80, 0x8f}));
  ASSERT_EQ(c.boxes[5].size(), 1U);
  EXPECT_EQ(c.boxes[5][0].r[kDimTcpFlags], (Range{0x00, 0xbf}));
  EXPECT_EQ(c.boxes[6][0].r[kDimLength], (Range{100, 1500}));
  EXPECT_EQ(c.boxes[7][0].r[kDimIcmp], (Range{0x0304, 0x0304}));
  ASSERT_EQ(c.boxes[8].size(), 2U);
  EXPECT_EQ(c.boxes[8][0].r[kDimIcmp], (Range{0, 0x07ff}));
  EXPECT_EQ(c.boxes[8][1].r[kDimIcmp], (Range{0x0900, 0xffff}));
  EXPECT_EQ(c.boxes[9][0].r[kDimPkttype], (Range{1, 1}));
  const auto local = static_cast<uint32_t>(AddrType::Local);
  const auto unicast = static_cast<uint32_t>(AddrType::Unicast);
  for (const Box& b : c.boxes[10]) {
    EXPECT_EQ(b.r[kDimDstAddrtype], (Range{local, local}));
    EXPECT_FALSE(b.r[kDimSrcAddrtype].contains(unicast));
  }
  // SYN,FIN SYN: ACK and RST lie between SYN and FIN in the dimension: four runs.
  EXPECT_EQ(c.boxes[12].size(), 4U);
}

TEST(RuleBoxes, ResidualMatchesAndTheStatefulOrder) {
  const Converted c = convert(
      "-A FORWARD -p tcp -m tcp --dport 80 -m limit --limit 5/sec -j ACCEPT\n"
      "-A FORWARD -p tcp -m limit --limit 5/sec -m tcp --dport 80 -j ACCEPT\n"
      "-A FORWARD -p tcp -m statistic --mode nth --every 2 --packet 0 -m state --state NEW -j ACCEPT\n"
      "-A FORWARD -p tcp -m tcp --dport 80 --tcp-option 2 -m state --state NEW -j ACCEPT\n"
      "-A FORWARD -p tcp -m string --string abc --algo bm -m state --state NEW -j ACCEPT\n");
  for (bool r : c.residual) EXPECT_TRUE(r);
  for (const auto& bs : c.boxes) ASSERT_EQ(bs.size(), 1U);
  EXPECT_EQ(c.boxes[4][0].r[kDimProto], (Range{6, 6}));  // the core still goes in
  // Before the limit: in the box; after it: not (the kernel consumes a token first).
  EXPECT_EQ(c.boxes[0][0].r[kDimDstPort], (Range{80, 80}));
  EXPECT_EQ(c.boxes[1][0].r[kDimDstPort], full(kDimDstPort));
  EXPECT_EQ(c.boxes[2][0].r[kDimCtState], full(kDimCtState));
  // Ports before the option test go in; the state match after it does not.
  EXPECT_EQ(c.boxes[3][0].r[kDimDstPort], (Range{80, 80}));
  EXPECT_EQ(c.boxes[3][0].r[kDimCtState], full(kDimCtState));
}

TEST(RuleBoxes, FragmentsAndEitherPort) {
  const Converted c = convert(
      "-A FORWARD -f -m state --state NEW -j ACCEPT\n"
      "-A FORWARD ! -f -m state --state NEW -j ACCEPT\n"
      "-A FORWARD -p udp -m multiport --ports 53,80 -j ACCEPT\n"
      "-A FORWARD -p udp -m multiport ! --ports 53 -j ACCEPT\n");
  for (bool r : c.residual) EXPECT_FALSE(r);
  // A keyed packet is never a later fragment.
  EXPECT_TRUE(c.boxes[0].empty());
  ASSERT_EQ(c.boxes[1].size(), 1U);
  EXPECT_EQ(c.boxes[1][0].r[kDimCtState], (Range{kCtValueNew, kCtValueNew}));
  // Either port: the source-port pieces, then the destination-port pieces.
  ASSERT_EQ(c.boxes[2].size(), 4U);
  EXPECT_EQ(c.boxes[2][0].r[kDimSrcPort], (Range{53, 53}));
  EXPECT_EQ(c.boxes[2][0].r[kDimDstPort], full(kDimDstPort));
  EXPECT_EQ(c.boxes[2][3].r[kDimDstPort], (Range{80, 80}));
  EXPECT_EQ(c.boxes[2][3].r[kDimSrcPort], full(kDimSrcPort));
  // Neither port: both restricted.
  ASSERT_EQ(c.boxes[3].size(), 4U);
  for (const Box& b : c.boxes[3]) {
    EXPECT_FALSE(b.r[kDimSrcPort].contains(53));
    EXPECT_FALSE(b.r[kDimDstPort].contains(53));
  }
}

TEST(RuleBoxes, MultiportAndIprangeAreRanges) {
  const Converted c = convert(
      "-A FORWARD -p tcp -m multiport --dports 80,443,8000:8080,81 -j ACCEPT\n"
      "-A FORWARD -p udp -m multiport ! --sports 53,0:10 -j ACCEPT\n"
      "-A FORWARD -m iprange --src-range 10.0.0.5-10.0.0.9 ! --dst-range 172.17.0.0-172.17.255.255 -j ACCEPT\n"
      "-A FORWARD -s 10.0.0.0/8 -m iprange --src-range 10.0.0.5-11.0.0.9 -j ACCEPT\n");
  ASSERT_EQ(c.boxes[0].size(), 3U);
  EXPECT_EQ(c.boxes[0][0].r[kDimDstPort], (Range{80, 81}));
  EXPECT_EQ(c.boxes[0][1].r[kDimDstPort], (Range{443, 443}));
  EXPECT_EQ(c.boxes[0][2].r[kDimDstPort], (Range{8000, 8080}));
  ASSERT_EQ(c.boxes[1].size(), 2U);
  EXPECT_EQ(c.boxes[1][0].r[kDimSrcPort], (Range{11, 52}));
  EXPECT_EQ(c.boxes[1][1].r[kDimSrcPort], (Range{54, 65535}));
  ASSERT_EQ(c.boxes[2].size(), 2U);
  EXPECT_EQ(c.boxes[2][0].r[kDimSrcIp], (Range{ip(10, 0, 0, 5), ip(10, 0, 0, 9)}));
  EXPECT_EQ(c.boxes[2][0].r[kDimDstIp], (Range{0, ip(172, 16, 255, 255)}));
  EXPECT_EQ(c.boxes[2][1].r[kDimDstIp], (Range{ip(172, 18, 0, 0), 0xffffffffU}));
  for (bool r : c.residual) EXPECT_FALSE(r);
  // -s and --src-range intersect.
  ASSERT_EQ(c.boxes[3].size(), 1U);
  EXPECT_EQ(c.boxes[3][0].r[kDimSrcIp], (Range{ip(10, 0, 0, 5), ip(10, 255, 255, 255)}));
}

TEST(RuleBoxes, TooManyPiecesWidenToResidual) {
  const Converted c = convert(
      "-A FORWARD ! -s 10.0.0.0/8 ! -d 10.0.0.0/8 -p tcp -m tcp ! --sport 5 ! --dport 6 "
      "-m conntrack ! --ctstate NEW -j ACCEPT\n"
      "-A FORWARD ! -s 10.0.0.0/8 ! -d 10.0.0.0/8 -p tcp -m tcp ! --sport 5 ! --dport 6 -j ACCEPT\n");
  EXPECT_TRUE(c.residual[0]);
  EXPECT_LE(c.boxes[0].size(), kMaxBoxesPerRule);
  EXPECT_FALSE(c.residual[1]);
  EXPECT_EQ(c.boxes[1].size(), 16U);
}

TEST(ChainKey, StatesAndFallbacks) {
  PacketKey k{};
  k.src_ip = ip(10, 0, 0, 1);
  k.dst_ip = ip(172, 17, 0, 2);
  k.proto = kProtoTcp;
  k.src_port = 1234;
  k.dst_port = 80;
  k.flags = key_flag::kPorts | key_flag::kTcpFlags;
  MatchContext ctx;
  ctx.key = &k;
  ctx.in_iface = 1;
  ClassifierKey key;
  EXPECT_FALSE(chain_key(ctx, KeySpec{}, key));  // addrtype needs the host model
  ctx.host = &host();
  ASSERT_TRUE(chain_key(ctx, KeySpec{}, key));
  EXPECT_EQ(key.v[kDimSrcPort], 1234U);
  EXPECT_EQ(key.v[kDimOutIface], kNoIface);
  EXPECT_EQ(key.v[kDimCtState], kCtValueInvalid);
  ctx.ct.present = true;
  ctx.ct.state_bits = kCtEstablished | kCtSnat;
  ASSERT_TRUE(chain_key(ctx, KeySpec{}, key));
  EXPECT_EQ(key.v[kDimCtState], kCtValueEstablished);
  ctx.ct.state_bits = kCtEstablished | kCtInvalid;  // the two matches would disagree
  EXPECT_FALSE(chain_key(ctx, KeySpec{}, key));
  ctx.ct.present = false;
  ctx.ct.state_bits = kCtUntracked;
  ASSERT_TRUE(chain_key(ctx, KeySpec{}, key));
  EXPECT_EQ(key.v[kDimCtState], kCtValueUntracked);
  k.flags = key_flag::kPorts;  // TCP header incomplete: tcp matches may hotdrop
  EXPECT_FALSE(chain_key(ctx, KeySpec{}, key));
  k.flags = key_flag::kPorts | key_flag::kTcpFlags;
  k.frag = 3;  // a later fragment
  EXPECT_FALSE(chain_key(ctx, KeySpec{}, key));
}

TEST(ChainKey, TuplesMarksFlagsAndTypes) {
  PacketKey k{};
  k.src_ip = ip(203, 0, 113, 5);
  k.dst_ip = ip(172, 17, 0, 2);
  k.proto = kProtoTcp;
  k.src_port = 40000;
  k.dst_port = 6379;
  k.l3_len = 60;
  k.tcp_flags = tcp_flag::kSyn | tcp_flag::kAck;
  k.flags = key_flag::kPorts | key_flag::kTcpFlags;
  MatchContext ctx;
  ctx.key = &k;
  ctx.host = &host();
  ctx.mark = 0x4321;
  ctx.ct.present = true;
  ctx.ct.state_bits = kCtNew | kCtDnat;
  ctx.ct.ctmark = 0xff00;
  ctx.ct.orig = CtTupleView{ip(203, 0, 113, 5), ip(198, 51, 100, 1), 40000, 10000, kProtoTcp};
  ctx.ct.reply = CtTupleView{ip(172, 17, 0, 2), ip(203, 0, 113, 5), 6379, 40000, kProtoTcp};
  KeySpec spec;
  spec.mark_mask = 0x0ff0;
  spec.connmark_mask = 0xff000000U;
  ClassifierKey key;
  ASSERT_TRUE(chain_key(ctx, spec, key));
  EXPECT_EQ(key.v[kDimCtOrigDst], ip(198, 51, 100, 1));
  EXPECT_EQ(key.v[kDimCtOrigDstPort], 10000U);
  EXPECT_EQ(key.v[kDimCtReplSrc], ip(172, 17, 0, 2));
  EXPECT_EQ(key.v[kDimCtReplSrcPort], 6379U);
  EXPECT_EQ(key.v[kDimCtProto], kProtoTcp);
  EXPECT_EQ(key.v[kDimMark], 0x32U);
  EXPECT_EQ(key.v[kDimConnmark], 0U);
  EXPECT_EQ(key.v[kDimLength], 60U);
  EXPECT_EQ(key.v[kDimTcpFlags], 0xc0U);  // SYN and ACK: the top two bits
  EXPECT_EQ(key.v[kDimPkttype], 0U);
  EXPECT_EQ(key.v[kDimDstAddrtype], static_cast<uint32_t>(host().addr_type(k.dst_ip)));
  // A mask of several runs packs its bits together.
  EXPECT_EQ(compress_bits(0xf0f0, 0x1111), 0xaU);
  EXPECT_EQ(compress_bits(0xffffffffU, 0x80000001U), 0x3U);
  for (unsigned f = 0; f < 256; ++f) {  // a permutation of the flag byte
    for (unsigned g = f + 1; g < 256; ++g) ASSERT_NE(tcp_flags_value(static_cast<uint8_t>(f)), tcp_flags_value(static_cast<uint8_t>(g)));
  }
  // ICMP: type and code; a header that did not parse gets no key.
  k.proto = kProtoIcmp;
  k.flags = key_flag::kIcmp;
  k.icmp_type = 3;
  k.icmp_code = 4;
  ASSERT_TRUE(chain_key(ctx, spec, key));
  EXPECT_EQ(key.v[kDimIcmp], 0x0304U);
  k.flags = 0;
  EXPECT_FALSE(chain_key(ctx, spec, key));
  spec.used = kClassbenchDims;  // the icmp dimension unused: no need for it
  EXPECT_TRUE(chain_key(ctx, spec, key));
}

TEST(ChainAlgoNames, RoundTrip) {
  for (ChainAlgo a : all_chain_algos()) {
    EXPECT_EQ(parse_chain_algo(chain_algo_name(a)), a);
  }
  // The four with names in chain_boxes.h keep their registry places.
  EXPECT_EQ(chain_algo_name(ChainAlgo::kLinear), "linear");
  EXPECT_EQ(chain_algo_name(ChainAlgo::kDtree), "dtree");
  EXPECT_EQ(chain_algo_name(ChainAlgo::kTuple), "tuple");
  EXPECT_EQ(chain_algo_name(ChainAlgo::kAcl), "acl");
  EXPECT_GE(all_chain_algos().size(), 5U);
  EXPECT_FALSE(parse_chain_algo("hicuts").has_value());
}

// ---------------------------------------------------------------- random

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng() % n); }
  bool coin(uint32_t pct) { return below(100) < pct; }
  template <class T, size_t N>
  const T& pick(const T (&a)[N]) { return a[below(N)]; }
};

const char* const kNets[] = {"10.0.0.0/8", "10.1.2.0/24", "172.17.0.2/32", "192.168.0.0/16", "172.17.0.0/16"};
const uint32_t kAddrs[] = {ip(10, 1, 2, 3), ip(10, 9, 9, 9), ip(172, 17, 0, 2), ip(172, 17, 0, 3),
                           ip(192, 168, 1, 1), ip(8, 8, 8, 8)};
const char* const kPortArgs[] = {"80", "22", "1000:2000", "0:1023", "53", "8080", "443"};
const uint16_t kPorts[] = {80, 22, 1500, 53, 8080, 443, 40000, 1023, 1024};
const char* const kIfaces[] = {"eth0", "docker0", "br-+", "lo", "nosuch+", "+"};
const char* const kStates[] = {"NEW", "ESTABLISHED", "RELATED,ESTABLISHED", "INVALID", "UNTRACKED",
                               "NEW,INVALID", "INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED"};

// Appends " [!] OPT VALUE" (appends only: g++ 12 -O3 misreads prefix concatenation as overlapping copies).
void opt(std::string& r, Gen& g, const char* option, const char* value) {
  r += ' ';
  if (g.coin(30)) r += "! ";
  r += option;
  r += ' ';
  r += value;
}
void add(std::string& r, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) r += p;
}

std::string random_rule(Gen& g, const std::string& chain, uint32_t chain_index, uint32_t chains) {
  std::string r = "-A";
  add(r, {" ", chain});
  if (g.coin(40)) opt(r, g, "-s", g.pick(kNets));
  if (g.coin(40)) opt(r, g, "-d", g.pick(kNets));
  if (g.coin(30)) opt(r, g, "-i", g.pick(kIfaces));
  if (g.coin(30)) opt(r, g, "-o", g.pick(kIfaces));
  const uint32_t proto = g.below(6);  // any, tcp, udp, icmp, ! tcp, tcp
  if (proto == 1 || proto == 5) r += " -p tcp";
  if (proto == 2) r += " -p udp";
  if (proto == 3) r += " -p icmp";
  if (proto == 4) r += " ! -p tcp";
  if (g.coin(5)) r += g.coin(50) ? " -f" : " ! -f";
  const uint32_t modules = g.below(4);
  for (uint32_t m = 0; m < modules; ++m) {
    switch (g.below(9)) {
      case 0:
      case 1:
        if (proto == 1 || proto == 5 || proto == 2) {
          const char* name = proto == 2 ? "udp" : "tcp";
          add(r, {" -m ", name});
          if (g.coin(60)) opt(r, g, "--sport", g.pick(kPortArgs));
          if (g.coin(80)) opt(r, g, "--dport", g.pick(kPortArgs));
          if (proto != 2 && g.coin(30)) {
            const char* const flags[] = {"SYN,ACK SYN", "FIN,SYN,RST,ACK SYN", "ALL NONE", "SYN,FIN SYN,FIN",
                                         "ALL ACK,PSH", "URG,PSH URG", "RST RST"};
            opt(r, g, "--tcp-flags", g.pick(flags));
          }
        }
        break;
      case 2:
        r += " -m state";
        opt(r, g, "--state", g.pick(kStates));
        break;
      case 3:
        r += " -m conntrack";
        if (g.coin(70)) opt(r, g, "--ctstate", g.pick(kStates));
        if (g.coin(30)) opt(r, g, "--ctorigdst", g.pick(kNets));
        if (g.coin(30)) opt(r, g, "--ctorigsrc", g.pick(kNets));
        if (g.coin(20)) opt(r, g, "--ctreplsrc", g.pick(kNets));
        if (g.coin(10)) opt(r, g, "--ctrepldst", g.pick(kNets));
        if (g.coin(20)) opt(r, g, "--ctproto", g.coin(50) ? "tcp" : "udp");
        if (g.coin(30)) opt(r, g, "--ctorigdstport", g.pick(kPortArgs));
        if (g.coin(15)) opt(r, g, "--ctorigsrcport", g.pick(kPortArgs));
        if (g.coin(15)) opt(r, g, "--ctreplsrcport", g.pick(kPortArgs));
        if (g.coin(10)) opt(r, g, "--ctrepldstport", g.pick(kPortArgs));
        if (g.coin(10)) r += g.coin(50) ? " --ctdir REPLY" : " --ctdir ORIGINAL";  // cannot be inverted
        if (g.coin(10)) opt(r, g, "--ctexpire", g.coin(50) ? "100:300" : "0:50");
        if (g.coin(5)) r += " --ctstatus ASSURED";
        if (r.back() == 'k') r += " --ctstate NEW";  // no option given yet
        break;
      case 4: {
        const char* const marks[] = {"0x1/0x1", "0x4000/0x4000", "0x0/0x4000", "0x2", "0x10/0x30", "0x1"};
        // iptables gives --mark to the first of mark and connmark loaded
        // (`-m mark .. -m connmark .. -m mark --mark` fails): one kind a rule.
        const bool has_mark = r.find(" -m mark") != std::string::npos;
        const bool has_connmark = r.find(" -m connmark") != std::string::npos;
        if (has_mark || (!has_connmark && g.coin(70))) {
          r += " -m mark";
          opt(r, g, "--mark", g.pick(marks));
        } else {
          r += " -m connmark";
          opt(r, g, "--mark", g.pick(marks));
        }
        break;
      }
      case 5:
        r += " -m limit --limit 20/sec --limit-burst 3";
        break;
      case 6:
        r += " -m statistic --mode nth --every 3 --packet 1";
        break;
      case 7:
        if (proto == 1 || proto == 2) {
          const char* const kinds[] = {"--dports", "--sports", "--ports"};
          r += " -m multiport";
          opt(r, g, g.pick(kinds), "53,80,1000:2000,1024");
        }
        break;
      default:
        if (g.coin(40)) {
          r += " -m iprange";
          if (g.coin(60)) opt(r, g, "--src-range", "10.0.0.0-10.1.2.200");
          opt(r, g, "--dst-range", "172.17.0.2-192.168.0.1");
        } else if (proto == 3) {
          const char* const types[] = {"8", "0", "3/4", "echo-reply", "3", "any"};
          r += " -m icmp";
          opt(r, g, "--icmp-type", g.pick(types));
        } else if (g.coin(40)) {
          const char* const lens[] = {"0:100", "100:150", "64", "200:65535"};
          r += " -m length";
          opt(r, g, "--length", g.pick(lens));
        } else if (g.coin(50)) {
          const char* const types[] = {"unicast", "broadcast", "multicast"};
          r += " -m pkttype";
          opt(r, g, "--pkt-type", g.pick(types));
        } else {
          const char* const types[] = {"LOCAL", "UNICAST", "BROADCAST", "LOCAL,MULTICAST"};
          r += " -m addrtype";
          if (g.coin(60)) opt(r, g, "--dst-type", g.pick(types));
          if (g.coin(40)) opt(r, g, "--src-type", g.pick(types));
          if (r.back() == 'e') r += " --dst-type LOCAL";  // no type given yet
          if (g.coin(10)) r += " --limit-iface-in";
        }
        break;
    }
  }
  switch (g.below(8)) {
    case 0: r += " -j ACCEPT"; break;
    case 1: r += " -j DROP"; break;
    case 2: r += " -j RETURN"; break;
    case 3:
      if (chain_index + 1 < chains) add(r, {" -j U", std::to_string(chain_index + 1 + g.below(chains - chain_index - 1))});
      break;
    case 4: r += " -j MARK --set-xmark 0x1/0x1"; break;
    case 5: r += " -j MARK --set-xmark 0x0/0x1"; break;
    default: break;  // count only
  }
  r += "\n";
  return r;
}

std::string random_table(Gen& g) {
  const uint32_t users = 1 + g.below(3);
  std::string t = "*mangle\n:FORWARD ";
  add(t, {g.coin(50) ? "ACCEPT" : "DROP", " [0:0]\n"});
  for (uint32_t u = 1; u <= users; ++u) add(t, {":U", std::to_string(u), " - [0:0]\n"});
  const uint32_t n = 5 + g.below(40);
  for (uint32_t i = 0; i < n; ++i) t += random_rule(g, "FORWARD", 0, users + 1);
  for (uint32_t u = 1; u <= users; ++u) {
    const uint32_t m = g.below(15);
    for (uint32_t i = 0; i < m; ++i) t += random_rule(g, std::string("U").append(std::to_string(u)), u, users + 1);
  }
  t += "COMMIT\n";
  return t;
}

struct RandomPacket {
  PacketKey key{};
  MatchContext ctx;
};

RandomPacket random_packet(Gen& g, uint64_t now) {
  RandomPacket p;
  PacketKey& k = p.key;
  k.src_ip = g.coin(80) ? g.pick(kAddrs) : static_cast<uint32_t>(g.rng());
  k.dst_ip = g.coin(80) ? g.pick(kAddrs) : static_cast<uint32_t>(g.rng());
  const uint8_t protos[] = {kProtoTcp, kProtoTcp, kProtoUdp, kProtoIcmp, 47};
  k.proto = g.pick(protos);
  if (k.proto == kProtoTcp || k.proto == kProtoUdp) {
    k.src_port = g.pick(kPorts);
    k.dst_port = g.pick(kPorts);
    k.flags = key_flag::kPorts;
    if (k.proto == kProtoTcp) {
      k.flags |= key_flag::kTcpFlags;
      const uint8_t flags[] = {tcp_flag::kSyn, tcp_flag::kAck, tcp_flag::kSyn | tcp_flag::kAck, 0, 0x29, 0x18,
                               tcp_flag::kRst, 0x11};
      k.tcp_flags = g.coin(90) ? g.pick(flags) : static_cast<uint8_t>(g.rng());
    }
    if (g.coin(3)) k.flags = 0;  // truncated: tcp/udp matches hotdrop
  } else if (k.proto == kProtoIcmp) {
    k.flags = key_flag::kIcmp;
    k.icmp_type = g.coin(40) ? 8 : (g.coin(50) ? 0 : 3);
    k.icmp_code = g.coin(80) ? 0 : 4;
  }
  if (g.coin(4)) k.frag = static_cast<uint16_t>(g.coin(50) ? 1 : 7);  // later fragments
  k.l3_len = static_cast<uint16_t>(40 + g.below(200));
  const PktType pkttypes[] = {PktType::Host, PktType::Host, PktType::Broadcast, PktType::Multicast, PktType::Loopback};
  k.pkttype = g.pick(pkttypes);
  MatchContext& c = p.ctx;
  c.key = &p.key;
  c.hook = Hook::Forward;
  c.host = &host();
  c.now_ns = now;
  const uint32_t marks[] = {0, 1, 2, 0x4000, 0x4001, 0x10, 0x20};
  c.mark = g.pick(marks);
  c.ct.ctmark = g.pick(marks);
  const uint8_t ct_protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp};
  const uint32_t expires[] = {0, 30, 100, 299, 300, 432000};
  c.ct.expire_s = g.pick(expires);
  c.ct.status_bits = static_cast<uint8_t>(g.below(16));
  c.ct.orig = CtTupleView{g.pick(kAddrs), g.pick(kAddrs), g.pick(kPorts), g.pick(kPorts), g.pick(ct_protos)};
  c.ct.reply = CtTupleView{g.pick(kAddrs), g.pick(kAddrs), g.pick(kPorts), g.pick(kPorts), c.ct.orig.proto};
  const uint16_t ifs[] = {0, 1, 2, 3, kNoIface, 77};
  c.in_iface = g.pick(ifs);
  c.out_iface = g.pick(ifs);
  switch (g.below(8)) {
    case 0: c.ct.state_bits = kCtInvalid; break;
    case 1: c.ct.state_bits = kCtUntracked; break;
    case 2: c.ct.present = true; c.ct.state_bits = kCtNew; break;
    case 3: c.ct.present = true; c.ct.state_bits = kCtEstablished; break;
    case 4: c.ct.present = true; c.ct.state_bits = kCtRelated; break;
    case 5: c.ct.present = true; c.ct.state_bits = kCtEstablished | kCtSnat; break;
    case 6: c.ct.present = true; c.ct.state_bits = kCtNew | kCtDnat; c.ct.reply_dir = true; break;
    default: c.ct.present = true; c.ct.state_bits = 0; break;
  }
  if (c.ct.present && g.coin(40)) c.ct.reply_dir = true;
  return p;
}

class RandomChains : public ::testing::TestWithParam<ChainAlgo> {};

TEST_P(RandomChains, EveryWalkEqualsTheLinearWalk) {
  const ChainAlgo algo = GetParam();
  Gen g(0x6368'6169'6e62'6f78ULL + uint64_t{algo.id});
  uint64_t compared = 0;
  uint64_t box_walks = 0;
  for (int round = 0; round < 150; ++round) {
    const std::string text = random_table(g);
    SCOPED_TRACE(text);
    Ruleset rs;
    try {
      rs = read_iptables_save(text, "random");
    } catch (const LoadError& e) {
      FAIL() << e.what();
    }
    const Table& table = *rs.find_table(TableId::Mangle);
    ChainWalker linear = ChainWalker::build(table, host());
    ChainWalker walker = ChainWalker::build(table, host());
    const ChainClassifiers compiled(walker, host(), algo);
    uint64_t now = 1'000'000'000ULL;
    for (int i = 0; i < 400; ++i) {
      now += g.below(30'000'000);
      RandomPacket a = random_packet(g, now);
      RandomPacket b = a;
      b.ctx.key = &b.key;
      const WalkResult ra = linear.walk(Hook::Forward, a.ctx);
      const WalkResult rb = compiled.walk(walker, Hook::Forward, b.ctx);
      ASSERT_EQ(ra.verdict, rb.verdict) << "packet " << i;
      ASSERT_EQ(ra.hotdrop, rb.hotdrop) << "packet " << i;
      ASSERT_EQ(ra.by_policy, rb.by_policy) << "packet " << i;
      ASSERT_EQ(ra.decided_by, rb.decided_by) << "packet " << i;
      ASSERT_EQ(ra.mark, rb.mark) << "packet " << i;
      // The classifier's vary is a superset of the linear walk's.
      ASSERT_EQ(ra.vary & ~rb.vary, 0U) << "packet " << i;
      // The linear fallback (first_match) tests as many rules; the box path
      // counts lookups and evaluations, which differ on most walks.
      if (ra.rules_tested != rb.rules_tested) ++box_walks;
      ++compared;
    }
    const auto ca = linear.counters();
    const auto cb = walker.counters();
    ASSERT_EQ(ca.size(), cb.size());
    for (size_t i = 0; i < ca.size(); ++i) {
      ASSERT_EQ(ca[i].packets, cb[i].packets) << "counter " << i;
      ASSERT_EQ(ca[i].bytes, cb[i].bytes) << "counter " << i;
    }
  }
  EXPECT_EQ(compared, 150U * 400U);
  EXPECT_GT(box_walks, compared / 4);
}

INSTANTIATE_TEST_SUITE_P(Algos, RandomChains,
                         ::testing::ValuesIn(all_chain_algos()),
                         [](const ::testing::TestParamInfo<ChainAlgo>& p) {
                           return std::string(chain_algo_name(p.param));
                         });

}  // namespace
}  // namespace nfb
