// normd.v1.Normd over gRPC: each handler decodes its request (messages.h), calls
// the engine and encodes the reply. Admission (the method's role) and the one
// absl::Status -> grpc::Status mapping happen in Serve, around every handler.
#ifndef NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
#define NORMD_SERVER_SERVICE_NORMD_SERVICE_H_

#include <atomic>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "normd/v1/normd.grpc.pb.h"
#include "server/auth/access_policy.h"
#include "server/auth/method_roles.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/normalize.h"
#include "server/observability/server_metrics.h"
#include "server/regions/region_registry.h"
#include "server/service/messages.h"

namespace normd {

// What one client may ask of the server; beyond these, RESOURCE_EXHAUSTED. The
// defaults here are the server's defaults (flags and ServerOptions start from them).
struct RequestLimits {
  // Values in one Ingest batch or Normalize input: bounds the work and the reply
  // memory of a request whatever the message size limit.
  int64_t max_request_elements = int64_t{1} << 28;
  // Ingest streams open at once: each holds a message and O(channels) of state.
  int max_concurrent_ingests = 64;
  // The largest message: a Normalize reply that could not be sent is refused
  // before any work is done.
  int max_message_bytes = 64 << 20;
};

// Who is calling: with tokens, the token (its unique id and its name); without, the
// peer's address.
struct Principal {
  std::string id;
  bool authenticated = false;
  // What the caller owns (its regions) is keyed by this: the token, or "" when the
  // server has no tokens and every caller is trusted alike.
  std::string owner() const { return authenticated ? id : std::string(); }
};

// The shared-memory side of the service: the regions, and the socket on which
// callers hand them over (absent: no shared memory).
struct SharedMemory {
  RegionRegistry* regions = nullptr;
  std::string handoff_socket;
};

class NormdService final : public v1::Normd::Service {
 public:
  // With `access`, every RPC needs a bearer token of a sufficient role; without it,
  // the service is open (for a listener that only trusted callers reach). With
  // `metrics`, what is ingested and normalised is counted there.
  NormdService(DatasetEngine* engine, RequestLimits limits, const AccessPolicy* access = nullptr,
               ServerMetrics* metrics = nullptr, SharedMemory shared_memory = {})
      : engine_(engine),
        normalizer_(engine),
        limits_(limits),
        access_(access),
        metrics_(metrics),
        shared_memory_(std::move(shared_memory)) {}

  // Ingest streams being served now.
  int active_ingests() const { return active_ingests_.load(); }

  grpc::Status CreateDataset(grpc::ServerContext* context, const v1::CreateDatasetRequest* request,
                             v1::DatasetInfo* response) override;
  grpc::Status GetDataset(grpc::ServerContext* context, const v1::GetDatasetRequest* request,
                          v1::DatasetInfo* response) override;
  grpc::Status ListDatasets(grpc::ServerContext* context, const v1::ListDatasetsRequest* request,
                            v1::ListDatasetsResponse* response) override;
  grpc::Status DeleteDataset(grpc::ServerContext* context, const v1::DeleteDatasetRequest* request,
                             v1::DeleteDatasetResponse* response) override;
  grpc::Status Ingest(grpc::ServerContext* context, grpc::ServerReader<v1::IngestRequest>* reader,
                      v1::IngestResponse* response) override;
  grpc::Status Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                      v1::FreezeResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;
  grpc::Status Normalize(grpc::ServerContext* context, const v1::NormalizeRequest* request,
                         v1::NormalizeResponse* response) override;
  grpc::Status RegisterRegion(grpc::ServerContext* context,
                              const v1::RegisterRegionRequest* request,
                              v1::RegionInfo* response) override;
  grpc::Status UnregisterRegion(grpc::ServerContext* context,
                                const v1::UnregisterRegionRequest* request,
                                v1::UnregisterRegionResponse* response) override;
  grpc::Status ListRegions(grpc::ServerContext* context, const v1::ListRegionsRequest* request,
                           v1::ListRegionsResponse* response) override;

 private:
  // Admits the call for `method` (OK when its bearer token has the method's role, or
  // when there is no policy), runs `handler` for the caller, and maps its status to
  // gRPC's.
  grpc::Status Serve(const grpc::ServerContextBase* context, Method method,
                     absl::FunctionRef<absl::Status(const Principal&)> handler) const;
  absl::Status NormalizeInto(const Principal& caller, const v1::NormalizeRequest& request,
                             v1::NormalizeResponse& response) const;
  CallRegions RegionsOf(const Principal& caller) const {
    return CallRegions(shared_memory_.regions, caller.owner());
  }
  absl::StatusOr<RegionRegistry*> Regions() const;

  // The Ingest stream as one transaction: every batch, then one commit.
  absl::Status ReadAndCommitIngest(const Principal& caller, grpc::ServerContext* context,
                                   grpc::ServerReader<v1::IngestRequest>* reader,
                                   v1::IngestResponse* response);
  absl::Status CheckElements(int64_t elements, absl::string_view what) const;

  DatasetEngine* engine_;
  const Normalizer normalizer_;
  const RequestLimits limits_;
  const AccessPolicy* access_;
  ServerMetrics* metrics_;
  const SharedMemory shared_memory_;
  std::atomic<int> active_ingests_ = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
