// Sample weights and masks: the weighted fit against exact rational arithmetic on
// every walk and weight shape, masks against the fit of the kept values, integer
// weights against repeated values, the weighted sketch against its reference and a
// weighted quantile oracle, and hostile weights against their statuses.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/batch_moments.h"
#include "core/batch_sketch.h"
#include "core/moments_summary.h"
#include "core/sample_weights.h"
#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"
#include "tests/support/layout_oracle.h"

namespace normd {
namespace {

using testing::ChannelAxis;
using testing::ComputeExactWeightedMoments;
using testing::CoordinateAt;
using testing::ElementCount;
using testing::RelativeError;

constexpr double kExactness = 1e-12;

struct WeightedCase {
  Layout layout;
  std::vector<int64_t> shape;
  size_t weight_rank;  // the weights' shape: the first weight_rank dims of the batch's
  DType dtype;
};

// Weights a caller sends: zeros (masked), ones, dyadic fractions and a few large ones.
double RandomWeight(std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0:
      return 0.0;
    case 1:
      return 1.0;
    case 2:
      return 1000.0 + static_cast<double>(rng() % 7);
    default:
      return std::ldexp(static_cast<double>(1 + rng() % 255), -5);
  }
}

class WeightedFitTest : public ::testing::TestWithParam<WeightedCase> {};

TEST_P(WeightedFitTest, EveryChannelMatchesExactWeightedArithmetic) {
  const WeightedCase& param = GetParam();
  const int64_t axis = ChannelAxis(param.layout, param.shape.size());
  const int64_t channels = param.shape[axis];
  const int64_t n = ElementCount(param.shape);
  const std::vector<int64_t> weight_shape(param.shape.begin(),
                                          param.shape.begin() + param.weight_rank);
  const int64_t weights_n = ElementCount(weight_shape);
  const int64_t per_weight = n / weights_n;
  std::mt19937_64 rng(21);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> weights(weights_n);
  for (double& w : weights) w = RandomWeight(rng);
  weights[0] = 1.0;  // at least one positive
  std::vector<std::byte> bytes(n * ElementSize(param.dtype));
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = CoordinateAt(param.shape, axis, i);
    const double v = 1e4 * (c % 5) + (1 + c % 3) * noise(rng);
    if (param.dtype == DType::kFloat32) {
      StoreElement<float>(bytes.data(), i, static_cast<float>(v));
      values[i] = static_cast<float>(v);
    } else if (param.dtype == DType::kFloat64) {
      StoreElement<double>(bytes.data(), i, v);
      values[i] = v;
    } else {
      const auto u = static_cast<uint8_t>(std::clamp(128.0 + 20 * noise(rng), 0.0, 255.0));
      StoreElement<uint8_t>(bytes.data(), i, u);
      values[i] = u;
    }
    // A masked value may hold anything: NaN where the dtype has one.
    if (weights[i / per_weight] == 0 && param.dtype == DType::kFloat32 && i % 3 == 0) {
      StoreElement<float>(bytes.data(), i, NAN);
    }
  }
  const TensorView weight_view{DType::kFloat64, weight_shape, std::as_bytes(std::span(weights))};
  std::vector<double> storage;
  const absl::StatusOr<SampleWeights> resolved =
      ResolveSampleWeights(weight_view, param.shape, "weights", storage);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const TensorView view{param.dtype, param.shape, bytes};
  const ChannelGeometry geometry = *ResolveGeometry(param.layout, channels, param.shape);
  std::vector<ChannelMoments> fit(channels), pooled(channels), reference(channels);
  ASSERT_TRUE(
      ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, fit, nullptr, &*resolved).ok());
  WorkerPool pool(2);
  ASSERT_TRUE(
      ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, pooled, &pool, &*resolved)
          .ok());
  ASSERT_TRUE(
      ComputeBatchMomentsReference(view, geometry, NonFinitePolicy::kReject, reference, &*resolved)
          .ok());

  std::vector<std::vector<double>> channel_values(channels), channel_weights(channels);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = CoordinateAt(param.shape, axis, i);
    channel_values[c].push_back(values[i]);
    channel_weights[c].push_back(weights[i / per_weight]);
  }
  for (int64_t c = 0; c < channels; ++c) {
    SCOPED_TRACE("channel " + std::to_string(c));
    const auto exact = ComputeExactWeightedMoments(channel_values[c], channel_weights[c]);
    for (const ChannelMoments* m : {&fit[c], &reference[c]}) {
      ASSERT_TRUE(m->weighted);
      ASSERT_EQ(m->count, exact.count);
      if (exact.count == 0) continue;
      EXPECT_LE(RelativeError(m->Weight().value(), exact.weight.get_d()), kExactness);
      EXPECT_LE(RelativeError(m->WeightSquares().value(), exact.weight_squares.get_d()),
                kExactness);
      EXPECT_LE(
          std::fabs(m->Mean() - exact.Mean()),
          kExactness * std::max(std::fabs(exact.Mean()), std::sqrt(exact.PopulationVariance())));
      EXPECT_LE(RelativeError(m->PopulationVariance(), exact.PopulationVariance()), kExactness);
      if (exact.weight > 1) {
        EXPECT_LE(RelativeError(m->SampleVariance(), exact.FrequencyVariance()), kExactness);
      }
      if (exact.count > 1) {
        EXPECT_LE(RelativeError(m->ReliabilityVariance(), exact.ReliabilityVariance()), kExactness);
      }
      double lo = INFINITY, hi = -INFINITY;
      for (size_t k = 0; k < channel_values[c].size(); ++k) {
        if (channel_weights[c][k] == 0) continue;
        lo = std::min(lo, channel_values[c][k]);
        hi = std::max(hi, channel_values[c][k]);
      }
      EXPECT_EQ(m->Min(), lo);
      EXPECT_EQ(m->Max(), hi);
    }
    EXPECT_EQ(pooled[c].mean.hi, fit[c].mean.hi);  // the pool changes no bit
    EXPECT_EQ(pooled[c].m2.hi, fit[c].m2.hi);
    EXPECT_EQ(pooled[c].weight_sum.hi, fit[c].weight_sum.hi);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WeightedFitTest,
    ::testing::Values(
        // Tabular rows, one weight per sample (rows walk with many samples per row).
        WeightedCase{Layout::kNC, {20000, 3}, 1, DType::kFloat32},
        WeightedCase{Layout::kNC, {3000, 64}, 1, DType::kFloat64},
        WeightedCase{Layout::kNC, {500, 7}, 2, DType::kFloat32},  // one weight per value
        // Images: per sample, per channel plane, per value (runs walk).
        WeightedCase{Layout::kNCHW, {12, 3, 40, 40}, 1, DType::kFloat32},
        WeightedCase{Layout::kNCHW, {12, 3, 40, 40}, 2, DType::kUInt8},
        WeightedCase{Layout::kNCHW, {4, 2, 70, 90}, 4, DType::kFloat64},
        WeightedCase{Layout::kNCHW, {2, 2, 9000}, 3, DType::kFloat32},
        // Sequences [N, T, F] with a padding mask per time step.
        WeightedCase{Layout::kNHWC, {64, 50, 5}, 2, DType::kFloat32},
        WeightedCase{Layout::kNHWC, {8, 16, 16, 3}, 1, DType::kUInt8}),
    [](const ::testing::TestParamInfo<WeightedCase>& info) {
      std::string name = std::string(LayoutName(info.param.layout)) + "_" +
                         std::string(DTypeName(info.param.dtype)) + "_w" +
                         std::to_string(info.param.weight_rank);
      for (int64_t d : info.param.shape) name += "_" + std::to_string(d);
      return name;
    });

std::vector<ChannelMoments> Fit(const std::vector<double>& values, const std::vector<double>* w) {
  const std::vector<int64_t> shape = {static_cast<int64_t>(values.size()), 1};
  const TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  std::vector<ChannelMoments> out(1);
  std::vector<double> storage;
  std::optional<SampleWeights> resolved;
  if (w != nullptr) {
    const std::vector<int64_t> weight_shape = {static_cast<int64_t>(w->size())};
    resolved = *ResolveSampleWeights({DType::kFloat64, weight_shape, std::as_bytes(std::span(*w))},
                                     shape, "weights", storage);
  }
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNC, 1, shape);
  EXPECT_TRUE(ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, out, nullptr,
                                  resolved ? &*resolved : nullptr)
                  .ok());
  return out;
}

// A mask of 0s and 1s is the fit of the kept values: count, mean, both variances.
TEST(WeightedMomentsTest, MaskEqualsTheFitOfTheKeptValues) {
  std::mt19937_64 rng(22);
  std::normal_distribution<double> noise(3.0, 2.0);
  std::vector<double> values(5000), mask(5000), kept;
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = noise(rng);
    mask[i] = rng() % 3 == 0 ? 0.0 : 1.0;
    if (mask[i] == 1) kept.push_back(values[i]);
  }
  const ChannelMoments masked = Fit(values, &mask)[0];
  const ChannelMoments plain = Fit(kept, nullptr)[0];
  EXPECT_EQ(masked.count, plain.count);
  EXPECT_EQ(masked.Weight().value(), static_cast<double>(plain.count));
  EXPECT_LE(RelativeError(masked.Mean(), plain.Mean()), 1e-14);
  EXPECT_LE(RelativeError(masked.PopulationVariance(), plain.PopulationVariance()), 1e-13);
  EXPECT_LE(RelativeError(masked.SampleVariance(), plain.SampleVariance()), 1e-13);
  EXPECT_LE(RelativeError(masked.ReliabilityVariance(), plain.SampleVariance()), 1e-13);
  EXPECT_EQ(masked.EffectiveCount(), static_cast<double>(plain.count));
}

// Integer weights are frequencies: the fit of each value repeated w times, and
// SampleVariance is its Bessel-corrected variance.
TEST(WeightedMomentsTest, IntegerWeightsEqualRepeatedValues) {
  std::mt19937_64 rng(23);
  std::normal_distribution<double> noise(-7.0, 0.5);
  std::vector<double> values(3000), weights(3000), repeated;
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = noise(rng);
    weights[i] = static_cast<double>(rng() % 4);
    repeated.insert(repeated.end(), static_cast<size_t>(weights[i]), values[i]);
  }
  const ChannelMoments weighted = Fit(values, &weights)[0];
  const ChannelMoments plain = Fit(repeated, nullptr)[0];
  EXPECT_EQ(weighted.Weight().value(), static_cast<double>(repeated.size()));
  EXPECT_LE(RelativeError(weighted.Mean(), plain.Mean()), 1e-14);
  EXPECT_LE(RelativeError(weighted.PopulationVariance(), plain.PopulationVariance()), 1e-13);
  EXPECT_LE(RelativeError(weighted.SampleVariance(), plain.SampleVariance()), 1e-13);
}

// Weighted and unweighted moments merge as one weighted set (unweighted weigh 1).
TEST(WeightedMomentsTest, MergingWeightedAndUnweightedIsExact) {
  std::mt19937_64 rng(24);
  std::normal_distribution<double> noise(1e6, 1.0);
  std::vector<double> a(2000), b(3000), wa(2000);
  for (double& v : a) v = noise(rng);
  for (double& v : b) v = noise(rng);
  for (double& w : wa) w = std::ldexp(static_cast<double>(rng() % 64), -3);
  wa[0] = 1;
  for (bool weighted_first : {true, false}) {
    ChannelMoments merged;
    const ChannelMoments ma = Fit(a, &wa)[0], mb = Fit(b, nullptr)[0];
    MergeMoments(weighted_first ? ma : mb, merged);
    MergeMoments(weighted_first ? mb : ma, merged);
    std::vector<double> all = a, weights = wa;
    all.insert(all.end(), b.begin(), b.end());
    weights.insert(weights.end(), b.size(), 1.0);
    const auto exact = ComputeExactWeightedMoments(all, weights);
    EXPECT_TRUE(merged.weighted);
    EXPECT_EQ(merged.count, exact.count);
    EXPECT_LE(std::fabs(merged.Mean() - exact.Mean()), 1e-12);
    EXPECT_LE(RelativeError(merged.PopulationVariance(), exact.PopulationVariance()), kExactness);
    EXPECT_LE(RelativeError(merged.ReliabilityVariance(), exact.ReliabilityVariance()), kExactness);
  }
}

TEST(WeightedMomentsTest, HostileWeightsGetPreciseStatuses) {
  const std::vector<int64_t> batch_shape = {4, 3};
  std::vector<double> storage;
  const auto status_of = [&](std::vector<double> w, std::vector<int64_t> shape) {
    return ResolveSampleWeights({DType::kFloat64, shape, std::as_bytes(std::span(w))}, batch_shape,
                                "weights", storage)
        .status();
  };
  const auto expect = [](const absl::Status& status, const std::string& fragment) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(std::string(status.message()).find(fragment), std::string::npos) << status;
  };
  expect(status_of({1, -1, 1, 1}, {4}), "weights[1] is -1; expected a finite weight >= 0");
  expect(status_of({1, NAN, 1, 1}, {4}), "weights[1] is nan");
  expect(status_of({1, 1, INFINITY, 1}, {4}), "weights[2] is inf");
  expect(status_of({1, 1, 1}, {3}),
         "weights has shape [3]; expected a leading part of the "
         "batch's shape [4, 3]");
  expect(status_of(std::vector<double>(12, 1), {3, 4}), "has shape [3, 4]");
  expect(status_of(std::vector<double>(24, 1), {4, 3, 2}), "has shape [4, 3, 2]");
  expect(status_of({0, 0, 0, 0}, {4}), "weights are all 0");
  EXPECT_TRUE(status_of({0, 0, 2.5, 0}, {4}).ok());
  EXPECT_TRUE(status_of(std::vector<double>(12, 1), {4, 3}).ok());
}

// The weighted sketch: the fast path's buckets are the reference's, and its counts
// sum to W; quantiles are the frequency-weighted linear quantile within the bound.
TEST(WeightedMomentsTest, WeightedSketchMatchesReferenceAndWeightedQuantiles) {
  for (const auto& [layout, shape, weight_rank] :
       std::vector<std::tuple<Layout, std::vector<int64_t>, size_t>>{
           {Layout::kNC, {30000, 2}, 1},
           {Layout::kNCHW, {6, 2, 80, 80}, 1},
           {Layout::kNHWC, {40, 60, 3}, 2}}) {
    const int64_t axis = ChannelAxis(layout, shape.size());
    const int64_t channels = shape[axis];
    const int64_t n = ElementCount(shape);
    std::mt19937_64 rng(25);
    std::lognormal_distribution<double> heavy(0.0, 2.0);
    std::vector<double> values(n);
    for (double& v : values) v = heavy(rng) - 1.0;
    const std::vector<int64_t> weight_shape(shape.begin(), shape.begin() + weight_rank);
    std::vector<double> weights(ElementCount(weight_shape));
    for (double& w : weights) w = std::ldexp(static_cast<double>(rng() % 9), -2);  // 0 to 2
    weights[0] = 1;
    const int64_t per_weight = n / static_cast<int64_t>(weights.size());
    std::vector<double> storage;
    const SampleWeights resolved =
        *ResolveSampleWeights({DType::kFloat64, weight_shape, std::as_bytes(std::span(weights))},
                              shape, "weights", storage);
    const TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
    const ChannelGeometry geometry = *ResolveGeometry(layout, channels, shape);
    const QuantileSketchSpec spec;
    std::vector<QuantileSketch> fast = EmptySketches(spec, channels);
    std::vector<QuantileSketch> reference = EmptySketches(spec, channels);
    WorkerPool pool(2);
    AddBatchToSketches(view, geometry, spec, fast, &pool, &resolved);
    AddBatchToSketchesReference(view, geometry, spec, reference, &resolved);
    std::vector<ChannelMoments> moments(channels);
    ASSERT_TRUE(
        ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, moments, nullptr, &resolved)
            .ok());
    for (int64_t c = 0; c < channels; ++c) {
      SCOPED_TRACE("channel " + std::to_string(c));
      ASSERT_EQ(fast[c].buckets.size(), reference[c].buckets.size());
      for (size_t b = 0; b < fast[c].buckets.size(); ++b) {
        ASSERT_EQ(fast[c].buckets[b].index, reference[c].buckets[b].index);
        ASSERT_EQ(fast[c].buckets[b].count, reference[c].buckets[b].count);  // dyadic: exact
      }
      EXPECT_TRUE(ValidateSketch(fast[c], 0.0, moments[c], spec.max_buckets, "s").ok());
      // The oracle: sort the kept values; value x_i covers positions [C_{i-1}, C_i) of
      // the cumulative weight, and the quantile interpolates at q * (W - 1).
      std::vector<std::pair<double, double>> kept;
      for (int64_t i = 0; i < n; ++i) {
        const double w = weights[i / per_weight];
        if (CoordinateAt(shape, axis, i) == c && w > 0) kept.emplace_back(values[i], w);
      }
      std::sort(kept.begin(), kept.end());
      double total = 0;
      for (const auto& [v, w] : kept) total += w;
      const auto at = [&](double t) {
        double cumulative = 0;
        for (const auto& [v, w] : kept) {
          cumulative += w;
          if (cumulative > t) return v;
        }
        return kept.back().first;
      };
      for (double q : {0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0}) {
        const double position = q * (total - 1);
        const double below = std::floor(position);
        const double exact = at(below) + (position - below) * (at(below + 1) - at(below));
        const QuantileEstimate got =
            EstimateQuantile(fast[c], q, 0.0, moments[c].min, moments[c].max);
        EXPECT_LE(std::fabs(got.value - exact), got.error_bound) << "q=" << q;
      }
    }
  }
}

// A weighted summary: the same moments as the batch's fit; hostile weight sums are
// refused with a status naming them.
TEST(WeightedMomentsTest, WeightedSummariesAreCheckedPrecisely) {
  const std::vector<int64_t> shape = {6, 2};
  const std::vector<double> values = {1, 10, 2, 20, 3, 30, 4, 40, NAN, NAN, 6, 60};
  const std::vector<double> weights = {1, 0.5, 2, 0.25, 0, 4};
  const std::vector<int64_t> weight_shape = {6};
  std::vector<double> storage;
  const SampleWeights resolved = *ResolveSampleWeights(
      {DType::kFloat64, weight_shape, std::as_bytes(std::span(weights))}, shape, "w", storage);
  DatasetSpec spec;
  spec.name = "d";
  spec.layout = Layout::kNC;
  spec.channels = 2;
  const TensorView view{DType::kFloat64, shape, std::as_bytes(std::span(values))};
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNC, 2, shape);
  const MomentsSummary summary = *SummarizeBatch(
      view, Layout::kNC, geometry, NonFinitePolicy::kReject, nullptr, nullptr, &resolved);
  EXPECT_EQ(summary.masked_values, 2u);
  EXPECT_EQ(summary.channels[0].count, 5u);
  EXPECT_EQ(summary.channels[0].Weight().value(), 7.75);
  ASSERT_TRUE(ValidateMomentsSummary(summary, spec).ok());
  const auto message = [&](MomentsSummary s) {
    const absl::Status status = ValidateMomentsSummary(s, spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  MomentsSummary bad = summary;
  bad.channels[1].weight_sum = {-1, 0};
  EXPECT_NE(message(bad).find("expected weight_sum > 0"), std::string::npos) << message(bad);
  bad = summary;
  bad.channels[1].weight_square_sum = {1000, 0};  // above W^2
  EXPECT_NE(message(bad).find("weight_square_sum <="), std::string::npos) << message(bad);
  bad = summary;
  bad.channels[0].weight_sum = {NAN, 0};
  EXPECT_NE(message(bad).find("normalised double-doubles"), std::string::npos) << message(bad);
  bad = summary;
  bad.masked_values = 0;  // the counts no longer make whole samples
  EXPECT_NE(message(bad).find("masked_values"), std::string::npos) << message(bad);
  bad = summary;
  bad.channels[0].m2 = {1e6, 0};  // beyond Popoviciu's bound with W
  EXPECT_NE(message(bad).find("weight_sum * (max - min)^2 / 4"), std::string::npos) << message(bad);
}

}  // namespace
}  // namespace normd
