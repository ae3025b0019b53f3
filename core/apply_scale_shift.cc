#include "core/apply_scale_shift.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kernel_plan.h"
#include "core/kernels/element.h"
#include "core/kernels/scale_shift.h"

namespace normd {
namespace {

// Work per task when a call is split across the pool (input + output bytes).
constexpr size_t kTaskBytes = size_t{1} << 20;
// Outputs at least this large are written with non-temporal stores: they cannot
// stay in cache anyway, and streaming them saves the read-for-ownership traffic.
constexpr size_t kStreamingBytes = size_t{32} << 20;

size_t CeilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

// y[i] = clamp(y[i], range_of(i)) for i < n, with rounded ranges (stored exactly). NaN
// compares false both ways and stays.
template <typename RangeOf>
void ClampOutput(DType out, std::byte* y, size_t n, RangeOf range_of) {
  VisitOutputDType(out, [&](auto tag) {
    using Out = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      const ScaleShift::Range& range = range_of(i);
      const double v = ToDouble(LoadElement<Out>(y, i));
      if (v < range.low) StoreElement<Out>(y, i, FromDouble<Out>(range.low));
      if (v > range.high) StoreElement<Out>(y, i, FromDouble<Out>(range.high));
    }
  });
}

}  // namespace

std::vector<ScaleShift::Range> RoundedClampRanges(DType out,
                                                  const std::vector<ScaleShift::Range>& ranges) {
  std::vector<ScaleShift::Range> rounded;
  VisitOutputDType(out, [&](auto tag) {
    using Out = decltype(tag);
    for (const ScaleShift::Range& r : ranges) {
      rounded.push_back({ToDouble(FromDouble<Out>(r.low)), ToDouble(FromDouble<Out>(r.high))});
    }
  });
  return rounded;
}

absl::Status ApplyScaleShift(const TensorView& input, const ChannelGeometry& geometry,
                             const ScaleShift& factors, OutputDType output_type,
                             std::span<std::byte> output, WorkerPool* pool) {
  const DType output_dtype = output_type.dtype();
  const auto elements = static_cast<size_t>(geometry.elements());
  const auto channels = static_cast<size_t>(geometry.channels);
  const size_t in_size = ElementSize(input.dtype);
  const size_t out_size = ElementSize(output_dtype);
  if (output.size() != elements * out_size || input.bytes.size() != elements * in_size ||
      factors.center.size() != channels || factors.scale.size() != channels ||
      factors.shift.size() != channels) {
    return absl::InternalError("ApplyScaleShift: buffer or factor sizes disagree with geometry");
  }
  const std::byte* x = input.bytes.data();
  std::byte* y = output.data();
  const KernelWalk walk = PlanKernelWalk(geometry);
  // A clamped output is read back while in cache: no non-temporal stores then.
  const bool clamps = !factors.clamp.empty();
  const bool streaming = output.size() >= kStreamingBytes && !clamps;
  if (clamps && factors.clamp.size() != channels) {
    return absl::InternalError("ApplyScaleShift: clamp ranges disagree with geometry");
  }
  const std::vector<ScaleShift::Range> ranges = RoundedClampRanges(output_dtype, factors.clamp);
  // Clamps elements [first, first + count) of the output, each to its channel's range.
  const auto clamp = [&](size_t first, size_t count) {
    if (!clamps) return;
    ClampOutput(
        output_dtype, y + first * out_size, count, [&](size_t i) -> const auto& {
          return ranges[(first + i) / walk.inner % channels];
        });
  };

  if (walk.kind == KernelWalk::Kind::kRuns) {
    const size_t run_bytes = walk.inner * (in_size + out_size);
    const size_t per_task = std::max<size_t>(1, kTaskBytes / run_bytes);
    RunTasks(pool, CeilDiv(walk.runs, per_task), [&](size_t t) {
      const size_t end = std::min(walk.runs, (t + 1) * per_task);
      for (size_t run = t * per_task; run < end; ++run) {
        const size_t c = run % channels;
        const size_t offset = run * walk.inner;
        ScaleShiftRun(input.dtype, output_dtype, x + offset * in_size, walk.inner,
                      factors.center[c], factors.scale[c], factors.shift[c], y + offset * out_size,
                      streaming);
      }
      clamp(t * per_task * walk.inner, (end - t * per_task) * walk.inner);
    });
    return absl::OkStatus();
  }

  const std::vector<uint32_t> column_channels = ColumnChannels(walk);
  std::vector<double> center, scale, shift;
  ExpandToColumns(column_channels, factors.center, center);
  ExpandToColumns(column_channels, factors.scale, scale);
  ExpandToColumns(column_channels, factors.shift, shift);
  const size_t row_units = walk.rows + (walk.tail > 0 ? 1 : 0);
  const size_t per_task = std::max<size_t>(1, kTaskBytes / (walk.row_len * (in_size + out_size)));
  RunTasks(pool, CeilDiv(row_units, per_task), [&](size_t t) {
    const size_t begin = t * per_task;
    const size_t end = std::min(row_units, begin + per_task);
    const size_t full_end = std::min(end, walk.rows);
    if (full_end > begin) {
      const size_t offset = begin * walk.row_len;
      ScaleShiftRows(input.dtype, output_dtype, x + offset * in_size, full_end - begin,
                     walk.row_len, center.data(), scale.data(), shift.data(), y + offset * out_size,
                     streaming);
      clamp(offset, (full_end - begin) * walk.row_len);
    }
    if (end > walk.rows) {  // the partial last row
      const size_t offset = walk.rows * walk.row_len;
      ScaleShiftRows(input.dtype, output_dtype, x + offset * in_size, 1, walk.tail, center.data(),
                     scale.data(), shift.data(), y + offset * out_size, streaming);
      clamp(offset, walk.tail);
    }
  });
  return absl::OkStatus();
}

}  // namespace normd
