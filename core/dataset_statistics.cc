#include "core/dataset_statistics.h"

#include "absl/strings/str_cat.h"
#include "core/batch_sketch.h"

namespace normd {

DatasetStatistics DatasetStatistics::Empty(const DatasetSpec& spec) {
  DatasetStatistics stats;
  for (SplitStatistics& split : stats.splits) {
    split.moments.assign(static_cast<size_t>(spec.channels), ChannelMoments{});
    if (spec.sketch.has_value()) {
      split.sketches = EmptySketches(*spec.sketch, static_cast<size_t>(spec.channels));
    }
    split.fixed_histograms =
        EmptyFixedHistograms(spec.histogram_edges, static_cast<size_t>(spec.channels));
  }
  if (spec.accumulator == AccumulatorKind::kRunningAverage) {
    stats.running = RunningAverage::Initial(spec.channels);
  }
  return stats;
}

void MergeSplit(const SplitStatistics& source, const DatasetSpec& spec, SplitStatistics& target) {
  MergeMoments(source.moments, target.moments);
  if (spec.sketch.has_value()) {
    for (size_t c = 0; c < source.sketches.size() && c < target.sketches.size(); ++c) {
      MergeSketch(source.sketches[c], spec.sketch->max_buckets, target.sketches[c]);
    }
  }
  for (size_t c = 0; c < source.fixed_histograms.size() && c < target.fixed_histograms.size();
       ++c) {
    MergeFixedHistogram(source.fixed_histograms[c], target.fixed_histograms[c]);
  }
  target.batches += source.batches;
  target.samples += source.samples;
}

void MergeSplits(const DatasetStatistics& from, const DatasetSpec& spec, DatasetStatistics& into) {
  for (Split split : kAllSplits) MergeSplit(from.split(split), spec, into.split(split));
}

ReferenceStatistics ReferenceStatisticsOf(const DatasetStatistics& stats) {
  const std::vector<ChannelMoments>& train = stats.split(Split::kTrain).moments;
  ReferenceStatistics ref;
  for (const ChannelMoments& m : train) {
    ref.count.push_back(m.count);
    ref.mean.push_back(m.Mean());
    ref.variance.push_back(m.PopulationVariance());
    ref.min.push_back(m.Min());
    ref.max.push_back(m.Max());
  }
  if (stats.running.has_value()) {
    ref.mean = stats.running->mean;
    ref.variance = stats.running->var;
  }
  return ref;
}

absl::StatusOr<double> ReferenceQuantile(const ReferenceStatistics& stats, size_t c, double rank) {
  for (size_t i = 0; i < stats.quantile_ranks.size(); ++i) {
    if (stats.quantile_ranks[i] == rank && c < stats.quantiles.size() &&
        i < stats.quantiles[c].size()) {
      return stats.quantiles[c][i];
    }
  }
  return absl::InternalError(
      absl::StrCat("the statistics hold no quantile at rank ", rank, " for channel ", c));
}

}  // namespace normd
