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

// Weighted sums: value x with weight w (w >= 0, finite) adds w and w^2 to `weight` and
// `weight_squares`, w * d and w * d^2 to sum and sum_squares, 1 to `count` and x to
// min and max when w > 0, and
// nothing at all when w == 0 (a masked value may hold anything, NaN included).
// sum_squares is non-finite if a value with w > 0 is, as above.
struct WeightedMomentSums {
  double weight = 0.0;
  double sum = 0.0;
  double sum_squares = 0.0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double count = 0.0;
  double weight_squares = 0.0;
};

// Per-column accumulators of WeightedMomentSumsRows, row_len entries each.
struct WeightedColumns {
  double* weight;
  double* sum;
  double* sum_squares;
  double* min;
  double* max;
  double* count;
  double* weight_squares;
};

// Over x[0, n) with weights w[0, n).
WeightedMomentSums WeightedMomentSumsRun(DType in, const std::byte* x, const double* w, size_t n,
                                         double shift);

// Column-wise over a rows x row_len array and its weights, laid out alike, added into
// the caller's accumulators.
void WeightedMomentSumsRows(DType in, const std::byte* x, const double* w, size_t rows,
                            size_t row_len, const double* shift, const WeightedColumns& out);

// Plain scalar references with the same contracts.
MomentSums MomentSumsRunReference(DType in, const std::byte* x, size_t n, double shift);
void MomentSumsRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                             const double* shift, double* sum, double* sum_squares, double* min,
                             double* max);
WeightedMomentSums WeightedMomentSumsRunReference(DType in, const std::byte* x, const double* w,
                                                  size_t n, double shift);
void WeightedMomentSumsRowsReference(DType in, const std::byte* x, const double* w, size_t rows,
                                     size_t row_len, const double* shift,
                                     const WeightedColumns& out);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_MOMENT_SUMS_H_
