#include "core/batch_moments.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"
#include "tests/support/layout_oracle.h"

namespace normd {
namespace {

using testing::ComputeExactMoments;
using testing::CoordinateAt;
using testing::MeanError;
using testing::RelativeError;

struct LayoutCase {
  Layout layout;
  std::vector<int64_t> shape;
  int64_t channel_axis;
};

class BatchMomentsLayoutTest : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(BatchMomentsLayoutTest, EachChannelMatchesExactMomentsOfItsValues) {
  const LayoutCase& param = GetParam();
  int64_t elements = 1;
  for (int64_t d : param.shape) elements *= d;
  const int64_t channels = param.shape[param.channel_axis];
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> data(elements);
  std::vector<std::vector<double>> per_channel(channels);
  for (int64_t i = 0; i < elements; ++i) {
    const int64_t c = CoordinateAt(param.shape, param.channel_axis, i);
    data[i] = 1000.0 * c + (c + 1) * noise(rng);
    per_channel[c].push_back(data[i]);
  }
  TensorView view{DType::kFloat64, param.shape, std::as_bytes(std::span(data))};
  absl::StatusOr<ChannelGeometry> geometry = ResolveGeometry(param.layout, channels, param.shape);
  ASSERT_TRUE(geometry.ok()) << geometry.status();
  std::vector<ChannelMoments> out(channels);
  ASSERT_TRUE(ComputeBatchMoments(view, *geometry, NonFinitePolicy::kReject, out).ok());
  for (int64_t c = 0; c < channels; ++c) {
    const auto exact = ComputeExactMoments(per_channel[c]);
    EXPECT_EQ(out[c].count, exact.count);
    EXPECT_LE(MeanError(out[c].Mean(), exact), 1e-14) << "channel " << c;
    EXPECT_LE(RelativeError(out[c].PopulationVariance(), exact.PopulationVariance()), 1e-13)
        << "channel " << c;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, BatchMomentsLayoutTest,
                         ::testing::Values(LayoutCase{Layout::kNC, {17, 1}, 1},
                                           LayoutCase{Layout::kNC, {33, 7}, 1},
                                           LayoutCase{Layout::kNCHW, {5, 3, 4, 6}, 1},
                                           LayoutCase{Layout::kNCHW, {2, 4, 9}, 1},
                                           LayoutCase{Layout::kNCHW, {3, 2, 2, 3, 5}, 1},
                                           LayoutCase{Layout::kNHWC, {5, 4, 6, 3}, 3},
                                           LayoutCase{Layout::kNHWC, {1, 7, 5}, 2}));

template <typename T>
std::vector<std::byte> Bytes(const std::vector<T>& values) {
  const auto span = std::as_bytes(std::span(values));
  return std::vector<std::byte>(span.begin(), span.end());
}

TEST(BatchMomentsTest, DecodesEveryInputDType) {
  // Values exactly representable in every dtype; their float64 moments are the oracle.
  const std::vector<double> values = {0.0, 1.0, 2.0, 3.0, 4.0, 255.0, 128.0, 7.0};
  const auto exact = ComputeExactMoments(values);
  const int64_t shape[] = {8, 1};
  ChannelGeometry geometry{8, 8, 1, 1};
  std::vector<float> f32(values.begin(), values.end());
  std::vector<uint8_t> u8(values.begin(), values.end());
  // binary16 and bfloat16 bit patterns of the same values.
  std::vector<uint16_t> f16 = {0x0000, 0x3c00, 0x4000, 0x4200, 0x4400, 0x5bf8, 0x5800, 0x4700};
  std::vector<uint16_t> bf16 = {0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x437f, 0x4300, 0x40e0};
  const std::pair<DType, std::vector<std::byte>> cases[] = {{DType::kFloat64, Bytes(values)},
                                                            {DType::kFloat32, Bytes(f32)},
                                                            {DType::kUInt8, Bytes(u8)},
                                                            {DType::kFloat16, Bytes(f16)},
                                                            {DType::kBFloat16, Bytes(bf16)}};
  for (const auto& [dtype, bytes] : cases) {
    std::vector<ChannelMoments> out(1);
    TensorView view{dtype, shape, bytes};
    ASSERT_TRUE(ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, out).ok());
    EXPECT_EQ(out[0].Mean(), exact.Mean()) << DTypeName(dtype);
    EXPECT_EQ(out[0].PopulationVariance(), exact.PopulationVariance()) << DTypeName(dtype);
    EXPECT_EQ(out[0].Max(), 255.0) << DTypeName(dtype);
  }
}

TEST(BatchMomentsTest, NonFiniteRejectNamesTheValue) {
  const std::vector<double> values = {1.0, 2.0, std::numeric_limits<double>::quiet_NaN(), 4.0};
  const int64_t shape[] = {2, 2};
  ChannelGeometry geometry{2, 2, 2, 1};
  std::vector<ChannelMoments> out(2);
  TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  absl::StatusOr<uint64_t> result =
      ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, out);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("flat index 2"), absl::string_view::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("channel 0"), absl::string_view::npos);
}

TEST(BatchMomentsTest, NonFiniteSkipLeavesValuesOut) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {1.0, inf, 3.0, 10.0, std::nan(""), 20.0, 5.0, -inf};
  const int64_t shape[] = {4, 2};
  ChannelGeometry geometry{4, 4, 2, 1};
  std::vector<ChannelMoments> out(2);
  TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  absl::StatusOr<uint64_t> skipped =
      ComputeBatchMoments(view, geometry, NonFinitePolicy::kSkip, out);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 3u);
  const std::vector<double> channel0 = {1.0, 3.0, 5.0};
  const std::vector<double> channel1 = {10.0, 20.0};
  EXPECT_EQ(out[0].count, 3u);
  EXPECT_EQ(out[0].Mean(), ComputeExactMoments(channel0).Mean());
  EXPECT_EQ(out[1].count, 2u);
  EXPECT_EQ(out[1].PopulationVariance(), ComputeExactMoments(channel1).PopulationVariance());
}

TEST(BatchMomentsTest, UnalignedInput) {
  std::vector<std::byte> storage(1 + 6 * sizeof(float));
  const float values[] = {1.5f, -2.0f, 3.25f, 4.0f, 5.5f, -6.0f};
  std::memcpy(storage.data() + 1, values, sizeof values);
  const int64_t shape[] = {3, 2};
  ChannelGeometry geometry{3, 3, 2, 1};
  std::vector<ChannelMoments> out(2);
  TensorView view{DType::kFloat32, shape, std::span(storage).subspan(1)};
  ASSERT_TRUE(ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, out).ok());
  EXPECT_EQ(out[0].Mean(), (1.5 + 3.25 + 5.5) / 3);
  EXPECT_EQ(out[1].Min(), -6.0);
}

}  // namespace
}  // namespace normd
