// iptables-save / iptables-restore text -> Ruleset (see iptables_save.h).
//
// A line is split into tokens the way iptables-restore does (whitespace
// separates, a double-quoted token may hold spaces, `\` escapes the next
// character inside quotes). A rule line is then read like iptables' getopt
// loop: the core options are always known; `-m NAME` and `-j NAME` make the
// module's or target's options visible. As with getopt_long, an exact name
// wins, the most recently loaded module wins among equal names, and an
// unambiguous prefix is accepted (`--to` for `--to-destination`). An option
// nobody knows loads the module of the rule's protocol (`-p tcp --dport 80`)
// once, then is retried.
//
// The table is checked at COMMIT the way the kernel checks it when the table
// is replaced: jump loops reachable from a hook, and targets/matches used
// from hooks they do not support.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "base/input_file.h"
#include "base/text.h"
#include "rules/iptables_save.h"
#include "rules/option_values.h"

namespace nfb {
namespace {

// ---------------------------------------------------------------------------
// Tokens

struct Token {
  std::string text;
  uint32_t col = 0;  // 1-based column of the token's first character
};

// ---------------------------------------------------------------------------
// Option tables

// Core options. Names are those of iptables' getopt table, so that prefixes
// are ambiguous where iptables finds them ambiguous.
enum CoreOpt : uint8_t {
  kCoreSource, kCoreDestination, kCoreProtocol, kCoreInIface, kCoreOutIface, kCoreFragment,
  kCoreJump, kCoreGoto, kCoreMatch, kCoreSetCounters, kCoreTable, kCoreCommand, kCoreOther,
};
constexpr OptDef kCoreOpts[] = {
    {"append", kCoreCommand, 1, false},     {"delete", kCoreCommand, 1, false},
    {"check", kCoreCommand, 1, false},      {"insert", kCoreCommand, 1, false},
    {"replace", kCoreCommand, 1, false},    {"list", kCoreCommand, 0, false},
    {"list-rules", kCoreCommand, 0, false}, {"flush", kCoreCommand, 0, false},
    {"zero", kCoreCommand, 0, false},       {"new-chain", kCoreCommand, 1, false},
    {"delete-chain", kCoreCommand, 0, false}, {"rename-chain", kCoreCommand, 1, false},
    {"policy", kCoreCommand, 1, false},     {"source", kCoreSource, 1, true},
    {"src", kCoreSource, 1, true},          {"destination", kCoreDestination, 1, true},
    {"dst", kCoreDestination, 1, true},     {"protocol", kCoreProtocol, 1, true},
    {"in-interface", kCoreInIface, 1, true}, {"jump", kCoreJump, 1, false},
    {"table", kCoreTable, 1, false},        {"match", kCoreMatch, 1, false},
    {"numeric", kCoreOther, 0, false},      {"out-interface", kCoreOutIface, 1, true},
    {"verbose", kCoreOther, 0, false},      {"wait", kCoreOther, 0, false},
    {"wait-interval", kCoreOther, 1, false}, {"exact", kCoreOther, 0, false},
    {"fragment", kCoreFragment, 0, true},   {"version", kCoreOther, 0, false},
    {"help", kCoreOther, 0, false},         {"line-numbers", kCoreOther, 0, false},
    {"modprobe", kCoreOther, 1, false},     {"set-counters", kCoreSetCounters, 2, false},
    {"goto", kCoreGoto, 1, false},          {"ipv4", kCoreOther, 0, false},
    {"ipv6", kCoreOther, 0, false},
};

struct ShortOpt {
  char c;
  uint8_t id;
  uint8_t nargs;
  bool invertible;
};
constexpr ShortOpt kCoreShort[] = {
    {'s', kCoreSource, 1, true},   {'d', kCoreDestination, 1, true}, {'p', kCoreProtocol, 1, true},
    {'i', kCoreInIface, 1, true},  {'o', kCoreOutIface, 1, true},    {'f', kCoreFragment, 0, true},
    {'j', kCoreJump, 1, false},    {'g', kCoreGoto, 1, false},       {'m', kCoreMatch, 1, false},
    {'c', kCoreSetCounters, 2, false}, {'t', kCoreTable, 1, false},
};

// The registries (rules/matches.h, rules/targets.h) as tables the reader
// looks names and options up in.
struct ModDef {
  const char* name;
  std::span<const OptDef> opts;
  bool loadable;  // `-m NAME` loads it (ClassBench's ports match is not iptables')
  Match (*make)();
  void (*option)(Match&, const ModuleOption&);
  /// check(), then finalize() when the module has one (iptables' final
  /// check filling defaults that depend on other options).
  void (*check)(Match&, const ModuleCheck&);
};
template <class M>
constexpr ModDef mod_def_of() {
  bool loadable = true;
  if constexpr (requires { M::kIptables; }) loadable = M::kIptables;
  return ModDef{M::kName, std::span<const OptDef>(M::kOptions), loadable, [] { return Match{M{}}; },
                [](Match& m, const ModuleOption& o) { std::get<M>(m).parse(o); },
                [](Match& m, const ModuleCheck& c) {
                  M& x = std::get<M>(m);
                  x.check(c);
                  if constexpr (requires { x.finalize(c); }) x.finalize(c);
                }};
}
template <class... Ms>
constexpr auto mod_defs(TypeList<Ms...>) {
  return std::array<ModDef, sizeof...(Ms)>{mod_def_of<Ms>()...};
}
constexpr auto kModules = mod_defs(MatchModules{});
using ModKind = uint8_t;  // index in kModules
const ModDef& mod_def(ModKind k) { return kModules[k]; }
/// The module `-m name` loads.
std::optional<ModKind> find_module(std::string_view name) {
  for (ModKind k = 0; k < kModules.size(); ++k) {
    if (kModules[k].loadable && name == kModules[k].name) return k;
  }
  return std::nullopt;
}

/// A target `-j NAME` finds by name: every target but the standard ones
/// (which have no options table and are resolved before).
struct TgtDef {
  const char* name;
  std::span<const OptDef> opts;
  bool named;
  Target (*make)();
  void (*option)(Target&, const ModuleOption&);
  void (*check)(const Target&, const ModuleCheck&);
};
template <class T>
constexpr TgtDef tgt_def_of() {
  if constexpr (requires { T::kOptions; }) {
    return TgtDef{T::kName, std::span<const OptDef>(T::kOptions), true, [] { return Target{T{}}; },
                  [](Target& t, const ModuleOption& o) { std::get<T>(t).parse(o); },
                  [](const Target& t, const ModuleCheck& c) { std::get<T>(t).check(c); }};
  } else {
    return TgtDef{"", {}, false, nullptr, nullptr, nullptr};
  }
}
template <class... Ts>
constexpr auto tgt_defs(TypeList<Ts...>) {
  return std::array<TgtDef, sizeof...(Ts)>{tgt_def_of<Ts>()...};
}
constexpr auto kTargets = tgt_defs(TargetModules{});
using TgtKind = uint8_t;  // index in kTargets
const TgtDef& tgt_def(TgtKind k) { return kTargets[k]; }

// Modules iptables has that this model does not: named in a clearer error.
constexpr const char* kUnsupportedModules[] = {
    "ah", "bpf", "cgroup", "cluster", "connbytes", "connlabel", "cpu", "dccp", "devgroup",
    "esp", "helper", "ipvs", "osf", "owner", "physdev", "policy", "quota", "rateest", "realm",
    "rpfilter", "socket", "tcpmss", "time", "u32", "udplite", "ipv6header", "icmp6",
};

constexpr const char* kUnsupportedTargets[] = {
    "QUEUE", "NFQUEUE", "ULOG", "AUDIT", "CLASSIFY", "CLUSTERIP", "CONNSECMARK", "ECN", "HMARK",
    "IDLETIMER", "LED", "NETMAP", "RATEEST", "SECMARK", "SET", "SYNPROXY", "TCPOPTSTRIP", "TEE", "TPROXY",
    "TTL",
};

// ---------------------------------------------------------------------------
// The reader

/// Where an option came from, for dispatch and for getopt's table order.
struct Provider {
  bool is_target;
  uint8_t kind;  // ModKind or TgtKind
};

struct ResolvedOpt {
  enum class Owner : uint8_t { Core, Module, Target, Skip } owner;  // Skip: an option of an unsupported module
  uint8_t kind = 0;  // ModKind / TgtKind for Module / Target
  const OptDef* def = nullptr;
  uint8_t core_id = 0;
  uint8_t nargs = 0;
  bool invertible = false;
};

/// A match module or target the model lacks, where a rule used it.
struct UnsupportedUse {
  uint32_t line = 0;
  uint32_t col = 0;
  std::string what;  // `match module "ttl"`, `target "TTL"`
};

/// Columns of a rule's target and matches, kept beside the rule while its
/// table is read, so that checks at COMMIT can point at the token.
struct RuleAux {
  uint32_t target_col = 0;
  std::vector<uint32_t> match_cols;
};

/// Chain name -> index in its table, so that a rule line costs O(1) chain
/// lookups whatever the number of chains.
using ChainIndex = std::unordered_map<std::string, uint32_t>;

std::optional<uint32_t> lookup_chain(const ChainIndex& index, const std::string& name) {
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

/// One loaded module instance of the rule being read.
struct Instance {
  ModKind kind;
  size_t match_index;  // in Rule::matches
  uint32_t seen = 0;   // option ids given (bit per id)
  uint32_t col = 0;    // where it was loaded (its -m, or the option that loaded it)
};

class Reader {
 public:
  Reader(std::string_view text, const std::string& file, const ReadOptions& options)
      : text_(text), file_(file), options_(options) {}

  Ruleset run();

 private:
  // --- errors
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const { fail_at(line_no_, col, msg); }
  [[noreturn]] void fail_at(uint32_t line, uint32_t col, const std::string& msg) const {
    SourceLocation where;
    where.file = file_;
    where.line = line;
    where.column = col;
    throw LoadError(std::move(where), msg);
  }
  SourceLocation here(uint32_t col) const {
    SourceLocation w;
    w.file = file_;
    w.line = line_no_;
    w.column = col;
    return w;
  }

  // --- lines
  std::vector<Token> tokenize(std::string_view line);
  void table_line(const std::vector<Token>& toks);
  void chain_line(const std::string_view line, uint32_t col);
  void commit_line(const std::vector<Token>& toks);
  void command_line(std::vector<Token> toks);
  Counters parse_counters(std::string_view text, uint32_t col, bool rule);
  void set_policy(uint32_t chain, const Token& policy_tok);
  void check_chain_name(const Token& tok);
  uint32_t existing_chain(const Token& tok);

  // --- rules
  void parse_rule(const std::vector<Token>& toks, size_t first, uint32_t chain_index,
                  std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);
  void finish_table();
  [[noreturn]] void fail_rule(const Rule& r, uint32_t col, const std::string& msg) const {
    fail_at(r.where.line, col != 0 ? col : r.where.column, msg);
  }

  std::string_view text_;
  const std::string& file_;
  ReadOptions options_;
  uint32_t line_no_ = 0;
  std::vector<UnsupportedUse> unsupported_;  // every use, reported together at the end
  // -m hashlimit table names seen in this file (every table of the
  // namespace shares them): true when created with --hashlimit-rate-match.
  std::map<std::string, bool, std::less<>> hashlimit_rate_match_;

  Ruleset ruleset_;
  bool in_table_ = false;
  Table table_;
  std::vector<std::vector<RuleAux>> aux_;  // per chain of table_, per rule
  ChainIndex chain_index_;                 // name -> index in table_.chains
  uint32_t table_line_ = 0;
};

// ---------------------------------------------------------------------------
// Tokenizer

std::vector<Token> Reader::tokenize(std::string_view line) {
  std::vector<Token> toks;
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    if (is_space(line[i])) {
      ++i;
      continue;
    }
    // A word runs to whitespace. A '"' opens a quoted part anywhere in it;
    // inside, a backslash takes the next character as is and the closing
    // '"' ends the word. Outside quotes a backslash is an ordinary character.
    Token t;
    t.col = static_cast<uint32_t>(i + 1);
    while (i < line.size() && !is_space(line[i])) {
      if (line[i] != '"') {
        t.text += line[i++];
        continue;
      }
      auto open_col = static_cast<uint32_t>(i + 1);
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '\\' && i < line.size()) {
          t.text += line[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          t.text += c;
        }
      }
      if (!closed) fail(open_col, "unterminated quoted string (expected a closing '\"')");
      break;
    }
    toks.push_back(std::move(t));
  }
  return toks;
}

// ---------------------------------------------------------------------------
// File structure

Ruleset Reader::run() {
  if (text_.find('\0') != std::string_view::npos) {
    size_t off = text_.find('\0');
    size_t line = 1 + static_cast<size_t>(std::count(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(off), '\n'));
    size_t line_start = text_.rfind('\n', off);
    size_t col = line_start == std::string_view::npos ? off + 1 : off - line_start;
    fail_at(static_cast<uint32_t>(line), static_cast<uint32_t>(col), "NUL byte in text input");
  }
  size_t pos = 0;
  while (pos <= text_.size()) {
    size_t nl = text_.find('\n', pos);
    std::string_view line = text_.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no_;
    pos = nl == std::string_view::npos ? text_.size() + 1 : nl + 1;

    size_t first = line.find_first_not_of(" \t\r\v\f");
    if (first == std::string_view::npos) continue;  // blank
    if (line[first] == '#') continue;               // comment
    auto col = static_cast<uint32_t>(first + 1);
    char c = line[first];
    if (c == '*') {
      table_line(tokenize(line));
    } else if (c == ':') {
      chain_line(line.substr(first), col);
    } else {
      auto toks = tokenize(line);
      if (toks[0].text == "COMMIT") {
        commit_line(toks);
      } else {
        command_line(std::move(toks));
      }
    }
  }
  if (!unsupported_.empty() && !options_.unsupported_never_match) {
    // Every rule that uses what the model lacks, at once, so that one run
    // says what a ruleset needs.
    const UnsupportedUse& u0 = unsupported_.front();
    std::string also;
    for (size_t i = 1; i < unsupported_.size() && i < 20; ++i) {
      also += fmt::format("{}{}:{} {}", i == 1 ? "; also at " : ", ", unsupported_[i].line, unsupported_[i].col,
                          unsupported_[i].what);
    }
    if (unsupported_.size() > 20) also += fmt::format(" and {} more", unsupported_.size() - 20);
    fail_at(u0.line, u0.col,
            fmt::format("{} is not supported by this model{} ({} use{}; --unsupported=never-match loads the "
                        "rules as rules that never match, with approximate counters)",
                        u0.what, also, unsupported_.size(), unsupported_.size() == 1 ? "" : "s"));
  }
  if (in_table_) {
    fail_at(line_no_, 1,
            fmt::format("COMMIT expected before the end of the input (table {} opened at line {})",
                        table_name(table_.id), table_line_));
  }
  return std::move(ruleset_);
}

void Reader::table_line(const std::vector<Token>& toks) {
  const Token& t = toks[0];
  if (in_table_)
    fail(t.col, fmt::format("COMMIT expected before a new table (table {} opened at line {})",
                            table_name(table_.id), table_line_));
  std::string_view name = std::string_view(t.text).substr(1);
  auto id = parse_table_name(name);
  if (!id) fail(t.col + 1, fmt::format("unknown table \"{}\" (expected raw, mangle, nat, filter or security)", name));
  if (toks.size() > 1) fail(toks[1].col, fmt::format("unexpected \"{}\" after the table name", toks[1].text));
  in_table_ = true;
  table_ = Table::make(*id);
  table_.where = here(t.col);
  aux_.assign(table_.chains.size(), {});
  chain_index_.clear();
  for (size_t i = 0; i < table_.chains.size(); ++i) chain_index_[table_.chains[i].name] = static_cast<uint32_t>(i);
  table_line_ = line_no_;
}

void Reader::check_chain_name(const Token& tok) {
  const std::string& n = tok.text;
  if (n.empty()) fail(tok.col, "chain name expected");
  if (n.size() > 28) fail(tok.col, fmt::format("chain name \"{}\" is longer than 28 characters", n));
  for (const char* reserved : {"ACCEPT", "DROP", "QUEUE", "RETURN"}) {
    if (n == reserved) fail(tok.col, fmt::format("\"{}\" is a built-in target, not a chain name", n));
  }
  for (char c : n) {
    if (c == '"' || c == '\'' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      fail(tok.col, fmt::format("chain name \"{}\" contains a quote or control character", n));
  }
}

Counters Reader::parse_counters(std::string_view text, uint32_t col, bool rule) {
  // "[pkts:bytes]"
  const char* what = rule ? "rule counters" : "chain counters";
  if (text.size() < 2 || text.front() != '[' || text.back() != ']')
    fail(col, fmt::format("{} expected as [packets:bytes]", what));
  std::string_view inner = text.substr(1, text.size() - 2);
  size_t colon = inner.find(':');
  if (colon == std::string_view::npos) fail(col, fmt::format("{} expected as [packets:bytes]", what));
  auto p = parse_dec_uint(inner.substr(0, colon), UINT64_MAX);
  auto b = parse_dec_uint(inner.substr(colon + 1), UINT64_MAX);
  if (!p) fail(col + 1, fmt::format("packet counter must be a decimal number up to 2^64-1"));
  if (!b) fail(col + static_cast<uint32_t>(colon) + 2, "byte counter must be a decimal number up to 2^64-1");
  return Counters{*p, *b};
}

void Reader::set_policy(uint32_t chain, const Token& policy_tok) {
  Chain& c = table_.chains[chain];
  const std::string& p = policy_tok.text;
  if (!c.builtin()) {
    if (p == "-") return;
    fail(policy_tok.col,
         fmt::format("user chain {} cannot have a policy (expected \"-\"; only built-in chains of table {} "
                     "have policies)",
                     c.name, table_name(table_.id)));
  }
  if (p == "ACCEPT") c.policy = Policy::Accept;
  else if (p == "DROP") c.policy = Policy::Drop;
  else if (p == "-") return;  // keep the current policy
  else fail(policy_tok.col, fmt::format("bad policy \"{}\" for chain {} (expected ACCEPT or DROP)", p, c.name));
}

void Reader::chain_line(std::string_view line, uint32_t col) {
  // ":NAME POLICY [pkts:bytes]"
  if (!in_table_) fail(col, "chain declaration outside a table (expected a *table line first)");
  auto toks = tokenize(line);
  for (Token& t : toks) t.col += col - 1;
  Token name_tok{toks[0].text.substr(1), toks[0].col + 1};
  if (name_tok.text.empty()) fail(name_tok.col, "chain name expected after ':'");
  if (toks.size() < 2) fail(static_cast<uint32_t>(col + line.size()), fmt::format("policy expected after chain name {} (ACCEPT, DROP or -)", name_tok.text));
  if (toks.size() > 3) fail(toks[3].col, fmt::format("unexpected \"{}\" after the chain counters", toks[3].text));
  std::optional<Counters> counters;
  if (toks.size() == 3) counters = parse_counters(toks[2].text, toks[2].col, false);

  std::optional<Hook> hook = parse_hook_name(name_tok.text);
  if (hook && table_has_hook(table_.id, *hook)) {
    auto idx = *lookup_chain(chain_index_, name_tok.text);
    set_policy(idx, toks[1]);
    Chain& c = table_.chains[idx];
    c.where = here(col);
    if (counters) c.policy_counters = *counters;
    return;
  }
  if (toks[1].text != "-") {
    if (toks[1].text == "ACCEPT" || toks[1].text == "DROP")
      fail(toks[1].col, fmt::format("{} is not a built-in chain of table {}: a user chain takes \"-\", not a policy",
                                    name_tok.text, table_name(table_.id)));
    fail(toks[1].col, fmt::format("bad policy \"{}\" for user chain {} (expected \"-\")", toks[1].text, name_tok.text));
  }
  check_chain_name(name_tok);
  if (chain_index_.count(name_tok.text))
    fail(name_tok.col, fmt::format("chain {} is already declared in table {}", name_tok.text, table_name(table_.id)));
  Chain c;
  c.name = name_tok.text;
  c.where = here(col);
  chain_index_[c.name] = static_cast<uint32_t>(table_.chains.size());
  table_.chains.push_back(std::move(c));
  aux_.emplace_back();
}

uint32_t Reader::existing_chain(const Token& tok) {
  auto idx = lookup_chain(chain_index_, tok.text);
  if (!idx) {
    std::optional<Hook> hook = parse_hook_name(tok.text);
    if (hook)
      fail(tok.col, fmt::format("chain {} is not a built-in chain of table {} (its chains: {})", tok.text,
                                table_name(table_.id), format_hooks(table_hooks(table_.id))));
    fail(tok.col, fmt::format("chain {} is not declared in table {} (declare it with \":{} - [0:0]\" first)",
                              tok.text, table_name(table_.id), tok.text));
  }
  return *idx;
}

void Reader::commit_line(const std::vector<Token>& toks) {
  if (!in_table_) fail(toks[0].col, "COMMIT outside a table (expected a *table line first)");
  if (toks.size() > 1) fail(toks[1].col, fmt::format("unexpected \"{}\" after COMMIT", toks[1].text));
  finish_table();
  in_table_ = false;
}

void Reader::command_line(std::vector<Token> toks) {
  if (!in_table_) fail(toks[0].col, "rule outside a table (expected a *table line first)");
  size_t i = 0;
  std::optional<Counters> counters;
  // "[pkts:bytes] -A ..." (also "[pkts:bytes]-A").
  if (!toks[0].text.empty() && toks[0].text[0] == '[') {
    size_t close = toks[0].text.find(']');
    if (close == std::string::npos) fail(toks[0].col, "rule counters expected as [packets:bytes]");
    counters = parse_counters(std::string_view(toks[0].text).substr(0, close + 1), toks[0].col, true);
    if (close + 1 < toks[0].text.size()) {
      Token rest{toks[0].text.substr(close + 1), toks[0].col + static_cast<uint32_t>(close) + 1};
      toks[0] = std::move(rest);
    } else {
      i = 1;
    }
    if (i >= toks.size()) fail(toks[0].col, "-A or -I expected after the rule counters");
  }
  const Token& cmd = toks[i];
  std::string_view c = cmd.text;
  bool append = c == "-A" || c == "--append";
  bool insert = c == "-I" || c == "--insert";
  if (append || insert) {
    if (i + 1 >= toks.size()) fail(cmd.col + static_cast<uint32_t>(c.size()), fmt::format("chain name expected after {}", c));
    uint32_t chain = existing_chain(toks[i + 1]);
    size_t first = i + 2;
    size_t position = 1;  // -I: 1-based rule number
    if (insert && first < toks.size() && !toks[first].text.empty() &&
        std::isdigit(static_cast<unsigned char>(toks[first].text[0]))) {
      auto n = parse_dec_uint(toks[first].text, UINT32_MAX);
      size_t size = table_.chains[chain].rules.size();
      if (!n || *n == 0 || *n > size + 1)
        fail(toks[first].col, fmt::format("rule number for -I must be 1..{} (chain {} has {} rules)", size + 1,
                                          table_.chains[chain].name, size));
      position = *n;
      ++first;
    }
    std::vector<Rule> rules;
    RuleAux aux;
    parse_rule(toks, first, chain, counters, rules, aux);
    for (Rule& r : rules) r.where = here(cmd.col);
    auto& dest = table_.chains[chain].rules;
    auto& dest_aux = aux_[chain];
    size_t at = append ? dest.size() : position - 1;
    dest.insert(dest.begin() + static_cast<std::ptrdiff_t>(at), std::make_move_iterator(rules.begin()),
                std::make_move_iterator(rules.end()));
    dest_aux.insert(dest_aux.begin() + static_cast<std::ptrdiff_t>(at), rules.size(), aux);
    return;
  }
  if (counters) fail(cmd.col, "-A or -I expected after the rule counters");
  if (c == "-N" || c == "--new-chain") {
    if (i + 1 >= toks.size()) fail(cmd.col, "chain name expected after -N");
    if (i + 2 < toks.size()) fail(toks[i + 2].col, fmt::format("unexpected \"{}\" after the chain name", toks[i + 2].text));
    const Token& n = toks[i + 1];
    check_chain_name(n);
    if (chain_index_.count(n.text))
      fail(n.col, fmt::format("chain {} is already declared in table {}", n.text, table_name(table_.id)));
    Chain ch;
    ch.name = n.text;
    ch.where = here(cmd.col);
    chain_index_[ch.name] = static_cast<uint32_t>(table_.chains.size());
    table_.chains.push_back(std::move(ch));
    aux_.emplace_back();
    return;
  }
  if (c == "-P" || c == "--policy") {
    if (i + 2 >= toks.size()) fail(cmd.col, "chain name and policy expected after -P");
    if (i + 3 < toks.size()) fail(toks[i + 3].col, fmt::format("unexpected \"{}\" after the policy", toks[i + 3].text));
    uint32_t chain = existing_chain(toks[i + 1]);
    if (!table_.chains[chain].builtin())
      fail(toks[i + 1].col, fmt::format("user chain {} cannot have a policy", toks[i + 1].text));
    if (toks[i + 2].text == "-") fail(toks[i + 2].col, "policy expected (ACCEPT or DROP)");
    set_policy(chain, toks[i + 2]);
    return;
  }
  if (!c.empty() && c[0] == '-')
    fail(cmd.col, fmt::format("command {} is not supported here (expected -A, -I, -N or -P)", c));
  fail(cmd.col, fmt::format("unexpected \"{}\" (expected -A CHAIN ..., a :CHAIN line or COMMIT)", c));
}

// ---------------------------------------------------------------------------
// Rule parsing

class RuleParser {
 public:
  RuleParser(const Table& table, const ChainIndex& chains, uint32_t chain_index, const std::vector<Token>& toks,
             size_t first, const std::string& file, uint32_t line, std::vector<UnsupportedUse>& unsupported)
      : table_(table), chains_(chains), chain_index_(chain_index), toks_(toks), pos_(first), file_(file), line_(line),
        values_(file, line), unsupported_(unsupported), first_(first) {}

  void run(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);

 private:
  SourceLocation where(uint32_t col) const {
    SourceLocation w;
    w.file = file_;
    w.line = line_;
    w.column = col;
    return w;
  }
  [[noreturn]] void fail(uint32_t col, const std::string& msg) const { throw LoadError(where(col), msg); }

  ResolvedOpt resolve_long(const Token& tok, std::string_view name);
  std::optional<ResolvedOpt> lookup_long(std::string_view name, bool& ambiguous) const;
  void load_module(ModKind kind, uint32_t col);
  void set_target(const Token& name_tok, bool is_goto);
  std::string take_arg(const Token& opt_tok, std::optional<std::string>& inline_arg, std::string_view opt_name);

  void core_option(uint8_t id, const Token& tok, std::string_view opt_name, bool invert,
                   std::optional<std::string>& inline_arg);
  // One option of a loaded module or of the target: "only once", then the
  // module's own option().
  void module_option(ModKind kind, const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                     const std::vector<std::string>& args, const std::vector<uint32_t>& arg_cols);
  void target_option(const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                     const std::vector<std::string>& args, const std::vector<uint32_t>& arg_cols);
  void finish(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux);
  void check_modules();
  void check_target() const;

  // core option values, with located errors
  std::vector<Ipv4Mask> parse_address_list(const std::string& arg, uint32_t col, bool invert, const char* what);
  IfaceMatch parse_iface(const std::string& arg, uint32_t col, bool invert);

  Instance& latest_instance(ModKind kind);
  const Table& table_;
  const ChainIndex& chains_;
  uint32_t chain_index_;
  const std::vector<Token>& toks_;
  size_t pos_;
  const std::string& file_;
  uint32_t line_;
  OptionLine values_;  // errors at this line, and the value parsers
  std::vector<UnsupportedUse>& unsupported_;
  size_t first_;              // the rule's first token (after -A CHAIN)
  std::string unsupported_names_;  // what of this rule the model lacks, "ttl,TTL"
  // Marks a use of what the model lacks; the options that follow and that
  // nothing loaded knows are then skipped with their arguments.
  void unsupported(uint32_t col, std::string what, std::string_view name) {
    unsupported_.push_back(UnsupportedUse{line_, col, std::move(what)});
    if (!unsupported_names_.empty()) unsupported_names_ += ',';
    unsupported_names_ += name;
  }

  Rule rule_;
  std::vector<Ipv4Mask> srcs_{Ipv4Mask{}}, dsts_{Ipv4Mask{}};
  uint32_t core_seen_ = 0;  // bit per CoreOpt
  uint32_t proto_col_ = 0;
  bool proto_given_ = false;
  bool proto_used_ = false;  // the implicit protocol module was loaded
  std::vector<Instance> instances_;
  std::vector<Provider> providers_;  // front = merged last (getopt sees it first)

  std::optional<TgtKind> tgt_;
  bool has_target_ = false;  // -j or -g given
  uint32_t tgt_col_ = 0;
  uint32_t tgt_seen_ = 0;
};

Instance& RuleParser::latest_instance(ModKind kind) {
  for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
    if (it->kind == kind) return *it;
  }
  // Providers exist only for loaded kinds.
  throw LoadError(where(0), "internal error: option of a module that is not loaded");
}

std::optional<ResolvedOpt> RuleParser::lookup_long(std::string_view name, bool& ambiguous) const {
  ambiguous = false;
  // Exact: core first, then providers in getopt table order.
  for (const OptDef& d : kCoreOpts) {
    if (name == d.name) return ResolvedOpt{ResolvedOpt::Owner::Core, 0, &d, d.id, d.nargs, d.invertible};
  }
  auto provider_table = [](const Provider& p) {
    return p.is_target ? tgt_def(p.kind).opts : mod_def(p.kind).opts;
  };
  for (const Provider& p : providers_) {
    const std::span<const OptDef> t = provider_table(p);
    for (const OptDef& d : t) {
      if (name == d.name) {
        return ResolvedOpt{p.is_target ? ResolvedOpt::Owner::Target : ResolvedOpt::Owner::Module, p.kind, &d, 0,
                           d.nargs, d.invertible};
      }
    }
  }
  // Unambiguous prefix (aliases of the same option are one candidate).
  std::optional<ResolvedOpt> found;
  auto consider = [&](const ResolvedOpt& r) {
    if (!found) {
      found = r;
      return;
    }
    bool same = found->owner == r.owner && found->kind == r.kind &&
                (r.owner == ResolvedOpt::Owner::Core ? found->core_id == r.core_id : found->def->id == r.def->id);
    if (!same) ambiguous = true;
  };
  for (const OptDef& d : kCoreOpts) {
    if (std::string_view(d.name).substr(0, name.size()) == name && name.size() < std::strlen(d.name))
      consider(ResolvedOpt{ResolvedOpt::Owner::Core, 0, &d, d.id, d.nargs, d.invertible});
  }
  for (const Provider& p : providers_) {
    for (const OptDef& d : provider_table(p)) {
      std::string_view n = d.name;
      if (n.size() > name.size() && n.substr(0, name.size()) == name)
        consider(ResolvedOpt{p.is_target ? ResolvedOpt::Owner::Target : ResolvedOpt::Owner::Module, p.kind, &d, 0,
                             d.nargs, d.invertible});
    }
  }
  if (ambiguous) return std::nullopt;
  return found;
}

ResolvedOpt RuleParser::resolve_long(const Token& tok, std::string_view name) {
  bool ambiguous = false;
  if (auto r = lookup_long(name, ambiguous)) return *r;
  // Unknown to everything loaded: load the protocol's module once, like
  // iptables does for `-p tcp --dport 80`, and retry.
  if (proto_given_ && !rule_.protocol_invert) {
    // The module named after the protocol (tcp, udp, icmp), when there is one.
    std::optional<ModKind> proto_mod;
    if (const char* pname = protocol_name(rule_.protocol)) proto_mod = find_module(pname);
    bool loaded = proto_mod && std::any_of(instances_.begin(), instances_.end(),
                                           [&](const Instance& in) { return in.kind == *proto_mod; });
    if (proto_mod && (!loaded || !proto_used_)) {
      load_module(*proto_mod, tok.col);
      proto_used_ = true;
      if (auto r = lookup_long(name, ambiguous)) return *r;
    }
  }
  if (ambiguous) fail(tok.col, fmt::format("option \"--{}\" is ambiguous (abbreviates several options)", name));
  // After a module or target the model lacks, an option nothing knows is
  // taken as one of its own.
  if (!unsupported_names_.empty()) return ResolvedOpt{ResolvedOpt::Owner::Skip, 0, nullptr, 0, 0, true};
  fail(tok.col, fmt::format("unknown option \"--{}\"", name));
}

void RuleParser::load_module(ModKind kind, uint32_t col) {
  bool first = std::none_of(instances_.begin(), instances_.end(), [&](const Instance& in) { return in.kind == kind; });
  Match m = mod_def(kind).make();
  rule_.matches.push_back(std::move(m));
  instances_.push_back(Instance{kind, rule_.matches.size() - 1, 0, col});
  if (first) providers_.insert(providers_.begin(), Provider{false, static_cast<uint8_t>(kind)});
}

void RuleParser::set_target(const Token& name_tok, bool is_goto) {
  const std::string& n = name_tok.text;
  has_target_ = true;
  tgt_col_ = name_tok.col;
  if (n.empty()) fail(name_tok.col, is_goto ? "chain name expected after -g" : "target name expected after -j");
  if (is_goto) {
    auto idx = lookup_chain(chains_, n);
    if (!idx || table_.chains[*idx].builtin())
      fail(name_tok.col, fmt::format("goto needs a user chain of table {}; \"{}\" is not one", table_name(table_.id), n));
    rule_.target = GotoTarget{n, *idx};
    return;
  }
  if (n == "ACCEPT") { rule_.target = AcceptTarget{}; return; }
  if (n == "DROP") { rule_.target = DropTarget{}; return; }
  if (n == "RETURN") { rule_.target = ReturnTarget{}; return; }
  // A declared chain wins over a target of the same name, as in iptables.
  if (auto idx = lookup_chain(chains_, n)) {
    if (table_.chains[*idx].builtin())
      fail(name_tok.col, fmt::format("cannot jump to built-in chain {}", n));
    rule_.target = JumpTarget{n, *idx};
    return;
  }
  for (TgtKind k = 0; k < kTargets.size(); ++k) {
    const TgtDef& d = kTargets[k];
    if (!d.named || n != d.name) continue;
    tgt_ = k;
    rule_.target = d.make();
    TargetScope scope = target_scope(rule_.target);
    if (scope.table && *scope.table != table_.id)
      fail(name_tok.col, fmt::format("target {} is only valid in table {} (this is table {})", n,
                                     table_name(*scope.table), table_name(table_.id)));
    if (!d.opts.empty()) providers_.insert(providers_.begin(), Provider{true, k});
    return;
  }
  for (const char* u : kUnsupportedTargets) {
    if (n == u) {
      unsupported(name_tok.col, fmt::format("target \"{}\"", n), n);
      rule_.target = NoTarget{};
      return;
    }
  }
  fail(name_tok.col, fmt::format("unknown target \"{}\" (not a supported target, nor a chain declared in table {})",
                                 n, table_name(table_.id)));
}

std::string RuleParser::take_arg(const Token& opt_tok, std::optional<std::string>& inline_arg,
                                 std::string_view opt_name) {
  if (inline_arg) {
    std::string a = std::move(*inline_arg);
    inline_arg.reset();
    return a;
  }
  if (pos_ >= toks_.size())
    fail(opt_tok.col + static_cast<uint32_t>(opt_tok.text.size()),
         fmt::format("option \"{}\" requires an argument", opt_name));
  return toks_[pos_++].text;
}

void RuleParser::run(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  bool invert = false;
  uint32_t invert_col = 0;
  while (pos_ < toks_.size()) {
    const Token& tok = toks_[pos_++];
    const std::string& t = tok.text;
    if (t == "!") {
      if (invert) fail(tok.col, "multiple consecutive ! not allowed");
      invert = true;
      invert_col = tok.col;
      continue;
    }
    if (t.size() < 2 || t[0] != '-') {
      fail(tok.col, fmt::format("unexpected argument \"{}\" (expected an option; quote arguments that hold spaces)", t));
    }
    std::string_view opt_name = t;
    std::optional<std::string> inline_arg;
    ResolvedOpt r{};
    if (t[1] != '-') {
      if (t.size() != 2) fail(tok.col, fmt::format("unknown option \"{}\" (short options cannot be combined or "
                                                   "take attached arguments here)", t));
      const ShortOpt* s = nullptr;
      for (const ShortOpt& so : kCoreShort) {
        if (so.c == t[1]) s = &so;
      }
      if (!s) {
        if (std::strchr("ADCIRLSFZNXEP", t[1]))
          fail(tok.col, fmt::format("a second command \"{}\" in one rule", t));
        fail(tok.col, fmt::format("unknown option \"{}\"", t));
      }
      r = ResolvedOpt{ResolvedOpt::Owner::Core, 0, nullptr, s->id, s->nargs, s->invertible};
    } else {
      std::string_view name = std::string_view(t).substr(2);
      size_t eq = name.find('=');
      if (eq != std::string_view::npos) {
        inline_arg = std::string(name.substr(eq + 1));
        name = name.substr(0, eq);
        opt_name = std::string_view(t).substr(0, eq + 2);
      }
      if (name.empty()) fail(tok.col, "option name expected after \"--\"");
      r = resolve_long(tok, name);
      if (inline_arg && r.nargs == 0) fail(tok.col, fmt::format("option \"{}\" takes no argument", opt_name));
    }
    if (invert && !r.invertible) {
      if (r.owner == ResolvedOpt::Owner::Core && (r.core_id == kCoreJump || r.core_id == kCoreGoto))
        fail(invert_col, fmt::format("cannot have ! before {}", opt_name));
      if (r.owner == ResolvedOpt::Owner::Core && r.core_id == kCoreMatch)
        fail(invert_col, "unexpected ! before -m (put it before the module's option)");
      fail(invert_col, fmt::format("option \"{}\" cannot be inverted", opt_name));
    }
    if (r.owner == ResolvedOpt::Owner::Skip) {
      // Its arguments: the words up to the next option (or `!`).
      while (pos_ < toks_.size() && !toks_[pos_].text.empty() && toks_[pos_].text[0] != '-' &&
             toks_[pos_].text != "!") {
        ++pos_;
      }
    } else if (r.owner == ResolvedOpt::Owner::Core) {
      core_option(r.core_id, tok, opt_name, invert, inline_arg);
    } else {
      std::vector<std::string> args;
      std::vector<uint32_t> cols;
      for (unsigned a = 0; a < r.nargs; ++a) {
        uint32_t c = inline_arg ? tok.col + static_cast<uint32_t>(opt_name.size()) + 1
                                : (pos_ < toks_.size() ? toks_[pos_].col : 0);
        args.push_back(take_arg(tok, inline_arg, opt_name));
        cols.push_back(c);
      }
      try {
        if (r.owner == ResolvedOpt::Owner::Module)
          module_option(static_cast<ModKind>(r.kind), *r.def, tok, opt_name, invert, args, cols);
        else
          target_option(*r.def, tok, opt_name, invert, args, cols);
      } catch (const LoadError& e) {
        // "!" is a valid argument (a comment, a pattern); when it is not, it
        // is most likely the old `--opt ! value` form.
        if (std::find(args.begin(), args.end(), "!") == args.end()) throw;
        throw LoadError(e.where(), e.message() + fmt::format(" (\"!\" goes before the option: ! {} VALUE)", opt_name));
      }
    }
    invert = false;
  }
  if (invert) fail(invert_col, "nothing appropriate following ! (expected an option)");
  finish(counters, out, aux);
}

void RuleParser::core_option(uint8_t id, const Token& tok, std::string_view opt_name, bool invert,
                             std::optional<std::string>& inline_arg) {
  auto once = [&](uint32_t bit, const char* shown) {
    if (core_seen_ & (1U << bit)) fail(tok.col, fmt::format("multiple {} options not allowed", shown));
    core_seen_ |= 1U << bit;
  };
  switch (id) {
    case kCoreSource:
    case kCoreDestination: {
      once(id, id == kCoreSource ? "-s" : "-d");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      auto list = parse_address_list(arg, col, invert, id == kCoreSource ? "source" : "destination");
      if (id == kCoreSource) {
        srcs_ = std::move(list);
        rule_.src_invert = invert;
      } else {
        dsts_ = std::move(list);
        rule_.dst_invert = invert;
      }
      return;
    }
    case kCoreProtocol: {
      once(id, "-p");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      auto p = parse_protocol(arg);
      if (!p) fail(col, fmt::format("unknown protocol \"{}\" (expected a name such as tcp, or a number 0-255)", arg));
      if (*p == 0 && invert) fail(col, "! -p all would never match (protocol 0 means any protocol)");
      rule_.protocol = *p;
      rule_.protocol_invert = invert;
      proto_given_ = true;
      proto_col_ = tok.col;
      return;
    }
    case kCoreInIface:
    case kCoreOutIface: {
      bool in = id == kCoreInIface;
      once(id, in ? "-i" : "-o");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      const Chain& c = table_.chains[chain_index_];
      if (c.hook) {
        bool bad = in ? (*c.hook == Hook::Output || *c.hook == Hook::Postrouting)
                      : (*c.hook == Hook::Input || *c.hook == Hook::Prerouting);
        if (bad) fail(tok.col, fmt::format("can't use {} with {} (no {} interface there)", in ? "-i" : "-o",
                                          c.name, in ? "input" : "output"));
      }
      (in ? rule_.in_iface : rule_.out_iface) = parse_iface(arg, col, invert);
      return;
    }
    case kCoreFragment:
      once(id, "-f");
      rule_.fragment = true;
      rule_.fragment_invert = invert;
      return;
    case kCoreJump:
    case kCoreGoto: {
      if (has_target_) fail(tok.col, "multiple -j/-g options not allowed");
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      set_target(Token{arg, col}, id == kCoreGoto);
      return;
    }
    case kCoreMatch: {
      uint32_t col = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string arg = take_arg(tok, inline_arg, opt_name);
      if (auto k = find_module(arg)) {
        load_module(*k, col);
        return;
      }
      for (const char* u : kUnsupportedModules) {
        if (arg == u) {
          unsupported(col, fmt::format("match module \"{}\"", arg), arg);
          return;
        }
      }
      fail(col, fmt::format("unknown match module \"{}\"", arg));
    }
    case kCoreSetCounters: {
      once(id, "-c");
      uint32_t c1 = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string p = take_arg(tok, inline_arg, opt_name);
      uint32_t c2 = pos_ < toks_.size() ? toks_[pos_].col : 0;
      std::string b = take_arg(tok, inline_arg, opt_name);
      auto pv = parse_dec_uint(p, UINT64_MAX);
      if (!pv) fail(c1, "-c packet counter must be a decimal number");
      auto bv = parse_dec_uint(b, UINT64_MAX);
      if (!bv) fail(c2, "-c byte counter must be a decimal number");
      rule_.counters = Counters{*pv, *bv};
      return;
    }
    case kCoreTable:
      fail(tok.col, "-t is not allowed in a restore file (the *table line selects the table)");
    case kCoreCommand:
      fail(tok.col, fmt::format("a second command \"{}\" in one rule", opt_name));
    default:
      fail(tok.col, fmt::format("option \"{}\" is not allowed in a rule", opt_name));
  }
}

// --- value parsers

std::vector<Ipv4Mask> RuleParser::parse_address_list(const std::string& arg, uint32_t col, bool invert,
                                                    const char* what) {
  std::vector<Ipv4Mask> out;
  uint32_t c = col;
  for (std::string_view part : split(arg, ',')) {
    Ipv4Mask m = values_.parse_address_mask(part, c, false, what);
    m.addr &= m.mask;
    out.push_back(m);
    c += static_cast<uint32_t>(part.size()) + 1;
  }
  if (out.size() > 1 && invert) fail(col, "! not allowed with multiple source or destination addresses");
  return out;
}

IfaceMatch RuleParser::parse_iface(const std::string& arg, uint32_t col, bool invert) {
  IfaceMatch m;
  m.invert = invert;
  if (arg.size() > 15) fail(col, fmt::format("interface name \"{}\" is longer than 15 characters", arg));
  for (char ch : arg) {
    if (ch == ' ' || ch == '\t' || ch == '"' || ch == '\'' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
      fail(col, fmt::format("interface name \"{}\" contains whitespace, a quote or a backslash", arg));
  }
  m.name = arg;
  if (!m.name.empty() && m.name.back() == '+') {
    m.wildcard = true;
    m.name.pop_back();
  }
  return m;
}

// --- module options

void RuleParser::module_option(ModKind kind, const OptDef& def, const Token& tok, std::string_view opt_name,
                               bool invert, const std::vector<std::string>& args,
                               const std::vector<uint32_t>& cols) {
  Instance& inst = latest_instance(kind);
  const char* mname = mod_def(kind).name;
  if (inst.seen & (1U << def.id)) fail(tok.col, fmt::format("{}: option \"{}\" can only be used once", mname, opt_name));
  const std::string& a = args.empty() ? std::string() : args[0];
  const uint32_t acol = cols.empty() ? tok.col : cols[0];
  const ModuleOption o{values_, def.id, opt_name, invert, args, cols, a, acol, tok.col, inst.seen, mname,
                       rule_.protocol};
  mod_def(kind).option(rule_.matches[inst.match_index], o);
  inst.seen |= 1U << def.id;
}

void RuleParser::target_option(const OptDef& def, const Token& tok, std::string_view opt_name, bool invert,
                               const std::vector<std::string>& args, const std::vector<uint32_t>& cols) {
  const char* tname = tgt_def(*tgt_).name;
  if (tgt_seen_ & (1U << def.id)) fail(tok.col, fmt::format("{}: option \"{}\" can only be used once", tname, opt_name));
  const std::string& a = args.empty() ? std::string() : args[0];
  const uint32_t acol = cols.empty() ? tok.col : cols[0];
  const ModuleOption o{values_, def.id, opt_name, invert, args, cols, a, acol, tok.col, tgt_seen_, tname,
                       rule_.protocol};
  tgt_def(*tgt_).option(rule_.target, o);
  tgt_seen_ |= 1U << def.id;
}

// --- end of rule


// Required options and combinations of each module of the rule, and of
// its target: each module's own check().
void RuleParser::check_modules() {
  for (const Instance& inst : instances_) {
    const ModuleCheck c{values_, inst.col, inst.seen, rule_.protocol, rule_.protocol_invert, mod_def(inst.kind).name};
    mod_def(inst.kind).check(rule_.matches[inst.match_index], c);
  }
}

void RuleParser::check_target() const {
  if (!tgt_) return;
  ModuleCheck c{values_, tgt_col_, tgt_seen_, rule_.protocol, rule_.protocol_invert, tgt_def(*tgt_).name};
  for (const Match& m : rule_.matches) {
    const auto* tcp = std::get_if<TcpMatch>(&m);
    if (tcp != nullptr && (tcp->flags_cmp & tcp_flag::kSyn) != 0 && !tcp->flags_invert) c.tcp_syn_match = true;
  }
  tgt_def(*tgt_).check(rule_.target, c);
}

void RuleParser::finish(std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  check_modules();
  check_target();
  if (counters) rule_.counters = counters;
  if (!unsupported_names_.empty()) {
    // Kept (with --unsupported=never-match) as a rule that never matches,
    // printed back as it was written.
    rule_.unsupported = unsupported_names_;
    for (size_t i = first_; i < toks_.size(); ++i) {
      if (!rule_.spec_text.empty()) rule_.spec_text += ' ';
      rule_.spec_text += save_string(toks_[i].text);
    }
  }
  aux.target_col = tgt_col_;
  for (const Instance& inst : instances_) aux.match_cols.push_back(inst.col);
  // -s/-d lists expand into one rule per (source, destination), sources outer.
  for (const Ipv4Mask& s : srcs_) {
    for (const Ipv4Mask& d : dsts_) {
      Rule r = rule_;
      r.src = s;
      r.dst = d;
      out.push_back(std::move(r));
    }
  }
}

// ---------------------------------------------------------------------------

void Reader::parse_rule(const std::vector<Token>& toks, size_t first, uint32_t chain_index,
                        std::optional<Counters> counters, std::vector<Rule>& out, RuleAux& aux) {
  RuleParser p(table_, chain_index_, chain_index, toks, first, file_, line_no_, unsupported_);
  const size_t before = out.size();
  p.run(counters, out, aux);
  // The kernel refuses a hashlimit rule whose --hashlimit-rate-match
  // differs from that of the table's first rule (the table is shared by
  // name).
  if (out.size() == before) return;
  const Rule& r = out[before];
  for (size_t i = 0; i < r.matches.size(); ++i) {
    const auto* h = std::get_if<HashlimitMatch>(&r.matches[i]);
    if (h == nullptr) continue;
    const bool rm = (h->cfg.mode & HashlimitCfg::kRateMatch) != 0;
    auto [it, fresh] = hashlimit_rate_match_.emplace(h->name, rm);
    if (!fresh && it->second != rm)
      fail(i < aux.match_cols.size() ? aux.match_cols[i] : 1,
           fmt::format("hashlimit: table \"{}\" was created {} --hashlimit-rate-match; the kernel refuses a rule {} it",
                       h->name, it->second ? "with" : "without", rm ? "with" : "without"));
  }
}

void Reader::finish_table() {
  // Jump loops, searched from each built-in chain like the kernel does when
  // the table is loaded (loops among chains no hook reaches are accepted).
  const size_t n = table_.chains.size();
  std::vector<uint8_t> state(n, 0);  // 0 new, 1 on the current path, 2 done
  struct Frame {
    uint32_t chain;
    size_t rule;
  };
  for (size_t root = 0; root < n; ++root) {
    if (!table_.chains[root].builtin() || state[root] != 0) continue;
    std::vector<Frame> stack{{static_cast<uint32_t>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      Frame& f = stack.back();
      const Chain& c = table_.chains[f.chain];
      if (f.rule >= c.rules.size()) {
        state[f.chain] = 2;
        stack.pop_back();
        continue;
      }
      const size_t ri = f.rule++;
      const Rule& r = c.rules[ri];
      std::optional<uint32_t> next;
      if (const auto* j = std::get_if<JumpTarget>(&r.target)) next = j->index;
      if (const auto* g = std::get_if<GotoTarget>(&r.target)) next = g->index;
      if (!next) continue;
      if (state[*next] == 1) {
        std::string path;
        bool on = false;
        for (const Frame& fr : stack) {
          if (fr.chain == *next) on = true;
          if (on) path += table_.chains[fr.chain].name + " -> ";
        }
        path += table_.chains[*next].name;
        fail_rule(r, aux_[f.chain][ri].target_col,
                  fmt::format("jump loop: chain {} jumps back to {} ({})", c.name, table_.chains[*next].name, path));
      }
      if (state[*next] == 0) {
        state[*next] = 1;
        stack.push_back(Frame{*next, 0});
      }
    }
  }

  // Targets and matches used from hooks they do not support.
  std::vector<HookMask> hooks = chain_hooks(table_);
  for (size_t ci = 0; ci < n; ++ci) {
    const Chain& c = table_.chains[ci];
    if (hooks[ci] == 0) continue;
    for (size_t ri = 0; ri < c.rules.size(); ++ri) {
      const Rule& r = c.rules[ri];
      const RuleAux& aux = aux_[ci][ri];
      TargetScope scope = target_scope(r.target);
      if (HookMask bad = hooks[ci] & ~scope.hooks; bad != 0) {
        fail_rule(r, aux.target_col,
                  fmt::format("target {} is valid only from {}, but chain {} is reached from {}",
                              target_name(r.target), format_hooks(scope.hooks), c.name, format_hooks(bad)));
      }
      for (size_t mi = 0; mi < r.matches.size(); ++mi) {
        const Match& m = r.matches[mi];
        HookMask ok = match_hooks(m);
        if (HookMask bad = hooks[ci] & ~ok; bad != 0) {
          std::string what = match_name(m);
          std::visit(
              [&what](const auto& x) {
                if constexpr (requires { x.hooks_reason(); }) what += x.hooks_reason();
              },
              m);
          fail_rule(r, mi < aux.match_cols.size() ? aux.match_cols[mi] : 0,
                    fmt::format("match {} is valid only from {}, but chain {} is reached from {}", what,
                                format_hooks(ok), c.name, format_hooks(bad)));
        }
      }
    }
  }

  // A table given twice replaces the earlier one, as iptables-restore does.
  if (Table* old = ruleset_.find_table(table_.id)) {
    *old = std::move(table_);
  } else {
    ruleset_.tables.push_back(std::move(table_));
  }
  table_ = Table{};
  aux_.clear();
  chain_index_.clear();
}

}  // namespace

Ruleset read_iptables_save(std::string_view text, const std::string& file_name, const ReadOptions& options) {
  Reader r(text, file_name, options);
  return r.run();
}

Ruleset load_iptables_save_file(const std::string& path, const ReadOptions& options) {
  Ruleset rs = read_iptables_save(read_input_file(path), path, options);
  // iptables-restore takes an empty input as "change nothing"; a rules file
  // given to replay or lint with no table is a mistake (a wrong path, an
  // empty dump), not a host without rules.
  if (rs.tables.empty()) {
    throw LoadError(SourceLocation{path}, "holds no table (expected iptables-save output: *filter ... COMMIT)");
  }
  return rs;
}

}  // namespace nfb
