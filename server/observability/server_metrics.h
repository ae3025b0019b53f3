// The server's Prometheus metrics: RPC counts, errors by status code and latency
// histograms per method, plus what was ingested and normalised. Counters are atomics
// that RPC threads bump without a lock; Render writes the text exposition format
// (version 0.0.4) that a Prometheus server scrapes. Knows nothing of gRPC or HTTP:
// methods are names and codes are absl::StatusCode, whose numbers are gRPC's.
#ifndef NORMD_SERVER_OBSERVABILITY_SERVER_METRICS_H_
#define NORMD_SERVER_OBSERVABILITY_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace normd {

// Drift of one version's live traffic (the last hour) from its training split.
struct VersionDrift {
  std::string dataset;
  uint64_t version = 0;
  uint64_t requests = 0;
  uint64_t sampled_requests = 0;
  int level = 0;  // 0 no data, 1 pass, 2 warn, 3 fail: the worst channel's
  double max_psi = 0;
  double max_abs_standardized_mean_difference = 0;
  // The first channels only (the server's --drift_metric_channels), for bounded series.
  std::vector<double> psi;
  std::vector<double> standardized_mean_difference;
};

// Gauges read from the engine and the service when a scrape comes.
struct ServerInventory {
  int64_t datasets = 0;
  int64_t frozen_versions = 0;
  int64_t active_ingest_streams = 0;
  std::vector<VersionDrift> drift;
};

class ServerMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 16> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  static constexpr int kStatusCodes = 17;  // OK .. UNAUTHENTICATED

  // `methods`: full gRPC method names ("/normd.v1.Normd/Ingest") that get series of
  // their own; any other name is counted under method "other", so that a client
  // calling made-up methods cannot grow the series without bound.
  explicit ServerMetrics(const std::vector<std::string>& methods, std::string version);

  // Each started RPC is finished exactly once.
  void RpcStarted(absl::string_view method);
  void RpcFinished(absl::string_view method, absl::StatusCode code, absl::Duration elapsed);

  // A committed Ingest stream: the batches applied (duplicates not among them), their
  // values, and the tensor bytes the stream carried.
  void Ingested(int64_t batches, int64_t duplicate_batches, int64_t values, int64_t bytes);
  // A Normalize reply: values and bytes written.
  void Normalized(int64_t values, int64_t bytes);

  std::string Render(const ServerInventory& inventory) const;

 private:
  struct MethodSeries {
    std::string service;  // "normd.v1.Normd"
    std::string method;   // "Ingest"
    std::atomic<int64_t> started = 0;
    std::array<std::atomic<int64_t>, kStatusCodes> finished_by_code{};
    std::array<std::atomic<int64_t>, kLatencyBuckets.size() + 1> latency_buckets{};
    std::atomic<int64_t> latency_sum_ns = 0;
  };

  MethodSeries& SeriesOf(absl::string_view method);
  static void RenderDrift(const std::vector<VersionDrift>& drift, std::string& out);

  const std::string version_;
  const int64_t start_time_unix_seconds_;
  // Built once in the constructor, so lookups need no lock.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> series_;
  std::vector<const MethodSeries*> ordered_;  // by name, for a stable exposition
  MethodSeries* other_;
  std::atomic<int64_t> ingested_batches_ = 0;
  std::atomic<int64_t> ingest_duplicate_batches_ = 0;
  std::atomic<int64_t> ingested_values_ = 0;
  std::atomic<int64_t> ingested_bytes_ = 0;
  std::atomic<int64_t> normalized_values_ = 0;
  std::atomic<int64_t> normalized_bytes_ = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_OBSERVABILITY_SERVER_METRICS_H_
