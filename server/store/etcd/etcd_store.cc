#include "server/store/etcd/etcd_store.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/observability/structured_log.h"
#include "server/store/etcd/guarded_write.h"
#include "server/store/records.h"

namespace normd {
namespace {

using etcdserverpb::KeyValue;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnResponse;

uint64_t NewWriteId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* bits ABSL_GUARDED_BY(mu) = new absl::BitGen();
  absl::MutexLock lock(&mu);
  uint64_t id = 0;
  while (id == 0) id = absl::Uniform<uint64_t>(*bits);
  return id;
}

absl::Status DeletedMeanwhile(absl::string_view name) {
  return absl::NotFoundError(
      absl::StrCat("dataset \"", name, "\" was deleted while the request was in flight"));
}

absl::StatusOr<StoredDataset> DecodeCatalog(const KeyValue& kv) {
  NORMD_ASSIGN_OR_RETURN(StoredDataset dataset, DecodeDatasetRecord(kv.value()));
  dataset.generation = kv.create_revision();
  dataset.live = DatasetStatistics{};  // statistics live in the partitions
  return dataset;
}

absl::Status AddTotals(const RangeResponse& range, DatasetStatistics& totals) {
  for (const KeyValue& kv : range.kvs()) NORMD_RETURN_IF_ERROR(AddTotalsRecord(kv.value(), totals));
  return absl::OkStatus();
}

std::string Quoted(absl::string_view what, absl::string_view name) {
  return absl::StrCat(what, " dataset \"", name, "\"");
}

}  // namespace

// A dataset as one read saw it.
struct EtcdStore::DatasetState {
  StoredDataset dataset;
  int64_t catalog_mod_revision = 0;
  int64_t revision = 0;               // of the read
  std::vector<Partition> partitions;  // in key order, when asked for
  DatasetStatistics totals;           // when asked for
};

EtcdStore::EtcdStore(EtcdStoreOptions options, std::unique_ptr<EtcdClient> client)
    : replica_(absl::StrFormat("%016x", NewWriteId())),
      options_(std::move(options)),
      client_(std::move(client)),
      keys_(options_.prefix) {}
EtcdStore::~EtcdStore() = default;

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(EtcdStoreOptions options) {
  NORMD_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client, EtcdClient::Connect(options.etcd));
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(options), std::move(client)));
}

// ---- reads ------------------------------------------------------------------------

absl::StatusOr<EtcdStore::DatasetState> EtcdStore::ReadState(absl::string_view name,
                                                             bool partitions, bool totals) {
  EtcdTxn reads;
  reads.Get(keys_.Catalog(name));
  if (partitions) reads.GetPrefix(keys_.PartPrefix(name));
  if (totals) reads.GetPrefix(keys_.TotalPrefix(name));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, client_->Read(reads.request()));
  const auto& catalog = read.responses(0).response_range();
  if (catalog.kvs_size() == 0) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" does not exist"));
  }
  DatasetState state;
  NORMD_ASSIGN_OR_RETURN(state.dataset, DecodeCatalog(catalog.kvs(0)));
  state.catalog_mod_revision = catalog.kvs(0).mod_revision();
  state.revision = read.header().revision();
  int next = 1;
  if (partitions) {
    const std::string prefix = keys_.PartPrefix(name);
    for (const KeyValue& kv : read.responses(next++).response_range().kvs()) {
      Partition partition;
      partition.name = std::string(absl::StripPrefix(kv.key(), prefix));
      partition.mod_revision = kv.mod_revision();
      NORMD_ASSIGN_OR_RETURN(partition.record,
                             DecodePartitionRecord(kv.value(), state.dataset.spec));
      state.partitions.push_back(std::move(partition));
    }
  }
  if (totals) NORMD_RETURN_IF_ERROR(AddTotals(read.responses(next++).response_range(), state.totals));
  return state;
}

absl::StatusOr<EtcdStore::DatasetState> EtcdStore::ReadIncarnation(const StoredDataset& dataset,
                                                                   bool partitions) {
  absl::StatusOr<DatasetState> state = ReadState(dataset.spec.name, partitions, false);
  if (absl::IsNotFound(state.status()) ||
      (state.ok() && state->dataset.generation != dataset.generation)) {
    return DeletedMeanwhile(dataset.spec.name);
  }
  return state;
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::ReadCatalogue(const std::string& from,
                                                                    size_t limit,
                                                                    int64_t* revision) {
  RangeRequest range;
  range.set_key(from);
  range.set_range_end(PrefixEnd(keys_.CatalogPrefix()));
  range.set_limit(static_cast<int64_t>(limit));
  NORMD_ASSIGN_OR_RETURN(const RangeResponse response, client_->ReadRange(range));
  std::vector<StoredDataset> datasets;
  for (const KeyValue& kv : response.kvs()) {
    NORMD_ASSIGN_OR_RETURN(StoredDataset dataset, DecodeCatalog(kv));
    datasets.push_back(std::move(dataset));
  }
  if (revision != nullptr) *revision = response.header().revision();
  return datasets;
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::LoadCatalogue(int64_t* revision) {
  return ReadCatalogue(keys_.CatalogPrefix(), 0, revision);
}

void EtcdStore::WatchCatalogue(int64_t revision,
                               std::function<void(const CatalogueChange&)> on_change,
                               std::function<void(std::vector<StoredDataset>)> on_resync) {
  const std::string prefix = keys_.CatalogPrefix();
  client_->Watch(
      prefix, PrefixEnd(prefix), revision + 1,
      [this, on_change](const etcdserverpb::WatchResponse& response) {
        for (const etcdserverpb::Event& event : response.events()) {
          CatalogueChange change;
          change.name = keys_.NameOf(event.kv().key());
          change.revision = event.kv().mod_revision();
          if (event.type() == etcdserverpb::Event::PUT) {
            absl::StatusOr<StoredDataset> dataset = DecodeCatalog(event.kv());
            if (!dataset.ok()) {
              Log(LogLevel::kError, "etcd_catalogue_undecodable",
                  {{"dataset", change.name}, {"error", dataset.status().ToString()}});
              continue;
            }
            change.dataset = *std::move(dataset);
          }
          on_change(change);
        }
      },
      [this, on_resync]() -> int64_t {
        int64_t at = 0;
        absl::StatusOr<std::vector<StoredDataset>> all = LoadCatalogue(&at);
        if (all.ok()) on_resync(*std::move(all));
        return at;
      });
}

absl::StatusOr<StoredDataset> EtcdStore::LoadDataset(absl::string_view name) {
  NORMD_ASSIGN_OR_RETURN(DatasetState state, ReadState(name, false, true));
  state.dataset.live = std::move(state.totals);
  return std::move(state.dataset);
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::ListDatasets(absl::string_view after,
                                                                   size_t limit) {
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> datasets,
                         ReadCatalogue(after.empty() ? keys_.CatalogPrefix()
                                                     : keys_.Catalog(after) + std::string(1, '\0'),
                                       limit, nullptr));
  // Totals, many datasets per Txn (etcd allows 128 operations in one).
  for (size_t start = 0; start < datasets.size(); start += 100) {
    const size_t end = std::min(datasets.size(), start + 100);
    EtcdTxn reads;
    for (size_t i = start; i < end; ++i) reads.GetPrefix(keys_.TotalPrefix(datasets[i].spec.name));
    NORMD_ASSIGN_OR_RETURN(const TxnResponse read, client_->Read(reads.request()));
    for (size_t i = start; i < end; ++i) {
      NORMD_RETURN_IF_ERROR(AddTotals(read.responses(static_cast<int>(i - start)).response_range(),
                                      datasets[i].live));
    }
  }
  return datasets;
}

absl::StatusOr<DatasetStatistics> EtcdStore::LoadLive(const StoredDataset& dataset) {
  NORMD_ASSIGN_OR_RETURN(const DatasetState state, ReadIncarnation(dataset, true));
  DatasetStatistics live = MergePartitions(dataset.spec, state.partitions);
  MaybeFold(dataset, state);
  return live;
}

absl::StatusOr<uint64_t> EtcdStore::WriterSequence(const StoredDataset& dataset,
                                                   absl::string_view writer) {
  const std::string& name = dataset.spec.name;
  EtcdTxn reads;
  reads.Get(keys_.Catalog(name))
      .Get(keys_.Part(name, writer))
      .Get(keys_.Part(name, kSharedPartition));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, client_->Read(reads.request()));
  const auto& catalog = read.responses(0).response_range();
  if (catalog.kvs_size() == 0 || catalog.kvs(0).create_revision() != dataset.generation) {
    return DeletedMeanwhile(name);
  }
  for (int i : {1, 2}) {
    const auto& range = read.responses(i).response_range();
    if (range.kvs_size() == 0) continue;
    NORMD_ASSIGN_OR_RETURN(StoredPartition partition,
                           DecodePartitionRecord(range.kvs(0).value(), dataset.spec));
    const auto mark = partition.writers.find(writer);
    const uint64_t sequence = mark == partition.writers.end() ? 0 : mark->second.sequence;
    // The stream's commit will most likely find this partition as it is now.
    RememberPartition(range.kvs(0).key(), {range.kvs(0).mod_revision(), std::move(partition)});
    if (sequence > 0) return sequence;
  }
  return uint64_t{0};
}

absl::StatusOr<FrozenSnapshot> EtcdStore::LoadSnapshot(const StoredDataset& dataset,
                                                       uint64_t version) {
  const std::string& name = dataset.spec.name;
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read,
                         client_->Read(EtcdTxn().Get(keys_.Version(name, version)).request()));
  const auto& found = read.responses(0).response_range();
  if (found.kvs_size() == 0) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" has no version ", version));
  }
  return DecodeSnapshotRecord(found.kvs(0).value(), dataset.spec);
}

absl::StatusOr<std::vector<StoredTraffic>> EtcdStore::LoadTraffic(const DatasetSpec& spec) const {
  NORMD_ASSIGN_OR_RETURN(
      const TxnResponse read,
      client_->Read(EtcdTxn().GetPrefix(keys_.TrafficPrefix(spec.name)).request()));
  std::vector<StoredTraffic> all;
  for (const KeyValue& kv : read.responses(0).response_range().kvs()) {
    NORMD_ASSIGN_OR_RETURN(StoredTraffic traffic, DecodeTrafficRecord(kv.value(), spec),
                           absl::DataLossError(absl::StrCat(kv.key(), ": ", _.message())));
    traffic.dataset = spec.name;
    all.push_back(std::move(traffic));
  }
  return all;
}

// ---- guarded writes (guarded_write.h) ------------------------------------------------

absl::StatusOr<StoredDataset> EtcdStore::CreateDataset(const DatasetSpec& spec,
                                                       absl::Time create_time) {
  if (const int64_t most = EtcdMaxChannels(spec); spec.channels > most) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channels must be at most ", most,
        " with the etcd store (a writer's statistics are one etcd value, and etcd refuses "
        "requests over 1.5 MiB by default",
        spec.sketch.has_value()
            ? absl::StrCat("; quantile sketches of up to ", spec.sketch->max_buckets,
                           " buckets take up to ", SketchBytesPerChannel(spec),
                           " bytes a channel (with any fixed histogram bins): lower sketch "
                           "max_buckets, or disable sketches, for more channels")
            : "",
        "), got ", spec.channels));
  }
  const std::string catalog_key = keys_.Catalog(spec.name);
  const std::string retired_key = keys_.Retired(spec.name);
  const uint64_t write_id = NewWriteId();
  using Step = GuardedStep<StoredDataset>;
  return RunGuardedWrite<StoredDataset>(
      *client_, Quoted("the creation of", spec.name),
      [&](const GuardedRound&) -> absl::StatusOr<Step> {
        NORMD_ASSIGN_OR_RETURN(const TxnResponse read,
                               client_->Read(EtcdTxn().Get(catalog_key).Get(retired_key).request()));
        const auto& catalog = read.responses(0).response_range();
        const auto& retired = read.responses(1).response_range();
        if (catalog.kvs_size() > 0) {
          NORMD_ASSIGN_OR_RETURN(StoredDataset existing, DecodeCatalog(catalog.kvs(0)));
          if (existing.last_write == write_id) return Step::Answer(existing);  // ours landed
          return absl::AlreadyExistsError(
              absl::StrCat("dataset \"", spec.name, "\" already exists"));
        }
        StoredDataset dataset;
        dataset.spec = spec;
        dataset.create_time = create_time;
        dataset.last_write = write_id;
        int64_t retired_revision = 0;
        if (retired.kvs_size() > 0) {
          retired_revision = retired.kvs(0).mod_revision();
          if (!absl::SimpleAtoi(retired.kvs(0).value(), &dataset.next_version)) {
            return absl::DataLossError(absl::StrCat("the retired version counter of \"",
                                                    spec.name, "\" does not parse"));
          }
        }
        EtcdTxn txn;
        // Created, deleted or retired meanwhile: decide again.
        txn.IfAbsent(catalog_key)
            .IfModifiedAt(retired_key, retired_revision)
            .Put(catalog_key, EncodeDatasetRecord(dataset));
        return Step::Write(std::move(txn),
                           [dataset](const TxnResponse& written) mutable
                           -> absl::StatusOr<StoredDataset> {
                             dataset.generation = written.header().revision();
                             dataset.live = DatasetStatistics{};
                             return dataset;
                           });
      });
}

absl::Status EtcdStore::DeleteDataset(absl::string_view name) {
  std::optional<int64_t> deleting;  // the generation an attempt whose answer was lost deleted
  using Step = GuardedStep<bool>;
  return RunGuardedWrite<bool>(
             *client_, Quoted("the deletion of", name),
             [&](const GuardedRound& round) -> absl::StatusOr<Step> {
               absl::StatusOr<DatasetState> state = ReadState(name, false, false);
               if (round.answer_lost && deleting.has_value()) {
                 // Ours landed: the name is gone, or was created again since.
                 if (absl::IsNotFound(state.status())) return Step::Answer(true);
                 if (state.ok() && state->dataset.generation != *deleting) {
                   return Step::Answer(true);
                 }
               }
               NORMD_RETURN_IF_ERROR(state.status());
               deleting = state->dataset.generation;
               EtcdTxn txn;
               // Frozen or pinned meanwhile: decide again.
               txn.IfModifiedAt(keys_.Catalog(name), state->catalog_mod_revision)
                   .Delete(keys_.Catalog(name))
                   .DeletePrefix(keys_.PartPrefix(name))
                   .DeletePrefix(keys_.TotalPrefix(name))
                   .DeletePrefix(keys_.VersionPrefix(name))
                   .DeletePrefix(keys_.TrafficPrefix(name))
                   // Version numbers continue after a re-create, so a replica's cached
                   // snapshot of an old version can never pass for a new one.
                   .Put(keys_.Retired(name), absl::StrCat(state->dataset.next_version));
               return Step::Write(std::move(txn),
                                  [](const TxnResponse&) -> absl::StatusOr<bool> { return true; });
             })
      .status();
}

std::optional<EtcdStore::CachedPartition> EtcdStore::LastKnown(const std::string& key) {
  absl::MutexLock lock(&cache_mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

void EtcdStore::RememberPartition(const std::string& key, CachedPartition partition) {
  absl::MutexLock lock(&cache_mu_);
  if (cache_.size() >= kMaxCachedPartitions) cache_.clear();  // rarely: many writers at once
  cache_.insert_or_assign(key, std::move(partition));
}

absl::StatusOr<SharedCommitResult> EtcdStore::Commit(const StoredDataset& dataset,
                                                     const SharedCommit& commit) {
  const DatasetSpec& spec = dataset.spec;
  const std::string& name = spec.name;
  const absl::string_view partition_name =
      !commit.writer.empty() && spec.accumulator != AccumulatorKind::kRunningAverage
          ? commit.writer
          : kSharedPartition;
  const bool own_partition = partition_name != kSharedPartition;
  const std::string part_key = keys_.Part(name, partition_name);
  const std::string total_key = keys_.Total(name, partition_name);
  const std::string total_prefix = keys_.TotalPrefix(name);
  const uint64_t commit_id = NewWriteId();
  std::optional<int64_t> guarded;  // the revision the last attempt's write was guarded by

  // The write of `decision` over the partition at revision `guard`; its reply holds the
  // dataset's totals after it.
  auto write = [&](int64_t guard, StoredPartition next) {
    guarded = guard;
    EtcdTxn txn;
    txn.IfCreatedAt(keys_.Catalog(name), dataset.generation)
        .IfModifiedAt(part_key, guard)
        .Put(part_key, EncodePartitionRecord(next))
        .Put(total_key, EncodeTotalsRecord(next.stats))
        .GetPrefix(total_prefix);
    return GuardedStep<SharedCommitResult>::Write(
        std::move(txn),
        [this, &part_key, &commit, next = std::move(next)](
            const TxnResponse& written) -> absl::StatusOr<SharedCommitResult> {
          RememberPartition(part_key, {written.header().revision(), next});
          SharedCommitResult result;
          result.applied = true;
          result.writer_sequence = commit.last_sequence;
          NORMD_RETURN_IF_ERROR(AddTotals(written.responses(2).response_range(), result.totals));
          return result;
        });
  };
  using Step = GuardedStep<SharedCommitResult>;
  return RunGuardedWrite<SharedCommitResult>(
      *client_, Quoted("the commit to", name),
      [&](const GuardedRound& round) -> absl::StatusOr<Step> {
        // The first round tries the partition as this replica last wrote or read it: a
        // writer's streams usually find it unchanged, and then the commit is one Txn.
        // If it moved (another replica took one of the writer's streams), the guard
        // fails and the next round reads it.
        if (round.attempt == 0) {
          if (std::optional<CachedPartition> cached = LastKnown(part_key); cached.has_value()) {
            absl::StatusOr<CommitDecision> decision =
                DecideCommit(commit, cached->record, nullptr, commit_id);
            if (decision.ok() && decision->apply) {
              return write(cached->mod_revision, std::move(decision->next));
            }
          }
        }
        EtcdTxn reads;
        reads.Get(keys_.Catalog(name)).Get(part_key).GetPrefix(total_prefix);
        if (own_partition) reads.Get(keys_.Part(name, kSharedPartition));
        NORMD_ASSIGN_OR_RETURN(const TxnResponse read, client_->Read(reads.request()));
        const auto& catalog = read.responses(0).response_range();
        if (catalog.kvs_size() == 0 || catalog.kvs(0).create_revision() != dataset.generation) {
          return DeletedMeanwhile(name);
        }
        CachedPartition partition;
        if (const auto& part = read.responses(1).response_range(); part.kvs_size() > 0) {
          partition.mod_revision = part.kvs(0).mod_revision();
          NORMD_ASSIGN_OR_RETURN(partition.record,
                                 DecodePartitionRecord(part.kvs(0).value(), spec));
        } else {
          partition.record.stats = DatasetStatistics::Empty(spec);
        }
        SharedCommitResult result;
        const auto& totals = read.responses(2).response_range();
        if (partition.record.last_commit == commit_id) {
          // An attempt whose answer was lost had landed.
          Log(LogLevel::kInfo, "etcd_commit_recognised",
              {{"dataset", name}, {"writer", std::string(commit.writer)}});
          RememberPartition(part_key, partition);
          result.applied = true;
          result.writer_sequence = commit.last_sequence;
          NORMD_RETURN_IF_ERROR(AddTotals(totals, result.totals));
          return Step::Answer(std::move(result));
        }
        if (commit.writer.empty() && round.answer_lost && guarded.has_value() &&
            partition.mod_revision != *guarded) {
          // Without a writer there is no sequence to tell ours from another commit.
          return absl::UnavailableError(absl::StrCat(
              "the commit to dataset \"", name,
              "\" may or may not have applied (its answer was lost, and the partition moved "
              "since): resend it with a writer id to make a resend count once"));
        }
        std::optional<StoredPartition> shared;
        if (own_partition && read.responses(3).response_range().kvs_size() > 0) {
          NORMD_ASSIGN_OR_RETURN(
              shared,
              DecodePartitionRecord(read.responses(3).response_range().kvs(0).value(), spec));
        }
        NORMD_ASSIGN_OR_RETURN(
            CommitDecision decision,
            DecideCommit(commit, partition.record, shared ? &*shared : nullptr, commit_id));
        if (!decision.apply) {
          // Committed already: by another stream of the writer, or by an attempt of ours.
          result.writer_sequence = decision.committed;
          NORMD_RETURN_IF_ERROR(AddTotals(totals, result.totals));
          return Step::Answer(std::move(result));
        }
        return write(partition.mod_revision, std::move(decision.next));
      });
}

absl::StatusOr<FrozenSnapshot> EtcdStore::Freeze(const StoredDataset& dataset,
                                                 absl::Time freeze_time, const FreezeCheck& check) {
  const std::string& name = dataset.spec.name;
  const uint64_t write_id = NewWriteId();
  using Step = GuardedStep<FrozenSnapshot>;
  return RunGuardedWrite<FrozenSnapshot>(
      *client_, Quoted("the freeze of", name),
      [&](const GuardedRound&) -> absl::StatusOr<Step> {
        NORMD_ASSIGN_OR_RETURN(DatasetState state, ReadIncarnation(dataset, true));
        if (state.dataset.last_write == write_id) {  // ours landed
          return Step::Answer(LoadSnapshot(dataset, state.dataset.versions.back().version));
        }
        FrozenSnapshot snapshot;
        snapshot.stats = MergePartitions(dataset.spec, state.partitions);
        const uint64_t train_samples = snapshot.stats.split(Split::kTrain).samples;
        if (train_samples == 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("dataset \"", name,
                           "\" has no training data yet; ingest train batches before Freeze"));
        }
        std::vector<std::string> findings;
        if (check) {
          const uint64_t previous =
              state.dataset.versions.empty() ? 0 : state.dataset.versions.back().version;
          NORMD_ASSIGN_OR_RETURN(findings, check(snapshot.stats, previous));
        }
        snapshot.version = state.dataset.next_version;
        snapshot.freeze_time = freeze_time;
        StoredDataset catalogue = state.dataset;
        catalogue.next_version = snapshot.version + 1;
        catalogue.last_write = write_id;
        catalogue.versions.push_back(
            {snapshot.version, freeze_time, train_samples, std::move(findings)});
        EtcdTxn txn;
        // Another replica froze first: the next number.
        txn.IfModifiedAt(keys_.Catalog(name), state.catalog_mod_revision)
            .Put(keys_.Catalog(name), EncodeDatasetRecord(catalogue))
            .Put(keys_.Version(name, snapshot.version), EncodeSnapshotRecord(snapshot));
        return Step::Write(std::move(txn),
                           [this, &dataset, state = std::move(state), snapshot](
                               const TxnResponse&) -> absl::StatusOr<FrozenSnapshot> {
                             MaybeFold(dataset, state);
                             return snapshot;
                           });
      });
}

absl::StatusOr<StoredDataset> EtcdStore::UpdatePins(
    const StoredDataset& dataset, const std::function<absl::Status(StoredDataset&)>& change) {
  const std::string& name = dataset.spec.name;
  const uint64_t write_id = NewWriteId();
  using Step = GuardedStep<StoredDataset>;
  return RunGuardedWrite<StoredDataset>(
      *client_, Quoted("the pin change of", name),
      [&](const GuardedRound&) -> absl::StatusOr<Step> {
        NORMD_ASSIGN_OR_RETURN(const DatasetState read, ReadIncarnation(dataset, false));
        StoredDataset catalogue = read.dataset;
        if (catalogue.last_write == write_id) return Step::Answer(catalogue);  // ours landed
        NORMD_RETURN_IF_ERROR(change(catalogue));
        catalogue.last_write = write_id;
        EtcdTxn txn;
        // The entry moved: change it again.
        txn.IfModifiedAt(keys_.Catalog(name), read.catalog_mod_revision)
            .Put(keys_.Catalog(name), EncodeDatasetRecord(catalogue));
        return Step::Write(std::move(txn),
                           [catalogue](const TxnResponse&) -> absl::StatusOr<StoredDataset> {
                             return catalogue;
                           });
      });
}

// ---- unguarded writes --------------------------------------------------------------

absl::Status EtcdStore::PutTraffic(const DatasetSpec& spec, const StoredTraffic& traffic) {
  std::string value = EncodeTrafficRecord(traffic);
  if (value.size() > kMaxStatisticsBytes) {
    // Within etcd's request limit: keep the totals, and let the last hour's slices
    // start again after a restart.
    StoredTraffic totals = traffic;
    for (const auto& [start, slice] : traffic.slices) MergeSplit(slice, spec, totals.settled);
    totals.slices.clear();
    value = EncodeTrafficRecord(totals);
  }
  // One replica's own key: nothing else writes it, so nothing to guard.
  return client_
      ->Txn(EtcdTxn().Put(keys_.Traffic(spec.name, traffic.version, replica_), std::move(value))
                .request())
      .status();
}

void EtcdStore::MaybeFold(const StoredDataset& dataset, const DatasetState& state) {
  size_t folded = 0;
  std::optional<EtcdTxn> txn =
      FoldTxn(keys_, dataset, state.partitions, options_.fold_above, NewWriteId(), &folded);
  if (!txn.has_value()) return;
  // Best effort: a fold that loses a race, or whose answer is lost, is tried again by
  // a later read; either way each partition is counted once (the guards).
  absl::StatusOr<TxnResponse> written = client_->Txn(txn->request());
  Log(LogLevel::kInfo, "etcd_fold",
      {{"dataset", dataset.spec.name},
       {"partitions", static_cast<int64_t>(folded)},
       {"applied", written.ok() && written->succeeded()}});
}

}  // namespace normd
