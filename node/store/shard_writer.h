// ShardWriter: the book's Todo.DatabaseWorker. One thread per LevelDB shard
// that owns every write to that shard.
//
// Design: list actors reserve a slot (TryReserve) before they change their
// in-memory list, so a full queue is answered `overloaded` with nothing
// applied; then they Submit() the write. The writer takes everything queued
// (up to max_batch ops), appends it into one leveldb::WriteBatch and writes
// it with sync=true: one fsync serves every write that arrived while the
// previous one ran (group commit, sized by load). Only then are the writes'
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
#pragma once

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "node/message.h"
#include "node/reply_queue.h"

namespace todo::store {

// The part of a list actor that its writer needs: shared between the two.
struct WriteOwner {
  // Ops queued and not yet completed (writes and barriers).
  std::atomic<uint32_t> inflight{0};
  // Ops of an epoch below this are refused; raised when a batch fails.
  std::atomic<uint64_t> valid_epoch{0};

  void Invalidate(uint64_t failed_epoch);
};

struct WriteOp {
  std::shared_ptr<WriteOwner> owner;
  uint64_t epoch = 0;
  leveldb::WriteBatch batch;  // empty for a barrier
  bool barrier = false;
  node::Reply reply;            // sent once the op is durable
  protocol::OwnedRequestId id;  // echoed in the error reply if it fails
};

struct WriterStats {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<uint64_t> failed_batches{0};
  std::atomic<uint64_t> max_batch{0};
  std::atomic<uint64_t> write_micros{0};  // total time inside DB::Write
};

// Per group commit: its size (writes) and its DB::Write time (seconds).
struct WriterHistograms {
  metrics::Histogram batch_sizes{metrics::kBatchSizes};
  metrics::Histogram write_seconds{metrics::kLatencySeconds};
};

class ShardWriter {
 public:
  // `db` and `replies` must outlive the writer. Starts the thread.
  ShardWriter(leveldb::DB* db, uint32_t index, bool sync, size_t capacity, size_t max_batch,
              node::ReplyQueue* replies);
  ~ShardWriter();  // Stop()s
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Thread-safe. Takes one queue slot; false if the queue is full.
  bool TryReserve();
  // Thread-safe. Returns a slot taken by TryReserve that won't be used.
  void Unreserve();
  // Thread-safe. Queues ops (moved from), each holding a reserved slot.
  void Submit(std::vector<WriteOp>& ops);

  // Writes what is queued, then joins the thread. Idempotent.
  void Stop();

  size_t depth() const { return reserved_.load(std::memory_order_relaxed); }
  const WriterStats& stats() const { return stats_; }
  // Thread-safe: a copy of the group-commit histograms.
  WriterHistograms histograms() const {
    std::lock_guard<std::mutex> lock(histograms_mu_);
    return histograms_;
  }

 private:
  void Loop();
  void Commit(std::vector<WriteOp>& ops, std::vector<node::Reply>* replies);

  leveldb::DB* const db_;
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
  std::thread thread_;
};

}  // namespace todo::store
