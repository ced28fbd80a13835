// RidSweeper: drops rid records (common/storage_format.h) once they are
// older than --rid-ttl, in the background and at bounded cost.
//
// Design: one thread ("todo-rid-sweep") runs a pass every `every`. A pass
// visits each shard: it scans the shard's expiry index (the records by
// creation time, oldest first: never the lists) from where its last pass
// stopped, takes at most `max_per_pass` entries created at or before
// now - ttl, checks each one's record with a point lookup, and queues one
// write op to the shard's writer that deletes those records and their index
// entries (rid_delta = -n, so the writer's exact count follows). The deletes
// go through the writer's queue like any client write, so they are ordered
// with the list actors' writes and share their group commits; the thread
// never writes to LevelDB itself. A shard's pass is skipped while its
// previous op is still queued (nothing is deleted twice), and when the
// writer's queue is full (the deletes wait for the next pass). A pass that
// took max_per_pass entries is followed by the next one 20 ms later, so a
// backlog drains while each pass stays small.
//
// Why dropping is safe: a record is written only by a first request, one
// that found none on disk and none in flight in its list's actor, so an
// index entry belongs to exactly one record; and the record is dropped only
// if it still carries the entry's creation time. A retry that arrives while
// the delete is queued still finds the record; one after it is a first
// request again (the documented contract after the TTL).
//
// The filter (rid_filter.h): before its first pass the sweeper inserts
// every record the expiry indexes hold (one scan of them, at start, not per
// pass) and marks the filter complete; then it rotates the filter's
// generations every ttl.
//
// Bounds: a pass reads at most max_per_pass index entries and records per
// shard (plus the tombstones of its own recent deletes, which it skips by
// starting at its cursor), and its op holds their keys. The cursor starts
// over from the oldest entry after a failed write and every 64 passes, so
// an entry written behind it (a wall clock that stepped back) is found.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/store/rid_filter.h"
#include "node/store/shard_writer.h"

namespace todo::store {

class RidSweeper {
 public:
  struct Options {
    std::chrono::milliseconds ttl{std::chrono::hours(24)};
    std::chrono::milliseconds every{std::chrono::seconds(1)};  // 0: no thread (Pass by hand)
    size_t max_per_pass = 2000;                                // per shard
    std::function<uint64_t()> now_ms;                          // wall clock, ms since 1970
    // The filter to fill from the expiry indexes before the first pass (then
    // marked complete) and to rotate every `ttl` (rid_filter.h); optional.
    RidFilter* filter = nullptr;
  };

  // `shards` and `writers` (one per shard) must outlive the sweeper.
  RidSweeper(std::vector<ShardDb*> shards, std::vector<ShardWriter*> writers, Options options);
  ~RidSweeper();  // Stop()s
  RidSweeper(const RidSweeper&) = delete;
  RidSweeper& operator=(const RidSweeper&) = delete;

  // Starts the thread (if options.every > 0). Once.
  void Start();
  // Stops and joins the thread. Idempotent.
  void Stop();

  // One pass over every shard at wall-clock `now_ms`; returns how many
  // records' deletes it queued. Called by the thread, or by a test when
  // there is none (never both: not concurrent with itself).
  size_t Pass(uint64_t now_ms);
  // Any thread: true while some shard's last op is queued or being written.
  bool InFlight() const;

 private:
  struct ShardState {
    std::shared_ptr<WriteOwner> owner = std::make_shared<WriteOwner>();
    std::string cursor;       // the index key the next scan starts at ("" = the start)
    uint64_t used_epoch = 0;  // the owner's valid_epoch when the last op was queued
    uint32_t passes = 0;
  };
  // One shard's pass; returns the records whose deletes it queued, and sets
  // *full if it took max_per_pass entries.
  size_t PassShard(size_t index, uint64_t now_ms, bool* full);
  // Before the first pass: every record on disk into the filter, then the
  // filter marked complete. Then, every ttl, its generations rotated.
  void TendFilter(uint64_t now_ms);
  void Loop();

  const std::vector<ShardDb*> shards_;
  const std::vector<ShardWriter*> writers_;
  const Options options_;
  std::vector<ShardState> state_;  // the pass's thread only
  bool filled_ = false;            // the pass's thread only
  uint64_t generation_start_ms_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace todo::store
