// The CUDA kernels' device code, run on the host over the launchers' own grids
// (tests/support/cuda_emulation.h): conversions, the scale-shift map's indexing and
// rounding against the CPU's kernels bit for bit, the fit's tiling and merges against
// exact rational arithmetic, and the batch-statistics folds against the CPU. Runs on
// every build, with or without nvcc or a GPU; tests/core/cuda/device_test.cc runs the same
// kernels on a GPU and compares them with this emulation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/batch_norm_training.h"
#include "core/frozen_normalizer.h"
#include "core/kernels/cuda/device_element.h"
#include "core/kernels/narrow_float.h"
#include "core/layout.h"
#include "core/per_sample_norm.h"
#include "core/u8_batch_moments.h"
#include "tests/support/cuda_emulation.h"
#include "tests/support/exact_moments.h"
#include "tests/support/kernel_input.h"

namespace normd {
namespace {

using cuda_kernels::MomentPartial;
using cuda_kernels::SegmentGeometry;
using testing::ComputeExactMoments;
using testing::EmulateSegmentMoments;
using testing::MeanError;
using testing::RelativeError;

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

TEST(CudaElementTest, SixteenBitInputsWidenAsTheCpuDoes) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto b = static_cast<uint16_t>(bits);
    EXPECT_EQ(Bits(cuda_kernels::AsDouble(Float16{b})), Bits(ToDouble(Float16{b}))) << bits;
    EXPECT_EQ(Bits(cuda_kernels::AsDouble(BFloat16{b})), Bits(ToDouble(BFloat16{b}))) << bits;
  }
}

// Every double near the 16-bit formats' ranges, ties and boundaries included, rounds
// to the bits of the CPU's reference (which is written with frexp/nearbyint).
TEST(CudaElementTest, RoundingToSixteenBitsMatchesTheReference) {
  std::vector<double> values = {0.0,
                                -0.0,
                                65504.0,
                                65519.99,
                                65520.0,
                                -65520.0,
                                0x1p-24,
                                0x1p-25,
                                0x1.0000000000001p-25,
                                0x1p-26,
                                0x1.8p-24,
                                0x1p-14,
                                0x1.ffcp-15,
                                1e-300,
                                5e-324,
                                1e300,
                                -1e300,
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::quiet_NaN(),
                                0x1p-133,
                                0x1p-134,
                                0x1.8p-133,
                                0x1.fefp127,
                                0x1.ff8p127,
                                3.3895313892515355e38};
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> exponent(-150, 140);
  for (int i = 0; i < 200000; ++i) {
    // Random mantissas, and exact ties between neighbours of either format.
    const double m = std::ldexp(static_cast<double>(rng() >> 11), -53) + 1.0;
    double v = std::ldexp(m, exponent(rng));
    if (i % 3 == 0) v = std::ldexp(std::floor(std::ldexp(m, 10)) + 0.5, exponent(rng) - 10);
    if (i % 3 == 1) v = std::ldexp(std::floor(std::ldexp(m, 7)) + 0.5, exponent(rng) - 7);
    values.push_back(rng() & 1 ? v : -v);
  }
  for (double v : values) {
    EXPECT_EQ(cuda_kernels::Narrow<Float16>(v).bits, DoubleToFloat16Bits(v)) << v;
    EXPECT_EQ(cuda_kernels::Narrow<BFloat16>(v).bits, DoubleToBFloat16Bits(v)) << v;
  }
}

struct LayoutCase {
  std::optional<Layout> layout;
  std::vector<int64_t> shape;
};

std::vector<LayoutCase> MapCases() {
  return {{Layout::kNC, {33, 7}},        {Layout::kNC, {3, 1}},
          {Layout::kNCHW, {5, 3, 4, 6}}, {Layout::kNCHW, {2, 3, 70, 3}},
          {Layout::kNHWC, {5, 4, 6, 3}}, {Layout::kNHWC, {2, 9, 11, 16}},
          {std::nullopt, {4, 1000}},     {Layout::kNCHW, {1, 2, 300, 300}}};
}

int64_t Channels(const LayoutCase& c) {
  if (!c.layout.has_value()) return 1;
  return *c.layout == Layout::kNHWC ? c.shape.back() : c.shape[1];
}

std::vector<FrozenScheme> AffineSchemes(int64_t channels) {
  std::vector<double> gamma, beta;
  for (int64_t c = 0; c < channels; ++c) {
    gamma.push_back(0.5 + 0.25 * static_cast<double>(c));
    beta.push_back(-0.1 * static_cast<double>(c));
  }
  return {ZScoreScheme{}, MinMaxScheme{-1.0, 1.0, /*clip=*/true}, MinMaxScheme{},
          FixedScaleScheme{1.0 / 255.0, -0.5}, BatchNormScheme{gamma, beta, 1e-3}};
}

// The map over the kernel's own grid gives the CPU's ApplyScaleShift bit for bit, for
// every frozen affine scheme, input and output dtype and layout, clamps included.
TEST(CudaEmulationTest, FrozenMapIsTheCpusBitForBit) {
  std::mt19937_64 rng(3);
  for (const LayoutCase& c : MapCases()) {
    const int64_t channels = Channels(c);
    const ReferenceStatistics stats = testing::SyntheticStatistics(channels);
    int64_t elements = 1;
    for (int64_t d : c.shape) elements *= d;
    for (const FrozenScheme& scheme : AffineSchemes(channels)) {
      absl::StatusOr<FrozenNormalizer> normalizer =
          FrozenNormalizer::Create(scheme, c.layout, channels, stats);
      ASSERT_TRUE(normalizer.ok()) << normalizer.status();
      for (DType in : testing::kKernelInputs) {
        const std::vector<std::byte> x = testing::RandomInput(in, elements, rng);
        const absl::StatusOr<ValidatedTensor> tensor = ValidateTensor(TensorView{in, c.shape, x});
        ASSERT_TRUE(tensor.ok());
        const absl::StatusOr<ChannelGeometry> geometry = normalizer->GeometryOf(*tensor);
        ASSERT_TRUE(geometry.ok());
        for (DType out : testing::kKernelOutputs) {
          const size_t bytes = static_cast<size_t>(elements) * ElementSize(out);
          std::vector<std::byte> cpu(bytes), emulated(bytes, std::byte{0x5a});
          ASSERT_TRUE(normalizer->Apply(*tensor, *ValidateOutputDType(out), cpu).ok());
          const ScaleShift& f = normalizer->factors();
          const std::vector<ScaleShift::Range> ranges = RoundedClampRanges(out, f.clamp);
          std::vector<double> low, high;
          for (const ScaleShift::Range& r : ranges) {
            low.push_back(r.low);
            high.push_back(r.high);
          }
          const auto n = static_cast<uint64_t>(elements);
          testing::EmulateScaleShiftMap(
              in, out, x.data(), emulated.data(),
              {n, n, static_cast<uint64_t>(channels), static_cast<uint64_t>(geometry->inner)},
              {f.center.data(), f.scale.data(), f.shift.data(),
               ranges.empty() ? nullptr : low.data(), ranges.empty() ? nullptr : high.data()});
          ASSERT_EQ(cpu, emulated) << "shape " << c.shape.size() << "-d, in " << DTypeName(in)
                                   << ", out " << DTypeName(out);
        }
      }
    }
  }
}

// The offload's chunks (--device: a host tensor crossing in pieces, each mapped on its
// own) give the whole tensor's bits: chunk boundaries fall on whole channel periods.
TEST(CudaEmulationTest, ChunkedMapIsTheWholeMap) {
  std::mt19937_64 rng(4);
  for (const LayoutCase& c : MapCases()) {
    const int64_t channels = Channels(c);
    const FrozenNormalizer normalizer = *FrozenNormalizer::Create(
        MinMaxScheme{-1.0, 1.0, true}, c.layout, channels, testing::SyntheticStatistics(channels));
    int64_t elements = 1;
    for (int64_t d : c.shape) elements *= d;
    const std::vector<std::byte> x = testing::RandomInput(DType::kFloat16, elements, rng);
    const ValidatedTensor tensor = *ValidateTensor(TensorView{DType::kFloat16, c.shape, x});
    const ChannelGeometry geometry = *normalizer.GeometryOf(tensor);
    std::vector<std::byte> whole(elements * 4), chunked(elements * 4);
    ASSERT_TRUE(normalizer.Apply(tensor, OutputDType(), whole).ok());
    const ScaleShift& f = normalizer.factors();
    const std::vector<ScaleShift::Range> ranges = RoundedClampRanges(DType::kFloat32, f.clamp);
    std::vector<double> low, high;
    for (const ScaleShift::Range& r : ranges) low.push_back(r.low), high.push_back(r.high);
    const auto n = static_cast<uint64_t>(elements);
    const auto period = static_cast<uint64_t>(channels * geometry.inner);
    // Chunks of a few periods, of less than one (rounded up to one), and of everything.
    for (const uint64_t chunk_bytes : {uint64_t{2} * period * 2 + 1, uint64_t{3}, n * 2}) {
      const uint64_t chunk = cuda_kernels::ChunkElements(
          static_cast<uint64_t>(channels), static_cast<uint64_t>(geometry.inner), 2, chunk_bytes);
      std::fill(chunked.begin(), chunked.end(), std::byte{0});
      for (uint64_t first = 0; first < n; first += chunk) {
        const uint64_t count = std::min(chunk, n - first);
        testing::EmulateScaleShiftMap(
            DType::kFloat16, DType::kFloat32, x.data() + first * 2, chunked.data() + first * 4,
            {count, count, static_cast<uint64_t>(channels), static_cast<uint64_t>(geometry.inner)},
            {f.center.data(), f.scale.data(), f.shift.data(), low.data(), high.data()});
      }
      ASSERT_EQ(whole, chunked) << "chunks of " << chunk << " values, shape rank "
                                << c.shape.size();
    }
  }
}

// Values of `dtype` far from zero (an offset of 1e4 over a spread of ~3), as bytes and
// as the doubles they hold.
struct FitInput {
  std::vector<std::byte> bytes;
  std::vector<double> values;
};

FitInput OffsetInput(DType dtype, size_t n, std::mt19937_64& rng) {
  FitInput input;
  std::normal_distribution<double> noise(0.0, 3.0);
  input.bytes.resize(n * ElementSize(dtype));
  VisitDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      double v = dtype == DType::kUInt8 ? std::floor(std::fmod(std::fabs(noise(rng)) * 40, 256))
                                        : 1e4 + noise(rng) * (1.0 + static_cast<double>(i % 5));
      if (dtype == DType::kFloat16 || dtype == DType::kBFloat16) v = v / 100;
      T element;
      if constexpr (std::is_same_v<T, Float16>) {
        element = Float16{DoubleToFloat16Bits(v)};
      } else if constexpr (std::is_same_v<T, BFloat16>) {
        element = BFloat16{DoubleToBFloat16Bits(v)};
      } else {
        element = static_cast<T>(v);
      }
      StoreElement<T>(input.bytes.data(), i, element);
      input.values.push_back(ToDouble(element));
    }
  });
  return input;
}

// Segment s's values by the definition: unit u's channel c is in segment
// u * groups + c / (channels / groups).
std::vector<std::vector<double>> SegmentsOf(const SegmentGeometry& g,
                                            const std::vector<double>& values) {
  std::vector<std::vector<double>> segments(g.segments());
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t unit = i / g.unit_elements();
    const uint64_t channel = i / g.inner % g.channels;
    segments[unit * g.groups + channel / (g.channels / g.groups)].push_back(values[i]);
  }
  return segments;
}

struct SegmentCase {
  const char* name;
  SegmentGeometry g;
};

// Every kind of tiling: long and short runs, runs cut into chunks, several runs per
// block, columns narrower and wider than a block, row tiles with tails, groups.
std::vector<SegmentCase> SegmentCases() {
  return {
      {"fit NCHW, long runs", {1, 3, 3, 5000, 3}},
      {"fit NCHW, short runs", {1, 20, 4, 49, 4}},
      {"fit NCHW, runs of 40", {1, 9, 5, 40, 5}},
      {"fit NHWC, 3 channels", {1, 4100, 3, 1, 3}},
      {"fit NC, 300 features", {1, 37, 300, 1, 300}},
      {"fit NC, one feature", {1, 5000, 1, 1, 1}},
      {"fit NHWC, rows past a tile", {1, 9000, 2, 1, 2}},
      {"layer norm", {6, 1, 700, 1, 1}},
      {"layer norm, long", {2, 1, 9000, 1, 1}},
      {"instance norm NCHW", {3, 1, 4, 300, 4}},
      {"instance norm NHWC", {3, 50, 4, 1, 4}},
      {"group norm NCHW", {2, 1, 6, 20, 3}},
      {"group norm NHWC", {2, 70, 8, 1, 2}},
      {"group norm, runs within rows", {2, 3, 4, 600, 2}},
  };
}

// Each segment's moments from the emulated kernels against exact rational arithmetic:
// count, min and max exactly, mean and variance to float64's precision.
TEST(CudaEmulationTest, SegmentMomentsMatchExactArithmetic) {
  std::mt19937_64 rng(5);
  for (const SegmentCase& c : SegmentCases()) {
    for (DType dtype : testing::kKernelInputs) {
      const FitInput input = OffsetInput(dtype, c.g.units * c.g.unit_elements(), rng);
      const testing::EmulatedMoments emulated =
          EmulateSegmentMoments(dtype, input.bytes.data(), c.g);
      EXPECT_EQ(emulated.first_nonfinite, cuda_kernels::kNoIndex);
      const std::vector<std::vector<double>> segments = SegmentsOf(c.g, input.values);
      ASSERT_EQ(emulated.segments.size(), segments.size());
      for (size_t s = 0; s < segments.size(); ++s) {
        const auto exact = ComputeExactMoments(segments[s]);
        const MomentPartial& m = emulated.segments[s];
        SCOPED_TRACE(::testing::Message()
                     << c.name << ", " << DTypeName(dtype) << ", segment " << s);
        EXPECT_EQ(m.count, static_cast<double>(exact.count));
        EXPECT_EQ(m.min, *std::min_element(segments[s].begin(), segments[s].end()));
        EXPECT_EQ(m.max, *std::max_element(segments[s].begin(), segments[s].end()));
        EXPECT_LE(MeanError(m.mean.value(), exact), 1e-15);
        EXPECT_LE(RelativeError((m.m2 / m.count).value(), exact.PopulationVariance()), 1e-15);
      }
    }
  }
}

// The fit's moments equal the CPU's ComputeBatchMoments: exactly for uint8 (both sum
// in integers); for the float types to 1e-15 relative, or to the CPU's own error
// against exact arithmetic where that is larger (16-bit data 1000 standard deviations
// from zero, where the CPU's bound is looser than the device's tiles).
TEST(CudaEmulationTest, FitAgreesWithTheCpu) {
  std::mt19937_64 rng(9);
  const std::vector<std::pair<Layout, std::vector<int64_t>>> cases = {
      {Layout::kNCHW, {4, 3, 40, 41}}, {Layout::kNHWC, {4, 17, 19, 3}}, {Layout::kNC, {999, 13}}};
  for (const auto& [layout, shape] : cases) {
    const int64_t channels = layout == Layout::kNHWC ? shape.back() : shape[1];
    const ChannelGeometry geometry = *ResolveGeometry(layout, channels, shape);
    const SegmentGeometry g{1, static_cast<uint64_t>(geometry.outer),
                            static_cast<uint64_t>(channels), static_cast<uint64_t>(geometry.inner),
                            static_cast<uint64_t>(channels)};
    for (DType dtype : testing::kKernelInputs) {
      const FitInput input = OffsetInput(dtype, static_cast<size_t>(geometry.elements()), rng);
      std::vector<ChannelMoments> cpu(channels);
      ASSERT_TRUE(ComputeBatchMoments(TensorView{dtype, shape, input.bytes}, geometry,
                                      NonFinitePolicy::kReject, cpu)
                      .ok());
      const testing::EmulatedMoments emulated = EmulateSegmentMoments(dtype, input.bytes.data(), g);
      const std::vector<std::vector<double>> channel_values = SegmentsOf(g, input.values);
      for (int64_t c = 0; c < channels; ++c) {
        const MomentPartial& m = emulated.segments[c];
        SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << ", channel " << c);
        EXPECT_EQ(m.count, static_cast<double>(cpu[c].count));
        EXPECT_EQ(m.min, cpu[c].min);
        EXPECT_EQ(m.max, cpu[c].max);
        if (dtype == DType::kUInt8) {
          EXPECT_EQ(Bits(m.mean.hi), Bits(cpu[c].mean.hi));
          EXPECT_EQ(Bits(m.mean.lo), Bits(cpu[c].mean.lo));
          EXPECT_EQ(Bits(m.m2.hi), Bits(cpu[c].m2.hi));
          EXPECT_EQ(Bits(m.m2.lo), Bits(cpu[c].m2.lo));
        } else {
          const auto exact = ComputeExactMoments(channel_values[c]);
          const double cpu_error =
              RelativeError(cpu[c].PopulationVariance(), exact.PopulationVariance());
          EXPECT_LE(RelativeError(m.mean.value(), cpu[c].Mean()), 1e-15);
          EXPECT_LE(RelativeError((m.m2 / m.count).value(), cpu[c].PopulationVariance()),
                    std::max(1e-15, 2 * cpu_error));
          EXPECT_LE(RelativeError((m.m2 / m.count).value(), exact.PopulationVariance()), 1e-15);
        }
      }
    }
  }
}

// Non-finite values are left out of the counts and the first one's index is kept.
TEST(CudaEmulationTest, NonFiniteValuesAreCountedOutAndTheFirstIsFound) {
  const SegmentGeometry g{1, 10, 3, 700, 3};
  std::vector<float> x(g.unit_elements());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) * 0.5f;
  x[12345] = std::numeric_limits<float>::quiet_NaN();
  x[4000] = -std::numeric_limits<float>::infinity();
  x[19999] = std::numeric_limits<float>::infinity();
  const testing::EmulatedMoments emulated =
      EmulateSegmentMoments(DType::kFloat32, reinterpret_cast<const std::byte*>(x.data()), g);
  EXPECT_EQ(emulated.first_nonfinite, 4000u);
  double counted = 0;
  for (const MomentPartial& m : emulated.segments) counted += m.count;
  EXPECT_EQ(counted, static_cast<double>(x.size() - 3));
  // Runs of 700: index 4000 is in run 5 and 12345 in run 17 (channel 2), 19999 in run
  // 28 (channel 1).
  EXPECT_EQ(emulated.segments[0].count, 10.0 * 700);
  EXPECT_EQ(emulated.segments[1].count, 10.0 * 700 - 1);
  EXPECT_EQ(emulated.segments[2].count, 10.0 * 700 - 2);
}

// Batch norm in training mode and the per-sample families: moments, fold and map, the
// CPU's output to within its rounding: both take float64 statistics of the same values,
// rounded in different orders, so they may differ by an ulp of the output type, and in
// float64 by what a last-place difference in the mean makes of x - mean.
TEST(CudaEmulationTest, BatchStatisticsSchemesAgreeWithTheCpu) {
  std::mt19937_64 rng(21);
  struct Case {
    const char* name;
    SegmentGeometry g;
    std::variant<BatchNormTrainingScheme, PerSampleScheme> scheme;
  };
  const std::vector<double> gamma4 = {0.5, 2.0, -1.0, 3.0}, beta4 = {0.0, 1.0, -2.0, 0.25};
  const std::vector<Case> cases = {
      {"batchnorm NCHW", {1, 6, 4, 300, 4}, BatchNormTrainingScheme{gamma4, beta4, 1e-5}},
      {"batchnorm NHWC", {1, 600, 4, 1, 4}, BatchNormTrainingScheme{{}, {}, 1e-3}},
      {"layernorm", {5, 1, 700, 1, 1}, PerSampleScheme(LayerNormScheme{{700}, {}, {}, 1e-5})},
      {"instancenorm NCHW",
       {3, 1, 4, 64, 4},
       PerSampleScheme(InstanceNormScheme{gamma4, beta4, 1e-5})},
      {"groupnorm NHWC",
       {2, 50, 4, 1, 2},
       PerSampleScheme(GroupNormScheme{2, gamma4, beta4, 1e-5})},
  };
  for (const Case& c : cases) {
    for (DType dtype : testing::kKernelInputs) {
      const uint64_t n = c.g.units * c.g.unit_elements();
      const FitInput input = OffsetInput(dtype, n, rng);
      for (DType out : testing::kKernelOutputs) {
        SCOPED_TRACE(::testing::Message()
                     << c.name << ", " << DTypeName(dtype) << " -> " << DTypeName(out));
        const size_t bytes = n * ElementSize(out);
        std::vector<std::byte> cpu(bytes), emulated(bytes);
        const std::vector<int64_t> shape = {static_cast<int64_t>(n)};
        const TensorView view{dtype, shape, input.bytes};
        std::vector<double> gamma, beta;
        double eps = 0;
        if (const auto* bn = std::get_if<BatchNormTrainingScheme>(&c.scheme)) {
          const ChannelGeometry geometry{
              static_cast<int64_t>(c.g.rows), static_cast<int64_t>(c.g.rows),
              static_cast<int64_t>(c.g.channels), static_cast<int64_t>(c.g.inner)};
          std::vector<ChannelMoments> moments(c.g.channels);
          ASSERT_TRUE(
              ApplyBatchNormTraining(*bn, view, geometry, *ValidateOutputDType(out), cpu, moments)
                  .ok());
          gamma = bn->gamma, beta = bn->beta, eps = bn->eps;
        } else {
          const auto& per_sample = std::get<PerSampleScheme>(c.scheme);
          const GroupedGeometry geometry{
              static_cast<int64_t>(c.g.units), static_cast<int64_t>(c.g.rows),
              static_cast<int64_t>(c.g.channels), static_cast<int64_t>(c.g.inner),
              static_cast<int64_t>(c.g.groups)};
          ASSERT_TRUE(
              ApplyPerSampleNorm(per_sample, view, geometry, *ValidateOutputDType(out), cpu).ok());
          std::visit([&](const auto& s) { gamma = s.gamma, beta = s.beta, eps = s.eps; },
                     per_sample);
        }
        const testing::EmulatedMoments moments =
            EmulateSegmentMoments(dtype, input.bytes.data(), c.g);
        const testing::EmulatedFactors f =
            testing::EmulateFold(c.g, moments.segments, eps, gamma, beta);
        testing::EmulateScaleShiftMap(dtype, out, input.bytes.data(), emulated.data(),
                                      {n, c.g.unit_elements(), c.g.channels, c.g.inner},
                                      {f.center.data(), f.scale.data(), f.shift.data()});
        // One unit in the last place of the output type, on the scale of the output.
        const double ulp = out == DType::kFloat64   ? 0x1p-52
                           : out == DType::kFloat32 ? 0x1p-23
                           : out == DType::kFloat16 ? 0x1p-10
                                                    : 0x1p-7;
        VisitOutputDType(out, [&](auto tag) {
          using Out = decltype(tag);
          for (uint64_t i = 0; i < n; ++i) {
            const double a = ToDouble(LoadElement<Out>(cpu.data(), i));
            const double b = ToDouble(LoadElement<Out>(emulated.data(), i));
            const uint64_t factor =
                i / c.g.unit_elements() * c.g.channels + i / c.g.inner % c.g.channels;
            const double mean_term = 0x1p-52 * std::fabs(f.center[factor] * f.scale[factor]);
            ASSERT_LE(std::fabs(a - b), ulp * std::max(1.0, std::fabs(a)) + 4 * mean_term)
                << "element " << i;
          }
        });
      }
    }
  }
}

}  // namespace
}  // namespace normd
