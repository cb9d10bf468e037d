// AclClassifier (DPDK rte_acl behind the classifier interface) against the
// linear walk: every bundled ClassBench 1K set (jiachang_acl1_1k with its
// trace), the 10K sets with the first 200,000 headers of their traces,
// random rule sets using all eight dimensions (several boxes per position,
// residual flags, empty and over-wide ranges) with keys drawn inside boxes
// and random start positions, every rte_acl algorithm this machine runs,
// one and several contexts, odd burst sizes. Also the byte order of every
// field, the start-position fallback, memory reporting, and the build and
// EAL failure messages. Fixed seeds; raw mt19937_64 output only (the
// standard fixes it, unlike distributions).
#include "classifier/acl.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "classifier/classbench.h"
#include "classifier/classifier.h"
#include "classifier/dpdk_eal.h"
#include "tests/random_boxes.h"

namespace nfb {
namespace {

// avx512x32 needs the EAL to allow 512-bit SIMD.
const std::vector<std::string> kEalArgs = {"--force-max-simd-bitwidth=512", "--log-level=lib.eal:warning"};

std::string data_path(const std::string& name) {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/data/classbench/" + name;
}

uint32_t draw(std::mt19937_64& rng, uint32_t lo, uint32_t hi) {
  return lo + static_cast<uint32_t>(rng() % (uint64_t{hi} - lo + 1));
}
bool chance(std::mt19937_64& rng, unsigned percent) { return rng() % 100 < percent; }

std::string key_str(const ClassifierKey& k) {
  return fmt::format("src {:#x} dst {:#x} sport {} dport {} proto {} in {} out {} ct {}", k.v[kDimSrcIp],
                     k.v[kDimDstIp], k.v[kDimSrcPort], k.v[kDimDstPort], k.v[kDimProto], k.v[kDimInIface],
                     k.v[kDimOutIface], k.v[kDimCtState]);
}

// acl's answers for keys/starts, asked in bursts of uneven sizes (around the
// internal 256) so every split of a burst is exercised.
std::vector<uint32_t> acl_answers(const Classifier& acl, const std::vector<ClassifierKey>& keys,
                                  const std::vector<uint32_t>& starts) {
  static constexpr size_t kSizes[] = {1, 7, 255, 256, 257, 1000, 4096};
  std::vector<uint32_t> out(keys.size(), 0xdeadbeef);
  size_t at = 0;
  for (size_t s = 0; at < keys.size(); ++s) {
    const size_t n = std::min(kSizes[s % std::size(kSizes)], keys.size() - at);
    acl.lookup(std::span(keys).subspan(at, n),
               starts.empty() ? std::span<const uint32_t>() : std::span(starts).subspan(at, n),
               std::span(out).subspan(at, n));
    at += n;
  }
  return out;
}

std::vector<uint32_t> linear_answers(const LinearClassifier& linear, const std::vector<ClassifierKey>& keys,
                                     const std::vector<uint32_t>& starts) {
  std::vector<uint32_t> out(keys.size());
  linear.lookup(keys, starts, out);
  return out;
}

// Checks acl against the expected answers; prints the first few differences.
void expect_same(const Classifier& acl, const std::vector<ClassifierKey>& keys, const std::vector<uint32_t>& starts,
                 const std::vector<uint32_t>& expected, const std::string& what) {
  const std::vector<uint32_t> got = acl_answers(acl, keys, starts);
  size_t wrong = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (got[i] == expected[i]) continue;
    if (++wrong <= 5) {
      ADD_FAILURE() << what << ": key " << i << " (" << key_str(keys[i]) << ") start "
                    << (starts.empty() ? 0 : starts[i]) << ": acl " << got[i] << ", linear " << expected[i];
    }
  }
  EXPECT_EQ(wrong, 0U) << what << ": " << wrong << " of " << keys.size() << " lookups differ";
}

ClassifierKey key_in(const Box& b, std::mt19937_64& rng) {
  ClassifierKey k;
  for (unsigned d = 0; d < kDims; ++d) {
    const Dim dim = static_cast<Dim>(d);
    const uint32_t hi = std::min(b.r[d].hi, field_max(dim));
    const uint32_t lo = std::min(b.r[d].lo, hi);
    // Edges half of the time: that is where a wrong byte order or range
    // translation shows.
    const unsigned how = static_cast<unsigned>(rng() % 4);
    k.v[d] = how == 0 ? lo : how == 1 ? hi : draw(rng, lo, hi);
  }
  return k;
}

// Keys inside random boxes (most) and random keys near them.
std::vector<ClassifierKey> keys_for(const RuleBoxes& rules, size_t n, std::mt19937_64& rng) {
  std::vector<ClassifierKey> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    ClassifierKey k;
    if (!rules.boxes.empty()) k = key_in(rules.boxes[rng() % rules.boxes.size()], rng);
    if (rules.boxes.empty() || chance(rng, 20)) {
      // Perturb some dimensions: near misses and random points.
      for (unsigned d = 0; d < kDims; ++d) {
        if (!chance(rng, 30)) continue;
        const uint32_t max = field_max(static_cast<Dim>(d));
        k.v[d] = chance(rng, 50) ? draw(rng, 0, max) : ((k.v[d] + (chance(rng, 50) ? 1U : max)) & max);
      }
    }
    keys.push_back(k);
  }
  return keys;
}

// Start positions: 0, random, and just past / at the key's first match (so
// the fallback scan after rte_acl's too-early answer runs often).
std::vector<uint32_t> starts_for(const LinearClassifier& linear, const std::vector<ClassifierKey>& keys,
                                 uint32_t rules, std::mt19937_64& rng) {
  const std::vector<uint32_t> first = linear_answers(linear, keys, {});
  std::vector<uint32_t> starts(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const unsigned how = static_cast<unsigned>(rng() % 10);
    if (how < 3) {
      starts[i] = 0;
    } else if (how < 6) {
      starts[i] = draw(rng, 0, rules + 1);
    } else if (how < 9 && first[i] != kNoMatch) {
      starts[i] = first[i] + (how == 8 ? 0U : 1U);
    } else {
      starts[i] = chance(rng, 50) ? rules : 0xffffffffU;
    }
  }
  return starts;
}

class AclTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { start_dpdk_eal(kEalArgs); }

  // The rte_acl algorithms this machine runs (scalar at least).
  static const std::vector<AclAlgorithm>& algorithms() {
    static const std::vector<AclAlgorithm> algs = [] {
      RuleBoxes one;
      one.rules = 1;
      one.boxes.push_back(Box::any(0));
      AclClassifier probe(one);
      std::vector<AclAlgorithm> out;
      for (AclAlgorithm a : {AclAlgorithm::kScalar, AclAlgorithm::kSse, AclAlgorithm::kAvx2,
                             AclAlgorithm::kAvx512x16, AclAlgorithm::kAvx512x32}) {
        try {
          probe.set_algorithm(a);
          out.push_back(a);
        } catch (const std::invalid_argument&) {
        }
      }
      return out;
    }();
    return algs;
  }
};

RuleBoxes load_boxes(const std::string& file) {
  const Ruleset rs = load_classbench_rules(data_path(file));
  return classbench_boxes(classbench_chain(rs));
}

std::vector<ClassifierKey> trace_keys(const std::string& file, size_t limit) {
  const ClassBenchTrace trace = load_classbench_trace(data_path(file));
  std::vector<ClassifierKey> keys;
  for (size_t i = 0; i < trace.keys.size() && i < limit; ++i) keys.push_back(classbench_key(trace.keys[i]));
  return keys;
}

// ---------------------------------------------------------------- basics

TEST_F(AclTest, EveryDimensionAtItsEdges) {
  // One box per dimension restricting only it; keys just inside and just
  // outside each edge. A field at the wrong offset or in the wrong byte
  // order fails here.
  const std::array<Range, kDims> ranges = {
      Range{0x0a000100, 0x0a0001ff},  // src /24
      Range{0xc0a80000, 0xc0a8ffff},  // dst /16
      Range{1024, 2047},              // sport
      Range{0x0150, 0x0150},          // dport 336: bytes 01 50
      Range{17, 17},                  // proto
      Range{3, 0x0102},               // in iface
      Range{0x0200, 0x02ff},          // out iface
      Range{2, 8},                    // ct_state
      Range{6, 17},                   // ct_proto
      Range{0x0a000000, 0x0affffff},  // ct_orig_src /8
      Range{0xc6336401, 0xc6336401},  // ct_orig_dst /32
      Range{1000, 1999},              // ct_orig_src_port
      Range{10000, 10000},            // ct_orig_dst_port
      Range{0xac110002, 0xac110005},  // ct_repl_src (no prefix)
      Range{0x01020304, 0x01020307},  // ct_repl_dst /30
      Range{0x0102, 0x0201},          // ct_repl_src_port
      Range{80, 443},                 // ct_repl_dst_port
      Range{0x4000, 0x7fff},          // mark
      Range{1, 1},                    // connmark
      Range{100, 1500},               // length
      Range{0x0300, 0x03ff},          // icmp type 3, any code
      Range{0x80, 0x8f},              // tcp flags
      Range{1, 2},                    // pkttype
      Range{2, 2},                    // src addrtype
      Range{1, 3},                    // dst addrtype
      Range{1, 1},                    // ct dir
      Range{100, 431999},             // ct expire
  };
  static_assert(kDims == 27, "a range for every dimension");
  for (unsigned d = 0; d < kDims; ++d) {
    const Dim dim = static_cast<Dim>(d);
    RuleBoxes rules;
    rules.rules = 2;
    Box b = Box::any(1);
    b.r[d] = ranges[d];
    rules.boxes.push_back(b);
    AclClassifier acl(rules);
    for (AclAlgorithm a : algorithms()) {
      acl.set_algorithm(a);
      std::vector<ClassifierKey> keys(4);
      keys[0].v[d] = ranges[d].lo;
      keys[1].v[d] = ranges[d].hi;
      keys[2].v[d] = ranges[d].lo - 1;
      keys[3].v[d] = ranges[d].hi + 1;
      for (ClassifierKey& k : keys) k.v[d] &= field_max(dim);
      std::vector<uint32_t> got(keys.size());
      acl.lookup(keys, {}, got);
      EXPECT_EQ(got, (std::vector<uint32_t>{1, 1, kNoMatch, kNoMatch}))
          << dim_name(dim) << " with " << acl_algorithm_name(a);
    }
  }
}

TEST_F(AclTest, LowerPositionWinsOverMoreSpecificRule) {
  RuleBoxes rules;
  rules.rules = 3;
  Box wide = Box::any(0);
  wide.r[kDimDstPort] = Range{80, 80};
  Box narrow = Box::any(2);
  narrow.r[kDimSrcIp] = Range{0x01020304, 0x01020304};
  narrow.r[kDimDstPort] = Range{80, 80};
  narrow.r[kDimProto] = Range{6, 6};
  rules.boxes = {wide, narrow};
  AclClassifier acl(rules);
  ClassifierKey both;
  both.v[kDimSrcIp] = 0x01020304;
  both.v[kDimDstPort] = 80;
  both.v[kDimProto] = 6;
  ClassifierKey neither = both;
  neither.v[kDimDstPort] = 81;
  std::vector<ClassifierKey> keys = {both, neither};
  std::vector<uint32_t> got(2);
  acl.lookup(keys, {}, got);
  EXPECT_EQ(got, (std::vector<uint32_t>{0, kNoMatch}));
  // From position 1 on, the narrow rule is the first match.
  const std::vector<uint32_t> starts = {1, 1};
  acl.lookup(keys, starts, got);
  EXPECT_EQ(got, (std::vector<uint32_t>{2, kNoMatch}));
}

TEST_F(AclTest, StartPositionsSkipEarlierMatches) {
  // Positions 0 and 2 match everything; 1 and 3 match nothing the key has.
  RuleBoxes rules;
  rules.rules = 4;
  Box other = Box::any(1);
  other.r[kDimProto] = Range{99, 99};
  Box other3 = other;
  other3.position = 3;
  rules.boxes = {Box::any(0), other, Box::any(2), other3};
  for (uint32_t per_context : {0U, 1U}) {
    AclOptions opt;
    opt.max_boxes_per_context = per_context;
    AclClassifier acl(rules, opt);
    std::vector<ClassifierKey> keys(6);
    const std::vector<uint32_t> starts = {0, 1, 2, 3, 4, 0xffffffffU};
    std::vector<uint32_t> got(keys.size());
    acl.lookup(keys, starts, got);
    EXPECT_EQ(got, (std::vector<uint32_t>{0, 2, 2, kNoMatch, kNoMatch, kNoMatch})) << per_context;
  }
}

TEST_F(AclTest, SeveralBoxesPerPositionAndResidualsAreReported) {
  RuleBoxes rules;
  rules.rules = 2;
  Box a = Box::any(0);
  a.r[kDimDstPort] = Range{22, 22};
  a.residual = true;
  Box b = Box::any(0);
  b.r[kDimDstPort] = Range{443, 443};
  b.residual = true;
  Box c = Box::any(1);
  c.r[kDimDstPort] = Range{0, 1000};
  rules.boxes = {a, b, c};
  AclOptions opt;
  opt.max_boxes_per_context = 1;  // boxes of one position stay in one context
  AclClassifier acl(rules, opt);
  EXPECT_EQ(acl.contexts(), 2U);
  std::vector<ClassifierKey> keys(4);
  keys[0].v[kDimDstPort] = 22;
  keys[1].v[kDimDstPort] = 443;
  keys[2].v[kDimDstPort] = 80;
  keys[3].v[kDimDstPort] = 2000;
  std::vector<uint32_t> got(keys.size());
  acl.lookup(keys, {}, got);
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 0, 1, kNoMatch}));
}

TEST_F(AclTest, NoBoxesOrOnlyEmptyBoxesMatchNothing) {
  RuleBoxes none;
  none.rules = 3;
  Box empty = Box::any(1);
  empty.r[kDimSrcPort] = Range{10, 9};  // lo > hi: matches nothing
  Box out_of_width = Box::any(2);
  out_of_width.r[kDimProto] = Range{256, 300};  // beyond the protocol's 8 bits
  RuleBoxes empties = none;
  empties.boxes = {empty, out_of_width};
  for (const RuleBoxes* rules : {&none, &empties}) {
    AclClassifier acl(*rules);
    EXPECT_EQ(acl.contexts(), 0U);
    EXPECT_NE(acl.algorithm(), AclAlgorithm::kBest);
    std::vector<ClassifierKey> keys(3);
    keys[1].v[kDimSrcPort] = 9;
    keys[2].v[kDimSrcPort] = 10;
    std::vector<uint32_t> got(keys.size(), 0);
    acl.lookup(keys, {}, got);
    EXPECT_EQ(got, (std::vector<uint32_t>(3, kNoMatch)));
  }
}

TEST_F(AclTest, NonPrefixAddressAndProtocolRanges) {
  RuleBoxes rules;
  rules.rules = 2;
  Box b = Box::any(0);
  b.r[kDimSrcIp] = Range{0x0a0000fe, 0x0a000301};  // crosses /24 boundaries: a RANGE field
  b.r[kDimProto] = Range{6, 17};                   // not exact or any: a RANGE field
  rules.boxes.push_back(b);
  rules.boxes.push_back(Box::any(1));
  AclClassifier acl(rules);
  std::vector<ClassifierKey> keys(5);
  const uint32_t srcs[] = {0x0a0000fd, 0x0a0000fe, 0x0a000200, 0x0a000301, 0x0a000302};
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i].v[kDimSrcIp] = srcs[i];
    keys[i].v[kDimProto] = 6;
  }
  std::vector<uint32_t> got(keys.size());
  acl.lookup(keys, {}, got);
  EXPECT_EQ(got, (std::vector<uint32_t>{1, 0, 0, 0, 1}));
  keys[2].v[kDimProto] = 18;
  acl.lookup(keys, {}, got);
  EXPECT_EQ(got[2], 1U);
}

TEST_F(AclTest, AlgorithmsAndNames) {
  for (AclAlgorithm a : {AclAlgorithm::kBest, AclAlgorithm::kScalar, AclAlgorithm::kSse, AclAlgorithm::kAvx2,
                         AclAlgorithm::kAvx512x16, AclAlgorithm::kAvx512x32, AclAlgorithm::kNeon,
                         AclAlgorithm::kAltivec}) {
    EXPECT_EQ(parse_acl_algorithm(acl_algorithm_name(a)), a);
  }
  EXPECT_EQ(parse_acl_algorithm("avx512"), std::nullopt);
  EXPECT_EQ(parse_acl_algorithm(""), std::nullopt);
  ASSERT_FALSE(algorithms().empty());
  EXPECT_EQ(algorithms().front(), AclAlgorithm::kScalar);

  RuleBoxes rules;
  rules.rules = 1;
  rules.boxes.push_back(Box::any(0));
  AclClassifier best(rules);
  // kBest is the widest implementation that runs.
  EXPECT_EQ(best.algorithm(), algorithms().back());
  AclOptions opt;
  opt.algorithm = AclAlgorithm::kScalar;
  AclClassifier scalar(rules, opt);
  EXPECT_EQ(scalar.algorithm(), AclAlgorithm::kScalar);
  EXPECT_EQ(scalar.name(), "acl");
}

TEST_F(AclTest, EalStartsOnceWithTheDocumentedArguments) {
  EXPECT_TRUE(dpdk_eal_running());
  EXPECT_FALSE(start_dpdk_eal(std::vector<std::string>{"--this-is-ignored"}));
  const std::vector<std::string> args = dpdk_eal_args();
  const std::vector<std::string> expected = {"nfbench", "--no-huge",    "--no-pci", "--no-shconf",
                                             "--no-telemetry", "-m", "1024", kEalArgs[0], kEalArgs[1]};
  EXPECT_EQ(args, expected);
}

TEST_F(AclTest, MemoryIsReported) {
  const RuleBoxes small = load_boxes("neurocuts_acl1_1k.rules");
  const RuleBoxes large = load_boxes("neurocuts_acl1_10k.rules");
  AclClassifier a(small);
  AclClassifier b(large);
  // rte_acl keeps a copy of every rule: 16 bytes of rule data and 16 per
  // field (proto, src, dst, sport, dport here), besides its tries.
  EXPECT_GE(a.acl_bytes(), small.boxes.size() * (16 + 5 * 16));
  EXPECT_GE(b.acl_bytes(), large.boxes.size() * (16 + 5 * 16));
  EXPECT_GT(b.acl_bytes(), a.acl_bytes());
  EXPECT_GE(a.memory_bytes(), a.acl_bytes() + small.boxes.size() * sizeof(Box));
  EXPECT_LT(a.acl_bytes(), size_t{256} << 20);  // an acl1 1K context is a few MB, not the whole heap
}

// ---------------------------------------------------------- build errors

TEST_F(AclTest, BuildFailuresNameTheReason) {
  auto message = [](const RuleBoxes& rules, const AclOptions& opt) -> std::string {
    try {
      AclClassifier acl(rules, opt);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(no error)";
  };
  RuleBoxes unsorted;
  unsorted.rules = 2;
  unsorted.boxes = {Box::any(1), Box::any(0)};
  EXPECT_EQ(message(unsorted, {}), "acl: boxes must be sorted by position");

  RuleBoxes beyond;
  beyond.rules = 2;
  beyond.boxes = {Box::any(0), Box::any(2)};
  EXPECT_EQ(message(beyond, {}), "acl: box position 2 beyond the rule count 2");

  RuleBoxes too_many;
  too_many.rules = 0x20000000;  // 2^29: one more than rte_acl has priorities for
  EXPECT_EQ(message(too_many, {}), "acl: 536870912 rules, but rte_acl priorities allow at most 536870911 positions");

  AclOptions tiny;
  tiny.max_size = 4096;
  EXPECT_EQ(message(load_boxes("neurocuts_acl1_1k.rules"), tiny),
            "acl: rte_acl_build of positions 0..941 (942 boxes) failed: the run-time structure does not fit "
            "max_size = 4096 bytes even with the smallest tries");

  AclOptions neon;
  neon.algorithm = AclAlgorithm::kNeon;
  RuleBoxes ok;
  ok.rules = 1;
  ok.boxes = {Box::any(0)};
  EXPECT_EQ(message(ok, neon).rfind("acl: rte_acl algorithm neon is not available here: ", 0), 0U)
      << message(ok, neon);
  AclClassifier acl(ok);
  const AclAlgorithm before = acl.algorithm();
  EXPECT_THROW(acl.set_algorithm(AclAlgorithm::kAltivec), std::invalid_argument);
  EXPECT_EQ(acl.algorithm(), before);
}

// The EAL refuses an unknown option; the error names the arguments and every
// later call repeats it. Run in a fresh process (threadsafe death-test
// style re-executes the binary for this test alone), where no EAL runs yet.
TEST(DpdkEalDeathTest, FailedStartIsAClearErrorEveryTime) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::string first;
        std::string second;
        try {
          start_dpdk_eal(std::vector<std::string>{"--no-such-eal-option"});
        } catch (const DpdkEalError& e) {
          first = e.what();
        }
        try {
          start_dpdk_eal();
        } catch (const DpdkEalError& e) {
          second = e.what();
        }
        std::fprintf(stderr, "first=[%s] same=%d running=%d\n", first.c_str(), first == second,
                     dpdk_eal_running());
        std::exit(0);
      },
      testing::ExitedWithCode(0),
      "first=\\[DPDK EAL did not start \\(rte_eal_init nfbench --no-huge --no-pci --no-shconf --no-telemetry "
      "-m 1024 --no-such-eal-option\\): .*\\] same=1 running=0");
}

// ------------------------------------------------------ equal to linear

TEST_F(AclTest, EqualsLinearOnClassBench1k) {
  std::mt19937_64 rng(1001);
  for (const char* file : {"neurocuts_acl1_1k.rules", "neurocuts_fw1_1k.rules", "neurocuts_ipc1_1k.rules",
                           "jiachang_acl1_1k.rules"}) {
    SCOPED_TRACE(file);
    const RuleBoxes rules = load_boxes(file);
    const LinearClassifier linear(rules);
    std::vector<ClassifierKey> keys = keys_for(rules, 20000, rng);
    if (std::string(file) == "jiachang_acl1_1k.rules") {
      const std::vector<ClassifierKey> trace = trace_keys("jiachang_acl1_1k.trace", SIZE_MAX);
      ASSERT_EQ(trace.size(), 11069U);
      keys.insert(keys.begin(), trace.begin(), trace.end());
    }
    const std::vector<uint32_t> starts = starts_for(linear, keys, rules.rules, rng);
    const std::vector<uint32_t> first = linear_answers(linear, keys, {});
    const std::vector<uint32_t> from = linear_answers(linear, keys, starts);
    AclClassifier acl(rules);
    for (AclAlgorithm a : algorithms()) {
      acl.set_algorithm(a);
      const std::string what = fmt::format("{} {}", file, acl_algorithm_name(a));
      expect_same(acl, keys, {}, first, what);
      expect_same(acl, keys, starts, from, what + " with starts");
    }
    AclOptions split;
    split.max_boxes_per_context = 100;
    AclClassifier several(rules, split);
    EXPECT_EQ(several.contexts(), (rules.boxes.size() + 99) / 100);
    expect_same(several, keys, {}, first, std::string(file) + " 100 boxes per context");
    expect_same(several, keys, starts, from, std::string(file) + " 100 boxes per context with starts");
  }
}

TEST_F(AclTest, EqualsLinearOnClassBench10kTraces) {
  std::mt19937_64 rng(10001);
  for (const char* set : {"acl1", "fw1", "ipc1"}) {
    SCOPED_TRACE(set);
    const RuleBoxes rules = load_boxes(fmt::format("neurocuts_{}_10k.rules", set));
    const LinearClassifier linear(rules);
    const std::vector<ClassifierKey> keys = trace_keys(fmt::format("classbench_{}_10k.trace.xz", set), 200000);
    ASSERT_EQ(keys.size(), 200000U);
    const std::vector<uint32_t> first = linear_answers(linear, keys, {});
    AclClassifier acl(rules);
    for (AclAlgorithm a : algorithms()) {
      acl.set_algorithm(a);
      expect_same(acl, keys, {}, first, fmt::format("{} 10k {}", set, acl_algorithm_name(a)));
    }
    // Start positions on part of the trace (the linear walk is the slow side).
    const std::vector<ClassifierKey> some(keys.begin(), keys.begin() + 20000);
    const std::vector<uint32_t> starts = starts_for(linear, some, rules.rules, rng);
    const std::vector<uint32_t> from = linear_answers(linear, some, starts);
    expect_same(acl, some, starts, from, fmt::format("{} 10k with starts", set));
    if (std::string(set) == "acl1") {
      AclOptions split;
      split.max_boxes_per_context = 2500;
      AclClassifier several(rules, split);
      EXPECT_EQ(several.contexts(), 4U);
      expect_same(several, keys, {}, first, "acl1 10k 2500 boxes per context");
      expect_same(several, some, starts, from, "acl1 10k 2500 boxes per context with starts");
    }
  }
}

// A random address: from a few base networks, so prefixes nest and overlap.
uint32_t random_address(std::mt19937_64& rng) {
  static constexpr uint32_t kBases[] = {0x0a000000, 0x0a010000, 0xc0a80000, 0xac100000, 0x00000000, 0xffff0000};
  return kBases[rng() % std::size(kBases)] | static_cast<uint32_t>(rng() % 0x20000);
}

Range random_address_range(std::mt19937_64& rng, bool prefixes_only) {
  if (!prefixes_only && chance(rng, 15)) {
    const uint32_t a = random_address(rng);
    const uint32_t b = random_address(rng);
    return Range{std::min(a, b), std::max(a, b)};
  }
  static constexpr unsigned kLengths[] = {0, 0, 8, 16, 16, 20, 24, 24, 28, 31, 32, 32};
  const unsigned len = kLengths[rng() % std::size(kLengths)];
  const uint32_t mask = len == 0 ? 0 : ~0U << (32 - len);
  const uint32_t base = random_address(rng) & mask;
  return Range{base, base | ~mask};
}

Range random_port_range(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0: return Range{0, 65535};
    case 1: return Range{0, 0xffffffffU};  // over-wide: clipped to 16 bits
    case 2: {
      static constexpr uint32_t kPorts[] = {22, 53, 80, 443, 1024, 8080, 0, 65535};
      const uint32_t p = kPorts[rng() % std::size(kPorts)];
      return Range{p, p};
    }
    case 3: return chance(rng, 50) ? Range{1024, 65535} : Range{0, 1023};
    default: {
      const uint32_t a = draw(rng, 0, 65535);
      const uint32_t b = draw(rng, 0, 65535);
      return Range{std::min(a, b), std::max(a, b)};
    }
  }
}

// A random rule set over all dimensions: `rules` positions, some without
// boxes, some with two or three; residual flags; rare empty boxes.
RuleBoxes random_rules(std::mt19937_64& rng, uint32_t rules, bool prefixes_only, bool five_tuple_only) {
  RuleBoxes out;
  out.rules = rules;
  for (uint32_t p = 0; p < rules; ++p) {
    const unsigned boxes = chance(rng, 5) ? 0 : chance(rng, 25) ? draw(rng, 2, 3) : 1;
    for (unsigned i = 0; i < boxes; ++i) {
      Box b = Box::any(p);
      b.r[kDimSrcIp] = random_address_range(rng, prefixes_only);
      b.r[kDimDstIp] = random_address_range(rng, prefixes_only);
      b.r[kDimSrcPort] = random_port_range(rng);
      b.r[kDimDstPort] = random_port_range(rng);
      if (chance(rng, 60)) {
        static constexpr uint32_t kProtos[] = {6, 17, 1, 47};
        const uint32_t proto = kProtos[rng() % std::size(kProtos)];
        b.r[kDimProto] = Range{proto, proto};
      } else if (!prefixes_only && chance(rng, 20)) {
        b.r[kDimProto] = Range{6, 17};
      }
      if (!five_tuple_only) {
        for (Dim d : {kDimInIface, kDimOutIface}) {
          const unsigned how = static_cast<unsigned>(rng() % 10);
          if (how < 3) {
            const uint32_t id = draw(rng, 1, 6);
            b.r[d] = Range{id, id};
          } else if (how == 3) {
            b.r[d] = Range{draw(rng, 1, 3), draw(rng, 4, 0x1ff)};
          }
        }
        const unsigned how = static_cast<unsigned>(rng() % 10);
        if (how < 3) {
          const uint32_t state = 1U << draw(rng, 0, 4);  // one-hot conntrack state
          b.r[kDimCtState] = Range{state, state};
        } else if (how == 3) {
          b.r[kDimCtState] = Range{2, 12};
        }
      }
      if (chance(rng, 1)) b.r[kDimDstPort] = Range{500, 400};  // empty
      b.residual = chance(rng, 20);
      out.boxes.push_back(b);
    }
  }
  return out;
}

TEST_F(AclTest, EqualsLinearOnRandomRuleSets) {
  std::mt19937_64 rng(424242);
  size_t lookups = 0;
  for (unsigned round = 0; round < 36; ++round) {
    const uint32_t rules = round % 6 == 0 ? draw(rng, 1, 10) : draw(rng, 20, 600);
    const bool prefixes_only = round % 3 == 0;
    const bool five_tuple_only = round % 4 == 1;
    const RuleBoxes boxes = random_rules(rng, rules, prefixes_only, five_tuple_only);
    const LinearClassifier linear(boxes);
    const std::vector<ClassifierKey> keys = keys_for(boxes, 15000, rng);
    const std::vector<uint32_t> starts = starts_for(linear, keys, rules, rng);
    const std::vector<uint32_t> first = linear_answers(linear, keys, {});
    const std::vector<uint32_t> from = linear_answers(linear, keys, starts);
    static constexpr uint32_t kPerContext[] = {0, 0, 1, 5, 64, 250};
    AclOptions opt;
    opt.max_boxes_per_context = kPerContext[round % std::size(kPerContext)];
    opt.algorithm = algorithms()[round % algorithms().size()];
    const std::string what = fmt::format("round {} ({} rules, {} boxes, {} per context, {})", round, rules,
                                         boxes.boxes.size(), opt.max_boxes_per_context,
                                         acl_algorithm_name(opt.algorithm));
    AclClassifier acl(boxes, opt);
    expect_same(acl, keys, {}, first, what);
    expect_same(acl, keys, starts, from, what + " with starts");
    lookups += 2 * keys.size();
  }
  EXPECT_GE(lookups, size_t{1000000});
}


// Every dimension, with the shared generator (tests/random_boxes.h): the
// record's extra fields, their byte order and the wider record stride.
TEST_F(AclTest, EqualsLinearOnEveryDimension) {
  size_t lookups = 0;
  for (unsigned round = 0; round < 12; ++round) {
    RandomRules gen(7000 + round);
    const uint32_t rules = round % 4 == 0 ? 1 + gen.below(10) : 20 + gen.below(500);
    const uint32_t dims = std::array<uint32_t, 3>{kAllDims, kChainDims, kFiveTuple}[round % 3];
    const RuleBoxes boxes = gen.make(rules, dims);
    const LinearClassifier linear(boxes);
    const std::vector<ClassifierKey> keys = gen.keys(boxes, 20000);
    const std::vector<uint32_t> starts = gen.starts(keys.size(), rules);
    AclOptions opt;
    opt.max_boxes_per_context = round % 2 == 0 ? 0 : 100;
    opt.algorithm = algorithms()[round % algorithms().size()];
    const std::string what = fmt::format("round {} ({} rules, {} boxes, {})", round, rules, boxes.boxes.size(),
                                         acl_algorithm_name(opt.algorithm));
    AclClassifier acl(boxes, opt);
    expect_same(acl, keys, {}, linear_answers(linear, keys, {}), what);
    expect_same(acl, keys, starts, linear_answers(linear, keys, starts), what + " with starts");
    lookups += 2 * keys.size();
  }
  EXPECT_GE(lookups, size_t{400000});
}

}  // namespace
}  // namespace nfb
