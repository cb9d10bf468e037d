#include "rules/matches/physdev.h"

namespace nfb {

// iptables prints is-in before in and is-out before out (libxt_physdev's
// save and print share one order).
void PhysdevMatch::save(SaveLine& l) const {
  l.add("-m physdev");
  const auto opt = [&](uint8_t bit, const char* name, const std::string* arg) {
    if ((given & bit) == 0) return;
    l.inv((invert & bit) != 0).add(name);
    if (arg != nullptr) l.add(*arg);
  };
  opt(kIsIn, "--physdev-is-in", nullptr);
  opt(kIn, "--physdev-in", &in);
  opt(kIsOut, "--physdev-is-out", nullptr);
  opt(kOut, "--physdev-out", &out);
  opt(kBridged, "--physdev-is-bridged", nullptr);
}

void PhysdevMatch::list(ListText& t) const {
  t.add(" PHYSDEV match");
  const auto opt = [&](uint8_t bit, const char* name, const std::string* arg) {
    if ((given & bit) == 0) return;
    t.put("{} {}", (invert & bit) != 0 ? " !" : "", name);
    if (arg != nullptr) t.put(" {}", *arg);
  };
  opt(kIsIn, "--physdev-is-in", nullptr);
  opt(kIn, "--physdev-in", &in);
  opt(kIsOut, "--physdev-is-out", nullptr);
  opt(kOut, "--physdev-out", &out);
  opt(kBridged, "--physdev-is-bridged", nullptr);
}

}  // namespace nfb
