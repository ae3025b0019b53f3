// Random kernel inputs of every dtype, for tests of SIMD targets against references.
#ifndef NORMD_TESTS_SUPPORT_KERNEL_INPUT_H_
#define NORMD_TESTS_SUPPORT_KERNEL_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dataset_statistics.h"
#include "core/dtype.h"

namespace normd::testing {

// Every dtype a kernel reads, and every dtype normalisation writes.
inline constexpr DType kKernelInputs[] = {DType::kUInt8, DType::kFloat16, DType::kBFloat16,
                                          DType::kFloat32, DType::kFloat64};
inline constexpr DType kKernelOutputs[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                                           DType::kBFloat16};

// Random bytes of `dtype` values: mostly moderate numbers, with zeros, extremes,
// subnormals, infinities and NaNs mixed in.
inline std::vector<std::byte> RandomInput(DType dtype, size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> bytes(n * ElementSize(dtype));
  std::uniform_real_distribution<double> moderate(-300.0, 300.0);
  std::uniform_int_distribution<int> pick(0, 19);
  for (size_t i = 0; i < n; ++i) {
    const int kind = pick(rng);
    switch (dtype) {
      case DType::kUInt8:
        StoreElement<uint8_t>(bytes.data(), i, static_cast<uint8_t>(rng()));
        break;
      case DType::kFloat16:
      case DType::kBFloat16: {
        // Any bit pattern, or a moderate value's upper bits.
        uint16_t bits = static_cast<uint16_t>(rng());
        if (kind < 12) {
          const float f = static_cast<float>(moderate(rng));
          uint32_t u;
          std::memcpy(&u, &f, 4);
          bits = dtype == DType::kBFloat16 ? static_cast<uint16_t>(u >> 16)
                                           : static_cast<uint16_t>(rng() & 0x5bff);
        }
        StoreElement<uint16_t>(bytes.data(), i, bits);
        break;
      }
      case DType::kFloat32: {
        float f = static_cast<float>(moderate(rng));
        if (kind == 0) f = std::numeric_limits<float>::infinity();
        if (kind == 1) f = std::numeric_limits<float>::quiet_NaN();
        if (kind == 2) f = std::numeric_limits<float>::denorm_min() * 77;
        if (kind == 3) f = std::numeric_limits<float>::max();
        if (kind == 4) f = -0.0f;
        StoreElement<float>(bytes.data(), i, f);
        break;
      }
      case DType::kFloat64: {
        double d = moderate(rng) * 1e3;
        if (kind == 0) d = -std::numeric_limits<double>::infinity();
        if (kind == 1) d = std::numeric_limits<double>::quiet_NaN();
        if (kind == 2) d = 1e300;
        if (kind == 3) d = 3e-310;
        if (kind == 4) d = 65519.99;  // rounds to the float16 maximum or to infinity
        StoreElement<double>(bytes.data(), i, d);
        break;
      }
    }
  }
  return bytes;
}

// Made-up statistics of `channels` channels (a different mean, variance and range for
// each) for folding frozen normalisers in kernel tests.
inline ReferenceStatistics SyntheticStatistics(int64_t channels) {
  ReferenceStatistics stats;
  for (int64_t c = 0; c < channels; ++c) {
    stats.count.push_back(100);
    stats.mean.push_back(0.37 * static_cast<double>(c) - 1.1);
    stats.variance.push_back(0.5 + 1.3 * static_cast<double>(c));
    stats.min.push_back(-7.0 - static_cast<double>(c));
    stats.max.push_back(13.0 + 0.5 * static_cast<double>(c));
  }
  return stats;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_KERNEL_INPUT_H_
