// Applies folded per-channel factors to a tensor.
#ifndef NORMD_CORE_APPLY_SCALE_SHIFT_H_
#define NORMD_CORE_APPLY_SCALE_SHIFT_H_

#include <cstddef>
#include <span>

#include "absl/status/status.h"
#include "core/affine_scheme.h"
#include "core/dtype.h"
#include "core/layout.h"
#include "core/tensor_view.h"

namespace normd {

// Output element types Normalize can produce.
bool IsSupportedOutputDType(DType dtype);

// y[o, c, i] = OutT(fma(double(x[o, c, i]) - center[c], scale[c], shift[c])): the
// affine map is evaluated in float64 around the channel's center and rounded once to
// the output type, so the output keeps full precision even when |mean| >> std.
// `input` must be validated and `geometry` resolved from its shape; `output` must
// hold exactly geometry.elements() elements of `output_dtype`.
absl::Status ApplyScaleShift(const TensorView& input, const ChannelGeometry& geometry,
                             const ScaleShift& factors, DType output_dtype,
                             std::span<std::byte> output);

}  // namespace normd

#endif  // NORMD_CORE_APPLY_SCALE_SHIFT_H_
