// Finding and reading the project's test data from a test (test code).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nfb::test {

/// The source tree: $NFB_SOURCE_ROOT (meson test sets it), else, for a test
/// run by hand, the nearest directory up from here that holds tests/data.
inline std::filesystem::path source_root() {
  namespace fs = std::filesystem;
  if (const char* r = std::getenv("NFB_SOURCE_ROOT")) return r;
  for (fs::path p = fs::current_path(); !p.empty(); p = p.parent_path()) {
    if (fs::is_directory(p / "tests/data")) return p;
    if (p == p.parent_path()) break;
  }
  return fs::current_path();
}

/// The whole file as bytes ("" when it cannot be read).
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The files of `dir` whose extension is `ext` (".input"), sorted.
inline std::vector<std::filesystem::path> files_with(const std::filesystem::path& dir, const std::string& ext) {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace nfb::test
