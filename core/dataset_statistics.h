// Everything a dataset has accumulated: exact moments per split and, for
// running-average datasets, the running statistics of the train split.
#ifndef NORMD_CORE_DATASET_STATISTICS_H_
#define NORMD_CORE_DATASET_STATISTICS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/dataset_spec.h"
#include "core/fixed_histogram.h"
#include "core/quantile_sketch.h"
#include "core/running_average.h"

namespace normd {

struct SplitStatistics {
  uint64_t batches = 0;
  uint64_t samples = 0;  // rows along N
  std::vector<ChannelMoments> moments;
  // One per channel when the dataset keeps sketches (DatasetSpec::sketch), else none.
  std::vector<QuantileSketch> sketches;
  // One per channel when the dataset has histogram edges, else none.
  std::vector<FixedHistogram> fixed_histograms;
};

struct DatasetStatistics {
  std::array<SplitStatistics, kAllSplits.size()> splits;
  std::optional<RunningAverage> running;

  static DatasetStatistics Empty(const DatasetSpec& spec);

  SplitStatistics& split(Split s) { return splits[static_cast<size_t>(s)]; }
  const SplitStatistics& split(Split s) const { return splits[static_cast<size_t>(s)]; }
};

// Merges the splits of `from` (batches, samples, moments, sketches within the spec's
// max_buckets) into `into`'s; the running average, which depends on the order of
// batches and cannot be merged, is left alone.
void MergeSplits(const DatasetStatistics& from, const DatasetSpec& spec, DatasetStatistics& into);
// The same for one split.
void MergeSplit(const SplitStatistics& from, const DatasetSpec& spec, SplitStatistics& into);

// The per-channel statistics that normalisation uses: for exact datasets the train
// mean and population variance, for running-average datasets the running mean and
// variance (as batch norm in eval mode); min and max are always exact.
struct ReferenceStatistics {
  std::vector<uint64_t> count;
  std::vector<double> mean;
  std::vector<double> variance;
  std::vector<double> min;
  std::vector<double> max;
  // The train split's quantiles at `quantile_ranks`, quantiles[c][i] for rank i, from
  // the sketches (AddReferenceQuantiles); for the schemes that fold them.
  std::vector<double> quantile_ranks;
  std::vector<std::vector<double>> quantiles;
};

ReferenceStatistics ReferenceStatisticsOf(const DatasetStatistics& stats);

// The train split's quantile of channel `c` at `rank`, which the caller added to
// `stats` (INTERNAL when it did not).
absl::StatusOr<double> ReferenceQuantile(const ReferenceStatistics& stats, size_t c, double rank);

}  // namespace normd

#endif  // NORMD_CORE_DATASET_STATISTICS_H_
