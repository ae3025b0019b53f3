// Histograms over bin edges fixed when a dataset is created: exact counts (weight sums
// for weighted batches) of the values in each bin, kept beside the moments and
// sketches of every split and merged by adding.
#ifndef NORMD_CORE_FIXED_HISTOGRAM_H_
#define NORMD_CORE_FIXED_HISTOGRAM_H_

#include <cstddef>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "core/channel_moments.h"
#include "core/layout.h"
#include "core/sample_weights.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

inline constexpr size_t kMaxHistogramEdges = 10001;            // 10000 bins a channel
inline constexpr size_t kMaxHistogramCells = size_t{1} << 20;  // bins over all channels

// A dataset's edges: one list shared by every channel, or one per channel.
struct HistogramEdges {
  std::vector<std::vector<double>> lists;

  bool empty() const { return lists.empty(); }
  const std::vector<double>& Of(size_t channel) const {
    return lists.size() == 1 ? lists[0] : lists[channel];
  }
  friend bool operator==(const HistogramEdges&, const HistogramEdges&) = default;
};

// numpy.histogram's bins: [edges[i], edges[i + 1]) with the last one closed, and the
// finite values outside [edges.front(), edges.back()] in `below` and `above`.
struct FixedHistogram {
  std::vector<double> counts;
  double below = 0;
  double above = 0;

  double Total() const;
};

// 1 or `channels` lists, each of 2..kMaxHistogramEdges finite, strictly increasing
// edges, at most kMaxHistogramCells bins in all. INVALID_ARGUMENT naming the list.
absl::Status ValidateHistogramEdges(const HistogramEdges& edges, int64_t channels);

// Empty histograms for `channels` channels.
std::vector<FixedHistogram> EmptyFixedHistograms(const HistogramEdges& edges, size_t channels);

// Adds every finite value of `batch` (validated, `geometry` resolved from its shape)
// to its channel's histogram, counting its weight when `weights` are given (0: left
// out); nothing without edges. Parts of a large batch run on `pool`; the result does
// not depend on the pool.
void AddBatchToFixedHistograms(const TensorView& batch, const ChannelGeometry& geometry,
                               const HistogramEdges& edges, std::span<FixedHistogram> histograms,
                               WorkerPool* pool = nullptr, const SampleWeights* weights = nullptr);

void MergeFixedHistogram(const FixedHistogram& from, FixedHistogram& into);

// Checks a histogram from outside (a summary) for a channel with `moments`: one count
// per bin of `edges`, counts finite and >= 0, summing with below and above to the
// channel's count (weighted: to its W, up to rounding), no values outside
// [min, max]'s bins. INVALID_ARGUMENT naming `what`.
absl::Status ValidateFixedHistogram(const FixedHistogram& histogram,
                                    const std::vector<double>& edges, const ChannelMoments& moments,
                                    const char* what);

}  // namespace normd

#endif  // NORMD_CORE_FIXED_HISTOGRAM_H_
