// -m sctp (loaded by -p sctp): ports and chunk types. iptables'
// libxt_sctp, the kernel's xt_sctp.
#pragma once

#include <array>

#include "rules/matches/tcp.h"
#include "rules/module.h"

namespace nfb {

/// -m sctp. Needs the rule's protocol to be sctp.
///
/// Kernel (sctp_mt): a non-first fragment never matches; a common header
/// shorter than 12 bytes: HOTDROP. Ports as tcp's. --chunk-types walks the
/// chunks after the common header up to the end of the IP packet (each one
/// padded to 4 bytes; a chunk header that is cut short or has length 0:
/// HOTDROP): `any` matches at the first listed chunk (whose flags, when
/// given, match), `all` when every listed type occurred with its flags,
/// `only` when every chunk is listed and has its flags. Flags are given
/// per type as letters after a colon (DATA and I_DATA: I U B E; ABORT and
/// SHUTDOWN_COMPLETE: T); upper case: the bit set, lower case: clear; at
/// most 4 types with flags.
struct SctpMatch {
  enum class Chunks : uint8_t { None, Any, All, Only };
  struct ChunkFlags {
    uint8_t type = 0;
    uint8_t flag = 0;
    uint8_t mask = 0;
    friend bool operator==(const ChunkFlags&, const ChunkFlags&) = default;
  };
  static constexpr size_t kMaxFlagTypes = 4;  // XT_NUM_SCTP_FLAGS

  PortRange sport, dport;
  bool sport_given = false, dport_given = false;
  bool sport_invert = false, dport_invert = false;
  Chunks chunks = Chunks::None;
  bool chunks_invert = false;
  std::array<uint32_t, 8> chunkmap{};  // bit per chunk type 0..255
  std::array<ChunkFlags, kMaxFlagTypes> flags{};
  uint8_t flag_count = 0;
  friend bool operator==(const SctpMatch&, const SctpMatch&) = default;

  static constexpr const char* kName = "sctp";
  enum : uint8_t { kSport, kDport, kChunkTypes };
  static constexpr OptDef kOptions[] = {
      {"source-port", kSport, 1, true},      {"sport", kSport, 1, true},
      {"destination-port", kDport, 1, true}, {"dport", kDport, 1, true},
      {"chunk-types", kChunkTypes, 2, true},
  };
  void parse(const ModuleOption& o);
  void check(const ModuleCheck& c) const { c.need_protocol(kProtoSctp, "sctp"); }
  void save(SaveLine& l) const;
  void list(ListText& t) const;

  /// Chunk types differ between packets of an association (payload).
  uint32_t vary() const noexcept { return chunks != Chunks::None ? kVaryPayload : 0U; }

  bool has_type(uint8_t t) const noexcept { return ((chunkmap[t >> 5] >> (t & 31)) & 1U) != 0; }

  template <class Ctx, class State>
  MatchResult match(const Ctx& ctx, State&) const noexcept {
    constexpr uint32_t kHeaderLen = 12;
    if (ctx.key->is_later_fragment()) return MatchResult::NoMatch;
    uint16_t sp = 0, dp = 0;
    if (l4_bytes(ctx, kHeaderLen) == nullptr || !l4_ports(ctx, kHeaderLen, sp, dp)) return MatchResult::Hotdrop;
    if (sport_given && sport.contains(sp) == sport_invert) return MatchResult::NoMatch;
    if (dport_given && dport.contains(dp) == dport_invert) return MatchResult::NoMatch;
    if (chunks == Chunks::None) return MatchResult::Matched;
    bool hotdrop = false;
    const bool hit = chunks_match(ctx, hotdrop);
    if (hotdrop) return MatchResult::Hotdrop;
    return match_result(hit != chunks_invert);
  }

 private:
  bool flags_match(uint8_t type, uint8_t chunk_flags) const noexcept {
    for (uint8_t i = 0; i < flag_count; ++i) {
      if (flags[i].type == type) return (chunk_flags & flags[i].mask) == flags[i].flag;
    }
    return true;
  }
  template <class Ctx>
  bool chunks_match(const Ctx& ctx, bool& hotdrop) const noexcept {
    const PacketKey& k = *ctx.key;
    const uint32_t end = std::min<uint32_t>(uint32_t{k.l3_off} + k.l3_len, ctx.frame_len);
    uint32_t off = uint32_t{k.l4_off} + 12;
    std::array<uint32_t, 8> left = chunkmap;  // `all`: types not seen yet
    do {
      if (off + 4 > end) {
        hotdrop = true;
        return false;
      }
      const uint8_t type = ctx.frame[off];
      const uint8_t cflags = ctx.frame[off + 1];
      const uint16_t len = load_be16(ctx.frame + off + 2);
      if (len == 0) {
        hotdrop = true;
        return false;
      }
      if (has_type(type)) {
        const bool ok = flags_match(type, cflags);
        if (chunks == Chunks::Any && ok) return true;
        if (chunks == Chunks::All && ok) left[type >> 5] &= ~(1U << (type & 31));
        if (chunks == Chunks::Only && !ok) return false;
      } else if (chunks == Chunks::Only) {
        return false;
      }
      off += (uint32_t{len} + 3U) & ~3U;
    } while (off < end);
    if (chunks == Chunks::All) {
      for (uint32_t w : left) {
        if (w != 0) return false;
      }
      return true;
    }
    return chunks == Chunks::Only;
  }
};

}  // namespace nfb
