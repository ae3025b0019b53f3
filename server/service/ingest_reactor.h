// One Ingest stream, served by gRPC's callback API (the route_guide
// ServerReadReactor is the model): no thread waits on a stream between its messages.
// Each message is decoded and reduced, and the stream committed at its end, on the
// service's TaskQueue, since a reaction must not block. The stream is one
// transaction: any rejected batch, a cancellation, a passed deadline or an idle
// expiry ends it with nothing applied.
#ifndef NORMD_SERVER_SERVICE_INGEST_REACTOR_H_
#define NORMD_SERVER_SERVICE_INGEST_REACTOR_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_callback.h"
#include "normd/v1/normd.pb.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/ingest_transaction.h"
#include "server/observability/server_metrics.h"
#include "server/regions/region_registry.h"
#include "server/service/ingest_slots.h"
#include "server/service/messages.h"
#include "server/service/principal.h"
#include "server/service/request_limits.h"
#include "common/task_queue.h"
#include "server/service/tensor_wire.h"

namespace normd {

// What every Ingest stream shares; owned by the service.
struct IngestServices {
  DatasetEngine* engine;
  const RegionRegistry* regions;
  ServerMetrics* metrics;
  IngestSlots* slots;
  TaskQueue* tasks;
  RequestLimits limits;
};

// A task adds at most this many of a message's summaries before the next stream's
// work is served (a few milliseconds a slice), however many a message holds.
inline constexpr size_t kSummariesPerTask = 1024;

class IngestReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer>, public IdleStream {
 public:
  // Serves the stream for `caller`, or finishes it at once with its error (the
  // caller was not admitted). Deletes itself when gRPC is done with it.
  IngestReactor(const IngestServices& services, absl::StatusOr<Principal> caller,
                grpc::CallbackServerContext* context, grpc::ByteBuffer* response);

  bool MarkExpired() override;
  void FinishExpired(const absl::Status& why) override;
  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  enum class State { kReading, kWorking, kExpired };

  void Read();
  // On the task queue: a message arrived (ok), or the stream ended.
  void Process(bool ok);
  // After a slice of a message's work: its error ends the stream; false (summaries
  // left) queues the next slice; true reads the next message.
  void Continue(const absl::StatusOr<bool>& added);
  // The message's batch, or its first slice of summaries; true when it is all added.
  absl::StatusOr<bool> AddBatch();
  // Up to kSummariesPerTask of the message's summaries, the first of them with the
  // message's sequence; true when none are left.
  absl::StatusOr<bool> AddSummaries();
  // `batch`, or when it is in the caller's shared memory, a private copy of it.
  absl::StatusOr<ValidatedTensor> ReadOnce(const ValidatedTensor& batch, bool in_region);
  absl::Status Rejected(const absl::Status& status) const;
  absl::Status CommitStream();
  // Finishes the RPC; `this` may be gone when it returns.
  void End(const absl::Status& status);

  const IngestServices& services_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  std::optional<IngestSlots::SlotId> slot_;
  std::optional<CallRegions> regions_;
  std::atomic<State> state_ = State::kWorking;
  // Each message's bytes as gRPC received them, parsed with the batch's values viewed
  // in place (tensor_wire.h); the scratch gathers a message that came in several
  // slices, reused from message to message.
  grpc::ByteBuffer received_;
  std::vector<std::byte> scratch_;
  std::vector<grpc::Slice> slices_;
  IngestMessage message_;
  v1::MomentsSummary summary_message_;  // the summary being applied, parsed
  Split summaries_split_ = Split::kTrain;
  std::vector<std::byte> region_copy_;  // reused from batch to batch
  std::optional<IngestTransaction> transaction_;
  uint64_t index_ = 0;  // of the batch being read
  int64_t bytes_ = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_INGEST_REACTOR_H_
