// The HTTP port: GET /metrics for Prometheus, and whatever routes the server adds (the
// dashboard and its JSON endpoints), over plain HTTP on its own port, served by
// cpp-httplib on threads of its own. The routes see plain requests and replies, so
// nothing above this file knows httplib.
#ifndef NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_
#define NORMD_SERVER_OBSERVABILITY_METRICS_ENDPOINT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <map>
#include <vector>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace normd {

struct HttpRequest {
  std::vector<std::string> captures;  // the path pattern's groups
  std::map<std::string, std::string> query;
  std::string authorization;  // the Authorization header, "" when absent
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// A GET route: `pattern` is a regular expression matched against the whole path.
struct HttpRoute {
  std::string pattern;
  std::function<HttpReply(const HttpRequest&)> handler;
};

class MetricsEndpoint {
 public:
  // Listens on `listen` (HOST:PORT; port 0 picks a free one) and answers each GET
  // /metrics with `render()`, and `routes` by their handlers.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& listen,
                                                                std::function<std::string()> render,
                                                                std::vector<HttpRoute> routes = {});
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
