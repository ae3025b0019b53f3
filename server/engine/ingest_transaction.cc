#include "server/engine/ingest_transaction.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/engine/dataset_entry.h"

namespace normd {

DatasetTotals TotalsOf(const DatasetStatistics& live) {
  DatasetTotals totals;
  for (Split split : kAllSplits) {
    const SplitStatistics& s = live.split(split);
    totals[static_cast<size_t>(split)] = {split, s.batches, s.samples};
  }
  return totals;
}

IngestTransaction::IngestTransaction(DatasetStore* store, SharedDatasetStore* shared,
                                     WorkerPool* pool, std::shared_ptr<DatasetEntry> entry,
                                     DeviceOffload* device)
    : store_(store),
      shared_(shared),
      pool_(pool),
      device_(device),
      entry_(std::move(entry)),
      delta_(entry_->spec) {}

absl::StatusOr<uint64_t> IngestTransaction::CommittedSequence() const {
  if (shared_ != nullptr) return shared_->WriterSequence(CatalogueIdentity(*entry_), writer_);
  absl::MutexLock lock(&entry_->mu);
  auto mark = entry_->record.writers.find(writer_);
  return mark == entry_->record.writers.end() ? 0 : mark->second.sequence;
}

const std::string& IngestTransaction::dataset() const { return entry_->spec.name; }

absl::StatusOr<bool> IngestTransaction::CheckIdentity(BatchIdentity identity) {
  const bool first = batches_seen_ == 0;
  if (first && !identity.writer.empty()) {
    NORMD_RETURN_IF_ERROR(ValidateName("writer_id", identity.writer));
    writer_ = std::string(identity.writer);
    NORMD_ASSIGN_OR_RETURN(committed_at_start_, CommittedSequence());
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

absl::StatusOr<BatchSummary> IngestTransaction::Add(Split split, const ValidatedTensor& batch,
                                                    BatchIdentity identity,
                                                    const TensorView* weights) {
  NORMD_ASSIGN_OR_RETURN(const bool duplicate, CheckIdentity(identity));
  BatchSummary summary;
  if (duplicate) {
    ++duplicates_;
  } else {
    NORMD_ASSIGN_OR_RETURN(summary, delta_.AddBatch(split, batch, pool_, weights, device_));
    if (!writer_.empty() && first_new_sequence_ == 0) first_new_sequence_ = identity.sequence;
  }
  ++batches_seen_;
  last_sequence_ = identity.sequence;
  return summary;
}

absl::StatusOr<BatchSummary> IngestTransaction::AddSummary(Split split,
                                                           const MomentsSummary& summary,
                                                           BatchIdentity identity) {
  NORMD_ASSIGN_OR_RETURN(const bool duplicate, CheckIdentity(identity));
  BatchSummary added;
  if (duplicate) {
    duplicates_ += summary.batches;
  } else {
    NORMD_ASSIGN_OR_RETURN(added, delta_.AddSummary(split, summary));
    if (!writer_.empty() && first_new_sequence_ == 0) first_new_sequence_ = identity.sequence;
  }
  ++batches_seen_;
  last_sequence_ = identity.sequence;
  return added;
}

absl::StatusOr<BatchSummary> IngestTransaction::AddMoments(Split split,
                                                           const ValidatedTensor& batch,
                                                           const ChannelGeometry& geometry,
                                                           std::span<const ChannelMoments> moments,
                                                           uint64_t skipped) {
  NORMD_ASSIGN_OR_RETURN(BatchSummary summary,
                         delta_.AddMoments(split, batch, geometry, moments, skipped, pool_));
  ++batches_seen_;
  return summary;
}

absl::StatusOr<DatasetTotals> IngestTransaction::CommitShared() {
  const StoredDataset identity = CatalogueIdentity(*entry_);
  if (delta_.batches() == 0) {
    // Nothing new (every batch a duplicate, or none): the totals, and no write.
    NORMD_ASSIGN_OR_RETURN(const StoredDataset fresh, shared_->LoadDataset(entry_->spec.name));
    if (fresh.generation != identity.generation) return DeletedError(entry_->spec.name);
    if (!writer_.empty()) {
      NORMD_ASSIGN_OR_RETURN(writer_sequence_, shared_->WriterSequence(identity, writer_));
    }
    return TotalsOf(fresh.live);
  }
  SharedCommit commit{&delta_, writer_, first_new_sequence_, last_sequence_};
  NORMD_ASSIGN_OR_RETURN(const SharedCommitResult result, shared_->Commit(identity, commit));
  writer_sequence_ = result.writer_sequence;
  if (!result.applied) {
    // Another stream of this writer committed these batches meanwhile.
    duplicates_ += delta_.batches();
    delta_ = IngestDelta(entry_->spec);
  }
  return TotalsOf(result.totals);
}

absl::StatusOr<DatasetTotals> IngestTransaction::Commit() {
  if (shared_ != nullptr) return CommitShared();
  absl::MutexLock lock(&entry_->mu);
  StoredDataset& record = entry_->record;
  if (entry_->deleted) return DeletedError(entry_->spec.name);
  std::optional<WriterMarkUpdate> mark;
  if (!writer_.empty()) {
    const auto found = record.writers.find(writer_);
    const uint64_t committed = found == record.writers.end() ? 0 : found->second.sequence;
    writer_sequence_ = committed;
    if (first_new_sequence_ == 0) return TotalsOf(record.live);  // nothing new
    if (committed >= last_sequence_) {
      // A concurrent stream of the same writer committed these batches meanwhile.
      duplicates_ += delta_.batches();
      delta_ = IngestDelta(entry_->spec);
      return TotalsOf(record.live);
    }
    if (committed + 1 != first_new_sequence_) {
      return absl::AbortedError(
          absl::StrCat("writer \"", writer_, "\" committed up to sequence ", committed,
                       " while this stream ran; resend from sequence ", committed + 1,
                       " (already committed batches are acknowledged as duplicates)"));
    }
    mark.emplace(WriterMarkUpdate{writer_, {last_sequence_, absl::Now()}, {}});
    // A new writer in a full dataset pushes out the least recently committed one.
    if (found == record.writers.end() && record.writers.size() >= kMaxWritersPerDataset) {
      mark->forgotten.push_back(OldestWriter(record.writers)->first);
    }
  }
  // Only the live statistics are copied (O(channels)); the writers change in place
  // once the store has the commit.
  NORMD_RETURN_IF_ERROR(delta_.CheckMergeFits(record.live));
  DatasetStatistics live = record.live;
  delta_.ApplyTo(live);
  NORMD_RETURN_IF_ERROR(store_->CommitIngest(entry_->spec, live, mark ? &*mark : nullptr));
  record.live = std::move(live);
  if (mark.has_value()) {
    for (const std::string& forgotten : mark->forgotten) record.writers.erase(forgotten);
    record.writers.insert_or_assign(mark->writer, mark->mark);
    writer_sequence_ = last_sequence_;
  }
  return TotalsOf(record.live);
}

}  // namespace normd
