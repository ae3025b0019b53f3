#include "core/dtype.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace normd {
namespace {

// binary16 from its definition: (-1)^s * 2^(e - 15) * (1 + m / 1024), subnormals
// 2^-14 * (m / 1024).
double Binary16Value(uint16_t bits) {
  const int sign = bits >> 15;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(mantissa / 1024.0, -14);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  }
  return sign ? -magnitude : magnitude;
}

TEST(DTypeTest, Float16DecodingMatchesDefinitionForAllBitPatterns) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const double expected = Binary16Value(static_cast<uint16_t>(bits));
    const double actual = ToDouble(Float16{static_cast<uint16_t>(bits)});
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << std::hex << bits;
    } else {
      EXPECT_EQ(actual, expected) << std::hex << bits;
      EXPECT_EQ(std::signbit(actual), std::signbit(expected)) << std::hex << bits;
    }
  }
}

TEST(DTypeTest, BFloat16IsTheUpperHalfOfFloat32) {
  EXPECT_EQ(ToDouble(BFloat16{0x3f80}), 1.0);
  EXPECT_EQ(ToDouble(BFloat16{0xc2f7}), -123.5);
  EXPECT_EQ(ToDouble(BFloat16{0x7f80}), INFINITY);
  EXPECT_TRUE(std::isnan(ToDouble(BFloat16{0x7fc0})));
}

TEST(DTypeTest, ElementSizesAndNames) {
  EXPECT_EQ(ElementSize(DType::kFloat32), 4u);
  EXPECT_EQ(ElementSize(DType::kFloat64), 8u);
  EXPECT_EQ(ElementSize(DType::kFloat16), 2u);
  EXPECT_EQ(ElementSize(DType::kBFloat16), 2u);
  EXPECT_EQ(ElementSize(DType::kUInt8), 1u);
  EXPECT_EQ(DTypeName(DType::kBFloat16), "bfloat16");
}

}  // namespace
}  // namespace normd
