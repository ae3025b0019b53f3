// The fit: per-channel moments of a batch from the SIMD MomentSums kernels.
//
// Accuracy. A channel's values arrive in tiles (a run chunk, or a block of rows).
// Each tile is reduced to sums of d = x - K and d^2 about the channel's shift K,
// with at most a few hundred terms per float64 lane, and added in double-double to
// the channel's open segment. The segment becomes (count, mean, M2) and is merged
// with Chan's formula into the committed moments, after which K becomes the new
// mean, as soon as the segment holds as many values as the committed part. With K
// the committed part's mean, a segment's rounding error relative to the final M2 is
// at most (1 + n_segment / n_committed) times the tile sums' relative error: it
// stays small however far the data drift from K (sorted data, a level shift), with
// only logarithmically many merges (the segment may grow to kRecentreRatio times the
// committed part). The first tile's K is that tile's own mean from a quick
// pre-pass. The tests hold this to 1e-12 relative against exact rational arithmetic.
//
// Non-finite values make a tile's sum of squares non-finite; that tile is redone by
// scalar code that applies the policy element by element, in flat order.
//
// uint8 batches take another road: exact integer sums (core/u8_batch_moments.h).
#include "core/batch_moments.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/double_double.h"
#include "core/kernel_plan.h"
#include "core/kernels/moment_sums.h"
#include "core/u8_batch_moments.h"

namespace normd {
namespace {

constexpr size_t kRunChunk = 4096;              // values per run tile
constexpr size_t kTileRows = 256;               // rows per row tile
constexpr size_t kPartBytes = size_t{4} << 20;  // input per parallel part
// A segment is committed once it holds this many times the committed count: the
// error bound grows to (1 + kRecentreRatio) times the tile sums' error, and the
// number of (costly, double-double) commits per channel falls to log_(1+ratio)(N).
constexpr uint64_t kRecentreRatio = 4;

// One channel's shifted sums, committed geometrically (see the file comment).
class ShiftedChannelSums {
 public:
  bool has_shift() const { return has_shift_; }
  double shift() const { return shift_; }
  void SetShift(double shift) {
    shift_ = shift;
    has_shift_ = true;
  }

  // Adds `count` values whose sums about shift() are `sums`. Returns true when the
  // segment was committed and the shift moved.
  bool Add(uint64_t count, const MomentSums& sums) {
    if (count == 0) return false;
    segment_count_ += count;
    segment_sum_ = segment_sum_ + DoubleDouble{sums.sum, 0.0};
    segment_squares_ = segment_squares_ + DoubleDouble{sums.sum_squares, 0.0};
    segment_min_ = std::min(segment_min_, sums.min);
    segment_max_ = std::max(segment_max_, sums.max);
    if (segment_count_ < kRecentreRatio * committed_.count) return false;
    Commit();
    return true;
  }

  ChannelMoments Finish() {
    Commit();
    return committed_;
  }

 private:
  void Commit() {
    if (segment_count_ == 0) return;
    ChannelMoments segment;
    segment.count = segment_count_;
    const auto n = static_cast<double>(segment_count_);
    const DoubleDouble mean_offset = segment_sum_ / n;
    segment.mean = DoubleDouble{shift_, 0.0} + mean_offset;
    segment.m2 = segment_squares_ - segment_sum_ * mean_offset;
    if (segment.m2.hi < 0) segment.m2 = {};
    segment.min = segment_min_;
    segment.max = segment_max_;
    MergeMoments(segment, committed_);
    shift_ = committed_.mean.hi;
    segment_count_ = 0;
    segment_sum_ = segment_squares_ = {};
    segment_min_ = std::numeric_limits<double>::infinity();
    segment_max_ = -std::numeric_limits<double>::infinity();
  }

  double shift_ = 0.0;
  bool has_shift_ = false;
  ChannelMoments committed_;
  uint64_t segment_count_ = 0;
  DoubleDouble segment_sum_, segment_squares_;
  double segment_min_ = std::numeric_limits<double>::infinity();
  double segment_max_ = -std::numeric_limits<double>::infinity();
};

// What every tile of one batch shares.
struct FitContext {
  const TensorView& batch;
  const KernelWalk& walk;
  NonFinitePolicy policy;
  size_t element_size;
};

// Scalar path for one tile: elements [first, first + count) of the batch, element
// k of the tile in channel channel_of(k). Applies the policy; sets missing shifts
// to the mean of the tile's finite values of that channel first.
template <typename ChannelOf>
absl::Status ScalarTile(const FitContext& ctx, size_t first, size_t count, ChannelOf channel_of,
                        std::vector<ShiftedChannelSums>& channels, std::vector<MomentSums>& sums,
                        std::vector<uint64_t>& counts, uint64_t& skipped) {
  return VisitDType(ctx.batch.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    const std::byte* data = ctx.batch.bytes.data();
    bool missing_shift = false;
    for (size_t k = 0; k < count && !missing_shift; ++k) {
      missing_shift = !channels[channel_of(k)].has_shift();
    }
    if (missing_shift) {
      std::fill(sums.begin(), sums.end(), MomentSums{});
      std::fill(counts.begin(), counts.end(), 0);
      for (size_t k = 0; k < count; ++k) {
        const double v = ToDouble(LoadElement<T>(data, first + k));
        if (!std::isfinite(v)) continue;
        sums[channel_of(k)].sum += v;
        ++counts[channel_of(k)];
      }
      for (size_t c = 0; c < channels.size(); ++c) {
        if (!channels[c].has_shift() && counts[c] > 0) {
          channels[c].SetShift(sums[c].sum / static_cast<double>(counts[c]));
        }
      }
    }
    std::fill(sums.begin(), sums.end(), MomentSums{});
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t k = 0; k < count; ++k) {
      const double v = ToDouble(LoadElement<T>(data, first + k));
      const size_t c = channel_of(k);
      if (!std::isfinite(v)) {
        if (ctx.policy == NonFinitePolicy::kReject) return NonFiniteValueError(v, first + k, c);
        ++skipped;
        continue;
      }
      const double d = v - channels[c].shift();
      sums[c].sum += d;
      sums[c].sum_squares += d * d;
      sums[c].min = std::min(sums[c].min, v);
      sums[c].max = std::max(sums[c].max, v);
      ++counts[c];
    }
    return absl::OkStatus();
  });
}

// Fits runs [begin, end) of a kRuns walk.
absl::Status FitRuns(const FitContext& ctx, size_t begin, size_t end,
                     std::vector<ShiftedChannelSums>& channels, uint64_t& skipped) {
  const KernelWalk& walk = ctx.walk;
  std::vector<MomentSums> sums(walk.channels);
  std::vector<uint64_t> counts(walk.channels);
  const std::byte* data = ctx.batch.bytes.data();
  for (size_t run = begin; run < end; ++run) {
    const size_t c = run % walk.channels;
    ShiftedChannelSums& channel = channels[c];
    for (size_t offset = 0; offset < walk.inner; offset += kRunChunk) {
      const size_t first = run * walk.inner + offset;
      const size_t n = std::min(kRunChunk, walk.inner - offset);
      const std::byte* x = data + first * ctx.element_size;
      if (!channel.has_shift()) {
        const MomentSums raw = MomentSumsRun(ctx.batch.dtype, x, n, 0.0);
        if (std::isfinite(raw.sum_squares)) channel.SetShift(raw.sum / static_cast<double>(n));
      }
      MomentSums tile;
      if (channel.has_shift()) tile = MomentSumsRun(ctx.batch.dtype, x, n, channel.shift());
      if (channel.has_shift() && std::isfinite(tile.sum_squares)) {
        channel.Add(n, tile);
        continue;
      }
      NORMD_RETURN_IF_ERROR(ScalarTile(
          ctx, first, n, [c](size_t) { return c; }, channels, sums, counts, skipped));
      channel.Add(counts[c], sums[c]);
    }
  }
  return absl::OkStatus();
}

// Fits row units [begin, end) of a kRows walk (unit walk.rows is the partial row).
absl::Status FitRows(const FitContext& ctx, size_t begin, size_t end,
                     std::vector<ShiftedChannelSums>& channels, uint64_t& skipped) {
  const KernelWalk& walk = ctx.walk;
  const size_t columns = walk.row_len;
  std::vector<double> shift(columns), sum(columns), squares(columns), min(columns), max(columns);
  std::vector<MomentSums> sums(walk.channels);
  std::vector<uint64_t> counts(walk.channels);
  const std::vector<uint32_t> column_channel = ColumnChannels(walk);
  const auto reset_columns = [&] {
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(squares.begin(), squares.end(), 0.0);
    std::fill(min.begin(), min.end(), std::numeric_limits<double>::infinity());
    std::fill(max.begin(), max.end(), -std::numeric_limits<double>::infinity());
  };
  // Column sums of one tile folded into per-channel sums; false if any is non-finite.
  const auto fold_columns = [&](size_t rows, size_t width) {
    std::fill(sums.begin(), sums.end(), MomentSums{});
    std::fill(counts.begin(), counts.end(), 0);
    bool finite = true;
    for (size_t j = 0; j < width; ++j) {
      const size_t c = column_channel[j];
      finite = finite && std::isfinite(squares[j]);
      sums[c].sum += sum[j];
      sums[c].sum_squares += squares[j];
      sums[c].min = std::min(sums[c].min, min[j]);
      sums[c].max = std::max(sums[c].max, max[j]);
      counts[c] += rows;
    }
    return finite;
  };
  const auto shifts_known = [&] {
    return std::all_of(channels.begin(), channels.end(),
                       [](const ShiftedChannelSums& c) { return c.has_shift(); });
  };
  const std::byte* data = ctx.batch.bytes.data();

  bool shifts_changed = true;
  for (size_t unit = begin; unit < end;) {
    const bool partial = unit == walk.rows;
    const size_t rows = partial ? 1 : std::min(kTileRows, std::min(end, walk.rows) - unit);
    const size_t width = partial ? walk.tail : columns;
    const size_t first = unit * columns;
    const std::byte* x = data + first * ctx.element_size;
    if (!shifts_known()) {  // pre-pass: each channel's shift from this tile's own mean
      reset_columns();
      std::fill(shift.begin(), shift.end(), 0.0);
      MomentSumsRows(ctx.batch.dtype, x, rows, width, shift.data(), sum.data(), squares.data(),
                     min.data(), max.data());
      if (fold_columns(rows, width)) {
        for (size_t c = 0; c < walk.channels; ++c) {
          if (!channels[c].has_shift() && counts[c] > 0) {
            channels[c].SetShift(sums[c].sum / static_cast<double>(counts[c]));
          }
        }
      }
      shifts_changed = true;
    }
    bool done = false;
    if (shifts_known()) {
      if (shifts_changed) {
        for (size_t j = 0; j < columns; ++j) shift[j] = channels[column_channel[j]].shift();
        shifts_changed = false;
      }
      reset_columns();
      MomentSumsRows(ctx.batch.dtype, x, rows, width, shift.data(), sum.data(), squares.data(),
                     min.data(), max.data());
      done = fold_columns(rows, width);
    }
    if (!done) {
      NORMD_RETURN_IF_ERROR(ScalarTile(
          ctx, first, rows * width, [&](size_t k) { return column_channel[k % width]; }, channels,
          sums, counts, skipped));
      shifts_changed = true;
    }
    for (size_t c = 0; c < walk.channels; ++c) {
      shifts_changed = channels[c].Add(counts[c], sums[c]) || shifts_changed;
    }
    unit += rows;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status NonFiniteValueError(double value, uint64_t flat_index, uint64_t channel) {
  return absl::InvalidArgumentError(absl::StrCat(
      "batch holds a non-finite value (", value, ") at flat index ", flat_index, " (channel ",
      channel, "); expected finite values, or a dataset created with nonfinite_policy=skip"));
}

absl::StatusOr<uint64_t> ComputeBatchMoments(const TensorView& batch,
                                             const ChannelGeometry& geometry,
                                             NonFinitePolicy policy, std::span<ChannelMoments> out,
                                             WorkerPool* pool) {
  if (out.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError(absl::StrCat("moments buffer holds ", out.size(),
                                            " channels, geometry has ", geometry.channels));
  }
  const KernelWalk walk = PlanKernelWalk(geometry);
  if (batch.dtype == DType::kUInt8) {  // exact in integer lanes; never non-finite
    ComputeU8BatchMoments(batch, walk, out, pool);
    return 0;
  }
  const FitContext ctx{batch, walk, policy, ElementSize(batch.dtype)};
  const bool runs = walk.kind == KernelWalk::Kind::kRuns;
  // Plain names, not a structured binding: clang 14 cannot capture those in lambdas.
  const WalkParts split = SplitWalk(walk, ctx.element_size, kPartBytes);
  const size_t units = split.units, per_part = split.per_part, parts = split.parts;

  struct Part {
    std::vector<ShiftedChannelSums> channels;
    uint64_t skipped = 0;
    absl::Status status;
  };
  std::vector<Part> results(parts);
  const auto fit_part = [&](size_t p) {
    Part& part = results[p];
    part.channels.resize(walk.channels);
    const size_t begin = p * per_part;
    const size_t end = std::min(units, begin + per_part);
    part.status = runs ? FitRuns(ctx, begin, end, part.channels, part.skipped)
                       : FitRows(ctx, begin, end, part.channels, part.skipped);
  };
  RunTasks(pool, parts, fit_part);

  uint64_t skipped = 0;
  for (ChannelMoments& m : out) m = ChannelMoments{};
  for (Part& part : results) {  // in flat order: the first error is the earliest value
    NORMD_RETURN_IF_ERROR(part.status);
    skipped += part.skipped;
    for (size_t c = 0; c < walk.channels; ++c) MergeMoments(part.channels[c].Finish(), out[c]);
  }
  return skipped;
}

}  // namespace normd
