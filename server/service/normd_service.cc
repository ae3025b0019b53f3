#include "server/service/normd_service.h"

#include <chrono>
#include <span>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/service/grpc_status.h"
#include "server/service/messages.h"
#include "server/wire/core_proto.h"

namespace normd {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

// The request's "authorization" metadata, "" when absent.
absl::string_view AuthorizationOf(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  return header == metadata.end() ? absl::string_view()
                                  : absl::string_view(header->second.data(), header->second.size());
}

}  // namespace

grpc::Status NormdService::Serve(const grpc::ServerContext* context, Method method,
                                 absl::FunctionRef<absl::Status()> handler) const {
  if (access_ != nullptr) {
    NORMD_RETURN_IF_ERROR(
        access_->Authorize(AuthorizationOf(*context), RequiredRole(method), MethodName(method)),
        ToGrpcStatus(_));
  }
  return ToGrpcStatus(handler());
}

grpc::Status NormdService::CreateDataset(grpc::ServerContext* context,
                                         const v1::CreateDatasetRequest* request,
                                         v1::DatasetInfo* response) {
  return Serve(context, Method::kCreateDataset, [&]() -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const DatasetSpec spec, DatasetSpecFromProto(request->spec()));
    NORMD_ASSIGN_OR_RETURN(const DatasetInfo info, engine_->Create(spec));
    FillDatasetInfo(info, response);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::GetDataset(grpc::ServerContext* context,
                                      const v1::GetDatasetRequest* request,
                                      v1::DatasetInfo* response) {
  return Serve(context, Method::kGetDataset, [&]() -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const DatasetInfo info, engine_->Get(request->name()));
    FillDatasetInfo(info, response);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::ListDatasets(grpc::ServerContext* context,
                                        const v1::ListDatasetsRequest* request,
                                        v1::ListDatasetsResponse* response) {
  return Serve(context, Method::kListDatasets, [&]() -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size must be in [0, ", kMaxPageSize, "], got ", request->page_size()));
    }
    const size_t limit = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    // One extra tells whether another page follows.
    std::vector<DatasetInfo> infos = engine_->List(request->page_token(), limit + 1);
    const bool more = infos.size() > limit;
    if (more) infos.resize(limit);
    for (const DatasetInfo& info : infos) FillDatasetInfo(info, response->add_datasets());
    if (more) response->set_next_page_token(infos.back().spec.name);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::DeleteDataset(grpc::ServerContext* context,
                                         const v1::DeleteDatasetRequest* request,
                                         v1::DeleteDatasetResponse*) {
  return Serve(context, Method::kDeleteDataset, [&] { return engine_->Delete(request->name()); });
}

absl::Status NormdService::CheckElements(int64_t elements, absl::string_view what) const {
  if (elements <= limits_.max_request_elements) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " has ", elements, " values; this server takes at most ", limits_.max_request_elements,
      " per request (--max_request_elements): split it"));
}

grpc::Status NormdService::Ingest(grpc::ServerContext* context,
                                  grpc::ServerReader<v1::IngestRequest>* reader,
                                  v1::IngestResponse* response) {
  return Serve(context, Method::kIngest,
               [&] { return ReadAndCommitIngest(context, reader, response); });
}

absl::Status NormdService::ReadAndCommitIngest(grpc::ServerContext* context,
                                               grpc::ServerReader<v1::IngestRequest>* reader,
                                               v1::IngestResponse* response) {
  const int open = active_ingests_.fetch_add(1) + 1;
  absl::Cleanup release = [this] { active_ingests_.fetch_sub(1); };
  if (open > limits_.max_concurrent_ingests) {
    return absl::ResourceExhaustedError(
        absl::StrCat("this server already serves ", limits_.max_concurrent_ingests,
                     " Ingest streams (--max_concurrent_ingests); retry when one has finished"));
  }
  v1::IngestRequest request;
  if (!reader->Read(&request)) {
    return absl::InvalidArgumentError(
        "the Ingest stream held no batch; expected at least one IngestRequest");
  }
  NORMD_ASSIGN_OR_RETURN(IngestTransaction transaction, engine_->BeginIngest(request.dataset()));
  uint64_t index = 0;
  int64_t bytes = 0;
  const auto reject = [&](const absl::Status& status) {
    return absl::Status(
        status.code(),
        absl::StrCat("batch ", index,
                     " rejected, nothing from this stream was applied: ", status.message()));
  };
  do {
    if (context->IsCancelled()) {
      return absl::CancelledError("the client cancelled the Ingest stream");
    }
    if (!request.dataset().empty() && request.dataset() != transaction.dataset()) {
      return reject(absl::InvalidArgumentError(absl::StrCat(
          "the stream began with dataset \"", transaction.dataset(), "\" but this batch names \"",
          request.dataset(), "\"; one stream feeds one dataset")));
    }
    NORMD_ASSIGN_OR_RETURN(const IngestBatch batch, IngestBatchFromProto(request), reject(_));
    NORMD_RETURN_IF_ERROR(CheckElements(batch.batch.elements(), "the batch"), reject(_));
    NORMD_RETURN_IF_ERROR(transaction.Add(batch.split, batch.batch, batch.identity), reject(_));
    ++index;
    bytes += static_cast<int64_t>(request.batch().data().size());
  } while (reader->Read(&request));
  // A stream the client cancelled (its batch iterator failed, it gave up) or whose
  // deadline passed also ends the reads; only a stream closed normally is committed.
  if (std::chrono::system_clock::now() >= context->deadline()) {
    return absl::DeadlineExceededError(
        "the Ingest stream's deadline passed; nothing from it was applied");
  }
  if (context->IsCancelled()) {
    return absl::CancelledError(
        "the client cancelled the Ingest stream; nothing from it was applied");
  }
  NORMD_ASSIGN_OR_RETURN(const DatasetTotals totals, transaction.Commit());
  FillIngestResponse(transaction, totals, response);
  if (metrics_ != nullptr) {
    metrics_->Ingested(static_cast<int64_t>(transaction.delta().batches()),
                       static_cast<int64_t>(transaction.duplicates()),
                       static_cast<int64_t>(transaction.delta().totals().values), bytes);
  }
  return absl::OkStatus();
}

grpc::Status NormdService::Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                                  v1::FreezeResponse* response) {
  return Serve(context, Method::kFreeze, [&]() -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const VersionSummary version, engine_->Freeze(request->dataset()));
    response->set_version(version.version);
    TimeToProto(version.freeze_time, response->mutable_freeze_time());
    return absl::OkStatus();
  });
}

grpc::Status NormdService::GetStats(grpc::ServerContext* context,
                                    const v1::GetStatsRequest* request,
                                    v1::GetStatsResponse* response) {
  return Serve(context, Method::kGetStats, [&]() -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const Split split, SplitFromProto(request->split(), true));
    NORMD_ASSIGN_OR_RETURN(const StatisticsResult result,
                           engine_->GetStatistics(request->dataset(), request->version()));
    response->set_dataset(request->dataset());
    response->set_version(result.version);
    response->set_split(SplitToProto(split));
    FillStatistics(*result.stats, split, response->mutable_stats());
    return absl::OkStatus();
  });
}

grpc::Status NormdService::Normalize(grpc::ServerContext* context,
                                     const v1::NormalizeRequest* request,
                                     v1::NormalizeResponse* response) {
  return Serve(context, Method::kNormalize, [&]() -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const NormalizeCall call, NormalizeCallFromProto(*request));
    const int64_t elements = call.input.elements();
    NORMD_RETURN_IF_ERROR(CheckElements(elements, "the input"));
    const DType output_dtype = call.output_dtype.dtype();
    const size_t size = static_cast<size_t>(elements) * ElementSize(output_dtype);
    // The reply's shape and framing take a few bytes besides the values.
    constexpr size_t kReplyOverhead = 4096;
    if (size + kReplyOverhead > static_cast<size_t>(limits_.max_message_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the reply would hold ", size, " bytes of values (", elements, " ",
          DTypeName(output_dtype), "), more than fit in a ", limits_.max_message_bytes,
          "-byte message (--max_message_bytes): send fewer samples per request or ask for a "
          "narrower output_dtype"));
    }
    v1::Tensor* output = response->mutable_output();
    output->mutable_shape()->CopyFrom(request->input().shape());
    output->set_dtype(DTypeToProto(output_dtype));
    // The kernels write straight into the reply's bytes, which are not zero-filled
    // first. (libstdc++ 12 passes the capacity, not the requested size, as the second
    // argument.)
    absl::StatusOr<uint64_t> version;
    output->mutable_data()->resize_and_overwrite(size, [&](char* data, size_t) {
      version = normalizer_.Normalize(call, std::as_writable_bytes(std::span<char>(data, size)));
      return version.ok() ? size : 0;
    });
    NORMD_RETURN_IF_ERROR(version);
    response->set_version(*version);
    if (metrics_ != nullptr) metrics_->Normalized(elements, static_cast<int64_t>(size));
    return absl::OkStatus();
  });
}

}  // namespace normd
