// Every SIMD target of the MomentSums kernels against the scalar reference: the
// sums agree to summation-order rounding, min and max exactly, and a non-finite
// input always shows in sum_squares.
#include "core/kernels/moment_sums.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/kernel_input.h"
#include "tests/support/simd_targets.h"

namespace normd {
namespace {

using testing::ForEachSimdTarget;

using testing::kKernelInputs;

// Finite random values of `dtype` around `offset` (u8 ignores the offset).
std::vector<std::byte> RandomFinite(DType dtype, size_t n, double offset, std::mt19937_64& rng) {
  std::vector<std::byte> bytes(n * ElementSize(dtype));
  std::normal_distribution<double> noise(0.0, 3.0);
  for (size_t i = 0; i < n; ++i) {
    const double v = offset + noise(rng);
    switch (dtype) {
      case DType::kUInt8:
        StoreElement<uint8_t>(bytes.data(), i, static_cast<uint8_t>(rng()));
        break;
      case DType::kFloat16:  // 2^e * (1 + m/1024) for small e: finite and exact
        StoreElement<uint16_t>(bytes.data(), i, static_cast<uint16_t>(0x3800 + rng() % 0x1000));
        break;
      case DType::kBFloat16:
        StoreElement<uint16_t>(bytes.data(), i, static_cast<uint16_t>(0x4000 + rng() % 0x300));
        break;
      case DType::kFloat32:
        StoreElement<float>(bytes.data(), i, static_cast<float>(v));
        break;
      case DType::kFloat64:
        StoreElement<double>(bytes.data(), i, v);
        break;
    }
  }
  return bytes;
}

void ExpectClose(double got, double want, double scale, const char* what) {
  EXPECT_LE(std::fabs(got - want), 1e-13 * scale + 1e-300) << what << ": " << got << " vs " << want;
}

TEST(MomentSumsKernelTest, RunMatchesReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(3);
    for (DType in : kKernelInputs) {
      for (size_t n : {1, 2, 5, 8, 31, 32, 33, 100, 1000, 4096}) {
        const size_t offset = rng() % 8;
        const std::vector<std::byte> input = RandomFinite(in, n + 8, 1e4, rng);
        const std::byte* x = input.data() + offset * ElementSize(in);
        const double shift = 1e4 + 0.5;
        const MomentSums got = MomentSumsRun(in, x, n, shift);
        const MomentSums want = MomentSumsRunReference(in, x, n, shift);
        SCOPED_TRACE(std::string(DTypeName(in)) + " n=" + std::to_string(n));
        // The scale is the sum of |terms|, which bounds any order's rounding.
        ExpectClose(got.sum, want.sum, want.sum_squares + std::fabs(want.sum) + n, "sum");
        ExpectClose(got.sum_squares, want.sum_squares, want.sum_squares, "sum_squares");
        EXPECT_EQ(got.min, want.min);
        EXPECT_EQ(got.max, want.max);
      }
    }
  });
}

TEST(MomentSumsKernelTest, RowsMatchReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(4);
    for (DType in : kKernelInputs) {
      for (size_t row_len : {1, 3, 7, 16, 48, 288, 1000}) {
        const size_t rows = 1 + rng() % 11;
        const std::vector<std::byte> input = RandomFinite(in, rows * row_len + 3, -50.0, rng);
        const std::byte* x = input.data() + 3 * ElementSize(in);
        std::vector<double> shift(row_len);
        for (size_t j = 0; j < row_len; ++j) shift[j] = -50.0 + static_cast<double>(j % 5);
        // Accumulators start non-empty: the kernel adds to them.
        std::vector<double> sum(row_len, 1.5), squares(row_len, 2.5), min(row_len, 0.0),
            max(row_len, 0.0);
        std::vector<double> want_sum = sum, want_squares = squares, want_min = min, want_max = max;
        MomentSumsRows(in, x, rows, row_len, shift.data(), sum.data(), squares.data(), min.data(),
                       max.data());
        MomentSumsRowsReference(in, x, rows, row_len, shift.data(), want_sum.data(),
                                want_squares.data(), want_min.data(), want_max.data());
        SCOPED_TRACE(std::string(DTypeName(in)) + " row_len=" + std::to_string(row_len));
        for (size_t j = 0; j < row_len; ++j) {
          ExpectClose(sum[j], want_sum[j], want_squares[j] + std::fabs(want_sum[j]) + rows, "sum");
          ExpectClose(squares[j], want_squares[j], want_squares[j], "sum_squares");
          ASSERT_EQ(min[j], want_min[j]);
          ASSERT_EQ(max[j], want_max[j]);
        }
      }
    }
  });
}

TEST(MomentSumsKernelTest, NonFiniteInputShowsInSumSquaresOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    for (double bad :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
          -std::numeric_limits<double>::infinity()}) {
      for (size_t n : {1, 9, 64, 1001}) {
        for (size_t at : {size_t{0}, n / 2, n - 1}) {
          std::vector<float> values(n, 1.0f);
          values[at] = static_cast<float>(bad);
          const auto* x = reinterpret_cast<const std::byte*>(values.data());
          EXPECT_FALSE(std::isfinite(MomentSumsRun(DType::kFloat32, x, n, 0.5).sum_squares))
              << bad << " at " << at << " of " << n;
          double sum = 0, squares = 0, min = 0, max = 0;
          const double shift = 0.5;
          MomentSumsRows(DType::kFloat32, x, n, 1, &shift, &sum, &squares, &min, &max);
          EXPECT_FALSE(std::isfinite(squares)) << bad << " at " << at << " of " << n;
        }
      }
    }
  });
}

// Weights as a caller sends them: zeros (a mask), ones and fractions.
std::vector<double> RandomWeights(size_t n, std::mt19937_64& rng) {
  std::vector<double> w(n);
  for (double& v : w) {
    const uint64_t kind = rng() % 4;
    v = kind == 0 ? 0.0 : kind == 1 ? 1.0 : std::ldexp(static_cast<double>(rng() % 1000), -6);
  }
  return w;
}

void ExpectWeightedClose(const WeightedMomentSums& got, const WeightedMomentSums& want,
                         double weight_scale) {
  ExpectClose(got.weight, want.weight, want.weight, "weight");
  ExpectClose(got.weight_squares, want.weight_squares, want.weight_squares, "weight_squares");
  ExpectClose(got.sum, want.sum, want.sum_squares + std::fabs(want.sum) + weight_scale, "sum");
  ExpectClose(got.sum_squares, want.sum_squares, want.sum_squares, "sum_squares");
  EXPECT_EQ(got.count, want.count);
  EXPECT_EQ(got.min, want.min);
  EXPECT_EQ(got.max, want.max);
}

TEST(MomentSumsKernelTest, WeightedRunMatchesReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(5);
    for (DType in : kKernelInputs) {
      for (size_t n : {1, 2, 5, 8, 31, 32, 33, 100, 1000, 4096}) {
        const std::vector<std::byte> input = RandomFinite(in, n, 1e4, rng);
        const std::vector<double> w = RandomWeights(n, rng);
        const WeightedMomentSums got = WeightedMomentSumsRun(in, input.data(), w.data(), n, 1e4);
        const WeightedMomentSums want =
            WeightedMomentSumsRunReference(in, input.data(), w.data(), n, 1e4);
        SCOPED_TRACE(std::string(DTypeName(in)) + " n=" + std::to_string(n));
        ExpectWeightedClose(got, want, want.weight);
      }
    }
  });
}

TEST(MomentSumsKernelTest, WeightedRowsMatchReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(6);
    for (DType in : kKernelInputs) {
      for (size_t row_len : {1, 3, 7, 16, 48, 288}) {
        const size_t rows = 1 + rng() % 11;
        const std::vector<std::byte> input = RandomFinite(in, rows * row_len, -50.0, rng);
        const std::vector<double> w = RandomWeights(rows * row_len, rng);
        std::vector<double> shift(row_len);
        for (size_t j = 0; j < row_len; ++j) shift[j] = -50.0 + static_cast<double>(j % 5);
        // Accumulators start non-empty: the kernel adds to them.
        std::vector<double> arrays[2][7];
        for (auto& side : arrays) {
          for (int k = 0; k < 7; ++k) side[k].assign(row_len, 0.25 * (k + 1));
        }
        const auto columns = [&](std::vector<double>* a) {
          return WeightedColumns{a[0].data(), a[1].data(), a[2].data(), a[3].data(),
                                 a[4].data(), a[5].data(), a[6].data()};
        };
        WeightedMomentSumsRows(in, input.data(), w.data(), rows, row_len, shift.data(),
                               columns(arrays[0]));
        WeightedMomentSumsRowsReference(in, input.data(), w.data(), rows, row_len, shift.data(),
                                        columns(arrays[1]));
        SCOPED_TRACE(std::string(DTypeName(in)) + " row_len=" + std::to_string(row_len));
        for (size_t j = 0; j < row_len; ++j) {
          const auto at = [&](std::vector<double>* a) {
            return WeightedMomentSums{a[0][j], a[1][j], a[2][j], a[3][j],
                                      a[4][j], a[5][j], a[6][j]};
          };
          ExpectWeightedClose(at(arrays[0]), at(arrays[1]), arrays[1][0][j]);
        }
      }
    }
  });
}

// A masked value holds anything, NaN included, and leaves no trace; an unmasked
// non-finite value always shows in sum_squares.
TEST(MomentSumsKernelTest, WeightedKernelsIgnoreMaskedValuesAndShowNonFiniteOnes) {
  ForEachSimdTarget([](int64_t) {
    for (double bad :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
      for (size_t n : {1, 9, 64, 1001}) {
        for (size_t at : {size_t{0}, n / 2, n - 1}) {
          std::vector<float> values(n, 2.0f);
          values[at] = static_cast<float>(bad);
          std::vector<double> w(n, 0.5);
          const auto* x = reinterpret_cast<const std::byte*>(values.data());
          EXPECT_FALSE(std::isfinite(
              WeightedMomentSumsRun(DType::kFloat32, x, w.data(), n, 0.0).sum_squares));
          w[at] = 0.0;
          const WeightedMomentSums masked =
              WeightedMomentSumsRun(DType::kFloat32, x, w.data(), n, 0.0);
          EXPECT_EQ(masked.weight, 0.5 * static_cast<double>(n - 1));
          EXPECT_EQ(masked.sum_squares, 0.5 * 4.0 * static_cast<double>(n - 1));
          EXPECT_EQ(masked.count, static_cast<double>(n - 1));
          EXPECT_EQ(masked.max, n == 1 ? -std::numeric_limits<double>::infinity() : 2.0);
        }
      }
    }
  });
}

}  // namespace
}  // namespace normd
