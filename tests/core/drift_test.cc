// Drift measures against independent computations on the raw values: exact rational
// moments (GMP) for the standardised mean difference and the variance ratio, the exact
// two-sample KS statistic from the sorted values for the bound the sketches state, and a
// direct recount of every value into the reported bins for PSI and JS.
#include "core/drift.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/ingest_delta.h"
#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"

namespace normd {
namespace {

// [N, channels] values, one column per channel.
using Columns = std::vector<std::vector<double>>;

DatasetSpec SpecOf(int64_t channels, bool sketch, HistogramEdges edges = {}) {
  DatasetSpec spec;
  spec.name = "drift";
  spec.layout = Layout::kNC;
  spec.channels = channels;
  if (sketch) spec.sketch = QuantileSketchSpec{};
  spec.histogram_edges = std::move(edges);
  return spec;
}

SplitStatistics StatisticsOf(const DatasetSpec& spec, const Columns& columns) {
  const size_t n = columns[0].size(), channels = columns.size();
  std::vector<double> rows(n * channels);
  for (size_t i = 0; i < n; ++i) {
    for (size_t c = 0; c < channels; ++c) rows[i * channels + c] = columns[c][i];
  }
  const std::vector<int64_t> shape = {static_cast<int64_t>(n), static_cast<int64_t>(channels)};
  const ValidatedTensor batch =
      *ValidateTensor(TensorView{DType::kFloat64, shape, std::as_bytes(std::span(rows))});
  IngestDelta delta(spec);
  EXPECT_TRUE(delta.AddBatch(Split::kTest, batch).ok());
  DatasetStatistics stats = DatasetStatistics::Empty(spec);
  delta.ApplyTo(stats);
  return stats.split(Split::kTest);
}

// sup |F_a - F_b| over every value, from the sorted samples.
double ExactKs(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d,
                 std::abs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

// The fraction of `values` in each bin [e_i, e_i+1), the last one closed.
std::vector<double> Recount(const std::vector<double>& values, const std::vector<double>& edges) {
  std::vector<double> counts(edges.size() - 1, 0.0);
  for (double v : values) {
    for (size_t b = 0; b + 1 < edges.size(); ++b) {
      const bool last = b + 2 == edges.size();
      if (v >= edges[b] && (v < edges[b + 1] || (last && v <= edges[b + 1]))) {
        counts[b] += 1;
        break;
      }
    }
  }
  for (double& c : counts) c /= static_cast<double>(values.size());
  return counts;
}

void ExpectMeasures(const ChannelDrift& d, const std::vector<double>& a,
                    const std::vector<double>& b) {
  const testing::ExactMoments ea = testing::ComputeExactMoments(a);
  const testing::ExactMoments eb = testing::ComputeExactMoments(b);
  const mpq_class pooled = (ea.m2 / ea.count + eb.m2 / eb.count) / 2;
  const double smd = mpq_class(eb.mean - ea.mean).get_d() / std::sqrt(pooled.get_d());
  EXPECT_NEAR(d.standardized_mean_difference.value, smd, 1e-12 * std::max(1.0, std::abs(smd)));
  EXPECT_NEAR(d.variance_ratio.value, eb.PopulationVariance() / ea.PopulationVariance(),
              1e-12 * d.variance_ratio.value);
  const double ks = ExactKs(a, b);
  EXPECT_LE(d.ks.value, ks + 1e-12);
  EXPECT_GE(d.ks.value + d.ks.error, ks - 1e-12);
  const std::vector<double> p = Recount(a, d.bin_edges), q = Recount(b, d.bin_edges);
  ASSERT_EQ(d.reference_fractions.size(), p.size());
  double psi = 0, js = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(d.reference_fractions[i], p[i], 1e-15) << i;
    EXPECT_NEAR(d.candidate_fractions[i], q[i], 1e-15) << i;
    const double pf = std::max(p[i], kPsiFloor), qf = std::max(q[i], kPsiFloor);
    psi += (qf - pf) * std::log(qf / pf);
    const double m = (p[i] + q[i]) / 2;
    if (p[i] > 0) js += p[i] * std::log2(p[i] / m) / 2;
    if (q[i] > 0) js += q[i] * std::log2(q[i] / m) / 2;
  }
  EXPECT_NEAR(d.psi.value, psi, 1e-12);
  EXPECT_NEAR(d.js_divergence.value, js, 1e-12);
}

Columns Normal(std::mt19937_64& rng, size_t n, double mean, double sd, size_t channels) {
  std::normal_distribution<double> noise(mean, sd);
  Columns columns(channels, std::vector<double>(n));
  for (auto& column : columns) {
    for (double& v : column) v = noise(rng);
  }
  return columns;
}

TEST(DriftTest, MeasuresMatchTheValuesOnSketchBins) {
  std::mt19937_64 rng(3);
  const DatasetSpec spec = SpecOf(2, true);
  Columns a = Normal(rng, 6000, 1, 1, 2), b = Normal(rng, 4000, 1.3, 1.5, 2);
  for (double& v : b[1]) v = std::round(v * 8) / 8;  // ties and values on bucket edges
  for (const bool equal_width : {false, true}) {
    const absl::StatusOr<DriftReport> report =
        CompareStatistics(StatisticsOf(spec, a), StatisticsOf(spec, b), spec, DriftThresholds{}, 12,
                          "a", "b", equal_width);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->bins, DriftBins::kSketch);
    for (size_t c = 0; c < 2; ++c) {
      SCOPED_TRACE(c);
      ExpectMeasures(report->channels[c], a[c], b[c]);
      EXPECT_LE(report->channels[c].reference_fractions.size(), 12u);
      EXPECT_EQ(report->channels[c].level, DriftLevel::kFail);  // 0.24 sd and 2.25x
    }
  }
}

TEST(DriftTest, SketchesAtDifferentResolutionsAlign) {
  std::mt19937_64 rng(5);
  DatasetSpec spec = SpecOf(1, true);
  spec.sketch->max_buckets = 64;  // the wide side coarsens several times
  const Columns a = Normal(rng, 3000, 100, 1, 1), b = Normal(rng, 3000, 100, 40, 1);
  const SplitStatistics sa = StatisticsOf(spec, a), sb = StatisticsOf(spec, b);
  ASSERT_NE(sa.sketches[0].resolution, sb.sketches[0].resolution);
  const absl::StatusOr<DriftReport> report =
      CompareStatistics(sa, sb, spec, DriftThresholds{}, 10, "a", "b");
  ASSERT_TRUE(report.ok());
  ExpectMeasures(report->channels[0], a[0], b[0]);
}

TEST(DriftTest, FixedHistogramBinsWithValuesOutside) {
  std::mt19937_64 rng(7);
  const DatasetSpec spec = SpecOf(1, false, HistogramEdges{{{-1, -0.5, 0, 0.5, 1}}});
  const Columns a = Normal(rng, 5000, 0, 1, 1), b = Normal(rng, 5000, 0.2, 1, 1);
  const absl::StatusOr<DriftReport> report = CompareStatistics(
      StatisticsOf(spec, a), StatisticsOf(spec, b), spec, DriftThresholds{}, 10, "a", "b");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->bins, DriftBins::kFixedHistogram);
  const ChannelDrift& d = report->channels[0];
  EXPECT_EQ(d.bin_edges.size(), 7u);  // below, four bins, above
  ExpectMeasures(d, a[0], b[0]);
}

TEST(DriftTest, IdenticalDataScoresZeroAndEmptySidesAreRefused) {
  std::mt19937_64 rng(11);
  const DatasetSpec spec = SpecOf(1, true);
  const Columns a = Normal(rng, 2000, 5, 2, 1);
  const SplitStatistics s = StatisticsOf(spec, a);
  const absl::StatusOr<DriftReport> same =
      CompareStatistics(s, s, spec, DriftThresholds{}, 10, "a", "b");
  ASSERT_TRUE(same.ok());
  const ChannelDrift& d = same->channels[0];
  EXPECT_EQ(d.standardized_mean_difference.value, 0);
  EXPECT_EQ(d.variance_ratio.value, 1);
  EXPECT_EQ(d.ks.value, 0);
  EXPECT_EQ(d.psi.value, 0);
  EXPECT_EQ(d.js_divergence.value, 0);
  EXPECT_EQ(same->level, DriftLevel::kPass);
  const SplitStatistics empty = DatasetStatistics::Empty(spec).split(Split::kTest);
  const absl::StatusOr<DriftReport> refused =
      CompareStatistics(s, empty, spec, DriftThresholds{}, 10, "the train split", "traffic");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("traffic of dataset \"drift\" holds no values"),
            absl::string_view::npos)
      << refused.status();
  EXPECT_EQ(CompareStatistics(s, s, spec, DriftThresholds{}, 0, "a", "b").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DriftTest, ThresholdsDecideLevelsAndAreChecked) {
  DriftThresholds thresholds;
  EXPECT_TRUE(ValidateDriftThresholds(thresholds).ok());
  thresholds.psi = {0.3, 0.2};
  EXPECT_EQ(ValidateDriftThresholds(thresholds).code(), absl::StatusCode::kInvalidArgument);
  thresholds = {};
  thresholds.variance_ratio = {0.5, 2};  // a ratio limit below 1 can never pass
  EXPECT_EQ(ValidateDriftThresholds(thresholds).code(), absl::StatusCode::kInvalidArgument);
  thresholds = {};
  thresholds.ks.warn = NAN;
  EXPECT_EQ(ValidateDriftThresholds(thresholds).code(), absl::StatusCode::kInvalidArgument);

  std::mt19937_64 rng(13);
  const DatasetSpec spec = SpecOf(1, true);
  const Columns a = Normal(rng, 4000, 0, 1, 1), b = Normal(rng, 4000, 0.15, 1, 1);
  const SplitStatistics sa = StatisticsOf(spec, a), sb = StatisticsOf(spec, b);
  const DriftLevel by_default = CompareStatistics(sa, sb, spec, DriftThresholds{}, 10, "a", "b")
                                    ->channels[0]
                                    .standardized_mean_difference.level;
  EXPECT_EQ(by_default, DriftLevel::kWarn);  // 0.15 sd: past 0.1, short of 0.25
  thresholds = {};
  thresholds.standardized_mean_difference = {0.01, 0.02};
  EXPECT_EQ(CompareStatistics(sa, sb, spec, thresholds, 10, "a", "b")
                ->channels[0]
                .standardized_mean_difference.level,
            DriftLevel::kFail);
}

}  // namespace
}  // namespace normd
