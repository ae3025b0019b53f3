// The dashboard on the HTTP port: one page (embedded in the binary; it fetches
// everything else) and the JSON endpoints it reads, which are documented in docs/drift.md
// and are the proto3 JSON of the matching RPC replies:
//   GET /                                         the page
//   GET /api/v1/datasets                          ListDatasetsResponse
//   GET /api/v1/datasets/NAME                     DatasetInfo
//   GET /api/v1/datasets/NAME/stats?...           GetStatsResponse (version, split,
//       traffic=1, window=last_hour|since_start, quantiles=0.01,0.5, histogram_bins=N)
//   GET /api/v1/datasets/NAME/compare?...         CompareResponse (reference=, candidate=
//       as live:SPLIT, version:N[:SPLIT] or traffic:N[:WINDOW]; bins=N)
// With tokens on, the endpoints want "Authorization: Bearer TOKEN" of a reader.
#ifndef NORMD_SERVER_DASHBOARD_DASHBOARD_ROUTES_H_
#define NORMD_SERVER_DASHBOARD_DASHBOARD_ROUTES_H_

#include <vector>

#include "server/auth/access_policy.h"
#include "server/engine/dataset_engine.h"
#include "server/observability/metrics_endpoint.h"

namespace normd {

// `engine` and `access` (null: no tokens) must outlive the routes.
std::vector<HttpRoute> DashboardRoutes(const DatasetEngine* engine, const AccessPolicy* access);

}  // namespace normd

#endif  // NORMD_SERVER_DASHBOARD_DASHBOARD_ROUTES_H_
