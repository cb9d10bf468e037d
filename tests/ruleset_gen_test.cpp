// The ruleset generators (rules/ruleset_gen.h): the same bytes for the
// same options; the rule counts per chain for several sizes; the shapes of the
// bundled dumps (docker-28.save rule for rule, kube-proxy.save rule kind for
// rule kind); what the rules say (host ports, addresses, one equal share per
// endpoint); text the reader loads and a pipeline is built from; errors for
// options out of range; and `nfbench gen docker|kube` end to end. The kernel
// side is tests/ruleset_gen_kernel_test.cpp.
#include "rules/ruleset_gen.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "netfilter/host.h"
#include "netfilter/pipeline.h"
#include "rules/iptables_save.h"
#include "tests/support/netns.h"
#include "tests/support/test_data.h"

namespace nfb {
namespace {

using test::read_file;
using test::source_root;

// "table/CHAIN" -> number of rules, for every chain of every table.
std::map<std::string, size_t> rule_counts(const Ruleset& rs) {
  std::map<std::string, size_t> out;
  for (const Table& t : rs.tables) {
    for (const Chain& c : t.chains) out[std::string(table_name(t.id)) + "/" + c.name] = c.rules.size();
  }
  return out;
}

const Chain& chain(const Ruleset& rs, TableId table, const std::string& name) {
  const Table* t = rs.find_table(table);
  if (t == nullptr) throw std::runtime_error(std::string("no table ") + table_name(table));
  const auto i = t->find_chain(name);
  if (!i) throw std::runtime_error("no chain " + name);
  return t->chains[*i];
}

template <typename M>
const M* find_match(const Rule& r) {
  for (const Match& m : r.matches) {
    if (const auto* x = std::get_if<M>(&m)) return x;
  }
  return nullptr;
}

// The destination port of a rule's tcp or udp match (0 when it has none).
uint16_t dport(const Rule& r) {
  if (const auto* t = find_match<TcpMatch>(r)) return t->dport.lo;
  if (const auto* u = find_match<UdpMatch>(r)) return u->dport.lo;
  return 0;
}

std::string replace_all(const std::string& text, const std::string& pattern, const std::string& with) {
  return std::regex_replace(text, std::regex(pattern), with);
}

std::string canonical(const std::string& text) { return write_iptables_save(read_iptables_save(text, "gen")); }

// ---------------------------------------------------------------------------
// Docker

// Published ports by their index g over all containers (ruleset_gen.h).
size_t count_ports(uint64_t total, std::initializer_list<unsigned> residues) {
  size_t n = 0;
  for (uint64_t g = 0; g < total; ++g) {
    for (unsigned r : residues) n += g % 10 == r;
  }
  return n;
}

TEST(DockerGen, SameOptionsSameBytesOtherSeedOnlyOtherNamesAndPorts) {
  const DockerGenOptions o{.containers = 12, .ports = 3, .networks = 3, .seed = 5};
  const std::string a = generate_docker_ruleset(o);
  EXPECT_EQ(a, generate_docker_ruleset(o));
  DockerGenOptions other = o;
  other.seed = 6;
  const std::string b = generate_docker_ruleset(other);
  EXPECT_NE(a, b);
  // Only bridge names and container ports move with the seed.
  const auto shape = [](const std::string& text) {
    std::string s = replace_all(strip_comment_lines(text), "br-[0-9a-f]{12}", "BR");
    s = replace_all(s, "--dport [0-9]+ -j ACCEPT", "--dport P -j ACCEPT");
    return replace_all(s, ":[0-9]+\n", ":P\n");
  };
  EXPECT_EQ(shape(a), shape(b));
  EXPECT_NE(replace_all(a, "br-[0-9a-f]{12}", "BR"), replace_all(b, "br-[0-9a-f]{12}", "BR"))
      << "the seed draws the container ports too";
}

TEST(DockerGen, RuleCountsPerChain) {
  const std::vector<DockerGenOptions> sizes{
      {.containers = 1, .ports = 1, .networks = 1, .seed = 1},
      {.containers = 10, .ports = 3, .networks = 2, .seed = 2},
      {.containers = 100, .ports = 2, .networks = 4, .seed = 3},
      {.containers = 0, .ports = 4, .networks = 3, .seed = 4},
      {.containers = 40, .ports = 1, .networks = 20, .seed = 5},  // /20s of 192.168.0.0/16 too
      {.containers = 1, .ports = 2000, .networks = 1, .seed = 6},  // more ports than common ones
  };
  for (const DockerGenOptions& o : sizes) {
    SCOPED_TRACE(::testing::Message() << o.containers << " containers x " << o.ports << " ports on " << o.networks
                                      << " networks");
    const Ruleset rs = read_iptables_save(generate_docker_ruleset(o), "gen");
    const size_t c = o.containers, k = o.networks, total = c * o.ports;
    const size_t loopback = count_ports(total, {1});
    const std::map<std::string, size_t> expected{
        {"raw/PREROUTING", c + loopback},
        {"raw/OUTPUT", 0},
        {"filter/INPUT", 0},
        {"filter/FORWARD", 2},
        {"filter/OUTPUT", 0},
        {"filter/DOCKER", total + k},
        {"filter/DOCKER-BRIDGE", k},
        {"filter/DOCKER-CT", k},
        {"filter/DOCKER-FORWARD", 3 + k},
        {"filter/DOCKER-ISOLATION-STAGE-1", k},
        {"filter/DOCKER-ISOLATION-STAGE-2", k},
        {"filter/DOCKER-USER", 0},
        {"nat/PREROUTING", 1},
        {"nat/INPUT", 0},
        {"nat/OUTPUT", 1},
        {"nat/POSTROUTING", k},
        {"nat/DOCKER", k + total},
    };
    EXPECT_EQ(rule_counts(rs), expected);
    ASSERT_EQ(rs.tables.size(), 3U);
    EXPECT_EQ(rs.tables[0].id, TableId::Raw);
    EXPECT_EQ(rs.tables[1].id, TableId::Filter);
    EXPECT_EQ(rs.tables[2].id, TableId::Nat);

    // The bridges: docker0 first, then distinct br-<12 hex>; one MASQUERADE
    // per subnet, the latest network first.
    const Chain& post = chain(rs, TableId::Nat, "POSTROUTING");
    std::set<std::string> bridges;
    for (size_t i = 0; i < k; ++i) {
      const Rule& r = post.rules[k - 1 - i];
      const uint32_t subnet = i < 15 ? (172U << 24 | (17U + static_cast<uint32_t>(i)) << 16)
                                     : (192U << 24 | 168U << 16 | (static_cast<uint32_t>(i) - 15) * 16 << 8);
      EXPECT_EQ(r.src.addr, subnet) << i;
      EXPECT_EQ(r.src.mask, prefix_mask(i < 15 ? 16 : 20)) << i;
      EXPECT_TRUE(std::holds_alternative<MasqueradeTarget>(r.target));
      EXPECT_TRUE(r.out_iface.invert);
      if (i == 0) {
        EXPECT_EQ(r.out_iface.name, "docker0");
      } else {
        EXPECT_TRUE(std::regex_match(r.out_iface.name, std::regex("br-[0-9a-f]{12}"))) << r.out_iface.name;
      }
      bridges.insert(r.out_iface.name);
    }
    EXPECT_EQ(bridges.size(), k);

    // The DNAT rules: host ports 10000 up in order, every tenth from the
    // second on 127.0.0.1, the third and eighth of every ten UDP; each
    // container on its bridge's subnet, with an ACCEPT in filter DOCKER for
    // the same address, protocol, port and bridge.
    using Published = std::tuple<uint32_t, uint8_t, uint16_t, std::string>;
    std::multiset<Published> dnat, accept;
    std::set<uint32_t> containers;
    size_t g = 0, udp = 0;
    for (const Rule& r : chain(rs, TableId::Nat, "DOCKER").rules) {
      const auto* d = std::get_if<DnatTarget>(&r.target);
      if (d == nullptr) continue;
      EXPECT_EQ(dport(r), 10000 + g);
      EXPECT_EQ(r.dst.mask != 0, g % 10 == 1) << g;
      if (r.dst.mask != 0) {
        EXPECT_EQ(r.dst.addr, 0x7f000001U);
      }
      EXPECT_EQ(r.protocol, g % 10 == 2 || g % 10 == 7 ? 17 : 6) << g;
      udp += r.protocol == 17;
      EXPECT_TRUE(r.in_iface.invert);
      dnat.insert({d->range.addr_lo, r.protocol, d->range.port_lo, r.in_iface.name});
      containers.insert(d->range.addr_lo);
      ++g;
    }
    EXPECT_EQ(g, total);
    EXPECT_EQ(udp, count_ports(total, {2, 7}));
    for (const Rule& r : chain(rs, TableId::Filter, "DOCKER").rules) {
      if (std::holds_alternative<AcceptTarget>(r.target)) {
        EXPECT_EQ(r.dst.mask, 0xffffffffU);
        accept.insert({r.dst.addr, r.protocol, dport(r), r.out_iface.name});
      }
    }
    EXPECT_EQ(dnat, accept);
    if (o.ports > 0) {
      EXPECT_EQ(containers.size(), c);
    }
    // A container's ports are distinct; its raw DROP names its bridge.
    std::set<std::tuple<uint32_t, uint8_t, uint16_t>> distinct;
    for (const Published& p : dnat) distinct.insert({std::get<0>(p), std::get<1>(p), std::get<2>(p)});
    EXPECT_EQ(distinct.size(), total);
    std::map<uint32_t, std::string> raw_drop;
    for (const Rule& r : chain(rs, TableId::Raw, "PREROUTING").rules) {
      if (r.in_iface.name != "lo") raw_drop[r.dst.addr] = r.in_iface.name;
    }
    EXPECT_EQ(raw_drop.size(), c);
    for (const Published& p : dnat) EXPECT_EQ(raw_drop[std::get<0>(p)], std::get<3>(p));
  }
}

// The layout of docker-28.save (3 containers, 1 port each, 2 networks) gives
// its rules in its order; only the bridge name and the port numbers differ.
TEST(DockerGen, SameRulesAsTheDocker28Dump) {
  const std::string dump = read_file(source_root() / "data/rulesets/docker-28.save");
  ASSERT_FALSE(dump.empty());
  const Ruleset want = read_iptables_save(dump, "docker-28.save");
  for (const uint64_t seed : {1U, 2U, 3U}) {
    SCOPED_TRACE(seed);
    const std::string text = generate_docker_ruleset({.containers = 3, .ports = 1, .networks = 2, .seed = seed});
    const Ruleset got = read_iptables_save(text, "gen");
    EXPECT_EQ(rule_counts(got), rule_counts(want));
    const auto shape = [](const std::string& canonical_text) {
      std::string s = replace_all(canonical_text, "br-[0-9a-f]{12}", "BRIDGE");
      s = replace_all(s, "--dport [0-9]+", "--dport PORT");
      return replace_all(s, "--to-destination ([0-9.]+):[0-9]+", "--to-destination $1:PORT");
    };
    EXPECT_EQ(shape(write_iptables_save(got)), shape(write_iptables_save(want)));
  }
}

// What the generator writes is what iptables-save prints back (comments aside).
TEST(DockerGen, TextIsCanonical) {
  for (const DockerGenOptions& o : {DockerGenOptions{.containers = 7, .ports = 3, .networks = 2, .seed = 9},
                                    DockerGenOptions{.containers = 50, .ports = 1, .networks = 17, .seed = 1}}) {
    const std::string text = generate_docker_ruleset(o);
    EXPECT_EQ(strip_comment_lines(text), canonical(text));
  }
}

TEST(DockerGen, BuildsAPipeline) {
  for (const DockerGenOptions& o : {DockerGenOptions{.containers = 1, .ports = 1, .networks = 1, .seed = 1},
                                    DockerGenOptions{.containers = 10, .ports = 3, .networks = 2, .seed = 1},
                                    DockerGenOptions{.containers = 100, .ports = 2, .networks = 5, .seed = 1}}) {
    const Ruleset rs = read_iptables_save(generate_docker_ruleset(o), "gen");
    EXPECT_NO_THROW(Pipeline::build(rs, default_docker_host())) << o.containers;
  }
}

TEST(DockerGen, OptionsOutOfRange) {
  EXPECT_THROW(generate_docker_ruleset({.containers = 1, .ports = 1, .networks = 0}), std::invalid_argument);
  EXPECT_THROW(generate_docker_ruleset({.containers = 1, .ports = 1, .networks = 32}), std::invalid_argument);
  EXPECT_THROW(generate_docker_ruleset({.containers = 55537, .ports = 1, .networks = 1}), std::invalid_argument);
  EXPECT_NO_THROW(generate_docker_ruleset({.containers = 27768, .ports = 2, .networks = 1}));
  EXPECT_NO_THROW(generate_docker_ruleset({.containers = 1, .ports = 55536, .networks = 1}));
  // 31 networks of 4094 containers: the /20s of 192.168 hold 4093.
  EXPECT_THROW(generate_docker_ruleset({.containers = 31 * 4094, .ports = 0, .networks = 31}),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Kubernetes

size_t services_where(uint32_t services, uint32_t mod, uint32_t rest) {
  size_t n = 0;
  for (uint32_t i = 0; i < services; ++i) n += i % mod == rest;
  return n;
}

TEST(KubeGen, SameOptionsSameBytes) {
  const KubeGenOptions o{.services = 40, .endpoints = 3, .seed = 8};
  const std::string a = generate_kube_ruleset(o);
  EXPECT_EQ(a, generate_kube_ruleset(o));
  KubeGenOptions other = o;
  other.seed = 9;
  const std::string b = generate_kube_ruleset(other);
  EXPECT_NE(a, b);
  // The seed moves hashes, ports and node ports, not the number of rules.
  EXPECT_EQ(rule_counts(read_iptables_save(a, "a")).size(), rule_counts(read_iptables_save(b, "b")).size());
}

// KUBE-(SVC|SEP|EXT)-<16 base32 characters>, the names kube-proxy hashes.
// (A loop, not std::regex: this runs for every chain of 1000-service sets.)
bool is_hashed_kube_chain(std::string_view name) {
  constexpr std::string_view kinds[] = {"KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-"};
  if (name.size() != 9 + 16 ||
      std::none_of(std::begin(kinds), std::end(kinds), [&](std::string_view k) { return name.starts_with(k); })) {
    return false;
  }
  return std::all_of(name.begin() + 9, name.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'); });
}

TEST(KubeGen, RuleCountsPerChain) {
  for (uint32_t services : {10U, 1000U}) {
    for (uint32_t endpoints = 1; endpoints <= 5; ++endpoints) {
      SCOPED_TRACE(::testing::Message() << services << " services x " << endpoints << " endpoints");
      const Ruleset rs = read_iptables_save(generate_kube_ruleset({services, endpoints, services + endpoints}), "gen");
      const size_t nodeports = services_where(services, 4, 1);
      std::map<std::string, size_t> fixed, svc, sep, ext;
      for (const auto& [name, n] : rule_counts(rs)) {
        const std::string chain_name = name.substr(name.find('/') + 1);
        if (!is_hashed_kube_chain(chain_name)) {
          fixed[name] = n;
        } else if (chain_name.starts_with("KUBE-SVC-")) {
          svc[chain_name] = n;
        } else if (chain_name.starts_with("KUBE-SEP-")) {
          sep[chain_name] = n;
        } else {
          ext[chain_name] = n;
        }
      }
      const std::map<std::string, size_t> expected{
          {"filter/INPUT", 4},
          {"filter/FORWARD", 4},
          {"filter/OUTPUT", 3},
          {"filter/KUBE-EXTERNAL-SERVICES", 0},
          {"filter/KUBE-FIREWALL", 1},
          {"filter/KUBE-FORWARD", 3},
          {"filter/KUBE-KUBELET-CANARY", 0},
          {"filter/KUBE-NODEPORTS", 0},
          {"filter/KUBE-PROXY-CANARY", 0},
          {"filter/KUBE-PROXY-FIREWALL", 0},
          {"filter/KUBE-SERVICES", 0},
          {"nat/PREROUTING", 1},
          {"nat/INPUT", 0},
          {"nat/OUTPUT", 1},
          {"nat/POSTROUTING", 1},
          {"nat/KUBE-KUBELET-CANARY", 0},
          {"nat/KUBE-MARK-MASQ", 1},
          {"nat/KUBE-NODEPORTS", nodeports},
          {"nat/KUBE-POSTROUTING", 3},
          {"nat/KUBE-PROXY-CANARY", 0},
          {"nat/KUBE-SERVICES", services + 1U},
      };
      EXPECT_EQ(fixed, expected);
      EXPECT_EQ(svc.size(), services);
      EXPECT_EQ(sep.size(), size_t{services} * endpoints);
      EXPECT_EQ(ext.size(), nodeports);
      for (const auto& [name, n] : svc) EXPECT_EQ(n, endpoints + 1U) << name;
      for (const auto& [name, n] : sep) EXPECT_EQ(n, 2U) << name;
      for (const auto& [name, n] : ext) {
        EXPECT_EQ(n, 2U) << name;
        EXPECT_TRUE(svc.contains("KUBE-SVC-" + name.substr(9))) << name << " shares its service's hash";
      }

      // KUBE-SERVICES: cluster IPs 172.30.0.1 up, one jump per KUBE-SVC chain;
      // every endpoint a different pod; UDP where i mod 8 = 3.
      const Chain& services_chain = chain(rs, TableId::Nat, "KUBE-SERVICES");
      std::set<std::string> jumped;
      size_t udp = 0;
      for (uint32_t i = 0; i < services; ++i) {
        const Rule& r = services_chain.rules[i];
        EXPECT_EQ(r.dst.addr, (172U << 24 | 30U << 16) + 1 + i);
        EXPECT_EQ(r.protocol, i % 8 == 3 ? 17 : 6) << i;
        udp += r.protocol == 17;
        jumped.insert(std::get<JumpTarget>(r.target).chain);
      }
      EXPECT_EQ(jumped.size(), services);
      for (const std::string& s : jumped) EXPECT_TRUE(svc.contains(s)) << s;
      EXPECT_EQ(udp, services_where(services, 8, 3));
      std::set<uint32_t> pods;
      for (const auto& [name, n] : sep) {
        const Rule& dnat = chain(rs, TableId::Nat, name).rules[1];
        pods.insert(std::get<DnatTarget>(dnat.target).range.addr_lo);
        EXPECT_EQ(chain(rs, TableId::Nat, name).rules[0].src.addr, std::get<DnatTarget>(dnat.target).range.addr_lo);
      }
      EXPECT_EQ(pods.size(), sep.size());
      std::set<uint16_t> node_ports;
      for (const Rule& r : chain(rs, TableId::Nat, "KUBE-NODEPORTS").rules) {
        EXPECT_GE(dport(r), 30000);
        EXPECT_LE(dport(r), 32767);
        node_ports.insert(dport(r));
      }
      EXPECT_EQ(node_ports.size(), nodeports);
    }
  }
}

// Endpoint j of n is picked with probability 1/(n-j) (printed with kube-proxy's
// 10 decimals), so each gets 1/n of the connections.
TEST(KubeGen, EveryEndpointGetsAnEqualShare) {
  for (uint32_t endpoints = 1; endpoints <= 7; ++endpoints) {
    SCOPED_TRACE(endpoints);
    const std::string text = generate_kube_ruleset({.services = 3, .endpoints = endpoints, .seed = 1});
    for (uint32_t j = 0; j + 1 < endpoints; ++j) {
      const std::string printed = fmt::format("--probability {:.10f} -j KUBE-SEP-", 1.0 / (endpoints - j));
      EXPECT_NE(text.find(printed), std::string::npos) << printed;
    }
    const Ruleset rs = read_iptables_save(text, "gen");
    const Table& nat = *rs.find_table(TableId::Nat);
    size_t chains = 0;
    for (const Chain& c : nat.chains) {
      if (!c.name.starts_with("KUBE-SVC-")) continue;
      ++chains;
      ASSERT_EQ(c.rules.size(), endpoints + 1U);
      double left = 1.0;  // share of connections not yet taken by an earlier rule
      for (uint32_t j = 0; j < endpoints; ++j) {
        const Rule& r = c.rules[1 + j];
        const auto* s = find_match<StatisticMatch>(r);
        ASSERT_EQ(s == nullptr, j + 1 == endpoints) << c.name << " rule " << j;
        const double p = s == nullptr ? 1.0 : static_cast<double>(s->probability) / StatisticMatch::kProbabilityOne;
        if (s != nullptr) {
          EXPECT_EQ(s->probability, static_cast<uint32_t>(std::lround(2147483648.0 / (endpoints - j)))) << c.name << " rule " << j;
        }
        EXPECT_NEAR(left * p, 1.0 / endpoints, 1e-9) << c.name << " endpoint " << j;
        left *= 1.0 - p;
        EXPECT_TRUE(std::get<JumpTarget>(r.target).chain.starts_with("KUBE-SEP-"));
      }
      EXPECT_NEAR(left, 0.0, 1e-12);
    }
    EXPECT_EQ(chains, 3U);
  }
}

// Every kind of rule of kube-proxy.save, and no other: the lines with
// hashes, addresses, ports, service names and probabilities taken out.
TEST(KubeGen, SameRuleKindsAsTheKubeProxyDump) {
  const auto kinds = [](const std::string& canonical_text) {
    std::string s = replace_all(canonical_text, "KUBE-(SVC|SEP|EXT)-[A-Z2-7]{16}", "KUBE-$1-HASH");
    s = replace_all(s, "ns[0-9]+/svc[0-9]+:p[0-9]+", "NAME");
    s = replace_all(s, "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+", "ADDR");
    s = replace_all(s, "(--dport |ADDR:)[0-9]+", "$1PORT");
    s = replace_all(s, "--probability [0-9.]+", "--probability P");
    std::set<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) lines.insert(line);
    return lines;
  };
  const std::string dump = read_file(source_root() / "data/rulesets/kube-proxy.save");
  ASSERT_FALSE(dump.empty());
  const std::set<std::string> want = kinds(canonical(dump));
  const std::set<std::string> got = kinds(canonical(generate_kube_ruleset({.services = 20, .endpoints = 3, .seed = 1})));
  for (const std::string& k : want) EXPECT_TRUE(got.contains(k)) << "missing: " << k;
  for (const std::string& k : got) EXPECT_TRUE(want.contains(k)) << "not in the dump: " << k;
  EXPECT_EQ(got.size(), want.size());
}

// Canonical but for the probabilities, which the kernel keeps as 31-bit
// fixed point and prints with 11 decimals.
TEST(KubeGen, TextIsCanonicalButForTheProbabilities) {
  const std::string text = generate_kube_ruleset({.services = 30, .endpoints = 4, .seed = 2});
  const std::string fixed = replace_all(
      replace_all(replace_all(strip_comment_lines(text), "--probability 0\\.2500000000 ", "--probability 0.25000000000 "),
                  "--probability 0\\.3333333333 ", "--probability 0.33333333349 "),
      "--probability 0\\.5000000000 ", "--probability 0.50000000000 ");
  EXPECT_NE(fixed, strip_comment_lines(text));
  EXPECT_EQ(fixed, canonical(text));
}

TEST(KubeGen, BuildsAPipeline) {
  for (const KubeGenOptions& o : {KubeGenOptions{.services = 10, .endpoints = 1, .seed = 1},
                                  KubeGenOptions{.services = 1000, .endpoints = 5, .seed = 1}}) {
    const Ruleset rs = read_iptables_save(generate_kube_ruleset(o), "gen");
    EXPECT_NO_THROW(Pipeline::build(rs, default_docker_host())) << o.services;
  }
}

TEST(KubeGen, OptionsOutOfRange) {
  EXPECT_THROW(generate_kube_ruleset({.services = 0, .endpoints = 1}), std::invalid_argument);
  EXPECT_THROW(generate_kube_ruleset({.services = 65535, .endpoints = 1}), std::invalid_argument);
  EXPECT_THROW(generate_kube_ruleset({.services = 10, .endpoints = 0}), std::invalid_argument);
  EXPECT_THROW(generate_kube_ruleset({.services = 40000, .endpoints = 101}), std::invalid_argument);
  // More NodePort services than the range 30000-32767 holds: the rest stay ClusterIP.
  const Ruleset rs = read_iptables_save(generate_kube_ruleset({.services = 12000, .endpoints = 1}), "gen");
  EXPECT_EQ(chain(rs, TableId::Nat, "KUBE-NODEPORTS").rules.size(), 32768U - 30000U);
}

// ---------------------------------------------------------------------------
// nfbench gen docker|kube

CommandResult nfbench(std::vector<std::string> args) {
  const char* build = std::getenv("NFB_BUILD_ROOT");
  args.insert(args.begin(), std::string(build != nullptr ? build : ".") + "/tools/nfbench");
  return run_command(args);
}

TEST(NfbenchGen, WritesTheGeneratorsText) {
  const CommandResult docker =
      nfbench({"gen", "docker", "--containers", "4", "--ports", "2", "--networks", "2", "--seed", "7"});
  ASSERT_EQ(docker.exit_code, 0) << docker.describe();
  EXPECT_EQ(docker.out, generate_docker_ruleset({.containers = 4, .ports = 2, .networks = 2, .seed = 7}));
  const CommandResult defaults = nfbench({"gen", "docker", "--containers", "4", "--ports", "2"});
  EXPECT_EQ(defaults.out, generate_docker_ruleset({.containers = 4, .ports = 2, .networks = 1, .seed = 1}));

  const std::string path = ::testing::TempDir() + "/gen-kube.save";
  std::filesystem::remove(path);
  const CommandResult kube = nfbench({"gen", "kube", "--services", "25", "--endpoints", "3", "-o", path});
  ASSERT_EQ(kube.exit_code, 0) << kube.describe();
  EXPECT_EQ(kube.out, "");
  EXPECT_EQ(read_file(path), generate_kube_ruleset({.services = 25, .endpoints = 3, .seed = 1}));

  const CommandResult bad = nfbench({"gen", "docker", "--containers", "1", "--ports", "1", "--networks", "0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "nfbench: networks: 0 is not in 1 .. 31\n");
  const CommandResult missing = nfbench({"gen", "kube", "--services", "3"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("--endpoints"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace nfb
