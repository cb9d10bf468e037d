// Tests for pcap/capture_writer.h: files written by PcapngWriter and
// PcapWriter are read back by pcap/capture_reader.h (names, link types,
// nanosecond timestamps, bytes, wire lengths) and by libpcap, to show that
// other tools accept them. Also: error reporting, and that write() does not
// allocate (this binary counts every operator new).
#include "pcap/capture_writer.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "base/load_error.h"
#include "pcap/capture_reader.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions (the array forms
// call these; the aligned forms are not used here). Not inlined, so that the
// compiler pairs new with delete and not with the free() inside.
[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace nfb {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes pattern(size_t n, uint8_t seed = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

std::string temp_path(const std::string& name) { return testing::TempDir() + name; }

Bytes file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Got {
  Bytes data;
  uint32_t wirelen = 0;
  uint64_t ts_ns = 0;
  uint32_t iface = 0;
  friend bool operator==(const Got&, const Got&) = default;
};

void PrintTo(const Got& g, std::ostream* os) {
  *os << "{caplen " << g.data.size() << " wirelen " << g.wirelen << " ts " << g.ts_ns << " iface " << g.iface << "}";
}

std::vector<Got> read_all(CaptureReader& r) {
  std::vector<CaptureFrame> frames(16);
  std::vector<Got> out;
  while (size_t n = r.next_burst(frames)) {
    for (size_t i = 0; i < n; ++i) {
      out.push_back({Bytes(frames[i].data, frames[i].data + frames[i].caplen), frames[i].wirelen, frames[i].ts_ns,
                     frames[i].iface});
    }
  }
  return out;
}

/// What libpcap reads from PATH, with nanosecond timestamps; "" or its error.
struct Libpcap {
  std::string error;
  int link_type = -1;
  int snaplen = -1;
  std::vector<Got> frames;
};

Libpcap read_with_libpcap(const std::string& path) {
  Libpcap out;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) {
    out.error = errbuf;
    return out;
  }
  out.link_type = pcap_datalink(p);
  out.snaplen = pcap_snapshot(p);
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    const uint64_t ts = static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(h->ts.tv_usec);
    out.frames.push_back({Bytes(data, data + h->caplen), h->len, ts, 0});
  }
  if (rc != PCAP_ERROR_BREAK) out.error = pcap_geterr(p);
  pcap_close(p);
  return out;
}

// ---------------------------------------------------------------- pcapng

TEST(PcapngWriter, ReadBackByTheReader) {
  const std::string path = temp_path("writer_roundtrip.pcapng");
  std::vector<Got> want;
  {
    PcapngWriter w(path);
    EXPECT_EQ(w.path(), path);
    EXPECT_EQ(w.add_interface("eth0", 1), 0U);
    EXPECT_EQ(w.add_interface("docker0", 1, 96), 1U);
    EXPECT_EQ(w.add_interface("any", 113, 0), 2U);
    EXPECT_EQ(w.add_interface("", 101), 3U);  // no if_name option
    EXPECT_EQ(w.interface_count(), 4U);
    struct In {
      uint32_t iface;
      uint64_t ts;
      Bytes frame;
      uint32_t wirelen;
    };
    const std::vector<In> in = {
        {0, 1'700'000'000'123'456'789ULL, pattern(60), 60},
        {1, 1'700'000'000'123'456'790ULL, pattern(1514, 1), 1514},  // cut to 96
        {2, 0, {}, 0},
        {3, ~uint64_t{0}, pattern(1), 1},
        {0, 4'000'000'000'999'999'999ULL, pattern(3, 3), 1},  // wirelen raised to 3
        {2, 5, pattern(9000, 9), 9000},                       // snaplen 0: kept whole
        {3, 6, pattern(2, 2), 70000},                         // cut on the wire already
    };
    for (const In& x : in) w.write(x.iface, x.ts, x.frame, x.wirelen);
    EXPECT_EQ(w.frames(), in.size());
    EXPECT_EQ(w.dropped(), 0U);
    w.close();
    w.close();  // a second close does nothing
    for (const In& x : in) {
      Bytes cut = x.frame;
      if (x.iface == 1 && cut.size() > 96) cut.resize(96);
      want.push_back({cut, std::max<uint32_t>(x.wirelen, static_cast<uint32_t>(cut.size())), x.ts, x.iface});
    }
  }
  CaptureReader r(path);
  EXPECT_TRUE(r.is_pcapng());
  ASSERT_EQ(r.interfaces().size(), 4U);
  EXPECT_EQ(r.interfaces()[0].name, "eth0");
  EXPECT_EQ(r.interfaces()[1].name, "docker0");
  EXPECT_EQ(r.interfaces()[2].name, "any");
  EXPECT_EQ(r.interfaces()[3].name, "");
  EXPECT_EQ(r.interfaces()[0].link_type, 1U);
  EXPECT_EQ(r.interfaces()[2].link_type, 113U);
  EXPECT_EQ(r.interfaces()[3].link_type, 101U);
  EXPECT_EQ(r.interfaces()[0].snaplen, 262144U);
  EXPECT_EQ(r.interfaces()[1].snaplen, 96U);
  EXPECT_EQ(r.interfaces()[2].snaplen, 0U);
  EXPECT_EQ(read_all(r), want);
}

TEST(PcapngWriter, SectionHeaderNamesTheApplication) {
  const std::string path = temp_path("writer_shb.pcapng");
  PcapngWriter(path).close();
  const Bytes b = file_bytes(path);
  ASSERT_EQ(b.size(), 44U);  // 24 fixed + shb_userappl (4 + 8) + opt_endofopt 4 + trailing length 4
  uint32_t magic = 0;
  uint16_t code = 0;
  uint16_t len = 0;
  std::memcpy(&magic, b.data() + 8, 4);
  std::memcpy(&code, b.data() + 24, 2);
  std::memcpy(&len, b.data() + 26, 2);
  EXPECT_EQ(magic, 0x1a2b3c4dU);  // the machine's byte order
  EXPECT_EQ(code, 4);
  EXPECT_EQ(len, 7);
  EXPECT_EQ(std::string(b.begin() + 28, b.begin() + 35), "nfbench");
  CaptureReader r(path);
  EXPECT_TRUE(r.interfaces().empty());
  std::vector<CaptureFrame> f(1);
  EXPECT_EQ(r.next_burst(f), 0U);
}

TEST(PcapngWriter, ManyFramesCrossTheBufferBoundary) {
  const std::string path = temp_path("writer_many.pcapng");
  PcapngWriter w(path);
  w.add_interface("veth1", 1);
  const uint32_t n = 3000;  // about 4.6 MB: several buffers
  for (uint32_t i = 0; i < n; ++i) w.write(0, uint64_t{i} * 1000 + 7, pattern(1514 - i % 13, static_cast<uint8_t>(i)), 1514);
  w.close();
  CaptureReader r(path);
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(got.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(got[i].data, pattern(1514 - i % 13, static_cast<uint8_t>(i))) << i;
    ASSERT_EQ(got[i].ts_ns, uint64_t{i} * 1000 + 7);
  }
}

TEST(PcapngWriter, FlushMakesFramesVisibleAndTheDestructorCloses) {
  const std::string path = temp_path("writer_flush.pcapng");
  {
    PcapngWriter w(path);
    w.add_interface("eth0", 1);
    w.write(0, 1, pattern(64), 64);
    w.flush();
    CaptureReader r(path);
    EXPECT_EQ(read_all(r).size(), 1U);
    w.write(0, 2, pattern(64), 64);
  }  // no close(): the destructor writes the rest
  CaptureReader r(path);
  EXPECT_EQ(read_all(r).size(), 2U);
}

TEST(PcapngWriter, MovedWritersKeepWriting) {
  const std::string a = temp_path("writer_move_a.pcapng");
  const std::string b = temp_path("writer_move_b.pcapng");
  std::vector<PcapngWriter> out;
  out.emplace_back(a);
  out.back().add_interface("a", 1);
  out.back().write(0, 1, pattern(10), 10);
  out.emplace_back(b);  // may move the first writer
  out.back().add_interface("b", 113);
  out[0].write(0, 2, pattern(11), 11);
  out[1].write(0, 3, pattern(12), 12);
  PcapngWriter moved = std::move(out[0]);
  moved.write(0, 4, pattern(13), 13);
  moved.close();
  out.clear();
  CaptureReader ra(a);
  const std::vector<Got> ga = read_all(ra);
  ASSERT_EQ(ga.size(), 3U);
  EXPECT_EQ(ga[2].ts_ns, 4U);
  CaptureReader rb(b);
  EXPECT_EQ(rb.interfaces()[0].name, "b");
  EXPECT_EQ(read_all(rb).size(), 1U);
}

TEST(PcapngWriter, WriteDoesNotAllocate) {
  PcapngWriter w(temp_path("writer_alloc.pcapng"));
  w.add_interface("eth0", 1);
  w.add_interface("eth1", 1, 128);
  const Bytes frame = pattern(1514);
  const uint64_t before = g_allocations.load();
  for (uint32_t i = 0; i < 5000; ++i) w.write(i % 2, i, frame, 1514);  // several buffer flushes
  w.write(9, 0, frame, 1514);  // an undeclared interface: dropped, still no allocation
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(w.frames(), 5000U);
  EXPECT_EQ(w.dropped(), 1U);
  EXPECT_THROW(w.close(), LoadError);
}

TEST(PcapngWriter, OpenErrorNamesTheFile) {
  const std::string path = temp_path("no/such/dir/out.pcapng");
  try {
    PcapngWriter w(path);
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, path);
    EXPECT_EQ(e.message(), "cannot open for writing: No such file or directory");
    EXPECT_EQ(std::string(e.what()), path + ": cannot open for writing: No such file or directory");
  }
  EXPECT_THROW(PcapWriter(path, 1), LoadError);
}

TEST(PcapngWriter, BadInterfaceArguments) {
  const std::string path = temp_path("writer_badarg.pcapng");
  PcapngWriter w(path);
  try {
    w.add_interface("eth0", 70000);
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": expected a link type below 65536, found 70000");
  }
  EXPECT_THROW(w.add_interface(std::string(70000, 'x'), 1), LoadError);
  EXPECT_EQ(w.interface_count(), 0U);
  w.close();
  EXPECT_THROW(w.add_interface("eth0", 1), LoadError);
}

TEST(PcapngWriter, FramesOfUndeclaredInterfacesAreDroppedAndReported) {
  const std::string path = temp_path("writer_undeclared.pcapng");
  PcapngWriter w(path);
  w.add_interface("eth0", 1);
  w.write(0, 1, pattern(20), 20);
  w.write(5, 2, pattern(20), 20);
  w.write(1, 3, pattern(20), 20);
  w.write(0, 4, pattern(20), 20);
  EXPECT_EQ(w.frames(), 2U);
  EXPECT_EQ(w.dropped(), 2U);
  try {
    w.close();
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": 2 frames for an undeclared interface were dropped, the first for interface 5");
  }
  CaptureReader r(path);  // the good frames are all there
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[1].ts_ns, 4U);
}

TEST(PcapngWriter, WriteErrorsShowAtClose) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  PcapngWriter w("/dev/full");
  w.add_interface("eth0", 1);
  for (uint32_t i = 0; i < 1000; ++i) w.write(0, i, pattern(1514), 1514);  // fills the buffer: a write fails
  EXPECT_GT(w.dropped(), 0U);
  EXPECT_LT(w.frames(), 1000U);
  EXPECT_EQ(w.frames() + w.dropped(), 1000U);
  try {
    w.close();
    ADD_FAILURE() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(e.where().file, "/dev/full");
    EXPECT_EQ(e.message().rfind("cannot write: No space left on device (", 0), 0U) << e.message();
  }
}

TEST(PcapngWriter, LibpcapReadsIt) {
  const std::string path = temp_path("writer_libpcap.pcapng");
  std::vector<Got> want;
  {
    PcapngWriter w(path);
    // libpcap wants every interface of a file to share the first one's link
    // type and snapshot length.
    w.add_interface("br-0123456789ab", 1, 2000);
    w.add_interface("eth0", 1, 2000);
    for (uint32_t i = 0; i < 50; ++i) {
      const Bytes f = pattern(60 + i * 37, static_cast<uint8_t>(i));
      const uint64_t ts = 1'700'000'000'000'000'000ULL + uint64_t{i} * 1'000'000'123ULL;
      w.write(i % 2, ts, f, static_cast<uint32_t>(f.size() + i));
      Bytes cut = f;
      if (cut.size() > 2000) cut.resize(2000);
      want.push_back({cut, static_cast<uint32_t>(f.size() + i), ts, 0});
    }
    w.close();
  }
  const Libpcap got = read_with_libpcap(path);
  ASSERT_EQ(got.error, "");
  EXPECT_EQ(got.link_type, 1);
  EXPECT_EQ(got.frames, want);
}

// ---------------------------------------------------------------- classic pcap

TEST(PcapWriter, ReadBackByTheReaderAndLibpcap) {
  const std::string path = temp_path("writer_classic.pcap");
  std::vector<Got> want;
  {
    PcapWriter w(path, 113, 200);
    // libpcap reads the seconds as signed 32 bits: stay below 2038 here.
    const uint64_t ts[] = {0, 1'234'567'891ULL, 2'147'483'647'999'999'999ULL};
    for (uint32_t i = 0; i < 3; ++i) {
      const Bytes f = pattern(i == 1 ? 300 : 40 + i, static_cast<uint8_t>(i));
      w.write(ts[i], f, i == 2 ? 1 : static_cast<uint32_t>(f.size()));
      Bytes cut = f;
      if (cut.size() > 200) cut.resize(200);
      want.push_back({cut, static_cast<uint32_t>(f.size()), ts[i], 0});
    }
    EXPECT_EQ(w.frames(), 3U);
    w.close();
  }
  const Bytes b = file_bytes(path);
  uint32_t magic = 0;
  std::memcpy(&magic, b.data(), 4);
  EXPECT_EQ(magic, 0xa1b23c4dU);
  CaptureReader r(path);
  EXPECT_FALSE(r.is_pcapng());
  EXPECT_EQ(r.link_type(), 113U);
  EXPECT_EQ(r.interfaces()[0].snaplen, 200U);
  EXPECT_EQ(read_all(r), want);

  const Libpcap lp = read_with_libpcap(path);
  ASSERT_EQ(lp.error, "");
  EXPECT_EQ(lp.link_type, 113);
  EXPECT_EQ(lp.snaplen, 200);
  EXPECT_EQ(lp.frames, want);
}

TEST(PcapWriter, TimestampsUpTo2106) {
  const std::string path = temp_path("writer_classic_2106.pcap");
  PcapWriter w(path, 1);
  w.write(4'294'967'295'999'999'999ULL, pattern(14), 14);
  w.close();
  CaptureReader r(path);
  const std::vector<Got> got = read_all(r);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].ts_ns, 4'294'967'295'999'999'999ULL);
}

TEST(PcapWriter, WriteDoesNotAllocate) {
  PcapWriter w(temp_path("writer_classic_alloc.pcap"), 1);
  const Bytes frame = pattern(1514);
  const uint64_t before = g_allocations.load();
  for (uint32_t i = 0; i < 3000; ++i) w.write(i, frame, 1514);
  EXPECT_EQ(g_allocations.load(), before);
  w.close();
}

}  // namespace
}  // namespace nfb
