#include <gtest/gtest.h>

#include <map>

#include "common/cluster/map.h"

namespace todo::cluster {
namespace {

TEST(ClusterMap, PartitionOfIsTheDocumentedHash) {
  // partition(list) = mix64(fnv1a64(list)) mod P (PROTOCOL.md); pinned so
  // other tools computing it agree.
  // mix64(fnv1a64("alice")) = 0xc5d1556d66774a5c, of "bob" 0x6e8572d08b268dec.
  EXPECT_EQ(PartitionOf("alice", 256), 0x5cu);
  EXPECT_EQ(PartitionOf("bob", 256), 0xecu);
  EXPECT_EQ(PartitionOf("alice", 1000), 0xc5d1556d66774a5cULL % 1000);
  EXPECT_EQ(PartitionOf("anything", 1), 0u);
  // Spread: 10,000 names over 16 partitions, each within 25% of the mean.
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 10000; ++i) ++counts[PartitionOf("list-" + std::to_string(i), 16)];
  ASSERT_EQ(counts.size(), 16u);
  for (const auto& [p, n] : counts) {
    EXPECT_GT(n, 625 * 3 / 4) << p;
    EXPECT_LT(n, 625 * 5 / 4) << p;
  }
}

TEST(ClusterMap, NewMapIsBalancedAndValid) {
  auto m = NewClusterMap({"n1", "n2", "n3"}, 256, 2, 1);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(Validate(*m).ok());
  std::map<std::string, int> primaries, held;
  for (const Partition& p : m->parts) {
    ASSERT_EQ(p.replicas.size(), 2u);
    EXPECT_NE(p.replicas[0], p.replicas[1]);
    EXPECT_EQ(p.in_sync, p.replicas);
    EXPECT_EQ(p.epoch, 1u);
    EXPECT_EQ(p.leader_epoch, 1u);
    ++primaries[p.primary()];
    for (const auto& r : p.replicas) ++held[r];
  }
  for (const std::string n : {"n1", "n2", "n3"}) {
    EXPECT_GE(primaries[n], 85) << n;
    EXPECT_LE(primaries[n], 86) << n;
    EXPECT_GE(held[n], 170) << n;
    EXPECT_LE(held[n], 172) << n;
  }
  // Deterministic.
  auto again = NewClusterMap({"n1", "n2", "n3"}, 256, 2, 1);
  EXPECT_EQ(*m, *again);
}

TEST(ClusterMap, NewMapRefusesMoreReplicasThanMembers) {
  auto m = NewClusterMap({"n1", "n2"}, 16, 3, 1);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("--replicas 3"), std::string::npos);
  EXPECT_FALSE(NewClusterMap({"n1", "n2"}, 0, 1, 1).ok());
  EXPECT_FALSE(NewClusterMap({"n1", "n2"}, 16, 2, 3).ok());
  EXPECT_FALSE(NewClusterMap({"n1", "n1"}, 16, 1, 1).ok());
  EXPECT_FALSE(NewClusterMap({"bad name"}, 16, 1, 1).ok());
}

TEST(ClusterMap, JsonRoundTrip) {
  auto m = NewClusterMap({"a", "b", "c", "d"}, 64, 3, 2);
  ASSERT_TRUE(m.ok());
  m->members[1].data_id = "abc";
  m->members[2].leaving = true;
  m->parts[5].epoch = 9;
  m->parts[5].leader_epoch = 7;
  m->parts[5].in_sync = {m->parts[5].replicas[0]};
  m->parts[6].handoff = m->parts[6].replicas[1];
  auto back = ParseMap(FormatMap(*m));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, *m);
}

TEST(ClusterMap, ParseRefusesMalformedMapsWithAMessage) {
  auto m = NewClusterMap({"n1", "n2"}, 4, 2, 1);
  ASSERT_TRUE(m.ok());
  const std::string good = FormatMap(*m);
  struct Case {
    std::string from, to, says;
  };
  const Case cases[] = {
      {"\"partitions\":4", "\"partitions\":5", "has 4 partitions, not 5"},
      {"\"partitions\":4", "\"partitions\":-4", "unsigned"},
      {"\"replicas\":2", "\"replicas\":\"2\"", "unsigned"},
      {"\"min_insync\":1", "\"min_insync\":3", "min_insync"},
      {"\"hash\":\"mix64-fnv1a64\"", "\"hash\":\"md5\"", "hash 'md5'"},
      {"\"in_sync\":[\"n1\",\"n2\"]", "\"in_sync\":[\"n2\",\"n1\"]", "out of replica order"},
      {"\"replicas\":[\"n1\",\"n2\"]", "\"replicas\":[\"n1\",\"n9\"]", "not a member"},
      {"\"replicas\":[\"n1\",\"n2\"]", "\"replicas\":[\"n1\",\"n1\"]", "listed twice"},
      {"\"leader_epoch\":1", "\"leader_epoch\":2", "leader_epoch"},
  };
  for (const Case& c : cases) {
    std::string bad = good;
    size_t at = bad.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from << " in " << good;
    bad.replace(at, c.from.size(), c.to);
    auto r = ParseMap(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << r.status().message() << " for " << c.to;
  }
  EXPECT_FALSE(ParseMap("").ok());
  EXPECT_FALSE(ParseMap("[]").ok());
  EXPECT_FALSE(ParseMap("{\"partitions\": 1e999}").ok());
  EXPECT_FALSE(ParseMap("{").ok());
}

TEST(ClusterMap, AMapFollowsTheOneInForceOnlyIfNothingGoesBack) {
  auto taken = NewClusterMap({"n1", "n2", "n3"}, 8, 2, 1);
  ASSERT_TRUE(taken.ok());
  taken->version = 18;
  taken->parts[3].epoch = 6;
  taken->parts[3].leader_epoch = 5;
  // The same map (an etcd put of the same value) and a newer one follow.
  EXPECT_TRUE(CheckFollows(*taken, *taken).ok());
  ClusterMap next = *taken;
  next.version = 19;
  next.parts[3].epoch = 7;
  next.parts[3].in_sync = {next.parts[3].replicas[0]};
  EXPECT_TRUE(CheckFollows(*taken, next).ok());

  // An old value put back: its version is older.
  ClusterMap old = *taken;
  old.version = 5;
  Status s = CheckFollows(*taken, old);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("version 5 is older than the map in force (version 18)"),
            std::string::npos)
      << s.message();
  // A newer version whose partition went back a term.
  ClusterMap back = next;
  back.parts[3].leader_epoch = 2;
  s = CheckFollows(*taken, back);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("partition 3 goes back from epoch 6 (leader epoch 5)"),
            std::string::npos)
      << s.message();
  back = next;
  back.parts[3].epoch = 5;
  EXPECT_FALSE(CheckFollows(*taken, back).ok());
  // P changed.
  auto other = NewClusterMap({"n1", "n2", "n3"}, 16, 2, 1);
  ASSERT_TRUE(other.ok());
  other->version = 40;
  s = CheckFollows(*taken, *other);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("16 partitions where the map in force has 8"), std::string::npos)
      << s.message();
  // Another map under the same version.
  ClusterMap same_version = *taken;
  same_version.parts[3].epoch = 9;
  EXPECT_FALSE(CheckFollows(*taken, same_version).ok());
}

}  // namespace
}  // namespace todo::cluster
