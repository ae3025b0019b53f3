// Translation between normd.v1 messages and the engine's types: requests decoded
// (and validated, once) into engine calls, engine results encoded into replies.
#ifndef NORMD_SERVER_SERVICE_MESSAGES_H_
#define NORMD_SERVER_SERVICE_MESSAGES_H_

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/distribution_query.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "normd/v1/normd.pb.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/ingest_transaction.h"
#include "server/engine/normalize_router.h"
#include "server/regions/region_registry.h"
#include "server/service/principal.h"
#include "server/service/tensor_wire.h"

namespace normd {

// The shared-memory regions one call reads or writes, resolved for its caller and
// held (mapped) until the call ends.
class CallRegions {
 public:
  // `registry` is null when the server has no shared memory. The caller's regions
  // are found by its owner key, resolved once, on the first slice (it may cost a
  // read of the kernel's socket table).
  CallRegions(const RegionRegistry* registry, Principal caller)
      : registry_(registry), caller_(std::move(caller)) {}

  // The `length` bytes `slice` names; `what` names the tensor in errors.
  absl::StatusOr<std::span<const std::byte>> Read(const v1::RegionSlice& slice, uint64_t length,
                                                  absl::string_view what);
  absl::StatusOr<std::span<std::byte>> Write(const v1::RegionSlice& slice, uint64_t length,
                                             absl::string_view what);
  // Whether two slices already resolved share any byte (the same memfd, overlapping
  // ranges).
  bool Overlap(const v1::RegionSlice& a, uint64_t a_length, const v1::RegionSlice& b,
               uint64_t b_length) const;

 private:
  absl::StatusOr<std::shared_ptr<const SharedRegion>> Find(const v1::RegionSlice& slice);

  const RegionRegistry* registry_;
  const Principal caller_;
  std::optional<std::string> owner_;
  // By name: a stream's batches from one region look it up once.
  absl::flat_hash_map<std::string, std::shared_ptr<const SharedRegion>> held_;
};

// A wire tensor's values, inline or in a region, validated once. `field` names it
// in errors. `inline_data`, when given, stands for tensor.data (bytes viewed where
// they arrived rather than copied into the message).
absl::StatusOr<ValidatedTensor> TensorFromProto(
    const v1::Tensor& tensor, absl::string_view field, CallRegions& regions,
    std::optional<std::span<const std::byte>> inline_data = std::nullopt);

// One Ingest message, decoded: a batch views the message's bytes (or its region),
// summaries are the message's own (parsed one at a time as they are applied), and
// `identity` views its writer id, so all live as long as the message.
struct IngestBatch {
  Split split;
  // A batch, or the summaries of consecutive batches (identity.sequence, + 1, ...).
  std::variant<ValidatedTensor, SummaryEntries*> payload;
  BatchIdentity identity;
  std::optional<ValidatedTensor> weights;  // the batch's, checked against it by the core
  // The batch's values are in the caller's shared memory, which it may rewrite
  // while they are read.
  bool in_region = false;
};

absl::StatusOr<IngestBatch> IngestBatchFromProto(IngestMessage& message, CallRegions& regions);

// The whole call; its input views the request's bytes (or `input_data`, or its
// region).
absl::StatusOr<NormalizeCall> NormalizeCallFromProto(
    const v1::NormalizeRequest& request, CallRegions& regions,
    std::optional<std::span<const std::byte>> input_data = std::nullopt);

void FillRegionInfo(const RegionSummary& region, v1::RegionInfo* out);

void FillTotals(const DatasetTotals& totals,
                google::protobuf::RepeatedPtrField<v1::SplitTotals>* out);
void FillDatasetInfo(const DatasetInfo& info, v1::DatasetInfo* out);
void FillStatistics(const DatasetStatistics& stats, Split split, v1::Statistics* out);
// The same without a running average (traffic has none).
void FillSplitStatistics(const SplitStatistics& split, v1::Statistics* out);

DistributionQuery DistributionQueryFromProto(const v1::GetStatsRequest& request);
void FillDistributions(std::span<const ChannelDistribution> distributions, v1::Statistics* out);
// The reply to a committed Ingest stream.
void FillIngestResponse(const IngestTransaction& transaction, const DatasetTotals& totals,
                        v1::IngestResponse* out);

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_MESSAGES_H_
