// Router metrics: what the router's loop counts (RouterCounters, plain
// values owned by the loop thread), how other threads see it (snapshots the
// loop publishes), what the HTTP front end counts (atomics, written by its
// worker threads), and both as the `stats` op's msgpack map and as
// Prometheus text.
//
// Design: the loop never takes a lock per request. It counts into plain
// fields and, every kPublishEvery, copies them (a few KiB) into a
// mutex-guarded snapshot that /metrics reads. HTTP workers count with
// relaxed atomics. The `stats` op is answered by the loop from its live
// counters.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <msgpack/sbuffer.hpp>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/protocol.h"
#include "common/status.h"
#include "router/node_table.h"
#include "router/rate_ring.h"

namespace todo::router {

class Router;
struct RouterCounters;
struct RouterOptions;

// ErrorCode values, kOk included.
constexpr size_t kNumCodes = 8;
static_assert(kNumCodes == kRateCodes);

// What happened to forwarded requests, by op: the code of the reply the
// client got (a node's reply, or the router's `timeout`) and the time from
// receiving the request to sending that reply. Loop thread only.
struct ForwardedStats {
  std::array<std::array<uint64_t, kNumCodes>, protocol::kNumOps> by_op_code{};
  std::array<metrics::Histogram, protocol::kNumOps> latency;
  uint64_t unreadable_replies = 0;  // node replies whose code PeekReplyCode couldn't read

  // Counts one reply; `code` nullopt if it couldn't be read.
  void Record(protocol::Op op, std::optional<ErrorCode> code, TimePoint::duration latency);
};

// How often the loop publishes its counters for other threads.
constexpr std::chrono::milliseconds kPublishEvery{250};

// Bounds of the router's HTTP routes, for labels and counters.
enum class HttpRoute : uint8_t {
  kBookEntries,   // GET /entries
  kBookAddEntry,  // POST /add_entry
  kListEntries,   // GET /lists/{list}/entries
  kCreateEntry,   // POST /lists/{list}/entries
  kUpdateEntry,   // PATCH /lists/{list}/entries/{id}
  kDeleteEntry,   // DELETE /lists/{list}/entries/{id}
  kOwner,         // GET /lists/{list}/owner
  kHealth,        // GET /health
  kMetrics,       // GET /metrics
  kOther,         // anything else (404, 405, unparsable)
  kPage,          // GET / and the operator page's files
  kApiCluster,    // GET /api/cluster
  kApiList,       // GET /api/list
};
constexpr size_t kNumHttpRoutes = 13;
std::string_view HttpRouteName(HttpRoute route);

// HTTP status codes counted one by one; others count as "other".
inline constexpr int kCountedStatuses[] = {200, 201, 400, 404, 405, 413, 429, 500, 503, 504};
constexpr size_t kNumStatusSlots = std::size(kCountedStatuses) + 1;

// Counters of the HTTP front end. Thread-safe (relaxed atomics).
class HttpCounters {
 public:
  HttpCounters();
  // Counts one answered request; `latency` nullopt if unknown.
  void Record(HttpRoute route, int status, std::optional<double> latency_seconds);

  struct Snapshot {
    // [route][status slot]; the last slot is "other".
    std::array<std::array<uint64_t, kNumStatusSlots>, kNumHttpRoutes> by_route_status{};
    std::vector<metrics::Histogram> latency;  // by route
  };
  Snapshot Take() const;

 private:
  std::array<std::array<std::atomic<uint64_t>, kNumStatusSlots>, kNumHttpRoutes> by_route_status_{};
  // Latency buckets by route ([route][bucket]) and sums in nanoseconds.
  std::array<std::array<std::atomic<uint64_t>, std::size(metrics::kLatencySeconds) + 1>,
             kNumHttpRoutes>
      latency_buckets_{};
  std::array<std::atomic<uint64_t>, kNumHttpRoutes> latency_sum_ns_{};
};

// The published snapshots plus the HTTP counters. Publish() is called by the
// loop thread; everything else by any thread.
class RouterMetrics {
 public:
  RouterMetrics();
  ~RouterMetrics();

  // Loop thread: copies the router's counters and node states, and offers
  // the totals to the last minute's ring (rates()).
  void Publish(const Router& router);
  // True once Publish() ran and until SetStopped().
  bool serving() const { return serving_.load(std::memory_order_acquire); }
  void SetStopped() { serving_.store(false, std::memory_order_release); }

  HttpCounters& http() { return http_; }

  // The node names and their states as of the last Publish() (empty before).
  std::vector<std::pair<std::string, NodeState>> NodeStates() const;

  // The Prometheus text of the last published snapshot and the HTTP counters.
  std::string PrometheusText() const;

  // The last minute, one slot per second, oldest first (a copy).
  std::vector<RateSlot> RateSlots() const;

 private:
  struct Published;
  mutable std::mutex mu_;
  std::unique_ptr<Published> published_;  // guarded by mu_
  RateRing rates_;                        // guarded by mu_
  std::atomic<bool> serving_{false};
  HttpCounters http_;
};

// The totals the rate ring differences: requests received, replies by code
// (the router's own and the nodes', each reply once), forwarded latency.
RateTotals RateTotalsOf(const RouterCounters& counters);

// Loop thread: appends the router's `stats` reply ({"ok": true, "result":
// {counters...}}) for request id `id`.
void EncodeRouterStats(msgpack::sbuffer& out, const protocol::RequestId& id, const Router& router);

}  // namespace todo::router
