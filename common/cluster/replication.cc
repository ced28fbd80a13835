#include "common/cluster/replication.h"

#include <algorithm>

namespace todo::cluster {

// --- PrimaryPartition ---

PrimaryPartition::PrimaryPartition(uint32_t partition, std::string self, uint64_t leader_epoch,
                                   Position start, Options options)
    : partition_(partition),
      self_(std::move(self)),
      leader_epoch_(leader_epoch),
      options_(options),
      start_(start),
      last_(start),
      durable_(start.seq),
      retained_from_(start.seq + 1) {}

size_t PrimaryPartition::in_sync_count() const {
  size_t n = 1;  // this primary
  for (const Session& s : sessions_) n += s.in_sync ? 1 : 0;
  return n;
}

PrimaryPartition::Session* PrimaryPartition::Find(const std::string& replica) {
  for (Session& s : sessions_) {
    if (s.replica == replica) return &s;
  }
  return nullptr;
}

namespace {
// The first record a tail session lacks: after what it acknowledged, or
// after its snapshot's end until it acknowledges that.
uint64_t TailNeeds(const PrimaryPartition::Session& s) {
  return std::max(s.acked, s.snapshot_end) + 1;
}
}  // namespace

void PrimaryPartition::LeaveTail(Session* s, int64_t now) {
  if (s->mode == Mode::kTail) {
    s->resume_from = TailNeeds(*s);
    s->resume_until_ms = now + options_.resume_window_ms;
  } else if (s->mode == Mode::kSnapshot) {
    s->resume_from = 0;  // a half-sent snapshot starts over
  }
  // kProbing, kIdle: keeps the resume point it has.
}

void PrimaryPartition::StartProbe(Session* s, int64_t now, Outbox* out) {
  // A half-sent snapshot's chunks stop: the new session sends its own.
  if (s->mode == Mode::kSnapshot) out->cancelled.push_back(s->replica);
  LeaveTail(s, now);
  s->id = ++next_session_;
  s->mode = Mode::kProbing;
  s->last_sent_ms = now;
  s->snapshot_end = 0;
  s->sync_at = 0;
  out->probes.emplace_back(s->replica, s->id);
}

void PrimaryPartition::EnterSyncMode(Session* s, uint64_t after) {
  if (s->required_from == kNotRequired) s->required_from = after + 1;
  MaybeCaughtUp(s);
}

void PrimaryPartition::MaybeCaughtUp(Session* s) {
  // In sync mode and holding every record before it: every committed record
  // is on it. From now on it stays required until a map answers.
  if (!s->in_sync && s->reported_epoch == 0 && s->required_from != kNotRequired &&
      s->mode == Mode::kTail && s->acked + 1 >= s->required_from) {
    s->reported_epoch = map_epoch_;
  }
}

void PrimaryPartition::Prune() {
  const uint64_t c = committed();
  while (!appended_.empty() && appended_.front().first <= c) appended_.pop_front();
}

void PrimaryPartition::SetMap(uint64_t epoch, const Partition& part, int64_t now, Outbox* out) {
  const bool new_epoch = epoch != map_epoch_;
  map_epoch_ = std::max(map_epoch_, epoch);
  // Sessions of replicas no longer in the set end.
  for (size_t i = 0; i < sessions_.size();) {
    if (!part.HasReplica(sessions_[i].replica)) {
      out->cancelled.push_back(sessions_[i].replica);
      sessions_.erase(sessions_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (const std::string& r : part.replicas) {
    if (r == self_) continue;
    Session* s = Find(r);
    if (s == nullptr) {
      sessions_.push_back(Session{});
      s = &sessions_.back();
      s->replica = r;
      if (retained_from_ == start_.seq + 1) {
        // A replica may hold exactly where this term began (after a
        // hand-off or a failover, every in-sync one does): keep the records
        // from there until its first answer, or it would get a snapshot.
        s->resume_from = start_.seq + 1;
        s->resume_until_ms = now + options_.resume_window_ms;
      }
      StartProbe(s, now, out);
    }
    const bool in_sync = part.IsInSync(r);
    if (in_sync) {
      s->required_from = 0;  // every record
      s->reported_epoch = 0;
    } else if (s->in_sync) {
      // Out of the in-sync set: no longer required; it catches up again.
      s->required_from = kNotRequired;
      s->reported_epoch = 0;
      if (s->mode != Mode::kProbing) StartProbe(s, now, out);
    } else if (s->reported_epoch != 0 && new_epoch) {
      // Reported caught up, and the map moved on without taking it in: the
      // controller ignores a report of an old epoch. Still required (so it
      // still holds every committed record): report again at this epoch,
      // unless it is lagging, then let it go and catch up again.
      if (s->lagging) {
        s->required_from = kNotRequired;
        s->reported_epoch = 0;
        StartProbe(s, now, out);
      } else {
        s->reported_epoch = epoch;
      }
    }
    s->in_sync = in_sync;
    if (new_epoch) s->lagging = false;
  }
  Prune();
}

uint64_t PrimaryPartition::Append(int64_t now) {
  last_.seq += 1;
  last_.epoch = leader_epoch_;
  appended_.emplace_back(last_.seq, now);
  return last_.seq;
}

void PrimaryPartition::OnDurable(uint64_t seq) {
  durable_ = std::max(durable_, seq);
  Prune();
}

void PrimaryPartition::OnTrimmed(uint64_t from, int64_t now, Outbox* out) {
  retained_from_ = std::max(retained_from_, from);
  for (Session& s : sessions_) {
    if (s.mode == Mode::kTail && TailNeeds(s) < retained_from_) {
      // It still needs records that are gone: start over (snapshot).
      StartProbe(&s, now, out);
      s.resume_from = 0;
    } else if (s.mode != Mode::kTail && s.resume_from != 0 && s.resume_from < retained_from_) {
      s.resume_from = 0;  // it will resume by snapshot
    }
  }
}

void PrimaryPartition::OnAck(const std::string& replica, uint64_t session, uint64_t seq,
                             bool complete, int64_t now) {
  Session* s = Find(replica);
  if (s == nullptr || s->id != session) return;
  s->last_ack_ms = now;  // alive, even while it applies a snapshot
  // Acks of a half-applied snapshot say nothing about what the backup holds.
  if (s->mode != Mode::kTail || !complete) return;
  s->acked = std::max(s->acked, seq);
  if (!s->in_sync && s->required_from == kNotRequired && s->acked >= s->sync_at) {
    // It holds what it lacked when its tail began; what was written since
    // is on its way to it (the tail carries every record). From the next
    // record on its ack is needed, so it stays caught up; it is reported
    // once it acknowledges everything before that (MaybeCaughtUp). Under
    // a steady write load this converges, where waiting for an ack of the
    // very last record written might not.
    EnterSyncMode(s, last_.seq);
  }
  MaybeCaughtUp(s);
  Prune();
}

void PrimaryPartition::OnState(const std::string& replica, uint64_t session, Position theirs,
                               bool complete, bool refused, int64_t now, Outbox* out) {
  Session* s = Find(replica);
  if (s == nullptr || s->id != session) return;
  if (s->mode == Mode::kIdle) return;  // waiting to probe again
  if (s->mode == Mode::kSnapshot) {
    // The backup refused the snapshot (it receives as many as it takes at
    // once) or lost a chunk: try again after a pause, not at once, so a
    // busy target is not fed a first chunk every round trip.
    s->mode = Mode::kIdle;
    s->retry_at_ms = now + options_.probe_retry_ms;
    out->cancelled.push_back(replica);
    return;
  }
  if (s->mode != Mode::kProbing) {
    // The backup lost the thread of this session (a gap, a restart): start
    // again from what it holds.
    StartProbe(s, now, out);
    return;
  }
  if (refused) {
    // The backup knows a higher leader epoch: this primary is deposed; the
    // map will say so. Stop talking to it.
    s->mode = Mode::kIdle;
    s->retry_at_ms = now + options_.probe_retry_ms;
    return;
  }
  bool tail = false;
  if (complete && theirs.seq <= last_.seq) {
    if (theirs == last_) {
      tail = true;  // identical
    } else if (theirs == start_ && retained_from_ == start_.seq + 1) {
      tail = true;  // where this term began, and nothing trimmed since
    } else if (theirs.epoch == leader_epoch_ && theirs.seq > start_.seq &&
               theirs.seq + 1 >= retained_from_) {
      tail = true;  // a record of this term that we still hold the rest after
    }
  }
  s->resume_from = 0;
  if (tail) {
    s->mode = Mode::kTail;
    s->acked = theirs.seq;
    s->sync_at = last_.seq;
    s->last_ack_ms = now;
    out->tails.emplace_back(replica, theirs.seq + 1);
    if (!s->in_sync && s->required_from == kNotRequired && s->acked >= last_.seq) {
      EnterSyncMode(s, last_.seq);
    }
  } else {
    s->mode = Mode::kSnapshot;
    s->acked = 0;
    s->last_ack_ms = now;  // the stall clock starts with the snapshot
    out->snapshots.push_back(replica);
  }
}

void PrimaryPartition::OnSnapshotEnd(const std::string& replica, uint64_t session, uint64_t seq,
                                     int64_t now) {
  Session* s = Find(replica);
  if (s == nullptr || s->id != session || s->mode != Mode::kSnapshot) return;
  s->mode = Mode::kTail;
  s->snapshot_end = seq;
  s->last_sent_ms = now;
  s->acked = 0;  // until the backup acknowledges the end, complete
  // Not required yet: the backup may have megabytes of chunks still to
  // apply, and client writes must not wait for that (nor may it be taken
  // for lagging meanwhile). Once it acknowledges the end it enters sync
  // mode (OnAck).
  s->sync_at = seq;
  s->last_ack_ms = now;
}

void PrimaryPartition::OnSnapshotHeld(const std::string& replica, uint64_t session, int64_t now) {
  Session* s = Find(replica);
  if (s == nullptr || s->id != session || s->mode != Mode::kSnapshot) return;
  s->last_ack_ms = std::max(s->last_ack_ms, now);
}

void PrimaryPartition::OnSessionBroken(const std::string& replica, int64_t now, Outbox* out) {
  Session* s = Find(replica);
  if (s == nullptr) return;
  if (s->in_sync || s->reported_epoch != 0) {
    // Still required: the lag report takes it out first; then it restarts.
    s->lagging = true;
    return;
  }
  s->required_from = kNotRequired;
  LeaveTail(s, now);
  s->mode = Mode::kIdle;
  s->retry_at_ms = now + options_.probe_retry_ms;
  out->cancelled.push_back(replica);
}

void PrimaryPartition::Tick(int64_t now, Outbox* out) {
  for (Session& s : sessions_) {
    if (s.mode != Mode::kTail && s.resume_from != 0 && now >= s.resume_until_ms) {
      s.resume_from = 0;  // kept long enough: its records may go
    }
  }
  for (Session& s : sessions_) {
    if (s.mode == Mode::kProbing && now - s.last_sent_ms >= options_.probe_retry_ms) {
      StartProbe(&s, now, out);  // a new id: a late answer to the old probe is ignored
    } else if (s.mode == Mode::kIdle && now >= s.retry_at_ms) {
      StartProbe(&s, now, out);
    } else if (s.mode == Mode::kTail && !s.in_sync && s.required_from == kNotRequired &&
               now - s.last_ack_ms >= options_.stall_ms) {
      StartProbe(&s, now, out);  // e.g. its snapshot's end was lost: resume from the tail
    } else if (s.mode == Mode::kSnapshot && now - s.last_ack_ms >= options_.stall_ms) {
      // Chunks sent and nothing acknowledged: lost with nothing after them
      // to show the backup a gap, or a backup that stopped reading. The
      // probe frees the backup's slot for incoming snapshots too (a new
      // session); the snapshot starts over. A backup that applies chunks
      // acknowledges each (incomplete) and is left alone, however slow.
      StartProbe(&s, now, out);
    }
  }
  // Lag: a required backup that has not acknowledged a record appended
  // more than repl_timeout ago.
  for (const auto& [seq, at] : appended_) {
    if (now - at < options_.repl_timeout_ms) break;
    for (Session& s : sessions_) {
      if (s.required_from != kNotRequired && seq >= s.required_from && s.acked < seq) {
        s.lagging = true;
      }
    }
  }
  for (Session& s : sessions_) {
    // A backup in sync mode that this primary has not yet reported can be
    // dropped from it on its own: nobody else relies on it.
    if (s.lagging && !s.in_sync && s.reported_epoch == 0 && s.required_from != kNotRequired) {
      s.lagging = false;
      s.required_from = kNotRequired;
      LeaveTail(&s, now);
      s.mode = Mode::kIdle;
      s.retry_at_ms = now + options_.probe_retry_ms;
      out->cancelled.push_back(s.replica);
    }
  }
}

uint64_t PrimaryPartition::committed() const {
  uint64_t c = durable_;
  for (const Session& s : sessions_) {
    if (s.required_from == kNotRequired) continue;
    // Records below required_from don't need this backup.
    const uint64_t bound = s.required_from == 0 ? s.acked : std::max(s.acked, s.required_from - 1);
    c = std::min(c, bound);
  }
  return c;
}

uint64_t PrimaryPartition::min_needed() const {
  uint64_t m = last_.seq + 1;
  for (const Session& s : sessions_) {
    if (s.mode == Mode::kTail) {
      m = std::min(m, TailNeeds(s));
    } else if (s.resume_from != 0) {
      m = std::min(m, s.resume_from);
    }
  }
  return m;
}

std::vector<ReplicaReport> PrimaryPartition::Reports() const {
  std::vector<ReplicaReport> r;
  for (const Session& s : sessions_) {
    if (s.lagging && (s.in_sync || s.reported_epoch != 0)) {
      r.push_back(ReplicaReport{ReplicaReport::Kind::kLagging, partition_, s.replica, map_epoch_});
    } else if (!s.in_sync && s.reported_epoch != 0) {
      r.push_back(ReplicaReport{ReplicaReport::Kind::kCaughtUp, partition_, s.replica, map_epoch_});
    }
  }
  return r;
}

// --- BackupPartition ---

void BackupPartition::RaiseLeaderEpoch(uint64_t leader_epoch) {
  if (leader_epoch > state_.leader_epoch) {
    state_.leader_epoch = leader_epoch;
    // A session of an older leader is over.
    session_ = 0;
    primary_.clear();
    snapshotting_ = false;
    abandoned_ = false;
  }
}

void BackupPartition::Abandon(uint64_t session) {
  if (session_ == 0 || session != session_) return;
  abandoned_ = true;
  snapshotting_ = false;
}

bool BackupPartition::Current(const std::string& from, uint64_t leader_epoch,
                              uint64_t session) const {
  return session_ != 0 && session == session_ && from == primary_ &&
         leader_epoch == state_.leader_epoch;
}

BackupPartition::Verdict BackupPartition::OnProbe(const std::string& from, uint64_t leader_epoch,
                                                  uint64_t session) {
  if (leader_epoch < state_.leader_epoch) return Verdict::kResync;  // refused: an old leader
  RaiseLeaderEpoch(leader_epoch);
  primary_ = from;
  session_ = session;
  snapshotting_ = false;
  abandoned_ = false;
  return Verdict::kAccept;
}

BackupPartition::Verdict BackupPartition::OnAppend(const std::string& from, uint64_t leader_epoch,
                                                   uint64_t session, uint64_t first_seq,
                                                   uint64_t n) {
  if (leader_epoch < state_.leader_epoch) return Verdict::kResync;
  if (abandoned(from, leader_epoch, session)) return Verdict::kIgnore;
  if (!Current(from, leader_epoch, session)) {
    // Another session (an old one of this primary, or before our probe
    // answer arrived): the primary resynchronises after our state.
    return session < session_ && from == primary_ ? Verdict::kIgnore : Verdict::kResync;
  }
  if (!snapshotting_ && first_seq != state_.applied.seq + 1) return Verdict::kResync;  // a gap
  if (snapshotting_ && state_.applied.seq != 0 && first_seq != state_.applied.seq + 1) {
    return Verdict::kResync;
  }
  if (n > 0) {
    state_.applied.seq = first_seq + n - 1;
    state_.applied.epoch = leader_epoch;
  }
  return Verdict::kAccept;
}

BackupPartition::Verdict BackupPartition::OnChunk(const std::string& from, uint64_t leader_epoch,
                                                  uint64_t session, bool first) {
  if (leader_epoch < state_.leader_epoch) return Verdict::kResync;
  if (abandoned(from, leader_epoch, session)) return Verdict::kIgnore;
  if (!Current(from, leader_epoch, session)) return Verdict::kResync;
  if (first) {
    // From here until the end the copy is incomplete; records carry on from
    // the primary's numbering, whatever ours was.
    snapshotting_ = true;
    state_.complete = false;
    state_.applied = Position{};
  } else if (!snapshotting_) {
    return Verdict::kResync;
  }
  return Verdict::kAccept;
}

BackupPartition::Verdict BackupPartition::OnSnapshotEnd(const std::string& from,
                                                        uint64_t leader_epoch, uint64_t session,
                                                        Position at) {
  if (leader_epoch < state_.leader_epoch) return Verdict::kResync;
  // After a gap: the copy lacks the lost chunk's keys, whatever the end says.
  if (abandoned(from, leader_epoch, session)) return Verdict::kIgnore;
  if (!Current(from, leader_epoch, session) || !snapshotting_) return Verdict::kResync;
  if (state_.applied.seq != 0 && state_.applied.seq != at.seq) return Verdict::kResync;
  snapshotting_ = false;
  state_.complete = true;
  state_.applied = at;
  return Verdict::kAccept;
}

}  // namespace todo::cluster
