// Microkernels reducing raw little-endian arrays to shifted power sums in float64:
// for d = x - shift, the sum of d, the sum of d^2, and the min and max of x. A
// caller that keeps |mean - shift| small relative to the spread (see
// core/batch_moments.cc) gets M2 = sum(d^2) - sum(d)^2 / n without cancellation.
//
// If any input is non-finite, sum_squares is non-finite (it adds d^2 >= 0, so
// nothing cancels an infinity) and the other results are unspecified: callers
// check sum_squares and fall back to the scalar path, which applies the dataset's
// non-finite policy element by element.
#ifndef NORMD_CORE_KERNELS_MOMENT_SUMS_H_
#define NORMD_CORE_KERNELS_MOMENT_SUMS_H_

#include <cstddef>
#include <limits>

#include "core/dtype.h"

namespace normd {

struct MomentSums {
  double sum = 0.0;
  double sum_squares = 0.0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

// Over x[0, n) with one shift. Each float64 lane adds at most
// ceil(n / (4 * Lanes)) terms, so callers bound n to bound the rounding error.
MomentSums MomentSumsRun(DType in, const std::byte* x, size_t n, double shift);

// Column-wise over a rows x row_len array, added into the caller's accumulators:
// for every j < row_len, over r < rows, with d = x[r * row_len + j] - shift[j]:
// sum[j] += d, sum_squares[j] += d^2, min[j] and max[j] take x.
void MomentSumsRows(DType in, const std::byte* x, size_t rows, size_t row_len, const double* shift,
                    double* sum, double* sum_squares, double* min, double* max);

// Plain scalar references with the same contracts.
MomentSums MomentSumsRunReference(DType in, const std::byte* x, size_t n, double shift);
void MomentSumsRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                             const double* shift, double* sum, double* sum_squares, double* min,
                             double* max);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_MOMENT_SUMS_H_
