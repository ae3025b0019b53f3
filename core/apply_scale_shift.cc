#include "core/apply_scale_shift.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace normd {
namespace {

template <typename In, typename Out>
void Apply(const std::byte* x, const ChannelGeometry& g, const ScaleShift& f, std::byte* y) {
  const auto channels = static_cast<size_t>(g.channels);
  const auto outer = static_cast<size_t>(g.outer);
  const auto inner = static_cast<size_t>(g.inner);
  size_t index = 0;
  for (size_t o = 0; o < outer; ++o) {
    for (size_t c = 0; c < channels; ++c) {
      const double center = f.center[c];
      const double scale = f.scale[c];
      const double shift = f.shift[c];
      for (size_t i = 0; i < inner; ++i, ++index) {
        const double v = ToDouble(LoadElement<In>(x, index));
        StoreElement<Out>(y, index, static_cast<Out>(std::fma(v - center, scale, shift)));
      }
    }
  }
}

}  // namespace

bool IsSupportedOutputDType(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64;
}

absl::Status ApplyScaleShift(const TensorView& input, const ChannelGeometry& geometry,
                             const ScaleShift& factors, DType output_dtype,
                             std::span<std::byte> output) {
  if (!IsSupportedOutputDType(output_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output dtype must be float32 or float64, got ", DTypeName(output_dtype)));
  }
  const auto elements = static_cast<size_t>(geometry.elements());
  if (output.size() != elements * ElementSize(output_dtype) ||
      factors.center.size() != static_cast<size_t>(geometry.channels) ||
      factors.scale.size() != static_cast<size_t>(geometry.channels) ||
      factors.shift.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError("ApplyScaleShift: buffer or factor sizes disagree with geometry");
  }
  VisitDType(input.dtype, [&](auto in_tag) {
    using In = decltype(in_tag);
    if (output_dtype == DType::kFloat64) {
      Apply<In, double>(input.bytes.data(), geometry, factors, output.data());
    } else {
      Apply<In, float>(input.bytes.data(), geometry, factors, output.data());
    }
  });
  return absl::OkStatus();
}

}  // namespace normd
