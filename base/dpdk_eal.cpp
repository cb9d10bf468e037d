#include "base/dpdk_eal.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <atomic>
#include <mutex>

namespace nfb {
namespace {

struct EalState {
  std::mutex mu;
  bool tried = false;
  std::string error;              // set when the start failed
  std::vector<std::string> args;  // kept for the life of the process: the EAL may keep pointers into argv
  std::vector<char*> argv;
  std::atomic<bool> running{false};
};

EalState& eal_state() {
  static EalState state;
  return state;
}

// Whether the caller's arguments size the heap themselves.
bool names_memory(std::span<const std::string> extra) {
  for (const std::string& a : extra) {
    if (a == "-m" || a.starts_with("-m") || a.starts_with("--socket-mem")) return true;
  }
  return false;
}

}  // namespace

namespace {

bool start_locked(EalState& s, std::vector<std::string> args) {
  s.tried = true;
  s.args = std::move(args);
  for (std::string& a : s.args) s.argv.push_back(a.data());
  s.argv.push_back(nullptr);
  // rte_eal_init() may permute argv (getopt); s.args keeps the order given.
  const int rc = rte_eal_init(static_cast<int>(s.args.size()), s.argv.data());
  if (rc < 0) {
    const int err = rte_errno;
    s.error = fmt::format("DPDK EAL did not start (rte_eal_init {}): {} (rte_errno {})",
                          fmt::join(s.args, " "), rte_strerror(err), err);
    throw DpdkEalError(s.error);
  }
  s.running.store(true, std::memory_order_release);
  return true;
}

}  // namespace

bool start_dpdk_eal(std::span<const std::string> extra_args) {
  EalState& s = eal_state();
  std::lock_guard lock(s.mu);
  if (s.tried) {
    if (!s.error.empty()) throw DpdkEalError(s.error);
    return false;
  }
  std::vector<std::string> args = {"nfbench", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry"};
  if (!names_memory(extra_args)) {
    args.emplace_back("-m");
    args.emplace_back("1024");
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return start_locked(s, std::move(args));
}

bool start_dpdk_eal_exact(std::span<const std::string> args) {
  EalState& s = eal_state();
  std::lock_guard lock(s.mu);
  if (s.tried) {
    if (!s.error.empty()) throw DpdkEalError(s.error);
    return false;
  }
  std::vector<std::string> all = {"nfbench"};
  all.insert(all.end(), args.begin(), args.end());
  return start_locked(s, std::move(all));
}

bool dpdk_eal_running() noexcept {
  return eal_state().running.load(std::memory_order_acquire);
}

std::vector<std::string> dpdk_eal_args() {
  EalState& s = eal_state();
  std::lock_guard lock(s.mu);
  return s.args;
}

}  // namespace nfb
