// The per-element arithmetic every normalisation kernel shares with its scalar
// reference, so that SIMD bodies, their scalar tails and the references round alike.
#ifndef NORMD_CORE_KERNELS_ELEMENT_H_
#define NORMD_CORE_KERNELS_ELEMENT_H_

#include "core/dtype.h"
#include "core/kernels/narrow_float.h"

namespace normd {

// (x - center) * scale + shift, as two roundings in float64. Deliberately not an
// FMA: targets without one (SSE4, the scalar fallback) must give the same bits, and
// normd builds core/ with -ffp-contract=off so the compiler does not fuse it either.
inline double ScaleShiftValue(double x, double center, double scale, double shift) {
  return (x - center) * scale + shift;
}

// Output element types, rounded once from float64 to nearest, ties to even.
template <typename Out>
Out FromDouble(double value);
template <>
inline float FromDouble<float>(double value) {
  return static_cast<float>(value);
}
template <>
inline double FromDouble<double>(double value) {
  return value;
}
template <>
inline Float16 FromDouble<Float16>(double value) {
  return Float16{DoubleToFloat16Bits(value)};
}
template <>
inline BFloat16 FromDouble<BFloat16>(double value) {
  return BFloat16{DoubleToBFloat16Bits(value)};
}

// The one output-dtype dispatch: calls fn(T{}) with T the storage type of an output
// dtype (float32, float64, float16 or bfloat16; anything else is the caller's bug).
template <typename Fn>
decltype(auto) VisitOutputDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat64:
      return fn(double{});
    case DType::kFloat16:
      return fn(Float16{});
    case DType::kBFloat16:
      return fn(BFloat16{});
    default:
      break;
  }
  return fn(float{});
}

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_ELEMENT_H_
