// Count, mean, M2 (sum of squared deviations), min and max of one channel, and
// Chan's parallel merge of two such summaries.
#ifndef NORMD_CORE_CHANNEL_MOMENTS_H_
#define NORMD_CORE_CHANNEL_MOMENTS_H_

#include <cstdint>
#include <limits>
#include <span>

#include "core/double_double.h"

namespace normd {

struct ChannelMoments {
  uint64_t count = 0;
  DoubleDouble mean;
  DoubleDouble m2;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  // NaN when count == 0 (mean, variances, min, max) or count < 2 (sample variance).
  double Mean() const;
  double PopulationVariance() const;
  double SampleVariance() const;
  double Min() const;
  double Max() const;
};

// into <- into (+) other, with Chan, Golub and LeVeque's pairwise update:
//   n = na + nb, d = mean_b - mean_a, mean = mean_a + d * nb / n,
//   M2 = M2_a + M2_b + d^2 * na * nb / n,
// evaluated in double-double so the result does not depend on batch sizes or
// merge order beyond float64 rounding of the final values.
void MergeMoments(const ChannelMoments& other, ChannelMoments& into);

void MergeMoments(std::span<const ChannelMoments> other, std::span<ChannelMoments> into);

}  // namespace normd

#endif  // NORMD_CORE_CHANNEL_MOMENTS_H_
