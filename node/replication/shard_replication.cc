#include "node/replication/shard_replication.h"

#include <leveldb/db.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <msgpack/sbuffer.hpp>

#include "common/protocol.h"
#include "node/store/mutations.h"
#include "node/store/rid_filter.h"

namespace todo::node {

using cluster::PrimaryPartition;
using cluster::ReplMessage;
using cluster::ReplType;
using store::WriteOp;

namespace {

constexpr std::chrono::milliseconds kTickEvery(20);
// How often the journaled partition metas are written to their own keys.
constexpr std::chrono::milliseconds kMetaCheckpointEvery(1000);
constexpr int kChunksPerTick = 8;  // at most, per snapshot and tick

std::string Pfx(uint32_t p) { return "partition " + std::to_string(p) + ": "; }

const char* ModeName(PrimaryPartition::Mode m) {
  switch (m) {
    case PrimaryPartition::Mode::kProbing:
      return "probing";
    case PrimaryPartition::Mode::kSnapshot:
      return "snapshot";
    case PrimaryPartition::Mode::kTail:
      return "tail";
    case PrimaryPartition::Mode::kIdle:
      return "idle";
  }
  return "?";
}

// True if `key` lies in partition p's range and is not its meta key.
bool InPartition(std::string_view key, const std::string& prefix, const std::string& end) {
  return key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix &&
         (end.empty() || key < std::string_view(end));
}

}  // namespace

struct ShardReplication::Primary {
  explicit Primary(PrimaryPartition sm_) : sm(std::move(sm_)) {}
  PrimaryPartition sm;
  // Handing the primary role off to this in-sync backup (the map's
  // `handoff`): nothing new is taken; once everything in flight is
  // committed, a `drained` report lets the controller switch.
  std::string handing_off_to;
  struct HeldOp {
    uint64_t seq;
    int64_t at_ms;
    WriteOp op;
    Status error;  // not OK: answered with it when its turn comes
    bool invalidate = false;
  };
  std::deque<HeldOp> held;
  // Records kept for resends: (seq, bytes), oldest first.
  std::deque<std::pair<uint64_t, std::string>> log;
  size_t log_bytes = 0;
  std::map<std::string, Snapshot> snaps;  // replica -> snapshot in progress
  // This group's records: first seq and views (into the client ops).
  uint64_t group_first = 0;
  std::vector<std::string_view> group_records;
};

struct ShardReplication::Backup {
  explicit Backup(cluster::BackupPartition sm_) : sm(std::move(sm_)) {}
  cluster::BackupPartition sm;
  std::string expected_from;  // a snapshot's next chunk starts here
};

ShardReplication::ShardReplication(const ReplContext* ctx, uint32_t shard, store::ShardDb* db,
                                   store::WriterStats* stats)
    : ctx_(ctx), shard_(shard), db_(db), writer_stats_(stats), epoch_zero_(Clock::now()) {
  LoadMetaJournal();
}

ShardReplication::~ShardReplication() = default;

int64_t ShardReplication::Ms(Clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - epoch_zero_).count();
}

std::string& ShardReplication::Out(const std::string& peer, ReplIo::Via via) {
  return out_[{peer, via}];
}

namespace {
// Appends an encoded message to a frame being built. The encoding buffer is
// the writer thread's, reused (a fresh sbuffer mallocs 8 KiB per message);
// one that grew past 1 MiB (a big resend) is given back.
template <typename F>
void Add(std::string& frame, F&& encode) {
  thread_local msgpack::sbuffer b;
  b.clear();
  encode(b);
  frame.append(b.data(), b.size());
  if (b.size() > (1 << 20)) std::free(b.release());
}
}  // namespace

// --- Maps and roles ---

void ShardReplication::HandleEvents(std::vector<ReplEvent>& events, Clock::time_point now,
                                    store::Group* group, std::vector<Done>* done) {
  meta_changed_ = false;
  backup_dirty_.clear();
  for (ReplEvent& e : events) {
    if (e.map) {
      ApplyMap(*e.map, now, done);
      continue;
    }
    for (const ReplMessage& m : e.msgs) {
      if (e.from_backup) {
        FromBackup(e.peer, m, now, done);
      } else {
        FromPrimary(e.peer, m, group);
      }
    }
    if (!e.from_backup && !e.msgs.empty()) group->Keep(e.frame);
  }
  // What the backups accepted is written with their position, atomically.
  std::sort(backup_dirty_.begin(), backup_dirty_.end());
  backup_dirty_.erase(std::unique(backup_dirty_.begin(), backup_dirty_.end()), backup_dirty_.end());
  for (uint32_t p : backup_dirty_) {
    auto it = backups_.find(p);
    if (it == backups_.end()) continue;
    const auto& st = it->second->sm.state();
    PutMeta(p,
            storage::PartitionMeta{st.leader_epoch, st.applied.epoch, st.applied.seq, st.complete});
  }
}

void ShardReplication::ApplyMap(const MapSnapshot& snap, Clock::time_point now,
                                std::vector<Done>* done) {
  map_ = std::make_shared<MapSnapshot>(snap);
  const cluster::ClusterMap& map = *snap.map;
  if (map.partitions != ctx_->partitions) {
    spdlog::error("map has {} partitions, this node {}: ignored", map.partitions, ctx_->partitions);
    return;
  }
  if (held_.size() != map.partitions) held_.assign(map.partitions, false);
  for (uint32_t p = shard_; p < map.partitions; p += ctx_->shards) {
    const cluster::Partition& part = map.parts[p];
    const bool primary = snap.data_ok && part.primary() == ctx_->self && part.IsInSync(ctx_->self);
    const bool backup = snap.data_ok && !primary && part.HasReplica(ctx_->self);
    auto pr = primaries_.find(p);
    if (primary) {
      if (pr != primaries_.end() && pr->second->sm.leader_epoch() == part.leader_epoch) {
        PrimaryPartition::Outbox out;
        pr->second->sm.SetMap(part.epoch, part, Ms(now), &out);
        Execute(p, *pr->second, out, now);
        Complete(p, *pr->second, now, done);
      } else {
        if (pr != primaries_.end()) EndPrimary(p, "a new term began", done);
        BecomePrimary(p, part, now, done);
        pr = primaries_.find(p);
      }
      if (pr != primaries_.end()) SetHandoff(p, *pr->second, part);
      continue;
    }
    if (pr != primaries_.end()) {
      EndPrimary(p, backup ? "it is now a backup" : "it no longer holds the partition", done);
    }
    if (backup) {
      drops_.erase(p);
      EnsureBackup(p)->sm.RaiseLeaderEpoch(part.leader_epoch);
    } else {
      backups_.erase(p);
      // Not ours any more: drop the copy, if there is one. Looked for when
      // the partition stops being ours, and once for all at the first map
      // (what an earlier run left): not at every map, as a look costs a
      // LevelDB iterator.
      const bool look = !held_checked_ || held_[p];
      if (snap.may_drop && look && !drops_.contains(p)) {
        std::unique_ptr<leveldb::Iterator> it(db_->db->NewIterator(leveldb::ReadOptions()));
        const std::string prefix = storage::PartitionPrefix(p);
        const std::string end = storage::PartitionRangeEnd(p);
        it->Seek(prefix);
        if ((it->Valid() && (end.empty() || it->key().ToString() < end)) || journal_.contains(p)) {
          drops_[p] = prefix;
        }
      }
    }
    if (primary || backup) drops_.erase(p);
    // A partition counts as held while the map gives it to us; one we
    // could not drop yet (not may_drop) stays marked so it is looked at
    // again.
    held_[p] = primary || backup || !snap.may_drop;
  }
  if (snap.may_drop) held_checked_ = true;
}

void ShardReplication::DropSome(store::Group* group) {
  // Keys deleted per tick (50 a second), all partitions of the shard: a
  // dropped copy goes at ~10,000 keys a second, in the background.
  constexpr size_t kDropBatch = 200;
  size_t budget = kDropBatch;
  for (auto it = drops_.begin(); it != drops_.end() && budget > 0;) {
    const uint32_t p = it->first;
    const std::string prefix = storage::PartitionPrefix(p);
    const std::string end = storage::PartitionRangeEnd(p);
    if (it->second == prefix) {
      // First batch: the copy is marked incomplete at once, so a copy half
      // dropped is never taken for one (if p comes back to this node, it
      // catches up by snapshot).
      storage::PartitionMeta meta;
      meta.complete = false;
      PutMeta(p, meta);
      spdlog::info("{}no longer held here: dropping this node's copy", Pfx(p));
    }
    std::unique_ptr<leveldb::Iterator> keys(db_->db->NewIterator(leveldb::ReadOptions()));
    size_t n = 0;
    std::string next;
    for (keys->Seek(it->second); keys->Valid(); keys->Next()) {
      std::string_view k(keys->key().data(), keys->key().size());
      if (!end.empty() && k >= std::string_view(end)) break;
      if (k == prefix) continue;  // the meta, deleted last
      if (n == budget) {
        next = std::string(k);
        break;
      }
      group->Delete(group->Own(std::string(k)));
      ++n;
    }
    budget -= n;
    if (next.empty()) {
      group->Delete(group->Own(prefix));  // all gone: as if never held
      journal_.erase(p);
      meta_changed_ = true;
      it = drops_.erase(it);
    } else {
      it->second = std::move(next);
      ++it;
    }
  }
}

void ShardReplication::SetHandoff(uint32_t p, Primary& pr, const cluster::Partition& part) {
  const std::string to = part.IsInSync(part.handoff) ? part.handoff : std::string();
  if (to == pr.handing_off_to) return;
  pr.handing_off_to = to;
  if (!to.empty()) {
    // Requests are refused from now on ("not primary": a router waits for
    // the switch and sends them to the new primary).
    ctx_->table->set_serving(p, 0);
    spdlog::info("{}handing off to '{}': draining {} writes in flight", Pfx(p), to, pr.held.size());
  } else {
    ctx_->table->set_serving(p, pr.sm.leader_epoch());
    spdlog::info("{}hand-off called off; serving again", Pfx(p));
  }
}

// --- The partition meta journal (storage_format.h) ---

void ShardReplication::PutMeta(uint32_t p, const storage::PartitionMeta& m) {
  journal_[p] = m;
  meta_changed_ = true;
}

void ShardReplication::WriteMetaKeys(store::Group* group) {
  if (journal_.empty()) return;
  for (const auto& [p, m] : journal_) {
    group->Put(group->Own(storage::PartitionPrefix(p)),
               group->Own(storage::EncodePartitionMeta(m)));
  }
  journal_.clear();
  meta_changed_ = true;  // the commit value loses its journal
}

void ShardReplication::AppendMetaJournal(std::string* commit_value) const {
  if (journal_.empty()) return;
  storage::BeginMetaJournal(commit_value, journal_.size());
  for (const auto& [p, m] : journal_) storage::AppendJournaledMeta(commit_value, p, m);
}

void ShardReplication::LoadMetaJournal() {
  if (db_ == nullptr || db_->db == nullptr) return;
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string value;
  leveldb::Status s = db_->db->Get(ro, storage::CommitKey(), &value);
  if (s.IsNotFound()) return;  // a new shard
  StatusOr<std::vector<storage::JournaledMeta>> journal =
      s.ok() ? storage::DecodeMetaJournal(value) : Status::Internal(s.ToString());
  if (!journal.ok()) {
    // Which metas are newer than their keys is lost: no copy of this shard
    // is trusted; each is rebuilt by snapshot when the map needs it.
    spdlog::error(
        "shard {}: its partition meta journal is unreadable ({}); every copy it holds counts "
        "as incomplete and will be replaced",
        shard_, journal.status().message());
    journal_damaged_ = true;
    return;
  }
  for (const auto& e : *journal) journal_[e.partition] = e.meta;
}

ShardReplication::Backup* ShardReplication::EnsureBackup(uint32_t p) {
  auto it = backups_.find(p);
  if (it != backups_.end()) return it->second.get();
  storage::PartitionMeta meta;
  std::string value;
  leveldb::Status s = leveldb::Status::NotFound("");
  if (auto j = journal_.find(p); j != journal_.end()) {
    meta = j->second;  // newer than its key
  } else if (journal_damaged_) {
    meta.complete = false;  // its key may be behind its records: rebuilt
  } else {
    s = db_->db->Get(leveldb::ReadOptions(), storage::PartitionPrefix(p), &value);
  }
  if (s.ok()) {
    auto m = storage::DecodePartitionMeta(value);
    if (m.ok()) {
      meta = *m;
    } else {
      // Unreadable: treat the copy as incomplete, so it is rebuilt.
      spdlog::error("{}stored meta is malformed; the copy will be replaced", Pfx(p));
      meta.complete = false;
    }
  }
  cluster::BackupPartition::State st{
      meta.leader_epoch, cluster::Position{meta.applied_epoch, meta.applied_seq}, meta.complete};
  auto b = std::make_unique<Backup>(cluster::BackupPartition(p, st));
  Backup* raw = b.get();
  backups_[p] = std::move(b);
  return raw;
}

void ShardReplication::BecomePrimary(uint32_t p, const cluster::Partition& part,
                                     Clock::time_point now, std::vector<Done>* done) {
  Backup* b = EnsureBackup(p);
  const auto st = b->sm.state();
  if (part.leader_epoch < st.leader_epoch || part.leader_epoch < st.applied.epoch) {
    // Leader epochs only grow. This copy has seen a later term than the one
    // the map gives this node: the map is older than the cluster (etcd
    // restored from an old backup, an old value put back) and serving under
    // it would hand out what this copy held as if current, ids included.
    spdlog::error(
        "{}the map makes this node primary at leader epoch {}, but this copy has seen leader "
        "epoch {} (its last record: epoch {}, seq {}): the map is older than the cluster; not "
        "serving it",
        Pfx(p), part.leader_epoch, st.leader_epoch, st.applied.epoch, st.applied.seq);
    return;
  }
  if (!st.complete) {
    spdlog::error(
        "{}the map makes this node primary (leader epoch {}) but its copy is incomplete (a "
        "snapshot was cut short); not serving it",
        Pfx(p), part.leader_epoch);
    return;
  }
  PrimaryPartition::Options o{ctx_->options.repl_timeout_ms, ctx_->options.probe_retry_ms};
  auto pr =
      std::make_unique<Primary>(PrimaryPartition(p, ctx_->self, part.leader_epoch, st.applied, o));
  PrimaryPartition::Outbox out;
  pr->sm.SetMap(part.epoch, part, Ms(now), &out);
  Primary& ref = *pr;
  primaries_[p] = std::move(pr);
  backups_.erase(p);
  Execute(p, ref, out, now);
  Complete(p, ref, now, done);
  ctx_->table->set_serving(p, part.leader_epoch);
  spdlog::info("{}primary at leader epoch {} (epoch {}), from seq {}", Pfx(p), part.leader_epoch,
               part.epoch, st.applied.seq);
}

void ShardReplication::EndPrimary(uint32_t p, const char* why, std::vector<Done>* done) {
  ctx_->table->set_serving(p, 0);
  auto it = primaries_.find(p);
  if (it == primaries_.end()) return;
  Primary& pr = *it->second;
  size_t pending = 0;
  for (auto& h : pr.held) {
    if (h.error.ok() && !h.op.barrier) ++pending;
    Status s = h.error;
    if (s.ok()) {
      s = h.op.barrier
              ? Status(ErrorCode::kUnavailable, "partition " + std::to_string(p) +
                                                    " changed hands (" + why + "); not answered")
              : Status(ErrorCode::kTimeout,
                       "partition " + std::to_string(p) + " changed hands (" + why +
                           ") before this write was confirmed by its replicas; it may or may not "
                           "have been applied");
    }
    const bool invalidate = !h.op.barrier || h.invalidate;
    done->push_back(Done{std::move(h.op), s, invalidate});
  }
  spdlog::info("{}no longer primary ({}); {} writes awaiting confirmation answered timeout", Pfx(p),
               why, pending);
  primaries_.erase(it);
}

// --- Messages ---

void ShardReplication::FromBackup(const std::string& peer, const ReplMessage& m,
                                  Clock::time_point now, std::vector<Done>* done) {
  auto it = primaries_.find(m.partition);
  if (it == primaries_.end() || m.leader_epoch > it->second->sm.leader_epoch()) return;
  Primary& pr = *it->second;
  PrimaryPartition::Outbox out;
  switch (m.type) {
    case ReplType::kState:
      pr.sm.OnState(peer, m.session, cluster::Position{m.a, m.b}, m.flag1, m.flag2, Ms(now), &out);
      if (m.flag2) {
        spdlog::warn("{}backup '{}' refused our leader epoch {} (it knows {})", Pfx(m.partition),
                     peer, pr.sm.leader_epoch(), m.leader_epoch);
      }
      Execute(m.partition, pr, out, now);
      break;
    case ReplType::kAck:
      pr.sm.OnAck(peer, m.session, m.b, m.flag1, Ms(now));
      break;
    default:
      return;  // not an answer
  }
  Complete(m.partition, pr, now, done);
}

void ShardReplication::AnswerState(uint32_t p, const std::string& peer, uint64_t session,
                                   bool refused) {
  state_answers_.emplace_back(p, peer, session, refused);
}

void ShardReplication::FromPrimary(const std::string& peer, const ReplMessage& m,
                                   store::Group* group) {
  const uint32_t p = m.partition;
  auto it = backups_.find(p);
  if (it == backups_.end()) return;  // not a backup of p (by our map): the primary retries
  Backup& b = *it->second;
  using V = cluster::BackupPartition::Verdict;
  const std::string prefix = storage::PartitionPrefix(p);
  const std::string end = storage::PartitionRangeEnd(p);
  V v = V::kIgnore;
  switch (m.type) {
    case ReplType::kProbe:
      v = b.sm.OnProbe(peer, m.leader_epoch, m.session);
      AnswerState(p, peer, m.session, v != V::kAccept);
      return;
    case ReplType::kAppend: {
      if (b.sm.abandoned(peer, m.leader_epoch, m.session)) return;  // refused or broken
      // Every key of every record must be in p's range: a primary can't
      // write outside the partition it leads.
      bool ok = true;
      for (std::string_view r : m.items) {
        ok = ok && store::Mutations::ForEachIn(r, [&](bool, std::string_view k, std::string_view) {
               ok = ok && InPartition(k, prefix, end);
             });
      }
      if (!ok) {
        spdlog::error("{}records from '{}' hold keys outside the partition; refused", Pfx(p), peer);
        AnswerState(p, peer, m.session, false);
        return;
      }
      v = b.sm.OnAppend(peer, m.leader_epoch, m.session, m.b, m.items.size());
      if (v == V::kAccept) {
        uint64_t rid_puts = 0, rid_deletes = 0;
        for (std::string_view r : m.items) {
          store::Mutations::ForEachIn(r, [&](bool put, std::string_view k, std::string_view val) {
            if (put) {
              group->Put(k, val);
            } else {
              group->Delete(k);
            }
            // The primary's rid records, written and dropped (by its
            // sweeper) here as any record: into the filter, and counted
            // for `stats`.
            if (put) {
              rid_puts += NoteRidPut(prefix, k);
            } else if (storage::ParseRidRecordKey(prefix, k)) {
              ++rid_deletes;
            }
          });
        }
        if (writer_stats_ == nullptr) rid_puts = rid_deletes = 0;
        if (rid_puts > 0) writer_stats_->rid_written.fetch_add(rid_puts, std::memory_order_relaxed);
        if (rid_deletes > 0)
          writer_stats_->rid_expired.fetch_add(rid_deletes, std::memory_order_relaxed);
        backup_dirty_.push_back(p);
      }
      break;
    }
    case ReplType::kChunk: {
      // The chunks of a session whose thread is already lost (those after a
      // gap, still in flight): dropped quietly.
      if (b.sm.abandoned(peer, m.leader_epoch, m.session)) return;
      if (m.session != b.sm.session() || peer != b.sm.primary()) {
        // Not the current session: the state machine decides without
        // looking at the chunk.
        v = b.sm.OnChunk(peer, m.leader_epoch, m.session, m.flag1);
        break;
      }
      // [from, to) within p's range, keys ascending inside it.
      const std::string_view from = m.from;
      const std::string to = m.to.empty() ? end : std::string(m.to);
      bool ok = from.substr(0, std::min(from.size(), prefix.size())) == prefix &&
                from.size() >= prefix.size() && (end.empty() || to <= end) &&
                (to.empty() || std::string_view(to) > from) &&
                (m.flag1 ? from == prefix : from == b.expected_from);
      std::string_view prev;
      for (size_t i = 0; ok && i < m.items.size(); i += 2) {
        const std::string_view k = m.items[i];
        ok = InPartition(k, prefix, end) && k >= from && (to.empty() || k < std::string_view(to)) &&
             (i == 0 || k > prev);
        prev = k;
      }
      if (!ok) {
        // A gap (a connection lost with chunks in it) or a bad primary:
        // said once per session, then the snapshot starts again.
        spdlog::warn("{}a snapshot chunk from '{}' is out of order or out of range; resync", Pfx(p),
                     peer);
        b.sm.Abandon(m.session);
        AnswerState(p, peer, m.session, false);
        return;
      }
      if (m.flag1 && m.leader_epoch == b.sm.state().leader_epoch) {
        size_t receiving = 0;
        for (const auto& [q, other] : backups_) receiving += q != p && other->sm.snapshotting();
        const size_t limit = std::max<size_t>(
            1, ctx_->options.max_incoming_snapshots / std::max<uint32_t>(1, ctx_->shards));
        if (!cluster::BackupPartition::AdmitSnapshot(receiving, limit)) {
          // Busy: the primary tries again later; the rest of this session
          // (its end too) is dropped quietly.
          b.sm.Abandon(m.session);
          AnswerState(p, peer, m.session, false);
          return;
        }
      }
      v = b.sm.OnChunk(peer, m.leader_epoch, m.session, m.flag1);
      if (v != V::kAccept) break;
      // The chunk is the whole content of [from, to): what we hold there and
      // it lacks goes (our meta key aside).
      std::unique_ptr<leveldb::Iterator> local(db_->db->NewIterator(leveldb::ReadOptions()));
      size_t j = 0;
      // The rid records this chunk adds and drops, for `stats` (records).
      int64_t rid_change = 0;
      for (local->Seek(leveldb::Slice(from.data(), from.size())); local->Valid(); local->Next()) {
        std::string_view k(local->key().data(), local->key().size());
        if (!to.empty() && k >= std::string_view(to)) break;
        if (k == prefix) continue;
        while (j < m.items.size() && m.items[j] < k) j += 2;
        // Each held record goes, or is put again below (counted there).
        if (storage::ParseRidRecordKey(prefix, k)) --rid_change;
        if (j < m.items.size() && m.items[j] == k) continue;
        group->Delete(group->Own(std::string(k)));
      }
      for (size_t i = 0; i < m.items.size(); i += 2) {
        group->Put(m.items[i], m.items[i + 1]);
        rid_change += NoteRidPut(prefix, m.items[i]);
      }
      if (writer_stats_ != nullptr && rid_change != 0) {
        writer_stats_->rid_records_offset.fetch_add(rid_change, std::memory_order_relaxed);
      }
      b.expected_from = to;
      backup_dirty_.push_back(p);
      break;
    }
    case ReplType::kEnd:
      v = b.sm.OnSnapshotEnd(peer, m.leader_epoch, m.session, cluster::Position{m.a, m.b});
      if (v == V::kAccept) {
        backup_dirty_.push_back(p);
        spdlog::info("{}caught up from '{}' by snapshot at seq {}", Pfx(p), peer, m.b);
      }
      break;
    default:
      return;
  }
  if (v == V::kResync) AnswerState(p, peer, m.session, m.leader_epoch < b.sm.state().leader_epoch);
}

bool ShardReplication::NoteRidPut(const std::string& prefix, std::string_view key) {
  if (key.size() <= prefix.size() + 1) return false;
  if (key[prefix.size()] == '\x00') {
    auto parsed = storage::ParseRidRecordKey(prefix, key);
    if (!parsed) return false;
    if (ctx_->rid_filter != nullptr) ctx_->rid_filter->Insert(parsed->hash.h1);
    return true;
  }
  // Version 1: prefix | u8 len | list | 0x02 | rid.
  const size_t len = static_cast<uint8_t>(key[prefix.size()]);
  const size_t tag = prefix.size() + 1 + len;
  if (ctx_->rid_filter != nullptr && key.size() > tag + 1 && key[tag] == '\x02') {
    ctx_->rid_filter->Insert(
        store::RidFilter::Hash(prefix, key.substr(prefix.size() + 1, len), key.substr(tag + 1)));
  }
  return false;
}

// --- The primary's work ---

void ShardReplication::Execute(uint32_t p, Primary& pr, PrimaryPartition::Outbox& out,
                               Clock::time_point now) {
  const uint64_t le = pr.sm.leader_epoch();
  for (const auto& [replica, session] : out.probes) {
    Add(Out(replica, ReplIo::Via::kDealer),
        [&](msgpack::sbuffer& b) { cluster::EncodeProbe(b, p, le, session); });
  }
  for (const std::string& replica : out.cancelled) pr.snaps.erase(replica);
  for (const auto& [replica, from] : out.tails) {
    uint64_t session = 0;
    for (const auto& s : pr.sm.sessions()) {
      if (s.replica == replica) session = s.id;
    }
    // Resend what it lacks from the retained records.
    std::vector<std::string_view> recs;
    uint64_t first = 0;
    for (const auto& [seq, bytes] : pr.log) {
      if (seq < from) continue;
      if (recs.empty()) first = seq;
      recs.push_back(bytes);
    }
    if (!recs.empty()) {
      Add(Out(replica, ReplIo::Via::kDealer), [&](msgpack::sbuffer& b) {
        cluster::BeginAppend(b, p, le, session, first, static_cast<uint32_t>(recs.size()));
        for (std::string_view r : recs) cluster::AppendRecord(b, r);
      });
    }
  }
  for (const std::string& replica : out.snapshots) {
    uint64_t session = 0;
    for (const auto& s : pr.sm.sessions()) {
      if (s.replica == replica) session = s.id;
    }
    Snapshot& snap = pr.snaps[replica];
    snap = Snapshot{session, storage::PartitionPrefix(p), true};
    spdlog::info("{}catching up '{}' by snapshot (session {})", Pfx(p), replica, session);
    // The first chunk goes at once: the backup learns the session is a
    // snapshot before any record of it.
    SendChunk(p, pr, replica, snap, now);
  }
}

bool ShardReplication::SendChunk(uint32_t p, Primary& pr, const std::string& replica,
                                 Snapshot& snap, Clock::time_point now) {
  const std::string prefix = storage::PartitionPrefix(p);
  const std::string end = storage::PartitionRangeEnd(p);
  std::unique_ptr<leveldb::Iterator> it(db_->db->NewIterator(leveldb::ReadOptions()));
  std::vector<std::pair<std::string, std::string>> kvs;
  size_t bytes = 0;
  bool at_end = true;
  // Rid records due now are dropped for the clients already (lookups never
  // read a due bucket; the partition's sweeper deletes them soon): a
  // snapshot carries only live ones, and the backup drops the due ones it
  // has in the chunk's range as it drops any key the chunk lacks.
  const std::string rids_due = storage::RidRecordSeekKey(
      prefix, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()) +
                  1);
  const std::string rids_begin = storage::RidRecordRangeBegin(prefix);
  for (it->Seek(snap.cursor); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (!end.empty() && k >= std::string_view(end)) break;
    if (k == prefix) continue;  // the meta key: each replica writes its own
    if (k >= std::string_view(rids_begin) && k < std::string_view(rids_due)) continue;
    if (bytes >= ctx_->options.chunk_bytes) {
      at_end = false;
      break;
    }
    kvs.emplace_back(std::string(k), it->value().ToString());
    bytes += k.size() + it->value().size();
  }
  if (!it->status().ok()) {
    spdlog::error("{}snapshot read failed: {}", Pfx(p), it->status().ToString());
    return false;
  }
  std::string to;
  if (!at_end) {
    to = kvs.back().first;
    to.push_back('\0');  // the next key after the last one sent
  }
  const uint64_t le = pr.sm.leader_epoch();
  Add(Out(replica, ReplIo::Via::kDealer), [&](msgpack::sbuffer& b) {
    cluster::BeginChunk(b, p, le, snap.session, snap.first, snap.cursor, to,
                        static_cast<uint32_t>(kvs.size()));
    for (const auto& [k, v] : kvs) {
      cluster::AppendRecord(b, k);
      cluster::AppendRecord(b, v);
    }
  });
  snap.first = false;
  if (!at_end) {
    snap.cursor = std::move(to);
    return true;
  }
  const cluster::Position last = pr.sm.last();
  Add(Out(replica, ReplIo::Via::kDealer), [&](msgpack::sbuffer& b) {
    cluster::EncodeEnd(b, p, le, snap.session, last.epoch, last.seq);
  });
  pr.sm.OnSnapshotEnd(replica, snap.session, last.seq, Ms(now));
  spdlog::info("{}snapshot to '{}' sent, up to seq {}", Pfx(p), replica, last.seq);
  snap.cursor.clear();
  return true;
}

void ShardReplication::SendChunks(uint32_t p, Primary& pr, Clock::time_point now) {
  for (auto it = pr.snaps.begin(); it != pr.snaps.end();) {
    Snapshot& snap = it->second;
    for (int i = 0; i < kChunksPerTick && !snap.cursor.empty(); ++i) {
      if (chunk_tokens_ < static_cast<double>(ctx_->options.chunk_bytes)) {
        // Held back by our own rate, not the backup's fault: its stall
        // clock waits (PrimaryPartition::OnSnapshotHeld).
        pr.sm.OnSnapshotHeld(it->first, snap.session, Ms(now));
        break;
      }
      if (ctx_->io->queued_bytes(it->first) + Out(it->first, ReplIo::Via::kDealer).size() >
          ctx_->options.window_bytes) {
        break;
      }
      chunk_tokens_ -= static_cast<double>(ctx_->options.chunk_bytes);
      if (!SendChunk(p, pr, it->first, snap, now)) break;
    }
    if (snap.cursor.empty()) {
      it = pr.snaps.erase(it);
    } else {
      ++it;
    }
  }
}

namespace {

// The refusal of a write, or of a retry answered from its rid record, while
// p has fewer than --min-insync replicas in sync.
Status BelowMinInsync(uint32_t p, size_t in_sync, uint32_t k) {
  return Status(ErrorCode::kUnavailable, "partition " + std::to_string(p) + " has " +
                                             std::to_string(in_sync) +
                                             " in-sync replicas, fewer than --min-insync " +
                                             std::to_string(k) + "; the write was not applied");
}

}  // namespace

void ShardReplication::Complete(uint32_t p, Primary& pr, Clock::time_point now,
                                std::vector<Done>* done) {
  const uint64_t c = pr.sm.committed();
  const bool lease = ctx_->table->lease_valid(now);
  // --min-insync K: a write is acknowledged only on K in-sync copies. One
  // that waited on a backup the map then took out of sync, leaving fewer
  // than K, is on fewer copies than promised: its outcome is unknown to the
  // client (replication.md), so `timeout`, never a success.
  const uint32_t k = MinInsync();
  const bool enough = pr.sm.in_sync_count() >= k;
  while (!pr.held.empty() && pr.held.front().seq <= c) {
    auto& h = pr.held.front();
    Status s = h.error;
    bool invalidate = h.invalidate;
    if (s.ok() && h.op.barrier && !lease) {
      // A read: only with a current lease (no other primary can exist).
      s = Status(ErrorCode::kUnavailable, "node is fenced: its etcd lease is not current");
    } else if (s.ok() && h.op.barrier && h.op.late_reply && !enough) {
      s = BelowMinInsync(p, pr.sm.in_sync_count(), k);
    } else if (s.ok() && !h.op.barrier && !enough) {
      s = Status(ErrorCode::kTimeout, "partition " + std::to_string(p) + " fell to " +
                                          std::to_string(pr.sm.in_sync_count()) +
                                          " in-sync replicas, fewer than --min-insync " +
                                          std::to_string(k) +
                                          ", before this write was confirmed; it may or may "
                                          "not have been applied");
      invalidate = true;
    }
    done->push_back(Done{std::move(h.op), s, invalidate});
    pr.held.pop_front();
  }
}

void ShardReplication::TrimLog(uint32_t p, Primary& pr, Clock::time_point now, size_t cap) {
  // Records no session needs (every tail session has them, no paused one
  // will resume from them), then the oldest past the byte bound (a session
  // that still needs those starts over).
  const uint64_t needed = pr.sm.min_needed();
  while (!pr.log.empty() && (pr.log.front().first < needed || pr.log_bytes > cap)) {
    pr.log_bytes -= pr.log.front().second.size();
    pr.log.pop_front();
  }
  const uint64_t from = pr.log.empty() ? pr.sm.last().seq + 1 : pr.log.front().first;
  if (from > pr.sm.retained_from()) {
    PrimaryPartition::Outbox out;
    pr.sm.OnTrimmed(from, Ms(now), &out);
    Execute(p, pr, out, now);
  }
}

void ShardReplication::TrimToBudget(Clock::time_point now) {
  const size_t budget = ctx_->options.retained_total_bytes / std::max<uint32_t>(1, ctx_->shards);
  std::vector<size_t> sizes;
  size_t total = 0;
  for (const auto& [p, pr] : primaries_) {
    sizes.push_back(pr->log_bytes);
    total += pr->log_bytes;
  }
  if (total <= budget) return;
  // The level L with sum(min(size, L)) <= budget: the biggest logs are cut
  // to it, so a replica that is gone (its sessions paused) loses its
  // records before a partition that keeps only what its tails need.
  std::sort(sizes.begin(), sizes.end());
  size_t level = 0, below = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t rest = sizes.size() - i;  // logs of at least sizes[i]
    if (below + sizes[i] * rest > budget) {
      level = (budget - below) / rest;
      break;
    }
    below += sizes[i];
  }
  for (auto& [p, pr] : primaries_) {
    if (pr->log_bytes > level) TrimLog(p, *pr, now, level);
  }
}

void ShardReplication::Tick(Clock::time_point now, store::Group* group, std::vector<Done>* done) {
  // Catch-up budget: the node's rate, shared by its shards; at most a
  // second's worth saved up.
  const double rate = ctx_->options.catchup_bytes_per_sec / std::max<uint32_t>(1, ctx_->shards);
  if (tokens_at_ != Clock::time_point{}) {
    chunk_tokens_ += rate * std::chrono::duration<double>(now - tokens_at_).count();
  }
  chunk_tokens_ = std::min(chunk_tokens_, std::max(rate, double(ctx_->options.chunk_bytes)));
  tokens_at_ = now;
  for (auto& [p, pr] : primaries_) SendChunks(p, *pr, now);
  if (now < next_tick_) return;
  if (!drops_.empty()) DropSome(group);
  if (now >= next_checkpoint_) {
    WriteMetaKeys(group);
    next_checkpoint_ = now + kMetaCheckpointEvery;
  }
  next_tick_ = now + kTickEvery;
  const int64_t ms = Ms(now);
  for (auto& [p, pr] : primaries_) {
    PrimaryPartition::Outbox out;
    pr->sm.Tick(ms, &out);
    Execute(p, *pr, out, now);
    // A safety net: nothing waits forever (e.g. etcd unreachable, so no map
    // can take a silent backup out of sync).
    while (!pr->held.empty() && ms - pr->held.front().at_ms > ctx_->options.hold_limit_ms) {
      auto& h = pr->held.front();
      Status s = h.error.ok() ? Status(ErrorCode::kTimeout,
                                       "not confirmed by the partition's replicas within " +
                                           std::to_string(ctx_->options.hold_limit_ms) +
                                           " ms; it may or may not have been applied")
                              : h.error;
      done->push_back(Done{std::move(h.op), s, true});
      pr->held.pop_front();
    }
    Complete(p, *pr, now, done);
    TrimLog(p, *pr, now, ctx_->options.retained_bytes);
  }
  TrimToBudget(now);
  PublishReports();
}

void ShardReplication::Sequence(std::vector<WriteOp>& ops, Clock::time_point now,
                                store::Group* group, std::vector<Done>* done) {
  sequenced_.assign(ops.size(), Sequenced{});
  const int64_t ms = Ms(now);
  const bool lease = ctx_->table->lease_valid(now);
  const uint32_t k = MinInsync();
  std::vector<uint32_t> touched;
  for (size_t i = 0; i < ops.size(); ++i) {
    WriteOp& op = ops[i];
    const uint32_t p = op.partition;
    auto it = primaries_.find(p);
    Primary* pr = it == primaries_.end() ? nullptr : it->second.get();
    Status refusal;
    bool invalidate = !op.barrier;
    if (pr != nullptr && !pr->handing_off_to.empty() && pr->sm.leader_epoch() == op.term) {
      refusal = Status(ErrorCode::kUnavailable, std::string(protocol::kNotPrimaryPrefix) +
                                                    std::to_string(p) + " (handing off to '" +
                                                    pr->handing_off_to + "'; not applied)");
    } else if (pr == nullptr || pr->sm.leader_epoch() != op.term) {
      std::string who;
      if (map_ && p < map_->map->parts.size()) {
        const auto& part = map_->map->parts[p];
        who = " (its primary is '" + part.primary() + "' at epoch " + std::to_string(part.epoch) +
              ")";
      }
      refusal =
          Status(ErrorCode::kUnavailable, "not primary for partition " + std::to_string(p) + who);
    } else if (!op.barrier && op.epoch < op.owner->valid_epoch.load(std::memory_order_acquire)) {
      refusal = Status::Internal(
          "storage failure: an earlier write of this list failed, so this request was not "
          "applied");
      invalidate = false;
    } else if (!op.barrier && !lease) {
      refusal = Status(ErrorCode::kUnavailable,
                       "node is fenced: its etcd lease is not current; the write was not applied");
    } else if ((!op.barrier || op.late_reply) && pr->sm.in_sync_count() < k) {
      // A retry answered from its rid record (late_reply) is refused too:
      // its success would be told on fewer than K copies.
      refusal = BelowMinInsync(p, pr->sm.in_sync_count(), k);
    }
    if (!refusal.ok()) {
      if (pr != nullptr && !pr->held.empty()) {
        // Behind this partition's held writes, so each list's writes still
        // complete in the order they were submitted.
        sequenced_[i] = Sequenced{p, pr->sm.last().seq, refusal, invalidate};
      } else {
        done->push_back(Done{std::move(op), refusal, invalidate});
      }
      continue;
    }
    if (op.barrier) {
      sequenced_[i] = Sequenced{p, pr->sm.last().seq, Status(), false};
      continue;
    }
    const uint64_t seq = pr->sm.Append(ms);
    sequenced_[i] = Sequenced{p, seq, Status(), false};
    if (pr->group_records.empty()) {
      pr->group_first = seq;
      touched.push_back(p);
    }
    const std::string_view raw = op.batch.raw();
    pr->group_records.push_back(raw);
    op.batch.ForEach([&](bool put, std::string_view key, std::string_view value) {
      if (put) {
        group->Put(key, value);
      } else {
        group->Delete(key);
      }
    });
    pr->log.emplace_back(seq, std::string(raw));
    pr->log_bytes += raw.size();
  }
  // Each partition's position, atomically with its records.
  for (uint32_t p : touched) {
    Primary& pr = *primaries_[p];
    const cluster::Position last = pr.sm.last();
    PutMeta(p, storage::PartitionMeta{pr.sm.leader_epoch(), last.epoch, last.seq, true});
  }
  touched_ = std::move(touched);
}

void ShardReplication::Flush() {
  for (uint32_t p : touched_) {
    Primary& pr = *primaries_[p];
    const uint64_t le = pr.sm.leader_epoch();
    const uint32_t n = static_cast<uint32_t>(pr.group_records.size());
    for (const auto& s : pr.sm.sessions()) {
      if (s.mode == PrimaryPartition::Mode::kTail) {
        Add(Out(s.replica, ReplIo::Via::kDealer), [&](msgpack::sbuffer& b) {
          cluster::BeginAppend(b, p, le, s.id, pr.group_first, n);
          for (std::string_view r : pr.group_records) cluster::AppendRecord(b, r);
        });
      } else if (s.mode == PrimaryPartition::Mode::kSnapshot) {
        auto snap = pr.snaps.find(s.replica);
        if (snap == pr.snaps.end() || snap->second.session != s.id) continue;
        // Only the keys the snapshot has already sent: the rest it will
        // read later, as they are then.
        const std::string& cursor = snap->second.cursor;
        Add(Out(s.replica, ReplIo::Via::kDealer), [&](msgpack::sbuffer& b) {
          cluster::BeginAppend(b, p, le, s.id, pr.group_first, n);
          for (std::string_view r : pr.group_records) {
            store::Mutations filtered;
            store::Mutations::ForEachIn(r, [&](bool put, std::string_view k, std::string_view v) {
              if (cursor.empty() || k < std::string_view(cursor)) {
                if (put) {
                  filtered.Put(k, v);
                } else {
                  filtered.Delete(k);
                }
              }
            });
            cluster::AppendRecord(b, filtered.raw());
          }
        });
      }
    }
  }
  // To the backups, before our own write: their fsyncs overlap ours.
  for (auto it = out_.begin(); it != out_.end();) {
    if (it->first.second != ReplIo::Via::kDealer) {
      ++it;
      continue;
    }
    const std::string peer = it->first.first;
    if (!it->second.empty() && !ctx_->io->Send(peer, ReplIo::Via::kDealer, std::move(it->second))) {
      // The peer is too far behind (or unknown): its sessions start over.
      for (auto& [p, pr] : primaries_) {
        PrimaryPartition::Outbox out;
        pr->sm.OnSessionBroken(peer, Ms(Clock::now()), &out);
        for (const std::string& r : out.cancelled) pr->snaps.erase(r);
      }
    }
    it = out_.erase(it);
  }
}

void ShardReplication::AfterCommit(std::vector<WriteOp>& ops, Clock::time_point now,
                                   std::vector<Done>* done) {
  const int64_t ms = Ms(now);
  for (uint32_t p : touched_) {
    Primary& pr = *primaries_[p];
    pr.sm.OnDurable(pr.sm.last().seq);
    pr.group_records.clear();
  }
  touched_.clear();
  for (size_t i = 0; i < ops.size() && i < sequenced_.size(); ++i) {
    Sequenced& sq = sequenced_[i];
    if (sq.p == UINT32_MAX) continue;  // answered already
    Primary& pr = *primaries_[sq.p];
    pr.held.push_back(
        Primary::HeldOp{sq.seq, ms, std::move(ops[i]), std::move(sq.refusal), sq.invalidate});
  }
  sequenced_.clear();
  for (auto& [p, pr] : primaries_) {
    Complete(p, *pr, now, done);
    if (!pr->log.empty()) TrimLog(p, *pr, now, ctx_->options.retained_bytes);
  }
  // Backups: acknowledge what is now durable, and answer probes with it.
  for (uint32_t p : backup_dirty_) {
    auto it = backups_.find(p);
    if (it == backups_.end() || it->second->sm.session() == 0) continue;
    const auto& b = it->second->sm;
    Add(Out(b.primary(), ReplIo::Via::kRouter), [&](msgpack::sbuffer& buf) {
      cluster::EncodeAck(buf, p, b.state().leader_epoch, b.session(), b.acked(),
                         b.state().complete);
    });
  }
  backup_dirty_.clear();
  for (const auto& [p, peer, session, refused] : state_answers_) {
    auto it = backups_.find(p);
    if (it == backups_.end()) continue;
    const auto& st = it->second->sm.state();
    Add(Out(peer, ReplIo::Via::kRouter), [&](msgpack::sbuffer& buf) {
      cluster::EncodeState(buf, p, st.leader_epoch, session, st.applied.epoch, st.applied.seq,
                           st.complete, refused);
    });
  }
  state_answers_.clear();
  for (auto& [key, frame] : out_) {
    if (!frame.empty()) ctx_->io->Send(key.first, key.second, std::move(frame));
  }
  out_.clear();
}

void ShardReplication::Stop(std::vector<Done>* done) {
  std::vector<uint32_t> ps;
  for (const auto& [p, pr] : primaries_) ps.push_back(p);
  for (uint32_t p : ps) EndPrimary(p, "the node is stopping", done);
}

// --- Published figures ---

void ShardReplication::PublishReports() {
  std::vector<cluster::ReplicaReport> reports;
  std::vector<PartitionStats> stats;
  for (const auto& [p, pr] : primaries_) {
    auto r = pr->sm.Reports();
    reports.insert(reports.end(), r.begin(), r.end());
    if (!pr->handing_off_to.empty() && pr->held.empty() &&
        pr->sm.committed() == pr->sm.last().seq) {
      reports.push_back(cluster::ReplicaReport{cluster::ReplicaReport::Kind::kDrained, p,
                                               pr->handing_off_to, pr->sm.map_epoch()});
    }
    PartitionStats s;
    s.partition = p;
    s.role = "primary";
    s.epoch = pr->sm.map_epoch();
    s.leader_epoch = pr->sm.leader_epoch();
    s.seq = pr->sm.last().seq;
    s.committed = pr->sm.committed();
    for (const auto& ses : pr->sm.sessions()) {
      // Records behind: for a backup not yet in tail, all of them.
      const bool tail = ses.mode == PrimaryPartition::Mode::kTail;
      const uint64_t lag = !tail ? s.seq : s.seq > ses.acked ? s.seq - ses.acked : 0;
      s.backups.push_back(
          PartitionStats::Backup{ses.replica, ModeName(ses.mode), ses.in_sync, ses.acked, lag});
    }
    stats.push_back(std::move(s));
  }
  for (const auto& [p, b] : backups_) {
    PartitionStats s;
    s.partition = p;
    s.role = "backup";
    // The partition's epoch in the last map this shard applied (a backup's
    // state machine tracks only the leader epoch).
    if (map_ && p < map_->map->parts.size()) s.epoch = map_->map->parts[p].epoch;
    s.leader_epoch = b->sm.state().leader_epoch;
    s.seq = b->sm.state().applied.seq;
    s.complete = b->sm.state().complete;
    stats.push_back(std::move(s));
  }
  std::lock_guard<std::mutex> lock(published_mu_);
  stats_ = std::move(stats);
  auto same = [](const cluster::ReplicaReport& a, const cluster::ReplicaReport& b) {
    return a.kind == b.kind && a.partition == b.partition && a.replica == b.replica &&
           a.epoch == b.epoch;
  };
  if (reports.size() != reports_.size() ||
      !std::equal(reports.begin(), reports.end(), reports_.begin(), same)) {
    reports_ = std::move(reports);
    reports_version_.fetch_add(1, std::memory_order_release);
  }
}

std::vector<cluster::ReplicaReport> ShardReplication::reports() const {
  std::lock_guard<std::mutex> lock(published_mu_);
  return reports_;
}

std::vector<PartitionStats> ShardReplication::stats() const {
  std::lock_guard<std::mutex> lock(published_mu_);
  return stats_;
}

}  // namespace todo::node
