#include "core/layout.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "core/shape_format.h"

namespace normd {

absl::string_view LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kNC:
      return "NC";
    case Layout::kNCHW:
      return "NCHW";
    case Layout::kNHWC:
      return "NHWC";
  }
  return "unknown";
}

absl::StatusOr<int64_t> ChannelCountOf(Layout layout, std::span<const int64_t> shape) {
  const size_t rank = shape.size();
  const bool rank_ok = layout == Layout::kNC ? rank == 2 : rank >= 3;
  if (!rank_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout ", LayoutName(layout), " expects ",
                     layout == Layout::kNC
                         ? "a rank-2 shape [N, C]"
                         : "a shape of rank >= 3 (batch, channels and at least one spatial dim)",
                     ", got shape ", FormatShape(shape)));
  }
  return shape[layout == Layout::kNHWC ? rank - 1 : 1];
}

absl::StatusOr<ChannelGeometry> ResolveGeometry(Layout layout, int64_t channels,
                                                std::span<const int64_t> shape) {
  NORMD_ASSIGN_OR_RETURN(const int64_t found, ChannelCountOf(layout, shape));
  const size_t rank = shape.size();
  const size_t channel_axis = layout == Layout::kNHWC ? rank - 1 : 1;
  if (found != channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout ", LayoutName(layout), " expects ", channels, " channels at axis ",
                     channel_axis, ", got ", found, " in shape ", FormatShape(shape)));
  }
  int64_t spatial = 1;
  for (size_t axis = 1; axis < rank; ++axis) {
    if (axis != channel_axis) spatial *= shape[axis];
  }
  ChannelGeometry geometry;
  geometry.samples = shape[0];
  geometry.channels = channels;
  if (layout == Layout::kNCHW) {
    geometry.outer = shape[0];
    geometry.inner = spatial;
  } else {
    geometry.outer = shape[0] * spatial;
    geometry.inner = 1;
  }
  return geometry;
}

}  // namespace normd
