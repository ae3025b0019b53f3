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
// Sample weights: the same walk, each tile's weights expanded to one per value in a
// cache-sized buffer for the weighted kernels, and the sums carry W and sum(w^2) (the
// segment commits when its W reaches kRecentreRatio times the committed W).
//
// Unweighted uint8 batches take another road: exact integer sums
// (core/u8_batch_moments.h).
#include "core/batch_moments.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/kernel_plan.h"
#include "core/kernels/double_double.h"
#include "core/kernels/moment_sums.h"
#include "core/u8_batch_moments.h"

namespace normd {
namespace {

constexpr size_t kRunChunk = 4096;              // values per run tile
constexpr size_t kTileRows = 256;               // rows per row tile
constexpr size_t kWeightedTileValues = 8192;    // values per weighted row tile
constexpr size_t kPartBytes = size_t{4} << 20;  // input per parallel part
// A segment is committed once it holds this many times the committed count: the
// error bound grows to (1 + kRecentreRatio) times the tile sums' error, and the
// number of (costly, double-double) commits per channel falls to log_(1+ratio)(N).
constexpr uint64_t kRecentreRatio = 4;

// One channel's shifted sums, committed geometrically (see the file comment). A
// tile's sums arrive as WeightedMomentSums; without weights every weight is 1 and the
// committed moments stay unweighted.
class ShiftedChannelSums {
 public:
  bool has_shift() const { return has_shift_; }
  double shift() const { return shift_; }
  void SetShift(double shift) {
    shift_ = shift;
    has_shift_ = true;
  }

  // Adds a tile's sums about shift(). Returns true when the segment was committed and
  // the shift moved.
  bool Add(const WeightedMomentSums& sums, bool weighted) {
    if (sums.count == 0) return false;
    weighted_ = weighted;
    segment_count_ += static_cast<uint64_t>(sums.count);
    segment_weight_ = segment_weight_ + DoubleDouble{sums.weight, 0.0};
    segment_weight_squares_ = segment_weight_squares_ + DoubleDouble{sums.weight_squares, 0.0};
    segment_sum_ = segment_sum_ + DoubleDouble{sums.sum, 0.0};
    segment_squares_ = segment_squares_ + DoubleDouble{sums.sum_squares, 0.0};
    segment_min_ = std::min(segment_min_, sums.min);
    segment_max_ = std::max(segment_max_, sums.max);
    const bool grown = weighted_ ? segment_weight_.hi >= kRecentreRatio * committed_.Weight().hi
                                 : segment_count_ >= kRecentreRatio * committed_.count;
    if (!grown) return false;
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
    const DoubleDouble mean_offset = weighted_ ? segment_sum_ / segment_weight_
                                               : segment_sum_ / static_cast<double>(segment_count_);
    segment.mean = DoubleDouble{shift_, 0.0} + mean_offset;
    segment.m2 = segment_squares_ - segment_sum_ * mean_offset;
    if (segment.m2.hi < 0) segment.m2 = {};
    segment.min = segment_min_;
    segment.max = segment_max_;
    segment.weighted = weighted_;
    segment.weight_sum = segment_weight_;
    segment.weight_square_sum = segment_weight_squares_;
    MergeMoments(segment, committed_);
    shift_ = committed_.mean.hi;
    segment_count_ = 0;
    segment_weight_ = segment_weight_squares_ = segment_sum_ = segment_squares_ = {};
    segment_min_ = std::numeric_limits<double>::infinity();
    segment_max_ = -std::numeric_limits<double>::infinity();
  }

  double shift_ = 0.0;
  bool has_shift_ = false;
  bool weighted_ = false;
  ChannelMoments committed_;
  uint64_t segment_count_ = 0;
  DoubleDouble segment_weight_, segment_weight_squares_, segment_sum_, segment_squares_;
  double segment_min_ = std::numeric_limits<double>::infinity();
  double segment_max_ = -std::numeric_limits<double>::infinity();
};

// An unweighted tile's sums as weighted ones, every weight 1.
WeightedMomentSums Unweighted(size_t count, const MomentSums& sums) {
  const auto n = static_cast<double>(count);
  return {n, sums.sum, sums.sum_squares, sums.min, sums.max, n, n};
}

// What every tile of one batch shares.
struct FitContext {
  const TensorView& batch;
  const KernelWalk& walk;
  NonFinitePolicy policy;
  size_t element_size;
  const SampleWeights* weights;  // null: every weight 1
};

// A part's scratch: per-channel tile sums and the tile's expanded weights.
struct TileScratch {
  std::vector<WeightedMomentSums> sums;
  std::vector<double> weights;

  void Reset() { std::fill(sums.begin(), sums.end(), WeightedMomentSums{}); }
};

// Scalar path for one tile: elements [first, first + count) of the batch, element
// k of the tile in channel channel_of(k) with weight w[k] (null: 1). Applies the
// policy to the values it keeps (a weight of 0 keeps none); sets missing shifts to
// the weighted mean of the tile's finite values of that channel first.
template <typename ChannelOf>
absl::Status ScalarTile(const FitContext& ctx, size_t first, size_t count, const double* w,
                        ChannelOf channel_of, std::vector<ShiftedChannelSums>& channels,
                        TileScratch& scratch, uint64_t& skipped) {
  std::vector<WeightedMomentSums>& sums = scratch.sums;
  return VisitDType(ctx.batch.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    const std::byte* data = ctx.batch.bytes.data();
    bool missing_shift = false;
    for (size_t k = 0; k < count && !missing_shift; ++k) {
      missing_shift = !channels[channel_of(k)].has_shift();
    }
    if (missing_shift) {
      scratch.Reset();
      for (size_t k = 0; k < count; ++k) {
        const double v = ToDouble(LoadElement<T>(data, first + k));
        const double weight = w == nullptr ? 1.0 : w[k];
        if (!std::isfinite(v) || !(weight > 0)) continue;
        WeightedMomentSums& s = sums[channel_of(k)];
        s.sum += weight * v;
        s.weight += weight;
        s.min = std::min(s.min, v);
      }
      for (size_t c = 0; c < channels.size(); ++c) {
        if (!channels[c].has_shift() && sums[c].weight > 0) {
          // Near float64's limit the sum overflows ([1e308, 1e308]); any value of the
          // channel is a shift then, and the least is one.
          const double mean = sums[c].sum / sums[c].weight;
          channels[c].SetShift(std::isfinite(mean) ? mean : sums[c].min);
        }
      }
    }
    scratch.Reset();
    for (size_t k = 0; k < count; ++k) {
      const double weight = w == nullptr ? 1.0 : w[k];
      if (!(weight > 0)) continue;
      const double v = ToDouble(LoadElement<T>(data, first + k));
      const size_t c = channel_of(k);
      if (!std::isfinite(v)) {
        if (ctx.policy == NonFinitePolicy::kReject) return NonFiniteValueError(v, first + k, c);
        ++skipped;
        continue;
      }
      const double d = v - channels[c].shift();
      WeightedMomentSums& s = sums[c];
      s.weight += weight;
      s.weight_squares += weight * weight;
      s.sum += weight * d;
      s.sum_squares += weight * d * d;
      s.min = std::min(s.min, v);
      s.max = std::max(s.max, v);
      s.count += 1;
    }
    return absl::OkStatus();
  });
}

// One run chunk's sums about `shift`, through the plain or the weighted kernel.
WeightedMomentSums RunSums(const FitContext& ctx, const std::byte* x, const double* w, size_t n,
                           double shift) {
  if (w == nullptr) return Unweighted(n, MomentSumsRun(ctx.batch.dtype, x, n, shift));
  return WeightedMomentSumsRun(ctx.batch.dtype, x, w, n, shift);
}

// A run chunk whose values share weight w > 0: the unweighted kernel's sums, scaled.
// False (nothing added) when a value is non-finite: the scalar path takes the chunk.
bool FitConstantWeight(const FitContext& ctx, const std::byte* x, size_t n, double w,
                       ShiftedChannelSums& channel) {
  if (!channel.has_shift()) {
    const MomentSums raw = MomentSumsRun(ctx.batch.dtype, x, n, 0.0);
    if (!std::isfinite(raw.sum_squares)) return false;
    channel.SetShift(raw.sum / static_cast<double>(n));
  }
  const MomentSums sums = MomentSumsRun(ctx.batch.dtype, x, n, channel.shift());
  if (!std::isfinite(sums.sum_squares)) return false;
  const auto count = static_cast<double>(n);
  channel.Add(
      {w * count, w * sums.sum, w * sums.sum_squares, sums.min, sums.max, count, w * w * count},
      /*weighted=*/true);
  return true;
}

// Fits runs [begin, end) of a kRuns walk.
absl::Status FitRuns(const FitContext& ctx, size_t begin, size_t end,
                     std::vector<ShiftedChannelSums>& channels, uint64_t& skipped) {
  const KernelWalk& walk = ctx.walk;
  const bool weighted = ctx.weights != nullptr;
  TileScratch scratch{std::vector<WeightedMomentSums>(walk.channels),
                      std::vector<double>(weighted ? std::min(kRunChunk, walk.inner) : 0)};
  const std::byte* data = ctx.batch.bytes.data();
  for (size_t run = begin; run < end; ++run) {
    const size_t c = run % walk.channels;
    ShiftedChannelSums& channel = channels[c];
    for (size_t offset = 0; offset < walk.inner; offset += kRunChunk) {
      const size_t first = run * walk.inner + offset;
      const size_t n = std::min(kRunChunk, walk.inner - offset);
      const std::byte* x = data + first * ctx.element_size;
      const double* w = nullptr;
      if (weighted) {
        if (const double* one = ctx.weights->Constant(first, n)) {
          // One weight for the whole chunk (a sample's or a plane's): the plain kernel.
          if (*one == 0) continue;  // masked: not even its NaNs count
          if (!FitConstantWeight(ctx, x, n, *one, channel)) {
            std::fill_n(scratch.weights.data(), n, *one);
            NORMD_RETURN_IF_ERROR(ScalarTile(
                ctx, first, n, scratch.weights.data(), [c](size_t) { return c; }, channels, scratch,
                skipped));
            channel.Add(scratch.sums[c], weighted);
          }
          continue;
        }
        w = ctx.weights->PerValue(first);
        if (w == nullptr) {
          ctx.weights->Expand(first, n, scratch.weights.data());
          w = scratch.weights.data();
        }
      }
      if (!channel.has_shift()) {
        const WeightedMomentSums raw = RunSums(ctx, x, w, n, 0.0);
        if (std::isfinite(raw.sum_squares) && raw.weight > 0) {
          channel.SetShift(raw.sum / raw.weight);
        }
      }
      WeightedMomentSums tile;
      if (channel.has_shift()) tile = RunSums(ctx, x, w, n, channel.shift());
      if (channel.has_shift() && std::isfinite(tile.sum_squares)) {
        channel.Add(tile, weighted);
        continue;
      }
      NORMD_RETURN_IF_ERROR(ScalarTile(
          ctx, first, n, w, [c](size_t) { return c; }, channels, scratch, skipped));
      channel.Add(scratch.sums[c], weighted);
    }
  }
  return absl::OkStatus();
}

// Per-column accumulators of a row tile.
struct ColumnSums {
  explicit ColumnSums(size_t columns)
      : weight(columns),
        sum(columns),
        squares(columns),
        min(columns),
        max(columns),
        count(columns),
        weight_squares(columns) {}

  void Reset() {
    for (std::vector<double>* a : {&weight, &sum, &squares, &count, &weight_squares}) {
      std::fill(a->begin(), a->end(), 0.0);
    }
    std::fill(min.begin(), min.end(), std::numeric_limits<double>::infinity());
    std::fill(max.begin(), max.end(), -std::numeric_limits<double>::infinity());
  }

  WeightedColumns Columns() {
    return {weight.data(), sum.data(),   squares.data(),       min.data(),
            max.data(),    count.data(), weight_squares.data()};
  }

  std::vector<double> weight, sum, squares, min, max, count, weight_squares;
};

// Fits row units [begin, end) of a kRows walk (unit walk.rows is the partial row).
absl::Status FitRows(const FitContext& ctx, size_t begin, size_t end,
                     std::vector<ShiftedChannelSums>& channels, uint64_t& skipped) {
  const KernelWalk& walk = ctx.walk;
  const size_t columns = walk.row_len;
  const bool weighted = ctx.weights != nullptr;
  // Weighted tiles expand their weights to one per value: keep that buffer in cache.
  const size_t tile_rows =
      weighted ? std::clamp<size_t>(kWeightedTileValues / columns, 1, kTileRows) : kTileRows;
  std::vector<double> shift(columns);
  ColumnSums column(columns);
  TileScratch scratch{std::vector<WeightedMomentSums>(walk.channels),
                      std::vector<double>(weighted ? tile_rows * columns : 0)};
  const std::vector<uint32_t> column_channel = ColumnChannels(walk);
  // Column sums of one tile folded into per-channel sums; false if any is non-finite.
  const auto fold_columns = [&](size_t rows, size_t width) {
    scratch.Reset();
    bool finite = true;
    for (size_t j = 0; j < width; ++j) {
      WeightedMomentSums& s = scratch.sums[column_channel[j]];
      finite = finite && std::isfinite(column.squares[j]);
      if (weighted) {
        s.weight += column.weight[j];
        s.weight_squares += column.weight_squares[j];
        s.count += column.count[j];
      } else {
        s.weight += static_cast<double>(rows);
        s.weight_squares += static_cast<double>(rows);
        s.count += static_cast<double>(rows);
      }
      s.sum += column.sum[j];
      s.sum_squares += column.squares[j];
      s.min = std::min(s.min, column.min[j]);
      s.max = std::max(s.max, column.max[j]);
    }
    return finite;
  };
  const auto tile_sums = [&](const std::byte* x, const double* w, size_t rows, size_t width) {
    column.Reset();
    if (w == nullptr) {
      MomentSumsRows(ctx.batch.dtype, x, rows, width, shift.data(), column.sum.data(),
                     column.squares.data(), column.min.data(), column.max.data());
    } else {
      WeightedMomentSumsRows(ctx.batch.dtype, x, w, rows, width, shift.data(), column.Columns());
    }
    return fold_columns(rows, width);
  };
  const auto shifts_known = [&] {
    return std::all_of(channels.begin(), channels.end(),
                       [](const ShiftedChannelSums& c) { return c.has_shift(); });
  };
  const std::byte* data = ctx.batch.bytes.data();

  bool shifts_changed = true;
  for (size_t unit = begin; unit < end;) {
    const RowTile tile = RowTileAt(walk, unit, end, tile_rows);
    const size_t rows = tile.rows, width = tile.width, first = tile.first;
    const std::byte* x = data + first * ctx.element_size;
    const double* w = nullptr;
    if (weighted) {
      w = ctx.weights->PerValue(first);
      if (w == nullptr) {
        ctx.weights->Expand(first, rows * width, scratch.weights.data());
        w = scratch.weights.data();
      }
    }
    if (!shifts_known()) {  // pre-pass: each channel's shift from this tile's own mean
      std::fill(shift.begin(), shift.end(), 0.0);
      if (tile_sums(x, w, rows, width)) {
        for (size_t c = 0; c < walk.channels; ++c) {
          const WeightedMomentSums& s = scratch.sums[c];
          if (!channels[c].has_shift() && s.weight > 0) channels[c].SetShift(s.sum / s.weight);
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
      done = tile_sums(x, w, rows, width);
    }
    if (!done) {
      NORMD_RETURN_IF_ERROR(ScalarTile(
          ctx, first, rows * width, w, [&](size_t k) { return column_channel[k % width]; },
          channels, scratch, skipped));
      shifts_changed = true;
    }
    for (size_t c = 0; c < walk.channels; ++c) {
      shifts_changed = channels[c].Add(scratch.sums[c], weighted) || shifts_changed;
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
                                             WorkerPool* pool, const SampleWeights* weights) {
  if (out.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError(absl::StrCat("moments buffer holds ", out.size(),
                                            " channels, geometry has ", geometry.channels));
  }
  const KernelWalk walk = PlanKernelWalk(geometry);
  if (batch.dtype == DType::kUInt8 && weights == nullptr) {  // exact integer lanes; all finite
    ComputeU8BatchMoments(batch, walk, out, pool);
    return 0;
  }
  const FitContext ctx{batch, walk, policy, ElementSize(batch.dtype), weights};
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
  for (size_t c = 0; c < out.size(); ++c) {
    NORMD_RETURN_IF_ERROR(CheckRepresentable(out[c], c, "the batch"));
  }
  return skipped;
}

}  // namespace normd
