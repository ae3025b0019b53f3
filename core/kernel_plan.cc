#include "core/kernel_plan.h"

#include <algorithm>

#include <numeric>

namespace normd {
namespace {

constexpr size_t kMinRunLength = 64;
constexpr size_t kRowMultiple = 16;  // a multiple of every target's float64 lane count
constexpr size_t kMinRowLength = 256;
constexpr size_t kMaxExpandedRowLength = 4096;

}  // namespace

KernelWalk PlanKernelWalk(const ChannelGeometry& geometry) {
  KernelWalk walk;
  walk.channels = static_cast<size_t>(geometry.channels);
  walk.inner = static_cast<size_t>(geometry.inner);
  const size_t period = walk.channels * walk.inner;
  const size_t elements = static_cast<size_t>(geometry.elements());

  size_t row_len = std::lcm(period, kRowMultiple);
  if (row_len < kMinRowLength) row_len *= (kMinRowLength + row_len - 1) / row_len;
  const bool expandable = row_len <= kMaxExpandedRowLength;
  if (walk.inner >= kMinRunLength || (!expandable && walk.inner > 1)) {
    walk.kind = KernelWalk::Kind::kRuns;
    walk.runs = static_cast<size_t>(geometry.outer) * walk.channels;
    return walk;
  }
  walk.kind = KernelWalk::Kind::kRows;
  walk.row_len = expandable ? row_len : period;
  walk.rows = elements / walk.row_len;
  walk.tail = elements % walk.row_len;
  return walk;
}

WalkParts SplitWalk(const KernelWalk& walk, size_t element_size, size_t part_bytes) {
  const bool runs = walk.kind == KernelWalk::Kind::kRuns;
  WalkParts split;
  split.units = runs ? walk.runs : walk.rows + (walk.tail > 0 ? 1 : 0);
  const size_t unit_bytes = (runs ? walk.inner : walk.row_len) * element_size;
  split.per_part = std::max<size_t>(1, part_bytes / unit_bytes);
  split.parts = (split.units + split.per_part - 1) / split.per_part;
  return split;
}

std::vector<uint32_t> ColumnChannels(const KernelWalk& walk) {
  // Counters rather than two divisions per column, which cost more than the kernel
  // itself on a small batch with many channels.
  std::vector<uint32_t> channel_of(walk.row_len);
  uint32_t c = 0;
  size_t i = 0;
  for (size_t j = 0; j < walk.row_len; ++j) {
    channel_of[j] = c;
    if (++i == walk.inner) {
      i = 0;
      if (++c == walk.channels) c = 0;
    }
  }
  return channel_of;
}

void ExpandToColumns(std::span<const uint32_t> column_channels, std::span<const double> per_channel,
                     std::vector<double>& out) {
  out.resize(column_channels.size());
  for (size_t j = 0; j < out.size(); ++j) out[j] = per_channel[column_channels[j]];
}

}  // namespace normd
