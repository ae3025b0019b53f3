// The per-channel quantile sketch normd keeps beside the exact moments.
//
// Which sketch, and why. Buckets are the binary prefixes of d = x - center's float64
// bits (core/kernels/sketch_index.h): a log-linear histogram in the family of
// DDSketch (Masson, Rim and Lee, VLDB 2019) and HDR histograms, with UDDSketch's
// uniform collapse (Epicoco et al., 2020) to bound memory. Against the anchors:
// - Error: every bucket spans a relative width of 2^-resolution, so a quantile's
//   value is within 2^-(resolution+1) of the true one relative to |x - center|, and
//   each answer carries its own absolute bound from its buckets' edges, clipped to
//   the exact min and max. KLL and Greenwald-Khanna bound rank error instead; t-digest
//   bounds nothing. A large offset (1e8 + noise) keeps its resolution when the dataset's
//   center is set near it.
// - Merging adds bucket counts. With the collapse rule below, the sketch of a set of
//   values does not depend on how they were split, batched or ordered: the same data
//   in any order give the same bytes (unweighted counts are integers, exact in
//   float64). KLL's compactions are random and order dependent; t-digest's clusters
//   depend on arrival order; GK does not merge well.
// - Memory: at most max_buckets per channel. Past it, the sketch coarsens by one
//   resolution (index >> 1, pairs of buckets merge), which halves the buckets of any
//   distribution spanning more than one octave, until it fits: a subset of the data
//   never needs a coarser resolution than the whole, so the final resolution is that
//   of the union, whatever the order.
// - Speed: an index is a subtraction, a mask and a shift (SIMD), then one increment.
#ifndef NORMD_CORE_QUANTILE_SKETCH_H_
#define NORMD_CORE_QUANTILE_SKETCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/channel_moments.h"

namespace normd {

// Resolutions a sketch may hold; the kernels index at 0..10 (accuracy 1/2..2^-11),
// and coarsening may go below 0, down to one bucket per sign.
inline constexpr int kMinSketchResolution = -11;
inline constexpr int kMaxSketchResolution = 10;
inline constexpr uint32_t kMinSketchBuckets = 16;
inline constexpr uint32_t kMaxSketchBuckets = 1 << 16;

struct SketchBucket {
  int32_t index = 0;
  double count = 0;  // integer for unweighted data; a weight sum otherwise

  friend bool operator==(const SketchBucket&, const SketchBucket&) = default;
};

struct QuantileSketch {
  int resolution = 0;
  std::vector<SketchBucket> buckets;  // strictly increasing index, count > 0

  double TotalCount() const;
  friend bool operator==(const QuantileSketch&, const QuantileSketch&) = default;
};

// A bucket's values of x at a resolution, for a channel with `center`: every x whose
// d = fl(x - center) falls in the bucket lies in [low, high] (rounding of the
// subtraction and of center + edge included).
struct ValueRange {
  double low = 0;
  double high = 0;
};
ValueRange BucketValueRange(int32_t index, int resolution, double center);

// Adds sorted, distinct (index, count) buckets at `resolution` (>= sketch's, coarsened
// to it) into `sketch`, then coarsens while it holds more than max_buckets.
void AddBuckets(std::span<const SketchBucket> buckets, int resolution, uint32_t max_buckets,
                QuantileSketch& sketch);
// into <- into (+) from: the same rule.
void MergeSketch(const QuantileSketch& from, uint32_t max_buckets, QuantileSketch& into);

// The value at `rank` in [0, 1] with numpy's default ("linear") definition:
// position rank * (n - 1) among the sorted values, interpolated between its two
// neighbours; `error_bound` is an absolute bound on |value - exact|, from the buckets
// that hold the two neighbours clipped to [min, max]. NaN for an empty sketch.
struct QuantileEstimate {
  double value = 0;
  double error_bound = 0;
};
QuantileEstimate EstimateQuantile(const QuantileSketch& sketch, double rank, double center,
                                  double min, double max);

// A histogram of the sketch in at most `bins` bins, each a union of whole buckets, so
// that every count is exact: bins aim at equal widths over [min, max] and their edges
// are the bucket edges nearest those targets (edges.size() == counts.size() + 1).
struct SketchHistogram {
  std::vector<double> edges;
  std::vector<double> counts;
};
SketchHistogram HistogramOf(const QuantileSketch& sketch, uint32_t bins, double center, double min,
                            double max);

// The relative accuracy a resolution gives: 2^-(resolution + 1).
double SketchRelativeAccuracy(int resolution);
// The coarsest resolution whose accuracy is at least `relative_accuracy`;
// INVALID_ARGUMENT outside [2^-11, 0.5].
absl::StatusOr<int> SketchResolutionFor(double relative_accuracy);

// Checks a sketch from outside (a summary): resolution in range, indices strictly
// increasing and of finite values, counts finite and positive, at most max_buckets,
// counts summing to the channel's exact count (weighted: to its W, up to rounding),
// every bucket's values inside the channel's [min, max]. INVALID_ARGUMENT naming
// `what` and what was expected.
absl::Status ValidateSketch(const QuantileSketch& sketch, double center,
                            const ChannelMoments& moments, uint32_t max_buckets, const char* what);

}  // namespace normd

#endif  // NORMD_CORE_QUANTILE_SKETCH_H_
