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

class ValidatedTensor;

// The element count of `shape`: every dim positive, at least one dim, and no more
// than kMaxTensorElements in all.
absl::StatusOr<int64_t> CountElements(std::span<const int64_t> shape);

// Checks that every dim is positive, that the element count neither overflows nor
// exceeds kMaxTensorElements, and that the byte length is exactly
// elements * ElementSize(dtype).
absl::StatusOr<ValidatedTensor> ValidateTensor(const TensorView& tensor);

// A tensor ValidateTensor has checked, with its element count. Only ValidateTensor
// makes one, so a layer that takes one need not check again. Views the same bytes.
class ValidatedTensor {
 public:
  const TensorView& view() const { return view_; }
  DType dtype() const { return view_.dtype; }
  std::span<const int64_t> shape() const { return view_.shape; }
  int64_t elements() const { return elements_; }

 private:
  friend absl::StatusOr<ValidatedTensor> ValidateTensor(const TensorView& tensor);
  ValidatedTensor(const TensorView& view, int64_t elements) : view_(view), elements_(elements) {}

  TensorView view_;
  int64_t elements_;
};

}  // namespace normd

#endif  // NORMD_CORE_TENSOR_VIEW_H_
