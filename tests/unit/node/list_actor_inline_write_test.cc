// ListActor::CanHandleInline / HandleInline, the socket loop's fast path for
// a write: taken only when the actor is idle and the write needs nothing
// from the disk, and then the same as the write posted (same ids, same
// replies, same order with the writes posted around it) — also against
// real worker threads (a test TSan runs).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "node/list_actor.h"
#include "node/runtime/worker_pool.h"
#include "node/store/rid_filter.h"
#include "test_util.h"

namespace todo::node {
namespace {

using todo::testing::Add;
using todo::testing::Delete;
using todo::testing::Entries;
using todo::testing::MakeCall;
using todo::testing::Unpack;
using todo::testing::Update;
using todo::testing::WithRid;

class InlineWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.dir = dir_.path() + "/store";
    o.sync = false;
    o.shards = 1;
    auto s = store::Store::Open(o, &replies_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Post(ListActor& a, protocol::Request r) {
    Call c = MakeCall(r);
    ASSERT_TRUE(a.Post(c));
  }
  // Handles `r` inline as the socket loop does (declining as it would); the
  // write is submitted at once. True if it was taken.
  bool Inline(ListActor& a, protocol::Request r) {
    Call c = MakeCall(r);
    if (!a.CanHandleInline(c)) return false;
    std::vector<Reply> now;
    std::vector<store::WriteOp> writes;
    a.HandleInline(c, &now, &writes);
    EXPECT_EQ(now.size() + writes.size(), 1u) << "exactly one of them";
    replies_.PushAll(now);
    a.writer().Submit(writes);
    return true;
  }
  // The map of a reply: {"ok", "result"...}.
  static std::map<std::string, msgpack::object> Map(const Reply& r, msgpack::object_handle* oh) {
    *oh = Unpack(r);
    return oh->get().as<std::map<std::string, msgpack::object>>();
  }
  static uint64_t NewId(const Reply& r) {
    msgpack::object_handle oh;
    auto m = Map(r, &oh);
    EXPECT_TRUE(m["ok"].as<bool>());
    return m["result"].as<std::map<std::string, uint64_t>>()["id"];
  }
  void Quiet(const ListActor& a) {
    ASSERT_TRUE(todo::testing::WaitFor([&] { return a.inflight.load() == 0; }));
  }

  todo::testing::TempDir dir_;
  ReplyQueue replies_;
  runtime::ManualExecutor ex_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(InlineWriteTest, TakenOnlyWhenNothingIsReadFromDisk) {
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_);
  EXPECT_FALSE(Inline(*a, Add("l", "2026-01-01", "x", 1))) << "the counter is not known yet";
  Post(*a, Add("l", "2026-01-01", "one", 2));
  EXPECT_FALSE(Inline(*a, Add("l", "2026-01-01", "x", 3))) << "a message is queued";
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  // Counted, not loaded: an add needs only the counter, an update or a
  // delete the list.
  EXPECT_FALSE(Inline(*a, Update("l", 1, "u", 4)));
  EXPECT_FALSE(Inline(*a, Delete("l", 1, 5)));
  Call read = MakeCall(Entries("l", 6));
  EXPECT_FALSE(a->CanHandleInline(read)) << "reads have their own fast path";
  ASSERT_TRUE(Inline(*a, Add("l", "2026-01-01", "two", 7)));
  auto r = todo::testing::WaitReplies(replies_, 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(NewId(r[0]), 2u) << "the counter goes on";
  Quiet(*a);
  // Loaded (an entries through the mailbox): updates and deletes too.
  Post(*a, Entries("l", 8));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  ASSERT_TRUE(Inline(*a, Update("l", 1, "uno", 9)));
  ASSERT_TRUE(Inline(*a, Delete("l", 2, 10)));
  ASSERT_TRUE(Inline(*a, Delete("l", 2, 11)));  // answered {deleted: false}, still a write
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 3).size(), 3u);
  Quiet(*a);
  Post(*a, Entries("l", 12));
  ex_.RunAll();
  auto e = todo::testing::WaitReplies(replies_, 1);
  ASSERT_EQ(e.size(), 1u);
  msgpack::object_handle oh;
  auto m = Map(e[0], &oh);
  auto entries = m["result"].as<std::vector<std::map<std::string, msgpack::object>>>();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["id"].as<uint64_t>(), 1u);
  EXPECT_EQ(entries[0]["title"].as<std::string>(), "uno");
}

TEST_F(InlineWriteTest, ARetryNeverGoesInline) {
  auto a = std::make_shared<ListActor>("l", &ex_, 100, store_.get(), &replies_);
  Post(*a, Add("l", "2026-01-01", "zero", 1));
  ex_.RunAll();
  ASSERT_EQ(todo::testing::WaitReplies(replies_, 1).size(), 1u);
  ASSERT_TRUE(todo::testing::WaitFor([&] { return store_->rid_filter().complete(); }));
  const protocol::Request first = WithRid(Add("l", "2026-01-01", "once", 2), "rid-1");
  ASSERT_TRUE(Inline(*a, first)) << "a rid the filter has never seen";
  // The same rid again: the filter may hold it now, so the retry takes the
  // mailbox, whose worker finds the first one (in flight or on disk).
  EXPECT_FALSE(Inline(*a, first));
  Post(*a, first);
  ex_.RunAll();
  auto r = todo::testing::WaitReplies(replies_, 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(NewId(r[0]), 2u);
  EXPECT_EQ(NewId(r[1]), 2u) << "the retry gets the first reply";
}

// Real workers and a real writer: this thread plays the socket loop,
// handling what it can inline and posting the rest (adds, reads, updates),
// over a few lists. Every add must get the next id of its list, in the
// order this thread took them, whichever path each took.
TEST_F(InlineWriteTest, InlineAndPostedWritesKeepTheirOrderAgainstRealWorkers) {
  runtime::WorkerPool pool(2);
  const int kLists = 4;
  std::vector<std::shared_ptr<ListActor>> actors;
  for (int i = 0; i < kLists; ++i) {
    actors.push_back(
        std::make_shared<ListActor>("l" + std::to_string(i), &pool, 1000, store_.get(), &replies_));
  }
  // Per list, the request ids of its adds in the order they were taken.
  std::vector<std::vector<uint64_t>> adds(kLists);
  int inlined = 0, posted = 0;
  std::map<uint64_t, uint64_t> new_id;  // request id -> entry id
  std::vector<Reply> drained;
  auto take = [&] {
    replies_.Drain(&drained);
    for (Reply& r : drained) {
      msgpack::object_handle oh;
      auto m = Map(r, &oh);
      if (m["ok"].as<bool>() && m["result"].type == msgpack::type::MAP) {
        auto res = m["result"].as<std::map<std::string, msgpack::object>>();
        if (res.size() == 1 && res.count("id")) {
          new_id[m["id"].as<uint64_t>()] = res["id"].as<uint64_t>();
        }
      }
    }
    drained.clear();
  };
  auto all_quiet = [&] {
    take();
    return todo::testing::AllQuiet(actors);
  };
  uint64_t id = 1;
  for (int round = 0; round < 4000; ++round) {
    const int i = round % kLists;
    ListActor& a = *actors[i];
    const std::string list = "l" + std::to_string(i);
    protocol::Request r;
    const std::string title = "u" + std::to_string(round);  // outlives r
    if (round % 7 == 3) {
      r = Entries(list, id++);
    } else if (round % 11 == 5) {
      r = Update(list, 1, title, id++);
    } else {
      r = Add(list, "2026-01-01", "t", id++);
    }
    if (Inline(a, r)) {
      ++inlined;
    } else {
      Call c = MakeCall(r);
      ASSERT_TRUE(a.Post(c));
      ++posted;
    }
    if (r.op == protocol::Op::kAddEntry) adds[i].push_back(r.id.uint_value);
    take();
    // Now and then let every list go quiet, so that both paths are taken
    // however slow the machine (a sanitizer build, a loaded CI box).
    if (round % 50 == 0) {
      ASSERT_TRUE(todo::testing::WaitFor(all_quiet));
    }
  }
  ASSERT_TRUE(todo::testing::WaitFor(all_quiet));
  take();
  pool.Stop();
  for (int i = 0; i < kLists; ++i) {
    for (size_t k = 0; k < adds[i].size(); ++k) {
      ASSERT_TRUE(new_id.count(adds[i][k])) << "list " << i << " add " << k << " unanswered";
      EXPECT_EQ(new_id[adds[i][k]], k + 1) << "list " << i << " add " << k;
    }
  }
  EXPECT_GT(inlined, 0);
  EXPECT_GT(posted, 0);
}

}  // namespace
}  // namespace todo::node
