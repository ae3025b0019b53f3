// Conversions between normd.v1 protobuf messages and core types. The one place
// where wire enums are interpreted; unknown or unspecified values are
// INVALID_ARGUMENT naming the field and the value received.
#ifndef NORMD_SERVER_WIRE_CORE_PROTO_H_
#define NORMD_SERVER_WIRE_CORE_PROTO_H_

#include <optional>
#include <span>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/channel_moments.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "core/dtype.h"
#include "core/layout.h"
#include "core/moments_summary.h"
#include "core/tensor_view.h"
#include "google/protobuf/timestamp.pb.h"
#include "normd/v1/normd.pb.h"

namespace normd {

absl::StatusOr<DType> DTypeFromProto(v1::DType dtype, absl::string_view field);
v1::DType DTypeToProto(DType dtype);

absl::StatusOr<Layout> LayoutFromProto(v1::Layout layout, absl::string_view field);
v1::Layout LayoutToProto(Layout layout);

// SPLIT_UNSPECIFIED is an error unless `unspecified_means_train`.
absl::StatusOr<Split> SplitFromProto(v1::Split split, bool unspecified_means_train);
v1::Split SplitToProto(Split split);

// What an unset `sketch` means: on create, sketches with the defaults; in a stored
// record, none (the dataset predates them).
enum class UnsetSketch { kDefaults, kNone };
absl::StatusOr<DatasetSpec> DatasetSpecFromProto(const v1::DatasetSpec& proto,
                                                 UnsetSketch unset = UnsetSketch::kDefaults);
v1::DatasetSpec DatasetSpecToProto(const DatasetSpec& spec);

// One channel's sketch; INVALID_ARGUMENT (naming `field`) for arrays of different
// lengths or indices that do not rise or leave int32. ValidateSketch checks the rest.
absl::StatusOr<QuantileSketch> SketchFromProto(const v1::ChannelSketch& proto,
                                               absl::string_view field);
void SketchToProto(const QuantileSketch& sketch, v1::ChannelSketch* out);

FixedHistogram FixedHistogramFromProto(const v1::FixedHistogram& proto);
void FixedHistogramToProto(const FixedHistogram& histogram, v1::FixedHistogram* out);

// A view of the message's bytes: valid while `tensor` lives and is unchanged.
absl::StatusOr<TensorView> TensorViewOf(const v1::Tensor& tensor, absl::string_view field);

// Per-channel moments as the parallel arrays count, mean_hi, mean_lo, m2_hi, m2_lo,
// min and max: the shape of the wire's MomentsSummary and of the store's MomentsRecord.
// When any channel is weighted, the weight arrays too (every channel's W and sum(w^2),
// the count for an unweighted one, which weighs its values 1).
template <typename Arrays>
void AppendMomentArrays(std::span<const ChannelMoments> moments, Arrays* out) {
  bool weighted = false;
  for (const ChannelMoments& m : moments) {
    out->add_count(m.count);
    out->add_mean_hi(m.mean.hi);
    out->add_mean_lo(m.mean.lo);
    out->add_m2_hi(m.m2.hi);
    out->add_m2_lo(m.m2.lo);
    out->add_min(m.min);
    out->add_max(m.max);
    weighted = weighted || m.weighted;
  }
  if (!weighted) return;
  for (const ChannelMoments& m : moments) {
    const DoubleDouble w = m.Weight(), w2 = m.WeightSquares();
    out->add_weight_sum_hi(w.hi);
    out->add_weight_sum_lo(w.lo);
    out->add_weight_square_sum_hi(w2.hi);
    out->add_weight_square_sum_lo(w2.lo);
  }
}

// The moments of `channels` channels back; nullopt unless every array holds that many
// (the weight arrays: that many or none).
template <typename Arrays>
std::optional<std::vector<ChannelMoments>> MomentsFromArrays(const Arrays& in, size_t channels) {
  const auto n = static_cast<int>(channels);
  if (in.count_size() != n || in.mean_hi_size() != n || in.mean_lo_size() != n ||
      in.m2_hi_size() != n || in.m2_lo_size() != n || in.min_size() != n || in.max_size() != n) {
    return std::nullopt;
  }
  const int weights = in.weight_sum_hi_size();
  if ((weights != 0 && weights != n) || in.weight_sum_lo_size() != weights ||
      in.weight_square_sum_hi_size() != weights || in.weight_square_sum_lo_size() != weights) {
    return std::nullopt;
  }
  std::vector<ChannelMoments> moments(channels);
  for (int c = 0; c < n; ++c) {
    moments[c] = {in.count(c),
                  {in.mean_hi(c), in.mean_lo(c)},
                  {in.m2_hi(c), in.m2_lo(c)},
                  in.min(c),
                  in.max(c)};
    if (weights == 0) continue;
    moments[c].weighted = true;
    moments[c].weight_sum = {in.weight_sum_hi(c), in.weight_sum_lo(c)};
    moments[c].weight_square_sum = {in.weight_square_sum_hi(c), in.weight_square_sum_lo(c)};
  }
  return moments;
}

// The arrays must all have one entry per channel (INVALID_ARGUMENT naming the ones
// that differ); the values themselves are checked by ValidateMomentsSummary.
absl::StatusOr<MomentsSummary> MomentsSummaryFromProto(const v1::MomentsSummary& proto);
absl::StatusOr<std::vector<MomentsSummary>> MomentsSummariesFromProto(
    const v1::MomentsSummaries& proto);
void MomentsSummaryToProto(const MomentsSummary& summary, v1::MomentsSummary* out);

// What a frozen scheme folds (the server's ReferenceStatisticsOf): the train split's
// statistics as GetStats returns them, the running average in place of mean and
// variance where the dataset keeps one.
// With `ranks`, the quantiles GetStats answered at them (stats.distributions).
ReferenceStatistics ReferenceStatisticsFromProto(const v1::Statistics& stats,
                                                 std::span<const double> ranks = {});

void TimeToProto(absl::Time time, google::protobuf::Timestamp* out);
absl::Time TimeFromProto(const google::protobuf::Timestamp& proto);

}  // namespace normd

#endif  // NORMD_SERVER_WIRE_CORE_PROTO_H_
