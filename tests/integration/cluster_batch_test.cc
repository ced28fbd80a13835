// Router-node hop batches (common/PROTOCOL.md, "Router-node batches"), black
// box: a batching router and nodes answer every request exactly once, the
// node's errors included; a router falls back to v1 messages for a node that
// does not batch (a fake v1 node here); a node takes a batch sent straight
// to it, answers in a batch, and refuses a malformed one with bad_request
// while it keeps serving. The blob format is re-implemented here from the
// document (the tests do not link common/).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

const std::string kMarker("\xB7todo-batch/1", 13);

// One record: u8 frame count, then per frame a u32 big-endian length and
// the bytes.
void AddRecord(std::string* blob, const std::vector<std::string>& frames) {
  blob->push_back(static_cast<char>(frames.size()));
  for (const std::string& f : frames) {
    const uint32_t n = static_cast<uint32_t>(f.size());
    const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                         static_cast<char>(n >> 8), static_cast<char>(n)};
    blob->append(len, 4);
    blob->append(f);
  }
}

// Splits a blob into records (a test failure and {} if it does not parse).
std::vector<std::vector<std::string>> ParseBlob(const std::string& blob) {
  std::vector<std::vector<std::string>> out;
  size_t at = 0;
  while (at < blob.size()) {
    const size_t n = static_cast<unsigned char>(blob[at++]);
    std::vector<std::string> frames;
    for (size_t i = 0; i < n; ++i) {
      if (blob.size() - at < 4) {
        ADD_FAILURE() << "blob ends inside a length";
        return {};
      }
      const auto* u = reinterpret_cast<const unsigned char*>(blob.data() + at);
      const size_t len = (size_t{u[0]} << 24) | (size_t{u[1]} << 16) | (size_t{u[2]} << 8) | u[3];
      at += 4;
      if (blob.size() - at < len) {
        ADD_FAILURE() << "blob ends inside a frame";
        return {};
      }
      frames.push_back(blob.substr(at, len));
      at += len;
    }
    out.push_back(std::move(frames));
  }
  return out;
}

uint64_t StatsCounter(Client& c, const std::string& key) {
  Reply r = MustCall(c, {{"op", "stats"}});
  auto v = AsUint(MapGet(ExpectOk(r), key));
  EXPECT_TRUE(v.has_value()) << "no " << key << " in " << r.ToString();
  return v.value_or(0);
}

using ClusterBatchTest = ClusterTest;

TEST_F(ClusterBatchTest, BatchingRouterAndNodesAnswerEveryRequestOnceErrorsIncluded) {
  const int r = cluster_->StartRouterToAll();
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  const std::string prefix = TestListPrefix();
  constexpr int kClients = 4;
  constexpr uint64_t kPerClient = 600;
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < kClients; ++c) clients.push_back(std::make_unique<Client>(router));
  // Pipelined, so each pass of the router's loop has many requests per node:
  // adds (ok), entries (ok, often answered on the node's socket loop),
  // updates of entries that don't exist (not_found, from the node's actor),
  // bad dates (bad_request, from the router) and pings (the router's own).
  auto kind = [](uint64_t i) { return i % 5; };
  for (int c = 0; c < kClients; ++c) {
    for (uint64_t i = 1; i <= kPerClient; ++i) {
      const std::string list = prefix + "-" + std::to_string(i % 97);
      Map req;
      switch (kind(i)) {
        case 0:
        case 1:
          req = AddReq(list, "2026-05-05", std::to_string(c) + "/" + std::to_string(i));
          break;
        case 2:
          req = EntriesReq(list);
          break;
        case 3:
          req = {{"op", "update_entry"}, {"list", list}, {"entry_id", 1000000}, {"title", "x"}};
          break;
        default:
          req = i % 10 == 4 ? AddReq(list, "2026-02-30", "bad") : Map{{"op", "ping"}};
      }
      ASSERT_TRUE(clients[c]->Send(WithId(req, i)));
    }
  }
  for (int c = 0; c < kClients; ++c) {
    std::vector<Reply> replies = Collect(*clients[c], kPerClient, Millis(60000));
    ASSERT_EQ(replies.size(), kPerClient) << cluster_->DumpLogs();
    std::set<uint64_t> seen;
    for (const Reply& reply : replies) {
      auto id = AsUint(reply.Get("id"));
      ASSERT_TRUE(id.has_value()) << reply.ToString();
      EXPECT_TRUE(seen.insert(*id).second) << "answered twice: " << reply.ToString();
      switch (kind(*id)) {
        case 0:
        case 1:
        case 2:
          EXPECT_TRUE(reply.ok()) << reply.ToString();
          break;
        case 3:
          EXPECT_EQ(reply.error_code(), "not_found") << reply.ToString();
          break;
        default:
          if (*id % 10 == 4) {
            EXPECT_EQ(reply.error_code(), "bad_request") << reply.ToString();
          } else {
            EXPECT_TRUE(reply.ok()) << reply.ToString();
          }
      }
    }
    // Nothing more comes.
    EXPECT_FALSE(clients[c]->Recv(Millis(200)).has_value());
  }
  // Every add is there once.
  Client check(router);
  size_t entries = 0;
  for (int l = 0; l < 97; ++l) {
    Reply e = MustCall(check, EntriesReq(prefix + "-" + std::to_string(l)));
    entries += AsArray(ExpectOk(e)).size();
  }
  size_t adds = 0;
  for (uint64_t i = 1; i <= kPerClient; ++i) adds += kind(i) <= 1 ? 1 : 0;
  EXPECT_EQ(entries, adds * kClients);
  // And it went in batches both ways.
  EXPECT_GT(StatsCounter(check, "batches_sent"), 0u);
  EXPECT_GT(StatsCounter(check, "batches_received"), 0u);
  EXPECT_EQ(StatsCounter(check, "bad_node_messages"), 0u);
  Client node(cluster_->node(0).endpoint);
  EXPECT_GT(StatsCounter(node, "batches_in"), 0u);
  EXPECT_GT(StatsCounter(node, "batches_out"), 0u);
  EXPECT_EQ(StatsCounter(node, "bad_batches"), 0u);
}

TEST_F(ClusterBatchTest, BatchedRequestsToAFrozenNodeTimeOutOnceAndLateRepliesAreDropped) {
  const int r = cluster_->StartRouterToAll({"--timeout-ms", "500"});
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  const std::vector<std::string> lists = cluster_->ListsOwnedBy("n1", TestListPrefix(), 10);
  ASSERT_TRUE(cluster_->node(0).process->Freeze());
  Client c(router);
  constexpr uint64_t kCount = 40;
  for (uint64_t i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq(lists[i % lists.size()], "2026-06-06", "t"), i)));
  }
  std::vector<Reply> replies = Collect(c, kCount, Millis(20000));
  ASSERT_EQ(replies.size(), kCount);
  std::set<uint64_t> seen;
  for (const Reply& reply : replies) {
    EXPECT_EQ(reply.error_code(), "timeout") << reply.ToString();
    EXPECT_TRUE(seen.insert(AsUint(reply.Get("id")).value_or(0)).second) << reply.ToString();
  }
  ASSERT_TRUE(cluster_->node(0).process->Signal(SIGCONT));
  // The node answers the frozen batch late: dropped, never a second reply.
  ASSERT_TRUE(cluster_->WaitRoutesTo(router, 0, Millis(20000)));
  EXPECT_FALSE(c.Recv(Millis(300)).has_value());
  Client check(router);
  EXPECT_GE(StatsCounter(check, "late_replies_dropped"), 1u);
}

// A node that knows nothing of batches: answers pings (no "batch" in its
// pong) and echoes every other request with an ok reply, recording whether
// anything it got was a batch.
class FakeV1Node {
 public:
  explicit FakeV1Node(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::router) {
    endpoint_ = FreeLoopbackEndpoint();
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(endpoint_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeV1Node() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  int requests() const { return requests_; }
  int batches() const { return batches_; }

 private:
  void Serve() {
    while (!stop_) {
      zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames;
      bool more = true;
      while (more) {
        zmq::message_t m;
        (void)socket_.recv(m);
        more = m.more();
        frames.push_back(std::move(m));
      }
      if (frames.size() < 3) continue;
      if (frames[1].to_string() == kMarker) ++batches_;
      const std::string body = frames.back().to_string();
      const bool ping = body.find("ping") != std::string::npos;
      if (!ping) ++requests_;
      Map reply =
          ping ? Map{{"ok", Value::Bool(true)},
                     {"result",
                      Value::Raw(
                          Pack({{"pong", Value::Bool(true)}, {"role", "node"}, {"name", "fake"}}))}}
               : Map{{"ok", Value::Bool(true)}, {"result", "fake"}};
      if (auto id = AsUint(Reply({body}).Get("id"))) reply.push_back({"id", Value(*id)});
      frames.back() = zmq::message_t(Pack(reply));
      for (size_t i = 0; i < frames.size(); ++i) {
        socket_.send(frames[i],
                     i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  }

  zmq::socket_t socket_;
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> batches_{0};
};

TEST_F(ClusterBatchTest, RouterSendsV1ToANodeThatDoesNotBatch) {
  zmq::context_t ctx;
  FakeV1Node fake(ctx);
  const int r = cluster_->StartRouter({"--node", "fake=" + fake.endpoint()});
  ASSERT_GE(r, 0);
  Client c(cluster_->router(r).endpoint);
  constexpr uint64_t kCount = 300;
  for (uint64_t i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(c.Send(WithId(AddReq("l" + std::to_string(i % 13), "2026-07-07", "t"), i)));
  }
  std::vector<Reply> replies = Collect(c, kCount, Millis(20000));
  ASSERT_EQ(replies.size(), kCount) << cluster_->DumpLogs();
  std::set<uint64_t> seen;
  for (const Reply& reply : replies) {
    EXPECT_TRUE(reply.ok()) << reply.ToString();
    EXPECT_TRUE(seen.insert(AsUint(reply.Get("id")).value_or(0)).second) << reply.ToString();
  }
  EXPECT_EQ(fake.requests(), static_cast<int>(kCount));
  EXPECT_EQ(fake.batches(), 0);
  EXPECT_EQ(StatsCounter(c, "batches_sent"), 0u);
}

TEST_F(ClusterBatchTest, NodeTakesABatchStraightAndRefusesAMalformedOne) {
  Client c(cluster_->node(0).endpoint);
  const std::string list = TestListPrefix();
  // A valid batch from a DEALER acting as a router: an add, a not_found, a
  // bad request, each with its own head (and the second with an extra
  // envelope frame, a client's delimiter).
  std::string blob;
  AddRecord(&blob, {"R-head-1", Pack(WithId(AddReq(list, "2026-08-08", "batched"), 1))});
  AddRecord(&blob,
            {"R-head-2", "",
             Pack(WithId({{"op", "update_entry"}, {"list", list}, {"entry_id", 77}, {"title", "x"}},
                         2))});
  AddRecord(&blob, {"R-head-3", Pack(WithId({{"op", "entries"}}, 3))});
  ASSERT_TRUE(c.SendFrames({kMarker, blob}));
  // The replies come back in one or more batches, each record echoing its
  // envelope frames.
  std::map<std::string, std::vector<std::string>> by_head;
  const auto deadline = std::chrono::steady_clock::now() + Millis(10000);
  while (by_head.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::optional<Reply> got = c.Recv(Millis(2000));
    if (!got) continue;
    if (got->frames().size() == 2 && got->frames()[0] == kMarker) {
      for (auto& rec : ParseBlob(got->frames()[1])) by_head[rec.front()] = rec;
    } else {
      // Errors the socket loop answers at once may come as v1.
      ASSERT_GE(got->frames().size(), 2u);
      by_head[got->frames()[0]] = got->frames();
    }
  }
  ASSERT_EQ(by_head.size(), 3u);
  EXPECT_TRUE(Reply({by_head["R-head-1"].back()}).ok())
      << Reply({by_head["R-head-1"].back()}).ToString();
  ASSERT_EQ(by_head["R-head-2"].size(), 3u);
  EXPECT_EQ(by_head["R-head-2"][1], "");
  EXPECT_EQ(Reply({by_head["R-head-2"].back()}).error_code(), "not_found");
  EXPECT_EQ(Reply({by_head["R-head-3"].back()}).error_code(), "bad_request");

  // Malformed: truncated, garbage, too many frames in a record. Each is
  // refused whole with bad_request naming the fault, and the node serves on.
  const std::vector<std::string> bad = {blob.substr(0, blob.size() - 3), "\x05garbage",
                                        std::string(1, '\x40') + std::string(300, 'x'), ""};
  for (const std::string& b : bad) {
    ASSERT_TRUE(c.SendFrames({kMarker, b}));
    std::optional<Reply> got = c.Recv(Millis(5000));
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->frames().size(), 2u);
    EXPECT_EQ(got->frames()[0], kMarker);
    Reply body({got->frames()[1]});
    EXPECT_EQ(body.error_code(), "bad_request") << body.ToString();
    EXPECT_EQ(body.error_message().rfind("batch: ", 0), 0u) << body.ToString();
  }
  Reply entries = MustCall(c, EntriesReq(list));
  EXPECT_EQ(AsArray(ExpectOk(entries)).size(), 1u) << entries.ToString();
  EXPECT_EQ(StatsCounter(c, "bad_batches"), bad.size());

  // A client whose envelope is the marker (a DEALER with that routing id
  // behind a proxy) sends a v1 request: envelopes are opaque, so it is
  // served and answered behind the same envelope, not refused as a batch.
  ASSERT_TRUE(c.SendFrames({kMarker, Pack(WithId(AddReq(list, "2026-08-09", "enveloped"), 9))}));
  std::optional<Reply> got = c.Recv(Millis(5000));
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->frames().size(), 2u);
  EXPECT_EQ(got->frames()[0], kMarker);
  Reply added({got->frames()[1]});
  EXPECT_TRUE(added.ok()) << added.ToString();
  entries = MustCall(c, EntriesReq(list));
  EXPECT_EQ(AsArray(ExpectOk(entries)).size(), 2u) << entries.ToString();
  EXPECT_EQ(StatsCounter(c, "bad_batches"), bad.size());
}

}  // namespace
}  // namespace todo::testing
