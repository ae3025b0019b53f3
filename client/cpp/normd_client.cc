#include "client/cpp/normd_client.h"

#include <algorithm>

#include "client/cpp/tensor_messages.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/sync_stream.h"
#include "grpcpp/support/byte_buffer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/pem_file.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "wire/core_proto.h"

namespace normd {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // Both enums follow google.rpc.Code.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

constexpr char kAuthorization[] = "authorization";

// One unary call: the reply, or the server's status.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Call(
    Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    std::unique_ptr<grpc::ClientContext> context, const Request& request) {
  Response response;
  NORMD_RETURN_IF_ERROR(FromGrpcStatus((stub.*method)(context.get(), request, &response)));
  return response;
}

grpc::ChannelArguments ChannelArguments(const std::string& load_balancing = "") {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // Normalize replies can be 4x their uint8 requests
  args.SetMaxSendMessageSize(-1);
  if (!load_balancing.empty()) args.SetLoadBalancingPolicyName(load_balancing);
  return args;
}

// What GetStats and GetTrafficStats ask alike.
v1::GetStatsRequest StatsRequest(absl::string_view dataset, uint64_t version,
                                 std::span<const double> quantiles, uint32_t histogram_bins) {
  v1::GetStatsRequest request;
  request.set_dataset(std::string(dataset));
  request.set_version(version);
  request.mutable_quantiles()->Add(quantiles.begin(), quantiles.end());
  request.set_histogram_bins(histogram_bins);
  return request;
}
}  // namespace

IngestStream::IngestStream(grpc::ChannelInterface* channel, std::string dataset,
                           WriterPosition writer, bool wait_for_ready, absl::Time deadline,
                           const std::string& token)
    : dataset_(std::move(dataset)),
      writer_(std::move(writer)),
      next_sequence_(writer_.first_sequence) {
  if (!token.empty()) context_.AddMetadata(kAuthorization, absl::StrCat("Bearer ", token));
  context_.set_wait_for_ready(wait_for_ready);
  if (deadline != absl::InfiniteFuture()) context_.set_deadline(absl::ToChronoTime(deadline));
  static const grpc::internal::RpcMethod kIngest("/normd.v1.Normd/Ingest",
                                                 grpc::internal::RpcMethod::CLIENT_STREAMING);
  stream_.reset(grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
      channel, kIngest, &context_, &response_));
}

v1::IngestRequest IngestStream::NextRequest(v1::Split split, uint64_t batches) {
  v1::IngestRequest request;
  if (first_) {
    request.set_dataset(dataset_);
    request.set_writer_id(writer_.writer_id);
  }
  first_ = false;
  if (!writer_.writer_id.empty()) {
    request.set_sequence(next_sequence_);
    next_sequence_ += batches;
  }
  request.set_split(split);
  return request;
}

absl::Status IngestStream::Send(const grpc::ByteBuffer& message) {
  if (!stream_->Write(message)) {
    return absl::UnavailableError("the Ingest stream closed; Finish() gives the server's status");
  }
  return absl::OkStatus();
}

absl::Status IngestStream::Write(v1::Split split, v1::Tensor batch,
                                 std::optional<v1::Tensor> weights) {
  v1::IngestRequest request = NextRequest(split);
  *request.mutable_batch() = std::move(batch);
  if (weights.has_value()) *request.mutable_weights() = *std::move(weights);
  return SendRequest(request);
}

absl::Status IngestStream::WriteSummaries(v1::Split split,
                                          std::span<const MomentsSummary> summaries) {
  v1::IngestRequest request = NextRequest(split, summaries.size());
  for (const MomentsSummary& summary : summaries) {
    MomentsSummaryToProto(summary, request.mutable_summaries()->add_summaries());
  }
  return SendRequest(request);
}

absl::Status IngestStream::SendRequest(const v1::IngestRequest& request) {
  grpc::ByteBuffer message;
  bool own_buffer = false;
  if (!grpc::SerializationTraits<v1::IngestRequest>::Serialize(request, &message, &own_buffer)
           .ok()) {
    return absl::InvalidArgumentError("the batch could not be serialised");
  }
  return Send(message);
}

absl::Status IngestStream::WriteValues(v1::Split split, const v1::Tensor& meta,
                                       std::span<const std::byte> values) {
  v1::IngestRequest request = NextRequest(split);
  *request.mutable_batch() = meta;
  return Send(EncodeWithTensor(request, values));
}

absl::StatusOr<v1::IngestResponse> IngestStream::Finish() {
  stream_->WritesDone();
  NORMD_RETURN_IF_ERROR(FromGrpcStatus(stream_->Finish()));
  v1::IngestResponse response;
  if (!grpc::SerializationTraits<v1::IngestResponse>::Deserialize(&response_, &response).ok()) {
    return absl::InternalError("the server's IngestResponse could not be parsed");
  }
  return response;
}

std::unique_ptr<NormdClient> NormdClient::Connect(const std::string& target) {
  return std::make_unique<NormdClient>(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ChannelArguments()));
}

absl::StatusOr<std::unique_ptr<NormdClient>> NormdClient::Connect(const std::string& target,
                                                                  const ConnectOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    NORMD_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.ca_file, "CA file"));
    if (options.cert_file.empty() != options.key_file.empty()) {
      return absl::InvalidArgumentError("a client certificate needs both its file and its key");
    }
    if (!options.cert_file.empty()) {
      NORMD_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                             ReadPemFile(options.cert_file, "client certificate"));
      NORMD_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.key_file, "client key"));
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!options.cert_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs TLS: give the CA file too");
  }
  return std::make_unique<NormdClient>(
      grpc::CreateCustomChannel(target, credentials, ChannelArguments(options.load_balancing)),
      options.token);
}

NormdClient::NormdClient(std::shared_ptr<grpc::Channel> channel, std::string token)
    : channel_(std::move(channel)),
      stub_(v1::Normd::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)),
      token_(std::move(token)) {}

std::unique_ptr<grpc::ClientContext> NormdClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!token_.empty()) context->AddMetadata(kAuthorization, absl::StrCat("Bearer ", token_));
  return context;
}

absl::StatusOr<v1::DatasetInfo> NormdClient::CreateDataset(const v1::DatasetSpec& spec) {
  v1::CreateDatasetRequest request;
  *request.mutable_spec() = spec;
  return Call(*stub_, &v1::Normd::Stub::CreateDataset, NewContext(), request);
}

absl::StatusOr<v1::DatasetInfo> NormdClient::GetDataset(absl::string_view name) {
  v1::GetDatasetRequest request;
  request.set_name(std::string(name));
  return Call(*stub_, &v1::Normd::Stub::GetDataset, NewContext(), request);
}

absl::StatusOr<std::vector<v1::DatasetInfo>> NormdClient::ListDatasets() {
  std::vector<v1::DatasetInfo> all;
  v1::ListDatasetsRequest request;
  do {
    NORMD_ASSIGN_OR_RETURN(v1::ListDatasetsResponse response,
                           Call(*stub_, &v1::Normd::Stub::ListDatasets, NewContext(), request));
    for (v1::DatasetInfo& info : *response.mutable_datasets()) all.push_back(std::move(info));
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return all;
}

absl::Status NormdClient::DeleteDataset(absl::string_view name) {
  v1::DeleteDatasetRequest request;
  request.set_name(std::string(name));
  return Call(*stub_, &v1::Normd::Stub::DeleteDataset, NewContext(), request).status();
}

std::unique_ptr<IngestStream> NormdClient::StartIngest(absl::string_view dataset,
                                                       WriterPosition writer, bool wait_for_ready,
                                                       absl::Time deadline) {
  return std::make_unique<IngestStream>(channel_.get(), std::string(dataset), std::move(writer),
                                        wait_for_ready, deadline, token_);
}

absl::StatusOr<v1::FreezeResponse> NormdClient::Freeze(absl::string_view dataset) {
  v1::FreezeRequest request;
  request.set_dataset(std::string(dataset));
  return Call(*stub_, &v1::Normd::Stub::Freeze, NewContext(), request);
}

absl::StatusOr<v1::FreezeResponse> NormdClient::Freeze(absl::string_view dataset,
                                                       const v1::FreezeGate& gate) {
  v1::FreezeRequest request;
  request.set_dataset(std::string(dataset));
  *request.mutable_gate() = gate;
  return Call(*stub_, &v1::Normd::Stub::Freeze, NewContext(), request);
}

absl::StatusOr<v1::DatasetInfo> NormdClient::PinVersion(absl::string_view dataset, uint64_t version,
                                                        bool rollback) {
  v1::PinVersionRequest request;
  request.set_dataset(std::string(dataset));
  request.set_version(version);
  request.set_rollback(rollback);
  return Call(*stub_, &v1::Normd::Stub::PinVersion, NewContext(), request);
}

absl::StatusOr<v1::CompareResponse> NormdClient::Compare(const v1::CompareRequest& request) {
  return Call(*stub_, &v1::Normd::Stub::Compare, NewContext(), request);
}

absl::StatusOr<v1::GetStatsResponse> NormdClient::GetTrafficStats(absl::string_view dataset,
                                                                  uint64_t version,
                                                                  v1::TrafficWindow window,
                                                                  std::span<const double> quantiles,
                                                                  uint32_t histogram_bins) {
  v1::GetStatsRequest request = StatsRequest(dataset, version, quantiles, histogram_bins);
  request.set_traffic(true);
  request.set_traffic_window(window);
  return Call(*stub_, &v1::Normd::Stub::GetStats, NewContext(), request);
}

absl::StatusOr<v1::GetStatsResponse> NormdClient::GetStats(absl::string_view dataset,
                                                           uint64_t version, v1::Split split,
                                                           std::span<const double> quantiles,
                                                           uint32_t histogram_bins) {
  v1::GetStatsRequest request = StatsRequest(dataset, version, quantiles, histogram_bins);
  request.set_split(split);
  return Call(*stub_, &v1::Normd::Stub::GetStats, NewContext(), request);
}

absl::StatusOr<v1::NormalizeResponse> NormdClient::Normalize(const v1::NormalizeRequest& request) {
  return Call(*stub_, &v1::Normd::Stub::Normalize, NewContext(), request);
}

absl::StatusOr<v1::NormalizeResponse> NormdClient::Denormalize(
    const v1::NormalizeRequest& request) {
  return Call(*stub_, &v1::Normd::Stub::Denormalize, NewContext(), request);
}

absl::StatusOr<uint64_t> NormdClient::NormalizeInto(const v1::NormalizeRequest& call,
                                                    std::span<const std::byte> values,
                                                    std::span<std::byte> output) {
  static const grpc::internal::RpcMethod kNormalize("/normd.v1.Normd/Normalize",
                                                    grpc::internal::RpcMethod::NORMAL_RPC);
  const grpc::ByteBuffer request = EncodeWithTensor(call, values);
  grpc::ByteBuffer reply;
  const std::unique_ptr<grpc::ClientContext> context = NewContext();
  NORMD_RETURN_IF_ERROR(
      FromGrpcStatus(grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          channel_.get(), kNormalize, context.get(), request, &reply)));
  return DecodeNormalizeReply(reply, output);
}

absl::StatusOr<v1::RegionInfo> NormdClient::RegisterRegion(absl::string_view name,
                                                           absl::string_view claim) {
  v1::RegisterRegionRequest request;
  request.set_name(std::string(name));
  request.set_claim(std::string(claim));
  return Call(*stub_, &v1::Normd::Stub::RegisterRegion, NewContext(), request);
}

absl::Status NormdClient::UnregisterRegion(absl::string_view name) {
  v1::UnregisterRegionRequest request;
  request.set_name(std::string(name));
  return Call(*stub_, &v1::Normd::Stub::UnregisterRegion, NewContext(), request).status();
}

absl::StatusOr<v1::ListRegionsResponse> NormdClient::ListRegions() {
  return Call(*stub_, &v1::Normd::Stub::ListRegions, NewContext(), v1::ListRegionsRequest());
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> NormdClient::CheckHealth() {
  grpc::health::v1::HealthCheckRequest request;
  NORMD_ASSIGN_OR_RETURN(
      const grpc::health::v1::HealthCheckResponse response,
      Call(*health_, &grpc::health::v1::Health::Stub::Check, NewContext(), request));
  return response.status();
}

}  // namespace normd
