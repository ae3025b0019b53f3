// The piecewise-linear schemes folded from a frozen version's quantiles: the quantile
// transform (uniform or normal output) and its inverse, and bucketize.
#ifndef NORMD_CORE_QUANTILE_TRANSFORM_H_
#define NORMD_CORE_QUANTILE_TRANSFORM_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset_statistics.h"
#include "core/frozen_scheme.h"
#include "core/piecewise_channel.h"

namespace normd {

// One map per channel for a scheme with IsPiecewise(scheme); `stats` must hold the
// train quantiles at QuantileRanksOf(scheme). The quantile transform's knots are the
// quantiles; equal knots (a point mass) map, as scikit-learn's do, to the middle of
// their ranks, and the extremes exactly to 0 and 1. Normal output interpolates Phi^-1
// between sub-knots no more than 0.02 apart. With `inverse`, the map back to the
// data's units (bucketize has none: INVALID_ARGUMENT). INVALID_ARGUMENT for bad
// parameters; FAILED_PRECONDITION for a channel with no training values.
absl::StatusOr<std::vector<PiecewiseChannel>> FoldPiecewise(const FrozenScheme& scheme,
                                                            const ReferenceStatistics& stats,
                                                            int64_t channels, bool inverse);

}  // namespace normd

#endif  // NORMD_CORE_QUANTILE_TRANSFORM_H_
