// A damaged data dir never answers wrong and never gives an id out twice
// without a word: the store refuses to open it (naming the path), or answers
// `internal` for the damaged list, naming the shard and the file. Each case
// damages real LevelDB files on a temp dir, as a disk or an operator would.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/storage_format.h"
#include "node/store/store.h"
#include "node/store/table_check.h"
#include "test_util.h"

namespace todo::store {
namespace {

namespace fs = std::filesystem;
using todo::testing::TempDir;

// One shard by default, every write synced.
StoreOptions SyncedOpts(const std::string& dir, uint32_t shards = 1) {
  StoreOptions o;
  o.dir = dir;
  o.shards = shards;
  o.sync = true;
  return o;
}

std::string Title(uint64_t id) { return "title-" + std::to_string(id) + "-of-the-list"; }

// Adds entries first..last to `list` in one group commit, as list actors do.
void AddEntries(Store& store, node::ReplyQueue& q, std::string_view list, uint64_t first,
                uint64_t last) {
  auto owner = std::make_shared<WriteOwner>();
  auto& w = store.writer(store.ShardFor(list));
  std::vector<WriteOp> ops;
  for (uint64_t id = first; id <= last; ++id) {
    ASSERT_TRUE(w.TryReserve());
    WriteOp op;
    op.owner = owner;
    op.batch.Put(storage::EntryKey(list, id),
                 storage::EncodeEntryValue(*ParseDate("2026-01-01"), Title(id)));
    op.reply.body = zmq::message_t("ok", 2);
    ops.push_back(std::move(op));
  }
  owner->inflight = static_cast<uint32_t>(ops.size());
  w.Submit(ops);
  ASSERT_EQ(todo::testing::WaitReplies(q, last - first + 1).size(), last - first + 1);
}

std::vector<std::string> FilesEndingWith(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().string().ends_with(suffix)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class StoreIntegrityTest : public ::testing::Test {
 protected:
  StatusOr<std::unique_ptr<Store>> Open(uint32_t shards = 1) {
    return Store::Open(SyncedOpts(dir_.path(), shards), &q_);
  }
  // A store with `list` holding entries 1..n (and "other" 1..3), closed.
  void Populate(uint32_t shards = 1, uint64_t n = 200) {
    auto s = Open(shards);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    AddEntries(**s, q_, "list", 1, n);
    AddEntries(**s, q_, "other", 1, 3);
  }
  // The same, then opened and closed again: LevelDB's recovery writes the
  // log's entries into a table (shard-000/*.ldb) and starts an empty log.
  void PopulateIntoTable(uint64_t n = 200) {
    Populate(1, n);
    auto s = Open();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  std::string Shard(uint32_t i = 0) const {
    char buf[32];
    snprintf(buf, sizeof buf, "/shard-%03u", i);
    return dir_.path() + buf;
  }
  std::string Table() const {
    auto tables = FilesEndingWith(Shard(), ".ldb");
    EXPECT_EQ(tables.size(), 1u);
    return tables.empty() ? "" : tables[0];
  }
  void ExpectRefused(const std::string& needle, uint32_t shards = 1) {
    auto s = Open(shards);
    ASSERT_FALSE(s.ok()) << "opened a damaged data dir";
    EXPECT_EQ(s.status().code(), ErrorCode::kInternal);
    EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status().message();
  }

  TempDir dir_;
  node::ReplyQueue q_;
};

// --- Tables: checksums on every read ---

TEST_F(StoreIntegrityTest, FlippedByteInATableAnswersInternalNamingShardAndFile) {
  PopulateIntoTable();
  const std::string table = Table();
  std::string bytes = Slurp(table);
  // A byte of entry 100's title: inside a data block of "list".
  const size_t at = bytes.find(Title(100));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] ^= 0x01;
  Spit(table, bytes);

  auto s = Open();
  ASSERT_TRUE(s.ok()) << s.status().ToString();  // tables are checked when read
  Store& store = **s;
  auto list = store.Load("list");
  ASSERT_FALSE(list.ok()) << "served a damaged list: " << list->size() << " entries";
  EXPECT_EQ(list.status().code(), ErrorCode::kInternal);
  const std::string& m = list.status().message();
  EXPECT_NE(m.find("corruption in shard 0 (" + Shard() + ")"), std::string::npos) << m;
  EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
  // The damaged file is found in the background and named from then on.
  std::string named;
  for (int i = 0; i < 1000 && named.find(table) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto again = store.Load("list");
    ASSERT_FALSE(again.ok());
    named = again.status().message();
  }
  EXPECT_NE(named.find("damaged table(s): " + table), std::string::npos) << named;
  // Nothing about the list is served wrong: its next id is read from its
  // last key, which is intact, so an add would still take 201.
  auto next = store.LoadNextId("list");
  if (next.ok()) {
    EXPECT_EQ(*next, 201u);
  }
}

TEST_F(StoreIntegrityTest, EditedTitleInATableIsRefusedNotServed) {
  PopulateIntoTable();
  const std::string table = Table();
  std::string bytes = Slurp(table);
  const size_t at = bytes.find(Title(7));
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 5, "TITLE");  // same length: only the checksum can tell
  Spit(table, bytes);
  auto s = Open();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto list = (*s)->Load("list");
  ASSERT_FALSE(list.ok()) << "served an edited title";
  EXPECT_NE(list.status().message().find("checksum mismatch"), std::string::npos)
      << list.status().message();
}

TEST_F(StoreIntegrityTest, TableCheckNamesEveryDamagedTableAndPassesGoodOnes) {
  PopulateIntoTable();
  const std::string table = Table();
  EXPECT_TRUE(TableCheck::CheckDir(leveldb::Env::Default(), Shard()).empty());
  std::string bytes = Slurp(table);
  Spit(table, bytes.substr(0, bytes.size() / 2));  // truncated
  auto damaged = TableCheck::CheckDir(leveldb::Env::Default(), Shard());
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].first, table);
  EXPECT_NE(damaged[0].second.find("Corruption"), std::string::npos) << damaged[0].second;
}

TEST_F(StoreIntegrityTest, TruncatedTableAnswersInternal) {
  PopulateIntoTable();
  const std::string table = Table();
  std::string bytes = Slurp(table);
  Spit(table, bytes.substr(0, bytes.size() - 100));  // the footer is gone
  auto s = Open();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (const char* list : {"list", "other"}) {
    auto l = (*s)->Load(list);
    ASSERT_FALSE(l.ok()) << list;
    EXPECT_NE(l.status().message().find("shard 0"), std::string::npos) << l.status().message();
    auto next = (*s)->LoadNextId(list);
    EXPECT_FALSE(next.ok()) << list << " next id " << *next;
  }
}

TEST_F(StoreIntegrityTest, MissingTableIsRefusedAtOpen) {
  PopulateIntoTable();
  const std::string table = Table();
  ASSERT_TRUE(fs::remove(table));
  ExpectRefused(table.substr(table.rfind('/') + 1));
}

// --- Missing files, edited MANIFEST ---

TEST_F(StoreIntegrityTest, MissingCurrentIsRefusedAndNothingIsDeleted) {
  PopulateIntoTable();
  const std::string table = Table();
  ASSERT_TRUE(fs::remove(Shard() + "/CURRENT"));
  ExpectRefused("shard dir " + Shard() + " has no CURRENT file");
  EXPECT_TRUE(fs::exists(table)) << "LevelDB deleted the tables it no longer knew";
  EXPECT_FALSE(fs::exists(Shard() + "/CURRENT"));  // nothing created either
}

TEST_F(StoreIntegrityTest, MissingShardDirIsRefusedNotRecreated) {
  Populate(2);
  fs::remove_all(Shard(1));
  ExpectRefused("shard dir " + Shard(1) + " is missing", 2);
  EXPECT_FALSE(fs::exists(Shard(1)));
}

TEST_F(StoreIntegrityTest, EditedShardCountIsRefused) {
  Populate(1);
  const std::string manifest = dir_.path() + "/MANIFEST";
  // 1 -> 2: shard-001 would be created empty and lists would move.
  Spit(manifest, "todo-node data directory\nformat 1\nshards 2\n");
  ExpectRefused("shard dir " + Shard(1) + " is missing", 0);
  EXPECT_FALSE(fs::exists(Shard(1)));
  // "shards 1" then "shards 3": no last-one-wins.
  Spit(manifest, "todo-node data directory\nformat 1\nshards 1\nshards 3\n");
  ExpectRefused("'shards' given twice", 0);
  Spit(manifest, "todo-node data directory\nformat 1\nshards 1\nreplicas 3\n");
  ExpectRefused("unknown key 'replicas'", 0);
  Spit(manifest, "todo-node data directory\nformat 1\nshards 1\n");
  auto s = Open(0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Load("list")->size(), 200u);
}

TEST_F(StoreIntegrityTest, ShardDirTheManifestDoesNotNameIsRefused) {
  Populate(2);
  Spit(dir_.path() + "/MANIFEST", "todo-node data directory\nformat 1\nshards 1\n");
  ExpectRefused("has " + Shard(1) + ", which its MANIFEST (1 shards) does not name", 0);
}

TEST_F(StoreIntegrityTest, NewDirWritesItsManifestLastAndRefusesShardsWithoutOne) {
  { ASSERT_TRUE(Open(3).ok()); }
  for (uint32_t i = 0; i < 3; ++i) EXPECT_TRUE(fs::exists(Shard(i) + "/CURRENT")) << i;
  // A first start interrupted before its MANIFEST: refused, never guessed.
  fs::remove(dir_.path() + "/MANIFEST");
  ExpectRefused("no MANIFEST", 0);
}

// --- The log: corruption refused, a torn unacknowledged tail dropped, a
//     truncation that lost acknowledged writes refused ---

TEST_F(StoreIntegrityTest, EveryGroupCommitCountsAndAStopRecordsTheLast) {
  {
    auto s = Open();
    ASSERT_TRUE(s.ok());
    for (uint64_t id = 1; id <= 5; ++id) AddEntries(**s, q_, "l", id, id);
  }
  EXPECT_EQ(Slurp(Shard() + "/" + storage::kCommittedFile), "todo-node committed 5\n");
  auto s = Open();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  AddEntries(**s, q_, "l", 6, 6);
  s->reset();
  EXPECT_EQ(Slurp(Shard() + "/" + storage::kCommittedFile), "todo-node committed 6\n");
}

TEST_F(StoreIntegrityTest, TruncatedLogThatLostAcknowledgedWritesIsRefused) {
  {
    auto s = Open();
    ASSERT_TRUE(s.ok());
    for (uint64_t id = 1; id <= 50; ++id) AddEntries(**s, q_, "l", id, id);
  }
  // The 50 commits are in the log only (a close doesn't flush it).
  auto logs = FilesEndingWith(Shard(), ".log");
  ASSERT_EQ(logs.size(), 1u);
  const std::string bytes = Slurp(logs[0]);
  // Half of what was written: the log is a pre-zeroed file (log_env.h),
  // its records first.
  const size_t written = bytes.find_last_not_of('\0') + 1;
  ASSERT_GT(written, 0u);
  Spit(logs[0], bytes.substr(0, written / 2));
  ExpectRefused("lost acknowledged writes");
  // Sticky: LevelDB has already replayed what was left, but the COMMITTED
  // file still says what was acknowledged, so every later open refuses too.
  auto again = Open();
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("#50 was acknowledged"), std::string::npos)
      << again.status().message();
  // An operator who accepts the loss deletes the COMMITTED file.
  fs::remove(Shard() + "/" + storage::kCommittedFile);
  auto accepted = Open();
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  auto l = (*accepted)->Load("l");
  ASSERT_TRUE(l.ok());
  EXPECT_LT(l->size(), 50u);
}

TEST_F(StoreIntegrityTest, DeletedLogThatHeldAcknowledgedWritesIsRefused) {
  Populate();
  for (const std::string& log : FilesEndingWith(Shard(), ".log")) fs::remove(log);
  ExpectRefused("lost acknowledged writes");
}

TEST_F(StoreIntegrityTest, TornTailOfAnUnacknowledgedWriteIsDropped) {
  Populate();
  auto logs = FilesEndingWith(Shard(), ".log");
  ASSERT_EQ(logs.size(), 1u);
  // What a crash in the middle of appending a record leaves: a header that
  // announces 1000 bytes, and 10 of them.
  std::string torn("\x12\x34\x56\x78\xe8\x03\x01", 7);
  torn += std::string(10, 'x');
  std::ofstream(logs[0], std::ios::binary | std::ios::app) << torn;
  auto s = Open();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto l = (*s)->Load("list");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->size(), 200u);
  EXPECT_EQ(l->next_id(), 201u);
}

TEST_F(StoreIntegrityTest, CorruptionInTheMiddleOfTheLogIsRefused) {
  {
    auto s = Open();
    ASSERT_TRUE(s.ok());
    for (uint64_t id = 1; id <= 20; ++id) AddEntries(**s, q_, "l", id, id);
  }
  auto logs = FilesEndingWith(Shard(), ".log");
  ASSERT_EQ(logs.size(), 1u);
  std::string bytes = Slurp(logs[0]);
  const size_t at = bytes.find(Title(3));
  ASSERT_NE(at, std::string::npos);
  bytes[at] ^= 0x20;
  Spit(logs[0], bytes);
  const std::string name = logs[0].substr(logs[0].rfind('/') + 1);
  auto s = Open();
  ASSERT_FALSE(s.ok()) << "a log record with a bad checksum was dropped silently";
  const std::string& m = s.status().message();
  EXPECT_NE(m.find("cannot open shard 0 (" + Shard() + ")"), std::string::npos) << m;
  EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
  EXPECT_NE(m.find(name + ": dropping"), std::string::npos) << m;  // the file, from LevelDB's LOG
}

}  // namespace
}  // namespace todo::store
