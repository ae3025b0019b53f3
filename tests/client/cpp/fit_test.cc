// The C++ client's exactly-once Fit against a real server.
#include <memory>
#include <vector>

#include "client/cpp/exactly_once_fit.h"
#include "gtest/gtest.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

// Fit against the same real server the service tests start.
using FitTest = ServiceTest;

// The C++ client's Fit across a server that goes down between two streams: the open
// stream is refused (the server is gone), Fit resends it once the server is back on the
// same address and data directory, and every batch counts once. Fitting the same batches
// again as the same writer (a restarted job resuming) applies nothing.
TEST_F(FitTest, FitResendsAcrossARestartAndCountsEachBatchOnce) {
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
TEST_F(FitTest, FitStopsAtASourceErrorAndSendsNothingOfThatStream) {
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

}  // namespace
}  // namespace normd::testing

namespace normd::testing {
namespace {

// Fit with local reduction: each batch summarised here (normd::Moments), up to three
// summaries per message and commit; the same statistics as fitting the batches, the
// same exactly-once accounting per batch.
TEST_F(FitTest, LocalFitSendsSummariesWithTheSameGuarantees) {
  Create("summaries", v1::LAYOUT_NC, 2);
  Create("batches", v1::LAYOUT_NC, 2);
  std::vector<std::vector<double>> batches;
  for (int i = 0; i < 10; ++i) batches.push_back(GaussianValues(2 * (5 + i), 30.0, 2.0, i));
  const auto fit = [&](const std::string& dataset, FitOptions options) {
    size_t taken = 0;
    return Fit(
        *client_, dataset, v1::SPLIT_TRAIN,
        [&]() -> absl::StatusOr<std::optional<v1::Tensor>> {
          if (taken == batches.size()) return std::nullopt;
          const std::vector<double>& values = batches[taken++];
          return Float64Tensor({int64_t(values.size() / 2), 2}, values);
        },
        std::move(options));
  };
  FitOptions local{.writer_id = "job", .local = true, .summaries_per_stream = 3};
  absl::StatusOr<FitResult> first = fit("summaries", local);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->batches, 10u);
  EXPECT_EQ(first->writer_sequence, 10u);
  absl::StatusOr<FitResult> again = fit("summaries", local);  // a restarted job resuming
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->batches, 0u);
  EXPECT_EQ(again->duplicate_batches, 10u);
  ASSERT_TRUE(fit("batches", {}).ok());
  const v1::Statistics got = client_->GetStats("summaries", 0, v1::SPLIT_TRAIN)->stats();
  const v1::Statistics want = client_->GetStats("batches", 0, v1::SPLIT_TRAIN)->stats();
  EXPECT_EQ(got.batches(), want.batches());
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(got.count(c), want.count(c));
    EXPECT_NEAR(got.mean(c), want.mean(c), 1e-15 * std::abs(want.mean(c)));
    EXPECT_NEAR(got.variance(c), want.variance(c), 1e-12 * want.variance(c));
  }
  // A malformed batch (9 values for a [4, 2] tensor) is refused here, and the stream
  // it would have ended is not sent: nothing of it is applied.
  batches.push_back(std::vector<double>(9, 1.0));
  absl::StatusOr<FitResult> refused = fit("summaries", {.local = true});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(client_->GetStats("summaries", 0, v1::SPLIT_TRAIN)->stats().batches(), 10u);
}

}  // namespace
}  // namespace normd::testing
