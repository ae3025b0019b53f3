// The C++ client's in-process side against a real server: a summary made by
// normd::Moments and sent with IngestStream::WriteSummary fits what the batch itself
// fits, and LocalNormalizer gives the bytes of the server's Normalize for every frozen
// scheme and output dtype.
#include <cstring>
#include <vector>

#include "client/cpp/local.h"
#include "tests/server/service_fixture.h"
#include "wire/core_proto.h"

namespace normd::testing {
namespace {

using LocalTest = ServiceTest;

TensorView ViewOf(const std::vector<int64_t>& shape, const std::vector<double>& values) {
  return {
      DType::kFloat64, shape,
      std::span(reinterpret_cast<const std::byte*>(values.data()), values.size() * sizeof(double))};
}

TEST_F(LocalTest, ASummaryFitsWhatItsBatchFits) {
  Create("summaries", v1::LAYOUT_NCHW, 3);
  Create("batches", v1::LAYOUT_NCHW, 3);
  const std::vector<int64_t> shape = {6, 3, 5, 5};
  std::unique_ptr<IngestStream> stream = client_->StartIngest("summaries", {"job", 1});
  std::vector<MomentsSummary> summaries;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const std::vector<double> values = GaussianValues(6 * 3 * 25, 40.0, 3.0, seed);
    const QuantileSketchSpec sketch;  // the dataset's: the defaults
    absl::StatusOr<MomentsSummary> summary =
        Moments(ViewOf(shape, values), Layout::kNCHW, 3, NonFinitePolicy::kReject, &sketch);
    ASSERT_TRUE(summary.ok()) << summary.status();
    summaries.push_back(*summary);
    ASSERT_TRUE(Ingest("batches", v1::SPLIT_TRAIN, {Float64Tensor(shape, values)}).ok());
  }
  ASSERT_TRUE(stream->WriteSummaries(v1::SPLIT_TRAIN, std::span(summaries).first(2)).ok());
  ASSERT_TRUE(stream->WriteSummaries(v1::SPLIT_TRAIN, std::span(summaries).last(1)).ok());
  absl::StatusOr<v1::IngestResponse> reply = stream->Finish();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->batches(), 3u);
  EXPECT_EQ(reply->samples(), 18u);
  EXPECT_EQ(reply->writer_sequence(), 3u);  // two messages, three batches
  const double ranks[] = {0, 0.1, 0.5, 0.99, 1};
  const v1::Statistics got = client_->GetStats("summaries", 0, v1::SPLIT_TRAIN, ranks, 8)->stats();
  const v1::Statistics want = client_->GetStats("batches", 0, v1::SPLIT_TRAIN, ranks, 8)->stats();
  ASSERT_EQ(got.distributions_size(), 3);
  for (int c = 0; c < 3; ++c) {
    // The sketches do not depend on where the values were reduced: the same answers.
    EXPECT_EQ(got.distributions(c).SerializeAsString(), want.distributions(c).SerializeAsString());
    EXPECT_EQ(got.distributions(c).quantile_size(), 5);
    EXPECT_EQ(got.count(c), want.count(c));
    EXPECT_EQ(got.min(c), want.min(c));
    EXPECT_EQ(got.max(c), want.max(c));
    EXPECT_NEAR(got.mean(c), want.mean(c), 1e-15 * std::abs(want.mean(c)));
    EXPECT_NEAR(got.variance(c), want.variance(c), 1e-12 * want.variance(c));
  }
  // A batch of the wrong channel count is refused here, as the server would.
  const std::vector<double> wide(6 * 4 * 25, 1.0);
  EXPECT_EQ(Moments(ViewOf({6, 4, 5, 5}, wide), Layout::kNCHW, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LocalTest, LocalNormalizerGivesTheServersBytes) {
  Create("frozen", v1::LAYOUT_NC, 4);
  ASSERT_TRUE(
      Ingest("frozen", v1::SPLIT_TRAIN, {Float64Tensor({50, 4}, GaussianValues(200, 1e3, 5.0, 7))})
          .ok());
  ASSERT_TRUE(client_->Freeze("frozen").ok());
  const std::vector<double> input = GaussianValues(4 * 9, 1e3, 5.0, 8);
  struct Case {
    FrozenScheme scheme;
    const char* dataset;
    void (*set)(v1::NormalizeRequest&);
  };
  const Case cases[] = {
      {ZScoreScheme{1e-3}, "frozen",
       [](v1::NormalizeRequest& r) { r.mutable_zscore()->set_eps(1e-3); }},
      {MinMaxScheme{-1.0, 2.0}, "frozen",
       [](v1::NormalizeRequest& r) {
         r.mutable_minmax()->set_low(-1.0);
         r.mutable_minmax()->set_high(2.0);
       }},
      {BatchNormScheme{{1.5, 0.5, 2.0, 1.0}, {0.1, 0.2, 0.3, 0.4}, kDefaultEps}, "frozen",
       [](v1::NormalizeRequest& r) {
         for (double g : {1.5, 0.5, 2.0, 1.0}) r.mutable_batchnorm()->add_gamma(g);
         for (double b : {0.1, 0.2, 0.3, 0.4}) r.mutable_batchnorm()->add_beta(b);
       }},
      {FixedScaleScheme{1.0 / 255, -0.5}, "",
       [](v1::NormalizeRequest& r) {
         r.mutable_scale()->set_factor(1.0 / 255);
         r.mutable_scale()->set_offset(-0.5);
       }},
  };
  for (const Case& c : cases) {
    absl::StatusOr<LocalNormalizer> local =
        LocalNormalizer::Fetch(*client_, c.dataset, 0, c.scheme);
    ASSERT_TRUE(local.ok()) << local.status();
    absl::StatusOr<LocalNormalizer> inverse =
        LocalNormalizer::Fetch(*client_, c.dataset, 0, c.scheme, /*inverse=*/true);
    ASSERT_TRUE(inverse.ok()) << inverse.status();
    for (const v1::DType out :
         {v1::DTYPE_FLOAT32, v1::DTYPE_FLOAT64, v1::DTYPE_FLOAT16, v1::DTYPE_BFLOAT16}) {
      v1::NormalizeRequest request;
      request.set_dataset(c.dataset);
      c.set(request);
      request.set_output_dtype(out);
      *request.mutable_input() = Float64Tensor({9, 4}, input);
      absl::StatusOr<v1::NormalizeResponse> remote = client_->Normalize(request);
      ASSERT_TRUE(remote.ok()) << remote.status();
      const DType out_dtype = *DTypeFromProto(out, "output_dtype");
      std::vector<std::byte> mine(36 * ElementSize(out_dtype));
      ASSERT_TRUE(
          local->Normalize(ViewOf({9, 4}, input), *ValidateOutputDType(out_dtype), mine).ok());
      ASSERT_EQ(remote->output().data().size(), mine.size());
      EXPECT_EQ(std::memcmp(mine.data(), remote->output().data().data(), mine.size()), 0)
          << request.ShortDebugString();
      // Denormalize: the server's inverse map, and the local one, byte for byte.
      absl::StatusOr<v1::NormalizeResponse> back = client_->Denormalize(request);
      ASSERT_TRUE(back.ok()) << back.status();
      ASSERT_TRUE(
          inverse->Normalize(ViewOf({9, 4}, input), *ValidateOutputDType(out_dtype), mine).ok());
      EXPECT_EQ(std::memcmp(mine.data(), back->output().data().data(), mine.size()), 0)
          << "inverse " << request.ShortDebugString();
    }
  }
  EXPECT_EQ(LocalNormalizer::Fetch(*client_, "frozen", 7, ZScoreScheme{}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace normd::testing
