// Applies folded per-channel factors to a tensor.
#ifndef NORMD_CORE_APPLY_SCALE_SHIFT_H_
#define NORMD_CORE_APPLY_SCALE_SHIFT_H_

#include <cstddef>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "core/dtype.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// y[o, c, i] = Out((double(x[o, c, i]) - center[c]) * scale[c] + shift[c]): the
// affine map is evaluated in float64 around the channel's center and rounded once to
// the output type, so the output keeps full precision even when |mean| >> std. The
// result is the same on every SIMD target and equals the scalar reference bit for
// bit. `input` must be validated and `geometry` resolved from its shape; `output`
// must hold exactly geometry.elements() elements of `output_type`. Large tensors
// are split across `pool` when one is given.
absl::Status ApplyScaleShift(const TensorView& input, const ChannelGeometry& geometry,
                             const ScaleShift& factors, OutputDType output_type,
                             std::span<std::byte> output, WorkerPool* pool = nullptr);

// The clamp ranges rounded to the output type (and back, exactly): rounding is
// monotonic, so clamping the rounded value to the rounded bounds equals rounding the
// clamped float64 value. Every path that clamps (the CPU's, the CUDA kernels) uses these.
std::vector<ScaleShift::Range> RoundedClampRanges(DType out,
                                                  const std::vector<ScaleShift::Range>& ranges);

}  // namespace normd

#endif  // NORMD_CORE_APPLY_SCALE_SHIFT_H_
