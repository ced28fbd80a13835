// NodeStatsPoller (router/node_stats.h) against fake nodes in this process
// (ROUTER sockets on loopback, each served by its own thread): answers are
// kept per node, a node that is not there or answers garbage is reported
// with the reason, nothing is asked while inactive, and Stop() ends the
// thread. Every wait is bounded; runs under the thread sanitizer.
#include "router/node_stats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <msgpack.hpp>
#include <thread>

#include "common/protocol.h"

namespace todo::router {
namespace {

using std::chrono::milliseconds;

// A fake node: answers every `stats` request with {"partitions": [{
// "partition": 7, "role": "primary", ...}], "inflight": <answers so far>},
// or with garbage.
class FakeNode {
 public:
  FakeNode(zmq::context_t& ctx, bool garbage) : socket_(ctx, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this, garbage] { Serve(garbage); });
  }
  ~FakeNode() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  int answered() const { return answered_.load(); }

 private:
  void Serve(bool garbage) {
    while (!stop_) {
      zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(20));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t identity, body;
      (void)socket_.recv(identity);
      (void)socket_.recv(body);
      auto req = protocol::DecodeRequest(
          std::string_view(static_cast<const char*>(body.data()), body.size()));
      ASSERT_TRUE(req.status.ok());
      ASSERT_EQ(req.request.op, protocol::Op::kStats);
      msgpack::sbuffer reply;
      if (garbage) {
        reply.write("\xc1garbage", 8);
      } else {
        protocol::BeginOkReply(reply, req.request.id);
        msgpack::packer<msgpack::sbuffer> pk(reply);
        pk.pack_map(2);
        pk.pack("inflight");
        pk.pack(answered_.load() + 1);
        pk.pack("partitions");
        pk.pack_array(1);
        pk.pack_map(3);
        pk.pack("partition");
        pk.pack(7);
        pk.pack("role");
        pk.pack("primary");
        pk.pack("seq");
        pk.pack(42);
      }
      (void)socket_.send(identity, zmq::send_flags::sndmore);
      (void)socket_.send(zmq::buffer(reply.data(), reply.size()));
      ++answered_;
    }
  }

  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

template <typename F>
bool WaitFor(F f, milliseconds limit = milliseconds(10000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

NodeStatsOptions Fast() {
  NodeStatsOptions o;
  o.interval = milliseconds(100);
  o.timeout = milliseconds(300);
  return o;
}

TEST(NodeStatsPollerTest, KeepsEachNodesLatestAnswer) {
  zmq::context_t ctx(1);
  FakeNode good(ctx, false);
  FakeNode bad(ctx, true);
  NodeStatsPoller poller(&ctx, Fast());
  // A port nobody listens on: never connected.
  zmq::socket_t closed(ctx, zmq::socket_type::router);
  closed.bind("tcp://127.0.0.1:0");
  const std::string nobody = closed.get(zmq::sockopt::last_endpoint);
  closed.close();
  poller.SetTargets({{"good", good.endpoint()}, {"bad", bad.endpoint()}, {"gone", nobody}});
  poller.SetActive(true);
  ASSERT_TRUE(WaitFor([&] {
    auto l = poller.Latest();
    return l["good"].result != nullptr && l["good"].result->value("inflight", 0) >= 2 &&
           !l["bad"].last_error.empty() && !l["gone"].last_error.empty();
  })) << "no answers";
  auto latest = poller.Latest();
  const NodeStatsEntry& g = latest["good"];
  EXPECT_TRUE(g.last_ok);
  EXPECT_TRUE(g.last_error.empty());
  EXPECT_EQ((*g.result)["partitions"][0]["partition"], 7);
  EXPECT_EQ((*g.result)["partitions"][0]["seq"], 42);
  EXPECT_FALSE(latest["bad"].last_ok);
  EXPECT_EQ(latest["bad"].result, nullptr);
  EXPECT_NE(latest["bad"].last_error.find("unreadable"), std::string::npos)
      << latest["bad"].last_error;
  EXPECT_FALSE(latest["gone"].last_ok);
  EXPECT_EQ(latest["gone"].result, nullptr);

  // A node left out of the targets is forgotten.
  poller.SetTargets({{"good", good.endpoint()}});
  latest = poller.Latest();
  EXPECT_FALSE(latest.contains("bad"));
  EXPECT_FALSE(latest.contains("gone"));
  poller.Stop();
  poller.Stop();  // idempotent
}

TEST(NodeStatsPollerTest, AsksNothingWhileInactive) {
  zmq::context_t ctx(1);
  FakeNode node(ctx, false);
  NodeStatsPoller poller(&ctx, Fast());
  poller.SetTargets({{"n1", node.endpoint()}});
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(poller.rounds(), 0u);
  EXPECT_EQ(node.answered(), 0);
  poller.SetActive(true);
  ASSERT_TRUE(WaitFor([&] { return poller.rounds() >= 2; }));
  poller.SetActive(false);
  const uint64_t rounds = poller.rounds();
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_LE(poller.rounds(), rounds + 1) << "at most the round in progress";
}

TEST(NodeStatsPollerTest, DecodeStatsReply) {
  msgpack::sbuffer ok;
  protocol::BeginOkReply(ok, protocol::RequestId::Uint(3));
  msgpack::packer<msgpack::sbuffer>(ok).pack_map(0);
  EXPECT_TRUE(DecodeStatsReply(std::string_view(ok.data(), ok.size())).ok());
  msgpack::sbuffer err;
  protocol::EncodeError(err, protocol::RequestId::Uint(3), ErrorCode::kUnknownOp, "stats is off");
  auto r = DecodeStatsReply(std::string_view(err.data(), err.size()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("stats is off"), std::string::npos);
  EXPECT_FALSE(DecodeStatsReply("").ok());
  msgpack::sbuffer arr;
  protocol::BeginOkReply(arr, protocol::RequestId::Uint(3));
  msgpack::packer<msgpack::sbuffer>(arr).pack_array(0);
  EXPECT_FALSE(DecodeStatsReply(std::string_view(arr.data(), arr.size())).ok());
}

}  // namespace
}  // namespace todo::router
