#include "router/node_table.h"

#include <algorithm>

namespace todo::router {

std::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kStarting:
      return "starting";
    case NodeState::kUp:
      return "up";
    case NodeState::kDown:
      return "down";
  }
  return "?";
}

NodeTable::NodeTable(size_t nodes, NodeHealthOptions options, TimePoint start)
    : options_(options), nodes_(nodes), next_heartbeat_(start) {
  for (Node& n : nodes_) n.last_heard = start;
}

size_t NodeTable::Add(TimePoint now) {
  nodes_.push_back(Node{});
  nodes_.back().last_heard = now;
  return nodes_.size() - 1;
}

std::optional<NodeTransition> NodeTable::Heard(size_t node, TimePoint now) {
  Node& n = nodes_[node];
  n.last_heard = std::max(n.last_heard, now);
  n.ever_heard = true;
  if (n.state == NodeState::kUp) return std::nullopt;
  NodeTransition t{node, n.state, NodeState::kUp};
  n.state = NodeState::kUp;
  return t;
}

void NodeTable::CheckSilence(TimePoint now, std::vector<NodeTransition>* transitions) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (n.state == NodeState::kDown) continue;
    if (now - n.last_heard >= options_.down_after) {
      transitions->push_back({i, n.state, NodeState::kDown});
      n.state = NodeState::kDown;
    }
  }
}

TimePoint NodeTable::NextEvent() const {
  TimePoint next = next_heartbeat_;
  for (const Node& n : nodes_) {
    if (n.state != NodeState::kDown) next = std::min(next, n.last_heard + options_.down_after);
  }
  return next;
}

}  // namespace todo::router
