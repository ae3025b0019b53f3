// A piecewise-linear map per channel (the quantile transform, bucketize) and its
// application: the searched tables of core/kernels/piecewise_map.h, built and owned.
#ifndef NORMD_CORE_PIECEWISE_CHANNEL_H_
#define NORMD_CORE_PIECEWISE_CHANNEL_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "core/dtype.h"
#include "core/kernels/piecewise_map.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"

namespace normd {

// One affine piece from `start` on (the first piece's start is ignored: -inf):
// y = (x - center) * scale + shift; scale 0 makes a constant.
struct AffinePiece {
  double start = 0;
  double center = 0;
  double scale = 0;
  double shift = 0;
};

class PiecewiseChannel {
 public:
  // `pieces` by ascending start (at least one); outputs clamped to [low, high].
  static PiecewiseChannel Make(const std::vector<AffinePiece>& pieces, double low, double high);

  // Valid while this channel lives (and is not moved from).
  PiecewiseTable table() const;
  size_t segments() const { return center_.size(); }

 private:
  std::vector<double> start_, center_, scale_, shift_;
  std::vector<int64_t> first_segment_;
  double low_ = 0, high_ = 0, key_center_ = 0;
  int64_t key_floor_ = 0, key_span_ = 0;
  int refine_ = 0;
};

// y[o, c, i] = f_c(x[o, c, i]), rounded once to the output type; the same bits on
// every SIMD target as the reference. Sizes as ApplyScaleShift; `channels` holds
// geometry.channels maps.
absl::Status ApplyPiecewiseMap(const TensorView& input, const ChannelGeometry& geometry,
                               std::span<const PiecewiseChannel> channels, OutputDType output_type,
                               std::span<std::byte> output, WorkerPool* pool = nullptr);

}  // namespace normd

#endif  // NORMD_CORE_PIECEWISE_CHANNEL_H_
