// A frozen-statistics scheme with its factors folded once, for one dataset's layout
// and channels: what the server applies to every Normalize of a frozen version, and
// what an in-process normaliser (the Python module, normd::LocalNormalizer) holds. The
// same folding and the same kernels, so both give the same bits.
#ifndef NORMD_CORE_FROZEN_NORMALIZER_H_
#define NORMD_CORE_FROZEN_NORMALIZER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dataset_statistics.h"
#include "core/dtype.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/piecewise_channel.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

class FrozenNormalizer {
 public:
  // Folds `scheme` with `stats` (a frozen version's reference statistics; ignored for
  // FixedScaleScheme) for inputs of `layout` with `channels` channels. Without a
  // layout (a fixed scale applied with no dataset) every input is one channel.
  // Errors as FoldScaleShift.
  // With `inverse`, the normaliser maps outputs back to inputs: x = (y - shift) /
  // scale + center, for every scheme but minmax with clip (INVALID_ARGUMENT: clamped
  // values come from many inputs); a zero scale has no inverse either
  // (FAILED_PRECONDITION for a minmax channel constant in training, else
  // INVALID_ARGUMENT).
  static absl::StatusOr<FrozenNormalizer> Create(const FrozenScheme& scheme,
                                                 std::optional<Layout> layout, int64_t channels,
                                                 const ReferenceStatistics& stats,
                                                 bool inverse = false);

  // Normalises `input` into `output` (exactly input.elements() elements of
  // `output_type`). INVALID_ARGUMENT when the input's shape does not fit the layout
  // and channels, or `output` has the wrong size.
  absl::Status Apply(const ValidatedTensor& input, OutputDType output_type,
                     std::span<std::byte> output, WorkerPool* pool = nullptr) const;

  // The channel geometry of `input` under this normaliser's layout (INVALID_ARGUMENT
  // when its shape does not fit); without a layout, one channel.
  absl::StatusOr<ChannelGeometry> GeometryOf(const ValidatedTensor& input) const;

  // The affine factors; empty for the piecewise schemes (quantile, bucketize).
  const ScaleShift& factors() const { return factors_; }
  bool piecewise() const { return !piecewise_.empty(); }
  std::optional<Layout> layout() const { return layout_; }
  int64_t channels() const { return channels_; }

 private:
  FrozenNormalizer(std::optional<Layout> layout, int64_t channels, ScaleShift factors)
      : layout_(layout), channels_(channels), factors_(std::move(factors)) {}

  std::optional<Layout> layout_;
  int64_t channels_;
  ScaleShift factors_;
  std::vector<PiecewiseChannel> piecewise_;  // the piecewise schemes' maps, else empty
};

}  // namespace normd

#endif  // NORMD_CORE_FROZEN_NORMALIZER_H_
