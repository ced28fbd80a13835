// A live node's announcement in etcd (common/io/cluster_watcher.h): the
// JSON round trip, the optional CurveZMQ key, and malformed announcements,
// which give an error naming what is wrong and never throw.
#include <gtest/gtest.h>

#include "common/io/cluster_watcher.h"
#include "common/io/security/keys.h"

namespace todo::io {
namespace {

cluster::NodeInfo Sample() {
  return cluster::NodeInfo{"n1", "d1d2", "7f3a", "tcp://10.0.0.1:7001", "tcp://10.0.0.1:8001", ""};
}

TEST(NodeInfoTest, RoundTripsWithoutAKey) {
  const cluster::NodeInfo n = Sample();
  const std::string text = FormatNodeInfo(n);
  EXPECT_EQ(text.find("curve_key"), std::string::npos) << text;  // as before CURVE
  auto back = ParseNodeInfo(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, n);
}

TEST(NodeInfoTest, RoundTripsTheCurveKey) {
  cluster::NodeInfo n = Sample();
  security::CurveKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  n.curve_key = security::EncodeZ85Key(key);
  auto back = ParseNodeInfo(FormatNodeInfo(n));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, n);
}

TEST(NodeInfoTest, RoundTripsTheSavedMapVersion) {
  cluster::NodeInfo n = Sample();
  n.map_version = 42;
  const std::string text = FormatNodeInfo(n);
  auto back = ParseNodeInfo(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, n);
  // 0 (nothing saved) is left out, as before saved maps existed.
  EXPECT_EQ(FormatNodeInfo(Sample()).find("map_version"), std::string::npos);
  auto bad = ParseNodeInfo(R"({"name":"n1","data_id":"d","incarnation":"1","endpoint":"tcp://a:1",)"
                           R"("repl_endpoint":"tcp://a:2","map_version":-3})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("map_version"), std::string::npos);
}

TEST(NodeInfoTest, RefusesABadKeyNamingIt) {
  for (const char* text : {
           R"({"name":"n1","data_id":"d","incarnation":"1","endpoint":"tcp://a:1",)"
           R"("repl_endpoint":"tcp://a:2","curve_key":"short"})",
           R"({"name":"n1","data_id":"d","incarnation":"1","endpoint":"tcp://a:1",)"
           R"("repl_endpoint":"tcp://a:2","curve_key":"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"})",
           R"({"name":"n1","data_id":"d","incarnation":"1","endpoint":"tcp://a:1",)"
           R"("repl_endpoint":"tcp://a:2","curve_key":42})",
       }) {
    auto n = ParseNodeInfo(text);
    ASSERT_FALSE(n.ok()) << text;
    EXPECT_NE(n.status().message().find("curve_key"), std::string::npos) << n.status().message();
  }
}

TEST(NodeInfoTest, RefusesMalformedAnnouncements) {
  for (const char* text : {
           "",
           "[]",
           "not json",
           R"({"name":"n1"})",
           R"({"name":"bad name!","data_id":"d","incarnation":"1","endpoint":"tcp://a:1",)"
           R"("repl_endpoint":"tcp://a:2"})",
           R"({"name":"n1","data_id":"d","incarnation":"1","endpoint":"nope",)"
           R"("repl_endpoint":"tcp://a:2"})",
       }) {
    EXPECT_FALSE(ParseNodeInfo(text).ok()) << text;
  }
}

}  // namespace
}  // namespace todo::io
