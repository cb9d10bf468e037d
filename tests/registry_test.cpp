// The classifier registry (classifier/registry.h, algorithms.def): every
// registered algorithm gives the linear walk's first match on random rule
// sets and packets, from every start, in every burst size, built for a rule
// set and for a chain; and on the ClassBench sets with their traces. A new
// algorithm is tested here by its registry line alone.
#include "classifier/registry.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <set>
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

using test::expect_equals_linear;
using test::load_classbench_boxes;
using test::load_classbench_trace_keys;

const std::vector<size_t> kBursts{1, 3, 32, 64, 256, 1000};

TEST(Registry, NamesAreUniqueAndFound) {
  std::set<std::string> names;
  for (const ClassifierAlgorithm& a : classifier_algorithms()) {
    EXPECT_FALSE(a.name.empty());
    EXPECT_FALSE(a.summary.empty()) << a.name;
    EXPECT_TRUE(names.insert(std::string(a.name)).second) << a.name << " is registered twice";
    EXPECT_EQ(find_classifier_algorithm(a.name), &a);
  }
  EXPECT_EQ(classifier_algorithms().front().name, "linear");
  EXPECT_TRUE(names.count("pipapo"));
  EXPECT_EQ(find_classifier_algorithm("hicuts"), nullptr);
  std::string joined;
  for (const ClassifierAlgorithm& a : classifier_algorithms()) joined += (joined.empty() ? "" : ",") + std::string(a.name);
  EXPECT_EQ(classifier_algorithm_names(","), joined);
  RuleBoxes none;
  try {
    (void)make_classifier("hicuts", none);
    ADD_FAILURE() << "an unknown name was built";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown classifier algorithm 'hicuts' (expected one of: linear, dtree"),
              std::string::npos)
        << e.what();
  }
}

class EveryAlgorithm : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryAlgorithm, NameAndEmptyRuleSets) {
  RuleBoxes none;
  const auto c = make_classifier(GetParam(), none);
  EXPECT_EQ(c->name(), GetParam());
  std::vector<ClassifierKey> keys(3);
  std::vector<uint32_t> out(3, 7);
  c->lookup(keys, {}, out);
  EXPECT_EQ(out, std::vector<uint32_t>(3, kNoMatch));

  // Only empty boxes, and positions without boxes.
  RuleBoxes empty;
  empty.rules = 4;
  Box b = Box::any(2);
  b.r[kDimDstPort] = Range{9, 8};
  empty.boxes.push_back(b);
  const auto e = make_classifier(GetParam(), empty, ClassifierUse::kChain);
  e->lookup(keys, {}, out);
  EXPECT_EQ(out, std::vector<uint32_t>(3, kNoMatch));
  EXPECT_GT(e->memory_bytes(), 0U);
}

// Random rule sets in the dimension mixes the classifiers see (the
// five-tuple, a Docker chain's, all 28, a random subset), 1 to 600 rules,
// keys mostly inside boxes and at their edges, starts anywhere. Some boxes
// are empty (a range with lo > hi): they match nothing.
TEST_P(EveryAlgorithm, EqualsLinearOnRandomRuleSets) {
  size_t lookups = 0;
  for (unsigned round = 0; round < 16; ++round) {
    RandomRules gen(0x7265'6769'7374ULL + round);
    const uint32_t rules = round % 3 == 0 ? 1 + gen.below(12) : 20 + gen.below(580);
    const uint32_t dims = std::array<uint32_t, 4>{kFiveTuple, kChainDims, kAllDims,
                                                  static_cast<uint32_t>(gen.rng()) & kAllDims}[round % 4];
    const RuleBoxes boxes = gen.make(rules, dims);
    const LinearClassifier linear(boxes);
    const std::vector<ClassifierKey> keys = gen.keys(boxes, 3000);
    const std::vector<uint32_t> starts = gen.starts(keys.size(), rules);
    // Built for a chain too where that can differ (acl scans a few boxes).
    for (const ClassifierUse use : {ClassifierUse::kRuleSet, ClassifierUse::kChain}) {
      if (use == ClassifierUse::kChain && rules > 16) continue;
      const auto c = make_classifier(GetParam(), boxes, use);
      const std::string what = fmt::format("{} round {} (dims {:#x}, {} rules, {} boxes, {})", GetParam(), round,
                                           dims, rules, boxes.boxes.size(),
                                           use == ClassifierUse::kChain ? "chain" : "rule set");
      lookups += expect_equals_linear(*c, linear, keys, {}, kBursts, what);
      lookups += expect_equals_linear(*c, linear, keys, starts, kBursts, what + " with starts");
    }
  }
  EXPECT_EQ(lookups, (16U + 6U) * 2U * 3000U);
}

// The bundled 1K ClassBench sets with 20,000 headers of their family's trace.
TEST_P(EveryAlgorithm, EqualsLinearOnClassBench1k) {
  for (const char* family : {"acl1", "fw1", "ipc1"}) {
    const RuleBoxes boxes = load_classbench_boxes(fmt::format("neurocuts_{}_1k.rules", family));
    const std::vector<ClassifierKey> keys =
        load_classbench_trace_keys(fmt::format("classbench_{}_10k.trace.xz", family), 20000);
    ASSERT_EQ(keys.size(), 20000U);
    const LinearClassifier linear(boxes);
    const auto c = make_classifier(GetParam(), boxes);
    expect_equals_linear(*c, linear, keys, {}, kBursts, fmt::format("{} {} 1k", GetParam(), family));
  }
}

std::vector<std::string> registered_names() {
  std::vector<std::string> out;
  for (const ClassifierAlgorithm& a : classifier_algorithms()) out.emplace_back(a.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryAlgorithm, ::testing::ValuesIn(registered_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace nfb
