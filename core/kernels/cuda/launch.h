// Launchers of the CUDA kernels on device pointers, each on the caller's stream and
// asynchronous: they return the launch's error, never wait. The per-thread and
// per-block work they run is in scale_shift_map.h and segment_moments.h, which the
// host emulation test runs too. Built only with NORMD_CUDA (see core/cuda/ for the
// checked, C++-typed entry points).
#ifndef NORMD_CORE_KERNELS_CUDA_LAUNCH_H_
#define NORMD_CORE_KERNELS_CUDA_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstddef>

#include "core/dtype.h"
#include "core/kernels/cuda/scale_shift_map.h"
#include "core/kernels/cuda/segment_moments.h"

namespace normd::cuda_kernels {

// y = the map of x (see MapSpan): `in` any dtype, `out` float32, float64, float16 or
// bfloat16; x and y aligned to their element sizes.
cudaError_t LaunchScaleShiftMap(DType in, DType out, const void* x, void* y,
                                const MapGeometry& geometry, const MapFactors& factors,
                                cudaStream_t stream);

// Bytes of the slots LaunchSegmentMoments needs for `tiling` with input `in`.
size_t SegmentSlotBytes(DType in, const MomentTiling& tiling);

// The moments of every segment of x into segments[tiling.g.segments()]: the tiles'
// partials into `slots` (SegmentSlotBytes), then one merge per segment. The flat index
// of the first non-finite value goes to *first_nonfinite when it is below what is
// there (the caller sets kNoIndex first).
cudaError_t LaunchSegmentMoments(DType in, const void* x, const MomentTiling& tiling, void* slots,
                                 MomentPartial* segments, unsigned long long* first_nonfinite,
                                 cudaStream_t stream);

// The factors of a batch-statistics scheme for each unit's channels, from the
// segments' moments (FoldBatchStatistics): center, scale and shift hold
// g.units * g.channels entries; gamma and beta g.channels, or null.
cudaError_t LaunchFoldBatchStatistics(const SegmentGeometry& g, const MomentPartial* segments,
                                      double eps, const double* gamma, const double* beta,
                                      double* center, double* scale, double* shift,
                                      cudaStream_t stream);

}  // namespace normd::cuda_kernels

#endif  // NORMD_CORE_KERNELS_CUDA_LAUNCH_H_
