#include "core/kernels/sketch_index.h"

namespace normd {

void SketchIndexRunReference(DType in, const std::byte* x, size_t n, double center, int resolution,
                             int32_t* index) {
  SketchIndexRowsReference(in, x, n, 1, &center, resolution, index);
}

size_t SketchSlotRunReference(DType in, const std::byte* x, size_t n, double center, int resolution,
                              int32_t low, uint32_t window, uint32_t* slot, uint32_t* spilled) {
  size_t count = 0;
  VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      const int32_t index = SketchIndexOf(ToDouble(LoadElement<T>(x, i)) - center, resolution);
      slot[i] = SketchSlotOf(index, low, window);
      if (slot[i] == 2 * window) spilled[count++] = static_cast<uint32_t>(i);
    }
  });
  return count;
}

size_t SketchSlotRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                               const double* center, int resolution, const uint32_t* low,
                               const uint32_t* base, uint32_t window, uint32_t* slot,
                               uint32_t* spilled) {
  size_t count = 0;
  VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    for (size_t r = 0, i = 0; r < rows; ++r) {
      for (size_t j = 0; j < row_len; ++j, ++i) {
        const int32_t index = SketchIndexOf(ToDouble(LoadElement<T>(x, i)) - center[j], resolution);
        const uint32_t local = SketchSlotOf(index, static_cast<int32_t>(low[j]), window);
        slot[i] = base[j] + local;
        if (local == 2 * window) spilled[count++] = static_cast<uint32_t>(i);
      }
    }
  });
  return count;
}

void SketchIndexRowsReference(DType in, const std::byte* x, size_t rows, size_t row_len,
                              const double* center, int resolution, int32_t* index) {
  VisitDType(in, [&](auto tag) {
    using T = decltype(tag);
    for (size_t r = 0, i = 0; r < rows; ++r) {
      for (size_t j = 0; j < row_len; ++j, ++i) {
        index[i] = SketchIndexOf(ToDouble(LoadElement<T>(x, i)) - center[j], resolution);
      }
    }
  });
}

}  // namespace normd
