// Packets and replay of the conntrack measurements (tests/probes/conntrack):
// builders for the measurement's TCP packets, and a replayer that feeds IP
// packets (in Ethernet frames) to a ConntrackTable with the timing the
// kernel measurement used, and checks each answer and the flow's
// `conntrack -L` lines against what the kernel said.
// Shared by conntrack_tcp_test.cpp and conntrack_test.cpp (test code).
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>

#include "netfilter/conntrack.h"
#include "packet/frame_parser.h"
#include "tests/support/frame_builder.h"

namespace nfb::test {

// ---------------------------------------------------------------- packets
// The addresses of the measurement: client, server, a middle box, elsewhere.
inline constexpr uint32_t kC = ip4(10, 201, 1, 5);
inline constexpr uint32_t kS = ip4(10, 201, 2, 5);

inline uint8_t flag_bits(std::string_view letters) {
  uint8_t f = 0;
  for (char ch : letters) {
    switch (ch) {
      case 'F': f |= tcp_flag::kFin; break;
      case 'S': f |= tcp_flag::kSyn; break;
      case 'R': f |= tcp_flag::kRst; break;
      case 'P': f |= tcp_flag::kPsh; break;
      case 'A': f |= tcp_flag::kAck; break;
      case 'U': f |= tcp_flag::kUrg; break;
      case 'E': f |= tcp_flag::kEce; break;
      case 'C': f |= tcp_flag::kCwr; break;
      default: ADD_FAILURE() << "bad flag letter " << ch;
    }
  }
  return f;
}

// MSS 1460, SACK permitted, NOP, window scale 7 (10 bytes, padded to 12).
inline Bytes syn_options() { return Bytes{2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7}; }

struct TcpOpt {
  uint16_t win = 64240;
  bool ws = false;           // SYN options (with window scale 7 and SACK-permitted)
  uint32_t sack_left = 0;    // one SACK block when sack_right != 0
  uint32_t sack_right = 0;
  std::size_t data = 0;      // payload bytes
  bool bad = false;          // corrupt the TCP checksum
};

inline Bytes tcp_packet(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack,
                 std::string_view flags, const TcpOpt& o = {}) {
  Bytes opts = o.ws ? syn_options() : Bytes{};
  if (o.sack_right != 0) {
    test::put(opts, Bytes{1, 1, 5, 10});
    test::put32(opts, o.sack_left);
    test::put32(opts, o.sack_right);
  }
  return test::ipv4({.src = src, .dst = dst, .proto = kProtoTcp,
                     .l4_checksum = o.bad ? test::L4Checksum::Corrupt : test::L4Checksum::Fill},
                    test::tcp({.sport = sp, .dport = dp, .seq = seq, .ack = ack,
                               .flags = flag_bits(flags), .window = o.win, .options = opts,
                               .payload = test::pattern(o.data)}));
}
// Client to server, and server to client.
inline Bytes T(uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack, std::string_view flags,
        const TcpOpt& o = {}) {
  return tcp_packet(kC, kS, sp, dp, seq, ack, flags, o);
}
inline Bytes TR(uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack, std::string_view flags,
         const TcpOpt& o = {}) {
  return tcp_packet(kS, kC, sp, dp, seq, ack, flags, o);
}

inline const char* state_name(uint8_t s) {
  switch (s) {
    case kCtNew: return "NEW";
    case kCtEstablished: return "ESTABLISHED";
    case kCtRelated: return "RELATED";
    case kCtInvalid: return "INVALID";
    default: return "?";
  }
}

// Feeds IP packets (in Ethernet frames) to a table as the measurement fed
// them to the kernel, and checks each answer and the flow's conntrack -L
// lines (those naming `port`, as the measurement filtered them; all lines
// when port is 0) against the kernel's.
class Replay {
 public:
  explicit Replay(uint16_t port, const CtConfig& config = small_config())
      : port_(port), table_(config) {}

  static CtConfig small_config() {
    CtConfig c;
    c.max_entries = 1024;
    return c;
  }

  void sleep(double s) { now_ += static_cast<uint64_t>(s * 1e9); }

  void step(std::string_view what, const Bytes& ip, std::string_view state, std::string_view dir,
            std::string_view lines) {
    SCOPED_TRACE(std::string(what));
    const CtResult r = send(ip);
    now_ += 40'000'000;  // the dump ran ~40 ms after the packet
    EXPECT_EQ(r.verdict == CtVerdict::Drop ? "DROP" : state_name(r.state), state);
    EXPECT_EQ(r.state == kCtInvalid ? "-" : (r.dir == CtDir::Original ? "ORIGINAL" : "REPLY"), dir);
    EXPECT_EQ(flow_lines(), lines);
    now_ += 20'000'000;
  }

  // Runs one packet through process() and confirm() (the measurement
  // forwarded every packet); returns the result as process() gave it.
  CtResult send(const Bytes& ip) {
    const Bytes frame = test::ethernet({}, ip);
    PacketKey key;
    EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, 0,
                          key),
              ParseStatus::Ok);
    CtResult r = table_.process(key, frame.data(), static_cast<uint32_t>(frame.size()), now_, true);
    const CtResult answer = r;
    if (r.verdict == CtVerdict::Accept)
      table_.confirm(r, now_);
    else
      table_.discard(r);
    return answer;
  }

  std::string flow_lines() const {
    std::string all;
    table_.dump(all, now_);
    std::istringstream in(all);
    std::string line, out;
    const std::string p = std::to_string(port_) + " ";
    while (std::getline(in, line)) {
      if (port_ != 0 && line.find("sport=" + p) == std::string::npos &&
          line.find("dport=" + p) == std::string::npos && line.find("id=" + p) == std::string::npos)
        continue;
      if (!out.empty()) out += " || ";
      out += line;
    }
    return out;
  }

  ConntrackTable& table() { return table_; }
  uint64_t now() const { return now_; }

 private:
  uint16_t port_;
  ConntrackTable table_;
  uint64_t now_ = 1'700'000'000'000'000'000ULL;
};

// ---------------------------------------------------------------- kernel sequences
// Generated from the measurement; do not edit the expected strings by hand.

}  // namespace nfb::test
