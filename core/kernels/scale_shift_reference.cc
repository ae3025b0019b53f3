#include "core/kernels/element.h"
#include "core/kernels/scale_shift.h"

namespace normd {
namespace {

template <typename In, typename Out>
void RowsReference(const std::byte* x, size_t rows, size_t row_len, const double* center,
                   const double* scale, const double* shift, std::byte* y) {
  for (size_t r = 0, index = 0; r < rows; ++r) {
    for (size_t j = 0; j < row_len; ++j, ++index) {
      const double v = ToDouble(LoadElement<In>(x, index));
      StoreElement<Out>(y, index,
                        FromDouble<Out>(ScaleShiftValue(v, center[j], scale[j], shift[j])));
    }
  }
}

}  // namespace

void ScaleShiftRunReference(DType in, DType out, const std::byte* x, size_t n, double center,
                            double scale, double shift, std::byte* y) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      RowsReference<decltype(in_tag), decltype(out_tag)>(x, n, 1, &center, &scale, &shift, y);
    });
  });
}

void ScaleShiftRowsReference(DType in, DType out, const std::byte* x, size_t rows, size_t row_len,
                             const double* center, const double* scale, const double* shift,
                             std::byte* y) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      RowsReference<decltype(in_tag), decltype(out_tag)>(x, rows, row_len, center, scale, shift, y);
    });
  });
}

}  // namespace normd
