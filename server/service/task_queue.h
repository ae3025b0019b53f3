// A few threads that run posted tasks in order of arrival: where the Ingest
// reactions hand their blocking work (the fit kernels, the synced commit), since a
// gRPC callback reaction must not block the thread it runs on.
#ifndef NORMD_SERVER_SERVICE_TASK_QUEUE_H_
#define NORMD_SERVER_SERVICE_TASK_QUEUE_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace normd {

class TaskQueue {
 public:
  explicit TaskQueue(int threads);
  // Runs what is queued, then joins the threads.
  ~TaskQueue();

  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  void Post(std::function<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_TASK_QUEUE_H_
