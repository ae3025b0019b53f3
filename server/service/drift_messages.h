// Translation of the drift messages: Compare's request and reply, freeze gates, the
// traffic windows.
#ifndef NORMD_SERVER_SERVICE_DRIFT_MESSAGES_H_
#define NORMD_SERVER_SERVICE_DRIFT_MESSAGES_H_

#include <optional>

#include "absl/status/statusor.h"
#include "normd/v1/normd.pb.h"
#include "server/engine/compare.h"
#include "server/engine/freeze_gate.h"

namespace normd {

TrafficWindowKind TrafficWindowFromProto(v1::TrafficWindow window);
absl::StatusOr<DriftThresholds> DriftThresholdsFromProto(const v1::DriftThresholds& thresholds);
absl::StatusOr<CompareCall> CompareCallFromProto(const v1::CompareRequest& request);
void FillCompareResponse(const CompareResult& result, absl::string_view dataset,
                         v1::CompareResponse* out);
// Unset when the request has no gate.
absl::StatusOr<std::optional<FreezeGate>> FreezeGateFromProto(const v1::FreezeRequest& request);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_DRIFT_MESSAGES_H_
