// The pure parts of the Redis backend: endpoint parsing, the stored value,
// and how replies (parsed from RESP text by hiredis's own reader) become
// outcomes and entries. The wire side is tested against a real redis-server
// by bench_redis_test.py.
#include "tests/bench/redis_connection.h"

#include <gtest/gtest.h>

#include <string>

namespace todo::bench {
namespace {

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

// Parses one reply from RESP text, as hiredis would off the socket.
ReplyPtr Parse(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  EXPECT_EQ(redisReaderFeed(reader, resp.data(), resp.size()), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &reply), REDIS_OK);
  redisReaderFree(reader);
  EXPECT_NE(reply, nullptr) << resp;
  return ReplyPtr(static_cast<redisReply*>(reply), freeReplyObject);
}

// Built by append: GCC 12 warns (-Wrestrict, falsely) on "literal" + string.
std::string Bulk(std::string_view s) {
  std::string out = "$";
  out.append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
  return out;
}

// An HGETALL reply holding `pairs` (field, value) in that order.
std::string HashReply(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out = "*";
  out.append(std::to_string(2 * pairs.size())).append("\r\n");
  for (const auto& [f, v] : pairs) out.append(Bulk(f)).append(Bulk(v));
  return out;
}

Date D(int y, int m, int d) { return *MakeDate(y, m, d); }

TEST(ParseRedisEndpointTest, TakesTcpHostPort) {
  auto e = ParseRedisEndpoint("tcp://127.0.0.1:6379");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 6379);
  auto named = ParseRedisEndpoint("tcp://localhost:1");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->host, "localhost");
  for (std::string_view bad :
       {"127.0.0.1:6379", "ipc:///tmp/x", "tcp://:6379", "tcp://h", "tcp://h:", "tcp://h:0",
        "tcp://h:65536", "tcp://h:12x", "tcp://h:*"}) {
    EXPECT_FALSE(ParseRedisEndpoint(bad).ok()) << bad;
  }
}

TEST(EncodeRedisEntryTest, DateTabTitle) {
  EXPECT_EQ(EncodeRedisEntry(D(2026, 1, 2), "buy milk"), "2026-01-02\tbuy milk");
  EXPECT_EQ(EncodeRedisEntry(D(999, 12, 31), "a\tb"), "0999-12-31\ta\tb");
}

TEST(DecodeRedisEntriesTest, AllEntriesAscendingById) {
  ReplyPtr r = Parse(HashReply(
      {{"10", "2026-01-02\tten"}, {"2", "2026-01-01\ttwo"}, {"3", "2026-01-02\tthree\twith tab"}}));
  std::vector<RedisEntry> got;
  ASSERT_TRUE(DecodeRedisEntries(*r, std::nullopt, &got));
  std::vector<RedisEntry> want = {
      {2, D(2026, 1, 1), "two"}, {3, D(2026, 1, 2), "three\twith tab"}, {10, D(2026, 1, 2), "ten"}};
  EXPECT_EQ(got, want);
}

TEST(DecodeRedisEntriesTest, FiltersByDate) {
  ReplyPtr r = Parse(HashReply({{"10", "2026-01-02\tten"},
                                {"2", "2026-01-01\ttwo"},
                                {"3", "2026-01-02\tthree"},
                                {"4", "2026-02-01\tfour"}}));
  std::vector<RedisEntry> got = {{99, D(2000, 1, 1), "stale"}};
  ASSERT_TRUE(DecodeRedisEntries(*r, D(2026, 1, 2), &got));
  std::vector<RedisEntry> want = {{3, D(2026, 1, 2), "three"}, {10, D(2026, 1, 2), "ten"}};
  EXPECT_EQ(got, want);
  ASSERT_TRUE(DecodeRedisEntries(*r, D(2026, 1, 3), &got));
  EXPECT_TRUE(got.empty());
}

TEST(DecodeRedisEntriesTest, EmptyHashIsAnEmptyList) {
  ReplyPtr r = Parse("*0\r\n");
  std::vector<RedisEntry> got;
  EXPECT_TRUE(DecodeRedisEntries(*r, std::nullopt, &got));
  EXPECT_TRUE(got.empty());
}

TEST(DecodeRedisEntriesTest, RefusesMalformedReplies) {
  std::vector<RedisEntry> got;
  for (const std::string& bad :
       {std::string(":1\r\n"), std::string("*1\r\n") + Bulk("1"),
        HashReply({{"x", "2026-01-01\tt"}}), HashReply({{"", "2026-01-01\tt"}}),
        HashReply({{"1", "2026-01-01 t"}}), HashReply({{"1", "2026-02-30\tt"}}),
        HashReply({{"1", "short"}}), std::string("*2\r\n") + Bulk("1") + ":5\r\n"}) {
    ReplyPtr r = Parse(bad);
    EXPECT_FALSE(DecodeRedisEntries(*r, std::nullopt, &got)) << bad;
  }
}

TEST(RedisOutcomeTest, MapsRepliesPerOp) {
  std::vector<RedisEntry> scratch;
  auto outcome = [&](BenchOp op, const std::string& resp) {
    return RedisOutcome(op, std::nullopt, *Parse(resp), &scratch);
  };
  EXPECT_EQ(outcome(BenchOp::kAdd, ":7\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kAdd, ":0\r\n"), Outcome::kBadReply);
  EXPECT_EQ(outcome(BenchOp::kAdd, "+OK\r\n"), Outcome::kBadReply);
  EXPECT_EQ(outcome(BenchOp::kUpdate, ":1\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kUpdate, ":0\r\n"), Outcome::kNotFound);
  EXPECT_EQ(outcome(BenchOp::kDelete, ":0\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kDelete, ":1\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kDelete, ":2\r\n"), Outcome::kBadReply);
  EXPECT_EQ(outcome(BenchOp::kEntriesAll, "*0\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kEntries, "$-1\r\n"), Outcome::kBadReply);
  EXPECT_EQ(outcome(BenchOp::kPing, "+PONG\r\n"), Outcome::kOk);
  EXPECT_EQ(outcome(BenchOp::kAdd, "-ERR something\r\n"), Outcome::kInternal);
  EXPECT_EQ(outcome(BenchOp::kAdd, "-NOSCRIPT No matching script\r\n"), Outcome::kInternal);
  EXPECT_EQ(outcome(BenchOp::kAdd, "-OOM command not allowed\r\n"), Outcome::kOverloaded);
  EXPECT_EQ(outcome(BenchOp::kAdd, "-LOADING Redis is loading\r\n"), Outcome::kUnavailable);
  EXPECT_EQ(outcome(BenchOp::kAdd, "-BUSY Redis is busy\r\n"), Outcome::kUnavailable);
}

}  // namespace
}  // namespace todo::bench
