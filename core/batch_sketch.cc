// A batch into quantile sketches: the SketchIndex kernels turn a tile of values into
// bucket indices, and a BucketCounter counts them in dense pages (one page of
// 2^resolution counters per octave a channel touches), emitted as sorted buckets when
// a channel's part is done. The counting is the cost: one increment per value.
#include "core/batch_sketch.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/kernel_plan.h"
#include "core/kernels/sketch_index.h"

namespace normd {
namespace {

constexpr size_t kPartBytes = size_t{4} << 20;   // input per parallel part
constexpr size_t kTileValues = size_t{1} << 16;  // indices computed per kernel call
constexpr size_t kMaxTileValues = size_t{1} << 20;
constexpr size_t kFlushValues = 4096;  // a channel's values per flush, at least

// Counts of bucket indices at one resolution (0..kMaxSketchIndexResolution), reused
// across parts and channels; Flush hands them over as sorted buckets and clears.
// Count is uint32_t (one per value) or double (a weight per value: the sums add in
// the batch's flat order, so a batch gives the same bytes every time).
//
// Most values of a channel fall within 64 octaves of its largest magnitude, so
// counts live in a dense window of magnitudes per sign, [low, low + window), placed
// by the first values counted: one subtraction, one compare and one increment per
// value. Values outside it (zeros, subnormals, a far outlier) are kept as indices and
// sorted at the flush.
template <typename Count>
class BucketCounter {
 public:
  static constexpr bool kWeighted = std::is_same_v<Count, double>;

  explicit BucketCounter(int resolution)
      : resolution_(resolution),
        window_(std::min<int32_t>(64 << resolution, 1 << 16)),
        table_(2 * static_cast<size_t>(window_) + 1, 0) {}

  int resolution() const { return resolution_; }

  // For counting slots made elsewhere (SketchSlotRows): the window, placed once from the
  // first indices of a channel; the table to increment; a value outside the window.
  bool placed() const { return placed_; }
  void PlaceFrom(const int32_t* index, size_t n, size_t stride) { Place(index, n, stride); }
  int32_t low() const { return low_; }
  uint32_t window() const { return static_cast<uint32_t>(window_); }
  size_t table_bytes() const { return table_.size() * sizeof(Count); }
  // For a caller that increments the table itself: the flush then scans all of it.
  Count* table() {
    Touch(0, static_cast<uint32_t>(window_) - 1);
    return table_.data();
  }
  void AddOutside(int32_t index) { Spill(index, 1.0); }

  // Counts the values of a run through the slot kernel: one increment (or weight)
  // each; a value outside the window (rare) is indexed again and kept apart. Weighted
  // counters take `w`, one weight per value; a weight of 0 counts nothing.
  void AddRun(DType dtype, const std::byte* x, size_t n, double center, const double* w = nullptr) {
    if (n == 0) return;
    if (!placed_) {
      const size_t head = std::min<size_t>(n, 256);
      head_.resize(head);
      SketchIndexRun(dtype, x, head, center, resolution_, head_.data());
      Place(head_.data(), head, 1);
    }
    const auto window = static_cast<uint32_t>(window_);
    const size_t element_size = ElementSize(dtype);
    for (size_t first = 0; first < n; first += kTileValues) {
      const size_t count = std::min(kTileValues, n - first);
      slots_.resize(count);
      spilled_.resize(count);
      const std::byte* tile = x + first * element_size;
      const size_t spills = SketchSlotRun(dtype, tile, count, center, resolution_, low_, window,
                                          slots_.data(), spilled_.data());
      Count* const table = table_.data();
      if constexpr (kWeighted) {
        for (size_t i = 0; i < count; ++i) table[slots_[i]] += w[first + i];
      } else {
        for (size_t i = 0; i < count; ++i) ++table[slots_[i]];
      }
      // Runs are long (a plane of an image): the flush's scan of the whole window is
      // amortised, and tracking the offsets here would cost more than it saves.
      Touch(0, window - 1);
      if (spills > 0) {
        VisitDType(dtype, [&](auto tag) {
          using T = decltype(tag);
          for (size_t s = 0; s < spills; ++s) {
            const uint32_t i = spilled_[s];
            Spill(SketchIndexOf(ToDouble(LoadElement<T>(tile, i)) - center, resolution_),
                  kWeighted ? w[first + i] : 1.0);
          }
        });
      }
    }
  }

  // Counts n indices `stride` apart (and their weights, `stride` apart, when weighted).
  void Add(const int32_t* index, size_t n, size_t stride, const double* w = nullptr) {
    if (n == 0) return;
    if (!placed_) Place(index, n, stride);
    const auto window = static_cast<uint32_t>(window_);
    Count* const table = table_.data();
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < n; ++i) {
      const int32_t idx = index[i * stride];
      const uint32_t negative = static_cast<uint32_t>(idx) >> 31;
      const int32_t magnitude = idx ^ (idx >> 31);  // -1 - idx for negative indices
      const uint32_t offset = static_cast<uint32_t>(magnitude - low_);
      const Count add = kWeighted ? static_cast<Count>(w[i * stride]) : Count{1};
      if (offset < window) {
        table[negative * window + offset] += add;
        lo = std::min(lo, offset);
        hi = std::max(hi, offset);
      } else {
        Spill(idx, static_cast<double>(add));
      }
    }
    Touch(lo, hi);
  }

  // uint8 values are counted by byte, in four interleaved tables (a run of equal
  // pixels would otherwise wait on its own increments), and indexed at the flush.
  void AddBytes(const uint8_t* x, size_t n, size_t stride) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      ++bytes_[0][x[i * stride]];
      ++bytes_[1][x[(i + 1) * stride]];
      ++bytes_[2][x[(i + 2) * stride]];
      ++bytes_[3][x[(i + 3) * stride]];
    }
    for (; i < n; ++i) ++bytes_[0][x[i * stride]];
  }

  void FlushBytesInto(double center, uint32_t max_buckets, QuantileSketch& sketch) {
    buckets_.clear();
    for (int v = 0; v < 256; ++v) {  // indices rise with v
      const uint32_t count = bytes_[0][v] + bytes_[1][v] + bytes_[2][v] + bytes_[3][v];
      if (count == 0) continue;
      const int32_t index = SketchIndexOf(v - center, resolution_);
      if (!buckets_.empty() && buckets_.back().index == index) {
        buckets_.back().count += count;
      } else {
        buckets_.push_back(SketchBucket{index, static_cast<double>(count)});
      }
    }
    for (auto& table : bytes_) table.fill(0);
    AddBuckets(buckets_, resolution_, max_buckets, sketch);
  }

  void FlushInto(uint32_t max_buckets, QuantileSketch& sketch) {
    buckets_.clear();
    const size_t window = static_cast<size_t>(window_);
    Count* const positive = table_.data();  // Add's halves: [positive | negative]
    Count* const negative = positive + window;
    // Only the offsets touched since the last flush can be nonzero.
    const size_t first = touched_low_, end = touched_low_ <= touched_high_ ? touched_high_ + 1 : 0;
    touched_low_ = UINT32_MAX;
    touched_high_ = 0;
    for (size_t offset = end; offset-- > first;) {  // most negative first
      if (negative[offset] != 0) {
        Emit(-1 - (low_ + static_cast<int32_t>(offset)), static_cast<double>(negative[offset]));
        negative[offset] = 0;
      }
    }
    // Below the window's magnitudes (between its two halves in value order) or above
    // them (before the negative half, after the positive one): sorted (stably, so equal
    // indices' weights add in the order they came), then merged.
    std::stable_sort(outside_.begin(), outside_.end(),
                     [](const Spilled& a, const Spilled& b) { return a.index < b.index; });
    // Both lists live in the counter and keep their room between flushes.
    std::vector<SketchBucket>& window_buckets = window_buckets_;
    window_buckets.swap(buckets_);
    buckets_.clear();
    for (size_t i = 0; i < outside_.size();) {
      double count = 0;
      size_t j = i;
      for (; j < outside_.size() && outside_[j].index == outside_[i].index; ++j) {
        count += outside_[j].count;
      }
      Emit(outside_[i].index, count);
      i = j;
    }
    std::vector<SketchBucket>& outside_buckets = outside_buckets_;
    outside_buckets.swap(buckets_);
    buckets_.clear();
    for (size_t offset = first; offset < end; ++offset) {
      if (positive[offset] != 0) {
        window_buckets.push_back(SketchBucket{low_ + static_cast<int32_t>(offset),
                                              static_cast<double>(positive[offset])});
        positive[offset] = 0;
      }
    }
    outside_.clear();
    table_[2 * window] = 0;  // the spill slot: its values are in outside_
    placed_ = false;
    AddBuckets(window_buckets, resolution_, max_buckets, sketch);
    AddBuckets(outside_buckets, resolution_, max_buckets, sketch);
  }

 private:
  struct Spilled {
    int32_t index;
    double count;
  };

  // The window's lowest magnitude: 63 octaves below the largest of the first values.
  void Place(const int32_t* index, size_t n, size_t stride) {
    int32_t largest = 0;
    for (size_t i = 0; i < std::min<size_t>(n, 256); ++i) {
      const int32_t idx = index[i * stride];
      if (SketchIndexIsFinite(idx, resolution_)) largest = std::max(largest, idx ^ (idx >> 31));
    }
    low_ = std::max(0, largest + (1 << resolution_) - window_);
    placed_ = true;
  }

  void Touch(uint32_t lo, uint32_t hi) {
    touched_low_ = std::min(touched_low_, lo);
    touched_high_ = std::max(touched_high_, hi);
  }

  void Spill(int32_t index, double count) {
    if (count != 0) outside_.push_back(Spilled{index, count});
  }

  // Appends a finite bucket (infinities and NaNs have the all-ones exponent).
  void Emit(int32_t index, double count) {
    if (SketchIndexIsFinite(index, resolution_)) buckets_.push_back(SketchBucket{index, count});
  }

  int resolution_;
  int32_t window_;
  // [positive | negative | spilled] counts; a part never counts 2^32.
  std::vector<Count> table_;
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> spilled_;  // positions of the spill slot in slots_
  std::vector<int32_t> head_;
  std::vector<Spilled> outside_;
  int32_t low_ = 0;
  bool placed_ = false;
  uint32_t touched_low_ = UINT32_MAX;  // the offsets counted since the last flush
  uint32_t touched_high_ = 0;
  std::vector<SketchBucket> buckets_;
  std::vector<SketchBucket> window_buckets_;
  std::vector<SketchBucket> outside_buckets_;
  std::array<std::array<uint32_t, 256>, 4> bytes_{};
};

template <typename Count = uint32_t>
BucketCounter<Count>& CounterFor(int resolution) {
  thread_local std::optional<BucketCounter<Count>> counter;
  if (!counter.has_value() || counter->resolution() != resolution) counter.emplace(resolution);
  return *counter;
}

struct SketchContext {
  const TensorView& batch;
  const KernelWalk& walk;
  const QuantileSketchSpec& spec;
  size_t element_size;
};

// A part's weights (Count double) or none (Count uint32_t): the weights of values
// [first, first + n), where they lie or expanded into a buffer.
template <typename Count>
class TileWeights {
 public:
  explicit TileWeights(const SampleWeights* weights) : weights_(weights) {}

  static constexpr bool kWeighted = BucketCounter<Count>::kWeighted;

  // Whether values [first, first + n) all weigh 0 (a masked run: nothing to count).
  bool Masked(size_t first, size_t n) const {
    if constexpr (!kWeighted) return false;
    const double* one = weights_->Constant(first, n);
    return one != nullptr && *one == 0;
  }

  const double* Of(size_t first, size_t n) {
    if constexpr (!kWeighted) return nullptr;
    if (const double* lying = weights_->PerValue(first)) return lying;
    buffer_.resize(n);
    weights_->Expand(first, n, buffer_.data());
    return buffer_.data();
  }

 private:
  const SampleWeights* weights_;
  std::vector<double> buffer_;
};

// Runs [begin, end) of a kRuns walk, channel by channel; weighted when Count is
// double. Unweighted uint8 is counted by byte.
template <typename Count>
void SketchRuns(const SketchContext& ctx, size_t begin, size_t end,
                std::vector<QuantileSketch>& sketches, const SampleWeights* weights) {
  const KernelWalk& walk = ctx.walk;
  BucketCounter<Count>& counter = CounterFor<Count>(ctx.spec.resolution);
  TileWeights<Count> tile_weights(weights);
  const std::byte* data = ctx.batch.bytes.data();
  for (size_t c = 0; c < walk.channels; ++c) {
    const size_t first_run = begin + (c + walk.channels - begin % walk.channels) % walk.channels;
    if (first_run >= end) continue;
    const double center = ctx.spec.CenterOf(c);
    if (!TileWeights<Count>::kWeighted && ctx.batch.dtype == DType::kUInt8) {
      for (size_t run = first_run; run < end; run += walk.channels) {
        counter.AddBytes(reinterpret_cast<const uint8_t*>(data) + run * walk.inner, walk.inner, 1);
      }
      counter.FlushBytesInto(center, ctx.spec.max_buckets, sketches[c]);
      continue;
    }
    for (size_t run = first_run; run < end; run += walk.channels) {
      for (size_t offset = 0; offset < walk.inner; offset += kTileValues) {
        const size_t first = run * walk.inner + offset;
        const size_t n = std::min(kTileValues, walk.inner - offset);
        if (tile_weights.Masked(first, n)) continue;
        counter.AddRun(ctx.batch.dtype, data + first * ctx.element_size, n, center,
                       tile_weights.Of(first, n));
      }
    }
    counter.FlushInto(ctx.spec.max_buckets, sketches[c]);
  }
}

// Per-channel counters of one resolution, reused across parts by a thread.
std::vector<BucketCounter<uint32_t>>& ChannelCounters(int resolution, size_t channels) {
  thread_local std::vector<BucketCounter<uint32_t>> counters;
  if (!counters.empty() && counters[0].resolution() != resolution) counters.clear();
  while (counters.size() < channels) counters.emplace_back(resolution);
  return counters;
}

// The counters' tables of all channels, at most (64 channels at the default
// resolution): past it the windows would spill from cache, and the rows path below,
// one shared counter flushed per channel and tile, is cheaper.
constexpr size_t kMaxWindowTableBytes = size_t{1} << 22;
constexpr size_t kSlotTileValues = 8192;

// Unweighted float row units [begin, end) of a kRows walk with few channels: each
// channel keeps its own window of counters for the whole part, the slot kernel gives
// every column its channel's slot, and one pass increments them; values outside their
// window are indexed apart. No per-tile flush and no per-value branch.
void SketchRowsBySlots(const SketchContext& ctx, size_t begin, size_t end,
                       std::vector<QuantileSketch>& sketches) {
  const KernelWalk& walk = ctx.walk;
  std::vector<BucketCounter<uint32_t>>& counters =
      ChannelCounters(ctx.spec.resolution, walk.channels);
  const std::vector<uint32_t> column_channel = ColumnChannels(walk);
  std::vector<double> center(walk.row_len);
  for (size_t j = 0; j < walk.row_len; ++j) center[j] = ctx.spec.CenterOf(column_channel[j]);
  const size_t tile_rows = std::max<size_t>(1, kSlotTileValues / walk.row_len);
  std::vector<int32_t> index(tile_rows * walk.row_len);
  std::vector<uint32_t> slot(tile_rows * walk.row_len), spilled(slot.size());
  std::vector<uint32_t> low(walk.row_len), base(walk.row_len, 0);
  std::vector<uint32_t*> table(walk.row_len);
  const uint32_t window = counters[0].window();
  for (size_t unit = begin; unit < end;) {
    const RowTile tile = RowTileAt(walk, unit, end, tile_rows);
    const size_t rows = tile.rows, width = tile.width, first = tile.first;
    const std::byte* x = ctx.batch.bytes.data() + first * ctx.element_size;
    if (unit == begin) {  // each channel's window from its first column's values
      SketchIndexRows(ctx.batch.dtype, x, rows, width, center.data(), ctx.spec.resolution,
                      index.data());
      for (size_t j = 0; j < width; ++j) {
        BucketCounter<uint32_t>& counter = counters[column_channel[j]];
        if (!counter.placed()) counter.PlaceFrom(index.data() + j, rows, width);
      }
      for (size_t j = 0; j < walk.row_len; ++j) {
        BucketCounter<uint32_t>& counter = counters[column_channel[j]];
        low[j] = static_cast<uint32_t>(counter.low());
        table[j] = counter.table();
      }
    }
    const size_t spills =
        SketchSlotRows(ctx.batch.dtype, x, rows, width, center.data(), ctx.spec.resolution,
                       low.data(), base.data(), window, slot.data(), spilled.data());
    for (size_t r = 0; r < rows; ++r) {
      const uint32_t* row = slot.data() + r * width;
      for (size_t j = 0; j < width; ++j) ++table[j][row[j]];
    }
    if (spills > 0) {
      VisitDType(ctx.batch.dtype, [&](auto tag) {
        using T = decltype(tag);
        for (size_t s = 0; s < spills; ++s) {
          const size_t j = spilled[s] % width;
          const double v = ToDouble(LoadElement<T>(x, spilled[s]));
          counters[column_channel[j]].AddOutside(SketchIndexOf(v - center[j], ctx.spec.resolution));
        }
      });
    }
    unit += rows;
  }
  for (size_t c = 0; c < walk.channels; ++c) {
    if (counters[c].placed()) counters[c].FlushInto(ctx.spec.max_buckets, sketches[c]);
  }
}

// Row units [begin, end) of a kRows walk (unit walk.rows is the partial row), a tile
// of rows at a time, each channel's columns counted in turn; weighted when Count is
// double. Unweighted uint8 is counted by byte.
template <typename Count>
void SketchRows(const SketchContext& ctx, size_t begin, size_t end,
                std::vector<QuantileSketch>& sketches, const SampleWeights* weights) {
  const KernelWalk& walk = ctx.walk;
  BucketCounter<Count>& counter = CounterFor<Count>(ctx.spec.resolution);
  if (!TileWeights<Count>::kWeighted && ctx.batch.dtype != DType::kUInt8 &&
      walk.channels * counter.table_bytes() <= kMaxWindowTableBytes) {
    SketchRowsBySlots(ctx, begin, end, sketches);
    return;
  }
  TileWeights<Count> tile_weights(weights);
  const std::vector<uint32_t> column_channel = ColumnChannels(walk);
  std::vector<double> center(walk.row_len);
  for (size_t j = 0; j < walk.row_len; ++j) center[j] = ctx.spec.CenterOf(column_channel[j]);
  // The columns of each channel, in order.
  std::vector<std::vector<uint32_t>> columns(walk.channels);
  for (size_t j = 0; j < walk.row_len; ++j) {
    columns[column_channel[j]].push_back(static_cast<uint32_t>(j));
  }
  // Each channel's share of a tile is counted and flushed on its own: give it a few
  // thousand values, so the flush's scan of the window is amortised.
  const size_t tile_values = std::clamp(kFlushValues * walk.channels, kTileValues, kMaxTileValues);
  const size_t tile_rows = std::max<size_t>(1, tile_values / walk.row_len);
  const bool bytes = !TileWeights<Count>::kWeighted && ctx.batch.dtype == DType::kUInt8;
  std::vector<int32_t> index(bytes ? 0 : tile_rows * walk.row_len);
  for (size_t unit = begin; unit < end;) {
    const RowTile tile = RowTileAt(walk, unit, end, tile_rows);
    const size_t rows = tile.rows, width = tile.width, first = tile.first;
    const std::byte* x = ctx.batch.bytes.data() + first * ctx.element_size;
    if (bytes) {
      const auto* pixels = reinterpret_cast<const uint8_t*>(x);
      for (size_t c = 0; c < walk.channels; ++c) {
        bool any = false;
        for (const uint32_t j : columns[c]) {
          if (j >= width) break;
          counter.AddBytes(pixels + j, rows, width);
          any = true;
        }
        if (any) counter.FlushBytesInto(ctx.spec.CenterOf(c), ctx.spec.max_buckets, sketches[c]);
      }
      unit += rows;
      continue;
    }
    SketchIndexRows(ctx.batch.dtype, x, rows, width, center.data(), ctx.spec.resolution,
                    index.data());
    const double* w = tile_weights.Of(first, rows * width);
    for (size_t c = 0; c < walk.channels; ++c) {
      bool any = false;
      for (const uint32_t j : columns[c]) {
        if (j >= width) break;
        counter.Add(index.data() + j, rows, width, w == nullptr ? nullptr : w + j);
        any = true;
      }
      if (any) counter.FlushInto(ctx.spec.max_buckets, sketches[c]);
    }
    unit += rows;
  }
}

// A channel's values below this go through SketchFewValues.
constexpr int64_t kFewValuesPerChannel = 512;

// An unweighted batch with few values a channel (a [16, 64] batch has 16): each
// channel's indices sorted and counted. The dense windows of the paths above cost a
// scan of thousands of counters per channel to set up and flush, which a small batch
// never repays; the counts are integers, so the sketches are the same bytes.
void SketchFewValues(const TensorView& batch, const ChannelGeometry& geometry,
                     const QuantileSketchSpec& spec, std::span<QuantileSketch> sketches) {
  const auto outer = static_cast<size_t>(geometry.outer);
  const auto channels = static_cast<size_t>(geometry.channels);
  const auto inner = static_cast<size_t>(geometry.inner);
  std::vector<int32_t> indices;
  std::vector<SketchBucket> buckets;
  VisitDType(batch.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (size_t c = 0; c < channels; ++c) {
      indices.clear();
      const double center = spec.CenterOf(c);
      for (size_t o = 0; o < outer; ++o) {
        const size_t first = (o * channels + c) * inner;
        for (size_t i = 0; i < inner; ++i) {
          const double d = ToDouble(LoadElement<T>(batch.bytes.data(), first + i)) - center;
          const int32_t index = SketchIndexOf(d, spec.resolution);
          if (SketchIndexIsFinite(index, spec.resolution)) indices.push_back(index);
        }
      }
      std::sort(indices.begin(), indices.end());
      buckets.clear();
      for (const int32_t index : indices) {
        if (!buckets.empty() && buckets.back().index == index) {
          buckets.back().count += 1;
        } else {
          buckets.push_back({index, 1});
        }
      }
      AddBuckets(buckets, spec.resolution, spec.max_buckets, sketches[c]);
    }
  });
}

}  // namespace

std::vector<QuantileSketch> EmptySketches(const QuantileSketchSpec& spec, size_t channels) {
  return std::vector<QuantileSketch>(channels, QuantileSketch{spec.resolution, {}});
}

void AddBatchToSketches(const TensorView& batch, const ChannelGeometry& geometry,
                        const QuantileSketchSpec& spec, std::span<QuantileSketch> sketches,
                        WorkerPool* pool, const SampleWeights* weights) {
  if (weights == nullptr && geometry.outer * geometry.inner < kFewValuesPerChannel) {
    SketchFewValues(batch, geometry, spec, sketches);
    return;
  }
  const KernelWalk walk = PlanKernelWalk(geometry);
  const SketchContext ctx{batch, walk, spec, ElementSize(batch.dtype)};
  const bool runs = walk.kind == KernelWalk::Kind::kRuns;
  // Plain names, not a structured binding: clang 14 cannot capture those in lambdas.
  const WalkParts split = SplitWalk(walk, ctx.element_size, kPartBytes);
  const size_t units = split.units, per_part = split.per_part, parts = split.parts;
  std::vector<std::vector<QuantileSketch>> results(parts);
  const auto sketch_part = [&](size_t p) {
    results[p] = EmptySketches(spec, walk.channels);
    const size_t begin = p * per_part;
    const size_t end = std::min(units, begin + per_part);
    if (weights != nullptr) {
      runs ? SketchRuns<double>(ctx, begin, end, results[p], weights)
           : SketchRows<double>(ctx, begin, end, results[p], weights);
    } else {
      runs ? SketchRuns<uint32_t>(ctx, begin, end, results[p], nullptr)
           : SketchRows<uint32_t>(ctx, begin, end, results[p], nullptr);
    }
  };
  RunTasks(pool, parts, sketch_part);
  for (const std::vector<QuantileSketch>& part : results) {
    for (size_t c = 0; c < walk.channels; ++c) MergeSketch(part[c], spec.max_buckets, sketches[c]);
  }
}

void AddBatchToSketchesReference(const TensorView& batch, const ChannelGeometry& geometry,
                                 const QuantileSketchSpec& spec, std::span<QuantileSketch> sketches,
                                 const SampleWeights* weights) {
  const auto outer = static_cast<size_t>(geometry.outer);
  const auto channels = static_cast<size_t>(geometry.channels);
  const auto inner = static_cast<size_t>(geometry.inner);
  VisitDType(batch.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (size_t c = 0; c < channels; ++c) {
      std::vector<SketchBucket> one(1);
      for (size_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < inner; ++i) {
          const size_t flat = (o * channels + c) * inner + i;
          const double w =
              weights == nullptr ? 1.0 : weights->weights[flat / weights->values_per_weight];
          const double d = ToDouble(LoadElement<T>(batch.bytes.data(), flat)) - spec.CenterOf(c);
          one[0] = SketchBucket{SketchIndexOf(d, spec.resolution), w};
          if (!(w > 0) || !SketchIndexIsFinite(one[0].index, spec.resolution)) continue;
          AddBuckets(one, spec.resolution, spec.max_buckets, sketches[c]);
        }
      }
    }
  });
}

}  // namespace normd
