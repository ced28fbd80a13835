// LeaseKeeper: holds an etcd lease alive on a thread of its own, and says
// until when its holder may act as if it still had the lease.
//
// Design: the thread grants a lease of Options::ttl (rounded up to whole
// seconds; etcd may raise it to its minimum, and the granted TTL is what
// counts), then renews it every keepalive_interval (default: an eighth of
// the granted TTL: when etcd's raft leader dies, no renewal succeeds until
// the others elect a new one, about an election timeout; renewing every
// TTL/8 instead of TTL/4 leaves a 2 s lease ~0.5 s more of validity to
// cover that, so a node is not fenced for an etcd member's loss; a
// renewal is one small request to etcd's lessor). After each renewal etcd answers with TTL > 0, the
// keeper sets
//
//     valid_until = (steady time the renewal was *sent*) + TTL - margin
//
// etcd's leader restarts the lease's countdown when it receives the
// renewal, which is after we sent it, so a holder that checks
// `now < valid_until()` on its own steady clock knows etcd has not expired
// the lease yet (the margin, default max(200 ms, TTL/10), covers clock rate
// differences and the time between the check and the act). A failed
// renewal is retried every retry_interval until valid_until passes. The
// lease is lost when a renewal answers TTL 0 (etcd expired or revoked it)
// or valid_until passes without a renewal: the keeper then reports kLost,
// grants a fresh lease (a new id; retried until it succeeds), reports
// kGranted with it, and revokes the old one (best effort) so keys bound to
// it do not linger. The owner re-creates its lease-bound keys on kGranted.
//
// Threads: the listener runs on the keeper's thread; it must not call
// Stop() or destroy the keeper. The getters are atomics, safe from any
// thread. Calls to etcd are bounded by the client's call_timeout: give the
// keeper a client whose call_timeout is at most the keepalive interval
// (e.g. attempt 400 ms, call 500 ms for a 2 s TTL), or one slow call can
// outlast the lease.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "common/io/etcd/client.h"
#include "common/status.h"

namespace todo::io {

class LeaseKeeper {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds ttl{2000};  // rounded up to whole seconds
    // 0: the granted TTL / 8.
    std::chrono::milliseconds keepalive_interval{0};
    // Subtracted from each validity; 0: max(200 ms, granted TTL / 10).
    std::chrono::milliseconds margin{0};
    // After a failed renewal or grant, try again after this long.
    std::chrono::milliseconds retry_interval{100};
    // On Stop(), revoke the lease (its keys go at once, not after the TTL).
    bool revoke_on_stop = true;

    // bad_request if ttl or retry_interval is not positive, or margin or
    // the interval leaves no room (margin >= ttl, interval >= ttl - margin).
    Status Validate() const;
  };

  enum class Event {
    kGranted,  // a new lease (lease_id); it is valid
    kLost,     // the lease `lease_id` is no longer ours; a new one is being granted
  };
  using Listener = std::function<void(Event, int64_t lease_id)>;

  // `client` must outlive the keeper. `listener` may be empty.
  LeaseKeeper(EtcdClient* client, Options options, Listener listener);
  ~LeaseKeeper();  // Stop()
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Validates the options and starts the thread, which grants the first
  // lease. Call once.
  Status Start();
  // Waits up to `timeout` for a valid lease; true if there is one.
  bool WaitValid(std::chrono::milliseconds timeout);
  // Stops the thread (waking it at once) and, if revoke_on_stop, revokes
  // the lease (one call, bounded by the client's call_timeout; then
  // lease_id() is 0 and Valid() false). Without revoke_on_stop the lease
  // stays, unrenewed: lease_id() and valid_until() keep their values.
  void Stop();

  // The lease held, or 0 (none yet, or lost and not yet replaced).
  int64_t lease_id() const { return lease_id_.load(std::memory_order_acquire); }
  // Until when the lease is certainly alive in etcd (see the design note);
  // Clock::time_point() when there is none.
  Clock::time_point valid_until() const {
    return Clock::time_point(Clock::duration(valid_until_.load(std::memory_order_acquire)));
  }
  bool Valid() const { return Clock::now() < valid_until(); }
  // The TTL etcd granted the current lease, seconds (0 if none).
  int64_t granted_ttl() const { return granted_ttl_.load(std::memory_order_acquire); }
  uint64_t grants() const { return grants_.load(std::memory_order_relaxed); }
  uint64_t losses() const { return losses_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  // Waits until `t` or Stop(); true if stopped.
  bool WaitUntil(Clock::time_point t);
  void SetValidUntil(Clock::time_point t);
  std::chrono::milliseconds Margin(int64_t ttl_s) const;
  std::chrono::milliseconds Interval(int64_t ttl_s) const;
  void Lose(int64_t id);

  EtcdClient* const client_;
  const Options options_;
  const Listener listener_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;  // Stop() and validity changes
  bool stopping_ = false;       // guarded by mu_
  std::atomic<int64_t> lease_id_{0};
  std::atomic<Clock::rep> valid_until_{0};
  std::atomic<int64_t> granted_ttl_{0};
  std::atomic<uint64_t> grants_{0};
  std::atomic<uint64_t> losses_{0};
};

}  // namespace todo::io
