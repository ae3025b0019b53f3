// Translation between normd.v1 messages and the engine's types: requests decoded
// (and validated, once) into engine calls, engine results encoded into replies.
#ifndef NORMD_SERVER_SERVICE_MESSAGES_H_
#define NORMD_SERVER_SERVICE_MESSAGES_H_

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "normd/v1/normd.pb.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/ingest_transaction.h"
#include "server/engine/normalize.h"

namespace normd {

// One Ingest message, decoded: `batch` views the message's bytes and `identity` its
// writer id, so both live as long as the message.
struct IngestBatch {
  Split split;
  ValidatedTensor batch;
  BatchIdentity identity;
};

absl::StatusOr<IngestBatch> IngestBatchFromProto(const v1::IngestRequest& request);

// The whole call; its input views the request's bytes.
absl::StatusOr<NormalizeCall> NormalizeCallFromProto(const v1::NormalizeRequest& request);

void FillTotals(const DatasetTotals& totals,
                google::protobuf::RepeatedPtrField<v1::SplitTotals>* out);
void FillDatasetInfo(const DatasetInfo& info, v1::DatasetInfo* out);
void FillStatistics(const DatasetStatistics& stats, Split split, v1::Statistics* out);
// The reply to a committed Ingest stream.
void FillIngestResponse(const IngestTransaction& transaction, const DatasetTotals& totals,
                        v1::IngestResponse* out);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_MESSAGES_H_
