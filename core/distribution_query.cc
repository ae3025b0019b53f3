#include "core/distribution_query.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace normd {

absl::Status ValidateDistributionQuery(const DistributionQuery& query) {
  if (query.ranks.size() > kMaxQuantileRanks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxQuantileRanks, " quantile ranks per request, got ", query.ranks.size()));
  }
  for (size_t i = 0; i < query.ranks.size(); ++i) {
    const double rank = query.ranks[i];
    if (!(rank >= 0.0 && rank <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantiles[", i, "] must be a rank in [0, 1], got ", rank));
    }
  }
  if (query.histogram_bins > kMaxHistogramBins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram_bins must be at most ", kMaxHistogramBins, ", got ", query.histogram_bins));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ChannelDistribution>> DescribeDistributions(
    const SplitStatistics& split, const std::optional<QuantileSketchSpec>& sketch,
    const DistributionQuery& query, absl::string_view dataset) {
  if (!sketch.has_value() || split.sketches.size() != split.moments.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset \"", dataset,
                     "\" keeps no quantile sketches (it was created without them, or before "
                     "normd kept them); quantiles and histograms need a dataset created with a "
                     "sketch"));
  }
  std::vector<ChannelDistribution> out(split.moments.size());
  for (size_t c = 0; c < out.size(); ++c) {
    const QuantileSketch& s = split.sketches[c];
    const ChannelMoments& m = split.moments[c];
    const double center = sketch->CenterOf(c);
    ChannelDistribution& d = out[c];
    for (const double rank : query.ranks) {
      d.quantiles.push_back(EstimateQuantile(s, rank, center, m.min, m.max));
    }
    d.histogram = HistogramOf(s, query.histogram_bins, center, m.min, m.max);
    d.relative_accuracy = SketchRelativeAccuracy(s.resolution);
    d.buckets = s.buckets.size();
  }
  return out;
}

absl::Status AddReferenceQuantiles(const DatasetStatistics& stats,
                                   const std::optional<QuantileSketchSpec>& sketch,
                                   std::span<const double> ranks, absl::string_view dataset,
                                   ReferenceStatistics& reference) {
  DistributionQuery query;
  query.ranks.assign(ranks.begin(), ranks.end());
  NORMD_ASSIGN_OR_RETURN(const std::vector<ChannelDistribution> distributions,
                         DescribeDistributions(stats.split(Split::kTrain), sketch, query, dataset));
  reference.quantile_ranks = query.ranks;
  reference.quantiles.clear();
  for (const ChannelDistribution& d : distributions) {
    std::vector<double>& values = reference.quantiles.emplace_back();
    for (const QuantileEstimate& q : d.quantiles) values.push_back(q.value);
  }
  return absl::OkStatus();
}

}  // namespace normd
