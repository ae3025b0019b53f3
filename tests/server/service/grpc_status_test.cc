#include "server/service/grpc_status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

TEST(GrpcStatusTest, CodeAndShortMessagePassUnchanged) {
  const grpc::Status status = ToGrpcStatus(absl::NotFoundError("dataset \"x\" does not exist"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "dataset \"x\" does not exist");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(GrpcStatusTest, ControlAndNonAsciiBytesAreEscaped) {
  const grpc::Status status =
      ToGrpcStatus(absl::InvalidArgumentError(std::string("name \"a\nb\0c\xc3\xa9\" is bad", 21)));
  EXPECT_EQ(status.error_message(), "name \"a\\x0ab\\x00c\\xc3\\xa9\" is bad");
}

// A client string of 64 MiB echoed into a message does not travel back whole.
TEST(GrpcStatusTest, LongMessagesAreCutTo3KiBSayingHowMuchWasCut) {
  for (const size_t length :
       {kMaxStatusMessageBytes, kMaxStatusMessageBytes + 1, size_t{64} << 20}) {
    for (const char fill : {'n', '\x01'}) {
      const std::string message(length, fill);
      const grpc::Status status = ToGrpcStatus(absl::InvalidArgumentError(message));
      const std::string& sent = status.error_message();
      ASSERT_LE(sent.size(), kMaxStatusMessageBytes) << length;
      const size_t width = fill == 'n' ? 1 : 4;
      if (length * width <= kMaxStatusMessageBytes) {
        EXPECT_EQ(sent.size(), length * width);
        continue;
      }
      const size_t kept = sent.find("... [") / width;
      ASSERT_NE(sent.find("... ["), std::string::npos);
      EXPECT_EQ(sent.substr(sent.find("... [")),
                absl::StrCat("... [", length - kept, " more bytes cut]"));
      EXPECT_GT(sent.size(), kMaxStatusMessageBytes - 40);
    }
  }
}

}  // namespace
}  // namespace normd
