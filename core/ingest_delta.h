// The statistics of an ingest transaction, kept apart from the dataset until the
// transaction commits: O(channels) memory however many batches it holds.
#ifndef NORMD_CORE_INGEST_DELTA_H_
#define NORMD_CORE_INGEST_DELTA_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "core/device_offload.h"
#include "core/moments_summary.h"
#include "core/running_average.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

struct BatchSummary {
  uint64_t samples = 0;
  uint64_t values = 0;
  uint64_t skipped_nonfinite = 0;
};

class IngestDelta {
 public:
  explicit IngestDelta(const DatasetSpec& spec);

  // Checks `batch` against the dataset's layout and channels, reduces it to
  // per-channel moments (on `pool` when given) and merges them into this delta. With
  // `weights` (checked by ResolveSampleWeights) the moments and sketches are weighted;
  // the train split of a running-average dataset refuses them (FAILED_PRECONDITION).
  // An unweighted batch's moments are offered to `device` first (null: none); the
  // sketches and fixed histograms are always the CPU's. On error nothing changes.
  absl::StatusOr<BatchSummary> AddBatch(Split split, const ValidatedTensor& batch,
                                        WorkerPool* pool = nullptr,
                                        const TensorView* weights = nullptr,
                                        DeviceOffload* device = nullptr);

  // Merges one batch's moments (geometry.channels of them, computed under the
  // dataset's non-finite policy, `skipped` values left out) into this delta, as
  // AddBatch does after reducing a batch, and the batch's values into the sketches
  // when the dataset keeps them. On error nothing changes.
  absl::StatusOr<BatchSummary> AddMoments(Split split, const ValidatedTensor& batch,
                                          const ChannelGeometry& geometry,
                                          std::span<const ChannelMoments> moments, uint64_t skipped,
                                          WorkerPool* pool = nullptr,
                                          const SampleWeights* weights = nullptr);

  // Merges a partial summary made elsewhere (untrusted: ValidateMomentsSummary) into
  // this delta. A running average depends on the order and size of each batch, so
  // in the train split of a running-average dataset a summary must cover exactly one
  // batch and then updates the average as that batch would; a summary of several
  // batches there is FAILED_PRECONDITION. On error nothing changes.
  absl::StatusOr<BatchSummary> AddSummary(Split split, const MomentsSummary& summary);

  // FAILED_PRECONDITION when merging this delta into `stats` would count more than
  // kMaxSummaryCount values in a channel (only summaries can bring a dataset there);
  // INVALID_ARGUMENT when the merged moments would overflow float64
  // (CheckRepresentable). Checked before anything is applied.
  absl::Status CheckMergeFits(const DatasetStatistics& stats) const;

  // Merges everything added into `stats` (which must belong to the same spec).
  void ApplyTo(DatasetStatistics& stats) const;

  const BatchSummary& totals() const { return totals_; }
  uint64_t batches() const { return batches_; }

 private:
  // Merges checked moments (and sketches and histograms, when the dataset keeps them) of `batches`
  // batches into the split and the totals.
  BatchSummary Merge(Split split, std::span<const ChannelMoments> moments,
                     std::span<const QuantileSketch> sketches,
                     std::span<const FixedHistogram> histograms, uint64_t samples, uint64_t batches,
                     uint64_t skipped, bool tracks_running);

  DatasetSpec spec_;
  DatasetStatistics delta_;
  std::optional<RunningAverageDelta> running_;
  std::vector<ChannelMoments> scratch_;            // one batch's moments, reused
  std::vector<QuantileSketch> sketch_scratch_;     // one batch's sketches
  std::vector<double> weight_storage_;             // one batch's weights as float64
  std::vector<FixedHistogram> histogram_scratch_;  // one batch's fixed histograms
  BatchSummary totals_;
  uint64_t batches_ = 0;
};

}  // namespace normd

#endif  // NORMD_CORE_INGEST_DELTA_H_
