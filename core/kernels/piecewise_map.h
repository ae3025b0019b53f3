// Microkernels for a piecewise-linear map of one channel, a searched table of affine
// pieces: segment k covers [start[k], start[k + 1]) and maps x to
// (x - center[k]) * scale[k] + shift[k] in float64 (a constant piece, scale 0, gives
// shift exactly, even for infinite x), clamped to [low, high] and rounded once to the
// output type, as ScaleShift rounds; NaN stays NaN. Every SIMD target gives the
// scalar reference's bits.
//
// The search: a value's slot, from its float64 bits like a sketch index
// (core/kernels/sketch_index.h) about key_center at key_resolution, compressed so
// that magnitudes below key_floor share the middle slot and those past the span the
// end slots, names the first segment that can hold it; at most `refine` steps forward
// (x >= start[k + 1]) find the one that does. Tables of at most 16 pieces skip the
// search: a chain of compares against every start picks the same piece without a
// gather. Tables come from core/piecewise_map.h.
#ifndef NORMD_CORE_KERNELS_PIECEWISE_MAP_H_
#define NORMD_CORE_KERNELS_PIECEWISE_MAP_H_

#include <bit>
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace normd {

struct PiecewiseTable {
  size_t segments = 0;             // K >= 1
  const double* start = nullptr;   // K + 1: start[0] = -inf, ascending, start[K] = NaN
  const double* center = nullptr;  // K of each
  const double* scale = nullptr;
  const double* shift = nullptr;
  double low = 0;  // outputs clamped to [low, high]
  double high = 0;
  double key_center = 0;
  int key_resolution = 0;                  // 0..10
  int64_t key_floor = 0;                   // magnitudes below it share the middle slot
  int64_t key_span = 0;                    // S: slots 0 .. 2S + 2, the middle one S + 1
  const int64_t* first_segment = nullptr;  // 2S + 3 entries
  int refine = 0;
};

// The slot magnitude of d at `resolution`, and whether d is negative (nonzero, sign
// set): the same integer arithmetic as the SIMD body.
inline int64_t PiecewiseMagnitudeOf(double d, int resolution, uint64_t* negative_out = nullptr) {
  const uint64_t bits = std::bit_cast<uint64_t>(d);
  const uint64_t abs = bits & 0x7fffffffffffffffull;
  const uint64_t negative = (bits >> 63) & ((abs + 0x7fffffffffffffffull) >> 63);
  if (negative_out != nullptr) *negative_out = negative;
  return static_cast<int64_t>((abs - negative) >> (52 - resolution));
}

// The slot of x.
inline int64_t PiecewiseSlotOf(double x, const PiecewiseTable& t) {
  uint64_t negative = 0;
  const int64_t magnitude = PiecewiseMagnitudeOf(x - t.key_center, t.key_resolution, &negative);
  int64_t c = magnitude - t.key_floor;
  c = c < -1 ? -1 : (c > t.key_span ? t.key_span : c);
  const auto n = static_cast<int64_t>(negative);
  return t.key_span + 1 + (((1 + c) ^ -n) + n);
}

// The piece's value before clamping and rounding.
inline double PiecewiseValue(double x, const PiecewiseTable& t, size_t k) {
  if (t.scale[k] == 0 && x == x) return t.shift[k];
  return (x - t.center[k]) * t.scale[k] + t.shift[k];
}

// y[i] = Out(clamp(f(x[i]))) for i < n; out is float32, float64, float16 or bfloat16.
void PiecewiseMapRun(DType in, DType out, const std::byte* x, size_t n, const PiecewiseTable& table,
                     std::byte* y);

// The scalar reference: a binary search of `start` for each value.
void PiecewiseMapRunReference(DType in, DType out, const std::byte* x, size_t n,
                              const PiecewiseTable& table, std::byte* y);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_PIECEWISE_MAP_H_
