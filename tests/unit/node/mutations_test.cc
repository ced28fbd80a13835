// Mutations: the per-op buffer of puts and deletes (node/store/mutations.h).
#include "node/store/mutations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace todo::store {
namespace {

// Records what a WriteBatch holds, in order.
struct Recorder : leveldb::WriteBatch::Handler {
  std::vector<std::string> seen;
  void Put(const leveldb::Slice& k, const leveldb::Slice& v) override {
    seen.push_back("put " + k.ToString() + "=" + v.ToString());
  }
  void Delete(const leveldb::Slice& k) override { seen.push_back("del " + k.ToString()); }
};

std::vector<std::string> Contents(const Mutations& m) {
  leveldb::WriteBatch b;
  m.AppendTo(&b);
  Recorder r;
  EXPECT_TRUE(b.Iterate(&r).ok());
  return r.seen;
}

TEST(MutationsTest, KeepsOrderOfPutsAndDeletes) {
  Mutations m;
  EXPECT_TRUE(m.empty());
  m.Put("a", "1");
  m.Delete("b");
  m.Put("c", "");
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(Contents(m), (std::vector<std::string>{"put a=1", "del b", "put c="}));
}

TEST(MutationsTest, KeysAndValuesMayHoldAnyBytes) {
  Mutations m;
  std::string key("k\0\x01\xff", 4), value("\0v\0", 3);
  m.Put(key, value);
  leveldb::WriteBatch b;
  m.AppendTo(&b);
  struct : leveldb::WriteBatch::Handler {
    std::string k, v;
    void Put(const leveldb::Slice& key, const leveldb::Slice& val) override {
      k = key.ToString();
      v = val.ToString();
    }
    void Delete(const leveldb::Slice&) override {}
  } h;
  ASSERT_TRUE(b.Iterate(&h).ok());
  EXPECT_EQ(h.k, key);
  EXPECT_EQ(h.v, value);
}

TEST(MutationsTest, MovesInlineAndSpilledContentsAndEmptiesTheSource) {
  for (size_t title : {size_t{10}, Mutations::kInline, size_t{5000}}) {
    Mutations m;
    m.Put("key", std::string(title, 't'));
    m.Delete("old");
    const auto want = Contents(m);
    Mutations moved(std::move(m));
    EXPECT_EQ(Contents(moved), want) << title;
    EXPECT_TRUE(m.empty());  // NOLINT(bugprone-use-after-move): documented state
    Mutations assigned;
    assigned.Put("x", "y");
    assigned = std::move(moved);
    EXPECT_EQ(Contents(assigned), want) << title;
    // A moved-from buffer is reusable.
    m.Put("again", "1");
    EXPECT_EQ(Contents(m), (std::vector<std::string>{"put again=1"}));
  }
}

TEST(MutationsTest, GrowsAcrossManyAppends) {
  Mutations m;
  std::vector<std::string> want;
  for (int i = 0; i < 200; ++i) {
    m.Put("k" + std::to_string(i), std::string(static_cast<size_t>(i), 'v'));
    want.push_back("put k" + std::to_string(i) + "=" + std::string(static_cast<size_t>(i), 'v'));
  }
  EXPECT_EQ(Contents(m), want);
}

}  // namespace
}  // namespace todo::store
