// normd: the normalisation statistics server.
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/normd_server.h"
#include "server/observability/structured_log.h"

// Each help text ends with the environment variable that sets the flag too; a test
// checks that every flag names its variable and that the variable works.
namespace {
// The defaults are ServerOptions' own.
const normd::ServerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen,
          "Address to serve gRPC on, HOST:PORT (port 0 picks a free port, printed at start) or "
          "unix:/path; several, comma-separated, are all served (e.g. "
          "0.0.0.0:50051,unix:/run/normd/grpc.sock). [env NORMD_LISTEN]");
ABSL_FLAG(std::string, data_dir, kDefaults.data_dir,
          "Directory for the store (RocksDB keeps its files in DATA_DIR/db); created if missing. "
          "[env NORMD_DATA_DIR]");
ABSL_FLAG(std::string, store, kDefaults.store,
          "Storage backend: rocksdb (embedded, under --data_dir), or etcd:http://HOST:PORT[,...] "
          "(an etcd v3 cluster that any number of normd replicas share; https:// for TLS). "
          "[env NORMD_STORE]");
ABSL_FLAG(absl::Duration, etcd_timeout, kDefaults.etcd.etcd.call_timeout,
          "Deadline of each etcd call; a commit that misses it is re-read to learn whether it "
          "landed. [env NORMD_ETCD_TIMEOUT]");
ABSL_FLAG(absl::Duration, etcd_retry_budget, kDefaults.etcd.etcd.retry_budget,
          "How long one operation keeps retrying etcd (failover, elections, a lost quorum) "
          "before answering UNAVAILABLE. [env NORMD_ETCD_RETRY_BUDGET]");
ABSL_FLAG(std::string, etcd_prefix, kDefaults.etcd.prefix,
          "Key prefix of this deployment's data in etcd. [env NORMD_ETCD_PREFIX]");
ABSL_FLAG(std::string, etcd_ca_file, "",
          "PEM CA bundle that signed etcd's certificates (implies TLS). [env NORMD_ETCD_CA_FILE]");
ABSL_FLAG(std::string, etcd_cert_file, "",
          "PEM client certificate for etcd (with --etcd_key_file). [env NORMD_ETCD_CERT_FILE]");
ABSL_FLAG(std::string, etcd_key_file, "", "PEM key of --etcd_cert_file. [env NORMD_ETCD_KEY_FILE]");
ABSL_FLAG(std::string, etcd_user, "",
          "etcd user to authenticate as (etcd auth enabled); empty: none. [env NORMD_ETCD_USER]");
ABSL_FLAG(std::string, etcd_password_file, "",
          "File holding --etcd_user's password. [env NORMD_ETCD_PASSWORD_FILE]");
ABSL_FLAG(uint64_t, etcd_fold_above, kDefaults.etcd.fold_above,
          "Beyond this many writer partitions, a dataset's oldest are folded into its shared "
          "one. [env NORMD_ETCD_FOLD_ABOVE]");
ABSL_FLAG(std::string, http_listen, "",
          "Address for the HTTP port, HOST:PORT: Prometheus' GET /metrics, the dashboard (GET /) "
          "and its JSON endpoints (/api/v1/...); empty: none. [env NORMD_HTTP_LISTEN]");
ABSL_FLAG(std::string, metrics_listen, "",
          "The former name of --http_listen, still taken. [env NORMD_METRICS_LISTEN]");
ABSL_FLAG(double, traffic_sample_rate, kDefaults.traffic.sample_rate,
          "Share of Normalize requests (with a frozen version) whose input is folded into that "
          "version's live-traffic statistics, drawn per request; 0: none, 1: all. "
          "[env NORMD_TRAFFIC_SAMPLE_RATE]");
ABSL_FLAG(absl::Duration, traffic_persist_interval, kDefaults.traffic_persist_interval,
          "How often the live-traffic statistics are written to the store (and once on exit). "
          "[env NORMD_TRAFFIC_PERSIST_INTERVAL]");
ABSL_FLAG(uint64_t, drift_metric_channels, kDefaults.drift_metric_channels,
          "Channels per (dataset, version) with drift gauges of their own on /metrics (the rest "
          "count in the _max gauges). [env NORMD_DRIFT_METRIC_CHANNELS]");
ABSL_FLAG(std::string, device, "",
          "A GPU for large requests: cuda:N runs frozen Normalize requests and Ingest batches "
          "on CUDA device N from the sizes where it measured itself faster than the CPU (at "
          "start); empty: the CPU only. Needs a build with the CUDA path. [env NORMD_DEVICE]");
ABSL_FLAG(int64_t, device_normalize_min_bytes, -1,
          "With --device: input bytes from which Normalize runs on the device; -1: measured. "
          "[env NORMD_DEVICE_NORMALIZE_MIN_BYTES]");
ABSL_FLAG(int64_t, device_fit_min_bytes, -1,
          "With --device: batch bytes from which Ingest reduces on the device; -1: measured. "
          "[env NORMD_DEVICE_FIT_MIN_BYTES]");
ABSL_FLAG(std::string, health_listen, "",
          "Address for a plaintext gRPC port that serves only grpc.health.v1, HOST:PORT, for "
          "probes that cannot speak TLS (Kubernetes gRPC probes); empty: none (the main port "
          "answers health checks too). [env NORMD_HEALTH_LISTEN]");
ABSL_FLAG(bool, log_requests, kDefaults.log_requests,
          "Write one JSON log line to stderr per finished RPC (method, status, duration, peer, "
          "request id). [env NORMD_LOG_REQUESTS]");
ABSL_FLAG(int, max_message_bytes, kDefaults.limits.max_message_bytes,
          "Largest request or reply message in bytes; larger requests get RESOURCE_EXHAUSTED. "
          "[env NORMD_MAX_MESSAGE_BYTES]");
ABSL_FLAG(int, kernel_threads, kDefaults.kernel_threads,
          "Threads, besides gRPC's, that split one large Normalize or Ingest batch across "
          "cores (a pool shared by all requests); -1: one fewer than the CPUs, 0: none. "
          "[env NORMD_KERNEL_THREADS]");
ABSL_FLAG(int64_t, max_request_elements, kDefaults.limits.max_request_elements,
          "Most values in one Ingest batch or Normalize input; more get RESOURCE_EXHAUSTED. "
          "[env NORMD_MAX_REQUEST_ELEMENTS]");
ABSL_FLAG(int, max_concurrent_ingests, kDefaults.limits.max_concurrent_ingests,
          "Most Ingest streams served at once; with all taken, a caller holding fewer than the "
          "largest holder takes the slot of that holder's longest-waiting stream (ABORTED, "
          "to be resent), else RESOURCE_EXHAUSTED. "
          "[env NORMD_MAX_CONCURRENT_INGESTS]");
ABSL_FLAG(int, max_ingests_per_caller, kDefaults.limits.max_ingests_per_caller,
          "Most Ingest streams one caller (bearer token; without tokens, a local caller's uid, "
          "else its host) may hold "
          "open at once, so that no one client takes every slot. "
          "[env NORMD_MAX_INGESTS_PER_CALLER]");
ABSL_FLAG(absl::Duration, ingest_idle_timeout, kDefaults.limits.ingest_idle_timeout,
          "An Ingest stream that sends nothing for this long is cancelled with nothing "
          "applied (e.g. 60s, 5m). [env NORMD_INGEST_IDLE_TIMEOUT]");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate (chain) for TLS on the gRPC port; with --tls_key_file. "
          "[env NORMD_TLS_CERT_FILE]");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key for --tls_cert_file. [env NORMD_TLS_KEY_FILE]");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle; when set, every client must present a certificate it signed "
          "(mutual TLS). [env NORMD_TLS_CLIENT_CA_FILE]");
ABSL_FLAG(std::string, tokens_file, "",
          "Bearer tokens, one per line as \"ROLE TOKEN [NAME]\" with ROLE reader, writer or "
          "admin; when set, every RPC but health checks needs a token of a sufficient role. "
          "[env NORMD_TOKENS_FILE]");
ABSL_FLAG(std::string, region_socket, kDefaults.region_socket,
          "Unix socket on which same-host clients hand over shared-memory regions (memfds "
          "sealed against shrinking), so tensors never cross gRPC; empty: regions.sock in "
          "--data_dir; off: no shared memory. [env NORMD_REGION_SOCKET]");
ABSL_FLAG(int, max_regions_per_caller, kDefaults.region_limits.max_regions_per_caller,
          "Most shared-memory regions one caller (token; without tokens, uid) may register; "
          "regions handed over and not yet claimed count per uid too. "
          "[env NORMD_MAX_REGIONS_PER_CALLER]");
ABSL_FLAG(uint64_t, max_region_bytes_per_caller,
          kDefaults.region_limits.max_region_bytes_per_caller,
          "Most bytes of shared-memory regions one caller may register (and one uid may hand "
          "over unclaimed). "
          "[env NORMD_MAX_REGION_BYTES_PER_CALLER]");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "On SIGTERM or SIGINT, how long in-flight RPCs may run before they are cancelled. "
          "[env NORMD_SHUTDOWN_GRACE_SECONDS]");

namespace {

bool IsNormdFlagFile(absl::string_view file) { return absl::EndsWith(file, "server/main.cc"); }

// Sets each of normd's flags from NORMD_<NAME> where that variable exists. Runs
// before the command line is parsed, so a flag given there wins.
bool ApplyEnvironment() {
  bool ok = true;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsNormdFlagFile(flag->Filename())) continue;
    const std::string variable = absl::StrCat("NORMD_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "normd: %s=\"%s\": %s\n", variable.c_str(), value, error.c_str());
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  // The store, the sockets and every other file normd makes are its own alone (0600,
  // 0700), whatever umask it was started with: statistics and shared-memory handoff
  // are no business of other local users.
  umask(077);
  // The soft descriptor limit raised to the hard one (systemd's soft default is 1024):
  // each gRPC connection, handoff connection and region costs one.
  if (rlimit descriptors; getrlimit(RLIMIT_NOFILE, &descriptors) == 0 &&
                          descriptors.rlim_cur < descriptors.rlim_max) {
    descriptors.rlim_cur = descriptors.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &descriptors);
  }
  absl::SetProgramUsageMessage(
      "Fits and serves normalisation statistics over gRPC.\n"
      "Usage: normd [--listen=HOST:PORT] [--data_dir=DIR] [--flag=value ...]\n"
      "Every flag can also be set from the environment as NORMD_<FLAG NAME IN CAPITALS>\n"
      "(NORMD_DATA_DIR=/data); a flag on the command line wins over the environment.");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsNormdFlagFile;
  usage.contains_helpshort_flags = IsNormdFlagFile;
  // The help names the file a flag comes from; the build's absolute path says nothing.
  usage.normalize_filename = [](absl::string_view file) {
    return std::string(IsNormdFlagFile(file) ? "server/main.cc" : file);
  };
  usage.version_string = [] { return std::string("normd " NORMD_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage);
  if (!ApplyEnvironment()) return 2;
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by one thread, so the handler can do real work.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  normd::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.store = absl::GetFlag(FLAGS_store);
  options.etcd.etcd.call_timeout = absl::GetFlag(FLAGS_etcd_timeout);
  options.etcd.etcd.retry_budget = absl::GetFlag(FLAGS_etcd_retry_budget);
  options.etcd.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  options.etcd.etcd.ca_file = absl::GetFlag(FLAGS_etcd_ca_file);
  options.etcd.etcd.tls = !options.etcd.etcd.ca_file.empty();
  options.etcd.etcd.cert_file = absl::GetFlag(FLAGS_etcd_cert_file);
  options.etcd.etcd.key_file = absl::GetFlag(FLAGS_etcd_key_file);
  options.etcd.etcd.user = absl::GetFlag(FLAGS_etcd_user);
  if (const std::string file = absl::GetFlag(FLAGS_etcd_password_file); !file.empty()) {
    std::ifstream in(file);
    if (!std::getline(in, options.etcd.etcd.password)) {
      std::fprintf(stderr, "normd: cannot read --etcd_password_file %s\n", file.c_str());
      return 2;
    }
  }
  options.etcd.fold_above = absl::GetFlag(FLAGS_etcd_fold_above);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  if (const std::string old = absl::GetFlag(FLAGS_metrics_listen); !old.empty()) {
    if (!options.http_listen.empty() && options.http_listen != old) {
      std::fprintf(stderr,
                   "normd: --metrics_listen is the former name of --http_listen; set one\n");
      return 2;
    }
    options.http_listen = old;
  }
  options.traffic.sample_rate = absl::GetFlag(FLAGS_traffic_sample_rate);
  if (!(options.traffic.sample_rate >= 0 && options.traffic.sample_rate <= 1)) {
    std::fprintf(stderr, "normd: --traffic_sample_rate must be in [0, 1]\n");
    return 2;
  }
  options.traffic_persist_interval = absl::GetFlag(FLAGS_traffic_persist_interval);
  options.device = {absl::GetFlag(FLAGS_device), absl::GetFlag(FLAGS_device_normalize_min_bytes),
                    absl::GetFlag(FLAGS_device_fit_min_bytes)};
  options.drift_metric_channels = absl::GetFlag(FLAGS_drift_metric_channels);
  options.log_requests = absl::GetFlag(FLAGS_log_requests);
  options.health_listen = absl::GetFlag(FLAGS_health_listen);
  options.limits.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.kernel_threads = absl::GetFlag(FLAGS_kernel_threads);
  options.limits.max_request_elements = absl::GetFlag(FLAGS_max_request_elements);
  options.limits.max_concurrent_ingests = absl::GetFlag(FLAGS_max_concurrent_ingests);
  options.limits.max_ingests_per_caller = absl::GetFlag(FLAGS_max_ingests_per_caller);
  options.limits.ingest_idle_timeout = absl::GetFlag(FLAGS_ingest_idle_timeout);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.region_socket = absl::GetFlag(FLAGS_region_socket);
  options.region_limits.max_regions_per_caller = absl::GetFlag(FLAGS_max_regions_per_caller);
  options.region_limits.max_region_bytes_per_caller =
      absl::GetFlag(FLAGS_max_region_bytes_per_caller);
  absl::StatusOr<std::unique_ptr<normd::NormdServer>> server = normd::NormdServer::Start(options);
  if (!server.ok()) {
    // Plain text as well as the log line: a person starting normd by hand reads this.
    std::fprintf(stderr, "normd: %s\n", server.status().ToString().c_str());
    normd::Log(normd::LogLevel::kError, "start_failed", {{"status", server.status().ToString()}});
    return 1;
  }
  // Tests and scripts read the address from this first line of stdout.
  std::printf("normd listening on %s (data in %s)\n", (*server)->address().c_str(),
              options.data_dir.c_str());
  std::fflush(stdout);
  // The addresses actually bound, for a port 0 in a flag.
  const auto bound = [](const std::string& listen, int port) {
    return listen.empty() ? std::string()
                          : absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
  };
  normd::Log(normd::LogLevel::kInfo, "listening",
             {{"version", NORMD_VERSION},
              {"address", (*server)->address()},
              {"addresses", absl::StrJoin((*server)->addresses(), ",")},
              {"http_address", bound(options.http_listen, (*server)->http_port())},
              {"metrics_address", bound(options.http_listen, (*server)->http_port())},
              {"health_address", bound(options.health_listen, (*server)->health_port())},
              {"data_dir", options.data_dir},
              {"region_socket", (*server)->region_socket()},
              {"tls", !options.tls_cert_file.empty()},
              {"mutual_tls", !options.tls_client_ca_file.empty()},
              {"tokens", !options.tokens_file.empty()}});

  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    normd::Log(
        normd::LogLevel::kInfo, "shutting down",
        {{"signal", received}, {"grace_seconds", absl::GetFlag(FLAGS_shutdown_grace_seconds)}});
    (*server)->Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  });
  (*server)->Wait();
  signal_waiter.join();
  server->reset();  // closes RocksDB cleanly
  normd::Log(normd::LogLevel::kInfo, "stopped");
  return 0;
}
