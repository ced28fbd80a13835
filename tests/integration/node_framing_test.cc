// todo-node, black box: request framing (DEALER with/without delimiter, REQ,
// longer envelopes), the 64 KiB body limit, and resilience to garbage.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/node_fixture.h"

namespace todo::testing {
namespace {

constexpr size_t kMaxBody = 64 * 1024;
// ZMQ_MAXMSGSIZE: a larger frame drops the connection unread.
constexpr size_t kMaxFrame = 128 * 1024;

using NodeFramingTest = NodeTest;

// A ping map padded with an unknown key to exactly `size` bytes.
std::string PingOfSize(size_t size, Value id) {
  // Find the filler length that makes the whole body `size` bytes (the str
  // header grows at 32 and 256 and 65536 bytes, so search a little).
  for (size_t filler = size > 64 ? size - 64 : 0; filler <= size; ++filler) {
    std::string body = Pack({{"op", "ping"}, {"id", id}, {"pad", std::string(filler, 'p')}});
    if (body.size() == size) return body;
    if (body.size() > size) break;
  }
  ADD_FAILURE() << "cannot build a ping of exactly " << size << " bytes";
  return "";
}

TEST_F(NodeFramingTest, DealerWithoutDelimiterGetsOneFrame) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  Reply r = MustCall(c, {{"op", "ping"}, {"id", 1}});
  EXPECT_EQ(r.frames().size(), 1u) << r.ToString();
  ExpectOk(r);
  r = MustCall(c, AddReq("l", "2026-01-01", "t"));
  EXPECT_EQ(r.frames().size(), 1u) << r.ToString();
  ExpectOk(r);
  r = MustCallBody(c, "\xc1");
  EXPECT_EQ(r.frames().size(), 1u) << r.ToString();
  ExpectError(r, "bad_request");
}

TEST_F(NodeFramingTest, DealerWithDelimiterGetsDelimiterBack) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealerWithDelimiter);
  for (const std::string& body : {Pack({{"op", "ping"}, {"id", 1}}),
                                  Pack(AddReq("l", "2026-01-01", "t")), std::string("\xc1")}) {
    Reply r = MustCallBody(c, body);
    ASSERT_EQ(r.frames().size(), 2u) << r.ToString();
    EXPECT_EQ(r.frames()[0], "");
    EXPECT_TRUE(r.is_map()) << r.ToString();
  }
}

TEST_F(NodeFramingTest, ReqSocketWorks) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kReq);
  ExpectOk(MustCall(c, {{"op", "ping"}}));
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "a"), 1u);
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "b"), 2u);
  EXPECT_EQ(EntriesOk(c, "l").size(), 2u);
  ExpectError(MustCallBody(c, "\xc1"), "bad_request");
  ExpectOk(MustCall(c, {{"op", "ping"}}));
}

TEST_F(NodeFramingTest, ListensOnIpcEndpoint) {
  endpoint_ = "ipc://" + tmp_.Sub("node.sock");
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_);
  EXPECT_EQ(AddOk(c, "l", "2026-01-01", "over ipc"), 1u);
  EXPECT_EQ(EntriesOk(c, "l").size(), 1u);
}

TEST_F(NodeFramingTest, MultiFrameEnvelopeIsEchoed) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  const std::string body = Pack({{"op", "ping"}, {"id", 9}});
  const std::vector<std::vector<std::string>> envelopes = {
      {"extra", ""},
      {std::string("\x00\x6b\x8b\x45\x67", 5), ""},  // looks like a ROUTER identity
      {"e1", "e2", ""},
      {"e1", "e2", "e3", "e4", ""},
  };
  for (const auto& envelope : envelopes) {
    std::vector<std::string> frames = envelope;
    frames.push_back(body);
    ASSERT_TRUE(c.SendFrames(frames));
    auto r = c.Recv(kCallTimeout);
    ASSERT_TRUE(r.has_value()) << "no reply to a " << frames.size() << "-frame request";
    EXPECT_EQ(r->envelope(), envelope) << r->ToString();
    ExpectOk(*r);
    EXPECT_EQ(AsUint(r->Get("id")), std::optional<uint64_t>(9)) << r->ToString();
  }
}

TEST_F(NodeFramingTest, EnvelopeWithoutDelimiterIsEchoed) {
  // What a router forwards for a DEALER client that sends no delimiter:
  // [client identity][body]. Every frame before the body is envelope.
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  const std::vector<std::string> envelope = {std::string("\x00\x12\x34\x56\x78", 5)};
  ASSERT_TRUE(c.SendFrames({envelope[0], Pack(AddReq("l", "2026-01-01", "t"))}));
  auto r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->envelope(), envelope) << r->ToString();
  EXPECT_EQ(AsUint(MapGet(ExpectOk(*r), "id")), std::optional<uint64_t>(1)) << r->ToString();
}

TEST_F(NodeFramingTest, BodyLimitIs64KiB) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  Reply r = MustCallBody(c, PingOfSize(kMaxBody, 1));
  ExpectOk(r);  // exactly 64 KiB is not "larger than 64 KiB"
  ExpectError(MustCallBody(c, PingOfSize(kMaxBody + 1, 2)), "bad_request");
  ExpectError(MustCallBody(c, PingOfSize(kMaxFrame, 3)), "bad_request");
  ExpectError(MustCallBody(c, std::string(kMaxBody + 1, '\xc1')), "bad_request");

  // An otherwise valid add_entry over the limit is refused and not applied.
  Map big = AddReq("l", "2026-01-01", "t");
  big.emplace_back("pad", std::string(kMaxBody, 'p'));
  ExpectError(MustCall(c, big), "bad_request");
  EXPECT_EQ(EntriesOk(c, "l"), std::vector<WireEntry>{});

  // Same over REQ and with a delimiter: the framing mirrors the request.
  Client d(endpoint_, Client::Mode::kDealerWithDelimiter);
  Reply rd = MustCallBody(d, PingOfSize(kMaxBody + 1, 4));
  EXPECT_EQ(rd.envelope(), std::vector<std::string>{""}) << rd.ToString();
  ExpectError(rd, "bad_request");
  Client q(endpoint_, Client::Mode::kReq);
  ExpectError(MustCallBody(q, PingOfSize(kMaxBody + 1, 5)), "bad_request");
  ExpectOk(MustCall(q, {{"op", "ping"}}));
}

TEST_F(NodeFramingTest, FrameOverTheLimitDropsTheConnectionUnreadAndOthersAreServed) {
  // A frame larger than the protocol allows is never buffered: libzmq
  // drops the connection at its header (ZMQ_MAXMSGSIZE), so no reply.
  ASSERT_NE(StartNode(), nullptr);
  Client good(endpoint_);
  uint64_t added = 0;
  for (size_t size : {kMaxFrame + 1, size_t{1} << 20, size_t{8} << 20}) {
    SCOPED_TRACE(std::to_string(size) + "-byte frame");
    Client c(endpoint_);
    ExpectOk(MustCall(c, {{"op", "ping"}}));  // connected
    ASSERT_TRUE(c.SendBody(std::string(size, '\x92')));
    EXPECT_FALSE(c.Recv(Millis(1000)).has_value()) << "an oversized frame was answered";
    EXPECT_EQ(AddOk(good, "good", "2026-01-01", "t"), ++added);
    // The client reconnects by itself; a fresh request is answered.
    c.Reset();
    ExpectOk(MustCall(c, {{"op", "ping"}}));
  }
}

TEST_F(NodeFramingTest, FrameLimitCountsOnlyTheClientsFrames) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  const std::string ping = Pack({{"op", "ping"}, {"id", 1}});
  std::vector<std::string> frames(31, "");  // 31 + the body: the 32 allowed
  frames.push_back(ping);
  ASSERT_TRUE(c.SendFrames(frames));
  auto r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectOk(*r);
  EXPECT_EQ(r->envelope().size(), 31u);
  frames.insert(frames.begin(), "");  // 33
  ASSERT_TRUE(c.SendFrames(frames));
  r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, "bad_request");
  EXPECT_EQ(r->error_message(), "message has 33 frames, more than the 32 allowed");
  EXPECT_TRUE(r->envelope().empty()) << r->ToString();
}

TEST_F(NodeFramingTest, LargeEnvelopeIsRefusedAndNotEchoed) {
  // Envelope frames are held with the request and echoed with its reply: a
  // client that never reads could otherwise pile up big envelopes behind
  // small requests. A router's head (9 + 255 bytes) and a client's 1 KiB
  // fit; more is answered bad_request to the identity alone.
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  const std::string ping = Pack({{"op", "ping"}, {"id", 2}});
  const std::vector<std::string> fits = {std::string(264, 'h'), std::string(1000, 'e'), ""};
  std::vector<std::string> frames = fits;
  frames.push_back(ping);
  ASSERT_TRUE(c.SendFrames(frames));
  auto r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectOk(*r);
  EXPECT_EQ(r->envelope(), fits);
  for (const std::vector<std::string>& big :
       {std::vector<std::string>{std::string(1289, 'e')},
        std::vector<std::string>{std::string(100 * 1024, 'e'), ""},
        std::vector<std::string>(30, std::string(100, 'e'))}) {
    frames = big;
    frames.push_back(Pack(AddReq("env", "2026-01-01", "t")));
    ASSERT_TRUE(c.SendFrames(frames));
    r = c.Recv(kCallTimeout);
    ASSERT_TRUE(r.has_value());
    ExpectError(*r, "bad_request");
    EXPECT_NE(r->error_message().find("routing envelope (the frames before the body) is "),
              std::string::npos)
        << r->error_message();
    EXPECT_TRUE(r->envelope().empty()) << r->ToString();
  }
  EXPECT_EQ(EntriesOk(c, "env"), std::vector<WireEntry>{});  // nothing applied
}

TEST_F(NodeFramingTest, RandomBodiesEachGetExactlyOneReply) {
  ASSERT_NE(StartNode(), nullptr);
  Client c(endpoint_, Client::Mode::kDealer);
  std::mt19937 rng(12345);
  constexpr int kBodies = 300;
  for (int i = 0; i < kBodies; ++i) {
    std::string body(1 + rng() % 200, '\0');
    for (char& ch : body) ch = static_cast<char>(rng());
    ASSERT_TRUE(c.SendBody(body));
  }
  std::vector<Reply> replies = Collect(c, kBodies, Millis(30000));
  EXPECT_EQ(replies.size(), size_t{kBodies});
  for (const Reply& r : replies) {
    EXPECT_EQ(r.frames().size(), 1u) << r.ToString();
    EXPECT_TRUE(r.is_map()) << r.ToString();
    std::string code = r.error_code();
    EXPECT_TRUE(code == "bad_request" || code == "unknown_op") << r.ToString();
  }
  EXPECT_FALSE(c.Recv(Millis(300)).has_value()) << "more replies than requests";
  ExpectOk(MustCall(c, {{"op", "ping"}}));
}

TEST_F(NodeFramingTest, GarbageDoesNotStopServingOtherClients) {
  Process* node = StartNode();
  ASSERT_NE(node, nullptr);
  Client bad(endpoint_, Client::Mode::kDealer);
  Client good(endpoint_, Client::Mode::kDealer);
  std::mt19937 rng(777);

  // Deep nesting inside an unknown key (within the size limit).
  std::string deep = "\x82\xa2op\xa4ping\xa1x" + std::string(60000, '\x91') + "\xc0";
  std::vector<std::vector<std::string>> junk = {
      {""},
      {"", ""},
      {"", "", ""},
      {std::string(100, '\0')},
      {"a", "b", "c", "d", "e", "f", "g", "h"},
      {deep},
      {"", deep},
      {std::string(kMaxFrame, '\x92')},
      {"\xdf\xff\xff\xff\xff"},
      {"\xdd\xff\xff\xff\xff"},
  };
  std::vector<std::string> many_frames(200, "x");
  junk.push_back(many_frames);

  for (int round = 0; round < 20; ++round) {
    for (const auto& frames : junk) ASSERT_TRUE(bad.SendFrames(frames));
    std::string noise(1 + rng() % 1000, '\0');
    for (char& ch : noise) ch = static_cast<char>(rng());
    ASSERT_TRUE(bad.SendFrames({noise, noise}));
    // The good client keeps getting served in between.
    EXPECT_EQ(AddOk(good, "good", "2026-01-01", "r" + std::to_string(round)), uint64_t(round + 1));
  }
  EXPECT_EQ(EntriesOk(good, "good").size(), 20u);
  EXPECT_TRUE(node->Running());

  // The garbage client itself is still served once it behaves.
  ASSERT_TRUE(bad.Send({{"op", "ping"}, {"id", "after-garbage"}}));
  bool answered = false;
  for (int i = 0; i < 2000 && !answered; ++i) {
    auto r = bad.Recv(kCallTimeout);
    if (!r) break;
    answered = AsStr(r->Get("id")) == std::optional<std::string>("after-garbage") && r->ok();
  }
  EXPECT_TRUE(answered) << "the garbage client's ping was not answered";
  EXPECT_TRUE(node->Running());
}

}  // namespace
}  // namespace todo::testing
