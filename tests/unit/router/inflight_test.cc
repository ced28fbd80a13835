#include "router/inflight.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/router/test_time.h"

namespace todo::router {
namespace {

using test_time::At;
using test_time::kStart;

InflightEntry InflightAt(uint64_t seq, int64_t deadline_ms, uint32_t node = 0) {
  InflightEntry e;
  e.seq = seq;
  e.deadline = At(deadline_ms);
  e.node = node;
  e.op = protocol::Op::kAddEntry;
  e.id = OwnedRequestId::From(protocol::RequestId::Uint(seq * 10));
  e.envelope = {"client-" + std::to_string(seq), ""};
  return e;
}

std::vector<uint64_t> Seqs(const std::vector<InflightEntry>& entries) {
  std::vector<uint64_t> seqs;
  for (const auto& e : entries) seqs.push_back(e.seq);
  return seqs;
}

TEST(InflightTableTest, CompleteReturnsTheEntryOnce) {
  InflightTable t(10);
  ASSERT_TRUE(t.Insert(InflightAt(1, 5000, 2)));
  EXPECT_EQ(t.size(), 1u);
  auto e = t.Complete(1);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->seq, 1u);
  EXPECT_EQ(e->node, 2u);
  EXPECT_EQ(e->deadline, At(5000));
  EXPECT_EQ(e->id.view().uint_value, 10u);
  EXPECT_EQ(e->envelope, (std::vector<std::string>{"client-1", ""}));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.Complete(1).has_value());   // a second reply is not delivered
  EXPECT_FALSE(t.Complete(99).has_value());  // never inserted
}

TEST(InflightTableTest, BytesCountLiveEntriesOnly) {
  InflightTable t(10);
  for (uint64_t s = 1; s <= 4; ++s) {
    InflightEntry e = InflightAt(s, 1000 * static_cast<int64_t>(s));
    e.bytes = static_cast<uint32_t>(100 * s);
    ASSERT_TRUE(t.Insert(std::move(e)));
  }
  EXPECT_EQ(t.bytes(), 1000u);
  ASSERT_TRUE(t.Complete(2).has_value());
  EXPECT_EQ(t.bytes(), 800u);
  EXPECT_FALSE(t.Complete(2).has_value());
  EXPECT_EQ(t.bytes(), 800u);  // counted out once
  std::vector<InflightEntry> expired;
  EXPECT_EQ(t.Expire(At(3000), &expired), 2u);  // 1 and 3
  EXPECT_EQ(t.bytes(), 400u);
  InflightEntry dup = InflightAt(4, 9000);
  dup.bytes = 7;
  EXPECT_FALSE(t.Insert(std::move(dup)));  // refused: nothing counted
  EXPECT_EQ(t.bytes(), 400u);
  ASSERT_TRUE(t.Complete(4).has_value());
  EXPECT_EQ(t.bytes(), 0u);
}

TEST(InflightTableTest, ExpiresInDeadlineOrderSkippingCompleted) {
  InflightTable t(10);
  for (uint64_t s = 1; s <= 5; ++s) ASSERT_TRUE(t.Insert(InflightAt(s, 100 * s)));
  ASSERT_TRUE(t.Complete(2).has_value());
  ASSERT_TRUE(t.Complete(4).has_value());
  std::vector<InflightEntry> expired;
  EXPECT_EQ(t.Expire(At(99), &expired), 0u);
  EXPECT_TRUE(expired.empty());
  // A deadline equal to now has passed.
  EXPECT_EQ(t.Expire(At(300), &expired), 2u);
  EXPECT_EQ(Seqs(expired), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(t.size(), 1u);
  expired.clear();
  EXPECT_EQ(t.Expire(At(10000), &expired), 1u);
  EXPECT_EQ(Seqs(expired), (std::vector<uint64_t>{5}));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.NextDeadline().has_value());
}

TEST(InflightTableTest, LateCompletionAfterExpiryIsNotFound) {
  InflightTable t(10);
  ASSERT_TRUE(t.Insert(InflightAt(7, 5000)));
  std::vector<InflightEntry> expired;
  ASSERT_EQ(t.Expire(At(5000), &expired), 1u);
  EXPECT_FALSE(t.Complete(7).has_value());
  // Nor does it expire twice.
  expired.clear();
  EXPECT_EQ(t.Expire(At(100000), &expired), 0u);
}

TEST(InflightTableTest, NextDeadlineIsTheEarliestLiveEntry) {
  InflightTable t(10);
  EXPECT_FALSE(t.NextDeadline().has_value());
  ASSERT_TRUE(t.Insert(InflightAt(1, 100)));
  ASSERT_TRUE(t.Insert(InflightAt(2, 200)));
  ASSERT_TRUE(t.Insert(InflightAt(3, 300)));
  EXPECT_EQ(t.NextDeadline(), At(100));
  ASSERT_TRUE(t.Complete(1).has_value());
  EXPECT_EQ(t.NextDeadline(), At(200));
  ASSERT_TRUE(t.Complete(3).has_value());  // behind a live one
  EXPECT_EQ(t.NextDeadline(), At(200));
  ASSERT_TRUE(t.Complete(2).has_value());
  EXPECT_FALSE(t.NextDeadline().has_value());
  EXPECT_EQ(t.slots(), 0u);
}

TEST(InflightTableTest, BoundedByCapacity) {
  InflightTable t(3);
  EXPECT_EQ(t.capacity(), 3u);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(t.Insert(InflightAt(s, 100)));
  EXPECT_TRUE(t.full());
  EXPECT_FALSE(t.Insert(InflightAt(4, 100)));
  EXPECT_EQ(t.size(), 3u);
  ASSERT_TRUE(t.Complete(2).has_value());
  EXPECT_FALSE(t.full());
  EXPECT_TRUE(t.Insert(InflightAt(4, 100)));
  EXPECT_TRUE(t.full());
  std::vector<InflightEntry> expired;
  EXPECT_EQ(t.Expire(At(100), &expired), 3u);
  EXPECT_EQ(Seqs(expired), (std::vector<uint64_t>{1, 3, 4}));
}

TEST(InflightTableTest, RejectsDuplicateSeqAndDecreasingDeadline) {
  InflightTable t(10);
  ASSERT_TRUE(t.Insert(InflightAt(1, 200)));
  EXPECT_FALSE(t.Insert(InflightAt(1, 300)));
  EXPECT_FALSE(t.Insert(InflightAt(2, 199)));
  EXPECT_TRUE(t.Insert(InflightAt(2, 200)));  // equal deadlines are fine
  EXPECT_EQ(t.size(), 2u);
}

TEST(InflightTableTest, CompletedSlotsBehindAStuckEntryStayBounded) {
  const size_t capacity = 8;
  InflightTable t(capacity);
  ASSERT_TRUE(t.Insert(InflightAt(1, 5000)));  // never answered
  for (uint64_t s = 2; s < 100000; ++s) {
    ASSERT_TRUE(t.Insert(InflightAt(s, 5000)));
    ASSERT_TRUE(t.Complete(s).has_value());
    ASSERT_LE(t.slots(), 2 * capacity + 64 + 1);
  }
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.NextDeadline(), At(5000));
  std::vector<InflightEntry> expired;
  EXPECT_EQ(t.Expire(At(5000), &expired), 1u);
  EXPECT_EQ(Seqs(expired), (std::vector<uint64_t>{1}));
  EXPECT_EQ(t.slots(), 0u);
}

TEST(OwnedRequestIdTest, OwnsAStringIdAndRoundTrips) {
  OwnedRequestId owned;
  {
    std::string body = "request-42";
    owned = OwnedRequestId::From(protocol::RequestId::Str(body));
    body.assign("xxxxxxxxxx");
  }
  protocol::RequestId v = owned.view();
  EXPECT_EQ(v.kind, protocol::RequestId::Kind::kStr);
  EXPECT_EQ(v.str_value, "request-42");
  EXPECT_EQ(OwnedRequestId::From(protocol::RequestId::Uint(7)).view().uint_value, 7u);
  EXPECT_EQ(OwnedRequestId::From(protocol::RequestId::None()).view().kind,
            protocol::RequestId::Kind::kNone);
}

}  // namespace
}  // namespace todo::router
