// The cluster, black box: two routers in front of three nodes agree on every
// list's owner (the documented rendezvous formula, whatever the flag order or
// source), the data lives on that owner, ops through one router are seen
// through the other, and routers answer ping themselves.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

using ClusterRoutingTest = SharedClusterTest;

Map UpdateReq(const std::string& list, uint64_t entry_id, const std::string& title) {
  return {{"op", "update_entry"}, {"list", list}, {"entry_id", entry_id}, {"title", title}};
}

TEST_F(ClusterRoutingTest, OpsThroughEitherRouterAreSeenThroughTheOther) {
  Client a(router_a());
  Client b(router_b());
  // One list per node, so every node's path is exercised.
  for (const std::string& owner : cluster().node_names()) {
    const std::string list = cluster().ListsOwnedBy(owner, TestListPrefix(), 1)[0];
    SCOPED_TRACE("list " + list + " on " + owner);

    // Adds via A, entries via B.
    EXPECT_EQ(AddOk(a, list, "2026-05-01", "first"), 1u);
    EXPECT_EQ(AddOk(a, list, "2026-05-02", "second"), 2u);
    EXPECT_EQ(AddOk(a, list, "2026-05-01", "third"), 3u);
    EXPECT_EQ(EntriesOk(b, list), (std::vector<WireEntry>{{1, "2026-05-01", "first"},
                                                          {2, "2026-05-02", "second"},
                                                          {3, "2026-05-01", "third"}}));
    EXPECT_EQ(EntriesOk(b, list, "2026-05-01"),
              (std::vector<WireEntry>{{1, "2026-05-01", "first"}, {3, "2026-05-01", "third"}}));

    // Update via B, seen via A.
    Reply updated = MustCall(b, UpdateReq(list, 2, "second, renamed"));
    auto entry = ParseEntry(ExpectOk(updated));
    EXPECT_EQ(entry, (WireEntry{2, "2026-05-02", "second, renamed"})) << updated.ToString();
    EXPECT_EQ(EntriesOk(a, list), (std::vector<WireEntry>{{1, "2026-05-01", "first"},
                                                          {2, "2026-05-02", "second, renamed"},
                                                          {3, "2026-05-01", "third"}}));

    // Delete via A, seen via B; a second delete finds nothing.
    Reply deleted = MustCall(a, DeleteReq(list, 1));
    EXPECT_EQ(AsBool(MapGet(ExpectOk(deleted), "deleted")), std::optional<bool>(true))
        << deleted.ToString();
    Reply again = MustCall(b, DeleteReq(list, 1));
    EXPECT_EQ(AsBool(MapGet(ExpectOk(again), "deleted")), std::optional<bool>(false))
        << again.ToString();
    EXPECT_EQ(EntriesOk(b, list), (std::vector<WireEntry>{{2, "2026-05-02", "second, renamed"},
                                                          {3, "2026-05-01", "third"}}));

    // The node's own errors come through the router: not_found.
    ExpectError(MustCall(a, UpdateReq(list, 99, "nope")), "not_found");
    // Ids are never reused: the next add via B is 4.
    EXPECT_EQ(AddOk(b, list, "2026-05-03", "fourth"), 4u);
  }
}

TEST_F(ClusterRoutingTest, LocateAgreesOnBothRoutersFollowsTheFormulaAndSpreads) {
  Client a(router_a());
  Client b(router_b());
  const std::vector<std::string> names = cluster().node_names();
  std::map<std::string, int> per_node;
  const std::string prefix = TestListPrefix();
  for (int k = 0; k < 300; ++k) {
    const std::string list = prefix + "/list-" + std::to_string(k);
    const std::string via_a = LocateOk(a, list);
    const std::string via_b = LocateOk(b, list);
    EXPECT_EQ(via_a, via_b) << list;
    EXPECT_EQ(via_a, ExpectedOwner(names, list)) << list;
    ++per_node[via_a];
  }
  for (const std::string& n : names) {
    EXPECT_GT(per_node[n], 0) << "node " << n << " owns none of 300 lists";
  }
  std::cout << "[ locate  ] 300 lists:";
  for (const auto& [n, c] : per_node) std::cout << " " << n << "=" << c;
  std::cout << "\n";
}

TEST_F(ClusterRoutingTest, ListDataLivesOnTheLocatedNodeOnly) {
  Client a(router_a());
  const std::vector<std::string> names = cluster().node_names();
  std::vector<std::unique_ptr<Client>> direct;
  for (size_t i = 0; i < cluster().node_count(); ++i) {
    direct.push_back(std::make_unique<Client>(cluster().node(i).endpoint));
  }
  // Ten lists per node.
  for (const std::string& owner : names) {
    for (const std::string& list : cluster().ListsOwnedBy(owner, TestListPrefix(), 10)) {
      ASSERT_EQ(LocateOk(a, list), owner) << list;
      const uint64_t id = AddOk(a, list, "2026-07-04", "on " + owner);
      ASSERT_EQ(id, 1u) << list;
      for (size_t i = 0; i < names.size(); ++i) {
        std::vector<WireEntry> there = EntriesOk(*direct[i], list);
        if (names[i] == owner) {
          EXPECT_EQ(there, (std::vector<WireEntry>{{1, "2026-07-04", "on " + owner}}))
              << list << " asked directly on its owner " << owner;
        } else {
          EXPECT_TRUE(there.empty())
              << list << " (owner " << owner << ") has entries on " << names[i];
        }
      }
    }
  }
}

TEST_F(ClusterRoutingTest, FlagOrderAndClusterFileGiveTheSameOwners) {
  // Router C: the --node flags in reverse order.
  std::vector<std::string> reversed;
  for (size_t i = cluster().node_count(); i-- > 0;) {
    reversed.push_back("--node");
    reversed.push_back(cluster().node(i).name + "=" + cluster().node(i).endpoint);
  }
  int c = cluster().StartRouter(reversed);
  ASSERT_GE(c, 0);
  // Router D: a cluster file, lines in yet another order, with comments.
  const std::string file = cluster().tmp().Sub("cluster-" + TestListPrefix() + ".conf");
  {
    std::ofstream out(file);
    out << "# test cluster\n\n";
    out << "node " << cluster().node(1).name << " " << cluster().node(1).endpoint << "\n";
    out << "   # indented comment\n";
    out << "node " << cluster().node(2).name << " " << cluster().node(2).endpoint
        << "  # trailing comment\n\n";
    out << "node " << cluster().node(0).name << " " << cluster().node(0).endpoint << "\n";
  }
  int d = cluster().StartRouter({"--cluster", file});
  ASSERT_GE(d, 0);

  Client a(router_a());
  Client rc(cluster().router(c).endpoint);
  Client rd(cluster().router(d).endpoint);
  const std::string prefix = TestListPrefix();
  for (int k = 0; k < 300; ++k) {
    const std::string list = prefix + "/" + std::to_string(k);
    const std::string owner = LocateOk(a, list);
    EXPECT_EQ(LocateOk(rc, list), owner) << list << " via reversed --node flags";
    EXPECT_EQ(LocateOk(rd, list), owner) << list << " via --cluster file";
  }
  // And they route there: write through D, read through C and A.
  ASSERT_TRUE(cluster().WaitRoutesToAll(cluster().router(d).endpoint, Millis(30000)));
  ASSERT_TRUE(cluster().WaitRoutesToAll(cluster().router(c).endpoint, Millis(30000)));
  for (const std::string& owner : cluster().node_names()) {
    const std::string list = cluster().ListsOwnedBy(owner, prefix + "-rw", 1)[0];
    EXPECT_EQ(AddOk(rd, list, "2026-08-08", "via file"), 1u) << list;
    EXPECT_EQ(EntriesOk(rc, list), (std::vector<WireEntry>{{1, "2026-08-08", "via file"}})) << list;
    EXPECT_EQ(EntriesOk(a, list), (std::vector<WireEntry>{{1, "2026-08-08", "via file"}})) << list;
  }
}

void ExpectRouterPong(const Reply& reply, const std::string& name) {
  const msgpack::object* result = ExpectOk(reply);
  EXPECT_EQ(AsBool(MapGet(result, "pong")), std::optional<bool>(true)) << reply.ToString();
  EXPECT_EQ(AsStr(MapGet(result, "role")), std::optional<std::string>("router"))
      << reply.ToString();
  EXPECT_EQ(AsStr(MapGet(result, "name")), std::optional<std::string>(name)) << reply.ToString();
}

TEST_F(ClusterRoutingTest, PingIsAnsweredByTheRouterWithItsNameOrEndpoint) {
  Client a(router_a());
  Client b(router_b());
  ExpectRouterPong(MustCall(a, {{"op", "ping"}}), kRouterAName);
  // B has no --name: it reports its listen endpoint.
  ExpectRouterPong(MustCall(b, {{"op", "ping"}}), router_b());
  // The nodes answer as nodes, with their names.
  for (size_t i = 0; i < cluster().node_count(); ++i) {
    Client direct(cluster().node(i).endpoint);
    Reply reply = MustCall(direct, {{"op", "ping"}});
    const msgpack::object* result = ExpectOk(reply);
    EXPECT_EQ(AsStr(MapGet(result, "role")), std::optional<std::string>("node"))
        << reply.ToString();
    EXPECT_EQ(AsStr(MapGet(result, "name")), std::optional<std::string>(cluster().node(i).name))
        << reply.ToString();
  }
}

TEST_F(ClusterRoutingTest, RouterAnswersPingAndLocateWithEveryNodeDown) {
  // A router whose nodes don't exist: ping and locate need no node.
  const std::vector<std::string> names = {"x1", "x2", "x3"};
  std::vector<std::string> args;
  for (const std::string& n : names) {
    args.push_back("--node");
    args.push_back(n + "=" + FreeLoopbackEndpoint());
  }
  args.push_back("--name");
  args.push_back("lonely");
  int r = cluster().StartRouter(args);
  ASSERT_GE(r, 0);
  Client c(cluster().router(r).endpoint);
  ExpectRouterPong(MustCall(c, {{"op", "ping"}}), "lonely");
  for (int k = 0; k < 20; ++k) {
    const std::string list = "lonely-" + std::to_string(k);
    EXPECT_EQ(LocateOk(c, list), ExpectedOwner(names, list)) << list;
  }
}

}  // namespace
}  // namespace todo::testing
