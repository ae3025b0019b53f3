#include "core/tensor_view.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/shape_format.h"

namespace normd {

absl::StatusOr<int64_t> CountElements(std::span<const int64_t> shape) {
  if (shape.empty()) {
    return absl::InvalidArgumentError("tensor shape is empty; expected at least [N, C]");
  }
  int64_t elements = 1;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    const int64_t dim = shape[axis];
    if (dim <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor dims must be positive, got ", dim,
                                                     " at axis ", axis, " of shape ",
                                                     FormatShape(shape)));
    }
    if (elements > kMaxTensorElements / dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor shape ", FormatShape(shape), " has more than ", kMaxTensorElements, " elements"));
    }
    elements *= dim;
  }
  return elements;
}

absl::StatusOr<ValidatedTensor> ValidateTensor(const TensorView& tensor) {
  NORMD_ASSIGN_OR_RETURN(const int64_t elements, CountElements(tensor.shape));
  const uint64_t expected_bytes = static_cast<uint64_t>(elements) * ElementSize(tensor.dtype);
  if (tensor.bytes.size() != expected_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor data has ", tensor.bytes.size(), " bytes, expected ", expected_bytes,
                     " for shape ", FormatShape(tensor.shape), " of ", DTypeName(tensor.dtype)));
  }
  return ValidatedTensor(tensor, elements);
}

}  // namespace normd
