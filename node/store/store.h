// Store: the book's Todo.Database. A node's lists live in N LevelDB shards
// under one data dir; a list belongs to shard ShardOf(name) and its writes go
// through that shard's ShardWriter (the database worker).
//
// Data dir layout:
//   DIR/LOCK          flock()ed while a node uses the dir (two nodes never share it)
//   DIR/MANIFEST      "format 1", "shards N" (common/storage_format.h); a
//                     replicated dir: "format 2", and its cluster, node,
//                     partition count and data id
//   DIR/shard-NNN/    one LevelDB database per shard, and its COMMITTED file
// Opening checks the manifest against the options and refuses a mismatch:
// a static-mode dir (format 1) is never opened by a replicated node or the
// other way round, and a replicated dir only by the node and cluster named
// in it. In a replicated dir every key is prefixed with its partition
// (storage_format.h) and a partition lives in shard partition % shards.
//
// Integrity: what a damaged data dir does (never a wrong answer, never an id
// given out twice without a word):
//  - A new dir's shards are created first, then its MANIFEST (written last,
//    atomically): a MANIFEST means every shard was set up. Opening an
//    existing dir never creates anything: the MANIFEST must parse strictly
//    (storage_format.h), the shard dirs present must be exactly the ones it
//    names, each must hold LevelDB's CURRENT and open without
//    create_if_missing. Anything else refuses to start, naming the path.
//  - paranoid_checks: LevelDB fails the open on a log record whose checksum
//    or framing is bad (a corruption in the middle of the log, or garbage
//    at its end), on a damaged descriptor (its MANIFEST-NNNNNN), and on a
//    table file the descriptor names that is missing. The node then
//    refuses to start; nothing is dropped. Compactions verify checksums too.
//  - A torn last record (the tail of a write that was never acknowledged:
//    a write is acknowledged only once its log record is synced) is dropped
//    by LevelDB's log reader without a word: that is a crash, not damage.
//  - But a log cut short by damage (truncated, or deleted) looks the same.
//    So every group commit also writes the shard's commit counter, and the
//    writer records the last acknowledged commit number in the shard's
//    COMMITTED file at least every second of writing and at a clean stop
//    (storage_format.h). A shard whose counter is below that number lost
//    acknowledged writes: the open refuses, naming the shard and the file.
//    Not detected: losing only the writes of the last second before a
//    crash, and the loss of a whole shard's files with its COMMITTED file.
//  - Reads verify block checksums (ReadOptions::verify_checksums). A read
//    that meets a damaged block, an unreadable table, or a record that
//    doesn't decode fails: the list's request answers `internal`, naming
//    the shard (and the damaged file once known), and the node logs it at
//    error level (the 1st, 2nd, 4th, ... failure of each shard). A damaged
//    table is found by TableCheck (table_check.h), as LevelDB's checksum
//    error names no file. Other lists of the shard are served as before.
//
// Thread-safety: Load() may be called from any thread (LevelDB reads are
// thread-safe, and a shard being reopened by its writer is held under a
// shared lock); writers are thread-safe; Open/Stop from one thread.
#pragma once

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/storage_format.h"
#include "common/todo_list.h"
#include "node/reply_queue.h"
#include "node/store/shard_writer.h"
#include "node/store/table_check.h"

namespace todo::store {

// The replicated mode's layout (format 2).
struct ReplicatedLayout {
  std::string cluster;      // --cluster-name
  std::string node;         // --name
  uint32_t partitions = 0;  // the map's P
};

struct StoreOptions {
  std::string dir;                             // created if missing
  std::optional<ReplicatedLayout> replicated;  // none: static mode (format 1)
  // Replicated mode: the writers' replication context (its `shards` is set
  // by Open to the count the dir has); must outlive the store.
  node::ReplContext* repl = nullptr;
  uint32_t shards = 0;          // must match the manifest of an existing dir; 0 = whatever it has
  uint32_t new_dir_shards = 4;  // with shards = 0: the count for a new dir
  bool sync = true;             // fsync every group commit (off only for tests/benchmarks)
  size_t writer_queue = 16384;  // ops queued per shard before `overloaded`
  size_t max_batch = 4096;      // ops per group commit at most
  size_t block_cache_bytes = 2 << 20;   // per shard (one LRU cache for all shards)
  size_t write_buffer_bytes = 4 << 20;  // per shard memtable
  leveldb::Env* env = nullptr;          // nullptr: leveldb::Env::Default(); tests inject faults
  // Write-ahead logs over pre-zeroed files of write_buffer_bytes + 1 MiB
  // (log_env.h: a group commit's fdatasync then skips ext4's journal).
  // Only with the default Env.
  bool preallocate_logs = true;
  // Bloom filter bits per key in new tables (0: none). Lets a lookup of a rid
  // that has no record (every first write with a rid) skip the tables that
  // can't hold it; ~1% false positives at 10 bits.
  int bloom_bits_per_key = 10;
  // Rid records (common/storage_format.h) are kept at least this long (and
  // less than twice as long: they are dropped a bucket at a time), then
  // dropped by the sweeper (rid_sweeper.h).
  std::chrono::milliseconds rid_ttl = std::chrono::hours(24);
  // The sweeper's pass interval (0: no sweeper thread; tests call
  // Store::SweepRids themselves), and the records one pass drops per shard
  // at most (a pass that drops that many is followed by another soon).
  std::chrono::milliseconds rid_sweep_every = std::chrono::seconds(1);
  size_t rid_sweep_max = 2000;
  // The in-memory filter in front of the rid lookups (rid_filter.h): its
  // bytes; 0: none, every first write looks up the disk.
  size_t rid_filter_bytes = 16 << 20;
  // Wall-clock milliseconds since the Unix epoch, stamped on rid records.
  // Empty: the system clock. Tests inject their own.
  std::function<uint64_t()> now_ms;
};

class RidSweeper;
class RidFilter;

class Store {
 public:
  // Locks the dir, checks the manifest and the shards (an existing dir) or
  // creates them (a new one), opens every shard and starts the writers.
  // internal naming the path and what is wrong if the dir is damaged (see
  // above).
  static StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                               node::ReplyQueue* replies);
  ~Store();  // Stop()s, closes the shards, releases the lock

  uint32_t shards() const { return static_cast<uint32_t>(shards_.size()); }
  uint32_t ShardFor(std::string_view list) const;
  // Replicated mode: the partition count (0 in static mode), a list's
  // partition, the shard holding a partition, and the dir's id.
  bool replicated() const { return partitions_ != 0; }
  uint32_t partitions() const { return partitions_; }
  uint32_t PartitionFor(std::string_view list) const;
  uint32_t ShardOfPartition(uint32_t p) const { return p % shards(); }
  const std::string& data_id() const { return data_id_; }
  // Replicated mode: the cluster map this node last ran on, kept in the
  // data dir (kClusterMapFile) so that a restarted node knows how far the
  // cluster had gone even if etcd was rolled back (node/replication/
  // DESIGN.md, "A map that goes back"). Saved whole and atomically; nullopt
  // if none was saved.
  static constexpr char kClusterMapFile[] = "CLUSTER_MAP";
  Status SaveClusterMap(const std::string& json) const;
  std::optional<std::string> LoadClusterMap() const;
  // The prefix of every key of `list`: its partition's in a replicated dir,
  // "" in static mode.
  std::string KeyNs(std::string_view list) const;
  ShardDb& shard_db(uint32_t shard) { return *shards_[shard]; }
  ShardWriter& writer(uint32_t shard) { return *writers_[shard]; }
  const ShardWriter& writer(uint32_t shard) const { return *writers_[shard]; }

  // Reads a list with one range scan. A list never written is empty.
  // internal if the shard can't be read (e.g. its writer is reopening it
  // after a storage failure), or a block or a record is corrupt (logged).
  StatusOr<TodoList> Load(std::string_view list) const;

  // The id a list's next add takes, without reading its entries: max(the
  // stored counter, the highest entry id + 1), from two seeks whatever the
  // list's size (1 for a list never written). internal as for Load, or if
  // the counter or the last key is corrupt.
  StatusOr<uint64_t> LoadNextId(std::string_view list) const;

  // Any thread. The rid record of (list, rid), read with a point lookup
  // per bucket not yet due (at most three, newest first, plus the version 1
  // key while such records may exist: see common/storage_format.h) into
  // *value: true if there is one, false if not; internal as for Load.
  // When the in-memory filter (rid_filter.h) knows there is none, the disk
  // is not read.
  StatusOr<bool> ReadRid(std::string_view list, std::string_view rid, std::string* value) const;
  // The same with the pair's RidFilter::Hash (of the list's KeyNs, the
  // list and the rid), which the caller has computed.
  StatusOr<bool> ReadRid(std::string_view list, std::string_view rid, uint64_t hash,
                         std::string* value) const;
  // The same lookup (without the filter) in `db`, a shard's open DB, at
  // wall-clock now_ms: OK with *value, NotFound, or LevelDB's error. For the
  // writer thread's late replies, which hold the DB already.
  leveldb::Status GetRid(leveldb::DB* db, std::string_view ns, std::string_view list,
                         std::string_view rid, uint64_t now_ms, std::string* value) const;
  // The key of (list, rid)'s record written at now_ms, into *out.
  void RidRecordKeyTo(std::string* out, std::string_view ns, std::string_view list,
                      std::string_view rid, uint64_t now_ms) const;
  // The same with (list, rid)'s storage::RidKeyHash, computed by the caller.
  void RidRecordKeyTo(std::string* out, std::string_view ns, const storage::RidHash& hash,
                      uint64_t now_ms) const;
  // Any thread, before the write of a rid record is handed to a writer:
  // tells the filter the record (of that hash) may exist from now on.
  void NoteRid(uint64_t hash);
  // Any thread: false only if the filter knows there is no record of that
  // hash, on disk or on its way there.
  bool RidMayExist(uint64_t hash) const;
  const RidFilter& rid_filter() const { return *rid_filter_; }

  // Any thread. Wall-clock ms since the Unix epoch (StoreOptions::now_ms).
  uint64_t NowMs() const;
  std::chrono::milliseconds rid_ttl() const { return options_.rid_ttl; }

  // One expiry pass over every shard at wall-clock time `now_ms` (what the
  // sweeper thread runs every StoreOptions::rid_sweep_every): queues the
  // deletes of up to rid_sweep_max expired records per shard to the shard's
  // writer. Returns how many it queued. Not concurrent with itself (the
  // sweeper thread, or a test with the sweeper off).
  size_t SweepRids(uint64_t now_ms);
  // True while a pass's deletes are queued or being written (tests wait).
  bool SweepInFlight() const;
  // Thread-safe: reads of shard `shard` that failed on damage so far.
  uint64_t read_failures(uint32_t shard) const {
    return read_failures_[shard].load(std::memory_order_relaxed);
  }

  // Writes everything queued and stops the writers. Idempotent.
  void Stop();

 private:
  Store() = default;

  // The internal error for a failed read of `list` in shard `index`
  // (`what`: why), logged; `leveldb_error`: LevelDB's own (a checksum, an
  // unreadable table), so the shard's tables are checked for the file.
  // Open: fills rid_extra_buckets_ and legacy_rids_ (static mode: a seek
  // per bucket on disk; see there).
  void FindRidBuckets();
  Status ReadFailure(uint32_t index, std::string_view list, const std::string& what,
                     bool leveldb_error) const;

  StoreOptions options_;
  uint64_t rid_ttl_ms_ = 1;
  // Rid buckets found at open that are not on the current TTL's grid (the
  // TTL changed, or the clock stepped back): looked up too until due.
  // Written by Open only.
  std::vector<uint64_t> rid_extra_buckets_;
  // True while version 1 rid records may exist (static mode: found at open,
  // cleared by the sweeper once the old index is empty; replicated mode:
  // always, as a primary may still write them).
  std::atomic<bool> legacy_rids_{false};
  uint32_t partitions_ = 0;
  std::string data_id_;
  int lock_fd_ = -1;
  std::unique_ptr<leveldb::Env> env_;  // LogEnv over the default Env, unless StoreOptions::env
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::vector<std::unique_ptr<ShardDb>> shards_;
  std::vector<std::unique_ptr<ShardWriter>> writers_;
  std::unique_ptr<RidFilter> rid_filter_;
  std::unique_ptr<RidSweeper> sweeper_;      // after the writers: stopped and destroyed first
  std::unique_ptr<TableCheck> table_check_;  // uses env_ (destroyed after it)
  // Failed reads per shard (for the log's rate limit).
  mutable std::unique_ptr<std::atomic<uint64_t>[]> read_failures_;
};

}  // namespace todo::store
