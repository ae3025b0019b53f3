// Throughput of normd's hot loops against yardsticks measured in the same run:
// memcpy of the same bytes and a read-only sum over the same input. Reports
// bytes/second (input + output bytes for normalise, input bytes for fit and sum).
//
//   build/bench/kernel_bench --benchmark_format=json > bench.json
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/affine_scheme.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"

namespace normd {
namespace {

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;

// Buffers are allocated and touched once per benchmark, outside the timed loop:
// a fresh large allocation costs page faults that are not the kernel's.
std::vector<std::byte> FilledBuffer(size_t bytes, uint64_t seed) {
  std::vector<std::byte> buffer(bytes);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    const float value = static_cast<float>(rng() % 1000) / 10.0f;
    std::memcpy(buffer.data() + i, &value, 4);
  }
  return buffer;
}

void BM_Memcpy(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  const std::vector<std::byte> in = FilledBuffer(bytes, 1);
  std::vector<std::byte> out(bytes, std::byte{1});
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(2 * bytes));
}

void BM_ReadOnlySum(benchmark::State& state) {
  const auto bytes = static_cast<size_t>(state.range(0));
  const std::vector<std::byte> in = FilledBuffer(bytes, 2);
  const auto* values = reinterpret_cast<const float*>(in.data());
  for (auto _ : state) {
    // 32 independent lanes: enough accumulators to hide add latency once vectorised.
    float sums[32] = {};
    for (size_t i = 0; i + 32 <= bytes / 4; i += 32) {
      for (int lane = 0; lane < 32; ++lane) sums[lane] += values[i + lane];
    }
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

struct Shape {
  Layout layout;
  std::vector<int64_t> dims;
  int64_t channels;
};

ScaleShift Factors(int64_t channels) {
  ReferenceStatistics ref;
  ref.count.assign(channels, 100);
  ref.mean.assign(channels, 50.0);
  ref.variance.assign(channels, 800.0);
  ref.min.assign(channels, 0.0);
  ref.max.assign(channels, 100.0);
  return *FoldScaleShift(ZScoreScheme{}, ref, channels);
}

// A kernel input of `dtype`: the fixed `shape`, or, when shape.dims has one element,
// [N, channels] with N chosen so the input holds state.range(0) bytes.
struct KernelInput {
  KernelInput(benchmark::State& state, DType dtype, Shape shape, uint64_t seed) : dims(shape.dims) {
    const auto item = static_cast<int64_t>(ElementSize(dtype));
    if (dims.size() == 1) {
      dims = {std::max<int64_t>(1, state.range(0) / item / shape.channels), shape.channels};
    }
    elements = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
    bytes = FilledBuffer(static_cast<size_t>(elements * item), seed);
    view = {dtype, dims, bytes};
    geometry = *ResolveGeometry(shape.layout, shape.channels, dims);
  }

  std::vector<int64_t> dims;
  int64_t elements = 0;
  std::vector<std::byte> bytes;
  TensorView view;
  ChannelGeometry geometry;
};

// Float32 output; bytes processed count input and output.
void NormalizeScalar(benchmark::State& state, DType dtype, Shape shape) {
  const KernelInput input(state, dtype, shape, 3);
  std::vector<std::byte> out(static_cast<size_t>(input.elements) * 4, std::byte{1});
  const ScaleShift factors = Factors(shape.channels);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ApplyScaleShift(input.view, input.geometry, factors, DType::kFloat32, out));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(input.bytes.size() + out.size()));
}

void FitScalar(benchmark::State& state, DType dtype, Shape shape) {
  const KernelInput input(state, dtype, shape, 4);
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.channels));
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ComputeBatchMoments(input.view, input.geometry, NonFinitePolicy::kReject, moments));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.bytes.size()));
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->Arg(256 * kKiB)->Arg(8 * kMiB)->Arg(256 * kMiB)->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Memcpy)->Apply(Sizes);
BENCHMARK(BM_ReadOnlySum)->Apply(Sizes);
// [N, F] sized by bytes: a one-element dims vector means "derive N".
BENCHMARK_CAPTURE(NormalizeScalar, f32_NC_F3, DType::kFloat32, Shape{Layout::kNC, {0}, 3})->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeScalar, f32_NC_F64, DType::kFloat32, Shape{Layout::kNC, {0}, 64})->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeScalar, f32_NC_F1000, DType::kFloat32, Shape{Layout::kNC, {0}, 1000})->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeScalar, u8_NC_F3, DType::kUInt8, Shape{Layout::kNC, {0}, 3})->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeScalar, f32_NCHW_64x3x224x224, DType::kFloat32,
                  Shape{Layout::kNCHW, {64, 3, 224, 224}, 3})->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(NormalizeScalar, u8_NCHW_64x3x224x224, DType::kUInt8,
                  Shape{Layout::kNCHW, {64, 3, 224, 224}, 3})->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(NormalizeScalar, f32_NCHW_256x64x28x28, DType::kFloat32,
                  Shape{Layout::kNCHW, {256, 64, 28, 28}, 64})->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FitScalar, f32_NC_F3, DType::kFloat32, Shape{Layout::kNC, {0}, 3})->Apply(Sizes);
BENCHMARK_CAPTURE(FitScalar, f32_NC_F1000, DType::kFloat32, Shape{Layout::kNC, {0}, 1000})->Apply(Sizes);
BENCHMARK_CAPTURE(FitScalar, f32_NCHW_64x3x224x224, DType::kFloat32,
                  Shape{Layout::kNCHW, {64, 3, 224, 224}, 3})->Arg(0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
