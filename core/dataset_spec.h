// What a dataset is: its name, layout, channel count and how it accumulates.
#ifndef NORMD_CORE_DATASET_SPEC_H_
#define NORMD_CORE_DATASET_SPEC_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "core/fixed_histogram.h"
#include "core/layout.h"
#include "core/nonfinite_policy.h"

namespace normd {

inline constexpr size_t kMaxDatasetNameLength = 128;
inline constexpr int64_t kMaxChannels = int64_t{1} << 20;

enum class AccumulatorKind {
  kExact,           // Chan-merged exact moments
  kRunningAverage,  // exact moments plus a batch-norm style running average
};

enum class Split { kTrain = 0, kValidation = 1, kTest = 2 };
inline constexpr std::array<Split, 3> kAllSplits = {Split::kTrain, Split::kValidation,
                                                    Split::kTest};
absl::string_view SplitName(Split split);

// How a dataset's quantile sketches (core/quantile_sketch.h) are kept: the resolution
// new values are indexed at (relative accuracy 2^-(resolution+1)), the most buckets a
// channel may hold before it coarsens, and the value each channel's buckets are
// centred on (data far from 0, such as 1e8 + noise, keep their resolution only when
// the center is near them).
inline constexpr int kDefaultSketchResolution = 6;  // 2^-7 = 0.78%
inline constexpr uint32_t kDefaultSketchBuckets = 2048;

struct QuantileSketchSpec {
  int resolution = kDefaultSketchResolution;
  uint32_t max_buckets = kDefaultSketchBuckets;
  std::vector<double> center;  // one per channel, or empty: 0 for every channel

  double CenterOf(size_t channel) const { return center.empty() ? 0.0 : center[channel]; }
  friend bool operator==(const QuantileSketchSpec&, const QuantileSketchSpec&) = default;
};

struct DatasetSpec {
  std::string name;
  Layout layout = Layout::kNC;
  int64_t channels = 0;
  AccumulatorKind accumulator = AccumulatorKind::kExact;
  std::optional<double> momentum;  // kRunningAverage only; unset: cumulative average
  NonFinitePolicy nonfinite = NonFinitePolicy::kReject;
  // Unset for datasets made before sketches existed, or created without one.
  std::optional<QuantileSketchSpec> sketch;
  // Bin edges of exact histograms kept per channel (core/fixed_histogram.h); empty:
  // none.
  HistogramEdges histogram_edges;
};

// Names are 1..kMaxDatasetNameLength characters of [A-Za-z0-9._-] and do not start
// with '.', so they can never be paths, hidden files or carry separators.
absl::Status ValidateDatasetName(absl::string_view name);
// The same rule for any name; `what` starts the error message ("writer_id").
absl::Status ValidateName(absl::string_view what, absl::string_view name);
absl::Status ValidateDatasetSpec(const DatasetSpec& spec);

}  // namespace normd

#endif  // NORMD_CORE_DATASET_SPEC_H_
