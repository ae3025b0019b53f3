// libFuzzer: arbitrary bytes as normd requests, through the service in process,
// against a real engine with a real RocksDB in a temporary directory. The first
// byte picks the request (CreateDataset, Ingest, Normalize); the rest is parsed as
// its protobuf. Every request must end in a status, never a crash, a sanitizer
// report or a reply of the wrong size; datasets with frozen versions are set up
// once so that Normalize reaches the kernels.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <variant>

#include "grpcpp/server_context.h"
#include "server/engine/dataset_engine.h"
#include "server/service/messages.h"
#include "server/service/normd_service.h"
#include "server/store/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

// Small limits keep every input cheap, so the fuzzer explores shapes, not sizes.
constexpr RequestLimits kLimits{
    .max_request_elements = 1 << 16, .max_concurrent_ingests = 4, .max_message_bytes = 1 << 20};

v1::Tensor Tensor(std::initializer_list<int64_t> shape) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_FLOAT32);
  int64_t n = 1;
  for (int64_t d : shape) {
    tensor.add_shape(d);
    n *= d;
  }
  std::string bytes(static_cast<size_t>(n) * 4, '\0');
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(i % 17) * 0.5f - 3.0f;
    std::memcpy(bytes.data() + i * 4, &v, 4);
  }
  tensor.set_data(std::move(bytes));
  return tensor;
}

class Fixture {
 public:
  Fixture() {
    auto store = RocksDbStore::Open(dir_.path() + "/db");
    if (!store.ok()) std::abort();
    auto engine = DatasetEngine::Open(*std::move(store), nullptr);
    if (!engine.ok()) std::abort();
    engine_ = *std::move(engine);
    service_ = std::make_unique<NormdService>(engine_.get(), kLimits);
    Fit("nc", v1::LAYOUT_NC, 3, Tensor({5, 3}), false);
    Fit("nchw", v1::LAYOUT_NCHW, 3, Tensor({2, 3, 4, 4}), false);
    Fit("nhwc", v1::LAYOUT_NHWC, 4, Tensor({2, 3, 3, 4}), true);
  }

  NormdService& service() { return *service_; }
  DatasetEngine& engine() { return *engine_; }

 private:
  void Fit(const std::string& name, v1::Layout layout, int64_t channels, v1::Tensor batch,
           bool running) {
    v1::DatasetSpec spec;
    spec.set_name(name);
    spec.set_layout(layout);
    spec.set_channels(channels);
    if (running) spec.mutable_running_average()->set_momentum(0.1);
    absl::StatusOr<DatasetSpec> parsed = DatasetSpecFromProto(spec);
    if (!parsed.ok() || !engine_->Create(*parsed).ok()) std::abort();
    absl::StatusOr<IngestTransaction> transaction = engine_->BeginIngest(name);
    absl::StatusOr<TensorView> view = TensorViewOf(batch, "batch");
    absl::StatusOr<ValidatedTensor> validated =
        view.ok() ? ValidateTensor(*view) : absl::StatusOr<ValidatedTensor>(view.status());
    if (!transaction.ok() || !validated.ok() || !transaction->Add(Split::kTrain, *validated).ok() ||
        !transaction->Commit().ok() || !engine_->Freeze(name).ok()) {
      std::abort();
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<DatasetEngine> engine_;
  std::unique_ptr<NormdService> service_;
};

void CheckReplySize(const v1::NormalizeRequest& request, const v1::NormalizeResponse& response) {
  size_t elements = 1;
  for (int64_t d : request.input().shape()) elements *= static_cast<size_t>(d);
  const v1::DType dtype = response.output().dtype();
  const size_t item = dtype == v1::DTYPE_FLOAT64 ? 8 : dtype == v1::DTYPE_FLOAT32 ? 4 : 2;
  if (response.output().data().size() != elements * item) std::abort();
}

}  // namespace
}  // namespace normd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace normd;
  static Fixture fixture_storage;
  Fixture* fixture = &fixture_storage;
  if (size == 0) return 0;
  const uint8_t which = data[0] % 4;
  const void* body = data + 1;
  const int body_size = static_cast<int>(size - 1);
  grpc::ServerContext context;
  if (which == 3) {
    // Every other unary method, from the bytes gRPC would hand protobuf: byte 1 picks
    // it. Whatever parses must be answered, never crash the server or a sanitizer.
    if (body_size < 1) return 0;
    const uint8_t method = data[1] % 9;
    const void* request_bytes = data + 2;
    const int request_size = body_size - 1;
    const auto serve = [&](auto request, auto response, auto handler) {
      if (!request.ParseFromArray(request_bytes, request_size)) return;
      (void)(fixture->service().*handler)(&context, &request, &response);
    };
    switch (method) {
      case 0: serve(v1::GetDatasetRequest(), v1::DatasetInfo(), &NormdService::GetDataset); break;
      case 1:
        serve(v1::ListDatasetsRequest(), v1::ListDatasetsResponse(), &NormdService::ListDatasets);
        break;
      case 2: serve(v1::FreezeRequest(), v1::FreezeResponse(), &NormdService::Freeze); break;
      case 3: serve(v1::GetStatsRequest(), v1::GetStatsResponse(), &NormdService::GetStats); break;
      case 4: serve(v1::CompareRequest(), v1::CompareResponse(), &NormdService::Compare); break;
      case 5:
        serve(v1::PinVersionRequest(), v1::DatasetInfo(), &NormdService::PinVersion);
        break;
      case 6:
        serve(v1::ListRegionsRequest(), v1::ListRegionsResponse(), &NormdService::ListRegions);
        break;
      case 7:
        serve(v1::RegisterRegionRequest(), v1::RegionInfo(), &NormdService::RegisterRegion);
        break;
      default:
        serve(v1::UnregisterRegionRequest(), v1::UnregisterRegionResponse(),
              &NormdService::UnregisterRegion);
        break;
    }
    return 0;
  }
  if (which == 0) {
    v1::CreateDatasetRequest request;
    if (!request.ParseFromArray(body, body_size)) return 0;
    // Names made by the fuzzer are created and deleted again, so the store stays small.
    v1::DatasetInfo info;
    if (fixture->service().CreateDataset(&context, &request, &info).ok()) {
      v1::DeleteDatasetRequest del;
      del.set_name(request.spec().name());
      v1::DeleteDatasetResponse deleted;
      if (!fixture->service().DeleteDataset(&context, &del, &deleted).ok()) std::abort();
    }
  } else if (which == 1) {
    // The wire-level parse the server's stream takes must agree with protobuf's.
    IngestMessage message;
    const absl::Status parsed =
        ParseIngestRequest(std::span(reinterpret_cast<const std::byte*>(body), body_size), message);
    v1::IngestRequest request;
    const bool protobuf_parses = request.ParseFromArray(body, static_cast<int>(body_size));
    if (!parsed.ok()) {
      if (protobuf_parses) std::abort();
      return 0;
    }
    if (!protobuf_parses) {
      // Only summaries, parsed one at a time as they are applied, may hide what makes
      // protobuf refuse the whole: taking them all must then be refused, or be what
      // protobuf's limits alone (its nesting depth) refused.
      if (!message.summaries.present()) std::abort();
      v1::MomentsSummary entry;
      for (;;) {
        absl::StatusOr<bool> next = message.summaries.Next(entry);
        if (!next.ok() || !*next) break;
      }
      return 0;
    }
    v1::IngestRequest rebuilt = message.fields;
    // A batch's data followed by summaries: protobuf keeps the one that came last (the
    // payload is a oneof) while the splitter has taken both; the decoder refuses the pair.
    const bool both = (message.tensor_data.has_value() || rebuilt.has_batch()) &&
                      message.summaries.present();
    if (message.tensor_data.has_value() && !both) {
      rebuilt.mutable_batch()->set_data(message.tensor_data->data(), message.tensor_data->size());
    }
    bool refused = false;
    if (message.summaries.present() && !both) {
      // The summaries, taken one by one, are protobuf's (less the unknown fields
      // beside them, which protobuf keeps and the server skips); the server may refuse
      // entries framed as groups, which protobuf keeps as unknown fields.
      v1::MomentsSummaries* summaries = rebuilt.mutable_summaries();
      SummaryEntries entries = message.summaries;
      v1::MomentsSummary entry;
      for (;;) {
        absl::StatusOr<bool> next = entries.Next(entry);
        if (!next.ok()) {
          refused = true;
          break;
        }
        if (!*next) break;
        *summaries->add_summaries() = entry;
      }
      request.mutable_summaries()->DiscardUnknownFields();
      rebuilt.mutable_summaries()->DiscardUnknownFields();
    }
    if (!both && !refused && rebuilt.SerializeAsString() != request.SerializeAsString()) {
      std::abort();
    }
    // One batch through a transaction that is never committed (the service's stream
    // loop needs a live call): validation and the fit kernels, statistics untouched.
    absl::StatusOr<IngestTransaction> transaction =
        fixture->engine().BeginIngest(request.dataset());
    // No region is ever registered here: a reference to one is refused, not followed.
    CallRegions regions(nullptr, Principal{});
    absl::StatusOr<IngestBatch> batch = IngestBatchFromProto(message, regions);
    if (!transaction.ok() || !batch.ok()) return 0;
    if (both) std::abort();  // must have been refused
    if (auto* const* entries = std::get_if<SummaryEntries*>(&batch->payload)) {
      v1::MomentsSummary entry;
      for (size_t i = 0;; ++i) {
        absl::StatusOr<bool> next = (*entries)->Next(entry);
        if (!next.ok() || !*next) break;
        absl::StatusOr<MomentsSummary> summary = MomentsSummaryFromProto(entry);
        if (!summary.ok()) break;
        BatchIdentity identity = batch->identity;
        identity.sequence += i;
        if (!transaction->AddSummary(batch->split, *summary, identity).ok()) break;
      }
      return 0;
    }
    const auto& tensor = std::get<ValidatedTensor>(batch->payload);
    if (tensor.elements() > kLimits.max_request_elements) return 0;
    (void)transaction->Add(batch->split, tensor, batch->identity);
  } else {
    // The raw path the server takes: the wire-level parse (which must agree with
    // protobuf's), the whole call, and a reply protobuf must read back.
    NormalizeMessage message;
    const absl::Status parsed = ParseNormalizeRequest(
        std::span(reinterpret_cast<const std::byte*>(body), body_size), message);
    v1::NormalizeRequest whole;
    const bool protobuf_parses = whole.ParseFromArray(body, static_cast<int>(body_size));
    if (parsed.ok() != protobuf_parses) std::abort();
    if (!parsed.ok()) return 0;
    if (message.tensor_data.has_value()) {
      message.fields.mutable_input()->set_data(message.tensor_data->data(),
                                               message.tensor_data->size());
    }
    if (message.fields.SerializeAsString() != whole.SerializeAsString()) std::abort();
    // Denormalize takes the same messages: half the inputs go through it.
    const bool inverse = body_size % 2 == 1;
    absl::StatusOr<grpc::ByteBuffer> reply =
        fixture->service().NormalizeMessageInto({}, message, inverse);
    if (reply.ok()) {
      std::vector<grpc::Slice> slices;
      if (!reply->Dump(&slices).ok()) std::abort();
      std::string bytes;
      for (const grpc::Slice& slice : slices) {
        bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      v1::NormalizeResponse response;
      if (!response.ParseFromString(bytes)) std::abort();
      CheckReplySize(whole, response);
    }
  }
  return 0;
}
