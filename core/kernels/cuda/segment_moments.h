// The CUDA fit's work per thread and per block, for the device and the host alike:
// exact-to-float64 moments of every segment of a tensor (a channel for the fit and
// batch norm; a sample's group for layer, instance and group norm).
//
// The tensor is `units` blocks of [rows, channels, inner] values; segment
// u * groups + c / (channels / groups) holds unit u's channel c (the fit: one unit,
// groups == channels). A launch of MomentTiles covers it with tiles, one CUDA block
// each (MomentTiling): chunks of a long run of one segment's contiguous values, or
// columns of rows when a segment's values interleave with others' (channels-last, NC).
//
// Accuracy: the CPU's scheme (core/batch_moments.cc), tile by tile. Each thread
// holds up to kValuesPerThread values of one segment in registers and reduces them
// about their own mean (two passes over registers, one over memory) to a partial
// (count, mean, M2) in double-double; partials merge by Chan's formula in
// double-double, in a fixed tree, first within the block, then per segment
// (MergeSlotsOfThread, then a tree). Nothing cancels however far the data sit from zero, and the
// result does not depend on the device: the emulation test runs the same functions in
// the same order on the host.
//
// Non-finite values are left out of the count (the caller compares counts with the
// values expected) and the first one's flat index is kept (AtomicMinIndex).
//
// uint8 batches are summed in integers (U8Partial): exact, in any order, as the CPU
// does (core/u8_batch_moments.h).
#ifndef NORMD_CORE_KERNELS_CUDA_SEGMENT_MOMENTS_H_
#define NORMD_CORE_KERNELS_CUDA_SEGMENT_MOMENTS_H_

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/kernels/chan_merge.h"
#include "core/kernels/cuda/device_element.h"
#include "core/kernels/double_double.h"
#include "core/kernels/host_device.h"
#include "core/kernels/integer_moments.h"

namespace normd::cuda_kernels {

inline constexpr unsigned kMomentThreads = 256;   // threads per block
inline constexpr unsigned kValuesPerThread = 16;  // values a thread holds in registers at once
// A segment's contiguous runs at least this long are tiled as runs, shorter ones (a
// channels-last or NC batch's single values) as columns of rows.
inline constexpr uint64_t kMinRunTile = 32;
// Register batches a column thread reduces and merges in turn: a partial then stands
// for up to 256 values, so partials cost a fraction of the input's traffic.
inline constexpr uint64_t kColumnBatches = 16;
inline constexpr uint64_t kNoIndex = ~uint64_t{0};

struct SegmentGeometry {
  uint64_t units = 0;
  uint64_t rows = 0;
  uint64_t channels = 0;
  uint64_t inner = 0;
  uint64_t groups = 0;

  NORMD_HD uint64_t segments() const { return units * groups; }
  NORMD_HD uint64_t period() const { return channels * inner; }  // one row of a unit
  NORMD_HD uint64_t unit_elements() const { return rows * period(); }
  NORMD_HD uint64_t group_span() const { return channels / groups * inner; }  // within a row
  NORMD_HD uint64_t segment_values() const { return rows * group_span(); }
  // With one group or one row a segment's values are contiguous.
  NORMD_HD bool contiguous() const { return groups == 1 || rows == 1; }
};

// How MomentTiles' blocks cover the tensor. A block holds `width` groups of `lanes`
// threads; each group's values belong to one segment and reduce to one partial,
// written to a slot of that segment: segment s owns slots
// [s * slots_per_segment, (s + 1) * slots_per_segment). In shared memory the partial
// of (group, lane) sits at group + lane * width (TreeStep).
struct MomentTiling {
  SegmentGeometry g;
  bool runs = true;
  uint64_t width = 1;
  uint64_t lanes = kMomentThreads;
  uint64_t blocks = 0;
  uint64_t slots_per_segment = 0;
  // Runs: the flat array is runs of run_length values; a run is cut into chunks of
  // lanes * kValuesPerThread values, and group w of block b takes chunk b * width + w
  // of the whole sequence of (run, chunk).
  uint64_t run_length = 0;
  uint64_t chunks_per_run = 0;
  uint64_t chunks = 0;
  // Columns: blocks of `width` columns of one unit's row period, and
  // lanes * kValuesPerThread * kColumnBatches rows.
  uint64_t column_blocks = 0;
  uint64_t row_tiles = 0;

  NORMD_HD uint64_t slots() const { return g.segments() * slots_per_segment; }
};

NORMD_HD inline uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

inline MomentTiling PlanMomentTiling(const SegmentGeometry& g) {
  MomentTiling t;
  t.g = g;
  t.run_length = g.contiguous() ? g.segment_values() : g.group_span();
  t.runs = g.contiguous() || t.run_length >= kMinRunTile;
  if (t.runs) {
    // A warp at least, a block at most, enough lanes for the run in one chunk.
    const uint64_t needed = CeilDiv(t.run_length, kValuesPerThread);
    t.lanes = 32;
    while (t.lanes < needed && t.lanes < kMomentThreads) t.lanes <<= 1;
    t.width = kMomentThreads / t.lanes;
    t.chunks_per_run = CeilDiv(t.run_length, t.lanes * kValuesPerThread);
    const uint64_t runs = g.units * (g.contiguous() ? 1 : g.rows) * g.groups;
    t.chunks = runs * t.chunks_per_run;
    t.blocks = CeilDiv(t.chunks, t.width);
    t.slots_per_segment = (g.contiguous() ? 1 : g.rows) * t.chunks_per_run;
  } else {
    const uint64_t period = g.period();
    t.width = period < kMomentThreads ? period : kMomentThreads;
    t.lanes = kMomentThreads / t.width;
    t.column_blocks = CeilDiv(period, t.width);
    t.row_tiles = CeilDiv(g.rows, t.lanes * kValuesPerThread * kColumnBatches);
    t.blocks = g.units * t.row_tiles * t.column_blocks;
    t.slots_per_segment = t.row_tiles * g.group_span();
  }
  return t;
}

// What thread `thread` of block `block` reads and where its group's partial goes:
// values first + v * stride for v < count, and a slot (kNoIndex: an idle thread).
struct ThreadTile {
  uint64_t first = 0;
  uint64_t stride = 0;
  uint64_t count = 0;
  uint64_t slot = kNoIndex;
  uint64_t shared = 0;  // its partial's place in the block's shared memory
};

NORMD_HD inline ThreadTile TileOfThread(const MomentTiling& t, uint64_t block, uint64_t thread) {
  ThreadTile tile;
  const SegmentGeometry& g = t.g;
  if (t.runs) {
    // Consecutive threads read consecutive values of one chunk.
    const uint64_t group = thread / t.lanes;
    const uint64_t lane = thread % t.lanes;
    tile.shared = group + lane * t.width;
    const uint64_t chunk_index = block * t.width + group;
    if (chunk_index >= t.chunks) return tile;
    const uint64_t run = chunk_index / t.chunks_per_run;
    const uint64_t chunk = chunk_index % t.chunks_per_run;
    const uint64_t offset = chunk * t.lanes * kValuesPerThread + lane;
    const uint64_t left = offset < t.run_length ? t.run_length - offset : 0;
    tile.first = run * t.run_length + offset;
    tile.stride = t.lanes;
    tile.count = CeilDiv(left, t.lanes);
    if (tile.count > kValuesPerThread) tile.count = kValuesPerThread;
    // Contiguous: run u * groups + group is segment u * groups + group. Else run
    // (u * rows + row) * groups + group.
    const uint64_t segment =
        g.contiguous() ? run : run / (g.rows * g.groups) * g.groups + run % g.groups;
    const uint64_t row = g.contiguous() ? 0 : run / g.groups % g.rows;
    tile.slot = segment * t.slots_per_segment + row * t.chunks_per_run + chunk;
    return tile;
  }
  // Consecutive threads read consecutive columns of a row.
  const uint64_t group = thread % t.width;
  const uint64_t lane = thread / t.width;
  tile.shared = group + lane * t.width;
  if (lane >= t.lanes) return tile;
  const uint64_t column_block = block % t.column_blocks;
  const uint64_t row_tile = block / t.column_blocks % t.row_tiles;
  const uint64_t unit = block / t.column_blocks / t.row_tiles;
  const uint64_t column = column_block * t.width + group;
  if (column >= g.period()) return tile;
  const uint64_t row = row_tile * t.lanes * kValuesPerThread * kColumnBatches + lane;
  const uint64_t rows_left = row < g.rows ? g.rows - row : 0;
  tile.first = unit * g.unit_elements() + row * g.period() + column;
  tile.stride = t.lanes * g.period();
  tile.count = CeilDiv(rows_left, t.lanes);
  if (tile.count > kValuesPerThread * kColumnBatches)
    tile.count = kValuesPerThread * kColumnBatches;
  const uint64_t span = g.group_span();
  const uint64_t segment = unit * g.groups + column / span;
  tile.slot = segment * t.slots_per_segment + row_tile * span + column % span;
  return tile;
}

// count values with mean and M2 about it, min and max: what ChannelMoments holds.
struct MomentPartial {
  double count = 0;  // exact below 2^53 values
  DoubleDouble mean;
  DoubleDouble m2;
  double min = 0;
  double max = 0;
};

// Chan's update (chan_merge.h), as core/channel_moments.cc's MergeMoments.
NORMD_HD inline void MergePartial(const MomentPartial& other, MomentPartial& into) {
  if (other.count == 0) return;
  if (into.count == 0) {
    into = other;
    return;
  }
  ChanMerge(into.count, other.count, other.mean, other.m2, into.mean, into.m2);
  into.count = into.count + other.count;
  into.min = other.min < into.min ? other.min : into.min;
  into.max = other.max > into.max ? other.max : into.max;
}

NORMD_HD inline void AtomicMinIndex(unsigned long long* target, uint64_t index) {
#ifdef __CUDA_ARCH__
  atomicMin(target, static_cast<unsigned long long>(index));
#else
  if (index < *target) *target = index;
#endif
}

// Up to kValuesPerThread of one thread's values (from value `from` of its tile)
// reduced about their own mean, finite values only.
template <typename In>
NORMD_HD inline MomentPartial RegisterBatchMoments(const In* x, const ThreadTile& tile,
                                                   uint64_t from,
                                                   unsigned long long* first_nonfinite) {
  double values[kValuesPerThread];
  bool kept[kValuesPerThread];
  double count = 0, sum = 0;
  MomentPartial p;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (unsigned k = 0; k < kValuesPerThread; ++k) {
    kept[k] = false;
    values[k] = 0;
    if (from + k >= tile.count) continue;
    const uint64_t index = tile.first + (from + k) * tile.stride;
    const double v = AsDouble(x[index]);
    if (!IsFinite(v)) {
      AtomicMinIndex(first_nonfinite, index);
      continue;
    }
    kept[k] = true;
    values[k] = v;
    count += 1;
    sum += v;
    if (count == 1 || v < p.min) p.min = v;
    if (count == 1 || v > p.max) p.max = v;
  }
  if (count == 0) return MomentPartial{};
  const double shift = sum / count;
  double offset_sum = 0, squares = 0;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (unsigned k = 0; k < kValuesPerThread; ++k) {
    if (!kept[k]) continue;
    const double d = values[k] - shift;
    offset_sum += d;
    squares += d * d;
  }
  p.count = count;
  const DoubleDouble offset = DoubleDouble{offset_sum, 0.0} / count;
  p.mean = DoubleDouble{shift, 0.0} + offset;
  p.m2 = DoubleDouble{squares, 0.0} - DoubleDouble{offset_sum, 0.0} * offset;
  if (p.m2.hi < 0) p.m2 = {};
  return p;
}

// A thread's whole tile: register batches merged in order.
template <typename In>
NORMD_HD inline MomentPartial ThreadMoments(const In* x, const ThreadTile& tile,
                                            unsigned long long* first_nonfinite) {
  MomentPartial acc;
  for (uint64_t from = 0; from < tile.count; from += kValuesPerThread) {
    MergePartial(RegisterBatchMoments(x, tile, from, first_nonfinite), acc);
  }
  return acc;
}

// Exact integer totals of uint8 values.
struct U8Partial {
  unsigned long long count = 0;
  unsigned long long sum = 0;
  unsigned long long sum_squares = 0;
  unsigned int min = 255;
  unsigned int max = 0;
};

NORMD_HD inline void MergePartial(const U8Partial& other, U8Partial& into) {
  into.count += other.count;
  into.sum += other.sum;
  into.sum_squares += other.sum_squares;
  into.min = other.min < into.min ? other.min : into.min;
  into.max = other.max > into.max ? other.max : into.max;
}

NORMD_HD inline U8Partial ThreadMoments(const uint8_t* x, const ThreadTile& tile,
                                        unsigned long long*) {
  U8Partial p;
  for (uint64_t k = 0; k < tile.count; ++k) {
    const unsigned v = x[tile.first + k * tile.stride];
    p.count += 1;
    p.sum += v;
    p.sum_squares += v * v;
    p.min = v < p.min ? v : p.min;
    p.max = v > p.max ? v : p.max;
  }
  return p;
}

// The partial a tile of In values reduces to.
template <typename In>
using PartialOf = std::conditional_t<std::is_same_v<In, uint8_t>, U8Partial, MomentPartial>;

// Integer totals as moments, as core/u8_batch_moments.cc's MomentsOfTotals.
NORMD_HD inline MomentPartial MomentsOf(const U8Partial& t) {
  MomentPartial m;
  if (t.count == 0) return m;
  m.count = static_cast<double>(t.count);
  const IntegerMoments exact = MomentsOfIntegerSums(t.count, t.sum, t.sum_squares);
  m.mean = exact.mean;
  m.m2 = exact.m2;
  m.min = t.min;
  m.max = t.max;
  return m;
}
NORMD_HD inline MomentPartial MomentsOf(const MomentPartial& p) { return p; }

// One level of the fixed merge tree over the `lanes` partials of each of `width`
// groups, laid out partials[group + lane * width]: lane l < stride takes lane
// l + stride's partial. Levels run for stride = TreeTop(lanes), then halving to 1;
// `thread` < width * lanes names the (group, lane) that merges.
NORMD_HD inline uint64_t TreeTop(uint64_t lanes) {
  uint64_t top = 1;
  while (top < lanes) top <<= 1;
  return top >> 1;
}

template <typename Partial>
NORMD_HD inline void TreeStep(Partial* partials, uint64_t width, uint64_t lanes, uint64_t stride,
                              uint64_t thread) {
  const uint64_t group = thread % width;
  const uint64_t lane = thread / width;
  if (lane < stride && lane + stride < lanes) {
    MergePartial(partials[group + (lane + stride) * width], partials[group + lane * width]);
  }
}

// Thread `thread` of a segment's merge (kMergeThreads threads): the slots it folds in
// order before the tree.
inline constexpr unsigned kMergeThreads = 256;

template <typename Partial>
NORMD_HD inline Partial MergeSlotsOfThread(const Partial* slots, uint64_t slots_per_segment,
                                           uint64_t segment, uint64_t thread) {
  Partial acc;
  for (uint64_t s = thread; s < slots_per_segment; s += kMergeThreads) {
    MergePartial(slots[segment * slots_per_segment + s], acc);
  }
  return acc;
}

// The factors of a batch-statistics normalisation for unit u's channel c from its
// segment's moments, as core/batch_statistics.h and the CPU's folds: mean, and
// gamma / sqrt(biased variance + eps); NaN for a segment that held a non-finite value
// (fewer values than `expected`).
struct FoldedFactor {
  double center;
  double scale;
  double shift;
};

NORMD_HD inline FoldedFactor FoldBatchStatistics(const MomentPartial& m, double expected,
                                                 double eps, const double* gamma,
                                                 const double* beta, uint64_t channel) {
  double mean, inverse_std;
  if (m.count != expected || m.count == 0) {
    mean = inverse_std = QuietNaN();
  } else {
    mean = m.mean.value();
    const double variance = (m.m2 / m.count).value();
#ifdef __CUDA_ARCH__
    inverse_std = __drcp_rn(__dsqrt_rn(__dadd_rn(variance, eps)));
#else
    inverse_std = 1.0 / std::sqrt(variance + eps);
#endif
  }
  return {mean, (gamma == nullptr ? 1.0 : gamma[channel]) * inverse_std,
          beta == nullptr ? 0.0 : beta[channel]};
}

}  // namespace normd::cuda_kernels

#endif  // NORMD_CORE_KERNELS_CUDA_SEGMENT_MOMENTS_H_
