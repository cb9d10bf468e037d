// Reading capture files (pcap, pcapng) frame by frame, in bursts.
//
// Control plane opens the file (throws LoadError with the file name and, for a
// malformed record, the byte offset); next_burst() then hands out frames whose
// bytes stay valid until the following call. Frames are copied into one arena
// per burst so a whole burst can be parsed in one staged pass.
//
// Built on libpcap, which reads pcap (micro- and nanosecond) and pcapng files
// whose interfaces share one link type.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nfb {

/// One frame of a capture. data points into the reader's arena.
struct CaptureFrame {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes captured (what data holds)
  uint32_t wirelen = 0;  // bytes on the wire (caplen < wirelen: cut by snaplen)
  uint64_t ts_ns = 0;    // timestamp, nanoseconds since the epoch
};

class CaptureReader {
 public:
  /// Opens PATH. Throws LoadError when the file is missing or not a capture.
  explicit CaptureReader(const std::string& path);
  ~CaptureReader();
  CaptureReader(const CaptureReader&) = delete;
  CaptureReader& operator=(const CaptureReader&) = delete;

  /// The capture's link type as a pcap LINKTYPE_ number (1 Ethernet, 101 raw
  /// IP, 113 Linux SLL, 276 Linux SLL2, 228 IPv4).
  uint32_t link_type() const noexcept { return link_type_; }
  const std::string& path() const noexcept { return path_; }

  /// Fills up to out.size() frames; returns how many (0 at the end of the
  /// file). Throws LoadError naming the file offset if a record is truncated
  /// or malformed. Frames stay valid until the next call.
  size_t next_burst(std::span<CaptureFrame> out);

  /// Byte offset in the file of the next record (for error messages).
  uint64_t offset() const noexcept;

 private:
  std::string path_;
  struct PcapHandle;
  std::unique_ptr<PcapHandle> pcap_;
  uint32_t link_type_ = 0;
  bool nanosecond_ = false;
  uint32_t max_record_ = 0;
  std::vector<uint8_t> arena_;
};

}  // namespace nfb
