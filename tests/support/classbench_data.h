// The bundled ClassBench sets (data/classbench/) as classifier input (test code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "classifier/classifier.h"
#include "rules/classbench.h"
#include "tests/support/test_data.h"

namespace nfb::test {

/// data/classbench/NAME under the source tree.
inline std::string classbench_path(const std::string& name) {
  return (source_root() / "data" / "classbench" / name).string();
}

/// A bundled rule file (".rules") as one box per rule.
inline RuleBoxes load_classbench_boxes(const std::string& name) {
  return classbench_boxes(classbench_chain(load_classbench_rules(classbench_path(name))));
}

/// The first `limit` headers of a bundled trace (".trace", ".trace.xz") as keys.
inline std::vector<ClassifierKey> load_classbench_trace_keys(const std::string& name, size_t limit = SIZE_MAX) {
  const ClassBenchTrace trace = load_classbench_trace(classbench_path(name));
  std::vector<ClassifierKey> keys;
  for (size_t i = 0; i < trace.keys.size() && i < limit; ++i) keys.push_back(classbench_key(trace.keys[i]));
  return keys;
}

}  // namespace nfb::test
