// The RocksDB store: owns the database and speaks in datasets and snapshots.
//
// Keys (built and parsed only in dataset_store.cc):
//   "d/<name>"                      -> storage.v1.DatasetRecord (spec, live statistics)
//   "s/<name>/<version, 8 bytes BE>" -> storage.v1.SnapshotRecord (immutable)
// Names never contain '/', so "s/<name>/" is a prefix of that dataset's snapshots only.
// Every write is one atomic WriteBatch with sync=true: when a call returns OK, its
// effect is on disk and survives a crash or power loss.
//
// Thread-safe: RocksDB serialises writes; callers order writes to one dataset.
#ifndef NORMD_SERVER_STORE_DATASET_STORE_H_
#define NORMD_SERVER_STORE_DATASET_STORE_H_

#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "server/store/stored_dataset.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace normd {

class DatasetStore {
 public:
  // Opens (creating if missing) the database in directory `path`.
  static absl::StatusOr<std::unique_ptr<DatasetStore>> Open(const std::string& path);
  ~DatasetStore();

  DatasetStore(const DatasetStore&) = delete;
  DatasetStore& operator=(const DatasetStore&) = delete;

  absl::StatusOr<std::vector<StoredDataset>> LoadAllDatasets() const;

  // Creates or replaces the dataset record.
  absl::Status PutDataset(const StoredDataset& dataset);

  // Atomically writes a new snapshot and the dataset record that lists it.
  absl::Status PutDatasetAndSnapshot(const StoredDataset& dataset, const FrozenSnapshot& snapshot);

  absl::StatusOr<FrozenSnapshot> LoadSnapshot(const DatasetSpec& spec, uint64_t version) const;

  // Removes the dataset and all its snapshots atomically.
  absl::Status DeleteDataset(absl::string_view name);

 private:
  explicit DatasetStore(std::unique_ptr<rocksdb::DB> db);

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_DATASET_STORE_H_
