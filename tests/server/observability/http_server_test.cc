// The HTTP port's server as a hostile client meets it: heads parsed and refused
// precisely, keep-alive and pipelining served, and clients that trickle their heads
// (a slow loris) neither keep anyone else out nor outlast the head deadline. A real
// server on a loopback port, spoken to over plain sockets.
#include "server/observability/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/observability/http_request_head.h"

namespace normd {
namespace {

TEST(HttpRequestHeadTest, AGetsPathQueryAndHeadersAreDecoded) {
  absl::StatusOr<HttpRequestHead> head = ParseHttpRequestHead(
      "GET /api/datasets/caf%C3%A9?split=train+set&split=ignored&q=%2F HTTP/1.1\r\n"
      "Host: x\r\nauthorization:  Bearer abc \r\n");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->path, "/api/datasets/caf\xC3\xA9");
  EXPECT_EQ(head->query.at("split"), "train set");  // the first of a repeated key
  EXPECT_EQ(head->query.at("q"), "/");
  EXPECT_EQ(head->authorization, "Bearer abc");
  EXPECT_TRUE(head->keep_alive);
  EXPECT_FALSE(head->head_only);

  EXPECT_FALSE(ParseHttpRequestHead("GET / HTTP/1.1\r\nConnection: close\r\n")->keep_alive);
  EXPECT_FALSE(ParseHttpRequestHead("GET / HTTP/1.0\r\n")->keep_alive);
  EXPECT_TRUE(ParseHttpRequestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n")->keep_alive);
  EXPECT_TRUE(ParseHttpRequestHead("HEAD /metrics HTTP/1.1\r\n")->head_only);
}

TEST(HttpRequestHeadTest, WhatIsNotAPlainGetIsRefusedByName) {
  const auto refusal = [](absl::string_view head) {
    absl::StatusOr<HttpRequestHead> parsed = ParseHttpRequestHead(head);
    EXPECT_FALSE(parsed.ok()) << head;
    return parsed.ok() ? std::string() : std::string(parsed.status().message());
  };
  EXPECT_EQ(ParseHttpRequestHead("POST / HTTP/1.1\r\n").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_NE(refusal("POST / HTTP/1.1\r\n").find("method POST is not served"), std::string::npos);
  EXPECT_NE(refusal("GET /\r\n").find("METHOD SP TARGET SP HTTP/1.x"), std::string::npos);
  EXPECT_NE(refusal("GET http://x/ HTTP/1.1\r\n").find("absolute path"), std::string::npos);
  EXPECT_NE(refusal("GET /a%2 HTTP/1.1\r\n").find("%-escape"), std::string::npos);
  EXPECT_NE(refusal("GET /?a=%zz HTTP/1.1\r\n").find("%-escape"), std::string::npos);
  EXPECT_NE(refusal("GET / HTTP/1.1\r\nno colon\r\n").find("header line 1"), std::string::npos);
  EXPECT_NE(refusal("GET / HTTP/1.1\r\n folded: x\r\n").find("header line 1"), std::string::npos);
  EXPECT_NE(refusal("GET / HTTP/1.1\r\nContent-Length: 5\r\n").find("request body"),
            std::string::npos);
  EXPECT_NE(refusal("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n").find("request body"),
            std::string::npos);
  EXPECT_TRUE(ParseHttpRequestHead("GET / HTTP/1.1\r\nContent-Length: 0\r\n").ok());
}

// A TCP connection to the server, with a receive timeout so a test never hangs.
class Connection {
 public:
  explicit Connection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{.tv_sec = 60, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~Connection() { close(fd_); }

  bool connected() const { return connected_; }
  bool Send(absl::string_view bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // One reply: its status and body; status 0 when the server closed the connection
  // first, -1 when nothing came within the receive timeout.
  std::pair<int, std::string> Reply() {
    while (true) {
      const size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string head = buffer_.substr(0, end);
        const size_t length_at = head.find("Content-Length: ");
        size_t length = 0;
        if (length_at != std::string::npos) {
          (void)absl::SimpleAtoi(head.substr(length_at + 16, head.find('\r', length_at) -
                                                                 length_at - 16),
                                 &length);
        }
        if (buffer_.size() >= end + 4 + length) {
          int status = 0;
          (void)absl::SimpleAtoi(head.substr(9, 3), &status);
          std::string body = buffer_.substr(end + 4, length);
          buffer_.erase(0, end + 4 + length);
          return {status, body};
        }
      }
      char chunk[4096];
      const ssize_t got = recv(fd_, chunk, sizeof chunk, 0);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {-1, ""};
      if (got <= 0) return {0, ""};  // closed, or reset
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

std::unique_ptr<HttpServer> EchoServer(HttpLimits limits = {}) {
  std::vector<HttpRoute> routes;
  routes.push_back({"/echo/(\\w+)", [](const HttpRequest& request) {
                      const auto found = request.query.find("q");
                      return HttpReply{.status = 200,
                                       .content_type = "text/plain",
                                       .body = absl::StrCat(request.captures.at(0), ":",
                                                            found == request.query.end()
                                                                ? ""
                                                                : found->second)};
                    }});
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start("127.0.0.1:0", std::move(routes), limits);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(HttpServerTest, KeptAliveConnectionsServePipelinedRequestsInOrder) {
  std::unique_ptr<HttpServer> server = EchoServer();
  ASSERT_NE(server, nullptr);
  Connection client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /echo/one?q=a+b HTTP/1.1\r\n\r\n"
                          "GET /nowhere HTTP/1.1\r\n\r\n"
                          "GET /echo/two HTTP/1.1\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(client.Reply(), std::make_pair(200, std::string("one:a b")));
  EXPECT_EQ(client.Reply(), std::make_pair(404, std::string("no route for /nowhere\n")));
  EXPECT_EQ(client.Reply(), std::make_pair(200, std::string("two:")));
  EXPECT_EQ(client.Reply().first, 0);  // closed, as asked
}

TEST(HttpServerTest, BadHeadsAreAnsweredAndTheConnectionClosed) {
  std::unique_ptr<HttpServer> server = EchoServer({.max_head_bytes = 1024});
  ASSERT_NE(server, nullptr);
  {
    Connection client(server->port());
    ASSERT_TRUE(client.Send("POST /echo/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
    const auto [status, body] = client.Reply();
    EXPECT_EQ(status, 405);
    EXPECT_EQ(body, "method POST is not served; GET and HEAD are\n");
    EXPECT_EQ(client.Reply().first, 0);
  }
  {
    Connection client(server->port());
    ASSERT_TRUE(client.Send(absl::StrCat("GET /echo/x HTTP/1.1\r\nX-Big: ",
                                         std::string(2000, 'a'))));
    EXPECT_EQ(client.Reply(),
              std::make_pair(431, std::string("the request's head is over 1024 bytes\n")));
    EXPECT_EQ(client.Reply().first, 0);
  }
}

TEST(HttpServerTest, ASlowLorisNeitherKeepsOthersOutNorOutlastsTheHeadDeadline) {
  // Every slot held by a client that sends its head a line at a time and never ends
  // it: a new client is still served (the loris that waited longest makes room), and
  // every loris is closed at the head deadline however often it sends.
  constexpr int kSlots = 8;
  std::unique_ptr<HttpServer> server =
      EchoServer({.max_connections = kSlots, .head_timeout = absl::Seconds(2)});
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<Connection>> lorises;
  for (int i = 0; i < kSlots; ++i) {
    lorises.push_back(std::make_unique<Connection>(server->port()));
    ASSERT_TRUE(lorises.back()->Send("GET /echo/slow HTTP/1.1\r\n"));
  }
  for (int round = 0; round < 3; ++round) {
    Connection scraper(server->port());
    ASSERT_TRUE(scraper.Send(absl::StrCat("GET /echo/scrape?q=", round, " HTTP/1.1\r\n\r\n")));
    EXPECT_EQ(scraper.Reply(), std::make_pair(200, absl::StrCat("scrape:", round)));
    for (auto& loris : lorises) (void)loris->Send("X-Trickle: 1\r\n");
  }
  // Each loris is closed: made room for a scraper, or past its deadline. None is
  // ever answered, and none is left waiting (the receive would time out: -1).
  for (auto& loris : lorises) EXPECT_EQ(loris->Reply().first, 0);
}

TEST(HttpServerTest, AnIdleKeptAliveConnectionIsClosedAfterTheIdleTimeout) {
  std::unique_ptr<HttpServer> server = EchoServer({.idle_timeout = absl::Milliseconds(500)});
  ASSERT_NE(server, nullptr);
  Connection client(server->port());
  ASSERT_TRUE(client.Send("GET /echo/once HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(client.Reply(), std::make_pair(200, std::string("once:")));
  EXPECT_EQ(client.Reply().first, 0);
}

}  // namespace
}  // namespace normd
