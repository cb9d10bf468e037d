// The generated rulesets (rules/ruleset_gen.h) against the real kernel:
// each is restored with iptables-legacy-restore into a fresh network
// namespace, and iptables-legacy-save must print the model's canonical text
// for it (write_iptables_save(read_iptables_save(...))), table by table. The
// canonical text is then restored itself and must come back unchanged.
//
// Needs root, network namespaces and iptables-legacy; skips with the reason
// otherwise.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "rules/iptables_save.h"
#include "rules/ruleset_gen.h"
#include "tests/support/netns.h"

namespace nfb {
namespace {

#define SKIP_WITHOUT_KERNEL()                                                \
  do {                                                                       \
    if (auto why = NetnsSandbox::unavailable_reason()) GTEST_SKIP() << *why; \
  } while (0)

// The kernel's tables after restoring `text` in a fresh namespace.
std::map<std::string, std::string> kernel_tables(const std::string& text) {
  NetnsSandbox ns;
  ns.restore(text);
  return split_tables(ns.save());
}

// Every table of `ours` is in the kernel's save, byte for byte, and the
// kernel has no table with rules that we lack.
void expect_same_tables(const std::map<std::string, std::string>& kernel, const std::string& ours,
                        const std::string& what) {
  const auto mine = split_tables(ours);
  ASSERT_FALSE(mine.empty()) << what;
  for (const auto& [name, block] : mine) {
    const auto it = kernel.find(name);
    ASSERT_NE(it, kernel.end()) << what << ": the kernel has no table " << name;
    EXPECT_EQ(block, it->second) << what << ": table " << name;
  }
  for (const auto& [name, block] : kernel) {
    if (!mine.contains(name)) {
      EXPECT_EQ(block.find("\n-A "), std::string::npos) << what << ": extra table " << name;
    }
  }
}

void check_against_kernel(const std::string& text, const std::string& what) {
  const std::string ours = write_iptables_save(read_iptables_save(text, what));
  const auto kernel = kernel_tables(text);
  expect_same_tables(kernel, ours, what);
  expect_same_tables(kernel_tables(ours), ours, what + " (canonical text restored)");
}

TEST(RulesetGenKernel, Docker) {
  SKIP_WITHOUT_KERNEL();
  check_against_kernel(generate_docker_ruleset({.containers = 10, .ports = 3, .networks = 2, .seed = 1}),
                       "docker 10 x 3 on 2 networks");
  check_against_kernel(generate_docker_ruleset({.containers = 40, .ports = 2, .networks = 17, .seed = 4}),
                       "docker 40 x 2 on 17 networks");
}

TEST(RulesetGenKernel, Kube) {
  SKIP_WITHOUT_KERNEL();
  check_against_kernel(generate_kube_ruleset({.services = 50, .endpoints = 3, .seed = 1}), "kube 50 x 3");
  check_against_kernel(generate_kube_ruleset({.services = 200, .endpoints = 5, .seed = 2}), "kube 200 x 5");
}

}  // namespace
}  // namespace nfb
