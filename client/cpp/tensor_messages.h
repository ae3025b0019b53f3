// The tensor-carrying messages without protobuf copies of the tensor: a request is
// serialised once, straight from the caller's values into the buffer gRPC sends, and
// Normalize's reply values are copied once, from the slices gRPC received into the
// caller's output.
#ifndef NORMD_CLIENT_CPP_TENSOR_MESSAGES_H_
#define NORMD_CLIENT_CPP_TENSOR_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// The request `fields` (its tensor, field 3, holding shape and dtype but no data)
// with `values` as its tensor's data, as one ByteBuffer: NormalizeRequest.input and
// IngestRequest.batch are both field 3.
template <typename Request>
grpc::ByteBuffer EncodeWithTensor(const Request& fields, std::span<const std::byte> values);
extern template grpc::ByteBuffer EncodeWithTensor(const v1::NormalizeRequest&,
                                                  std::span<const std::byte>);
extern template grpc::ByteBuffer EncodeWithTensor(const v1::IngestRequest&,
                                                  std::span<const std::byte>);

// Copies the reply's output values into `output` (exactly their size) and returns
// the version the reply names.
absl::StatusOr<uint64_t> DecodeNormalizeReply(const grpc::ByteBuffer& reply,
                                              std::span<std::byte> output);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_TENSOR_MESSAGES_H_
