// The scale-shift map on the device: a grid-stride loop over spans of kSpan
// consecutive elements (MapSpan). Memory-bound: each span is one or two 16-byte
// accesses per thread on each side for 2- and 4-byte types.
#include "core/kernels/cuda/launch.h"
#include "core/kernels/element.h"

namespace normd::cuda_kernels {
namespace {

// No __restrict__: y may be x itself (in place, same element size); each element is
// read once, by the thread that then writes it.
template <typename In, typename Out>
__global__ void ScaleShiftMapKernel(const In* x, Out* y, MapGeometry geometry, MapFactors factors) {
  const uint64_t spans = (geometry.elements + kSpan - 1) / kSpan;
  const uint64_t step = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t span = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; span < spans;
       span += step) {
    MapSpan(x, y, geometry, factors, span * kSpan);
  }
}

}  // namespace

cudaError_t LaunchScaleShiftMap(DType in, DType out, const void* x, void* y,
                                const MapGeometry& geometry, const MapFactors& factors,
                                cudaStream_t stream) {
  if (geometry.elements == 0) return cudaSuccess;
  return VisitDType(in, [&](auto in_tag) {
    return VisitOutputDType(out, [&](auto out_tag) {
      using In = decltype(in_tag);
      using Out = decltype(out_tag);
      const auto blocks = static_cast<unsigned>(MapBlocks(geometry.elements));
      ScaleShiftMapKernel<In, Out><<<blocks, kMapThreads, 0, stream>>>(
          static_cast<const In*>(x), static_cast<Out*>(y), geometry, factors);
      return cudaGetLastError();
    });
  });
}

}  // namespace normd::cuda_kernels
