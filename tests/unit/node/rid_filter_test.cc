// RidFilter: the in-memory filter in front of rid lookups. It may say
// "maybe" for anything, but never "no" for a pair inserted into either
// generation, and says "maybe" for everything until marked complete.
#include "node/store/rid_filter.h"

#include <gtest/gtest.h>

#include <string>

#include "common/storage_format.h"

namespace todo::store {
namespace {

uint64_t H(int i) { return RidFilter::Hash("", "list", "rid-" + std::to_string(i)); }

TEST(RidFilterTest, IncompleteAnswersMaybe) {
  RidFilter f(1 << 16);
  EXPECT_TRUE(f.enabled());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(f.MayContain(H(i)));
  EXPECT_EQ(f.skipped(), 0u);
  RidFilter off(0);
  EXPECT_FALSE(off.enabled());
  off.MarkComplete();
  EXPECT_FALSE(off.complete());  // a disabled filter never trusts "no"
  EXPECT_TRUE(off.MayContain(H(1)));
}

TEST(RidFilterTest, NoFalseNegativesAndFewFalsePositives) {
  RidFilter f(1 << 20);  // 1 MiB: ~400,000 pairs at ~2%
  f.MarkComplete();
  for (int i = 0; i < 100000; ++i) f.Insert(H(i));
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(f.MayContain(H(i))) << i;
  int positives = 0;
  for (int i = 100000; i < 200000; ++i) positives += f.MayContain(H(i));
  EXPECT_LT(positives, 2000);  // under 2% (about 0.1% at this load)
  EXPECT_EQ(f.skipped(), 100000u - static_cast<uint64_t>(positives));
  EXPECT_EQ(f.inserted(), 100000u);
}

TEST(RidFilterTest, TheKeyIsTheRecordKeysHashOfListAndRid) {
  EXPECT_NE(RidFilter::Hash("", "ab", "c"), RidFilter::Hash("", "a", "bc"));
  EXPECT_EQ(RidFilter::Hash("", "l", "r"), RidFilter::Hash("", "l", "r"));
  // What the sweeper reads back from a record's key when it fills the filter.
  EXPECT_EQ(RidFilter::Hash("", "l", "r"), storage::RidKeyHash("l", "r").h1);
  // The partition prefix follows from the list: not hashed.
  EXPECT_EQ(RidFilter::Hash("", "l", "r"), RidFilter::Hash(std::string("\0\1", 2), "l", "r"));
}

TEST(RidFilterTest, ARotationKeepsThePreviousGenerationTheNextDropsIt) {
  RidFilter f(1 << 16);
  f.MarkComplete();
  f.Insert(H(1));
  f.Rotate();  // H(1) is in the previous generation now
  f.Insert(H(2));
  EXPECT_TRUE(f.MayContain(H(1)));
  EXPECT_TRUE(f.MayContain(H(2)));
  f.Rotate();  // H(1)'s generation is cleared: older than the TTL
  EXPECT_FALSE(f.MayContain(H(1)));
  EXPECT_TRUE(f.MayContain(H(2)));
  f.Rotate();
  EXPECT_FALSE(f.MayContain(H(2)));
}

}  // namespace
}  // namespace todo::store
