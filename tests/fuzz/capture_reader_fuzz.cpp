// libFuzzer target for the capture reader (pcap/capture_reader.h).
//
// Input: a whole capture file, handed to CaptureReader::from_bytes() in an
// allocation of exactly its size, so AddressSanitizer catches any read past
// its end. Bad input must end in LoadError and nothing else.
//
// Checks, each ending in __builtin_trap() when violated:
//  - every frame's bytes equal the input's bytes where its record or block
//    puts them (pcap: offset + 16; pcapng enhanced/obsolete packet block:
//    offset + 28, simple packet block: offset + 12), and lie inside the input;
//  - caplen <= wirelen, caplen <= 262144, iface < interfaces().size(),
//    offsets strictly increase and stay below offset(), which stays <= size;
//  - classic pcap timestamps equal sec * 10^9 + usec * 1000 (or nsec),
//    computed here from the bytes;
//  - after the end next_burst() keeps returning 0; an error is sticky (the
//    same message again);
//  - after rewind() a walk in bursts of another size finds the same frames,
//    interfaces and outcome (end or the same error).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/load_error.h"
#include "pcap/capture_reader.h"

namespace {

using nfb::CaptureFrame;
using nfb::CaptureReader;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Seen {
  uint64_t offset;
  uint32_t caplen;
  uint32_t wirelen;
  uint64_t ts_ns;
  uint32_t iface;
  bool operator==(const Seen&) const = default;
};

struct Walk {
  std::vector<Seen> frames;
  std::string error;  // "" when the walk reached the end
};

uint32_t load32(const uint8_t* p, bool big) {
  return big ? (uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3])
             : (uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0]);
}

// Where the frame's bytes sit in the input, from the record or block type.
size_t data_start(const uint8_t* in, const CaptureFrame& f, bool pcapng) {
  if (!pcapng) return f.offset + 16;
  const uint8_t type = static_cast<uint8_t>(in[f.offset] | in[f.offset + 3]);  // 2, 3 or 6 in either order
  check(type == 2 || type == 3 || type == 6);
  return f.offset + (type == 3 ? 12 : 28);
}

void check_frame(const uint8_t* in, size_t size, const CaptureReader& r, const CaptureFrame& f) {
  check(f.data != nullptr);
  check(f.caplen <= f.wirelen && f.caplen <= 262144);
  check(f.iface < r.interfaces().size());
  check(f.offset < r.offset() && r.offset() <= size);
  const size_t at = data_start(in, f, r.is_pcapng());
  check(at <= size && f.caplen <= size - at);
  check(f.caplen == 0 || std::memcmp(f.data, in + at, f.caplen) == 0);
  if (!r.is_pcapng()) {
    check(f.iface == 0);
    const uint32_t magic = load32(in, false);
    const bool big = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
    const bool nano = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
    const uint64_t sec = load32(in + f.offset, big);
    const uint64_t frac = load32(in + f.offset + 4, big);
    check(f.ts_ns == sec * 1'000'000'000ULL + (nano ? frac : frac * 1000));
  }
}

Walk walk(const uint8_t* in, size_t size, CaptureReader& r, size_t burst) {
  Walk w;
  CaptureFrame frames[7];
  try {
    while (size_t n = r.next_burst({frames, burst})) {
      check(n <= burst);
      for (size_t i = 0; i < n; ++i) {
        check_frame(in, size, r, frames[i]);
        check(w.frames.empty() || frames[i].offset > w.frames.back().offset);
        w.frames.push_back({frames[i].offset, frames[i].caplen, frames[i].wirelen, frames[i].ts_ns, frames[i].iface});
      }
    }
    check(r.next_burst({frames, burst}) == 0);
    check(r.offset() == size);
  } catch (const nfb::LoadError& e) {
    w.error = e.what();
    check(!w.error.empty());
    try {
      r.next_burst({frames, burst});
      check(false);
    } catch (const nfb::LoadError& again) {
      check(w.error == again.what());
    }
  }
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size > (1U << 20)) return 0;
  std::vector<uint8_t> bytes(data, data + size);
  try {
    CaptureReader r = CaptureReader::from_bytes("fuzz.cap", std::move(bytes));
    check(r.offset() <= size);
    if (!r.is_pcapng()) check(r.interfaces().size() == 1);
    const Walk first = walk(data, size, r, 7);
    const size_t ifaces = r.interfaces().size();
    r.rewind();
    const Walk second = walk(data, size, r, 3);
    check(second.frames == first.frames && second.error == first.error);
    check(r.interfaces().size() == ifaces);
  } catch (const nfb::LoadError&) {
    // Refused by the constructor: fine.
  }
  return 0;
}
