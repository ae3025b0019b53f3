// Count, mean, M2 (sum of squared deviations), min and max of one channel, and
// Chan's parallel merge of two such summaries; optionally weighted.
//
// Weighted moments (a batch ingested with sample weights or a mask) weigh each value
// x_i by w_i >= 0: mean = sum(w x) / W and M2 = sum(w (x - mean)^2) with W = sum(w).
// `count` is the number of values with w > 0, and min and max range over those: a
// weight of 0 leaves a value out entirely (a mask). Moments without weights weigh
// every value 1, so W = count and the two kinds merge.
#ifndef NORMD_CORE_CHANNEL_MOMENTS_H_
#define NORMD_CORE_CHANNEL_MOMENTS_H_

#include <cstdint>
#include <limits>
#include <span>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/kernels/double_double.h"

namespace normd {

struct ChannelMoments {
  uint64_t count = 0;
  DoubleDouble mean;
  DoubleDouble m2;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  // Set once any weighted value is merged in; then W and sum(w^2) are kept.
  bool weighted = false;
  DoubleDouble weight_sum;
  DoubleDouble weight_square_sum;

  // W and sum(w^2): the count for unweighted moments.
  DoubleDouble Weight() const;
  DoubleDouble WeightSquares() const;

  // NaN when count == 0 (mean, variances, min, max).
  double Mean() const;
  // M2 / W (biased: numpy's var(ddof=0), StandardScaler's, with weights too).
  double PopulationVariance() const;
  // Frequency weights (w_i copies of x_i): M2 / (W - 1), NaN when W <= 1. Unweighted,
  // the Bessel-corrected M2 / (count - 1).
  double SampleVariance() const;
  // Reliability weights: M2 / (W - sum(w^2) / W), unbiased for a weighted sample of
  // independent draws (numpy.cov with aweights); NaN when count < 2. Equal to
  // SampleVariance for unweighted moments and for masks (weights 0 or 1).
  double ReliabilityVariance() const;
  // Kish's effective sample size W^2 / sum(w^2): the count for unweighted moments.
  double EffectiveCount() const;
  double Min() const;
  double Max() const;
};

// into <- into (+) other, with Chan, Golub and LeVeque's pairwise update:
//   n = na + nb, d = mean_b - mean_a, mean = mean_a + d * nb / n,
//   M2 = M2_a + M2_b + d^2 * na * nb / n,
// evaluated in double-double so the result does not depend on batch sizes or
// merge order beyond float64 rounding of the final values. With weights the counts
// become W: the same formula with na = W_a, nb = W_b.
void MergeMoments(const ChannelMoments& other, ChannelMoments& into);

void MergeMoments(std::span<const ChannelMoments> other, std::span<ChannelMoments> into);

// OK for moments float64 can hold: an empty channel, or finite mean, M2 and range
// (max - min). Finite values can still pass float64's largest number in their
// variance or range ([0, 1e155], [-1.6e308, 1.6e308]); such moments would be stored
// as inf or NaN, so every fit and merge checks this and refuses them:
// INVALID_ARGUMENT naming `what` (e.g. "the batch"), the channel and its span.
absl::Status CheckRepresentable(const ChannelMoments& m, size_t channel, absl::string_view what);

}  // namespace normd

#endif  // NORMD_CORE_CHANNEL_MOMENTS_H_
