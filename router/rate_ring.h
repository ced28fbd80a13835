// RateRing: the router's last minute, one slot per second, for the operator
// page (router/operator_view.h): requests received, replies by code, and
// the latency of forwarded requests as a histogram of that second (read as
// percentiles). RouterMetrics::Publish() feeds it the router's cumulative
// counters from the loop, every kPublishEvery; the ring keeps the
// differences.
//
// Pure: no clock, no threads, no I/O (the caller passes the times), so the
// tests drive it with made-up times. Bounded: kSlots slots, each a fixed
// size. Not thread-safe: RouterMetrics guards it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "common/metrics.h"

namespace todo::router {

// ErrorCode values, kOk included (router/metrics.h's kNumCodes).
inline constexpr size_t kRateCodes = 8;

// Cumulative totals at one moment (they only grow).
struct RateTotals {
  uint64_t requests = 0;                       // requests received (decoded or not)
  std::array<uint64_t, kRateCodes> replies{};  // replies sent, by ErrorCode
  // Forwarded requests' latency: per bucket of metrics::kLatencySeconds,
  // not cumulative, the +Inf bucket last.
  std::vector<uint64_t> latency_buckets;
};

// One closed slot: what happened between two offers at least a slot apart.
struct RateSlot {
  int64_t end_unix_ms = 0;  // wall clock at the slot's end (for the page's time axis)
  double seconds = 0;       // its length (about 1 s; longer if the loop was late)
  uint64_t requests = 0;
  std::array<uint64_t, kRateCodes> replies{};
  std::vector<uint64_t> latency_buckets;  // as RateTotals, this slot only

  uint64_t latency_count() const;
  // The q-quantile (0 < q < 1) of this slot's latencies in seconds,
  // interpolated linearly inside its bucket as Prometheus's
  // histogram_quantile() does (so it is as coarse as the buckets: 1 ms,
  // 2.5 ms, 5 ms...); the largest finite bound if it falls in +Inf;
  // nullopt if the slot has no latencies.
  std::optional<double> Quantile(double q) const;
};

class RateRing {
 public:
  static constexpr size_t kSlots = 60;

  explicit RateRing(std::chrono::milliseconds slot = std::chrono::milliseconds(1000));

  // The totals as of steady time `now` (wall clock `unix_ms`). The first
  // offer sets the baseline; after that, the first offer from a 16th of a
  // slot before the open slot's due time closes it with the differences (a
  // total that went down counts as 0). Slots are due on a grid of one slot
  // length from the first offer, so their ends don't drift. Past kSlots,
  // the oldest is dropped.
  void Offer(std::chrono::steady_clock::time_point now, int64_t unix_ms, const RateTotals& totals);

  // The closed slots, oldest first (at most kSlots).
  const std::deque<RateSlot>& slots() const { return slots_; }
  std::chrono::milliseconds slot_length() const { return slot_; }

 private:
  std::chrono::milliseconds slot_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::chrono::steady_clock::time_point due_;  // when the open slot closes
  RateTotals base_;
  std::deque<RateSlot> slots_;
};

}  // namespace todo::router
