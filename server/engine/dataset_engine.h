// The dataset catalogue: in-memory state of every dataset, kept in step with the
// store. Creates, lists and deletes datasets, freezes immutable versions, resolves
// versions for readers, and opens ingest transactions (ingest_transaction.h).
//
// Thread-safe. Each dataset serialises its own commits and freezes; an update is
// visible in memory only after it is durable in the store, so a reader never sees
// an unacknowledged or half-applied state.
//
// Over a shared store (OpenShared: many replicas, one etcd) the memory is a cache:
// the store decides every commit and freeze, Get, List and the live statistics read
// it, a miss reads through, and the store's catalogue watch keeps the versions (and
// so "latest") and deletions fresh. Frozen snapshots are immutable and their numbers
// never reused, so a cached one is served without asking the store.
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
#include "core/device_offload.h"
#include "core/worker_pool.h"
#include "server/engine/ingest_transaction.h"
#include "server/engine/traffic_monitor.h"
#include "server/store/dataset_store.h"
#include "server/store/shared_dataset_store.h"

namespace normd {

struct DatasetEntry;

struct DatasetInfo {
  DatasetSpec spec;
  absl::Time create_time;
  DatasetTotals totals;
  std::vector<VersionSummary> versions;
  uint64_t latest_version = 0;
  uint64_t pinned_version = 0;  // the "prod" pin: what version 0 resolves to
  uint64_t previous_pinned_version = 0;
  bool can_roll_back = false;
};

struct StatisticsResult {
  uint64_t version = 0;  // 0: live
  std::shared_ptr<const DatasetStatistics> stats;
  std::optional<QuantileSketchSpec> sketch;  // the dataset's, for reading its sketches
};

// What Normalize saw with one version, and that version's snapshot.
struct TrafficResult {
  uint64_t version = 0;
  TrafficSnapshot traffic;
  std::shared_ptr<const FrozenSnapshot> snapshot;
  std::optional<QuantileSketchSpec> sketch;  // the dataset's, for reading the sketches
};

struct FreezeGate;

// How much the engine holds, for the metrics.
struct EngineInventory {
  int64_t datasets = 0;
  int64_t frozen_versions = 0;  // over all datasets
};

class DatasetEngine {
 public:
  // Loads every dataset from `store`. Ingest batches are reduced on `pool` (may be
  // null), which must outlive the engine.
  // `traffic` says how the live traffic of Normalize is kept (traffic_monitor.h).
  static absl::StatusOr<std::unique_ptr<DatasetEngine>> Open(std::unique_ptr<DatasetStore> store,
                                                             WorkerPool* pool = nullptr,
                                                             const TrafficOptions& traffic = {});
  // The same over a store that other replicas share.
  static absl::StatusOr<std::unique_ptr<DatasetEngine>> OpenShared(
      std::unique_ptr<SharedDatasetStore> store, WorkerPool* pool = nullptr,
      const TrafficOptions& traffic = {});
  ~DatasetEngine();

  absl::StatusOr<DatasetInfo> Create(const DatasetSpec& spec);
  absl::StatusOr<DatasetInfo> Get(absl::string_view name) const;
  // Datasets with names > `after`, in name order, at most `limit`.
  absl::StatusOr<std::vector<DatasetInfo>> List(absl::string_view after, size_t limit) const;
  absl::Status Delete(absl::string_view name);
  EngineInventory Inventory() const;

  absl::StatusOr<IngestTransaction> BeginIngest(absl::string_view name);
  // A transaction on a dataset the caller has found already.
  IngestTransaction BeginIngest(std::shared_ptr<DatasetEntry> entry);

  // `gate` (may be null) checks the statistics first (freeze_gate.h).
  absl::StatusOr<VersionSummary> Freeze(absl::string_view name, const FreezeGate* gate = nullptr);

  // Sets (version 0: removes) the "prod" pin that version 0 resolves to, or with
  // `rollback` restores the pin before the current one.
  absl::StatusOr<DatasetInfo> PinVersion(absl::string_view name, uint64_t version, bool rollback);

  // What Normalize saw with `version` (0: the pinned or latest one).
  absl::StatusOr<TrafficResult> GetTraffic(absl::string_view name, uint64_t version,
                                           TrafficWindowKind window) const;
  TrafficMonitor& traffic() const { return *traffic_; }

  // version 0: the live statistics.
  absl::StatusOr<StatisticsResult> GetStatistics(absl::string_view name, uint64_t version) const;

  // For the rest of server/engine (dataset_entry.h says what an entry holds).
  absl::StatusOr<std::shared_ptr<DatasetEntry>> Find(absl::string_view name) const;
  // Resolves `version` (0: latest frozen) of `entry`, loading it from the store once.
  absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> Snapshot(DatasetEntry& entry,
                                                                 uint64_t version) const;
  WorkerPool* pool() const { return pool_; }

  // The accelerator large Normalize requests and Ingest batches are offered to
  // (--device), or null. Set before serving; it must outlive the engine.
  void SetDevice(DeviceOffload* device) { device_ = device; }
  DeviceOffload* device() const { return device_; }

 private:
  DatasetEngine(std::unique_ptr<DatasetStore> store, std::unique_ptr<SharedDatasetStore> shared,
                WorkerPool* pool, const TrafficOptions& traffic);

  // Shared stores: takes a catalogue entry read from the store (or seen by its watch)
  // into memory, unless memory holds a newer one; returns the entry now in memory.
  std::shared_ptr<DatasetEntry> Remember(StoredDataset fresh) const;
  void Forget(absl::string_view name, int64_t deleted_at) const;
  void Resync(std::vector<StoredDataset> catalogue) const;
  absl::StatusOr<VersionSummary> FreezeShared(DatasetEntry& entry, const FreezeGate* gate);
  absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> SharedSnapshot(DatasetEntry& entry,
                                                                       uint64_t version) const;

  std::unique_ptr<DatasetStore> store_;  // null over a shared store
  WorkerPool* const pool_;
  DeviceOffload* device_ = nullptr;
  std::unique_ptr<TrafficMonitor> traffic_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, std::shared_ptr<DatasetEntry>, std::less<>> datasets_
      ABSL_GUARDED_BY(mu_);
  // Last, so that it goes first: its watch calls into the members above.
  std::unique_ptr<SharedDatasetStore> shared_;
};

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_DATASET_ENGINE_H_
