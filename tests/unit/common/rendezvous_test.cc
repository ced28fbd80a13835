#include "common/rendezvous.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace todo {
namespace {

std::string ListName(int i) { return "list-" + std::to_string(i); }

// Known answers, computed independently (Python, from the formula in
// rendezvous.h), so the hash cannot drift silently: routers, nodes and
// external tools must all agree on owners.
TEST(RendezvousHashTest, Fnv1a64PublishedVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(RendezvousHashTest, Mix64IsTheSplitmix64Finalizer) {
  EXPECT_EQ(Mix64(0), 0u);
  // The first output of splitmix64 seeded with 0.
  EXPECT_EQ(Mix64(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(Mix64(1), 0x5692161d100b05e5ULL);
}

TEST(RendezvousHashTest, PinnedScores) {
  EXPECT_EQ(RendezvousScore("n1", "alice"), 0xbe247bacf15d3dd2ULL);
  EXPECT_EQ(RendezvousScore("n2", "alice"), 0x8a6c2948578b12caULL);
  EXPECT_EQ(RendezvousScore("n3", "alice"), 0xe85bd6db303b1f7eULL);
  EXPECT_EQ(RendezvousScore("n1", "bob"), 0x5597cc592704acceULL);
  EXPECT_EQ(RendezvousScore("node-a", "groceries"), 0x7a80410ce4292cc8ULL);
  EXPECT_EQ(RendezvousScore("", ""), 0xcfa3c5eb015b4663ULL);
  for (const char* node : {"n1", "x", ""}) {
    for (const char* list : {"alice", "", "q"}) {
      EXPECT_EQ(RendezvousScore(node, list), Mix64(Fnv1a64(node) ^ Mix64(Fnv1a64(list))));
    }
  }
}

TEST(RendezvousHashTest, PinnedOwnersAndShards) {
  Rendezvous r({"n1", "n2", "n3"});
  EXPECT_EQ(r.nodes()[r.Owner("alice")], "n3");
  EXPECT_EQ(r.nodes()[r.Owner("bob")], "n2");
  EXPECT_EQ(r.nodes()[r.Owner("groceries")], "n2");
  EXPECT_EQ(r.nodes()[r.Owner("x")], "n1");
  EXPECT_EQ(ShardOf("alice", 4), 1u);
  EXPECT_EQ(ShardOf("bob", 4), 3u);
  EXPECT_EQ(ShardOf("groceries", 4), 2u);
  EXPECT_EQ(ShardOf("alice", 16), 13u);
  EXPECT_EQ(ShardOf("groceries", 16), 10u);
}

TEST(RendezvousTest, OwnerIsTheHighestScore) {
  std::vector<std::string> nodes = {"n1", "n2", "n3", "n4", "n5"};
  Rendezvous r(nodes);
  for (int i = 0; i < 2000; ++i) {
    std::string list = ListName(i);
    size_t best = 0;
    for (size_t n = 1; n < nodes.size(); ++n) {
      if (RendezvousScore(nodes[n], list) > RendezvousScore(nodes[best], list)) best = n;
    }
    ASSERT_EQ(r.Owner(list), best) << list;
  }
}

TEST(RendezvousTest, DeterministicAndIndependentOfNodeOrder) {
  Rendezvous a({"n1", "n2", "n3", "n4"});
  Rendezvous b({"n4", "n2", "n1", "n3"});
  Rendezvous a2({"n1", "n2", "n3", "n4"});
  for (int i = 0; i < 5000; ++i) {
    std::string list = ListName(i);
    ASSERT_EQ(a.nodes()[a.Owner(list)], b.nodes()[b.Owner(list)]) << list;
    ASSERT_EQ(a.Owner(list), a2.Owner(list)) << list;
    ASSERT_EQ(a.Owner(list), a.Owner(list)) << list;
  }
}

TEST(RendezvousTest, SingleNodeOwnsEverything) {
  Rendezvous r({"only"});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r.Owner(ListName(i)), 0u);
  EXPECT_EQ(r.Owner(""), 0u);
}

TEST(RendezvousTest, SpreadOverThreeNodesIsRoughlyEven) {
  Rendezvous r({"n1", "n2", "n3"});
  constexpr int kLists = 30000;
  int count[3] = {0, 0, 0};
  for (int i = 0; i < kLists; ++i) ++count[r.Owner(ListName(i))];
  for (int c : count) {
    EXPECT_GE(c, kLists * 28 / 100) << c;
    EXPECT_LE(c, kLists * 39 / 100) << c;
  }
}

TEST(RendezvousTest, AddingANodeMovesOnlyWhatItWins) {
  Rendezvous three({"n1", "n2", "n3"});
  Rendezvous four({"n1", "n2", "n3", "n4"});
  constexpr int kLists = 20000;
  int moved = 0;
  for (int i = 0; i < kLists; ++i) {
    std::string list = ListName(i);
    const std::string& before = three.nodes()[three.Owner(list)];
    const std::string& after = four.nodes()[four.Owner(list)];
    bool new_node_wins = RendezvousScore("n4", list) > RendezvousScore(before, list);
    if (new_node_wins) {
      ASSERT_EQ(after, "n4") << list;
      ++moved;
    } else {
      ASSERT_EQ(after, before) << list;
    }
  }
  // About a quarter of the lists move, all to the new node.
  EXPECT_GE(moved, kLists * 20 / 100);
  EXPECT_LE(moved, kLists * 30 / 100);
}

TEST(RendezvousTest, RemovingANodeMovesOnlyItsLists) {
  Rendezvous four({"n1", "n2", "n3", "n4"});
  Rendezvous without_n2({"n1", "n3", "n4"});
  int moved = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string list = ListName(i);
    const std::string& before = four.nodes()[four.Owner(list)];
    const std::string& after = without_n2.nodes()[without_n2.Owner(list)];
    if (before == "n2") {
      ASSERT_NE(after, "n2");
      ++moved;
    } else {
      ASSERT_EQ(after, before) << list;
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(RendezvousTest, DuplicateNamesResolveToTheFirst) {
  // Equal names score equally: the tie keeps the first index of the winner,
  // whatever the order, so a configuration mistake still routes
  // deterministically.
  Rendezvous r({"b", "a", "b", "a"});
  for (int i = 0; i < 200; ++i) {
    std::string list = ListName(i);
    size_t owner = r.Owner(list);
    const std::string& name = r.nodes()[owner];
    std::string other = name == "a" ? "b" : "a";
    EXPECT_GT(RendezvousScore(name, list), RendezvousScore(other, list));
    EXPECT_EQ(owner, name == "b" ? 0u : 1u);
  }
}

TEST(ShardOfTest, InRangeAndRoughlyEven) {
  for (uint32_t shards : {1u, 2u, 4u, 7u, 16u}) {
    std::vector<int> count(shards, 0);
    constexpr int kLists = 40000;
    for (int i = 0; i < kLists; ++i) {
      uint32_t s = ShardOf(ListName(i), shards);
      ASSERT_LT(s, shards);
      ++count[s];
    }
    double even = static_cast<double>(kLists) / shards;
    for (int c : count) {
      EXPECT_GE(c, even * 0.85) << shards;
      EXPECT_LE(c, even * 1.15) << shards;
    }
  }
  EXPECT_EQ(ShardOf("anything", 1), 0u);
}

TEST(ShardOfTest, IndependentOfOwner) {
  // The shard hash is salted, so the lists one node owns still spread over
  // its shards.
  Rendezvous r({"n1", "n2", "n3"});
  std::vector<int> count(4, 0);
  int owned = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string list = ListName(i);
    if (r.nodes()[r.Owner(list)] != "n1") continue;
    ++owned;
    ++count[ShardOf(list, 4)];
  }
  for (int c : count) {
    EXPECT_GE(c, owned / 4 * 85 / 100);
    EXPECT_LE(c, owned / 4 * 115 / 100);
  }
}

}  // namespace
}  // namespace todo
