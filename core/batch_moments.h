// Reduction of one batch to per-channel moments.
#ifndef NORMD_CORE_BATCH_MOMENTS_H_
#define NORMD_CORE_BATCH_MOMENTS_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/layout.h"
#include "core/nonfinite_policy.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// Computes the moments of each channel of `batch` (already validated, with
// `geometry` resolved from its shape) into `out` (size geometry.channels),
// replacing what was there, using the SIMD moment kernels (see batch_moments.cc for
// the error bound; uint8 is summed exactly in integers, core/u8_batch_moments.h). Returns the
// number of non-finite values skipped; under kReject, the first non-finite value in flat order is
// an INVALID_ARGUMENT naming it. Large batches are split across `pool` when one is given; the
// result does not depend on the pool's size. With `weights` the moments are weighted
// (core/channel_moments.h): a value of weight 0 is left out before the policy sees it.
absl::StatusOr<uint64_t> ComputeBatchMoments(const TensorView& batch,
                                             const ChannelGeometry& geometry,
                                             NonFinitePolicy policy, std::span<ChannelMoments> out,
                                             WorkerPool* pool = nullptr,
                                             const SampleWeights* weights = nullptr);

// The scalar reference, same contract: a corrected two-pass algorithm with
// compensated sums. Pass 1 gives count, sum, min and max; pass 2 sums d = x - mean
// and d^2, and M2 = sum(d^2) - sum(d)^2 / n.
absl::StatusOr<uint64_t> ComputeBatchMomentsReference(const TensorView& batch,
                                                      const ChannelGeometry& geometry,
                                                      NonFinitePolicy policy,
                                                      std::span<ChannelMoments> out,
                                                      const SampleWeights* weights = nullptr);

// The INVALID_ARGUMENT both report for a non-finite value under kReject.
absl::Status NonFiniteValueError(double value, uint64_t flat_index, uint64_t channel);

}  // namespace normd

#endif  // NORMD_CORE_BATCH_MOMENTS_H_
