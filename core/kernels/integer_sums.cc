// Compiles integer_sums-inl.h for every Highway target and dispatches at run time.
#include "core/kernels/integer_sums.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/kernels/integer_sums.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/kernels/integer_sums-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <algorithm>

namespace normd {

HWY_EXPORT(U8SumsRunImpl);

IntegerSums U8SumsRun(const uint8_t* x, size_t n) {
  return HWY_DYNAMIC_DISPATCH(U8SumsRunImpl)(x, n);
}

// Down columns: the compiler vectorises the inner loop across columns (NC and NHWC
// batches have short rows of a few channels repeated).
void U8SumsRows(const uint8_t* x, size_t rows, size_t row_len, uint64_t* sum, uint64_t* sum_squares,
                uint8_t* min, uint8_t* max) {
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = x + r * row_len;
    for (size_t j = 0; j < row_len; ++j) {
      const uint8_t v = row[j];
      sum[j] += v;
      sum_squares[j] += static_cast<uint32_t>(v) * v;
      min[j] = std::min(min[j], v);
      max[j] = std::max(max[j], v);
    }
  }
}

}  // namespace normd
#endif  // HWY_ONCE
