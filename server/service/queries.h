// The read-only answers that the gRPC handlers and the dashboard's JSON endpoints share:
// decode the request, ask the engine, encode the reply.
#ifndef NORMD_SERVER_SERVICE_QUERIES_H_
#define NORMD_SERVER_SERVICE_QUERIES_H_

#include "absl/status/status.h"
#include "normd/v1/normd.pb.h"
#include "server/engine/dataset_engine.h"

namespace normd {

absl::Status AnswerGetStats(const DatasetEngine& engine, const v1::GetStatsRequest& request,
                            v1::GetStatsResponse* response);
absl::Status AnswerCompare(const DatasetEngine& engine, const v1::CompareRequest& request,
                           v1::CompareResponse* response);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_QUERIES_H_
