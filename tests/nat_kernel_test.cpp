// NAT against the real kernel: the frames Linux sends after DNAT,
// MASQUERADE, SNAT and null bindings, compared byte for byte with what the
// model (ConntrackTable + netfilter/nat.h) makes of the same frames.
//
// The kernel side is the Docker host of tests/support/kernel_host.h (namespaces,
// veths, bridges, frames injected with AF_PACKET from the peers) with the
// nat ruleset kNatRules below. What the host sends out is captured by an
// AF_PACKET socket on the receiving peer's eth0 (the peers' raw DROP rules
// act after packet sockets have seen the frame). The model side runs the
// same frames through a small forwarding pipeline: conntrack, the nat
// PREROUTING rules (kModelRules mirrors kNatRules), the routing decision of
// the default Docker host, the TTL decrement of ip_forward() (with the
// kernel's checksum arithmetic), the nat POSTROUTING rules, confirm. The IP
// packets must be equal, checksums included.
//
// Where the kernel picks at random (the source port of a SNAT/MASQUERADE or
// null binding whose own port is taken, an ICMP id likewise:
// get_random_u16()), the test checks the kernel's pick against the rules
// (class, uniqueness), checks that it differs from run to run, and then
// gives the model the kernel's pick (an SNAT to exactly that address:port)
// so that the bytes can be compared and the connection followed.
//
// Needs root, ip, iptables-legacy; skips with the reason otherwise.
#include "netfilter/nat.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "netfilter/host.h"
#include "packet/byte_order.h"
#include "packet/checksum.h"
#include "packet/frame_parser.h"
#include "tests/support/frame_builder.h"
#include "tests/support/kernel_host.h"

namespace nfb {
namespace {

namespace dh = docker_host;
using test::Bytes;
using test::ip4;

constexpr uint32_t kClient = ip4(203, 0, 113, 10);
constexpr uint32_t kServer = ip4(93, 184, 216, 34);
constexpr uint32_t kSnatLo = ip4(198, 51, 100, 10);
constexpr uint32_t kSnatHi = ip4(198, 51, 100, 20);

// The kernel's nat table. kModelRules below says the same.
std::string nat_rules(bool persistent_snat) {
  return std::string(
             "*nat\n"
             ":PREROUTING ACCEPT [0:0]\n"
             ":INPUT ACCEPT [0:0]\n"
             ":OUTPUT ACCEPT [0:0]\n"
             ":POSTROUTING ACCEPT [0:0]\n"
             "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p tcp -m tcp --dport 10000 -j DNAT "
             "--to-destination 172.17.0.2:6379\n"
             "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p tcp -m tcp --dport 10003 -j DNAT "
             "--to-destination 172.17.0.2:6379\n"
             "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p tcp -m tcp --dport 10001:10002 -j DNAT "
             "--to-destination 172.17.0.2:6000-6010\n"
             "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p udp -m udp --dport 7000 -j DNAT "
             "--to-destination 172.17.0.2-172.17.0.3\n"
             "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p udp -m udp --dport 5353 -j DNAT "
             "--to-destination 172.18.0.2:53\n"
             "-A POSTROUTING -s 172.17.0.0/16 -o eth0 -j MASQUERADE\n"
             "-A POSTROUTING -s 172.18.0.0/16 -o eth0 -j SNAT --to-source "
             "198.51.100.10-198.51.100.20") +
         (persistent_snat ? " --persistent" : "") + "\nCOMMIT\n";
}

// ---------------------------------------------------------------- the model

// One nat rule, matched the way its iptables line says.
struct ModelRule {
  Hook hook = Hook::Prerouting;
  uint16_t in = kNoIface;   // kNoIface: any
  uint16_t out = kNoIface;
  uint32_t src = 0, src_mask = 0;
  uint32_t dst = 0, dst_mask = 0;
  uint8_t proto = 0;
  uint16_t dport_lo = 0, dport_hi = 65535;
  Target target;
};

Target dnat(uint32_t lo, uint32_t hi, uint16_t plo = 0, uint16_t phi = 0) {
  DnatTarget t;
  t.range.has_addr = true;
  t.range.addr_lo = lo;
  t.range.addr_hi = hi;
  if (plo != 0) {
    t.range.has_ports = true;
    t.range.port_lo = plo;
    t.range.port_hi = phi;
  }
  return t;
}
Target snat(uint32_t lo, uint32_t hi, bool persistent = false, uint16_t plo = 0, uint16_t phi = 0) {
  SnatTarget t;
  t.range.has_addr = true;
  t.range.addr_lo = lo;
  t.range.addr_hi = hi;
  t.range.persistent = persistent;
  if (plo != 0) {
    t.range.has_ports = true;
    t.range.port_lo = plo;
    t.range.port_hi = phi;
  }
  return t;
}

std::vector<ModelRule> model_rules(const HostModel& host, bool persistent_snat) {
  const uint16_t eth0 = *host.iface_id("eth0");
  const uint16_t any = kNoIface;
  const uint32_t host_ip = dh::kHostIp;
  return {
      {Hook::Prerouting, eth0, any, 0, 0, host_ip, ~0U, kProtoTcp, 10000, 10000, dnat(dh::kRedisIp, dh::kRedisIp, 6379, 6379)},
      {Hook::Prerouting, eth0, any, 0, 0, host_ip, ~0U, kProtoTcp, 10003, 10003, dnat(dh::kRedisIp, dh::kRedisIp, 6379, 6379)},
      {Hook::Prerouting, eth0, any, 0, 0, host_ip, ~0U, kProtoTcp, 10001, 10002, dnat(dh::kRedisIp, dh::kRedisIp, 6000, 6010)},
      {Hook::Prerouting, eth0, any, 0, 0, host_ip, ~0U, kProtoUdp, 7000, 7000, dnat(dh::kRedisIp, dh::kWebIp)},
      {Hook::Prerouting, eth0, any, 0, 0, host_ip, ~0U, kProtoUdp, 5353, 5353, dnat(dh::kDnsIp, dh::kDnsIp, 53, 53)},
      {Hook::Postrouting, any, eth0, ip4(172, 17, 0, 0), 0xffff0000U, 0, 0, 0, 0, 65535, MasqueradeTarget{}},
      {Hook::Postrouting, any, eth0, ip4(172, 18, 0, 0), 0xffff0000U, 0, 0, 0, 0, 65535,
       snat(kSnatLo, kSnatHi, persistent_snat)},
  };
}

// Where the IPv4 checksum is and how the x86 kernel's ip_decrease_ttl()
// updates it: the raw little-endian 16-bit word plus htons(0x0100) (= 1 in
// that view), with an end-around carry that never stores 0xffff.
void decrease_ttl(uint8_t* ip) {
  uint32_t check = static_cast<uint32_t>(ip[10]) | (static_cast<uint32_t>(ip[11]) << 8);
  check += 0x0001;
  check += check >= 0xffff ? 1U : 0U;
  ip[10] = static_cast<uint8_t>(check);
  ip[11] = static_cast<uint8_t>(check >> 8);
  --ip[8];
}

// Conntrack, nat PREROUTING, routing, ip_forward's TTL, nat POSTROUTING,
// confirm: what the host does to a forwarded frame.
class Model {
 public:
  explicit Model(bool persistent_snat = false)
      : ct_(config()), nat_(ct_), rules_(model_rules(host_, persistent_snat)) {}

  struct Out {
    bool forwarded = false;
    std::string why;  // when not forwarded
    uint16_t out_iface = kNoIface;
    Bytes ip;         // the packet that leaves
    uint32_t entry = kNoEntry;
    uint8_t state = 0;
  };

  // `override_snat`: a target that replaces the POSTROUTING rules' answer
  // for this packet (the kernel's random pick, given to the model).
  Out forward(const InjectedFrame& f, const Target* override_snat = nullptr) {
    Out out;
    Bytes frame = f.bytes;
    const auto in = host_.iface_id(f.ingress);
    if (!in) return fail(out, "unknown ingress");
    PacketKey key;
    const auto len = static_cast<uint32_t>(frame.size());
    if (parse_frame(frame.data(), len, LinkType::Ethernet, *in, key) != ParseStatus::Ok)
      return fail(out, "parse");
    now_ += 1'000'000;
    CtResult r = ct_.process(key, frame.data(), len, now_, true);
    if (!r.has_entry()) return fail(out, "conntrack INVALID");
    out.entry = r.entry;
    out.state = r.state;
    CtEntry& e = *ct_.entry(r.entry);
    NatContext ctx{.hook = Hook::Prerouting, .in_iface = *in, .host = &host_, .nat = &nat_};
    const bool walk = r.state != kCtRelated;
    if (walk && !nat_initialized(e, NatManip::Dst)) {
      const Target* t = match(Hook::Prerouting, key, *in, kNoIface);
      const bool ok = t != nullptr ? nat_bind(ct_, r.entry, NatManip::Dst, *t, ctx)
                                   : nat_null_binding(ct_, r.entry, NatManip::Dst, ctx);
      if (!ok) return drop(out, r, "DNAT binding");
    }
    if (!nat_apply(e, r.dir, NatManip::Dst, key, frame.data(), len)) return drop(out, r, "PREROUTING rewrite");
    const RouteDecision route = host_.route_input(key.dst_ip, key.src_ip, *in);
    if (!route.to_forward()) return drop(out, r, std::string("route: ") + route_verdict_name(route.verdict));
    decrease_ttl(frame.data() + key.l3_off);
    --key.ttl;
    ctx.hook = Hook::Postrouting;
    ctx.out_iface = route.out_iface;
    ctx.next_hop = route.next_hop;
    if (walk && !nat_initialized(e, NatManip::Src)) {
      const Target* t = override_snat != nullptr ? override_snat
                                                 : match(Hook::Postrouting, key, *in, route.out_iface);
      const bool ok = t != nullptr ? nat_bind(ct_, r.entry, NatManip::Src, *t, ctx)
                                   : nat_null_binding(ct_, r.entry, NatManip::Src, ctx);
      if (!ok) return drop(out, r, "SNAT binding");
    }
    if (!nat_apply(e, r.dir, NatManip::Src, key, frame.data(), len)) return drop(out, r, "POSTROUTING rewrite");
    if (!ct_.confirm(r, now_)) return fail(out, "confirm clash");
    out.forwarded = true;
    out.out_iface = route.out_iface;
    out.ip.assign(frame.begin() + key.l3_off, frame.begin() + key.l3_off + key.l3_len);
    return out;
  }

  const HostModel& host() const { return host_; }
  NatTable& nat() { return nat_; }
  ConntrackTable& ct() { return ct_; }

 private:
  static CtConfig config() {
    CtConfig c;
    c.max_entries = 4096;
    return c;
  }
  static Out fail(Out& o, std::string why) {
    o.why = std::move(why);
    return o;
  }
  Out drop(Out& o, CtResult& r, std::string why) {
    ct_.discard(r);
    return fail(o, std::move(why));
  }
  const Target* match(Hook hook, const PacketKey& k, uint16_t in, uint16_t out) const {
    for (const ModelRule& m : rules_) {
      if (m.hook != hook) continue;
      if (m.in != kNoIface && m.in != in) continue;
      if (m.out != kNoIface && m.out != out) continue;
      if ((k.src_ip & m.src_mask) != m.src || (k.dst_ip & m.dst_mask) != m.dst) continue;
      if (m.proto != 0 && (k.proto != m.proto || k.dst_port < m.dport_lo || k.dst_port > m.dport_hi))
        continue;
      return &m.target;
    }
    return nullptr;
  }

  HostModel host_ = default_docker_host();
  ConntrackTable ct_;
  NatTable nat_;
  std::vector<ModelRule> rules_;
  uint64_t now_ = 1'000'000'000ULL;
};

// ---------------------------------------------------------------- capture

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Runs `fn` on a fresh thread inside network namespace `ns` (setns changes
// the calling thread only) and rethrows what it threw.
void in_netns(const std::string& ns, const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      const std::string path = "/run/netns/" + ns;
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw_errno("open " + path);
      const int rc = ::setns(fd, CLONE_NEWNET);
      ::close(fd);
      if (rc != 0) throw_errno("setns " + path);
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
}

// The IPv4 frames addressed to a peer namespace's eth0.
class Capture {
 public:
  Capture(const NetnsSandbox& ns, std::string name) : name_(std::move(name)) {
    in_netns(ns.name(), [this] {
      fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, host_to_be16(ETH_P_IP));
      if (fd_ < 0) throw_errno("socket(AF_PACKET)");
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "eth0", sizeof ifr.ifr_name - 1);
      if (::ioctl(fd_, SIOCGIFINDEX, &ifr) != 0) throw_errno("SIOCGIFINDEX eth0");
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = host_to_be16(ETH_P_IP);
      sll.sll_ifindex = ifr.ifr_ifindex;
      if (::bind(fd_, reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) throw_errno("bind eth0");
    });
  }
  ~Capture() {
    if (fd_ >= 0) ::close(fd_);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Waits up to `timeout` for `n` frames; returns what came (the IP packet
  // of each: Ethernet header and padding removed).
  std::vector<Bytes> take(std::size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    std::vector<Bytes> got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < n) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) throw_errno("poll");
      if (ready == 0) break;
      std::array<uint8_t, 2048> buf{};
      sockaddr_ll from{};
      socklen_t from_len = sizeof from;
      const ssize_t r = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw_errno("recvfrom");
      // Only frames addressed to this peer: not its own sends (the
      // injector's), nor frames a bridge floods to every port while it has
      // not learnt the destination's MAC (PACKET_OTHERHOST).
      if (from.sll_pkttype != PACKET_HOST || r < 14 + 20) continue;
      const auto len = static_cast<std::size_t>(r);
      const std::size_t total = load_be16(buf.data() + 14 + 2);
      if (14 + total > len) continue;
      got.emplace_back(buf.begin() + 14, buf.begin() + static_cast<std::ptrdiff_t>(14 + total));
    }
    return got;
  }
  // Exactly one frame, or a test failure naming the capture.
  Bytes one() {
    std::vector<Bytes> f = take(1);
    if (f.empty()) {
      ADD_FAILURE() << name_ << " received nothing";
      return {};
    }
    return f.front();
  }
  // Nothing more arrives within a short while.
  void expect_quiet() {
    const std::vector<Bytes> extra = take(1, std::chrono::milliseconds(100));
    EXPECT_TRUE(extra.empty()) << name_ << " received an unexpected frame";
  }

 private:
  std::string name_;
  int fd_ = -1;
};

std::string hex(const Bytes& b) {
  std::ostringstream s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    if (i != 0 && i % 4 == 0) s << ' ';
    s << kHex[b[i] >> 4] << kHex[b[i] & 0x0f];
  }
  return s.str();
}

::testing::AssertionResult same_packet(const Bytes& kernel, const Bytes& model) {
  if (kernel == model) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n kernel " << hex(kernel) << "\n model  " << hex(model);
}

// ---------------------------------------------------------------- fixture

class NatKernel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (KernelDockerHost::unavailable_reason()) return;
    host_ = new KernelDockerHost();
    outside_ = new Capture(host_->peer("outside"), "outside");
    redis_ = new Capture(host_->peer("redis"), "redis");
    web_ = new Capture(host_->peer("web"), "web");
    dns_ = new Capture(host_->peer("dns"), "dns");
  }
  static void TearDownTestSuite() {
    delete outside_;
    delete redis_;
    delete web_;
    delete dns_;
    delete host_;
    host_ = nullptr;
  }
  void SetUp() override {
    if (const auto reason = KernelDockerHost::unavailable_reason()) GTEST_SKIP() << *reason;
    ASSERT_NE(host_, nullptr);
    load(false);
  }
  // A fresh nat table and an empty conntrack table in the kernel.
  void load(bool persistent_snat) {
    host_->load_rules(nat_rules(persistent_snat));
    flush_conntrack();
  }
  void flush_conntrack() {
    const CommandResult r = host_->host().run({"conntrack", "-F"});
    // "0 flow entries" is reported on stderr; an absent table is fine too.
    ASSERT_TRUE(r.ok() || r.err.find("flow entries") != std::string::npos) << r.describe();
    for (Capture* c : {outside_, redis_, web_, dns_}) c->take(100, std::chrono::milliseconds(1));
  }
  void send(const InjectedFrame& f) { host_->inject({f}); }

  // Sends `ip` in on `ingress`, expects it to leave towards `to` exactly as
  // the model sends it; returns the kernel's packet.
  Bytes check_forward(Model& m, std::string_view ingress, const Bytes& ip, Capture& to,
                      const Target* override_snat = nullptr) {
    const InjectedFrame f = frame_to_host(ingress, ip);
    send(f);
    const Bytes kernel = to.one();
    const Model::Out out = m.forward(f, override_snat);
    EXPECT_TRUE(out.forwarded) << out.why;
    EXPECT_TRUE(same_packet(kernel, out.ip));
    return kernel;
  }

  static KernelDockerHost* host_;
  static Capture* outside_;
  static Capture* redis_;
  static Capture* web_;
  static Capture* dns_;
};

KernelDockerHost* NatKernel::host_ = nullptr;
Capture* NatKernel::outside_ = nullptr;
Capture* NatKernel::redis_ = nullptr;
Capture* NatKernel::web_ = nullptr;
Capture* NatKernel::dns_ = nullptr;

Bytes syn(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint32_t seq = 1000) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoTcp, .id = 0x4d2},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .flags = tcp_flag::kSyn,
                               .options = test::tcp_syn_options()}));
}
Bytes synack(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoTcp, .id = 0x4d3},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .ack = ack,
                               .flags = tcp_flag::kSyn | tcp_flag::kAck,
                               .options = test::tcp_syn_options()}));
}
Bytes ack(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ackno, Bytes data = {}) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoTcp, .id = 0x4d4},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .ack = ackno,
                               .flags = tcp_flag::kAck | tcp_flag::kPsh, .payload = std::move(data)}));
}
Bytes udp(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, Bytes payload = test::pattern(21),
          test::L4Checksum c = test::L4Checksum::Fill) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoUdp, .id = 0x77, .l4_checksum = c},
                    test::udp({.sport = sp, .dport = dp, .payload = std::move(payload)}));
}
Bytes ping(uint32_t s, uint32_t d, uint16_t id, bool reply = false) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoIcmp, .id = 0x99}, test::icmp_echo(id, 3, reply));
}
Bytes icmp_error(uint32_t s, uint32_t d, uint8_t type, uint8_t code, const Bytes& quoted, std::size_t l4) {
  return test::ipv4({.src = s, .dst = d, .proto = kProtoIcmp, .id = 0x55},
                    test::icmp_error(type, code, quoted, l4));
}
uint16_t src_port(const Bytes& ip) { return load_be16(ip.data() + 20); }
uint16_t dst_port(const Bytes& ip) { return load_be16(ip.data() + 22); }
uint32_t src_ip(const Bytes& ip) { return load_be32(ip.data() + 12); }
uint32_t dst_ip(const Bytes& ip) { return load_be32(ip.data() + 16); }

// ---------------------------------------------------------------- tests

TEST_F(NatKernel, DnatPublishedPortBothWays) {
  Model m;
  // Outside client -> 198.51.100.1:10000 -> redis 172.17.0.2:6379, and back.
  check_forward(m, "eth0", syn(kClient, dh::kHostIp, 50000, 10000), *redis_);
  check_forward(m, "docker0", synack(dh::kRedisIp, kClient, 6379, 50000, 7000, 1001), *outside_);
  check_forward(m, "eth0", ack(kClient, dh::kHostIp, 50000, 10000, 1001, 7001, test::pattern(14)), *redis_);
  // UDP without a checksum stays without one (5353 -> dns:53).
  const Bytes k = check_forward(m, "eth0", udp(kClient, dh::kHostIp, 40000, 5353, test::pattern(9),
                                               test::L4Checksum::Leave),
                                *dns_);
  EXPECT_EQ(test::get16(k, 26), 0);
  check_forward(m, "br-5c0a8c6e1d2f", udp(dh::kDnsIp, kClient, 53, 40000), *outside_);
  for (Capture* c : {outside_, redis_, web_, dns_}) c->expect_quiet();
}

TEST_F(NatKernel, DnatPortRangeAndAddressRange) {
  Model m;
  // 10001 and 10002 -> 172.17.0.2:6000-6010 from the same client port: the
  // second one's 6000 is taken, a destination search starts at the range's
  // start: 6001.
  const Bytes a = check_forward(m, "eth0", syn(kClient, dh::kHostIp, 5000, 10001), *redis_);
  EXPECT_EQ(dst_port(a), 6000);
  const Bytes b = check_forward(m, "eth0", syn(kClient, dh::kHostIp, 5000, 10002), *redis_);
  EXPECT_EQ(dst_port(b), 6001);
  // 7000/udp -> 172.17.0.2-172.17.0.3: the address is a hash of the client's.
  int to_redis = 0;
  int to_web = 0;
  for (uint8_t i = 1; i <= 24; ++i) {
    const uint32_t client = ip4(203, 0, 113, i);
    const InjectedFrame f = frame_to_host("eth0", udp(client, dh::kHostIp, 41000, 7000));
    send(f);
    const Model::Out out = m.forward(f);
    ASSERT_TRUE(out.forwarded) << out.why;
    const bool model_redis = dst_ip(out.ip) == dh::kRedisIp;
    Capture& c = model_redis ? *redis_ : *web_;
    const std::vector<Bytes> got = c.take(1);
    ASSERT_EQ(got.size(), 1U) << "kernel did not send 203.0.113." << int{i} << " where the model did ("
                              << format_ipv4(dst_ip(out.ip)) << ")";
    EXPECT_TRUE(same_packet(got[0], out.ip));
    (model_redis ? to_redis : to_web)++;
  }
  EXPECT_GT(to_redis, 0);
  EXPECT_GT(to_web, 0);
  for (Capture* c : {outside_, redis_, web_, dns_}) c->expect_quiet();
}

TEST_F(NatKernel, MasqueradeClashPicksARandomPortAndTheSourceKeepsIt) {
  Model m;
  const Bytes a = check_forward(m, "docker0", syn(dh::kRedisIp, kServer, 40000, 80), *outside_);
  EXPECT_EQ(src_port(a), 40000);
  // web uses the same source port: its reply tuple is taken.
  const InjectedFrame f = frame_to_host("docker0", syn(dh::kWebIp, kServer, 40000, 80));
  send(f);
  const Bytes kernel = outside_->one();
  ASSERT_FALSE(kernel.empty());
  const uint16_t picked = src_port(kernel);
  EXPECT_NE(picked, 40000);
  EXPECT_GE(picked, 1024);
  {
    // The model, left to itself, moves the port within the same class.
    Model shadow = m;
    const Model::Out own = shadow.forward(f);
    ASSERT_TRUE(own.forwarded) << own.why;
    EXPECT_NE(src_port(own.ip), 40000);
    EXPECT_GE(src_port(own.ip), 1024);
  }
  const Target given = snat(dh::kHostIp, dh::kHostIp, false, picked, picked);
  const Model::Out out = m.forward(f, &given);
  ASSERT_TRUE(out.forwarded) << out.why;
  EXPECT_TRUE(same_packet(kernel, out.ip));
  // Replies reach the right container.
  check_forward(m, "eth0", synack(kServer, dh::kHostIp, 80, picked, 5, 1001), *web_);
  check_forward(m, "eth0", synack(kServer, dh::kHostIp, 80, 40000, 9, 1001), *redis_);
  // web's next connection from port 40000, to another server where 40000
  // is free: the kernel reuses web's mapping (find_appropriate_src), and so
  // does the model.
  const Bytes c = check_forward(m, "docker0", syn(dh::kWebIp, ip4(1, 1, 1, 1), 40000, 80), *outside_);
  EXPECT_EQ(src_port(c), picked);
  for (Capture* cap : {outside_, redis_, web_, dns_}) cap->expect_quiet();

  // Random from run to run: the same clash three more times.
  std::set<uint16_t> ports{picked};
  for (int run = 0; run < 3; ++run) {
    flush_conntrack();
    send(frame_to_host("docker0", syn(dh::kRedisIp, kServer, 40000, 80)));
    outside_->one();
    send(frame_to_host("docker0", syn(dh::kWebIp, kServer, 40000, 80)));
    const Bytes again = outside_->one();
    ASSERT_FALSE(again.empty());
    ports.insert(src_port(again));
  }
  EXPECT_GT(ports.size(), 1U) << "the kernel picked the same port four times";
}

TEST_F(NatKernel, NullBindingMovesTheSourcePort) {
  Model m;
  // Two published ports to the same container port, one client port: the
  // second connection's reply tuple is taken; POSTROUTING has no rule for
  // docker0, and the null binding moves the source port.
  check_forward(m, "eth0", syn(kClient, dh::kHostIp, 5000, 10000), *redis_);
  const InjectedFrame f = frame_to_host("eth0", syn(kClient, dh::kHostIp, 5000, 10003));
  send(f);
  const Bytes kernel = redis_->one();
  ASSERT_FALSE(kernel.empty());
  EXPECT_EQ(dst_ip(kernel), dh::kRedisIp);
  EXPECT_EQ(dst_port(kernel), 6379);
  const uint16_t picked = src_port(kernel);
  EXPECT_NE(picked, 5000);
  EXPECT_GE(picked, 1024);
  {
    Model shadow = m;
    const Model::Out own = shadow.forward(f);
    ASSERT_TRUE(own.forwarded) << own.why;
    EXPECT_NE(src_port(own.ip), 5000);
    EXPECT_GE(src_port(own.ip), 1024);
    EXPECT_TRUE(shadow.ct().entry(own.entry)->has(ct_status::kSrcNat | ct_status::kDstNat));
  }
  const Target given = snat(kClient, kClient, false, picked, picked);
  const Model::Out out = m.forward(f, &given);
  ASSERT_TRUE(out.forwarded) << out.why;
  EXPECT_TRUE(same_packet(kernel, out.ip));
  // Redis's answer goes back to the client's real port, from 10003.
  const Bytes back = check_forward(m, "docker0", synack(dh::kRedisIp, kClient, 6379, picked, 3, 1001), *outside_);
  EXPECT_EQ(dst_port(back), 5000);
  EXPECT_EQ(src_port(back), 10003);
}

TEST_F(NatKernel, SnatRangeAddresses) {
  // The address from a range is a deterministic hash (jhash2) of the
  // addresses: the model must pick the very same ones.
  const uint32_t servers[] = {kServer, ip4(8, 8, 8, 8), ip4(1, 1, 1, 1), ip4(203, 0, 113, 7)};
  for (bool persistent : {false, true}) {
    load(persistent);
    Model m(persistent);
    std::ostringstream facts;
    uint16_t port = 40000;  // a new source port each: no mapping to reuse
    for (uint32_t server : servers) {
      ++port;
      const Bytes k = check_forward(m, "br-5c0a8c6e1d2f", udp(dh::kDnsIp, server, port, 53), *outside_);
      ASSERT_FALSE(k.empty());
      const Tuple t{dh::kDnsIp, server, port, 53, 0, kProtoUdp};
      EXPECT_EQ(src_ip(k), nat_select_address(t, kSnatLo, kSnatHi, persistent));
      facts << format_ipv4(server) << " -> " << format_ipv4(src_ip(k)) << "; ";
    }
    std::cout << "SNAT 198.51.100.10-198.51.100.20" << (persistent ? " --persistent" : "")
              << " from 172.18.0.2: " << facts.str() << "\n";
    // Different source ports to one server spread over the range...
    std::set<uint32_t> used;
    for (uint16_t sp = 41000; sp < 41016; ++sp) {
      const Bytes k = check_forward(m, "br-5c0a8c6e1d2f", udp(dh::kDnsIp, kServer, sp, 53), *outside_);
      used.insert(src_ip(k));
    }
    // ... not at all: the hash covers addresses only.
    EXPECT_EQ(used.size(), 1U);
  }
  // A source keeps its address across servers (find_appropriate_src).
  load(false);
  Model m;
  const Bytes first = check_forward(m, "br-5c0a8c6e1d2f", udp(dh::kDnsIp, ip4(8, 8, 4, 4), 33333, 53), *outside_);
  for (uint8_t d = 1; d <= 12; ++d) {
    const Bytes k = check_forward(m, "br-5c0a8c6e1d2f", udp(dh::kDnsIp, ip4(9, 9, 9, d), 33333, 53), *outside_);
    EXPECT_EQ(src_ip(k), src_ip(first));
  }
  for (Capture* c : {outside_, redis_, web_, dns_}) c->expect_quiet();
}

TEST_F(NatKernel, IcmpErrorsAndEchoIds) {
  Model m;
  // A masqueraded UDP flow; the server answers port unreachable quoting
  // the datagram as it saw it.
  const Bytes out_udp = check_forward(m, "docker0", udp(dh::kRedisIp, kServer, 40000, 53), *outside_);
  check_forward(m, "eth0", icmp_error(kServer, dh::kHostIp, 3, 3, out_udp, out_udp.size() - 20), *redis_);
  // A masqueraded TCP SYN; a router on the way answers time exceeded
  // quoting 8 bytes, then the whole SYN (the inner TCP checksum is
  // rewritten only when quoted).
  const Bytes out_syn = check_forward(m, "docker0", syn(dh::kWebIp, kServer, 41000, 443), *outside_);
  check_forward(m, "eth0", icmp_error(dh::kGatewayIp, dh::kHostIp, 11, 0, out_syn, 8), *web_);
  check_forward(m, "eth0", icmp_error(dh::kGatewayIp, dh::kHostIp, 11, 0, out_syn, out_syn.size() - 20), *web_);
  // A DNATed flow; the container rejects it: the error leaves from the
  // public address and quotes the packet as the client sent it.
  const Bytes in_udp = check_forward(m, "eth0", udp(kClient, dh::kHostIp, 42000, 5353), *dns_);
  const Bytes rej = check_forward(m, "br-5c0a8c6e1d2f",
                                  icmp_error(dh::kDnsIp, kClient, 3, 3, in_udp, in_udp.size() - 20), *outside_);
  EXPECT_EQ(src_ip(rej), dh::kHostIp);

  // Pings with the same id from two containers: the second id moves.
  check_forward(m, "docker0", ping(dh::kRedisIp, kServer, 0x1234), *outside_);
  const InjectedFrame f = frame_to_host("docker0", ping(dh::kWebIp, kServer, 0x1234));
  send(f);
  const Bytes kernel = outside_->one();
  ASSERT_FALSE(kernel.empty());
  const uint16_t id = load_be16(kernel.data() + 24);
  EXPECT_NE(id, 0x1234);
  const Target given = snat(dh::kHostIp, dh::kHostIp, false, id, id);
  const Model::Out out = m.forward(f, &given);
  ASSERT_TRUE(out.forwarded) << out.why;
  EXPECT_TRUE(same_packet(kernel, out.ip));
  check_forward(m, "eth0", ping(kServer, dh::kHostIp, id, true), *web_);
  check_forward(m, "eth0", ping(kServer, dh::kHostIp, 0x1234, true), *redis_);
  // An error about the moved ping gets its quoted id back.
  check_forward(m, "eth0", icmp_error(dh::kGatewayIp, dh::kHostIp, 11, 0, kernel, kernel.size() - 20), *web_);
  for (Capture* c : {outside_, redis_, web_, dns_}) c->expect_quiet();
}

}  // namespace
}  // namespace nfb
