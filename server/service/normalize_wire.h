// Normalize's request and reply at the wire level, so the tensor bytes are never
// copied by protobuf: the request's input values are viewed where gRPC received them
// (copied once only when they arrived in several slices), and the reply is one
// buffer the kernels write into, sent by gRPC as it is. Everything but the values
// still goes through protobuf.
#ifndef NORMD_SERVER_SERVICE_NORMALIZE_WIRE_H_
#define NORMD_SERVER_SERVICE_NORMALIZE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// A received NormalizeRequest: every field but input.data parsed by protobuf, and
// input.data viewed in the received bytes (absent when the input has none).
struct NormalizeMessage {
  v1::NormalizeRequest fields;
  std::optional<std::span<const std::byte>> input_data;
};

// Parses `request`, viewing its single slice or, when it came in several, a copy
// of them in `scratch` (kept by the caller for reuse: no fresh allocation per call).
// `message` then views `request`'s or `scratch`'s bytes.
absl::Status ParseNormalizeRequest(const grpc::ByteBuffer& request, std::vector<std::byte>& scratch,
                                   std::vector<grpc::Slice>& slices, NormalizeMessage& message);
// The same over contiguous bytes (what the fuzzer drives).
absl::Status ParseNormalizeRequest(std::span<const std::byte> bytes, NormalizeMessage& message);

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

#endif  // NORMD_SERVER_SERVICE_NORMALIZE_WIRE_H_
