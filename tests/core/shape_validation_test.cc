#include <vector>

#include "core/dataset_spec.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

void ExpectInvalid(const absl::Status& status, absl::string_view fragment) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(fragment), absl::string_view::npos)
      << "message \"" << status.message() << "\" lacks \"" << fragment << "\"";
}

TEST(LayoutTest, GeometryOfEachLayout) {
  const std::vector<int64_t> nc = {10, 4};
  absl::StatusOr<ChannelGeometry> g = ResolveGeometry(Layout::kNC, 4, nc);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->outer, 10);
  EXPECT_EQ(g->inner, 1);

  const std::vector<int64_t> nchw = {2, 3, 5, 7};
  g = ResolveGeometry(Layout::kNCHW, 3, nchw);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->outer, 2);
  EXPECT_EQ(g->inner, 35);
  EXPECT_EQ(g->samples, 2);

  const std::vector<int64_t> nhwc = {2, 5, 7, 3};
  g = ResolveGeometry(Layout::kNHWC, 3, nhwc);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->outer, 70);
  EXPECT_EQ(g->inner, 1);
  EXPECT_EQ(g->samples, 2);
}

TEST(LayoutTest, ChannelMismatchNamesExpectedAndReceived) {
  const std::vector<int64_t> shape = {2, 4, 8, 8};
  ExpectInvalid(ResolveGeometry(Layout::kNCHW, 3, shape).status(),
                "expects 3 channels at axis 1, got 4");
  ExpectInvalid(ResolveGeometry(Layout::kNHWC, 3, shape).status(),
                "expects 3 channels at axis 3, got 8");
}

TEST(LayoutTest, RankMismatch) {
  const std::vector<int64_t> rank3 = {2, 3, 4};
  ExpectInvalid(ResolveGeometry(Layout::kNC, 3, rank3).status(),
                "rank-2 shape [N, C], got shape [2, 3, 4]");
  const std::vector<int64_t> rank2 = {2, 3};
  ExpectInvalid(ResolveGeometry(Layout::kNCHW, 3, rank2).status(), "rank >= 3");
}

TEST(TensorViewTest, ByteLengthMustMatchShapeAndDType) {
  const std::vector<int64_t> shape = {2, 3};
  std::vector<std::byte> bytes(23);
  ExpectInvalid(ValidateTensor({DType::kFloat32, shape, bytes}).status(),
                "23 bytes, expected 24 for shape [2, 3] of float32");
  bytes.resize(24);
  absl::StatusOr<ValidatedTensor> validated = ValidateTensor({DType::kFloat32, shape, bytes});
  ASSERT_TRUE(validated.ok());
  EXPECT_EQ(validated->elements(), 6);
  EXPECT_EQ(validated->view().bytes.data(), bytes.data());
}

TEST(TensorViewTest, NonPositiveDimsAndOverflow) {
  std::vector<std::byte> none;
  const std::vector<int64_t> zero = {0, 3};
  ExpectInvalid(ValidateTensor({DType::kUInt8, zero, none}).status(), "got 0 at axis 0");
  const std::vector<int64_t> negative = {4, -3};
  ExpectInvalid(ValidateTensor({DType::kUInt8, negative, none}).status(), "got -3 at axis 1");
  const std::vector<int64_t> huge = {int64_t{1} << 40, int64_t{1} << 40, 2};
  ExpectInvalid(ValidateTensor({DType::kUInt8, huge, none}).status(), "more than");
  const std::vector<int64_t> empty;
  ExpectInvalid(ValidateTensor({DType::kUInt8, empty, none}).status(), "shape is empty");
}

TEST(OutputDTypeTest, OnlyFloatTypesCanBeWritten) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    absl::StatusOr<OutputDType> output = ValidateOutputDType(dtype);
    ASSERT_TRUE(output.ok()) << DTypeName(dtype);
    EXPECT_EQ(output->dtype(), dtype);
  }
  ExpectInvalid(ValidateOutputDType(DType::kUInt8).status(),
                "output dtype must be float32, float64, float16 or bfloat16, got uint8");
  EXPECT_EQ(OutputDType().dtype(), DType::kFloat32);
}

TEST(DatasetSpecTest, Names) {
  EXPECT_TRUE(ValidateDatasetName("imagenet-train_v2.1").ok());
  EXPECT_TRUE(ValidateDatasetName(std::string(128, 'a')).ok());
  ExpectInvalid(ValidateDatasetName(""), "empty");
  ExpectInvalid(ValidateDatasetName(std::string(129, 'a')), "129 characters");
  ExpectInvalid(ValidateDatasetName("a/b"), "position 1");
  ExpectInvalid(ValidateDatasetName(".."), "starts with '.'");
  ExpectInvalid(ValidateDatasetName(std::string("a\0b", 3)), "position 1");
  ExpectInvalid(ValidateDatasetName("white space"), "position 5");
}

TEST(DatasetSpecTest, ChannelsAndMomentum) {
  DatasetSpec spec{"d", Layout::kNC, 0};
  ExpectInvalid(ValidateDatasetSpec(spec), "channels must be in [1, 1048576], got 0");
  spec.channels = kMaxChannels + 1;
  ExpectInvalid(ValidateDatasetSpec(spec), "got 1048577");
  spec.channels = 3;
  spec.momentum = 0.1;
  ExpectInvalid(ValidateDatasetSpec(spec), "accumulator is exact");
  spec.accumulator = AccumulatorKind::kRunningAverage;
  EXPECT_TRUE(ValidateDatasetSpec(spec).ok());
  spec.momentum = 1.5;
  ExpectInvalid(ValidateDatasetSpec(spec), "momentum must be in (0, 1], got 1.5");
}

}  // namespace
}  // namespace normd
