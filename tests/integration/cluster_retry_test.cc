// The cluster, black box: thousands of concurrent retries of one write with
// a rid (request id), sent through two routers and straight to the list's
// owner at once, over many sockets, have one effect and one reply
// (shared/spec/retries.md). The router forwards the rid untouched.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"
#include "tests/integration/harness.h"

namespace todo::testing {
namespace {

using ClusterRetryTest = SharedClusterTest;

// A reply without its "id" (each retry's reply echoes its own).
std::string WithoutId(const Reply& r) {
  return "ok=" + ToString(r.Get("ok")) + ";result=" + ToString(r.Get("result")) +
         ";error=" + ToString(r.Get("error"));
}

TEST_F(ClusterRetryTest, ThousandsOfConcurrentRetriesThroughRoutersAndDirectlyHaveOneEffect) {
  const std::string list = TestListPrefix() + "-hot";
  const std::string owner = ExpectedOwner(cluster().node_names(), list);
  const std::string direct = cluster().node(cluster().NodeIndex(owner)).endpoint;
  Map add = AddReq(list, "2026-04-04", "exactly once");
  add.emplace_back("rid", "3f9c1c1e-one-rid");
  // 12 sockets to each router and 6 straight to the owner, 60 requests each.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 12; ++i) clients.push_back(std::make_unique<Client>(router_a()));
  for (int i = 0; i < 12; ++i) clients.push_back(std::make_unique<Client>(router_b()));
  for (int i = 0; i < 6; ++i) clients.push_back(std::make_unique<Client>(direct));
  constexpr int kEach = 60;
  for (int k = 0; k < kEach; ++k) {
    for (auto& c : clients) ASSERT_TRUE(c->Send(WithId(add, static_cast<uint64_t>(k))));
  }
  std::map<std::string, size_t> replies;
  for (auto& c : clients) {
    for (const Reply& r : Collect(*c, kEach, kCallTimeout)) ++replies[WithoutId(r)];
  }
  ASSERT_EQ(replies.size(), 1u) << "different replies to one rid: " << replies.begin()->first;
  EXPECT_EQ(replies.begin()->second, clients.size() * kEach);
  EXPECT_NE(replies.begin()->first.find("ok=true"), std::string::npos) << replies.begin()->first;
  Client reader(router_a());
  std::vector<WireEntry> entries = EntriesOk(reader, list);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].title, "exactly once");
}

}  // namespace
}  // namespace todo::testing
