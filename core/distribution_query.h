// What GetStats answers from a split's quantile sketches: quantiles at ranks and a
// histogram per channel, each with its error stated.
#ifndef NORMD_CORE_DISTRIBUTION_QUERY_H_
#define NORMD_CORE_DISTRIBUTION_QUERY_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "core/quantile_sketch.h"

namespace normd {

inline constexpr size_t kMaxQuantileRanks = 1000;
inline constexpr uint32_t kMaxHistogramBins = 10000;

struct DistributionQuery {
  std::vector<double> ranks;
  uint32_t histogram_bins = 0;

  bool empty() const { return ranks.empty() && histogram_bins == 0; }
};

// INVALID_ARGUMENT for a rank outside [0, 1] (or NaN), more than kMaxQuantileRanks
// ranks, or more than kMaxHistogramBins bins.
absl::Status ValidateDistributionQuery(const DistributionQuery& query);

struct ChannelDistribution {
  std::vector<QuantileEstimate> quantiles;  // one per rank
  SketchHistogram histogram;
  double relative_accuracy = 0;  // what the sketch holds now
  size_t buckets = 0;
};

// One per channel of `split`; FAILED_PRECONDITION naming `dataset` when it keeps no
// sketches (`sketch` unset).
absl::StatusOr<std::vector<ChannelDistribution>> DescribeDistributions(
    const SplitStatistics& split, const std::optional<QuantileSketchSpec>& sketch,
    const DistributionQuery& query, absl::string_view dataset);

// Adds the train split's quantiles at `ranks` (from its sketches) to `reference`, for
// the schemes that fold them; FAILED_PRECONDITION naming `dataset` when it keeps no
// sketches.
absl::Status AddReferenceQuantiles(const DatasetStatistics& stats,
                                   const std::optional<QuantileSketchSpec>& sketch,
                                   std::span<const double> ranks, absl::string_view dataset,
                                   ReferenceStatistics& reference);

}  // namespace normd

#endif  // NORMD_CORE_DISTRIBUTION_QUERY_H_
