#include "server/engine/dataset_engine.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/dataset_statistics.h"
#include "server/engine/dataset_entry.h"

namespace normd {
namespace {

std::array<SplitTotals, kAllSplits.size()> TotalsOf(const StoredDataset& record) {
  std::array<SplitTotals, kAllSplits.size()> totals;
  for (Split split : kAllSplits) {
    const SplitStatistics& s = record.live.split(split);
    totals[static_cast<size_t>(split)] = {split, s.batches, s.samples};
  }
  return totals;
}

DatasetInfo InfoOf(const StoredDataset& record) {
  DatasetInfo info;
  info.spec = record.spec;
  info.create_time = record.create_time;
  info.totals = TotalsOf(record);
  info.versions = record.versions;
  info.latest_version = record.versions.empty() ? 0 : record.versions.back().version;
  return info;
}

// The writers a dataset remembers; beyond this the least recently committed are
// forgotten. A forgotten writer that resends is refused (its sequence no longer
// starts at 1), never counted twice.
constexpr size_t kMaxWritersPerDataset = 10000;

void EvictOldestWriters(std::map<std::string, WriterMark, std::less<>>& writers) {
  while (writers.size() > kMaxWritersPerDataset) {
    auto oldest = writers.begin();
    for (auto it = writers.begin(); it != writers.end(); ++it) {
      if (it->second.commit_time < oldest->second.commit_time) oldest = it;
    }
    writers.erase(oldest);
  }
}

absl::Status DeletedError(absl::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("dataset \"", name, "\" was deleted while the request was in flight"));
}

}  // namespace

// ---- IngestTransaction ----------------------------------------------------

IngestTransaction::IngestTransaction(DatasetEngine* engine, std::shared_ptr<DatasetEntry> entry)
    : engine_(engine), entry_(std::move(entry)), delta_(entry_->spec) {}

const std::string& IngestTransaction::dataset() const { return entry_->spec.name; }

absl::StatusOr<bool> IngestTransaction::CheckIdentity(BatchIdentity identity) {
  const bool first = batches_seen_ == 0;
  if (first && !identity.writer.empty()) {
    if (absl::Status status = ValidateName("writer_id", identity.writer); !status.ok()) {
      return status;
    }
    writer_ = std::string(identity.writer);
    absl::MutexLock lock(&entry_->mu);
    auto mark = entry_->record.writers.find(writer_);
    committed_at_start_ = mark == entry_->record.writers.end() ? 0 : mark->second.sequence;
  } else if (!identity.writer.empty() && identity.writer != writer_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "writer_id \"", identity.writer, "\" differs from the stream's first batch, which named \"",
        writer_, "\"; one stream carries one writer"));
  }
  if (writer_.empty()) {
    if (identity.sequence != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", identity.sequence,
                       " without a writer_id; name the writer in the first "
                       "batch of the stream"));
    }
    return false;
  }
  if (identity.sequence == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("writer \"", writer_, "\" sent sequence 0; sequences start at 1"));
  }
  if (!first && identity.sequence != last_sequence_ + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence must rise by one within a stream: expected ", last_sequence_ + 1,
                     ", got ", identity.sequence));
  }
  if (identity.sequence <= committed_at_start_) return true;
  if (first_new_sequence_ == 0 && identity.sequence != committed_at_start_ + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("writer \"", writer_, "\" has committed up to sequence ", committed_at_start_,
                     " in dataset \"", entry_->spec.name, "\"; the next batch must be ",
                     committed_at_start_ + 1, ", got ", identity.sequence));
  }
  return false;
}

absl::StatusOr<BatchSummary> IngestTransaction::Add(Split split, const TensorView& batch,
                                                    BatchIdentity identity) {
  absl::StatusOr<bool> duplicate = CheckIdentity(identity);
  if (!duplicate.ok()) return duplicate.status();
  BatchSummary summary;
  if (*duplicate) {
    ++duplicates_;
  } else {
    absl::StatusOr<BatchSummary> added = delta_.AddBatch(split, batch, engine_->pool_);
    if (!added.ok()) return added.status();
    summary = *added;
    if (!writer_.empty() && first_new_sequence_ == 0) first_new_sequence_ = identity.sequence;
  }
  ++batches_seen_;
  last_sequence_ = identity.sequence;
  return summary;
}

absl::StatusOr<std::array<SplitTotals, kAllSplits.size()>> IngestTransaction::Commit() {
  absl::MutexLock lock(&entry_->mu);
  if (entry_->deleted) return DeletedError(entry_->spec.name);
  StoredDataset updated = entry_->record;
  if (!writer_.empty()) {
    const auto mark = updated.writers.find(writer_);
    const uint64_t committed = mark == updated.writers.end() ? 0 : mark->second.sequence;
    writer_sequence_ = committed;
    if (first_new_sequence_ == 0) return TotalsOf(entry_->record);  // nothing new
    if (committed >= last_sequence_) {
      // A concurrent stream of the same writer committed these batches meanwhile.
      duplicates_ += delta_.batches();
      delta_ = IngestDelta(entry_->spec);
      return TotalsOf(entry_->record);
    }
    if (committed + 1 != first_new_sequence_) {
      return absl::AbortedError(
          absl::StrCat("writer \"", writer_, "\" committed up to sequence ", committed,
                       " while this stream ran; resend from sequence ", committed + 1,
                       " (already committed batches are acknowledged as duplicates)"));
    }
    updated.writers[writer_] = {last_sequence_, absl::Now()};
    EvictOldestWriters(updated.writers);
    writer_sequence_ = last_sequence_;
  }
  delta_.ApplyTo(updated.live);
  if (absl::Status status = engine_->store_->PutDataset(updated); !status.ok()) return status;
  entry_->record = std::move(updated);
  return TotalsOf(entry_->record);
}

// ---- DatasetEngine --------------------------------------------------------

DatasetEngine::DatasetEngine(std::unique_ptr<DatasetStore> store, WorkerPool* pool)
    : store_(std::move(store)), pool_(pool) {}
DatasetEngine::~DatasetEngine() = default;

absl::StatusOr<std::unique_ptr<DatasetEngine>> DatasetEngine::Open(
    std::unique_ptr<DatasetStore> store, WorkerPool* pool) {
  absl::StatusOr<std::vector<StoredDataset>> stored = store->LoadAllDatasets();
  if (!stored.ok()) return stored.status();
  std::unique_ptr<DatasetEngine> engine(new DatasetEngine(std::move(store), pool));
  absl::MutexLock lock(&engine->mu_);
  for (StoredDataset& dataset : *stored) {
    std::string name = dataset.spec.name;
    engine->datasets_.emplace(std::move(name), std::make_shared<DatasetEntry>(std::move(dataset)));
  }
  return engine;
}

absl::StatusOr<std::shared_ptr<DatasetEntry>> DatasetEngine::Find(absl::string_view name) const {
  if (absl::Status status = ValidateDatasetName(name); !status.ok()) return status;
  absl::ReaderMutexLock lock(&mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
  }
  return it->second;
}

absl::StatusOr<DatasetInfo> DatasetEngine::Create(const DatasetSpec& spec) {
  if (absl::Status status = ValidateDatasetSpec(spec); !status.ok()) return status;
  StoredDataset record;
  record.spec = spec;
  record.create_time = absl::Now();
  record.live = DatasetStatistics::Empty(spec);
  absl::MutexLock lock(&mu_);
  if (datasets_.contains(spec.name)) {
    return absl::AlreadyExistsError(absl::StrCat("dataset \"", spec.name, "\" already exists"));
  }
  if (absl::Status status = store_->PutDataset(record); !status.ok()) return status;
  DatasetInfo info = InfoOf(record);
  datasets_.emplace(spec.name, std::make_shared<DatasetEntry>(std::move(record)));
  return info;
}

absl::StatusOr<DatasetInfo> DatasetEngine::Get(absl::string_view name) const {
  absl::StatusOr<std::shared_ptr<DatasetEntry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  absl::MutexLock lock(&(*entry)->mu);
  return InfoOf((*entry)->record);
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
  if (absl::Status status = ValidateDatasetName(name); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
  }
  // Held past entry_lock: erasing the map's reference must not destroy the entry, and
  // its mutex, while that mutex is still locked (ThreadSanitizer found this).
  const std::shared_ptr<DatasetEntry> entry = it->second;
  absl::MutexLock entry_lock(&entry->mu);
  if (absl::Status status = store_->DeleteDataset(name); !status.ok()) return status;
  entry->deleted = true;
  datasets_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<IngestTransaction> DatasetEngine::BeginIngest(absl::string_view name) {
  absl::StatusOr<std::shared_ptr<DatasetEntry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  return IngestTransaction(this, *std::move(entry));
}

absl::StatusOr<VersionSummary> DatasetEngine::Freeze(absl::string_view name) {
  absl::StatusOr<std::shared_ptr<DatasetEntry>> found = Find(name);
  if (!found.ok()) return found.status();
  DatasetEntry& entry = **found;
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

  StoredDataset updated = entry.record;
  updated.next_version = snapshot->version + 1;
  updated.versions.push_back(summary);
  if (absl::Status status = store_->PutDatasetAndSnapshot(updated, *snapshot); !status.ok()) {
    return status;
  }
  entry.record = std::move(updated);
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
  absl::StatusOr<FrozenSnapshot> loaded = store_->LoadSnapshot(record.spec, version);
  if (!loaded.ok()) return loaded.status();
  auto snapshot = std::make_shared<const FrozenSnapshot>(*std::move(loaded));
  entry.snapshots.emplace(version, snapshot);
  return snapshot;
}

absl::StatusOr<StatisticsResult> DatasetEngine::GetStatistics(absl::string_view name,
                                                              uint64_t version) const {
  absl::StatusOr<std::shared_ptr<DatasetEntry>> entry = Find(name);
  if (!entry.ok()) return entry.status();
  if (version == 0) {
    absl::MutexLock lock(&(*entry)->mu);
    return StatisticsResult{0, std::make_shared<const DatasetStatistics>((*entry)->record.live)};
  }
  absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> snapshot = Snapshot(**entry, version);
  if (!snapshot.ok()) return snapshot.status();
  // Aliasing constructor: the statistics live as long as the snapshot.
  return StatisticsResult{version,
                          std::shared_ptr<const DatasetStatistics>(*snapshot, &(*snapshot)->stats)};
}

}  // namespace normd
