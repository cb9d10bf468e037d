#include "pcap/capture_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/load_error.h"

namespace nfb {
namespace {

constexpr uint32_t kBlockSection = 0x0a0d0d0a;
constexpr uint32_t kByteOrderMagic = 0x1a2b3c4d;
constexpr uint32_t kBlockInterface = 0x00000001;
constexpr uint32_t kBlockEnhancedPacket = 0x00000006;
constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfTsresol = 9;
constexpr uint32_t kPcapMagicNs = 0xa1b23c4d;
constexpr uint64_t kNsPerSec = 1'000'000'000ULL;
constexpr char kUserAppl[] = "nfbench";

constexpr size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }

}  // namespace

namespace detail {

BufferedFile::BufferedFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(fmt::format("cannot open for writing: {}", std::strerror(errno)));
  buf_.resize(kBufferSize);
}

BufferedFile::~BufferedFile() {
  try {
    close();
  } catch (const LoadError&) {
    // Documented: the destructor cannot report; close() does.
  }
}

BufferedFile::BufferedFile(BufferedFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      buf_(std::move(other.buf_)),
      used_(std::exchange(other.used_, 0)),
      errno_(other.errno_),
      bad_iface_frames_(other.bad_iface_frames_),
      first_bad_iface_(other.first_bad_iface_),
      dropped_(other.dropped_) {}

BufferedFile& BufferedFile::operator=(BufferedFile&& other) noexcept {
  if (this != &other) {
    BufferedFile old(std::move(*this));  // closes the file this held
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    buf_ = std::move(other.buf_);
    used_ = std::exchange(other.used_, 0);
    errno_ = other.errno_;
    bad_iface_frames_ = other.bad_iface_frames_;
    first_bad_iface_ = other.first_bad_iface_;
    dropped_ = other.dropped_;
  }
  return *this;
}

void BufferedFile::write_out() noexcept {
  size_t done = 0;
  while (done < used_ && errno_ == 0) {
    const ssize_t n = ::write(fd_, buf_.data() + done, used_ - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
    } else if (n == 0) {
      errno_ = EIO;
    } else {
      done += static_cast<size_t>(n);
    }
  }
  used_ = 0;
}

void BufferedFile::append(const void* p, size_t n) noexcept {
  const auto* src = static_cast<const uint8_t*>(p);
  while (n > 0 && errno_ == 0 && fd_ >= 0) {
    if (used_ == buf_.size()) write_out();
    const size_t k = std::min(n, buf_.size() - used_);
    std::memcpy(buf_.data() + used_, src, k);
    used_ += k;
    src += k;
    n -= k;
  }
}

void BufferedFile::append_pad4(size_t n) noexcept {
  static constexpr uint8_t kZero[4] = {0, 0, 0, 0};
  append(kZero, pad4(n) - n);
}

void BufferedFile::note_bad_interface(uint32_t iface) noexcept {
  if (bad_iface_frames_++ == 0) first_bad_iface_ = iface;
  ++dropped_;
}

void BufferedFile::fail(const std::string& message) const { throw LoadError(SourceLocation{path_}, message); }

void BufferedFile::throw_recorded() const {
  if (errno_ != 0) {
    fail(fmt::format("cannot write: {} ({} frames dropped)", std::strerror(errno_), dropped_));
  }
  fail(fmt::format("{} frames for an undeclared interface were dropped, the first for interface {}",
                   bad_iface_frames_, first_bad_iface_));
}

void BufferedFile::flush() {
  if (fd_ >= 0 && errno_ == 0) write_out();
  if (errno_ != 0 || bad_iface_frames_ != 0) throw_recorded();
}

void BufferedFile::close() {
  if (fd_ < 0) return;
  if (errno_ == 0) write_out();
  if (::close(fd_) != 0 && errno_ == 0) errno_ = errno;
  fd_ = -1;
  buf_.clear();
  buf_.shrink_to_fit();
  if (errno_ != 0 || bad_iface_frames_ != 0) throw_recorded();
}

}  // namespace detail

// ---------------------------------------------------------------- pcapng

PcapngWriter::PcapngWriter(const std::string& path) : file_(path) {
  // Section header: type, length, byte-order magic, version 1.0, section
  // length -1 (not given), shb_userappl, opt_endofopt, length again.
  const size_t appl = sizeof kUserAppl - 1;
  const auto len = static_cast<uint32_t>(4 + 4 + 4 + 2 + 2 + 8 + 4 + pad4(appl) + 4 + 4);
  file_.append_u32(kBlockSection);
  file_.append_u32(len);
  file_.append_u32(kByteOrderMagic);
  file_.append_u16(1);
  file_.append_u16(0);
  file_.append_u32(0xffffffffU);
  file_.append_u32(0xffffffffU);
  file_.append_u16(kShbUserAppl);
  file_.append_u16(static_cast<uint16_t>(appl));
  file_.append(kUserAppl, appl);
  file_.append_pad4(appl);
  file_.append_u16(kOptEnd);
  file_.append_u16(0);
  file_.append_u32(len);
}

uint32_t PcapngWriter::add_interface(std::string name, uint32_t link_type, uint32_t snaplen) {
  if (!file_.is_open()) file_.fail("cannot add an interface: the file is closed");
  if (link_type > 0xffff) file_.fail(fmt::format("expected a link type below 65536, found {}", link_type));
  if (name.size() > 0xffff) file_.fail("expected an interface name of at most 65535 bytes");
  if (snaplens_.size() >= 0xffffffffU) file_.fail("expected fewer than 2^32 interfaces");
  // type, length, link type, reserved, snaplen, [if_name], if_tsresol, end, length.
  const size_t name_opt = name.empty() ? 0 : 4 + pad4(name.size());
  const auto len = static_cast<uint32_t>(4 + 4 + 2 + 2 + 4 + name_opt + 8 + 4 + 4);
  file_.append_u32(kBlockInterface);
  file_.append_u32(len);
  file_.append_u16(static_cast<uint16_t>(link_type));
  file_.append_u16(0);
  file_.append_u32(snaplen);
  if (!name.empty()) {
    file_.append_u16(kIfName);
    file_.append_u16(static_cast<uint16_t>(name.size()));
    file_.append(name.data(), name.size());
    file_.append_pad4(name.size());
  }
  file_.append_u16(kIfTsresol);
  file_.append_u16(1);
  const uint8_t nanoseconds = 9;  // 10^-9 s
  file_.append(&nanoseconds, 1);
  file_.append_pad4(1);
  file_.append_u16(kOptEnd);
  file_.append_u16(0);
  file_.append_u32(len);
  snaplens_.push_back(snaplen);
  return static_cast<uint32_t>(snaplens_.size() - 1);
}

void PcapngWriter::write(uint32_t iface, uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wirelen,
                         std::string_view comment) noexcept {
  if (iface >= snaplens_.size()) {
    file_.note_bad_interface(iface);
    return;
  }
  if (!file_.io_ok() || !file_.is_open()) {
    file_.note_dropped();
    return;
  }
  const uint32_t snaplen = snaplens_[iface];
  size_t cap = frame.size();
  if (snaplen != 0 && cap > snaplen) cap = snaplen;
  // Block lengths are 32-bit: a frame that would not fit is cut as well.
  cap = std::min<size_t>(cap, 0xffffffffU - 36 - 65544);
  const auto caplen = static_cast<uint32_t>(cap);
  // opt_comment (code 1) and opt_endofopt when there is a comment.
  const size_t note = std::min<size_t>(comment.size(), 0xffff);
  const size_t options = note == 0 ? 0 : 4 + pad4(note) + 4;
  const auto len = static_cast<uint32_t>(28 + pad4(cap) + options + 4);
  file_.append_u32(kBlockEnhancedPacket);
  file_.append_u32(len);
  file_.append_u32(iface);
  file_.append_u32(static_cast<uint32_t>(ts_ns >> 32));  // if_tsresol 9: units are nanoseconds
  file_.append_u32(static_cast<uint32_t>(ts_ns));
  file_.append_u32(caplen);
  file_.append_u32(std::max(wirelen, caplen));
  file_.append(frame.data(), cap);
  file_.append_pad4(cap);
  if (note != 0) {
    file_.append_u16(1);
    file_.append_u16(static_cast<uint16_t>(note));
    file_.append(comment.data(), note);
    file_.append_pad4(note);
    file_.append_u32(0);  // opt_endofopt
  }
  file_.append_u32(len);
  ++frames_;
}

// ---------------------------------------------------------------- classic pcap

PcapWriter::PcapWriter(const std::string& path, uint32_t link_type, uint32_t snaplen)
    : file_(path), snaplen_(snaplen) {
  // magic, version 2.4, thiszone, sigfigs, snaplen, link type.
  file_.append_u32(kPcapMagicNs);
  file_.append_u16(2);
  file_.append_u16(4);
  file_.append_u32(0);
  file_.append_u32(0);
  file_.append_u32(snaplen);
  file_.append_u32(link_type);
}

void PcapWriter::write(uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wirelen) noexcept {
  if (!file_.io_ok() || !file_.is_open()) {
    file_.note_dropped();
    return;
  }
  size_t cap = frame.size();
  if (snaplen_ != 0 && cap > snaplen_) cap = snaplen_;
  cap = std::min<size_t>(cap, 0xffffffffU);
  const auto caplen = static_cast<uint32_t>(cap);
  file_.append_u32(static_cast<uint32_t>(ts_ns / kNsPerSec));
  file_.append_u32(static_cast<uint32_t>(ts_ns % kNsPerSec));
  file_.append_u32(caplen);
  file_.append_u32(std::max(wirelen, caplen));
  file_.append(frame.data(), cap);
  ++frames_;
}

}  // namespace nfb
