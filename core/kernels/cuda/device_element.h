// The per-element arithmetic of the CUDA kernels, for the device and the host alike
// (NORMD_HD): loading every input dtype as float64, the scale-shift map, and rounding
// to every output dtype. It gives the bits core/kernels/element.h gives: the map is
// (x - center) * scale + shift in two float64 roundings, never fused (on the device
// through __dsub_rn/__dmul_rn/__dadd_rn, which the compiler cannot contract), rounded
// once to the output type, ties to even. The 16-bit conversions are integer bit work,
// so host and device run the same instructions; tests/core/kernels/cuda_emulation_test.cc
// holds them to the CPU's references.
#ifndef NORMD_CORE_KERNELS_CUDA_DEVICE_ELEMENT_H_
#define NORMD_CORE_KERNELS_CUDA_DEVICE_ELEMENT_H_

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/kernels/host_device.h"

namespace normd::cuda_kernels {

NORMD_HD inline uint64_t BitsOf(double v) {
#ifdef __CUDA_ARCH__
  return static_cast<uint64_t>(__double_as_longlong(v));
#else
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
#endif
}

NORMD_HD inline double DoubleOfBits(uint64_t bits) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
#endif
}

NORMD_HD inline double QuietNaN() { return DoubleOfBits(0x7ff8000000000000ull); }

NORMD_HD inline float FloatOfBits(uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
#endif
}

NORMD_HD inline bool IsFinite(double v) {
  return (BitsOf(v) & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}

// Inputs as float64: exact for every dtype.
NORMD_HD inline double AsDouble(float x) { return x; }
NORMD_HD inline double AsDouble(double x) { return x; }
NORMD_HD inline double AsDouble(uint8_t x) { return x; }
NORMD_HD inline double AsDouble(BFloat16 x) {
  return FloatOfBits(static_cast<uint32_t>(x.bits) << 16);
}
NORMD_HD inline double AsDouble(Float16 h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1fu;
  const uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact
    const double magnitude = static_cast<double>(mantissa) * 0x1p-24;
    return sign ? -magnitude : magnitude;
  }
  const uint32_t bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                         : sign | ((exponent + 112) << 23) | (mantissa << 13);
  return FloatOfBits(bits);
}

// (x - center) * scale + shift, two roundings, no fused multiply-add.
NORMD_HD inline double ScaleShiftMap(double x, double center, double scale, double shift) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(__dmul_rn(__dsub_rn(x, center), scale), shift);
#else
  return (x - center) * scale + shift;
#endif
}

// The bits of `value` rounded once to a binary format with `p` mantissa bits,
// `exponent_bits` exponent bits and smallest normal exponent `min_normal` (float16:
// 10, 5, -14; bfloat16: 7, 8, -126): overflow gives infinity, NaN the quiet NaN
// core/kernels/narrow_float.h gives, tiny values a signed zero.
NORMD_HD inline uint16_t RoundToNarrowBits(double value, int p, int exponent_bits, int min_normal) {
  const uint64_t bits = BitsOf(value);
  const uint32_t infinity = ((1u << exponent_bits) - 1) << p;
  const uint32_t sign = (bits >> 63) != 0 ? 1u << (p + exponent_bits) : 0u;
  const uint64_t magnitude = bits & 0x7fffffffffffffffull;
  if (magnitude > 0x7ff0000000000000ull) return static_cast<uint16_t>(infinity | (1u << (p - 1)));
  if (magnitude == 0x7ff0000000000000ull) return static_cast<uint16_t>(sign | infinity);
  const int biased64 = static_cast<int>(magnitude >> 52);
  if (biased64 == 0) return static_cast<uint16_t>(sign);  // float64 subnormal: far below both
  const int exponent = biased64 - 1023;
  const uint64_t significand = (magnitude & 0xfffffffffffffull) | (1ull << 52);
  // Bits of `significand` below the target's last place.
  const int drop = 52 - p + (exponent < min_normal ? min_normal - exponent : 0);
  if (drop > 54) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
  uint64_t kept = significand >> drop;
  const uint64_t rest = significand & ((1ull << drop) - 1);
  const uint64_t half = 1ull << (drop - 1);
  if (rest > half || (rest == half && (kept & 1) != 0)) ++kept;
  // A normal result: the biased exponent above the kept bits (a carry out of the
  // mantissa moves it up by one, as it should). A subnormal one: the kept bits alone
  // (a carry to 2^p is the smallest normal's encoding).
  const uint64_t encoded =
      exponent < min_normal
          ? kept
          : (static_cast<uint64_t>(exponent - min_normal + 1) << p) + kept - (1ull << p);
  if (encoded >= infinity) return static_cast<uint16_t>(sign | infinity);
  return static_cast<uint16_t>(sign | encoded);
}

template <typename Out>
NORMD_HD Out Narrow(double value);
template <>
NORMD_HD inline float Narrow<float>(double value) {
  return static_cast<float>(value);
}
template <>
NORMD_HD inline double Narrow<double>(double value) {
  return value;
}
template <>
NORMD_HD inline Float16 Narrow<Float16>(double value) {
  return Float16{RoundToNarrowBits(value, 10, 5, -14)};
}
template <>
NORMD_HD inline BFloat16 Narrow<BFloat16>(double value) {
  return BFloat16{RoundToNarrowBits(value, 7, 8, -126)};
}

}  // namespace normd::cuda_kernels

#endif  // NORMD_CORE_KERNELS_CUDA_DEVICE_ELEMENT_H_
