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
#include "server/store/records.h"

namespace normd {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::KeyValue;
using etcdserverpb::RangeRequest;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

constexpr absl::string_view kSharedPartition = ".shared";
// etcd's default --max-request-bytes is 1.5 MiB; a partition's statistics get 1 MiB
// of it, its writer marks and the rest of the Txn what is left.
constexpr size_t kMaxStatisticsBytes = size_t{1} << 20;
// The shared partition remembers at most this many writers' marks (as the RocksDB
// store remembers kMaxWritersPerDataset, but within one etcd value).
constexpr size_t kMaxSharedMarks = 1024;
// etcd's default --max-txn-ops is 128: a fold moves this many partitions per Txn
// (two deletes each, plus the shared partition's two puts).
constexpr size_t kFoldBatch = 60;

struct Partition {
  std::string name;
  int64_t mod_revision = 0;  // 0: absent
  StoredPartition record;
};

void AddRange(TxnRequest& txn, std::string key, std::string range_end = "") {
  RangeRequest* range = txn.add_success()->mutable_request_range();
  range->set_key(std::move(key));
  range->set_range_end(std::move(range_end));
}

void AddPut(TxnRequest& txn, std::string key, std::string value) {
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(std::move(key));
  put->set_value(std::move(value));
}

void AddDelete(TxnRequest& txn, std::string key, std::string range_end = "") {
  etcdserverpb::DeleteRangeRequest* del = txn.add_success()->mutable_request_delete_range();
  del->set_key(std::move(key));
  del->set_range_end(std::move(range_end));
}

void AddCompare(TxnRequest& txn, std::string key, Compare::CompareTarget target, int64_t value) {
  Compare* compare = txn.add_compare();
  compare->set_key(std::move(key));
  compare->set_target(target);
  compare->set_result(Compare::EQUAL);
  if (target == Compare::CREATE) {
    compare->set_create_revision(value);
  } else {
    compare->set_mod_revision(value);
  }
}

// A writer forgotten this way that resends is refused (its sequence no longer starts
// at 1), never counted twice.
void ForgetOldestMarks(WriterMarks& writers) {
  while (writers.size() > kMaxSharedMarks) writers.erase(OldestWriter(writers));
}

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

absl::Status Unknown(absl::string_view what, const absl::Status& last) {
  return absl::UnavailableError(absl::StrCat(
      what, " could not be confirmed within the etcd retry budget (", last.message(),
      "); it may or may not have applied: resend it, the writer's sequence makes a resend "
      "count once"));
}

// Worst-case encoded bytes of one channel of a partition, measured by encoding one
// and two channels of statistics whose every field takes its widest form.
size_t BytesPerChannel(size_t* fixed) {
  auto encoded = [](int64_t channels) {
    DatasetSpec spec;
    spec.name = "x";
    spec.channels = channels;
    spec.accumulator = AccumulatorKind::kRunningAverage;
    StoredPartition partition;
    partition.stats = DatasetStatistics::Empty(spec);
    for (SplitStatistics& split : partition.stats.splits) {
      split.batches = split.samples = ~uint64_t{0};
      for (ChannelMoments& m : split.moments) {
        m.count = ~uint64_t{0};
        m.weighted = true;  // sample weights add their sums
      }
    }
    partition.last_commit = ~uint64_t{0};
    return EncodePartitionRecord(partition).size();
  };
  const size_t one = encoded(1), two = encoded(2);
  *fixed = one - (two - one);
  return two - one;
}

// Worst-case encoded bytes of one channel's sketches and fixed histograms in a
// partition: in each split, a ChannelSketch of max_buckets buckets (an index delta of
// up to 5 bytes and a count of 8 each), a FixedHistogram of its widest edges, and
// their framing.
size_t SketchBytesPerChannel(const DatasetSpec& spec) {
  size_t bins = 0;  // fixed histograms: 8 bytes a bin, below, above and framing
  for (const std::vector<double>& list : spec.histogram_edges.lists) {
    bins = std::max(bins, list.size() - 1);
  }
  const size_t histogram = spec.histogram_edges.empty() ? 0 : 8 * bins + 32;
  if (!spec.sketch.has_value()) return kAllSplits.size() * histogram;
  return kAllSplits.size() * (13 * size_t{spec.sketch->max_buckets} + 16 + histogram);
}

}  // namespace

int64_t EtcdMaxChannels(const DatasetSpec& spec) {
  size_t fixed = 0;
  const size_t per_channel = BytesPerChannel(&fixed) + SketchBytesPerChannel(spec);
  // The packed fields' length prefixes grow by a few bytes with the channel count.
  return static_cast<int64_t>((kMaxStatisticsBytes - fixed - 64) / per_channel);
}

class EtcdStore::Keys {
 public:
  explicit Keys(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string CatalogPrefix() const { return absl::StrCat(prefix_, "catalog/"); }
  std::string Catalog(absl::string_view name) const { return CatalogPrefix() + std::string(name); }
  std::string Retired(absl::string_view name) const {
    return absl::StrCat(prefix_, "retired/", name);
  }
  std::string PartPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "part/", name, "/");
  }
  std::string Part(absl::string_view name, absl::string_view partition) const {
    return PartPrefix(name) + std::string(partition);
  }
  std::string TotalPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "total/", name, "/");
  }
  std::string Total(absl::string_view name, absl::string_view partition) const {
    return TotalPrefix(name) + std::string(partition);
  }
  std::string VersionPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "version/", name, "/");
  }
  std::string Version(absl::string_view name, uint64_t version) const {
    return absl::StrCat(VersionPrefix(name), absl::StrFormat("%020d", version));
  }
  std::string TrafficPrefix(absl::string_view name) const {
    return absl::StrCat(prefix_, "traffic/", name, "/");
  }
  std::string Traffic(absl::string_view name, uint64_t version, absl::string_view replica) const {
    return absl::StrCat(TrafficPrefix(name), absl::StrFormat("%020d", version), "/", replica);
  }
  std::string NameOf(absl::string_view catalog_key) const {
    return std::string(absl::StripPrefix(catalog_key, CatalogPrefix()));
  }

 private:
  const std::string prefix_;
};

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
      keys_(std::make_unique<Keys>(options_.prefix)) {}
EtcdStore::~EtcdStore() = default;

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(EtcdStoreOptions options) {
  NORMD_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client, EtcdClient::Connect(options.etcd));
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(options), std::move(client)));
}

namespace {

absl::StatusOr<StoredDataset> DecodeCatalog(const KeyValue& kv) {
  NORMD_ASSIGN_OR_RETURN(StoredDataset dataset, DecodeDatasetRecord(kv.value()));
  dataset.generation = kv.create_revision();
  dataset.live = DatasetStatistics{};  // statistics live in the partitions
  return dataset;
}

// A Txn of reads only: every range at one revision.
absl::StatusOr<TxnResponse> ReadTogether(EtcdClient& client, const TxnRequest& reads) {
  return client.Read(reads);
}

}  // namespace

absl::StatusOr<EtcdStore::DatasetState> EtcdStore::ReadState(absl::string_view name,
                                                             bool partitions, bool totals) {
  TxnRequest reads;
  AddRange(reads, keys_->Catalog(name));
  if (partitions) AddRange(reads, keys_->PartPrefix(name), PrefixEnd(keys_->PartPrefix(name)));
  if (totals) AddRange(reads, keys_->TotalPrefix(name), PrefixEnd(keys_->TotalPrefix(name)));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
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
    const std::string prefix = keys_->PartPrefix(name);
    for (const KeyValue& kv : read.responses(next++).response_range().kvs()) {
      Partition partition;
      partition.name = std::string(absl::StripPrefix(kv.key(), prefix));
      partition.mod_revision = kv.mod_revision();
      NORMD_ASSIGN_OR_RETURN(partition.record,
                             DecodePartitionRecord(kv.value(), state.dataset.spec));
      state.partitions.push_back(std::move(partition));
    }
  }
  if (totals) {
    for (const KeyValue& kv : read.responses(next++).response_range().kvs()) {
      NORMD_RETURN_IF_ERROR(AddTotalsRecord(kv.value(), state.totals));
    }
  }
  return state;
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::ReadCatalogue(const std::string& from,
                                                                    size_t limit,
                                                                    int64_t* revision) {
  RangeRequest range;
  range.set_key(from);
  range.set_range_end(PrefixEnd(keys_->CatalogPrefix()));
  range.set_limit(static_cast<int64_t>(limit));
  NORMD_ASSIGN_OR_RETURN(
      const etcdserverpb::RangeResponse response,
      client_->ReadRange(range));
  std::vector<StoredDataset> datasets;
  for (const KeyValue& kv : response.kvs()) {
    NORMD_ASSIGN_OR_RETURN(StoredDataset dataset, DecodeCatalog(kv));
    datasets.push_back(std::move(dataset));
  }
  if (revision != nullptr) *revision = response.header().revision();
  return datasets;
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::LoadCatalogue(int64_t* revision) {
  return ReadCatalogue(keys_->CatalogPrefix(), 0, revision);
}

void EtcdStore::WatchCatalogue(int64_t revision,
                               std::function<void(const CatalogueChange&)> on_change,
                               std::function<void(std::vector<StoredDataset>)> on_resync) {
  const std::string prefix = keys_->CatalogPrefix();
  client_->Watch(
      prefix, PrefixEnd(prefix), revision + 1,
      [this, on_change](const etcdserverpb::WatchResponse& response) {
        for (const etcdserverpb::Event& event : response.events()) {
          CatalogueChange change;
          change.name = keys_->NameOf(event.kv().key());
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
  const std::string catalog_key = keys_->Catalog(spec.name);
  const std::string retired_key = keys_->Retired(spec.name);
  const uint64_t write_id = NewWriteId();
  const absl::Time give_up = client_->Deadline();
  absl::Status last = absl::OkStatus();
  while (absl::Now() < give_up) {
    TxnRequest reads;
    AddRange(reads, catalog_key);
    AddRange(reads, retired_key);
    NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
    const auto& catalog = read.responses(0).response_range();
    const auto& retired = read.responses(1).response_range();
    if (catalog.kvs_size() > 0) {
      NORMD_ASSIGN_OR_RETURN(StoredDataset existing, DecodeCatalog(catalog.kvs(0)));
      if (existing.last_write == write_id) return existing;  // ours; its answer was lost
      return absl::AlreadyExistsError(absl::StrCat("dataset \"", spec.name, "\" already exists"));
    }
    StoredDataset dataset;
    dataset.spec = spec;
    dataset.create_time = create_time;
    dataset.last_write = write_id;
    int64_t retired_revision = 0;
    if (retired.kvs_size() > 0) {
      retired_revision = retired.kvs(0).mod_revision();
      if (!absl::SimpleAtoi(retired.kvs(0).value(), &dataset.next_version)) {
        return absl::DataLossError(
            absl::StrCat("the retired version counter of \"", spec.name, "\" does not parse"));
      }
    }
    TxnRequest txn;
    AddCompare(txn, catalog_key, Compare::CREATE, 0);
    AddCompare(txn, retired_key, Compare::MOD, retired_revision);
    AddPut(txn, catalog_key, EncodeDatasetRecord(dataset));
    absl::StatusOr<TxnResponse> written = client_->Txn(txn);
    if (written.ok()) {
      if (!written->succeeded()) continue;  // created, deleted or retired meanwhile
      dataset.generation = written->header().revision();
      dataset.live = DatasetStatistics{};
      return dataset;
    }
    if (!IsAmbiguous(written.status())) return written.status();
    last = written.status();
  }
  return Unknown(absl::StrCat("creating dataset \"", spec.name, "\""), last);
}

absl::StatusOr<StoredDataset> EtcdStore::LoadDataset(absl::string_view name) {
  NORMD_ASSIGN_OR_RETURN(DatasetState state, ReadState(name, false, true));
  state.dataset.live = std::move(state.totals);
  return std::move(state.dataset);
}

absl::StatusOr<std::vector<StoredDataset>> EtcdStore::ListDatasets(absl::string_view after,
                                                                   size_t limit) {
  NORMD_ASSIGN_OR_RETURN(std::vector<StoredDataset> datasets,
                         ReadCatalogue(after.empty() ? keys_->CatalogPrefix()
                                                     : keys_->Catalog(after) + std::string(1, '\0'),
                                       limit, nullptr));
  // Totals, many datasets per Txn (etcd allows 128 operations in one).
  for (size_t start = 0; start < datasets.size(); start += 100) {
    const size_t end = std::min(datasets.size(), start + 100);
    TxnRequest reads;
    for (size_t i = start; i < end; ++i) {
      const std::string prefix = keys_->TotalPrefix(datasets[i].spec.name);
      AddRange(reads, prefix, PrefixEnd(prefix));
    }
    NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
    for (size_t i = start; i < end; ++i) {
      for (const KeyValue& kv :
           read.responses(static_cast<int>(i - start)).response_range().kvs()) {
        NORMD_RETURN_IF_ERROR(AddTotalsRecord(kv.value(), datasets[i].live));
      }
    }
  }
  return datasets;
}

absl::Status EtcdStore::DeleteDataset(absl::string_view name) {
  const absl::Time give_up = client_->Deadline();
  absl::Status last = absl::OkStatus();
  std::optional<int64_t> deleting;  // the generation an attempt whose answer was lost deleted
  while (absl::Now() < give_up) {
    absl::StatusOr<DatasetState> state = ReadState(name, false, false);
    if (absl::IsNotFound(state.status()) && deleting.has_value()) return absl::OkStatus();
    NORMD_RETURN_IF_ERROR(state.status());
    if (deleting.has_value() && state->dataset.generation != *deleting) {
      return absl::OkStatus();  // ours landed, and the name was created again since
    }
    TxnRequest txn;
    AddCompare(txn, keys_->Catalog(name), Compare::MOD, state->catalog_mod_revision);
    AddDelete(txn, keys_->Catalog(name));
    for (const std::string& prefix : {keys_->PartPrefix(name), keys_->TotalPrefix(name),
                                      keys_->VersionPrefix(name), keys_->TrafficPrefix(name)}) {
      AddDelete(txn, prefix, PrefixEnd(prefix));
    }
    // Version numbers continue after a re-create, so a replica's cached snapshot of
    // an old version can never pass for a new one.
    AddPut(txn, keys_->Retired(name), absl::StrCat(state->dataset.next_version));
    absl::StatusOr<TxnResponse> written = client_->Txn(txn);
    if (written.ok()) {
      if (written->succeeded()) return absl::OkStatus();
      continue;  // frozen meanwhile: read again
    }
    if (!IsAmbiguous(written.status())) return written.status();
    deleting = state->dataset.generation;
    last = written.status();
  }
  return Unknown(absl::StrCat("deleting dataset \"", name, "\""), last);
}

namespace {

// The live statistics of a dataset from its partitions, merged in key order.
DatasetStatistics MergePartitions(const DatasetSpec& spec,
                                  const std::vector<Partition>& partitions) {
  DatasetStatistics live = DatasetStatistics::Empty(spec);
  for (const Partition& partition : partitions) {
    MergeSplits(partition.record.stats, spec, live);
    // A running-average dataset has one partition, the shared one, which holds it.
    if (partition.record.stats.running.has_value() && partition.name == kSharedPartition) {
      live.running = partition.record.stats.running;
    }
  }
  return live;
}

}  // namespace

absl::StatusOr<DatasetStatistics> EtcdStore::LoadLive(const StoredDataset& dataset) {
  NORMD_ASSIGN_OR_RETURN(const DatasetState state, ReadState(dataset.spec.name, true, false));
  if (state.dataset.generation != dataset.generation) return DeletedMeanwhile(dataset.spec.name);
  DatasetStatistics live = MergePartitions(dataset.spec, state.partitions);
  MaybeFold(dataset, state);
  return live;
}

absl::StatusOr<uint64_t> EtcdStore::WriterSequence(const StoredDataset& dataset,
                                                   absl::string_view writer) {
  const std::string& name = dataset.spec.name;
  TxnRequest reads;
  AddRange(reads, keys_->Catalog(name));
  AddRange(reads, keys_->Part(name, writer));
  AddRange(reads, keys_->Part(name, kSharedPartition));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
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

namespace {

// What a commit does to a partition as read: apply the delta (`next`), or nothing
// because the writer committed these batches already (`committed` covers them).
struct CommitDecision {
  bool apply = false;
  uint64_t committed = 0;  // the writer's sequence before this commit
  StoredPartition next;
};

// `shared_marks`: the shared partition's marks, where a folded writer's mark lives
// (null when the partition read is the shared one, or there is none).
absl::StatusOr<CommitDecision> Decide(const SharedCommit& commit, const StoredPartition& partition,
                                      const StoredPartition* shared_marks, uint64_t commit_id) {
  CommitDecision decision;
  if (!commit.writer.empty()) {
    if (auto mark = partition.writers.find(commit.writer); mark != partition.writers.end()) {
      decision.committed = mark->second.sequence;
    } else if (shared_marks != nullptr) {
      if (auto folded = shared_marks->writers.find(commit.writer);
          folded != shared_marks->writers.end()) {
        decision.committed = folded->second.sequence;
      }
    }
    if (decision.committed >= commit.last_sequence) return decision;
    if (decision.committed + 1 != commit.first_sequence) {
      return absl::AbortedError(absl::StrCat(
          "writer \"", commit.writer, "\" committed up to sequence ", decision.committed,
          " while this stream ran; resend from sequence ", decision.committed + 1,
          " (already committed batches are acknowledged as duplicates)"));
    }
  }
  decision.apply = true;
  decision.next = partition;
  NORMD_RETURN_IF_ERROR(commit.delta->CheckMergeFits(decision.next.stats));
  commit.delta->ApplyTo(decision.next.stats);
  decision.next.last_commit = commit_id;
  if (!commit.writer.empty()) {
    decision.next.writers.insert_or_assign(std::string(commit.writer),
                                           WriterMark{commit.last_sequence, absl::Now()});
    ForgetOldestMarks(decision.next.writers);
  }
  return decision;
}

absl::Status AddTotals(const etcdserverpb::RangeResponse& range, DatasetStatistics& totals) {
  for (const KeyValue& kv : range.kvs()) NORMD_RETURN_IF_ERROR(AddTotalsRecord(kv.value(), totals));
  return absl::OkStatus();
}

}  // namespace

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

absl::StatusOr<std::optional<SharedCommitResult>> EtcdStore::WritePartition(
    const StoredDataset& dataset, const std::string& part_key, const std::string& total_key,
    int64_t guard, const StoredPartition& next, uint64_t last_sequence) {
  const std::string total_prefix = keys_->TotalPrefix(dataset.spec.name);
  TxnRequest txn;
  AddCompare(txn, keys_->Catalog(dataset.spec.name), Compare::CREATE, dataset.generation);
  AddCompare(txn, part_key, Compare::MOD, guard);
  AddPut(txn, part_key, EncodePartitionRecord(next));
  AddPut(txn, total_key, EncodeTotalsRecord(next.stats));
  AddRange(txn, total_prefix, PrefixEnd(total_prefix));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse written, client_->Txn(txn));
  if (!written.succeeded()) return std::nullopt;  // the partition moved since it was read
  RememberPartition(part_key, {written.header().revision(), next});
  SharedCommitResult result;
  result.applied = true;
  result.writer_sequence = last_sequence;
  NORMD_RETURN_IF_ERROR(AddTotals(written.responses(2).response_range(), result.totals));
  return result;
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
  const std::string part_key = keys_->Part(name, partition_name);
  const std::string total_key = keys_->Total(name, partition_name);
  const std::string total_prefix = keys_->TotalPrefix(name);
  const uint64_t commit_id = NewWriteId();

  // The fast path: the partition as this replica last wrote or read it. A writer's
  // streams usually find it unchanged, and then the commit is one Txn; if it moved
  // (another replica took one of the writer's streams), the guard fails and the loop
  // below reads it afresh.
  if (std::optional<CachedPartition> cached = LastKnown(part_key); cached.has_value()) {
    absl::StatusOr<CommitDecision> decision = Decide(commit, cached->record, nullptr, commit_id);
    if (decision.ok() && decision->apply) {
      absl::StatusOr<std::optional<SharedCommitResult>> written = WritePartition(
          dataset, part_key, total_key, cached->mod_revision, decision->next, commit.last_sequence);
      if (!written.ok() && !IsAmbiguous(written.status())) return written.status();
      if (written.ok() && written->has_value()) return **written;
      // A failed guard, or an answer lost (the loop's read finds our commit id if it landed).
    }
  }

  const absl::Time give_up = client_->Deadline();
  absl::Duration backoff = absl::Milliseconds(5);
  absl::Status last = absl::OkStatus();
  std::optional<int64_t> maybe_landed_over;  // the revision an ambiguous attempt guarded
  while (true) {
    if (absl::Now() > give_up) {
      return maybe_landed_over.has_value()
                 ? Unknown(absl::StrCat("the commit to dataset \"", name, "\""), last)
                 : absl::UnavailableError(
                       absl::StrCat("etcd did not take the commit to dataset \"", name,
                                    "\" within its retry budget: ", last.message()));
    }
    TxnRequest reads;
    AddRange(reads, keys_->Catalog(name));
    AddRange(reads, part_key);
    AddRange(reads, total_prefix, PrefixEnd(total_prefix));
    if (own_partition) AddRange(reads, keys_->Part(name, kSharedPartition));
    absl::StatusOr<TxnResponse> read = client_->Read(reads);
    if (!read.ok()) {
      if (!absl::IsUnavailable(read.status())) return read.status();
      last = read.status();
      absl::SleepFor(backoff);  // an election or a failover under way
      backoff = std::min(backoff * 2, absl::Milliseconds(200));
      continue;
    }
    const auto& catalog = read->responses(0).response_range();
    if (catalog.kvs_size() == 0 || catalog.kvs(0).create_revision() != dataset.generation) {
      return DeletedMeanwhile(name);
    }
    CachedPartition partition;
    if (const auto& part = read->responses(1).response_range(); part.kvs_size() > 0) {
      partition.mod_revision = part.kvs(0).mod_revision();
      NORMD_ASSIGN_OR_RETURN(partition.record, DecodePartitionRecord(part.kvs(0).value(), spec));
    } else {
      partition.record.stats = DatasetStatistics::Empty(spec);
    }
    SharedCommitResult result;
    if (partition.record.last_commit == commit_id) {
      // An attempt whose answer was lost had landed.
      Log(LogLevel::kInfo, "etcd_commit_recognised",
          {{"dataset", name}, {"writer", std::string(commit.writer)}});
      RememberPartition(part_key, partition);
      result.applied = true;
      result.writer_sequence = commit.last_sequence;
      NORMD_RETURN_IF_ERROR(AddTotals(read->responses(2).response_range(), result.totals));
      return result;
    }
    std::optional<StoredPartition> shared;
    if (own_partition && read->responses(3).response_range().kvs_size() > 0) {
      NORMD_ASSIGN_OR_RETURN(
          shared, DecodePartitionRecord(read->responses(3).response_range().kvs(0).value(), spec));
    }
    if (commit.writer.empty() && maybe_landed_over.has_value() &&
        partition.mod_revision != *maybe_landed_over) {
      // Without a writer there is no sequence to tell ours from another commit.
      return Unknown(absl::StrCat("the commit to dataset \"", name, "\""), last);
    }
    NORMD_ASSIGN_OR_RETURN(CommitDecision decision, Decide(commit, partition.record,
                                                           shared ? &*shared : nullptr, commit_id));
    if (!decision.apply) {
      // Committed already: by another stream of the writer, or by an attempt of ours.
      result.writer_sequence = decision.committed;
      NORMD_RETURN_IF_ERROR(AddTotals(read->responses(2).response_range(), result.totals));
      return result;
    }
    absl::StatusOr<std::optional<SharedCommitResult>> written = WritePartition(
        dataset, part_key, total_key, partition.mod_revision, decision.next, commit.last_sequence);
    if (written.ok()) {
      if (written->has_value()) return **written;
      continue;  // another commit to this partition won: again
    }
    if (!IsAmbiguous(written.status())) return written.status();
    // It may have landed: the next read finds our commit id if it did, and the guard
    // stops a second attempt from applying if the first lands late.
    Log(LogLevel::kWarning, "etcd_commit_ambiguous",
        {{"dataset", name},
         {"writer", std::string(commit.writer)},
         {"error", written.status().ToString()}});
    maybe_landed_over = partition.mod_revision;
    last = written.status();
  }
}

absl::StatusOr<FrozenSnapshot> EtcdStore::Freeze(const StoredDataset& dataset,
                                                 absl::Time freeze_time, const FreezeCheck& check) {
  const std::string& name = dataset.spec.name;
  const uint64_t write_id = NewWriteId();
  const absl::Time give_up = client_->Deadline();
  absl::Status last = absl::OkStatus();
  while (absl::Now() < give_up) {
    absl::StatusOr<DatasetState> read = ReadState(name, true, false);
    if (absl::IsNotFound(read.status())) return DeletedMeanwhile(name);
    NORMD_RETURN_IF_ERROR(read.status());
    DatasetState& state = *read;
    if (state.dataset.generation != dataset.generation) return DeletedMeanwhile(name);
    if (state.dataset.last_write == write_id) {
      return LoadSnapshot(dataset, state.dataset.versions.back().version);  // ours landed
    }
    FrozenSnapshot snapshot;
    snapshot.stats = MergePartitions(dataset.spec, state.partitions);
    const uint64_t train_samples = snapshot.stats.split(Split::kTrain).samples;
    if (train_samples == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset \"", name, "\" has no training data yet; ingest train batches before Freeze"));
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
    TxnRequest txn;
    AddCompare(txn, keys_->Catalog(name), Compare::MOD, state.catalog_mod_revision);
    AddPut(txn, keys_->Catalog(name), EncodeDatasetRecord(catalogue));
    AddPut(txn, keys_->Version(name, snapshot.version), EncodeSnapshotRecord(snapshot));
    absl::StatusOr<TxnResponse> written = client_->Txn(txn);
    if (written.ok()) {
      if (!written->succeeded()) continue;  // another replica froze first: the next number
      MaybeFold(dataset, state);
      return snapshot;
    }
    if (!IsAmbiguous(written.status())) return written.status();
    last = written.status();
  }
  return Unknown(absl::StrCat("freezing dataset \"", name, "\""), last);
}

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
  TxnRequest txn;
  AddPut(txn, keys_->Traffic(spec.name, traffic.version, replica_), std::move(value));
  return client_->Txn(txn).status();
}

absl::StatusOr<std::vector<StoredTraffic>> EtcdStore::LoadTraffic(const DatasetSpec& spec) const {
  TxnRequest reads;
  const std::string prefix = keys_->TrafficPrefix(spec.name);
  AddRange(reads, prefix, PrefixEnd(prefix));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
  std::vector<StoredTraffic> all;
  for (const KeyValue& kv : read.responses(0).response_range().kvs()) {
    NORMD_ASSIGN_OR_RETURN(StoredTraffic traffic, DecodeTrafficRecord(kv.value(), spec),
                           absl::DataLossError(absl::StrCat(kv.key(), ": ", _.message())));
    traffic.dataset = spec.name;
    all.push_back(std::move(traffic));
  }
  return all;
}

absl::StatusOr<StoredDataset> EtcdStore::UpdatePins(
    const StoredDataset& dataset, const std::function<absl::Status(StoredDataset&)>& change) {
  const std::string& name = dataset.spec.name;
  const uint64_t write_id = NewWriteId();
  const absl::Time give_up = client_->Deadline();
  absl::Status last = absl::OkStatus();
  while (absl::Now() < give_up) {
    absl::StatusOr<DatasetState> read = ReadState(name, false, false);
    if (absl::IsNotFound(read.status())) return DeletedMeanwhile(name);
    NORMD_RETURN_IF_ERROR(read.status());
    if (read->dataset.generation != dataset.generation) return DeletedMeanwhile(name);
    StoredDataset catalogue = read->dataset;
    if (catalogue.last_write == write_id) return catalogue;  // ours landed
    NORMD_RETURN_IF_ERROR(change(catalogue));
    catalogue.last_write = write_id;
    TxnRequest txn;
    AddCompare(txn, keys_->Catalog(name), Compare::MOD, read->catalog_mod_revision);
    AddPut(txn, keys_->Catalog(name), EncodeDatasetRecord(catalogue));
    absl::StatusOr<TxnResponse> written = client_->Txn(txn);
    if (written.ok()) {
      if (!written->succeeded()) continue;  // the entry moved: change it again
      return catalogue;
    }
    if (!IsAmbiguous(written.status())) return written.status();
    last = written.status();
  }
  return Unknown(absl::StrCat("pinning a version of dataset \"", name, "\""), last);
}

absl::StatusOr<FrozenSnapshot> EtcdStore::LoadSnapshot(const StoredDataset& dataset,
                                                       uint64_t version) {
  const std::string& name = dataset.spec.name;
  TxnRequest reads;
  AddRange(reads, keys_->Version(name, version));
  NORMD_ASSIGN_OR_RETURN(const TxnResponse read, ReadTogether(*client_, reads));
  const auto& found = read.responses(0).response_range();
  if (found.kvs_size() == 0) {
    return absl::NotFoundError(absl::StrCat("dataset \"", name, "\" has no version ", version));
  }
  return DecodeSnapshotRecord(found.kvs(0).value(), dataset.spec);
}

void EtcdStore::MaybeFold(const StoredDataset& dataset, const DatasetState& state) {
  if (state.partitions.size() <= options_.fold_above ||
      dataset.spec.accumulator == AccumulatorKind::kRunningAverage) {
    return;
  }
  const std::string& name = dataset.spec.name;
  // The least recently written partitions go first: their writers have most likely
  // finished.
  std::vector<const Partition*> candidates;
  const Partition* shared = nullptr;
  for (const Partition& partition : state.partitions) {
    if (partition.name == kSharedPartition) {
      shared = &partition;
    } else {
      candidates.push_back(&partition);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Partition* a, const Partition* b) {
    return a->mod_revision < b->mod_revision;
  });
  const size_t excess = state.partitions.size() - options_.fold_above / 2;
  candidates.resize(std::min({candidates.size(), excess, kFoldBatch}));
  StoredPartition folded;
  if (shared != nullptr) {
    folded = shared->record;
  } else {
    folded.stats = DatasetStatistics::Empty(dataset.spec);
  }
  TxnRequest txn;
  AddCompare(txn, keys_->Catalog(name), Compare::CREATE, dataset.generation);
  AddCompare(txn, keys_->Part(name, kSharedPartition), Compare::MOD,
             shared == nullptr ? 0 : shared->mod_revision);
  for (const Partition* partition : candidates) {
    MergeSplits(partition->record.stats, dataset.spec, folded.stats);
    for (const auto& [writer, mark] : partition->record.writers) {
      folded.writers.insert_or_assign(writer, mark);
    }
    AddCompare(txn, keys_->Part(name, partition->name), Compare::MOD, partition->mod_revision);
    AddDelete(txn, keys_->Part(name, partition->name));
    AddDelete(txn, keys_->Total(name, partition->name));
  }
  ForgetOldestMarks(folded.writers);
  folded.last_commit = NewWriteId();
  AddPut(txn, keys_->Part(name, kSharedPartition), EncodePartitionRecord(folded));
  AddPut(txn, keys_->Total(name, kSharedPartition), EncodeTotalsRecord(folded.stats));
  // Best effort: a fold that loses a race, or whose answer is lost, is tried again by
  // a later read; either way each partition is counted once (the guards).
  absl::StatusOr<TxnResponse> written = client_->Txn(txn);
  Log(LogLevel::kInfo, "etcd_fold",
      {{"dataset", name},
       {"partitions", static_cast<int64_t>(candidates.size())},
       {"applied", written.ok() && written->succeeded()}});
}

}  // namespace normd
