// common/cluster/health.h: each partition's state and the cluster's counts
// (what the router's /metrics exports as todo_cluster_* gauges).
#include "common/cluster/health.h"

#include <gtest/gtest.h>

#include <set>

namespace todo::cluster {
namespace {

ClusterMap Joined(std::vector<std::string> names, uint32_t partitions) {
  auto m = NewClusterMap(names, partitions, 2, 1);
  EXPECT_TRUE(m.ok());
  for (Member& mb : m->members) mb.data_id = "data-" + mb.name;
  return *m;
}

AliveFn AliveSet(std::set<std::string> alive) {
  return [alive = std::move(alive)](const std::string& n) { return alive.contains(n); };
}

size_t Count(const ClusterHealth& h, PartitionState s) {
  return h.partitions_by_state[static_cast<size_t>(s)];
}

TEST(HealthTest, ANewBalancedClusterIsAllOk) {
  const ClusterMap m = Joined({"n1", "n2", "n3"}, 12);
  const ClusterHealth h = SummarizeHealth(m, AliveSet({"n1", "n2", "n3"}));
  EXPECT_EQ(h.members, 3u);
  EXPECT_EQ(h.members_alive, 3u);
  EXPECT_EQ(Count(h, PartitionState::kOk), 12u);
  EXPECT_EQ(h.replicas_not_in_sync, 0u);
  EXPECT_EQ(h.moves_in_progress, 0u);
  EXPECT_EQ(h.moves_remaining, 0u);
  EXPECT_TRUE(h.balanced());
}

TEST(HealthTest, ADeadPrimaryMakesItsPartitionsUnavailableAndOthersUnderReplicated) {
  const ClusterMap m = Joined({"n1", "n2", "n3"}, 12);
  const ClusterHealth h = SummarizeHealth(m, AliveSet({"n2", "n3"}));
  size_t led = 0, held = 0;
  for (const Partition& p : m.parts) {
    led += p.primary() == "n1";
    held += p.HasReplica("n1") && p.primary() != "n1";
  }
  EXPECT_EQ(h.members_alive, 2u);
  EXPECT_EQ(Count(h, PartitionState::kUnavailable), led);
  EXPECT_EQ(Count(h, PartitionState::kUnderReplicated), held);
  EXPECT_EQ(Count(h, PartitionState::kOk), 12u - led - held);
}

TEST(HealthTest, ReplicasOutOfSyncCountAndCatchUp) {
  ClusterMap m = Joined({"n1", "n2", "n3"}, 6);
  m.parts[0].in_sync = {m.parts[0].primary()};
  m.parts[1].in_sync = {m.parts[1].primary()};
  const ClusterHealth h = SummarizeHealth(m, AliveSet({"n1", "n2", "n3"}));
  EXPECT_EQ(h.replicas_not_in_sync, 2u);
  EXPECT_EQ(Count(h, PartitionState::kCatchingUp), 2u);
}

TEST(HealthTest, AMoveAndAHandOffAreInProgressAndANewMemberLeavesMovesToMake) {
  ClusterMap m = Joined({"n1", "n2", "n3"}, 12);
  m.members.push_back(
      Member{.name = "n4", .data_id = "data-n4", .incarnation = {}, .leaving = false});
  Partition& p = m.parts[0];
  p.move_from = p.replicas.back();
  p.move_to = "n4";
  p.replicas.push_back("n4");
  m.parts[1].handoff = m.parts[1].replicas[1];
  const ClusterHealth h = SummarizeHealth(m, AliveSet({"n1", "n2", "n3", "n4"}));
  EXPECT_EQ(h.moves_in_progress, 2u);
  EXPECT_EQ(Count(h, PartitionState::kMoving), 2u);
  EXPECT_EQ(h.replicas_not_in_sync, 1u);  // n4, catching up
  EXPECT_GT(h.moves_remaining, 0u);       // n4 still holds less than its share
  EXPECT_FALSE(h.balanced());
  // The same, with n4 down: it is not active, so nothing more to move to it.
  const ClusterHealth down = SummarizeHealth(m, AliveSet({"n1", "n2", "n3"}));
  EXPECT_EQ(down.members_alive, 3u);
}

TEST(HealthTest, LeavingAndJoiningMembersAreCounted) {
  ClusterMap m = Joined({"n1", "n2", "n3"}, 12);
  m.FindMember("n3")->leaving = true;
  m.members.push_back(Member{
      .name = "n4", .data_id = {}, .incarnation = {}, .leaving = false});  // added, never ran
  const ClusterHealth h = SummarizeHealth(m, AliveSet({"n1", "n2", "n3"}));
  EXPECT_EQ(h.members, 4u);
  EXPECT_EQ(h.members_leaving, 1u);
  EXPECT_EQ(h.members_joining, 1u);
  EXPECT_GT(Count(h, PartitionState::kMoving), 0u);  // n3's partitions
  EXPECT_GT(h.moves_remaining, 0u);                  // n3 must be emptied
  EXPECT_FALSE(h.balanced());
}

}  // namespace
}  // namespace todo::cluster
