// The tensor-carrying messages at the wire level, so tensor bytes are never copied
// by protobuf: a request's tensor values (Normalize's input, an Ingest batch) are
// viewed where gRPC received them (gathered once only when they arrived in several
// slices), and Normalize's reply is one buffer the kernels write into, sent by gRPC
// as it is. Everything but the values still goes through protobuf.
#ifndef NORMD_SERVER_SERVICE_TENSOR_WIRE_H_
#define NORMD_SERVER_SERVICE_TENSOR_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// A received request: every field but its tensor's data parsed by protobuf, and the
// data viewed in the received bytes (absent when the tensor has none).
template <typename Request>
struct TensorMessage {
  Request fields;
  std::optional<std::span<const std::byte>> tensor_data;
};
using NormalizeMessage = TensorMessage<v1::NormalizeRequest>;  // the tensor: input
using IngestMessage = TensorMessage<v1::IngestRequest>;        // the tensor: batch

// The bytes of `buffer`: its single slice, or, when it came in several, a copy of
// them in `scratch` (kept by the caller for reuse: no fresh allocation per call).
// `slices` keeps them alive meanwhile.
absl::StatusOr<std::span<const std::byte>> ContiguousBytes(const grpc::ByteBuffer& buffer,
                                                           std::vector<std::byte>& scratch,
                                                           std::vector<grpc::Slice>& slices);

// Parses a serialised request whose field 3 is its Tensor (as NormalizeRequest.input
// and IngestRequest.batch are); the message views `bytes`.
absl::Status ParseNormalizeRequest(std::span<const std::byte> bytes, NormalizeMessage& message);
absl::Status ParseIngestRequest(std::span<const std::byte> bytes, IngestMessage& message);

// A NormalizeResponse with `value_bytes` of output values, laid out in one buffer:
// the kernels write the values in place, then Release hands the buffer to gRPC.
class NormalizeReply {
 public:
  NormalizeReply(const google::protobuf::RepeatedField<int64_t>& shape, v1::DType dtype,
                 size_t value_bytes);
  std::span<std::byte> values() { return values_; }
  grpc::ByteBuffer Release(uint64_t version);

 private:
  grpc::Slice buffer_;
  size_t head_ = 0;
  std::span<std::byte> values_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_TENSOR_WIRE_H_
