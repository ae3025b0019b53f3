// The user id of the process at the other end of a same-host gRPC connection, known
// without its help: shared memory without tokens belongs to a uid, and a gRPC call
// carries none. A loopback TCP peer ("ipv4:127.0.0.1:PORT", "ipv6:[::1]:PORT") is
// found in the kernel's socket table (/proc/net/tcp, tcp6), whose row for the
// caller's end of the connection names the uid that owns it; a peer on normd's Unix
// socket, which normd makes 0600, is normd's own user.
#ifndef NORMD_SERVER_REGIONS_PEER_UID_H_
#define NORMD_SERVER_REGIONS_PEER_UID_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace normd {

// PERMISSION_DENIED for a peer not on this host's loopback (shared memory is for
// callers on normd's host); UNAVAILABLE when the connection is no longer in the
// table (the caller hung up).
absl::StatusOr<uint32_t> LocalPeerUid(absl::string_view grpc_peer);

// Where the caller's end of a loopback TCP connection may be listed: a table and
// the address:port in its form ("0100007F:D431" for 127.0.0.1:54321). An IPv4
// caller may hold an IPv6 socket (v4-mapped, as gRPC's clients do), so it has two
// places. Empty when `grpc_peer` is not a loopback TCP peer.
struct SocketTableEntry {
  std::string table;    // "/proc/net/tcp" or "/proc/net/tcp6"
  std::string address;
};
std::vector<SocketTableEntry> SocketTableAddresses(absl::string_view grpc_peer);

}  // namespace normd

#endif  // NORMD_SERVER_REGIONS_PEER_UID_H_
