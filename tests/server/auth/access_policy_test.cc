#include "server/auth/access_policy.h"

#include <string>

#include "gtest/gtest.h"

namespace normd {
namespace {

constexpr char kReaderToken[] = "reader-token-0123456789";
constexpr char kWriterToken[] = "writer-token-0123456789";
constexpr char kAdminToken[] = "admin-token-0123456789";

AccessPolicy Policy() {
  absl::StatusOr<AccessPolicy> policy = AccessPolicy::Parse(
      absl::StrCat("# role token name\n\n", "reader ", kReaderToken, " dashboards\n", "writer\t",
                   kWriterToken, "\n", "  admin ", kAdminToken, " ops  \n"),
      "tokens");
  EXPECT_TRUE(policy.ok()) << policy.status();
  return *std::move(policy);
}

std::string Bearer(absl::string_view token) { return absl::StrCat("Bearer ", token); }

void ExpectRefused(const absl::Status& status, absl::StatusCode code, absl::string_view fragment) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(fragment), absl::string_view::npos) << status;
  for (const char* token : {kReaderToken, kWriterToken, kAdminToken}) {
    EXPECT_EQ(status.message().find(token), absl::string_view::npos) << "leaks a token";
  }
}

TEST(AccessPolicyTest, EachRoleIncludesTheOnesBelow) {
  const AccessPolicy policy = Policy();
  EXPECT_EQ(policy.size(), 3u);
  const struct {
    const char* token;
    const char* name;
    Role role;
  } callers[] = {{kReaderToken, "dashboards", Role::kReader},
                 {kWriterToken, "token at tokens:4", Role::kWriter},
                 {kAdminToken, "ops", Role::kAdmin}};
  for (const auto& caller : callers) {
    for (Role needed : {Role::kReader, Role::kWriter, Role::kAdmin}) {
      absl::StatusOr<Caller> admitted = policy.Authorize(Bearer(caller.token), needed, "M");
      if (static_cast<int>(caller.role) >= static_cast<int>(needed)) {
        ASSERT_TRUE(admitted.ok()) << admitted.status();
        EXPECT_EQ(admitted->name, caller.name);
        EXPECT_EQ(admitted->role, caller.role);
      } else {
        ExpectRefused(admitted.status(), absl::StatusCode::kPermissionDenied,
                      absl::StrCat("M needs the ", RoleName(needed), " role; ", caller.name,
                                   " is a ", RoleName(caller.role)));
      }
    }
  }
}

TEST(AccessPolicyTest, MissingMalformedAndUnknownTokensAreUnauthenticated) {
  const AccessPolicy policy = Policy();
  ExpectRefused(policy.Authorize("", Role::kReader, "Normalize").status(),
                absl::StatusCode::kUnauthenticated, "Normalize needs an \"authorization");
  ExpectRefused(policy.Authorize(kAdminToken, Role::kReader, "M").status(),
                absl::StatusCode::kUnauthenticated, "must be \"Bearer TOKEN\"");
  ExpectRefused(policy.Authorize(absl::StrCat("Basic ", kAdminToken), Role::kReader, "M").status(),
                absl::StatusCode::kUnauthenticated, "must be \"Bearer TOKEN\"");
  // A prefix, an extension and a one-character change of a real token are all unknown.
  const std::string admin = kAdminToken;
  for (const std::string& wrong : {admin.substr(0, admin.size() - 1), admin + "x",
                                   "X" + admin.substr(1), std::string("Bearer ")}) {
    ExpectRefused(policy.Authorize(Bearer(wrong), Role::kReader, "M").status(),
                  absl::StatusCode::kUnauthenticated, "unknown bearer token");
  }
}

TEST(AccessPolicyTest, BadFilesNameTheLineButNeverTheToken) {
  const std::string token = "a-perfectly-good-token";
  auto parse_error = [](const std::string& text) {
    return AccessPolicy::Parse(text, "tokens.txt").status();
  };
  ExpectRefused(parse_error("root " + token + "\n"), absl::StatusCode::kInvalidArgument,
                "tokens.txt:1: unknown role 'root'; expected reader, writer or admin");
  ExpectRefused(parse_error("\nreader short\n"), absl::StatusCode::kInvalidArgument,
                "tokens.txt:2: the token has 5 characters; at least 16 are required");
  ExpectRefused(parse_error("reader\n"), absl::StatusCode::kInvalidArgument,
                "tokens.txt:1: expected \"ROLE TOKEN [NAME]\", got 1 fields");
  ExpectRefused(parse_error("reader " + token + " a b\n"), absl::StatusCode::kInvalidArgument,
                "got 4 fields");
  const absl::Status duplicate =
      parse_error("reader " + token + " first\nadmin " + token + " second\n");
  ExpectRefused(duplicate, absl::StatusCode::kInvalidArgument,
                "tokens.txt:2: the same token as first appears again");
  EXPECT_EQ(duplicate.message().find(token), absl::string_view::npos);
  ExpectRefused(parse_error("# nothing\n"), absl::StatusCode::kInvalidArgument,
                "tokens.txt holds no tokens");
  ExpectRefused(AccessPolicy::FromFile("/nonexistent/tokens").status(), absl::StatusCode::kNotFound,
                "cannot read the tokens file /nonexistent/tokens");
}

}  // namespace
}  // namespace normd
