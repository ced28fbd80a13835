// Store: the book's Todo.Database. A node's lists live in N LevelDB shards
// under one data dir; a list belongs to shard ShardOf(name) and its writes go
// through that shard's ShardWriter (the database worker).
//
// Data dir layout:
//   DIR/LOCK          flock()ed while a node uses the dir (two nodes never share it)
//   DIR/MANIFEST      "format 1", "shards N" (common/storage_format.h); a
//                     replicated dir: "format 2", and its cluster, node,
//                     partition count and data id
//   DIR/shard-NNN/    one LevelDB database per shard
// Opening checks the manifest against the options and refuses a mismatch:
// a static-mode dir (format 1) is never opened by a replicated node or the
// other way round, and a replicated dir only by the node and cluster named
// in it. In a replicated dir every key is prefixed with its partition
// (storage_format.h) and a partition lives in shard partition % shards.
// Thread-safety: Load() may be called from any thread (LevelDB reads are
// thread-safe, and a shard being reopened by its writer is held under a
// shared lock); writers are thread-safe; Open/Stop from one thread.
#pragma once

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>

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
  // Bloom filter bits per key in new tables (0: none). Lets a lookup of a rid
  // that has no record (every first write with a rid) skip the tables that
  // can't hold it; ~1% false positives at 10 bits.
  int bloom_bits_per_key = 10;
  // Rid records (common/storage_format.h) are kept at least this long, then
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
  // Locks the dir, checks or writes the manifest, opens every shard and
  // starts the writers. Errors name the dir and what is wrong.
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
  // The prefix of every key of `list`: its partition's in a replicated dir,
  // "" in static mode.
  std::string KeyNs(std::string_view list) const;
  ShardDb& shard_db(uint32_t shard) { return *shards_[shard]; }
  // Replicated mode: what this dir holds of partition p (its meta key; the
  // default, an empty complete copy, if none).
  StatusOr<storage::PartitionMeta> ReadPartitionMeta(uint32_t p) const;
  ShardWriter& writer(uint32_t shard) { return *writers_[shard]; }
  const ShardWriter& writer(uint32_t shard) const { return *writers_[shard]; }

  // Reads a list with one range scan. A list never written is empty.
  // internal if the shard can't be read (e.g. its writer is reopening it
  // after a storage failure) or a record is corrupt.
  StatusOr<TodoList> Load(std::string_view list) const;

  // The id a list's next add takes, without reading its entries: max(the
  // stored counter, the highest entry id + 1), from two seeks whatever the
  // list's size (1 for a list never written). internal as for Load, or if
  // the counter or the last key is corrupt.
  StatusOr<uint64_t> LoadNextId(std::string_view list) const;

  // Any thread. The rid record of (list, rid), read with one point lookup
  // into *value: true if there is one, false if not; internal as for Load.
  // When the in-memory filter (rid_filter.h) knows there is none, the disk
  // is not read.
  StatusOr<bool> ReadRid(std::string_view list, std::string_view rid, std::string* value) const;
  // The same with the pair's RidFilter::Hash (of the list's KeyNs, the
  // list and the rid), which the caller has computed.
  StatusOr<bool> ReadRid(std::string_view list, std::string_view rid, uint64_t hash,
                         std::string* value) const;
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

  // Writes everything queued and stops the writers. Idempotent.
  void Stop();

 private:
  Store() = default;

  StoreOptions options_;
  uint32_t partitions_ = 0;
  std::string data_id_;
  int lock_fd_ = -1;
  std::unique_ptr<leveldb::Env> env_;  // PreadEnv over the default Env, unless StoreOptions::env
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::vector<std::unique_ptr<ShardDb>> shards_;
  std::vector<std::unique_ptr<ShardWriter>> writers_;
  std::unique_ptr<RidFilter> rid_filter_;
  std::unique_ptr<RidSweeper> sweeper_;  // after the writers: stopped and destroyed first
};

}  // namespace todo::store
