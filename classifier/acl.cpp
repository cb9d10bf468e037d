#include "classifier/acl.h"
#include "classifier/registry.h"

#include <fmt/format.h>
#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/dpdk_eal.h"
#include "packet/byte_order.h"

namespace nfb {
namespace {

// The largest key record (see acl.h): the first byte's word, then every
// dimension but the protocol in 4-byte groups -- 32-bit ones one to a group,
// 16-bit ones two, 8-bit ones four (pads fill the last of each kind).
constexpr size_t max_record_bytes() noexcept {
  size_t wide = 0;
  size_t half = 0;
  size_t byte = 0;
  for (unsigned d = 0; d < kDims; ++d) {
    if (d == kDimProto) continue;
    const unsigned bits = field_bits(static_cast<Dim>(d));
    if (bits == 32) ++wide;
    if (bits == 16) ++half;
    if (bits == 8) ++byte;
  }
  return 4 + 4 * (wide + (half + 1) / 2 + (byte + 3) / 4);
}
constexpr size_t kMaxRecordBytes = max_record_bytes();
static_assert(kMaxRecordBytes <= 255, "record offsets are bytes");

// Keys per rte_acl_classify() call (DPDK's test-acl uses 256 too).
constexpr size_t kBurst = 256;

constexpr uint32_t kMaxPriority = static_cast<uint32_t>(RTE_ACL_MAX_PRIORITY);
// Position p gets priority kMaxPriority - p, which must stay >= 1.
constexpr uint32_t kMaxPositions = kMaxPriority;

// Bytes of one rte_acl rule with n fields (RTE_ACL_RULE_SZ without its cast).
constexpr size_t rule_bytes(size_t n) noexcept { return sizeof(rte_acl_rule) + n * sizeof(rte_acl_field); }

// One rte_acl field: which dimension it holds and how rte_acl sees it.
struct FieldSpec {
  Dim dim;        // kDims: a pad (a field every rule leaves open)
  uint8_t type;   // RTE_ACL_FIELD_TYPE_*
  uint8_t size;   // bytes: the dimension's width (a pad: 1 or 2)
  uint8_t input;  // input index (0: the first byte, then the 4-byte groups)
  uint32_t offset;
};

// A box's range in dimension d clipped to the field's width; empty when
// nothing of it lies inside.
struct Clipped {
  uint32_t lo;
  uint32_t hi;
  bool empty;
};
Clipped clip(const Box& b, Dim d) noexcept {
  const uint32_t max = field_max(d);
  const uint32_t hi = std::min(b.r[d].hi, max);
  return Clipped{b.r[d].lo, hi, b.r[d].lo > hi};
}

bool box_empty(const Box& b) noexcept {
  for (unsigned d = 0; d < kDims; ++d) {
    if (clip(b, static_cast<Dim>(d)).empty) return true;
  }
  return false;
}

// Prefix length of [lo, hi] in a 32-bit field, or -1 when it is no prefix
// (a power-of-two block aligned to its size; in any narrower field too).
int prefix_length(uint32_t lo, uint32_t hi) noexcept {
  const uint64_t size = static_cast<uint64_t>(hi) - lo + 1;
  if ((size & (size - 1)) != 0) return -1;  // not a power of two
  if ((lo & (size - 1)) != 0) return -1;    // not aligned to its size
  int bits = 0;
  while ((uint64_t{1} << bits) < size) ++bits;
  return 32 - bits;
}

const char* type_name(uint8_t type) noexcept {
  switch (type) {
    case RTE_ACL_FIELD_TYPE_MASK: return "mask";
    case RTE_ACL_FIELD_TYPE_RANGE: return "range";
    case RTE_ACL_FIELD_TYPE_BITMASK: return "bitmask";
    default: return "?";
  }
}

// The 16-bit dimensions in pairs that share a 4-byte group when both are
// used (as the ClassBench ports always did).
constexpr std::pair<Dim, Dim> kHalfPairs[] = {{kDimSrcPort, kDimDstPort},
                                              {kDimInIface, kDimOutIface},
                                              {kDimCtOrigSrcPort, kDimCtOrigDstPort},
                                              {kDimCtReplSrcPort, kDimCtReplDstPort},
                                              {kDimLength, kDimIcmp}};
constexpr bool every_half_paired() noexcept {
  uint32_t halves = 0;
  for (unsigned d = 0; d < kDims; ++d) halves |= field_bits(static_cast<Dim>(d)) == 16 ? 1U << d : 0U;
  uint32_t paired = 0;
  for (const auto& [a, b] : kHalfPairs) {
    if ((paired & ((1U << a) | (1U << b))) != 0 || a == b) return false;
    paired |= (1U << a) | (1U << b);
  }
  return paired == halves;
}
static_assert(every_half_paired(), "every 16-bit dimension in exactly one pair");

// The rte_acl fields for these (non-empty) boxes, in record order: the
// first byte (the protocol, or a pad), then the dimensions some box
// restricts in 4-byte groups, filled up with pads (see acl.h, "Key record").
std::vector<FieldSpec> field_layout(const std::vector<const Box*>& boxes) {
  uint32_t used = 0;
  uint32_t not_prefix = 0;
  for (const Box* b : boxes) {
    for (unsigned d = 0; d < kDims; ++d) {
      const Dim dim = static_cast<Dim>(d);
      const Clipped c = clip(*b, dim);
      if (c.lo != 0 || c.hi != field_max(dim)) used |= 1U << d;
      if (prefix_length(c.lo, c.hi) < 0) not_prefix |= 1U << d;
    }
  }
  auto uses = [used](unsigned d) { return (used & (1U << d)) != 0; };
  // 32-bit: MASK when every box is a prefix; 8-bit: BITMASK when every box
  // is a bit prefix (exact and any included); 16-bit: RANGE; pads: BITMASK
  // with mask 0.
  auto type_of = [not_prefix](Dim d) -> uint8_t {
    const bool prefix = (not_prefix & (1U << d)) == 0;
    if (d == kDims || (field_bits(d) == 8 && prefix)) return RTE_ACL_FIELD_TYPE_BITMASK;
    if (field_bits(d) == 32 && prefix) return RTE_ACL_FIELD_TYPE_MASK;
    return RTE_ACL_FIELD_TYPE_RANGE;
  };

  // Groups of members (kDims: a pad), later ordered by their first dimension.
  using Group = std::vector<Dim>;
  std::vector<Group> groups;
  std::vector<Dim> lone_halves;
  std::vector<Dim> bytes;
  for (unsigned d = 0; d < kDims; ++d) {
    const Dim dim = static_cast<Dim>(d);
    if (!uses(d) || d == kDimProto) continue;
    if (field_bits(dim) == 32) groups.push_back({dim});
    if (field_bits(dim) == 8) bytes.push_back(dim);
  }
  for (const auto& [a, b] : kHalfPairs) {
    if (uses(a) && uses(b)) groups.push_back({a, b});
    if (uses(a) != uses(b)) lone_halves.push_back(uses(a) ? a : b);
  }
  std::sort(lone_halves.begin(), lone_halves.end());
  for (size_t i = 0; i + 1 < lone_halves.size(); i += 2) groups.push_back({lone_halves[i], lone_halves[i + 1]});
  Group bytes_left;  // 8-bit ones in fours; the last few left over
  for (const Dim d : bytes) {
    bytes_left.push_back(d);
    if (bytes_left.size() == 4) {
      groups.push_back(bytes_left);
      bytes_left.clear();
    }
  }
  if (lone_halves.size() % 2 == 1) {
    // The last lone 16-bit dimension: with up to two 8-bit ones left over,
    // else in its pair's slot beside a pad (ClassBench: pad, dst_port).
    const Dim half = lone_halves.back();
    const bool second = std::any_of(std::begin(kHalfPairs), std::end(kHalfPairs),
                                    [half](const std::pair<Dim, Dim>& p) { return p.second == half; });
    if (!bytes_left.empty() && bytes_left.size() <= 2) {
      Group g{half};
      g.insert(g.end(), bytes_left.begin(), bytes_left.end());
      groups.push_back(g);
    } else {
      groups.push_back(second ? Group{kDims, half} : Group{half});
      if (!bytes_left.empty()) groups.push_back(bytes_left);
    }
  } else if (!bytes_left.empty()) {
    groups.push_back(bytes_left);
  }
  std::stable_sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    return *std::min_element(a.begin(), a.end()) < *std::min_element(b.begin(), b.end());
  });

  std::vector<FieldSpec> f;
  const Dim first = uses(kDimProto) ? kDimProto : kDims;
  f.push_back({first, type_of(first), 1, 0, 0});
  uint8_t input = 1;
  for (const Group& g : groups) {
    uint32_t offset = 4U * input;
    const uint32_t group_end = offset + 4;
    for (const Dim d : g) {
      // A pad in a member's place is as wide as a 16-bit value.
      const auto size = static_cast<uint8_t>(d == kDims ? 2 : field_bits(d) / 8);
      f.push_back({d, type_of(d), size, input, offset});
      offset += size;
    }
    while (offset < group_end) {  // pads to the group's end
      const auto size = static_cast<uint8_t>(group_end - offset >= 2 ? 2 : 1);
      f.push_back({kDims, type_of(kDims), size, input, offset});
      offset += size;
    }
    if (offset != group_end) throw std::logic_error("acl: a field group is not 4 bytes");
    ++input;
  }
  if (f.size() > RTE_ACL_MAX_FIELDS) throw std::logic_error("acl: more fields than rte_acl takes");
  return f;
}

// The value/mask_range pair of one box in one field (rte_acl wants them in
// host order; only the member of the field's size is read).
rte_acl_field field_value(const Box& b, const FieldSpec& f) noexcept {
  rte_acl_field out;
  std::memset(&out, 0, sizeof out);
  if (f.dim == kDims) return out;  // a pad: value 0 under mask 0 (any)
  const Clipped c = clip(b, f.dim);
  if (f.type == RTE_ACL_FIELD_TYPE_MASK) {  // 4 bytes, a prefix
    out.value.u32 = c.lo;
    out.mask_range.u32 = static_cast<uint32_t>(prefix_length(c.lo, c.hi));
  } else if (f.type == RTE_ACL_FIELD_TYPE_BITMASK) {  // one byte, a bit prefix
    out.value.u8 = static_cast<uint8_t>(c.lo);
    out.mask_range.u8 = static_cast<uint8_t>(~(c.hi - c.lo));
  } else if (f.size == 1) {
    out.value.u8 = static_cast<uint8_t>(c.lo);
    out.mask_range.u8 = static_cast<uint8_t>(c.hi);
  } else if (f.size == 2) {
    out.value.u16 = static_cast<uint16_t>(c.lo);
    out.mask_range.u16 = static_cast<uint16_t>(c.hi);
  } else {
    out.value.u32 = c.lo;
    out.mask_range.u32 = c.hi;
  }
  return out;
}

// Whether the fields are the ClassBench record: proto@0, src_ip@4,
// dst_ip@8, src_port@12, dst_port@14, where a port no box restricts is a
// pad (any field types).
bool is_five_tuple(const std::vector<FieldSpec>& f) noexcept {
  static constexpr std::pair<Dim, uint32_t> kFive[] = {
      {kDimProto, 0}, {kDimSrcIp, 4}, {kDimDstIp, 8}, {kDimSrcPort, 12}, {kDimDstPort, 14}};
  if (f.size() != std::size(kFive)) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    const bool pad_port = i >= 3 && f[i].dim == kDims;
    if ((f[i].dim != kFive[i].first && !pad_port) || f[i].offset != kFive[i].second) return false;
  }
  return true;
}

// The ClassBench record, straight-line (the common case benchmarked). A
// port that is a pad gets the key's port: every rule accepts any value there.
inline void pack_five_tuple(const ClassifierKey& k, uint8_t* out) noexcept {
  out[0] = static_cast<uint8_t>(k.v[kDimProto]);
  store_be32(out + 4, k.v[kDimSrcIp]);
  store_be32(out + 8, k.v[kDimDstIp]);
  store_be16(out + 12, static_cast<uint16_t>(k.v[kDimSrcPort]));
  store_be16(out + 14, static_cast<uint16_t>(k.v[kDimDstPort]));
}

enum rte_acl_classify_alg to_dpdk(AclAlgorithm a) noexcept {
  switch (a) {
    case AclAlgorithm::kBest: return RTE_ACL_CLASSIFY_DEFAULT;
    case AclAlgorithm::kScalar: return RTE_ACL_CLASSIFY_SCALAR;
    case AclAlgorithm::kSse: return RTE_ACL_CLASSIFY_SSE;
    case AclAlgorithm::kAvx2: return RTE_ACL_CLASSIFY_AVX2;
    case AclAlgorithm::kAvx512x16: return RTE_ACL_CLASSIFY_AVX512X16;
    case AclAlgorithm::kAvx512x32: return RTE_ACL_CLASSIFY_AVX512X32;
    case AclAlgorithm::kNeon: return RTE_ACL_CLASSIFY_NEON;
    case AclAlgorithm::kAltivec: return RTE_ACL_CLASSIFY_ALTIVEC;
  }
  return RTE_ACL_CLASSIFY_SCALAR;
}

std::string unique_context_name() {
  static std::atomic<uint64_t> counter{0};
  // rte_acl_create() returns an EXISTING context of the same name, so every
  // context needs its own (at most RTE_ACL_NAMESIZE - 1 characters).
  return fmt::format("nfb_acl_{}", counter.fetch_add(1, std::memory_order_relaxed));
}

struct ContextDeleter {
  void operator()(rte_acl_ctx* c) const noexcept { rte_acl_free(c); }
};
using ContextPtr = std::unique_ptr<rte_acl_ctx, ContextDeleter>;

ContextPtr create_context(uint32_t rule_size, uint32_t max_rules) {
  const std::string name = unique_context_name();
  rte_acl_param prm{};
  prm.name = name.c_str();
  prm.socket_id = SOCKET_ID_ANY;
  prm.rule_size = rule_size;
  prm.max_rule_num = max_rules;
  ContextPtr ctx(rte_acl_create(&prm));
  if (!ctx) {
    throw std::invalid_argument(
        fmt::format("acl: rte_acl_create for {} rules failed: {}", max_rules, rte_strerror(rte_errno)));
  }
  return ctx;
}

// Bytes allocated from the EAL heap, all sockets.
size_t eal_heap_allocated() noexcept {
  size_t total = 0;
  const unsigned sockets = rte_socket_count();
  for (unsigned i = 0; i < sockets; ++i) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0) total += st.heap_allocsz_bytes;
  }
  return total;
}

// The implementation kBest stands for, or `a` itself; throws when the CPU
// or the EAL's SIMD width does not allow it. Asks DPDK on a throw-away
// context (the check does not depend on the rules).
AclAlgorithm resolve_algorithm(AclAlgorithm a) {
  ContextPtr probe = create_context(static_cast<uint32_t>(rule_bytes(1)), 1);
  if (a == AclAlgorithm::kBest) {
    for (AclAlgorithm c : {AclAlgorithm::kAvx512x32, AclAlgorithm::kAvx512x16, AclAlgorithm::kAvx2,
                           AclAlgorithm::kSse, AclAlgorithm::kScalar}) {
      if (rte_acl_set_ctx_classify(probe.get(), to_dpdk(c)) == 0) return c;
    }
    throw std::invalid_argument("acl: rte_acl accepts no classify algorithm, not even scalar");
  }
  const int rc = rte_acl_set_ctx_classify(probe.get(), to_dpdk(a));
  if (rc != 0) {
    throw std::invalid_argument(fmt::format(
        "acl: rte_acl algorithm {} is not available here: {} (it needs the CPU feature, and the EAL's "
        "SIMD width: avx512x32 needs --force-max-simd-bitwidth=512, avx2 and avx512x16 256)",
        acl_algorithm_name(a), rte_strerror(-rc)));
  }
  return a;
}

std::string build_error(int rc, size_t max_size) {
  switch (rc) {
    case -ERANGE:
      return fmt::format("the run-time structure does not fit max_size = {} bytes even with the smallest tries",
                         max_size);
    case -ENOMEM:
      return "out of memory, or the boxes of this one position need more than 8 tries (RTE_ACL_MAX_TRIES)";
    default:
      return rte_strerror(-rc);
  }
}

}  // namespace

std::string_view acl_algorithm_name(AclAlgorithm a) noexcept {
  switch (a) {
    case AclAlgorithm::kBest: return "best";
    case AclAlgorithm::kScalar: return "scalar";
    case AclAlgorithm::kSse: return "sse";
    case AclAlgorithm::kAvx2: return "avx2";
    case AclAlgorithm::kAvx512x16: return "avx512x16";
    case AclAlgorithm::kAvx512x32: return "avx512x32";
    case AclAlgorithm::kNeon: return "neon";
    case AclAlgorithm::kAltivec: return "altivec";
  }
  return "invalid";
}

std::optional<AclAlgorithm> parse_acl_algorithm(std::string_view name) noexcept {
  for (AclAlgorithm a : {AclAlgorithm::kBest, AclAlgorithm::kScalar, AclAlgorithm::kSse, AclAlgorithm::kAvx2,
                         AclAlgorithm::kAvx512x16, AclAlgorithm::kAvx512x32, AclAlgorithm::kNeon,
                         AclAlgorithm::kAltivec}) {
    if (acl_algorithm_name(a) == name) return a;
  }
  return std::nullopt;
}

AclClassifier::AclClassifier(const RuleBoxes& rules, const AclOptions& options)
    : boxes_(rules.boxes), rules_(rules.rules) {
  if (rules.rules > kMaxPositions) {
    throw std::invalid_argument(fmt::format(
        "acl: {} rules, but rte_acl priorities allow at most {} positions", rules.rules, kMaxPositions));
  }
  if (!std::is_sorted(boxes_.begin(), boxes_.end(),
                      [](const Box& a, const Box& b) { return a.position < b.position; })) {
    throw std::invalid_argument("acl: boxes must be sorted by position");
  }
  for (const Box& b : boxes_) {
    if (b.position >= rules.rules) {
      throw std::invalid_argument(
          fmt::format("acl: box position {} beyond the rule count {}", b.position, rules.rules));
    }
  }
  first_box_.assign(static_cast<size_t>(rules_) + 1, static_cast<uint32_t>(boxes_.size()));
  for (size_t i = boxes_.size(); i-- > 0;) first_box_[boxes_[i].position] = static_cast<uint32_t>(i);
  for (size_t p = rules_; p-- > 0;) first_box_[p] = std::min(first_box_[p], first_box_[p + 1]);

  start_dpdk_eal();
  algorithm_ = resolve_algorithm(options.algorithm);

  // Boxes that can match something; empty ones never match and are left out.
  std::vector<const Box*> live;
  live.reserve(boxes_.size());
  for (const Box& b : boxes_) {
    if (!box_empty(b)) live.push_back(&b);
  }
  // Few boxes: no context; lookups scan them (see AclOptions::min_boxes).
  if (live.size() < options.min_boxes) scanned_ = !live.empty();
  if (live.empty() || scanned_) return;
  const std::vector<FieldSpec> fields = field_layout(live);
  record_bytes_ = 4 + 4U * fields.back().input;
  if (record_bytes_ > kMaxRecordBytes) throw std::logic_error("acl: the key record outgrew its bound");
  five_tuple_ = is_five_tuple(fields);
  record_fields_.reserve(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldSpec& f = fields[i];
    const bool pad = f.dim == kDims;
    record_fields_.push_back(RecordField{pad ? 0U : field_max(f.dim), static_cast<uint8_t>(pad ? 0 : f.dim), f.size,
                                         static_cast<uint8_t>(f.offset)});
    layout_ += fmt::format("{}{}:{}@{}/{}", i == 0 ? "" : " ", pad ? "pad" : dim_name(f.dim), type_name(f.type),
                           f.offset, f.size);
  }
  const size_t rule_size = rule_bytes(fields.size());

  // Groups of whole positions, about max_boxes_per_context boxes each, as a
  // stack of [begin, end) ranges of `live`, lowest on top: contexts are made
  // in position order. A group rte_acl gives up on (-ENOMEM: more than 8
  // tries, or out of memory) is halved at a position boundary and retried.
  const size_t per_context = options.max_boxes_per_context == 0 ? live.size() : options.max_boxes_per_context;
  std::vector<std::pair<size_t, size_t>> pending;
  for (size_t begin = 0; begin < live.size();) {
    size_t end = std::min(live.size(), begin + per_context);
    while (end < live.size() && live[end]->position == live[end - 1]->position) ++end;
    pending.emplace_back(begin, end);
    begin = end;
  }
  std::reverse(pending.begin(), pending.end());
  try {
    uint32_t first_position = 0;
    std::vector<uint64_t> rule_buf;  // uint64_t: rte_acl_field holds 64-bit unions
    while (!pending.empty()) {
      const auto [begin, end] = pending.back();
      pending.pop_back();
      const auto count = static_cast<uint32_t>(end - begin);

      rule_buf.assign((count * rule_size + sizeof(uint64_t) - 1) / sizeof(uint64_t), 0);
      auto* bytes = reinterpret_cast<uint8_t*>(rule_buf.data());
      for (size_t i = 0; i < count; ++i) {
        const Box& b = *live[begin + i];
        rte_acl_rule_data data{};
        data.category_mask = 1;
        data.priority = static_cast<int32_t>(kMaxPriority - b.position);
        data.userdata = b.position + 1;
        uint8_t* rule = bytes + i * rule_size;
        std::memcpy(rule, &data, sizeof data);
        for (size_t f = 0; f < fields.size(); ++f) {
          const rte_acl_field v = field_value(b, fields[f]);
          std::memcpy(rule + sizeof(rte_acl_rule) + f * sizeof(rte_acl_field), &v, sizeof v);
        }
      }

      const size_t heap_before = eal_heap_allocated();
      ContextPtr ctx = create_context(static_cast<uint32_t>(rule_size), count);
      int rc = rte_acl_add_rules(ctx.get(), reinterpret_cast<const rte_acl_rule*>(rule_buf.data()), count);
      if (rc != 0) {
        throw std::invalid_argument(fmt::format("acl: rte_acl_add_rules refused the boxes of positions {}..{}: {}",
                                                live[begin]->position, live[end - 1]->position,
                                                rte_strerror(-rc)));
      }
      rte_acl_config cfg;
      std::memset(&cfg, 0, sizeof cfg);
      cfg.num_categories = 1;
      cfg.num_fields = static_cast<uint32_t>(fields.size());
      for (size_t f = 0; f < fields.size(); ++f) {
        cfg.defs[f].type = fields[f].type;
        cfg.defs[f].size = fields[f].size;
        cfg.defs[f].field_index = static_cast<uint8_t>(f);
        cfg.defs[f].input_index = fields[f].input;
        cfg.defs[f].offset = fields[f].offset;
      }
      cfg.max_size = options.max_size;
      rc = rte_acl_build(ctx.get(), &cfg);
      if (rc == -ENOMEM && live[begin]->position != live[end - 1]->position) {
        // Halve at the position boundary nearest the middle.
        size_t mid = begin + count / 2;
        while (mid > begin && live[mid]->position == live[mid - 1]->position) --mid;
        if (mid == begin) {
          mid = begin + count / 2;
          while (live[mid]->position == live[mid - 1]->position) ++mid;
        }
        pending.emplace_back(mid, end);
        pending.emplace_back(begin, mid);
        ++splits_;
        continue;
      }
      if (rc != 0) {
        throw std::invalid_argument(fmt::format("acl: rte_acl_build of positions {}..{} ({} boxes) failed: {}",
                                                live[begin]->position, live[end - 1]->position, count,
                                                build_error(rc, options.max_size)));
      }
      rc = rte_acl_set_ctx_classify(ctx.get(), to_dpdk(algorithm_));
      if (rc != 0) {
        throw std::invalid_argument(fmt::format("acl: rte_acl_set_ctx_classify({}) failed: {}",
                                                acl_algorithm_name(algorithm_), rte_strerror(-rc)));
      }
      Context c;
      c.first_position = first_position;
      c.end_position = end == live.size() ? rules_ : live[end]->position;
      c.heap_bytes = eal_heap_allocated() - heap_before;
      c.ctx = ctx.release();
      contexts_.push_back(c);
      first_position = c.end_position;
    }
  } catch (...) {
    free_contexts();
    throw;
  }
}

AclClassifier::~AclClassifier() { free_contexts(); }

void AclClassifier::free_contexts() noexcept {
  for (Context& c : contexts_) rte_acl_free(c.ctx);
  contexts_.clear();
}

void AclClassifier::set_algorithm(AclAlgorithm a) {
  const AclAlgorithm resolved = resolve_algorithm(a);
  for (Context& c : contexts_) {
    const int rc = rte_acl_set_ctx_classify(c.ctx, to_dpdk(resolved));
    if (rc != 0) {
      throw std::invalid_argument(fmt::format("acl: rte_acl_set_ctx_classify({}) failed: {}",
                                              acl_algorithm_name(resolved), rte_strerror(-rc)));
    }
  }
  algorithm_ = resolved;
}

size_t AclClassifier::acl_bytes() const noexcept {
  size_t total = 0;
  for (const Context& c : contexts_) total += c.heap_bytes;
  return total;
}

size_t AclClassifier::memory_bytes() const noexcept {
  return acl_bytes() + boxes_.capacity() * sizeof(Box) + first_box_.capacity() * sizeof(uint32_t) +
         contexts_.capacity() * sizeof(Context) + record_fields_.capacity() * sizeof(RecordField);
}

void AclClassifier::pack_record(const ClassifierKey& key, uint8_t* out) const noexcept {
  for (const RecordField& f : record_fields_) {
    const uint32_t v = key.v[f.dim] & f.mask;
    if (f.bytes == 4) {
      store_be32(out + f.offset, v);
    } else if (f.bytes == 2) {
      store_be16(out + f.offset, static_cast<uint16_t>(v));
    } else {
      out[f.offset] = static_cast<uint8_t>(v);
    }
  }
}

uint32_t AclClassifier::scan(const ClassifierKey& key, uint32_t from, uint32_t end) const noexcept {
  for (size_t b = first_box_[from]; b < boxes_.size() && boxes_[b].position < end; ++b) {
    if (boxes_[b].contains(key.v)) return boxes_[b].position;
  }
  return kNoMatch;
}

void AclClassifier::lookup(std::span<const ClassifierKey> keys, std::span<const uint32_t> start,
                           std::span<uint32_t> result) const noexcept {
  if (contexts_.empty()) {  // no box matches anything, or a few are scanned
    for (size_t i = 0; i < keys.size(); ++i) {
      const uint32_t from = start.empty() ? 0U : start[i];
      result[i] = scanned_ && from < rules_ ? scan(keys[i], from, rules_) : kNoMatch;
    }
    return;
  }
  alignas(64) uint8_t records[kBurst * kMaxRecordBytes];
  const size_t stride = record_bytes_;
  const uint8_t* data[kBurst];
  uint32_t found[kBurst];
  uint16_t pending[kBurst];  // keys (burst indexes) not resolved yet, ascending
  uint16_t sent[kBurst];     // keys handed to the current context

  for (size_t base = 0; base < keys.size(); base += kBurst) {
    const size_t n = std::min(kBurst, keys.size() - base);
    if (five_tuple_) {
      for (size_t i = 0; i < n; ++i) pack_five_tuple(keys[base + i], records + i * stride);
    } else {
      for (size_t i = 0; i < n; ++i) pack_record(keys[base + i], records + i * stride);
    }

    if (start.empty() && contexts_.size() == 1) {
      // The common case: one rte_acl walk answers every key. userdata is
      // position + 1 and 0 is "no match", so userdata - 1 wraps to kNoMatch.
      for (size_t i = 0; i < n; ++i) data[i] = records + i * stride;
      rte_acl_classify(contexts_[0].ctx, data, found, static_cast<uint32_t>(n), 1);
      for (size_t i = 0; i < n; ++i) result[base + i] = found[i] - 1U;
      continue;
    }

    auto start_of = [&](size_t i) -> uint32_t { return start.empty() ? 0U : start[base + i]; };
    size_t npending = 0;
    for (size_t i = 0; i < n; ++i) {
      result[base + i] = kNoMatch;
      if (start_of(i) < rules_) pending[npending++] = static_cast<uint16_t>(i);
    }
    // Contexts in position order: the first that answers a key has its answer.
    for (const Context& c : contexts_) {
      if (npending == 0) break;
      size_t nsent = 0;
      for (size_t j = 0; j < npending; ++j) {
        const uint16_t i = pending[j];
        if (start_of(i) < c.end_position) {  // keys starting past this context skip it
          data[nsent] = records + size_t{i} * stride;
          sent[nsent++] = i;
        }
      }
      if (nsent == 0) continue;
      rte_acl_classify(c.ctx, data, found, static_cast<uint32_t>(nsent), 1);
      for (size_t j = 0; j < nsent; ++j) {
        const uint16_t i = sent[j];
        uint32_t p = found[j] - 1U;
        const uint32_t from = start_of(i);
        // A match before the start: what rte_acl cannot answer, so scan the
        // rest of this context's positions from the start.
        if (p != kNoMatch && p < from) p = scan(keys[base + i], from, c.end_position);
        result[base + i] = p;
      }
      size_t kept = 0;
      for (size_t j = 0; j < npending; ++j) {
        if (result[base + pending[j]] == kNoMatch) pending[kept++] = pending[j];
      }
      npending = kept;
    }
  }
}

std::unique_ptr<Classifier> make_acl_classifier(const RuleBoxes& rules, ClassifierUse use) {
  AclOptions o;
  if (use == ClassifierUse::kChain) o.min_boxes = kAclChainMinBoxes;
  return std::make_unique<AclClassifier>(rules, o);
}

}  // namespace nfb
