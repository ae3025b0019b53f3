#include "server/observability/http_request_head.h"

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace normd {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded (and, in a query, '+' as a space); nullopt on a malformed escape.
std::optional<std::string> PercentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = HexDigit(text[i + 1]);
      const int low = HexDigit(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

absl::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

}  // namespace

absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(absl::string_view head) {
  if (!absl::EndsWith(head, "\r\n")) {
    return absl::InvalidArgumentError("the request's head does not end with CRLF");
  }
  head.remove_suffix(2);
  const std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  const std::vector<absl::string_view> words = absl::StrSplit(lines.front(), ' ');
  if (words.size() != 3 || !absl::StartsWith(words[2], "HTTP/1.")) {
    return absl::InvalidArgumentError(
        "the request line must be METHOD SP TARGET SP HTTP/1.x");
  }
  HttpRequestHead parsed;
  if (words[0] == "HEAD") {
    parsed.head_only = true;
  } else if (words[0] != "GET") {
    return absl::UnimplementedError(
        absl::StrCat("method ", absl::CHexEscape(words[0]), " is not served; GET and HEAD are"));
  }
  parsed.keep_alive = words[2] == "HTTP/1.1";
  const absl::string_view target = words[1];
  if (target.empty() || target.front() != '/') {
    return absl::InvalidArgumentError("the request target must be an absolute path (/...)");
  }
  const size_t question = target.find('?');
  std::optional<std::string> path = PercentDecode(target.substr(0, question), false);
  if (!path.has_value()) return absl::InvalidArgumentError("the path has a malformed %-escape");
  parsed.path = *std::move(path);
  if (question != absl::string_view::npos) {
    for (const absl::string_view pair :
         absl::StrSplit(target.substr(question + 1), '&', absl::SkipEmpty())) {
      const size_t equals = pair.find('=');
      std::optional<std::string> key = PercentDecode(pair.substr(0, equals), true);
      std::optional<std::string> value =
          PercentDecode(equals == absl::string_view::npos ? "" : pair.substr(equals + 1), true);
      if (!key.has_value() || !value.has_value()) {
        return absl::InvalidArgumentError("the query has a malformed %-escape");
      }
      parsed.query.emplace(*std::move(key), *std::move(value));
    }
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0 || line.front() == ' ' ||
        line.front() == '\t') {
      return absl::InvalidArgumentError(
          absl::StrCat("header line ", i, " is not NAME: VALUE"));
    }
    const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (name == "authorization") {
      parsed.authorization = std::string(value);
    } else if (name == "connection") {
      if (absl::EqualsIgnoreCase(value, "close")) parsed.keep_alive = false;
      if (absl::EqualsIgnoreCase(value, "keep-alive")) parsed.keep_alive = true;
    } else if (name == "transfer-encoding" || (name == "content-length" && value != "0")) {
      return absl::InvalidArgumentError("a request body is not accepted here (GET and HEAD only)");
    }
  }
  return parsed;
}

std::string EncodeHttpReply(int status, absl::string_view content_type, absl::string_view body,
                            bool keep_alive, bool head_only, bool no_store) {
  std::string reply = absl::StrCat("HTTP/1.1 ", status, " ", Reason(status),
                                   "\r\nContent-Type: ", content_type,
                                   "\r\nContent-Length: ", body.size(),
                                   "\r\nX-Content-Type-Options: nosniff\r\n");
  if (no_store) reply.append("Cache-Control: no-store\r\n");
  reply.append(keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
  if (!head_only) reply.append(body.data(), body.size());
  return reply;
}

}  // namespace normd
