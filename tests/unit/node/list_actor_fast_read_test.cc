// ListActor::TryAnswerRead, the socket loop's fast path for a read: it
// answers only when a posted read would be answered at once with the same
// bytes (idle actor, list loaded and current, no write in flight), and
// never lets a read overtake a write of its list accepted before it — also
// against real worker threads (a test TSan runs).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "node/list_actor.h"
#include "node/runtime/worker_pool.h"
#include "test_util.h"

namespace todo::node {
namespace {

using todo::testing::Add;
using todo::testing::Entries;
using todo::testing::MakeCall;
using todo::testing::Unpack;

class FastReadTest : public ::testing::Test {
 protected:
  void Open(store::StoreOptions o) {
    o.dir = dir_.path() + "/store" + std::to_string(++opens_);
    auto s = store::Store::Open(o, &replies_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void SetUp() override {
    store::StoreOptions o;
    o.sync = false;
    o.shards = 1;
    Open(o);
  }
  void Post(ListActor& a, protocol::Request r) {
    Call c = MakeCall(r);
    ASSERT_TRUE(a.Post(c));
  }
  // The entries in a reply body, or -1 if it is not a successful entries reply.
  static int Count(const zmq::message_t& body) {
    auto oh = msgpack::unpack(static_cast<const char*>(body.data()), body.size());
    auto m = oh.get().as<std::map<std::string, msgpack::object>>();
    if (!m["ok"].as<bool>()) return -1;
    return static_cast<int>(m["result"].as<std::vector<msgpack::object>>().size());
  }
  // Tries the fast path for an `entries` of `list`: its entry count, or
  // nullopt if it declined.
  std::optional<int> Fast(const ListActor& a, const std::string& list, uint64_t id = 99) {
    Call c = MakeCall(Entries(list, id));
    zmq::message_t body;
    if (!a.TryAnswerRead(c, std::chrono::steady_clock::now(), &body)) return std::nullopt;
    return Count(body);
  }

  todo::testing::TempDir dir_;
  int opens_ = 0;
  ReplyQueue replies_;
  runtime::ManualExecutor ex_;
  todo::testing::FaultEnv fault_env_;  // outlives store_
  std::unique_ptr<store::Store> store_;
};

TEST_F(FastReadTest, AnswersOnlyAnIdleLoadedActorWithNothingInFlight) {
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_);
  EXPECT_FALSE(Fast(*a, "l")) << "nothing loaded yet";
  Post(*a, Entries("l", 1));
  EXPECT_FALSE(Fast(*a, "l")) << "a message is queued";
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  EXPECT_EQ(Fast(*a, "l"), 0) << "loaded, idle, quiet";

  Post(*a, Add("l", "2026-01-01", "one", 2));
  EXPECT_FALSE(Fast(*a, "l")) << "a write is queued: the read must wait behind it";
  ex_.RunAll();
  // The write is with the writer until durable: declined until then, and
  // once it is, the read shows it.
  std::optional<int> seen = Fast(*a, "l");
  if (seen) {
    EXPECT_EQ(*seen, 1);
  }
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  EXPECT_EQ(Fast(*a, "l"), 1);

  // Only reads take it.
  Call add = MakeCall(Add("l", "2026-01-01", "two", 3));
  zmq::message_t body;
  EXPECT_FALSE(a->TryAnswerRead(add, std::chrono::steady_clock::now(), &body));
}

TEST_F(FastReadTest, TheSameBytesAsAPostedRead) {
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_);
  Post(*a, Add("l", "2026-01-01", "a", 1));
  Post(*a, Add("l", "2026-01-02", "b", 2));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 2).size(), 2u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  // Adds alone don't load the list (the actor keeps only its counter).
  EXPECT_FALSE(Fast(*a, "l"));
  Post(*a, Entries("l", 3));
  Post(*a, Add("l", "2026-01-01", "c", 4));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 2).size(), 2u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  for (bool dated : {false, true}) {
    protocol::Request r = Entries("l", 7);
    if (dated) r.date = ParseDate("2026-01-01");
    Call fast = MakeCall(r);
    zmq::message_t body;
    ASSERT_TRUE(a->TryAnswerRead(fast, std::chrono::steady_clock::now(), &body));
    Post(*a, r);
    ex_.RunAll();
    auto posted = todo::testing::WaitReplies(replies_, 1);
    ASSERT_EQ(posted.size(), 1u);
    EXPECT_EQ(
        std::string_view(static_cast<const char*>(body.data()), body.size()),
        std::string_view(static_cast<const char*>(posted[0].body.data()), posted[0].body.size()));
  }
}

TEST_F(FastReadTest, DeclinedAfterAFailedWriteUntilTheActorReloads) {
  store_.reset();
  store::StoreOptions o;
  o.sync = true;
  o.shards = 1;
  o.env = &fault_env_;
  Open(o);
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_);
  Post(*a, Add("l", "2026-01-01", "durable", 1));
  Post(*a, Entries("l", 2));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 2).size(), 2u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  EXPECT_EQ(Fast(*a, "l"), 1);
  fault_env_.fail = true;
  Post(*a, Add("l", "2026-01-01", "lost", 3));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return a->inflight.load() == 0; }));
  // The list in memory holds "lost", which the disk does not: never shown.
  EXPECT_FALSE(Fast(*a, "l"));
  fault_env_.fail = false;
  ASSERT_TRUE(
      todo::testing::WaitFor([&] { return store_->writer(0).stats().reopens.load() >= 1; }));
  EXPECT_FALSE(Fast(*a, "l")) << "the shard was reopened: the actor reloads first";
  Post(*a, Entries("l", 4));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  EXPECT_EQ(Fast(*a, "l"), 1);
}

// Real workers and a real writer: this thread plays the socket loop,
// posting adds and trying fast reads between them. A fast read must show
// every add posted before it (it answers only when all are applied and
// durable), never fewer, never more.
TEST_F(FastReadTest, NeverOvertakesAWriteAgainstRealWorkers) {
  runtime::WorkerPool pool(2);
  std::vector<std::shared_ptr<ListActor>> actors;
  std::vector<int> posted;
  const int kLists = 4;
  for (int i = 0; i < kLists; ++i) {
    actors.push_back(
        std::make_shared<ListActor>("l" + std::to_string(i), &pool, 1000, store_.get(), &replies_));
    posted.push_back(0);
  }
  int fast = 0, declined = 0;
  std::vector<Reply> drained;
  auto all_quiet = [&] { return todo::testing::AllQuiet(actors); };
  uint64_t id = 1;
  for (int round = 0; round < 4000; ++round) {
    const int i = round % kLists;
    ListActor& a = *actors[i];
    const std::string list = "l" + std::to_string(i);
    if (round % 3 == 0) {
      Call c = MakeCall(Add(list, "2026-01-01", "t", id++));
      if (a.Post(c)) ++posted[i];
    } else if (std::optional<int> n = Fast(a, list, id++)) {
      ASSERT_EQ(*n, posted[i]) << "round " << round;
      ++fast;
    } else {
      ++declined;
      Call c = MakeCall(Entries(list, id++));
      ASSERT_TRUE(a.Post(c));  // as the socket loop does
    }
    replies_.Drain(&drained);  // keep the queue short
    // Now and then let every write complete, so that fast reads are sure to
    // be tried on quiet lists however slow the machine (a sanitizer build,
    // a loaded CI box): the count of fast reads must not depend on timing.
    if (round % 50 == 0) {
      ASSERT_TRUE(todo::testing::WaitFor(all_quiet));
    }
  }
  ASSERT_TRUE(todo::testing::WaitFor(all_quiet));
  for (int i = 0; i < kLists; ++i) EXPECT_EQ(Fast(*actors[i], "l" + std::to_string(i)), posted[i]);
  pool.Stop();
  EXPECT_GT(fast, 0);
  EXPECT_GT(declined, 0);
}

}  // namespace
}  // namespace todo::node
