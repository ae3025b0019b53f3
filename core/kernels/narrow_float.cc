#include "core/kernels/narrow_float.h"

#include <cmath>

namespace normd {

uint16_t RoundToNarrowFloat(double value, NarrowFloatFormat format) {
  const int p = format.mantissa_bits;
  const uint32_t exponent_all_ones = (1u << format.exponent_bits) - 1;
  const uint32_t infinity = exponent_all_ones << p;
  const uint32_t sign = std::signbit(value) ? 1u << (p + format.exponent_bits) : 0u;
  if (std::isnan(value)) return static_cast<uint16_t>(infinity | (1u << (p - 1)));
  const double magnitude = std::fabs(value);
  if (std::isinf(magnitude)) return static_cast<uint16_t>(sign | infinity);

  uint32_t bits;
  if (magnitude < std::ldexp(1.0, format.min_normal_exponent)) {
    // Subnormal: an integer multiple of 2^(min_normal_exponent - p). Rounding up
    // to 2^p lands exactly on the encoding of the smallest normal.
    bits = static_cast<uint32_t>(
        std::nearbyint(std::ldexp(magnitude, p - format.min_normal_exponent)));
  } else {
    int e;
    std::frexp(magnitude, &e);  // magnitude in [2^(e-1), 2^e)
    int exponent = e - 1;
    double significand = std::nearbyint(std::ldexp(magnitude, p - exponent));  // [2^p, 2^(p+1)]
    if (significand == std::ldexp(1.0, p + 1)) {
      significand /= 2;
      ++exponent;
    }
    const int biased = exponent - format.min_normal_exponent + 1;
    if (biased >= static_cast<int>(exponent_all_ones))
      return static_cast<uint16_t>(sign | infinity);
    bits = (static_cast<uint32_t>(biased) << p) | (static_cast<uint32_t>(significand) - (1u << p));
  }
  return static_cast<uint16_t>(sign | bits);
}

}  // namespace normd
