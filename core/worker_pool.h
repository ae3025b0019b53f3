// A fixed set of threads shared by every request, for splitting one large kernel
// call across cores (not a thread per request).
#ifndef NORMD_CORE_WORKER_POOL_H_
#define NORMD_CORE_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace normd {

class WorkerPool {
 public:
  // `threads` workers besides the callers; 0 runs everything on the calling thread.
  explicit WorkerPool(size_t threads);
  ~WorkerPool();  // joins the workers; no ParallelFor may be running

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  size_t threads() const { return workers_.size(); }

  // Calls fn(i) once for every i < count, on the workers and the calling thread,
  // and returns when every call has returned. The caller takes tasks too, so a
  // call makes progress even while all workers serve other requests. Thread-safe.
  void ParallelFor(size_t count, absl::FunctionRef<void(size_t)> fn);

 private:
  struct Job;
  void WorkerLoop();

  absl::Mutex mu_;
  std::deque<Job*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// fn(i) for every i < count: on `pool` when there is one and more than one task,
// else on the calling thread, in order.
void RunTasks(WorkerPool* pool, size_t count, absl::FunctionRef<void(size_t)> fn);

}  // namespace normd

#endif  // NORMD_CORE_WORKER_POOL_H_
