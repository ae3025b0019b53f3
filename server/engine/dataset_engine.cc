#include "server/engine/dataset_engine.h"

#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "core/dataset_statistics.h"
#include "server/engine/dataset_entry.h"
#include "server/engine/freeze_gate.h"

namespace normd {
namespace {

DatasetInfo InfoOf(const StoredDataset& record) {
  DatasetInfo info;
  info.spec = record.spec;
  info.create_time = record.create_time;
  info.totals = TotalsOf(record.live);
  info.versions = record.versions;
  info.latest_version = record.versions.empty() ? 0 : record.versions.back().version;
  info.pinned_version = record.pinned_version;
  info.previous_pinned_version = record.previous_pinned_version;
  info.can_roll_back = record.pin_rollback;
  return info;
}

bool HasVersion(const StoredDataset& record, uint64_t version) {
  for (const VersionSummary& v : record.versions) {
    if (v.version == version) return true;
  }
  return false;
}

// The pin change PinVersion asks for, on `record`.
absl::Status ChangePin(StoredDataset& record, uint64_t version, bool rollback) {
  const std::string& name = record.spec.name;
  if (rollback) {
    if (!record.pin_rollback) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset \"", name, "\" has no earlier pin to roll back to (pinned now: ",
                       record.pinned_version == 0 ? "none" : absl::StrCat(record.pinned_version),
                       "; a rollback undoes the last pin change, once)"));
    }
    record.pinned_version = record.previous_pinned_version;
    record.previous_pinned_version = 0;
    record.pin_rollback = false;
    return absl::OkStatus();
  }
  if (version != 0 && !HasVersion(record, version)) {
    return absl::NotFoundError(
        absl::StrCat("dataset \"", name, "\" has no version ", version, " to pin; the latest is ",
                     record.versions.empty() ? 0 : record.versions.back().version));
  }
  if (version == record.pinned_version) return absl::OkStatus();
  record.previous_pinned_version = record.pinned_version;
  record.pinned_version = version;
  record.pin_rollback = true;
  return absl::OkStatus();
}

}  // namespace

DatasetEngine::DatasetEngine(std::unique_ptr<DatasetStore> store,
                             std::unique_ptr<SharedDatasetStore> shared, WorkerPool* pool,
                             const TrafficOptions& traffic)
    : store_(std::move(store)), pool_(pool), shared_(std::move(shared)) {
  TrafficStore* traffic_store = store_ != nullptr ? static_cast<TrafficStore*>(store_.get())
                                                  : static_cast<TrafficStore*>(shared_.get());
  traffic_ = std::make_unique<TrafficMonitor>(traffic, traffic_store, pool);
}
DatasetEngine::~DatasetEngine() = default;

absl::StatusOr<std::unique_ptr<DatasetEngine>> DatasetEngine::Open(
    std::unique_ptr<DatasetStore> store, WorkerPool* pool, const TrafficOptions& traffic) {
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> stored, store->LoadAllDatasets());
  std::unique_ptr<DatasetEngine> engine(
      new DatasetEngine(std::move(store), nullptr, pool, traffic));
  for (const StoredDataset& dataset : stored) {
    NORMD_RETURN_IF_ERROR(
        engine->traffic_->Load(dataset.spec, absl::ToUnixMicros(dataset.create_time)));
  }
  absl::MutexLock lock(&engine->mu_);
  for (StoredDataset& dataset : stored) {
    std::string name = dataset.spec.name;
    engine->datasets_.emplace(std::move(name), std::make_shared<DatasetEntry>(std::move(dataset)));
  }
  return engine;
}

absl::StatusOr<std::unique_ptr<DatasetEngine>> DatasetEngine::OpenShared(
    std::unique_ptr<SharedDatasetStore> store, WorkerPool* pool, const TrafficOptions& traffic) {
  int64_t revision = 0;
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> catalogue, store->LoadCatalogue(&revision));
  std::unique_ptr<DatasetEngine> engine(
      new DatasetEngine(nullptr, std::move(store), pool, traffic));
  engine->Resync(std::move(catalogue));
  DatasetEngine* watching = engine.get();
  engine->shared_->WatchCatalogue(
      revision,
      [watching](const CatalogueChange& change) {
        if (change.dataset.has_value()) {
          watching->Remember(*change.dataset);
        } else {
          watching->Forget(change.name, change.revision);
        }
      },
      [watching](std::vector<StoredDataset> all) { watching->Resync(std::move(all)); });
  return engine;
}

std::shared_ptr<DatasetEntry> DatasetEngine::Remember(StoredDataset fresh) const {
  absl::MutexLock lock(&mu_);
  auto it = datasets_.find(fresh.spec.name);
  if (it != datasets_.end()) {
    DatasetEntry& entry = *it->second;
    absl::MutexLock entry_lock(&entry.mu);
    if (entry.record.generation > fresh.generation) return it->second;  // memory is newer
    if (entry.record.generation == fresh.generation) {
      // One incarnation's catalogue only grows; an older read must not shrink it.
      if (fresh.versions.size() >= entry.record.versions.size()) {
        entry.record.pinned_version = fresh.pinned_version;
        entry.record.previous_pinned_version = fresh.previous_pinned_version;
        entry.record.pin_rollback = fresh.pin_rollback;
      }
      if (fresh.versions.size() > entry.record.versions.size()) {
        entry.record.versions = std::move(fresh.versions);
        entry.record.next_version = fresh.next_version;
      }
      return it->second;
    }
    entry.deleted = true;  // a re-created dataset replaces the old one
  }
  std::string name = fresh.spec.name;
  fresh.live = DatasetStatistics{};
  auto entry = std::make_shared<DatasetEntry>(std::move(fresh));
  datasets_.insert_or_assign(std::move(name), entry);
  return entry;
}

void DatasetEngine::Forget(absl::string_view name, int64_t deleted_at) const {
  absl::MutexLock lock(&mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) return;
  const std::shared_ptr<DatasetEntry> entry = it->second;
  absl::MutexLock entry_lock(&entry->mu);
  if (entry->record.generation >= deleted_at) return;  // created again after that delete
  entry->deleted = true;
  datasets_.erase(it);
}

void DatasetEngine::Resync(std::vector<StoredDataset> catalogue) const {
  std::set<std::string, std::less<>> present;
  for (StoredDataset& dataset : catalogue) {
    present.insert(dataset.spec.name);
    Remember(std::move(dataset));
  }
  absl::MutexLock lock(&mu_);
  for (auto it = datasets_.begin(); it != datasets_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    // Held past entry_lock, as in Delete: the erase must not destroy a locked mutex.
    const std::shared_ptr<DatasetEntry> entry = it->second;
    absl::MutexLock entry_lock(&entry->mu);
    entry->deleted = true;
    it = datasets_.erase(it);
  }
}

absl::StatusOr<std::shared_ptr<DatasetEntry>> DatasetEngine::Find(absl::string_view name) const {
  NORMD_RETURN_IF_ERROR(ValidateDatasetName(name));
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = datasets_.find(name);
    if (it != datasets_.end()) return it->second;
    if (shared_ == nullptr) {
      return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
    }
  }
  // Created on another replica, and the watch has not said so yet.
  NORMD_ASSIGN_OR_RETURN(StoredDataset fresh, shared_->LoadDataset(name));
  return Remember(std::move(fresh));
}

absl::StatusOr<DatasetInfo> DatasetEngine::Create(const DatasetSpec& spec) {
  NORMD_RETURN_IF_ERROR(ValidateDatasetSpec(spec));
  if (shared_ != nullptr) {
    NORMD_ASSIGN_OR_RETURN(StoredDataset created, shared_->CreateDataset(spec, absl::Now()));
    DatasetInfo info = InfoOf(created);
    Remember(std::move(created));
    return info;
  }
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
  if (shared_ != nullptr) {
    NORMD_RETURN_IF_ERROR(ValidateDatasetName(name));
    NORMD_ASSIGN_OR_RETURN(StoredDataset fresh, shared_->LoadDataset(name));
    DatasetInfo info = InfoOf(fresh);
    Remember(std::move(fresh));
    return info;
  }
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  absl::MutexLock lock(&entry->mu);
  return InfoOf(entry->record);
}

absl::StatusOr<std::vector<DatasetInfo>> DatasetEngine::List(absl::string_view after,
                                                             size_t limit) const {
  if (shared_ != nullptr) {
    NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> page, shared_->ListDatasets(after, limit));
    std::vector<DatasetInfo> infos;
    for (StoredDataset& fresh : page) {
      infos.push_back(InfoOf(fresh));
      Remember(std::move(fresh));
    }
    return infos;
  }
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
  if (shared_ != nullptr) {
    NORMD_RETURN_IF_ERROR(shared_->DeleteDataset(name));
    Forget(name, std::numeric_limits<int64_t>::max());
    traffic_->Forget(name);
    return absl::OkStatus();
  }
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
  traffic_->Forget(name);
  return absl::OkStatus();
}

absl::StatusOr<IngestTransaction> DatasetEngine::BeginIngest(absl::string_view name) {
  NORMD_ASSIGN_OR_RETURN(std::shared_ptr<DatasetEntry> entry, Find(name));
  return BeginIngest(std::move(entry));
}

IngestTransaction DatasetEngine::BeginIngest(std::shared_ptr<DatasetEntry> entry) {
  return IngestTransaction(store_.get(), shared_.get(), pool_, std::move(entry), device_);
}

absl::StatusOr<VersionSummary> DatasetEngine::Freeze(absl::string_view name,
                                                     const FreezeGate* gate) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> found, Find(name));
  DatasetEntry& entry = *found;
  if (shared_ != nullptr) return FreezeShared(entry, gate);
  absl::MutexLock lock(&entry.mu);
  if (entry.deleted) return DeletedError(name);
  const SplitStatistics& train = entry.record.live.split(Split::kTrain);
  if (train.samples == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset \"", name, "\" has no training data yet; ingest train batches before Freeze"));
  }
  std::vector<std::string> findings;
  if (gate != nullptr) {
    std::shared_ptr<const FrozenSnapshot> previous;
    const uint64_t previous_version =
        entry.record.versions.empty() ? 0 : entry.record.versions.back().version;
    if (previous_version != 0 && gate->drift.has_value()) {
      if (auto cached = entry.snapshots.find(previous_version); cached != entry.snapshots.end()) {
        previous = cached->second;
      } else {
        NORMD_ASSIGN_OR_RETURN(FrozenSnapshot loaded,
                               store_->LoadSnapshot(entry.spec, previous_version));
        previous = std::make_shared<const FrozenSnapshot>(std::move(loaded));
        entry.snapshots.emplace(previous_version, previous);
      }
    }
    NORMD_ASSIGN_OR_RETURN(
        findings, CheckFreezeGate(*gate, entry.spec, entry.record.live,
                                  previous ? &previous->stats : nullptr, previous_version));
  }
  auto snapshot = std::make_shared<FrozenSnapshot>();
  snapshot->version = entry.record.next_version;
  snapshot->freeze_time = absl::Now();
  snapshot->stats = entry.record.live;
  const VersionSummary summary{snapshot->version, snapshot->freeze_time, train.samples,
                               std::move(findings)};

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

absl::StatusOr<VersionSummary> DatasetEngine::FreezeShared(DatasetEntry& entry,
                                                           const FreezeGate* gate) {
  std::vector<std::string> findings;
  SharedDatasetStore::FreezeCheck check;
  if (gate != nullptr) {
    check = [this, &entry, gate, &findings](
                const DatasetStatistics& stats,
                uint64_t previous_version) -> absl::StatusOr<std::vector<std::string>> {
      std::shared_ptr<const FrozenSnapshot> previous;
      if (previous_version != 0 && gate->drift.has_value()) {
        NORMD_ASSIGN_OR_RETURN(previous, SharedSnapshot(entry, previous_version));
      }
      NORMD_ASSIGN_OR_RETURN(
          findings, CheckFreezeGate(*gate, entry.spec, stats, previous ? &previous->stats : nullptr,
                                    previous_version));
      return findings;
    };
  }
  NORMD_ASSIGN_OR_RETURN(FrozenSnapshot frozen,
                         shared_->Freeze(CatalogueIdentity(entry), absl::Now(), check));
  auto snapshot = std::make_shared<const FrozenSnapshot>(std::move(frozen));
  const VersionSummary summary{snapshot->version, snapshot->freeze_time,
                               snapshot->stats.split(Split::kTrain).samples, findings};
  absl::MutexLock lock(&entry.mu);
  std::vector<VersionSummary>& versions = entry.record.versions;
  if (versions.empty() || versions.back().version < summary.version) {
    // Ours is the newest this replica knows of; one frozen meanwhile elsewhere may be
    // missing before it until the watch brings the whole list.
    versions.push_back(summary);
    entry.record.next_version = summary.version + 1;
  }
  entry.snapshots.emplace(summary.version, std::move(snapshot));
  return summary;
}

absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> DatasetEngine::Snapshot(
    DatasetEntry& entry, uint64_t version) const {
  if (shared_ != nullptr) return SharedSnapshot(entry, version);
  absl::MutexLock lock(&entry.mu);
  const StoredDataset& record = entry.record;
  if (entry.deleted) return DeletedError(record.spec.name);
  if (record.versions.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset \"", record.spec.name, "\" has no frozen version; call Freeze first"));
  }
  const uint64_t latest = record.versions.back().version;
  if (version == 0) version = record.pinned_version != 0 ? record.pinned_version : latest;
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

absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> DatasetEngine::SharedSnapshot(
    DatasetEntry& entry, uint64_t version) const {
  StoredDataset identity;
  {
    absl::MutexLock lock(&entry.mu);
    if (entry.deleted) return DeletedError(entry.spec.name);
    if (version == 0 && entry.record.pinned_version != 0) version = entry.record.pinned_version;
    if (version == 0 && !entry.record.versions.empty()) {
      version = entry.record.versions.back().version;
    }
    if (auto cached = entry.snapshots.find(version); cached != entry.snapshots.end()) {
      return cached->second;
    }
    identity.spec = entry.spec;
    identity.generation = entry.record.generation;
  }
  if (version == 0) {
    // No version known here: perhaps frozen on another replica a moment ago.
    NORMD_ASSIGN_OR_RETURN(StoredDataset fresh, shared_->LoadDataset(entry.spec.name));
    if (fresh.generation != identity.generation) return DeletedError(entry.spec.name);
    if (fresh.versions.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset \"", entry.spec.name, "\" has no frozen version; call Freeze first"));
    }
    version = fresh.pinned_version != 0 ? fresh.pinned_version : fresh.versions.back().version;
    Remember(std::move(fresh));
  }
  // Read through: an explicit version frozen on another replica is served at once.
  NORMD_ASSIGN_OR_RETURN(FrozenSnapshot loaded, shared_->LoadSnapshot(identity, version));
  auto snapshot = std::make_shared<const FrozenSnapshot>(std::move(loaded));
  absl::MutexLock lock(&entry.mu);
  entry.snapshots.emplace(version, snapshot);
  return snapshot;
}

absl::StatusOr<StatisticsResult> DatasetEngine::GetStatistics(absl::string_view name,
                                                              uint64_t version) const {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  if (version == 0 && shared_ != nullptr) {
    NORMD_ASSIGN_OR_RETURN(DatasetStatistics live, shared_->LoadLive(CatalogueIdentity(*entry)));
    return StatisticsResult{0, std::make_shared<const DatasetStatistics>(std::move(live)),
                            entry->spec.sketch};
  }
  if (version == 0) {
    absl::MutexLock lock(&entry->mu);
    return StatisticsResult{0, std::make_shared<const DatasetStatistics>(entry->record.live),
                            entry->spec.sketch};
  }
  NORMD_ASSIGN_OR_RETURN(std::shared_ptr<const FrozenSnapshot> snapshot, Snapshot(*entry, version));
  // Aliasing constructor: the statistics live as long as the snapshot.
  return StatisticsResult{version,
                          std::shared_ptr<const DatasetStatistics>(snapshot, &snapshot->stats),
                          entry->spec.sketch};
}

absl::StatusOr<DatasetInfo> DatasetEngine::PinVersion(absl::string_view name, uint64_t version,
                                                      bool rollback) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  if (shared_ != nullptr) {
    NORMD_ASSIGN_OR_RETURN(
        StoredDataset written,
        shared_->UpdatePins(CatalogueIdentity(*entry), [&](StoredDataset& record) {
          return ChangePin(record, version, rollback);
        }));
    Remember(written);
    NORMD_ASSIGN_OR_RETURN(StoredDataset fresh, shared_->LoadDataset(name));
    return InfoOf(fresh);
  }
  absl::MutexLock lock(&entry->mu);
  if (entry->deleted) return DeletedError(name);
  StoredDataset& record = entry->record;
  const uint64_t pinned = record.pinned_version, previous = record.previous_pinned_version;
  const bool could_roll_back = record.pin_rollback;
  NORMD_RETURN_IF_ERROR(ChangePin(record, version, rollback));
  if (absl::Status stored = store_->PutCatalogue(record); !stored.ok()) {
    record.pinned_version = pinned;
    record.previous_pinned_version = previous;
    record.pin_rollback = could_roll_back;
    return stored;
  }
  return InfoOf(record);
}

absl::StatusOr<TrafficResult> DatasetEngine::GetTraffic(absl::string_view name, uint64_t version,
                                                        TrafficWindowKind window) const {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, Find(name));
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<const FrozenSnapshot> snapshot,
                         Snapshot(*entry, version));
  NORMD_ASSIGN_OR_RETURN(TrafficSnapshot traffic,
                         traffic_->Get(entry->spec, entry->incarnation, snapshot->version, window));
  return TrafficResult{snapshot->version, std::move(traffic), snapshot, entry->spec.sketch};
}

}  // namespace normd
