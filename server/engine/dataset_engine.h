// The dataset catalogue: in-memory state of every dataset, kept in step with the
// store. Ingest streams are transactions; Freeze makes immutable versions;
// Normalize resolves a version and folds its statistics.
//
// Thread-safe. Each dataset serialises its own commits and freezes; an update is
// visible in memory only after it is durable in the store, so a reader never sees
// an unacknowledged or half-applied state.
#ifndef NORMD_SERVER_ENGINE_DATASET_ENGINE_H_
#define NORMD_SERVER_ENGINE_DATASET_ENGINE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/affine_scheme.h"
#include "core/batch_norm_training.h"
#include "core/ingest_delta.h"
#include "core/layout.h"
#include "core/per_sample_norm.h"
#include "core/tensor_view.h"
#include "core/worker_pool.h"
#include "server/store/dataset_store.h"

namespace normd {

struct SplitTotals {
  Split split = Split::kTrain;
  uint64_t batches = 0;
  uint64_t samples = 0;
};

struct DatasetInfo {
  DatasetSpec spec;
  absl::Time create_time;
  std::array<SplitTotals, kAllSplits.size()> totals;
  std::vector<VersionSummary> versions;
  uint64_t latest_version = 0;
};

struct StatisticsResult {
  uint64_t version = 0;  // 0: live
  std::shared_ptr<const DatasetStatistics> stats;
};

// Batch norm in training mode, and whether the batch also updates the dataset.
struct BatchNormTrainingCall {
  BatchNormTrainingScheme scheme;
  bool update_statistics = false;
  std::optional<Split> split;  // the batch's split, when the caller named one
};

using NormalizeScheme = std::variant<AffineScheme, BatchNormTrainingCall, PerSampleScheme>;

struct NormalizeCall {
  // Frozen-statistics schemes (but FixedScaleScheme) and updating batch norm need a
  // dataset; the other schemes may leave it empty.
  std::string dataset;
  uint64_t version = 0;          // 0: the latest frozen version
  std::optional<Layout> layout;  // the input's layout when no dataset gives it
  NormalizeScheme scheme;
  TensorView input;
  DType output_dtype = DType::kFloat32;
};

class DatasetEngine;
struct DatasetEntry;

// A batch's exactly-once identity; an empty writer means none.
struct BatchIdentity {
  absl::string_view writer;
  uint64_t sequence = 0;
};

// One Ingest stream. Batches accumulate privately; Commit applies them all at once,
// durably. Destroying an uncommitted transaction discards it.
//
// Exactly-once: the first batch fixes the stream's writer. Batches at or below the
// writer's last committed sequence (as of the stream's start) are counted as
// duplicates and not reduced; the first new one must be the next sequence. Commit
// re-checks the writer's sequence under the dataset's lock, so two streams resending
// the same batches cannot both apply them.
class IngestTransaction {
 public:
  absl::StatusOr<BatchSummary> Add(Split split, const TensorView& batch,
                                   BatchIdentity identity = {});
  // OK means durable. Returns the dataset's totals after the commit.
  absl::StatusOr<std::array<SplitTotals, kAllSplits.size()>> Commit();

  const std::string& dataset() const;
  const IngestDelta& delta() const { return delta_; }
  // Batches skipped because their writer had committed them already.
  uint64_t duplicates() const { return duplicates_; }
  // The writer's last committed sequence after Commit (0 without a writer).
  uint64_t writer_sequence() const { return writer_sequence_; }

 private:
  friend class DatasetEngine;
  IngestTransaction(DatasetEngine* engine, std::shared_ptr<DatasetEntry> entry);

  absl::StatusOr<bool> CheckIdentity(BatchIdentity identity);  // true: a duplicate

  DatasetEngine* engine_;
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

// How much the engine holds, for the metrics.
struct EngineInventory {
  int64_t datasets = 0;
  int64_t frozen_versions = 0;  // over all datasets
};

class DatasetEngine {
 public:
  // Loads every dataset from `store`. Ingest batches are reduced on `pool` (may be
  // null), which must outlive the engine.
  static absl::StatusOr<std::unique_ptr<DatasetEngine>> Open(std::unique_ptr<DatasetStore> store,
                                                             WorkerPool* pool = nullptr);
  ~DatasetEngine();

  absl::StatusOr<DatasetInfo> Create(const DatasetSpec& spec);
  absl::StatusOr<DatasetInfo> Get(absl::string_view name) const;
  // Datasets with names > `after`, in name order, at most `limit`.
  std::vector<DatasetInfo> List(absl::string_view after, size_t limit) const;
  absl::Status Delete(absl::string_view name);
  EngineInventory Inventory() const;

  absl::StatusOr<IngestTransaction> BeginIngest(absl::string_view name);

  absl::StatusOr<VersionSummary> Freeze(absl::string_view name);

  // version 0: the live statistics.
  absl::StatusOr<StatisticsResult> GetStatistics(absl::string_view name, uint64_t version) const;

  // Normalises call.input into `output` (exactly elements * ElementSize(
  // call.output_dtype) bytes) and returns the version whose statistics were used (0
  // when none). Frozen-statistics schemes fold the statistics of call.version;
  // batch-statistics schemes compute their own from the input, and batch norm with
  // update_statistics then commits the batch to the dataset as one durable train
  // batch before returning. The input must match the dataset's layout and channels
  // when a dataset is named.
  absl::StatusOr<uint64_t> Normalize(const NormalizeCall& call, std::span<std::byte> output);

 private:
  friend class IngestTransaction;
  DatasetEngine(std::unique_ptr<DatasetStore> store, WorkerPool* pool);

  absl::StatusOr<std::shared_ptr<DatasetEntry>> Find(absl::string_view name) const;
  // `entry` is null when the call names no dataset.
  absl::StatusOr<uint64_t> NormalizeFrozen(DatasetEntry* entry, const NormalizeCall& call,
                                           const AffineScheme& scheme, int64_t elements,
                                           std::span<std::byte> output);
  absl::Status NormalizeTraining(const std::shared_ptr<DatasetEntry>& entry,
                                 const NormalizeCall& call, const BatchNormTrainingCall& training,
                                 const ChannelGeometry& geometry, std::span<std::byte> output);
  // Resolves `version` (0: latest frozen) of `entry`, loading it from the store once.
  absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> Snapshot(DatasetEntry& entry,
                                                                 uint64_t version) const;

  std::unique_ptr<DatasetStore> store_;
  WorkerPool* const pool_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<DatasetEntry>, std::less<>> datasets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_DATASET_ENGINE_H_
