#include "base/load_error.h"

#include <fmt/format.h>

namespace nfb {

std::string SourceLocation::str() const {
  if (has_offset) return fmt::format("{}: offset {}", file, offset);
  if (line == 0) return file;
  if (column == 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

LoadError::LoadError(SourceLocation where, const std::string& message)
    : std::runtime_error(where.str() + ": " + message), where_(std::move(where)), message_(message) {}

}  // namespace nfb
