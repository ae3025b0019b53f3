#include "server/observability/metrics_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <charconv>

#include "absl/strings/str_cat.h"

namespace normd {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::function<std::string()> render) {
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
        absl::StrCat("--metrics_listen must be HOST:PORT, got \"", listen, "\""));
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
  // A scrape is one small request every few seconds: two threads are plenty.
  endpoint->http_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  endpoint->http_->Get("/metrics", [render](const httplib::Request&, httplib::Response& response) {
    response.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
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
