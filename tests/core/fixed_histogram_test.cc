// Fixed-edge histograms against a direct count (every value tested against every bin,
// numpy.histogram's rule), with weights and the pool; hostile edges and untrusted
// histograms against their statuses.
#include "core/fixed_histogram.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace normd {
namespace {

// numpy.histogram's count of one value: bins [e_i, e_i+1), the last one closed.
void CountDirectly(const std::vector<double>& edges, double v, double w, FixedHistogram& h) {
  if (v < edges.front()) {
    h.below += w;
    return;
  }
  if (v > edges.back()) {
    h.above += w;
    return;
  }
  for (size_t b = 0; b + 1 < edges.size(); ++b) {
    const bool last = b + 2 == edges.size();
    if (v >= edges[b] && (v < edges[b + 1] || (last && v == edges[b + 1]))) {
      h.counts[b] += w;
      return;
    }
  }
}

TEST(FixedHistogramTest, CountsMatchADirectCountOnEveryEdgeAndWeight) {
  std::mt19937_64 rng(51);
  std::normal_distribution<double> noise(0.0, 2.0);
  const std::vector<int64_t> shape = {40, 3, 50};  // NCHW: runs of 50
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNCHW, 3, shape);
  std::vector<double> values(40 * 3 * 50);
  for (double& v : values) v = std::round(noise(rng) * 4) / 4;  // many values on the edges
  values[7] = NAN;
  values[8] = INFINITY;  // non-finite values are never counted
  const HistogramEdges edges{{{-3, -1, 0, 0.5, 1, 3}, {-10, 10}, {-0.25, 0, 0.25}}};
  ASSERT_TRUE(ValidateHistogramEdges(edges, 3).ok());
  std::vector<double> weights(40);
  for (double& w : weights) w = static_cast<double>(rng() % 4) / 2;  // 0 (masked) to 1.5
  weights[0] = 1;
  const std::vector<int64_t> weight_shape = {40};
  std::vector<double> storage;
  const SampleWeights resolved = *ResolveSampleWeights(
      {DType::kFloat64, weight_shape, std::as_bytes(std::span(weights))}, shape, "w", storage);
  const TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  for (const bool weighted : {false, true}) {
    std::vector<FixedHistogram> want = EmptyFixedHistograms(edges, 3);
    for (size_t i = 0; i < values.size(); ++i) {
      const size_t c = i / 50 % 3;
      const double w = weighted ? weights[i / 150] : 1.0;
      if (w > 0 && std::isfinite(values[i])) CountDirectly(edges.Of(c), values[i], w, want[c]);
    }
    WorkerPool pool(2);
    for (WorkerPool* p : {static_cast<WorkerPool*>(nullptr), &pool}) {
      std::vector<FixedHistogram> got = EmptyFixedHistograms(edges, 3);
      AddBatchToFixedHistograms(view, geometry, edges, got, p, weighted ? &resolved : nullptr);
      for (size_t c = 0; c < 3; ++c) {
        SCOPED_TRACE("channel " + std::to_string(c) + (weighted ? " weighted" : ""));
        EXPECT_EQ(got[c].counts, want[c].counts);
        EXPECT_EQ(got[c].below, want[c].below);
        EXPECT_EQ(got[c].above, want[c].above);
      }
    }
  }
}

TEST(FixedHistogramTest, HostileEdgesGetPreciseStatuses) {
  const auto message = [](HistogramEdges edges, int64_t channels = 2) {
    const absl::Status status = ValidateHistogramEdges(edges, channels);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_NE(message({{{0, 1}, {0, 1}, {0, 1}}}).find("one per channel (2), got 3"),
            std::string::npos);
  EXPECT_NE(message({{{1}}}).find("holds 1 edges; expected 2 to 10001"), std::string::npos);
  EXPECT_NE(message({{{0, 1, 1}}}).find("histogram_edges[0][2] is 1; expected finite, strictly"),
            std::string::npos);
  EXPECT_NE(message({{{0, NAN}}}).find("[0][1] is nan"), std::string::npos);
  EXPECT_NE(message({{{0, 1}, {2, -INFINITY}}}).find("histogram_edges[1][1] is -inf"),
            std::string::npos);
  EXPECT_NE(message({{std::vector<double>(10002)}}).find("holds 10002 edges"), std::string::npos);
  std::vector<double> wide(10001);
  for (size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<double>(i);
  EXPECT_NE(message({{wide}}, 200).find("2000000 bins over all channels; at most 1048576"),
            std::string::npos);
  EXPECT_TRUE(ValidateHistogramEdges({{wide}}, 100).ok());
  EXPECT_TRUE(ValidateHistogramEdges({}, 100).ok());
}

TEST(FixedHistogramTest, UntrustedHistogramsAreChecked) {
  const std::vector<double> edges = {0, 1, 2, 3};
  ChannelMoments m;
  m.count = 6;
  m.min = 0.5;
  m.max = 2.5;
  const FixedHistogram good{{2, 3, 1}, 0, 0};
  EXPECT_TRUE(ValidateFixedHistogram(good, edges, m, "h").ok());
  const auto message = [&](FixedHistogram h, const ChannelMoments& moments) {
    return std::string(ValidateFixedHistogram(h, edges, moments, "h").message());
  };
  EXPECT_NE(message({{2, 3}, 0, 0}, m).find("holds 2 bins; the dataset's edges make 3"),
            std::string::npos);
  EXPECT_NE(message({{2, -3, 1}, 0, 0}, m).find("negative or not finite"), std::string::npos);
  EXPECT_NE(message({{2, 3, 2}, 0, 0}, m)
                .find("counts 7 (bins, below and above); the "
                      "channel's moments count 6"),
            std::string::npos);
  EXPECT_NE(message({{2, 3, 0}, 1, 0}, m).find("outside the bins of the channel's [min, max]"),
            std::string::npos);
  ChannelMoments weighted = m;
  weighted.weighted = true;
  weighted.weight_sum = {3.0, 0};
  EXPECT_NE(message(good, weighted).find("moments weigh 3"), std::string::npos);
  EXPECT_TRUE(ValidateFixedHistogram({{1, 1.5, 0.5}, 0, 0}, edges, weighted, "h").ok());
}

}  // namespace
}  // namespace normd
