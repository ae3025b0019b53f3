#include "server/observability/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>
#include <regex>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/descriptor_reserve.h"
#include "common/task_queue.h"
#include "server/observability/http_request_head.h"

namespace normd {
namespace {

absl::Status SystemError(absl::string_view what, absl::string_view listen) {
  return absl::UnavailableError(
      absl::StrCat("cannot listen for HTTP on ", listen, ": ", what, ": ", std::strerror(errno)));
}

// The listening socket for HOST:PORT, non-blocking.
absl::StatusOr<int> Listen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* first = listen.data() + colon + 1;
    const char* last = listen.data() + listen.size();
    const auto [end, error] = std::from_chars(first, last, port);
    if (error != std::errc() || end != last || first == last || port < 0 || port > 65535) port = -1;
  }
  if (port < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen must be HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", listen, ": the host does not resolve"));
  }
  int fd = -1;
  for (addrinfo* at = found; at != nullptr && fd < 0; at = at->ai_next) {
    fd = socket(at->ai_family, at->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, at->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR alone: a quick restart may bind again, a second normd may not.
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(fd, at->ai_addr, at->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return SystemError("bind", listen);
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

}  // namespace

class HttpServer::Loop {
 public:
  Loop(int listen_fd, int wake_fd, std::vector<HttpRoute> routes, HttpLimits limits)
      : listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        limits_(limits),
        handlers_(std::make_unique<TaskQueue>(limits.handler_threads)) {
    for (HttpRoute& route : routes) {
      routes_.push_back({std::regex(route.pattern), std::move(route.handler)});
    }
  }

  ~Loop() {
    handlers_.reset();  // runs what is queued; its completions go unread
    for (const auto& [id, connection] : connections_) close(connection.fd);
    close(wake_fd_);
    close(listen_fd_);
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
  }

  void Run();

 private:
  enum class Phase { kHead, kHandling, kWriting };
  struct Connection {
    int fd;
    Phase phase = Phase::kHead;
    std::string in;   // the request's bytes so far (and any pipelined after it)
    std::string out;  // the reply
    size_t written = 0;
    bool close_after = false;
    absl::Time deadline;       // of the current phase
    absl::Time waiting_since;  // for a request: since accept, or the last reply
    bool idle = false;         // kept alive after a reply, no byte of the next yet
  };
  struct Route {
    std::regex pattern;
    std::function<HttpReply(const HttpRequest&)> handler;
  };

  void Wake() {
    const uint64_t one = 1;
    (void)write(wake_fd_, &one, sizeof one);
  }
  void Accept(absl::Time now);
  // Makes room for one more connection: the one that has waited longest for a
  // request goes. False when every connection is busy with a request.
  bool Evict();
  void Read(uint64_t id, Connection& connection, absl::Time now);
  void Write(uint64_t id, Connection& connection, absl::Time now);
  // Serves a whole head in `in`, if there is one.
  void Dispatch(uint64_t id, Connection& connection, absl::Time now);
  void Reply(Connection& connection, int status, absl::string_view message, absl::Time now);
  void TakeCompletions(absl::Time now);
  void Drop(uint64_t id);

  const int listen_fd_;
  const int wake_fd_;
  const HttpLimits limits_;
  std::vector<Route> routes_;
  std::unordered_map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 1;
  DescriptorReserve reserve_;
  bool starved_ = false;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  struct Completion {
    uint64_t id;
    std::string reply;
    bool keep_alive;
  };
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<TaskQueue> handlers_;
};

void HttpServer::Loop::Run() {
  std::vector<pollfd> polled;
  std::vector<uint64_t> ids;
  while (true) {
    const absl::Time now = absl::Now();
    polled.assign({{wake_fd_, POLLIN, 0},
                   {listen_fd_, static_cast<short>(starved_ ? 0 : POLLIN), 0}});
    ids.clear();
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, connection] : connections_) {
      const short events = connection.phase == Phase::kHead      ? POLLIN
                           : connection.phase == Phase::kWriting ? POLLOUT
                                                                 : 0;
      polled.push_back({connection.fd, events, 0});
      ids.push_back(id);
      if (connection.phase != Phase::kHandling) next = std::min(next, connection.deadline);
    }
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(next - now) + 1, 0, 60 * 1000));
    }
    if (starved_) timeout_ms = timeout_ms < 0 ? 100 : std::min(timeout_ms, 100);
    if (poll(polled.data(), polled.size(), timeout_ms) < 0 && errno != EINTR) return;
    const absl::Time woke = absl::Now();
    if (polled[0].revents != 0) {
      uint64_t count;
      (void)read(wake_fd_, &count, sizeof count);
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      TakeCompletions(woke);
    }
    starved_ = false;
    for (size_t i = 2; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      const auto found = connections_.find(ids[i - 2]);
      if (found == connections_.end()) continue;
      Connection& connection = found->second;
      if ((polled[i].revents & (POLLERR | POLLNVAL)) != 0) {
        Drop(found->first);
      } else if (connection.phase == Phase::kHead) {
        Read(found->first, connection, woke);
      } else if (connection.phase == Phase::kWriting) {
        Write(found->first, connection, woke);
      } else if ((polled[i].revents & POLLHUP) != 0) {
        Drop(found->first);  // gone while its request is handled: the reply goes unsent
      }
    }
    if (polled[1].revents & POLLIN) Accept(woke);
    // Every deadline passed: the connection is closed, whatever it was doing.
    std::vector<uint64_t> late;
    for (const auto& [id, connection] : connections_) {
      if (connection.phase != Phase::kHandling && connection.deadline <= woke) late.push_back(id);
    }
    for (const uint64_t id : late) Drop(id);
  }
}

void HttpServer::Loop::Accept(absl::Time now) {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == ECONNABORTED || errno == EINTR) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the waiting connection is closed, and the listener rests.
        fd = reserve_.AcceptInPlace(listen_fd_);
        if (fd >= 0) close(fd);
        starved_ = true;
      }
      return;  // EAGAIN: none left waiting
    }
    if (static_cast<int>(connections_.size()) >= limits_.max_connections && !Evict()) {
      close(fd);
      continue;
    }
    const int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    connections_.emplace(next_id_++, Connection{.fd = fd,
                                                .deadline = now + limits_.head_timeout,
                                                .waiting_since = now});
  }
}

bool HttpServer::Loop::Evict() {
  std::optional<uint64_t> oldest;
  for (const auto& [id, connection] : connections_) {
    if (connection.phase != Phase::kHead) continue;
    if (!oldest.has_value() ||
        connection.waiting_since < connections_.at(*oldest).waiting_since) {
      oldest = id;
    }
  }
  if (!oldest.has_value()) return false;
  Drop(*oldest);
  return true;
}

void HttpServer::Loop::Read(uint64_t id, Connection& connection, absl::Time now) {
  char buffer[4096];
  const ssize_t got = recv(connection.fd, buffer, sizeof buffer, 0);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
    Drop(id);
    return;
  }
  if (got < 0) return;
  // An idle kept-alive connection starts a request: its head has the head's deadline.
  if (connection.idle) {
    connection.idle = false;
    connection.deadline = now + limits_.head_timeout;
  }
  connection.in.append(buffer, static_cast<size_t>(got));
  Dispatch(id, connection, now);
}

void HttpServer::Loop::Dispatch(uint64_t id, Connection& connection, absl::Time now) {
  const size_t end = connection.in.find("\r\n\r\n");
  const size_t head_bytes = end == std::string::npos ? connection.in.size() : end + 4;
  if (head_bytes > limits_.max_head_bytes) {
    Reply(connection, 431,
          absl::StrCat("the request's head is over ", limits_.max_head_bytes, " bytes"), now);
    return;
  }
  if (end == std::string::npos) return;
  absl::StatusOr<HttpRequestHead> head =
      ParseHttpRequestHead(absl::string_view(connection.in).substr(0, end + 2));
  connection.in.erase(0, end + 4);  // what follows is the next request's, if any
  if (!head.ok()) {
    Reply(connection, head.status().code() == absl::StatusCode::kUnimplemented ? 405 : 400,
          head.status().message(), now);
    return;
  }
  const Route* route = nullptr;
  HttpRequest request{.query = std::move(head->query),
                      .authorization = std::move(head->authorization)};
  std::smatch match;
  for (const Route& candidate : routes_) {
    if (std::regex_match(head->path, match, candidate.pattern)) {
      route = &candidate;
      for (size_t i = 1; i < match.size(); ++i) request.captures.push_back(match[i]);
      break;
    }
  }
  if (route == nullptr) {
    connection.close_after = !head->keep_alive;
    Reply(connection, 404, absl::StrCat("no route for ", head->path), now);
    return;
  }
  connection.phase = Phase::kHandling;
  handlers_->Post([this, id, route, request = std::move(request), keep_alive = head->keep_alive,
                   head_only = head->head_only] {
    const HttpReply reply = route->handler(request);
    std::string bytes =
        EncodeHttpReply(reply.status, reply.content_type, reply.body, keep_alive, head_only,
                        reply.no_store);
    {
      absl::MutexLock lock(&mu_);
      completions_.push_back({id, std::move(bytes), keep_alive});
    }
    Wake();
  });
}

void HttpServer::Loop::Reply(Connection& connection, int status, absl::string_view message,
                             absl::Time now) {
  // An error ends the connection (but for a route not found): what follows in its
  // bytes cannot be trusted to be a request.
  if (status != 404) connection.close_after = true;
  connection.out = EncodeHttpReply(status, "text/plain; charset=utf-8",
                                   absl::StrCat(message, "\n"), !connection.close_after, false,
                                   true);
  connection.written = 0;
  connection.phase = Phase::kWriting;
  connection.deadline = now + limits_.write_timeout;
}

void HttpServer::Loop::TakeCompletions(absl::Time now) {
  std::deque<Completion> done;
  {
    absl::MutexLock lock(&mu_);
    done.swap(completions_);
  }
  for (Completion& completion : done) {
    const auto found = connections_.find(completion.id);
    if (found == connections_.end()) continue;  // closed while it was handled
    Connection& connection = found->second;
    connection.out = std::move(completion.reply);
    connection.written = 0;
    connection.close_after = !completion.keep_alive;
    connection.phase = Phase::kWriting;
    connection.deadline = now + limits_.write_timeout;
  }
}

void HttpServer::Loop::Write(uint64_t id, Connection& connection, absl::Time now) {
  const ssize_t sent = send(connection.fd, connection.out.data() + connection.written,
                            connection.out.size() - connection.written, MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EINTR) Drop(id);
    return;
  }
  connection.written += static_cast<size_t>(sent);
  if (connection.written < connection.out.size()) return;
  if (connection.close_after) {
    Drop(id);
    return;
  }
  connection.out.clear();
  connection.phase = Phase::kHead;
  connection.waiting_since = now;
  connection.idle = connection.in.empty();
  connection.deadline = now + (connection.idle ? limits_.idle_timeout : limits_.head_timeout);
  Dispatch(id, connection, now);  // a pipelined request may be here already
}

void HttpServer::Loop::Drop(uint64_t id) {
  const auto found = connections_.find(id);
  if (found == connections_.end()) return;
  close(found->second.fd);
  connections_.erase(found);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                             std::vector<HttpRoute> routes,
                                                             HttpLimits limits) {
  absl::StatusOr<int> listen_fd = Listen(listen);
  if (!listen_fd.ok()) return listen_fd.status();
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    close(*listen_fd);
    return SystemError("eventfd", listen);
  }
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->port_ = BoundPort(*listen_fd);
  server->loop_ = std::make_unique<Loop>(*listen_fd, wake_fd, std::move(routes), limits);
  server->thread_ = std::thread([loop = server->loop_.get()] { loop->Run(); });
  return server;
}

HttpServer::~HttpServer() {
  loop_->Stop();
  thread_.join();
}

}  // namespace normd
