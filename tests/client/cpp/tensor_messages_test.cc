#include "client/cpp/tensor_messages.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/support/golden_framing.h"

namespace normd {
namespace {

using testing::BytesOf;
using testing::GoldenFrame;
using testing::LoadGoldenFraming;

// `bytes` as a ByteBuffer of slices of at most `slice_size` bytes, as gRPC may hand
// over a reply.
grpc::ByteBuffer InSlices(const std::string& bytes, size_t slice_size) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += slice_size) {
    slices.emplace_back(bytes.data() + at, std::min(slice_size, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(TensorMessagesTest, EncodesEveryGoldenRequest) {
  int requests = 0;
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    if (!frame.is_request()) continue;
    const auto message = frame.Message();
    const std::string data = frame.Tensor().data();
    const auto values = std::as_bytes(std::span(data));
    const grpc::ByteBuffer encoded =
        frame.message_type == "NormalizeRequest"
            ? EncodeWithTensor(static_cast<const v1::NormalizeRequest&>(*message), values)
            : EncodeWithTensor(static_cast<const v1::IngestRequest&>(*message), values);
    EXPECT_EQ(absl::BytesToHexString(BytesOf(encoded)), absl::BytesToHexString(frame.bytes))
        << frame.name;
    ++requests;
  }
  EXPECT_GE(requests, 3);
}

TEST(TensorMessagesTest, DecodesEveryGoldenResponseInAnyNumberOfSlices) {
  int responses = 0;
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    if (frame.is_request()) continue;
    const auto message = frame.Message();
    const auto& response = static_cast<const v1::NormalizeResponse&>(*message);
    for (const size_t slice_size : {frame.bytes.size(), size_t{7}, size_t{1}}) {
      std::string output(response.output().data().size(), '\0');
      const auto version = DecodeNormalizeReply(InSlices(frame.bytes, slice_size),
                                                std::as_writable_bytes(std::span(output)));
      ASSERT_TRUE(version.ok()) << frame.name << ": " << version.status();
      EXPECT_EQ(*version, response.version()) << frame.name;
      EXPECT_EQ(output, response.output().data()) << frame.name << " in slices of " << slice_size;
    }
    std::string too_small(response.output().data().size() - 1, '\0');
    const auto refused = DecodeNormalizeReply(InSlices(frame.bytes, frame.bytes.size()),
                                              std::as_writable_bytes(std::span(too_small)));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal) << frame.name;
    EXPECT_NE(refused.status().message().find("room for " + std::to_string(too_small.size())),
              std::string::npos)
        << refused.status();
    ++responses;
  }
  EXPECT_GE(responses, 2);
}

TEST(TensorMessagesTest, ATruncatedReplyIsRefusedNotReadPastItsEnd) {
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    if (frame.is_request()) continue;
    const std::string cut = frame.bytes.substr(0, frame.bytes.size() / 2);
    std::string output(frame.Tensor().data().size(), '\0');
    const auto refused = DecodeNormalizeReply(InSlices(cut, cut.size()),
                                              std::as_writable_bytes(std::span(output)));
    EXPECT_FALSE(refused.ok()) << frame.name;
  }
}

}  // namespace
}  // namespace normd
