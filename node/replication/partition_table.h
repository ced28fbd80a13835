// PartitionTable: which partitions this node may serve right now, read on
// every request by the socket loop, the list actors and the shard writers.
//
// A node answers for a partition (reads and writes) only while both hold
// (shared/spec/replication.md, "Fencing"):
//  - the last map it saw names it primary, at leader epoch `term`: the shard
//    writer owning the partition sets serving(p) = term once it is ready to
//    sequence writes for it, and 0 the moment it is not primary any more;
//  - its etcd lease was renewed less than the TTL ago by its own monotonic
//    clock, less a safety margin: lease_valid_until, kept by the lease keeper.
// A request carries the term it was admitted under; a writer sequences it
// only under that same term, so a write admitted before a change of
// primary can never be applied after it.
//
// Lock-free: one atomic per partition, written by one writer thread each.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace todo::node {

class PartitionTable {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PartitionTable(uint32_t partitions)
      : partitions_(partitions), serving_(new std::atomic<uint64_t>[partitions]) {
    for (uint32_t p = 0; p < partitions; ++p) serving_[p].store(0, std::memory_order_relaxed);
  }

  uint32_t partitions() const { return partitions_; }

  // The leader epoch under which this node serves p as primary; 0: it doesn't.
  uint64_t serving(uint32_t p) const { return serving_[p].load(std::memory_order_acquire); }
  void set_serving(uint32_t p, uint64_t term) {
    serving_[p].store(term, std::memory_order_release);
  }

  // The lease (any thread).
  bool lease_valid(Clock::time_point now) const {
    return now.time_since_epoch().count() < lease_valid_until_.load(std::memory_order_acquire);
  }
  void set_lease_valid_until(Clock::time_point t) {
    lease_valid_until_.store(t.time_since_epoch().count(), std::memory_order_release);
  }
  // Serves p now under `term`: primary at that term, with a current lease.
  bool Serves(uint32_t p, uint64_t term, Clock::time_point now) const {
    return term != 0 && serving(p) == term && lease_valid(now);
  }

 private:
  const uint32_t partitions_;
  std::unique_ptr<std::atomic<uint64_t>[]> serving_;
  std::atomic<Clock::rep> lease_valid_until_{0};
};

}  // namespace todo::node
