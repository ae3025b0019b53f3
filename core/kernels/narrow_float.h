// Rounding float64 to the 16-bit float formats, once, to nearest with ties to even.
// Scalar reference for the SIMD conversions in convert-inl.h; written with
// frexp/nearbyint so it shares no bit tricks with them.
#ifndef NORMD_CORE_KERNELS_NARROW_FLOAT_H_
#define NORMD_CORE_KERNELS_NARROW_FLOAT_H_

#include <cstdint>

namespace normd {

// Bit layout of a binary floating-point format narrower than float32.
struct NarrowFloatFormat {
  int mantissa_bits;
  int exponent_bits;
  int min_normal_exponent;  // 1 - bias
};

inline constexpr NarrowFloatFormat kFloat16Format{10, 5, -14};
inline constexpr NarrowFloatFormat kBFloat16Format{7, 8, -126};

// The bits of `value` rounded to `format`: overflow gives infinity, NaN a quiet
// NaN, values below the smallest subnormal round to a signed zero.
uint16_t RoundToNarrowFloat(double value, NarrowFloatFormat format);

inline uint16_t DoubleToFloat16Bits(double value) {
  return RoundToNarrowFloat(value, kFloat16Format);
}
inline uint16_t DoubleToBFloat16Bits(double value) {
  return RoundToNarrowFloat(value, kBFloat16Format);
}

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_NARROW_FLOAT_H_
