// The frozen-statistics schemes (zscore, minmax, scale, batchnorm in eval mode): each
// maps a channel affinely, y = (x - center[c]) * scale[c] + shift[c], with factors
// folded from a frozen version's statistics (scale needs none).
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

// (x - mean) / sqrt(var + eps)
struct ZScoreScheme {
  double eps = kDefaultEps;
};
// low + (x - min) / (max - min) * (high - low); a constant channel maps to low.
struct MinMaxScheme {
  double low = 0.0;
  double high = 1.0;
  bool clip = false;  // clamp outputs to [low, high]
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
};

using FrozenScheme = std::variant<ZScoreScheme, MinMaxScheme, FixedScaleScheme, BatchNormScheme>;

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
  // Outputs clamped to [low, high] after the map (minmax with clip); NaN stays NaN.
  struct Range {
    double low;
    double high;
  };
  std::optional<Range> clamp;
};

// Folds `scheme` with `stats` (ignored, may be empty, for FixedScaleScheme, which
// yields `channels` copies of its factor). Errors: INVALID_ARGUMENT for bad scheme
// parameters (negative or non-finite eps, gamma of the wrong length, low > high,
// var + eps == 0); FAILED_PRECONDITION for a channel with no training values.
absl::StatusOr<ScaleShift> FoldScaleShift(const FrozenScheme& scheme,
                                          const ReferenceStatistics& stats, int64_t channels);

}  // namespace normd

#endif  // NORMD_CORE_FROZEN_SCHEME_H_
