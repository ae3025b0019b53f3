#include "wire/tensor_framing.h"

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "tests/support/golden_framing.h"

namespace normd {
namespace {

using testing::GoldenFrame;
using testing::LoadGoldenFraming;

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

TEST(TensorFramingTest, TheGoldenBytesAreWhatProtobufMakesOfEachMessage) {
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    EXPECT_EQ(absl::BytesToHexString(frame.bytes), absl::BytesToHexString(frame.Oracle()))
        << frame.name;
  }
}

TEST(TensorFramingTest, FramesEveryGoldenMessage) {
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    const v1::Tensor tensor = frame.Tensor();
    std::string framed;
    if (frame.is_request()) {
      framed = frame.Rest()->SerializeAsString() +
               TensorFieldHead(framing::kRequestTensor, tensor.shape(), tensor.dtype(),
                               tensor.data().size()) +
               tensor.data();
    } else {
      const auto message = frame.Message();
      const auto& response = static_cast<const v1::NormalizeResponse&>(*message);
      framed = TensorFieldHead(framing::kResponseOutput, tensor.shape(), tensor.dtype(),
                               tensor.data().size()) +
               tensor.data() + ResponseVersionField(response.version());
    }
    EXPECT_EQ(absl::BytesToHexString(framed), absl::BytesToHexString(frame.bytes)) << frame.name;
  }
}

TEST(TensorFramingTest, ATensorAtItsDefaultsIsFramedAsProtobufSerialisesIt) {
  v1::NormalizeResponse response;
  response.mutable_output()->set_data("abc");
  const std::string framed =
      TensorFieldHead(framing::kResponseOutput, {}, v1::DTYPE_UNSPECIFIED, 3) + "abc" +
      ResponseVersionField(0);
  EXPECT_EQ(absl::BytesToHexString(framed), absl::BytesToHexString(response.SerializeAsString()));
}

// The fields NextWireField walks are the ones protobuf's own parser finds.
TEST(TensorFramingTest, WalksTheFieldsProtobufsParserFinds) {
  for (const GoldenFrame& frame : LoadGoldenFraming()) {
    google::protobuf::UnknownFieldSet oracle;
    ASSERT_TRUE(oracle.ParseFromString(frame.bytes)) << frame.name;
    std::vector<std::pair<int, int>> expected;
    for (int i = 0; i < oracle.field_count(); ++i) {
      const auto& field = oracle.field(i);
      const int wire_type = field.type() == google::protobuf::UnknownField::TYPE_VARINT ? 0
                            : field.type() == google::protobuf::UnknownField::TYPE_FIXED64 ? 1
                            : field.type() == google::protobuf::UnknownField::TYPE_FIXED32 ? 5
                                                                                            : 2;
      expected.emplace_back(field.number(), wire_type);
    }
    std::vector<std::pair<int, int>> walked;
    const auto bytes = Bytes(frame.bytes);
    size_t at = 0;
    WireField field;
    while (at < bytes.size()) {
      ASSERT_TRUE(NextWireField(bytes, at, field)) << frame.name << " at byte " << at;
      walked.emplace_back(field.number, static_cast<int>(field.wire_type));
    }
    EXPECT_EQ(walked, expected) << frame.name;
  }
}

TEST(TensorFramingTest, RefusesWhatIsNotAWellFormedField) {
  const std::vector<std::pair<std::string, std::string>> malformed = {
      {"field number 0", std::string("\x00\x01", 2)},
      {"a group (wire type 3)", "\x0b"},
      {"wire type 7", "\x0f"},
      {"a varint cut short", "\x08\x80"},
      {"a length past the end", "\x0a\x05" "abc"},
      {"a fixed64 cut short", "\x09" "1234567"},
      {"a fixed32 cut short", "\x0d" "123"},
      {"a key cut short", "\x80"},
  };
  for (const auto& [what, bytes] : malformed) {
    size_t at = 0;
    WireField field;
    EXPECT_FALSE(NextWireField(Bytes(bytes), at, field)) << what;
  }
}

TEST(TensorFramingTest, AFieldsHeadIsReadInAWindowShorterThanItsBody) {
  const std::string window = "\x0a\x90\x4e";  // field 1, 10,000 bytes long: not all here
  size_t at = 0;
  WireField field;
  EXPECT_FALSE(NextWireField(Bytes(window), at, field));
  at = 0;
  ASSERT_TRUE(ReadWireFieldHead(Bytes(window), at, field));
  EXPECT_TRUE(field.is(1, WireType::kLengthDelimited));
  EXPECT_EQ(field.body_begin, 3u);
  EXPECT_EQ(field.body_size(), 10000u);
  EXPECT_EQ(at, 3u);
}

}  // namespace
}  // namespace normd
