// What the server acknowledges is whole, durable and survives a restart; the
// catalogue lists and deletes.
#include <memory>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

TEST_F(ServiceTest, AStreamIsAppliedWholeOrNotAtAll) {
  Create("tab", v1::LAYOUT_NC, 2);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({1, 2}, {1, 2})}).ok());
  const std::string before = StatsBytes("tab", 0);
  absl::StatusOr<v1::IngestResponse> response =
      Ingest("tab", v1::SPLIT_TRAIN,
             {Float64Tensor({2, 2}, {1, 2, 3, 4}), Float64Tensor({1, 2}, {5, 6}),
              Float64Tensor({1, 3}, {7, 8, 9})});
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument,
             "batch 2 rejected, nothing from this stream was applied");
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument,
             "expects 2 channels at axis 1, got 3");
  EXPECT_EQ(StatsBytes("tab", 0), before);

  response = Ingest("tab", v1::SPLIT_TRAIN,
                    {Float64Tensor({1, 2}, {1, 2}), Float64Tensor({1, 2}, {NAN, 2})});
  ExpectCode(response.status(), absl::StatusCode::kInvalidArgument, "non-finite value");
  EXPECT_EQ(StatsBytes("tab", 0), before);
}

TEST_F(ServiceTest, RestartKeepsEveryAcknowledgedBatchAndVersion) {
  Create("tab", v1::LAYOUT_NC, 3);
  Create("img", v1::LAYOUT_NHWC, 3);
  const std::vector<double> values = GaussianValues(300, 1e8, 1e-2, 5);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({100, 3}, values)}).ok());
  ASSERT_TRUE(client_->Freeze("tab").ok());
  ASSERT_TRUE(
      Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({50, 3}, GaussianValues(150, 5, 1, 6))}).ok());
  ASSERT_TRUE(
      Ingest("tab", v1::SPLIT_VALIDATION, {Float64Tensor({2, 3}, {1, 2, 3, 4, 5, 6})}).ok());
  ASSERT_TRUE(
      Ingest("img", v1::SPLIT_TRAIN, {Float32Tensor({1, 2, 2, 3}, std::vector<float>(12, 0.5f))})
          .ok());
  const std::string live = StatsBytes("tab", 0);
  const std::string validation = StatsBytes("tab", 0, v1::SPLIT_VALIDATION);
  const std::string frozen = StatsBytes("tab", 1);
  const std::string img = StatsBytes("img", 0);
  const std::string info = client_->GetDataset("tab")->SerializeAsString();

  RestartServer();

  EXPECT_EQ(StatsBytes("tab", 0), live);
  EXPECT_EQ(StatsBytes("tab", 0, v1::SPLIT_VALIDATION), validation);
  EXPECT_EQ(StatsBytes("tab", 1), frozen);
  EXPECT_EQ(StatsBytes("img", 0), img);
  EXPECT_EQ(client_->GetDataset("tab")->SerializeAsString(), info);
  EXPECT_EQ(client_->Freeze("tab")->version(), 2u);  // numbering continues
}

TEST_F(ServiceTest, DeleteRemovesDatasetAndVersions) {
  Create("gone", v1::LAYOUT_NC, 1);
  ASSERT_TRUE(Ingest("gone", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {1, 2})}).ok());
  ASSERT_TRUE(client_->Freeze("gone").ok());
  ASSERT_TRUE(client_->DeleteDataset("gone").ok());
  ExpectCode(client_->GetDataset("gone").status(), absl::StatusCode::kNotFound, "gone");
  ExpectCode(client_->DeleteDataset("gone"), absl::StatusCode::kNotFound, "gone");
  Create("gone", v1::LAYOUT_NC, 1);
  absl::StatusOr<v1::DatasetInfo> info = client_->GetDataset("gone");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->latest_version(), 0u);
  ExpectCode(client_->GetStats("gone", 1, v1::SPLIT_TRAIN).status(),
             absl::StatusCode::kFailedPrecondition, "no frozen version");
  RestartServer();
  EXPECT_EQ(client_->GetDataset("gone")->latest_version(), 0u);
}

TEST_F(ServiceTest, ListPagesThroughDatasetsInNameOrder) {
  for (const char* name : {"e", "b", "d", "a", "c"}) Create(name, v1::LAYOUT_NC, 1);
  v1::Normd::Stub stub(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  v1::ListDatasetsRequest request;
  request.set_page_size(2);
  std::vector<std::string> names;
  int pages = 0;
  do {
    grpc::ClientContext context;
    v1::ListDatasetsResponse response;
    ASSERT_TRUE(stub.ListDatasets(&context, request, &response).ok());
    for (const auto& info : response.datasets()) names.push_back(info.spec().name());
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(client_->ListDatasets()->size(), 5u);
}

}  // namespace
}  // namespace normd::testing
