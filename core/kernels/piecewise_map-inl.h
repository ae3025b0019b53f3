// Highway body of the PiecewiseMap kernel (see piecewise_map.h), compiled once per
// target by piecewise_map.cc.
#if defined(NORMD_CORE_KERNELS_PIECEWISE_MAP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_PIECEWISE_MAP_INL_H_
#undef NORMD_CORE_KERNELS_PIECEWISE_MAP_INL_H_
#else
#define NORMD_CORE_KERNELS_PIECEWISE_MAP_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "core/kernels/convert-inl.h"
#include "core/kernels/element.h"
#include "core/kernels/piecewise_map.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// PiecewiseSlotOf on float64 lanes.
template <class D>
HWY_INLINE hn::Vec<hn::RebindToSigned<D>> SlotLanes(D d, hn::Vec<D> x, const PiecewiseTable& t) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(du, hn::Sub(x, hn::Set(d, t.key_center)));
  const auto abs = hn::And(bits, hn::Set(du, 0x7fffffffffffffffull));
  const auto negative =
      hn::And(hn::ShiftRight<63>(bits),
              hn::ShiftRight<63>(hn::Add(abs, hn::Set(du, 0x7fffffffffffffffull))));
  const auto magnitude =
      hn::BitCast(di, hn::ShiftRightSame(hn::Sub(abs, negative), 52 - t.key_resolution));
  auto c = hn::Sub(magnitude, hn::Set(di, t.key_floor));
  c = hn::Min(hn::Max(c, hn::Set(di, -1)), hn::Set(di, t.key_span));
  const auto n = hn::BitCast(di, negative);
  const auto signed_offset = hn::Add(hn::Xor(hn::Add(c, hn::Set(di, 1)), hn::Neg(n)), n);
  return hn::Add(signed_offset, hn::Set(di, t.key_span + 1));
}

template <class D>
HWY_INLINE hn::Vec<D> PiecewiseLanes(D d, hn::Vec<D> x, const PiecewiseTable& t) {
  const hn::RebindToSigned<D> di;
  auto k = hn::GatherIndex(di, t.first_segment, SlotLanes(d, x, t));
  for (int step = 0; step < t.refine; ++step) {
    const auto next = hn::Add(k, hn::Set(di, 1));
    const auto past = hn::RebindMask(di, hn::Ge(x, hn::GatherIndex(d, t.start, next)));
    k = hn::IfThenElse(past, next, k);
  }
  const auto scale = hn::GatherIndex(d, t.scale, k);
  const auto shift = hn::GatherIndex(d, t.shift, k);
  const auto mapped = hn::Add(hn::Mul(hn::Sub(x, hn::GatherIndex(d, t.center, k)), scale), shift);
  const auto constant = hn::And(hn::Eq(scale, hn::Zero(d)), hn::Eq(x, x));
  const auto value = hn::IfThenElse(constant, shift, mapped);
  // Clamped as the reference clamps: NaN compares false and stays.
  const auto low = hn::Set(d, t.low), high = hn::Set(d, t.high);
  const auto above_low = hn::IfThenElse(hn::Lt(value, low), low, value);
  return hn::IfThenElse(hn::Gt(above_low, high), high, above_low);
}

// A table of a few pieces (bucketize, a coarse quantile transform) needs no search and
// no gather: the piece of x is the last k with x >= start[k] (start rises, start[0] is
// -inf), picked by a chain of compares and selects on broadcast table entries. The
// same piece, so the same arithmetic and bits, as the slot search.
template <class D>
HWY_INLINE hn::Vec<D> SmallPiecewiseLanes(D d, hn::Vec<D> x, const PiecewiseTable& t) {
  auto center = hn::Set(d, t.center[0]);
  auto scale = hn::Set(d, t.scale[0]);
  auto shift = hn::Set(d, t.shift[0]);
  for (size_t k = 1; k < t.segments; ++k) {
    const auto past = hn::Ge(x, hn::Set(d, t.start[k]));
    center = hn::IfThenElse(past, hn::Set(d, t.center[k]), center);
    scale = hn::IfThenElse(past, hn::Set(d, t.scale[k]), scale);
    shift = hn::IfThenElse(past, hn::Set(d, t.shift[k]), shift);
  }
  const auto mapped = hn::Add(hn::Mul(hn::Sub(x, center), scale), shift);
  const auto constant = hn::And(hn::Eq(scale, hn::Zero(d)), hn::Eq(x, x));
  const auto value = hn::IfThenElse(constant, shift, mapped);
  const auto low = hn::Set(d, t.low), high = hn::Set(d, t.high);
  const auto above_low = hn::IfThenElse(hn::Lt(value, low), low, value);
  return hn::IfThenElse(hn::Gt(above_low, high), high, above_low);
}

// Up to this many pieces the compare chain beats the gathers of the search.
constexpr size_t kSmallPiecewiseTable = 16;

template <typename In, typename Out>
void PiecewiseMapTyped(DType in, DType out, const In* HWY_RESTRICT x, size_t n,
                       const PiecewiseTable& t, Out* HWY_RESTRICT y) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  if (t.segments <= kSmallPiecewiseTable) {
    for (; i + lanes <= n; i += lanes) {
      StoreFromDouble(d, SmallPiecewiseLanes(d, LoadAsDouble(d, x + i), t), y + i);
    }
  }
  for (; i + lanes <= n; i += lanes) {
    StoreFromDouble(d, PiecewiseLanes(d, LoadAsDouble(d, x + i), t), y + i);
  }
  for (; i < n; ++i) {  // the tail, through the reference's search
    PiecewiseMapRunReference(in, out, reinterpret_cast<const std::byte*>(x + i), 1, t,
                             reinterpret_cast<std::byte*>(y + i));
  }
}

void PiecewiseMapRunImpl(DType in, DType out, const std::byte* x, size_t n,
                         const PiecewiseTable& table, std::byte* y) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      PiecewiseMapTyped(in, out, reinterpret_cast<const In*>(x), n, table,
                        reinterpret_cast<Out*>(y));
    });
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
