// Bad input gets a precise status and changes nothing: malformed requests, limits,
// deadlines, cancellation.
#include <functional>
#include <memory>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/server/service_fixture.h"

namespace normd::testing {
namespace {

TEST_F(ServiceTest, BadInputGetsPreciseStatus) {
  Create("tab", v1::LAYOUT_NC, 3);
  const v1::Tensor good = Float64Tensor({1, 3}, {1, 2, 3});

  ExpectCode(Ingest("missing", v1::SPLIT_TRAIN, {good}).status(), absl::StatusCode::kNotFound,
             "dataset \"missing\" does not exist");
  ExpectCode(client_->GetStats("missing", 0, v1::SPLIT_TRAIN).status(), absl::StatusCode::kNotFound,
             "missing");
  ExpectCode(client_->Freeze("tab").status(), absl::StatusCode::kFailedPrecondition,
             "no training data");

  // One stream each; none may change the dataset (checked below).
  const auto with = [&](const std::function<void(v1::Tensor&)>& change) {
    v1::Tensor tensor = good;
    change(tensor);
    return tensor;
  };
  const std::vector<double> big((kMaxMessageBytes / 8 / 3 + 1) * 3, 1.0);
  struct BadStream {
    const char* what;
    v1::Split split;
    std::vector<v1::Tensor> batches;
    absl::StatusCode code;
    const char* fragment;
  };
  const BadStream bad_streams[] = {
      {"a byte short",
       v1::SPLIT_TRAIN,
       {with([](v1::Tensor& t) { t.mutable_data()->pop_back(); })},
       absl::StatusCode::kInvalidArgument,
       "23 bytes, expected 24"},
      {"no dtype",
       v1::SPLIT_TRAIN,
       {with([](v1::Tensor& t) { t.set_dtype(v1::DTYPE_UNSPECIFIED); })},
       absl::StatusCode::kInvalidArgument,
       "batch.dtype must be one of"},
      {"unknown dtype",
       v1::SPLIT_TRAIN,
       {with([](v1::Tensor& t) { t.set_dtype(static_cast<v1::DType>(77)); })},
       absl::StatusCode::kInvalidArgument,
       "got 77"},
      {"no split",
       v1::SPLIT_UNSPECIFIED,
       {good},
       absl::StatusCode::kInvalidArgument,
       "split is unspecified"},
      {"wrong channels",
       v1::SPLIT_TRAIN,
       {Float64Tensor({1, 4}, {1, 2, 3, 4})},
       absl::StatusCode::kInvalidArgument,
       "expects 3 channels at axis 1, got 4"},
      {"empty dim",
       v1::SPLIT_TRAIN,
       {Float64Tensor({0, 3}, {})},
       absl::StatusCode::kInvalidArgument,
       "got 0 at axis 0"},
      {"no batch", v1::SPLIT_TRAIN, {}, absl::StatusCode::kInvalidArgument, "held no batch"},
      // shapes that lie: negative, and a product past 2^63 with no data behind it
      {"negative dim",
       v1::SPLIT_TRAIN,
       {with([](v1::Tensor& t) { t.set_shape(0, -1); })},
       absl::StatusCode::kInvalidArgument,
       "got -1 at axis 0"},
      {"overflowing shape",
       v1::SPLIT_TRAIN,
       {with([](v1::Tensor& t) { t.set_shape(0, int64_t{1} << 62); })},
       absl::StatusCode::kInvalidArgument,
       "has more than"},
      {"a good batch, then a bad one",
       v1::SPLIT_TRAIN,
       {good, with([](v1::Tensor& t) { t.set_shape(1, 2); })},
       absl::StatusCode::kInvalidArgument,
       "batch 1 rejected, nothing from this stream"},
      {"over the message size",
       v1::SPLIT_TRAIN,
       {Float64Tensor({int64_t(big.size() / 3), 3}, big)},
       absl::StatusCode::kResourceExhausted,
       ""},
  };
  for (const BadStream& bad : bad_streams) {
    SCOPED_TRACE(bad.what);
    ExpectCode(Ingest("tab", bad.split, bad.batches).status(), bad.code, bad.fragment);
  }
  {
    v1::NormalizeRequest request;
    request.mutable_scale()->set_factor(2);
    *request.mutable_input() = with([](v1::Tensor& t) { t.set_shape(0, int64_t{1} << 62); });
    ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
               "has more than");
  }

  Create("other", v1::LAYOUT_NC, 3);
  // A raw stream that switches dataset halfway (IngestStream names the dataset once),
  // once to a real dataset and once to a 1 MiB name the refusal must not echo whole.
  for (const std::string& second : {std::string("other"), std::string(1 << 20, 'z')}) {
    v1::Normd::Stub stub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::IngestResponse response;
    auto writer = stub.Ingest(&context, &response);
    v1::IngestRequest request;
    request.set_dataset("tab");
    request.set_split(v1::SPLIT_TRAIN);
    *request.mutable_batch() = good;
    writer->Write(request);
    request.set_dataset(second);
    writer->Write(request);
    writer->WritesDone();
    const absl::Status status = FromGrpcStatus(writer->Finish());
    ExpectCode(status, absl::StatusCode::kInvalidArgument,
               "batch 1 rejected, nothing from this stream was applied: the stream began with "
               "dataset \"tab\" but this batch names \"");
    EXPECT_LE(status.message().size(), 3u * 1024);
    if (second.size() < 100) {
      EXPECT_NE(status.message().find("one stream feeds one dataset"), absl::string_view::npos);
    } else {
      EXPECT_NE(status.message().find(" more bytes cut]"), absl::string_view::npos);
    }
  }
  EXPECT_EQ(client_->GetStats("tab", 0, v1::SPLIT_TRAIN)->stats().count(0), 0u);

  v1::DatasetSpec spec;
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(3);
  spec.set_name("tab");
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kAlreadyExists,
             "already exists");
  for (const std::string& name :
       {std::string(), std::string(129, 'n'), std::string(10000, 'n'), std::string("a/b"),
        std::string(".."), std::string("x\0y", 3), std::string("caf\xc3\xa9")}) {
    spec.set_name(name);
    ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
               "dataset name");
    ExpectCode(client_->GetStats(name, 0, v1::SPLIT_TRAIN).status(),
               absl::StatusCode::kInvalidArgument, "dataset name");
  }
  // Invalid UTF-8 in a proto3 string never reaches normd's handlers: protobuf refuses
  // to parse the request, which is the caller's error. Nothing is created.
  spec.set_name("\xff\xfe");
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
             "/normd.v1.Normd/CreateDataset is not a valid protobuf message");
  absl::StatusOr<std::vector<v1::DatasetInfo>> datasets = client_->ListDatasets();
  ASSERT_TRUE(datasets.ok());
  EXPECT_EQ(datasets->size(), 2u);  // tab and other
  spec.set_name("fine");
  spec.set_layout(static_cast<v1::Layout>(42));
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
             "spec.layout must be one of NC, NCHW, NHWC (1..3), got 42");
  spec.set_layout(v1::LAYOUT_NC);
  spec.set_channels(1 << 30);
  ExpectCode(client_->CreateDataset(spec).status(), absl::StatusCode::kInvalidArgument,
             "channels must be in [1, 1048576], got 1073741824");

  v1::NormalizeRequest normalize;
  normalize.set_dataset("tab");
  *normalize.mutable_input() = good;
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "scheme is not set");
  normalize.mutable_zscore();
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kFailedPrecondition,
             "no frozen version");
  normalize.set_dataset("missing");
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kNotFound, "missing");
  normalize.set_dataset("tab");
  normalize.set_output_dtype(v1::DTYPE_UINT8);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "output_dtype must be FLOAT32, FLOAT64, FLOAT16 or BFLOAT16, got uint8");
  normalize.set_output_dtype(v1::DTYPE_FLOAT32);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {good, good}).ok());
  ASSERT_TRUE(client_->Freeze("tab").ok());
  normalize.set_version(9);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kNotFound,
             "no version 9; the latest is 1");
  normalize.set_version(0);
  *normalize.mutable_input() = Float64Tensor({1, 2}, {1, 2});
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "expects 3 channels at axis 1, got 2");
  // Constant channels (all batches were [1, 2, 3]) with eps = 0.
  *normalize.mutable_input() = good;
  normalize.mutable_zscore()->set_eps(0);
  ExpectCode(client_->Normalize(normalize).status(), absl::StatusCode::kInvalidArgument,
             "var + eps must be positive");
  normalize.mutable_zscore()->clear_eps();
  EXPECT_TRUE(client_->Normalize(normalize).ok());
  EXPECT_EQ(client_->GetStats("tab", 0, v1::SPLIT_TRAIN)->stats().count(0), 2u);
}

TEST_F(ServiceTest, OversizedRequestsAreResourceExhaustedBeforeAnyWork) {
  RestartServer([](ServerOptions& options) { options.limits.max_request_elements = 1000; });
  Create("tabular", v1::LAYOUT_NC, 10);
  ASSERT_TRUE(
      Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({100, 10}, std::vector<double>(1000, 1.0))})
          .ok());
  ASSERT_TRUE(client_->Freeze("tabular").ok());
  const std::string before = StatsBytes("tabular", 0);
  ExpectCode(
      Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({101, 10}, std::vector<double>(1010, 1.0))})
          .status(),
      absl::StatusCode::kResourceExhausted,
      "batch 0 rejected, nothing from this stream was applied: the batch has 1010 values; "
      "this server takes at most 1000 per request (--max_request_elements)");
  EXPECT_EQ(StatsBytes("tabular", 0), before);
  v1::NormalizeRequest request;
  request.set_dataset("tabular");
  request.mutable_scale();
  *request.mutable_input() = Float64Tensor({101, 10}, std::vector<double>(1010, 1.0));
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kResourceExhausted,
             "the input has 1010 values");

  // A reply that could not be sent (u8 in, float64 out: 8x the request) is refused.
  RestartServer();
  Create("pixels", v1::LAYOUT_NC, 1);
  request.set_dataset("");
  request.set_output_dtype(v1::DTYPE_FLOAT64);
  *request.mutable_input() =
      MakeTensor(v1::DTYPE_UINT8, {1 << 20, 1}, std::vector<uint8_t>(1 << 20, 7));
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kResourceExhausted,
             "the reply would hold 8388608 bytes of values (1048576 float64), more than fit in "
             "a 4194304-byte message");
}

TEST_F(ServiceTest, ConcurrentIngestStreamsAreCapped) {
  RestartServer([](ServerOptions& options) { options.limits.max_concurrent_ingests = 2; });
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> first = client_->StartIngest("tabular");
  std::unique_ptr<IngestStream> second = client_->StartIngest("tabular");
  ASSERT_TRUE(first->Write(v1::SPLIT_TRAIN, NumberedBatch(1)).ok());
  ASSERT_TRUE(second->Write(v1::SPLIT_TRAIN, NumberedBatch(2)).ok());
  // Both streams hold their slots once their handlers run.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (server_->service().active_ingests() < 2 && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(server_->service().active_ingests(), 2);
  ExpectCode(Ingest("tabular", v1::SPLIT_TRAIN, {NumberedBatch(3)}).status(),
             absl::StatusCode::kResourceExhausted,
             "this server already serves 2 Ingest streams (--max_concurrent_ingests)");
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_TRUE(second->Finish().ok());
  EXPECT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, {NumberedBatch(3)}).ok());
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 3u);
}

TEST_F(ServiceTest, AnExpiredDeadlineAppliesNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> stream =
      client_->StartIngest("tabular", {}, false, absl::Now() + absl::Milliseconds(300));
  // Keep the stream open, writing, until the deadline ends the call.
  for (uint64_t k = 1; stream->Write(v1::SPLIT_TRAIN, NumberedBatch(k)).ok(); ++k) {
  }
  EXPECT_EQ(stream->Finish().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetStats("tabular", 0, v1::SPLIT_TRAIN)->stats().batches(), 0u);
}

TEST_F(ServiceTest, ACancelledStreamAppliesNothing) {
  Create("tabular", v1::LAYOUT_NC, 2);
  std::unique_ptr<IngestStream> stream = client_->StartIngest("tabular");
  ASSERT_TRUE(stream->Write(v1::SPLIT_TRAIN, Float64Tensor({2, 2}, {1, 2, 3, 4})).ok());
  stream->Cancel();
  EXPECT_EQ(stream->Finish().status().code(), absl::StatusCode::kCancelled);
  // A later stream is the only one counted.
  ASSERT_TRUE(Ingest("tabular", v1::SPLIT_TRAIN, {Float64Tensor({1, 2}, {5, 6})}).ok());
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("tabular", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stats().batches(), 1u);
  EXPECT_EQ(stats->stats().mean(0), 5.0);
}

}  // namespace
}  // namespace normd::testing

namespace normd::testing {
namespace {

// A reader's scheme parameters size nothing before they are checked: 2^32 - 1
// quantiles or a million bucket ranks are refused at once, with no memory spent
// (before, 10^7 quantiles took 23 s and 1.2 GiB, 2^32 - 1 grew past 7 GiB).
TEST_F(ServiceTest, PiecewiseParametersAreCheckedBeforeAnythingIsSized) {
  Create("tab", v1::LAYOUT_NC, 1);
  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({4, 1}, {1, 2, 3, 4})}).ok());
  ASSERT_TRUE(client_->Freeze("tab").ok());
  v1::NormalizeRequest request;
  request.set_dataset("tab");
  *request.mutable_input() = Float64Tensor({1, 1}, {2.5});
  for (const uint32_t n : {0u, 1u, 1001u, 10000000u, 4294967295u}) {
    request.mutable_quantile()->set_n_quantiles(n);
    ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
               absl::StrCat("n_quantiles must be in [2, 1000], got ", n));
  }
  request.mutable_quantile()->set_n_quantiles(1000);
  EXPECT_TRUE(client_->Normalize(request).ok());
  std::vector<double> ranks(100000);
  for (size_t i = 0; i < ranks.size(); ++i) ranks[i] = static_cast<double>(i) / ranks.size();
  *request.mutable_bucketize()->mutable_ranks() = {ranks.begin(), ranks.end()};
  ExpectCode(client_->Normalize(request).status(), absl::StatusCode::kInvalidArgument,
             "bucketize takes 1 to 1000 boundary ranks, got 100000");
  ExpectCode(client_->Denormalize(request).status(), absl::StatusCode::kInvalidArgument,
             "bucketize takes 1 to 1000 boundary ranks, got 100000");
}

// Finite float64 values whose variance or range passes float64's largest number
// cannot be stored as statistics: refused with nothing applied, never stored as NaN.
// Values near the limit whose moments do fit (a constant 1e308) are fitted exactly.
TEST_F(ServiceTest, FiniteValuesWhoseMomentsOverflowAreRefused) {
  Create("tab", v1::LAYOUT_NC, 1);
  const std::string empty = StatsBytes("tab", 0);
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {0, 1e155})}).status(),
             absl::StatusCode::kInvalidArgument,
             "channel 0's values span [0, 1e+155], so wide that their variance or range "
             "overflows float64");
  EXPECT_EQ(StatsBytes("tab", 0), empty);

  ASSERT_TRUE(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({2, 1}, {1e308, 1e308})}).ok());
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats("tab", 0, v1::SPLIT_TRAIN);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stats().mean(0), 1e308);
  EXPECT_EQ(stats->stats().variance(0), 0.0);
  const std::string constant = StatsBytes("tab", 0);

  // Each batch fits alone; with the stored values their range overflows.
  ExpectCode(Ingest("tab", v1::SPLIT_TRAIN, {Float64Tensor({1, 1}, {-1e308})}).status(),
             absl::StatusCode::kInvalidArgument, "with this batch added");
  EXPECT_EQ(StatsBytes("tab", 0), constant);
}

// Bytes that are no protobuf message are the caller's error: INVALID_ARGUMENT naming
// the method, for every method, with or without a token (they were INTERNAL with an
// empty message, logged as server errors).
TEST_F(ServiceTest, RequestsThatDoNotParseAreInvalidArgument) {
  const std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("normd.v1.Normd");
  ASSERT_NE(service, nullptr);
  // A field 1 of wire type 7, which does not exist: no message of any type parses it.
  const std::string garbage("\x0f\xff\xff\xff", 4);
  int unary = 0;
  for (int m = 0; m < service->method_count(); ++m) {
    const google::protobuf::MethodDescriptor* method = service->method(m);
    if (method->client_streaming() || method->server_streaming()) continue;
    ++unary;
    const std::string path = absl::StrCat("/", service->full_name(), "/", method->name());
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    const grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel.get(), grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
        &context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << path << ": " << status.error_message();
    EXPECT_FALSE(status.error_message().empty()) << path;
  }
  EXPECT_GE(unary, 12);
}

}  // namespace
}  // namespace normd::testing
