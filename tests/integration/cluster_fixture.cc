#include "tests/integration/cluster_fixture.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

namespace todo::testing {

// --- Rendezvous -----------------------------------------------------------------

uint64_t TestFnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t TestMix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t TestScore(std::string_view node, std::string_view list) {
  return TestMix64(TestFnv1a64(node) ^ TestMix64(TestFnv1a64(list)));
}

std::string ExpectedOwner(const std::vector<std::string>& nodes, std::string_view list) {
  std::string best;
  uint64_t best_score = 0;
  bool first = true;
  for (const std::string& n : nodes) {
    uint64_t s = TestScore(n, list);
    if (first || s > best_score || (s == best_score && n < best)) {
      best = n;
      best_score = s;
      first = false;
    }
  }
  return best;
}

// --- Cluster --------------------------------------------------------------------

namespace {

constexpr Millis kReadyTimeout(30000);

}  // namespace

Cluster::Cluster(int nodes) {
  for (int i = 1; i <= nodes; ++i) {
    ClusterNode n;
    n.name = "n" + std::to_string(i);
    n.endpoint = FreeLoopbackEndpoint();
    n.data = tmp_.Sub("data-" + n.name);
    std::filesystem::create_directories(n.data);
    nodes_.push_back(std::move(n));
  }
}

Cluster::~Cluster() {
  // A frozen process would ignore SIGTERM; continue everyone first.
  for (auto& n : nodes_) {
    if (n.process) n.process->Signal(SIGCONT);
  }
  for (auto& r : routers_) {
    if (r.process) r.process->Signal(SIGCONT);
  }
  for (auto& r : routers_) {
    if (r.process) r.process->Kill9();
  }
  for (auto& n : nodes_) {
    if (n.process) n.process->Kill9();
  }
}

std::vector<std::string> Cluster::node_names() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n.name);
  return out;
}

size_t Cluster::NodeIndex(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].name == name) return i;
  }
  ADD_FAILURE() << "no node named " << name;
  return 0;
}

std::string Cluster::LogPath(const std::string& who, int n) const {
  return tmp_.Sub(who + "-" + std::to_string(n) + ".log");
}

bool Cluster::StartNode(size_t i, const std::vector<std::string>& extra) {
  ClusterNode& n = nodes_[i];
  if (n.process && n.process->Running()) {
    ADD_FAILURE() << "node " << n.name << " is already running";
    return false;
  }
  std::string log = LogPath(n.name, ++starts_);
  logs_.push_back(log);
  n.process = Process::Start(NodeBinary(), NodeArgs(n.name, n.endpoint, n.data, extra), log);
  if (!n.process) {
    ADD_FAILURE() << "could not start " << NodeBinary();
    return false;
  }
  if (!WaitUntilReady(n.endpoint, kReadyTimeout, n.process.get())) {
    ADD_FAILURE() << "node " << n.name << " did not answer ping within " << kReadyTimeout.count()
                  << " ms"
                  << (n.process->Running() ? ""
                                           : " (" + n.process->exit_status()->ToString() + ")");
    return false;
  }
  return true;
}

bool Cluster::StartAllNodes(const std::vector<std::string>& extra) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!StartNode(i, extra)) return false;
  }
  return true;
}

std::vector<std::string> Cluster::NodeFlags() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) {
    out.push_back("--node");
    out.push_back(n.name + "=" + n.endpoint);
  }
  return out;
}

int Cluster::StartRouter(const std::vector<std::string>& args, const std::string& endpoint) {
  ClusterRouter r;
  r.endpoint = endpoint.empty() ? FreeLoopbackEndpoint() : endpoint;
  r.args = {"--listen", r.endpoint};
  r.args.insert(r.args.end(), args.begin(), args.end());
  std::string log = LogPath("router", ++starts_);
  logs_.push_back(log);
  r.process = Process::Start(RouterBinary(), r.args, log);
  if (!r.process) {
    ADD_FAILURE() << "could not start " << RouterBinary();
    return -1;
  }
  Process* p = r.process.get();
  std::string ep = r.endpoint;
  routers_.push_back(std::move(r));
  if (!WaitUntilReady(ep, kReadyTimeout, p)) {
    ADD_FAILURE() << "router " << ep << " did not answer ping within " << kReadyTimeout.count()
                  << " ms" << (p->Running() ? "" : " (" + p->exit_status()->ToString() + ")");
    return -1;
  }
  return static_cast<int>(routers_.size() - 1);
}

int Cluster::StartRouterToAll(const std::vector<std::string>& extra) {
  std::vector<std::string> args = NodeFlags();
  args.insert(args.end(), extra.begin(), extra.end());
  int r = StartRouter(args);
  if (r < 0) return -1;
  if (!WaitRoutesToAll(routers_[r].endpoint, kReadyTimeout)) {
    ADD_FAILURE() << "router " << routers_[r].endpoint << " did not reach every node within "
                  << kReadyTimeout.count() << " ms";
    return -1;
  }
  return r;
}

bool Cluster::WaitRoutesTo(const std::string& router_endpoint, size_t node, Millis timeout) {
  const std::string list = ListsOwnedBy(nodes_[node].name, "route-probe", 1)[0];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Client client(router_endpoint);
  uint64_t id = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    client.Send(WithId(EntriesReq(list), ++id));
    // Replies to earlier probes may still come; only this probe's counts.
    const auto probe_deadline = std::chrono::steady_clock::now() + Millis(300);
    while (std::chrono::steady_clock::now() < probe_deadline) {
      auto reply = client.Recv(Millis(50));
      if (reply && AsUint(reply->Get("id")) == id) {
        if (reply->ok()) return true;
        break;
      }
    }
    // A bounded pause between probes so a refusing router isn't flooded.
    std::this_thread::sleep_for(Millis(20));
  }
  return false;
}

bool Cluster::WaitRoutesToAll(const std::string& router_endpoint, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (!WaitRoutesTo(router_endpoint, i, std::max(left, Millis(0)))) return false;
  }
  return true;
}

std::vector<std::string> Cluster::ListsOwnedBy(const std::string& owner, const std::string& prefix,
                                               size_t count) const {
  std::vector<std::string> out;
  const std::vector<std::string> names = node_names();
  for (int k = 0; out.size() < count && k < 1000000; ++k) {
    std::string list = prefix + "-" + std::to_string(k);
    if (ExpectedOwner(names, list) == owner) out.push_back(list);
  }
  return out;
}

std::string Cluster::DumpLogs() const {
  std::ostringstream ss;
  for (const std::string& path : logs_) {
    std::string text = ReadFile(path);
    if (text.empty()) continue;
    if (text.size() > 6000) text = "...\n" + text.substr(text.size() - 6000);
    ss << "----- " << path << " -----\n" << text << "\n";
  }
  return ss.str();
}

// --- Fixtures ---------------------------------------------------------------------

void ClusterTest::SetUp() {
  ASSERT_FALSE(NodeBinary().empty()) << "built without a todo-node target";
  ASSERT_FALSE(RouterBinary().empty()) << "built without a todo-router target";
  cluster_ = std::make_unique<Cluster>(3);
  ASSERT_TRUE(cluster_->StartAllNodes());
}

void ClusterTest::TearDown() {
  if (HasFailure() && cluster_) std::cerr << cluster_->DumpLogs();
  cluster_.reset();
}

void SharedClusterTest::SetUpTestSuite() {
  if (NodeBinary().empty() || RouterBinary().empty()) {
    setup_error_ = "built without todo-node or todo-router";
    return;
  }
  cluster_ = std::make_unique<Cluster>(3);
  if (!cluster_->StartAllNodes()) {
    setup_error_ = "nodes did not start";
    return;
  }
  int a = cluster_->StartRouterToAll({"--name", kRouterAName});
  int b = cluster_->StartRouterToAll();
  if (a < 0 || b < 0) {
    setup_error_ = "routers did not start";
    return;
  }
  router_a_ = cluster_->router(a).endpoint;
  router_b_ = cluster_->router(b).endpoint;
}

void SharedClusterTest::TearDownTestSuite() {
  if (!setup_error_.empty() && cluster_) std::cerr << cluster_->DumpLogs();
  cluster_.reset();
}

void SharedClusterTest::SetUp() {
  ASSERT_TRUE(setup_error_.empty()) << "suite setup failed: " << setup_error_;
}

void SharedClusterTest::TearDown() {
  if (HasFailure() && cluster_) std::cerr << cluster_->DumpLogs();
}

std::string TestListPrefix() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? info->name() : "test";
  return name + "-" + std::to_string(getpid());
}

const char* ModeName(Client::Mode mode) {
  switch (mode) {
    case Client::Mode::kDealer:
      return "DEALER";
    case Client::Mode::kDealerWithDelimiter:
      return "DEALER+delimiter";
    case Client::Mode::kReq:
      return "REQ";
  }
  return "?";
}

void ExpectReplyFraming(Client::Mode mode, const Reply& reply) {
  if (mode == Client::Mode::kDealerWithDelimiter) {
    ASSERT_EQ(reply.frames().size(), 2u) << ModeName(mode) << ": " << reply.ToString();
    EXPECT_EQ(reply.frames()[0], "") << ModeName(mode) << ": delimiter not empty";
  } else {
    EXPECT_EQ(reply.frames().size(), 1u) << ModeName(mode) << ": " << reply.ToString();
  }
  EXPECT_TRUE(reply.is_map()) << ModeName(mode) << ": " << reply.ToString();
}

std::string LocateOk(Client& client, const std::string& list) {
  Reply reply = MustCall(client, {{"op", "locate"}, {"list", list}});
  auto node = AsStr(MapGet(ExpectOk(reply), "node"));
  EXPECT_TRUE(node.has_value()) << "locate result has no str node: " << reply.ToString();
  return node.value_or("");
}

}  // namespace todo::testing
