// -m recent: option parsing and printing (libxt_recent's), and the lists.
#include "rules/matches/recent.h"

#include <algorithm>
#include <bit>

namespace nfb {

namespace {

/// An IPv4 address as inet_aton() reads it (iptables resolves --mask with
/// getaddrinfo, which does): 1 to 4 parts in C notation, the last one
/// filling the remaining bytes ("10.1" = 10.0.0.1, "167772161" = 10.0.0.1).
std::optional<uint32_t> parse_inet_aton(std::string_view s) {
  const auto parts = split(s, '.');
  if (parts.size() > 4) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto p = parse_c_uint(parts[i], 255);
    if (!p) return std::nullopt;
    v |= static_cast<uint32_t>(*p) << (24 - 8 * i);
  }
  const unsigned rest_bits = 32 - 8 * static_cast<unsigned>(parts.size() - 1);
  auto last = parse_c_uint(parts.back(), rest_bits == 32 ? 0xffffffffULL : (1ULL << rest_bits) - 1);
  if (!last) return std::nullopt;
  return v | static_cast<uint32_t>(*last);
}

}  // namespace

// ---------------------------------------------------------------------------
// Options

void RecentMatch::parse(const ModuleOption& o) {
  constexpr uint8_t kOps[] = {kSet, kCheck, kUpdate, kRemove};
  constexpr const char* kOpNames[] = {"--set", "--rcheck", "--update", "--remove"};
  switch (o.id) {
    case kSet:
    case kCheck:
    case kUpdate:
    case kRemove:
      for (size_t i = 0; i < std::size(kOps); ++i) {
        if (kOps[i] != o.id) o.conflict(kOps[i], kOpNames[i]);
      }
      op = o.id == kSet ? Op::Set : o.id == kCheck ? Op::Check : o.id == kUpdate ? Op::Update : Op::Remove;
      invert = o.invert;
      break;
    case kSeconds:
      seconds = o.line.parse_u32(o.a, o.acol, "--seconds");
      if (seconds == 0) o.fail(o.acol, "bad value for --seconds (expected 1-4294967295)");
      break;
    case kReap: reap = true; break;
    case kHitcount: hit_count = o.line.parse_u32(o.a, o.acol, "--hitcount"); break;
    case kRttl: rttl = true; break;
    case kListName:
      if (o.a.size() > kMaxName) o.fail(o.acol, fmt::format("--name is longer than {} bytes", kMaxName));
      name = o.a;
      break;
    case kRsource: dest = false; break;
    case kRdest: dest = true; break;
    case kMask: {
      auto m = parse_inet_aton(o.a);
      if (!m) o.fail(o.acol, fmt::format("bad --mask \"{}\" (expected an address such as 255.255.255.0)", o.a));
      mask = *m;
      break;
    }
  }
}

void RecentMatch::check(const ModuleCheck& c) const {
  const bool any_op = c.given(kSet) || c.given(kCheck) || c.given(kUpdate) || c.given(kRemove);
  if (!any_op) c.fail("recent: you must specify one of --set, --rcheck, --update or --remove");
  if (c.given(kReap) && !c.given(kSeconds)) c.fail("recent: option \"--reap\" also requires \"--seconds\"");
  const bool set_or_remove = op == Op::Set || op == Op::Remove;
  if (set_or_remove && c.given(kRttl))
    c.fail(fmt::format("recent: option \"--rttl\" cannot be used together with \"--{}\"",
                       op == Op::Set ? "set" : "remove"));
  // The kernel's checks (recent_mt_check).
  if (set_or_remove && (seconds != 0 || hit_count != 0 || reap))
    c.fail("recent: --seconds, --hitcount and --reap need --rcheck or --update (the kernel refuses them)");
  if (hit_count > kMaxHitCount) c.fail(fmt::format("recent: --hitcount above {} (the kernel refuses it)", kMaxHitCount));
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    c.fail(fmt::format("recent: bad list name \"{}\" (the kernel refuses \"\", \".\", \"..\" and names with /)", name));
}

namespace {

const char* op_word(RecentMatch::Op op, bool save) {
  switch (op) {
    case RecentMatch::Op::Set: return save ? "--set" : "SET";
    case RecentMatch::Op::Check: return save ? "--rcheck" : "CHECK";
    case RecentMatch::Op::Update: return save ? "--update" : "UPDATE";
    case RecentMatch::Op::Remove: return save ? "--remove" : "REMOVE";
  }
  return "";
}

}  // namespace

void RecentMatch::save(SaveLine& l) const {
  l.add("-m recent").inv(invert).add(op_word(op, true));
  if (seconds != 0) l.add("--seconds").add(std::to_string(static_cast<int32_t>(seconds)));  // %d
  if (reap) l.add("--reap");
  if (hit_count != 0) l.add("--hitcount").add(std::to_string(static_cast<int32_t>(hit_count)));
  if (rttl) l.add("--rttl");
  l.add("--name").add(name);
  l.add("--mask").add(format_ipv4(mask));
  l.add(dest ? "--rdest" : "--rsource");
}

void RecentMatch::list(ListText& t) const {
  t.put(" {}recent: {}", invert ? "! " : "", op_word(op, false));
  if (seconds != 0) t.put(" seconds: {}", static_cast<int32_t>(seconds));  // %d
  if (reap) t.add(" reap");
  if (hit_count != 0) t.put(" hit_count: {}", static_cast<int32_t>(hit_count));
  if (rttl) t.add(" TTL-Match");
  t.put(" name: {} side: {} mask: {}", name, dest ? "dest" : "source", format_ipv4(mask));
}

uint32_t RecentMatch::ring() const noexcept {
  if (hit_count == 0) return 32;
  return std::bit_ceil(hit_count);
}

// ---------------------------------------------------------------------------
// RecentList

RecentList::RecentList(uint32_t mask, uint32_t ring) : mask_(mask), ring_(ring) {
  addr_.resize(kMaxEntries);
  touched_.resize(kMaxEntries);
  ttl_.resize(kMaxEntries);
  index_.resize(kMaxEntries);
  nstamps_.resize(kMaxEntries);
  stamps_.resize(size_t{kMaxEntries} * ring_);
}

void RecentList::widen(uint32_t ring) {
  if (ring <= ring_) return;
  ring_ = ring;
  stamps_.assign(size_t{kMaxEntries} * ring_, 0);
  clear();
}

void RecentList::clear() noexcept {
  std::fill(touched_.begin(), touched_.end(), 0);
  used_ = 0;
  clock_ = 0;
}

uint32_t RecentList::find(uint32_t addr, uint8_t ttl) const noexcept {
  for (uint32_t s = 0; s < kMaxEntries; ++s) {
    if (touched_[s] != 0 && addr_[s] == addr && (ttl == 0 || ttl_[s] == 0 || ttl_[s] == ttl)) return s;
  }
  return kNone;
}

uint32_t RecentList::lru_head() const noexcept {
  uint32_t best = kNone;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t s = 0; s < kMaxEntries; ++s) {
    if (touched_[s] != 0 && touched_[s] < oldest) {
      oldest = touched_[s];
      best = s;
    }
  }
  return best;
}

void RecentList::insert(uint32_t addr, uint8_t ttl, uint64_t now) noexcept {
  if (used_ >= kMaxEntries) remove(lru_head());
  uint32_t s = 0;
  while (touched_[s] != 0) ++s;  // a free slot exists: used_ < kMaxEntries
  addr_[s] = addr;
  ttl_[s] = ttl;
  stamps_[size_t{s} * ring_] = static_cast<int64_t>(now);
  nstamps_[s] = 1;
  index_[s] = 1;
  touched_[s] = ++clock_;
  ++used_;
}

void RecentList::remove(uint32_t slot) noexcept {
  if (slot == kNone || touched_[slot] == 0) return;
  touched_[slot] = 0;
  --used_;
}

void RecentList::update(uint32_t slot, uint64_t now, uint8_t ttl) noexcept {
  // The kernel's u16 index wraps within the ring (ring_ is a power of two).
  const auto i = static_cast<uint16_t>(index_[slot] & (ring_ - 1));
  stamps_[size_t{slot} * ring_ + i] = static_cast<int64_t>(now);
  index_[slot] = static_cast<uint16_t>(i + 1);
  if (index_[slot] > nstamps_[slot]) nstamps_[slot] = index_[slot];
  ttl_[slot] = ttl;
  touched_[slot] = ++clock_;
}

bool RecentList::hits(uint32_t slot, bool windowed, int64_t since, uint32_t hit_count) const noexcept {
  const int64_t* st = stamps_.data() + size_t{slot} * ring_;
  uint32_t n = 0;
  for (uint32_t i = 0; i < nstamps_[slot]; ++i) {
    if (windowed && st[i] < since) continue;
    if (hit_count == 0 || ++n >= hit_count) return true;
  }
  return false;
}

void RecentList::reap(int64_t since, uint32_t working, bool updating) noexcept {
  const uint32_t head = lru_head();
  if (head == kNone || (head == working && updating)) return;
  // The last stamp written is the newest.
  const uint32_t last = (static_cast<uint32_t>(index_[head]) + ring_ - 1) & (ring_ - 1);
  if (stamps_[size_t{head} * ring_ + last] < since) remove(head);
}

std::vector<uint32_t> RecentList::lru_order() const {
  std::vector<uint32_t> out;
  for (uint32_t s = 0; s < kMaxEntries; ++s) {
    if (touched_[s] != 0) out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [this](uint32_t a, uint32_t b) { return touched_[a] < touched_[b]; });
  return out;
}

// ---------------------------------------------------------------------------
// RecentLists

RecentList* RecentLists::get(const std::string& name, uint32_t mask, uint32_t ring) {
  auto it = lists_.find(name);
  if (it == lists_.end()) return lists_.emplace(name, std::make_unique<RecentList>(mask, ring)).first->second.get();
  it->second->widen(ring);
  return it->second.get();
}

const RecentList* RecentLists::find(const std::string& name) const noexcept {
  auto it = lists_.find(name);
  return it == lists_.end() ? nullptr : it->second.get();
}

void RecentLists::clear() noexcept {
  for (auto& [name, list] : lists_) list->clear();
}

}  // namespace nfb
