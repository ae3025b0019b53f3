// The golden bytes of the tensor messages' framing (tests/wire/golden/
// tensor_framing.txt), which the server's, the C++ client's and the Python client's
// tests all read. Each case carries its message as proto3 JSON; `Oracle` is what
// protobuf itself makes of it, which the file's bytes must be before any of our
// encoders is held to them.
#ifndef NORMD_TESTS_SUPPORT_GOLDEN_FRAMING_H_
#define NORMD_TESTS_SUPPORT_GOLDEN_FRAMING_H_

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "normd/v1/normd.pb.h"

namespace normd::testing {

struct GoldenFrame {
  std::string name;
  std::string message_type;  // NormalizeRequest, IngestRequest or NormalizeResponse
  std::string bytes;         // the golden bytes
  std::string json;          // the message, in proto3 JSON

  bool is_request() const { return message_type != "NormalizeResponse"; }

  // The message the JSON describes, of its type.
  std::unique_ptr<google::protobuf::Message> Message() const {
    std::unique_ptr<google::protobuf::Message> message;
    if (message_type == "NormalizeRequest") message = std::make_unique<v1::NormalizeRequest>();
    if (message_type == "IngestRequest") message = std::make_unique<v1::IngestRequest>();
    if (message_type == "NormalizeResponse") message = std::make_unique<v1::NormalizeResponse>();
    // A type the file should not hold: fail the test here, not in a null dereference.
    if (message == nullptr) {
      ADD_FAILURE() << name << ": unknown message type " << message_type;
      message = std::make_unique<v1::NormalizeResponse>();
    }
    const auto status = google::protobuf::util::JsonStringToMessage(json, message.get());
    EXPECT_TRUE(status.ok()) << name << ": " << status.ToString();
    return message;
  }

  // The message's tensor field: input, batch or output.
  const google::protobuf::FieldDescriptor* TensorField() const {
    const char* name = message_type == "NormalizeRequest" ? "input"
                       : message_type == "IngestRequest"  ? "batch"
                                                          : "output";
    return Message()->GetDescriptor()->FindFieldByName(name);
  }
  // The message's tensor.
  v1::Tensor Tensor() const {
    const auto message = Message();
    return static_cast<const v1::Tensor&>(
        message->GetReflection()->GetMessage(*message, TensorField()));
  }
  // The message less its tensor field.
  std::unique_ptr<google::protobuf::Message> Rest() const {
    auto rest = Message();
    rest->GetReflection()->ClearField(rest.get(), TensorField());
    return rest;
  }

  // What protobuf makes of the message: a request serialised less its tensor field,
  // then that field alone (the framing puts the tensor last); a response whole.
  std::string Oracle() const {
    const auto message = Message();
    if (!is_request()) return message->SerializeAsString();
    std::unique_ptr<google::protobuf::Message> only(message->New());
    only->GetReflection()->MutableMessage(only.get(), TensorField())->CopyFrom(Tensor());
    return Rest()->SerializeAsString() + only->SerializeAsString();
  }
};

// The bytes of a ByteBuffer, its slices joined.
inline std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

inline std::vector<GoldenFrame> LoadGoldenFraming() {
  std::ifstream file(NORMD_GOLDEN_FRAMING);
  EXPECT_TRUE(file.good()) << "cannot read " << NORMD_GOLDEN_FRAMING;
  std::vector<GoldenFrame> frames;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    EXPECT_EQ(parts.size(), 4u) << "expected NAME MESSAGE HEX JSON, got: " << line;
    if (parts.size() != 4) continue;
    frames.push_back({parts[0], parts[1], absl::HexStringToBytes(parts[2]), parts[3]});
  }
  EXPECT_GE(frames.size(), 4u) << NORMD_GOLDEN_FRAMING << " holds too few cases";
  return frames;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_GOLDEN_FRAMING_H_
