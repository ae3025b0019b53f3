#include "server/service/normd_service.h"

#include <algorithm>
#include <span>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/service/drift_messages.h"
#include "server/service/grpc_status.h"
#include "server/service/messages.h"
#include "server/service/queries.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

// The request's "authorization" metadata, "" when absent.
absl::string_view AuthorizationOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  return header == metadata.end() ? absl::string_view()
                                  : absl::string_view(header->second.data(), header->second.size());
}

// "ipv4:127.0.0.1:5678" -> "ipv4:127.0.0.1": a caller without a token is its host.
std::string PeerHost(const grpc::ServerContextBase& context) {
  std::string peer = context.peer();
  if (absl::StartsWith(peer, "ipv4:") || absl::StartsWith(peer, "ipv6:")) {
    const size_t colon = peer.rfind(':');
    if (colon != std::string::npos && colon > 5) peer.resize(colon);
  }
  return peer;
}

}  // namespace

absl::StatusOr<Principal> NormdService::Admit(const grpc::ServerContextBase& context,
                                              Method method) const {
  if (access_ == nullptr) {
    return Principal{.id = PeerHost(context), .authenticated = false, .peer = context.peer()};
  }
  NORMD_ASSIGN_OR_RETURN(
      const Caller token,
      access_->Authorize(AuthorizationOf(context), RequiredRole(method), MethodName(method)));
  return Principal{
      .id = token.id, .authenticated = true, .name = token.name, .role = token.role};
}

grpc::Status NormdService::Serve(const grpc::ServerContextBase* context, Method method,
                                 absl::FunctionRef<absl::Status(const Principal&)> handler) const {
  NORMD_ASSIGN_OR_RETURN(const Principal caller, Admit(*context, method), ToGrpcStatus(_));
  return ToGrpcStatus(handler(caller));
}

int NormdService::IngestThreads() {
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

grpc::Status NormdService::CreateDataset(grpc::ServerContext* context,
                                         const v1::CreateDatasetRequest* request,
                                         v1::DatasetInfo* response) {
  return Serve(context, Method::kCreateDataset, [&](const Principal&) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const DatasetSpec spec, DatasetSpecFromProto(request->spec()));
    NORMD_ASSIGN_OR_RETURN(const DatasetInfo info, engine_->Create(spec));
    FillDatasetInfo(info, response);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::GetDataset(grpc::ServerContext* context,
                                      const v1::GetDatasetRequest* request,
                                      v1::DatasetInfo* response) {
  return Serve(context, Method::kGetDataset, [&](const Principal&) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const DatasetInfo info, engine_->Get(request->name()));
    FillDatasetInfo(info, response);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::ListDatasets(grpc::ServerContext* context,
                                        const v1::ListDatasetsRequest* request,
                                        v1::ListDatasetsResponse* response) {
  return Serve(context, Method::kListDatasets, [&](const Principal&) -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size must be in [0, ", kMaxPageSize, "], got ", request->page_size()));
    }
    const size_t limit = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    // One extra tells whether another page follows.
    NORMD_ASSIGN_OR_RETURN(std::vector<DatasetInfo> infos,
                           engine_->List(request->page_token(), limit + 1));
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
  return Serve(context, Method::kDeleteDataset,
               [&](const Principal&) { return engine_->Delete(request->name()); });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* NormdService::Ingest(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return new IngestReactor(ingest_, Admit(*context, Method::kIngest), context, response);
}

grpc::Status NormdService::Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                                  v1::FreezeResponse* response) {
  return Serve(context, Method::kFreeze, [&](const Principal&) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(const std::optional<FreezeGate> gate, FreezeGateFromProto(*request));
    NORMD_ASSIGN_OR_RETURN(const VersionSummary version,
                           engine_->Freeze(request->dataset(), gate ? &*gate : nullptr));
    response->set_version(version.version);
    TimeToProto(version.freeze_time, response->mutable_freeze_time());
    for (const std::string& finding : version.gate_findings) response->add_gate_findings(finding);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::GetStats(grpc::ServerContext* context,
                                    const v1::GetStatsRequest* request,
                                    v1::GetStatsResponse* response) {
  return Serve(context, Method::kGetStats, [&](const Principal&) -> absl::Status {
    return AnswerGetStats(*engine_, *request, response);
  });
}

grpc::Status NormdService::Compare(grpc::ServerContext* context, const v1::CompareRequest* request,
                                   v1::CompareResponse* response) {
  return Serve(context, Method::kCompare, [&](const Principal&) -> absl::Status {
    return AnswerCompare(*engine_, *request, response);
  });
}

grpc::Status NormdService::PinVersion(grpc::ServerContext* context,
                                      const v1::PinVersionRequest* request,
                                      v1::DatasetInfo* response) {
  return Serve(context, Method::kPinVersion, [&](const Principal&) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(
        const DatasetInfo info,
        engine_->PinVersion(request->dataset(), request->version(), request->rollback()));
    FillDatasetInfo(info, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* NormdService::Normalize(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request,
                                                  grpc::ByteBuffer* response) {
  return ServeNormalize(context, request, response, Method::kNormalize);
}

grpc::ServerUnaryReactor* NormdService::Denormalize(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request,
                                                    grpc::ByteBuffer* response) {
  return ServeNormalize(context, request, response, Method::kDenormalize);
}

grpc::ServerUnaryReactor* NormdService::ServeNormalize(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request,
                                                       grpc::ByteBuffer* response, Method method) {
  const bool inverse = method == Method::kDenormalize;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const auto finish = [reactor, response](absl::StatusOr<grpc::ByteBuffer> reply) {
    if (reply.ok()) *response = *std::move(reply);
    reactor->Finish(ToGrpcStatus(reply.status()));
  };
  absl::StatusOr<Principal> caller = Admit(*context, method);
  if (!caller.ok()) {
    finish(caller.status());
    return reactor;
  }
  // Reused by every call on this thread: a request in several slices is gathered
  // here without a fresh allocation (and its page faults) each time.
  thread_local std::vector<std::byte> scratch;
  thread_local std::vector<grpc::Slice> slices;
  NormalizeMessage message;
  absl::StatusOr<std::span<const std::byte>> bytes = ContiguousBytes(*request, scratch, slices);
  const absl::Status parsed = bytes.ok() ? ParseNormalizeRequest(*bytes, message) : bytes.status();
  if (!parsed.ok()) {
    slices.clear();
    finish(parsed);
    return reactor;
  }
  const bool commits = message.fields.has_batchnorm_training() &&
                       message.fields.batchnorm_training().update_statistics();
  if (commits) {
    const absl::Status allowed = caller->Require(
        Role::kWriter,
        absl::StrCat(MethodName(method),
                     " with batchnorm_training.update_statistics (it changes the fit)"));
    if (!allowed.ok()) {
      slices.clear();
      finish(allowed);
      return reactor;
    }
  }
  if (!commits) {  // computation only: done in the reaction
    finish(NormalizeMessageInto(*caller, message, inverse));
    slices.clear();
    return reactor;
  }
  slices.clear();
  // A reaction must not block, and a batch-norm update ends in a synced commit: it
  // runs on the task queue, parsing the request again into bytes of its own.
  ingest_tasks_.Post([this, caller = *std::move(caller), request, finish, inverse] {
    std::vector<std::byte> own_scratch;
    std::vector<grpc::Slice> own_slices;
    NormalizeMessage own;
    absl::StatusOr<std::span<const std::byte>> own_bytes =
        ContiguousBytes(*request, own_scratch, own_slices);
    const absl::Status reparsed =
        own_bytes.ok() ? ParseNormalizeRequest(*own_bytes, own) : own_bytes.status();
    finish(reparsed.ok() ? NormalizeMessageInto(caller, own, inverse) : reparsed);
  });
  return reactor;
}

absl::StatusOr<grpc::ByteBuffer> NormdService::NormalizeMessageInto(const Principal& caller,
                                                                    const NormalizeMessage& message,
                                                                    bool inverse) const {
  const v1::NormalizeRequest& request = message.fields;
  CallRegions regions = RegionsOf(caller);
  NORMD_ASSIGN_OR_RETURN(NormalizeCall call,
                         NormalizeCallFromProto(request, regions, message.tensor_data));
  call.inverse = inverse;
  const int64_t elements = call.input.elements();
  NORMD_RETURN_IF_ERROR(CheckElements(limits_, elements, "the input"));
  const DType output_dtype = call.output_dtype.dtype();
  const size_t size = static_cast<size_t>(elements) * ElementSize(output_dtype);
  const size_t input_size = call.input.view().bytes.size();
  grpc::ByteBuffer reply;
  if (request.has_output_region()) {
    // Straight into the caller's memory: the reply carries no values, so the message
    // size limit does not apply.
    const v1::RegionSlice& slice = request.output_region();
    NORMD_ASSIGN_OR_RETURN(const std::span<std::byte> target,
                           regions.Write(slice, size, "the output"));
    if (request.input().has_region() &&
        regions.Overlap(request.input().region(), input_size, slice, size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the output (", size, " bytes at offset ", slice.offset(), " of region \"",
                       slice.name(), "\") overlaps the input (", input_size, " bytes at offset ",
                       request.input().region().offset(), " of region \"",
                       request.input().region().name(), "\"); give the output bytes of its own"));
    }
    NORMD_ASSIGN_OR_RETURN(const uint64_t version, router_.Normalize(call, target));
    v1::NormalizeResponse response;
    v1::Tensor* output = response.mutable_output();
    output->mutable_shape()->CopyFrom(request.input().shape());
    output->set_dtype(DTypeToProto(output_dtype));
    *output->mutable_region() = slice;
    response.set_version(version);
    grpc::Slice serialized(response.SerializeAsString());
    reply = grpc::ByteBuffer(&serialized, 1);
  } else {
    // The reply's shape and framing take a few bytes besides the values.
    constexpr size_t kReplyOverhead = 4096;
    if (size + kReplyOverhead > static_cast<size_t>(limits_.max_message_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the reply would hold ", size, " bytes of values (", elements, " ",
          DTypeName(output_dtype), "), more than fit in a ", limits_.max_message_bytes,
          "-byte message (--max_message_bytes): send fewer samples per request, ask for a "
          "narrower output_dtype, or write the output to a shared-memory region"));
    }
    // The kernels write straight into the buffer gRPC sends, not zero-filled first.
    NormalizeReply values(request.input().shape(), DTypeToProto(output_dtype), size);
    NORMD_ASSIGN_OR_RETURN(const uint64_t version, router_.Normalize(call, values.values()));
    reply = values.Release(version);
  }
  if (metrics_ != nullptr) metrics_->Normalized(elements, static_cast<int64_t>(size));
  return reply;
}

absl::StatusOr<RegionRegistry*> NormdService::Regions() const {
  if (shared_memory_.regions == nullptr) {
    return absl::FailedPreconditionError(
        "this server has no shared memory (see its --region_socket)");
  }
  return shared_memory_.regions;
}

grpc::Status NormdService::RegisterRegion(grpc::ServerContext* context,
                                          const v1::RegisterRegionRequest* request,
                                          v1::RegionInfo* response) {
  return Serve(context, Method::kRegisterRegion, [&](const Principal& caller) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(RegionRegistry* const registry, Regions());
    NORMD_ASSIGN_OR_RETURN(const Principal::RegionOwner owner, caller.Regions());
    NORMD_ASSIGN_OR_RETURN(const RegionSummary region,
                           registry->Claim(owner.key, request->name(), request->claim(), owner.uid));
    FillRegionInfo(region, response);
    return absl::OkStatus();
  });
}

grpc::Status NormdService::UnregisterRegion(grpc::ServerContext* context,
                                            const v1::UnregisterRegionRequest* request,
                                            v1::UnregisterRegionResponse*) {
  return Serve(context, Method::kUnregisterRegion, [&](const Principal& caller) -> absl::Status {
    NORMD_ASSIGN_OR_RETURN(RegionRegistry* const registry, Regions());
    NORMD_ASSIGN_OR_RETURN(const Principal::RegionOwner owner, caller.Regions());
    return registry->Unregister(owner.key, request->name());
  });
}

grpc::Status NormdService::ListRegions(grpc::ServerContext* context, const v1::ListRegionsRequest*,
                                       v1::ListRegionsResponse* response) {
  return Serve(context, Method::kListRegions, [&](const Principal& caller) -> absl::Status {
    if (shared_memory_.regions == nullptr) return absl::OkStatus();
    // A caller with no regions here (another host's) still learns the socket's path.
    if (const absl::StatusOr<Principal::RegionOwner> owner = caller.Regions(); owner.ok()) {
      for (const RegionSummary& region : shared_memory_.regions->List(owner->key)) {
        FillRegionInfo(region, response->add_regions());
      }
    }
    response->set_handoff_socket(shared_memory_.handoff_socket);
    return absl::OkStatus();
  });
}

}  // namespace normd
