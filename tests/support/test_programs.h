// The programs the tests run by name, and the Debian package of each.
//
// A fresh machine runs the tests after tools/run.sh installs its package
// list, so every program a test executes must come from a package in that
// list (or from an Essential package every Debian system has). run_command
// (netns.h) refuses to run a program missing from this table, so a test
// that starts using a new program fails here, on the developer's machine,
// rather than on a fresh one; tools/check_test_programs.py (meson test
// test_programs) checks that every package below is in run.sh's list.
#pragma once

#include <string_view>

namespace nfb::test {

struct TestProgram {
  std::string_view name;
  std::string_view package;
};

inline constexpr TestProgram kTestPrograms[] = {
    {"ip", "iproute2"},
    {"iptables", "iptables"},
    {"iptables-legacy", "iptables"},
    {"iptables-legacy-save", "iptables"},
    {"iptables-legacy-restore", "iptables"},
    {"conntrack", "conntrack"},
    {"ipset", "ipset"},
    {"sysctl", "procps"},
    {"sh", "dash"},
    {"cat", "coreutils"},
    {"printf", "coreutils"},
    {"true", "coreutils"},
    {"sleep", "coreutils"},
};

/// The entry of `name`, or nullptr when the tests may not run it.
constexpr const TestProgram* find_test_program(std::string_view name) noexcept {
  for (const TestProgram& p : kTestPrograms) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace nfb::test
