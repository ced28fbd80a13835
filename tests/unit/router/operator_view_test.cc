// The operator page's JSON (router/operator_view.h) from made-up state: its
// keys and types, how partitions are classified (moves, catch-up, lost
// primaries), lag from the primaries' stats, node status from the lease and
// the heartbeats, the query parameters, and the list look-up's answer.
#include "router/operator_view.h"

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "common/protocol.h"

namespace todo::router {
namespace {

using json = nlohmann::ordered_json;

cluster::NodeInfo Info(const std::string& name) {
  return {name,
          "data-" + name,
          "1",
          "tcp://127.0.0.1:700" + name.substr(1),
          "tcp://127.0.0.1:710" + name.substr(1),
          ""};
}

// 3 members, 8 partitions, R = 2; every replica in sync, all alive.
std::shared_ptr<io::ClusterSnapshot> Snapshot() {
  auto map = cluster::NewClusterMap({"n1", "n2", "n3"}, 8, 2, 1);
  EXPECT_TRUE(map.ok());
  auto snap = std::make_shared<io::ClusterSnapshot>();
  snap->map = std::make_shared<cluster::ClusterMap>(*map);
  for (const char* n : {"n1", "n2", "n3"}) snap->alive[n] = Info(n);
  snap->controller = "n1";
  snap->map_revision = 7;
  snap->revision = 9;
  return snap;
}

cluster::ClusterMap& MapOf(io::ClusterSnapshot& s) {
  return const_cast<cluster::ClusterMap&>(*s.map);
}

OperatorState Replicated(std::shared_ptr<io::ClusterSnapshot> snap) {
  OperatorState s;
  s.router_name = "r1";
  s.replicated = true;
  s.cluster_name = "todo";
  s.now_unix_ms = 1700000000000;
  s.steady_now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  for (const char* n : {"n1", "n2", "n3"}) {
    s.routed.push_back({n, Info(n).endpoint, NodeState::kUp, true, 120});
  }
  s.snapshot = std::move(snap);
  return s;
}

const json& Node(const json& doc, const std::string& name) {
  for (const json& n : doc["nodes"]) {
    if (n["name"] == name) return n;
  }
  static const json kNull;
  ADD_FAILURE() << "no node " << name;
  return kNull;
}

TEST(ClusterJsonTest, ReplicatedShapeHasEveryKeyWithItsType) {
  json d = ClusterJson(Replicated(Snapshot()), PartitionDetail::kAll);
  EXPECT_EQ(d["api"], kOperatorApiVersion);
  EXPECT_EQ(d["router"]["name"], "r1");
  EXPECT_EQ(d["router"]["mode"], "replicated");
  EXPECT_TRUE(d["router"]["serving"].is_boolean());
  EXPECT_TRUE(d["router"]["inflight"].is_number_unsigned());
  EXPECT_EQ(d["router"]["time_ms"], 1700000000000);
  const json& c = d["cluster"];
  EXPECT_EQ(c["name"], "todo");
  EXPECT_EQ(c["has_map"], true);
  EXPECT_EQ(c["partition_count"], 8);
  EXPECT_EQ(c["replicas"], 2);
  EXPECT_EQ(c["min_insync"], 1);
  EXPECT_TRUE(c["map_version"].is_number_unsigned());
  EXPECT_EQ(c["map_revision"], 7);
  EXPECT_EQ(c["controller"], "n1");
  EXPECT_EQ(c["partition_states"]["ok"], 8);
  ASSERT_EQ(d["nodes"].size(), 3u);
  uint32_t primaries = 0, backups = 0;
  for (const json& n : d["nodes"]) {
    EXPECT_TRUE(n["name"].is_string());
    EXPECT_TRUE(n["endpoint"].is_string());
    EXPECT_TRUE(n["repl_endpoint"].is_string());
    EXPECT_EQ(n["member"], true);
    EXPECT_EQ(n["leaving"], false);
    EXPECT_EQ(n["lease"], true);
    EXPECT_EQ(n["heartbeat"], "up");
    EXPECT_EQ(n["heard_ms_ago"], 120);
    EXPECT_EQ(n["alive"], true);
    EXPECT_EQ(n["status"], "up");
    EXPECT_EQ(n["not_in_sync"], 0);
    EXPECT_TRUE(n["stats"].is_null());
    primaries += n["primaries"].get<uint32_t>();
    backups += n["backups"].get<uint32_t>();
  }
  EXPECT_EQ(primaries, 8u);
  EXPECT_EQ(backups, 8u);
  EXPECT_EQ(d["partitions_included"], "all");
  ASSERT_EQ(d["partitions"].size(), 8u);
  for (const json& p : d["partitions"]) {
    EXPECT_TRUE(p["partition"].is_number_unsigned());
    EXPECT_TRUE(p["epoch"].is_number_unsigned());
    EXPECT_TRUE(p["leader_epoch"].is_number_unsigned());
    EXPECT_EQ(p["replicas"].size(), 2u);
    EXPECT_EQ(p["in_sync"], p["replicas"]);
    EXPECT_TRUE(p["handoff"].is_null());
    EXPECT_EQ(p["state"], "ok");
    EXPECT_TRUE(p["seq"].is_null());
    EXPECT_TRUE(p["backups"].is_array());
  }
  for (const char* k : {"moves", "not_in_sync", "unavailable"}) {
    EXPECT_TRUE(d[k].is_array() && d[k].empty()) << k;
  }
  EXPECT_EQ(d["rates"]["slot_ms"], 1000);
  EXPECT_TRUE(d["rates"]["slots"].is_array());
}

TEST(ClusterJsonTest, MovesCatchUpAndUnavailablePartitions) {
  auto snap = Snapshot();
  cluster::ClusterMap& map = MapOf(*snap);
  auto other = [&](const cluster::Partition& p) {
    for (const char* n : {"n1", "n2", "n3"}) {
      if (!p.HasReplica(n)) return std::string(n);
    }
    return std::string();
  };
  // 0: a third replica while a move runs (R = 2), catching up.
  map.parts[0].replicas.push_back(other(map.parts[0]));
  // 1: a hand-off of the primary role to its backup.
  map.parts[1].handoff = map.parts[1].replicas[1];
  // 2: its backup out of sync.
  map.parts[2].in_sync = {map.parts[2].primary()};
  // 3: its primary not in sync (nobody can serve it).
  map.parts[3].in_sync = {map.parts[3].replicas[1]};
  // 4: a replica whose member is leaving.
  const std::string leaving = map.parts[4].replicas[1];
  json d = ClusterJson(Replicated(snap), PartitionDetail::kProblems);
  EXPECT_EQ(d["partitions_included"], "problems");
  std::map<uint32_t, std::string> states;
  for (const json& p : d["partitions"]) states[p["partition"]] = p["state"];
  EXPECT_EQ(states[0], "moving");
  EXPECT_EQ(states[1], "moving");
  EXPECT_EQ(states[2], "catching_up");
  EXPECT_EQ(states[3], "unavailable");
  EXPECT_FALSE(states.contains(5)) << "ok partitions are left out with partitions=problems";
  ASSERT_EQ(d["moves"].size(), 2u);
  EXPECT_EQ(d["moves"][0]["partition"], 0);
  EXPECT_EQ(d["moves"][0]["reasons"], json::array({"more_replicas_than_r"}));
  EXPECT_EQ(d["moves"][1]["partition"], 1);
  EXPECT_EQ(d["moves"][1]["handoff"], map.parts[1].replicas[1]);
  EXPECT_EQ(d["unavailable"], json::array({3}));
  // Not in sync: partition 0's new replica, 2's backup, 3's primary.
  ASSERT_EQ(d["not_in_sync"].size(), 3u);
  EXPECT_EQ(d["not_in_sync"][1]["partition"], 2);
  EXPECT_EQ(d["not_in_sync"][1]["replica"], map.parts[2].replicas[1]);
  EXPECT_EQ(d["not_in_sync"][1]["alive"], true);
  EXPECT_TRUE(d["not_in_sync"][1]["lag"].is_null()) << "no stats yet";
  EXPECT_EQ(d["cluster"]["partition_states"]["moving"], 2);
  EXPECT_EQ(d["cluster"]["partition_states"]["ok"], 4);

  MapOf(*snap).FindMember(leaving)->leaving = true;
  d = ClusterJson(Replicated(snap), PartitionDetail::kNone);
  EXPECT_TRUE(d["partitions"].empty());
  EXPECT_EQ(Node(d, leaving)["leaving"], true);
  bool found = false;
  for (const json& m : d["moves"]) {
    if (m["partition"] == 4) {
      found = true;
      EXPECT_EQ(m["reasons"], json::array({"leaving_member"}));
    }
  }
  EXPECT_TRUE(found) << d["moves"].dump();
}

TEST(ClusterJsonTest, LagComesFromThePrimarysStats) {
  auto snap = Snapshot();
  cluster::ClusterMap& map = MapOf(*snap);
  const std::string primary = map.parts[2].primary();
  const std::string backup = map.parts[2].replicas[1];
  map.parts[2].in_sync = {primary};
  OperatorState s = Replicated(snap);
  NodeStatsEntry e;
  e.result = std::make_shared<const json>(json::parse(R"({
      "inflight": 3, "live_actors": 17,
      "partitions": [{"partition": 2, "role": "primary", "epoch": 4, "seq": 42,
                      "backups": [{"name": ")" + backup +
                                                      R"(", "mode": "snapshot",
                                   "in_sync": false, "acked": 10, "lag": 32}]}]})"));
  e.answered_at = s.steady_now - std::chrono::milliseconds(300);
  e.last_ok = true;
  s.stats[primary] = e;
  json d = ClusterJson(s, PartitionDetail::kAll);
  ASSERT_EQ(d["not_in_sync"].size(), 1u);
  EXPECT_EQ(d["not_in_sync"][0]["mode"], "snapshot");
  EXPECT_EQ(d["not_in_sync"][0]["lag"], 32);
  EXPECT_EQ(d["not_in_sync"][0]["acked"], 10);
  EXPECT_EQ(d["partitions"][2]["seq"], 42);
  EXPECT_EQ(d["partitions"][2]["backups"][0]["lag"], 32);
  const json& n = Node(d, primary);
  EXPECT_EQ(n["stats"]["ok"], true);
  EXPECT_TRUE(n["stats"]["error"].is_null());
  EXPECT_EQ(n["stats"]["age_ms"], 300);
  EXPECT_EQ(n["stats"]["inflight"], 3);
  EXPECT_EQ(n["stats"]["live_actors"], 17);
  EXPECT_EQ(Node(d, backup)["not_in_sync"], 1);
}

TEST(ClusterJsonTest, ANodeIsDownWhenItsLeaseOrItsHeartbeatsAreGone) {
  auto snap = Snapshot();
  snap->alive.erase("n3");  // lease expired
  OperatorState s = Replicated(snap);
  s.routed[1].state = NodeState::kDown;  // n2: heartbeats silent
  json d = ClusterJson(s, PartitionDetail::kAll);
  EXPECT_EQ(Node(d, "n1")["status"], "up");
  EXPECT_EQ(Node(d, "n2")["status"], "down");
  EXPECT_EQ(Node(d, "n2")["lease"], true);
  EXPECT_EQ(Node(d, "n2")["heartbeat"], "down");
  EXPECT_EQ(Node(d, "n3")["status"], "down");
  EXPECT_EQ(Node(d, "n3")["lease"], false);
  EXPECT_EQ(Node(d, "n3")["alive"], false);
  EXPECT_TRUE(Node(d, "n3")["repl_endpoint"].is_null());
  // Partitions led by n3 have no live primary.
  for (const json& p : d["partitions"]) {
    if (p["replicas"][0] == "n3") {
      EXPECT_EQ(p["state"], "unavailable");
    }
  }
}

TEST(ClusterJsonTest, StaticModeHasNodesAndRatesOnly) {
  OperatorState s;
  s.router_name = "r1";
  s.routed = {{"a", "tcp://h:1", NodeState::kUp, true, 5},
              {"b", "tcp://h:2", NodeState::kDown, true, 4000},
              {"c", "tcp://h:3", NodeState::kStarting, false, 100}};
  RateSlot slot;
  slot.end_unix_ms = 5;
  slot.seconds = 1;
  slot.requests = 10;
  slot.replies[0] = 9;
  slot.replies[3] = 1;
  slot.latency_buckets.assign(std::size(metrics::kLatencySeconds) + 1, 0);
  slot.latency_buckets[4] = 9;
  s.rates = {slot};
  json d = ClusterJson(s, PartitionDetail::kAll);
  EXPECT_EQ(d["router"]["mode"], "static");
  EXPECT_TRUE(d["cluster"].is_null());
  ASSERT_EQ(d["nodes"].size(), 3u);
  EXPECT_EQ(d["nodes"][0]["status"], "up");
  EXPECT_TRUE(d["nodes"][0]["lease"].is_null());
  EXPECT_EQ(d["nodes"][0]["member"], true);
  EXPECT_EQ(d["nodes"][1]["status"], "down");
  EXPECT_EQ(d["nodes"][2]["status"], "starting");
  EXPECT_TRUE(d["nodes"][2]["heard_ms_ago"].is_null()) << "never heard";
  EXPECT_TRUE(d["partitions"].empty());
  const json& r = d["rates"]["slots"][0];
  EXPECT_EQ(r["requests"], 10);
  EXPECT_EQ(r["replies"]["ok"], 9);
  EXPECT_EQ(r["replies"]["not_found"], 1);
  EXPECT_EQ(r["replies"].size(), 8u) << "every code, always";
  EXPECT_EQ(r["latency_count"], 9);
  EXPECT_TRUE(r["p99_ms"].is_number());
  EXPECT_LE(r["p99_ms"].get<double>(), 1.0);
}

TEST(OperatorQueryTest, ClusterQuery) {
  EXPECT_EQ(*ParseClusterQuery("/api/cluster"), PartitionDetail::kAll);
  EXPECT_EQ(*ParseClusterQuery("/api/cluster?partitions=all"), PartitionDetail::kAll);
  EXPECT_EQ(*ParseClusterQuery("/api/cluster?partitions=problems"), PartitionDetail::kProblems);
  EXPECT_EQ(*ParseClusterQuery("/api/cluster?partitions=none"), PartitionDetail::kNone);
  for (const char* bad : {"/api/cluster?partitions=some", "/api/cluster?partitions=",
                          "/api/cluster?x=1", "/api/cluster?partitions=all&partitions=none"}) {
    auto r = ParseClusterQuery(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    EXPECT_FALSE(r.status().message().empty());
  }
  EXPECT_NE(ParseClusterQuery("/api/cluster?x=1").status().message().find("'x'"),
            std::string::npos);
}

TEST(OperatorQueryTest, ListQuery) {
  EXPECT_EQ(*ParseListQuery("/api/list?name=bob"), "bob");
  EXPECT_EQ(*ParseListQuery("/api/list?name=a%2Fb+c"), "a/b c");
  for (const char* bad :
       {"/api/list", "/api/list?name=", "/api/list?list=bob", "/api/list?name=a&name=b"}) {
    auto r = ParseListQuery(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  }
}

std::string EntriesReply(size_t n) {
  msgpack::sbuffer b;
  protocol::BeginOkReply(b, protocol::RequestId::Uint(1));
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    pk.pack_map(3);
    pk.pack("id");
    pk.pack(i + 1);
    pk.pack("date");
    pk.pack("2026-12-19");
    pk.pack("title");
    pk.pack("t");
  }
  return std::string(b.data(), b.size());
}

std::string ErrorReply(ErrorCode code, const std::string& message) {
  msgpack::sbuffer b;
  protocol::EncodeError(b, protocol::RequestId::Uint(1), code, message);
  return std::string(b.data(), b.size());
}

TEST(ListLookupTest, ReplicatedOwnerReplicasAndCount) {
  auto snap = Snapshot();
  const cluster::Partition& p = snap->map->parts[5];
  msgpack::sbuffer loc;
  protocol::EncodeLocateReplicated(loc, protocol::RequestId::Uint(1), p.primary(), p.replicas, 5,
                                   p.epoch);
  snap->alive.erase(p.replicas[1]);
  http::HttpReply r =
      ListLookupReply("bob", std::string_view(loc.data(), loc.size()), EntriesReply(3), snap.get());
  ASSERT_EQ(r.status, 200);
  json d = json::parse(r.body);
  EXPECT_EQ(d["list"], "bob");
  EXPECT_EQ(d["node"], p.primary());
  EXPECT_EQ(d["replicas"], p.replicas);
  EXPECT_EQ(d["partition"], 5);
  EXPECT_EQ(d["epoch"], p.epoch);
  EXPECT_EQ(d["in_sync"], p.in_sync);
  EXPECT_EQ(d["alive"][p.primary()], true);
  EXPECT_EQ(d["alive"][p.replicas[1]], false);
  EXPECT_EQ(d["entries"], 3);
  EXPECT_TRUE(d["entries_error"].is_null());
}

TEST(ListLookupTest, StaticOwnerAndTheEntriesError) {
  msgpack::sbuffer loc;
  protocol::EncodeLocate(loc, protocol::RequestId::Uint(1), "n2");
  http::HttpReply r =
      ListLookupReply("bob", std::string_view(loc.data(), loc.size()),
                      ErrorReply(ErrorCode::kUnavailable, "node n2 is down"), nullptr);
  ASSERT_EQ(r.status, 200);
  json d = json::parse(r.body);
  EXPECT_EQ(d["node"], "n2");
  EXPECT_EQ(d["replicas"], json::array({"n2"}));
  EXPECT_TRUE(d["partition"].is_null());
  EXPECT_TRUE(d["in_sync"].is_null());
  EXPECT_TRUE(d["entries"].is_null());
  EXPECT_EQ(d["entries_error"]["code"], "unavailable");
  EXPECT_EQ(d["entries_error"]["message"], "node n2 is down");
}

TEST(ListLookupTest, ALocateErrorIsTheAnswer) {
  http::HttpReply r =
      ListLookupReply("x", ErrorReply(ErrorCode::kBadRequest, "key 'list' must be 1-255 bytes"),
                      EntriesReply(0), nullptr);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("\"bad_request\""), std::string::npos);
  r = ListLookupReply("x", "garbage", EntriesReply(0), nullptr);
  EXPECT_EQ(r.status, 500);
}

}  // namespace
}  // namespace todo::router
