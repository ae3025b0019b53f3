#include "server/observability/metrics_endpoint.h"

#include <utility>

namespace normd {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::function<std::string()> render, std::vector<HttpRoute> routes,
    HttpLimits limits) {
  // First, so no route the server adds can shadow it.
  routes.insert(routes.begin(), HttpRoute{"/metrics", [render = std::move(render)](
                                                          const HttpRequest&) {
                  return HttpReply{.status = 200,
                                   .content_type = "text/plain; version=0.0.4; charset=utf-8",
                                   .body = render(),
                                   .no_store = false};
                }});
  // A scrape every few seconds and a dashboard's few requests: two handler threads,
  // or four when the dashboard is served.
  limits.handler_threads = routes.size() > 1 ? 4 : 2;
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(listen, std::move(routes), limits);
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(*std::move(http)));
}

}  // namespace normd
