// SCTP connection tracking, decided the way Linux's conntrack decides it
// (nf_conntrack_proto_sctp.c; facts checked on Linux 6.18, see
// netfilter/conntrack.md section 5).
//
// Idea: like TCP, conntrack guesses the association's state from the
// packets it sees, but per CHUNK: every chunk of a packet (an SCTP packet
// bundles several) moves the entry through a fixed table indexed by the
// packet's direction, the chunk type (11 types count; DATA, SACK and any
// other type change nothing) and the current state. The states and what
// moves the entry into them:
//
//   NONE               nothing yet (an entry between creation and its first chunk)
//   CLOSED             an INIT (sic: not COOKIE_WAIT), an ABORT, a SHUTDOWN_COMPLETE
//   COOKIE_WAIT        the INIT_ACK in the reply direction
//   COOKIE_ECHOED      the COOKIE_ECHO in the original direction
//   ESTABLISHED        the COOKIE_ACK in the reply direction (sets ASSURED),
//                      or a HEARTBEAT_ACK answering a HEARTBEAT_SENT entry
//   SHUTDOWN_SENT      a SHUTDOWN in the original direction
//   SHUTDOWN_RECD      a SHUTDOWN in the reply direction
//   SHUTDOWN_ACK_SENT  a SHUTDOWN_ACK after a SHUTDOWN
//   HEARTBEAT_SENT     an entry opened by a HEARTBEAT (a secondary path of a
//                      multi-homed association)
//
// Around the table, the packet is INVALID (and the entry keeps the state it
// reached with the chunks before the failing one -- the kernel updates it
// chunk by chunk) when:
//   - the chunk list is malformed: no chunk at all, a chunk of length 0,
//     INIT / INIT_ACK / SHUTDOWN_COMPLETE not the only chunk, COOKIE_ECHO /
//     COOKIE_ACK not the first one;
//   - it would open an entry but is "out of the blue": it holds an ABORT,
//     SHUTDOWN_COMPLETE or COOKIE_ACK, or a chunk whose cell in the NONE
//     column is NONE (DATA, SACK, any type without a row). The others open
//     one (INIT and most types to CLOSED, SHUTDOWN_ACK to SHUTDOWN_ACK_SENT,
//     HEARTBEAT to HEARTBEAT_SENT), but the tag checks below then refuse
//     all but INIT, SHUTDOWN_ACK, HEARTBEAT, HEARTBEAT_ACK and packets with
//     a zero tag: the new entry expects tag 0 from the original direction;
//   - the verification tag is wrong (RFC 9260 section 8.5): a packet whose
//     chunks are none of INIT, SHUTDOWN_COMPLETE, COOKIE_ECHO, ABORT,
//     SHUTDOWN_ACK, HEARTBEAT, HEARTBEAT_ACK must carry the tag the peer
//     chose (learned from the INIT / INIT_ACK); an INIT must carry 0; ABORT
//     and SHUTDOWN_COMPLETE the sender's own tag, or the peer's when their T
//     bit is set; COOKIE_ECHO the tag of the INIT_ACK; an INIT_ACK's own tag
//     must agree with the INIT's;
//   - the table says so (sIV: the reply direction of an entry in NONE or
//     HEARTBEAT_SENT, except HEARTBEAT / HEARTBEAT_ACK).
// An INIT retransmitted while the entry is CLOSED does not refresh its
// timeout (so a client or a NAT reusing a port cannot keep it alive).
// The CRC32c (when checked) and the 12-byte common header are the caller's
// (ConntrackTable): both come first.
//
// Cost: one pass over the chunk headers to check them, one to track them;
// a packet has a handful of chunks. No allocation, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "netfilter/conntrack_tcp.h"  // CtDir
#include "packet/headers.h"          // SctpHdr, SctpChunkHdr, sctp_chunk_type

namespace nfb {

/// Conntrack's SCTP states, numbered as the kernel numbers them.
enum class SctpCtState : uint8_t {
  None,
  Closed,
  CookieWait,
  CookieEchoed,
  Established,
  ShutdownSent,
  ShutdownRecd,
  ShutdownAckSent,
  HeartbeatSent,
};
inline constexpr std::size_t kSctpCtStateCount = 9;

/// "NONE", "CLOSED", ..., "HEARTBEAT_SENT" (as conntrack -L prints them);
/// "?" out of range.
const char* sctp_ct_state_name(SctpCtState s) noexcept;

/// One cell of the table: the next state, or invalid.
struct SctpTransition {
  bool valid = false;
  SctpCtState next = SctpCtState::None;
};
/// The kernel's table: what a chunk of type `chunk_type` (sctp_chunk_type) in direction `dir`
/// does to an entry in state `from`. Types without a row leave the state as
/// it is (valid).
SctpTransition sctp_transition(CtDir dir, uint8_t chunk_type, SctpCtState from) noexcept;

/// Timeouts per state, in seconds (net.netfilter.nf_conntrack_sctp_timeout_*).
struct SctpTimeouts {
  uint32_t closed = 10;
  uint32_t cookie_wait = 3;
  uint32_t cookie_echoed = 3;
  uint32_t established = 210;
  uint32_t shutdown_sent = 3;
  uint32_t shutdown_recd = 3;
  uint32_t shutdown_ack_sent = 3;
  uint32_t heartbeat_sent = 30;

  /// The timeout of `s` (NONE has CLOSED's, as in the kernel).
  uint32_t of(SctpCtState s) const noexcept;
};

/// The per-entry state (in CtEntry's protocol cache line, in a union with
/// TcpConn: hence no member initialisers; SctpConn{} is all zero, the state
/// of a new entry).
struct SctpConn {
  uint32_t vtag[2];  // the tag packets of each direction must carry (host order)
  SctpCtState state;
  bool init[2];                // an INIT was seen from that direction (collision detection)
  bool heartbeat_vtag_failed;  // a HEARTBEAT came with an unknown tag (path change?)
  CtDir heartbeat_dir;         // ... from this direction
};

/// Why a packet was refused (counted per reason by the table).
enum class SctpReason : uint8_t {
  None,
  BadChunks,   // no chunk, a zero-length chunk, or chunks bundled in a way the RFC forbids
  CannotOpen,  // no entry, and the packet is out of the blue
  BadVtag,     // verification tag check (RFC 9260 8.5, 8.5.1)
  StateTable,  // the table says INVALID
};

enum class SctpVerdict : uint8_t {
  Accept,  // refresh the entry to timeout_s
  Ignore,  // let it through, but leave the timeout as it is (INIT retransmitted in CLOSED)
  Invalid,
};

struct SctpUpdate {
  SctpVerdict verdict = SctpVerdict::Invalid;
  SctpReason reason = SctpReason::None;
  uint32_t timeout_s = 0;     // Accept: the new state's timeout
  bool set_assured = false;   // the entry reached ESTABLISHED from another state (even when a
                              // later chunk then made the packet INVALID)
};

/// Tracks one SCTP packet: `sctp` points at its common header, `n` (>= 12)
/// bytes up to the end of the IP packet. `confirmed` is false for the packet
/// that creates the entry (`c` is then reset first, as the kernel's
/// sctp_new() does). Updates `c` chunk by chunk, like the kernel (an INVALID
/// verdict may leave changes made by earlier chunks).
SctpUpdate sctp_track(SctpConn& c, CtDir dir, const uint8_t* sctp, uint32_t n, bool confirmed,
                      const SctpTimeouts& timeouts) noexcept;

}  // namespace nfb
