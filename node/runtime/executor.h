// Executor: where runnable actors go to be run. The production executor is
// the WorkerPool (a fixed set of threads, like the BEAM's schedulers); tests
// use a ManualExecutor that runs actors on the test's own thread, so actor
// behaviour can be checked deterministically.
#pragma once

#include <deque>
#include <memory>

namespace todo::runtime {

class Runnable {
 public:
  virtual ~Runnable() = default;
  // Processes a slice of the actor's mailbox on the calling thread.
  virtual void RunSlice() = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Queues `r` to have RunSlice called once, on some thread. An actor is
  // scheduled at most once at a time (MailboxActor guarantees it), so the
  // run queue never holds more entries than there are live actors.
  virtual void Schedule(std::shared_ptr<Runnable> r) = 0;
};

// Runs scheduled actors only when the test says so. Not thread-safe.
class ManualExecutor : public Executor {
 public:
  void Schedule(std::shared_ptr<Runnable> r) override { queue_.push_back(std::move(r)); }
  // Runs queued slices until none is queued; returns how many ran.
  int RunAll() {
    int n = 0;
    while (!queue_.empty()) {
      auto r = std::move(queue_.front());
      queue_.pop_front();
      r->RunSlice();
      ++n;
    }
    return n;
  }
  size_t pending() const { return queue_.size(); }

 private:
  std::deque<std::shared_ptr<Runnable>> queue_;
};

}  // namespace todo::runtime
