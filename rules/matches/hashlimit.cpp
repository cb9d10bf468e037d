// -m hashlimit: option parsing and printing (libxt_hashlimit's, revision
// 3), the kernel's token arithmetic, and the tables.
#include "rules/matches/hashlimit.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <climits>

namespace nfb {

namespace {

constexpr uint64_t kScale = 1'000'000;  // XT_HASHLIMIT_SCALE_v2
constexpr uint32_t kByteExpire = 15;    // XT_HASHLIMIT_BYTE_EXPIRE (s)
constexpr uint32_t kByteExpireBurst = 60;
constexpr uint64_t kMaxBurst = 1'000'000;  // XT_HASHLIMIT_BURST_MAX
constexpr uint32_t kDefaultGc = 1000;

/// C's atoll(): leading blanks, a sign, digits; stops at the first other
/// character; saturates on overflow (glibc's strtoll). Returned as the u64
/// the callers store it in.
uint64_t c_atoll(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  uint64_t v = 0;
  bool overflow = false;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (uint64_t{LLONG_MAX} + (neg ? 1 : 0) - d) / 10) overflow = true;
    else v = v * 10 + d;
  }
  if (overflow) v = neg ? uint64_t{LLONG_MAX} + 1 : uint64_t{LLONG_MAX};
  return neg ? ~v + 1 : v;
}

/// bytes_to_cost(): 0xffffffff / (16-byte chunks + 1), the chunk count in
/// 32 bits; 0 when that divisor wraps to 0.
uint64_t bytes_to_cost(uint64_t bytes) {
  const auto chunks = static_cast<uint32_t>(bytes >> 4);
  const uint32_t div = chunks + 1U;
  return div == 0 ? 0 : 0xffffffffULL / div;
}

/// cost_to_bytes(): the bytes per second a cost stands for.
uint64_t cost_to_bytes(uint64_t cost) { return cost == 0 ? 0 : ((0xffffffffULL / cost) - 1) << 4; }

/// xtables_strtoul(base 0) with trailing text allowed: the value and the
/// rest; nullopt when no digit.
std::optional<std::pair<uint64_t, std::string_view>> c_strtoul(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) return std::nullopt;
  unsigned base = 10;
  if (i + 1 < s.size() && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X') && i + 2 < s.size() &&
      std::isxdigit(static_cast<unsigned char>(s[i + 2])) != 0) {
    base = 16;
    i += 2;
  } else if (i < s.size() && s[i] == '0') {
    base = 8;
  }
  const size_t start = i;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    unsigned d = 0;
    if (ch >= '0' && ch <= '9') d = static_cast<unsigned>(ch - '0');
    else if (ch >= 'a' && ch <= 'f') d = static_cast<unsigned>(ch - 'a') + 10;
    else break;
    if (d >= base) break;
    if (v > (UINT64_MAX - d) / base) return std::nullopt;  // ERANGE
    v = v * base + d;
  }
  if (i == start) return std::nullopt;
  return std::make_pair(v, s.substr(i));
}

/// XTTYPE_PLEN for IPv4: 0-32, or a contiguous dotted mask.
std::optional<uint8_t> parse_plen(std::string_view s) {
  if (auto v = parse_c_uint(s, 32)) return static_cast<uint8_t>(*v);
  const auto m = parse_dotted_mask(s);
  if (!m) return std::nullopt;
  const int len = mask_prefix_length(*m);
  if (len < 0) return std::nullopt;
  return static_cast<uint8_t>(len);
}

struct RateText {
  std::string text;
  uint64_t quantum_ms;
};

/// print_rate(): "N/unit" from the largest unit down (day, hour, min, sec),
/// and the unit in ms (the expire iptables leaves unprinted).
RateText rate_text(uint64_t period) {
  struct Unit {
    const char* name;
    uint64_t mult;
  };
  static constexpr Unit kUnits[] = {
      {"day", 86400 * kScale}, {"hour", 3600 * kScale}, {"min", 60 * kScale}, {"sec", kScale}};
  if (period == 0) return {"0/sec", 1000};
  size_t i = 1;
  for (; i < std::size(kUnits); ++i) {
    if (period > kUnits[i].mult || kUnits[i].mult / period < kUnits[i].mult % period) break;
  }
  return {fmt::format("{}/{}", kUnits[i - 1].mult / period, kUnits[i - 1].name), kUnits[i - 1].mult / kScale * 1000};
}

/// print_bytes(): the rate ("1kb/s"), the burst ("2kb", or "" when 0) and
/// the quantum.
struct BytesText {
  std::string rate;
  std::string burst;
  uint64_t quantum_ms;
};
BytesText bytes_text(uint64_t avg, uint64_t burst) {
  struct Unit {
    const char* name;
    uint32_t thresh;
  };
  static constexpr Unit kUnits[] = {{"m", 1U << 20}, {"k", 1U << 10}, {"", 1}};
  BytesText out;
  uint64_t r = cost_to_bytes(avg);
  size_t i = 0;
  for (; i + 1 < std::size(kUnits); ++i) {
    const uint64_t low_mask = static_cast<uint32_t>(~(kUnits[i].thresh - 1U));  // 32 bits, zero-extended
    if (r >= kUnits[i].thresh && bytes_to_cost(r & low_mask) == avg) break;
  }
  out.rate = fmt::format("{}{}b/s", r / kUnits[i].thresh, kUnits[i].name);
  if (burst == 0) {
    out.quantum_ms = kByteExpire * 1000;
    return out;
  }
  r *= burst;
  for (i = 0; i + 1 < std::size(kUnits); ++i) {
    if (r >= kUnits[i].thresh) break;
  }
  out.burst = fmt::format("{}{}b", r / kUnits[i].thresh, kUnits[i].name);
  out.quantum_ms = kByteExpireBurst * 1000;
  return out;
}

std::string mode_text(uint32_t mode, char sep) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if ((mode & bit) == 0) return;
    if (!s.empty()) s += sep;
    s += name;
  };
  add(HashlimitCfg::kSrcIp, "srcip");
  add(HashlimitCfg::kSrcPort, "srcport");
  add(HashlimitCfg::kDstIp, "dstip");
  add(HashlimitCfg::kDstPort, "dstport");
  return s;
}

constexpr uint32_t kModeHash =
    HashlimitCfg::kSrcIp | HashlimitCfg::kSrcPort | HashlimitCfg::kDstIp | HashlimitCfg::kDstPort;

}  // namespace

// ---------------------------------------------------------------------------
// Options

void HashlimitMatch::parse(const ModuleOption& o) {
  switch (o.id) {
    case kUpto:
    case kAbove: {
      o.conflict(o.id == kUpto ? kAbove : kUpto, o.id == kUpto ? "--hashlimit-above" : "--hashlimit-upto");
      const bool above = (o.id == kAbove) != o.invert;
      cfg.mode = (cfg.mode & ~uint32_t{HashlimitCfg::kInvert}) | (above ? HashlimitCfg::kInvert : 0U);
      // parse_bytes() first: "N[k|m]b/s" with the "b/s" not at the start.
      const size_t bs = o.a.find("b/s");
      if (bs != std::string::npos && bs > 0 && c_atoll(o.a) != 0) {
        uint64_t factor = 1;
        if (o.a[bs - 1] == 'm') factor = 1ULL << 20;
        else if (o.a[bs - 1] == 'k') factor = 1ULL << 10;
        const uint64_t avg = bytes_to_cost(c_atoll(o.a) * factor);
        if (avg == 0) o.fail(o.acol, fmt::format("rate too high \"{}\"", o.a));
        cfg.avg = avg;
        cfg.mode |= HashlimitCfg::kBytes;
        unit = kByteExpire;
        break;
      }
      uint64_t mult = 1;
      bool ok = true;
      const size_t slash = o.a.find('/');
      if (slash != std::string::npos) {
        const std::string_view u = std::string_view(o.a).substr(slash + 1);
        if (u.empty()) ok = false;
        else if (iprefix(u, "second")) mult = 1;
        else if (iprefix(u, "minute")) mult = 60;
        else if (iprefix(u, "hour")) mult = 3600;
        else if (iprefix(u, "day")) mult = 86400;
        else ok = false;
      }
      const uint64_t r = c_atoll(o.a);
      if (!ok || r == 0)
        o.fail(o.acol, fmt::format("bad rate \"{}\" (expected N/sec, N/min, N/hour, N/day, or N[k|m]b/s)", o.a));
      const uint64_t avg = kScale * mult / r;
      if (avg == 0) o.fail(o.acol, fmt::format("rate too fast \"{}\" (at most 1000000/sec)", o.a));
      cfg.avg = avg;
      cfg.mode &= ~uint32_t{HashlimitCfg::kBytes};
      unit = static_cast<uint32_t>(mult);
      break;
    }
    case kBurst: {
      auto v = c_strtoul(o.a);
      if (!v || v->first == 0 || (v->second.empty() && v->first > kMaxBurst))
        o.fail(o.acol, fmt::format("bad value for --hashlimit-burst \"{}\" (expected 1-{})", o.a, kMaxBurst));
      uint64_t b = v->first;
      if (!v->second.empty()) {
        const int ch = std::tolower(static_cast<unsigned char>(v->second[0]));
        if (ch == 'k') b <<= 10;
        else if (ch == 'm') b <<= 20;
      }
      byte_burst = b;
      cfg.burst = b;
      burst_given = true;
      break;
    }
    case kMode: {
      uint32_t m = 0;
      size_t start = 0;
      const std::string& a = o.a;
      while (start <= a.size()) {
        size_t end = a.find_first_of(",|", start);
        if (end == std::string::npos) end = a.size();
        const std::string_view tok = std::string_view(a).substr(start, end - start);
        if (tok == "srcip") m |= HashlimitCfg::kSrcIp;
        else if (tok == "srcport") m |= HashlimitCfg::kSrcPort;
        else if (tok == "dstip") m |= HashlimitCfg::kDstIp;
        else if (tok == "dstport") m |= HashlimitCfg::kDstPort;
        else if (!tok.empty())
          o.fail(o.acol, fmt::format("bad --hashlimit-mode \"{}\" (expected srcip, srcport, dstip, dstport)", a));
        start = end + 1;
      }
      cfg.mode = (cfg.mode & ~kModeHash) | m;
      break;
    }
    case kSrcmask:
    case kDstmask: {
      auto p = parse_plen(o.a);
      if (!p) o.fail(o.acol, fmt::format("bad prefix length \"{}\" (expected 0-32 or a netmask)", o.a));
      (o.id == kSrcmask ? cfg.srcmask : cfg.dstmask) = *p;
      break;
    }
    case kName_:
      if (o.a.empty()) o.fail(o.acol, "--hashlimit-name needs a name");
      name = o.a.substr(0, kMaxName);
      break;
    case kSize:
    case kMax:
    case kGc:
    case kExpire: {
      auto v = parse_c_uint(o.a, UINT32_MAX);
      if (!v) o.fail(o.acol, fmt::format("bad value \"{}\" for {} (expected 0-4294967295)", o.a, o.name));
      auto u = static_cast<uint32_t>(*v);
      // The kernel clamps size and max to HASHLIMIT_MAX_SIZE in the rule
      // itself (iptables-save then prints the clamped value).
      if (o.id == kSize) cfg.size = std::min(u, kMaxTable);
      else if (o.id == kMax) cfg.max = std::min(u, kMaxTable);
      else if (o.id == kGc) cfg.gc_interval = u;
      else {
        cfg.expire = u;
        expire_given = true;
      }
      break;
    }
    case kRateMatch: cfg.mode |= HashlimitCfg::kRateMatch; break;
    case kInterval: {
      const auto v = static_cast<int32_t>(c_atoll(o.a));  // atoi
      if (v <= 0) o.fail(o.acol, fmt::format("bad --hashlimit-rate-interval \"{}\" (expected 1 or more)", o.a));
      cfg.interval = static_cast<uint32_t>(v);
      interval_given = true;
      break;
    }
  }
}

void HashlimitMatch::check(const ModuleCheck& c) const {
  if (!c.given(kUpto) && !c.given(kAbove)) c.fail("hashlimit: you have to specify --hashlimit-upto or --hashlimit-above");
  if (!c.given(kName_)) c.fail("hashlimit: option \"--hashlimit-name\" must be specified");
  // The kernel's checks (hashlimit_mt_check_common, xt_check_proc_name).
  if (name == "." || name == ".." || name.find('/') != std::string::npos)
    c.fail(fmt::format("hashlimit: bad table name \"{}\" (the kernel refuses \".\", \"..\" and names with /)", name));
  if (cfg.gc_interval == 0) c.fail("hashlimit: --hashlimit-htable-gcinterval 0 (the kernel refuses it)");
  if (expire_given && cfg.expire == 0) c.fail("hashlimit: --hashlimit-htable-expire 0 (the kernel refuses it)");
  if ((cfg.mode & HashlimitCfg::kBytes) == 0 && cfg.burst > kMaxBurst)
    c.fail(fmt::format("hashlimit: --hashlimit-burst above {}", kMaxBurst));
  // A packet bucket whose 64-bit cap wraps below one token (HZ 250, as
  // the usual kernels; compile() checks again with the HZ it is given).
  if ((cfg.mode & (HashlimitCfg::kBytes | HashlimitCfg::kRateMatch)) == 0 &&
      hashlimit_user_to_credits(cfg.avg * cfg.burst, 250) < hashlimit_user_to_credits(cfg.avg, 250))
    c.fail("hashlimit: rate too slow for this burst (the kernel's 64-bit credit would overflow: "
           "\"Numerical result out of range\")");
  if ((cfg.mode & HashlimitCfg::kBytes) != 0 && burst_given && byte_burst < cost_to_bytes(cfg.avg))
    c.fail(fmt::format("hashlimit: burst cannot be smaller than {}b", cost_to_bytes(cfg.avg)));
}

void HashlimitMatch::finalize(const ModuleCheck&) {
  if (!expire_given) cfg.expire = unit * 1000;
  if ((cfg.mode & HashlimitCfg::kBytes) != 0) {
    uint64_t b = 0;
    if (burst_given) {
      const uint64_t per = cost_to_bytes(cfg.avg);
      b = per == 0 ? 0 : byte_burst / per + (byte_burst % per != 0 ? 1 : 0);
      if (!expire_given) cfg.expire = kByteExpireBurst * 1000;
    }
    cfg.burst = b;
  }
  if ((cfg.mode & HashlimitCfg::kRateMatch) != 0) {
    if ((cfg.mode & HashlimitCfg::kBytes) == 0) cfg.avg /= unit;
    if (cfg.interval == 0) cfg.interval = (cfg.mode & HashlimitCfg::kBytes) != 0 ? 1 : unit;
  } else {
    cfg.interval = 0;  // read only with rate-match (neither saved nor listed without it)
  }
  // Saved and read back, the rule must come out the same: the parse state
  // is what the saved text gives.
  unit = 1;
  burst_given = false;
  byte_burst = 0;
  expire_given = true;
  interval_given = false;
}

void HashlimitMatch::save(SaveLine& l) const {
  l.add("-m hashlimit");
  l.add((cfg.mode & HashlimitCfg::kInvert) != 0 ? "--hashlimit-above" : "--hashlimit-upto");
  uint64_t quantum = 0;
  if ((cfg.mode & HashlimitCfg::kBytes) != 0) {
    const BytesText b = bytes_text(cfg.avg, cfg.burst);
    l.add(b.rate);
    if (!b.burst.empty()) l.add("--hashlimit-burst").add(b.burst);
    quantum = b.quantum_ms;
  } else {
    const RateText r = rate_text(cfg.avg);
    l.add(r.text).add("--hashlimit-burst").add(std::to_string(cfg.burst));
    quantum = r.quantum_ms;
  }
  if ((cfg.mode & kModeHash) != 0) l.add("--hashlimit-mode").add(mode_text(cfg.mode, ','));
  l.add("--hashlimit-name").add(name);
  if (cfg.size != 0) l.add("--hashlimit-htable-size").add(std::to_string(cfg.size));
  if (cfg.max != 0) l.add("--hashlimit-htable-max").add(std::to_string(cfg.max));
  if (cfg.gc_interval != kDefaultGc) l.add("--hashlimit-htable-gcinterval").add(std::to_string(cfg.gc_interval));
  if (cfg.expire != quantum) l.add("--hashlimit-htable-expire").add(std::to_string(cfg.expire));
  if (cfg.srcmask != 32) l.add("--hashlimit-srcmask").add(std::to_string(cfg.srcmask));
  if (cfg.dstmask != 32) l.add("--hashlimit-dstmask").add(std::to_string(cfg.dstmask));
  if ((cfg.mode & HashlimitCfg::kRateMatch) != 0) {
    l.add("--hashlimit-rate-match");
    if (cfg.interval != 1) l.add("--hashlimit-rate-interval").add(std::to_string(cfg.interval));
  }
}

void HashlimitMatch::list(ListText& t) const {
  t.add((cfg.mode & HashlimitCfg::kInvert) != 0 ? " limit: above" : " limit: up to");
  uint64_t quantum = 0;
  if ((cfg.mode & HashlimitCfg::kBytes) != 0) {
    const BytesText b = bytes_text(cfg.avg, cfg.burst);
    t.put(" {}", b.rate);
    if (!b.burst.empty()) t.put(" burst {}", b.burst);
    quantum = b.quantum_ms;
  } else {
    // -L shows the rate-match window's rate: avg * interval.
    const RateText r = rate_text((cfg.mode & HashlimitCfg::kRateMatch) != 0 ? cfg.avg * cfg.interval : cfg.avg);
    t.put(" {} burst {}", r.text, cfg.burst);
    quantum = r.quantum_ms;
  }
  if ((cfg.mode & kModeHash) != 0) t.put(" mode {}", mode_text(cfg.mode, '-'));
  if (cfg.size != 0) t.put(" htable-size {}", cfg.size);
  if (cfg.max != 0) t.put(" htable-max {}", cfg.max);
  if (cfg.gc_interval != kDefaultGc) t.put(" htable-gcinterval {}", cfg.gc_interval);
  if (cfg.expire != quantum) t.put(" htable-expire {}", cfg.expire);
  if (cfg.srcmask != 32) t.put(" srcmask {}", cfg.srcmask);
  if (cfg.dstmask != 32) t.put(" dstmask {}", cfg.dstmask);
  if ((cfg.mode & HashlimitCfg::kRateMatch) != 0) {
    t.add(" rate-match");
    if (cfg.interval != 1) t.put(" rate-interval {}", cfg.interval);
  }
}

// ---------------------------------------------------------------------------
// Token arithmetic

uint64_t hashlimit_credits_per_jiffy(uint32_t hz) noexcept {
  const uint64_t max_cpj = UINT64_MAX / (uint64_t{hz} * 86400ULL);
  return max_cpj == 0 ? 0 : std::bit_floor(max_cpj);
}

uint64_t hashlimit_user_to_credits(uint64_t user, uint32_t hz) noexcept {
  const uint64_t per_second = uint64_t{hz} * hashlimit_credits_per_jiffy(hz);
  if (kScale >= per_second) return user / (kScale / per_second);
  return user * (per_second / kScale);  // wraps as the kernel's u64 does
}

uint64_t hashlimit_byte_credits_per_jiffy(uint32_t hz) noexcept {
  const uint64_t max_cpj = 0xffffffffULL / hz;
  return max_cpj == 0 ? 0 : std::bit_floor(max_cpj);
}

uint64_t hashlimit_byte_cost(uint64_t avg, uint32_t hz) noexcept {
  const uint64_t us = avg * (uint64_t{hz} * hashlimit_byte_credits_per_jiffy(hz));
  return static_cast<uint32_t>(us >> 32);
}

bool HashlimitMatch::Compiled::step(HashlimitTable::Entry& e, uint32_t len) const noexcept {
  if ((mode & HashlimitCfg::kRateMatch) != 0) {
    e.credit += (mode & HashlimitCfg::kBytes) != 0 ? len : 1U;  // current_rate
    return !e.prev_window && e.credit <= e.credit_cap;
  }
  if ((mode & HashlimitCfg::kBytes) != 0) {
    const uint64_t full = table->byte_full();
    uint64_t cost = (uint64_t{len >> 4} + 1) * e.cost;
    cost = std::min(cost, full);
    if (e.credit < cost && e.credit_cap > 0) {
      --e.credit_cap;
      e.credit = full;
    }
    cost = static_cast<uint32_t>(cost);
    if (e.credit < cost) return false;
    e.credit -= cost;
    return true;
  }
  if (e.credit < e.cost) return false;
  e.credit -= e.cost;
  return true;
}

// ---------------------------------------------------------------------------
// Tables

namespace {

uint32_t table_max(const HashlimitCfg& c) {
  // htable_create(): size 0 = RAM / 16384 / sizeof(list head), 8192 above
  // 1 GiB (a modelled host has more), at least 16; max 0 = 8 * size; max
  // at least size.
  const uint32_t size = c.size != 0 ? c.size : 8192;
  uint32_t max = c.max != 0 ? c.max : 8 * size;
  if (max < size) max = size;
  return max;
}

uint64_t mix(const HashlimitTable::Key& k) {
  uint64_t h = (uint64_t{k.src} << 32 | k.dst) * 0x9e3779b97f4a7c15ULL;
  h ^= (uint64_t{k.sport} << 16 | k.dport) * 0xc2b2ae3d27d4eb4fULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

}  // namespace

HashlimitTable::HashlimitTable(const HashlimitCfg& cfg, uint32_t hz)
    : cfg_(cfg), hz_(hz), cpj_(hashlimit_credits_per_jiffy(hz)), byte_cpj_(hashlimit_byte_credits_per_jiffy(hz)),
      max_(table_max(cfg)),
      gc_jiffies_(std::max<uint64_t>(1, (uint64_t{cfg.gc_interval} * hz + 999) / 1000)),
      entries_(max_), index_(std::bit_ceil(uint64_t{max_} * 2)) {
  index_mask_ = static_cast<uint32_t>(index_.size() - 1);
}

void HashlimitTable::clear() noexcept {
  // One at a time, each out of the index by backward shift (zeroing slots
  // alone would break the probe runs of the entries still in).
  while (used_ > 0) remove(used_ - 1);
  started_ = false;
  next_gc_ = 0;
}

uint32_t HashlimitTable::slot_of(const Key& key) const noexcept {
  auto s = static_cast<uint32_t>(mix(key)) & index_mask_;
  while (index_[s] != 0 && !(entries_[index_[s] - 1].key == key)) s = (s + 1) & index_mask_;
  return s;
}

void HashlimitTable::init_entry(Entry& e, uint64_t now) const noexcept {
  // rateinfo_init(), with the table's configuration.
  e.prev = now;
  e.prev_window = false;
  if ((cfg_.mode & HashlimitCfg::kRateMatch) != 0) {
    e.credit = 0;  // current_rate
    if ((cfg_.mode & HashlimitCfg::kBytes) != 0) {
      e.cost = ((cfg_.avg != 0 ? 0xffffffffULL / cfg_.avg : 0xffffffffULL) - 1) << 4;  // rate, bytes
      e.credit_cap = cfg_.burst != 0 ? cfg_.burst * e.cost : e.cost;
    } else {
      e.cost = cfg_.avg != 0 ? kScale / cfg_.avg : 0xffffffffULL;  // rate, packets
      e.credit_cap = cfg_.burst + e.cost;
    }
    e.interval = cfg_.interval;
  } else if ((cfg_.mode & HashlimitCfg::kBytes) != 0) {
    e.credit = byte_full();
    e.cost = hashlimit_byte_cost(cfg_.avg, hz_);
    e.credit_cap = cfg_.burst;
  } else {
    e.credit = hashlimit_user_to_credits(cfg_.avg * cfg_.burst, hz_);
    e.cost = hashlimit_user_to_credits(cfg_.avg, hz_);
    e.credit_cap = e.credit;
  }
}

void HashlimitTable::refill(Entry& e, uint64_t now) const noexcept {
  if (now <= e.prev) return;  // same jiffy (packet time never goes back for the kernel)
  const uint64_t delta = now - e.prev;
  if ((cfg_.mode & HashlimitCfg::kRateMatch) != 0) {
    const uint64_t interval = uint64_t{e.interval} * hz_;
    if (delta < interval) return;
    e.prev = now;
    e.prev_window = e.credit * interval > delta * e.cost;  // current_rate * interval > delta * rate
    e.credit = 0;
    return;
  }
  e.prev = now;
  if ((cfg_.mode & HashlimitCfg::kBytes) != 0) {
    const uint64_t before = e.credit;
    e.credit += byte_cpj_ * delta;
    const uint64_t cap = byte_full();
    if (before >= e.credit || e.credit > cap) e.credit = cap;  // wrapped, or above one second's worth
    return;
  }
  e.credit += delta * cpj_;
  if (e.credit > e.credit_cap) e.credit = e.credit_cap;
}

void HashlimitTable::collect(uint64_t now) noexcept {
  if (!started_) {
    started_ = true;
    next_gc_ = now + gc_jiffies_;
    return;
  }
  if (now < next_gc_) return;
  // Entries do not change between packets, so the last collection due
  // removes whatever the earlier ones would have.
  const uint64_t last = next_gc_ + (now - next_gc_) / gc_jiffies_ * gc_jiffies_;
  next_gc_ = last + gc_jiffies_;
  for (uint32_t i = 0; i < used_;) {
    if (entries_[i].expires <= last) remove(i);  // the moved-in entry is looked at next
    else ++i;
  }
}

HashlimitTable::Entry* HashlimitTable::find_or_add(const Key& key, uint64_t now, bool& fresh) noexcept {
  const uint32_t s = slot_of(key);
  fresh = index_[s] == 0;
  if (!fresh) return &entries_[index_[s] - 1];
  if (used_ >= max_) return nullptr;
  Entry& e = entries_[used_];
  e = Entry{};
  e.key = key;
  init_entry(e, now);
  index_[s] = ++used_;
  return &e;
}

void HashlimitTable::remove(uint32_t i) noexcept {
  // Out of the index (backward-shift deletion keeps probe runs unbroken).
  uint32_t hole = slot_of(entries_[i].key);
  uint32_t s = (hole + 1) & index_mask_;
  while (index_[s] != 0) {
    const uint32_t home = static_cast<uint32_t>(mix(entries_[index_[s] - 1].key)) & index_mask_;
    // Move s into the hole when its home is not in (hole, s].
    if (((s - home) & index_mask_) >= ((s - hole) & index_mask_)) {
      index_[hole] = index_[s];
      hole = s;
    }
    s = (s + 1) & index_mask_;
  }
  index_[hole] = 0;
  // The last entry moves into i.
  const uint32_t last = used_ - 1;
  if (i != last) {
    entries_[i] = entries_[last];
    index_[slot_of(entries_[i].key)] = i + 1;
  }
  used_ = last;
}

HashlimitTable* HashlimitTables::get(const std::string& name, const HashlimitCfg& cfg, uint32_t hz) {
  auto it = tables_.find(name);
  if (it == tables_.end()) it = tables_.emplace(name, std::make_unique<HashlimitTable>(cfg, hz)).first;
  return it->second.get();
}

const HashlimitTable* HashlimitTables::find(const std::string& name) const noexcept {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

void HashlimitTables::clear() noexcept {
  for (auto& [n, t] : tables_) t->clear();
}

}  // namespace nfb
