#include "server/observability/rpc_observer.h"

#include <atomic>
#include <cstdint>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/server_context.h"
#include "server/observability/structured_log.h"

namespace normd {
namespace {

using grpc::experimental::InterceptionHookPoints;

// "<process nonce>-<counter>": unique within a process without a random draw per
// RPC, and across restarts and replicas by the nonce.
std::string NewRequestId() {
  static const uint64_t nonce = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  static std::atomic<uint64_t> counter = 0;
  return absl::StrFormat("%016x-%d", nonce, counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

LogLevel LevelFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return LogLevel::kInfo;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
      return LogLevel::kError;
    default:
      return LogLevel::kWarning;
  }
}

class RpcObserver : public grpc::experimental::Interceptor {
 public:
  RpcObserver(grpc::experimental::ServerRpcInfo* info, ServerMetrics* metrics, bool log_requests)
      : info_(info), metrics_(metrics), log_requests_(log_requests), start_(absl::Now()) {
    metrics_->RpcStarted(info_->method());
  }

  // A call torn down without a status sent (the client went away first) still
  // finishes once, as CANCELLED.
  ~RpcObserver() override {
    if (!finished_) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended unanswered"));
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      const auto given =
          metadata->find(grpc::string_ref(kRequestIdHeader.data(), kRequestIdHeader.size()));
      if (given != metadata->end()) {
        const absl::string_view id(given->second.data(), given->second.size());
        if (IsUsableRequestId(id)) request_id_ = std::string(id);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(std::string(kRequestIdHeader), RequestId());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  const std::string& RequestId() {
    if (request_id_.empty()) request_id_ = NewRequestId();
    return request_id_;
  }

  void Finish(const grpc::Status& status) {
    finished_ = true;
    const absl::Duration elapsed = absl::Now() - start_;
    metrics_->RpcFinished(info_->method(), static_cast<absl::StatusCode>(status.error_code()),
                          elapsed);
    // Probes call the health check every few seconds; their lines would drown the rest.
    if (!log_requests_ || absl::StartsWith(info_->method(), "/grpc.health.v1.Health/")) return;
    const std::string code =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    const std::string peer = info_->server_context()->peer();
    if (status.ok()) {
      Log(LevelFor(status.error_code()), "rpc",
          {{"request_id", RequestId()},
           {"method", info_->method()},
           {"code", code},
           {"duration_ms", absl::ToDoubleMilliseconds(elapsed)},
           {"peer", peer}});
    } else {
      Log(LevelFor(status.error_code()), "rpc",
          {{"request_id", RequestId()},
           {"method", info_->method()},
           {"code", code},
           {"duration_ms", absl::ToDoubleMilliseconds(elapsed)},
           {"peer", peer},
           {"message", status.error_message()}});
    }
  }

  grpc::experimental::ServerRpcInfo* info_;
  ServerMetrics* metrics_;
  const bool log_requests_;
  const absl::Time start_;
  std::string request_id_;
  bool finished_ = false;
};

}  // namespace

bool IsUsableRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcObserver(info, metrics_, log_requests_);
}

}  // namespace normd
