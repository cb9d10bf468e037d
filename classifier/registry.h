// The classifier registry: every algorithm behind the Classifier interface
// (classifier.h), by name, with its factory. The list itself is
// classifier/algorithms.def (how to add one is explained there); everything
// that offers a choice of algorithm (classify, replay --algo, the pipeline's
// chains, the benchmarks, the tests) takes it from here.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "classifier/classifier.h"

namespace nfb {

/// What a classifier is built for. A pipeline builds one per chain, and a
/// host may have tens of thousands of small chains: an algorithm with a
/// large fixed cost per build may trade it for a scan there (acl does).
enum class ClassifierUse : uint8_t {
  kRuleSet,  // one large rule set, looked up in bursts (classify, benchmarks)
  kChain,    // one chain of a pipeline, asked one key per chain step
};

using ClassifierFactory = std::unique_ptr<Classifier> (*)(const RuleBoxes& rules, ClassifierUse use);

struct ClassifierAlgorithm {
  std::string_view name;     // "dtree": what --algo and the results call it
  std::string_view summary;  // a phrase for --help and tables
  ClassifierFactory make;    // throws std::invalid_argument naming the reason
};

/// Every registered algorithm, in algorithms.def order (linear first).
std::span<const ClassifierAlgorithm> classifier_algorithms() noexcept;
/// The algorithm called `name`, or nullptr.
const ClassifierAlgorithm* find_classifier_algorithm(std::string_view name) noexcept;
/// The registered names joined by `sep` ("linear, dtree, ...").
std::string classifier_algorithm_names(std::string_view sep = ", ");
/// Builds `name` over `rules`; throws std::invalid_argument for an unknown
/// name (listing the known ones) or whatever the build throws.
std::unique_ptr<Classifier> make_classifier(std::string_view name, const RuleBoxes& rules,
                                            ClassifierUse use = ClassifierUse::kRuleSet);

// The factories algorithms.def names (each defined in its algorithm's file).
#define NFB_CLASSIFIER(name, factory, summary) \
  std::unique_ptr<Classifier> factory(const RuleBoxes& rules, ClassifierUse use);
#include "classifier/algorithms.def"
#undef NFB_CLASSIFIER

}  // namespace nfb
