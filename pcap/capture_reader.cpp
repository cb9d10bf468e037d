#include "pcap/capture_reader.h"

#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>

#include "classifier/load_error.h"

namespace nfb {

struct CaptureReader::PcapHandle {
  pcap_t* p = nullptr;
  ~PcapHandle() {
    if (p != nullptr) pcap_close(p);
  }
};

namespace {

// pcap_datalink() answers with DLT_ values; report LINKTYPE_ values, which is
// what the files hold and what the frame parser takes.
uint32_t linktype_of(int dlt) {
  switch (dlt) {
    case DLT_RAW: return 101;
#ifdef DLT_IPV4
    case DLT_IPV4: return 228;
#endif
    default: return static_cast<uint32_t>(dlt);
  }
}

}  // namespace

CaptureReader::CaptureReader(const std::string& path) : path_(path), pcap_(std::make_unique<PcapHandle>()) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_->p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (pcap_->p == nullptr) {
    throw LoadError(SourceLocation{path, 0, 0, 0, true},
                    std::string("not a readable pcap or pcapng capture: ") + errbuf);
  }
  nanosecond_ = pcap_get_tstamp_precision(pcap_->p) == PCAP_TSTAMP_PRECISION_NANO;
  link_type_ = linktype_of(pcap_datalink(pcap_->p));
  // One arena for a burst, never reallocated: a burst ends early when less
  // than one maximal record (the file's snapshot length) would still fit.
  const int snap = pcap_snapshot(pcap_->p);
  max_record_ = snap > 0 && snap < 262144 ? static_cast<uint32_t>(snap) : 262144U;
  arena_.reserve(8U << 20);
}

CaptureReader::~CaptureReader() = default;

uint64_t CaptureReader::offset() const noexcept {
  FILE* f = pcap_file(pcap_->p);
  if (f == nullptr) return 0;
  long pos = std::ftell(f);
  return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

size_t CaptureReader::next_burst(std::span<CaptureFrame> out) {
  arena_.clear();
  size_t n = 0;
  // Offsets into the arena first: it may grow (and move) while the burst fills.
  size_t starts[1024];
  const size_t max = out.size() < 1024 ? out.size() : 1024;
  while (n < max && arena_.capacity() - arena_.size() >= max_record_) {
    const uint64_t record_offset = offset();
    pcap_pkthdr* header = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(pcap_->p, &header, &bytes);
    if (rc == PCAP_ERROR_BREAK) break;  // end of file
    if (rc != 1) {
      throw LoadError(SourceLocation{path_, 0, 0, record_offset, true},
                      std::string("bad capture record: ") + pcap_geterr(pcap_->p));
    }
    if (header->caplen > max_record_) {
      throw LoadError(SourceLocation{path_, 0, 0, record_offset, true},
                      "capture record longer than the file's snapshot length");
    }
    starts[n] = arena_.size();
    arena_.insert(arena_.end(), bytes, bytes + header->caplen);
    CaptureFrame& f = out[n];
    f.caplen = header->caplen;
    f.wirelen = header->len;
    const uint64_t frac = static_cast<uint64_t>(header->ts.tv_usec);
    f.ts_ns = static_cast<uint64_t>(header->ts.tv_sec) * 1'000'000'000ULL + (nanosecond_ ? frac : frac * 1000);
    ++n;
  }
  for (size_t i = 0; i < n; ++i) out[i].data = arena_.data() + starts[i];
  return n;
}

}  // namespace nfb
