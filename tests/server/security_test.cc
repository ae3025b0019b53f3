// Bearer tokens and TLS against a real server on a loopback port: every RPC with no
// token, an unknown token and each role; TLS, and mutual TLS, with certificates made
// for the test by tests/support/make_certs.sh.
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/cpp/normd_client.h"
#include "gtest/gtest.h"
#include "server/normd_server.h"
#include "tests/support/loopback_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensors.h"

namespace normd {
namespace {

using testing::Float64Tensor;

constexpr char kTokens[] =
    "reader reader-secret-0123456789 dashboards\n"
    "writer writer-secret-0123456789 trainer\n"
    "admin admin-secret-0123456789 ops\n";

class SecurityTest : public ::testing::Test {
 protected:
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  void Start(ServerOptions options) {
    options.listen = "127.0.0.1:0";
    options.data_dir = dir_.path() + "/data";
    absl::StatusOr<std::unique_ptr<NormdServer>> server = NormdServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<NormdClient> Client(ConnectOptions options) {
    absl::StatusOr<std::unique_ptr<NormdClient>> client =
        NormdClient::Connect(server_->address(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    (*client)->set_timeout(absl::Seconds(10));
    return *std::move(client);
  }

  // "shared": [N, 1], fitted on {1, 2, 4} by `admin`.
  static void MakeSharedDataset(NormdClient& admin) {
    v1::DatasetSpec spec;
    spec.set_name("shared");
    spec.set_layout(v1::LAYOUT_NC);
    spec.set_channels(1);
    ASSERT_TRUE(admin.CreateDataset(spec).ok());
    std::unique_ptr<IngestStream> stream = admin.StartIngest("shared");
    ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, Float64Tensor({3, 1}, {1, 2, 4})).ok());
    ASSERT_TRUE(stream->Finish().ok());
  }

  std::string MakeCerts() {
    const std::string certs = dir_.path() + "/certs";
    const std::string command = std::string(NORMD_MAKE_CERTS) + " " + certs;
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return certs;
  }

  testing::TempDir dir_;
  std::unique_ptr<NormdServer> server_;
};

// Each RPC, run by one client: the status it got.
std::map<std::string, absl::StatusCode> CallEveryMethod(NormdClient& client,
                                                        const std::string& suffix) {
  std::map<std::string, absl::StatusCode> got;
  v1::DatasetSpec spec;
  spec.set_name("made-by-" + suffix);
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(1);
  got["CreateDataset"] = client.CreateDataset(spec).status().code();
  got["GetDataset"] = client.GetDataset("shared").status().code();
  got["ListDatasets"] = client.ListDatasets().status().code();
  std::unique_ptr<IngestStream> stream = client.StartIngest("shared");
  (void)stream->Write(v1::SPLIT_TRAIN, Float64Tensor({2, 1}, {1, 2}));
  got["Ingest"] = stream->Finish().status().code();
  got["Freeze"] = client.Freeze("shared").status().code();
  got["GetStats"] = client.GetStats("shared", 0, v1::SPLIT_TRAIN).status().code();
  v1::NormalizeRequest request;
  request.set_dataset("shared");
  request.set_version(1);
  request.mutable_zscore();
  *request.mutable_input() = Float64Tensor({1, 1}, {3});
  got["Normalize"] = client.Normalize(request).status().code();
  got["Denormalize"] = client.Denormalize(request).status().code();
  got["DeleteDataset"] = client.DeleteDataset("made-by-" + suffix).code();
  got["ListRegions"] = client.ListRegions().status().code();
  return got;
}

TEST_F(SecurityTest, EveryRoleGetsExactlyItsMethods) {
  ServerOptions options;
  options.tokens_file = WriteFile("tokens", kTokens);
  Start(options);
  {  // a dataset with a frozen version to read, made by the admin
    std::unique_ptr<NormdClient> admin = Client({.token = "admin-secret-0123456789"});
    MakeSharedDataset(*admin);
    ASSERT_TRUE(admin->Freeze("shared").ok());
  }
  using Code = absl::StatusCode;
  const Code kOk = Code::kOk, kDeny = Code::kPermissionDenied, kAnon = Code::kUnauthenticated;
  const std::vector<std::string> methods = {
      "CreateDataset", "GetDataset",    "ListDatasets", "Ingest",     "Freeze",
      "GetStats",      "Normalize",     "DeleteDataset", "ListRegions", "Denormalize"};
  // One row per token, one column per method, in the order above.
  // clang-format off
  const std::vector<std::pair<std::string, std::vector<Code>>> expected = {
      //                            Create Get    List   Ingest Freeze Stats  Norm   Delete Regions Denorm
      {"",                         {kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon}},
      {"not-a-known-token-000",    {kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon, kAnon}},
      {"reader-secret-0123456789", {kDeny, kOk,   kOk,   kDeny, kDeny, kOk,   kOk,   kDeny, kOk,   kOk}},
      {"writer-secret-0123456789", {kDeny, kOk,   kOk,   kOk,   kOk,   kOk,   kOk,   kDeny, kOk,   kOk}},
      {"admin-secret-0123456789",  {kOk,   kOk,   kOk,   kOk,   kOk,   kOk,   kOk,   kOk,   kOk,   kOk}},
  };
  // clang-format on
  int n = 0;
  for (const auto& [token, codes] : expected) {
    std::map<std::string, Code> want;
    for (size_t m = 0; m < methods.size(); ++m) want[methods[m]] = codes[m];
    std::unique_ptr<NormdClient> client = Client({.token = token});
    EXPECT_EQ(CallEveryMethod(*client, std::to_string(n++)), want) << "token '" << token << "'";
  }
  // Health checks need no token: probes must work.
  std::unique_ptr<NormdClient> anonymous = Client({});
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      anonymous->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
}

// A role is checked by what a request does: a Normalize that folds its batch into
// the fit (batch norm's update_statistics) is a writer's call, whatever its method.
TEST_F(SecurityTest, AReaderCannotChangeTheFitThroughNormalize) {
  ServerOptions options;
  options.tokens_file = WriteFile("tokens", kTokens);
  Start(options);
  std::unique_ptr<NormdClient> admin = Client({.token = "admin-secret-0123456789"});
  MakeSharedDataset(*admin);

  v1::NormalizeRequest request;
  request.set_dataset("shared");
  request.mutable_batchnorm_training()->set_update_statistics(true);
  request.mutable_batchnorm_training()->set_split(v1::SPLIT_TRAIN);
  *request.mutable_input() = Float64Tensor({2, 1}, {10, 20});
  const auto train_count = [&] {
    return admin->GetStats("shared", 0, v1::SPLIT_TRAIN)->stats().count(0);
  };
  ASSERT_EQ(train_count(), 3u);

  std::unique_ptr<NormdClient> reader = Client({.token = "reader-secret-0123456789"});
  const absl::Status refused = reader->Normalize(request).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("update_statistics (it changes the fit) needs the writer role; "
                                   "dashboards is a reader"),
            std::string::npos)
      << refused;
  EXPECT_EQ(train_count(), 3u);  // nothing applied

  // The same batch normalised without updating is a reader's; updating, a writer's.
  v1::NormalizeRequest look_only = request;
  look_only.mutable_batchnorm_training()->set_update_statistics(false);
  EXPECT_TRUE(reader->Normalize(look_only).ok());
  std::unique_ptr<NormdClient> writer = Client({.token = "writer-secret-0123456789"});
  const absl::StatusOr<v1::NormalizeResponse> updated = writer->Normalize(request);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(train_count(), 5u);
}

TEST_F(SecurityTest, TlsAndMutualTls) {
  const std::string certs = MakeCerts();
  ServerOptions options;
  options.tls_cert_file = certs + "/server.pem";
  options.tls_key_file = certs + "/server.key";
  Start(options);
  auto list = [&](ConnectOptions connect) { return Client(connect)->ListDatasets().status(); };
  EXPECT_TRUE(list({.ca_file = certs + "/ca.pem"}).ok());
  EXPECT_EQ(list({}).code(), absl::StatusCode::kUnavailable);  // plaintext to a TLS port
  EXPECT_EQ(list({.ca_file = certs + "/rogue-ca.pem"}).code(), absl::StatusCode::kUnavailable);
  server_.reset();

  options.tls_client_ca_file = certs + "/ca.pem";
  Start(options);
  EXPECT_TRUE(list({.ca_file = certs + "/ca.pem",
                    .cert_file = certs + "/client.pem",
                    .key_file = certs + "/client.key"})
                  .ok());
  EXPECT_EQ(list({.ca_file = certs + "/ca.pem"}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(list({.ca_file = certs + "/ca.pem",
                  .cert_file = certs + "/rogue-client.pem",
                  .key_file = certs + "/rogue-client.key"})
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(SecurityTest, BadSecurityOptionsStopTheStart) {
  ServerOptions options = testing::LoopbackServerOptions(dir_.path() + "/data");
  options.tls_cert_file = "/nonexistent/server.pem";
  EXPECT_EQ(NormdServer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.tls_key_file = "/nonexistent/server.key";
  absl::Status status = NormdServer::Start(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("/nonexistent/server.pem"), std::string::npos) << status;
  options = testing::LoopbackServerOptions(dir_.path() + "/data");
  options.tokens_file = WriteFile("bad-tokens", "owner some-long-enough-token\n");
  status = NormdServer::Start(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("unknown role 'owner'"), std::string::npos) << status;
}

}  // namespace
}  // namespace normd
