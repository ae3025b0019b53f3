#include "core/batch_norm_training.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/batch_statistics.h"
#include "core/shape_format.h"

namespace normd {

absl::Status ValidateBatchNormTraining(const BatchNormTrainingScheme& scheme,
                                       const ChannelGeometry& geometry,
                                       std::span<const int64_t> shape) {
  NORMD_RETURN_IF_ERROR(ValidateEps(scheme.eps));
  NORMD_RETURN_IF_ERROR(
      ValidateAffineParameters(scheme.gamma, scheme.beta, geometry.channels, "channel"));
  if (geometry.values_per_channel() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch norm in training mode needs more than 1 value per channel (batch x spatial "
        "positions), got ",
        geometry.values_per_channel(), " for input shape ", FormatShape(shape)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ApplyBatchNormTraining(
    const BatchNormTrainingScheme& scheme, const TensorView& input, const ChannelGeometry& geometry,
    OutputDType output_type, std::span<std::byte> output, std::span<ChannelMoments> moments,
    WorkerPool* pool) {
  NORMD_RETURN_IF_ERROR(ValidateBatchNormTraining(scheme, geometry, input.shape));
  NORMD_ASSIGN_OR_RETURN(
      const uint64_t skipped,
      ComputeBatchMoments(input, geometry, NonFinitePolicy::kSkip, moments, pool));

  ScaleShift factors;
  const auto expected = static_cast<uint64_t>(geometry.values_per_channel());
  for (size_t c = 0; c < moments.size(); ++c) {
    const BatchStatistics s = BatchStatistics::Of(moments[c], expected, scheme.eps);
    factors.center.push_back(s.mean);
    factors.scale.push_back((scheme.gamma.empty() ? 1.0 : scheme.gamma[c]) * s.inverse_std);
    factors.shift.push_back(scheme.beta.empty() ? 0.0 : scheme.beta[c]);
  }
  NORMD_RETURN_IF_ERROR(ApplyScaleShift(input, geometry, factors, output_type, output, pool));
  return skipped;
}

}  // namespace normd
