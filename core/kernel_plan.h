// How the kernels walk a [outer, channels, inner] tensor: as runs of one channel,
// or as rows whose columns each belong to one channel. Shared by Normalize and
// the fit so both see the same shapes the same way.
#ifndef NORMD_CORE_KERNEL_PLAN_H_
#define NORMD_CORE_KERNEL_PLAN_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/layout.h"

namespace normd {

struct KernelWalk {
  enum class Kind {
    // outer * channels runs of `inner` contiguous values; run u is channel u % channels.
    kRuns,
    // `rows` full rows of `row_len` values and a final partial row of `tail` values;
    // column j is channel j / inner % channels (see ColumnChannels). row_len is a
    // multiple of channels * inner, so every row starts at channel 0.
    kRows,
  };
  Kind kind = Kind::kRows;
  size_t channels = 0;
  size_t inner = 0;
  size_t runs = 0;
  size_t row_len = 0;
  size_t rows = 0;
  size_t tail = 0;
};

// NCHW images (inner >= 64) become runs. Short periods (NC, NHWC, small images) become
// rows of a whole number of periods that is a multiple of 16 values and at least 256
// long, so that no vector straddles a row end on any SIMD target and the per-row
// overhead is amortised. Long periods with inner == 1 are rows of one period.
KernelWalk PlanKernelWalk(const ChannelGeometry& geometry);

// A walk's units (its runs, or its rows and a partial last one) in parts of about
// `part_bytes` of input each; the parts depend on the batch alone, never on a pool, so
// results that merge parts in order are reproducible.
struct WalkParts {
  size_t units = 0;
  size_t per_part = 0;
  size_t parts = 0;
};
WalkParts SplitWalk(const KernelWalk& walk, size_t element_size, size_t part_bytes);

// The tile of a kRows walk that starts at row unit `unit` of a part ending at `end`:
// up to `tile_rows` full rows, or the partial last row (unit == walk.rows) alone.
struct RowTile {
  size_t rows = 0;
  size_t width = 0;  // values a row: row_len, or the partial row's tail
  size_t first = 0;  // flat index of its first value
};
inline RowTile RowTileAt(const KernelWalk& walk, size_t unit, size_t end, size_t tile_rows) {
  const bool partial = unit == walk.rows;
  return {partial ? 1 : std::min(tile_rows, std::min(end, walk.rows) - unit),
          partial ? walk.tail : walk.row_len, unit * walk.row_len};
}

// The channel of each column of a kRows walk, row_len entries.
std::vector<uint32_t> ColumnChannels(const KernelWalk& walk);

// out[j] = per_channel[column_channels[j]].
void ExpandToColumns(std::span<const uint32_t> column_channels, std::span<const double> per_channel,
                     std::vector<double>& out);

}  // namespace normd

#endif  // NORMD_CORE_KERNEL_PLAN_H_
