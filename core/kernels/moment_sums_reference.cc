#include <algorithm>

#include "core/kernels/moment_sums.h"

namespace normd {
namespace {

template <typename In>
void RowsReference(const std::byte* x, size_t rows, size_t row_len, const double* shift,
                   double* sum, double* sum_squares, double* min, double* max) {
  for (size_t r = 0, index = 0; r < rows; ++r) {
    for (size_t j = 0; j < row_len; ++j, ++index) {
      const double v = ToDouble(LoadElement<In>(x, index));
      const double d = v - shift[j];
      sum[j] += d;
      sum_squares[j] += d * d;
      min[j] = std::min(min[j], v);
      max[j] = std::max(max[j], v);
    }
  }
}

template <typename In>
void WeightedRowsReference(const std::byte* x, const double* w, size_t rows, size_t row_len,
                           const double* shift, const WeightedColumns& out) {
  for (size_t r = 0, index = 0; r < rows; ++r) {
    for (size_t j = 0; j < row_len; ++j, ++index) {
      if (!(w[index] > 0)) continue;
      const double v = ToDouble(LoadElement<In>(x, index));
      const double d = v - shift[j];
      out.weight[j] += w[index];
      out.weight_squares[j] += w[index] * w[index];
      out.sum[j] += w[index] * d;
      out.sum_squares[j] += w[index] * d * d;
      out.min[j] = std::min(out.min[j], v);
      out.max[j] = std::max(out.max[j], v);
      out.count[j] += 1;
    }
  }
}

}  // namespace

WeightedMomentSums WeightedMomentSumsRunReference(DType in, const std::byte* x, const double* w,
                                                  size_t n, double shift) {
  WeightedMomentSums s;
  const WeightedColumns out{&s.weight, &s.sum,   &s.sum_squares,   &s.min,
                            &s.max,    &s.count, &s.weight_squares};
  VisitDType(in, [&](auto tag) { WeightedRowsReference<decltype(tag)>(x, w, n, 1, &shift, out); });
  return s;
}

void WeightedMomentSumsRowsReference(DType in, const std::byte* x, const double* w, size_t rows,
                                     size_t row_len, const double* shift,
                                     const WeightedColumns& out) {
  VisitDType(
      in, [&](auto tag) { WeightedRowsReference<decltype(tag)>(x, w, rows, row_len, shift, out); });
}

MomentSums MomentSumsRunReference(DType in, const std::byte* x, size_t n, double shift) {
  MomentSums sums;
  VisitDType(in, [&](auto tag) {
    RowsReference<decltype(tag)>(x, n, 1, &shift, &sums.sum, &sums.sum_squares, &sums.min,
                                 &sums.max);
  });
  return sums;
}

void MomentSumsRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                             const double* shift, double* sum, double* sum_squares, double* min,
                             double* max) {
  VisitDType(in, [&](auto tag) {
    RowsReference<decltype(tag)>(x, rows, row_len, shift, sum, sum_squares, min, max);
  });
}

}  // namespace normd
