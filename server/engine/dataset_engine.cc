#include "server/engine/dataset_engine.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "core/dataset_statistics.h"
#include "server/engine/dataset_entry.h"

namespace normd {
namespace {

DatasetInfo InfoOf(const StoredDataset& record) {
  DatasetInfo info;
  info.spec = record.spec;
  info.create_time = record.create_time;
  info.totals = TotalsOf(record.live);
  info.versions = record.versions;
  info.latest_version = record.versions.empty() ? 0 : record.versions.back().version;
  return info;
}

}  // namespace

DatasetEngine::DatasetEngine(std::unique_ptr<DatasetStore> store, WorkerPool* pool)
    : store_(std::move(store)), pool_(pool) {}
DatasetEngine::~DatasetEngine() = default;

absl::StatusOr<std::unique_ptr<DatasetEngine>> DatasetEngine::Open(
    std::unique_ptr<DatasetStore> store, WorkerPool* pool) {
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> stored, store->LoadAllDatasets());
  std::unique_ptr<DatasetEngine> engine(new DatasetEngine(std::move(store), pool));
  absl::MutexLock lock(&engine->mu_);
  for (StoredDataset& dataset : stored) {
    std::string name = dataset.spec.name;
    engine->datasets_.emplace(std::move(name), std::make_shared<DatasetEntry>(std::move(dataset)));
  }
  return engine;
}

absl::StatusOr<std::shared_ptr<DatasetEntry>> DatasetEngine::Find(absl::string_view name) const {
  NORMD_RETURN_IF_ERROR(ValidateDatasetName(name));
  absl::ReaderMutexLock lock(&mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
  }
  return it->second;
}

absl::StatusOr<DatasetInfo> DatasetEngine::Create(const DatasetSpec& spec) {
  NORMD_RETURN_IF_ERROR(ValidateDatasetSpec(spec));
  StoredDataset record;
  record.spec = spec;
  record.create_time = absl::Now();
  record.live = DatasetStatistics::Empty(spec);
  absl::MutexLock lock(&mu_);
  if (datasets_.contains(spec.name)) {
    return absl::AlreadyExistsError(absl::StrCat("dataset \"", spec.name, "\" already exists"));
  }
  NORMD_RETURN_IF_ERROR(store_->CreateDataset(record));
  DatasetInfo info = InfoOf(record);
  datasets_.emplace(spec.name, std::make_shared<DatasetEntry>(std::move(record)));
  return info;
}

absl::StatusOr<DatasetInfo> DatasetEngine::Get(absl::string_view name) const {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  absl::MutexLock lock(&entry->mu);
  return InfoOf(entry->record);
}

std::vector<DatasetInfo> DatasetEngine::List(absl::string_view after, size_t limit) const {
  std::vector<std::shared_ptr<DatasetEntry>> entries;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (auto it = datasets_.upper_bound(after); it != datasets_.end() && entries.size() < limit;
         ++it) {
      entries.push_back(it->second);
    }
  }
  std::vector<DatasetInfo> infos;
  for (const std::shared_ptr<DatasetEntry>& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    if (!entry->deleted) infos.push_back(InfoOf(entry->record));
  }
  return infos;
}

EngineInventory DatasetEngine::Inventory() const {
  std::vector<std::shared_ptr<DatasetEntry>> entries;
  {
    absl::ReaderMutexLock lock(&mu_);
    entries.reserve(datasets_.size());
    for (const auto& [name, entry] : datasets_) entries.push_back(entry);
  }
  EngineInventory inventory;
  for (const std::shared_ptr<DatasetEntry>& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    if (entry->deleted) continue;
    ++inventory.datasets;
    inventory.frozen_versions += static_cast<int64_t>(entry->record.versions.size());
  }
  return inventory;
}

absl::Status DatasetEngine::Delete(absl::string_view name) {
  NORMD_RETURN_IF_ERROR(ValidateDatasetName(name));
  absl::MutexLock lock(&mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
  }
  // Held past entry_lock: erasing the map's reference must not destroy the entry, and
  // its mutex, while that mutex is still locked (ThreadSanitizer found this).
  const std::shared_ptr<DatasetEntry> entry = it->second;
  absl::MutexLock entry_lock(&entry->mu);
  NORMD_RETURN_IF_ERROR(store_->DeleteDataset(name));
  entry->deleted = true;
  datasets_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<IngestTransaction> DatasetEngine::BeginIngest(absl::string_view name) {
  NORMD_ASSIGN_OR_RETURN(std::shared_ptr<DatasetEntry> entry, Find(name));
  return BeginIngest(std::move(entry));
}

IngestTransaction DatasetEngine::BeginIngest(std::shared_ptr<DatasetEntry> entry) {
  return IngestTransaction(store_.get(), pool_, std::move(entry));
}

absl::StatusOr<VersionSummary> DatasetEngine::Freeze(absl::string_view name) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> found, Find(name));
  DatasetEntry& entry = *found;
  absl::MutexLock lock(&entry.mu);
  if (entry.deleted) return DeletedError(name);
  const SplitStatistics& train = entry.record.live.split(Split::kTrain);
  if (train.samples == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset \"", name, "\" has no training data yet; ingest train batches before Freeze"));
  }
  auto snapshot = std::make_shared<FrozenSnapshot>();
  snapshot->version = entry.record.next_version;
  snapshot->freeze_time = absl::Now();
  snapshot->stats = entry.record.live;
  const VersionSummary summary{snapshot->version, snapshot->freeze_time, train.samples};

  // Changed in place and put back on failure (no reader sees it: the lock is held),
  // instead of copying a record that may hold thousands of writer marks.
  StoredDataset& record = entry.record;
  record.next_version = snapshot->version + 1;
  record.versions.push_back(summary);
  if (absl::Status stored = store_->PutVersion(record, *snapshot); !stored.ok()) {
    record.versions.pop_back();
    record.next_version = snapshot->version;
    return stored;
  }
  entry.snapshots.emplace(summary.version, std::move(snapshot));
  return summary;
}

absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> DatasetEngine::Snapshot(
    DatasetEntry& entry, uint64_t version) const {
  absl::MutexLock lock(&entry.mu);
  const StoredDataset& record = entry.record;
  if (entry.deleted) return DeletedError(record.spec.name);
  if (record.versions.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset \"", record.spec.name, "\" has no frozen version; call Freeze first"));
  }
  const uint64_t latest = record.versions.back().version;
  if (version == 0) version = latest;
  if (auto cached = entry.snapshots.find(version); cached != entry.snapshots.end()) {
    return cached->second;
  }
  bool known = false;
  for (const VersionSummary& v : record.versions) known = known || v.version == version;
  if (!known) {
    return absl::NotFoundError(absl::StrCat("dataset \"", record.spec.name, "\" has no version ",
                                            version, "; the latest is ", latest));
  }
  NORMD_ASSIGN_OR_RETURN(FrozenSnapshot loaded, store_->LoadSnapshot(record.spec, version));
  auto snapshot = std::make_shared<const FrozenSnapshot>(std::move(loaded));
  entry.snapshots.emplace(version, snapshot);
  return snapshot;
}

absl::StatusOr<StatisticsResult> DatasetEngine::GetStatistics(absl::string_view name,
                                                              uint64_t version) const {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  if (version == 0) {
    absl::MutexLock lock(&entry->mu);
    return StatisticsResult{0, std::make_shared<const DatasetStatistics>(entry->record.live)};
  }
  NORMD_ASSIGN_OR_RETURN(std::shared_ptr<const FrozenSnapshot> snapshot, Snapshot(*entry, version));
  // Aliasing constructor: the statistics live as long as the snapshot.
  return StatisticsResult{version,
                          std::shared_ptr<const DatasetStatistics>(snapshot, &snapshot->stats)};
}

}  // namespace normd
