// The one place where absl::Status becomes grpc::Status.
#ifndef NORMD_SERVER_SERVICE_GRPC_STATUS_H_
#define NORMD_SERVER_SERVICE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace normd {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_GRPC_STATUS_H_
