// The yardstick for normd's data plane: a gRPC server that answers every call with
// the bytes it received, untouched (the generic callback API: no parsing, no copy by
// us). What a call to it costs is what gRPC itself costs for those bytes.
//
//   build/bench/echo_server --listen=127.0.0.1:0,unix:/tmp/echo.sock
// prints "echo listening on ADDRESS[,ADDRESS...]" once it serves.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Comma-separated HOST:PORT or unix:/path.");

namespace {

class EchoReactor : public grpc::ServerGenericBidiReactor {
 public:
  EchoReactor() { StartRead(&message_); }
  void OnReadDone(bool ok) override {
    if (ok) {
      StartWriteAndFinish(&message_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(grpc::Status::OK);
    }
  }
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer message_;
};

class EchoService : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new EchoReactor();
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  EchoService service;
  grpc::ServerBuilder builder;
  const std::vector<std::string> listens = absl::StrSplit(absl::GetFlag(FLAGS_listen), ',');
  std::vector<int> ports(listens.size());
  for (size_t i = 0; i < listens.size(); ++i) {
    builder.AddListeningPort(listens[i], grpc::InsecureServerCredentials(), &ports[i]);
  }
  builder.RegisterCallbackGenericService(&service);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::vector<std::string> bound;
  for (size_t i = 0; i < listens.size(); ++i) {
    bound.push_back(absl::StartsWith(listens[i], "unix:")
                        ? listens[i]
                        : absl::StrCat(listens[i].substr(0, listens[i].rfind(':')), ":", ports[i]));
  }
  std::printf("echo listening on %s\n", absl::StrJoin(bound, ",").c_str());
  std::fflush(stdout);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  int received = 0;
  sigwait(&signals, &received);
  server->Shutdown();
  return 0;
}
