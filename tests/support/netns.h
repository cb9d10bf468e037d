// A throw-away Linux network namespace for tests that ask the real kernel.
//
// Each NetnsSandbox owns one freshly created namespace (`ip netns add
// nfbtest-<pid>-<n>`), so the iptables tables, conntrack table and interfaces a
// test sees start empty and vanish with the object (`ip netns del` in the
// destructor, which also runs when a test assertion failed and unwound).
// Commands run inside it with `ip netns exec NAME argv...`, started with
// fork/exec (no shell: arguments are passed verbatim, nothing is word-split or
// globbed), with stdin fed from a string and stdout/stderr captured.
//
// Kernel tests need root, `ip` and iptables-legacy; unavailable_reason() says
// which is missing so a test can `GTEST_SKIP() << *reason` instead of failing.
//
// Control-plane test code only: everything here may allocate and block. Only
// the standard library and POSIX are used, so any test executable can link it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nfb {

/// What a finished command left behind.
struct CommandResult {
  int exit_code = -1;      // exit status, or -1 if the command did not exit normally
  int term_signal = 0;     // the signal that killed it, or 0
  bool timed_out = false;  // killed (SIGKILL) because it outran the timeout
  std::string out;         // everything written to stdout
  std::string err;         // everything written to stderr (and exec failures)

  bool ok() const noexcept { return exit_code == 0; }
  /// One line for test failure messages: "exit 2: <stderr>" and the like.
  std::string describe() const;
};

/// Runs argv[0] (searched in PATH, then /usr/local/sbin:/usr/sbin:/sbin) with
/// the arguments argv[1..] in the current namespace, writes stdin_text to its
/// stdin and then closes it, and collects stdout and stderr until both are
/// closed (a background grandchild that keeps them open makes this wait for
/// the timeout). The child gets the caller's environment with LC_ALL=C, so
/// messages do not depend on the caller's locale. A command still running
/// after `timeout` is killed with SIGKILL. Never
/// throws for a failing command (a command that cannot be found or executed
/// gives exit_code 127 and the reason in err); throws std::runtime_error only
/// when the process cannot be started at all (pipe/fork failure) or argv is
/// empty. Safe to call from a multi-threaded process: the child runs only
/// async-signal-safe calls between fork and exec.
/// The "#ipset CMD ..." lines of a ruleset text: the IP sets its -m set
/// rules need, which NetnsSandbox::restore() creates first with `ipset
/// restore` (iptables reads them as comments). `marked` true keeps the
/// "#ipset " marker (lines to prepend to another ruleset text), false gives
/// `ipset restore` input.
std::string ipset_lines(std::string_view ruleset, bool marked);

CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_text = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// The absolute path of an executable named `name`, looked up as run_command
/// does, or nullopt. A name containing '/' is returned as is if executable.
std::optional<std::string> find_executable(std::string_view name);

class NetnsSandbox {
 public:
  /// Why kernel tests cannot run on this machine (not root; `ip`,
  /// iptables-legacy-restore or iptables-legacy-save missing; a namespace
  /// cannot be created; legacy iptables does not work inside one), or nullopt
  /// when they can. Probes once per process (creating and deleting one
  /// namespace) and caches the answer.
  static std::optional<std::string> unavailable_reason();

  /// Creates the namespace. Throws std::runtime_error (with ip's stderr) if
  /// `ip netns add` fails.
  NetnsSandbox();
  /// Deletes the namespace; errors are ignored (nothing can be done about
  /// them during unwinding).
  ~NetnsSandbox();

  NetnsSandbox(const NetnsSandbox&) = delete;
  NetnsSandbox& operator=(const NetnsSandbox&) = delete;
  NetnsSandbox(NetnsSandbox&&) = delete;
  NetnsSandbox& operator=(NetnsSandbox&&) = delete;

  /// The namespace's name, "nfbtest-<pid>-<n>".
  const std::string& name() const noexcept { return name_; }

  /// Runs argv inside the namespace (`ip netns exec NAME argv...`); argv[0]
  /// is resolved to an absolute path first. See run_command.
  CommandResult run(const std::vector<std::string>& argv, std::string_view stdin_text = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  /// Loads `ruleset` with iptables-legacy-restore (with -c when `counters`,
  /// so `[p:b]` counters in the text are kept). Tables named in the text are
  /// replaced; others are left alone. Throws std::runtime_error carrying the
  /// exit status and iptables' stderr if it is rejected.
  void restore(std::string_view ruleset, bool counters = false) const;

  /// The output of iptables-legacy-save (-c when `counters`), including its
  /// `#` comment lines. Throws std::runtime_error if the command fails.
  std::string save(bool counters = false) const;

 private:
  std::string name_;
};

/// Splits iptables-save output into tables: table name -> the table's block,
/// from its `*table` line up to and including `COMMIT`, one '\n' after every
/// line. Lines starting with '#' are dropped everywhere; blank lines outside a
/// block are dropped. Any other line outside a block (which iptables-save
/// never prints) is kept under the key "" so a comparison still notices it. A
/// table named twice gets both blocks, concatenated. A trailing '\r' is kept:
/// the helper does not normalise what it compares.
std::map<std::string, std::string> split_tables(std::string_view save_text);

/// save_text without its '#' comment lines (what the canonical .kernel files
/// hold). Every kept line ends in '\n'.
std::string strip_comment_lines(std::string_view save_text);

}  // namespace nfb
