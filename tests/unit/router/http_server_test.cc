// HttpServer (router/http_server.h) with a test handler, on loopback, all on
// the test's thread: the test writes with client sockets and pumps the
// server (poll its fd, Serve()) until the client has what it expects or a
// deadline passes. Short deadlines make the timeout cases quick. Runs under
// the sanitizers with the unit tests.
#include "router/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <string>
#include <vector>

namespace todo::router {
namespace {

using std::chrono::milliseconds;

struct Seen {
  HttpExchangeId id;
  std::string method, target, body;
  std::optional<std::string> idempotency_key;
};

class TestHandler : public HttpHandler {
 public:
  bool defer = false;  // else answer at once, echoing the body
  HttpServer* server = nullptr;
  std::vector<Seen> seen;

  void OnRequest(HttpExchangeId id, const HttpRequest& r) override {
    auto key = r.header("idempotency-key");
    seen.push_back({id, std::string(r.method()), std::string(r.target()), std::string(r.body()),
                    key ? std::optional<std::string>(std::string(*key)) : std::nullopt});
    if (!defer) {
      EXPECT_TRUE(server->Respond(id, Reply(200, "echo:" + std::string(r.body()))));
    }
  }
  http::HttpReply ErrorReply(std::string_view, int status, std::string_view code,
                             const std::string& message) override {
    return Reply(status, std::string(code) + ": " + message);
  }
  static http::HttpReply Reply(int status, std::string body) {
    return http::HttpReply{status, "text/plain", std::move(body), {}};
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o = {}) {
    o.address = {"127.0.0.1", 0};
    server_ = std::make_unique<HttpServer>(o, &handler_);
    handler_.server = server_.get();
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    for (int fd : clients_) close(fd);
  }

  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->port()));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    clients_.push_back(fd);
    return fd;
  }
  static void Send(int fd, std::string_view data) {
    ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  }

  // Serves until `done()` or `max` passes; returns done().
  bool Pump(const std::function<bool()>& done, milliseconds max = milliseconds(3000)) {
    auto end = std::chrono::steady_clock::now() + max;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      pollfd p{server_->fd(), POLLIN, 0};
      int n = poll(&p, 1, 5);
      server_->Serve(n > 0);
    }
    return true;
  }
  void PumpFor(milliseconds d) {
    Pump([] { return false; }, d);
  }

  // Reads what the client has (non-blocking) into buffers_[fd]; true if the
  // peer closed.
  bool Drain(int fd) {
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_[fd].append(buf, static_cast<size_t>(n));
        continue;
      }
      return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }
  // Pumps until `fd` has received something containing `needle` (count
  // times); the bytes so far.
  std::string Await(int fd, std::string_view needle, int count = 1) {
    Pump([&] {
      Drain(fd);
      size_t found = 0, pos = 0;
      while ((pos = received_[fd].find(needle, pos)) != std::string::npos) {
        ++found;
        pos += needle.size();
      }
      return found >= static_cast<size_t>(count);
    });
    return received_[fd];
  }
  bool AwaitClose(int fd, milliseconds max = milliseconds(3000)) {
    return Pump([&] { return Drain(fd); }, max);
  }

  TestHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::vector<int> clients_;
  std::map<int, std::string> received_;
};

TEST_F(HttpServerTest, AnswersAndKeepsTheConnectionOpen) {
  Start();
  int c = Connect();
  Send(c, "POST /x?a=1 HTTP/1.1\r\nHost: h\r\nIdempotency-Key: k1\r\nContent-Length: 3\r\n\r\nabc");
  std::string got = Await(c, "echo:abc");
  // Every answer carries the date (RFC 9110 6.6.1), in IMF-fixdate form.
  const std::regex date(
      "Date: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT\r\n");
  EXPECT_TRUE(std::regex_search(got, date)) << got;
  EXPECT_EQ(std::regex_replace(got, date, ""),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\necho:abc");
  ASSERT_EQ(handler_.seen.size(), 1u);
  EXPECT_EQ(handler_.seen[0].method, "POST");
  EXPECT_EQ(handler_.seen[0].target, "/x?a=1");
  EXPECT_EQ(handler_.seen[0].idempotency_key, "k1");  // request headers reach the handler
  Send(c, "GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
  Await(c, "echo:", 2);
  EXPECT_FALSE(Drain(c));
  EXPECT_EQ(server_->Stats().connections_open, 1u);
}

TEST_F(HttpServerTest, PipelinedAnswersGoOutInRequestOrder) {
  Start();
  handler_.defer = true;
  int c = Connect();
  Send(c, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Pump([&] { return handler_.seen.size() == 3; }));
  EXPECT_EQ(server_->Stats().awaiting, 3u);
  EXPECT_TRUE(server_->Respond(handler_.seen[2].id, TestHandler::Reply(200, "three")));
  EXPECT_TRUE(server_->Respond(handler_.seen[1].id, TestHandler::Reply(200, "two")));
  EXPECT_FALSE(server_->Respond(handler_.seen[1].id, TestHandler::Reply(200, "again")));
  PumpFor(milliseconds(50));
  Drain(c);
  EXPECT_EQ(received_[c], "");  // nothing before the first answer
  EXPECT_TRUE(server_->Respond(handler_.seen[0].id, TestHandler::Reply(200, "one")));
  std::string got = Await(c, "three");
  EXPECT_LT(got.find("one"), got.find("two"));
  EXPECT_LT(got.find("two"), got.find("three"));
  EXPECT_EQ(server_->Stats().awaiting, 0u);
}

TEST_F(HttpServerTest, ChunkedBodyIsJoinedAndHeadHasNoBody) {
  Start();
  int c = Connect();
  Send(c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  Await(c, "echo:abcde");
  Send(c, "HEAD /h HTTP/1.1\r\n\r\n");
  std::string got = Await(c, "HTTP/1.1 200 OK", 2);
  EXPECT_TRUE(got.ends_with("Content-Length: 5\r\n\r\n")) << got;  // "echo:", not sent
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimAnswer) {
  Start();
  int c = Connect();
  Send(c, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(Await(c, "100 Continue"), "HTTP/1.1 100 Continue\r\n\r\n");
  Send(c, "ok");
  Await(c, "echo:ok");
}

TEST_F(HttpServerTest, Http10ExpectationIsIgnored) {
  Start();
  int c = Connect();
  Send(c, "POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  PumpFor(milliseconds(100));
  Drain(c);
  EXPECT_EQ(received_[c], "");  // no interim answer to a 1.0 client
  Send(c, "ok");
  std::string got = Await(c, "echo:ok");
  EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
}

TEST_F(HttpServerTest, EmptyLinesBeforeARequestAndAbsoluteTargetsAreAccepted) {
  Start();
  int c = Connect();
  // A CRLF after a POST body (old clients), then an absolute-form target.
  Send(c,
       "\r\nPOST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n"
       "GET http://example.org:8080/b?c=d HTTP/1.1\r\n\r\nGET HTTP://h HTTP/1.1\r\n\r\n");
  Await(c, "HTTP/1.1 200 OK", 3);
  ASSERT_EQ(handler_.seen.size(), 3u);
  EXPECT_EQ(handler_.seen[0].target, "/a");
  EXPECT_EQ(handler_.seen[1].target, "/b?c=d");
  EXPECT_EQ(handler_.seen[2].target, "/");
}

TEST_F(HttpServerTest, ATransferEncodingNotEndingInChunkedIsRefusedNotSmuggled) {
  Start();
  // Read as "no body", the body below would be a second request.
  const std::string hidden = "POST /smuggled HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  for (std::string te : {"gzip", "identity", "", "chunked, gzip", "chunked, chunked"}) {
    int c = Connect();
    Send(c, "POST /front HTTP/1.1\r\nTransfer-Encoding: " + te +
                "\r\nContent-Length: " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden);
    std::string got = Await(c, "\r\n\r\n");
    EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << te << ": " << got;
    EXPECT_TRUE(AwaitClose(c)) << te;
  }
  EXPECT_TRUE(handler_.seen.empty());
}

TEST_F(HttpServerTest, BadInputGetsItsStatusAndTheConnectionCloses) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 10;
  Start(o);
  struct Case {
    std::string request;
    std::string status;
  };
  for (const Case& k :
       {Case{"BOGUS\r\n\r\n", "400 Bad Request"},
        Case{"GET / HTTP/1.1\r\nX: " + std::string(2000, 'x') + "\r\n\r\n",
             "431 Request Header Fields Too Large"},
        Case{"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", "413 Payload"},
        Case{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400 Bad Request"}}) {
    int c = Connect();
    Send(c, k.request);
    std::string got = Await(c, "\r\n\r\n");
    EXPECT_TRUE(got.starts_with("HTTP/1.1 " + k.status)) << got;
    EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
    EXPECT_TRUE(AwaitClose(c)) << k.request;
  }
  EXPECT_TRUE(handler_.seen.empty());
  HttpServerStats s = server_->Stats();
  EXPECT_EQ(s.bad_requests, 2u);
  EXPECT_EQ(s.too_large, 2u);
}

TEST_F(HttpServerTest, DeadlinesCloseSlowAndIdleConnections) {
  HttpServerOptions o;
  o.header_timeout = milliseconds(100);
  o.body_timeout = milliseconds(100);
  o.idle_timeout = milliseconds(200);
  Start(o);
  int silent = Connect();
  int slow_header = Connect();
  Send(slow_header, "GET / HT");
  int slow_body = Connect();
  Send(slow_body, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
  int idle = Connect();
  Send(idle, "GET / HTTP/1.1\r\n\r\n");
  Await(idle, "echo:");
  for (int c : {silent, slow_header, slow_body, idle}) EXPECT_TRUE(AwaitClose(c)) << c;
  HttpServerStats s = server_->Stats();
  EXPECT_EQ(s.header_timeouts, 2u);
  EXPECT_EQ(s.body_timeouts, 1u);
  EXPECT_EQ(s.idle_timeouts, 1u);
  EXPECT_EQ(s.connections_open, 0u);
}

TEST_F(HttpServerTest, AClientThatClosesStillGetsItsAnswerWritten) {
  Start();
  handler_.defer = true;
  int c = Connect();
  Send(c, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Pump([&] { return handler_.seen.size() == 1; }));
  shutdown(c, SHUT_WR);  // a half-close: it may still read
  PumpFor(milliseconds(50));
  EXPECT_EQ(server_->Stats().connections_open, 1u);
  EXPECT_TRUE(server_->Respond(handler_.seen[0].id, TestHandler::Reply(200, "still")));
  std::string got = Await(c, "still");
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(AwaitClose(c));
  EXPECT_TRUE(Pump([&] { return server_->Stats().connections_open == 0; }));
}

TEST_F(HttpServerTest, AnAnswerForAConnectionClosedByADeadlineIsDropped) {
  HttpServerOptions o;
  o.header_timeout = milliseconds(100);
  Start(o);
  handler_.defer = true;
  int c = Connect();
  Send(c, "GET /1 HTTP/1.1\r\n\r\nGET /2 HT");  // the second never completes
  ASSERT_TRUE(Pump([&] { return handler_.seen.size() == 1; }));
  EXPECT_TRUE(AwaitClose(c));
  EXPECT_EQ(server_->Stats().header_timeouts, 1u);
  EXPECT_EQ(server_->Stats().awaiting, 0u);
  EXPECT_FALSE(server_->Respond(handler_.seen[0].id, TestHandler::Reply(200, "late")));
}

TEST_F(HttpServerTest, PastThePipelineBoundRequestsGet429) {
  HttpServerOptions o;
  o.max_pipeline = 2;
  Start(o);
  handler_.defer = true;
  int c = Connect();
  Send(c, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Pump([&] { return handler_.seen.size() == 2; }));
  PumpFor(milliseconds(50));
  EXPECT_EQ(handler_.seen.size(), 2u);
  for (const Seen& s : handler_.seen) server_->Respond(s.id, TestHandler::Reply(200, "fine"));
  std::string got = Await(c, "overloaded");
  EXPECT_NE(got.find("429 Too Many Requests"), std::string::npos) << got;
  EXPECT_EQ(server_->Stats().overloaded, 1u);
}

TEST_F(HttpServerTest, AnswersTheHandlerGivesAtOnceAreNotHeldBackByTheGlobalBound) {
  class LocalHealth : public TestHandler {
   public:
    bool AnswersAtOnce(std::string_view target) const override { return target == "/health"; }
  };
  HttpServerOptions o;
  o.max_inflight = 2;
  o.address = {"127.0.0.1", 0};
  LocalHealth h;
  h.defer = true;
  server_ = std::make_unique<HttpServer>(o, &h);
  h.server = server_.get();
  ASSERT_TRUE(server_->Start().ok());
  int a = Connect();
  int b = Connect();
  Send(a, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Pump([&] { return h.seen.size() == 2; }));
  Send(b, "GET /3 HTTP/1.1\r\n\r\n");  // past max_inflight
  EXPECT_NE(Await(b, "overloaded").find("429"), std::string::npos);
  int d = Connect();
  Send(d, "GET /health HTTP/1.1\r\n\r\n");  // handed over all the same
  ASSERT_TRUE(Pump([&] { return h.seen.size() == 3; }));
  EXPECT_EQ(h.seen[2].target, "/health");
  server_->Respond(h.seen[2].id, TestHandler::Reply(200, "healthy"));
  EXPECT_NE(Await(d, "healthy").find("200 OK"), std::string::npos);
  for (size_t i = 0; i < 2; ++i) server_->Respond(h.seen[i].id, TestHandler::Reply(200, "x"));
  Await(a, "HTTP/1.1 200", 2);
  server_.reset();  // before `h`, which it points to
}

TEST_F(HttpServerTest, PastTheConnectionBoundNewOnesGet503AtOnce) {
  HttpServerOptions o;
  o.max_connections = 1;
  Start(o);
  int first = Connect();
  Send(first, "GET / HTTP/1.1\r\n\r\n");
  Await(first, "echo:");
  int second = Connect();
  std::string got = Await(second, "\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << got;
  EXPECT_NE(got.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_TRUE(AwaitClose(second));
  EXPECT_EQ(server_->Stats().connections_refused, 1u);
  EXPECT_FALSE(Drain(first));
}

TEST_F(HttpServerTest, StopReadingFinishesWhatIsOwedThenIsIdle) {
  Start();
  handler_.defer = true;
  int c = Connect();
  int idle = Connect();
  Send(c, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Pump([&] { return handler_.seen.size() == 1; }));
  server_->StopReading();
  EXPECT_FALSE(server_->Idle());
  EXPECT_TRUE(server_->Respond(handler_.seen[0].id, TestHandler::Reply(200, "last")));
  std::string got = Await(c, "last");
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(AwaitClose(c));
  EXPECT_TRUE(AwaitClose(idle));
  EXPECT_TRUE(server_->Idle());
}

TEST_F(HttpServerTest, ABusyPortIsRefused) {
  Start();
  HttpServerOptions o;
  o.address = {"127.0.0.1", server_->port()};
  TestHandler other;
  HttpServer second(o, &other);
  Status s = second.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot bind HTTP on 127.0.0.1:"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace todo::router
