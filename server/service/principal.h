// Who is calling: with tokens, the token; without, the peer's host (and, for shared
// memory, its user).
#ifndef NORMD_SERVER_SERVICE_PRINCIPAL_H_
#define NORMD_SERVER_SERVICE_PRINCIPAL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "server/auth/access_policy.h"
#include "server/regions/peer_uid.h"

namespace normd {

struct Principal {
  std::string id;  // the token's unique id, or the peer's host ("ipv4:127.0.0.1")
  bool authenticated = false;
  std::string peer;  // gRPC's peer, port and all ("ipv4:127.0.0.1:54321")
  std::string name;           // the token's name, for messages; "" without tokens
  Role role = Role::kAdmin;   // the token's role; without tokens every caller may do all
  // Who owns the caller's shared-memory regions: its token; without tokens, the
  // user (uid) of the process calling, found from the connection (peer_uid.h), so
  // that one local user cannot see, read, write or drop another's regions.
  struct RegionOwner {
    std::string key;                  // "token-3", "uid:1000"
    std::optional<uint32_t> uid;      // without tokens
  };
  absl::StatusOr<RegionOwner> Regions() const {
    if (authenticated) return RegionOwner{id, std::nullopt};
    NORMD_ASSIGN_OR_RETURN(const uint32_t uid, LocalPeerUid(peer));
    return RegionOwner{absl::StrCat("uid:", uid), uid};
  }

  // Whose share of the server's slots (Ingest streams) a call takes: its token;
  // without tokens a local caller's user, so that one user's processes are one
  // caller whether they come over 127.0.0.1, [::1] or the Unix socket, and another
  // user's are another; else (a remote caller) its host.
  std::string ShareKey() const {
    if (authenticated) return id;
    const absl::StatusOr<uint32_t> uid = LocalPeerUid(peer);
    return uid.ok() ? absl::StrCat("uid:", *uid) : id;
  }

  // A method's role is checked on admission; a request that can do more than its
  // method's role allows (a Normalize that commits statistics) is checked again here,
  // by what it does. PERMISSION_DENIED naming `what` and both roles.
  absl::Status Require(Role needed, absl::string_view what) const {
    if (static_cast<int>(role) >= static_cast<int>(needed)) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(what, " needs the ", RoleName(needed),
                                                    " role; ", name, " is a ", RoleName(role)));
  }
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_PRINCIPAL_H_
