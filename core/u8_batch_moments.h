// The fit of a uint8 batch in integer arithmetic (core/kernels/integer_sums.h): each
// channel's count, sum and sum of squares are exact integers whatever the parts the
// pool splits the batch into, and are rounded once into double-double moments, so
// the moments of a uint8 batch are exact to double-double precision and do not
// depend on the split.
#ifndef NORMD_CORE_U8_BATCH_MOMENTS_H_
#define NORMD_CORE_U8_BATCH_MOMENTS_H_

#include <cstdint>
#include <span>

#include "core/channel_moments.h"
#include "core/kernel_plan.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// Per-channel totals of uint8 values, exact.
struct U8ChannelTotals {
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t sum_squares = 0;
  uint8_t min = 255;
  uint8_t max = 0;
};

// count, mean = sum / count and M2 = (count * sum_squares - sum^2) / count, the
// numerators exact in 128-bit integers and each divided once in double-double.
ChannelMoments MomentsOfTotals(const U8ChannelTotals& totals);

// The moments of `batch` (uint8, walked by `walk`) into `out` (walk.channels).
void ComputeU8BatchMoments(const TensorView& batch, const KernelWalk& walk,
                           std::span<ChannelMoments> out, WorkerPool* pool);

}  // namespace normd

#endif  // NORMD_CORE_U8_BATCH_MOMENTS_H_
