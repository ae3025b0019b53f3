#include "server/service/queries.h"

#include <vector>

#include "common/status_macros.h"
#include "core/distribution_query.h"
#include "server/engine/compare.h"
#include "server/service/drift_messages.h"
#include "server/service/messages.h"
#include "wire/core_proto.h"

namespace normd {

absl::Status AnswerGetStats(const DatasetEngine& engine, const v1::GetStatsRequest& request,
                            v1::GetStatsResponse* response) {
  NORMD_ASSIGN_OR_RETURN(const Split split, SplitFromProto(request.split(), true));
  const DistributionQuery query = DistributionQueryFromProto(request);
  NORMD_RETURN_IF_ERROR(ValidateDistributionQuery(query));
  response->set_dataset(request.dataset());
  if (request.traffic()) {
    NORMD_ASSIGN_OR_RETURN(const TrafficResult traffic,
                           engine.GetTraffic(request.dataset(), request.version(),
                                             TrafficWindowFromProto(request.traffic_window())));
    response->set_version(traffic.version);
    response->set_traffic_requests(traffic.traffic.requests);
    response->set_traffic_sampled_requests(traffic.traffic.sampled_requests);
    FillSplitStatistics(traffic.traffic.stats, response->mutable_stats());
    if (!query.empty()) {
      NORMD_ASSIGN_OR_RETURN(
          const std::vector<ChannelDistribution> distributions,
          DescribeDistributions(traffic.traffic.stats, traffic.sketch, query, request.dataset()));
      FillDistributions(distributions, response->mutable_stats());
    }
    return absl::OkStatus();
  }
  NORMD_ASSIGN_OR_RETURN(const StatisticsResult result,
                         engine.GetStatistics(request.dataset(), request.version()));
  response->set_version(result.version);
  response->set_split(SplitToProto(split));
  FillStatistics(*result.stats, split, response->mutable_stats());
  if (!query.empty()) {
    NORMD_ASSIGN_OR_RETURN(
        const std::vector<ChannelDistribution> distributions,
        DescribeDistributions(result.stats->split(split), result.sketch, query, request.dataset()));
    FillDistributions(distributions, response->mutable_stats());
  }
  return absl::OkStatus();
}

absl::Status AnswerCompare(const DatasetEngine& engine, const v1::CompareRequest& request,
                           v1::CompareResponse* response) {
  NORMD_ASSIGN_OR_RETURN(const CompareCall call, CompareCallFromProto(request));
  NORMD_ASSIGN_OR_RETURN(const CompareResult result, CompareSources(engine, call));
  FillCompareResponse(result, request.dataset(), response);
  return absl::OkStatus();
}

}  // namespace normd
