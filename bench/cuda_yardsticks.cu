// Yardsticks for bench/cuda_bench.cc, measured in the same run as the kernels: a
// read-only reduction over the same bytes (what a fit cannot beat: it must read
// every byte once).
#include <cuda_runtime.h>

#include "bench/cuda_yardsticks.h"

namespace normd::bench {
namespace {

// Each thread sums 16-byte loads in a grid-stride loop; one atomic per block.
__global__ void ReadOnlySum(const float4* __restrict__ x, size_t vectors, float* out) {
  float sum = 0;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    sum += v.x + v.y + v.z + v.w;
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  __shared__ float warps[32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float block = 0;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) block += warps[w];
    atomicAdd(out, block);
  }
}

}  // namespace

cudaError_t LaunchReadOnlySum(const void* x, size_t bytes, float* out, cudaStream_t stream) {
  const size_t vectors = bytes / sizeof(float4);
  int multiprocessors = 132;
  int device = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device);
  ReadOnlySum<<<static_cast<unsigned>(multiprocessors * 8), 256, 0, stream>>>(
      static_cast<const float4*>(x), vectors, out);
  return cudaGetLastError();
}

}  // namespace normd::bench
