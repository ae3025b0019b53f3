// The fit driver (SIMD tiles, shifts, geometric re-centring, task split) against
// exact rational moments of the same values, on shapes that take every walk and on
// data built to defeat a fixed shift; and against the scalar reference for the
// non-finite policies.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/batch_moments.h"
#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"
#include "tests/support/layout_oracle.h"

namespace normd {
namespace {

using testing::ChannelAxis;
using testing::ComputeExactMoments;
using testing::CoordinateAt;
using testing::ElementCount;
using testing::MeanError;
using testing::RelativeError;

constexpr double kExactness = 1e-12;

// Fits `values` (already the decoded doubles of `bytes`) and checks every channel
// against exact arithmetic, with and without a pool (which must not change a bit).
void ExpectExactFit(Layout layout, const std::vector<int64_t>& shape, DType dtype,
                    const std::vector<std::byte>& bytes, const std::vector<double>& values) {
  const int64_t axis = ChannelAxis(layout, shape.size());
  const int64_t channels = shape[axis];
  std::vector<std::vector<double>> per_channel(channels);
  for (int64_t i = 0; i < ElementCount(shape); ++i) {
    per_channel[CoordinateAt(shape, axis, i)].push_back(values[i]);
  }
  const TensorView view{dtype, shape, bytes};
  const ChannelGeometry geometry = *ResolveGeometry(layout, channels, shape);
  std::vector<ChannelMoments> inline_fit(channels), pooled_fit(channels);
  ASSERT_TRUE(ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, inline_fit).ok());
  WorkerPool pool(2);
  ASSERT_TRUE(
      ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, pooled_fit, &pool).ok());
  for (int64_t c = 0; c < channels; ++c) {
    SCOPED_TRACE("channel " + std::to_string(c));
    const auto exact = ComputeExactMoments(per_channel[c]);
    const ChannelMoments& m = inline_fit[c];
    ASSERT_EQ(m.count, exact.count);
    EXPECT_LE(MeanError(m.Mean(), exact), kExactness);
    EXPECT_LE(RelativeError(m.PopulationVariance(), exact.PopulationVariance()), kExactness);
    EXPECT_EQ(m.Min(), *std::min_element(per_channel[c].begin(), per_channel[c].end()));
    EXPECT_EQ(m.Max(), *std::max_element(per_channel[c].begin(), per_channel[c].end()));
    EXPECT_EQ(pooled_fit[c].mean.hi, m.mean.hi);
    EXPECT_EQ(pooled_fit[c].m2.hi, m.m2.hi);
  }
}

struct FitCase {
  Layout layout;
  std::vector<int64_t> shape;
  DType dtype;
};

class FitDriverTest : public ::testing::TestWithParam<FitCase> {};

TEST_P(FitDriverTest, EveryChannelMatchesExactArithmetic) {
  const FitCase& param = GetParam();
  const int64_t axis = ChannelAxis(param.layout, param.shape.size());
  const int64_t n = ElementCount(param.shape);
  std::mt19937_64 rng(6);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<std::byte> bytes(n * ElementSize(param.dtype));
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = CoordinateAt(param.shape, axis, i);
    const double v = 100.0 * (c % 13) + (1 + c % 3) * noise(rng);
    switch (param.dtype) {
      case DType::kFloat32:
        StoreElement<float>(bytes.data(), i, static_cast<float>(v));
        values[i] = static_cast<float>(v);
        break;
      case DType::kFloat64:
        StoreElement<double>(bytes.data(), i, v);
        values[i] = v;
        break;
      default: {
        const auto u = static_cast<uint8_t>(std::clamp(v + 50.0, 0.0, 255.0));
        StoreElement<uint8_t>(bytes.data(), i, u);
        values[i] = u;
      }
    }
  }
  ExpectExactFit(param.layout, param.shape, param.dtype, bytes, values);
}

INSTANTIATE_TEST_SUITE_P(Shapes, FitDriverTest,
                         ::testing::Values(FitCase{Layout::kNC, {1, 1}, DType::kFloat64},
                                           FitCase{Layout::kNC, {5000, 1}, DType::kFloat32},
                                           FitCase{Layout::kNC, {20000, 3}, DType::kFloat32},
                                           FitCase{Layout::kNC, {3000, 64}, DType::kFloat64},
                                           FitCase{Layout::kNC, {300, 1000}, DType::kFloat32},
                                           FitCase{Layout::kNC, {40, 4099}, DType::kUInt8},
                                           FitCase{Layout::kNCHW, {50, 5, 2, 3}, DType::kFloat32},
                                           FitCase{Layout::kNCHW, {4, 700, 3, 3}, DType::kFloat64},
                                           FitCase{Layout::kNCHW, {16, 3, 64, 80}, DType::kUInt8},
                                           FitCase{Layout::kNCHW, {2, 2, 9000}, DType::kFloat32},
                                           FitCase{Layout::kNHWC, {8, 16, 16, 3}, DType::kFloat32},
                                           FitCase{
                                               Layout::kNHWC, {256, 7, 7, 17}, DType::kFloat64}),
                         [](const ::testing::TestParamInfo<FitCase>& info) {
                           std::string name = std::string(LayoutName(info.param.layout)) + "_" +
                                              std::string(DTypeName(info.param.dtype));
                           for (int64_t d : info.param.shape) name += "_" + std::to_string(d);
                           return name;
                         });

// One channel of float64 data, as [N, 1] (rows walk) and as [1, 1, N] (runs walk).
void ExpectExactBothWalks(const std::vector<double>& values) {
  const auto n = static_cast<int64_t>(values.size());
  std::vector<std::byte> bytes(values.size() * 8);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  {
    SCOPED_TRACE("rows walk");
    ExpectExactFit(Layout::kNC, {n, 1}, DType::kFloat64, bytes, values);
  }
  {
    SCOPED_TRACE("runs walk");
    ExpectExactFit(Layout::kNCHW, {1, 1, n}, DType::kFloat64, bytes, values);
  }
}

TEST(FitDriverTest, SortedDataWithLargeOffset) {
  std::vector<double> values(300000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1e8 + 1e-3 * static_cast<double>(i);
  ExpectExactBothWalks(values);
}

TEST(FitDriverTest, LevelShiftMidway) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1e-3);
  std::vector<double> values(200000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = (i < 150000 ? 0.0 : 1e6) + noise(rng);
  ExpectExactBothWalks(values);
}

TEST(FitDriverTest, FirstValueIsAHugeOutlier) {
  std::mt19937_64 rng(8);
  std::normal_distribution<double> noise(0.0, 1e-3);
  std::vector<double> values(100000);
  for (double& v : values) v = 1e8 + noise(rng);
  values[0] = 1e12;
  ExpectExactBothWalks(values);
}

// The first tile is a tight cluster far from everything after it, so the first
// tile's mean is a poor shift for the rest: only re-centring keeps M2 exact.
TEST(FitDriverTest, UnrepresentativeFirstTile) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> values(2000000);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = i < 4096 ? 1e6 + 1e-3 * noise(rng) : noise(rng);
  }
  ExpectExactBothWalks(values);
}

TEST(FitDriverTest, TinySpreadAroundLargeMean) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> noise(0.0, 1e-3);
  std::vector<double> values(250000);
  for (double& v : values) v = 1e8 + noise(rng);
  ExpectExactBothWalks(values);
}

// Non-finite values: the driver and the scalar reference agree on the status (the
// same first value named) and, when skipping, on counts and moments.
TEST(FitDriverTest, NonFinitePoliciesAgreeWithReference) {
  std::mt19937_64 rng(10);
  for (const auto& [layout, shape] :
       std::vector<std::pair<Layout, std::vector<int64_t>>>{{Layout::kNC, {3000, 3}},
                                                            {Layout::kNCHW, {4, 3, 50, 50}},
                                                            {Layout::kNHWC, {2, 30, 30, 5}}}) {
    const int64_t axis = ChannelAxis(layout, shape.size());
    const int64_t channels = shape[axis];
    const int64_t n = ElementCount(shape);
    std::vector<float> values(n);
    std::normal_distribution<float> noise(5.0f, 2.0f);
    for (float& v : values) v = noise(rng);
    for (int k = 0; k < 40; ++k) {
      values[rng() % n] = k % 3 == 0 ? NAN : (k % 3 == 1 ? INFINITY : -INFINITY);
    }
    for (int64_t i = 0; i < n; ++i) {  // channel 0's first tile entirely non-finite
      if (i < n / 8 && CoordinateAt(shape, axis, i) == 0) values[i] = NAN;
    }
    const TensorView view{DType::kFloat32, shape, std::as_bytes(std::span(values))};
    const ChannelGeometry geometry = *ResolveGeometry(layout, channels, shape);
    std::vector<ChannelMoments> got(channels), want(channels);
    absl::StatusOr<uint64_t> rejected =
        ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, got);
    absl::StatusOr<uint64_t> rejected_ref =
        ComputeBatchMomentsReference(view, geometry, NonFinitePolicy::kReject, want);
    ASSERT_FALSE(rejected.ok());
    EXPECT_EQ(rejected.status(), rejected_ref.status());

    WorkerPool pool(2);
    absl::StatusOr<uint64_t> skipped =
        ComputeBatchMoments(view, geometry, NonFinitePolicy::kSkip, got, &pool);
    absl::StatusOr<uint64_t> skipped_ref =
        ComputeBatchMomentsReference(view, geometry, NonFinitePolicy::kSkip, want);
    ASSERT_TRUE(skipped.ok() && skipped_ref.ok());
    EXPECT_EQ(*skipped, *skipped_ref);
    for (int64_t c = 0; c < channels; ++c) {
      EXPECT_EQ(got[c].count, want[c].count) << "channel " << c;
      EXPECT_LE(RelativeError(got[c].Mean(), want[c].Mean()), kExactness) << "channel " << c;
      EXPECT_LE(RelativeError(got[c].PopulationVariance(), want[c].PopulationVariance()),
                kExactness)
          << "channel " << c;
      EXPECT_EQ(got[c].Min(), want[c].Min());
      EXPECT_EQ(got[c].Max(), want[c].Max());
    }
  }
}

}  // namespace
}  // namespace normd
