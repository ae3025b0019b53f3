#include <algorithm>

#include "core/kernels/integer_sums.h"

namespace normd {

IntegerSums U8SumsRunReference(const uint8_t* x, size_t n) {
  IntegerSums out;
  for (size_t i = 0; i < n; ++i) {
    out.sum += x[i];
    out.sum_squares += static_cast<uint64_t>(x[i]) * x[i];
    out.min = std::min(out.min, x[i]);
    out.max = std::max(out.max, x[i]);
  }
  return out;
}

}  // namespace normd
