// Every SIMD target of the uint8 integer-sum kernel against its scalar reference:
// integer sums, so they agree exactly, at every length and alignment, including runs
// long enough to flush the 32-bit square accumulators many times and all-255 input
// (the largest squares).
#include "core/kernels/integer_sums.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/simd_targets.h"

namespace normd {
namespace {

using testing::ForEachSimdTarget;

void ExpectEqual(const IntegerSums& got, const IntegerSums& want, size_t n) {
  EXPECT_EQ(got.sum, want.sum) << n;
  EXPECT_EQ(got.sum_squares, want.sum_squares) << n;
  EXPECT_EQ(got.min, want.min) << n;
  EXPECT_EQ(got.max, want.max) << n;
}

TEST(IntegerSumsKernelTest, RunMatchesReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(5);
    std::vector<uint8_t> data(300000 + 64);
    for (uint8_t& v : data) v = static_cast<uint8_t>(rng());
    for (size_t n : {0, 1, 7, 8, 31, 32, 63, 64, 65, 127, 1000, 50176, 300000}) {
      const size_t offset = rng() % 64;
      ExpectEqual(U8SumsRun(data.data() + offset, n), U8SumsRunReference(data.data() + offset, n),
                  n);
    }
  });
}

TEST(IntegerSumsKernelTest, LargestValuesOverManyFlushesAreExact) {
  ForEachSimdTarget([](int64_t) {
    const std::vector<uint8_t> full(3 << 20, 255);  // far past kFlush vectors
    const IntegerSums sums = U8SumsRun(full.data(), full.size());
    EXPECT_EQ(sums.sum, uint64_t{255} * full.size());
    EXPECT_EQ(sums.sum_squares, uint64_t{255 * 255} * full.size());
    EXPECT_EQ(sums.min, 255);
    EXPECT_EQ(sums.max, 255);
  });
}

TEST(IntegerSumsKernelTest, RowsSumEachColumn) {
  std::mt19937_64 rng(6);
  const size_t rows = 37, row_len = 48;
  std::vector<uint8_t> data(rows * row_len);
  for (uint8_t& v : data) v = static_cast<uint8_t>(rng());
  std::vector<uint64_t> sum(row_len), squares(row_len);
  std::vector<uint8_t> min(row_len, 255), max(row_len, 0);
  U8SumsRows(data.data(), rows, row_len, sum.data(), squares.data(), min.data(), max.data());
  for (size_t j = 0; j < row_len; ++j) {
    std::vector<uint8_t> column;
    for (size_t r = 0; r < rows; ++r) column.push_back(data[r * row_len + j]);
    const IntegerSums want = U8SumsRunReference(column.data(), column.size());
    ExpectEqual({sum[j], squares[j], min[j], max[j]}, want, j);
  }
}

}  // namespace
}  // namespace normd
