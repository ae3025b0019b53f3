// Compiles piecewise_map-inl.h for every Highway target and dispatches at run time.
#include "core/kernels/piecewise_map.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernels/piecewise_map.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/kernels/piecewise_map-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace normd {

HWY_EXPORT(PiecewiseMapRunImpl);

void PiecewiseMapRun(DType in, DType out, const std::byte* x, size_t n, const PiecewiseTable& table,
                     std::byte* y) {
  HWY_DYNAMIC_DISPATCH(PiecewiseMapRunImpl)(in, out, x, n, table, y);
}

}  // namespace normd
#endif  // HWY_ONCE
