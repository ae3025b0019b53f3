// RoundToNarrowFloat against two independent oracles: GCC's _Float16 conversion
// (libgcc's correctly rounded __truncdfhf2) and a brute-force nearest-value search
// over every bit pattern of the format.
#include "core/kernels/narrow_float.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

double DecodeFloat16(uint16_t bits) { return Float16ToFloat(Float16{bits}); }
double DecodeBFloat16(uint16_t bits) { return BFloat16ToFloat(BFloat16{bits}); }

// The nearest representable value, ties to the even pattern, found by binary search
// over the positive patterns (monotonic in value); the infinity pattern stands for
// 2^(emax + 1), the first value past the largest finite one.
uint16_t NearestPattern(double value, uint16_t infinity, double (*decode)(uint16_t),
                        double beyond_max) {
  const auto magnitude_of = [&](uint16_t p) { return p == infinity ? beyond_max : decode(p); };
  const double a = std::fabs(value);
  uint16_t lo = 0, hi = infinity;  // invariant: magnitude_of(lo) <= a < magnitude_of(hi)
  if (a >= beyond_max) return static_cast<uint16_t>((std::signbit(value) ? 0x8000 : 0) | infinity);
  while (hi - lo > 1) {
    const auto mid = static_cast<uint16_t>((lo + hi) / 2);
    (magnitude_of(mid) <= a ? lo : hi) = mid;
  }
  const double below = a - magnitude_of(lo), above = magnitude_of(hi) - a;
  const uint16_t pick = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);
  return static_cast<uint16_t>((std::signbit(value) ? 0x8000 : 0) | pick);
}

std::vector<double> Probes(double (*decode)(uint16_t), uint16_t infinity, uint64_t seed) {
  std::vector<double> probes = {0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 1e300};
  for (uint32_t p = 0; p < infinity; ++p) {  // every value, and the midpoints around it
    const double v = decode(static_cast<uint16_t>(p));
    const double next = p + 1 < infinity ? decode(static_cast<uint16_t>(p + 1)) : v * 2;
    const double mid = (v + next) / 2;
    for (double probe : {v, mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e308)}) {
      probes.push_back(probe);
      probes.push_back(-probe);
    }
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(-160, 140);
  for (int i = 0; i < 200000; ++i) probes.push_back(std::exp2(exponent(rng)) * (i % 2 ? 1 : -1));
  return probes;
}

TEST(NarrowFloatTest, Float16MatchesGccAndNearestSearch) {
  for (double v : Probes(DecodeFloat16, 0x7c00, 1)) {
    const uint16_t got = DoubleToFloat16Bits(v);
#ifdef __FLT16_MANT_DIG__  // the compiler's own conversion, where it has _Float16 (GCC 12
                           // does on x86; clang 14, the sanitizer build's, does not)
    const _Float16 gcc = static_cast<_Float16>(v);
    uint16_t gcc_bits;
    std::memcpy(&gcc_bits, &gcc, 2);
    ASSERT_EQ(got, gcc_bits) << "value " << v;
#endif
    ASSERT_EQ(got, NearestPattern(v, 0x7c00, DecodeFloat16, 65536.0)) << "value " << v;
  }
}

TEST(NarrowFloatTest, BFloat16MatchesNearestSearch) {
  for (double v : Probes(DecodeBFloat16, 0x7f80, 2)) {
    ASSERT_EQ(DoubleToBFloat16Bits(v), NearestPattern(v, 0x7f80, DecodeBFloat16, 0x1p128))
        << "value " << v;
  }
}

TEST(NarrowFloatTest, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(DoubleToFloat16Bits(inf), 0x7c00);
  EXPECT_EQ(DoubleToFloat16Bits(-inf), 0xfc00);
  EXPECT_EQ(DoubleToFloat16Bits(std::nan("")), 0x7e00);
  EXPECT_EQ(DoubleToBFloat16Bits(-inf), 0xff80);
  EXPECT_EQ(DoubleToBFloat16Bits(std::nan("")), 0x7fc0);
  EXPECT_EQ(DoubleToFloat16Bits(65504.0), 0x7bff);
  EXPECT_EQ(DoubleToFloat16Bits(65520.0), 0x7c00);  // the tie past the maximum rounds up
  EXPECT_EQ(DoubleToFloat16Bits(-0.0), 0x8000);
}

}  // namespace
}  // namespace normd
