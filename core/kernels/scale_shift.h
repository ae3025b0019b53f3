// Microkernels for y = (x - center) * scale + shift on raw, possibly unaligned,
// little-endian arrays. Input: any DType; output: float32, float64, float16 or
// bfloat16. Arithmetic is float64 with one final rounding, and every SIMD target
// produces the same bits as the scalar reference.
//
// The SIMD versions pick the best instruction set of this CPU at run time
// (Highway dynamic dispatch). `streaming` asks for non-temporal stores, for
// outputs too large to stay in cache; the caller must not read `y` back on
// another thread without its own synchronisation afterwards.
#ifndef NORMD_CORE_KERNELS_SCALE_SHIFT_H_
#define NORMD_CORE_KERNELS_SCALE_SHIFT_H_

#include <cstddef>

#include "core/dtype.h"

namespace normd {

// Constant factors: y[i] = f(x[i]) for i < n.
void ScaleShiftRun(DType in, DType out, const std::byte* x, size_t n, double center, double scale,
                   double shift, std::byte* y, bool streaming);

// Per-column factors: y[r * row_len + j] = f_j(x[r * row_len + j]) with
// f_j using center[j], scale[j], shift[j].
void ScaleShiftRows(DType in, DType out, const std::byte* x, size_t rows, size_t row_len,
                    const double* center, const double* scale, const double* shift, std::byte* y,
                    bool streaming);

// Name of the SIMD target the dispatched kernels run on ("AVX3", "AVX2", ...).
const char* KernelTargetName();

// Plain scalar references with the same contracts.
void ScaleShiftRunReference(DType in, DType out, const std::byte* x, size_t n, double center,
                            double scale, double shift, std::byte* y);
void ScaleShiftRowsReference(DType in, DType out, const std::byte* x, size_t rows, size_t row_len,
                             const double* center, const double* scale, const double* shift,
                             std::byte* y);

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_SCALE_SHIFT_H_
