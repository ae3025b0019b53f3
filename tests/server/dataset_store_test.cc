#include "server/store/dataset_store.h"

#include <memory>

#include "gtest/gtest.h"
#include "server/store/records.h"
#include "tests/support/temp_dir.h"

namespace normd {
namespace {

StoredDataset SampleDataset(const std::string& name) {
  StoredDataset d;
  d.spec = {name, Layout::kNCHW, 2, AccumulatorKind::kRunningAverage, 0.1, NonFinitePolicy::kSkip};
  d.create_time = absl::FromUnixMicros(1700000000123456);
  d.live = DatasetStatistics::Empty(d.spec);
  ChannelMoments& m = d.live.split(Split::kTrain).moments[1];
  m.count = 12;
  m.mean = {3.5, 1e-17};
  m.m2 = {40.0, -2e-15};
  m.min = -1.0;
  m.max = 9.0;
  d.live.split(Split::kTrain).samples = 3;
  d.live.split(Split::kTest).batches = 4;
  d.live.running->mean = {0.25, 0.5};
  d.live.running->num_batches_tracked = 7;
  return d;
}

void ExpectSameRecord(const StoredDataset& a, const StoredDataset& b) {
  // The encoding is deterministic for equal records, so equal bytes mean equal records.
  EXPECT_EQ(EncodeDatasetRecord(a), EncodeDatasetRecord(b));
  EXPECT_EQ(a.spec.name, b.spec.name);
}

TEST(DatasetStoreTest, DatasetsAndSnapshotsSurviveReopen) {
  testing::TempDir dir;
  StoredDataset d = SampleDataset("cifar");
  FrozenSnapshot snapshot{1, absl::FromUnixSeconds(1700000100), d.live};
  d.next_version = 2;
  d.versions.push_back({1, snapshot.freeze_time, 3});
  {
    auto store = DatasetStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->PutDatasetAndSnapshot(d, snapshot).ok());
    ASSERT_TRUE((*store)->PutDataset(SampleDataset("other")).ok());
  }
  auto store = DatasetStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<StoredDataset>> all = (*store)->LoadAllDatasets();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  ExpectSameRecord((*all)[0], d);
  EXPECT_EQ((*all)[0].live.split(Split::kTrain).moments[1].mean.lo, 1e-17);
  absl::StatusOr<FrozenSnapshot> loaded = (*store)->LoadSnapshot(d.spec, 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(EncodeSnapshotRecord(*loaded), EncodeSnapshotRecord(snapshot));
  EXPECT_EQ((*store)->LoadSnapshot(d.spec, 2).status().code(), absl::StatusCode::kNotFound);
}

TEST(DatasetStoreTest, DeleteRemovesOnlyThatDatasetsSnapshots) {
  testing::TempDir dir;
  auto store = DatasetStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  // "a" and "a-b": a prefix-naive range delete of "a" would also hit "a-b".
  for (const std::string name : {"a", "a-b", "a.b"}) {
    StoredDataset d = SampleDataset(name);
    ASSERT_TRUE((*store)->PutDatasetAndSnapshot(d, {1, absl::Now(), d.live}).ok());
  }
  ASSERT_TRUE((*store)->DeleteDataset("a").ok());
  absl::StatusOr<std::vector<StoredDataset>> all = (*store)->LoadAllDatasets();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].spec.name, "a-b");
  EXPECT_EQ((*store)->LoadSnapshot(SampleDataset("a").spec, 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE((*store)->LoadSnapshot(SampleDataset("a-b").spec, 1).ok());
  EXPECT_TRUE((*store)->LoadSnapshot(SampleDataset("a.b").spec, 1).ok());
}

TEST(DatasetStoreTest, RecordOfWrongShapeIsDataLoss) {
  StoredDataset d = SampleDataset("x");
  const std::string bytes = EncodeSnapshotRecord({1, absl::Now(), d.live});
  DatasetSpec wider = d.spec;
  wider.channels = 3;
  EXPECT_EQ(DecodeSnapshotRecord(bytes, wider).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeDatasetRecord("\xff\xff garbage").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace normd
