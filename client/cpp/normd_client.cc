#include "client/cpp/normd_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/pem_file.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace normd {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // Both enums follow google.rpc.Code.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

constexpr char kAuthorization[] = "authorization";

grpc::ChannelArguments ChannelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // Normalize replies can be 4x their uint8 requests
  args.SetMaxSendMessageSize(-1);
  return args;
}

}  // namespace

IngestStream::IngestStream(v1::Normd::Stub* stub, std::string dataset, WriterPosition writer,
                           bool wait_for_ready, absl::Time deadline, const std::string& token)
    : dataset_(std::move(dataset)),
      writer_(std::move(writer)),
      next_sequence_(writer_.first_sequence) {
  if (!token.empty()) context_.AddMetadata(kAuthorization, absl::StrCat("Bearer ", token));
  context_.set_wait_for_ready(wait_for_ready);
  if (deadline != absl::InfiniteFuture()) context_.set_deadline(absl::ToChronoTime(deadline));
  stream_ = stub->Ingest(&context_, &response_);
}

absl::Status IngestStream::Write(v1::Split split, v1::Tensor batch) {
  v1::IngestRequest request;
  if (first_) {
    request.set_dataset(dataset_);
    request.set_writer_id(writer_.writer_id);
  }
  first_ = false;
  if (!writer_.writer_id.empty()) request.set_sequence(next_sequence_++);
  request.set_split(split);
  *request.mutable_batch() = std::move(batch);
  if (!stream_->Write(request)) {
    return absl::UnavailableError("the Ingest stream closed; Finish() gives the server's status");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::IngestResponse> IngestStream::Finish() {
  stream_->WritesDone();
  const grpc::Status status = stream_->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return response_;
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
    absl::StatusOr<std::string> ca = ReadPemFile(options.ca_file, "CA file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (options.cert_file.empty() != options.key_file.empty()) {
      return absl::InvalidArgumentError("a client certificate needs both its file and its key");
    }
    if (!options.cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPemFile(options.cert_file, "client certificate");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadPemFile(options.key_file, "client key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!options.cert_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs TLS: give the CA file too");
  }
  return std::make_unique<NormdClient>(
      grpc::CreateCustomChannel(target, credentials, ChannelArguments()), options.token);
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
  v1::DatasetInfo response;
  const grpc::Status status = stub_->CreateDataset(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::DatasetInfo> NormdClient::GetDataset(absl::string_view name) {
  v1::GetDatasetRequest request;
  request.set_name(std::string(name));
  v1::DatasetInfo response;
  const grpc::Status status = stub_->GetDataset(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::vector<v1::DatasetInfo>> NormdClient::ListDatasets() {
  std::vector<v1::DatasetInfo> all;
  v1::ListDatasetsRequest request;
  do {
    v1::ListDatasetsResponse response;
    const grpc::Status status = stub_->ListDatasets(NewContext().get(), request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    for (v1::DatasetInfo& info : *response.mutable_datasets()) all.push_back(std::move(info));
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return all;
}

absl::Status NormdClient::DeleteDataset(absl::string_view name) {
  v1::DeleteDatasetRequest request;
  request.set_name(std::string(name));
  v1::DeleteDatasetResponse response;
  return FromGrpcStatus(stub_->DeleteDataset(NewContext().get(), request, &response));
}

std::unique_ptr<IngestStream> NormdClient::StartIngest(absl::string_view dataset,
                                                       WriterPosition writer, bool wait_for_ready,
                                                       absl::Time deadline) {
  return std::make_unique<IngestStream>(stub_.get(), std::string(dataset), std::move(writer),
                                        wait_for_ready, deadline, token_);
}

absl::StatusOr<v1::FreezeResponse> NormdClient::Freeze(absl::string_view dataset) {
  v1::FreezeRequest request;
  request.set_dataset(std::string(dataset));
  v1::FreezeResponse response;
  const grpc::Status status = stub_->Freeze(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::GetStatsResponse> NormdClient::GetStats(absl::string_view dataset,
                                                           uint64_t version, v1::Split split) {
  v1::GetStatsRequest request;
  request.set_dataset(std::string(dataset));
  request.set_version(version);
  request.set_split(split);
  v1::GetStatsResponse response;
  const grpc::Status status = stub_->GetStats(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::NormalizeResponse> NormdClient::Normalize(const v1::NormalizeRequest& request) {
  v1::NormalizeResponse response;
  const grpc::Status status = stub_->Normalize(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> NormdClient::CheckHealth() {
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = health_->Check(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

}  // namespace normd
