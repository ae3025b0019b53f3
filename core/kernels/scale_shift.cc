// Compiles scale_shift-inl.h for every Highway target and dispatches at run time.
#include "core/kernels/scale_shift.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernels/scale_shift.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/kernels/scale_shift-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace normd {

HWY_EXPORT(KernelTargetNameImpl);
HWY_EXPORT(ScaleShiftRunImpl);
HWY_EXPORT(ScaleShiftRowsImpl);

const char* KernelTargetName() { return HWY_DYNAMIC_DISPATCH(KernelTargetNameImpl)(); }

void ScaleShiftRun(DType in, DType out, const std::byte* x, size_t n, double center, double scale,
                   double shift, std::byte* y, bool streaming) {
  HWY_DYNAMIC_DISPATCH(ScaleShiftRunImpl)(in, out, x, n, center, scale, shift, y, streaming);
}

void ScaleShiftRows(DType in, DType out, const std::byte* x, size_t rows, size_t row_len,
                    const double* center, const double* scale, const double* shift, std::byte* y,
                    bool streaming) {
  HWY_DYNAMIC_DISPATCH(ScaleShiftRowsImpl)
  (in, out, x, rows, row_len, center, scale, shift, y, streaming);
}

}  // namespace normd
#endif  // HWY_ONCE
