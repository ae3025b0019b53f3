// The HTTP port's server: HTTP/1.1 GET (and HEAD) routes, keep-alive, and limits that
// hold against a hostile client. One thread serves every socket through poll, so a
// connection that trickles its request costs a slot, never a thread: a request's head
// must arrive whole within a deadline, a reply be taken within another, and when every
// slot is taken the connection that has waited longest for a request gives its slot to
// the new one. Handlers run on a few threads of their own.
#ifndef NORMD_SERVER_OBSERVABILITY_HTTP_SERVER_H_
#define NORMD_SERVER_OBSERVABILITY_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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
  // Whether a browser may keep it; the dashboard's data changes with every ingest.
  bool no_store = true;
};

// A GET route: `pattern` is a regular expression matched against the whole
// (percent-decoded) path.
struct HttpRoute {
  std::string pattern;
  std::function<HttpReply(const HttpRequest&)> handler;
};

struct HttpLimits {
  int max_connections = 256;
  size_t max_head_bytes = 16 << 10;  // the request line and headers
  // From a request's first byte (a new connection's accept) to the end of its head.
  absl::Duration head_timeout = absl::Seconds(10);
  // A kept-alive connection waiting for its next request.
  absl::Duration idle_timeout = absl::Seconds(30);
  // For the client to take a reply.
  absl::Duration write_timeout = absl::Seconds(30);
  int handler_threads = 2;
};

class HttpServer {
 public:
  // Listens on HOST:PORT (port 0 picks a free one; HOST may be bracketed IPv6).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen,
                                                           std::vector<HttpRoute> routes,
                                                           HttpLimits limits = {});
  ~HttpServer();  // closes every connection and joins its threads

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  class Loop;
  HttpServer() = default;

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_HTTP_SERVER_H_
