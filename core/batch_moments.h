// Reduction of one batch to per-channel moments.
#ifndef NORMD_CORE_BATCH_MOMENTS_H_
#define NORMD_CORE_BATCH_MOMENTS_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/layout.h"
#include "core/nonfinite_policy.h"
#include "core/tensor_view.h"

namespace normd {

// Computes the moments of each channel of `batch` (already validated, with
// `geometry` resolved from its shape) into `out` (size geometry.channels),
// replacing what was there. Corrected two-pass algorithm with compensated sums:
// pass 1 gives count, sum, min and max; pass 2 sums d = x - mean and d^2, and
// M2 = sum(d^2) - sum(d)^2 / n. Returns the number of non-finite values skipped;
// under kReject, the first non-finite value is an INVALID_ARGUMENT naming it.
absl::StatusOr<uint64_t> ComputeBatchMoments(const TensorView& batch,
                                             const ChannelGeometry& geometry,
                                             NonFinitePolicy policy,
                                             std::span<ChannelMoments> out);

}  // namespace normd

#endif  // NORMD_CORE_BATCH_MOMENTS_H_
