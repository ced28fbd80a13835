// ShardInbox: what reaches a shard writer besides client writes — the
// replication messages of its partitions (from the ReplIo thread) and new
// maps (from the cluster agent). Any thread posts; the writer takes
// everything at once between group commits.
//
// Bounded: `bytes()` counts the frames held; the ReplIo thread stops
// reading its sockets while an inbox is over its bound, so TCP pushes back
// on the sending node. Maps are small and replace each other (only the
// newest matters, but all are delivered in order).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/cluster/map.h"
#include "common/cluster/repl_wire.h"

namespace todo::node {

// A map as a node sees it: the map, and whether the map's record of this
// node's data dir is this dir (a node whose dir was wiped holds nothing the
// map says it holds until the controller has taken note).
struct MapSnapshot {
  std::shared_ptr<const cluster::ClusterMap> map;
  bool data_ok = false;
  // The partitions the map doesn't give this node may be dropped from its
  // disk: it is a member under this data dir and incarnation (data_ok), or
  // no member at all (removed: a name added again starts from scratch). Not
  // while only its incarnation is behind (a lease lost a moment ago).
  bool may_drop = false;
};

struct ReplEvent {
  std::string peer;                        // the sending node
  bool from_backup = false;                // arrived on our DEALER (a backup's answer) or ROUTER
  std::shared_ptr<zmq::message_t> frame;   // owns the bytes msgs point into
  std::vector<cluster::ReplMessage> msgs;  // of this shard's partitions
  std::shared_ptr<const MapSnapshot> map;  // set for a map event (then no msgs)
  size_t bytes = 0;
};

class ShardInbox {
 public:
  static constexpr size_t kMaxBytes = 64 << 20;

  // Before any Post: how to wake the owner (called after each post).
  void SetWaker(std::function<void()> wake) { wake_ = std::move(wake); }

  void Post(ReplEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bytes_.fetch_add(e.bytes, std::memory_order_relaxed);
      events_.push_back(std::move(e));
    }
    if (wake_) wake_();
  }
  // Posts every event of `es` (moved from, then cleared) under one lock
  // and with one wake-up: the ReplIo thread gathers what one poll brought.
  void PostAll(std::vector<ReplEvent>& es) {
    if (es.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (ReplEvent& e : es) {
        bytes_.fetch_add(e.bytes, std::memory_order_relaxed);
        events_.push_back(std::move(e));
      }
    }
    es.clear();
    if (wake_) wake_();
  }
  // The owner: everything posted so far, in order.
  void Take(std::vector<ReplEvent>* out) {
    out->clear();
    std::lock_guard<std::mutex> lock(mu_);
    out->swap(events_);
    size_t n = 0;
    for (const ReplEvent& e : *out) n += e.bytes;
    bytes_.fetch_sub(n, std::memory_order_relaxed);
  }
  bool empty() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.empty();
  }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  bool over() const { return bytes() > kMaxBytes; }

 private:
  mutable std::mutex mu_;
  std::vector<ReplEvent> events_;  // guarded by mu_
  std::atomic<size_t> bytes_{0};
  std::function<void()> wake_;
};

}  // namespace todo::node
