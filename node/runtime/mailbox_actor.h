// MailboxActor<M>: an actor = state + a handler + a bounded serial mailbox.
//
// Design: Post() appends under a small mutex and, if the actor was idle,
// schedules it on the executor exactly once. RunSlice() takes up to
// kSliceSize messages out of the mailbox and hands them to Handle() as one
// batch, then either reschedules itself (more mail) or goes idle. So at most
// one thread runs an actor at a time, messages are handled in the order they
// were posted, and a busy actor yields its worker after each slice so other
// lists are not starved. The mailbox is bounded: Post() on a full mailbox
// fails at once and the caller answers `overloaded`.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "node/runtime/executor.h"

namespace todo::runtime {

template <typename M>
class MailboxActor : public Runnable, public std::enable_shared_from_this<MailboxActor<M>> {
 public:
  static constexpr size_t kSliceSize = 64;

  MailboxActor(Executor* executor, size_t capacity) : executor_(executor), capacity_(capacity) {}

  // Thread-safe. False (and `msg` untouched) if the mailbox is full.
  bool Post(M& msg) {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (mailbox_.size() >= capacity_) return false;
      mailbox_.push_back(std::move(msg));
      if (!scheduled_.load(std::memory_order_relaxed)) {
        scheduled_.store(true, std::memory_order_relaxed);
        schedule = true;
      }
    }
    if (schedule) executor_->Schedule(this->shared_from_this());
    return true;
  }

  void RunSlice() final {
    // Reused by every slice this worker thread runs (one at a time).
    thread_local std::vector<M> batch;
    batch.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t n = std::min(kSliceSize, mailbox_.size());
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(mailbox_.front()));
        mailbox_.pop_front();
      }
    }
    Handle(batch);
    batch.clear();
    bool again;
    {
      std::lock_guard<std::mutex> lock(mu_);
      again = !mailbox_.empty();
      // Release: everything Handle() did is visible to whoever sees idle.
      if (!again) scheduled_.store(false, std::memory_order_release);
    }
    if (again) executor_->Schedule(this->shared_from_this());
  }

  // True if no message is queued and no slice is running or pending. Only
  // meaningful to the single thread that posts (it can't change under it).
  bool Idle() const { return !scheduled_.load(std::memory_order_acquire); }

 protected:
  // Handles a batch of messages, in order. Runs on one worker at a time.
  virtual void Handle(std::vector<M>& batch) = 0;

 private:
  Executor* const executor_;
  const size_t capacity_;
  std::mutex mu_;
  std::deque<M> mailbox_;  // guarded by mu_; FIFO
  std::atomic<bool> scheduled_{false};
};

}  // namespace todo::runtime
