#include "node/store/log_env.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace todo::store {
namespace {

namespace fs = std::filesystem;
using todo::testing::TempDir;

constexpr size_t kPrealloc = 1 << 20;

// Under the working dir (the build tree, on disk): /tmp may be a tmpfs,
// where LogEnv rightly leaves logs as LevelDB's own.
std::string OnDisk() { return fs::current_path().string(); }

std::string LogKey(int i) {
  std::string k = "key-";
  k += std::to_string(i);
  return k;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::string> Logs(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log") out.push_back(e.path().string());
  }
  return out;
}

// A shard as the node opens it: paranoid, over `env`.
leveldb::Status OpenDb(leveldb::Env* env, const std::string& dir,
                       std::unique_ptr<leveldb::DB>* db) {
  leveldb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.env = env;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir, &raw);
  db->reset(raw);
  return s;
}

void Put(leveldb::DB& db, int i, size_t value_bytes = 100) {
  leveldb::WriteOptions wo;
  wo.sync = true;
  ASSERT_TRUE(
      db.Put(wo, LogKey(i), std::string(value_bytes, static_cast<char>('a' + i % 26))).ok());
}

// Opens a shard in `dir` over `env` and puts keys 0..n-1, synced, then
// closes it.
void Fill(leveldb::Env* env, const std::string& dir, int n) {
  std::unique_ptr<leveldb::DB> db;
  leveldb::Status s = OpenDb(env, dir, &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < n; ++i) Put(*db, i);
}

bool Has(leveldb::DB& db, int i) {
  std::string v;
  return db.Get(leveldb::ReadOptions(), LogKey(i), &v).ok();
}

TEST(LogEnvTest, Crc32cIsCastagnolis) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);  // LevelDB's own test vector
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(LogEnvTest, LogsArePreZeroedAndReadBackWhole) {
  TempDir dir(OnDisk());
  ASSERT_FALSE(dir.path().empty());
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  ASSERT_NO_FATAL_FAILURE(Fill(&env, dir.path(), 200));
  auto logs = Logs(dir.path());
  ASSERT_EQ(logs.size(), 1u);
  const std::string bytes = ReadAll(logs[0]);
  EXPECT_EQ(bytes.size(), kPrealloc);  // written over its zeros, not appended
  const size_t end = LogicalLogEnd(bytes);
  EXPECT_GT(end, 200u * 100u);
  EXPECT_LT(end, bytes.size());
  EXPECT_EQ(bytes.find_first_not_of('\0', end), std::string::npos);
  // Reopened (the log replayed): every record is there.
  std::unique_ptr<leveldb::DB> db;
  leveldb::Status s = OpenDb(&env, dir.path(), &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(Has(*db, i)) << i;
}

TEST(LogEnvTest, ARecordTornByACrashIsDroppedAndTheShardOpens) {
  TempDir dir(OnDisk());
  ASSERT_FALSE(dir.path().empty());
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  size_t before = 0;
  {
    std::unique_ptr<leveldb::DB> db;
    ASSERT_TRUE(OpenDb(&env, dir.path(), &db).ok());
    for (int i = 0; i < 50; ++i) Put(*db, i);
    before = LogicalLogEnd(ReadAll(Logs(dir.path())[0]));
    Put(*db, 50, 20000);  // one record of ~20 KB
  }
  const std::string log = Logs(dir.path())[0];
  std::string bytes = ReadAll(log);
  const size_t after = LogicalLogEnd(bytes);
  ASSERT_GT(after, before + 20000);
  // What a crash in the middle of writing the last record leaves: its
  // header and its first 5,000 bytes, then the file's zeros.
  for (size_t i = before + 7 + 5000; i < after; ++i) bytes[i] = '\0';
  WriteAll(log, bytes);
  EXPECT_EQ(LogicalLogEnd(bytes), before);
  // LevelDB's own reader over the same bytes takes it for corruption.
  TempDir copy;
  fs::copy(dir.path(), copy.path(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::unique_ptr<leveldb::DB> plain;
  EXPECT_FALSE(OpenDb(leveldb::Env::Default(), copy.path(), &plain).ok());
  // Through LogEnv the torn record is dropped, as a short file's would be.
  std::unique_ptr<leveldb::DB> db;
  leveldb::Status s = OpenDb(&env, dir.path(), &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(Has(*db, i)) << i;
  EXPECT_FALSE(Has(*db, 50));
}

TEST(LogEnvTest, CorruptionWithRecordsAfterItIsStillRefused) {
  TempDir dir(OnDisk());
  ASSERT_FALSE(dir.path().empty());
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  ASSERT_NO_FATAL_FAILURE(Fill(&env, dir.path(), 50));
  const std::string log = Logs(dir.path())[0];
  std::string bytes = ReadAll(log);
  const size_t at = bytes.find(std::string(100, 'a' + 3));  // key-3's value
  ASSERT_NE(at, std::string::npos);
  bytes[at + 50] ^= 0x20;
  WriteAll(log, bytes);
  EXPECT_EQ(LogicalLogEnd(bytes), bytes.size());  // not cut: LevelDB sees it
  std::unique_ptr<leveldb::DB> db;
  leveldb::Status s = OpenDb(&env, dir.path(), &db);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("checksum mismatch"), std::string::npos) << s.ToString();
}

TEST(LogEnvTest, LogicalEndOfHandMadeLogs) {
  EXPECT_EQ(LogicalLogEnd(""), 0u);
  EXPECT_EQ(LogicalLogEnd(std::string(100, '\0')), 0u);
  // A header cut short at the end, then nothing: cut there.
  EXPECT_EQ(LogicalLogEnd(std::string("\x01\x02\x03", 3)), 0u);
  // Garbage at the start with something written after it: left whole.
  std::string junk(100, '\0');
  junk[0] = 'x';
  junk[99] = 'y';
  EXPECT_EQ(LogicalLogEnd(junk), junk.size());
  // A zero header, then a byte written later: left whole.
  std::string late(100, '\0');
  late[50] = 'z';
  EXPECT_EQ(LogicalLogEnd(late), late.size());
}

TEST(LogEnvTest, ASpareIsReadyForTheNextLog) {
  TempDir dir(OnDisk());
  ASSERT_FALSE(dir.path().empty());
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  std::unique_ptr<leveldb::DB> db;
  leveldb::Options o;
  o.create_if_missing = true;
  o.env = &env;
  o.write_buffer_size = 256 << 10;  // memtable switches (new logs) every ~256 KiB
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, dir.path(), &raw).ok());
  db.reset(raw);
  const std::string spare = LogEnv::SpareName(dir.path());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fs::exists(spare) || fs::file_size(spare) < kPrealloc) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no spare log made";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 3000; ++i) Put(*db, i, 1000);  // ~3 MB: several logs
  db.reset();
  std::unique_ptr<leveldb::DB> again;
  leveldb::Status s = OpenDb(&env, dir.path(), &again);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(Has(*again, i)) << i;
}

TEST(LogEnvTest, OnTmpfsALogIsLevelDbsOwn) {
  TempDir shm("/dev/shm");  // a tmpfs on every Linux this runs on
  ASSERT_FALSE(shm.path().empty()) << "can't make a directory in /dev/shm";
  const std::string& dir = shm.path();
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  leveldb::WritableFile* raw = nullptr;
  ASSERT_TRUE(env.NewWritableFile(dir + "/000003.log", &raw).ok());
  std::unique_ptr<leveldb::WritableFile> f(raw);
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(fs::file_size(dir + "/000003.log"), 3u);  // appended: a sync on tmpfs costs nothing
  EXPECT_FALSE(fs::exists(LogEnv::SpareName(dir)));
}

TEST(LogEnvTest, OtherFilesAreLevelDbsOwn) {
  TempDir dir(OnDisk());
  ASSERT_FALSE(dir.path().empty());
  LogEnv env(leveldb::Env::Default(), kPrealloc);
  leveldb::WritableFile* raw = nullptr;
  ASSERT_TRUE(env.NewWritableFile(dir.path() + "/MANIFEST-000001", &raw).ok());
  std::unique_ptr<leveldb::WritableFile> f(raw);
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(fs::file_size(dir.path() + "/MANIFEST-000001"), 3u);
  // Without preallocation, a log is LevelDB's own too.
  LogEnv off(leveldb::Env::Default(), 0);
  ASSERT_TRUE(off.NewWritableFile(dir.path() + "/000007.log", &raw).ok());
  f.reset(raw);
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(fs::file_size(dir.path() + "/000007.log"), 3u);
}

}  // namespace
}  // namespace todo::store
