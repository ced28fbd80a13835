// EtcdClient against servers that are not etcd, or are etcd gone wrong
// (tests/unit/io/fake_http_server.h): nothing listening, not HTTP,
// malformed JSON, bodies too large, silence, 5xx; and how a call moves to
// the next endpoint, or, for a transaction whose outcome is unknown, does
// not. Every answer is a clean Status naming the endpoint; nothing throws
// or crashes.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "common/io/etcd/client.h"
#include "tests/unit/io/fake_http_server.h"

namespace todo::io {
namespace {

using std::chrono::milliseconds;
using testing::FakeHttpServer;
using Reply = FakeHttpServer::Reply;

const char kRangeAnswer[] =
    R"({"header":{"revision":"7"},"kvs":[{"key":"aw==","create_revision":"3","mod_revision":"6","version":"2","value":"dg=="}],"count":"1"})";
const char kTxnAnswer[] = R"({"header":{"revision":"8"},"succeeded":true})";

EtcdClient::Options Fast() {
  EtcdClient::Options o;
  o.attempt_timeout = milliseconds(300);
  o.call_timeout = milliseconds(600);
  return o;
}

std::unique_ptr<EtcdClient> Client(std::vector<std::string> endpoints,
                                   EtcdClient::Options o = Fast()) {
  auto c = EtcdClient::Create(std::move(endpoints), o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

TEST(EtcdEndpointTest, ParsesAndRefuses) {
  auto e = ParseEtcdEndpoint("http://127.0.0.1:2379/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->url, "http://127.0.0.1:2379");
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 2379);
  EXPECT_EQ(ParseEtcdEndpoint("db1.example:2379")->url, "http://db1.example:2379");
  EXPECT_EQ(ParseEtcdEndpoint("http://[::1]:2379")->host, "::1");
  for (const char* bad : {"", "http://", "http://h", "http://h:0", "http://h:70000", "h:x",
                          "https://h:2379", "unix://x:1", "http://h:1/v3", "::1:2379", ":2379"}) {
    auto r = ParseEtcdEndpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << bad;
  }
  auto list = ParseEtcdEndpointList("http://a:1,b:2");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_FALSE(ParseEtcdEndpointList("http://a:1,").ok());
  EXPECT_FALSE(ParseEtcdEndpointList("a:1,http://a:1").ok());  // twice
  EXPECT_FALSE(EtcdClient::Create({}, Fast()).ok());
  EtcdClient::Options bad = Fast();
  bad.attempt_timeout = milliseconds(700);  // > call
  EXPECT_FALSE(EtcdClient::Create({"a:1"}, bad).ok());
}

TEST(EtcdClientFakeTest, NothingListeningIsUnavailableNamingTheEndpoint) {
  const int port = FakeHttpServer::UnusedPort();
  auto c = Client({"http://127.0.0.1:" + std::to_string(port)});
  auto r = c->Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(r.status(), "127.0.0.1:" + std::to_string(port))) << r.status().message();
  EXPECT_TRUE(Contains(r.status(), "get 'k'")) << r.status().message();
}

TEST(EtcdClientFakeTest, NotHttpIsAnError) {
  FakeHttpServer s([](const std::string&) { return Reply{"SSH-2.0-OpenSSH_9.2\r\n\r\n"}; });
  auto c = Client({s.url()});
  auto r = c->Put("k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status(), s.url())) << r.status().message();
}

TEST(EtcdClientFakeTest, MalformedJsonIsInternal) {
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Answer(200, "{\"header\": {\"revision\": ")};
  });
  auto c = Client({s.url()});
  auto r = c->Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_TRUE(Contains(r.status(), "not JSON")) << r.status().message();
}

TEST(EtcdClientFakeTest, JsonOfTheWrongShapeIsInternalNamingTheField) {
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Answer(200, R"({"header":{"revision":"5"},"kvs":[{"key":7}]})")};
  });
  auto c = Client({s.url()});
  auto r = c->Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_TRUE(Contains(r.status(), "kvs[0].key")) << r.status().message();
}

TEST(EtcdClientFakeTest, ErrorAnswerWithGatewayTrailersKeepsEtcdsCode) {
  // What etcd sends for an unknown lease: chunked, then a trailer (which
  // cpp-httplib 0.11 fails on).
  FakeHttpServer s([](const std::string&) {
    return Reply{FakeHttpServer::Chunked(
        404,
        {R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"},
        "Grpc-Trailer-Content-Type: application/grpc\r\n")};
  });
  auto c = Client({s.url()});
  Status st = c->Revoke(12345);
  EXPECT_EQ(st.code(), ErrorCode::kNotFound) << st.ToString();
  EXPECT_TRUE(Contains(st, "requested lease not found")) << st.message();
  EXPECT_EQ(s.requests(), 1);  // an answer that stands: not retried
}

TEST(EtcdClientFakeTest, SilenceTimesOutWithinTheCallTimeout) {
  FakeHttpServer s([](const std::string&) { return Reply{"", /*hold=*/true}; });
  auto c = Client({s.url()});
  auto start = std::chrono::steady_clock::now();
  auto r = c->Get("k");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kTimeout) << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(10));  // bounded (the call timeout is 0.6 s)
}

TEST(EtcdClientFakeTest, AnswerOverTheBoundIsRefused) {
  FakeHttpServer s([](const std::string&) {
    std::string big = R"({"header":{"revision":"5"},"pad":")" + std::string(100000, 'x') + "\"}";
    return Reply{FakeHttpServer::Chunked(200, {big.substr(0, 50000), big.substr(50000)})};
  });
  EtcdClient::Options o = Fast();
  o.max_response_bytes = 4096;
  auto c = Client({s.url()}, o);
  auto r = c->Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_TRUE(Contains(r.status(), "larger than 4096")) << r.status().message();
}

TEST(EtcdClientFakeTest, MovesToTheNextEndpointAndPrefersIt) {
  FakeHttpServer broken([](const std::string&) {
    return Reply{FakeHttpServer::Answer(503, "upstream down", "text/plain")};
  });
  FakeHttpServer good(
      [](const std::string&) { return Reply{FakeHttpServer::Answer(200, kRangeAnswer)}; });
  auto c = Client({broken.url(), good.url()});
  auto r = c->Get("k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->kv.has_value());
  EXPECT_EQ(r->kv->value, "v");
  EXPECT_EQ(r->kv->mod_revision, 6);
  EXPECT_EQ(r->revision, 7);
  EXPECT_EQ(c->preferred_endpoint(), 1u);
  const int before = broken.requests();
  ASSERT_TRUE(c->Get("k").ok());
  EXPECT_EQ(broken.requests(), before);  // went straight to the one that answered
}

TEST(EtcdClientFakeTest, TxnWithAnUnknownOutcomeIsNotRetriedElsewhere) {
  FakeHttpServer silent([](const std::string&) { return Reply{"", /*hold=*/true}; });
  FakeHttpServer good(
      [](const std::string&) { return Reply{FakeHttpServer::Answer(200, kTxnAnswer)}; });
  auto c = Client({silent.url(), good.url()});
  TxnRequest t;
  t.success.push_back(Op::Put("k", "v"));
  auto r = c->Txn(t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kTimeout);
  EXPECT_TRUE(Contains(r.status(), "outcome unknown")) << r.status().message();
  EXPECT_EQ(good.requests(), 0);
}

TEST(EtcdClientFakeTest, TxnRefusedForNoLeaderIsRetriedElsewhere) {
  FakeHttpServer leaderless([](const std::string&) {
    return Reply{FakeHttpServer::Chunked(
        503, {R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})"},
        "Grpc-Trailer-Content-Type: application/grpc\r\n")};
  });
  FakeHttpServer good(
      [](const std::string&) { return Reply{FakeHttpServer::Answer(200, kTxnAnswer)}; });
  auto c = Client({leaderless.url(), good.url()});
  auto r = c->Txn(TxnRequest{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 8);
  EXPECT_EQ(good.requests(), 1);
}

TEST(EtcdClientFakeTest, EveryEndpointFailingNamesEach) {
  FakeHttpServer a([](const std::string&) {
    return Reply{FakeHttpServer::Answer(404, "Not Found", "text/plain")};
  });
  FakeHttpServer b([](const std::string&) { return Reply{FakeHttpServer::Answer(200, "[]")}; });
  auto c = Client({a.url(), b.url()});
  auto r = c->GetPrefix("p/");
  ASSERT_FALSE(r.ok());
  // b answered 200 with a JSON that is not a range: a malformed answer.
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status(), "body")) << r.status().message();
  FakeHttpServer c404(
      [](const std::string&) { return Reply{FakeHttpServer::Answer(404, "no", "text/plain")}; });
  FakeHttpServer d500(
      [](const std::string&) { return Reply{FakeHttpServer::Answer(500, "oops", "text/plain")}; });
  auto both = Client({c404.url(), d500.url()});
  auto r2 = both->Put("k", "v");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(Contains(r2.status(), c404.url())) << r2.status().message();
  EXPECT_TRUE(Contains(r2.status(), d500.url())) << r2.status().message();
  EXPECT_TRUE(Contains(r2.status(), "HTTP 404")) << r2.status().message();
}

TEST(EtcdClientFakeTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(14);
  std::vector<std::string> answers = {
      "",
      "\r\n\r\n",
      "HTTP/1.1\r\n\r\n",
      "HTTP/1.1 200\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
      FakeHttpServer::Answer(200, R"({"kvs":null,"header":null})"),
      FakeHttpServer::Answer(200, R"({"kvs":[{"key":"","value":null,"lease":"1e3"}]})"),
      FakeHttpServer::Answer(200, "\xff\xfe\x00garbage"),
      FakeHttpServer::Answer(200, R"({"result":{"TTL":"x"}})"),
      FakeHttpServer::Answer(200, std::string(5000, '[')),
  };
  for (int i = 0; i < 20; ++i) {
    std::string noise(rng() % 300, '\0');
    for (char& ch : noise) ch = static_cast<char>(rng());
    answers.push_back(i % 2 ? noise : "HTTP/1.1 200 OK\r\n" + noise);
  }
  size_t next = 0;
  FakeHttpServer s([&](const std::string&) { return Reply{answers[next++ % answers.size()]}; });
  EtcdClient::Options o = Fast();
  o.attempt_timeout = milliseconds(200);
  o.call_timeout = milliseconds(200);  // one try each
  auto c = Client({s.url()}, o);
  for (size_t i = 0; i < answers.size(); ++i) {
    switch (i % 4) {
      case 0:
        (void)c->Get("k");
        break;
      case 1:
        (void)c->KeepAliveOnce(1);
        break;
      case 2:
        (void)c->Txn(TxnRequest{});
        break;
      case 3:
        (void)c->EndpointStatus(s.url());
        break;
    }
  }
  SUCCEED();  // no crash, no exception, no hang
}

}  // namespace
}  // namespace todo::io
