// The framing of the tensor-carrying messages (NormalizeRequest.input,
// IngestRequest.batch, NormalizeResponse.output) at protobuf's wire level, written
// once for the server (server/service/tensor_wire.h) and the C++ client
// (client/cpp/tensor_messages.h); the Python client frames the same bytes
// (client/python/normd/wire.py), and tests/wire/golden/tensor_framing.txt holds them.
//
// Protobuf cannot put a tensor's values where gRPC sends them or view them where gRPC
// received them, so the few bytes around the values are framed here. Every field
// number comes from the generated code: a renumbered proto changes the bytes, never
// their meaning.
//
// The layout: a request is its other fields, then its tensor field last (protobuf
// takes fields in any order); the tensor is its shape and dtype as protobuf
// serialises them, then its data. A NormalizeResponse is exactly what protobuf would
// serialise: its output, then its version.
#ifndef NORMD_WIRE_TENSOR_FRAMING_H_
#define NORMD_WIRE_TENSOR_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "google/protobuf/repeated_field.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// Field numbers of the framed fields, from the generated code.
namespace framing {
// The request's tensor: one number for both requests, so one parser serves them.
inline constexpr uint32_t kRequestTensor = v1::NormalizeRequest::kInputFieldNumber;
static_assert(v1::IngestRequest::kBatchFieldNumber == kRequestTensor,
              "NormalizeRequest.input and IngestRequest.batch must share a field number: "
              "the server parses both with one splice");
inline constexpr uint32_t kTensorShape = v1::Tensor::kShapeFieldNumber;
inline constexpr uint32_t kTensorDType = v1::Tensor::kDtypeFieldNumber;
inline constexpr uint32_t kTensorData = v1::Tensor::kDataFieldNumber;
inline constexpr uint32_t kResponseOutput = v1::NormalizeResponse::kOutputFieldNumber;
inline constexpr uint32_t kResponseVersion = v1::NormalizeResponse::kVersionFieldNumber;
inline constexpr uint32_t kIngestSummaries = v1::IngestRequest::kSummariesFieldNumber;
inline constexpr uint32_t kSummariesEntry = v1::MomentsSummaries::kSummariesFieldNumber;
}  // namespace framing

// Protobuf's wire types that the framing meets.
enum class WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a serialised message, located in its bytes.
struct WireField {
  uint32_t number = 0;
  WireType wire_type = WireType::kVarint;
  size_t begin = 0;       // the field's first byte (its key)
  size_t body_begin = 0;  // a length-delimited field's body
  size_t end = 0;         // one past the field's last byte
  uint64_t varint = 0;    // a varint field's value; a length-delimited field's length

  size_t body_size() const { return end - body_begin; }
  bool is(uint32_t field_number, WireType type) const {
    return number == field_number && wire_type == type;
  }
};

// Reads the field at `at` and moves `at` past it; false when the bytes there are not
// a well-formed field (a group, a bad key, a length past the end).
bool NextWireField(std::span<const std::byte> bytes, size_t& at, WireField& field);
// Reads only the field's key and its varint or length, moving `at` to its body (or
// past a varint field), for a body that `bytes` need not hold (a reader's window on
// the head of a larger message); `field.end` is where the body ends.
bool ReadWireFieldHead(std::span<const std::byte> bytes, size_t& at, WireField& field);

void AppendVarint(std::string& out, uint64_t value);
// A length-delimited field's key and length (`body_size`), for a body that follows.
void AppendLengthDelimitedHead(std::string& out, uint32_t field_number, size_t body_size);

// The tensor field `field_number` holding `shape` and `dtype`, up to its data: the
// `data_size` bytes of data must follow directly.
std::string TensorFieldHead(uint32_t field_number,
                            const google::protobuf::RepeatedField<int64_t>& shape,
                            v1::DType dtype, size_t data_size);

// NormalizeResponse.version as it follows the output: empty for version 0, which
// protobuf leaves out.
std::string ResponseVersionField(uint64_t version);
// The most bytes ResponseVersionField writes.
inline constexpr size_t kMaxResponseVersionFieldSize = 11;  // a one-byte key, 10 of varint

}  // namespace normd

#endif  // NORMD_WIRE_TENSOR_FRAMING_H_
