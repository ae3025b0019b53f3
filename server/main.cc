// normd: the normalisation statistics server.
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "server/normd_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, HOST:PORT. Port 0 picks a free port (printed at start).");
ABSL_FLAG(std::string, data_dir, "./data",
          "Directory for the RocksDB store; created if missing.");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest request or reply message in bytes; larger requests get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, kernel_threads, -1,
          "threads, besides gRPC's, that split one large Normalize or Ingest batch across "
          "cores (a pool shared by all requests); -1: one fewer than the CPUs, 0: none");
ABSL_FLAG(int64_t, max_request_elements, int64_t{1} << 28,
          "Most values in one Ingest batch or Normalize input; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_concurrent_ingests, 64,
          "Most Ingest streams served at once; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate (chain) for TLS on the gRPC port; with --tls_key_file.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key for --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle; when set, every client must present a certificate it signed "
          "(mutual TLS).");
ABSL_FLAG(std::string, tokens_file, "",
          "Bearer tokens, one per line as \"ROLE TOKEN [NAME]\" with ROLE reader, writer or "
          "admin; when set, every RPC but health checks needs a token of a sufficient role.");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "On SIGTERM or SIGINT, how long in-flight RPCs may run before they are cancelled.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Fits and serves normalisation statistics over gRPC.\n"
      "Usage: normd [--listen=HOST:PORT] [--data_dir=DIR]");
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
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.kernel_threads = absl::GetFlag(FLAGS_kernel_threads);
  options.max_request_elements = absl::GetFlag(FLAGS_max_request_elements);
  options.max_concurrent_ingests = absl::GetFlag(FLAGS_max_concurrent_ingests);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  absl::StatusOr<std::unique_ptr<normd::NormdServer>> server = normd::NormdServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "normd: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("normd listening on %s (data in %s)\n", (*server)->address().c_str(),
              options.data_dir.c_str());
  std::fflush(stdout);

  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    std::fprintf(stderr, "normd: signal %d, shutting down\n", received);
    (*server)->Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  });
  (*server)->Wait();
  signal_waiter.join();
  server->reset();  // closes RocksDB cleanly
  return 0;
}
