#include "node/store/store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/storage_format.h"
#include "test_util.h"

namespace todo::store {
namespace {

using todo::testing::TempDir;

StoreOptions Opts(const std::string& dir, uint32_t shards = 4) {
  StoreOptions o;
  o.dir = dir;
  o.shards = shards;
  o.sync = false;
  return o;
}

// Writes an entry through the shard writer, as a list actor would.
void WriteEntry(Store& store, node::ReplyQueue& q, std::string_view list, uint64_t id,
                std::string_view date, std::string_view title) {
  auto owner = std::make_shared<WriteOwner>();
  auto& w = store.writer(store.ShardFor(list));
  ASSERT_TRUE(w.TryReserve());
  owner->inflight = 1;
  std::vector<WriteOp> ops(1);
  ops[0].owner = owner;
  ops[0].batch.Put(storage::EntryKey(list, id), storage::EncodeEntryValue(*ParseDate(date), title));
  ops[0].batch.Put(storage::MetaKey(list), storage::EncodeMetaValue(id + 1));
  ops[0].reply.body = zmq::message_t("ok", 2);
  w.Submit(ops);
  auto replies = todo::testing::WaitReplies(q, 1);
  ASSERT_EQ(replies.size(), 1u);
  // The reply is queued before the count in flight drops: wait, bounded.
  EXPECT_TRUE(todo::testing::WaitFor([&] { return owner->inflight.load() == 0; }));
}

TEST(StoreTest, NewDirGetsManifestAndEmptyLists) {
  TempDir dir;
  node::ReplyQueue q;
  auto s = Store::Open(Opts(dir.path()), &q);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto list = (*s)->Load("never-written");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(list->next_id(), 1u);
  std::ifstream m(dir.path() + "/MANIFEST");
  std::string text((std::istreambuf_iterator<char>(m)), {});
  auto parsed = storage::ParseManifest(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->shards, 4u);
}

TEST(StoreTest, OneGroupKeepsEachKeysOrderWhateverTheKeyOrder) {
  // The writer sorts a group's mutations by key before LevelDB inserts
  // them; writes of one key must still land in the order they were queued.
  TempDir dir;
  node::ReplyQueue q;
  auto s = Store::Open(Opts(dir.path(), 1), &q);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Store& store = **s;
  auto owner = std::make_shared<WriteOwner>();
  auto& w = store.writer(0);
  std::vector<WriteOp> ops;
  const Date d = *ParseDate("2026-01-01");
  // z, a, z again, then m, then z deleted and rewritten, then a deleted.
  const std::vector<std::pair<std::string, std::string>> seq = {
      {"z", "first"}, {"a", "x"}, {"z", "second"}, {"m", "y"}, {"z", ""}, {"z", "last"}, {"a", ""}};
  for (const auto& [list, title] : seq) {
    ASSERT_TRUE(w.TryReserve());
    WriteOp op;
    op.owner = owner;
    if (title.empty()) {
      op.batch.Delete(storage::EntryKey(list, 1));
    } else {
      op.batch.Put(storage::EntryKey(list, 1), storage::EncodeEntryValue(d, title));
    }
    op.reply.body = zmq::message_t("ok", 2);
    ops.push_back(std::move(op));
  }
  owner->inflight = static_cast<uint32_t>(ops.size());
  w.Submit(ops);  // one Submit: queued together, so normally one group
  ASSERT_EQ(todo::testing::WaitReplies(q, seq.size()).size(), seq.size());
  auto z = store.Load("z");
  ASSERT_TRUE(z.ok());
  ASSERT_EQ(z->size(), 1u);
  EXPECT_EQ(z->Find(1)->title, "last");
  EXPECT_TRUE(store.Load("a")->empty());
  EXPECT_EQ(store.Load("m")->Find(1)->title, "y");
}

TEST(StoreTest, SecondOpenOfTheSameDirIsRefused) {
  TempDir dir;
  node::ReplyQueue q;
  auto first = Store::Open(Opts(dir.path()), &q);
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(Opts(dir.path()), &q);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("locked"), std::string::npos)
      << second.status().message();
  first->reset();
  auto third = Store::Open(Opts(dir.path()), &q);  // lock released on close
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(StoreTest, ShardCountMismatchIsRefused) {
  TempDir dir;
  node::ReplyQueue q;
  { ASSERT_TRUE(Store::Open(Opts(dir.path(), 4), &q).ok()); }
  auto s = Store::Open(Opts(dir.path(), 8), &q);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("4 shards"), std::string::npos) << s.status().message();
}

TEST(StoreTest, CorruptManifestIsRefused) {
  TempDir dir;
  node::ReplyQueue q;
  { ASSERT_TRUE(Store::Open(Opts(dir.path()), &q).ok()); }
  std::ofstream(dir.path() + "/MANIFEST") << "garbage\n";
  auto s = Store::Open(Opts(dir.path()), &q);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("MANIFEST"), std::string::npos) << s.status().message();
}

TEST(StoreTest, WritesSurviveReopenAndListsDoNotMix) {
  TempDir dir;
  node::ReplyQueue q;
  {
    auto s = Store::Open(Opts(dir.path()), &q);
    ASSERT_TRUE(s.ok());
    WriteEntry(**s, q, "a", 1, "2026-01-01", "one");
    WriteEntry(**s, q, "a", 2, "2026-01-02", "two");
    WriteEntry(**s, q, std::string("a\0b", 3), 1, "2026-01-03", "other list");
    WriteEntry(**s, q, "ab", 1, "2026-01-03", "prefix list");
  }
  auto s = Store::Open(Opts(dir.path()), &q);
  ASSERT_TRUE(s.ok());
  auto a = (*s)->Load("a");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ(a->Find(2)->title, "two");
  EXPECT_EQ(a->next_id(), 3u);
  auto ab = (*s)->Load("ab");
  ASSERT_TRUE(ab.ok());
  ASSERT_EQ(ab->size(), 1u);
  EXPECT_EQ(ab->Find(1)->title, "prefix list");
}

TEST(StoreTest, FailedBatchAcknowledgesNothingAndInvalidatesTheOwner) {
  TempDir dir;
  node::ReplyQueue q;
  todo::testing::FaultEnv env;
  StoreOptions o = Opts(dir.path(), 1);
  o.sync = true;
  o.env = &env;
  auto s = Store::Open(o, &q);
  ASSERT_TRUE(s.ok());
  auto& w = (*s)->writer(0);
  auto owner = std::make_shared<WriteOwner>();
  env.fail = true;
  ASSERT_TRUE(w.TryReserve());
  owner->inflight = 1;
  std::vector<WriteOp> ops(1);
  ops[0].owner = owner;
  ops[0].batch.Put(storage::EntryKey("l", 1),
                   storage::EncodeEntryValue(*ParseDate("2026-01-01"), "x"));
  ops[0].reply.body = zmq::message_t("ok", 2);
  w.Submit(ops);
  auto replies = todo::testing::WaitReplies(q, 1);
  ASSERT_EQ(replies.size(), 1u);
  auto oh = todo::testing::Unpack(replies[0]);
  auto text = replies[0].body.to_string();
  EXPECT_NE(text.find("internal"), std::string::npos);
  EXPECT_EQ(owner->valid_epoch.load(), 1u);  // the owner must reload
  EXPECT_EQ(w.stats().failed_batches.load(), 1u);
}

}  // namespace
}  // namespace todo::store
