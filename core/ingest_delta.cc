#include "core/ingest_delta.h"

#include "common/status_macros.h"

#include "core/batch_moments.h"
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
                                                   WorkerPool* pool) {
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry,
                         ResolveGeometry(spec_.layout, spec_.channels, batch.shape()));
  NORMD_ASSIGN_OR_RETURN(
      const uint64_t skipped,
      ComputeBatchMoments(batch.view(), geometry, spec_.nonfinite, scratch_, pool));
  return AddMoments(split, geometry, scratch_, skipped);
}

absl::StatusOr<BatchSummary> IngestDelta::AddMoments(Split split, const ChannelGeometry& geometry,
                                                     std::span<const ChannelMoments> moments,
                                                     uint64_t skipped) {
  const bool tracks_running = running_.has_value() && split == Split::kTrain;
  if (tracks_running) {
    NORMD_RETURN_IF_ERROR(CheckRunningAverageBatch(moments));
  }

  SplitStatistics& target = delta_.split(split);
  MergeMoments(moments, target.moments);
  ++target.batches;
  target.samples += static_cast<uint64_t>(geometry.samples);
  if (tracks_running) running_->AddBatch(moments);

  BatchSummary summary;
  summary.samples = static_cast<uint64_t>(geometry.samples);
  summary.skipped_nonfinite = skipped;
  summary.values = static_cast<uint64_t>(geometry.elements()) - skipped;
  totals_.samples += summary.samples;
  totals_.values += summary.values;
  totals_.skipped_nonfinite += summary.skipped_nonfinite;
  ++batches_;
  return summary;
}

void IngestDelta::ApplyTo(DatasetStatistics& stats) const {
  for (Split split : kAllSplits) {
    const SplitStatistics& from = delta_.split(split);
    SplitStatistics& into = stats.split(split);
    MergeMoments(from.moments, into.moments);
    into.batches += from.batches;
    into.samples += from.samples;
  }
  if (running_.has_value() && stats.running.has_value()) running_->ApplyTo(*stats.running);
}

}  // namespace normd
