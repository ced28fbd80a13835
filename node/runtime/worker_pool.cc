#include "node/runtime/worker_pool.h"

#include <pthread.h>

#include <chrono>

namespace todo::runtime {

WorkerPool::WorkerPool(int threads) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Schedule(std::shared_ptr<Runnable> r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(r));
  }
  cv_.notify_one();
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkerPool::Loop() {
  pthread_setname_np(pthread_self(), "todo-worker");  // for top -H and perf
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    auto r = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    r->RunSlice();
    r.reset();
    lock.lock();
  }
}

}  // namespace todo::runtime
