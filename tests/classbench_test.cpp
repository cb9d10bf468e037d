// ClassBench reader: the bundled rule sets and traces load completely, rules
// land in the shared rule model as documented, the writer round-trips, and
// every error names FILE:LINE:COL and what was expected.
#include "rules/classbench.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "base/input_file.h"
#include "tests/support/classbench_data.h"

namespace nfb {
namespace {

size_t count_lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(ClassBenchRules, FirstRuleOfAcl1) {
  // @176.19.181.33/32  90.145.23.162/32  0 : 65535  1550 : 1550  0x06/0xFF  0x0000/0x0200
  const Ruleset rs = load_classbench_rules(test::classbench_path("neurocuts_acl1_1k.rules"));
  const Chain& chain = classbench_chain(rs);
  ASSERT_EQ(chain.rules.size(), 942U);
  const Rule& r = chain.rules[0];
  EXPECT_EQ(r.src, (Ipv4Mask{0xb013b521, 0xffffffff}));
  EXPECT_EQ(r.dst, (Ipv4Mask{0x5a9117a2, 0xffffffff}));
  EXPECT_EQ(r.protocol, kProtoTcp);
  ASSERT_EQ(r.matches.size(), 1U);
  const auto& ports = std::get<PortsMatch>(r.matches[0]);
  EXPECT_TRUE(ports.sport.is_any());
  EXPECT_EQ(ports.dport, (PortRange{1550, 1550}));
  EXPECT_TRUE(std::holds_alternative<AcceptTarget>(r.target));
  EXPECT_EQ(r.where.line, 1U);
  EXPECT_EQ(chain.rules[941].where.line, 942U);
}

TEST(ClassBenchRules, AnyProtocolAndFullPortsAddNoMatch) {
  const Ruleset rs = read_classbench_rules("@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\n",
                                           "t.rules");
  const Rule& r = classbench_chain(rs).rules.at(0);
  EXPECT_EQ(r.protocol, 0);
  EXPECT_TRUE(r.matches.empty());
  EXPECT_EQ(r.src, (Ipv4Mask{0x0a000000, 0xff000000}));
  EXPECT_EQ(r.dst.mask, 0U);
}

TEST(ClassBenchRules, AddressIsMaskedToItsPrefix) {
  const Ruleset rs = read_classbench_rules("@10.1.2.3/16\t1.2.3.4/0\t1 : 2\t3 : 4\t0x11/0xFF\n", "t.rules");
  const Rule& r = classbench_chain(rs).rules.at(0);
  EXPECT_EQ(r.src, (Ipv4Mask{0x0a010000, 0xffff0000}));
  EXPECT_EQ(r.dst, (Ipv4Mask{0, 0}));
  EXPECT_EQ(r.protocol, kProtoUdp);
}

TEST(ClassBenchRules, EveryBundledSetLoadsCompletely) {
  struct Set { const char* file; size_t rules; };
  for (const Set& s : {Set{"neurocuts_acl1_1k.rules", 942}, Set{"neurocuts_fw1_1k.rules", 857},
                       Set{"neurocuts_ipc1_1k.rules", 974}, Set{"jiachang_acl1_1k.rules", 953},
                       Set{"neurocuts_acl1_10k.rules", 9774}, Set{"neurocuts_fw1_10k.rules", 9379},
                       Set{"neurocuts_ipc1_10k.rules", 9518}, Set{"classbench_acl1_100k.rules.xz", 99383},
                       Set{"classbench_fw1_100k.rules.xz", 89038}, Set{"classbench_ipc1_100k.rules.xz", 99253}}) {
    SCOPED_TRACE(s.file);
    EXPECT_EQ(classbench_chain(load_classbench_rules(test::classbench_path(s.file))).rules.size(), s.rules);
  }
}

TEST(ClassBenchRules, WriterRoundTripsEveryRule) {
  for (const char* file : {"neurocuts_fw1_1k.rules", "neurocuts_ipc1_10k.rules"}) {
    SCOPED_TRACE(file);
    const Ruleset first = load_classbench_rules(test::classbench_path(file));
    const std::string text = write_classbench_rules(classbench_chain(first));
    const Ruleset second = read_classbench_rules(text, "rewritten");
    const Chain& a = classbench_chain(first);
    const Chain& b = classbench_chain(second);
    ASSERT_EQ(a.rules.size(), b.rules.size());
    for (size_t i = 0; i < a.rules.size(); ++i) {
      EXPECT_EQ(a.rules[i].src, b.rules[i].src) << i;
      EXPECT_EQ(a.rules[i].dst, b.rules[i].dst) << i;
      EXPECT_EQ(a.rules[i].protocol, b.rules[i].protocol) << i;
      EXPECT_EQ(a.rules[i].matches, b.rules[i].matches) << i;
    }
    EXPECT_EQ(write_classbench_rules(b), text);
  }
}

TEST(ClassBenchRules, WriterRejectsWhatClassBenchCannotSay) {
  Ruleset rs = read_classbench_rules("@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x06/0xFF\n", "t.rules");
  Chain chain = classbench_chain(rs);
  chain.rules[0].src_invert = true;
  try {
    write_classbench_rules(chain);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "t.rules:1:1: rule cannot be written as a ClassBench filter");
  }
}

TEST(ClassBenchTrace, JiachangTraceLoads) {
  // 3266998700  1458994818  0  1521  6  268439552  214
  const ClassBenchTrace t = load_classbench_trace(test::classbench_path("jiachang_acl1_1k.trace"));
  ASSERT_EQ(t.keys.size(), 11069U);
  ASSERT_EQ(t.filter_ids.size(), t.keys.size());
  EXPECT_EQ(t.keys[0].src_ip, 3266998700U);
  EXPECT_EQ(t.keys[0].dst_ip, 1458994818U);
  EXPECT_EQ(t.keys[0].src_port, 0);
  EXPECT_EQ(t.keys[0].dst_port, 1521);
  EXPECT_EQ(t.keys[0].proto, kProtoTcp);
  EXPECT_EQ(t.filter_ids[0], 214U);
}

TEST(ClassBenchTrace, XzTraceLoadsEveryLine) {
  const std::string path = test::classbench_path("classbench_fw1_10k.trace.xz");
  const ClassBenchTrace t = load_classbench_trace(path);
  EXPECT_EQ(t.keys.size(), count_lines(read_input_file(path)));
  EXPECT_EQ(t.keys.size(), 1000000U);
}

TEST(ClassBenchTrace, SixColumnLinesHaveNoFlags) {
  const ClassBenchTrace t = read_classbench_trace("1 2 3 4 17 9\n", "t.trace");
  ASSERT_EQ(t.keys.size(), 1U);
  EXPECT_EQ(t.filter_ids[0], 9U);
  EXPECT_EQ(t.keys[0].proto, kProtoUdp);
}

// Every error: exact message, with the column of the offending token.
struct BadInput {
  const char* text;
  const char* message;
};

class ClassBenchRuleErrors : public ::testing::TestWithParam<BadInput> {};

TEST_P(ClassBenchRuleErrors, SaysWhereAndWhat) {
  try {
    read_classbench_rules(GetParam().text, "bad.rules");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, ClassBenchRuleErrors,
    ::testing::Values(
        BadInput{"10.0.0.0/8\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:1: expected '@' at the start of a ClassBench rule"},
        BadInput{"@10.0.0/8\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:8: expected a source address as a.b.c.d"},
        BadInput{"@10.0.0.300/8\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:9: an address byte (0-255) out of range (at most 255)"},
        BadInput{"@10.0.0.0/33\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:11: a prefix length (0-32) out of range (at most 32)"},
        BadInput{"@10.0.0.0\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:11: expected '/' and a prefix length"},
        BadInput{"\n\n@1.0.0.0/8\t2.0.0.0/8\t9 : 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:3:22: port range is empty (low end above high end)"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 : 70000\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:26: a source port (0-65535) out of range (at most 65535)"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 - 1\t0 : 1\t0x06/0xFF\n",
                 "bad.rules:1:24: expected ':' between the two ends of a port range"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 : 1\t0 : 1\t6/0xFF\n",
                 "bad.rules:1:34: expected a protocol as 0x followed by hex digits"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 : 1\t0 : 1\t0x06/0x0F\n",
                 "bad.rules:1:39: expected a protocol mask of 0x00 (any) or 0xFF (exact)"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 : 1\t0 : 1\t0x00/0xFF\n",
                 "bad.rules:1:39: protocol 0 with mask 0xFF cannot be expressed (protocol 0 means any): use "
                 "0x00/0x00"},
        BadInput{"@1.0.0.0/8\t2.0.0.0/8\t0 : 1\t0 : 1\t0x06/0xFF\t0x0000/0x0000\tjunk\n",
                 "bad.rules:1:58: expected the end of the rule"},
        BadInput{"\n \n", "bad.rules: expected at least one ClassBench rule"}));

class ClassBenchTraceErrors : public ::testing::TestWithParam<BadInput> {};

TEST_P(ClassBenchTraceErrors, SaysWhereAndWhat) {
  try {
    read_classbench_trace(GetParam().text, "bad.trace");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, ClassBenchTraceErrors,
    ::testing::Values(
        BadInput{"1 2 3 4 6 0 7\nx 2 3 4 6 0 7\n",
                 "bad.trace:2:1: expected a source address (decimal, 0-4294967295)"},
        BadInput{"1 4294967296 3 4 6 0 7\n",
                 "bad.trace:1:3: a destination address (decimal, 0-4294967295) out of range (at most 4294967295)"},
        BadInput{"1 2 3 65536 6 0 7\n", "bad.trace:1:7: a destination port (0-65535) out of range (at most 65535)"},
        BadInput{"1 2 3 4 256 0 7\n", "bad.trace:1:9: a protocol number (0-255) out of range (at most 255)"},
        BadInput{"1 2 3 4 6\n", "bad.trace:1:10: expected a FILTER_ID after the protocol"},
        BadInput{"1 2 3 4 6 0 7 8\n", "bad.trace:1:15: expected the end of the line after FLAGS and FILTER_ID"}));

TEST(ClassBenchFiles, MissingFileIsNamed) {
  try {
    load_classbench_rules("/nonexistent/x.rules");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/x.rules: cannot open: No such file or directory");
  }
}

TEST(ClassBenchFiles, CorruptXzNamesTheOffset) {
  const std::string path = ::testing::TempDir() + "/corrupt.rules.xz";
  // Take the real compressed bytes and cut them: decoding must fail at the end.
  FILE* in = std::fopen(test::classbench_path("classbench_fw1_100k.rules.xz").c_str(), "rb");
  ASSERT_NE(in, nullptr);
  std::string packed(4096, '\0');
  const size_t got = std::fread(packed.data(), 1, packed.size(), in);
  std::fclose(in);
  packed.resize(got);
  FILE* out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::fwrite(packed.data(), 1, packed.size(), out);
  std::fclose(out);
  try {
    load_classbench_rules(path);
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": offset 4096: xz stream ends early (truncated file)");
  }
}

}  // namespace
}  // namespace nfb
