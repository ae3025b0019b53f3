// Conversions between normd.v1 protobuf messages and core types. The one place
// where wire enums are interpreted; unknown or unspecified values are
// INVALID_ARGUMENT naming the field and the value received.
#ifndef NORMD_SERVER_WIRE_CORE_PROTO_H_
#define NORMD_SERVER_WIRE_CORE_PROTO_H_

#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

absl::StatusOr<DatasetSpec> DatasetSpecFromProto(const v1::DatasetSpec& proto);
v1::DatasetSpec DatasetSpecToProto(const DatasetSpec& spec);

// A view of the message's bytes: valid while `tensor` lives and is unchanged.
absl::StatusOr<TensorView> TensorViewOf(const v1::Tensor& tensor, absl::string_view field);

// The arrays must all have one entry per channel (INVALID_ARGUMENT naming the ones
// that differ); the values themselves are checked by ValidateMomentsSummary.
absl::StatusOr<MomentsSummary> MomentsSummaryFromProto(const v1::MomentsSummary& proto);
absl::StatusOr<std::vector<MomentsSummary>> MomentsSummariesFromProto(
    const v1::MomentsSummaries& proto);
void MomentsSummaryToProto(const MomentsSummary& summary, v1::MomentsSummary* out);

// What a frozen scheme folds (the server's ReferenceStatisticsOf): the train split's
// statistics as GetStats returns them, the running average in place of mean and
// variance where the dataset keeps one.
ReferenceStatistics ReferenceStatisticsFromProto(const v1::Statistics& stats);

void TimeToProto(absl::Time time, google::protobuf::Timestamp* out);
absl::Time TimeFromProto(const google::protobuf::Timestamp& proto);

}  // namespace normd

#endif  // NORMD_SERVER_WIRE_CORE_PROTO_H_
