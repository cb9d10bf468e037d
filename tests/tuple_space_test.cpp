// TupleSpaceClassifier answers exactly like LinearClassifier: on the bundled
// ClassBench sets (1K with generated keys and the jiachang trace, 10K with
// the first 200,000 headers of their traces), on random rule sets
// (tests/support/random_boxes.h) over the five ClassBench dimensions, the dimensions
// a Docker host's chains use and all dimensions -- the last more than the
// four hashed words hold, so some are checked only as extra ranges -- with
// several boxes per position, keys mostly inside boxes and random start
// positions; the box check is exact at every field edge; the layout hashes
// what it should in as few words as fit; the tuple placement splits full
// buckets as documented; bad input is refused with a message that names the
// problem. Seeds are fixed.
#include "classifier/tuple_space.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "rules/classbench.h"
#include "tests/support/classbench_data.h"
#include "tests/support/equals_linear.h"
#include "tests/support/random_boxes.h"

namespace nfb {
namespace {

using ::testing::HasSubstr;

// The tuple classifier against the linear walk, in bursts of uneven sizes
// (so chunk boundaries fall everywhere). Returns the lookups made.
size_t expect_same(const Classifier& c, const LinearClassifier& ref, const std::vector<ClassifierKey>& keys,
                   const std::vector<uint32_t>& start, const std::string& what) {
  return test::expect_equals_linear(c, ref, keys, start, {1, 3, 64, 65, 200, 1000, 17}, what);
}

// For every key that matched: ask again from the position after its match
// (what the chain walk does when a residual check fails), and from a random
// start.
size_t expect_same_with_starts(const Classifier& c, const LinearClassifier& ref, const std::vector<ClassifierKey>& keys,
                               uint32_t rules, std::mt19937& rng, const std::string& what) {
  std::vector<uint32_t> first(keys.size());
  ref.lookup(keys, {}, first);
  std::vector<uint32_t> next(keys.size());
  std::vector<uint32_t> random(keys.size());
  std::uniform_int_distribution<uint32_t> pos(0, rules + 1);
  for (size_t i = 0; i < keys.size(); ++i) {
    next[i] = first[i] == kNoMatch ? rules : first[i] + 1;
    random[i] = i % 4 == 0 ? 0 : pos(rng);
  }
  return expect_same(c, ref, keys, next, what + " (from after the first match)") +
         expect_same(c, ref, keys, random, what + " (from random starts)");
}

uint32_t draw(std::mt19937& rng, uint32_t lo, uint32_t hi) {
  return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
}

// ---- Bundled ClassBench sets -------------------------------------------------

TEST(TupleSpaceClassBench, OneThousandRuleSetsWithKeysInsideRules) {
  std::mt19937 rng(20240601);
  RandomRules gen(20240601);
  for (const char* name : {"neurocuts_acl1_1k.rules", "neurocuts_fw1_1k.rules", "neurocuts_ipc1_1k.rules",
                           "jiachang_acl1_1k.rules"}) {
    SCOPED_TRACE(name);
    const RuleBoxes rules = test::load_classbench_boxes(name);
    const LinearClassifier ref(rules);
    const TupleSpaceClassifier tuple(rules);
    EXPECT_EQ(tuple.stats().words, 2U);
    EXPECT_EQ(tuple.stats().hashed_dims | tuple.stats().extra_dims, rules.used_dims());
    const std::vector<ClassifierKey> keys = gen.keys(rules, 30000);
    expect_same(tuple, ref, keys, {}, name);
    expect_same_with_starts(tuple, ref, keys, rules.rules, rng, name);
  }
}

TEST(TupleSpaceClassBench, JiachangAcl1WithItsTrace) {
  const RuleBoxes rules = test::load_classbench_boxes("jiachang_acl1_1k.rules");
  const std::vector<ClassifierKey> keys = test::load_classbench_trace_keys("jiachang_acl1_1k.trace");
  ASSERT_EQ(keys.size(), 11069U);
  const LinearClassifier ref(rules);
  std::mt19937 rng(7);
  for (const TupleSpaceOptions options :
       {TupleSpaceOptions{}, TupleSpaceOptions{1, 1, 8, 3, 1}, TupleSpaceOptions{64, 32, 1, 1, 3},
        TupleSpaceOptions{4, 8, 16, 8, 2}}) {
    const std::string what = "jiachang limit " + std::to_string(options.collision_limit) + " step " +
                             std::to_string(options.address_step) + " classes " +
                             std::to_string(options.max_protocol_classes) + " passes " +
                             std::to_string(options.placement_passes);
    const TupleSpaceClassifier tuple(rules, options);
    expect_same(tuple, ref, keys, {}, what);
    expect_same_with_starts(tuple, ref, keys, rules.rules, rng, what);
  }
}

TEST(TupleSpaceClassBench, TenThousandRuleSetsWithTheirTraces) {
  std::mt19937 rng(99);
  for (const char* set : {"acl1", "fw1", "ipc1"}) {
    SCOPED_TRACE(set);
    const RuleBoxes rules = test::load_classbench_boxes(std::string("neurocuts_") + set + "_10k.rules");
    const std::vector<ClassifierKey> keys =
        test::load_classbench_trace_keys(std::string("classbench_") + set + "_10k.trace.xz", 200000);
    ASSERT_EQ(keys.size(), 200000U);
    const LinearClassifier ref(rules);
    const TupleSpaceClassifier tuple(rules);
    const TupleSpaceStats& s = tuple.stats();
    std::cout << set << "_10k: " << rules.boxes.size() << " boxes, " << s.classes << " classes, " << s.box_copies
              << " stored, " << s.tuples << " tuples, " << s.buckets << " buckets, longest " << s.longest_bucket
              << ", " << s.words << " words, " << tuple.memory_bytes() << " bytes\n";
    // The five dimensions (acl1 has no source ports) in two words, nothing
    // left to extra ranges.
    EXPECT_EQ(s.words, 2U);
    EXPECT_EQ(s.hashed_dims, rules.used_dims());
    EXPECT_EQ(s.hashed_dims | kClassbenchDims, kClassbenchDims);
    EXPECT_EQ(s.extra_dims, 0U);
    // Compact: 40 bytes per stored box, copies within the budget, and slots.
    EXPECT_LE(s.box_copies, 3 * rules.boxes.size());
    EXPECT_LT(tuple.memory_bytes(), rules.boxes.size() * 200);
    EXPECT_LT(s.tuples, rules.boxes.size() / 50);
    expect_same(tuple, ref, keys, {}, set);
    // Requery a slice from after each first match and from random starts.
    const std::vector<ClassifierKey> some(keys.begin(), keys.begin() + 20000);
    expect_same_with_starts(tuple, ref, some, rules.rules, rng, set);
  }
}

// ---- Random rule sets ----------------------------------------------------------

TEST(TupleSpaceRandom, EqualsLinearOnRandomRuleSets) {
  size_t lookups = 0;
  for (uint32_t seed = 1; seed <= 24; ++seed) {
    RandomRules gen(seed * 7919);
    gen.empty_boxes = false;  // refused at build (TupleSpaceErrors)
    std::mt19937 rng(seed);
    const uint32_t rules = seed % 6 == 0 ? draw(rng, 1, 20) : draw(rng, 50, 1500);
    const uint32_t dims = std::array<uint32_t, 3>{kAllDims, kChainDims, kFiveTuple}[seed % 3];
    const RuleBoxes boxes = gen.make(rules, dims);
    TupleSpaceOptions options;
    options.collision_limit = std::array<uint32_t, 4>{16, 1, 3, 32}[seed % 4];
    options.address_step = std::array<uint32_t, 5>{16, 1, 4, 8, 32}[seed % 5];
    options.max_protocol_classes = std::array<uint32_t, 3>{8, 1, 16}[(seed / 3) % 3];
    options.max_copies = std::array<uint32_t, 2>{3, 8}[seed % 2];
    options.placement_passes = std::array<uint32_t, 4>{2, 1, 3, 2}[(seed / 2) % 4];
    const std::string what = "seed " + std::to_string(seed) + " (" + std::to_string(boxes.boxes.size()) +
                             " boxes, limit " + std::to_string(options.collision_limit) + ", step " +
                             std::to_string(options.address_step) + ", classes " +
                             std::to_string(options.max_protocol_classes) + ", copies " +
                             std::to_string(options.max_copies) + ", passes " +
                             std::to_string(options.placement_passes) + ")";
    SCOPED_TRACE(what);
    const LinearClassifier ref(boxes);
    const TupleSpaceClassifier tuple(boxes, options);
    const TupleSpaceStats& s = tuple.stats();
    EXPECT_EQ(s.hashed_dims | s.extra_dims, boxes.used_dims());
    EXPECT_EQ(s.hashed_dims & s.extra_dims, 0U);
    EXPECT_LE(s.words, TupleSpaceClassifier::kMaxWords);
    if (dims == kAllDims) {
      EXPECT_NE(s.extra_dims, 0U);  // 512 bits of fields, 256 hashed
    }
    EXPECT_LE(tuple.stats().buckets, tuple.stats().box_copies);
    EXPECT_LE(tuple.stats().box_copies, options.max_copies * boxes.boxes.size());
    EXPECT_LE(tuple.stats().classes, options.max_protocol_classes);
    const std::vector<ClassifierKey> keys = gen.keys(boxes, 15000);
    lookups += expect_same(tuple, ref, keys, {}, what);
    lookups += expect_same_with_starts(tuple, ref, keys, rules, rng, what);
  }
  EXPECT_GE(lookups, 1000000U);
}

// ---- Placement ----------------------------------------------------------------

Box src_prefix(uint32_t position, uint32_t addr, unsigned len) {
  Box b = Box::any(position);
  b.r[kDimSrcIp] = Range{addr & prefix_mask(len), (addr & prefix_mask(len)) | ~prefix_mask(len)};
  return b;
}

TEST(TupleSpacePlacement, FullBucketSpillsIntoALessRelaxedTuple) {
  // 64 /30s inside 10.0.0.0/24: relaxed to /24 they share one bucket; the 9th
  // finds it full and opens a /28 tuple (step 8 halved), where /30s share
  // buckets four at a time, under the limit.
  RuleBoxes rules;
  rules.rules = 64;
  for (uint32_t i = 0; i < 64; ++i) rules.boxes.push_back(src_prefix(i, 0x0a000000U + 4 * i, 30));
  const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{8, 8, 8, 3, 1});
  ASSERT_EQ(tuple.stats().tuples, 2U);
  EXPECT_EQ(tuple.tuple_info(0).lengths[kDimSrcIp], 24);
  EXPECT_EQ(tuple.tuple_info(1).lengths[kDimSrcIp], 28);
  EXPECT_EQ(tuple.tuple_info(1).lengths[kDimDstIp], 0);
  EXPECT_EQ(tuple.stats().longest_bucket, 8U);
  EXPECT_EQ(tuple.stats().buckets, 1U + 56U / 4U);

  const LinearClassifier ref(rules);
  std::mt19937 rng(3);
  const std::vector<ClassifierKey> keys = RandomRules(rng()).keys(rules, 5000);
  expect_same(tuple, ref, keys, {}, "/30s");
  expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "/30s");

  // A second pass tries the /28 tuple (56 boxes) before the /24 one (8): all
  // 64 fit there, four to a bucket, and the /24 tuple goes.
  const TupleSpaceClassifier twice(rules, TupleSpaceOptions{8, 8, 8, 3, 2});
  ASSERT_EQ(twice.stats().tuples, 1U);
  EXPECT_EQ(twice.tuple_info(0).lengths[kDimSrcIp], 28);
  EXPECT_EQ(twice.stats().buckets, 16U);
  EXPECT_EQ(twice.stats().longest_bucket, 4U);
  expect_same(twice, ref, keys, {}, "/30s, two passes");
  expect_same_with_starts(twice, ref, keys, rules.rules, rng, "/30s, two passes");
}

TEST(TupleSpacePlacement, EqualCoversShareOneBucketPastTheLimit) {
  // 100 boxes from 10.1.2.3/32 with destination ports 0x800+i..0x8ff-i:
  // every range has the cover 0x800/8, so no tuple can tell them apart.
  RuleBoxes rules;
  rules.rules = 100;
  for (uint32_t i = 0; i < 100; ++i) {
    Box b = src_prefix(i, 0x0a010203U, 32);
    b.r[kDimDstPort] = Range{0x800 + i, 0x8ff - i};
    rules.boxes.push_back(b);
  }
  const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{4, 8, 8, 3, 2});
  EXPECT_EQ(tuple.stats().longest_bucket, 100U - 4U);
  EXPECT_EQ(tuple.stats().tuples, 2U);  // relaxed (port wildcard) full at 4, then the exact cover
  const LinearClassifier ref(rules);
  std::mt19937 rng(4);
  const std::vector<ClassifierKey> keys = RandomRules(rng()).keys(rules, 5000);
  expect_same(tuple, ref, keys, {}, "equal covers");
  expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "equal covers");
}

TEST(TupleSpacePlacement, TuplesAreVisitedByClassThenBestPosition) {
  RandomRules gen(11);
  gen.empty_boxes = false;
  const RuleBoxes rules = gen.make(800, kChainDims);
  const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{2, 8, 8, 3, 2});
  ASSERT_GT(tuple.stats().tuples, 3U);
  EXPECT_EQ(tuple.stats().reseeds, 0U);
  for (size_t t = 0; t < tuple.stats().tuples; ++t) {
    const auto info = tuple.tuple_info(t);
    EXPECT_LT(info.protocol_class, tuple.stats().classes);
    EXPECT_LE(info.min_pos, info.max_pos);
    for (unsigned d = 0; d < kDims; ++d) EXPECT_LE(info.lengths[d], field_bits(static_cast<Dim>(d)));
    if (t == 0) continue;
    const auto prev = tuple.tuple_info(t - 1);
    EXPECT_LE(prev.protocol_class, info.protocol_class);
    if (prev.protocol_class == info.protocol_class) {
      EXPECT_LE(prev.min_pos, info.min_pos) << "tuple " << t;
    }
  }
}

// TCP (4 boxes), UDP (2), ICMP (1), any protocol (2), protocols 6..17 (1).
RuleBoxes protocol_rules() {
  RuleBoxes rules;
  const auto add = [&](uint32_t lo, uint32_t hi, uint32_t port) {
    Box b = Box::any(rules.rules++);
    b.r[kDimProto] = Range{lo, hi};
    b.r[kDimDstPort] = Range{port, port};
    rules.boxes.push_back(b);
  };
  add(6, 6, 80);
  add(0, 255, 80);
  add(17, 17, 53);
  add(6, 6, 443);
  add(6, 17, 443);
  add(1, 1, 0);
  add(6, 6, 22);
  add(17, 17, 80);
  add(6, 6, 25);
  add(0, 255, 0);
  return rules;
}

TEST(TupleSpacePlacement, ProtocolClassesByFrequencyWithinTheCopyBudget) {
  const RuleBoxes rules = protocol_rules();
  const LinearClassifier ref(rules);
  std::vector<ClassifierKey> keys;
  for (uint32_t proto : {0U, 1U, 6U, 7U, 17U, 18U, 255U}) {
    for (uint32_t port : {0U, 22U, 25U, 53U, 80U, 443U, 444U}) {
      ClassifierKey k;
      k.v[kDimProto] = proto;
      k.v[kDimDstPort] = port;
      keys.push_back(k);
    }
  }
  std::mt19937 rng(5);
  {
    // Classes TCP, UDP, ICMP, rest. Copies: TCP 4 + 2 any + 1 range, UDP 2 +
    // 2 + 1, ICMP 1 + 2, rest 2 any + 1 range (it holds 7..16).
    const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{16, 16, 8, 3, 2});
    EXPECT_EQ(tuple.stats().classes, 4U);
    EXPECT_EQ(tuple.stats().box_copies, 7U + 5U + 3U + 3U);
    EXPECT_EQ(tuple.protocol_class(6), 0U);
    EXPECT_EQ(tuple.protocol_class(17), 1U);
    EXPECT_EQ(tuple.protocol_class(1), 2U);
    EXPECT_EQ(tuple.protocol_class(0), 3U);
    EXPECT_EQ(tuple.protocol_class(47), 3U);
    expect_same(tuple, ref, keys, {}, "four classes");
    expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "four classes");
  }
  {
    // At most 2 classes: TCP and the rest.
    const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{16, 16, 2, 3, 2});
    EXPECT_EQ(tuple.stats().classes, 2U);
    EXPECT_EQ(tuple.stats().box_copies, 7U + 6U);
    expect_same(tuple, ref, keys, {}, "two classes");
  }
  {
    // Budget 1 copy per box: any split copies the any-protocol boxes.
    const TupleSpaceClassifier tuple(rules, TupleSpaceOptions{16, 16, 8, 1, 2});
    EXPECT_EQ(tuple.stats().classes, 1U);
    EXPECT_EQ(tuple.stats().box_copies, 10U);
    expect_same(tuple, ref, keys, {}, "one class");
  }
}

// ---- Edges ----------------------------------------------------------------------

TEST(TupleSpaceEdges, NoBoxesMatchesNothing) {
  for (uint32_t n : {0U, 5U}) {
    RuleBoxes rules;
    rules.rules = n;
    const TupleSpaceClassifier tuple(rules);
    EXPECT_EQ(tuple.stats().tuples, 0U);
    std::vector<ClassifierKey> keys(3);
    std::vector<uint32_t> out(3, 0);
    tuple.lookup(keys, {}, out);
    EXPECT_THAT(out, ::testing::Each(kNoMatch));
  }
}

TEST(TupleSpaceEdges, StartAtOrPastTheEndAndOutOfFieldKeys) {
  // A key value above a used field's maximum matches nothing (the boxes
  // restrict src port and ct state, so both are read).
  RuleBoxes rules;
  rules.rules = 3;
  rules.boxes = {Box::any(0), Box::any(2)};
  rules.boxes[0].r[kDimSrcPort] = Range{0, 65534};
  rules.boxes[1].r[kDimCtState] = Range{0, 254};
  const TupleSpaceClassifier tuple(rules);
  const LinearClassifier ref(rules);
  std::vector<ClassifierKey> keys(6);
  keys[4].v[kDimSrcPort] = 70000;  // wider than the field: no box holds it
  keys[5].v[kDimCtState] = 256;
  const std::vector<uint32_t> start = {0, 1, 3, 0xffffffffU, 0, 0};
  std::vector<uint32_t> out(6);
  tuple.lookup(keys, start, out);
  EXPECT_EQ(out, (std::vector<uint32_t>{0, 2, kNoMatch, kNoMatch, kNoMatch, kNoMatch}));
  expect_same(tuple, ref, keys, start, "edges");
}

TEST(TupleSpaceEdges, BoxCheckIsExactAtFieldEdges) {
  // The box check compares all fields of a packed word at once: ranges and
  // key values at 0, the maximum, around the middle (a field's top bit) and
  // just beside the ranges' ends, in adjacent fields of every width.
  constexpr Dim kEdgeDims[] = {kDimSrcIp, kDimSrcPort, kDimDstPort, kDimProto,  kDimInIface,
                               kDimCtState, kDimTcpFlags, kDimPkttype, kDimIcmp, kDimMark};
  std::mt19937 rng(77);
  const auto edge = [&](Dim d) -> uint32_t {
    const uint32_t max = field_max(d);
    const uint32_t half = max / 2 + 1;  // only the top bit set
    const uint32_t pick[] = {0, 1, half - 1, half, half + 1, max - 1, max, draw(rng, 0, max)};
    return pick[draw(rng, 0, 7)];
  };
  RuleBoxes rules;
  rules.rules = 300;
  for (uint32_t p = 0; p < rules.rules; ++p) {
    Box b = Box::any(p);
    for (Dim d : kEdgeDims) {
      if (draw(rng, 0, 2) == 0) continue;
      const uint32_t x = edge(d);
      const uint32_t y = edge(d);
      b.r[d] = Range{std::min(x, y), std::max(x, y)};
    }
    rules.boxes.push_back(b);
  }
  const TupleSpaceClassifier tuple(rules);
  EXPECT_EQ(tuple.stats().extra_dims, 0U);
  const LinearClassifier ref(rules);
  std::vector<ClassifierKey> keys(100000);
  for (ClassifierKey& k : keys) {
    const Box& b = rules.boxes[draw(rng, 0, rules.rules - 1)];
    for (Dim d : kEdgeDims) {
      const uint32_t max = field_max(d);
      switch (draw(rng, 0, 5)) {
        case 0: k.v[d] = b.r[d].lo; break;
        case 1: k.v[d] = b.r[d].hi; break;
        case 2: k.v[d] = b.r[d].lo == 0 ? max : b.r[d].lo - 1; break;
        case 3: k.v[d] = b.r[d].hi == max ? 0 : b.r[d].hi + 1; break;
        default: k.v[d] = edge(d); break;
      }
    }
  }
  expect_same(tuple, ref, keys, {}, "field edges");
}

// ---- Layout ---------------------------------------------------------------------

TEST(TupleSpaceLayout, ChainDimensionsAllHashedInFourWords) {
  RandomRules gen(5);
  gen.empty_boxes = false;
  const RuleBoxes rules = gen.make(2000, kChainDims);
  ASSERT_EQ(rules.used_dims(), kChainDims);
  const TupleSpaceClassifier tuple(rules);
  // 4 x 32 + 5 x 16 + 2 x 8 = 224 bits.
  EXPECT_EQ(tuple.stats().words, 4U);
  EXPECT_EQ(tuple.stats().hashed_dims, kChainDims);
  EXPECT_EQ(tuple.stats().extra_dims, 0U);
  const LinearClassifier ref(rules);
  std::mt19937 rng(5);
  const std::vector<ClassifierKey> keys = gen.keys(rules, 30000);
  expect_same(tuple, ref, keys, {}, "chain dims");
  expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "chain dims");
}

TEST(TupleSpaceLayout, EveryWordCountEqualsLinear) {
  // Dimension sets whose fields fill 1, 2, 3 and 4 words (packed by the
  // general code, not the ClassBench placement), and ClassBench subsets.
  struct Case {
    uint32_t dims;
    uint32_t words;
  };
  const Case cases[] = {
      {(1U << kDimSrcIp) | (1U << kDimInIface) | (1U << kDimCtState), 1},                     // 56 bits
      {(1U << kDimSrcIp) | (1U << kDimDstIp) | (1U << kDimMark) | (1U << kDimDstPort), 2},    // 112
      {(1U << kDimSrcIp) | (1U << kDimDstIp) | (1U << kDimCtOrigSrc) | (1U << kDimCtOrigDst) |
           (1U << kDimMark) | (1U << kDimOutIface),
       3},                                                                                    // 176
      {kChainDims, 4},                                                                       // 224
      {(1U << kDimDstPort) | (1U << kDimProto), 2},                                          // ClassBench places
      {(1U << kDimSrcIp) | (1U << kDimDstPort), 2},
  };
  size_t lookups = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dims);
    RandomRules gen(c.dims);
    gen.empty_boxes = false;
    const RuleBoxes rules = gen.make(3000, c.dims);
    const TupleSpaceClassifier tuple(rules);
    EXPECT_EQ(tuple.stats().words, c.words);
    EXPECT_EQ(tuple.stats().hashed_dims, c.dims);
    const LinearClassifier ref(rules);
    std::mt19937 rng(c.dims);
    const std::vector<ClassifierKey> keys = gen.keys(rules, 20000);
    lookups += expect_same(tuple, ref, keys, {}, "dims " + std::to_string(c.dims));
    lookups += expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "dims " + std::to_string(c.dims));
  }
  EXPECT_EQ(lookups, 6U * 60000U);
}

TEST(TupleSpaceLayout, DimensionsThatDoNotFitAreExtraRanges) {
  // Every box fixes every dimension to one value (all covers full): the
  // dimensions are taken in order while they fit in 256 bits (src ip .. ct
  // orig dst port = 248 bits, then tcp flags), the rest are extra ranges.
  // Keys equal a box except in one dimension, hashed or not.
  std::mt19937 rng(12);
  RuleBoxes rules;
  rules.rules = 500;
  for (uint32_t p = 0; p < rules.rules; ++p) {
    Box b = Box::any(p);
    for (unsigned d = 0; d < kDims; ++d) {
      const uint32_t v = draw(rng, 0, std::min<uint32_t>(3, field_max(static_cast<Dim>(d))));
      b.r[d] = Range{v, v};
    }
    rules.boxes.push_back(b);
  }
  const TupleSpaceClassifier tuple(rules);
  const uint32_t hashed = ((1U << (kDimCtOrigDstPort + 1)) - 1) | (1U << kDimTcpFlags);
  EXPECT_EQ(tuple.stats().words, 4U);
  EXPECT_EQ(tuple.stats().hashed_dims, hashed);
  EXPECT_EQ(tuple.stats().extra_dims, ((1U << kDims) - 1) & ~hashed);
  const LinearClassifier ref(rules);
  std::vector<ClassifierKey> keys;
  for (int i = 0; i < 60000; ++i) {
    const Box& b = rules.boxes[draw(rng, 0, rules.rules - 1)];
    ClassifierKey k;
    for (unsigned d = 0; d < kDims; ++d) k.v[d] = b.r[d].lo;
    if (i % 3 != 0) {
      const unsigned d = draw(rng, 0, kDims - 1);
      k.v[d] = draw(rng, 0, std::min<uint32_t>(4, field_max(static_cast<Dim>(d))));
    }
    keys.push_back(k);
  }
  expect_same(tuple, ref, keys, {}, "all dims fixed");
  expect_same_with_starts(tuple, ref, keys, rules.rules, rng, "all dims fixed");
}

TEST(TupleSpaceLayout, DimensionsWithOnlyEmptyCoversAreNotHashed) {
  // IP length 1..65534 and expiry ranges across the top bit have empty
  // covers: no tuple could hash them, so they are extra ranges, and the
  // addresses fit in one word.
  RuleBoxes rules;
  rules.rules = 40;
  for (uint32_t p = 0; p < rules.rules; ++p) {
    Box b = src_prefix(p, 0x0a000000U + (p << 8), 24);
    b.r[kDimDstIp] = Range{0xc0a80000U + p, 0xc0a80000U + p};
    if (p % 2 == 0) b.r[kDimLength] = Range{1 + p, 65534 - p};
    if (p % 3 == 0) b.r[kDimCtExpire] = Range{0x7fffff00U - p, 0x80000100U + p};
    rules.boxes.push_back(b);
  }
  const TupleSpaceClassifier tuple(rules);
  EXPECT_EQ(tuple.stats().words, 1U);
  EXPECT_EQ(tuple.stats().hashed_dims, (1U << kDimSrcIp) | (1U << kDimDstIp));
  EXPECT_EQ(tuple.stats().extra_dims, (1U << kDimLength) | (1U << kDimCtExpire));
  const LinearClassifier ref(rules);
  std::vector<ClassifierKey> keys;
  for (uint32_t p = 0; p < rules.rules; ++p) {
    for (uint32_t len : {0U, 1U + p, 700U, 65534U - p, 65535U}) {
      for (uint32_t expire : {0U, 0x7fffff00U - p, 0x80000000U, 0x80000101U + p}) {
        ClassifierKey k;
        k.v[kDimSrcIp] = 0x0a000000U + (p << 8) + 7;
        k.v[kDimDstIp] = 0xc0a80000U + p;
        k.v[kDimLength] = len;
        k.v[kDimCtExpire] = expire;
        keys.push_back(k);
      }
    }
  }
  expect_same(tuple, ref, keys, {}, "empty covers");
}

TEST(TupleSpaceLayout, NoUsedDimensionsOneWordOfNothing) {
  RuleBoxes rules;
  rules.rules = 4;
  rules.boxes = {Box::any(1), Box::any(3)};
  const TupleSpaceClassifier tuple(rules);
  EXPECT_EQ(tuple.stats().words, 1U);
  EXPECT_EQ(tuple.stats().hashed_dims, 0U);
  EXPECT_EQ(tuple.stats().extra_dims, 0U);
  std::vector<ClassifierKey> keys(4);
  keys[3].v[kDimSrcIp] = 0xffffffffU;
  std::vector<uint32_t> out(4);
  tuple.lookup(keys, std::vector<uint32_t>{0, 2, 4, 0}, out);
  EXPECT_EQ(out, (std::vector<uint32_t>{1, 3, kNoMatch, 1}));
}

// ---- Build errors ---------------------------------------------------------------

std::string build_error(const RuleBoxes& rules, TupleSpaceOptions options = {}) {
  try {
    const TupleSpaceClassifier tuple(rules, options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(TupleSpaceErrors, BadInputIsRefusedWithTheReason) {
  RuleBoxes unsorted;
  unsorted.rules = 2;
  unsorted.boxes = {Box::any(1), Box::any(0)};
  EXPECT_THAT(build_error(unsorted), HasSubstr("box 1 (position 0) follows position 1: boxes must be sorted"));

  RuleBoxes beyond;
  beyond.rules = 2;
  beyond.boxes = {Box::any(0), Box::any(2)};
  EXPECT_THAT(build_error(beyond), HasSubstr("box 1 has position 2, beyond the rule count 2"));

  RuleBoxes empty_range;
  empty_range.rules = 1;
  empty_range.boxes = {Box::any(0)};
  empty_range.boxes[0].r[kDimDstPort] = Range{80, 79};
  EXPECT_THAT(build_error(empty_range), HasSubstr("box 0 (position 0): dst_port range 80..79 is empty"));

  RuleBoxes too_wide;
  too_wide.rules = 1;
  too_wide.boxes = {Box::any(0)};
  too_wide.boxes[0].r[kDimProto] = Range{0, 256};
  EXPECT_THAT(build_error(too_wide), HasSubstr("proto range 0..256 exceeds the field maximum 255"));

  RuleBoxes too_many;
  too_many.rules = 0x80000000U;
  EXPECT_THAT(build_error(too_many), HasSubstr("2147483648 rules, at most 1073741823"));

  RuleBoxes fine;
  fine.rules = 1;
  fine.boxes = {Box::any(0)};
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{0, 8}), HasSubstr("collision_limit must be at least 1"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 0}), HasSubstr("address_step 0 is not in 1..32"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 33}), HasSubstr("address_step 33 is not in 1..32"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 8, 0}), HasSubstr("max_protocol_classes 0 is not in 1..16"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 8, 17}), HasSubstr("max_protocol_classes 17 is not in 1..16"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 8, 8, 0}), HasSubstr("max_copies must be at least 1"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 8, 8, 3, 0}), HasSubstr("placement_passes 0 is not in 1..8"));
  EXPECT_THAT(build_error(fine, TupleSpaceOptions{8, 8, 8, 3, 9}), HasSubstr("placement_passes 9 is not in 1..8"));
  EXPECT_EQ(build_error(fine), "no error");
}

}  // namespace
}  // namespace nfb
