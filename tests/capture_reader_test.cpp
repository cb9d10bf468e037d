// Tests for pcap/capture_reader.h. Captures are built byte by byte here, in
// either byte order, by a small builder that shares no code with the reader
// or with pcap/capture_writer.h; every error path is checked for its exact
// message and byte offset.
#include "pcap/capture_reader.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "base/load_error.h"

namespace nfb {
namespace {

using Bytes = std::vector<uint8_t>;

enum class Order { Little, Big };

std::string order_name(Order o) { return o == Order::Little ? "Little" : "Big"; }

/// Appends integers in a chosen byte order (not the machine's: the file's).
class Builder {
 public:
  explicit Builder(Order o) : order_(o) {}
  Builder& u8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  Builder& u16(uint16_t v) { return uint(v, 2); }
  Builder& u32(uint32_t v) { return uint(v, 4); }
  Builder& u64(uint64_t v) { return uint(v, 8); }
  Builder& raw(const Bytes& x) {
    b_.insert(b_.end(), x.begin(), x.end());
    return *this;
  }
  Builder& pad4() {
    while (b_.size() % 4 != 0) b_.push_back(0);
    return *this;
  }
  const Bytes& bytes() const { return b_; }

 private:
  Builder& uint(uint64_t v, int n) {
    std::array<uint8_t, 8> tmp{};
    for (int i = 0; i < n; ++i) {
      const int shift = order_ == Order::Little ? 8 * i : 8 * (n - 1 - i);
      tmp[static_cast<size_t>(i)] = static_cast<uint8_t>(v >> shift);
    }
    b_.insert(b_.end(), tmp.begin(), tmp.begin() + n);
    return *this;
  }
  Order order_;
  Bytes b_;
};

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// N recognisable bytes: SEED, SEED+1, ...
Bytes pattern(size_t n, uint8_t seed = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i);
  return b;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// ---------------------------------------------------------------- classic pcap

constexpr uint32_t kMagicUs = 0xa1b2c3d4;
constexpr uint32_t kMagicNs = 0xa1b23c4d;

Bytes pcap_header(Order o, uint32_t magic, uint32_t link, uint32_t snaplen = 65535, uint16_t major = 2) {
  return Builder(o).u32(magic).u16(major).u16(4).u32(0).u32(0).u32(snaplen).u32(link).bytes();
}

/// A record whose captured length is data.size() unless CAPLEN says otherwise.
Bytes pcap_record(Order o, uint32_t sec, uint32_t frac, const Bytes& data, uint32_t wirelen,
                  int64_t caplen = -1) {
  const auto cap = caplen < 0 ? static_cast<uint32_t>(data.size()) : static_cast<uint32_t>(caplen);
  return Builder(o).u32(sec).u32(frac).u32(cap).u32(wirelen).raw(data).bytes();
}

// ---------------------------------------------------------------- pcapng

constexpr uint32_t kShb = 0x0a0d0d0a;
constexpr uint32_t kIdb = 1;
constexpr uint32_t kOpb = 2;
constexpr uint32_t kSpb = 3;
constexpr uint32_t kNrb = 4;
constexpr uint32_t kIsb = 5;
constexpr uint32_t kEpb = 6;
constexpr uint32_t kCustom = 0x00000bad;

struct Opt {
  uint16_t code;
  Bytes value;
};

Opt opt_comment(const std::string& s) { return {1, text(s)}; }
Opt opt_name(const std::string& s) { return {2, text(s)}; }
Opt opt_tsresol(uint8_t r) { return {9, {r}}; }
Opt opt_tsoffset(Order o, int64_t s) { return {14, Builder(o).u64(static_cast<uint64_t>(s)).bytes()}; }

Bytes options(Order o, const std::vector<Opt>& opts) {
  if (opts.empty()) return {};
  Builder b(o);
  for (const Opt& x : opts) b.u16(x.code).u16(static_cast<uint16_t>(x.value.size())).raw(x.value).pad4();
  return b.u16(0).u16(0).bytes();
}

/// A block around BODY (padded to 4): type, total length, body, total length.
Bytes block(Order o, uint32_t type, const Bytes& body) {
  Bytes padded = body;
  while (padded.size() % 4 != 0) padded.push_back(0);
  const auto len = static_cast<uint32_t>(12 + padded.size());
  return Builder(o).u32(type).u32(len).raw(padded).u32(len).bytes();
}

Bytes shb(Order o, const std::vector<Opt>& opts = {}) {
  return block(o, kShb, Builder(o).u32(0x1a2b3c4d).u16(1).u16(0).u64(~uint64_t{0}).raw(options(o, opts)).bytes());
}

Bytes idb(Order o, uint16_t link, uint32_t snaplen, const std::vector<Opt>& opts = {}) {
  return block(o, kIdb, Builder(o).u16(link).u16(0).u32(snaplen).raw(options(o, opts)).bytes());
}

Bytes epb(Order o, uint32_t iface, uint64_t ts, const Bytes& data, uint32_t wirelen,
          const std::vector<Opt>& opts = {}) {
  Builder b(o);
  b.u32(iface).u32(static_cast<uint32_t>(ts >> 32)).u32(static_cast<uint32_t>(ts));
  b.u32(static_cast<uint32_t>(data.size())).u32(wirelen).raw(data).pad4().raw(options(o, opts));
  return block(o, kEpb, b.bytes());
}

Bytes opb(Order o, uint16_t iface, uint64_t ts, const Bytes& data, uint32_t wirelen) {
  Builder b(o);
  b.u16(iface).u16(0).u32(static_cast<uint32_t>(ts >> 32)).u32(static_cast<uint32_t>(ts));
  b.u32(static_cast<uint32_t>(data.size())).u32(wirelen).raw(data);
  return block(o, kOpb, b.bytes());
}

Bytes spb(Order o, uint32_t wirelen, const Bytes& data) {
  return block(o, kSpb, Builder(o).u32(wirelen).raw(data).bytes());
}

// ---------------------------------------------------------------- reading

/// A frame copied out of the reader, for comparisons.
struct Got {
  Bytes data;
  uint32_t wirelen = 0;
  uint64_t ts_ns = 0;
  uint32_t iface = 0;
  uint64_t offset = 0;
  friend bool operator==(const Got&, const Got&) = default;
};

void PrintTo(const Got& g, std::ostream* os) {
  *os << fmt::format("{{caplen {} wirelen {} ts {} iface {} offset {}}}", g.data.size(), g.wirelen, g.ts_ns,
                     g.iface, g.offset);
}

std::vector<Got> read_all(CaptureReader& r, size_t burst = 32) {
  std::vector<CaptureFrame> frames(burst);
  std::vector<Got> out;
  while (size_t n = r.next_burst(frames)) {
    EXPECT_LE(n, burst);
    for (size_t i = 0; i < n; ++i) {
      const CaptureFrame& f = frames[i];
      EXPECT_NE(f.data, nullptr);
      EXPECT_LE(f.caplen, f.wirelen);
      EXPECT_LT(f.iface, r.interfaces().size());
      out.push_back({Bytes(f.data, f.data + f.caplen), f.wirelen, f.ts_ns, f.iface, f.offset});
    }
  }
  return out;
}

std::vector<Got> read_bytes(const Bytes& file, size_t burst = 32) {
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  return read_all(r, burst);
}

/// The LoadError message reading FILE completely gives, or "no error".
std::string error_of(const Bytes& file) {
  try {
    CaptureReader r = CaptureReader::from_bytes("t.cap", file);
    read_all(r);
  } catch (const LoadError& e) {
    return e.what();
  }
  return "no error";
}

std::string at(uint64_t offset, const std::string& what) { return fmt::format("t.cap: offset {}: expected {}", offset, what); }

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

std::string write_temp(const std::string& name, const Bytes& bytes) {
  const std::string path = testing::TempDir() + name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  EXPECT_TRUE(out.good());
  return path;
}

class ByOrder : public testing::TestWithParam<Order> {
 protected:
  Order o() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(BothByteOrders, ByOrder, testing::Values(Order::Little, Order::Big),
                         [](const testing::TestParamInfo<Order>& i) { return order_name(i.param); });

// ---------------------------------------------------------------- classic pcap: good files

TEST_P(ByOrder, PcapMicroseconds) {
  const Bytes file = cat({pcap_header(o(), kMagicUs, 1, 65535), pcap_record(o(), 1700000000, 123456, pattern(60), 60),
                          pcap_record(o(), 1700000001, 999999, pattern(64, 9), 64)});
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  EXPECT_FALSE(r.is_pcapng());
  ASSERT_EQ(r.interfaces().size(), 1U);
  EXPECT_EQ(r.interfaces()[0].name, "");
  EXPECT_EQ(r.interfaces()[0].link_type, 1U);
  EXPECT_EQ(r.interfaces()[0].snaplen, 65535U);
  EXPECT_EQ(r.link_type(), 1U);
  EXPECT_EQ(r.offset(), 24U);
  const std::vector<Got> want = {{pattern(60), 60, 1700000000'123456000ULL, 0, 24},
                                 {pattern(64, 9), 64, 1700000001'999999000ULL, 0, 24 + 16 + 60}};
  EXPECT_EQ(read_all(r), want);
  EXPECT_EQ(r.offset(), file.size());
}

TEST_P(ByOrder, PcapNanoseconds) {
  const Bytes file = cat({pcap_header(o(), kMagicNs, 101), pcap_record(o(), 4000000000U, 999999999, pattern(20), 20)});
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  EXPECT_EQ(r.link_type(), 101U);
  const std::vector<Got> want = {{pattern(20), 20, 4000000000'999999999ULL, 0, 24}};
  EXPECT_EQ(read_all(r), want);
}

TEST_P(ByOrder, PcapLinkTypes) {
  for (uint32_t link : {1U, 101U, 113U, 276U, 12U, 228U}) {
    CaptureReader r = CaptureReader::from_bytes("t.cap", pcap_header(o(), kMagicUs, link));
    EXPECT_EQ(r.link_type(), link);
  }
  // Bits 26-31 carry the FCS flag and length, not the link type.
  CaptureReader fcs = CaptureReader::from_bytes("t.cap", pcap_header(o(), kMagicUs, 0x44000001));
  EXPECT_EQ(fcs.link_type(), 1U);
}

TEST_P(ByOrder, PcapSnaplenCutAndZeroLengthRecords) {
  const Bytes file = cat({pcap_header(o(), kMagicUs, 1, 40), pcap_record(o(), 1, 2, pattern(40), 1514),
                          pcap_record(o(), 3, 4, {}, 0), pcap_record(o(), 5, 6, {}, 77),
                          pcap_record(o(), 7, 8, pattern(30), 10)});  // wirelen below caplen: raised
  const std::vector<Got> want = {{pattern(40), 1514, 1'000002000ULL, 0, 24},
                                 {{}, 0, 3'000004000ULL, 0, 80},
                                 {{}, 77, 5'000006000ULL, 0, 96},
                                 {pattern(30), 30, 7'000008000ULL, 0, 112}};
  EXPECT_EQ(read_bytes(file), want);
}

TEST_P(ByOrder, PcapRecordOfExactlyTheLimit) {
  const Bytes file = cat({pcap_header(o(), kMagicUs, 1, 262144), pcap_record(o(), 1, 0, pattern(262144), 262144)});
  const std::vector<Got> got = read_bytes(file);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].data, pattern(262144));
}

TEST_P(ByOrder, PcapHeaderOnly) {
  CaptureReader r = CaptureReader::from_bytes("t.cap", pcap_header(o(), kMagicNs, 1));
  std::array<CaptureFrame, 4> f;
  EXPECT_EQ(r.next_burst(f), 0U);
  EXPECT_EQ(r.next_burst(f), 0U);
}

// ---------------------------------------------------------------- classic pcap: errors

TEST(CaptureReaderErrors, EmptyAndShortFiles) {
  EXPECT_EQ(error_of({}), at(0, "a pcap or pcapng header, the file is too short"));
  EXPECT_EQ(error_of({0xd4, 0xc3, 0xb2}), at(0, "a pcap or pcapng header, the file is too short"));
}

TEST(CaptureReaderErrors, BadMagic) {
  EXPECT_EQ(error_of({0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0}),
            at(0, "pcap magic (a1b2c3d4 or a1b23c4d) or pcapng section header (0a0d0d0a), "
                  "found bytes de ad be ef"));
}

TEST_P(ByOrder, PcapTruncatedFileHeader) {
  Bytes file = pcap_header(o(), kMagicUs, 1);
  file.resize(23);
  EXPECT_EQ(error_of(file), at(0, "the 24-byte pcap file header, the file is too short"));
}

TEST_P(ByOrder, PcapBadVersion) {
  EXPECT_EQ(error_of(pcap_header(o(), kMagicUs, 1, 65535, 3)), at(4, "pcap version 2, found 3"));
}

TEST_P(ByOrder, PcapTruncatedRecordHeader) {
  Bytes file = cat({pcap_header(o(), kMagicUs, 1), pcap_record(o(), 1, 0, pattern(10), 10),
                    pcap_record(o(), 2, 0, pattern(10), 10)});
  file.resize(24 + 26 + 9);
  EXPECT_EQ(error_of(file), at(50, "a 16-byte record header, only 9 bytes left (truncated file)"));
}

TEST_P(ByOrder, PcapTruncatedRecordData) {
  Bytes file = cat({pcap_header(o(), kMagicUs, 1), pcap_record(o(), 1, 0, pattern(60), 60)});
  file.resize(24 + 16 + 20);
  EXPECT_EQ(error_of(file), at(24, "60 bytes of frame data, only 20 left (truncated file)"));
}

TEST_P(ByOrder, PcapRecordLongerThanTheLimit) {
  const Bytes file = cat({pcap_header(o(), kMagicUs, 1), pcap_record(o(), 1, 0, pattern(16), 300000, 262145)});
  EXPECT_EQ(error_of(file), at(32, "a record length of at most 262144, found 262145"));
}

TEST_P(ByOrder, ErrorsAreStickyAndFramesBeforeThemAreHandedOut) {
  Bytes file = cat({pcap_header(o(), kMagicUs, 1), pcap_record(o(), 1, 0, pattern(8), 8),
                    pcap_record(o(), 2, 0, pattern(8), 8)});
  file.resize(file.size() - 1);
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  std::array<CaptureFrame, 8> burst;
  ASSERT_EQ(r.next_burst(burst), 1U);  // the good frame, the error comes next
  EXPECT_EQ(burst[0].offset, 24U);
  EXPECT_EQ(r.offset(), 48U);
  for (int i = 0; i < 2; ++i) {
    try {
      r.next_burst(burst);
      ADD_FAILURE() << "no error";
    } catch (const LoadError& e) {
      EXPECT_EQ(e.where().offset, 48U);
      EXPECT_EQ(e.message(), "expected 8 bytes of frame data, only 7 left (truncated file)");
    }
  }
}

// ---------------------------------------------------------------- pcapng: good files

TEST_P(ByOrder, PcapngInterfacesWithNamesAndLinkTypes) {
  const Bytes head = cat({
      shb(o(), {opt_comment("made by a test"), {4, text("capture_reader_test")}}),
      idb(o(), 1, 262144, {opt_name("eth0"), opt_comment("uplink")}),
      idb(o(), 113, 0, {opt_name("any")}),
      idb(o(), 101, 1500, {}),  // no name
      idb(o(), 276, 9000, {opt_name(std::string("docker0\0\0", 9))}),
  });
  const Bytes first = epb(o(), 1, 1'000000, pattern(44), 44, {opt_comment("a packet comment")});
  const Bytes file = cat({
      head,
      first,
      epb(o(), 0, 2'000000, pattern(60, 3), 60),
      epb(o(), 3, 3'000000, pattern(45, 7), 99),
      epb(o(), 2, 4'000000, pattern(20, 1), 20),
  });
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  EXPECT_TRUE(r.is_pcapng());
  // Known from the constructor already: the blocks before the first packet.
  ASSERT_EQ(r.interfaces().size(), 4U);
  EXPECT_EQ(r.link_type(), 1U);
  const std::vector<std::pair<std::string, uint32_t>> want_ifaces = {
      {"eth0", 1}, {"any", 113}, {"", 101}, {"docker0", 276}};
  for (size_t i = 0; i < want_ifaces.size(); ++i) {
    EXPECT_EQ(r.interfaces()[i].name, want_ifaces[i].first) << i;
    EXPECT_EQ(r.interfaces()[i].link_type, want_ifaces[i].second) << i;
  }
  EXPECT_EQ(r.interfaces()[0].snaplen, 262144U);
  EXPECT_EQ(r.interfaces()[1].snaplen, 0U);
  EXPECT_EQ(r.interfaces()[3].snaplen, 9000U);
  // Offsets are those of the blocks; an enhanced packet block is 32 bytes plus its padded data.
  const uint64_t b = head.size();
  const std::vector<Got> want = {{pattern(44), 44, 1'000000000, 1, b},
                                 {pattern(60, 3), 60, 2'000000000, 0, b + first.size()},
                                 {pattern(45, 7), 99, 3'000000000, 3, b + first.size() + 92},
                                 {pattern(20, 1), 20, 4'000000000, 2, b + first.size() + 92 + 80}};
  EXPECT_EQ(read_all(r), want);
}

TEST_P(ByOrder, PcapngTimestampResolutionsAndOffsets) {
  const uint64_t max = ~uint64_t{0};
  const Bytes file = cat({
      shb(o()),
      idb(o(), 1, 0, {opt_name("default-us")}),
      idb(o(), 1, 0, {opt_name("us"), opt_tsresol(6)}),
      idb(o(), 1, 0, {opt_name("ns"), opt_tsresol(9)}),
      idb(o(), 1, 0, {opt_name("2^-10"), opt_tsresol(0x80 | 10)}),
      idb(o(), 1, 0, {opt_name("2^-30"), opt_tsresol(0x80 | 30)}),
      idb(o(), 1, 0, {opt_name("10^-19"), opt_tsresol(19)}),
      idb(o(), 1, 0, {opt_name("s+offset"), opt_tsresol(0), opt_tsoffset(o(), 1'000'000'000)}),
      idb(o(), 1, 0, {opt_name("ms-offset"), opt_tsoffset(o(), -10), opt_tsresol(3)}),
      idb(o(), 1, 0, {opt_name("2^-63"), opt_tsresol(0x80 | 63)}),
      epb(o(), 0, 1'234567, {}, 0),
      epb(o(), 1, 1'234567, {}, 0),
      epb(o(), 2, 1'234567891, {}, 0),
      epb(o(), 3, 5 * 1024 + 512, {}, 0),                          // 5.5 s
      epb(o(), 4, (uint64_t{3} << 30) + (uint64_t{1} << 30) - 1, {}, 0),  // 3 s + (2^30-1)/2^30 s
      epb(o(), 5, max, {}, 0),                                     // 1.8446744073709551615 s
      epb(o(), 6, 7, {}, 0),
      epb(o(), 7, 100'250, {}, 0),  // 100.25 s - 10 s
      epb(o(), 8, uint64_t{3} << 62, {}, 0),  // 1.5 s
  });
  const std::vector<Got> got = read_bytes(file);
  ASSERT_EQ(got.size(), 9U);
  const std::vector<uint64_t> want = {1'234567000,  1'234567000,  1'234567891,
                                      5'500000000,  3'999999999,  1'844674407,
                                      1'000000007'000000000, 90'250000000, 1'500000000};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].ts_ns, want[i]) << "interface " << i;
    EXPECT_EQ(got[i].iface, i);
  }
}

TEST_P(ByOrder, PcapngSkipsCommentsAndUnknownBlocks) {
  const Bytes pkt = pattern(33);
  const Bytes file = cat({
      shb(o(), {opt_comment("section comment")}),
      block(o(), kCustom, pattern(13)),                                        // custom block
      idb(o(), 1, 0, {opt_comment("before the name"), opt_name("eth1"), {0x8000, pattern(5)}}),
      block(o(), kNrb, Builder(o()).u16(1).u16(8).u32(0x0a000001).raw(text("a.b")).u8(0).u32(0).bytes()),
      epb(o(), 0, 10, pkt, 33, {opt_comment("x"), {2, Builder(o()).u32(1).bytes()}}),
      block(o(), kIsb, Builder(o()).u32(0).u32(0).u32(10).bytes()),
      block(o(), 0x12345678, {}),  // unknown type, no body
      block(o(), kCustom, {}),
      epb(o(), 0, 20, pkt, 40),
  });
  const std::vector<Got> got = read_bytes(file);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].data, pkt);
  EXPECT_EQ(got[0].ts_ns, 10'000U);
  EXPECT_EQ(got[1].wirelen, 40U);
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  ASSERT_EQ(r.interfaces().size(), 1U);
  EXPECT_EQ(r.interfaces()[0].name, "eth1");
}

TEST_P(ByOrder, PcapngSimpleAndObsoletePacketBlocks) {
  const Bytes file = cat({
      shb(o()),
      idb(o(), 1, 50, {opt_name("eth0")}),
      idb(o(), 101, 0, {opt_name("tun0")}),
      spb(o(), 42, pattern(42)),
      spb(o(), 1514, pattern(50, 5)),  // cut to interface 0's snaplen
      spb(o(), 0, {}),
      opb(o(), 1, 77'000001, pattern(28), 28),
  });
  const std::vector<Got> got = read_bytes(file);
  ASSERT_EQ(got.size(), 4U);
  EXPECT_EQ(got[0], (Got{pattern(42), 42, 0, 0, got[0].offset}));
  EXPECT_EQ(got[1], (Got{pattern(50, 5), 1514, 0, 0, got[1].offset}));
  EXPECT_EQ(got[2], (Got{{}, 0, 0, 0, got[2].offset}));
  EXPECT_EQ(got[3], (Got{pattern(28), 28, 77'000001000, 1, got[3].offset}));
}

TEST_P(ByOrder, PcapngTwoSectionsRestartInterfaceNumbers) {
  const Bytes file = cat({
      shb(o()),
      idb(o(), 1, 0, {opt_name("eth0")}),
      idb(o(), 1, 0, {opt_name("eth1"), opt_tsresol(9)}),
      epb(o(), 1, 5, pattern(10), 10),
      shb(o()),
      idb(o(), 113, 0, {opt_name("any"), opt_tsresol(9)}),
      epb(o(), 0, 6, pattern(11), 11),
      idb(o(), 101, 0, {opt_name("wg0")}),  // declared in the middle of the section
      epb(o(), 1, 7, pattern(12), 12),
  });
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  // Preloaded captures are indexed at load: every interface is known before
  // the first packet is asked for.
  EXPECT_EQ(r.interfaces().size(), 4U);
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(r.interfaces().size(), 4U);
  EXPECT_EQ(r.interfaces()[2].name, "any");
  EXPECT_EQ(r.interfaces()[3].name, "wg0");
  EXPECT_EQ(r.interfaces()[3].link_type, 101U);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].iface, 1U);
  EXPECT_EQ(got[0].ts_ns, 5U);
  EXPECT_EQ(got[1].iface, 2U);
  EXPECT_EQ(got[1].ts_ns, 6U);
  EXPECT_EQ(got[2].iface, 3U);
  EXPECT_EQ(got[2].ts_ns, 7'000U);  // wg0 has the default resolution

  // An enhanced packet block may not use the previous section's interfaces.
  const Bytes bad = cat({shb(o()), idb(o(), 1, 0), shb(o()), epb(o(), 0, 1, pattern(4), 4)});
  EXPECT_EQ(error_of(bad), at(bad.size() - 36 + 8, "a packet of a declared interface (the section has 0), found interface 0"));
}

TEST(CaptureReaderPcapng, SectionsOfDifferentByteOrders) {
  const Bytes file = cat({
      shb(Order::Little), idb(Order::Little, 1, 0, {opt_name("le"), opt_tsoffset(Order::Little, 3)}),
      epb(Order::Little, 0, 1'000001, pattern(9), 9),
      shb(Order::Big), idb(Order::Big, 101, 0, {opt_name("be"), opt_tsoffset(Order::Big, 3)}),
      epb(Order::Big, 0, 2'000002, pattern(9, 1), 19),
  });
  const std::vector<Got> got = read_bytes(file);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0], (Got{pattern(9), 9, 4'000001000, 0, got[0].offset}));
  EXPECT_EQ(got[1], (Got{pattern(9, 1), 19, 5'000002000, 1, got[1].offset}));
}

TEST_P(ByOrder, BurstSizesDoNotChangeTheFrames) {
  Bytes file = cat({shb(o()), idb(o(), 1, 0, {opt_name("eth0")})});
  for (uint32_t i = 0; i < 100; ++i) {
    file = cat({file, epb(o(), 0, i * 1000, pattern(i % 70, static_cast<uint8_t>(i)), i % 70 + 4)});
  }
  const std::vector<Got> whole = read_bytes(file, 100);
  ASSERT_EQ(whole.size(), 100U);
  for (size_t burst : {1U, 3U, 32U, 99U, 1000U}) EXPECT_EQ(read_bytes(file, burst), whole) << burst;
}

TEST_P(ByOrder, RewindReadsTheSameFramesAndInterfacesAgain) {
  const Bytes ng = cat({shb(o()), idb(o(), 1, 0, {opt_name("a")}), epb(o(), 0, 1, pattern(5), 5),
                        shb(o()), idb(o(), 101, 0, {opt_name("b")}), epb(o(), 0, 2, pattern(6), 6)});
  const Bytes classic = cat({pcap_header(o(), kMagicNs, 1), pcap_record(o(), 1, 2, pattern(3), 3)});
  for (const Bytes& file : {ng, classic}) {
    CaptureReader r = CaptureReader::from_bytes("t.cap", file);
    const std::vector<Got> first = read_all(r);
    const std::vector<CaptureInterface> ifaces = r.interfaces();
    r.rewind();
    EXPECT_EQ(r.offset(), first[0].offset);  // preloaded: the first packet record again
    const std::vector<Got> second = read_all(r, 1);
    EXPECT_EQ(second, first);
    ASSERT_EQ(r.interfaces().size(), ifaces.size());
    for (size_t i = 0; i < ifaces.size(); ++i) EXPECT_EQ(r.interfaces()[i].name, ifaces[i].name);
    // Rewinding half way through works too.
    r.rewind();
    std::array<CaptureFrame, 1> one;
    ASSERT_EQ(r.next_burst(one), 1U);
    r.rewind();
    EXPECT_EQ(read_all(r), first);
    EXPECT_EQ(r.interfaces().size(), ifaces.size());
  }
}

// ---------------------------------------------------------------- pcapng: errors

TEST_P(ByOrder, PcapngTooShortForASectionHeader) {
  const Bytes whole = shb(o());
  EXPECT_EQ(error_of(Bytes(whole.begin(), whole.begin() + 11)),
            at(0, "a pcapng section header block, the file is too short"));
}

TEST_P(ByOrder, PcapngBadByteOrderMagic) {
  Bytes file = shb(o());
  file[8] ^= 0xff;
  EXPECT_EQ(error_of(file), at(8, "pcapng byte-order magic 0x1a2b3c4d"));
  Bytes second = cat({shb(o()), idb(o(), 1, 0), shb(o())});
  second[28 + 20 + 8] = 0;
  EXPECT_EQ(error_of(second), at(28 + 20 + 8, "pcapng byte-order magic 0x1a2b3c4d"));
}

TEST_P(ByOrder, PcapngBadVersion) {
  Bytes file = shb(o());
  file[o() == Order::Little ? 12 : 13] = 2;
  EXPECT_EQ(error_of(file), at(12, "pcapng major version 1, found 2"));
}

/// FILE with the 32-bit field at OFFSET set to V in byte order O.
Bytes with_u32(Bytes file, size_t offset, uint32_t v, Order o) {
  const Bytes b = Builder(o).u32(v).bytes();
  std::copy(b.begin(), b.end(), file.begin() + static_cast<std::ptrdiff_t>(offset));
  return file;
}

TEST_P(ByOrder, PcapngBlockLengths) {
  const Bytes head = cat({shb(o()), idb(o(), 1, 0)});
  const size_t b = head.size();  // the packet block's offset
  const Bytes file = cat({head, epb(o(), 0, 1, pattern(8), 8)});
  EXPECT_EQ(error_of(with_u32(file, b + 4, 30, o())),
            at(b + 4, "a block length that is a multiple of 4 and at least 12, found 30"));
  EXPECT_EQ(error_of(with_u32(file, b + 4, 8, o())),
            at(b + 4, "a block length that is a multiple of 4 and at least 12, found 8"));
  EXPECT_EQ(error_of(with_u32(file, b + 4, 44, o())), at(b, "a block of 44 bytes, only 40 left (truncated file)"));
  EXPECT_EQ(error_of(with_u32(file, b + 36, 44, o())),
            at(b + 36, "the block's trailing length to repeat its leading length 40, found 44"));
  // The file ends inside a block header.
  EXPECT_EQ(error_of(Bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(b + 11))),
            at(b, "a pcapng block of at least 12 bytes (truncated file)"));
  // The file ends inside a block.
  EXPECT_EQ(error_of(Bytes(file.begin(), file.end() - 4)), at(b, "a block of 40 bytes, only 36 left (truncated file)"));
  // Below the least length of the block's type.
  EXPECT_EQ(error_of(cat({head, block(o(), kEpb, pattern(16))})),
            at(b + 4, "a packet block of at least 32 bytes, found 28"));
  EXPECT_EQ(error_of(cat({head, block(o(), kOpb, pattern(16))})),
            at(b + 4, "a packet block of at least 32 bytes, found 28"));
  EXPECT_EQ(error_of(cat({head, block(o(), kSpb, {})})), at(b + 4, "a simple packet block of at least 16 bytes, found 12"));
  EXPECT_EQ(error_of(cat({head, block(o(), kIdb, pattern(4))})),
            at(b + 4, "an interface description block of at least 20 bytes, found 16"));
  EXPECT_EQ(error_of(cat({head, block(o(), kShb, Builder(o()).u32(0x1a2b3c4d).u16(1).u16(0).bytes())})),
            at(b + 4, "a section header block of at least 28 bytes, found 20"));
}

TEST_P(ByOrder, PcapngPacketOfAnUndeclaredInterface) {
  const Bytes head = cat({shb(o()), idb(o(), 1, 0), idb(o(), 1, 0)});
  EXPECT_EQ(error_of(cat({head, epb(o(), 2, 1, pattern(8), 8)})),
            at(head.size() + 8, "a packet of a declared interface (the section has 2), found interface 2"));
  EXPECT_EQ(error_of(cat({head, opb(o(), 7, 1, pattern(8), 8)})),
            at(head.size() + 8, "a packet of a declared interface (the section has 2), found interface 7"));
  EXPECT_EQ(error_of(cat({shb(o()), spb(o(), 4, pattern(4))})),
            at(28, "a simple packet block after an interface description block (the section has none)"));
  EXPECT_EQ(error_of(cat({shb(o()), epb(o(), 0, 1, pattern(8), 8)})),
            at(28 + 8, "a packet of a declared interface (the section has 0), found interface 0"));
}

TEST_P(ByOrder, PcapngCapturedLengthThatDoesNotFit) {
  const Bytes head = cat({shb(o()), idb(o(), 1, 0)});
  const size_t b = head.size();
  const Bytes file = cat({head, epb(o(), 0, 1, pattern(8), 8)});
  EXPECT_EQ(error_of(with_u32(file, b + 20, 9, o())), at(b + 20, "a captured length that fits its block (8 bytes), found 9"));
  // The room is up to the trailing length (options are not parsed to find where the data ends).
  const Bytes with_opt = cat({head, epb(o(), 0, 1, pattern(8), 8, {opt_comment("abcd")})});
  EXPECT_EQ(error_of(with_u32(with_opt, b + 20, 21, o())),
            at(b + 20, "a captured length that fits its block (20 bytes), found 21"));
  EXPECT_EQ(error_of(with_u32(file, b + 20, 262145, o())), at(b + 20, "a captured length of at most 262144, found 262145"));
  // A simple packet block longer than its block with no snaplen to cut it.
  EXPECT_EQ(error_of(cat({head, spb(o(), 9, pattern(8))})), at(b + 8, "a captured length that fits its block (8 bytes), found 9"));
  EXPECT_EQ(error_of(cat({head, spb(o(), 300000, pattern(8))})),
            at(b + 8, "a captured length of at most 262144, found 300000"));
}

TEST_P(ByOrder, PcapngBadTsresol) {
  const size_t b = shb(o()).size();
  const Bytes file = cat({shb(o()), idb(o(), 1, 0, {opt_name("eth0"), opt_tsresol(20)})});
  EXPECT_EQ(error_of(file), at(b + 16 + 8, "an if_tsresol of at most 10^-19 or 2^-63, found 0x14"));
  const Bytes file2 = cat({shb(o()), idb(o(), 1, 0, {opt_tsresol(0x80 | 64)})});
  EXPECT_EQ(error_of(file2), at(b + 16, "an if_tsresol of at most 10^-19 or 2^-63, found 0xc0"));
}

TEST_P(ByOrder, PcapngOptionOverrunningItsBlock) {
  const size_t b = shb(o()).size();
  // if_name says 200 bytes, the block holds 8 after the option header.
  Bytes file = cat({shb(o()), idb(o(), 1, 0, {opt_name("eth0xxxx")})});
  const Bytes len = Builder(o()).u16(200).bytes();
  std::copy(len.begin(), len.end(), file.begin() + static_cast<std::ptrdiff_t>(b + 16 + 2));
  EXPECT_EQ(error_of(file), at(b + 16, "an option that fits inside its interface description block, found length 200"));
  // No opt_endofopt and an option header but no room for its value.
  const Bytes no_room = cat({shb(o()), block(o(), kIdb, Builder(o()).u16(1).u16(0).u32(0).u16(2).u16(1).bytes())});
  EXPECT_EQ(error_of(no_room), at(b + 16, "an option that fits inside its interface description block, found length 1"));
  // Without opt_endofopt the options simply end with the block.
  const Bytes no_end = cat({shb(o()), block(o(), kIdb, Builder(o()).u16(1).u16(0).u32(0).u16(2).u16(2).raw(text("ab")).pad4().bytes())});
  CaptureReader r = CaptureReader::from_bytes("t.cap", no_end);
  ASSERT_EQ(r.interfaces().size(), 1U);
  EXPECT_EQ(r.interfaces()[0].name, "ab");
}

TEST_P(ByOrder, PcapngErrorAfterGoodFramesIsSticky) {
  const Bytes head = cat({shb(o()), idb(o(), 1, 0)});
  const Bytes file = cat({head, epb(o(), 0, 1, pattern(8), 8), epb(o(), 0, 2, pattern(8), 8),
                          epb(o(), 3, 3, pattern(8), 8), epb(o(), 0, 4, pattern(8), 8)});
  CaptureReader r = CaptureReader::from_bytes("t.cap", file);
  std::array<CaptureFrame, 8> burst;
  ASSERT_EQ(r.next_burst(burst), 2U);
  EXPECT_EQ(burst[1].ts_ns, 2000U);
  EXPECT_EQ(r.offset(), head.size() + 80);
  for (int i = 0; i < 2; ++i) {
    try {
      r.next_burst(burst);
      ADD_FAILURE() << "no error";
    } catch (const LoadError& e) {
      EXPECT_EQ(std::string(e.what()),
                at(head.size() + 88, "a packet of a declared interface (the section has 1), found interface 3"));
    }
  }
}

TEST_P(ByOrder, PcapngErrorInALeadingBlockIsThrownByTheConstructor) {
  Bytes file = cat({shb(o()), idb(o(), 1, 0), epb(o(), 0, 1, pattern(8), 8)});
  file = with_u32(file, 28 + 4, 21, o());  // the interface block's length
  EXPECT_THROW(CaptureReader::from_bytes("t.cap", file), LoadError);
}

// ---------------------------------------------------------------- files

TEST(CaptureReaderFiles, ReadsFromAPath) {
  const Bytes file = cat({pcap_header(Order::Big, kMagicNs, 113), pcap_record(Order::Big, 9, 8, pattern(7), 7)});
  const std::string path = write_temp("capture_reader_test.pcap", file);
  CaptureReader r(path);
  EXPECT_EQ(r.path(), path);
  EXPECT_EQ(r.link_type(), 113U);
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].ts_ns, 9'000000008U);

  Bytes bad = file;
  bad.resize(bad.size() - 1);
  const std::string bad_path = write_temp("capture_reader_test_bad.pcap", bad);
  try {
    CaptureReader rb(bad_path);
    read_all(rb);
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), bad_path + ": offset 24: expected 7 bytes of frame data, only 6 left (truncated file)");
  }
}

TEST(CaptureReaderFiles, MissingFile) {
  const std::string path = testing::TempDir() + "no/such/capture.pcap";
  try {
    CaptureReader r(path);
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, path);
  }
}

TEST(CaptureReaderFiles, DockerHostCapture) {
  const std::string path = source_root() + "/data/captures/docker-host-eth0.pcap";
  CaptureReader r(path);
  EXPECT_FALSE(r.is_pcapng());
  EXPECT_EQ(r.link_type(), 1U);
  ASSERT_EQ(r.interfaces().size(), 1U);
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(got.size(), 154U);
  // Records follow each other without gaps up to the end of the file.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto size = static_cast<uint64_t>(in.tellg());
  uint64_t next = 24;
  for (const Got& g : got) {
    EXPECT_EQ(g.offset, next);
    EXPECT_LE(g.data.size(), r.interfaces()[0].snaplen);
    EXPECT_GE(g.data.size(), 14U);  // at least an Ethernet header
    next = g.offset + 16 + g.data.size();
  }
  EXPECT_EQ(next, size);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LE(got[i - 1].ts_ns, got[i].ts_ns) << i;
}

}  // namespace
}  // namespace nfb
