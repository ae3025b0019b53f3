// Exact sums of uint8 values in integer lanes: the sum, the sum of squares, the min
// and the max. Integer addition is exact and associative, so the moments built from
// these (core/u8_batch_moments.cc) do not depend on how the data were split, and the
// kernel reads bytes as fast as memory gives them (SAD-style byte sums, 16-bit
// multiply-adds for the squares) instead of widening each one to float64.
#ifndef NORMD_CORE_KERNELS_INTEGER_SUMS_H_
#define NORMD_CORE_KERNELS_INTEGER_SUMS_H_

#include <cstddef>
#include <cstdint>

namespace normd {

struct IntegerSums {
  uint64_t sum = 0;
  uint64_t sum_squares = 0;
  uint8_t min = 255;  // of no values: 255 and 0, the identities of min and max
  uint8_t max = 0;
};

// Over x[0, n); exact for n < 2^48 (255^2 * n then fits in 64 bits).
IntegerSums U8SumsRun(const uint8_t* x, size_t n);

// Column-wise over a rows x row_len array, added into the caller's accumulators.
void U8SumsRows(const uint8_t* x, size_t rows, size_t row_len, uint64_t* sum, uint64_t* sum_squares,
                uint8_t* min, uint8_t* max);

// The plain scalar reference of U8SumsRun.
IntegerSums U8SumsRunReference(const uint8_t* x, size_t n);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_INTEGER_SUMS_H_
