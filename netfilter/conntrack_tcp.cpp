// TCP tracking: the transition table, the special cases and window tracking.
// See conntrack_tcp.h for the idea and netfilter/conntrack.md for the facts
// (and the kernel experiments that confirm them).
#include "netfilter/conntrack_tcp.h"

#include <array>
#include <optional>

#include "packet/byte_order.h"

namespace nfb {
namespace {

// Sequence-space comparisons (RFC 1982 style): a is before b when the signed
// 32-bit distance from b to a is negative.
constexpr bool seq_before(uint32_t a, uint32_t b) noexcept {
  return static_cast<int32_t>(a - b) < 0;
}
constexpr bool seq_after(uint32_t a, uint32_t b) noexcept { return seq_before(b, a); }

// ---------------------------------------------------------------- the table

// Cell encoding: a state number, or one of these two markers.
constexpr uint8_t kIv = 0xfe;  // invalid
constexpr uint8_t kIg = 0xff;  // ignore
constexpr uint8_t kSs = static_cast<uint8_t>(TcpCtState::SynSent);
constexpr uint8_t kSr = static_cast<uint8_t>(TcpCtState::SynRecv);
constexpr uint8_t kEs = static_cast<uint8_t>(TcpCtState::Established);
constexpr uint8_t kFw = static_cast<uint8_t>(TcpCtState::FinWait);
constexpr uint8_t kCw = static_cast<uint8_t>(TcpCtState::CloseWait);
constexpr uint8_t kLa = static_cast<uint8_t>(TcpCtState::LastAck);
constexpr uint8_t kTw = static_cast<uint8_t>(TcpCtState::TimeWait);
constexpr uint8_t kCl = static_cast<uint8_t>(TcpCtState::Close);
constexpr uint8_t kS2 = static_cast<uint8_t>(TcpCtState::SynSent2);

using Row = std::array<uint8_t, kTcpCtStateCount>;  // by current state
using Block = std::array<Row, kTcpFlagClassCount>;  // by flag class

// Rows: SYN, SYN-ACK, FIN, ACK, RST, none. Columns: the current state in
// enum order NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK
// TIME_WAIT CLOSE SYN_SENT2.
constexpr std::array<Block, 2> kTable{{
    // Original direction (the side that opened).
    {{
        {kSs, kSs, kIg, kIg, kIg, kIg, kIg, kSs, kSs, kS2},  // SYN: open, retransmit, reopen after close
        {kIv, kIv, kSr, kIv, kIv, kIv, kIv, kIv, kIv, kSr},  // SYN-ACK: only in simultaneous open
        {kIv, kIv, kFw, kFw, kLa, kLa, kLa, kTw, kCl, kIv},  // FIN: not before the SYN-ACK
        {kEs, kIv, kEs, kEs, kCw, kCw, kTw, kTw, kCl, kIv},  // ACK: from NONE = mid-stream pick-up
        {kIv, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl},  // RST
        {kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv},  // no flag
    }},
    // Reply direction.
    {{
        {kIv, kS2, kIv, kIv, kIv, kIv, kIv, kSs, kIv, kS2},  // SYN: simultaneous open; TIME_WAIT role switch
        {kIv, kSr, kIg, kIg, kIg, kIg, kIg, kIg, kIg, kSr},  // SYN-ACK: the answer; later ones ignored
        {kIv, kIv, kFw, kFw, kLa, kLa, kLa, kTw, kCl, kIv},  // FIN
        {kIv, kIg, kSr, kEs, kCw, kCw, kTw, kTw, kCl, kIg},  // ACK: ignored while half-open
        {kIv, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl, kCl},  // RST
        {kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv, kIv},  // no flag
    }},
}};

// Valid combinations of FIN/SYN/RST/ACK/URG (PSH, ECE, CWR masked off), as a
// bit set over the 6-bit value.
constexpr uint64_t valid_flag_set() noexcept {
  constexpr uint8_t F = tcp_flag::kFin, S = tcp_flag::kSyn, R = tcp_flag::kRst,
                    A = tcp_flag::kAck, U = tcp_flag::kUrg;
  uint64_t set = 0;
  for (uint8_t v : {uint8_t(S), uint8_t(S | U), uint8_t(S | A), uint8_t(R), uint8_t(R | A),
                    uint8_t(F | A), uint8_t(F | A | U), uint8_t(A), uint8_t(A | U)})
    set |= uint64_t{1} << v;
  return set;
}
constexpr uint64_t kValidFlags = valid_flag_set();

// ---------------------------------------------------------------- options

// Walks the option bytes the way conntrack does: stop at end-of-list, at a
// length below 2 or running past the header; NOP is one byte.
template <typename Visit>
void walk_options(const TcpSegment& seg, Visit&& visit) noexcept {
  int left = static_cast<int>(seg.header_len) - 20;
  const uint8_t* p = seg.options;
  while (left > 0) {
    const uint8_t kind = *p++;
    if (kind == 0) return;  // end of option list
    if (kind == 1) {        // NOP
      --left;
      continue;
    }
    if (left < 2) return;
    const uint8_t size = *p++;
    if (size < 2 || size > left) return;
    if (!visit(kind, size, p)) return;
    p += size - 2;
    left -= size;
  }
}

// Reads window scale and SACK-permitted into `peer` (a SYN or SYN-ACK).
// Leaves the peer untouched when the segment has no options at all.
void read_syn_options(const TcpSegment& seg, TcpPeer& peer) noexcept {
  if (seg.header_len <= 20) return;
  peer.scale = 0;
  peer.flags &= TcpPeer::kBeLiberal;
  walk_options(seg, [&](uint8_t kind, uint8_t size, const uint8_t* value) {
    if (kind == 4 && size == 2) {
      peer.flags |= TcpPeer::kSackPerm;
    } else if (kind == 3 && size == 3) {
      peer.scale = value[0] > 14 ? uint8_t{14} : value[0];  // RFC 7323 caps the shift at 14
      peer.flags |= TcpPeer::kWindowScale;
    }
    return true;
  });
}

}  // namespace

uint32_t tcp_highest_sack(const TcpSegment& seg, uint32_t sack) noexcept {
  if (seg.header_len <= 20) return sack;
  walk_options(seg, [&](uint8_t kind, uint8_t size, const uint8_t* value) {
    if (kind == 5 && size >= 10 && (size - 2) % 8 == 0) {
      for (int i = 0; i + 8 <= size - 2; i += 8) {
        const uint32_t right = load_be32(value + i + 4);
        if (seq_after(right, sack)) sack = right;
      }
      return false;  // only the first SACK option counts
    }
    return true;
  });
  return sack;
}

namespace {

// ---------------------------------------------------------------- windows

enum class WindowCheck : uint8_t { Accept, Ignore, Invalid };

struct WindowResult {
  WindowCheck check = WindowCheck::Accept;
  TcpReason reason = TcpReason::None;
};

uint32_t segment_end(const TcpSegment& seg) noexcept {
  return seg.seq + seg.payload_len + ((seg.flags & tcp_flag::kSyn) != 0 ? 1U : 0U) +
         ((seg.flags & tcp_flag::kFin) != 0 ? 1U : 0U);
}

// The ACK lower bound: acks may lag the receiver's end by at most this much.
uint32_t max_ack_window(const TcpPeer& sender) noexcept {
  return sender.max_win > 66000U ? sender.max_win : 66000U;
}

// A SYN-ACK (or a SYN from the reply side): (re)starts the sender's stream.
void start_sender(TcpPeer& sender, TcpPeer& receiver, const TcpSegment& seg, uint32_t end,
                  CtDir dir) noexcept {
  sender.end = end;
  sender.max_end = end;
  sender.max_win = seg.window == 0 ? 1U : seg.window;
  read_syn_options(seg, sender);
  // Window scaling is on only when both SYNs carried the option.
  if (dir == CtDir::Reply && !((sender.flags & TcpPeer::kWindowScale) != 0 &&
                               (receiver.flags & TcpPeer::kWindowScale) != 0)) {
    sender.scale = 0;
    receiver.scale = 0;
  }
}

// A failed check counts as passed when the sender is tracked liberally.
WindowResult fail(const TcpPeer& sender, bool liberal, WindowCheck how, TcpReason why) noexcept {
  if (liberal || (sender.flags & TcpPeer::kBeLiberal) != 0) return {};
  return {how, why};
}

// The window check and, when it passes, the update of both peers' data.
// c.state is still the entry's state before this segment.
WindowResult check_window(TcpConn& c, CtDir dir, TcpFlagClass cls, const TcpSegment& seg,
                          bool liberal) noexcept {
  TcpPeer& sender = c.peer[dir_index(dir)];
  TcpPeer& receiver = c.peer[dir_index(opposite(dir))];
  const bool has_syn = (seg.flags & tcp_flag::kSyn) != 0;
  const bool has_ack = (seg.flags & tcp_flag::kAck) != 0;
  const bool has_rst = (seg.flags & tcp_flag::kRst) != 0;

  uint32_t seq = seg.seq;
  uint32_t ack = seg.ack;
  uint32_t end = segment_end(seg);
  uint32_t win = seg.window;
  uint32_t sack = (receiver.flags & TcpPeer::kSackPerm) != 0 ? tcp_highest_sack(seg, ack) : ack;

  if (sender.max_win == 0) {
    // First segment seen from this side.
    if (has_syn) {
      start_sender(sender, receiver, seg, end, dir);
      if (!has_ack) return {};  // SYN from the reply side: simultaneous open
    } else {
      // Mid-stream: trust what the segment says.
      sender.end = end;
      const uint32_t swin = win << sender.scale;
      sender.max_win = swin == 0 ? 1U : swin;
      sender.max_end = end + sender.max_win;
      if (receiver.max_win == 0) {
        receiver.end = sack;
        receiver.max_end = sack;
      } else if (sack == receiver.end + 1) {
        ++receiver.end;  // answer to a keep-alive
      }
    }
  } else if (has_syn && seq_after(end, sender.end) &&
             (c.state == TcpCtState::SynSent || c.state == TcpCtState::SynRecv)) {
    // A newer SYN (or SYN-ACK) replaces the old one's data.
    start_sender(sender, receiver, seg, end, dir);
    if (dir == CtDir::Reply && !has_ack) return {};
  }

  if (!has_ack) {
    ack = sack = receiver.end;  // no ACK: behave as if it acked everything
  } else if (has_rst && ack == 0) {
    ack = sack = receiver.end;  // RST+ACK with a zero ack from broken stacks
  }

  if (has_rst && seq == 0 && c.state == TcpCtState::SynSent) seq = end = sender.end;  // RST answering a SYN

  // I: data must start at or before what the receiver's window allows.
  if (!seq_before(seq, sender.max_end + 1)) {
    const uint32_t overshoot = end - sender.max_end + 1;
    const bool ack_ok = seq_after(sack, receiver.end - max_ack_window(sender) - 1);
    const bool in_recv_win =
        receiver.max_win != 0 && seq_after(end, sender.end - receiver.max_win - 1);
    if (in_recv_win && ack_ok && overshoot <= receiver.max_win &&
        seq_before(sack, receiver.end + 1)) {
      // A sender that overruns the window a little: remember the data so the
      // peer's ACK of it is in bounds later, and let the segment pass.
      sender.end = end;
      sender.flags |= TcpPeer::kDataUnacked;
      return fail(sender, liberal, WindowCheck::Ignore, TcpReason::IgnoredSeqOvershoot);
    }
    return fail(sender, liberal, WindowCheck::Invalid, TcpReason::SeqOverWindow);
  }
  // III: no ACK of data the receiver has not sent.
  if (!seq_before(sack, receiver.end + 1))
    return fail(sender, liberal, WindowCheck::Invalid, TcpReason::AckOverEnd);
  // II: data must end inside the receiver's window.
  if (receiver.max_win != 0 && !seq_after(end, sender.end - receiver.max_win - 1))
    return fail(sender, liberal, WindowCheck::Ignore, TcpReason::IgnoredSeqBelow);
  // IV: the ACK must not lag too far behind.
  if (!seq_after(sack, receiver.end - max_ack_window(sender) - 1))
    return fail(sender, liberal, WindowCheck::Ignore, TcpReason::IgnoredAckBelow);

  // In window: update the sender.
  if (!has_syn) win <<= sender.scale;
  const uint32_t swin = win + (sack - ack);
  if (sender.max_win < swin) sender.max_win = swin;
  if (seq_after(end, sender.end)) {
    sender.end = end;
    sender.flags |= TcpPeer::kDataUnacked;
  }
  if (has_ack) {
    if ((sender.flags & TcpPeer::kMaxAckSet) == 0) {
      sender.max_ack = ack;
      sender.flags |= TcpPeer::kMaxAckSet;
    } else if (seq_after(ack, sender.max_ack)) {
      sender.max_ack = ack;
    }
  }
  // ... and the receiver.
  if (receiver.max_win != 0 && seq_after(end, sender.max_end))
    receiver.max_win += end - sender.max_end;
  if (seq_after(sack + win, receiver.max_end - 1)) {
    receiver.max_end = sack + win;
    if (win == 0) ++receiver.max_end;
  }
  if (ack == receiver.end) receiver.flags &= static_cast<uint8_t>(~TcpPeer::kDataUnacked);

  // Count identical ACK-class segments in a row (retransmissions).
  if (cls == TcpFlagClass::Ack) tcp_count_retransmission(c, dir, seq, ack, end, seg.window);
  return {};
}

// Forgets one side's stream (the side that answered a SYN we had ignored).
void forget_peer(TcpPeer& p) noexcept {
  p.end = 0;
  p.max_end = 0;
  p.max_win = 0;
  p.max_ack = 0;
  p.scale = 0;
  p.flags &= TcpPeer::kBeLiberal;
}

bool is_closing(TcpCtState s) noexcept {
  return s == TcpCtState::FinWait || s == TcpCtState::LastAck || s == TcpCtState::TimeWait ||
         s == TcpCtState::Close || s == TcpCtState::CloseWait;
}

}  // namespace

const char* tcp_ct_state_name(TcpCtState s) noexcept {
  static constexpr std::array<const char*, kTcpCtStateCount> kNames{
      "NONE",       "SYN_SENT",  "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
      "CLOSE_WAIT", "LAST_ACK",  "TIME_WAIT", "CLOSE",      "SYN_SENT2"};
  const auto i = static_cast<std::size_t>(s);
  return i < kNames.size() ? kNames[i] : "?";
}

bool tcp_flags_valid(uint8_t flags) noexcept {
  const auto v = static_cast<uint8_t>(
      flags & (tcp_flag::kFin | tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kAck | tcp_flag::kUrg));
  return ((kValidFlags >> v) & 1U) != 0;
}

TcpTransition tcp_transition(CtDir dir, TcpFlagClass cls, TcpCtState from) noexcept {
  const auto c = static_cast<std::size_t>(cls);
  const auto s = static_cast<std::size_t>(from);
  if (c >= kTcpFlagClassCount || s >= kTcpCtStateCount) return {};
  const uint8_t cell = kTable[dir_index(dir)][c][s];
  if (cell == kIv) return {TcpStep::Invalid, TcpCtState::None};
  if (cell == kIg) return {TcpStep::Ignore, TcpCtState::None};
  return {TcpStep::Next, static_cast<TcpCtState>(cell)};
}

uint32_t TcpTimeouts::of(TcpCtState s) const noexcept {
  switch (s) {
    case TcpCtState::SynSent: return syn_sent;
    case TcpCtState::SynRecv: return syn_recv;
    case TcpCtState::Established: return established;
    case TcpCtState::FinWait: return fin_wait;
    case TcpCtState::CloseWait: return close_wait;
    case TcpCtState::LastAck: return last_ack;
    case TcpCtState::TimeWait: return time_wait;
    case TcpCtState::Close: return close;
    case TcpCtState::SynSent2: return syn_sent2;
    case TcpCtState::None: break;
  }
  return 0;
}


bool tcp_open(TcpConn& conn, const TcpSegment& seg, const TcpSettings& settings) noexcept {
  const TcpTransition t =
      tcp_transition(CtDir::Original, tcp_flag_class(seg.flags), TcpCtState::None);
  if (t.step != TcpStep::Next) return false;
  const bool syn = t.next == TcpCtState::SynSent;
  if (!syn && !settings.loose) return false;
  conn = TcpConn{};
  TcpPeer& first = conn.peer[0];
  first.end = segment_end(seg);
  first.max_win = seg.window == 0 ? 1U : seg.window;
  if (syn) {
    first.max_end = first.end;
    read_syn_options(seg, first);
  } else {
    // Picked up mid-stream: the history is lost, so assume SACK and never
    // fail a window check on this connection.
    first.max_end = first.end + first.max_win;
    first.flags = TcpPeer::kSackPerm | TcpPeer::kBeLiberal;
    conn.peer[1].flags = TcpPeer::kSackPerm | TcpPeer::kBeLiberal;
  }
  conn.last_class = TcpFlagClass::None;
  return true;
}

namespace {

/// tcp_track's first phase: the state table's step and its special cases,
/// decided before any window check (the switch on the new state in the
/// kernel's nf_conntrack_tcp_packet).
struct TcpPlan {
  std::optional<TcpUpdate> done;  // the segment is decided already
  TcpCtState from = TcpCtState::None;
  TcpCtState to = TcpCtState::None;
  bool ignore = false;       // the table ignores the segment (see ignored_segment)
  bool skip_window = false;  // no window check (a RST the kernel lets through unchecked)
};

TcpPlan plan_step(TcpConn& c, CtDir dir, TcpFlagClass cls, const TcpSegment& seg, bool seen_reply, bool assured,
                  const TcpSettings& settings) noexcept {
  const unsigned d = dir_index(dir);
  const unsigned o = dir_index(opposite(dir));
  const TcpCtState stored = c.state;
  const TcpCtState from = stored;
  const TcpTransition t = tcp_transition(dir, cls, from);
  TcpPlan p;
  p.from = from;
  p.to = t.next;
  TcpCtState& to = p.to;
  bool& skip_window = p.skip_window;
  auto decide = [&p](TcpVerdict v, TcpReason r) {
    p.done = TcpUpdate{v, r};
    return p;
  };
  p.ignore = t.step == TcpStep::Ignore;
  if (t.step == TcpStep::Invalid) return decide(TcpVerdict::Invalid, TcpReason::StateTable);
  if (t.step == TcpStep::Next) {
    switch (to) {
      case TcpCtState::SynSent:
        if (from < TcpCtState::TimeWait) break;
        // A SYN on a closed connection (TIME_WAIT/CLOSE) reopens it if it
        // was closed by a FIN, or by a RST from this same side; otherwise
        // it is ignored like any out-of-sync SYN.
        if ((((c.peer[d].flags | c.peer[o].flags) & TcpPeer::kCloseInit) != 0) ||
            (c.last_dir == dir && c.last_class == TcpFlagClass::Rst))
          return decide(TcpVerdict::Reopen, TcpReason::None);
        p.ignore = true;
        break;
      case TcpCtState::TimeWait:
        // An ACK in LAST_ACK that answers a SYN we let through is the
        // receiver's RFC 5961 challenge ACK, not the last ACK.
        if (from == TcpCtState::LastAck && cls == TcpFlagClass::Ack && c.last_dir != dir &&
            c.last_class == TcpFlagClass::Syn &&
            (c.last_flags & TcpConn::kLastChallengeAck) != 0) {
          c.last_flags &= static_cast<uint8_t>(~TcpConn::kLastChallengeAck);
          return decide(TcpVerdict::Ignore, TcpReason::IgnoredChallengeAck);
        }
        break;
      case TcpCtState::SynSent2:
        c.last_flags |= TcpConn::kLastSimultaneousOpen;
        break;
      case TcpCtState::SynRecv:
        if (dir == CtDir::Reply && cls == TcpFlagClass::Ack &&
            (c.last_flags & TcpConn::kLastSimultaneousOpen) != 0)
          to = TcpCtState::Established;
        break;
      case TcpCtState::Close: {
        if (cls != TcpFlagClass::Rst) break;
        if (is_closing(stored)) {
          skip_window = true;  // the tuple may already be reused: no checks
          break;
        }
        const uint32_t seq = seg.seq;
        bool decided = false;
        if ((c.peer[o].flags & TcpPeer::kMaxAckSet) != 0 && c.last_class != TcpFlagClass::Syn) {
          const bool established = stored == TcpCtState::Established && assured;
          if (seq == 0 && !established) {
            decided = true;  // answers a SYN we let through
          } else if (seq_before(seq, c.peer[o].max_ack) && !settings.ignore_invalid_rst) {
            return decide(TcpVerdict::Invalid, TcpReason::InvalidRst);
          } else if (!established || seq == c.peer[o].max_ack) {
            decided = true;
          } else if (c.last_class == TcpFlagClass::Ack && c.last_dir == dir &&
                     seq == c.last_end) {
            decided = true;  // RST right after this side's last data
          } else {
            to = from;  // not exact: stay, a challenge ACK may follow
          }
        }
        if (decided) break;
        if (((seen_reply && c.last_class == TcpFlagClass::Syn) ||
             (!assured && c.last_class == TcpFlagClass::Ack)) &&
            seg.ack == c.last_end) {
          skip_window = true;  // RST answering a SYN/ACK we let through
        } else if (from == TcpCtState::SynSent && c.last_class == TcpFlagClass::Ack &&
                   c.last_dir == CtDir::Reply && seq == c.last_ack) {
          skip_window = true;  // RST answering a challenge ACK we let through
        }
        break;
      }
      default:
        break;
    }
  }

  return p;
}

/// A segment the state table ignores. A SYN-ACK that answers a SYN we
/// ignored means client and server are in sync and we were not: the plan
/// restarts from that SYN (nullopt: go on). Anything else is remembered, so
/// that such an answer can be recognised, and ignored.
std::optional<TcpUpdate> ignored_segment(TcpConn& c, CtDir dir, TcpFlagClass cls, const TcpSegment& seg,
                                         TcpPlan& p) noexcept {
  const unsigned d = dir_index(dir);
  TcpCtState& from = p.from;
  TcpCtState& to = p.to;
  if (cls == TcpFlagClass::SynAck && c.last_class == TcpFlagClass::Syn && c.last_dir != dir &&
      seg.ack == c.last_end) {
    // This SYN-ACK answers a SYN we ignored: client and server are in
    // sync and we were not. Restart from that SYN's data.
    from = TcpCtState::SynSent;
    to = TcpCtState::SynRecv;
    TcpPeer& opener = c.peer[dir_index(c.last_dir)];
    opener.end = c.last_end;
    opener.max_end = c.last_end;
    opener.max_win = c.last_win == 0 ? 1U : c.last_win;
    opener.scale = c.last_wscale;
    c.last_flags &= static_cast<uint8_t>(~TcpConn::kLastChallengeAck);
    opener.flags = c.last_flags;
    forget_peer(c.peer[d]);
  } else {
    c.last_class = cls;
    c.last_dir = dir;
    c.last_seq = seg.seq;
    c.last_end = segment_end(seg);
    c.last_win = seg.window;
    if (cls == TcpFlagClass::Syn && dir == CtDir::Original) {
      // Remember the SYN's options in case the server answers it.
      TcpPeer opts{};
      read_syn_options(seg, opts);
      c.last_flags = 0;
      c.last_wscale = 0;
      if ((opts.flags & TcpPeer::kWindowScale) != 0) {
        c.last_flags |= TcpPeer::kWindowScale;
        c.last_wscale = opts.scale;
      }
      if ((opts.flags & TcpPeer::kSackPerm) != 0) c.last_flags |= TcpPeer::kSackPerm;
      if (from == TcpCtState::LastAck) c.last_flags |= TcpConn::kLastChallengeAck;
    }
    if (from == TcpCtState::SynSent && cls == TcpFlagClass::Ack && dir == CtDir::Reply)
      c.last_ack = seg.ack;  // maybe a challenge ACK to our SYN
    return TcpUpdate{TcpVerdict::Ignore, TcpReason::IgnoredByTable};
  }
  return std::nullopt;
}

/// The segment is in window (or exempt from the check): take the step,
/// and say how long the entry lives now and what it learns.
TcpUpdate take_step(TcpConn& c, CtDir dir, TcpFlagClass cls, TcpCtState from, TcpCtState to, bool seen_reply,
                    bool assured, const TcpSettings& settings) noexcept {
  const unsigned d = dir_index(dir);
  c.last_class = cls;
  c.last_dir = dir;
  c.state = to;
  if (from != to && to == TcpCtState::FinWait) c.peer[d].flags |= TcpPeer::kCloseInit;

  const TcpTimeouts& tt = settings.timeouts;
  uint32_t timeout = tt.of(to);
  if (c.retrans >= settings.max_retrans && timeout > tt.max_retrans) {
    timeout = tt.max_retrans;
  } else if (cls == TcpFlagClass::Rst) {
    timeout = tt.close;
  } else if (((c.peer[0].flags | c.peer[1].flags) & TcpPeer::kDataUnacked) != 0 &&
             timeout > tt.unacknowledged) {
    timeout = tt.unacknowledged;
  } else if (c.last_win == 0 && timeout > tt.max_retrans) {
    timeout = tt.max_retrans;
  }

  TcpUpdate u{TcpVerdict::Accept, TcpReason::None};
  if (!seen_reply) {
    if (cls == TcpFlagClass::Rst) {
      u.kill = true;  // the only answer was a RST: the connection never existed
      return u;
    }
    if (cls == TcpFlagClass::Syn && from == TcpCtState::SynSent)
      return u;  // a retransmitted SYN does not extend the entry's life
    if (to == TcpCtState::Established && timeout > tt.unacknowledged)
      timeout = tt.unacknowledged;  // picked up, no reply yet
  } else if (!assured && (from == TcpCtState::SynRecv || from == TcpCtState::Established) &&
             to == TcpCtState::Established) {
    u.set_assured = true;
  }
  u.refresh = true;
  u.timeout_s = timeout;
  return u;
}

}  // namespace

TcpUpdate tcp_track(TcpConn& c, CtDir dir, const TcpSegment& seg, bool seen_reply, bool assured,
                    const TcpSettings& settings) noexcept {
  const TcpFlagClass cls = tcp_flag_class(seg.flags);
  TcpPlan p = plan_step(c, dir, cls, seg, seen_reply, assured, settings);
  if (p.done) return *p.done;
  if (p.ignore) {
    if (auto u = ignored_segment(c, dir, cls, seg, p)) return *u;
  }
  if (!p.skip_window) {
    const WindowResult w = check_window(c, dir, cls, seg, settings.be_liberal);
    if (w.check == WindowCheck::Ignore) return {TcpVerdict::Ignore, w.reason};
    if (w.check == WindowCheck::Invalid) {
      TcpUpdate u{TcpVerdict::Invalid, w.reason};
      // Out-of-window FIN/RST on an ASSURED entry: if the other side's last
      // segment was an (out-of-window) FIN/RST too, the connection is
      // probably dead; otherwise remember this one.
      if (assured && (cls == TcpFlagClass::Rst || cls == TcpFlagClass::Fin)) {
        if (c.last_dir != dir &&
            (c.last_class == TcpFlagClass::Fin || c.last_class == TcpFlagClass::Rst)) {
          u.shrink_timeout = true;
        } else {
          c.last_class = cls;
          c.last_dir = dir;
        }
      }
      return u;
    }
  }

  return take_step(c, dir, cls, p.from, p.to, seen_reply, assured, settings);
}

}  // namespace nfb
