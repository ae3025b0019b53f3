#include "core/ingest_delta.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

#include "core/batch_moments.h"
#include "core/batch_sketch.h"
#include "core/layout.h"

namespace normd {

IngestDelta::IngestDelta(const DatasetSpec& spec)
    : spec_(spec),
      delta_(DatasetStatistics::Empty(spec)),
      scratch_(static_cast<size_t>(spec.channels)) {
  delta_.running.reset();
  if (spec.accumulator == AccumulatorKind::kRunningAverage) {
    running_.emplace(spec.channels, spec.momentum);
  }
}

absl::StatusOr<BatchSummary> IngestDelta::AddBatch(Split split, const ValidatedTensor& batch,
                                                   WorkerPool* pool, const TensorView* weights,
                                                   DeviceOffload* device) {
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry,
                         ResolveGeometry(spec_.layout, spec_.channels, batch.shape()));
  std::optional<SampleWeights> resolved;
  if (weights != nullptr) {
    if (running_.has_value() && split == Split::kTrain) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset \"", spec_.name,
          "\" keeps a running average, which PyTorch updates from each train batch's "
          "unweighted statistics: train batches take no weights there (other splits do)"));
    }
    NORMD_ASSIGN_OR_RETURN(
        resolved, ResolveSampleWeights(*weights, batch.shape(), "weights", weight_storage_));
  }
  const SampleWeights* w = resolved.has_value() ? &*resolved : nullptr;
  std::optional<absl::StatusOr<uint64_t>> on_device;
  if (device != nullptr && w == nullptr) {
    on_device = device->ComputeBatchMoments(batch, geometry, spec_.nonfinite, scratch_);
  }
  NORMD_ASSIGN_OR_RETURN(
      const uint64_t skipped,
      on_device.has_value()
          ? *std::move(on_device)
          : ComputeBatchMoments(batch.view(), geometry, spec_.nonfinite, scratch_, pool, w));
  return AddMoments(split, batch, geometry, scratch_, skipped, pool, w);
}

absl::StatusOr<BatchSummary> IngestDelta::AddMoments(Split split, const ValidatedTensor& batch,
                                                     const ChannelGeometry& geometry,
                                                     std::span<const ChannelMoments> moments,
                                                     uint64_t skipped, WorkerPool* pool,
                                                     const SampleWeights* weights) {
  // Moments made elsewhere (batch norm's training pass) are checked as a fit's are.
  for (size_t c = 0; c < moments.size(); ++c) {
    NORMD_RETURN_IF_ERROR(CheckRepresentable(moments[c], c, "the batch"));
  }
  const bool tracks_running = running_.has_value() && split == Split::kTrain;
  if (tracks_running) {
    NORMD_RETURN_IF_ERROR(CheckRunningAverageBatch(moments));
  }
  sketch_scratch_.clear();
  if (spec_.sketch.has_value()) {
    sketch_scratch_ = EmptySketches(*spec_.sketch, static_cast<size_t>(spec_.channels));
    AddBatchToSketches(batch.view(), geometry, *spec_.sketch, sketch_scratch_, pool, weights);
  }
  histogram_scratch_ =
      EmptyFixedHistograms(spec_.histogram_edges, static_cast<size_t>(spec_.channels));
  AddBatchToFixedHistograms(batch.view(), geometry, spec_.histogram_edges, histogram_scratch_, pool,
                            weights);
  return Merge(split, moments, sketch_scratch_, histogram_scratch_,
               static_cast<uint64_t>(geometry.samples), 1, skipped, tracks_running);
}

BatchSummary IngestDelta::Merge(Split split, std::span<const ChannelMoments> moments,
                                std::span<const QuantileSketch> sketches,
                                std::span<const FixedHistogram> histograms, uint64_t samples,
                                uint64_t batches, uint64_t skipped, bool tracks_running) {
  SplitStatistics& target = delta_.split(split);
  MergeMoments(moments, target.moments);
  if (spec_.sketch.has_value()) {
    for (size_t c = 0; c < sketches.size(); ++c) {
      MergeSketch(sketches[c], spec_.sketch->max_buckets, target.sketches[c]);
    }
  }
  for (size_t c = 0; c < histograms.size() && c < target.fixed_histograms.size(); ++c) {
    MergeFixedHistogram(histograms[c], target.fixed_histograms[c]);
  }
  target.batches += batches;
  target.samples += samples;
  if (tracks_running) running_->AddBatch(moments);

  BatchSummary added;
  added.samples = samples;
  added.skipped_nonfinite = skipped;
  for (const ChannelMoments& m : moments) added.values += m.count;  // all but the skipped
  totals_.samples += added.samples;
  totals_.values += added.values;
  totals_.skipped_nonfinite += added.skipped_nonfinite;
  batches_ += batches;
  return added;
}

absl::StatusOr<BatchSummary> IngestDelta::AddSummary(Split split, const MomentsSummary& summary) {
  NORMD_RETURN_IF_ERROR(ValidateMomentsSummary(summary, spec_));
  const bool tracks_running = running_.has_value() && split == Split::kTrain;
  if (tracks_running && summary.batches != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset \"", spec_.name,
        "\" keeps a running average, which depends on the order and "
        "size of each train batch: a summary there must cover exactly one batch (batches = 1), "
        "got one of ",
        summary.batches, " batches; send one summary per batch, in order"));
  }
  if (tracks_running) NORMD_RETURN_IF_ERROR(CheckRunningAverageBatch(summary.channels));
  SplitStatistics& target = delta_.split(split);
  for (size_t c = 0; c < target.moments.size(); ++c) {
    if (summary.channels[c].count > kMaxSummaryCount - target.moments[c].count) {
      return absl::InvalidArgumentError(
          absl::StrCat("the stream would count more than 2^53 values in channel ", c,
                       " (beyond it float64 cannot count exactly)"));
    }
  }
  return Merge(split, summary.channels, summary.sketches, summary.fixed_histograms, summary.samples,
               summary.batches, summary.skipped_nonfinite, tracks_running);
}

absl::Status IngestDelta::CheckMergeFits(const DatasetStatistics& stats) const {
  for (Split split : kAllSplits) {
    const std::vector<ChannelMoments>& from = delta_.split(split).moments;
    const std::vector<ChannelMoments>& into = stats.split(split).moments;
    for (size_t c = 0; c < from.size() && c < into.size(); ++c) {
      if (from[c].count > kMaxSummaryCount - into[c].count) {
        return absl::FailedPreconditionError(absl::StrCat(
            "dataset \"", spec_.name, "\" holds ", into[c].count, " values in channel ", c,
            " of split ", SplitName(split), "; adding ", from[c].count,
            " would pass 2^53, beyond which float64 cannot count exactly; nothing was applied"));
      }
      // Each side is finite; together they may not be ([1e154] then [-1e154]).
      ChannelMoments merged = into[c];
      MergeMoments(from[c], merged);
      NORMD_RETURN_IF_ERROR(CheckRepresentable(
          merged, c,
          absl::StrCat("dataset \"", spec_.name, "\" (split ", SplitName(split),
                       ") with this batch added")));
    }
  }
  return absl::OkStatus();
}

void IngestDelta::ApplyTo(DatasetStatistics& stats) const {
  MergeSplits(delta_, spec_, stats);
  if (running_.has_value() && stats.running.has_value()) running_->ApplyTo(*stats.running);
}

}  // namespace normd
