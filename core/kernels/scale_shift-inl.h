// Highway body of the ScaleShift kernels (see scale_shift.h), compiled once per
// target by scale_shift.cc.
#if defined(NORMD_CORE_KERNELS_SCALE_SHIFT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NORMD_CORE_KERNELS_SCALE_SHIFT_INL_H_
#undef NORMD_CORE_KERNELS_SCALE_SHIFT_INL_H_
#else
#define NORMD_CORE_KERNELS_SCALE_SHIFT_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "core/kernels/convert-inl.h"
#include "core/kernels/element.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace normd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class V>
HWY_INLINE V ScaleShiftLanes(V x, V center, V scale, V shift) {
  return hn::Add(hn::Mul(hn::Sub(x, center), scale), shift);
}

// How many leading elements to write with scalar code so that the rest of `y` is
// aligned for StreamPairFromDouble (Lanes(d) * 8 bytes).
template <typename Out, class D>
HWY_INLINE size_t StreamingPeel(D d, const Out* y, size_t n) {
  const size_t vector_bytes = hn::Lanes(d) * sizeof(double);
  const auto address = reinterpret_cast<uintptr_t>(y);
  if (address % sizeof(Out) != 0) return n;  // cannot ever align: write it all normally
  const size_t misaligned = address % vector_bytes;
  const size_t peel = misaligned == 0 ? 0 : (vector_bytes - misaligned) / sizeof(Out);
  return peel < n ? peel : n;
}

// One element of a tail, through unaligned scalar access.
template <typename In, typename Out>
HWY_INLINE void ScaleShiftOne(const In* x, double center, double scale, double shift, Out* y) {
  StoreUnaligned(
      y, FromDouble<Out>(ScaleShiftValue(ToDouble(LoadUnaligned(x)), center, scale, shift)));
}

template <typename In, typename Out>
void ScaleShiftRunTyped(const In* HWY_RESTRICT x, size_t n, double center, double scale,
                        double shift, Out* HWY_RESTRICT y, bool streaming) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  const auto vc = hn::Set(d, center);
  const auto vs = hn::Set(d, scale);
  const auto vb = hn::Set(d, shift);
  size_t i = 0;
  if (streaming) {
    for (const size_t peel = StreamingPeel(d, y, n); i < peel; ++i) {
      ScaleShiftOne(x + i, center, scale, shift, y + i);
    }
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
      const auto a = ScaleShiftLanes(LoadAsDouble(d, x + i), vc, vs, vb);
      const auto b = ScaleShiftLanes(LoadAsDouble(d, x + i + lanes), vc, vs, vb);
      StreamPairFromDouble(d, a, b, y + i);
    }
    hwy::FlushStream();
  }
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto a = ScaleShiftLanes(LoadAsDouble(d, x + i), vc, vs, vb);
    const auto b = ScaleShiftLanes(LoadAsDouble(d, x + i + lanes), vc, vs, vb);
    StoreFromDouble(d, a, y + i);
    StoreFromDouble(d, b, y + i + lanes);
  }
  for (; i + lanes <= n; i += lanes) {
    StoreFromDouble(d, ScaleShiftLanes(LoadAsDouble(d, x + i), vc, vs, vb), y + i);
  }
  for (; i < n; ++i) {
    ScaleShiftOne(x + i, center, scale, shift, y + i);
  }
}

template <typename In, typename Out>
void ScaleShiftRowsTyped(const In* HWY_RESTRICT x, size_t rows, size_t row_len,
                         const double* HWY_RESTRICT center, const double* HWY_RESTRICT scale,
                         const double* HWY_RESTRICT shift, Out* HWY_RESTRICT y, bool streaming) {
  const hn::ScalableTag<double> d;
  const size_t lanes = hn::Lanes(d);
  // Non-temporal stores only when every row starts on a vector-pair boundary.
  const bool stream = streaming && row_len % (2 * lanes) == 0 &&
                      (rows * row_len == 0 || StreamingPeel(d, y, rows * row_len) == 0);
  const auto lanes_at = [&](const In* xr, size_t j) {
    return ScaleShiftLanes(LoadAsDouble(d, xr + j), hn::LoadU(d, center + j),
                           hn::LoadU(d, scale + j), hn::LoadU(d, shift + j));
  };
  for (size_t r = 0; r < rows; ++r) {
    const In* HWY_RESTRICT xr = x + r * row_len;
    Out* HWY_RESTRICT yr = y + r * row_len;
    size_t j = 0;
    if (stream) {
      for (; j < row_len; j += 2 * lanes) {
        StreamPairFromDouble(d, lanes_at(xr, j), lanes_at(xr, j + lanes), yr + j);
      }
    }
    for (; j + lanes <= row_len; j += lanes) StoreFromDouble(d, lanes_at(xr, j), yr + j);
    for (; j < row_len; ++j) {
      ScaleShiftOne(xr + j, center[j], scale[j], shift[j], yr + j);
    }
  }
  if (stream) hwy::FlushStream();
}

const char* KernelTargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

// Entry points, one per target: resolve the dtypes once per call.
void ScaleShiftRunImpl(DType in, DType out, const std::byte* x, size_t n, double center,
                       double scale, double shift, std::byte* y, bool streaming) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      ScaleShiftRunTyped(reinterpret_cast<const In*>(x), n, center, scale, shift,
                         reinterpret_cast<Out*>(y), streaming);
    });
  });
}

void ScaleShiftRowsImpl(DType in, DType out, const std::byte* x, size_t rows, size_t row_len,
                        const double* center, const double* scale, const double* shift,
                        std::byte* y, bool streaming) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      ScaleShiftRowsTyped(reinterpret_cast<const In*>(x), rows, row_len, center, scale, shift,
                          reinterpret_cast<Out*>(y), streaming);
    });
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace normd
HWY_AFTER_NAMESPACE();

#endif  // include guard
