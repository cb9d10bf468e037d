// Reading a whole input file into memory, transparently decompressing .xz
// (the bundled ClassBench sets and traces are xz-compressed).
//
// Control plane only. Throws LoadError naming the file (and, for a corrupt
// .xz stream, the compressed byte offset where decoding failed).
#pragma once

#include <string>

namespace nfb {

/// The contents of PATH; if PATH ends in ".xz" the decompressed contents.
/// An empty path, a directory or a file that cannot be opened is a
/// LoadError naming it (an empty file is not: callers say whether it may be).
std::string read_input_file(const std::string& path);

}  // namespace nfb
