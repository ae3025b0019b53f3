#include "core/frozen_scheme.h"
#include "absl/strings/string_view.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/overloaded.h"

namespace normd {
namespace {

absl::Status CheckFinite(absl::string_view what, double value) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " must be finite, got ", value));
}

absl::Status CheckChannelsFitted(const ReferenceStatistics& stats) {
  for (size_t c = 0; c < stats.count.size(); ++c) {
    if (stats.count[c] == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "channel ", c, " has no training values in this version; it cannot be normalised"));
    }
  }
  return absl::OkStatus();
}

// center = mean, scale = gamma / sqrt(var + eps), shift = beta.
absl::StatusOr<ScaleShift> FoldStandardize(const ReferenceStatistics& stats, double eps,
                                           const std::vector<double>& gamma,
                                           const std::vector<double>& beta) {
  if (absl::Status s = ValidateEps(eps); !s.ok()) return s;
  if (absl::Status s = CheckChannelsFitted(stats); !s.ok()) return s;
  ScaleShift folded;
  const size_t channels = stats.mean.size();
  folded.center = stats.mean;
  folded.scale.resize(channels);
  folded.shift.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    const double denominator = std::sqrt(stats.variance[c] + eps);
    if (!(denominator > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel ", c, " has variance ", stats.variance[c], " and eps is ", eps,
                       "; var + eps must be positive (use eps > 0 for constant channels)"));
    }
    const double g = gamma.empty() ? 1.0 : gamma[c];
    const double b = beta.empty() ? 0.0 : beta[c];
    folded.scale[c] = g / denominator;
    folded.shift[c] = b;
  }
  return folded;
}

}  // namespace

absl::Status ValidateEps(double eps) {
  if (std::isfinite(eps) && eps >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("eps must be finite and >= 0, got ", eps));
}

absl::Status ValidateAffineParameters(std::span<const double> gamma, std::span<const double> beta,
                                      int64_t expected, absl::string_view per) {
  for (const auto& [what, values] : {std::pair{"gamma", gamma}, std::pair{"beta", beta}}) {
    if (!values.empty() && values.size() != static_cast<size_t>(expected)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has ", values.size(),
                                                     " values, expected ", expected, " (one per ",
                                                     per, ") or none"));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, "[", i, "] must be finite, got ", values[i]));
      }
    }
  }
  return absl::OkStatus();
}

absl::string_view SchemeName(const FrozenScheme& scheme) {
  return std::visit(Overloaded{[](const ZScoreScheme&) { return "zscore"; },
                               [](const MinMaxScheme&) { return "minmax"; },
                               [](const FixedScaleScheme&) { return "scale"; },
                               [](const BatchNormScheme&) { return "batchnorm"; }},
                    scheme);
}

bool NeedsStatistics(const FrozenScheme& scheme) {
  return !std::holds_alternative<FixedScaleScheme>(scheme);
}

absl::StatusOr<ScaleShift> FoldScaleShift(const FrozenScheme& scheme,
                                          const ReferenceStatistics& stats, int64_t channels) {
  if (NeedsStatistics(scheme) && stats.mean.size() != static_cast<size_t>(channels)) {
    return absl::InternalError(
        absl::StrCat("statistics hold ", stats.mean.size(), " channels, expected ", channels));
  }
  return std::visit(
      Overloaded{
          [&](const ZScoreScheme& z) -> absl::StatusOr<ScaleShift> {
            return FoldStandardize(stats, z.eps, {}, {});
          },
          [&](const BatchNormScheme& bn) -> absl::StatusOr<ScaleShift> {
            if (absl::Status s = ValidateAffineParameters(bn.gamma, bn.beta, channels, "channel");
                !s.ok()) {
              return s;
            }
            return FoldStandardize(stats, bn.eps, bn.gamma, bn.beta);
          },
          [&](const MinMaxScheme& mm) -> absl::StatusOr<ScaleShift> {
            if (absl::Status s = CheckFinite("minmax low", mm.low); !s.ok()) return s;
            if (absl::Status s = CheckFinite("minmax high", mm.high); !s.ok()) return s;
            if (mm.low > mm.high) {
              return absl::InvalidArgumentError(absl::StrCat("minmax low must be <= high, got low ",
                                                             mm.low, " and high ", mm.high));
            }
            if (absl::Status s = CheckChannelsFitted(stats); !s.ok()) return s;
            ScaleShift folded;
            for (int64_t c = 0; c < channels; ++c) {
              const double range = stats.max[c] - stats.min[c];
              // A constant channel maps to `low`, as scikit-learn's MinMaxScaler does.
              const double scale = range > 0 ? (mm.high - mm.low) / range : 0.0;
              folded.center.push_back(stats.min[c]);
              folded.scale.push_back(scale);
              folded.shift.push_back(mm.low);
            }
            if (mm.clip) folded.clamp = ScaleShift::Range{mm.low, mm.high};
            return folded;
          },
          [&](const FixedScaleScheme& fs) -> absl::StatusOr<ScaleShift> {
            if (absl::Status s = CheckFinite("scale factor", fs.factor); !s.ok()) return s;
            if (absl::Status s = CheckFinite("scale offset", fs.offset); !s.ok()) return s;
            ScaleShift folded;
            folded.center.assign(static_cast<size_t>(channels), 0.0);
            folded.scale.assign(static_cast<size_t>(channels), fs.factor);
            folded.shift.assign(static_cast<size_t>(channels), fs.offset);
            return folded;
          },
      },
      scheme);
}

}  // namespace normd
