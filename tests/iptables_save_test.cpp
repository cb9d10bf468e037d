// Tests of the rule model and the iptables-save reader/writer.
//
// The writer is checked against text the kernel printed (tests/data/iptables:
// canonical/*.kernel from hand-typed canonical/*.input, rulesets/*.kernel from
// data/rulesets/*.save), table by table. The reader is checked on the parsed
// values, on the forms iptables accepts, and on every error it reports
// (exact `FILE:LINE:COL: message`). Every input also goes through a
// write -> read -> write round trip, which must be a fixed point.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "rules/iptables_save.h"
#include "tests/support/test_data.h"

namespace nfb {
namespace {

namespace fs = std::filesystem;
using test::source_root;
using test::read_file;
using test::files_with;

/// Table name -> its block (`*t` .. `COMMIT`), `#` lines dropped.
std::map<std::string, std::string> tables_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, cur;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (!line.empty() && line[0] == '*') cur = line.substr(1);
    if (!cur.empty()) out[cur] += line + "\n";
    if (line == "COMMIT") cur.clear();
  }
  return out;
}

Ruleset parse(const std::string& text) { return read_iptables_save(text, "t.rules"); }

/// The error message read_iptables_save gives for `text`, or "" when it loads.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

const Rule& only_rule(const Ruleset& rs, TableId t, const std::string& chain) {
  const Table* table = rs.find_table(t);
  EXPECT_NE(table, nullptr);
  auto idx = table->find_chain(chain);
  EXPECT_TRUE(idx.has_value());
  const Chain& c = table->chains[*idx];
  EXPECT_EQ(c.rules.size(), 1u);
  return c.rules.front();
}

/// One rule in table filter, chain INPUT (with user chains X and Y).
Rule rule_of(const std::string& spec, TableId t = TableId::Filter, const std::string& chain = "INPUT") {
  std::string text = fmt::format("*{}\n:X - [0:0]\n:Y - [0:0]\n-A {} {}\nCOMMIT\n", table_name(t), chain, spec);
  Ruleset rs = parse(text);
  return only_rule(rs, t, chain);
}

std::string rewrite(const std::string& spec, TableId t = TableId::Filter, const std::string& chain = "INPUT") {
  return write_rule_spec(rule_of(spec, t, chain));
}

void expect_fixed_point(const std::string& text, bool counters, const std::string& what) {
  std::string w1 = write_iptables_save(read_iptables_save(text, what), {.counters = counters});
  std::string w2 = write_iptables_save(read_iptables_save(w1, what + " (rewritten)"), {.counters = counters});
  EXPECT_EQ(w1, w2) << what;
}

// ---------------------------------------------------------------------------
// Against the kernel's own text

TEST(IptablesSaveKernelText, CanonicalInputsWriteAsTheKernelPrints) {
  fs::path dir = source_root() / "tests/data/iptables/canonical";
  auto inputs = files_with(dir, ".input");
  ASSERT_GE(inputs.size(), 20u) << "canonical inputs not found in " << dir;
  for (const fs::path& in : inputs) {
    fs::path kernel = in;
    kernel.replace_extension(".kernel");
    ASSERT_TRUE(fs::exists(kernel)) << kernel;
    bool counters = in.stem() == "counters";  // restored and saved with --counters
    std::string text = read_file(in);
    std::string mine;
    try {
      mine = write_iptables_save(read_iptables_save(text, in.filename().string()), {.counters = counters});
    } catch (const LoadError& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    auto want = tables_of(read_file(kernel));
    auto got = tables_of(mine);
    ASSERT_FALSE(want.empty()) << kernel;
    for (const auto& [name, block] : want) {
      auto it = got.find(name);
      ASSERT_NE(it, got.end()) << in.filename() << ": table " << name << " missing";
      EXPECT_EQ(it->second, block) << in.filename() << ": table " << name;
    }
    EXPECT_EQ(got.size(), want.size()) << in.filename();
    expect_fixed_point(text, counters, in.filename().string());
  }
}

TEST(IptablesSaveKernelText, BundledRulesetsWriteAsTheKernelPrints) {
  auto saves = files_with(source_root() / "data/rulesets", ".save");
  ASSERT_GE(saves.size(), 3u);
  for (const fs::path& save : saves) {
    fs::path kernel = source_root() / "tests/data/iptables/rulesets" / (save.stem().string() + ".kernel");
    ASSERT_TRUE(fs::exists(kernel)) << kernel << " (run tests/data/iptables/rulesets/regenerate.sh)";
    Ruleset rs = load_iptables_save_file(save.string());
    auto want = tables_of(read_file(kernel));
    auto got = tables_of(write_iptables_save(rs));
    EXPECT_EQ(got, want) << save.filename();
    expect_fixed_point(read_file(save), false, save.filename().string());
  }
}

// ---------------------------------------------------------------------------
// The model the reader builds

TEST(IptablesSaveReader, Docker28Structure) {
  Ruleset rs = load_iptables_save_file((source_root() / "data/rulesets/docker-28.save").string());
  ASSERT_EQ(rs.tables.size(), 3u);
  EXPECT_EQ(rs.tables[0].id, TableId::Raw);  // the order of the file
  EXPECT_EQ(rs.tables[1].id, TableId::Filter);
  EXPECT_EQ(rs.tables[2].id, TableId::Nat);

  const Table& filter = rs.tables[1];
  ASSERT_GE(filter.chains.size(), 3u);
  EXPECT_EQ(filter.chains[0].name, "INPUT");
  EXPECT_EQ(filter.chains[1].name, "FORWARD");
  EXPECT_EQ(filter.chains[1].policy, Policy::Drop);
  EXPECT_EQ(filter.chains[2].name, "OUTPUT");
  EXPECT_EQ(filter.chains[3].name, "DOCKER");  // user chains in declaration order
  EXPECT_FALSE(filter.chains[3].builtin());

  const Chain& forward = filter.chains[1];
  ASSERT_EQ(forward.rules.size(), 2u);
  const auto* j = std::get_if<JumpTarget>(&forward.rules[0].target);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->chain, "DOCKER-USER");
  EXPECT_EQ(j->index, filter.find_chain("DOCKER-USER"));
  EXPECT_EQ(forward.rules[0].where.line, 32u);
  EXPECT_EQ(forward.rules[0].where.column, 1u);

  const Table& nat = rs.tables[2];
  const Chain& docker = nat.chains[*nat.find_chain("DOCKER")];
  const Rule& dnat = docker.rules[2];
  EXPECT_TRUE(dnat.in_iface.invert);
  EXPECT_EQ(dnat.in_iface.name, "docker0");
  EXPECT_EQ(dnat.protocol, kProtoTcp);
  ASSERT_EQ(dnat.matches.size(), 1u);
  EXPECT_EQ(std::get<TcpMatch>(dnat.matches[0]).dport, (PortRange{10000, 10000}));
  const auto& range = std::get<DnatTarget>(dnat.target).range;
  EXPECT_TRUE(range.has_addr);
  EXPECT_EQ(range.addr_lo, 0xac110002u);
  EXPECT_EQ(range.addr_hi, 0xac110002u);
  EXPECT_EQ(range.port_lo, 6379);
  EXPECT_EQ(range.port_hi, 6379);

  std::vector<HookMask> hooks = chain_hooks(nat);
  EXPECT_EQ(hooks[*nat.find_chain("DOCKER")], hook_bit(Hook::Prerouting) | hook_bit(Hook::Output));
}

TEST(IptablesSaveReader, CoreMatches) {
  Rule r = rule_of("! -s 10.1.2.3/255.0.255.0 -d 192.168.1.7/24 -i eth+ -p udp ! -f -j DROP");
  EXPECT_EQ(r.src.addr, 0x0a000200u);  // masked, as the kernel stores it
  EXPECT_EQ(r.src.mask, 0xff00ff00u);
  EXPECT_TRUE(r.src_invert);
  EXPECT_EQ(r.dst.addr, 0xc0a80100u);
  EXPECT_EQ(r.dst.mask, 0xffffff00u);
  EXPECT_EQ(r.in_iface.name, "eth");
  EXPECT_TRUE(r.in_iface.wildcard);
  EXPECT_TRUE(r.out_iface.is_any());
  EXPECT_EQ(r.protocol, kProtoUdp);
  EXPECT_TRUE(r.fragment);
  EXPECT_TRUE(r.fragment_invert);
  EXPECT_TRUE(std::holds_alternative<DropTarget>(r.target));
  EXPECT_EQ(write_rule_spec(r), "! -s 10.0.2.0/255.0.255.0 -d 192.168.1.0/24 -i eth+ -p udp ! -f -j DROP");

  Rule none = rule_of("");
  EXPECT_TRUE(std::holds_alternative<NoTarget>(none.target));
  EXPECT_EQ(none.src.mask, 0u);
  EXPECT_EQ(write_rule_spec(none), "");
}

TEST(IptablesSaveReader, HandTypedFormsLoadLikeIptables) {
  // Long and abbreviated names, options after the target, implicit modules.
  EXPECT_EQ(rewrite("--jump ACCEPT --protocol 6 --destination-port 80 --source 1.2.3.4"),
            "-s 1.2.3.4/32 -p tcp -m tcp --dport 80 -j ACCEPT");
  EXPECT_EQ(rewrite("-p tcp --dp 22 --tcp-f SYN,ACK SYN --src 10.0.0.0/8"),
            "-s 10.0.0.0/8 -p tcp -m tcp --dport 22 --tcp-flags SYN,ACK SYN");
  // The implicit module lands where its first option appeared.
  EXPECT_EQ(rewrite("-m state --state NEW -p tcp --dport 80"), "-p tcp -m state --state NEW -m tcp --dport 80");
  // Equal option names: the module loaded last wins, as with getopt.
  EXPECT_EQ(rewrite("-m connmark --mark 1 -m mark --mark 2"), "-m connmark --mark 0x1 -m mark --mark 0x2");
  EXPECT_EQ(rewrite("-p tcp --sport 5 -m tcp --dport 80"), "-p tcp -m tcp --sport 5 -m tcp --dport 80");
  // --to abbreviates --to-destination.
  EXPECT_EQ(rewrite("-p tcp -j DNAT --to 10.0.0.1:8080", TableId::Nat, "PREROUTING"),
            "-p tcp -j DNAT --to-destination 10.0.0.1:8080");
  // --opt=value as getopt allows.
  EXPECT_EQ(rewrite("-m comment --comment=hello"), "-m comment --comment hello");
  // Service names and protocol names.
  EXPECT_EQ(rewrite("-p TCP --dport ssh:http"), "-p tcp -m tcp --dport 22:80");
  EXPECT_EQ(rewrite("-p udp --dport http"), "-p udp -m udp --dport 80");  // iptables does this too
  EXPECT_EQ(rewrite("-p 47"), "-p gre");
  EXPECT_EQ(rewrite("-p 253"), "-p 253");
  EXPECT_EQ(rewrite("-p mh"), "-p mobility-header");
  // Quoting as iptables-restore splits words.
  EXPECT_EQ(rewrite(R"(-m comment --comment mid"dle quotes")"), R"(-m comment --comment "middle quotes")");
  EXPECT_EQ(rewrite(R"(-m comment --comment "it's \"x\" a\\b")"), R"(-m comment --comment "it\'s \"x\" a\\b")");
  EXPECT_EQ(rewrite(R"(-m comment --comment a\b)"), R"(-m comment --comment "a\\b")");
  EXPECT_EQ(rewrite(R"(-m comment --comment ! -m string --algo bm --string "!")"),
            R"(-m comment --comment "!" -m string --string "!" --algo bm)");
}

TEST(IptablesSaveReader, ModuleValues) {
  {
    Rule r = rule_of("-p tcp ! --sport 1024: --dport :80 ! --syn --tcp-option 8");
    const auto& m = std::get<TcpMatch>(r.matches.at(0));
    EXPECT_EQ(m.sport, (PortRange{1024, 65535}));
    EXPECT_TRUE(m.sport_invert);
    EXPECT_EQ(m.dport, (PortRange{0, 80}));
    EXPECT_EQ(m.flags_mask, tcp_flag::kFin | tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kAck);
    EXPECT_EQ(m.flags_cmp, tcp_flag::kSyn);
    EXPECT_TRUE(m.flags_invert);
    EXPECT_EQ(m.option, 8);
  }
  {
    Rule r = rule_of("-p icmp --icmp-type port-unreachable");
    const auto& m = std::get<IcmpMatch>(r.matches.at(0));
    EXPECT_EQ(m.type, 3);
    EXPECT_EQ(m.code_lo, 3);
    EXPECT_EQ(m.code_hi, 3);
    EXPECT_TRUE(std::get<IcmpMatch>(rule_of("-p icmp --icmp-type any").matches.at(0)).is_any_type());
  }
  {
    Rule r = rule_of("-p udp -m multiport ! --ports 53,1000:2000");
    const auto& m = std::get<MultiportMatch>(r.matches.at(0));
    EXPECT_EQ(m.dir, MultiportMatch::Dir::Either);
    EXPECT_TRUE(m.invert);
    ASSERT_EQ(m.ports.size(), 2u);
    EXPECT_EQ(m.ports[1], (PortRange{1000, 2000}));
  }
  {
    Rule r = rule_of(
        "-m conntrack --ctdir REPLY ! --ctstate related,established --ctorigdst 10.1.2.3/16 "
        "--ctorigdstport 10000 --ctstatus ASSURED --ctexpire 5:10 --ctproto udp");
    const auto& m = std::get<ConntrackMatch>(r.matches.at(0));
    EXPECT_EQ(m.states, kCtRelated | kCtEstablished);
    EXPECT_TRUE(m.inverted(ConntrackMatch::kState));
    EXPECT_FALSE(m.inverted(ConntrackMatch::kOrigDst));
    EXPECT_EQ(m.orig_dst.addr, 0x0a010203u);  // kept as given
    EXPECT_EQ(m.orig_dst.mask, 0xffff0000u);
    EXPECT_EQ(m.orig_dst_port, (PortRange{10000, 10000}));
    EXPECT_FALSE(m.has(ConntrackMatch::kOrigSrcPort));
    EXPECT_EQ(m.status, kCtStatusAssured);
    EXPECT_EQ(m.expire_lo, 5u);
    EXPECT_EQ(m.expire_hi, 10u);
    EXPECT_EQ(m.proto, kProtoUdp);
    EXPECT_EQ(m.dir, ConntrackMatch::Dir::Reply);
    // The kernel's option order, whatever the input order.
    EXPECT_EQ(write_rule_spec(r),
              "-m conntrack ! --ctstate RELATED,ESTABLISHED --ctproto 17 --ctorigdst 10.1.2.3/16 "
              "--ctorigdstport 10000 --ctstatus ASSURED --ctexpire 5:10 --ctdir REPLY");
  }
  {
    Rule r = rule_of("-m addrtype ! --src-type local,UNICAST --dst-type BLACKHOLE --limit-iface-in");
    const auto& m = std::get<AddrtypeMatch>(r.matches.at(0));
    EXPECT_EQ(m.src_types, addr_type_bit(AddrType::Local) | addr_type_bit(AddrType::Unicast));
    EXPECT_TRUE(m.src_invert);
    EXPECT_EQ(m.dst_types, addr_type_bit(AddrType::Blackhole));
    EXPECT_TRUE(m.limit_iface_in);
  }
  {
    Rule r = rule_of("-m mark ! --mark 0x10/0xf0 -m connmark --mark 7 -m iprange --dst-range 10.0.0.9-10.0.0.1");
    EXPECT_EQ(std::get<MarkMatch>(r.matches.at(0)), (MarkMatch{0x10, 0xf0, true}));
    EXPECT_EQ(std::get<ConnmarkMatch>(r.matches.at(1)), (ConnmarkMatch{7, 0xffffffff, false}));
    const auto& ip = std::get<IprangeMatch>(r.matches.at(2));
    EXPECT_TRUE(ip.has_dst);
    EXPECT_EQ(ip.dst_lo, 0x0a000009u);
    EXPECT_EQ(ip.dst_hi, 0x0a000001u);  // reversed: the kernel accepts it
  }
  {
    Rule r = rule_of("-m string --algo kmp --hex-string \"a|00 ff|b\" --from 2 --icase");
    const auto& m = std::get<StringMatch>(r.matches.at(0));
    EXPECT_EQ(m.pattern, std::string("a\0\xff" "b", 4));
    EXPECT_EQ(m.algo, StringMatch::Algo::Kmp);
    EXPECT_EQ(m.from, 2);
    EXPECT_EQ(m.to, 65535);
    EXPECT_TRUE(m.icase);
    EXPECT_EQ(write_rule_spec(r), "-m string --hex-string \"|6100ff62|\" --algo kmp --from 2 --icase");
    EXPECT_EQ(rewrite("-m string --algo bm --hex-string \"|41 42|c\""), "-m string --string \"ABc\" --algo bm");
  }
  {
    Rule r = rule_of("-m limit --limit 61/min --limit-burst 7 -m statistic --mode random --probability 0.2");
    EXPECT_EQ(std::get<LimitMatch>(r.matches.at(0)), (LimitMatch{600000 / 61, 7}));
    EXPECT_EQ(std::get<StatisticMatch>(r.matches.at(1)).probability, 429496730u);  // round(0.2 * 2^31)
    EXPECT_EQ(write_rule_spec(r),
              "-m limit --limit 61/min --limit-burst 7 -m statistic --mode random --probability 0.20000000019");
  }
  {
    Rule r = rule_of("-m length ! --length 100: -m pkttype --pkt-type host -m mac --mac-source 0:1:A:bb:C:dd");
    EXPECT_EQ(std::get<LengthMatch>(r.matches.at(0)), (LengthMatch{100, 65535, true}));
    EXPECT_EQ(std::get<PkttypeMatch>(r.matches.at(1)).type, PkttypeMatch::Type::Unicast);
    EXPECT_EQ(std::get<MacMatch>(r.matches.at(2)).addr, (std::array<uint8_t, 6>{0, 1, 0xa, 0xbb, 0xc, 0xdd}));
    EXPECT_EQ(write_rule_spec(r),
              "-m length ! --length 100:65535 -m pkttype --pkt-type unicast -m mac --mac-source 00:01:0a:bb:0c:dd");
  }
  {
    Rule r = rule_of("-m statistic --mode nth --every 3 --packet 2");
    const auto& m = std::get<StatisticMatch>(r.matches.at(0));
    EXPECT_EQ(m.mode, StatisticMatch::Mode::Nth);
    EXPECT_EQ(m.every, 3u);
    EXPECT_EQ(m.packet, 2u);
  }
}

TEST(IptablesSaveReader, TargetValues) {
  {
    Rule r = rule_of("-p tcp -j REJECT --reject-with tcp-rst");
    EXPECT_EQ(std::get<RejectTarget>(r.target).with, RejectTarget::With::TcpReset);
    EXPECT_EQ(rewrite("-j REJECT"), "-j REJECT --reject-with icmp-port-unreachable");
  }
  {
    Rule r = rule_of("-p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90/100 --random --persistent",
                     TableId::Nat, "OUTPUT");
    const NatRange& n = std::get<DnatTarget>(r.target).range;
    EXPECT_EQ(n.addr_lo, 0x0a000001u);
    EXPECT_EQ(n.addr_hi, 0x0a000009u);
    EXPECT_EQ(n.port_lo, 80);
    EXPECT_EQ(n.port_hi, 90);
    EXPECT_TRUE(n.has_base);
    EXPECT_EQ(n.base, 100);
    EXPECT_TRUE(n.random);
    EXPECT_TRUE(n.persistent);
  }
  {
    Rule r = rule_of("-p udp -j SNAT --to-source :1000-2000 --random-fully", TableId::Nat, "POSTROUTING");
    const NatRange& n = std::get<SnatTarget>(r.target).range;
    EXPECT_FALSE(n.has_addr);
    EXPECT_TRUE(n.has_ports);
    EXPECT_TRUE(n.random_fully);
    EXPECT_EQ(write_rule_spec(r), "-p udp -j SNAT --to-source :1000-2000 --random-fully");
  }
  {
    Rule r = rule_of("-p tcp -j MASQUERADE --to-ports 1024-2048 --random", TableId::Nat, "POSTROUTING");
    const auto& m = std::get<MasqueradeTarget>(r.target);
    EXPECT_TRUE(m.has_ports);
    EXPECT_EQ(m.ports, (PortRange{1024, 2048}));
    EXPECT_TRUE(m.random);
    Rule redir = rule_of("-p tcp -j REDIRECT --to-ports 8080", TableId::Nat, "PREROUTING");
    EXPECT_EQ(std::get<RedirectTarget>(redir.target).ports, (PortRange{8080, 8080}));
  }
  {
    Rule r = rule_of("-j LOG --log-level debug --log-prefix \"x: \" --log-uid --log-tcp-options");
    const auto& l = std::get<LogTarget>(r.target);
    EXPECT_EQ(l.level, 7);
    EXPECT_EQ(l.prefix, "x: ");
    EXPECT_EQ(l.flags, LogTarget::kUid | LogTarget::kTcpOptions);
    EXPECT_EQ(write_rule_spec(r), "-j LOG --log-prefix \"x: \" --log-level 7 --log-tcp-options --log-uid");
  }
  {
    EXPECT_EQ(std::get<MarkTarget>(rule_of("-j MARK --set-mark 0x100/0xff").target), (MarkTarget{0x100, 0x1ff}));
    EXPECT_EQ(std::get<MarkTarget>(rule_of("-j MARK --and-mark 0xff").target), (MarkTarget{0, 0xffffff00}));
    EXPECT_EQ(std::get<MarkTarget>(rule_of("-j MARK --or-mark 4").target), (MarkTarget{4, 4}));
    EXPECT_EQ(std::get<MarkTarget>(rule_of("-j MARK --xor-mark 4").target), (MarkTarget{4, 0}));
    ConnmarkTarget c = std::get<ConnmarkTarget>(rule_of("-j CONNMARK --restore-mark --nfmask 0xff").target);
    EXPECT_EQ(c.mode, ConnmarkTarget::Mode::Restore);
    EXPECT_EQ(c.nfmask, 0xffu);
    EXPECT_EQ(c.ctmask, 0xffffffffu);
    EXPECT_EQ(std::get<ConnmarkTarget>(rule_of("-j CONNMARK --set-mark 1 --mask 0xff").target).ctmask, 0xffu);
  }
  {
    Rule r = rule_of("-j CT --zone-orig mark --notrack --ctevents related,new", TableId::Raw, "PREROUTING");
    const auto& c = std::get<CtTarget>(r.target);
    EXPECT_TRUE(c.notrack);
    EXPECT_TRUE(c.zone_from_mark);
    EXPECT_TRUE(c.zone_orig);
    EXPECT_FALSE(c.zone_reply);
    EXPECT_EQ(c.ctevents, 3);
    EXPECT_EQ(write_rule_spec(r), "-j CT --notrack --ctevents new,related --zone-orig mark");
    EXPECT_TRUE(std::holds_alternative<NotrackTarget>(rule_of("-j NOTRACK", TableId::Raw, "OUTPUT").target));
    EXPECT_TRUE(std::holds_alternative<TraceTarget>(rule_of("-j TRACE", TableId::Raw, "OUTPUT").target));
  }
  {
    Rule g = rule_of("-g X");
    const auto& t = std::get<GotoTarget>(g.target);
    EXPECT_EQ(t.chain, "X");
    EXPECT_EQ(t.index, 3u);  // after INPUT, FORWARD, OUTPUT
  }
}

TEST(IptablesSaveReader, FileStructure) {
  // -N, -P, -I with and without a position; address lists expand source-major.
  Ruleset rs = parse(
      "# comment\n"
      "\n"
      "*filter\n"
      "-N LATE\n"
      "-P FORWARD DROP\n"
      "-A LATE -j ACCEPT\n"
      "-I LATE -j DROP\n"
      "-I LATE 2 -s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4 -j RETURN\n"
      "COMMIT\n");
  const Table& t = *rs.find_table(TableId::Filter);
  EXPECT_EQ(t.chains[1].policy, Policy::Drop);
  const Chain& late = t.chains[*t.find_chain("LATE")];
  ASSERT_EQ(late.rules.size(), 6u);
  EXPECT_TRUE(std::holds_alternative<DropTarget>(late.rules[0].target));
  EXPECT_EQ(write_rule_spec(late.rules[1]), "-s 1.1.1.1/32 -d 3.3.3.3/32 -j RETURN");
  EXPECT_EQ(write_rule_spec(late.rules[2]), "-s 1.1.1.1/32 -d 4.4.4.4/32 -j RETURN");
  EXPECT_EQ(write_rule_spec(late.rules[3]), "-s 2.2.2.2/32 -d 3.3.3.3/32 -j RETURN");
  EXPECT_EQ(write_rule_spec(late.rules[4]), "-s 2.2.2.2/32 -d 4.4.4.4/32 -j RETURN");
  EXPECT_TRUE(std::holds_alternative<AcceptTarget>(late.rules[5].target));
  EXPECT_EQ(late.rules[1].where.line, 8u);

  // A table given twice: the later block replaces the earlier one.
  Ruleset twice = parse("*filter\n:A - [0:0]\n-A INPUT -j A\nCOMMIT\n*nat\nCOMMIT\n*filter\n-A INPUT -j DROP\nCOMMIT\n");
  ASSERT_EQ(twice.tables.size(), 2u);
  EXPECT_EQ(twice.tables[0].id, TableId::Filter);
  EXPECT_EQ(twice.tables[0].chains.size(), 3u);
  EXPECT_EQ(write_iptables_save(twice),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n"
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "COMMIT\n");

  // A loop no hook reaches is accepted, as the kernel does.
  EXPECT_EQ(error_of("*filter\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -g A\nCOMMIT\n"), "");
  // A declared chain wins over a target of the same name.
  Rule r = only_rule(parse("*filter\n:LOG - [0:0]\n-A INPUT -j LOG\nCOMMIT\n"), TableId::Filter, "INPUT");
  EXPECT_TRUE(std::holds_alternative<JumpTarget>(r.target));
}

TEST(IptablesSaveReader, Counters) {
  const std::string text =
      "*filter\n:INPUT DROP [10:2000]\n:X - [0:0]\n[3:180] -A INPUT -j X\n-A INPUT -c 5 600 -j ACCEPT\n"
      "-A X\nCOMMIT\n";
  Ruleset rs = parse(text);
  const Table& t = rs.tables[0];
  EXPECT_EQ(t.chains[0].policy_counters, (Counters{10, 2000}));
  EXPECT_EQ(t.chains[0].rules[0].counters, (Counters{3, 180}));
  EXPECT_EQ(t.chains[0].rules[1].counters, (Counters{5, 600}));
  EXPECT_FALSE(t.chains[3].rules[0].counters.has_value());
  EXPECT_EQ(write_iptables_save(rs, {.counters = true}),
            "*filter\n:INPUT DROP [10:2000]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n"
            "[3:180] -A INPUT -j X\n[5:600] -A INPUT -j ACCEPT\n[0:0] -A X\nCOMMIT\n");
  // Without counters: what the kernel shows after a restore without -c.
  EXPECT_EQ(write_iptables_save(rs),
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n"
            "-A INPUT -j X\n-A INPUT -j ACCEPT\n-A X\nCOMMIT\n");
  std::string with_comments = write_iptables_save(rs, {.header_comments = true});
  EXPECT_EQ(with_comments.rfind("# Generated by nfbench\n*filter\n", 0), 0u);
  EXPECT_NE(with_comments.find("COMMIT\n# Completed\n"), std::string::npos);
}

TEST(IptablesSaveReader, UserChainsPrintSortedBytewise) {
  Ruleset rs = parse("*filter\n:zeta - [0:0]\n:B - [0:0]\n:_u - [0:0]\n:-y - [0:0]\n:a.b - [0:0]\n"
                     "-A zeta -j B\n-A B -j ACCEPT\n-A -y -j RETURN\nCOMMIT\n");
  EXPECT_EQ(write_iptables_save(rs),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":-y - [0:0]\n:B - [0:0]\n:_u - [0:0]\n:a.b - [0:0]\n:zeta - [0:0]\n"
            "-A -y -j RETURN\n-A B -j ACCEPT\n-A zeta -j B\nCOMMIT\n");
}

// ---------------------------------------------------------------------------
// Errors: every message, with its location

struct ErrorCase {
  const char* input;
  const char* message;
};

TEST(IptablesSaveReader, Errors) {
  const ErrorCase cases[] = {
      // file structure
      {"*foo\nCOMMIT\n", "t.rules:1:2: unknown table \"foo\" (expected raw, mangle, nat, filter or security)"},
      {"-A INPUT -j ACCEPT\n", "t.rules:1:1: rule outside a table (expected a *table line first)"},
      {":X - [0:0]\n", "t.rules:1:1: chain declaration outside a table (expected a *table line first)"},
      {"*filter\n-A INPUT -j ACCEPT\n",
       "t.rules:3:1: COMMIT expected before the end of the input (table filter opened at line 1)"},
      {"*filter\n*nat\nCOMMIT\n", "t.rules:2:1: COMMIT expected before a new table (table filter opened at line 1)"},
      {"*filter\nCOMMIT\nCOMMIT\n", "t.rules:3:1: COMMIT outside a table (expected a *table line first)"},
      {"*filter\nCOMMIT extra\n", "t.rules:2:8: unexpected \"extra\" after COMMIT"},
      {"*filter\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
       "t.rules:2:13: PREROUTING is not a built-in chain of table filter: a user chain takes \"-\", not a policy"},
      {"*filter\n:FOO DROP [0:0]\nCOMMIT\n",
       "t.rules:2:6: FOO is not a built-in chain of table filter: a user chain takes \"-\", not a policy"},
      {"*filter\n:INPUT RETURN [0:0]\nCOMMIT\n",
       "t.rules:2:8: bad policy \"RETURN\" for chain INPUT (expected ACCEPT or DROP)"},
      {"*filter\n-P X DROP\nCOMMIT\n",
       "t.rules:2:4: chain X is not declared in table filter (declare it with \":X - [0:0]\" first)"},
      {"*filter\n:X - [0:0]\n-P X DROP\nCOMMIT\n", "t.rules:3:4: user chain X cannot have a policy"},
      {"*filter\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n", "t.rules:3:2: chain X is already declared in table filter"},
      {"*filter\n:ACCEPT - [0:0]\nCOMMIT\n", "t.rules:2:2: \"ACCEPT\" is a built-in target, not a chain name"},
      {"*filter\n:ABCDEFGHIJKLMNOPQRSTUVWXYZ012 - [0:0]\nCOMMIT\n",
       "t.rules:2:2: chain name \"ABCDEFGHIJKLMNOPQRSTUVWXYZ012\" is longer than 28 characters"},
      {"*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n", "t.rules:2:16: packet counter must be a decimal number up to 2^64-1"},
      {"*filter\n-A FOO -j ACCEPT\nCOMMIT\n",
       "t.rules:2:4: chain FOO is not declared in table filter (declare it with \":FOO - [0:0]\" first)"},
      {"*raw\n-A INPUT -j ACCEPT\nCOMMIT\n",
       "t.rules:2:4: chain INPUT is not a built-in chain of table raw (its chains: PREROUTING,OUTPUT)"},
      {"*filter\n-D INPUT 1\nCOMMIT\n", "t.rules:2:1: command -D is not supported here (expected -A, -I, -N or -P)"},
      {"*filter\n-I INPUT 2 -j DROP\nCOMMIT\n", "t.rules:2:10: rule number for -I must be 1..1 (chain INPUT has 0 rules)"},
      {"*filter\n-A INPUT -m comment --comment \"open\nCOMMIT\n",
       "t.rules:2:31: unterminated quoted string (expected a closing '\"')"},
      // options
      {"*filter\n-A INPUT -p tcp --foo 1\nCOMMIT\n", "t.rules:2:17: unknown option \"--foo\""},
      {"*filter\n-A INPUT --dport 80 -p tcp\nCOMMIT\n", "t.rules:2:10: unknown option \"--dport\""},
      {"*filter\n-A INPUT -p icmp --dport 80\nCOMMIT\n", "t.rules:2:18: unknown option \"--dport\""},
      {"*filter\n-A INPUT -x\nCOMMIT\n", "t.rules:2:10: unknown option \"-x\""},
      {"*filter\n-A INPUT -p tcp --d 80\nCOMMIT\n",
       "t.rules:2:17: option \"--d\" is ambiguous (abbreviates several options)"},
      {"*filter\n-A INPUT -m foo\nCOMMIT\n", "t.rules:2:13: unknown match module \"foo\""},
      {"*filter\n-A INPUT -m socket --transparent\nCOMMIT\n",
       "t.rules:2:13: match module \"socket\" is not supported by this model (1 use; --unsupported=never-match loads "
       "the rules as rules that never match, with approximate counters)"},
      {"*filter\n-A INPUT -m set --match-set x src,dst,src,dst,src,dst,src\nCOMMIT\n",
       "t.rules:2:31: can't be more src/dst options than 6"},
      {"*filter\n-A INPUT -m set --match-set x srcx\nCOMMIT\n",
       "t.rules:2:31: you must specify (the comma separated list of) 'src' or 'dst'"},
      {"*filter\n-A INPUT -m hashlimit --hashlimit-upto 5/sec\nCOMMIT\n",
       "t.rules:2:13: hashlimit: option \"--hashlimit-name\" must be specified"},
      {"*filter\n-A INPUT -m connlimit --connlimit-above 2 --connlimit-mask 1.2.3\nCOMMIT\n",
       "t.rules:2:60: \"1.2.3\" is neither a valid network mask nor valid CIDR (0-32)"},
      {"*filter\n-A INPUT -j FOO\nCOMMIT\n",
       "t.rules:2:13: unknown target \"FOO\" (not a supported target, nor a chain declared in table filter)"},
      {"*filter\n-A INPUT -j QUEUE\nCOMMIT\n",
       "t.rules:2:13: target \"QUEUE\" is not supported by this model (1 use; --unsupported=never-match loads the "
       "rules as rules that never match, with approximate counters)"},
      {"*filter\n-A INPUT -s\nCOMMIT\n", "t.rules:2:12: option \"-s\" requires an argument"},
      {"*filter\n-A INPUT -p tcp --dport\nCOMMIT\n", "t.rules:2:24: option \"--dport\" requires an argument"},
      {"*filter\n-A INPUT -p tcp --syn=1\nCOMMIT\n", "t.rules:2:17: option \"--syn\" takes no argument"},
      {"*filter\n-A INPUT -s 1.2.3.4 -s 1.2.3.5\nCOMMIT\n", "t.rules:2:21: multiple -s options not allowed"},
      {"*filter\n-A INPUT -j ACCEPT -g X\nCOMMIT\n", "t.rules:2:20: multiple -j/-g options not allowed"},
      {"*filter\n-A INPUT -p tcp --dport 80 --dport 81\nCOMMIT\n",
       "t.rules:2:28: tcp: option \"--dport\" can only be used once"},
      {"*filter\n-A INPUT -p tcp --syn --tcp-flags SYN SYN\nCOMMIT\n",
       "t.rules:2:23: tcp: option \"--tcp-flags\" cannot be used together with \"--syn\""},
      {"*filter\n-A INPUT -m string --algo bm --string a --hex-string \"|41|\"\nCOMMIT\n",
       "t.rules:2:41: string: option \"--hex-string\" cannot be used together with \"--string\""},
      {"*filter\n-A INPUT -j MARK --set-mark 1 --or-mark 2\nCOMMIT\n",
       "t.rules:2:31: MARK: option \"--or-mark\" cannot be combined with an earlier operation option"},
      {"*filter\n-A INPUT ! -j ACCEPT\nCOMMIT\n", "t.rules:2:10: cannot have ! before -j"},
      {"*filter\n-A INPUT ! -m tcp\nCOMMIT\n", "t.rules:2:10: unexpected ! before -m (put it before the module's option)"},
      {"*filter\n-A INPUT ! ! -s 1.2.3.4\nCOMMIT\n", "t.rules:2:12: multiple consecutive ! not allowed"},
      {"*filter\n-A INPUT -s 1.2.3.4 !\nCOMMIT\n", "t.rules:2:21: nothing appropriate following ! (expected an option)"},
      {"*filter\n-A INPUT -m comment ! --comment x\nCOMMIT\n", "t.rules:2:21: option \"--comment\" cannot be inverted"},
      {"*filter\n-A INPUT -p tcp --dport ! 80\nCOMMIT\n",
       "t.rules:2:25: bad port \"!\" (expected a number 0-65535 or a known service name) (\"!\" goes before the "
       "option: ! --dport VALUE)"},
      {"*filter\n-A INPUT -i eth0 extra\nCOMMIT\n",
       "t.rules:2:18: unexpected argument \"extra\" (expected an option; quote arguments that hold spaces)"},
      {"*filter\n-A INPUT -t nat\nCOMMIT\n",
       "t.rules:2:10: -t is not allowed in a restore file (the *table line selects the table)"},
      // values
      {"*filter\n-A INPUT -s 10.0.0.300\nCOMMIT\n",
       "t.rules:2:13: bad source address \"10.0.0.300\" (expected a.b.c.d or fewer dotted parts; host names are not "
       "resolved)"},
      {"*filter\n-A INPUT -d localhost\nCOMMIT\n",
       "t.rules:2:13: bad destination address \"localhost\" (expected a.b.c.d or fewer dotted parts; host names are "
       "not resolved)"},
      {"*filter\n-A INPUT -s 10.0.0.0/33\nCOMMIT\n",
       "t.rules:2:22: bad mask \"33\" (expected a prefix length 0-32 or a.b.c.d)"},
      {"*filter\n-A INPUT ! -s 1.2.3.4,1.2.3.5\nCOMMIT\n",
       "t.rules:2:15: ! not allowed with multiple source or destination addresses"},
      {"*filter\n-A INPUT -p tcp --dport 70000\nCOMMIT\n",
       "t.rules:2:25: bad port \"70000\" (expected a number 0-65535 or a known service name)"},
      {"*filter\n-A INPUT -p tcp --dport 90:80\nCOMMIT\n",
       "t.rules:2:25: bad port range \"90:80\" (first port above the last)"},
      {"*filter\n-A INPUT -p tcp --dport ntp\nCOMMIT\n",
       "t.rules:2:25: bad port \"ntp\" (expected a number 0-65535 or a known service name)"},
      {"*filter\n-A INPUT -p 256\nCOMMIT\n",
       "t.rules:2:13: unknown protocol \"256\" (expected a name such as tcp, or a number 0-255)"},
      {"*filter\n-A INPUT ! -p all\nCOMMIT\n",
       "t.rules:2:15: ! -p all would never match (protocol 0 means any protocol)"},
      {"*filter\n-A INPUT -m mark --mark 0x1g\nCOMMIT\n",
       "t.rules:2:25: bad value \"0x1g\" for --mark (expected VALUE[/MASK], numbers up to 0xffffffff)"},
      {"*filter\n-A INPUT -i abcdefghijklmnop\nCOMMIT\n",
       "t.rules:2:13: interface name \"abcdefghijklmnop\" is longer than 15 characters"},
      {"*filter\n-A INPUT -p tcp --tcp-flags ECE SYN\nCOMMIT\n",
       "t.rules:2:29: unknown TCP flag \"ECE\" (expected FIN, SYN, RST, PSH, ACK, URG, ALL or NONE)"},
      {"*filter\n-A INPUT -p icmp --icmp-type echo\nCOMMIT\n", "t.rules:2:30: ambiguous ICMP type \"echo\""},
      {"*filter\n-A INPUT -m conntrack --ctstate NEW,\nCOMMIT\n",
       "t.rules:2:37: bad conntrack state \"\" (expected INVALID, ESTABLISHED, NEW, RELATED, UNTRACKED, SNAT or DNAT)"},
      {"*filter\n-A INPUT -m state --state SNAT\nCOMMIT\n",
       "t.rules:2:27: bad state \"SNAT\" (expected INVALID, ESTABLISHED, NEW, RELATED or UNTRACKED)"},
      {"*filter\n-A INPUT -m string --algo bm --hex-string \"|4|\"\nCOMMIT\n",
       "t.rules:2:45: odd number of hex digits in a --hex-string block"},
      {"*filter\n-A INPUT -j LOG --log-level 8\nCOMMIT\n",
       "t.rules:2:29: bad log level \"8\" (expected 0-7 or emerg, alert, crit, error, warning, notice, info, debug)"},
      {"*filter\n-A INPUT -m length --length 65536\nCOMMIT\n",
       "t.rules:2:29: bad length \"65536\" (expected 0-65535, or MIN:MAX)"},
      {"*filter\n-A INPUT -m mark --mark 0x100000000\nCOMMIT\n",
       "t.rules:2:25: bad value \"0x100000000\" for --mark (expected VALUE[/MASK], numbers up to 0xffffffff)"},
      {"*filter\n-A INPUT -m limit --limit 10001/sec\nCOMMIT\n",
       "t.rules:2:27: rate \"10001/sec\" is too fast (at most 10000/second)"},
      {"*filter\n-A INPUT -m statistic --mode random --probability 1/3\nCOMMIT\n",
       "t.rules:2:51: bad probability \"1/3\" (expected a number from 0 to 1)"},
      {"*filter\n-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\nCOMMIT\n",
       "t.rules:2:75: too many ports for multiport (at most 15; a range counts as two)"},
      {"*nat\n-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4:1000-2000/5\nCOMMIT\n",
       "t.rules:2:60: a port offset (/BASE) is only valid for DNAT"},
      {"*nat\n-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1000:2000\nCOMMIT\n",
       "t.rules:2:48: bad port range \"1000:2000\" (use a dash: LO-HI)"},
      // module and target needs
      {"*filter\n-A INPUT -m tcp --dport 80\nCOMMIT\n", "t.rules:2:13: -m tcp needs -p tcp (not negated) in the same rule"},
      {"*filter\n-A INPUT ! -p tcp --dport 80\nCOMMIT\n", "t.rules:2:19: unknown option \"--dport\""},
      {"*filter\n-A INPUT ! -p tcp -m tcp --dport 80\nCOMMIT\n",
       "t.rules:2:22: -m tcp needs -p tcp (not negated) in the same rule"},
      {"*filter\n-A INPUT -m multiport --dports 1,2\nCOMMIT\n",
       "t.rules:2:13: -m multiport needs -p tcp, udp, udplite, sctp or dccp (not negated)"},
      {"*filter\n-A INPUT -p icmp -m icmp\nCOMMIT\n", "t.rules:2:21: icmp: option \"--icmp-type\" must be specified"},
      {"*filter\n-A INPUT -m comment\nCOMMIT\n", "t.rules:2:13: comment: option \"--comment\" must be specified"},
      {"*filter\n-A INPUT -m string --string x\nCOMMIT\n", "t.rules:2:13: string: option \"--algo\" must be specified"},
      {"*filter\n-A INPUT -m statistic --mode nth --every 3 --packet 3\nCOMMIT\n",
       "t.rules:2:13: statistic: --packet 3 must be below --every 3"},
      {"*filter\n-A INPUT -m limit --limit 1/day\nCOMMIT\n",
       "t.rules:2:13: limit: rate too slow for this burst (the kernel's 32-bit credit would overflow)"},
      {"*filter\n-A INPUT --reject-with tcp-reset -j REJECT\nCOMMIT\n", "t.rules:2:10: unknown option \"--reject-with\""},
      {"*filter\n-A INPUT -j ACCEPT --reject-with tcp-reset\nCOMMIT\n", "t.rules:2:20: unknown option \"--reject-with\""},
      {"*filter\n-A INPUT -p udp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
       "t.rules:2:20: REJECT --reject-with tcp-reset needs -p tcp (not negated)"},
      {"*nat\n-A PREROUTING -j DNAT\nCOMMIT\n", "t.rules:2:18: DNAT: option \"--to-destination\" must be specified"},
      {"*nat\n-A PREROUTING -j DNAT --to-destination 1.2.3.4:80\nCOMMIT\n",
       "t.rules:2:18: DNAT with ports needs -p tcp, udp, sctp, dccp or icmp"},
      {"*filter\n-A INPUT -j CONNMARK --mask 0xff\nCOMMIT\n",
       "t.rules:2:13: CONNMARK: no operation (expected --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark, "
       "--save-mark or --restore-mark)"},
      {"*filter\n-A OUTPUT -i eth0\nCOMMIT\n", "t.rules:2:11: can't use -i with OUTPUT (no input interface there)"},
      // targets and chains
      {"*filter\n-A INPUT -j X\nCOMMIT\n",
       "t.rules:2:13: unknown target \"X\" (not a supported target, nor a chain declared in table filter)"},
      {"*filter\n-A INPUT -j INPUT\nCOMMIT\n", "t.rules:2:13: cannot jump to built-in chain INPUT"},
      {"*filter\n-A INPUT -g OUTPUT\nCOMMIT\n",
       "t.rules:2:13: goto needs a user chain of table filter; \"OUTPUT\" is not one"},
      {"*filter\n-A INPUT -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
       "t.rules:2:13: target DNAT is only valid in table nat (this is table filter)"},
      {"*mangle\n-A FORWARD -j REJECT\nCOMMIT\n",
       "t.rules:2:15: target REJECT is only valid in table filter (this is table mangle)"},
      {"*filter\n-A INPUT -j NOTRACK\nCOMMIT\n", "t.rules:2:13: target NOTRACK is only valid in table raw (this is table filter)"},
      // checks at COMMIT, like the kernel's when it loads the table
      {"*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n",
       "t.rules:6:9: jump loop: chain B jumps back to A (A -> B -> A)"},
      {"*filter\n:A - [0:0]\n-A FORWARD -g A\n-A A -g A\nCOMMIT\n", "t.rules:4:9: jump loop: chain A jumps back to A (A -> A)"},
      {"*nat\n-A POSTROUTING -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
       "t.rules:2:19: target DNAT is valid only from PREROUTING,OUTPUT, but chain POSTROUTING is reached from "
       "POSTROUTING"},
      {"*nat\n-A PREROUTING -j MASQUERADE\nCOMMIT\n",
       "t.rules:2:18: target MASQUERADE is valid only from POSTROUTING, but chain PREROUTING is reached from "
       "PREROUTING"},
      {"*nat\n:X - [0:0]\n-A PREROUTING -j X\n-A POSTROUTING -j X\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
       "t.rules:5:9: target DNAT is valid only from PREROUTING,OUTPUT, but chain X is reached from POSTROUTING"},
      {"*filter\n:X - [0:0]\n-A X -m mac --mac-source 00:11:22:33:44:55\n-A OUTPUT -j X\nCOMMIT\n",
       "t.rules:3:9: match mac is valid only from PREROUTING,INPUT,FORWARD, but chain X is reached from OUTPUT"},
      {"*filter\n-A OUTPUT -m addrtype --dst-type LOCAL --limit-iface-in\nCOMMIT\n",
       "t.rules:2:14: match addrtype --limit-iface-in is valid only from PREROUTING,INPUT,FORWARD, but chain OUTPUT "
       "is reached from OUTPUT"},
  };
  for (const ErrorCase& c : cases) EXPECT_EQ(error_of(c.input), c.message) << "input: " << c.input;
  const char nul[] = "*filter\n-A INPUT -j ACCEPT\0\nCOMMIT\n";
  EXPECT_EQ(error_of(std::string(nul, sizeof nul - 1)), "t.rules:2:19: NUL byte in text input");
}

TEST(IptablesSaveReader, LoadErrorCarriesItsLocation) {
  try {
    parse("*filter\n-A INPUT -p tcp --dport x\nCOMMIT\n");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, "t.rules");
    EXPECT_EQ(e.where().line, 2u);
    EXPECT_EQ(e.where().column, 25u);
    EXPECT_EQ(e.message(), "bad port \"x\" (expected a number 0-65535 or a known service name)");
  }
}

TEST(IptablesSaveReader, UnsupportedModulesAreListedAllAtOnce) {
  const std::string text =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -p tcp -m quota --quota 5 -j DROP\n"
      "-A INPUT -p tcp --dport 22 -j ACCEPT\n"
      "-A INPUT -m time --timestart 09:00 -j DROP\n"
      "-A FORWARD -p tcp -j CLASSIFY --set-class 1:1\n"
      "COMMIT\n";
  try {
    read_iptables_save(text, "u.save");
    FAIL() << "expected a LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().line, 5U);
    EXPECT_EQ(std::string(e.what()),
              "u.save:5:20: match module \"quota\" is not supported by this model; also at 7:13 match module "
              "\"time\", 8:22 target \"CLASSIFY\" (3 uses; --unsupported=never-match loads the rules as rules "
              "that never match, with approximate counters)");
  }
  // A name iptables does not know is an error at once, in either mode.
  EXPECT_THROW(read_iptables_save("*filter\n-A INPUT -m nosuchmodule --x 1\nCOMMIT\n", "n.save",
                                  ReadOptions{.unsupported_never_match = true}),
               LoadError);

  const Ruleset rs = read_iptables_save(text, "u.save", ReadOptions{.unsupported_never_match = true});
  const Chain& input = rs.find_table(TableId::Filter)->chains[0];
  ASSERT_EQ(input.rules.size(), 3U);
  EXPECT_EQ(input.rules[0].unsupported, "quota");
  EXPECT_TRUE(input.rules[1].unsupported.empty());
  EXPECT_EQ(input.rules[2].unsupported, "time");
  EXPECT_EQ(unsupported_rules(rs),
            (std::vector<std::string>{"u.save:5 (quota)", "u.save:7 (time)", "u.save:8 (CLASSIFY)"}));
  // Printed back as written.
  const std::string out = write_iptables_save(rs);
  EXPECT_NE(out.find("-A INPUT -p tcp -m quota --quota 5 -j DROP\n"), std::string::npos) << out;
  EXPECT_NE(out.find("-A INPUT -m time --timestart \"09:00\" -j DROP\n"), std::string::npos) << out;
  EXPECT_NE(out.find("-A FORWARD -p tcp -j CLASSIFY --set-class \"1:1\"\n"), std::string::npos) << out;
}

TEST(IptablesSaveReader, Nfacct) {
  // As iptables-legacy-save and -L print them after `nfacct add NAME`.
  const std::string text =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -m nfacct --nfacct-name  localhost_nps_accepted_pkts\n"
      "-A INPUT -m nfacct --nfacct-name  \"a-b.c\" -j ACCEPT\n"
      "COMMIT\n";
  const Ruleset rs = read_iptables_save(text, "n.save");
  EXPECT_EQ(write_iptables_save(rs), text);
  EXPECT_THROW(read_iptables_save("*filter\n-A INPUT -m nfacct\nCOMMIT\n", "n.save"), LoadError);
  EXPECT_THROW(read_iptables_save("*filter\n-A INPUT -m nfacct --nfacct-name 0123456789abcdef0123456789abcdef\nCOMMIT\n",
                                  "n.save"),
               LoadError);
}

TEST(IptablesSaveReader, MissingFile) {
  try {
    load_iptables_save_file("/nonexistent/nfbench.rules");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/nfbench.rules: cannot open: No such file or directory");
  }
}

// ---------------------------------------------------------------------------
// Writer details not covered by the kernel files

TEST(IptablesSaveWriter, RejectsClassBenchPortMatch) {
  Ruleset rs;
  Table& t = rs.get_or_add_table(TableId::Filter);
  Rule r;
  r.protocol = kProtoTcp;
  r.matches.push_back(PortsMatch{{0, 65535}, {80, 80}});
  r.target = AcceptTarget{};
  r.where.file = "acl1.rules";
  r.where.line = 7;
  t.chains[1].rules.push_back(r);
  try {
    write_iptables_save(rs);
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()),
              "acl1.rules:7: a protocol-agnostic port match (ClassBench input) has no iptables form; give the rule "
              "a protocol and a tcp/udp match instead");
  }
}

TEST(IptablesSaveWriter, BuiltRulesPrintCanonically) {
  Ruleset rs;
  Table& t = rs.get_or_add_table(TableId::Nat);
  Rule r;
  r.dst = {0x0a000000, prefix_mask(8)};
  r.out_iface = {"br-", true, true};
  r.protocol = kProtoUdp;
  r.matches.push_back(UdpMatch{{0, 65535}, {53, 53}, false, false});
  r.target = MasqueradeTarget{};
  t.chains[3].rules.push_back(r);  // POSTROUTING
  EXPECT_EQ(write_iptables_save(rs),
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A POSTROUTING -d 10.0.0.0/8 ! -o br-+ -p udp -m udp --dport 53 -j MASQUERADE\nCOMMIT\n");
}

// ---------------------------------------------------------------------------
// Model helpers

TEST(RuleModel, TablesAndHooks) {
  EXPECT_STREQ(table_name(TableId::Mangle), "mangle");
  EXPECT_EQ(parse_table_name("nat"), TableId::Nat);
  EXPECT_FALSE(parse_table_name("NAT").has_value());
  EXPECT_EQ(format_hooks(table_hooks(TableId::Raw)), "PREROUTING,OUTPUT");
  EXPECT_EQ(format_hooks(table_hooks(TableId::Mangle)), "PREROUTING,INPUT,FORWARD,OUTPUT,POSTROUTING");
  EXPECT_EQ(format_hooks(table_hooks(TableId::Nat)), "PREROUTING,INPUT,OUTPUT,POSTROUTING");
  EXPECT_EQ(format_hooks(table_hooks(TableId::Filter)), "INPUT,FORWARD,OUTPUT");
  EXPECT_TRUE(table_has_hook(TableId::Filter, Hook::Forward));
  EXPECT_FALSE(table_has_hook(TableId::Nat, Hook::Forward));
  EXPECT_EQ(parse_hook_name("POSTROUTING"), Hook::Postrouting);
  Table nat = Table::make(TableId::Nat);
  ASSERT_EQ(nat.chains.size(), 4u);
  EXPECT_EQ(nat.builtin_chain(Hook::Output), &nat.chains[2]);
  EXPECT_EQ(nat.builtin_chain(Hook::Forward), nullptr);
}

TEST(RuleModel, TerminalTargets) {
  EXPECT_TRUE(is_terminal(AcceptTarget{}));
  EXPECT_TRUE(is_terminal(DropTarget{}));
  EXPECT_TRUE(is_terminal(RejectTarget{}));
  EXPECT_TRUE(is_terminal(ReturnTarget{}));
  EXPECT_TRUE(is_terminal(GotoTarget{"X", 3}));
  EXPECT_TRUE(is_terminal(DnatTarget{}));
  EXPECT_TRUE(is_terminal(SnatTarget{}));
  EXPECT_TRUE(is_terminal(MasqueradeTarget{}));
  EXPECT_TRUE(is_terminal(RedirectTarget{}));
  EXPECT_FALSE(is_terminal(JumpTarget{"X", 3}));
  EXPECT_FALSE(is_terminal(NoTarget{}));
  EXPECT_FALSE(is_terminal(LogTarget{}));
  EXPECT_FALSE(is_terminal(MarkTarget{}));
  EXPECT_FALSE(is_terminal(ConnmarkTarget{}));
  EXPECT_FALSE(is_terminal(NotrackTarget{}));
  EXPECT_FALSE(is_terminal(CtTarget{}));
  EXPECT_FALSE(is_terminal(TraceTarget{}));
  EXPECT_EQ(target_name(JumpTarget{"DOCKER", 4}), "DOCKER");
  EXPECT_EQ(target_name(MasqueradeTarget{}), "MASQUERADE");
  EXPECT_EQ(target_scope(SnatTarget{}).table, TableId::Nat);
  EXPECT_EQ(target_scope(SnatTarget{}).hooks, hook_bit(Hook::Postrouting) | hook_bit(Hook::Input));
  EXPECT_FALSE(target_scope(MarkTarget{}).table.has_value());
  EXPECT_EQ(match_hooks(MacMatch{}), hook_bit(Hook::Prerouting) | hook_bit(Hook::Input) | hook_bit(Hook::Forward));
  EXPECT_STREQ(match_name(PortsMatch{}), "ports");
}

TEST(RuleModel, NameSets) {
  EXPECT_EQ(parse_ct_state("established"), kCtEstablished);
  EXPECT_EQ(parse_ct_state("DNAT"), kCtDnat);
  EXPECT_FALSE(parse_ct_state("OPEN").has_value());
  EXPECT_EQ(format_ct_states(kCtEstablished | kCtRelated | kCtInvalid | kCtSnat), "INVALID,RELATED,ESTABLISHED,SNAT");
  EXPECT_EQ(parse_ct_status("none"), 0);
  EXPECT_EQ(format_ct_status(0), "NONE");
  EXPECT_EQ(format_ct_status(kCtStatusConfirmed | kCtStatusExpected), "EXPECTED,CONFIRMED");
  EXPECT_EQ(parse_addr_type("xresolve"), AddrType::Xresolve);
  EXPECT_STREQ(addr_type_name(AddrType::Blackhole), "BLACKHOLE");
  EXPECT_EQ(format_addr_types(addr_type_bit(AddrType::Local) | addr_type_bit(AddrType::Unspec)), "UNSPEC,LOCAL");
  EXPECT_STREQ(protocol_name(kProtoSctp), "sctp");
  EXPECT_EQ(protocol_name(0), nullptr);
  EXPECT_EQ(parse_protocol("Udp"), kProtoUdp);
  EXPECT_EQ(parse_protocol("all"), 0);
  EXPECT_EQ(parse_protocol("0x11"), kProtoUdp);
  EXPECT_FALSE(parse_protocol("IPSEC-ESP").has_value());  // iptables lower-cases, aliases are case-sensitive
  EXPECT_EQ(mask_prefix_length(0xffffff00u), 24);
  EXPECT_EQ(mask_prefix_length(0), 0);
  EXPECT_EQ(mask_prefix_length(0xff00ff00u), -1);
  EXPECT_EQ(format_ipv4(0xc0a80001u), "192.168.0.1");
}

TEST(RuleModel, ChainHooksFollowJumpsAndGotos) {
  Ruleset rs = parse(
      "*filter\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n:LONE - [0:0]\n"
      "-A INPUT -j A\n-A FORWARD -g B\n-A A -j C\n-A B -j C\n-A LONE -j C\nCOMMIT\n");
  const Table& t = rs.tables[0];
  std::vector<HookMask> h = chain_hooks(t);
  EXPECT_EQ(h[*t.find_chain("A")], hook_bit(Hook::Input));
  EXPECT_EQ(h[*t.find_chain("B")], hook_bit(Hook::Forward));
  EXPECT_EQ(h[*t.find_chain("C")], hook_bit(Hook::Input) | hook_bit(Hook::Forward));
  EXPECT_EQ(h[*t.find_chain("LONE")], 0);
  EXPECT_EQ(h[*t.find_chain("OUTPUT")], hook_bit(Hook::Output));
}

}  // namespace
}  // namespace nfb
