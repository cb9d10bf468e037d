// LOG: a kernel log line per packet. iptables' libipt_LOG, the kernel's
// xt_LOG. The walk reports it as a log event (chain_walk.h).
#pragma once

#include <optional>

#include "rules/module.h"

namespace nfb {

/// LOG. Level is syslog 0..7 (default 4, warning); prefix at most 29 bytes.
struct LogTarget {
  enum Flag : uint8_t {
    kTcpSequence = 0x01, kTcpOptions = 0x02, kIpOptions = 0x04, kUid = 0x08, kMacDecode = 0x20,
  };
  std::string prefix;
  uint8_t level = 4;
  uint8_t flags = 0;
  static constexpr size_t kMaxPrefix = 29;
  friend bool operator==(const LogTarget&, const LogTarget&) = default;

  static constexpr const char* kName = "LOG";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Log;
  enum : uint8_t { kLevel, kPrefix, kTcpSeq, kTcpOpt, kIpOpt, kUidOpt, kMac };
  static constexpr OptDef kOptions[] = {
      {"log-level", kLevel, 1, false},      {"log-prefix", kPrefix, 1, false},
      {"log-tcp-sequence", kTcpSeq, 0, false}, {"log-tcp-options", kTcpOpt, 0, false},
      {"log-ip-options", kIpOpt, 0, false}, {"log-uid", kUidOpt, 0, false},
      {"log-macdecode", kMac, 0, false},
  };
  void parse(const ModuleOption& o) {
    const std::string& a = o.a;
    switch (o.id) {
      case kLevel: {
        struct LevelName {
          const char* name;
          uint8_t level;
        };
        static constexpr LevelName kLevels[] = {
            {"alert", 1}, {"crit", 2}, {"debug", 7}, {"emerg", 0}, {"error", 3},
            {"info", 6},  {"notice", 5}, {"panic", 0}, {"warning", 4},
        };
        std::optional<uint8_t> lv;
        for (const LevelName& n : kLevels) {
          if (a == n.name) lv = n.level;
        }
        if (!lv) {
          auto v = parse_c_uint(a, 7);
          if (v) lv = static_cast<uint8_t>(*v);
        }
        if (!lv)
          o.fail(o.acol, fmt::format("bad log level \"{}\" (expected 0-7 or emerg, alert, crit, error, warning, "
                                     "notice, info, debug)", a));
        level = *lv;
        break;
      }
      case kPrefix:
        if (a.empty()) o.fail(o.acol, "--log-prefix must not be empty");
        prefix = a.substr(0, kMaxPrefix);  // the kernel keeps 29 bytes, as iptables does
        break;
      case kTcpSeq: flags |= kTcpSequence; break;
      case kTcpOpt: flags |= kTcpOptions; break;
      case kIpOpt: flags |= kIpOptions; break;
      case kUidOpt: flags |= kUid; break;
      case kMac: flags |= kMacDecode; break;
    }
  }
  void check(const ModuleCheck&) const {}
  void save(SaveLine& l) const {
    l.add("-j LOG");
    if (!prefix.empty()) l.add("--log-prefix").add(save_string(prefix));
    if (level != 4) l.add("--log-level").add(std::to_string(level));
    if (flags & kTcpSequence) l.add("--log-tcp-sequence");
    if (flags & kTcpOptions) l.add("--log-tcp-options");
    if (flags & kIpOptions) l.add("--log-ip-options");
    if (flags & kUid) l.add("--log-uid");
    if (flags & kMacDecode) l.add("--log-macdecode");
  }
  void list(ListText& t) const {
    // The prefix is printed raw between quotes, nothing escaped.
    t.put(" LOG flags {} level {}", flags, level);
    if (!prefix.empty()) t.put(" prefix \"{}\"", prefix);
  }
};

}  // namespace nfb
