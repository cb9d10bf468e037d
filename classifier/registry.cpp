#include "classifier/registry.h"

#include <fmt/format.h>

#include <stdexcept>

namespace nfb {
namespace {

constexpr ClassifierAlgorithm kAlgorithms[] = {
#define NFB_CLASSIFIER(name, factory, summary) {#name, summary, &factory},
#include "classifier/algorithms.def"
#undef NFB_CLASSIFIER
};

}  // namespace

std::span<const ClassifierAlgorithm> classifier_algorithms() noexcept { return kAlgorithms; }

const ClassifierAlgorithm* find_classifier_algorithm(std::string_view name) noexcept {
  for (const ClassifierAlgorithm& a : kAlgorithms) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string classifier_algorithm_names(std::string_view sep) {
  std::string out;
  for (const ClassifierAlgorithm& a : kAlgorithms) {
    if (!out.empty()) out += sep;
    out += a.name;
  }
  return out;
}

std::unique_ptr<Classifier> make_classifier(std::string_view name, const RuleBoxes& rules, ClassifierUse use) {
  const ClassifierAlgorithm* a = find_classifier_algorithm(name);
  if (a == nullptr) {
    throw std::invalid_argument(
        fmt::format("unknown classifier algorithm '{}' (expected one of: {})", name, classifier_algorithm_names()));
  }
  return a->make(rules, use);
}

}  // namespace nfb
