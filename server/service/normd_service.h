// normd.v1.Normd over gRPC: parses and validates requests, calls the engine and
// the core, fills replies. Holds no state of its own.
#ifndef NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
#define NORMD_SERVER_SERVICE_NORMD_SERVICE_H_

#include "normd/v1/normd.grpc.pb.h"
#include "server/engine/dataset_engine.h"

namespace normd {

class NormdService final : public v1::Normd::Service {
 public:
  // `pool` (may be null) splits large Normalize requests; it must outlive the service.
  NormdService(DatasetEngine* engine, WorkerPool* pool) : engine_(engine), pool_(pool) {}

  grpc::Status CreateDataset(grpc::ServerContext* context, const v1::CreateDatasetRequest* request,
                             v1::DatasetInfo* response) override;
  grpc::Status GetDataset(grpc::ServerContext* context, const v1::GetDatasetRequest* request,
                          v1::DatasetInfo* response) override;
  grpc::Status ListDatasets(grpc::ServerContext* context, const v1::ListDatasetsRequest* request,
                            v1::ListDatasetsResponse* response) override;
  grpc::Status DeleteDataset(grpc::ServerContext* context, const v1::DeleteDatasetRequest* request,
                             v1::DeleteDatasetResponse* response) override;
  grpc::Status Ingest(grpc::ServerContext* context,
                      grpc::ServerReader<v1::IngestRequest>* reader,
                      v1::IngestResponse* response) override;
  grpc::Status Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                      v1::FreezeResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;
  grpc::Status Normalize(grpc::ServerContext* context, const v1::NormalizeRequest* request,
                         v1::NormalizeResponse* response) override;

 private:
  DatasetEngine* engine_;
  WorkerPool* pool_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_NORMD_SERVICE_H_
