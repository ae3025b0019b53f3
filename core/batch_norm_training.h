// Batch norm in training mode, as torch.nn.functional.batch_norm(training=True):
// every channel is normalised with the batch's own mean and biased variance.
#ifndef NORMD_CORE_BATCH_NORM_TRAINING_H_
#define NORMD_CORE_BATCH_NORM_TRAINING_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/dtype.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// (x - batch mean) / sqrt(batch biased var + eps) * gamma + beta; empty gamma/beta
// mean 1/0.
struct BatchNormTrainingScheme {
  std::vector<double> gamma;
  std::vector<double> beta;
  double eps = kDefaultEps;
};

// Normalises `input` (validated, `geometry` resolved from its shape) into `output`
// and leaves the batch's per-channel moments, computed without its non-finite
// values, in `moments` (geometry.channels entries) for the caller to fold into
// running statistics. Returns the number of non-finite values left out of
// `moments`; a channel holding any comes out as NaN, as in PyTorch.
// INVALID_ARGUMENT for bad eps or gamma/beta, or a channel with fewer than 2 values
// (PyTorch refuses those in training mode too); on error nothing is written.
// The checks ApplyBatchNormTraining makes before any work (every path runs them):
// eps, gamma/beta, and more than one value per channel for input `shape`.
absl::Status ValidateBatchNormTraining(const BatchNormTrainingScheme& scheme,
                                       const ChannelGeometry& geometry,
                                       std::span<const int64_t> shape);

absl::StatusOr<uint64_t> ApplyBatchNormTraining(
    const BatchNormTrainingScheme& scheme, const TensorView& input, const ChannelGeometry& geometry,
    OutputDType output_type, std::span<std::byte> output, std::span<ChannelMoments> moments,
    WorkerPool* pool = nullptr);

}  // namespace normd

#endif  // NORMD_CORE_BATCH_NORM_TRAINING_H_
