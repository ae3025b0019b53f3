// The RocksDB backend of DatasetStore: owns the database in one directory.
//
// Keys (built and parsed only in rocksdb_store.cc):
//   "d/<name>"                        -> DatasetRecord (catalogue: spec, versions)
//   "l/<name>"                        -> StatisticsRecord (live statistics)
//   "w/<name>/<writer>"               -> WriterRecord (one exactly-once mark)
//   "s/<name>/<version, 8 bytes BE>"  -> SnapshotRecord (immutable)
//   "t/<name>/<version, 8 bytes BE>"  -> TrafficRecord (what Normalize saw with it)
// Names never contain '/', so "w/<name>/" and "s/<name>/" are prefixes of that
// dataset's keys only. Per-field keys (as Kvrocks keeps them) let a commit write what
// changed instead of re-encoding every writer the dataset remembers. Every write is
// one WriteBatch with sync=true.
#ifndef NORMD_SERVER_STORE_ROCKSDB_ROCKSDB_STORE_H_
#define NORMD_SERVER_STORE_ROCKSDB_ROCKSDB_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/dataset_store.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace normd {

class RocksDbStore final : public DatasetStore {
 public:
  // Opens the database in directory `path`, creating it only when the directory is
  // missing or empty (anything else without a CURRENT file is DATA_LOSS).
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const std::string& path);
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  // Also moves the live statistics and writer marks out of any catalogue record
  // written before they had keys of their own, one atomic write per dataset.
  absl::StatusOr<std::vector<StoredDataset>> LoadAllDatasets() override;
  absl::Status CreateDataset(const StoredDataset& dataset) override;
  absl::Status CommitIngest(const DatasetSpec& spec, const DatasetStatistics& live,
                            const WriterMarkUpdate* writer) override;
  absl::Status PutVersion(const StoredDataset& dataset, const FrozenSnapshot& snapshot) override;
  absl::StatusOr<FrozenSnapshot> LoadSnapshot(const DatasetSpec& spec,
                                              uint64_t version) const override;
  absl::Status PutCatalogue(const StoredDataset& dataset) override;
  absl::Status PutTraffic(const DatasetSpec& spec, const StoredTraffic& traffic) override;
  absl::StatusOr<std::vector<StoredTraffic>> LoadTraffic(const DatasetSpec& spec) const override;
  absl::Status DeleteDataset(absl::string_view name) override;

 private:
  explicit RocksDbStore(std::unique_ptr<rocksdb::DB> db);

  // Fills `dataset`'s live statistics and writers from their keys.
  absl::Status LoadLiveAndWriters(StoredDataset& dataset) const;

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ROCKSDB_ROCKSDB_STORE_H_
