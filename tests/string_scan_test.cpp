// -m string on Hyperscan (classifier/string_scan.h) against a naive search
// written here from the kernel's rule (a match lies within [--from, --to) of
// the IP packet; --icase folds both sides with the kernel's toupper()), on
// random patterns, offsets and packets; and in the pipeline, against the
// rule-by-rule search on the kernel's string scenario, with one scan per
// packet and hook at most.
#include "classifier/string_scan.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "netfilter/pipeline.h"
#include "packet/frame_parser.h"
#include "rules/iptables_save.h"
#include "tests/support/frame_builder.h"
#include "tests/support/scenarios.h"

namespace nfb {
namespace {

bool naive_found(const StringPattern& p, const std::vector<uint8_t>& data) {
  const size_t n = p.bytes.size();
  const size_t end = std::min<size_t>(p.to, data.size());
  for (size_t at = p.from; at + n <= end; ++at) {
    bool all = true;
    for (size_t i = 0; i < n && all; ++i) {
      const auto a = data[at + i];
      const auto b = static_cast<uint8_t>(p.bytes[i]);
      all = p.icase ? kStringFold[a] == kStringFold[b] : a == b;
    }
    if (all) return true;
  }
  return false;
}

TEST(StringScan, EqualsTheNaiveSearchOnRandomPatternsAndPackets) {
  std::mt19937 rng(2026);
  // A small alphabet with ASCII and Latin-1 letters in both cases, so that
  // patterns occur, overlap and fold.
  const std::string alphabet = "aAbB\xe9\xc9\xdf\xbf\xff\xdf\xf7\xd7xyz\r\n*";
  const auto draw = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int round = 0; round < 30; ++round) {
    StringPatterns patterns;
    const size_t count = 1 + rng() % 60;
    for (size_t i = 0; i < count; ++i) {
      const auto from = static_cast<uint16_t>(rng() % 3 == 0 ? rng() % 80 : 0);
      const auto to = static_cast<uint16_t>(rng() % 3 == 0 ? from + rng() % 100 : 65535);
      patterns.add(draw(1 + rng() % 4), from, to, rng() % 2 == 0, SourceLocation{"test"});
    }
    StringScanner scanner(patterns);
    EXPECT_EQ(scanner.patterns(), patterns.patterns().size());
    for (int packet = 0; packet < 50; ++packet) {
      const std::string text = draw(rng() % 200);
      const std::vector<uint8_t> data(text.begin(), text.end());
      scanner.invalidate();
      for (uint32_t id = 0; id < patterns.patterns().size(); ++id) {
        const StringPattern& p = patterns.patterns()[id];
        ASSERT_EQ(scanner.found(id, data.data(), static_cast<uint32_t>(data.size())), naive_found(p, data))
            << "pattern \"" << p.bytes << "\" from " << p.from << " to " << p.to << (p.icase ? " icase" : "")
            << " in \"" << text << "\"";
      }
    }
    // One scan per packet, however many patterns were asked about.
    EXPECT_EQ(scanner.scans(), 50U);
  }
}

TEST(StringScan, IdenticalPatternsShareAnId) {
  StringPatterns p;
  EXPECT_EQ(p.add("PING", 0, 65535, false, {}), 0U);
  EXPECT_EQ(p.add("PING", 0, 65535, true, {}), 1U);
  EXPECT_EQ(p.add("PING", 0, 65535, false, {}), 0U);
  EXPECT_EQ(p.add("PING", 52, 65535, false, {}), 2U);
  EXPECT_EQ(p.patterns().size(), 3U);
}

TEST(StringScan, OffsetsThatLeaveNoRoomNeverMatch) {
  StringPatterns p;
  p.add("abcd", 10, 12, false, {});  // 4 bytes cannot end by 12 after starting at 10
  p.add("abcd", 10, 14, false, {});  // exactly room
  StringScanner s(p);
  std::vector<uint8_t> data(20, 'x');
  std::copy_n("abcd", 4, data.begin() + 10);
  EXPECT_FALSE(s.found(0, data.data(), 20));
  EXPECT_TRUE(s.found(1, data.data(), 20));
}

TEST(StringScan, AnEmptyPatternIsAnErrorAtItsRule) {
  StringPatterns p;
  p.add("", 0, 65535, false, SourceLocation{"rules.save", 7, 3});
  try {
    StringScanner s(p);
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("rules.save:7:3"), std::string::npos) << e.what();
  }
}

// The kernel's string scenario through the pipeline with the scanner and
// with every rule searching on its own: the same counters (and the kernel's,
// see pipeline_test), and at most one scan per packet and hook.
TEST(StringScan, PipelineScansOncePerHookAndCountsLikeTheRuleByRuleSearch) {
  const Scenario s = string_match();
  const HostModel host = default_docker_host();
  const Ruleset rules = read_iptables_save(s.ruleset, s.name);
  std::string counters[2];
  for (const bool scan : {false, true}) {
    PipelineConfig config;
    config.scan_strings = scan;
    auto pipeline = Pipeline::build(rules, host, config);
    ASSERT_EQ(pipeline->string_scanner() != nullptr, scan);
    uint64_t ts = 1'000'000'000'000ULL;
    for (const InjectedFrame& f : s.frames) {
      std::vector<uint8_t> frame = f.bytes;
      PacketIn in;
      const uint16_t iface = *host.iface_id(f.ingress);
      ASSERT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, iface, in.key),
                ParseStatus::Ok);
      in.frame = frame.data();
      in.len = static_cast<uint32_t>(frame.size());
      in.in_iface = iface;
      in.ts_ns = ts += 1'000'000;
      PacketOut out;
      pipeline->process(std::span(&in, 1), std::span(&out, 1));
    }
    WriteOptions wo;
    wo.counters = true;
    counters[scan ? 1 : 0] = write_iptables_save(pipeline->counters_ruleset(), wo);
    if (scan) {
      // raw PREROUTING and FORWARD hold string rules: two hooks per packet
      // at most (a dropped packet may stop earlier).
      const uint64_t scans = pipeline->string_scanner()->scans();
      EXPECT_GT(scans, s.frames.size());
      EXPECT_LE(scans, 2 * s.frames.size());
      // 26 rules; 7 repeat a pattern (the algorithm and negation are not part of it).
      EXPECT_EQ(pipeline->string_scanner()->patterns(), 19U);
    }
  }
  EXPECT_EQ(counters[0], counters[1]);
}

// The string dimension: a compiled chain of 300 string rules skips them all
// for a packet in which no pattern occurs, and tests only the candidates
// when one does, with the linear walk's counters.
TEST(StringScan, CompiledChainsSkipStringRulesWhenNoPatternOccurs) {
  std::string text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
  for (int i = 0; i < 300; ++i) text += "-A FORWARD -m string --string \"pattern" + std::to_string(i) + "x\" --algo bm\n";
  text += "-A FORWARD -p udp\nCOMMIT\n";
  const Ruleset rules = read_iptables_save(text, "strings");
  const HostModel host = default_docker_host();
  const auto run = [&](ChainAlgo algo, const std::string& payload) {
    PipelineConfig config;
    config.algo = algo;
    auto pipeline = Pipeline::build(rules, host, config);
    std::vector<uint8_t> frame = test::ethernet(
        {}, test::ipv4({.src = test::ip4(203, 0, 113, 9), .dst = test::ip4(172, 17, 0, 2), .proto = kProtoUdp},
                       test::udp({.sport = 4000, .dport = 53, .payload = std::vector<uint8_t>(payload.begin(),
                                                                                               payload.end())})));
    PacketIn in;
    const uint16_t eth0 = *host.iface_id("eth0");
    EXPECT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), LinkType::Ethernet, eth0, in.key),
              ParseStatus::Ok);
    in.frame = frame.data();
    in.len = static_cast<uint32_t>(frame.size());
    in.in_iface = eth0;
    in.ts_ns = 1'000'000'000ULL;
    PacketOut out;
    pipeline->process(std::span(&in, 1), std::span(&out, 1));
    EXPECT_EQ(out.fate, Fate::Forwarded);
    WriteOptions wo;
    wo.counters = true;
    return std::make_pair(pipeline->stats().rules_tested, write_iptables_save(pipeline->counters_ruleset(), wo));
  };
  for (const std::string payload : {"nothing to see", "has pattern17x", "has pattern17x and pattern250x"}) {
    SCOPED_TRACE(payload);
    const auto linear = run(ChainAlgo::kLinear, payload);
    EXPECT_GE(linear.first, 301U);
    for (ChainAlgo algo : all_chain_algos()) {
      if (algo == ChainAlgo::kLinear) continue;
      SCOPED_TRACE(chain_algo_name(algo));
      const auto compiled = run(algo, payload);
      EXPECT_EQ(compiled.second, linear.second);
      // No pattern, or one: a few lookups and the one candidate; two: every
      // string rule is a candidate (each a lookup and a check).
      EXPECT_LT(compiled.first, payload.find(" and ") == std::string::npos ? 10U : 610U);
    }
  }
}

}  // namespace
}  // namespace nfb
