#include "server/service/tensor_wire.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/golden_framing.h"

namespace normd {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::BytesOf;
using testing::GoldenFrame;
using testing::LoadGoldenFraming;

// The request parsed: its fields (the tensor's data left out) equal to the message's,
// and its data viewed in the received bytes, not copied.
template <typename Message>
void ExpectParsedAsTheGoldenMessage(const GoldenFrame& frame, const Message& parsed,
                                    const std::optional<std::span<const std::byte>>& data) {
  auto expected = frame.Message();
  static_cast<v1::Tensor*>(
      expected->GetReflection()->MutableMessage(expected.get(), frame.TensorField()))
      ->clear_data();
  std::string differences;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(*expected, parsed)) << frame.name << ": " << differences;
  ASSERT_TRUE(data.has_value()) << frame.name;
  const std::string want = frame.Tensor().data();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data->data()), data->size()), want)
      << frame.name;
  const auto* begin = reinterpret_cast<const std::byte*>(frame.bytes.data());
  EXPECT_TRUE(data->data() >= begin && data->data() + data->size() <= begin + frame.bytes.size())
      << frame.name << ": the data was copied, not viewed in the request";
}

TEST(TensorWireTest, ParsesEveryGoldenRequestViewingItsData) {
  int requests = 0;
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    const auto bytes = std::as_bytes(std::span(frame.bytes));
    if (frame.message_type == "NormalizeRequest") {
      NormalizeMessage message;
      ASSERT_TRUE(ParseNormalizeRequest(bytes, message).ok()) << frame.name;
      ExpectParsedAsTheGoldenMessage(frame, message.fields, message.tensor_data);
      ++requests;
    } else if (frame.message_type == "IngestRequest") {
      IngestMessage message;
      ASSERT_TRUE(ParseIngestRequest(bytes, message).ok()) << frame.name;
      ExpectParsedAsTheGoldenMessage(frame, message.fields, message.tensor_data);
      EXPECT_FALSE(message.summaries.present()) << frame.name;
      ++requests;
    }
  }
  EXPECT_GE(requests, 3);
}

TEST(TensorWireTest, WritesEveryGoldenResponse) {
  int responses = 0;
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    if (frame.is_request()) continue;
    const auto message = frame.Message();
    const auto& response = static_cast<const v1::NormalizeResponse&>(*message);
    const std::string& values = response.output().data();
    NormalizeReply reply(response.output().shape(), response.output().dtype(), values.size());
    ASSERT_EQ(reply.values().size(), values.size());
    std::memcpy(reply.values().data(), values.data(), values.size());
    EXPECT_EQ(absl::BytesToHexString(BytesOf(reply.Release(response.version()))),
              absl::BytesToHexString(frame.bytes))
        << frame.name;
    ++responses;
  }
  EXPECT_GE(responses, 2);
}

}  // namespace
}  // namespace normd
