#include "router/rate_ring.h"

#include <gtest/gtest.h>

#include "tests/unit/router/test_time.h"

namespace todo::router {
namespace {

using test_time::At;
using test_time::kStart;

RateTotals Totals(uint64_t requests, uint64_t ok, uint64_t timeouts,
                  std::vector<uint64_t> buckets = {}) {
  RateTotals t;
  t.requests = requests;
  t.replies[0] = ok;
  t.replies[6] = timeouts;  // ErrorCode::kTimeout
  t.latency_buckets = buckets.empty()
                          ? std::vector<uint64_t>(std::size(metrics::kLatencySeconds) + 1, 0)
                          : std::move(buckets);
  return t;
}

TEST(RateRingTest, FirstOfferIsTheBaselineThenOneSlotPerSecond) {
  RateRing ring;
  ring.Offer(At(0), 1000, Totals(100, 90, 1));
  EXPECT_TRUE(ring.slots().empty());
  ring.Offer(At(250), 1250, Totals(110, 99, 1));
  ring.Offer(At(500), 1500, Totals(120, 108, 1));
  EXPECT_TRUE(ring.slots().empty()) << "half a second is not a slot";
  ring.Offer(At(1000), 2000, Totals(150, 137, 3));
  ASSERT_EQ(ring.slots().size(), 1u);
  const RateSlot& s = ring.slots().back();
  EXPECT_EQ(s.requests, 50u);
  EXPECT_EQ(s.replies[0], 47u);
  EXPECT_EQ(s.replies[6], 2u);
  EXPECT_DOUBLE_EQ(s.seconds, 1.0);
  EXPECT_EQ(s.end_unix_ms, 2000);
  // The next slot differences from the last closed one; it is due at 2000
  // and closes from a 16th of a slot before.
  ring.Offer(At(1900), 2900, Totals(160, 147, 3));
  EXPECT_EQ(ring.slots().size(), 1u) << "100 ms early is too early";
  ring.Offer(At(1950), 2950, Totals(160, 147, 3));
  ASSERT_EQ(ring.slots().size(), 2u);
  EXPECT_EQ(ring.slots().back().requests, 10u);
  EXPECT_NEAR(ring.slots().back().seconds, 0.95, 1e-9);
}

// The router's loop offers every 250 ms, up to 100 ms late: the slots still
// average one second, so the ring's 60 slots span a minute (with a 7/8
// threshold they were ~0.9 s apart: 54 s).
TEST(RateRingTest, SlotEndsKeepToTheGridUnderJitter) {
  RateRing ring;
  uint64_t seed = 7;
  auto jitter = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((seed >> 33) % 101);  // 0-100 ms late
  };
  for (int tick = 0; tick <= 4 * 120; ++tick) {
    const int t = tick * 250 + jitter();
    ring.Offer(At(t), t, Totals(tick, tick, 0));
  }
  ASSERT_EQ(ring.slots().size(), RateRing::kSlots);
  double span = 0;
  for (const RateSlot& s : ring.slots()) {
    EXPECT_GT(s.seconds, 0.6);  // each slot within an offer period of the grid
    EXPECT_LT(s.seconds, 1.4);
    span += s.seconds;
  }
  EXPECT_NEAR(span, 60.0, 0.5);
}

TEST(RateRingTest, KeepsTheLastMinuteOnly) {
  RateRing ring;
  for (int i = 0; i <= 100; ++i) ring.Offer(At(i * 1000), i * 1000, Totals(i * 10, i * 10, 0));
  ASSERT_EQ(ring.slots().size(), RateRing::kSlots);
  EXPECT_EQ(ring.slots().front().end_unix_ms, 41000);
  EXPECT_EQ(ring.slots().back().end_unix_ms, 100000);
  for (const RateSlot& s : ring.slots()) EXPECT_EQ(s.requests, 10u);
}

TEST(RateRingTest, CountersThatGoBackCountAsZero) {
  RateRing ring;
  ring.Offer(At(0), 0, Totals(100, 100, 0));
  ring.Offer(At(1000), 1000, Totals(50, 50, 0));
  ASSERT_EQ(ring.slots().size(), 1u);
  EXPECT_EQ(ring.slots().back().requests, 0u);
}

TEST(RateSlotTest, QuantilesInterpolateInsideBuckets) {
  RateSlot s;
  s.latency_buckets.assign(std::size(metrics::kLatencySeconds) + 1, 0);
  EXPECT_FALSE(s.Quantile(0.5).has_value()) << "no latencies, no quantile";
  // kLatencySeconds: ..., 0.0005 (3), 0.001 (4), 0.0025 (5), ...
  s.latency_buckets[4] = 50;  // (0.5 ms, 1 ms]
  s.latency_buckets[5] = 50;  // (1 ms, 2.5 ms]
  EXPECT_EQ(s.latency_count(), 100u);
  EXPECT_NEAR(*s.Quantile(0.5), 0.001, 1e-12);
  EXPECT_NEAR(*s.Quantile(0.25), 0.00075, 1e-12);
  EXPECT_NEAR(*s.Quantile(0.99), 0.001 + 0.0015 * 49.0 / 50.0, 1e-12);
  EXPECT_FALSE(s.Quantile(0).has_value());
  EXPECT_FALSE(s.Quantile(1).has_value());
  // Past the last bound: the largest finite bound.
  s.latency_buckets.back() = 1000;
  EXPECT_DOUBLE_EQ(*s.Quantile(0.99), 10.0);
}

TEST(RateSlotTest, FirstBucketStartsAtZero) {
  RateSlot s;
  s.latency_buckets.assign(std::size(metrics::kLatencySeconds) + 1, 0);
  s.latency_buckets[0] = 10;  // (0, 50 us]
  EXPECT_NEAR(*s.Quantile(0.5), 0.000025, 1e-12);
}

}  // namespace
}  // namespace todo::router
