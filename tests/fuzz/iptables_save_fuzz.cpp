// libFuzzer target for the iptables-save reader and writer.
//
// The input bytes are read as an iptables-save file. A LoadError is the
// expected answer to bad input; any other exception escapes and libFuzzer
// reports it, and the sanitizers catch memory errors. When the input loads,
// its canonical text must read back and print identically (the writer's
// output is a fixed point of read + write), with and without counters.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/iptables_save.h"

namespace {

void check_round_trip(const nfb::Ruleset& rs, nfb::WriteOptions options) {
  std::string first;
  try {
    first = nfb::write_iptables_save(rs, options);
  } catch (const nfb::LoadError&) {
    __builtin_trap();  // only ClassBench port matches are unwritable; the reader never makes them
  }
  nfb::Ruleset again;
  try {
    again = nfb::read_iptables_save(first, "rewritten");
  } catch (const nfb::LoadError&) {
    __builtin_trap();  // our own canonical text must load
  }
  if (nfb::write_iptables_save(again, options) != first) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nfb::Ruleset rs;
  try {
    rs = nfb::read_iptables_save(text, "fuzz");
  } catch (const nfb::LoadError&) {
    return 0;
  }
  check_round_trip(rs, {});
  check_round_trip(rs, {.counters = true});
  return 0;
}
