// Layer, instance and group norm and batch norm in training mode against a
// long-double two-pass oracle that finds each element's group from its coordinates.
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/batch_norm_training.h"
#include "core/per_sample_norm.h"
#include "gtest/gtest.h"
#include "tests/support/layout_oracle.h"
#include "tests/support/output_dtype.h"

namespace normd {
namespace {

using testing::ChannelAxis;
using testing::CoordinateAt;
using testing::ElementCount;
using testing::Out;

// The statistics group and the affine channel of each element.
struct ElementRole {
  int64_t group;
  int64_t channel;
};

// y = (x - mean_g) / sqrt(var_g + eps) * gamma[c] + beta[c], in long double, with
// mean and biased variance by two passes.
std::vector<double> OracleNormalize(const std::vector<double>& x,
                                    const std::vector<ElementRole>& roles,
                                    const std::vector<double>& gamma,
                                    const std::vector<double>& beta, double eps) {
  std::map<int64_t, std::vector<long double>> groups;
  for (size_t i = 0; i < x.size(); ++i) groups[roles[i].group].push_back(x[i]);
  std::map<int64_t, std::pair<long double, long double>> stats;
  for (const auto& [group, values] : groups) {
    long double sum = 0;
    for (long double v : values) sum += v;
    const long double mean = sum / values.size();
    long double squares = 0;
    for (long double v : values) squares += (v - mean) * (v - mean);
    stats[group] = {mean, std::sqrt(squares / values.size() + eps)};
  }
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const auto [mean, denominator] = stats[roles[i].group];
    const int64_t c = roles[i].channel;
    y[i] = static_cast<double>((x[i] - mean) / denominator * (gamma.empty() ? 1.0L : gamma[c]) +
                               (beta.empty() ? 0.0L : beta[c]));
  }
  return y;
}

std::vector<std::byte> Encode(const std::vector<double>& values, DType dtype) {
  std::vector<std::byte> bytes(values.size() * ElementSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kFloat32)
      StoreElement<float>(bytes.data(), i, static_cast<float>(values[i]));
    if (dtype == DType::kFloat64) StoreElement<double>(bytes.data(), i, values[i]);
    if (dtype == DType::kUInt8)
      StoreElement<uint8_t>(bytes.data(), i, static_cast<uint8_t>(values[i]));
  }
  return bytes;
}

// Values exactly representable in `dtype`, so the oracle sees what the kernel reads.
std::vector<double> RandomValues(int64_t n, DType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(40.0, 7.0);
  std::vector<double> values(static_cast<size_t>(n));
  for (double& v : values) {
    if (dtype == DType::kUInt8) {
      v = static_cast<double>(rng() % 256);
    } else {
      v = dtype == DType::kFloat32 ? static_cast<float>(normal(rng)) : normal(rng);
    }
  }
  return values;
}

std::vector<double> Decode64(const std::vector<std::byte>& bytes) {
  std::vector<double> values(bytes.size() / sizeof(double));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

void ExpectCloseToOracle(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-13 * (1.0 + std::abs(want[i]))) << "element " << i;
  }
}

struct PerSampleCase {
  std::string name;
  std::vector<int64_t> shape;
  Layout layout;  // of the input (instance / group norm)
  PerSampleScheme scheme;
  bool affine;
};

class PerSampleNormTest : public ::testing::TestWithParam<PerSampleCase> {};

std::vector<ElementRole> RolesOf(const PerSampleCase& param, const GroupedGeometry& g) {
  const int64_t n = ElementCount(param.shape);
  std::vector<ElementRole> roles(static_cast<size_t>(n));
  const bool layer = std::holds_alternative<LayerNormScheme>(param.scheme);
  const int64_t axis = ChannelAxis(param.layout, param.shape.size());
  for (int64_t i = 0; i < n; ++i) {
    if (layer) {
      roles[i] = {i / g.channels, i % g.channels};
    } else {
      const int64_t sample = CoordinateAt(param.shape, 0, i);
      const int64_t channel = CoordinateAt(param.shape, axis, i);
      roles[i] = {sample * g.groups + channel / g.channels_per_group(), channel};
    }
  }
  return roles;
}

TEST_P(PerSampleNormTest, MatchesLongDoubleOracleOnEveryPath) {
  PerSampleCase param = GetParam();
  std::optional<ChannelGeometry> channel_geometry;
  if (!std::holds_alternative<LayerNormScheme>(param.scheme)) {
    absl::StatusOr<int64_t> channels = ChannelCountOf(param.layout, param.shape);
    ASSERT_TRUE(channels.ok());
    channel_geometry = *ResolveGeometry(param.layout, *channels, param.shape);
  }
  absl::StatusOr<GroupedGeometry> g = ResolvePerSampleGeometry(
      param.scheme, param.shape, channel_geometry ? &*channel_geometry : nullptr);
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<double> gamma, beta;
  if (param.affine) {
    std::mt19937_64 rng(9);
    std::uniform_real_distribution<double> u(-2.0, 2.0);
    for (int64_t c = 0; c < g->channels; ++c) {
      gamma.push_back(u(rng));
      beta.push_back(u(rng));
    }
    std::visit([&](auto& s) { s.gamma = gamma, s.beta = beta; }, param.scheme);
  }
  const double eps = std::visit([](const auto& s) { return s.eps; }, param.scheme);
  const std::vector<ElementRole> roles = RolesOf(param, *g);
  const int64_t n = ElementCount(param.shape);
  WorkerPool pool(2);
  for (DType in : {DType::kFloat32, DType::kFloat64, DType::kUInt8}) {
    SCOPED_TRACE(std::string(DTypeName(in)));
    const std::vector<double> x = RandomValues(n, in, 3 + static_cast<int>(in));
    const std::vector<std::byte> bytes = Encode(x, in);
    const TensorView view{in, param.shape, bytes};
    std::vector<std::byte> y64(n * 8), y32(n * 4), pooled(n * 8);
    ASSERT_TRUE(ApplyPerSampleNorm(param.scheme, view, *g, Out(DType::kFloat64), y64).ok());
    ASSERT_TRUE(ApplyPerSampleNorm(param.scheme, view, *g, Out(DType::kFloat32), y32).ok());
    ASSERT_TRUE(
        ApplyPerSampleNorm(param.scheme, view, *g, Out(DType::kFloat64), pooled, &pool).ok());
    const std::vector<double> got = Decode64(y64);
    ExpectCloseToOracle(got, OracleNormalize(x, roles, gamma, beta, eps));
    EXPECT_EQ(y64, pooled) << "the pool changed the result";
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(LoadElement<float>(y32.data(), i), static_cast<float>(got[i]))
          << "float32 output is not the float64 result rounded once, at " << i;
    }
  }
}

PerSampleScheme Layer(std::vector<int64_t> normalized, double eps = kDefaultEps) {
  return LayerNormScheme{std::move(normalized), {}, {}, eps};
}
PerSampleScheme Instance() { return InstanceNormScheme{}; }
PerSampleScheme Group(int64_t groups) { return GroupNormScheme{groups, {}, {}, kDefaultEps}; }

INSTANTIATE_TEST_SUITE_P(
    Families, PerSampleNormTest,
    ::testing::Values(
        PerSampleCase{"layer_trailing2", {6, 5, 7}, Layout::kNC, Layer({5, 7}), false},
        PerSampleCase{"layer_trailing2_affine", {6, 5, 7}, Layout::kNC, Layer({5, 7}), true},
        PerSampleCase{"layer_long_rows", {3, 4, 300}, Layout::kNC, Layer({300}, 1e-3), true},
        PerSampleCase{"layer_default_shape", {5, 40}, Layout::kNC, Layer({}), false},
        PerSampleCase{"layer_one_element", {5, 1}, Layout::kNC, Layer({1}), true},
        PerSampleCase{"instance_nchw", {3, 4, 5, 6}, Layout::kNCHW, Instance(), true},
        PerSampleCase{"instance_nhwc", {3, 5, 6, 4}, Layout::kNHWC, Instance(), true},
        PerSampleCase{"instance_nchw_3d", {2, 3, 4, 3, 5}, Layout::kNCHW, Instance(), false},
        PerSampleCase{"group_nchw_long_runs", {2, 6, 8, 8}, Layout::kNCHW, Group(3), true},
        PerSampleCase{"group_nchw_short_runs", {2, 6, 3, 3}, Layout::kNCHW, Group(2), true},
        PerSampleCase{"group_nchw_uniform", {2, 6, 3, 3}, Layout::kNCHW, Group(2), false},
        PerSampleCase{"group_nhwc", {3, 5, 6, 6}, Layout::kNHWC, Group(3), true},
        PerSampleCase{"group_nc", {7, 12}, Layout::kNC, Group(4), true},
        PerSampleCase{"group_nhwc_pooled", {8, 64, 64, 16}, Layout::kNHWC, Group(4), true},
        PerSampleCase{"group_nchw_pooled", {8, 16, 64, 64}, Layout::kNCHW, Group(4), false},
        PerSampleCase{"layer_pooled", {4096, 96}, Layout::kNC, Layer({96}), true},
        // One large sample: a single task that spreads its own work over the pool.
        PerSampleCase{"group_nhwc_one_sample", {1, 256, 256, 8}, Layout::kNHWC, Group(2), true},
        PerSampleCase{"layer_one_sample", {1, 3, 256, 256}, Layout::kNC, Layer({}), false}),
    [](const ::testing::TestParamInfo<PerSampleCase>& info) { return info.param.name; });

TEST(PerSampleNormTest, NonFiniteValuesPoisonOnlyTheirGroup) {
  const std::vector<int64_t> shape = {2, 4, 3, 3};
  const ChannelGeometry cg = *ResolveGeometry(Layout::kNCHW, 4, shape);
  const PerSampleScheme scheme = Group(2);
  const GroupedGeometry g = *ResolvePerSampleGeometry(scheme, shape, &cg);
  std::vector<double> x = RandomValues(72, DType::kFloat64, 1);
  std::vector<double> clean = x;
  x[9 * 3 + 4] = NAN;    // sample 0, channel 3: group 1
  x[36 + 5] = INFINITY;  // sample 1, channel 0: group 0
  const std::vector<std::byte> bytes = Encode(x, DType::kFloat64);
  std::vector<std::byte> y(72 * 8);
  ASSERT_TRUE(
      ApplyPerSampleNorm(scheme, {DType::kFloat64, shape, bytes}, g, Out(DType::kFloat64), y).ok());
  const std::vector<double> got = Decode64(y);
  std::vector<ElementRole> roles(72);
  for (int64_t i = 0; i < 72; ++i) roles[i] = {i / 18, (i / 9) % 4};
  const std::vector<double> want = OracleNormalize(clean, roles, {}, {}, kDefaultEps);
  for (int64_t i = 0; i < 72; ++i) {
    const bool poisoned = roles[i].group == 1 || roles[i].group == 2;
    if (poisoned) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      EXPECT_NEAR(got[i], want[i], 1e-13 * (1 + std::abs(want[i]))) << i;
    }
  }
}

TEST(PerSampleNormTest, ShapesAndParametersAreChecked) {
  const std::vector<int64_t> shape = {2, 6, 4, 4};
  const ChannelGeometry cg = *ResolveGeometry(Layout::kNCHW, 6, shape);
  const auto error = [&](const PerSampleScheme& s, const ChannelGeometry* geometry) {
    return ResolvePerSampleGeometry(s, shape, geometry).status();
  };
  EXPECT_EQ(error(Group(4), &cg).message(),
            "group norm needs a group count that divides the 6 channels, got 4");
  EXPECT_EQ(error(Group(-2), &cg).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(error(Group(2), nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(error(Layer({4, 5}), nullptr).message(),
            "layer norm normalized_shape [4, 5] must equal the input's trailing dims, got input "
            "shape [2, 6, 4, 4]");
  EXPECT_EQ(error(Layer({1, 2, 6, 4, 4}), nullptr).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int64_t> flat = {2, 6, 1, 1};
  const ChannelGeometry single = *ResolveGeometry(Layout::kNCHW, 6, flat);
  EXPECT_EQ(ResolvePerSampleGeometry(Instance(), flat, &single).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Bad parameters leave the output untouched.
  const GroupedGeometry g = *ResolvePerSampleGeometry(Group(3), shape, &cg);
  const std::vector<std::byte> bytes =
      Encode(RandomValues(192, DType::kFloat32, 2), DType::kFloat32);
  std::vector<std::byte> y(192 * 4, std::byte{0x5a});
  const std::vector<std::byte> before = y;
  const TensorView view{DType::kFloat32, shape, bytes};
  absl::Status status = ApplyPerSampleNorm(GroupNormScheme{3, {1, 2, 3}, {}, kDefaultEps}, view, g,
                                           Out(DType::kFloat32), y);
  EXPECT_EQ(status.message(), "gamma has 3 values, expected 6 (one per channel) or none");
  status = ApplyPerSampleNorm(GroupNormScheme{3, {}, {}, -1.0}, view, g, Out(DType::kFloat32), y);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // A uint8 output is refused before any call (no OutputDType holds it).
  EXPECT_EQ(ValidateOutputDType(DType::kUInt8).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(y, before);
}

struct TrainingCase {
  std::string name;
  Layout layout;
  std::vector<int64_t> shape;
};

class BatchNormTrainingTest : public ::testing::TestWithParam<TrainingCase> {};

TEST_P(BatchNormTrainingTest, MatchesOracleAndReturnsTheBatchMoments) {
  const TrainingCase& param = GetParam();
  const int64_t axis = ChannelAxis(param.layout, param.shape.size());
  const int64_t channels = param.shape[axis];
  const ChannelGeometry geometry = *ResolveGeometry(param.layout, channels, param.shape);
  const int64_t n = ElementCount(param.shape);
  std::vector<ElementRole> roles(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = CoordinateAt(param.shape, axis, i);
    roles[i] = {c, c};
  }
  BatchNormTrainingScheme scheme;
  for (int64_t c = 0; c < channels; ++c) {
    scheme.gamma.push_back(0.5 + c);
    scheme.beta.push_back(-1.0 * c);
  }
  scheme.eps = 1e-3;
  WorkerPool pool(2);
  const std::vector<double> x = RandomValues(n, DType::kFloat32, 11);
  const std::vector<std::byte> bytes = Encode(x, DType::kFloat32);
  const TensorView view{DType::kFloat32, param.shape, bytes};
  std::vector<std::byte> y(n * 8), pooled(n * 8);
  std::vector<ChannelMoments> moments(channels), pooled_moments(channels);
  absl::StatusOr<uint64_t> skipped =
      ApplyBatchNormTraining(scheme, view, geometry, Out(DType::kFloat64), y, moments);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(*skipped, 0u);
  ASSERT_TRUE(ApplyBatchNormTraining(scheme, view, geometry, Out(DType::kFloat64), pooled,
                                     pooled_moments, &pool)
                  .ok());
  ExpectCloseToOracle(Decode64(y), OracleNormalize(x, roles, scheme.gamma, scheme.beta, 1e-3));
  EXPECT_EQ(y, pooled);
  for (int64_t c = 0; c < channels; ++c) {
    EXPECT_EQ(moments[c].count, static_cast<uint64_t>(geometry.values_per_channel()));
    EXPECT_EQ(moments[c].Mean(), pooled_moments[c].Mean());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, BatchNormTrainingTest,
    ::testing::Values(TrainingCase{"nc", Layout::kNC, {33, 5}},
                      TrainingCase{"nchw", Layout::kNCHW, {4, 3, 5, 6}},
                      TrainingCase{"nhwc", Layout::kNHWC, {4, 5, 6, 3}},
                      TrainingCase{"nchw_large", Layout::kNCHW, {16, 8, 64, 64}}),
    [](const ::testing::TestParamInfo<TrainingCase>& info) { return info.param.name; });

TEST(BatchNormTrainingTest, NeedsTwoValuesPerChannel) {
  const std::vector<int64_t> shape = {1, 3};
  const ChannelGeometry geometry = *ResolveGeometry(Layout::kNC, 3, shape);
  const std::vector<std::byte> bytes = Encode({1, 2, 3}, DType::kFloat32);
  std::vector<std::byte> y(12);
  std::vector<ChannelMoments> moments(3);
  absl::StatusOr<uint64_t> result = ApplyBatchNormTraining(
      {}, {DType::kFloat32, shape, bytes}, geometry, Out(DType::kFloat32), y, moments);
  EXPECT_EQ(result.status().message(),
            "batch norm in training mode needs more than 1 value per channel (batch x spatial "
            "positions), got 1 for input shape [1, 3]");
}

}  // namespace
}  // namespace normd
