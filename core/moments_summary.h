// A partial summary of one or more batches of a dataset: per channel, the exact
// moments normd keeps (count, double-double mean and M2, min, max), plus the samples,
// batches and non-finite values behind them. Workers reduce their data where it lies
// into summaries and send O(channels); summaries merge exactly as batches do.
#ifndef NORMD_CORE_MOMENTS_SUMMARY_H_
#define NORMD_CORE_MOMENTS_SUMMARY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/channel_moments.h"
#include "core/dataset_spec.h"
#include "core/fixed_histogram.h"
#include "core/layout.h"
#include "core/nonfinite_policy.h"
#include "core/quantile_sketch.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// Counts beyond 2^53 are not exact in float64, which Chan's merge divides by.
inline constexpr uint64_t kMaxSummaryCount = uint64_t{1} << 53;

struct MomentsSummary {
  std::vector<ChannelMoments> channels;
  uint64_t samples = 0;            // rows along N
  uint64_t batches = 0;            // batches summarised
  uint64_t skipped_nonfinite = 0;  // values left out under NonFinitePolicy::kSkip
  uint64_t masked_values = 0;      // values left out by a weight of 0
  Layout layout = Layout::kNC;     // what the batches were reduced as
  // The quantile sketches of the same values, one per channel, when the summary was
  // made for a dataset that keeps them (with that dataset's sketch spec), else none.
  std::optional<QuantileSketchSpec> sketch_spec;
  std::vector<QuantileSketch> sketches;
  // Histograms over the dataset's fixed edges, one per channel, when it has them.
  std::vector<FixedHistogram> fixed_histograms;

  // An empty summary of `channels` channels of `layout`: the identity of Merge.
  static MomentsSummary Empty(Layout layout, int64_t channels);
};

// The summary of one batch of `layout` (already validated, `geometry` resolved from
// its shape), reduced with the fit's kernels on `pool`: the very moments (and, with
// `sketch`, the very sketches) an Ingest of the batch would merge, weighted by
// `weights` (resolved against the batch) when given, with histograms over
// `histogram_edges` when given. Errors as ComputeBatchMoments.
absl::StatusOr<MomentsSummary> SummarizeBatch(const TensorView& batch, Layout layout,
                                              const ChannelGeometry& geometry,
                                              NonFinitePolicy policy, WorkerPool* pool = nullptr,
                                              const QuantileSketchSpec* sketch = nullptr,
                                              const SampleWeights* weights = nullptr,
                                              const HistogramEdges* histogram_edges = nullptr);

// into <- into (+) other, channel by channel (MergeMoments, MergeSketch).
// INVALID_ARGUMENT when the layouts, channel counts or sketch specs differ or a count
// would pass kMaxSummaryCount; `into` is then unchanged.
absl::Status MergeSummary(const MomentsSummary& other, MomentsSummary& into);

// Checks a summary that came from outside as if it were a batch for dataset `spec`:
// the dataset's layout and one entry per channel; each channel either empty (count 0, mean and M2
// zero, min +inf, max -inf) or with finite parts, normalised double-doubles, count at most
// kMaxSummaryCount, min <= mean <= max, 0 <= M2 <= W * (max - min)^2 / 4
// (Popoviciu's bound on the variance; W = count unweighted), min == max for a single
// value; weighted channels with W > 0 and W^2 / count <= sum(w^2) <= W^2 (W = 0 when
// empty); batches >= 1 and samples >= batches; no skipped values unless the dataset
// skips them; and counts consistent with the layout: the values, skipped and masked
// ones make whole pixels of every channel (for NC, exactly `samples` of them), no
// channel has more values than there are pixels, and with none skipped or masked
// every channel has them all. When the dataset
// keeps sketches the summary must hold one per channel, made about the dataset's
// centers, each valid (ValidateSketch) for its channel's count, min and max; a
// dataset without sketches ignores a summary's. Likewise for the dataset's fixed
// histograms (ValidateFixedHistogram).
// INVALID_ARGUMENT naming the field, channel, expected and received value.
absl::Status ValidateMomentsSummary(const MomentsSummary& summary, const DatasetSpec& spec);

}  // namespace normd

#endif  // NORMD_CORE_MOMENTS_SUMMARY_H_
