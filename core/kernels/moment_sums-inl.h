// Highway body of the MomentSums kernels (see moment_sums.h), compiled once per
// target by moment_sums.cc.
#if defined(NORMD_CORE_KERNELS_MOMENT_SUMS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_MOMENT_SUMS_INL_H_
#undef NORMD_CORE_KERNELS_MOMENT_SUMS_INL_H_
#else
#define NORMD_CORE_KERNELS_MOMENT_SUMS_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "core/kernels/convert-inl.h"
#include "core/kernels/moment_sums.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The smallest (kLowest) or the largest lane. Highway 1.0.3's EMU128 target (clang's
// portable fallback; GCC builds use SCALAR instead) starts MinOfLanes and MaxOfLanes from
// the largest finite double, so a vector with no value in it (every lane still ±inf) came
// back as ±DBL_MAX: there the lanes are folded from the first one instead.
template <bool kLowest, class D>
HWY_INLINE double ExtremeLane(D d, hn::Vec<D> v) {
#if HWY_TARGET == HWY_EMU128
  HWY_ALIGN double lanes[HWY_MAX_BYTES / sizeof(double)];
  hn::Store(v, d, lanes);
  double extreme = lanes[0];
  for (size_t i = 1; i < hn::Lanes(d); ++i) {
    extreme = kLowest ? HWY_MIN(extreme, lanes[i]) : HWY_MAX(extreme, lanes[i]);
  }
  return extreme;
#else
  return hn::GetLane(kLowest ? hn::MinOfLanes(d, v) : hn::MaxOfLanes(d, v));
#endif
}

// Running sums of one group of lanes.
template <class D>
struct LaneSums {
  explicit LaneSums(D d)
      : sum(hn::Zero(d)),
        sum_squares(hn::Zero(d)),
        min(hn::Set(d, std::numeric_limits<double>::infinity())),
        max(hn::Set(d, -std::numeric_limits<double>::infinity())) {}

  HWY_INLINE void Add(hn::Vec<D> x, hn::Vec<D> shift) {
    const auto deviation = hn::Sub(x, shift);
    sum = hn::Add(sum, deviation);
    sum_squares = hn::MulAdd(deviation, deviation, sum_squares);
    min = hn::Min(min, x);
    max = hn::Max(max, x);
  }

  HWY_INLINE void Merge(const LaneSums& other) {
    sum = hn::Add(sum, other.sum);
    sum_squares = hn::Add(sum_squares, other.sum_squares);
    min = hn::Min(min, other.min);
    max = hn::Max(max, other.max);
  }

  hn::Vec<D> sum, sum_squares, min, max;
};

template <typename In>
MomentSums MomentSumsRunTyped(const In* HWY_RESTRICT x, size_t n, double shift) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  const auto vshift = hn::Set(d, shift);
  // Four independent groups hide the add latency.
  LaneSums<decltype(d)> a(d), b(d), c(d), e(d);
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a.Add(LoadAsDouble(d, x + i), vshift);
    b.Add(LoadAsDouble(d, x + i + lanes), vshift);
    c.Add(LoadAsDouble(d, x + i + 2 * lanes), vshift);
    e.Add(LoadAsDouble(d, x + i + 3 * lanes), vshift);
  }
  for (; i + lanes <= n; i += lanes) a.Add(LoadAsDouble(d, x + i), vshift);
  a.Merge(b);
  c.Merge(e);
  a.Merge(c);
  MomentSums sums;
  sums.sum = hn::GetLane(hn::SumOfLanes(d, a.sum));
  sums.sum_squares = hn::GetLane(hn::SumOfLanes(d, a.sum_squares));
  sums.min = ExtremeLane</*kLowest=*/true>(d, a.min);
  sums.max = ExtremeLane</*kLowest=*/false>(d, a.max);
  for (; i < n; ++i) {
    const double v = ToDouble(LoadUnaligned(x + i));
    const double deviation = v - shift;
    sums.sum += deviation;
    sums.sum_squares += deviation * deviation;
    sums.min = std::min(sums.min, v);
    sums.max = std::max(sums.max, v);
  }
  return sums;
}

// Columns of `lanes` accumulators, kept in registers down a block of eight rows, so
// the accumulator arrays are loaded and stored once per eight input vectors.
template <typename In>
void MomentSumsRowsTyped(const In* HWY_RESTRICT x, size_t rows, size_t row_len,
                         const double* HWY_RESTRICT shift, double* HWY_RESTRICT sum,
                         double* HWY_RESTRICT sum_squares, double* HWY_RESTRICT min,
                         double* HWY_RESTRICT max) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  constexpr size_t kRowBlock = 8;
  const size_t vector_end = row_len - row_len % lanes;
  size_t r = 0;
  for (; r < rows; r += kRowBlock) {
    const size_t block = std::min(kRowBlock, rows - r);
    const In* HWY_RESTRICT xr = x + r * row_len;
    for (size_t j = 0; j < vector_end; j += lanes) {
      LaneSums<decltype(d)> acc(d);
      acc.sum = hn::LoadU(d, sum + j);
      acc.sum_squares = hn::LoadU(d, sum_squares + j);
      acc.min = hn::LoadU(d, min + j);
      acc.max = hn::LoadU(d, max + j);
      const auto vshift = hn::LoadU(d, shift + j);
      for (size_t k = 0; k < block; ++k) {
        // The walk goes down columns, which hardware prefetchers follow poorly: fetch
        // the same column of the next block now. (Prefetching past the end is harmless.)
        hwy::Prefetch(xr + (k + kRowBlock) * row_len + j);
        acc.Add(LoadAsDouble(d, xr + k * row_len + j), vshift);
      }
      hn::StoreU(acc.sum, d, sum + j);
      hn::StoreU(acc.sum_squares, d, sum_squares + j);
      hn::StoreU(acc.min, d, min + j);
      hn::StoreU(acc.max, d, max + j);
    }
    for (size_t k = 0; k < block; ++k) {
      for (size_t j = vector_end; j < row_len; ++j) {
        const double v = ToDouble(LoadUnaligned(xr + k * row_len + j));
        const double deviation = v - shift[j];
        sum[j] += deviation;
        sum_squares[j] += deviation * deviation;
        min[j] = std::min(min[j], v);
        max[j] = std::max(max[j], v);
      }
    }
  }
}

// Weighted lanes: a value with w == 0 contributes nothing, not even its NaN.
template <class D>
struct WeightedLaneSums {
  explicit WeightedLaneSums(D d)
      : weight(hn::Zero(d)),
        sum(hn::Zero(d)),
        sum_squares(hn::Zero(d)),
        min(hn::Set(d, std::numeric_limits<double>::infinity())),
        max(hn::Set(d, -std::numeric_limits<double>::infinity())),
        count(hn::Zero(d)),
        weight_squares(hn::Zero(d)) {}

  HWY_INLINE void Add(D d, hn::Vec<D> x, hn::Vec<D> w, hn::Vec<D> shift) {
    const auto kept = hn::Gt(w, hn::Zero(d));
    const auto deviation = hn::IfThenElseZero(kept, hn::Sub(x, shift));
    const auto weighted = hn::Mul(w, deviation);
    weight = hn::Add(weight, w);
    sum = hn::Add(sum, weighted);
    sum_squares = hn::MulAdd(weighted, deviation, sum_squares);
    min =
        hn::Min(min, hn::IfThenElse(kept, x, hn::Set(d, std::numeric_limits<double>::infinity())));
    max =
        hn::Max(max, hn::IfThenElse(kept, x, hn::Set(d, -std::numeric_limits<double>::infinity())));
    count = hn::Add(count, hn::IfThenElseZero(kept, hn::Set(d, 1.0)));
    weight_squares = hn::MulAdd(w, w, weight_squares);
  }

  HWY_INLINE void Merge(const WeightedLaneSums& other) {
    weight = hn::Add(weight, other.weight);
    sum = hn::Add(sum, other.sum);
    sum_squares = hn::Add(sum_squares, other.sum_squares);
    min = hn::Min(min, other.min);
    max = hn::Max(max, other.max);
    count = hn::Add(count, other.count);
    weight_squares = hn::Add(weight_squares, other.weight_squares);
  }

  hn::Vec<D> weight, sum, sum_squares, min, max, count, weight_squares;
};

// The scalar tail of both weighted kernels: one value.
HWY_INLINE void AddWeighted(double v, double w, double shift, double& weight, double& sum,
                            double& sum_squares, double& min, double& max, double& count,
                            double& weight_squares) {
  if (!(w > 0)) return;
  const double deviation = v - shift;
  weight += w;
  weight_squares += w * w;
  sum += w * deviation;
  sum_squares += w * deviation * deviation;
  min = std::min(min, v);
  max = std::max(max, v);
  count += 1;
}

template <typename In>
WeightedMomentSums WeightedMomentSumsRunTyped(const In* HWY_RESTRICT x,
                                              const double* HWY_RESTRICT w, size_t n,
                                              double shift) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  const auto vshift = hn::Set(d, shift);
  WeightedLaneSums<decltype(d)> a(d), b(d);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    a.Add(d, LoadAsDouble(d, x + i), hn::LoadU(d, w + i), vshift);
    b.Add(d, LoadAsDouble(d, x + i + lanes), hn::LoadU(d, w + i + lanes), vshift);
  }
  for (; i + lanes <= n; i += lanes) a.Add(d, LoadAsDouble(d, x + i), hn::LoadU(d, w + i), vshift);
  a.Merge(b);
  WeightedMomentSums sums;
  sums.weight = hn::GetLane(hn::SumOfLanes(d, a.weight));
  sums.sum = hn::GetLane(hn::SumOfLanes(d, a.sum));
  sums.sum_squares = hn::GetLane(hn::SumOfLanes(d, a.sum_squares));
  sums.min = ExtremeLane</*kLowest=*/true>(d, a.min);
  sums.max = ExtremeLane</*kLowest=*/false>(d, a.max);
  sums.count = hn::GetLane(hn::SumOfLanes(d, a.count));
  sums.weight_squares = hn::GetLane(hn::SumOfLanes(d, a.weight_squares));
  for (; i < n; ++i) {
    AddWeighted(ToDouble(LoadUnaligned(x + i)), w[i], shift, sums.weight, sums.sum,
                sums.sum_squares, sums.min, sums.max, sums.count, sums.weight_squares);
  }
  return sums;
}

template <typename In>
void WeightedMomentSumsRowsTyped(const In* HWY_RESTRICT x, const double* HWY_RESTRICT w,
                                 size_t rows, size_t row_len, const double* HWY_RESTRICT shift,
                                 const WeightedColumns& out) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  constexpr size_t kRowBlock = 8;
  const size_t vector_end = row_len - row_len % lanes;
  for (size_t r = 0; r < rows; r += kRowBlock) {
    const size_t block = std::min(kRowBlock, rows - r);
    const In* HWY_RESTRICT xr = x + r * row_len;
    const double* HWY_RESTRICT wr = w + r * row_len;
    for (size_t j = 0; j < vector_end; j += lanes) {
      WeightedLaneSums<decltype(d)> acc(d);
      acc.weight = hn::LoadU(d, out.weight + j);
      acc.sum = hn::LoadU(d, out.sum + j);
      acc.sum_squares = hn::LoadU(d, out.sum_squares + j);
      acc.min = hn::LoadU(d, out.min + j);
      acc.max = hn::LoadU(d, out.max + j);
      acc.count = hn::LoadU(d, out.count + j);
      acc.weight_squares = hn::LoadU(d, out.weight_squares + j);
      const auto vshift = hn::LoadU(d, shift + j);
      for (size_t k = 0; k < block; ++k) {
        acc.Add(d, LoadAsDouble(d, xr + k * row_len + j), hn::LoadU(d, wr + k * row_len + j),
                vshift);
      }
      hn::StoreU(acc.weight, d, out.weight + j);
      hn::StoreU(acc.sum, d, out.sum + j);
      hn::StoreU(acc.sum_squares, d, out.sum_squares + j);
      hn::StoreU(acc.min, d, out.min + j);
      hn::StoreU(acc.max, d, out.max + j);
      hn::StoreU(acc.count, d, out.count + j);
      hn::StoreU(acc.weight_squares, d, out.weight_squares + j);
    }
    for (size_t k = 0; k < block; ++k) {
      for (size_t j = vector_end; j < row_len; ++j) {
        AddWeighted(ToDouble(LoadUnaligned(xr + k * row_len + j)), wr[k * row_len + j], shift[j],
                    out.weight[j], out.sum[j], out.sum_squares[j], out.min[j], out.max[j],
                    out.count[j], out.weight_squares[j]);
      }
    }
  }
}

WeightedMomentSums WeightedMomentSumsRunImpl(DType in, const std::byte* x, const double* w,
                                             size_t n, double shift) {
  return VisitDType(in, [&](auto tag) {
    return WeightedMomentSumsRunTyped(reinterpret_cast<const decltype(tag)*>(x), w, n, shift);
  });
}

void WeightedMomentSumsRowsImpl(DType in, const std::byte* x, const double* w, size_t rows,
                                size_t row_len, const double* shift, const WeightedColumns& out) {
  VisitDType(in, [&](auto tag) {
    WeightedMomentSumsRowsTyped(reinterpret_cast<const decltype(tag)*>(x), w, rows, row_len, shift,
                                out);
  });
}

MomentSums MomentSumsRunImpl(DType in, const std::byte* x, size_t n, double shift) {
  return VisitDType(in, [&](auto tag) {
    return MomentSumsRunTyped(reinterpret_cast<const decltype(tag)*>(x), n, shift);
  });
}

void MomentSumsRowsImpl(DType in, const std::byte* x, size_t rows, size_t row_len,
                        const double* shift, double* sum, double* sum_squares, double* min,
                        double* max) {
  VisitDType(in, [&](auto tag) {
    MomentSumsRowsTyped(reinterpret_cast<const decltype(tag)*>(x), rows, row_len, shift, sum,
                        sum_squares, min, max);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
