// Replays conntrack measurements: feeds IP packets (in Ethernet frames) to a
// ConntrackTable with the timing the kernel measurement used, and checks each
// answer and the flow's `conntrack -L` lines against what the kernel said.
// Shared by conntrack_tcp_test.cpp and conntrack_test.cpp (test code).
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>

#include "classifier/conntrack.h"
#include "classifier/frame_parser.h"
#include "tests/frame_builder.h"

namespace nfb::test {

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
