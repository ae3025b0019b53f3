// Throughput of normd's hot loops against yardsticks measured in the same run:
// memcpy of the same bytes, a read-only sum over the same input, a uint8 -> float32
// widening copy, and the kernels' scalar references. Reports bytes/second (input +
// output bytes for normalise and copies, input bytes for fit and sum). The SIMD
// kernels run single-threaded (no pool) unless the name says `pool2`.
//
//   build/bench/kernel_bench --benchmark_format=json --benchmark_min_time=0.3 > bench.json
//   bench/ratios.py bench.json
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/batch_norm_training.h"
#include "core/batch_sketch.h"
#include "core/frozen_scheme.h"
#include "core/kernels/scale_shift.h"
#include "core/per_sample_norm.h"
#include "core/piecewise_channel.h"
#include "core/sample_weights.h"

namespace normd {
namespace {

// Normalisation writes only the types ValidateOutputDType admits.
OutputDType Out(DType dtype) { return *ValidateOutputDType(dtype); }

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

// What reading uint8 and writing float32 costs when nothing else is done: the
// bound for the uint8 normalise path. Compiled at -O3, so it is vectorised.
void BM_WidenU8ToF32(benchmark::State& state) {
  const auto elements = static_cast<size_t>(state.range(0));
  const std::vector<std::byte> in = FilledBuffer(elements, 5);
  std::vector<float> out(elements, 1.0f);
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.data());
  for (auto _ : state) {
    for (size_t i = 0; i < elements; ++i) out[i] = static_cast<float>(bytes[i]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(elements * 5));
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

// The scalar reference kernels, walked the simple way: a row of factors for [N, F],
// one run per (sample, channel) for NCHW.
void ReferenceNormalize(const KernelInput& input, const Shape& shape, const ScaleShift& f,
                        std::vector<std::byte>& out) {
  const auto& g = input.geometry;
  if (shape.layout == Layout::kNC) {
    ScaleShiftRowsReference(input.view.dtype, DType::kFloat32, input.bytes.data(),
                            static_cast<size_t>(g.outer), static_cast<size_t>(g.channels),
                            f.center.data(), f.scale.data(), f.shift.data(), out.data());
    return;
  }
  const size_t in_size = ElementSize(input.view.dtype);
  const auto inner = static_cast<size_t>(g.inner);
  for (size_t run = 0; run < static_cast<size_t>(g.outer * g.channels); ++run) {
    const size_t c = run % static_cast<size_t>(g.channels);
    ScaleShiftRunReference(input.view.dtype, DType::kFloat32,
                           input.bytes.data() + run * inner * in_size, inner, f.center[c],
                           f.scale[c], f.shift[c], out.data() + run * inner * 4);
  }
}

// Float32 output; bytes processed count input and output.
void Normalize(benchmark::State& state, DType dtype, Shape shape, int kernel) {
  enum { kSimd = 0, kScalar = 1, kSimdPool2 = 2 };
  const KernelInput input(state, dtype, shape, 3);
  std::vector<std::byte> out(static_cast<size_t>(input.elements) * 4, std::byte{1});
  const ScaleShift factors = Factors(shape.channels);
  WorkerPool pool(kernel == kSimdPool2 ? 1 : 0);  // one worker + the calling thread
  for (auto _ : state) {
    if (kernel == kScalar) {
      ReferenceNormalize(input, shape, factors, out);
    } else {
      benchmark::DoNotOptimize(
          ApplyScaleShift(input.view, input.geometry, factors, Out(DType::kFloat32), out, &pool));
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(input.bytes.size() + out.size()));
  state.SetLabel(kernel == kScalar ? "scalar" : KernelTargetName());
}

constexpr int kSimd = 0, kScalar = 1, kSimdPool2 = 2;

void Fit(benchmark::State& state, DType dtype, Shape shape, int kernel) {
  enum { kSimd = 0, kScalar = 1, kSimdPool2 = 2 };
  const KernelInput input(state, dtype, shape, 4);
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.channels));
  WorkerPool pool(kernel == kSimdPool2 ? 1 : 0);
  for (auto _ : state) {
    if (kernel == kScalar) {
      benchmark::DoNotOptimize(ComputeBatchMomentsReference(input.view, input.geometry,
                                                            NonFinitePolicy::kReject, moments));
    } else {
      benchmark::DoNotOptimize(ComputeBatchMoments(input.view, input.geometry,
                                                   NonFinitePolicy::kReject, moments, &pool));
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.bytes.size()));
  state.SetLabel(kernel == kScalar ? "scalar" : KernelTargetName());
}

// A quantile transform of `knots` pieces per channel (a piecewise-linear map, the
// kernel of the quantile and bucketize schemes), float32 out; bytes as Normalize. The
// input's values are spread over [0, 100), and so are the knots.
void NormalizePiecewise(benchmark::State& state, DType dtype, Shape shape, int knots) {
  const KernelInput input(state, dtype, shape, 6);
  std::vector<std::byte> out(static_cast<size_t>(input.elements) * 4, std::byte{1});
  std::vector<AffinePiece> pieces = {{0.0, 0.0, 0.0, 0.0}};
  for (int k = 0; k < knots - 1; ++k) {
    const double x0 = 100.0 * k / (knots - 1), x1 = 100.0 * (k + 1) / (knots - 1);
    pieces.push_back(
        {x0, x0, (1.0 / (knots - 1)) / (x1 - x0), static_cast<double>(k) / (knots - 1)});
  }
  const std::vector<PiecewiseChannel> maps(static_cast<size_t>(shape.channels),
                                           PiecewiseChannel::Make(pieces, 0.0, 1.0));
  WorkerPool pool(0);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ApplyPiecewiseMap(input.view, input.geometry, maps, Out(DType::kFloat32), out, &pool));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(input.bytes.size() + out.size()));
  state.SetLabel(KernelTargetName());
}

// The fit of a dataset that keeps quantile sketches (the default): the moments, then
// every value into its channel's sketch, as IngestDelta::AddBatch does. The
// yardstick is Fit of the same input in the same run.
void FitSketch(benchmark::State& state, DType dtype, Shape shape, int kernel) {
  const KernelInput input(state, dtype, shape, 4);
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.channels));
  const QuantileSketchSpec spec;
  std::vector<QuantileSketch> sketches = EmptySketches(spec, moments.size());
  WorkerPool pool(kernel == kSimdPool2 ? 1 : 0);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ComputeBatchMoments(input.view, input.geometry, NonFinitePolicy::kReject, moments, &pool));
    if (kernel == kScalar) {
      AddBatchToSketchesReference(input.view, input.geometry, spec, sketches);
    } else {
      AddBatchToSketches(input.view, input.geometry, spec, sketches, &pool);
    }
    benchmark::DoNotOptimize(sketches.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.bytes.size()));
  state.SetLabel(kernel == kScalar ? "scalar" : KernelTargetName());
}

// The weighted fit: one float64 weight per sample (per_value false: [N]) or per value
// (a mask of the batch's shape), 0 for a quarter of them. The weights' conversion is
// not timed (ResolveSampleWeights, once per batch, as a caller's dtype may need); bytes
// count the batch alone, so the ratio to the yardstick (Fit of the same input in the
// same run) is the ratio of times.
void FitWeighted(benchmark::State& state, DType dtype, Shape shape, int kernel, bool per_value,
                 bool sketch = false) {
  const KernelInput input(state, dtype, shape, 4);
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.channels));
  const QuantileSketchSpec spec;
  std::vector<QuantileSketch> sketches = EmptySketches(spec, moments.size());
  const std::vector<int64_t> weight_shape =
      per_value ? input.dims : std::vector<int64_t>{input.dims[0]};
  std::vector<double> weights(static_cast<size_t>(
      std::accumulate(weight_shape.begin(), weight_shape.end(), int64_t{1}, std::multiplies<>())));
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = i % 4 == 0 ? 0.0 : 0.5 * (i % 3 + 1);
  std::vector<double> storage;
  const SampleWeights resolved =
      *ResolveSampleWeights({DType::kFloat64, weight_shape, std::as_bytes(std::span(weights))},
                            input.dims, "weights", storage);
  WorkerPool pool(kernel == kSimdPool2 ? 1 : 0);
  for (auto _ : state) {
    if (kernel == kScalar) {
      benchmark::DoNotOptimize(ComputeBatchMomentsReference(
          input.view, input.geometry, NonFinitePolicy::kReject, moments, &resolved));
    } else {
      benchmark::DoNotOptimize(ComputeBatchMoments(
          input.view, input.geometry, NonFinitePolicy::kReject, moments, &pool, &resolved));
    }
    if (sketch) {
      AddBatchToSketches(input.view, input.geometry, spec, sketches, &pool, &resolved);
      benchmark::DoNotOptimize(sketches.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.bytes.size()));
  state.SetLabel(kernel == kScalar ? "scalar" : KernelTargetName());
}

// The batch-statistics families: one call reduces and normalises (float32 out), so
// the input is read twice, the second time from cache, and the output written once;
// bytes processed count input and output, as for Normalize. `scheme` empty means
// batch norm in training mode.
void NormalizeBatchStatistics(benchmark::State& state, Shape shape,
                              std::optional<PerSampleScheme> scheme, int kernel) {
  const KernelInput input(state, DType::kFloat32, shape, 5);
  std::vector<std::byte> out(static_cast<size_t>(input.elements) * 4, std::byte{1});
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.channels));
  WorkerPool pool(kernel == 2 ? 1 : 0);
  std::optional<GroupedGeometry> grouped;
  if (scheme.has_value()) {
    grouped = *ResolvePerSampleGeometry(*scheme, input.dims, &input.geometry);
  }
  for (auto _ : state) {
    if (scheme.has_value()) {
      benchmark::DoNotOptimize(
          ApplyPerSampleNorm(*scheme, input.view, *grouped, Out(DType::kFloat32), out, &pool));
    } else {
      benchmark::DoNotOptimize(ApplyBatchNormTraining({}, input.view, input.geometry,
                                                      Out(DType::kFloat32), out, moments, &pool));
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(input.bytes.size() + out.size()));
  state.SetLabel(KernelTargetName());
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->Arg(256 * kKiB)->Arg(8 * kMiB)->Arg(256 * kMiB)->Unit(benchmark::kMicrosecond);
}

void ImageShape(benchmark::internal::Benchmark* b) { b->Arg(0)->Unit(benchmark::kMicrosecond); }

const Shape kImageRgb{Layout::kNCHW, {64, 3, 224, 224}, 3};

// Also at the image batch's bytes, float32 and uint8 ([64, 3, 224, 224]).
constexpr int64_t kImageF32Bytes = int64_t{64} * 3 * 224 * 224 * 4;
constexpr int64_t kImageU8Bytes = kImageF32Bytes / 4;
BENCHMARK(BM_Memcpy)->Apply(Sizes)->Arg(kImageF32Bytes);
BENCHMARK(BM_ReadOnlySum)->Apply(Sizes)->Arg(kImageU8Bytes)->Arg(kImageF32Bytes);
BENCHMARK(BM_WidenU8ToF32)->Apply(Sizes);
// [N, F] sized by bytes: a one-element dims vector means "derive N".
#define NORMD_NORMALIZE_BENCH(name, dtype, shape, apply)                 \
  BENCHMARK_CAPTURE(Normalize, name##_simd, dtype, shape, kSimd)->apply; \
  BENCHMARK_CAPTURE(Normalize, name##_scalar, dtype, shape, kScalar)->apply
#define NORMD_FIT_BENCH(name, dtype, shape, apply)                 \
  BENCHMARK_CAPTURE(Fit, name##_simd, dtype, shape, kSimd)->apply; \
  BENCHMARK_CAPTURE(Fit, name##_scalar, dtype, shape, kScalar)->apply

NORMD_NORMALIZE_BENCH(f32_NC_F3, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}), Apply(Sizes));
NORMD_NORMALIZE_BENCH(f32_NC_F64, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}), Apply(Sizes));
NORMD_NORMALIZE_BENCH(f32_NC_F1000, DType::kFloat32, (Shape{Layout::kNC, {0}, 1000}), Apply(Sizes));
NORMD_NORMALIZE_BENCH(u8_NC_F3, DType::kUInt8, (Shape{Layout::kNC, {0}, 3}), Apply(Sizes));
NORMD_NORMALIZE_BENCH(f32_NCHW_64x3x224x224, DType::kFloat32, kImageRgb, Apply(ImageShape));
NORMD_NORMALIZE_BENCH(u8_NCHW_64x3x224x224, DType::kUInt8, kImageRgb, Apply(ImageShape));
NORMD_NORMALIZE_BENCH(f32_NCHW_256x64x28x28, DType::kFloat32,
                      (Shape{Layout::kNCHW, {256, 64, 28, 28}, 64}), Apply(ImageShape));
BENCHMARK_CAPTURE(Normalize, f32_NC_F64_pool2, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}),
                  kSimdPool2)
    ->Arg(256 * kMiB)
    ->Unit(benchmark::kMicrosecond);

NORMD_FIT_BENCH(f32_NC_F3, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}), Apply(Sizes));
NORMD_FIT_BENCH(f32_NC_F64, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}), Apply(Sizes));
NORMD_FIT_BENCH(f32_NC_F1000, DType::kFloat32, (Shape{Layout::kNC, {0}, 1000}), Apply(Sizes));
NORMD_FIT_BENCH(f32_NCHW_64x3x224x224, DType::kFloat32, kImageRgb, Apply(ImageShape));
NORMD_FIT_BENCH(u8_NCHW_64x3x224x224, DType::kUInt8, kImageRgb, Apply(ImageShape));
NORMD_FIT_BENCH(f32_NCHW_256x64x28x28, DType::kFloat32,
                (Shape{Layout::kNCHW, {256, 64, 28, 28}, 64}), Apply(ImageShape));
BENCHMARK_CAPTURE(Fit, f32_NC_F64_pool2, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}), kSimdPool2)
    ->Arg(256 * kMiB)
    ->Unit(benchmark::kMicrosecond);
// Sample weights ([N]) and masks (the batch's shape); yardstick: the Fit row of the name.
#define NORMD_FIT_WEIGHTED_BENCH(name, dtype, shape, per_value, apply)                \
  BENCHMARK_CAPTURE(FitWeighted, name##_simd, dtype, shape, kSimd, per_value)->apply; \
  BENCHMARK_CAPTURE(FitWeighted, name##_scalar, dtype, shape, kScalar, per_value)->apply
NORMD_FIT_WEIGHTED_BENCH(f32_NC_F3, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}), false,
                         Arg(8 * kMiB)->Unit(benchmark::kMicrosecond));
NORMD_FIT_WEIGHTED_BENCH(f32_NC_F64, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}), false,
                         Arg(8 * kMiB)->Unit(benchmark::kMicrosecond));
NORMD_FIT_WEIGHTED_BENCH(f32_NCHW_64x3x224x224, DType::kFloat32, kImageRgb, false,
                         Apply(ImageShape));
BENCHMARK_CAPTURE(FitWeighted, mask_f32_NCHW_64x3x224x224_simd, DType::kFloat32, kImageRgb, kSimd,
                  true)
    ->Apply(ImageShape);
// With the sketches a dataset keeps by default; yardstick: the FitSketch row of the name.
BENCHMARK_CAPTURE(FitWeighted, sketch_f32_NC_F3_simd, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}),
                  kSimd, false, true)
    ->Arg(8 * kMiB)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FitWeighted, sketch_f32_NCHW_64x3x224x224_simd, DType::kFloat32, kImageRgb, kSimd,
                  false, true)
    ->Apply(ImageShape);
// The quantile transform (1000 knots) and bucketize-like maps (4 pieces) at the
// normalise sizes; yardstick memcpy.
BENCHMARK_CAPTURE(NormalizePiecewise, quantile1000_f32_NC_F1_simd, DType::kFloat32,
                  (Shape{Layout::kNC, {0}, 1}), 1000)
    ->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizePiecewise, quantile1000_f32_NCHW_64x3x224x224_simd, DType::kFloat32,
                  kImageRgb, 1000)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(NormalizePiecewise, bucketize4_f32_NC_F1_simd, DType::kFloat32,
                  (Shape{Layout::kNC, {0}, 1}), 4)
    ->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizePiecewise, quantile1000_f32_NC_F3_simd, DType::kFloat32,
                  (Shape{Layout::kNC, {0}, 3}), 1000)
    ->Apply(Sizes);
// The fit with quantile sketches; its yardstick is the Fit row of the same name.
BENCHMARK_CAPTURE(FitSketch, f32_NC_F3_simd, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}), kSimd)
    ->Apply(Sizes);
BENCHMARK_CAPTURE(FitSketch, f32_NC_F3_scalar, DType::kFloat32, (Shape{Layout::kNC, {0}, 3}),
                  kScalar)
    ->Arg(256 * kKiB)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(FitSketch, f32_NC_F64_simd, DType::kFloat32, (Shape{Layout::kNC, {0}, 64}), kSimd)
    ->Apply(Sizes);
BENCHMARK_CAPTURE(FitSketch, f32_NCHW_64x3x224x224_simd, DType::kFloat32, kImageRgb, kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(FitSketch, u8_NCHW_64x3x224x224_simd, DType::kUInt8, kImageRgb, kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(FitSketch, f32_NCHW_256x64x28x28_simd, DType::kFloat32,
                  (Shape{Layout::kNCHW, {256, 64, 28, 28}, 64}), kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(FitSketch, f32_NCHW_64x3x224x224_pool2, DType::kFloat32, kImageRgb, kSimdPool2)
    ->Apply(ImageShape);
// What a caller's process gets on two cores (normd.moments, LocalNormalizer use a pool).
BENCHMARK_CAPTURE(Fit, f32_NCHW_64x3x224x224_pool2, DType::kFloat32, kImageRgb, kSimdPool2)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(Fit, u8_NCHW_64x3x224x224_pool2, DType::kUInt8, kImageRgb, kSimdPool2)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(Normalize, f32_NCHW_64x3x224x224_pool2, DType::kFloat32, kImageRgb, kSimdPool2)
    ->Apply(ImageShape);

// Layer norm over transformer rows; group and instance norm on ResNet-sized maps;
// batch norm in training mode on an RGB batch.
const Shape kTokens{Layout::kNC, {0}, 768};
const Shape kFeatureMaps{Layout::kNCHW, {32, 64, 56, 56}, 64};
const Shape kFeatureMapsLast{Layout::kNHWC, {32, 56, 56, 64}, 64};
BENCHMARK_CAPTURE(NormalizeBatchStatistics, layer_f32_F768_simd, kTokens,
                  PerSampleScheme(LayerNormScheme{{768}, {}, {}, kDefaultEps}), kSimd)
    ->Apply(Sizes);
BENCHMARK_CAPTURE(NormalizeBatchStatistics, group32_f32_NCHW_32x64x56x56_simd, kFeatureMaps,
                  PerSampleScheme(GroupNormScheme{32, {}, {}, kDefaultEps}), kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(NormalizeBatchStatistics, group32_f32_NHWC_32x56x56x64_simd, kFeatureMapsLast,
                  PerSampleScheme(GroupNormScheme{32, {}, {}, kDefaultEps}), kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(NormalizeBatchStatistics, instance_f32_NCHW_32x64x56x56_simd, kFeatureMaps,
                  PerSampleScheme(InstanceNormScheme{}), kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(NormalizeBatchStatistics, batchtrain_f32_NCHW_64x3x224x224_simd, kImageRgb,
                  std::nullopt, kSimd)
    ->Apply(ImageShape);
BENCHMARK_CAPTURE(NormalizeBatchStatistics, group32_f32_NCHW_32x64x56x56_pool2, kFeatureMaps,
                  PerSampleScheme(GroupNormScheme{32, {}, {}, kDefaultEps}), kSimdPool2)
    ->Apply(ImageShape);

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
