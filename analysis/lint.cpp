#include "analysis/lint.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "analysis/explain.h"
#include "netfilter/chain_boxes.h"
#include "netfilter/chain_walk.h"
#include "netfilter/pipeline.h"
#include "rules/iptables_save.h"

namespace nfb {
namespace {

constexpr uint64_t kProbeTime = 1'000'000'000'000ULL;
constexpr uint32_t kProbeClient = 0xcb00714dU;  // 203.0.113.77 (TEST-NET-3)
constexpr uint16_t kProbeClientPort = 40000;
constexpr size_t kMaxPieces = 4096;  // box subtraction gives up beyond this

std::string rule_line(const Chain& c, const Rule& r) { return fmt::format("-A {} {}", c.name, write_rule_spec(r)); }

const Table* table_of(const Ruleset& rs, TableId id) {
  for (const Table& t : rs.tables) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

// Chains a built-in chain reaches through jumps and gotos.
std::set<uint32_t> reachable(const Table& t, uint32_t from) {
  std::set<uint32_t> seen{from};
  std::vector<uint32_t> to_visit{from};
  while (!to_visit.empty()) {
    const uint32_t c = to_visit.back();
    to_visit.pop_back();
    for (const Rule& r : t.chains[c].rules) {
      std::optional<uint32_t> next;
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) next = t.find_chain(j->chain);
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) next = t.find_chain(g->chain);
      if (next && seen.insert(*next).second) to_visit.push_back(*next);
    }
  }
  return seen;
}

// The single destination port a tcp/udp rule tests (not inverted), if any.
struct PortTest {
  uint8_t proto = 0;
  PortRange dport;
  size_t match = 0;  // index in rule.matches
};
std::optional<PortTest> dport_test(const Rule& r) {
  if (r.protocol_invert || (r.protocol != kProtoTcp && r.protocol != kProtoUdp)) return std::nullopt;
  for (size_t i = 0; i < r.matches.size(); ++i) {
    if (const auto* t = std::get_if<TcpMatch>(&r.matches[i]); t != nullptr && !t->dport.is_any() && !t->dport_invert) {
      return PortTest{r.protocol, t->dport, i};
    }
    if (const auto* u = std::get_if<UdpMatch>(&r.matches[i]); u != nullptr && !u->dport.is_any() && !u->dport_invert) {
      return PortTest{r.protocol, u->dport, i};
    }
  }
  return std::nullopt;
}

bool tests_orig_ports(const Rule& r) {
  for (const Match& m : r.matches) {
    if (const auto* c = std::get_if<ConntrackMatch>(&m);
        c != nullptr && (c->has(ConntrackMatch::kOrigDstPort) || c->has(ConntrackMatch::kOrigDst))) {
      return true;
    }
  }
  return false;
}

// The rule with `--dport P` replaced by the conntrack test of the original
// destination port.
Rule conntrack_fix(const Rule& r, const PortTest& pt, uint16_t port) {
  Rule fix = r;
  if (auto* t = std::get_if<TcpMatch>(&fix.matches[pt.match])) t->dport = PortRange{};
  if (auto* u = std::get_if<UdpMatch>(&fix.matches[pt.match])) u->dport = PortRange{};
  // A protocol match left with nothing to test goes.
  const Match& m = fix.matches[pt.match];
  const bool empty = (std::holds_alternative<TcpMatch>(m) && std::get<TcpMatch>(m) == TcpMatch{}) ||
                     (std::holds_alternative<UdpMatch>(m) && std::get<UdpMatch>(m) == UdpMatch{});
  if (empty) fix.matches.erase(fix.matches.begin() + static_cast<std::ptrdiff_t>(pt.match));
  ConntrackMatch c;
  c.present = ConntrackMatch::kOrigDstPort | ConntrackMatch::kDir;
  c.orig_dst_port = PortRange{port, port};
  c.dir = ConntrackMatch::Dir::Original;
  fix.matches.insert(fix.matches.begin() + static_cast<std::ptrdiff_t>(std::min(pt.match, fix.matches.size())), c);
  fix.counters.reset();
  return fix;
}

// Whether the probe's walk hit rule `pos` (0-based) of filter chain `chain`.
bool hit(const Explanation& e, const std::string& chain, uint32_t pos) {
  for (const ExplainStep& s : e.steps) {
    if (s.table == "filter" && s.chain == chain && s.kind == "rule" && s.rulenum == pos + 1) return true;
  }
  return false;
}
const ExplainStep* first_step_in(const Explanation& e, const std::string& table, const std::string& chain) {
  for (const ExplainStep& s : e.steps) {
    if (s.table == table && s.chain == chain) return &s;
  }
  return nullptr;
}

// A probe to the published port of a DNAT rule: from outside, on an
// interface the rule accepts, to that interface's address (or the rule's
// own /32 destination).
std::optional<Probe> probe_for(const Rule& dnat, uint8_t proto, uint16_t port, const HostModel& host) {
  for (uint16_t id = 0; id < host.iface_count(); ++id) {
    const Interface& ifc = host.iface(id);
    if (ifc.loopback || ifc.addrs.empty()) continue;
    if (!dnat.in_iface.is_any() && !host.iface_matches(dnat.in_iface, id)) continue;
    Probe p;
    p.proto = proto;
    p.src = kProbeClient;
    p.sport = kProbeClientPort;
    p.dst = dnat.dst.mask == 0xffffffffU && !dnat.dst_invert ? dnat.dst.addr : ifc.addrs.front().local;
    p.dport = port;
    p.in_iface = ifc.name;
    return p;
  }
  return std::nullopt;
}

void check_published_ports(const Ruleset& rules, const HostModel& host, IpSets* ipsets,
                           std::vector<LintFinding>& out) {
  const Table* nat = table_of(rules, TableId::Nat);
  const Table* filter = table_of(rules, TableId::Filter);
  if (nat == nullptr || filter == nullptr) return;
  const auto fwd = filter->find_chain("FORWARD");
  if (!fwd) return;
  const std::set<uint32_t> forward_chains = reachable(*filter, *fwd);
  std::set<std::pair<uint32_t, uint32_t>> reported;  // (chain, pos) of filter rules
  for (const Chain& nc : nat->chains) {
    for (size_t di = 0; di < nc.rules.size(); ++di) {
      const Rule& dnat = nc.rules[di];
      if (!std::holds_alternative<DnatTarget>(dnat.target)) continue;
      const std::optional<PortTest> published = dport_test(dnat);
      if (!published || published->dport.lo != published->dport.hi) continue;
      const uint16_t port = published->dport.lo;
      const std::optional<Probe> probe = probe_for(dnat, published->proto, port, host);
      if (!probe) continue;
      std::unique_ptr<Pipeline> pipeline;  // built when a candidate needs it
      std::optional<Explanation> seen;
      for (const uint32_t ci : forward_chains) {
        const Chain& fc = filter->chains[ci];
        for (uint32_t pos = 0; pos < fc.rules.size(); ++pos) {
          const Rule& r = fc.rules[pos];
          const std::optional<PortTest> pt = dport_test(r);
          if (!pt || pt->proto != published->proto || !pt->dport.contains(port) || tests_orig_ports(r)) continue;
          if (reported.contains({ci, pos})) continue;
          if (!seen) {
            PipelineConfig cfg;
            cfg.conntrack.max_entries = 1024;
            cfg.match.ipsets = ipsets;
            pipeline = Pipeline::build(rules, host, cfg);
            seen = explain_probe(*pipeline, rules, host, *probe, kProbeTime);
          }
          // The probe must have been rewritten by this DNAT rule, reached
          // the rule's chain, and passed the rule by.
          bool by_this = false;
          for (const ExplainStep& s : seen->steps) {
            by_this |= s.table == "nat" && s.chain == nc.name && s.kind == "rule" && s.rulenum == di + 1;
          }
          const ExplainStep* at = first_step_in(*seen, "filter", fc.name);
          if (!by_this || at == nullptr || hit(*seen, fc.name, pos)) continue;
          reported.insert({ci, pos});
          LintFinding f;
          f.kind = "published-port";
          f.where = r.where;
          f.message = fmt::format(
              "never matches traffic to the published port {}: nat {} rewrites it before filter {} runs", port,
              nc.name, fc.name);
          f.evidence.push_back(fmt::format("{}: {}", dnat.where.str(), rule_line(nc, dnat)));
          f.evidence.push_back(fmt::format("probe {}", format_probe(*probe)));
          f.evidence.push_back(fmt::format("in filter {} it is {}: the rule does not match", fc.name, at->tuple));
          // The fix, checked on the same probe.
          Ruleset fixed = rules;
          for (Table& t : fixed.tables) {
            if (t.id == TableId::Filter) t.chains[ci].rules[pos] = conntrack_fix(r, *pt, port);
          }
          PipelineConfig cfg;
          cfg.conntrack.max_entries = 1024;
          cfg.match.ipsets = ipsets;
          auto fixed_pipeline = Pipeline::build(fixed, host, cfg);
          const Explanation after = explain_probe(*fixed_pipeline, fixed, host, *probe, kProbeTime);
          const Rule& fix_rule = table_of(fixed, TableId::Filter)->chains[ci].rules[pos];
          if (hit(after, fc.name, pos)) {
            f.fix = rule_line(fc, fix_rule);
            f.evidence.push_back("with the fix the probe matches it (" + std::string(fate_name(after.fate)) + ")");
          } else {
            f.fix = fmt::format("match the post-DNAT tuple instead: {}", at->tuple);
          }
          out.push_back(std::move(f));
        }
      }
    }
  }
}

// ---------------------------------------------------------------- shadowing

bool overlaps(const Box& a, const Box& b) {
  for (unsigned d = 0; d < kDims; ++d) {
    if (a.r[d].hi < b.r[d].lo || b.r[d].hi < a.r[d].lo) return false;
  }
  return true;
}

// a minus b, as disjoint boxes appended to out.
void subtract(const Box& a, const Box& b, std::vector<Box>& out) {
  if (!overlaps(a, b)) {
    out.push_back(a);
    return;
  }
  Box rest = a;
  for (unsigned d = 0; d < kDims; ++d) {
    if (rest.r[d].lo < b.r[d].lo) {
      Box below = rest;
      below.r[d].hi = b.r[d].lo - 1;
      out.push_back(below);
      rest.r[d].lo = b.r[d].lo;
    }
    if (rest.r[d].hi > b.r[d].hi) {
      Box above = rest;
      above.r[d].lo = b.r[d].hi + 1;
      out.push_back(above);
      rest.r[d].hi = b.r[d].hi;
    }
  }
}

void check_shadowed(const Ruleset& rules, const HostModel& host, IpSets* ipsets, std::vector<LintFinding>& out) {
  WalkOptions wo;
  wo.match.ipsets = ipsets;
  for (const Table& t : rules.tables) {
    const ChainWalker walker = ChainWalker::build(t, host, wo);
    for (uint32_t ci = 0; ci < walker.chain_count(); ++ci) {
      const Chain& chain = t.chains[ci];
      const RuleBoxes rb = chain_boxes(walker, ci, host, chain_box_context(walker, ci));
      std::vector<std::vector<const Box*>> by_rule(rb.rules);
      std::vector<bool> exact(rb.rules, true);
      for (const Box& b : rb.boxes) {
        by_rule[b.position].push_back(&b);
        if (b.residual) exact[b.position] = false;
      }
      for (uint32_t j = 1; j < rb.rules; ++j) {
        if (!exact[j] || by_rule[j].empty()) continue;
        std::vector<Box> left;
        for (const Box* b : by_rule[j]) left.push_back(*b);
        std::vector<uint32_t> shadowing;
        bool gave_up = false;
        for (uint32_t i = 0; i < j && !left.empty() && !gave_up; ++i) {
          if (!exact[i] || !is_terminal(chain.rules[i].target)) continue;
          bool used = false;
          for (const Box* b : by_rule[i]) {
            std::vector<Box> next;
            for (const Box& piece : left) {
              if (overlaps(piece, *b)) used = true;
              subtract(piece, *b, next);
            }
            left.swap(next);
            if (left.size() > kMaxPieces) {
              gave_up = true;
              break;
            }
          }
          if (used) shadowing.push_back(i);
        }
        if (gave_up || !left.empty() || shadowing.empty()) continue;
        LintFinding f;
        f.kind = "shadowed";
        f.where = chain.rules[j].where;
        f.message = fmt::format("never matches: every packet it would match is decided by {} earlier rule{} of {} {}",
                                shadowing.size(), shadowing.size() == 1 ? "" : "s", table_name(t.id), chain.name);
        for (const uint32_t i : shadowing) {
          f.evidence.push_back(fmt::format("{}: {}", chain.rules[i].where.str(), rule_line(chain, chain.rules[i])));
        }
        out.push_back(std::move(f));
      }
    }
  }
}

void check_unreferenced(const Ruleset& rules, std::vector<LintFinding>& out) {
  for (const Table& t : rules.tables) {
    std::set<std::string> targets;
    for (const Chain& c : t.chains) {
      for (const Rule& r : c.rules) {
        if (const auto* j = std::get_if<JumpTarget>(&r.target)) targets.insert(j->chain);
        if (const auto* g = std::get_if<GotoTarget>(&r.target)) targets.insert(g->chain);
      }
    }
    for (const Chain& c : t.chains) {
      if (c.builtin() || c.rules.empty() || targets.contains(c.name)) continue;
      LintFinding f;
      f.kind = "unreferenced";
      f.where = c.where;
      f.message = fmt::format("chain {} of table {} has {} rule{} but nothing jumps or goes to it", c.name,
                              table_name(t.id), c.rules.size(), c.rules.size() == 1 ? "" : "s");
      out.push_back(std::move(f));
    }
  }
}

}  // namespace

std::vector<LintFinding> lint_ruleset(const Ruleset& rules, const HostModel& host, IpSets* ipsets) {
  std::vector<LintFinding> out;
  check_published_ports(rules, host, ipsets, out);
  check_shadowed(rules, host, ipsets, out);
  check_unreferenced(rules, out);
  return out;
}

std::string format_lint(const std::vector<LintFinding>& findings) {
  std::string s;
  for (const LintFinding& f : findings) {
    s += fmt::format("{}: {}: {}\n", f.where.str(), f.kind, f.message);
    for (const std::string& e : f.evidence) s += fmt::format("    {}\n", e);
    if (!f.fix.empty()) s += fmt::format("  fix: {}\n", f.fix);
  }
  s += findings.empty() ? "no findings\n"
                        : fmt::format("{} finding{}\n", findings.size(), findings.size() == 1 ? "" : "s");
  return s;
}

}  // namespace nfb
