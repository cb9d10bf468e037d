// Lint: rules that cannot do what they say, found before any traffic flows.
//
//   published-port   a filter rule reached from FORWARD that tests a
//                    published host port (`--dport P`) which a nat DNAT rule
//                    has already rewritten by the time filter runs: the
//                    seed case, `-A DOCKER-USER -p tcp --dport 10000 -j DROP`
//                    for a container published as 10000->6379. Evidence
//                    comes from the model itself: a probe packet to the
//                    host's port P is run through the pipeline (explain.h)
//                    and is seen in the rule's chain with the rewritten
//                    tuple while the rule stays unmatched. The suggested
//                    fix (`-m conntrack --ctorigdstport P --ctdir ORIGINAL`
//                    in place of `--dport P`) is checked the same way: the
//                    probe must match it.
//   shadowed         a rule every packet of which an earlier rule of the
//                    same chain has already ended the walk for (ACCEPT,
//                    DROP, REJECT, RETURN, goto, a NAT target): the rules'
//                    classifier boxes (chain_boxes.h) are subtracted from the
//                    later rule's, and nothing is left. Only rules whose
//                    boxes are exact (no residual match) take part, so a
//                    rule is never called shadowed on a guess.
//   unreferenced     a user chain with rules that no rule of its table
//                    jumps or goes to: its rules never run.
//
// Control plane: allocates, may throw what Pipeline::build throws.
#pragma once

#include <string>
#include <vector>

#include "netfilter/host.h"
#include "rules/rule.h"

namespace nfb {

struct LintFinding {
  std::string kind;      // "published-port", "shadowed", "unreferenced"
  SourceLocation where;  // the rule (or chain declaration) in question
  std::string message;
  std::vector<std::string> evidence;
  std::string fix;  // a suggested replacement rule, when there is one
};

/// Every finding of the three checks above, in the ruleset's order of
/// tables, chains and rules. `ipsets`: the host's IP sets, which -m set
/// rules need (null: none; such a rule is then refused).
std::vector<LintFinding> lint_ruleset(const Ruleset& rules, const HostModel& host, IpSets* ipsets = nullptr);

/// "FILE:LINE:COL: kind: message" with the evidence and the fix indented below.
std::string format_lint(const std::vector<LintFinding>& findings);

}  // namespace nfb
