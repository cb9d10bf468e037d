// The traffic scenarios of the netfilter differential tests. See scenarios.h.
#include "tests/support/scenarios.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "packet/byte_order.h"
#include "packet/headers.h"

namespace nfb {

// ---------------------------------------------------------------- rulesets

std::string bundled_ruleset(std::string_view file_name) {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  const std::string path =
      std::string(root != nullptr ? root : ".") + "/data/rulesets/" + std::string(file_name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (is NFB_SOURCE_ROOT set?)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

struct Token {
  std::string_view text;
  size_t at;  // offset in the line
};

std::vector<Token> tokens_of(std::string_view line) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back({line.substr(start, i - start), start});
  }
  return out;
}

// The chain a rule line appends to ("-A CHAIN ..." or "[p:b] -A CHAIN ..."),
// or "" for any other line.
std::string_view rule_chain(std::string_view line) {
  const std::vector<Token> t = tokens_of(line);
  size_t i = 0;
  if (!t.empty() && t[0].text.starts_with('[')) i = 1;
  if (t.size() >= i + 2 && t[i].text == "-A") return t[i + 1].text;
  return {};
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void apply_one(std::vector<std::string>& lines, std::string_view command) {
  const std::vector<Token> t = tokens_of(command);
  const auto bad = [&command](const std::string& why) {
    return std::invalid_argument("iptables command \"" + std::string(command) + "\": " + why);
  };
  if (t.empty() || (t[0].text != "iptables" && t[0].text != "iptables-legacy")) {
    throw bad("expected iptables or iptables-legacy");
  }
  size_t i = 1;
  std::string table = "filter";
  if (i + 1 < t.size() && (t[i].text == "-t" || t[i].text == "--table")) {
    table = std::string(t[i + 1].text);
    i += 2;
  }
  if (i + 1 >= t.size()) throw bad("expected -I CHAIN or -A CHAIN");
  const bool insert = t[i].text == "-I" || t[i].text == "--insert";
  if (!insert && t[i].text != "-A" && t[i].text != "--append") throw bad("only -I and -A are supported");
  const std::string chain(t[i + 1].text);
  i += 2;
  size_t position = 1;
  if (insert && i < t.size() && all_digits(t[i].text)) {
    position = static_cast<size_t>(std::stoul(std::string(t[i].text)));
    ++i;
  }
  if (i >= t.size()) throw bad("expected a rule specification");
  const std::string spec(command.substr(t[i].at));
  std::string rule = "-A " + chain + " " + spec;
  while (!rule.empty() && (rule.back() == ' ' || rule.back() == '\t' || rule.back() == '\r')) rule.pop_back();

  // Find the table block, the chain's declaration and its rules.
  size_t begin = lines.size();
  for (size_t l = 0; l < lines.size(); ++l) {
    if (lines[l] == "*" + table) {
      begin = l;
      break;
    }
  }
  if (begin == lines.size()) throw bad("no *" + table + " table in the ruleset");
  size_t commit = lines.size();
  bool declared = false;
  std::vector<size_t> rules;
  for (size_t l = begin + 1; l < lines.size(); ++l) {
    if (lines[l] == "COMMIT") {
      commit = l;
      break;
    }
    if (lines[l].starts_with(":" + chain + " ")) declared = true;
    if (rule_chain(lines[l]) == chain) rules.push_back(l);
  }
  if (commit == lines.size()) throw bad("table " + table + " has no COMMIT");
  if (!declared) throw bad("chain " + chain + " is not declared in table " + table);
  size_t at = 0;
  if (insert && position >= 1 && position <= rules.size()) {
    at = rules[position - 1];
  } else if (!insert || position == rules.size() + 1) {
    at = rules.empty() ? commit : rules.back() + 1;
  } else {
    throw bad("position " + std::to_string(position) + " beyond the chain's " + std::to_string(rules.size()) +
              " rules");
  }
  lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at), rule);
}

// The one command line of docker-user-fix.rules that contains every string
// of `with` and none of `without`.
std::string fix_rule(std::initializer_list<std::string_view> with,
                     std::initializer_list<std::string_view> without = {}) {
  std::string found;
  int matches = 0;
  for (const std::string& line : split_lines(bundled_ruleset("docker-user-fix.rules"))) {
    if (line.empty() || line.starts_with('#')) continue;
    bool ok = true;
    for (const std::string_view w : with) ok = ok && line.find(w) != std::string::npos;
    for (const std::string_view w : without) ok = ok && line.find(w) == std::string::npos;
    if (ok) {
      found = line;
      ++matches;
    }
  }
  if (matches != 1) {
    throw std::runtime_error("docker-user-fix.rules: expected exactly one command matching, found " +
                             std::to_string(matches));
  }
  return found;
}

}  // namespace

std::string apply_iptables_commands(std::string_view save_text, std::string_view commands) {
  std::vector<std::string> lines = split_lines(save_text);
  for (const std::string& c : split_lines(commands)) {
    const std::vector<Token> t = tokens_of(c);
    if (t.empty() || t[0].text.starts_with('#')) continue;
    apply_one(lines, c);
  }
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// ---------------------------------------------------------------- frame building

namespace {

namespace dh = docker_host;
using test::Bytes;
using test::ip4;
using test::L4Checksum;

constexpr uint32_t kHost = dh::kHostIp;
constexpr uint32_t kExampleCom = ip4(93, 184, 216, 34);
constexpr uint32_t kPublicDns = ip4(8, 8, 8, 8);
constexpr uint32_t kFarDns = ip4(192, 0, 2, 53);
constexpr uint32_t kUnknownServer = ip4(192, 0, 2, 99);
constexpr uint32_t kLocalhost = ip4(127, 0, 0, 1);
constexpr uint8_t kOutsideTtl = 57;  // clients and servers a few hops away
constexpr uint8_t kLocalTtl = 64;    // containers

constexpr uint8_t kSyn = tcp_flag::kSyn;
constexpr uint8_t kAck = tcp_flag::kAck;
constexpr uint8_t kFin = tcp_flag::kFin;
constexpr uint8_t kRst = tcp_flag::kRst;
constexpr uint8_t kPsh = tcp_flag::kPsh;
constexpr uint8_t kUrg = tcp_flag::kUrg;

Bytes text_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Raw mt19937 output: the standard fixes the sequence (unlike the
// distributions), so the frames are the same everywhere.
// Note: C++ leaves the order in which a call's arguments are evaluated to
// the compiler, so two draws from one Rng must never sit in the arguments of
// one call (g++ and clang++ would build different frames): draw into named
// values first.
class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  uint32_t next() { return static_cast<uint32_t>(gen_()); }
  uint16_t next16() { return static_cast<uint16_t>(next() >> 16); }
  /// An ephemeral port from Linux's default range 32768..60999.
  uint16_t port() { return static_cast<uint16_t>(32768 + next() % (60999 - 32768 + 1)); }

 private:
  std::mt19937 gen_;
};

struct Endpoint {
  uint32_t ip;
  uint16_t port;
};

class Traffic {
 public:
  explicit Traffic(uint32_t seed) : rng_(seed) {}
  Rng& rng() { return rng_; }
  void add(std::string_view ingress, const Bytes& ip_packet) {
    last_ = ip_packet;
    frames_.push_back(frame_to_host(ingress, ip_packet));
    if (!direct_ || ip_packet.size() < 20) return;
    // On-link: a container sends to a neighbour on its bridge by the
    // neighbour's MAC, not the bridge's.
    const uint32_t dst = load_be32(ip_packet.data() + 16);
    for (const dh::Peer& p : dh::kPeers) {
      if (p.ingress == ingress && p.ip == dst && ingress != dh::kEth0) {
        std::copy(p.mac.begin(), p.mac.end(), frames_.back().bytes.begin());
      }
    }
  }
  /// While on, frames between containers of one bridge go station to
  /// station (destination MAC the other container's), as on-link traffic
  /// does; off (the default), every frame is addressed to the host.
  void set_direct(bool on) { direct_ = on; }
  /// The last IP packet added, sent again, arriving on `ingress`.
  void repeat_last(std::string_view ingress) { add(ingress, Bytes(last_)); }
  std::vector<InjectedFrame> take() { return std::move(frames_); }

 private:
  Rng rng_;
  std::vector<InjectedFrame> frames_;
  Bytes last_;
  bool direct_ = false;
};

Bytes udp_packet(Endpoint src, Endpoint dst, const Bytes& payload, uint16_t ip_id, uint8_t ttl,
                 L4Checksum checksum = L4Checksum::Fill) {
  return test::ipv4({.src = src.ip,
                     .dst = dst.ip,
                     .proto = kProtoUdp,
                     .ttl = ttl,
                     .id = ip_id,
                     .df = true,
                     .l4_checksum = checksum},
                    test::udp({.sport = src.port, .dport = dst.port, .payload = payload}));
}

Bytes icmp_packet(uint32_t src, uint32_t dst, const Bytes& icmp, uint16_t ip_id, uint8_t ttl,
                  L4Checksum checksum = L4Checksum::Fill) {
  return test::ipv4(
      {.src = src, .dst = dst, .proto = kProtoIcmp, .ttl = ttl, .id = ip_id, .l4_checksum = checksum}, icmp);
}

// A DNS query for `name`, type A, class IN, recursion desired.
Bytes dns_query(uint16_t id, std::string_view name) {
  Bytes b;
  test::put16(b, id);
  test::put16(b, 0x0100);
  test::put16(b, 1);
  test::put16(b, 0);
  test::put16(b, 0);
  test::put16(b, 0);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    test::put8(b, static_cast<uint8_t>(dot - start));
    for (size_t i = start; i < dot; ++i) test::put8(b, static_cast<uint8_t>(name[i]));
    start = dot + 1;
  }
  test::put8(b, 0);
  test::put16(b, 1);  // A
  test::put16(b, 1);  // IN
  return b;
}

// The answer to dns_query(id, name): one A record.
Bytes dns_answer(uint16_t id, std::string_view name, uint32_t addr) {
  Bytes b = dns_query(id, name);
  test::set16(b, 2, 0x8180);  // response, recursion desired and available
  test::set16(b, 6, 1);       // one answer
  test::put16(b, 0xc00c);     // name: pointer to the question
  test::put16(b, 1);
  test::put16(b, 1);
  test::put32(b, 300);
  test::put16(b, 4);
  test::put32(b, addr);
  return b;
}

// One TCP connection as its segments arrive at the host. Each side knows
// the interface its segments arrive on and the addresses they carry there
// (a DNAT'd connection's server side is the container: post-DNAT tuple; a
// masqueraded connection's server side answers the host's address), and its
// next sequence number; every segment acknowledges all the other side sent.
class TcpConversation {
 public:
  enum Who { kClient = 0, kServer = 1 };

  struct Side {
    std::string_view ingress;
    Endpoint self;   // source of its segments
    Endpoint other;  // destination of its segments
    uint8_t ttl;
  };

  TcpConversation(Traffic& traffic, Side client, Side server) : traffic_(traffic) {
    Rng& rng = traffic.rng();
    sides_[kClient] = State{client, rng.next(), 0, rng.next16(), rng.next()};
    sides_[kServer] = State{server, rng.next(), 0, rng.next16(), rng.next()};
    // Until a SYN is sent, the connection is "already running" (for
    // mid-stream pick-ups): both sides are past their SYN.
    for (State& s : sides_) s.nxt = s.isn + 1;
  }

  uint32_t next_seq(Who who) const { return sides_[who].nxt; }

  /// The client's SYN; calling it again retransmits it (same sequence number).
  void syn(L4Checksum checksum = L4Checksum::Fill) {
    State& c = sides_[kClient];
    segment(kClient, kSyn, c.isn, 0, 64240, syn_options(c, 0), {}, checksum);
    c.nxt = c.isn + 1;
  }

  /// The server's SYN-ACK.
  void syn_ack() {
    State& s = sides_[kServer];
    segment(kServer, kSyn | kAck, s.isn, sides_[kClient].nxt, 65160, syn_options(s, sides_[kClient].ts), {},
            L4Checksum::Fill);
    s.nxt = s.isn + 1;
  }

  /// A segment from `who` at its current sequence number, acknowledging the
  /// other side when `flags` has ACK; the sequence advances by the payload
  /// and by FIN.
  void send(Who who, uint8_t flags, const Bytes& payload = {}, L4Checksum checksum = L4Checksum::Fill) {
    State& me = sides_[who];
    const uint32_t ack = (flags & kAck) != 0 ? other(who).nxt : 0;
    segment(who, flags, me.nxt, ack, 502, ts_option(me, other(who).ts), payload, checksum);
    me.nxt += static_cast<uint32_t>(payload.size()) + ((flags & kFin) != 0 ? 1U : 0U);
  }

  /// Like send(), but the segment's datagram is sent without DF and cut into
  /// fragments on the way (a router with a smaller MTU): `pieces` are
  /// (offset, length) of its IP payload, in arrival order.
  void send_fragmented(Who who, uint8_t flags, const Bytes& payload,
                       std::initializer_list<std::pair<size_t, size_t>> pieces) {
    State& me = sides_[who];
    const uint32_t ack = (flags & kAck) != 0 ? other(who).nxt : 0;
    const Bytes whole = build(who, flags, me.nxt, ack, 502, ts_option(me, other(who).ts), payload,
                              L4Checksum::Fill, /*df=*/false);
    for (const auto& [off, n] : pieces) traffic_.add(me.side.ingress, test::fragment(whole, off, n));
    me.nxt += static_cast<uint32_t>(payload.size()) + ((flags & kFin) != 0 ? 1U : 0U);
  }

  /// A segment at an explicit sequence number (nothing advances).
  void send_at(Who who, uint8_t flags, uint32_t seq) {
    const uint32_t ack = (flags & kAck) != 0 ? other(who).nxt : 0;
    segment(who, flags, seq, ack, 0, {}, {}, L4Checksum::Fill);
  }

  void handshake() {
    syn();
    syn_ack();
    send(kClient, kAck);
  }

  /// FIN from the client, ACK, FIN from the server, last ACK.
  void close() {
    send(kClient, kFin | kAck);
    send(kServer, kAck);
    send(kServer, kFin | kAck);
    send(kClient, kAck);
  }

 private:
  struct State {
    Side side;
    uint32_t isn;
    uint32_t nxt;
    uint16_t ip_id;
    uint32_t ts;  // last timestamp value sent
  };

  State& other(Who who) { return sides_[who == kClient ? kServer : kClient]; }

  static Bytes syn_options(State& s, uint32_t ts_echo) {
    Bytes o{2, 4};  // MSS 1460
    test::put16(o, 1460);
    test::put(o, Bytes{4, 2, 8, 10});  // SACK permitted, timestamps
    test::put32(o, ++s.ts);
    test::put32(o, ts_echo);
    test::put(o, Bytes{1, 3, 3, 7});  // NOP, window scale 7
    return o;
  }

  static Bytes ts_option(State& s, uint32_t ts_echo) {
    Bytes o{1, 1, 8, 10};  // NOP, NOP, timestamps
    test::put32(o, ++s.ts);
    test::put32(o, ts_echo);
    return o;
  }

  void segment(Who who, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t window, const Bytes& options,
               const Bytes& payload, L4Checksum checksum) {
    traffic_.add(sides_[who].side.ingress, build(who, flags, seq, ack, window, options, payload, checksum, true));
  }

  // The IP packet of one segment from `who` (its IP id advances).
  Bytes build(Who who, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t window, const Bytes& options,
              const Bytes& payload, L4Checksum checksum, bool df) {
    State& me = sides_[who];
    const Bytes seg = test::tcp({.sport = me.side.self.port,
                                 .dport = me.side.other.port,
                                 .seq = seq,
                                 .ack = ack,
                                 .flags = flags,
                                 .window = window,
                                 .options = options,
                                 .payload = payload});
    return test::ipv4({.src = me.side.self.ip,
                       .dst = me.side.other.ip,
                       .proto = kProtoTcp,
                       .ttl = me.side.ttl,
                       .id = me.ip_id++,
                       .df = df,
                       .l4_checksum = checksum},
                      seg);
  }

  Traffic& traffic_;
  std::array<State, 2> sides_{};
};

using Tcp = TcpConversation;

// An outside client of a published service on the host, answered by a
// container on `bridge`.
TcpConversation published_tcp(Traffic& t, uint32_t client, uint16_t host_port, std::string_view bridge,
                              Endpoint container) {
  const Endpoint c{client, t.rng().port()};
  return TcpConversation(t, {dh::kEth0, c, {kHost, host_port}, kOutsideTtl},
                         {bridge, container, c, kLocalTtl});
}

// A container's connection to an outside server, masqueraded on eth0
// (the port is kept: the scenarios never reuse one).
TcpConversation egress_tcp(Traffic& t, std::string_view bridge, uint32_t container, Endpoint server) {
  const Endpoint c{container, t.rng().port()};
  return TcpConversation(t, {bridge, c, server, kLocalTtl},
                         {dh::kEth0, server, {kHost, c.port}, kOutsideTtl});
}

// A one-off TCP segment with no conversation around it.
void lone_segment(Traffic& t, std::string_view ingress, Endpoint src, Endpoint dst, uint8_t flags,
                  uint8_t ttl = kOutsideTtl) {
  Rng& r = t.rng();
  const uint32_t seq = r.next();
  const uint32_t ack = (flags & kAck) != 0 ? r.next() : 0;
  const Bytes seg = test::tcp({.sport = src.port,
                               .dport = dst.port,
                               .seq = seq,
                               .ack = ack,
                               .flags = flags,
                               .window = (flags & kSyn) != 0 ? uint16_t{64240} : uint16_t{502}});
  t.add(
      ingress,
      test::ipv4({.src = src.ip, .dst = dst.ip, .proto = kProtoTcp, .ttl = ttl, .id = r.next16(), .df = true},
                 seg));
}

const Bytes kRedisPing = text_bytes("*1\r\n$4\r\nPING\r\n");
const Bytes kRedisPong = text_bytes("+PONG\r\n");

// ------------------------------------------------ fragments

// A UDP datagram that may be fragmented (no DF).
Bytes udp_datagram(Endpoint src, Endpoint dst, const Bytes& payload, uint16_t ip_id, uint8_t ttl) {
  return test::ipv4({.src = src.ip, .dst = dst.ip, .proto = kProtoUdp, .ttl = ttl, .id = ip_id},
                    test::udp({.sport = src.port, .dport = dst.port, .payload = payload}));
}

// A fragment of `whole` with an explicit MF bit (test::fragment() sets MF
// unless the piece ends the payload): IP payload bytes [off, off + n),
// zero bytes beyond the payload, header checksum fixed.
Bytes fragment_mf(const Bytes& whole, size_t off, size_t n, bool mf) {
  const size_t hl = static_cast<size_t>(whole.at(0) & 0x0f) * 4;
  Bytes f(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(hl));
  for (size_t i = 0; i < n; ++i) f.push_back(hl + off + i < whole.size() ? whole[hl + off + i] : 0);
  test::set16(f, 2, static_cast<uint16_t>(f.size()));
  uint16_t frag = static_cast<uint16_t>(test::get16(whole, 6) & ip_frag::kDontFragment);
  frag = static_cast<uint16_t>(frag | (off / 8) | (mf ? ip_frag::kMoreFragments : 0));
  test::set16(f, 6, frag);
  test::fix_ipv4_checksum(f);
  return f;
}

// Sets TOS and/or TTL (>= 0) of an IP packet, checksum fixed.
Bytes with_tos_ttl(Bytes ip, int tos, int ttl) {
  if (tos >= 0) ip.at(1) = static_cast<uint8_t>(tos);
  if (ttl >= 0) ip.at(8) = static_cast<uint8_t>(ttl);
  test::fix_ipv4_checksum(ip);
  return ip;
}

// Cuts `whole` into fragments of `size` payload bytes (a multiple of 8; the
// last one shorter) and adds them in `order` (indices of the pieces; a
// repeated index sends that fragment again).
void add_fragments(Traffic& t, std::string_view ingress, const Bytes& whole, size_t size,
                   std::initializer_list<size_t> order) {
  const size_t payload = whole.size() - static_cast<size_t>(whole.at(0) & 0x0f) * 4;
  for (const size_t i : order) {
    const size_t off = i * size;
    if (off >= payload) throw std::invalid_argument("add_fragments: piece beyond the datagram");
    t.add(ingress, test::fragment(whole, off, std::min(size, payload - off)));
  }
}

// Adds explicit pieces (offset, length) of `whole`'s IP payload, in order.
void add_pieces(Traffic& t, std::string_view ingress, const Bytes& whole,
                std::initializer_list<std::pair<size_t, size_t>> pieces) {
  for (const auto& [off, n] : pieces) t.add(ingress, test::fragment(whole, off, n));
}

}  // namespace

std::vector<InjectedFrame> seed_case_frames() {
  Traffic t(0x5eed0001);
  for (uint8_t i = 0; i < 3; ++i) {
    Tcp c = published_tcp(t, ip4(203, 0, 113, static_cast<uint8_t>(10 + i)), 10000, dh::kDocker0,
                          {dh::kRedisIp, 6379});
    c.syn();
    c.syn();  // retransmitted before the answer comes
    c.syn_ack();
    c.send(Tcp::kClient, kAck);
    c.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    c.send(Tcp::kServer, kPsh | kAck, kRedisPong);
    c.close();
  }
  return t.take();
}

namespace {

// One SCTP association as its packets arrive at the host: like
// TcpConversation, each side knows its ingress and the addresses its packets
// carry there. Each side draws its initiate tag and first TSN; a packet
// carries the peer's tag (an INIT carries 0; an ABORT or SHUTDOWN_COMPLETE
// with the T bit its sender's own), and its DATA and SACK chunks number and
// acknowledge TSNs as a real endpoint would.
class SctpAssociation {
 public:
  enum Who { kClient = 0, kServer = 1 };
  using Side = TcpConversation::Side;

  SctpAssociation(Traffic& traffic, Side client, Side server) : traffic_(traffic) {
    Rng& rng = traffic.rng();
    for (State* s : {&sides_[kClient], &sides_[kServer]}) {
      s->tag = rng.next() | 1U;  // never 0
      s->tsn = rng.next();
    }
    sides_[kClient].side = client;
    sides_[kServer].side = server;
  }

  uint32_t tag(Who who) const { return sides_[who].tag; }

  /// A packet from `who` with these chunks and this verification tag
  /// (default: the peer's tag).
  void send(Who who, const std::vector<Bytes>& chunks, std::optional<uint32_t> vtag = std::nullopt,
            L4Checksum checksum = L4Checksum::Fill) {
    const State& s = sides_[who];
    const Bytes packet = test::sctp({.sport = s.side.self.port,
                                     .dport = s.side.other.port,
                                     .vtag = vtag.value_or(sides_[1 - who].tag),
                                     .chunks = chunks});
    traffic_.add(s.side.ingress, test::ipv4({.src = s.side.self.ip,
                                             .dst = s.side.other.ip,
                                             .proto = kProtoSctp,
                                             .ttl = s.side.ttl,
                                             .id = traffic_.rng().next16(),
                                             .df = true,
                                             .l4_checksum = checksum},
                                            packet));
  }

  Bytes init() const { return chunk(sctp_chunk_type::kInit, test::sctp_init_value(tag(kClient), sides_[kClient].tsn)); }
  Bytes init_ack() const {
    const Bytes cookie = {0x00, 0x07, 0x00, 0x14, 'n', 'f', 'b', 'e', 'n', 'c', 'h', '-',
                          'c', 'o', 'o', 'k', 'i', 'e', '!', '!'};  // State Cookie parameter
    return chunk(sctp_chunk_type::kInitAck, test::sctp_init_value(tag(kServer), sides_[kServer].tsn, cookie));
  }
  static Bytes cookie_echo() { return chunk(sctp_chunk_type::kCookieEcho, Bytes(text_bytes("nfbench-cookie!!"))); }
  static Bytes cookie_ack() { return chunk(sctp_chunk_type::kCookieAck); }
  /// A DATA chunk from `who` (its next TSN, stream 0, unordered bits B|E).
  Bytes data(Who who, std::string_view text) {
    State& s = sides_[who];
    Bytes v;
    test::put32(v, s.tsn++);
    test::put16(v, 0);
    test::put16(v, s.ssn++);
    test::put32(v, 0);  // payload protocol id
    test::put(v, text_bytes(text));
    return chunk(sctp_chunk_type::kData, v, 0x03);
  }
  /// A SACK from `who` acknowledging everything the peer sent.
  Bytes sack(Who who) const {
    Bytes v;
    test::put32(v, sides_[1 - who].tsn - 1);
    test::put32(v, 106496);
    test::put16(v, 0);
    test::put16(v, 0);
    return chunk(sctp_chunk_type::kSack, v);
  }
  Bytes shutdown(Who who) const {
    Bytes v;
    test::put32(v, sides_[1 - who].tsn - 1);
    return chunk(sctp_chunk_type::kShutdown, v);
  }
  static Bytes heartbeat(uint8_t type) {  // HEARTBEAT or HEARTBEAT_ACK with one Heartbeat Info
    return chunk(type, Bytes{0x00, 0x01, 0x00, 0x0c, 'p', 'a', 't', 'h', '-', 'o', 'n', 'e'});
  }
  static Bytes chunk(uint8_t type, const Bytes& value = {}, uint8_t flags = 0) {
    return test::sctp_chunk({.type = type, .flags = flags, .value = value});
  }

 private:
  struct State {
    Side side{};
    uint32_t tag = 0;
    uint32_t tsn = 0;
    uint16_t ssn = 0;
  };
  Traffic& traffic_;
  State sides_[2];
};

}  // namespace

std::vector<InjectedFrame> sctp_traffic_frames() {
  Traffic t(0x73637470);
  Rng& r = t.rng();
  using Sctp = SctpAssociation;
  namespace ct = sctp_chunk_type;  // packet/headers.h
  const auto published = [&t](uint8_t client_host) {
    const Endpoint c{ip4(203, 0, 113, client_host), t.rng().port()};
    return Sctp(t, {dh::kEth0, c, {kHost, 10000}, kOutsideTtl},
                {dh::kDocker0, {dh::kRedisIp, 6379}, c, kLocalTtl});
  };

  // 1. A whole association through published SCTP 10000 (DNAT to redis's
  //    6379): the four-way handshake, DATA and SACK both ways, a HEARTBEAT
  //    and its ACK, the three-way shutdown.
  {
    Sctp a = published(60);
    a.send(Sctp::kClient, {a.init()}, 0);
    a.send(Sctp::kServer, {a.init_ack()});
    a.send(Sctp::kClient, {Sctp::cookie_echo()});
    a.send(Sctp::kServer, {Sctp::cookie_ack()});
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "PING")});
    a.send(Sctp::kServer, {a.sack(Sctp::kServer)});
    a.send(Sctp::kServer, {a.data(Sctp::kServer, "PONG")});
    a.send(Sctp::kClient, {a.sack(Sctp::kClient)});
    a.send(Sctp::kClient, {Sctp::heartbeat(ct::kHeartbeat)});
    a.send(Sctp::kServer, {Sctp::heartbeat(ct::kHeartbeatAck)});
    a.send(Sctp::kClient, {a.shutdown(Sctp::kClient)});
    a.send(Sctp::kServer, {Sctp::chunk(ct::kShutdownAck)});
    a.send(Sctp::kClient, {Sctp::chunk(ct::kShutdownComplete)});
  }
  // 2. An INIT with a bad CRC32c, then good, retransmitted; an INIT_ACK with
  //    the wrong tag, then right; COOKIE_ECHO and COOKIE_ACK with bundled
  //    DATA and SACK; DATA with a wrong tag, a zero-length chunk, an INIT
  //    bundled after DATA; an ABORT from redis; DATA after it.
  {
    Sctp a = published(61);
    a.send(Sctp::kClient, {a.init()}, 0, L4Checksum::Corrupt);
    a.send(Sctp::kClient, {a.init()}, 0);
    a.send(Sctp::kClient, {a.init()}, 0);
    a.send(Sctp::kServer, {a.init_ack()}, a.tag(Sctp::kClient) ^ 0x00ff00ffU);
    a.send(Sctp::kServer, {a.init_ack()});
    a.send(Sctp::kClient, {Sctp::cookie_echo(), a.data(Sctp::kClient, "HELLO")});
    a.send(Sctp::kServer, {Sctp::cookie_ack(), a.sack(Sctp::kServer)});
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "WRONG TAG")}, a.tag(Sctp::kServer) + 1);
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "X"), test::sctp_chunk({.type = ct::kData, .length = 0})});
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "Y"), a.init()});
    a.send(Sctp::kServer, {Sctp::chunk(ct::kAbort)});
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "AFTER ABORT")});
  }
  // 3. Out of the blue, to published 10000: DATA, ABORT, a COOKIE_ECHO with
  //    some tag (all INVALID); a SHUTDOWN_ACK (opens an entry, DNAT'd);
  //    a HEARTBEAT opening a secondary path's entry and redis's HEARTBEAT_ACK.
  {
    Sctp a = published(62);
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "OOTB")});
    a.send(Sctp::kClient, {Sctp::chunk(ct::kAbort)});
    a.send(Sctp::kClient, {Sctp::cookie_echo()});
    Sctp b = published(62);
    b.send(Sctp::kClient, {Sctp::chunk(ct::kShutdownAck)});
    Sctp h = published(63);
    h.send(Sctp::kClient, {Sctp::heartbeat(ct::kHeartbeat)});
    h.send(Sctp::kServer, {Sctp::heartbeat(ct::kHeartbeatAck)});
    h.send(Sctp::kClient, {h.data(Sctp::kClient, "SECOND PATH")});
  }
  // 4. To the host's own (unpublished) port 9999, where no SCTP stack
  //    answers: an INIT twice, an INIT with a bad CRC32c, an 8-byte SCTP
  //    header, a packet with no chunk.
  {
    const Endpoint c{ip4(203, 0, 113, 64), r.port()};
    Sctp a(t, {dh::kEth0, c, {kHost, 9999}, kOutsideTtl}, {dh::kEth0, {kHost, 9999}, c, kOutsideTtl});
    a.send(Sctp::kClient, {a.init()}, 0);
    a.send(Sctp::kClient, {a.init()}, 0);
    Sctp b(t, {dh::kEth0, {c.ip, r.port()}, {kHost, 9999}, kOutsideTtl},
           {dh::kEth0, {kHost, 9999}, c, kOutsideTtl});
    b.send(Sctp::kClient, {b.init()}, 0, L4Checksum::Corrupt);
    Bytes header8;
    test::put16(header8, c.port);
    test::put16(header8, 9999);
    test::put32(header8, 0);
    t.add(dh::kEth0, test::ipv4({.src = c.ip, .dst = kHost, .proto = kProtoSctp, .ttl = kOutsideTtl,
                                 .id = r.next16(), .df = true}, header8));
    a.send(Sctp::kClient, {});
  }
  // 5. redis's egress association to 93.184.216.34:9899 through MASQUERADE,
  //    answered on eth0; an ICMP port unreachable about it (RELATED, sent
  //    back to redis); redis aborts it, reflecting its own tag (T bit).
  {
    const Endpoint self{dh::kRedisIp, r.port()};
    const Endpoint far{kExampleCom, 9899};
    Sctp a(t, {dh::kDocker0, self, far, kLocalTtl}, {dh::kEth0, far, {kHost, self.port}, kOutsideTtl});
    a.send(Sctp::kClient, {a.init()}, 0);
    a.send(Sctp::kServer, {a.init_ack()});
    a.send(Sctp::kClient, {Sctp::cookie_echo()});
    a.send(Sctp::kServer, {Sctp::cookie_ack()});
    a.send(Sctp::kClient, {a.data(Sctp::kClient, "GET /")});
    const Bytes quoted = test::ipv4({.src = kHost, .dst = far.ip, .proto = kProtoSctp, .ttl = 63, .id = r.next16(),
                                     .df = true},
                                    test::sctp({.sport = self.port, .dport = far.port, .vtag = a.tag(Sctp::kServer),
                                                .chunks = {a.data(Sctp::kClient, "GET /")}}));
    t.add(dh::kEth0, icmp_packet(far.ip, kHost, test::icmp_error(3, 3, quoted), r.next16(), kOutsideTtl));
    a.send(Sctp::kClient, {Sctp::chunk(ct::kAbort, {}, sctp_chunk_type::kFlagT)}, a.tag(Sctp::kClient));
  }
  const auto udplite = [&t, &r](std::string_view ingress, Endpoint src, Endpoint dst, uint16_t coverage,
                                L4Checksum checksum, uint8_t ttl) {
    const Bytes l4 = test::udplite({.sport = src.port, .dport = dst.port, .coverage = coverage,
                                    .payload = text_bytes("lite payload")});
    t.add(ingress, test::ipv4({.src = src.ip, .dst = dst.ip, .proto = kProtoUdplite, .ttl = ttl, .id = r.next16(),
                               .df = true, .l4_checksum = checksum},
                              l4));
  };
  // 6. UDP-Lite to the host's port 7000: summed as the kernel verifies it
  //    (protocol 17 in the pseudo header), summed as RFC 3828 says (136),
  //    a coverage of 4, a checksum of 0.
  {
    const Endpoint c{ip4(203, 0, 113, 65), r.port()};
    udplite(dh::kEth0, c, {kHost, 7000}, 8, L4Checksum::UdpliteAsUdp, kOutsideTtl);
    udplite(dh::kEth0, c, {kHost, 7000}, 8, L4Checksum::Fill, kOutsideTtl);
    udplite(dh::kEth0, c, {kHost, 7000}, 4, L4Checksum::UdpliteAsUdp, kOutsideTtl);
    udplite(dh::kEth0, c, {kHost, 7000}, 8, L4Checksum::Leave, kOutsideTtl);
  }
  // 7. redis's UDP-Lite to 8.8.8.8:7000 through MASQUERADE (coverage 0: the
  //    whole datagram), the answer on eth0, and redis again (a stream now).
  {
    const Endpoint self{dh::kRedisIp, r.port()};
    const Endpoint far{kPublicDns, 7000};
    udplite(dh::kDocker0, self, far, 0, L4Checksum::UdpliteAsUdp, kLocalTtl);
    udplite(dh::kEth0, far, {kHost, self.port}, 0, L4Checksum::UdpliteAsUdp, kOutsideTtl);
    udplite(dh::kDocker0, self, far, 0, L4Checksum::UdpliteAsUdp, kLocalTtl);
  }
  // 8. A DCCP-Request to the host's port 5000: this kernel has no DCCP
  //    tracker (removed in 6.16), so generic tracking, ports unread.
  {
    Bytes dccp;
    test::put16(dccp, r.port());
    test::put16(dccp, 5000);
    test::put8(dccp, 3);     // data offset: 3 words
    test::put8(dccp, 0);     // CCVal, CsCov
    test::put16(dccp, 0);    // checksum (nobody checks it here)
    test::put32(dccp, 0x00000001);  // type Request (0), X = 0, 24-bit sequence number 1
    t.add(dh::kEth0, test::ipv4({.src = ip4(203, 0, 113, 66), .dst = kHost, .proto = kProtoDccp, .ttl = kOutsideTtl,
                                 .id = r.next16(), .df = true},
                                dccp));
  }
  // GRE: a header (flags/version, protocol), PPTP's payload length and call
  // id for version 1, and an inner IPv4 header's first bytes as payload.
  const auto gre = [&t, &r](std::string_view ingress, uint32_t src, uint32_t dst, uint16_t version,
                            uint16_t protocol, uint16_t call_id, uint8_t ttl, bool short_header = false) {
    Bytes g;
    test::put16(g, version == 1 ? static_cast<uint16_t>(0x2000 | version) : version);  // K bit for PPTP
    test::put16(g, protocol);
    if (!short_header) {
      if (version == 1) {
        test::put16(g, 4);
        test::put16(g, call_id);
      }
      test::put(g, Bytes{0x45, 0x00, 0x00, 0x54});
    }
    t.add(ingress, test::ipv4({.src = src, .dst = dst, .proto = kProtoGre, .ttl = ttl, .id = r.next16(), .df = true},
                              g));
  };
  // 9. redis's GRE (version 0) to 192.0.2.99 through MASQUERADE, the answer
  //    on eth0, redis again (a stream: 180 s, ASSURED).
  gre(dh::kDocker0, dh::kRedisIp, kUnknownServer, 0, 0x0800, 0, kLocalTtl);
  gre(dh::kEth0, kUnknownServer, kHost, 0, 0x0800, 0, kOutsideTtl);
  gre(dh::kDocker0, dh::kRedisIp, kUnknownServer, 0, 0x0800, 0, kLocalTtl);
  // 10. PPTP's GRE (version 1) to the host: call id 7 (its own entry), the
  //     same with an IPv4 payload instead of PPP (INVALID), and a version-0
  //     header of 4 bytes.
  gre(dh::kEth0, ip4(203, 0, 113, 67), kHost, 1, 0x880b, 7, kOutsideTtl);
  gre(dh::kEth0, ip4(203, 0, 113, 67), kHost, 1, 0x0800, 7, kOutsideTtl);
  gre(dh::kEth0, ip4(203, 0, 113, 68), kHost, 0, 0x0800, 0, kOutsideTtl, /*short_header=*/true);
  return t.take();
}

std::vector<InjectedFrame> string_traffic_frames() {
  Traffic t(0x73747269);
  Rng& r = t.rng();
  // 1. Redis over published 10000: PING, lower-case ping, mixed case, a
  //    command to be dropped, the answers, a payload ending in TAIL.
  {
    Tcp c = published_tcp(t, ip4(203, 0, 113, 30), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.handshake();
    c.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("+PONG\r\n"));
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*1\r\n$4\r\nping\r\n"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("+PONG\r\n"));
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*2\r\n$4\r\nEcho\r\n$4\r\nPiNg\r\n"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("$4\r\nPiNg\r\n"));
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*2\r\n$4\r\nECHO\r\n$6\r\nDROPME\r\n"));
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*2\r\n$4\r\nECHO\r\n$4\r\nTAIL"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("$4\r\nTAIL"));
    c.close();
  }
  // 2. A second client whose payload starts one byte later (" *1"), and a
  //    full-size segment with PING at its very end.
  {
    Tcp c = published_tcp(t, ip4(203, 0, 113, 31), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.handshake();
    c.send(Tcp::kClient, kPsh | kAck, text_bytes(" *1\r\n$4\r\nPING\r\n"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("+PONG\r\n"));
    Bytes big(1400, 'x');
    for (size_t i = 0; i < 4; ++i) big[big.size() - 4 + i] = static_cast<uint8_t>("PING"[i]);
    c.send(Tcp::kClient, kPsh | kAck, big);
    c.send(Tcp::kServer, kAck);
    c.close();
  }
  // 3. Published UDP 5353: queries for names with "ping" and "Example" in
  //    them, and dns's answers.
  {
    const Endpoint c{ip4(203, 0, 113, 32), r.port()};
    for (const std::string_view name : {"ping.example.com", "www.EXAMPLE.org"}) {
      const uint16_t id = r.next16();
      const uint16_t ip_id = r.next16();
      t.add(dh::kEth0, udp_packet(c, {kHost, 5353}, dns_query(id, name), ip_id, kOutsideTtl));
      const uint16_t reply_ip_id = r.next16();
      t.add(dh::kBridge2, udp_packet({dh::kDnsIp, 53}, c, dns_answer(id, name, ip4(192, 0, 2, 80)), reply_ip_id,
                                kLocalTtl));
    }
  }
  return t.take();
}

std::vector<InjectedFrame> mixed_traffic_frames() {
  Traffic t(0x6d697865);
  Rng& r = t.rng();
  const auto client = [](uint8_t last) { return ip4(203, 0, 113, last); };

  // 1. Published TCP 10000, answered by redis on docker0.
  for (uint8_t i = 0; i < 2; ++i) {
    Tcp c = published_tcp(t, client(static_cast<uint8_t>(10 + i)), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.handshake();
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("+OK\r\n"));
    if (i == 0)
      c.send_at(Tcp::kClient, kRst, c.next_seq(Tcp::kClient) + 0x40000000U);  // far outside the window
    c.send(Tcp::kClient, kPsh | kAck, text_bytes("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
    c.send(Tcp::kServer, kPsh | kAck, text_bytes("$5\r\nhello\r\n"));
    c.send(Tcp::kClient, kAck);
    c.close();
  }

  // 2. Published UDP 5353, answered by dns on br-5c0a8c6e1d2f.
  {
    const Endpoint c{client(20), r.port()};
    for (uint16_t q = 0; q < 2; ++q) {
      const uint16_t id = r.next16();
      t.add(dh::kEth0, udp_packet(c, {kHost, 5353}, dns_query(id, "example.com"), r.next16(), kOutsideTtl));
      t.add(dh::kBridge2, udp_packet({dh::kDnsIp, 53}, c, dns_answer(id, "example.com", kExampleCom),
                                     r.next16(), kLocalTtl));
    }
  }

  // 3. Unpublished ports on the host's address.
  {
    const Endpoint cl{client(21), r.port()};
    Tcp ssh(t, {dh::kEth0, cl, {kHost, 22}, kOutsideTtl},
            {dh::kEth0, {kHost, 22}, cl, kOutsideTtl});  // never answers
    ssh.syn();
    ssh.syn();
    ssh.syn();
    {
      const uint16_t ip_id = r.next16();
      const Endpoint from{client(21), r.port()};
      t.add(dh::kEth0, udp_packet(from, {kHost, 9999}, test::pattern(16), ip_id, kOutsideTtl));
    }
    lone_segment(t, dh::kEth0, {client(21), r.port()}, {kHost, 6379}, kSyn);
    lone_segment(t, dh::kEth0, {client(21), r.port()}, {kHost, 8080}, kSyn);
  }

  // 4. Direct access to container addresses from outside.
  {
    const Endpoint cl{client(30), r.port()};
    Tcp c(t, {dh::kEth0, cl, {dh::kRedisIp, 6379}, kOutsideTtl},
          {dh::kDocker0, {dh::kRedisIp, 6379}, cl, kLocalTtl});
    c.syn();
    c.syn();
    c.syn_ack();
    c.send(Tcp::kClient, kAck);
    lone_segment(t, dh::kEth0, {client(30), r.port()}, {dh::kRedisIp, 22}, kSyn);
    {
      const uint16_t ip_id = r.next16();
      const uint16_t query_id = r.next16();
      const Endpoint from{client(30), r.port()};
      t.add(dh::kEth0, udp_packet(from, {dh::kDnsIp, 53}, dns_query(query_id, "example.org"), ip_id, kOutsideTtl));
    }
  }

  // 5. Container egress through MASQUERADE, replies on eth0.
  {
    Tcp c = egress_tcp(t, dh::kDocker0, dh::kRedisIp, {kExampleCom, 80});
    c.handshake();
    c.send(
        Tcp::kClient, kPsh | kAck,
        text_bytes("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"));
    Bytes body = text_bytes("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n");
    test::put(body, test::pattern(1000 - 512, 0x20));
    c.send(Tcp::kServer, kAck, Bytes(body.begin(), body.begin() + 512));
    c.send(Tcp::kServer, kPsh | kAck, Bytes(body.begin() + 512, body.end()));
    c.send(Tcp::kClient, kAck);
    c.close();

    const Endpoint web{dh::kWebIp, r.port()};
    const uint16_t id = r.next16();
    t.add(dh::kDocker0,
          udp_packet(web, {kPublicDns, 53}, dns_query(id, "example.com"), r.next16(), kLocalTtl));
    t.add(dh::kEth0, udp_packet({kPublicDns, 53}, {kHost, web.port},
                                dns_answer(id, "example.com", kExampleCom), r.next16(), kOutsideTtl));
  }

  // 6. ICMP echo.
  t.add(dh::kEth0, icmp_packet(client(40), kHost, test::icmp_echo(0x1a2b, 1), r.next16(), kOutsideTtl));
  t.add(dh::kEth0, icmp_packet(client(40), kHost, test::icmp_echo(0x1a2b, 2), r.next16(), kOutsideTtl));
  t.add(dh::kEth0,
        icmp_packet(client(40), dh::kRedisIp, test::icmp_echo(0x1a2c, 1), r.next16(), kOutsideTtl));
  t.add(dh::kDocker0, icmp_packet(dh::kWebIp, kPublicDns, test::icmp_echo(0x0777, 1), r.next16(), kLocalTtl));
  t.add(dh::kEth0, icmp_packet(kPublicDns, kHost, test::icmp_echo(0x0777, 1, true), r.next16(), kOutsideTtl));
  t.add(dh::kDocker0,
        icmp_packet(dh::kRedisIp, dh::kDocker0Ip, test::icmp_echo(0x0abc, 1), r.next16(), kLocalTtl));

  // 7. ICMP errors: about dns's masqueraded UDP flow (RELATED), and about a
  // flow nobody knows.
  {
    const Endpoint dns{dh::kDnsIp, r.port()};
    const uint16_t ip_id = r.next16();
    const Bytes query = dns_query(r.next16(), "example.net");
    t.add(dh::kBridge2, udp_packet(dns, {kFarDns, 53}, query, ip_id, kLocalTtl));
    // What left eth0: source masqueraded to the host (port kept), TTL one less.
    const Bytes left = udp_packet({kHost, dns.port}, {kFarDns, 53}, query, ip_id, kLocalTtl - 1);
    t.add(dh::kEth0, icmp_packet(kFarDns, kHost, test::icmp_error(3, 3, left, left.size() - 20), r.next16(),
                                 kOutsideTtl));
    const uint16_t unknown_ip_id = r.next16();
    const uint16_t unknown_query_id = r.next16();
    const Bytes unknown = udp_packet({kHost, 1111}, {kUnknownServer, 53}, dns_query(unknown_query_id, "example.net"),
                                     unknown_ip_id, kLocalTtl - 1);
    t.add(dh::kEth0,
          icmp_packet(kUnknownServer, kHost, test::icmp_error(3, 3, unknown), r.next16(), kOutsideTtl));
  }

  // 8. Container to host, hairpin to the published port, between bridges.
  {
    const uint16_t ip_id = r.next16();
    const uint16_t query_id = r.next16();
    const Endpoint from{dh::kRedisIp, r.port()};
    t.add(dh::kDocker0, udp_packet(from, {dh::kDocker0Ip, 53}, dns_query(query_id, "redis.local"), ip_id, kLocalTtl));
  }
  lone_segment(t, dh::kDocker0, {dh::kRedisIp, r.port()}, {kHost, 10000}, kSyn, kLocalTtl);
  {
    const uint16_t ip_id = r.next16();
    const uint16_t query_id = r.next16();
    const Endpoint from{dh::kRedisIp, r.port()};
    t.add(dh::kDocker0, udp_packet(from, {dh::kDnsIp, 53}, dns_query(query_id, "dns.local"), ip_id, kLocalTtl));
  }
  lone_segment(t, dh::kBridge2, {dh::kDnsIp, r.port()}, {dh::kWebIp, 80}, kSyn, kLocalTtl);

  // 9. Invalid TCP flag combinations.
  for (const uint8_t flags :
       {uint8_t(kSyn | kFin), uint8_t{0}, uint8_t(kSyn | kRst), uint8_t(kFin | kPsh | kUrg)}) {
    lone_segment(t, dh::kEth0, {client(50), r.port()}, {kHost, 10000}, flags);
  }
  lone_segment(t, dh::kEth0, {client(50), r.port()}, {dh::kWebIp, 80}, kSyn | kFin);

  // 10. Mid-stream pick-ups: a connection already running when the host saw
  // nothing of it, then redis's answer; a lone ACK to a port nobody serves.
  {
    Tcp c = published_tcp(t, client(51), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.send(Tcp::kClient, kAck);
    c.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    c.send(Tcp::kServer, kPsh | kAck, kRedisPong);
    c.send(Tcp::kClient, kAck);
    lone_segment(t, dh::kEth0, {client(51), r.port()}, {kHost, 22}, kAck);
  }

  // 11. Stray RSTs.
  lone_segment(t, dh::kEth0, {client(52), r.port()}, {kHost, 10000}, kRst);
  lone_segment(t, dh::kEth0, {client(52), r.port()}, {kHost, 22}, kRst | kAck);

  // 12. Bad checksums, each followed by the same packet done right.
  {
    Tcp c = published_tcp(t, client(53), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.syn(L4Checksum::Corrupt);
    c.syn();
    c.syn_ack();
    c.send(Tcp::kClient, kAck);

    const Endpoint u{client(53), r.port()};
    const uint16_t id = r.next16();
    const Bytes q = dns_query(id, "example.com");
    t.add(dh::kEth0, udp_packet(u, {kHost, 5353}, q, r.next16(), kOutsideTtl, L4Checksum::Corrupt));
    t.add(dh::kEth0, udp_packet(u, {kHost, 5353}, q, r.next16(), kOutsideTtl));
    t.add(dh::kBridge2,
          udp_packet({dh::kDnsIp, 53}, u, dns_answer(id, "example.com", kExampleCom), r.next16(), kLocalTtl));
    {
      const uint16_t ip_id = r.next16();
      const uint16_t query_id = r.next16();
      const Endpoint from{client(53), r.port()};
      t.add(dh::kEth0, udp_packet(from, {kHost, 5353}, dns_query(query_id, "example.com"), ip_id, kOutsideTtl,
                                  L4Checksum::Leave));  // checksum 0: none
    }
    t.add(dh::kEth0, icmp_packet(client(53), kHost, test::icmp_echo(0x5353, 1), r.next16(), kOutsideTtl,
                                 L4Checksum::Corrupt));
    {
      const Bytes syn = test::tcp({.sport = r.port(), .dport = 10000, .seq = r.next(), .flags = kSyn});
      t.add(dh::kEth0, test::ipv4({.src = client(53),
                                   .dst = kHost,
                                   .proto = kProtoTcp,
                                   .ttl = kOutsideTtl,
                                   .id = r.next16(),
                                   .df = true,
                                   .bad_header_checksum = true},
                                  syn));
    }

    Tcp e = egress_tcp(t, dh::kDocker0, dh::kRedisIp, {kExampleCom, 443});
    e.syn(L4Checksum::Corrupt);
    e.syn();
    e.syn_ack();
    e.send(Tcp::kClient, kAck);
  }

  // 13. The localhost-published port, from outside.
  {
    const Endpoint c{client(70), r.port()};
    Tcp l(t, {dh::kEth0, c, {kLocalhost, 8080}, kOutsideTtl}, {dh::kDocker0, {dh::kWebIp, 80}, c, kLocalTtl});
    l.syn();
    l.syn();
    l.syn_ack();
  }
  return t.take();
}

std::vector<InjectedFrame> fragment_traffic_frames() {
  Traffic t(0x66726167);
  Rng& r = t.rng();
  const auto client = [](uint8_t last) { return ip4(203, 0, 113, last); };
  const Endpoint dns53{dh::kDnsIp, 53};

  // 1. Published UDP 5353: a large query in 2 fragments, in order; dns's
  // answer in 3 fragments, the last one first.
  {
    const Endpoint c{client(80), r.port()};
    const uint16_t id = r.next16();
    Bytes q = dns_query(id, "example.com");
    test::put(q, test::pattern(1900, 0x41));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q, r.next16(), kOutsideTtl), 1480, {0, 1});
    Bytes a = dns_answer(id, "example.com", kExampleCom);
    test::put(a, test::pattern(3000, 0x61));
    add_fragments(t, dh::kBridge2, udp_datagram(dns53, c, a, r.next16(), kLocalTtl), 1480, {2, 0, 1});
  }
  // 2. The same in 3 fragments out of order (middle, last, first); the
  // answer is not fragmented.
  {
    const Endpoint c{client(81), r.port()};
    const uint16_t id = r.next16();
    Bytes q = dns_query(id, "example.org");
    test::put(q, test::pattern(2600, 0x30));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q, r.next16(), kOutsideTtl), 1200, {1, 2, 0});
    t.add(dh::kBridge2, udp_packet(dns53, c, dns_answer(id, "example.org", kExampleCom), r.next16(), kLocalTtl));
  }
  // 3. Published TCP 10000: a full-size segment from the client fragmented
  // by a router with a 1280-byte MTU, and redis's answer in 2 fragments,
  // the second one first.
  {
    Tcp c = published_tcp(t, client(82), 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    c.handshake();
    c.send_fragmented(Tcp::kClient, kPsh | kAck, test::pattern(1460, 0x11), {{0, 1256}, {1256, 1492 - 1256}});
    c.send(Tcp::kServer, kAck);
    c.send_fragmented(Tcp::kServer, kPsh | kAck, test::pattern(1400, 0x22), {{1256, 1432 - 1256}, {0, 1256}});
    c.send(Tcp::kClient, kAck);
    c.close();
  }
  // 4. Overlapping fragments: the second overlaps the first, so the kernel
  // discards both; the last then starts a datagram of its own that never
  // completes. The client's next datagram goes through.
  {
    const Endpoint c{client(83), r.port()};
    Bytes q = dns_query(r.next16(), "example.net");
    test::put(q, test::pattern(3000, 0x50));
    const Bytes d = udp_datagram(c, {kHost, 5353}, q, r.next16(), kOutsideTtl);
    add_pieces(t, dh::kEth0, d, {{0, 1480}, {1200, 1480}, {2960, d.size() - 20 - 2960}});
    Bytes q2 = dns_query(r.next16(), "example.net");
    test::put(q2, test::pattern(1600, 0x51));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q2, r.next16(), kOutsideTtl), 1480, {0, 1});
  }
  // 5. Incomplete datagrams: a first fragment alone; a first and a last
  // fragment without the middle one.
  {
    const Endpoint c{client(84), r.port()};
    Bytes q = dns_query(r.next16(), "example.com");
    test::put(q, test::pattern(2000, 0x70));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q, r.next16(), kOutsideTtl), 1480, {0});
    Bytes q2 = dns_query(r.next16(), "example.com");
    test::put(q2, test::pattern(3500, 0x71));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q2, r.next16(), kOutsideTtl), 1480, {0, 2});
  }
  // 6. A duplicated middle fragment: dropped alone, the datagram completes.
  {
    const Endpoint c{client(85), r.port()};
    Bytes q = dns_query(r.next16(), "example.com");
    test::put(q, test::pattern(3300, 0x72));
    add_fragments(t, dh::kEth0, udp_datagram(c, {kHost, 5353}, q, r.next16(), kOutsideTtl), 1480, {0, 1, 1, 2});
  }
  // 7. Straight to a container's address from outside: docker 28 drops the
  // reassembled datagram in raw PREROUTING, counted once with its length.
  {
    const Endpoint c{client(86), r.port()};
    add_fragments(t, dh::kEth0, udp_datagram(c, {dh::kRedisIp, 6379}, test::pattern(2500, 0x73), r.next16(),
                                             kOutsideTtl),
                  1480, {0, 1});
  }
  // 8. A large ICMP echo to the host (ping -s 3000) in 3 fragments.
  {
    const Bytes echo = test::icmp_echo(0x0f0f, 1, false, test::pattern(3000, 0x74));
    add_fragments(t, dh::kEth0, icmp_packet(client(87), kHost, echo, r.next16(), kOutsideTtl), 1480, {0, 1, 2});
  }
  // 9. Container egress through MASQUERADE: web's large query to 8.8.8.8 in
  // 2 fragments (the second first), and the answer in 2 fragments on eth0.
  {
    const Endpoint web{dh::kWebIp, r.port()};
    const uint16_t id = r.next16();
    Bytes q = dns_query(id, "example.com");
    test::put(q, test::pattern(1700, 0x75));
    add_fragments(t, dh::kDocker0, udp_datagram(web, {kPublicDns, 53}, q, r.next16(), kLocalTtl), 1480, {1, 0});
    Bytes a = dns_answer(id, "example.com", kExampleCom);
    test::put(a, test::pattern(1700, 0x76));
    add_fragments(t, dh::kEth0, udp_datagram({kPublicDns, 53}, {kHost, web.port}, a, r.next16(), kOutsideTtl),
                  1480, {0, 1});
  }
  return t.take();
}

std::vector<InjectedFrame> fragment_edge_frames() {
  Traffic t(0x65646765);
  Rng& r = t.rng();
  const Endpoint host9999{kHost, 9999};
  // Each case: its own client port and IP id; every datagram is a 2000-byte
  // UDP payload to 198.51.100.1:9999 unless said otherwise.
  const auto whole = [&r](uint16_t port) {
    return udp_datagram({ip4(203, 0, 113, 90), port}, {kHost, 9999}, test::pattern(1992, 0x40), r.next16(),
                        kOutsideTtl);
  };
  const auto e = [&t](const Bytes& ip) { t.add(dh::kEth0, ip); };
  // 1. Three runs ([0,400), [800,1200), [400,800) inserted between them),
  // then [0,800) across two runs: an overlap, the datagram is discarded.
  {
    const Bytes w = whole(41001);
    for (const auto& [off, n] : {std::pair<size_t, size_t>{0, 400}, {800, 400}, {400, 400}, {0, 800}, {1200, 800}})
      e(test::fragment(w, off, n));
  }
  // 2. The same pieces in order form one run: [0,800) is a duplicate.
  {
    const Bytes w = whole(41002);
    for (const auto& [off, n] : {std::pair<size_t, size_t>{0, 400}, {400, 400}, {800, 400}, {0, 800}, {1200, 800}})
      e(test::fragment(w, off, n));
  }
  // 3. A 4-byte fragment with MF (empty once cut to a multiple of 8)
  // discards the datagram; its later fragments start another one.
  {
    const Bytes w = whole(41003);
    e(test::fragment(w, 0, 800));
    e(fragment_mf(w, 800, 4, true));
    e(test::fragment(w, 800, 800));
    e(test::fragment(w, 1600, 400));
  }
  // 4. A second last fragment with another end discards the datagram.
  {
    const Bytes w = whole(41004);
    e(test::fragment(w, 0, 800));
    e(test::fragment(w, 1600, 400));
    e(fragment_mf(w, 1600, 200, false));
    e(test::fragment(w, 800, 800));
  }
  // 5. A fragment ending beyond the last fragment discards the datagram.
  {
    const Bytes w = whole(41005);
    e(test::fragment(w, 1600, 400));
    e(fragment_mf(w, 1600, 408, true));
    e(test::fragment(w, 0, 800));
    e(test::fragment(w, 800, 800));
  }
  // 6. ECN: ECT(0) with CE reassembles (CE); Not-ECT with ECT(0) is discarded.
  {
    const Bytes w = whole(41006);
    e(with_tos_ttl(test::fragment(w, 0, 1000), 0x02, -1));
    e(with_tos_ttl(test::fragment(w, 1000, 1000), 0x03, -1));
    const Bytes v = whole(41007);
    e(with_tos_ttl(test::fragment(v, 0, 1000), 0x00, -1));
    e(with_tos_ttl(test::fragment(v, 1000, 1000), 0x02, -1));
  }
  // 7. One datagram over two interfaces: the middle fragment and the last
  // come from redis's MAC on docker0, the first (offset 0) from outside on
  // eth0, second: the datagram has the last fragment's interface (docker0)
  // and the first fragment's MAC (outside).
  {
    const Bytes w = whole(41008);
    t.add(dh::kDocker0, test::fragment(w, 800, 800));
    e(test::fragment(w, 0, 800));
    t.add(dh::kDocker0, test::fragment(w, 1600, 400));
  }
  // 8. 65620 bytes once reassembled (payload 65600): discarded when complete.
  {
    const Bytes big = udp_datagram({ip4(203, 0, 113, 90), 41009}, host9999, test::pattern(65600 - 8, 0x41),
                                   r.next16(), kOutsideTtl);
    for (size_t off = 0; off < 65600; off += 1480) e(test::fragment(big, off, std::min<size_t>(1480, 65600 - off)));
  }
  // 9. TTL comes from the first fragment: forwarded to 172.17.0.2, a
  // datagram whose first fragment has TTL 1 dies in ip_forward; one whose
  // other fragment has TTL 1 is forwarded.
  {
    const Bytes a = udp_datagram({ip4(203, 0, 113, 90), 41010}, {dh::kRedisIp, 7000}, test::pattern(1992, 0x42),
                                 r.next16(), kOutsideTtl);
    e(with_tos_ttl(test::fragment(a, 0, 1000), -1, 1));
    e(test::fragment(a, 1000, 1000));
    const Bytes b = udp_datagram({ip4(203, 0, 113, 90), 41011}, {dh::kRedisIp, 7000}, test::pattern(1992, 0x43),
                                 r.next16(), kOutsideTtl);
    e(test::fragment(b, 0, 1000));
    e(with_tos_ttl(test::fragment(b, 1000, 1000), -1, 1));
  }
  // 10. A plain in-order datagram, for reference.
  {
    const Bytes w = whole(41012);
    e(test::fragment(w, 0, 1480));
    e(test::fragment(w, 1480, 520));
  }
  return t.take();
}

namespace {

std::string endpoint_text(const Bytes& ip, size_t addr_at, size_t port_at, bool ports) {
  const uint32_t a = load_be32(ip.data() + addr_at);
  std::string s = format_ipv4(a);
  if (ports) {
    s += ':';  // (two appends: g++ 12 -Wrestrict misfires on ":" + to_string() here)
    s += std::to_string(test::get16(ip, port_at));
  }
  return s;
}

std::string tcp_flags_text(uint8_t f) {
  static constexpr std::pair<uint8_t, char> kOrder[] = {
      {tcp_flag::kFin, 'F'}, {tcp_flag::kSyn, 'S'}, {tcp_flag::kRst, 'R'}, {tcp_flag::kPsh, 'P'},
      {tcp_flag::kAck, '.'}, {tcp_flag::kUrg, 'U'}, {tcp_flag::kEce, 'E'}, {tcp_flag::kCwr, 'W'}};
  std::string s;
  for (const auto& [bit, c] : kOrder) {
    if ((f & bit) != 0) s.push_back(c);
  }
  return s.empty() ? "none" : s;
}

// "tcp A:P > B:Q" for the IP packet at `ip` (ports when TCP/UDP and `l4`).
std::string flow_text(const Bytes& ip, bool l4 = true) {
  const uint8_t proto = ip.at(9);
  const size_t hl = static_cast<size_t>(ip.at(0) & 0x0f) * 4;
  const bool ports = l4 && (proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp || proto == kProtoUdplite) &&
                     ip.size() >= hl + 4;
  const char* name = protocol_name(proto);
  const std::string proto_text = name != nullptr ? std::string(name) : std::to_string(proto);
  return proto_text + " " + endpoint_text(ip, 12, hl, ports) + " > " + endpoint_text(ip, 16, hl + 2, ports);
}

// "[INIT]", "[COOKIE_ECHO,DATA]", "[ABORT/T]" (the T bit), "[0-length
// DATA]", "[]" for no chunk, "[type 99]"; the chunks of the SCTP packet at
// `sctp` (n bytes, the common header first).
std::string sctp_chunks_text(const uint8_t* sctp, size_t n) {
  static constexpr const char* kNames[] = {"DATA",          "INIT",     "INIT_ACK",     "SACK",  "HEARTBEAT",
                                           "HEARTBEAT_ACK", "ABORT",    "SHUTDOWN",     "SHUTDOWN_ACK",
                                           "ERROR",         "COOKIE_ECHO", "COOKIE_ACK", "ECNE", "CWR",
                                           "SHUTDOWN_COMPLETE"};
  std::string s = "[";
  for (size_t off = 12; off + 4 <= n;) {
    const uint8_t type = sctp[off];
    const uint16_t len = load_be16(sctp + off + 2);
    if (s.size() > 1) s += ',';
    if (len == 0) s += "0-length ";
    s += type < std::size(kNames) ? std::string(kNames[type]) : "type " + std::to_string(type);
    if ((type == 6 || type == 14) && (sctp[off + 1] & 1U) != 0) s += "/T";
    if (len == 0) break;
    off += (len + 3U) & ~3U;
  }
  return s + "]";
}

}  // namespace

std::string describe_frame(const InjectedFrame& frame) {
  const Bytes& b = frame.bytes;
  std::string s = frame.ingress + " ";
  if (b.size() < 14 + 20 || test::get16(b, 12) != test::kEtherIpv4)
    return s + "non-IPv4 frame of " + std::to_string(b.size()) + " bytes";
  const Bytes ip(b.begin() + 14, b.end());
  const size_t hl = static_cast<size_t>(ip.at(0) & 0x0f) * 4;
  const size_t total = std::min<size_t>(test::get16(ip, 2), ip.size());
  const uint8_t proto = ip.at(9);
  const uint16_t frag = test::get16(ip, 6);
  const bool fragment = (frag & (ip_frag::kMoreFragments | ip_frag::kOffsetMask)) != 0;
  const bool later = (frag & ip_frag::kOffsetMask) != 0;  // no L4 header
  s += flow_text(ip, !later);
  if (later) {
    // nothing of L4 to show
  } else if (proto == kProtoTcp && total >= hl + 20) {
    s += " [" + tcp_flags_text(ip.at(hl + 13)) + "]";
  } else if (proto == kProtoSctp && total >= hl + 12) {
    s += " " + sctp_chunks_text(ip.data() + hl, total - hl);
    s += " vtag " + std::to_string(load_be32(ip.data() + hl + 4));
  } else if (proto == kProtoUdplite && total >= hl + 8) {
    s += " cov " + std::to_string(test::get16(ip, hl + 4));
  } else if (proto == kProtoIcmp && total >= hl + 8) {
    const uint8_t type = ip.at(hl);
    s += " " + std::to_string(type) + "/" + std::to_string(ip.at(hl + 1));
    if (type == 0 || type == 8) {
      s += " id " + std::to_string(test::get16(ip, hl + 4)) + " seq " +
           std::to_string(test::get16(ip, hl + 6));
    } else if (total >= hl + 8 + 20) {
      s += " about " + flow_text(Bytes(ip.begin() + static_cast<std::ptrdiff_t>(hl + 8),
                                       ip.begin() + static_cast<std::ptrdiff_t>(total)));
    }
  }
  if (fragment) {
    // "frag OFFSET+LENGTH" of the IP payload, MF when more follow, the IP id.
    s += " frag ";
    s += std::to_string((frag & ip_frag::kOffsetMask) * 8U);
    s += '+';
    s += std::to_string(total >= hl ? total - hl : 0);
    if ((frag & ip_frag::kMoreFragments) != 0) s += " MF";
    s += " id ";
    s += std::to_string(test::get16(ip, 4));
  }
  s += " len " + std::to_string(test::get16(ip, 2));
  if (test::ref_checksum(ip, 0, hl) != 0) s += " bad-ip-checksum";
  // A fragment's L4 checksum covers bytes of other fragments: not judged.
  if (const auto at = test::l4_checksum_offset(proto); !fragment && at && total >= hl + *at + 2) {
    const size_t l4 = total - hl;
    if (proto == kProtoUdp && test::get16(ip, hl + 6) == 0) {
      s += " no-udp-checksum";
    } else if (proto == kProtoSctp) {
      if (total >= hl + 12 && test::ref_sctp_checksum(ip, hl, l4) != test::ref_sctp_stored(ip, hl))
        s += " bad-l4-checksum";
    } else if (proto == kProtoUdplite) {
      // RFC 3828 sums with protocol 136 in the pseudo header; Linux conntrack
      // verifies with 17 (packet/checksum.h): say which one holds.
      const uint16_t field = test::get16(ip, hl + 4);
      const size_t cov = field == 0 ? l4 : std::min<size_t>(field, l4);
      const uint32_t src = load_be32(ip.data() + 12);
      const uint32_t dst = load_be32(ip.data() + 16);
      if (test::get16(ip, hl + 6) == 0) {
        s += " no-udplite-checksum";
      } else if (test::ref_checksum(ip, hl, cov, test::ref_pseudo_sum(src, dst, kProtoUdplite, l4)) == 0) {
        s += " udplite-sum-136";
      } else if (test::ref_checksum(ip, hl, cov, test::ref_pseudo_sum(src, dst, kProtoUdp, l4)) == 0) {
        s += " udplite-sum-17";
      } else {
        s += " bad-l4-checksum";
      }
    } else {
      const uint32_t src = load_be32(ip.data() + 12);
      const uint32_t dst = load_be32(ip.data() + 16);
      const uint32_t pseudo = proto == kProtoIcmp ? 0 : test::ref_pseudo_sum(src, dst, proto, l4);
      if (test::ref_checksum(ip, hl, l4, pseudo) != 0) s += " bad-l4-checksum";
    }
  }
  return s;
}

std::string recorded_scenarios_dir() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/tests/data/scenarios";
}

std::string kernel_tests_host_dir() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/tests/data/hosts/kernel-docker-host";
}

namespace {

// The entries of a conntrack -L listing: (line with the timeout as '*' and
// no zone=, timeout), sorted by the line.
std::vector<std::pair<std::string, long>> conntrack_entries(std::string_view listing) {
  std::vector<std::pair<std::string, long>> out;
  for (const std::string& line : split_lines(listing)) {
    std::istringstream words(line);
    std::string w;
    std::string norm;
    long timeout = -1;
    for (int i = 0; words >> w; ++i) {
      if (w.starts_with("zone=")) continue;
      if (i == 2 && all_digits(w)) {
        timeout = std::stol(w);
        w = "*";
      }
      if (!norm.empty()) norm += ' ';
      norm += w;
    }
    if (!norm.empty()) out.emplace_back(norm, timeout);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> recorded_conntrack_lines(std::string_view listing) {
  std::vector<std::string> lines;
  for (auto& [line, timeout] : conntrack_entries(listing)) lines.push_back(line);
  return lines;
}

std::vector<long> conntrack_timeouts(std::string_view listing) {
  std::vector<long> t;
  for (auto& [line, timeout] : conntrack_entries(listing)) t.push_back(timeout);
  return t;
}

Scenario seed_case_naive() {
  return {"seed_case_naive",
          apply_iptables_commands(bundled_ruleset("docker-28.save"),
                                  fix_rule({"--dport 10000 -j DROP"}, {"conntrack"})),
          seed_case_frames()};
}

Scenario seed_case_fixed() {
  return {"seed_case_fixed",
          apply_iptables_commands(bundled_ruleset("docker-28.save"), fix_rule({"--ctorigdstport 10000"})),
          seed_case_frames()};
}

Scenario seed_case_post_dnat() {
  return {"seed_case_post_dnat",
          apply_iptables_commands(bundled_ruleset("docker-28.save"),
                                  fix_rule({"-d 172.17.0.2/32", "--dport 6379"})),
          seed_case_frames()};
}

Scenario docker27_mixed() {
  return {"docker27_mixed", bundled_ruleset("docker-27.save"), mixed_traffic_frames()};
}

Scenario docker28_mixed() {
  return {"docker28_mixed", bundled_ruleset("docker-28.save"), mixed_traffic_frames()};
}

Scenario docker28_fragments() {
  return {"docker28_fragments", bundled_ruleset("docker-28.save"), fragment_traffic_frames()};
}

// Counting rules only (no verdicts): raw sees whether fragments reach it
// and how long the datagrams are; the conntrack match turns conntrack, and
// with it defrag, on; INPUT tells interfaces and MACs apart; FORWARD counts
// what survives ip_forward's TTL check.
constexpr std::string_view kFragmentCountingRules =
    "*raw\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A PREROUTING -f\n"
    "-A PREROUTING -p udp\n"
    "-A PREROUTING -m length --length 1501:65535\n"
    "COMMIT\n"
    "*mangle\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -m conntrack --ctstate NEW\n"
    "COMMIT\n"
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A INPUT -i eth0\n"
    "-A INPUT -i docker0\n"
    "-A INPUT -m mac --mac-source 02:00:c6:33:64:fe\n"
    "-A INPUT -m mac --mac-source 02:42:ac:11:00:02\n"
    "-A FORWARD -o docker0\n"
    "COMMIT\n";

Scenario fragment_edge_cases() {
  return {"fragment_edge_cases", std::string(kFragmentCountingRules), fragment_edge_frames()};
}

// String matching (-m string): counting rules in raw PREROUTING (the
// packet before DNAT) and DOCKER-USER (after DNAT and the TTL decrement),
// plain, hex and mixed patterns, bm and kmp, --icase, --from/--to at and
// around the payload's first bytes, negation, and one DROP; see
// string_traffic_frames() for the payloads.
constexpr std::string_view kStringRules =
    "iptables -t raw -A PREROUTING -p tcp -m string --hex-string \"|2710|\" --algo bm\n"
    "iptables -t raw -A PREROUTING -m string --string \"PING\" --algo kmp\n"
    "iptables -A DOCKER-USER -p tcp -m string --string \"DROPME\" --algo bm -j DROP\n"
    "iptables -A DOCKER-USER -m string --hex-string \"|18eb|\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --hex-string \"|2710|\" --algo kmp\n"
    "iptables -A DOCKER-USER -m string --string \"PING\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --string \"PING\" --algo kmp\n"
    "iptables -A DOCKER-USER -m string --string \"ping\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --string \"ping\" --algo bm --icase\n"
    "iptables -A DOCKER-USER -m string --string \"ping\" --algo kmp --icase\n"
    "iptables -A DOCKER-USER -m string ! --string \"PING\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --hex-string \"|0d0a|$4|0d0a|\" --algo kmp\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo bm --from 52 --to 54\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo bm --from 52 --to 53\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo kmp --from 52 --to 54\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo kmp --from 52 --to 53\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo bm --from 53\n"
    "iptables -A DOCKER-USER -m string --string \"*1\" --algo bm --to 10\n"
    "iptables -A DOCKER-USER -m string --string \"PONG\" --algo bm --from 60 --to 70\n"
    "iptables -A DOCKER-USER -m string --string \"PONG\" --algo kmp --from 60 --to 62\n"
    "iptables -A DOCKER-USER -m string --string \"TAIL\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --string \"TAIL\" --algo bm --to 1000\n"
    "iptables -A DOCKER-USER -m string --string \"example\" --algo bm --icase\n"
    "iptables -A DOCKER-USER -m string --string \"EXAMPLE\" --algo kmp --icase --from 28\n"
    "iptables -A DOCKER-USER -m string --hex-string \"|00 01 00 01|\" --algo bm\n"
    "iptables -A DOCKER-USER -m string --string \"zzzz-not-there\" --algo kmp\n";

Scenario string_match() {
  return {"string_match", apply_iptables_commands(bundled_ruleset("docker-28.save"), kStringRules),
          string_traffic_frames()};
}

// Marks kept in the conntrack entry (CONNMARK), at several hooks and in both
// directions, on the seed case's frames: mangle PREROUTING restores the skb
// mark from the entry for every packet and saves a mark set on a
// connection's first packet; POSTROUTING adds bits to the entry's mark;
// DOCKER-USER counts packets by the entry's mark and drops redis traffic
// whose entry lacks the mark (which the kernel never does here: every
// connection is marked on its SYN, in PREROUTING, before FORWARD).
constexpr std::string_view kMangleTable =
    "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
constexpr std::string_view kConnmarkRules =
    "iptables -t mangle -A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffff --ctmask 0xffff\n"
    "iptables -t mangle -A PREROUTING -m mark --mark 0x1/0xff\n"
    "iptables -t mangle -A PREROUTING -m mark --mark 0x101/0xfff\n"
    "iptables -t mangle -A PREROUTING -p tcp -m conntrack --ctstate NEW --ctorigdstport 10000 -j MARK --set-xmark 0x1/0xff\n"
    "iptables -t mangle -A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff\n"
    "iptables -t mangle -A FORWARD -m connmark --mark 0x1/0xff\n"
    "iptables -t mangle -A FORWARD -i docker0 -m mark --mark 0x1/0xff\n"
    "iptables -t mangle -A FORWARD -m connmark --mark 0x101/0xfff\n"
    "iptables -t mangle -A POSTROUTING -m connmark ! --mark 0x0/0xff -j CONNMARK --set-xmark 0x100/0xf00\n"
    "iptables -t mangle -A POSTROUTING -m connmark --mark 0x101/0xfff\n"
    "iptables -A DOCKER-USER -m connmark --mark 0x101/0xfff\n"
    "iptables -A DOCKER-USER -m connmark --mark 0x1/0xfff\n"
    "iptables -A DOCKER-USER -p tcp --dport 6379 -m connmark ! --mark 0x1/0xff -j DROP\n";

Scenario connmark_marks() {
  return {"connmark_marks",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kConnmarkRules),
          seed_case_frames()};
}

// -m recent on a Docker host: a client-affinity list in nat (kube-proxy's
// sessionAffinity shape, with a /24 mask), a brute-force limit in
// DOCKER-USER (the 4th new connection from one address within the hour is
// dropped), --remove on RSTs and --rttl, ! --rcheck and --hitcount in
// mangle PREROUTING, and a destination list (--rdest) filled by container
// egress and checked on the replies. The BF list is named first in mangle
// (load order), so its mask is the default /32.
constexpr std::string_view kRecentRules =
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --tcp-flags RST RST -m recent --remove --name BF\n"
    "iptables -t mangle -A PREROUTING -i eth0 -m recent --rcheck --rttl --name BF\n"
    "iptables -t mangle -A PREROUTING -i eth0 -m recent ! --rcheck --name BF\n"
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --syn -m recent --rcheck --seconds 3600 --hitcount 2 --name BF\n"
    "iptables -t nat -I DOCKER 1 -p tcp --dport 10000 -m recent --rcheck --seconds 10800 --reap --name AFF --mask 255.255.255.0 --rsource\n"
    "iptables -t nat -I DOCKER 2 -p tcp --dport 10000 -m recent --set --name AFF --mask 255.255.255.0 --rsource\n"
    "iptables -A DOCKER-USER -i eth0 -p tcp --dport 6379 -m conntrack --ctstate NEW -m recent --update --seconds 3600 --hitcount 3 --name BF --rsource -j DROP\n"
    "iptables -A DOCKER-USER -i eth0 -p tcp --dport 6379 -m conntrack --ctstate NEW -m recent --set --name BF --rsource\n"
    "iptables -A DOCKER-USER -o eth0 -m recent --set --rdest --name DST --mask 255.255.0.0\n"
    "iptables -A DOCKER-USER -i eth0 -m recent --rcheck --rsource --name DST --mask 255.255.0.0\n"
    "iptables -A DOCKER-USER -m recent --rcheck --rttl --name BF\n";

std::vector<InjectedFrame> recent_traffic_frames() {
  Traffic t(0x72656365);
  const uint32_t a = ip4(203, 0, 113, 40);
  const uint32_t b = ip4(203, 0, 113, 41);
  const uint32_t c = ip4(203, 0, 113, 42);
  // 1. A opens four connections to the published port; the 4th SYN (sent
  //    twice) is dropped by the brute-force rule.
  for (int i = 0; i < 3; ++i) {
    Tcp conn = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    conn.send(Tcp::kServer, kPsh | kAck, kRedisPong);
    conn.close();
  }
  {
    Tcp conn = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.syn();
    conn.syn();
  }
  // 2. B: one connection, a stray RST (removes B from BF), another connection.
  for (int i = 0; i < 2; ++i) {
    Tcp conn = published_tcp(t, b, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.handshake();
    conn.close();
    if (i == 0) lone_segment(t, dh::kEth0, {b, 40001}, {kHost, 10000}, kRst);
  }
  // 3. C: a SYN with TTL 50, then one with TTL 64 (another port): --rttl
  //    tells them apart.
  lone_segment(t, dh::kEth0, {c, 40100}, {kHost, 10000}, kSyn, 50);
  lone_segment(t, dh::kEth0, {c, 40101}, {kHost, 10000}, kSyn, 64);
  lone_segment(t, dh::kEth0, {c, 40102}, {kHost, 10000}, kSyn, 50);
  // 4. Container egress fills DST with the server's /16; its replies match.
  {
    Tcp conn = egress_tcp(t, dh::kDocker0, dh::kRedisIp, {kExampleCom, 80});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, text_bytes("GET / HTTP/1.1\r\n\r\n"));
    conn.send(Tcp::kServer, kPsh | kAck, text_bytes("HTTP/1.1 204 No Content\r\n\r\n"));
    conn.close();
  }
  return t.take();
}

Scenario recent_lists() {
  return {"recent_lists",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kRecentRules),
          recent_traffic_frames()};
}

// IP header matches on a Docker host: traceroute probes (TTL 1, 2, 3) to
// published ports and the host, TOS/DSCP-marked and ECN traffic. mangle
// counts by TTL before and after forwarding, TOS, DSCP and ECN;
// DOCKER-USER drops DSCP CS1 (scavenger); nat counts low-TTL probes.
constexpr std::string_view kIpHeaderRules =
    "iptables -t mangle -A PREROUTING -m ttl --ttl-lt 2\n"
    "iptables -t mangle -A PREROUTING -m ttl --ttl-eq 64\n"
    "iptables -t mangle -A PREROUTING -m ttl ! --ttl-eq 64\n"
    "iptables -t mangle -A PREROUTING -m tos --tos Minimize-Delay\n"
    "iptables -t mangle -A PREROUTING -m tos --tos 0xb8\n"
    "iptables -t mangle -A PREROUTING -m dscp --dscp-class EF\n"
    "iptables -t mangle -A PREROUTING -m ecn --ecn-ip-ect 3\n"
    "iptables -t mangle -A PREROUTING -m ecn ! --ecn-ip-ect 0\n"
    "iptables -t mangle -A PREROUTING -p tcp -m ecn --ecn-tcp-ece --ecn-tcp-cwr\n"
    "iptables -t mangle -A PREROUTING -p tcp -m ecn ! --ecn-tcp-ece\n"
    "iptables -t mangle -A INPUT -m ttl --ttl-lt 5\n"
    "iptables -t mangle -A FORWARD -m ttl --ttl-eq 1\n"
    "iptables -t mangle -A FORWARD -m ttl --ttl-gt 60\n"
    "iptables -t mangle -A POSTROUTING -m ttl --ttl-lt 64\n"
    "iptables -t nat -I DOCKER 1 -m ttl --ttl-lt 3\n"
    "iptables -A DOCKER-USER -m dscp --dscp-class CS1 -j DROP\n"
    "iptables -A DOCKER-USER -m dscp ! --dscp 0\n";

std::vector<InjectedFrame> ip_header_traffic_frames() {
  Traffic t(0x74746c31);
  Rng& r = t.rng();
  const uint32_t d = ip4(203, 0, 113, 50);
  // 1. Traceroute-style TCP probes to published 10000: TTL 1 (dies at the
  //    forwarding step), 2 (leaves with TTL 1), 3.
  for (uint8_t ttl = 1; ttl <= 3; ++ttl)
    lone_segment(t, dh::kEth0, {d, static_cast<uint16_t>(33433 + ttl)}, {kHost, 10000}, kSyn, ttl);
  // 2. UDP probes to published 5353 and to a closed port of the host.
  for (uint8_t ttl = 1; ttl <= 2; ++ttl) {
    const uint16_t id = r.next16();
    t.add(dh::kEth0, udp_packet({d, static_cast<uint16_t>(33440 + ttl)}, {kHost, 5353}, dns_query(id, "probe.test"), id, ttl));
  }
  {
    const uint16_t id = r.next16();
    t.add(dh::kEth0, udp_packet({d, 33450}, {kHost, 33434}, text_bytes("probe"), id, 1));
  }
  // 3. TOS / DSCP / ECN on UDP to 5353: Minimize-Delay, EF with ECT(0),
  //    EF with CE, CS1 (dropped in DOCKER-USER), ECT(1).
  for (const int tos : {0x10, 0xba, 0xbb, 0x20, 0x01}) {
    const uint16_t id = r.next16();
    t.add(dh::kEth0, with_tos_ttl(udp_packet({d, static_cast<uint16_t>(40000 + tos)}, {kHost, 5353},
                                             dns_query(id, "tos.test"), id, kOutsideTtl),
                                  tos, -1));
  }
  // 4. An ECN-setup SYN (ECE+CWR) to 10000, redis's ECN-setup SYN-ACK is
  //    left out: the SYN alone, and a plain SYN with TOS ECT(0).
  lone_segment(t, dh::kEth0, {d, 41000}, {kHost, 10000}, kSyn | tcp_flag::kEce | tcp_flag::kCwr);
  {
    Rng& rr = t.rng();
    const uint32_t seq = rr.next();
    const uint16_t id = rr.next16();
    const Bytes seg = test::tcp({.sport = 41001, .dport = 10000, .seq = seq, .flags = kSyn, .window = 64240});
    t.add(dh::kEth0,
          with_tos_ttl(test::ipv4({.src = d, .dst = kHost, .proto = kProtoTcp, .ttl = kOutsideTtl, .id = id, .df = true},
                                  seg),
                       0x02, -1));
  }
  // 5. A container's egress with TTL 64 and TOS 0x10 (leaves with TTL 63).
  {
    const uint16_t id = r.next16();
    t.add(dh::kDocker0, with_tos_ttl(udp_packet({dh::kRedisIp, 45000}, {kPublicDns, 53}, dns_query(id, "example.com"),
                                                id, kLocalTtl),
                                     0x10, -1));
  }
  return t.take();
}

Scenario ip_header_matches() {
  return {"ip_header_matches",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kIpHeaderRules),
          ip_header_traffic_frames()};
}

// Packet-rewriting mangle targets on the mixed traffic: TOS in PREROUTING
// (seen by the same walk and by DOCKER-USER), TCPMSS on every SYN and
// SYN-ACK forwarded (1460 -> 1200; the clamp to the 1500-byte path keeps
// 1200), DSCP EF on container traffic (ECN bits kept), NFLOG and CHECKSUM.
// POSTROUTING finds the MSS option bytes with -m string, which searches
// the headers too: the kernel's rewritten frames are counted.
constexpr std::string_view kMangleTargetRules =
    "iptables -t mangle -A PREROUTING -i eth0 -p udp --dport 5353 -j TOS --set-tos 0x10\n"
    "iptables -t mangle -A PREROUTING -m tos --tos 0x10/0x3f\n"
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --dport 10000 -j NFLOG --nflog-group 2\n"
    "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200\n"
    "iptables -t mangle -A FORWARD -o docker0 -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\n"
    "iptables -t mangle -A FORWARD -i docker0 -j DSCP --set-dscp-class EF\n"
    "iptables -t mangle -A FORWARD -m dscp --dscp-class EF\n"
    "iptables -t mangle -A POSTROUTING -p tcp -m string --hex-string \"|020404b0|\" --algo bm --to 80\n"
    "iptables -t mangle -A POSTROUTING -p tcp -m string --hex-string \"|020405b4|\" --algo bm --to 80\n"
    "iptables -t mangle -A POSTROUTING -m tos --tos 0xb8/0xfc\n"
    "iptables -t mangle -A POSTROUTING -p udp -j CHECKSUM --checksum-fill\n"
    "iptables -A DOCKER-USER -m tos --tos 0x10/0x3f\n"
    "iptables -A DOCKER-USER -m dscp --dscp-class EF\n";

Scenario mangle_targets() {
  return {"mangle_targets",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kMangleTargetRules),
          mixed_traffic_frames()};
}

// SCTP through the conntrack of the default Docker host: docker-28.save
// plus a published SCTP port (10000 -> redis 6379, DNAT and its DOCKER
// ACCEPT by -m sctp, as Docker writes them), -m sctp chunk-type rules, and counting
// rules by ctstate, ctstatus and -p sctp in DOCKER-USER (forwarded) and
// INPUT (to the host). See sctp_traffic_frames() for the traffic.
constexpr std::string_view kSctpRules =
    "iptables -t nat -I DOCKER 3 ! -i docker0 -p sctp -m sctp --dport 10000 -j DNAT --to-destination 172.17.0.2:6379\n"
    "iptables -I DOCKER 1 -d 172.17.0.2/32 ! -i docker0 -o docker0 -p sctp -m sctp --dport 6379 -j ACCEPT\n"
    "iptables -A DOCKER-USER -p sctp --dport 6379 --chunk-types any INIT\n"
    "iptables -A DOCKER-USER -p sctp --chunk-types only DATA,SACK\n"
    "iptables -A DOCKER-USER -p sctp ! --chunk-types all INIT\n"
    "iptables -A DOCKER-USER -p sctp --chunk-types any ABORT:T,SHUTDOWN_COMPLETE:t\n"
    "iptables -A DOCKER-USER -p sctp --chunk-types all DATA:E,SACK\n"
    "iptables -A INPUT -p sctp --dport 9999 --chunk-types any INIT,COOKIE_ECHO\n"
    "iptables -A INPUT -p sctp --sport 1024:65535\n"
    "iptables -A DOCKER-USER -p sctp\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate NEW\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate ESTABLISHED\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate RELATED\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate INVALID\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate DNAT\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstatus ASSURED\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstatus SEEN_REPLY\n"
    "iptables -A DOCKER-USER -p sctp -m state --state NEW,ESTABLISHED\n"
    "iptables -A DOCKER-USER -p icmp -m conntrack --ctstate RELATED\n"
    "iptables -A DOCKER-USER -p sctp -m conntrack --ctstate INVALID -j DROP\n"
    "iptables -A INPUT -p sctp\n"
    "iptables -A INPUT -p sctp -m conntrack --ctstate NEW\n"
    "iptables -A INPUT -p sctp -m conntrack --ctstate ESTABLISHED\n"
    "iptables -A INPUT -p sctp -m conntrack --ctstate INVALID\n"
    "iptables -A INPUT -p sctp -m multiport --dports 10000\n"
    "iptables -A INPUT -p sctp -m multiport --dports 9999\n"
    "iptables -A DOCKER-USER -p udplite -m conntrack --ctstate NEW\n"
    "iptables -A DOCKER-USER -p udplite -m conntrack --ctstate ESTABLISHED\n"
    "iptables -A DOCKER-USER -p udplite -m conntrack --ctstatus ASSURED\n"
    "iptables -A INPUT -p udplite\n"
    "iptables -A INPUT -p udplite -m conntrack --ctstate NEW\n"
    "iptables -A INPUT -p udplite -m conntrack --ctstate INVALID\n"
    "iptables -A INPUT -p udplite -m multiport --dports 7000\n"
    "iptables -A INPUT -p dccp -m conntrack --ctstate NEW\n"
    "iptables -A DOCKER-USER -p gre -m conntrack --ctstate NEW\n"
    "iptables -A DOCKER-USER -p gre -m conntrack --ctstate ESTABLISHED\n"
    "iptables -A DOCKER-USER -p gre -m conntrack --ctstatus ASSURED\n"
    "iptables -A INPUT -p gre -m conntrack --ctstate NEW\n"
    "iptables -A INPUT -p gre -m conntrack --ctstate INVALID\n";

Scenario sctp_probes() {
  return {"sctp_probes", apply_iptables_commands(bundled_ruleset("docker-28.save"), kSctpRules),
          sctp_traffic_frames(), /*conntrack_table=*/true};
}

// -m hashlimit on a hardened Docker host (hashlimit_traffic_frames):
// per-source SYN buckets in mangle shared by an --upto and an --above rule
// (each evaluation drains the one table), a rate-match window on DNS per
// source port, ICMP with a port mode (ports 0), a brute-force DROP per /24
// and destination port in DOCKER-USER, a table of 3 entries whose 4th
// source is dropped (hotdrop), per-pair buckets whose 64-bit cap wrapped
// (1/hour burst 1000 holds 30 tokens), a byte bucket with refills, and
// INPUT by source port. Rates are slow enough that nothing refills while
// the frames go through (the kernel takes milliseconds, the model 1 ms per
// frame), so the counts do not depend on timing.
constexpr std::string_view kHashlimitRules =
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --syn -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 3 "
    "--hashlimit-mode srcip --hashlimit-name syn\n"
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --syn -m hashlimit --hashlimit-above 1/min --hashlimit-burst 3 "
    "--hashlimit-mode srcip --hashlimit-name syn\n"
    "iptables -t mangle -A PREROUTING -p udp -m hashlimit --hashlimit-upto 5/min --hashlimit-mode srcip,srcport "
    "--hashlimit-name dns --hashlimit-rate-match\n"
    "iptables -t mangle -A PREROUTING -p icmp -m hashlimit --hashlimit-upto 1/hour --hashlimit-burst 2 "
    "--hashlimit-mode srcip,dstport --hashlimit-name icmp\n"
    "iptables -t mangle -A FORWARD -m hashlimit --hashlimit-upto 1/hour --hashlimit-burst 1000 "
    "--hashlimit-mode srcip,dstip --hashlimit-name pairs\n"
    "iptables -t mangle -A POSTROUTING -m hashlimit --hashlimit-upto 16b/s --hashlimit-burst 32 "
    "--hashlimit-mode dstip --hashlimit-name bytes\n"
    "iptables -A DOCKER-USER -p tcp --syn -m hashlimit --hashlimit-above 1/hour --hashlimit-burst 4 "
    "--hashlimit-mode srcip,dstport --hashlimit-srcmask 24 --hashlimit-name bf -j DROP\n"
    "iptables -A DOCKER-USER -i eth0 -m hashlimit --hashlimit-upto 1/hour --hashlimit-mode srcip "
    "--hashlimit-htable-size 2 --hashlimit-htable-max 3 --hashlimit-name full\n"
    "iptables -A DOCKER-USER -p tcp --syn\n"
    "iptables -A INPUT -m hashlimit --hashlimit-upto 2/min --hashlimit-burst 1 --hashlimit-mode srcport "
    "--hashlimit-name in\n";

std::vector<InjectedFrame> hashlimit_traffic_frames() {
  Traffic t(0x68736c6d);
  Rng& r = t.rng();
  const uint32_t a = ip4(203, 0, 113, 60);
  const uint32_t b = ip4(203, 0, 113, 61);  // a's /24
  const uint32_t c = ip4(198, 51, 100, 7);
  const uint32_t d = ip4(198, 51, 100, 8);
  // 1. A: three SYNs to published 10000 (new connections), B: three.
  for (const uint32_t src : {a, b}) {
    for (int i = 0; i < 3; ++i) lone_segment(t, dh::kEth0, {src, r.port()}, {kHost, 10000}, kSyn);
  }
  // 2. D: twelve DNS queries from one port to published 5353, answered.
  {
    const Endpoint cl{d, r.port()};
    for (int q = 0; q < 12; ++q) {
      const uint16_t id = r.next16();
      t.add(dh::kEth0, udp_packet(cl, {kHost, 5353}, dns_query(id, "example.com"), r.next16(), kOutsideTtl));
      t.add(dh::kBridge2,
            udp_packet({dh::kDnsIp, 53}, cl, dns_answer(id, "example.com", kExampleCom), r.next16(), kLocalTtl));
    }
  }
  // 3. C: two SYNs to 10000 (a 4th source: no room in table "full").
  for (int i = 0; i < 2; ++i) lone_segment(t, dh::kEth0, {c, r.port()}, {kHost, 10000}, kSyn);
  // 4. A connection from A that completes, with data both ways.
  {
    Tcp conn = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    conn.send(Tcp::kServer, kPsh | kAck, kRedisPong);
    conn.close();
  }
  // 5. Pings to the host (three) and SYNs to its port 22 from A and C.
  for (uint16_t seq = 1; seq <= 3; ++seq)
    t.add(dh::kEth0, icmp_packet(a, kHost, test::icmp_echo(0x4242, seq), r.next16(), kOutsideTtl));
  lone_segment(t, dh::kEth0, {a, 40022}, {kHost, 22}, kSyn);
  lone_segment(t, dh::kEth0, {c, 40022}, {kHost, 22}, kSyn);
  lone_segment(t, dh::kEth0, {c, 40023}, {kHost, 22}, kSyn);
  // 6. redis sends 36 DNS queries to one public server: 30 fit the pair's
  //    wrapped bucket.
  {
    const Endpoint from{dh::kRedisIp, r.port()};
    for (int q = 0; q < 36; ++q) {
      const uint16_t id = r.next16();
      t.add(dh::kDocker0, udp_packet(from, {kPublicDns, 53}, dns_query(id, "bulk.example"), r.next16(), kLocalTtl));
    }
  }
  return t.take();
}

Scenario hashlimit_limits() {
  return {"hashlimit_limits",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kHashlimitRules),
          hashlimit_traffic_frames()};
}

// -m connlimit on a Docker host (connlimit_traffic_frames): at most two
// open connections per source /24 to the published port (REJECT with a
// reset beyond), counting rules with --connlimit-upto, per destination
// (--connlimit-daddr) on new UDP flows, on every non-TCP packet (replies
// count by their source), and an INPUT limit of one SSH attempt per
// source.
constexpr std::string_view kConnlimitRules =
    "iptables -I DOCKER-USER -p tcp --syn -m connlimit --connlimit-above 2 --connlimit-mask 24 "
    "-j REJECT --reject-with tcp-reset\n"
    "iptables -A DOCKER-USER -p tcp --syn -m connlimit --connlimit-upto 1\n"
    "iptables -A DOCKER-USER -p udp -m conntrack --ctstate NEW -m connlimit --connlimit-above 1 --connlimit-daddr\n"
    "iptables -A DOCKER-USER ! -p tcp -m connlimit --connlimit-above 1\n"
    "iptables -A DOCKER-USER -p tcp -m connlimit --connlimit-above 0\n"
    "iptables -A INPUT -p tcp --syn --dport 22 -m connlimit --connlimit-above 1 -j DROP\n"
    "iptables -t mangle -A PREROUTING -i eth0 -p tcp --syn -m connlimit --connlimit-above 1\n";

std::vector<InjectedFrame> connlimit_traffic_frames() {
  Traffic t(0x636f6e6c);
  Rng& r = t.rng();
  const uint32_t a = ip4(203, 0, 113, 70);
  const uint32_t b = ip4(203, 0, 113, 71);  // a's /24
  const uint32_t c = ip4(198, 51, 100, 9);
  // 1. A opens two connections and keeps them; a third SYN, and B's, are
  //    refused.
  Tcp one = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
  one.handshake();
  one.send(Tcp::kClient, kPsh | kAck, kRedisPing);
  one.send(Tcp::kServer, kPsh | kAck, kRedisPong);
  Tcp two = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
  two.handshake();
  lone_segment(t, dh::kEth0, {a, r.port()}, {kHost, 10000}, kSyn);
  lone_segment(t, dh::kEth0, {b, r.port()}, {kHost, 10000}, kSyn);
  // (No connection closes: one in TIME_WAIT leaves a list only when the
  // kernel next collects it, at most once a jiffy, so what a later packet
  // of the burst sees depends on timing.)
  // 2. C: DNS from three ports to published 5353, each answered.
  for (int q = 0; q < 3; ++q) {
    const Endpoint cl{c, r.port()};
    const uint16_t id = r.next16();
    t.add(dh::kEth0, udp_packet(cl, {kHost, 5353}, dns_query(id, "example.com"), r.next16(), kOutsideTtl));
    t.add(dh::kBridge2,
          udp_packet({dh::kDnsIp, 53}, cl, dns_answer(id, "example.com", kExampleCom), r.next16(), kLocalTtl));
  }
  // 3. SSH attempts to the host: A twice, C once.
  lone_segment(t, dh::kEth0, {a, r.port()}, {kHost, 22}, kSyn);
  lone_segment(t, dh::kEth0, {a, r.port()}, {kHost, 22}, kSyn);
  lone_segment(t, dh::kEth0, {c, r.port()}, {kHost, 22}, kSyn);
  return t.take();
}

Scenario connlimit_limits() {
  return {"connlimit_limits",
          apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kConnlimitRules),
          connlimit_traffic_frames()};
}

// -m set on a Docker host (ipset_traffic_frames), with the sets a
// hardened host keeps: a blocklist of networks with a nomatch hole and
// counters, an SSH allowlist, (address, protocol:port) services, a port
// bitmap, networks with ports, and a list:set of two of them. Rules test
// sources, destinations after DNAT, too few dimensions, --return-nomatch,
// `!`, ICMP as a port, and --packets-gt on counters that every rule
// naming the set advances.
constexpr std::string_view kIpsets =
    "create blocklist hash:net family inet hashsize 1024 maxelem 65536 counters bucketsize 12 initval 0x1\n"
    "add blocklist 203.0.113.0/24 packets 0 bytes 0\n"
    "add blocklist 203.0.113.128/25 nomatch packets 0 bytes 0\n"
    "add blocklist 198.51.100.66 packets 0 bytes 0\n"
    "create ssh_ok hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x2\n"
    "add ssh_ok 198.51.100.7\n"
    "create svc hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x3\n"
    "add svc 172.17.0.2,tcp:6379\n"
    "add svc 172.18.0.2,udp:53\n"
    "add svc 198.51.100.1,icmp:echo-request\n"
    "create lowports bitmap:port range 1-1024\n"
    "add lowports 22\n"
    "add lowports 53\n"
    "create netports hash:net,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x4\n"
    "add netports 203.0.113.0/25,tcp:10000\n"
    "create both list:set size 8\n"
    "add both ssh_ok\n"
    "add both blocklist\n";

constexpr std::string_view kIpsetRules =
    "iptables -t mangle -A PREROUTING -m set --match-set blocklist src\n"
    "iptables -t mangle -A PREROUTING -m set --match-set blocklist src --return-nomatch\n"
    "iptables -t mangle -A PREROUTING -m set ! --match-set ssh_ok src\n"
    "iptables -t mangle -A PREROUTING -m set --match-set both src\n"
    "iptables -t mangle -A PREROUTING -m set --match-set lowports dst\n"
    "iptables -t mangle -A PREROUTING -m set --match-set netports src,dst\n"
    "iptables -t mangle -A FORWARD -m set --match-set svc dst,dst\n"
    "iptables -t mangle -A FORWARD -m set --match-set svc dst\n"
    "iptables -A DOCKER-USER -m set --match-set blocklist src --packets-gt 4 -j DROP\n"
    "iptables -A DOCKER-USER -m set --match-set blocklist src ! --update-counters\n"
    "iptables -A INPUT -p tcp --dport 22 -m set ! --match-set ssh_ok src -j DROP\n"
    "iptables -A INPUT -m set --match-set svc dst,dst\n"
    "iptables -A INPUT -p icmp -m set --match-set svc dst,src\n";

std::vector<InjectedFrame> ipset_traffic_frames() {
  Traffic t(0x69707365);
  Rng& r = t.rng();
  const uint32_t listed = ip4(203, 0, 113, 10);  // in 203.0.113.0/24 (and /25)
  const uint32_t hole = ip4(203, 0, 113, 200);   // in the nomatch /25
  const uint32_t single = ip4(198, 51, 100, 66);
  const uint32_t admin = ip4(198, 51, 100, 7);   // ssh_ok
  // 1. SYNs to published 10000: four from the listed source, two each from
  //    the hole and the single address, one from the admin.
  for (int i = 0; i < 4; ++i) lone_segment(t, dh::kEth0, {listed, r.port()}, {kHost, 10000}, kSyn);
  for (const uint32_t src : {hole, single}) {
    for (int i = 0; i < 2; ++i) lone_segment(t, dh::kEth0, {src, r.port()}, {kHost, 10000}, kSyn);
  }
  lone_segment(t, dh::kEth0, {admin, r.port()}, {kHost, 10000}, kSyn);
  // 2. DNS to published 5353 from the admin and the hole, answered.
  for (const uint32_t src : {admin, hole}) {
    const Endpoint cl{src, r.port()};
    const uint16_t id = r.next16();
    t.add(dh::kEth0, udp_packet(cl, {kHost, 5353}, dns_query(id, "example.com"), r.next16(), kOutsideTtl));
    t.add(dh::kBridge2,
          udp_packet({dh::kDnsIp, 53}, cl, dns_answer(id, "example.com", kExampleCom), r.next16(), kLocalTtl));
  }
  // 3. SSH to the host from the admin and the single address; pings.
  lone_segment(t, dh::kEth0, {admin, r.port()}, {kHost, 22}, kSyn);
  lone_segment(t, dh::kEth0, {single, r.port()}, {kHost, 22}, kSyn);
  t.add(dh::kEth0, icmp_packet(admin, kHost, test::icmp_echo(0x5151, 1), r.next16(), kOutsideTtl));
  t.add(dh::kEth0, icmp_packet(listed, kHost, test::icmp_echo(0x5152, 1), r.next16(), kOutsideTtl));
  // 4. A connection from the admin to 10000 with data.
  {
    Tcp conn = published_tcp(t, admin, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    conn.send(Tcp::kServer, kPsh | kAck, kRedisPong);
  }
  return t.take();
}

Scenario ipset_sets() {
  Scenario s{"ipset_sets",
             apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kIpsetRules),
             ipset_traffic_frames()};
  s.ipsets = std::string(kIpsets);
  return s;
}

// Bridges and br_netfilter (bridge_frames): a Kubernetes-style service
// 10.96.0.10 (tcp 80 and udp 53) whose endpoint is the web container, on the
// client's (redis's) own bridge docker0, so its DNAT sends the packet back
// out the bridge it came in on; plus station-to-station traffic between the
// two containers, an outside ping, and traffic for the host. mangle and
// filter count by -m physdev in every hook, and by -i/-o and TTL in FORWARD.
constexpr std::string_view kBridgeRules =
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
    ":KUBE-SVC - [0:0]\n:KUBE-SVC2 - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
    "-A PREROUTING -d 10.96.0.10/32 -j KUBE-SVC\n"
    "-A PREROUTING -d 10.96.0.11/32 -j KUBE-SVC2\n"
    "-A POSTROUTING -j KUBE-POSTROUTING\n"
    "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
    "-A KUBE-SVC -s 172.17.0.3/32 -j MARK --set-xmark 0x4000/0x4000\n"
    "-A KUBE-SVC -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.3:8080\n"
    "-A KUBE-SVC -p udp -m udp --dport 53 -j DNAT --to-destination 172.17.0.3:5353\n"
    "-A KUBE-SVC2 -s 172.17.0.2/32 -j MARK --set-xmark 0x4000/0x4000\n"
    "-A KUBE-SVC2 -p tcp -m tcp --dport 6379 -j DNAT --to-destination 172.17.0.2:6379\n"
    "-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n"
    "COMMIT\n"
    "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -m physdev --physdev-in veth5b0e9a1\n"
    "-A PREROUTING -m physdev --physdev-in vethc7d24f3\n"
    "-A PREROUTING -m physdev ! --physdev-is-in\n"
    "-A PREROUTING -m physdev --physdev-is-bridged\n"
    "-A INPUT -m physdev --physdev-in veth+\n"
    "-A INPUT -m physdev ! --physdev-is-in\n"
    "-A FORWARD -m physdev --physdev-is-in --physdev-is-bridged\n"
    "-A FORWARD -m physdev --physdev-is-in ! --physdev-is-out\n"
    "-A POSTROUTING -m physdev --physdev-is-bridged\n"
    "-A POSTROUTING -m physdev --physdev-out vethc7d24f3\n"
    "-A POSTROUTING -m physdev --physdev-out veth5b0e9a1\n"
    "-A POSTROUTING -m physdev ! --physdev-is-out\n"
    "COMMIT\n"
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A FORWARD -m physdev --physdev-in veth5b0e9a1 --physdev-out vethc7d24f3 --physdev-is-bridged\n"
    "-A FORWARD -m physdev --physdev-in vethc7d24f3 --physdev-out veth5b0e9a1 --physdev-is-bridged\n"
    "-A FORWARD -m physdev ! --physdev-is-bridged\n"
    "-A FORWARD -m physdev --physdev-is-in ! --physdev-is-bridged\n"
    "-A FORWARD -m physdev --physdev-in veth+ ! --physdev-out veth5b0e9a1\n"
    "-A FORWARD -i docker0 -o docker0 -m ttl --ttl-lt 2\n"
    "-A FORWARD -i docker0 -o docker0 -m ttl --ttl-eq 64\n"
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A FORWARD -i docker0 -o docker0 -j ACCEPT\n"
    "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n"
    "-A FORWARD -i eth0 -o docker0 -p icmp -j ACCEPT\n"
    "COMMIT\n";

std::vector<InjectedFrame> bridge_frames() {
  Traffic t(0x62726467);
  Rng& r = t.rng();
  const uint32_t svc = ip4(10, 96, 0, 10);
  // 1. redis -> the service's tcp 80, DNATed to web:8080 on the same bridge;
  //    web answers station to station.
  t.set_direct(true);
  {
    const Endpoint c{dh::kRedisIp, r.port()};
    Tcp conn(t, {dh::kDocker0, c, {svc, 80}, kLocalTtl}, {dh::kDocker0, {dh::kWebIp, 8080}, c, kLocalTtl});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    conn.send(Tcp::kServer, kPsh | kAck, kRedisPong);
  }
  // 2. Traceroute-style probes with TTL 1: to the service's udp 53 (bridged
  //    DNAT: no TTL check), to web directly (bridged), to the outside (routed:
  //    time exceeded before FORWARD).
  t.add(dh::kDocker0, udp_packet({dh::kRedisIp, 33434}, {svc, 53}, dns_query(r.next16(), "a.example"), r.next16(), 1));
  t.add(dh::kDocker0, udp_packet({dh::kRedisIp, 33435}, {dh::kWebIp, 53}, dns_query(r.next16(), "b.example"),
                                 r.next16(), 1));
  t.add(dh::kDocker0, udp_packet({dh::kRedisIp, 33436}, {ip4(203, 0, 113, 5), 53},
                                 dns_query(r.next16(), "c.example"), r.next16(), 1));
  // 3. redis -> web:80 station to station, answered.
  {
    const Endpoint c{dh::kRedisIp, r.port()};
    Tcp conn(t, {dh::kDocker0, c, {dh::kWebIp, 80}, kLocalTtl}, {dh::kDocker0, {dh::kWebIp, 80}, c, kLocalTtl});
    conn.handshake();
  }
  // 4. An outside ping of redis and its reply (routed both ways).
  t.add(dh::kEth0, icmp_packet(ip4(203, 0, 113, 7), dh::kRedisIp, test::icmp_echo(0x6272, 1), r.next16(), kOutsideTtl));
  t.add(dh::kDocker0,
        icmp_packet(dh::kRedisIp, ip4(203, 0, 113, 7), test::icmp_echo(0x6272, 1, true), r.next16(), kLocalTtl));
  // 5. redis pings the host's docker0 address; web reaches the outside.
  t.add(dh::kDocker0, icmp_packet(dh::kRedisIp, dh::kDocker0Ip, test::icmp_echo(0x6273, 1), r.next16(), kLocalTtl));
  lone_segment(t, dh::kDocker0, {dh::kWebIp, r.port()}, {ip4(203, 0, 113, 9), 443}, kSyn, kLocalTtl);
  // 6. redis reaches itself through the service 10.96.0.11 (kube-proxy's
  //    hairpin: marked for MASQUERADE), its SYN sent twice: the bridged DNAT
  //    goes back out redis's own port, which needs hairpin mode.
  lone_segment(t, dh::kDocker0, {dh::kRedisIp, 42424}, {ip4(10, 96, 0, 11), 6379}, kSyn, kLocalTtl);
  t.repeat_last(dh::kDocker0);
  return t.take();
}

Scenario bridge_hairpin() {
  Scenario s{"bridge_hairpin", std::string(kBridgeRules), bridge_frames()};
  s.conntrack_table = true;
  s.br_netfilter = true;
  return s;
}

Scenario bridge_service() {
  std::string rules;
  for (size_t at = 0; at < kBridgeRules.size();) {
    const size_t nl = kBridgeRules.find('\n', at);
    const std::string_view line = kBridgeRules.substr(at, nl - at + 1);
    if (line.find("physdev") == std::string_view::npos && line.find("ttl") == std::string_view::npos) rules += line;
    at = nl + 1;
  }
  Scenario s{"bridge_service", rules, bridge_frames()};
  s.conntrack_table = true;
  s.br_netfilter = true;
  s.hairpin = true;
  return s;
}

Scenario bridge_no_forward() {
  Scenario s = bridge_service();
  s.name = "bridge_no_forward";
  s.ip_forward = false;
  return s;
}

Scenario bridge_plain() {
  Scenario s{"bridge_plain", std::string(kBridgeRules), bridge_frames()};
  s.conntrack_table = true;
  s.br_netfilter = false;
  return s;
}

// ------------------------------------------------ conntrack zones

// raw's CT templates put a Docker host's traffic in conntrack zones: what
// enters from a bridge gets the bridge's zone for its ORIGINAL direction
// only (--zone-orig, so replies from outside, in the default zone, still
// find it), published DNS a zone in both directions from the packet's mark,
// pings to the host zone 6, SSH a REPLY-only zone (the later CT rule never
// takes effect: the first template stays), and ICMP errors from one far
// server zone 5. udp 7777 is DNATed to a range of two containers (the
// address hash is keyed with the zone id) and let through in DOCKER-USER;
// mangle FORWARD counts where it went.
constexpr std::string_view kZoneRules =
    "iptables -t raw -A PREROUTING -i docker0 -j CT --zone-orig 1\n"
    "iptables -t raw -A PREROUTING -i br-5c0a8c6e1d2f -j CT --zone-orig 2\n"
    "iptables -t raw -A PREROUTING -i eth0 -p udp --dport 5353 -j MARK --set-mark 0x10003\n"
    "iptables -t raw -A PREROUTING -i eth0 -p udp --dport 5353 -j CT --zone mark\n"
    "iptables -t raw -A PREROUTING -i eth0 -p icmp --icmp-type echo-request -j CT --zone 6\n"
    "iptables -t raw -A PREROUTING -i eth0 -p tcp --dport 22 -j CT --zone-reply 9\n"
    "iptables -t raw -A PREROUTING -i eth0 -p tcp --dport 22 -j CT --zone 8\n"
    "iptables -t raw -A PREROUTING -i eth0 -s 192.0.2.53 -p icmp -j CT --zone 5\n"
    "iptables -t raw -A PREROUTING -i eth0 -s 203.0.113.92/30 -p udp --dport 7777 -j CT --zone 4\n"
    "iptables -t nat -I PREROUTING 1 -i eth0 -p udp --dport 7777 -j DNAT --to-destination 172.17.0.2-172.17.0.3\n"
    "iptables -I DOCKER-USER -p udp --dport 7777 -j ACCEPT\n"
    "iptables -t mangle -A FORWARD -d 172.17.0.2\n"
    "iptables -t mangle -A FORWARD -d 172.17.0.3\n"
    "iptables -t mangle -A PREROUTING -m conntrack --ctstate NEW\n"
    "iptables -t mangle -A PREROUTING -m conntrack --ctstate ESTABLISHED\n"
    "iptables -t mangle -A PREROUTING -m conntrack --ctstate RELATED\n"
    "iptables -t mangle -A PREROUTING -m conntrack --ctstate INVALID\n";

std::vector<InjectedFrame> zone_frames() {
  Traffic t(0x7a6f6e65);
  Rng& r = t.rng();
  const uint32_t a = ip4(203, 0, 113, 80);
  const uint32_t b = ip4(203, 0, 113, 81);
  // 1. A's connection to published 10000 (default zone; redis's replies
  //    carry docker0's ORIGINAL-only zone, so they are found by the REPLY
  //    id). Its first SYN also arrives on docker0: the same tuple in zone 1
  //    is another connection, which nat does not DNAT (-i docker0).
  {
    Tcp conn = published_tcp(t, a, 10000, dh::kDocker0, {dh::kRedisIp, 6379});
    conn.syn();
    t.repeat_last(dh::kDocker0);
    conn.syn_ack();
    conn.send(Tcp::kClient, kAck);
    conn.send(Tcp::kClient, kPsh | kAck, kRedisPing);
    conn.send(Tcp::kServer, kPsh | kAck, kRedisPong);
    conn.close();
  }
  // 2. redis's connection to example.com:80, answered from outside.
  {
    Tcp conn = egress_tcp(t, dh::kDocker0, dh::kRedisIp, {kExampleCom, 80});
    conn.handshake();
    conn.send(Tcp::kClient, kPsh | kAck, text_bytes("GET / HTTP/1.1\r\n\r\n"));
    conn.send(Tcp::kServer, kPsh | kAck, text_bytes("HTTP/1.1 204 No Content\r\n\r\n"));
    conn.close();
  }
  // 3. DNS to published 5353 in zone 3 (the mark's low 16 bits): the
  //    container's answer is in zone 2, where the query is not, so it opens
  //    a connection of its own; the client's second query finds the first.
  {
    const Endpoint cl{b, r.port()};
    for (int q = 0; q < 2; ++q) {
      const uint16_t id = r.next16();
      t.add(dh::kEth0, udp_packet(cl, {kHost, 5353}, dns_query(id, "example.com"), r.next16(), kOutsideTtl));
      t.add(dh::kBridge2,
            udp_packet({dh::kDnsIp, 53}, cl, dns_answer(id, "example.com", kExampleCom), r.next16(), kLocalTtl));
    }
  }
  // 4. The DNS container's queries to two outside servers, each answered by
  //    port unreachable: 8.8.8.8's error is in the default zone (RELATED),
  //    192.0.2.53's in zone 5, where no connection is (INVALID).
  for (const uint32_t server : {kPublicDns, kFarDns}) {
    const Endpoint from{dh::kDnsIp, r.port()};
    const Bytes query = dns_query(r.next16(), "zone.example");
    t.add(dh::kBridge2, udp_packet(from, {server, 53}, query, r.next16(), kLocalTtl));
    const Bytes left = udp_packet({kHost, from.port}, {server, 53}, query, r.next16(), kLocalTtl - 1);
    t.add(dh::kEth0, icmp_packet(server, kHost, test::icmp_error(3, 3, left), r.next16(), kOutsideTtl));
  }
  // 5. Two pings of the host with one id (zone 6), SSH SYNs (a retransmission
  //    finds its entry: REPLY-only zone, default id in ORIGINAL).
  for (uint16_t seq = 1; seq <= 2; ++seq)
    t.add(dh::kEth0, icmp_packet(a, kHost, test::icmp_echo(0x7a6e, seq), r.next16(), kOutsideTtl));
  const uint16_t ssh_port = r.port();
  lone_segment(t, dh::kEth0, {b, ssh_port}, {kHost, 22}, kSyn);
  t.repeat_last(dh::kEth0);
  // 6. Eight clients of udp 7777, DNATed to one of two containers by the
  //    address hash, which the zone id (4 for the last four) keys.
  for (uint8_t i = 0; i < 8; ++i) {
    const Endpoint cl{ip4(203, 0, 113, static_cast<uint8_t>(88 + i)), r.port()};
    t.add(dh::kEth0, udp_packet(cl, {kHost, 7777}, text_bytes("zone"), r.next16(), kOutsideTtl));
  }
  return t.take();
}

Scenario ct_zones() {
  Scenario s{"ct_zones",
             apply_iptables_commands(std::string(kMangleTable) + bundled_ruleset("docker-28.save"), kZoneRules),
             zone_frames()};
  s.conntrack_table = true;
  return s;
}

std::vector<Scenario> all_scenarios() {
  std::vector<Scenario> all;
  all.push_back(seed_case_naive());
  all.push_back(seed_case_fixed());
  all.push_back(seed_case_post_dnat());
  all.push_back(docker27_mixed());
  all.push_back(docker28_mixed());
  all.push_back(docker28_fragments());
  all.push_back(fragment_edge_cases());
  all.push_back(string_match());
  all.push_back(connmark_marks());
  all.push_back(recent_lists());
  all.push_back(ip_header_matches());
  all.push_back(mangle_targets());
  all.push_back(sctp_probes());
  all.push_back(hashlimit_limits());
  all.push_back(connlimit_limits());
  all.push_back(ipset_sets());
  all.push_back(bridge_hairpin());
  all.push_back(bridge_service());
  all.push_back(bridge_no_forward());
  all.push_back(bridge_plain());
  all.push_back(ct_zones());
  return all;
}

}  // namespace nfb
