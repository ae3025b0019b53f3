// A tensor in CUDA device memory, checked as ValidateTensor checks host tensors.
#ifndef NORMD_CORE_CUDA_DEVICE_TENSOR_H_
#define NORMD_CORE_CUDA_DEVICE_TENSOR_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/tensor_view.h"

namespace normd::cuda {

struct DeviceTensorView {
  DType dtype = DType::kFloat32;
  std::span<const int64_t> shape;
  const void* data = nullptr;  // device memory, C order
};

// The shape's checks of ValidateTensor, and `data` aligned to its element size. The
// ValidatedTensor's bytes span device memory: for shapes and sizes, never to read.
absl::StatusOr<ValidatedTensor> ValidateDeviceTensor(const DeviceTensorView& tensor);

// INVALID_ARGUMENT unless `output` is aligned to `dtype`'s element size.
absl::Status CheckDeviceOutput(const void* output, DType dtype);

}  // namespace normd::cuda

#endif  // NORMD_CORE_CUDA_DEVICE_TENSOR_H_
