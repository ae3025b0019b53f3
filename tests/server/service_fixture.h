// The fixture of the service tests: a real normd on an ephemeral loopback port,
// backed by a real RocksDB in a temporary directory, and a client of it.
#ifndef NORMD_TESTS_SERVER_SERVICE_FIXTURE_H_
#define NORMD_TESTS_SERVER_SERVICE_FIXTURE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/cpp/normd_client.h"
#include "gtest/gtest.h"
#include "server/normd_server.h"
#include "tests/support/exact_moments.h"
#include "tests/support/loopback_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensors.h"

namespace normd::testing {

inline constexpr int kMaxMessageBytes = 4 << 20;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  // `adjust` may change the options (limits) before the server starts.
  void StartServer(const std::function<void(ServerOptions&)>& adjust = {}) {
    ServerOptions options = LoopbackServerOptions(dir_.path());
    options.limits.max_message_bytes = kMaxMessageBytes;
    if (adjust) adjust(options);
    absl::StatusOr<std::unique_ptr<NormdServer>> server = NormdServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = NormdClient::Connect(server_->address());
  }

  void RestartServer(const std::function<void(ServerOptions&)>& adjust = {}) {
    client_.reset();
    server_->Shutdown(absl::Seconds(5));
    server_->Wait();
    server_.reset();
    StartServer(adjust);
  }

  void Create(const std::string& name, v1::Layout layout, int64_t channels) {
    v1::DatasetSpec spec;
    spec.set_name(name);
    spec.set_layout(layout);
    spec.set_channels(channels);
    ASSERT_TRUE(client_->CreateDataset(spec).ok());
  }

  // A one-channel [N, 1] dataset that keeps a batch-norm running average.
  void CreateRunningAverage(const std::string& name, double momentum) {
    v1::DatasetSpec spec;
    spec.set_name(name);
    spec.set_layout(v1::LAYOUT_NC);
    spec.set_channels(1);
    spec.mutable_running_average()->set_momentum(momentum);
    ASSERT_TRUE(client_->CreateDataset(spec).ok());
  }

  absl::StatusOr<v1::IngestResponse> Ingest(const std::string& name, v1::Split split,
                                            std::vector<v1::Tensor> batches,
                                            WriterPosition writer = {}) {
    std::unique_ptr<IngestStream> stream = client_->StartIngest(name, std::move(writer));
    for (v1::Tensor& batch : batches) {
      if (!stream->Write(split, std::move(batch)).ok()) break;
    }
    return stream->Finish();
  }

  std::string StatsBytes(const std::string& name, uint64_t version,
                         v1::Split split = v1::SPLIT_TRAIN) {
    absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats(name, version, split);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->SerializeAsString() : "";
  }

  TempDir dir_;
  std::unique_ptr<NormdServer> server_;
  std::unique_ptr<NormdClient> client_;
};

inline void ExpectCode(const absl::Status& status, absl::StatusCode code,
                       absl::string_view fragment) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(fragment), absl::string_view::npos)
      << "message \"" << status.message() << "\" lacks \"" << fragment << "\"";
}

// NCHW [n, 3, 4, 4] float32 values; channel c ~ N(10c, c + 1).
inline std::vector<float> ImageBatch(int n, uint64_t seed) {
  std::vector<float> values(n * 3 * 16);
  const std::vector<double> noise = GaussianValues(values.size(), 0.0, 1.0, seed);
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t c = (i / 16) % 3;
    values[i] = static_cast<float>(10.0 * c + (c + 1) * noise[i]);
  }
  return values;
}

// Batch k of a writer's numbered sequence: [2, 2] values that differ per batch.
inline v1::Tensor NumberedBatch(uint64_t k) {
  const auto v = static_cast<double>(k);
  return Float64Tensor({2, 2}, {v, 2 * v, v * v, 1 / v});
}

inline std::vector<v1::Tensor> NumberedBatches(uint64_t first, uint64_t last) {
  std::vector<v1::Tensor> batches;
  for (uint64_t k = first; k <= last; ++k) batches.push_back(NumberedBatch(k));
  return batches;
}

// A Normalize request for the batch-statistics schemes, without a dataset.
inline v1::NormalizeRequest BatchStatisticsRequest(v1::Layout layout, v1::Tensor input) {
  v1::NormalizeRequest request;
  request.set_layout(layout);
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  *request.mutable_input() = std::move(input);
  return request;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SERVER_SERVICE_FIXTURE_H_
