#include "core/frozen_scheme.h"

#include <cmath>
#include <random>
#include <vector>

#include "core/apply_scale_shift.h"
#include "gtest/gtest.h"
#include "tests/support/output_dtype.h"

namespace normd {
namespace {

using testing::Out;

ReferenceStatistics Reference(std::vector<double> mean, std::vector<double> variance,
                              std::vector<double> min = {}, std::vector<double> max = {}) {
  ReferenceStatistics ref;
  ref.count.assign(mean.size(), 10);
  ref.mean = std::move(mean);
  ref.variance = std::move(variance);
  ref.min = min.empty() ? std::vector<double>(ref.mean.size(), 0.0) : std::move(min);
  ref.max = max.empty() ? std::vector<double>(ref.mean.size(), 1.0) : std::move(max);
  return ref;
}

// Distance in units in the last place between two finite floats.
int64_t UlpDistance(float a, float b) {
  auto ordered = [](float f) {
    const int32_t bits = std::bit_cast<int32_t>(f);
    return bits < 0 ? int64_t{INT32_MIN} - bits : int64_t{bits};
  };
  return std::llabs(ordered(a) - ordered(b));
}

TEST(FrozenSchemeTest, BatchNormMatchesTheDirectFormulaWithinOneUlp) {
  const std::vector<double> mean = {0.485 * 255, 0.456 * 255, 0.406 * 255};
  const std::vector<double> variance = {std::pow(0.229 * 255, 2), std::pow(0.224 * 255, 2),
                                        std::pow(0.225 * 255, 2)};
  BatchNormScheme bn{{1.5, -0.5, 2.0}, {0.1, 0.2, -0.3}, 1e-3};
  absl::StatusOr<ScaleShift> folded = FoldScaleShift(bn, Reference(mean, variance), 3);
  ASSERT_TRUE(folded.ok()) << folded.status();

  // [N=4, C=3, H*W=50] of uint8 pixels.
  std::mt19937 rng(3);
  std::vector<uint8_t> pixels(4 * 3 * 50);
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng() & 0xff);
  const int64_t shape[] = {4, 3, 5, 10};
  const TensorView input{DType::kUInt8, shape, std::as_bytes(std::span(pixels))};
  absl::StatusOr<ChannelGeometry> geometry = ResolveGeometry(Layout::kNCHW, 3, shape);
  ASSERT_TRUE(geometry.ok());
  std::vector<float> out(pixels.size());
  ASSERT_TRUE(ApplyScaleShift(input, *geometry, *folded, Out(DType::kFloat32),
                              std::as_writable_bytes(std::span(out)))
                  .ok());
  for (size_t i = 0; i < pixels.size(); ++i) {
    const size_t c = (i / 50) % 3;
    const long double direct = (pixels[i] - static_cast<long double>(mean[c])) /
                                   std::sqrt(static_cast<long double>(variance[c]) + 1e-3L) *
                                   bn.gamma[c] +
                               bn.beta[c];
    EXPECT_LE(UlpDistance(out[i], static_cast<float>(direct)), 1) << "element " << i;
  }
}

TEST(FrozenSchemeTest, LargeMeanSmallSpreadKeepsPrecision) {
  // |mean| / std = 1e10: folding the mean into the shift would leave ~1e-6 of
  // rounding error in every output even in float64; the centered form has none.
  const ReferenceStatistics ref = Reference({1e8}, {1e-4});
  absl::StatusOr<ScaleShift> folded = FoldScaleShift(ZScoreScheme{0.0}, ref, 1);
  ASSERT_TRUE(folded.ok());
  const std::vector<double> x = {1e8 + 0.0078125, 1e8 - 0.015625, 1e8};
  const int64_t shape[] = {3, 1};
  std::vector<double> out(3);
  ASSERT_TRUE(ApplyScaleShift({DType::kFloat64, shape, std::as_bytes(std::span(x))}, {3, 3, 1, 1},
                              *folded, Out(DType::kFloat64), std::as_writable_bytes(std::span(out)))
                  .ok());
  EXPECT_EQ(out[0], 0.78125);
  EXPECT_EQ(out[1], -1.5625);
  EXPECT_EQ(out[2], 0.0);
}

TEST(FrozenSchemeTest, MinMaxMapsRangeAndConstantChannelToLow) {
  const ReferenceStatistics ref = Reference({0, 0}, {1, 1}, {-2.0, 5.0}, {6.0, 5.0});
  absl::StatusOr<ScaleShift> folded = FoldScaleShift(MinMaxScheme{-1.0, 1.0}, ref, 2);
  ASSERT_TRUE(folded.ok());
  const auto map = [&](int c, double x) {
    return (x - folded->center[c]) * folded->scale[c] + folded->shift[c];
  };
  EXPECT_EQ(map(0, -2.0), -1.0);
  EXPECT_EQ(map(0, 6.0), 1.0);
  EXPECT_EQ(map(0, 2.0), 0.0);
  EXPECT_EQ(map(1, 5.0), -1.0);
  EXPECT_EQ(map(1, 7.0), -1.0);
}

TEST(FrozenSchemeTest, FixedScaleNeedsNoStatistics) {
  absl::StatusOr<ScaleShift> folded = FoldScaleShift(FixedScaleScheme{1.0 / 255, -0.5}, {}, 1);
  ASSERT_TRUE(folded.ok());
  EXPECT_FALSE(NeedsStatistics(FixedScaleScheme{}));
  const uint8_t pixels[] = {0, 255, 51};
  const int64_t shape[] = {3};
  float out[3];
  ASSERT_TRUE(ApplyScaleShift({DType::kUInt8, shape, std::as_bytes(std::span(pixels))},
                              {3, 1, 1, 3}, *folded, Out(DType::kFloat32),
                              std::as_writable_bytes(std::span(out)))
                  .ok());
  EXPECT_EQ(out[0], -0.5f);
  EXPECT_EQ(out[1], 0.5f);
  EXPECT_EQ(out[2], static_cast<float>(51.0 / 255 - 0.5));
}

TEST(FrozenSchemeTest, ZeroVarianceUsesEpsLikePyTorch) {
  const ReferenceStatistics ref = Reference({3.0}, {0.0});
  absl::StatusOr<ScaleShift> folded = FoldScaleShift(ZScoreScheme{}, ref, 1);
  ASSERT_TRUE(folded.ok());
  EXPECT_EQ(folded->scale[0], 1.0 / std::sqrt(kDefaultEps));
  absl::StatusOr<ScaleShift> no_eps = FoldScaleShift(ZScoreScheme{0.0}, ref, 1);
  EXPECT_EQ(no_eps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_eps.status().message().find("channel 0 has variance 0 and eps is 0"),
            absl::string_view::npos)
      << no_eps.status();
}

TEST(FrozenSchemeTest, BadParameters) {
  const ReferenceStatistics ref = Reference({0, 0}, {1, 1});
  EXPECT_EQ(FoldScaleShift(ZScoreScheme{-1.0}, ref, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FoldScaleShift(ZScoreScheme{NAN}, ref, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status gamma = FoldScaleShift(BatchNormScheme{{1.0}, {}, 1e-5}, ref, 2).status();
  EXPECT_EQ(gamma.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(gamma.message().find("gamma has 1 values, expected 2"), absl::string_view::npos);
  EXPECT_EQ(FoldScaleShift(MinMaxScheme{1.0, 0.0}, ref, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FoldScaleShift(FixedScaleScheme{INFINITY, 0}, ref, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FrozenSchemeTest, ChannelWithoutTrainingValuesIsFailedPrecondition) {
  ReferenceStatistics ref = Reference({0, 0}, {1, 1});
  ref.count[1] = 0;
  EXPECT_EQ(FoldScaleShift(ZScoreScheme{}, ref, 2).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ApplyScaleShiftTest, Float64OutputAndUnsupportedOutput) {
  const double x[] = {1.0, 2.0};
  const int64_t shape[] = {2, 1};
  ScaleShift f{{0.5}, {0.1}, {0.2}};
  double out[2];
  ASSERT_TRUE(ApplyScaleShift({DType::kFloat64, shape, std::as_bytes(std::span(x))}, {2, 2, 1, 1},
                              f, Out(DType::kFloat64), std::as_writable_bytes(std::span(out)))
                  .ok());
  EXPECT_EQ(out[0], 0.5 * 0.1 + 0.2);
  EXPECT_EQ(out[1], 1.5 * 0.1 + 0.2);
  // uint8 cannot be an output: no OutputDType holds it, so ApplyScaleShift never sees it.
  EXPECT_EQ(ValidateOutputDType(DType::kUInt8).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace normd
