// The moments of exact integer totals (count, sum, sum of squares), each rounded once:
// what the CPU's uint8 fit (core/u8_batch_moments.h) and the CUDA kernels
// (core/kernels/cuda/segment_moments.h) both make of their integer sums, so their
// moments are the same bits.
#ifndef NORMD_CORE_KERNELS_INTEGER_MOMENTS_H_
#define NORMD_CORE_KERNELS_INTEGER_MOMENTS_H_

#include <cstdint>

#include "core/kernels/double_double.h"
#include "core/kernels/host_device.h"

namespace normd {

// v exactly (v < 2^106): the nearest double and the exact remainder.
NORMD_HD inline DoubleDouble ExactDoubleDouble(unsigned __int128 v) {
  const auto hi = static_cast<double>(v);
  const auto rest = static_cast<__int128>(v) - static_cast<__int128>(hi);
  return QuickTwoSum(hi, static_cast<double>(rest));
}

struct IntegerMoments {
  DoubleDouble mean;
  DoubleDouble m2;
};

// mean = sum / count and M2 = (count * sum_squares - sum^2) / count, the numerators
// exact in 128-bit integers and each divided once in double-double. count > 0.
NORMD_HD inline IntegerMoments MomentsOfIntegerSums(uint64_t count, uint64_t sum,
                                                    uint64_t sum_squares) {
  const auto n = static_cast<double>(count);
  const unsigned __int128 spread = static_cast<unsigned __int128>(count) * sum_squares -
                                   static_cast<unsigned __int128>(sum) * sum;
  return {ExactDoubleDouble(sum) / n, ExactDoubleDouble(spread) / n};
}

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_INTEGER_MOMENTS_H_
