// The bin of each value by binary search over its channel's edges: opt-in, and
// O(log bins) a value, so it costs more than the sketch; the parts of a batch run on
// the pool.
#include "core/fixed_histogram.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace normd {
namespace {

constexpr size_t kPartValues = size_t{1} << 20;

// The bin of finite v: -1 below the first edge, bins() above the last.
ptrdiff_t BinOf(const std::vector<double>& edges, double v) {
  if (v < edges.front()) return -1;
  if (v >= edges.back())
    return v == edges.back() ? static_cast<ptrdiff_t>(edges.size()) - 2
                             : static_cast<ptrdiff_t>(edges.size()) - 1;
  return std::upper_bound(edges.begin(), edges.end(), v) - edges.begin() - 1;
}

void Count(FixedHistogram& h, ptrdiff_t bin, double weight) {
  if (bin < 0) {
    h.below += weight;
  } else if (static_cast<size_t>(bin) >= h.counts.size()) {
    h.above += weight;
  } else {
    h.counts[static_cast<size_t>(bin)] += weight;
  }
}

}  // namespace

double FixedHistogram::Total() const {
  double total = below + above;
  for (double c : counts) total += c;
  return total;
}

absl::Status ValidateHistogramEdges(const HistogramEdges& edges, int64_t channels) {
  if (edges.empty()) return absl::OkStatus();
  if (edges.lists.size() != 1 && edges.lists.size() != static_cast<size_t>(channels)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram_edges must hold one list of edges for every channel or one per channel (",
        channels, "), got ", edges.lists.size()));
  }
  size_t cells = 0;
  for (size_t l = 0; l < edges.lists.size(); ++l) {
    const std::vector<double>& list = edges.lists[l];
    if (list.size() < 2 || list.size() > kMaxHistogramEdges) {
      return absl::InvalidArgumentError(absl::StrCat("histogram_edges[", l, "] holds ", list.size(),
                                                     " edges; expected 2 to ", kMaxHistogramEdges,
                                                     " (1 to ", kMaxHistogramEdges - 1, " bins)"));
    }
    for (size_t i = 0; i < list.size(); ++i) {
      if (!std::isfinite(list[i]) || (i > 0 && !(list[i] > list[i - 1]))) {
        return absl::InvalidArgumentError(
            absl::StrCat("histogram_edges[", l, "][", i, "] is ", list[i],
                         "; expected finite, strictly increasing edges"));
      }
    }
    cells += (list.size() - 1) * (edges.lists.size() == 1 ? static_cast<size_t>(channels) : 1);
  }
  if (cells > kMaxHistogramCells) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram_edges make ", cells, " bins over all channels; at most ", kMaxHistogramCells));
  }
  return absl::OkStatus();
}

std::vector<FixedHistogram> EmptyFixedHistograms(const HistogramEdges& edges, size_t channels) {
  std::vector<FixedHistogram> histograms(edges.empty() ? 0 : channels);
  for (size_t c = 0; c < histograms.size(); ++c) {
    histograms[c].counts.assign(edges.Of(c).size() - 1, 0.0);
  }
  return histograms;
}

void AddBatchToFixedHistograms(const TensorView& batch, const ChannelGeometry& geometry,
                               const HistogramEdges& edges, std::span<FixedHistogram> histograms,
                               WorkerPool* pool, const SampleWeights* weights) {
  if (edges.empty()) return;
  const auto outer = static_cast<size_t>(geometry.outer);
  const auto channels = static_cast<size_t>(geometry.channels);
  const auto inner = static_cast<size_t>(geometry.inner);
  const size_t per_part = std::max<size_t>(1, kPartValues / (channels * inner));
  const size_t parts = (outer + per_part - 1) / per_part;
  std::vector<std::vector<FixedHistogram>> results(parts);
  const auto count_part = [&](size_t p) {
    std::vector<FixedHistogram>& part = results[p];
    part = EmptyFixedHistograms(edges, channels);
    VisitDType(batch.dtype, [&](auto tag) {
      using T = decltype(tag);
      const size_t end = std::min(outer, (p + 1) * per_part);
      for (size_t o = p * per_part; o < end; ++o) {
        for (size_t c = 0; c < channels; ++c) {
          const std::vector<double>& list = edges.Of(c);
          const size_t first = (o * channels + c) * inner;
          for (size_t i = 0; i < inner; ++i) {
            const double w = weights == nullptr
                                 ? 1.0
                                 : weights->weights[(first + i) / weights->values_per_weight];
            const double v = ToDouble(LoadElement<T>(batch.bytes.data(), first + i));
            if (!(w > 0) || !std::isfinite(v)) continue;
            Count(part[c], BinOf(list, v), w);
          }
        }
      }
    });
  };
  RunTasks(pool, parts, count_part);
  for (const std::vector<FixedHistogram>& part : results) {  // in order: the same sums always
    for (size_t c = 0; c < channels; ++c) MergeFixedHistogram(part[c], histograms[c]);
  }
}

void MergeFixedHistogram(const FixedHistogram& from, FixedHistogram& into) {
  for (size_t b = 0; b < from.counts.size() && b < into.counts.size(); ++b) {
    into.counts[b] += from.counts[b];
  }
  into.below += from.below;
  into.above += from.above;
}

absl::Status ValidateFixedHistogram(const FixedHistogram& histogram,
                                    const std::vector<double>& edges, const ChannelMoments& moments,
                                    const char* what) {
  if (histogram.counts.size() + 1 != edges.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds ", histogram.counts.size(),
                                                   " bins; the dataset's edges make ",
                                                   edges.size() - 1));
  }
  const auto bad = [](double c) { return !(std::isfinite(c) && c >= 0); };
  if (bad(histogram.below) || bad(histogram.above) ||
      std::any_of(histogram.counts.begin(), histogram.counts.end(), bad)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds a count that is negative or not finite; expected counts >= 0"));
  }
  if (moments.count > 0) {
    const ptrdiff_t low = BinOf(edges, moments.min), high = BinOf(edges, moments.max);
    for (ptrdiff_t b = -1; b <= static_cast<ptrdiff_t>(histogram.counts.size()); ++b) {
      const double count = b < 0 ? histogram.below
                           : static_cast<size_t>(b) == histogram.counts.size()
                               ? histogram.above
                               : histogram.counts[static_cast<size_t>(b)];
      if (count > 0 && (b < low || b > high)) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, " counts values in bin ", b, ", outside the bins of the channel's [min, max] = [",
            moments.min, ", ", moments.max, "]"));
      }
    }
  }
  const double total = histogram.Total();
  const double expected = moments.Weight().value();
  if (moments.weighted ? !(std::abs(total - expected) <= 1e-9 * expected) : total != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " counts ", total, " (bins, below and above); the channel's moments ",
                     moments.weighted ? "weigh " : "count ", expected));
  }
  return absl::OkStatus();
}

}  // namespace normd
