// The HTTP stream reader (common/io/etcd/http_stream.h) and EtcdWatch
// (watch.h) against fake servers: chunk framing with extensions and
// trailers, bounds, cancellation of a blocked read; a watch that is
// refused, fed garbage, compacted, resumed after its stream ends, or whose
// idle endpoint fails a probe. Every wait is bounded.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/io/etcd/http_stream.h"
#include "common/io/etcd/watch.h"
#include "tests/unit/io/fake_http_server.h"

namespace todo::io {
namespace {

using std::chrono::milliseconds;
using testing::FakeHttpServer;
using Reply = FakeHttpServer::Reply;
using Clock = std::chrono::steady_clock;

Clock::time_point In(milliseconds ms) { return Clock::now() + ms; }

TEST(HttpStreamTest, ChunkedWithExtensionsAndTrailers) {
  FakeHttpServer s([](const std::string&) {
    return Reply{
        "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n"
        "Grpc-Trailer-Content-Type: application/grpc\r\n\r\n"};
  });
  HttpStream st(-1);
  ASSERT_TRUE(st.Open("127.0.0.1", s.port(), "POST", "/x", "{}", "", In(milliseconds(5000))).ok());
  EXPECT_EQ(st.status(), 200);
  std::string body;
  ASSERT_TRUE(st.ReadAll(&body, 100, In(milliseconds(5000))).ok());
  EXPECT_EQ(body, "abcde");
}

TEST(HttpStreamTest, ContentLengthAndUntilClose) {
  FakeHttpServer len([](const std::string&) { return Reply{FakeHttpServer::Answer(404, "nope")}; });
  HttpStream a(-1);
  ASSERT_TRUE(a.Open("127.0.0.1", len.port(), "GET", "/", "", "", In(milliseconds(5000))).ok());
  std::string body;
  ASSERT_TRUE(a.ReadAll(&body, 100, In(milliseconds(5000))).ok());
  EXPECT_EQ(a.status(), 404);
  EXPECT_EQ(body, "nope");
  FakeHttpServer close_(
      [](const std::string&) { return Reply{"HTTP/1.0 200 OK\r\n\r\nuntil close"}; });
  HttpStream b(-1);
  ASSERT_TRUE(b.Open("127.0.0.1", close_.port(), "GET", "/", "", "", In(milliseconds(5000))).ok());
  body.clear();
  ASSERT_TRUE(b.ReadAll(&body, 100, In(milliseconds(5000))).ok());
  EXPECT_EQ(body, "until close");
  // Over the caller's bound.
  HttpStream c(-1);
  ASSERT_TRUE(c.Open("127.0.0.1", close_.port(), "GET", "/", "", "", In(milliseconds(5000))).ok());
  body.clear();
  EXPECT_EQ(c.ReadAll(&body, 4, In(milliseconds(5000))).code(), ErrorCode::kInternal);
}

TEST(HttpStreamTest, BadFramingIsAnError) {
  for (std::string answer : {
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY"),
           std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") +
               std::string(5000, '1'),
       }) {
    FakeHttpServer s([&](const std::string&) { return Reply{answer}; });
    HttpStream st(-1);
    ASSERT_TRUE(st.Open("127.0.0.1", s.port(), "GET", "/", "", "", In(milliseconds(5000))).ok());
    std::string body;
    Status r = st.ReadAll(&body, 1 << 20, In(milliseconds(5000)));
    EXPECT_EQ(r.code(), ErrorCode::kUnavailable) << answer.substr(0, 80) << " -> " << r.ToString();
  }
  for (std::string head : {std::string("garbage\r\n\r\n"), std::string("HTTP/1.1 2x0 OK\r\n\r\n"),
                           std::string("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
                           "HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a') + "\r\n\r\n"}) {
    FakeHttpServer s([&](const std::string&) { return Reply{head}; });
    HttpStream st(-1);
    Status r = st.Open("127.0.0.1", s.port(), "GET", "/", "", "", In(milliseconds(5000)));
    EXPECT_EQ(r.code(), ErrorCode::kUnavailable) << head.substr(0, 40) << " -> " << r.ToString();
  }
}

TEST(HttpStreamTest, CancelFdWakesABlockedRead) {
  FakeHttpServer s([](const std::string&) {
    return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", /*hold=*/true};
  });
  int cancel = eventfd(0, EFD_CLOEXEC);
  HttpStream st(cancel);
  ASSERT_TRUE(st.Open("127.0.0.1", s.port(), "POST", "/", "{}", "", In(milliseconds(5000))).ok());
  std::thread canceller([cancel] {
    std::this_thread::sleep_for(milliseconds(100));
    uint64_t one = 1;
    (void)!write(cancel, &one, sizeof one);
  });
  std::string body;
  Status error;
  auto start = Clock::now();
  EXPECT_EQ(st.ReadSome(&body, In(milliseconds(60000)), &error), HttpStream::Read::kError);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
  EXPECT_TRUE(st.canceled());
  canceller.join();
  close(cancel);
}

// Collects a watch's updates; waits for one of a kind, bounded.
class Updates {
 public:
  void Add(const WatchUpdate& u) {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(u);
    cv_.notify_all();
  }
  // The first update of `kind` at or after position *from (advanced past it).
  std::optional<WatchUpdate> WaitFor(WatchUpdate::Kind kind, size_t* from,
                                     milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<WatchUpdate> found;
    cv_.wait_for(lock, timeout, [&] {
      for (; *from < all_.size(); ++*from) {
        if (all_[*from].kind == kind) {
          found = all_[(*from)++];
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchUpdate> all_;
};

std::unique_ptr<EtcdClient> ClientOf(const std::vector<std::string>& urls) {
  EtcdClient::Options o;
  o.attempt_timeout = milliseconds(500);
  o.call_timeout = milliseconds(1000);
  return std::move(EtcdClient::Create(urls, o)).value();
}

std::string Line(const std::string& json) { return json + "\n"; }

const char kCreated[] = R"({"result":{"header":{"revision":"4"},"created":true}})";

// A server whose watch stream is created, then says nothing (held open);
// every other request (the idle probes) gets `probe`. Counts both.
struct SilentWatchServer {
  explicit SilentWatchServer(Reply probe)
      : server([this, probe](const std::string& request) {
          if (request.find("/v3/watch") != std::string::npos) {
            ++watches;
            return Reply{FakeHttpServer::Chunked(200, {Line(kCreated)}, "", false),
                         /*hold=*/true};
          }
          ++probes;
          std::lock_guard<std::mutex> lock(mu);
          last_probe = request;
          return probe;
        }) {}
  std::string LastProbe() {
    std::lock_guard<std::mutex> lock(mu);
    return last_probe;
  }
  std::atomic<int> watches{0};
  std::atomic<int> probes{0};
  std::mutex mu;
  std::string last_probe;  // guarded by mu
  FakeHttpServer server;   // last: it stops first
};

// A watch of "p/" on `server` whose idle stream is probed every `interval`,
// reporting into `updates`.
std::unique_ptr<EtcdWatch> ProbedWatch(EtcdClient* client, milliseconds interval,
                                       Updates* updates) {
  EtcdWatch::Options o = EtcdWatch::Options::Prefix("p/");
  o.probe_interval = interval;
  return std::make_unique<EtcdWatch>(client, o,
                                     [updates](const WatchUpdate& u) { updates->Add(u); });
}

TEST(EtcdWatchFakeTest, RefusedWatchFailsAndEnds) {
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Answer(
        400, R"({"error":"bad","message":"etcdserver: key is not provided","code":3})")};
  });
  auto client = ClientOf({s.url()});
  Updates updates;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("p/"),
              [&](const WatchUpdate& u) { updates.Add(u); });
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  auto failed = updates.WaitFor(WatchUpdate::Kind::kFailed, &at);
  ASSERT_TRUE(failed.has_value());
  EXPECT_NE(failed->status.message().find("key is not provided"), std::string::npos);
  for (int i = 0; i < 100 && !w.ended(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_TRUE(w.ended());
}

TEST(EtcdWatchFakeTest, GarbageOnTheStreamIsAConnectionLostAndStopIsPrompt) {
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Chunked(200, {Line(kCreated), "this is not json\n"}, "", false),
                 /*hold=*/true};
  });
  auto client = ClientOf({s.url()});
  Updates updates;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("p/"),
              [&](const WatchUpdate& u) { updates.Add(u); });
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  auto lost = updates.WaitFor(WatchUpdate::Kind::kConnectionLost, &at);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->endpoint, s.url());
  EXPECT_NE(lost->status.message().find("malformed"), std::string::npos) << lost->status.message();
  auto start = Clock::now();
  w.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(w.ended());
}

TEST(EtcdWatchFakeTest, DeliversEventsAndResumesAfterTheLastOne) {
  std::mutex mu;
  std::vector<std::string> requests;
  FakeHttpServer s([&](const std::string& request) {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(request);
    if (requests.size() == 1) {
      // Two batches, then the stream ends.
      return Reply{FakeHttpServer::Chunked(
          200,
          {Line(kCreated),
           Line(
               R"({"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"cC8x","mod_revision":"5","value":"YQ=="}}]}})") +
               Line(
                   R"({"result":{"header":{"revision":"6"},"events":[{"type":"DELETE","kv":{"key":"cC8x","mod_revision":"6"}}]}})")})};
    }
    return Reply{FakeHttpServer::Chunked(200, {Line(kCreated)}, "", false), /*hold=*/true};
  });
  auto client = ClientOf({s.url()});
  Updates updates;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("p/", 5),
              [&](const WatchUpdate& u) { updates.Add(u); });
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  auto first = updates.WaitFor(WatchUpdate::Kind::kEvents, &at);
  auto second = updates.WaitFor(WatchUpdate::Kind::kEvents, &at);
  ASSERT_TRUE(first && second);
  ASSERT_EQ(first->events.size(), 1u);
  EXPECT_EQ(first->events[0].type, EventType::kPut);
  EXPECT_EQ(first->events[0].kv.key, "p/1");
  EXPECT_EQ(first->events[0].kv.value, "a");
  ASSERT_EQ(second->events.size(), 1u);
  EXPECT_EQ(second->events[0].type, EventType::kDelete);
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnectionLost, &at).has_value());
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  EXPECT_EQ(w.next_revision(), 7);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(requests.size(), 2u);
  EXPECT_NE(requests[0].find(R"("start_revision":"5")"), std::string::npos) << requests[0];
  EXPECT_NE(requests[1].find(R"("start_revision":"7")"), std::string::npos) << requests[1];
}

TEST(EtcdWatchFakeTest, CompactionIsReportedAndEndsTheWatch) {
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Chunked(
                     200,
                     {Line(kCreated),
                      Line(R"({"result":{"header":{},"canceled":true,"compact_revision":"9"}})")},
                     "", false),
                 /*hold=*/true};
  });
  auto client = ClientOf({s.url()});
  Updates updates;
  EtcdWatch w(client.get(), EtcdWatch::Options::Prefix("p/", 2),
              [&](const WatchUpdate& u) { updates.Add(u); });
  ASSERT_TRUE(w.Start().ok());
  size_t at = 0;
  auto compacted = updates.WaitFor(WatchUpdate::Kind::kCompacted, &at);
  ASSERT_TRUE(compacted.has_value());
  EXPECT_EQ(compacted->revision, 9);
  for (int i = 0; i < 100 && !w.ended(); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_TRUE(w.ended());
}

TEST(EtcdWatchFakeTest, AnIdleEndpointThatFailsAProbeIsLeft) {
  SilentWatchServer s(Reply{FakeHttpServer::Answer(503, "frozen", "text/plain")});
  auto client = ClientOf({s.server.url()});
  Updates updates;
  auto w = ProbedWatch(client.get(), milliseconds(200), &updates);
  ASSERT_TRUE(w->Start().ok());
  size_t at = 0;
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  auto lost = updates.WaitFor(WatchUpdate::Kind::kConnectionLost, &at);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->status.message().find("probe failed"), std::string::npos)
      << lost->status.message();
  EXPECT_EQ(w->next_revision(), 5);  // from now: after the created header's revision
}

TEST(EtcdWatchFakeTest, AStreamThatFallsSilentWhileEtcdMovesOnIsReopened) {
  // The stream is created, then says nothing; the probe (the watched key
  // written last) shows revision 9: after two probes that saw it
  // undelivered, the watch drops the stream and asks again from revision 5.
  SilentWatchServer s(Reply{FakeHttpServer::Answer(
      200,
      R"({"header":{"revision":"9"},"kvs":[{"key":"cC8x","mod_revision":"9"}],"count":"3"})")});
  auto client = ClientOf({s.server.url()});
  Updates updates;
  auto w = ProbedWatch(client.get(), milliseconds(200), &updates);
  ASSERT_TRUE(w->Start().ok());
  size_t at = 0;
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  auto lost = updates.WaitFor(WatchUpdate::Kind::kConnectionLost, &at);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->status.message().find("fell silent"), std::string::npos)
      << lost->status.message();
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  EXPECT_GE(s.watches.load(), 2);
  const std::string probe = s.LastProbe();
  EXPECT_NE(probe.find(R"("sort_target":"MOD")"), std::string::npos) << probe;
}

TEST(EtcdWatchFakeTest, AnIdleStreamWithNothingNewIsKept) {
  // The probe shows the newest key at revision 3, before the watch began:
  // nothing is missing, the stream stays.
  SilentWatchServer s(Reply{FakeHttpServer::Answer(
      200, R"({"header":{"revision":"4"},"kvs":[{"key":"cC8x","mod_revision":"3"}]})")});
  auto client = ClientOf({s.server.url()});
  Updates updates;
  auto w = ProbedWatch(client.get(), milliseconds(100), &updates);
  ASSERT_TRUE(w->Start().ok());
  size_t at = 0;
  ASSERT_TRUE(updates.WaitFor(WatchUpdate::Kind::kConnected, &at).has_value());
  for (int i = 0; i < 200 && s.probes.load() < 4; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(s.probes.load(), 4);
  EXPECT_FALSE(updates.WaitFor(WatchUpdate::Kind::kConnectionLost, &at, milliseconds(100)));
  EXPECT_EQ(s.watches.load(), 1);
}

}  // namespace
}  // namespace todo::io
