// Compiles moment_sums-inl.h for every Highway target and dispatches at run time.
#include "core/kernels/moment_sums.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernels/moment_sums.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/kernels/moment_sums-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
namespace normd {

HWY_EXPORT(MomentSumsRunImpl);
HWY_EXPORT(MomentSumsRowsImpl);
HWY_EXPORT(WeightedMomentSumsRunImpl);
HWY_EXPORT(WeightedMomentSumsRowsImpl);

WeightedMomentSums WeightedMomentSumsRun(DType in, const std::byte* x, const double* w, size_t n,
                                         double shift) {
  return HWY_DYNAMIC_DISPATCH(WeightedMomentSumsRunImpl)(in, x, w, n, shift);
}

void WeightedMomentSumsRows(DType in, const std::byte* x, const double* w, size_t rows,
                            size_t row_len, const double* shift, const WeightedColumns& out) {
  HWY_DYNAMIC_DISPATCH(WeightedMomentSumsRowsImpl)(in, x, w, rows, row_len, shift, out);
}

MomentSums MomentSumsRun(DType in, const std::byte* x, size_t n, double shift) {
  return HWY_DYNAMIC_DISPATCH(MomentSumsRunImpl)(in, x, n, shift);
}

void MomentSumsRows(DType in, const std::byte* x, size_t rows, size_t row_len, const double* shift,
                    double* sum, double* sum_squares, double* min, double* max) {
  HWY_DYNAMIC_DISPATCH(MomentSumsRowsImpl)(in, x, rows, row_len, shift, sum, sum_squares, min, max);
}

}  // namespace normd
#endif  // HWY_ONCE
