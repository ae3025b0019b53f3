#include "server/auth/access_policy.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace normd {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

std::array<uint8_t, 32> Sha256(absl::string_view text) {
  std::array<uint8_t, 32> digest;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

absl::StatusOr<Role> RoleFromName(absl::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "writer") return Role::kWriter;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "'; expected reader, writer or admin"));
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<AccessPolicy> AccessPolicy::Parse(absl::string_view text, absl::string_view source) {
  AccessPolicy policy;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // The token itself never appears in an error: only where it is.
    const std::string where = absl::StrCat(source, ":", line_number);
    if (fields.size() < 2 || fields.size() > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected \"ROLE TOKEN [NAME]\", got ", fields.size(), " fields"));
    }
    NORMD_ASSIGN_OR_RETURN(const Role role, RoleFromName(fields[0]),
                           absl::InvalidArgumentError(absl::StrCat(where, ": ", _.message())));
    if (fields[1].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the token has ", fields[1].size(),
                                                     " characters; at least 16 are required"));
    }
    Entry entry{Sha256(fields[1]), role,
                fields.size() == 3 ? std::string(fields[2]) : absl::StrCat("token at ", where)};
    for (const Entry& other : policy.entries_) {
      if (other.digest == entry.digest) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": the same token as ", other.name, " appears again"));
      }
    }
    policy.entries_.push_back(std::move(entry));
  }
  if (policy.entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " holds no tokens"));
  }
  return policy;
}

absl::StatusOr<AccessPolicy> AccessPolicy::FromFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read the tokens file ", path));
  std::stringstream text;
  text << file.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<Caller> AccessPolicy::Authorize(absl::string_view authorization, Role needed,
                                               absl::string_view method) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, " needs an \"authorization: Bearer TOKEN\" header; none came"));
  }
  if (!absl::StartsWith(authorization, kBearer)) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, ": the authorization header must be \"Bearer TOKEN\""));
  }
  // Every entry is compared, with no early exit, so the time taken says nothing about
  // which token, or how much of one, matched.
  const std::array<uint8_t, 32> digest = Sha256(authorization.substr(kBearer.size()));
  const Entry* match = nullptr;
  for (const Entry& entry : entries_) {
    const bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    match = equal ? &entry : match;
  }
  if (match == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(method, ": unknown bearer token"));
  }
  if (static_cast<int>(match->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(method, " needs the ", RoleName(needed),
                                                    " role; ", match->name, " is a ",
                                                    RoleName(match->role)));
  }
  return Caller{match->name, match->role, absl::StrCat("token-", match - entries_.data())};
}

}  // namespace normd
