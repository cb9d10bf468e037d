// Errors found while loading input (rule files, traces, captures, host data).
//
// Loading is control-plane work: it may allocate and it reports bad input by
// throwing LoadError, whose what() reads `FILE:LINE:COL: what was expected`
// (or `FILE: offset N: ...` for binary input). Nothing on the packet path
// throws; tools/ catches LoadError, prints it and exits non-zero.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace nfb {

/// Where in an input something was found. line and column are 1-based;
/// 0 means "not applicable" (binary input uses offset instead).
struct SourceLocation {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  uint64_t offset = 0;  // byte offset, for binary input
  bool has_offset = false;

  /// "FILE:LINE:COL", "FILE:LINE", "FILE: offset N" or "FILE".
  std::string str() const;
};

class LoadError : public std::runtime_error {
 public:
  LoadError(SourceLocation where, const std::string& message);
  const SourceLocation& where() const noexcept { return where_; }
  /// The message without the location prefix.
  const std::string& message() const noexcept { return message_; }

 private:
  SourceLocation where_;
  std::string message_;
};

}  // namespace nfb
