#include "server/store/etcd/partitions.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace normd {
namespace {

// The shared partition remembers at most this many writers' marks (as the RocksDB
// store remembers kMaxWritersPerDataset, but within one etcd value).
constexpr size_t kMaxSharedMarks = 1024;
// etcd's default --max-txn-ops is 128: a fold moves this many partitions per Txn
// (two deletes each, plus the shared partition's two puts).
constexpr size_t kFoldBatch = 60;

// A writer forgotten this way that resends is refused (its sequence no longer starts
// at 1), never counted twice.
void ForgetOldestMarks(WriterMarks& writers) {
  while (writers.size() > kMaxSharedMarks) writers.erase(OldestWriter(writers));
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

}  // namespace

// A ChannelSketch of max_buckets buckets in each split (an index delta of up to 5
// bytes and a count of 8 each), a FixedHistogram of its widest edges, and their
// framing.
size_t SketchBytesPerChannel(const DatasetSpec& spec) {
  size_t bins = 0;  // fixed histograms: 8 bytes a bin, below, above and framing
  for (const std::vector<double>& list : spec.histogram_edges.lists) {
    bins = std::max(bins, list.size() - 1);
  }
  const size_t histogram = spec.histogram_edges.empty() ? 0 : 8 * bins + 32;
  if (!spec.sketch.has_value()) return kAllSplits.size() * histogram;
  return kAllSplits.size() * (13 * size_t{spec.sketch->max_buckets} + 16 + histogram);
}

int64_t EtcdMaxChannels(const DatasetSpec& spec) {
  size_t fixed = 0;
  const size_t per_channel = BytesPerChannel(&fixed) + SketchBytesPerChannel(spec);
  // The packed fields' length prefixes grow by a few bytes with the channel count.
  return static_cast<int64_t>((kMaxStatisticsBytes - fixed - 64) / per_channel);
}

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

absl::StatusOr<CommitDecision> DecideCommit(const SharedCommit& commit,
                                            const StoredPartition& partition,
                                            const StoredPartition* shared_marks,
                                            uint64_t commit_id) {
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

std::optional<EtcdTxn> FoldTxn(const EtcdKeys& keys, const StoredDataset& dataset,
                               const std::vector<Partition>& partitions, size_t fold_above,
                               uint64_t fold_id, size_t* folded) {
  *folded = 0;
  if (partitions.size() <= fold_above ||
      dataset.spec.accumulator == AccumulatorKind::kRunningAverage) {
    return std::nullopt;
  }
  const std::string& name = dataset.spec.name;
  // The least recently written partitions go first: their writers have most likely
  // finished.
  std::vector<const Partition*> candidates;
  const Partition* shared = nullptr;
  for (const Partition& partition : partitions) {
    if (partition.name == kSharedPartition) {
      shared = &partition;
    } else {
      candidates.push_back(&partition);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Partition* a, const Partition* b) {
    return a->mod_revision < b->mod_revision;
  });
  const size_t excess = partitions.size() - fold_above / 2;
  candidates.resize(std::min({candidates.size(), excess, kFoldBatch}));
  StoredPartition merged;
  if (shared != nullptr) {
    merged = shared->record;
  } else {
    merged.stats = DatasetStatistics::Empty(dataset.spec);
  }
  EtcdTxn txn;
  txn.IfCreatedAt(keys.Catalog(name), dataset.generation)
      .IfModifiedAt(keys.Part(name, kSharedPartition), shared == nullptr ? 0 : shared->mod_revision);
  for (const Partition* partition : candidates) {
    MergeSplits(partition->record.stats, dataset.spec, merged.stats);
    for (const auto& [writer, mark] : partition->record.writers) {
      merged.writers.insert_or_assign(writer, mark);
    }
    txn.IfModifiedAt(keys.Part(name, partition->name), partition->mod_revision)
        .Delete(keys.Part(name, partition->name))
        .Delete(keys.Total(name, partition->name));
  }
  ForgetOldestMarks(merged.writers);
  merged.last_commit = fold_id;
  txn.Put(keys.Part(name, kSharedPartition), EncodePartitionRecord(merged))
      .Put(keys.Total(name, kSharedPartition), EncodeTotalsRecord(merged.stats));
  *folded = candidates.size();
  return txn;
}

}  // namespace normd
