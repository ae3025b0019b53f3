#include "core/quantile_sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace normd {
namespace {

constexpr uint64_t kInfinityBits = 0x7ff0000000000000ull;

uint64_t MagnitudeOf(int32_t index) {
  return static_cast<uint64_t>(index < 0 ? -int64_t{1} - index : int64_t{index});
}

// Keeps the buckets' order while moving them `by` resolutions coarser.
void CoarsenBy(int by, std::vector<SketchBucket>& buckets) {
  if (by <= 0 || buckets.empty()) return;
  size_t out = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const int32_t index = buckets[i].index >> by;  // arithmetic: see sketch_index.h
    if (out > 0 && buckets[out - 1].index == index) {
      buckets[out - 1].count += buckets[i].count;
    } else {
      buckets[out++] = SketchBucket{index, buckets[i].count};
    }
  }
  buckets.resize(out);
}

void FitWithin(uint32_t max_buckets, QuantileSketch& sketch) {
  while (sketch.buckets.size() > max_buckets && sketch.resolution > kMinSketchResolution) {
    CoarsenBy(1, sketch.buckets);
    --sketch.resolution;
  }
}

// The bucket's values clipped to the channel's exact range, and its midpoint.
struct ClippedBucket {
  double value;
  double half_width;
};
ClippedBucket Clip(int32_t index, int resolution, double center, double min, double max) {
  const ValueRange range = BucketValueRange(index, resolution, center);
  const double low = std::clamp(range.low, min, max);
  const double high = std::clamp(range.high, min, max);
  const double half_width = (high - low) / 2;
  return {low + half_width, half_width};
}

}  // namespace

double QuantileSketch::TotalCount() const {
  double total = 0;
  for (const SketchBucket& b : buckets) total += b.count;
  return total;
}

ValueRange BucketValueRange(int32_t index, int resolution, double center) {
  const int shift = 52 - resolution;
  const uint64_t magnitude = MagnitudeOf(index);
  const uint64_t low_bits = magnitude << shift;
  const uint64_t high_bits = (magnitude + 1) << shift;  // 0 when it wraps at shift 63
  const double a = std::bit_cast<double>(low_bits);
  const double b = high_bits > kInfinityBits || high_bits == 0
                       ? std::numeric_limits<double>::infinity()
                       : std::bit_cast<double>(high_bits);
  // d = fl(x - center) lies in [a, b) (negative buckets: (a, b] of |d|, see
  // sketch_index.h); x - center = d (1 + delta) with |delta| <= 2^-53, and center + edge
  // rounds once more: widen by 2^-51 of the scale. About 0 nothing rounds.
  const double slack = center == 0 ? 0.0 : 0x1p-51 * (std::abs(center) + (std::isinf(b) ? a : b));
  if (index < 0) return {center - b - slack, center - a + slack};
  return {center + a - slack, center + b + slack};
}

void AddBuckets(std::span<const SketchBucket> buckets, int resolution, uint32_t max_buckets,
                QuantileSketch& sketch) {
  if (buckets.empty()) return;
  if (resolution < sketch.resolution) {
    CoarsenBy(sketch.resolution - resolution, sketch.buckets);
    sketch.resolution = resolution;
  }
  const int by = resolution - sketch.resolution;
  if (by == 0 && sketch.buckets.empty()) {
    sketch.buckets.assign(buckets.begin(), buckets.end());
    FitWithin(max_buckets, sketch);
    return;
  }
  if (by == 0) {
    // The usual case: a batch's buckets at the sketch's resolution, distinct. Merged in
    // place, so that a stream of batches into a large sketch allocates nothing once it
    // has room: counts added where their buckets exist (found by binary search when the
    // batch is small against the sketch, else by one walk), then the new buckets
    // merged in from the back, which moves only what lies above them. The counts add
    // in the same order as the general merge below.
    std::vector<SketchBucket>& held = sketch.buckets;
    size_t missing = 0;
    if (buckets.size() * 8 < held.size()) {
      auto from = held.begin();
      for (const SketchBucket& b : buckets) {
        from =
            std::lower_bound(from, held.end(), b.index,
                             [](const SketchBucket& s, int32_t index) { return s.index < index; });
        if (from != held.end() && from->index == b.index) {
          from->count += b.count;
        } else {
          ++missing;
        }
      }
    } else {
      size_t i = 0;
      for (const SketchBucket& b : buckets) {
        while (i < held.size() && held[i].index < b.index) ++i;
        if (i < held.size() && held[i].index == b.index) {
          held[i].count += b.count;
        } else {
          ++missing;
        }
      }
    }
    if (missing == 0) return;
    size_t i = held.size(), j = buckets.size();
    held.resize(i + missing);
    size_t k = held.size();
    while (j > 0) {
      if (i > 0 && held[i - 1].index >= buckets[j - 1].index) {
        if (held[i - 1].index == buckets[j - 1].index) --j;  // added above
        held[--k] = held[--i];
      } else {
        held[--k] = buckets[--j];
      }
    }
    FitWithin(max_buckets, sketch);
    return;
  }
  std::vector<SketchBucket> merged;
  merged.reserve(sketch.buckets.size() + buckets.size());
  size_t i = 0, j = 0;
  const auto push = [&merged](SketchBucket b) {
    if (!merged.empty() && merged.back().index == b.index) {
      merged.back().count += b.count;
    } else {
      merged.push_back(b);
    }
  };
  while (i < sketch.buckets.size() || j < buckets.size()) {
    if (j == buckets.size() ||
        (i < sketch.buckets.size() && sketch.buckets[i].index <= (buckets[j].index >> by))) {
      push(sketch.buckets[i++]);
    } else {
      push(SketchBucket{buckets[j].index >> by, buckets[j].count});
      ++j;
    }
  }
  sketch.buckets = std::move(merged);
  FitWithin(max_buckets, sketch);
}

void MergeSketch(const QuantileSketch& from, uint32_t max_buckets, QuantileSketch& into) {
  if (from.buckets.empty()) {
    // An empty sketch still holds a resolution, and the union's is the coarser one.
    if (from.resolution < into.resolution) {
      CoarsenBy(into.resolution - from.resolution, into.buckets);
      into.resolution = from.resolution;
    }
    return;
  }
  AddBuckets(from.buckets, from.resolution, max_buckets, into);
}

QuantileEstimate EstimateQuantile(const QuantileSketch& sketch, double rank, double center,
                                  double min, double max) {
  const double n = sketch.TotalCount();
  if (sketch.buckets.empty() || !(n > 0)) {
    return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  }
  const double position = rank * (n - 1);
  const double below = std::floor(position);
  const double fraction = position - below;
  // The buckets holding the values at 0-based positions `below` and `below + 1`.
  ClippedBucket first{}, second{};
  bool have_first = false;
  double cumulative = 0;
  for (const SketchBucket& b : sketch.buckets) {
    cumulative += b.count;
    if (!have_first && cumulative > below) {
      first = Clip(b.index, sketch.resolution, center, min, max);
      have_first = true;
    }
    if (have_first && (fraction == 0 || cumulative > below + 1)) {
      second = fraction == 0 ? first : Clip(b.index, sketch.resolution, center, min, max);
      break;
    }
  }
  if (!have_first)
    first = second = Clip(sketch.buckets.back().index, sketch.resolution, center, min, max);
  const double value = (1 - fraction) * first.value + fraction * second.value;
  // The interpolation's and numpy's roundings: a few ulps of the larger neighbour.
  const double rounding = 0x1p-50 * std::max(std::abs(first.value), std::abs(second.value));
  return {std::clamp(value, min, max),
          (1 - fraction) * first.half_width + fraction * second.half_width + rounding};
}

SketchHistogram HistogramOf(const QuantileSketch& sketch, uint32_t bins, double center, double min,
                            double max) {
  SketchHistogram histogram;
  if (bins == 0 || sketch.buckets.empty() || !(min <= max)) return histogram;
  histogram.edges.assign(bins + 1, max);
  histogram.edges[0] = min;
  histogram.counts.assign(bins, 0.0);
  const double width = max - min;
  uint32_t open = 0;  // edges[1..open] are set
  for (const SketchBucket& b : sketch.buckets) {
    const ClippedBucket clipped = Clip(b.index, sketch.resolution, center, min, max);
    uint32_t bin = 0;
    if (width > 0) {
      const double at = std::floor((clipped.value - min) / width * bins);
      bin = static_cast<uint32_t>(std::clamp(at, 0.0, static_cast<double>(bins - 1)));
    }
    bin = std::max(bin, open);
    const double low = std::max(clipped.value - clipped.half_width, histogram.edges[open]);
    for (; open < bin; ++open) histogram.edges[open + 1] = low;
    histogram.counts[bin] += b.count;
  }
  return histogram;
}

double SketchRelativeAccuracy(int resolution) { return std::ldexp(1.0, -(resolution + 1)); }

absl::StatusOr<int> SketchResolutionFor(double relative_accuracy) {
  if (!(relative_accuracy >= SketchRelativeAccuracy(kMaxSketchResolution) &&
        relative_accuracy <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sketch relative_accuracy must be in [2^-11, 0.5] (", 0x1p-11,
                     " to 0.5), got ", relative_accuracy));
  }
  int resolution = 0;
  while (SketchRelativeAccuracy(resolution) > relative_accuracy) ++resolution;
  return resolution;
}

absl::Status ValidateSketch(const QuantileSketch& sketch, double center,
                            const ChannelMoments& moments, uint32_t max_buckets, const char* what) {
  const double min = moments.min, max = moments.max;
  if (sketch.resolution < kMinSketchResolution || sketch.resolution > kMaxSketchResolution) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has resolution ", sketch.resolution,
                                                   "; expected ", kMinSketchResolution, " to ",
                                                   kMaxSketchResolution));
  }
  if (sketch.buckets.size() > max_buckets) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has ", sketch.buckets.size(), " buckets; the dataset keeps at most ", max_buckets));
  }
  const uint64_t max_magnitude = (kInfinityBits - 1) >> (52 - sketch.resolution);
  double total = 0;
  for (size_t i = 0; i < sketch.buckets.size(); ++i) {
    const SketchBucket& b = sketch.buckets[i];
    if (i > 0 && b.index <= sketch.buckets[i - 1].index) {
      return absl::InvalidArgumentError(absl::StrCat(what, " bucket ", i, " has index ", b.index,
                                                     " after ", sketch.buckets[i - 1].index,
                                                     "; expected strictly increasing indices"));
    }
    if (MagnitudeOf(b.index) > max_magnitude) {
      return absl::InvalidArgumentError(absl::StrCat(what, " bucket ", i, " (index ", b.index,
                                                     ") holds non-finite values; expected at "
                                                     "most magnitude ",
                                                     max_magnitude));
    }
    if (!(std::isfinite(b.count) && b.count > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " bucket ", i, " has count ", b.count,
                                                     "; expected a finite count above 0"));
    }
    const ValueRange range = BucketValueRange(b.index, sketch.resolution, center);
    if (range.high < min || range.low > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " bucket ", i, " holds values in [", range.low, ", ", range.high,
                       "], outside the channel's [min, max] = [", min, ", ", max, "]"));
    }
    total += b.count;
  }
  if (!moments.weighted && total != static_cast<double>(moments.count)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " counts ", total, " values; the channel's moments count ", moments.count));
  }
  // Weight sums added in another order than the moments' W: equal to rounding.
  const double weight = moments.Weight().value();
  if (moments.weighted && !(std::abs(total - weight) <= 1e-9 * weight)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " counts a weight of ", total,
                                                   "; the channel's moments weigh ", weight));
  }
  return absl::OkStatus();
}

}  // namespace normd
