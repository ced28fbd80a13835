// The router on the wire, black box: reply framing mirrors the request (bare
// DEALER, DEALER with delimiter, REQ), ids are echoed, garbage and unknown
// ops are refused by the router itself without disturbing other clients, and
// a pipelined burst is answered exactly once, in per-list order.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

using ClusterWireTest = SharedClusterTest;

// A router whose nodes listen nowhere: whatever it answers with bad_request
// or unknown_op it answered itself (a forwarded request could only come back
// as overloaded, unavailable or timeout).
std::string StartLonelyRouter(Cluster& cluster) {
  std::vector<std::string> args;
  for (const char* n : {"x1", "x2", "x3"}) {
    args.push_back("--node");
    args.push_back(std::string(n) + "=" + FreeLoopbackEndpoint());
  }
  int r = cluster.StartRouter(args);
  return r < 0 ? "" : cluster.router(r).endpoint;
}

TEST_F(ClusterWireTest, ReplyFramingMirrorsTheRequestForEveryKindOfReply) {
  const std::string prefix = TestListPrefix();
  for (Client::Mode mode :
       {Client::Mode::kDealer, Client::Mode::kDealerWithDelimiter, Client::Mode::kReq}) {
    SCOPED_TRACE(ModeName(mode));
    Client c(router_a(), mode);
    const std::string list = prefix + "-" + ModeName(mode);
    // Answered by the router: ping, locate, bad_request, unknown_op.
    Reply ping = MustCall(c, WithId({{"op", "ping"}}, 1));
    ExpectReplyFraming(mode, ping);
    EXPECT_TRUE(ping.ok()) << ping.ToString();
    Reply locate = MustCall(c, WithId({{"op", "locate"}, {"list", list}}, 2));
    ExpectReplyFraming(mode, locate);
    EXPECT_TRUE(locate.ok()) << locate.ToString();
    Reply bad = MustCallBody(c, "\xc1");
    ExpectReplyFraming(mode, bad);
    EXPECT_EQ(bad.error_code(), "bad_request") << bad.ToString();
    Reply unknown = MustCall(c, WithId({{"op", "frobnicate"}}, 3));
    ExpectReplyFraming(mode, unknown);
    EXPECT_EQ(unknown.error_code(), "unknown_op") << unknown.ToString();
    // Answered by a node, through the router.
    Reply add = MustCall(c, WithId(AddReq(list, "2026-01-31", "framed"), 4));
    ExpectReplyFraming(mode, add);
    EXPECT_EQ(AsUint(MapGet(ExpectOk(add), "id")), std::optional<uint64_t>(1)) << add.ToString();
    Reply entries = MustCall(c, WithId(EntriesReq(list), 5));
    ExpectReplyFraming(mode, entries);
    EXPECT_EQ(AsArray(ExpectOk(entries)).size(), 1u) << entries.ToString();
    Reply not_found = MustCall(
        c, WithId({{"op", "update_entry"}, {"list", list}, {"entry_id", 9}, {"title", "x"}}, 6));
    ExpectReplyFraming(mode, not_found);
    EXPECT_EQ(not_found.error_code(), "not_found") << not_found.ToString();
  }
}

TEST_F(ClusterWireTest, OneDealerMixingFramingsGetsEachReplyFramedLikeItsRequest) {
  Client c(router_a(), Client::Mode::kDealer);
  const std::string list = TestListPrefix();
  constexpr uint64_t kCount = 200;
  for (uint64_t i = 1; i <= kCount; ++i) {
    // Odd ids with a delimiter; every third request is answered by the router.
    Map req = i % 3 == 0 ? WithId({{"op", "ping"}}, i)
                         : WithId(AddReq(list, "2026-02-02", std::to_string(i)), i);
    if (i % 2 == 1) {
      ASSERT_TRUE(c.SendFrames({"", Pack(req)}));
    } else {
      ASSERT_TRUE(c.SendBody(Pack(req)));
    }
  }
  std::vector<Reply> replies = Collect(c, kCount, Millis(30000));
  ASSERT_EQ(replies.size(), kCount);
  std::set<uint64_t> seen;
  for (const Reply& r : replies) {
    auto id = AsUint(r.Get("id"));
    ASSERT_TRUE(id.has_value()) << r.ToString();
    EXPECT_TRUE(seen.insert(*id).second) << "duplicate " << r.ToString();
    EXPECT_TRUE(r.ok()) << r.ToString();
    if (*id % 2 == 1) {
      ASSERT_EQ(r.frames().size(), 2u) << "request " << *id << " had a delimiter";
      EXPECT_EQ(r.frames()[0], "");
    } else {
      EXPECT_EQ(r.frames().size(), 1u) << "request " << *id << " had no delimiter";
    }
  }
}

// Checks that the reply's "id" is exactly `id` (same msgpack type and value).
void ExpectIdEcho(const Reply& reply, const std::string& id_text, bool is_str) {
  const msgpack::object* got = reply.Get("id");
  ASSERT_NE(got, nullptr) << "no id echoed for " << id_text << ": " << reply.ToString();
  if (is_str) {
    EXPECT_EQ(AsStr(got), std::optional<std::string>(id_text)) << reply.ToString();
  } else {
    EXPECT_EQ(AsUint(got), std::optional<uint64_t>(std::stoull(id_text))) << reply.ToString();
  }
}

TEST_F(ClusterWireTest, IdsAreEchoedVerbatimOnEveryPath) {
  Client c(router_b());
  const std::string list = TestListPrefix();
  struct IdCase {
    Value value;
    std::string text;
    bool is_str;
  };
  const std::vector<IdCase> ids = {
      {Value(0ULL), "0", false},
      {Value(127ULL), "127", false},
      {Value(4294967296ULL), "4294967296", false},
      {Value(18446744073709551615ULL), "18446744073709551615", false},
      {Value(""), "", true},
      {Value("req-42"), "req-42", true},
      {Value("\xc3\xa9t\xc3\xa9"), "\xc3\xa9t\xc3\xa9", true},
  };
  const std::vector<std::pair<std::string, Map>> requests = {
      {"ping", {{"op", "ping"}}},
      {"locate", {{"op", "locate"}, {"list", list}}},
      {"add_entry", AddReq(list, "2026-03-03", "t")},
      {"entries", EntriesReq(list)},
      {"not_found", {{"op", "update_entry"}, {"list", list}, {"entry_id", 999}, {"title", "x"}}},
      {"unknown_op", {{"op", "frobnicate"}, {"list", list}}},
      {"bad_request (no list)", {{"op", "entries"}}},
      {"bad_request (bad date)", AddReq(list, "2026-02-29", "t")},
  };
  for (const auto& idc : ids) {
    for (const auto& [what, req] : requests) {
      SCOPED_TRACE(what + " with id '" + idc.text + "'");
      // The id goes first here, so a router that stops at the first bad key
      // has already seen it.
      Map with_id = {{"id", idc.value}};
      with_id.insert(with_id.end(), req.begin(), req.end());
      ExpectIdEcho(MustCall(c, with_id), idc.text, idc.is_str);
    }
  }
}

struct Garbage {
  std::string name;
  std::vector<std::string> frames;  // sent verbatim on a DEALER
};

std::vector<Garbage> GarbageCases() {
  const std::string ping = Pack({{"op", "ping"}});
  std::string array = "\x93\x01\x02";
  array += ping;  // an array whose last element is a valid request map
  std::vector<std::string> many(20, "x");
  many.push_back(ping);
  std::vector<std::string> many_empty(20, "");
  many_empty.push_back(ping);
  return {
      {"not msgpack", {"\xc1"}},
      {"text", {"hello, router"}},
      {"truncated map", {ping.substr(0, ping.size() - 1)}},
      {"nil", {"\xc0"}},
      {"array", {array}},
      {"trailing bytes", {ping + "\xc0"}},
      {"second map after the first", {ping + ping}},
      {"bin key", {Pack({{Value::Bin("op"), "ping"}})}},
      {"bin op value", {Pack({{"op", Value::Bin("ping")}})}},
      {"int key", {Pack({{1, "x"}, {"op", "ping"}})}},
      {"no op", {Pack({{"list", "l"}})}},
      {"op not str", {Pack({{"op", 5}})}},
      {"negative id", {Pack({{"op", "ping"}, {"id", -1}})}},
      {"float id", {Pack({{"op", "ping"}, {"id", Value::Double(1.5)}})}},
      {"huge valid ping (> 64 KiB)", {Pack({{"op", "ping"}, {"pad", std::string(70000, 'p')}})}},
      {"huge garbage (100 KiB)", {std::string(100 * 1024, 'x')}},
      {"just over 64 KiB", {std::string(65537, '\x90')}},
      {"empty body", {""}},
      {"empty body after delimiter", {"", ""}},
      {"21 frames", many},
      {"21 frames, 20 empty", many_empty},
  };
}

TEST_F(ClusterWireTest, GarbageIsRefusedByTheRouterItselfAndOthersKeepBeingServed) {
  const std::string lonely = StartLonelyRouter(cluster());
  ASSERT_FALSE(lonely.empty());
  const std::string list = TestListPrefix();
  Client bystander(router_a());
  uint64_t next_entry = 0;
  for (const std::string& router : {lonely, router_a()}) {
    Client bad(router);
    for (const Garbage& g : GarbageCases()) {
      SCOPED_TRACE("'" + g.name + "' to " + (router == lonely ? "router without nodes" : "A"));
      ASSERT_TRUE(bad.SendFrames(g.frames));
      auto reply = bad.Recv(kCallTimeout);
      ASSERT_TRUE(reply.has_value()) << "no reply";
      ExpectError(*reply, "bad_request");
      // Meanwhile another client of router A is served as usual.
      EXPECT_EQ(AddOk(bystander, list, "2026-04-04", g.name), ++next_entry);
    }
    // The garbage client's own connection still works.
    Reply pong = MustCall(bad, {{"op", "ping"}});
    EXPECT_TRUE(pong.ok()) << pong.ToString();
  }
  EXPECT_EQ(EntriesOk(bystander, list).size(), next_entry);
}

// protocol.md: "A body larger than 64 KiB is refused with bad_request", and
// every request gets exactly one reply: up to the frame limit (128 KiB). A
// bigger frame is never buffered: the router (like the node) sets
// ZMQ_MAXMSGSIZE, so libzmq drops the connection and the request is never
// answered (PROTOCOL.md). The router keeps serving, the client reconnects.
TEST_F(ClusterWireTest, FrameOverTheLimitDropsTheConnectionOthersAreServed) {
  Client other(router_a());
  const std::string list = TestListPrefix();
  uint64_t next = 0;
  {
    Client c(router_a());
    ASSERT_TRUE(c.SendBody(Pack({{"op", "ping"}, {"pad", std::string(120 * 1024, 'p')}})));
    auto reply = c.Recv(Millis(3000));
    ASSERT_TRUE(reply.has_value()) << "a frame under the limit was not answered";
    ExpectError(*reply, "bad_request");
  }
  for (size_t size : {size_t{128 * 1024} + 1, size_t{1} << 20, size_t{8} << 20}) {
    SCOPED_TRACE(std::to_string(size) + "-byte body");
    Client c(router_a());
    ASSERT_TRUE(MustCall(c, {{"op", "ping"}}).ok());
    ASSERT_TRUE(c.SendBody(std::string(size, 'p')));
    EXPECT_FALSE(c.Recv(Millis(1000)).has_value()) << "an oversized frame was answered";
    EXPECT_EQ(AddOk(other, list, "2026-04-04", "t"), ++next);
    c.Reset();
    Reply pong = MustCall(c, {{"op", "ping"}});
    EXPECT_TRUE(pong.ok()) << pong.ToString();
  }
}

TEST_F(ClusterWireTest, LargeEnvelopeIsRefusedByTheRouterAndNotEchoed) {
  Client c(router_a());
  std::vector<std::string> frames = {std::string(1025, 'e'), Pack({{"op", "ping"}, {"id", 3}})};
  ASSERT_TRUE(c.SendFrames(frames));
  auto r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, "bad_request");
  EXPECT_EQ(AsUint(r->Get("id")), std::optional<uint64_t>(3)) << r->ToString();
  EXPECT_TRUE(r->envelope().empty()) << r->ToString();
  EXPECT_EQ(r->error_message(),
            "routing envelope (the frames before the body) is 1025 bytes, more than the 1024 "
            "allowed");
  // 1 KiB passes, through the router to a node and back.
  const std::string list = TestListPrefix();
  frames = {std::string(1000, 'e'), "", Pack(AddReq(list, "2026-04-04", "t"))};
  ASSERT_TRUE(c.SendFrames(frames));
  r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectOk(*r);
  EXPECT_EQ(r->envelope(), (std::vector<std::string>{std::string(1000, 'e'), ""}));
  // 16 frames from the client are allowed, also forwarded to a node and
  // back; 17 are not ("more than 16" only past 16).
  std::vector<std::string> sixteen(15, "");
  sixteen.push_back(Pack(AddReq(list, "2026-04-04", "sixteen frames")));
  ASSERT_TRUE(c.SendFrames(sixteen));
  r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  ExpectOk(*r);
  EXPECT_EQ(r->envelope().size(), 15u) << r->ToString();
  sixteen.insert(sixteen.begin(), "");
  ASSERT_TRUE(c.SendFrames(sixteen));
  r = c.Recv(kCallTimeout);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error_message(), "message has 17 frames, more than the 16 allowed");
}

TEST_F(ClusterWireTest, GarbageBurstFromOneClientDoesNotStallAnother) {
  Client bad(router_b());
  Client good(router_b());
  const std::string list = TestListPrefix();
  const std::vector<Garbage> cases = GarbageCases();
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    for (const Garbage& g : cases) ASSERT_TRUE(bad.SendFrames(g.frames));
  }
  for (int i = 1; i <= 20; ++i) {
    EXPECT_EQ(AddOk(good, list, "2026-04-05", "good " + std::to_string(i)),
              static_cast<uint64_t>(i));
  }
  std::vector<Reply> replies = Collect(bad, kRounds * cases.size(), Millis(30000));
  EXPECT_EQ(replies.size(), kRounds * cases.size());
  for (const Reply& r : replies) EXPECT_EQ(r.error_code(), "bad_request") << r.ToString();
  EXPECT_FALSE(bad.Recv(Millis(200)).has_value()) << "more replies than requests";
}

TEST_F(ClusterWireTest, InvalidFieldsAreRefusedByTheRouterItself) {
  const std::string lonely = StartLonelyRouter(cluster());
  ASSERT_FALSE(lonely.empty());
  Client c(lonely);
  const std::vector<std::pair<std::string, Map>> cases = {
      {"empty list", EntriesReq("")},
      {"256-byte list", EntriesReq(std::string(256, 'l'))},
      {"list not utf-8", EntriesReq("\xff\xfe")},
      {"list is bin", {{"op", "entries"}, {"list", Value::Bin("l")}}},
      {"add without title", {{"op", "add_entry"}, {"list", "l"}, {"date", "2026-01-01"}}},
      {"add with 2026-02-29", AddReq("l", "2026-02-29", "t")},
      {"add with year 0", AddReq("l", "0000-01-01", "t")},
      {"add with empty title", AddReq("l", "2026-01-01", "")},
      {"add with 1025-byte title", AddReq("l", "2026-01-01", std::string(1025, 't'))},
      {"update without fields", {{"op", "update_entry"}, {"list", "l"}, {"entry_id", 1}}},
      {"delete with negative id", {{"op", "delete_entry"}, {"list", "l"}, {"entry_id", -1}}},
      {"locate without list", {{"op", "locate"}}},
  };
  for (const auto& [what, req] : cases) {
    SCOPED_TRACE(what);
    ExpectError(MustCall(c, WithId(req, 77)), "bad_request");
  }
}

TEST_F(ClusterWireTest, UnknownOpIsAnsweredByTheRouter) {
  const std::string lonely = StartLonelyRouter(cluster());
  ASSERT_FALSE(lonely.empty());
  for (const std::string& router : {lonely, router_a()}) {
    Client c(router);
    for (const Map& req : std::vector<Map>{{{"op", "frobnicate"}, {"id", 5}},
                                           {{"op", "frobnicate"}, {"list", "l"}, {"id", 5}},
                                           {{"op", "PING"}, {"id", 5}},
                                           {{"op", ""}, {"id", 5}}}) {
      Reply reply = MustCall(c, req);
      ExpectError(reply, "unknown_op");
      EXPECT_EQ(AsUint(reply.Get("id")), std::optional<uint64_t>(5)) << reply.ToString();
    }
  }
}

TEST_F(ClusterWireTest, TwoThousandPipelinedRequestsOverHundredListsAnsweredOnceInOrder) {
  Client c(router_a());
  const std::string prefix = TestListPrefix();
  constexpr uint64_t kCount = 2000;
  constexpr uint64_t kLists = 100;
  for (uint64_t i = 0; i < kCount; ++i) {
    const std::string list = prefix + "-" + std::to_string(i % kLists);
    ASSERT_TRUE(c.Send(WithId(AddReq(list, "2026-06-06", "req " + std::to_string(i)), i)));
  }
  std::vector<Reply> replies = Collect(c, kCount, Millis(90000));
  ASSERT_EQ(replies.size(), kCount) << "replies missing";
  std::map<uint64_t, uint64_t> entry_of;  // request id -> entry id
  for (const Reply& r : replies) {
    auto id = AsUint(r.Get("id"));
    ASSERT_TRUE(id.has_value()) << r.ToString();
    ASSERT_LT(*id, kCount) << r.ToString();
    EXPECT_TRUE(entry_of.emplace(*id, AsUint(MapGet(ExpectOk(r), "id")).value_or(0)).second)
        << "duplicate reply " << r.ToString();
  }
  EXPECT_FALSE(c.Recv(Millis(300)).has_value()) << "more replies than requests";
  // Per list, in sending order, the entry ids are 1, 2, 3, ...
  for (uint64_t l = 0; l < kLists; ++l) {
    uint64_t expected = 1;
    for (uint64_t i = l; i < kCount; i += kLists) {
      EXPECT_EQ(entry_of[i], expected) << "request " << i << " on list " << l;
      ++expected;
    }
  }
  // And the lists hold exactly that.
  for (uint64_t l = 0; l < kLists; l += 33) {
    const std::string list = prefix + "-" + std::to_string(l);
    std::vector<WireEntry> entries = EntriesOk(c, list);
    ASSERT_EQ(entries.size(), kCount / kLists) << list;
    for (uint64_t k = 0; k < entries.size(); ++k) {
      EXPECT_EQ(entries[k],
                (WireEntry{k + 1, "2026-06-06", "req " + std::to_string(l + k * kLists)}));
    }
  }
}

}  // namespace
}  // namespace todo::testing
