// The controller's decisions, driven deterministically: a fake map store
// (compare-and-swap on a revision, like etcd's), a fake clock, and the
// alive set and reports given by hand.
#include "common/cluster/controller.h"

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <set>

namespace todo::cluster {
namespace {

// A node's report holding one request about one replica.
NodeReport OneReport(const std::string& from, ReplicaReport::Kind kind, uint32_t partition,
                     const std::string& replica, uint64_t epoch) {
  return NodeReport{from, {ReplicaReport{kind, partition, replica, epoch}}};
}

// The map as etcd would hold it: changed only by compare-and-swap.
class FakeMapStore {
 public:
  explicit FakeMapStore(ClusterMap m) : map_(std::move(m)) {}
  std::pair<ClusterMap, uint64_t> Read() const { return {map_, revision_}; }
  bool Cas(uint64_t expected, const ClusterMap& next) {
    if (expected != revision_) return false;
    EXPECT_TRUE(Validate(next).ok()) << Validate(next).message();
    map_ = next;
    ++revision_;
    return true;
  }
  const ClusterMap& map() const { return map_; }

 private:
  ClusterMap map_;
  uint64_t revision_ = 1;
};

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = NewClusterMap({"n1", "n2", "n3"}, 12, 2, 1);
    ASSERT_TRUE(m.ok());
    store_ = std::make_unique<FakeMapStore>(*m);
    for (const char* n : {"n1", "n2", "n3"}) Alive(n, std::string("data-") + n);
  }

  void Alive(const std::string& n, const std::string& data_id, const std::string& inc = "1") {
    in_.alive[n] = NodeInfo{n, data_id, inc, "tcp://" + n, "tcp://" + n + "-repl", ""};
  }
  void Dead(const std::string& n) { in_.alive.erase(n); }

  // One round of the controller: read, decide, compare-and-swap.
  Controller::Decision Step() {
    auto [map, rev] = store_->Read();
    Controller::Decision d = controller_.Decide(map, in_);
    if (d.next) {
      EXPECT_TRUE(store_->Cas(rev, *d.next));
    }
    return d;
  }
  // Rounds until nothing changes (bounded).
  void Settle() {
    for (int i = 0; i < 10; ++i) {
      if (!Step().next) return;
    }
    FAIL() << "the controller did not settle";
  }
  const ClusterMap& map() const { return store_->map(); }

  Controller controller_{ControllerOptions{10000}, /*started_ms=*/0};
  std::unique_ptr<FakeMapStore> store_;
  ControllerInput in_;
};

TEST_F(ControllerTest, JoiningRecordsDataIdsOnce) {
  in_.now_ms = 1;
  auto d = Step();
  ASSERT_TRUE(d.next);
  for (const Member& m : map().members) EXPECT_EQ(m.data_id, "data-" + m.name);
  for (const Partition& p : map().parts) EXPECT_EQ(p.epoch, 1u);  // members only
  EXPECT_FALSE(Step().next);
}

TEST_F(ControllerTest, EachNewIncarnationIsRecordedWithoutTouchingPartitions) {
  Settle();
  EXPECT_EQ(map().FindMember("n2")->incarnation, "1");
  const ClusterMap before = map();
  // n2 lost its lease and got another before anyone saw it gone: only its
  // incarnation changes (it serves again once the map names it).
  Alive("n2", "data-n2", "2");
  auto d = Step();
  ASSERT_TRUE(d.next);
  EXPECT_EQ(map().FindMember("n2")->incarnation, "2");
  EXPECT_EQ(map().parts, before.parts);
  // Dead, then back under a third lease: failed over meanwhile, and the new
  // incarnation recorded after that.
  Dead("n2");
  Settle();
  Alive("n2", "data-n2", "3");
  Settle();
  EXPECT_EQ(map().FindMember("n2")->incarnation, "3");
  for (const Partition& p : map().parts) EXPECT_NE(p.primary(), "n2");
}

TEST_F(ControllerTest, FailoverPromotesAnInSyncBackupAndRaisesEpochs) {
  Settle();
  const ClusterMap before = map();
  Dead("n1");
  Settle();
  for (size_t p = 0; p < map().parts.size(); ++p) {
    const Partition& was = before.parts[p];
    const Partition& now = map().parts[p];
    if (!was.HasReplica("n1")) {
      EXPECT_EQ(now, was) << p;  // untouched
      continue;
    }
    EXPECT_FALSE(now.HasReplica("n1")) << p;
    EXPECT_NE(now.primary(), "n1");
    EXPECT_TRUE(now.IsInSync(now.primary())) << p;
    EXPECT_GT(now.epoch, was.epoch);
    if (was.primary() == "n1") {
      EXPECT_EQ(now.leader_epoch, now.epoch) << p;     // a new primary
      EXPECT_EQ(now.primary(), was.replicas[1]) << p;  // the in-sync backup
    } else {
      EXPECT_EQ(now.leader_epoch, was.leader_epoch) << p;
    }
    // Repair: back to 2 replicas on the two live members, the new one not
    // in sync yet.
    EXPECT_EQ(now.replicas.size(), 2u) << p;
    EXPECT_EQ(now.in_sync.size(), 1u) << p;
  }
}

TEST_F(ControllerTest, NeverPromotesAReplicaThatIsNotInSync) {
  Settle();
  // Partition 0: its backup falls out of sync (the primary reports it).
  const Partition p0 = map().parts[0];
  const std::string primary = p0.primary(), backup = p0.replicas[1];
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kLagging, 0, backup, p0.epoch)};
  Settle();
  EXPECT_EQ(map().parts[0].in_sync, std::vector<std::string>{primary});
  in_.reports.clear();
  // The primary dies: the backup is alive but not in sync: no failover.
  Dead(primary);
  Settle();
  const Partition& now = map().parts[0];
  EXPECT_EQ(now.primary(), primary);  // stays: unavailable until it returns
  EXPECT_EQ(now.in_sync, std::vector<std::string>{primary});
  // It returns with its data: nothing to change but what others need.
  Alive(primary, "data-" + primary);
  Settle();
  EXPECT_EQ(map().parts[0].primary(), primary);
}

TEST_F(ControllerTest, CaughtUpReportsPutAReplicaBackInSync) {
  Settle();
  const Partition p3 = map().parts[3];
  const std::string primary = p3.primary(), backup = p3.replicas[1];
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kLagging, 3, backup, p3.epoch)};
  Settle();
  const uint64_t e = map().parts[3].epoch;
  // A stale report (old epoch) changes nothing.
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kCaughtUp, 3, backup, e - 1)};
  EXPECT_FALSE(Step().next);
  // A report from a node that is not the primary changes nothing.
  in_.reports = {OneReport(backup, ReplicaReport::Kind::kCaughtUp, 3, backup, e)};
  EXPECT_FALSE(Step().next);
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kCaughtUp, 3, backup, e)};
  Settle();
  EXPECT_EQ(map().parts[3].in_sync, map().parts[3].replicas);
  EXPECT_EQ(map().parts[3].epoch, e + 1);
  EXPECT_EQ(map().parts[3].leader_epoch, p3.leader_epoch);
}

// A primary reported a backup caught up, then lagging before a map took
// it in (the kCaughtUp report was replaced before this controller read
// it). The primary holds the backup required until a map answers, and
// reports it lagging until then: the answer is the partition at a new
// epoch, nothing else changed. Without it the primary waits for ever, and
// a move to that backup never ends (python_smart_client_e2e's flake).
TEST_F(ControllerTest, ALaggingReportOfAReplicaNotInSyncIsAnsweredWithANewEpoch) {
  Settle();
  const Partition p3 = map().parts[3];
  const std::string primary = p3.primary(), backup = p3.replicas[1];
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kLagging, 3, backup, p3.epoch)};
  Settle();
  const Partition out = map().parts[3];
  ASSERT_FALSE(out.IsInSync(backup));
  in_.reports = {OneReport(primary, ReplicaReport::Kind::kLagging, 3, backup, out.epoch)};
  ASSERT_TRUE(Step().next);
  const Partition& now = map().parts[3];
  EXPECT_EQ(now.epoch, out.epoch + 1);
  EXPECT_EQ(now.leader_epoch, out.leader_epoch);
  EXPECT_EQ(now.replicas, out.replicas);
  EXPECT_EQ(now.in_sync, out.in_sync);
  // The same report is stale now: nothing more.
  EXPECT_FALSE(Step().next);
  // Nor from a node that is not the primary.
  in_.reports = {OneReport(backup, ReplicaReport::Kind::kLagging, 3, backup, now.epoch)};
  EXPECT_FALSE(Step().next);
}

TEST_F(ControllerTest, BothReplicasDeadKeepsTheInSyncOnes) {
  Settle();
  Dead("n1");
  Dead("n2");
  Settle();
  for (const Partition& p : map().parts) {
    // Every partition keeps at least one in-sync replica; where both of its
    // replicas were n1 and n2, both stay named.
    ASSERT_FALSE(p.in_sync.empty());
    if (!p.HasReplica("n3")) {
      EXPECT_EQ(p.replicas.size(), 2u);
      EXPECT_EQ(p.in_sync.size(), 2u);
    } else {
      EXPECT_EQ(p.primary(), "n3");
    }
  }
  // n2 returns: it takes over what it held in sync, and repair follows.
  Alive("n2", "data-n2");
  Settle();
  for (const Partition& p : map().parts) {
    EXPECT_TRUE(p.IsInSync(p.primary()));
    EXPECT_FALSE(p.HasReplica("n1"));
  }
}

TEST_F(ControllerTest, AWipedNodeLosesWhatItHeld) {
  Settle();
  // n1 restarts with an empty data dir (a new data id) before its lease
  // expired: it must not be trusted with anything.
  Alive("n1", "data-n1-wiped");
  auto d = Step();
  ASSERT_TRUE(d.next);
  Settle();
  EXPECT_EQ(map().FindMember("n1")->data_id, "data-n1-wiped");
  for (const Partition& p : map().parts) {
    EXPECT_NE(p.primary(), "n1");
    EXPECT_FALSE(p.IsInSync("n1"));
  }
}

TEST_F(ControllerTest, MembersThatNeverJoinedGetAGracePeriod) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 6, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Dead("n3");  // still starting
  in_.now_ms = 5000;
  auto d = Step();
  EXPECT_EQ(d.recheck_at_ms, 10000);
  Settle();
  for (const Partition& p : map().parts) EXPECT_EQ(p.epoch, 1u);  // nothing failed over
  in_.now_ms = 10000;  // the grace is over: n3 counts as dead
  Settle();
  for (const Partition& p : map().parts) EXPECT_FALSE(p.HasReplica("n3"));
}

TEST_F(ControllerTest, RepairSpreadsNewReplicasOverTheLeastLoaded) {
  auto m = NewClusterMap({"n1", "n2", "n3", "n4"}, 64, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Alive("n4", "data-n4");
  Settle();
  Dead("n4");
  Settle();
  std::map<std::string, int> held;
  for (const Partition& p : map().parts) {
    EXPECT_EQ(p.replicas.size(), 2u);
    for (const auto& r : p.replicas) ++held[r];
  }
  EXPECT_EQ(held.count("n4"), 0u);
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_GE(held[n], 42) << n;
    EXPECT_LE(held[n], 44) << n;
  }
}

// Moves in progress in a map: data moves (a new replica catching up, then
// maybe a hand-off) and leadership-only hand-offs.
struct MoveCounts {
  size_t moving = 0;
  size_t handing_off = 0;
};
MoveCounts CountMoves(const ClusterMap& map) {
  MoveCounts c;
  for (const Partition& p : map.parts) {
    if (!p.move_to.empty()) {
      ++c.moving;
    } else if (!p.handoff.empty()) {
      ++c.handing_off;
    }
  }
  return c;
}

// What the primaries of `m` report when every replica not in sync has
// caught up and every hand-off has drained.
std::vector<NodeReport> PrimariesReports(const ClusterMap& m) {
  std::map<std::string, std::vector<ReplicaReport>> by_primary;
  for (size_t p = 0; p < m.parts.size(); ++p) {
    const Partition& part = m.parts[p];
    for (const std::string& r : part.replicas) {
      if (!part.IsInSync(r)) {
        by_primary[part.primary()].push_back(
            {ReplicaReport::Kind::kCaughtUp, static_cast<uint32_t>(p), r, part.epoch});
      }
    }
    if (!part.handoff.empty()) {
      by_primary[part.primary()].push_back(
          {ReplicaReport::Kind::kDrained, static_cast<uint32_t>(p), part.handoff, part.epoch});
    }
  }
  std::vector<NodeReport> reports;
  for (auto& [n, r] : by_primary) reports.push_back(NodeReport{n, r});
  return reports;
}

// Every partition at R = 2 in-sync replicas with no move left, and each of
// `names` leading [lead_lo, lead_hi] partitions and holding [held_lo,
// held_hi] copies (held unchecked if held_hi is 0).
void ExpectBalancedOver(const ClusterMap& m, std::initializer_list<const char*> names, int lead_lo,
                        int lead_hi, int held_lo = 0, int held_hi = 0) {
  std::map<std::string, int> led, held;
  for (const Partition& p : m.parts) {
    EXPECT_EQ(p.replicas.size(), 2u);
    EXPECT_EQ(p.in_sync, p.replicas);
    EXPECT_TRUE(p.move_to.empty() && p.handoff.empty());
    ++led[p.primary()];
    for (const auto& r : p.replicas) ++held[r];
  }
  EXPECT_EQ(held.size(), names.size()) << "copies on members outside the expected ones";
  for (const char* n : names) {
    EXPECT_GE(led[n], lead_lo) << n;
    EXPECT_LE(led[n], lead_hi) << n;
    if (held_hi == 0) continue;
    EXPECT_GE(held[n], held_lo) << n;
    EXPECT_LE(held[n], held_hi) << n;
  }
}

// Plays the primaries: every replica not in sync has caught up, every
// hand-off has drained. Rounds until the map stops changing (bounded).
void PlayPrimaries(ControllerTest* t, std::function<ClusterMap()> map,
                   std::function<void(std::vector<NodeReport>)> report,
                   std::function<bool()> step) {
  for (int round = 0; round < 400; ++round) {
    std::vector<NodeReport> reports = PrimariesReports(map());
    report(reports);
    if (!step() && reports.empty()) return;
  }
  ADD_FAILURE() << "moves did not finish";
  (void)t;
}

TEST_F(ControllerTest, AddingAMemberMovesPartitionsUntilBalanced) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 64, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Settle();
  // n4 becomes a member (todo-admin add-node) and starts.
  ClusterMap added = map();
  added.members.push_back(Member{"n4", "", "", false});
  added.version += 1;
  ASSERT_TRUE(store_->Cas(store_->Read().second, added));
  Alive("n4", "data-n4");
  size_t max_moving = 0, max_handing_off = 0;
  PlayPrimaries(
      this, [&] { return map(); }, [&](std::vector<NodeReport> r) { in_.reports = std::move(r); },
      [&] {
        bool changed = Step().next.has_value();
        const MoveCounts c = CountMoves(map());
        max_moving = std::max(max_moving, c.moving);
        max_handing_off = std::max(max_handing_off, c.handing_off);
        return changed;
      });
  EXPECT_EQ(max_moving, ControllerOptions{}.max_moves);
  EXPECT_LE(max_handing_off, ControllerOptions{}.max_handoffs);
  // 64/4 = 16 primaries each (+-10%), 128/4 = 32 copies.
  ExpectBalancedOver(map(), {"n1", "n2", "n3", "n4"}, 15, 17, 31, 33);
}

// A member back after a failure holds in-sync copies but leads nothing:
// leadership-only moves copy no data, so they start together (up to
// max_handoffs) instead of one per map version, while data moves stay at
// max_moves.
TEST_F(ControllerTest, LeadershipComesBackInOneRoundWithinMaxHandoffs) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 48, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Settle();
  // Every partition n1 leads hands its role to its backup, as a failover
  // would, but n1 keeps an in-sync copy (it came back in time).
  ClusterMap led_elsewhere = map();
  size_t n1_led = 0;
  for (Partition& p : led_elsewhere.parts) {
    if (p.primary() != "n1") continue;
    ++n1_led;
    std::swap(p.replicas[0], p.replicas[1]);
    p.in_sync = p.replicas;
    p.epoch += 1;
    p.leader_epoch = p.epoch;
  }
  ASSERT_GE(n1_led, 10u);
  led_elsewhere.version += 1;
  ASSERT_TRUE(store_->Cas(store_->Read().second, led_elsewhere));

  auto hand_offs_go_to_n1 = [](const ClusterMap& map) {
    for (const Partition& p : map.parts) {
      if (!p.handoff.empty()) {
        EXPECT_EQ(p.handoff, "n1");
      }
    }
  };
  // Default options: every hand-off n1 needs starts in the first round.
  ASSERT_TRUE(Step().next);
  MoveCounts c = CountMoves(map());
  EXPECT_EQ(c.moving, 0u);
  EXPECT_GE(c.handing_off, 48u / 3 - 2);  // n1's share, P/N within the planner's slack
  EXPECT_LE(c.handing_off, ControllerOptions{}.max_handoffs);
  hand_offs_go_to_n1(map());

  // With max_handoffs 3, only three at a time (the rest follow as they drain).
  ControllerOptions narrow;
  narrow.max_handoffs = 3;
  Controller::Decision d = Controller(narrow, 0).Decide(led_elsewhere, in_);
  ASSERT_TRUE(d.next);
  c = CountMoves(*d.next);
  EXPECT_EQ(c.handing_off, 3u);
  EXPECT_EQ(c.moving, 0u);
  hand_offs_go_to_n1(*d.next);
}

TEST_F(ControllerTest, RemovingAMemberDrainsItThenItLeaves) {
  auto m = NewClusterMap({"n1", "n2", "n3", "n4"}, 64, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Alive("n4", "data-n4");
  Settle();
  ClusterMap leaving = map();
  leaving.FindMember("n2")->leaving = true;
  leaving.version += 1;
  ASSERT_TRUE(store_->Cas(store_->Read().second, leaving));
  PlayPrimaries(
      this, [&] { return map(); }, [&](std::vector<NodeReport> r) { in_.reports = std::move(r); },
      [&] { return Step().next.has_value(); });
  EXPECT_EQ(map().FindMember("n2"), nullptr);
  ExpectBalancedOver(map(), {"n1", "n3", "n4"}, 20, 23);  // 64/3 each, none on n2
}

// Membership changes overlap (todo-admin takes a removal while an add's
// moves run): n4 is added, and while its moves run n1 is removed, then added
// back (its removal called off), then removed again. Every step is planned from
// the map as it stands; the end is balanced over n2, n3, n4 with every
// partition at R in-sync replicas.
TEST_F(ControllerTest, OverlappingChangesEndBalancedForTheLastMap) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 64, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Settle();
  auto change = [&](const std::function<void(ClusterMap*)>& f) {
    ClusterMap next = map();
    f(&next);
    next.version += 1;
    ASSERT_TRUE(store_->Cas(store_->Read().second, next));
  };
  auto set_leaving = [&](bool leaving) {
    change([&](ClusterMap* c) { c->FindMember("n1")->leaving = leaving; });
  };
  auto moves = [&] {
    const MoveCounts c = CountMoves(map());
    return c.moving + c.handing_off;
  };
  // One round of the primaries' reports, then one controller step.
  auto round = [&] {
    in_.reports = PrimariesReports(map());
    Step();
  };
  change([](ClusterMap* c) { c->members.push_back(Member{"n4", "", "", false, true}); });
  Alive("n4", "data-n4");
  Step();  // n4 joins
  Step();  // its moves start
  ASSERT_GT(moves(), 0u);
  EXPECT_TRUE(map().FindMember("n4")->adding) << "still being added while its moves run";
  set_leaving(true);
  round();
  round();
  ASSERT_TRUE(map().FindMember("n1") != nullptr);
  set_leaving(false);  // add-node n1 while it drains: the removal is called off
  round();
  EXPECT_TRUE(map().FindMember("n1") != nullptr && !map().FindMember("n1")->leaving);
  set_leaving(true);
  PlayPrimaries(
      this, [&] { return map(); }, [&](std::vector<NodeReport> r) { in_.reports = std::move(r); },
      [&] { return Step().next.has_value(); });
  EXPECT_EQ(map().FindMember("n1"), nullptr) << "n1 drained and left";
  EXPECT_FALSE(map().FindMember("n4")->adding) << "balanced with n4: its add is over";
  ExpectBalancedOver(map(), {"n2", "n3", "n4"}, 20, 23, 42, 44);  // 64/3 and 128/3, none on n1
}

// `adding` (set by todo-admin add-node, which refuses a second add while
// it is set) lasts while the member has not run and while its moves run;
// the controller clears it once the cluster is balanced with the member, or
// at once if the member dies.
TEST_F(ControllerTest, AnAddIsOverOnceBalancedOrTheMemberIsDown) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 32, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Settle();
  auto add = [&](const std::string& name) {
    ClusterMap next = map();
    next.members.push_back(Member{name, "", "", false, true});
    next.version += 1;
    ASSERT_TRUE(store_->Cas(store_->Read().second, next));
  };
  add("n4");
  Step();
  EXPECT_TRUE(map().FindMember("n4")->adding) << "not run yet";
  Alive("n4", "data-n4");
  Step();
  Step();
  EXPECT_TRUE(map().FindMember("n4")->adding) << "its moves run";
  PlayPrimaries(
      this, [&] { return map(); }, [&](std::vector<NodeReport> r) { in_.reports = std::move(r); },
      [&] { return Step().next.has_value(); });
  EXPECT_FALSE(map().FindMember("n4")->adding);
  // A member that dies while being added: the add is over (repair's turn).
  add("n5");
  Alive("n5", "data-n5");
  Step();
  Step();
  EXPECT_TRUE(map().FindMember("n5")->adding);
  Dead("n5");
  Settle();
  EXPECT_FALSE(map().FindMember("n5")->adding);
}

TEST_F(ControllerTest, AMoveWhoseNewReplicaDiesIsAbandoned) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 16, 2, 1);
  ASSERT_TRUE(m.ok());
  store_ = std::make_unique<FakeMapStore>(*m);
  Settle();
  ClusterMap added = map();
  added.members.push_back(Member{"n4", "", "", false});
  ASSERT_TRUE(store_->Cas(store_->Read().second, added));
  Alive("n4", "data-n4");
  Step();  // n4 joins
  Step();  // moves start
  size_t moving = 0;
  for (const Partition& p : map().parts) moving += p.move_to == "n4" ? 1 : 0;
  ASSERT_GT(moving, 0u);
  Dead("n4");
  Settle();
  for (const Partition& p : map().parts) {
    EXPECT_FALSE(p.HasReplica("n4"));
    EXPECT_TRUE(p.move_to.empty());
    EXPECT_EQ(p.replicas.size(), 2u);
    EXPECT_EQ(p.in_sync, p.replicas);  // the old replicas never left
  }
}

TEST_F(ControllerTest, AHandOffWaitsForTheDrainAndRaisesTheLeaderEpoch) {
  Settle();
  const Partition p0 = map().parts[0];
  ClusterMap h = map();
  h.parts[0].handoff = p0.replicas[1];
  h.parts[0].epoch += 1;
  ASSERT_TRUE(store_->Cas(store_->Read().second, h));
  // Without the drained report the primary stays (the balancer may act on
  // other partitions meanwhile).
  Step();
  EXPECT_EQ(map().parts[0].primary(), p0.primary());
  EXPECT_EQ(map().parts[0].handoff, p0.replicas[1]);
  h.parts[0].epoch = map().parts[0].epoch;
  in_.reports = {
      OneReport(p0.primary(), ReplicaReport::Kind::kDrained, 0, p0.replicas[1], h.parts[0].epoch)};
  ASSERT_TRUE(Step().next);
  const Partition& now = map().parts[0];
  EXPECT_EQ(now.primary(), p0.replicas[1]);
  EXPECT_TRUE(now.HasReplica(p0.primary()));  // a role move: it stays, a backup
  EXPECT_EQ(now.leader_epoch, now.epoch);
  // The hand-off asked for is done; with the move slot free again the
  // balancer may start the next one at once (with --max-moves 1 it hands
  // this partition back to its old primary): never to the new primary.
  EXPECT_NE(now.handoff, now.primary());
  if (!now.handoff.empty()) {
    EXPECT_EQ(now.handoff, p0.primary()) << now.handoff;
  }
}

TEST_F(ControllerTest, CasLosesToAConcurrentWriter) {
  Settle();
  auto [map1, rev1] = store_->Read();
  Dead("n2");
  auto d = controller_.Decide(map1, in_);
  ASSERT_TRUE(d.next);
  // Someone else changed the map first: the stale decision can't be applied.
  ClusterMap other = map1;
  other.version += 1;
  ASSERT_TRUE(store_->Cas(rev1, other));
  EXPECT_FALSE(store_->Cas(rev1, *d.next));
  Settle();  // re-read, decide again
  for (const Partition& p : map().parts) EXPECT_FALSE(p.HasReplica("n2"));
}

}  // namespace
}  // namespace todo::cluster
