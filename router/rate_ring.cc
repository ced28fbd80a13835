#include "router/rate_ring.h"

#include <algorithm>
#include <cmath>
#include <span>

namespace todo::router {
namespace {

uint64_t Delta(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

}  // namespace

uint64_t RateSlot::latency_count() const {
  uint64_t n = 0;
  for (uint64_t c : latency_buckets) n += c;
  return n;
}

std::optional<double> RateSlot::Quantile(double q) const {
  const uint64_t total = latency_count();
  if (total == 0 || !(q > 0 && q < 1)) return std::nullopt;
  const std::span<const double> bounds = metrics::kLatencySeconds;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;  // observations in the buckets before i
  for (size_t i = 0; i < latency_buckets.size(); ++i) {
    const uint64_t in = latency_buckets[i];
    if (in > 0 && static_cast<double>(below + in) >= rank) {
      if (i >= bounds.size()) return bounds.back();  // +Inf: the largest finite bound
      const double lower = i == 0 ? 0.0 : bounds[i - 1];
      const double upper = bounds[i];
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(in);
      return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
    }
    below += in;
  }
  return bounds.back();
}

RateRing::RateRing(std::chrono::milliseconds slot) : slot_(slot) {}

void RateRing::Offer(std::chrono::steady_clock::time_point now, int64_t unix_ms,
                     const RateTotals& totals) {
  if (!last_) {
    last_ = now;
    due_ = now + slot_;
    base_ = totals;
    return;
  }
  // The loop offers every kPublishEvery (250 ms) and wakes up to 100 ms
  // late: a slot closes at the first offer from a 16th of a slot before its
  // due time on, and the next is due one slot after this one was due (not
  // after it closed), so slot ends keep to a grid: 60 slots span a minute.
  if (now < due_ - slot_ / 16) return;
  RateSlot s;
  s.end_unix_ms = unix_ms;
  s.seconds = std::chrono::duration<double>(now - *last_).count();
  s.requests = Delta(totals.requests, base_.requests);
  for (size_t c = 0; c < kRateCodes; ++c) s.replies[c] = Delta(totals.replies[c], base_.replies[c]);
  s.latency_buckets.resize(totals.latency_buckets.size());
  for (size_t b = 0; b < totals.latency_buckets.size(); ++b) {
    const uint64_t before = b < base_.latency_buckets.size() ? base_.latency_buckets[b] : 0;
    s.latency_buckets[b] = Delta(totals.latency_buckets[b], before);
  }
  slots_.push_back(std::move(s));
  while (slots_.size() > kSlots) slots_.pop_front();
  last_ = now;
  due_ += slot_;
  if (due_ <= now) due_ = now + slot_;  // a whole slot late (a stalled loop): a new grid
  base_ = totals;
}

}  // namespace todo::router
