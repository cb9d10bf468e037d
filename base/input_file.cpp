#include "base/input_file.h"

#include <lzma.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "base/load_error.h"

namespace nfb {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string decompress_xz(const std::string& path, const std::string& packed) {
  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
    throw LoadError(SourceLocation{path}, "cannot start the xz decoder");
  }
  std::string out;
  out.resize(packed.size() * 4 + 4096);
  strm.next_in = reinterpret_cast<const uint8_t*>(packed.data());
  strm.avail_in = packed.size();
  lzma_ret rc = LZMA_OK;
  while (true) {
    if (strm.total_out == out.size()) out.resize(out.size() * 2);
    strm.next_out = reinterpret_cast<uint8_t*>(out.data()) + strm.total_out;
    strm.avail_out = out.size() - strm.total_out;
    rc = lzma_code(&strm, LZMA_FINISH);
    if (rc == LZMA_STREAM_END) break;
    if (rc != LZMA_OK && rc != LZMA_BUF_ERROR) break;
    if (rc == LZMA_BUF_ERROR && strm.avail_out != 0) break;  // input ended early
  }
  const uint64_t at = strm.total_in;
  out.resize(strm.total_out);
  lzma_end(&strm);
  if (rc != LZMA_STREAM_END) {
    const char* why = rc == LZMA_FORMAT_ERROR ? "not an xz stream"
                      : rc == LZMA_DATA_ERROR ? "corrupt xz data"
                      : rc == LZMA_BUF_ERROR  ? "xz stream ends early (truncated file)"
                                              : "xz decoding failed";
    throw LoadError(SourceLocation{path, 0, 0, at, true}, why);
  }
  return out;
}

}  // namespace

std::string read_input_file(const std::string& path) {
  if (path.empty()) throw LoadError(SourceLocation{path}, "no file name given (expected a path to a file)");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw LoadError(SourceLocation{path}, "is a directory (expected a file)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw LoadError(SourceLocation{path}, std::string("cannot open: ") + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw LoadError(SourceLocation{path}, "read error");
  std::string data = std::move(buf).str();
  if (ends_with(path, ".xz")) return decompress_xz(path, data);
  return data;
}

}  // namespace nfb
