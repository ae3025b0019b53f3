#include "server/normd_server.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/pem_file.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/dashboard/dashboard_routes.h"
#include "server/engine/compare.h"
#include "server/observability/rpc_observer.h"
#include "server/observability/structured_log.h"
#include "server/open_store.h"
#include "server/service/unparsed_request.h"

namespace normd {
namespace {

// "host:port" -> host; tolerates bracketed IPv6 hosts.
std::string HostOf(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
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
  NORMD_ASSIGN_OR_RETURN(std::string cert, ReadPemFile(options.tls_cert_file, "TLS certificate"));
  NORMD_ASSIGN_OR_RETURN(std::string key, ReadPemFile(options.tls_key_file, "TLS private key"));
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  if (!options.tls_client_ca_file.empty()) {
    NORMD_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                           ReadPemFile(options.tls_client_ca_file, "client CA"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Every method this server serves, as "/package.Service/Method": each gets its own
// metric series.
std::vector<std::string> ServedMethods() {
  // gRPC serves these two services from its own code.
  std::vector<std::string> methods = {
      "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
  const google::protobuf::ServiceDescriptor* normd =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::Normd::service_full_name());
  for (int i = 0; normd != nullptr && i < normd->method_count(); ++i) {
    methods.push_back(absl::StrCat("/", normd->full_name(), "/", normd->method(i)->name()));
  }
  return methods;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NormdServer>> NormdServer::Start(const ServerOptions& options) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<grpc::ServerCredentials> credentials,
                         Credentials(options));
  std::unique_ptr<AccessPolicy> access;
  if (!options.tokens_file.empty()) {
    NORMD_ASSIGN_OR_RETURN(AccessPolicy policy, AccessPolicy::FromFile(options.tokens_file));
    access = std::make_unique<AccessPolicy>(std::move(policy));
  }
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory ", options.data_dir, ": ", error.message()));
  }
  // Whatever umask made it (or an older normd left it), the data directory, with the
  // store and the handoff socket inside, is for normd's user alone.
  std::filesystem::permissions(options.data_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, error);
  if (error) {
    Log(LogLevel::kWarning, "data_dir_permissions",
        {{"data_dir", options.data_dir}, {"error", error.message()}});
  }
  std::unique_ptr<NormdServer> server(new NormdServer());
  server->metrics_ = std::make_unique<ServerMetrics>(ServedMethods(), NORMD_VERSION);
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = options.kernel_threads >= 0 ? options.kernel_threads : std::max(0, cpus - 1);
  server->pool_ = std::make_unique<WorkerPool>(static_cast<size_t>(threads));
  NORMD_ASSIGN_OR_RETURN(server->device_, OpenDevice(options.device, server->pool_.get()));
  if (server->device_ != nullptr) {
    Log(LogLevel::kInfo, "device", {{"device", server->device_->Describe()}});
  }
  NORMD_ASSIGN_OR_RETURN(server->engine_, OpenEngine(options.store, options.data_dir, options.etcd,
                                                     server->pool_.get(), options.traffic));
  server->engine_->SetDevice(server->device_.get());
  server->drift_metric_channels_ = options.drift_metric_channels;
  server->access_ = std::move(access);
  SharedMemory shared_memory;
  if (options.region_socket != "off") {
    const std::string path = options.region_socket.empty()
                                 ? (std::filesystem::absolute(options.data_dir) / "regions.sock")
                                       .lexically_normal()
                                       .string()
                                 : options.region_socket;
    auto regions = std::make_unique<RegionRegistry>(options.region_limits);
    absl::StatusOr<std::unique_ptr<HandoffListener>> handoff =
        HandoffListener::Start(path, regions.get());
    if (handoff.ok()) {
      server->regions_ = std::move(regions);
      server->handoff_ = *std::move(handoff);
      shared_memory = {server->regions_.get(), path};
    } else if (options.region_socket.empty()) {
      // The default place may not do (a data directory whose path is too long for a
      // Unix socket): serve without shared memory rather than not at all.
      Log(LogLevel::kWarning, "shared_memory_off",
          {{"status", handoff.status().ToString()},
           {"hint", "set --region_socket to a shorter path, or to off"}});
    } else {
      return handoff.status();
    }
  }
  server->service_ =
      std::make_unique<NormdService>(server->engine_.get(), options.limits, server->access_.get(),
                                     server->metrics_.get(), std::move(shared_memory));

  grpc::EnableDefaultHealthCheckService(true);
  // Server reflection, so that generic gRPC tools can list and call the API.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> observers;
  // First: a status it corrects must be what the observer counts and logs.
  observers.push_back(std::make_unique<UnparsedRequestFactory>());
  observers.push_back(
      std::make_unique<RpcObserverFactory>(server->metrics_.get(), options.log_requests));
  builder.experimental().SetInterceptorCreators(std::move(observers));
  // gRPC sets SO_REUSEPORT by default: a second normd on the same port would start and
  // take half the connections, with its own store. Refuse it instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const std::vector<std::string> listens = absl::StrSplit(options.listen, ',', absl::SkipEmpty());
  if (listens.empty()) return absl::InvalidArgumentError("--listen names no address");
  std::vector<int> ports(listens.size(), 0);
  for (size_t i = 0; i < listens.size(); ++i) {
    builder.AddListeningPort(listens[i], credentials, &ports[i]);
  }
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.limits.max_message_bytes);
  builder.SetMaxSendMessageSize(options.limits.max_message_bytes);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  for (size_t i = 0; i < listens.size(); ++i) {
    if (ports[i] == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listens[i]));
    }
    if (absl::StartsWith(listens[i], "unix:")) {
      server->addresses_.push_back(listens[i]);
    } else {
      server->addresses_.push_back(absl::StrCat(HostOf(listens[i]), ":", ports[i]));
      if (server->port_ == 0) server->port_ = ports[i];
    }
  }
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health;
    health.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(),
                            &server->health_port_);
    server->health_server_ = health.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for health checks on ", options.health_listen));
    }
  }
  if (!options.http_listen.empty()) {
    NormdServer* raw = server.get();
    NORMD_ASSIGN_OR_RETURN(server->metrics_endpoint_,
                           MetricsEndpoint::Start(
                               options.http_listen,
                               [raw] {
                                 const EngineInventory engine = raw->engine_->Inventory();
                                 return raw->metrics_->Render(
                                     {.datasets = engine.datasets,
                                      .frozen_versions = engine.frozen_versions,
                                      .active_ingest_streams = raw->service_->active_ingests(),
                                      .drift = raw->TrafficDrift()});
                               },
                               DashboardRoutes(server->engine_.get(), server->access_.get())));
  }
  if (server->engine_->traffic().enabled()) {
    NormdServer* raw = server.get();
    const absl::Duration interval = options.traffic_persist_interval;
    server->persist_thread_ = std::thread([raw, interval] {
      bool stopping = false;
      while (!stopping) {
        {
          absl::MutexLock lock(&raw->persist_mu_);
          const auto stop = [raw]() ABSL_SHARED_LOCKS_REQUIRED(raw->persist_mu_) {
            return raw->stopping_;
          };
          raw->persist_mu_.AwaitWithTimeout(absl::Condition(&stop), interval);
          stopping = raw->stopping_;
        }
        if (absl::Status persisted = raw->engine_->traffic().Persist(); !persisted.ok()) {
          Log(LogLevel::kWarning, "traffic_not_persisted", {{"status", persisted.ToString()}});
        }
      }
    });
  }
  server->SetServing(true);
  return server;
}

std::vector<VersionDrift> NormdServer::TrafficDrift() const {
  std::vector<VersionDrift> all;
  for (const TrafficKey& key : engine_->traffic().Keys()) {
    VersionDrift row;
    row.dataset = key.dataset;
    row.version = key.version;
    CompareCall call;
    call.dataset = key.dataset;
    call.reference = {.kind = StatisticsSource::Kind::kFrozen, .version = key.version};
    call.candidate = {.kind = StatisticsSource::Kind::kTraffic,
                      .version = key.version,
                      .window = TrafficWindowKind::kLastHour};
    absl::StatusOr<TrafficResult> traffic =
        engine_->GetTraffic(key.dataset, key.version, TrafficWindowKind::kSinceStart);
    if (!traffic.ok()) continue;  // deleted meanwhile
    row.requests = traffic->traffic.requests;
    row.sampled_requests = traffic->traffic.sampled_requests;
    if (absl::StatusOr<CompareResult> result = CompareSources(*engine_, call); result.ok()) {
      row.level = static_cast<int>(result->report.level);
      for (size_t c = 0; c < result->report.channels.size(); ++c) {
        const ChannelDrift& d = result->report.channels[c];
        const double psi = d.psi.value, smd = d.standardized_mean_difference.value;
        if (!std::isnan(psi)) row.max_psi = std::max(row.max_psi, psi);
        if (!std::isnan(smd)) {
          row.max_abs_standardized_mean_difference =
              std::max(row.max_abs_standardized_mean_difference, std::abs(smd));
        }
        if (c < drift_metric_channels_) {
          row.psi.push_back(psi);
          row.standardized_mean_difference.push_back(smd);
        }
      }
    }
    all.push_back(std::move(row));
  }
  return all;
}

NormdServer::~NormdServer() {
  metrics_endpoint_.reset();  // its scrapes read the engine and the service
  for (grpc::Server* grpc_server : {health_server_.get(), server_.get()}) {
    if (grpc_server == nullptr) continue;
    grpc_server->Shutdown();
    grpc_server->Wait();
  }
  if (persist_thread_.joinable()) {
    {
      absl::MutexLock lock(&persist_mu_);
      stopping_ = true;
    }
    persist_thread_.join();  // after one last write of the traffic
  }
}

void NormdServer::SetServing(bool serving) {
  for (grpc::Server* grpc_server : {server_.get(), health_server_.get()}) {
    if (grpc_server != nullptr) grpc_server->GetHealthCheckService()->SetServingStatus(serving);
  }
}

void NormdServer::Shutdown(absl::Duration grace) {
  // Probes see NOT_SERVING at once; the health port itself closes with the rest.
  SetServing(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void NormdServer::Wait() { server_->Wait(); }

}  // namespace normd
