// The HTTP port: GET /metrics for Prometheus, and whatever routes the server adds (the
// dashboard and its JSON endpoints), over plain HTTP on its own port (HttpServer). The
// routes see plain requests and replies.
#ifndef NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_
#define NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/observability/http_server.h"

namespace normd {

class MetricsEndpoint {
 public:
  // Listens on `listen` (HOST:PORT; port 0 picks a free one) and answers each GET
  // /metrics with `render()`, and `routes` by their handlers, within `limits`.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& listen,
                                                                std::function<std::string()> render,
                                                                std::vector<HttpRoute> routes = {},
                                                                HttpLimits limits = {});

  int port() const { return http_->port(); }

 private:
  explicit MetricsEndpoint(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}

  std::unique_ptr<HttpServer> http_;
};

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_
