// The Normd service through a real gRPC server on an ephemeral loopback port,
// backed by a real RocksDB in a temporary directory.
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "client/cpp/exactly_once_fit.h"
#include "client/cpp/normd_client.h"
#include "core/kernels/narrow_float.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/normd_server.h"
#include "tests/support/exact_moments.h"
#include "tests/support/loopback_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensors.h"

namespace normd {
namespace {

using testing::ComputeExactMoments;
using testing::Float32Tensor;
using testing::Float64Tensor;
using testing::GaussianValues;
using testing::RelativeError;

constexpr int kMaxMessageBytes = 4 << 20;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  // `adjust` may change the options (limits) before the server starts.
  void StartServer(const std::function<void(ServerOptions&)>& adjust = {}) {
    ServerOptions options = testing::LoopbackServerOptions(dir_.path());
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

  testing::TempDir dir_;
  std::unique_ptr<NormdServer> server_;
  std::unique_ptr<NormdClient> client_;
};

void ExpectCode(const absl::Status& status, absl::StatusCode code, absl::string_view fragment) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(fragment), absl::string_view::npos)
      << "message \"" << status.message() << "\" lacks \"" << fragment << "\"";
}

// NCHW [n, 3, 4, 4] float32 values; channel c ~ N(10c, c + 1).
std::vector<float> ImageBatch(int n, uint64_t seed) {
  std::vector<float> values(n * 3 * 16);
  const std::vector<double> noise = GaussianValues(values.size(), 0.0, 1.0, seed);
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t c = (i / 16) % 3;
    values[i] = static_cast<float>(10.0 * c + (c + 1) * noise[i]);
  }
  return values;
}

TEST_F(ServiceTest, FitFreezeNormalizeMatchesReference) {
  Create("images", v1::LAYOUT_NCHW, 3);
  std::vector<std::vector<double>> per_channel(3);
  for (int stream = 0; stream < 3; ++stream) {
    std::vector<v1::Tensor> batches;
    for (int b = 0; b < 4; ++b) {
      const int n = 1 + b + stream;
      const std::vector<float> values = ImageBatch(n, 100 * stream + b);
      for (size_t i = 0; i < values.size(); ++i) per_channel[(i / 16) % 3].push_back(values[i]);
      batches.push_back(Float32Tensor({n, 3, 4, 4}, values));
    }
    absl::StatusOr<v1::IngestResponse> response =
        Ingest("images", v1::SPLIT_TRAIN, std::move(batches));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->batches(), 4u);
  }
  absl::StatusOr<v1::FreezeResponse> frozen = client_->Freeze("images");
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  EXPECT_EQ(frozen->version(), 1u);

  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("images", 1, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok()) << stats.status();
  for (int c = 0; c < 3; ++c) {
    const auto exact = ComputeExactMoments(per_channel[c]);
    EXPECT_EQ(stats->stats().count(c), exact.count);
    EXPECT_LE(RelativeError(stats->stats().mean(c), exact.Mean()), 1e-12);
    EXPECT_LE(RelativeError(stats->stats().variance(c), exact.PopulationVariance()), 1e-12);
    EXPECT_LE(RelativeError(stats->stats().sample_variance(c), exact.SampleVariance()), 1e-12);
    EXPECT_EQ(stats->stats().min(c),
              *std::min_element(per_channel[c].begin(), per_channel[c].end()));
  }

  const std::vector<float> fresh = ImageBatch(2, 999);
  v1::NormalizeRequest request;
  request.set_dataset("images");
  *request.mutable_input() = Float32Tensor({2, 3, 4, 4}, fresh);
  request.mutable_zscore()->set_eps(1e-5);
  absl::StatusOr<v1::NormalizeResponse> normalized = client_->Normalize(request);
  ASSERT_TRUE(normalized.ok()) << normalized.status();
  EXPECT_EQ(normalized->version(), 1u);
  EXPECT_EQ(normalized->output().dtype(), v1::DTYPE_FLOAT32);
  const std::vector<float> out = testing::DecodeTensor<float>(normalized->output());
  ASSERT_EQ(out.size(), fresh.size());
  for (size_t i = 0; i < fresh.size(); ++i) {
    const int c = (i / 16) % 3;
    const auto exact = ComputeExactMoments(per_channel[c]);
    const long double expected =
        (fresh[i] - static_cast<long double>(exact.Mean())) /
        std::sqrt(static_cast<long double>(exact.PopulationVariance()) + 1e-5L);
    EXPECT_NEAR(out[i], static_cast<double>(expected), 2e-6 * std::max(1.0L, std::fabs(expected)));
  }
}

TEST_F(ServiceTest, OnlyTrainSplitChangesFittedStatistics) {
  Create("tab", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({3, 2}, {1, 10, 2, 20, 3, 30})}).ok());
  const std::string before = StatsBytes("tab", 0);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TEST, {Float64Tensor({1, 2}, {1e6, -1e6})}).ok());
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_VALIDATION, {Float64Tensor({2, 2}, {5, 6, 7, 8})}).ok());
  EXPECT_EQ(StatsBytes("tab", 0), before);
  absl::StatusOr<v1::GetStatsResponse> test = client_->GetStats("tab", 0, v1::SPLIT_TEST);
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(test->stats().mean(0), 1e6);
  absl::StatusOr<v1::GetStatsResponse> validation =
      client_->GetStats("tab", 0, v1::SPLIT_VALIDATION);
  ASSERT_TRUE(validation.ok());
  EXPECT_EQ(validation->stats().mean(1), 7.0);
  EXPECT_EQ(validation->stats().samples(), 2u);
}

TEST_F(ServiceTest, FrozenVersionsNeverChange) {
  Create("tab", v1::LAYOUT_NC, 1);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {1, 3})}).ok());
  ASSERT_EQ(client_->Freeze("tab")->version(), 1u);
  const std::string v1_bytes = StatsBytes("tab", 1);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {100, 300})}).ok());
  ASSERT_EQ(client_->Freeze("tab")->version(), 2u);
  EXPECT_EQ(StatsBytes("tab", 1), v1_bytes);

  v1::NormalizeRequest request;
  request.set_dataset("tab");
  request.set_version(1);
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  request.mutable_zscore()->set_eps(0);
  *request.mutable_input() = Float64Tensor({1, 1}, {3.0});
  absl::StatusOr<v1::NormalizeResponse> old_version = client_->Normalize(request);
  ASSERT_TRUE(old_version.ok()) << old_version.status();
  EXPECT_EQ(testing::DecodeTensor<double>(old_version->output())[0], 1.0);  // (3 - 2) / 1
  request.set_version(0);  // latest: mean 101, variance (1 + 9 + 1e4 + 9e4) / 4 - 101^2
  absl::StatusOr<v1::NormalizeResponse> latest = client_->Normalize(request);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version(), 2u);
  const auto exact = ComputeExactMoments(std::vector<double>{1, 3, 100, 300});
  EXPECT_NEAR(testing::DecodeTensor<double>(latest->output())[0],
              (3.0 - exact.Mean()) / std::sqrt(exact.PopulationVariance()), 1e-15);
}

TEST_F(ServiceTest, AStreamIsAppliedWholeOrNotAtAll) {
  Create("tab", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({1, 2}, {1, 2})}).ok());
  const std::string before = StatsBytes("tab", 0);
  absl::StatusOr<v1::IngestResponse> response =
      Ingest("tab", v1::SPLIT_TRAIN,
             {Float64Tensor({2, 2}, {1, 2, 3, 4}), Float64Tensor({1, 2}, {5, 6}),
              Float64Tensor({1, 3}, {7, 8, 9})});
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument,
             "batch 2 rejected, nothing from this stream was applied");
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument,
             "expects 2 channels at axis 1, got 3");
  EXPECT_EQ(StatsBytes("tab", 0), before);

  response = Ingest("tab", v1::SPLIT_TRAIN,
                    {Float64Tensor({1, 2}, {1, 2}), Float64Tensor({1, 2}, {NAN, 2})});
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument, "non-finite value");
  EXPECT_EQ(StatsBytes("tab", 0), before);
}

TEST_F(ServiceTest, RestartKeepsEveryAcknowledgedBatchAndVersion) {
  Create("tab", v1::LAYOUT_NC, 3);
  Create("img", v1::LAYOUT_NHWC, 3);
  const std::vector<double> values = GaussianValues(300, 1e8, 1e-2, 5);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({100, 3}, values)}).ok());
  ASSERT_TRUE(client_->Freeze("tab").ok());
  ASSERT_TRUE(
      Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({50, 3}, GaussianValues(150, 5, 1, 6))}).ok());
  ASSERT_TRUE(
      Ingest("tab", v1::SPLIT_VALIDATION, {Float64Tensor({2, 3}, {1, 2, 3, 4, 5, 6})}).ok());
  ASSERT_TRUE(
      Ingest("img", v1::SPLIT_TRAIN, {Float32Tensor({1, 2, 2, 3}, std::vector<float>(12, 0.5f))})
          .ok());
  const std::string live = StatsBytes("tab", 0);
  const std::string validation = StatsBytes("tab", 0, v1::SPLIT_VALIDATION);
  const std::string frozen = StatsBytes("tab", 1);
  const std::string img = StatsBytes("img", 0);
  const std::string info = client_->GetDataset("tab")->SerializeAsString();

  RestartServer();

  EXPECT_EQ(StatsBytes("tab", 0), live);
  EXPECT_EQ(StatsBytes("tab", 0, v1::SPLIT_VALIDATION), validation);
  EXPECT_EQ(StatsBytes("tab", 1), frozen);
  EXPECT_EQ(StatsBytes("img", 0), img);
  EXPECT_EQ(client_->GetDataset("tab")->SerializeAsString(), info);
  EXPECT_EQ(client_->Freeze("tab")->version(), 2u);  // numbering continues
}

TEST_F(ServiceTest, BadInputGetsPreciseStatus) {
  Create("tab", v1::LAYOUT_NC, 3);
  const v1::Tensor good = Float64Tensor({1, 3}, {1, 2, 3});

  ExpectCode(Ingest("missing", v1::SPLIT_TRAIN, {good}).status(), absl::StatusCode::kNotFound,
             "dataset \"missing\" does not exist");
  ExpectCode(client_->GetStats("missing", 0, v1::SPLIT_TRAIN).status(), absl::StatusCode::kNotFound,
             "missing");
  ExpectCode(client_->Freeze("tab").status(), absl::StatusCode::kFailedPrecondition,
             "no training data");

  v1::Tensor wrong_bytes = good;
  wrong_bytes.mutable_data()->pop_back();
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {wrong_bytes}).status(),
             absl::StatusCode::kInvalidArgument, "23 bytes, expected 24");
  v1::Tensor no_dtype = good;
  no_dtype.set_dtype(v1::DTYPE_UNSPECIFIED);
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {no_dtype}).status(),
             absl::StatusCode::kInvalidArgument, "batch.dtype must be one of");
  v1::Tensor unknown_dtype = good;
  unknown_dtype.set_dtype(static_cast<v1::DType>(77));
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {unknown_dtype}).status(),
             absl::StatusCode::kInvalidArgument, "got 77");
  ExpectCode(Ingest("tab", v1::SPLIT_UNSPECIFIED, {good}).status(),
             absl::StatusCode::kInvalidArgument, "split is unspecified");
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({1, 4}, {1, 2, 3, 4})}).status(),
             absl::StatusCode::kInvalidArgument, "expects 3 channels at axis 1, got 4");
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({0, 3}, {})}).status(),
             absl::StatusCode::kInvalidArgument, "got 0 at axis 0");
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {}).status(), absl::StatusCode::kInvalidArgument,
             "held no batch");
  {  // shapes that lie: negative, and a product past 2^63 with no data behind it
    v1::Tensor negative = good;
    negative.set_shape(0, -1);
    ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {negative}).status(),
               absl::StatusCode::kInvalidArgument, "got -1 at axis 0");
    v1::Tensor overflowing = good;
    overflowing.set_shape(0, int64_t{1} << 62);
    ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {overflowing}).status(),
               absl::StatusCode::kInvalidArgument, "has more than");
    v1::NormalizeRequest request;
    request.mutable_scale()->set_factor(2);
    *request.mutable_input() = overflowing;
    ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
               "has more than");
  }

  const std::vector<double> big((kMaxMessageBytes / 8 / 3 + 1) * 3, 1.0);
  ExpectCode(
      Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({int64_t(big.size() / 3), 3}, big)}).status(),
      absl::StatusCode::kResourceExhausted, "");

  {  // a raw stream that switches dataset halfway (IngestStream names the dataset once)
    Create("other", v1::LAYOUT_NC, 3);
    v1::Normd::Stub stub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::IngestResponse response;
    auto writer = stub.Ingest(&context, &response);
    v1::IngestRequest request;
    request.set_dataset("tab");
    request.set_split(v1::SPLIT_TRAIN);
    *request.mutable_batch() = good;
    writer->Write(request);
    request.set_dataset("other");
    writer->Write(request);
    writer->WritesDone();
    ExpectCode(FromGrpcStatus(writer->Finish()), absl::StatusCode::kInvalidArgument,
               "one stream feeds one dataset");
  }
  EXPECT_EQ(client_->GetStats("tab", 0, v1::SPLIT_TRAIN)->stats().count(0), 0u);

  v1::DatasetSpec spec;
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(3);
  spec.set_name("tab");
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kAlreadyExists,
             "already exists");
  for (const std::string& name :
       {std::string(), std::string(129, 'n'), std::string(10000, 'n'), std::string("a/b"),
        std::string(".."), std::string("x\0y", 3), std::string("caf\xc3\xa9")}) {
    spec.set_name(name);
    ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
               "dataset name");
    ExpectCode(client_->GetStats(name, 0, v1::SPLIT_TRAIN).status(),
               absl::StatusCode::kInvalidArgument, "dataset name");
  }
  // Invalid UTF-8 in a proto3 string never reaches normd: protobuf refuses to parse the
  // request and gRPC answers INTERNAL with no message. Nothing is created either way.
  spec.set_name("\xff\xfe");
  EXPECT_EQ(client_->CreateDataset(spec).status().code(), absl::StatusCode::kInternal);
  absl::StatusOr<std::vector<v1::DatasetInfo>> datasets = client_->ListDatasets();
  ASSERT_TRUE(datasets.ok());
  EXPECT_EQ(datasets->size(), 2u);  // tab and other
  spec.set_name("fine");
  spec.set_layout(static_cast<v1::Layout>(42));
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
             "spec.layout must be one of NC, NCHW, NHWC (1..3), got 42");
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(1 << 30);
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
             "channels must be in [1, 1048576], got 1073741824");

  v1::NormalizeRequest normalize;
  normalize.set_dataset("tab");
  *normalize.mutable_input() = good;
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "scheme is not set");
  normalize.mutable_zscore();
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kFailedPrecondition,
             "no frozen version");
  normalize.set_dataset("missing");
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kNotFound, "missing");
  normalize.set_dataset("tab");
  normalize.set_output_dtype(v1::DTYPE_UINT8);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "output_dtype must be FLOAT32, FLOAT64, FLOAT16 or BFLOAT16, got uint8");
  normalize.set_output_dtype(v1::DTYPE_FLOAT32);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {good, good}).ok());
  ASSERT_TRUE(client_->Freeze("tab").ok());
  normalize.set_version(9);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kNotFound,
             "no version 9; the latest is 1");
  normalize.set_version(0);
  *normalize.mutable_input() = Float64Tensor({1, 2}, {1, 2});
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "expects 3 channels at axis 1, got 2");
  // Constant channels (all batches were [1, 2, 3]) with eps = 0.
  *normalize.mutable_input() = good;
  normalize.mutable_zscore()->set_eps(0);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "var + eps must be positive");
  normalize.mutable_zscore()->clear_eps();
  EXPECT_TRUE(client_->Normalize(normalize).ok());
  EXPECT_EQ(client_->GetStats("tab", 0, v1::SPLIT_TRAIN)->stats().count(0), 2u);
}

// Narrow outputs are the float64 result rounded once (the rounding itself is checked
// against GCC's _Float16 and a brute-force search in narrow_float_test).
TEST_F(ServiceTest, Float16AndBFloat16Outputs) {
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(1.0 / 3);
  request.mutable_scale()->set_offset(-7.0);
  const std::vector<double> x = testing::GaussianValues(1000, 5.0, 1000.0, 3);
  *request.mutable_input() = testing::Float64Tensor({1000}, x);
  for (const auto& [dtype, round] : std::vector<std::pair<v1::DType, uint16_t (*)(double)>>{
           {v1::DTYPE_FLOAT16, DoubleToFloat16Bits}, {v1::DTYPE_BFLOAT16, DoubleToBFloat16Bits}}) {
    request.set_output_dtype(dtype);
    absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->output().dtype(), dtype);
    const std::vector<uint16_t> out = testing::DecodeTensor<uint16_t>(response->output());
    ASSERT_EQ(out.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(out[i], round(x[i] * (1.0 / 3) + -7.0)) << i;
  }
}

TEST_F(ServiceTest, ScaleNeedsNoDataset) {
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(1.0 / 255);
  std::vector<uint8_t> pixels = {0, 51, 102, 255};
  *request.mutable_input() = testing::MakeTensor(v1::DTYPE_UINT8, {1, 2, 2}, pixels);
  absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const std::vector<float> out = testing::DecodeTensor<float>(response->output());
  for (size_t i = 0; i < pixels.size(); ++i)
    EXPECT_EQ(out[i], static_cast<float>(pixels[i] / 255.0));
  EXPECT_EQ(response->version(), 0u);
  request.mutable_zscore();
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "needs a dataset");
}

TEST_F(ServiceTest, RunningAverageDatasetServesRunningStatistics) {
  CreateRunningAverage("bn", 0.5);
  // Batch means 2 and 6, unbiased variances 2 and 8.
  ASSERT_TRUE(
      Ingest("bn", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {1, 3}), Float64Tensor({2, 1}, {4, 8})})
          .ok());
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("bn", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  // mean: 0 -> 1 -> 3.5; var: 1 -> 1.5 -> 4.75.
  EXPECT_DOUBLE_EQ(stats->stats().running_mean(0), 3.5);
  EXPECT_DOUBLE_EQ(stats->stats().running_var(0), 4.75);
  EXPECT_EQ(stats->stats().num_batches_tracked(), 2u);
  EXPECT_EQ(stats->stats().mean(0), 4.0);  // exact moments are kept too
  ASSERT_TRUE(client_->Freeze("bn").ok());
  v1::NormalizeRequest request;
  request.set_dataset("bn");
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  request.mutable_batchnorm()->add_gamma(2.0);
  request.mutable_batchnorm()->add_beta(1.0);
  request.mutable_batchnorm()->set_eps(0.25);
  *request.mutable_input() = Float64Tensor({1, 1}, {5.5});
  absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_DOUBLE_EQ(testing::DecodeTensor<double>(response->output())[0],
                   (5.5 - 3.5) / std::sqrt(4.75 + 0.25) * 2.0 + 1.0);
}

// Batch k of a writer's numbered sequence: [2, 2] values that differ per batch.
v1::Tensor NumberedBatch(uint64_t k) {
  const auto v = static_cast<double>(k);
  return Float64Tensor({2, 2}, {v, 2 * v, v * v, 1 / v});
}

std::vector<v1::Tensor> NumberedBatches(uint64_t first, uint64_t last) {
  std::vector<v1::Tensor> batches;
  for (uint64_t k = first; k <= last; ++k) batches.push_back(NumberedBatch(k));
  return batches;
}

TEST_F(ServiceTest, AWritersResentBatchesAreCountedOnce) {
  Create("tabular", v1::LAYOUT_NC, 2);
  Create("clean", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("clean", v1::SPLIT_TRAIN, NumberedBatches(1, 5)).ok());
  const std::string clean = StatsBytes("clean", 0);

  absl::StatusOr<v1::IngestResponse> first =
      Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 2), {"job-7", 1});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->batches(), 2u);
  EXPECT_EQ(first->writer_sequence(), 2u);
  // The client lost the reply and resends 1..2 together with 3..5.
  absl::StatusOr<v1::IngestResponse> resent =
      Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 5), {"job-7", 1});
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->duplicate_batches(), 2u);
  EXPECT_EQ(resent->batches(), 3u);
  EXPECT_EQ(resent->writer_sequence(), 5u);
  // And once more, after a restart: nothing new.
  RestartServer();
  resent = Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 5), {"job-7", 1});
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->duplicate_batches(), 5u);
  EXPECT_EQ(resent->batches(), 0u);

  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("tabular", 0, v1::SPLIT_TRAIN);
  absl::StatusOr<v1::GetStatsResponse> expected = client_->GetStats("clean", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok() && expected.ok());
  EXPECT_EQ(stats->stats().SerializeAsString(), expected->stats().SerializeAsString());
  EXPECT_EQ(StatsBytes("clean", 0), clean);
}

TEST_F(ServiceTest, ConcurrentResendsOfOneWriterApplyEachBatchOnce) {
  Create("tabular", v1::LAYOUT_NC, 2);
  Create("clean", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("clean", v1::SPLIT_TRAIN, NumberedBatches(1, 12)).ok());
  // Eight clients resend overlapping ranges of one writer at once; an ABORTED stream
  // (overtaken by another's commit) is resent, as a client would.
  std::vector<std::thread> threads;
  std::atomic<int> failures = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t last = 4 + t;  // streams 1..4, 1..5, ..., 1..11
      for (int attempt = 0; attempt < 100; ++attempt) {
        absl::StatusOr<v1::IngestResponse> r =
            Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, last), {"shared", 1});
        if (r.ok()) return;
        if (r.status().code() != absl::StatusCode::kAborted) break;
      }
      ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 12), {"shared", 1}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString(),
            client_->GetStats("clean", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString());
}

TEST_F(ServiceTest, SequenceGapsAndBadIdentitiesChangeNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 4), {"w", 1}).ok());
  const std::string before = StatsBytes("tabular", 0);
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(6, 7), {"w", 6}).status(),
             absl::StatusCode::kFailedPrecondition,
             "writer \"w\" has committed up to sequence 4 in dataset \"tabular\"; the next "
             "batch must be 5, got 6");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"new-writer", 3}).status(),
             absl::StatusCode::kFailedPrecondition, "the next batch must be 1, got 3");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"w/../x", 5}).status(),
             absl::StatusCode::kInvalidArgument, "writer_id \"w/../x\" has a disallowed character");
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, NumberedBatches(1, 1), {"w", 0}).status(),
             absl::StatusCode::kInvalidArgument, "sequences start at 1");

  // A sequence that skips within the stream, and a writer that changes mid-stream,
  // sent message by message.
  const auto raw_ingest = [&](std::vector<std::pair<std::string, uint64_t>> identities) {
    auto stub = v1::Normd::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::IngestResponse response;
    auto writer = stub->Ingest(&context, &response);
    for (const auto& [writer_id, sequence] : identities) {
      v1::IngestRequest request;
      request.set_dataset("tabular");
      request.set_split(v1::SPLIT_TRAIN);
      request.set_writer_id(writer_id);
      request.set_sequence(sequence);
      *request.mutable_batch() = NumberedBatch(sequence);
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    return FromGrpcStatus(writer->Finish());
  };
  ExpectCode(raw_ingest({{"w", 5}, {"w", 7}}), absl::StatusCode::kInvalidArgument,
             "batch 1 rejected, nothing from this stream was applied: sequence must rise by one "
             "within a stream: expected 6, got 7");
  ExpectCode(raw_ingest({{"w", 5}, {"v", 6}}), absl::StatusCode::kInvalidArgument,
             "writer_id \"v\" differs from the stream's first batch, which named \"w\"");
  ExpectCode(raw_ingest({{"", 5}}), absl::StatusCode::kInvalidArgument,
             "sequence 5 without a writer_id");
  EXPECT_EQ(StatsBytes("tabular", 0), before);
  // Later batches may leave the writer empty; the stream keeps its first one.
  EXPECT_TRUE(raw_ingest({{"w", 5}, {"", 6}}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 6u);
}

TEST_F(ServiceTest, OversizedRequestsAreResourceExhaustedBeforeAnyWork) {
  RestartServer([](ServerOptions& options) { options.limits.max_request_elements = 1000; });
  Create("tabular", v1::LAYOUT_NC, 10);
  ASSERT_TRUE(
      Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({100, 10}, std::vector<double>(1000, 1.0))})
          .ok());
  ASSERT_TRUE(client_->Freeze("tabular").ok());
  const std::string before = StatsBytes("tabular", 0);
  ExpectCode(
      Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({101, 10}, std::vector<double>(1010, 1.0))})
          .status(),
      absl::StatusCode::kResourceExhausted,
      "batch 0 rejected, nothing from this stream was applied: the batch has 1010 values; "
      "this server takes at most 1000 per request (--max_request_elements)");
  EXPECT_EQ(StatsBytes("tabular", 0), before);
  v1::NormalizeRequest request;
  request.set_dataset("tabular");
  request.mutable_scale();
  *request.mutable_input() = Float64Tensor({101, 10}, std::vector<double>(1010, 1.0));
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kResourceExhausted,
             "the input has 1010 values");

  // A reply that could not be sent (u8 in, float64 out: 8x the request) is refused.
  RestartServer();
  Create("pixels", v1::LAYOUT_NC, 1);
  request.set_dataset("");
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  *request.mutable_input() =
      testing::MakeTensor(v1::DTYPE_UINT8, {1 << 20, 1}, std::vector<uint8_t>(1 << 20, 7));
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kResourceExhausted,
             "the reply would hold 8388608 bytes of values (1048576 float64), more than fit in "
             "a 4194304-byte message");
}

TEST_F(ServiceTest, ConcurrentIngestStreamsAreCapped) {
  RestartServer([](ServerOptions& options) { options.limits.max_concurrent_ingests = 2; });
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> first = client_->StartIngest("tabular");
  std::unique_ptr<IngestStream> second = client_->StartIngest("tabular");
  ASSERT_TRUE(first->Write(v1::SPLIT_TRAIN, NumberedBatch(1)).ok());
  ASSERT_TRUE(second->Write(v1::SPLIT_TRAIN, NumberedBatch(2)).ok());
  // Both streams hold their slots once their handlers run.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (server_->service().active_ingests() < 2 && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(server_->service().active_ingests(), 2);
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, {NumberedBatch(3)}).status(),
             absl::StatusCode::kResourceExhausted,
             "this server already serves 2 Ingest streams (--max_concurrent_ingests)");
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_TRUE(second->Finish().ok());
  EXPECT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, {NumberedBatch(3)}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 3u);
}

TEST_F(ServiceTest, AnExpiredDeadlineAppliesNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> stream =
      client_->StartIngest("tabular", {}, false, absl::Now() + absl::Milliseconds(300));
  // Keep the stream open, writing, until the deadline ends the call.
  for (uint64_t k = 1; stream->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok(); ++k) {
  }
  EXPECT_EQ(stream->Finish().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 0u);
}

TEST_F(ServiceTest, ACancelledStreamAppliesNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> stream = client_->StartIngest("tabular");
  ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, Float64Tensor({2, 2}, {1, 2, 3, 4})).ok());
  stream->Cancel();
  EXPECT_EQ(stream->Finish().status().code(), absl::StatusCode::kCancelled);
  // A later stream is the only one counted.
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({1, 2}, {5, 6})}).ok());
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("tabular", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stats().batches(), 1u);
  EXPECT_EQ(stats->stats().mean(0), 5.0);
}

// A Normalize request for the batch-statistics schemes, without a dataset.
v1::NormalizeRequest BatchStatisticsRequest(v1::Layout layout, v1::Tensor input) {
  v1::NormalizeRequest request;
  request.set_layout(layout);
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  *request.mutable_input() = std::move(input);
  return request;
}

TEST_F(ServiceTest, PerSampleFamiliesNeedNoDataset) {
  // Two samples [2, 2, 2] NCHW; group norm with one group standardises each sample.
  const std::vector<double> x = {1, 2, 3, 4, 10, 10, 10, 30};
  v1::NormalizeRequest request =
      BatchStatisticsRequest(v1::LAYOUT_NCHW, Float64Tensor({2, 2, 2}, x));
  request.mutable_groupnorm()->set_num_groups(1);
  request.mutable_groupnorm()->set_eps(0.0);
  absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->version(), 0u);
  const std::vector<double> y = testing::DecodeTensor<double>(response->output());
  // Sample 0: mean 2.5, variance 1.25. Sample 1: mean 15, variance 75.
  const std::vector<double> expected = {
      -1.5 / std::sqrt(1.25), -0.5 / std::sqrt(1.25), 0.5 / std::sqrt(1.25), 1.5 / std::sqrt(1.25),
      -5 / std::sqrt(75.0),   -5 / std::sqrt(75.0),   -5 / std::sqrt(75.0),  15 / std::sqrt(75.0)};
  ASSERT_EQ(y.size(), expected.size());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-15) << i;

  request.mutable_groupnorm()->set_num_groups(3);
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "divides the 2 channels, got 3");
  request.set_layout(v1::LAYOUT_UNSPECIFIED);
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "needs the input's layout");
  request.set_layout(static_cast<v1::Layout>(17));
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "layout must be one of NC, NCHW, NHWC (1..3), got 17");

  v1::NormalizeRequest layer =
      BatchStatisticsRequest(v1::LAYOUT_UNSPECIFIED, Float64Tensor({2, 4}, x));
  layer.mutable_layernorm()->add_normalized_shape(4);
  layer.mutable_layernorm()->set_eps(0.0);
  response = client_->Normalize(layer);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(testing::DecodeTensor<double>(response->output()), y);

  Create("images", v1::LAYOUT_NHWC, 2);
  request.set_dataset("images");
  request.set_layout(v1::LAYOUT_NCHW);
  request.mutable_groupnorm()->set_num_groups(1);
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "does not match dataset \"images\", whose layout is NHWC");
}

TEST_F(ServiceTest, BatchNormTrainingUpdatesAreDurableAndTrainOnly) {
  CreateRunningAverage("bn", 0.5);
  v1::NormalizeRequest request =
      BatchStatisticsRequest(v1::LAYOUT_UNSPECIFIED, Float64Tensor({2, 1}, {1, 3}));
  request.set_dataset("bn");
  request.mutable_batchnorm_training()->set_update_statistics(true);
  request.mutable_batchnorm_training()->set_eps(0.0);

  request.mutable_batchnorm_training()->set_split(v1::SPLIT_VALIDATION);
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "only training data may change a fit: split must be TRAIN, got validation");
  request.mutable_batchnorm_training()->set_split(v1::SPLIT_UNSPECIFIED);
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument, "got none");

  request.mutable_batchnorm_training()->set_split(v1::SPLIT_TRAIN);
  absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
  ASSERT_TRUE(response.ok()) << response.status();
  // Batch mean 2, biased variance 1: outputs -1 and 1.
  EXPECT_EQ(testing::DecodeTensor<double>(response->output()), (std::vector<double>{-1, 1}));

  RestartServer();
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("bn", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  // Unbiased batch variance 2: mean 0 -> 1, var 1 -> 1.5, as torch.nn.BatchNorm1d.
  EXPECT_EQ(stats->stats().num_batches_tracked(), 1u);
  EXPECT_EQ(stats->stats().running_mean(0), 1.0);
  EXPECT_EQ(stats->stats().running_var(0), 1.5);
  EXPECT_EQ(stats->stats().count(0), 2u);
}

TEST_F(ServiceTest, DeleteRemovesDatasetAndVersions) {
  Create("gone", v1::LAYOUT_NC, 1);
  ASSERT_TRUE(Ingest("gone", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {1, 2})}).ok());
  ASSERT_TRUE(client_->Freeze("gone").ok());
  ASSERT_TRUE(client_->DeleteDataset("gone").ok());
  ExpectCode(client_->GetDataset("gone").status(), absl::StatusCode::kNotFound, "gone");
  ExpectCode(client_->DeleteDataset("gone"), absl::StatusCode::kNotFound, "gone");
  Create("gone", v1::LAYOUT_NC, 1);
  absl::StatusOr<v1::DatasetInfo> info = client_->GetDataset("gone");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->latest_version(), 0u);
  ExpectCode(client_->GetStats("gone", 1, v1::SPLIT_TRAIN).status(),
             absl::StatusCode::kFailedPrecondition, "no frozen version");
  RestartServer();
  EXPECT_EQ(client_->GetDataset("gone")->latest_version(), 0u);
}

TEST_F(ServiceTest, ListPagesThroughDatasetsInNameOrder) {
  for (const char* name : {"e", "b", "d", "a", "c"}) Create(name, v1::LAYOUT_NC, 1);
  v1::Normd::Stub stub(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  v1::ListDatasetsRequest request;
  request.set_page_size(2);
  std::vector<std::string> names;
  int pages = 0;
  do {
    grpc::ClientContext context;
    v1::ListDatasetsResponse response;
    ASSERT_TRUE(stub.ListDatasets(&context, request, &response).ok());
    for (const auto& info : response.datasets()) names.push_back(info.spec().name());
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(client_->ListDatasets()->size(), 5u);
}

TEST_F(ServiceTest, ConcurrentStreamsAreEachCountedOnce) {
  Create("shared", v1::LAYOUT_NC, 2);
  constexpr int kThreads = 4;
  constexpr int kStreamsPerThread = 5;
  std::vector<std::vector<double>> sent(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int s = 0; s < kStreamsPerThread; ++s) {
        const std::vector<double> values = GaussianValues(2 * 64, 1e4 * t, 1.0 + s, t * 100 + s);
        absl::StatusOr<v1::IngestResponse> response =
            Ingest("shared", v1::SPLIT_TRAIN, {Float64Tensor({64, 2}, values)});
        EXPECT_TRUE(response.ok()) << response.status();
        sent[t].insert(sent[t].end(), values.begin(), values.end());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<double> channel0;
  for (const auto& values : sent) {
    for (size_t i = 0; i < values.size(); i += 2) channel0.push_back(values[i]);
  }
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("shared", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  const auto exact = ComputeExactMoments(channel0);
  EXPECT_EQ(stats->stats().count(0), exact.count);
  EXPECT_EQ(stats->stats().batches(), uint64_t{kThreads * kStreamsPerThread});
  EXPECT_LE(RelativeError(stats->stats().mean(0), exact.Mean()), 1e-12);
  EXPECT_LE(RelativeError(stats->stats().variance(0), exact.PopulationVariance()), 1e-12);
}

// Readers normalise against the latest version while a writer ingests and freezes new
// ones. Each reply must be exactly the output of the one version it names, computed again
// afterwards with that version pinned: a half-published version (some channels old, some
// new) would match none. The writer publishes version k + 1 only after every reader has
// been served version k, so every version is seen while the next one is being written.
TEST_F(ServiceTest, NormalizeNeverSeesAHalfUpdatedVersion) {
  constexpr int kChannels = 256;
  constexpr uint64_t kVersions = 10;
  constexpr int kReaders = 2;
  Create("moving", v1::LAYOUT_NC, kChannels);
  auto batch = [&](uint64_t k) {
    return Float64Tensor({4, kChannels}, GaussianValues(4 * kChannels, 100.0 * k, 1.0 + k, k));
  };
  ASSERT_TRUE(Ingest("moving", v1::SPLIT_TRAIN, {batch(1)}).ok());
  ASSERT_TRUE(client_->Freeze("moving").ok());

  v1::NormalizeRequest request;
  request.set_dataset("moving");
  request.mutable_zscore();
  *request.mutable_input() =
      Float64Tensor({2, kChannels}, GaussianValues(2 * kChannels, 0, 500, 99));
  std::atomic<uint64_t> newest_possible{1};  // raised before each Freeze is sent
  std::vector<std::atomic<uint64_t>> served(kReaders);
  std::vector<std::vector<v1::NormalizeResponse>> replies(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    served[r] = 0;
    readers.emplace_back([&, r] {
      while (served[r].load() < kVersions) {
        absl::StatusOr<v1::NormalizeResponse> reply = client_->Normalize(request);
        ASSERT_TRUE(reply.ok()) << reply.status();
        EXPECT_LE(reply->version(), newest_possible.load());
        served[r] = std::max(served[r].load(), reply->version());
        replies[r].push_back(*std::move(reply));
      }
    });
  }
  for (uint64_t k = 2; k <= kVersions; ++k) {
    for (const std::atomic<uint64_t>& reader : served) {
      while (reader.load() < k - 1) std::this_thread::yield();
    }
    ASSERT_TRUE(Ingest("moving", v1::SPLIT_TRAIN, {batch(k)}).ok());
    newest_possible = k;
    ASSERT_TRUE(client_->Freeze("moving").ok());
  }
  for (std::thread& reader : readers) reader.join();

  std::map<uint64_t, std::string> pinned;
  for (uint64_t k = 1; k <= kVersions; ++k) {
    request.set_version(k);
    absl::StatusOr<v1::NormalizeResponse> reply = client_->Normalize(request);
    ASSERT_TRUE(reply.ok()) << reply.status();
    pinned[k] = reply->output().data();
  }
  for (uint64_t k = 2; k <= kVersions; ++k) ASSERT_NE(pinned[k], pinned[k - 1]);
  size_t checked = 0;
  for (const auto& reader_replies : replies) {
    for (const v1::NormalizeResponse& reply : reader_replies) {
      ASSERT_TRUE(pinned.contains(reply.version())) << reply.version();
      EXPECT_EQ(reply.output().data(), pinned[reply.version()]) << "version " << reply.version();
      ++checked;
    }
  }
  EXPECT_GE(checked, kReaders * kVersions);
}

// The C++ client's Fit across a server that goes down between two streams: the open
// stream is refused (the server is gone), Fit resends it once the server is back on the
// same address and data directory, and every batch counts once. Fitting the same batches
// again as the same writer (a restarted job resuming) applies nothing.
TEST_F(ServiceTest, FitResendsAcrossARestartAndCountsEachBatchOnce) {
  Create("resumed", v1::LAYOUT_NC, 1);
  const std::string address = server_->address();
  constexpr int kBatches = 10;
  std::vector<std::vector<double>> batches;
  for (int i = 0; i < kBatches; ++i) batches.push_back(GaussianValues(20, 1e6 + i, 1.0 + i, i));
  std::vector<double> all;
  for (const auto& batch : batches) all.insert(all.end(), batch.begin(), batch.end());

  // Streams of two batches (160 bytes each). When the source is asked for the fifth
  // batch, two streams are acknowledged: the server goes down then, so the third
  // stream's first send fails, and comes back at the first resend.
  int taken = 0;
  auto source = [&]() -> absl::StatusOr<std::optional<v1::Tensor>> {
    if (taken == kBatches) return std::nullopt;
    if (taken == 4) {
      server_->Shutdown(absl::ZeroDuration());
      server_->Wait();
      server_.reset();
    }
    const std::vector<double>& values = batches[taken++];
    return Float64Tensor({int64_t(values.size()), 1}, values);
  };
  FitOptions options;
  options.writer_id = "job-1";
  options.stream_bytes = 2 * 20 * 8;
  options.retry_for = absl::Seconds(60);
  std::vector<absl::StatusCode> resend_causes;
  options.on_resend = [&](const absl::Status& why) {
    resend_causes.push_back(why.code());
    if (server_ == nullptr) {
      StartServer([&](ServerOptions& server_options) { server_options.listen = address; });
    }
  };
  std::unique_ptr<NormdClient> client = NormdClient::Connect(address);
  absl::StatusOr<FitResult> result = Fit(*client, "resumed", v1::SPLIT_TRAIN, source, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(resend_causes, std::vector<absl::StatusCode>{absl::StatusCode::kUnavailable});
  EXPECT_EQ(result->resends, 1);
  EXPECT_EQ(result->batches, uint64_t{kBatches});
  EXPECT_EQ(result->duplicate_batches, 0u);
  EXPECT_EQ(result->writer_sequence, uint64_t{kBatches});

  const auto exact = ComputeExactMoments(all);
  absl::StatusOr<v1::GetStatsResponse> stats = client->GetStats("resumed", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stats().count(0), exact.count);
  EXPECT_EQ(stats->stats().batches(), uint64_t{kBatches});
  EXPECT_LE(RelativeError(stats->stats().mean(0), exact.Mean()), 1e-12);
  EXPECT_LE(RelativeError(stats->stats().variance(0), exact.PopulationVariance()), 1e-12);

  taken = 0;
  resend_causes.clear();
  const std::string before = StatsBytes("resumed", 0);
  result = Fit(*client, "resumed", v1::SPLIT_TRAIN, source, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->batches, 0u);
  EXPECT_EQ(result->duplicate_batches, uint64_t{kBatches});
  EXPECT_EQ(StatsBytes("resumed", 0), before);
}

// A failing source stops Fit with its error; the stream it was filling is never sent.
TEST_F(ServiceTest, FitStopsAtASourceErrorAndSendsNothingOfThatStream) {
  Create("partial", v1::LAYOUT_NC, 1);
  int taken = 0;
  auto source = [&]() -> absl::StatusOr<std::optional<v1::Tensor>> {
    if (++taken == 4) return absl::DataLossError("the data loader broke");
    return Float64Tensor({2, 1}, {1.0 * taken, 2.0 * taken});
  };
  FitOptions options;
  options.stream_bytes = 2 * 2 * 8;  // streams of two batches: the first is sent
  absl::StatusOr<FitResult> result = Fit(*client_, "partial", v1::SPLIT_TRAIN, source, options);
  ExpectCode(result.status(), absl::StatusCode::kDataLoss, "the data loader broke");
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("partial", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stats().batches(), 2u);
  EXPECT_EQ(stats->stats().count(0), 4u);
}

TEST_F(ServiceTest, HealthServiceReportsServing) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client_->CheckHealth();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace normd
