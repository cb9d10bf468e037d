// AclClassifier (DPDK rte_acl behind the classifier interface) against the
// linear walk: every bundled ClassBench 1K set (jiachang_acl1_1k with its
// trace), the 10K sets with the first 200,000 headers of their traces, and
// random rule sets (tests/support/random_boxes.h) over the five-tuple, a chain's
// dimensions, all dimensions and random subsets of them (several boxes per
// position, residual flags, empty and over-wide ranges, rounds with only
// prefixes), with random start positions and starts just past the first
// match; every rte_acl algorithm this machine runs, one and several
// contexts, odd burst sizes. Also the key record: its layout for ClassBench
// and for groups of narrow dimensions, and every dimension at its edges in
// many layouts (a field at the wrong offset, width or byte order fails
// there); the start-position fallback, memory reporting, and the build and
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

#include "base/dpdk_eal.h"
#include "classifier/classifier.h"
#include "rules/classbench.h"
#include "tests/support/classbench_data.h"
#include "tests/support/equals_linear.h"
#include "tests/support/random_boxes.h"

namespace nfb {
namespace {

using test::linear_answers;
using test::load_classbench_boxes;
using test::load_classbench_trace_keys;

// avx512x32 needs the EAL to allow 512-bit SIMD.
const std::vector<std::string> kEalArgs = {"--force-max-simd-bitwidth=512", "--log-level=lib.eal:warning"};

uint32_t draw(std::mt19937_64& rng, uint32_t lo, uint32_t hi) {
  return lo + static_cast<uint32_t>(rng() % (uint64_t{hi} - lo + 1));
}
bool chance(std::mt19937_64& rng, unsigned percent) { return rng() % 100 < percent; }

// rte_acl's answers in bursts of uneven sizes, around its internal 256.
const std::vector<size_t> kAclBursts{1, 7, 255, 256, 257, 1000, 4096};

void expect_same(const Classifier& acl, const std::vector<ClassifierKey>& keys, const std::vector<uint32_t>& starts,
                 const std::vector<uint32_t>& expected, const std::string& what) {
  test::expect_answers(acl, keys, starts, expected, kAclBursts, what);
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

// ---------------------------------------------------------------- basics

// A range in every dimension, its edges chosen so that a field at the
// wrong offset, of the wrong width or in the wrong byte order shows.
const std::array<Range, kDims>& edge_ranges() {
  static const std::array<Range, kDims> ranges = {
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
      Range{0x80, 0x8f},              // tcp flags (a bit prefix)
      Range{1, 2},                    // pkttype
      Range{2, 2},                    // src addrtype
      Range{1, 3},                    // dst addrtype
      Range{1, 1},                    // ct dir
      Range{100, 431999},             // ct expire
      Range{1, 1},                    // string
  };
  static_assert(kDims == 28, "a range for every dimension");
  return ranges;
}

// One box (position 1 of 2) restricting the dimensions of `dims` to their
// edge ranges; keys with every one of them at an edge (match) and with one
// just outside (no match), the other dimensions anything. Every algorithm.
void expect_edges(uint32_t dims, const std::vector<AclAlgorithm>& algorithms, std::mt19937_64& rng) {
  const std::array<Range, kDims>& ranges = edge_ranges();
  RuleBoxes rules;
  rules.rules = 2;
  Box b = Box::any(1);
  for (unsigned d = 0; d < kDims; ++d) {
    if ((dims & (1U << d)) != 0) b.r[d] = ranges[d];
  }
  rules.boxes.push_back(b);
  AclClassifier acl(rules);
  std::vector<ClassifierKey> keys;
  std::vector<uint32_t> expected;
  for (unsigned i = 0; i < 8; ++i) {  // inside: all low edges, all high edges, mixes
    ClassifierKey k;
    for (unsigned d = 0; d < kDims; ++d) {
      const bool low = i == 0 || (i > 1 && rng() % 2 == 0);
      const uint32_t any = i < 4 ? 0 : static_cast<uint32_t>(rng()) & field_max(static_cast<Dim>(d));
      k.v[d] = (dims & (1U << d)) == 0 ? any : low ? ranges[d].lo : ranges[d].hi;
    }
    keys.push_back(k);
    expected.push_back(1);
  }
  for (unsigned d = 0; d < kDims; ++d) {  // one dimension just outside
    if ((dims & (1U << d)) == 0) continue;
    for (const uint32_t v : {ranges[d].lo - 1, ranges[d].hi + 1}) {
      ClassifierKey k = keys[rng() % keys.size()];
      k.v[d] = v & field_max(static_cast<Dim>(d));
      keys.push_back(k);
      expected.push_back(kNoMatch);
    }
  }
  for (AclAlgorithm a : algorithms) {
    acl.set_algorithm(a);
    expect_same(acl, keys, {}, expected,
                fmt::format("dims {:#x} with {} (layout {})", dims, acl_algorithm_name(a), acl.layout()));
  }
}

TEST_F(AclTest, EveryDimensionAtItsEdges) {
  // One box per dimension restricting only it: every dimension alone in its
  // group (with pads), the first byte a pad unless it is the protocol.
  std::mt19937_64 rng(27);
  for (unsigned d = 0; d < kDims; ++d) {
    SCOPED_TRACE(dim_name(static_cast<Dim>(d)));
    expect_edges(1U << d, algorithms(), rng);
  }
}

TEST_F(AclTest, EdgesInManyLayouts) {
  // Dimensions sharing groups: the five-tuple, a chain's, all of them, the
  // narrow ones in every count with and without a lone 16-bit one, and
  // random subsets.
  std::mt19937_64 rng(2727);
  std::vector<uint32_t> sets = {kFiveTuple, kChainDims, kAllDims, kAllDims & ~(1U << kDimProto)};
  constexpr Dim kBytes[] = {kDimCtState, kDimCtProto, kDimTcpFlags, kDimPkttype,
                            kDimSrcAddrtype, kDimDstAddrtype, kDimCtDir};
  uint32_t bytes = 0;
  for (const Dim d : kBytes) {
    bytes |= 1U << d;
    sets.push_back(bytes);
    sets.push_back(bytes | (1U << kDimInIface));
    sets.push_back(bytes | (1U << kDimIcmp) | (1U << kDimDstPort) | (1U << kDimCtOrigSrcPort));
  }
  for (int i = 0; i < 40; ++i) sets.push_back(static_cast<uint32_t>(rng()) & kAllDims);
  for (const uint32_t dims : sets) expect_edges(dims, algorithms(), rng);
}

TEST_F(AclTest, RecordLayouts) {
  auto layout = [](uint32_t dims) {
    RuleBoxes rules;
    rules.rules = 1;
    Box b = Box::any(0);
    for (unsigned d = 0; d < kDims; ++d) {
      if ((dims & (1U << d)) != 0) b.r[d] = edge_ranges()[d];
    }
    rules.boxes.push_back(b);
    const AclClassifier acl(rules);
    return fmt::format("{} = {} B", acl.layout(), acl.record_bytes());
  };
  // ClassBench, as it always was; src_port unrestricted: a pad in its slot.
  EXPECT_EQ(layout(kFiveTuple),
            "proto:bitmask@0/1 src_ip:mask@4/4 dst_ip:mask@8/4 src_port:range@12/2 dst_port:range@14/2 = 16 B");
  EXPECT_EQ(layout(kFiveTuple & ~(1U << kDimSrcPort)),
            "proto:bitmask@0/1 src_ip:mask@4/4 dst_ip:mask@8/4 pad:bitmask@12/2 dst_port:range@14/2 = 16 B");
  for (const char* file : {"neurocuts_acl1_1k.rules", "neurocuts_fw1_1k.rules"}) {
    const AclClassifier acl(load_classbench_boxes(file));
    EXPECT_EQ(acl.record_bytes(), 16U) << file;
    EXPECT_EQ(acl.layout().rfind("proto:bitmask@0/1 src_ip:mask@4/4 dst_ip:mask@8/4 ", 0), 0U) << acl.layout();
  }
  // No protocol: a pad first. A 32-bit range that is no prefix: RANGE.
  EXPECT_EQ(layout(1U << kDimCtReplSrc), "pad:bitmask@0/1 ct_repl_src:range@4/4 = 8 B");
  // One narrow dimension: padded to its group.
  EXPECT_EQ(layout(1U << kDimCtState), "pad:bitmask@0/1 ct_state:range@4/1 pad:bitmask@5/2 pad:bitmask@7/1 = 8 B");
  // Five narrow ones: four in a group, the fifth padded.
  EXPECT_EQ(layout((1U << kDimCtState) | (1U << kDimCtProto) | (1U << kDimTcpFlags) | (1U << kDimPkttype) |
                   (1U << kDimCtDir)),
            "pad:bitmask@0/1 ct_state:range@4/1 ct_proto:range@5/1 tcp_flags:bitmask@6/1 pkttype:range@7/1 "
            "ct_dir:bitmask@8/1 pad:bitmask@9/2 pad:bitmask@11/1 = 12 B");
  // Lone 16-bit ones pair up; the last one left takes two narrow ones.
  EXPECT_EQ(layout((1U << kDimDstPort) | (1U << kDimCtOrigSrcPort) | (1U << kDimLength) | (1U << kDimCtState) |
                   (1U << kDimTcpFlags)),
            "pad:bitmask@0/1 dst_port:range@4/2 ct_orig_src_port:range@6/2 length:range@8/2 ct_state:range@10/1 "
            "tcp_flags:bitmask@11/1 = 12 B");
  // A chain's dimensions.
  EXPECT_EQ(layout(kChainDims),
            "proto:bitmask@0/1 src_ip:mask@4/4 dst_ip:mask@8/4 src_port:range@12/2 dst_port:range@14/2 "
            "in_iface:range@16/2 out_iface:range@18/2 ct_orig_dst_port:range@20/2 ct_state:range@22/1 "
            "pad:bitmask@23/1 ct_orig_dst:mask@24/4 mark:mask@28/4 = 32 B");
  // All of them.
  EXPECT_EQ(layout(kAllDims).substr(layout(kAllDims).size() - 6), "= 72 B");
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
  const RuleBoxes small = load_classbench_boxes("neurocuts_acl1_1k.rules");
  const RuleBoxes large = load_classbench_boxes("neurocuts_acl1_10k.rules");
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
  EXPECT_EQ(message(load_classbench_boxes("neurocuts_acl1_1k.rules"), tiny),
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
  RandomRules gen(1001);
  for (const char* file : {"neurocuts_acl1_1k.rules", "neurocuts_fw1_1k.rules", "neurocuts_ipc1_1k.rules",
                           "jiachang_acl1_1k.rules"}) {
    SCOPED_TRACE(file);
    const RuleBoxes rules = load_classbench_boxes(file);
    const LinearClassifier linear(rules);
    std::vector<ClassifierKey> keys = gen.keys(rules, 20000);
    if (std::string(file) == "jiachang_acl1_1k.rules") {
      const std::vector<ClassifierKey> trace = load_classbench_trace_keys("jiachang_acl1_1k.trace", SIZE_MAX);
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
    const RuleBoxes rules = load_classbench_boxes(fmt::format("neurocuts_{}_10k.rules", set));
    const LinearClassifier linear(rules);
    const std::vector<ClassifierKey> keys = load_classbench_trace_keys(fmt::format("classbench_{}_10k.trace.xz", set), 200000);
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

// Makes every 32-bit and 8-bit range of the boxes a prefix (a non-prefix
// one shrinks to its low end), so those dimensions become MASK and BITMASK
// fields.
void prefixes_only(RuleBoxes& rules) {
  for (Box& b : rules.boxes) {
    for (unsigned d = 0; d < kDims; ++d) {
      const unsigned bits = field_bits(static_cast<Dim>(d));
      Range& r = b.r[d];
      const uint64_t size = uint64_t{r.hi} - r.lo + 1;
      const bool prefix = r.lo <= r.hi && (size & (size - 1)) == 0 && (r.lo & (size - 1)) == 0;
      if ((bits == 32 || bits == 8) && r.lo <= r.hi && !prefix) r.hi = r.lo;
    }
  }
}

TEST_F(AclTest, EqualsLinearOnRandomRuleSets) {
  std::mt19937_64 rng(424242);
  size_t lookups = 0;
  std::array<size_t, 4> kinds{};
  for (unsigned round = 0; round < 48; ++round) {
    RandomRules gen(7000 + round);
    const uint32_t rules = round % 6 == 0 ? 1 + gen.below(10) : 20 + gen.below(580);
    // The five-tuple, a chain's dimensions, all, and a random subset.
    const unsigned kind = round % 4;
    const uint32_t dims = std::array<uint32_t, 4>{kFiveTuple, kChainDims, kAllDims,
                                                  static_cast<uint32_t>(rng()) & kAllDims}[kind];
    ++kinds[kind];
    RuleBoxes boxes = gen.make(rules, dims);
    if (round % 3 == 0) prefixes_only(boxes);
    const LinearClassifier linear(boxes);
    const std::vector<ClassifierKey> keys = gen.keys(boxes, 17000);
    const std::vector<uint32_t> starts = starts_for(linear, keys, rules, rng);
    const std::vector<uint32_t> first = linear_answers(linear, keys, {});
    const std::vector<uint32_t> from = linear_answers(linear, keys, starts);
    static constexpr uint32_t kPerContext[] = {0, 0, 1, 5, 64, 250};
    AclOptions opt;
    opt.max_boxes_per_context = kPerContext[round % std::size(kPerContext)];
    opt.algorithm = algorithms()[round % algorithms().size()];
    AclClassifier acl(boxes, opt);
    const std::string what =
        fmt::format("round {} (dims {:#x}, {} rules, {} boxes, {} per context, {}, layout {})", round, dims, rules,
                    boxes.boxes.size(), opt.max_boxes_per_context, acl_algorithm_name(opt.algorithm), acl.layout());
    expect_same(acl, keys, {}, first, what);
    expect_same(acl, keys, starts, from, what + " with starts");
    lookups += 2 * keys.size();
  }
  EXPECT_GE(lookups, size_t{1560000});  // as many as the two tests this one replaced
  EXPECT_EQ(kinds, (std::array<size_t, 4>{12, 12, 12, 12}));
}

// A rule set with fewer live boxes than min_boxes gets no context; its
// scan answers what the linear walk does, from every start.
TEST_F(AclTest, FewBoxesAreScannedWithoutAContext) {
  std::mt19937_64 rng(31337);
  unsigned scanned = 0;
  unsigned built = 0;
  for (unsigned round = 0; round < 40; ++round) {
    RandomRules gen(9100 + round);
    const uint32_t rules = 1 + gen.below(12);
    RuleBoxes boxes = gen.make(rules, round % 2 == 0 ? kChainDims : kFiveTuple);
    size_t live = 0;
    for (const Box& b : boxes.boxes) {
      bool empty = false;
      for (const Range& r : b.r) empty |= r.lo > r.hi;
      live += empty ? 0 : 1;
    }
    const LinearClassifier linear(boxes);
    const std::vector<ClassifierKey> keys = gen.keys(boxes, 2000);
    const std::vector<uint32_t> starts = starts_for(linear, keys, rules, rng);
    AclOptions opt;
    opt.min_boxes = 8;
    AclClassifier acl(boxes, opt);
    const std::string what = fmt::format("round {} ({} rules, {} live boxes)", round, rules, live);
    EXPECT_EQ(acl.scanned(), live > 0 && live < 8) << what;
    EXPECT_EQ(acl.contexts(), live >= 8 ? 1U : 0U) << what;
    scanned += acl.scanned() ? 1U : 0U;
    built += acl.contexts() > 0 ? 1U : 0U;
    expect_same(acl, keys, {}, linear_answers(linear, keys, {}), what);
    expect_same(acl, keys, starts, linear_answers(linear, keys, starts), what + " with starts");
  }
  EXPECT_GT(scanned, 5U);
  EXPECT_GT(built, 5U);
}

}  // namespace
}  // namespace nfb
