// The etcd store's decisions as tables: what a commit does to a partition as read
// (exactly once per writer), and which partitions a fold moves.
#include "server/store/etcd/partitions.h"

#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "core/ingest_delta.h"
#include "core/tensor_view.h"
#include "gtest/gtest.h"

namespace normd {
namespace {

DatasetSpec TwoChannels() {
  DatasetSpec spec;
  spec.name = "d";
  spec.channels = 2;
  return spec;
}

// A delta of one train batch of `rows` rows: row i is (i, 10 i).
IngestDelta DeltaOf(const DatasetSpec& spec, int rows) {
  std::vector<double> values;
  for (int i = 0; i < rows; ++i) values.insert(values.end(), {double(i), 10.0 * i});
  IngestDelta delta(spec);
  const std::vector<int64_t> shape = {rows, 2};
  const auto tensor =
      ValidateTensor(TensorView{DType::kFloat64, shape, std::as_bytes(std::span(values))});
  EXPECT_TRUE(tensor.ok());
  EXPECT_TRUE(delta.AddBatch(Split::kTrain, *tensor).ok());
  return delta;
}

StoredPartition WithMark(const DatasetSpec& spec, const std::string& writer, uint64_t sequence) {
  StoredPartition partition;
  partition.stats = DatasetStatistics::Empty(spec);
  if (!writer.empty()) partition.writers[writer] = WriterMark{sequence, absl::Now()};
  return partition;
}

struct CommitCase {
  std::string what;
  std::string writer;
  uint64_t mark;        // the writer's committed sequence in its partition (0: none)
  uint64_t folded_mark; // in the shared partition (0: none)
  uint64_t first, last; // the commit's batches
  absl::StatusCode code;
  bool apply;
  uint64_t committed;  // the writer's sequence the decision reports before the commit
};

TEST(PartitionsTest, ACommitIsAppliedOncePerWritersSequence) {
  const std::vector<CommitCase> cases = {
      {"no writer: always applied", "", 0, 0, 0, 0, absl::StatusCode::kOk, true, 0},
      {"a new writer's first batches", "w", 0, 0, 1, 3, absl::StatusCode::kOk, true, 0},
      {"the next batches", "w", 5, 0, 6, 8, absl::StatusCode::kOk, true, 5},
      {"a resend of what landed", "w", 8, 0, 6, 8, absl::StatusCode::kOk, false, 8},
      {"batches another stream covered", "w", 9, 0, 6, 8, absl::StatusCode::kOk, false, 9},
      {"a gap before the first batch", "w", 6, 0, 8, 9, absl::StatusCode::kAborted, false, 0},
      {"another stream moved past the first", "w", 7, 0, 6, 9, absl::StatusCode::kAborted, false,
       0},
      {"a folded writer continues", "w", 0, 4, 5, 6, absl::StatusCode::kOk, true, 4},
      {"a folded writer's resend", "w", 0, 6, 5, 6, absl::StatusCode::kOk, false, 6},
      {"a folded writer with a gap", "w", 0, 4, 6, 6, absl::StatusCode::kAborted, false, 0},
  };
  const DatasetSpec spec = TwoChannels();
  const IngestDelta delta = DeltaOf(spec, 3);
  for (const CommitCase& c : cases) {
    const StoredPartition partition = WithMark(spec, c.mark ? c.writer : "", c.mark);
    const StoredPartition shared = WithMark(spec, c.folded_mark ? c.writer : "", c.folded_mark);
    SharedCommit commit{&delta, c.writer, c.first, c.last};
    const absl::StatusOr<CommitDecision> decision =
        DecideCommit(commit, partition, c.folded_mark ? &shared : nullptr, /*commit_id=*/77);
    ASSERT_EQ(decision.status().code(), c.code) << c.what << ": " << decision.status();
    if (!decision.ok()) {
      // The refusal says where to resend from.
      const uint64_t committed = c.mark ? c.mark : c.folded_mark;
      EXPECT_NE(decision.status().message().find(
                    "resend from sequence " + std::to_string(committed + 1)),
                std::string::npos)
          << c.what << ": " << decision.status();
      continue;
    }
    EXPECT_EQ(decision->apply, c.apply) << c.what;
    EXPECT_EQ(decision->committed, c.committed) << c.what;
    if (!decision->apply) continue;
    // Applied: the delta's batches and samples are in, the commit id and the writer's
    // new mark recorded.
    const SplitStatistics& train = decision->next.stats.split(Split::kTrain);
    EXPECT_EQ(train.batches, 1u) << c.what;
    EXPECT_EQ(train.samples, 3u) << c.what;
    EXPECT_EQ(train.moments[1].count, 3u) << c.what;
    EXPECT_EQ(decision->next.last_commit, 77u) << c.what;
    if (!c.writer.empty()) {
      ASSERT_TRUE(decision->next.writers.contains(c.writer)) << c.what;
      EXPECT_EQ(decision->next.writers.at(c.writer).sequence, c.last) << c.what;
    }
  }
}

// Partitions "p0".."p{n-1}", p_i last written at revision 100 + i, each with one batch.
std::vector<Partition> Partitions(const DatasetSpec& spec, int n) {
  const IngestDelta delta = DeltaOf(spec, 2);
  std::vector<Partition> partitions;
  for (int i = 0; i < n; ++i) {
    Partition partition;
    partition.name = "p" + std::to_string(i);
    partition.mod_revision = 100 + i;
    partition.record.stats = DatasetStatistics::Empty(spec);
    delta.ApplyTo(partition.record.stats);
    partition.record.writers[partition.name] = WriterMark{1, absl::Now()};
    partitions.push_back(std::move(partition));
  }
  return partitions;
}

TEST(PartitionsTest, AFoldMovesTheOldestPartitionsGuardedByTheirRevisions) {
  const DatasetSpec spec = TwoChannels();
  StoredDataset dataset;
  dataset.spec = spec;
  dataset.generation = 42;
  const EtcdKeys keys("normd/");
  size_t folded = 0;
  // At or under the limit: nothing.
  EXPECT_FALSE(FoldTxn(keys, dataset, Partitions(spec, 4), 4, 1, &folded).has_value());
  EXPECT_EQ(folded, 0u);
  // Over it: down to half the limit, oldest first.
  std::vector<Partition> partitions = Partitions(spec, 6);
  std::swap(partitions[0].mod_revision, partitions[5].mod_revision);  // p5 is now the oldest
  const std::optional<EtcdTxn> txn = FoldTxn(keys, dataset, partitions, 4, 1, &folded);
  ASSERT_TRUE(txn.has_value());
  EXPECT_EQ(folded, 4u);  // 6 partitions, 4 / 2 kept
  std::vector<std::string> guarded, deleted;
  for (const auto& compare : txn->request().compare()) guarded.push_back(compare.key());
  for (const auto& op : txn->request().success()) {
    if (op.has_request_delete_range()) deleted.push_back(op.request_delete_range().key());
  }
  EXPECT_EQ(guarded, (std::vector<std::string>{"normd/catalog/d", "normd/part/d/.shared",
                                               "normd/part/d/p5", "normd/part/d/p1",
                                               "normd/part/d/p2", "normd/part/d/p3"}));
  EXPECT_EQ(deleted, (std::vector<std::string>{"normd/part/d/p5", "normd/total/d/p5",
                                               "normd/part/d/p1", "normd/total/d/p1",
                                               "normd/part/d/p2", "normd/total/d/p2",
                                               "normd/part/d/p3", "normd/total/d/p3"}));
  // The guards name the revisions read: the catalogue's generation, the shared
  // partition absent, each moved partition as read.
  EXPECT_EQ(txn->request().compare(0).create_revision(), 42);
  EXPECT_EQ(txn->request().compare(1).mod_revision(), 0);
  EXPECT_EQ(txn->request().compare(2).mod_revision(), 100);  // p5, swapped
  // A running average has one partition and never folds.
  dataset.spec.accumulator = AccumulatorKind::kRunningAverage;
  EXPECT_FALSE(FoldTxn(keys, dataset, partitions, 4, 1, &folded).has_value());
}

TEST(PartitionsTest, TheLiveStatisticsAreEveryPartitionMerged) {
  const DatasetSpec spec = TwoChannels();
  const std::vector<Partition> partitions = Partitions(spec, 3);
  const DatasetStatistics live = MergePartitions(spec, partitions);
  EXPECT_EQ(live.split(Split::kTrain).batches, 3u);
  EXPECT_EQ(live.split(Split::kTrain).samples, 6u);
  // Every partition holds rows (0, 0) and (1, 10): the merged mean of channel 1 is 5.
  EXPECT_EQ(live.split(Split::kTrain).moments[1].count, 6u);
  EXPECT_DOUBLE_EQ(live.split(Split::kTrain).moments[1].Mean(), 5.0);
}

}  // namespace
}  // namespace normd
