// PartitionTable: which partitions this node may serve right now, read on
// every request by the socket loop, the list actors and the shard writers.
//
// A node answers for a partition (reads and writes) only while both hold
// (shared/spec/replication.md, "Fencing"):
//  - the last map it saw names it primary, at leader epoch `term`: the shard
//    writer owning the partition sets serving(p) = term once it is ready to
//    sequence writes for it, and 0 the moment it is not primary any more;
//  - its etcd lease was renewed less than the TTL ago by its own monotonic
//    clock, less a safety margin: the lease keeper's valid_until(), read
//    live, for the lease the node is announced under (set_serving_lease).
//    Read from the keeper, not copied by the cluster agent: the agent's
//    thread also makes slow etcd calls (reports, the controller's
//    campaign), and while one waited out an etcd election the copy went
//    stale and fenced a node whose lease the keeper had renewed.
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

#include "common/io/etcd/lease_keeper.h"

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

  // The lease (any thread). `keeper` (not owned, outlives the table) is set
  // once, before anything is served; `id` is the lease the node is
  // announced under (0: none: nothing is served).
  void set_lease_keeper(const io::LeaseKeeper* keeper) {
    keeper_.store(keeper, std::memory_order_release);
  }
  void set_serving_lease(int64_t id) { serving_lease_.store(id, std::memory_order_release); }
  bool lease_valid(Clock::time_point now) const {
    const int64_t id = serving_lease_.load(std::memory_order_acquire);
    const io::LeaseKeeper* keeper = keeper_.load(std::memory_order_acquire);
    return id != 0 && keeper != nullptr && keeper->lease_id() == id && now < keeper->valid_until();
  }
  // Serves p now under `term`: primary at that term, with a current lease.
  bool Serves(uint32_t p, uint64_t term, Clock::time_point now) const {
    return term != 0 && serving(p) == term && lease_valid(now);
  }

 private:
  const uint32_t partitions_;
  std::unique_ptr<std::atomic<uint64_t>[]> serving_;
  std::atomic<const io::LeaseKeeper*> keeper_{nullptr};
  std::atomic<int64_t> serving_lease_{0};
};

}  // namespace todo::node
