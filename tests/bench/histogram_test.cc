#include "tests/bench/histogram.h"

#include <gtest/gtest.h>

namespace todo::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 200; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 100u);
  EXPECT_EQ(h.ValueAtQuantile(0.9), 180u);
  EXPECT_EQ(h.ValueAtQuantile(0.995), 199u);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 200u);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 1u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 200u);
  EXPECT_DOUBLE_EQ(h.mean(), 100.5);
}

TEST(LatencyHistogramTest, QuantileCountsExactlyAtRoundFractions) {
  // 0.999 * 1000 is 999.0000000000001 in binary; the 999th value must win.
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.Record(v < 1000 ? 10 : 100000);
  EXPECT_EQ(h.ValueAtQuantile(0.999), 10u);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100000u);
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndTight) {
  // Every index maps back to itself through its highest value, the next
  // value starts the next bucket, and a bucket is at most 1/128 of its values.
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    uint64_t high = LatencyHistogram::HighestEquivalent(i);
    ASSERT_EQ(LatencyHistogram::IndexOf(high), i) << i;
    ASSERT_EQ(LatencyHistogram::IndexOf(high + 1), i + 1) << i;
  }
  for (uint64_t v = 1; v < (uint64_t{1} << 39); v = v * 3 + 1) {
    uint64_t high = LatencyHistogram::HighestEquivalent(LatencyHistogram::IndexOf(v));
    ASSERT_GE(high, v);
    ASSERT_LE(static_cast<double>(high - v), static_cast<double>(v) / 128.0) << v;
  }
  EXPECT_EQ(LatencyHistogram::HighestEquivalent(LatencyHistogram::kBuckets - 1),
            LatencyHistogram::kMaxValue);
}

TEST(LatencyHistogramTest, LargeValuesWithinOnePercent) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1'000'000; ++v) h.Record(v * 1000);  // 1 us .. 1 s in ns
  auto near = [](uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want * 0.01;
  };
  EXPECT_TRUE(near(h.ValueAtQuantile(0.5), 5e8)) << h.ValueAtQuantile(0.5);
  EXPECT_TRUE(near(h.ValueAtQuantile(0.99), 9.9e8)) << h.ValueAtQuantile(0.99);
  EXPECT_TRUE(near(h.ValueAtQuantile(0.999), 9.99e8)) << h.ValueAtQuantile(0.999);
  EXPECT_EQ(h.max(), 1'000'000'000u);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 1'000'000'000u);
}

TEST(LatencyHistogramTest, HugeValuesAreClamped) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxValue);
  EXPECT_EQ(h.ValueAtQuantile(0.5), LatencyHistogram::kMaxValue);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 0; v < 5000; ++v) {
    uint64_t x = v * v * 7 + 3;
    (v % 2 ? a : b).Record(x);
    all.Record(x);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) {
    EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
  }
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.ValueAtQuantile(0.5), 0u);
}

}  // namespace
}  // namespace todo::bench
