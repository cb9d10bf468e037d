// Writing capture files: pcapng (one section, any number of interfaces, each
// with its name and link type, nanosecond timestamps) and classic pcap
// (nanosecond magic, one link type).
//
// The replay writes the frames the host sends, one file per egress interface,
// and other tools (libpcap, tcpdump, Wireshark) must read them. Both writers
// put blocks into one fixed buffer allocated when the file is opened and
// write it out with write(2) when full, so writing a frame costs a copy of its
// bytes and never allocates. Files are in the machine's byte order (readers
// handle either).
//
// Errors: opening the file and declaring interfaces throw LoadError naming
// the file (control plane). write() is on the packet path: it never throws.
// A frame for an interface never declared is dropped; after an I/O error
// every later frame is dropped; both are counted and remembered, and flush()
// and close() throw LoadError saying what went wrong. The destructor closes too but has to swallow that error:
// call close() to learn about it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nfb {

namespace detail {

/// A file written through a fixed buffer (the part both writers share).
/// Movable, not copyable; a moved-from object is closed.
class BufferedFile {
 public:
  static constexpr size_t kBufferSize = 1 << 20;

  /// Creates or truncates PATH. Throws LoadError naming it on failure.
  explicit BufferedFile(std::string path);
  ~BufferedFile();
  BufferedFile(BufferedFile&& other) noexcept;
  BufferedFile& operator=(BufferedFile&& other) noexcept;
  BufferedFile(const BufferedFile&) = delete;
  BufferedFile& operator=(const BufferedFile&) = delete;

  const std::string& path() const noexcept { return path_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  /// false once an I/O error was recorded; appends are then ignored.
  bool io_ok() const noexcept { return errno_ == 0; }

  /// Copies N bytes into the buffer, writing it out whenever it fills.
  /// Never allocates or throws; an I/O error is recorded.
  void append(const void* p, size_t n) noexcept;
  void append_u16(uint16_t v) noexcept { append(&v, sizeof v); }
  void append_u32(uint32_t v) noexcept { append(&v, sizeof v); }
  /// Zero bytes up to the next multiple of 4 after N bytes of content.
  void append_pad4(size_t n) noexcept;

  /// Records a frame that was not written: for an undeclared interface
  /// (first one kept for the message), or because of an earlier error.
  void note_bad_interface(uint32_t iface) noexcept;
  void note_dropped() noexcept { ++dropped_; }
  uint64_t dropped() const noexcept { return dropped_; }

  /// Writes out the buffer. Throws LoadError if any error was recorded.
  void flush();
  /// Flushes and closes; throws LoadError if anything failed. A second call
  /// does nothing.
  void close();
  /// Throws LoadError naming the file with MESSAGE (for control-plane misuse).
  [[noreturn]] void fail(const std::string& message) const;

 private:
  void write_out() noexcept;
  [[noreturn]] void throw_recorded() const;

  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;  // kBufferSize bytes, allocated once
  size_t used_ = 0;
  int errno_ = 0;                  // first I/O error
  uint64_t bad_iface_frames_ = 0;  // frames for undeclared interfaces
  uint32_t first_bad_iface_ = 0;
  uint64_t dropped_ = 0;  // frames not written, for any reason
};

}  // namespace detail

/// pcapng writer: a section header block (shb_userappl "nfbench"), then
/// interface description blocks and enhanced packet blocks as they come.
class PcapngWriter {
 public:
  static constexpr uint32_t kDefaultSnaplen = 262144;

  /// Creates or truncates PATH and writes the section header. Throws LoadError.
  explicit PcapngWriter(const std::string& path);
  ~PcapngWriter() = default;  // closes, swallowing errors (see close())
  PcapngWriter(PcapngWriter&&) noexcept = default;
  PcapngWriter& operator=(PcapngWriter&&) noexcept = default;

  /// Declares an interface (if_name NAME, if_tsresol 10^-9) and returns its
  /// index for write(). LINK_TYPE is a LINKTYPE_ number below 65536; SNAPLEN
  /// 0 means unlimited. Throws LoadError on a bad argument or a closed file.
  uint32_t add_interface(std::string name, uint32_t link_type, uint32_t snaplen = kDefaultSnaplen);
  size_t interface_count() const noexcept { return snaplens_.size(); }

  /// Appends FRAME as captured on interface IFACE at TS_NS (nanoseconds since
  /// the epoch), WIRELEN bytes long on the wire. The captured bytes are cut
  /// to the interface's snaplen; a WIRELEN below the captured length is
  /// raised to it. Never throws or allocates: errors show at close().
  /// COMMENT, when not empty, goes into the block's opt_comment (cut at
  /// 65535 bytes): the replay's dropped-frames file says why there.
  void write(uint32_t iface, uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wirelen,
             std::string_view comment = {}) noexcept;

  /// Frames accepted so far (one whose write failed half way included), and
  /// frames dropped (undeclared interface, after an I/O error).
  uint64_t frames() const noexcept { return frames_; }
  uint64_t dropped() const noexcept { return file_.dropped(); }
  const std::string& path() const noexcept { return file_.path(); }

  /// Writes out what is buffered; throws LoadError if an error was recorded.
  void flush() { file_.flush(); }
  /// Flushes and closes; throws LoadError if any write failed or any frame
  /// was dropped. Later calls do nothing.
  void close() { file_.close(); }

 private:
  detail::BufferedFile file_;
  std::vector<uint32_t> snaplens_;  // per declared interface
  uint64_t frames_ = 0;
};

/// Classic pcap writer: nanosecond magic (a1b23c4d), version 2.4, one link
/// type. Timestamps hold 32-bit seconds (up to 2106).
class PcapWriter {
 public:
  /// Creates or truncates PATH and writes the file header. Throws LoadError.
  PcapWriter(const std::string& path, uint32_t link_type, uint32_t snaplen = PcapngWriter::kDefaultSnaplen);
  ~PcapWriter() = default;  // closes, swallowing errors (see close())
  PcapWriter(PcapWriter&&) noexcept = default;
  PcapWriter& operator=(PcapWriter&&) noexcept = default;

  /// Appends a record; same contract as PcapngWriter::write().
  void write(uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wirelen) noexcept;

  uint64_t frames() const noexcept { return frames_; }
  uint64_t dropped() const noexcept { return file_.dropped(); }
  const std::string& path() const noexcept { return file_.path(); }
  void flush() { file_.flush(); }
  void close() { file_.close(); }

 private:
  detail::BufferedFile file_;
  uint32_t snaplen_;
  uint64_t frames_ = 0;
};

}  // namespace nfb
