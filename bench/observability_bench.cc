// What observing an RPC costs: the metrics' counters, a log line, a scrape, and a
// whole ListDatasets round trip through a real in-process server with and without
// request logs. Each has its yardstick in the same run (atomic adds, a plain
// string concatenation, the round trip without logs). Run with stderr sent to
// /dev/null, or the log lines end up on the terminal:
//   build/bench/observability_bench --benchmark_format=json 2>/dev/null
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cpp/normd_client.h"
#include "server/normd_server.h"
#include "server/observability/server_metrics.h"
#include "server/observability/structured_log.h"
#include "tests/support/temp_dir.h"

namespace normd {
namespace {

const char* const kMethod = "/normd.v1.Normd/Normalize";

std::vector<std::string> Methods() {
  std::vector<std::string> methods;
  for (const char* name : {"CreateDataset", "GetDataset", "ListDatasets", "DeleteDataset", "Ingest",
                           "Freeze", "GetStats", "Normalize"}) {
    methods.push_back(absl::StrCat("/normd.v1.Normd/", name));
  }
  return methods;
}

// Yardstick: the two relaxed atomic adds any counter costs at least.
void BM_AtomicAdds(benchmark::State& state) {
  std::atomic<int64_t> a = 0, b = 0;
  for (auto _ : state) {
    a.fetch_add(1, std::memory_order_relaxed);
    b.fetch_add(1, std::memory_order_relaxed);
  }
  benchmark::DoNotOptimize(a.load() + b.load());
}
BENCHMARK(BM_AtomicAdds);

void BM_MetricsStartAndFinish(benchmark::State& state) {
  ServerMetrics metrics(Methods(), "bench");
  for (auto _ : state) {
    metrics.RpcStarted(kMethod);
    metrics.RpcFinished(kMethod, absl::StatusCode::kOk, absl::Microseconds(180));
  }
}
BENCHMARK(BM_MetricsStartAndFinish);

// Yardstick: the same text joined with no escaping and no clock.
void BM_StrCatOfALogLine(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(absl::StrCat(
        "{\"time\":\"2026-11-24T18:00:00.000000Z\",\"level\":\"info\",\"event\":\"rpc\","
        "\"request_id\":\"",
        "74767ce7f7141f5b-1", "\",\"method\":\"", kMethod, "\",\"code\":\"OK\",\"duration_ms\":",
        0.181, ",\"peer\":\"", "ipv4:127.0.0.1:48862", "\"}"));
  }
}
BENCHMARK(BM_StrCatOfALogLine);

void BM_FormatLogLine(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(FormatLogLine(LogLevel::kInfo, "rpc",
                                           {{"request_id", "74767ce7f7141f5b-1"},
                                            {"method", kMethod},
                                            {"code", "OK"},
                                            {"duration_ms", 0.181},
                                            {"peer", "ipv4:127.0.0.1:48862"}}));
  }
}
BENCHMARK(BM_FormatLogLine);

void BM_RenderScrape(benchmark::State& state) {
  ServerMetrics metrics(Methods(), "bench");
  for (const std::string& method : Methods()) {
    metrics.RpcStarted(method);
    metrics.RpcFinished(method, absl::StatusCode::kInvalidArgument, absl::Milliseconds(3));
  }
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = metrics.Render({.datasets = 10, .frozen_versions = 30});
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["exposition_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderScrape);

// A ListDatasets round trip over loopback to a real server: arg 0 without request
// logs (the yardstick), arg 1 with them.
void BM_ListDatasetsRoundTrip(benchmark::State& state) {
  testing::TempDir data;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = data.path();
  options.kernel_threads = 0;
  options.log_requests = state.range(0) == 1;
  absl::StatusOr<std::unique_ptr<NormdServer>> server = NormdServer::Start(options);
  if (!server.ok()) {
    state.SkipWithError(server.status().ToString().c_str());
    return;
  }
  std::unique_ptr<NormdClient> client = NormdClient::Connect((*server)->address());
  for (auto _ : state) {
    absl::StatusOr<std::vector<v1::DatasetInfo>> listed = client->ListDatasets();
    if (!listed.ok()) state.SkipWithError(listed.status().ToString().c_str());
  }
}
BENCHMARK(BM_ListDatasetsRoundTrip)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
