// The fit on the device: MomentTiles reduces each tile to partials (one per group of
// threads, through a fixed tree in shared memory), MergeSegments folds each segment's
// slots, FoldFactors turns segments into a batch-statistics scheme's factors. Every
// step is a function of segment_moments.h, run in the same order the host emulation
// runs it.
#include "core/kernels/cuda/launch.h"

namespace normd::cuda_kernels {
namespace {

template <typename In, typename Partial>
__global__ void __launch_bounds__(kMomentThreads)
    MomentTiles(const In* __restrict__ x, MomentTiling tiling, Partial* __restrict__ slots,
                unsigned long long* first_nonfinite) {
  __shared__ Partial partials[kMomentThreads];
  const ThreadTile tile = TileOfThread(tiling, blockIdx.x, threadIdx.x);
  partials[tile.shared] =
      tile.slot == kNoIndex ? Partial{} : ThreadMoments(x, tile, first_nonfinite);
  __syncthreads();
  for (uint64_t stride = TreeTop(tiling.lanes); stride > 0; stride >>= 1) {
    TreeStep(partials, tiling.width, tiling.lanes, stride, threadIdx.x);
    __syncthreads();
  }
  // Lane 0 of each group holds its group's partial.
  if (tile.slot != kNoIndex && tile.shared < tiling.width) slots[tile.slot] = partials[tile.shared];
}

template <typename Partial>
__global__ void __launch_bounds__(kMergeThreads)
    MergeSegments(const Partial* __restrict__ slots, uint64_t slots_per_segment,
                  MomentPartial* __restrict__ segments) {
  __shared__ Partial partials[kMergeThreads];
  partials[threadIdx.x] = MergeSlotsOfThread(slots, slots_per_segment, blockIdx.x, threadIdx.x);
  __syncthreads();
  for (uint64_t stride = kMergeThreads / 2; stride > 0; stride >>= 1) {
    TreeStep(partials, 1, kMergeThreads, stride, threadIdx.x);
    __syncthreads();
  }
  if (threadIdx.x == 0) segments[blockIdx.x] = MomentsOf(partials[0]);
}

__global__ void FoldFactors(SegmentGeometry g, const MomentPartial* __restrict__ segments,
                            double eps, const double* __restrict__ gamma,
                            const double* __restrict__ beta, double* __restrict__ center,
                            double* __restrict__ scale, double* __restrict__ shift) {
  const uint64_t factor = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (factor >= g.units * g.channels) return;
  const uint64_t unit = factor / g.channels;
  const uint64_t channel = factor % g.channels;
  const uint64_t segment = unit * g.groups + channel / (g.channels / g.groups);
  const FoldedFactor f = FoldBatchStatistics(
      segments[segment], static_cast<double>(g.segment_values()), eps, gamma, beta, channel);
  center[factor] = f.center;
  scale[factor] = f.scale;
  shift[factor] = f.shift;
}

template <typename In, typename Partial>
cudaError_t LaunchTyped(const In* x, const MomentTiling& tiling, void* slots,
                        MomentPartial* segments, unsigned long long* first_nonfinite,
                        cudaStream_t stream) {
  auto* typed_slots = static_cast<Partial*>(slots);
  MomentTiles<In, Partial><<<static_cast<unsigned>(tiling.blocks), kMomentThreads, 0, stream>>>(
      x, tiling, typed_slots, first_nonfinite);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  MergeSegments<Partial><<<static_cast<unsigned>(tiling.g.segments()), kMergeThreads, 0, stream>>>(
      typed_slots, tiling.slots_per_segment, segments);
  return cudaGetLastError();
}

}  // namespace

size_t SegmentSlotBytes(DType in, const MomentTiling& tiling) {
  return VisitDType(in,
                    [&](auto tag) { return tiling.slots() * sizeof(PartialOf<decltype(tag)>); });
}

cudaError_t LaunchSegmentMoments(DType in, const void* x, const MomentTiling& tiling, void* slots,
                                 MomentPartial* segments, unsigned long long* first_nonfinite,
                                 cudaStream_t stream) {
  if (tiling.g.segments() == 0) return cudaSuccess;
  return VisitDType(in, [&](auto tag) {
    using In = decltype(tag);
    return LaunchTyped<In, PartialOf<In>>(static_cast<const In*>(x), tiling, slots, segments,
                                          first_nonfinite, stream);
  });
}

cudaError_t LaunchFoldBatchStatistics(const SegmentGeometry& g, const MomentPartial* segments,
                                      double eps, const double* gamma, const double* beta,
                                      double* center, double* scale, double* shift,
                                      cudaStream_t stream) {
  const uint64_t factors = g.units * g.channels;
  if (factors == 0) return cudaSuccess;
  constexpr unsigned kThreads = 256;
  FoldFactors<<<static_cast<unsigned>(CeilDiv(factors, kThreads)), kThreads, 0, stream>>>(
      g, segments, eps, gamma, beta, center, scale, shift);
  return cudaGetLastError();
}

}  // namespace normd::cuda_kernels
