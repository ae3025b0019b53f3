// The CUDA path on a real GPU (ctest label `cuda`): the frozen map gives the CPU's bits
// for every affine scheme, dtype and layout; the fit and the batch-statistics schemes
// give the host emulation's bits (same functions, same order, no contraction), which
// tests/core/kernels/cuda_emulation_test.cc holds to exact arithmetic and to the CPU.
// Without a GPU (or a driver) every test skips and says so.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/cuda/device.h"
#include "core/cuda/device_moments.h"
#include "core/cuda/device_normalizer.h"
#include "core/frozen_normalizer.h"
#include "core/layout.h"
#include "tests/support/cuda_emulation.h"
#include "tests/support/kernel_input.h"

namespace normd {
namespace {

using cuda::DeviceBuffer;

class DeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::DeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device (or no driver) here: the device tests need a GPU; the "
                      "host emulation test covers the kernels' code on every build";
    }
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // `bytes` on the device.
  void* Upload(DeviceBuffer& buffer, const std::vector<std::byte>& bytes) {
    EXPECT_TRUE(buffer.CopyFrom(bytes.data(), bytes.size(), stream_).ok());
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    return buffer.data();
  }
  std::vector<std::byte> Download(const void* device, size_t bytes) {
    std::vector<std::byte> host(bytes);
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), device, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

  cudaStream_t stream_ = nullptr;
};

struct Case {
  std::optional<Layout> layout;
  std::vector<int64_t> shape;
};

std::vector<Case> Cases() {
  return {{Layout::kNC, {333, 7}},         {Layout::kNCHW, {5, 3, 4, 6}},
          {Layout::kNCHW, {8, 3, 64, 64}}, {Layout::kNHWC, {4, 32, 32, 3}},
          {Layout::kNHWC, {2, 9, 11, 16}}, {std::nullopt, {4, 10001}}};
}

int64_t ChannelsOf(const Case& c) {
  if (!c.layout.has_value()) return 1;
  return *c.layout == Layout::kNHWC ? c.shape.back() : c.shape[1];
}

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TEST_F(DeviceTest, FrozenMapIsTheCpusBitForBit) {
  std::mt19937_64 rng(1);
  for (const Case& c : Cases()) {
    const int64_t channels = ChannelsOf(c);
    std::vector<double> gamma(channels, 1.5), beta(channels, -0.25);
    const std::vector<FrozenScheme> schemes = {ZScoreScheme{}, MinMaxScheme{-1.0, 1.0, true},
                                               FixedScaleScheme{1.0 / 255, 0.0},
                                               BatchNormScheme{gamma, beta, 1e-3}};
    for (const FrozenScheme& scheme : schemes) {
      const FrozenNormalizer host = *FrozenNormalizer::Create(
          scheme, c.layout, channels, testing::SyntheticStatistics(channels));
      absl::StatusOr<cuda::DeviceFrozenNormalizer> device =
          cuda::DeviceFrozenNormalizer::Create(host, 0);
      ASSERT_TRUE(device.ok()) << device.status();
      for (DType in : testing::kKernelInputs) {
        const int64_t n = Elements(c.shape);
        const std::vector<std::byte> x = testing::RandomInput(in, n, rng);
        DeviceBuffer input, output;
        const void* device_x = Upload(input, x);
        for (DType out : testing::kKernelOutputs) {
          const size_t bytes = static_cast<size_t>(n) * ElementSize(out);
          std::vector<std::byte> cpu(bytes);
          const ValidatedTensor tensor = *ValidateTensor(TensorView{in, c.shape, x});
          ASSERT_TRUE(host.Apply(tensor, *ValidateOutputDType(out), cpu).ok());
          void* device_y = *output.Reserve(bytes);
          ASSERT_TRUE(
              device->Apply({in, c.shape, device_x}, *ValidateOutputDType(out), device_y, stream_)
                  .ok());
          // NaN payloads are the hardware's own: compare NaNs as NaNs, the rest by bits.
          const std::vector<std::byte> gpu = Download(device_y, bytes);
          VisitOutputDType(out, [&](auto tag) {
            using Out = decltype(tag);
            for (int64_t i = 0; i < n; ++i) {
              const double a = ToDouble(LoadElement<Out>(cpu.data(), i));
              const double b = ToDouble(LoadElement<Out>(gpu.data(), i));
              if (std::isnan(a)) {
                ASSERT_TRUE(std::isnan(b)) << i;
                continue;
              }
              ASSERT_EQ(std::memcmp(cpu.data() + i * sizeof(Out), gpu.data() + i * sizeof(Out),
                                    sizeof(Out)),
                        0)
                  << "element " << i << ": cpu " << a << ", gpu " << b << " (" << DTypeName(in)
                  << " -> " << DTypeName(out) << ")";
            }
          });
        }
      }
    }
  }
}

TEST_F(DeviceTest, FitIsTheEmulationsBitsAndTheCpusMoments) {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> noise(1e4, 3.0);
  for (const Case& c : Cases()) {
    if (!c.layout.has_value()) continue;
    const int64_t channels = ChannelsOf(c);
    const ChannelGeometry geometry = *ResolveGeometry(*c.layout, channels, c.shape);
    for (DType dtype : testing::kKernelInputs) {
      const int64_t n = Elements(c.shape);
      std::vector<std::byte> x(n * ElementSize(dtype));
      VisitDType(dtype, [&](auto tag) {
        using T = decltype(tag);
        for (int64_t i = 0; i < n; ++i) {
          const double v = dtype == DType::kUInt8 ? static_cast<double>(rng() % 256) : noise(rng);
          if constexpr (std::is_same_v<T, Float16>) {
            StoreElement(x.data(), i, Float16{DoubleToFloat16Bits(v / 100)});
          } else if constexpr (std::is_same_v<T, BFloat16>) {
            StoreElement(x.data(), i, BFloat16{DoubleToBFloat16Bits(v / 100)});
          } else {
            StoreElement(x.data(), i, static_cast<T>(v));
          }
        }
      });
      DeviceBuffer input;
      const void* device_x = Upload(input, x);
      cuda::DeviceWorkspace workspace;
      std::vector<ChannelMoments> gpu(channels), cpu(channels);
      absl::StatusOr<uint64_t> skipped = cuda::ComputeBatchMoments(
          {dtype, c.shape, device_x}, geometry, NonFinitePolicy::kReject, gpu, stream_, workspace);
      ASSERT_TRUE(skipped.ok()) << skipped.status();
      EXPECT_EQ(*skipped, 0u);
      ASSERT_TRUE(ComputeBatchMoments(TensorView{dtype, c.shape, x}, geometry,
                                      NonFinitePolicy::kReject, cpu)
                      .ok());
      const cuda_kernels::SegmentGeometry g{
          1, static_cast<uint64_t>(geometry.outer), static_cast<uint64_t>(channels),
          static_cast<uint64_t>(geometry.inner), static_cast<uint64_t>(channels)};
      const testing::EmulatedMoments emulated = testing::EmulateSegmentMoments(dtype, x.data(), g);
      for (int64_t ch = 0; ch < channels; ++ch) {
        SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << ", channel " << ch);
        EXPECT_EQ(gpu[ch].count, cpu[ch].count);
        EXPECT_EQ(gpu[ch].min, cpu[ch].min);
        EXPECT_EQ(gpu[ch].max, cpu[ch].max);
        EXPECT_EQ(gpu[ch].mean.hi, emulated.segments[ch].mean.hi);
        EXPECT_EQ(gpu[ch].mean.lo, emulated.segments[ch].mean.lo);
        EXPECT_EQ(gpu[ch].m2.hi, emulated.segments[ch].m2.hi);
        EXPECT_EQ(gpu[ch].m2.lo, emulated.segments[ch].m2.lo);
        if (dtype == DType::kUInt8) {
          EXPECT_EQ(gpu[ch].mean.hi, cpu[ch].mean.hi);
          EXPECT_EQ(gpu[ch].m2.hi, cpu[ch].m2.hi);
        }
      }
    }
  }
}

TEST_F(DeviceTest, RejectedNonFiniteValueIsNamedAsTheCpuNamesIt) {
  const std::vector<int64_t> shape = {4, 3, 50, 50};
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, 3, shape);
  std::vector<float> values(Elements(shape), 1.0f);
  values[7777] = std::numeric_limits<float>::infinity();
  values[9000] = std::numeric_limits<float>::quiet_NaN();
  const auto bytes = std::as_bytes(std::span(values));
  const std::vector<std::byte> x(bytes.begin(), bytes.end());
  DeviceBuffer input;
  const void* device_x = Upload(input, x);
  cuda::DeviceWorkspace workspace;
  std::vector<ChannelMoments> gpu(3), cpu(3);
  const absl::StatusOr<uint64_t> on_gpu =
      cuda::ComputeBatchMoments({DType::kFloat32, shape, device_x}, geometry,
                                NonFinitePolicy::kReject, gpu, stream_, workspace);
  const absl::StatusOr<uint64_t> on_cpu = ComputeBatchMoments(
      TensorView{DType::kFloat32, shape, x}, geometry, NonFinitePolicy::kReject, cpu);
  EXPECT_EQ(on_gpu.status(), on_cpu.status());
  const absl::StatusOr<uint64_t> skipped =
      cuda::ComputeBatchMoments({DType::kFloat32, shape, device_x}, geometry,
                                NonFinitePolicy::kSkip, gpu, stream_, workspace);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 2u);
}

TEST_F(DeviceTest, BatchStatisticsSchemesAreTheEmulationsBits) {
  std::mt19937_64 rng(3);
  const std::vector<int64_t> shape = {8, 4, 30, 30};
  const std::vector<double> gamma = {0.5, 2.0, -1.0, 3.0}, beta = {0.0, 1.0, -2.0, 0.25};
  const std::vector<std::byte> x = testing::RandomInput(DType::kFloat32, Elements(shape), rng);
  DeviceBuffer input, output;
  const void* device_x = Upload(input, x);
  void* device_y = *output.Reserve(x.size());
  cuda::DeviceWorkspace workspace;
  const OutputDType f32 = *ValidateOutputDType(DType::kFloat32);
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, 4, shape);
  const auto check = [&](const cuda_kernels::SegmentGeometry& g, double eps) {
    const testing::EmulatedMoments moments =
        testing::EmulateSegmentMoments(DType::kFloat32, x.data(), g);
    const testing::EmulatedFactors f = testing::EmulateFold(g, moments.segments, eps, gamma, beta);
    std::vector<std::byte> emulated(x.size());
    testing::EmulateScaleShiftMap(
        DType::kFloat32, DType::kFloat32, x.data(), emulated.data(),
        {static_cast<uint64_t>(Elements(shape)), g.unit_elements(), g.channels, g.inner},
        {f.center.data(), f.scale.data(), f.shift.data()});
    const std::vector<std::byte> gpu = Download(device_y, x.size());
    for (size_t i = 0; i < gpu.size() / 4; ++i) {
      const float a = LoadElement<float>(emulated.data(), i), b = LoadElement<float>(gpu.data(), i);
      if (std::isnan(a) && std::isnan(b)) continue;
      ASSERT_EQ(std::memcmp(&a, &b, 4), 0) << "element " << i;
    }
  };
  ASSERT_TRUE(cuda::ApplyBatchNormTraining({gamma, beta, 1e-5}, {DType::kFloat32, shape, device_x},
                                           geometry, f32, device_y, {}, stream_, workspace)
                  .ok());
  check({1, 8, 4, 900, 4}, 1e-5);
  const PerSampleScheme group = GroupNormScheme{2, gamma, beta, 1e-5};
  const GroupedGeometry grouped = *ResolvePerSampleGeometry(group, shape, &geometry);
  ASSERT_TRUE(cuda::ApplyPerSampleNorm(group, {DType::kFloat32, shape, device_x}, grouped, f32,
                                       device_y, stream_, workspace)
                  .ok());
  check({8, 1, 4, 900, 2}, 1e-5);
}

TEST_F(DeviceTest, RefusesHostMemoryAndPiecewiseSchemes) {
  const FrozenNormalizer host =
      *FrozenNormalizer::Create(ZScoreScheme{}, Layout::kNC, 2, testing::SyntheticStatistics(2));
  const cuda::DeviceFrozenNormalizer device = *cuda::DeviceFrozenNormalizer::Create(host, 0);
  std::vector<float> on_host(8), out(8);
  const std::vector<int64_t> shape = {4, 2};
  const absl::Status status =
      device.Apply({DType::kFloat32, shape, on_host.data()}, *ValidateOutputDType(DType::kFloat32),
                   out.data(), stream_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("device memory"), std::string::npos) << status;
  ReferenceStatistics stats = testing::SyntheticStatistics(2);
  stats.quantile_ranks = {0.5};
  stats.quantiles = {{0.0}, {1.0}};
  const absl::StatusOr<FrozenNormalizer> bucketize =
      FrozenNormalizer::Create(BucketizeScheme{{0.5}}, Layout::kNC, 2, stats);
  ASSERT_TRUE(bucketize.ok()) << bucketize.status();
  EXPECT_EQ(cuda::DeviceFrozenNormalizer::Create(*bucketize, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace normd
