// The iptables-save reader/writer against the real kernel.
//
// Each input is restored with iptables-legacy-restore into a fresh network
// namespace and read back with iptables-legacy-save; the nfbench writer's text
// for the same input must equal the kernel's, table by table. The writer's
// text is then restored itself and must come back unchanged. A differential
// run over hundreds of single rules (tests/data/iptables/differential) checks
// that the reader accepts exactly what the kernel accepts.
//
// Needs root, network namespaces and iptables-legacy; skips with the reason
// otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "rules/iptables_save.h"
#include "tests/support/netns.h"
#include "tests/support/test_data.h"

namespace nfb {
namespace {

namespace fs = std::filesystem;
using test::source_root;
using test::read_file;
using test::files_with;

#define SKIP_WITHOUT_KERNEL()                                                   \
  do {                                                                          \
    if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why;    \
  } while (0)

/// Restores `text` into a fresh namespace and saves it; nullopt when the
/// kernel (or iptables) rejects it, with the reason in `why`.
std::optional<std::map<std::string, std::string>> kernel_tables(const std::string& text, bool counters,
                                                                std::string* why = nullptr) {
  NetnsSandbox ns;
  try {
    ns.restore(text, counters);
  } catch (const std::runtime_error& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
  return split_tables(ns.save(counters));
}

/// Our text for `text`, or nullopt with the LoadError in `why`.
std::optional<std::string> our_text(const std::string& text, const std::string& name, bool counters,
                                    std::string* why = nullptr) {
  try {
    return write_iptables_save(read_iptables_save(text, name), {.counters = counters});
  } catch (const LoadError& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

/// Every table we print must be in the kernel's save, byte for byte. (The
/// kernel may list more tables: ones created empty by an earlier command.)
void expect_same_tables(const std::map<std::string, std::string>& kernel, const std::string& ours,
                        const std::string& what) {
  auto mine = split_tables(ours);
  for (const auto& [name, block] : mine) {
    auto it = kernel.find(name);
    ASSERT_NE(it, kernel.end()) << what << ": the kernel has no table " << name;
    EXPECT_EQ(block, it->second) << what << ": table " << name;
  }
}

void check_against_kernel(const std::string& text, const std::string& name, bool counters) {
  std::string why;
  auto kernel = kernel_tables(text, counters, &why);
  ASSERT_TRUE(kernel.has_value()) << name << ": the kernel rejects it: " << why;
  auto ours = our_text(text, name, counters, &why);
  ASSERT_TRUE(ours.has_value()) << name << ": we reject it: " << why;
  expect_same_tables(*kernel, *ours, name);
  // What we write loads in the kernel and prints back unchanged.
  auto again = kernel_tables(ipset_lines(text, true) + *ours, counters, &why);
  ASSERT_TRUE(again.has_value()) << name << ": the kernel rejects our text: " << why << "\n" << *ours;
  expect_same_tables(*again, *ours, name + " (our text restored)");
}

TEST(IptablesSaveKernel, BundledRulesets) {
  SKIP_WITHOUT_KERNEL();
  auto saves = files_with(source_root() / "data/rulesets", ".save");
  ASSERT_GE(saves.size(), 3u);
  for (const fs::path& p : saves) check_against_kernel(read_file(p), p.filename().string(), false);
}

TEST(IptablesSaveKernel, CanonicalInputs) {
  SKIP_WITHOUT_KERNEL();
  auto inputs = files_with(source_root() / "tests/data/iptables/canonical", ".input");
  ASSERT_GE(inputs.size(), 20u);
  for (const fs::path& p : inputs) check_against_kernel(read_file(p), p.filename().string(), p.stem() == "counters");
}

/// Both reject, or both accept and print the same.
void differential(const std::string& text, bool counters, const std::string& what,
                  std::optional<std::map<std::string, std::string>> kernel, const std::string& kernel_why) {
  std::string why;
  auto ours = our_text(text, "case", counters, &why);
  if (!kernel) {
    EXPECT_FALSE(ours.has_value()) << what << "\nthe kernel rejects it (" << kernel_why << ") but we print:\n"
                                   << ours.value_or("");
    return;
  }
  ASSERT_TRUE(ours.has_value()) << what << "\nthe kernel accepts it but we reject it: " << why;
  expect_same_tables(*kernel, *ours, what);
}

TEST(IptablesSaveKernel, SingleRulesAcceptedAndPrintedLikeTheKernel) {
  SKIP_WITHOUT_KERNEL();
  auto files = files_with(source_root() / "tests/data/iptables/differential", ".lines");
  ASSERT_GE(files.size(), 4u);
  size_t cases = 0;
  for (const fs::path& p : files) {
    const std::string table = p.stem().string();
    auto id = parse_table_name(table);
    ASSERT_TRUE(id.has_value()) << p;
    // Every case names all built-in chains, so policies left by the previous
    // case are reset; the restore replaces the whole table.
    std::string head = "*" + table + "\n";
    for (unsigned h = 0; h < kHookCount; ++h) {
      if (table_has_hook(*id, static_cast<Hook>(h)))
        head += std::string(":") + hook_name(static_cast<Hook>(h)) + " ACCEPT [0:0]\n";
    }
    head += ":X - [0:0]\n:Y - [0:0]\n";
    NetnsSandbox ns;
    std::istringstream in(read_file(p));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      ++cases;
      std::string text = head + line + "\nCOMMIT\n";
      std::optional<std::map<std::string, std::string>> kernel;
      std::string why;
      try {
        ns.restore(text);
        kernel = split_tables(ns.save());
      } catch (const std::runtime_error& e) {
        why = e.what();
      }
      differential(text, false, table + ": " + line, kernel, why);
    }
  }
  EXPECT_GE(cases, 500u);
}

TEST(IptablesSaveKernel, WholeFilesAcceptedAndPrintedLikeTheKernel) {
  SKIP_WITHOUT_KERNEL();
  const std::vector<std::string> cases = test::file_cases(source_root() / "tests/data/iptables/differential/files.cases");
  ASSERT_FALSE(cases.empty());
  size_t n = 0;
  for (std::string text : cases) {
    bool counters = text.rfind("!c\n", 0) == 0;
    if (counters) text = text.substr(3);
    ++n;
    std::string why;
    auto kernel = kernel_tables(text, counters, &why);
    differential(text, counters, "case:\n" + text, kernel, why);
  }
  EXPECT_GE(n, 50u);
}

}  // namespace
}  // namespace nfb
