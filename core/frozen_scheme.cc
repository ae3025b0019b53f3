#include "core/frozen_scheme.h"
#include "absl/strings/string_view.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/kernels/element.h"
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

// Acklam's rational approximation (relative error 1.15e-9) and one Halley step on
// erfc, which brings it to float64's last bits or so.
double NormalQuantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  double x;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - kLow) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

namespace {

absl::Status ValidateRanks(absl::string_view what, double low, double high) {
  if (!(low >= 0.0 && low < high && high <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ranks must satisfy 0 <= low < high <= 1, got low ", low, " and high ", high));
  }
  return absl::OkStatus();
}

std::optional<QuantileClip> QuantileClipOf(const FrozenScheme& scheme) {
  return std::visit(
      [](const auto& s) -> std::optional<QuantileClip> {
        if constexpr (requires { s.quantile_clip; }) {
          return s.quantile_clip;
        } else {
          return std::nullopt;
        }
      },
      scheme);
}

// center = median, scale = 1 / range (1 for a zero range), as RobustScaler.
absl::StatusOr<ScaleShift> FoldRobust(const RobustScheme& robust, const ReferenceStatistics& stats,
                                      int64_t channels) {
  NORMD_RETURN_IF_ERROR(ValidateRanks("robust quantile", robust.q_low, robust.q_high));
  NORMD_RETURN_IF_ERROR(CheckChannelsFitted(stats));
  const double adjust =
      robust.unit_variance ? NormalQuantile(robust.q_high) - NormalQuantile(robust.q_low) : 1.0;
  ScaleShift folded;
  for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
    NORMD_ASSIGN_OR_RETURN(const double median, ReferenceQuantile(stats, c, 0.5));
    NORMD_ASSIGN_OR_RETURN(const double low, ReferenceQuantile(stats, c, robust.q_low));
    NORMD_ASSIGN_OR_RETURN(const double high, ReferenceQuantile(stats, c, robust.q_high));
    double range = high - low;
    if (range == 0) range = 1;  // scikit-learn's _handle_zeros_in_scale
    folded.center.push_back(robust.with_centering ? median : 0.0);
    folded.scale.push_back(robust.with_scaling ? 1 / (range / adjust) : 1.0);
    folded.shift.push_back(0.0);
  }
  return folded;
}

// Clamps each channel's outputs to the images of its clip quantiles (intersected with
// a clamp already there).
absl::Status AddQuantileClip(const QuantileClip& clip, const ReferenceStatistics& stats,
                             ScaleShift& folded) {
  NORMD_RETURN_IF_ERROR(ValidateRanks("quantile clip", clip.low, clip.high));
  const size_t channels = folded.center.size();
  std::vector<ScaleShift::Range> ranges(channels);
  for (size_t c = 0; c < channels; ++c) {
    NORMD_ASSIGN_OR_RETURN(const double low, ReferenceQuantile(stats, c, clip.low));
    NORMD_ASSIGN_OR_RETURN(const double high, ReferenceQuantile(stats, c, clip.high));
    const double a = ScaleShiftValue(low, folded.center[c], folded.scale[c], folded.shift[c]);
    const double b = ScaleShiftValue(high, folded.center[c], folded.scale[c], folded.shift[c]);
    ranges[c] = {std::min(a, b), std::max(a, b)};
    if (!folded.clamp.empty()) {
      ranges[c] = {std::max(ranges[c].low, folded.clamp[c].low),
                   std::min(ranges[c].high, folded.clamp[c].high)};
    }
  }
  folded.clamp = std::move(ranges);
  return absl::OkStatus();
}

absl::StatusOr<ScaleShift> FoldWithoutClip(const FrozenScheme& scheme,
                                           const ReferenceStatistics& stats, int64_t channels);

}  // namespace

bool IsPiecewise(const FrozenScheme& scheme) {
  return std::holds_alternative<QuantileScheme>(scheme) ||
         std::holds_alternative<BucketizeScheme>(scheme);
}

absl::StatusOr<std::vector<double>> QuantileRanksOf(const FrozenScheme& scheme) {
  std::vector<double> ranks;
  if (const auto* robust = std::get_if<RobustScheme>(&scheme)) {
    ranks = {0.5, robust->q_low, robust->q_high};
  }
  if (const auto* quantile = std::get_if<QuantileScheme>(&scheme)) {
    // Checked before the ranks are made: a caller's n_quantiles must not size them.
    if (quantile->n_quantiles < 2 || quantile->n_quantiles > kMaxQuantileKnots) {
      return absl::InvalidArgumentError(absl::StrCat(
          "n_quantiles must be in [2, ", kMaxQuantileKnots, "], got ", quantile->n_quantiles));
    }
    const uint32_t n = quantile->n_quantiles;
    ranks.reserve(n);
    for (uint32_t i = 0; i < n; ++i) ranks.push_back(static_cast<double>(i) / (n - 1));
  }
  if (const auto* bucketize = std::get_if<BucketizeScheme>(&scheme)) {
    if (bucketize->ranks.empty() || bucketize->ranks.size() > kMaxQuantileKnots) {
      return absl::InvalidArgumentError(absl::StrCat("bucketize takes 1 to ", kMaxQuantileKnots,
                                                     " boundary ranks, got ",
                                                     bucketize->ranks.size()));
    }
    for (size_t i = 0; i < bucketize->ranks.size(); ++i) {
      const double r = bucketize->ranks[i];
      if (!(r >= 0 && r <= 1) || (i > 0 && !(r > bucketize->ranks[i - 1]))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bucketize ranks must rise strictly within [0, 1]; ranks[", i, "] is ", r));
      }
    }
    ranks = bucketize->ranks;
  }
  if (const std::optional<QuantileClip> clip = QuantileClipOf(scheme)) {
    ranks.push_back(clip->low);
    ranks.push_back(clip->high);
  }
  return ranks;
}

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
                               [](const BatchNormScheme&) { return "batchnorm"; },
                               [](const RobustScheme&) { return "robust"; },
                               [](const ClipScheme&) { return "clip"; },
                               [](const QuantileScheme&) { return "quantile"; },
                               [](const BucketizeScheme&) { return "bucketize"; }},
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
  const std::optional<QuantileClip> clip = QuantileClipOf(scheme);
  if (std::holds_alternative<ClipScheme>(scheme) && !clip.has_value()) {
    return absl::InvalidArgumentError("the clip scheme needs quantile ranks to clip to");
  }
  if (clip.has_value())
    NORMD_RETURN_IF_ERROR(ValidateRanks("quantile clip", clip->low, clip->high));
  NORMD_ASSIGN_OR_RETURN(ScaleShift folded, FoldWithoutClip(scheme, stats, channels));
  if (clip.has_value()) NORMD_RETURN_IF_ERROR(AddQuantileClip(*clip, stats, folded));
  return folded;
}

namespace {

absl::StatusOr<ScaleShift> FoldWithoutClip(const FrozenScheme& scheme,
                                           const ReferenceStatistics& stats, int64_t channels) {
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
            if (mm.clip) {
              folded.clamp.assign(static_cast<size_t>(channels), {mm.low, mm.high});
            }
            return folded;
          },
          [&](const RobustScheme& robust) { return FoldRobust(robust, stats, channels); },
          [&](const QuantileScheme&) -> absl::StatusOr<ScaleShift> {
            return absl::InternalError("the quantile transform is piecewise, not affine");
          },
          [&](const BucketizeScheme&) -> absl::StatusOr<ScaleShift> {
            return absl::InternalError("bucketize is piecewise, not affine");
          },
          [&](const ClipScheme&) -> absl::StatusOr<ScaleShift> {
            NORMD_RETURN_IF_ERROR(CheckChannelsFitted(stats));
            ScaleShift folded;
            folded.center.assign(static_cast<size_t>(channels), 0.0);
            folded.scale.assign(static_cast<size_t>(channels), 1.0);
            folded.shift.assign(static_cast<size_t>(channels), 0.0);
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

}  // namespace
}  // namespace normd
