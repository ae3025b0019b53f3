#include "wire/core_proto.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"

namespace normd {
namespace {

template <typename Enum>
absl::Status UnknownEnum(absl::string_view field, Enum value, absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be one of ", expected, ", got ", static_cast<int>(value)));
}

}  // namespace

absl::StatusOr<DType> DTypeFromProto(v1::DType dtype, absl::string_view field) {
  switch (dtype) {
    case v1::DTYPE_FLOAT32:
      return DType::kFloat32;
    case v1::DTYPE_FLOAT64:
      return DType::kFloat64;
    case v1::DTYPE_FLOAT16:
      return DType::kFloat16;
    case v1::DTYPE_BFLOAT16:
      return DType::kBFloat16;
    case v1::DTYPE_UINT8:
      return DType::kUInt8;
    default:
      return UnknownEnum(field, dtype, "FLOAT32, FLOAT64, FLOAT16, BFLOAT16, UINT8 (1..5)");
  }
}

v1::DType DTypeToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return v1::DTYPE_FLOAT32;
    case DType::kFloat64:
      return v1::DTYPE_FLOAT64;
    case DType::kFloat16:
      return v1::DTYPE_FLOAT16;
    case DType::kBFloat16:
      return v1::DTYPE_BFLOAT16;
    case DType::kUInt8:
      return v1::DTYPE_UINT8;
  }
  return v1::DTYPE_UNSPECIFIED;
}

absl::StatusOr<Layout> LayoutFromProto(v1::Layout layout, absl::string_view field) {
  switch (layout) {
    case v1::LAYOUT_NC:
      return Layout::kNC;
    case v1::LAYOUT_NCHW:
      return Layout::kNCHW;
    case v1::LAYOUT_NHWC:
      return Layout::kNHWC;
    default:
      return UnknownEnum(field, layout, "NC, NCHW, NHWC (1..3)");
  }
}

v1::Layout LayoutToProto(Layout layout) {
  switch (layout) {
    case Layout::kNC:
      return v1::LAYOUT_NC;
    case Layout::kNCHW:
      return v1::LAYOUT_NCHW;
    case Layout::kNHWC:
      return v1::LAYOUT_NHWC;
  }
  return v1::LAYOUT_UNSPECIFIED;
}

absl::StatusOr<Split> SplitFromProto(v1::Split split, bool unspecified_means_train) {
  switch (split) {
    case v1::SPLIT_TRAIN:
      return Split::kTrain;
    case v1::SPLIT_VALIDATION:
      return Split::kValidation;
    case v1::SPLIT_TEST:
      return Split::kTest;
    case v1::SPLIT_UNSPECIFIED:
      if (unspecified_means_train) return Split::kTrain;
      return absl::InvalidArgumentError(
          "split is unspecified; every batch must say TRAIN, VALIDATION or TEST, so that "
          "only training data can change the fitted statistics");
    default:
      return UnknownEnum("split", split, "TRAIN, VALIDATION, TEST (1..3)");
  }
}

v1::Split SplitToProto(Split split) {
  switch (split) {
    case Split::kTrain:
      return v1::SPLIT_TRAIN;
    case Split::kValidation:
      return v1::SPLIT_VALIDATION;
    case Split::kTest:
      return v1::SPLIT_TEST;
  }
  return v1::SPLIT_UNSPECIFIED;
}

absl::StatusOr<DatasetSpec> DatasetSpecFromProto(const v1::DatasetSpec& proto, UnsetSketch unset) {
  DatasetSpec spec;
  spec.name = proto.name();
  NORMD_ASSIGN_OR_RETURN(spec.layout, LayoutFromProto(proto.layout(), "spec.layout"));
  spec.channels = proto.channels();
  switch (proto.accumulator_case()) {
    case v1::DatasetSpec::kRunningAverage:
      spec.accumulator = AccumulatorKind::kRunningAverage;
      if (proto.running_average().has_momentum()) {
        spec.momentum = proto.running_average().momentum();
      }
      break;
    case v1::DatasetSpec::kExact:
    case v1::DatasetSpec::ACCUMULATOR_NOT_SET:
      spec.accumulator = AccumulatorKind::kExact;
      break;
  }
  switch (proto.nonfinite_policy()) {
    case v1::NONFINITE_POLICY_UNSPECIFIED:
    case v1::NONFINITE_POLICY_REJECT:
      spec.nonfinite = NonFinitePolicy::kReject;
      break;
    case v1::NONFINITE_POLICY_SKIP:
      spec.nonfinite = NonFinitePolicy::kSkip;
      break;
    default:
      return UnknownEnum("spec.nonfinite_policy", proto.nonfinite_policy(), "REJECT, SKIP (1..2)");
  }
  if (proto.has_sketch() ? !proto.sketch().disabled() : unset == UnsetSketch::kDefaults) {
    const v1::QuantileSketchOptions& options = proto.sketch();
    QuantileSketchSpec sketch;
    if (options.relative_accuracy() != 0) {
      NORMD_ASSIGN_OR_RETURN(sketch.resolution, SketchResolutionFor(options.relative_accuracy()));
    }
    if (options.max_buckets() != 0) sketch.max_buckets = options.max_buckets();
    sketch.center.assign(options.center().begin(), options.center().end());
    spec.sketch = std::move(sketch);
  }
  for (const v1::HistogramEdges& list : proto.histogram_edges()) {
    spec.histogram_edges.lists.emplace_back(list.edges().begin(), list.edges().end());
  }
  NORMD_RETURN_IF_ERROR(ValidateDatasetSpec(spec));
  return spec;
}

v1::DatasetSpec DatasetSpecToProto(const DatasetSpec& spec) {
  v1::DatasetSpec proto;
  proto.set_name(spec.name);
  proto.set_layout(LayoutToProto(spec.layout));
  proto.set_channels(spec.channels);
  if (spec.accumulator == AccumulatorKind::kRunningAverage) {
    v1::RunningAverageAccumulator* running = proto.mutable_running_average();
    if (spec.momentum.has_value()) running->set_momentum(*spec.momentum);
  } else {
    proto.mutable_exact();
  }
  proto.set_nonfinite_policy(spec.nonfinite == NonFinitePolicy::kSkip
                                 ? v1::NONFINITE_POLICY_SKIP
                                 : v1::NONFINITE_POLICY_REJECT);
  v1::QuantileSketchOptions* sketch = proto.mutable_sketch();
  if (spec.sketch.has_value()) {
    sketch->set_relative_accuracy(SketchRelativeAccuracy(spec.sketch->resolution));
    sketch->set_max_buckets(spec.sketch->max_buckets);
    sketch->mutable_center()->Add(spec.sketch->center.begin(), spec.sketch->center.end());
  } else {
    sketch->set_disabled(true);
  }
  for (const std::vector<double>& list : spec.histogram_edges.lists) {
    proto.add_histogram_edges()->mutable_edges()->Add(list.begin(), list.end());
  }
  return proto;
}

FixedHistogram FixedHistogramFromProto(const v1::FixedHistogram& proto) {
  return FixedHistogram{
      {proto.counts().begin(), proto.counts().end()}, proto.below(), proto.above()};
}

void FixedHistogramToProto(const FixedHistogram& histogram, v1::FixedHistogram* out) {
  out->mutable_counts()->Add(histogram.counts.begin(), histogram.counts.end());
  out->set_below(histogram.below);
  out->set_above(histogram.above);
}

absl::StatusOr<QuantileSketch> SketchFromProto(const v1::ChannelSketch& proto,
                                               absl::string_view field) {
  const bool integers = proto.integer_count_size() > 0;
  const int counts = integers ? proto.integer_count_size() : proto.count_size();
  if ((integers && proto.count_size() > 0) || proto.index_delta_size() != counts) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".index_delta holds ", proto.index_delta_size(), " values, ", field, ".count ",
        proto.count_size(), " and ", field, ".integer_count ", proto.integer_count_size(),
        "; expected one index per count, in count or integer_count but not both"));
  }
  QuantileSketch sketch;
  sketch.resolution = proto.resolution();
  sketch.buckets.reserve(static_cast<size_t>(counts));
  int64_t index = 0;
  for (int i = 0; i < counts; ++i) {
    const int64_t delta = proto.index_delta(i);
    if (i > 0 && delta <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".index_delta[", i, "] is ", delta, "; expected a rise above 0"));
    }
    index = i == 0 ? delta : index + delta;
    if (index > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " bucket ", i, " has index ", index, ", beyond int32"));
    }
    sketch.buckets.push_back(
        SketchBucket{static_cast<int32_t>(index),
                     integers ? static_cast<double>(proto.integer_count(i)) : proto.count(i)});
  }
  return sketch;
}

void SketchToProto(const QuantileSketch& sketch, v1::ChannelSketch* out) {
  out->set_resolution(sketch.resolution);
  const bool integers = std::all_of(
      sketch.buckets.begin(), sketch.buckets.end(),
      [](const SketchBucket& b) { return b.count == std::floor(b.count) && b.count <= 0x1p53; });
  int32_t previous = 0;
  for (size_t i = 0; i < sketch.buckets.size(); ++i) {
    const int32_t index = sketch.buckets[i].index;
    out->add_index_delta(i == 0 ? index : index - previous);
    if (integers) {
      out->add_integer_count(static_cast<uint64_t>(sketch.buckets[i].count));
    } else {
      out->add_count(sketch.buckets[i].count);
    }
    previous = index;
  }
}

absl::StatusOr<TensorView> TensorViewOf(const v1::Tensor& tensor, absl::string_view field) {
  TensorView view;
  NORMD_ASSIGN_OR_RETURN(view.dtype, DTypeFromProto(tensor.dtype(), absl::StrCat(field, ".dtype")));
  view.shape =
      std::span<const int64_t>(tensor.shape().data(), static_cast<size_t>(tensor.shape_size()));
  view.bytes = std::as_bytes(std::span<const char>(tensor.data()));
  return view;
}

absl::StatusOr<MomentsSummary> MomentsSummaryFromProto(const v1::MomentsSummary& proto) {
  const int channels = proto.count_size();
  for (const auto& [name, size] :
       {std::pair{"mean_hi", proto.mean_hi_size()}, std::pair{"mean_lo", proto.mean_lo_size()},
        std::pair{"m2_hi", proto.m2_hi_size()}, std::pair{"m2_lo", proto.m2_lo_size()},
        std::pair{"min", proto.min_size()}, std::pair{"max", proto.max_size()}}) {
    if (size != channels) {
      return absl::InvalidArgumentError(absl::StrCat("summary.", name, " holds ", size,
                                                     " values, expected one per channel (",
                                                     channels, ", as summary.count)"));
    }
  }
  const int weights = proto.weight_sum_hi_size();
  for (const auto& [name, size] :
       {std::pair{"weight_sum_hi", weights}, std::pair{"weight_sum_lo", proto.weight_sum_lo_size()},
        std::pair{"weight_square_sum_hi", proto.weight_square_sum_hi_size()},
        std::pair{"weight_square_sum_lo", proto.weight_square_sum_lo_size()}}) {
    if (size != (weights == 0 ? 0 : channels)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "summary.", name, " holds ", size, " values, expected ",
          weights == 0 ? "none (as summary.weight_sum_hi: an unweighted summary)"
                       : absl::StrCat("one per channel (", channels, ", as summary.count)")));
    }
  }
  NORMD_ASSIGN_OR_RETURN(const Layout layout, LayoutFromProto(proto.layout(), "summary.layout"));
  MomentsSummary summary;
  summary.layout = layout;
  summary.channels = *MomentsFromArrays(proto, static_cast<size_t>(channels));  // sizes checked
  summary.samples = proto.samples();
  summary.batches = proto.batches();
  summary.skipped_nonfinite = proto.skipped_nonfinite();
  summary.masked_values = proto.masked_values();
  if (proto.fixed_histograms_size() > 0 && proto.fixed_histograms_size() != channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("summary.fixed_histograms holds ", proto.fixed_histograms_size(),
                     " histograms, expected one per channel (", channels, ") or none"));
  }
  for (const v1::FixedHistogram& histogram : proto.fixed_histograms()) {
    summary.fixed_histograms.push_back(FixedHistogramFromProto(histogram));
  }
  if (proto.sketches_size() > 0) {
    if (proto.sketches_size() != channels) {
      return absl::InvalidArgumentError(
          absl::StrCat("summary.sketches holds ", proto.sketches_size(),
                       " sketches, expected one per channel (", channels, ") or none"));
    }
    QuantileSketchSpec spec;
    spec.max_buckets = kMaxSketchBuckets;
    spec.center.assign(proto.sketch_center().begin(), proto.sketch_center().end());
    summary.sketch_spec = std::move(spec);
    for (int c = 0; c < channels; ++c) {
      NORMD_ASSIGN_OR_RETURN(
          QuantileSketch sketch,
          SketchFromProto(proto.sketches(c), absl::StrCat("summary.sketches[", c, "]")));
      summary.sketches.push_back(std::move(sketch));
    }
  }
  return summary;
}

absl::StatusOr<std::vector<MomentsSummary>> MomentsSummariesFromProto(
    const v1::MomentsSummaries& proto) {
  if (proto.summaries_size() == 0) {
    return absl::InvalidArgumentError("summaries is empty; expected one summary per batch");
  }
  std::vector<MomentsSummary> summaries;
  summaries.reserve(static_cast<size_t>(proto.summaries_size()));
  for (int i = 0; i < proto.summaries_size(); ++i) {
    absl::StatusOr<MomentsSummary> summary = MomentsSummaryFromProto(proto.summaries(i));
    if (!summary.ok()) {
      return absl::Status(summary.status().code(),
                          absl::StrCat("summaries[", i, "]: ", summary.status().message()));
    }
    summaries.push_back(*std::move(summary));
  }
  return summaries;
}

void MomentsSummaryToProto(const MomentsSummary& summary, v1::MomentsSummary* out) {
  AppendMomentArrays(summary.channels, out);
  out->set_samples(summary.samples);
  out->set_batches(summary.batches);
  out->set_skipped_nonfinite(summary.skipped_nonfinite);
  out->set_masked_values(summary.masked_values);
  out->set_layout(LayoutToProto(summary.layout));
  for (const QuantileSketch& sketch : summary.sketches) SketchToProto(sketch, out->add_sketches());
  for (const FixedHistogram& histogram : summary.fixed_histograms) {
    FixedHistogramToProto(histogram, out->add_fixed_histograms());
  }
  if (summary.sketch_spec.has_value()) {
    out->mutable_sketch_center()->Add(summary.sketch_spec->center.begin(),
                                      summary.sketch_spec->center.end());
  }
}

ReferenceStatistics ReferenceStatisticsFromProto(const v1::Statistics& stats,
                                                 std::span<const double> ranks) {
  ReferenceStatistics reference;
  if (!ranks.empty()) {
    reference.quantile_ranks.assign(ranks.begin(), ranks.end());
    for (const v1::ChannelDistribution& d : stats.distributions()) {
      reference.quantiles.emplace_back(d.quantile().begin(), d.quantile().end());
    }
  }
  reference.count.assign(stats.count().begin(), stats.count().end());
  const bool running = stats.running_mean_size() > 0;
  const auto& mean = running ? stats.running_mean() : stats.mean();
  const auto& variance = running ? stats.running_var() : stats.variance();
  reference.mean.assign(mean.begin(), mean.end());
  reference.variance.assign(variance.begin(), variance.end());
  reference.min.assign(stats.min().begin(), stats.min().end());
  reference.max.assign(stats.max().begin(), stats.max().end());
  return reference;
}

void TimeToProto(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(time);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& proto) {
  return absl::FromUnixSeconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

}  // namespace normd
