// A running normd: the store, the engine and the gRPC server with the Normd and
// health services, wired together. main.cc and the tests start it the same way.
#ifndef NORMD_SERVER_NORMD_SERVER_H_
#define NORMD_SERVER_NORMD_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/worker_pool.h"
#include "grpcpp/server.h"
#include "server/auth/access_policy.h"
#include "server/engine/dataset_engine.h"
#include "server/observability/metrics_endpoint.h"
#include "server/observability/server_metrics.h"
#include "server/open_device.h"
#include "server/regions/handoff_listener.h"
#include "server/regions/region_registry.h"
#include "server/service/normd_service.h"
#include "server/store/etcd/etcd_store.h"

namespace normd {

// Every setting of a normd, with its default: the one place defaults are written
// (main.cc's flags take theirs from here).
struct ServerOptions {
  // HOST:PORT (port 0 picks a free port) or unix:/path; several, comma-separated,
  // serve the same service on each (say, TCP for remote callers and a Unix socket
  // for same-host ones).
  std::string listen = "127.0.0.1:50051";
  std::string data_dir = "./data";  // created if missing; the store lives under it
  // The storage backend (server/open_store.h): "rocksdb", or "etcd:URL[,URL...]" for
  // replicas that share one etcd cluster, tuned by `etcd`.
  std::string store = "rocksdb";
  EtcdStoreOptions etcd;
  // Largest message (max_message_bytes), values per request, Ingest streams at once.
  RequestLimits limits;
  // Threads, besides the gRPC ones, that split one large Normalize or Ingest batch;
  // -1: one fewer than the CPUs. The pool is shared by all requests.
  int kernel_threads = -1;
  // TLS on the gRPC port when both are set (PEM files). With a client CA, every client
  // must present a certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Bearer tokens and their roles (see server/auth/access_policy.h); empty: no tokens.
  std::string tokens_file;
  // HOST:PORT for the HTTP port: Prometheus' GET /metrics, the dashboard and its JSON
  // endpoints (server/dashboard/); empty: none. Port 0 picks one.
  std::string http_listen;
  // What Normalize's live traffic keeps (server/engine/traffic_monitor.h), how often it
  // is written to the store, and how many channels per version get drift gauges.
  TrafficOptions traffic;
  // --device: a GPU for large frozen Normalize requests and Ingest batches.
  DeviceOptions device;
  absl::Duration traffic_persist_interval = absl::Minutes(1);
  size_t drift_metric_channels = 8;
  bool log_requests = true;  // one structured log line per finished RPC
  // HOST:PORT for a plaintext gRPC port that serves only grpc.health.v1, for probes
  // that cannot speak TLS (Kubernetes' gRPC probes); empty: none. Port 0 picks one.
  std::string health_listen;
  // The Unix socket on which same-host callers hand over shared-memory regions;
  // empty: regions.sock in the data directory (without shared memory, and a warning,
  // when that path cannot hold a socket); "off": no shared memory.
  std::string region_socket;
  RegionLimits region_limits;
};

class NormdServer {
 public:
  static absl::StatusOr<std::unique_ptr<NormdServer>> Start(const ServerOptions& options);
  ~NormdServer();

  // The TCP port actually bound (useful with port 0); 0 when serving Unix sockets only.
  int port() const { return port_; }
  // Every address served, as clients dial them (a port 0 resolved); the first first.
  const std::vector<std::string>& addresses() const { return addresses_; }
  std::string address() const { return addresses_.front(); }
  // The HTTP port actually bound; 0 without one.
  int http_port() const { return metrics_endpoint_ ? metrics_endpoint_->port() : 0; }
  // The health-only port actually bound; 0 without one.
  int health_port() const { return health_port_; }
  const NormdService& service() const { return *service_; }
  // The region handoff socket's path; empty without shared memory.
  std::string region_socket() const { return handoff_ ? handoff_->path() : std::string(); }

  // Stops accepting RPCs, lets in-flight ones finish for up to `grace`, then
  // cancels the rest. Everything acknowledged is already durable.
  void Shutdown(absl::Duration grace);
  void Wait();

 private:
  NormdServer() = default;
  void SetServing(bool serving);  // what both health services answer

  std::vector<std::string> addresses_;
  int port_ = 0;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<DeviceOffload> device_;  // outlives engine_, which points to it
  std::unique_ptr<DatasetEngine> engine_;
  std::unique_ptr<AccessPolicy> access_;
  std::unique_ptr<RegionRegistry> regions_;
  std::unique_ptr<HandoffListener> handoff_;
  std::unique_ptr<NormdService> service_;
  std::unique_ptr<grpc::Server> server_;
  int health_port_ = 0;
  std::unique_ptr<grpc::Server> health_server_;  // plaintext, grpc.health.v1 only
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  // Writes the live traffic every traffic_persist_interval, and once more on exit.
  absl::Mutex persist_mu_;
  bool stopping_ ABSL_GUARDED_BY(persist_mu_) = false;
  std::thread persist_thread_;
  size_t drift_metric_channels_ = 0;

  std::vector<VersionDrift> TrafficDrift() const;
};

}  // namespace normd

#endif  // NORMD_SERVER_NORMD_SERVER_H_
