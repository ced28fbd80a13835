// todo-node's flags that need more than a range check: durations.
#include "node/options.h"

#include <gtest/gtest.h>

#include <functional>

namespace todo::node {
namespace {

using std::chrono::milliseconds;

TEST(ParseDurationTest, NumbersWithUnits) {
  EXPECT_EQ(*ParseDuration("--f", "90"), milliseconds(90'000));  // seconds by default
  EXPECT_EQ(*ParseDuration("--f", "1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("--f", "500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("--f", "90m"), milliseconds(5'400'000));
  EXPECT_EQ(*ParseDuration("--f", "24h"), milliseconds(86'400'000));
  EXPECT_EQ(*ParseDuration("--f", "2d"), milliseconds(172'800'000));
  EXPECT_EQ(*ParseDuration("--f", "0"), milliseconds(0));
}

TEST(ParseDurationTest, RefusesWhatIsNotADurationNamingTheFlag) {
  for (const char* bad : {"", "s", "soon", "-1", "-1s", "1 s", "1x", "1sec", "1.5.2", "nan", "inf",
                          "1e400", "99999999999999d"}) {
    auto d = ParseDuration("--rid-ttl", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), ErrorCode::kBadRequest);
    EXPECT_NE(d.status().message().find("--rid-ttl must be a duration"), std::string::npos)
        << d.status().message();
  }
}

TEST(NodeOptionsTest, RidTtlRange) {
  NodeOptions o;
  o.name = "n1";
  o.listen = "tcp://127.0.0.1:7001";
  o.data = "/tmp/x";
  EXPECT_EQ(o.rid_ttl, std::chrono::hours(24));  // the default
  EXPECT_TRUE(o.Validate().ok());
  for (milliseconds ok : {milliseconds(1000), milliseconds(86'400'000LL * 365)}) {
    o.rid_ttl = ok;
    EXPECT_TRUE(o.Validate().ok()) << ok.count();
  }
  for (milliseconds bad : {milliseconds(0), milliseconds(999), milliseconds(86'400'000LL * 366)}) {
    o.rid_ttl = bad;
    Status s = o.Validate();
    EXPECT_FALSE(s.ok()) << bad.count();
    EXPECT_NE(s.message().find("--rid-ttl"), std::string::npos);
  }
}

TEST(NodeOptionsTest, RidFilterRange) {
  NodeOptions o;
  o.name = "n1";
  o.listen = "tcp://127.0.0.1:7001";
  o.data = "/tmp/x";
  EXPECT_EQ(o.rid_filter_mb, 16u);
  for (size_t ok : {size_t{0}, size_t{1}, size_t{4096}}) {
    o.rid_filter_mb = ok;
    EXPECT_TRUE(o.Validate().ok()) << ok;
  }
  o.rid_filter_mb = 4097;
  EXPECT_NE(o.Validate().message().find("--rid-filter-mb"), std::string::npos);
}

TEST(NodeOptionsTest, ReplicationRetentionAndIncomingSnapshotRanges) {
  NodeOptions o;
  o.name = "n1";
  o.listen = "tcp://127.0.0.1:7001";
  o.data = "/tmp/x";
  o.etcd = "http://127.0.0.1:2379";  // replicated mode: its flags are checked
  EXPECT_EQ(o.retained_mb, 256u);
  EXPECT_EQ(o.max_incoming_snapshots, 2u);
  ASSERT_TRUE(o.Validate().ok()) << o.Validate().message();
  for (size_t bad : {size_t{0}, size_t{65537}}) {
    o.retained_mb = bad;
    EXPECT_NE(o.Validate().message().find("--retained-mb"), std::string::npos) << bad;
  }
  o.retained_mb = 1;
  EXPECT_TRUE(o.Validate().ok());
  for (size_t bad : {size_t{0}, size_t{1025}}) {
    o.max_incoming_snapshots = bad;
    EXPECT_NE(o.Validate().message().find("--max-incoming-snapshots"), std::string::npos) << bad;
  }
  o.max_incoming_snapshots = 1;
  EXPECT_TRUE(o.Validate().ok());
}

TEST(NodeOptionsTest, ReplicatedModeFlagsNeedEtcd) {
  const auto fresh = [] {
    NodeOptions o;
    o.name = "n1";
    o.listen = "tcp://127.0.0.1:7001";
    o.data = "/tmp/x";
    return o;
  };
  ASSERT_TRUE(fresh().Validate().ok());
  // Static mode: a replicated-mode flag set to anything but its default
  // would be ignored without a word; it is refused, naming the flag.
  const std::pair<const char*, std::function<void(NodeOptions&)>> cases[] = {
      {"--cluster-name", [](NodeOptions& o) { o.cluster_name = "other"; }},
      {"--lease-ms", [](NodeOptions& o) { o.lease_ms = 5000; }},
      {"--repl-timeout-ms", [](NodeOptions& o) { o.repl_timeout_ms = 50; }},
      {"--catchup-rate-mb", [](NodeOptions& o) { o.catchup_rate_mb = 8; }},
      {"--retained-mb", [](NodeOptions& o) { o.retained_mb = 8; }},
      {"--max-incoming-snapshots", [](NodeOptions& o) { o.max_incoming_snapshots = 4; }},
      {"--no-controller", [](NodeOptions& o) { o.controller = false; }},
      {"--max-moves", [](NodeOptions& o) { o.max_moves = 2; }},
      {"--max-handoffs", [](NodeOptions& o) { o.max_handoffs = 2; }},
      {"--advertise", [](NodeOptions& o) { o.advertise = "tcp://127.0.0.1:7001"; }},
  };
  for (const auto& [flag, set] : cases) {
    NodeOptions o = fresh();
    set(o);
    Status s = o.Validate();
    ASSERT_FALSE(s.ok()) << flag;
    EXPECT_EQ(s.message(), std::string(flag) + " needs --etcd (the replicated mode)");
    // The same in the replicated mode is fine.
    o.etcd = "http://127.0.0.1:2379";
    EXPECT_TRUE(o.Validate().ok()) << flag << ": " << o.Validate().message();
  }
}

}  // namespace
}  // namespace todo::node
