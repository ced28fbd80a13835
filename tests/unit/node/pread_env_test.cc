#include "node/store/pread_env.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include <fstream>
#include <memory>

#include "test_util.h"

namespace todo::store {
namespace {

using todo::testing::TempDir;

// "k" + N, built by appending: GCC 12 warns (-Wrestrict, a false positive)
// on `"k" + std::to_string(i)`.
std::string Key(int i) {
  std::string k = "k";
  k += std::to_string(i);
  return k;
}

TEST(PreadEnvTest, ReadsAtOffsetsAndShortAtTheEnd) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  std::ofstream(path, std::ios::binary) << "0123456789";
  PreadEnv env(leveldb::Env::Default());
  leveldb::RandomAccessFile* raw = nullptr;
  ASSERT_TRUE(env.NewRandomAccessFile(path, &raw).ok());
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  char scratch[16];
  leveldb::Slice got;
  ASSERT_TRUE(file->Read(3, 4, &got, scratch).ok());
  EXPECT_EQ(got.ToString(), "3456");
  ASSERT_TRUE(file->Read(8, 5, &got, scratch).ok());  // past the end: what is there
  EXPECT_EQ(got.ToString(), "89");
  ASSERT_TRUE(file->Read(20, 4, &got, scratch).ok());
  EXPECT_TRUE(got.empty());
}

TEST(PreadEnvTest, MissingFileIsNotFoundAndNamesIt) {
  TempDir dir;
  PreadEnv env(leveldb::Env::Default());
  leveldb::RandomAccessFile* raw = nullptr;
  leveldb::Status s = env.NewRandomAccessFile(dir.path() + "/nope", &raw);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find("nope"), std::string::npos) << s.ToString();
  EXPECT_EQ(raw, nullptr);
}

TEST(PreadEnvTest, LevelDbReadsItsTablesThroughIt) {
  // Enough data for several tables, then reads after a reopen: every value
  // comes back from the table files, read with pread.
  TempDir dir;
  PreadEnv env(leveldb::Env::Default());
  leveldb::Options options;
  options.create_if_missing = true;
  options.env = &env;
  options.write_buffer_size = 64 << 10;
  const std::string value(200, 'v');
  {
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(options, dir.path() + "/db", &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    for (int i = 0; i < 5000; ++i) {
      ASSERT_TRUE(db->Put({}, Key(i), value + std::to_string(i)).ok());
    }
  }
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(options, dir.path() + "/db", &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  std::string got;
  for (int i = 0; i < 5000; i += 7) {
    ASSERT_TRUE(db->Get({}, Key(i), &got).ok()) << i;
    EXPECT_EQ(got, value + std::to_string(i));
  }
  std::string files;
  ASSERT_TRUE(db->GetProperty("leveldb.num-files-at-level0", &files));
  std::string stats;
  db->GetProperty("leveldb.stats", &stats);
  EXPECT_NE(stats.find("Compactions"), std::string::npos);
}

}  // namespace
}  // namespace todo::store
