#include "core/cuda/device_tensor.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace normd::cuda {
namespace {

absl::Status CheckAligned(const void* pointer, DType dtype, absl::string_view what) {
  if (pointer == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, " is null"));
  if (reinterpret_cast<uintptr_t>(pointer) % ElementSize(dtype) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be aligned to its ",
                                                   ElementSize(dtype), "-byte ", DTypeName(dtype),
                                                   " elements"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ValidatedTensor> ValidateDeviceTensor(const DeviceTensorView& tensor) {
  NORMD_ASSIGN_OR_RETURN(const int64_t elements, CountElements(tensor.shape));
  NORMD_RETURN_IF_ERROR(CheckAligned(tensor.data, tensor.dtype, "the input"));
  const TensorView view{tensor.dtype, tensor.shape,
                        std::span(static_cast<const std::byte*>(tensor.data),
                                  static_cast<size_t>(elements) * ElementSize(tensor.dtype))};
  return ValidateTensor(view);
}

absl::Status CheckDeviceOutput(const void* output, DType dtype) {
  return CheckAligned(output, dtype, "the output");
}

}  // namespace normd::cuda
