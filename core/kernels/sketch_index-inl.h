// Highway body of the SketchIndex kernels (see sketch_index.h), compiled once per
// target by sketch_index.cc.
#if defined(NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#undef NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#else
#define NORMD_CORE_KERNELS_SKETCH_INDEX_INL_H_
#endif

#include <algorithm>
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
HWY_INLINE bool StoreFloat32Slots(D32 du, const float* HWY_RESTRICT x, int resolution,
                                  hn::Vec<hn::RebindToSigned<D32>> low,
                                  hn::Vec<hn::RebindToSigned<D32>> base, uint32_t window,
                                  uint32_t* HWY_RESTRICT out, bool& all_in_window) {
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
  const auto offset = hn::Sub(magnitude, low);
  const auto in_window = hn::And(hn::Gt(offset, hn::Set(di, -1)),
                                 hn::Lt(offset, hn::Set(di, static_cast<int32_t>(window))));
  const auto slot =
      hn::Add(hn::And(hn::Neg(negative), hn::Set(di, static_cast<int32_t>(window))), offset);
  const auto spill = hn::Set(di, static_cast<int32_t>(2 * window));
  hn::StoreU(hn::BitCast(du, hn::Add(base, hn::IfThenElse(in_window, slot, spill))), du, out);
  all_in_window = hn::AllTrue(di, in_window);
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
      const hn::RebindToSigned<decltype(du)> di;
      const auto vlow = hn::Set(di, low);
      bool inside = true;  // spills are collected below
      for (; i + 2 * lanes <= n; i += 2 * lanes) {
        if (StoreFloat32Slots(du, x + i, resolution, vlow, hn::Zero(di), window, out + i, inside)) {
          continue;
        }
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

// SketchSlotRows: per-column centers, windows and table bases in float64 lanes, or,
// for float32 rows about 0, from the values' own bits in 32-bit lanes.
template <typename In>
size_t SketchSlotRowsTyped(const In* HWY_RESTRICT x, size_t rows, size_t row_len,
                           const double* HWY_RESTRICT center, int resolution,
                           const uint32_t* HWY_RESTRICT low, const uint32_t* HWY_RESTRICT base,
                           uint32_t window, uint32_t* HWY_RESTRICT out,
                           uint32_t* HWY_RESTRICT spilled) {
  const hn::ScalableTag<double> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const hn::Rebind<uint32_t, decltype(d)> du32;
  const size_t lanes = hn::Lanes(d);
  const auto vwindow = hn::Set(du, window);
  size_t count = 0;
  // The spilled positions among columns [j, j + k) of the row starting at `start`.
  const auto record = [&](size_t start, size_t j, size_t k) {
    for (size_t c = j; c < j + k; ++c) {
      spilled[count] = static_cast<uint32_t>(start + c);
      count += out[start + c] == base[c] + 2 * window;
    }
  };
  // Columns [j, j + lanes) in float64 lanes.
  const auto float64_lanes = [&](const In* xr, size_t start, size_t j) {
    hn::Vec<decltype(du)> magnitude, negative;
    IndexLanes(d, hn::Sub(LoadAsDouble(d, xr + j), hn::LoadU(d, center + j)), resolution, magnitude,
               negative);
    const auto offset = hn::And(hn::Sub(magnitude, hn::PromoteTo(du, hn::LoadU(du32, low + j))),
                                hn::Set(du, 0xffffffffull));
    const auto in_window = hn::Lt(offset, vwindow);
    const auto local = hn::IfThenElse(
        in_window, hn::Add(hn::And(hn::Sub(hn::Zero(du), negative), vwindow), offset),
        hn::Add(vwindow, vwindow));
    const auto slot = hn::Add(local, hn::PromoteTo(du, hn::LoadU(du32, base + j)));
    hn::StoreU(hn::TruncateTo(du32, slot), du32, out + start + j);
    if (!hn::AllTrue(du, in_window)) record(start, j, lanes);
  };
  bool own_bits = false;
#if HWY_TARGET != HWY_SCALAR
  own_bits = std::is_same_v<In, float> &&
             std::all_of(center, center + row_len, [](double c) { return c == 0; });
#endif
  for (size_t r = 0; r < rows; ++r) {
    const In* xr = x + r * row_len;
    const size_t start = r * row_len;
    size_t j = 0;
#if HWY_TARGET != HWY_SCALAR
    if constexpr (std::is_same_v<In, float>) {
      const hn::Repartition<uint32_t, decltype(d)> d32;
      const hn::RebindToSigned<decltype(d32)> di;
      for (; own_bits && j + 2 * lanes <= row_len; j += 2 * lanes) {
        bool inside = true;
        const auto vlow = hn::BitCast(di, hn::LoadU(d32, low + j));
        const auto vbase = hn::BitCast(di, hn::LoadU(d32, base + j));
        if (StoreFloat32Slots(d32, xr + j, resolution, vlow, vbase, window, out + start + j,
                              inside)) {
          if (!inside) record(start, j, 2 * lanes);
          continue;
        }
        float64_lanes(xr, start, j);
        float64_lanes(xr, start, j + lanes);
      }
    }
#endif
    for (; j + lanes <= row_len; j += lanes) float64_lanes(xr, start, j);
    for (; j < row_len; ++j) {
      const int32_t index = SketchIndexOf(ToDouble(LoadUnaligned(xr + j)) - center[j], resolution);
      const uint32_t local = SketchSlotOf(index, static_cast<int32_t>(low[j]), window);
      out[start + j] = base[j] + local;
      spilled[count] = static_cast<uint32_t>(start + j);
      count += local == 2 * window;
    }
  }
  return count;
}

size_t SketchSlotRowsImpl(DType in, const std::byte* x, size_t rows, size_t row_len,
                          const double* center, int resolution, const uint32_t* low,
                          const uint32_t* base, uint32_t window, uint32_t* slot,
                          uint32_t* spilled) {
  return VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    return SketchSlotRowsTyped(reinterpret_cast<const T*>(x), rows, row_len, center, resolution,
                               low, base, window, slot, spilled);
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
