// Tensor layouts and the channel geometry every layout reduces to.
#ifndef NORMD_CORE_LAYOUT_H_
#define NORMD_CORE_LAYOUT_H_

#include <cstdint>
#include <span>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace normd {

enum class Layout {
  kNC,    // [N, C]
  kNCHW,  // [N, C, S1, ..., Sk], k >= 1
  kNHWC,  // [N, S1, ..., Sk, C], k >= 1
};

absl::string_view LayoutName(Layout layout);

// Every supported layout is a C-ordered [outer, channels, inner] array: element
// (o, c, i) lives at index (o * channels + c) * inner + i. NC: outer = N, inner = 1;
// NCHW: outer = N, inner = S1*...*Sk; NHWC: outer = N*S1*...*Sk, inner = 1.
struct ChannelGeometry {
  int64_t samples = 0;  // N, the leading dimension
  int64_t outer = 0;
  int64_t channels = 0;
  int64_t inner = 0;

  int64_t elements() const { return outer * channels * inner; }
  int64_t values_per_channel() const { return outer * inner; }
};

// The size of `shape`'s channel axis under `layout`, after checking its rank.
absl::StatusOr<int64_t> ChannelCountOf(Layout layout, std::span<const int64_t> shape);

// Checks `shape` against `layout` and the expected channel count, and returns its
// geometry. Assumes the shape's product has already been checked for overflow.
absl::StatusOr<ChannelGeometry> ResolveGeometry(Layout layout, int64_t channels,
                                                std::span<const int64_t> shape);

}  // namespace normd

#endif  // NORMD_CORE_LAYOUT_H_
