// Shared fixture for the cluster integration tests: real todo-node and
// todo-router processes on loopback, each on a free port with its own temp
// data dir, started and killed by pid, their logs printed when a test fails.
//
// The tests compute list owners with their own implementation of the
// rendezvous formula documented in common/rendezvous.h (they do not link
// common/), so a router that drifts from the documented formula fails.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {

// --- Rendezvous, re-implemented from the documented formula ------------------

uint64_t TestFnv1a64(std::string_view bytes);
uint64_t TestMix64(uint64_t x);
// mix64(fnv1a64(node) ^ mix64(fnv1a64(list))).
uint64_t TestScore(std::string_view node, std::string_view list);
// The name with the highest score; on a tie the bytewise smallest.
// Requires !nodes.empty().
std::string ExpectedOwner(const std::vector<std::string>& nodes, std::string_view list);

// --- Processes -----------------------------------------------------------------

// One todo-node of a Cluster; its name, endpoint and data dir never change,
// so a restart comes back on the same port and data.
struct ClusterNode {
  std::string name;
  std::string endpoint;
  std::string data;
  std::unique_ptr<Process> process;  // null until started; kept after exit
};

// One todo-router of a Cluster.
struct ClusterRouter {
  std::string endpoint;
  std::vector<std::string> args;
  std::unique_ptr<Process> process;
};

// N nodes named n1..nN and any number of routers, in one temp dir. Not
// thread-safe. The destructor continues stopped processes (SIGCONT) and
// SIGKILLs everything still running.
class Cluster {
 public:
  explicit Cluster(int nodes);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const TempDir& tmp() const { return tmp_; }
  std::vector<std::string> node_names() const;
  ClusterNode& node(size_t i) { return nodes_[i]; }
  size_t node_count() const { return nodes_.size(); }
  ClusterRouter& router(size_t i) { return routers_[i]; }
  // The index of the node named `name` (a failure and 0 if none).
  size_t NodeIndex(const std::string& name) const;

  // Starts (or restarts) node i with `extra` flags and waits until it answers
  // ping directly. False (and a test failure) if it doesn't within 30 s.
  bool StartNode(size_t i, const std::vector<std::string>& extra = {});
  bool StartAllNodes(const std::vector<std::string>& extra = {});
  // "--node n1=EP --node n2=EP ..." in node order.
  std::vector<std::string> NodeFlags() const;

  // Starts todo-router --listen <fresh endpoint> + `args` (give it the node
  // flags yourself) and waits until it answers ping. Returns its index, or
  // -1 (and a test failure). If `endpoint` is non-empty it is used as the
  // listen endpoint instead of a fresh one.
  int StartRouter(const std::vector<std::string>& args, const std::string& endpoint = "");
  // StartRouter(NodeFlags() + extra), then waits until the router forwards to
  // every node (WaitRoutesToAll). -1 on failure.
  int StartRouterToAll(const std::vector<std::string>& extra = {});

  // Polls `entries` through the router on a list owned by each node until
  // each answers ok, up to `timeout`. False (no failure recorded) if not.
  bool WaitRoutesToAll(const std::string& router_endpoint, Millis timeout);
  // Same for the lists of node i only.
  bool WaitRoutesTo(const std::string& router_endpoint, size_t node, Millis timeout);

  // `count` distinct list names "<prefix>-<k>" whose expected owner is the
  // node named `owner` (over node_names()).
  std::vector<std::string> ListsOwnedBy(const std::string& owner, const std::string& prefix,
                                        size_t count) const;

  // Every process's log, for failure output.
  std::string DumpLogs() const;

 private:
  std::string LogPath(const std::string& who, int n) const;

  TempDir tmp_;
  std::vector<ClusterNode> nodes_;
  std::vector<ClusterRouter> routers_;
  std::vector<std::string> logs_;  // every log file ever written
  int starts_ = 0;
};

// A whole cluster per test: 3 nodes, no routers yet (the test starts the
// routers it wants, with the timeouts it wants).
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<Cluster> cluster_;
};

// One cluster for the whole suite: 3 nodes and two routers to all of them,
// A (--name router-a) and B (no --name). For tests that don't harm it;
// every test uses its own list names.
class SharedClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  static Cluster& cluster() { return *cluster_; }
  static const std::string& router_a() { return router_a_; }
  static const std::string& router_b() { return router_b_; }

  static inline std::unique_ptr<Cluster> cluster_;
  static inline std::string router_a_;
  static inline std::string router_b_;
  static inline std::string setup_error_;
};

// The router name given to router A of SharedClusterTest.
inline constexpr const char* kRouterAName = "router-a";

// A unique-enough prefix for list names of one test (test name + pid).
std::string TestListPrefix();

// "DEALER", "DEALER+delimiter", "REQ".
const char* ModeName(Client::Mode mode);
// Expects the frames a client of `mode` must see for a reply: the body alone,
// or an empty delimiter then the body (a REQ socket strips the delimiter).
void ExpectReplyFraming(Client::Mode mode, const Reply& reply);

// `locate` through `router`; "" (and a failure) if the reply is not ok.
std::string LocateOk(Client& client, const std::string& list);

}  // namespace todo::testing
