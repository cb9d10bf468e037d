// -m nfacct: counts into a named nfnetlink_acct object. iptables'
// libxt_nfacct, the kernel's xt_nfacct. kube-proxy 1.29+ writes it.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m nfacct --nfacct-name NAME: always matches (the kernel adds the packet
/// to the object and returns true). The model assumes the object exists, as
/// it must for the rule to load; the rule's own counter counts the same
/// packets.
struct NfacctMatch {
  std::string name;
  friend bool operator==(const NfacctMatch&, const NfacctMatch&) = default;

  static constexpr size_t kMaxName = 31;  // NFACCT_NAME_MAX - 1
  static constexpr const char* kName = "nfacct";
  static constexpr OptDef kOptions[] = {{"nfacct-name", 0, 1, false}};
  void parse(const ModuleOption& o) {
    if (o.a.size() > kMaxName) o.fail(o.acol, fmt::format("nfacct: name longer than {} bytes", kMaxName));
    name = o.a;
  }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("nfacct: option \"--nfacct-name\" must be specified");
  }
  // Two spaces before the name, quoted when not [A-Za-z0-9_-]+, as
  // iptables 1.8.9 prints it [kernel, with `nfacct add`].
  void save(SaveLine& l) const { l.add("-m nfacct --nfacct-name ").add(save_string(name)); }
  void list(ListText& t) const { t.put(" nfacct-name  {}", save_string(name)); }

  template <class Ctx, class State>
  MatchResult match(const Ctx&, State&) const noexcept {
    return MatchResult::Matched;
  }
  bool boxes(Alts&, const BoxRule&) const { return true; }  // no condition
};

}  // namespace nfb
