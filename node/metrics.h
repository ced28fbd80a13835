// Node metrics: what the socket loop counts per reply (by op and code, and
// the time from receiving each request to sending its reply), what the
// registry and the shard writers already count, how other threads see it,
// and both as the `stats` op's msgpack map and as Prometheus text.
//
// Design: the socket loop owns the per-reply counters (plain values, no
// lock or atomic per request: OnReply is a peek at the reply's code, a clock
// read and a few increments). Every kPublishEvery it copies them, its
// NodeCounters and the registry's figures into a mutex-guarded snapshot,
// which PrometheusText() reads from the metrics HTTP thread; the mailbox
// depths (a walk over the live actors) are refreshed at most once a second.
// Writer figures are read live: WriterStats are atomics and each writer's
// histograms are copied under its own lock (taken once per group commit).
// The `stats` op is answered by the loop from its live counters.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <msgpack/sbuffer.hpp>
#include <mutex>
#include <string>
#include <zmq.hpp>

#include "common/metrics.h"
#include "common/protocol.h"
#include "node/message.h"
#include "node/node_server.h"

namespace todo::store {
class Store;
}

namespace todo::node {

class Registry;

class NodeMetrics {
 public:
  // How often the loop publishes, and refreshes the mailbox depths.
  static constexpr std::chrono::milliseconds kPublishEvery{250};
  static constexpr std::chrono::milliseconds kMailboxEvery{1000};
  // /health answers 503 if the loop has not published for this long.
  static constexpr std::chrono::milliseconds kStaleAfter{2000};

  // `registry` and `store` must outlive this object.
  NodeMetrics(std::string name, Registry* registry, store::Store* store);
  ~NodeMetrics();

  // Socket loop: counts the reply `body` to the request `trace` describes.
  // `now`: when it is sent (a burst of replies shares one clock read).
  void OnReply(const Envelope::Trace& trace, const zmq::message_t& body,
               std::chrono::steady_clock::time_point now);
  // Socket loop: publishes the loop's figures for other threads.
  void Publish(const NodeServer& server);
  // Socket loop: appends the `stats` reply for request `id`.
  void EncodeStats(msgpack::sbuffer& out, const protocol::RequestId& id, const NodeServer& server);

  // Any thread: marks the node stopped (health 503).
  void SetStopped() { stopped_.store(true, std::memory_order_release); }
  // Any thread: true if the loop published within kStaleAfter and the node
  // has not stopped.
  bool serving() const;
  const std::string& name() const { return name_; }
  // Any thread: the Prometheus text of the last snapshot and the writers.
  std::string PrometheusText() const;

 private:
  // Ops with a slot for requests that did not decode.
  static constexpr size_t kOpSlots = protocol::kNumOps + 1;
  static constexpr size_t kCodes = 8;
  struct LoopStats {
    std::array<std::array<uint64_t, kCodes>, kOpSlots> by_op_code{};
    std::array<metrics::Histogram, protocol::kNumOps> latency;
    uint64_t unreadable_replies = 0;  // replies whose code couldn't be read
  };
  struct Published {
    LoopStats loop;
    NodeCounters counters;
    size_t inflight = 0;
    size_t live_actors = 0;
    uint64_t actors_loaded = 0;
    uint64_t actors_evicted = 0;
    uint64_t actors_evicted_for_memory = 0;
    int64_t cache_bytes = 0;
    size_t mailbox_sum = 0;
    size_t mailbox_max = 0;
  };

  const std::string name_;
  Registry* const registry_;
  store::Store* const store_;
  // Socket loop only.
  LoopStats live_;
  size_t mailbox_sum_ = 0;
  size_t mailbox_max_ = 0;
  std::chrono::steady_clock::time_point next_mailbox_scan_{};
  // Guarded by mu_.
  mutable std::mutex mu_;
  Published published_;
  std::atomic<int64_t> published_at_ns_{0};  // steady clock; 0 = never
  std::atomic<bool> stopped_{false};
};

}  // namespace todo::node
