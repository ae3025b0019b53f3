// How far one set of a dataset's statistics is from another, per channel: the numbers
// drift monitoring reads (a split against the training split, a new version against the
// last one, live traffic against the version it is normalised with).
//
// Every measure comes from what normd keeps exactly, so the figures are reproducible:
// - standardised mean difference (Cohen's d with the pooled population variance) and
//   variance ratio, from the exact moments;
// - Kolmogorov-Smirnov statistic, from the quantile sketches aligned to one resolution:
//   both distribution functions are exact at every bucket edge, so the maximum over the
//   edges is a lower bound of the true statistic, and the true one is at most `error`
//   above it (the largest mass of one bucket); from the fixed histograms' bins when the
//   dataset keeps no sketches;
// - population stability index and Jensen-Shannon divergence, over common bins: the
//   fixed histogram's bins (plus one below and one above) when the dataset has them,
//   else bins that are unions of whole aligned sketch buckets cut where the reference
//   reaches i/bins of its mass, the customary deciles of PSI. Counts are exact in both.
// Each measure gets a pass/warn/fail level against thresholds and a one-line meaning.
#ifndef NORMD_CORE_DRIFT_H_
#define NORMD_CORE_DRIFT_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"

namespace normd {

enum class DriftLevel { kNoData, kPass, kWarn, kFail };

// A measure warns at `warn` and fails at `fail` (both inclusive, warn <= fail).
struct DriftLimits {
  double warn = 0;
  double fail = 0;
};

// Defaults, documented in docs/drift.md: PSI's customary 0.1 / 0.25; |d| of 0.1 / 0.25
// pooled standard deviations; a variance ratio (or its inverse) of 1.25 / 1.5; a KS
// statistic of 0.1 / 0.2; a Jensen-Shannon divergence (base 2, in [0, 1]) of 0.05 / 0.1.
struct DriftThresholds {
  DriftLimits standardized_mean_difference{0.1, 0.25};
  DriftLimits variance_ratio{1.25, 1.5};
  DriftLimits ks{0.1, 0.2};
  DriftLimits psi{0.1, 0.25};
  DriftLimits js_divergence{0.05, 0.1};
};

// INVALID_ARGUMENT naming the measure for limits that are NaN, negative, warn > fail, or a
// variance ratio below 1.
absl::Status ValidateDriftThresholds(const DriftThresholds& thresholds);

inline constexpr uint32_t kDefaultDriftBins = 10;
inline constexpr uint32_t kMaxDriftBins = 1000;
// A bin's proportion of zero counts as this in PSI (whose log would be infinite).
inline constexpr double kPsiFloor = 1e-4;

struct DriftMeasure {
  double value = 0;  // NaN when the statistics cannot give it
  double error = 0;  // the true value lies in [value, value + error]; 0 when exact
  DriftLevel level = DriftLevel::kNoData;
  std::string meaning;
};

enum class DriftBins { kNone, kFixedHistogram, kSketch };
absl::string_view DriftBinsName(DriftBins bins);

struct ChannelDrift {
  double reference_count = 0;  // W: the count for unweighted data
  double candidate_count = 0;
  DriftMeasure standardized_mean_difference;
  DriftMeasure variance_ratio;
  DriftMeasure ks;
  DriftMeasure psi;
  DriftMeasure js_divergence;
  DriftLevel level = DriftLevel::kNoData;  // the worst of the measures that have data
  // The common bins: edges.size() == fractions.size() + 1, the outer edges the smaller
  // min and the larger max of the two sides.
  std::vector<double> bin_edges;
  std::vector<double> reference_fractions;
  std::vector<double> candidate_fractions;
};

// The five measures with the names people read them by, in the order above.
struct NamedMeasure {
  absl::string_view name;
  const DriftMeasure* measure;
};
std::array<NamedMeasure, 5> MeasuresOf(const ChannelDrift& drift);

struct DriftReport {
  std::vector<ChannelDrift> channels;
  DriftBins bins = DriftBins::kNone;
  DriftLevel level = DriftLevel::kNoData;  // the worst channel's
};

// Compares `candidate` with `reference`, two splits' statistics of the dataset `spec`
// describes. `bins` (1..kMaxDriftBins) is the number of sketch bins for PSI and JS:
// cut at the reference's quantiles, or with `equal_width` at (the bucket edges nearest)
// equal steps over both sides' range, which draws better. FAILED_PRECONDITION naming
// `what_reference` / `what_candidate` when a side holds no values at all.
absl::StatusOr<DriftReport> CompareStatistics(
    const SplitStatistics& reference, const SplitStatistics& candidate, const DatasetSpec& spec,
    const DriftThresholds& thresholds, uint32_t bins, absl::string_view what_reference,
    absl::string_view what_candidate, bool equal_width = false);

}  // namespace normd

#endif  // NORMD_CORE_DRIFT_H_
