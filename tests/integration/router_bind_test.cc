// todo-router, black box: it never shares or steals an address. A second
// router given the --http port, the ZeroMQ port or the ipc:// path another
// serves refuses to start (exit 1) and the first keeps its address; a port
// out of range is a usage error (exit 2).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

class RouterBindTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    ASSERT_FALSE(RouterBinary().empty()) << "built without a todo-router target";
  }
  // todo-router --listen listen --node n1=<a port nobody serves> + extra.
  Process* LaunchRouter(const std::string& listen, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--listen", listen,
                                     "--name",   "r" + std::to_string(++n_),
                                     "--node",   "n1=" + FreeLoopbackEndpoint()};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string base = tmp_.Sub("router-" + std::to_string(n_));
    Process* p = processes_.Start(RouterBinary(), args, base + ".out", base + ".err");
    EXPECT_NE(p, nullptr);
    return p;
  }
  Process* StartRouter(const std::string& listen, const std::vector<std::string>& extra = {}) {
    Process* p = LaunchRouter(listen, extra);
    if (p == nullptr || !WaitUntilReady(listen, kStartTimeout, p)) {
      ADD_FAILURE() << "router did not answer ping on " << listen;
      return nullptr;
    }
    return p;
  }
  // Waits for `p` to exit with `code`; its stderr must contain `needle`.
  void ExpectExit(Process* p, int code, const std::string& needle) {
    ASSERT_NE(p, nullptr);
    auto st = p->WaitExit(Millis(30000));
    ASSERT_TRUE(st.has_value()) << "still running; stderr: " << p->ReadStderr();
    EXPECT_TRUE(st->exited() && st->code() == code) << st->ToString() << ": " << p->ReadStderr();
    EXPECT_NE(p->ReadStderr().find(needle), std::string::npos) << p->ReadStderr();
  }
  std::string NameOf(const std::string& endpoint) {
    Client c(endpoint);
    Reply r = MustCall(c, {{"op", "ping"}});
    return AsStr(MapGet(r.result(), "name")).value_or("?");
  }

  int n_ = 0;
};

TEST_F(RouterBindTest, HttpPortInUseIsRefusedNotShared) {
  const std::string http = "127.0.0.1:" + std::to_string(FreeTcpPort());
  const std::string first = FreeLoopbackEndpoint();
  ASSERT_NE(StartRouter(first, {"--http", http}), nullptr);
  // cpp-httplib sets SO_REUSEPORT by default: two routers would both bind
  // the port and the kernel would split connections between them.
  ExpectExit(LaunchRouter(FreeLoopbackEndpoint(), {"--http", http}), 1,
             "cannot bind HTTP on " + http);
  EXPECT_EQ(NameOf(first), "r1");
}

TEST_F(RouterBindTest, HttpPortHeldByAnotherProgramIsRefused) {
  // A plain listener with SO_REUSEPORT set, as another server might have.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string http = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ExpectExit(LaunchRouter(FreeLoopbackEndpoint(), {"--http", http}), 1,
             "cannot bind HTTP on " + http);
  close(fd);
}

TEST_F(RouterBindTest, ZeroMqPortInUseIsRefused) {
  const std::string listen = FreeLoopbackEndpoint();
  ASSERT_NE(StartRouter(listen), nullptr);
  ExpectExit(LaunchRouter(listen), 1, "Address already in use");
  EXPECT_EQ(NameOf(listen), "r1");
}

TEST_F(RouterBindTest, IpcPathOfALiveRouterIsRefused) {
  const std::string listen = "ipc://" + tmp_.Sub("router.sock");
  ASSERT_NE(StartRouter(listen), nullptr);
  ExpectExit(LaunchRouter(listen), 1, "another process is listening on " + tmp_.Sub("router.sock"));
  EXPECT_EQ(NameOf(listen), "r1");  // the path still leads to the first router
}

TEST_F(RouterBindTest, OutOfRangePortsAreUsageErrors) {
  ExpectExit(LaunchRouter("tcp://127.0.0.1:99999"), 2, "todo-router: error: --listen");
  ExpectExit(LaunchRouter(FreeLoopbackEndpoint(), {"--http", "127.0.0.1:70000"}), 2,
             "todo-router: error: --http");
  ExpectExit(LaunchRouter(FreeLoopbackEndpoint(), {"--node", "n2=tcp://127.0.0.1:65536"}), 2,
             "todo-router: error: ");
}

}  // namespace
}  // namespace todo::testing
