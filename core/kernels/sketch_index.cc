// Compiles sketch_index-inl.h for every Highway target and dispatches at run time.
#include "core/kernels/sketch_index.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernels/sketch_index.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/kernels/sketch_index-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace normd {

HWY_EXPORT(SketchIndexRowsImpl);
HWY_EXPORT(SketchSlotRunImpl);
HWY_EXPORT(SketchSlotRowsImpl);

size_t SketchSlotRows(DType in, const std::byte* x, size_t rows, size_t row_len,
                      const double* center, int resolution, const uint32_t* low,
                      const uint32_t* base, uint32_t window, uint32_t* slot, uint32_t* spilled) {
  return HWY_DYNAMIC_DISPATCH(SketchSlotRowsImpl)(in, x, rows, row_len, center, resolution, low,
                                                  base, window, slot, spilled);
}

size_t SketchSlotRun(DType in, const std::byte* x, size_t n, double center, int resolution,
                     int32_t low, uint32_t window, uint32_t* slot, uint32_t* spilled) {
  return HWY_DYNAMIC_DISPATCH(SketchSlotRunImpl)(in, x, n, center, resolution, low, window, slot,
                                                 spilled);
}

void SketchIndexRun(DType in, const std::byte* x, size_t n, double center, int resolution,
                    int32_t* index) {
  HWY_DYNAMIC_DISPATCH(SketchIndexRowsImpl)(in, x, n, 1, &center, resolution, index);
}

void SketchIndexRows(DType in, const std::byte* x, size_t rows, size_t row_len,
                     const double* center, int resolution, int32_t* index) {
  HWY_DYNAMIC_DISPATCH(SketchIndexRowsImpl)(in, x, rows, row_len, center, resolution, index);
}

}  // namespace normd
#endif  // HWY_ONCE
