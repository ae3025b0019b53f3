#include "server/observability/metrics_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <charconv>

#include "absl/strings/str_cat.h"

namespace normd {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::function<std::string()> render, std::vector<HttpRoute> routes) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* first = listen.data() + colon + 1;
    const char* last = listen.data() + listen.size();
    const auto [end, error] = std::from_chars(first, last, port);
    if (error != std::errc() || end != last || port < 0 || port > 65535) port = -1;
  }
  if (port < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen must be HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->http_ = std::make_unique<httplib::Server>();
  // httplib's default sets SO_REUSEPORT, which would let a second normd bind the same
  // port and take half the scrapes; SO_REUSEADDR alone still allows a quick restart.
  endpoint->http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // A scrape every few seconds and a dashboard's few requests: two threads, or four
  // when the dashboard is served.
  const size_t threads = routes.empty() ? 2 : 4;
  endpoint->http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  endpoint->http_->Get("/metrics", [render](const httplib::Request&, httplib::Response& response) {
    response.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  for (HttpRoute& route : routes) {
    endpoint->http_->Get(route.pattern,
                         [handler = std::move(route.handler)](const httplib::Request& request,
                                                              httplib::Response& response) {
                           HttpRequest plain;
                           for (size_t i = 1; i < request.matches.size(); ++i)
                             plain.captures.push_back(request.matches[i]);
                           for (const auto& [key, value] : request.params)
                             plain.query.emplace(key, value);
                           plain.authorization = request.get_header_value("Authorization");
                           HttpReply reply = handler(plain);
                           response.status = reply.status;
                           // The page and its data are never cached: they change with every ingest.
                           response.set_header("Cache-Control", "no-store");
                           response.set_header("X-Content-Type-Options", "nosniff");
                           response.set_content(std::move(reply.body), reply.content_type);
                         });
  }
  endpoint->port_ = port == 0 ? endpoint->http_->bind_to_any_port(host)
                              : (endpoint->http_->bind_to_port(host, port) ? port : -1);
  if (endpoint->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on ", listen));
  }
  httplib::Server* http = endpoint->http_.get();
  std::atomic<bool>* served = &endpoint->served_;
  endpoint->thread_ = std::thread([http, served] {
    http->listen_after_bind();
    served->store(true);
  });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (!thread_.joinable()) return;  // Start failed before serving began
  // httplib's stop() does nothing before the listening loop has begun, so wait for
  // the loop to begin (or to have ended already) before stopping it.
  while (!http_->is_running() && !served_.load()) std::this_thread::yield();
  http_->stop();
  thread_.join();
}

}  // namespace normd
