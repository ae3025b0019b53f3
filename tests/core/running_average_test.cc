#include "core/running_average.h"

#include <optional>
#include <random>
#include <vector>

#include "core/batch_moments.h"
#include "core/ingest_delta.h"
#include "gtest/gtest.h"
#include "tests/support/exact_moments.h"

namespace normd {
namespace {

// Ingest batches reach the delta validated; these are valid by construction.
ValidatedTensor Validated(const TensorView& view) {
  absl::StatusOr<ValidatedTensor> validated = ValidateTensor(view);
  EXPECT_TRUE(validated.ok()) << validated.status();
  return *validated;
}

using testing::ComputeExactMoments;
using testing::RelativeError;

// torch.nn.BatchNorm's update, one batch at a time, straight from its documentation.
struct SequentialRunningAverage {
  std::optional<double> momentum;
  double mean = 0.0;
  double var = 1.0;
  uint64_t tracked = 0;

  void Update(const std::vector<double>& batch) {
    ++tracked;
    const double f = momentum.has_value() ? *momentum : 1.0 / static_cast<double>(tracked);
    const auto exact = ComputeExactMoments(batch);
    mean = (1 - f) * mean + f * exact.Mean();
    var = (1 - f) * var + f * exact.SampleVariance();
  }
};

class RunningAverageTest : public ::testing::TestWithParam<std::optional<double>> {};

TEST_P(RunningAverageTest, ComposedDeltasEqualSequentialUpdates) {
  const DatasetSpec spec{"d", Layout::kNC, 1, AccumulatorKind::kRunningAverage, GetParam()};
  DatasetStatistics stats = DatasetStatistics::Empty(spec);
  SequentialRunningAverage reference{GetParam()};
  std::mt19937_64 rng(17);
  std::normal_distribution<double> noise(3.0, 2.0);
  // Three transactions of 1, 4 and 7 batches of varying sizes.
  for (int batches_in_delta : {1, 4, 7}) {
    IngestDelta delta(spec);
    for (int b = 0; b < batches_in_delta; ++b) {
      std::vector<double> batch(2 + rng() % 50);
      for (double& v : batch) v = noise(rng);
      const int64_t shape[] = {static_cast<int64_t>(batch.size()), 1};
      ASSERT_TRUE(delta
                      .AddBatch(Split::kTrain, Validated({DType::kFloat64, shape,
                                                          std::as_bytes(std::span(batch))}))
                      .ok());
      reference.Update(batch);
    }
    delta.ApplyTo(stats);
    ASSERT_TRUE(stats.running.has_value());
    EXPECT_EQ(stats.running->num_batches_tracked, reference.tracked);
    EXPECT_LE(RelativeError(stats.running->mean[0], reference.mean), 1e-12);
    EXPECT_LE(RelativeError(stats.running->var[0], reference.var), 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Momentum, RunningAverageTest,
                         ::testing::Values(std::optional<double>(0.1), std::optional<double>(1.0),
                                           std::optional<double>()));

TEST(RunningAverageTest, BatchWithOneValuePerChannelIsRejected) {
  const DatasetSpec spec{"d", Layout::kNC, 2, AccumulatorKind::kRunningAverage, 0.1};
  IngestDelta delta(spec);
  const double one_row[] = {1.0, 2.0};
  const int64_t shape[] = {1, 2};
  absl::StatusOr<BatchSummary> result = delta.AddBatch(
      Split::kTrain, Validated({DType::kFloat64, shape, std::as_bytes(std::span(one_row))}));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(delta.batches(), 0u);
  // Validation batches do not touch running statistics, so one row is fine there.
  EXPECT_TRUE(delta
                  .AddBatch(Split::kValidation,
                            Validated({DType::kFloat64, shape, std::as_bytes(std::span(one_row))}))
                  .ok());
}

TEST(IngestDeltaTest, OnlyTrainBatchesReachTheTrainSplit) {
  const DatasetSpec spec{"d", Layout::kNC, 1};
  DatasetStatistics stats = DatasetStatistics::Empty(spec);
  IngestDelta delta(spec);
  const double train[] = {1.0, 2.0, 3.0};
  const double test[] = {100.0, 200.0};
  const int64_t train_shape[] = {3, 1};
  const int64_t test_shape[] = {2, 1};
  ASSERT_TRUE(delta
                  .AddBatch(Split::kTrain, Validated({DType::kFloat64, train_shape,
                                                      std::as_bytes(std::span(train))}))
                  .ok());
  ASSERT_TRUE(delta
                  .AddBatch(Split::kTest, Validated({DType::kFloat64, test_shape,
                                                     std::as_bytes(std::span(test))}))
                  .ok());
  delta.ApplyTo(stats);
  EXPECT_EQ(stats.split(Split::kTrain).moments[0].Mean(), 2.0);
  EXPECT_EQ(stats.split(Split::kTrain).samples, 3u);
  EXPECT_EQ(stats.split(Split::kTest).moments[0].Mean(), 150.0);
  EXPECT_EQ(stats.split(Split::kValidation).moments[0].count, 0u);
}

}  // namespace
}  // namespace normd
