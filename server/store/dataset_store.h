// What the engine asks of a store, in the engine's own terms: datasets, ingest
// commits, frozen versions. A backend (server/store/rocksdb/ is the one there is)
// implements it; nothing above the store knows which.
//
// Every mutating call is one atomic write that is durable when it returns OK: it
// survives a crash or power loss, and after an error none of it is visible.
// Implementations are thread-safe; callers order the writes to one dataset.
#ifndef NORMD_SERVER_STORE_DATASET_STORE_H_
#define NORMD_SERVER_STORE_DATASET_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/stored_dataset.h"
#include "server/store/traffic_store.h"

namespace normd {

// A commit's change to one writer's exactly-once mark, and the marks it pushes out
// of the dataset's bounded memory of writers.
struct WriterMarkUpdate {
  std::string writer;
  WriterMark mark;
  std::vector<std::string> forgotten;
};

class DatasetStore : public TrafficStore {
 public:
  virtual ~DatasetStore() = default;

  // Every dataset with its live statistics, versions and writer marks.
  virtual absl::StatusOr<std::vector<StoredDataset>> LoadAllDatasets() = 0;

  // Writes a new dataset whole (`dataset` has no versions and no writers yet).
  virtual absl::Status CreateDataset(const StoredDataset& dataset) = 0;

  // An ingest commit: the dataset's live statistics after it and, when the stream
  // had a writer, that writer's new mark. Writes O(channels) plus one mark, however
  // many writers the dataset remembers.
  virtual absl::Status CommitIngest(const DatasetSpec& spec, const DatasetStatistics& live,
                                    const WriterMarkUpdate* writer) = 0;

  // A new frozen version: the immutable snapshot and the dataset's catalogue entry
  // (next version, version list) that names it.
  virtual absl::Status PutVersion(const StoredDataset& dataset, const FrozenSnapshot& snapshot) = 0;

  // NOT_FOUND when there is no such version.
  virtual absl::StatusOr<FrozenSnapshot> LoadSnapshot(const DatasetSpec& spec,
                                                      uint64_t version) const = 0;

  // The catalogue entry alone (its pins changed).
  virtual absl::Status PutCatalogue(const StoredDataset& dataset) = 0;

  // Removes the dataset, its versions, its writer marks and its traffic.
  virtual absl::Status DeleteDataset(absl::string_view name) = 0;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_DATASET_STORE_H_
