// The bundled demo data is the kernel-checked seed scenario, written out:
// data/captures/seed-case.pcapng (one pcapng interface per ingress
// interface, named eth0 / docker0 / br-5c0a8c6e1d2f) and the rulesets it runs
// against, data/rulesets/docker-28-seed-{naive,fixed}.save. This test fails
// when the committed files no longer equal what the scenarios build, and
// rewrites them when NFB_RECORD_CAPTURES=1 is set.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "pcap/capture_writer.h"
#include "tests/support/scenarios.h"

namespace nfb {
namespace {

std::string source_root() {
  const char* root = std::getenv("NFB_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool recording() {
  const char* v = std::getenv("NFB_RECORD_CAPTURES");
  return v != nullptr && std::string(v) == "1";
}

// Frames one millisecond apart from a fixed start, each on the pcapng
// interface named after its ingress.
void write_capture(const std::vector<InjectedFrame>& frames, const std::string& path) {
  PcapngWriter w(path);
  std::map<std::string, uint32_t> ifaces;
  uint64_t ts = 1'764'000'000ULL * 1'000'000'000ULL;
  for (const InjectedFrame& f : frames) {
    auto it = ifaces.find(f.ingress);
    if (it == ifaces.end()) it = ifaces.emplace(f.ingress, w.add_interface(f.ingress, 1)).first;
    w.write(it->second, ts, f.bytes, static_cast<uint32_t>(f.bytes.size()));
    ts += 1'000'000;
  }
  w.close();
}

void check_or_record(const std::string& built, const std::string& committed_path) {
  if (recording()) {
    std::ofstream(committed_path, std::ios::binary) << built;
    GTEST_SKIP() << "recorded " << committed_path;
  }
  EXPECT_TRUE(built == read_file(committed_path))
      << committed_path << " is out of date: run this test with NFB_RECORD_CAPTURES=1 and commit the result";
}

TEST(BundledData, SeedCaseCapture) {
  const std::string tmp = ::testing::TempDir() + "/seed-case.pcapng";
  write_capture(seed_case_frames(), tmp);
  check_or_record(read_file(tmp), source_root() + "/data/captures/seed-case.pcapng");
}

TEST(BundledData, MixedTrafficCapture) {
  const std::string tmp = ::testing::TempDir() + "/docker-mixed.pcapng";
  write_capture(mixed_traffic_frames(), tmp);
  check_or_record(read_file(tmp), source_root() + "/data/captures/docker-mixed.pcapng");
}

TEST(BundledData, SeedCaseRulesets) {
  check_or_record(seed_case_naive().ruleset, source_root() + "/data/rulesets/docker-28-seed-naive.save");
  check_or_record(seed_case_fixed().ruleset, source_root() + "/data/rulesets/docker-28-seed-fixed.save");
}

}  // namespace
}  // namespace nfb
