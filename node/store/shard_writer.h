// ShardWriter: the book's Todo.DatabaseWorker. One thread per LevelDB shard
// that owns every write to that shard.
//
// Design: list actors reserve a slot (TryReserve) before they change their
// in-memory list, so a full queue is answered `overloaded` with nothing
// applied; then they Submit() the write. The writer takes everything queued
// (up to max_batch ops), appends it into one leveldb::WriteBatch and writes
// it with sync=true: one fsync serves every write that arrived while the
// previous one ran (group commit, sized by load; when the last group was big
// and little is queued it first waits up to 0.3 ms for more, so one sync
// serves more writes under load). Only then are the writes'
// replies handed to the socket loop. A list maps to exactly one shard, and
// the queue is FIFO, so a list's writes reach disk in the order its actor
// applied them.
//
// Reads that must not overtake a list's pending writes are queued as
// "barrier" ops (no mutation): they are answered in the same completion as
// the writes queued before them.
//
// Failure: if a batch fails, none of its writes is acknowledged (each gets
// `internal`), and each owner's valid_epoch is raised, so the owner reloads
// from disk and every op it queued in the failed epoch is refused rather
// than written: the in-memory list is never left ahead of the disk.
//
// Storage faults and recovery. After a failed log write or sync LevelDB
// refuses every later write until the database is reopened, and the failed
// batch's log record may still be in the log, so a plain reopen could replay
// a change that was answered "not applied". The writer, the shard's only
// writer, therefore recovers the shard itself:
//  1. At once, from the still-open database (which never applied the failed
//     group: LevelDB updates its memtable only after the log write and sync
//     succeed), it reads the current value of every key the group touched
//     and keeps them as an undo batch.
//  2. The shard is now unavailable for writes: ops queued meanwhile are
//     answered `internal` at once ("storage failure: shard N unavailable:
//     ...; the change was not applied") and their owners invalidated; none
//     waits for the disk and none is acknowledged. Reads keep using the open
//     database, which shows exactly the acknowledged state.
//  3. Attempts follow at once, then with a backoff of 10 ms doubling to 1 s:
//     probe the disk (write and sync a small file in the shard dir); once the
//     probe passes, close the database (Store::Load answers "unavailable"
//     until it is back), reopen it, and write the undo batch with sync before
//     any new write. A failed reopen or undo leaves the shard closed and is
//     retried; the undo is kept until it is durable.
//  4. Only then is the database handed back to readers and the shard's
//     generation() raised: each list actor of the shard reloads from disk
//     the next time it has nothing in flight (a safety net: after a complete
//     undo the disk already equals what the actors hold).
// A full disk is handled the same way: writes fail fast and the shard comes
// back by itself once space is freed. Reads are answered from the failed
// database while the probe fails, and `internal` ("unavailable") while a
// reopen keeps failing (a disk with a little room but not enough for
// LevelDB's recovery). Each failed batch and each recovery is logged once,
// failed attempts at the 1st, 2nd, 4th, 8th, ...; WriterStats counts them.
// Not covered: a node stopped or killed while a shard is still down exits
// without its undo, so its next start may replay the failed record.
//
// Commit numbers (common/storage_format.h): every group commit also puts
// the shard's commit counter, one more than the last; after a synced commit
// (and its replies) the writer records the counter in the shard's COMMITTED
// file at most once a second (and at Stop()): written to a temp file, synced and renamed, so
// the file only ever holds a number whose commit is on disk. Store::Open
// refuses a shard whose counter is below it (a log that lost acknowledged
// writes). A failed recording is logged and retried a second later; it
// never fails a write. A failed write that reports corruption (a compaction
// that met a damaged table) has the shard's tables checked (TableCheck).
//
// Rid records (common/storage_format.h). Each op says how many rid records
// it adds (a first write with a rid: +1) or drops (the expiry sweeper: -n);
// the writer keeps the shard's count and writes it (the count key) in the
// same batch, so the count on disk is exact through crashes and failures.
// Silent ops (the sweeper's) send no reply; their owner sees them complete.
//
// Test hook (never set in production): the environment variable
// TODO_TEST_CRASH_AT=POINT:N makes the process _exit(86) at the N-th group
// commit that writes (counted over all shards from 1), at POINT:
//   before-write  before the batch reaches LevelDB (nothing of it is logged);
//   before-sync   after LevelDB appended it to its log (in the OS page cache,
//                 so it survives a process crash) but before the fsync;
//   after-sync    after the fsync, before any of its replies is sent.
// So tests can crash a node at a precise point of a write's life, which a
// kill -9 from outside can only hit by chance.
#pragma once

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "node/message.h"
#include "node/reply_queue.h"
#include "node/store/mutations.h"

namespace todo::node {
class ShardReplication;
struct ReplContext;
}  // namespace todo::node

namespace todo::store {

class TableCheck;

// The part of a list actor that its writer needs: shared between the two.
struct WriteOwner {
  // Ops queued and not yet completed (writes and barriers).
  std::atomic<uint32_t> inflight{0};
  // Ops completed (durable, failed or refused), counted in the order the
  // owner submitted them: its writer completes them in that order. Raised
  // (release) after the op's write, so an owner that reads N here (acquire)
  // finds its first N ops' effects on disk, or their failure in
  // valid_epoch.
  std::atomic<uint64_t> completed{0};
  // Ops of an epoch below this are refused; raised when a batch fails.
  std::atomic<uint64_t> valid_epoch{0};

  void Invalidate(uint64_t failed_epoch);
};

// A shard's LevelDB database, shared by the store's readers and the shard's
// writer. Only the writer replaces `db` (when it reopens the shard): readers
// hold `mu` shared for as long as they use `db`; the writer holds it
// exclusively only to take the database away or to hand it back.
struct ShardDb {
  std::string path;          // the shard's directory
  leveldb::Options options;  // to reopen it with
  mutable std::shared_mutex mu;
  std::unique_ptr<leveldb::DB> db;    // guarded by mu; null while the shard is being reopened
  std::string down_reason;            // guarded by mu; why `db` is null
  uint64_t commit = 0;                // the commit counter at open (the writer's from then on)
  TableCheck* table_check = nullptr;  // finds damaged tables (not owned; may be null)
};

// The options of every read of a shard's `db` (the store's and the rid
// sweeper's): each verifies the checksums of the blocks it reads from disk,
// so a damaged block is never read (nor cached) as if it were sound (a block
// in the block cache was verified when it was read).
inline leveldb::ReadOptions VerifiedReads() {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  return ro;
}

// A barrier's reply made when it completes, on the writer thread, from the
// database as it is then (every earlier op of its owner is durable): how a
// retry of a write still in flight gets that write's reply (list_actor.h).
// Not called if the barrier fails (it is answered `internal` then).
struct LateReply {
  virtual ~LateReply() = default;
  virtual zmq::message_t Make(leveldb::DB* db) = 0;
};

struct WriteOp {
  std::shared_ptr<WriteOwner> owner;
  uint64_t epoch = 0;  // the owner's valid_epoch it was made under
  // Replicated mode: the op's partition, and the leader epoch under which
  // this node served it as primary when its actor applied it (0 in static
  // mode). Sequenced only if the node is still primary under that term.
  uint32_t partition = 0;
  uint64_t term = 0;
  Mutations batch;  // empty for a barrier
  bool barrier = false;
  node::Reply reply;            // sent once the op is durable
  protocol::OwnedRequestId id;  // echoed in the error reply if it fails
  // Rid records the op adds (> 0) or drops (< 0): see "Rid records" above.
  int32_t rid_delta = 0;
  // No reply, not even on failure (the node's own ops: the rid sweeper's).
  bool silent = false;
  // A barrier whose reply is made at completion (replaces reply.body).
  std::unique_ptr<LateReply> late_reply;
};

struct WriterStats {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<uint64_t> failed_batches{0};
  std::atomic<uint64_t> max_batch{0};
  std::atomic<uint64_t> write_micros{0};    // total time inside DB::Write
  std::atomic<uint64_t> reopens{0};         // recoveries after a failed batch (undo durable)
  std::atomic<uint64_t> failed_reopens{0};  // recovery attempts that failed (probe, open or undo)
  std::atomic<uint64_t> refused{0};         // ops answered `internal` while the shard was down
  std::atomic<uint64_t> unavailable{0};     // 1 from a failed batch until the shard recovers
  std::atomic<uint64_t> rid_records{0};     // rid records in the shard now (exact: the count key)
  std::atomic<uint64_t> rid_written{0};     // rid records written since the start
  std::atomic<uint64_t> rid_expired{0};     // rid records dropped by the sweeper since the start
  std::atomic<uint64_t> rid_hits{0};        // retries answered from a record (counted by actors)
  std::atomic<uint64_t> rid_conflicts{0};   // rids refused as used for another request (actors)
  // Replicated mode, which keeps no count key: the sweeper's count of the
  // shard's records at start less (rid_written - rid_expired) as they were
  // then (SetRidRecordsScanned), plus the records snapshots received since
  // brought and dropped; valid once rid_records_scanned is true.
  std::atomic<int64_t> rid_records_offset{0};
  std::atomic<bool> rid_records_scanned{false};

  // The rid records in the shard now: the count key's (static mode), or
  // the start scan's count plus what was written and expired since
  // (replicated mode; 0 until the scan is done). Thread-safe.
  uint64_t RidRecords() const {
    if (!rid_records_scanned.load(std::memory_order_acquire)) {
      return rid_records.load(std::memory_order_relaxed);
    }
    const int64_t n = rid_records_offset.load(std::memory_order_relaxed) +
                      static_cast<int64_t>(rid_written.load(std::memory_order_relaxed)) -
                      static_cast<int64_t>(rid_expired.load(std::memory_order_relaxed));
    return n > 0 ? static_cast<uint64_t>(n) : 0;
  }
};

// Per group commit: its size (writes) and its DB::Write time (seconds).
struct WriterHistograms {
  metrics::Histogram batch_sizes{metrics::kBatchSizes};
  metrics::Histogram write_seconds{metrics::kLatencySeconds};
};

class ShardWriter {
 public:
  // `shard` (open), `replies` and `repl` (if given) must outlive the
  // writer. Starts the thread. With `repl` the writer runs the replicated
  // mode (node/replication/shard_replication.h): its partitions' writes are
  // sequenced, replicated and acknowledged once every required copy is
  // durable, and a failed write stops the process (its backups take over).
  ShardWriter(ShardDb* shard, uint32_t index, bool sync, size_t capacity, size_t max_batch,
              node::ReplyQueue* replies, const node::ReplContext* repl = nullptr);
  ~ShardWriter();  // Stop()s
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Thread-safe. Takes one queue slot; false if the queue is full.
  bool TryReserve();
  // Thread-safe. Returns a slot taken by TryReserve that won't be used.
  void Unreserve();
  // Thread-safe. Queues ops (moved from), each holding a reserved slot.
  void Submit(std::vector<WriteOp>& ops);

  // Writes what is queued (refuses it if the shard is down, after one last
  // recovery attempt), then joins the thread. Idempotent.
  void Stop();

  // Thread-safe. Raised each time the shard is back after a failure; a list
  // actor that loaded under an older generation reloads (see above).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  size_t depth() const { return reserved_.load(std::memory_order_relaxed); }
  // Replicated mode: the shard's replication (nullptr in static mode).
  node::ShardReplication* replication() { return repl_.get(); }
  const WriterStats& stats() const { return stats_; }
  // Thread-safe: the list actors' rid counters (kept with the writer's).
  void CountRidHit() { stats_.rid_hits.fetch_add(1, std::memory_order_relaxed); }
  void CountRidConflict() { stats_.rid_conflicts.fetch_add(1, std::memory_order_relaxed); }
  // Replicated mode: the rid sweeper found `found` records in the shard at
  // start, in a scan begun once rid_written and rid_expired read `written`
  // and `expired`; stats' rid_records counts on from there (WriterStats).
  void SetRidRecordsScanned(uint64_t found, uint64_t written, uint64_t expired) {
    stats_.rid_records_offset.fetch_add(
        static_cast<int64_t>(found) - static_cast<int64_t>(written) + static_cast<int64_t>(expired),
        std::memory_order_relaxed);
    stats_.rid_records_scanned.store(true, std::memory_order_release);
  }
  // Thread-safe: a copy of the group-commit histograms.
  WriterHistograms histograms() const {
    std::lock_guard<std::mutex> lock(histograms_mu_);
    return histograms_;
  }

 private:
  using Clock = std::chrono::steady_clock;

  void Loop();
  // The replicated mode's loop (ShardReplication does the sequencing).
  void LoopReplicated();
  // Answers ops that are done and gives their slots back: the replies are
  // queued first, then each owner sees its op completed.
  void Finish(std::vector<node::Reply>* replies, std::vector<WriteOp*>& finished);
  void Commit(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies);
  // Answers every op `internal` because the shard is down.
  void Refuse(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies);
  // After `group` failed with `s`: keeps its undo and marks the shard down.
  void OnWriteFailure(const leveldb::WriteBatch& group, const leveldb::Status& s);
  // One recovery attempt (probe, close, reopen, undo). True if the shard is back.
  bool Recover();
  leveldb::Status ProbeDisk() const;
  // Records commit_ in the shard's COMMITTED file (see above).
  void RecordCommitted();
  leveldb::Status ReopenAndUndo();
  void SetDb(std::unique_ptr<leveldb::DB> db, const std::string& down_reason);
  // Reads the shard's rid record count from its count key (writer thread,
  // or the constructor).
  void LoadRidCount();

  ShardDb* const shard_;
  const uint32_t index_;
  const bool sync_;
  const size_t capacity_;
  const size_t max_batch_;
  node::ReplyQueue* const replies_;

  std::atomic<size_t> reserved_{0};  // slots taken: queued + about to be
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WriteOp> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  WriterStats stats_;
  mutable std::mutex histograms_mu_;  // taken once per group commit
  WriterHistograms histograms_;       // guarded by histograms_mu_
  // Read by list actors (each message with nothing in flight): on its own
  // cache line, away from what the writer updates per commit.
  alignas(64) std::atomic<uint64_t> generation_{0};

  // Writer thread only: the group commit being built (kept for its buffer).
  leveldb::WriteBatch group_;
  size_t last_group_ = 0;     // ops in the last group (for the linger)
  uint64_t rid_records_ = 0;  // the count key's value (writer thread)
  uint64_t commit_ = 0;       // the last commit written (its number)
  std::string commit_value_;  // its encoding, reused
  uint64_t recorded_ = 0;     // the number recorded in the COMMITTED file (at open: the counter)
  Clock::time_point next_record_{};
  bool record_failing_ = false;  // the last recording failed (logged once a streak)
  // Writer thread only: the state of a shard that is down.
  bool broken_ = false;
  leveldb::Status broken_status_;  // the latest failure (named in refusals)
  leveldb::WriteBatch undo_;       // restores the failed group's keys
  bool undo_pending_ = false;      // undo_ not yet durable
  Clock::time_point broken_since_;
  Clock::time_point next_attempt_;
  Clock::duration backoff_{};
  uint64_t attempts_ = 0;       // failed recovery attempts since the failure
  uint64_t refused_since_ = 0;  // ops refused since the failure

  std::unique_ptr<node::ShardReplication> repl_;  // replicated mode only
  bool control_pending_ = false;                  // guarded by mu_: repl_'s inbox has events

  std::thread thread_;  // last: starts after everything above is set
};

}  // namespace todo::store
