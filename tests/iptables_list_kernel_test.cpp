// The `iptables -L -v -n -x` writer against the real kernel.
//
// Each golden input (tests/data/iptables/list/NAME.input, rulesets with
// counters) is restored with `iptables-legacy-restore --counters` into a fresh
// network namespace and listed with `iptables-legacy -t TABLE -L -v -n -x`;
// write_iptables_list for the same input must print the same bytes, and so
// must the stored golden file (so a stale golden is noticed). The writer's
// iptables-save text with counters is restored too and must list the same,
// and every single-rule and whole-file differential case both sides accept
// (tests/data/iptables/differential) is listed with counters and compared.
//
// Needs root, network namespaces and iptables-legacy; skips with the reason
// otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "rules/iptables_list.h"
#include "rules/iptables_save.h"
#include "tests/support/netns.h"
#include "tests/support/test_data.h"

namespace nfb {
namespace {

namespace fs = std::filesystem;
using test::source_root;
using test::read_file;
using test::files_with;

#define SKIP_WITHOUT_KERNEL()                                                \
  do {                                                                       \
    if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why; \
  } while (0)

/// What the kernel lists for one table of the namespace.
std::string kernel_list(const NetnsSandbox& ns, TableId table) {
  CommandResult r = ns.run({"iptables-legacy", "-t", table_name(table), "-L", "-v", "-n", "-x"});
  EXPECT_TRUE(r.ok()) << "iptables-legacy -t " << table_name(table) << " -L: " << r.describe();
  return r.out;
}

/// Ours for `text` parsed, or nullopt (with the reason) when we reject it.
std::optional<Ruleset> parse(const std::string& text, const std::string& name, std::string* why) {
  try {
    return read_iptables_save(text, name);
  } catch (const LoadError& e) {
    *why = e.what();
    return std::nullopt;
  }
}

/// Restores `text` with --counters into `ns`; false when the kernel refuses it.
bool kernel_restore(const NetnsSandbox& ns, const std::string& text, std::string* why) {
  try {
    ns.restore(text, true);
    return true;
  } catch (const std::runtime_error& e) {
    *why = e.what();
    return false;
  }
}

/// The first line where our text and the kernel's differ, for readable failures.
std::string first_difference(const std::string& ours, const std::string& kernel) {
  std::istringstream x(ours), y(kernel);
  std::string a, b;
  for (int n = 1;; ++n) {
    bool ga = static_cast<bool>(std::getline(x, a));
    bool gb = static_cast<bool>(std::getline(y, b));
    if (!ga && !gb) return "the texts differ only in their final newline";
    if (a != b || ga != gb)
      return fmt::format("line {}:\n  ours:   [{}]\n  kernel: [{}]", n, ga ? a : "<end>", gb ? b : "<end>");
  }
}

/// Every table of `rs`, listed by us and by the kernel holding the same rules.
void expect_same_lists(const NetnsSandbox& ns, const Ruleset& rs, const std::string& what) {
  for (const Table& t : rs.tables) {
    std::string ours = write_iptables_list(t);
    std::string kernel = kernel_list(ns, t.id);
    EXPECT_TRUE(ours == kernel) << what << ": table " << table_name(t.id) << ", " << first_difference(ours, kernel);
  }
}

TEST(IptablesListKernel, GoldenInputsListLikeTheKernel) {
  SKIP_WITHOUT_KERNEL();
  const fs::path dir = source_root() / "tests/data/iptables/list";
  auto inputs = files_with(dir, ".input");
  ASSERT_GE(inputs.size(), 30u) << dir;
  for (const fs::path& input : inputs) {
    const std::string name = input.filename().string();
    SCOPED_TRACE(name);
    const std::string text = read_file(input);
    Ruleset rs = read_iptables_save(text, name);
    NetnsSandbox ns;
    ns.restore(text, true);
    for (const Table& t : rs.tables) {
      std::string kernel = kernel_list(ns, t.id);
      std::string ours = write_iptables_list(t);
      EXPECT_TRUE(ours == kernel) << "table " << table_name(t.id) << ", " << first_difference(ours, kernel);
      fs::path golden = dir / fmt::format("{}.{}.list", input.stem().string(), table_name(t.id));
      EXPECT_TRUE(read_file(golden) == kernel) << golden << " is stale (run regenerate.sh), "
                                               << first_difference(read_file(golden), kernel);
    }
  }
}

/// The counters' way out of nfbench: `iptables-save -c` text written from
/// the model, restored, must list in the kernel as our -L writer lists it.
/// (Compared with the save text read back: save cannot express a few
/// inversions, `! -i +` and `! --dport 0:65535`, that -L shows.)
TEST(IptablesListKernel, OurSaveTextWithCountersListsTheSame) {
  SKIP_WITHOUT_KERNEL();
  auto inputs = files_with(source_root() / "tests/data/iptables/list", ".input");
  ASSERT_GE(inputs.size(), 30u);
  for (const fs::path& input : inputs) {
    const std::string name = input.filename().string();
    const std::string text = read_file(input);
    std::string saved = write_iptables_save(read_iptables_save(text, name), {.counters = true});
    Ruleset rs = read_iptables_save(saved, name + " (our save text)");
    NetnsSandbox ns;
    ns.restore(ipset_lines(text, true) + saved, true);  // the sets its rules name come with it
    expect_same_lists(ns, rs, name + " (our iptables-save -c text restored)");
  }
}

TEST(IptablesListKernel, SingleRuleDifferentialCasesListLikeTheKernel) {
  SKIP_WITHOUT_KERNEL();
  auto files = files_with(source_root() / "tests/data/iptables/differential", ".lines");
  ASSERT_GE(files.size(), 4u);
  size_t compared = 0, n = 0;
  for (const fs::path& p : files) {
    const std::string table = p.stem().string();
    auto id = parse_table_name(table);
    ASSERT_TRUE(id.has_value()) << p;
    // Every case declares all built-in chains (with policy counters), so
    // what the previous case left is replaced; the restore replaces the table.
    std::string head = "*" + table + "\n";
    for (unsigned h = 0; h < kHookCount; ++h) {
      if (table_has_hook(*id, static_cast<Hook>(h)))
        head += fmt::format(":{} ACCEPT [{}:{}]\n", hook_name(static_cast<Hook>(h)), h + 1, 100 * h + 60);
    }
    head += ":X - [0:0]\n:Y - [0:0]\n";
    NetnsSandbox ns;
    std::istringstream in(read_file(p));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      ++n;
      // Counters that differ from case to case, up to 8 and 11 digits wide.
      std::string text = head + fmt::format("[{}:{}] ", n * 7919 % 100000000, n * n * 104729) + line + "\nCOMMIT\n";
      std::string why;
      auto ours = parse(text, "case", &why);
      if (!ours || !kernel_restore(ns, text, &why)) continue;
      expect_same_lists(ns, *ours, table + ": " + line);
      ++compared;
    }
  }
  RecordProperty("compared", static_cast<int>(compared));
  EXPECT_GE(compared, 400u);
}

TEST(IptablesListKernel, WholeFileDifferentialCasesListLikeTheKernel) {
  SKIP_WITHOUT_KERNEL();
  const std::vector<std::string> cases = test::file_cases(source_root() / "tests/data/iptables/differential/files.cases");
  ASSERT_FALSE(cases.empty());
  size_t compared = 0;
  for (std::string text : cases) {
    // Every case is restored with --counters here, so its counters are kept
    // on both sides ("!c" marks the cases the save test restores with them).
    if (text.rfind("!c\n", 0) == 0) text = text.substr(3);
    std::string why;
    auto ours = parse(text, "case", &why);
    if (!ours) continue;
    NetnsSandbox ns;
    if (!kernel_restore(ns, text, &why)) continue;
    expect_same_lists(ns, *ours, "case:\n" + text);
    ++compared;
  }
  RecordProperty("compared", static_cast<int>(compared));
  EXPECT_GE(compared, 20u);
}

}  // namespace
}  // namespace nfb
