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

/// The cases of a file of whole rules files (tests/data/iptables/
/// differential/files.cases): the parts between "----" lines, the comment
/// block before the first left out.
inline std::vector<std::string> file_cases(const std::filesystem::path& p) {
  const std::string all = read_file(p);
  std::vector<std::string> out;
  size_t start = 0;
  bool header = true;
  while (start < all.size()) {
    const size_t sep = all.find("----\n", start);
    std::string text = all.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    start = sep == std::string::npos ? all.size() : sep + 5;
    if (header) {
      header = false;
      continue;
    }
    out.push_back(std::move(text));
  }
  return out;
}

}  // namespace nfb::test
