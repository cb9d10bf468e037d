// Whether the test binary runs under AddressSanitizer (tools/run.sh's second
// build). Suites that compare every classifier with the linear walk -- which
// the release build already runs in full -- take two of them there: the
// sanitizer looks for memory errors, which any one walk shows, and the
// classifiers' own code is fuzzed and unit-tested under it anyway.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define NFB_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NFB_TEST_UNDER_ASAN 1
#endif
#endif
#ifndef NFB_TEST_UNDER_ASAN
#define NFB_TEST_UNDER_ASAN 0
#endif

// The classifiers a whole-pipeline comparison runs on: every registered one
// (classifier/algorithms.def), or linear and dtree under the sanitizer.
#if NFB_TEST_UNDER_ASAN
#define NFB_TEST_ALGOS ::testing::Values(::nfb::ChainAlgo::kLinear, ::nfb::ChainAlgo::kDtree)
#else
#define NFB_TEST_ALGOS ::testing::ValuesIn(::nfb::all_chain_algos())
#endif
