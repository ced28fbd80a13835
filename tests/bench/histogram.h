// A log-linear latency histogram in the style of HdrHistogram.
//
// Values below 2^(kSubBits+1) are counted exactly. Above that, every
// power-of-two range [2^m, 2^(m+1)) is split into 2^kSubBits equal buckets, so
// a reported quantile is at most 1/2^kSubBits (0.8%) above the true value.
// The bucket array is allocated once, in the constructor: recording never
// allocates, and a run of any length uses the same memory (34 KiB).
//
// Not thread-safe: keep one per thread (or per op) and Merge() at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace todo::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  // Values of 2^kMaxBits or more (in nanoseconds: ~18 minutes) are recorded
  // as 2^kMaxBits - 1.
  static constexpr int kMaxBits = 40;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxBits) - 1;

  LatencyHistogram();

  // Counts one value (any unit; the bench records nanoseconds).
  void Record(uint64_t value);
  // Adds every count of `other` to this one.
  void Merge(const LatencyHistogram& other);
  // Forgets every value.
  void Reset();

  uint64_t count() const { return count_; }
  // Exact smallest and largest values recorded (after clamping); 0 if empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  // Exact mean; 0 if empty.
  double mean() const;
  // The smallest bucket bound v such that at least a fraction q (0..1] of the
  // values are <= v, never more than max(). q <= 0 gives min(); 0 if empty.
  uint64_t ValueAtQuantile(double q) const;

  // Bucket arithmetic, public for tests: the bucket of a value, and the
  // largest value that falls into a bucket.
  static size_t IndexOf(uint64_t value);
  static uint64_t HighestEquivalent(size_t index);
  static constexpr size_t kBuckets = static_cast<size_t>(kMaxBits - kSubBits + 1) << kSubBits;

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace todo::bench
