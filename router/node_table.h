// NodeTable: the router's opinion of each node's health, and when to send
// the next round of heartbeats.
//
// Design: a pure state machine driven by clock values the caller passes in
// (no threads, no sockets, no clock of its own), so tests run it with
// made-up times. The router loop tells it when a node was heard from (any
// message: a heartbeat echo or a request's reply) and asks it, at every
// wake-up, which nodes have been silent too long.
//
//   kStarting --heard--> kUp --silent for down_after--> kDown --heard--> kUp
//       \__________silent for down_after__________________^
//
// A node starts in kStarting and is routable, as if heard at start, so a
// freshly started cluster routes at once; it goes down only if it stays
// silent for `down_after`. A down node is not routable (requests for its
// lists are answered `unavailable`) until it is heard again.
// Heartbeats go to every node, one round every `heartbeat_interval`, the
// first round at start.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace todo::router {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class NodeState : uint8_t { kStarting, kUp, kDown };

// "starting", "up", "down".
std::string_view NodeStateName(NodeState state);

struct NodeHealthOptions {
  // Time between two heartbeat rounds (--heartbeat-ms).
  std::chrono::milliseconds heartbeat_interval{500};
  // Silence after which a node is marked down (--down-after-ms).
  std::chrono::milliseconds down_after{2000};
};

// A change of a node's state, for the caller to log and count.
struct NodeTransition {
  size_t node = 0;
  NodeState from = NodeState::kStarting;
  NodeState to = NodeState::kStarting;
};

// Not thread-safe; owned by the router loop.
class NodeTable {
 public:
  // `nodes` nodes, indexed 0..nodes-1, all kStarting as of `start`.
  NodeTable(size_t nodes, NodeHealthOptions options, TimePoint start);

  size_t size() const { return nodes_.size(); }
  const NodeHealthOptions& options() const { return options_; }
  // A node more (the replicated mode learns its nodes from etcd), starting
  // as of `now`; returns its index.
  size_t Add(TimePoint now);
  NodeState state(size_t node) const { return nodes_[node].state; }
  // Requests may be sent to the node (it is not down).
  bool Routable(size_t node) const { return nodes_[node].state != NodeState::kDown; }
  // When the node was last heard from; the start time if never.
  TimePoint last_heard(size_t node) const { return nodes_[node].last_heard; }
  bool ever_heard(size_t node) const { return nodes_[node].ever_heard; }

  // Records a message from `node` at `now`. Returns the transition to kUp if
  // the node was starting or down, nullopt if it was already up.
  std::optional<NodeTransition> Heard(size_t node, TimePoint now);

  // Marks down every node not heard from during the `down_after` before
  // `now` (a node heard exactly `down_after` ago goes down), appending one
  // transition per node that went down. Down nodes stay down silently.
  void CheckSilence(TimePoint now, std::vector<NodeTransition>* transitions);

  // Heartbeats: a round is due when now >= next_heartbeat().
  TimePoint next_heartbeat() const { return next_heartbeat_; }
  bool HeartbeatDue(TimePoint now) const { return now >= next_heartbeat_; }
  // Records that a round was sent at `now`; the next is due one interval
  // later (rounds missed while the caller was busy are not made up).
  void HeartbeatsSent(TimePoint now) { next_heartbeat_ = now + options_.heartbeat_interval; }
  // A fresh token for the next heartbeat to `node` (1, 2, ...).
  uint64_t NextHeartbeatToken(size_t node) { return ++nodes_[node].heartbeat_token; }

  // The earliest time at which a heartbeat round is due or CheckSilence may
  // mark a node down; the caller's poll need not wake before it.
  TimePoint NextEvent() const;

 private:
  struct Node {
    NodeState state = NodeState::kStarting;
    TimePoint last_heard;
    bool ever_heard = false;
    uint64_t heartbeat_token = 0;
  };

  const NodeHealthOptions options_;
  std::vector<Node> nodes_;
  TimePoint next_heartbeat_;
};

}  // namespace todo::router
