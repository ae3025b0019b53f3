// The JSON form of `normctl stats --json`: one object with the version and
// per-channel arrays; NaN (empty channels, sample variance of one value) is null.
#ifndef NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_
#define NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_

#include <string>

#include "normd/v1/normd.pb.h"

namespace normd {

std::string StatsToJson(const v1::GetStatsResponse& response);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_STATS_JSON_H_
