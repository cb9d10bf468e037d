// The visitor helper for std::visit over the rule model's variants:
//   std::visit(Overloaded{[](const TcpMatch& m) {...}, [](const auto&) {...}}, v);
#pragma once

namespace nfb {

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace nfb
