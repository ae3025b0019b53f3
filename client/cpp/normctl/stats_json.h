// The JSON form of `normctl stats --json`: one object with the version and
// per-channel arrays; NaN (empty channels, sample variance of one value) is null.
#ifndef NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_
#define NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "normd/v1/normd.pb.h"

namespace normd {

std::string StatsToJson(const v1::GetStatsResponse& response);

// `normctl export`: a frozen version (`stats`, train split, of the dataset `info`
// describes) for another framework, as Client.export writes it in Python:
// "torchvision" {mean, std}, "dali" {mean, std, pixel_scale} in pixel units (scale
// 255 when the data were fit in [0, 1] and `pixel_scale` is not given), or "json" with
// the version's provenance; std = sqrt(variance + eps), with the running average in
// place of mean and variance where the dataset keeps one. Empty on an unknown format.
std::string ExportToJson(const v1::DatasetInfo& info, const v1::GetStatsResponse& stats,
                         absl::string_view format, double eps, std::optional<double> pixel_scale);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_
