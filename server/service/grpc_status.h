// The one place where absl::Status becomes grpc::Status.
#ifndef NORMD_SERVER_SERVICE_GRPC_STATUS_H_
#define NORMD_SERVER_SERVICE_GRPC_STATUS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace normd {

// The longest status message sent (TensorFlow caps its messages at 3 KiB too).
inline constexpr size_t kMaxStatusMessageBytes = 3 * 1024;

// Same code; the message with control and non-ASCII bytes escaped as \xNN (it may
// echo client strings, and ends up in terminals and log lines) and, if longer than
// kMaxStatusMessageBytes, cut to that length with a note of how much was cut.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_GRPC_STATUS_H_
