// TCP connection tracking, decided the way Linux's conntrack decides it.
//
// Idea: conntrack sits in the middle of a TCP connection and guesses both
// ends' state from the segments it sees. Three things decide what happens to
// a segment (facts verified on Linux 6.18; see netfilter/conntrack.md):
//
//  1. A fixed transition table, indexed by direction (original/reply), the
//     segment's flag class (SYN, SYN-ACK, FIN, ACK, RST, none; RST wins, then
//     SYN, then FIN, then ACK) and the entry's current state. A cell names the
//     next state, or IGNORE (let the segment through untouched: client and
//     server may be in sync while we are not), or INVALID.
//  2. A handful of special cases layered on the table: reopening a closed
//     connection with a new SYN, resynchronising on a SYN-ACK that answers an
//     ignored SYN, simultaneous open, RFC 5961 challenge ACKs, and the
//     sequence checks on RST.
//  3. Window tracking ("Real Stateful TCP Packet Filtering in IP Filter",
//     van Rooij): per direction the highest sequence sent (end), the highest
//     sequence the peer's window allows (max_end), the largest window seen
//     (max_win) and the highest ACK sent (max_ack). A segment passes when its
//     data intersects the receiver's window and its ACK does not acknowledge
//     data never sent. Failures are either INVALID (beyond the window, ACK of
//     unseen data) or IGNORE (old retransmissions, overly delayed ACKs).
//     Connections picked up mid-stream are tracked liberally: no window check
//     can fail for them.
//
// A segment that fails a check leaves the entry's state as it was. The
// caller (ConntrackTable) turns the verdicts into ctstates: Invalid -> the
// packet is INVALID; Accept and Ignore -> the packet keeps the entry and its
// usual NEW/ESTABLISHED state; Reopen -> the entry is deleted and the segment
// looked up again (it then opens a new entry).
//
// Cost: a table lookup, a dozen 32-bit compares, and a TCP option walk for
// SYNs (and for SACK blocks when the receiver permitted SACK). No allocation,
// no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "packet/byte_order.h"
#include "packet/packet_key.h"

namespace nfb {

/// Direction of a packet relative to the entry: Original is the direction of
/// the packet that created it.
enum class CtDir : uint8_t { Original = 0, Reply = 1 };

constexpr CtDir opposite(CtDir d) noexcept {
  return d == CtDir::Original ? CtDir::Reply : CtDir::Original;
}
constexpr unsigned dir_index(CtDir d) noexcept { return static_cast<unsigned>(d); }

/// Conntrack's TCP states, numbered as the kernel numbers them (the value
/// conntrack -L and /proc/net/nf_conntrack print by name).
enum class TcpCtState : uint8_t {
  None,
  SynSent,
  SynRecv,
  Established,
  FinWait,
  CloseWait,
  LastAck,
  TimeWait,
  Close,
  SynSent2,
};
inline constexpr std::size_t kTcpCtStateCount = 10;

/// "NONE", "SYN_SENT", ..., "SYN_SENT2"; "?" for an out-of-range value.
const char* tcp_ct_state_name(TcpCtState s) noexcept;

/// The flag class a segment is looked up under: RST if RST is set, else
/// SYN-ACK or SYN if SYN is set, else FIN, else ACK, else None.
enum class TcpFlagClass : uint8_t { Syn, SynAck, Fin, Ack, Rst, None };
inline constexpr std::size_t kTcpFlagClassCount = 6;

constexpr TcpFlagClass tcp_flag_class(uint8_t flags) noexcept {
  if ((flags & tcp_flag::kRst) != 0) return TcpFlagClass::Rst;
  if ((flags & tcp_flag::kSyn) != 0)
    return (flags & tcp_flag::kAck) != 0 ? TcpFlagClass::SynAck : TcpFlagClass::Syn;
  if ((flags & tcp_flag::kFin) != 0) return TcpFlagClass::Fin;
  if ((flags & tcp_flag::kAck) != 0) return TcpFlagClass::Ack;
  return TcpFlagClass::None;
}

/// Whether conntrack accepts this combination of flags at all. PSH, ECE and
/// CWR never matter; of FIN/SYN/RST/ACK/URG only these pass: SYN, SYN+URG,
/// SYN+ACK, RST, RST+ACK, FIN+ACK, FIN+ACK+URG, ACK, ACK+URG. Everything else
/// (SYN+FIN, SYN+RST, a FIN without ACK, no flags, ...) is INVALID, with or
/// without an entry.
bool tcp_flags_valid(uint8_t flags) noexcept;

/// One cell of the transition table.
enum class TcpStep : uint8_t {
  Next,     // go to TcpTransition::next
  Ignore,   // pass the segment, change nothing
  Invalid,  // the segment is INVALID
};
struct TcpTransition {
  TcpStep step = TcpStep::Invalid;
  TcpCtState next = TcpCtState::None;
};
/// The kernel's table: what a segment of class `cls` in direction `dir` does
/// to an entry in state `from`.
TcpTransition tcp_transition(CtDir dir, TcpFlagClass cls, TcpCtState from) noexcept;

/// Timeouts per state, in seconds (net.netfilter.nf_conntrack_tcp_timeout_*).
struct TcpTimeouts {
  uint32_t syn_sent = 120;
  uint32_t syn_recv = 60;
  uint32_t established = 432000;
  uint32_t fin_wait = 120;
  uint32_t close_wait = 60;
  uint32_t last_ack = 30;
  uint32_t time_wait = 120;
  uint32_t close = 10;
  uint32_t syn_sent2 = 120;
  uint32_t max_retrans = 300;     // after tcp_max_retrans retransmissions, or a zero window
  uint32_t unacknowledged = 300;  // while data is unacknowledged
  /// The timeout of a state (None has 0).
  uint32_t of(TcpCtState s) const noexcept;
};

/// The sysctls that change TCP tracking, with their defaults.
struct TcpSettings {
  bool loose = true;                // nf_conntrack_tcp_loose: pick up mid-stream ACKs
  bool be_liberal = false;          // nf_conntrack_tcp_be_liberal: no window check fails
  bool ignore_invalid_rst = false;  // nf_conntrack_tcp_ignore_invalid_rst
  uint8_t max_retrans = 3;          // nf_conntrack_tcp_max_retrans
  TcpTimeouts timeouts;
};

/// What conntrack reads from a TCP segment. `payload_len` is the IP payload
/// after the TCP header (IP total length minus both headers), which is what
/// sequence arithmetic uses; options point into the frame.
struct TcpSegment {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;  // as sent, unscaled
  uint8_t flags = 0;    // tcp_flag bits
  uint8_t header_len = 20;  // data offset * 4
  uint32_t payload_len = 0;
  const uint8_t* options = nullptr;  // header_len - 20 bytes
};

/// Reads the segment of a parsed TCP packet from its frame. False when the
/// key is not TCP with kTcpFlags, or when the header (data offset included)
/// does not fit in the IP packet or the frame: conntrack calls such a packet
/// truncated and INVALID.
inline bool read_tcp_segment(const uint8_t* frame, uint32_t len, const PacketKey& key,
                             TcpSegment& out) noexcept {
  if (key.proto != kProtoTcp || !key.has(key_flag::kTcpFlags) || frame == nullptr) return false;
  const uint32_t l3_end = static_cast<uint32_t>(key.l3_off) + key.l3_len;
  const uint32_t l4 = key.l4_off;
  if (l3_end > len || l4 + 20 > l3_end) return false;
  const uint8_t* h = frame + l4;
  const uint32_t header_len = static_cast<uint32_t>(h[12] >> 4) * 4U;
  if (header_len < 20 || l4 + header_len > l3_end) return false;
  out.seq = load_be32(h + 4);
  out.ack = load_be32(h + 8);
  out.flags = h[13];
  out.window = load_be16(h + 14);
  out.header_len = static_cast<uint8_t>(header_len);
  out.payload_len = l3_end - l4 - header_len;
  out.options = h + 20;
  return true;
}

/// read_tcp_segment() for a key parse_frame() gave status Ok on `frame`
/// (TCP, not a later fragment): the parser has checked that the header and
/// its options fit, so nothing is checked again.
inline TcpSegment tcp_segment_of(const uint8_t* frame, const PacketKey& key) noexcept {
  const uint8_t* h = frame + key.l4_off;
  TcpSegment seg;
  seg.seq = load_be32(h + 4);
  seg.ack = load_be32(h + 8);
  seg.window = load_be16(h + 14);
  seg.flags = key.tcp_flags;
  seg.header_len = static_cast<uint8_t>(key.payload_off - key.l4_off);
  seg.payload_len = static_cast<uint32_t>(key.l3_off) + key.l3_len - key.payload_off;
  seg.options = h + 20;
  return seg;
}

/// Per-direction tracking data (the sender's view of its own stream).
struct TcpPeer {
  uint32_t end = 0;      // highest seq + len sent
  uint32_t max_end = 0;  // highest seq the peer's advertised window allows
  uint32_t max_win = 0;  // largest window advertised (scaled); 0 = not yet seen
  uint32_t max_ack = 0;  // highest ack sent (valid with kMaxAckSet)
  uint8_t scale = 0;     // window scale from the SYN's option
  uint8_t flags = 0;     // TcpPeer::k* bits
  // flags bits (numbered as the kernel's IP_CT_TCP_FLAG_*).
  static constexpr uint8_t kWindowScale = 0x01;
  static constexpr uint8_t kSackPerm = 0x02;
  static constexpr uint8_t kCloseInit = 0x04;  // this side sent the first FIN
  static constexpr uint8_t kBeLiberal = 0x08;  // picked up mid-stream: never fail a window check
  static constexpr uint8_t kDataUnacked = 0x10;
  static constexpr uint8_t kMaxAckSet = 0x20;
};

/// The TCP part of a conntrack entry.
struct TcpConn {
  TcpPeer peer[2];  // indexed by dir_index()
  TcpCtState state = TcpCtState::None;
  TcpFlagClass last_class = TcpFlagClass::None;  // of the last segment that changed something
  CtDir last_dir = CtDir::Original;
  uint8_t retrans = 0;      // identical ACK-class segments in a row
  uint8_t last_wscale = 0;  // window scale of the last ignored SYN
  uint8_t last_flags = 0;   // kLast* bits plus TcpPeer flags of the last ignored SYN
  uint16_t last_win = 0;    // unscaled window of the last ACK/ignored segment
  uint32_t last_seq = 0;
  uint32_t last_ack = 0;
  uint32_t last_end = 0;
  // last_flags bits beyond the TcpPeer ones (numbered as the kernel's).
  static constexpr uint8_t kLastChallengeAck = 0x40;
  static constexpr uint8_t kLastSimultaneousOpen = 0x80;
};

/// An ACK-class segment identical to the last one in the same direction
/// (sequence, acknowledgement, end, window) counts as a retransmission
/// (8 bits, wrapping, as in the kernel); any other one starts the count anew.
/// Shared by tcp_track() and tcp_track_fast().
inline void tcp_count_retransmission(TcpConn& c, CtDir dir, uint32_t seq, uint32_t ack, uint32_t end,
                                     uint16_t window) noexcept {
  if (c.last_dir == dir && c.last_seq == seq && c.last_ack == ack && c.last_end == end && c.last_win == window) {
    ++c.retrans;
  } else {
    c.last_dir = dir;
    c.last_seq = seq;
    c.last_ack = ack;
    c.last_end = end;
    c.last_win = window;
    c.retrans = 0;
  }
}

/// Why a segment was refused or ignored (counted per reason by the table).
enum class TcpReason : uint8_t {
  None,
  Truncated,          // header does not fit
  BadFlags,           // tcp_flags_valid() is false
  CannotOpen,         // no entry and the segment is not a SYN (or ACK with loose pick-up)
  StateTable,         // the transition table says INVALID
  InvalidRst,         // RST below the peer's highest ACK
  SeqOverWindow,      // data beyond the receiver's window
  AckOverEnd,         // ACK of data not sent yet
  IgnoredByTable,     // Ignore: the table says IGNORE
  IgnoredSeqOvershoot,  // Ignore: a few bytes beyond the window (accepted but marked)
  IgnoredSeqBelow,      // Ignore: already acknowledged data retransmitted
  IgnoredAckBelow,      // Ignore: overly delayed ACK
  IgnoredChallengeAck,  // Ignore: RFC 5961 challenge ACK in LAST_ACK
};

enum class TcpVerdict : uint8_t {
  Accept,   // state updated; refresh the timeout if `refresh`
  Ignore,   // the packet passes (keeps the entry), nothing changed
  Invalid,  // the packet is INVALID, nothing changed (see shrink_timeout)
  Reopen,   // delete the entry and look the segment up again
};

/// What one segment did. The table applies it to the entry.
struct TcpUpdate {
  TcpVerdict verdict = TcpVerdict::Invalid;
  TcpReason reason = TcpReason::None;
  bool refresh = false;      // set the timeout to timeout_s from now
  uint32_t timeout_s = 0;
  bool kill = false;         // delete the entry once the packet is done (RST before any reply)
  bool set_assured = false;  // the connection becomes ASSURED
  /// An out-of-window FIN/RST answered an out-of-window FIN/RST of the other
  /// side on an ASSURED entry: if at least 120 s remain and more than
  /// timeouts.unacknowledged, cut the remaining time to unacknowledged.
  bool shrink_timeout = false;
};

/// Sets up a new entry's TCP state from the segment that creates it. False
/// (the packet is INVALID, reason CannotOpen) unless it is a SYN, or an ACK
/// with settings.loose; a picked-up connection is tracked liberally.
bool tcp_open(TcpConn& conn, const TcpSegment& seg, const TcpSettings& settings) noexcept;

/// Tracks one segment on an entry (a new one fresh from tcp_open(), or an
/// existing one). `seen_reply` and `assured` are the entry's status before
/// this packet. Does not check flags or checksums: the caller has done that.
TcpUpdate tcp_track(TcpConn& conn, CtDir dir, const TcpSegment& seg, bool seen_reply, bool assured,
                    const TcpSettings& settings) noexcept;

/// The highest right edge of the segment's first SACK option's blocks, if
/// beyond `sack`; `sack` otherwise (what the window check uses as the ACK
/// when the receiver permitted SACK).
uint32_t tcp_highest_sack(const TcpSegment& seg, uint32_t sack) noexcept;

/// tcp_track() for the common segment, or nothing. The common segment is an
/// ACK-class segment (ACK set; SYN, FIN and RST clear) on an ESTABLISHED
/// connection whose sender has been seen before, that passes every window
/// check. Then tcp_track_fast() changes `c` exactly as tcp_track() would,
/// sets `u` to what tcp_track() would return, and returns true. In every other
/// case -- another flag class or state, a first segment from this side, a
/// window check that fails (liberal tracking or not: tcp_track() decides
/// those) -- it returns false and has changed nothing; the caller then runs
/// tcp_track(). Flags must be valid (tcp_flags_valid(), which every ACK-class
/// combination is). Cost: a dozen compares and the updates, plus an option
/// walk when the receiver permitted SACK and the segment has options.
/// tests/conntrack_tcp_test.cpp checks it against tcp_track() on random
/// segment streams.
inline bool tcp_track_fast(TcpConn& c, CtDir dir, const TcpSegment& seg, bool seen_reply, bool assured,
                           const TcpSettings& settings, TcpUpdate& u) noexcept {
  constexpr uint8_t kNotAck = tcp_flag::kSyn | tcp_flag::kFin | tcp_flag::kRst;
  if ((seg.flags & kNotAck) != 0 || (seg.flags & tcp_flag::kAck) == 0) return false;
  if (c.state != TcpCtState::Established) return false;
  TcpPeer& sender = c.peer[dir_index(dir)];
  TcpPeer& receiver = c.peer[dir_index(opposite(dir))];
  if (sender.max_win == 0) return false;  // first segment from this side: tcp_track() picks it up
  const auto before = [](uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; };
  const uint32_t seq = seg.seq;
  const uint32_t ack = seg.ack;
  const uint32_t end = seq + seg.payload_len;
  const uint32_t sack =
      (receiver.flags & TcpPeer::kSackPerm) != 0 && seg.header_len > 20 ? tcp_highest_sack(seg, ack) : ack;
  const uint32_t ack_window = sender.max_win > 66000U ? sender.max_win : 66000U;
  // The window checks I, III, II, IV of check_window(), in its order; any
  // failure is tcp_track()'s to decide.
  if (!before(seq, sender.max_end + 1)) return false;
  if (!before(sack, receiver.end + 1)) return false;
  if (receiver.max_win != 0 && !before(sender.end - receiver.max_win - 1, end)) return false;
  if (!before(receiver.end - ack_window - 1, sack)) return false;

  // In window: the sender, then the receiver.
  const uint32_t win = static_cast<uint32_t>(seg.window) << sender.scale;
  const uint32_t swin = win + (sack - ack);
  if (sender.max_win < swin) sender.max_win = swin;
  if (before(sender.end, end)) {
    sender.end = end;
    sender.flags |= TcpPeer::kDataUnacked;
  }
  if ((sender.flags & TcpPeer::kMaxAckSet) == 0) {
    sender.max_ack = ack;
    sender.flags |= TcpPeer::kMaxAckSet;
  } else if (before(sender.max_ack, ack)) {
    sender.max_ack = ack;
  }
  if (receiver.max_win != 0 && before(sender.max_end, end)) receiver.max_win += end - sender.max_end;
  if (before(receiver.max_end - 1, sack + win)) {
    receiver.max_end = sack + win;
    if (win == 0) ++receiver.max_end;
  }
  if (ack == receiver.end) receiver.flags &= static_cast<uint8_t>(~TcpPeer::kDataUnacked);
  tcp_count_retransmission(c, dir, seq, ack, end, seg.window);
  c.last_class = TcpFlagClass::Ack;
  c.last_dir = dir;

  const TcpTimeouts& tt = settings.timeouts;
  uint32_t timeout = tt.established;
  if (c.retrans >= settings.max_retrans && timeout > tt.max_retrans) {
    timeout = tt.max_retrans;
  } else if (((c.peer[0].flags | c.peer[1].flags) & TcpPeer::kDataUnacked) != 0 &&
             timeout > tt.unacknowledged) {
    timeout = tt.unacknowledged;
  } else if (c.last_win == 0 && timeout > tt.max_retrans) {
    timeout = tt.max_retrans;
  }
  u = TcpUpdate{TcpVerdict::Accept, TcpReason::None};
  if (!seen_reply) {
    if (timeout > tt.unacknowledged) timeout = tt.unacknowledged;  // picked up, no reply yet
  } else if (!assured) {
    u.set_assured = true;
  }
  u.refresh = true;
  u.timeout_s = timeout;
  return true;
}

}  // namespace nfb
