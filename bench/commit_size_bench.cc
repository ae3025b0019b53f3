// Bytes one Ingest commit writes to the store's write-ahead log, in a dataset that
// already holds `writers` writer marks: the WAL's growth is what RocksDB made durable
// for that commit (the WriteBatch and the log's framing). The yardstick is the same
// commit with one writer; with per-writer keys the two should be equal.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/engine/dataset_engine.h"
#include "server/store/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace normd {
namespace {

uint64_t WalBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") total += entry.file_size();
  }
  return total;
}

void BM_CommitBytes(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  testing::TempDir dir;
  DatasetSpec spec{.name = "d", .layout = Layout::kNC, .channels = 3};
  {
    // The dataset's writers, each with one committed batch, as ingest commits made them.
    std::unique_ptr<RocksDbStore> store = *RocksDbStore::Open(dir.path());
    StoredDataset record;
    record.spec = spec;
    record.create_time = absl::Now();
    record.live = DatasetStatistics::Empty(spec);
    if (!store->CreateDataset(record).ok()) state.SkipWithError("create failed");
    for (int w = 0; w < writers; ++w) {
      const WriterMarkUpdate mark{absl::StrCat("writer-", w), {1, absl::Now()}, {}};
      if (!store->CommitIngest(spec, record.live, &mark).ok()) state.SkipWithError("seed failed");
    }
  }
  auto engine = *DatasetEngine::Open(*RocksDbStore::Open(dir.path()));
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> shape = {2, 3};
  const ValidatedTensor batch =
      *ValidateTensor({DType::kFloat32, shape, std::as_bytes(std::span<const float>(values))});
  uint64_t sequence = 1, bytes = 0, commits = 0;
  for (auto _ : state) {
    const uint64_t before = WalBytes(dir.path());
    auto transaction = *engine->BeginIngest("d");
    if (!transaction.Add(Split::kTrain, batch, {"writer-0", ++sequence}).ok()) {
      state.SkipWithError("add failed");
    }
    if (!transaction.Commit().ok()) state.SkipWithError("commit failed");
    bytes += WalBytes(dir.path()) - before;
    ++commits;
  }
  state.counters["bytes_per_commit"] = static_cast<double>(bytes) / static_cast<double>(commits);
}
BENCHMARK(BM_CommitBytes)->Arg(1)->Arg(10000)->Iterations(40);

}  // namespace
}  // namespace normd

BENCHMARK_MAIN();
