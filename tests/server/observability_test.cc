// ServerMetrics' exposition and StructuredLog's lines on their own, and the metrics
// endpoint of a real server scraped while clients call it (the ThreadSanitizer build
// runs this too). A real normd scraped by a real Prometheus is in
// tests/python/test_observability.py.
#include <httplib.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cpp/normd_client.h"
#include "gtest/gtest.h"
#include "server/normd_server.h"
#include "server/observability/rpc_observer.h"
#include "server/observability/server_metrics.h"
#include "server/observability/structured_log.h"
#include "tests/support/loopback_server.h"
#include "tests/support/temp_dir.h"

namespace normd {
namespace {

// Every sample line of an exposition, keyed by its name and labels as written.
std::map<std::string, double> Samples(const std::string& exposition) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(exposition, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

const char* const kIngest = "/normd.v1.Normd/Ingest";
const std::string kIngestLabels = "service=\"normd.v1.Normd\",method=\"Ingest\"";

TEST(ServerMetricsTest, LatencyLandsInTheFirstBucketAtOrAboveIt) {
  ServerMetrics metrics({kIngest}, "1.2.3");
  // A bucket's bound is inclusive (le): exactly 1 ms is in le="0.001".
  for (const absl::Duration d : {absl::Microseconds(1000), absl::Microseconds(1001),
                                 absl::Seconds(61), absl::ZeroDuration()}) {
    metrics.RpcStarted(kIngest);
    metrics.RpcFinished(kIngest, absl::StatusCode::kOk, d);
  }
  std::map<std::string, double> samples = Samples(metrics.Render({}));
  const auto bucket = [&](const std::string& le) {
    return samples.at("normd_rpc_duration_seconds_bucket{" + kIngestLabels + ",le=\"" + le + "\"}");
  };
  EXPECT_EQ(bucket("0.0005"), 1);  // the zero
  EXPECT_EQ(bucket("0.001"), 2);   // + exactly 1 ms
  EXPECT_EQ(bucket("0.0025"), 3);  // + 1.001 ms
  EXPECT_EQ(bucket("60"), 3);
  EXPECT_EQ(bucket("+Inf"), 4);  // + 61 s
  EXPECT_EQ(samples.at("normd_rpc_duration_seconds_count{" + kIngestLabels + "}"), 4);
  EXPECT_DOUBLE_EQ(samples.at("normd_rpc_duration_seconds_sum{" + kIngestLabels + "}"),
                   0.001 + 0.001001 + 61);
}

TEST(ServerMetricsTest, ErrorsAreCountedByCodeAndUnknownMethodsShareOneSeries) {
  ServerMetrics metrics({kIngest}, "1.2.3");
  const std::vector<std::pair<const char*, absl::StatusCode>> calls = {
      {kIngest, absl::StatusCode::kOk},
      {kIngest, absl::StatusCode::kInvalidArgument},
      {kIngest, absl::StatusCode::kInvalidArgument},
      {kIngest, absl::StatusCode::kResourceExhausted},
      {"/normd.v1.Normd/Nope", absl::StatusCode::kUnimplemented},
      {"/x.Y/Z", absl::StatusCode::kUnimplemented},
  };
  for (const auto& [method, code] : calls) {
    metrics.RpcStarted(method);
    metrics.RpcFinished(method, code, absl::Milliseconds(1));
  }
  metrics.RpcStarted(kIngest);  // still running
  const std::string text = metrics.Render({.datasets = 7, .frozen_versions = 9});
  std::map<std::string, double> samples = Samples(text);
  EXPECT_EQ(samples.at("normd_rpc_requests_total{" + kIngestLabels + "}"), 5);
  EXPECT_EQ(samples.at("normd_rpc_in_flight{" + kIngestLabels + "}"), 1);
  EXPECT_EQ(samples.at("normd_rpc_handled_total{" + kIngestLabels + ",code=\"OK\"}"), 1);
  EXPECT_EQ(samples.at("normd_rpc_errors_total{" + kIngestLabels + ",code=\"INVALID_ARGUMENT\"}"),
            2);
  EXPECT_EQ(samples.at("normd_rpc_errors_total{" + kIngestLabels + ",code=\"RESOURCE_EXHAUSTED\"}"),
            1);
  EXPECT_FALSE(samples.contains("normd_rpc_errors_total{" + kIngestLabels + ",code=\"OK\"}"));
  EXPECT_EQ(samples.at("normd_rpc_errors_total{service=\"\",method=\"other\",code="
                       "\"UNIMPLEMENTED\"}"),
            2);
  EXPECT_EQ(text.find("Nope"), std::string::npos);
  EXPECT_EQ(samples.at("normd_datasets"), 7);
  EXPECT_EQ(samples.at("normd_frozen_versions"), 9);
  EXPECT_EQ(samples.at("normd_build_info{version=\"1.2.3\"}"), 1);
  // Each family is announced once with its type, before its samples.
  for (const char* family : {"normd_rpc_requests_total counter",
                             "normd_rpc_duration_seconds "
                             "histogram",
                             "normd_datasets gauge"}) {
    const std::string type_line = std::string("# TYPE ") + family;
    EXPECT_NE(text.find(type_line), std::string::npos) << family;
    EXPECT_EQ(text.find(type_line), text.rfind(type_line)) << family;
  }
}

TEST(ServerMetricsTest, IngestAndNormalizeVolumesAddUp) {
  ServerMetrics metrics({}, "v");
  metrics.Ingested(3, 1, 3000, 12000);
  metrics.Ingested(2, 0, 10, 40);
  metrics.Normalized(64, 256);
  std::map<std::string, double> samples = Samples(metrics.Render({}));
  EXPECT_EQ(samples.at("normd_ingested_batches_total"), 5);
  EXPECT_EQ(samples.at("normd_ingest_duplicate_batches_total"), 1);
  EXPECT_EQ(samples.at("normd_ingested_values_total"), 3010);
  EXPECT_EQ(samples.at("normd_ingested_bytes_total"), 12040);
  EXPECT_EQ(samples.at("normd_normalized_values_total"), 64);
  EXPECT_EQ(samples.at("normd_normalized_bytes_total"), 256);
}

TEST(StructuredLogTest, ALineIsOneJsonObjectWithEscapedStrings) {
  const std::string line = FormatLogLine(LogLevel::kWarning, "rpc",
                                         {{"message", "say \"hi\"\\\n\x01"},
                                          {"count", int64_t{-3}},
                                          {"ok", true},
                                          {"ms", 1.5},
                                          {"nan", std::numeric_limits<double>::quiet_NaN()}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_TRUE(line.starts_with("{\"time\":\"")) << line;
  EXPECT_TRUE(line.ends_with(
      "Z\",\"level\":\"warning\",\"event\":\"rpc\",\"message\":\"say \\\"hi\\\"\\\\\\n\\u0001\","
      "\"count\":-3,\"ok\":true,\"ms\":1.5,\"nan\":null}"))
      << line;
}

TEST(RequestIdTest, OnlyShortPlainTokensAreTakenFromTheCaller) {
  EXPECT_TRUE(IsUsableRequestId("trace-42.a:b_c"));
  EXPECT_TRUE(IsUsableRequestId(std::string(64, 'a')));
  EXPECT_FALSE(IsUsableRequestId(std::string(65, 'a')));
  EXPECT_FALSE(IsUsableRequestId(""));
  EXPECT_FALSE(IsUsableRequestId("has space"));
  EXPECT_FALSE(IsUsableRequestId("quote\"d"));
  EXPECT_FALSE(IsUsableRequestId("new\nline"));
}

TEST(MetricsEndpointTest, ScrapesWhileClientsCallSeeCountersOnlyGrow) {
  testing::TempDir dir;
  ServerOptions options = testing::LoopbackServerOptions(dir.path() + "/data");
  options.http_listen = "127.0.0.1:0";
  options.kernel_threads = 0;
  absl::StatusOr<std::unique_ptr<NormdServer>> server = NormdServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->http_port(), 0);

  const std::string list =
      "normd_rpc_requests_total{service=\"normd.v1.Normd\",method=\"ListDatasets\"}";
  const std::string missing =
      "normd_rpc_errors_total{service=\"normd.v1.Normd\",method=\"GetDataset\",code=\"NOT_FOUND\"}";
  const auto scrape = [&] {
    httplib::Client http("127.0.0.1", (*server)->http_port());
    httplib::Result reply = http.Get("/metrics");
    EXPECT_TRUE(reply && reply->status == 200);
    return reply ? Samples(reply->body) : std::map<std::string, double>();
  };

  constexpr int kClients = 2;
  constexpr int kCallsEach = 150;
  std::atomic<int> clients_done = 0;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      std::unique_ptr<NormdClient> client = NormdClient::Connect((*server)->address());
      for (int i = 0; i < kCallsEach; ++i) {
        EXPECT_TRUE(client->ListDatasets().ok());
        EXPECT_EQ(client->GetDataset("absent").status().code(), absl::StatusCode::kNotFound);
      }
      clients_done.fetch_add(1);
    });
  }
  int scrapes = 0;
  double last_list = 0, last_missing = 0;
  do {  // at least one scrape, then as many as the clients' calls take
    std::map<std::string, double> samples = scrape();
    EXPECT_GE(samples[list], last_list);
    EXPECT_GE(samples[missing], last_missing);
    last_list = samples[list];
    last_missing = samples[missing];
    ++scrapes;
  } while (clients_done.load() < kClients);
  for (std::thread& client : clients) client.join();

  std::map<std::string, double> samples = scrape();
  EXPECT_EQ(samples[list], kClients * kCallsEach);
  EXPECT_EQ(samples[missing], kClients * kCallsEach);
  EXPECT_EQ(samples["normd_rpc_in_flight{service=\"normd.v1.Normd\",method=\"ListDatasets\"}"], 0);
  EXPECT_GE(scrapes, 1);
}

TEST(MetricsEndpointTest, ABadOrTakenAddressStopsTheStart) {
  testing::TempDir dir;
  ServerOptions options = testing::LoopbackServerOptions(dir.path() + "/data");
  options.http_listen = "localhost";
  absl::StatusOr<std::unique_ptr<NormdServer>> server = NormdServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(), "--http_listen must be HOST:PORT, got \"localhost\"");

  options.http_listen = "127.0.0.1:0";
  server = NormdServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ServerOptions second = options;
  second.data_dir = dir.path() + "/other";
  second.http_listen = absl::StrCat("127.0.0.1:", (*server)->http_port());
  absl::StatusOr<std::unique_ptr<NormdServer>> clash = NormdServer::Start(second);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(clash.status().message(), absl::StrCat("cannot listen for HTTP on ", second.http_listen,
                                                   ": bind: Address already in use"));

  // The same for the gRPC port: no second server shares it (no SO_REUSEPORT).
  second.http_listen = "";
  second.listen = (*server)->address();
  clash = NormdServer::Start(second);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(clash.status().message(), absl::StrCat("cannot listen on ", second.listen));
}

}  // namespace
}  // namespace normd
