// The router's HTTP front end inside its poll loop (router/http_frontend.h),
// black box over raw sockets: the book's endpoints through the router to
// the nodes, many connections at once, pipelining, bad input beside good
// requests, and a SIGTERM while HTTP requests wait on a frozen node (each
// still gets its one answer: 504 at the deadline). Runs under the
// sanitizers with the other integration tests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

using ClusterHttpTest = ClusterTest;

class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(std::string_view s) { (void)!send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }
  // One answer (status line to the end of its Content-Length body), or ""
  // if the connection closed or 10 s passed first.
  std::string Read() {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = buf_.find("Content-Length: ");
        size_t len = cl < end ? std::stoul(buf_.substr(cl + 16)) : 0;
        if (buf_.size() >= end + 4 + len) {
          std::string answer = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return answer;
        }
      }
      char tmp[16384];
      ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return "";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  bool Closed() {
    char tmp[256];
    return recv(fd_, tmp, sizeof tmp, 0) <= 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Body(const std::string& answer) { return answer.substr(answer.find("\r\n\r\n") + 4); }

TEST_F(ClusterHttpTest, BookEndpointsPipeliningBadInputAndManyConnections) {
  const int port = FreeTcpPort();
  ASSERT_GE(cluster_->StartRouterToAll({"--http", "127.0.0.1:" + std::to_string(port)}), 0);
  {
    Client c(port);
    ASSERT_TRUE(c.connected());
    c.Send(
        "POST /add_entry?list=bob&date=2026-12-19&title=Dentist HTTP/1.1\r\n\r\n"
        "POST /add_entry?list=bob&date=2026-12-19&title=Movies HTTP/1.1\r\n\r\n"
        "GET /entries?list=bob&date=2026-12-19 HTTP/1.1\r\n\r\n");
    EXPECT_EQ(Body(c.Read()), "OK");
    EXPECT_EQ(Body(c.Read()), "OK");
    std::string entries = c.Read();
    EXPECT_TRUE(entries.starts_with("HTTP/1.1 200 OK\r\n")) << entries;
    EXPECT_EQ(Body(entries), "2026-12-19 Dentist\n2026-12-19 Movies\n");
    c.Send("GET /health HTTP/1.1\r\n\r\n");
    EXPECT_NE(c.Read().find("\"status\":\"serving\""), std::string::npos);
  }
  {
    Client bad(port);
    bad.Send("NOT HTTP AT ALL\r\n\r\n");
    EXPECT_TRUE(bad.Read().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_TRUE(bad.Closed());
  }
  // 300 connections, each with a request in flight at once.
  std::vector<std::unique_ptr<Client>> many;
  for (int i = 0; i < 300; ++i) {
    many.push_back(std::make_unique<Client>(port));
    many.back()->Send("GET /lists/many-" + std::to_string(i % 30) + "/entries HTTP/1.1\r\n\r\n");
  }
  int ok = 0;
  for (auto& c : many) ok += c->Read().starts_with("HTTP/1.1 200 OK\r\n") ? 1 : 0;
  EXPECT_EQ(ok, 300) << cluster_->DumpLogs();
}

TEST_F(ClusterHttpTest, SigtermAnswersHttpRequestsInFlightThenExits) {
  const int port = FreeTcpPort();
  int r = cluster_->StartRouterToAll(
      {"--timeout-ms", "1500", "--http", "127.0.0.1:" + std::to_string(port)});
  ASSERT_GE(r, 0);
  const std::string list = cluster_->ListsOwnedBy("n1", "frozen", 1)[0];
  Process& n1 = *cluster_->node(0).process;
  ASSERT_TRUE(n1.Signal(SIGSTOP));
  Client waiting(port);
  waiting.Send("GET /lists/" + list + "/entries HTTP/1.1\r\n\r\n");
  Client idle(port);
  idle.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_NE(idle.Read().find("200 OK"), std::string::npos);
  usleep(200 * 1000);  // the request reaches the router
  Process& router = *cluster_->router(static_cast<size_t>(r)).process;
  ASSERT_TRUE(router.Signal(SIGTERM));
  std::string answer = waiting.Read();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n")) << answer;
  EXPECT_NE(answer.find("\"code\":\"timeout\""), std::string::npos) << answer;
  auto status = router.WaitExit(Millis(10000));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->ToString(), "exit 0") << router.ReadLog();
  EXPECT_TRUE(idle.Closed());
  n1.Signal(SIGCONT);
}

}  // namespace
}  // namespace todo::testing
