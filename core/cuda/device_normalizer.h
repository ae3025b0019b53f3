// A frozen scheme's folded factors on a CUDA device: what normalises a tensor that
// already lives there (a training loop's CUDA batch, a GPU decoder's output) without
// a copy to the host. Folded by the CPU's FrozenNormalizer, so the factors are the
// same numbers, and mapped by a kernel that rounds as the CPU's kernels do: the
// output is the CPU's, bit for bit, for every frozen affine scheme, dtype and layout.
#ifndef NORMD_CORE_CUDA_DEVICE_NORMALIZER_H_
#define NORMD_CORE_CUDA_DEVICE_NORMALIZER_H_

#include <cuda_runtime_api.h>

#include <array>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cuda/device.h"
#include "core/cuda/device_tensor.h"
#include "core/dtype.h"
#include "core/frozen_normalizer.h"
#include "core/kernels/cuda/scale_shift_map.h"

namespace normd::cuda {

// A frozen normaliser's factors packed for the device: center, scale and shift, then,
// when the scheme clamps, low and high rounded to each output type in turn.
std::vector<double> PackFrozenFactors(const ScaleShift& factors);

// The kernel's view of packed factors at `device_factors` for `output`.
cuda_kernels::MapFactors PackedFactorsFor(const double* device_factors, size_t channels,
                                          bool clamps, DType output);

class DeviceFrozenNormalizer {
 public:
  // Copies `normalizer`'s factors (and its clamp ranges rounded to each output type)
  // to `device`. FAILED_PRECONDITION for the piecewise schemes (quantile, bucketize),
  // which run on the CPU only.
  static absl::StatusOr<DeviceFrozenNormalizer> Create(const FrozenNormalizer& normalizer,
                                                       int device);

  // Normalises `input` (on this normaliser's device) into `output` (as many elements
  // of `output_type`, on the same device; it may be the input's own memory when the
  // element sizes match), asynchronously on `stream`. INVALID_ARGUMENT for a shape
  // that does not fit the layout, memory on another device or misaligned pointers.
  absl::Status Apply(const DeviceTensorView& input, OutputDType output_type, void* output,
                     cudaStream_t stream) const;

  int device() const { return device_; }

 private:
  DeviceFrozenNormalizer(FrozenNormalizer host, int device)
      : host_(std::move(host)), device_(device) {}

  FrozenNormalizer host_;
  int device_;
  // center, scale, shift; then per output dtype (float32, float64, float16,
  // bfloat16) low and high when the scheme clamps.
  DeviceBuffer factors_;
  bool clamps_ = false;
};

}  // namespace normd::cuda

#endif  // NORMD_CORE_CUDA_DEVICE_NORMALIZER_H_
