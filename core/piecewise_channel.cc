#include "core/piecewise_channel.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/infinity.h"
#include "core/kernel_plan.h"
#include "core/kernels/element.h"
#include "core/quantile_sketch.h"

namespace normd {
namespace {

constexpr int kKeyResolution = 8;                  // slots 2^-8 of an octave wide
constexpr int64_t kMaxKeySpan = int64_t{1} << 15;  // 64K slots at most per channel
constexpr size_t kTaskBytes = size_t{1} << 20;
constexpr size_t kRowTileValues = size_t{1} << 16;  // values gathered per task of rows

}  // namespace

PiecewiseChannel PiecewiseChannel::Make(const std::vector<AffinePiece>& pieces, double low,
                                        double high) {
  PiecewiseChannel m;
  const size_t k_count = pieces.size();
  m.start_.push_back(-kInf);
  for (size_t k = 0; k < k_count; ++k) {
    if (k > 0) m.start_.push_back(pieces[k].start);
    m.center_.push_back(pieces[k].center);
    m.scale_.push_back(pieces[k].scale);
    m.shift_.push_back(pieces[k].shift);
  }
  // No value, not even +inf, passes the last segment's end.
  m.start_.push_back(std::numeric_limits<double>::quiet_NaN());
  m.low_ = low;
  m.high_ = high;
  // Slots about the middle breakpoint, so that data far from 0 spread over them.
  const std::span<const double> breaks(m.start_.data() + 1, k_count - 1);
  m.key_center_ = breaks.empty() ? 0.0 : breaks[breaks.size() / 2];
  int64_t smallest = std::numeric_limits<int64_t>::max(), largest = 0;
  for (const double b : breaks) {
    const double d = b - m.key_center_;
    if (d == 0) continue;
    smallest = std::min(smallest, PiecewiseMagnitudeOf(d, kKeyResolution));
    largest = std::max(largest, PiecewiseMagnitudeOf(d, kKeyResolution));
  }
  if (smallest > largest) smallest = largest = 0;
  m.key_floor_ = std::max(smallest, largest + 1 - kMaxKeySpan);
  m.key_span_ = largest - m.key_floor_ + 1;
  // Each slot's values: its first segment, and how many breakpoints lie within it.
  const PiecewiseTable t = m.table();
  const int64_t slots = 2 * m.key_span_ + 3;
  m.first_segment_.assign(static_cast<size_t>(slots), 0);
  const int shift = 52 - kKeyResolution;
  const auto edge = [&](int64_t magnitude) {
    const uint64_t bits = static_cast<uint64_t>(magnitude) << shift;
    return bits >= 0x7ff0000000000000ull ? kInf : std::bit_cast<double>(bits);
  };
  for (int64_t p = 0; p < slots; ++p) {
    const int64_t offset = p - (m.key_span_ + 1);
    double low_d, high_d;  // the slot's d, before widening for rounding
    if (offset == 0) {
      high_d = edge(m.key_floor_);
      low_d = -high_d;
    } else {
      const int64_t c = std::abs(offset) - 1;
      const int64_t magnitude = m.key_floor_ + c;
      const double a = edge(magnitude);
      const double b = c == m.key_span_ ? kInf : edge(magnitude + 1);
      low_d = offset > 0 ? a : -b;
      high_d = offset > 0 ? b : -a;
    }
    const double widest = std::max(std::isinf(low_d) ? 0.0 : std::abs(low_d),
                                   std::isinf(high_d) ? 0.0 : std::abs(high_d));
    const double slack = 0x1p-50 * (std::abs(m.key_center_) + widest);
    const double low_x = std::isinf(low_d) ? -kInf : m.key_center_ + low_d - slack;
    const double high_x = std::isinf(high_d) ? kInf : m.key_center_ + high_d + slack;
    const double* begin = t.start + 1;
    const double* end = t.start + k_count;
    const double* first = std::upper_bound(begin, end, low_x);
    m.first_segment_[static_cast<size_t>(p)] = first - t.start - 1;
    const double* last = std::upper_bound(begin, end, high_x);
    m.refine_ = std::max(m.refine_, static_cast<int>(last - first));
  }
  return m;
}

PiecewiseTable PiecewiseChannel::table() const {
  PiecewiseTable t;
  t.segments = center_.size();
  t.start = start_.data();
  t.center = center_.data();
  t.scale = scale_.data();
  t.shift = shift_.data();
  t.low = low_;
  t.high = high_;
  t.key_center = key_center_;
  t.key_resolution = kKeyResolution;
  t.key_floor = key_floor_;
  t.key_span = key_span_;
  t.first_segment = first_segment_.data();
  t.refine = refine_;
  return t;
}

absl::Status ApplyPiecewiseMap(const TensorView& input, const ChannelGeometry& geometry,
                               std::span<const PiecewiseChannel> channels, OutputDType output_type,
                               std::span<std::byte> output, WorkerPool* pool) {
  const DType out = output_type.dtype();
  const auto elements = static_cast<size_t>(geometry.elements());
  const size_t in_size = ElementSize(input.dtype), out_size = ElementSize(out);
  if (output.size() != elements * out_size || input.bytes.size() != elements * in_size ||
      channels.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError("ApplyPiecewiseMap: buffer or map sizes disagree with geometry");
  }
  std::vector<PiecewiseTable> tables;
  for (const PiecewiseChannel& c : channels) tables.push_back(c.table());
  const std::byte* x = input.bytes.data();
  std::byte* y = output.data();
  const KernelWalk walk = PlanKernelWalk(geometry);
  if (walk.channels == 1) {  // one channel: the whole tensor is one run
    const size_t per_task = kTaskBytes / (in_size + out_size);
    RunTasks(pool, (elements + per_task - 1) / per_task, [&](size_t t) {
      const size_t first = t * per_task;
      PiecewiseMapRun(input.dtype, out, x + first * in_size, std::min(per_task, elements - first),
                      tables[0], y + first * out_size);
    });
    return absl::OkStatus();
  }
  if (walk.kind == KernelWalk::Kind::kRuns) {
    const size_t per_task = std::max<size_t>(1, kTaskBytes / (walk.inner * (in_size + out_size)));
    RunTasks(pool, (walk.runs + per_task - 1) / per_task, [&](size_t t) {
      for (size_t run = t * per_task; run < std::min(walk.runs, (t + 1) * per_task); ++run) {
        const size_t offset = run * walk.inner;
        PiecewiseMapRun(input.dtype, out, x + offset * in_size, walk.inner,
                        tables[run % walk.channels], y + offset * out_size);
      }
    });
    return absl::OkStatus();
  }
  // Rows: a tile of whole rows gathered (exactly, as float64) channel by channel into
  // runs, mapped to float64 and rounded once on the way back, as the run kernel rounds.
  // Column j of row r lands at place[j] + r * columns of its channel.
  const std::vector<uint32_t> column_channels = ColumnChannels(walk);
  const size_t tile_rows = std::max(kRowTileValues / walk.row_len, size_t{1});
  std::vector<size_t> columns_of(walk.channels, 0), rank(walk.row_len);
  for (size_t j = 0; j < walk.row_len; ++j) rank[j] = columns_of[column_channels[j]]++;
  RunTasks(pool, (walk.rows + tile_rows - 1) / tile_rows, [&](size_t t) {
    const size_t first_row = t * tile_rows;
    const size_t rows = std::min(tile_rows, walk.rows - first_row);
    std::vector<size_t> begin(walk.channels + 1, 0), place(walk.row_len);
    for (size_t c = 0; c < walk.channels; ++c) begin[c + 1] = begin[c] + rows * columns_of[c];
    for (size_t j = 0; j < walk.row_len; ++j) place[j] = begin[column_channels[j]] + rank[j];
    std::vector<double> values(rows * walk.row_len), mapped(values.size());
    const size_t first = first_row * walk.row_len;
    VisitDType(input.dtype, [&](auto in_tag) {
      using In = decltype(in_tag);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t j = 0; j < walk.row_len; ++j) {
          values[place[j] + r * columns_of[column_channels[j]]] =
              ToDouble(LoadElement<In>(x, first + r * walk.row_len + j));
        }
      }
    });
    for (size_t c = 0; c < walk.channels; ++c) {
      PiecewiseMapRun(DType::kFloat64, DType::kFloat64,
                      reinterpret_cast<const std::byte*>(values.data() + begin[c]),
                      begin[c + 1] - begin[c], tables[c],
                      reinterpret_cast<std::byte*>(mapped.data() + begin[c]));
    }
    VisitOutputDType(out, [&](auto out_tag) {
      using Out = decltype(out_tag);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t j = 0; j < walk.row_len; ++j) {
          StoreElement<Out>(y, first + r * walk.row_len + j,
                            FromDouble<Out>(mapped[place[j] + r * columns_of[column_channels[j]]]));
        }
      }
    });
  });
  // The partial last row, value by value.
  for (size_t j = 0; j < walk.tail; ++j) {
    const size_t i = walk.rows * walk.row_len + j;
    PiecewiseMapRun(input.dtype, out, x + i * in_size, 1, tables[column_channels[j]],
                    y + i * out_size);
  }
  return absl::OkStatus();
}

}  // namespace normd
