#include "server/store/rocksdb/rocksdb_store.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "server/store/records.h"
#include "server/store/rocksdb/stderr_logger.h"

namespace normd {
namespace {

// One letter per kind of key; see rocksdb_store.h.
constexpr absl::string_view kCatalogue = "d";
constexpr absl::string_view kLive = "l";
constexpr absl::string_view kWriter = "w";
constexpr absl::string_view kSnapshot = "s";
constexpr absl::string_view kTraffic = "t";

std::string Key(absl::string_view kind, absl::string_view name) {
  return absl::StrCat(kind, "/", name);
}

// "<kind>/<name>/": the prefix of every key of that kind in one dataset.
std::string DatasetPrefix(absl::string_view kind, absl::string_view name) {
  return absl::StrCat(kind, "/", name, "/");
}

std::string WriterKey(absl::string_view name, absl::string_view writer) {
  return absl::StrCat(DatasetPrefix(kWriter, name), writer);
}

// Big-endian so that a dataset's snapshots sort by version.
std::string SnapshotKey(absl::string_view name, uint64_t version) {
  std::string key = DatasetPrefix(kSnapshot, name);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((version >> shift) & 0xff));
  }
  return key;
}

std::string TrafficKey(absl::string_view name, uint64_t version) {
  return absl::StrCat(kTraffic, SnapshotKey(name, version).substr(kSnapshot.size()));
}

absl::string_view View(const rocksdb::Slice& slice) {
  return absl::string_view(slice.data(), slice.size());
}

// Deletes every key that starts with `prefix` (which ends in '/').
void DeletePrefix(rocksdb::WriteBatch& batch, const std::string& prefix) {
  std::string end = prefix;
  end.back() = static_cast<char>('/' + 1);
  batch.DeleteRange(prefix, end);
}

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNoSpace() || status.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

constexpr size_t kMemtableBytes = 8 << 20;
constexpr size_t kBlockCacheBytes = 8 << 20;

rocksdb::WriteOptions DurableWrite() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

// A decoding error of the record under `key` is damage to the store.
absl::Status DamagedRecord(const rocksdb::Slice& key, const absl::Status& status) {
  return absl::DataLossError(absl::StrCat("record ", key.ToString(), ": ", status.message()));
}

}  // namespace

RocksDbStore::RocksDbStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

RocksDbStore::~RocksDbStore() {
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const std::string& path) {
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
  // Memory: every commit rewrites a dataset's few-KiB live record, so RocksDB's
  // default 64 MiB memtable fills with superseded versions for a long while, and the
  // server's RSS grows with it (a soak saw 29 -> 53 MiB in 80 s) before the first
  // flush. The records are small and few: 8 MiB memtables (two at most) and an 8 MiB
  // block cache bound the store at a few tens of MiB, which bench/soak.py shows.
  options.write_buffer_size = kMemtableBytes;
  options.max_write_buffer_number = 2;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  NORMD_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(options, path, &raw), absl::StrCat("opening ", path)));
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::unique_ptr<rocksdb::DB>(raw)));
}

absl::Status RocksDbStore::LoadLiveAndWriters(StoredDataset& dataset) const {
  const std::string& name = dataset.spec.name;
  std::string value;
  // A catalogue entry without its live statistics is a damaged store, not a missing
  // dataset.
  NORMD_RETURN_IF_ERROR(FromRocks(db_->Get(rocksdb::ReadOptions(), Key(kLive, name), &value),
                                  absl::StrCat("reading the live statistics of ", name)),
                        absl::IsNotFound(_) ? absl::DataLossError(_.message()) : _);
  NORMD_ASSIGN_OR_RETURN(dataset.live, DecodeStatisticsRecord(value, dataset.spec),
                         DamagedRecord(Key(kLive, name), _));
  const std::string prefix = DatasetPrefix(kWriter, name);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    NORMD_ASSIGN_OR_RETURN(WriterMark mark, DecodeWriterRecord(View(it->value())),
                           DamagedRecord(it->key(), _));
    dataset.writers.emplace(View(it->key()).substr(prefix.size()), mark);
  }
  return FromRocks(it->status(), absl::StrCat("reading the writers of ", name));
}

absl::StatusOr<std::vector<StoredDataset>> RocksDbStore::LoadAllDatasets() {
  std::vector<StoredDataset> datasets;
  std::vector<size_t> legacy;  // datasets whose record still holds live and writers
  const std::string prefix = absl::StrCat(kCatalogue, "/");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    bool old_layout = false;
    NORMD_ASSIGN_OR_RETURN(StoredDataset dataset,
                           DecodeDatasetRecord(View(it->value()), &old_layout),
                           DamagedRecord(it->key(), _));
    if (old_layout) legacy.push_back(datasets.size());
    datasets.push_back(std::move(dataset));
  }
  NORMD_RETURN_IF_ERROR(FromRocks(it->status(), "listing datasets"));
  for (size_t i = 0; i < datasets.size(); ++i) {
    if (!std::binary_search(legacy.begin(), legacy.end(), i)) {
      NORMD_RETURN_IF_ERROR(LoadLiveAndWriters(datasets[i]));
    }
  }
  for (size_t i : legacy) {
    const StoredDataset& dataset = datasets[i];
    rocksdb::WriteBatch batch;
    batch.Put(Key(kCatalogue, dataset.spec.name), EncodeDatasetRecord(dataset));
    batch.Put(Key(kLive, dataset.spec.name), EncodeStatisticsRecord(dataset.live));
    for (const auto& [writer, mark] : dataset.writers) {
      batch.Put(WriterKey(dataset.spec.name, writer), EncodeWriterRecord(mark));
    }
    NORMD_RETURN_IF_ERROR(
        FromRocks(db_->Write(DurableWrite(), &batch),
                  absl::StrCat("moving dataset ", dataset.spec.name, " to per-writer keys")));
  }
  return datasets;
}

absl::Status RocksDbStore::CreateDataset(const StoredDataset& dataset) {
  const std::string& name = dataset.spec.name;
  rocksdb::WriteBatch batch;
  batch.Put(Key(kCatalogue, name), EncodeDatasetRecord(dataset));
  batch.Put(Key(kLive, name), EncodeStatisticsRecord(dataset.live));
  return FromRocks(db_->Write(DurableWrite(), &batch), absl::StrCat("writing dataset ", name));
}

absl::Status RocksDbStore::CommitIngest(const DatasetSpec& spec, const DatasetStatistics& live,
                                        const WriterMarkUpdate* writer) {
  rocksdb::WriteBatch batch;
  batch.Put(Key(kLive, spec.name), EncodeStatisticsRecord(live));
  if (writer != nullptr) {
    batch.Put(WriterKey(spec.name, writer->writer), EncodeWriterRecord(writer->mark));
    for (const std::string& forgotten : writer->forgotten) {
      batch.Delete(WriterKey(spec.name, forgotten));
    }
  }
  return FromRocks(db_->Write(DurableWrite(), &batch),
                   absl::StrCat("committing an ingest into dataset ", spec.name));
}

absl::Status RocksDbStore::PutVersion(const StoredDataset& dataset,
                                      const FrozenSnapshot& snapshot) {
  rocksdb::WriteBatch batch;
  batch.Put(SnapshotKey(dataset.spec.name, snapshot.version), EncodeSnapshotRecord(snapshot));
  batch.Put(Key(kCatalogue, dataset.spec.name), EncodeDatasetRecord(dataset));
  return FromRocks(db_->Write(DurableWrite(), &batch),
                   absl::StrCat("writing version ", snapshot.version, " of ", dataset.spec.name));
}

absl::StatusOr<FrozenSnapshot> RocksDbStore::LoadSnapshot(const DatasetSpec& spec,
                                                          uint64_t version) const {
  std::string value;
  const std::string what = absl::StrCat("version ", version, " of dataset ", spec.name);
  NORMD_RETURN_IF_ERROR(
      FromRocks(db_->Get(rocksdb::ReadOptions(), SnapshotKey(spec.name, version), &value),
                absl::StrCat("reading ", what)));
  NORMD_ASSIGN_OR_RETURN(FrozenSnapshot snapshot, DecodeSnapshotRecord(value, spec),
                         absl::DataLossError(absl::StrCat(what, ": ", _.message())));
  if (snapshot.version != version) {
    return absl::DataLossError(
        absl::StrCat(what, " is stored under a record of version ", snapshot.version));
  }
  return snapshot;
}

absl::Status RocksDbStore::DeleteDataset(absl::string_view name) {
  rocksdb::WriteBatch batch;
  batch.Delete(Key(kCatalogue, name));
  batch.Delete(Key(kLive, name));
  DeletePrefix(batch, DatasetPrefix(kWriter, name));
  DeletePrefix(batch, DatasetPrefix(kSnapshot, name));
  DeletePrefix(batch, DatasetPrefix(kTraffic, name));
  return FromRocks(db_->Write(DurableWrite(), &batch), absl::StrCat("deleting dataset ", name));
}

absl::Status RocksDbStore::PutCatalogue(const StoredDataset& dataset) {
  return FromRocks(
      db_->Put(DurableWrite(), Key(kCatalogue, dataset.spec.name), EncodeDatasetRecord(dataset)),
      absl::StrCat("writing the catalogue entry of ", dataset.spec.name));
}

absl::Status RocksDbStore::PutTraffic(const DatasetSpec& spec, const StoredTraffic& traffic) {
  return FromRocks(
      db_->Put(DurableWrite(), TrafficKey(spec.name, traffic.version),
               EncodeTrafficRecord(traffic)),
      absl::StrCat("writing the traffic of version ", traffic.version, " of ", spec.name));
}

absl::StatusOr<std::vector<StoredTraffic>> RocksDbStore::LoadTraffic(
    const DatasetSpec& spec) const {
  std::vector<StoredTraffic> all;
  const std::string prefix = DatasetPrefix(kTraffic, spec.name);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    NORMD_ASSIGN_OR_RETURN(StoredTraffic traffic, DecodeTrafficRecord(View(it->value()), spec),
                           DamagedRecord(it->key(), _));
    traffic.dataset = spec.name;
    all.push_back(std::move(traffic));
  }
  NORMD_RETURN_IF_ERROR(
      FromRocks(it->status(), absl::StrCat("reading the traffic of ", spec.name)));
  return all;
}

}  // namespace normd
