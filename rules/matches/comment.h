// -m comment. iptables' libxt_comment, the kernel's xt_comment.
#pragma once

#include "rules/module.h"

namespace nfb {

/// -m comment: always matches, and is dropped at compile time. At most 255
/// bytes (the kernel's limit).
struct CommentMatch {
  std::string text;
  friend bool operator==(const CommentMatch&, const CommentMatch&) = default;

  static constexpr const char* kName = "comment";
  static constexpr OptDef kOptions[] = {{"comment", 0, 1, false}};
  // The kernel keeps 255 bytes and drops the rest, as iptables does.
  void parse(const ModuleOption& o) { text = o.a.substr(0, 255); }
  void check(const ModuleCheck& c) const {
    if (c.seen == 0) c.fail("comment: option \"--comment\" must be specified");
  }
  void save(SaveLine& l) const { l.add("-m comment --comment").add(save_string(text)); }
  void list(ListText& t) const { t.put(" /* {} */", text); }

  /// Nothing to match: compiles to nothing.
  template <class C>
  void compile(C&) const {}
  template <class Ctx, class State>
  MatchResult match(const Ctx&, State&) const noexcept {
    return MatchResult::Matched;
  }
  bool boxes(Alts&, const BoxRule&) const { return true; }
};

}  // namespace nfb
