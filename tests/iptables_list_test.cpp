// Tests of the `iptables -L -v -n -x` writer.
//
// The writer is checked against text the kernel printed: for every
// tests/data/iptables/list/NAME.input (a ruleset with counters) and every
// table it names, write_iptables_list must equal NAME.TABLE.list, which is
// what `iptables-legacy -t TABLE -L -v -n -x` printed after restoring
// NAME.input with --counters (regenerate.sh; tests/iptables_list_kernel_test.cpp
// checks the same live). The inputs cover every module and target of rule.h.
// A few cases the kernel cannot be asked about (rules built by hand, a table
// the ruleset lacks, a ClassBench port match) are checked on their own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rules/iptables_list.h"
#include "rules/iptables_save.h"
#include "tests/support/test_data.h"

namespace nfb {
namespace {

namespace fs = std::filesystem;
using test::source_root;
using test::read_file;

fs::path list_dir() { return source_root() / "tests/data/iptables/list"; }

std::vector<fs::path> inputs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(list_dir())) {
    if (e.path().extension() == ".input") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// NAME.TABLE.list files of one input: table name -> path.
std::map<std::string, fs::path> goldens_of(const fs::path& input) {
  std::map<std::string, fs::path> out;
  const std::string prefix = input.stem().string() + ".";
  for (const auto& e : fs::directory_iterator(list_dir())) {
    std::string f = e.path().filename().string();
    if (e.path().extension() != ".list" || f.rfind(prefix, 0) != 0) continue;
    std::string table = f.substr(prefix.size(), f.size() - prefix.size() - 5);
    if (table.find('.') == std::string::npos) out[table] = e.path();
  }
  return out;
}

/// The first line where two texts differ, for readable failures.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  std::string la, lb;
  for (int n = 1;; ++n) {
    bool ga = static_cast<bool>(std::getline(x, la));
    bool gb = static_cast<bool>(std::getline(y, lb));
    if (!ga && !gb) return "texts differ only in their final newline";
    if (la != lb || ga != gb)
      return "line " + std::to_string(n) + ":\n  ours:   [" + (ga ? la : "<end>") + "]\n  kernel: [" + (gb ? lb : "<end>") + "]";
  }
}

TEST(IptablesList, EqualsTheKernelsOutputForEveryGoldenFile) {
  auto files = inputs();
  // Bundled rulesets, the canonical forms of every module and target, and
  // the hand-written edge cases.
  ASSERT_GE(files.size(), 30u) << list_dir();
  size_t compared = 0;
  for (const fs::path& input : files) {
    SCOPED_TRACE(input.filename().string());
    Ruleset rs = read_iptables_save(read_file(input), input.filename().string());
    auto goldens = goldens_of(input);
    std::set<std::string> tables;
    for (const Table& t : rs.tables) tables.insert(table_name(t.id));
    for (const std::string& t : tables) EXPECT_TRUE(goldens.count(t)) << "no golden file for table " << t;
    for (const auto& [table, path] : goldens) {
      auto id = parse_table_name(table);
      ASSERT_TRUE(id.has_value()) << path;
      EXPECT_TRUE(tables.count(table)) << path << ": the input has no table " << table;
      std::string ours = write_iptables_list(rs, *id);
      std::string kernel = read_file(path);
      // Not EXPECT_EQ: the whole texts would bury the one line that differs.
      EXPECT_TRUE(ours == kernel) << path.filename() << ": " << first_difference(ours, kernel);
      ++compared;
    }
  }
  EXPECT_GE(compared, 60u);
}

/// Every match and target kind of rule.h appears in the golden inputs, so
/// the comparison above covers each print rule.
TEST(IptablesList, GoldenInputsCoverEveryMatchAndTarget) {
  std::set<size_t> matches, targets;
  for (const fs::path& input : inputs()) {
    Ruleset rs = read_iptables_save(read_file(input), input.filename().string());
    for (const Table& t : rs.tables) {
      for (const Chain& c : t.chains) {
        for (const Rule& r : c.rules) {
          for (const Match& m : r.matches) matches.insert(m.index());
          targets.insert(r.target.index());
        }
      }
    }
  }
  // Every match but PortsMatch (ClassBench only, no iptables form) and
  // NfacctMatch (the kernel loads it only when the named nfacct object
  // exists, which the golden namespaces lack: IptablesSaveReader.Nfacct
  // holds its text).
  for (size_t i = 0; i < std::variant_size_v<Match>; ++i) {
    if (i == Match(PortsMatch{}).index() || i == Match(NfacctMatch{}).index()) continue;
    EXPECT_TRUE(matches.count(i)) << "no golden input uses match #" << i;
  }
  for (size_t i = 0; i < std::variant_size_v<Target>; ++i) {
    EXPECT_TRUE(targets.count(i)) << "no golden input uses target #" << i;
  }
}

Ruleset parse(const std::string& text) { return read_iptables_save(text, "test"); }

const std::string kHeader =
    "    pkts      bytes target     prot opt in     out     source               destination         \n";

TEST(IptablesList, RulesWithoutCountersShowZero) {
  Ruleset rs = parse(
      "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n");
  Table& t = *rs.find_table(TableId::Filter);
  t.chains[0].policy_counters = {3, 180};
  ASSERT_FALSE(t.chains[0].rules[0].counters.has_value());
  std::string expected =
      "Chain INPUT (policy DROP 3 packets, 180 bytes)\n" + kHeader +
      "       0        0 ACCEPT     6    --  *      *       10.0.0.1             0.0.0.0/0            tcp dpt:22\n"
      "\n"
      "Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)\n" + kHeader +
      "\n"
      "Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n" + kHeader;
  EXPECT_EQ(write_iptables_list(rs, TableId::Filter), expected);
  t.chains[0].rules[0].counters = Counters{12, 3456};
  EXPECT_EQ(write_iptables_list_rule(t.chains[0].rules[0]),
            "      12     3456 ACCEPT     6    --  *      *       10.0.0.1             0.0.0.0/0            tcp dpt:22");
}

TEST(IptablesList, MissingTableListsAsAFreshTable) {
  Ruleset rs = parse("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
  std::string expected;
  for (const char* c : {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}) {
    if (!expected.empty()) expected += "\n";
    expected += std::string("Chain ") + c + " (policy ACCEPT 0 packets, 0 bytes)\n" + kHeader;
  }
  EXPECT_EQ(write_iptables_list(rs, TableId::Nat), expected);
  EXPECT_EQ(write_iptables_list(Table::make(TableId::Nat)), expected);
}

TEST(IptablesList, ReferencesCountJumpsAndGotosByNameAndUserChainsSortBytewise) {
  // Chains built by hand in declaration order b, B, a: listed B, a, b.
  Table t = Table::make(TableId::Filter);
  for (const char* n : {"b", "B", "a"}) {
    Chain c;
    c.name = n;
    t.chains.push_back(c);
  }
  auto rule = [](Target target) {
    Rule r;
    r.target = std::move(target);
    return r;
  };
  t.chains[0].rules.push_back(rule(JumpTarget{"b", 3}));
  t.chains[1].rules.push_back(rule(GotoTarget{"b", 3}));
  t.chains[5].rules.push_back(rule(JumpTarget{"b", 3}));  // a -> b
  t.chains[3].rules.push_back(rule(GotoTarget{"a", 5}));  // b -> a
  std::string out = write_iptables_list(t);
  size_t pb = out.find("Chain B (0 references)\n");
  size_t pa = out.find("Chain a (1 references)\n");
  size_t pl = out.find("Chain b (3 references)\n");
  ASSERT_NE(pb, std::string::npos) << out;
  ASSERT_NE(pa, std::string::npos) << out;
  ASSERT_NE(pl, std::string::npos) << out;
  EXPECT_LT(pb, pa);
  EXPECT_LT(pa, pl);
  EXPECT_NE(out.find(
                "       0        0 a          0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto] \n"),
            std::string::npos)
      << out;
}

TEST(IptablesList, BuiltRulesPrintTheKernelsWords) {
  Rule r;
  r.protocol = 1;
  r.matches.push_back(IcmpMatch{3, 1, 5, false});  // a code range: no iptables input form
  r.target = NotrackTarget{};
  EXPECT_EQ(write_iptables_list_rule(r),
            "       0        0 CT         1    --  *      *       0.0.0.0/0            0.0.0.0/0            "
            "icmptype 3 codes 1-5 NOTRACK");

  // A -s address given unmasked is shown masked, as the kernel stores it.
  Rule s;
  s.src = {0x0a010203, 0xffff0000};
  s.dst = {0xc0a80001, 0xffffff00};
  s.dst_invert = true;
  s.in_iface = {"", false, true};  // inverted and empty: nothing iptables can load, shown as `!*`
  s.target = MarkTarget{0x10, 0xf0};
  EXPECT_EQ(write_iptables_list_rule(s),
            "       0        0 MARK       0    --  !*     *       10.1.0.0/16         !192.168.0.0/24       "
            "MARK xset 0x10/0xf0");
}

TEST(IptablesList, PortsMatchHasNoIptablesForm) {
  Ruleset rs;
  Table& t = rs.get_or_add_table(TableId::Filter);
  Rule r;
  r.matches.push_back(PortsMatch{{1, 2}, {3, 4}});
  r.where = SourceLocation{"cb.rules", 7, 1};
  t.chains[0].rules.push_back(r);
  try {
    write_iptables_list(rs, TableId::Filter);
    FAIL() << "expected a LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, "cb.rules");
    EXPECT_EQ(e.where().line, 7u);
    EXPECT_NE(std::string(e.what()).find("no iptables form"), std::string::npos) << e.what();
  }
  // Other tables still print.
  EXPECT_NO_THROW(write_iptables_list(rs, TableId::Raw));
}

}  // namespace
}  // namespace nfb
