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
#include <memory>
#include <mutex>
#include <vector>

#include "node/runtime/executor.h"

namespace todo::runtime {

template <typename M>
class MailboxActor : public Runnable, public std::enable_shared_from_this<MailboxActor<M>> {
 public:
  static constexpr size_t kSliceSize = 64;
  static constexpr size_t kKeepCapacity = 16;

  MailboxActor(Executor* executor, size_t capacity) : executor_(executor), capacity_(capacity) {}

  // Thread-safe. False (and `msg` untouched) if the mailbox is full.
  bool Post(M& msg) {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (mailbox_.size() - head_ >= capacity_) return false;
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
      size_t n = std::min(kSliceSize, mailbox_.size() - head_);
      for (size_t i = 0; i < n; ++i) batch.push_back(std::move(mailbox_[head_ + i]));
      head_ += n;
      if (head_ == mailbox_.size()) {
        // Empty: drop the storage of a big burst so idle actors stay small.
        if (mailbox_.capacity() > kKeepCapacity) {
          std::vector<M>().swap(mailbox_);
        } else {
          mailbox_.clear();
        }
        head_ = 0;
      } else if (head_ >= kSliceSize * 4) {
        mailbox_.erase(mailbox_.begin(), mailbox_.begin() + static_cast<ptrdiff_t>(head_));
        head_ = 0;
      }
    }
    Handle(batch);
    batch.clear();
    bool again;
    {
      std::lock_guard<std::mutex> lock(mu_);
      again = head_ < mailbox_.size();
      // Release: everything Handle() did is visible to whoever sees idle.
      if (!again) scheduled_.store(false, std::memory_order_release);
    }
    if (again) executor_->Schedule(this->shared_from_this());
  }

  // True if no message is queued and no slice is running or pending. Only
  // meaningful to the single thread that posts (it can't change under it).
  bool Idle() const { return !scheduled_.load(std::memory_order_acquire); }

  // Thread-safe: messages waiting in the mailbox (for metrics).
  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return mailbox_.size() - head_;
  }

 protected:
  // Handles a batch of messages, in order. Runs on one worker at a time.
  virtual void Handle(std::vector<M>& batch) = 0;

 private:
  Executor* const executor_;
  const size_t capacity_;
  mutable std::mutex mu_;
  // FIFO: mailbox_[head_..] are queued (guarded by mu_). A vector, not a
  // deque, because a deque allocates ~600 bytes up front even when empty,
  // and a node holds up to --max-lists actors, most of them idle.
  std::vector<M> mailbox_;
  size_t head_ = 0;
  std::atomic<bool> scheduled_{false};
};

}  // namespace todo::runtime
