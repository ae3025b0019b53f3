// The overload set for std::visit over a variant: Overloaded{[](A) {...}, [](B) {...}}.
#ifndef NORMD_CORE_OVERLOADED_H_
#define NORMD_CORE_OVERLOADED_H_

namespace normd {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// GCC deduces this from the aggregate; clang before 17 needs the guide.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace normd

#endif  // NORMD_CORE_OVERLOADED_H_
