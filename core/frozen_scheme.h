// The frozen-statistics schemes (zscore, minmax, scale, batchnorm in eval mode, robust,
// clip): each maps a channel affinely, y = (x - center[c]) * scale[c] + shift[c], with
// factors folded from a frozen version's statistics (scale needs none), and may clip
// its inputs to quantiles of the training split first.
#ifndef NORMD_CORE_FROZEN_SCHEME_H_
#define NORMD_CORE_FROZEN_SCHEME_H_

#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dataset_statistics.h"

namespace normd {

inline constexpr double kDefaultEps = 1e-5;  // torch.nn.BatchNorm's default

// Inputs clipped to the training split's quantiles at ranks [low, high] before the
// map (outliers map as the quantile would); 0 <= low < high <= 1.
struct QuantileClip {
  double low = 0.0;
  double high = 1.0;
};

// (x - mean) / sqrt(var + eps)
struct ZScoreScheme {
  double eps = kDefaultEps;
  std::optional<QuantileClip> quantile_clip;
};
// low + (x - min) / (max - min) * (high - low); a constant channel maps to low.
struct MinMaxScheme {
  double low = 0.0;
  double high = 1.0;
  bool clip = false;  // clamp outputs to [low, high]
  std::optional<QuantileClip> quantile_clip;
};
// x * factor + offset; uses no statistics.
struct FixedScaleScheme {
  double factor = 1.0;
  double offset = 0.0;
};
// (x - mean) / sqrt(var + eps) * gamma + beta; empty gamma/beta mean 1/0.
struct BatchNormScheme {
  std::vector<double> gamma;
  std::vector<double> beta;
  double eps = kDefaultEps;
  std::optional<QuantileClip> quantile_clip;
};
// (x - median) / (Q(q_high) - Q(q_low)), as scikit-learn's RobustScaler: a zero range
// divides by 1; with unit_variance the range is divided by Phi^-1(q_high) -
// Phi^-1(q_low), so normal data get unit variance.
struct RobustScheme {
  double q_low = 0.25;
  double q_high = 0.75;
  bool with_centering = true;
  bool with_scaling = true;
  bool unit_variance = false;
  std::optional<QuantileClip> quantile_clip;
};
// x itself, clipped to the training split's quantiles (quantile_clip is required).
struct ClipScheme {
  std::optional<QuantileClip> quantile_clip;
};
// The training split's distribution function at x, from its quantiles at n_quantiles
// evenly spaced ranks (interpolated linearly between them, as scikit-learn's
// QuantileTransformer): uniform on [0, 1], or with `normal` Phi^-1 of it, clipped to
// Phi^-1 of 1e-7 and 1 - 1e-7. A piecewise-linear map (core/quantile_transform.h).
struct QuantileScheme {
  uint32_t n_quantiles = 1000;
  bool normal = false;
};
// The number of boundaries at or below x, the boundaries being the training split's
// quantiles at `ranks` (ascending in [0, 1]): numpy.digitize(x, boundaries).
struct BucketizeScheme {
  std::vector<double> ranks;
};

using FrozenScheme = std::variant<ZScoreScheme, MinMaxScheme, FixedScaleScheme, BatchNormScheme,
                                  RobustScheme, ClipScheme, QuantileScheme, BucketizeScheme>;

// Maps that are not affine: folded into piecewise-linear tables instead of ScaleShift.
bool IsPiecewise(const FrozenScheme& scheme);

// Phi^-1(p), the standard normal quantile, for p in (0, 1).
double NormalQuantile(double p);

inline constexpr uint32_t kMaxQuantileKnots = 1000;  // GetStats answers at most this many

// The ranks (in [0, 1]) of the train split's quantiles `scheme` folds: robust's
// median and range, any quantile clip's bounds, the quantile transform's knots,
// bucketize's boundaries. Empty for the moment-only schemes. The piecewise schemes'
// parameters are checked here, before anything is sized by them: INVALID_ARGUMENT for
// n_quantiles outside [2, kMaxQuantileKnots], or bucketize ranks that are more than
// kMaxQuantileKnots, none, or not rising strictly within [0, 1].
absl::StatusOr<std::vector<double>> QuantileRanksOf(const FrozenScheme& scheme);

absl::string_view SchemeName(const FrozenScheme& scheme);

// INVALID_ARGUMENT unless eps is finite and >= 0.
absl::Status ValidateEps(double eps);

// INVALID_ARGUMENT unless gamma and beta are each empty or hold `expected` finite
// values; `per` names what each value belongs to ("channel", "element").
absl::Status ValidateAffineParameters(std::span<const double> gamma, std::span<const double> beta,
                                      int64_t expected, absl::string_view per);
bool NeedsStatistics(const FrozenScheme& scheme);

// Per-channel factors in float64. The center is kept apart rather than folded into
// shift = -center * scale: for data such as 1e8 + noise, |mean| / std reaches 1e10
// and the folded shift would carry a rounding error of ~1e-6 in the output, while
// x - center is exact for x near the center (Sterbenz) and costs one subtraction.
struct ScaleShift {
  std::vector<double> center;
  std::vector<double> scale;
  std::vector<double> shift;
  // Outputs clamped to [low, high] after the map (minmax with clip, quantile clips),
  // one range per channel or none; NaN stays NaN. Clamping the output of a monotonic
  // map to the images of the bounds equals clamping its input to the bounds.
  struct Range {
    double low;
    double high;
  };
  std::vector<Range> clamp;
};

// Folds `scheme` with `stats` (ignored, may be empty, for FixedScaleScheme, which
// yields `channels` copies of its factor; for the schemes with quantile ranks, stats
// must hold the train split's quantiles at QuantileRanksOf(scheme)). Errors:
// INVALID_ARGUMENT for bad scheme parameters (negative or non-finite eps, gamma of the
// wrong length, low > high, var + eps == 0, ranks outside [0, 1] or not increasing);
// FAILED_PRECONDITION for a channel with no training values.
absl::StatusOr<ScaleShift> FoldScaleShift(const FrozenScheme& scheme,
                                          const ReferenceStatistics& stats, int64_t channels);

}  // namespace normd

#endif  // NORMD_CORE_FROZEN_SCHEME_H_
