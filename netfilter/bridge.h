// What the host's bridges have learned about their stations: which port a
// MAC address was last seen on (the bridge's forwarding database), and which
// port an IPv4 address was last seen on (standing in for the neighbour table
// plus the FDB, which is what a bridged DNAT's way out comes down to).
//
// The pipeline learns from every frame that arrives on a bridge, before its
// hooks, as the bridge learns in br_handle_frame_finish; it asks the table
// whether a frame is for another station (then it is bridged, see
// netfilter/host.h "Bridges") and which port a bridged packet leaves by
// (-m physdev --physdev-out).
//
// Two-phase: the constructor allocates a fixed table (zero pages: untouched
// slots cost nothing); learn() and the lookups never allocate or throw. A
// full table stops learning (full() counts the stations it turned away):
// frames to those stations are then taken as addressed to the host.
// Entries never age (the kernel forgets a station after 300 s idle, and then
// floods to it; the model keeps sending it to the port it knows).
//
// Layout: open addressing with linear probing over 16-byte slots, at most
// half full; a lookup is a multiply, a shift and usually one cache line.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/zeroed_array.h"
#include "rules/module.h"

namespace nfb {

class BridgeStations {
 public:
  BridgeStations() = default;
  /// Room for `stations` MACs and addresses together (rounded up).
  explicit BridgeStations(size_t stations);

  /// A frame from source MAC `mac` (the 48-bit value, mac48()) and source
  /// address `addr` came in by `port` (kNoIface: captured on the bridge
  /// itself) of `bridge`. The common case, a station seen again on its port
  /// with its address, is one probe.
  /// `addr` 0: a frame without an IPv4 source (IPv6, ARP probes): the MAC
  /// alone.
  void learn(uint16_t bridge, uint64_t mac, uint32_t addr, uint16_t port) noexcept {
    if (slots_.empty()) return;
    const uint64_t key = kUsed | uint64_t{bridge} << 48 | mac;
    Slot* s = probe(key);
    if (s->key == key && s->port == port && (s->addr == addr || addr == 0)) return;
    learn_slow(s, key, addr != 0 ? addr : s->addr, port);
    if (addr != 0) learn_addr(bridge, addr, port);
  }

  /// The port the MAC was last seen on: kNoIface for a station seen without
  /// a port; kUnknown when the bridge never saw it.
  uint32_t port_of_mac(uint16_t bridge, uint64_t mac) const noexcept { return find(kUsed | uint64_t{bridge} << 48 | mac); }
  uint32_t port_of_ip(uint16_t bridge, uint32_t addr) const noexcept { return find(ip_key(bridge, addr)); }
  static constexpr uint32_t kUnknown = 0x10000;

  /// The 48-bit value of 6 MAC bytes (wire order, first byte lowest).
  static uint64_t mac48(const uint8_t* m) noexcept {
    return uint64_t{m[0]} | uint64_t{m[1]} << 8 | uint64_t{m[2]} << 16 | uint64_t{m[3]} << 24 |
           uint64_t{m[4]} << 32 | uint64_t{m[5]} << 40;
  }

  /// Stations learned (MACs and addresses), and those a full table turned away.
  size_t size() const noexcept { return used_; }
  uint64_t full() const noexcept { return full_; }

 private:
  struct Slot {
    uint64_t key;   // 0: empty
    uint32_t addr;  // MAC entries: the address last seen from it
    uint16_t port;
    uint16_t pad;
  };
  static constexpr uint64_t kUsed = 1ULL << 63;
  static constexpr uint64_t kIp = 1ULL << 62;
  static uint64_t ip_key(uint16_t bridge, uint32_t addr) noexcept {
    return kUsed | kIp | uint64_t{bridge} << 48 | addr;
  }
  // The index of the slot holding `key`, or of the empty one where it would
  // go (the table is never more than half full). slots_ must not be empty.
  size_t slot_of(uint64_t key) const noexcept {
    size_t i = static_cast<size_t>((key * 0x9e3779b97f4a7c15ULL) >> shift_);
    while (slots_[i].key != key && slots_[i].key != 0) i = (i + 1) & mask_;
    return i;
  }
  Slot* probe(uint64_t key) noexcept { return &slots_[slot_of(key)]; }
  void learn_slow(Slot* s, uint64_t key, uint32_t addr, uint16_t port) noexcept;
  void learn_addr(uint16_t bridge, uint32_t addr, uint16_t port) noexcept;
  uint32_t find(uint64_t key) const noexcept;

  ZeroedArray<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t used_ = 0;
  size_t limit_ = 0;
  uint64_t full_ = 0;
};

}  // namespace nfb
