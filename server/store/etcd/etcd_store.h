// The etcd backend: a SharedDatasetStore that any number of normd replicas use at
// once. etcd orders every write (Raft), and each of this store's writes is one Txn
// guarded by the revisions of what it read (guarded_write.h: read, decide, write,
// again on a conflict), so replicas never need to talk to each other. Keys
// (etcd_keys.h), under a prefix:
//   catalog/<name>                -> DatasetRecord (spec, next version, versions)
//   part/<name>/<partition>       -> PartitionRecord (statistics + writer marks)
//   total/<name>/<partition>      -> StatisticsRecord (batches and samples only)
//   version/<name>/<20 digits>    -> SnapshotRecord (immutable)
//   retired/<name>                -> the next version number of a deleted dataset
//   traffic/<name>/<20 digits>/<replica> -> TrafficRecord
// A dataset's live statistics are partitions (partitions.h), one per named writer;
// the small totals key beside each lets Get, List and every commit's reply sum
// counts without reading the moments.
#ifndef NORMD_SERVER_STORE_ETCD_ETCD_STORE_H_
#define NORMD_SERVER_STORE_ETCD_ETCD_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/store/etcd/etcd_client.h"
#include "server/store/etcd/etcd_keys.h"
#include "server/store/etcd/partitions.h"
#include "server/store/records.h"
#include "server/store/shared_dataset_store.h"

namespace normd {

struct EtcdStoreOptions {
  EtcdOptions etcd;
  std::string prefix = "normd/";
  // Beyond this many partitions a dataset's oldest writers are folded into its
  // shared partition (their marks kept), so that reading the live statistics stays
  // one bounded range.
  size_t fold_above = 256;
};

class EtcdStore final : public SharedDatasetStore {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Open(EtcdStoreOptions options);
  ~EtcdStore() override;

  absl::StatusOr<std::vector<StoredDataset>> LoadCatalogue(int64_t* revision) override;
  void WatchCatalogue(int64_t revision, std::function<void(const CatalogueChange&)> on_change,
                      std::function<void(std::vector<StoredDataset>)> on_resync) override;
  absl::StatusOr<StoredDataset> CreateDataset(const DatasetSpec& spec,
                                              absl::Time create_time) override;
  absl::StatusOr<StoredDataset> LoadDataset(absl::string_view name) override;
  absl::StatusOr<std::vector<StoredDataset>> ListDatasets(absl::string_view after,
                                                          size_t limit) override;
  absl::Status DeleteDataset(absl::string_view name) override;
  absl::StatusOr<DatasetStatistics> LoadLive(const StoredDataset& dataset) override;
  absl::StatusOr<uint64_t> WriterSequence(const StoredDataset& dataset,
                                          absl::string_view writer) override;
  absl::StatusOr<SharedCommitResult> Commit(const StoredDataset& dataset,
                                            const SharedCommit& commit) override;
  absl::StatusOr<FrozenSnapshot> Freeze(const StoredDataset& dataset, absl::Time freeze_time,
                                        const FreezeCheck& check) override;
  // Each replica's records under traffic/<name>/<version>/<replica>, the replica a
  // random id per process: a restarted replica starts a record of its own, and its old
  // one still counts.
  absl::Status PutTraffic(const DatasetSpec& spec, const StoredTraffic& traffic) override;
  absl::StatusOr<std::vector<StoredTraffic>> LoadTraffic(const DatasetSpec& spec) const override;
  std::string TrafficReplica() const override { return replica_; }
  absl::StatusOr<StoredDataset> UpdatePins(
      const StoredDataset& dataset,
      const std::function<absl::Status(StoredDataset&)>& change) override;
  absl::StatusOr<FrozenSnapshot> LoadSnapshot(const StoredDataset& dataset,
                                              uint64_t version) override;

 private:
  EtcdStore(EtcdStoreOptions options, std::unique_ptr<EtcdClient> client);

  const std::string replica_;
  struct DatasetState;
  // A partition's record and the revision it was last written at.
  struct CachedPartition {
    int64_t mod_revision = 0;
    StoredPartition record;
  };

  std::optional<CachedPartition> LastKnown(const std::string& key);
  void RememberPartition(const std::string& key, CachedPartition partition);
  // Catalogue entries from key `from` on, at most `limit` (0: all), and the revision
  // of the read.
  absl::StatusOr<std::vector<StoredDataset>> ReadCatalogue(const std::string& from, size_t limit,
                                                           int64_t* revision);
  // The catalogue entry and the partitions of `name`, read at one revision.
  absl::StatusOr<DatasetState> ReadState(absl::string_view name, bool partitions, bool totals);
  // ReadState of `dataset` itself: NOT_FOUND ("deleted while the request was in
  // flight") when it is gone, or the name now holds a dataset created since.
  absl::StatusOr<DatasetState> ReadIncarnation(const StoredDataset& dataset, bool partitions);
  // Folds the oldest partitions into the shared one when there are too many.
  void MaybeFold(const StoredDataset& dataset, const DatasetState& state);

  const EtcdStoreOptions options_;
  std::unique_ptr<EtcdClient> client_;
  const EtcdKeys keys_;
  // The partitions this replica last committed, by key: its writers' next commits
  // skip the read. Only a hint; every write is guarded by the revision it names.
  static constexpr size_t kMaxCachedPartitions = 4096;
  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, CachedPartition> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_ETCD_STORE_H_
