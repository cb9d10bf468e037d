// An enum with a stable name and a description for each value, declared from
// ONE X-list so that the enumerators, the counter names in reports and JSON,
// and the help texts cannot drift apart:
//
//   #define NFB_COLOUR_LIST(X) X(Red, "red", "stop") X(Green, "green", "go")
//   NFB_NAMED_ENUM(Colour, kColourCount, colour_name, colour_description,
//                  NFB_COLOUR_LIST)
//
// declares enum class Colour : uint8_t {Red, Green}, kColourCount (2), and
// colour_name() / colour_description(), which answer "invalid" for a value
// outside the list (a corrupt byte, never a crash).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace nfb::enum_names_detail {

template <typename E, std::size_t N>
constexpr const char* lookup(const std::array<const char*, N>& table, E e) noexcept {
  const auto i = static_cast<std::size_t>(e);
  return i < N ? table[i] : "invalid";
}

}  // namespace nfb::enum_names_detail

#define NFB_ENUM_X_ENUMERATOR_(name, str, desc) name,
#define NFB_ENUM_X_ONE_(name, str, desc) +1
#define NFB_ENUM_X_NAME_(name, str, desc) str,
#define NFB_ENUM_X_DESC_(name, str, desc) desc,

#define NFB_NAMED_ENUM(Enum, Count, name_fn, desc_fn, LIST)                                 \
  enum class Enum : std::uint8_t { LIST(NFB_ENUM_X_ENUMERATOR_) };                          \
  inline constexpr std::size_t Count = 0 LIST(NFB_ENUM_X_ONE_);                             \
  constexpr const char* name_fn(Enum e) noexcept {                                          \
    constexpr std::array<const char*, Count> kNames{LIST(NFB_ENUM_X_NAME_)};                \
    return ::nfb::enum_names_detail::lookup(kNames, e);                                     \
  }                                                                                         \
  constexpr const char* desc_fn(Enum e) noexcept {                                          \
    constexpr std::array<const char*, Count> kDescriptions{LIST(NFB_ENUM_X_DESC_)};         \
    return ::nfb::enum_names_detail::lookup(kDescriptions, e);                              \
  }
