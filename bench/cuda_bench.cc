// The CUDA path's kernels on a GPU against yardsticks measured in the same run: a
// device-to-device copy of the same bytes (for normalise: it reads the input and writes
// an output of the same size) and a read-only reduction of the same bytes (for the
// fit). Times are the GPU's own (CUDA events around each launch on one stream); bytes
// are input + output for normalise and copies, input for fit and the reduction.
// Without a GPU every benchmark reports an error and none runs.
//
//   build/bench/cuda_bench --benchmark_format=json > cuda_bench.json
//   bench/cuda_path.py --build build      # this, torch's own kernels, and the server
#include <cuda_runtime.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda_yardsticks.h"
#include "benchmark/benchmark.h"
#include "core/cuda/device.h"
#include "core/cuda/device_moments.h"
#include "core/cuda/device_normalizer.h"
#include "core/frozen_normalizer.h"
#include "core/layout.h"

namespace normd {
namespace {

struct Shape {
  std::vector<int64_t> dims;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

const Shape kImages{{64, 3, 224, 224}};
const Shape kActivations{{256, 64, 28, 28}};

// Device memory filled with float32 values (or bytes) once, outside the timed loop.
struct DeviceArrays {
  cuda::DeviceBuffer input, output;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;

  bool Make(benchmark::State& state, size_t in_bytes, size_t out_bytes) {
    if (cuda::DeviceCount() == 0) {
      state.SkipWithError("no CUDA device");
      return false;
    }
    std::vector<unsigned char> host(in_bytes);
    std::mt19937 rng(1);
    for (size_t i = 0; i + 4 <= in_bytes; i += 4) {
      const float v = static_cast<float>(rng() % 1000) / 10.0f;
      std::memcpy(host.data() + i, &v, 4);
    }
    cudaStreamCreate(&stream);
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    if (!input.CopyFrom(host.data(), in_bytes, stream).ok() || !output.Reserve(out_bytes).ok()) {
      state.SkipWithError("cannot allocate device memory");
      return false;
    }
    cudaStreamSynchronize(stream);
    return true;
  }
  ~DeviceArrays() {
    if (stream != nullptr) {
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      cudaStreamDestroy(stream);
    }
  }

  // Times `launch` with events; reports the GPU's time.
  void Run(benchmark::State& state, const std::function<bool()>& launch, int64_t bytes) {
    for (int warm = 0; warm < 3; ++warm) launch();
    for (auto _ : state) {
      cudaEventRecord(start, stream);
      if (!launch()) {
        state.SkipWithError("launch failed");
        break;
      }
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      state.SetIterationTime(ms / 1e3);
    }
    state.SetBytesProcessed(state.iterations() * bytes);
  }
};

void BM_DeviceCopy(benchmark::State& state, Shape shape) {
  const auto bytes = static_cast<size_t>(shape.elements()) * 4;
  DeviceArrays a;
  if (!a.Make(state, bytes, bytes)) return;
  a.Run(
      state,
      [&] {
        return cudaMemcpyAsync(a.output.data(), a.input.data(), bytes, cudaMemcpyDeviceToDevice,
                               a.stream) == cudaSuccess;
      },
      static_cast<int64_t>(2 * bytes));
}

void BM_DeviceReadOnlySum(benchmark::State& state, Shape shape, size_t element_size) {
  const auto bytes = static_cast<size_t>(shape.elements()) * element_size;
  DeviceArrays a;
  if (!a.Make(state, bytes, sizeof(float))) return;
  a.Run(
      state,
      [&] {
        return bench::LaunchReadOnlySum(a.input.data(), bytes, static_cast<float*>(a.output.data()),
                                        a.stream) == cudaSuccess;
      },
      static_cast<int64_t>(bytes));
}

void BM_CudaNormalize(benchmark::State& state, Shape shape, DType in, DType out) {
  const int64_t n = shape.elements();
  const size_t in_bytes = static_cast<size_t>(n) * ElementSize(in);
  const size_t out_bytes = static_cast<size_t>(n) * ElementSize(out);
  DeviceArrays a;
  if (!a.Make(state, in_bytes, out_bytes)) return;
  const int64_t channels = shape.dims[1];
  ReferenceStatistics stats;
  for (int64_t c = 0; c < channels; ++c) {
    stats.count.push_back(100);
    stats.mean.push_back(50.0 + static_cast<double>(c));
    stats.variance.push_back(25.0);
    stats.min.push_back(0);
    stats.max.push_back(100);
  }
  const FrozenNormalizer host =
      *FrozenNormalizer::Create(ZScoreScheme{}, Layout::kNCHW, channels, stats);
  const cuda::DeviceFrozenNormalizer device = *cuda::DeviceFrozenNormalizer::Create(host, 0);
  const OutputDType out_type = *ValidateOutputDType(out);
  a.Run(
      state,
      [&] {
        return device.Apply({in, shape.dims, a.input.data()}, out_type, a.output.data(), a.stream)
            .ok();
      },
      static_cast<int64_t>(in_bytes + out_bytes));
}

void BM_CudaFit(benchmark::State& state, Shape shape, DType in) {
  const int64_t n = shape.elements();
  const size_t in_bytes = static_cast<size_t>(n) * ElementSize(in);
  DeviceArrays a;
  if (!a.Make(state, in_bytes, 0)) return;
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, shape.dims[1], shape.dims);
  std::vector<ChannelMoments> moments(static_cast<size_t>(shape.dims[1]));
  cuda::DeviceWorkspace workspace;
  // The moments come back to the host: the time includes that copy and its wait.
  a.Run(
      state,
      [&] {
        return cuda::ComputeBatchMoments({in, shape.dims, a.input.data()}, geometry,
                                         NonFinitePolicy::kSkip, moments, a.stream, workspace)
            .ok();
      },
      static_cast<int64_t>(in_bytes));
}

void BM_CudaBatchNormTraining(benchmark::State& state, Shape shape) {
  const int64_t n = shape.elements();
  const size_t bytes = static_cast<size_t>(n) * 4;
  DeviceArrays a;
  if (!a.Make(state, bytes, bytes)) return;
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, shape.dims[1], shape.dims);
  cuda::DeviceWorkspace workspace;
  const OutputDType f32;
  a.Run(
      state,
      [&] {
        return cuda::ApplyBatchNormTraining({}, {DType::kFloat32, shape.dims, a.input.data()},
                                            geometry, f32, a.output.data(), {}, a.stream, workspace)
            .ok();
      },
      static_cast<int64_t>(2 * bytes));
}

BENCHMARK_CAPTURE(BM_DeviceCopy, images_64x3x224x224, kImages)->UseManualTime();
BENCHMARK_CAPTURE(BM_DeviceCopy, activations_256x64x28x28, kActivations)->UseManualTime();
BENCHMARK_CAPTURE(BM_DeviceReadOnlySum, images_f32, kImages, 4)->UseManualTime();
BENCHMARK_CAPTURE(BM_DeviceReadOnlySum, images_u8, kImages, 1)->UseManualTime();
BENCHMARK_CAPTURE(BM_DeviceReadOnlySum, activations_f32, kActivations, 4)->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaNormalize, f32_images, kImages, DType::kFloat32, DType::kFloat32)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaNormalize, f32_activations, kActivations, DType::kFloat32, DType::kFloat32)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaNormalize, f16_images, kImages, DType::kFloat16, DType::kFloat16)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaNormalize, u8_images_to_f32, kImages, DType::kUInt8, DType::kFloat32)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaFit, f32_images, kImages, DType::kFloat32)->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaFit, f32_activations, kActivations, DType::kFloat32)->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaFit, u8_images, kImages, DType::kUInt8)->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaBatchNormTraining, f32_images, kImages)->UseManualTime();
BENCHMARK_CAPTURE(BM_CudaBatchNormTraining, f32_activations, kActivations)->UseManualTime();

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
