// WorkerPool: a fixed number of threads that run actor slices.
//
// Design: one run queue (mutex + condition variable) shared by all workers.
// An actor is in the queue at most once (see MailboxActor), so the queue is
// bounded by the number of live actors, which the registry bounds. Workers
// wait with a timeout so that Stop() is noticed even without a wake-up.
// This is the only place in the node, besides the store's writers, that
// creates threads: never one thread per list.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "node/runtime/executor.h"

namespace todo::runtime {

class WorkerPool : public Executor {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool() override;  // Stop()s
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Schedule(std::shared_ptr<Runnable> r) override;

  // Runs what is queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Runnable>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace todo::runtime
