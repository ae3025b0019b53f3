// The engine's in-memory state of one dataset; private to server/engine.
#ifndef NORMD_SERVER_ENGINE_DATASET_ENTRY_H_
#define NORMD_SERVER_ENGINE_DATASET_ENTRY_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/store/stored_dataset.h"

namespace normd {

// A dataset's state. `record` is exactly what the store holds; `spec` is a copy of
// its spec, which never changes after creation and so needs no lock.
struct DatasetEntry {
  explicit DatasetEntry(StoredDataset stored)
      : spec(stored.spec),
        incarnation(absl::ToUnixMicros(stored.create_time)),
        record(std::move(stored)) {}

  const DatasetSpec spec;
  // Which dataset of this name it is (its create time, Unix microseconds), for records
  // that outlive it (the live traffic).
  const int64_t incarnation;
  mutable absl::Mutex mu;
  StoredDataset record ABSL_GUARDED_BY(mu);
  bool deleted ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<uint64_t, std::shared_ptr<const FrozenSnapshot>> snapshots
      ABSL_GUARDED_BY(mu);
};

// What a shared store needs to name a dataset: its spec and generation (the rest of
// the record may be large, and is the store's to read).
inline StoredDataset CatalogueIdentity(const DatasetEntry& entry) {
  StoredDataset identity;
  identity.spec = entry.spec;
  absl::MutexLock lock(&entry.mu);
  identity.generation = entry.record.generation;
  return identity;
}

// What a request gets when its dataset was deleted after the request found it.
inline absl::Status DeletedError(absl::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("dataset \"", name, "\" was deleted while the request was in flight"));
}

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_DATASET_ENTRY_H_
