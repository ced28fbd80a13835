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
// Memory. An add needs only the list's next id, not its entries, so an actor
// whose list is not in memory answers adds from a counter read with two
// seeks (Store::LoadNextId) and loads the whole list only for the first
// other request. Under the cache's memory budget the registry asks actors in
// use to shed their list (RequestShed); the actor drops it, keeping the
// counter, at the end of its next slice. So a flood of adds
// holds a counter per list in memory, not the lists, and an add costs the
// same on a list of 10 entries or 10,000. Writes whose effect is not in the
// in-memory list (adds made without it, writes in flight when it was shed)
// are kept (pending_) until they complete: a load while they are in flight
// reads the disk and replays them, so the loaded list is never behind what
// this actor has applied. So a list can be shed under the budget even while
// its writes are in flight, as a list in constant use always has some.
// Request ids (rid, shared/spec/retries.md). A write with a rid is checked
// here, in the actor's order: first the store's in-memory filter (a rid it
// doesn't know has no record: a first request, the usual case, costs no
// lookup), then the writes with a rid this actor has in flight
// (rid_order_), then the list's rid record on disk (a point lookup per
// bucket not yet due, Store::ReadRid; the list itself is not read). A retry (same op and
// arguments) is not applied: it is answered from the record, with its own
// id, behind the writes in flight; a retry of a write still in flight gets
// its reply when that write is durable, from the record it wrote (a
// store::LateReply; `internal` if the write fails). A rid used for another request is bad_request.
// A first request is applied as usual, and its record (a hash of its op and arguments, and its
// outcome: one key) goes in the same write op, hence the same LevelDB batch,
// as its change;
// update_entry of a missing entry and delete_entry of one write just the
// record. A request refused before it is applied leaves none. rid_order_
// holds at most this actor's writes in flight (trimmed as they complete, cleared
// when a failure makes the disk the truth again); records live on disk.
// If a write fails, the writer raises the actor's valid epoch; the actor then
// reloads from disk before its next message (the list is never left ahead of
// the disk). After the writer has reopened a failed shard it raises the
// shard's generation; the actor reloads at its next message with no write in
// flight (store/shard_writer.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/storage_format.h"
#include "common/todo_list.h"
#include "node/message.h"
#include "node/replication/partition_table.h"
#include "node/reply_queue.h"
#include "node/runtime/mailbox_actor.h"
#include "node/store/store.h"

namespace todo::node {

// The memory the live list actors hold, summed (the cache's budget reads it).
// Each actor adds the change of its own estimate after every slice, and
// takes it all back when destroyed.
struct MemoryMeter {
  std::atomic<int64_t> bytes{0};
  int64_t budget = 0;  // the cache's budget (0: none); set before any actor runs

  // Over the budget by more than an eighth of it.
  bool far_over_budget() const {
    return budget > 0 && bytes.load(std::memory_order_relaxed) > budget + budget / 8;
  }
};

class ListActor : public runtime::MailboxActor<Call>, public store::WriteOwner {
 public:
  // `store`, `replies`, `executor`, `meter` and `flight` (both optional)
  // must outlive the actor. With `flight`, a read's reply of
  // kLargeReplyBytes or more is counted in its `replies` until sent, and
  // while those are over the budget a read whose reply would be that large
  // answers `overloaded` (smaller ones are answered).
  // `table` (replicated mode only) says whether this node serves the
  // list's partition; the actor then serves each request under the term it
  // was admitted in, starting over from the disk when a new term begins.
  ListActor(std::string name, runtime::Executor* executor, size_t mailbox_capacity,
            store::Store* store, ReplyQueue* replies, MemoryMeter* meter = nullptr,
            FlightMeter* flight = nullptr, const PartitionTable* table = nullptr);
  ~ListActor() override;

  const std::string& name() const { return name_; }
  // True if nothing is queued, running or waiting for the disk: the registry
  // may drop the actor. Socket-loop only (it is the only poster).
  bool Evictable() const { return Idle() && inflight.load(std::memory_order_acquire) == 0; }
  // Any thread. Asks the actor to drop its list from memory (keeping its
  // counter) at the end of its next slice.
  void RequestShed() { shed_requested_.store(true, std::memory_order_relaxed); }
  // The registry's bookkeeping (socket loop thread only): when the list was
  // last used, and when it was last moved to the front of the LRU order.
  std::chrono::steady_clock::time_point last_used{};
  std::chrono::steady_clock::time_point lru_placed{};
  // Any thread. This actor's memory estimate as last reported to the meter.
  size_t metered_bytes() const { return metered_.load(std::memory_order_relaxed); }

  // The socket loop's fast path for a read: answers `call`, an `entries`,
  // into *body on the calling thread, without the mailbox, a worker and the
  // reply queue, when that gives exactly the reply a posted read would get
  // at once: the actor is Idle() (nothing queued, nothing running), its
  // whole list is in memory and current (no failed write, no reopened
  // shard since the load), no write of it is in flight (so the reply shows
  // only durable changes, and every write accepted before the read), and in
  // replicated mode it was loaded under the call's term, which it still
  // serves. False, with nothing changed, otherwise: the caller posts the
  // call. Socket loop only: it is the only poster, so while the actor is
  // Idle() no worker touches its state, and Idle()'s acquire makes the last
  // slice's writes visible here; the next Post() publishes this read to the
  // next slice. Nothing is written.
  bool TryAnswerRead(const Call& call, std::chrono::steady_clock::time_point now,
                     zmq::message_t* body) const;

  // The socket loop's fast path for a write: true if `call`, a mutation,
  // can be handled on the calling thread without reading the disk: the
  // actor is Idle(), its counter (an add) or its whole list (an update or
  // a delete) is in memory and current, in replicated mode under the
  // call's term, and a rid, if any, surely has no record (the store's
  // filter says so). Socket loop only, as TryAnswerRead. A race with the
  // writer (its last write completing meanwhile) can only make
  // HandleInline read the disk, never answer differently.
  bool CanHandleInline(const Call& call) const;
  // Handles `call` on the calling thread exactly as a slice of one would on
  // a worker, except that its write (if any) goes to *writes and its
  // immediate reply (if any) to *now, for the caller to submit and send;
  // exactly one of them grows. Only after CanHandleInline(call), on the
  // socket loop: while the actor is Idle() no worker touches its state,
  // and the next Post() publishes what this did to the next slice.
  void HandleInline(Call& call, std::vector<Reply>* now, std::vector<store::WriteOp>* writes);
  store::ShardWriter& writer() const { return writer_; }

 protected:
  void Handle(std::vector<Call>& batch) override;

 private:
  // Loads (or after a failed write, reloads) the whole list. Worker thread.
  Status EnsureLoaded();
  // Frees the in-memory list.
  void DropList();
  // The list read from the disk with the pending writes replayed over it.
  TodoList Replay(TodoList disk) const;
  // Forgets the pending and tracked writes (all durable, or the disk is the
  // truth again after a failure).
  void ClearPending();
  // Forgets those whose writes have completed: the disk has them, or their
  // failure raised the valid epoch, and the next load then reads the disk
  // alone.
  void TrimCompleted();
  // kLoaded -> kCounted: keeps the next id, frees the list; the writes in
  // flight become pending writes. Only with the epoch current (no failed
  // write since the load).
  void Shed();
  // Makes the next id known, reading only the counter if the list is not in
  // memory (or must be reread after a failed write). Worker thread.
  Status EnsureCounted();
  // An add without the list in memory.
  // (`rid_hash`: the RidFilter::Hash of its rid, if it has one.)
  void AddCounted(Call& call, uint64_t rid_hash, std::vector<Reply>* now,
                  std::vector<store::WriteOp>* writes);
  // The write of a mutation applied in memory, answered once durable.
  void Submit(Call& call, store::WriteOp op, zmq::message_t body,
              std::vector<store::WriteOp>* writes);
  void HandleOne(Call& call, std::vector<Reply>* now, std::vector<store::WriteOp>* writes);
  // A write with a rid: answers it if its rid has a record (in flight or on
  // disk) or can't be checked, and returns true; false for a first request.
  bool AnswerFromRecord(Call& call, uint64_t rid_hash, std::vector<Reply>* now,
                        std::vector<store::WriteOp>* writes);
  // A first request with a rid: puts its record (with `record`'s outcome)
  // into `op`, and tells the store's filter.
  void AddRidRecord(const protocol::Request& req, uint64_t rid_hash,
                    const storage::RidRecord& record, store::WriteOp* op);
  // After Submit() of that op: remembers the rid's hash as in flight.
  void TrackRid(uint64_t rid_hash);
  // True if a write with a rid of this hash is in flight.
  bool RidInFlight(uint64_t rid_hash) const;
  // The record key hash (storage::RidKeyHash) of the write with a rid being
  // handled: set by HandleOne, read by AddRidRecord.
  storage::RidHash rid_key_hash_{};
  // Sends `body` for `call`: at once, or behind the in-flight writes.
  void Answer(Call& call, zmq::message_t body, std::vector<Reply>* now,
              std::vector<store::WriteOp>* writes);
  void Fail(Call& call, const Status& s, std::vector<Reply>* now);
  std::shared_ptr<store::WriteOwner> self();
  // Reports the change of this actor's memory estimate to meter_.
  void Meter();
  // The end of every slice (inline ones too): sheds the list if asked to,
  // and reports the memory estimate.
  void EndSlice();

  const std::string name_;
  const std::string ns_;  // the prefix of the list's keys (its partition's in a replicated dir)
  store::Store* const store_;
  store::ShardWriter& writer_;
  ReplyQueue* const replies_;
  MemoryMeter* const meter_;
  FlightMeter* const flight_;
  const PartitionTable* const table_;  // replicated mode only
  const uint32_t partition_;           // replicated mode: the list's partition
  std::atomic<size_t> metered_{0};     // bytes last reported to meter_ (written by the worker)
  std::atomic<bool> shed_requested_{false};
  // Below: touched only by the worker running the actor.
  enum class State : uint8_t {
    kEmpty,    // nothing read yet (or a read failed)
    kCounted,  // next_id_ known; list_ not in memory
    kLoaded,   // list_ holds the whole list (and its next id)
  };
  State state_ = State::kEmpty;
  bool quiet_ = false;  // no write in flight when the current message began
  uint64_t epoch_ = 0;
  uint64_t term_ = 0;        // replicated mode: the leader epoch the state was read under
  uint64_t generation_ = 0;  // the shard generation the state was read under
  uint64_t next_id_ = 1;     // kCounted: the id the next add takes
  TodoList list_;
  // Ops handed to the writer so far; an op's ordinal among them is compared
  // with WriteOwner::completed to know whether it is done.
  uint64_t submitted_ = 0;
  // Writes not yet seen complete whose effect the in-memory list does not
  // hold (made in kCounted, or in flight when the list was shed), oldest
  // first from pending_head_: each leaves entry `id` as `entry`, or gone.
  // A load replays them over what the disk has, so the loaded list is never
  // behind what this actor has applied. At most this actor's writes in
  // flight (bounded by its writer's queue); trimmed at every slice.
  struct PendingWrite {
    uint64_t seq;  // the op's ordinal
    bool present;
    Entry entry;  // entry.id is set even when !present
  };
  std::vector<PendingWrite> pending_;
  size_t pending_head_ = 0;
  size_t pending_bytes_ = 0;  // their titles' heap
  // Mutations applied to the loaded list and not yet seen complete: their
  // ordinals and entry ids, so Shed() can turn them into pending_ writes.
  struct Tracked {
    uint64_t seq;
    uint64_t id;
  };
  std::vector<Tracked> tracked_;
  size_t tracked_head_ = 0;
  // Writes with a rid not yet seen complete: their ordinals and their rids'
  // RidFilter::Hash, oldest first from rid_order_head_. A retry whose hash
  // is here waits behind its original (a LateReply reads the original's
  // record once it is durable). At most this actor's writes in flight.
  struct RidOrder {
    uint64_t seq;
    uint64_t hash;
  };
  std::vector<RidOrder> rid_order_;
  size_t rid_order_head_ = 0;
};

}  // namespace todo::node
