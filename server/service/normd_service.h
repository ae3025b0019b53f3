// normd.v1.Normd over gRPC: each handler decodes its request (messages.h), calls
// the engine and encodes the reply. Admission (the method's role) and the one
// absl::Status -> grpc::Status mapping happen in Serve, around every handler.
#ifndef NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
#define NORMD_SERVER_SERVICE_NORMD_SERVICE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "normd/v1/normd.grpc.pb.h"
#include "server/auth/access_policy.h"
#include "server/auth/method_roles.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/normalize_router.h"
#include "server/observability/server_metrics.h"
#include "server/regions/region_registry.h"
#include "server/service/ingest_reactor.h"
#include "server/service/ingest_slots.h"
#include "server/service/messages.h"
#include "server/service/principal.h"
#include "server/service/request_limits.h"
#include "common/task_queue.h"
#include "server/service/tensor_wire.h"

namespace normd {

// The shared-memory side of the service: the regions, and the socket on which
// callers hand them over (absent: no shared memory).
struct SharedMemory {
  RegionRegistry* regions = nullptr;
  std::string handoff_socket;
};

// Ingest and Normalize are served by the callback API on raw bytes (an idle stream
// holds no thread; tensor_wire.h: the tensor is never copied by protobuf), the other
// methods by the synchronous API.
class NormdService final : public v1::Normd::WithRawCallbackMethod_Denormalize<
                               v1::Normd::WithRawCallbackMethod_Normalize<
                                   v1::Normd::WithRawCallbackMethod_Ingest<v1::Normd::Service>>> {
 public:
  // With `access`, every RPC needs a bearer token of a sufficient role; without it,
  // the service is open (for a listener that only trusted callers reach). With
  // `metrics`, what is ingested and normalised is counted there.
  NormdService(DatasetEngine* engine, RequestLimits limits, const AccessPolicy* access = nullptr,
               ServerMetrics* metrics = nullptr, SharedMemory shared_memory = {})
      : engine_(engine),
        router_(engine),
        limits_(limits),
        access_(access),
        metrics_(metrics),
        shared_memory_(std::move(shared_memory)),
        ingest_slots_({.max_streams = limits.max_concurrent_ingests,
                       .max_streams_per_caller = limits.max_ingests_per_caller,
                       .idle_timeout = limits.ingest_idle_timeout}),
        ingest_tasks_(IngestThreads()),
        ingest_{engine, shared_memory_.regions, metrics, &ingest_slots_, &ingest_tasks_, limits} {}

  // Ingest streams being served now.
  int active_ingests() const { return ingest_slots_.active(); }

  // Normalize (or with `inverse`, Denormalize) past admission and parsing: decode,
  // run, encode the reply. The fuzzer drives it.
  absl::StatusOr<grpc::ByteBuffer> NormalizeMessageInto(const Principal& caller,
                                                        const NormalizeMessage& message,
                                                        bool inverse = false) const;

  grpc::Status CreateDataset(grpc::ServerContext* context, const v1::CreateDatasetRequest* request,
                             v1::DatasetInfo* response) override;
  grpc::Status GetDataset(grpc::ServerContext* context, const v1::GetDatasetRequest* request,
                          v1::DatasetInfo* response) override;
  grpc::Status ListDatasets(grpc::ServerContext* context, const v1::ListDatasetsRequest* request,
                            v1::ListDatasetsResponse* response) override;
  grpc::Status DeleteDataset(grpc::ServerContext* context, const v1::DeleteDatasetRequest* request,
                             v1::DeleteDatasetResponse* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* Ingest(grpc::CallbackServerContext* context,
                                                    grpc::ByteBuffer* response) override;
  grpc::Status Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                      v1::FreezeResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;
  grpc::Status Compare(grpc::ServerContext* context, const v1::CompareRequest* request,
                       v1::CompareResponse* response) override;
  grpc::Status PinVersion(grpc::ServerContext* context, const v1::PinVersionRequest* request,
                          v1::DatasetInfo* response) override;
  grpc::ServerUnaryReactor* Normalize(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Denormalize(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::Status RegisterRegion(grpc::ServerContext* context,
                              const v1::RegisterRegionRequest* request,
                              v1::RegionInfo* response) override;
  grpc::Status UnregisterRegion(grpc::ServerContext* context,
                                const v1::UnregisterRegionRequest* request,
                                v1::UnregisterRegionResponse* response) override;
  grpc::Status ListRegions(grpc::ServerContext* context, const v1::ListRegionsRequest* request,
                           v1::ListRegionsResponse* response) override;

 private:
  // The caller, when its bearer token has the method's role (or there is no policy).
  absl::StatusOr<Principal> Admit(const grpc::ServerContextBase& context, Method method) const;
  // Admits the call for `method`, runs `handler` for the caller, and maps its status
  // to gRPC's.
  grpc::Status Serve(const grpc::ServerContextBase* context, Method method,
                     absl::FunctionRef<absl::Status(const Principal&)> handler) const;
  CallRegions RegionsOf(const Principal& caller) const {
    return CallRegions(shared_memory_.regions, caller);
  }
  absl::StatusOr<RegionRegistry*> Regions() const;
  // Normalize and Denormalize, on raw bytes.
  grpc::ServerUnaryReactor* ServeNormalize(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response, Method method);

  static int IngestThreads();

  DatasetEngine* engine_;
  const NormalizeRouter router_;
  const RequestLimits limits_;
  const AccessPolicy* access_;
  ServerMetrics* metrics_;
  const SharedMemory shared_memory_;
  IngestSlots ingest_slots_;
  TaskQueue ingest_tasks_;
  const IngestServices ingest_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
