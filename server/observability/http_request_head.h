// HTTP/1.1 at the level of bytes, for the HTTP port (http_server.h): a request's head
// parsed and checked, and a reply laid out. Only what a GET needs: no request bodies.
#ifndef NORMD_SERVER_OBSERVABILITY_HTTP_REQUEST_HEAD_H_
#define NORMD_SERVER_OBSERVABILITY_HTTP_REQUEST_HEAD_H_

#include <map>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace normd {

struct HttpRequestHead {
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // decoded; the first of a repeated key
  std::string authorization;                 // "" when absent
  bool keep_alive = true;                    // HTTP/1.1 unless "Connection: close"
  bool head_only = false;                    // a HEAD request
};

// The request line and header lines of `head`, each ended by CRLF (the blank line
// that ends the head excluded). INVALID_ARGUMENT naming what is wrong (a malformed
// line, a target that is not an absolute path, bad percent-encoding, a request
// body), UNIMPLEMENTED for a method other than GET or HEAD.
absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(absl::string_view head);

// A whole reply: status line, Content-Type, Content-Length, Connection, and with
// `no_store` Cache-Control: no-store; X-Content-Type-Options: nosniff always. A reply
// to HEAD carries the length but not the body.
std::string EncodeHttpReply(int status, absl::string_view content_type, absl::string_view body,
                            bool keep_alive, bool head_only, bool no_store);

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_HTTP_REQUEST_HEAD_H_
