#include "core/frozen_normalizer.h"

#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/apply_scale_shift.h"
#include "core/quantile_transform.h"

namespace normd {

namespace {

// y = (x - c) * s + h  <=>  x = (y - h) * (1 / s) + c.
absl::StatusOr<ScaleShift> Invert(const FrozenScheme& scheme, const ScaleShift& forward) {
  if (!forward.clamp.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(SchemeName(scheme),
                     " with clip has no inverse: every input beyond the clip maps to its bound; "
                     "denormalize without clip"));
  }
  ScaleShift inverse;
  for (size_t c = 0; c < forward.scale.size(); ++c) {
    if (forward.scale[c] == 0) {
      const bool constant = std::holds_alternative<MinMaxScheme>(scheme);
      const std::string why = absl::StrCat(
          "channel ", c, " maps every input to ", forward.shift[c], " (",
          constant ? "it was constant in training: min == max" : "a zero scale factor or gamma",
          "), so ", SchemeName(scheme), " has no inverse there");
      return constant ? absl::FailedPreconditionError(why) : absl::InvalidArgumentError(why);
    }
    inverse.center.push_back(forward.shift[c]);
    inverse.scale.push_back(1.0 / forward.scale[c]);
    inverse.shift.push_back(forward.center[c]);
  }
  return inverse;
}

}  // namespace

absl::StatusOr<FrozenNormalizer> FrozenNormalizer::Create(const FrozenScheme& scheme,
                                                          std::optional<Layout> layout,
                                                          int64_t channels,
                                                          const ReferenceStatistics& stats,
                                                          bool inverse) {
  if (!layout.has_value()) channels = 1;
  if (IsPiecewise(scheme)) {
    NORMD_ASSIGN_OR_RETURN(std::vector<PiecewiseChannel> maps,
                           FoldPiecewise(scheme, stats, channels, inverse));
    FrozenNormalizer normalizer(layout, channels, ScaleShift{});
    normalizer.piecewise_ = std::move(maps);
    return normalizer;
  }
  NORMD_ASSIGN_OR_RETURN(ScaleShift factors, FoldScaleShift(scheme, stats, channels));
  if (inverse) {
    NORMD_ASSIGN_OR_RETURN(factors, Invert(scheme, factors));
  }
  return FrozenNormalizer(layout, channels, std::move(factors));
}

absl::StatusOr<ChannelGeometry> FrozenNormalizer::GeometryOf(const ValidatedTensor& input) const {
  if (layout_.has_value()) return ResolveGeometry(*layout_, channels_, input.shape());
  return ChannelGeometry{input.shape()[0], 1, 1, input.elements()};
}

absl::Status FrozenNormalizer::Apply(const ValidatedTensor& input, OutputDType output_type,
                                     std::span<std::byte> output, WorkerPool* pool) const {
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry, GeometryOf(input));
  const size_t expected = static_cast<size_t>(input.elements()) * ElementSize(output_type.dtype());
  if (output.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("the output holds ", output.size(), " bytes, expected ", expected, " (",
                     input.elements(), " values of ", DTypeName(output_type.dtype()), ")"));
  }
  if (!piecewise_.empty()) {
    return ApplyPiecewiseMap(input.view(), geometry, piecewise_, output_type, output, pool);
  }
  return ApplyScaleShift(input.view(), geometry, factors_, output_type, output, pool);
}

}  // namespace normd
