// Reading capture files: classic pcap (micro- and nanosecond, either byte
// order) and pcapng (several interfaces with their names, link types and
// timestamp resolutions; comments, statistics and unknown blocks skipped).
//
// Two modes. kPreload (the default) reads the whole file into memory once
// (like tcpreplay -K) and indexes it: one walk at load checks every block and
// records each frame's place, length, timestamp and interface (24 bytes a
// frame), so handing out a burst later is reading the index -- a replay
// loop pays no format parsing -- and frames point into that memory, which
// the reader lets its user rewrite in place (mutable_frame()). kStream maps
// the file instead and walks it at each next_burst(), dropping the pages
// behind the previous burst (madvise DONTNEED), so a file larger than memory
// streams through a bounded resident set; frames then stay valid only until
// the next next_burst() call. (.xz files are always preloaded.)
// Why not libpcap: it reads
// pcapng but does not say which interface a packet came in on, and the
// pipeline needs that to know a frame's ingress interface.
//
// Errors throw LoadError with the file name and the byte offset of the block
// or record at fault, saying what was expected. An error is sticky: the
// reader stays at the block at fault, so calling next_burst() again throws
// the same error. A preloaded capture finds its error at load and hands out
// the frames before it first, exactly as a streamed one does.
//
// Timestamps: classic pcap seconds + micro/nanoseconds; pcapng units of the
// interface's if_tsresol (10^-n or 2^-n s, default 10^-6) plus its
// if_tsoffset seconds, converted to nanoseconds rounding down, modulo 2^64
// (a time before 1970 or after 2554 wraps). A record whose wire length is
// below its captured length is handed out with wirelen = caplen.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nfb {

/// One interface of a capture. Classic pcap files have exactly one, unnamed.
struct CaptureInterface {
  std::string name;        // pcapng if_name, "" when absent
  uint32_t link_type = 0;  // LINKTYPE_ number (1 Ethernet, 101 raw, 113 SLL, 276 SLL2, ...)
  uint32_t snaplen = 0;
};

/// One frame of a capture; data points into the reader's copy of the file.
struct CaptureFrame {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes captured (what data holds)
  uint32_t wirelen = 0;  // bytes on the wire (caplen < wirelen: cut by snaplen)
  uint64_t ts_ns = 0;    // nanoseconds since the epoch
  uint32_t iface = 0;    // index into interfaces()
  uint64_t offset = 0;   // file offset of the record
};

enum class CaptureMode : uint8_t { kPreload, kStream };

class CaptureReader {
 public:
  static constexpr uint32_t kSlack = 256;
  /// Reads PATH (".xz" is decompressed) into memory and checks its header;
  /// for pcapng also the blocks before the first packet (section header,
  /// interface descriptions), so interfaces() already lists those. Throws
  /// LoadError.
  explicit CaptureReader(const std::string& path, CaptureMode mode = CaptureMode::kPreload);
  /// The same for a capture already in memory; NAME stands for the file in
  /// error messages. Throws LoadError.
  static CaptureReader from_bytes(std::string name, std::vector<uint8_t> bytes);

  const std::string& path() const noexcept { return path_; }
  bool is_pcapng() const noexcept { return pcapng_; }
  /// Interfaces seen so far, in file order over all sections (pcapng may
  /// declare more as it goes; an interface precedes the packets that use it).
  /// Preloaded: every interface of the file (up to an error), from the start.
  /// A rewind() does not change it: walking the file again finds the same.
  const std::vector<CaptureInterface>& interfaces() const noexcept { return ifaces_; }
  /// Link type of the first interface (0 before any is declared).
  uint32_t link_type() const noexcept { return ifaces_.empty() ? 0 : ifaces_[0].link_type; }

  /// Fills up to out.size() frames; 0 at the end. Throws LoadError on a
  /// malformed record; the frames before it in the same burst are handed
  /// out first and the next call throws. Preloaded: frames stay valid as
  /// long as the reader lives (rewind() included); streamed: until the next
  /// next_burst() call.
  size_t next_burst(std::span<CaptureFrame> out);
  /// Starts again from the first frame (for --loop).
  void rewind() noexcept;
  /// Preloaded: the writable bytes of a frame this reader handed out (the
  /// reader owns them; what is written stays, rewind() included), followed
  /// by at least kSlack bytes of the file or of zeros, so a fixed-size copy
  /// of a frame's first kSlack bytes never leaves the buffer. Streamed: null
  /// (the mapping is read-only).
  uint8_t* mutable_frame(const CaptureFrame& f) noexcept {
    return streaming_ ? nullptr : static_cast<uint8_t*>(owned_->addr) + (f.data - base_);
  }
  /// Preloaded: starts loading the first bytes (two cache lines) of the next
  /// `n` frames, so that a caller working on one burst has the next one's
  /// headers in cache when it gets to them. Streamed: nothing.
  void prefetch_next(size_t n, size_t skip = 0) const noexcept {
    if (streaming_) return;
    const size_t end = std::min(index_.size(), next_ + skip + n);
    for (size_t i = next_ + skip; i < end; ++i) {
      const uint8_t* p = base_ + (index_[i].where & kOffsetMask);
      __builtin_prefetch(p, 1);
      __builtin_prefetch(p + 64, 1);
    }
  }
  /// Preloaded: starts loading the first two cache lines of the frame
  /// `ahead` frames after the next one, if there is one (a caller working
  /// through a burst prefetches the next burst's frames one at a time).
  void prefetch_ahead(size_t ahead) const noexcept {
    if (streaming_ || next_ + ahead >= index_.size()) return;
    const uint8_t* p = base_ + (index_[next_ + ahead].where & kOffsetMask);
    __builtin_prefetch(p, 1);
    __builtin_prefetch(p + 64, 1);
  }
  /// Frames in the file (preloaded: up to an error; streamed: those handed
  /// out so far).
  uint64_t frame_count() const noexcept { return streaming_ ? handed_out_ : index_.size(); }
  /// Byte offset of the next block or record.
  uint64_t offset() const noexcept {
    if (streaming_) return pos_;
    if (next_ >= index_.size()) return index_end_;
    const uint64_t where = index_[next_].where;
    return (where & kOffsetMask) - header_of(where);
  }
  /// Size of the file (decompressed for .xz) in bytes.
  uint64_t size() const noexcept { return size_; }
  bool streaming() const noexcept { return streaming_; }

 private:
  struct PcapngIface {
    uint64_t units_per_sec = 1'000'000;  // if_tsresol, default microseconds
    int64_t offset_s = 0;                // if_tsoffset
  };
  CaptureReader(std::string name, std::vector<uint8_t> bytes);
  void read_file_header();
  [[noreturn]] void fail(uint64_t at, const std::string& what) const;
  uint16_t u16(uint64_t at) const noexcept;
  uint32_t u32(uint64_t at) const noexcept;
  uint64_t u64(uint64_t at) const noexcept;
  bool next_pcap(CaptureFrame& f);
  // Walks blocks from pos_ to the next packet block and fills *f from it;
  // with f == nullptr stops in front of that block instead. false at the end.
  bool next_pcapng(CaptureFrame* f);
  void read_section_header(uint64_t at);
  void read_interface_block(uint64_t at, uint32_t block_len);

  struct Mapping {
    void* addr = nullptr;
    size_t len = 0;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
  };
  // Preloaded: one frame's place in the file.
  struct Indexed {
    uint64_t ts_ns = 0;
    // The frame's bytes' offset (48 bits) | the record header's length
    // code (2 bits: pcap 16, pcapng 28, pcapng simple 12) << 48 | the
    // interface (14 bits) << 50.
    uint64_t where = 0;
    uint32_t caplen = 0;
    uint32_t wirelen = 0;
  };
  static constexpr uint64_t kOffsetMask = (uint64_t{1} << 48) - 1;
  static constexpr uint32_t kMaxIndexedIfaces = 1U << 14;
  static uint32_t header_of(uint64_t where) noexcept {
    constexpr uint32_t kHeader[4] = {16, 28, 12, 0};
    return kHeader[(where >> 48) & 3U];
  }
  static_assert(sizeof(Indexed) == 24);
  void build_index();
  void allocate_owned(size_t size);
  static constexpr uint64_t kDropChunk = 8U << 20;
  void drop_pages_before(uint64_t offset) noexcept;

  std::string path_;
  std::unique_ptr<Mapping> owned_;  // preloaded: the file's bytes, then kSlack zeros
  std::unique_ptr<Mapping> map_;   // streamed: the file's mapping
  const uint8_t* base_ = nullptr;  // the file's bytes (owned_ or map_)
  uint64_t size_ = 0;
  bool streaming_ = false;
  uint64_t dropped_to_ = 0;        // streamed: pages below this were dropped
  bool pcapng_ = false;
  bool swapped_ = false;      // file byte order differs from the machine's
  bool nanosecond_ = false;   // classic pcap
  uint64_t first_record_ = 0;
  uint64_t pos_ = 0;
  std::vector<CaptureInterface> ifaces_;
  std::vector<PcapngIface> ng_ifaces_;  // per interface of the current section
  uint32_t section_base_ = 0;           // index in ifaces_ of the section's first interface
  uint32_t next_iface_ = 0;             // index in ifaces_ of the next interface block
  std::vector<Indexed> index_;          // preloaded: every frame up to the end or an error
  size_t next_ = 0;                     // preloaded: the next frame of index_
  uint64_t index_end_ = 0;              // preloaded: where the walk stopped (end, or the block at fault)
  std::exception_ptr index_error_;      // preloaded: what stopped it, if not the end
  uint64_t handed_out_ = 0;             // streamed: frames handed out
};

}  // namespace nfb
