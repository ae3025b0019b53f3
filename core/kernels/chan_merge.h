// Chan, Golub and LeVeque's pairwise update of a mean and its sum of squared
// deviations (M2) when two parts of a channel meet: the one copy of the rule, for the
// CPU's merges (core/channel_moments.cc) and the GPU's (cuda/segment_moments.h), so
// that both give the same bits. Weights are counts (exact doubles below 2^53) or sums
// of sample weights (double-double); each sum, product and quotient is rounded as
// written, with no contraction (-ffp-contract=off, nvcc -fmad=false).
#ifndef NORMD_CORE_KERNELS_CHAN_MERGE_H_
#define NORMD_CORE_KERNELS_CHAN_MERGE_H_

#include "core/kernels/double_double.h"
#include "core/kernels/host_device.h"

namespace normd {

// (mean, m2) of weight `weight` <- itself merged with (other_mean, other_m2) of weight
// `other_weight`; both weights positive.
template <typename Weight>
NORMD_HD inline void ChanMerge(Weight weight, Weight other_weight, const DoubleDouble& other_mean,
                               const DoubleDouble& other_m2, DoubleDouble& mean,
                               DoubleDouble& m2) {
  const Weight total = weight + other_weight;
  const DoubleDouble delta = other_mean - mean;
  mean = mean + delta * other_weight / total;
  m2 = m2 + other_m2 + (delta * delta) * weight / total * other_weight;
  if (m2.hi < 0) m2 = {};  // rounding below zero: the parts were all one value
}

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_CHAN_MERGE_H_
