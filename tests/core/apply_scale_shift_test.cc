// The Normalize driver (walk planning, factor expansion, task split, streaming
// stores) against the scalar reference applied element by element, with each
// element's channel found from its coordinates.
#include "core/apply_scale_shift.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/kernels/scale_shift.h"
#include "gtest/gtest.h"
#include "tests/support/layout_oracle.h"
#include "tests/support/output_dtype.h"

namespace normd {
namespace {

using testing::ChannelAxis;
using testing::CoordinateAt;
using testing::ElementCount;
using testing::Out;

struct DriverCase {
  Layout layout;
  std::vector<int64_t> shape;
};

std::string CaseName(const ::testing::TestParamInfo<DriverCase>& info) {
  std::string name(LayoutName(info.param.layout));
  for (int64_t d : info.param.shape) name += "_" + std::to_string(d);
  return name;
}

class ApplyScaleShiftDriverTest : public ::testing::TestWithParam<DriverCase> {};

TEST_P(ApplyScaleShiftDriverTest, MatchesElementwiseReferenceWithAndWithoutPool) {
  const DriverCase& param = GetParam();
  const int64_t axis = ChannelAxis(param.layout, param.shape.size());
  const int64_t channels = param.shape[axis];
  const int64_t elements = ElementCount(param.shape);
  absl::StatusOr<ChannelGeometry> geometry = ResolveGeometry(param.layout, channels, param.shape);
  ASSERT_TRUE(geometry.ok()) << geometry.status();

  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> value(-1000.0, 1000.0);
  ScaleShift factors;
  for (int64_t c = 0; c < channels; ++c) {
    factors.center.push_back(value(rng));
    factors.scale.push_back(value(rng) / 500.0);
    factors.shift.push_back(value(rng) / 100.0);
  }
  WorkerPool pool(2);
  for (DType in : {DType::kFloat32, DType::kUInt8, DType::kFloat64}) {
    std::vector<std::byte> input(elements * ElementSize(in));
    for (int64_t i = 0; i < elements; ++i) {
      const double v = value(rng);
      if (in == DType::kFloat32) StoreElement<float>(input.data(), i, static_cast<float>(v));
      if (in == DType::kFloat64) StoreElement<double>(input.data(), i, v);
      if (in == DType::kUInt8) StoreElement<uint8_t>(input.data(), i, static_cast<uint8_t>(rng()));
    }
    const TensorView view{in, param.shape, input};
    for (DType out : {DType::kFloat32, DType::kBFloat16}) {
      const size_t out_size = ElementSize(out);
      std::vector<std::byte> want(elements * out_size);
      for (int64_t i = 0; i < elements; ++i) {
        const int64_t c = CoordinateAt(param.shape, axis, i);
        ScaleShiftRunReference(in, out, input.data() + i * ElementSize(in), 1, factors.center[c],
                               factors.scale[c], factors.shift[c], want.data() + i * out_size);
      }
      for (WorkerPool* p : {static_cast<WorkerPool*>(nullptr), &pool}) {
        std::vector<std::byte> got(want.size(), std::byte{0x5A});
        ASSERT_TRUE(ApplyScaleShift(view, *geometry, factors, Out(out), got, p).ok());
        ASSERT_EQ(got, want) << DTypeName(in) << " -> " << DTypeName(out)
                             << (p ? " with pool" : " inline");
      }
      // With a clamp per channel (minmax's clip, quantile clips): the float64 value
      // clamped to its channel's range, then rounded once.
      ScaleShift clamped = factors;
      for (size_t c = 0; c < factors.center.size(); ++c) {
        clamped.clamp.push_back({-3.25 + 0.125 * static_cast<double>(c % 7), 2.5 - 0.25 * (c % 3)});
      }
      for (int64_t i = 0; i < elements; ++i) {
        const int64_t c = CoordinateAt(param.shape, axis, i);
        double exact = 0;
        ScaleShiftRunReference(in, DType::kFloat64, input.data() + i * ElementSize(in), 1,
                               factors.center[c], factors.scale[c], factors.shift[c],
                               reinterpret_cast<std::byte*>(&exact));
        exact = std::min(std::max(exact, clamped.clamp[c].low), clamped.clamp[c].high);
        ScaleShiftRunReference(DType::kFloat64, out, reinterpret_cast<const std::byte*>(&exact), 1,
                               0.0, 1.0, 0.0, want.data() + i * out_size);
      }
      for (WorkerPool* p : {static_cast<WorkerPool*>(nullptr), &pool}) {
        std::vector<std::byte> got(want.size(), std::byte{0x5A});
        ASSERT_TRUE(ApplyScaleShift(view, *geometry, clamped, Out(out), got, p).ok());
        ASSERT_EQ(got, want) << "clamped " << DTypeName(in) << " -> " << DTypeName(out);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ApplyScaleShiftDriverTest,
    ::testing::Values(
        DriverCase{Layout::kNC, {1, 1}}, DriverCase{Layout::kNC, {1001, 1}},
        DriverCase{Layout::kNC, {517, 3}}, DriverCase{Layout::kNC, {100, 64}},
        DriverCase{Layout::kNC, {7, 1000}}, DriverCase{Layout::kNC, {3, 4099}},
        DriverCase{Layout::kNCHW, {5, 3, 1, 1}}, DriverCase{Layout::kNCHW, {9, 5, 2, 3}},
        DriverCase{Layout::kNCHW, {3, 700, 3, 3}}, DriverCase{Layout::kNCHW, {4, 3, 8, 8}},
        DriverCase{Layout::kNCHW, {2, 3, 71, 73}}, DriverCase{Layout::kNCHW, {300, 2, 40}},
        DriverCase{Layout::kNHWC, {2, 7, 9, 3}}, DriverCase{Layout::kNHWC, {3, 5, 5, 1000}},
        DriverCase{Layout::kNHWC, {64, 14, 14, 17}}),
    CaseName);

TEST(ApplyScaleShiftTest, LargeOutputTakesTheStreamingPathAndStillMatches) {
  // 36 MiB of float32 output: past the streaming threshold, split across the pool.
  const std::vector<int64_t> shape = {3, 3, 1024, 1024};
  const int64_t elements = ElementCount(shape);
  std::vector<std::byte> input(elements);
  for (int64_t i = 0; i < elements; ++i) input[i] = static_cast<std::byte>(i * 7919 % 251);
  const TensorView view{DType::kUInt8, shape, input};
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, 3, shape);
  const ScaleShift factors{{0.485 * 255, 0.456 * 255, 0.406 * 255},
                           {1 / (0.229 * 255), 1 / (0.224 * 255), 1 / (0.225 * 255)},
                           {0, 0, 0}};
  std::vector<std::byte> got(elements * 4);
  WorkerPool pool(2);
  ASSERT_TRUE(ApplyScaleShift(view, geometry, factors, Out(DType::kFloat32), got, &pool).ok());
  for (int64_t i = 0; i < elements; i += 4099) {
    const int64_t c = i / (1024 * 1024) % 3;
    const float want = static_cast<float>(
        (static_cast<double>(static_cast<uint8_t>(input[i])) - factors.center[c]) *
        factors.scale[c]);
    ASSERT_EQ(LoadElement<float>(got.data(), i), want) << "element " << i;
  }
}

}  // namespace
}  // namespace normd
