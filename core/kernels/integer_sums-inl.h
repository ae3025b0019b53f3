// Highway body of U8SumsRun (see integer_sums.h), compiled once per target by
// integer_sums.cc.
#if defined(NORMD_CORE_KERNELS_INTEGER_SUMS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_INTEGER_SUMS_INL_H_
#undef NORMD_CORE_KERNELS_INTEGER_SUMS_INL_H_
#else
#define NORMD_CORE_KERNELS_INTEGER_SUMS_INL_H_
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/kernels/integer_sums.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

IntegerSums U8SumsRunImpl(const uint8_t* HWY_RESTRICT x, size_t n) {
#if HWY_TARGET == HWY_SCALAR
  return U8SumsRunReference(x, n);  // one lane: no byte sums or pairwise multiply-adds
#else
  const hn::ScalableTag<uint8_t> d8;
  const hn::Repartition<uint16_t, decltype(d8)> d16u;
  const hn::Repartition<int16_t, decltype(d8)> d16;
  const hn::Repartition<int32_t, decltype(d8)> d32;
  const hn::Repartition<uint64_t, decltype(d8)> d64;
  const size_t lanes = hn::Lanes(d8);
  // Each int32 lane gains at most 2 * 255^2 per multiply-add, two per vector: flushed
  // into 64 bits every kFlush vectors, far below 2^31.
  constexpr size_t kFlush = 2048;
  const auto zero = hn::Zero(d8);
  auto sums = hn::Zero(d64);
  auto low = hn::Set(d8, uint8_t{255});
  auto high = hn::Zero(d8);
  IntegerSums out;
  HWY_ALIGN int32_t squares[hn::MaxLanes(d32)];
  const size_t vector_end = n - n % lanes;
  size_t i = 0;
  while (i < vector_end) {
    auto a0 = hn::Zero(d32), a1 = hn::Zero(d32), b0 = hn::Zero(d32), b1 = hn::Zero(d32);
    const size_t end = std::min(vector_end, i + kFlush * lanes);
    for (; i < end; i += lanes) {
      const auto v = hn::LoadU(d8, x + i);
      sums = hn::Add(sums, hn::SumsOf8(v));
      low = hn::Min(low, v);
      high = hn::Max(high, v);
      // Bytes widened to 16 bits (interleaved with zeros), squared and added in pairs.
      const auto lo16 = hn::BitCast(d16, hn::ZipLower(d16u, v, zero));
      const auto hi16 = hn::BitCast(d16, hn::ZipUpper(d16u, v, zero));
      a0 = hn::ReorderWidenMulAccumulate(d32, lo16, lo16, a0, a1);
      b0 = hn::ReorderWidenMulAccumulate(d32, hi16, hi16, b0, b1);
    }
    hn::Store(hn::Add(hn::RearrangeToOddPlusEven(a0, a1), hn::RearrangeToOddPlusEven(b0, b1)), d32,
              squares);
    for (size_t k = 0; k < hn::Lanes(d32); ++k) {
      out.sum_squares += static_cast<uint64_t>(squares[k]);
    }
  }
  out.sum = hn::GetLane(hn::SumOfLanes(d64, sums));
  if (vector_end > 0) {
    HWY_ALIGN uint8_t lows[hn::MaxLanes(d8)];
    HWY_ALIGN uint8_t highs[hn::MaxLanes(d8)];
    hn::Store(low, d8, lows);
    hn::Store(high, d8, highs);
    out.min = *std::min_element(lows, lows + lanes);
    out.max = *std::max_element(highs, highs + lanes);
  }
  for (; i < n; ++i) {
    const uint8_t v = x[i];
    out.sum += v;
    out.sum_squares += static_cast<uint64_t>(v) * v;
    out.min = std::min(out.min, v);
    out.max = std::max(out.max, v);
  }
  return out;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
