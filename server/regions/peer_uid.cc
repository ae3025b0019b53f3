#include "server/regions/peer_uid.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace normd {
namespace {

// The kernel prints an address as its 32-bit words, each in the host's byte order.
std::string Words(const unsigned char* bytes, size_t size) {
  std::string out;
  for (size_t i = 0; i < size; i += 4) {
    uint32_t word;
    std::memcpy(&word, bytes + i, sizeof(word));
    absl::StrAppendFormat(&out, "%08X", word);
  }
  return out;
}

}  // namespace

std::vector<SocketTableEntry> SocketTableAddresses(absl::string_view grpc_peer) {
  absl::string_view rest = grpc_peer;
  const bool v4 = absl::ConsumePrefix(&rest, "ipv4:");
  if (!v4 && !absl::ConsumePrefix(&rest, "ipv6:")) return {};
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return {};
  uint32_t port = 0;
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port > 65535) return {};
  std::string host(rest.substr(0, colon));
  if (!v4) {  // "[::1]", or URI-escaped "%5B::1%5D"
    absl::string_view inner = host;
    if (!(absl::ConsumePrefix(&inner, "[") && absl::ConsumeSuffix(&inner, "]")) &&
        !(absl::ConsumePrefix(&inner, "%5B") && absl::ConsumeSuffix(&inner, "%5D"))) {
      return {};
    }
    host = std::string(inner);
  }
  const auto entry = [port](const char* table, const unsigned char* bytes, size_t size) {
    return SocketTableEntry{table, absl::StrFormat("%s:%04X", Words(bytes, size), port)};
  };
  unsigned char bytes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (v4 || absl::StartsWithIgnoreCase(host, "::ffff:")) {
    const std::string address = v4 ? host : host.substr(7);
    if (inet_pton(AF_INET, address.c_str(), bytes + 12) != 1 || bytes[12] != 127) return {};
    // An IPv4 socket, or an IPv6 one connected to a v4-mapped address.
    return {entry("/proc/net/tcp", bytes + 12, 4), entry("/proc/net/tcp6", bytes, 16)};
  }
  if (inet_pton(AF_INET6, host.c_str(), bytes) != 1) return {};
  static constexpr unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::memcmp(bytes, kLoopback, 16) != 0) return {};
  return {entry("/proc/net/tcp6", bytes, 16)};
}

absl::StatusOr<uint32_t> LocalPeerUid(absl::string_view grpc_peer) {
  if (absl::StartsWith(grpc_peer, "unix:")) return static_cast<uint32_t>(geteuid());
  const std::vector<SocketTableEntry> places = SocketTableAddresses(grpc_peer);
  if (places.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "shared memory is for callers on normd's host, over loopback or its Unix socket; this "
        "call came from ",
        grpc_peer));
  }
  std::optional<uint32_t> uid;
  for (const SocketTableEntry& place : places) {
    std::ifstream table(place.table);
    std::string line;
    std::getline(table, line);  // the header
    while (std::getline(table, line)) {
      // "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ..."
      const std::vector<absl::string_view> fields =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (fields.size() < 8 || fields[1] != place.address || fields[3] != "01") continue;
      uint32_t owner = 0;
      if (!absl::SimpleAtoi(fields[7], &owner)) continue;
      if (uid.has_value() && *uid != owner) {
        return absl::PermissionDeniedError(
            absl::StrCat("two users' sockets hold ", grpc_peer, "; its caller cannot be told"));
      }
      uid = owner;
    }
  }
  if (!uid.has_value()) {
    return absl::UnavailableError(absl::StrCat(
        "the connection from ", grpc_peer, " is not in the kernel's socket table (it closed)"));
  }
  return *uid;
}

}  // namespace normd
