#include "server/store/rocksdb/rocksdb_store.h"

#include <memory>

#include "gtest/gtest.h"
#include "normd/storage/v1/storage.pb.h"
#include "rocksdb/db.h"
#include "server/store/records.h"
#include "tests/support/temp_dir.h"
#include "wire/core_proto.h"

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
  // The encodings are deterministic for equal records, so equal bytes mean equal records.
  EXPECT_EQ(EncodeDatasetRecord(a), EncodeDatasetRecord(b));
  EXPECT_EQ(EncodeStatisticsRecord(a.live), EncodeStatisticsRecord(b.live));
  ASSERT_EQ(a.writers.size(), b.writers.size());
  for (const auto& [writer, mark] : a.writers) {
    ASSERT_TRUE(b.writers.contains(writer)) << writer;
    EXPECT_EQ(EncodeWriterRecord(mark), EncodeWriterRecord(b.writers.at(writer)));
  }
  EXPECT_EQ(a.spec.name, b.spec.name);
}

// The store, loaded, holds exactly `expected`.
void ExpectTheOneDatasetIs(RocksDbStore& store, const StoredDataset& expected) {
  absl::StatusOr<std::vector<StoredDataset>> all = store.LoadAllDatasets();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  ExpectSameRecord((*all)[0], expected);
}

TEST(DatasetStoreTest, DatasetsAndSnapshotsSurviveReopen) {
  testing::TempDir dir;
  StoredDataset d = SampleDataset("cifar");
  FrozenSnapshot snapshot{1, absl::FromUnixSeconds(1700000100), d.live};
  d.next_version = 2;
  d.versions.push_back({1, snapshot.freeze_time, 3});
  {
    auto store = RocksDbStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateDataset(SampleDataset("cifar")).ok());
    ASSERT_TRUE((*store)->PutVersion(d, snapshot).ok());
    ASSERT_TRUE((*store)->CreateDataset(SampleDataset("other")).ok());
  }
  auto store = RocksDbStore::Open(dir.path());
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

TEST(DatasetStoreTest, PinsAndTrafficSurviveReopenAndGoWithTheDataset) {
  testing::TempDir dir;
  StoredDataset d = SampleDataset("cifar");
  d.versions.push_back({1, absl::FromUnixSeconds(1700000100), 3, {"channel 0: PSI 0.4 fails"}});
  d.next_version = 2;
  d.pinned_version = 1;
  d.pin_rollback = true;
  StoredTraffic traffic;
  traffic.version = 1;
  traffic.incarnation = absl::ToUnixMicros(d.create_time);
  traffic.requests = 9;
  traffic.sampled_requests = 2;
  traffic.settled = d.live.split(Split::kTrain);
  traffic.slices.emplace_back(absl::FromUnixSeconds(1700000400), d.live.split(Split::kTrain));
  {
    auto store = RocksDbStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateDataset(SampleDataset("cifar")).ok());
    ASSERT_TRUE((*store)->PutCatalogue(d).ok());
    ASSERT_TRUE((*store)->PutTraffic(d.spec, traffic).ok());
    traffic.version = 2;
    ASSERT_TRUE((*store)->PutTraffic(d.spec, traffic).ok());
    traffic.version = 1;
  }
  auto store = RocksDbStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  ExpectTheOneDatasetIs(**store, d);
  absl::StatusOr<std::vector<StoredTraffic>> loaded = (*store)->LoadTraffic(d.spec);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].dataset, "cifar");
  EXPECT_EQ(EncodeTrafficRecord((*loaded)[0]), EncodeTrafficRecord(traffic));
  EXPECT_EQ((*loaded)[1].version, 2u);
  ASSERT_TRUE((*store)->DeleteDataset("cifar").ok());
  loaded = (*store)->LoadTraffic(d.spec);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->empty());
}

TEST(DatasetStoreTest, DeleteRemovesOnlyThatDatasetsSnapshots) {
  testing::TempDir dir;
  auto store = RocksDbStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  // "a" and "a-b": a prefix-naive range delete of "a" would also hit "a-b".
  for (const std::string name : {"a", "a-b", "a.b"}) {
    StoredDataset d = SampleDataset(name);
    ASSERT_TRUE((*store)->CreateDataset(d).ok());
    const WriterMarkUpdate mark{"w", {1, absl::Now()}, {}};
    ASSERT_TRUE((*store)->CommitIngest(d.spec, d.live, &mark).ok());
    ASSERT_TRUE((*store)->PutVersion(d, {1, absl::Now(), d.live}).ok());
  }
  ASSERT_TRUE((*store)->DeleteDataset("a").ok());
  absl::StatusOr<std::vector<StoredDataset>> all = (*store)->LoadAllDatasets();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].spec.name, "a-b");
  EXPECT_EQ((*all)[0].writers.size(), 1u);
  EXPECT_EQ((*all)[1].writers.size(), 1u);
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

// A commit writes the live statistics and one writer's mark; a forgotten writer's
// mark is gone after a reopen, every other stays.
TEST(DatasetStoreTest, CommitsWriteOneMarkAndForgetOnlyWhatTheyName) {
  testing::TempDir dir;
  StoredDataset d = SampleDataset("cifar");
  {
    auto store = RocksDbStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CreateDataset(d).ok());
    for (int w = 0; w < 5; ++w) {
      d.writers[absl::StrCat("w", w)] = {static_cast<uint64_t>(w + 1), absl::FromUnixSeconds(w)};
      const WriterMarkUpdate mark{absl::StrCat("w", w), d.writers[absl::StrCat("w", w)], {}};
      ASSERT_TRUE((*store)->CommitIngest(d.spec, d.live, &mark).ok());
    }
    d.live.split(Split::kTrain).batches = 99;
    d.writers.erase("w0");
    d.writers.erase("w3");
    d.writers["w9"] = {7, absl::FromUnixSeconds(100)};
    const WriterMarkUpdate mark{"w9", d.writers["w9"], {"w0", "w3"}};
    ASSERT_TRUE((*store)->CommitIngest(d.spec, d.live, &mark).ok());
  }
  ExpectTheOneDatasetIs(**RocksDbStore::Open(dir.path()), d);
}

// A store written before live statistics and writer marks had their own keys holds
// both in the catalogue record: it opens with everything, and is moved to the new
// keys so that the next commit (which writes only those) loses nothing.
TEST(DatasetStoreTest, ARecordOfTheOldLayoutIsMovedToPerWriterKeys) {
  testing::TempDir dir;
  StoredDataset d = SampleDataset("cifar");
  d.writers["old-writer"] = {4, absl::FromUnixSeconds(1700000000)};
  {
    // The old layout, written as normd wrote it: one DatasetRecord under "d/<name>".
    storage::v1::DatasetRecord record;
    *record.mutable_spec() = DatasetSpecToProto(d.spec);
    TimeToProto(d.create_time, record.mutable_create_time());
    record.set_next_version(d.next_version);
    ASSERT_TRUE(record.mutable_live()->ParseFromString(EncodeStatisticsRecord(d.live)));
    storage::v1::WriterRecord& writer = (*record.mutable_writers())["old-writer"];
    writer.set_sequence(4);
    TimeToProto(d.writers["old-writer"].commit_time, writer.mutable_commit_time());
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "d/cifar", record.SerializeAsString()).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  {
    auto store = RocksDbStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ExpectTheOneDatasetIs(**store, d);
    d.live.split(Split::kTrain).batches += 1;
    d.writers["new-writer"] = {1, absl::FromUnixSeconds(1700000500)};
    const WriterMarkUpdate mark{"new-writer", d.writers["new-writer"], {}};
    ASSERT_TRUE((*store)->CommitIngest(d.spec, d.live, &mark).ok());
  }
  ExpectTheOneDatasetIs(**RocksDbStore::Open(dir.path()), d);
}

}  // namespace
}  // namespace normd
