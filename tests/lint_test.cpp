// Lint and explain (analysis/lint.h, analysis/explain.h): the seed case
// flagged with its DNAT rule and a checked fix, the fixed rules and the
// shipped rulesets clean, Docker 27 and 28 with user rules added, shadowed
// rules found by box subtraction (and not on a guess), unreferenced chains,
// one packet explained with its reply and a later packet, and the command's
// exit codes.
#include "analysis/lint.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "analysis/explain.h"
#include "netfilter/pipeline.h"
#include "rules/iptables_save.h"
#include "rules/ruleset_gen.h"
#include "tests/support/scenarios.h"

namespace nfb {
namespace {

std::vector<LintFinding> lint_text(const std::string& text, const std::string& name = "test.save") {
  return lint_ruleset(read_iptables_save(text, name), default_docker_host());
}

std::string kinds(const std::vector<LintFinding>& f) {
  std::string s;
  for (const LintFinding& x : f) s += x.kind + "@" + x.where.str() + " ";
  return s;
}

TEST(Lint, SeedCaseIsFlaggedWithItsDnatRuleAndACheckedFix) {
  const Scenario s = seed_case_naive();
  const std::vector<LintFinding> f = lint_text(s.ruleset, "naive.save");
  ASSERT_EQ(f.size(), 1U) << format_lint(f);
  EXPECT_EQ(f[0].kind, "published-port");
  EXPECT_NE(f[0].message.find("published port 10000"), std::string::npos) << f[0].message;
  std::string evidence;
  for (const std::string& e : f[0].evidence) evidence += e + "\n";
  EXPECT_NE(evidence.find("-j DNAT --to-destination 172.17.0.2:6379"), std::string::npos) << evidence;
  EXPECT_NE(evidence.find("-> 172.17.0.2:6379"), std::string::npos) << evidence;
  EXPECT_NE(evidence.find("with the fix the probe matches it"), std::string::npos) << evidence;
  EXPECT_EQ(f[0].fix, "-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 10000 --ctdir ORIGINAL -j DROP");
  // The finding points at the DOCKER-USER rule's line.
  const size_t at = s.ruleset.find("--dport 10000 -j DROP");
  ASSERT_NE(at, std::string::npos);
  const std::string line = s.ruleset.substr(0, at);
  EXPECT_EQ(f[0].where.line, static_cast<uint32_t>(std::count(line.begin(), line.end(), '\n') + 1));
}

TEST(Lint, FixedRulesAndShippedRulesetsAreClean) {
  EXPECT_EQ(kinds(lint_text(seed_case_fixed().ruleset)), "");
  EXPECT_EQ(kinds(lint_text(seed_case_post_dnat().ruleset)), "");
  for (const char* f : {"docker-27.save", "docker-28.save", "kube-proxy.save"}) {
    SCOPED_TRACE(f);
    EXPECT_EQ(kinds(lint_text(bundled_ruleset(f), f)), "");
  }
}

TEST(Lint, UserRulesOnDocker27And28) {
  for (const char* file : {"docker-27.save", "docker-28.save"}) {
    SCOPED_TRACE(file);
    // The published UDP port 5353 (-> dns 172.18.0.2:53) blocked the naive
    // way, a rule on the container's own port (which FORWARD does see), and
    // one on an unpublished port.
    const std::string rules = apply_iptables_commands(bundled_ruleset(file),
                                                      "iptables -I DOCKER-USER -p udp --dport 5353 -j DROP\n"
                                                      "iptables -I DOCKER-USER -p tcp --dport 6379 -j DROP\n"
                                                      "iptables -I DOCKER-USER -p tcp --dport 12345 -j DROP\n");
    const std::vector<LintFinding> f = lint_text(rules, file);
    ASSERT_EQ(f.size(), 1U) << format_lint(f);
    EXPECT_EQ(f[0].fix, "-A DOCKER-USER -p udp -m conntrack --ctorigdstport 5353 --ctdir ORIGINAL -j DROP");
  }
}

// Generated rulesets (rules/ruleset_gen.h): kube-proxy's shape at a few
// sizes is clean; a generated Docker host with a naive DOCKER-USER rule on
// one of its published ports is flagged, and the conntrack fix is not.
TEST(Lint, GeneratedKubeAndDockerRulesets) {
  for (const uint32_t services : {10U, 200U}) {
    KubeGenOptions k;
    k.services = services;
    k.endpoints = 3;
    SCOPED_TRACE(services);
    EXPECT_EQ(kinds(lint_text(generate_kube_ruleset(k), "kube.save")), "");
  }
  DockerGenOptions d;
  d.containers = 6;
  d.ports = 2;
  d.networks = 2;
  const std::string docker = generate_docker_ruleset(d);
  EXPECT_EQ(kinds(lint_text(docker, "docker.save")), "");
  // Host port 10000 is the first container's first published port (TCP).
  const std::vector<LintFinding> naive = lint_text(
      apply_iptables_commands(docker, "iptables -I DOCKER-USER -p tcp --dport 10000 -j DROP\n"), "docker.save");
  ASSERT_EQ(naive.size(), 1U) << format_lint(naive);
  EXPECT_EQ(naive[0].fix, "-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 10000 --ctdir ORIGINAL -j DROP");
  EXPECT_EQ(kinds(lint_text(apply_iptables_commands(docker, "iptables -I DOCKER-USER -p tcp -m conntrack "
                                                            "--ctorigdstport 10000 --ctdir ORIGINAL -j DROP\n"),
                            "docker.save")),
            "");
}

TEST(Lint, ShadowedRulesByBoxSubtraction) {
  const std::string head = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n";
  // Line 5: covered by one rule; line 10: by the union of three others.
  const std::vector<LintFinding> f = lint_text(head +
                                               "-A FORWARD -s 10.0.0.0/8 -j ACCEPT\n"
                                               "-A FORWARD -s 10.1.0.0/16 -p tcp -j DROP\n"
                                               "-A FORWARD -p tcp --dport 0:79 -j ACCEPT\n"
                                               "-A FORWARD -p tcp --dport 80 -j DROP\n"
                                               "-A FORWARD -p tcp --dport 81:65535 -j RETURN\n"
                                               "-A FORWARD -p tcp -s 192.0.2.1 -j DROP\n"
                                               "COMMIT\n");
  EXPECT_EQ(kinds(f), "shadowed@test.save:6:1 shadowed@test.save:10:1 ") << format_lint(f);
  ASSERT_EQ(f.size(), 2U);
  EXPECT_EQ(f[1].evidence.size(), 3U);
  // Not shadowed: a gap in the union (port 80 missing), an earlier rule that
  // is not terminal (a jump may come back), one with a match the boxes do
  // not hold (-m limit), a later rule on another protocol.
  EXPECT_EQ(kinds(lint_text(head +
                            ":SUB - [0:0]\n"
                            "-A FORWARD -p tcp --dport 0:79 -j ACCEPT\n"
                            "-A FORWARD -p tcp --dport 81:65535 -j ACCEPT\n"
                            "-A FORWARD -p tcp -s 192.0.2.1 -j DROP\n"
                            "-A FORWARD -s 10.0.0.0/8 -j SUB\n"
                            "-A FORWARD -s 10.1.0.0/16 -j DROP\n"
                            "-A FORWARD -s 172.16.0.0/12 -m limit --limit 1/s -j ACCEPT\n"
                            "-A FORWARD -s 172.16.0.0/16 -j DROP\n"
                            "-A FORWARD -p udp --dport 80 -j DROP\n"
                            "-A SUB -j RETURN\n"
                            "COMMIT\n")),
            "");
}

TEST(Lint, UnreferencedChainsWithRules) {
  const std::vector<LintFinding> f = lint_text(
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      ":USED - [0:0]\n:ORPHAN - [0:0]\n:EMPTY - [0:0]\n"
      "-A FORWARD -j USED\n-A USED -j ACCEPT\n-A ORPHAN -j DROP\nCOMMIT\n");
  EXPECT_EQ(kinds(f), "unreferenced@test.save:6:1 ") << format_lint(f);
}

TEST(Explain, SeedPacketItsReplyAndALaterPacket) {
  const Ruleset rules = read_iptables_save(seed_case_naive().ruleset, "naive.save");
  const HostModel host = default_docker_host();
  auto pipeline = Pipeline::build(rules, host, {});
  const Probe probe = parse_probe("tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0", "--packet");
  const Explanation first = explain_probe(*pipeline, rules, host, probe, 1'000'000'000);
  EXPECT_EQ(first.fate, Fate::Forwarded);
  EXPECT_EQ(first.out_iface, "docker0");
  bool dnat = false;
  bool user_chain_saw_6379 = false;
  for (const ExplainStep& s : first.steps) {
    dnat |= s.table == "nat" && s.chain == "DOCKER" && s.rule.find("--to-destination 172.17.0.2:6379") != std::string::npos;
    user_chain_saw_6379 |= s.chain == "DOCKER-USER" && s.tuple.find("-> 172.17.0.2:6379") != std::string::npos;
  }
  EXPECT_TRUE(dnat) << format_explanation(first);
  EXPECT_TRUE(user_chain_saw_6379) << format_explanation(first);
  EXPECT_EQ(format_probe(first.leaves), "tcp 203.0.113.5:40000 -> 172.17.0.2:6379 in docker0 [SYN]");

  const Explanation reply = explain_probe(*pipeline, rules, host, reply_probe(first), 1'001'000'000);
  EXPECT_EQ(reply.fate, Fate::Forwarded);
  EXPECT_NE(reply.ct_state & kCtEstablished, 0) << format_explanation(reply);
  EXPECT_EQ(format_probe(reply.leaves), "tcp 198.51.100.1:10000 -> 203.0.113.5:40000 in eth0 [SYN,ACK]");

  const Explanation later = explain_probe(*pipeline, rules, host, later_probe(probe), 1'002'000'000);
  EXPECT_EQ(later.fate, Fate::Forwarded);
  EXPECT_NE(later.ct_state & kCtEstablished, 0) << format_explanation(later);
  EXPECT_EQ(later.out_iface, "docker0");
}

TEST(Explain, BadPacketTextSaysWhere) {
  const auto error = [](const std::string& text) {
    try {
      parse_probe(text, "--packet");
    } catch (const LoadError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("sctp 1.2.3.4:1 -> 5.6.7.8:2 in eth0").find("--packet:1:1: expected tcp, udp or icmp"),
            std::string::npos);
  EXPECT_NE(error("tcp 1.2.3.400:1 -> 5.6.7.8:2 in eth0").find("--packet:1:5:"), std::string::npos);
  EXPECT_NE(error("tcp 1.2.3.4:1 -> 5.6.7.8:99999 in eth0").find("expected a port"), std::string::npos);
  EXPECT_NE(error("tcp 1.2.3.4:1 to 5.6.7.8:2 in eth0").find("expected \"PROTO"), std::string::npos);
  EXPECT_NE(error("icmp 1.2.3.4:1 -> 5.6.7.8 in eth0").find("without a port"), std::string::npos);
}

TEST(LintCommand, ExitCodes) {
  const char* build = std::getenv("NFB_BUILD_ROOT");
  const char* src = std::getenv("NFB_SOURCE_ROOT");
  if (build == nullptr || src == nullptr) GTEST_SKIP() << "NFB_BUILD_ROOT/NFB_SOURCE_ROOT not set (run by meson test)";
  const std::string nfb = std::string(build) + "/tools/nfbench";
  const std::string rules = std::string(src) + "/data/rulesets/";
  const auto status = [](const std::string& cmd) { return WEXITSTATUS(std::system((cmd + " >/dev/null 2>&1").c_str())); };
  EXPECT_EQ(status(nfb + " lint " + rules + "docker-28-seed-naive.save"), 1);
  EXPECT_EQ(status(nfb + " lint " + rules + "docker-28-seed-fixed.save"), 0);
  EXPECT_EQ(status(nfb + " lint " + rules + "docker-28.save"), 0);
  EXPECT_EQ(status(nfb + " explain " + rules + "docker-28.save --packet 'tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0' --reply"), 0);
  EXPECT_EQ(status(nfb + " explain " + rules + "docker-28.save --packet 'tcp nonsense'"), 1);
}

}  // namespace
}  // namespace nfb
