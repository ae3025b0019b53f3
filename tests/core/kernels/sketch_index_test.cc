// Every SIMD target of the SketchIndex kernels against the scalar reference (the same
// indices for every dtype, resolution, center, tail and offset), and the indices'
// meaning: a value lies in its bucket, indices order as values do, and one resolution
// coarser is one arithmetic shift.
#include "core/kernels/sketch_index.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "core/quantile_sketch.h"
#include "gtest/gtest.h"
#include "tests/support/kernel_input.h"
#include "tests/support/simd_targets.h"

namespace normd {
namespace {

using testing::ForEachSimdTarget;
using testing::RandomInput;
using testing::kKernelInputs;

TEST(SketchIndexKernelTest, RunMatchesReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(7);
    for (DType in : kKernelInputs) {
      for (int resolution : {0, 1, 6, 10}) {
        for (double center : {0.0, 1.5, -1e3, 1e8}) {
          for (size_t n : {0, 1, 3, 7, 8, 17, 33, 100, 1000}) {
            const size_t offset = rng() % 8;
            const std::vector<std::byte> input = RandomInput(in, n + 8, rng);
            const std::byte* x = input.data() + offset * ElementSize(in);
            std::vector<int32_t> got(n + 1, 77), want(n + 1, 77);
            SketchIndexRun(in, x, n, center, resolution, got.data());
            SketchIndexRunReference(in, x, n, center, resolution, want.data());
            ASSERT_EQ(got, want) << DTypeName(in) << " r=" << resolution << " c=" << center
                                 << " n=" << n;
          }
        }
      }
    }
  });
}

TEST(SketchIndexKernelTest, RowsMatchReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(8);
    std::uniform_real_distribution<double> centers(-50, 50);
    for (DType in : kKernelInputs) {
      for (size_t row_len : {1, 2, 3, 5, 16, 19, 64}) {
        for (size_t rows : {1, 2, 9}) {
          const size_t n = rows * row_len;
          const std::vector<std::byte> input = RandomInput(in, n + 3, rng);
          const std::byte* x = input.data() + (rng() % 3) * ElementSize(in);
          std::vector<double> center(row_len);
          for (double& c : center) c = centers(rng);
          std::vector<int32_t> got(n), want(n);
          SketchIndexRows(in, x, rows, row_len, center.data(), 6, got.data());
          SketchIndexRowsReference(in, x, rows, row_len, center.data(), 6, want.data());
          ASSERT_EQ(got, want) << DTypeName(in) << " rows=" << rows << " row_len=" << row_len;
        }
      }
    }
  });
}

TEST(SketchIndexKernelTest, SlotsMatchTheReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(10);
    for (DType in : kKernelInputs) {
      for (const auto& [resolution, low, window] : {std::tuple<int, int32_t, uint32_t>{6, 0, 4096},
                                                    {6, 62000, 4096},
                                                    {0, 1000, 64},
                                                    {10, 1040000, 65536},
                                                    {3, 8180, 512}}) {
        for (size_t n : {0, 1, 7, 8, 33, 1000}) {
          const std::vector<std::byte> input = RandomInput(in, n + 4, rng);
          const std::byte* x = input.data() + (rng() % 4) * ElementSize(in);
          std::vector<uint32_t> got(n + 1, 7), want(n + 1, 7);
          std::vector<uint32_t> got_spills(n + 1, 9), want_spills(n + 1, 9);
          for (double center : {1.25, 0.0}) {  // float32 about 0 takes 32-bit lanes
            const size_t spills = SketchSlotRun(in, x, n, center, resolution, low, window,
                                                got.data(), got_spills.data());
            const size_t want_count = SketchSlotRunReference(
                in, x, n, center, resolution, low, window, want.data(), want_spills.data());
            ASSERT_EQ(got, want) << DTypeName(in) << " r=" << resolution << " low=" << low
                                 << " center=" << center;
            ASSERT_EQ(spills, want_count);
            ASSERT_TRUE(
                std::equal(got_spills.begin(), got_spills.begin() + spills, want_spills.begin()));
          }
        }
      }
    }
  });
}

// Several channels' windows at once: per-column centers, windows and table bases.
TEST(SketchIndexKernelTest, RowSlotsMatchTheReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(12);
    for (DType in : kKernelInputs) {
      for (const auto& [resolution, window] :
           {std::tuple<int, uint32_t>{6, 4096}, {0, 64}, {10, 65536}, {3, 512}}) {
        for (const auto& [row_len, centred] : {std::pair<size_t, bool>{1, false},
                                               {3, true},
                                               {8, false},
                                               {17, true},
                                               {48, false},
                                               {48, true},
                                               {96, true}}) {
          const size_t rows = 1 + rng() % 9;
          std::vector<std::byte> input = RandomInput(in, rows * row_len, rng);
          if (in == DType::kFloat32 && rows > 2) {  // whole vectors of plain values too
            for (size_t i = 0; i < row_len; ++i) {
              StoreElement<float>(input.data(), i, static_cast<float>(i % 7) - 2.5f);
            }
          }
          std::vector<double> center(row_len);
          std::vector<uint32_t> low(row_len), base(row_len);
          for (size_t j = 0; j < row_len; ++j) {
            // All 0 (float32 from its own bits) or some not.
            center[j] = centred || j % 3 == 0 ? 0.0 : 1.25 * static_cast<double>(j);
            // Windows about the data's magnitudes, below them and above them.
            low[j] = static_cast<uint32_t>((1016 + j % 3 * 8 - (j % 2) * 40) << resolution);
            base[j] = static_cast<uint32_t>(j % 4) * (2 * window + 1);
          }
          std::vector<uint32_t> got(rows * row_len), want(rows * row_len);
          std::vector<uint32_t> got_spills(got.size()), want_spills(got.size());
          const size_t spills =
              SketchSlotRows(in, input.data(), rows, row_len, center.data(), resolution, low.data(),
                             base.data(), window, got.data(), got_spills.data());
          const size_t want_count = SketchSlotRowsReference(
              in, input.data(), rows, row_len, center.data(), resolution, low.data(), base.data(),
              window, want.data(), want_spills.data());
          ASSERT_EQ(got, want) << DTypeName(in) << " r=" << resolution << " row_len=" << row_len;
          ASSERT_EQ(spills, want_count);
          got_spills.resize(spills);
          want_spills.resize(want_count);
          ASSERT_EQ(got_spills, want_spills);
        }
      }
    }
  });
}

// Float32 about 0 in 32-bit lanes: every normal exponent and sign, zeros, and windows
// that every kind of magnitude falls in or out of, on every resolution.
TEST(SketchIndexKernelTest, Float32SlotsFromTheirOwnBitsMatchTheReference) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(11);
    std::vector<float> values(4099);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint32_t exponent = 1 + static_cast<uint32_t>(rng() % 254);
      const uint32_t bits = (static_cast<uint32_t>(rng() & 1) << 31) | (exponent << 23) |
                            static_cast<uint32_t>(rng() & 0x7fffff);
      values[i] = i % 97 == 0 ? (i % 2 ? -0.0f : 0.0f) : std::bit_cast<float>(bits);
    }
    const auto* x = reinterpret_cast<const std::byte*>(values.data());
    for (int resolution = 0; resolution <= kMaxSketchIndexResolution; ++resolution) {
      const uint32_t window = 64u << resolution;
      for (int32_t low : {0, 900 << resolution, 1000 << resolution}) {
        std::vector<uint32_t> got(values.size()), want(values.size());
        std::vector<uint32_t> got_spills(values.size()), want_spills(values.size());
        const size_t spills = SketchSlotRun(DType::kFloat32, x, values.size(), 0.0, resolution, low,
                                            window, got.data(), got_spills.data());
        const size_t want_count =
            SketchSlotRunReference(DType::kFloat32, x, values.size(), 0.0, resolution, low, window,
                                   want.data(), want_spills.data());
        ASSERT_EQ(got, want) << "r=" << resolution << " low=" << low;
        ASSERT_EQ(spills, want_count);
        got_spills.resize(spills);
        want_spills.resize(want_count);
        ASSERT_EQ(got_spills, want_spills);
      }
    }
  });
}

TEST(SketchIndexTest, ValuesLieInTheirBucketsAndIndicesOrderAsValues) {
  std::mt19937_64 rng(9);
  std::vector<double> values = {0.0,   -0.0,   1.0,
                                -1.0,  1e-310, -1e-310,
                                1e308, -1e308, std::numeric_limits<double>::denorm_min(),
                                3.0,   0.75};
  std::cauchy_distribution<double> cauchy(0, 1);
  for (int i = 0; i < 5000; ++i) values.push_back(cauchy(rng));
  for (int resolution = 0; resolution <= kMaxSketchIndexResolution; ++resolution) {
    for (double center : {0.0, 2.5, -1e6}) {
      std::vector<double> sorted = values;
      for (double& v : sorted) v += center;
      std::sort(sorted.begin(), sorted.end());
      int32_t previous = std::numeric_limits<int32_t>::min();
      for (const double x : sorted) {
        if (!std::isfinite(x - center)) continue;
        const int32_t index = SketchIndexOf(x - center, resolution);
        ASSERT_TRUE(SketchIndexIsFinite(index, resolution));
        ASSERT_GE(index, previous) << x;  // sorted values, non-decreasing indices
        previous = index;
        const ValueRange range = BucketValueRange(index, resolution, center);
        ASSERT_LE(range.low, x) << x << " r=" << resolution;
        ASSERT_GE(range.high, x) << x << " r=" << resolution;
        if (center == 0) {  // half-open [low, high) on both sides of 0
          ASSERT_LT(x, range.high) << x << " r=" << resolution;
        }
        if (resolution > 0) {
          ASSERT_EQ(index >> 1, SketchIndexOf(x - center, resolution - 1)) << x;
        }
        if (center == 0 && x != 0 && std::abs(x) > 1e-300 &&
            std::isfinite(range.high - range.low)) {
          // The relative width of a bucket is at most 2^-resolution.
          ASSERT_LE(range.high - range.low,
                    std::ldexp(std::abs(x), -resolution) * (1 + 1e-12) + 1e-290);
        }
      }
    }
  }
  EXPECT_FALSE(SketchIndexIsFinite(SketchIndexOf(std::numeric_limits<double>::infinity(), 6), 6));
  EXPECT_FALSE(SketchIndexIsFinite(SketchIndexOf(-std::numeric_limits<double>::infinity(), 6), 6));
  EXPECT_FALSE(SketchIndexIsFinite(SketchIndexOf(std::nan(""), 6), 6));
}

}  // namespace
}  // namespace normd
