#include "netfilter/bridge.h"

#include <bit>

namespace nfb {

BridgeStations::BridgeStations(size_t stations) {
  const size_t slots = std::bit_ceil(stations < 8 ? size_t{16} : stations * 2);
  slots_ = ZeroedArray<Slot>(slots);
  mask_ = slots - 1;
  shift_ = 64U - static_cast<unsigned>(std::countr_zero(slots));
  limit_ = slots / 2;
}

void BridgeStations::learn_slow(Slot* s, uint64_t key, uint32_t addr, uint16_t port) noexcept {
  if (s->key == 0) {
    if (used_ >= limit_) {
      ++full_;
      return;
    }
    s->key = key;
    ++used_;
  }
  s->addr = addr;
  s->port = port;  // new, or a station that moved
}

void BridgeStations::learn_addr(uint16_t bridge, uint32_t addr, uint16_t port) noexcept {
  const uint64_t key = ip_key(bridge, addr);
  Slot* s = probe(key);
  learn_slow(s, key, 0, port);
}

uint32_t BridgeStations::find(uint64_t key) const noexcept {
  if (slots_.empty()) return kUnknown;
  const Slot& s = slots_[slot_of(key)];
  return s.key == key ? s.port : kUnknown;
}

}  // namespace nfb
