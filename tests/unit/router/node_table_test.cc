#include "router/node_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/router/test_time.h"

namespace todo::router {
namespace {

using std::chrono::milliseconds;

using test_time::At;
using test_time::kStart;

NodeTable MakeTable(size_t nodes) {
  return NodeTable(nodes, NodeHealthOptions{milliseconds(500), milliseconds(2000)}, kStart);
}

std::vector<NodeTransition> Check(NodeTable& t, int64_t ms) {
  std::vector<NodeTransition> out;
  t.CheckSilence(At(ms), &out);
  return out;
}

TEST(NodeTableTest, NodesStartRoutable) {
  NodeTable t = MakeTable(3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t.state(i), NodeState::kStarting);
    EXPECT_TRUE(t.Routable(i));
    EXPECT_FALSE(t.ever_heard(i));
    EXPECT_EQ(t.last_heard(i), kStart);
  }
}

TEST(NodeTableTest, SilentNodeGoesDownAfterDownAfter) {
  NodeTable t = MakeTable(2);
  EXPECT_TRUE(Check(t, 1999).empty());
  EXPECT_TRUE(t.Routable(0));
  auto down = Check(t, 2000);
  ASSERT_EQ(down.size(), 2u);
  EXPECT_EQ(down[0].node, 0u);
  EXPECT_EQ(down[0].from, NodeState::kStarting);
  EXPECT_EQ(down[0].to, NodeState::kDown);
  EXPECT_EQ(down[1].node, 1u);
  EXPECT_FALSE(t.Routable(0));
  EXPECT_FALSE(t.Routable(1));
  // Down is reported once, however long the silence lasts.
  EXPECT_TRUE(Check(t, 2001).empty());
  EXPECT_TRUE(Check(t, 60000).empty());
}

TEST(NodeTableTest, HearingKeepsANodeUp) {
  NodeTable t = MakeTable(2);
  auto up = t.Heard(0, At(100));
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->node, 0u);
  EXPECT_EQ(up->from, NodeState::kStarting);
  EXPECT_EQ(up->to, NodeState::kUp);
  EXPECT_FALSE(t.Heard(0, At(1500)).has_value());  // already up: no transition
  EXPECT_EQ(t.last_heard(0), At(1500));
  auto down = Check(t, 3499);
  ASSERT_EQ(down.size(), 1u);  // node 1, never heard
  EXPECT_EQ(down[0].node, 1u);
  EXPECT_TRUE(t.Routable(0));
  down = Check(t, 3500);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].node, 0u);
  EXPECT_EQ(down[0].from, NodeState::kUp);
  EXPECT_FALSE(t.Routable(0));
}

TEST(NodeTableTest, DownNodeComesBackWhenHeard) {
  NodeTable t = MakeTable(1);
  ASSERT_EQ(Check(t, 2000).size(), 1u);
  auto up = t.Heard(0, At(7000));
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->from, NodeState::kDown);
  EXPECT_EQ(up->to, NodeState::kUp);
  EXPECT_TRUE(t.Routable(0));
  EXPECT_TRUE(t.ever_heard(0));
  EXPECT_TRUE(Check(t, 8999).empty());
  EXPECT_EQ(Check(t, 9000).size(), 1u);
}

TEST(NodeTableTest, AnOlderMessageDoesNotMoveLastHeardBack) {
  NodeTable t = MakeTable(1);
  t.Heard(0, At(1000));
  t.Heard(0, At(500));
  EXPECT_EQ(t.last_heard(0), At(1000));
}

TEST(NodeTableTest, HeartbeatRoundsFollowTheInterval) {
  NodeTable t = MakeTable(2);
  EXPECT_TRUE(t.HeartbeatDue(kStart));  // the first round goes out at start
  t.HeartbeatsSent(kStart);
  EXPECT_EQ(t.next_heartbeat(), At(500));
  EXPECT_FALSE(t.HeartbeatDue(At(499)));
  EXPECT_TRUE(t.HeartbeatDue(At(500)));
  // A late round is not made up: the next one is an interval after it.
  t.HeartbeatsSent(At(1700));
  EXPECT_EQ(t.next_heartbeat(), At(2200));
  EXPECT_FALSE(t.HeartbeatDue(At(2199)));
}

TEST(NodeTableTest, HeartbeatTokensCountPerNode) {
  NodeTable t = MakeTable(2);
  EXPECT_EQ(t.NextHeartbeatToken(0), 1u);
  EXPECT_EQ(t.NextHeartbeatToken(0), 2u);
  EXPECT_EQ(t.NextHeartbeatToken(1), 1u);
}

TEST(NodeTableTest, NextEventIsTheEarliestHeartbeatOrSilenceCheck) {
  NodeTable t = MakeTable(2);
  EXPECT_EQ(t.NextEvent(), kStart);
  t.HeartbeatsSent(kStart);
  EXPECT_EQ(t.NextEvent(), At(500));
  t.HeartbeatsSent(At(1900));  // next round at 2400; silence check at 2000 comes first
  EXPECT_EQ(t.NextEvent(), At(2000));
  t.Heard(0, At(1950));
  EXPECT_EQ(t.NextEvent(), At(2000));  // node 1 still silent since start
  ASSERT_EQ(Check(t, 2000).size(), 1u);
  // Down nodes need no silence check; node 0 is due at 3950, heartbeats at 2400.
  EXPECT_EQ(t.NextEvent(), At(2400));
  t.HeartbeatsSent(At(3900));
  EXPECT_EQ(t.NextEvent(), At(3950));
}

TEST(NodeTableTest, StateNames) {
  EXPECT_EQ(NodeStateName(NodeState::kStarting), "starting");
  EXPECT_EQ(NodeStateName(NodeState::kUp), "up");
  EXPECT_EQ(NodeStateName(NodeState::kDown), "down");
}

}  // namespace
}  // namespace todo::router
