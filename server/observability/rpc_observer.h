// A gRPC server interceptor that sees every RPC start and finish: it counts it in
// ServerMetrics, times it, gives it a request id, and writes one structured log line
// when it finishes. The id is the caller's `x-request-id` metadata when that is a
// sane token, else a fresh one; either way it goes back in the reply's initial
// metadata, so a client can quote it next to the server's log.
#ifndef NORMD_SERVER_OBSERVABILITY_RPC_OBSERVER_H_
#define NORMD_SERVER_OBSERVABILITY_RPC_OBSERVER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/observability/server_metrics.h"

namespace normd {

inline constexpr absl::string_view kRequestIdHeader = "x-request-id";

// Whether `id` is taken as given: 1 to 64 characters of [A-Za-z0-9._:-], so that a
// log line never carries a caller's arbitrary bytes.
bool IsUsableRequestId(absl::string_view id);

class RpcObserverFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` must outlive the server; `log_requests`: a log line per finished RPC.
  RpcObserverFactory(ServerMetrics* metrics, bool log_requests)
      : metrics_(metrics), log_requests_(log_requests) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* metrics_;
  bool log_requests_;
};

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_RPC_OBSERVER_H_
