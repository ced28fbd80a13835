// RidSweeper: drops rid records (common/storage_format.h) once they are
// due (at least --rid-ttl old), in the background and at bounded cost.
//
// Design: one thread ("todo-rid-sweep") runs a pass every `every`. A pass
// visits each shard: it scans the shard's rid records, which sort by the
// time their bucket is due (drop_at), from where its last pass stopped,
// takes at most `max_per_pass` keys due at now, and queues one write op to
// the shard's writer that deletes them (rid_delta = -n, so the writer's
// exact count follows). While version 1 records may exist (`legacy`), the
// same pass first takes from the version 1 expiry index (oldest first)
// the entries created at or before now - ttl and the records they name
// (each checked with a point lookup), within the same budget; once a scan
// of every shard's old index from its start finds nothing, `legacy` is
// cleared. The deletes go through the writer's queue like any client
// write, so they are ordered with the list actors' writes and share their
// group commits; the thread never writes to LevelDB itself. A shard's pass
// is skipped while its previous op is still queued (nothing is deleted
// twice), and when the writer's queue is full (the deletes wait for the
// next pass). A pass that took max_per_pass keys is followed by the next
// one 20 ms later, so a backlog drains while each pass stays small.
//
// Why dropping is safe: a record's bucket is due only once every record in
// it is at least ttl old, and lookups (Store::GetRid) never read a bucket
// that is due, so a record is "dropped" for the clients the moment its
// bucket is due, whether or not its delete has reached the disk yet: a
// retry after that is a first request (the documented contract after the
// TTL), whose new record goes to a newer bucket.
//
// The filter (rid_filter.h): before its first pass the sweeper inserts
// every record not yet due (one scan of the rid keys, and of the version 1
// index, at start, not per pass) and marks the filter complete; then it
// rotates the filter's generations every ttl.
//
// Bounds: a pass reads at most max_per_pass keys (and version 1 records)
// per shard (plus the tombstones of its own recent deletes, which it skips
// by starting at its cursor), and its op holds their keys. The cursors start
// over from the range's start after a failed write and every 64 passes, so
// a key written behind them is found.
//
// Replicated mode (Options::term_of set): a partition's records must be
// dropped by its primary through the replicated write path, or its replicas
// diverge. So a pass visits, in each shard, the partitions this node leads
// now (term_of(p) != 0: primary under a term, lease current), each on its
// own cursor, and queues per partition one op of at most max_per_pass
// deletes, tagged with the partition and that term: the shard writer
// sequences it like a client write (ShardReplication::Sequence refuses it,
// silently, if the node is no longer primary under that term, its lease
// has lapsed, the partition is handing off or has too few in sync), sends
// it to the backups, which apply it as any record, and writes it. A
// partition's cursor starts over when its term changes (a new primary
// sweeps what the old one left). Version 1 records are not swept in this
// mode (none is written by this version). The filter is filled at start
// from every partition's records on this node; what backups write later
// their writers insert (rid_filter.h).
#pragma once

#include <atomic>
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
    // The filter to fill from the records on disk before the first pass (then
    // marked complete) and to rotate every `ttl` (rid_filter.h); optional.
    RidFilter* filter = nullptr;
    // True while version 1 records may exist: swept too, and cleared when
    // none is left. Optional.
    std::atomic<bool>* legacy = nullptr;
    // Replicated mode (see above): the number of partitions (partition p
    // lives in shard p % shards), and the term under which this node may
    // write p now (0: it may not). Called from the sweeper's thread.
    uint32_t partitions = 0;
    std::function<uint64_t(uint32_t)> term_of;
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
    std::string cursor;              // the record key the next scan starts at ("" = the start)
    std::string legacy_cursor;       // the same in the version 1 expiry index
    std::string next_legacy_cursor;  // where it moves once the pass's op is queued
    uint64_t used_epoch = 0;         // the owner's valid_epoch when the last op was queued
    uint32_t passes = 0;
    bool legacy_empty = false;  // the last scan of the old index from its start found nothing
    uint64_t term = 0;          // replicated mode: the term of the last op queued
  };
  // One shard's pass; returns the records whose deletes it queued, and sets
  // *full if it took max_per_pass entries.
  size_t PassShard(size_t index, uint64_t now_ms, bool* full);
  // Replicated mode: the same for partition p, if this node leads it now.
  size_t PassPartition(uint32_t p, uint64_t now_ms, bool* full);
  // Adds to *op the deletes of the rid records of namespace `ns` ("" in
  // static mode) from `cursor` (its start if empty) up to `limit`, while
  // *entries < max_per_pass; counts them in *entries (every key) and
  // *records (the well-formed ones: a malformed key is logged, naming
  // `where`, and dropped too); *last_key is the last key taken. Under the
  // shard's lock.
  void ScanDue(leveldb::DB* db, const std::string& ns, const std::string& cursor,
               const std::string& limit, std::string_view where, WriteOp* op, size_t* entries,
               size_t* records, std::string* last_key) const;
  // Queues `op` (deleting `records` records) on shard `index`'s writer for
  // `st`, as the sweeper's own silent write under the owner's `epoch`;
  // false (nothing queued) if the writer is full.
  bool SubmitDeletes(size_t index, ShardState& st, uint64_t epoch, size_t records, WriteOp op);
  // Version 1: adds to *op the deletes of at most `budget` expired index
  // entries and their records; sets *entries, *records, and *empty if the
  // index had nothing from its start. False if a read failed.
  bool TakeLegacy(size_t index, const ShardDb& shard, uint64_t now_ms, size_t budget, WriteOp* op,
                  size_t* entries, size_t* records, bool* empty);
  // Before the first pass: every record on disk into the filter, then the
  // filter marked complete. Then, every ttl, its generations rotated.
  void TendFilter(uint64_t now_ms);
  void Loop();

  const std::vector<ShardDb*> shards_;
  const std::vector<ShardWriter*> writers_;
  const Options options_;
  std::vector<ShardState> state_;  // the pass's thread only (by shard, or by partition)
  bool filled_ = false;            // the pass's thread only
  uint64_t generation_start_ms_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace todo::store
