// Reading a whole input file into memory, transparently decompressing .xz
// (the bundled ClassBench sets and traces are xz-compressed).
//
// Control plane only. Throws LoadError naming the file (and, for a corrupt
// .xz stream, the compressed byte offset where decoding failed).
#pragma once

#include <string>

namespace nfb {

/// The contents of PATH; if PATH ends in ".xz" the decompressed contents.
std::string read_input_file(const std::string& path);

}  // namespace nfb
