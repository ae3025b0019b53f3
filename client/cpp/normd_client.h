// A small C++ client for normd: one method per RPC, errors as absl::Status with
// the server's code and message.
#ifndef NORMD_CLIENT_CPP_NORMD_CLIENT_H_
#define NORMD_CLIENT_CPP_NORMD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/moments_summary.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "normd/v1/normd.grpc.pb.h"

namespace normd {

absl::Status FromGrpcStatus(const grpc::Status& status);

// Exactly-once identity of a stream: the writer and the sequence of its first batch
// (later batches count up from it). An empty writer sends no identity.
struct WriterPosition {
  std::string writer_id;
  uint64_t first_sequence = 1;
};

// One open Ingest stream: a transaction the server applies when Finish() is called.
class IngestStream {
 public:
  // With `wait_for_ready` the stream waits for an unreachable server (until
  // `deadline`) instead of failing at once, as a resend after a crash should.
  // A non-empty `token` is sent as "authorization: Bearer TOKEN".
  IngestStream(grpc::ChannelInterface* channel, std::string dataset, WriterPosition writer = {},
               bool wait_for_ready = false, absl::Time deadline = absl::InfiniteFuture(),
               const std::string& token = "");

  // Sends one batch, with sample weights or a mask when given (IngestRequest.weights).
  // An error means the stream broke; Finish() says why.
  absl::Status Write(v1::Split split, v1::Tensor batch,
                     std::optional<v1::Tensor> weights = std::nullopt);
  // Sends one batch from the caller's memory, copied once into the message: `meta`
  // gives its shape and dtype (no data), `values` its bytes.
  absl::Status WriteValues(v1::Split split, const v1::Tensor& meta,
                           std::span<const std::byte> values);
  // Sends the summaries of batches (Moments in client/cpp/local.h) in their place, in
  // one message: each takes its batch's sequence number.
  absl::Status WriteSummaries(v1::Split split, std::span<const MomentsSummary> summaries);
  // Closes the stream; OK means every batch is applied and durable.
  absl::StatusOr<v1::IngestResponse> Finish();
  // Abandons the stream: the server applies nothing from it. Finish() then reports
  // CANCELLED.
  void Cancel() { context_.TryCancel(); }

 private:
  std::string dataset_;
  WriterPosition writer_;
  uint64_t next_sequence_;
  bool first_ = true;
  // The next message's header; it holds `batches` batches (their sequence numbers).
  v1::IngestRequest NextRequest(v1::Split split, uint64_t batches = 1);
  absl::Status SendRequest(const v1::IngestRequest& request);
  absl::Status Send(const grpc::ByteBuffer& message);

  grpc::ClientContext context_;
  grpc::ByteBuffer response_;
  // Raw bytes, so a batch can be serialised straight from the caller's memory.
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> stream_;
};

// How to reach a server that has TLS or bearer tokens on.
struct ConnectOptions {
  std::string token;      // sent as "authorization: Bearer TOKEN" on every call
  std::string ca_file;    // TLS: PEM CA that signed the server's certificate
  std::string cert_file;  // mutual TLS: this client's PEM certificate and key
  std::string key_file;
  // gRPC's load-balancing policy: "round_robin" spreads calls over every address the
  // target resolves to (dns:///normd.NAMESPACE.svc:50051, a headless Service of
  // replicas that share an etcd store); empty: gRPC's default, one address at a time.
  std::string load_balancing;
};

class NormdClient {
 public:
  // `target` is HOST:PORT; plaintext.
  static std::unique_ptr<NormdClient> Connect(const std::string& target);
  // TLS when `options.ca_file` is set; the token either way.
  static absl::StatusOr<std::unique_ptr<NormdClient>> Connect(const std::string& target,
                                                              const ConnectOptions& options);
  explicit NormdClient(std::shared_ptr<grpc::Channel> channel, std::string token = "");

  // Deadline for unary calls.
  void set_timeout(absl::Duration timeout) { timeout_ = timeout; }

  absl::StatusOr<v1::DatasetInfo> CreateDataset(const v1::DatasetSpec& spec);
  absl::StatusOr<v1::DatasetInfo> GetDataset(absl::string_view name);
  // Every dataset, following pages.
  absl::StatusOr<std::vector<v1::DatasetInfo>> ListDatasets();
  absl::Status DeleteDataset(absl::string_view name);
  std::unique_ptr<IngestStream> StartIngest(absl::string_view dataset, WriterPosition writer = {},
                                            bool wait_for_ready = false,
                                            absl::Time deadline = absl::InfiniteFuture());
  absl::StatusOr<v1::FreezeResponse> Freeze(absl::string_view dataset);
  // Freeze with a gate (FreezeGate in normd.proto): refused, or marked, when the new
  // statistics fail it.
  absl::StatusOr<v1::FreezeResponse> Freeze(absl::string_view dataset, const v1::FreezeGate& gate);
  // Sets the "prod" pin (version 0: none), or with `rollback` restores the one before.
  absl::StatusOr<v1::DatasetInfo> PinVersion(absl::string_view dataset, uint64_t version,
                                             bool rollback = false);
  // Per-channel drift between two sets of the dataset's statistics.
  absl::StatusOr<v1::CompareResponse> Compare(const v1::CompareRequest& request);
  // With `quantiles` (ranks in [0, 1]) or `histogram_bins`, also each channel's
  // distribution from the dataset's sketches (Statistics.distributions).
  absl::StatusOr<v1::GetStatsResponse> GetStats(absl::string_view dataset, uint64_t version,
                                                v1::Split split,
                                                std::span<const double> quantiles = {},
                                                uint32_t histogram_bins = 0);
  // What Normalize saw with `version` (0: the pinned or latest) in `window`.
  absl::StatusOr<v1::GetStatsResponse> GetTrafficStats(absl::string_view dataset, uint64_t version,
                                                       v1::TrafficWindow window,
                                                       std::span<const double> quantiles = {},
                                                       uint32_t histogram_bins = 0);
  absl::StatusOr<v1::NormalizeResponse> Normalize(const v1::NormalizeRequest& request);
  // The inverse map of `request`'s frozen scheme: the input that Normalize maps to
  // request.input.
  absl::StatusOr<v1::NormalizeResponse> Denormalize(const v1::NormalizeRequest& request);
  // Normalize for tensors in the caller's memory, without protobuf copies: `call`
  // names the scheme, dataset and the input's shape and dtype (no data); `values`
  // are the input's bytes, copied once into the request; the output's values are
  // copied once into `output` (exactly their size). Returns the version used.
  absl::StatusOr<uint64_t> NormalizeInto(const v1::NormalizeRequest& call,
                                         std::span<const std::byte> values,
                                         std::span<std::byte> output);
  // Shared-memory regions (see SharedBuffer in client/cpp/shared_buffer.h).
  absl::StatusOr<v1::RegionInfo> RegisterRegion(absl::string_view name, absl::string_view claim);
  absl::Status UnregisterRegion(absl::string_view name);
  absl::StatusOr<v1::ListRegionsResponse> ListRegions();
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth();

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Normd::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  absl::Duration timeout_ = absl::Seconds(120);
  std::string token_;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMD_CLIENT_H_
