#ifndef NORMD_BENCH_CUDA_YARDSTICKS_H_
#define NORMD_BENCH_CUDA_YARDSTICKS_H_

#include <cuda_runtime_api.h>

#include <cstddef>

namespace normd::bench {

// Sums `bytes` of float32 at x (device memory, 16-byte aligned) into *out.
cudaError_t LaunchReadOnlySum(const void* x, size_t bytes, float* out, cudaStream_t stream);

}  // namespace normd::bench

#endif  // NORMD_BENCH_CUDA_YARDSTICKS_H_
