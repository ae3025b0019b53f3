#include "server/normd_server.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace normd {
namespace {

// "host:port" -> host; tolerates bracketed IPv6 hosts.
std::string HostOf(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  if (!file || text.str().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the ", what, " ", path));
  }
  return text.str();
}

// Plaintext, or TLS (optionally mutual) from PEM files named by the options.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert_file and --tls_key_file; only one was given");
  }
  if (options.tls_cert_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca_file needs TLS: give --tls_cert_file and --tls_key_file too");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "TLS certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "TLS private key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NormdServer>> NormdServer::Start(const ServerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<AccessPolicy> access;
  if (!options.tokens_file.empty()) {
    absl::StatusOr<AccessPolicy> policy = AccessPolicy::FromFile(options.tokens_file);
    if (!policy.ok()) return policy.status();
    access = std::make_unique<AccessPolicy>(*std::move(policy));
  }
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data directory ", options.data_dir, ": ", error.message()));
  }
  absl::StatusOr<std::unique_ptr<DatasetStore>> store =
      DatasetStore::Open((std::filesystem::path(options.data_dir) / "db").string());
  if (!store.ok()) return store.status();
  std::unique_ptr<NormdServer> server(new NormdServer());
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = options.kernel_threads >= 0 ? options.kernel_threads : std::max(0, cpus - 1);
  server->pool_ = std::make_unique<WorkerPool>(static_cast<size_t>(threads));
  absl::StatusOr<std::unique_ptr<DatasetEngine>> engine =
      DatasetEngine::Open(*std::move(store), server->pool_.get());
  if (!engine.ok()) return engine.status();
  server->engine_ = *std::move(engine);
  server->access_ = std::move(access);
  server->service_ = std::make_unique<NormdService>(
      server->engine_.get(),
      RequestLimits{options.max_request_elements, options.max_concurrent_ingests,
                    options.max_message_bytes},
      server->access_.get());
  server->host_ = HostOf(options.listen);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

NormdServer::~NormdServer() {
  if (server_ != nullptr) {
    server_->Shutdown();
    server_->Wait();
  }
}

std::string NormdServer::address() const { return absl::StrCat(host_, ":", port_); }

void NormdServer::Shutdown(absl::Duration grace) {
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void NormdServer::Wait() { server_->Wait(); }

}  // namespace normd
