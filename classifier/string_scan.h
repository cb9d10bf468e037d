// -m string on Hyperscan: every string pattern of a ruleset in one database,
// so that a packet is scanned once per hook however many string rules it
// meets, instead of once per rule.
//
// Idea: rules register their patterns while they compile (MatchOptions::
// strings); identical patterns (bytes, --from, --to, --icase) share one id.
// When the ruleset is built, StringScanner compiles them all into one
// Hyperscan block-mode database: each pattern is the literal bytes (with
// --icase, each letter as the class of the bytes the kernel's toupper()
// folds together, so Latin-1 letters fold as in the kernel), reported once
// per scan (HS_FLAG_SINGLEMATCH), and only when the match lies within
// [--from, --to) of the IP packet (Hyperscan's min/max end offsets: a match
// must start at or after --from and end at or before --to, which is what the
// kernel's skb_find_text() accepts; tests/data/scenarios/string_match.* is
// the kernel's word on it). The result of a scan is a bitmap over pattern
// ids that the string matches read (and the classifiers' residual check of
// a string rule with them).
//
// A scan covers the packet as it is at the hook: NAT rewrites headers and
// forwarding decrements the TTL between hooks, so the pipeline invalidates
// the result when a packet enters a hook; patterns may cover header bytes.
//
// Control plane: StringPatterns::add and StringScanner's constructor
// allocate and may throw (LoadError naming the rule when Hyperscan refuses a
// pattern). Packet path: invalidate() and found() are noexcept, never
// allocate (the scratch and the bitmap are sized at build).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/load_error.h"

struct hs_database;
struct hs_scratch;

namespace nfb {

inline constexpr uint32_t kNoStringId = 0xffffffffU;
inline constexpr uint32_t kSeveralStrings = 0xffffffffU;

struct StringPattern {
  std::string bytes;  // as the rule gives it (not folded)
  uint16_t from = 0;
  uint16_t to = 65535;
  bool icase = false;
  SourceLocation where;  // the first rule that uses it
};

/// The distinct string patterns of a ruleset, numbered from 0.
class StringPatterns {
 public:
  /// The id of this pattern, registering it if new. `bytes` must not be empty.
  uint32_t add(std::string_view bytes, uint16_t from, uint16_t to, bool icase, const SourceLocation& where);
  const std::vector<StringPattern>& patterns() const noexcept { return patterns_; }
  bool empty() const noexcept { return patterns_.empty(); }

 private:
  std::vector<StringPattern> patterns_;
};

/// The Hyperscan database of a set of patterns, its scratch space, and the
/// result of the last scan.
class StringScanner {
 public:
  /// Compiles every pattern into one database. Throws LoadError at the
  /// pattern's rule when Hyperscan refuses it, std::runtime_error when
  /// Hyperscan cannot run here (no SSSE3) or is out of memory.
  explicit StringScanner(const StringPatterns& patterns);
  ~StringScanner();
  StringScanner(const StringScanner&) = delete;
  StringScanner& operator=(const StringScanner&) = delete;

  /// Forgets the last scan: the next found() scans again. Call when a new
  /// packet starts or the packet's bytes may have changed.
  void invalidate() noexcept;

  /// Whether pattern `id` occurs in the IP packet data[0, len) between its
  /// --from and --to. Scans the packet on the first call since
  /// invalidate() (every pattern at once); later calls read the bitmap.
  /// `data`/`len` must be the same packet until the next invalidate().
  bool found(uint32_t id, const uint8_t* data, uint32_t len) noexcept;

  /// Which patterns occur in data[0, len) (within their offsets), as one
  /// number: 0 none, id + 1 when pattern id is the only one, kSeveralStrings
  /// for two or more. Scans like found().
  uint32_t occurring(const uint8_t* data, uint32_t len) noexcept;

  /// Scans run so far (a benchmark's and a test's view of "once per hook").
  uint64_t scans() const noexcept { return scans_; }
  size_t patterns() const noexcept { return count_; }
  /// Bytes of the compiled database.
  size_t database_bytes() const noexcept;

 private:
  void scan(const uint8_t* data, uint32_t len) noexcept;
  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                      void* self) noexcept;

  hs_database* db_ = nullptr;
  hs_scratch* scratch_ = nullptr;
  size_t count_ = 0;
  std::vector<uint64_t> bits_;  // pattern id -> found in the current scan
  std::vector<uint32_t> set_;   // ids set in bits_ (cleared by invalidate)
  std::vector<bool> never_;     // patterns whose --from/--to leave no room: never found
  bool scanned_ = false;
  uint64_t scans_ = 0;
};

/// The kernel's toupper() as -m string --icase applies it to both sides:
/// ASCII and Latin-1 lower-case letters (0xdf..0xf6, 0xf8..0xff) lose 0x20
/// [kernel: 0xe9 matches |c9| --icase; 0xdf matches |bf|].
constexpr std::array<uint8_t, 256> make_string_fold_table() {
  std::array<uint8_t, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    const bool lower = (c >= 'a' && c <= 'z') || (c >= 0xdf && c <= 0xff && c != 0xf7);
    t[c] = static_cast<uint8_t>(lower ? c - 0x20 : c);
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kStringFold = make_string_fold_table();

}  // namespace nfb
