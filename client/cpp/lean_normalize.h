// Normalize without protobuf copies of the tensor: the request is serialised once,
// straight from the caller's values into the buffer gRPC sends, and the reply's
// values are copied once, from the slices gRPC received into the caller's output.
#ifndef NORMD_CLIENT_CPP_LEAN_NORMALIZE_H_
#define NORMD_CLIENT_CPP_LEAN_NORMALIZE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// The request `call` (scheme, dataset, input shape and dtype; input.data empty) with
// `values` as its input's data, as one ByteBuffer.
grpc::ByteBuffer EncodeNormalizeRequest(const v1::NormalizeRequest& call,
                                        std::span<const std::byte> values);

// Copies the reply's output values into `output` (exactly their size) and returns
// the version the reply names.
absl::StatusOr<uint64_t> DecodeNormalizeReply(const grpc::ByteBuffer& reply,
                                              std::span<std::byte> output);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_LEAN_NORMALIZE_H_
