// Fit, freeze and normalise through a real server: statistics against exact
// arithmetic, frozen versions, every normalisation family, health.
#include <cmath>
#include <memory>
#include <vector>

#include "core/kernels/narrow_float.h"
#include "gtest/gtest.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

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
  const std::vector<float> out = DecodeTensor<float>(normalized->output());
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
  EXPECT_EQ(DecodeTensor<double>(old_version->output())[0], 1.0);  // (3 - 2) / 1
  request.set_version(0);  // latest: mean 101, variance (1 + 9 + 1e4 + 9e4) / 4 - 101^2
  absl::StatusOr<v1::NormalizeResponse> latest = client_->Normalize(request);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version(), 2u);
  const auto exact = ComputeExactMoments(std::vector<double>{1, 3, 100, 300});
  EXPECT_NEAR(DecodeTensor<double>(latest->output())[0],
              (3.0 - exact.Mean()) / std::sqrt(exact.PopulationVariance()), 1e-15);
}

// Narrow outputs are the float64 result rounded once (the rounding itself is checked
// against GCC's _Float16 and a brute-force search in narrow_float_test).
TEST_F(ServiceTest, Float16AndBFloat16Outputs) {
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(1.0 / 3);
  request.mutable_scale()->set_offset(-7.0);
  const std::vector<double> x = GaussianValues(1000, 5.0, 1000.0, 3);
  *request.mutable_input() = Float64Tensor({1000}, x);
  for (const auto& [dtype, round] : std::vector<std::pair<v1::DType, uint16_t (*)(double)>>{
           {v1::DTYPE_FLOAT16, DoubleToFloat16Bits}, {v1::DTYPE_BFLOAT16, DoubleToBFloat16Bits}}) {
    request.set_output_dtype(dtype);
    absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->output().dtype(), dtype);
    const std::vector<uint16_t> out = DecodeTensor<uint16_t>(response->output());
    ASSERT_EQ(out.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(out[i], round(x[i] * (1.0 / 3) + -7.0)) << i;
  }
}

TEST_F(ServiceTest, ScaleNeedsNoDataset) {
  v1::NormalizeRequest request;
  request.mutable_scale()->set_factor(1.0 / 255);
  std::vector<uint8_t> pixels = {0, 51, 102, 255};
  *request.mutable_input() = MakeTensor(v1::DTYPE_UINT8, {1, 2, 2}, pixels);
  absl::StatusOr<v1::NormalizeResponse> response = client_->Normalize(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const std::vector<float> out = DecodeTensor<float>(response->output());
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
  EXPECT_DOUBLE_EQ(DecodeTensor<double>(response->output())[0],
                   (5.5 - 3.5) / std::sqrt(4.75 + 0.25) * 2.0 + 1.0);
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
  const std::vector<double> y = DecodeTensor<double>(response->output());
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
  EXPECT_EQ(DecodeTensor<double>(response->output()), y);

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
  EXPECT_EQ(DecodeTensor<double>(response->output()), (std::vector<double>{-1, 1}));

  RestartServer();
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("bn", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  // Unbiased batch variance 2: mean 0 -> 1, var 1 -> 1.5, as torch.nn.BatchNorm1d.
  EXPECT_EQ(stats->stats().num_batches_tracked(), 1u);
  EXPECT_EQ(stats->stats().running_mean(0), 1.0);
  EXPECT_EQ(stats->stats().running_var(0), 1.5);
  EXPECT_EQ(stats->stats().count(0), 2u);
}

TEST_F(ServiceTest, HealthServiceReportsServing) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client_->CheckHealth();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(ServiceTest, ServesTcpAndAUnixSocketAtOnce) {
  const std::string socket = "unix:" + dir_.path() + "/grpc.sock";
  RestartServer([&](ServerOptions& options) { options.listen = "127.0.0.1:0," + socket; });
  ASSERT_EQ(server_->addresses().size(), 2u);
  EXPECT_EQ(server_->addresses()[1], socket);
  EXPECT_EQ(server_->address(), absl::StrCat("127.0.0.1:", server_->port()));
  std::unique_ptr<NormdClient> local = NormdClient::Connect(socket);
  v1::DatasetSpec spec;
  spec.set_name("both");
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(2);
  ASSERT_TRUE(local->CreateDataset(spec).ok());
  std::unique_ptr<IngestStream> stream = local->StartIngest("both");
  ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, NumberedBatch(3)).ok());
  ASSERT_TRUE(stream->Finish().ok());
  // What one listener wrote, the other reads.
  EXPECT_EQ(client_->GetStats("both", 0, v1::SPLIT_TRAIN)->stats().batches(), 1u);
}

}  // namespace
}  // namespace normd::testing
