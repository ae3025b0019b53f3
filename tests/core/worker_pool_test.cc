#include "core/worker_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace normd {
namespace {

TEST(WorkerPoolTest, RunsEveryTaskExactlyOnce) {
  for (size_t threads : {0, 1, 3}) {
    WorkerPool pool(threads);
    for (size_t count : {0, 1, 2, 17, 1000}) {
      std::vector<std::atomic<int>> runs(count);
      pool.ParallelFor(count, [&](size_t i) { runs[i].fetch_add(1); });
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(runs[i].load(), 1) << i << " of " << count;
    }
  }
}

TEST(WorkerPoolTest, ConcurrentCallersEachSeeTheirOwnTasksFinished) {
  WorkerPool pool(2);
  constexpr int kCallers = 6;
  std::vector<std::thread> callers;
  std::vector<long> totals(kCallers);
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        std::vector<long> partial(64);
        pool.ParallelFor(partial.size(), [&](size_t i) { partial[i] = static_cast<long>(i) * t; });
        // ParallelFor has returned, so every slot must be written.
        long sum = 0;
        for (long v : partial) sum += v;
        totals[t] += sum;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (int t = 0; t < kCallers; ++t) EXPECT_EQ(totals[t], 50L * t * (63 * 64 / 2));
}

}  // namespace
}  // namespace normd
