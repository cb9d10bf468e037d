// nfbench snapshot: what a real host's netfilter path depends on, saved
// into one folder that `nfbench replay --host DIR` (and the kernel tests'
// hosts) read back.
//
// The folder's format: netfilter/host_folder.h.
#pragma once

#include <string>

#include "netfilter/host_folder.h"

namespace nfb {

/// Takes the snapshot into `dir` (created if missing; files in it are
/// replaced). Returns the lines of snapshot.txt's report. Throws
/// std::runtime_error when iptables-save cannot be run or fails, or the
/// folder cannot be written.
std::string take_snapshot(const std::string& dir);

}  // namespace nfb
