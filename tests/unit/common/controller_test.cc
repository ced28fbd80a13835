// The controller's decisions, driven deterministically: a fake map store
// (compare-and-swap on a revision, like etcd's), a fake clock, and the
// alive set and reports given by hand.
#include "common/cluster/controller.h"

#include <gtest/gtest.h>

#include <set>

namespace todo::cluster {
namespace {

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

  void Alive(const std::string& n, const std::string& data_id) {
    in_.alive[n] = NodeInfo{n, data_id, "tcp://" + n, "tcp://" + n + "-repl"};
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
  in_.reports = {
      NodeReport{primary, {ReplicaReport{ReplicaReport::Kind::kLagging, 0, backup, p0.epoch}}}};
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
  in_.reports = {
      NodeReport{primary, {ReplicaReport{ReplicaReport::Kind::kLagging, 3, backup, p3.epoch}}}};
  Settle();
  const uint64_t e = map().parts[3].epoch;
  // A stale report (old epoch) changes nothing.
  in_.reports = {
      NodeReport{primary, {ReplicaReport{ReplicaReport::Kind::kCaughtUp, 3, backup, e - 1}}}};
  EXPECT_FALSE(Step().next);
  // A report from a node that is not the primary changes nothing.
  in_.reports = {NodeReport{backup, {ReplicaReport{ReplicaReport::Kind::kCaughtUp, 3, backup, e}}}};
  EXPECT_FALSE(Step().next);
  in_.reports = {
      NodeReport{primary, {ReplicaReport{ReplicaReport::Kind::kCaughtUp, 3, backup, e}}}};
  Settle();
  EXPECT_EQ(map().parts[3].in_sync, map().parts[3].replicas);
  EXPECT_EQ(map().parts[3].epoch, e + 1);
  EXPECT_EQ(map().parts[3].leader_epoch, p3.leader_epoch);
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
