// The reference every compiled classifier is held to: for every key and
// start, the same answer as the linear walk over the same boxes (test code).
//
//   expect_equals_linear(dtree, linear, keys, starts, {1, 7, 256}, "acl1 1k");
//
// The classifier is asked in bursts of the given sizes, so that the bursts'
// internal splits (groups of 8, 16, 256 ...) fall everywhere; the linear walk
// in one call. The first five differences are reported with their keys.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "classifier/classifier.h"

namespace nfb::test {

/// The key's non-zero dimensions ("src 0xa000001 dport 0x50"), or "all 0".
inline std::string key_str(const ClassifierKey& k) {
  std::string out;
  for (unsigned d = 0; d < kDims; ++d) {
    if (k.v[d] != 0) out += fmt::format("{}{} {:#x}", out.empty() ? "" : " ", dim_name(static_cast<Dim>(d)), k.v[d]);
  }
  return out.empty() ? "all 0" : out;
}

/// Burst sizes drawn from [1, max] with std::mt19937_64(seed), enough for `n` keys.
inline std::vector<size_t> random_bursts(size_t n, uint64_t seed, size_t max) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> sizes;
  for (size_t at = 0; at < n;) {
    const size_t s = std::min<size_t>(n - at, 1 + rng() % max);
    sizes.push_back(s);
    at += s;
  }
  return sizes;
}

/// `c`'s answers for `keys` (and `starts`, empty: all 0), asked in bursts of
/// the sizes in `bursts`, taken in turn and again from the first.
inline std::vector<uint32_t> answers_in_bursts(const Classifier& c, const std::vector<ClassifierKey>& keys,
                                               const std::vector<uint32_t>& starts, const std::vector<size_t>& bursts) {
  std::vector<uint32_t> out(keys.size(), 0xdeadbeefU);
  size_t at = 0;
  for (size_t b = 0; at < keys.size(); ++b) {
    const size_t n = std::min(bursts[b % bursts.size()], keys.size() - at);
    c.lookup(std::span(keys).subspan(at, n),
             starts.empty() ? std::span<const uint32_t>() : std::span(starts).subspan(at, n),
             std::span(out).subspan(at, n));
    at += n;
  }
  return out;
}

/// The linear walk's answers, in one call.
inline std::vector<uint32_t> linear_answers(const LinearClassifier& linear, const std::vector<ClassifierKey>& keys,
                                            const std::vector<uint32_t>& starts) {
  std::vector<uint32_t> out(keys.size());
  linear.lookup(keys, starts, out);
  return out;
}

/// Checks `c`'s answers, asked in bursts, against `expected` (the linear
/// walk's, computed once by the caller). Returns the lookups made.
inline size_t expect_answers(const Classifier& c, const std::vector<ClassifierKey>& keys,
                             const std::vector<uint32_t>& starts, const std::vector<uint32_t>& expected,
                             const std::vector<size_t>& bursts, const std::string& what) {
  const std::vector<uint32_t> got = answers_in_bursts(c, keys, starts, bursts);
  size_t wrong = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (got[i] == expected[i]) continue;
    if (++wrong <= 5) {
      ADD_FAILURE() << what << ": key " << i << " (" << key_str(keys[i]) << ") from "
                    << (starts.empty() ? 0 : starts[i]) << ": " << c.name() << " says " << got[i]
                    << ", linear says " << expected[i];
    }
  }
  EXPECT_EQ(wrong, 0U) << what << ": " << wrong << " of " << keys.size() << " lookups differ";
  return keys.size();
}

/// The same, with the linear walk asked here.
inline size_t expect_equals_linear(const Classifier& c, const LinearClassifier& linear,
                                   const std::vector<ClassifierKey>& keys, const std::vector<uint32_t>& starts,
                                   const std::vector<size_t>& bursts, const std::string& what) {
  return expect_answers(c, keys, starts, linear_answers(linear, keys, starts), bursts, what);
}

}  // namespace nfb::test
