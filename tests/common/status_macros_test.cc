#include "common/status_macros.h"

#include <string>

#include "gtest/gtest.h"

namespace normd {
namespace {

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

int calls = 0;
absl::Status Counted(absl::Status status) {
  ++calls;
  return status;
}

absl::StatusOr<int> Quarter(int x) {
  NORMD_ASSIGN_OR_RETURN(const int half, Half(x));
  NORMD_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckBoth(absl::Status first, absl::Status second) {
  NORMD_RETURN_IF_ERROR(Counted(first));
  NORMD_RETURN_IF_ERROR(Counted(second));
  return absl::OkStatus();
}

std::string Described(int x) {
  NORMD_ASSIGN_OR_RETURN(const int half, Half(x),
                         std::string("refused: ") + std::string(_.message()));
  NORMD_RETURN_IF_ERROR(Half(half), std::string("half refused: ") + std::string(_.message()));
  return "fine";
}

TEST(StatusMacrosTest, AssignOrReturnPassesValuesAndFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
  EXPECT_EQ(Quarter(3).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StatusMacrosTest, ReturnIfErrorEvaluatesOnceAndStopsAtTheFirstError) {
  calls = 0;
  EXPECT_TRUE(CheckBoth(absl::OkStatus(), absl::OkStatus()).ok());
  EXPECT_EQ(calls, 2);
  calls = 0;
  EXPECT_EQ(CheckBoth(absl::NotFoundError("a"), absl::OkStatus()).message(), "a");
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacrosTest, TheErrorExpressionSeesTheStatusAsUnderscore) {
  EXPECT_EQ(Described(8), "fine");
  EXPECT_EQ(Described(3), "refused: odd");
  EXPECT_EQ(Described(6), "half refused: odd");
}

}  // namespace
}  // namespace normd
