#include "core/channel_moments.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/batch_moments.h"
#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"

namespace normd {
namespace {

using testing::ComputeExactMoments;
using testing::ExactMoments;
using testing::RelativeError;

constexpr double kTolerance = 1e-12;

ChannelMoments MomentsOfValues(std::span<const double> values) {
  const int64_t shape[] = {static_cast<int64_t>(values.size()), 1};
  TensorView view{DType::kFloat64, shape, std::as_bytes(values)};
  ChannelGeometry geometry{shape[0], shape[0], 1, 1};
  std::vector<ChannelMoments> out(1);
  EXPECT_TRUE(ComputeBatchMoments(view, geometry, NonFinitePolicy::kReject, out).ok());
  return out[0];
}

// Splits `values` into consecutive batches of the given sizes (cycled) and merges
// their moments in `order`.
ChannelMoments MergeBatches(const std::vector<double>& values, const std::vector<size_t>& sizes,
                            std::mt19937_64* shuffle) {
  std::vector<ChannelMoments> batches;
  size_t start = 0;
  for (size_t i = 0; start < values.size(); ++i) {
    const size_t size = std::min(sizes[i % sizes.size()], values.size() - start);
    batches.push_back(MomentsOfValues(std::span(values).subspan(start, size)));
    start += size;
  }
  if (shuffle != nullptr) std::shuffle(batches.begin(), batches.end(), *shuffle);
  ChannelMoments total;
  for (const ChannelMoments& b : batches) MergeMoments(b, total);
  return total;
}

void ExpectMatchesExact(const ChannelMoments& m, const ExactMoments& exact) {
  ASSERT_EQ(m.count, exact.count);
  EXPECT_LE(RelativeError(m.Mean(), exact.Mean()), kTolerance)
      << "mean " << m.Mean() << " exact " << exact.Mean();
  EXPECT_LE(RelativeError(m.PopulationVariance(), exact.PopulationVariance()), kTolerance)
      << "variance " << m.PopulationVariance() << " exact " << exact.PopulationVariance();
  if (exact.count > 1) {
    EXPECT_LE(RelativeError(m.SampleVariance(), exact.SampleVariance()), kTolerance);
  }
}

std::vector<double> OffsetNoise(size_t n, double offset, double scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, scale);
  std::vector<double> values(n);
  for (double& v : values) v = offset + noise(rng);
  return values;
}

TEST(ChannelMomentsTest, LargeOffsetOneBigBatchMatchesExact) {
  const std::vector<double> values = OffsetNoise(200000, 1e8, 1.0, 1);
  ExpectMatchesExact(MomentsOfValues(values), ComputeExactMoments(values));
}

TEST(ChannelMomentsTest, LargeOffsetManyTinyBatchesMatchExact) {
  const std::vector<double> values = OffsetNoise(20000, 1e8, 1e-3, 2);
  const ExactMoments exact = ComputeExactMoments(values);
  ExpectMatchesExact(MergeBatches(values, {1}, nullptr), exact);
  ExpectMatchesExact(MergeBatches(values, {1, 2, 3, 7}, nullptr), exact);
}

TEST(ChannelMomentsTest, ResultDoesNotDependOnMergeOrder) {
  const std::vector<double> values = OffsetNoise(30000, -3e9, 0.25, 3);
  const ExactMoments exact = ComputeExactMoments(values);
  std::mt19937_64 rng(4);
  for (int round = 0; round < 3; ++round) {
    ExpectMatchesExact(MergeBatches(values, {1, 5, 64, 1000}, &rng), exact);
  }
}

TEST(ChannelMomentsTest, TreeMergeMatchesSequentialMerge) {
  const std::vector<double> values = OffsetNoise(4096, 1e6, 10.0, 5);
  std::vector<ChannelMoments> level;
  for (size_t i = 0; i < values.size(); i += 16) {
    level.push_back(MomentsOfValues(std::span(values).subspan(i, 16)));
  }
  while (level.size() > 1) {
    std::vector<ChannelMoments> next;
    for (size_t i = 0; i < level.size(); i += 2) {
      ChannelMoments merged = level[i];
      MergeMoments(level[i + 1], merged);
      next.push_back(merged);
    }
    level = next;
  }
  ExpectMatchesExact(level[0], ComputeExactMoments(values));
}

TEST(ChannelMomentsTest, SingleSample) {
  const double values[] = {42.5};
  const ChannelMoments m = MomentsOfValues(values);
  EXPECT_EQ(m.count, 1u);
  EXPECT_EQ(m.Mean(), 42.5);
  EXPECT_EQ(m.PopulationVariance(), 0.0);
  EXPECT_TRUE(std::isnan(m.SampleVariance()));
  EXPECT_EQ(m.Min(), 42.5);
  EXPECT_EQ(m.Max(), 42.5);
}

TEST(ChannelMomentsTest, ConstantChannelHasExactlyZeroVariance) {
  const std::vector<double> values(1000, 0.1);
  const ChannelMoments one = MomentsOfValues(values);
  EXPECT_EQ(one.PopulationVariance(), 0.0);
  EXPECT_EQ(one.Mean(), 0.1);
  const ChannelMoments merged = MergeBatches(values, {3}, nullptr);
  EXPECT_EQ(merged.PopulationVariance(), 0.0);
  EXPECT_EQ(merged.Mean(), 0.1);
}

TEST(ChannelMomentsTest, EmptyMomentsAreNeutral) {
  const std::vector<double> values = OffsetNoise(100, 5.0, 2.0, 6);
  ChannelMoments m = MomentsOfValues(values);
  const ChannelMoments before = m;
  MergeMoments(ChannelMoments{}, m);
  EXPECT_EQ(m.count, before.count);
  EXPECT_EQ(m.mean.hi, before.mean.hi);
  EXPECT_EQ(m.m2.hi, before.m2.hi);
  ChannelMoments empty;
  EXPECT_TRUE(std::isnan(empty.Mean()));
  EXPECT_TRUE(std::isnan(empty.Min()));
  MergeMoments(m, empty);
  EXPECT_EQ(empty.mean.hi, m.mean.hi);
}

TEST(ChannelMomentsTest, MinAndMaxTrackExtremes) {
  const std::vector<double> values = OffsetNoise(5000, 0.0, 1.0, 7);
  const ChannelMoments m = MergeBatches(values, {13}, nullptr);
  EXPECT_EQ(m.Min(), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(m.Max(), *std::max_element(values.begin(), values.end()));
}

TEST(ChannelMomentsTest, WideDynamicRange) {
  // Values spanning 1e-300 .. 1e30: the exact oracle still decides.
  std::vector<double> values = {1e-300, -1e30, 3.0, 1e30, 2.5e-10, -7.0, 1e30};
  ExpectMatchesExact(MergeBatches(values, {2}, nullptr), ComputeExactMoments(values));
}

}  // namespace
}  // namespace normd
