// The statistics a batch-statistics normalisation uses for one channel or group:
// the mean and 1 / sqrt(biased variance + eps), as torch.nn.functional computes them.
// One division per group, not per channel: layer norm over long rows would otherwise
// spend more time dividing than normalising.
#ifndef NORMD_CORE_BATCH_STATISTICS_H_
#define NORMD_CORE_BATCH_STATISTICS_H_

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/channel_moments.h"

namespace normd {

struct BatchStatistics {
  double mean = 0.0;
  double inverse_std = 1.0;  // 1 / sqrt(var + eps); a channel's scale is gamma * inverse_std

  // `moments` were computed skipping non-finite values: fewer than `expected`
  // counted values means the group held NaN or +-Inf, and then every output of the
  // group is NaN, as PyTorch's would be. With eps = 0 a constant group gives 0 / 0,
  // NaN, as in PyTorch.
  static BatchStatistics Of(const ChannelMoments& moments, uint64_t expected, double eps) {
    if (moments.count != expected) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      return {nan, nan};
    }
    return {moments.Mean(), 1.0 / std::sqrt(moments.PopulationVariance() + eps)};
  }
};

}  // namespace normd

#endif  // NORMD_CORE_BATCH_STATISTICS_H_
