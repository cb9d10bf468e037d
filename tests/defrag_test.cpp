// The reassembly table (netfilter/defrag.h): arrival orders, duplicates and
// overlaps with the kernel's run rule, length rules, the reassembled bytes
// and header fields, timeouts, capacity, memory and output buffers. Every
// rule checked here was measured on the kernel first (see defrag.h and
// tests/data/scenarios/README.md); a randomized test holds the table to a
// plain reference written from the same rules.
#include "netfilter/defrag.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "packet/frame_parser.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

using test::Bytes;
using test::ip4;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kT0 = 1'700'000'000ULL * kSecond;

// A UDP datagram of `payload` bytes after the UDP header (so the IP payload
// is payload + 8 bytes), no DF unless asked.
Bytes datagram(uint16_t id, size_t payload, bool df = false, uint8_t ttl = 57, uint8_t tos = 0) {
  return test::ipv4({.src = ip4(203, 0, 113, 5), .dst = ip4(198, 51, 100, 1), .proto = kProtoUdp, .ttl = ttl,
                     .tos = tos, .id = id, .df = df},
                    test::udp({.sport = 40000, .dport = 5353, .payload = test::pattern(payload, 7)}));
}

// One fragment of `whole`: IP payload bytes [off, off + n) (clipped to what
// the datagram has, zero-padded beyond), MF as given, the whole datagram's
// header otherwise (options included), checksum fixed.
Bytes frag(const Bytes& whole, size_t off, size_t n, bool mf) {
  const size_t hl = static_cast<size_t>(whole.at(0) & 0x0f) * 4;
  Bytes f(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(hl));
  for (size_t i = 0; i < n; ++i) f.push_back(hl + off + i < whole.size() ? whole[hl + off + i] : 0);
  test::set16(f, 2, static_cast<uint16_t>(f.size()));
  uint16_t fr = static_cast<uint16_t>(test::get16(whole, 6) & ip_frag::kDontFragment);
  fr = static_cast<uint16_t>(fr | (off / 8) | (mf ? ip_frag::kMoreFragments : 0));
  test::set16(f, 6, fr);
  test::fix_ipv4_checksum(f);
  return f;
}

// Edits header bytes of an IP packet and fixes its checksum.
Bytes with_header(Bytes ip, int tos, int ttl, int df) {
  if (tos >= 0) ip[1] = static_cast<uint8_t>(tos);
  if (ttl >= 0) ip[8] = static_cast<uint8_t>(ttl);
  if (df == 1) ip[6] = static_cast<uint8_t>(ip[6] | 0x40);
  if (df == 0) ip[6] = static_cast<uint8_t>(ip[6] & ~0x40);
  test::fix_ipv4_checksum(ip);
  return ip;
}

struct Frame {
  Bytes bytes;
  PacketKey key;
  ParseStatus status = ParseStatus::Ok;
};

Frame ether(const Bytes& ip, const test::Mac& src = test::kMacB, uint16_t ifindex = 1,
            std::vector<test::VlanTag> tags = {}) {
  Frame f;
  f.bytes = test::ethernet({.dst = test::kMacA, .src = src, .tags = std::move(tags)}, ip);
  f.status = parse_frame(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), LinkType::Ethernet, ifindex, f.key);
  return f;
}

DefragResult add(DefragTable& t, const Frame& f, uint64_t ts) {
  EXPECT_TRUE(status_has_l3(f.status)) << parse_status_name(f.status);
  return t.add(f.key, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), ts);
}

// The IP datagram inside a completed result.
Bytes ip_of(const DefragResult& r) {
  return Bytes(r.frame + r.key.l3_off, r.frame + r.len);
}

void expect_accounted(const DefragTable& t) {
  const DefragStats& s = t.stats();
  uint64_t dropped = 0;
  for (uint64_t d : s.dropped) dropped += d;
  EXPECT_EQ(s.fragments, s.merged + dropped + s.held);
}

// ---------------------------------------------------------------- orders

TEST(Defrag, InOrderFragmentsGiveTheOriginalDatagramByteForByte) {
  DefragTable t;
  const Bytes whole = datagram(0x1234, 1992);  // 2000-byte IP payload
  const Frame a = ether(frag(whole, 0, 800, true));
  const Frame b = ether(frag(whole, 800, 800, true));
  const Frame c = ether(frag(whole, 1600, 400, false));
  EXPECT_EQ(add(t, a, kT0).status, DefragStatus::Held);
  EXPECT_EQ(add(t, b, kT0 + 1).status, DefragStatus::Held);
  EXPECT_EQ(t.datagrams(), 1U);
  EXPECT_EQ(t.stats().held, 2U);
  const DefragResult r = add(t, c, kT0 + 2);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(r.fragments, 3U);
  // No DF anywhere, so the reassembled header is the original one exactly.
  EXPECT_EQ(ip_of(r), whole);
  // The link header is the completing fragment's.
  EXPECT_TRUE(std::equal(c.bytes.begin(), c.bytes.begin() + 14, r.frame));
  EXPECT_EQ(r.len, 14U + whole.size());
  EXPECT_EQ(t.datagrams(), 0U);
  EXPECT_EQ(t.memory(), 0U);
  EXPECT_EQ(t.stats().datagrams, 1U);
  EXPECT_EQ(t.stats().merged, 3U);
  EXPECT_EQ(t.stats().held, 0U);
  expect_accounted(t);
}

TEST(Defrag, ReassembledKeyIsTheKeyOfTheWholePacket) {
  DefragTable t;
  const Bytes whole = datagram(7, 1992);
  add(t, ether(frag(whole, 0, 1480, true)), kT0);
  const DefragResult r = add(t, ether(frag(whole, 1480, 520, false)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  const Frame unfragmented = ether(whole);
  ASSERT_EQ(unfragmented.status, ParseStatus::Ok);
  EXPECT_EQ(r.key, unfragmented.key);
  EXPECT_FALSE(r.key.is_fragment());
  EXPECT_EQ(r.key.l3_len, 2020U);
  EXPECT_EQ(r.key.dst_port, 5353U);
  PacketKey reparsed;
  ASSERT_EQ(parse_frame(r.frame, r.len, LinkType::Ethernet, 1, reparsed), ParseStatus::Ok);
  EXPECT_EQ(reparsed, r.key);
}

TEST(Defrag, EveryArrivalOrderCompletesOnItsLastFragment) {
  const Bytes whole = datagram(99, 2992);  // 3000-byte payload, 4 fragments
  const std::vector<Frame> parts{ether(frag(whole, 0, 800, true)), ether(frag(whole, 800, 800, true)),
                                 ether(frag(whole, 1600, 800, true)), ether(frag(whole, 2400, 600, false))};
  std::vector<size_t> order{0, 1, 2, 3};
  int orders = 0;
  do {
    DefragTable t;
    SCOPED_TRACE(::testing::PrintToString(order));
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      EXPECT_EQ(add(t, parts[order[i]], kT0 + i).status, DefragStatus::Held);
    }
    const DefragResult r = add(t, parts[order.back()], kT0 + 9);
    ASSERT_EQ(r.status, DefragStatus::Complete);
    EXPECT_EQ(ip_of(r), whole);
    EXPECT_EQ(r.fragments, 4U);
    expect_accounted(t);
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(orders, 24);
}

TEST(Defrag, FragmentsLargerThanABlockAndAnOddLastOne) {
  DefragTable t;
  const Bytes whole = datagram(5, 4000 - 8 + 3);  // 4003-byte payload
  EXPECT_EQ(add(t, ether(frag(whole, 2960, 1043, false)), kT0).status, DefragStatus::Held);
  EXPECT_EQ(add(t, ether(frag(whole, 0, 1480, true)), kT0).status, DefragStatus::Held);
  const DefragResult r = add(t, ether(frag(whole, 1480, 1480, true)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(ip_of(r), whole);
}

TEST(Defrag, NonLastFragmentIsTrimmedToAMultipleOf8) {
  DefragTable t;
  const Bytes whole = datagram(6, 1592);  // 1600-byte payload
  // 803 bytes with MF: the kernel keeps 800, so the fragment at 800 follows.
  EXPECT_EQ(add(t, ether(frag(whole, 0, 803, true)), kT0).status, DefragStatus::Held);
  const DefragResult r = add(t, ether(frag(whole, 800, 800, false)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(ip_of(r), whole);
}

// ---------------------------------------------------------------- duplicates and overlaps

TEST(Defrag, DuplicateInsideARunIsDroppedAloneAndTheDatagramCompletes) {
  DefragTable t;
  const Bytes whole = datagram(3, 1992);
  add(t, ether(frag(whole, 0, 800, true)), kT0);
  add(t, ether(frag(whole, 800, 800, true)), kT0);  // appended: one run [0, 1600)
  for (const auto& [off, n] : {std::pair<size_t, size_t>{800, 800}, {800, 400}, {400, 800}, {0, 1600}}) {
    const DefragResult d = add(t, ether(frag(whole, off, n, true)), kT0);
    EXPECT_EQ(d.status, DefragStatus::Dropped) << off << "+" << n;
    EXPECT_EQ(d.reason, DefragDrop::Duplicate);
    EXPECT_EQ(d.discarded, 0U);
  }
  const DefragResult r = add(t, ether(frag(whole, 1600, 400, false)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(r.fragments, 3U);
  EXPECT_EQ(ip_of(r), whole);
  EXPECT_EQ(t.stats().dropped[static_cast<size_t>(DefragDrop::Duplicate)], 4U);
  EXPECT_EQ(t.stats().failed[static_cast<size_t>(DefragDrop::Duplicate)], 0U);
  expect_accounted(t);
}

TEST(Defrag, SameBytesAcrossTwoRunsAreAnOverlap) {
  // [0,400) then [800,1200) then [400,800): three runs (only an append to
  // the highest fragment extends a run). [0,800) then spans two runs.
  DefragTable t;
  const Bytes whole = datagram(4, 1992);
  add(t, ether(frag(whole, 0, 400, true)), kT0);
  add(t, ether(frag(whole, 800, 400, true)), kT0);
  EXPECT_EQ(add(t, ether(frag(whole, 400, 400, true)), kT0).status, DefragStatus::Held);
  const DefragResult d = add(t, ether(frag(whole, 0, 800, true)), kT0);
  EXPECT_EQ(d.status, DefragStatus::Dropped);
  EXPECT_EQ(d.reason, DefragDrop::Overlap);
  EXPECT_EQ(d.discarded, 3U);
  EXPECT_EQ(t.datagrams(), 0U);
  // The same four fragments in order form one run: the last is a duplicate.
  DefragTable u;
  add(u, ether(frag(whole, 0, 400, true)), kT0);
  add(u, ether(frag(whole, 400, 400, true)), kT0);
  add(u, ether(frag(whole, 800, 400, true)), kT0);
  EXPECT_EQ(add(u, ether(frag(whole, 0, 800, true)), kT0).reason, DefragDrop::Duplicate);
  EXPECT_EQ(add(u, ether(frag(whole, 1200, 800, false)), kT0).status, DefragStatus::Complete);
}

TEST(Defrag, OverlapDiscardsTheDatagramAndLaterFragmentsStartAgain) {
  DefragTable t;
  const Bytes whole = datagram(8, 1992);
  add(t, ether(frag(whole, 0, 800, true)), kT0);
  const DefragResult o = add(t, ether(frag(whole, 400, 1200, true)), kT0);  // beyond the tail, starts inside it
  EXPECT_EQ(o.status, DefragStatus::Dropped);
  EXPECT_EQ(o.reason, DefragDrop::Overlap);
  EXPECT_EQ(o.discarded, 1U);
  EXPECT_EQ(t.stats().failed[static_cast<size_t>(DefragDrop::Overlap)], 1U);
  EXPECT_EQ(t.stats().dropped[static_cast<size_t>(DefragDrop::Overlap)], 2U);
  // A new datagram with the same key: needs all its fragments again.
  EXPECT_EQ(add(t, ether(frag(whole, 1600, 400, false)), kT0).status, DefragStatus::Held);
  EXPECT_EQ(add(t, ether(frag(whole, 0, 800, true)), kT0).status, DefragStatus::Held);
  const DefragResult r = add(t, ether(frag(whole, 800, 800, true)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(r.fragments, 3U);
  EXPECT_EQ(ip_of(r), whole);
  expect_accounted(t);
}

TEST(Defrag, OverlapInTheMiddleOfRuns) {
  DefragTable t;
  const Bytes whole = datagram(9, 1992);
  add(t, ether(frag(whole, 1600, 400, false)), kT0);
  add(t, ether(frag(whole, 0, 400, true)), kT0);
  const DefragResult o = add(t, ether(frag(whole, 200 + 8 * 25, 1400, true)), kT0);  // [400,1800)
  EXPECT_EQ(o.reason, DefragDrop::Overlap);
  EXPECT_EQ(o.discarded, 2U);
}

// ---------------------------------------------------------------- length rules

TEST(Defrag, EmptyFragmentAfterTrimmingDiscardsTheDatagram) {
  DefragTable t;
  const Bytes whole = datagram(10, 1992);
  add(t, ether(frag(whole, 0, 800, true)), kT0);
  const DefragResult d = add(t, ether(frag(whole, 800, 4, true)), kT0);  // 4 bytes with MF: 0 after trim
  EXPECT_EQ(d.reason, DefragDrop::BadLength);
  EXPECT_EQ(d.discarded, 1U);
  EXPECT_EQ(t.datagrams(), 0U);
}

TEST(Defrag, LastFragmentsThatDisagreeDiscardTheDatagram) {
  const Bytes whole = datagram(11, 1992);
  {
    DefragTable t;  // a second last fragment with another end
    add(t, ether(frag(whole, 0, 800, true)), kT0);
    add(t, ether(frag(whole, 1600, 400, false)), kT0);
    const DefragResult d = add(t, ether(frag(whole, 1600, 200, false)), kT0);
    EXPECT_EQ(d.reason, DefragDrop::BadLength);
    EXPECT_EQ(d.discarded, 2U);
  }
  {
    DefragTable t;  // a last fragment ending before bytes already held
    add(t, ether(frag(whole, 0, 1600, true)), kT0);
    EXPECT_EQ(add(t, ether(frag(whole, 800, 400, false)), kT0).reason, DefragDrop::BadLength);
  }
  {
    DefragTable t;  // a non-last fragment ending beyond the last one
    add(t, ether(frag(whole, 1600, 400, false)), kT0);
    EXPECT_EQ(add(t, ether(frag(whole, 1600, 408, true)), kT0).reason, DefragDrop::BadLength);
  }
  {
    DefragTable t;  // the same last fragment twice: a duplicate, not a conflict
    add(t, ether(frag(whole, 1600, 400, false)), kT0);
    EXPECT_EQ(add(t, ether(frag(whole, 1600, 400, false)), kT0).reason, DefragDrop::Duplicate);
    EXPECT_EQ(add(t, ether(frag(whole, 0, 1600, true)), kT0).status, DefragStatus::Complete);
  }
}

TEST(Defrag, DatagramBeyond65535BytesIsDiscardedWhenComplete) {
  DefragTable t;
  const Bytes whole = datagram(12, 65600 - 8);  // IP payload 65600: total 65620
  size_t off = 0;
  DefragResult r;
  uint32_t held = 0;
  while (off < 65600) {
    const size_t n = std::min<size_t>(1480, 65600 - off);
    r = add(t, ether(frag(whole, off, n, off + n < 65600)), kT0);
    off += n;
    if (off < 65600) {
      EXPECT_EQ(r.status, DefragStatus::Held) << off;
      ++held;
    }
  }
  EXPECT_EQ(r.status, DefragStatus::Dropped);
  EXPECT_EQ(r.reason, DefragDrop::TooBig);
  EXPECT_EQ(r.discarded, held);
  EXPECT_EQ(t.datagrams(), 0U);
  EXPECT_EQ(t.memory(), 0U);
  expect_accounted(t);
}

TEST(Defrag, LargestDatagramThatFits) {
  DefragTable t;
  const Bytes whole = datagram(13, 65515 - 8);  // total exactly 65535
  ASSERT_EQ(whole.size(), 65535U);
  size_t off = 0;
  DefragResult r;
  while (off < 65515) {
    const size_t n = std::min<size_t>(8 * 1000, 65515 - off);
    r = add(t, ether(frag(whole, off, n, off + n < 65515)), kT0);
    off += n;
  }
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(ip_of(r), whole);
  EXPECT_EQ(r.key.l3_len, 65535U);
}

// ---------------------------------------------------------------- header fields

TEST(Defrag, HeaderComesFromTheFirstFragmentWithOffsetZero) {
  DefragTable t;
  // IP options (record route, 8 bytes) in the first fragment only; TTL 57
  // there, 32 in the others; the first fragment arrives in the middle.
  const Bytes whole = test::ipv4({.src = ip4(203, 0, 113, 5),
                                  .dst = ip4(198, 51, 100, 1),
                                  .proto = kProtoUdp,
                                  .ttl = 57,
                                  .id = 0x4242,
                                  .options = {7, 7, 4, 0, 0, 0, 0, 0}},
                                 test::udp({.sport = 1, .dport = 2, .payload = test::pattern(1592)}));
  ASSERT_EQ(whole.at(0), 0x47);  // 28-byte header
  const Bytes plain = test::ipv4({.src = ip4(203, 0, 113, 5), .dst = ip4(198, 51, 100, 1), .proto = kProtoUdp,
                                  .ttl = 32, .id = 0x4242},
                                 Bytes(whole.begin() + 28, whole.end()));
  add(t, ether(frag(plain, 800, 800, false)), kT0);
  add(t, ether(frag(whole, 0, 400, true)), kT0);
  const DefragResult r = add(t, ether(frag(plain, 400, 400, true)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(ip_of(r), whole);
  EXPECT_EQ(r.key.ttl, 57U);
  EXPECT_EQ(r.key.ip_hdr_len(), 28U);
}

TEST(Defrag, DontFragmentOnlyWhenTheLargestFragmentHadIt) {
  const Bytes whole = datagram(14, 1992);
  const Bytes a = frag(whole, 0, 800, true);
  const Bytes b = frag(whole, 800, 800, true);
  const Bytes c = frag(whole, 1600, 400, false);
  {
    DefragTable t;  // only the small last fragment has DF
    add(t, ether(a), kT0);
    add(t, ether(b), kT0);
    const DefragResult r = add(t, ether(with_header(c, -1, -1, 1)), kT0);
    ASSERT_EQ(r.status, DefragStatus::Complete);
    EXPECT_EQ(r.key.frag, 0U);
  }
  {
    DefragTable t;  // one of the two largest has DF
    add(t, ether(with_header(a, -1, -1, 1)), kT0);
    add(t, ether(b), kT0);
    const DefragResult r = add(t, ether(c), kT0);
    ASSERT_EQ(r.status, DefragStatus::Complete);
    EXPECT_EQ(r.key.frag, ip_frag::kDontFragment);
    EXPECT_EQ(ip_of(r), with_header(whole, -1, -1, 1));
  }
}

TEST(Defrag, EcnFollowsRfc3168) {
  const Bytes whole = datagram(15, 1992);
  std::vector<std::unique_ptr<DefragTable>> tables;  // results point into their table
  const auto run = [&](uint8_t a, uint8_t b, uint8_t c) {
    DefragTable& t = *tables.emplace_back(std::make_unique<DefragTable>());
    add(t, ether(with_header(frag(whole, 0, 800, true), a, -1, -1)), kT0);
    add(t, ether(with_header(frag(whole, 800, 800, true), b, -1, -1)), kT0);
    return add(t, ether(with_header(frag(whole, 1600, 400, false), c, -1, -1)), kT0);
  };
  // ECT(0) + CE: CE. The checksum is recomputed (the key parsed Ok).
  const DefragResult ce = run(0x02, 0x03, 0x02);
  ASSERT_EQ(ce.status, DefragStatus::Complete);
  EXPECT_EQ(ce.key.tos, 0x03U);
  EXPECT_EQ(ip_of(ce), with_header(whole, 0x03, -1, -1));
  // ECT(1) + ECT(0): the first fragment's bits.
  const DefragResult ect = run(0x01, 0x02, 0x01);
  ASSERT_EQ(ect.status, DefragStatus::Complete);
  EXPECT_EQ(ect.key.tos, 0x01U);
  // DSCP bits come from the first fragment too.
  EXPECT_EQ(run(0xb8, 0x00, 0x00).key.tos, 0xb8U);
  // Not-ECT with ECT: the datagram is discarded.
  const DefragResult bad = run(0x00, 0x02, 0x00);
  EXPECT_EQ(bad.status, DefragStatus::Dropped);
  EXPECT_EQ(bad.reason, DefragDrop::EcnMismatch);
  EXPECT_EQ(bad.discarded, 2U);
}

TEST(Defrag, LinkMetadataFromTheFirstFragmentInterfaceFromTheLast) {
  DefragTable t;
  const Bytes whole = datagram(16, 1992);
  const test::Mac head_mac{0x02, 0x00, 0xc6, 0x33, 0x64, 0xfe};
  const test::Mac other_mac{0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
  add(t, ether(frag(whole, 800, 800, true), other_mac, 3), kT0);
  add(t, ether(frag(whole, 0, 800, true), head_mac, 2, {{.vid = 100}}), kT0);
  const Frame last = ether(frag(whole, 1600, 400, false), other_mac, 3);
  const DefragResult r = add(t, last, kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(r.key.src_mac, head_mac);
  EXPECT_TRUE(r.key.has(key_flag::kMac | key_flag::kVlan));
  EXPECT_EQ(r.key.vlan_id, 100U);
  EXPECT_EQ(r.key.ifindex, 3U);
  // The frame keeps the last fragment's link header (no VLAN tag).
  EXPECT_EQ(r.key.l3_off, 14U);
  EXPECT_TRUE(std::equal(last.bytes.begin(), last.bytes.begin() + 14, r.frame));
  EXPECT_EQ(ip_of(r), whole);
}

TEST(Defrag, KeyIsSourceDestinationIdAndProtocol) {
  DefragTable t;
  const Bytes whole = datagram(17, 1992);
  add(t, ether(frag(whole, 0, 1000, true)), kT0);
  // Same addresses and id, another protocol: another datagram.
  Bytes tcp_part = frag(whole, 1000, 1000, false);
  tcp_part[9] = kProtoTcp;
  test::fix_ipv4_checksum(tcp_part);
  EXPECT_EQ(add(t, ether(tcp_part), kT0).status, DefragStatus::Held);
  // Another id.
  EXPECT_EQ(add(t, ether(frag(datagram(18, 1992), 1000, 1000, false)), kT0).status, DefragStatus::Held);
  EXPECT_EQ(t.datagrams(), 3U);
  // Another interface, same key: the same datagram.
  const DefragResult r = add(t, ether(frag(whole, 1000, 1000, false), test::kMacB, 9), kT0);
  EXPECT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(t.datagrams(), 2U);
}

// ---------------------------------------------------------------- time, capacity, memory

TEST(Defrag, IncompleteDatagramsExpireThirtySecondsAfterTheirFirstFragment) {
  DefragTable t;
  const Bytes whole = datagram(19, 1992);
  add(t, ether(frag(whole, 0, 800, true)), kT0);
  add(t, ether(frag(whole, 800, 800, true)), kT0 + 29 * kSecond);  // does not extend the timer
  EXPECT_EQ(t.expire(kT0 + 30 * kSecond - 1), 0U);
  EXPECT_EQ(t.datagrams(), 1U);
  const DefragResult late = add(t, ether(frag(whole, 1600, 400, false)), kT0 + 30 * kSecond);
  EXPECT_EQ(late.expired, 2U);
  EXPECT_EQ(late.status, DefragStatus::Held);  // a new datagram
  EXPECT_EQ(t.stats().dropped[static_cast<size_t>(DefragDrop::Timeout)], 2U);
  EXPECT_EQ(t.stats().failed[static_cast<size_t>(DefragDrop::Timeout)], 1U);
  // Time never goes backwards: an earlier timestamp is the latest one seen.
  EXPECT_EQ(t.expire(kT0), 0U);
  EXPECT_EQ(t.expire(kT0 + 60 * kSecond), 1U);
  EXPECT_EQ(t.datagrams(), 0U);
  EXPECT_EQ(t.memory(), 0U);
  expect_accounted(t);
}

TEST(Defrag, ExpiryFollowsArrivalOrder) {
  DefragTable t(DefragConfig{.timeout_ns = 10 * kSecond});
  for (uint16_t id = 0; id < 5; ++id) {
    add(t, ether(frag(datagram(id, 1992), 0, 800, true)), kT0 + id * kSecond);
  }
  EXPECT_EQ(t.expire(kT0 + 12 * kSecond), 3U);  // those of t0, t0+1, t0+2
  EXPECT_EQ(t.datagrams(), 2U);
  // The survivors still complete.
  const DefragResult r = add(t, ether(frag(datagram(4, 1992), 800, 1200, false)), kT0 + 13 * kSecond);
  EXPECT_EQ(r.status, DefragStatus::Complete);
}

TEST(Defrag, FullTableDropsNewDatagramsOnly) {
  DefragTable t(DefragConfig{.max_datagrams = 2});
  const Bytes a = datagram(20, 1992);
  const Bytes b = datagram(21, 1992);
  const Bytes c = datagram(22, 1992);
  add(t, ether(frag(a, 0, 1000, true)), kT0);
  add(t, ether(frag(b, 0, 1000, true)), kT0);
  const DefragResult full = add(t, ether(frag(c, 0, 1000, true)), kT0);
  EXPECT_EQ(full.status, DefragStatus::Dropped);
  EXPECT_EQ(full.reason, DefragDrop::TableFull);
  EXPECT_EQ(add(t, ether(frag(a, 1000, 1000, false)), kT0).status, DefragStatus::Complete);
  EXPECT_EQ(add(t, ether(frag(c, 0, 1000, true)), kT0).status, DefragStatus::Held);
  EXPECT_EQ(add(t, ether(frag(c, 1000, 1000, false)), kT0).status, DefragStatus::Complete);
  expect_accounted(t);
}

TEST(Defrag, AboveTheMemoryLimitEveryFragmentIsDropped) {
  // 512-byte blocks: a 1000-byte fragment holds 2 (1024 bytes).
  DefragTable t(DefragConfig{.memory_limit = 2048});
  const Bytes a = datagram(23, 2992);
  add(t, ether(frag(a, 0, 1000, true)), kT0);
  EXPECT_EQ(t.memory(), 1024U);
  add(t, ether(frag(a, 1000, 1000, true)), kT0);
  EXPECT_EQ(t.memory(), 2048U);  // at the limit, not above: one more goes in
  EXPECT_EQ(add(t, ether(frag(datagram(24, 1992), 0, 1000, true)), kT0).status, DefragStatus::Held);
  EXPECT_EQ(t.memory(), 3072U);
  // Above the limit: even the fragment that would complete `a` is dropped.
  const DefragResult d = add(t, ether(frag(a, 2000, 1000, false)), kT0);
  EXPECT_EQ(d.status, DefragStatus::Dropped);
  EXPECT_EQ(d.reason, DefragDrop::MemoryLimit);
  EXPECT_EQ(d.discarded, 0U);
  EXPECT_EQ(t.datagrams(), 2U);
  // Memory comes back when datagrams go.
  t.expire(kT0 + 30 * kSecond);
  EXPECT_EQ(t.memory(), 0U);
  EXPECT_EQ(add(t, ether(frag(a, 2000, 1000, false)), kT0 + 31 * kSecond).status, DefragStatus::Held);
  expect_accounted(t);
}

TEST(Defrag, ZeroMemoryLimitDropsEveryFragment) {
  DefragTable t(DefragConfig{.memory_limit = 0});
  const DefragResult d = add(t, ether(frag(datagram(25, 1992), 0, 1000, true)), kT0);
  EXPECT_EQ(d.reason, DefragDrop::MemoryLimit);
  EXPECT_EQ(t.datagrams(), 0U);
}

TEST(Defrag, OutputBuffersAreUsedInTurn) {
  DefragTable t(DefragConfig{.output_slots = 2});
  std::vector<DefragResult> done;
  for (uint16_t id = 0; id < 3; ++id) {
    const Bytes w = datagram(id, 992);
    add(t, ether(frag(w, 0, 500, true)), kT0);
    done.push_back(add(t, ether(frag(w, 496, 504, false)), kT0));
  }
  // (500 with MF is trimmed to 496, so the second fragment starts there.)
  ASSERT_EQ(done[0].status, DefragStatus::Complete);
  EXPECT_EQ(done[0].output_slot, 0U);
  EXPECT_EQ(done[1].output_slot, 1U);
  EXPECT_EQ(done[2].output_slot, 0U);
  EXPECT_EQ(done[2].frame, done[0].frame);  // reused
  EXPECT_NE(done[1].frame, done[0].frame);
  EXPECT_EQ(ip_of(done[1]), datagram(1, 992));
  EXPECT_EQ(ip_of(done[2]), datagram(2, 992));
}

TEST(Defrag, ConfigIsChecked) {
  EXPECT_THROW(DefragTable(DefragConfig{.max_datagrams = 0}), std::invalid_argument);
  EXPECT_THROW(DefragTable(DefragConfig{.output_slots = 0}), std::invalid_argument);
}

// ---------------------------------------------------------------- bad input

TEST(Defrag, FramesThatAreNotFragmentsOrDoNotFitTheirKeyAreRefused) {
  DefragTable t;
  const Frame whole = ether(datagram(26, 100));
  EXPECT_EQ(add(t, whole, kT0).reason, DefragDrop::BadFrame);
  const Frame f = ether(frag(datagram(27, 1992), 0, 800, true));
  EXPECT_EQ(t.add(f.key, f.bytes.data(), 100, kT0).reason, DefragDrop::BadFrame);  // frame shorter than l3_len
  EXPECT_EQ(t.add(f.key, nullptr, 0, kT0).reason, DefragDrop::BadFrame);
  EXPECT_EQ(t.datagrams(), 0U);
  expect_accounted(t);
}

TEST(Defrag, FirstFragmentTooShortForTheTcpHeaderStillReassembles) {
  // The parser keys such a first fragment with TruncatedL4 (L3 fields
  // valid); the table needs only those, and the datagram is whole.
  DefragTable t;
  const Bytes whole = test::ipv4(
      {.src = ip4(203, 0, 113, 5), .dst = ip4(198, 51, 100, 1), .proto = kProtoTcp, .id = 28},
      test::tcp({.sport = 1, .dport = 10000, .flags = tcp_flag::kAck, .payload = test::pattern(200)}));
  const Frame a = ether(frag(whole, 0, 16, true));
  EXPECT_EQ(a.status, ParseStatus::TruncatedL4);
  add(t, a, kT0);
  const DefragResult r = add(t, ether(frag(whole, 16, 204, false)), kT0);
  ASSERT_EQ(r.status, DefragStatus::Complete);
  EXPECT_EQ(r.key.dst_port, 10000U);
  EXPECT_EQ(ip_of(r), whole);
}

TEST(Defrag, ReassembledDatagramTheParserRejectsIsDropped) {
  DefragTable t;
  // A TCP header with data offset 4 (below the minimum of 5).
  const Bytes whole = test::ipv4(
      {.src = ip4(203, 0, 113, 5), .dst = ip4(198, 51, 100, 1), .proto = kProtoTcp, .id = 29},
      test::tcp({.sport = 1, .dport = 2, .payload = test::pattern(100), .data_offset = 4}));
  const Frame a = ether(frag(whole, 0, 64, true));
  EXPECT_EQ(a.status, ParseStatus::BadTcpDataOffset);
  add(t, a, kT0);
  const DefragResult r = add(t, ether(frag(whole, 64, 56, false)), kT0);
  EXPECT_EQ(r.status, DefragStatus::Dropped);
  EXPECT_EQ(r.reason, DefragDrop::BadDatagram);
  EXPECT_EQ(r.discarded, 1U);
  expect_accounted(t);
}

TEST(Defrag, NamesAndDescriptions) {
  EXPECT_STREQ(defrag_drop_name(DefragDrop::Overlap), "overlap");
  EXPECT_STREQ(defrag_drop_name(DefragDrop::MemoryLimit), "memory_limit");
  EXPECT_STREQ(defrag_drop_name(static_cast<DefragDrop>(200)), "invalid");
  for (size_t i = 0; i < kDefragDropCount; ++i) {
    EXPECT_STRNE(defrag_drop_description(static_cast<DefragDrop>(i)), "invalid");
  }
}

// ---------------------------------------------------------------- against a plain reference

// The rules of defrag.h written the obvious way (vectors, no arena), for
// one datagram: what each fragment does, and the bytes once complete.
class Reference {
 public:
  enum Outcome { kHeld, kComplete, kDuplicate, kOverlap, kBadLength };

  Outcome add(uint32_t off, uint32_t n, bool mf, const uint8_t* payload) {
    uint32_t end = off + n;
    if (!mf) {
      if (end < len_ || (last_in_ && end != len_)) return reset(kBadLength);
      last_in_ = true;
      len_ = end;
    } else {
      end &= ~7U;
      if (end > len_) {
        if (last_in_) return reset(kBadLength);
        len_ = end;
      }
    }
    if (end == off) return reset(kBadLength);
    if (!runs_.empty() && runs_.back().second < end) {
      if (off < runs_.back().second) return reset(kOverlap);
      if (off == runs_.back().second) {
        runs_.back().second = end;
      } else {
        runs_.emplace_back(off, end);
      }
    } else {
      size_t at = 0;
      while (at < runs_.size() && runs_[at].second <= off) ++at;
      if (at < runs_.size() && runs_[at].first < end) {
        if (off >= runs_[at].first && end <= runs_[at].second) return kDuplicate;
        return reset(kOverlap);
      }
      runs_.insert(runs_.begin() + static_cast<std::ptrdiff_t>(at), {off, end});
    }
    if (bytes_.size() < end) bytes_.resize(end);
    std::copy(payload, payload + (end - off), bytes_.begin() + off);
    meat_ += end - off;
    first_in_ = first_in_ || off == 0;
    if (first_in_ && last_in_ && meat_ == len_) {
      done_ = Bytes(bytes_.begin(), bytes_.begin() + len_);
      reset(kComplete);
      return kComplete;
    }
    return kHeld;
  }
  const Bytes& done() const { return done_; }

 private:
  Outcome reset(Outcome o) {
    runs_.clear();
    bytes_.clear();
    len_ = meat_ = 0;
    first_in_ = last_in_ = false;
    return o;
  }
  std::vector<std::pair<uint32_t, uint32_t>> runs_;
  Bytes bytes_;
  Bytes done_;
  uint32_t len_ = 0;
  uint32_t meat_ = 0;
  bool first_in_ = false;
  bool last_in_ = false;
};

TEST(Defrag, AgreesWithTheReferenceOnRandomFragmentSequences) {
  std::mt19937 gen(0x64656672);
  const auto below = [&gen](uint32_t n) { return static_cast<uint32_t>(gen() % n); };
  uint64_t completed = 0;
  uint64_t outcomes[5] = {};
  for (int trial = 0; trial < 400; ++trial) {
    DefragTable t(DefragConfig{.output_slots = 1});
    Reference ref;
    const uint32_t payload = 8 * (1 + below(700)) + below(8);  // up to ~5.6 kB, 1-8 fragments mostly
    const Bytes whole = datagram(static_cast<uint16_t>(trial), payload - 8);
    // Mostly a real fragmentation in a random order, plus random extra
    // pieces (duplicates, overlaps, odd lengths).
    std::vector<std::pair<uint32_t, uint32_t>> pieces;
    const uint32_t step = 8 * (1 + below(200));
    for (uint32_t off = 0; off < payload; off += step) pieces.emplace_back(off, std::min(step, payload - off));
    for (uint32_t extra = below(4); extra != 0; --extra) {
      const uint32_t off = 8 * below(payload / 8 + 1);
      pieces.emplace_back(off, 1 + below(payload - std::min(off, payload - 1)));
    }
    // The whole payload in one piece would not be a fragment.
    std::erase(pieces, std::pair<uint32_t, uint32_t>{0, payload});
    std::shuffle(pieces.begin(), pieces.end(), gen);
    SCOPED_TRACE("trial " + std::to_string(trial));
    for (const auto& [off, n] : pieces) {
      const bool mf = off + n < payload;
      const Bytes f = frag(whole, off, n, mf);
      const Frame fr = ether(f);
      ASSERT_TRUE(status_has_l3(fr.status));
      const DefragResult r = t.add(fr.key, fr.bytes.data(), static_cast<uint32_t>(fr.bytes.size()), kT0);
      const Reference::Outcome o = ref.add(off, n, mf, f.data() + 20);
      ++outcomes[o];
      switch (o) {
        case Reference::kHeld:
          ASSERT_EQ(r.status, DefragStatus::Held) << off << "+" << n;
          break;
        case Reference::kComplete:
          ASSERT_EQ(r.status, DefragStatus::Complete) << off << "+" << n;
          EXPECT_EQ(Bytes(r.frame + 14 + 20, r.frame + r.len), ref.done());
          ++completed;
          break;
        case Reference::kDuplicate:
          ASSERT_EQ(r.reason, DefragDrop::Duplicate) << off << "+" << n;
          break;
        case Reference::kOverlap:
          ASSERT_EQ(r.reason, DefragDrop::Overlap) << off << "+" << n;
          break;
        case Reference::kBadLength:
          ASSERT_EQ(r.reason, DefragDrop::BadLength) << off << "+" << n;
          break;
      }
    }
    expect_accounted(t);
  }
  // The sequences exercise every outcome.
  EXPECT_GT(completed, 50U);
  for (uint64_t n : outcomes) EXPECT_GT(n, 10U);
}

}  // namespace
}  // namespace nfb
