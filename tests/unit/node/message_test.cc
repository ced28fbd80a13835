#include "node/message.h"

#include <gtest/gtest.h>

#include <deque>

#include "test_util.h"

namespace todo::node {
namespace {

// A body of up to 33 bytes lives inside the zmq_msg_t and moves with it;
// the decoded views must follow (regression: they pointed at the old place).
TEST(CallTest, ViewsFollowASmallBodyThroughMoves) {
  protocol::Request r;
  r.op = protocol::Op::kEntries;
  r.list = "ab";
  r.id = protocol::RequestId::Str("x");
  Call call = todo::testing::MakeCall(r);
  ASSERT_LE(call.body.size(), 33u);
  std::deque<Call> mailbox;
  mailbox.push_back(std::move(call));
  std::vector<Call> batch;
  batch.push_back(std::move(mailbox.front()));
  mailbox.pop_front();
  Call& c = batch.back();
  const char* begin = static_cast<const char*>(c.body.data());
  EXPECT_EQ(c.request.list, "ab");
  EXPECT_GE(c.request.list.data(), begin);
  EXPECT_LT(c.request.list.data(), begin + c.body.size());
  EXPECT_EQ(c.request.id.str_value, "x");
  EXPECT_GE(c.request.id.str_value.data(), begin);
}

TEST(CallTest, LargeBodiesKeepTheirViews) {
  std::string title(500, 't');
  protocol::Request r = todo::testing::Add("list", "2026-01-01", title);
  Call call = todo::testing::MakeCall(r);
  const void* data = call.body.data();
  Call moved = std::move(call);
  EXPECT_EQ(moved.body.data(), data);  // heap bodies don't move
  EXPECT_EQ(*moved.request.title, title);
}

TEST(EncodeBodyTest, SmallAndLargeReplies) {
  zmq::message_t small =
      EncodeBody([](msgpack::sbuffer& b) { protocol::EncodeAddResult(b, {}, 7); });
  auto oh = msgpack::unpack(static_cast<const char*>(small.data()), small.size());
  EXPECT_EQ(oh.get().via.map.size, 2u);
  std::string big(100000, 'x');
  zmq::message_t large = EncodeBody(
      [&](msgpack::sbuffer& b) { protocol::EncodeError(b, {}, ErrorCode::kInternal, big); });
  EXPECT_GT(large.size(), 100000u);
  zmq::message_t again =
      EncodeBody([](msgpack::sbuffer& b) { protocol::EncodeDeleted(b, {}, true); });
  EXPECT_LT(again.size(), 64u);  // the scratch buffer was reset, not reused dirty
}

}  // namespace
}  // namespace todo::node
