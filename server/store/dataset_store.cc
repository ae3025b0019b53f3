#include "server/store/dataset_store.h"

#include <filesystem>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "server/store/records.h"
#include "server/store/stderr_logger.h"

namespace normd {
namespace {

constexpr absl::string_view kDatasetPrefix = "d/";
constexpr absl::string_view kSnapshotPrefix = "s/";

std::string DatasetKey(absl::string_view name) { return absl::StrCat(kDatasetPrefix, name); }

std::string SnapshotPrefix(absl::string_view name) {
  return absl::StrCat(kSnapshotPrefix, name, "/");
}

// Big-endian so that a dataset's snapshots sort by version.
std::string SnapshotKey(absl::string_view name, uint64_t version) {
  std::string key = SnapshotPrefix(name);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((version >> shift) & 0xff));
  }
  return key;
}

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNoSpace() || status.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

rocksdb::WriteOptions DurableWrite() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

}  // namespace

DatasetStore::DatasetStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

DatasetStore::~DatasetStore() {
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<DatasetStore>> DatasetStore::Open(const std::string& path) {
  // A new store is created only in a missing or empty directory. RocksDB would also
  // create one where CURRENT alone was lost, beside the old tables: normd would then
  // start empty and serve as if every dataset had never existed.
  std::error_code error;
  const bool fresh =
      !std::filesystem::exists(path, error) || std::filesystem::is_empty(path, error);
  if (!fresh && !std::filesystem::exists(std::filesystem::path(path) / "CURRENT", error)) {
    return absl::DataLossError(absl::StrCat(
        "opening ", path,
        ": the directory holds files but no CURRENT file; it is a damaged "
        "RocksDB store or not one at all, and normd will not create an empty store over it"));
  }
  if (fresh && !std::filesystem::create_directories(path, error) && error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the store directory ", path, ": ", error.message()));
  }
  rocksdb::Options options;
  options.create_if_missing = fresh;
  options.info_log = std::make_shared<StderrLogger>(rocksdb::InfoLogLevel::WARN_LEVEL);
  options.paranoid_checks = true;
  // Every acknowledged write was synced, so damage anywhere in the write-ahead log but
  // a torn tail (a write that never returned) is lost acknowledged data: refuse to open
  // rather than replay up to the damage and serve statistics missing those batches,
  // which is what the default point-in-time recovery would do.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  rocksdb::DB* raw = nullptr;
  if (absl::Status status =
          FromRocks(rocksdb::DB::Open(options, path, &raw), absl::StrCat("opening ", path));
      !status.ok()) {
    return status;
  }
  return std::unique_ptr<DatasetStore>(new DatasetStore(std::unique_ptr<rocksdb::DB>(raw)));
}

absl::StatusOr<std::vector<StoredDataset>> DatasetStore::LoadAllDatasets() const {
  std::vector<StoredDataset> datasets;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice prefix(kDatasetPrefix.data(), kDatasetPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::StatusOr<StoredDataset> dataset =
        DecodeDatasetRecord(absl::string_view(it->value().data(), it->value().size()));
    if (!dataset.ok()) {
      return absl::DataLossError(
          absl::StrCat("record ", it->key().ToString(), ": ", dataset.status().message()));
    }
    datasets.push_back(*std::move(dataset));
  }
  if (absl::Status status = FromRocks(it->status(), "listing datasets"); !status.ok()) {
    return status;
  }
  return datasets;
}

absl::Status DatasetStore::PutDataset(const StoredDataset& dataset) {
  rocksdb::WriteBatch batch;
  batch.Put(DatasetKey(dataset.spec.name), EncodeDatasetRecord(dataset));
  return FromRocks(db_->Write(DurableWrite(), &batch),
                   absl::StrCat("writing dataset ", dataset.spec.name));
}

absl::Status DatasetStore::PutDatasetAndSnapshot(const StoredDataset& dataset,
                                                 const FrozenSnapshot& snapshot) {
  rocksdb::WriteBatch batch;
  batch.Put(SnapshotKey(dataset.spec.name, snapshot.version), EncodeSnapshotRecord(snapshot));
  batch.Put(DatasetKey(dataset.spec.name), EncodeDatasetRecord(dataset));
  return FromRocks(db_->Write(DurableWrite(), &batch),
                   absl::StrCat("writing version ", snapshot.version, " of ", dataset.spec.name));
}

absl::StatusOr<FrozenSnapshot> DatasetStore::LoadSnapshot(const DatasetSpec& spec,
                                                          uint64_t version) const {
  std::string value;
  const std::string what = absl::StrCat("version ", version, " of dataset ", spec.name);
  if (absl::Status status =
          FromRocks(db_->Get(rocksdb::ReadOptions(), SnapshotKey(spec.name, version), &value),
                    absl::StrCat("reading ", what));
      !status.ok()) {
    return status;
  }
  absl::StatusOr<FrozenSnapshot> snapshot = DecodeSnapshotRecord(value, spec);
  if (!snapshot.ok()) {
    return absl::DataLossError(absl::StrCat(what, ": ", snapshot.status().message()));
  }
  if (snapshot->version != version) {
    return absl::DataLossError(
        absl::StrCat(what, " is stored under a record of version ", snapshot->version));
  }
  return snapshot;
}

absl::Status DatasetStore::DeleteDataset(absl::string_view name) {
  rocksdb::WriteBatch batch;
  batch.Delete(DatasetKey(name));
  std::string begin = SnapshotPrefix(name);
  std::string end = begin;
  end.back() = static_cast<char>('/' + 1);
  batch.DeleteRange(begin, end);
  return FromRocks(db_->Write(DurableWrite(), &batch), absl::StrCat("deleting dataset ", name));
}

}  // namespace normd
