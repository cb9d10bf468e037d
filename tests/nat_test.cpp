// Tests of NAT (netfilter/nat.h): which hook rewrites what, the bindings
// (DNAT of a published port, MASQUERADE of container egress, a clash moving
// the source port, the reuse of a source's mapping, SNAT/DNAT ranges,
// REDIRECT, null bindings, ICMP ids), the rewriting of frames in both
// directions (bytes compared with frames built from scratch), ICMP errors
// with their embedded header, fragments, and the incremental checksums
// against full recomputation on random frames.
//
// Facts measured on the kernel (Linux 6.18, tests/nat_kernel_test.cpp, which
// replays the same kinds of flows through a real Docker-like host and
// compares the bytes it sends with nat_apply's) are marked "kernel:".
#include "netfilter/nat.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "netfilter/conntrack.h"
#include "netfilter/host.h"
#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "tests/support/frame_builder.h"

namespace nfb {
namespace {

using test::Bytes;
using test::ip4;

// The default Docker host's interface ids (default_docker_host()).
constexpr uint16_t kLo = 0;
constexpr uint16_t kEth0 = 1;
constexpr uint16_t kDocker0 = 2;
constexpr uint16_t kBridge2 = 3;

constexpr uint32_t kHostIp = ip4(198, 51, 100, 1);
constexpr uint32_t kGateway = ip4(198, 51, 100, 254);
constexpr uint32_t kRedis = ip4(172, 17, 0, 2);
constexpr uint32_t kWeb = ip4(172, 17, 0, 3);
constexpr uint32_t kDns = ip4(172, 18, 0, 2);
constexpr uint32_t kClient = ip4(203, 0, 113, 10);
constexpr uint32_t kServer = ip4(93, 184, 216, 34);

constexpr uint64_t kSecond = 1'000'000'000ULL;

// ---------------------------------------------------------------- packets

Bytes tcp_syn(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint32_t seq = 1000) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoTcp},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .flags = tcp_flag::kSyn,
                               .options = test::tcp_syn_options()}));
}
Bytes tcp_synack(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoTcp},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .ack = ack,
                               .flags = tcp_flag::kSyn | tcp_flag::kAck,
                               .options = test::tcp_syn_options()}));
}
Bytes udp_packet(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, Bytes payload = test::pattern(13),
                 test::L4Checksum csum = test::L4Checksum::Fill) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoUdp, .l4_checksum = csum},
                    test::udp({.sport = sp, .dport = dp, .payload = std::move(payload)}));
}
Bytes ping(uint32_t src, uint32_t dst, uint16_t id, bool reply = false) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoIcmp}, test::icmp_echo(id, 1, reply));
}
Bytes icmp_error_about(uint32_t src, uint32_t dst, uint8_t type, uint8_t code, const Bytes& quoted,
                       std::size_t l4_bytes) {
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoIcmp},
                    test::icmp_error(type, code, quoted, l4_bytes));
}

// A frame in flight: its bytes and the key parse_frame() gives them.
struct Packet {
  Bytes frame;
  PacketKey key;

  Packet(const Bytes& ip_packet, uint16_t ifindex) : frame(test::ethernet({}, ip_packet)) {
    const ParseStatus s = parse_frame(frame.data(), static_cast<uint32_t>(frame.size()),
                                      LinkType::Ethernet, ifindex, key);
    EXPECT_EQ(s, ParseStatus::Ok) << parse_status_name(s);
  }
  uint32_t len() const { return static_cast<uint32_t>(frame.size()); }
  // The IP packet as it would leave (no link padding).
  Bytes ip() const {
    return Bytes(frame.begin() + key.l3_off, frame.begin() + key.l3_off + key.l3_len);
  }
  // The key parse_frame() gives the bytes now: a rewritten key must equal it.
  PacketKey reparsed() const {
    PacketKey k;
    EXPECT_EQ(parse_frame(frame.data(), len(), LinkType::Ethernet, key.ifindex, k), ParseStatus::Ok);
    return k;
  }
};

// The first packet of a connection through a forwarding host: conntrack,
// the DNAT hook (a target or a null binding), the SNAT hook, confirm. Later
// packets: conntrack and the two rewrites. Like the kernel's PREROUTING ->
// FORWARD -> POSTROUTING, without routing (the test says where it goes).
class Host {
 public:
  explicit Host(uint64_t seed = NatTable::kDefaultSeed) : ct_(config()), nat_(ct_, seed) {}

  struct Hop {
    uint32_t entry = kNoEntry;
    CtDir dir = CtDir::Original;
    uint8_t state = 0;
    bool dnat_ok = true;
    bool snat_ok = true;
    bool confirmed = true;
  };

  // `dnat`/`snat`: the target the nat chain walk of that hook ends in, or
  // null for none (a null binding). Only consulted on a connection's first
  // packet, as in the kernel.
  Hop forward(Packet& p, uint16_t out_iface, const Target* dnat = nullptr,
              const Target* snat = nullptr, uint32_t next_hop = kGateway) {
    now_ += kSecond / 100;
    CtResult r = ct_.process(p.key, p.frame.data(), p.len(), now_, true);
    Hop hop;
    hop.entry = r.entry;
    hop.dir = r.dir;
    hop.state = r.state;
    if (!r.has_entry()) return hop;
    NatContext ctx{.hook = Hook::Prerouting, .in_iface = p.key.ifindex, .out_iface = out_iface,
                   .next_hop = next_hop, .host = &host_, .nat = &nat_};
    CtEntry* e = ct_.entry(r.entry);
    if (!nat_initialized(*e, NatManip::Dst) && r.state != kCtRelated)
      hop.dnat_ok = dnat != nullptr ? nat_bind(ct_, r.entry, NatManip::Dst, *dnat, ctx)
                                    : nat_null_binding(ct_, r.entry, NatManip::Dst, ctx);
    if (hop.dnat_ok) hop.dnat_ok = nat_apply(*e, r.dir, NatManip::Dst, p.key, p.frame.data(), p.len());
    ctx.hook = Hook::Postrouting;
    if (hop.dnat_ok) {
      if (!nat_initialized(*e, NatManip::Src) && r.state != kCtRelated)
        hop.snat_ok = snat != nullptr ? nat_bind(ct_, r.entry, NatManip::Src, *snat, ctx)
                                      : nat_null_binding(ct_, r.entry, NatManip::Src, ctx);
      if (hop.snat_ok) hop.snat_ok = nat_apply(*e, r.dir, NatManip::Src, p.key, p.frame.data(), p.len());
    }
    if (hop.dnat_ok && hop.snat_ok) {
      hop.confirmed = ct_.confirm(r, now_);
    } else {
      ct_.discard(r);
      hop.confirmed = false;
    }
    return hop;
  }

  ConntrackTable& ct() { return ct_; }
  NatTable& nat() { return nat_; }
  const HostModel& host() const { return host_; }
  const CtEntry& entry(uint32_t handle) {
    const CtEntry* e = ct_.entry(handle);
    EXPECT_NE(e, nullptr);
    return *e;
  }

 private:
  static CtConfig config() {
    CtConfig c;
    c.max_entries = 4096;
    return c;
  }
  HostModel host_ = default_docker_host();
  ConntrackTable ct_;
  NatTable nat_;
  uint64_t now_ = kSecond;
};

Target dnat_to(uint32_t addr, uint16_t port_lo = 0, uint16_t port_hi = 0) {
  DnatTarget t;
  t.range.has_addr = true;
  t.range.addr_lo = t.range.addr_hi = addr;
  if (port_lo != 0) {
    t.range.has_ports = true;
    t.range.port_lo = port_lo;
    t.range.port_hi = port_hi != 0 ? port_hi : port_lo;
  }
  return t;
}
Target snat_to(uint32_t lo, uint32_t hi) {
  SnatTarget t;
  t.range.has_addr = true;
  t.range.addr_lo = lo;
  t.range.addr_hi = hi;
  return t;
}
const Target kMasquerade = MasqueradeTarget{};

bool ip_header_ok(const Bytes& ip) { return checksum_verifies(ip.data(), static_cast<std::size_t>(ip[0] & 0x0f) * 4); }

// The first random number of a NatTable with this seed: the offset the
// model's first port search starts from.
uint16_t first_offset(uint64_t seed) {
  ConntrackTable ct(CtConfig{.max_entries = 1});
  NatTable nat(ct, seed);
  return nat.random_u16();
}

// ---------------------------------------------------------------- hooks

TEST(NatHooks, ManipOfHookAndRewriteTable) {
  EXPECT_EQ(nat_manip_of(Hook::Prerouting), NatManip::Dst);
  EXPECT_EQ(nat_manip_of(Hook::Output), NatManip::Dst);
  EXPECT_EQ(nat_manip_of(Hook::Postrouting), NatManip::Src);
  EXPECT_EQ(nat_manip_of(Hook::Input), NatManip::Src);

  CtEntry dnat;
  dnat.status = ct_status::kDstNat;
  CtEntry snat;
  snat.status = ct_status::kSrcNat;
  CtEntry none;
  // DNAT: destination at PREROUTING going out, source at POSTROUTING coming back.
  EXPECT_TRUE(nat_rewrites(dnat, CtDir::Original, NatManip::Dst));
  EXPECT_FALSE(nat_rewrites(dnat, CtDir::Original, NatManip::Src));
  EXPECT_FALSE(nat_rewrites(dnat, CtDir::Reply, NatManip::Dst));
  EXPECT_TRUE(nat_rewrites(dnat, CtDir::Reply, NatManip::Src));
  // SNAT: source at POSTROUTING going out, destination at PREROUTING coming back.
  EXPECT_TRUE(nat_rewrites(snat, CtDir::Original, NatManip::Src));
  EXPECT_FALSE(nat_rewrites(snat, CtDir::Original, NatManip::Dst));
  EXPECT_TRUE(nat_rewrites(snat, CtDir::Reply, NatManip::Dst));
  EXPECT_FALSE(nat_rewrites(snat, CtDir::Reply, NatManip::Src));
  for (CtDir d : {CtDir::Original, CtDir::Reply})
    for (NatManip m : {NatManip::Src, NatManip::Dst}) EXPECT_FALSE(nat_rewrites(none, d, m));
}

// ---------------------------------------------------------------- checksums

TEST(NatChecksum, IncrementalEqualsRecomputationOnRandomBlocks) {
  std::mt19937 gen(7);
  auto rng = [&gen] { return static_cast<uint32_t>(gen()); };
  auto byte = [&rng] { return static_cast<uint8_t>(rng() & 0xff); };
  int zero_results = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    Bytes b(2 + 4 + 2 + (rng() % 24));
    for (auto& x : b) x = byte();
    // Layout: checksum at 0, a 32-bit field at 2, a 16-bit field at 6.
    test::set16(b, 0, 0);
    test::set16(b, 0, test::ref_checksum(b, 0, b.size()));
    const uint16_t c0 = test::get16(b, 0);
    const uint32_t old32 = load_be32(&b[2]);
    const uint16_t old16 = test::get16(b, 6);
    const uint32_t new32 = rng();
    const auto new16 = static_cast<uint16_t>(rng());
    store_be32(&b[2], new32);
    test::set16(b, 6, new16);
    const uint16_t inc = checksum_replace16(checksum_replace32(c0, old32, new32), old16, new16);
    test::set16(b, 0, 0);
    const uint16_t full = test::ref_checksum(b, 0, b.size());
    ASSERT_EQ(inc, full) << "iteration " << iter;
    if (full == 0) ++zero_results;
  }
  EXPECT_GT(zero_results, 0) << "the 0x0000 representation was never exercised";
}

TEST(NatChecksum, KernelArithmeticCornerCases) {
  // csum_replace4(0xffff, 0xffffffff -> 0): ~unfold(0xffff) = 0xffff0000,
  // plus ~from = 0, plus to = 0: folds to 0xffff, stored as 0x0000. A sum
  // taken without the kernel's high half would give 0xffff.
  EXPECT_EQ(checksum_replace32(0xffff, 0xffffffffU, 0), 0x0000);
  EXPECT_EQ(checksum_replace16(0xffff, 0xffff, 0), 0x0000);
  // Nothing changes: the checksum stays (a verifying checksum is never 0xffff
  // unless the data is all zero).
  EXPECT_EQ(checksum_replace32(0x1234, 0xc0a80001U, 0xc0a80001U), 0x1234);
  // A change and its undo give the checksum back.
  const uint16_t c = checksum_replace32(0xbeef, 0x0a000001U, 0xac110002U);
  EXPECT_EQ(checksum_replace32(c, 0xac110002U, 0x0a000001U), 0xbeef);
}

// ---------------------------------------------------------------- DNAT

TEST(NatDnat, PublishedPortAndItsReply) {
  Host h;
  const Target dnat = dnat_to(kRedis, 6379);
  // Outside client -> 198.51.100.1:10000 (docker run -p 10000:6379).
  Packet syn(tcp_syn(kClient, kHostIp, 50000, 10000), kEth0);
  const Host::Hop first = h.forward(syn, kDocker0, &dnat);
  ASSERT_NE(first.entry, kNoEntry);
  EXPECT_EQ(first.state, kCtNew);
  EXPECT_TRUE(first.confirmed);
  EXPECT_EQ(syn.ip(), tcp_syn(kClient, kRedis, 50000, 6379));
  EXPECT_EQ(syn.key, syn.reparsed());
  EXPECT_EQ(syn.key.dst_ip, kRedis);
  EXPECT_EQ(syn.key.dst_port, 6379);

  const CtEntry& e = h.entry(first.entry);
  EXPECT_TRUE(e.has(ct_status::kDstNat | ct_status::kDstNatDone | ct_status::kSrcNatDone));
  EXPECT_FALSE(e.has(ct_status::kSrcNat));
  EXPECT_EQ(e.tuple[1], (Tuple{kRedis, kClient, 6379, 50000, 0, kProtoTcp}));

  // Redis answers from 172.17.0.2:6379: the source is restored at POSTROUTING.
  Packet synack(tcp_synack(kRedis, kClient, 6379, 50000, 7000, 1001), kDocker0);
  const Host::Hop reply = h.forward(synack, kEth0);
  EXPECT_EQ(reply.entry, first.entry);
  EXPECT_EQ(reply.dir, CtDir::Reply);
  EXPECT_EQ(reply.state, kCtEstablished);
  EXPECT_EQ(synack.ip(), tcp_synack(kHostIp, kClient, 10000, 50000, 7000, 1001));
  EXPECT_EQ(synack.key, synack.reparsed());

  CtResult probe;
  probe.entry = first.entry;
  probe.state = kCtEstablished;
  EXPECT_EQ(h.ct().state_bits(probe), kCtEstablished | kCtDnat);
  EXPECT_EQ(h.nat().counters().bound_dst, 1U);
  EXPECT_EQ(h.nat().counters().unchanged, 1U);  // the POSTROUTING null binding
}

TEST(NatDnat, PortRangeSearchedFromItsStart) {
  // --to-destination 172.17.0.2:6000-6010 for ports 10001 and 10002. A
  // destination search starts at the range's first port (offset 0), so
  // the second connection from the same client port gets 6001 (kernel: the
  // same).
  Host h;
  const Target dnat = dnat_to(kRedis, 6000, 6010);
  Packet a(tcp_syn(kClient, kHostIp, 5000, 10001), kEth0);
  h.forward(a, kDocker0, &dnat);
  EXPECT_EQ(a.key.dst_port, 6000);
  Packet b(tcp_syn(kClient, kHostIp, 5000, 10002), kEth0);
  h.forward(b, kDocker0, &dnat);
  EXPECT_EQ(b.key.dst_port, 6001);
  EXPECT_EQ(b.ip(), tcp_syn(kClient, kRedis, 5000, 6001));
  // A port inside the range is kept when free.
  Packet c(tcp_syn(kClient, kHostIp, 5001, 6005), kEth0);
  h.forward(c, kDocker0, &dnat);
  EXPECT_EQ(c.key.dst_port, 6005);
}

TEST(NatDnat, PortShiftWithBase) {
  // --to-destination 172.17.0.2:2000-2999/1000: port 1005 -> 2005.
  Host h;
  DnatTarget t;
  t.range = {.has_addr = true, .addr_lo = kRedis, .addr_hi = kRedis, .has_ports = true,
             .port_lo = 2000, .port_hi = 2999, .has_base = true, .base = 1000};
  const Target dnat = t;
  Packet a(udp_packet(kClient, kHostIp, 40000, 1005), kEth0);
  h.forward(a, kDocker0, &dnat);
  EXPECT_EQ(a.key.dst_port, 2005);
  EXPECT_EQ(a.ip(), udp_packet(kClient, kRedis, 40000, 2005));
}

TEST(NatDnat, AddressRangeHashesTheAddresses) {
  Host h;
  DnatTarget t;
  t.range = {.has_addr = true, .addr_lo = kRedis, .addr_hi = kWeb};
  const Target dnat = t;
  for (uint32_t i = 0; i < 40; ++i) {
    const uint32_t client = ip4(203, 0, 113, static_cast<uint8_t>(10 + i));
    Packet p(udp_packet(client, kHostIp, 40000, 7000), kEth0);
    h.forward(p, kDocker0, &dnat);
    Tuple cur{client, kHostIp, 40000, 7000, 0, kProtoUdp};
    EXPECT_EQ(p.key.dst_ip, nat_select_address(cur, kRedis, kWeb, false)) << i;
    EXPECT_TRUE(p.key.dst_ip == kRedis || p.key.dst_ip == kWeb);
  }
}

// ---------------------------------------------------------------- MASQUERADE

TEST(NatMasquerade, ContainerEgressAndItsReply) {
  Host h;
  Packet syn(tcp_syn(kRedis, kServer, 40000, 80), kDocker0);
  const Host::Hop first = h.forward(syn, kEth0, nullptr, &kMasquerade);
  ASSERT_NE(first.entry, kNoEntry);
  EXPECT_TRUE(first.confirmed);
  // The port is kept: the reply tuple is free.
  EXPECT_EQ(syn.ip(), tcp_syn(kHostIp, kServer, 40000, 80));
  EXPECT_EQ(syn.key, syn.reparsed());
  const CtEntry& e = h.entry(first.entry);
  EXPECT_TRUE(e.has(ct_status::kSrcNat));
  EXPECT_EQ(h.nat().masquerade_iface(first.entry, e), kEth0);

  Packet synack(tcp_synack(kServer, kHostIp, 80, 40000, 9000, 1001), kEth0);
  const Host::Hop reply = h.forward(synack, kDocker0);
  EXPECT_EQ(reply.dir, CtDir::Reply);
  EXPECT_EQ(synack.ip(), tcp_synack(kServer, kRedis, 80, 40000, 9000, 1001));
  EXPECT_EQ(synack.key, synack.reparsed());

  // A later ORIGINAL packet leaving by another interface: the kernel drops it.
  EXPECT_TRUE(h.nat().masquerade_oif_changed(first.entry, e, CtDir::Original, Hook::Postrouting, kBridge2));
  EXPECT_FALSE(h.nat().masquerade_oif_changed(first.entry, e, CtDir::Original, Hook::Postrouting, kEth0));
  EXPECT_FALSE(h.nat().masquerade_oif_changed(first.entry, e, CtDir::Reply, Hook::Postrouting, kBridge2));
}

TEST(NatMasquerade, ClashMovesTheSourcePortFromARandomOffset) {
  // Two containers use source port 40000 towards the same server. The second
  // one's reply tuple (server:80 -> 198.51.100.1:40000) is taken, so its
  // port is searched in 1024..65535 from a random offset (kernel: a
  // different port on every run, get_random_u16()); the model's offset is
  // the first number of its seeded generator.
  constexpr uint64_t kSeed = 12345;
  Host h(kSeed);
  Packet a(tcp_syn(kRedis, kServer, 40000, 80), kDocker0);
  h.forward(a, kEth0, nullptr, &kMasquerade);
  EXPECT_EQ(a.key.src_port, 40000);
  Packet b(tcp_syn(kWeb, kServer, 40000, 80), kDocker0);
  const Host::Hop hop = h.forward(b, kEth0, nullptr, &kMasquerade);
  EXPECT_TRUE(hop.confirmed);
  const auto expected = static_cast<uint16_t>(1024 + first_offset(kSeed) % 64512);
  EXPECT_EQ(b.key.src_port, expected);
  EXPECT_EQ(b.ip(), tcp_syn(kHostIp, kServer, expected, 80));
  EXPECT_EQ(h.nat().counters().searched, 1U);

  // The reply to the moved port reaches the second container.
  Packet back(tcp_synack(kServer, kHostIp, 80, expected, 1, 1001), kEth0);
  h.forward(back, kDocker0);
  EXPECT_EQ(back.ip(), tcp_synack(kServer, kWeb, 80, 40000, 1, 1001));
}

TEST(NatMasquerade, SearchTriesConsecutivePorts) {
  // The candidate after a taken one is the next port: occupy the port the
  // search starts with, and the connection gets the one after it.
  constexpr uint64_t kSeed = 99;
  const auto start = static_cast<uint16_t>(1024 + first_offset(kSeed) % 64512);
  Host h(kSeed);
  // A host-local connection 198.51.100.1:start -> server:80 takes the tuple.
  Packet own(tcp_syn(kHostIp, kServer, start, 80), kLo);
  h.forward(own, kEth0);
  Packet a(tcp_syn(kRedis, kServer, 40000, 80), kDocker0);
  h.forward(a, kEth0, nullptr, &kMasquerade);
  Packet b(tcp_syn(kWeb, kServer, 40000, 80), kDocker0);
  h.forward(b, kEth0, nullptr, &kMasquerade);
  const auto next = static_cast<uint16_t>(1024 + static_cast<uint16_t>(first_offset(kSeed) + 1) % 64512);
  EXPECT_EQ(b.key.src_port, next);
}

TEST(NatMasquerade, PortClasses) {
  // A privileged source port moves within 1..511, 512..1023 within
  // 600..1023 (nf_nat_l4proto_unique_tuple's "credential passing" classes).
  for (uint16_t port : {uint16_t{80}, uint16_t{700}}) {
    Host h(port);
    Packet a(udp_packet(kRedis, kServer, port, 53), kDocker0);
    h.forward(a, kEth0, nullptr, &kMasquerade);
    Packet b(udp_packet(kWeb, kServer, port, 53), kDocker0);
    h.forward(b, kEth0, nullptr, &kMasquerade);
    const uint16_t off = first_offset(port);
    if (port < 512) {
      EXPECT_EQ(b.key.src_port, 1 + off % 511);
    } else {
      EXPECT_EQ(b.key.src_port, 600 + off % 424);
    }
    EXPECT_NE(b.key.src_port, port);
  }
}

TEST(NatMasquerade, SourceKeepsItsMappingAcrossConnections) {
  // find_appropriate_src: once 172.17.0.3:40000 was mapped to port P, its
  // next connection from port 40000 reuses P, even towards a server where
  // 40000 would be free (kernel: the same).
  Host h(5);
  Packet a(udp_packet(kRedis, kServer, 40000, 53), kDocker0);
  h.forward(a, kEth0, nullptr, &kMasquerade);
  Packet b(udp_packet(kWeb, kServer, 40000, 53), kDocker0);
  h.forward(b, kEth0, nullptr, &kMasquerade);
  const uint16_t mapped = b.key.src_port;
  ASSERT_NE(mapped, 40000);
  Packet c(udp_packet(kWeb, ip4(1, 1, 1, 1), 40000, 53), kDocker0);
  h.forward(c, kEth0, nullptr, &kMasquerade);
  EXPECT_EQ(c.key.src_port, mapped);
  EXPECT_EQ(h.nat().counters().source_reused, 1U);
  // Redis's own port is its own: unchanged.
  Packet d(udp_packet(kRedis, ip4(1, 1, 1, 1), 40000, 53), kDocker0);
  h.forward(d, kEth0, nullptr, &kMasquerade);
  EXPECT_EQ(d.key.src_port, 40000);
}

TEST(NatMasquerade, SourceZeroAndNoAddress) {
  Host h;
  // Source 0.0.0.0: the kernel leaves it to a null binding.
  Packet zero(udp_packet(0, kServer, 68, 67), kDocker0);
  const Host::Hop hop = h.forward(zero, kEth0, nullptr, &kMasquerade);
  EXPECT_TRUE(hop.snat_ok);
  EXPECT_EQ(zero.key.src_ip, 0U);
  EXPECT_FALSE(h.entry(hop.entry).has(ct_status::kSrcNat));

  // An out interface (and host) with no address: dropped.
  ConntrackTable ct(CtConfig{.max_entries = 16});
  NatTable nat(ct);
  HostSpec spec;
  Interface bare;
  bare.name = "bare0";
  spec.interfaces.push_back(bare);
  const HostModel empty = HostModel::build(spec, "test");
  Packet p(udp_packet(kRedis, kServer, 1000, 53), kDocker0);
  CtResult r = ct.process(p.key, p.frame.data(), p.len(), kSecond, true);
  ASSERT_TRUE(r.has_entry());
  const NatContext ctx{.hook = Hook::Postrouting, .out_iface = 0, .host = &empty, .nat = &nat};
  EXPECT_FALSE(nat_bind(ct, r.entry, NatManip::Src, kMasquerade, ctx));
  EXPECT_EQ(nat.counters().no_address, 1U);
  ct.discard(r);
}

// ---------------------------------------------------------------- SNAT

TEST(NatSnat, RangeAddressFromTheHashAndKeptPerSource) {
  const uint32_t lo = ip4(198, 51, 100, 10);
  const uint32_t hi = ip4(198, 51, 100, 20);
  const Target snat = snat_to(lo, hi);
  Host h;
  for (uint32_t i = 0; i < 30; ++i) {
    const uint32_t dst = ip4(93, 184, 216, static_cast<uint8_t>(i + 1));
    Packet p(udp_packet(kDns, dst, static_cast<uint16_t>(30000 + i), 53), kBridge2);
    h.forward(p, kEth0, nullptr, &snat);
    const Tuple cur{kDns, dst, static_cast<uint16_t>(30000 + i), 53, 0, kProtoUdp};
    EXPECT_EQ(p.key.src_ip, nat_select_address(cur, lo, hi, false)) << i;
    EXPECT_GE(p.key.src_ip, lo);
    EXPECT_LE(p.key.src_ip, hi);
    EXPECT_TRUE(ip_header_ok(p.ip()));
  }
  // The same source address and port towards another server keeps the
  // first connection's address (bysource), whatever the hash would say.
  Packet first(udp_packet(kDns, ip4(8, 8, 8, 8), 33333, 53), kBridge2);
  h.forward(first, kEth0, nullptr, &snat);
  for (uint8_t d = 1; d < 20; ++d) {
    Packet again(udp_packet(kDns, ip4(9, 9, 9, d), 33333, 53), kBridge2);
    h.forward(again, kEth0, nullptr, &snat);
    EXPECT_EQ(again.key.src_ip, first.key.src_ip);
  }
}

TEST(NatSnat, AddressSelectionMatchesTheKernel) {
  // kernel: SNAT --to-source 198.51.100.10-198.51.100.20 (and --persistent)
  // for UDP from 172.18.0.2 (a new source port each) to these servers: the
  // source address the kernel chose (tests/nat_kernel_test.cpp,
  // SnatRangeAddresses, prints them). Persistent leaves the destination out
  // of the hash: one address for every server.
  struct Case {
    uint32_t dst;
    bool persistent;
    uint32_t chosen;
  };
  const Case cases[] = {
      {ip4(93, 184, 216, 34), false, ip4(198, 51, 100, 17)},
      {ip4(8, 8, 8, 8), false, ip4(198, 51, 100, 14)},
      {ip4(1, 1, 1, 1), false, ip4(198, 51, 100, 10)},
      {ip4(203, 0, 113, 7), false, ip4(198, 51, 100, 16)},
      {ip4(93, 184, 216, 34), true, ip4(198, 51, 100, 12)},
      {ip4(8, 8, 8, 8), true, ip4(198, 51, 100, 12)},
      {ip4(1, 1, 1, 1), true, ip4(198, 51, 100, 12)},
  };
  for (const Case& c : cases) {
    const Tuple t{kDns, c.dst, 40000, 53, 0, kProtoUdp};
    EXPECT_EQ(nat_select_address(t, ip4(198, 51, 100, 10), ip4(198, 51, 100, 20), c.persistent),
              c.chosen)
        << format_ipv4(c.dst) << (c.persistent ? " persistent" : "");
  }
}

TEST(NatSnat, PortRangeAndSinglePort) {
  Host h(3);
  SnatTarget t;
  t.range = {.has_addr = true, .addr_lo = kHostIp, .addr_hi = kHostIp, .has_ports = true,
             .port_lo = 2000, .port_hi = 2010};
  const Target snat = t;
  Packet a(udp_packet(kDns, kServer, 40000, 53), kBridge2);
  h.forward(a, kEth0, nullptr, &snat);
  EXPECT_EQ(a.key.src_port, 2000 + first_offset(3) % 11);
  // A port already inside the range is kept (when free).
  ASSERT_NE(a.key.src_port, 2005);
  Packet b(udp_packet(kDns, kServer, 2005, 53), kBridge2);
  h.forward(b, kEth0, nullptr, &snat);
  EXPECT_EQ(b.key.src_port, 2005);

  // A one-port range: when its port is taken there is nothing else to try;
  // the tuple keeps the clash and the packet dies at confirm.
  Host g;
  t.range.port_lo = t.range.port_hi = 3000;
  const Target one = t;
  Packet c(udp_packet(kDns, kServer, 40000, 53), kBridge2);
  EXPECT_TRUE(g.forward(c, kEth0, nullptr, &one).confirmed);
  Packet d(udp_packet(kRedis, kServer, 40001, 53), kDocker0);
  const Host::Hop hop = g.forward(d, kEth0, nullptr, &one);
  EXPECT_EQ(d.key.src_port, 3000);
  EXPECT_FALSE(hop.confirmed);
}

TEST(NatSnat, NullBindingMovesTheSourcePortOnAClash) {
  // Two published ports lead to the same container port. A client that
  // reuses its source port for both would give both connections the reply
  // tuple 172.17.0.2:6379 -> client:5000; DNAT cannot move a destination
  // port, so POSTROUTING's null binding moves the source port (kernel: a
  // random port, SRC_NAT set although no SNAT rule exists).
  Host h(77);
  const Target dnat = dnat_to(kRedis, 6379);
  Packet a(tcp_syn(kClient, kHostIp, 5000, 10000), kEth0);
  h.forward(a, kDocker0, &dnat);
  EXPECT_EQ(a.key.src_port, 5000);
  Packet b(tcp_syn(kClient, kHostIp, 5000, 10003), kEth0);
  const Host::Hop hop = h.forward(b, kDocker0, &dnat);
  EXPECT_TRUE(hop.confirmed);
  EXPECT_EQ(b.key.src_port, 1024 + first_offset(77) % 64512);
  EXPECT_EQ(b.ip(), tcp_syn(kClient, kRedis, b.key.src_port, 6379));
  EXPECT_TRUE(h.entry(hop.entry).has(ct_status::kSrcNat | ct_status::kDstNat));
}

// ---------------------------------------------------------------- REDIRECT

TEST(NatRedirect, PreroutingTakesTheInInterfaceAddressOutputLoopback) {
  RedirectTarget r;
  r.has_ports = true;
  r.ports = {8080, 8080};
  const Target redirect = r;
  Host h;
  Packet p(tcp_syn(kClient, ip4(10, 9, 8, 7), 50000, 80), kEth0);
  h.forward(p, kLo, &redirect);
  EXPECT_EQ(p.ip(), tcp_syn(kClient, kHostIp, 50000, 8080));
  Packet q(tcp_syn(kRedis, ip4(10, 9, 8, 7), 50000, 80), kDocker0);
  h.forward(q, kLo, &redirect);
  EXPECT_EQ(q.key.dst_ip, ip4(172, 17, 0, 1));

  // OUTPUT: 127.0.0.1.
  ConntrackTable ct(CtConfig{.max_entries = 16});
  NatTable nat(ct);
  const HostModel host = default_docker_host();
  Packet local(tcp_syn(kHostIp, ip4(10, 9, 8, 7), 50001, 80), kLo);
  CtResult res = ct.process(local.key, local.frame.data(), local.len(), kSecond, false);
  ASSERT_TRUE(res.has_entry());
  const NatContext ctx{.hook = Hook::Output, .host = &host, .nat = &nat};
  ASSERT_TRUE(nat_bind(ct, res.entry, NatManip::Dst, redirect, ctx));
  ASSERT_TRUE(nat_apply(*ct.entry(res.entry), res.dir, NatManip::Dst, local.key, local.frame.data(), local.len()));
  EXPECT_EQ(local.ip(), tcp_syn(kHostIp, 0x7f000001U, 50001, 8080));
  ct.discard(res);
}

// ---------------------------------------------------------------- bind rules

TEST(NatBind, RefusalsAndConfirmedEntries) {
  ConntrackTable ct(CtConfig{.max_entries = 16});
  NatTable nat(ct);
  const HostModel host = default_docker_host();
  Packet p(udp_packet(kClient, kHostIp, 1000, 2000), kEth0);
  CtResult r = ct.process(p.key, p.frame.data(), p.len(), kSecond, true);
  ASSERT_TRUE(r.has_entry());
  const NatContext ctx{.hook = Hook::Prerouting, .in_iface = kEth0, .host = &host, .nat = &nat};
  const Target dnat = dnat_to(kRedis);
  EXPECT_FALSE(nat_bind(ct, r.entry, NatManip::Src, dnat, ctx));            // wrong manip
  EXPECT_FALSE(nat_bind(ct, r.entry, NatManip::Dst, Target{AcceptTarget{}}, ctx));  // not NAT
  EXPECT_TRUE(nat_bind(ct, r.entry, NatManip::Dst, dnat, ctx));
  EXPECT_FALSE(nat_bind(ct, r.entry, NatManip::Dst, dnat, ctx));            // bound already
  EXPECT_FALSE(nat_null_binding(ct, r.entry, NatManip::Dst, ctx));
  EXPECT_EQ(nat.counters().refused, 4U);
  const uint32_t handle = r.entry;
  ASSERT_TRUE(ct.confirm(r, kSecond));
  // Confirmed: too late, left alone.
  const Tuple reply = ct.entry(handle)->tuple[1];
  EXPECT_TRUE(nat_bind(ct, handle, NatManip::Src, snat_to(ip4(1, 2, 3, 4), ip4(1, 2, 3, 4)), ctx));
  EXPECT_EQ(ct.entry(handle)->tuple[1], reply);
  EXPECT_FALSE(nat_initialized(*ct.entry(handle), NatManip::Src));
}

// ---------------------------------------------------------------- ICMP

TEST(NatIcmp, EchoIdMovesOnAClashAndComesBack) {
  constexpr uint64_t kSeed = 4242;
  Host h(kSeed);
  Packet a(ping(kRedis, kServer, 0x1234), kDocker0);
  h.forward(a, kEth0, nullptr, &kMasquerade);
  EXPECT_EQ(a.ip(), ping(kHostIp, kServer, 0x1234));
  Packet b(ping(kWeb, kServer, 0x1234), kDocker0);
  h.forward(b, kEth0, nullptr, &kMasquerade);
  // An id search covers 0..65535 from the offset.
  const uint16_t id = first_offset(kSeed);
  EXPECT_EQ(b.key.icmp_id, id);
  EXPECT_EQ(b.ip(), ping(kHostIp, kServer, id));
  EXPECT_EQ(b.key, b.reparsed());
  Packet back(ping(kServer, kHostIp, id, true), kEth0);
  h.forward(back, kDocker0);
  EXPECT_EQ(back.ip(), ping(kServer, kWeb, 0x1234, true));
  Packet back_a(ping(kServer, kHostIp, 0x1234, true), kEth0);
  h.forward(back_a, kDocker0);
  EXPECT_EQ(back_a.ip(), ping(kServer, kRedis, 0x1234, true));
}

TEST(NatIcmp, ErrorAboutAMasqueradedFlowRewritesTheQuotedHeader) {
  Host h;
  const Bytes sent = udp_packet(kRedis, kServer, 40000, 53, test::pattern(40));
  Packet out(sent, kDocker0);
  h.forward(out, kEth0, nullptr, &kMasquerade);
  const Bytes on_wire = out.ip();  // 198.51.100.1:40000 -> server:53
  // The server answers port unreachable, quoting 8 bytes, 28, or everything.
  for (std::size_t quote : {std::size_t{8}, std::size_t{28}, on_wire.size() - 20}) {
    Packet err(icmp_error_about(kServer, kHostIp, 3, 3, on_wire, quote), kEth0);
    const Host::Hop hop = h.forward(err, kDocker0);
    EXPECT_EQ(hop.state, kCtRelated);
    EXPECT_EQ(hop.dir, CtDir::Reply);
    EXPECT_TRUE(hop.dnat_ok && hop.snat_ok);
    // What the container would have got had no NAT been on the way.
    EXPECT_EQ(err.ip(), icmp_error_about(kServer, kRedis, 3, 3, sent, quote)) << quote;
    EXPECT_EQ(err.key, err.reparsed());
    EXPECT_EQ(err.key.inner.src_ip, kRedis);
  }
}

TEST(NatIcmp, ErrorAboutADnatedFlowAtPostrouting) {
  Host h;
  const Target dnat = dnat_to(kRedis, 6379);
  const Bytes from_client = tcp_syn(kClient, kHostIp, 50000, 10000);
  Packet syn(from_client, kEth0);
  h.forward(syn, kDocker0, &dnat);
  const Bytes at_redis = syn.ip();
  // Redis rejects with host unreachable, quoting the whole SYN (its TCP
  // checksum is inside the quote and is rewritten too).
  Packet err(icmp_error_about(kRedis, kClient, 3, 1, at_redis, at_redis.size() - 20), kDocker0);
  const Host::Hop hop = h.forward(err, kEth0);
  EXPECT_EQ(hop.state, kCtRelated);
  EXPECT_EQ(hop.dir, CtDir::Reply);
  EXPECT_EQ(err.ip(), icmp_error_about(kHostIp, kClient, 3, 1, from_client, from_client.size() - 20));
  EXPECT_EQ(err.key.inner.dst_ip, kHostIp);
  EXPECT_EQ(err.key.inner.dst_port, 10000);
}

TEST(NatIcmp, ErrorAboutAPingWithAMovedId) {
  Host h(31);
  Packet a(ping(kRedis, kServer, 7), kDocker0);
  h.forward(a, kEth0, nullptr, &kMasquerade);
  const Bytes sent_b = ping(kWeb, kServer, 7);
  Packet b(sent_b, kDocker0);
  h.forward(b, kEth0, nullptr, &kMasquerade);
  ASSERT_NE(b.key.icmp_id, 7);
  Packet err(icmp_error_about(kGateway, kHostIp, 11, 0, b.ip(), 8 + 16), kEth0);
  h.forward(err, kDocker0);
  EXPECT_EQ(err.ip(), icmp_error_about(kGateway, kWeb, 11, 0, sent_b, 8 + 16));
  EXPECT_EQ(err.key.inner.icmp_id, 7);
}

TEST(NatIcmp, ErrorsTheKernelDrops) {
  Host h;
  Packet out(udp_packet(kRedis, kServer, 40000, 53), kDocker0);
  const Host::Hop flow = h.forward(out, kEth0, nullptr, &kMasquerade);
  const CtEntry& e = h.entry(flow.entry);
  // A wrong ICMP checksum (conntrack with nf_conntrack_checksum=0 lets it
  // through as RELATED; nat verifies it and drops).
  Bytes bad = icmp_error_about(kServer, kHostIp, 3, 3, out.ip(), 8);
  bad[20 + 2] ^= 0x55;
  Packet b(bad, kEth0);
  EXPECT_FALSE(nat_apply(e, CtDir::Reply, NatManip::Dst, b.key, b.frame.data(), b.len()));
  // A redirect about a NATed connection.
  Packet r(icmp_error_about(kServer, kHostIp, 5, 1, out.ip(), 8), kEth0);
  EXPECT_FALSE(nat_apply(e, CtDir::Reply, NatManip::Dst, r.key, r.frame.data(), r.len()));
  // The same error with a right checksum passes and is rewritten.
  Packet ok(icmp_error_about(kServer, kHostIp, 3, 3, out.ip(), 8), kEth0);
  EXPECT_TRUE(nat_apply(e, CtDir::Reply, NatManip::Dst, ok.key, ok.frame.data(), ok.len()));
  EXPECT_EQ(ok.key.dst_ip, kRedis);
}

// ---------------------------------------------------------------- UDP checksum 0

TEST(NatUdp, ChecksumZeroStaysZeroAndAComputedZeroIsSentAsAllOnes) {
  Host h;
  const Target dnat = dnat_to(kDns, 53);
  Packet none(udp_packet(kClient, kHostIp, 40000, 5353, test::pattern(9), test::L4Checksum::Leave),
              kEth0);
  h.forward(none, kBridge2, &dnat);
  EXPECT_EQ(none.ip(), udp_packet(kClient, kDns, 40000, 53, test::pattern(9), test::L4Checksum::Leave));

  // Find a payload whose checksum after the rewrite is 0: it must leave as
  // 0xffff (the builder does the same for a computed 0).
  for (uint32_t w = 0; w < 0x10000; ++w) {
    Bytes payload{static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w)};
    const Bytes after = udp_packet(kClient, kDns, 40001, 53, payload);
    Bytes zeroed = after;
    test::set16(zeroed, 26, 0);
    if (test::ref_checksum(zeroed, 20, zeroed.size() - 20,
                           test::ref_pseudo_sum(kClient, kDns, kProtoUdp, zeroed.size() - 20)) != 0)
      continue;
    Packet p(udp_packet(kClient, kHostIp, 40001, 5353, payload), kEth0);
    h.forward(p, kBridge2, &dnat);
    EXPECT_EQ(test::get16(p.ip(), 26), 0xffff);
    EXPECT_EQ(p.ip(), after);
    return;
  }
  FAIL() << "no payload gives checksum 0";
}

// ---------------------------------------------------------------- fragments

TEST(NatFragments, FirstCarriesTheL4RewriteLaterOnlyTheAddresses) {
  Host h;
  const Target dnat = dnat_to(kRedis, 6379);
  const Bytes whole = udp_packet(kClient, kHostIp, 40000, 10000, test::pattern(64));
  Packet first(test::fragment(whole, 0, 32), kEth0);
  const Host::Hop hop = h.forward(first, kDocker0, &dnat);
  ASSERT_NE(hop.entry, kNoEntry);
  const Bytes whole_after = udp_packet(kClient, kRedis, 40000, 6379, test::pattern(64));
  EXPECT_EQ(first.ip(), test::fragment(whole_after, 0, 32));
  // A later fragment: conntrack calls it INVALID; the kernel would have
  // NATed it with its datagram, so the pipeline applies the entry itself.
  Packet later(test::fragment(whole, 32, whole.size() - 20 - 32), kEth0);
  const CtEntry& e = h.entry(hop.entry);
  ASSERT_TRUE(nat_apply(e, CtDir::Original, NatManip::Dst, later.key, later.frame.data(), later.len()));
  EXPECT_EQ(later.ip(), test::fragment(whole_after, 32, whole.size() - 20 - 32));
  EXPECT_EQ(later.key, later.reparsed());
}

// ---------------------------------------------------------------- random frames

// Random TCP/UDP/ICMP first packets with random DNAT/SNAT bindings (random
// addresses, ports, ranges): after every rewrite the IP header checksum and
// the L4 checksum must equal a full recomputation exactly (UDP: 0 stays 0,
// a computed 0 is 0xffff), and the rewritten key must equal the key parsed
// from the rewritten bytes. Then an ICMP error about the rewritten packet
// must come back as the error about the original one.
TEST(NatRandom, ChecksumsAndKeysAfterEveryRewrite) {
  std::mt19937 gen(2024);
  auto rng = [&gen] { return static_cast<uint32_t>(gen()); };
  auto r16 = [&rng] { return static_cast<uint16_t>(rng()); };
  for (int iter = 0; iter < 3000; ++iter) {
    Host h(static_cast<uint64_t>(iter));
    const uint32_t src = rng() | 0x01000000U;
    const uint32_t dst = rng() | 0x01000000U;
    const uint16_t sp = static_cast<uint16_t>(r16() | 1U);
    const uint16_t dp = static_cast<uint16_t>(r16() | 1U);
    Bytes payload(rng() % 60);
    for (auto& x : payload) x = static_cast<uint8_t>(rng());
    Bytes pkt;
    switch (rng() % 4) {
      case 0:
        pkt = test::ipv4({.src = src, .dst = dst, .proto = kProtoTcp, .ttl = static_cast<uint8_t>(rng())},
                         test::tcp({.sport = sp, .dport = dp, .seq = rng(), .flags = tcp_flag::kSyn,
                                    .payload = payload}));
        break;
      case 1:
        pkt = udp_packet(src, dst, sp, dp, payload);
        break;
      case 2:
        pkt = udp_packet(src, dst, sp, dp, payload, test::L4Checksum::Leave);
        break;
      default:
        pkt = test::ipv4({.src = src, .dst = dst, .proto = kProtoIcmp},
                         test::icmp_echo(r16(), r16(), false, payload));
        break;
    }
    const Bytes original = pkt;
    const bool udp_no_csum = original[9] == kProtoUdp && test::get16(original, 26) == 0;
    // Random bindings at both hooks.
    const uint32_t to_addr = rng();
    Target dnat = dnat_to(to_addr, static_cast<uint16_t>(r16() | 1U));
    SnatTarget s;
    s.range.has_addr = true;
    s.range.addr_lo = rng();
    s.range.addr_hi = s.range.addr_lo + (rng() % 8);
    if (rng() % 2 == 0) {
      s.range.has_ports = true;
      s.range.port_lo = static_cast<uint16_t>(r16() | 1U);
      s.range.port_hi = static_cast<uint16_t>(s.range.port_lo + rng() % 100);
      if (s.range.port_hi < s.range.port_lo) s.range.port_hi = 65535;
    }
    const Target snat = s;
    Packet p(pkt, kEth0);
    const Host::Hop hop = h.forward(p, kEth0, &dnat, &snat);
    ASSERT_TRUE(hop.confirmed) << iter;
    const Bytes ip = p.ip();
    ASSERT_TRUE(ip_header_ok(ip)) << iter;
    Bytes expect = ip;
    const std::size_t l4 = 20;
    const uint8_t proto = ip[9];
    const std::size_t csum_at = l4 + (proto == kProtoTcp ? 16U : proto == kProtoUdp ? 6U : 2U);
    test::set16(expect, csum_at, 0);
    const uint32_t pseudo = proto == kProtoIcmp ? 0
                                                : test::ref_pseudo_sum(load_be32(&ip[12]), load_be32(&ip[16]),
                                                                       proto, ip.size() - l4);
    uint16_t full = test::ref_checksum(expect, l4, ip.size() - l4, pseudo);
    if (proto == kProtoUdp && full == 0) full = 0xffff;
    if (udp_no_csum) full = 0;
    ASSERT_EQ(test::get16(ip, csum_at), full) << iter;
    ASSERT_EQ(p.key, p.reparsed()) << iter;

    // An ICMP error about what left, sent back: it becomes the error about
    // what came in (quote lengths 8, 28 and all).
    const std::size_t quote = std::min<std::size_t>(ip.size() - 20, (rng() % 3 == 0) ? 8 : 28 + rng() % 40);
    // The outer source of an error about a DNATed connection becomes the
    // original destination (nf_nat_icmp_reply_translation makes the outer
    // header look like a reply to the original packet).
    const uint32_t reporter = ip4(10, 99, 0, 1);
    Packet err(icmp_error_about(reporter, load_be32(&ip[12]), 3, 3, ip, quote), kEth0);
    const Host::Hop back = h.forward(err, kEth0);
    ASSERT_EQ(back.state, kCtRelated) << iter;
    const bool dnated = h.entry(hop.entry).has(ct_status::kDstNat);
    EXPECT_EQ(err.ip(), icmp_error_about(dnated ? dst : reporter, src, 3, 3, original, quote)) << iter;
  }
}


// A recorded flow's one-step rewrite equals the kernel's steps: nat_apply()
// at the Dst hook, the TTL decrement of a forwarded packet (ip_decrease_ttl),
// nat_apply() at the Src hook -- on random connections with every mix of
// bindings, both directions, TCP/UDP (checksum 0 too)/ICMP echo/SCTP (its
// CRC32c recomputed)/UDP-Lite/other, and checksum fields with any value
// (right, wrong, 0xffff, 0).
TEST(NatRewrite, OneStepEqualsTheKernelsSteps) {
  std::mt19937 gen(77);
  auto rng = [&gen] { return static_cast<uint32_t>(gen()); };
  auto r16 = [&rng] { return static_cast<uint16_t>(rng()); };
  int rewritten = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    CtEntry e;
    const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoSctp, kProtoUdplite, 50};  // 50 (ESP): addresses only
    const auto ported = [](uint8_t p) {
      return p == kProtoTcp || p == kProtoUdp || p == kProtoSctp || p == kProtoUdplite;
    };
    Tuple o;
    o.src = rng();
    o.dst = rng();
    o.proto = protos[rng() % 6];
    if (ported(o.proto)) {
      o.sport = r16();
      o.dport = r16();
    } else if (o.proto == kProtoIcmp) {
      o.dport = Tuple::icmp_word(8, 0);
      o.sport = r16();
    }
    Tuple r;
    ASSERT_TRUE(o.invert(r));
    // Bindings: DNAT changes the reply's source half, SNAT its destination half.
    if (rng() % 2 == 0) {
      r.src = rng() % 3 == 0 ? r.src : rng();
      if (ported(o.proto)) r.sport = rng() % 3 == 0 ? r.sport : r16();
      if (o.proto == kProtoIcmp && rng() % 2 == 0) r.sport = r16();
      e.status |= ct_status::kDstNat;
    }
    if (rng() % 2 == 0) {
      r.dst = rng() % 3 == 0 ? r.dst : rng();
      if (ported(o.proto)) r.dport = rng() % 3 == 0 ? r.dport : r16();
      if (o.proto == kProtoIcmp && rng() % 2 == 0) r.sport = r16();
      e.status |= ct_status::kSrcNat;
    }
    e.tuple = {o, r};
    const CtDir dir = rng() % 2 == 0 ? CtDir::Original : CtDir::Reply;
    const Tuple& t = e.tuple[dir_index(dir)];
    const bool forwarded = rng() % 4 != 0;
    Bytes payload(rng() % 40);
    for (auto& x : payload) x = static_cast<uint8_t>(rng());
    const uint8_t ttl = static_cast<uint8_t>(2 + rng() % 250);
    const auto csum = rng() % 3 == 0 ? test::L4Checksum::Corrupt : test::L4Checksum::Fill;
    Bytes ip;
    switch (o.proto) {
      case kProtoTcp:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = kProtoTcp, .ttl = ttl, .l4_checksum = csum},
                        test::tcp({.sport = t.sport, .dport = t.dport, .seq = rng(), .ack = rng(),
                                   .flags = tcp_flag::kAck, .payload = payload}));
        break;
      case kProtoUdp:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = kProtoUdp, .ttl = ttl,
                         .l4_checksum = rng() % 4 == 0 ? test::L4Checksum::Leave : csum},
                        test::udp({.sport = t.sport, .dport = t.dport, .payload = payload}));
        break;
      case kProtoIcmp:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = kProtoIcmp, .ttl = ttl, .l4_checksum = csum},
                        test::icmp_echo(t.sport, r16(), dir == CtDir::Reply, payload));
        break;
      case kProtoSctp:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = kProtoSctp, .ttl = ttl, .l4_checksum = csum},
                        test::sctp({.sport = t.sport, .dport = t.dport, .vtag = rng(),
                                    .chunks = {test::sctp_chunk({.type = 0, .flags = 3, .value = payload})}}));
        break;
      case kProtoUdplite:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = kProtoUdplite, .ttl = ttl,
                         .l4_checksum = rng() % 2 == 0 ? test::L4Checksum::UdpliteAsUdp : csum},
                        test::udplite({.sport = t.sport, .dport = t.dport,
                                       .coverage = static_cast<uint16_t>(rng() % 2 == 0 ? 0 : 8),
                                       .payload = payload}));
        break;
      default:
        ip = test::ipv4({.src = t.src, .dst = t.dst, .proto = 50, .ttl = ttl}, payload);
        break;
    }
    // Checksum fields the arithmetic must carry whatever they hold.
    switch (rng() % 8) {
      case 0: test::set16(ip, 10, 0xffff); break;
      case 1:
        if (o.proto == kProtoTcp) test::set16(ip, 20 + 16, 0xffff);
        if (o.proto == kProtoUdplite) test::set16(ip, 20 + 6, 0xffff);
        if (o.proto == kProtoIcmp) test::set16(ip, 20 + 2, 0xffff);
        break;
      default: break;
    }
    const Bytes frame = test::ethernet({}, ip);
    PacketKey key;
    // A header checksum forced to 0xffff or 0 fails ip_rcv(): such a packet never gets here.
    if (parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0, key) !=
        ParseStatus::Ok)
      continue;
    // The kernel's steps.
    Bytes want = frame;
    PacketKey want_key = key;
    ASSERT_TRUE(nat_apply(e, dir, NatManip::Dst, want_key, want.data(), static_cast<uint32_t>(want.size())));
    if (forwarded) {
      uint8_t* iph = want.data() + want_key.l3_off;
      const auto before = static_cast<uint16_t>(iph[8] << 8 | iph[9]);
      const auto after = static_cast<uint16_t>((iph[8] - 1) << 8 | iph[9]);
      iph[8] = static_cast<uint8_t>(iph[8] - 1);
      store_be16(iph + 10, checksum_replace16(load_be16(iph + 10), before, after));
      want_key.ttl = static_cast<uint8_t>(want_key.ttl - 1);
    }
    ASSERT_TRUE(nat_apply(e, dir, NatManip::Src, want_key, want.data(), static_cast<uint32_t>(want.size())));
    // One step.
    Bytes got = frame;
    PacketKey got_key = key;
    const NatRewrite rw = nat_rewrite_for(e, dir, forwarded);
    nat_rewrite_apply(rw, got_key, got.data());
    ASSERT_EQ(got, want) << iter;
    ASSERT_EQ(got_key, want_key) << iter;
    if (got != frame) ++rewritten;
    // SCTP leaves with a right CRC32c whenever something was rewritten.
    if (o.proto == kProtoSctp && (rw.what & (NatRewrite::kSrc | NatRewrite::kDst)) != 0) {
      ASSERT_TRUE(l4_checksum_ok(got.data(), static_cast<uint32_t>(got.size()), got_key)) << iter;
    }
  }
  EXPECT_GT(rewritten, 10000);
}

// gre_manip_pkt(): fewer than 8 bytes of GRE header, or a destination manip
// of a version other than 0 and 1, drop the packet; a source manip or
// version 0 leave the GRE header alone; version 1 gets the call id.
TEST(NatApply, GreHeaderRules) {
  const auto gre = [](uint16_t version, std::size_t n) {
    Bytes g;
    test::put16(g, version);
    test::put16(g, version == 1 ? 0x880b : 0x0800);
    test::put16(g, 0);
    test::put16(g, 7);
    g.resize(n);
    return test::ethernet({}, test::ipv4({.src = test::ip4(10, 0, 0, 1), .dst = test::ip4(10, 0, 0, 2),
                                          .proto = kProtoGre}, g));
  };
  CtEntry e;
  const Tuple o{.src = test::ip4(10, 0, 0, 1), .dst = test::ip4(10, 0, 0, 2), .dport = 7, .proto = kProtoGre};
  Tuple r;
  ASSERT_TRUE(o.invert(r));
  r.src = test::ip4(10, 9, 9, 9);  // DNAT
  r.sport = 9;                     // and another destination key (as the PPTP helper would bind one)
  e.tuple = {o, r};
  e.status |= ct_status::kDstNat;
  const auto apply = [&e](Bytes f, NatManip m, Bytes* out = nullptr) {
    PacketKey k;
    EXPECT_EQ(parse_frame(f.data(), static_cast<uint32_t>(f.size()), LinkType::Ethernet, 0, k), ParseStatus::Ok);
    const bool ok = nat_apply(e, CtDir::Original, m, k, f.data(), static_cast<uint32_t>(f.size()));
    if (out != nullptr) *out = f;
    return ok;
  };
  EXPECT_FALSE(apply(gre(0, 4), NatManip::Dst));
  EXPECT_FALSE(apply(gre(2, 8), NatManip::Dst));
  Bytes out;
  ASSERT_TRUE(apply(gre(0, 8), NatManip::Dst, &out));
  EXPECT_EQ(test::get16(out, 14 + 20 + 6), 7);  // version 0: the GRE header stays
  EXPECT_EQ(load_be32(out.data() + 14 + 16), test::ip4(10, 9, 9, 9));
  ASSERT_TRUE(apply(gre(1, 8), NatManip::Dst, &out));
  EXPECT_EQ(test::get16(out, 14 + 20 + 6), 9);  // version 1: the call id of the target
}

}  // namespace
}  // namespace nfb
