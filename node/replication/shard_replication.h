// ShardReplication: the replicated mode's half of a shard writer. It runs
// on the writer's thread only, between and around its group commits, and
// owns every replication decision for the partitions of its shard (p %
// shards == shard): as primary, one cluster::PrimaryPartition each (sequence
// numbers, sessions with backups, what may be acknowledged); as backup, one
// cluster::BackupPartition each (what it accepts). The pure state machines
// decide; this class does their disk and socket work.
//
// One writer iteration:
//  1. HandleEvents: maps (roles change: a partition becomes ours to serve,
//     or stops being ours: its writes waiting for acknowledgements answer
//     `timeout`), backups' answers (state, ack: may complete held writes),
//     primaries' streams (records and snapshot chunks to apply: added to
//     the group).
//  2. Tick: timers (probes, lag), and the next snapshot chunks within the
//     catch-up rate.
//  3. Sequence: client writes get their partition's next sequence number
//     (or are refused: not primary under the term they were admitted in,
//     fenced, too few in sync), their records are queued for every backup
//     session, and each partition's meta key (epoch, seq) joins the group.
//  4. Flush: the records go to the ReplIo thread *before* the local write,
//     so the backups' fsyncs overlap ours (pipelining).
//  5. The writer writes the group with sync.
//  6. AfterCommit: local durability; writes whose records every required
//     backup has acknowledged complete; backups acknowledge what they
//     applied (and answer probes with their now durable position).
// The writes that 1-3 completed (acknowledged by the backups, refused, timed
// out) are answered by the writer before 5, the rest after 6.
// A client write is "held" from 3 until it is committed (PrimaryPartition::
// committed) or fails; it keeps its writer slot meanwhile, so the writer
// queue bounds held writes too.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster/controller.h"
#include "common/cluster/replication.h"
#include "common/status.h"
#include "common/storage_format.h"
#include "node/replication/partition_table.h"
#include "node/replication/repl_io.h"
#include "node/replication/shard_inbox.h"
#include "node/store/group.h"
#include "node/store/shard_writer.h"

namespace todo::store {
class RidFilter;
}  // namespace todo::store

namespace todo::node {

struct ReplOptions {
  int64_t repl_timeout_ms = 1000;  // --repl-timeout-ms
  int64_t probe_retry_ms = 500;
  int64_t hold_limit_ms = 10000;        // a held write older than this answers `timeout`
  size_t chunk_bytes = 64 << 10;        // snapshot chunk size
  size_t window_bytes = 4 << 20;        // snapshot bytes queued to a peer at most
  double catchup_bytes_per_sec = 64e6;  // per node (--catchup-rate-mb), shared by the shards
  size_t retained_bytes = 4 << 20;      // per partition, records kept for resends at most
  // Per node (--retained-mb), each shard an equal share: past it, the
  // partitions that retain the most are cut first (oldest records first)
  // down to a common level.
  size_t retained_total_bytes = size_t{256} << 20;
  // Snapshots received at once, per node (--max-incoming-snapshots), each
  // shard an equal share (at least 1).
  size_t max_incoming_snapshots = 2;
};

// Shared by every shard of the node; set up before the writers start.
struct ReplContext {
  std::string self;
  uint32_t partitions = 0;
  uint32_t shards = 0;
  PartitionTable* table = nullptr;
  ReplIo* io = nullptr;
  ReplOptions options;
  // The store's rid filter (node/store/rid_filter.h), set by Store::Open:
  // every rid record a backup writes (records and snapshot chunks from its
  // primary) is inserted, so the filter can be trusted here too.
  store::RidFilter* rid_filter = nullptr;
};

// Per-partition figures for `stats`, /metrics and status (copied out under
// a lock at each tick).
struct PartitionStats {
  uint32_t partition = 0;
  std::string role;    // "primary", "backup", or "none"
  uint64_t epoch = 0;  // the partition's epoch in the last map applied
  uint64_t leader_epoch = 0;
  uint64_t seq = 0;        // last sequenced (primary) or applied (backup)
  uint64_t committed = 0;  // primary
  bool complete = true;
  struct Backup {
    std::string name;
    std::string mode;  // probing, snapshot, tail, idle
    bool in_sync = false;
    uint64_t acked = 0;
    uint64_t lag = 0;  // records behind
  };
  std::vector<Backup> backups;
};

class ShardReplication {
 public:
  // `stats` (optional, the writer's; must outlive this): the rid records
  // that records from a primary write (rid_written) and drop (rid_expired)
  // on this backup are counted there.
  ShardReplication(const ReplContext* ctx, uint32_t shard, store::ShardDb* db,
                   store::WriterStats* stats = nullptr);
  ~ShardReplication();

  ShardInbox& inbox() { return inbox_; }

  using Clock = std::chrono::steady_clock;
  // A write that leaves this class: done, with this error if not OK
  // (invalidate: the owner applied it in memory and must reload).
  struct Done {
    store::WriteOp op;
    Status error;
    bool invalidate = false;
  };

  // 1-2. Writer thread. Applies what the inbox holds and what the timers
  // ask; adds backup data to `group`; writes that completed go to *done.
  void HandleEvents(std::vector<ReplEvent>& events, Clock::time_point now, store::Group* group,
                    std::vector<Done>* done);
  void Tick(Clock::time_point now, store::Group* group, std::vector<Done>* done);
  // 3. Takes the client ops (moved from): refused ones go to *done, the
  // others join the group and are held until committed.
  void Sequence(std::vector<store::WriteOp>& ops, Clock::time_point now, store::Group* group,
                std::vector<Done>* done);
  // 4. Hands the records of this group to the ReplIo thread.
  void Flush();
  // 6. After the group was written and synced: `ops` are the ones given
  // to Sequence (those it held are moved from).
  void AfterCommit(std::vector<store::WriteOp>& ops, Clock::time_point now,
                   std::vector<Done>* done);
  // The writer is stopping: every held write answers `timeout`.
  void Stop(std::vector<Done>* done);
  // When Tick next wants to run.
  Clock::time_point NextTick() const { return next_tick_; }
  // 5. The group's commit value: the partition meta journal goes after the
  // counter (storage_format.h), in every group. meta_changed(): this
  // iteration changed a meta, so the group must be written even if it
  // holds nothing else.
  void AppendMetaJournal(std::string* commit_value) const;
  bool meta_changed() const { return meta_changed_; }

  // Any thread: the reports for the controller (changed() once per change),
  // and per-partition figures.
  std::vector<cluster::ReplicaReport> reports() const;
  uint64_t reports_version() const { return reports_version_.load(std::memory_order_acquire); }
  std::vector<PartitionStats> stats() const;

 private:
  // What Sequence decided for each op of the iteration: held at (p, seq),
  // with its refusal if it waits only to keep its list's order.
  struct Sequenced {
    uint32_t p = UINT32_MAX;  // UINT32_MAX: already answered
    uint64_t seq = 0;
    Status refusal;
    bool invalidate = false;
  };
  struct Snapshot {
    uint64_t session = 0;
    std::string cursor;  // the next chunk starts here
    bool first = true;
  };
  struct Primary;
  struct Backup;

  void ApplyMap(const MapSnapshot& snap, Clock::time_point now, std::vector<Done>* done);
  void BecomePrimary(uint32_t p, const cluster::Partition& part, Clock::time_point now,
                     std::vector<Done>* done);
  void EndPrimary(uint32_t p, const char* why, std::vector<Done>* done);
  // Follows the map's hand-off of p's primary role (starts or calls off
  // the drain).
  void SetHandoff(uint32_t p, Primary& pr, const cluster::Partition& part);
  Backup* EnsureBackup(uint32_t p);
  // p's meta from now on: into the journal (its key is written at the next
  // checkpoint); WriteMetaKeys writes every journaled meta to its key in
  // `group` and empties the journal.
  void PutMeta(uint32_t p, const storage::PartitionMeta& m);
  void WriteMetaKeys(store::Group* group);
  // The journal of the shard's last commit (at start).
  void LoadMetaJournal();

  void FromBackup(const std::string& peer, const cluster::ReplMessage& m, Clock::time_point now,
                  std::vector<Done>* done);
  void FromPrimary(const std::string& peer, const cluster::ReplMessage& m, store::Group* group);
  void AnswerState(uint32_t p, const std::string& peer, uint64_t session, bool refused);
  // A key a backup puts in partition p (`prefix`): if it is a rid record's
  // (either layout), into the filter; true if it is a version 2 record's.
  bool NoteRidPut(const std::string& prefix, std::string_view key);

  // Carries out what a PrimaryPartition asked for.
  void Execute(uint32_t p, Primary& pr, cluster::PrimaryPartition::Outbox& out,
               Clock::time_point now);
  // Sends the next chunks of p's snapshots (within the rate and window).
  void SendChunks(uint32_t p, Primary& pr, Clock::time_point now);
  bool SendChunk(uint32_t p, Primary& pr, const std::string& replica, Snapshot& snap,
                 Clock::time_point now);
  void Complete(uint32_t p, Primary& pr, Clock::time_point now, std::vector<Done>* done);
  // The map's --min-insync K (1 before a map): fewer in-sync copies refuse
  // writes, and the retries a rid record would answer.
  uint32_t MinInsync() const { return map_ ? map_->map->min_insync : 1; }
  // Drops the records no session needs, then the oldest past `cap` bytes.
  void TrimLog(uint32_t p, Primary& pr, Clock::time_point now, size_t cap);
  // Keeps the shard's records within its share of the node's budget.
  void TrimToBudget(Clock::time_point now);
  void PublishReports();
  // Deletes (a bounded batch a tick) the copies of partitions this node no
  // longer holds.
  void DropSome(store::Group* group);

  int64_t Ms(Clock::time_point t) const;
  std::string& Out(const std::string& peer, ReplIo::Via via);

  const ReplContext* const ctx_;
  const uint32_t shard_;
  store::ShardDb* const db_;
  store::WriterStats* const writer_stats_;
  ShardInbox inbox_;
  const Clock::time_point epoch_zero_;
  Clock::time_point next_tick_{};
  double chunk_tokens_ = 0;
  Clock::time_point tokens_at_{};

  std::map<uint32_t, std::unique_ptr<Primary>> primaries_;
  std::map<uint32_t, std::unique_ptr<Backup>> backups_;
  // Partitions whose copy is being dropped (no longer held), with the key
  // the next batch starts at.
  std::map<uint32_t, std::string> drops_;
  std::vector<bool> held_;     // by partition: ours in the last map applied
  bool held_checked_ = false;  // every partition looked at once for leftovers
  std::shared_ptr<const MapSnapshot> map_;

  // This iteration: the client ops sequenced (held after the commit), the
  // partitions whose meta key the group writes, and the frames to send.
  std::vector<Sequenced> sequenced_;
  std::vector<uint32_t> touched_;  // partitions with records in this group
  std::map<std::pair<std::string, ReplIo::Via>, std::string> out_;
  std::vector<uint32_t> backup_dirty_;  // partitions whose backups applied something

  // The partition meta journal: the metas newer than their keys, by
  // partition. Bounded by the shard's partitions; written to their keys
  // every kMetaCheckpointEvery.
  std::map<uint32_t, storage::PartitionMeta> journal_;
  bool meta_changed_ = false;     // this iteration
  bool journal_damaged_ = false;  // unreadable at start: every copy incomplete
  Clock::time_point next_checkpoint_{};
  std::vector<std::tuple<uint32_t, std::string, uint64_t, bool>> state_answers_;

  mutable std::mutex published_mu_;
  std::vector<cluster::ReplicaReport> reports_;  // guarded by published_mu_
  std::vector<PartitionStats> stats_;            // guarded by published_mu_
  std::atomic<uint64_t> reports_version_{0};
};

}  // namespace todo::node
