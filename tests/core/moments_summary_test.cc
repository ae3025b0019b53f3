#include "core/moments_summary.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/worker_pool.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

struct Batch {
  std::vector<int64_t> shape;
  std::vector<double> values;

  TensorView View() const {
    return {DType::kFloat64, shape,
            std::span(reinterpret_cast<const std::byte*>(values.data()),
                      values.size() * sizeof(double))};
  }
};

Batch RandomBatch(std::vector<int64_t> shape, std::mt19937_64& rng, double nan_rate = 0) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::normal_distribution<double> noise(1e6, 3.0);
  std::bernoulli_distribution nan(nan_rate);
  Batch batch{std::move(shape), std::vector<double>(static_cast<size_t>(n))};
  for (double& v : batch.values) v = nan(rng) ? std::nan("") : noise(rng);
  return batch;
}

MomentsSummary Summarize(const Batch& batch, Layout layout, int64_t channels,
                         NonFinitePolicy policy) {
  const ValidatedTensor tensor = *ValidateTensor(batch.View());
  const ChannelGeometry geometry = *ResolveGeometry(layout, channels, tensor.shape());
  return *SummarizeBatch(tensor.view(), layout, geometry, policy);
}

DatasetSpec Spec(Layout layout, int64_t channels, NonFinitePolicy policy) {
  return {.name = "d", .layout = layout, .channels = channels, .nonfinite = policy};
}

// Every summary the kernels make, and every merge of them, passes the checks a
// summary from outside must pass: the validation never refuses honest data.
TEST(MomentsSummaryTest, SummariesOfRealBatchesAndTheirMergesValidate) {
  std::mt19937_64 rng(3);
  struct Case {
    Layout layout;
    std::vector<int64_t> shape;
    int64_t channels;
  };
  for (const Case& c : {Case{Layout::kNC, {37, 5}, 5}, Case{Layout::kNCHW, {3, 4, 5, 6}, 4},
                        Case{Layout::kNHWC, {3, 5, 6, 4}, 4}}) {
    for (NonFinitePolicy policy : {NonFinitePolicy::kReject, NonFinitePolicy::kSkip}) {
      const double nan_rate = policy == NonFinitePolicy::kSkip ? 0.2 : 0.0;
      const DatasetSpec spec = Spec(c.layout, c.channels, policy);
      MomentsSummary total = MomentsSummary::Empty(c.layout, c.channels);
      for (int i = 0; i < 4; ++i) {
        const MomentsSummary one =
            Summarize(RandomBatch(c.shape, rng, nan_rate), c.layout, c.channels, policy);
        EXPECT_TRUE(ValidateMomentsSummary(one, spec).ok()) << ValidateMomentsSummary(one, spec);
        ASSERT_TRUE(MergeSummary(one, total).ok());
        EXPECT_TRUE(ValidateMomentsSummary(total, spec).ok())
            << ValidateMomentsSummary(total, spec);
      }
      EXPECT_EQ(total.batches, 4u);
      EXPECT_EQ(total.samples, 4u * static_cast<uint64_t>(c.shape[0]));
    }
  }
}

// The extremes of the checks: no spread at all, and the largest spread a set of
// values in [min, max] can have (half at each end, Popoviciu's bound attained).
TEST(MomentsSummaryTest, ConstantAndTwoPointBatchesValidate) {
  const DatasetSpec spec = Spec(Layout::kNC, 1, NonFinitePolicy::kReject);
  Batch constant{{6, 1}, std::vector<double>(6, 0.1)};
  Batch two_point{{6, 1}, {-3e8, 7.5, -3e8, 7.5, -3e8, 7.5}};
  for (const Batch& batch : {constant, two_point}) {
    const MomentsSummary s = Summarize(batch, Layout::kNC, 1, NonFinitePolicy::kReject);
    EXPECT_TRUE(ValidateMomentsSummary(s, spec).ok()) << ValidateMomentsSummary(s, spec);
  }
}

TEST(MomentsSummaryTest, MergedPiecesAgreeWithOneBatch) {
  std::mt19937_64 rng(4);
  const Batch whole = RandomBatch({40, 3, 2, 2}, rng);
  const MomentsSummary one = Summarize(whole, Layout::kNCHW, 3, NonFinitePolicy::kReject);
  MomentsSummary merged = MomentsSummary::Empty(Layout::kNCHW, 3);
  const int64_t per_sample = 3 * 2 * 2;
  for (int64_t begin : {0, 7, 8, 30}) {
    const int64_t end = begin == 30 ? 40 : (begin == 0 ? 7 : (begin == 7 ? 8 : 30));
    Batch piece{{end - begin, 3, 2, 2},
                std::vector<double>(whole.values.begin() + begin * per_sample,
                                    whole.values.begin() + end * per_sample)};
    ASSERT_TRUE(
        MergeSummary(Summarize(piece, Layout::kNCHW, 3, NonFinitePolicy::kReject), merged).ok());
  }
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_EQ(merged.channels[c].count, one.channels[c].count);
    EXPECT_EQ(merged.channels[c].min, one.channels[c].min);
    EXPECT_EQ(merged.channels[c].max, one.channels[c].max);
    EXPECT_NEAR(merged.channels[c].Mean(), one.channels[c].Mean(),
                1e-15 * std::abs(one.channels[c].Mean()));
    EXPECT_NEAR(merged.channels[c].PopulationVariance(), one.channels[c].PopulationVariance(),
                1e-12 * one.channels[c].PopulationVariance());
  }
  EXPECT_EQ(merged.batches, 4u);
  EXPECT_EQ(merged.samples, 40u);
}

TEST(MomentsSummaryTest, MergeRefusesMismatchesAndOverflowAndChangesNothing) {
  MomentsSummary into = MomentsSummary::Empty(Layout::kNC, 2);
  into.channels[0] = {kMaxSummaryCount - 1, {1.0, 0.0}, {0.0, 0.0}, 1.0, 1.0};
  const MomentsSummary before = into;
  MomentsSummary more = MomentsSummary::Empty(Layout::kNC, 2);
  more.channels[0] = {2, {1.0, 0.0}, {0.0, 0.0}, 1.0, 1.0};
  EXPECT_EQ(MergeSummary(more, into).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MergeSummary(MomentsSummary::Empty(Layout::kNHWC, 2), into).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MergeSummary(MomentsSummary::Empty(Layout::kNC, 3), into).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(into.channels[0].count, before.channels[0].count);
  EXPECT_EQ(into.channels[1].count, 0u);
}

TEST(MomentsSummaryTest, ValidationNamesWhatIsWrong) {
  std::mt19937_64 rng(5);
  const DatasetSpec spec = Spec(Layout::kNC, 2, NonFinitePolicy::kReject);
  const MomentsSummary good =
      Summarize(RandomBatch({9, 2}, rng), Layout::kNC, 2, NonFinitePolicy::kReject);
  ASSERT_TRUE(ValidateMomentsSummary(good, spec).ok());
  const auto refused = [&](auto mutate, absl::string_view expected) {
    MomentsSummary bad = good;
    mutate(bad);
    const absl::Status status = ValidateMomentsSummary(bad, spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_NE(status.message().find(expected), absl::string_view::npos) << status;
  };
  refused([](MomentsSummary& s) { s.channels[1].m2.hi = -1; }, "summary channel 1: m2 must lie");
  refused([](MomentsSummary& s) { s.channels[0].mean.lo = s.channels[0].mean.hi; },
          "normalised double-doubles");
  refused([](MomentsSummary& s) { s.channels[0].min = std::nan(""); }, "expected finite min");
  refused(
      [](MomentsSummary& s) {
        s.channels[0].count = 10;
        s.channels[1].count = 8;
      },
      "summary channel 0: count 10 disagrees with the summary's 9 values per channel");
  refused([](MomentsSummary& s) { s.samples = 10; }, "10 of them; got 18 values");
  refused([](MomentsSummary& s) { s.layout = Layout::kNHWC; }, "reduced as NHWC data");
  refused([](MomentsSummary& s) { s.channels.pop_back(); }, "summary holds 1 channels");
  refused([](MomentsSummary& s) { s.skipped_nonfinite = 2; }, "expected 0");
  // A range that overflows float64 passed every other check (Popoviciu's bound is inf).
  refused(
      [](MomentsSummary& s) {
        s.channels[0].min = -1.6e308;
        s.channels[0].max = 1.6e308;
        s.channels[0].mean = {0, 0};
      },
      "summary channel 0: min -1.6e+308 and max 1.6e+308 span a range that overflows float64");
}

// Finite values whose moments pass float64's largest number: the local summary is
// refused as the server refuses the batch (one rule, CheckRepresentable), and a
// constant near the limit, whose moments fit, is summarised exactly.
TEST(MomentsSummaryTest, MomentsThatOverflowAreRefusedAndThoseThatFitAreExact) {
  const auto summarize = [](const Batch& batch) {
    const ValidatedTensor tensor = *ValidateTensor(batch.View());
    const ChannelGeometry geometry = *ResolveGeometry(Layout::kNC, 1, tensor.shape());
    return SummarizeBatch(tensor.view(), Layout::kNC, geometry, NonFinitePolicy::kReject);
  };
  for (const Batch& wide : {Batch{{2, 1}, {0, 1e155}}, Batch{{2, 1}, {-1.6e308, 1.6e308}},
                            Batch{{3, 1}, {-1e308, 0, 1e308}}}) {
    const absl::StatusOr<MomentsSummary> summary = summarize(wide);
    EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument) << wide.values[1];
    EXPECT_NE(summary.status().message().find("overflows float64"), absl::string_view::npos)
        << summary.status();
  }
  for (const double big : {1e308, -1.7e308, std::numeric_limits<double>::max()}) {
    const absl::StatusOr<MomentsSummary> summary = summarize(Batch{{3, 1}, {big, big, big}});
    ASSERT_TRUE(summary.ok()) << summary.status();
    const ChannelMoments& m = summary->channels[0];
    EXPECT_EQ(m.mean.hi, big);
    EXPECT_EQ(m.mean.lo, 0.0);
    EXPECT_EQ(m.m2.hi, 0.0);
    EXPECT_TRUE(ValidateMomentsSummary(*summary, Spec(Layout::kNC, 1, NonFinitePolicy::kReject))
                    .ok());
  }
}

}  // namespace
}  // namespace normd

namespace normd {
namespace {

// uint8 batches are summed in integers: mean and variance are the correctly rounded
// values of the exact rationals, and the moments do not depend on how the batch is
// split, merged or spread over a pool.
TEST(U8MomentsTest, ExactAndIndependentOfTheSplit) {
  std::mt19937_64 rng(8);
  for (const auto& [layout, shape] : {std::pair{Layout::kNCHW, std::vector<int64_t>{6, 3, 70, 70}},
                                      std::pair{Layout::kNHWC, std::vector<int64_t>{6, 9, 11, 3}},
                                      std::pair{Layout::kNC, std::vector<int64_t>{1001, 3}}}) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint8_t> values(static_cast<size_t>(n));
    for (uint8_t& v : values) v = static_cast<uint8_t>(rng() % 200 + 40);
    const TensorView view{DType::kUInt8, shape, std::as_bytes(std::span(values))};
    const ChannelGeometry geometry = *ResolveGeometry(layout, 3, shape);
    WorkerPool pool(3);
    const MomentsSummary whole = *SummarizeBatch(view, layout, geometry, NonFinitePolicy::kReject);
    const MomentsSummary pooled =
        *SummarizeBatch(view, layout, geometry, NonFinitePolicy::kReject, &pool);
    // Exact rationals per channel, from the values themselves.
    for (size_t c = 0; c < 3; ++c) {
      uint64_t count = 0, sum = 0, squares = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t channel = layout == Layout::kNCHW ? i / (70 * 70) % 3 : i % 3;
        if (static_cast<size_t>(channel) != c) continue;
        ++count;
        sum += values[static_cast<size_t>(i)];
        squares += uint64_t{values[static_cast<size_t>(i)]} * values[static_cast<size_t>(i)];
      }
      const ChannelMoments& m = whole.channels[c];
      EXPECT_EQ(m.count, count);
      EXPECT_EQ(m.Mean(), static_cast<double>(sum) / static_cast<double>(count));
      const auto spread = static_cast<double>(count * squares - sum * sum);  // < 2^53 here
      EXPECT_EQ(m.PopulationVariance(),
                spread / (static_cast<double>(count) * static_cast<double>(count)));
      EXPECT_EQ(pooled.channels[c].mean.hi, m.mean.hi);
      EXPECT_EQ(pooled.channels[c].mean.lo, m.mean.lo);
      EXPECT_EQ(pooled.channels[c].m2.hi, m.m2.hi);
      EXPECT_EQ(pooled.channels[c].m2.lo, m.m2.lo);
    }
  }
}

}  // namespace
}  // namespace normd
