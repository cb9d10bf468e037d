#include "classifier/string_scan.h"

#include <fmt/format.h>
#include <hs/hs.h>

#include <memory>
#include <stdexcept>

namespace nfb {

uint32_t StringPatterns::add(std::string_view bytes, uint16_t from, uint16_t to, bool icase,
                             const SourceLocation& where) {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const StringPattern& p = patterns_[i];
    if (p.from == from && p.to == to && p.icase == icase && p.bytes == bytes) return static_cast<uint32_t>(i);
  }
  patterns_.push_back(StringPattern{std::string(bytes), from, to, icase, where});
  return static_cast<uint32_t>(patterns_.size() - 1);
}

namespace {

// The pattern as a Hyperscan expression: every byte escaped; with icase, a
// class of the bytes the kernel folds to the same upper-case byte.
std::string expression_of(const StringPattern& p) {
  std::string e;
  e.reserve(p.bytes.size() * 4);
  for (const char ch : p.bytes) {
    const auto b = static_cast<uint8_t>(ch);
    if (p.icase) {
      std::string cls;
      unsigned members = 0;
      for (unsigned c = 0; c < 256; ++c) {
        if (kStringFold[c] == kStringFold[b]) {
          cls += fmt::format("\\x{:02x}", c);
          ++members;
        }
      }
      e += members > 1 ? "[" + cls + "]" : cls;
    } else {
      e += fmt::format("\\x{:02x}", b);
    }
  }
  return e;
}

}  // namespace

StringScanner::StringScanner(const StringPatterns& patterns) : count_(patterns.patterns().size()) {
  bits_.assign((count_ + 63) / 64, 0);
  set_.reserve(count_);
  never_.assign(count_, false);
  std::vector<std::string> exprs;
  std::vector<const char*> ptrs;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  std::vector<hs_expr_ext_t> ext;
  std::vector<const hs_expr_ext_t*> ext_ptrs;
  exprs.reserve(count_);
  ext.reserve(count_);
  for (size_t i = 0; i < count_; ++i) {
    const StringPattern& p = patterns.patterns()[i];
    if (p.bytes.empty()) throw LoadError(p.where, "string: the pattern is empty");
    // A match ends at or before --to and starts at or after --from.
    const uint64_t min_end = uint64_t{p.from} + p.bytes.size();
    if (min_end > p.to) {
      never_[i] = true;
      continue;
    }
    exprs.push_back(expression_of(p));
    flags.push_back(HS_FLAG_SINGLEMATCH);
    ids.push_back(static_cast<unsigned>(i));
    hs_expr_ext_t x{};
    if (p.from != 0) {
      x.flags |= HS_EXT_FLAG_MIN_OFFSET;
      x.min_offset = min_end;
    }
    if (p.to != 65535) {
      x.flags |= HS_EXT_FLAG_MAX_OFFSET;
      x.max_offset = p.to;
    }
    ext.push_back(x);
  }
  if (exprs.empty()) return;  // nothing can ever match: found() reads never_
  for (const std::string& e : exprs) ptrs.push_back(e.c_str());
  for (const hs_expr_ext_t& x : ext) ext_ptrs.push_back(&x);
  hs_compile_error_t* err = nullptr;
  if (hs_compile_ext_multi(ptrs.data(), flags.data(), ids.data(), ext_ptrs.data(), static_cast<unsigned>(ptrs.size()),
                           HS_MODE_BLOCK, nullptr, &db_, &err) != HS_SUCCESS) {
    const std::string why = err != nullptr && err->message != nullptr ? err->message : "unknown error";
    const int at = err != nullptr ? err->expression : -1;
    hs_free_compile_error(err);
    if (at >= 0 && static_cast<size_t>(at) < ids.size()) {
      throw LoadError(patterns.patterns()[ids[static_cast<size_t>(at)]].where,
                      "string: Hyperscan cannot compile this pattern: " + why);
    }
    throw std::runtime_error("Hyperscan: cannot compile the string patterns: " + why);
  }
  if (hs_alloc_scratch(db_, &scratch_) != HS_SUCCESS) {
    hs_free_database(db_);
    db_ = nullptr;
    throw std::runtime_error("Hyperscan: cannot allocate scratch space");
  }
}

StringScanner::~StringScanner() {
  hs_free_scratch(scratch_);
  hs_free_database(db_);
}

size_t StringScanner::database_bytes() const noexcept {
  size_t n = 0;
  if (db_ != nullptr && hs_database_size(db_, &n) != HS_SUCCESS) return 0;
  return n;
}

void StringScanner::invalidate() noexcept {
  for (const uint32_t id : set_) bits_[id / 64] = 0;
  set_.clear();
  scanned_ = false;
}

int StringScanner::on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* self) noexcept {
  auto* s = static_cast<StringScanner*>(self);
  uint64_t& word = s->bits_[id / 64];
  const uint64_t bit = uint64_t{1} << (id % 64);
  if ((word & bit) == 0) {
    word |= bit;
    s->set_.push_back(id);  // reserved for every id: no allocation
  }
  return 0;  // go on: other patterns may match later
}

void StringScanner::scan(const uint8_t* data, uint32_t len) noexcept {
  scanned_ = true;
  ++scans_;
  if (db_ != nullptr && data != nullptr && len != 0) {
    hs_scan(db_, reinterpret_cast<const char*>(data), len, 0, scratch_, &StringScanner::on_match, this);
  }
}

bool StringScanner::found(uint32_t id, const uint8_t* data, uint32_t len) noexcept {
  if (id >= count_ || never_[id]) return false;
  if (!scanned_) scan(data, len);
  return (bits_[id / 64] >> (id % 64) & 1U) != 0;
}

uint32_t StringScanner::occurring(const uint8_t* data, uint32_t len) noexcept {
  if (!scanned_) scan(data, len);
  if (set_.empty()) return 0;
  return set_.size() == 1 ? set_[0] + 1 : kSeveralStrings;
}

}  // namespace nfb
