// One Ingest stream as a transaction. Batches accumulate privately; Commit applies
// them all at once, durably. Destroying an uncommitted transaction discards it.
//
// Exactly-once: the first batch fixes the stream's writer. Batches at or below the
// writer's last committed sequence (as of the stream's start) are counted as
// duplicates and not reduced; the first new one must be the next sequence. Commit
// re-checks the writer's sequence under the dataset's lock, so two streams resending
// the same batches cannot both apply them.
#ifndef NORMD_SERVER_ENGINE_INGEST_TRANSACTION_H_
#define NORMD_SERVER_ENGINE_INGEST_TRANSACTION_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ingest_delta.h"
#include "core/layout.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"
#include "server/store/dataset_store.h"
#include "server/store/shared_dataset_store.h"

namespace normd {

struct DatasetEntry;

struct SplitTotals {
  Split split = Split::kTrain;
  uint64_t batches = 0;
  uint64_t samples = 0;
};

using DatasetTotals = std::array<SplitTotals, kAllSplits.size()>;

// A batch's exactly-once identity; an empty writer means none.
struct BatchIdentity {
  absl::string_view writer;
  uint64_t sequence = 0;
};

// The writers a dataset remembers; beyond this the least recently committed are
// forgotten. A forgotten writer that resends is refused (its sequence no longer
// starts at 1), never counted twice.
inline constexpr size_t kMaxWritersPerDataset = 10000;

class IngestTransaction {
 public:
  // Commits go to `store`, or over a store that replicas share to `shared` (one of
  // the two is null); batches are reduced on `pool` (may be null), their moments
  // offered to `device` first (may be null). All must outlive the transaction.
  IngestTransaction(DatasetStore* store, SharedDatasetStore* shared, WorkerPool* pool,
                    std::shared_ptr<DatasetEntry> entry, DeviceOffload* device = nullptr);

  // Reduces `batch` (already validated) under the dataset's layout, channels and
  // non-finite policy, weighted by `weights` when given. On error nothing changes.
  absl::StatusOr<BatchSummary> Add(Split split, const ValidatedTensor& batch,
                                   BatchIdentity identity = {},
                                   const TensorView* weights = nullptr);
  // Adds a partial summary made elsewhere (see IngestDelta::AddSummary), with the same
  // exactly-once identity as a batch: one sequence number per summary.
  absl::StatusOr<BatchSummary> AddSummary(Split split, const MomentsSummary& summary,
                                          BatchIdentity identity = {});
  // Adds moments the caller reduced itself (batch norm in training mode does, for its
  // output), as one batch without a writer.
  absl::StatusOr<BatchSummary> AddMoments(Split split, const ValidatedTensor& batch,
                                          const ChannelGeometry& geometry,
                                          std::span<const ChannelMoments> moments,
                                          uint64_t skipped);
  // OK means durable. Returns the dataset's totals after the commit.
  absl::StatusOr<DatasetTotals> Commit();

  const std::string& dataset() const;
  const IngestDelta& delta() const { return delta_; }
  // Batches skipped because their writer had committed them already.
  uint64_t duplicates() const { return duplicates_; }
  // The writer's last committed sequence after Commit (0 without a writer).
  uint64_t writer_sequence() const { return writer_sequence_; }

 private:
  absl::StatusOr<bool> CheckIdentity(BatchIdentity identity);  // true: a duplicate
  absl::StatusOr<uint64_t> CommittedSequence() const;          // the writer's, as the store has it
  absl::StatusOr<DatasetTotals> CommitShared();

  DatasetStore* store_;
  SharedDatasetStore* shared_;
  WorkerPool* pool_;
  DeviceOffload* device_;
  std::shared_ptr<DatasetEntry> entry_;
  IngestDelta delta_;
  uint64_t batches_seen_ = 0;
  std::string writer_;
  uint64_t committed_at_start_ = 0;  // the writer's sequence when the stream began
  uint64_t last_sequence_ = 0;
  uint64_t first_new_sequence_ = 0;  // 0: every batch so far was a duplicate
  uint64_t duplicates_ = 0;
  uint64_t writer_sequence_ = 0;
};

// The totals a dataset's live statistics hold.
DatasetTotals TotalsOf(const DatasetStatistics& live);

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_INGEST_TRANSACTION_H_
