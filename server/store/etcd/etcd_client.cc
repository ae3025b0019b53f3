#include "server/store/etcd/etcd_client.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/pem_file.h"
#include "common/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "server/observability/structured_log.h"

namespace normd {
namespace {

absl::StatusCode CodeOf(grpc::StatusCode code) { return static_cast<absl::StatusCode>(code); }

// etcd answers a request it could not order (no leader, a leader change, a proposal
// that timed out) with UNAVAILABLE or DEADLINE_EXCEEDED; gRPC does the same for a
// member it cannot reach. Either way another attempt may succeed.
bool Transient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::UNKNOWN;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view list, bool* tls) {
  std::vector<std::string> endpoints;
  bool any_https = false, any_http = false;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    absl::string_view endpoint = item;
    if (absl::ConsumePrefix(&endpoint, "https://")) {
      any_https = true;
    } else if (absl::ConsumePrefix(&endpoint, "http://")) {
      any_http = true;
    }
    endpoint = absl::StripSuffix(endpoint, "/");
    if (endpoint.empty() || !absl::StrContains(endpoint, ':') || absl::StrContains(endpoint, '/')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd endpoint \"", item, "\" is not host:port (optionally after http:// or https://)"));
    }
    endpoints.emplace_back(endpoint);
  }
  if (endpoints.empty()) {
    return absl::InvalidArgumentError(
        "etcd endpoints are empty; expected etcd:http://host:port[,http://host:port...]");
  }
  if (any_https && any_http) {
    return absl::InvalidArgumentError("etcd endpoints mix http:// and https://; use one scheme");
  }
  *tls = any_https;
  return endpoints;
}

bool IsAmbiguous(const absl::Status& status) { return absl::IsUnavailable(status); }

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}

EtcdClient::~EtcdClient() {
  stopping_ = true;
  {
    absl::MutexLock lock(&watch_mu_);
    if (watch_context_ != nullptr) watch_context_->TryCancel();
  }
  if (watch_thread_.joinable()) watch_thread_.join();
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(const EtcdOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints");
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      NORMD_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.ca_file, "etcd CA bundle"));
    }
    if (!options.cert_file.empty()) {
      NORMD_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                             ReadPemFile(options.cert_file, "etcd client certificate"));
      NORMD_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.key_file, "etcd client key"));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  std::unique_ptr<EtcdClient> client(new EtcdClient(options));
  for (const std::string& endpoint : options.endpoints) {
    grpc::ChannelArguments args;
    // Snapshots and partitions run to etcd's request limit (1.5 MiB by default);
    // a range over many of them is larger.
    args.SetMaxReceiveMessageSize(-1);
    // Notice a member that vanished without closing its connections (a SIGKILLed
    // process's do close; a partitioned host's do not).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Reconnect fast after a member restarts.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    Member member;
    member.endpoint = endpoint;
    member.channel = grpc::CreateCustomChannel(endpoint, credentials, args);
    member.kv = etcdserverpb::KV::NewStub(member.channel);
    member.watch = etcdserverpb::Watch::NewStub(member.channel);
    client->members_.push_back(std::move(member));
  }
  if (!options.user.empty()) {
    absl::Status authenticated = client
                                     ->Retry<bool>([&]() -> absl::StatusOr<bool> {
                                       NORMD_RETURN_IF_ERROR(client->Authenticate());
                                       return true;
                                     })
                                     .status();
    NORMD_RETURN_IF_ERROR(authenticated);
  }
  return client;
}

absl::Status EtcdClient::Authenticate() {
  const size_t member = Current();
  etcdserverpb::AuthenticateRequest request;
  request.set_name(options_.user);
  request.set_password(options_.password);
  etcdserverpb::AuthenticateResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  const grpc::Status status = etcdserverpb::Auth::NewStub(members_[member].channel)
                                  ->Authenticate(&context, request, &response);
  if (!status.ok()) {
    if (Transient(status.error_code())) Rotate(member);
    return absl::Status(
        Transient(status.error_code()) ? absl::StatusCode::kUnavailable
                                       : CodeOf(status.error_code()),
        absl::StrCat("etcd at ", members_[member].endpoint, " refused authentication as \"",
                     options_.user, "\": ", status.error_message()));
  }
  absl::MutexLock lock(&token_mu_);
  token_ = response.token();
  return absl::OkStatus();
}

void EtcdClient::Rotate(size_t from) {
  size_t expected = from;
  current_.compare_exchange_strong(expected, (from + 1) % members_.size());
}

std::unique_ptr<grpc::ClientContext> EtcdClient::Context(absl::Duration timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  absl::MutexLock lock(&token_mu_);
  if (!token_.empty()) context->AddMetadata("token", token_);
  return context;
}

absl::Status EtcdClient::Failed(size_t member, const grpc::Status& status, absl::string_view call) {
  const std::string where =
      absl::StrCat("etcd ", call, " at ", members_[member].endpoint, ": ", status.error_message());
  if (Transient(status.error_code())) {
    Rotate(member);
    return absl::UnavailableError(where);
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && !options_.user.empty()) {
    // The token expired (etcd's simple tokens last five minutes): fetch another and
    // let the caller try again.
    if (absl::Status renewed = Authenticate(); !renewed.ok()) return renewed;
    return absl::UnavailableError(absl::StrCat(where, " (token renewed)"));
  }
  return absl::Status(CodeOf(status.error_code()), where);
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& request, absl::Duration timeout) {
  const size_t member = Current();
  etcdserverpb::RangeResponse response;
  const std::unique_ptr<grpc::ClientContext> context =
      Context(timeout == absl::ZeroDuration() ? options_.call_timeout : timeout);
  const grpc::Status status = members_[member].kv->Range(context.get(), request, &response);
  if (!status.ok()) return Failed(member, status, "Range");
  return response;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& request,
                                                          absl::Duration timeout) {
  const size_t member = Current();
  etcdserverpb::TxnResponse response;
  const std::unique_ptr<grpc::ClientContext> context =
      Context(timeout == absl::ZeroDuration() ? options_.call_timeout : timeout);
  const grpc::Status status = members_[member].kv->Txn(context.get(), request, &response);
  if (!status.ok()) return Failed(member, status, "Txn");
  return response;
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::ReadRange(
    const etcdserverpb::RangeRequest& request) {
  return RetryRead<etcdserverpb::RangeResponse>(
      [&](absl::Duration timeout) { return Range(request, timeout); });
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Read(const etcdserverpb::TxnRequest& reads) {
  return RetryRead<etcdserverpb::TxnResponse>(
      [&](absl::Duration timeout) { return Txn(reads, timeout); });
}

void EtcdClient::Watch(std::string key, std::string range_end, int64_t start_revision,
                       std::function<void(const etcdserverpb::WatchResponse&)> on_events,
                       std::function<int64_t()> on_reset) {
  watch_thread_ =
      std::thread([this, key = std::move(key), range_end = std::move(range_end), start_revision,
                   on_events = std::move(on_events), on_reset = std::move(on_reset)] {
        int64_t next = start_revision;
        absl::Duration backoff = absl::Milliseconds(10);
        while (!stopping_) {
          const size_t member = Current();
          std::unique_ptr<grpc::ClientContext> context = Context(absl::InfiniteDuration());
          {
            absl::MutexLock lock(&watch_mu_);
            if (stopping_) return;
            watch_context_ = context.get();
          }
          auto stream = members_[member].watch->Watch(context.get());
          etcdserverpb::WatchRequest create;
          create.mutable_create_request()->set_key(key);
          create.mutable_create_request()->set_range_end(range_end);
          create.mutable_create_request()->set_start_revision(next);
          // Progress notifications show a member that lost its quorum: it stops sending them.
          create.mutable_create_request()->set_progress_notify(true);
          bool reset = false;
          if (stream->Write(create)) {
            etcdserverpb::WatchResponse response;
            while (stream->Read(&response)) {
              backoff = absl::Milliseconds(10);
              if (response.compact_revision() > 0) {
                reset = true;  // our revision is gone: start over from a fresh read
                break;
              }
              if (response.canceled()) break;
              if (response.events_size() > 0) {
                on_events(response);
                next = response.events(response.events_size() - 1).kv().mod_revision() + 1;
              }
            }
          }
          context->TryCancel();
          const grpc::Status finished = stream->Finish();
          {
            absl::MutexLock lock(&watch_mu_);
            watch_context_ = nullptr;
          }
          if (stopping_) return;
          if (reset) {
            const int64_t at = on_reset();  // 0: the fresh read failed too (no quorum)
            if (at > 0) {
              next = at + 1;
              continue;
            }
          }
          Log(LogLevel::kWarning, "etcd_watch_reconnect",
              {{"endpoint", members_[member].endpoint}, {"error", finished.error_message()}});
          Rotate(member);
          absl::SleepFor(backoff);  // a member restarting; not synchronisation
          backoff = std::min(backoff * 2, absl::Seconds(1));
        }
      });
}

}  // namespace normd
