#include "core/kernel_plan.h"

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
