// IngestTransaction against a real RocksDB store: a dataset's bounded memory of
// writers, kept across a restart.
#include "server/engine/ingest_transaction.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/engine/dataset_engine.h"
#include "server/store/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace normd {
namespace {

class WriterMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open();
    ASSERT_TRUE(engine_->Create({"d", Layout::kNC, 1}).ok());
  }

  void Open() {
    engine_.reset();
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::unique_ptr<DatasetEngine>> engine = DatasetEngine::Open(*std::move(store));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  // One single-value batch as `writer`'s `sequence`, committed: "applied", "duplicate",
  // or the error's code.
  std::string Send(const std::string& writer, uint64_t sequence) {
    absl::StatusOr<bool> duplicate = SendBatch(writer, sequence);
    if (!duplicate.ok()) return absl::StatusCodeToString(duplicate.status().code());
    return *duplicate ? "duplicate" : "applied";
  }

  absl::StatusOr<bool> SendBatch(const std::string& writer, uint64_t sequence) {
    absl::StatusOr<IngestTransaction> transaction = engine_->BeginIngest("d");
    if (!transaction.ok()) return transaction.status();
    const int64_t shape[] = {1, 1};
    const float value = static_cast<float>(sequence);
    absl::StatusOr<ValidatedTensor> batch =
        ValidateTensor({DType::kFloat32, shape, std::as_bytes(std::span(&value, 1))});
    if (!batch.ok()) return batch.status();
    absl::StatusOr<BatchSummary> added =
        transaction->Add(Split::kTrain, *batch, {writer, sequence});
    if (!added.ok()) return added.status();
    absl::StatusOr<DatasetTotals> committed = transaction->Commit();
    if (!committed.ok()) return committed.status();
    return transaction->duplicates() == 1;
  }

  uint64_t TrainBatches() {
    absl::StatusOr<DatasetInfo> info = engine_->Get("d");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->totals[static_cast<size_t>(Split::kTrain)].batches : 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<DatasetEngine> engine_;
};

// A full dataset forgets the least recently committed writer for a new one, in memory
// and in the store; every other writer's resend is still a duplicate.
TEST_F(WriterMemoryTest, ANewWriterInAFullDatasetForgetsTheLeastRecentlyCommittedOne) {
  for (size_t w = 0; w < kMaxWritersPerDataset; ++w) {
    ASSERT_EQ(Send(absl::StrCat("w", w), 1), "applied") << w;
  }
  EXPECT_EQ(Send("w0", 1), "duplicate");  // remembered: a duplicate, which changes no commit time
  EXPECT_EQ(Send("w1", 2), "applied");    // w1 is now the most recent
  ASSERT_EQ(Send("late", 1), "applied");  // the dataset is full: w0 goes
  const uint64_t batches = kMaxWritersPerDataset + 2;
  EXPECT_EQ(TrainBatches(), batches);

  for (int restart = 0; restart < 2; ++restart) {
    SCOPED_TRACE(restart == 0 ? "before a restart" : "after a restart");
    // w0 is forgotten: its next batch is expected to be its first.
    EXPECT_EQ(Send("w0", 2), "FAILED_PRECONDITION");
    for (const std::string writer : {"w1", "w2", "late", "w9999"}) {
      EXPECT_EQ(Send(writer, 1), "duplicate") << writer;
    }
    EXPECT_EQ(TrainBatches(), batches);
    Open();
  }
  engine_.reset();
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(dir_.path());
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::vector<StoredDataset>> stored = (*store)->LoadAllDatasets();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].writers.size(), kMaxWritersPerDataset);
  EXPECT_FALSE((*stored)[0].writers.contains("w0"));
  EXPECT_EQ((*stored)[0].writers.at("w1").sequence, 2u);
}

}  // namespace
}  // namespace normd
