// The dataset catalogue: in-memory state of every dataset, kept in step with the
// store. Creates, lists and deletes datasets, freezes immutable versions, resolves
// versions for readers, and opens ingest transactions (ingest_transaction.h).
//
// Thread-safe. Each dataset serialises its own commits and freezes; an update is
// visible in memory only after it is durable in the store, so a reader never sees
// an unacknowledged or half-applied state.
#ifndef NORMD_SERVER_ENGINE_DATASET_ENGINE_H_
#define NORMD_SERVER_ENGINE_DATASET_ENGINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/worker_pool.h"
#include "server/engine/ingest_transaction.h"
#include "server/store/dataset_store.h"

namespace normd {

struct DatasetEntry;

struct DatasetInfo {
  DatasetSpec spec;
  absl::Time create_time;
  DatasetTotals totals;
  std::vector<VersionSummary> versions;
  uint64_t latest_version = 0;
};

struct StatisticsResult {
  uint64_t version = 0;  // 0: live
  std::shared_ptr<const DatasetStatistics> stats;
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
  // A transaction on a dataset the caller has found already.
  IngestTransaction BeginIngest(std::shared_ptr<DatasetEntry> entry);

  absl::StatusOr<VersionSummary> Freeze(absl::string_view name);

  // version 0: the live statistics.
  absl::StatusOr<StatisticsResult> GetStatistics(absl::string_view name, uint64_t version) const;

  // For the rest of server/engine (dataset_entry.h says what an entry holds).
  absl::StatusOr<std::shared_ptr<DatasetEntry>> Find(absl::string_view name) const;
  // Resolves `version` (0: latest frozen) of `entry`, loading it from the store once.
  absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> Snapshot(DatasetEntry& entry,
                                                                 uint64_t version) const;
  WorkerPool* pool() const { return pool_; }

 private:
  DatasetEngine(std::unique_ptr<DatasetStore> store, WorkerPool* pool);

  std::unique_ptr<DatasetStore> store_;
  WorkerPool* const pool_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<DatasetEntry>, std::less<>> datasets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_DATASET_ENGINE_H_
