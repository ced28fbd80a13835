#include "tests/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace todo::bench {
namespace {

constexpr uint64_t kSubCount = uint64_t{1} << LatencyHistogram::kSubBits;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

size_t LatencyHistogram::IndexOf(uint64_t value) {
  value = std::min(value, kMaxValue);
  if (value < 2 * kSubCount) return static_cast<size_t>(value);
  int msb = 63 - std::countl_zero(value);  // >= kSubBits + 1
  int shift = msb - kSubBits;
  // (value >> shift) is in [kSubCount, 2 * kSubCount).
  return static_cast<size_t>((static_cast<uint64_t>(shift + 1) << kSubBits) +
                             ((value >> shift) - kSubCount));
}

uint64_t LatencyHistogram::HighestEquivalent(size_t index) {
  if (index < 2 * kSubCount) return index;
  int shift = static_cast<int>(index >> kSubBits) - 1;
  uint64_t sub = index & (kSubCount - 1);
  uint64_t low = (kSubCount + sub) << shift;
  return low + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  value = std::min(value, kMaxValue);
  ++counts_[IndexOf(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0) return min_;
  // The epsilon keeps 0.999 * 1000 (= 999.0000000000001 in binary) at 999.
  double want = std::min(q, 1.0) * static_cast<double>(count_) - 1e-9;
  uint64_t target = static_cast<uint64_t>(std::ceil(want));
  target = std::clamp<uint64_t>(target, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= target) return std::clamp(HighestEquivalent(i), min_, max_);
  }
  return max_;
}

}  // namespace todo::bench
