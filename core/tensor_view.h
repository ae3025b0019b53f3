// A non-owning view of a tensor's wire bytes, and its validation.
#ifndef NORMD_CORE_TENSOR_VIEW_H_
#define NORMD_CORE_TENSOR_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "core/dtype.h"

namespace normd {

// Upper bound on the values in one tensor; keeps shape arithmetic far from
// overflow and one request from asking for absurd memory.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 40;

struct TensorView {
  DType dtype = DType::kFloat32;
  std::span<const int64_t> shape;
  std::span<const std::byte> bytes;  // C order, little-endian; may be unaligned
};

// Checks that every dim is positive, that the element count neither overflows nor
// exceeds kMaxTensorElements, and that the byte length is exactly
// elements * ElementSize(dtype). Returns the element count.
absl::StatusOr<int64_t> ValidateTensor(const TensorView& tensor);

}  // namespace normd

#endif  // NORMD_CORE_TENSOR_VIEW_H_
