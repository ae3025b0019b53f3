#include <algorithm>

#include "core/kernels/element.h"
#include "core/kernels/piecewise_map.h"

namespace normd {

void PiecewiseMapRunReference(DType in, DType out, const std::byte* x, size_t n,
                              const PiecewiseTable& table, std::byte* y) {
  VisitDType(in, [&](auto in_tag) {
    VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      for (size_t i = 0; i < n; ++i) {
        const double v = ToDouble(LoadElement<In>(x, i));
        // The last segment whose start is <= v (segment 0 starts at -inf; NaN: 0).
        const double* after = std::upper_bound(table.start + 1, table.start + table.segments, v);
        const auto k = static_cast<size_t>(after - table.start - 1);
        double value = PiecewiseValue(v, table, k);
        if (value < table.low) value = table.low;
        if (value > table.high) value = table.high;
        StoreElement<Out>(y, i, FromDouble<Out>(value));
      }
    });
  });
}

}  // namespace normd
