// The rule model: what an IPv4 iptables ruleset says, fully parsed.
//
// A Ruleset holds tables (raw, mangle, nat, filter, security) in the order they were
// given; a Table holds its chains (the table's built-in chains first, in hook
// order, then user chains in declaration order); a Chain holds its rules in
// order. A Rule is the core match (addresses, interfaces, protocol,
// fragment), then module matches in the order they were loaded (one struct
// per module in the `Match` variant), then one `Target`. Jump/goto targets
// carry the index of the chain they enter, resolved at load time, so a walk
// never looks a name up.
//
// Every value is already parsed into the form matching needs: numbers in
// host byte order, ranges as inclusive [lo, hi], addresses as (addr, mask),
// name lists as bit sets. Each option keeps its own invert flag. Nothing here
// is re-parsed per packet, and nothing here matches packets: the netfilter
// pipeline and the classifiers read these structs.
//
// The readers (iptables_save.h, classbench.h) build this model; the writer
// prints it back in the kernel's canonical iptables-save form. Helpers below
// give names, hooks and validity rules that several stages need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/load_error.h"
#include "rules/matches.h"
#include "rules/targets.h"
#include "rules/values.h"

namespace nfb {

// ---------------------------------------------------------------------------
// Matches and targets (the modules themselves: rules/matches/, rules/targets/)

/// The module name of a match ("tcp", "conntrack", ...; "ports" for PortsMatch).
const char* match_name(const Match& m) noexcept;

/// True when a rule with this target ends the walk of its chain once it
/// matches (ACCEPT, DROP, REJECT, RETURN, goto, DNAT, SNAT, MASQUERADE,
/// REDIRECT). Jump is not terminal (the walk may come back), nor are LOG,
/// MARK, CONNMARK, NOTRACK, CT, TRACE and no target.
bool is_terminal(const Target& t) noexcept;

/// "ACCEPT", "DNAT", the chain name for jump/goto, "" for no target.
std::string target_name(const Target& t);

/// Tables and hooks where a target may be used (the kernel's checks). Jump,
/// goto and the standard verdicts are valid everywhere.
TargetScope target_scope(const Target& t) noexcept;

/// What the chain walk does with a target.
WalkOp target_walk_op(const Target& t) noexcept;

/// Hooks from which a match may be used (mac and addrtype --limit-iface-*
/// are restricted); kAllHooks for the others.
HookMask match_hooks(const Match& m) noexcept;

// ---------------------------------------------------------------------------
// Rules, chains, tables

struct Rule {
  Ipv4Mask src, dst;  // -s/-d: addr already masked; mask 0 = any
  bool src_invert = false;
  bool dst_invert = false;
  IfaceMatch in_iface, out_iface;  // -i/-o
  uint8_t protocol = 0;            // -p: 0 = all
  bool protocol_invert = false;
  bool fragment = false;           // -f: only second and later fragments
  bool fragment_invert = false;    // ! -f: only unfragmented packets and first fragments
  std::vector<Match> matches;      // -m blocks, in order
  Target target;                   // NoTarget when there is no -j/-g
  std::optional<Counters> counters;  // `[pkts:bytes]` or -c, when given
  SourceLocation where;            // the rule's line (column of its -A/-I)
  /// Non-empty: the rule uses match modules or targets the model lacks
  /// ("ttl,TTL"; read with ReadOptions::unsupported_never_match). It never
  /// matches, and is printed back as `spec_text`, its words as written.
  std::string unsupported;
  std::string spec_text;
};


struct Chain {
  std::string name;
  std::optional<Hook> hook;  // set for built-in chains
  Policy policy = Policy::Accept;   // built-in chains only
  Counters policy_counters;         // built-in chains only
  std::vector<Rule> rules;
  SourceLocation where;  // its declaration, empty for an undeclared built-in chain
  bool builtin() const noexcept { return hook.has_value(); }
};

struct Table {
  TableId id = TableId::Filter;
  /// Built-in chains first (all of the table's hooks, in hook order), then
  /// user chains in declaration order. Jump/goto indices point in here.
  std::vector<Chain> chains;
  SourceLocation where;  // the `*table` line

  /// Index of the chain with this name, or nullopt. O(chains).
  std::optional<uint32_t> find_chain(std::string_view name) const noexcept;
  /// The built-in chain of a hook; nullptr when the table has no such hook.
  const Chain* builtin_chain(Hook h) const noexcept;
  /// A table with its built-in chains (policy ACCEPT) and no user chains.
  static Table make(TableId id);
};

struct Ruleset {
  std::vector<Table> tables;  // in the order they were given

  const Table* find_table(TableId id) const noexcept;
  Table* find_table(TableId id) noexcept;
  /// The table, appended (with its built-in chains) when missing.
  Table& get_or_add_table(TableId id);
};

/// For every chain of `table`, the hooks from which it is reached through
/// jumps and gotos (a built-in chain is reached from its own hook). Chains
/// reached from no hook get 0. Cost O(chains + rules). Tolerates loops.
std::vector<HookMask> chain_hooks(const Table& table);

/// The rules of `ruleset` that use what the model lacks (Rule::unsupported),
/// for reports: "FILE:LINE (ttl)" each.
std::vector<std::string> unsupported_rules(const Ruleset& ruleset);

}  // namespace nfb
