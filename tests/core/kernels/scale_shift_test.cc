// Every SIMD target of the ScaleShift kernels against the scalar reference: the
// same bits, for every input and output dtype, tails, odd row lengths, unaligned
// pointers, special values and the streaming-store path.
#include "core/kernels/scale_shift.h"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "tests/support/kernel_input.h"
#include "tests/support/simd_targets.h"

namespace normd {
namespace {

using testing::ForEachSimdTarget;
using testing::RandomInput;
using testing::kKernelInputs;
using testing::kKernelOutputs;

struct Factors {
  std::vector<double> center, scale, shift;
};

Factors RandomFactors(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> center(-100.0, 100.0), scale(-3.0, 3.0);
  Factors f;
  for (size_t j = 0; j < n; ++j) {
    f.center.push_back(center(rng));
    f.scale.push_back(j % 7 == 3 ? 1.0 / 255.0 : scale(rng));
    f.shift.push_back(center(rng) / 10);
  }
  return f;
}

// Where two outputs first differ, as element index and bit patterns.
std::string FirstDifference(const std::vector<std::byte>& got, const std::vector<std::byte>& want,
                            size_t element_size) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    std::string text = "first difference in byte " + std::to_string(i) + ": got";
    const size_t start = i - i % element_size;
    for (const auto* bytes : {&got, &want}) {
      char hex[8];
      for (size_t b = element_size; b-- > 0;) {
        std::snprintf(hex, sizeof(hex), "%02x", static_cast<unsigned>((*bytes)[start + b]));
        text += hex;
      }
      text += bytes == &got ? " want " : "";
    }
    return text;
  }
  return "no difference";
}

std::string Describe(DType in, DType out, size_t n, size_t x_offset, size_t y_offset) {
  return std::string(DTypeName(in)) + " -> " + std::string(DTypeName(out)) +
         ", n=" + std::to_string(n) + ", x+" + std::to_string(x_offset) + ", y+" +
         std::to_string(y_offset);
}

TEST(ScaleShiftKernelTest, RunMatchesReferenceBitForBitOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(1);
    for (DType in : kKernelInputs) {
      for (DType out : kKernelOutputs) {
        for (size_t n : {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257, 1000}) {
          const size_t x_offset = rng() % 8, y_offset = rng() % 8;  // unaligned on purpose
          const std::vector<std::byte> input = RandomInput(in, n + 8, rng);
          const Factors f = RandomFactors(1, rng);
          const size_t out_bytes = n * ElementSize(out);
          std::vector<std::byte> got(out_bytes + 16, std::byte{0xAB});
          std::vector<std::byte> want(out_bytes + 16, std::byte{0xAB});
          const std::byte* x = input.data() + x_offset * ElementSize(in);
          const bool streaming = n % 2 == 1;
          ScaleShiftRun(in, out, x, n, f.center[0], f.scale[0], f.shift[0], got.data() + y_offset,
                        streaming);
          ScaleShiftRunReference(in, out, x, n, f.center[0], f.scale[0], f.shift[0],
                                 want.data() + y_offset);
          ASSERT_TRUE(got == want) << Describe(in, out, n, x_offset, y_offset) << ": "
                                   << FirstDifference(got, want, ElementSize(out));
        }
      }
    }
  });
}

TEST(ScaleShiftKernelTest, RowsMatchReferenceBitForBitOnEveryTarget) {
  ForEachSimdTarget([](int64_t) {
    std::mt19937_64 rng(2);
    for (DType in : kKernelInputs) {
      for (DType out : kKernelOutputs) {
        for (size_t row_len : {1, 3, 8, 13, 16, 64, 67, 288}) {
          const size_t rows = 1 + rng() % 9;
          const size_t n = rows * row_len;
          const size_t x_offset = rng() % 4, y_offset = rng() % 4;
          const std::vector<std::byte> input = RandomInput(in, n + 4, rng);
          const Factors f = RandomFactors(row_len, rng);
          std::vector<std::byte> got((n + 4) * ElementSize(out), std::byte{0xCD});
          std::vector<std::byte> want = got;
          const std::byte* x = input.data() + x_offset * ElementSize(in);
          ScaleShiftRows(in, out, x, rows, row_len, f.center.data(), f.scale.data(), f.shift.data(),
                         got.data() + y_offset * ElementSize(out),
                         /*streaming=*/row_len % 2 == 0);
          ScaleShiftRowsReference(in, out, x, rows, row_len, f.center.data(), f.scale.data(),
                                  f.shift.data(), want.data() + y_offset * ElementSize(out));
          ASSERT_TRUE(got == want)
              << Describe(in, out, n, x_offset, y_offset) << ", row_len=" << row_len << ": "
              << FirstDifference(got, want, ElementSize(out));
        }
      }
    }
  });
}

TEST(ScaleShiftKernelTest, DispatchReportsTheBestTarget) {
  const std::string name = KernelTargetName();
  EXPECT_EQ(name, hwy::TargetName(hwy::SupportedAndGeneratedTargets().front()));
}

}  // namespace
}  // namespace normd
