// Highway body of the SketchIndex kernels (see sketch_index.h), compiled once per
// target by sketch_index.cc.
#if defined(NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#undef NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#else
#define NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/kernels/convert-inl.h"
#include "core/kernels/sketch_index.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// SketchIndexOf on float64 lanes: the index's magnitude and whether it is negative
// (0 or 1), in unsigned 64-bit lanes.
template <class D>
HWY_INLINE void IndexLanes(D d, hn::Vec<D> v, int resolution,
                           hn::Vec<hn::RebindToUnsigned<D>>& magnitude,
                           hn::Vec<hn::RebindToUnsigned<D>>& negative) {
  const hn::RebindToUnsigned<D> du;
  const auto bits = hn::BitCast(du, v);
  const auto abs = hn::And(bits, hn::Set(du, 0x7fffffffffffffffull));
  negative = hn::And(hn::ShiftRight<63>(bits),
                     hn::And(hn::ShiftRight<63>(hn::Add(abs, hn::Set(du, 0x7fffffffffffffffull))),
                             hn::ShiftRight<63>(hn::Add(abs, hn::Set(du, 0x8010000000000000ull)))));
  magnitude = hn::ShiftRightSame(hn::Sub(abs, negative), 52 - resolution);
}

// SketchSlotOf(SketchIndexOf(...)) on float64 lanes, stored as uint32.
template <class D>
HWY_INLINE void StoreSketchSlot(D d, hn::Vec<D> v, int resolution, int32_t low, uint32_t window,
                                uint32_t* out) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint32_t, D> du32;
  hn::Vec<decltype(du)> magnitude, negative;
  IndexLanes(d, v, resolution, magnitude, negative);
  // The offset wraps below low (as the scalar uint32 subtraction does in 32 bits).
  const auto offset = hn::And(hn::Sub(magnitude, hn::Set(du, static_cast<uint64_t>(low))),
                              hn::Set(du, 0xffffffffull));
  const auto in_window = hn::Lt(offset, hn::Set(du, window));
  const auto slot = hn::Add(hn::And(hn::Sub(hn::Zero(du), negative), hn::Set(du, window)), offset);
  hn::StoreU(hn::TruncateTo(du32, hn::IfThenElse(in_window, slot, hn::Set(du, 2ull * window))),
             du32, out);
}

// SketchIndexOf on float64 lanes, stored as int32.
template <class D>
HWY_INLINE void StoreSketchIndex(D d, hn::Vec<D> v, int resolution, int32_t* out) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint32_t, D> du32;
  hn::Vec<decltype(du)> magnitude, negative;
  IndexLanes(d, v, resolution, magnitude, negative);
  const auto negative_mask = hn::Sub(hn::Zero(du), negative);
  hn::StoreU(hn::TruncateTo(du32, hn::Xor(magnitude, negative_mask)), du32,
             reinterpret_cast<uint32_t*>(out));
}

template <typename In>
void SketchIndexRunTyped(const In* HWY_RESTRICT x, size_t n, double center, int resolution,
                         int32_t* HWY_RESTRICT out) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  const auto vc = hn::Set(d, center);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    StoreSketchIndex(d, hn::Sub(LoadAsDouble(d, x + i), vc), resolution, out + i);
    StoreSketchIndex(d, hn::Sub(LoadAsDouble(d, x + i + lanes), vc), resolution, out + i + lanes);
  }
  for (; i + lanes <= n; i += lanes) {
    StoreSketchIndex(d, hn::Sub(LoadAsDouble(d, x + i), vc), resolution, out + i);
  }
  for (; i < n; ++i) out[i] = SketchIndexOf(ToDouble(LoadUnaligned(x + i)) - center, resolution);
}

template <typename In>
void SketchIndexRowsTyped(const In* HWY_RESTRICT x, size_t rows, size_t row_len,
                          const double* HWY_RESTRICT center, int resolution,
                          int32_t* HWY_RESTRICT out) {
  if (row_len == 1) {
    SketchIndexRunTyped(x, rows, center[0], resolution, out);
    return;
  }
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  for (size_t r = 0; r < rows; ++r, x += row_len, out += row_len) {
    size_t j = 0;
    for (; j + lanes <= row_len; j += lanes) {
      StoreSketchIndex(d, hn::Sub(LoadAsDouble(d, x + j), hn::LoadU(d, center + j)), resolution,
                       out + j);
    }
    for (; j < row_len; ++j) {
      out[j] = SketchIndexOf(ToDouble(LoadUnaligned(x + j)) - center[j], resolution);
    }
  }
}

// Float32 values about center 0 need no float64 lanes: a normal float32's float64 bits
// are its own, the exponent rebiased by 896 and the mantissa shifted left by 29, so
// its index at resolution r <= 23 comes from its bits in 32-bit lanes, twice the
// lanes of the float64 body. Zeros index 0; a vector holding a subnormal, infinity or
// NaN goes through the float64 body, so every slot is the reference's.
template <class D32>
HWY_INLINE bool StoreFloat32Slots(D32 du, const float* HWY_RESTRICT x, int resolution, int32_t low,
                                  uint32_t window, uint32_t* HWY_RESTRICT out) {
  // Signed compares (every target has them): abs and the offsets that matter are below
  // 2^31, and an offset that wrapped below `low` is negative.
  const hn::RebindToSigned<D32> di;
  const auto bits = hn::LoadU(du, reinterpret_cast<const uint32_t*>(x));
  const auto abs = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7fffffffu)));
  const auto zero = hn::Eq(abs, hn::Zero(di));
  const auto normal =
      hn::And(hn::Gt(abs, hn::Set(di, 0x007fffff)), hn::Lt(abs, hn::Set(di, 0x7f800000)));
  if (!hn::AllTrue(di, hn::Or(normal, zero))) return false;
  const auto negative = hn::IfThenZeroElse(zero, hn::BitCast(di, hn::ShiftRight<31>(bits)));
  const auto magnitude =
      hn::IfThenZeroElse(zero, hn::Add(hn::ShiftRightSame(hn::Sub(abs, negative), 23 - resolution),
                                       hn::Set(di, 896 << resolution)));
  const auto offset = hn::Sub(magnitude, hn::Set(di, low));
  const auto in_window = hn::And(hn::Gt(offset, hn::Set(di, -1)),
                                 hn::Lt(offset, hn::Set(di, static_cast<int32_t>(window))));
  const auto slot =
      hn::Add(hn::And(hn::Neg(negative), hn::Set(di, static_cast<int32_t>(window))), offset);
  const auto spill = hn::Set(di, static_cast<int32_t>(2 * window));
  hn::StoreU(hn::BitCast(du, hn::IfThenElse(in_window, slot, spill)), du, out);
  return true;
}

// The positions of the spill slot among slot[0, n), in order, into `positions`; how
// many. One compare a vector: spills are rare (a zero, a far outlier), and a scalar
// scan of a whole tile for them would cost as much as counting it.
HWY_INLINE size_t CollectSpills(const uint32_t* HWY_RESTRICT slot, size_t n, uint32_t spill,
                                uint32_t* HWY_RESTRICT positions) {
  const hn::ScalableTag<uint32_t> du;
  const size_t lanes = hn::Lanes(du);
  const auto vspill = hn::Set(du, spill);
  size_t count = 0, i = 0;
  for (; i + lanes <= n; i += lanes) {
    if (hn::AllFalse(du, hn::Eq(hn::LoadU(du, slot + i), vspill))) continue;
    for (size_t k = i; k < i + lanes; ++k) {
      positions[count] = static_cast<uint32_t>(k);
      count += slot[k] == spill;
    }
  }
  for (; i < n; ++i) {
    positions[count] = static_cast<uint32_t>(i);
    count += slot[i] == spill;
  }
  return count;
}

template <typename In>
size_t SketchSlotRunTyped(const In* HWY_RESTRICT x, size_t n, double center, int resolution,
                          int32_t low, uint32_t window, uint32_t* HWY_RESTRICT out,
                          uint32_t* HWY_RESTRICT spilled) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  const auto vc = hn::Set(d, center);
  size_t i = 0;
#if HWY_TARGET != HWY_SCALAR  // one lane: nothing to gain
  if constexpr (std::is_same_v<In, float>) {
    if (center == 0) {
      const hn::Repartition<uint32_t, decltype(d)> du;
      for (; i + 2 * lanes <= n; i += 2 * lanes) {
        if (StoreFloat32Slots(du, x + i, resolution, low, window, out + i)) continue;
        StoreSketchSlot(d, LoadAsDouble(d, x + i), resolution, low, window, out + i);
        StoreSketchSlot(d, LoadAsDouble(d, x + i + lanes), resolution, low, window,
                        out + i + lanes);
      }
    }
  }
#endif
  for (; i + lanes <= n; i += lanes) {
    StoreSketchSlot(d, hn::Sub(LoadAsDouble(d, x + i), vc), resolution, low, window, out + i);
  }
  for (; i < n; ++i) {
    const int32_t index = SketchIndexOf(ToDouble(LoadUnaligned(x + i)) - center, resolution);
    out[i] = SketchSlotOf(index, low, window);
  }
  return CollectSpills(out, n, 2 * window, spilled);
}

size_t SketchSlotRunImpl(DType in, const std::byte* x, size_t n, double center, int resolution,
                         int32_t low, uint32_t window, uint32_t* slot, uint32_t* spilled) {
  return VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    return SketchSlotRunTyped(reinterpret_cast<const T*>(x), n, center, resolution, low, window,
                              slot, spilled);
  });
}

void SketchIndexRowsImpl(DType in, const std::byte* x, size_t rows, size_t row_len,
                         const double* center, int resolution, int32_t* index) {
  VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    SketchIndexRowsTyped(reinterpret_cast<const T*>(x), rows, row_len, center, resolution, index);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
