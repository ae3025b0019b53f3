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
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/affine_scheme.h"
#include "core/ingest_delta.h"
#include "core/layout.h"
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

// What Normalize needs to run the kernel: the input's geometry and folded factors.
struct NormalizePlan {
  uint64_t version = 0;  // 0 when no statistics were used
  ChannelGeometry geometry;
  ScaleShift factors;
};

class DatasetEngine;
struct DatasetEntry;

// One Ingest stream. Batches accumulate privately; Commit applies them all at once,
// durably. Destroying an uncommitted transaction discards it.
class IngestTransaction {
 public:
  absl::StatusOr<BatchSummary> Add(Split split, const TensorView& batch);
  // OK means durable. Returns the dataset's totals after the commit.
  absl::StatusOr<std::array<SplitTotals, kAllSplits.size()>> Commit();

  const std::string& dataset() const;
  const IngestDelta& delta() const { return delta_; }

 private:
  friend class DatasetEngine;
  IngestTransaction(DatasetEngine* engine, std::shared_ptr<DatasetEntry> entry);

  DatasetEngine* engine_;
  std::shared_ptr<DatasetEntry> entry_;
  IngestDelta delta_;
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

  absl::StatusOr<IngestTransaction> BeginIngest(absl::string_view name);

  absl::StatusOr<VersionSummary> Freeze(absl::string_view name);

  // version 0: the live statistics.
  absl::StatusOr<StatisticsResult> GetStatistics(absl::string_view name, uint64_t version) const;

  // Validates `input` against the dataset and folds `scheme` with the statistics of
  // `version` (0: the latest frozen). A FixedScaleScheme needs no dataset: `name`
  // may be empty and the input is then treated as a single channel.
  absl::StatusOr<NormalizePlan> PlanNormalize(absl::string_view name, uint64_t version,
                                              const AffineScheme& scheme,
                                              const TensorView& input) const;

 private:
  friend class IngestTransaction;
  DatasetEngine(std::unique_ptr<DatasetStore> store, WorkerPool* pool);

  absl::StatusOr<std::shared_ptr<DatasetEntry>> Find(absl::string_view name) const;
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
