// The CUDA scale-shift map's work per thread, for the device and the host alike:
// y[i] = Out((x[i] - center[f]) * scale[f] + shift[f]), clamped after rounding where
// ranges are given, with f the factor of element i: per channel, and per sample and
// channel for the per-sample families. The kernel (scale_shift_map.cu) gives each
// thread spans of kSpan consecutive elements; the host emulation test walks the same
// spans through MapSpan, so the index arithmetic it checks is the kernel's.
#ifndef NORMD_CORE_KERNELS_CUDA_SCALE_SHIFT_MAP_H_
#define NORMD_CORE_KERNELS_CUDA_SCALE_SHIFT_MAP_H_

#include <cstdint>

#include "core/kernels/cuda/device_element.h"
#include "core/kernels/host_device.h"

namespace normd::cuda_kernels {

// Element i's factor is (i / unit_elements) * channels + (i / inner) % channels: one
// unit (unit_elements == elements) for the frozen schemes and batch norm.
struct MapGeometry {
  uint64_t elements = 0;
  uint64_t unit_elements = 0;
  uint64_t channels = 0;
  uint64_t inner = 0;
};

// Device (or, in the emulation, host) pointers. `low`/`high` are null without clamps;
// else the ranges already rounded to Out, as ApplyScaleShift rounds them.
struct MapFactors {
  const double* center = nullptr;
  const double* scale = nullptr;
  const double* shift = nullptr;
  const double* low = nullptr;
  const double* high = nullptr;
};

inline constexpr uint64_t kSpan = 8;          // consecutive elements per thread and step
inline constexpr unsigned kMapThreads = 256;  // threads per block

// The launch: enough blocks to fill an H200 (132 multiprocessors) several times over;
// each thread takes spans block * kMapThreads + thread, then every blocks *
// kMapThreads spans after it.
inline uint64_t MapBlocks(uint64_t elements) {
  const uint64_t spans = (elements + kSpan - 1) / kSpan;
  const uint64_t wanted = (spans + kMapThreads - 1) / kMapThreads;
  constexpr uint64_t kMaxBlocks = 132 * 32;
  return wanted == 0 ? 1 : (wanted < kMaxBlocks ? wanted : kMaxBlocks);
}

// Elements [first, min(first + kSpan, elements)).
// Elements per chunk when a host tensor crosses to the device in pieces (--device):
// whole periods of the channel pattern (channels * inner; 1 for one channel), so
// every chunk starts at channel 0 and maps with the whole tensor's geometry, of about
// `chunk_bytes` of input and at least one period.
inline uint64_t ChunkElements(uint64_t channels, uint64_t inner, uint64_t element_size,
                              uint64_t chunk_bytes) {
  const uint64_t period = channels == 1 ? 1 : channels * inner;
  const uint64_t periods = chunk_bytes / (period * element_size);
  return (periods == 0 ? 1 : periods) * period;
}

// kSpan elements as one value, so that a thread moves its span in 16-byte (8 for
// uint8) accesses, whole sectors across a warp, and the compiler keeps it in registers.
template <typename T>
struct alignas(kSpan * sizeof(T) < 16 ? kSpan * sizeof(T) : 16) Span {
  T v[kSpan];
};

template <typename T>
NORMD_HD inline bool SpanAligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(Span<T>) == 0;
}

// Elements [first, min(first + kSpan, elements)): read at once, mapped, written at once.
template <typename In, typename Out>
NORMD_HD inline void MapSpan(const In* x, Out* y, const MapGeometry& g, const MapFactors& f,
                             uint64_t first) {
  const uint64_t count = first + kSpan < g.elements ? kSpan : g.elements - first;
  Span<In> in;
  Span<Out> out;
  if (count == kSpan && SpanAligned(x + first)) {
    in = *reinterpret_cast<const Span<In>*>(x + first);
  } else {  // a tail, or misaligned: element by element, each index a constant
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (uint64_t k = 0; k < kSpan; ++k) {
      if (k < count) in.v[k] = x[first + k];
    }
  }
  const uint64_t unit = first / g.unit_elements;
  const uint64_t within = first % g.unit_elements;
  uint64_t position = within % g.inner;
  uint64_t channel = within / g.inner % g.channels;
  uint64_t unit_base = unit * g.channels;
  uint64_t left_in_unit = g.unit_elements - within;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (uint64_t k = 0; k < kSpan; ++k) {
    if (k >= count) break;
    const uint64_t factor = unit_base + channel;
    Out value = Narrow<Out>(
        ScaleShiftMap(AsDouble(in.v[k]), f.center[factor], f.scale[factor], f.shift[factor]));
    if (f.low != nullptr) {  // NaN compares false both ways and stays
      const double v = AsDouble(value);
      if (v < f.low[factor]) value = Narrow<Out>(f.low[factor]);
      if (v > f.high[factor]) value = Narrow<Out>(f.high[factor]);
    }
    out.v[k] = value;
    if (--left_in_unit == 0) {
      left_in_unit = g.unit_elements;
      unit_base += g.channels;
      position = channel = 0;
    } else if (++position == g.inner) {
      position = 0;
      if (++channel == g.channels) channel = 0;
    }
  }
  if (count == kSpan && SpanAligned(y + first)) {
    *reinterpret_cast<Span<Out>*>(y + first) = out;
  } else {
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (uint64_t k = 0; k < kSpan; ++k) {
      if (k < count) y[first + k] = out.v[k];
    }
  }
}

}  // namespace normd::cuda_kernels

#endif  // NORMD_CORE_KERNELS_CUDA_SCALE_SHIFT_MAP_H_
