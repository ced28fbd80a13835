// ListActor: the book's Todo.Server — one per to-do list, holding the list's
// TodoList value and handling its requests one at a time.
//
// Design: a MailboxActor<Call> run by the worker pool. On its first message
// (the book's `:real_init`) it loads its list from the store on its own
// worker, so nobody else waits for the load. Each request is applied to the
// in-memory TodoList in arrival order:
//  - a write reserves a slot in its shard writer first (full: `overloaded`,
//    nothing applied), is applied, and is handed to the writer with its reply
//    already encoded; the reply leaves only when the batch is durable.
//  - a read is answered at once when the actor has no write in flight;
//    otherwise it queues behind those writes as a barrier, so no reply ever
//    reveals a change that is not durable.
// If a write fails, the writer raises the actor's valid epoch; the actor then
// reloads from disk before its next message (the list is never left ahead of
// the disk). After the writer has reopened a failed shard it raises the
// shard's generation; the actor reloads at its next message with no write in
// flight (store/shard_writer.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/todo_list.h"
#include "node/message.h"
#include "node/reply_queue.h"
#include "node/runtime/mailbox_actor.h"
#include "node/store/store.h"

namespace todo::node {

// The memory the live list actors hold, summed (the cache's budget reads it).
// Each actor adds the change of its own estimate after every slice, and
// takes it all back when destroyed.
struct MemoryMeter {
  std::atomic<int64_t> bytes{0};
};

class ListActor : public runtime::MailboxActor<Call>, public store::WriteOwner {
 public:
  // `store`, `replies`, `executor` and `meter` (optional) must outlive the
  // actor.
  ListActor(std::string name, runtime::Executor* executor, size_t mailbox_capacity,
            store::Store* store, ReplyQueue* replies, MemoryMeter* meter = nullptr);
  ~ListActor() override;

  const std::string& name() const { return name_; }
  // True if nothing is queued, running or waiting for the disk: the registry
  // may drop the actor. Socket-loop only (it is the only poster).
  bool Evictable() const { return Idle() && inflight.load(std::memory_order_acquire) == 0; }

 protected:
  void Handle(std::vector<Call>& batch) override;

 private:
  // Loads (or after a failed write, reloads) the list. Worker thread.
  Status EnsureLoaded();
  void HandleOne(Call& call, std::vector<Reply>* now, std::vector<store::WriteOp>* writes);
  // Sends `body` for `call`: at once, or behind the in-flight writes.
  void Answer(Call& call, zmq::message_t body, std::vector<Reply>* now,
              std::vector<store::WriteOp>* writes);
  void Fail(Call& call, const Status& s, std::vector<Reply>* now);
  std::shared_ptr<store::WriteOwner> self();
  // Reports the change of this actor's memory estimate to meter_.
  void Meter();

  const std::string name_;
  store::Store* const store_;
  store::ShardWriter& writer_;
  ReplyQueue* const replies_;
  MemoryMeter* const meter_;
  size_t metered_ = 0;  // bytes last reported to meter_
  // Below: touched only by the worker running the actor.
  bool loaded_ = false;
  bool quiet_ = false;  // no write in flight when the current message began
  uint64_t epoch_ = 0;
  uint64_t generation_ = 0;  // the shard generation list_ was loaded under
  TodoList list_;
};

}  // namespace todo::node
