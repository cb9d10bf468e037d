#include "pcap/capture_reader.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "base/input_file.h"
#include "base/load_error.h"
#include "packet/byte_order.h"

namespace nfb {
namespace {

constexpr uint32_t kPcapMagicUs = 0xa1b2c3d4;
constexpr uint32_t kPcapMagicNs = 0xa1b23c4d;
constexpr uint32_t kPcapngSection = 0x0a0d0d0a;
constexpr uint32_t kPcapngByteOrder = 0x1a2b3c4d;
constexpr uint32_t kBlockInterface = 0x00000001;
constexpr uint32_t kBlockPacketObsolete = 0x00000002;
constexpr uint32_t kBlockSimplePacket = 0x00000003;
constexpr uint32_t kBlockEnhancedPacket = 0x00000006;
constexpr uint32_t kMaxFrame = 262144;  // larger records are taken as corruption
constexpr uint64_t kNsPerSec = 1'000'000'000ULL;

__extension__ typedef unsigned __int128 Uint128;

uint32_t load_host32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

constexpr uint64_t byteswap64(uint64_t v) noexcept {
  return uint64_t{byteswap32(static_cast<uint32_t>(v))} << 32 | byteswap32(static_cast<uint32_t>(v >> 32));
}

bool is_packet_block(uint32_t type) {
  return type == kBlockEnhancedPacket || type == kBlockSimplePacket || type == kBlockPacketObsolete;
}

}  // namespace

CaptureReader::Mapping::~Mapping() {
  if (addr != nullptr) munmap(addr, len);
}

CaptureReader::CaptureReader(const std::string& path, CaptureMode mode) : path_(path) {
  const bool compressed = path.size() >= 3 && path.compare(path.size() - 3, 3, ".xz") == 0;
  if (mode == CaptureMode::kStream && !compressed) {
    // Map the file; pages are read as the walk reaches them and dropped
    // behind it (next_burst()), so memory stays bounded by the burst.
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw LoadError(SourceLocation{path}, std::string("cannot open the capture: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      const int err = errno;
      close(fd);
      throw LoadError(SourceLocation{path}, std::string("cannot stat the capture: ") + std::strerror(err));
    }
    const auto len = static_cast<size_t>(st.st_size);
    map_ = std::make_unique<Mapping>();
    if (len > 0) {
      void* addr = mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) {
        const int err = errno;
        close(fd);
        throw LoadError(SourceLocation{path}, std::string("cannot map the capture: ") + std::strerror(err));
      }
      madvise(addr, len, MADV_SEQUENTIAL);
      map_->addr = addr;
      map_->len = len;
    }
    close(fd);
    base_ = static_cast<const uint8_t*>(map_->addr);
    size_ = len;
    streaming_ = true;
  } else {
    // Preloaded (and every .xz file, which must be decompressed anyway):
    // read straight into the buffer the replay will work in.
    if (compressed) {
      const std::string bytes = read_input_file(path);
      allocate_owned(bytes.size());
      std::memcpy(owned_->addr, bytes.data(), bytes.size());
    } else {
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw LoadError(SourceLocation{path}, std::string("cannot open the capture: ") + std::strerror(errno));
      struct stat st {};
      if (fstat(fd, &st) != 0) {
        const int err = errno;
        close(fd);
        throw LoadError(SourceLocation{path}, std::string("cannot stat the capture: ") + std::strerror(err));
      }
      if (!S_ISREG(st.st_mode)) {
        close(fd);
        throw LoadError(SourceLocation{path}, "expected a capture file, found a directory or another non-regular file");
      }
      allocate_owned(static_cast<size_t>(st.st_size));
      auto* to = static_cast<uint8_t*>(owned_->addr);
      size_t got = 0;
      while (got < size_) {
        const ssize_t n = read(fd, to + got, size_ - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          const int err = errno;
          close(fd);
          throw LoadError(SourceLocation{path, 0, 0, got, true},
                          n == 0 ? std::string("the file ended early while it was read")
                                 : std::string("cannot read the capture: ") + std::strerror(err));
        }
        got += static_cast<size_t>(n);
      }
      close(fd);
    }
  }
  read_file_header();
  if (!streaming_) build_index();
}

CaptureReader::CaptureReader(std::string name, std::vector<uint8_t> bytes) : path_(std::move(name)) {
  allocate_owned(bytes.size());
  if (!bytes.empty()) std::memcpy(owned_->addr, bytes.data(), bytes.size());
  read_file_header();
  build_index();
}

void CaptureReader::allocate_owned(size_t size) {
  // Anonymous memory: zeros after the file come free (mutable_frame()'s
  // slack), and huge pages, where the kernel gives them, spare the replay a
  // TLB miss every few frames.
  const size_t len = size + kSlack;
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) {
    throw LoadError(SourceLocation{path_}, fmt::format("cannot allocate {} bytes for the capture: {}", len,
                                                       std::strerror(errno)));
  }
  madvise(addr, len, MADV_HUGEPAGE);
  owned_ = std::make_unique<Mapping>();
  owned_->addr = addr;
  owned_->len = len;
  size_ = size;
  base_ = static_cast<const uint8_t*>(addr);
}

void CaptureReader::build_index() {
  CaptureFrame f;
  try {
    while (pcapng_ ? next_pcapng(&f) : next_pcap(f)) {
      if (f.iface >= kMaxIndexedIfaces) {
        fail(f.offset, fmt::format("at most {} interfaces in a preloaded capture (use --stream)", kMaxIndexedIfaces));
      }
      const auto data_at = static_cast<uint64_t>(f.data - base_);
      if (data_at > kOffsetMask) fail(f.offset, "a capture of less than 2^48 bytes (use --stream)");
      const uint64_t code = data_at - f.offset == 16 ? 0 : data_at - f.offset == 28 ? 1 : 2;
      index_.push_back(Indexed{f.ts_ns, data_at | code << 48 | uint64_t{f.iface} << 50, f.caplen, f.wirelen});
    }
  } catch (const LoadError&) {
    index_error_ = std::current_exception();  // handed on after the frames before it
  }
  index_end_ = pos_;
  index_.shrink_to_fit();
  next_ = 0;
}

CaptureReader CaptureReader::from_bytes(std::string name, std::vector<uint8_t> bytes) {
  return CaptureReader(std::move(name), std::move(bytes));
}

void CaptureReader::read_file_header() {
  if (size_ < 4) fail(0, "a pcap or pcapng header, the file is too short");
  const uint32_t magic = load_host32(base_);
  if (magic == kPcapngSection) {
    pcapng_ = true;
    if (size_ < 12) fail(0, "a pcapng section header block, the file is too short");
    first_record_ = 0;
    pos_ = 0;
    // The leading section header and interface descriptions, so that
    // interfaces() is known before the first packet is asked for.
    next_pcapng(nullptr);
    return;
  }
  swapped_ = magic == byteswap32(kPcapMagicUs) || magic == byteswap32(kPcapMagicNs);
  const uint32_t m = swapped_ ? byteswap32(magic) : magic;
  if (m != kPcapMagicUs && m != kPcapMagicNs) {
    const uint8_t* b = base_;
    fail(0, fmt::format("pcap magic (a1b2c3d4 or a1b23c4d) or pcapng section header (0a0d0d0a), "
                        "found bytes {:02x} {:02x} {:02x} {:02x}",
                        b[0], b[1], b[2], b[3]));
  }
  if (size_ < 24) fail(0, "the 24-byte pcap file header, the file is too short");
  nanosecond_ = m == kPcapMagicNs;
  const uint16_t major = u16(4);
  if (major != 2) fail(4, fmt::format("pcap version 2, found {}", major));
  CaptureInterface iface;
  iface.snaplen = u32(16);
  iface.link_type = u32(20) & 0x03ffffffU;  // bits 26-31: FCS-present flag and FCS length
  ifaces_.push_back(iface);
  first_record_ = 24;
  pos_ = first_record_;
}

void CaptureReader::fail(uint64_t at, const std::string& what) const {
  throw LoadError(SourceLocation{path_, 0, 0, at, true}, "expected " + what);
}

uint16_t CaptureReader::u16(uint64_t at) const noexcept {
  uint16_t v;
  std::memcpy(&v, base_ + at, 2);
  return swapped_ ? byteswap16(v) : v;
}

uint32_t CaptureReader::u32(uint64_t at) const noexcept {
  uint32_t v;
  std::memcpy(&v, base_ + at, 4);
  return swapped_ ? byteswap32(v) : v;
}

uint64_t CaptureReader::u64(uint64_t at) const noexcept {
  uint64_t v;
  std::memcpy(&v, base_ + at, 8);
  return swapped_ ? byteswap64(v) : v;
}

void CaptureReader::rewind() noexcept {
  if (!streaming_) {
    next_ = 0;
    return;
  }
  handed_out_ = 0;
  pos_ = first_record_;
  dropped_to_ = 0;  // a dropped page of a private read-only mapping reads from the file again
  if (pcapng_) {
    // Walking again re-reads the same interface blocks into the same slots.
    ng_ifaces_.clear();
    section_base_ = 0;
    next_iface_ = 0;
  }
}

bool CaptureReader::next_pcap(CaptureFrame& f) {
  if (pos_ == size_) return false;
  const uint64_t at = pos_;
  if (size_ - at < 16) {
    fail(at, fmt::format("a 16-byte record header, only {} bytes left (truncated file)", size_ - at));
  }
  const uint32_t sec = u32(at);
  const uint32_t frac = u32(at + 4);
  const uint32_t caplen = u32(at + 8);
  const uint32_t wirelen = u32(at + 12);
  if (caplen > kMaxFrame) fail(at + 8, fmt::format("a record length of at most {}, found {}", kMaxFrame, caplen));
  if (size_ - at - 16 < caplen) {
    fail(at, fmt::format("{} bytes of frame data, only {} left (truncated file)", caplen, size_ - at - 16));
  }
  f.data = base_ + at + 16;
  f.caplen = caplen;
  f.wirelen = wirelen < caplen ? caplen : wirelen;
  f.ts_ns = uint64_t{sec} * kNsPerSec + (nanosecond_ ? frac : uint64_t{frac} * 1000ULL);
  f.iface = 0;
  f.offset = at;
  pos_ = at + 16 + caplen;
  return true;
}

void CaptureReader::read_section_header(uint64_t at) {
  const uint16_t major = u16(at + 12);
  if (major != 1) fail(at + 12, fmt::format("pcapng major version 1, found {}", major));
  // A new section: interface numbers start again.
  ng_ifaces_.clear();
  section_base_ = next_iface_;
}

void CaptureReader::read_interface_block(uint64_t at, uint32_t block_len) {
  CaptureInterface iface;
  iface.link_type = u16(at + 8);
  iface.snaplen = u32(at + 12);
  PcapngIface ng;
  // Options: code(2) length(2) value padded to 4, until opt_endofopt or the
  // block's end. Blocks start 4-aligned and are a multiple of 4 long, so an
  // option that fits also fits with its padding.
  uint64_t o = at + 16;
  const uint64_t end = at + block_len - 4;
  while (o + 4 <= end) {
    const uint16_t code = u16(o);
    const uint16_t len = u16(o + 2);
    if (code == 0) break;
    if (o + 4 + len > end) {
      fail(o, fmt::format("an option that fits inside its interface description block, found length {}", len));
    }
    const uint8_t* v = base_ + o + 4;
    if (code == 2) {  // if_name
      iface.name.assign(reinterpret_cast<const char*>(v), len);
      while (!iface.name.empty() && iface.name.back() == '\0') iface.name.pop_back();
    } else if (code == 9 && len >= 1) {  // if_tsresol
      const uint8_t r = v[0];
      const unsigned exp = r & 0x7fU;
      const bool base2 = (r & 0x80U) != 0;
      if ((base2 && exp > 63) || (!base2 && exp > 19)) {
        fail(o, fmt::format("an if_tsresol of at most 10^-19 or 2^-63, found 0x{:02x}", r));
      }
      uint64_t units = 1;
      for (unsigned i = 0; i < exp; ++i) units *= base2 ? 2 : 10;
      ng.units_per_sec = units;
    } else if (code == 14 && len == 8) {  // if_tsoffset: signed seconds, section byte order
      ng.offset_s = static_cast<int64_t>(u64(o + 4));
    }
    o += 4 + ((len + 3U) & ~3U);
  }
  // The file does not change, so a walk after rewind() finds the same block.
  if (next_iface_ == ifaces_.size()) ifaces_.push_back(std::move(iface));
  ++next_iface_;
  ng_ifaces_.push_back(ng);
}

bool CaptureReader::next_pcapng(CaptureFrame* f) {
  while (pos_ < size_) {
    const uint64_t at = pos_;
    if (size_ - at < 12) fail(at, "a pcapng block of at least 12 bytes (truncated file)");
    uint32_t type = load_host32(base_ + at);  // a section header reads the same either way
    if (type == kPcapngSection) {
      // The section's byte order decides how its own length reads.
      const uint32_t bom = load_host32(base_ + at + 8);
      if (bom == kPcapngByteOrder) {
        swapped_ = false;
      } else if (bom == byteswap32(kPcapngByteOrder)) {
        swapped_ = true;
      } else {
        fail(at + 8, "pcapng byte-order magic 0x1a2b3c4d");
      }
    } else {
      type = u32(at);
    }
    const uint32_t block_len = u32(at + 4);
    if (block_len < 12 || block_len % 4 != 0) {
      fail(at + 4, fmt::format("a block length that is a multiple of 4 and at least 12, found {}", block_len));
    }
    if (block_len > size_ - at) {
      fail(at, fmt::format("a block of {} bytes, only {} left (truncated file)", block_len, size_ - at));
    }
    if (type == kPcapngSection && block_len < 28) {
      fail(at + 4, fmt::format("a section header block of at least 28 bytes, found {}", block_len));
    }
    if (type == kBlockInterface && block_len < 20) {
      fail(at + 4, fmt::format("an interface description block of at least 20 bytes, found {}", block_len));
    }
    if (type == kBlockSimplePacket && block_len < 16) {
      fail(at + 4, fmt::format("a simple packet block of at least 16 bytes, found {}", block_len));
    }
    if ((type == kBlockEnhancedPacket || type == kBlockPacketObsolete) && block_len < 32) {
      fail(at + 4, fmt::format("a packet block of at least 32 bytes, found {}", block_len));
    }
    const uint32_t trailing = u32(at + block_len - 4);
    if (trailing != block_len) {
      fail(at + block_len - 4,
           fmt::format("the block's trailing length to repeat its leading length {}, found {}", block_len, trailing));
    }
    if (type == kPcapngSection) {
      read_section_header(at);
      pos_ = at + block_len;
      continue;
    }
    if (type == kBlockInterface) {
      read_interface_block(at, block_len);
      pos_ = at + block_len;
      continue;
    }
    if (!is_packet_block(type)) {  // name resolution, statistics, custom, ...: skipped
      pos_ = at + block_len;
      continue;
    }
    if (f == nullptr) return true;  // stop in front of the first packet

    uint32_t local_iface = 0;
    uint64_t ts_units = 0;
    uint32_t caplen = 0;
    uint32_t wirelen = 0;
    uint64_t data_at = 0;
    uint64_t caplen_at = 0;  // where the captured length comes from, for errors
    if (type == kBlockSimplePacket) {
      // Captured length: the original length cut to interface 0's snaplen.
      if (ng_ifaces_.empty()) {
        fail(at, "a simple packet block after an interface description block (the section has none)");
      }
      wirelen = u32(at + 8);
      caplen = wirelen;
      const uint32_t snaplen = ifaces_[section_base_].snaplen;
      if (snaplen != 0 && caplen > snaplen) caplen = snaplen;
      data_at = at + 12;
      caplen_at = at + 8;
    } else {
      local_iface = type == kBlockEnhancedPacket ? u32(at + 8) : u16(at + 8);
      ts_units = uint64_t{u32(at + 12)} << 32 | u32(at + 16);
      caplen = u32(at + 20);
      wirelen = u32(at + 24);
      data_at = at + 28;
      caplen_at = at + 20;
      if (local_iface >= ng_ifaces_.size()) {
        fail(at + 8, fmt::format("a packet of a declared interface (the section has {}), found interface {}",
                                 ng_ifaces_.size(), local_iface));
      }
    }
    if (caplen > kMaxFrame) {
      fail(caplen_at, fmt::format("a captured length of at most {}, found {}", kMaxFrame, caplen));
    }
    if (data_at + caplen > at + block_len - 4) {
      fail(caplen_at, fmt::format("a captured length that fits its block ({} bytes), found {}",
                                  at + block_len - 4 - data_at, caplen));
    }
    const PcapngIface& ng = ng_ifaces_[local_iface];
    const uint64_t secs = ts_units / ng.units_per_sec;
    const uint64_t rem = ts_units % ng.units_per_sec;
    // rem < units_per_sec <= 10^19, so rem * 10^9 needs 128 bits; the quotient is < 10^9.
    const auto frac_ns = static_cast<uint64_t>(Uint128{rem} * kNsPerSec / ng.units_per_sec);
    f->data = base_ + data_at;
    f->caplen = caplen;
    f->wirelen = wirelen < caplen ? caplen : wirelen;
    // Unsigned arithmetic: wraps modulo 2^64 instead of overflowing.
    f->ts_ns = (secs + static_cast<uint64_t>(ng.offset_s)) * kNsPerSec + frac_ns;
    f->iface = section_base_ + local_iface;
    f->offset = at;
    pos_ = at + block_len;
    return true;
  }
  return false;
}

void CaptureReader::drop_pages_before(uint64_t offset) noexcept {
  // Whole pages below `offset` that were not dropped yet.
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t end = offset / page * page;
  if (end <= dropped_to_ + kDropChunk) return;  // in chunks: fewer system calls
  madvise(static_cast<uint8_t*>(map_->addr) + dropped_to_, end - dropped_to_, MADV_DONTNEED);
  dropped_to_ = end;
}

size_t CaptureReader::next_burst(std::span<CaptureFrame> out) {
  if (!streaming_) {
    // Preloaded: the index says it all.
    const size_t n = std::min(out.size(), index_.size() - next_);
    if (n == 0 && index_error_) std::rethrow_exception(index_error_);
    for (size_t i = 0; i < n; ++i) {
      const Indexed& x = index_[next_ + i];
      const uint64_t at = x.where & kOffsetMask;
      CaptureFrame& f = out[i];
      f.data = base_ + at;
      f.caplen = x.caplen;
      f.wirelen = x.wirelen;
      f.ts_ns = x.ts_ns;
      f.iface = static_cast<uint32_t>(x.where >> 50);
      f.offset = at - header_of(x.where);
    }
    next_ += n;
    return n;
  }
  // Frames of the previous burst are no longer needed (the contract):
  // their pages may go.
  drop_pages_before(pos_);
  size_t n = 0;
  while (n < out.size()) {
    if (n == 0) {
      if (!(pcapng_ ? next_pcapng(&out[0]) : next_pcap(out[0]))) break;
    } else {
      try {
        if (!(pcapng_ ? next_pcapng(&out[n]) : next_pcap(out[n]))) break;
      } catch (const LoadError&) {
        handed_out_ += n;
        return n;  // hand out the good frames; the error is sticky, the next call throws it
      }
    }
    ++n;
  }
  handed_out_ += n;
  return n;
}

}  // namespace nfb
