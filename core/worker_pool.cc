#include "core/worker_pool.h"

namespace normd {

struct WorkerPool::Job {
  Job(size_t count, absl::FunctionRef<void(size_t)> fn) : count(count), fn(fn) {}
  const size_t count;
  const absl::FunctionRef<void(size_t)> fn;
  size_t next = 0;  // guarded by the pool's mu_
  size_t done = 0;  // guarded by the pool's mu_
};

WorkerPool::WorkerPool(size_t threads) {
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

void WorkerPool::WorkerLoop() {
  absl::MutexLock lock(&mu_);
  const auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  };
  while (true) {
    mu_.Await(absl::Condition(&has_work));
    if (queue_.empty()) return;  // stopping
    Job* job = queue_.front();
    if (job->next == job->count) {  // every task claimed; its caller unlinks it
      queue_.pop_front();
      continue;
    }
    const size_t task = job->next++;
    mu_.Unlock();
    job->fn(task);
    mu_.Lock();
    ++job->done;  // the caller returns only after this, so `job` is alive here
  }
}

void RunTasks(WorkerPool* pool, size_t count, absl::FunctionRef<void(size_t)> fn) {
  if (pool != nullptr && count > 1) {
    pool->ParallelFor(count, fn);
  } else {
    for (size_t i = 0; i < count; ++i) fn(i);
  }
}

void WorkerPool::ParallelFor(size_t count, absl::FunctionRef<void(size_t)> fn) {
  if (count == 0) return;
  if (count == 1 || workers_.empty()) {
    for (size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  Job job(count, fn);
  absl::MutexLock lock(&mu_);
  queue_.push_back(&job);
  while (job.next < job.count) {
    const size_t task = job.next++;
    mu_.Unlock();
    fn(task);
    mu_.Lock();
    ++job.done;
  }
  const auto finished = [&job]() { return job.done == job.count; };
  mu_.Await(absl::Condition(&finished));
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (*it == &job) {
      queue_.erase(it);
      break;
    }
  }
}

}  // namespace normd
