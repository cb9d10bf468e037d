// The chain walk against hand counts: jumps, gotos, RETURN, implicit
// returns, policies, terminating and non-terminating targets, counters and
// their iptables-save -c text, TRACE events in the kernel's numbering, path
// recording, flow variance, deep chains, loop refusal, hotdrop.
//
// KernelWalkTest (suite "kernel", needs root, network namespaces and
// iptables-legacy; skips otherwise) loads one raw-table ruleset into a fresh
// namespace, injects crafted Ethernet frames on a veth with AF_PACKET and
// requires `iptables-save -c` to equal the walk's counters line for line.
// The TRACE expectations below were read from the kernel log of the same
// kind of namespace (net.netfilter.nf_log_all_netns=1, nf_log.2=nf_log_ipv4),
// which the automatic test does not do because it changes a global sysctl.
#include "netfilter/chain_walk.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/load_error.h"
#include "netfilter/host.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"
#include "tests/support/netns.h"

namespace nfb {
namespace {

using test::Bytes;
using test::ip4;

constexpr uint16_t kEth0 = 1, kDocker0 = 2;

const HostModel& docker_host() {
  static const HostModel h = default_docker_host();
  return h;
}

struct Packet {
  Bytes frame;
  PacketKey key{};
  ParseStatus status = ParseStatus::Ok;
  explicit Packet(Bytes f) : frame(std::move(f)) {
    status = parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, key);
  }
};

Packet tcp_packet(uint16_t dport, uint8_t flags = tcp_flag::kSyn, uint32_t src = ip4(203, 0, 113, 5),
                  uint32_t dst = ip4(172, 17, 0, 2)) {
  return Packet(test::ethernet({}, test::ipv4({.src = src, .dst = dst, .proto = kProtoTcp},
                                              test::tcp({.sport = 40000, .dport = dport, .flags = flags}))));
}
Packet udp_packet(uint16_t dport, Bytes payload = {}) {
  return Packet(test::ethernet(
      {}, test::ipv4({.proto = kProtoUdp}, test::udp({.sport = 5000, .dport = dport, .payload = std::move(payload)}))));
}

/// A context for `hook` with the interfaces such a packet has.
MatchContext ctx_for(const Packet& p, Hook hook, const HostModel& host = docker_host()) {
  MatchContext c;
  c.key = &p.key;
  c.frame = p.frame.data();
  c.frame_len = static_cast<uint32_t>(p.frame.size());
  c.hook = hook;
  c.host = &host;
  if (hook == Hook::Prerouting || hook == Hook::Input || hook == Hook::Forward) c.in_iface = kEth0;
  if (hook == Hook::Forward || hook == Hook::Postrouting || hook == Hook::Output) c.out_iface = kDocker0;
  return c;
}

struct Fixture {
  Ruleset ruleset;
  ChainWalker walker;
  Fixture(const std::string& text, TableId id, const WalkOptions& opts = {})
      : ruleset(read_iptables_save(text, "chain_walk_test")),
        walker(ChainWalker::build(*ruleset.find_table(id), docker_host(), opts)) {}

  WalkResult walk(const Packet& p, Hook hook, const WalkSinks& sinks = {}) {
    MatchContext c = ctx_for(p, hook);
    return walker.walk(hook, c, sinks);
  }
  uint32_t chain(const std::string& name) const { return *walker.table().find_chain(name); }
  Counters rule(const std::string& chain_name, uint32_t pos) const {
    return walker.rule_counter(chain(chain_name), pos);
  }
  Counters policy(const std::string& chain_name) const { return walker.policy_counter(chain(chain_name)); }
  std::string saved() {
    walker.store_counters(ruleset);
    return write_iptables_save(ruleset, {.counters = true});
  }
};

Counters c(uint64_t packets, uint64_t bytes) { return Counters{packets, bytes}; }

// ---------------------------------------------------------------------------
// Jumps, gotos, returns, policies

constexpr const char* kJumpRules = R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
-A FORWARD -p tcp -j A
-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT
-A A -p tcp -m tcp --dport 22 -j DROP
-A A -p tcp
COMMIT
)";

TEST(ChainWalkTest, JumpThenImplicitReturnContinuesAfterTheJump) {
  Fixture f(kJumpRules, TableId::Filter);
  const Packet web = tcp_packet(80);  // 40 bytes
  const WalkResult r = f.walk(web, Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Accept);
  EXPECT_FALSE(r.by_policy);
  EXPECT_EQ(r.decided_by, f.walker.flat_index(f.chain("FORWARD"), 1));
  EXPECT_EQ(f.rule("FORWARD", 0), c(1, 40));
  EXPECT_EQ(f.rule("A", 0), c(0, 0));
  EXPECT_EQ(f.rule("A", 1), c(1, 40));
  EXPECT_EQ(f.rule("FORWARD", 1), c(1, 40));
  EXPECT_EQ(f.policy("FORWARD"), c(0, 0));
  EXPECT_EQ(r.rules_tested, 4U);
}

TEST(ChainWalkTest, DropInAJumpedChainEndsEverything) {
  Fixture f(kJumpRules, TableId::Filter);
  const WalkResult r = f.walk(tcp_packet(22), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_FALSE(r.by_policy);
  EXPECT_EQ(f.rule("A", 0), c(1, 40));
  EXPECT_EQ(f.rule("A", 1), c(0, 0));
  EXPECT_EQ(f.rule("FORWARD", 1), c(0, 0));
}

TEST(ChainWalkTest, FallingOffABuiltinChainAppliesAndCountsItsPolicy) {
  Fixture f(kJumpRules, TableId::Filter);
  const WalkResult r = f.walk(tcp_packet(443), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_TRUE(r.by_policy);
  EXPECT_EQ(r.decided_by, f.walker.policy_index(f.chain("FORWARD")));
  EXPECT_EQ(f.policy("FORWARD"), c(1, 40));
  const WalkResult in = f.walk(udp_packet(53), Hook::Input);  // empty INPUT, policy ACCEPT
  EXPECT_EQ(in.verdict, WalkResult::Accept);
  EXPECT_TRUE(in.by_policy);
  EXPECT_EQ(f.policy("INPUT"), c(1, 28));
}

TEST(ChainWalkTest, GotoThenReturnReturnsToTheCallerOfTheChainThatDidTheGoto) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A FORWARD -j A
-A FORWARD -j ACCEPT
-A A -g B
-A A -j DROP
-A B -j RETURN
-A B -j DROP
COMMIT
)",
            TableId::Filter);
  const WalkResult r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Accept);
  EXPECT_EQ(f.rule("A", 0), c(1, 40));
  EXPECT_EQ(f.rule("B", 0), c(1, 40));
  EXPECT_EQ(f.rule("B", 1), c(0, 0));
  EXPECT_EQ(f.rule("A", 1), c(0, 0)) << "RETURN from B skips the rest of A";
  EXPECT_EQ(f.rule("FORWARD", 1), c(1, 40));
}

TEST(ChainWalkTest, GotoFromABuiltinChainThenReturnAppliesThePolicy) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:B - [0:0]
:C - [0:0]
-A FORWARD -p tcp -g B
-A FORWARD -j ACCEPT
-A B -p tcp -m tcp --dport 80 -g C
-A C -p udp
COMMIT
)",
            TableId::Filter);
  // Implicit return at the end of B, nothing to pop: FORWARD's policy.
  WalkResult r = f.walk(tcp_packet(22), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_TRUE(r.by_policy);
  // goto, goto, end of C: still the policy.
  r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_EQ(f.policy("FORWARD"), c(2, 80));
  EXPECT_EQ(f.rule("FORWARD", 1), c(0, 0));
  // udp does not take the goto.
  r = f.walk(udp_packet(53), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Accept);
  EXPECT_FALSE(r.by_policy);
}

TEST(ChainWalkTest, ReturnInABuiltinChainAppliesThePolicy) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -j RETURN
-A FORWARD -j ACCEPT
COMMIT
)",
            TableId::Filter);
  const WalkResult r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_TRUE(r.by_policy);
  EXPECT_EQ(f.rule("FORWARD", 0), c(1, 40));
  EXPECT_EQ(f.policy("FORWARD"), c(1, 40));
  EXPECT_EQ(f.rule("FORWARD", 1), c(0, 0));
}

TEST(ChainWalkTest, AcceptEndsOnlyThisTable) {
  const std::string text = R"(*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A FORWARD -j ACCEPT
-A FORWARD -j MARK --set-xmark 0x1/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp
COMMIT
)";
  Fixture mangle(text, TableId::Mangle);
  Fixture filter(text, TableId::Filter);
  const Packet p = tcp_packet(80);
  MatchContext ctx = ctx_for(p, Hook::Forward);
  const WalkResult m = mangle.walker.walk(Hook::Forward, ctx);
  EXPECT_EQ(m.verdict, WalkResult::Accept);
  EXPECT_EQ(mangle.rule("FORWARD", 1), c(0, 0));
  EXPECT_EQ(ctx.mark, 0U);
  // The next table at the same hook is walked as usual.
  const WalkResult fl = filter.walker.walk(Hook::Forward, ctx);
  EXPECT_EQ(fl.verdict, WalkResult::Drop);
  EXPECT_EQ(filter.rule("FORWARD", 0), c(1, 40));
  // A hook the table does not have.
  MatchContext pre = ctx_for(p, Hook::Prerouting);
  const WalkResult none = filter.walker.walk(Hook::Prerouting, pre);
  EXPECT_TRUE(none.no_chain);
  EXPECT_EQ(none.verdict, WalkResult::Accept);
}

TEST(ChainWalkTest, RejectIsADropReportedWithItsTarget) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j REJECT
COMMIT
)",
            TableId::Filter);
  WalkResult r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Reject);
  ASSERT_NE(r.reject, nullptr);
  EXPECT_EQ(r.reject->with, RejectTarget::With::TcpReset);
  r = f.walk(udp_packet(53), Hook::Forward);
  ASSERT_NE(r.reject, nullptr);
  EXPECT_EQ(r.reject->with, RejectTarget::With::IcmpPortUnreachable);
}

TEST(ChainWalkTest, NatTargetsEndTheNatWalkAndAreReported) {
  Fixture f(R"(*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER -p tcp -m tcp --dport 10000 -j DNAT --to-destination 172.17.0.2:6379
-A DOCKER -p tcp -j DNAT --to-destination 172.17.0.3
COMMIT
)",
            TableId::Nat);
  const Packet in = tcp_packet(10000, tcp_flag::kSyn, ip4(203, 0, 113, 5), ip4(198, 51, 100, 1));
  const WalkResult r = f.walk(in, Hook::Prerouting);
  EXPECT_EQ(r.verdict, WalkResult::Accept);
  ASSERT_NE(r.nat, nullptr);
  const auto* dnat = std::get_if<DnatTarget>(r.nat);
  ASSERT_NE(dnat, nullptr);
  EXPECT_EQ(dnat->range.addr_lo, ip4(172, 17, 0, 2));
  EXPECT_EQ(dnat->range.port_lo, 6379);
  EXPECT_EQ(f.rule("DOCKER", 2), c(0, 0));
  EXPECT_EQ(f.policy("PREROUTING"), c(0, 0));

  const Packet out = tcp_packet(443, tcp_flag::kSyn, ip4(172, 17, 0, 2), ip4(93, 184, 216, 34));
  MatchContext ctx = ctx_for(out, Hook::Postrouting);
  ctx.out_iface = kEth0;
  const WalkResult m = f.walker.walk(Hook::Postrouting, ctx);
  ASSERT_NE(m.nat, nullptr);
  EXPECT_TRUE(std::holds_alternative<MasqueradeTarget>(*m.nat));
  // No nat rule: the policy; no target reported.
  const WalkResult none = f.walk(out, Hook::Postrouting);  // out docker0
  EXPECT_EQ(none.nat, nullptr);
  EXPECT_TRUE(none.by_policy);
}

// ---------------------------------------------------------------------------
// Non-terminating targets

TEST(ChainWalkTest, LogRecordsAnEventAndContinues) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -j LOG --log-prefix "fwd: "
-A FORWARD -p tcp
COMMIT
)",
            TableId::Filter);
  WalkEvent ev[4];
  EventBuffer events{ev, 4};
  const WalkResult r = f.walk(tcp_packet(80), Hook::Forward, {.events = &events});
  EXPECT_TRUE(r.by_policy);
  ASSERT_EQ(events.size, 1U);
  EXPECT_EQ(ev[0].kind, WalkEvent::Kind::Log);
  EXPECT_EQ(ev[0].rulenum, 1U);
  ASSERT_NE(ev[0].rule, nullptr);
  EXPECT_EQ(std::get<LogTarget>(ev[0].rule->target).prefix, "fwd: ");
  EXPECT_EQ(f.rule("FORWARD", 1), c(1, 40));
}

TEST(ChainWalkTest, MarkIsVisibleToLaterRulesAndLaterTables) {
  const std::string text = R"(*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m mark --mark 0x0 -j MARK --set-xmark 0x10/0xf0
-A PREROUTING -m mark --mark 0x10/0xf0 -j MARK --set-xmark 0x1/0x0
-A PREROUTING -m mark --mark 0x11
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m mark --mark 0x11 -j DROP
COMMIT
)";
  Fixture mangle(text, TableId::Mangle);
  Fixture filter(text, TableId::Filter);
  const Packet p = tcp_packet(80);
  MatchContext ctx = ctx_for(p, Hook::Prerouting);
  const WalkResult r = mangle.walker.walk(Hook::Prerouting, ctx);
  EXPECT_EQ(r.mark, 0x11U);
  EXPECT_TRUE(r.mark_changed);
  EXPECT_EQ(mangle.rule("PREROUTING", 2), c(1, 40));
  ctx.hook = Hook::Forward;
  ctx.out_iface = kDocker0;
  EXPECT_EQ(filter.walker.walk(Hook::Forward, ctx).verdict, WalkResult::Drop);
}

TEST(ChainWalkTest, ConnmarkSetSaveRestoreNeedAnEntry) {
  Fixture f(R"(*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --set-xmark 0x100/0xf00
-A PREROUTING -j MARK --set-xmark 0x7/0xffffffff
-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff
-A PREROUTING -j MARK --set-xmark 0x0/0xffffffff
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xf00 --ctmask 0xf00
COMMIT
)",
            TableId::Mangle);
  const Packet p = tcp_packet(80);
  MatchContext ctx = ctx_for(p, Hook::Prerouting);
  ctx.ct.present = true;
  ctx.ct.state_bits = kCtNew;
  ctx.ct.ctmark = 0x5005;
  WalkResult r = f.walker.walk(Hook::Prerouting, ctx);
  // set: 0x5005 -> 0x5105; save: low byte from mark 0x7 -> 0x5107;
  // restore: mark 0x0 gets ctmark's 0xf00 bits -> 0x100.
  EXPECT_TRUE(r.connmark_changed);
  EXPECT_EQ(r.ctmark, 0x5107U);
  EXPECT_EQ(ctx.ct.ctmark, 0x5107U);
  EXPECT_EQ(r.mark, 0x100U);
  // Without an entry CONNMARK does nothing.
  MatchContext none = ctx_for(p, Hook::Prerouting);
  none.ct.ctmark = 0x5005;
  r = f.walker.walk(Hook::Prerouting, none);
  EXPECT_FALSE(r.connmark_changed);
  EXPECT_EQ(r.ctmark, 0x5005U);
  EXPECT_EQ(r.mark, 0x0U);
}

TEST(ChainWalkTest, NotrackUntracksOnceAndLaterRulesSeeUntracked) {
  Fixture f(R"(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m state --state UNTRACKED
-A PREROUTING -p udp -j CT --notrack
-A PREROUTING -p udp -j CT --zone 5
-A PREROUTING -m state --state UNTRACKED
-A PREROUTING -p tcp -j CT --zone 5
-A PREROUTING -p tcp -j NOTRACK
-A PREROUTING -m conntrack --ctstate INVALID
-A PREROUTING -m conntrack --ctstate NEW --ctstatus CONFIRMED
-A PREROUTING -j CONNMARK --set-xmark 0x3/0xffffffff
-A PREROUTING -m connmark --mark 0x3
COMMIT
)",
            TableId::Raw);
  const Packet u = udp_packet(53);
  WalkResult r = f.walk(u, Hook::Prerouting);
  EXPECT_TRUE(r.untrack);
  EXPECT_EQ(r.ct_template, nullptr) << "CT after NOTRACK does nothing";
  EXPECT_EQ(f.rule("PREROUTING", 0), c(0, 0));
  EXPECT_EQ(f.rule("PREROUTING", 3), c(1, 28));
  EXPECT_EQ(f.rule("PREROUTING", 6), c(0, 0));
  const Packet t = tcp_packet(80);
  r = f.walk(t, Hook::Prerouting);
  EXPECT_FALSE(r.untrack) << "NOTRACK after CT does nothing";
  ASSERT_NE(r.ct_template, nullptr);
  EXPECT_EQ(r.ct_template->zone, 5);
  // Later raw rules see the template: NEW, CONFIRMED, its own mark [kernel];
  // the template's mark is not for the pipeline to store.
  EXPECT_EQ(f.rule("PREROUTING", 6), c(0, 0));
  EXPECT_EQ(f.rule("PREROUTING", 7), c(1, 40));
  EXPECT_EQ(f.rule("PREROUTING", 9), c(1, 40));
  EXPECT_FALSE(r.connmark_changed);
  EXPECT_EQ(r.ctmark, 3U);
}

TEST(ChainWalkTest, TraceStartsWithTheNextMatchingRule) {
  Fixture f(R"(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp
-A PREROUTING -p tcp -j TRACE
-A PREROUTING -p tcp
COMMIT
)",
            TableId::Raw);
  WalkEvent ev[8];
  EventBuffer events{ev, 8};
  const Packet p = tcp_packet(80);
  MatchContext ctx = ctx_for(p, Hook::Prerouting);
  const WalkResult r = f.walker.walk(Hook::Prerouting, ctx, {.events = &events});
  EXPECT_TRUE(r.trace);
  EXPECT_TRUE(ctx.nf_trace);
  ASSERT_EQ(events.size, 2U);
  EXPECT_EQ(ev[0].kind, WalkEvent::Kind::TraceRule);
  EXPECT_EQ(ev[0].rulenum, 3U);
  EXPECT_EQ(ev[1].kind, WalkEvent::Kind::TracePolicy);
  EXPECT_EQ(ev[1].rulenum, 4U);
}

// ---------------------------------------------------------------------------
// TRACE numbering (expectations from the kernel log, see the file comment)

std::string trace_lines(const ChainWalker& w, const EventBuffer& events) {
  static constexpr const char* kKind[] = {"rule", "return", "policy", "log"};
  std::string out;
  for (const WalkEvent& e : events.items()) {
    out += fmt::format("{}:{}:{}:{}\n", table_name(w.table_id()), w.chain_name(e.chain),
                       kKind[static_cast<int>(e.kind)], e.rulenum);
  }
  return out;
}

TEST(ChainWalkTest, KernelTraceNumberingAcrossJumpGotoAndReturns) {
  Fixture f(R"(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CHK - [0:0]
:GO - [0:0]
:SUB - [0:0]
-A PREROUTING -i eth0 -p udp -j TRACE
-A PREROUTING -i eth0 -p udp -j CHK
-A PREROUTING -i eth0 -p udp -g GO
-A PREROUTING -j ACCEPT
-A CHK -p udp -m udp --dport 1
-A CHK -j RETURN
-A GO -p udp -m udp --dport 7 -j ACCEPT
-A GO -j SUB
-A GO -p udp -j RETURN
-A SUB -j MARK --set-xmark 0x5/0xffffffff
-A SUB -m comment --comment x -j RETURN
COMMIT
)",
            TableId::Raw);
  WalkEvent ev[32];
  EventBuffer events{ev, 32};
  const WalkResult r = f.walk(udp_packet(1), Hook::Prerouting, {.events = &events});
  // What the kernel logged for the same walk.
  EXPECT_EQ(trace_lines(f.walker, events),
            "raw:PREROUTING:rule:2\n"
            "raw:CHK:rule:1\n"
            "raw:CHK:return:2\n"
            "raw:PREROUTING:rule:3\n"
            "raw:GO:rule:2\n"
            "raw:SUB:rule:1\n"
            "raw:SUB:rule:2\n"
            "raw:GO:rule:3\n"
            "raw:PREROUTING:policy:5\n");
  EXPECT_TRUE(r.by_policy);
  EXPECT_EQ(r.mark, 5U);
  EXPECT_EQ(f.policy("PREROUTING"), c(1, 28));
}

TEST(ChainWalkTest, KernelTraceLabelsUnconditionalVerdictsLikeChainTails) {
  const std::string text = R"(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CHK - [0:0]
:E - [0:0]
-A PREROUTING -i eth0 -p udp -j TRACE
-A PREROUTING -i eth0 -p udp -j CHK
-A PREROUTING -j E
-A PREROUTING -j ACCEPT
-A CHK -p udp -m udp --dport 1
-A E -j MARK --set-xmark 0x1/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:U - [0:0]
-A INPUT -p udp -j U
-A U -j DROP
COMMIT
)";
  Fixture raw(text, TableId::Raw);
  Fixture filter(text, TableId::Filter);
  WalkEvent ev[32];
  EventBuffer events{ev, 32};
  const Packet p = udp_packet(1);
  MatchContext ctx = ctx_for(p, Hook::Prerouting);
  raw.walker.walk(Hook::Prerouting, ctx, {.events = &events});
  EXPECT_EQ(trace_lines(raw.walker, events),
            "raw:PREROUTING:rule:2\n"
            "raw:CHK:rule:1\n"
            "raw:CHK:return:2\n"
            "raw:PREROUTING:rule:3\n"
            "raw:E:rule:1\n"
            "raw:E:return:2\n"
            "raw:PREROUTING:policy:4\n");
  // `-j ACCEPT` with no criteria is printed as policy:4 but counted as rule 4.
  EXPECT_EQ(raw.rule("PREROUTING", 3), c(1, 28));
  EXPECT_EQ(raw.policy("PREROUTING"), c(0, 0));
  events.clear();
  ctx.hook = Hook::Input;
  const WalkResult r = filter.walker.walk(Hook::Input, ctx, {.events = &events});
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_EQ(trace_lines(filter.walker, events), "filter:INPUT:rule:1\nfilter:U:return:1\n");
}

// ---------------------------------------------------------------------------
// Counters and their text

TEST(ChainWalkTest, CountersEqualAHandCountAndPrintLikeIptablesSaveC) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 6379 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
)",
            TableId::Filter);
  const Packet redis = tcp_packet(6379);                                     // 40 bytes
  const Packet other = tcp_packet(22);                                       // 40 bytes
  const Packet dns = udp_packet(53, test::pattern(32));                      // 60 bytes
  for (int i = 0; i < 3; ++i) f.walk(redis, Hook::Forward);
  f.walk(other, Hook::Forward);
  f.walk(dns, Hook::Forward);
  MatchContext est = ctx_for(redis, Hook::Forward);
  est.ct.present = true;
  est.ct.state_bits = kCtEstablished;
  f.walker.walk(Hook::Forward, est);
  EXPECT_EQ(f.saved(),
            "*filter\n"
            ":INPUT ACCEPT [0:0]\n"
            ":FORWARD DROP [2:100]\n"
            ":OUTPUT ACCEPT [0:0]\n"
            ":DOCKER - [0:0]\n"
            ":DOCKER-USER - [0:0]\n"
            "[6:260] -A FORWARD -j DOCKER-USER\n"
            "[1:40] -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "[5:220] -A FORWARD -o docker0 -j DOCKER\n"
            "[3:120] -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 6379 -j ACCEPT\n"
            "[6:260] -A DOCKER-USER -j RETURN\n"
            "COMMIT\n");
  f.walker.reset_counters();
  EXPECT_EQ(f.walker.policy_counter(f.chain("FORWARD")), c(0, 0));
}

TEST(ChainWalkTest, CountersCanStartFromTheLoadedOnes) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [10:1000]
:OUTPUT ACCEPT [0:0]
[5:500] -A FORWARD -p udp
COMMIT
)",
            TableId::Filter, [] {
              WalkOptions o;
              o.initial_counters_from_table = true;
              return o;
            }());
  f.walk(udp_packet(53), Hook::Forward);
  EXPECT_EQ(f.rule("FORWARD", 0), c(6, 528));
  EXPECT_EQ(f.policy("FORWARD"), c(11, 1028));
}

TEST(ChainWalkTest, StoreCountersRefusesAnotherRuleset) {
  Fixture f(kJumpRules, TableId::Filter);
  Ruleset other = read_iptables_save("*filter\n-A FORWARD -j ACCEPT\nCOMMIT\n", "other");
  EXPECT_THROW(f.walker.store_counters(other), std::invalid_argument);
  Ruleset nat_only = read_iptables_save("*nat\nCOMMIT\n", "nat");
  EXPECT_THROW(f.walker.store_counters(nat_only), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Path, flow variance, hotdrop

TEST(ChainWalkTest, PathRecordsEveryCounterIndexInOrder) {
  Fixture f(kJumpRules, TableId::Filter);
  uint32_t buf[8];
  PathBuffer path{buf, 8};
  f.walk(tcp_packet(80), Hook::Forward, {.path = &path});
  const uint32_t fw = f.chain("FORWARD"), a = f.chain("A");
  ASSERT_EQ(path.size, 3U);
  EXPECT_EQ(buf[0], f.walker.flat_index(fw, 0));
  EXPECT_EQ(buf[1], f.walker.flat_index(a, 1));
  EXPECT_EQ(buf[2], f.walker.flat_index(fw, 1));
  EXPECT_EQ(f.walker.chain_of(buf[1]), a);
  EXPECT_EQ(f.walker.chain_of(buf[0]), fw);
  path.clear();
  f.walk(tcp_packet(443), Hook::Forward, {.path = &path});
  ASSERT_EQ(path.size, 3U);
  EXPECT_EQ(buf[2], f.walker.policy_index(fw));
  // A full buffer keeps the first items and counts the rest.
  PathBuffer small{buf, 1};
  f.walk(tcp_packet(80), Hook::Forward, {.path = &small});
  EXPECT_EQ(small.size, 1U);
  EXPECT_EQ(small.dropped, 2U);
  // Replaying a recorded path gives the same counters as walking.
  const Counters before = f.rule("A", 1);
  f.walker.count(f.walker.flat_index(a, 1), 40);
  EXPECT_EQ(f.rule("A", 1), c(before.packets + 1, before.bytes + 40));
}

TEST(ChainWalkTest, FlowVaryCollectsTheRulesTested) {
  Fixture f(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p udp -m length --length 0:100
-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT
-A FORWARD -p tcp -m conntrack --ctstate NEW -m limit --limit 1/sec
COMMIT
)",
            TableId::Filter);
  WalkResult r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.vary, 0U) << "udp rule's core failed; the port rule is flow-invariant";
  r = f.walk(tcp_packet(81), Hook::Forward);
  EXPECT_EQ(r.vary, kVaryCtState | kVaryLimit);
  EXPECT_NE(r.vary & kVaryStateful, 0U);
  r = f.walk(udp_packet(53), Hook::Forward);
  EXPECT_EQ(r.vary, kVaryLength);
}

TEST(ChainWalkTest, HotdropEndsTheWalkAndTheRuleDoesNotCount) {
  Fixture f(R"(*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp
-A PREROUTING -p tcp -m tcp --dport 80
-A PREROUTING -p tcp
COMMIT
)",
            TableId::Raw);
  const Bytes whole = test::ipv4({.proto = kProtoTcp}, test::tcp({.dport = 80, .payload = test::pattern(40)}));
  const Packet off1(test::ethernet({}, test::fragment(whole, 8, 16)));
  const WalkResult r = f.walk(off1, Hook::Prerouting);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_TRUE(r.hotdrop);
  EXPECT_EQ(r.decided_by, kNoIndex);
  EXPECT_EQ(f.rule("PREROUTING", 0), c(1, 36));
  EXPECT_EQ(f.rule("PREROUTING", 1), c(0, 0));
  EXPECT_EQ(f.rule("PREROUTING", 2), c(0, 0));
  EXPECT_EQ(f.policy("PREROUTING"), c(0, 0));
}

// ---------------------------------------------------------------------------
// Depth, loops, custom step

TEST(ChainWalkTest, DeepJumpAndGotoChains) {
  constexpr int kDepth = 300;
  std::string text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n";
  for (int i = 0; i < kDepth; ++i) text += fmt::format(":C{} - [0:0]\n", i);
  text += "-A FORWARD -p tcp -j C0\n-A FORWARD -p tcp -j ACCEPT\n";
  for (int i = 0; i + 1 < kDepth; ++i) {
    // even chains jump, odd chains goto: both kinds on one long path
    text += fmt::format("-A C{} -p tcp {} C{}\n", i, i % 2 == 0 ? "-j" : "-g", i + 1);
    text += fmt::format("-A C{} -p tcp -m tcp --dport 22 -j DROP\n", i);
  }
  text += fmt::format("-A C{} -p tcp -m tcp --dport 80 -j RETURN\n", kDepth - 1);
  text += "COMMIT\n";
  Fixture f(text, TableId::Filter);
  // dport 80: RETURN from the deepest chain unwinds the jump frames; each
  // return lands after a jump, where the --dport 22 rule is tested.
  WalkResult r = f.walk(tcp_packet(80), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Accept);
  EXPECT_EQ(f.rule("FORWARD", 1), c(1, 40));
  EXPECT_EQ(f.rule(fmt::format("C{}", kDepth - 1), 0), c(1, 40));
  // dport 22: the first chain a return lands in drops it.
  r = f.walk(tcp_packet(22), Hook::Forward);
  EXPECT_EQ(r.verdict, WalkResult::Drop);
  EXPECT_EQ(f.rule(fmt::format("C{}", kDepth - 2), 1), c(1, 40));
}

TEST(ChainWalkTest, LoopsReachableFromAHookAreRefused) {
  Ruleset rs = read_iptables_save(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A FORWARD -j A
-A A -g B
COMMIT
)",
                                  "loop");
  Table t = *rs.find_table(TableId::Filter);
  Rule back;
  back.target = GotoTarget{"A", *t.find_chain("A")};
  back.where = SourceLocation{"loop", 9, 1};
  t.chains[*t.find_chain("B")].rules.push_back(back);
  EXPECT_THROW(ChainWalker::build(t, docker_host()), LoadError);
  // The same loop unreachable from any hook is harmless.
  t.chains[*t.find_chain("FORWARD")].rules.clear();
  EXPECT_NO_THROW(ChainWalker::build(t, docker_host()));
  // A jump to a built-in chain is refused.
  Rule to_builtin;
  to_builtin.target = JumpTarget{"INPUT", *t.find_chain("INPUT")};
  t.chains[*t.find_chain("A")].rules.push_back(to_builtin);
  EXPECT_THROW(ChainWalker::build(t, docker_host()), LoadError);
}

TEST(ChainWalkTest, MatchesAndTargetsOutsideTheirHooksAreRefused) {
  Ruleset rs = read_iptables_save(R"(*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:U - [0:0]
-A INPUT -j U
-A FORWARD -j U
COMMIT
)",
                                  "hooks");
  Table t = *rs.find_table(TableId::Filter);
  Rule mac;
  mac.matches.push_back(MacMatch{});
  t.chains[*t.find_chain("U")].rules.push_back(mac);
  EXPECT_NO_THROW(ChainWalker::build(t, docker_host()));  // INPUT and FORWARD only
  Rule jump;
  jump.target = JumpTarget{"U", *t.find_chain("U")};
  t.chains[*t.find_chain("OUTPUT")].rules.push_back(jump);
  EXPECT_THROW(ChainWalker::build(t, docker_host()), LoadError);  // now reached from OUTPUT
  Table f = *rs.find_table(TableId::Filter);
  Rule dnat;
  dnat.target = DnatTarget{};
  f.chains[*f.find_chain("U")].rules.push_back(dnat);
  EXPECT_THROW(ChainWalker::build(f, docker_host()), LoadError);  // DNAT outside nat
}

TEST(ChainWalkTest, WalkUsingACustomStepKeepsTheSemantics) {
  Fixture a(kJumpRules, TableId::Filter);
  Fixture b(kJumpRules, TableId::Filter);
  int steps = 0;
  auto counting = [&](uint32_t chain, uint32_t pos, MatchContext& ctx, WalkResult& res) noexcept {
    ++steps;
    return b.walker.first_match(chain, pos, ctx, res);
  };
  for (const uint16_t port : {uint16_t{80}, uint16_t{22}, uint16_t{443}}) {
    const Packet p = tcp_packet(port);
    MatchContext ca = ctx_for(p, Hook::Forward);
    MatchContext cb = ctx_for(p, Hook::Forward);
    const WalkResult ra = a.walker.walk(Hook::Forward, ca);
    const WalkResult rb = b.walker.walk_using(counting, Hook::Forward, cb);
    EXPECT_EQ(ra.verdict, rb.verdict) << port;
    EXPECT_EQ(ra.decided_by, rb.decided_by) << port;
  }
  EXPECT_EQ(steps, 4 + 2 + 4);  // port 80: FORWARD, A, A after its rule, FORWARD
  EXPECT_EQ(a.saved(), b.saved());
}

// ---------------------------------------------------------------------------
// Against the kernel

/// AF_PACKET socket created inside a network namespace (a socket keeps the
/// namespace it was created in), sending whole Ethernet frames on one
/// interface of it.
class FrameInjector {
 public:
  FrameInjector(const std::string& netns, const std::string& iface) {
    const int self = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (self < 0 || target < 0) throw std::runtime_error("cannot open network namespace files");
    if (::setns(target, CLONE_NEWNET) != 0) throw std::runtime_error(std::string("setns: ") + std::strerror(errno));
    fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    const int err = errno;
    ifindex_ = static_cast<int>(::if_nametoindex(iface.c_str()));
    const bool back = ::setns(self, CLONE_NEWNET) == 0;
    ::close(self);
    ::close(target);
    if (!back) throw std::runtime_error("cannot return to the original network namespace");
    if (fd_ < 0) throw std::runtime_error(std::string("socket(AF_PACKET): ") + std::strerror(err));
    if (ifindex_ == 0) throw std::runtime_error("no interface " + iface + " in " + netns);
  }
  ~FrameInjector() {
    if (fd_ >= 0) ::close(fd_);
  }
  FrameInjector(const FrameInjector&) = delete;
  FrameInjector& operator=(const FrameInjector&) = delete;

  void send(const Bytes& frame) const {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    const ssize_t n = ::sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                               sizeof to);
    if (n != static_cast<ssize_t>(frame.size())) throw std::runtime_error(std::string("sendto: ") + std::strerror(errno));
  }

 private:
  int fd_ = -1;
  int ifindex_ = 0;
};

/// Runs the calling thread on one CPU while alive, so that frames sent one
/// after another are received in that order (a veth queues them on the
/// sending CPU's backlog).
class PinToOneCpu {
 public:
  PinToOneCpu() {
    saved_ok_ = ::sched_getaffinity(0, sizeof saved_, &saved_) == 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    const int cpu = ::sched_getcpu();
    CPU_SET(static_cast<size_t>(cpu < 0 ? 0 : cpu), &one);
    ::sched_setaffinity(0, sizeof one, &one);
  }
  ~PinToOneCpu() {
    if (saved_ok_) ::sched_setaffinity(0, sizeof saved_, &saved_);
  }
  PinToOneCpu(const PinToOneCpu&) = delete;
  PinToOneCpu& operator=(const PinToOneCpu&) = delete;

 private:
  cpu_set_t saved_{};
  bool saved_ok_ = false;
};

constexpr test::Mac kA0Mac{0x02, 0x00, 0x00, 0x00, 0x0a, 0x01};
constexpr test::Mac kA1Mac{0x02, 0x00, 0x00, 0x00, 0x0a, 0x02};
constexpr test::Mac kSenderMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x99};

/// The namespace's host model: lo, a0 10.9.0.1/24, a1 without address.
HostModel netns_host() {
  HostSpec spec;
  spec.synthesize_connected_routes = true;
  Interface lo;
  lo.name = "lo";
  lo.loopback = true;
  lo.addrs.push_back(IfaceAddress{ip4(127, 0, 0, 1), 0, 8, addr_scope::kHost, 0, false, false});
  Interface a0;
  a0.name = "a0";
  a0.has_mac = true;
  a0.mac = kA0Mac;
  a0.addrs.push_back(IfaceAddress{ip4(10, 9, 0, 1), 0, 24, addr_scope::kGlobal, 0, false, false});
  Interface a1;
  a1.name = "a1";
  a1.has_mac = true;
  a1.mac = kA1Mac;
  spec.interfaces = {lo, a0, a1};
  return HostModel::build(spec, "chain_walk_test namespace");
}

// Every rule is in raw PREROUTING or below it, so every injected frame is
// counted before routing, conntrack or any reply; the policy is DROP so the
// namespace sends nothing back.
constexpr const char* kKernelRules = R"(*raw
:PREROUTING DROP [0:0]
:OUTPUT ACCEPT [0:0]
:MISC - [0:0]
:TCPCHK - [0:0]
:UDPCHK - [0:0]
-A PREROUTING ! -i a0 -j DROP
-A PREROUTING -i a0
-A PREROUTING -f
-A PREROUTING -m length --length 0:40
-A PREROUTING -m pkttype --pkt-type broadcast
-A PREROUTING -m pkttype --pkt-type multicast
-A PREROUTING -m pkttype ! --pkt-type unicast
-A PREROUTING -m mac --mac-source 02:00:00:00:00:99
-A PREROUTING -m addrtype --dst-type LOCAL
-A PREROUTING -m addrtype --dst-type BROADCAST --limit-iface-in
-A PREROUTING -m addrtype --src-type UNICAST
-A PREROUTING -j MISC
-A PREROUTING -p tcp -j TCPCHK
-A PREROUTING -p udp -g UDPCHK
-A PREROUTING -p icmp -m icmp --icmp-type 8 -j DROP
-A PREROUTING -p icmp -m icmp --icmp-type 3
-A PREROUTING -m statistic --mode nth --every 3 --packet 2
-A PREROUTING -m limit --limit 2/hour --limit-burst 4
-A PREROUTING -j MARK --set-xmark 0x7/0xffffffff
-A PREROUTING -m mark --mark 0x7/0xf
-A MISC -m string --string "abc" --algo bm --from 28 --to 31
-A MISC -m string --hex-string "|c9|" --algo kmp --icase
-A MISC -m iprange --src-range 10.9.0.2-10.9.0.9
-A MISC -m comment --comment all -j RETURN
-A MISC -j DROP
-A TCPCHK -p tcp -m tcp --dport 80 --tcp-flags SYN,ACK SYN
-A TCPCHK -p tcp -m tcp --tcp-option 2
-A TCPCHK -p tcp -m multiport --dports 443,8000:8080
-A TCPCHK -p tcp -m tcp ! --dport 80 -j RETURN
-A TCPCHK -p tcp -m tcp --sport 1000 -j DROP
-A UDPCHK -p udp -m udp --dport 53
-A UDPCHK -p udp -m multiport --ports 53,67 -j RETURN
-A UDPCHK -p udp -j DROP
COMMIT
)";

std::vector<Bytes> kernel_frames() {
  const test::EthSpec to_a0{.dst = kA0Mac, .src = kSenderMac};
  const uint32_t me = ip4(10, 9, 0, 1), peer = ip4(10, 9, 0, 2), far = ip4(192, 0, 2, 7);
  auto eth = [&](const Bytes& ip, const test::Mac& dst = kA0Mac) {
    test::EthSpec e = to_a0;
    e.dst = dst;
    return test::ethernet(e, ip);
  };
  auto tcp = [&](const test::TcpSpec& t, uint32_t src = ip4(10, 9, 0, 2)) {
    return eth(test::ipv4({.src = src, .dst = me, .proto = kProtoTcp}, test::tcp(t)));
  };
  auto udp = [&](uint16_t dport, const std::string& payload, uint32_t dst = ip4(10, 9, 0, 1),
                 const test::Mac& mac = kA0Mac) {
    return eth(test::ipv4({.src = peer, .dst = dst, .proto = kProtoUdp},
                          test::udp({.sport = 5000, .dport = dport, .payload = Bytes(payload.begin(), payload.end())})),
               mac);
  };
  std::vector<Bytes> f;
  f.push_back(tcp({.sport = 1000, .dport = 80, .flags = tcp_flag::kSyn, .options = test::tcp_syn_options()}));
  f.push_back(tcp({.sport = 1000, .dport = 443, .flags = tcp_flag::kAck}));
  f.push_back(tcp({.sport = 1001, .dport = 8080, .flags = tcp_flag::kAck}, far));
  f.push_back(tcp({.sport = 1000, .dport = 80, .flags = tcp_flag::kAck}));
  f.push_back(tcp({.sport = 1000, .dport = 22, .flags = tcp_flag::kSyn}));
  const Bytes whole_tcp = test::ipv4({.src = peer, .dst = me, .proto = kProtoTcp, .id = 77},
                                     test::tcp({.sport = 1000, .dport = 80, .payload = test::pattern(64)}));
  f.push_back(eth(test::fragment(whole_tcp, 0, 40)));  // first fragment: a whole header
  f.push_back(eth(test::fragment(whole_tcp, 8, 16)));  // offset 1: hotdropped by the tcp match
  f.push_back(eth(test::fragment(whole_tcp, 16, 16)));
  f.push_back(eth(test::ipv4({.src = peer, .dst = me, .proto = kProtoTcp}, test::pattern(10))));  // truncated
  f.push_back(udp(53, "xabc"));
  f.push_back(udp(53, "abcd"));
  f.push_back(udp(67, "\xe9!"));
  f.push_back(udp(9999, std::string(200, 'z')));
  f.push_back(udp(137, "bcast", ip4(10, 9, 0, 255), test::kMacBroadcast));
  f.push_back(udp(5353, "mcast", ip4(224, 0, 0, 1), test::Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}));
  f.push_back(eth(test::ipv4({.src = peer, .dst = me, .proto = kProtoUdp}, test::pattern(5))));  // truncated
  const Bytes whole_udp = test::ipv4({.src = peer, .dst = me, .proto = kProtoUdp, .id = 78},
                                     test::udp({.dport = 53, .payload = test::pattern(64)}));
  f.push_back(eth(test::fragment(whole_udp, 8, 24)));
  f.push_back(eth(test::ipv4({.src = peer, .dst = me, .proto = kProtoIcmp}, test::icmp_echo(9, 1))));
  f.push_back(eth(test::ipv4({.src = peer, .dst = me, .proto = kProtoIcmp},
                             test::icmp_error(3, 3, test::ipv4({.src = me, .dst = peer, .proto = kProtoUdp},
                                                               test::udp({.dport = 33434}))))));
  f.push_back(eth(test::ipv4({.src = peer, .dst = me, .proto = 47}, test::pattern(24))));
  for (uint16_t i = 0; i < 4; ++i) f.push_back(udp(static_cast<uint16_t>(7000 + i), "more"));
  return f;
}

/// Packets counted by `-A PREROUTING -i a0` in iptables-save -c text.
uint64_t a0_count(const std::string& save) {
  static const std::regex line(R"(\[(\d+):\d+\] -A PREROUTING -i a0\n)");
  std::smatch m;
  if (!std::regex_search(save, m, line)) return 0;
  return std::stoull(m[1].str());
}

/// Loads `rules` (a raw table whose PREROUTING first counts `-i a0`) into a
/// fresh namespace with a veth pair a0 (10.9.0.1/24) <-> a1, sends `frames`
/// on a1 so that a0 receives them, and expects the kernel's raw-table
/// counters to equal the walk's over the same frames.
void expect_kernel_counters(const std::string& rules, const std::vector<Bytes>& frames) {
  NetnsSandbox ns;
  const auto run = [&ns](const std::vector<std::string>& argv) {
    const CommandResult r = ns.run(argv);
    if (!r.ok()) throw std::runtime_error(argv[0] + " " + argv[1] + ": " + r.describe());
  };
  run({"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"});
  run({"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"});
  run({"ip", "link", "add", "a0", "address", "02:00:00:00:0a:01", "type", "veth", "peer", "name", "a1",
       "address", "02:00:00:00:0a:02"});
  run({"ip", "addr", "add", "10.9.0.1/24", "dev", "a0"});
  run({"ip", "link", "set", "lo", "up"});
  run({"ip", "link", "set", "a0", "up"});
  run({"ip", "link", "set", "a1", "up"});
  ns.restore(rules);

  {
    PinToOneCpu pin;
    FrameInjector inj(ns.name(), "a1");
    for (const Bytes& fr : frames) inj.send(fr);
  }
  // Wait until every frame went through raw PREROUTING, then once more so
  // that the last one finished its walk.
  std::string kernel_save;
  for (int i = 0; i < 200; ++i) {
    kernel_save = ns.save(true);
    if (a0_count(kernel_save) >= frames.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(a0_count(kernel_save), frames.size()) << kernel_save;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kernel_save = ns.save(true);

  // The model: the same frames, in order, through the same table.
  const HostModel host = netns_host();
  Ruleset rs = read_iptables_save(rules, "kernel_rules");
  ChainWalker w = ChainWalker::build(*rs.find_table(TableId::Raw), host);
  uint64_t now = 1'000'000'000ULL;
  for (const Bytes& fr : frames) {
    const Packet p(fr);
    ASSERT_TRUE(status_has_l3(p.status)) << parse_status_name(p.status);
    MatchContext ctx;
    ctx.key = &p.key;
    ctx.frame = p.frame.data();
    ctx.frame_len = static_cast<uint32_t>(p.frame.size());
    ctx.hook = Hook::Prerouting;
    ctx.in_iface = 1;  // a0
    ctx.now_ns = now;
    ctx.host = &host;
    w.walk(Hook::Prerouting, ctx);  // raw runs before conntrack: no entry, INVALID
    now += 1'000'000ULL;
  }
  w.store_counters(rs);
  const std::string ours = write_iptables_save(rs, {.counters = true});
  EXPECT_EQ(split_tables(ours)["raw"], split_tables(kernel_save)["raw"]);
}

// Fragments reach raw PREROUTING only while the namespace has no conntrack
// user: once a conntrack/state match (or a nat table) enables conntrack,
// defragmentation (hook priority -400) holds fragments back for reassembly
// [kernel]. So the stateless rules with fragments run apart from the
// conntrack ones.
TEST(KernelWalkTest, KernelCountersEqualTheWalkInRawPrerouting) {
  if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why;
  expect_kernel_counters(kKernelRules, kernel_frames());
}

TEST(KernelWalkTest, KernelConntrackMatchesWithoutAnEntryInRaw) {
  if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why;
  std::vector<Bytes> frames;
  for (const Bytes& f : kernel_frames()) {
    if (!Packet(f).key.is_fragment()) frames.push_back(f);
  }
  expect_kernel_counters(R"(*raw
:PREROUTING DROP [0:0]
:OUTPUT ACCEPT [0:0]
:NOTR - [0:0]
-A PREROUTING ! -i a0 -j DROP
-A PREROUTING -i a0
-A PREROUTING -m conntrack --ctstate INVALID
-A PREROUTING -m conntrack --ctstate INVALID ! --ctproto 17
-A PREROUTING -m conntrack ! --ctstate NEW --ctproto 6
-A PREROUTING -m conntrack ! --ctstatus ASSURED
-A PREROUTING -m conntrack --ctorigsrc 10.9.0.2
-A PREROUTING -m state --state INVALID
-A PREROUTING -m state ! --state UNTRACKED
-A PREROUTING -m connmark ! --mark 0x5
-A PREROUTING -p udp -j NOTR
-A PREROUTING -m state --state UNTRACKED
-A PREROUTING -m conntrack --ctstate UNTRACKED,INVALID
-A PREROUTING -j CONNMARK --set-xmark 0x1/0xffffffff
-A PREROUTING -m connmark --mark 0x1
-A NOTR -p udp -m udp --dport 53 -j CT --notrack
-A NOTR -p udp -m udp --dport 53 -j NOTRACK
-A NOTR -p udp -j CT --zone 3
-A NOTR -m conntrack --ctstate NEW
COMMIT
)",
                         frames);
}

}  // namespace
}  // namespace nfb
