#include "core/frozen_normalizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/apply_scale_shift.h"

namespace normd {

absl::StatusOr<FrozenNormalizer> FrozenNormalizer::Create(const FrozenScheme& scheme,
                                                          std::optional<Layout> layout,
                                                          int64_t channels,
                                                          const ReferenceStatistics& stats) {
  if (!layout.has_value()) channels = 1;
  NORMD_ASSIGN_OR_RETURN(ScaleShift factors, FoldScaleShift(scheme, stats, channels));
  return FrozenNormalizer(layout, channels, std::move(factors));
}

absl::Status FrozenNormalizer::Apply(const ValidatedTensor& input, OutputDType output_type,
                                     std::span<std::byte> output, WorkerPool* pool) const {
  ChannelGeometry geometry{input.shape()[0], 1, 1, input.elements()};
  if (layout_.has_value()) {
    NORMD_ASSIGN_OR_RETURN(geometry, ResolveGeometry(*layout_, channels_, input.shape()));
  }
  const size_t expected = static_cast<size_t>(input.elements()) * ElementSize(output_type.dtype());
  if (output.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("the output holds ", output.size(), " bytes, expected ", expected, " (",
                     input.elements(), " values of ", DTypeName(output_type.dtype()), ")"));
  }
  return ApplyScaleShift(input.view(), geometry, factors_, output_type, output, pool);
}

}  // namespace normd
