// What the engine asks of a store that many normd replicas share (etcd). Nothing a
// replica holds in memory is authoritative: the store decides every commit and freeze
// by compare-and-swap, and a replica's catalogue is a cache that the store keeps
// fresh (WatchCatalogue) and that the engine reads through on a miss.
//
// Every mutating call is atomic and durable when it returns OK; after an error other
// than UNAVAILABLE none of it is visible. UNAVAILABLE means the store could not say
// whether a write landed within its retry budget (a lost quorum): the caller's resend
// decides, exactly once, through the writer's sequence.
#ifndef NORMD_SERVER_STORE_SHARED_DATASET_STORE_H_
#define NORMD_SERVER_STORE_SHARED_DATASET_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ingest_delta.h"
#include "server/store/stored_dataset.h"
#include "server/store/traffic_store.h"

namespace normd {

// One Ingest stream's commit: what it adds, and its exactly-once identity (an empty
// writer has none; then the sequences are 0).
struct SharedCommit {
  const IngestDelta* delta = nullptr;
  absl::string_view writer;
  uint64_t first_sequence = 0;  // the first batch the delta holds
  uint64_t last_sequence = 0;   // the last
};

struct SharedCommitResult {
  // False when the writer had committed these batches already (another stream of the
  // same writer, or this one's earlier attempt): nothing was added again.
  bool applied = false;
  uint64_t writer_sequence = 0;  // the writer's last committed sequence after it
  DatasetStatistics totals;      // batches and samples per split (no moments)
};

// A change to the catalogue seen by the watch: `dataset` is the new entry, or empty
// when the dataset `name` was deleted.
struct CatalogueChange {
  std::string name;
  int64_t revision = 0;  // of the change
  std::optional<StoredDataset> dataset;
};

class SharedDatasetStore : public TrafficStore {
 public:
  virtual ~SharedDatasetStore() = default;

  // Every dataset's catalogue entry (spec, versions, generation; no statistics), and
  // the store revision they were read at, for WatchCatalogue.
  virtual absl::StatusOr<std::vector<StoredDataset>> LoadCatalogue(int64_t* revision) = 0;
  // Calls `on_change` for every catalogue change after `revision`, on a thread of the
  // store's, until the store is destroyed; `on_resync` gets the whole catalogue when
  // the changes since the last one seen can no longer be replayed.
  virtual void WatchCatalogue(int64_t revision,
                              std::function<void(const CatalogueChange&)> on_change,
                              std::function<void(std::vector<StoredDataset>)> on_resync) = 0;

  // ALREADY_EXISTS when the name is taken. Fills in the generation and the first
  // version number (version numbers are never reused, even by a re-created dataset).
  virtual absl::StatusOr<StoredDataset> CreateDataset(const DatasetSpec& spec,
                                                      absl::Time create_time) = 0;
  // The catalogue entry, with the live totals in `live` (batches and samples, no
  // moments). NOT_FOUND when there is no such dataset.
  virtual absl::StatusOr<StoredDataset> LoadDataset(absl::string_view name) = 0;
  // Catalogue entries with totals, names > `after` in order, at most `limit`.
  virtual absl::StatusOr<std::vector<StoredDataset>> ListDatasets(absl::string_view after,
                                                                  size_t limit) = 0;
  virtual absl::Status DeleteDataset(absl::string_view name) = 0;

  // The live statistics: every partition merged in one fixed order, at one store
  // revision, so that every replica computes the same bits.
  virtual absl::StatusOr<DatasetStatistics> LoadLive(const StoredDataset& dataset) = 0;
  // The writer's last committed sequence (0: none yet).
  virtual absl::StatusOr<uint64_t> WriterSequence(const StoredDataset& dataset,
                                                  absl::string_view writer) = 0;
  // Adds a stream's delta exactly once: a writer's batches must continue its committed
  // sequence (ABORTED when another stream of it moved past the delta's first batch
  // without covering its last; a delta it covered is not applied, `applied` false).
  virtual absl::StatusOr<SharedCommitResult> Commit(const StoredDataset& dataset,
                                                    const SharedCommit& commit) = 0;
  // Freezes the live statistics as the next version (FAILED_PRECONDITION without
  // training data). Versions are dense and each is written once. `check` (may be
  // empty) sees the statistics about to be frozen and the previous version's number
  // (0: none) before anything is written: its error refuses the freeze, its findings
  // are kept in the version's summary.
  using FreezeCheck = std::function<absl::StatusOr<std::vector<std::string>>(
      const DatasetStatistics& stats, uint64_t previous_version)>;
  virtual absl::StatusOr<FrozenSnapshot> Freeze(const StoredDataset& dataset,
                                                absl::Time freeze_time,
                                                const FreezeCheck& check) = 0;
  // Changes the catalogue entry's pins by `change` (compare-and-swap, retried on a race;
  // its error aborts) and returns the entry written.
  virtual absl::StatusOr<StoredDataset> UpdatePins(
      const StoredDataset& dataset, const std::function<absl::Status(StoredDataset&)>& change) = 0;
  // NOT_FOUND when there is no such version.
  virtual absl::StatusOr<FrozenSnapshot> LoadSnapshot(const StoredDataset& dataset,
                                                      uint64_t version) = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_SHARED_DATASET_STORE_H_
