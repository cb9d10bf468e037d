// DtreeClassifier equals LinearClassifier: on every bundled 1K ClassBench
// set, on the 10K sets with the first 200,000 headers of their traces, and
// on random rule sets over every dimension (several boxes a position,
// residual flags, empty boxes) with keys drawn mostly inside boxes and
// random start positions; under every instruction set this CPU has, every
// partition mode and option extremes that force big leaves, shallow trees
// and the replication budget. Fixed seeds throughout. Build errors name
// their reason.
#include "classifier/dtree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "classifier/classifier.h"
#include "rules/classbench.h"
#include "tests/support/classbench_data.h"
#include "tests/support/equals_linear.h"
#include "tests/support/random_boxes.h"

namespace nfb {
namespace {

/// The instruction sets this CPU runs (scalar always).
std::vector<DtreeIsa> isas() {
  std::vector<DtreeIsa> out{DtreeIsa::kScalar};
  if (dtree_isa_supported(DtreeIsa::kAvx2)) out.push_back(DtreeIsa::kAvx2);
  if (dtree_isa_supported(DtreeIsa::kAvx512)) out.push_back(DtreeIsa::kAvx512);
  return out;
}

/// dtree against the linear walk, asked in bursts of random sizes (so group
/// boundaries inside the kernel are crossed). Returns the lookups made.
size_t expect_same(const LinearClassifier& linear, const Classifier& dtree, const std::vector<ClassifierKey>& keys,
                   const std::vector<uint32_t>& starts, uint64_t seed, const std::string& label) {
  return test::expect_equals_linear(dtree, linear, keys, starts, test::random_bursts(keys.size(), seed, 300), label);
}

struct RandomCase {
  uint64_t seed;
  uint32_t rules;
  uint32_t dims;
  size_t keys;
  DtreeOptions opt;
};

DtreeOptions make_opt(uint32_t leaf, uint32_t fanout, double rep, uint32_t depth, DtreePartition part) {
  DtreeOptions o;
  o.leaf_size = leaf;
  o.fanout = fanout;
  o.max_replication = rep;
  o.max_depth = depth;
  o.partition = part;
  return o;
}

TEST(DtreeRandom, EqualsLinearOnRandomRuleSets) {
  const std::vector<RandomCase> cases = {
      {1, 1500, kAllDims, 60000, make_opt(8, 8, 8.0, 48, DtreePartition::kAuto)},
      {2, 1500, kFiveTuple, 60000, make_opt(8, 8, 8.0, 48, DtreePartition::kAddress)},
      {3, 800, kAllDims, 40000, make_opt(1, 2, 64.0, 64, DtreePartition::kNone)},
      {4, 800, kAllDims, 40000, make_opt(2, 3, 1.0, 48, DtreePartition::kNone)},  // budget bites at once
      {5, 1200, kAllDims, 40000, make_opt(33, 8, 8.0, 2, DtreePartition::kAddress)},  // shallow, big leaves
      {6, 1200, kFiveTuple, 40000, make_opt(200, 5, 2.0, 48, DtreePartition::kAuto)},  // leaves of many blocks
      {7, 600, (1U << kDimDstPort) | (1U << kDimCtState), 40000, make_opt(4, 8, 8.0, 48, DtreePartition::kAuto)},
      {8, 2000, kAllDims & ~(1U << kDimSrcIp), 40000, make_opt(16, 7, 4.0, 48, DtreePartition::kAuto)},
      {9, 50, kAllDims, 20000, make_opt(8, 8, 8.0, 48, DtreePartition::kAuto)},
      {10, 3, kFiveTuple, 5000, make_opt(1, 2, 8.0, 48, DtreePartition::kAuto)},
  };
  size_t lookups = 0;
  for (const RandomCase& c : cases) {
    RandomRules gen(c.seed);
    const RuleBoxes rb = gen.make(c.rules, c.dims);
    const std::vector<ClassifierKey> keys = gen.keys(rb, c.keys);
    const std::vector<uint32_t> starts = gen.starts(keys.size(), c.rules);
    const LinearClassifier linear(rb);
    for (DtreeIsa isa : isas()) {
      DtreeOptions opt = c.opt;
      opt.isa = isa;
      const DtreeClassifier dtree(rb, opt);
      const std::string label = "seed " + std::to_string(c.seed) + " isa " + std::string(dtree_isa_name(isa));
      // Every other ISA run uses random starts, the others the empty span.
      const bool with_starts = (c.seed + static_cast<uint64_t>(isa)) % 2 == 0;
      lookups += expect_same(linear, dtree, keys, with_starts ? starts : std::vector<uint32_t>{}, c.seed, label);
      lookups += expect_same(linear, dtree, std::vector<ClassifierKey>(keys.begin(), keys.begin() + 2000),
                             with_starts ? std::vector<uint32_t>{} : std::vector<uint32_t>(starts.begin(), starts.begin() + 2000),
                             c.seed + 1, label + " (other start mode)");
      EXPECT_GE(dtree.stats().trees, 1U) << label;
    }
  }
  RecordProperty("lookups", static_cast<int>(lookups));
}

TEST(DtreeRandom, BudgetAndDepthLimitsAreHonoured) {
  RandomRules gen(11);
  const RuleBoxes rb = gen.make(1000, kAllDims);
  const DtreeClassifier tight(rb, make_opt(1, 8, 1.0, 48, DtreePartition::kNone));
  EXPECT_TRUE(tight.stats().budget_hit);
  EXPECT_LE(tight.stats().leaf_boxes, rb.boxes.size() + 4096);
  const DtreeClassifier shallow(rb, make_opt(1, 8, 64.0, 1, DtreePartition::kNone));
  EXPECT_LE(shallow.stats().depth, 1U);
  EXPECT_LE(shallow.stats().nodes, 1U);
  const DtreeClassifier parts(rb, make_opt(8, 8, 8.0, 48, DtreePartition::kAddress));
  EXPECT_GE(parts.stats().trees, 2U);
  const DtreeClassifier one(rb, make_opt(8, 8, 8.0, 48, DtreePartition::kNone));
  EXPECT_EQ(one.stats().trees, 1U);
  EXPECT_GT(one.memory_bytes(), 0U);
  EXPECT_EQ(one.name(), "dtree");
}

// ---------------------------------------------------------------------------
// Edge cases.

TEST(DtreeEdges, NoBoxesNoMatch) {
  for (uint32_t rules : {0U, 7U}) {
    RuleBoxes rb;
    rb.rules = rules;
    const DtreeClassifier dtree(rb);
    std::vector<ClassifierKey> keys(40);
    keys[1].v.fill(0xffffffffU);
    std::vector<uint32_t> out(keys.size(), 1);
    dtree.lookup(keys, {}, out);
    for (uint32_t r : out) EXPECT_EQ(r, kNoMatch);
  }
}

TEST(DtreeEdges, BoxesSpanningEverythingAnswerFirstPositionFromStart) {
  RuleBoxes rb;
  rb.rules = 10;
  for (uint32_t p : {2U, 2U, 5U, 9U}) rb.boxes.push_back(Box::any(p));
  const DtreeClassifier dtree(rb);
  const std::vector<ClassifierKey> keys(12);
  std::vector<uint32_t> starts;
  for (uint32_t s = 0; s < 12; ++s) starts.push_back(s);
  std::vector<uint32_t> out(keys.size());
  dtree.lookup(keys, starts, out);
  const uint32_t want[] = {2, 2, 2, 5, 5, 5, 9, 9, 9, 9, kNoMatch, kNoMatch};
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(out[i], want[i]) << "start " << i;
}

TEST(DtreeEdges, EmptyBoxesNeverMatchAndExtremeValuesWork) {
  RuleBoxes rb;
  rb.rules = 4;
  Box empty = Box::any(0);
  empty.r[kDimDstPort] = Range{10, 9};
  Box top = Box::any(1);
  top.r[kDimSrcIp] = Range{0xffffffffU, 0xffffffffU};
  Box bottom = Box::any(2);
  bottom.r[kDimSrcIp] = Range{0, 0};
  bottom.r[kDimDstPort] = Range{0, 0};
  Box rest = Box::any(3);
  rest.r[kDimProto] = Range{6, 6};
  rb.boxes = {empty, top, bottom, rest};
  for (DtreeIsa isa : isas()) {
    DtreeOptions opt;
    opt.isa = isa;
    opt.leaf_size = 1;
    const DtreeClassifier dtree(rb, opt);
    std::vector<ClassifierKey> keys(4);
    keys[0].v[kDimSrcIp] = 0xffffffffU;
    keys[1].v[kDimSrcIp] = 0;
    keys[2].v[kDimSrcIp] = 7;
    keys[3].v[kDimSrcIp] = 7;
    keys[3].v[kDimProto] = 6;
    std::vector<uint32_t> out(4);
    dtree.lookup(keys, {}, out);
    EXPECT_EQ(out[0], 1U);
    EXPECT_EQ(out[1], 2U);
    EXPECT_EQ(out[2], kNoMatch);
    EXPECT_EQ(out[3], 3U);
  }
}

TEST(DtreeEdges, PartitionedTreesTakeTheMinimum) {
  // Position 0 is wide in both addresses (the "rest" tree), 1 has a small
  // source (first tree), 2 a small destination (second tree): a key inside
  // all three must get 0, then 1 and 2 as start moves past them.
  RuleBoxes rb;
  rb.rules = 4;
  Box wide = Box::any(0);
  wide.r[kDimDstPort] = Range{80, 80};
  Box src = Box::any(1);
  src.r[kDimSrcIp] = Range{0x0a000000, 0x0a0000ff};
  Box dst = Box::any(2);
  dst.r[kDimDstIp] = Range{0x0b000000, 0x0b0000ff};
  Box both = Box::any(3);
  both.r[kDimSrcIp] = Range{0x0a000000, 0x0a000000};
  both.r[kDimDstIp] = Range{0x0b000000, 0x0b000000};
  rb.boxes = {wide, src, dst, both};
  for (DtreeIsa isa : isas()) {
    DtreeOptions opt;
    opt.isa = isa;
    opt.partition = DtreePartition::kAddress;
    const DtreeClassifier dtree(rb, opt);
    EXPECT_EQ(dtree.stats().trees, 3U);
    ClassifierKey k;
    k.v[kDimSrcIp] = 0x0a000000;
    k.v[kDimDstIp] = 0x0b000000;
    k.v[kDimDstPort] = 80;
    const std::vector<ClassifierKey> keys(5, k);
    const std::vector<uint32_t> starts = {0, 1, 2, 3, 4};
    std::vector<uint32_t> out(keys.size());
    dtree.lookup(keys, starts, out);
    EXPECT_EQ(out, (std::vector<uint32_t>{0, 1, 2, 3, kNoMatch})) << dtree_isa_name(isa);
    std::vector<ClassifierKey> others(3, k);
    others[0].v[kDimDstPort] = 81;  // not the wide box: the first tree's 1
    others[1].v[kDimDstPort] = 81;
    others[1].v[kDimSrcIp] = 0x0a000100;  // only the destination tree's 2
    others[2].v[kDimSrcIp] = 0x0a000100;
    others[2].v[kDimDstIp] = 0x0b000100;  // the wide box alone
    others[2].v[kDimDstPort] = 80;
    std::vector<uint32_t> got(others.size());
    dtree.lookup(others, {}, got);
    EXPECT_EQ(got, (std::vector<uint32_t>{1, 2, 0})) << dtree_isa_name(isa);
  }
}

TEST(DtreeEdges, EmptyBurstAndWholeSpanMatchBurstByBurst) {
  RandomRules gen(21);
  const RuleBoxes rb = gen.make(300, kFiveTuple);
  const DtreeClassifier dtree(rb);
  dtree.lookup({}, {}, {});
  const std::vector<ClassifierKey> keys = gen.keys(rb, 1000);
  std::vector<uint32_t> whole(keys.size());
  dtree.lookup(keys, {}, whole);
  for (size_t burst : {1U, 31U, 32U, 33U, 64U, 257U}) {
    std::vector<uint32_t> part(keys.size());
    for (size_t i = 0; i < keys.size(); i += burst) {
      const size_t n = std::min(burst, keys.size() - i);
      dtree.lookup(std::span(keys).subspan(i, n), {}, std::span(part).subspan(i, n));
    }
    EXPECT_EQ(part, whole) << "burst " << burst;
  }
  // An all-zero start span gives the same answers as no span.
  std::vector<uint32_t> zero_start(keys.size());
  dtree.lookup(keys, std::vector<uint32_t>(keys.size(), 0), zero_start);
  EXPECT_EQ(zero_start, whole);
}

// ---------------------------------------------------------------------------
// Build errors.

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DtreeErrors, UnsortedBoxes) {
  RuleBoxes rb;
  rb.rules = 3;
  rb.boxes = {Box::any(0), Box::any(2), Box::any(1)};
  EXPECT_EQ(error_of([&] { DtreeClassifier d(rb); }),
            "dtree: box 2 (position 1) comes after position 2: boxes must be sorted by position");
}

TEST(DtreeErrors, PositionBeyondRuleCount) {
  RuleBoxes rb;
  rb.rules = 2;
  rb.boxes = {Box::any(0), Box::any(2)};
  EXPECT_EQ(error_of([&] { DtreeClassifier d(rb); }), "dtree: box 1 has position 2, beyond the rule count 2");
}

TEST(DtreeErrors, OptionsOutOfRange) {
  RuleBoxes rb;
  rb.rules = 1;
  rb.boxes = {Box::any(0)};
  auto with = [&](auto set) {
    DtreeOptions o;
    set(o);
    return error_of([&] { DtreeClassifier d(rb, o); });
  };
  EXPECT_EQ(with([](DtreeOptions& o) { o.leaf_size = 0; }), "dtree: leaf_size 0 is outside 1..1024");
  EXPECT_EQ(with([](DtreeOptions& o) { o.leaf_size = 1025; }), "dtree: leaf_size 1025 is outside 1..1024");
  EXPECT_EQ(with([](DtreeOptions& o) { o.fanout = 1; }), "dtree: fanout 1 is outside 2..8");
  EXPECT_EQ(with([](DtreeOptions& o) { o.fanout = 9; }), "dtree: fanout 9 is outside 2..8");
  EXPECT_EQ(with([](DtreeOptions& o) { o.max_replication = 0.5; }), "dtree: max_replication 0.5 is below 1");
  EXPECT_EQ(with([](DtreeOptions& o) { o.max_replication = std::nan(""); }),
            "dtree: max_replication nan is below 1");
  EXPECT_EQ(with([](DtreeOptions& o) { o.max_depth = 0; }), "dtree: max_depth 0 is outside 1..64");
  EXPECT_EQ(with([](DtreeOptions& o) { o.max_depth = 65; }), "dtree: max_depth 65 is outside 1..64");
  EXPECT_EQ(with([](DtreeOptions&) {}), "(no error)");
}

TEST(DtreeErrors, InstructionSetThisCpuLacks) {
  RuleBoxes rb;
  rb.rules = 1;
  rb.boxes = {Box::any(0)};
  for (DtreeIsa isa : {DtreeIsa::kAvx2, DtreeIsa::kAvx512}) {
    DtreeOptions o;
    o.isa = isa;
    if (dtree_isa_supported(isa)) {
      const DtreeClassifier d(rb, o);
      EXPECT_EQ(d.stats().isa, isa);
    } else {
      EXPECT_EQ(error_of([&] { DtreeClassifier d(rb, o); }),
                "dtree: this CPU does not support the " + std::string(dtree_isa_name(isa)) + " instruction set");
    }
  }
}

// ---------------------------------------------------------------------------
// ClassBench sets.

/// Keys in the ClassBench key space (5 tuple, the rest 0) drawn from the
/// rules: a point in a random box, its endpoints and their neighbours.
std::vector<ClassifierKey> classbench_like_keys(const RuleBoxes& rb, size_t n, uint64_t seed) {
  RandomRules gen(seed);
  std::vector<ClassifierKey> keys = gen.keys(rb, n);
  for (ClassifierKey& k : keys) {
    for (unsigned d = kDimInIface; d < kDims; ++d) k.v[d] = 0;
  }
  return keys;
}

class DtreeClassBench1k : public ::testing::TestWithParam<const char*> {};

TEST_P(DtreeClassBench1k, EqualsLinear) {
  const RuleBoxes rb = test::load_classbench_boxes(GetParam());
  const LinearClassifier linear(rb);
  const std::vector<ClassifierKey> keys = classbench_like_keys(rb, 30000, 31);
  RandomRules gen(32);
  const std::vector<uint32_t> starts = gen.starts(keys.size(), rb.rules);
  for (DtreePartition part : {DtreePartition::kNone, DtreePartition::kAddress, DtreePartition::kAuto}) {
    for (DtreeIsa isa : isas()) {
      DtreeOptions opt;
      opt.partition = part;
      opt.isa = isa;
      const DtreeClassifier dtree(rb, opt);
      const std::string label = std::string(GetParam()) + " partition " + std::to_string(static_cast<int>(part)) +
                                " isa " + std::string(dtree_isa_name(isa));
      expect_same(linear, dtree, keys, {}, 33, label);
      expect_same(linear, dtree, keys, starts, 34, label + " with starts");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sets, DtreeClassBench1k,
                         ::testing::Values("neurocuts_acl1_1k.rules", "neurocuts_fw1_1k.rules",
                                           "neurocuts_ipc1_1k.rules", "jiachang_acl1_1k.rules"));

TEST(DtreeClassBench, JiachangAcl1WithItsTrace) {
  const RuleBoxes rb = test::load_classbench_boxes("jiachang_acl1_1k.rules");
  const std::vector<ClassifierKey> keys = test::load_classbench_trace_keys("jiachang_acl1_1k.trace", std::numeric_limits<size_t>::max());
  ASSERT_GT(keys.size(), 10000U);
  const LinearClassifier linear(rb);
  RandomRules gen(41);
  const std::vector<uint32_t> starts = gen.starts(keys.size(), rb.rules);
  for (DtreeIsa isa : isas()) {
    DtreeOptions opt;
    opt.isa = isa;
    const DtreeClassifier dtree(rb, opt);
    expect_same(linear, dtree, keys, {}, 42, "jiachang trace");
    expect_same(linear, dtree, keys, starts, 43, "jiachang trace with starts");
  }
}

class DtreeClassBench10k : public ::testing::TestWithParam<const char*> {};

TEST_P(DtreeClassBench10k, EqualsLinearOnTrace) {
  const std::string set = GetParam();
  const RuleBoxes rb = test::load_classbench_boxes("neurocuts_" + set + "_10k.rules");
  const std::vector<ClassifierKey> keys = test::load_classbench_trace_keys("classbench_" + set + "_10k.trace.xz", 200000);
  ASSERT_EQ(keys.size(), 200000U);
  const LinearClassifier linear(rb);
  const DtreeClassifier dtree(rb);  // the default build, as benchmarked
  expect_same(linear, dtree, keys, {}, 51, set + " 10k trace");
  // Resuming from later positions (what a residual rule makes the caller do).
  const std::vector<ClassifierKey> head(keys.begin(), keys.begin() + 20000);
  RandomRules gen(52);
  expect_same(linear, dtree, head, gen.starts(head.size(), rb.rules), 53, set + " 10k trace with starts");
}

INSTANTIATE_TEST_SUITE_P(Sets, DtreeClassBench10k, ::testing::Values("acl1", "fw1", "ipc1"));

}  // namespace
}  // namespace nfb
