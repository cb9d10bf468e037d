// std::visit as a plain switch, for the packet path.
//
// libstdc++ visits a variant of more than 11 alternatives through a table
// of function pointers: an indirect call per visit that the compiler cannot
// inline, plus a valueless-by-exception check that may throw. visit_switch()
// is one `switch (v.index())` whose cases call `f` on the alternative, so
// every case inlines and nothing throws. Up to 32 alternatives.
#pragma once

#include <cstddef>
#include <utility>
#include <variant>

namespace nfb {

/// f(alternative) for the alternative `v` holds. `v` must not be valueless
/// (variants of the rule model never are: their alternatives do not throw
/// on move). Every case must return the same type.
template <class Variant, class F>
decltype(auto) visit_switch(Variant& v, F&& f) noexcept(noexcept(f(*std::get_if<0>(&v)))) {
  constexpr size_t n = std::variant_size_v<std::remove_const_t<Variant>>;
  static_assert(n <= 32, "visit_switch handles at most 32 alternatives");
#define NFB_VISIT_CASE(i)                                    \
  case i:                                                    \
    if constexpr (i < n) return f(*std::get_if<i>(&v));      \
    [[fallthrough]];
  switch (v.index()) {
    NFB_VISIT_CASE(0) NFB_VISIT_CASE(1) NFB_VISIT_CASE(2) NFB_VISIT_CASE(3)
    NFB_VISIT_CASE(4) NFB_VISIT_CASE(5) NFB_VISIT_CASE(6) NFB_VISIT_CASE(7)
    NFB_VISIT_CASE(8) NFB_VISIT_CASE(9) NFB_VISIT_CASE(10) NFB_VISIT_CASE(11)
    NFB_VISIT_CASE(12) NFB_VISIT_CASE(13) NFB_VISIT_CASE(14) NFB_VISIT_CASE(15)
    NFB_VISIT_CASE(16) NFB_VISIT_CASE(17) NFB_VISIT_CASE(18) NFB_VISIT_CASE(19)
    NFB_VISIT_CASE(20) NFB_VISIT_CASE(21) NFB_VISIT_CASE(22) NFB_VISIT_CASE(23)
    NFB_VISIT_CASE(24) NFB_VISIT_CASE(25) NFB_VISIT_CASE(26) NFB_VISIT_CASE(27)
    NFB_VISIT_CASE(28) NFB_VISIT_CASE(29) NFB_VISIT_CASE(30) NFB_VISIT_CASE(31)
    default: break;
  }
#undef NFB_VISIT_CASE
  __builtin_unreachable();
}

}  // namespace nfb
