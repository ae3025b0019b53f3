// The Prometheus scrape endpoint: GET /metrics over plain HTTP on its own port,
// served by cpp-httplib on two threads of its own.
#ifndef NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_
#define NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace normd {

class MetricsEndpoint {
 public:
  // Listens on `listen` (HOST:PORT; port 0 picks a free one) and answers each GET
  // /metrics with `render()`.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, std::function<std::string()> render);
  ~MetricsEndpoint();  // stops listening and joins the server thread

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> served_ = false;  // the listening loop has returned
  int port_ = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_
