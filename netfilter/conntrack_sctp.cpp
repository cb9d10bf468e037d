// SCTP connection tracking. See conntrack_sctp.h for the contract and
// netfilter/conntrack.md for the kernel facts (the table below is the
// kernel's, as measured and as nf_conntrack_proto_sctp.c states it).
#include "netfilter/conntrack_sctp.h"

#include <array>

#include "packet/byte_order.h"

namespace nfb {
namespace {

// SctpCtState values, short, for the table (NONE, 0, never appears in it).
constexpr uint8_t kCl = 1;
constexpr uint8_t kCw = 2;
constexpr uint8_t kCe = 3;
constexpr uint8_t kEs = 4;
constexpr uint8_t kSs = 5;
constexpr uint8_t kSr = 6;
constexpr uint8_t kSa = 7;
constexpr uint8_t kHs = 8;
constexpr uint8_t kIv = 9;  // INVALID

constexpr std::size_t kRows = 11;
// The row of a chunk type, or -1: the type changes nothing.
constexpr int row_of(uint8_t type) noexcept {
  switch (type) {
    case sctp_chunk_type::kInit: return 0;
    case sctp_chunk_type::kInitAck: return 1;
    case sctp_chunk_type::kAbort: return 2;
    case sctp_chunk_type::kShutdown: return 3;
    case sctp_chunk_type::kShutdownAck: return 4;
    case sctp_chunk_type::kError: return 5;
    case sctp_chunk_type::kCookieEcho: return 6;
    case sctp_chunk_type::kCookieAck: return 7;
    case sctp_chunk_type::kShutdownComplete: return 8;
    case sctp_chunk_type::kHeartbeat: return 9;
    case sctp_chunk_type::kHeartbeatAck: return 10;
    default: return -1;
  }
}

using Table = std::array<std::array<std::array<uint8_t, kSctpCtStateCount>, kRows>, 2>;
// [direction][row][current state]; columns NONE CLOSED COOKIE_WAIT
// COOKIE_ECHOED ESTABLISHED SHUTDOWN_SENT SHUTDOWN_RECD SHUTDOWN_ACK_SENT
// HEARTBEAT_SENT.
constexpr Table kTable = {{
    {{
        // ORIGINAL
        {kCl, kCl, kCw, kCe, kEs, kCl, kCl, kSa, kCw},  // INIT
        {kCl, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kCl},  // INIT_ACK
        {kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl},  // ABORT
        {kCl, kCl, kCw, kCe, kSs, kSs, kSr, kSa, kCl},  // SHUTDOWN
        {kSa, kCl, kCw, kCe, kEs, kSa, kSa, kSa, kSa},  // SHUTDOWN_ACK
        {kCl, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kCl},  // ERROR
        {kCl, kCl, kCe, kCe, kEs, kSs, kSr, kSa, kCl},  // COOKIE_ECHO
        {kCl, kCl, kCw, kEs, kEs, kSs, kSr, kSa, kCl},  // COOKIE_ACK
        {kCl, kCl, kCw, kCe, kEs, kSs, kSr, kCl, kCl},  // SHUTDOWN_COMPLETE
        {kHs, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kHs},  // HEARTBEAT
        {kCl, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kHs},  // HEARTBEAT_ACK
    }},
    {{
        // REPLY
        {kIv, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kIv},  // INIT
        {kIv, kCw, kCw, kCe, kEs, kSs, kSr, kSa, kIv},  // INIT_ACK
        {kIv, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kIv},  // ABORT
        {kIv, kCl, kCw, kCe, kSr, kSs, kSr, kSa, kIv},  // SHUTDOWN
        {kIv, kCl, kCw, kCe, kEs, kSa, kSa, kSa, kIv},  // SHUTDOWN_ACK
        {kIv, kCl, kCw, kCl, kEs, kSs, kSr, kSa, kIv},  // ERROR
        {kIv, kCl, kCe, kCe, kEs, kSs, kSr, kSa, kIv},  // COOKIE_ECHO
        {kIv, kCl, kCw, kEs, kEs, kSs, kSr, kSa, kIv},  // COOKIE_ACK
        {kIv, kCl, kCw, kCe, kEs, kSs, kSr, kCl, kIv},  // SHUTDOWN_COMPLETE
        {kIv, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kHs},  // HEARTBEAT
        {kIv, kCl, kCw, kCe, kEs, kSs, kSr, kSa, kEs},  // HEARTBEAT_ACK
    }},
}};

constexpr uint32_t kCommonHeader = sizeof(SctpHdr);
constexpr uint32_t kChunkHeader = sizeof(SctpChunkHdr);
constexpr uint32_t kInitHeader = 16;  // initiate tag, a_rwnd, streams, initial TSN

// The chunk types seen in a packet, as a bit mask of the types below 32
// (every type conntrack tests is below 15).
constexpr uint32_t bit(uint8_t type) noexcept { return type < 32 ? 1U << type : 0U; }

// Walks the chunks as the kernel's for_each_sctp_chunk does: from the end
// of the common header while a whole chunk header fits before the end, each
// chunk's length rounded up to 4.
class Chunks {
 public:
  Chunks(const uint8_t* sctp, uint32_t n) noexcept : p_(sctp), n_(n) {}
  struct Chunk {
    uint32_t offset;
    uint8_t type;
    uint8_t flags;
    uint16_t length;
  };
  template <class F>
  bool each(F&& f) const noexcept {  // f returns false to stop; each() returns what it said last
    for (uint32_t off = kCommonHeader; off + sizeof(SctpChunkHdr) <= n_;) {
      const SctpChunkHdr& h = *header_at<SctpChunkHdr>(p_ + off);
      const Chunk c{off, h.type, h.flags, h.length.host()};
      if (!f(c)) return false;
      if (c.length == 0) return true;  // only a caller that does not stop on it gets here: no progress
      off += (uint32_t{c.length} + 3U) & ~3U;
    }
    return true;
  }

 private:
  const uint8_t* p_;
  uint32_t n_;
};

// do_basic_checks(): the chunk list is well formed. Fills `map`.
bool basic_checks(const Chunks& chunks, uint32_t& map) noexcept {
  uint32_t count = 0;
  bool alone = false;  // an INIT, INIT_ACK or SHUTDOWN_COMPLETE was seen: nothing may follow
  const bool ok = chunks.each([&](const Chunks::Chunk& c) {
    if (c.type == sctp_chunk_type::kInit || c.type == sctp_chunk_type::kInitAck || c.type == sctp_chunk_type::kShutdownComplete)
      alone = true;
    if (((c.type == sctp_chunk_type::kCookieAck || c.type == sctp_chunk_type::kCookieEcho || alone) && count != 0) ||
        c.length == 0)
      return false;
    map |= bit(c.type);
    ++count;
    return true;
  });
  return ok && count != 0;
}

SctpUpdate refuse(SctpReason why) noexcept {
  SctpUpdate u;
  u.verdict = SctpVerdict::Invalid;
  u.reason = why;
  return u;
}

}  // namespace

const char* sctp_ct_state_name(SctpCtState s) noexcept {
  static constexpr const char* kNames[kSctpCtStateCount] = {
      "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD",
      "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT"};
  const auto i = static_cast<std::size_t>(s);
  return i < kSctpCtStateCount ? kNames[i] : "?";
}

SctpTransition sctp_transition(CtDir dir, uint8_t chunk_type, SctpCtState from) noexcept {
  const int row = row_of(chunk_type);
  if (row < 0) return {true, from};
  const uint8_t cell = kTable[dir_index(dir)][static_cast<std::size_t>(row)][static_cast<std::size_t>(from)];
  if (cell == kIv) return {false, SctpCtState::None};
  return {true, static_cast<SctpCtState>(cell)};
}

uint32_t SctpTimeouts::of(SctpCtState s) const noexcept {
  switch (s) {
    case SctpCtState::CookieWait: return cookie_wait;
    case SctpCtState::CookieEchoed: return cookie_echoed;
    case SctpCtState::Established: return established;
    case SctpCtState::ShutdownSent: return shutdown_sent;
    case SctpCtState::ShutdownRecd: return shutdown_recd;
    case SctpCtState::ShutdownAckSent: return shutdown_ack_sent;
    case SctpCtState::HeartbeatSent: return heartbeat_sent;
    default: return closed;  // CLOSED, and NONE
  }
}

SctpUpdate sctp_track(SctpConn& c, CtDir dir, const uint8_t* sctp, uint32_t n, bool confirmed,
                      const SctpTimeouts& timeouts) noexcept {
  if (n < kCommonHeader) return refuse(SctpReason::BadChunks);  // the caller's check, kept safe
  const Chunks chunks(sctp, n);
  uint32_t map = 0;
  if (!basic_checks(chunks, map)) return refuse(SctpReason::BadChunks);
  const uint32_t vtag = header_at<SctpHdr>(sctp)->vtag.host();
  const unsigned d = dir_index(dir);
  const unsigned other = 1U - d;
  const auto init_tag = [&](const Chunks::Chunk& ch, uint32_t& tag) {
    if (ch.offset + kChunkHeader + kInitHeader > n) return false;
    tag = load_be32(sctp + ch.offset + kChunkHeader);
    return true;
  };

  if (!confirmed) {
    // Out of the blue (RFC 9260 8.4): these never open an entry.
    if ((map & (bit(sctp_chunk_type::kAbort) | bit(sctp_chunk_type::kShutdownComplete) | bit(sctp_chunk_type::kCookieAck))) != 0)
      return refuse(SctpReason::CannotOpen);
    // sctp_new(): every chunk must open the entry from NONE; the tags the
    // entry expects come from the chunks.
    c = SctpConn{};
    const bool opens = chunks.each([&](const Chunks::Chunk& ch) {
      const SctpTransition t = sctp_transition(CtDir::Original, ch.type, SctpCtState::None);
      if (!t.valid || t.next == SctpCtState::None) return false;
      if (ch.type == sctp_chunk_type::kInit) {
        uint32_t tag = 0;
        if (vtag != 0 || !init_tag(ch, tag)) return false;  // 8.5.1 (A)
        c.vtag[dir_index(CtDir::Reply)] = tag;
      } else if (ch.type == sctp_chunk_type::kHeartbeat) {
        c.vtag[dir_index(CtDir::Original)] = vtag;  // a secondary path's entry
      } else {
        // A SHUTDOWN_ACK out of the blue is answered by a SHUTDOWN_COMPLETE,
        // anything else by an ABORT (8.4 (5), (8)), both with this tag.
        c.vtag[dir_index(CtDir::Reply)] = vtag;
      }
      c.state = SctpCtState::None;
      return true;
    });
    if (!opens) return refuse(SctpReason::CannotOpen);
  }

  // The verification tag (8.5), unless a chunk with its own rule is there.
  constexpr uint32_t kOwnRule = bit(sctp_chunk_type::kInit) | bit(sctp_chunk_type::kShutdownComplete) |
                                bit(sctp_chunk_type::kCookieEcho) | bit(sctp_chunk_type::kAbort) |
                                bit(sctp_chunk_type::kShutdownAck) | bit(sctp_chunk_type::kHeartbeat) |
                                bit(sctp_chunk_type::kHeartbeatAck);
  if ((map & kOwnRule) == 0 && vtag != c.vtag[d]) return refuse(SctpReason::BadVtag);

  SctpUpdate u;
  SctpCtState new_state = SctpCtState::None;
  bool ignore = false;
  SctpReason fail = SctpReason::None;
  const bool has_data = (map & bit(sctp_chunk_type::kData)) != 0;
  chunks.each([&](const Chunks::Chunk& ch) {
    // The special cases of the tag check (8.5.1).
    const bool t_flag = (ch.flags & sctp_chunk_type::kFlagT) != 0;
    switch (ch.type) {
      case sctp_chunk_type::kInit:
        if (vtag != 0) return (fail = SctpReason::BadVtag), false;  // (A)
        break;
      case sctp_chunk_type::kAbort:
      case sctp_chunk_type::kShutdownComplete:  // (B), (C)
        if (vtag != c.vtag[t_flag ? other : d]) return (fail = SctpReason::BadVtag), false;
        break;
      case sctp_chunk_type::kCookieEcho:  // (D): the tag of the INIT_ACK
        if (vtag != c.vtag[d]) return (fail = SctpReason::BadVtag), false;
        break;
      case sctp_chunk_type::kCookieAck:
        c.init[d] = c.init[other] = false;
        break;
      case sctp_chunk_type::kHeartbeat:
        if (c.vtag[d] == 0) {
          c.vtag[d] = vtag;
        } else if (vtag != c.vtag[d]) {
          // Maybe a new path: let it through once, unrefreshed, and see
          // whether the answer confirms it.
          if (has_data || ignore) return (fail = SctpReason::BadVtag), false;
          c.heartbeat_vtag_failed = true;
          c.heartbeat_dir = dir;
          ignore = true;
          return true;  // this chunk changes no state
        } else {
          c.heartbeat_vtag_failed = false;
        }
        break;
      case sctp_chunk_type::kHeartbeatAck:
        if (c.vtag[d] == 0) {
          c.vtag[d] = vtag;
        } else if (vtag != c.vtag[d]) {
          if (has_data || ignore) return (fail = SctpReason::BadVtag), false;
          if (!c.heartbeat_vtag_failed || c.heartbeat_dir == dir) return (fail = SctpReason::BadVtag), false;
          c.heartbeat_vtag_failed = false;
          c.vtag[d] = vtag;
          c.vtag[other] = 0;
        } else {
          c.heartbeat_vtag_failed = false;
        }
        break;
      default:
        break;
    }

    const SctpCtState old_state = c.state;
    const SctpTransition t = sctp_transition(dir, ch.type, old_state);
    if (!t.valid) return (fail = SctpReason::StateTable), false;
    new_state = t.next;

    if (ch.type == sctp_chunk_type::kInit) {
      uint32_t tag = 0;
      if (!init_tag(ch, tag)) return (fail = SctpReason::BadChunks), false;
      if (c.init[d] && c.init[other]) c.init[other] = false;
      c.init[d] = true;
      c.vtag[other] = tag;
      // A retransmitted INIT does not keep a closed entry (and its NAT
      // binding) alive.
      if (new_state == SctpCtState::Closed && old_state == SctpCtState::Closed && confirmed) ignore = true;
    } else if (ch.type == sctp_chunk_type::kInitAck) {
      uint32_t tag = 0;
      if (!init_tag(ch, tag)) return (fail = SctpReason::BadChunks), false;
      const uint32_t expected = c.vtag[other];
      if (!c.init[other] && expected != 0 && expected != tag) return (fail = SctpReason::BadVtag), false;
      if (c.init[d] && c.init[other] && expected != tag) return (fail = SctpReason::BadVtag), false;  // collision
      c.vtag[other] = tag;
    }

    c.state = new_state;
    if (old_state != new_state && new_state == SctpCtState::Established) u.set_assured = true;
    return true;
  });
  if (fail != SctpReason::None) {
    u.verdict = SctpVerdict::Invalid;
    u.reason = fail;
    return u;
  }
  if (ignore) {
    u.verdict = SctpVerdict::Ignore;
    return u;
  }
  u.verdict = SctpVerdict::Accept;
  u.timeout_s = timeouts.of(new_state);
  return u;
}

}  // namespace nfb
