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

// A raw HTTP/1.1 client on loopback (blocking, 10 s receive timeout).
class HttpClient {
 public:
  explicit HttpClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~HttpClient() { close(fd_); }
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
    HttpClient c(port);
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
    HttpClient bad(port);
    bad.Send("NOT HTTP AT ALL\r\n\r\n");
    EXPECT_TRUE(bad.Read().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_TRUE(bad.Closed());
  }
  // 300 connections, each with a request in flight at once.
  std::vector<std::unique_ptr<HttpClient>> many;
  for (int i = 0; i < 300; ++i) {
    many.push_back(std::make_unique<HttpClient>(port));
    many.back()->Send("GET /lists/many-" + std::to_string(i % 30) + "/entries HTTP/1.1\r\n\r\n");
  }
  int ok = 0;
  for (auto& c : many) ok += c->Read().starts_with("HTTP/1.1 200 OK\r\n") ? 1 : 0;
  EXPECT_EQ(ok, 300) << cluster_->DumpLogs();
}

// shared/spec/retries.md over HTTP: a write sent again with the same
// Idempotency-Key happens once and gets the first answer (the book's POST
// and the JSON API's POST, PATCH, DELETE); a bad or repeated key is a 400
// that names the header.
TEST_F(ClusterHttpTest, IdempotencyKeyMakesRetriedWritesHappenOnce) {
  const int port = FreeTcpPort();
  ASSERT_GE(cluster_->StartRouterToAll({"--http", "127.0.0.1:" + std::to_string(port)}), 0);
  HttpClient c(port);
  ASSERT_TRUE(c.connected());
  const std::string book =
      "POST /add_entry?list=idem&date=2026-12-19&title=Dentist HTTP/1.1\r\n"
      "Idempotency-Key: book-1\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    c.Send(book);
    EXPECT_EQ(Body(c.Read()), "OK");
  }
  c.Send("GET /entries?list=idem&date=2026-12-19 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Body(c.Read()), "2026-12-19 Dentist\n");

  const std::string json = R"({"date":"2026-12-20","title":"Movies"})";
  const std::string create =
      "POST /lists/idem/entries HTTP/1.1\r\nIdempotency-Key: \"c-1\"\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(json.size()) + "\r\n\r\n" + json;
  c.Send(create);
  const std::string first = c.Read();
  EXPECT_TRUE(first.starts_with("HTTP/1.1 201 ")) << first;
  c.Send(create);
  const std::string again = c.Read();
  EXPECT_TRUE(again.starts_with("HTTP/1.1 201 ")) << again;
  EXPECT_EQ(Body(first), Body(again));  // the same id: the first answer
  // The second POST made no second entry.
  c.Send("GET /lists/idem/entries HTTP/1.1\r\n\r\n");
  const std::string all = Body(c.Read());
  EXPECT_EQ(all.find("Movies"), all.rfind("Movies")) << all;

  const std::string patch = R"({"title":"Cinema"})";
  const std::string del_key =
      "DELETE /lists/idem/entries/1 HTTP/1.1\r\nIdempotency-Key: d-1\r\n\r\n";
  c.Send("PATCH /lists/idem/entries/2 HTTP/1.1\r\nIdempotency-Key: p-1\r\nContent-Length: " +
         std::to_string(patch.size()) + "\r\n\r\n" + patch);
  EXPECT_TRUE(c.Read().starts_with("HTTP/1.1 200 "));
  c.Send(del_key);
  EXPECT_TRUE(c.Read().starts_with("HTTP/1.1 200 "));
  c.Send(del_key);  // a retried delete is the first answer, not not_found
  const std::string del_again = c.Read();
  EXPECT_TRUE(del_again.starts_with("HTTP/1.1 200 ")) << del_again;
  c.Send("GET /lists/idem/entries HTTP/1.1\r\n\r\n");
  const std::string left = Body(c.Read());
  EXPECT_NE(left.find("Cinema"), std::string::npos) << left;
  EXPECT_EQ(left.find("Dentist"), std::string::npos) << left;

  c.Send(
      "POST /add_entry?list=idem&date=2026-12-19&title=X HTTP/1.1\r\n"
      "Idempotency-Key: a\r\nIdempotency-Key: b\r\n\r\n");
  const std::string twice = c.Read();
  EXPECT_TRUE(twice.starts_with("HTTP/1.1 400 ")) << twice;
  EXPECT_NE(twice.find("Idempotency-Key"), std::string::npos) << twice;
  c.Send("DELETE /lists/idem/entries/2 HTTP/1.1\r\nIdempotency-Key: " + std::string(65, 'k') +
         "\r\n\r\n");
  const std::string too_long = c.Read();
  EXPECT_TRUE(too_long.starts_with("HTTP/1.1 400 ")) << too_long;
  EXPECT_NE(too_long.find("Idempotency-Key"), std::string::npos) << too_long;
}

TEST_F(ClusterHttpTest, SigtermAnswersHttpRequestsInFlightThenExits) {
  const int port = FreeTcpPort();
  int r = cluster_->StartRouterToAll(
      {"--timeout-ms", "1500", "--http", "127.0.0.1:" + std::to_string(port)});
  ASSERT_GE(r, 0);
  const std::string list = cluster_->ListsOwnedBy("n1", "frozen", 1)[0];
  Process& n1 = *cluster_->node(0).process;
  ASSERT_TRUE(n1.Signal(SIGSTOP));
  HttpClient waiting(port);
  waiting.Send("GET /lists/" + list + "/entries HTTP/1.1\r\n\r\n");
  HttpClient idle(port);
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
