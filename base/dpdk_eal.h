// Starting DPDK's Environment Abstraction Layer (EAL), once per process.
//
// DPDK libraries (here rte_acl) allocate from the EAL's heap and register
// themselves in its tables, so the EAL must run before the first of them is
// used, and rte_eal_init() may run only once in a process. This helper owns
// that call: the first start_dpdk_eal() initialises the EAL in a mode that
// needs no privileges and leaves nothing behind,
//
//     --no-huge --no-pci --no-shconf --no-telemetry -m 1024  + the caller's extra arguments
//
// (ordinary pages, no devices, no shared config files, no telemetry socket,
// a 1 GiB heap). Extra arguments are appended as given, e.g.
// `--force-max-simd-bitwidth=512` (without it DPDK allows at most 256-bit
// SIMD, so rte_acl's avx512x32 is refused) or `-l 0`. When they name the
// memory size themselves (`-m N`, `-mN`, `--socket-mem ...`) the default
// `-m 1024` is left out.
//
// Side effects to know: the EAL pins the calling thread to its main lcore's
// CPU (the first lcore: CPU 0 unless `-l`/`--lcores` says otherwise), starts
// an interrupt thread and one sleeping thread per other lcore, maps the heap
// (-m) as anonymous memory that is touched only when used, and logs to
// stderr (`--log-level=lib.eal:warning` quiets it).
//
// Thread-safe: concurrent and later calls wait for the first and then
// return; they do not restart the EAL, and their extra arguments are ignored.
// A failed start is remembered: every later call throws the same error.
#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace nfb {

/// The EAL did not start. what(): the full argument list and DPDK's reason.
class DpdkEalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Starts the EAL if no call has yet (see above). Returns true when this
/// call started it, false when it was already running. Throws DpdkEalError
/// when the start fails (now or in an earlier call).
bool start_dpdk_eal(std::span<const std::string> extra_args = {});

/// Starts the EAL with exactly `args` after the program name (nothing
/// added: for real ports the caller names its devices, memory and lcores),
/// unless it runs already: then returns false and `args` are ignored.
/// Throws DpdkEalError like start_dpdk_eal().
bool start_dpdk_eal_exact(std::span<const std::string> args);

/// Whether the EAL runs (a start_dpdk_eal() call succeeded).
bool dpdk_eal_running() noexcept;

/// The arguments the EAL was started with, program name first (empty if no
/// start was attempted).
std::vector<std::string> dpdk_eal_args();

}  // namespace nfb
