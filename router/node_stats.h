// NodeStatsPoller: asks nodes for their `stats` (their per-partition role,
// epoch, sequence numbers and each backup's mode, acknowledged position and
// lag; node/metrics.cc EncodeStats) about once a second, and keeps each
// node's latest answer for the operator page (router/operator_view.h).
//
// Design: one thread of its own with one DEALER per node, never the
// router's loop or its sockets. Why not the router's per-node DEALERs and
// its deadline table: a stats answer is tens of KiB per node (a few hundred
// partitions) that would be decoded on the loop, between client requests,
// and its replies would need a third kind of frame beside requests and
// heartbeats in the loop's hottest code; a thread decodes off the loop and
// touches nothing the loop owns. The loop only hands it the nodes to ask
// (SetTargets(), a mutex held for a copy) and the HTTP handler reads the
// answers (Latest(), a mutex held for a copy of shared pointers), so the
// loop never waits on a node.
//
// Each round: a request to every target (dontwait; a node not connected is
// skipped at once, ZMQ_IMMEDIATE), then a poll of the sockets for at most
// `timeout`; an answer that comes later is dropped (its id is an old
// round's). Bounded: one request per node in flight, answers of at most
// `max_answer_bytes` (ZMQ_MAXMSGSIZE), targets at most kMaxTargets. The
// thread asks only while active() (the page is being looked at), but keeps
// a connection to every target meanwhile, so the first round after
// SetActive(true), which wakes it, finds them up. Stop() (and the
// destructor) wakes it through the same eventfd and joins it within one
// poll slice (≤ 100 ms).
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"

namespace todo::router {

struct NodeStatsOptions {
  // Time between the starts of two rounds.
  std::chrono::milliseconds interval{1000};
  // How long a round waits for the answers.
  std::chrono::milliseconds timeout{800};
  // Bytes of one answer at most (a bigger one drops the connection).
  int64_t max_answer_bytes = int64_t{16} << 20;
};

// The latest from one node.
struct NodeStatsEntry {
  // The `result` map of its last answer, as JSON (null if it never answered).
  std::shared_ptr<const nlohmann::ordered_json> result;
  std::chrono::steady_clock::time_point answered_at{};  // of `result`
  // The last round: ok, or why not (not connected, no answer in time, a
  // malformed or error answer).
  bool last_ok = false;
  std::string last_error;
};

class NodeStatsPoller {
 public:
  static constexpr size_t kMaxTargets = 1024;

  // `ctx` must outlive the poller. Starts its thread.
  NodeStatsPoller(zmq::context_t* ctx, NodeStatsOptions options);
  ~NodeStatsPoller();  // Stop()
  NodeStatsPoller(const NodeStatsPoller&) = delete;
  NodeStatsPoller& operator=(const NodeStatsPoller&) = delete;

  // The nodes to ask, name -> client endpoint (at most kMaxTargets; the
  // rest are ignored). A node left out is forgotten.
  void SetTargets(std::map<std::string, std::string> targets);
  // Polls only while active (default: not); becoming active starts a round
  // at once.
  void SetActive(bool active);
  bool active() const { return active_.load(std::memory_order_relaxed); }

  // The latest answer of each target, by name.
  std::map<std::string, NodeStatsEntry> Latest() const;
  // Rounds completed (for tests).
  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }

  // Stops the thread and closes its sockets. Idempotent.
  void Stop();

 private:
  struct Peer;
  void Run();
  // One round over `peers`; returns when every answer is in, the timeout
  // passed, or Stop() was called.
  void Round(std::map<std::string, Peer>& peers, uint64_t round);
  // Waits up to `d`, or until woken (Stop(), or SetActive(true)); false
  // once stopped.
  bool Sleep(std::chrono::milliseconds d);
  void Wake();

  zmq::context_t* const ctx_;
  const NodeStatsOptions options_;
  int wake_fd_ = -1;  // eventfd: Stop() or SetActive(true) was called
  std::atomic<bool> stop_{false};
  std::atomic<bool> active_{false};
  std::atomic<uint64_t> rounds_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::string> targets_;    // guarded by mu_
  std::map<std::string, NodeStatsEntry> latest_;  // guarded by mu_
  std::thread thread_;
};

// Decodes a `stats` reply body into its result as JSON; internal (naming
// what is wrong) if it is not a well-formed success reply. Pure.
StatusOr<nlohmann::ordered_json> DecodeStatsReply(std::string_view body);

}  // namespace todo::router
