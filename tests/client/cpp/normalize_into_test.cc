// The C++ client's calls without protobuf copies of the tensor, against a real
// server: NormalizeInto (the request serialised once from the caller's values, the
// reply's values copied once into its output) gives the bits of the protobuf-message
// call, which tests/python holds to PyTorch; IngestStream::WriteValues fits what Write
// fits.
#include <cstring>
#include <vector>

#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

using NormalizeIntoTest = ServiceTest;

TEST_F(NormalizeIntoTest, GivesTheBitsOfTheMessageCall) {
  Create("images", v1::LAYOUT_NCHW, 3);
  ASSERT_TRUE(
      Ingest("images", v1::SPLIT_TRAIN, {Float32Tensor({8, 3, 4, 4}, ImageBatch(8, 1))}).ok());
  ASSERT_TRUE(client_->Freeze("images").ok());
  for (const v1::DType output_dtype : {v1::DTYPE_FLOAT32, v1::DTYPE_FLOAT64}) {
    const std::vector<float> values = ImageBatch(16, 2);  // about 3 KiB, one slice
    v1::NormalizeRequest call;
    call.set_dataset("images");
    call.mutable_zscore();
    call.set_output_dtype(output_dtype);
    *call.mutable_input() = Float32Tensor({16, 3, 4, 4}, values);
    absl::StatusOr<v1::NormalizeResponse> expected = client_->Normalize(call);
    ASSERT_TRUE(expected.ok()) << expected.status();
    call.mutable_input()->clear_data();
    std::vector<std::byte> output(expected->output().data().size());
    absl::StatusOr<uint64_t> version =
        client_->NormalizeInto(call, std::as_bytes(std::span(values)), output);
    ASSERT_TRUE(version.ok()) << version.status();
    EXPECT_EQ(*version, 1u);
    EXPECT_EQ(std::memcmp(output.data(), expected->output().data().data(), output.size()), 0);
  }
}

TEST_F(NormalizeIntoTest, ALargeTensorInManySlicesComesBackWhole) {
  // 3 MiB each way: gRPC carries it in many slices on both sides.
  const std::vector<double> values = GaussianValues(3 << 17, 4.0, 2.0, 3);
  v1::NormalizeRequest call;
  call.mutable_scale()->set_factor(0.5);
  call.set_output_dtype(v1::DTYPE_FLOAT64);
  call.mutable_input()->add_shape(static_cast<int64_t>(values.size()) / 4);
  call.mutable_input()->add_shape(4);
  call.mutable_input()->set_dtype(v1::DTYPE_FLOAT64);
  std::vector<double> output(values.size());
  absl::StatusOr<uint64_t> version = client_->NormalizeInto(
      call, std::as_bytes(std::span(values)), std::as_writable_bytes(std::span(output)));
  ASSERT_TRUE(version.ok()) << version.status();
  for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(output[i], values[i] * 0.5) << i;
}

TEST_F(NormalizeIntoTest, A3MiBInputGivesTheBitsOfTheMessageCall) {
  Create("wide", v1::LAYOUT_NC, 64);
  ASSERT_TRUE(
      Ingest("wide", v1::SPLIT_TRAIN, {Float64Tensor({100, 64}, GaussianValues(6400, 1.0, 2.0, 5))})
          .ok());
  ASSERT_TRUE(client_->Freeze("wide").ok());
  // 3 MiB of float32, arriving at the server in many slices.
  const std::vector<double> doubles = GaussianValues(12288 * 64, 1.0, 2.0, 6);
  const std::vector<float> values(doubles.begin(), doubles.end());
  v1::NormalizeRequest call;
  call.set_dataset("wide");
  call.mutable_zscore();
  *call.mutable_input() = Float32Tensor({12288, 64}, values);
  absl::StatusOr<v1::NormalizeResponse> expected = client_->Normalize(call);
  ASSERT_TRUE(expected.ok()) << expected.status();
  call.mutable_input()->clear_data();
  std::vector<std::byte> output(values.size() * 4);
  absl::StatusOr<uint64_t> version =
      client_->NormalizeInto(call, std::as_bytes(std::span(values)), output);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1u);
  EXPECT_EQ(std::memcmp(output.data(), expected->output().data().data(), output.size()), 0);
}

TEST_F(NormalizeIntoTest, ErrorsAndAWrongOutputSizeArePrecise) {
  v1::NormalizeRequest call;
  call.set_dataset("missing");
  call.mutable_zscore();
  *call.mutable_input() = Float32Tensor({2, 2}, {1, 2, 3, 4});
  call.mutable_input()->clear_data();
  const std::vector<float> values = {1, 2, 3, 4};
  std::vector<std::byte> output(16);
  ExpectCode(client_->NormalizeInto(call, std::as_bytes(std::span(values)), output).status(),
             absl::StatusCode::kNotFound, "missing");
  call.set_dataset("");
  call.mutable_scale()->set_factor(2);
  std::vector<std::byte> small(8);
  ExpectCode(client_->NormalizeInto(call, std::as_bytes(std::span(values)), small).status(),
             absl::StatusCode::kInternal,
             "the reply holds 16 bytes of values; the output has "
             "room for 8");
}

TEST_F(NormalizeIntoTest, IngestWriteValuesFitsAsWriteDoes) {
  Create("messages", v1::LAYOUT_NC, 4);
  Create("values", v1::LAYOUT_NC, 4);
  std::vector<std::vector<double>> batches;
  for (int b = 0; b < 3; ++b) batches.push_back(GaussianValues(4 * 1000, 2.0 + b, 3.0, 10 + b));
  std::vector<v1::Tensor> tensors;
  for (const auto& batch : batches) tensors.push_back(Float64Tensor({1000, 4}, batch));
  ASSERT_TRUE(Ingest("messages", v1::SPLIT_TRAIN, tensors).ok());
  std::unique_ptr<IngestStream> stream = client_->StartIngest("values", {"w", 1});
  v1::Tensor meta;
  meta.add_shape(1000);
  meta.add_shape(4);
  meta.set_dtype(v1::DTYPE_FLOAT64);
  for (const auto& batch : batches) {
    ASSERT_TRUE(stream->WriteValues(v1::SPLIT_TRAIN, meta, std::as_bytes(std::span(batch))).ok());
  }
  absl::StatusOr<v1::IngestResponse> reply = stream->Finish();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->batches(), 3u);
  EXPECT_EQ(reply->writer_sequence(), 3u);
  EXPECT_EQ(client_->GetStats("values", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString(),
            client_->GetStats("messages", 0, v1::SPLIT_TRAIN)->stats().SerializeAsString());
}

}  // namespace
}  // namespace normd::testing
