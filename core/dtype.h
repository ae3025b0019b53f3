// Element types of tensors on the wire, their sizes and conversions to double.
#ifndef NORMD_CORE_DTYPE_H_
#define NORMD_CORE_DTYPE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace normd {

// Tensor bytes are little-endian; normd runs only on little-endian hosts.
static_assert(std::endian::native == std::endian::little,
              "normd reads tensor bytes in place and needs a little-endian host");

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16, kUInt8 };

// IEEE 754 binary16 and bfloat16, as raw bits.
struct Float16 {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

size_t ElementSize(DType dtype);
absl::string_view DTypeName(DType dtype);

// An element type normalisation can write: float32 (the default), float64, float16
// or bfloat16. Only ValidateOutputDType makes another, so a function that takes one
// needs no check of its own.
class OutputDType {
 public:
  constexpr OutputDType() = default;
  constexpr DType dtype() const { return dtype_; }
  friend bool operator==(OutputDType, OutputDType) = default;

 private:
  friend absl::StatusOr<OutputDType> ValidateOutputDType(DType dtype);
  constexpr explicit OutputDType(DType dtype) : dtype_(dtype) {}

  DType dtype_ = DType::kFloat32;
};

// INVALID_ARGUMENT for a type normalisation cannot write (uint8).
absl::StatusOr<OutputDType> ValidateOutputDType(DType dtype);

inline float Float16ToFloat(Float16 h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1fu;
  const uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  const uint32_t bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                         : sign | ((exponent + 112) << 23) | (mantissa << 13);
  return std::bit_cast<float>(bits);
}

inline float BFloat16ToFloat(BFloat16 b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b.bits) << 16);
}

inline double ToDouble(float x) { return x; }
inline double ToDouble(double x) { return x; }
inline double ToDouble(uint8_t x) { return x; }
inline double ToDouble(Float16 x) { return Float16ToFloat(x); }
inline double ToDouble(BFloat16 x) { return BFloat16ToFloat(x); }

// Reads element `i` of a possibly unaligned little-endian array.
template <typename T>
inline T LoadElement(const std::byte* base, size_t i) {
  T value;
  std::memcpy(&value, base + i * sizeof(T), sizeof(T));
  return value;
}

template <typename T>
inline void StoreElement(std::byte* base, size_t i, T value) {
  std::memcpy(base + i * sizeof(T), &value, sizeof(T));
}

// The same through typed pointers, which the kernels take straight from wire bytes
// and which may be unaligned: memcpy, never a plain dereference.
template <typename T>
inline T LoadUnaligned(const T* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}
template <typename T>
inline void StoreUnaligned(T* p, T value) {
  std::memcpy(p, &value, sizeof(T));
}

// The one dtype dispatch: calls fn(T{}) with T the storage type of `dtype`.
template <typename Fn>
decltype(auto) VisitDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn(float{});
    case DType::kFloat64:
      return fn(double{});
    case DType::kFloat16:
      return fn(Float16{});
    case DType::kBFloat16:
      return fn(BFloat16{});
    case DType::kUInt8:
      break;
  }
  return fn(uint8_t{});
}

}  // namespace normd

#endif  // NORMD_CORE_DTYPE_H_
