// CONNMARK: set the conntrack mark, or copy between it and the skb mark.
// iptables' libxt_CONNMARK, the kernel's xt_connmark.
#pragma once

#include "rules/module.h"
#include "rules/targets/mark.h"

namespace nfb {

/// CONNMARK. SetXmark: ctmark = (ctmark & ~ctmask) ^ value. Save: ctmark =
/// (ctmark & ~ctmask) ^ (mark & nfmask). Restore: mark = (mark & ~nfmask) ^
/// (ctmark & ctmask). Needs a conntrack entry (the walk does nothing without).
struct ConnmarkTarget {
  enum class Mode : uint8_t { SetXmark, Save, Restore };
  Mode mode = Mode::SetXmark;
  uint32_t value = 0;  // ctmark operand of SetXmark
  uint32_t ctmask = 0xffffffff;
  uint32_t nfmask = 0xffffffff;
  friend bool operator==(const ConnmarkTarget&, const ConnmarkTarget&) = default;

  static constexpr const char* kName = "CONNMARK";
  static constexpr bool kTerminal = false;
  static constexpr WalkOp kWalk = WalkOp::Connmark;
  enum : uint8_t { kSetX, kSet, kAnd, kOr, kXor, kSave, kRestore, kMask, kNfmask, kCtmask };
  static constexpr OptDef kOptions[] = {
      {"set-xmark", kSetX, 1, false},   {"set-mark", kSet, 1, false},   {"and-mark", kAnd, 1, false},
      {"or-mark", kOr, 1, false},       {"xor-mark", kXor, 1, false},   {"save-mark", kSave, 0, false},
      {"restore-mark", kRestore, 0, false}, {"mask", kMask, 1, false},  {"nfmask", kNfmask, 1, false},
      {"ctmask", kCtmask, 1, false},
  };
  static constexpr uint32_t kOperations =
      (1U << kSetX) | (1U << kSet) | (1U << kAnd) | (1U << kOr) | (1U << kXor) | (1U << kSave) | (1U << kRestore);

  void parse(const ModuleOption& o) {
    switch (o.id) {
      case kSetX: case kSet: case kAnd: case kOr: case kXor: case kSave: case kRestore:
        if ((o.seen & kOperations) != 0)
          o.fail(o.col, fmt::format("{}: option \"{}\" cannot be combined with an earlier operation option",
                                    o.module, o.name));
        break;
      case kMask:
        if (o.given(kNfmask) || o.given(kCtmask))
          o.fail(o.col, "CONNMARK: --mask cannot be used together with --nfmask or --ctmask");
        break;
      default:
        if (o.given(kMask)) o.fail(o.col, fmt::format("CONNMARK: {} cannot be used together with --mask", o.name));
        break;
    }
    const std::string& a = o.a;
    switch (o.id) {
      case kSetX:
        mode = Mode::SetXmark;
        std::tie(value, ctmask) = o.line.parse_mark_value(a, o.acol, o.name);
        break;
      case kSet: {
        auto [v, m] = o.line.parse_mark_value(a, o.acol, o.name);
        mode = Mode::SetXmark;
        value = v;
        ctmask = m | v;
        break;
      }
      case kAnd: mode = Mode::SetXmark; value = 0; ctmask = ~o.line.parse_u32(a, o.acol, "mark"); break;
      case kOr: mode = Mode::SetXmark; value = ctmask = o.line.parse_u32(a, o.acol, "mark"); break;
      case kXor: mode = Mode::SetXmark; value = o.line.parse_u32(a, o.acol, "mark"); ctmask = 0; break;
      case kSave: mode = Mode::Save; break;
      case kRestore: mode = Mode::Restore; break;
      case kMask: ctmask = nfmask = o.line.parse_u32(a, o.acol, "mask"); break;
      case kNfmask: nfmask = o.line.parse_u32(a, o.acol, "mask"); break;
      case kCtmask: ctmask = o.line.parse_u32(a, o.acol, "mask"); break;
    }
  }
  void check(const ModuleCheck& c) const {
    if ((c.seen & kOperations) == 0)
      c.fail("CONNMARK: no operation (expected --set-xmark, --set-mark, --and-mark, --or-mark, "
             "--xor-mark, --save-mark or --restore-mark)");
  }
  void save(SaveLine& l) const {
    l.add("-j CONNMARK");
    switch (mode) {
      case Mode::SetXmark:
        l.add("--set-xmark").add(fmt::format("0x{:x}/0x{:x}", value, ctmask));
        break;
      case Mode::Save:
      case Mode::Restore:
        l.add(mode == Mode::Save ? "--save-mark" : "--restore-mark");
        l.add("--nfmask").add(format_hex(nfmask)).add("--ctmask").add(format_hex(ctmask));
        break;
    }
  }
  void list(ListText& t) const {
    switch (mode) {
      case Mode::SetXmark:
        t.put(" CONNMARK {}", format_xmark(value, ctmask));
        break;
      case Mode::Save:
        // The mask applied last is printed with a `~`, as iptables does.
        if (nfmask == ctmask) {
          t.add(" CONNMARK save");
          if (nfmask != 0xffffffffU) t.put(" mask {}", format_hex(nfmask));
        } else {
          t.put(" CONNMARK save nfmask {} ctmask ~{}", format_hex(nfmask), format_hex(ctmask));
        }
        break;
      case Mode::Restore:
        if (nfmask == ctmask) {
          t.add(" CONNMARK restore");
          if (ctmask != 0xffffffffU) t.put(" mask {}", format_hex(ctmask));
        } else {
          t.put(" CONNMARK restore ctmask {} nfmask ~{}", format_hex(ctmask), format_hex(nfmask));
        }
        break;
    }
  }

  /// Applies the target to an entry's mark and the skb mark.
  void apply(uint32_t& ctmark, uint32_t& mark) const noexcept {
    switch (mode) {
      case Mode::SetXmark: ctmark = (ctmark & ~ctmask) ^ value; break;
      case Mode::Save: ctmark = (ctmark & ~ctmask) ^ (mark & nfmask); break;
      case Mode::Restore: mark = (mark & ~nfmask) ^ (ctmark & ctmask); break;
    }
  }
};

}  // namespace nfb
