// The replication state machines of one partition: the primary's view of
// its backups (sequence numbers, acknowledgements, catch-up sessions, what
// may be acknowledged to clients, what to report to the controller), and a
// backup's checks on what it receives. Pure: no I/O, no threads, no clock
// (every call takes `now` in ms); the node's shard writer holds one per
// partition, does the disk and socket work they ask for, and persists before
// it sends. The wire messages are in common/cluster/repl_wire.h.
//
// Terms. A record is one client write (its mutations), numbered by the
// partition's sequence number `seq` and stamped with the leader epoch of
// the primary that wrote it; a Position is (leader epoch, seq) of the last
// record a replica holds. A primary talks to each backup in a session (an
// id the primary picks): probe -> the backup's state -> tail (records from
// a seq) or snapshot (the partition's keys in chunks, with the records
// written meanwhile to keys already sent, then the end at a seq) -> tail.
//
// What the primary may acknowledge (committed()): a record is committed
// once it is durable locally and acknowledged by every *required* backup:
// those in the map's in-sync set (all records), and those it has caught up
// itself (records from the moment it put them in sync mode). It puts a
// backup in sync mode *before* reporting it caught up, and keeps requiring
// it until a later map either lists it in sync or leaves it out: so every
// committed record is on every replica the map ever calls in sync, and a
// failover to one of them loses nothing acknowledged.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster/controller.h"
#include "common/cluster/map.h"

namespace todo::cluster {

struct Position {
  uint64_t epoch = 0;  // the leader epoch of the record at `seq` (0: no record yet)
  uint64_t seq = 0;
  bool operator==(const Position&) const = default;
};

class PrimaryPartition {
 public:
  struct Options {
    int64_t repl_timeout_ms = 1000;  // a required backup slower than this is reported lagging
    int64_t probe_retry_ms = 500;    // a probe (or a snapshot's end) unanswered this long is resent
    // A session that leaves the tail (lag, a broken queue, a gap) keeps the
    // records it needs to resume by tail this long (min_needed() counts
    // them); then, or once they are trimmed, it resumes by snapshot.
    int64_t resume_window_ms = 60000;
    // A tail session not yet in sync mode (nothing waits for it), or a
    // snapshot session, whose backup acknowledges nothing this long starts
    // over with a probe (a snapshot's chunks may be lost with nothing after
    // them to show the backup a gap). Time the primary itself holds a
    // snapshot's chunks back (OnSnapshotHeld) does not count.
    int64_t stall_ms = 10000;
  };

  enum class Mode : uint8_t {
    kProbing,   // probe sent, waiting for the backup's state
    kSnapshot,  // the partition's keys are being sent
    kTail,      // records are sent as they are written
    kIdle,      // out of sync and not catching up (waiting to retry)
  };

  struct Session {
    std::string replica;
    uint64_t id = 0;
    Mode mode = Mode::kProbing;
    bool in_sync = false;                   // the map lists it in sync
    uint64_t required_from = kNotRequired;  // its acks are needed for seqs >= this
    uint64_t acked = 0;                     // highest seq it has made durable (tail)
    int64_t last_sent_ms = 0;               // the probe's (or snapshot end's) time
    int64_t retry_at_ms = 0;                // kIdle: when to probe again
    uint64_t snapshot_end = 0;    // the seq the snapshot ended at (sync mode from after it)
    uint64_t reported_epoch = 0;  // caught up reported at this map epoch (0: not)
    bool lagging = false;         // reported lagging at the current epoch
    // kTail and not yet in sync mode: once it has acknowledged this seq (what
    // it lacked when its tail began: the snapshot's end, or the last record
    // then), its acks are required from the next record on.
    uint64_t sync_at = 0;
    // Its last acknowledgement (or its tail's or snapshot's start, or the
    // last time the primary held the snapshot back): stalls count from here.
    int64_t last_ack_ms = 0;
    // Not in kTail: the first seq it needs to resume by tail (0: none, it
    // resumes by snapshot), kept until resume_until_ms.
    uint64_t resume_from = 0;
    int64_t resume_until_ms = 0;
  };
  static constexpr uint64_t kNotRequired = UINT64_MAX;

  // What the caller must do after a call.
  struct Outbox {
    std::vector<std::pair<std::string, uint64_t>> probes;  // (replica, session) to probe
    std::vector<std::pair<std::string, uint64_t>> tails;   // (replica, first seq) to send from
    std::vector<std::string> snapshots;                    // replicas to snapshot from the start
    // Sessions ended, or a snapshot that starts over (stop sending chunks).
    std::vector<std::string> cancelled;
    bool empty() const {
      return probes.empty() && tails.empty() && snapshots.empty() && cancelled.empty();
    }
  };

  // Starts a term as primary at `leader_epoch`, with the local data at
  // `start`. `self` is this node's name.
  PrimaryPartition(uint32_t partition, std::string self, uint64_t leader_epoch, Position start,
                   Options options);

  uint32_t partition() const { return partition_; }
  uint64_t leader_epoch() const { return leader_epoch_; }
  uint64_t map_epoch() const { return map_epoch_; }
  Position last() const { return last_; }
  uint64_t durable() const { return durable_; }
  const std::vector<Session>& sessions() const { return sessions_; }
  size_t in_sync_count() const;  // the map's in-sync replicas, this one included

  // A map in which this node is still primary at leader_epoch(): sessions
  // for new backups start, those of removed backups end, in-sync marks are
  // taken over (a backup leaving the in-sync set stops being required unless
  // this primary reported it caught up at a still-current epoch).
  void SetMap(uint64_t epoch, const Partition& part, int64_t now, Outbox* out);

  // A client write: its sequence number. Then OnDurable once it is on the
  // local disk.
  uint64_t Append(int64_t now);
  void OnDurable(uint64_t seq);
  // Records from `from` on are no longer retained for resending: sessions
  // that would need one of them restart with a snapshot.
  void OnTrimmed(uint64_t from, int64_t now, Outbox* out);
  uint64_t retained_from() const { return retained_from_; }

  // From a backup. Stale sessions are ignored.
  // `complete`: the backup's copy is whole (not in the middle of a snapshot).
  void OnAck(const std::string& replica, uint64_t session, uint64_t seq, bool complete,
             int64_t now);
  void OnState(const std::string& replica, uint64_t session, Position theirs, bool complete,
               bool refused, int64_t now, Outbox* out);
  // The caller sent the snapshot's end at `seq` (the last record written
  // before it): the backup is required for every later record.
  void OnSnapshotEnd(const std::string& replica, uint64_t session, uint64_t seq, int64_t now);
  // The caller holds the next chunks of the session's snapshot back (its
  // own catch-up rate): the backup is not waited on meanwhile.
  void OnSnapshotHeld(const std::string& replica, uint64_t session, int64_t now);
  // The caller could not keep up a session (its queue to the backup
  // overflowed): it starts again after a pause.
  void OnSessionBroken(const std::string& replica, int64_t now, Outbox* out);

  // Timers: probe resends, lag detection, retries of idle sessions.
  void Tick(int64_t now, Outbox* out);

  // Every record with seq <= committed() may be acknowledged to its client.
  uint64_t committed() const;
  // The lowest seq a session may still need resent (retention bound): the
  // first record a tail session lacks, and the resume point of a session
  // out of the tail within its resume window.
  uint64_t min_needed() const;
  // The primary's requests to the controller (level-triggered: reported
  // until a map answers them).
  std::vector<ReplicaReport> Reports() const;

 private:
  Session* Find(const std::string& replica);
  void StartProbe(Session* s, int64_t now, Outbox* out);
  // A session leaves the tail (to probe again or pause): remembers where
  // it can resume.
  void LeaveTail(Session* s, int64_t now);
  // From the record after `after` on, the session's acks are required.
  void EnterSyncMode(Session* s, uint64_t after);
  // Marks a session in sync mode that holds every record before it as
  // caught up (to report at the current map epoch).
  void MaybeCaughtUp(Session* s);
  // Forgets the append times of committed records.
  void Prune();

  const uint32_t partition_;
  const std::string self_;
  const uint64_t leader_epoch_;
  const Options options_;
  const Position start_;
  uint64_t map_epoch_ = 0;
  Position last_;
  uint64_t durable_ = 0;
  uint64_t retained_from_ = 0;  // the first seq still retained (start_.seq + 1 at first)
  uint64_t next_session_ = 0;
  std::vector<Session> sessions_;
  // Append times of the records not yet acknowledged by every required
  // backup: (seq, ms), oldest first.
  std::deque<std::pair<uint64_t, int64_t>> appended_;
};

// A backup's checks on what it receives for one partition, and its durable
// position. The caller applies what is accepted and persists the position
// in the same batch.
class BackupPartition {
 public:
  struct State {
    uint64_t leader_epoch = 0;  // the highest leader epoch seen (records below it are refused)
    Position applied;           // the last record applied (with a complete copy)
    bool complete = true;       // false while a snapshot is half applied
  };

  BackupPartition(uint32_t partition, State persisted) : partition_(partition), state_(persisted) {}

  uint32_t partition() const { return partition_; }
  const State& state() const { return state_; }
  const std::string& primary() const { return primary_; }
  uint64_t session() const { return session_; }

  enum class Verdict : uint8_t {
    kAccept,  // apply it
    kIgnore,  // from an old session: drop it silently
    kResync,  // answer with our state (stale epoch, a gap, no session)
  };

  // The map says the partition's leader epoch is at least this.
  void RaiseLeaderEpoch(uint64_t leader_epoch);
  // A probe: a new session if its epoch is current. kResync if refused
  // (answer with refused=true).
  Verdict OnProbe(const std::string& from, uint64_t leader_epoch, uint64_t session);
  // Records first_seq .. first_seq+n-1.
  Verdict OnAppend(const std::string& from, uint64_t leader_epoch, uint64_t session,
                   uint64_t first_seq, uint64_t n);
  // The caller gave up on the current session (a snapshot chunk out of
  // order, i.e. one lost before it, or a first chunk refused by
  // AdmitSnapshot) and answered with its state: whatever more that session
  // sends (chunks, records, the snapshot's end, already on their way) is
  // kIgnore until the primary probes again. A snapshot it was sending no
  // longer counts as received (snapshotting() false); the copy stays as it
  // is (incomplete if chunks were taken). `session` not the current one:
  // nothing.
  void Abandon(uint64_t session);
  // That session, from that primary, is the current one and abandoned.
  bool abandoned(const std::string& from, uint64_t leader_epoch, uint64_t session) const {
    return abandoned_ && Current(from, leader_epoch, session);
  }
  // A snapshot chunk; `first` if it starts at the partition's beginning.
  Verdict OnChunk(const std::string& from, uint64_t leader_epoch, uint64_t session, bool first);
  // The snapshot's end: the data now equals the primary's at `at`.
  Verdict OnSnapshotEnd(const std::string& from, uint64_t leader_epoch, uint64_t session,
                        Position at);
  // After the caller has applied and synced everything accepted so far:
  // the seq to acknowledge.
  uint64_t acked() const { return state_.applied.seq; }
  // Receiving a snapshot in the current session (its first chunk taken).
  bool snapshotting() const { return snapshotting_; }
  // The target's bound on snapshots received at once: a snapshot's first
  // chunk is taken only while fewer than `limit` other partitions of the
  // node (its shard's share) are receiving one; otherwise the caller
  // answers with its state, and the primary tries again after
  // probe_retry_ms.
  static bool AdmitSnapshot(size_t others_receiving, size_t limit) {
    return others_receiving < limit;
  }

 private:
  bool Current(const std::string& from, uint64_t leader_epoch, uint64_t session) const;

  const uint32_t partition_;
  State state_;
  std::string primary_;   // of the current session
  uint64_t session_ = 0;  // 0: none
  bool snapshotting_ = false;
  bool abandoned_ = false;  // the current session was given up (Abandon)
};

}  // namespace todo::cluster
