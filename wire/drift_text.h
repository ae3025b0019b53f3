// The text forms of drift requests, one spelling for normctl's flags and the dashboard's
// query strings:
//   a statistics source: "live:SPLIT", "version:N[:SPLIT]" or "traffic:N[:WINDOW]"
//     (SPLIT train|validation|test, default train; WINDOW since_start|last_hour);
//   thresholds: "MEASURE=WARN:FAIL,..." (MEASURE standardized_mean_difference,
//     variance_ratio, ks, psi or js_divergence).
#ifndef NORMD_WIRE_DRIFT_TEXT_H_
#define NORMD_WIRE_DRIFT_TEXT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// INVALID_ARGUMENT naming the forms expected and what came.
absl::Status ParseStatisticsSource(absl::string_view text, v1::StatisticsSource* out);
absl::Status ParseDriftThresholds(absl::string_view text, v1::DriftThresholds* out);
absl::StatusOr<v1::Split> ParseSplitName(absl::string_view name);
absl::StatusOr<v1::TrafficWindow> ParseTrafficWindowName(absl::string_view name);

}  // namespace normd

#endif  // NORMD_WIRE_DRIFT_TEXT_H_
