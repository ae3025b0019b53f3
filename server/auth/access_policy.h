// Bearer-token access control. Each token in the tokens file is bound to a role
// (reader < writer < admin); each RPC needs one (method_roles.h). Tokens are kept
// only as SHA-256 digests, compared in constant time, and never logged: a caller is
// known by the name its line gives.
#ifndef NORMD_SERVER_AUTH_ACCESS_POLICY_H_
#define NORMD_SERVER_AUTH_ACCESS_POLICY_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace normd {

enum class Role { kReader = 0, kWriter = 1, kAdmin = 2 };

absl::string_view RoleName(Role role);

struct Caller {
  std::string name;
  Role role;
  // Unique per token (two lines may give the same name): what the caller owns, such
  // as its shared-memory regions, is keyed by this.
  std::string id;
};

class AccessPolicy {
 public:
  // One token per line: "ROLE TOKEN [NAME]", ROLE one of reader, writer, admin. Blank
  // lines and lines starting with '#' are skipped. `source` names the text in errors.
  static absl::StatusOr<AccessPolicy> Parse(absl::string_view text, absl::string_view source);
  static absl::StatusOr<AccessPolicy> FromFile(const std::string& path);

  // `authorization` is the request's "authorization" metadata ("" when absent), as
  // "Bearer TOKEN". UNAUTHENTICATED when it is missing, malformed or names no known
  // token; PERMISSION_DENIED when the token's role is below `needed` for `method`.
  absl::StatusOr<Caller> Authorize(absl::string_view authorization, Role needed,
                                   absl::string_view method) const;

  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    Digest digest;
    Role role;
    std::string name;
  };

  std::vector<Entry> entries_;
};

}  // namespace normd

#endif  // NORMD_SERVER_AUTH_ACCESS_POLICY_H_
