#include "core/dtype.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace normd {

size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kUInt8:
      return 1;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kUInt8:
      return "uint8";
  }
  return "unknown";
}

absl::StatusOr<OutputDType> ValidateOutputDType(DType dtype) {
  if (dtype == DType::kUInt8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output dtype must be float32, float64, float16 or bfloat16, got ", DTypeName(dtype)));
  }
  return OutputDType(dtype);
}

}  // namespace normd
