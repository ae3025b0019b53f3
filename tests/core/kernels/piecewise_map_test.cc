// Every SIMD target of the PiecewiseMap kernel against the scalar reference (binary
// search): the same bits for random tables (constant pieces, ties, breakpoints far
// from 0, one piece), every input and output dtype, specials and tails; and the
// driver over every layout against an element-by-element reference.
#include "core/kernels/piecewise_map.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/piecewise_channel.h"
#include "gtest/gtest.h"
#include "tests/support/kernel_input.h"
#include "tests/support/simd_targets.h"

namespace normd {
namespace {

using testing::ForEachSimdTarget;
using testing::RandomInput;
using testing::kKernelInputs;
using testing::kKernelOutputs;

// Breakpoints around `offset`, spread over `spread`, with some repeated; every third
// piece constant.
PiecewiseChannel RandomMap(size_t pieces, double offset, double spread, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> starts(pieces);
  for (double& s : starts) s = offset + spread * u(rng) * std::abs(u(rng));
  std::sort(starts.begin(), starts.end());
  if (pieces > 4) starts[2] = starts[1];  // a tie
  std::vector<AffinePiece> ps;
  for (size_t k = 0; k < pieces; ++k) {
    const double scale = k % 3 == 0 ? 0.0 : u(rng) * 3;
    ps.push_back({starts[k], starts[k], scale, u(rng) * 10});
  }
  // Ties: a later piece with the same start wins, as upper_bound finds it.
  return PiecewiseChannel::Make(ps, -7.5, 8.25);
}

TEST(PiecewiseMapKernelTest, MatchesTheReferenceOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(3);
    for (const auto& [pieces, offset, spread] : {std::tuple<size_t, double, double>{1, 0, 1},
                                                 {2, 0, 300},
                                                 {5, 0, 30},     // compare chain, a tie
                                                 {16, 10, 100},  // the chain's largest
                                                 {17, 50, 400},  // the search's smallest
                                                 {1000, 0, 300},
                                                 {300, 1e8, 1e-3},
                                                 {64, -200, 1e5}}) {
      const PiecewiseChannel map = RandomMap(pieces, offset, spread, rng);
      const PiecewiseTable table = map.table();
      for (DType in : kKernelInputs) {
        for (DType out : kKernelOutputs) {
          for (size_t n : {0, 1, 7, 8, 31, 100, 1000}) {
            std::vector<std::byte> input = RandomInput(in, n + 2, rng);
            if (in == DType::kFloat64 && offset != 0) {  // values near the breakpoints too
              for (size_t i = 0; i < n; i += 2) {
                StoreElement<double>(
                    input.data(), i,
                    offset + spread * std::uniform_real_distribution<>(-1.2, 1.2)(rng));
              }
            }
            if (in == DType::kFloat64) {  // and exactly on them, where a piece begins
              for (size_t i = 1, k = 1; i < n && k < table.segments; i += 3, ++k) {
                StoreElement<double>(input.data(), i + 1, table.start[k]);
              }
            }
            const std::byte* x = input.data() + ElementSize(in);
            std::vector<std::byte> got(n * ElementSize(out) + 8, std::byte{0x33});
            std::vector<std::byte> want = got;
            PiecewiseMapRun(in, out, x, n, table, got.data());
            PiecewiseMapRunReference(in, out, x, n, table, want.data());
            ASSERT_EQ(got, want) << DTypeName(in) << " -> " << DTypeName(out) << " n=" << n
                                 << " pieces=" << pieces << " offset=" << offset;
          }
        }
      }
    }
  });
}

TEST(PiecewiseMapDriverTest, EveryLayoutMatchesElementByElement) {
  std::mt19937_64 rng(4);
  WorkerPool pool(2);
  struct Case {
    std::vector<int64_t> shape;
    ChannelGeometry geometry;
  };
  const std::vector<Case> cases = {{{5000, 3}, {5000, 5000, 3, 1}},
                                   {{3, 4, 70, 70}, {3, 3, 4, 4900}},
                                   {{7, 9, 9, 5}, {7, 567, 5, 1}},
                                   {{9001, 1}, {9001, 9001, 1, 1}}};
  for (const Case& c : cases) {
    std::vector<PiecewiseChannel> maps;
    for (int64_t ch = 0; ch < c.geometry.channels; ++ch)
      maps.push_back(RandomMap(40, 10, 200, rng));
    const size_t n = static_cast<size_t>(c.geometry.elements());
    const std::vector<std::byte> input = RandomInput(DType::kFloat32, n, rng);
    const TensorView view{DType::kFloat32, c.shape, input};
    std::vector<std::byte> got(n * 2), want(n * 2);
    ASSERT_TRUE(ApplyPiecewiseMap(view, c.geometry, maps, *ValidateOutputDType(DType::kBFloat16),
                                  got, &pool)
                    .ok());
    for (size_t i = 0; i < n; ++i) {
      const auto ch =
          static_cast<size_t>((static_cast<int64_t>(i) / c.geometry.inner) % c.geometry.channels);
      PiecewiseMapRunReference(DType::kFloat32, DType::kBFloat16, input.data() + 4 * i, 1,
                               maps[ch].table(), want.data() + 2 * i);
    }
    EXPECT_EQ(got, want) << "shape[0]=" << c.shape[0];
  }
}

TEST(PiecewiseMapTableTest, EvenlySpacedKnotsNeedAShortSearch) {
  std::vector<AffinePiece> pieces = {{0.0, 0.0, 0.0, 0.0}};
  for (int k = 0; k < 999; ++k) {
    const double x0 = 100.0 * k / 999, x1 = 100.0 * (k + 1) / 999;
    pieces.push_back({x0, x0, (1.0 / 999) / (x1 - x0), k / 999.0});
  }
  const PiecewiseChannel map = PiecewiseChannel::Make(pieces, 0.0, 1.0);
  EXPECT_LE(map.table().refine, 2);
}

}  // namespace
}  // namespace normd
