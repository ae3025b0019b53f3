// Bucket indices of normd's quantile sketch (core/quantile_sketch.h) for raw
// little-endian arrays: for d = x - center in float64 with magnitude bits m (d's bits
// without the sign), the index at `resolution` mantissa bits is m >> (52 - resolution)
// for d >= 0 (and -0), and -1 - ((m - 1) >> (52 - resolution)) for d < 0. Buckets are
// therefore binary prefixes of the bits: each spans a relative width of at most
// 2^-resolution, every bucket is a half-open interval [low, high) of d (the "- 1"
// makes the negative ones so too), indices order as the values do, and shifting an
// index right by one (arithmetically) gives its bucket one resolution coarser, so
// sketches at different resolutions merge exactly.
//
// A non-finite d (of either sign) gets an index of at least 2047 << resolution (its
// exponent is all ones); callers drop those (SketchIndexIsFinite), as the fit skips
// them.
#ifndef NORMD_CORE_KERNELS_SKETCH_INDEX_H_
#define NORMD_CORE_KERNELS_SKETCH_INDEX_H_

#include <bit>
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace normd {

// Resolutions the kernels index at: 2^-(r+1) relative accuracy, 2^-11 to 1/2.
inline constexpr int kMaxSketchIndexResolution = 10;

inline int32_t SketchIndexOf(double d, int resolution) {
  const uint64_t bits = std::bit_cast<uint64_t>(d);
  const uint64_t abs = bits & 0x7fffffffffffffffull;
  // 1 for a negative, non-zero, finite d; branch-free as in the SIMD body.
  const uint64_t negative =
      (bits >> 63) & ((abs + 0x7fffffffffffffffull) >> 63) & ((abs + 0x8010000000000000ull) >> 63);
  const uint64_t magnitude = (abs - negative) >> (52 - resolution);
  return static_cast<int32_t>(static_cast<uint32_t>(magnitude ^ (0 - negative)));
}

inline bool SketchIndexIsFinite(int32_t index, int resolution) {
  const int32_t magnitude = index < 0 ? -1 - index : index;
  return magnitude < (int32_t{2047} << resolution);
}

// index[i] = SketchIndexOf(x[i] - center, resolution) for i < n; 0 <= resolution <=
// kMaxSketchIndexResolution.
void SketchIndexRun(DType in, const std::byte* x, size_t n, double center, int resolution,
                    int32_t* index);

// Per-column centers: index[r * row_len + j] = SketchIndexOf(x[...] - center[j], resolution).
void SketchIndexRows(DType in, const std::byte* x, size_t rows, size_t row_len,
                     const double* center, int resolution, int32_t* index);

// A counter slot per value, for counting into a dense window of magnitudes
// [low, low + window) per sign: with m the index's magnitude (index, or -1 - index
// for a negative one), slot = m - low for d >= 0 and window + m - low for d < 0 when
// low <= m < low + window, else 2 * window (kept apart, counted by its index).
inline uint32_t SketchSlotOf(int32_t index, int32_t low, uint32_t window) {
  const uint32_t negative = static_cast<uint32_t>(index) >> 31;
  const uint32_t offset = static_cast<uint32_t>((index ^ (index >> 31)) - low);
  return offset < window ? negative * window + offset : 2 * window;
}

// slot[i] = SketchSlotOf(SketchIndexOf(x[i] - center, resolution), low, window), and
// the positions i of the spill slot (2 * window), rising, in spilled[0, count) (room
// for n); returns count.
size_t SketchSlotRun(DType in, const std::byte* x, size_t n, double center, int resolution,
                     int32_t low, uint32_t window, uint32_t* slot, uint32_t* spilled);

// Per-column windows, for counting a rows x row_len tile of several channels at once:
// slot[r * row_len + j] = base[j] + SketchSlotOf(SketchIndexOf(x[...] - center[j],
// resolution), low[j], window), so a column's slots land in its channel's own table at
// base[j]; a value outside its window gets base[j] + 2 * window, and its position goes
// to spilled (rising, room for rows * row_len). Returns how many spilled.
size_t SketchSlotRows(DType in, const std::byte* x, size_t rows, size_t row_len,
                      const double* center, int resolution, const uint32_t* low,
                      const uint32_t* base, uint32_t window, uint32_t* slot, uint32_t* spilled);

// Plain scalar references with the same contracts.
size_t SketchSlotRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                               const double* center, int resolution, const uint32_t* low,
                               const uint32_t* base, uint32_t window, uint32_t* slot,
                               uint32_t* spilled);
size_t SketchSlotRunReference(DType in, const std::byte* x, size_t n, double center, int resolution,
                              int32_t low, uint32_t window, uint32_t* slot, uint32_t* spilled);
void SketchIndexRunReference(DType in, const std::byte* x, size_t n, double center, int resolution,
                             int32_t* index);
void SketchIndexRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                              const double* center, int resolution, int32_t* index);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_SKETCH_INDEX_H_
