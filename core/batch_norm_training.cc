#include "core/batch_norm_training.h"

#include "absl/strings/str_cat.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/batch_standardization.h"
#include "core/shape_format.h"

namespace normd {

absl::StatusOr<uint64_t> ApplyBatchNormTraining(const BatchNormTrainingScheme& scheme,
                                                const TensorView& input,
                                                const ChannelGeometry& geometry, DType output_dtype,
                                                std::span<std::byte> output,
                                                std::span<ChannelMoments> moments,
                                                WorkerPool* pool) {
  if (absl::Status s = ValidateEps(scheme.eps); !s.ok()) return s;
  if (absl::Status s =
          ValidateAffineParameters(scheme.gamma, scheme.beta, geometry.channels, "channel");
      !s.ok()) {
    return s;
  }
  if (geometry.values_per_channel() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch norm in training mode needs more than 1 value per channel (batch x spatial "
        "positions), got ",
        geometry.values_per_channel(), " for input shape ", FormatShape(input.shape)));
  }
  absl::StatusOr<uint64_t> skipped =
      ComputeBatchMoments(input, geometry, NonFinitePolicy::kSkip, moments, pool);
  if (!skipped.ok()) return skipped.status();

  ScaleShift factors;
  const auto expected = static_cast<uint64_t>(geometry.values_per_channel());
  for (size_t c = 0; c < moments.size(); ++c) {
    const BatchStandardization s = BatchStandardization::Of(moments[c], expected, scheme.eps);
    factors.center.push_back(s.mean);
    factors.scale.push_back((scheme.gamma.empty() ? 1.0 : scheme.gamma[c]) * s.inverse_std);
    factors.shift.push_back(scheme.beta.empty() ? 0.0 : scheme.beta[c]);
  }
  if (absl::Status s = ApplyScaleShift(input, geometry, factors, output_dtype, output, pool);
      !s.ok()) {
    return s;
  }
  return *skipped;
}

}  // namespace normd
