// The replication state machines of one partition, driven by hand with a
// fake clock: what a primary may acknowledge, when it reports a backup
// lagging or caught up, and what a backup accepts.
#include "common/cluster/replication.h"

#include <gtest/gtest.h>

#include "common/cluster/repl_wire.h"

namespace todo::cluster {
namespace {

using Mode = PrimaryPartition::Mode;
using Kind = ReplicaReport::Kind;

Partition Part(std::vector<std::string> replicas, std::vector<std::string> in_sync,
               uint64_t epoch = 1, uint64_t leader_epoch = 1) {
  Partition p;
  p.replicas = std::move(replicas);
  p.in_sync = std::move(in_sync);
  p.epoch = epoch;
  p.leader_epoch = leader_epoch;
  return p;
}

class PrimaryTest : public ::testing::Test {
 protected:
  PrimaryPartition primary_{7, "a", /*leader_epoch=*/1, Position{1, 10}, {1000, 500}};
  PrimaryPartition::Outbox out_;
  int64_t now_ = 0;

  uint64_t Session(const std::string& r) {
    for (const auto& s : primary_.sessions()) {
      if (s.replica == r) return s.id;
    }
    ADD_FAILURE() << "no session for " << r;
    return 0;
  }
  const PrimaryPartition::Session& S(const std::string& r) {
    for (const auto& s : primary_.sessions()) {
      if (s.replica == r) return s;
    }
    throw std::runtime_error("no session");
  }
  // Writes n records, all durable locally.
  uint64_t Write(int n) {
    uint64_t seq = 0;
    for (int i = 0; i < n; ++i) seq = primary_.Append(now_);
    primary_.OnDurable(seq);
    return seq;
  }
};

TEST_F(PrimaryTest, AloneCommitsWhatIsDurable) {
  primary_.SetMap(1, Part({"a"}, {"a"}), now_, &out_);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(primary_.committed(), 10u);
  EXPECT_EQ(primary_.Append(now_), 11u);
  EXPECT_EQ(primary_.committed(), 10u);  // not durable yet
  primary_.OnDurable(11);
  EXPECT_EQ(primary_.committed(), 11u);
  EXPECT_EQ(primary_.last(), (Position{1, 11}));
}

TEST_F(PrimaryTest, InSyncBackupMustAcknowledgeEveryRecord) {
  primary_.SetMap(1, Part({"a", "b"}, {"a", "b"}), now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  EXPECT_EQ(out_.probes[0].first, "b");
  // Until the backup answers, nothing commits (it is required).
  Write(2);
  EXPECT_EQ(primary_.committed(), 0u);
  out_ = {};
  // It holds exactly what this term started from: tail from 11.
  primary_.OnState("b", Session("b"), Position{1, 10}, true, false, now_, &out_);
  ASSERT_EQ(out_.tails.size(), 1u);
  EXPECT_EQ(out_.tails[0], (std::pair<std::string, uint64_t>{"b", 11}));
  EXPECT_EQ(primary_.committed(), 10u);
  primary_.OnAck("b", Session("b"), 11, true, now_);
  EXPECT_EQ(primary_.committed(), 11u);
  primary_.OnAck("b", Session("b"), 12, true, now_);
  EXPECT_EQ(primary_.committed(), 12u);
  // A stale session's ack is ignored.
  Write(1);
  primary_.OnAck("b", Session("b") + 100, 13, true, now_);
  EXPECT_EQ(primary_.committed(), 12u);
}

TEST_F(PrimaryTest, LaggingInSyncBackupIsReportedThenLetGoByTheMap) {
  primary_.SetMap(1, Part({"a", "b"}, {"a", "b"}), now_, &out_);
  primary_.OnState("b", Session("b"), Position{1, 10}, true, false, now_, &out_);
  Write(1);  // 11, never acknowledged
  now_ += 999;
  primary_.Tick(now_, &out_);
  EXPECT_TRUE(primary_.Reports().empty());
  now_ += 1;
  primary_.Tick(now_, &out_);
  auto reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].kind, Kind::kLagging);
  EXPECT_EQ(reports[0].replica, "b");
  EXPECT_EQ(reports[0].epoch, 1u);
  EXPECT_EQ(primary_.committed(), 10u);  // still waiting: the map relies on b
  // The controller takes b out of sync: the write commits without it.
  out_ = {};
  primary_.SetMap(2, Part({"a", "b"}, {"a"}, 2), now_, &out_);
  EXPECT_EQ(primary_.committed(), 11u);
  EXPECT_TRUE(primary_.Reports().empty());
  // And b catches up again from a fresh probe.
  ASSERT_EQ(out_.probes.size(), 1u);
}

TEST_F(PrimaryTest, CatchUpBySnapshotThenReportedCaughtUp) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  Write(5);  // 11..15, committed without c
  EXPECT_EQ(primary_.committed(), 15u);
  out_ = {};
  // c holds nothing this primary can continue: a snapshot.
  primary_.OnState("c", Session("c"), Position{0, 0}, true, false, now_, &out_);
  ASSERT_EQ(out_.snapshots, std::vector<std::string>{"c"});
  EXPECT_EQ(S("c").mode, Mode::kSnapshot);
  // Writes during the snapshot commit without c; its acks of a half copy
  // count for nothing.
  Write(2);  // 16, 17
  primary_.OnAck("c", Session("c"), 17, /*complete=*/false, now_);
  EXPECT_EQ(primary_.committed(), 17u);
  // The snapshot ends after 17. c may still have chunks to apply: nothing
  // waits for it, and the records after 17 are kept for it.
  primary_.OnSnapshotEnd("c", Session("c"), 17, now_);
  EXPECT_EQ(S("c").mode, Mode::kTail);
  EXPECT_EQ(S("c").required_from, PrimaryPartition::kNotRequired);
  EXPECT_EQ(primary_.min_needed(), 18u);
  Write(1);  // 18
  EXPECT_EQ(primary_.committed(), 18u);
  // c acknowledges the end: its acks are required from the next record on.
  primary_.OnAck("c", Session("c"), 17, true, now_);
  EXPECT_EQ(S("c").required_from, 19u);
  EXPECT_TRUE(primary_.Reports().empty());  // 18 not yet acknowledged
  Write(1);                                 // 19
  EXPECT_EQ(primary_.committed(), 18u);     // waits for c
  primary_.OnAck("c", Session("c"), 19, true, now_);
  EXPECT_EQ(primary_.committed(), 19u);
  auto reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].kind, Kind::kCaughtUp);
  EXPECT_EQ(reports[0].replica, "c");
  // The map marks c in sync.
  primary_.SetMap(2, Part({"a", "c"}, {"a", "c"}, 2), now_, &out_);
  EXPECT_TRUE(primary_.Reports().empty());
  EXPECT_EQ(S("c").required_from, 0u);
}

TEST_F(PrimaryTest, ReportedReplicaStaysRequiredUntilTheMapAnswers) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  primary_.OnState("c", Session("c"), Position{1, 10}, true, false, now_, &out_);
  // Identical to the primary: at once in sync mode and caught up.
  ASSERT_EQ(primary_.Reports().size(), 1u);
  Write(1);  // 11: needs c, since the controller may mark it in sync any time
  EXPECT_EQ(primary_.committed(), 10u);
  // The map moves on (another change) without taking the report: c stays
  // required and is reported again at the new epoch.
  primary_.SetMap(2, Part({"a", "c"}, {"a"}, 2), now_, &out_);
  EXPECT_EQ(primary_.committed(), 10u);
  auto reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].epoch, 2u);
  primary_.OnAck("c", Session("c"), 11, true, now_);
  EXPECT_EQ(primary_.committed(), 11u);
}

// c is reported caught up, then lags (a stall over repl_timeout) before a
// map takes it in. The primary keeps it required (a map listing it in sync
// may be on its way) and reports it lagging, not caught up, even once c is
// back up to date: only a map at a new epoch answers (the controller's).
TEST_F(PrimaryTest, ReportedReplicaThatLagsBeforeTheMapTookItInWaitsForANewEpoch) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  primary_.OnState("c", Session("c"), Position{1, 10}, true, false, now_, &out_);
  ASSERT_EQ(primary_.Reports().size(), 1u);
  ASSERT_EQ(primary_.Reports()[0].kind, Kind::kCaughtUp);
  Write(1);  // 11: c does not acknowledge it in time
  now_ += 1000;
  primary_.Tick(now_, &out_);
  auto reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].kind, Kind::kLagging);
  EXPECT_EQ(reports[0].epoch, 1u);
  EXPECT_EQ(primary_.committed(), 10u);  // still required
  // c catches up: writes go on, but the report stays until a map answers.
  primary_.OnAck("c", Session("c"), 11, true, now_);
  EXPECT_EQ(primary_.committed(), 11u);
  for (int i = 0; i < 100; ++i) {
    now_ += 1000;
    out_ = {};
    primary_.Tick(now_, &out_);
  }
  reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].kind, Kind::kLagging);
  // The answer: the same replicas at a new epoch. c is let go and catches
  // up again from a probe, then is reported at the new epoch.
  out_ = {};
  primary_.SetMap(2, Part({"a", "c"}, {"a"}, 2), now_, &out_);
  EXPECT_EQ(S("c").required_from, PrimaryPartition::kNotRequired);
  EXPECT_TRUE(primary_.Reports().empty());
  ASSERT_EQ(out_.probes.size(), 1u);
  out_ = {};
  primary_.OnState("c", Session("c"), Position{1, 11}, true, false, now_, &out_);
  EXPECT_TRUE(out_.snapshots.empty());  // by tail
  reports = primary_.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].kind, Kind::kCaughtUp);
  EXPECT_EQ(reports[0].epoch, 2u);
}

TEST_F(PrimaryTest, BackupAheadOfTheNewPrimaryIsSnapshotted) {
  // This term started at (1, 10); b holds a record 11 of the old leader
  // that was never committed: it must not be continued from.
  PrimaryPartition p{7, "a", 2, Position{1, 10}, {}};
  p.SetMap(3, Part({"a", "b"}, {"a", "b"}, 3, 2), now_, &out_);
  uint64_t sid = p.sessions()[0].id;
  out_ = {};
  p.OnState("b", sid, Position{1, 11}, true, false, now_, &out_);
  EXPECT_EQ(out_.snapshots, std::vector<std::string>{"b"});
  // A backup of the same seq but another leader's record: snapshot too.
  p.SetMap(3, Part({"a", "c"}, {"a"}, 3, 2), now_, &out_);
  out_ = {};
  sid = p.sessions()[0].id;
  p.OnState("c", sid, Position{9, 10}, true, false, now_, &out_);
  EXPECT_EQ(out_.snapshots, std::vector<std::string>{"c"});
}

TEST_F(PrimaryTest, UnansweredProbesAreResentWithANewSession) {
  primary_.SetMap(1, Part({"a", "b"}, {"a", "b"}), now_, &out_);
  const uint64_t first = Session("b");
  out_ = {};
  now_ += 600;
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  EXPECT_NE(out_.probes[0].second, first);
  // The late answer to the first probe is ignored.
  out_ = {};
  primary_.OnState("b", first, Position{1, 10}, true, false, now_, &out_);
  EXPECT_TRUE(out_.tails.empty());
}

TEST_F(PrimaryTest, BackupThatLostTheThreadIsProbedAgain) {
  primary_.SetMap(1, Part({"a", "b"}, {"a", "b"}), now_, &out_);
  const uint64_t first = Session("b");
  primary_.OnState("b", first, Position{1, 10}, true, false, now_, &out_);
  ASSERT_EQ(S("b").mode, Mode::kTail);
  // A state in the middle of a tail session: the backup saw a gap.
  out_ = {};
  primary_.OnState("b", first, Position{1, 10}, true, false, now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  EXPECT_NE(out_.probes[0].second, first);
  EXPECT_EQ(S("b").mode, Mode::kProbing);
  // Its records were trimmed meanwhile: the new probe ends in a snapshot.
  Write(3);
  primary_.OnTrimmed(13, now_, &out_);
  out_ = {};
  primary_.OnState("b", Session("b"), Position{1, 10}, true, false, now_, &out_);
  EXPECT_EQ(out_.snapshots, std::vector<std::string>{"b"});
}

TEST_F(PrimaryTest, SlowSnapshotEndUnderWritesConvergesWithoutAnotherSnapshot) {
  // The issue-17 livelock: a backup applying a big snapshot acknowledges
  // its end later than the lag timeout while clients keep writing.
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  primary_.OnState("c", Session("c"), Position{0, 0}, true, false, now_, &out_);
  const uint64_t sid = Session("c");
  Write(3);  // 11..13, sent filtered to the keys already sent
  primary_.OnSnapshotEnd("c", sid, 13, now_);
  for (int i = 0; i < 50; ++i) {  // 5 s of writes, no ack from c
    Write(2);
    now_ += 100;
    out_ = {};
    primary_.Tick(now_, &out_);
    EXPECT_TRUE(out_.probes.empty());
    EXPECT_EQ(primary_.committed(), primary_.last().seq);  // nobody waits for c
  }
  EXPECT_TRUE(primary_.Reports().empty());
  EXPECT_EQ(primary_.min_needed(), 14u);  // what c needs after the snapshot is kept
  // c gets through its backlog: the end, then everything but the newest.
  primary_.OnAck("c", sid, 13, true, now_);
  const uint64_t from = primary_.last().seq + 1;
  EXPECT_EQ(S("c").required_from, from);
  Write(1);
  primary_.OnAck("c", sid, from - 1, true, now_);
  EXPECT_EQ(primary_.Reports().size(), 1u);  // caught up
  EXPECT_EQ(primary_.committed(), from - 1);
  primary_.OnAck("c", sid, from, true, now_);
  EXPECT_EQ(primary_.committed(), from);
  EXPECT_EQ(S("c").id, sid);  // one session, one snapshot
}

TEST_F(PrimaryTest, BackupLetGoForLagResumesFromTheTailItLeft) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  // Identical: in sync mode and reported caught up at once.
  primary_.OnState("c", Session("c"), Position{1, 10}, true, false, now_, &out_);
  Write(1);  // 11
  primary_.OnAck("c", Session("c"), 11, true, now_);
  EXPECT_EQ(primary_.min_needed(), 12u);
  // c lags, and the map moves on without taking it in: it is let go.
  Write(2);  // 12, 13, never acknowledged
  now_ += 1000;
  primary_.Tick(now_, &out_);
  out_ = {};
  primary_.SetMap(2, Part({"a", "c"}, {"a"}, 2), now_, &out_);
  EXPECT_NE(S("c").mode, Mode::kTail);
  EXPECT_EQ(primary_.committed(), 13u);  // nothing waits for c
  // Its records are kept for it (it lacks 12 on).
  EXPECT_EQ(primary_.min_needed(), 12u);
  out_ = {};
  now_ += 600;
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  out_ = {};
  primary_.OnState("c", Session("c"), Position{1, 11}, true, false, now_, &out_);
  EXPECT_TRUE(out_.snapshots.empty());
  ASSERT_EQ(out_.tails.size(), 1u);
  EXPECT_EQ(out_.tails[0].second, 12u);
}

TEST_F(PrimaryTest, PausedSessionReleasesItsRecordsAfterTheResumeWindow) {
  PrimaryPartition p{7, "a", 1, Position{1, 10}, {1000, 500, /*resume_window_ms=*/5000}};
  p.SetMap(1, Part({"a", "b"}, {"a"}), now_, &out_);
  for (int i = 0; i < 3; ++i) p.Append(now_);
  p.OnDurable(13);
  // b lacks 11..13: a tail, not yet in sync mode.
  p.OnState("b", p.sessions()[0].id, Position{1, 10}, true, false, now_, &out_);
  EXPECT_EQ(p.sessions()[0].mode, Mode::kTail);
  // The queue to b overflowed: it pauses, needing 11 on.
  p.OnSessionBroken("b", now_, &out_);
  EXPECT_EQ(p.sessions()[0].mode, Mode::kIdle);
  EXPECT_EQ(p.min_needed(), 11u);
  // b stays away (it is dead, say): after the window its records may go.
  for (int t = 0; t < 10; ++t) {
    now_ += 600;
    out_ = {};
    p.Tick(now_, &out_);  // probes unanswered
  }
  EXPECT_EQ(p.min_needed(), 14u);
}

TEST_F(PrimaryTest, TrimmingPastAResumePointMeansASnapshot) {
  primary_.SetMap(1, Part({"a", "b"}, {"a"}), now_, &out_);
  Write(3);
  primary_.OnState("b", Session("b"), Position{1, 10}, true, false, now_, &out_);
  primary_.OnSessionBroken("b", now_, &out_);
  EXPECT_EQ(S("b").mode, Mode::kIdle);
  EXPECT_EQ(primary_.min_needed(), 11u);
  // The node's budget cuts the records b needed.
  primary_.OnTrimmed(12, now_, &out_);
  EXPECT_EQ(primary_.min_needed(), 14u);
  now_ += 600;
  out_ = {};
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  out_ = {};
  primary_.OnState("b", Session("b"), Position{1, 10}, true, false, now_, &out_);
  EXPECT_EQ(out_.snapshots, std::vector<std::string>{"b"});
}

TEST_F(PrimaryTest, SnapshotEndNeverAcknowledgedIsProbedAgain) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  primary_.OnState("c", Session("c"), Position{0, 0}, true, false, now_, &out_);
  Write(1);
  primary_.OnSnapshotEnd("c", Session("c"), 11, now_);
  out_ = {};
  now_ += 9999;
  primary_.Tick(now_, &out_);
  EXPECT_TRUE(out_.probes.empty());
  now_ += 1;
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  // It may resume after the snapshot's end if it holds it.
  EXPECT_EQ(primary_.min_needed(), 12u);
}

TEST_F(PrimaryTest, NewPrimaryKeepsTheRecordsItsBackupsNeedUntilTheyAnswer) {
  // A hand-off: this term starts at (1, 10), where b stands too.
  PrimaryPartition p{7, "a", 2, Position{1, 10}, {}};
  p.SetMap(2, Part({"a", "b"}, {"a", "b"}, 2, 2), now_, &out_);
  for (int i = 0; i < 3; ++i) p.Append(now_);
  p.OnDurable(13);
  // Writes come before b's answer to the probe: kept for it.
  EXPECT_EQ(p.min_needed(), 11u);
  out_ = {};
  p.OnState("b", p.sessions()[0].id, Position{1, 10}, true, false, now_, &out_);
  EXPECT_TRUE(out_.snapshots.empty());
  ASSERT_EQ(out_.tails.size(), 1u);
  EXPECT_EQ(out_.tails[0].second, 11u);
}

TEST_F(PrimaryTest, SnapshotRefusedByABusyTargetIsRetriedAfterAPause) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  const uint64_t sid = Session("c");
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  ASSERT_EQ(S("c").mode, Mode::kSnapshot);
  // c refuses the first chunk (it receives its limit of snapshots): its
  // state comes back in the middle of the snapshot.
  out_ = {};
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  EXPECT_EQ(out_.cancelled, std::vector<std::string>{"c"});  // stop sending chunks
  EXPECT_TRUE(out_.probes.empty());                          // not at once
  EXPECT_EQ(S("c").mode, Mode::kIdle);
  // Late answers of the session change nothing.
  out_ = {};
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  EXPECT_TRUE(out_.empty());
  now_ += 499;
  primary_.Tick(now_, &out_);
  EXPECT_TRUE(out_.probes.empty());
  now_ += 1;
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
}

// A snapshot whose backup stops answering (chunks lost with nothing after
// them to show the gap, a backup that dropped them, a queue that never
// drains) starts over with a probe after stall_ms; the probe frees the
// backup's slot for incoming snapshots.
TEST_F(PrimaryTest, SnapshotWhoseBackupStopsAnsweringStartsOver) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  now_ = 50000;  // long after the probe: the stall counts from the snapshot's start
  const uint64_t sid = Session("c");
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  ASSERT_EQ(S("c").mode, Mode::kSnapshot);
  out_ = {};
  now_ += 9999;
  primary_.Tick(now_, &out_);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(S("c").mode, Mode::kSnapshot);
  now_ += 1;
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
  EXPECT_NE(out_.probes[0].second, sid);
  EXPECT_EQ(out_.cancelled, std::vector<std::string>{"c"});  // its chunks stop
  EXPECT_EQ(S("c").mode, Mode::kProbing);
  // The half-sent snapshot keeps no records: it starts over.
  EXPECT_EQ(primary_.min_needed(), primary_.last().seq + 1);
  // A late ack of the old session changes nothing.
  primary_.OnAck("c", sid, 0, false, now_);
  EXPECT_EQ(S("c").mode, Mode::kProbing);
}

TEST_F(PrimaryTest, SlowSnapshotThatKeepsAcknowledgingIsNotRestarted) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  const uint64_t sid = Session("c");
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  // 60 s of chunks, each applied (acknowledged, incomplete) within 9 s.
  for (int i = 0; i < 60; ++i) {
    now_ += 1000;
    out_ = {};
    primary_.Tick(now_, &out_);
    EXPECT_TRUE(out_.empty()) << i;
    if (i % 9 == 8) primary_.OnAck("c", sid, 0, /*complete=*/false, now_);
  }
  EXPECT_EQ(S("c").mode, Mode::kSnapshot);
  EXPECT_EQ(S("c").id, sid);
}

TEST_F(PrimaryTest, SnapshotHeldBackByThePrimarysRateIsNotTheBackupsStall) {
  primary_.SetMap(1, Part({"a", "c"}, {"a"}), now_, &out_);
  const uint64_t sid = Session("c");
  primary_.OnState("c", sid, Position{0, 0}, true, false, now_, &out_);
  // The backup acknowledged the first chunk; the primary's catch-up rate
  // (shared with other snapshots) then holds the next ones back for 30 s.
  primary_.OnAck("c", sid, 0, false, now_);
  for (int i = 0; i < 30; ++i) {
    now_ += 1000;
    primary_.OnSnapshotHeld("c", sid, now_);
    out_ = {};
    primary_.Tick(now_, &out_);
    EXPECT_TRUE(out_.empty()) << i;
  }
  // Chunks flow again and nothing answers them: a stall from then on.
  now_ += 10000;
  out_ = {};
  primary_.Tick(now_, &out_);
  ASSERT_EQ(out_.probes.size(), 1u);
}

// A chunk lost on a reconnect: the backup sees the gap at the next chunk
// and answers with its state; the chunks after it, and the snapshot's end,
// are already on their way. They must change nothing: an end taken after a
// gap would call a copy that lacks the lost chunk's keys complete.
TEST(BackupTest, AnAbandonedSnapshotIsIgnoredToItsEndAndFreesItsSlot) {
  BackupPartition b(3, {1, Position{1, 4}, true});
  using V = BackupPartition::Verdict;
  ASSERT_EQ(b.OnProbe("a", 1, 5), V::kAccept);
  ASSERT_EQ(b.OnChunk("a", 1, 5, true), V::kAccept);
  EXPECT_TRUE(b.snapshotting());
  b.Abandon(5);                    // the next chunk did not start where the last one ended
  EXPECT_FALSE(b.snapshotting());  // no longer counts against AdmitSnapshot
  EXPECT_TRUE(b.abandoned("a", 1, 5));
  EXPECT_EQ(b.OnChunk("a", 1, 5, false), V::kIgnore);
  EXPECT_EQ(b.OnAppend("a", 1, 5, 20, 1), V::kIgnore);
  EXPECT_EQ(b.OnSnapshotEnd("a", 1, 5, Position{1, 19}), V::kIgnore);
  EXPECT_FALSE(b.state().complete);
  EXPECT_EQ(b.state().applied, (Position{}));
  // Another primary's session of the same number is not this one.
  EXPECT_FALSE(b.abandoned("x", 1, 5));
  // The primary starts over: a new session takes chunks again.
  ASSERT_EQ(b.OnProbe("a", 1, 6), V::kAccept);
  EXPECT_FALSE(b.abandoned("a", 1, 6));
  ASSERT_EQ(b.OnChunk("a", 1, 6, true), V::kAccept);
  EXPECT_EQ(b.OnSnapshotEnd("a", 1, 6, Position{1, 19}), V::kAccept);
  EXPECT_TRUE(b.state().complete);
  // Abandoning an old session number does nothing to the current one.
  b.Abandon(5);
  EXPECT_FALSE(b.abandoned("a", 1, 6));
}

TEST(BackupTest, ARefusedSnapshotIsIgnoredToItsEnd) {
  BackupPartition b(3, {1, Position{1, 4}, true});
  using V = BackupPartition::Verdict;
  ASSERT_EQ(b.OnProbe("a", 1, 5), V::kAccept);
  b.Abandon(5);  // its first chunk refused: too many snapshots at once
  EXPECT_FALSE(b.snapshotting());
  EXPECT_EQ(b.OnSnapshotEnd("a", 1, 5, Position{1, 19}), V::kIgnore);
  EXPECT_TRUE(b.state().complete);  // untouched
  EXPECT_EQ(b.state().applied, (Position{1, 4}));
}

TEST(BackupTest, TakesAFewSnapshotsAtOnce) {
  EXPECT_TRUE(BackupPartition::AdmitSnapshot(0, 2));
  EXPECT_TRUE(BackupPartition::AdmitSnapshot(1, 2));
  EXPECT_FALSE(BackupPartition::AdmitSnapshot(2, 2));
  BackupPartition b{3, {}};
  EXPECT_FALSE(b.snapshotting());
  ASSERT_EQ(b.OnProbe("a", 1, 5), BackupPartition::Verdict::kAccept);
  ASSERT_EQ(b.OnChunk("a", 1, 5, true), BackupPartition::Verdict::kAccept);
  EXPECT_TRUE(b.snapshotting());
  // A new probe (the primary starts over) frees the slot.
  ASSERT_EQ(b.OnProbe("a", 1, 6), BackupPartition::Verdict::kAccept);
  EXPECT_FALSE(b.snapshotting());
}

TEST_F(PrimaryTest, RemovedReplicaSessionIsCancelled) {
  primary_.SetMap(1, Part({"a", "b"}, {"a", "b"}), now_, &out_);
  Write(1);
  out_ = {};
  primary_.SetMap(2, Part({"a"}, {"a"}, 2), now_, &out_);
  EXPECT_EQ(out_.cancelled, std::vector<std::string>{"b"});
  EXPECT_EQ(primary_.committed(), 11u);
}

TEST(BackupTest, AcceptsOnlyTheCurrentSessionInOrder) {
  BackupPartition b(3, {/*leader_epoch=*/1, Position{1, 10}, true});
  using V = BackupPartition::Verdict;
  // No session yet: resync.
  EXPECT_EQ(b.OnAppend("a", 1, 5, 11, 1), V::kResync);
  EXPECT_EQ(b.OnProbe("a", 1, 5), V::kAccept);
  EXPECT_EQ(b.OnAppend("a", 1, 5, 11, 2), V::kAccept);
  EXPECT_EQ(b.state().applied, (Position{1, 12}));
  // A gap.
  EXPECT_EQ(b.OnAppend("a", 1, 5, 14, 1), V::kResync);
  // An older session of the same primary: ignored.
  EXPECT_EQ(b.OnAppend("a", 1, 4, 13, 1), V::kIgnore);
  // Someone else at the same epoch: resync.
  EXPECT_EQ(b.OnAppend("x", 1, 5, 13, 1), V::kResync);
  // A new leader epoch ends the session; the old leader is refused.
  b.RaiseLeaderEpoch(3);
  EXPECT_EQ(b.OnAppend("a", 1, 5, 13, 1), V::kResync);
  EXPECT_EQ(b.OnProbe("a", 2, 6), V::kResync);
  EXPECT_EQ(b.OnProbe("c", 3, 1), V::kAccept);
  EXPECT_EQ(b.OnAppend("c", 3, 1, 13, 1), V::kAccept);
  EXPECT_EQ(b.state().applied, (Position{3, 13}));
  EXPECT_EQ(b.state().leader_epoch, 3u);
}

TEST(BackupTest, SnapshotMarksTheCopyIncompleteUntilItsEnd) {
  BackupPartition b(3, {1, Position{1, 4}, true});
  using V = BackupPartition::Verdict;
  ASSERT_EQ(b.OnProbe("a", 2, 1), V::kAccept);
  EXPECT_EQ(b.OnChunk("a", 2, 1, /*first=*/false), V::kResync);  // must start at the start
  EXPECT_EQ(b.OnChunk("a", 2, 1, true), V::kAccept);
  EXPECT_FALSE(b.state().complete);
  EXPECT_EQ(b.OnAppend("a", 2, 1, 40, 2), V::kAccept);  // the primary's numbering
  EXPECT_EQ(b.OnChunk("a", 2, 1, false), V::kAccept);
  EXPECT_EQ(b.OnAppend("a", 2, 1, 42, 1), V::kAccept);
  EXPECT_EQ(b.OnSnapshotEnd("a", 2, 1, Position{2, 43}), V::kResync);  // 43 never came
  EXPECT_FALSE(b.state().complete);
}

TEST(BackupTest, SnapshotEndCompletesTheCopy) {
  BackupPartition b(3, {1, Position{1, 4}, true});
  using V = BackupPartition::Verdict;
  ASSERT_EQ(b.OnProbe("a", 2, 1), V::kAccept);
  ASSERT_EQ(b.OnChunk("a", 2, 1, true), V::kAccept);
  ASSERT_EQ(b.OnAppend("a", 2, 1, 40, 2), V::kAccept);
  EXPECT_EQ(b.OnSnapshotEnd("a", 2, 1, Position{2, 41}), V::kAccept);
  EXPECT_TRUE(b.state().complete);
  EXPECT_EQ(b.state().applied, (Position{2, 41}));
  EXPECT_EQ(b.OnAppend("a", 2, 1, 42, 1), V::kAccept);
}

TEST(ReplWire, RoundTripsEveryMessage) {
  msgpack::sbuffer buf;
  EncodeProbe(buf, 3, 7, 9);
  EncodeState(buf, 3, 7, 9, 6, 100, true, false);
  BeginAppend(buf, 4, 7, 9, 101, 2);
  AppendRecord(buf, "rec1");
  AppendRecord(buf, std::string("r\0c2", 4));
  EncodeAck(buf, 4, 7, 9, 102, true);
  BeginChunk(buf, 5, 7, 9, true, "from", "", 1);
  AppendRecord(buf, "k");
  AppendRecord(buf, "v");
  EncodeEnd(buf, 5, 7, 9, 7, 102);
  std::vector<ReplMessage> msgs;
  ASSERT_TRUE(DecodeReplFrame(std::string_view(buf.data(), buf.size()), &msgs).ok());
  ASSERT_EQ(msgs.size(), 6u);
  EXPECT_EQ(msgs[0].type, ReplType::kProbe);
  EXPECT_EQ(msgs[0].partition, 3u);
  EXPECT_EQ(msgs[0].leader_epoch, 7u);
  EXPECT_EQ(msgs[0].session, 9u);
  EXPECT_EQ(msgs[1].type, ReplType::kState);
  EXPECT_EQ(msgs[1].a, 6u);
  EXPECT_EQ(msgs[1].b, 100u);
  EXPECT_TRUE(msgs[1].flag1);
  EXPECT_FALSE(msgs[1].flag2);
  EXPECT_EQ(msgs[2].type, ReplType::kAppend);
  EXPECT_EQ(msgs[2].b, 101u);
  ASSERT_EQ(msgs[2].items.size(), 2u);
  EXPECT_EQ(msgs[2].items[1], std::string_view("r\0c2", 4));
  EXPECT_EQ(msgs[3].type, ReplType::kAck);
  EXPECT_EQ(msgs[3].b, 102u);
  EXPECT_EQ(msgs[4].type, ReplType::kChunk);
  EXPECT_TRUE(msgs[4].flag1);
  EXPECT_EQ(msgs[4].from, "from");
  EXPECT_EQ(msgs[4].to, "");
  ASSERT_EQ(msgs[4].items.size(), 2u);
  EXPECT_EQ(msgs[5].type, ReplType::kEnd);
  EXPECT_EQ(msgs[5].b, 102u);
}

TEST(ReplWire, RefusesGarbage) {
  std::vector<ReplMessage> msgs;
  EXPECT_FALSE(DecodeReplFrame("\xc1", &msgs).ok());
  EXPECT_FALSE(DecodeReplFrame("\x93\x01\x02\x03", &msgs).ok());  // 3 fields
  msgpack::sbuffer buf;
  EncodeProbe(buf, 3, 7, 9);
  std::string s(buf.data(), buf.size());
  s[1] = 9;  // unknown type
  EXPECT_FALSE(DecodeReplFrame(s, &msgs).ok());
  EXPECT_FALSE(DecodeReplFrame(std::string(buf.data(), buf.size() - 1), &msgs).ok());
}

}  // namespace
}  // namespace todo::cluster
